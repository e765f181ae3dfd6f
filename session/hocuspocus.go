package session

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// The Hocuspocus protocol (@hocuspocus/provider v2, v3, v4) on one socket: every frame names its
// document (syncproto.DecodeHP), so one socket carries any number of documents. Each (socket,
// document) pair is an HPSession, a peer of its document like a y-websocket Client: the same
// document actor, ordering, limits and admin listing.
//
// # Goroutines
//
//   - The reader (HPSocket.Serve, or Run) reads and decodes frames; with ParkWhenIdle it parks
//     between frames as a Client's reader does (park.go), so an idle socket keeps no goroutine.
//     A document's frames wait ("held", in bounded number and bytes) until its Auth Token
//     message arrived; the reader then calls the authenticator and joins the document itself,
//     so every frame of a socket reaches its document in arrival order, as for a Client. While
//     it authenticates or a document loads, the socket's other documents wait too.
//   - The writer drains the socket's one outbound queue, shared by its sessions and bounded in
//     bytes as a Client's (writeLoop); it runs only while there is something to write.
//   - A wheel shared by all sockets of a clock and tick (hocuspocus_wheel.go) runs housekeep
//     for each socket every tick: the keep-alives the providers expect (v3: some message at
//     least every Keepalive; v4: Ping), WebSocket pings for the read deadline, a request for a
//     fresh token before one expires, and the close of a document whose token expired (on a
//     short-lived goroutine of the socket, as closing waits for the document). It also ends a
//     busy reader's linger (interruptLinger). An idle socket has no goroutine of its own: its
//     reader is parked, or, without parking (TLS, no ParkWhenIdle), blocked in its read.
//   - The RPC goroutine, started at the first stateless message, serves stateless requests
//     (save_workflow, ...) and the application's stateless handler one at a time, in order.
//   - Documents call HPSession.Send, Ack and Close (never blocking: they take the socket's
//     queue mutex only).
//
// # Closing
//
// A document closes alone (its Close message, 7, from the provider; or the server's for an
// expired or refused token, or an admin's termination): the session leaves its document and the
// socket stays. Whatever makes a session unable to continue safely (slow, bad input, the store's
// backlog, shutdown) closes the whole socket with the close-code table's row, so that the
// provider reconnects and syncs every document afresh: v2 and v3 providers reconnect after any
// socket close, so permanent refusals are per document (PermissionDenied, then Close), which
// ends the provider's attempts for that document until it reconnects.

// Defaults of HPConfig.
const (
	DefaultHPMaxDocuments  = 1000
	DefaultHPMaxHeldFrames = 1024
	DefaultHPMaxHeldBytes  = 4 << 20
	// DefaultHPKeepalive: the v3 provider closes a socket that has received nothing for 30 s
	// (messageReconnectTimeout); half of that leaves room for a slow machine.
	DefaultHPKeepalive = 15 * time.Second
	// DefaultHPTokenRefresh is how long before a token expires the provider is asked for a
	// fresh one (at most half of the token's remaining lifetime).
	DefaultHPTokenRefresh = time.Minute
)

// Protocol names, as the admin API and metrics label them.
const (
	ProtocolYWebsocket = "y-websocket"
	ProtocolHocuspocus = "hocuspocus"
)

// Rows of the close-code table for the Hocuspocus socket.
var (
	// 1008: a socket held more frames, bytes or documents than allowed while waiting for
	// authentication, or opened more documents than allowed. Permanent: the same client would do
	// it again.
	DisconnectHPHeldFrames = Disconnect{Code: 1008, Reason: "too many frames before authentication"}
	DisconnectHPDocuments  = Disconnect{Code: 1008, Reason: "too many documents on one connection"}
	// 1011 with a reason the provider shows: the authenticator itself failed; retry.
	DisconnectAuthUnavailable = Disconnect{Code: 1011, Reason: "authentication unavailable", Reconnect: true, Flush: true}
)

// Reasons of the per-document PermissionDenied and Close messages. The Close reasons are those of
// @hocuspocus/common's CloseEvents, which applications test for.
const (
	HPReasonUnauthorized = "Unauthorized"
	HPReasonForbidden    = "Forbidden"
	HPReasonExpired      = "token expired"
	HPReasonNotFound     = "document not found"
	HPReasonInvalidName  = "invalid document name"
	HPReasonTerminated   = "session terminated"
	HPReasonClosed       = "provider_initiated"
	HPReasonTooMany      = "too many connections"
)

// HPRefusal is the error an HPConfig.Authenticate returns to refuse one document for good: the
// provider gets PermissionDenied with Reason for that document. Any other error means the
// authenticator failed and the socket is closed so that the provider tries again.
type HPRefusal struct{ Reason string }

func (e *HPRefusal) Error() string { return "refused: " + e.Reason }

// HPGrant is what an authenticator decided for one document.
type HPGrant struct {
	User string
	// Subject is the token subject when authentication is on ("" without it): the document
	// lets a session of the same subject take over awareness ids (shareddoc.SessionInfo.Subject).
	Subject string
	// Trust carries the permission (ReadOnly, Permission label) and ExpiresAt. Its Limiter and
	// HandshakeTimeout are not used per document (see HPConfig).
	Trust Trust
}

