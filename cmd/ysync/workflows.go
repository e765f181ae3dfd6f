package main

import (
	"log/slog"

	"github.com/ysync/ysync/cluster"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/workflow"
)

// workflowsFor builds the workflow service on the store's connection pool. Workflows live in
// PostgreSQL tables: with the in-memory store they are disabled (nil) and their routes answer 503.
//
// In cluster mode (cl non-nil) the event broker is bridged through Redis, so that /api/events and
// editors on every node see every node's events; the returned function ends the bridge.
func workflowsFor(st closableStore, cl *cluster.Cluster, log *slog.Logger) (*server.Workflows, func(), error) {
	pg, ok := st.(*store.Postgres)
	if !ok {
		log.Warn("workflows disabled: they need PostgreSQL (--database-url); /api/workflows and /api/events answer 503")
		return nil, func() {}, nil
	}
	broker := pubsub.New(0)
	stop := func() {}
	if cl != nil {
		bridge, err := pubsub.Bridge(broker, cl.Client(), cl.Key("events"), cl.NodeID(), log)
		if err != nil {
			return nil, nil, err
		}
		stop = bridge.Close
	}
	repo := workflow.NewRepo(pg.Pool())
	return &server.Workflows{
		Service: workflow.NewService(workflow.Config{Repo: repo, Broker: broker, Logger: log}),
		Repo:    repo,
		Broker:  broker,
	}, stop, nil
}
