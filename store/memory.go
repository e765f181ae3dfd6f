package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory keeps documents in process memory. It behaves like Postgres (same sequence numbers,
// checkpoint rules and errors) except that nothing survives the process. Safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	closed bool
	docs   map[string]*memDoc
	stats  Stats

	versions memVersions // versions.go
	outbox   memOutbox   // outbox.go
}

type memDoc struct {
	lastSeq    int64
	checkpoint []byte // nil if none
	cpSeq      int64
	updates    []memUpdate // seq ascending, all > cpSeq
	updatedAt  time.Time   // last Append
}

type memUpdate struct {
	seq  int64
	data []byte
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{docs: make(map[string]*memDoc)}
}

// Load returns the document's newest checkpoint state (nil if none), every update appended after
// it in append order, and the seq of the last of them (the checkpoint's seq if there are no
// updates; 0 for a document that was never written). The slices are the caller's to keep.
func (m *Memory) Load(ctx context.Context, name string) (checkpoint []byte, updates [][]byte, seq int64, err error) {
	if err := m.check(ctx, name); err != nil {
		return nil, nil, 0, opErr("load", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, 0, opErr("load", name, ErrClosed)
	}
	d := m.docs[name]
	if d == nil {
		return nil, nil, 0, nil
	}
	if d.checkpoint != nil {
		checkpoint = slices.Clone(d.checkpoint)
	}
	if len(d.updates) > 0 {
		updates = make([][]byte, len(d.updates))
		for i, u := range d.updates {
			updates[i] = slices.Clone(u.data)
		}
	}
	return checkpoint, updates, d.lastSeq, nil
}

// Append adds update to the document's log and returns its seq.
func (m *Memory) Append(ctx context.Context, name string, update []byte) (seq int64, err error) {
	start := time.Now()
	err = m.check(ctx, name)
	if err == nil && len(update) == 0 {
		err = ErrEmptyUpdate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil && m.closed {
		err = ErrClosed
	}
	if err != nil {
		m.stats.AppendErrors++
		return 0, opErr("append", name, err)
	}
	d := m.docs[name]
	if d == nil {
		d = &memDoc{}
		m.docs[name] = d
	}
	d.lastSeq++
	d.updates = append(d.updates, memUpdate{seq: d.lastSeq, data: slices.Clone(update)})
	d.updatedAt = time.Now().UTC()
	m.stats.Appends++
	m.stats.Flushes++
	m.stats.AppendTime += time.Since(start)
	return d.lastSeq, nil
}

// Compact stores state as the document's checkpoint covering every update with seq <= uptoSeq,
// and deletes those updates. See Postgres.Compact for the rules.
func (m *Memory) Compact(ctx context.Context, name string, state []byte, uptoSeq int64) error {
	if err := m.check(ctx, name); err != nil {
		return opErr("compact", name, err)
	}
	if len(state) == 0 {
		return opErr("compact", name, ErrEmptyUpdate)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return opErr("compact", name, ErrClosed)
	}
	d := m.docs[name]
	if d == nil {
		return opErr("compact", name, ErrNotFound)
	}
	if err := compactSeqErr(uptoSeq, d.lastSeq, d.cpSeq); err != nil {
		return opErr("compact", name, err)
	}
	d.checkpoint = slices.Clone(state)
	d.cpSeq = uptoSeq
	i := 0
	for i < len(d.updates) && d.updates[i].seq <= uptoSeq {
		i++
	}
	d.updates = slices.Clone(d.updates[i:]) // let the covered ones be collected
	return nil
}

// Delete removes the document with its updates and checkpoint; ErrNotFound if it does not exist.
func (m *Memory) Delete(ctx context.Context, name string) error {
	if err := m.check(ctx, name); err != nil {
		return opErr("delete", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return opErr("delete", name, ErrClosed)
	}
	if m.docs[name] == nil {
		return opErr("delete", name, ErrNotFound)
	}
	delete(m.docs, name)
	return nil
}

// List returns the names of all stored documents, sorted bytewise.
func (m *Memory) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, listErr(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, listErr(ErrClosed)
	}
	names := make([]string, 0, len(m.docs))
	for n := range m.docs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Ping reports whether the store is usable: ErrClosed after Close.
func (m *Memory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return pingErr(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return pingErr(ErrClosed)
	}
	return nil
}

// Stats returns cumulative counters. Each Append counts as one flush.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Close makes every later call fail with ErrClosed and drops the documents. Calling it again
// does nothing.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.docs = nil
	return nil
}

func (m *Memory) check(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return ctx.Err()
}