// StatelessCall is one stateless message that is not a request, as an application's handler
// sees it.
type StatelessCall struct {
	Doc      *shareddoc.Doc
	DocName  string
	Session  shareddoc.SessionInfo
	CanWrite bool
	Payload  string
}

// StatelessHandler serves stateless messages other than requests. It runs on the socket's RPC
// goroutine (one at a time per socket, in arrival order) with a context that ends after
// RPCTimeout.
type StatelessHandler func(ctx context.Context, call StatelessCall)

// HPConfig configures Hocuspocus sockets. Zero values mean the defaults.
type HPConfig struct {
	// Config: read limit, queue budget, timings, clock, logger, stats. Trust.Limiter paces the
	// whole socket; Trust.HandshakeTimeout closes a socket (4408) that authenticated no document
	// in that time. The other Trust fields are per document (HPGrant).
	Config
	// Authenticate decides a document's access from the token the provider sent ("" when it has
	// none). It runs on the socket's reader. Nil allows everything, read-write, as "anonymous".
	Authenticate func(ctx context.Context, doc, token string) (HPGrant, error)
	// ValidName checks a document name before anything else. Nil accepts any non-empty name.
	ValidName func(name string) error
	// RPC serves stateless requests ({"id", "method", "params"}); nil answers "unsupported".
	RPC RPCHandler
	// Stateless serves other stateless messages; nil ignores them.
	Stateless StatelessHandler
	// MaxDocuments bounds the documents one socket has open or waiting. Zero means
	// DefaultHPMaxDocuments.
	MaxDocuments int
	// MaxHeldFrames and MaxHeldBytes bound the frames a socket may send for documents that are
	// not authenticated yet. Zero means DefaultHPMaxHeldFrames / DefaultHPMaxHeldBytes.
	MaxHeldFrames int
	MaxHeldBytes  int
	// Keepalive: a socket that sent nothing for this long gets a keep-alive message. Zero means
	// DefaultHPKeepalive.
	Keepalive time.Duration
	// TokenRefresh: how long before a token expires the provider is asked for a fresh one.
	// Zero means DefaultHPTokenRefresh.
	TokenRefresh time.Duration
	// Admit is asked before a document joins (after its token was accepted): false refuses it
	// with PermissionDenied(HPReasonTooMany); release is called once the session ended. Nil
	// admits everything.
	Admit func(doc, user string) (release func(), ok bool)
	// OnSession is called when a session starts (open) and after it ended (the admin table).
	OnSession func(s *HPSession, open bool)
	// HPStats receives the protocol's own counters. Nil means a private one.
	HPStats *HPStats
	// NewID returns session ids, unique in the process. Nil means a process-wide counter.
	NewID func() string
}

// HPStats count what Hocuspocus sockets did, for /metrics.
type HPStats struct {
	Sockets        atomic.Int64 // open now
	Sessions       atomic.Int64 // (socket, document) sessions open now
	AcksStored     atomic.Int64 // SyncStatus(1) sent
	AcksRefused    atomic.Int64 // SyncStatus(0) sent
	AuthRefused    atomic.Int64 // PermissionDenied for a document
	TokenRequests  atomic.Int64 // the server asked for a fresh token
	TokenRefreshed atomic.Int64 // a fresh token was accepted
	ExpiredDocs    atomic.Int64 // documents closed because no fresh token came in time
	HeldOverflow   atomic.Int64 // sockets closed for holding too much before authentication
	DocCloses      atomic.Int64 // documents closed alone (by either side)
	Stateless      atomic.Int64 // stateless messages received
}

// hpIDs numbers sessions when HPConfig.NewID is nil: ids are unique in the process, as a
// document needs.
var hpIDs atomic.Int64

func (c HPConfig) withDefaults() HPConfig {
	c.Config = c.Config.withDefaults()
	if c.MaxDocuments <= 0 {
		c.MaxDocuments = DefaultHPMaxDocuments
	}
	if c.MaxHeldFrames <= 0 {
		c.MaxHeldFrames = DefaultHPMaxHeldFrames
	}
	if c.MaxHeldBytes <= 0 {
		c.MaxHeldBytes = DefaultHPMaxHeldBytes
	}
	if c.Keepalive <= 0 {
		c.Keepalive = DefaultHPKeepalive
	}
	if c.TokenRefresh <= 0 {
		c.TokenRefresh = DefaultHPTokenRefresh
	}
	if c.HPStats == nil {
		c.HPStats = new(HPStats)
	}
	if c.NewID == nil {
		c.NewID = func() string { return "hp" + strconv.FormatInt(hpIDs.Add(1), 10) }
	}
	return c // the Logger is Config's (its withDefaults above)
}

// hpState is where a document of a socket is.
type hpState int

const (
	hpHeld   hpState = iota // frames arrived, no Token yet
	hpLive                  // authenticated and joined
	hpClosed                // closed alone; its frames are dropped until a new Token
)

