package workflow_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ysync/ysync/workflow"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	if errs := workflow.Validate(normalized()); errs != nil {
		t.Fatalf("sample: %v", errs)
	}
	cases := []struct {
		name string
		edit func(w *workflow.Workflow)
		key  string // expected error key
		more int    // further errors that follow from the same edit
	}{
		{"blank name", func(w *workflow.Workflow) { w.Name = "  " }, "name", 0},
		{"long name", func(w *workflow.Workflow) { w.Name = strings.Repeat("n", 256) }, "name", 0},
		{"bad id", func(w *workflow.Workflow) { w.ID = "ABC" }, "id", 0},
		{"concurrency 0", func(w *workflow.Workflow) { w.Concurrency = ptr(0) }, "concurrency", 0},
		{"blank job name", func(w *workflow.Workflow) { w.Jobs[1].Name = "" }, "jobs[1].name", 0},
		{"job name chars", func(w *workflow.Workflow) { w.Jobs[0].Name = "fetch/data" }, "jobs[0].name", 0},
		{"job name unicode", func(w *workflow.Workflow) { w.Jobs[0].Name = "héllo" }, "jobs[0].name", 0},
		{"job name 101", func(w *workflow.Workflow) { w.Jobs[0].Name = strings.Repeat("a", 101) }, "jobs[0].name", 0},
		{"duplicate job name", func(w *workflow.Workflow) { w.Jobs[2].Name = w.Jobs[0].Name }, "jobs[2].name", 0},
		{"duplicate job id", func(w *workflow.Workflow) { w.Jobs[2].ID = w.Jobs[0].ID }, "jobs[2].id", 1},
		{"blank job id", func(w *workflow.Workflow) { w.Jobs[2].ID = "" }, "jobs[2].id", 1},
		{"two credentials", func(w *workflow.Workflow) { w.Jobs[0].KeychainCredentialID = ptr(workflow.NewID()) }, "jobs[0].keychain_credential_id", 0},
		{"bad credential id", func(w *workflow.Workflow) { w.Jobs[1].ProjectCredentialID = ptr("x") }, "jobs[1].project_credential_id", 0},
		{"trigger type", func(w *workflow.Workflow) { w.Triggers[0].Type = "email" }, "triggers[0].type", 0},
		{"cron 4 fields", func(w *workflow.Workflow) { w.Triggers[1].CronExpression = ptr("* * * *") }, "triggers[1].cron_expression", 0},
		{"cron minute 60", func(w *workflow.Workflow) { w.Triggers[1].CronExpression = ptr("60 * * * *") }, "triggers[1].cron_expression", 0},
		{"cron words", func(w *workflow.Workflow) { w.Triggers[1].CronExpression = ptr("every day") }, "triggers[1].cron_expression", 0},
		{"cron backwards", func(w *workflow.Workflow) { w.Triggers[1].CronExpression = ptr("0 17-9 * * *") }, "triggers[1].cron_expression", 0},
		{"cron step 0", func(w *workflow.Workflow) { w.Triggers[1].CronExpression = ptr("*/0 * * * *") }, "triggers[1].cron_expression", 0},
		{"webhook with cron", func(w *workflow.Workflow) { w.Triggers[0].CronExpression = ptr("* * * * *") }, "triggers[0].cron_expression", 0},
		{"cursor not a job", func(w *workflow.Workflow) { w.Triggers[1].CronCursorJobID = ptr(workflow.NewID()) }, "triggers[1].cron_cursor_job_id", 0},
		{"webhook reply", func(w *workflow.Workflow) { w.Triggers[0].WebhookReply = ptr("later") }, "triggers[0].webhook_reply", 0},
		{"edge no source", func(w *workflow.Workflow) { w.Edges[2].SourceJobID = nil }, "edges[2].source_job_id", 0},
		{"edge two sources", func(w *workflow.Workflow) { w.Edges[2].SourceTriggerID = w.Edges[0].SourceTriggerID }, "edges[2].source_trigger_id", 1},
		{"edge unknown source", func(w *workflow.Workflow) { w.Edges[2].SourceJobID = ptr(workflow.NewID()) }, "edges[2].source_job_id", 0},
		{"edge unknown trigger", func(w *workflow.Workflow) { w.Edges[0].SourceTriggerID = ptr(workflow.NewID()) }, "edges[0].source_trigger_id", 0},
		{"edge unknown target", func(w *workflow.Workflow) { w.Edges[1].TargetJobID = workflow.NewID() }, "edges[1].target_job_id", 0},
		{"edge self loop", func(w *workflow.Workflow) { w.Edges[2].TargetJobID = *w.Edges[2].SourceJobID }, "edges[2].target_job_id", 0},
		{"edge condition", func(w *workflow.Workflow) { w.Edges[2].ConditionType = "sometimes" }, "edges[2].condition_type", 0},
		{"trigger on success", func(w *workflow.Workflow) { w.Edges[0].ConditionType = workflow.ConditionOnSuccess }, "edges[0].condition_type", 0},
		{"js without expression", func(w *workflow.Workflow) { w.Edges[1].ConditionExpression = nil }, "edges[1].condition_expression", 0},
		{"js without label", func(w *workflow.Workflow) { w.Edges[1].ConditionLabel = ptr(" ") }, "edges[1].condition_label", 0},
		{"long label", func(w *workflow.Workflow) { w.Edges[2].ConditionLabel = ptr(strings.Repeat("l", 256)) }, "edges[2].condition_label", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := normalized()
			tc.edit(w)
			errs := workflow.Validate(w)
			if len(errs[tc.key]) == 0 {
				t.Fatalf("Validate = %v, want an error on %s", errs, tc.key)
			}
			if len(errs) != 1+tc.more {
				t.Errorf("Validate = %v, want %s and %d more", errs, tc.key, tc.more)
			}
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	t.Parallel()
	w := normalized()
	w.Jobs[0].Adaptor = ""
	w.Triggers[1].CronExpression = nil
	w.Triggers[0].CronExpression = ptr("0 0 * * *")
	w.Edges[2].ConditionType = ""
	w.Positions = map[string]workflow.Position{}
	w.Triggers[1].CronCursorJobID = ptr(workflow.NewID())
	w.Normalize()
	if w.Jobs[0].Adaptor != workflow.DefaultAdaptor || *w.Triggers[1].CronExpression != workflow.DefaultCron ||
		w.Triggers[0].CronExpression != nil || w.Edges[2].ConditionType != workflow.ConditionAlways || w.Positions != nil ||
		w.Triggers[1].CronCursorJobID != nil {
		t.Fatalf("Normalize: %+v", w)
	}
	if errs := workflow.Validate(w); errs != nil {
		t.Fatal(errs)
	}
}

func TestValidateCron(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"0 0 * * *", "*/5 * * * *", "0 9-17/2 1,15 jan-jun mon-fri", "59 23 31 12 7", "0 0 * * SUN"} {
		if err := workflow.ValidateCron(ok); err != nil {
			t.Errorf("ValidateCron(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "* * * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8", "a b c d e", "-1 * * * *", "1-2-3 * * * *", "*/ * * * *"} {
		if err := workflow.ValidateCron(bad); err == nil {
			t.Errorf("ValidateCron(%q) = nil, want error", bad)
		}
	}
}

func TestErrorsByID(t *testing.T) {
	t.Parallel()
	w := normalized()
	got := workflow.ErrorsByID(w, workflow.ValidationErrors{"jobs[0].name": {"a"}, "jobs[0].adaptor": {"b"}, "name": {"c"}})
	jobs := got["jobs"].(map[string]any)
	fields := jobs[w.Jobs[0].ID].(map[string]any)
	keys := []string{}
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"adaptor", "name"}) || got["name"] == nil {
		t.Fatalf("ErrorsByID = %#v", got)
	}
}
