package shareddoc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// stuckStore is a store.Memory whose Load and Compact, while switched on, block until the test
// ends, whatever their context says: a driver that hangs. newHarnessStuck releases them before
// the harness shuts down.
type stuckStore struct {
	*store.Memory
	stuckLoad, stuckCompact atomic.Bool
	compacts                atomic.Int64
	release                 chan struct{}
}

func newHarnessStuck(t *testing.T, cfg shareddoc.Config) (*harness, *stuckStore) {
	s := &stuckStore{Memory: store.NewMemory(), release: make(chan struct{})}
	cfg.Store = s
	h := newHarness(t, cfg)
	t.Cleanup(func() { close(s.release) }) // before the harness's Shutdown (cleanups run LIFO)
	return h, s
}

func stored(t *testing.T, s *stuckStore, name string) int64 {
	_, _, seq, err := s.Memory.Load(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func (s *stuckStore) Load(ctx context.Context, name string) ([]byte, [][]byte, int64, error) {
	if s.stuckLoad.Load() {
		<-s.release
	}
	return s.Memory.Load(ctx, name)
}

func (s *stuckStore) Compact(ctx context.Context, name string, state []byte, upto int64) error {
	s.compacts.Add(1)
	if s.stuckCompact.Load() {
		<-s.release
		return errors.New("released")
	}
	return s.Memory.Compact(ctx, name, state, upto)
}

// joinWithin joins in the background and returns the error, failing the test if the join does
// not return within limit.
func joinWithin(t *testing.T, reg *shareddoc.Registry, name, id string, limit time.Duration) (*shareddoc.Doc, *fakePeer, error) {
	t.Helper()
	p := &fakePeer{id: id}
	type res struct {
		d   *shareddoc.Doc
		err error
	}
	ch := make(chan res, 1)
	go func() {
		d, _, err := reg.JoinOrCreate(context.Background(), name, shareddoc.JoinOptions{
			Session: shareddoc.SessionInfo{ID: id}, Peer: p,
		})
		ch <- res{d, err}
	}()
	select {
	case r := <-ch:
		return r.d, p, r.err
	case <-time.After(limit):
		t.Fatalf("join %s still waiting after %v", id, limit)
		return nil, nil, nil
	}
}

func TestLoadTimeout(t *testing.T) {
	t.Parallel()
	h, st := newHarnessStuck(t, shareddoc.Config{LoadTimeout: 50 * time.Millisecond})
	st.stuckLoad.Store(true)
	_, _, err := joinWithin(t, h.reg, "d", "a", 5*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("join on a hanging Load: err = %v, want a deadline error", err)
	}
	for _, e := range []error{shareddoc.ErrClosed, shareddoc.ErrNotFound, shareddoc.ErrJoinRefused, shareddoc.ErrTooManyDocuments} {
		if errors.Is(err, e) {
			t.Fatalf("err %v is %v; sessions would not close with 1011", err, e)
		}
	}
	eventually(t, func() bool { return h.reg.Count() == 0 }, "the failed document to leave the registry")
	st.stuckLoad.Store(false)
	if _, _, err := joinWithin(t, h.reg, "d", "b", 5*time.Second); err != nil {
		t.Fatalf("join once the store answers: %v", err)
	}
}

// A document whose final checkpoint hangs keeps its successor waiting no longer than the load
// timeout; with a flush timeout it gives up the checkpoint, and the successor loads what was
// stored (the log is complete).
func TestJoinOnStuckPredecessor(t *testing.T) {
	t.Parallel()
	for _, flush := range []time.Duration{0, 100 * time.Millisecond} {
		h, st := newHarnessStuck(t, shareddoc.Config{LoadTimeout: 100 * time.Millisecond, FlushTimeout: flush})
		d, _ := h.join("d", "a")
		c := newClient(1)
		send(t, d, "a", syncproto.EncodeUpdate(c.insert(t, "kept")))
		eventually(t, func() bool { return stored(t, st, "d") == 1 }, "the update to be stored")
		st.stuckCompact.Store(true)
		d.Leave("a") // IdleTimeout 0: unloads now; its checkpoint hangs
		eventually(t, func() bool { return st.compacts.Load() == 1 }, "the final checkpoint to start")

		if flush == 0 {
			_, _, err := joinWithin(t, h.reg, "d", "b", 5*time.Second)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("join behind a stuck predecessor: err = %v, want a deadline error", err)
			}
			continue
		}
		select {
		case <-d.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("document with a hanging checkpoint did not end after the flush timeout")
		}
		d2, p, err := joinWithin(t, h.reg, "d", "b", 5*time.Second)
		if err != nil {
			t.Fatalf("join after the predecessor gave up its checkpoint: %v", err)
		}
		send(t, d2, "b", syncproto.EncodeSyncStep1(nil))
		eventually(t, func() bool { return len(p.messages(t)) >= 2 }, "the sync reply")
		if got := replay(t, p.messages(t)); got != "kept" {
			t.Fatalf("successor has %q, want %q", got, "kept")
		}
	}
}

// A checkpoint taken while loaded that hangs must not keep the document from unloading.
func TestStuckBackgroundCheckpointGivenUp(t *testing.T) {
	t.Parallel()
	h, st := newHarnessStuck(t, shareddoc.Config{CompactAfter: 1, FlushTimeout: 100 * time.Millisecond})
	st.stuckCompact.Store(true)
	d, _ := h.join("d", "a")
	send(t, d, "a", syncproto.EncodeUpdate(newClient(1).insert(t, "x")))
	eventually(t, func() bool { return st.compacts.Load() >= 1 }, "a checkpoint to start")
	d.Leave("a")
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("document with a hanging checkpoint never unloaded")
	}
}
