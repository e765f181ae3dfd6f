package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free log-linear latency histogram over microseconds: values below 128 µs have a
// bucket each, above that every power of two is split into 64 buckets, so a quantile is off by at
// most 1/64 (1.6 %). The exact maximum is kept on the side.
type hist struct {
	buckets [histBuckets]atomic.Int64
	count   atomic.Int64
	sum     atomic.Int64 // ns
	max     atomic.Int64 // ns
}

const (
	histLinear  = 128
	histSub     = 64
	histBuckets = histLinear + 40*histSub
)

func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	e := bits.Len64(us) - 7 // us >> e is in [64, 128)
	i := histLinear + (e-1)*histSub + int(us>>e) - histSub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketMid returns the middle of bucket i, in microseconds.
func bucketMid(i int) float64 {
	if i < histLinear {
		return float64(i) + 0.5
	}
	e := (i-histLinear)/histSub + 1
	sub := (i-histLinear)%histSub + histSub
	lo := float64(uint64(sub) << e)
	return lo + float64(uint64(1)<<e)/2
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(uint64(d/time.Microsecond))].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile returns the q-quantile (0 < q <= 1) in milliseconds; the exact maximum for q = 1 and
// NaN when the histogram is empty.
func (h *hist) quantile(q float64) float64 {
	n := h.count.Load()
	if n == 0 {
		return math.NaN()
	}
	if q >= 1 {
		return float64(h.max.Load()) / 1e6
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var cum int64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		if cum >= rank {
			v := bucketMid(i) / 1e3
			if mx := float64(h.max.Load()) / 1e6; v > mx {
				v = mx // never report a quantile above the true maximum
			}
			return v
		}
	}
	return float64(h.max.Load()) / 1e6
}

func (h *hist) mean() float64 {
	n := h.count.Load()
	if n == 0 {
		return math.NaN()
	}
	return float64(h.sum.Load()) / float64(n) / 1e6
}

// slot is the bookkeeping of one edit: when it was sent, how many other clients still have to
// apply it, and when the latest of them did. Times are nanoseconds since the ledger's base (the
// monotonic clock).
type slot struct {
	sent      atomic.Int64
	last      atomic.Int64
	remaining atomic.Int32
	measured  atomic.Bool
}

// ledger tracks every edit of every client. Edit n of client c is slots[c][n]; a client's slots
// are allocated up front (capacity bounds the edits a client may make), so that senders and
// receivers never race on a growing slice.
type ledger struct {
	base  time.Time
	slots [][]slot
	sent  []atomic.Int64 // edits made per client

	expected  atomic.Int64 // deliveries owed: sum of remaining at send time
	delivered atomic.Int64 // deliveries seen (any phase)
	// measured-window counters
	mSent      atomic.Int64
	mDelivered atomic.Int64
	mComplete  atomic.Int64
	unexpected atomic.Int64 // deliveries of edits beyond a sender's recorded count (must be 0)

	edit hist // per edit: send → applied at the last other client
	one  hist // per delivery: send → applied at one client
}

func newLedger(clients, capacity int) *ledger {
	l := &ledger{base: time.Now(), slots: make([][]slot, clients), sent: make([]atomic.Int64, clients)}
	for i := range l.slots {
		l.slots[i] = make([]slot, capacity)
	}
	return l
}

func (l *ledger) now() int64 { return int64(time.Since(l.base)) }

// capacity returns how many edits client c may still make.
func (l *ledger) full(c int) bool { return int(l.sent[c].Load()) >= len(l.slots[c]) }

// send records edit number seq of client c, made at time at (ledger clock) and owed to receivers
// other clients. It must be called before the edit can reach anyone.
func (l *ledger) send(c, seq int, at int64, receivers int, measured bool) {
	s := &l.slots[c][seq]
	s.remaining.Store(int32(receivers))
	s.measured.Store(measured)
	s.last.Store(at)
	s.sent.Store(at)
	l.sent[c].Store(int64(seq + 1))
	l.expected.Add(int64(receivers))
	if measured {
		l.mSent.Add(1)
	}
}

// deliver records that edits [from, to) of client c were applied by one receiver at time at.
func (l *ledger) deliver(c, from, to int, at int64) {
	if n := int(l.sent[c].Load()); to > n {
		l.unexpected.Add(int64(to - max(from, n)))
		to = n
	}
	for seq := from; seq < to; seq++ {
		s := &l.slots[c][seq]
		for {
			m := s.last.Load()
			if at <= m || s.last.CompareAndSwap(m, at) {
				break
			}
		}
		l.delivered.Add(1)
		sent := s.sent.Load()
		measured := s.measured.Load()
		if measured {
			l.mDelivered.Add(1)
			l.one.record(time.Duration(at - sent))
		}
		if s.remaining.Add(-1) == 0 && measured {
			l.mComplete.Add(1)
			l.edit.record(time.Duration(s.last.Load() - sent))
		}
	}
}

// outstanding is the number of deliveries still owed.
func (l *ledger) outstanding() int64 { return l.expected.Load() - l.delivered.Load() }

// lost counts deliveries still owed, and the edits that at least one receiver never applied.
func (l *ledger) lost() (deliveries, edits int64) {
	for c := range l.slots {
		n := int(l.sent[c].Load())
		for seq := 0; seq < n; seq++ {
			if r := l.slots[c][seq].remaining.Load(); r > 0 {
				deliveries += int64(r)
				edits++
			}
		}
	}
	return deliveries, edits
}
