package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of the repository and the service; test with errors.Is. Validation failures match
// ErrValidation and are a ValidationErrors (errors.As).
var (
	// ErrNotFound: no workflow has that id.
	ErrNotFound = errors.New("workflow: not found")
	// ErrConflict: the workflow's lock_version is not the expected one (someone saved first).
	ErrConflict = errors.New("workflow: lock_version conflict")
	// ErrDeleted: the workflow is soft-deleted and cannot be changed.
	ErrDeleted = errors.New("workflow: deleted")
)

// Repo stores workflows in the tables of migration 000002. Safe for concurrent use.
type Repo struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewRepo returns a repository over pool (which the caller keeps and closes).
func NewRepo(pool *pgxpool.Pool) *Repo {
	return &Repo{pool: pool, now: time.Now}
}

// Create stores a new workflow at lock_version 0 and returns it as stored (with a snapshot of
// version 0). An empty w.ID gets a fresh one; w.LockVersion and w.DeletedAt are ignored.
// Validation failures (including a name already used in the project) are a ValidationErrors.
func (r *Repo) Create(ctx context.Context, w *Workflow) (*Workflow, error) {
	w = w.Clone()
	if w.ID == "" {
		w.ID = NewID()
	}
	w.LockVersion, w.DeletedAt = 0, nil
	w.Normalize()
	v := Validate(w)
	if !ValidID(w.ProjectID) {
		if v == nil {
			v = ValidationErrors{}
		}
		v.Add("project_id", msgInvalid)
	}
	if v != nil {
		return nil, fmt.Errorf("create workflow %s: %w", w.ID, v)
	}
	var out *Workflow
	err := r.inTx(ctx, func(tx pgx.Tx) error {
		now := r.now()
		_, err := tx.Exec(ctx, `INSERT INTO workflows
			(id, project_id, name, lock_version, positions, concurrency, enable_job_logs, created_at, updated_at)
			VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $7)`,
			w.ID, w.ProjectID, w.Name, positionsArg(w.Positions), w.Concurrency, w.EnableJobLogs, now)
		if err != nil {
			return constraintErr(err, "")
		}
		if err := writeChildren(ctx, tx, w, &Workflow{ID: w.ID}, now); err != nil {
			return err
		}
		out, err = getTx(ctx, tx, w.ID, false)
		if err != nil {
			return err
		}
		return snapshot(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("create workflow %s: %w", w.ID, err)
	}
	return out, nil
}

// Get returns the workflow with its jobs, triggers and edges; a soft-deleted one too, with
// DeletedAt set. ErrNotFound if there is none.
func (r *Repo) Get(ctx context.Context, id string) (*Workflow, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("get workflow %q: %w", id, ErrNotFound)
	}
	var out *Workflow
	err := r.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = getTx(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get workflow %s: %w", id, err)
	}
	return out, nil
}

// Replace makes the stored workflow w.ID equal to w: its name, positions, concurrency and
// enable_job_logs, and its jobs, triggers and edges (rows are matched by id: updated when they
// exist, inserted when they don't, deleted when w lacks them), all in one transaction.
// expectedLockVersion must be the stored lock_version (else ErrConflict). If anything changed,
// lock_version is bumped and a snapshot of the new version written; if nothing did, nothing is
// written and changed is false. w.ProjectID, w.LockVersion and w.DeletedAt are ignored.
// ErrNotFound, ErrDeleted, or a ValidationErrors (w is normalized first).
func (r *Repo) Replace(ctx context.Context, w *Workflow, expectedLockVersion int) (stored *Workflow, changed bool, err error) {
	w = w.Clone()
	w.Normalize()
	if !ValidID(w.ID) {
		return nil, false, fmt.Errorf("replace workflow %q: %w", w.ID, ErrNotFound)
	}
	if v := Validate(w); v != nil {
		return nil, false, fmt.Errorf("replace workflow %s: %w", w.ID, v)
	}
	err = r.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := getTx(ctx, tx, w.ID, true)
		if err != nil {
			return err
		}
		switch {
		case cur.DeletedAt != nil:
			return ErrDeleted
		case cur.LockVersion != expectedLockVersion:
			return fmt.Errorf("%w: stored %d, expected %d", ErrConflict, cur.LockVersion, expectedLockVersion)
		}
		if !headerChanged(cur, w) && !childrenChanged(cur, w) {
			stored = cur
			return nil
		}
		now := r.now()
		if err := writeChildren(ctx, tx, w, cur, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE workflows
			SET name = $3, positions = $4, concurrency = $5, enable_job_logs = $6,
			    lock_version = lock_version + 1, updated_at = $7
			WHERE id = $1 AND lock_version = $2`,
			w.ID, expectedLockVersion, w.Name, positionsArg(w.Positions), w.Concurrency, w.EnableJobLogs, now)
		if err != nil {
			return constraintErr(err, "")
		}
		if tag.RowsAffected() == 0 {
			return ErrConflict // cannot happen while we hold the row lock; reported if it does
		}
		if stored, err = getTx(ctx, tx, w.ID, false); err != nil {
			return err
		}
		changed = true
		return snapshot(ctx, tx, stored)
	})
	if err != nil {
		return nil, false, fmt.Errorf("replace workflow %s: %w", w.ID, err)
	}
	return stored, changed, nil
}

// SoftDelete marks the workflow deleted, bumps its lock_version and snapshots the new version.
// It returns the workflow as stored. ErrNotFound, ErrDeleted (already deleted) or ErrConflict.
func (r *Repo) SoftDelete(ctx context.Context, id string, expectedLockVersion int) (*Workflow, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("delete workflow %q: %w", id, ErrNotFound)
	}
	var out *Workflow
	err := r.inTx(ctx, func(tx pgx.Tx) error {
		now := r.now()
		tag, err := tx.Exec(ctx, `UPDATE workflows
			SET deleted_at = $3, lock_version = lock_version + 1, updated_at = $3
			WHERE id = $1 AND lock_version = $2 AND deleted_at IS NULL`, id, expectedLockVersion, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			cur, err := getTx(ctx, tx, id, false)
			switch {
			case err != nil:
				return err
			case cur.DeletedAt != nil:
				return ErrDeleted
			default:
				return fmt.Errorf("%w: stored %d, expected %d", ErrConflict, cur.LockVersion, expectedLockVersion)
			}
		}
		if out, err = getTx(ctx, tx, id, false); err != nil {
			return err
		}
		return snapshot(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("delete workflow %s: %w", id, err)
	}
	return out, nil
}

// Snapshot returns the stored JSON snapshot of a workflow at lockVersion (ErrNotFound if none).
func (r *Repo) Snapshot(ctx context.Context, id string, lockVersion int) (*Workflow, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("snapshot of workflow %q: %w", id, ErrNotFound)
	}
	var data []byte
	err := r.pool.QueryRow(ctx, `SELECT data FROM workflow_snapshots WHERE workflow_id = $1 AND lock_version = $2`,
		id, lockVersion).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot of workflow %s v%d: %w", id, lockVersion, err)
	}
	var w Workflow
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("snapshot of workflow %s v%d: %w", id, lockVersion, err)
	}
	return &w, nil
}

// SnapshotVersions lists the lock_versions that have a snapshot, ascending.
func (r *Repo) SnapshotVersions(ctx context.Context, id string) ([]int, error) {
	rows, err := r.pool.Query(ctx, `SELECT lock_version FROM workflow_snapshots WHERE workflow_id = $1
		ORDER BY lock_version`, id)
	if err != nil {
		return nil, fmt.Errorf("snapshots of workflow %s: %w", id, err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("snapshots of workflow %s: %w", id, err)
	}
	return vs, nil
}

// inTx runs fn in a transaction, committing if fn returns nil and rolling back otherwise.
func (r *Repo) inTx(ctx context.Context, fn func(pgx.Tx) error) (err error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Rollback's own error adds nothing: the transaction is void either way.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return constraintErr(err, "") // deferred constraints are checked at commit
	}
	return nil
}

// getTx reads a workflow and its children; forUpdate locks the workflow row first.
func getTx(ctx context.Context, tx pgx.Tx, id string, forUpdate bool) (*Workflow, error) {
	q := `SELECT id, project_id, name, lock_version, deleted_at, positions, concurrency, enable_job_logs,
		created_at, updated_at FROM workflows WHERE id = $1`
	if forUpdate {
		q += " FOR UPDATE"
	}
	var w Workflow
	var positions []byte
	err := tx.QueryRow(ctx, q, id).Scan(&w.ID, &w.ProjectID, &w.Name, &w.LockVersion, &w.DeletedAt,
		&positions, &w.Concurrency, &w.EnableJobLogs, &w.CreatedAt, &w.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if w.DeletedAt != nil {
		w.DeletedAt = ptr(w.DeletedAt.UTC())
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	if positions != nil {
		if err := json.Unmarshal(positions, &w.Positions); err != nil {
			return nil, fmt.Errorf("positions: %w", err)
		}
		if len(w.Positions) == 0 {
			w.Positions = nil
		}
	}

	rows, err := tx.Query(ctx, `SELECT id, name, body, adaptor, project_credential_id, keychain_credential_id
		FROM jobs WHERE workflow_id = $1 ORDER BY created_at, id`, id)
	if err != nil {
		return nil, err
	}
	w.Jobs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Job, error) {
		var j Job
		err := row.Scan(&j.ID, &j.Name, &j.Body, &j.Adaptor, &j.ProjectCredentialID, &j.KeychainCredentialID)
		return j, err
	})
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT id, type, enabled, cron_expression, cron_cursor_job_id, webhook_reply
		FROM triggers WHERE workflow_id = $1 ORDER BY created_at, id`, id)
	if err != nil {
		return nil, err
	}
	w.Triggers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Trigger, error) {
		var t Trigger
		err := row.Scan(&t.ID, &t.Type, &t.Enabled, &t.CronExpression, &t.CronCursorJobID, &t.WebhookReply)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT id, source_job_id, source_trigger_id, target_job_id, condition_type,
		condition_expression, condition_label, enabled
		FROM workflow_edges WHERE workflow_id = $1 ORDER BY created_at, id`, id)
	if err != nil {
		return nil, err
	}
	w.Edges, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Edge, error) {
		var e Edge
		err := row.Scan(&e.ID, &e.SourceJobID, &e.SourceTriggerID, &e.TargetJobID, &e.ConditionType,
			&e.ConditionExpression, &e.ConditionLabel, &e.Enabled)
		return e, err
	})
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// writeChildren makes the children of w.ID in the tables equal to w's, given cur, what is
// stored now. Deletions go first, edges before triggers before jobs, so that no foreign key
// points at a removed row; inserts and updates go jobs, triggers, edges for the same reason.
// Only rows that differ are written. Inserted rows get created_at = now plus their index in
// microseconds, so that Get (ordered by created_at) returns them in the order they were given.
func writeChildren(ctx context.Context, tx pgx.Tx, w, cur *Workflow, now time.Time) error {
	wantJobs := indexBy(w.Jobs, func(j Job) string { return j.ID })
	wantTriggers := indexBy(w.Triggers, func(t Trigger) string { return t.ID })
	wantEdges := indexBy(w.Edges, func(e Edge) string { return e.ID })
	var delEdges, delTriggers, delJobs []string
	for _, e := range cur.Edges {
		if _, ok := wantEdges[e.ID]; !ok {
			delEdges = append(delEdges, e.ID)
		}
	}
	for _, t := range cur.Triggers {
		if _, ok := wantTriggers[t.ID]; !ok {
			delTriggers = append(delTriggers, t.ID)
		}
	}
	for _, j := range cur.Jobs {
		if _, ok := wantJobs[j.ID]; !ok {
			delJobs = append(delJobs, j.ID)
		}
	}
	for _, del := range []struct {
		table string
		ids   []string
	}{{"workflow_edges", delEdges}, {"triggers", delTriggers}, {"jobs", delJobs}} {
		if len(del.ids) == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+del.table+` WHERE workflow_id = $1 AND id = ANY($2::uuid[])`,
			w.ID, del.ids); err != nil {
			return err
		}
	}

	curJobs := indexBy(cur.Jobs, func(j Job) string { return j.ID })
	for i, j := range w.Jobs {
		old, exists := curJobs[j.ID]
		switch {
		case !exists:
			tag, err := tx.Exec(ctx, `INSERT INTO jobs (id, workflow_id, name, body, adaptor,
				project_credential_id, keychain_credential_id, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (id) DO NOTHING`,
				j.ID, w.ID, j.Name, j.Body, j.Adaptor, j.ProjectCredentialID, j.KeychainCredentialID, order(now, i))
			if err := insertErr(tag, err, fmt.Sprintf("jobs[%d]", i)); err != nil {
				return err
			}
		case !jobEqual(old, j):
			_, err := tx.Exec(ctx, `UPDATE jobs SET name = $3, body = $4, adaptor = $5,
				project_credential_id = $6, keychain_credential_id = $7, updated_at = $8
				WHERE id = $1 AND workflow_id = $2`,
				j.ID, w.ID, j.Name, j.Body, j.Adaptor, j.ProjectCredentialID, j.KeychainCredentialID, now)
			if err != nil {
				return constraintErr(err, fmt.Sprintf("jobs[%d]", i))
			}
		}
	}
	curTriggers := indexBy(cur.Triggers, func(t Trigger) string { return t.ID })
	for i, t := range w.Triggers {
		old, exists := curTriggers[t.ID]
		switch {
		case !exists:
			tag, err := tx.Exec(ctx, `INSERT INTO triggers (id, workflow_id, type, enabled, cron_expression,
				cron_cursor_job_id, webhook_reply, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (id) DO NOTHING`,
				t.ID, w.ID, t.Type, t.Enabled, t.CronExpression, t.CronCursorJobID, t.WebhookReply, order(now, i))
			if err := insertErr(tag, err, fmt.Sprintf("triggers[%d]", i)); err != nil {
				return err
			}
		case !triggerEqual(old, t):
			_, err := tx.Exec(ctx, `UPDATE triggers SET type = $3, enabled = $4, cron_expression = $5,
				cron_cursor_job_id = $6, webhook_reply = $7, updated_at = $8
				WHERE id = $1 AND workflow_id = $2`,
				t.ID, w.ID, t.Type, t.Enabled, t.CronExpression, t.CronCursorJobID, t.WebhookReply, now)
			if err != nil {
				return constraintErr(err, fmt.Sprintf("triggers[%d]", i))
			}
		}
	}
	curEdges := indexBy(cur.Edges, func(e Edge) string { return e.ID })
	for i, e := range w.Edges {
		old, exists := curEdges[e.ID]
		switch {
		case !exists:
			tag, err := tx.Exec(ctx, `INSERT INTO workflow_edges (id, workflow_id, source_job_id,
				source_trigger_id, target_job_id, condition_type, condition_expression, condition_label,
				enabled, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (id) DO NOTHING`,
				e.ID, w.ID, e.SourceJobID, e.SourceTriggerID, e.TargetJobID, e.ConditionType,
				e.ConditionExpression, e.ConditionLabel, e.Enabled, order(now, i))
			if err := insertErr(tag, err, fmt.Sprintf("edges[%d]", i)); err != nil {
				return err
			}
		case !edgeEqual(old, e):
			_, err := tx.Exec(ctx, `UPDATE workflow_edges SET source_job_id = $3, source_trigger_id = $4,
				target_job_id = $5, condition_type = $6, condition_expression = $7, condition_label = $8,
				enabled = $9, updated_at = $10
				WHERE id = $1 AND workflow_id = $2`,
				e.ID, w.ID, e.SourceJobID, e.SourceTriggerID, e.TargetJobID, e.ConditionType,
				e.ConditionExpression, e.ConditionLabel, e.Enabled, now)
			if err != nil {
				return constraintErr(err, fmt.Sprintf("edges[%d]", i))
			}
		}
	}
	return nil
}

func order(now time.Time, i int) time.Time { return now.Add(time.Duration(i) * time.Microsecond) }

// insertErr reports an INSERT ... ON CONFLICT (id) DO NOTHING that inserted nothing: the id
// belongs to a row of another workflow.
func insertErr(tag pgconn.CommandTag, err error, prefix string) error {
	if err != nil {
		return constraintErr(err, prefix)
	}
	if tag.RowsAffected() == 0 {
		return ValidationErrors{prefix + ".id": {msgTaken}}
	}
	return nil
}

// snapshot stores w as the snapshot of its lock_version.
func snapshot(ctx context.Context, tx pgx.Tx, w *Workflow) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO workflow_snapshots (workflow_id, lock_version, data) VALUES ($1, $2, $3)`,
		w.ID, w.LockVersion, data)
	return err
}

// constraintErr turns constraint violations into ValidationErrors (prefix names the row being
// written, "" for the workflow) and leaves other errors alone. Validate catches all of these
// first except a workflow name taken in the project.
func constraintErr(err error, prefix string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	key := func(f string) string {
		if prefix == "" {
			return f
		}
		return prefix + "." + f
	}
	switch {
	case pgErr.ConstraintName == "workflows_project_id_name_key":
		return fmt.Errorf("%w (%w)", ValidationErrors{"name": {msgTaken}}, err)
	case pgErr.ConstraintName == "jobs_workflow_id_name_key":
		return fmt.Errorf("%w (%w)", ValidationErrors{"jobs.name": {msgTaken}}, err)
	case pgErr.Code == "23505", pgErr.Code == "23503", pgErr.Code == "23514", pgErr.Code == "23502",
		pgErr.Code == "22001": // unique, foreign key, check, not null, string too long
		return fmt.Errorf("%w (%w)", ValidationErrors{key("base"): {"violates " + pgErr.ConstraintName}}, err)
	}
	return err
}

func positionsArg(p map[string]Position) any {
	if len(p) == 0 {
		return nil
	}
	return p
}

func indexBy[T any](xs []T, id func(T) string) map[string]T {
	m := make(map[string]T, len(xs))
	for _, x := range xs {
		m[id(x)] = x
	}
	return m
}
