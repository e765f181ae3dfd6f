//go:build !race

package idlemem_test

const raceEnabled = false
