package shareddoc

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/store"
)

type probeCmd chan struct{}

func (c probeCmd) run(*Doc) { close(c) }

// TestSkippedUnloadRetriedAfterFailedJoin forces the race: a join is counted, the idle unload
// runs and is skipped because of it, then the join fails (its client went away). The document
// must still unload once the idle timeout passes again.
func TestSkippedUnloadRetriedAfterFailedJoin(t *testing.T) {
	clock := NewFakeClock(time.Unix(1_700_000_000, 0))
	var unloads atomic.Int64
	const idle = time.Minute
	r := NewRegistry(Config{
		Store:       store.NewMemory(),
		Clock:       clock,
		IdleTimeout: idle,
		Hooks:       Hooks{OnUnload: func(string) { unloads.Add(1) }},
	})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()

	d, _, err := r.JoinOrCreate(context.Background(), "doc", JoinOptions{Session: SessionInfo{ID: "a"}, Peer: nopPeer{}})
	if err != nil {
		t.Fatal(err)
	}
	d.Leave("a") // the idle countdown starts

	ctx, cancel := context.WithCancel(context.Background())
	testHookJoinCounted = func(d *Doc) {
		// The join is counted: let the countdown end and wait until the actor has handled it.
		clock.Advance(2 * idle)
		waitFor(t, func() bool { return r.wheel.len() == 0 && len(d.idleWake) == 0 }, "idle wake-up taken")
		probe := make(probeCmd)
		if err := d.send(context.Background(), probe); err != nil {
			t.Fatal(err)
		}
		<-probe
		if r.Count() != 1 || unloads.Load() != 0 {
			t.Errorf("unload was not skipped: count %d, unloads %d", r.Count(), unloads.Load())
		}
		cancel() // the client goes away before the join is queued
	}
	defer func() { testHookJoinCounted = nil }()
	_, _, err = r.JoinOrCreate(ctx, "doc", JoinOptions{Session: SessionInfo{ID: "b"}, Peer: nopPeer{}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("join: err %v, want context.Canceled", err)
	}
	testHookJoinCounted = nil

	waitFor(t, func() bool { return r.wheel.len() == 1 }, "idle countdown re-armed")
	clock.Advance(2 * idle)
	waitFor(t, func() bool { return r.Count() == 0 && unloads.Load() == 1 }, "document unloaded")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
