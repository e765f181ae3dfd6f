package shareddoc

import (
	"sync/atomic"
	"time"
)

// Stats are the registry's counters, read by the server's /metrics. All fields are safe for
// concurrent use.
type Stats struct {
	// DocumentsLoaded is the number of documents currently in memory.
	DocumentsLoaded atomic.Int64
	// StoreAppends counts updates durably appended.
	StoreAppends atomic.Int64
	// StoreErrors counts failed Load, Append and Compact calls.
	StoreErrors atomic.Int64
	// StoreLatency is the latency of one batch of appends, from hand-off to the last commit.
	StoreLatency Histogram
	// LoadLatency is how long loading a document took: the store's Load, applying what it
	// returned, and the LoadState hook.
	LoadLatency Histogram
	// PropagationLatency is the time from Receive of a peer's update to its fan-out to the
	// other peers' queues (the wait in the command channel included).
	PropagationLatency Histogram
	// SlowCloses counts peers closed because they fell behind their outbound budget.
	SlowCloses atomic.Int64
	// BadUpdateCloses counts peers closed for an update or awareness message that did not apply.
	BadUpdateCloses atomic.Int64
	// PendingBytes is the size of the updates applied but not yet stored, over all documents
	// (budget.go).
	PendingBytes atomic.Int64
	// BacklogCloses counts peers closed because their update would pass a pending-bytes budget
	// and the store did not catch up within Config.MaxBacklogWait (backlog.go).
	BacklogCloses atomic.Int64
	// BacklogPauses counts the times a peer was held (paused) for the storage backlog;
	// BacklogPausedPeers is how many are held now; BacklogHeldUpdates counts the updates held
	// (one update held again after a replay counts again).
	BacklogPauses      atomic.Int64
	BacklogPausedPeers atomic.Int64
	BacklogHeldUpdates atomic.Int64
	// TooLargeRefusals counts updates refused because the document would pass MaxDocBytes.
	TooLargeRefusals atomic.Int64

	// Awareness bounds (awareness.go): entries refused, by reason, and client ids taken over by
	// another session of the same user (AwarenessTakeovers) or on a server without
	// authentication, where any session may take over any id (AwarenessTakeoversOpen).
	AwarenessRefusedClients  atomic.Int64
	AwarenessRefusedTooLarge atomic.Int64
	AwarenessRefusedNotOwner atomic.Int64
	AwarenessTakeovers       atomic.Int64
	AwarenessTakeoversOpen   atomic.Int64

	// Evictions counts idle documents unloaded early because the registry was at
	// MaxLoadedDocs; DocumentsRefused counts joins refused with ErrTooManyDocuments (evict.go).
	Evictions        atomic.Int64
	DocumentsRefused atomic.Int64
}

// LatencyBuckets are the upper bounds, in seconds, of Histogram's buckets.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram is a Prometheus-style cumulative latency histogram over LatencyBuckets.
type Histogram struct {
	counts [14]atomic.Int64 // one per bucket, plus +Inf
	sumNs  atomic.Int64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := len(LatencyBuckets)
	for j, ub := range LatencyBuckets {
		if s <= ub {
			i = j
			break
		}
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Snapshot returns the cumulative count per bucket (the last one is +Inf, the total count) and the
// sum in seconds.
func (h *Histogram) Snapshot() (cumulative []int64, sum float64) {
	cumulative = make([]int64, len(LatencyBuckets)+1)
	var acc int64
	for i := range cumulative {
		acc += h.counts[i].Load()
		cumulative[i] = acc
	}
	return cumulative, time.Duration(h.sumNs.Load()).Seconds()
}