// HPSession is one document of a Hocuspocus socket: a shareddoc.Peer (and Acker) of that
// document.
type HPSession struct {
	s    *HPSocket
	key  string // the frames' key
	name string // the document name (the key up to a NUL, for v4's session keys)
	info shareddoc.SessionInfo
	doc  *shareddoc.Doc

	// Under s.mu.
	state     hpState
	held      [][]byte
	trust     Trust
	refreshAt time.Time // when to ask for a fresh token; zero: never
	asked     bool      // a token request went out since the last token
	// inflight are the updates handed to the document whose Ack has not come, oldest first,
	// each with the acks the session decided itself (read-only refusals, empty updates) after
	// it: SyncStatus messages go out in the order of the provider's updates, so a provider (or
	// a test) may match them one to one.
	inflight []hpInflight
	release  func() // from HPConfig.Admit; called once the session ended
}

type hpInflight struct{ after []bool }

// HPSocket is one WebSocket speaking the Hocuspocus protocol.
type HPSocket struct {
	cfg         HPConfig
	connCore    // conn, log, mu, closed, disc, the writers, gate, wv, closing, readerDone (conn.go)
	remote      string
	user        string // a label for sessions of an open server
	connectedAt time.Time

	// Under mu.
	queue      [][]byte
	queued     int
	pingDue    bool
	lastWrite  time.Time
	docs       map[string]*HPSession
	heldFrames int
	heldBytes  int
	v4         bool
	authedAny  bool

	closers   sync.WaitGroup // goroutines closing expired documents (housekeep)
	startedAt time.Time      // Serve started; for the handshake timeout
	nextPing  time.Time

	rpcq    chan hpCall
	rpcDone chan struct{}

	// Set by Serve for the reader, which may resume on another goroutine after parking
	// (park.go), as a Client's.
	ctx   context.Context
	reg   *shareddoc.Registry
	done  func(error)
	wheel *hpWheel
}

type hpCall struct {
	sess    *HPSession
	payload string
}

// NewHPSocket returns a socket for conn. remote and connectedAt describe it for the admin API;
// user labels its sessions when Authenticate is nil. Call Run or Serve (after ParkWhenIdle, for a
// reader that parks while the socket is idle).
func NewHPSocket(conn Conn, remote, user string, connectedAt time.Time, cfg HPConfig) *HPSocket {
	cfg = cfg.withDefaults()
	if user == "" {
		user = "anonymous"
	}
	s := &HPSocket{
		cfg:         cfg,
		remote:      remote,
		user:        user,
		connectedAt: connectedAt,
		docs:        make(map[string]*HPSession),
	}
	s.initCore(conn, &s.cfg.Config, cfg.Logger.With("remote", remote, "protocol", ProtocolHocuspocus), s)
	return s
}

// Info returns the session's description.
func (h *HPSession) Info() shareddoc.SessionInfo { return h.info }

// Doc returns the name of the session's document.
func (h *HPSession) Doc() string { return h.name }

// Protocol returns ProtocolHocuspocus.
func (h *HPSession) Protocol() string { return ProtocolHocuspocus }

// Protocol returns ProtocolYWebsocket.
func (c *Client) Protocol() string { return ProtocolYWebsocket }

// CanWrite reports whether the session may change its document now.
func (h *HPSession) CanWrite() bool {
	h.s.mu.Lock()
	t := h.trust
	h.s.mu.Unlock()
	if t.ReadOnly {
		return false
	}
	return t.ExpiresAt.IsZero() || h.s.cfg.Clock.Now().Before(t.ExpiresAt)
}

// Send implements shareddoc.Peer: the document's y-websocket frame goes out translated for this
// document's key.
func (h *HPSession) Send(frame []byte) bool {
	out, ok := syncproto.HPFromYWS(h.key, frame)
	if !ok {
		return true // nothing a provider understands (and nothing it needs)
	}
	return h.s.send(out)
}

// Ack implements shareddoc.Acker: SyncStatus for the provider's oldest update in flight, then
// the session's own acks queued behind it.
func (h *HPSession) Ack(ok bool) bool {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	var after []bool
	if len(h.inflight) > 0 {
		after = h.inflight[0].after
		h.inflight = h.inflight[1:]
	}
	if !h.sendAckLocked(ok) {
		return false
	}
	for _, a := range after {
		if !h.sendAckLocked(a) {
			return false
		}
	}
	return true
}

func (h *HPSession) sendAckLocked(ok bool) bool {
	if ok {
		h.s.cfg.HPStats.AcksStored.Add(1)
	} else {
		h.s.cfg.HPStats.AcksRefused.Add(1)
	}
	return h.s.sendLocked(syncproto.EncodeHPSyncStatus(h.key, ok))
}

// localAck answers an update the document never sees (refused as read-only, or empty): at once
// when nothing is in flight, else after the last update in flight.
func (h *HPSession) localAck(ok bool) bool {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if n := len(h.inflight); n > 0 {
		h.inflight[n-1].after = append(h.inflight[n-1].after, ok)
		return true
	}
	return h.sendAckLocked(ok)
}

// isEmptyUpdate: what the document neither stores nor acks (shareddoc's emptyUpdate).
func isEmptyUpdate(u []byte) bool { return len(u) == 0 || (len(u) == 2 && u[0] == 0 && u[1] == 0) }

