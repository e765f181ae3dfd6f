package session

import (
	"time"

	"github.com/ysync/ysync/shareddoc"
)

// keepaliveTicks is how many wheel ticks make one ping period. A session's pings go out between
// period−period/keepaliveTicks and period apart (never later than the period, so a pong can
// still come back before the read deadline).
const keepaliveTicks = 10

// keepalive pings every session that shares a clock and a ping period from one goroutine, instead
// of one timer and one goroutine per session: an idle session costs its reader and nothing else
// (docs/load.md). On a tick it marks the sessions whose ping is due; each session's writer,
// started for it if none runs, sends the ping (Client.requestPing). It keeps the next ping per
// session (wheel.go).
//
// The goroutine runs while at least one session is registered. The last session to leave stops
// it and waits for it, so no session's Run returns while it still runs.
type keepalive = wheel[*Client, time.Time]

// keepalives holds the running wheels by clock and period. A clock whose type is not comparable
// (cannot be a map key) gets a wheel of its own per session.
var keepalives = wheels[*Client, time.Time]{m: make(map[wheelKey]*keepalive)}

// joinKeepalive registers c for pings every period on clock and returns its wheel.
func joinKeepalive(c *Client, clock shareddoc.Clock, period time.Duration) *keepalive {
	tick := max(period/keepaliveTicks, time.Millisecond)
	return keepalives.join(clock, period, tick, c, clock.Now().Add(period), keepaliveTick)
}

// keepaliveTick makes k's work on each tick: mark the sessions whose ping is due.
func keepaliveTick(k *keepalive) func(now time.Time) {
	var ping []*Client
	return func(now time.Time) {
		period := k.key.period
		ping = ping[:0]
		wall := time.Now() // socket deadlines are the wall clock's
		k.mu.Lock()
		for c, due := range k.members {
			c.interruptLinger(wall) // a busy reader quiet for parkAfter parks (park_linux.go)
			// Early rather than late: the next tick may be a whole tick away.
			if !due.After(now.Add(k.tick)) {
				ping = append(ping, c)
				k.members[c] = now.Add(period)
			}
		}
		k.mu.Unlock()
		for _, c := range ping {
			c.requestPing()
		}
		clear(ping)
	}
}
