// Package workflow is the workflow domain: the model and its validation, the Postgres
// repository (tables of migration 000002, optimistic locking on lock_version), the mapping
// between a workflow and its Y.Doc ("workflow:<id>"), and the service that saves a live
// document into the tables and resets it from them.
//
// # Who calls what
//
// The Repo is safe for concurrent use and does its own transactions. The doc functions
// (BuildDoc, ReadDoc, ResetDoc, ReconcileDoc, RefreshMeta, WriteErrors) take a *crdt.Doc and
// must run on the goroutine that owns it; the Service reaches a live document only through the
// LiveDoc interface, whose implementation runs the given function there, and never holds the
// document while it talks to Postgres: it reads the document, releases it, writes the tables,
// then writes the outcome back into the document.
package workflow

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
)

// DefaultAdaptor is the adaptor of a job that names none.
const DefaultAdaptor = "@openfn/language-common@latest"

// DefaultCron is the schedule of a cron trigger that names none (daily at midnight).
const DefaultCron = "0 0 * * *"

// Trigger types.
const (
	TriggerWebhook = "webhook"
	TriggerCron    = "cron"
)

// Webhook reply modes.
const (
	ReplyBeforeStart     = "before_start"
	ReplyAfterCompletion = "after_completion"
	ReplyCustom          = "custom"
)

// Edge condition types.
const (
	ConditionAlways       = "always"
	ConditionOnSuccess    = "on_job_success"
	ConditionOnFailure    = "on_job_failure"
	ConditionJSExpression = "js_expression"
)

// Workflow is a workflow with its jobs, triggers and edges. IDs are lowercase canonical UUID
// strings. The order of Jobs, Triggers and Edges carries no meaning (the repository returns them
// in creation order; the document keeps its own order).
type Workflow struct {
	ID            string              `json:"id"`
	ProjectID     string              `json:"project_id"`
	Name          string              `json:"name"`
	LockVersion   int                 `json:"lock_version"`
	DeletedAt     *time.Time          `json:"deleted_at"`
	Positions     map[string]Position `json:"positions"` // node id → position; nil when empty
	Concurrency   *int                `json:"concurrency"`
	EnableJobLogs bool                `json:"enable_job_logs"`
	Jobs          []Job               `json:"jobs"`
	Triggers      []Trigger           `json:"triggers"`
	Edges         []Edge              `json:"edges"`
	// Set by the repository; not part of the document.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Position is where the editor draws a node.
type Position struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Job is one step of a workflow: a script (Body) run with an adaptor.
type Job struct {
	ID                   string  `json:"id"`
	Name                 string  `json:"name"`
	Body                 string  `json:"body"`
	Adaptor              string  `json:"adaptor"`
	ProjectCredentialID  *string `json:"project_credential_id"`
	KeychainCredentialID *string `json:"keychain_credential_id"`
}

// Trigger starts a workflow: a webhook or a cron schedule.
type Trigger struct {
	ID              string  `json:"id"`
	Type            string  `json:"type"`
	Enabled         bool    `json:"enabled"`
	CronExpression  *string `json:"cron_expression"`
	CronCursorJobID *string `json:"cron_cursor_job_id"`
	WebhookReply    *string `json:"webhook_reply"`
}

// Edge connects a job or a trigger (exactly one of the two sources) to a target job.
type Edge struct {
	ID                  string  `json:"id"`
	SourceJobID         *string `json:"source_job_id"`
	SourceTriggerID     *string `json:"source_trigger_id"`
	TargetJobID         string  `json:"target_job_id"`
	ConditionType       string  `json:"condition_type"`
	ConditionExpression *string `json:"condition_expression"`
	ConditionLabel      *string `json:"condition_label"`
	Enabled             bool    `json:"enabled"`
}

// Normalize fills in defaults the way the database and the editor expect them, so that a
// workflow compares equal to what storing it gives back: a missing adaptor becomes
// DefaultAdaptor, a cron trigger without a schedule gets DefaultCron, a webhook trigger has no
// schedule, a cron cursor pointing at a job the workflow no longer has is dropped, a missing
// condition type is "always", empty positions are nil, and blank optional strings are nil.
func (w *Workflow) Normalize() {
	if len(w.Positions) == 0 {
		w.Positions = nil
	}
	for i := range w.Jobs {
		j := &w.Jobs[i]
		if j.Adaptor == "" {
			j.Adaptor = DefaultAdaptor
		}
		j.ProjectCredentialID = blankNil(j.ProjectCredentialID)
		j.KeychainCredentialID = blankNil(j.KeychainCredentialID)
	}
	jobs := make(map[string]bool, len(w.Jobs))
	for _, j := range w.Jobs {
		jobs[j.ID] = true
	}
	for i := range w.Triggers {
		t := &w.Triggers[i]
		switch t.Type {
		case TriggerCron:
			if t.CronExpression == nil || strings.TrimSpace(*t.CronExpression) == "" {
				t.CronExpression = ptr(DefaultCron)
			}
		case TriggerWebhook:
			t.CronExpression = nil
		}
		t.CronCursorJobID = blankNil(t.CronCursorJobID)
		if t.CronCursorJobID != nil && !jobs[*t.CronCursorJobID] {
			// The job was removed: forget the cursor, as the table's ON DELETE SET NULL does.
			t.CronCursorJobID = nil
		}
		t.WebhookReply = blankNil(t.WebhookReply)
	}
	for i := range w.Edges {
		e := &w.Edges[i]
		if e.ConditionType == "" {
			e.ConditionType = ConditionAlways
		}
		e.SourceJobID = blankNil(e.SourceJobID)
		e.SourceTriggerID = blankNil(e.SourceTriggerID)
	}
}

// Clone returns a deep copy.
func (w *Workflow) Clone() *Workflow {
	c := *w
	if w.DeletedAt != nil {
		c.DeletedAt = ptr(*w.DeletedAt)
	}
	if w.Concurrency != nil {
		c.Concurrency = ptr(*w.Concurrency)
	}
	if w.Positions != nil {
		c.Positions = make(map[string]Position, len(w.Positions))
		for k, v := range w.Positions {
			c.Positions[k] = v
		}
	}
	c.Jobs = make([]Job, len(w.Jobs))
	for i, j := range w.Jobs {
		j.ProjectCredentialID = clonePtr(j.ProjectCredentialID)
		j.KeychainCredentialID = clonePtr(j.KeychainCredentialID)
		c.Jobs[i] = j
	}
	c.Triggers = make([]Trigger, len(w.Triggers))
	for i, t := range w.Triggers {
		t.CronExpression = clonePtr(t.CronExpression)
		t.CronCursorJobID = clonePtr(t.CronCursorJobID)
		t.WebhookReply = clonePtr(t.WebhookReply)
		c.Triggers[i] = t
	}
	c.Edges = make([]Edge, len(w.Edges))
	for i, e := range w.Edges {
		e.SourceJobID = clonePtr(e.SourceJobID)
		e.SourceTriggerID = clonePtr(e.SourceTriggerID)
		e.ConditionExpression = clonePtr(e.ConditionExpression)
		e.ConditionLabel = clonePtr(e.ConditionLabel)
		c.Edges[i] = e
	}
	return &c
}

// Equal reports whether a and b have the same content as far as the document and the tables are
// concerned: every field but CreatedAt and UpdatedAt, with jobs, triggers and edges compared by
// ID regardless of order.
func Equal(a, b *Workflow) bool {
	if a.ID != b.ID || a.ProjectID != b.ProjectID || a.LockVersion != b.LockVersion ||
		!timePtrEqual(a.DeletedAt, b.DeletedAt) {
		return false
	}
	return !headerChanged(a, b) && !childrenChanged(a, b)
}

// headerChanged reports whether the user-editable workflow fields differ.
func headerChanged(a, b *Workflow) bool {
	return a.Name != b.Name || !ptrEqual(a.Concurrency, b.Concurrency) ||
		a.EnableJobLogs != b.EnableJobLogs || !positionsEqual(a.Positions, b.Positions)
}

// childrenChanged reports whether the jobs, triggers or edges differ (by ID, order ignored).
func childrenChanged(a, b *Workflow) bool {
	return !sameSet(a.Jobs, b.Jobs, func(j Job) string { return j.ID }, jobEqual) ||
		!sameSet(a.Triggers, b.Triggers, func(t Trigger) string { return t.ID }, triggerEqual) ||
		!sameSet(a.Edges, b.Edges, func(e Edge) string { return e.ID }, edgeEqual)
}

func sameSet[T any](a, b []T, id func(T) string, eq func(T, T) bool) bool {
	if len(a) != len(b) {
		return false
	}
	byID := make(map[string]T, len(b))
	for _, x := range b {
		byID[id(x)] = x
	}
	if len(byID) != len(b) {
		return false
	}
	for _, x := range a {
		y, ok := byID[id(x)]
		if !ok || !eq(x, y) {
			return false
		}
	}
	return true
}

func jobEqual(a, b Job) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Body == b.Body && a.Adaptor == b.Adaptor &&
		ptrEqual(a.ProjectCredentialID, b.ProjectCredentialID) &&
		ptrEqual(a.KeychainCredentialID, b.KeychainCredentialID)
}