// Close implements shareddoc.Peer. The document detached the session already; whatever the
// reason, the provider must sync afresh, which it does after a socket close (see the package
// comment on closing).
func (h *HPSession) Close(reason shareddoc.CloseReason, err error) {
	d := ForReason(reason)
	switch reason {
	case shareddoc.CloseSlow:
		h.s.cfg.Stats.SlowCloses.Add(1)
	case shareddoc.CloseBadUpdate:
		h.s.cfg.Stats.BadDataClose.Add(1)
	}
	h.s.log.Info("closing socket for a document", "doc", h.name, "session", h.info.ID, "reason", reason.String(), "err", err)
	h.s.close(d)
}

// Kick closes this document only (admin termination); other rows close the whole socket
// (shutdown).
func (h *HPSession) Kick(d Disconnect) {
	if d == DisconnectTerminated {
		h.s.closeDoc(h, "", HPReasonTerminated)
		return
	}
	h.s.close(d)
}

// IsHocuspocus reports whether p is a Hocuspocus session (a Broadcast filter).
func IsHocuspocus(p shareddoc.Peer) bool {
	_, ok := p.(*HPSession)
	return ok
}

// BroadcastStateless sends a stateless message to every Hocuspocus session of doc but except
// (empty: none), behind the document's earlier commands.
func BroadcastStateless(ctx context.Context, doc *shareddoc.Doc, except, payload string) error {
	return doc.Broadcast(ctx, syncproto.EncodeRPC([]byte(payload)), except, IsHocuspocus)
}

// Kick closes the whole socket with d.
func (s *HPSocket) Kick(d Disconnect) { s.close(d) }

// Sessions returns the socket's open sessions.
func (s *HPSocket) Sessions() []*HPSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*HPSession
	for _, h := range s.docs {
		if h.state == hpLive {
			out = append(out, h)
		}
	}
	return out
}

// --- writing ------------------------------------------------------------------------------------

func (s *HPSocket) send(frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(frame)
}

func (s *HPSocket) sendLocked(frame []byte) bool {
	if s.closed {
		return true
	}
	if s.queued > 0 && s.queued+len(frame) > s.cfg.QueueBudget {
		return false
	}
	s.queue = append(s.queue, frame)
	s.queued += len(frame)
	s.startWriterLocked()
	return true
}

// Disconnect returns how the socket was closed (zero while open).
func (s *HPSocket) Disconnect() Disconnect { return s.disconnect() }

func (s *HPSocket) writeLoop() {
	defer s.writers.Done()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.finishClose()
			return
		}
		frames, ping := s.queue, s.pingDue
		s.queue, s.queued, s.pingDue = nil, 0, false
		if len(frames) == 0 && !ping {
			s.writing = false
			s.mu.Unlock()
			return
		}
		if len(frames) > 0 {
			s.lastWrite = s.cfg.Clock.Now()
		}
		s.mu.Unlock()
		if err := s.write(frames); err != nil {
			s.writeFailed(err)
			return
		}
		if ping {
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WriteWait)); err != nil {
				s.writeFailed(err)
				return
			}
		}
	}
}

func (s *HPSocket) finishClose() {
	d := s.Disconnect()
	if d.Flush {
		s.mu.Lock()
		q := s.queue
		s.queue, s.queued = nil, 0
		s.mu.Unlock()
		// Through gorilla, which refuses data after a close frame it sent itself.
		if err := s.writeEach(q); err != nil {
			_ = s.conn.Close()
			return
		}
	}
	s.closeFrame(d)
}

// --- running ------------------------------------------------------------------------------------

// Run serves the socket until it closes: the calling goroutine reads (and, with ParkWhenIdle,
// so do the goroutines that resume a parked reader). It returns after every session left its
// document and every goroutine of the socket ended.
func (s *HPSocket) Run(ctx context.Context, reg *shareddoc.Registry) error {
	done := make(chan error, 1)
	s.Serve(ctx, reg, func(err error) { done <- err })
	return <-done
}

// Serve is Run without the wait: it reads on the calling goroutine until the socket ends or,
// with ParkWhenIdle, until the reader parks (park.go); either way done is called once, with
// what Run would return, when the socket has ended as Run's return means. A server that calls
// Serve keeps no goroutine for an idle socket.
func (s *HPSocket) Serve(ctx context.Context, reg *shareddoc.Registry, done func(error)) {
	s.cfg.Stats.Connections.Add(1)
	s.cfg.HPStats.Sockets.Add(1)
	s.wv.raw(s.conn) // before any writer can start: the writers read it, and startParking

	s.mu.Lock()
	s.allowWritersLocked(s.writeLoop)
	s.lastWrite = s.cfg.Clock.Now()
	s.startedAt = s.lastWrite
	s.nextPing = s.startedAt.Add(pingPeriod(s.cfg.PongWait))
	if len(s.queue) > 0 || s.closed {
		s.startWriterLocked()
	}
	s.mu.Unlock()
	s.ctx, s.reg, s.done = ctx, reg, done
	s.wheel = joinHPWheel(s)
	s.startReading()
	s.serveReads()
}

