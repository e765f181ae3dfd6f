package workflow_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ysync/ysync/workflow"
)

func TestRepoCreateGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := newRepo(t)
	in := sample()
	got, err := repo.Create(ctx, in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := in.Clone()
	want.Normalize()
	mustEqual(t, got, want)
	if got.CreatedAt.IsZero() || got.DeletedAt != nil || got.LockVersion != 0 {
		t.Fatalf("stored header: %+v", got)
	}
	again, err := repo.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, again, want)
	for i := range in.Jobs { // creation order is kept
		if again.Jobs[i].ID != in.Jobs[i].ID {
			t.Fatalf("jobs come back in another order")
		}
	}
	for i := range in.Edges {
		if again.Edges[i].ID != in.Edges[i].ID {
			t.Fatalf("edges come back in another order")
		}
	}
	if vs, err := repo.SnapshotVersions(ctx, in.ID); err != nil || !slices.Equal(vs, []int{0}) {
		t.Fatalf("snapshots after create = %v, %v; want [0]", vs, err)
	}
	snap, err := repo.Snapshot(ctx, in.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, snap, want)

	if _, err := repo.Get(ctx, workflow.NewID()); !errors.Is(err, workflow.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := repo.Get(ctx, "not-a-uuid"); !errors.Is(err, workflow.ErrNotFound) {
		t.Fatalf("Get(bad id) = %v, want ErrNotFound", err)
	}

	// Same name in the same project: taken; in another project, or after deletion: fine.
	dup := sample()
	dup.ProjectID, dup.Name = in.ProjectID, in.Name
	_, err = repo.Create(ctx, dup)
	var ve workflow.ValidationErrors
	if !errors.As(err, &ve) || len(ve["name"]) == 0 || !errors.Is(err, workflow.ErrValidation) {
		t.Fatalf("Create with taken name = %v, want validation error on name", err)
	}
	if _, err := repo.SoftDelete(ctx, in.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Create(ctx, dup); err != nil {
		t.Fatalf("Create with the name of a deleted workflow: %v", err)
	}

	// A child id owned by another workflow is refused as taken, not stolen.
	thief := sample()
	thief.Jobs[1].ID = in.Jobs[1].ID
	thief.Triggers[1].CronCursorJobID = ptr(thief.Jobs[1].ID)
	thief.Edges[2].TargetJobID = thief.Jobs[1].ID
	thief.Edges[3].SourceJobID = ptr(thief.Jobs[1].ID)
	_, err = repo.Create(ctx, thief)
	if !errors.As(err, &ve) || len(ve["jobs[1].id"]) == 0 {
		t.Fatalf("Create with another workflow's job id = %v, want jobs[1].id taken", err)
	}
}

func TestRepoReplace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := newRepo(t)
	orig, err := repo.Create(ctx, sample())
	if err != nil {
		t.Fatal(err)
	}

	// No change: no bump, no snapshot.
	same, changed, err := repo.Replace(ctx, orig, 0)
	if err != nil || changed || same.LockVersion != 0 {
		t.Fatalf("Replace unchanged = v%d, %v, %v; want v0, false, nil", same.LockVersion, changed, err)
	}
	// Order of children does not matter.
	shuffled := orig.Clone()
	slices.Reverse(shuffled.Jobs)
	slices.Reverse(shuffled.Edges)
	if _, changed, err := repo.Replace(ctx, shuffled, 0); err != nil || changed {
		t.Fatalf("Replace reordered = %v, %v; want no change", changed, err)
	}

	// Edit: rename a job, swap two names (deferred unique), drop a job (its edges and the cron
	// cursor go with it), add a job and an edge, change the header.
	next := orig.Clone()
	// Put the cron cursor's job last, so that dropping it below also exercises the cursor being
	// cleared.
	cursor := *next.Triggers[slices.IndexFunc(next.Triggers, func(t workflow.Trigger) bool { return t.CronCursorJobID != nil })].CronCursorJobID
	last := func(j workflow.Job) int {
		if j.ID == cursor {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(next.Jobs, func(a, b workflow.Job) int { return last(a) - last(b) })
	next.Name = "Renamed"
	next.Concurrency = nil
	next.EnableJobLogs = false
	next.Positions = nil
	next.Jobs[0].Name, next.Jobs[1].Name = next.Jobs[1].Name, next.Jobs[0].Name
	next.Jobs[0].Body = "changed"
	dropped := next.Jobs[2].ID
	next.Jobs = next.Jobs[:2]
	newJob := workflow.Job{ID: workflow.NewID(), Name: "new job", Body: "x"}
	next.Jobs = append(next.Jobs, newJob)
	next.Edges = slices.DeleteFunc(next.Edges, func(e workflow.Edge) bool {
		return e.TargetJobID == dropped || e.SourceJobID != nil && *e.SourceJobID == dropped
	})
	next.Edges = append(next.Edges, workflow.Edge{ID: workflow.NewID(), SourceJobID: ptr(next.Jobs[1].ID),
		TargetJobID: newJob.ID, Enabled: true})
	next.Triggers[0].Enabled = false

	got, changed, err := repo.Replace(ctx, next, 0)
	if err != nil || !changed || got.LockVersion != 1 {
		t.Fatalf("Replace = v%v, %v, %v; want v1, true, nil", got, changed, err)
	}
	want := next.Clone()
	want.Normalize()
	want.LockVersion = 1
	mustEqual(t, got, want)
	for _, tr := range got.Triggers {
		if tr.CronCursorJobID != nil {
			t.Fatalf("cron cursor %s survived the removal of its job", *tr.CronCursorJobID)
		}
	}
	if vs, _ := repo.SnapshotVersions(ctx, orig.ID); !slices.Equal(vs, []int{0, 1}) {
		t.Fatalf("snapshots = %v, want [0 1]", vs)
	}
	snap, err := repo.Snapshot(ctx, orig.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, snap, want)

	// Stale expected version: conflict, nothing written.
	stale := got.Clone()
	stale.Name = "Stale"
	if _, _, err := repo.Replace(ctx, stale, 0); !errors.Is(err, workflow.ErrConflict) {
		t.Fatalf("Replace with stale version = %v, want ErrConflict", err)
	}
	if cur, _ := repo.Get(ctx, orig.ID); cur.Name != "Renamed" || cur.LockVersion != 1 {
		t.Fatalf("after conflict: %s v%d", cur.Name, cur.LockVersion)
	}
	// Invalid: ErrValidation, nothing written.
	bad := got.Clone()
	bad.Jobs[0].Name = ""
	_, _, err = repo.Replace(ctx, bad, 1)
	var ve workflow.ValidationErrors
	if !errors.As(err, &ve) || len(ve["jobs[0].name"]) == 0 {
		t.Fatalf("Replace invalid = %v, want jobs[0].name error", err)
	}
	if _, _, err := repo.Replace(ctx, &workflow.Workflow{ID: workflow.NewID(), Name: "x"}, 0); !errors.Is(err, workflow.ErrNotFound) {
		t.Fatalf("Replace unknown = %v, want ErrNotFound", err)
	}
}

func TestRepoSoftDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := newRepo(t)
	w, err := repo.Create(ctx, sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.SoftDelete(ctx, w.ID, 5); !errors.Is(err, workflow.ErrConflict) {
		t.Fatalf("SoftDelete stale = %v, want ErrConflict", err)
	}
	del, err := repo.SoftDelete(ctx, w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if del.LockVersion != 1 || del.DeletedAt == nil {
		t.Fatalf("after delete: v%d deleted_at %v", del.LockVersion, del.DeletedAt)
	}
	got, err := repo.Get(ctx, w.ID)
	if err != nil || got.DeletedAt == nil || len(got.Jobs) != 3 {
		t.Fatalf("Get deleted = %+v, %v; want it with deleted_at and its jobs", got, err)
	}
	if _, err := repo.SoftDelete(ctx, w.ID, 1); !errors.Is(err, workflow.ErrDeleted) {
		t.Fatalf("SoftDelete again = %v, want ErrDeleted", err)
	}
	if _, _, err := repo.Replace(ctx, got, 1); !errors.Is(err, workflow.ErrDeleted) {
		t.Fatalf("Replace deleted = %v, want ErrDeleted", err)
	}
	if _, err := repo.SoftDelete(ctx, workflow.NewID(), 0); !errors.Is(err, workflow.ErrNotFound) {
		t.Fatalf("SoftDelete unknown = %v, want ErrNotFound", err)
	}
	if vs, _ := repo.SnapshotVersions(ctx, w.ID); !slices.Equal(vs, []int{0, 1}) {
		t.Fatalf("snapshots = %v, want [0 1]", vs)
	}
}
