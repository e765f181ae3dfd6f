package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/cluster"
	"github.com/ysync/ysync/internal/leaktest"
	"github.com/ysync/ysync/internal/redistest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type got struct {
	kind int
	node string
	seq  int64
	data string
}

type recorder struct {
	mu  sync.Mutex
	got []got
}

func (r *recorder) add(g got) { r.mu.Lock(); r.got = append(r.got, g); r.mu.Unlock() }
func (r *recorder) RemoteUpdate(node string, seq int64, u []byte) {
	r.add(got{cluster.KindUpdate, node, seq, string(u)})
}
func (r *recorder) RemoteAwareness(node string, u []byte) {
	r.add(got{cluster.KindAwareness, node, 0, string(u)})
}
func (r *recorder) RemoteAwarenessQuery(node string) {
	r.add(got{cluster.KindAwarenessQuery, node, 0, ""})
}
func (r *recorder) all() []got { r.mu.Lock(); defer r.mu.Unlock(); return append([]got(nil), r.got...) }

type node struct {
	*cluster.Cluster
	mu          sync.Mutex
	gone        []string
	reconnected int
}

func (n *node) goneList() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.gone...)
}
func (n *node) reconnects() int { n.mu.Lock(); defer n.mu.Unlock(); return n.reconnected }

func start(t *testing.T, url, prefix, id string) *node {
	t.Helper()
	c, err := cluster.New(context.Background(), cluster.Config{
		RedisURL: url, NodeID: id, Prefix: prefix,
		HeartbeatInterval: 100 * time.Millisecond, HeartbeatTTL: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Cluster: c}
	c.Start(cluster.Hooks{
		Reconnected: func() { n.mu.Lock(); n.reconnected++; n.mu.Unlock() },
		NodeGone:    func(id string) { n.mu.Lock(); n.gone = append(n.gone, id); n.mu.Unlock() },
	})
	t.Cleanup(func() { _ = c.Close() })
	return n
}

// waitSubscribed publishes probes from a until b's subscriber sees one: SUBSCRIBE is async.
func waitSubscribed(t *testing.T, a *node, doc string, r *recorder) {
	t.Helper()
	eventually(t, func() bool {
		a.QueryAwareness(doc)
		return len(r.all()) > 0
	}, "subscription to "+doc)
}

func TestRelayBetweenNodes(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	a, b := start(t, url, prefix, "a"), start(t, url, prefix, "b")
	var ra, rb, other recorder
	defer a.Subscribe("doc", &ra)()
	defer b.Subscribe("doc", &rb)()
	defer b.Subscribe("doc/other", &other)()
	waitSubscribed(t, a, "doc", &rb)

	a.PublishUpdate("doc", 7, []byte("update-7"))
	a.PublishAwareness("doc", []byte("aw"))
	eventually(t, func() bool {
		for _, g := range rb.all() {
			if g == (got{cluster.KindAwareness, "a", 0, "aw"}) {
				return true
			}
		}
		return false
	}, "awareness at b")
	var sawUpdate bool
	for _, g := range rb.all() {
		if g == (got{cluster.KindUpdate, "a", 7, "update-7"}) {
			sawUpdate = true
		}
	}
	if !sawUpdate {
		t.Fatalf("b got %+v, want the update with seq 7 from a", rb.all())
	}
	if len(ra.all()) != 0 {
		t.Fatalf("a got its own messages: %+v", ra.all())
	}
	if a.Stats().Own.Load() == 0 {
		t.Fatal("a's own messages were not counted as ignored")
	}
	if len(other.all()) != 0 {
		t.Fatalf("another document's subscriber got %+v", other.all())
	}
}

func TestMalformedMessageDropped(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	a, b := start(t, url, prefix, "a"), start(t, url, prefix, "b")
	var rb recorder
	defer b.Subscribe("doc", &rb)()
	waitSubscribed(t, a, "doc", &rb)
	for _, junk := range []string{"", "\x01", "\x01\x01\x00", "garbage that is not a message"} {
		if err := a.Client().Publish(context.Background(), prefix+"doc:doc", junk).Err(); err != nil {
			t.Fatal(err)
		}
	}
	a.PublishUpdate("doc", 1, []byte("ok"))
	eventually(t, func() bool {
		for _, g := range rb.all() {
			if g.kind == cluster.KindUpdate {
				return true
			}
		}
		return false
	}, "the good message after the junk")
	if n := b.Stats().Malformed.Load(); n != 4 {
		t.Fatalf("malformed = %d, want 4", n)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	a, b := start(t, url, prefix, "a"), start(t, url, prefix, "b")
	var r1, r2 recorder
	unsub := b.Subscribe("doc", &r1)
	waitSubscribed(t, a, "doc", &r1)
	unsub()
	defer b.Subscribe("doc2", &r2)()
	waitSubscribed(t, a, "doc2", &r2) // the unsubscribe was applied before this subscribe
	n := len(r1.all())
	a.PublishUpdate("doc", 2, []byte("late"))
	a.PublishUpdate("doc2", 1, []byte("marker"))
	eventually(t, func() bool {
		for _, g := range r2.all() {
			if g.data == "marker" {
				return true
			}
		}
		return false
	}, "marker on doc2")
	if len(r1.all()) != n {
		t.Fatalf("unsubscribed subscriber still got %+v", r1.all()[n:])
	}
}

func TestNodeGoneAfterHeartbeatExpires(t *testing.T) {
	url, prefix := redistest.URL(t), redistest.Prefix(t)
	a := start(t, url, prefix, "a")
	b := start(t, url, prefix, "b")
	eventually(t, func() bool { return a.Stats().Nodes.Load() == 2 }, "a sees two nodes")
	_ = b.Close()
	eventually(t, func() bool { return len(a.goneList()) == 1 }, "b declared gone")
	if g := a.goneList(); g[0] != "b" {
		t.Fatalf("gone = %v", g)
	}
}

// Redis killed and restarted: publishing meanwhile does not block, and the node reports the
// reconnection so that the server checks positions against the log.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	a := start(t, srv.URL(), prefix, "a")
	b := start(t, srv.URL(), prefix, "b")
	var rb recorder
	defer b.Subscribe("doc", &rb)()
	waitSubscribed(t, a, "doc", &rb)
	before := b.reconnects()
	srv.Kill()
	eventually(t, func() bool { return a.Stats().Connected.Load() == 0 }, "a notices Redis is down")
	for i := range 100 {
		a.PublishUpdate("doc", int64(i+1), []byte("lost"))
	}
	srv.Restart()
	eventually(t, func() bool { return b.reconnects() > before && a.Stats().Connected.Load() == 1 }, "reconnect reported")
	n := len(rb.all())
	eventually(t, func() bool {
		a.PublishUpdate("doc", 1000, []byte("after"))
		return len(rb.all()) > n
	}, "messages flow again")
	if a.Stats().RedisErrors.Load() == 0 {
		t.Fatal("no Redis error counted while it was down")
	}
	if _, err := cluster.New(context.Background(), cluster.Config{RedisURL: "redis://127.0.0.1:1/0"}); err == nil {
		t.Fatal("New with an unreachable Redis succeeded")
	}
}
