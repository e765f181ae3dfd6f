package workflow_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/migrations"
	"github.com/ysync/ysync/workflow"
)

// newRepo returns a repository over a fresh migrated schema.
func newRepo(t *testing.T) *workflow.Repo {
	t.Helper()
	url := pgtest.NewSchema(t)
	ctx := context.Background()
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return workflow.NewRepo(pool)
}

func ptr[T any](v T) *T { return &v }

// sample returns a valid workflow: a webhook and a cron trigger, three jobs, edges of every
// kind, positions and a job body with non-ASCII text.
func sample() *workflow.Workflow {
	j1, j2, j3 := workflow.NewID(), workflow.NewID(), workflow.NewID()
	t1, t2 := workflow.NewID(), workflow.NewID()
	return &workflow.Workflow{
		ID:            workflow.NewID(),
		ProjectID:     workflow.NewID(),
		Name:          "Intake " + workflow.NewID()[:8],
		Positions:     map[string]workflow.Position{j1: {X: 10, Y: 20.5}, t1: {X: -3, Y: 0}},
		Concurrency:   ptr(2),
		EnableJobLogs: true,
		Jobs: []workflow.Job{
			{ID: j1, Name: "Fetch data", Body: "fn(state => state) // héllo 😀", Adaptor: "@openfn/language-http@6.0.0",
				ProjectCredentialID: ptr(workflow.NewID())},
			{ID: j2, Name: "transform_2", Body: "", Adaptor: workflow.DefaultAdaptor},
			{ID: j3, Name: "notify-3", Body: "each('$.items[*]', post())", Adaptor: workflow.DefaultAdaptor,
				KeychainCredentialID: ptr(workflow.NewID())},
		},
		Triggers: []workflow.Trigger{
			{ID: t1, Type: workflow.TriggerWebhook, Enabled: true, WebhookReply: ptr(workflow.ReplyAfterCompletion)},
			{ID: t2, Type: workflow.TriggerCron, Enabled: false, CronExpression: ptr("*/15 9-17 * * mon-fri"),
				CronCursorJobID: ptr(j2)},
		},
		Edges: []workflow.Edge{
			{ID: workflow.NewID(), SourceTriggerID: ptr(t1), TargetJobID: j1, ConditionType: workflow.ConditionAlways, Enabled: true},
			{ID: workflow.NewID(), SourceTriggerID: ptr(t2), TargetJobID: j1, ConditionType: workflow.ConditionJSExpression,
				ConditionExpression: ptr("state.ok"), ConditionLabel: ptr("ok?"), Enabled: true},
			{ID: workflow.NewID(), SourceJobID: ptr(j1), TargetJobID: j2, ConditionType: workflow.ConditionOnSuccess, Enabled: true},
			{ID: workflow.NewID(), SourceJobID: ptr(j2), TargetJobID: j3, ConditionType: workflow.ConditionOnFailure, Enabled: false},
		},
	}
}

// mustEqual fails unless got and want have the same content (workflow.Equal).
func mustEqual(t *testing.T, got, want *workflow.Workflow) {
	t.Helper()
	if !workflow.Equal(got, want) {
		t.Fatalf("workflows differ:\n got  %+v\n want %+v", *got, *want)
	}
}
