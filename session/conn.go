package session

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// connCore is the part of a connection that a y-websocket Client and a Hocuspocus HPSocket share:
// the socket, how it was closed, and the writer's data-frame writes and close frame. Both embed
// it; what differs (the queue, the inline path, parking, documents) stays with each.
type connCore struct {
	conn Conn
	conf *Config // the owner's configuration (Client.cfg, HPSocket.cfg.Config)
	log  *slog.Logger

	// mu guards closed and disc here, and the owner's own fields it says are under mu.
	mu     sync.Mutex
	closed bool
	disc   Disconnect

	wv         batchWriter   // the writer's writev scratch (writev.go); used by one writer at a time
	closing    chan struct{} // closed by close
	readerDone chan struct{}
}

// initCore sets what New and NewHPSocket give a connection.
func (k *connCore) initCore(conn Conn, conf *Config, log *slog.Logger) {
	k.conn, k.conf, k.log = conn, conf, log
	k.closing = make(chan struct{})
	k.readerDone = make(chan struct{})
}

// disconnect returns how the connection was closed (zero while open).
func (k *connCore) disconnect() Disconnect {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.disc
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

// writeFailed ends the writer after a failed write; closeConn is the owner's close. The writer
// still counts as running (the close below starts none), so nothing writes to the broken socket
// again.
func (k *connCore) writeFailed(err error, closeConn func(Disconnect)) {
	k.log.Debug("write failed", "err", err)
	closeConn(DisconnectBroken)
	_ = k.conn.Close()
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