// startReading sets the read limit, the first read deadline and the pong handler, and sets the
// reader up to park.
func (s *HPSocket) startReading() {
	s.conn.SetReadLimit(s.cfg.ReadLimit)
	s.extendDeadline()
	s.conn.SetPongHandler(func(string) error { s.extendDeadline(); return nil })
	if s.wv.tcp != nil { // set by Serve; raw TCP: the reader can park
		// A ping the parked reader's idleStep consumed is answered as gorilla's own handler
		// (which the socket keeps for pings ReadMessage sees) answers it.
		s.pk.ping = s.answerPing
		s.startParking()
	}
}

// answerPing answers a ping with its payload, as gorilla's default ping handler does: a pong
// written from the reader, given a second (gorilla's own wait for it). A socket whose close
// frame went out already needs no answer, and a write that failed leaves the socket to the next
// read or write, which sees it broken.
func (s *HPSocket) answerPing(data string) error {
	_ = s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	return nil
}

// finish is the end of Serve, after the reader stopped for good (on whichever goroutine that
// is): every session leaves its document, the socket's goroutines end, then done.
func (s *HPSocket) finish() {
	close(s.readerDone)
	// Every way out of readLoop closes the socket already; this makes sure the close (and so
	// the end of the writers) happens.
	s.close(DisconnectBroken)
	// Every session leaves its document.
	s.mu.Lock()
	var live []*HPSession
	for _, h := range s.docs {
		if h.state == hpLive {
			live = append(live, h)
		}
		h.state = hpClosed
	}
	s.mu.Unlock()
	for _, h := range live {
		s.ended(h)
	}
	s.wheel.leave(s)
	s.closers.Wait()
	s.writers.Wait()
	if s.rpcq != nil {
		close(s.rpcq)
		<-s.rpcDone
	}
	s.stopParking()
	s.log.Debug("closed", "code", int(s.Disconnect().Code), "reason", s.Disconnect().Reason)
	_ = s.conn.Close()
	s.cfg.HPStats.Sockets.Add(-1)
	s.cfg.Stats.Connections.Add(-1)
	done := s.done
	s.ctx, s.reg, s.done, s.wheel = nil, nil, nil, nil
	done(nil)
}

// ended detaches a session that left the live state.
func (s *HPSocket) ended(h *HPSession) {
	h.doc.Leave(h.info.ID)
	if h.release != nil {
		h.release()
	}
	s.cfg.HPStats.Sessions.Add(-1)
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(h, false)
	}
}

// readLoop reads and handles frames until the socket ends (false) or the reader parks (true:
// nothing to read, see park.go). It parks only at a frame boundary, between documents' frames
// alike: a socket's documents share its reader.
func (s *HPSocket) readLoop() (parked bool) {
	ctx, reg := s.ctx, s.reg
	for {
		if !s.waitReadable(ctx) { // paused while a document holds our updates (backlog.go)
			return false
		}
		if s.pk.on {
			switch s.idleStep() {
			case stepPark:
				return true
			case stepControl:
				continue
			}
		}
		mt, data, err := s.conn.ReadMessage()
		if err != nil {
			s.readFailed(err)
			return false
		}
		s.extendDeadline()
		s.cfg.Stats.MessagesIn.Add(1)
		s.cfg.Stats.BytesIn.Add(int64(len(data)))
		if !s.admit(ctx, len(data)) {
			return false
		}
		if mt != websocket.BinaryMessage {
			s.badInput(DisconnectUnsupported, errors.New("text frame"))
			return false
		}
		if !s.handle(ctx, reg, data) {
			return false
		}
		select {
		case <-s.closing:
			return false
		default:
		}
	}
}

// handle serves one frame on the reader; false means the socket is closing.
func (s *HPSocket) handle(ctx context.Context, reg *shareddoc.Registry, data []byte) bool {
	m, err := syncproto.DecodeHP(data)
	if err != nil {
		s.undecodable(err)
		return false
	}
	// An edit or an awareness update, of any document: more are likely soon, so the reader
	// lingers before it parks (parkAfter, park_linux.go), as a Client's does.
	s.pk.busy = m.Type == syncproto.HPAwareness ||
		((m.Type == syncproto.HPSync || m.Type == syncproto.HPSyncReply) && m.Sync.SyncType == syncproto.SyncUpdate)
	switch m.Type {
	case syncproto.HPPing:
		return s.send(syncproto.HPPongFrame) || s.slow()
	case syncproto.HPPong:
		return true
	}
	s.mu.Lock()
	h := s.docs[m.Key]
	if h == nil {
		if m.Type == syncproto.HPClose {
			s.mu.Unlock()
			return true
		}
		if len(s.docs) >= s.cfg.MaxDocuments {
			s.mu.Unlock()
			s.cfg.HPStats.HeldOverflow.Add(1)
			s.log.Warn("closing: too many documents", "limit", s.cfg.MaxDocuments)
			s.close(DisconnectHPDocuments)
			return false
		}
		h = &HPSession{s: s, key: m.Key, name: docName(m.Key), state: hpHeld}
		s.docs[m.Key] = h
	}
	state := h.state
	s.mu.Unlock()

	if m.Type == syncproto.HPAuth && m.AuthType == syncproto.HPAuthToken {
		if m.HasVersion {
			s.mu.Lock()
			s.v4 = true
			s.mu.Unlock()
		}
		if state == hpLive {
			return s.refresh(ctx, h, m.Text)
		}
		return s.open(ctx, reg, h, m.Text)
	}
	switch state {
	case hpHeld:
		if !s.hold(h, data) {
			return false
		}
		if m.Type == syncproto.HPSync && m.Sync.SyncType == syncproto.SyncStep1 {
			// A v2 provider without a token sends no Token message: its SyncStep1 comes first
			// and opens the document as an empty token would.
			return s.open(ctx, reg, h, "")
		}
		return true
	case hpClosed:
		return true // closed alone; nothing more until it authenticates again
	}
	return s.dispatch(ctx, h, m)
}

