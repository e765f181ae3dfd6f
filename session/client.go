package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// Timing and size defaults. Pings go out at 9/10 of the pong wait so that a pong can come back
// before the read deadline passes.
const (
	DefaultPongWait    = 60 * time.Second
	DefaultWriteWait   = 10 * time.Second
	DefaultReadLimit   = 16 << 20
	DefaultQueueBudget = 16 << 20
	// closeGrace is how long the writer waits for the peer's answer to its close frame.
	closeGrace = time.Second
)

func pingPeriod(pongWait time.Duration) time.Duration { return pongWait * 9 / 10 }

// Conn is the part of *websocket.Conn a session uses; tests substitute a fake. Close and
// WriteControl may be called concurrently with the other methods.
type Conn interface {
	ReadMessage() (messageType int, p []byte, err error)
	WriteMessage(messageType int, data []byte) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SetReadLimit(limit int64)
	SetPongHandler(h func(appData string) error)
	SetPingHandler(h func(appData string) error)
	SetCloseHandler(h func(code int, text string) error)
	Close() error
}

// Config configures sessions. Zero values mean the defaults.
type Config struct {
	// ReadLimit is the largest message accepted. Zero means DefaultReadLimit (16 MiB).
	ReadLimit int64
	// QueueBudget bounds the bytes queued for one peer; a peer over it is closed as slow. A
	// single frame larger than the budget is still accepted into an empty queue (a big first
	// sync). Zero means DefaultQueueBudget (16 MiB).
	QueueBudget int
	// PongWait is how long the connection may stay silent (no message, no pong). Zero means
	// DefaultPongWait; pings go out at 9/10 of it.
	PongWait time.Duration
	// WriteWait bounds each write. Zero means DefaultWriteWait.
	WriteWait time.Duration
	// Clock drives the ping ticker. Nil means the wall clock. (Socket deadlines always use the
	// wall clock.)
	Clock shareddoc.Clock
	// Logger is the parent logger. Nil means discard.
	Logger *slog.Logger
	// Stats receives the counters. Nil means a private, unread Stats.
	Stats *Stats
	// Trust is the session's permission, expiry and rate limits (limits.go). The zero value is
	// a writable session without limits.
	Trust Trust
}

