package shareddoc

import (
	"context"
	"sync"
	"time"
)

// storeResult reports one batch: per update, its seq or its error.
type storeResult struct {
	seqs []int64
	errs []error
	dur  time.Duration
}

type compactResult struct {
	upto int64
	err  error
}

// flush hands the next batch of pending updates to the store. Only one batch is in flight per
// document; its updates are appended concurrently so that the store commits them together.
// Their order in the log may differ from the apply order, which Yjs does not mind.
func (d *Doc) flush() {
	if len(d.storing) > 0 || len(d.pending) == 0 || d.retryTimer != nil {
		return
	}
	n := min(len(d.pending), d.r.cfg.MaxBatch)
	d.storing = d.pending[:n:n]
	d.pending = d.pending[n:]
	updates := make([][]byte, n)
	for i, u := range d.storing {
		updates[i] = u.update
	}
	store, ctx, name, clock, results := d.r.cfg.Store, d.r.storeCtx, d.name, d.r.clock, d.results
	go func() {
		start := clock.Now()
		res := storeResult{seqs: make([]int64, n), errs: make([]error, n)}
		var wg sync.WaitGroup
		for i, u := range updates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res.seqs[i], res.errs[i] = store.Append(ctx, name, u)
			}()
		}
		wg.Wait()
		res.dur = clock.Now().Sub(start)
		results <- res
	}()
}

// stored takes a batch's results: stored updates are echoed to their senders (that is when a
// y-websocket client may consider its edit safe); failed ones are retried with backoff.
func (d *Doc) stored(res storeResult) {
	batch := d.storing
	d.storing = nil
	var failed []pendingUpdate
	var firstErr error
	for i, u := range batch {
		if err := res.errs[i]; err != nil {
			failed = append(failed, u)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		d.ownStored(res.seqs[i])
		if d.r.cfg.Relay != nil {
			d.r.cfg.Relay.PublishUpdate(d.name, res.seqs[i], u.update)
		}
		d.logLen++
		d.logBytes += int64(len(u.update))
		u.ack.ack(res.seqs[i], nil)
		if u.origin == "" {
			continue
		}
		if p := d.peers[u.origin]; p != nil {
			if a, ok := p.p.(Acker); ok {
				d.ack(p, a, true)
			} else {
				d.sendTo(p, u.frame)
			}
		}
	}
	if ok := len(batch) - len(failed); ok > 0 {
		d.r.stats.StoreAppends.Add(int64(ok))
		d.r.stats.StoreLatency.Observe(res.dur)
		if h := d.r.cfg.Hooks.OnStored; h != nil {
			top := d.pos.prefix
			for i := range batch {
				if res.errs[i] == nil {
					top = max(top, res.seqs[i])
				}
			}
			h(d.name, top)
		}
	}
	if len(failed) > 0 {
		d.r.stats.StoreErrors.Add(int64(len(failed)))
		if d.r.storeCtx.Err() != nil {
			lost := len(failed) + len(d.pending)
			d.log.Error("storage cancelled; updates not stored", "updates", lost, "err", firstErr)
			for _, u := range append(failed, d.pending...) {
				u.ack.ack(0, ErrNotStored)
			}
			d.pending = nil
			return
		}
		d.pending = append(failed, d.pending...)
		d.retryDelay = min(max(2*d.retryDelay, retryMin), retryMax)
		d.log.Error("append failed; will retry", "updates", len(failed), "retry_in", d.retryDelay, "err", firstErr)
		d.retryTimer = d.r.clock.NewTimer(d.retryDelay)
		return
	}
	d.retryDelay = 0
	if d.logTooLong() {
		d.compact()
	}
	if d.state == stateUnloading {
		d.tryUnload()
	}
}

// compact checkpoints the live document in the background. The state is encoded now, after
// every update with seq <= the verified prefix was applied, so it covers them; never more,
// since a checkpoint deletes what it covers: other processes may have appended updates this one
// has not applied, and updates applied from the relay's messages are only trusted once re-read
// from the log (prefix.go). When the relay has taken the prefix past the verified one, a verify
// fill is started too, so that the next checkpoint covers more.
func (d *Doc) compact() {
	if d.corrupt {
		return // a half-applied state is never checkpointed (failCorrupt): the log has the rest
	}
	if d.pos.verified < d.pos.prefix && !d.pos.filling {
		d.pos.want, d.pos.verify = true, true // the next checkpoint covers more
	}
	if d.compacting || d.pos.verified == 0 {
		return
	}
	state, err := safeDiff(d.ydoc, nil)
	if err != nil {
		d.log.Error("encode state for checkpoint", "err", err)
		return
	}
	d.compacting = true
	upto, store, name, out := d.pos.verified, d.r.cfg.Store, d.name, d.compacts
	r := d.r
	go func() {
		err := r.withinFlush(func(ctx context.Context) error { return store.Compact(ctx, name, state, upto) })
		out <- compactResult{upto: upto, err: err}
	}()
}

// logTooLong reports whether the log since the last checkpoint reached either compaction
// trigger: CompactAfter updates or CompactAfterBytes bytes (when that is positive).
func (d *Doc) logTooLong() bool {
	if d.logLen >= d.r.cfg.CompactAfter {
		return true
	}
	return d.r.cfg.CompactAfterBytes > 0 && d.logBytes >= d.r.cfg.CompactAfterBytes
}

func (d *Doc) compacted(res compactResult) {
	d.compacting = false
	if res.err != nil {
		d.r.stats.StoreErrors.Add(1)
		d.log.Warn("checkpoint failed", "err", res.err)
	} else {
		d.logLen, d.logBytes = 0, 0 // approximately: updates stored meanwhile are counted again
		d.log.Debug("checkpointed", "upto_seq", res.upto)
	}
	// Failed or not, the unload waited for this checkpoint; it goes ahead (a failed one only
	// leaves a longer log to replay).
	if d.state == stateUnloading {
		d.tryUnload()
	}
}

func (d *Doc) idle() bool { return len(d.pending) == 0 && len(d.storing) == 0 && !d.compacting }
