package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// appendFront is what the Postgres and SQLite stores share in front of their writers: the
// lifetime lock that Close takes, the queue of appends waiting for the writer, and the append
// counters. Each store embeds it and supplies the flush that commits a batch.
type appendFront struct {
	// life is held shared by every operation while it runs (by Append while it enqueues) and
	// exclusively by Close, so Close waits for running operations and later ones see closed.
	life   sync.RWMutex
	closed bool

	reqs       chan *appendReq // closed by Close; the writer drains it and exits
	writerDone chan struct{}

	appends, appendErrors, flushes atomic.Uint64
	appendNanos, pending           atomic.Int64
}

// appendReq is one Append waiting for the writer.
type appendReq struct {
	name  string
	data  []byte
	state atomic.Int32 // reqQueued → reqTaken (by the writer) or reqCancelled (by Append)
	done  chan struct{}
	seq   int64 // set before done is closed
	err   error
}

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

// append is the body of the stores' Append: submit, timed and counted, with its error wrapped
// by opErr.
func (f *appendFront) append(ctx context.Context, name string, update []byte) (int64, error) {
	start := time.Now()
	seq, err := f.submit(ctx, name, update)
	if err != nil {
		f.appendErrors.Add(1)
		return 0, opErr("append", name, err)
	}
	f.appendNanos.Add(int64(time.Since(start)))
	return seq, nil
}

// submit queues update for the writer and waits for its commit (see Postgres.Append and
// SQLite.Append for what the outcome means).
func (f *appendFront) submit(ctx context.Context, name string, update []byte) (int64, error) {
	if err := ValidName(name); err != nil {
		return 0, err
	}
	if len(update) == 0 {
		return 0, ErrEmptyUpdate
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	req := &appendReq{name: name, data: update, done: make(chan struct{})}
	if !f.enter() {
		return 0, ErrClosed
	}
	f.pending.Add(1)
	select {
	case f.reqs <- req:
		f.life.RUnlock()
	case <-ctx.Done():
		f.life.RUnlock()
		f.pending.Add(-1)
		return 0, ctx.Err()
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqCancelled) {
			return 0, ctx.Err()
		}
		<-req.done
	}
	return req.seq, req.err
}

// take claims r for writing; false if its Append gave up first.
func (f *appendFront) take(r *appendReq) bool {
	if r.state.CompareAndSwap(reqQueued, reqTaken) {
		return true
	}
	f.pending.Add(-1)
	return false
}

// stats is the body of the stores' Stats.
func (f *appendFront) stats() Stats {
	return Stats{
		Appends:      f.appends.Load(),
		AppendErrors: f.appendErrors.Load(),
		Flushes:      f.flushes.Load(),
		AppendTime:   time.Duration(f.appendNanos.Load()),
		Pending:      int(f.pending.Load()),
	}
}

// shut is the first half of the stores' Close: it marks the store closed, so that operations
// from now on fail with ErrClosed, waiting for running ones, then closes reqs and waits for the
// writer to commit what was queued. false (and nothing done) when the store was closed already.
func (f *appendFront) shut() bool {
	f.life.Lock()
	if f.closed {
		f.life.Unlock()
		return false
	}
	f.closed = true
	close(f.reqs)
	f.life.Unlock()
	<-f.writerDone
	return true
}

// enter takes life shared; false (and not held) when the store is closed.
func (f *appendFront) enter() bool {
	f.life.RLock()
	if f.closed {
		f.life.RUnlock()
		return false
	}
	return true
}
