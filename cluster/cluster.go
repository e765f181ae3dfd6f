// Package cluster runs ysync on several nodes: it relays news of the Postgres log (updates with
// their seq) and awareness between the nodes through Redis pub/sub, keeps a heartbeat key per
// node so that the others can clear a dead node's presence, and implements shareddoc.Relay.
//
// Redis only carries news. The log in Postgres is the truth: a node that misses a message finds
// the gap by the next message's seq, or by the registry's position check, and reads it from the
// log (package shareddoc, prefix.go). Nothing waits on Redis to accept an edit: publishing is a
// non-blocking hand-off to a publisher goroutine, and while Redis is away messages are dropped
// and counted.
//
// # Goroutines
//
//   - publisher: takes messages from a bounded queue and publishes them in pipelined batches.
//   - subscriber manager: applies SUBSCRIBE / UNSUBSCRIBE for documents loaded and unloaded, so
//     that Relay.Subscribe never blocks on the network.
//   - receiver: reads the pub/sub connection (go-redis reconnects and resubscribes it), decodes
//     messages (untrusted bytes: a message that does not decode is logged, counted and dropped),
//     ignores this node's own, and hands the rest to the documents without blocking.
//   - heartbeat: refreshes this node's key (TTL) and lists the others; a node whose key has
//     been gone for longer than the TTL is dead, and Hooks.NodeGone runs. After Redis comes
//     back (or the subscription was re-established) Hooks.Reconnected runs.
//
// Close stops all of them and waits.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ysync/ysync/shareddoc"
)

// Timing defaults, and how they relate.
const (
	// DefaultHeartbeatInterval is how often a node refreshes its key and looks at the others'.
	DefaultHeartbeatInterval = 3 * time.Second
	// DefaultHeartbeatTTL is the key's lifetime: several intervals, so that one slow refresh
	// does not look like a death.
	DefaultHeartbeatTTL = 3 * DefaultHeartbeatInterval
	// goneAfterIntervals: a node whose key has been missing from this many intervals' worth of
	// listings is gone. More than one, because after a Redis restart (empty) every node writes
	// its key again within an interval. A crashed node is declared gone within
	// TTL + (2.5 + 1) intervals: under 20 s with the defaults, inside the 30 s clients wait.
	goneAfterIntervals = 2.5
	// publishQueue bounds the messages waiting for the publisher; past it they are dropped
	// (the log has the updates; awareness is renewed by clients every 15 s).
	publishQueue = 8192
	// publishBatch is the most messages sent in one pipeline.
	publishBatch = 256
)

// Config configures a Cluster. Zero values mean the defaults noted per field.
type Config struct {
	// RedisURL is redis://[user:password@]host:port/db (or rediss://). Required.
	RedisURL string
	// NodeID names this node in messages and heartbeats. Empty means a random id.
	NodeID string
	// Prefix starts every key and channel name, so that several deployments can share one
	// Redis. Empty means "ysync:".
	Prefix string
	// HeartbeatInterval and HeartbeatTTL: see the defaults. TTL below 2 intervals is raised.
	HeartbeatInterval time.Duration
	HeartbeatTTL      time.Duration
	// Info is stored in the heartbeat key (address, version) for operators. Optional.
	Info string
	// Logger receives the logs. Nil means discard.
	Logger *slog.Logger
}

// Hooks are what the cluster tells the rest of the server. Both are optional and run on the
// cluster's heartbeat or receiver goroutine.
type Hooks struct {
	// Reconnected: the connection to Redis is back (messages may have been lost meanwhile);
	// the server runs a position check at once.
	Reconnected func()
	// NodeGone: node's heartbeat expired; the server removes its sessions' awareness states.
	NodeGone func(node string)
}

