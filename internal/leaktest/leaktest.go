// Package leaktest fails a test binary whose goroutines outlive its tests: every session reader
// and writer, document actor and storage goroutine must be gone once the tests closed them.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests and then waits up to 10 s for goroutines running ysync code to end; if some
// remain, it prints their stacks and exits 1. Use it as a package's TestMain: leaktest.Main(m).
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Wait(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Wait polls until no goroutine runs ysync code, or reports the ones left after timeout.
func Wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := Goroutines()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines still run ysync code:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Goroutines returns the stacks of live goroutines running ysync code, other than the test
// binary's main one, so the check ignores the runtime's and the test framework's own.
func Goroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/ysync/ysync/") && !strings.Contains(g, "TestMain") &&
			!strings.Contains(g, "ysync/internal/leaktest.") {
			out = append(out, g)
		}
	}
	return out
}
