package session

import (
	"reflect"
	"sync"
	"time"

	"github.com/ysync/ysync/shareddoc"
)

// hpWheel runs HPSocket.housekeep for every socket of one clock and tick from one goroutine, as
// keepalive.go does for y-websocket sessions: no goroutine or timer per idle socket. It runs
// while a socket is registered; the last one to leave stops it and waits for it.
type hpWheel struct {
	key   hpWheelKey
	clock shareddoc.Clock
	tick  time.Duration

	mu    sync.Mutex
	socks map[*HPSocket]struct{}

	stop chan struct{}
	done chan struct{}
}

type hpWheelKey struct {
	clock shareddoc.Clock
	tick  time.Duration
}

var hpWheels = struct {
	mu sync.Mutex
	m  map[hpWheelKey]*hpWheel
}{m: make(map[hpWheelKey]*hpWheel)}

// hpTick is a socket's housekeeping period: a tenth of the shorter of its keep-alive and ping
// periods (so neither is late by more than that), at most a second (token refresh and expiry
// are checked that often) and at least a millisecond.
func hpTick(cfg HPConfig) time.Duration {
	return min(max(min(cfg.Keepalive, pingPeriod(cfg.PongWait))/10, time.Millisecond), time.Second)
}

func joinHPWheel(s *HPSocket) *hpWheel {
	clock, tick := s.cfg.Clock, hpTick(s.cfg)
	shared := reflect.TypeOf(clock).Comparable()
	key := hpWheelKey{tick: tick}
	if shared {
		key.clock = clock
	}
	hpWheels.mu.Lock()
	defer hpWheels.mu.Unlock()
	w := hpWheels.m[key]
	if w == nil || !shared {
		w = &hpWheel{key: key, clock: clock, tick: tick, socks: make(map[*HPSocket]struct{}), stop: make(chan struct{}), done: make(chan struct{})}
		if shared {
			hpWheels.m[key] = w
		}
		t := clock.NewTimer(tick) // armed before the socket registers, so a fake clock sees it
		go w.run(t)
	}
	w.mu.Lock()
	w.socks[s] = struct{}{}
	w.mu.Unlock()
	return w
}

func (w *hpWheel) leave(s *HPSocket) {
	hpWheels.mu.Lock()
	w.mu.Lock()
	delete(w.socks, s)
	last := len(w.socks) == 0
	w.mu.Unlock()
	if last {
		if hpWheels.m[w.key] == w {
			delete(hpWheels.m, w.key)
		}
		close(w.stop)
	}
	hpWheels.mu.Unlock()
	if last {
		<-w.done
	}
}

func (w *hpWheel) run(t shareddoc.Timer) {
	defer close(w.done)
	defer t.Stop()
	var socks []*HPSocket
	for {
		select {
		case <-t.C():
		case <-w.stop:
			return
		}
		t.Reset(w.tick)
		now := w.clock.Now()
		socks = socks[:0]
		w.mu.Lock()
		for s := range w.socks {
			socks = append(socks, s)
		}
		w.mu.Unlock()
		for _, s := range socks {
			s.housekeep(now)
		}
		clear(socks)
	}
}
