package main

import (
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/webhook"
)

// docsConfig is the document API part of `ysync serve`: automatic versions and webhooks.
type docsConfig struct {
	AutoVersionInterval time.Duration
	AutoVersionKeep     int
	WebhookURLs         urlList
	WebhookSecret       string
}

// urlList is a repeatable flag; its environment variable takes a comma-separated list.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhook URL %q: want http(s)://host/path", s)
		}
		*l = append(*l, s)
	}
	return nil
}

func addDocsFlags(fs *flag.FlagSet, c *docsConfig) {
	fs.DurationVar(&c.AutoVersionInterval, "auto-version-interval", server.DefaultAutoVersionInterval, "at most this often, store an automatic version of a document being edited (0: never)")
	fs.IntVar(&c.AutoVersionKeep, "auto-version-keep", server.DefaultAutoVersionKeep, "automatic versions kept per document, newest first (named versions always stay; -1: all)")
	fs.Var(&c.WebhookURLs, "webhook-url", "receiver of change events (repeatable; YSYNC_WEBHOOK_URL takes a comma-separated list); see docs/webhooks.md")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 key signing every webhook request; prefer YSYNC_WEBHOOK_SECRET (flags show in ps)")
}

func (c docsConfig) validate() error {
	if c.AutoVersionInterval < 0 || c.AutoVersionKeep < -1 || c.AutoVersionKeep == 0 {
		return fmt.Errorf("%w: --auto-version-interval must be >= 0 and --auto-version-keep >= 1 (or -1: all)", errUsage)
	}
	return nil
}

func (c docsConfig) versions() server.VersionsConfig {
	v := server.VersionsConfig{AutoInterval: c.AutoVersionInterval, Keep: c.AutoVersionKeep}
	if c.AutoVersionInterval == 0 {
		v.AutoInterval = -1 // the flag's 0 means never; the Config's zero means the default
	}
	return v
}

func (c docsConfig) webhooks() webhook.Config {
	return webhook.Config{URLs: c.WebhookURLs, Secret: []byte(c.WebhookSecret)}
}

// logAttrs is the effective configuration; the secret is never shown, URLs without query.
func (c docsConfig) logAttrs() []any {
	urls := make([]string, len(c.WebhookURLs))
	for i, s := range c.WebhookURLs {
		if u, err := url.Parse(s); err == nil {
			u.RawQuery, u.User = "", nil
			urls[i] = u.String()
		}
	}
	return []any{
		"auto_version_interval", c.AutoVersionInterval,
		"auto_version_keep", c.AutoVersionKeep,
		"webhook_urls", strings.Join(urls, ","),
		"webhook_secret_set", c.WebhookSecret != "",
	}
}
