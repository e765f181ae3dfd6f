package store

import (
	"strings"
	"time"
)

// groupCommit is the batching loop of a single store writer: it takes the first queued append,
// adds whatever else is already queued (or arrives within opts.MaxDelay) up to opts.MaxBatch
// updates and opts.MaxBatchBytes bytes, hands the batch to flush, and repeats until reqs is
// closed and drained. take claims a request (false: its Append gave up; skip it).
//
// It is the same loop as Postgres.writer, written without a receiver so that any store can use
// it (the SQLite store does; Postgres can move onto it when its file is next touched).
func groupCommit(reqs <-chan *appendReq, opts Options, take func(*appendReq) bool, flush func([]*appendReq)) {
	var (
		batch []*appendReq
		carry *appendReq // taken but did not fit in the previous batch
	)
	for {
		first := carry
		carry = nil
		if first == nil {
			r, ok := <-reqs
			if !ok {
				return
			}
			if !take(r) {
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
			case r, ok = <-reqs:
			default:
				if timeout == nil {
					break fill
				}
				select {
				case r, ok = <-reqs:
				case <-timeout:
					break fill
				}
			}
			if !ok {
				break fill // closed: commit this batch; the next receive returns
			}
			if !take(r) {
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

func isNoSuchTable(msg string) bool { return strings.Contains(msg, "no such table") }
