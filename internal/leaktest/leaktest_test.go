package leaktest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A goroutine of any package counts, and one that ends in time does not.
func TestWaitSeesLeaksAndTheirEnd(t *testing.T) {
	stop := make(chan struct{})
	go func() { <-stop }()
	err := Wait(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "TestWaitSeesLeaksAndTheirEnd") {
		t.Fatalf("Wait with a blocked goroutine = %v, want a report naming it", err)
	}
	close(stop)
	if err := Wait(Timeout); err != nil {
		t.Fatalf("Wait after the goroutine ended: %v", err)
	}
}

// recorder is a testing.TB whose cleanups run when the test says so and whose errors are kept.
type recorder struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (r *recorder) Helper()           {}
func (r *recorder) Cleanup(fn func()) { r.cleanups = append(r.cleanups, fn) }
func (r *recorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *recorder) end() {
	for _, c := range r.cleanups {
		c()
	}
}

// Check ignores goroutines that existed before it and reports ones started after.
func TestCheck(t *testing.T) {
	older := make(chan struct{})
	go func() { <-older }()
	defer close(older)

	r := &recorder{TB: t}
	check(r, 200*time.Millisecond)
	r.end()
	if len(r.errs) != 0 {
		t.Fatalf("Check reported a goroutine older than it: %v", r.errs)
	}

	r = &recorder{TB: t}
	check(r, 200*time.Millisecond)
	newer := make(chan struct{})
	go func() { <-newer }()
	r.end()
	close(newer)
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "TestCheck") {
		t.Fatalf("Check of a leaked goroutine reported %q", r.errs)
	}
}
