package session

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
)

// connCore is the part of a connection that a y-websocket Client and a Hocuspocus HPSocket share:
// the socket, how it was closed, and the writer's data-frame writes and close frame. Both embed
// it; what differs (the queue, the inline path, parking, documents) stays with each.
type connCore struct {
	conn  Conn
	conf  *Config // the owner's configuration (Client.cfg, HPSocket.cfg.Config)
	log   *slog.Logger
	owner connOwner // the Client or HPSocket this is part of (serveReads)

	// mu guards closed, disc, started and writing here, and the owner's own fields it says are
	// under mu.
	mu     sync.Mutex
	closed bool
	disc   Disconnect
	// started: the Client joined its document, or the HPSocket's Run started; writers may start.
	// writing: a writer runs (or ran the close, after which none starts again). Both under mu;
	// see startWriterLocked.
	started bool
	writing bool
	writers sync.WaitGroup
	writeFn func() // the owner's writeLoop, made once (allowWritersLocked)

	gate       readGate      // the reader's pause by the documents (backlog.go)
	wv         batchWriter   // the writer's writev scratch (writev.go); used by one writer at a time
	closing    chan struct{} // closed by close
	readerDone chan struct{}

	// pk is the reader's parking state (park.go): both kinds of connection park their reader
	// between messages the same way, on the one poller.
	pk parkState
}

// connOwner is what differs between the connections (a Client, a HPSocket) for their shared
// reader's course (serveReads): readLoop reads and handles messages until the connection ends
// (false) or the reader parks (true, park.go); finish ends the connection once the reader
// stopped for good.
type connOwner interface {
	readLoop() (parked bool)
	finish()
}

// initCore sets what New and NewHPSocket give a connection.
func (k *connCore) initCore(conn Conn, conf *Config, log *slog.Logger, owner connOwner) {
	k.conn, k.conf, k.log, k.owner = conn, conf, log, owner
	k.closing = make(chan struct{})
	k.readerDone = make(chan struct{})
}

// serveReads reads until the reader parks or the connection ends; in the latter case it
// finishes the connection. It runs on Serve's goroutine and then on each goroutine that resumes
// a parked reader (resumeReads), never on two at once.
func (k *connCore) serveReads() {
	if k.owner.readLoop() {
		return // parked: a wake-up resumes it on a new goroutine (park.go)
	}
	k.owner.finish()
}

// disconnect returns how the connection was closed (zero while open).
func (k *connCore) disconnect() Disconnect {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.disc
}

// allowWritersLocked lets writers start from now on, each running loop, the owner's writeLoop;
// mu must be held. loop is made once, here: go c.writeLoop() would allocate its closure per
// start.
func (k *connCore) allowWritersLocked(loop func()) {
	k.started = true
	k.writeFn = loop
}

// startWriterLocked starts a writer unless one runs; mu must be held. There is no writer
// goroutine while a session has nothing to send: one starts when a frame is queued, a ping is
// due or the session closes, and ends when it finds nothing left (writeLoop). The writing flag
// keeps it to one writer at a time, as gorilla requires. Writers start only between join and
// close: after close, only the writer doing the close runs, so Run's wait for writers cannot
// race with a new one.
func (k *connCore) startWriterLocked() {
	if !k.started || k.writing {
		return
	}
	k.writing = true
	k.writers.Add(1)
	go k.writeFn()
}

// close is the one way a connection ends: idempotent, never blocks. It records d and starts the
// writer, which does the rest (flush unless the row says not to, close frame, socket close),
// closes closing and wakes a parked reader, which reads on to see the peer's answer or the
// socket's end (park.go; wake does nothing to a reader that is not parked).
func (k *connCore) close(d Disconnect) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	k.disc = d
	k.startWriterLocked() // the writer does the rest
	k.mu.Unlock()
	k.log.Debug("closing", "code", int(d.Code), "reason", d.Reason)
	close(k.closing)
	k.wake()
}

