package shareddoc

import (
	"errors"
)

// DefaultMaxLoadedDocs is the server's default Config.MaxLoadedDocs. A fixed number rather than
// one derived from the machine's memory: documents differ in size by orders of magnitude, so no
// per-document figure turns memory into a count honestly, while a fixed cap makes the server's
// behaviour the same on every machine. 10,000 small idle documents (~22 KB each) take ~220 MB;
// operators with big documents or small machines lower it.
const DefaultMaxLoadedDocs = 10_000

// maxEvictionsInFlight bounds the evicted documents still doing their final flush: each new
// document over the cap waits for one of them, so the loaded documents never exceed
// MaxLoadedDocs by more than this, even when the store is slow.
const maxEvictionsInFlight = 64

// ErrTooManyDocuments: the registry holds Config.MaxLoadedDocs documents and none of them is
// idle (or enough are already being evicted); try again later. Sessions close with 1013.
var ErrTooManyDocuments = errors.New("shareddoc: too many documents loaded")

// admitNewLocked decides, under r.mu, whether a document not loaded may be created. Under the
// cap it may. Over it, the least recently used idle document (no session, counting down its idle
// timeout) is evicted — it stores what it holds and checkpoints before it leaves — and the new
// one is created meanwhile; with no idle document the new one is refused: an editor is never
// refused because of idle documents, and sessions on loaded documents are never closed for a
// newcomer.
func (r *Registry) admitNewLocked() error {
	max := r.cfg.MaxLoadedDocs
	if max <= 0 || len(r.docs)+len(r.unloading) < max {
		return nil
	}
	if r.evicting >= maxEvictionsInFlight {
		r.stats.DocumentsRefused.Add(1)
		return ErrTooManyDocuments
	}
	victim := r.wheel.evictOldest(func(d *Doc) bool { return d.joining == 0 && !d.evicting })
	if victim == nil {
		r.stats.DocumentsRefused.Add(1)
		return ErrTooManyDocuments
	}
	victim.evicting = true
	r.evicting++
	r.stats.Evictions.Add(1)
	return nil
}

// endEvictionLocked is called under r.mu when an evicted document either ended or was joined
// again before it could unload.
func (r *Registry) endEvictionLocked(d *Doc) {
	if d.evicting {
		d.evicting = false
		r.evicting--
	}
}

// CanLoad reports whether a session for the document called name would be admitted now: the
// document is loaded, the registry is under Config.MaxLoadedDocs, or an idle document could be
// evicted for it. The server asks before upgrading, to answer 503 rather than upgrade and close;
// the answer can change before the join (the join itself decides).
func (r *Registry) CanLoad(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	max := r.cfg.MaxLoadedDocs
	if max <= 0 || r.docs[name] != nil || len(r.docs)+len(r.unloading) < max {
		return true
	}
	return r.evicting < maxEvictionsInFlight && r.wheel.len() > 0
}
