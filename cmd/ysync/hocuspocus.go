package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/session"
)

// hocuspocusConfig bounds the Hocuspocus sockets of GET /ws (server.HocuspocusLimits).
type hocuspocusConfig struct {
	MaxDocuments  int
	MaxHeldFrames int
	MaxHeldBytes  int
	Keepalive     time.Duration
	TokenRefresh  time.Duration
}

func addHocuspocusFlags(fs *flag.FlagSet, c *hocuspocusConfig) {
	fs.IntVar(&c.MaxDocuments, "hocuspocus-max-documents", session.DefaultHPMaxDocuments, "documents one Hocuspocus socket may open; more close it with 1008")
	fs.IntVar(&c.MaxHeldFrames, "hocuspocus-max-held-frames", session.DefaultHPMaxHeldFrames, "frames a Hocuspocus socket may send for documents not yet authenticated; more close it with 1008")
	fs.IntVar(&c.MaxHeldBytes, "hocuspocus-max-held-bytes", session.DefaultHPMaxHeldBytes, "bytes of such frames; more close it with 1008")
	fs.DurationVar(&c.Keepalive, "hocuspocus-keepalive", session.DefaultHPKeepalive, "longest a Hocuspocus socket goes without a message from the server (providers reconnect after 30 s of silence)")
	fs.DurationVar(&c.TokenRefresh, "hocuspocus-token-refresh", session.DefaultHPTokenRefresh, "ask a Hocuspocus provider for a fresh token this long before its token expires")
}

func (c hocuspocusConfig) validate() error {
	if c.MaxDocuments <= 0 || c.MaxHeldFrames <= 0 || c.MaxHeldBytes <= 0 || c.Keepalive <= 0 || c.TokenRefresh <= 0 {
		return fmt.Errorf("%w: the --hocuspocus-* values must be > 0", errUsage)
	}
	return nil
}

func (c hocuspocusConfig) limits() server.HocuspocusLimits {
	return server.HocuspocusLimits(c)
}