// isClosing reports whether the connection is closing already.
func (k *connCore) isClosing() bool {
	select {
	case <-k.closing:
		return true
	default:
		return false
	}
}

// extendDeadline gives the peer another PongWait to say something (a message, a pong). It
// runs on the reader only; the deadline is also kept in pk for a parked reader's timer.
func (k *connCore) extendDeadline() {
	t := time.Now().Add(k.conf.PongWait)
	k.pk.deadline = t.UnixNano()
	_ = k.conn.SetReadDeadline(t)
}

// write sends frames in batches of one writev each over a TCP connection (writev.go), else one
// WriteMessage each. Before each batch or frame it stops if the connection is closing and its
// row does not flush.
func (k *connCore) write(frames [][]byte) error {
	if !k.wv.raw(k.conn) {
		return k.writeEach(frames)
	}
	return k.wv.writeAll(frames, k.closing, k.disconnect, k.conf.WriteWait, k.conf.Stats)
}

// writeEach sends frames with gorilla's WriteMessage, one at a time.
func (k *connCore) writeEach(frames [][]byte) error {
	for _, f := range frames {
		select {
		case <-k.closing:
			// Closing: the close path decides whether the rest is still delivered.
			if !k.disconnect().Flush {
				return nil
			}
		default:
		}
		_ = k.conn.SetWriteDeadline(time.Now().Add(k.conf.WriteWait))
		if err := k.conn.WriteMessage(websocket.BinaryMessage, f); err != nil {
			return err
		}
		k.conf.Stats.MessagesOut.Add(1)
		k.conf.Stats.BytesOut.Add(int64(len(f)))
	}
	return nil
}

// writeFailed ends the writer after a failed write. The writer still counts as running (the
// close below starts none), so nothing writes to the broken socket again.
func (k *connCore) writeFailed(err error) {
	k.log.Debug("write failed", "err", err)
	k.close(DisconnectBroken)
	_ = k.conn.Close()
}

// badInput closes the connection with d for input it cannot take.
func (k *connCore) badInput(d Disconnect, err error) {
	k.conf.Stats.BadDataClose.Add(1)
	k.log.Warn("closing on bad input", "code", int(d.Code), "err", err)
	k.close(d)
}

// undecodable is badInput for a frame that did not decode: an unknown message type is
// unsupported, anything else malformed.
func (k *connCore) undecodable(err error) {
	if errors.Is(err, syncproto.ErrUnknownType) {
		k.badInput(DisconnectUnsupported, err)
	} else {
		k.badInput(DisconnectBadData, err)
	}
}

// readFailed closes the connection after a failed read, with the row for why it failed.
func (k *connCore) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		k.conf.Stats.BadDataClose.Add(1)
		k.log.Warn("message over read limit", "limit", k.conf.ReadLimit)
		// gorilla already sent 1009 when it hit the limit; finishClose sees ErrCloseSent and
		// still drains the rest of the oversized frame before closing the socket.
		k.close(DisconnectTooBig)
	case errors.As(err, &ce):
		k.close(DisconnectPeerClosed)
	default:
		k.close(DisconnectBroken)
	}
}

// closeFrame is the end of the close path on the writer, after the flush: the close frame
// unless the row says none, then a brief wait for the reader to see the peer's answer, then the
// socket's close.
func (k *connCore) closeFrame(d Disconnect) {
	if !d.NoCloseFrame {
		msg := websocket.FormatCloseMessage(int(d.Code), d.Reason)
		// ErrCloseSent: gorilla already sent one itself (it answers an oversized frame with 1009).
		err := k.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(k.conf.WriteWait))
		if err == nil || errors.Is(err, websocket.ErrCloseSent) {
			deadline := time.Now().Add(closeGrace)
			t := time.NewTimer(closeGrace)
			select {
			case <-k.readerDone:
				drainUntilClosed(k.conn, deadline)
			case <-t.C:
			}
			t.Stop()
		}
	}
	_ = k.conn.Close()
}
