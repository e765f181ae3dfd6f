package session

import (
	"context"
	"sync"

	"github.com/ysync/ysync/shareddoc"
)

// readGate stops a connection's reader while a document holds the connection's updates for the
// storage backlog (shareddoc.Pauser; shareddoc/backlog.go). The reader then does not read the
// socket, so the client's sends back up in TCP, as they do behind the rate limiter (limits.go).
// Pauses are counted: a Hocuspocus socket stays paused while any of its documents paused it.
// Pause and Resume are called from documents' goroutines and only take the gate's mutex.
type readGate struct {
	mu     sync.Mutex
	paused int
	open   chan struct{} // closed by the Resume that ends a pause; nil while not paused
}

func (g *readGate) pause() {
	g.mu.Lock()
	if g.paused == 0 {
		g.open = make(chan struct{})
	}
	g.paused++
	g.mu.Unlock()
}

func (g *readGate) resume() {
	g.mu.Lock()
	if g.paused > 0 {
		g.paused--
		if g.paused == 0 {
			close(g.open)
			g.open = nil
		}
	}
	g.mu.Unlock()
}

// wait blocks while the gate is paused, until it opens, closing is closed or ctx ends. waited
// reports whether it blocked; ok is false when the reader must stop.
func (g *readGate) wait(ctx context.Context, closing <-chan struct{}) (waited, ok bool) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if open == nil {
		return false, true
	}
	select {
	case <-open:
		return true, true
	case <-closing:
		return true, false
	case <-ctx.Done():
		return true, false
	}
}

// Pause implements shareddoc.Pauser: the reader stops before its next read.
func (c *Client) Pause() { c.gate.pause() }

// Resume implements shareddoc.Pauser.
func (c *Client) Resume() { c.gate.resume() }

// waitReadable runs on the reader (of either kind of connection) before each read: it waits
// while a document paused the connection, and reports false when the connection is closing
// (closing it with DisconnectGoingAway when ctx ended). The pong handler only runs inside a
// read, so after a pause the read deadline is pushed out again: pongs that arrived meanwhile
// are still unread in the socket.
func (k *connCore) waitReadable(ctx context.Context) bool {
	waited, ok := k.gate.wait(ctx, k.closing)
	if !ok {
		if ctx.Err() != nil {
			k.close(DisconnectGoingAway)
		}
		return false
	}
	if waited {
		k.extendDeadline() // also for a parked reader's timer (park.go)
	}
	return true
}

// Pause implements shareddoc.Pauser: the socket's reader stops before its next read, for every
// document of the socket, until each document that paused it resumed it.
func (h *HPSession) Pause() { h.s.gate.pause() }

// Resume implements shareddoc.Pauser.
func (h *HPSession) Resume() { h.s.gate.resume() }

var (
	_ shareddoc.Pauser = (*Client)(nil)
	_ shareddoc.Pauser = (*HPSession)(nil)
)
