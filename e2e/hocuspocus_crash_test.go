package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ysync/ysync/internal/pgtest"
)

// startHPEditors runs e2e/hocuspocus_crash.mjs: continuous Hocuspocus editors of one document,
// reporting each update answered SyncStatus(1).
func startHPEditors(t *testing.T, url, doc string, clients int) *editors {
	t.Helper()
	return runEditors(t, "hocuspocus_crash.mjs", url, doc, fmt.Sprint(clients))
}

// Hocuspocus providers edit continuously while the real binary is SIGKILLed at random moments
// and restarted on the same PostgreSQL database. Every update answered SyncStatus(1) is in the
// database (checked while the server is dead, so only what was committed counts), and the
// providers converge.
func TestHocuspocusDurableAcksCrashLoop(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	addr := freeAddr(t)
	doc := "hocuspocus:crash/doc"
	p := startServeAt(t, bin, dbURL, addr)
	ed := startHPEditors(t, p.base, doc, 3)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	const cycles = 12
	for i := range cycles {
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		p.kill(t)
		t.Logf("cycle %d: killed with %d acked so far", i+1, ed.ackedCount())
		if i%3 == 2 {
			time.Sleep(100 * time.Millisecond) // drain the editors' pipe
			checkAll(t, fmt.Sprintf("database after kill %d", i+1), ed.ackedLabels(), storedItems(t, dbURL, doc))
		}
		p = startServeAt(t, bin, dbURL, addr)
	}
	time.Sleep(500 * time.Millisecond)
	items := ed.stop(t)
	acked := ed.ackedLabels()
	if len(acked) < 100 {
		t.Fatalf("only %d updates acked over %d cycles", len(acked), cycles)
	}
	checkAll(t, "converged providers", acked, items)
	waitStored(t, httpBase(p), doc, "")
	p.kill(t)
	checkAll(t, "database after the last kill (acked)", acked, storedItems(t, dbURL, doc))
	checkAll(t, "database after the last kill (converged)", items, storedItems(t, dbURL, doc))
	t.Logf("%d cycles: %d items, %d acked, all stored", cycles, len(items), len(acked))
}