// docName is the document a key names: v4 providers with sessionAwareness key their frames
// "name\x00sessionId".
func docName(key string) string {
	if i := strings.IndexByte(key, 0); i >= 0 {
		return key[:i]
	}
	return key
}

func (s *HPSocket) slow() bool {
	s.cfg.Stats.SlowCloses.Add(1)
	s.close(DisconnectSlow)
	return false
}

// hold keeps a frame of a document that is not authenticated yet, within the socket's bounds.
func (s *HPSocket) hold(h *HPSession, data []byte) bool {
	s.mu.Lock()
	if s.heldFrames+1 > s.cfg.MaxHeldFrames || s.heldBytes+len(data) > s.cfg.MaxHeldBytes {
		s.mu.Unlock()
		s.cfg.HPStats.HeldOverflow.Add(1)
		s.log.Warn("closing: too much held before authentication", "frames", s.heldFrames, "bytes", s.heldBytes)
		s.close(DisconnectHPHeldFrames)
		return false
	}
	h.held = append(h.held, data)
	s.heldFrames++
	s.heldBytes += len(data)
	s.mu.Unlock()
	return true
}

// takeHeld returns and forgets a session's held frames.
func (s *HPSocket) takeHeldLocked(h *HPSession) [][]byte {
	q := h.held
	h.held = nil
	s.heldFrames -= len(q)
	for _, f := range q {
		s.heldBytes -= len(f)
	}
	return q
}

func (s *HPSocket) authenticate(ctx context.Context, name, token string) (HPGrant, error) {
	if s.cfg.Authenticate == nil {
		return HPGrant{User: s.user}, nil
	}
	return s.cfg.Authenticate(ctx, name, token)
}

// refusal returns the HPRefusal that err, an authenticator's error for h, is, and counts it; nil
// when the authenticator failed by itself (then the socket closes, for the provider to retry).
func (s *HPSocket) refusal(h *HPSession, err error) *HPRefusal {
	var r *HPRefusal
	if !errors.As(err, &r) {
		s.log.Error("authenticator failed", "doc", h.name, "err", err)
		s.close(DisconnectAuthUnavailable)
		return nil
	}
	s.cfg.HPStats.AuthRefused.Add(1)
	return r
}

// refuse answers a document's Token with PermissionDenied; true unless the authenticator failed
// by itself (then the socket closes, for the provider to retry).
func (s *HPSocket) refuse(h *HPSession, err error) bool {
	r := s.refusal(h, err)
	if r == nil {
		return false
	}
	s.log.Info("document refused", "doc", h.name, "reason", r.Reason)
	s.mu.Lock()
	s.takeHeldLocked(h)
	h.state = hpClosed
	ok := s.sendLocked(syncproto.EncodeHPPermissionDenied(h.key, r.Reason))
	s.mu.Unlock()
	return ok || s.slow()
}

// open authenticates a held (or closed) document and joins it, then replays what was held. The
// reader waits for it on a short-lived goroutine of its own: opening goes deeper than a 4 KiB
// stack allows, and the reader's stack, once grown to 8 KiB, would stay so for the socket's
// lifetime (its parked depth is too big for the GC to shrink it): 4 KiB more per idle socket
// (docs/load.md, "Issue 14 results"). Opens are rare; the extra goroutine costs ~1 µs.
func (s *HPSocket) open(ctx context.Context, reg *shareddoc.Registry, h *HPSession, token string) bool {
	var ok bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		ok = s.openDoc(ctx, reg, h, token)
	}()
	<-done
	return ok
}

