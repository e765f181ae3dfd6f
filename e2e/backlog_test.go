package e2e

import (
	"os"
	"testing"
	"time"
)

// PostgreSQL goes away while y-websocket editors keep typing into a document whose budget of
// unstored bytes is small: past the budget the writers are paused (the server stops reading
// them) instead of being closed with 1013 — which made every y-websocket client reconnect every
// ~200 ms, re-sending and re-syncing, exactly while the database was down. Once the database is
// back, every held edit is applied and stored, the editors converge, and a restart serves it all.
//
// YSYNC_E2E_BACKLOG_WAIT overrides --max-backlog-wait ("0" shows the storm of the old behaviour).
func TestPostgresOutageBacklogPausesWriters(t *testing.T) {
	pg := newCluster(t)
	bin := buildBinary(t)
	addr := freeAddr(t)
	doc := "outage/backlog"
	wait := "60s"
	if w := os.Getenv("YSYNC_E2E_BACKLOG_WAIT"); w != "" {
		wait = w
	}
	p := startServeAt(t, bin, pg.url(), addr, "--max-pending-bytes-per-doc", "2048", "--max-backlog-wait", wait)
	base := httpBase(p)
	waitReady(t, base, 200)
	ed := startEditors(t, p.base, doc, 2, "")
	time.Sleep(time.Second)

	pg.stop(t)
	waitReady(t, base, 503)
	// 2 KiB of edits take the editors well under a second; then they type into paused
	// connections (or, with the old behaviour, reconnect in a loop).
	time.Sleep(4 * time.Second)
	m := metrics(t, p)
	if closes := m["ysync_storage_backlog_closes_total"]; closes != 0 {
		t.Errorf("%v connections closed with 1013 in 4 s of outage with --max-backlog-wait %s, want 0 (paused %v times)",
			closes, wait, m["ysync_storage_backlog_paused_total"])
	}
	if m["ysync_storage_backlog_paused_peers"] == 0 {
		t.Errorf("no writer paused 4 s into the outage (paused %v times in all)", m["ysync_storage_backlog_paused_total"])
	}
	t.Logf("during the outage: paused %v times, %v paused now, %v updates held, %v backlog closes",
		m["ysync_storage_backlog_paused_total"], m["ysync_storage_backlog_paused_peers"],
		m["ysync_storage_backlog_held_updates_total"], m["ysync_storage_backlog_closes_total"])

	pg.start(t)
	waitReady(t, base, 200)
	items := ed.stop(t)
	acked := ed.ackedLabels()
	checkAll(t, "converged clients", acked, items)
	waitStored(t, base, doc, "")
	if n := metrics(t, p)["ysync_storage_backlog_paused_peers"]; n != 0 {
		t.Errorf("%v writers still paused after the outage", n)
	}
	p.kill(t)
	p = startServeAt(t, bin, pg.url(), addr)
	got := readStrings(t, p.base, doc)
	checkAll(t, "after the outage and a restart", items, got)
	t.Logf("%d items, %d acked; all stored", len(items), len(acked))
}
