package shareddoc

import (
	"sync"
	"time"
)

// Clock is the time source of the document actors (awareness cleanup, idle unload, storage
// retries) and of session keep-alives. Tests inject a FakeClock and move time by hand, so no test
// sleeps.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f on its own goroutine once d has passed, like time.AfterFunc; the
	// returned Timer's C is nil. Nothing waits meanwhile: no goroutine, no stack.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of *time.Timer the actors use.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration)
}

// RealClock returns the wall clock.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer {
	return realTimer{time.NewTimer(d)}
}

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Stop() bool            { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }

// FakeClock is a manually advanced Clock for tests. Timers fire (a non-blocking send on their
// buffered channel, like time.Timer since Go 1.23) when Advance moves the time past their deadline.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, timers: make(map[*fakeTimer]struct{})}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the time forward by d and fires every timer whose deadline is reached.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*fakeTimer
	for t := range c.timers {
		if !t.when.After(now) {
			due = append(due, t)
			delete(c.timers, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.fire(now)
	}
}

// Timers returns the number of armed timers, so tests can wait until an actor armed one.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// TimersWithin returns the number of armed timers due within d of the fake time, so tests can
// wait for one timer (a 9 s keep-alive) when others (an hour's idle countdown) may be armed too.
func (c *FakeClock) TimersWithin(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for t := range c.timers {
		if !t.when.After(c.now.Add(d)) {
			n++
		}
	}
	return n
}

// NewTimer returns a timer firing d after the current fake time.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc returns a timer that calls f on its own goroutine when Advance reaches d after the
// current fake time.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{c: c, fn: f}
	t.Reset(d)
	return t
}

type fakeTimer struct {
	c    *FakeClock
	ch   chan time.Time // nil for an AfterFunc timer
	fn   func()         // an AfterFunc timer's function
	when time.Time
}

// fire delivers a tick: the function on its own goroutine, or a non-blocking send.
func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.ch <- now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	delete(t.c.timers, t)
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) {
	select { // a stale tick is discarded, as time.Timer.Reset does since Go 1.23
	case <-t.ch:
	default:
	}
	t.c.mu.Lock()
	t.when = t.c.now.Add(d)
	armed := d > 0
	if armed {
		t.c.timers[t] = struct{}{}
	}
	now := t.c.now
	t.c.mu.Unlock()
	if !armed {
		t.fire(now)
	}
}
