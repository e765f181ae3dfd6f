// Package server wires the HTTP surface of ysync: the WebSocket endpoint, health and readiness
// probes, Prometheus metrics and the admin API; and it owns the order in which everything starts
// and stops. The workflow routes and requests are package workflowapi's: the server builds it
// over its authentication, registry and counters (workflows.go), mounts its routes and stops it.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/cluster"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/webhook"
	"github.com/ysync/ysync/workflowapi"
)

// Store is what the server needs from persistence: the documents' store plus a readiness ping.
type Store interface {
	shareddoc.Store
	Ping(ctx context.Context) error
}

// Config configures a Server. Zero values mean the defaults noted per field.
type Config struct {
	// IdleTimeout is how long a document stays loaded after its last session left. Zero means
	// unload at once (the command line's default is shareddoc.DefaultIdleTimeout).
	IdleTimeout time.Duration
	// ReadLimit is the largest WebSocket message accepted. Zero means session.DefaultReadLimit.
	ReadLimit int64
	// QueueBudget bounds the bytes queued for one connection. Zero means
	// session.DefaultQueueBudget.
	QueueBudget int
	// NoParking keeps a blocked reader goroutine for every idle connection (y-websocket and
	// Hocuspocus) instead of parking it on the process's epoll set (session/park.go): the way
	// back should parking ever misbehave. Default false: idle readers park.
	NoParking bool
	// PongWait and WriteWait: see session.Config. Zero means the session defaults.
	PongWait  time.Duration
	WriteWait time.Duration
	// Logger receives all logs. Nil means discard.
	Logger *slog.Logger
	// Clock drives documents and keep-alives. Nil means the wall clock.
	Clock shareddoc.Clock
	// Hooks are passed to the document registry.
	Hooks shareddoc.Hooks
	// Workflows enables workflow documents: save/reset requests, /api/workflows, /api/events
	// (package workflowapi, wired in workflows.go). They need PostgreSQL; nil means disabled and
	// those routes answer 503.
	Workflows *Workflows
	// Authenticator checks the token of every WebSocket upgrade and admin API request
	// (trust.go). Nil means no authentication: everyone may read and write every document and
	// use the admin API.
	Authenticator auth.Authenticator
	// Limits bound what clients may do; zero fields mean the defaults (trust.go).
	Limits Limits
	// Hocuspocus bounds each Hocuspocus socket on GET /ws; zero fields mean the defaults
	// (hocuspocus.go).
	Hocuspocus HocuspocusLimits
	// Stateless serves the Hocuspocus stateless messages that are not requests
	// (save_workflow, ...). Nil ignores them.
	Stateless session.StatelessHandler
	// Versions configures automatic document versions (docs_versions.go); zero fields mean
	// the defaults.
	Versions VersionsConfig
	// Webhooks configures change webhooks (docs_webhooks.go); no URLs means none.
	Webhooks webhook.Config
	// Cluster relays updates and awareness to the other nodes through Redis (cluster.go,
	// docs/cluster.md); the server starts it and its owner closes it after Shutdown. Nil means
	// no relay: alone, or sharing the database and catching up by the position check only.
	Cluster *cluster.Cluster
	// PositionCheckInterval is how often loaded documents are compared with the log's last seq.
	// Zero means shareddoc.DefaultPositionCheckInterval with a database (other processes may
	// write it) and never with the in-memory store; negative means never.
	PositionCheckInterval time.Duration
	// LoadTimeout bounds loading a document (waiting for its previous instance's final flush,
	// the store's Load and the LoadState hooks); past it the waiting sessions close with 1011
	// and reconnect. Zero means shareddoc.DefaultLoadTimeout; negative means no bound.
	LoadTimeout time.Duration
	// FlushTimeout bounds each checkpoint (Store.Compact) and StoreState hook call; one that
	// does not finish is given up (the log keeps everything). Zero means
	// shareddoc.DefaultFlushTimeout; negative means no bound.
	FlushTimeout time.Duration
	// CompactAfter and CompactAfterBytes are shareddoc.Config's compaction triggers (a
	// document checkpoints after that many appended updates or bytes); zero means the
	// shareddoc default, negative turns that trigger off.
	CompactAfter      int
	CompactAfterBytes int64
	// NodeInfo describes this node in the node registry (host, address). Optional.
	NodeInfo string
	// NodeID names this node in the node registry. Empty means the cluster's id, or a random
	// one without a cluster.
	NodeID string
}

