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

// shut is the first half of the stores' Close: it waits for running operations, marks the store
// closed (later ones fail with ErrClosed), closes reqs and waits for the writer to commit what
// was queued. false (and nothing done) when the store was closed already.
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

// start makes reqs, opts.QueueSize long, and starts the writer, which hands each batch to flush:
// flush commits it and reports the outcome with finish.
func (f *appendFront) start(opts Options, flush func([]*appendReq)) {
	f.reqs = make(chan *appendReq, opts.QueueSize)
	f.writerDone = make(chan struct{})
	go f.writer(opts, flush)
}

// finish counts the flush of batch and reports its outcome to each waiting Append: err nil
// means committed, with each r.seq set by the flush; otherwise every Append of the batch gets
// err.
func (f *appendFront) finish(batch []*appendReq, err error) {
	f.flushes.Add(1)
	if err == nil {
		f.appends.Add(uint64(len(batch)))
	}
	for _, r := range batch {
		if err != nil {
			r.seq, r.err = 0, err
		}
		f.pending.Add(-1)
		close(r.done)
	}
}

// writer is the single goroutine that commits appends, in batches, until reqs is closed and
// drained (group commit): it takes the first queued append, adds whatever else is already queued
// (or arrives within opts.MaxDelay) up to opts.MaxBatch updates and opts.MaxBatchBytes bytes,
// hands the batch to flush, and repeats. An append whose Append gave up first is skipped (take).
func (f *appendFront) writer(opts Options, flush func([]*appendReq)) {
	defer close(f.writerDone)
	var (
		batch []*appendReq
		carry *appendReq // taken but did not fit in the previous batch
	)
	for {
		first := carry
		carry = nil
		if first == nil {
			r, ok := <-f.reqs
			if !ok {
				return
			}
			if !f.take(r) {
				continue
			}
			first = r
		}
		batch = append(batch[:0], first)
		size := len(first.data)

		var timer *time.Timer
		var timeout <-chan time.Time
		if opts.MaxDelay > 0 {
			timer = time.NewTimer(opts.MaxDelay)
			timeout = timer.C
		}
	fill:
		for len(batch) < opts.MaxBatch && size < opts.MaxBatchBytes {
			var r *appendReq
			var ok bool
			select {
			case r, ok = <-f.reqs:
			default:
				if timeout == nil {
					break fill
				}
				select {
				case r, ok = <-f.reqs:
				case <-timeout:
					break fill
				}
			}
			if !ok {
				break fill // closed: commit this batch; the next receive returns
			}
			if !f.take(r) {
				continue
			}
			if size+len(r.data) > opts.MaxBatchBytes {
				carry = r
				break fill
			}
			batch = append(batch, r)
			size += len(r.data)
		}
		if timer != nil {
			timer.Stop()
		}
		flush(batch)
		clear(batch) // drop references to the updates
	}
}
