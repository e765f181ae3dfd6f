package main

import (
	"io"
	"testing"

	"github.com/ysync/ysync/shareddoc"
)

func TestDocBoundsFlagsDefaultsEnvAndErrors(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseServe(nil, io.Discard, none)
	if err != nil {
		t.Fatal(err)
	}
	if b := c.DocBounds; b.MaxAwarenessClientsPerConn != 4 || b.MaxAwarenessStateBytes != 64<<10 || b.MaxLoadedDocs != shareddoc.DefaultMaxLoadedDocs {
		t.Fatalf("defaults %+v", b)
	}
	env := map[string]string{"YSYNC_MAX_LOADED_DOCS": "500", "YSYNC_MAX_AWARENESS_STATE_BYTES": "-1"}
	c, err = parseServe([]string{"--max-awareness-clients-per-conn", "2"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	l := c.DocBounds.apply(c.Trust.limits())
	if l.MaxLoadedDocs != 500 || l.MaxAwarenessStateBytes != -1 || l.MaxAwarenessClientsPerConn != 2 {
		t.Fatalf("limits %+v", l)
	}
	for _, bad := range [][]string{{"--max-loaded-docs", "0"}, {"--max-awareness-clients-per-conn", "-2"}, {"--max-awareness-state-bytes", "x"}} {
		if _, err := parseServe(bad, io.Discard, none); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
