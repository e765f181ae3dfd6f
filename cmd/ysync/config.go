package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
)

// serveConfig is the effective configuration of `ysync serve`.
type serveConfig struct {
	Addr            string
	DatabaseURL     string
	Store           string // "sqlite", "postgres" or "memory"; empty until inferred (store.go)
	DataDir         string
	AutoMigrate     bool
	IdleTimeout     time.Duration
	ReadLimit       int64
	QueueBudget     int
	ParkIdle        bool
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string
	Trust           trustConfig      // trust.go: authentication and limits
	DocBounds       docBoundsConfig  // docbounds.go: awareness and loaded-document bounds
	Hocuspocus      hocuspocusConfig // hocuspocus.go: GET /ws sockets
	Docs            docsConfig       // docs.go: versions and webhooks

	RedisURL              string        // cluster mode (docs/cluster.md)
	NodeID                string        // empty: random per process
	PositionCheckInterval time.Duration // 0: never
	LoadTimeout           time.Duration // 0: no bound
	FlushTimeout          time.Duration // 0: no bound
	CompactAfter          int           // 0: no count trigger
	CompactAfterBytes     int64         // 0: no bytes trigger
}

// envName is the environment variable of a flag: YSYNC_ + upper case, dashes as underscores.
func envName(flagName string) string {
	return "YSYNC_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its environment variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" && f.Name == "database-url" {
			v = getenv("DATABASE_URL")
		}
		if v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%s=%q: %w", envName(f.Name), maskURL(v), e)
		}
	})
	return err
}

func addDatabaseFlag(fs *flag.FlagSet, dst *string) {
	fs.StringVar(dst, "database-url", "", "PostgreSQL URL (postgres://user:pass@host:5432/db); also DATABASE_URL. Empty: documents go to the SQLite file in --data-dir")
}

func parseServe(args []string, stderr io.Writer, getenv func(string) string) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", ":8080", "listen address")
	addDatabaseFlag(fs, &c.DatabaseURL)
	addStoreFlags(fs, &c)
	fs.BoolVar(&c.AutoMigrate, "auto-migrate", false, "apply database migrations at start")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", shareddoc.DefaultIdleTimeout, "keep a document loaded this long after its last session left (0: unload at once)")
	fs.Int64Var(&c.ReadLimit, "read-limit", session.DefaultReadLimit, "largest WebSocket message accepted, bytes")
	fs.IntVar(&c.QueueBudget, "queue-budget", session.DefaultQueueBudget, "bytes queued for one connection before it is closed as slow")
	fs.BoolVar(&c.ParkIdle, "park-idle-readers", true, "an idle connection's reader parks on one epoll set and keeps no goroutine (Linux, plain TCP); false keeps a blocked reader goroutine per connection (~4 KiB more each), should parking misbehave")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "deadline for a graceful shutdown")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	addTrustFlags(fs, &c.Trust)
	addDocBoundsFlags(fs, &c.DocBounds)
	addHocuspocusFlags(fs, &c.Hocuspocus)
	addDocsFlags(fs, &c.Docs)
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL (redis://host:6379/0): cluster mode, nodes relay updates and presence through it; needs --database-url")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's id in the cluster and the node registry (empty: random per process)")
	fs.DurationVar(&c.PositionCheckInterval, "position-check-interval", shareddoc.DefaultPositionCheckInterval, "with a database: how often loaded documents are compared with the log to catch up with other nodes' edits (0: never)")
	fs.DurationVar(&c.LoadTimeout, "load-timeout", shareddoc.DefaultLoadTimeout, "deadline for loading a document from the store (and waiting for its previous instance's final checkpoint); past it its connections close with 1011 and reconnect (0: none)")
	fs.DurationVar(&c.FlushTimeout, "flush-timeout", shareddoc.DefaultFlushTimeout, "deadline for one checkpoint of a document (and the workflow state hook); one that does not finish is given up, the update log keeps everything (0: none)")
	fs.IntVar(&c.CompactAfter, "compact-after", 1000, "a loaded document checkpoints (compacts its update log) after this many appended updates, and right after a load of a longer log (0: no count trigger)")
	fs.Int64Var(&c.CompactAfterBytes, "compact-after-bytes", 4<<20, "a loaded document checkpoints after this many bytes of appended updates, and right after a load of a bigger log (0: no bytes trigger)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ysync serve [flags]\n\nEvery flag can also be set as YSYNC_<FLAG> (dashes as underscores).\n\nflags:")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return c, err
	}
	if len(rest) > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", errUsage, rest)
	}
	if err := applyEnv(fs, getenv); err != nil {
		return c, err
	}
	if c.IdleTimeout < 0 || c.ReadLimit <= 0 || c.QueueBudget <= 0 || c.ShutdownTimeout <= 0 {
		return c, fmt.Errorf("%w: --idle-timeout must be >= 0; --read-limit, --queue-budget and --shutdown-timeout > 0", errUsage)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return c, err
	}
	if err := c.resolveStore(); err != nil {
		return c, err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("%w: --log-format must be text or json", errUsage)
	}
	if err := c.DocBounds.validate(); err != nil {
		return c, err
	}
	if err := c.Trust.validate(); err != nil {
		return c, err
	}
	if err := c.Hocuspocus.validate(); err != nil {
		return c, err
	}
	if c.RedisURL != "" && c.DatabaseURL == "" {
		return c, fmt.Errorf("%w: --redis-url (cluster mode) needs --database-url: the nodes share the PostgreSQL log, which is the truth Redis only carries news of", errUsage)
	}
	if c.CompactAfter < 0 || c.CompactAfterBytes < 0 {
		return c, fmt.Errorf("%w: --compact-after and --compact-after-bytes must be >= 0", errUsage)
	}
	if c.LoadTimeout < 0 || c.FlushTimeout < 0 {
		return c, fmt.Errorf("%w: --load-timeout and --flush-timeout must be >= 0", errUsage)
	}
	if c.PositionCheckInterval < 0 || len(c.NodeID) > 128 {
		return c, fmt.Errorf("%w: --position-check-interval must be >= 0 and --node-id at most 128 bytes", errUsage)
	}
	if err := c.Docs.validate(); err != nil {
		return c, err
	}
	return c, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, s)
	}
	return l, nil
}

func newLogger(c serveConfig, w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// maskURL hides the password of a database URL (and anything unparsable).
func maskURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		if strings.Contains(s, "password") {
			return "(masked)"
		}
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func getenv(k string) string { return os.Getenv(k) }
