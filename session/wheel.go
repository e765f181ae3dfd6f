package session

import (
	"reflect"
	"sync"
	"time"

	"github.com/ysync/ysync/shareddoc"
)

// wheel is one goroutine that serves, every tick, all members (M) that share a clock and a
// period, instead of one timer and one goroutine per member: the y-websocket sessions' keep-alive
// (keepalive.go) and the Hocuspocus sockets' housekeeping (hocuspocus_wheel.go). V is what the
// wheel keeps per member.
//
// The goroutine runs while at least one member is registered. The last member to leave stops it
// and waits for it, so no member's Run returns while it still runs.
type wheel[M comparable, V any] struct {
	set   *wheels[M, V]
	key   wheelKey
	clock shareddoc.Clock
	tick  time.Duration

	mu      sync.Mutex
	members map[M]V

	stop chan struct{}
	done chan struct{}
}

// wheelKey is what the members of a wheel share: their clock (nil when it is not shared, see
// wheels) and their period (the ping period; the housekeeping tick).
type wheelKey struct {
	clock  shareddoc.Clock
	period time.Duration
}

// wheels holds the running wheels of one kind by clock and period. A clock whose type is not
// comparable (cannot be a map key) gets a wheel of its own per member.
type wheels[M comparable, V any] struct {
	mu sync.Mutex
	m  map[wheelKey]*wheel[M, V]
}

// join registers m, with its value v, on the wheel of clock and period and returns that wheel. A
// new wheel ticks every tick and calls, on its goroutine, the
// function newTick made for it.
func (ws *wheels[M, V]) join(clock shareddoc.Clock, period, tick time.Duration, m M, v V, newTick func(*wheel[M, V]) func(now time.Time)) *wheel[M, V] {
	shared := reflect.TypeOf(clock).Comparable()
	key := wheelKey{period: period}
	if shared {
		key.clock = clock
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[key]
	if w == nil || !shared {
		w = &wheel[M, V]{
			set:     ws,
			key:     key,
			clock:   clock,
			tick:    tick,
			members: make(map[M]V),
			stop:    make(chan struct{}),
			done:    make(chan struct{}),
		}
		if shared {
			ws.m[key] = w
		}
		// Armed before the first member is registered, so a test's fake clock sees it.
		t := clock.NewTimer(tick)
		go w.run(t, newTick(w))
	}
	w.mu.Lock()
	w.members[m] = v
	w.mu.Unlock()
	return w
}

// leave unregisters m; the last member stops the wheel and waits for its goroutine.
func (w *wheel[M, V]) leave(m M) {
	ws := w.set
	ws.mu.Lock()
	w.mu.Lock()
	delete(w.members, m)
	last := len(w.members) == 0
	w.mu.Unlock()
	if last {
		if ws.m[w.key] == w {
			delete(ws.m, w.key)
		}
		close(w.stop)
	}
	ws.mu.Unlock()
	if last {
		<-w.done
	}
}

// run is the wheel's goroutine: onTick every tick, until the last member left.
func (w *wheel[M, V]) run(t shareddoc.Timer, onTick func(now time.Time)) {
	defer close(w.done)
	defer t.Stop()
	for {
		select {
		case <-t.C():
		case <-w.stop:
			return
		}
		t.Reset(w.tick) // re-armed before the members' work: a fake clock advanced right after sees it
		onTick(w.clock.Now())
	}
}
