package workflow

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"time"
	"unicode/utf16"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/encoding"
)

// Layout of a workflow document. Root maps: "workflow" (id, name, lock_version, deleted_at as an
// ISO-8601 string or null, concurrency, enable_job_logs), "positions" (node id → {x, y}) and
// "errors" (see WriteErrors). Root arrays: "jobs", "triggers", "edges", each element a Y.Map
// whose keys are the columns (ids and enums as strings, absent optional values as null); a
// job's "body" is a Y.Text.
const (
	rootWorkflow  = "workflow"
	rootPositions = "positions"
	rootErrors    = "errors"
	rootJobs      = "jobs"
	rootTriggers  = "triggers"
	rootEdges     = "edges"
)

// ErrDeserialization: a document does not have the shape of a workflow document (a root of the
// wrong kind, a value of the wrong type, an unparseable date).
var ErrDeserialization = errors.New("workflow: document is not a valid workflow document")

func shapeErr(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrDeserialization, path, fmt.Sprintf(format, args...))
}

// kindUnknown is the kind crdt gives a root that arrived in an update before anyone asked for
// it by kind; asking converts it.
const kindUnknown = 255

// roots gives the document's root types, checking their kinds first: crdt panics when a root is
// asked for with a kind other than the one it has.
type roots struct {
	workflow, positions, errors *crdt.Map
	jobs, triggers, edges       *crdt.Array
}

func getRoots(doc *crdt.Doc) (r roots, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = shapeErr("roots", "%v", v)
		}
	}()
	// A root that arrived in an update but was never asked for has no kind yet; what it holds
	// tells: map entries, or list items. Either wrong one is a shape error (asking for the kind
	// would silently ignore them).
	for _, name := range []string{rootWorkflow, rootPositions, rootErrors} {
		if t := doc.Root(name); t != nil {
			if t.Kind() != crdt.KindMap && t.Kind() != kindUnknown || len((&crdt.Array{AbstractType: t}).ToArray()) > 0 {
				return r, shapeErr(name, "root is not a map (kind %d)", t.Kind())
			}
		}
	}
	for _, name := range []string{rootJobs, rootTriggers, rootEdges} {
		if t := doc.Root(name); t != nil {
			if t.Kind() != crdt.KindArray && t.Kind() != kindUnknown || (&crdt.Map{AbstractType: t}).Size() > 0 {
				return r, shapeErr(name, "root is not an array (kind %d)", t.Kind())
			}
		}
	}
	return roots{
		workflow:  doc.GetMap(rootWorkflow),
		positions: doc.GetMap(rootPositions),
		errors:    doc.GetMap(rootErrors),
		jobs:      doc.GetArray(rootJobs),
		triggers:  doc.GetArray(rootTriggers),
		edges:     doc.GetArray(rootEdges),
	}, nil
}

// --- reading --------------------------------------------------------------------------------------

