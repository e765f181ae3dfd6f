// Package workflowapi is the workflow domain's HTTP and RPC adapter: the /api/workflows routes
// (create, get, replace, delete, snapshots, save, reset), the /api/events stream, the
// save_workflow / reset_workflow requests of the WebSocket application channel and the
// workflow_saved event, and the registry hook that builds workflow documents from the tables.
//
// It translates between HTTP or session.RPCCall and workflow.Service; the workflow rules
// themselves live in package workflow. The server constructs one API (New) from small
// interfaces over what it owns — authentication (Auth), the document registry (Docs), the
// store's cross-process save lock (Locker), counters (Metrics) — mounts its routes (Register),
// gives each session its RPC handler (WireSession; the API is a session.RPCHandler itself) and
// stops it on shutdown (Stop). This package never imports server.
//
// Files, one concern each:
//
//	api.go        configuration, the dependencies' interfaces, New, Register, Stop, the LoadState hook
//	reply.go      reply envelope, error types and their statuses, request bodies
//	crud.go       create, get, replace, delete, and the common start of the /{id} handlers
//	docops.go     save and reset over HTTP (with "after"), holding the document open
//	rpc.go        save and reset over the application channel, the workflow_saved event
//	saves.go      saves under the cluster-wide lock; workflow_saved for saves on other nodes
//	snapshots.go  the stored snapshots of a workflow
//	events.go     the Server-Sent Events stream of workflow events
//
// Goroutines: every handler runs on its request's goroutine (ServeRPC on the session's RPC
// goroutine); RemoteSaves runs on a goroutine the server starts and accounts for. Nothing here
// holds a lock across I/O; the API's only state is the channel Stop closes.
package workflowapi
