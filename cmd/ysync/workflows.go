package main

import (
	"log/slog"

	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/workflow"
)

// workflowsFor builds the workflow service on the store's connection pool. Workflows live in
// PostgreSQL tables: with the SQLite or in-memory store they are disabled (nil) and their routes
// answer 503.
func workflowsFor(st closableStore, log *slog.Logger) *server.Workflows {
	pg, ok := st.(*store.Postgres)
	if !ok {
		log.Warn("workflows disabled: they need PostgreSQL (--database-url); /api/workflows and /api/events answer 503")
		return nil
	}
	broker := pubsub.New(0)
	repo := workflow.NewRepo(pg.Pool())
	return &server.Workflows{
		Service: workflow.NewService(workflow.Config{Repo: repo, Broker: broker, Logger: log}),
		Repo:    repo,
		Broker:  broker,
	}
}
