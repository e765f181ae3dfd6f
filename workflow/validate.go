package workflow

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrValidation is matched (errors.Is) by every ValidationErrors.
var ErrValidation = errors.New("workflow: invalid")

// ValidationErrors maps a field path to its messages. Paths name workflow fields directly
// ("name", "concurrency") and children by their index in the validated Workflow
// ("jobs[0].name", "triggers[1].cron_expression", "edges[2].condition_type").
type ValidationErrors map[string][]string

// Add records msg for key.
func (v ValidationErrors) Add(key, msg string) { v[key] = append(v[key], msg) }

// Error lists the errors in key order.
func (v ValidationErrors) Error() string {
	var b strings.Builder
	b.WriteString("workflow: invalid: ")
	for i, k := range slices.Sorted(maps.Keys(v)) {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s", k, strings.Join(v[k], ", "))
	}
	return b.String()
}

// Is makes errors.Is(v, ErrValidation) true.
func (v ValidationErrors) Is(target error) bool { return target == ErrValidation }

// Messages.
const (
	msgBlank   = "can't be blank"
	msgInvalid = "is invalid"
	msgTaken   = "has already been taken"
	msgMissing = "does not exist in this workflow"
)

// MaxNameLen bounds workflow names; MaxJobNameLen job names; MaxConditionLen an edge's
// condition expression and label.
const (
	MaxNameLen      = 255
	MaxJobNameLen   = 100
	MaxConditionLen = 255
)

var jobNameRe = regexp.MustCompile(`^[A-Za-z0-9_ -]*$`)

// Validate checks w (after Normalize) and returns the errors found, or nil. Checks that need
// other rows (a workflow name taken in the project, an ID used by another workflow) happen in
// the repository and are reported the same way.
func Validate(w *Workflow) ValidationErrors {
	v := ValidationErrors{}
	if !ValidID(w.ID) {
		v.Add("id", msgInvalid)
	}
	switch {
	case strings.TrimSpace(w.Name) == "":
		v.Add("name", msgBlank)
	case utf8.RuneCountInString(w.Name) > MaxNameLen:
		v.Add("name", fmt.Sprintf("should be at most %d character(s)", MaxNameLen))
	}
	if w.LockVersion < 0 {
		v.Add("lock_version", msgInvalid)
	}
	if w.Concurrency != nil && *w.Concurrency < 1 {
		v.Add("concurrency", "must be greater than or equal to 1")
	}

	jobs := map[string]bool{}
	names := map[string]bool{}
	for i, j := range w.Jobs {
		key := func(f string) string { return fmt.Sprintf("jobs[%d].%s", i, f) }
		checkChildID(v, key("id"), j.ID, jobs)
		switch {
		case strings.TrimSpace(j.Name) == "":
			v.Add(key("name"), msgBlank)
		case utf8.RuneCountInString(j.Name) > MaxJobNameLen:
			v.Add(key("name"), fmt.Sprintf("should be at most %d character(s)", MaxJobNameLen))
		case !jobNameRe.MatchString(j.Name):
			v.Add(key("name"), "has invalid format: use letters, digits, spaces, _ and - only")
		case names[j.Name]:
			v.Add(key("name"), msgTaken)
		default:
			names[j.Name] = true
		}
		if strings.TrimSpace(j.Adaptor) == "" {
			v.Add(key("adaptor"), msgBlank)
		}
		checkOptionalID(v, key("project_credential_id"), j.ProjectCredentialID)
		checkOptionalID(v, key("keychain_credential_id"), j.KeychainCredentialID)
		if j.ProjectCredentialID != nil && j.KeychainCredentialID != nil {
			v.Add(key("keychain_credential_id"), "can't be set together with project_credential_id")
		}
	}

	triggers := map[string]bool{}
	for i, t := range w.Triggers {
		key := func(f string) string { return fmt.Sprintf("triggers[%d].%s", i, f) }
		checkChildID(v, key("id"), t.ID, triggers)
		switch t.Type {
		case TriggerCron:
			if t.CronExpression == nil || strings.TrimSpace(*t.CronExpression) == "" {
				v.Add(key("cron_expression"), msgBlank)
			} else if err := ValidateCron(*t.CronExpression); err != nil {
				v.Add(key("cron_expression"), err.Error())
			}
		case TriggerWebhook:
			if t.CronExpression != nil {
				v.Add(key("cron_expression"), "must be empty for a webhook trigger")
			}
		case "":
			v.Add(key("type"), msgBlank)
		default:
			v.Add(key("type"), msgInvalid)
		}
		if t.CronCursorJobID != nil && !jobs[*t.CronCursorJobID] {
			v.Add(key("cron_cursor_job_id"), msgMissing)
		}
		if t.WebhookReply != nil {
			switch *t.WebhookReply {
			case ReplyBeforeStart, ReplyAfterCompletion, ReplyCustom:
			default:
				v.Add(key("webhook_reply"), msgInvalid)
			}
		}
	}

	edges := map[string]bool{}
	for i, e := range w.Edges {
		key := func(f string) string { return fmt.Sprintf("edges[%d].%s", i, f) }
		checkChildID(v, key("id"), e.ID, edges)
		switch {
		case e.SourceJobID == nil && e.SourceTriggerID == nil:
			v.Add(key("source_job_id"), "either source_job_id or source_trigger_id must be set")
		case e.SourceJobID != nil && e.SourceTriggerID != nil:
			v.Add(key("source_trigger_id"), "can't be set together with source_job_id")
		case e.SourceJobID != nil && !jobs[*e.SourceJobID]:
			v.Add(key("source_job_id"), msgMissing)
		case e.SourceTriggerID != nil && !triggers[*e.SourceTriggerID]:
			v.Add(key("source_trigger_id"), msgMissing)
		}
		switch {
		case e.TargetJobID == "":
			v.Add(key("target_job_id"), msgBlank)
		case !jobs[e.TargetJobID]:
			v.Add(key("target_job_id"), msgMissing)
		case e.SourceJobID != nil && *e.SourceJobID == e.TargetJobID:
			v.Add(key("target_job_id"), "must be different from the source job")
		}
		switch e.ConditionType {
		case ConditionAlways, ConditionJSExpression:
		case ConditionOnSuccess, ConditionOnFailure:
			if e.SourceTriggerID != nil {
				v.Add(key("condition_type"), "must be always or js_expression when the source is a trigger")
			}
		case "":
			v.Add(key("condition_type"), msgBlank)
		default:
			v.Add(key("condition_type"), msgInvalid)
		}
		for f, s := range map[string]*string{"condition_expression": e.ConditionExpression, "condition_label": e.ConditionLabel} {
			blank := s == nil || strings.TrimSpace(*s) == ""
			switch {
			case e.ConditionType == ConditionJSExpression && blank:
				v.Add(key(f), msgBlank)
			case s != nil && utf8.RuneCountInString(*s) > MaxConditionLen:
				v.Add(key(f), fmt.Sprintf("should be at most %d character(s)", MaxConditionLen))
			}
		}
	}
	if len(v) == 0 {
		return nil
	}
	return v
}

