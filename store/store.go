// Package store persists Yjs documents.
//
// A document is stored as an append-only log of binary Yjs updates plus, optionally, a checkpoint:
// the merged state of every update up to some sequence number. Loading a document returns its
// newest checkpoint and the updates appended after it; applying them in order to an empty Y.Doc
// rebuilds the document. The holder of the live Y.Doc periodically compacts: it writes the full
// state as a new checkpoint, which deletes the updates it covers in the same transaction.
//
// Sequence numbers are per document and start at 1. Append returns the seq given to the update;
// Load returns the seq of the last update it read (or of its checkpoint). A checkpoint "covers up
// to seq X" when it contains the effect of every update with seq <= X; the caller knows this
// because it applied exactly those updates to its Y.Doc. Updates appended concurrently with a
// compaction get higher seqs and survive it.
//
// Seqs are gap-free: a reader sees either all of the updates up to a document's last seq or, when
// a checkpoint covers them, that checkpoint. So a process that shares the database with others
// (several nodes, a rolling deploy) catches up with UpdatesAfter from the highest seq up to which
// it has applied every update (its contiguous prefix), LastSeqs tells it cheaply whether it is
// behind, and it must checkpoint only up to that prefix: a checkpoint deletes the updates it
// covers, and one covering updates its writer never applied would lose them. At most one Compact
// per document runs at a time across processes; a second one gets ErrCompactionBusy.
//
// Three implementations share this behaviour and one contract test suite (store/storetest):
// Postgres (durable and shared; concurrent appends are group-committed), SQLite (durable on one
// machine, an embedded file; group-committed likewise) and Memory (for tests and demos, without
// persistence). Their methods take and return plain values, so a consumer declares the small
// interface it needs.
//
// Any document name that is non-empty valid UTF-8 without NUL bytes and at most MaxNameLen bytes
// long is allowed (":", "/", spaces and any Unicode included). A document that was never written
// (or was deleted) loads as empty; it is not an error.
package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors returned by both implementations, wrapped with the operation and document name;
// test for them with errors.Is.
var (
	// ErrNotFound: the document does not exist (Compact, Delete).
	ErrNotFound = errors.New("store: document not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidName: the document name is empty, too long, not UTF-8 or contains NUL.
	ErrInvalidName = errors.New("store: invalid document name")
	// ErrEmptyUpdate: Append was given an empty update (no valid Yjs update is empty).
	ErrEmptyUpdate = errors.New("store: empty update")
	// ErrInvalidSeq: Compact's uptoSeq is < 1 or beyond the last seq handed out for the document.
	ErrInvalidSeq = errors.New("store: invalid sequence number")
	// ErrStaleCheckpoint: Compact's uptoSeq is below that of the document's newest checkpoint.
	ErrStaleCheckpoint = errors.New("store: checkpoint older than the current one")
	// ErrUnavailable: the database could not be reached (connect failure, connection lost).
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrNotMigrated: the database lacks the store's tables; run migrations.Up first.
	ErrNotMigrated = errors.New("store: database schema missing (run migrations)")
	// ErrCompactionBusy: another compaction of the same document is running (in this or another
	// process); this one was skipped and the store is unchanged. Retrying later is fine.
	ErrCompactionBusy = errors.New("store: another compaction of the document is running")
)

// MaxNameLen is the longest document name accepted, in bytes.
const MaxNameLen = 1024

// Stats are cumulative counters since the store was created, for metrics.
type Stats struct {
	Appends      uint64        // updates durably appended
	AppendErrors uint64        // Append calls that returned an error (including ErrClosed)
	Flushes      uint64        // write transactions committed for appends (a batch each)
	AppendTime   time.Duration // summed latency of successful Appends, call to commit
	Pending      int           // appends queued or being written right now
}

// ValidName reports whether name is an acceptable document name, with ErrInvalidName if not.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidName, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidName, name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidName, name)
	}
	return nil
}

// opErr wraps err as "<op> document <name>: err".
func opErr(op, name string, err error) error {
	return fmt.Errorf("%s document %q: %w", op, name, err)
}

// compactSeqErr is every store's check of a compaction's uptoSeq against the document's last seq
// and its newest checkpoint's: nil, ErrInvalidSeq or ErrStaleCheckpoint.
func compactSeqErr(upto, last, newest int64) error {
	switch {
	case upto < 1 || upto > last:
		return fmt.Errorf("%w: covers up to %d, last seq is %d", ErrInvalidSeq, upto, last)
	case upto < newest:
		return fmt.Errorf("%w: covers up to %d, newest checkpoint covers up to %d", ErrStaleCheckpoint, upto, newest)
	}
	return nil
}

func listErr(err error) error { return fmt.Errorf("list documents: %w", err) }

func pingErr(err error) error { return fmt.Errorf("ping store: %w", err) }
