package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/store"
)

// VersionStore is the method set RunVersions exercises: the document store plus named
// versions and document listings.
type VersionStore interface {
	Store
	CreateVersion(ctx context.Context, doc, label string, auto bool, seq int64, createdBy string, state []byte) (store.Version, error)
	ListVersions(ctx context.Context, doc string) ([]store.Version, error)
	GetVersion(ctx context.Context, doc string, id int64) (store.Version, []byte, error)
	PruneVersions(ctx context.Context, doc string, keep int) (int, error)
	DeleteVersions(ctx context.Context, doc string) error
	ListDocuments(ctx context.Context, prefix, after string, limit int) ([]store.DocumentInfo, error)
}

// RunVersions runs the contract tests of versions and document listings. newStore must return a
// new, empty store each call.
func RunVersions(t *testing.T, newStore func(t *testing.T) VersionStore) {
	open := func(t *testing.T) VersionStore {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s VersionStore)
	}{
		{"CreateGetList", testVersionsCreateGetList},
		{"Prune", testVersionsPrune},
		{"Errors", testVersionsErrors},
		{"ListDocuments", testListDocuments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func testVersionsCreateGetList(t *testing.T, s VersionStore) {
	c := ctx(t)
	if vs, err := s.ListVersions(c, "d"); err != nil || len(vs) != 0 {
		t.Fatalf("ListVersions of a document without versions = %v, %v", vs, err)
	}
	before := time.Now().Add(-time.Minute)
	v1, err := s.CreateVersion(c, "d", "first", false, 3, "alice", []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.CreateVersion(c, "d", "auto", true, 5, "", []byte{4, 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateVersion(c, "other", "x", false, 0, "", []byte{9}); err != nil {
		t.Fatal(err)
	}
	if v1.ID == 0 || v2.ID <= v1.ID {
		t.Fatalf("ids %d, %d: want increasing, non-zero", v1.ID, v2.ID)
	}
	if v1.CreatedAt.Before(before) || v1.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("CreatedAt %v is not about now", v1.CreatedAt)
	}
	want := store.Version{ID: v1.ID, Doc: "d", Label: "first", Seq: 3, CreatedBy: "alice", CreatedAt: v1.CreatedAt, Bytes: 3}
	if v1 != want {
		t.Fatalf("CreateVersion = %+v, want %+v", v1, want)
	}
	got, state, err := s.GetVersion(c, "d", v1.ID)
	if err != nil || !bytes.Equal(state, []byte{1, 2, 3}) || !got.CreatedAt.Equal(v1.CreatedAt) || got.Label != "first" || got.Seq != 3 || got.Bytes != 3 {
		t.Fatalf("GetVersion = %+v, %v, %v", got, state, err)
	}
	state[0] = 99 // the caller's to keep
	if _, again, _ := s.GetVersion(c, "d", v1.ID); again[0] != 1 {
		t.Fatal("GetVersion returned the store's own slice")
	}
	vs, err := s.ListVersions(c, "d")
	if err != nil || len(vs) != 2 || vs[0].ID != v2.ID || vs[1].ID != v1.ID || !vs[0].Auto || vs[0].Bytes != 2 {
		t.Fatalf("ListVersions = %+v, %v; want v2, v1", vs, err)
	}
	if _, _, err := s.GetVersion(c, "other", v1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetVersion of another document's id: %v, want ErrNotFound", err)
	}
	if err := s.DeleteVersions(c, "d"); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.ListVersions(c, "d"); len(vs) != 0 {
		t.Fatalf("after DeleteVersions: %+v", vs)
	}
	if vs, _ := s.ListVersions(c, "other"); len(vs) != 1 {
		t.Fatalf("DeleteVersions touched another document: %+v", vs)
	}
}

func testVersionsPrune(t *testing.T, s VersionStore) {
	c := ctx(t)
	var autos []int64
	for i := range 5 {
		v, err := s.CreateVersion(c, "d", fmt.Sprint("auto ", i), true, int64(i), "", []byte{byte(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		autos = append(autos, v.ID)
		if i == 1 {
			if _, err := s.CreateVersion(c, "d", "named", false, 1, "bob", []byte{7}); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := s.PruneVersions(c, "d", 2)
	if err != nil || n != 3 {
		t.Fatalf("PruneVersions(2) = %d, %v; want 3", n, err)
	}
	vs, _ := s.ListVersions(c, "d")
	var ids []int64
	named := false
	for _, v := range vs {
		if v.Auto {
			ids = append(ids, v.ID)
		} else {
			named = true
		}
	}
	if len(ids) != 2 || ids[0] != autos[4] || ids[1] != autos[3] || !named {
		t.Fatalf("after prune: %+v; want the newest two automatic and the named one", vs)
	}
	if n, err := s.PruneVersions(c, "d", -1); err != nil || n != 0 {
		t.Fatalf("PruneVersions(-1) = %d, %v", n, err)
	}
	if n, err := s.PruneVersions(c, "d", 0); err != nil || n != 2 {
		t.Fatalf("PruneVersions(0) = %d, %v; want 2", n, err)
	}
}

func testVersionsErrors(t *testing.T, s VersionStore) {
	c := ctx(t)
	if _, err := s.CreateVersion(c, "", "x", false, 0, "", []byte{1}); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := s.CreateVersion(c, "d", strings.Repeat("x", store.MaxLabelLen+1), false, 0, "", []byte{1}); !errors.Is(err, store.ErrInvalidVersion) {
		t.Errorf("long label: %v", err)
	}
	if _, err := s.CreateVersion(c, "d", "x", false, 0, "", nil); !errors.Is(err, store.ErrEmptyUpdate) {
		t.Errorf("empty state: %v", err)
	}
	if _, _, err := s.GetVersion(c, "d", 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	_ = s.Close()
	if _, err := s.CreateVersion(c, "d", "x", false, 0, "", []byte{1}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func testListDocuments(t *testing.T, s VersionStore) {
	c := ctx(t)
	if ds, err := s.ListDocuments(c, "", "", 0); err != nil || len(ds) != 0 {
		t.Fatalf("empty store: %v, %v", ds, err)
	}
	before := time.Now().Add(-time.Minute)
	for _, name := range []string{"b/2", "a", "b/1", "c", "b/3"} {
		mustAppend(t, s, name, []byte("12345"))
	}
	mustAppend(t, s, "a", []byte("678"))
	all, err := s.ListDocuments(c, "", "", 0)
	if err != nil || len(all) != 5 || all[0].Name != "a" || all[0].Bytes != 8 || all[0].LastSeq != 2 || all[4].Name != "c" {
		t.Fatalf("ListDocuments = %+v, %v", all, err)
	}
	if all[0].UpdatedAt.Before(before) {
		t.Fatalf("UpdatedAt %v is not about now", all[0].UpdatedAt)
	}
	page, err := s.ListDocuments(c, "b/", "", 2)
	if err != nil || len(page) != 2 || page[0].Name != "b/1" || page[1].Name != "b/2" {
		t.Fatalf("prefix page 1 = %+v, %v", page, err)
	}
	page, err = s.ListDocuments(c, "b/", page[1].Name, 2)
	if err != nil || len(page) != 1 || page[0].Name != "b/3" {
		t.Fatalf("prefix page 2 = %+v, %v", page, err)
	}
	// A checkpoint counts with the updates after it.
	if err := s.Compact(c, "a", []byte("cp"), 2); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "a", []byte("9"))
	if ds, _ := s.ListDocuments(c, "a", "", 1); len(ds) != 1 || ds[0].Bytes != 3 || ds[0].LastSeq != 3 {
		t.Fatalf("after compact: %+v; want 3 bytes, seq 3", ds)
	}
}