// ReadDoc returns the workflow a document describes, without ProjectID, CreatedAt and UpdatedAt
// (the document does not hold them) and without normalizing it. Missing keys read as empty
// (so that validation, not deserialization, reports a job without a name); values of the wrong
// type are an ErrDeserialization. ReadDoc never changes the document's content.
func ReadDoc(doc *crdt.Doc) (w *Workflow, err error) {
	defer func() {
		if v := recover(); v != nil {
			w, err = nil, shapeErr("document", "%v", v)
		}
	}()
	r, err := getRoots(doc)
	if err != nil {
		return nil, err
	}
	rd := &reader{}
	w = &Workflow{
		ID:            rd.str(r.workflow, "id", "workflow"),
		Name:          rd.str(r.workflow, "name", "workflow"),
		LockVersion:   rd.integer(r.workflow, "lock_version", "workflow"),
		Concurrency:   rd.optInt(r.workflow, "concurrency", "workflow"),
		EnableJobLogs: rd.boolean(r.workflow, "enable_job_logs", "workflow", true),
	}
	if s := rd.optStr(r.workflow, "deleted_at", "workflow"); s != nil {
		t, err := time.Parse(time.RFC3339Nano, *s)
		if err != nil {
			rd.fail(shapeErr("workflow.deleted_at", "not an ISO-8601 time: %q", *s))
		}
		w.DeletedAt = ptr(t.UTC())
	}
	for _, k := range r.positions.Keys() {
		v, _ := r.positions.Get(k)
		p, ok := readPosition(v)
		if !ok {
			rd.fail(shapeErr("positions."+k, "want {x, y} numbers, got %T", v))
			continue
		}
		if w.Positions == nil {
			w.Positions = map[string]Position{}
		}
		w.Positions[k] = p
	}
	for i, v := range r.jobs.ToArray() {
		m, path := rd.elem(v, rootJobs, i)
		if m == nil {
			continue
		}
		w.Jobs = append(w.Jobs, Job{
			ID:                   rd.str(m, "id", path),
			Name:                 rd.str(m, "name", path),
			Body:                 rd.text(m, "body", path),
			Adaptor:              rd.str(m, "adaptor", path),
			ProjectCredentialID:  rd.optStr(m, "project_credential_id", path),
			KeychainCredentialID: rd.optStr(m, "keychain_credential_id", path),
		})
	}
	for i, v := range r.triggers.ToArray() {
		m, path := rd.elem(v, rootTriggers, i)
		if m == nil {
			continue
		}
		w.Triggers = append(w.Triggers, Trigger{
			ID:              rd.str(m, "id", path),
			Type:            rd.str(m, "type", path),
			Enabled:         rd.boolean(m, "enabled", path, false),
			CronExpression:  rd.optStr(m, "cron_expression", path),
			CronCursorJobID: rd.optStr(m, "cron_cursor_job_id", path),
			WebhookReply:    rd.optStr(m, "webhook_reply", path),
		})
	}
	for i, v := range r.edges.ToArray() {
		m, path := rd.elem(v, rootEdges, i)
		if m == nil {
			continue
		}
		w.Edges = append(w.Edges, Edge{
			ID:                  rd.str(m, "id", path),
			SourceJobID:         rd.optStr(m, "source_job_id", path),
			SourceTriggerID:     rd.optStr(m, "source_trigger_id", path),
			TargetJobID:         rd.str(m, "target_job_id", path),
			ConditionType:       rd.str(m, "condition_type", path),
			ConditionExpression: rd.optStr(m, "condition_expression", path),
			ConditionLabel:      rd.optStr(m, "condition_label", path),
			Enabled:             rd.boolean(m, "enabled", path, true),
		})
	}
	if rd.err != nil {
		return nil, rd.err
	}
	if w.ID == "" {
		return nil, shapeErr("workflow.id", "missing")
	}
	return w, nil
}

// reader keeps the first shape error met.
type reader struct{ err error }

func (rd *reader) fail(err error) {
	if rd.err == nil {
		rd.err = err
	}
}

func (rd *reader) elem(v any, root string, i int) (*crdt.Map, string) {
	path := fmt.Sprintf("%s[%d]", root, i)
	m, ok := v.(*crdt.Map)
	if !ok {
		rd.fail(shapeErr(path, "want a map, got %T", v))
		return nil, path
	}
	return m, path
}

func (rd *reader) str(m *crdt.Map, key, path string) string {
	v, _ := m.Get(key)
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	rd.fail(shapeErr(path+"."+key, "want a string, got %T", v))
	return ""
}

func (rd *reader) optStr(m *crdt.Map, key, path string) *string {
	v, _ := m.Get(key)
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return &x
	}
	rd.fail(shapeErr(path+"."+key, "want a string or null, got %T", v))
	return nil
}

func (rd *reader) text(m *crdt.Map, key, path string) string {
	v, _ := m.Get(key)
	switch x := v.(type) {
	case nil:
		return ""
	case *crdt.Text:
		return x.String()
	case string: // tolerated; ReconcileDoc turns it into a Y.Text
		return x
	}
	rd.fail(shapeErr(path+"."+key, "want a Y.Text, got %T", v))
	return ""
}

func (rd *reader) integer(m *crdt.Map, key, path string) int {
	v, _ := m.Get(key)
	n, ok := toInt(v)
	if !ok {
		rd.fail(shapeErr(path+"."+key, "want an integer, got %T %v", v, v))
	}
	return n
}

func (rd *reader) optInt(m *crdt.Map, key, path string) *int {
	v, _ := m.Get(key)
	if v == nil {
		return nil
	}
	n, ok := toInt(v)
	if !ok {
		rd.fail(shapeErr(path+"."+key, "want an integer or null, got %T %v", v, v))
		return nil
	}
	return &n
}

func (rd *reader) boolean(m *crdt.Map, key, path string, missing bool) bool {
	v, ok := m.Get(key)
	if !ok {
		return missing
	}
	b, ok := v.(bool)
	if !ok {
		rd.fail(shapeErr(path+"."+key, "want a boolean, got %T", v))
	}
	return b
}

