package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
	"github.com/ysync/ysync/store"
)

// Versions of documents (/api/docs/{name}/versions): named ones on request, automatic ones after
// each workflow save and, at most every VersionsConfig.AutoInterval, of documents being edited;
// restore makes a version's content the live content through ordinary edits.

// Defaults of VersionsConfig.
const (
	DefaultAutoVersionInterval = 10 * time.Minute
	DefaultAutoVersionKeep     = 50
	// LabelBeforeRestore labels the version saved just before a restore (so it can be undone).
	LabelBeforeRestore = "before restore"
	// maxRestoreTries bounds how often a restore takes its "before restore" version again
	// because edits arrived meanwhile.
	maxRestoreTries = 5
	// LabelAuto labels the periodic automatic versions.
	LabelAuto = "auto"
)

// VersionsConfig configures document versions. Zero values mean the defaults noted per field.
type VersionsConfig struct {
	// AutoInterval is the least time between two automatic versions of a document that is
	// being edited. Zero means DefaultAutoVersionInterval; negative disables them.
	AutoInterval time.Duration
	// Keep is how many automatic versions are kept per document (named ones always stay).
	// Zero means DefaultAutoVersionKeep; negative keeps all.
	Keep int
}

func (c VersionsConfig) withDefaults() VersionsConfig {
	if c.AutoInterval == 0 {
		c.AutoInterval = DefaultAutoVersionInterval
	}
	if c.Keep == 0 {
		c.Keep = DefaultAutoVersionKeep
	}
	return c
}

// versionState is the automatic versioner's (docs_versions.go).
type versionState struct {
	once sync.Once
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	last map[string]int64 // document → seq of its newest automatic version, as far as known
}

