package main

import (
	"io"
	"testing"
)

func TestCompactFlags(t *testing.T) {
	c, err := parseServe(nil, io.Discard, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.CompactAfter != 1000 || c.CompactAfterBytes != 4<<20 {
		t.Fatalf("defaults %d, %d", c.CompactAfter, c.CompactAfterBytes)
	}
	env := map[string]string{"YSYNC_COMPACT_AFTER_BYTES": "0"}
	c, err = parseServe([]string{"--compact-after", "50"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.CompactAfter != 50 || c.CompactAfterBytes != 0 {
		t.Fatalf("got %d, %d", c.CompactAfter, c.CompactAfterBytes)
	}
	for _, bad := range [][]string{{"--compact-after", "-1"}, {"--compact-after-bytes", "-5"}, {"--compact-after", "x"}} {
		if _, err := parseServe(bad, io.Discard, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
