package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Versions: named snapshots of a document beside its log (the tables of migration 000004).
// Every store implements the same methods (Memory here, Postgres in versions_postgres.go) and
// passes the contract suite storetest.RunVersions. Methods take and return plain values.

// ErrInvalidVersion: a version's label is too long.
var ErrInvalidVersion = errors.New("store: invalid version")

// MaxLabelLen is the longest version label accepted, in bytes.
const MaxLabelLen = 256

// Version describes one stored version (its state is returned apart).
type Version struct {
	ID  int64  `json:"id"`
	Doc string `json:"doc"`
	// Label names the version: given by a user, or "auto", a workflow's lock_version, "before
	// restore" for automatic ones.
	Label string `json:"label"`
	// Auto marks versions the server made by itself; only those are pruned.
	Auto bool `json:"auto"`
	// Seq is the document's log position the state covers (every update with seq <= Seq).
	Seq       int64     `json:"seq"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// Bytes is the size of the state.
	Bytes int `json:"bytes"`
}

// DocumentInfo describes one stored document for listings.
type DocumentInfo struct {
	Name string `json:"name"`
	// Bytes is the stored size: the newest checkpoint plus the updates after it.
	Bytes   int64 `json:"bytes"`
	LastSeq int64 `json:"last_seq"`
	// UpdatedAt is when the document's log last grew.
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxListLimit bounds ListDocuments' limit.
const MaxListLimit = 1000

func checkVersion(doc, label string, state []byte) error {
	if err := ValidName(doc); err != nil {
		return err
	}
	if len(label) > MaxLabelLen {
		return fmt.Errorf("%w: label of %d bytes, longer than %d", ErrInvalidVersion, len(label), MaxLabelLen)
	}
	if len(state) == 0 {
		return ErrEmptyUpdate
	}
	return nil
}

func versionErr(op, doc string, err error) error {
	return fmt.Errorf("%s version of %q: %w", op, doc, err)
}

func listLimit(limit int) int {
	if limit <= 0 || limit > MaxListLimit {
		return MaxListLimit
	}
	return limit
}

// memVersions is Memory's share of versions (guarded by Memory.mu).
type memVersions struct {
	nextID int64
	byDoc  map[string][]memVersion // oldest first
}

type memVersion struct {
	v     Version
	state []byte
}

// CreateVersion stores state as a version of doc covering seq, and returns it with its id and
// time. See Postgres.CreateVersion.
func (m *Memory) CreateVersion(ctx context.Context, doc, label string, auto bool, seq int64, createdBy string, state []byte) (Version, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, versionErr("create", doc, err)
	}
	if err := checkVersion(doc, label, state); err != nil {
		return Version{}, versionErr("create", doc, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Version{}, versionErr("create", doc, ErrClosed)
	}
	if m.versions.byDoc == nil {
		m.versions.byDoc = map[string][]memVersion{}
	}
	m.versions.nextID++
	v := Version{ID: m.versions.nextID, Doc: doc, Label: label, Auto: auto, Seq: seq, CreatedBy: createdBy,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Bytes: len(state)}
	m.versions.byDoc[doc] = append(m.versions.byDoc[doc], memVersion{v: v, state: slices.Clone(state)})
	return v, nil
}

// ListVersions returns doc's versions, newest first (empty for a document without any).
func (m *Memory) ListVersions(ctx context.Context, doc string) ([]Version, error) {
	if err := ctx.Err(); err != nil {
		return nil, versionErr("list", doc, err)
	}
	if err := ValidName(doc); err != nil {
		return nil, versionErr("list", doc, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, versionErr("list", doc, ErrClosed)
	}
	vs := m.versions.byDoc[doc]
	out := make([]Version, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- {
		out = append(out, vs[i].v)
	}
	return out, nil
}

// GetVersion returns one version of doc with its state; ErrNotFound if doc has no version id.
func (m *Memory) GetVersion(ctx context.Context, doc string, id int64) (Version, []byte, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, nil, versionErr("get", doc, err)
	}
	if err := ValidName(doc); err != nil {
		return Version{}, nil, versionErr("get", doc, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Version{}, nil, versionErr("get", doc, ErrClosed)
	}
	for _, mv := range m.versions.byDoc[doc] {
		if mv.v.ID == id {
			return mv.v, slices.Clone(mv.state), nil
		}
	}
	return Version{}, nil, versionErr("get", doc, fmt.Errorf("%w: no version %d", ErrNotFound, id))
}

// PruneVersions deletes doc's automatic versions but the newest keep, returning how many went.
// Named versions are never pruned. keep < 0 keeps all.
func (m *Memory) PruneVersions(ctx context.Context, doc string, keep int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, versionErr("prune", doc, err)
	}
	if keep < 0 {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, versionErr("prune", doc, ErrClosed)
	}
	vs := m.versions.byDoc[doc]
	autos := 0
	for _, mv := range vs {
		if mv.v.Auto {
			autos++
		}
	}
	drop := autos - keep
	if drop <= 0 {
		return 0, nil
	}
	kept := vs[:0]
	n := 0
	for _, mv := range vs { // oldest first: the first drop automatic ones go
		if mv.v.Auto && n < drop {
			n++
			continue
		}
		kept = append(kept, mv)
	}
	m.versions.byDoc[doc] = kept
	return n, nil
}

// DeleteVersions deletes every version of doc (when the document is deleted).
func (m *Memory) DeleteVersions(ctx context.Context, doc string) error {
	if err := ctx.Err(); err != nil {
		return versionErr("delete", doc, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return versionErr("delete", doc, ErrClosed)
	}
	delete(m.versions.byDoc, doc)
	return nil
}

// ListDocuments returns stored documents whose name starts with prefix and sorts (bytewise)
// after after, at most limit of them (MaxListLimit when limit <= 0 or larger), sorted by name.
func (m *Memory) ListDocuments(ctx context.Context, prefix, after string, limit int) ([]DocumentInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, listErr(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, listErr(ErrClosed)
	}
	var out []DocumentInfo
	for name, d := range m.docs {
		if !strings.HasPrefix(name, prefix) || name <= after {
			continue
		}
		in := DocumentInfo{Name: name, LastSeq: d.lastSeq, UpdatedAt: d.updatedAt, Bytes: int64(len(d.checkpoint))}
		for _, u := range d.updates {
			in.Bytes += int64(len(u.data))
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b DocumentInfo) int { return strings.Compare(a.Name, b.Name) })
	if n := listLimit(limit); len(out) > n {
		out = out[:n]
	}
	return out, nil
}