func readPosition(v any) (Position, bool) {
	obj, ok := encoding.ToPlain(v).(map[string]any)
	if !ok {
		return Position{}, false
	}
	x, okx := encoding.Float64(obj["x"])
	y, oky := encoding.Float64(obj["y"])
	return Position{X: x, Y: y}, okx && oky
}

func toInt(v any) (int, bool) {
	f, ok := encoding.Float64(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

// --- writing --------------------------------------------------------------------------------------

// kv is one key of a document map with the value it should hold.
type kv struct {
	key string
	val any
}

func header(w *Workflow) []kv {
	var deleted any
	if w.DeletedAt != nil {
		deleted = w.DeletedAt.UTC().Format(time.RFC3339Nano)
	}
	return []kv{
		{"id", w.ID},
		{"name", w.Name},
		{"lock_version", w.LockVersion},
		{"deleted_at", deleted},
		{"concurrency", optVal(w.Concurrency)},
		{"enable_job_logs", w.EnableJobLogs},
	}
}

func jobFields(j Job) []kv { // body is a Y.Text, handled apart
	return []kv{
		{"id", j.ID},
		{"name", j.Name},
		{"adaptor", j.Adaptor},
		{"project_credential_id", optVal(j.ProjectCredentialID)},
		{"keychain_credential_id", optVal(j.KeychainCredentialID)},
	}
}

func triggerFields(t Trigger) []kv {
	return []kv{
		{"id", t.ID},
		{"type", t.Type},
		{"enabled", t.Enabled},
		{"cron_expression", optVal(t.CronExpression)},
		{"cron_cursor_job_id", optVal(t.CronCursorJobID)},
		{"webhook_reply", optVal(t.WebhookReply)},
	}
}

func edgeFields(e Edge) []kv {
	return []kv{
		{"id", e.ID},
		{"source_job_id", optVal(e.SourceJobID)},
		{"source_trigger_id", optVal(e.SourceTriggerID)},
		{"target_job_id", e.TargetJobID},
		{"condition_type", e.ConditionType},
		{"condition_expression", optVal(e.ConditionExpression)},
		{"condition_label", optVal(e.ConditionLabel)},
		{"enabled", e.Enabled},
	}
}

func optVal[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func positionVal(p Position) map[string]any { return map[string]any{"x": p.X, "y": p.Y} }

// element is one child to be written into a root array.
type element struct {
	id     string
	fields []kv
	body   *string // jobs only
}

func elements(w *Workflow) (jobs, triggers, edges []element) {
	for _, j := range w.Jobs {
		jobs = append(jobs, element{id: j.ID, fields: jobFields(j), body: ptr(j.Body)})
	}
	for _, t := range w.Triggers {
		triggers = append(triggers, element{id: t.ID, fields: triggerFields(t)})
	}
	for _, e := range w.Edges {
		edges = append(edges, element{id: e.ID, fields: edgeFields(e)})
	}
	return jobs, triggers, edges
}

func (e element) newMap() *crdt.Map {
	m := crdt.NewMap()
	for _, f := range e.fields {
		_ = m.Set(f.key, f.val) // preliminary: queued, checked when integrated
	}
	if e.body != nil {
		_ = m.Set("body", crdt.NewText(*e.body))
	}
	return m
}

// BuildDoc writes w into an empty document (the first time a workflow document is opened).
// On a document with content it behaves as ResetDoc.
func BuildDoc(doc *crdt.Doc, w *Workflow) error { return ResetDoc(doc, w) }

// ResetDoc makes the document describe w: the workflow map is set to w's values (keys that
// already hold them are left alone), positions, errors and the jobs, triggers and edges arrays
// are emptied and rebuilt. Everything happens in one transaction.
func ResetDoc(doc *crdt.Doc, w *Workflow) error {
	r, err := getRoots(doc)
	if err != nil {
		return err
	}
	return transact(doc, func() error {
		for _, f := range header(w) {
			if err := setIfChanged(r.workflow, f.key, f.val); err != nil {
				return err
			}
		}
		clearMap(r.positions)
		for id, p := range w.Positions {
			if err := r.positions.Set(id, positionVal(p)); err != nil {
				return err
			}
		}
		clearMap(r.errors)
		jobs, triggers, edges := elements(w)
		for _, a := range []struct {
			arr  *crdt.Array
			want []element
		}{{r.jobs, jobs}, {r.triggers, triggers}, {r.edges, edges}} {
			if n := a.arr.Len(); n > 0 {
				if err := a.arr.Delete(0, n); err != nil {
					return err
				}
			}
			vals := make([]any, len(a.want))
			for i, e := range a.want {
				vals[i] = e.newMap()
			}
			if len(vals) > 0 {
				if err := a.arr.Push(vals...); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ReconcileDoc changes the document as little as possible to make it describe w: elements whose
// id w lacks (and elements that are not maps or repeat an id) are removed, new ones appended,
// and on the others only the keys whose values differ are set; a job body whose text differs is
// edited in place by one delete and one insert around the common prefix and suffix, so that
// cursors elsewhere in it survive. Positions are reconciled key by key; errors are cleared. One
// transaction.
func ReconcileDoc(doc *crdt.Doc, w *Workflow) error {
	r, err := getRoots(doc)
	if err != nil {
		return err
	}
	return transact(doc, func() error {
		for _, f := range header(w) {
			if err := setIfChanged(r.workflow, f.key, f.val); err != nil {
				return err
			}
		}
		for _, k := range r.positions.Keys() {
			if _, ok := w.Positions[k]; !ok {
				r.positions.Delete(k)
			}
		}
		for id, p := range w.Positions {
			if err := setIfChanged(r.positions, id, positionVal(p)); err != nil {
				return err
			}
		}
		clearMap(r.errors)
		jobs, triggers, edges := elements(w)
		if err := reconcileArray(r.jobs, jobs); err != nil {
			return err
		}
		if err := reconcileArray(r.triggers, triggers); err != nil {
			return err
		}
		return reconcileArray(r.edges, edges)
	})
}

func reconcileArray(arr *crdt.Array, want []element) error {
	wanted := make(map[string]bool, len(want))
	for _, e := range want {
		wanted[e.id] = true
	}
	have := map[string]*crdt.Map{}
	for i := arr.Len() - 1; i >= 0; i-- { // backwards, so deletions keep earlier indexes valid
		v, _ := arr.Get(i)
		m, _ := v.(*crdt.Map)
		var id string
		if m != nil {
			idv, _ := m.Get("id")
			id, _ = idv.(string)
		}
		if m == nil || !wanted[id] || have[id] != nil {
			if err := arr.Delete(i, 1); err != nil {
				return err
			}
			continue
		}
		have[id] = m
	}
	// A repeated id keeps its last element: that one was seen first walking backwards. Walking
	// backwards also means have[id] holds the last; earlier duplicates were deleted.
	var added []any
	for _, e := range want {
		m := have[e.id]
		if m == nil {
			added = append(added, e.newMap())
			continue
		}
		for _, f := range e.fields {
			if err := setIfChanged(m, f.key, f.val); err != nil {
				return err
			}
		}
		if e.body != nil {
			if err := setBody(m, *e.body); err != nil {
				return err
			}
		}
	}
	if len(added) > 0 {
		return arr.Push(added...)
	}
	return nil
}

func setBody(m *crdt.Map, want string) error {
	v, _ := m.Get("body")
	t, ok := v.(*crdt.Text)
	if !ok {
		return m.Set("body", crdt.NewText(want))
	}
	return editText(t, want)
}

// editText turns t's text into want with at most one delete and one insert, placed between the
// longest common prefix and suffix (counted in UTF-16 units, as Y.Text positions are, and never
// splitting a surrogate pair).
func editText(t *crdt.Text, want string) error {
	have := t.String()
	if have == want {
		return nil
	}
	a, b := utf16.Encode([]rune(have)), utf16.Encode([]rune(want))
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	if p > 0 && utf16.IsSurrogate(rune(a[p-1])) && a[p-1] < 0xdc00 { // ends on a high surrogate
		p--
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	if s > 0 && a[len(a)-s] >= 0xdc00 && a[len(a)-s] <= 0xdfff { // starts on a low surrogate
		s--
	}
	if n := len(a) - p - s; n > 0 {
		if err := t.Delete(p, n); err != nil {
			return err
		}
	}
	if ins := b[p : len(b)-s]; len(ins) > 0 {
		return t.Insert(p, string(utf16.Decode(ins)), map[string]any{})
	}
	return nil
}

// RefreshMeta brings a document loaded from its stored Yjs state up to date with the tables
// (w, as the repository returns it). A document without a workflow id is built from w. If its
// lock_version differs from w's, someone saved or changed the workflow while the document was
// not loaded: the document is reset from w. Otherwise only name, lock_version and deleted_at
// are refreshed and unsaved edits are kept.
func RefreshMeta(doc *crdt.Doc, w *Workflow) error {
	r, err := getRoots(doc)
	if err != nil {
		return err
	}
	id, _ := r.workflow.Get("id")
	lvv, _ := r.workflow.Get("lock_version")
	lv, ok := toInt(lvv)
	if id != w.ID || !ok || lv != w.LockVersion {
		return ResetDoc(doc, w)
	}
	h := header(w)
	return transact(doc, func() error {
		for _, f := range h {
			switch f.key {
			case "name", "lock_version", "deleted_at":
				if err := setIfChanged(r.workflow, f.key, f.val); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// WriteErrors makes the document's "errors" map describe errs (nil or empty clears it), keyed
// as ErrorsByID does: errors["name"] = ["can't be blank"], errors["jobs"][<job id>]["name"] =
// [...]. Only keys whose value changes are written.
func WriteErrors(doc *crdt.Doc, w *Workflow, errs ValidationErrors) error {
	r, err := getRoots(doc)
	if err != nil {
		return err
	}
	want := ErrorsByID(w, errs)
	return transact(doc, func() error {
		for _, k := range r.errors.Keys() {
			if _, ok := want[k]; !ok {
				r.errors.Delete(k)
			}
		}
		for k, v := range want {
			if err := setIfChanged(r.errors, k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

var childKeyRe = regexp.MustCompile(`^(jobs|triggers|edges)\[(\d+)\]\.(.+)$`)

// ErrorsByID regroups validation errors of w by entity id: workflow fields stay top-level
// ("name": ["..."]), "jobs[2].name" becomes "jobs": {<id of w.Jobs[2]>: {"name": [...]}} (the
// index itself if that job has no id). Values are plain JSON-able Go values ([]any, map[string]any).
func ErrorsByID(w *Workflow, errs ValidationErrors) map[string]any {
	out := map[string]any{}
	for key, msgs := range errs {
		list := make([]any, len(msgs))
		for i, m := range msgs {
			list[i] = m
		}
		m := childKeyRe.FindStringSubmatch(key)
		if m == nil {
			out[key] = list
			continue
		}
		coll, field := m[1], m[3]
		idx, _ := strconv.Atoi(m[2])
		id := m[2]
		if w != nil {
			switch {
			case coll == "jobs" && idx < len(w.Jobs) && w.Jobs[idx].ID != "":
				id = w.Jobs[idx].ID
			case coll == "triggers" && idx < len(w.Triggers) && w.Triggers[idx].ID != "":
				id = w.Triggers[idx].ID
			case coll == "edges" && idx < len(w.Edges) && w.Edges[idx].ID != "":
				id = w.Edges[idx].ID
			}
		}
		byID, _ := out[coll].(map[string]any)
		if byID == nil {
			byID = map[string]any{}
			out[coll] = byID
		}
		fields, _ := byID[id].(map[string]any)
		if fields == nil {
			fields = map[string]any{}
			byID[id] = fields
		}
		fields[field] = append(list, toAnyList(fields[field])...)
	}
	return out
}

func toAnyList(v any) []any {
	l, _ := v.([]any)
	return l
}

// setIfChanged sets key to val unless it already holds an equal value (numbers compared by
// value whatever their Go type; objects and arrays by their plain form).
func setIfChanged(m *crdt.Map, key string, val any) error {
	if cur, ok := m.Get(key); ok && sameValue(cur, val) {
		return nil
	}
	return m.Set(key, val)
}

func sameValue(a, b any) bool {
	if fa, ok := encoding.Float64(a); ok {
		fb, ok := encoding.Float64(b)
		return ok && fa == fb
	}
	switch a.(type) {
	case *crdt.Map, *crdt.Array, *crdt.Text, crdt.YType:
		return false
	}
	return reflect.DeepEqual(normalizeNumbers(encoding.ToPlain(a)), normalizeNumbers(encoding.ToPlain(b)))
}

// normalizeNumbers makes every number float64, so that a locally stored int equals the float64
// the same value decodes to.
func normalizeNumbers(v any) any {
	if f, ok := encoding.Float64(v); ok {
		return f
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeNumbers(e)
		}
		return out
	}
	return v
}

func clearMap(m *crdt.Map) {
	for _, k := range m.Keys() {
		m.Delete(k)
	}
}

// transact runs fn in one document transaction (joining the caller's, if any) and turns a
// panic of the crdt package into an error.
func transact(doc *crdt.Doc, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("workflow: edit document: panic: %v", v)
		}
	}()
	doc.Transact(func(*crdt.Transaction) { err = fn() }, nil)
	return err
}