func (s *HPSocket) openDoc(ctx context.Context, reg *shareddoc.Registry, h *HPSession, token string) bool {
	if s.cfg.ValidName != nil {
		if err := s.cfg.ValidName(h.name); err != nil {
			return s.refuse(h, &HPRefusal{Reason: HPReasonInvalidName})
		}
	} else if h.name == "" {
		return s.refuse(h, &HPRefusal{Reason: HPReasonInvalidName})
	}
	g, err := s.authenticate(ctx, h.name, token)
	if err != nil {
		return s.refuse(h, err)
	}
	if g.User == "" {
		g.User = s.user
	}
	// A fresh session (id, info) each time the document opens on this socket.
	s.mu.Lock()
	h = s.renew(h)
	h.info = shareddoc.SessionInfo{ID: s.cfg.NewID(), User: g.User, Subject: g.Subject, Remote: s.remote, ConnectedAt: time.Now().UTC(), Protocol: ProtocolHocuspocus}
	h.trust = g.Trust
	h.setRefreshLocked(s.cfg.Clock.Now(), s.cfg.TokenRefresh)
	s.mu.Unlock()

	if s.cfg.Admit != nil {
		release, ok := s.cfg.Admit(h.name, g.User)
		if !ok {
			return s.refuse(h, &HPRefusal{Reason: HPReasonTooMany})
		}
		h.release = release
	}
	doc, _, err := reg.JoinOrCreate(ctx, h.name, shareddoc.JoinOptions{Session: h.info, Peer: h})
	if err != nil {
		if h.release != nil {
			h.release()
			h.release = nil
		}
		switch {
		case errors.Is(err, shareddoc.ErrJoinRefused):
			return s.refuse(h, &HPRefusal{Reason: HPReasonForbidden})
		case errors.Is(err, shareddoc.ErrNotFound):
			return s.refuse(h, &HPRefusal{Reason: HPReasonNotFound})
		case errors.Is(err, shareddoc.ErrClosed), ctx.Err() != nil:
			s.close(DisconnectGoingAway)
		default:
			s.log.Warn("join failed", "doc", h.name, "err", err)
			s.close(DisconnectInternal)
		}
		return false
	}
	h.doc = doc
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		doc.Leave(h.info.ID)
		if h.release != nil {
			h.release()
		}
		return false
	}
	h.state = hpLive
	s.authedAny = true
	held := s.takeHeldLocked(h)
	scope := syncproto.HPScopeReadWrite
	if h.trust.ReadOnly {
		scope = syncproto.HPScopeReadOnly
	}
	ok := s.sendLocked(syncproto.EncodeHPAuthenticated(h.key, scope))
	s.mu.Unlock()
	s.cfg.HPStats.Sessions.Add(1)
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(h, true)
	}
	h.s.log.Debug("document opened", "doc", h.name, "session", h.info.ID, "user", h.info.User, "scope", scope)
	if !ok {
		return s.slow()
	}
	for _, f := range held {
		m, err := syncproto.DecodeHP(f) // decoded once already
		if err != nil || m.Type == syncproto.HPAuth {
			continue
		}
		if !s.dispatch(ctx, h, m) {
			return false
		}
	}
	return true
}

// renew replaces a closed session by a fresh one for the same key (its old one may still be
// listed until it finished leaving); s.mu held.
func (s *HPSocket) renew(h *HPSession) *HPSession {
	if h.state != hpClosed {
		return h
	}
	n := &HPSession{s: s, key: h.key, name: h.name, state: hpHeld}
	s.docs[h.key] = n
	return n
}

func (h *HPSession) setRefreshLocked(now time.Time, lead time.Duration) {
	h.asked = false
	h.refreshAt = time.Time{}
	if exp := h.trust.ExpiresAt; !exp.IsZero() {
		h.refreshAt = exp.Add(-min(lead, max(exp.Sub(now), 0)/2))
	}
}

// refresh takes a fresh token for a live document.
func (s *HPSocket) refresh(ctx context.Context, h *HPSession, token string) bool {
	g, err := s.authenticate(ctx, h.name, token)
	if err != nil {
		r := s.refusal(h, err)
		if r == nil {
			return false
		}
		s.closeDoc(h, r.Reason, HPReasonUnauthorized)
		return true
	}
	s.cfg.HPStats.TokenRefreshed.Add(1)
	s.mu.Lock()
	if h.state != hpLive {
		s.mu.Unlock()
		return true
	}
	h.trust = g.Trust
	h.setRefreshLocked(s.cfg.Clock.Now(), s.cfg.TokenRefresh)
	scope := syncproto.HPScopeReadWrite
	if h.trust.ReadOnly {
		scope = syncproto.HPScopeReadOnly
	}
	ok := s.sendLocked(syncproto.EncodeHPAuthenticated(h.key, scope))
	s.mu.Unlock()
	s.log.Debug("token refreshed", "doc", h.name, "session", h.info.ID, "expires", g.Trust.ExpiresAt)
	return ok || s.slow()
}

// closeDoc closes one document of the socket, which stays open: PermissionDenied with denied
// (unless empty) and Close with reason go to the provider, and the session leaves its document.
// Idempotent; any goroutine.
func (s *HPSocket) closeDoc(h *HPSession, denied, reason string) {
	s.mu.Lock()
	if h.state != hpLive {
		s.mu.Unlock()
		return
	}
	h.state = hpClosed
	if denied != "" {
		s.sendLocked(syncproto.EncodeHPPermissionDenied(h.key, denied))
	}
	s.sendLocked(syncproto.EncodeHPClose(h.key, reason))
	s.mu.Unlock()
	s.cfg.HPStats.DocCloses.Add(1)
	s.log.Info("document closed", "doc", h.name, "session", h.info.ID, "reason", reason)
	s.ended(h)
}