// Server is the ysync HTTP server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    Store
	reg      *shareddoc.Registry
	stats    session.Stats
	upgrader websocket.Upgrader
	http     *http.Server
	started  time.Time
	trust    *trustState  // trust.go
	guard    guardState   // httpguard.go
	metrics  metricsState // metrics.go

	wf       *workflowapi.API // save/reset, /api/workflows, /api/events (workflows.go)
	hp       hpState          // GET /ws, the Hocuspocus protocol (hocuspocus.go)
	versions versionState     // automatic document versions (docs_versions.go)
	hooks    *webhookState    // change webhooks (docs_webhooks.go)
	docs     docsStats        // document API counters (docs_metrics.go)

	cluster clusterState // node registry, relay hooks (cluster.go)

	// ctx is the sessions' context; cancelled when shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[string]adminSession // both protocols (hocuspocus.go)
	draining bool
	conns    sync.WaitGroup // WebSocket upgrades in progress and running sessions
}

// New returns a server over st. The caller keeps ownership of st and closes it after Shutdown.
func New(cfg Config, st Store) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = shareddoc.RealClock()
	}
	cfg.Limits = cfg.Limits.withDefaults(cfg.ReadLimit)
	cfg.Versions = cfg.Versions.withDefaults()
	cfg.Hooks = workflowapi.Hooks(cfg.Hooks, cfg.Workflows)
	ctx, cancel := context.WithCancel(context.Background())
	hooks := newWebhooks(&cfg, st)
	s := &Server{
		hooks: hooks,
		cfg:   cfg,
		log:   cfg.Logger,
		store: st,
		reg: shareddoc.NewRegistry(shareddoc.Config{
			Store:       st,
			Logger:      cfg.Logger,
			Clock:       cfg.Clock,
			IdleTimeout: cfg.IdleTimeout,
			Hooks:       cfg.Hooks,

			MaxDocBytes:           cfg.Limits.MaxDocBytes,
			MaxPendingBytesPerDoc: cfg.Limits.MaxPendingBytesPerDoc,
			MaxPendingBytes:       cfg.Limits.MaxPendingBytes,
			MaxBacklogWait:        cfg.Limits.MaxBacklogWait,

			Relay:                 cfg.relay(),
			PositionCheckInterval: cfg.positionCheckInterval(st),

			MaxAwarenessClientsPerConn: cfg.Limits.MaxAwarenessClientsPerConn,
			MaxAwarenessStateBytes:     cfg.Limits.MaxAwarenessStateBytes,
			MaxLoadedDocs:              cfg.Limits.MaxLoadedDocs,

			LoadTimeout:  orDefault(cfg.LoadTimeout, shareddoc.DefaultLoadTimeout),
			FlushTimeout: orDefault(cfg.FlushTimeout, shareddoc.DefaultFlushTimeout),

			CompactAfter:      compactAfter(cfg.CompactAfter),
			CompactAfterBytes: cfg.CompactAfterBytes,
		}),
		upgrader: websocket.Upgrader{
			// Memory per idle connection (docs/load.md): a small read buffer (session.ReadBufferSize,
			// given to gorilla by session.Upgrade, so 0 here), and write buffers from a pool,
			// held only while a message is being written instead of for the connection's
			// lifetime.
			ReadBufferSize:  0,
			WriteBufferSize: 32 << 10,
			WriteBufferPool: &sync.Pool{},
			// Origins are checked before the upgrade (Limits.AllowedOrigins, trust.go).
			CheckOrigin: func(*http.Request) bool { return true },
		},
		started:  time.Now(),
		trust:    newTrustState(cfg.Limits),
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[string]adminSession),
	}
	s.wf = s.newWorkflowAPI()
	s.http = &http.Server{
		Handler:  s.Handler(),
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	httpTimeouts(s.http, cfg.Limits) // httpguard.go
	// http.Server.Shutdown waits for active requests; an event stream never ends by itself.
	s.http.RegisterOnShutdown(s.wf.Stop)
	s.hpInit()
	s.startWebhookForwarding()
	s.startCluster()
	return s
}

// Registry returns the document registry (for server-side edits and tests).
func (s *Server) Registry() *shareddoc.Registry { return s.reg }

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{doc...}", s.handleWS)
	mux.HandleFunc("GET /ws", s.handleHocuspocus)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /api/rooms", s.requireAdmin(s.handleRooms))
	mux.HandleFunc("GET /api/rooms/{name...}", s.requireAdmin(s.handleRoom))
	mux.HandleFunc("GET /api/sessions", s.requireAdmin(s.handleSessions))
	mux.HandleFunc("DELETE /api/sessions/{id}", s.requireAdmin(s.handleDeleteSession))
	s.wf.Register(mux) // workflowapi
	s.webRoutes(mux)   // web.go
	s.docsRoutes(mux)
	return s.guardHandler(mux)
}