func triggerEqual(a, b Trigger) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Enabled == b.Enabled &&
		ptrEqual(a.CronExpression, b.CronExpression) && ptrEqual(a.CronCursorJobID, b.CronCursorJobID) &&
		ptrEqual(a.WebhookReply, b.WebhookReply)
}

func edgeEqual(a, b Edge) bool {
	return a.ID == b.ID && ptrEqual(a.SourceJobID, b.SourceJobID) &&
		ptrEqual(a.SourceTriggerID, b.SourceTriggerID) && a.TargetJobID == b.TargetJobID &&
		a.ConditionType == b.ConditionType && ptrEqual(a.ConditionExpression, b.ConditionExpression) &&
		ptrEqual(a.ConditionLabel, b.ConditionLabel) && a.Enabled == b.Enabled
}

func positionsEqual(a, b map[string]Position) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func ptr[T any](v T) *T { return &v }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

func blankNil(s *string) *string {
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil
	}
	return s
}

// NewID returns a random (version 4) UUID in canonical lowercase form.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ValidID reports whether s is a UUID in canonical lowercase form (what Postgres returns, so
// that IDs compare equal after a round trip through the tables).
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// DocPrefix starts the name of every workflow document.
const DocPrefix = "workflow:"

// DocName returns the name of the document of workflow id.
func DocName(id string) string { return DocPrefix + id }

// ParseDocName returns the workflow id of a workflow document name, and false for any other
// document name.
func ParseDocName(name string) (id string, ok bool) {
	id, ok = strings.CutPrefix(name, DocPrefix)
	if !ok || !ValidID(id) {
		return "", false
	}
	return id, true
}