func (c Config) withDefaults() Config {
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.QueueBudget <= 0 {
		c.QueueBudget = DefaultQueueBudget
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	if c.WriteWait <= 0 {
		c.WriteWait = DefaultWriteWait
	}
	if c.Clock == nil {
		c.Clock = shareddoc.RealClock()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Stats == nil {
		c.Stats = new(Stats)
	}
	return c
}

// Stats are the counters of all sessions, read by /metrics.
type Stats struct {
	Connections  atomic.Int64 // open now
	MessagesIn   atomic.Int64
	MessagesOut  atomic.Int64
	BytesIn      atomic.Int64
	BytesOut     atomic.Int64
	SlowCloses   atomic.Int64
	BadDataClose atomic.Int64 // closes for malformed or unsupported input
	Trust        TrustStats   // limits.go
	// RPCLatency is the time the RPC handler took per request (rpc.go, hocuspocus_rpc.go),
	// errors included.
	RPCLatency shareddoc.Histogram
}

// Client is one WebSocket connection attached to one document.
type Client struct {
	info     shareddoc.SessionInfo
	docName  string
	cfg      Config
	connCore // conn, log, mu, closed, disc, the writers, gate, wv, closing, readerDone (conn.go)

	queue   [][]byte // under mu, as spare, queued and pingDue
	spare   [][]byte // the writer's last batch, emptied, for the next queue (recycleLocked)
	queued  int
	pingDue bool // the keep-alive asked for a ping
	// The inline path (inline.go): inline is set once the reader routes control answers
	// through the writer; partial is the rest of a frame written inline in part, pong a ping's
	// answer to send, closeReply the answer to the peer's close. All under mu.
	inline     bool
	partial    [][]byte
	pong       []byte
	closeReply []byte
	// inlineWrites and inlineParts count frames written inline whole and in part (tests).
	inlineWrites, inlineParts int
	ts                        trustState // limits.go

	rpc rpcState // the application channel (rpc.go)

	// Set by Serve for the reader, which may resume on another goroutine after parking; the
	// reader's own state (park.go).
	ctx  context.Context
	doc  *shareddoc.Doc
	done func(error)
	ka   *keepalive
}

// New returns a session for conn that will join docName. Call Run.
func New(conn Conn, docName string, info shareddoc.SessionInfo, cfg Config) *Client {
	cfg = cfg.withDefaults()
	c := &Client{
		info:    info,
		docName: docName,
		cfg:     cfg,
	}
	c.initCore(conn, &c.cfg, sessionLogger(cfg.Logger, info.ID, docName, info.User), c)
	return c
}

// Info returns the session's description.
func (c *Client) Info() shareddoc.SessionInfo { return c.info }

// Doc returns the name of the session's document.
func (c *Client) Doc() string { return c.docName }

// Send implements shareddoc.Peer: it queues frame without blocking and reports false when the
// queue would go over budget.
func (c *Client) Send(frame []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true // being closed: nothing more will be written, and that is not slowness
	}
	if c.queued > 0 && c.queued+len(frame) > c.cfg.QueueBudget {
		c.mu.Unlock()
		return false
	}
	if c.inlineOKLocked() && c.sendInline(frame) {
		c.mu.Unlock()
		return true
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.startWriterLocked()
	c.mu.Unlock()
	return true
}

// requestPing is called by the keep-alive wheel when the session's ping is due.
func (c *Client) requestPing() {
	c.mu.Lock()
	if !c.closed {
		c.pingDue = true
		c.startWriterLocked()
	}
	c.mu.Unlock()
}

// Close implements shareddoc.Peer.
func (c *Client) Close(reason shareddoc.CloseReason, err error) {
	d := ForReason(reason)
	if reason == shareddoc.CloseSlow {
		c.cfg.Stats.SlowCloses.Add(1)
	}
	if reason == shareddoc.CloseBadUpdate {
		c.cfg.Stats.BadDataClose.Add(1)
	}
	c.close(d)
}

// Kick closes the session with the given table row (admin termination, shutdown).
func (c *Client) Kick(d Disconnect) { c.close(d) }

// Disconnect returns how the session was closed (zero while open).
func (c *Client) Disconnect() Disconnect { return c.disconnect() }

// Run joins the document and serves the connection until it closes: the calling goroutine
// reads (and, with ParkWhenIdle, so do the goroutines that resume a parked reader); writers run
// only while there is something to write (startWriterLocked). It returns after the reader and
// every writer ended, the session left the document and the socket is closed.
func (c *Client) Run(ctx context.Context, reg *shareddoc.Registry) error {
	done := make(chan error, 1)
	c.Serve(ctx, reg, func(err error) { done <- err })
	return <-done
}

// Serve is Run without the wait: it joins the document and reads on the calling goroutine until
// the session ends or, with ParkWhenIdle, until the reader parks (park.go); either way done is
// called once, with what Run would return, when the session has ended as Run's return means.
// A server that calls Serve keeps no goroutine for an idle connection.
func (c *Client) Serve(ctx context.Context, reg *shareddoc.Registry, done func(error)) {
	c.cfg.Stats.Connections.Add(1)
	c.wv.raw(c.conn) // before any writer can start: the writers and the inline path read it

	doc, _, err := reg.JoinOrCreate(ctx, c.docName, shareddoc.JoinOptions{Session: c.info, Peer: c})
	if err != nil {
		d := DisconnectInternal
		switch {
		case errors.Is(err, shareddoc.ErrJoinRefused):
			d = DisconnectForbidden
		case errors.Is(err, shareddoc.ErrNotFound):
			d = DisconnectNotFound
		case errors.Is(err, shareddoc.ErrTooManyDocuments):
			d = DisconnectTooManyDocs
		case errors.Is(err, shareddoc.ErrClosed), ctx.Err() != nil:
			d = DisconnectGoingAway
		}
		c.log.Warn("join failed", "err", err)
		c.close(d)
		if c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(d.Code), d.Reason), time.Now().Add(c.cfg.WriteWait)) == nil {
			// The client's first frames are unread: closing now would reset the connection,
			// which can destroy the close frame before the client reads it, and a y-websocket
			// client that sees 1006 instead of 4404 reconnects. Wait for its answer instead.
			drainUntilClosed(c.conn, time.Now().Add(closeGrace))
		}
		_ = c.conn.Close()
		c.cfg.Stats.Connections.Add(-1)
		done(err)
		return
	}
	c.log.Debug("joined")
	c.mu.Lock()
	c.allowWritersLocked(c.writeLoop)
	if len(c.queue) > 0 || c.closed { // the document's first frames, or a Kick during the join
		c.startWriterLocked()
	}
	c.mu.Unlock()
	c.ctx, c.doc, c.done = ctx, doc, done
	c.ka = joinKeepalive(c, c.cfg.Clock, pingPeriod(c.cfg.PongWait))
	c.startWatch()
	c.startReading()
	c.serveReads()
}

