package session

import (
	"encoding/binary"
	"net"
	"syscall"
	"time"

	"github.com/ysync/ysync/limits"
)

// batchWriter sends a batch of binary messages in one writev: WebSocket frame headers written
// here into a reused scratch, each followed by the shared frame bytes themselves (never copied),
// all in one net.Buffers over the connection's *net.TCPConn. gorilla's WriteMessage would copy
// every frame into its write buffer and make one write call per frame.
//
// Why a raw write beside gorilla's is safe:
//   - Bytes never interleave. The only other writes on the socket while the writer runs are
//     gorilla's WriteControl calls from the reader (pong replies, the close answering a peer's
//     close or a protocol error) and the keep-alive's ping, which this writer sends itself. Each
//     WriteControl is one Write of one whole frame, and each batch here is one Writev; Go's
//     poll.FD holds the socket's write lock for the whole of either call, looping over short
//     writes inside it, so one cannot land in the middle of the other.
//   - Messages stay whole: gorilla never has a message open between the writer's calls (the
//     writer is the only one writing data messages, and WriteMessage finishes its message).
//   - Frames are what gorilla would send for them: servers do not mask, and the Upgrader
//     negotiates no compression (server.go leaves EnableCompression off; an uncompressed frame
//     would be valid anyway, RFC 7692 §6).
//   - What it does not see is gorilla's "close sent" state: a close frame gorilla writes from the
//     reader (answering the peer's close, or a protocol error) can be followed by the rest of a
//     batch that was already being written. The reader closes the session right after, and the
//     close path (finishClose) writes through gorilla, which refuses data after a close.
//   - The socket's write deadline is shared: a WriteControl sets it for its own write (gorilla's
//     pong answers use one second) and so also shortens a batch blocked on a full socket buffer
//     at that moment; such a peer pings while not reading, and is closed as broken as any write
//     timeout would.
//   - A y-websocket session (Client) goes further (inline.go): its pongs and its answer to the
//     peer's close are written by its own writer, so of the list above only gorilla's close on
//     a protocol error or an oversized frame comes from the reader. Hocuspocus sockets keep
//     gorilla's handlers.
//
// TLS connections (a *tls.Conn under gorilla) and test fakes have no *net.TCPConn: they keep
// gorilla's WriteMessage (raw reports false).
type batchWriter struct {
	tcp  *net.TCPConn
	init bool
	hdr  []byte          // frame headers of the current batch, maxHeaderLen each
	bufs [][]byte        // header, frame, header, frame, ...
	nb   net.Buffers     // what WriteTo consumes; a field so that passing it does not allocate
	rc   syscall.RawConn // the socket, for the inline path's non-blocking writev (inline.go)
	one  []byte          // the inline frame's header
	// tryWrite's attempt and its in and out values (inline.go).
	iov     [2][]byte
	attempt func(fd uintptr) bool
	n       int
	werr    error
}

const (
	maxHeaderLen = 10 // 2 bytes, plus 8 for a 64-bit length
	// maxBatchBytes bounds the bytes of one writev after its first frame, so that one batch
	// under WriteWait stays comparable to one frame under it (as before batching); the next
	// batch gets a fresh deadline.
	maxBatchBytes = 1 << 20
	// maxKeptFrames bounds the scratch kept between batches: a burst's scratch is dropped.
	maxKeptFrames = 256
)

// tcpConnOf returns the *net.TCPConn a session writes to, or nil when it has none (TLS, a fake).
func tcpConnOf(conn Conn) *net.TCPConn {
	u, ok := conn.(interface{ UnderlyingConn() net.Conn })
	if !ok {
		return nil
	}
	nc := u.UnderlyingConn()
	for range 4 {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c
		case *limits.Conn: // the connection-counting listener's wrapper (server/httpguard.go)
			nc = c.Conn
		default:
			return nil // a *tls.Conn must not be bypassed
		}
	}
	return nil
}

// raw reports whether batches go out with writev; the first call looks at the connection.
func (w *batchWriter) raw(conn Conn) bool {
	if !w.init {
		w.init = true
		w.tcp = tcpConnOf(conn)
	}
	return w.tcp != nil
}

// appendHeader appends the header of an unmasked, final binary frame of n payload bytes.
func appendHeader(dst []byte, n int) []byte {
	const finBinary = 0x80 | 0x2
	switch {
	case n < 126:
		return append(dst, finBinary, byte(n))
	case n <= 0xffff:
		return append(dst, finBinary, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, finBinary, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// batchLen returns how many of frames (at least one) go into the next batch.
func batchLen(frames [][]byte) int {
	n, size := 1, len(frames[0])
	for n < len(frames) && size+len(frames[n]) <= maxBatchBytes {
		size += len(frames[n])
		n++
	}
	return n
}

// writeAll writes frames in batches of one writev each, each with its own write deadline
// (wait from now). Before each batch it stops if closing is closed and disc's row does not
// flush, as a frame-by-frame writer does before each frame.
func (w *batchWriter) writeAll(frames [][]byte, closing <-chan struct{}, disc func() Disconnect, wait time.Duration, st *Stats) error {
	for len(frames) > 0 {
		select {
		case <-closing:
			if !disc().Flush {
				return nil
			}
		default:
		}
		n := batchLen(frames)
		size, err := w.writeBatch(frames[:n], time.Now().Add(wait))
		if err != nil {
			return err
		}
		st.MessagesOut.Add(int64(n))
		st.BytesOut.Add(int64(size))
		frames = frames[n:]
	}
	return nil
}

// writeBatch writes frames in one writev with the deadline and returns the payload bytes sent.
func (w *batchWriter) writeBatch(frames [][]byte, deadline time.Time) (int, error) {
	if need := maxHeaderLen * len(frames); cap(w.hdr) < need {
		w.hdr = make([]byte, 0, need)
	}
	if cap(w.bufs) < 2*len(frames) {
		w.bufs = make([][]byte, 0, 2*len(frames))
	}
	hdr, bufs, size := w.hdr[:0], w.bufs[:0], 0
	for _, f := range frames {
		start := len(hdr)
		hdr = appendHeader(hdr, len(f)) // within capacity: the slices below stay valid
		bufs = append(bufs, hdr[start:], f)
		size += len(f)
	}
	if err := w.tcp.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	w.nb = bufs
	_, err := w.nb.WriteTo(w.tcp)
	w.nb = nil
	clear(bufs) // the frames are shared: keep none alive from here
	if len(frames) > maxKeptFrames {
		w.hdr, w.bufs = nil, nil
	} else {
		w.hdr, w.bufs = hdr[:0], bufs[:0]
	}
	if err != nil {
		return 0, err
	}
	return size, nil
}
