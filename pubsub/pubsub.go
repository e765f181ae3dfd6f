// Package pubsub carries in-process events between the parts of the server: a publisher names a
// topic, every current subscriber of that topic gets the event.
//
// Publishing never blocks. Each subscription has a bounded buffer; when an event does not fit,
// the subscription is ended: it is removed from the topic and its channel is closed. A subscriber
// that sees its channel closed without having cancelled knows it missed events and should
// re-read whatever state it mirrors before subscribing again. Events are never dropped silently
// from a subscription that stays open, so an open subscription sees every event of its topic in
// publish order.
//
// Topics are plain strings; the packages that publish define their names (package workflow uses
// "workflows" for all workflows and "workflow:<id>" for one).
//
// In cluster mode a Redis bridge (redis.go) forwards every event published on this node to the
// other nodes and publishes theirs here, with Event.Node naming where it came from. Across nodes
// delivery is at most once (Redis pub/sub): subscribers mirror state they can re-read.
package pubsub

import "sync"

// Event types.
const (
	// EventSaved: a workflow document was saved into the tables.
	EventSaved = "saved"
	// EventReset: a workflow document was reset from the tables.
	EventReset = "reset"
	// EventUpdated: a workflow was created or replaced by a write outside its document.
	EventUpdated = "updated"
	// EventDeleted: a workflow was (soft) deleted.
	EventDeleted = "deleted"
)

// Event is one thing that happened to the entity ID.
type Event struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	LockVersion int    `json:"lock_version"`
	// Node is the cluster node the event happened on when it came from another node through
	// the Redis bridge; empty for events of this node.
	Node string `json:"node,omitempty"`
}

// DefaultBuffer is the buffer of each subscription when New is given 0.
const DefaultBuffer = 64

// Broker routes events from publishers to subscribers. The zero value is not usable; call New.
// Safe for concurrent use.
type Broker struct {
	buffer int

	mu     sync.Mutex
	closed bool
	topics map[string]map[*subscription]struct{}
	out    func(topic string, ev Event) // the bridge's forwarder; set once by Bridge
}

type subscription struct {
	ch     chan Event
	closed bool // guarded by Broker.mu
}

// New returns a broker whose subscriptions buffer up to buffer events each. Zero or less means
// DefaultBuffer.
func New(buffer int) *Broker {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Broker{buffer: buffer, topics: make(map[string]map[*subscription]struct{})}
}

// Subscribe returns a channel that receives the events published on topic from now on, and a
// function that ends the subscription and closes the channel (calling it again does nothing).
// The channel is also closed when the subscriber falls a full buffer behind, and when the broker
// is closed. After Close, Subscribe returns an already closed channel.
func (b *Broker) Subscribe(topic string) (<-chan Event, func()) {
	s := &subscription{ch: make(chan Event, b.buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closed = true
		close(s.ch)
		return s.ch, func() {}
	}
	subs := b.topics[topic]
	if subs == nil {
		subs = make(map[*subscription]struct{})
		b.topics[topic] = subs
	}
	subs[s] = struct{}{}
	return s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.end(topic, s)
	}
}

// Publish delivers ev to every subscriber of topic without blocking. A subscriber whose buffer is
// full is unsubscribed and its channel closed (see the package comment). Publishing on a closed
// broker does nothing.
func (b *Broker) Publish(topic string, ev Event) {
	b.mu.Lock()
	out := b.out
	b.deliver(topic, ev)
	b.mu.Unlock()
	if out != nil && ev.Node == "" {
		out(topic, ev)
	}
}

// deliver hands ev to the local subscribers of topic; b.mu must be held.
func (b *Broker) deliver(topic string, ev Event) {
	for s := range b.topics[topic] {
		select {
		case s.ch <- ev:
		default:
			b.end(topic, s)
		}
	}
}

// Subscribers returns the number of open subscriptions of topic.
func (b *Broker) Subscribers(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.topics[topic])
}

// Close ends every subscription (closing its channel); later Subscribe calls get a closed channel
// and later Publish calls do nothing. Calling it again does nothing.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for topic, subs := range b.topics {
		for s := range subs {
			b.end(topic, s)
		}
	}
}

// end removes s from topic and closes its channel; b.mu must be held.
func (b *Broker) end(topic string, s *subscription) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	subs := b.topics[topic]
	delete(subs, s)
	if len(subs) == 0 {
		delete(b.topics, topic)
	}
}