// finish is the end of Serve, after the reader stopped for good.
func (c *Client) finish() {
	close(c.readerDone)
	// Every way out of readLoop closes the session already; this makes sure the close (and so
	// the end of the writers) happens.
	c.close(DisconnectBroken)
	c.ka.leave(c)
	c.doc.Leave(c.info.ID)
	c.writers.Wait()
	c.stopWatch()
	c.stopRPC()
	c.stopParking()
	c.log.Debug("closed", "code", int(c.Disconnect().Code), "reason", c.Disconnect().Reason)
	_ = c.conn.Close()
	c.cfg.Stats.Connections.Add(-1)
	done := c.done
	c.ctx, c.doc, c.done = nil, nil, nil
	done(nil)
}

// startReading sets the read limit, the first read deadline and the control-frame handlers.
func (c *Client) startReading() {
	c.conn.SetReadLimit(c.cfg.ReadLimit)
	c.extendDeadline()
	c.conn.SetPongHandler(func(string) error { c.extendDeadline(); return nil })
	if c.wv.tcp != nil { // set by Serve before the join; raw TCP: deliveries may go inline
		c.pk.ping = c.pingHandler(c.extendDeadline)
		c.conn.SetPingHandler(c.pk.ping)
		c.conn.SetCloseHandler(c.closeHandler)
		c.mu.Lock()
		c.inline = true
		c.mu.Unlock()
		c.startParking()
	}
}

// readLoop reads and handles messages until the session ends (false) or the reader parks
// (true: nothing to read, see park.go).
func (c *Client) readLoop() (parked bool) {
	ctx, doc := c.ctx, c.doc
	for {
		if !c.waitReadable(ctx) { // paused while the document holds our updates (backlog.go)
			return false
		}
		if c.pk.on {
			switch c.idleStep() {
			case stepPark:
				return true
			case stepControl:
				continue
			}
		}
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return false
		}
		c.extendDeadline()
		c.cfg.Stats.MessagesIn.Add(1)
		c.cfg.Stats.BytesIn.Add(int64(len(data)))
		if !c.admit(ctx, len(data)) {
			return false
		}
		if mt != websocket.BinaryMessage {
			c.badInput(DisconnectUnsupported, errors.New("text frame"))
			return false
		}
		msg, err := syncproto.Decode(data)
		if err != nil {
			c.undecodable(err)
			return false
		}
		// An edit or an awareness update: more are likely soon (parkAfter, park_linux.go).
		c.pk.busy = msg.Type == syncproto.TypeAwareness || (msg.Type == syncproto.TypeSync && msg.SyncType == syncproto.SyncUpdate)
		if !c.screen(msg) {
			continue
		}
		switch msg.Type {
		case syncproto.TypeAuth:
			continue // clients have nothing to say on the auth channel
		case syncproto.TypeRPC:
			// JSON request/reply (rpc.go): served on the session's RPC goroutine, after
			// every frame read before it was handed to the document.
			if !c.enqueueRPC(ctx, doc, msg.Payload) {
				return false
			}
			continue
		}
		if err := doc.Receive(ctx, c.info.ID, msg); err != nil {
			d := DisconnectInternal
			switch {
			case errors.Is(err, shareddoc.ErrNotFound):
				d = DisconnectNotFound
			case errors.Is(err, shareddoc.ErrClosed) || ctx.Err() != nil:
				d = DisconnectGoingAway
			}
			c.close(d)
			return false
		}
		select {
		case <-c.closing:
			return false
		default:
		}
	}
}

