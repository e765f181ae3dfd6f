// Package leaktest fails tests whose goroutines outlive them: every session reader and writer,
// document actor and storage goroutine, and every goroutine a library started for them (a
// database pool's, an HTTP client's), must be gone once the tests closed what they opened.
//
// The check is go.uber.org/goleak's, which looks at every goroutine, not only ours, and already
// ignores the testing framework's and the runtime's own. On top of it this package waits longer
// (goleak retries for well under a second; a loaded machine takes longer to wind down) and
// closes the idle keep-alive connections of http.DefaultTransport first: those belong to the
// test client, not to the code under test.
package leaktest

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Timeout is how long Main and Check wait for goroutines to end before reporting them.
const Timeout = 10 * time.Second

// Main runs the tests and then waits up to Timeout for every goroutine they started to end; if
// some remain, it prints their stacks and exits 1. Use it as a package's TestMain:
// func TestMain(m *testing.M) { leaktest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Wait(Timeout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Check fails t if goroutines that did not exist when Check was called are still running
// Timeout after t (and its cleanups registered before Check) ended. Call it first in a test
// that does not run in parallel with others (goroutines cannot be told apart by test).
func Check(t testing.TB) {
	t.Helper()
	check(t, Timeout)
}

func check(t testing.TB, timeout time.Duration) {
	existing := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := Wait(timeout, existing); err != nil {
			t.Error(err)
		}
	})
}

// Wait polls until goleak finds no unexpected goroutine, or returns goleak's report of the ones
// left after timeout.
func Wait(timeout time.Duration, opts ...goleak.Option) error {
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	// Idle keep-alive connections of HTTP clients the tests made with their own transports:
	// client-side pools of the tests, not goroutines of the code under test (which owns no
	// long-lived HTTP client except the JWKS source, whose Close is tested on its own).
	opts = append(opts,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	deadline := time.Now().Add(timeout)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
