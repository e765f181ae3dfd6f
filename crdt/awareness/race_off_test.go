//go:build !race

package awareness

// racePerByte is the allocation per input byte the race detector adds (race_on_test.go).
const racePerByte = 0