// writeLoop is the only goroutine writing data frames while it runs. Each round drains the whole
// queue and sends the ping if one is due; it ends when a round finds nothing to do, after a
// failed write, or after writing the close.
func (c *Client) writeLoop() {
	defer c.writers.Done()
	var done [][]byte
	for {
		c.mu.Lock()
		c.recycleLocked(done)
		done = nil
		if c.closed {
			// writing stays set: no writer starts after this one.
			c.mu.Unlock()
			c.finishClose()
			return
		}
		partial, pong := c.takePartialLocked(), c.pong
		c.pong = nil
		frames, ping := c.takeLocked()
		if len(frames) == 0 && !ping && partial == nil && pong == nil {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if partial != nil {
			if err := c.writePartial(partial); err != nil {
				c.writeFailed(err)
				return
			}
		}
		if pong != nil {
			if err := c.conn.WriteControl(websocket.PongMessage, pong, time.Now().Add(c.cfg.WriteWait)); err != nil {
				c.writeFailed(err)
				return
			}
		}
		if err := c.write(frames); err != nil {
			c.writeFailed(err)
			return
		}
		done = frames
		if ping {
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.WriteWait)); err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
}

// takeLocked returns everything queued and whether a ping is due; c.mu must be held. The
// queue goes on in the spare array, if there is one.
func (c *Client) takeLocked() ([][]byte, bool) {
	q, ping := c.queue, c.pingDue
	c.queue, c.spare, c.queued, c.pingDue = c.spare, nil, 0, false
	return q, ping
}

// recycleLocked keeps a written batch's array as the spare for the next queue, so that a
// session's queue and batch alternate between two arrays instead of growing a new one per
// wake-up; c.mu must be held. It forgets the frames (shared buffers) and drops big arrays.
func (c *Client) recycleLocked(done [][]byte) {
	if done == nil || c.spare != nil || cap(done) > maxKeptFrames {
		return
	}
	clear(done)
	c.spare = done[:0]
}

// take returns everything queued.
func (c *Client) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, _ := c.takeLocked()
	return q
}

// drainUntilClosed discards what the peer still sends, until it closes or the deadline passes.
// When the reader stopped on its own (an oversized or malformed frame) part of the input can
// still be unread, and closing a socket with unread data makes the kernel send a reset, which
// can destroy our close frame before the peer reads it: the client would see 1006 instead of
// the code that says why. The reader is done, so nothing else reads the socket.
func drainUntilClosed(conn Conn, deadline time.Time) {
	u, ok := conn.(interface{ UnderlyingConn() net.Conn })
	if !ok {
		return
	}
	nc := u.UnderlyingConn()
	if nc.SetReadDeadline(deadline) != nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		if _, err := nc.Read(buf); err != nil {
			return
		}
	}
}

// finishClose runs on the writer: flush if the row allows, close frame, then wait briefly for
// the reader to see the peer's answer before closing the socket. The flush goes through gorilla
// (writeEach), which refuses data after a close frame it already sent itself.
func (c *Client) finishClose() {
	d := c.Disconnect()
	c.mu.Lock()
	partial, reply := c.takePartialLocked(), c.closeReply
	c.mu.Unlock()
	if partial != nil { // a frame half-written inline: finished first, or nothing else is valid
		if err := c.writePartial(partial); err != nil {
			_ = c.conn.Close()
			return
		}
	}
	if d.NoCloseFrame && reply != nil {
		// The peer closed first: the answer gorilla's own handler would have written (inline.go).
		_ = c.conn.WriteControl(websocket.CloseMessage, reply, time.Now().Add(c.cfg.WriteWait))
	}
	if d.Flush {
		if err := c.writeEach(c.take()); err != nil {
			_ = c.conn.Close()
			return
		}
	}
	c.closeFrame(d)
}
