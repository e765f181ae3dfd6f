package workflowapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/workflow"
)

// snapshotEntry is one row of GET /api/workflows/{id}/snapshots.
type snapshotEntry struct {
	LockVersion int `json:"lock_version"`
}

// handleSnapshots lists the lock_versions of a workflow that have a stored snapshot (every
// create, change and delete writes one), oldest first.
func (a *API) handleSnapshots(w http.ResponseWriter, r *http.Request) {
	wf, id, _, ok := a.target(w, r, auth.Read)
	if !ok {
		return
	}
	versions, err := wf.Repo.SnapshotVersions(r.Context(), id)
	if err != nil {
		a.failed(w, "list snapshots", err)
		return
	}
	if len(versions) == 0 {
		// A workflow always has the snapshot of its creation; none means no such workflow.
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %s", id)))
		return
	}
	out := make([]snapshotEntry, len(versions))
	for i, v := range versions {
		out[i] = snapshotEntry{LockVersion: v}
	}
	writeResult(w, http.StatusOK, out)
}

// handleSnapshot answers one snapshot: the workflow as it was stored at that lock_version.
func (a *API) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	wf, id, _, ok := a.target(w, r, auth.Read)
	if !ok {
		return
	}
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 0 {
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no snapshot %q (lock_versions are whole numbers)", r.PathValue("version"))))
		return
	}
	got, err := wf.Repo.Snapshot(r.Context(), id, v)
	switch {
	case errors.Is(err, workflow.ErrNotFound):
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no snapshot of workflow %s at lock_version %d", id, v)))
	case err != nil:
		a.failed(w, "get snapshot", err)
	default:
		writeResult(w, http.StatusOK, got)
	}
}