// dispatch hands one frame of a live document to it, screened as a Client's are.
func (s *HPSocket) dispatch(ctx context.Context, h *HPSession, m syncproto.HPMessage) bool {
	switch m.Type {
	case syncproto.HPSync, syncproto.HPSyncReply, syncproto.HPAwareness, syncproto.HPQueryAwareness:
		if m.Type != syncproto.HPAwareness && m.Type != syncproto.HPQueryAwareness {
			if !h.screen(m.Sync) {
				return true
			}
			if st := m.Sync.SyncType; st == syncproto.SyncStep2 || st == syncproto.SyncUpdate {
				if isEmptyUpdate(m.Sync.Payload) {
					// Nothing to store: acked in turn, and the document need not see it.
					return h.localAck(true) || s.slow()
				}
				s.mu.Lock()
				h.inflight = append(h.inflight, hpInflight{})
				s.mu.Unlock()
			}
		}
		if err := h.doc.Receive(ctx, h.info.ID, m.Sync); err != nil {
			if errors.Is(err, shareddoc.ErrClosed) || ctx.Err() != nil {
				s.close(DisconnectGoingAway)
			} else {
				s.close(DisconnectInternal)
			}
			return false
		}
	case syncproto.HPStateless:
		s.cfg.HPStats.Stateless.Add(1)
		return s.enqueueRPC(ctx, h, m.Text)
	case syncproto.HPClose:
		s.closeDocQuietly(h)
	case syncproto.HPAuth, syncproto.HPSyncStatus, syncproto.HPBroadcastStateless:
		// Nothing for the server: auth answers, acks and broadcasts are the server's to send.
	}
	return true
}

// closeDocQuietly ends a document the provider closed (its Close message): nothing is sent back,
// and the document leaves the socket's table (the provider sends nothing more for it), so that a
// long-lived socket opening and closing many documents does not run into MaxDocuments.
func (s *HPSocket) closeDocQuietly(h *HPSession) {
	s.mu.Lock()
	if h.state != hpLive {
		s.mu.Unlock()
		return
	}
	h.state = hpClosed
	if s.docs[h.key] == h {
		delete(s.docs, h.key)
	}
	s.mu.Unlock()
	s.cfg.HPStats.DocCloses.Add(1)
	s.ended(h)
}

// screen applies the read-only rule to a sync message before it reaches the document: an
// update is refused with SyncStatus(0); a SyncStep2 is not applied and is acked when it
// brings nothing (what @hocuspocus/server does), refused otherwise.
func (h *HPSession) screen(m syncproto.Message) bool {
	h.s.mu.Lock()
	ro := h.trust.ReadOnly
	h.s.mu.Unlock()
	if !ro || m.SyncType == syncproto.SyncStep1 {
		return true
	}
	ok := m.SyncType == syncproto.SyncStep2 && !hasStructs(m.Payload)
	if !ok {
		h.s.cfg.Stats.Trust.DeniedWrites.Add(1)
	}
	if !h.localAck(ok) {
		h.s.slow()
	}
	return false
}

// --- housekeeping ---------------------------------------------------------------------------------

// housekeep runs on the socket's wheel (hocuspocus_wheel.go) every tick: keep-alives, WebSocket
// pings, the handshake timeout and token refresh and expiry. It never blocks: documents whose
// token expired are closed on a goroutine of the socket's (Run waits for it).
func (s *HPSocket) housekeep(now time.Time) {
	var expired []*HPSession
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if hs := s.cfg.Trust.HandshakeTimeout; hs > 0 && !s.authedAny && now.Sub(s.startedAt) >= hs {
		s.mu.Unlock()
		s.cfg.Stats.Trust.HandshakeTimeouts.Add(1)
		s.log.Info("closing: no document authenticated in time", "timeout", hs)
		s.close(DisconnectHandshakeTimeout)
		return
	}
	if !now.Before(s.nextPing) {
		s.nextPing = now.Add(pingPeriod(s.cfg.PongWait))
		s.pingDue = true
		s.startWriterLocked()
	}
	var keepKey string
	for _, h := range s.docs {
		if h.state != hpLive {
			continue
		}
		if keepKey == "" || h.key < keepKey {
			keepKey = h.key
		}
		exp := h.trust.ExpiresAt
		switch {
		case exp.IsZero():
		case !now.Before(exp):
			expired = append(expired, h)
		case !h.asked && !now.Before(h.refreshAt):
			h.asked = true
			s.cfg.HPStats.TokenRequests.Add(1)
			s.sendLocked(syncproto.EncodeHPTokenRequest(h.key))
		}
	}
	if now.Sub(s.lastWrite) >= s.cfg.Keepalive && len(s.queue) == 0 {
		switch {
		case s.v4:
			s.sendLocked(syncproto.HPPingFrame)
		case keepKey != "":
			// An awareness update with no states: the provider counts it as a message and
			// changes nothing.
			s.sendLocked(syncproto.AppendAwareness(syncproto.AppendHPKey(nil, keepKey), []byte{0}))
		}
	}
	if len(expired) > 0 {
		s.closers.Add(1)
	}
	s.mu.Unlock()
	if len(expired) == 0 {
		return
	}
	go func() {
		defer s.closers.Done()
		for _, h := range expired {
			s.cfg.HPStats.ExpiredDocs.Add(1)
			s.cfg.Stats.Trust.ExpiredCloses.Add(1)
			s.closeDoc(h, HPReasonExpired, HPReasonUnauthorized)
		}
	}()
}
