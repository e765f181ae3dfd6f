package shareddoc

import (
	"context"
	"sync/atomic"
	"time"
)

// LogReader lets a document catch up with updates that other processes appended to its log
// (several nodes on one database). package store's Postgres and Memory implement it; a Store that
// does not is assumed to have a single writer, this process.
type LogReader interface {
	// UpdatesAfter returns, in seq order, up to limit updates with seq > after and their seqs.
	// When a checkpoint already covers beyond after, it returns no updates and compactedTo,
	// the checkpoint's seq; the document then reloads with Store.Load.
	UpdatesAfter(ctx context.Context, name string, after int64, limit int) (seqs []int64, updates [][]byte, compactedTo int64, err error)
	// LastSeqs returns the last seq of each named document the store knows.
	LastSeqs(ctx context.Context, names []string) (map[string]int64, error)
}

// Relay carries news of the log, and awareness, between nodes (cluster mode; package cluster
// implements it over Redis). It is an optimisation of latency only: a lost message is found by
// the next one's seq or by the position check and read from the log. Every method is called
// from document goroutines and must not block.
type Relay interface {
	// Subscribe starts delivering the document's messages from other nodes to sub, until the
	// returned function is called (once, when the document unloads).
	Subscribe(doc string, sub Subscriber) (unsubscribe func())
	// PublishUpdate announces that update was stored with seq in the document's log.
	PublishUpdate(doc string, seq int64, update []byte)
	// PublishAwareness sends an encoded awareness update of this node's sessions.
	PublishAwareness(doc string, update []byte)
	// QueryAwareness asks the other nodes to publish their awareness states of the document.
	QueryAwareness(doc string)
}

// Subscriber receives one document's messages from other nodes; Doc implements it. The relay
// calls these from its own goroutines; they never block (a message that does not fit in the
// document's command queue is dropped and counted, and the gap it leaves is filled from the log).
type Subscriber interface {
	// RemoteUpdate: node stored update with seq in the log.
	RemoteUpdate(node string, seq int64, update []byte)
	// RemoteAwareness: an awareness update of node's sessions.
	RemoteAwareness(node string, update []byte)
	// RemoteAwarenessQuery: a node asks for this node's awareness states.
	RemoteAwarenessQuery(node string)
}

// DefaultPositionCheckInterval is how often, by default, every loaded document's contiguous
// prefix is compared with the log's last seq when the store is shared (see
// Config.PositionCheckInterval).
const DefaultPositionCheckInterval = 2 * time.Second

// ClusterStats count what documents did with other nodes' updates. Safe for concurrent use.
type ClusterStats struct {
	// RemoteReceived counts update messages from other nodes handed to documents.
	RemoteReceived atomic.Int64
	// RemoteApplied counts those applied at once (seq = prefix + 1, or waiting just behind a gap).
	RemoteApplied atomic.Int64
	// RemoteDuplicates counts update messages the document already had (seq <= prefix).
	RemoteDuplicates atomic.Int64
	// RemoteDropped counts messages dropped because the document's command queue was full.
	RemoteDropped atomic.Int64
	// RemoteBad counts updates or awareness messages from other nodes that did not apply.
	RemoteBad atomic.Int64
	// GapsDetected counts update messages whose seq was beyond prefix + 1.
	GapsDetected atomic.Int64
	// Fills counts reads of the log to fill a gap; FilledFromLog the updates they applied;
	// FillReloads the fills that found the range compacted and reloaded the checkpoint;
	// FillErrors the reads that failed (retried by the next check).
	Fills         atomic.Int64
	FilledFromLog atomic.Int64
	FillReloads   atomic.Int64
	FillErrors    atomic.Int64
	// PositionChecks counts position checks run; PositionCatchups the documents they found
	// behind the log.
	PositionChecks   atomic.Int64
	PositionCatchups atomic.Int64
	// RemoteAwareness counts awareness messages from other nodes applied; NodesGone the
	// awareness clean-ups after another node died.
	RemoteAwareness atomic.Int64
	NodesGone       atomic.Int64
}