// Stats are the cluster's counters, for /metrics. Safe for concurrent use.
type Stats struct {
	Published      atomic.Int64 // messages published
	PublishDropped atomic.Int64 // messages dropped: queue full, or Redis failed
	Received       atomic.Int64 // messages from other nodes handed to documents
	Own            atomic.Int64 // this node's own messages, ignored
	Malformed      atomic.Int64 // messages that did not decode, dropped
	RedisErrors    atomic.Int64 // failed Redis commands
	Connected      atomic.Int64 // 1 while the last Redis command succeeded
	Reconnects     atomic.Int64 // times Hooks.Reconnected ran
	HeartbeatsSeen atomic.Int64 // other nodes' heartbeat keys seen
	NodesGone      atomic.Int64 // other nodes declared dead
	Nodes          atomic.Int64 // live nodes, this one included
}

// Cluster is one node's connection to the others. It implements shareddoc.Relay.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	rdb   *redis.Client
	ps    *redis.PubSub
	hooks Hooks
	stats Stats

	out    chan outMsg
	resync chan struct{} // capacity 1: subscription state changed
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu   sync.Mutex
	subs map[string]map[*subscription]struct{} // channel → subscribers
}

type subscription struct{ sub shareddoc.Subscriber }

type outMsg struct {
	channel string
	data    []byte
}

// New connects to Redis (checking it answers within ctx) and returns a cluster that is not yet
// running; call Start.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, errors.New("cluster: invalid Redis URL") // the parse error may quote a password
	}
	// Short timeouts: nothing waits on Redis, and a dead connection must be noticed quickly.
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	if cfg.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.NodeID = hex.EncodeToString(b[:])
	}
	if len(cfg.NodeID) > MaxNodeIDLen {
		return nil, fmt.Errorf("cluster: node id longer than %d bytes", MaxNodeIDLen)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "ysync:"
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatTTL <= 0 {
		cfg.HeartbeatTTL = 3 * cfg.HeartbeatInterval
	}
	cfg.HeartbeatTTL = max(cfg.HeartbeatTTL, 2*cfg.HeartbeatInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cluster: connect to Redis: %w", err)
	}
	c := &Cluster{
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.NodeID),
		rdb:    rdb,
		out:    make(chan outMsg, publishQueue),
		resync: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		subs:   make(map[string]map[*subscription]struct{}),
	}
	c.stats.Connected.Store(1)
	return c, nil
}

// NodeID returns this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Stats returns the live counters.
func (c *Cluster) Stats() *Stats { return &c.stats }

// Client returns the Redis client (for other cluster-wide state of the server).
func (c *Cluster) Client() *redis.Client { return c.rdb }

// Key returns a Redis key or channel name under the cluster's prefix.
func (c *Cluster) Key(parts ...string) string { return c.cfg.Prefix + strings.Join(parts, ":") }

// Start runs the cluster's goroutines. Call it once, before documents load.
func (c *Cluster) Start(h Hooks) {
	c.hooks = h
	// The receive channel's own health check pings an idle subscription and reconnects it.
	c.ps = c.rdb.Subscribe(context.Background())
	msgs := c.ps.ChannelWithSubscriptions(
		redis.WithChannelSize(1024),
		redis.WithChannelHealthCheckInterval(c.cfg.HeartbeatInterval),
		redis.WithChannelSendTimeout(time.Second),
	)
	c.wg.Add(4)
	go c.publisher()
	go c.subscriber()
	go c.receiver(msgs)
	go c.heartbeat()
}

// Close stops the goroutines, removes this node's heartbeat key (so the others clear its
// presence at once) and closes the connection. Calling it again does nothing.
func (c *Cluster) Close() error {
	c.once.Do(func() {
		close(c.stop)
		if c.ps != nil {
			_ = c.ps.Close()
		}
		c.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.rdb.Del(ctx, c.Key("node", c.cfg.NodeID)).Err()
		cancel()
		_ = c.rdb.Close()
	})
	return nil
}

func (c *Cluster) docChannel(doc string) string { return c.cfg.Prefix + "doc:" + doc }

// --- shareddoc.Relay ---------------------------------------------------------------------

