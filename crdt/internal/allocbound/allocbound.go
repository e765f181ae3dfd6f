// Package allocbound measures what a decoder allocates, for the tests and fuzz targets that check
// allocation is bounded by the bytes received: a decoder may spend at most PerByte bytes of heap
// per input byte plus a constant, whatever counts the input declares.
package allocbound

import (
	"runtime"
	"testing"
)

// Bytes returns the heap bytes allocated while f ran (the TotalAlloc delta: everything allocated,
// freed or not, which is what a peak of memory can be made of). Other goroutines' allocations
// count too, so callers run it where nothing else is busy or allow for it in the constant.
func Bytes(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// Bound is an allocation limit: PerByte bytes per input byte plus Base.
type Bound struct {
	PerByte uint64
	Base    uint64
}

// Max is the limit for an input of n bytes.
func (b Bound) Max(n int) uint64 { return b.PerByte*uint64(n) + b.Base }

// Check runs f and fails tb when it allocated more than b allows for an input of n bytes.
func Check(tb testing.TB, what string, n int, b Bound, f func()) uint64 {
	tb.Helper()
	got := Bytes(f)
	// TotalAlloc counts the whole process, and the fuzzing engine's own goroutines allocate a few
	// KiB now and then while f runs. A decoder that really overspends does so on every run, so an
	// over-the-bound measurement is retried and the smallest of three counts.
	for i := 0; i < 2 && got > b.Max(n); i++ {
		got = min(got, Bytes(f))
	}
	if got > b.Max(n) {
		tb.Errorf("%s: %d input bytes allocated %d bytes, more than %d per byte + %d = %d", what, n, got, b.PerByte, b.Base, b.Max(n))
	}
	return got
}
