package shareddoc_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/internal/leaktest"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) { leaktest.Main(m) }

// eventually polls cond until it holds or the deadline passes. Tests never sleep for a fixed
// time; they wait for a condition.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// fakePeer records frames. budget > 0 makes Send fail once that many frames are queued.
type fakePeer struct {
	id     string
	budget int

	mu     sync.Mutex
	frames [][]byte
	reason shareddoc.CloseReason
}

func (p *fakePeer) Send(frame []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.budget > 0 && len(p.frames) >= p.budget {
		return false
	}
	p.frames = append(p.frames, frame)
	return true
}

func (p *fakePeer) Close(reason shareddoc.CloseReason, _ error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reason == 0 {
		p.reason = reason
	}
}

func (p *fakePeer) closedWith() shareddoc.CloseReason {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

// messages returns the decoded frames received so far.
func (p *fakePeer) messages(t *testing.T) []syncproto.Message {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]syncproto.Message, len(p.frames))
	for i, f := range p.frames {
		m, err := syncproto.Decode(f)
		if err != nil {
			t.Fatalf("peer %s got undecodable frame %x: %v", p.id, f, err)
		}
		out[i] = m
	}
	return out
}

func (p *fakePeer) count(t *testing.T, typ syncproto.Type, st syncproto.SyncType) int {
	n := 0
	for _, m := range p.messages(t) {
		if m.Type == typ && (typ != syncproto.TypeSync || m.SyncType == st) {
			n++
		}
	}
	return n
}

// gatedStore wraps store.Memory: Appends wait while the gate is closed, Loads are counted.
type gatedStore struct {
	*store.Memory
	loads    atomic.Int64
	appends  atomic.Int64
	compacts atomic.Int64
	failing  atomic.Bool

	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func newGatedStore() *gatedStore { return &gatedStore{Memory: store.NewMemory()} }

func (s *gatedStore) close() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *gatedStore) open() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *gatedStore) Load(ctx context.Context, name string) ([]byte, [][]byte, int64, error) {
	s.loads.Add(1)
	return s.Memory.Load(ctx, name)
}

func (s *gatedStore) Append(ctx context.Context, name string, update []byte) (int64, error) {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if s.failing.Load() {
		return 0, errors.New("disk on fire")
	}
	s.appends.Add(1)
	return s.Memory.Append(ctx, name, update)
}

func (s *gatedStore) Compact(ctx context.Context, name string, state []byte, upto int64) error {
	s.compacts.Add(1)
	return s.Memory.Compact(ctx, name, state, upto)
}

// client is a Yjs replica on the test side that produces updates.
type client struct {
	doc     *crdt.Doc
	updates [][]byte
}

func newClient(id uint64) *client {
	c := &client{doc: crdt.NewDoc(crdt.DocOptions{ClientID: id})}
	c.doc.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) {
		c.updates = append(c.updates, append([]byte(nil), u...))
	})
	return c
}

// insert edits the client's text and returns the update.
func (c *client) insert(t *testing.T, s string) []byte {
	t.Helper()
	txt := c.doc.GetText("t")
	if err := txt.Insert(len([]rune(txt.String())), s, nil); err != nil {
		t.Fatal(err)
	}
	return c.updates[len(c.updates)-1]
}

// replay applies every sync payload a peer received to a fresh doc and returns its text.
func replay(t *testing.T, msgs []syncproto.Message) string {
	t.Helper()
	d := crdt.NewDoc(crdt.DocOptions{})
	for _, m := range msgs {
		if m.Type == syncproto.TypeSync && m.SyncType != syncproto.SyncStep1 {
			if err := crdt.ApplyUpdate(d, m.Payload, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d.GetText("t").String()
}

type harness struct {
	t     *testing.T
	reg   *shareddoc.Registry
	store *gatedStore
	clock *shareddoc.FakeClock
}

func newHarness(t *testing.T, cfg shareddoc.Config) *harness {
	t.Helper()
	h := &harness{t: t, store: newGatedStore(), clock: shareddoc.NewFakeClock(time.Unix(1_700_000_000, 0))}
	if cfg.Store == nil {
		cfg.Store = h.store
	}
	cfg.Clock = h.clock
	h.reg = shareddoc.NewRegistry(cfg)
	t.Cleanup(func() {
		h.store.open()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.reg.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

func (h *harness) join(name, id string) (*shareddoc.Doc, *fakePeer) {
	h.t.Helper()
	p := &fakePeer{id: id}
	d, _, err := h.reg.JoinOrCreate(context.Background(), name, shareddoc.JoinOptions{
		Session: shareddoc.SessionInfo{ID: id, User: "u-" + id},
		Peer:    p,
	})
	if err != nil {
		h.t.Fatalf("join %s: %v", id, err)
	}
	return d, p
}

func send(t *testing.T, d *shareddoc.Doc, id string, frame []byte) {
	t.Helper()
	m, err := syncproto.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Receive(context.Background(), id, m); err != nil {
		t.Fatal(err)
	}
}