func (s *Server) handleListVersions(w http.ResponseWriter, r *http.Request, rt docRoute, _ string) {
	ds, ok := s.docStore(w)
	if !ok {
		return
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	vs, err := ds.ListVersions(ctx, rt.name)
	if err != nil {
		s.docFailed(w, "list versions", rt.name, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) handleCreateVersion(w http.ResponseWriter, r *http.Request, rt docRoute, user string) {
	ds, ok := s.docStore(w)
	if !ok {
		return
	}
	var body struct {
		Label string `json:"label"`
	}
	if !readJSONBody(w, r, &body) {
		return
	}
	if body.Label == "" {
		writeError(w, http.StatusBadRequest, `a version needs a label: {"label": "..."}`)
		return
	}
	if len(body.Label) > store.MaxLabelLen {
		writeError(w, http.StatusBadRequest, "label longer than "+strconv.Itoa(store.MaxLabelLen)+" bytes")
		return
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	v, err := s.saveVersion(ctx, ds, rt.name, body.Label, false, user)
	if err != nil {
		s.docFailed(w, "create version", rt.name, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

// saveVersion stores the document's current state as a version.
func (s *Server) saveVersion(ctx context.Context, ds DocStore, name, label string, auto bool, user string) (store.Version, error) {
	doc, seq, err := s.snapshot(ctx, name)
	if err != nil {
		return store.Version{}, err
	}
	state, err := crdt.EncodeStateAsUpdate(doc, nil)
	if err != nil {
		return store.Version{}, err
	}
	v, err := ds.CreateVersion(ctx, name, label, auto, seq, user, state)
	if err != nil {
		return store.Version{}, err
	}
	s.docs.versions.Add(1)
	if auto {
		s.docs.autoVersions.Add(1)
		s.noteAutoVersion(name, seq)
		if n, err := ds.PruneVersions(ctx, name, s.cfg.Versions.Keep); err != nil {
			s.log.Warn("prune versions", "doc", name, "err", err)
		} else if n > 0 {
			s.log.Debug("pruned versions", "doc", name, "count", n)
		}
	}
	s.log.Info("version saved", "doc", name, "id", v.ID, "label", label, "auto", auto, "seq", seq, "user", user)
	return v, nil
}

// loadVersion reads and decodes the version rt names; false means the answer (404, or the
// failure) is written.
func (s *Server) loadVersion(ctx context.Context, w http.ResponseWriter, ds DocStore, rt docRoute) (store.Version, *crdt.Doc, bool) {
	v, state, err := ds.GetVersion(ctx, rt.name, rt.version)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no version "+strconv.FormatInt(rt.version, 10)+" of this document")
		return v, nil, false
	}
	if err != nil {
		s.docFailed(w, "get version", rt.name, err)
		return v, nil, false
	}
	doc, err := docjson.Load(state, false)
	if err != nil {
		s.docFailed(w, "decode version", rt.name, err)
		return v, nil, false
	}
	return v, doc, true
}

func (s *Server) handleGetVersion(w http.ResponseWriter, r *http.Request, rt docRoute, _ string) {
	ds, ok := s.docStore(w)
	if !ok {
		return
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	v, doc, ok := s.loadVersion(ctx, w, ds, rt)
	if !ok {
		return
	}
	w.Header().Set("Ysync-Version", strconv.FormatInt(v.ID, 10))
	if rt.op == "version-update" {
		s.writeUpdate(w, r, rt.name, doc, v.Seq)
		return
	}
	s.writeRendered(w, r, rt.name, doc, v.Seq)
}

func (s *Server) handleRestoreVersion(w http.ResponseWriter, r *http.Request, rt docRoute, user string) {
	ds, ok := s.docStore(w)
	if !ok {
		return
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	v, target, ok := s.loadVersion(ctx, w, ds, rt)
	if !ok {
		return
	}
	doc, release, err := s.openDoc(ctx, rt.name)
	if err != nil {
		s.docFailed(w, "open", rt.name, err)
		return
	}
	defer release()
	// The "before restore" version must hold everything the restore replaces: it is stored
	// first (durably), then the restore runs only if no edit arrived in between (same state
	// vector); otherwise it is taken again. Under a stream of edits the last try restores
	// anyway: the few edits of that moment are then merged, not kept in the version.
	var before store.Version
	var skipped []string
	var seq int64
	for try := 1; ; try++ {
		var state []byte
		var sv string
		stateSeq, err := doc.Edit(ctx, func(live *crdt.Doc) (err error) {
			sv = string(crdt.EncodeStateVector(live))
			state, err = crdt.EncodeStateAsUpdate(live, nil)
			return err
		})
		if err == nil {
			before, err = ds.CreateVersion(ctx, rt.name, LabelBeforeRestore, false, stateSeq, user, state)
		}
		if err != nil {
			s.docFailed(w, "save the version before restore", rt.name, err)
			return
		}
		s.docs.versions.Add(1)
		restored := false
		seq, err = doc.Edit(ctx, func(live *crdt.Doc) (err error) {
			if string(crdt.EncodeStateVector(live)) != sv && try < maxRestoreTries {
				return nil // edited meanwhile: take the version again
			}
			restored = true
			skipped, err = docjson.Restore(live, target)
			return err
		})
		if err != nil {
			s.docFailed(w, "restore", rt.name, err)
			return
		}
		if restored {
			break
		}
	}
	s.docs.restores.Add(1)
	s.log.Info("version restored", "doc", rt.name, "version", v.ID, "seq", seq, "user", user, "before_restore", before.ID)
	if skipped == nil {
		skipped = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "restored": v, "before_restore": before, "skipped_roots": skipped})
}

// --- automatic versions --------------------------------------------------------------------------

func (s *Server) noteAutoVersion(name string, seq int64) {
	s.versions.mu.Lock()
	defer s.versions.mu.Unlock()
	if s.versions.last == nil {
		s.versions.last = map[string]int64{}
	}
	s.versions.last[name] = max(s.versions.last[name], seq)
}

// startAutoVersions starts the goroutine that takes automatic versions of edited documents
// (once; stopAutoVersions ends it).
func (s *Server) startAutoVersions() {
	s.versions.once.Do(func() {
		s.versions.stop = make(chan struct{})
		s.versions.done = make(chan struct{})
		ds, ok := s.store.(DocStore)
		if !ok || s.cfg.Versions.AutoInterval < 0 {
			close(s.versions.done)
			return
		}
		go s.autoVersions(ds)
	})
}

func (s *Server) stopAutoVersions() {
	s.startAutoVersions() // makes the channels if Serve never ran
	select {
	case <-s.versions.stop:
	default:
		close(s.versions.stop)
	}
	<-s.versions.done
}

// autoVersions checks the loaded documents every AutoInterval and stores a version of each
// whose log moved since its newest automatic version.
func (s *Server) autoVersions(ds DocStore) {
	defer close(s.versions.done)
	t := time.NewTicker(s.cfg.Versions.AutoInterval)
	defer t.Stop()
	for {
		select {
		case <-s.versions.stop:
			return
		case <-t.C:
		}
		for _, name := range s.reg.List() {
			select {
			case <-s.versions.stop:
				return
			default:
			}
			s.autoVersion(ds, name)
		}
	}
}

func (s *Server) autoVersion(ds DocStore, name string) {
	ctx, cancel := context.WithTimeout(s.ctx, docsRequestTimeout)
	defer cancel()
	d := s.reg.Get(name)
	if d == nil {
		return
	}
	seq, err := d.Edit(ctx, func(*crdt.Doc) error { return nil })
	if err != nil || seq == 0 {
		return
	}
	s.versions.mu.Lock()
	last, known := s.versions.last[name]
	s.versions.mu.Unlock()
	if !known {
		if vs, err := ds.ListVersions(ctx, name); err == nil {
			for _, v := range vs {
				if v.Auto {
					last = v.Seq
					break
				}
			}
		}
		s.noteAutoVersion(name, last)
	}
	if seq <= last {
		return
	}
	if _, err := s.saveVersion(ctx, ds, name, LabelAuto, true, "ysync"); err != nil {
		s.docs.versionFailure.Add(1)
		s.log.Warn("automatic version failed", "doc", name, "err", err)
	}
}

// versionAfterSave stores an automatic version after a workflow save, labelled with the
// lock_version it saved.
func (s *Server) versionAfterSave(ctx context.Context, name string, lockVersion int, user string) {
	ds, ok := s.store.(DocStore)
	if !ok {
		return
	}
	label := "lock_version " + strconv.Itoa(lockVersion)
	if vs, err := ds.ListVersions(ctx, name); err == nil && len(vs) > 0 && vs[0].Label == label {
		return // a save without changes keeps the lock_version: nothing new to keep
	}
	if _, err := s.saveVersion(ctx, ds, name, label, true, user); err != nil {
		s.log.Warn("version after workflow save failed", "doc", name, "err", err)
	}
}