// Subscribe implements shareddoc.Relay. It does not block: the SUBSCRIBE is sent by the
// subscriber goroutine.
func (c *Cluster) Subscribe(doc string, sub shareddoc.Subscriber) func() {
	ch := c.docChannel(doc)
	s := &subscription{sub: sub}
	c.mu.Lock()
	set := c.subs[ch]
	if set == nil {
		set = make(map[*subscription]struct{})
		c.subs[ch] = set
	}
	set[s] = struct{}{}
	c.mu.Unlock()
	c.wantResync()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if set := c.subs[ch]; set != nil {
				delete(set, s)
				if len(set) == 0 {
					delete(c.subs, ch)
				}
			}
			c.mu.Unlock()
			c.wantResync()
		})
	}
}

// PublishUpdate implements shareddoc.Relay.
func (c *Cluster) PublishUpdate(doc string, seq int64, update []byte) {
	c.publish(doc, Message{Kind: KindUpdate, Node: c.cfg.NodeID, Seq: seq, Data: update})
}

// PublishAwareness implements shareddoc.Relay.
func (c *Cluster) PublishAwareness(doc string, update []byte) {
	c.publish(doc, Message{Kind: KindAwareness, Node: c.cfg.NodeID, Data: update})
}

// QueryAwareness implements shareddoc.Relay.
func (c *Cluster) QueryAwareness(doc string) {
	c.publish(doc, Message{Kind: KindAwarenessQuery, Node: c.cfg.NodeID})
}

func (c *Cluster) publish(doc string, m Message) {
	select {
	case c.out <- outMsg{channel: c.docChannel(doc), data: Encode(nil, m)}:
	default:
		c.stats.PublishDropped.Add(1)
	}
}

func (c *Cluster) wantResync() {
	select {
	case c.resync <- struct{}{}:
	default:
	}
}

// --- goroutines ----------------------------------------------------------------------------

func (c *Cluster) publisher() {
	defer c.wg.Done()
	batch := make([]outMsg, 0, publishBatch)
	for {
		select {
		case <-c.stop:
			return
		case m := <-c.out:
			batch = append(batch[:0], m)
		}
	fill:
		for len(batch) < publishBatch {
			select {
			case m := <-c.out:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range batch {
				p.Publish(ctx, m.channel, m.data)
			}
			return nil
		})
		cancel()
		if err != nil {
			c.redisFailed("publish", err)
			c.stats.PublishDropped.Add(int64(len(batch)))
		} else {
			c.redisOK()
			c.stats.Published.Add(int64(len(batch)))
		}
		clear(batch)
	}
}

// subscriber makes the pub/sub connection's channel set match the documents loaded.
func (c *Cluster) subscriber() {
	defer c.wg.Done()
	subscribed := make(map[string]struct{})
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.resync:
		case <-retry.C:
		}
		c.mu.Lock()
		var add, remove []string
		for ch := range c.subs {
			if _, ok := subscribed[ch]; !ok {
				add = append(add, ch)
			}
		}
		for ch := range subscribed {
			if _, ok := c.subs[ch]; !ok {
				remove = append(remove, ch)
			}
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		if len(add) > 0 {
			// go-redis remembers the channels even when the command fails, and subscribes
			// them again when it reconnects.
			err = c.ps.Subscribe(ctx, add...)
			for _, ch := range add {
				subscribed[ch] = struct{}{}
			}
		}
		if len(remove) > 0 {
			err = errors.Join(err, c.ps.Unsubscribe(ctx, remove...))
			for _, ch := range remove {
				delete(subscribed, ch)
			}
		}
		cancel()
		if err != nil {
			c.redisFailed("subscribe", err)
			retry.Reset(time.Second)
		}
	}
}

func (c *Cluster) receiver(msgs <-chan any) {
	defer c.wg.Done()
	for {
		var v any
		var ok bool
		select {
		case <-c.stop:
			return
		case v, ok = <-msgs:
			if !ok {
				return
			}
		}
		switch m := v.(type) {
		case *redis.Subscription:
			// Also sent when go-redis re-subscribes after a reconnect: messages may have been
			// lost in between, so look at the log.
			if m.Kind == "subscribe" {
				c.reconnected()
			}
		case *redis.Message:
			c.deliver(m.Channel, []byte(m.Payload))
		}
	}
}

