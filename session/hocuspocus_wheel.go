package session

import (
	"time"
)

// hpWheel runs HPSocket.housekeep for every socket of one clock and tick from one goroutine, as
// keepalive.go does for y-websocket sessions: no goroutine or timer per idle socket. It runs
// while a socket is registered; the last one to leave stops it and waits for it (wheel.go).
type hpWheel = wheel[*HPSocket, struct{}]

var hpWheels = wheels[*HPSocket, struct{}]{m: make(map[wheelKey]*hpWheel)}

// hpTick is a socket's housekeeping period: a tenth of the shorter of its keep-alive and ping
// periods (so neither is late by more than that), at most a second (token refresh and expiry
// are checked that often) and at least a millisecond.
func hpTick(cfg HPConfig) time.Duration {
	return min(max(min(cfg.Keepalive, pingPeriod(cfg.PongWait))/10, time.Millisecond), time.Second)
}

func joinHPWheel(s *HPSocket) *hpWheel {
	tick := hpTick(s.cfg)
	return hpWheels.join(s.cfg.Clock, tick, tick, s, struct{}{}, hpWheelTick)
}

// hpWheelTick makes w's work on each tick: housekeep every socket, outside the wheel's lock.
func hpWheelTick(w *hpWheel) func(now time.Time) {
	var socks []*HPSocket
	return func(now time.Time) {
		socks = socks[:0]
		w.mu.Lock()
		for s := range w.members {
			socks = append(socks, s)
		}
		w.mu.Unlock()
		wall := time.Now() // socket deadlines are the wall clock's
		for _, s := range socks {
			s.interruptLinger(wall) // a busy reader quiet for parkAfter parks (park_linux.go)
			s.housekeep(now)
		}
		clear(socks)
	}
}
