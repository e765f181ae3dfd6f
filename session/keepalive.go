package session

import (
	"reflect"
	"sync"
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
// started for it if none runs, sends the ping (Client.requestPing).
//
// The goroutine runs while at least one session is registered. The last session to leave stops
// it and waits for it, so no session's Run returns while it still runs.
type keepalive struct {
	key    keepaliveKey
	clock  shareddoc.Clock
	period time.Duration
	tick   time.Duration

	mu  sync.Mutex
	due map[*Client]time.Time // next ping per session

	stop chan struct{}
	done chan struct{}
}

type keepaliveKey struct {
	clock  shareddoc.Clock
	period time.Duration
}

// keepalives holds the running wheels by clock and period. A clock whose type is not comparable
// (cannot be a map key) gets a wheel of its own per session.
var keepalives = struct {
	mu sync.Mutex
	m  map[keepaliveKey]*keepalive
}{m: make(map[keepaliveKey]*keepalive)}

// joinKeepalive registers c for pings every period on clock and returns its wheel.
func joinKeepalive(c *Client, clock shareddoc.Clock, period time.Duration) *keepalive {
	shared := reflect.TypeOf(clock).Comparable()
	key := keepaliveKey{period: period}
	if shared {
		key.clock = clock
	}
	keepalives.mu.Lock()
	defer keepalives.mu.Unlock()
	k := keepalives.m[key]
	if k == nil || !shared {
		k = &keepalive{
			key:    key,
			clock:  clock,
			period: period,
			tick:   max(period/keepaliveTicks, time.Millisecond),
			due:    make(map[*Client]time.Time),
			stop:   make(chan struct{}),
			done:   make(chan struct{}),
		}
		if shared {
			keepalives.m[key] = k
		}
		// Armed before the first session is registered, so a test's fake clock sees it.
		t := clock.NewTimer(k.tick)
		go k.run(t)
	}
	k.mu.Lock()
	k.due[c] = clock.Now().Add(period)
	k.mu.Unlock()
	return k
}

// leave unregisters c; the last session stops the wheel and waits for its goroutine.
func (k *keepalive) leave(c *Client) {
	keepalives.mu.Lock()
	k.mu.Lock()
	delete(k.due, c)
	last := len(k.due) == 0
	k.mu.Unlock()
	if last {
		if keepalives.m[k.key] == k {
			delete(keepalives.m, k.key)
		}
		close(k.stop)
	}
	keepalives.mu.Unlock()
	if last {
		<-k.done
	}
}

func (k *keepalive) run(t shareddoc.Timer) {
	defer close(k.done)
	defer t.Stop()
	var ping []*Client
	for {
		select {
		case <-t.C():
		case <-k.stop:
			return
		}
		t.Reset(k.tick) // re-armed before pinging: a fake clock advanced right after sees it
		now := k.clock.Now()
		ping = ping[:0]
		wall := time.Now() // socket deadlines are the wall clock's
		k.mu.Lock()
		for c, due := range k.due {
			c.interruptLinger(wall) // a busy reader quiet for parkAfter parks (park_linux.go)
			// Early rather than late: the next tick may be a whole tick away.
			if !due.After(now.Add(k.tick)) {
				ping = append(ping, c)
				k.due[c] = now.Add(k.period)
			}
		}
		k.mu.Unlock()
		for _, c := range ping {
			c.requestPing()
		}
		clear(ping)
	}
}