// Serve accepts connections on ln until Shutdown, counting them against the connection limits
// (httpguard.go). It returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.startAutoVersions()
	if err := s.http.Serve(s.listen(ln)); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server in order, all under ctx's deadline: stop accepting connections and
// refuse new upgrades; close every session with 1001; wait for them; flush, checkpoint and stop
// every document; then return. The store stays open (its owner closes it next). If the
// deadline passes, the remaining work is cancelled and the error says so.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	clients := make([]adminSession, 0, len(s.sessions))
	for _, c := range s.sessions {
		clients = append(clients, c)
	}
	s.mu.Unlock()

	var errs []error
	// Stops the listener and waits for plain HTTP requests; hijacked WebSockets are ours.
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop http: %w", err))
	}
	s.log.Info("closing sessions", "count", len(clients))
	for _, c := range clients {
		c.Kick(session.DisconnectGoingAway)
	}
	s.kickHocuspocus(session.DisconnectGoingAway)
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close sessions: %w", ctx.Err()))
		s.cancel()
		<-done
	}
	s.stopAutoVersions()
	s.log.Info("flushing documents", "count", s.reg.Count())
	if err := s.reg.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.closeWebhooks(ctx); err != nil {
		errs = append(errs, err)
	}
	s.stopCluster(ctx)
	s.cancel()
	return errors.Join(errs...)
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("doc")
	if err := store.ValidName(name); err != nil {
		http.Error(w, "invalid document name", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()

	c, adm := s.upgrade(w, r, name)
	if c == nil {
		s.conns.Done()
		return
	}
	// The session runs on its own goroutine and the handler returns, so that net/http drops
	// its per-connection state (buffers, request, the deep handler stack) for the connection's
	// lifetime (docs/load.md). That goroutine now owns the conns count, the admission and the
	// session table entry.
	go s.runSession(c, adm)
}

// upgrade admits and upgrades the request and registers the new session, or answers the
// request and returns nil.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, name string) (*session.Client, *admission) {
	adm, ok := s.admit(w, r, name)
	if !ok {
		return nil, nil
	}
	conn, br, err := session.Upgrade(&s.upgrader, w, r)
	if err != nil {
		adm.release()
		return nil, nil // the upgrader answered the request
	}
	user := adm.user(r.URL.Query().Get("user"))
	info := shareddoc.SessionInfo{ID: newID(), User: user, Subject: adm.subject(), Remote: s.remote(r), ConnectedAt: time.Now().UTC(), Protocol: session.ProtocolYWebsocket}
	c := session.New(conn, name, info, session.Config{
		ReadLimit:   s.cfg.ReadLimit,
		QueueBudget: s.cfg.QueueBudget,
		PongWait:    s.cfg.PongWait,
		WriteWait:   s.cfg.WriteWait,
		Clock:       s.cfg.Clock,
		Logger:      s.log,
		Stats:       &s.stats,
		Trust:       adm.sessionTrust(),
	})
	if br != nil && !s.cfg.NoParking {
		c.ParkWhenIdle(br)
	}
	s.wf.WireSession(c, r)
	// The session has what it needs of the principal (its trust, user, subject); runSession
	// keeps the admission for its releases only, so it should not keep the principal (its
	// claims and rules) alive for the connection's lifetime.
	adm.principal = nil
	s.mu.Lock()
	s.sessions[info.ID] = c
	draining := s.draining
	s.mu.Unlock()
	if draining {
		c.Kick(session.DisconnectGoingAway)
	}
	return c, adm
}

// runSession serves one upgraded connection; Shutdown waits for its end (conns).
// The goroutine ends when the session ends or parks its reader (an idle connection keeps no
// goroutine: session/park.go); the session's end runs the rest.
func (s *Server) runSession(c *session.Client, adm *admission) {
	c.Serve(s.ctx, s.reg, func(error) {
		s.mu.Lock()
		delete(s.sessions, c.Info().ID)
		s.mu.Unlock()
		adm.release()
		s.conns.Done()
	})
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// compactAfter maps server.Config.CompactAfter to shareddoc's: negative (off) is never reached.
func compactAfter(n int) int {
	if n < 0 {
		return math.MaxInt
	}
	return n
}
