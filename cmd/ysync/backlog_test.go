package main

import (
	"io"
	"testing"
	"time"

	"github.com/ysync/ysync/shareddoc"
)

// --max-backlog-wait defaults to shareddoc's 30s, is read from YSYNC_MAX_BACKLOG_WAIT, and its 0
// ("close at once") reaches server.Limits as negative (0 there would be the default).
func TestMaxBacklogWaitFlag(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseServe(nil, io.Discard, none)
	if err != nil {
		t.Fatal(err)
	}
	if c.Trust.MaxBacklogWait != shareddoc.DefaultMaxBacklogWait || c.Trust.limits().MaxBacklogWait != shareddoc.DefaultMaxBacklogWait {
		t.Fatalf("default %v / %v", c.Trust.MaxBacklogWait, c.Trust.limits().MaxBacklogWait)
	}
	env := map[string]string{"YSYNC_MAX_BACKLOG_WAIT": "2m"}
	c, err = parseServe(nil, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Trust.limits().MaxBacklogWait; got != 2*time.Minute {
		t.Fatalf("from env: %v", got)
	}
	c, err = parseServe([]string{"--max-backlog-wait", "0"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Trust.limits().MaxBacklogWait; got >= 0 {
		t.Fatalf("--max-backlog-wait 0 gave %v, want negative (close at once)", got)
	}
	if _, err := parseServe([]string{"--max-backlog-wait", "soon"}, io.Discard, none); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}
