package session

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// Inline delivery: a frame for a session with nothing queued and no writer running is written
// at once on the caller's goroutine (the document's) with one non-blocking writev, instead of
// starting a writer goroutine for it. Under steady editing nearly every delivery is of this kind
// (one frame per peer per update), and starting a goroutine on a machine with idle cores wakes
// another thread per delivery: that wake-up, not the write, was most of the CPU a delivery cost.
//
// The attempt never waits: a socket without room takes nothing (the frame is queued for a writer
// as before) or part of the frame; the rest is then the first thing the writer sends
// (c.partial), before any other frame, ping, pong or close. That is only sound if nothing else
// writes to the socket meanwhile, so a session on the inline path routes gorilla's own control
// answers through its writer too: pongs (pingHandler) and the answer to the peer's close
// (closeHandler). What remains outside is gorilla's close on a protocol error or an oversized
// frame, written by the reader as it fails: a peer that sent garbage while its socket was full
// can get a garbled close frame, and is closed either way.

// inlineOKLocked reports whether a frame may be written inline now; c.mu must be held.
func (c *Client) inlineOKLocked() bool {
	return c.inline && c.started && !c.closed && !c.writing && len(c.queue) == 0 && !c.pingDue &&
		c.pong == nil && c.partial == nil
}

// sendInline writes frame with one non-blocking writev; c.mu is held on entry and on return,
// released for the write. It reports false when nothing was written (the caller queues frame).
func (c *Client) sendInline(frame []byte) bool {
	c.writing = true // no writer starts while this write runs
	c.mu.Unlock()
	n, err := c.wv.tryWrite(frame)
	c.mu.Lock()
	total := len(c.wv.one) + len(frame) // the header tryWrite wrote, and the payload
	switch {
	case err != nil:
		// Broken: keep writing set, so no writer writes to the socket again, and close.
		c.mu.Unlock()
		c.log.Debug("write failed", "err", err)
		c.close(DisconnectBroken)
		_ = c.conn.Close()
		c.mu.Lock()
		return true
	case n == 0:
		c.writing = false
		return false
	case n < total:
		c.partial = c.wv.rest(frame, n) // counted below: the writer finishes it first
		c.inlineParts++
	default:
		c.inlineWrites++
	}
	c.cfg.Stats.MessagesOut.Add(1)
	c.cfg.Stats.BytesOut.Add(int64(len(frame)))
	c.writing = false
	if c.partial != nil || len(c.queue) > 0 || c.pingDue || c.pong != nil || c.closed {
		c.startWriterLocked()
	}
	return true
}

// tryWrite writes the frame (header and payload) with one writev on the socket without waiting,
// and returns how many bytes went out: 0 when the socket has no room (or a deadline already
// passed: the writer then does it under a fresh deadline).
func (w *batchWriter) tryWrite(frame []byte) (int, error) {
	if w.rc == nil {
		rc, err := w.tcp.SyscallConn()
		if err != nil {
			return 0, nil
		}
		w.rc = rc
	}
	w.one = appendHeader(w.one[:0], len(frame))
	w.iov = [2][]byte{w.one, frame}
	if w.attempt == nil {
		w.attempt = w.writevOnce // once: a method value made per call would allocate
	}
	err := w.rc.Write(w.attempt)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The last writer's deadline passed long ago; a write that never waits needs none.
		if err = w.tcp.SetWriteDeadline(time.Time{}); err == nil {
			err = w.rc.Write(w.attempt)
		}
	}
	n, werr := w.n, w.werr
	w.iov = [2][]byte{} // the frame is shared: keep none alive
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		return 0, err
	}
	switch {
	case werr == unix.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, &net.OpError{Op: "writev", Net: "tcp", Err: werr}
	}
	return n, nil
}

// writevOnce is tryWrite's one attempt, run by the socket's RawConn with its write lock held.
func (w *batchWriter) writevOnce(fd uintptr) bool {
	for {
		w.n, w.werr = unix.Writev(int(fd), w.iov[:])
		if w.werr != unix.EINTR {
			break
		}
	}
	return true // never wait: what did not fit goes to the writer
}

// rest returns what is left of the frame after its first n bytes (header included) went out.
func (w *batchWriter) rest(frame []byte, n int) [][]byte {
	h := len(w.one)
	if n < h {
		return [][]byte{append([]byte(nil), w.one[n:]...), frame}
	}
	return [][]byte{frame[n-h:]}
}

// writePartial finishes a frame the inline path left half-written, under a fresh deadline.
func (c *Client) writePartial(rest [][]byte) error {
	if err := c.wv.tcp.SetWriteDeadline(time.Now().Add(c.cfg.WriteWait)); err != nil {
		return err
	}
	nb := net.Buffers(rest)
	_, err := nb.WriteTo(c.wv.tcp)
	return err
}

// takePartialLocked returns the rest of a half-written frame, if any; c.mu must be held.
func (c *Client) takePartialLocked() [][]byte {
	p := c.partial
	c.partial = nil
	return p
}

// pingHandler answers the peer's ping from the writer instead of the reader (see above).
func (c *Client) pingHandler(extend func()) func(string) error {
	return func(data string) error {
		extend()
		c.mu.Lock()
		if !c.closed {
			c.pong = []byte(data)
			c.startWriterLocked()
		}
		c.mu.Unlock()
		return nil
	}
}

// closeHandler keeps the answer to the peer's close for the writer (finishClose) instead of
// writing it from the reader, as gorilla's default handler does.
func (c *Client) closeHandler(code int, _ string) error {
	msg := []byte{}
	if code != websocket.CloseNoStatusReceived {
		msg = websocket.FormatCloseMessage(code, "")
	}
	c.mu.Lock()
	c.closeReply = msg
	c.mu.Unlock()
	return nil
}
