package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ysync/ysync/migrations"
	"github.com/ysync/ysync/store"
)

// The document stores `ysync serve` can use.
const (
	storeSQLite   = "sqlite"   // embedded file under --data-dir: durable on one machine (default)
	storePostgres = "postgres" // --database-url: durable, shared, needed by workflows and clusters
	storeMemory   = "memory"   // nothing survives the process: tests and demos
)

// defaultDataDir is where the SQLite store lives when --data-dir is not given (relative to the
// working directory, like y-sweet's and Hocuspocus' quick starts).
const defaultDataDir = "./ysync-data"

func addStoreFlags(fs *flag.FlagSet, c *serveConfig) {
	fs.StringVar(&c.Store, "store", "", "document store: sqlite, postgres or memory (default: postgres when --database-url is set, else sqlite)")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "directory of the SQLite store (created on first start)")
}

// resolveStore infers --store from --database-url when it is not given and checks that the
// two agree: postgres needs a URL; sqlite and memory ignore one (it is logged as ignored).
func (c *serveConfig) resolveStore() error {
	switch c.Store {
	case "":
		if c.DatabaseURL != "" {
			c.Store = storePostgres
		} else {
			c.Store = storeSQLite
		}
	case storePostgres:
		if c.DatabaseURL == "" {
			return fmt.Errorf("%w: --store postgres needs --database-url (or DATABASE_URL)", errUsage)
		}
	case storeSQLite, storeMemory:
	default:
		return fmt.Errorf("%w: --store %q: want sqlite, postgres or memory", errUsage, c.Store)
	}
	if c.Store == storeSQLite && c.DataDir == "" {
		return fmt.Errorf("%w: --store sqlite needs a --data-dir", errUsage)
	}
	if c.AutoMigrate && c.Store != storePostgres {
		// The SQLite store always migrates its own file; memory has nothing to migrate.
		c.AutoMigrate = false
	}
	return nil
}

// openStore opens the configured store and says which it is, loudly when nothing will survive.
func openStore(ctx context.Context, cfg serveConfig, log *slog.Logger, stderr io.Writer) (closableStore, error) {
	if cfg.Store != storePostgres && cfg.DatabaseURL != "" {
		log.Warn("--database-url is ignored with this --store", "store", cfg.Store)
	}
	switch cfg.Store {
	case storeMemory:
		log.Warn("IN-MEMORY STORE (--store memory): every document is LOST when the server stops. Drop --store memory to keep them in " + defaultDataDir + ", or set --database-url.")
		fmt.Fprintln(stderr, "WARNING: in-memory store: nothing survives a restart (--store memory)")
		return store.NewMemory(), nil
	case storeSQLite:
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := store.OpenSQLite(openCtx, cfg.DataDir, store.Options{})
		if err != nil {
			return nil, err
		}
		log.Info("documents are stored in SQLite", "file", st.Path(),
			"note", "workflows need PostgreSQL (--database-url); their routes answer 503")
		return st, nil
	}
	if cfg.AutoMigrate {
		if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
		log.Info("migrations applied")
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pg, err := store.OpenPostgres(openCtx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, err
	}
	log.Info("documents are stored in PostgreSQL", "database_url", maskURL(cfg.DatabaseURL))
	return pg, nil
}
