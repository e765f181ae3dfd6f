package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// RedisBridge joins a Broker to the brokers of the other nodes through one Redis pub/sub
// channel: events published on this broker go to Redis (by a publisher goroutine; Publish never
// waits on Redis), and events of other nodes are published on this broker with Event.Node set.
// Messages from Redis are untrusted: one that does not decode is logged, counted and dropped.
type RedisBridge struct {
	b       *Broker
	rdb     *redis.Client
	channel string
	node    string
	log     *slog.Logger

	out  chan []byte
	ps   *redis.PubSub
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	// Counters for metrics.
	Published, Dropped, Received, Malformed atomic.Int64
}

// wireEvent is an event on the bridge's channel.
type wireEvent struct {
	Node  string `json:"node"`
	Topic string `json:"topic"`
	Event Event  `json:"event"`
}

// maxWireEvent bounds a message from Redis; events are a few hundred bytes.
const maxWireEvent = 64 << 10

// Bridge connects b to channel on rdb as node (a non-empty id unique in the cluster) and starts
// its goroutines. Close stops them; rdb stays the caller's.
func Bridge(b *Broker, rdb *redis.Client, channel, node string, log *slog.Logger) (*RedisBridge, error) {
	if node == "" {
		return nil, errors.New("pubsub: Bridge needs a node id")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &RedisBridge{b: b, rdb: rdb, channel: channel, node: node, log: log,
		out: make(chan []byte, 1024), stop: make(chan struct{})}
	r.ps = rdb.Subscribe(context.Background(), channel)
	b.mu.Lock()
	if b.out != nil {
		b.mu.Unlock()
		_ = r.ps.Close()
		return nil, errors.New("pubsub: broker already bridged")
	}
	b.out = r.forward
	b.mu.Unlock()
	msgs := r.ps.Channel(redis.WithChannelSize(256), redis.WithChannelSendTimeout(time.Second))
	r.wg.Add(2)
	go r.publisher()
	go r.receiver(msgs)
	return r, nil
}

// Close detaches the broker and stops the goroutines. Calling it again does nothing.
func (r *RedisBridge) Close() {
	r.once.Do(func() {
		r.b.mu.Lock()
		r.b.out = nil
		r.b.mu.Unlock()
		close(r.stop)
		_ = r.ps.Close()
		r.wg.Wait()
	})
}

func (r *RedisBridge) forward(topic string, ev Event) {
	data, err := json.Marshal(wireEvent{Node: r.node, Topic: topic, Event: ev})
	if err != nil {
		r.Dropped.Add(1)
		return
	}
	select {
	case r.out <- data:
	default:
		r.Dropped.Add(1)
	}
}

func (r *RedisBridge) publisher() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case data := <-r.out:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := r.rdb.Publish(ctx, r.channel, data).Err()
			cancel()
			if err != nil {
				r.Dropped.Add(1)
				r.log.Warn("event not sent to the other nodes", "err", err)
				continue
			}
			r.Published.Add(1)
		}
	}
}

func (r *RedisBridge) receiver(msgs <-chan *redis.Message) {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			r.receive([]byte(m.Payload))
		}
	}
}

func (r *RedisBridge) receive(payload []byte) {
	w, err := decodeWireEvent(payload)
	if err != nil {
		r.Malformed.Add(1)
		r.log.Warn("event from Redis does not decode; dropped", "bytes", len(payload), "err", err)
		return
	}
	if w.Node == r.node {
		return
	}
	r.Received.Add(1)
	ev := w.Event
	ev.Node = w.Node
	r.b.mu.Lock()
	r.b.deliver(w.Topic, ev)
	r.b.mu.Unlock()
}

// decodeWireEvent parses a message of the bridge's channel: JSON {"node", "topic", "event"}
// with a non-empty node and topic, at most 64 KiB.
func decodeWireEvent(b []byte) (wireEvent, error) {
	var w wireEvent
	if len(b) > maxWireEvent {
		return w, fmt.Errorf("event of %d bytes, more than %d", len(b), maxWireEvent)
	}
	if !utf8.Valid(b) {
		return w, errors.New("event is not UTF-8")
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return wireEvent{}, fmt.Errorf("decode event: %w", err)
	}
	if w.Node == "" || w.Topic == "" || w.Event.Type == "" {
		return wireEvent{}, errors.New("event without node, topic or type")
	}
	return w, nil
}
