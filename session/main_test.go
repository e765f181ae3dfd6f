package session_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when goroutines outlive the tests: every session's reader and
// writer, and every document, must be gone once the tests closed them.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for left := ourGoroutines(); len(left) > 0; left = ourGoroutines() {
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines still run ysync code:\n%s\n", len(left), strings.Join(left, "\n\n"))
				os.Exit(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// ourGoroutines returns the stacks of live goroutines running ysync code (other than the one
// asking), so the leak check ignores the runtime's and the test framework's own.
func ourGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/ysync/ysync/") && !strings.Contains(g, "TestMain") {
			out = append(out, g)
		}
	}
	return out
}