// deliver decodes one message and hands it to the channel's documents.
func (c *Cluster) deliver(channel string, payload []byte) {
	m, err := Decode(payload)
	if err != nil {
		c.stats.Malformed.Add(1)
		c.log.Warn("relay message does not decode; dropped", "channel", channel, "bytes", len(payload), "err", err)
		return
	}
	if m.Node == c.cfg.NodeID {
		c.stats.Own.Add(1)
		return
	}
	c.mu.Lock()
	set := c.subs[channel]
	subs := make([]shareddoc.Subscriber, 0, len(set))
	for s := range set {
		subs = append(subs, s.sub)
	}
	c.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	c.stats.Received.Add(1)
	for _, s := range subs {
		switch m.Kind {
		case KindUpdate:
			s.RemoteUpdate(m.Node, m.Seq, m.Data)
		case KindAwareness:
			s.RemoteAwareness(m.Node, m.Data)
		case KindAwarenessQuery:
			s.RemoteAwarenessQuery(m.Node)
		}
	}
}

// reconnected coalesces reconnect notices: Hooks.Reconnected runs at most once per interval.
func (c *Cluster) reconnected() {
	c.stats.Reconnects.Add(1)
	if c.hooks.Reconnected != nil {
		c.hooks.Reconnected()
	}
}

func (c *Cluster) heartbeat() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	lastSeen := make(map[string]time.Time) // other nodes → when their key was last present
	wasDown := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.HeartbeatInterval)
		live, err := c.beat(ctx)
		cancel()
		now := time.Now()
		if err != nil {
			c.redisFailed("heartbeat", err)
			wasDown = true
		} else {
			c.redisOK()
			if wasDown {
				wasDown = false
				c.log.Info("Redis is back; checking positions against the log")
				c.reconnected()
			}
			c.stats.Nodes.Store(int64(len(live)) + 1)
			for _, n := range live {
				lastSeen[n] = now
				c.stats.HeartbeatsSeen.Add(1)
			}
			for n, at := range lastSeen {
				// The key expired (a TTL without refresh) and stayed away, measured while
				// Redis answers: after a Redis restart every node rewrites its key within an
				// interval, so that is no death.
				if now.Sub(at) > time.Duration(goneAfterIntervals*float64(c.cfg.HeartbeatInterval)) {
					delete(lastSeen, n)
					c.stats.NodesGone.Add(1)
					c.log.Warn("node's heartbeat expired; removing its sessions' presence", "gone", n)
					if c.hooks.NodeGone != nil {
						c.hooks.NodeGone(n)
					}
				}
			}
		}
		if wasDown {
			// The clock of absence restarts when Redis answers again.
			for n := range lastSeen {
				lastSeen[n] = now
			}
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// beat refreshes this node's key and returns the other live nodes.
func (c *Cluster) beat(ctx context.Context) ([]string, error) {
	if err := c.rdb.Set(ctx, c.Key("node", c.cfg.NodeID), c.cfg.Info, c.cfg.HeartbeatTTL).Err(); err != nil {
		return nil, err
	}
	prefix := c.Key("node", "")
	var others []string
	iter := c.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if id := strings.TrimPrefix(iter.Val(), prefix); id != c.cfg.NodeID {
			others = append(others, id)
		}
	}
	return others, iter.Err()
}

func (c *Cluster) redisFailed(op string, err error) {
	c.stats.RedisErrors.Add(1)
	if c.stats.Connected.Swap(0) == 1 {
		c.log.Warn("Redis unavailable; serving local sessions, catching up from the log", "op", op, "err", err)
	}
}

func (c *Cluster) redisOK() {
	if c.stats.Connected.Swap(1) == 0 {
		c.log.Info("Redis connection restored")
	}
}