func checkChildID(v ValidationErrors, key, id string, seen map[string]bool) {
	switch {
	case id == "":
		v.Add(key, msgBlank)
	case !ValidID(id):
		v.Add(key, msgInvalid)
	case seen[id]:
		v.Add(key, msgTaken)
	default:
		seen[id] = true
	}
}

func checkOptionalID(v ValidationErrors, key string, id *string) {
	if id != nil && !ValidID(*id) {
		v.Add(key, msgInvalid)
	}
}

// cronField describes one of the five fields of a cron expression.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = []cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// ValidateCron checks a standard five-field cron expression (minute hour day-of-month month
// day-of-week). Each field is a comma-separated list of *, a value, or a range a-b, each
// optionally followed by /step; months and weekdays may be given by their three-letter English
// names, and 7 is Sunday too.
func ValidateCron(expr string) error {
	fields := strings.Fields(expr)
	if len(fields) != len(cronFields) {
		return fmt.Errorf("is invalid: want 5 fields (minute hour day month weekday), got %d", len(fields))
	}
	for i, f := range fields {
		if err := cronFields[i].check(f); err != nil {
			return fmt.Errorf("is invalid: %s field %q: %w", cronFields[i].name, f, err)
		}
	}
	return nil
}

func (cf cronField) check(field string) error {
	for _, part := range strings.Split(field, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > cf.max-cf.min+1 {
				return fmt.Errorf("bad step %q", step)
			}
		}
		if rng == "*" {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := cf.value(lo)
		if err != nil {
			return err
		}
		if !isRange {
			continue
		}
		b, err := cf.value(hi)
		if err != nil {
			return err
		}
		if a > b {
			return fmt.Errorf("range %q runs backwards", rng)
		}
	}
	return nil
}

func (cf cronField) value(s string) (int, error) {
	if i := slices.Index(cf.names, strings.ToLower(s)); i >= 0 {
		return cf.min + i, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < cf.min || n > cf.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, cf.min, cf.max)
	}
	return n, nil
}
