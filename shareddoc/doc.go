// Package shareddoc runs the live documents: one goroutine per document owns its crdt.Doc, its
// awareness states and the set of sessions (peers) attached to it, and a Registry finds, creates
// and unloads documents by name.
//
// # Goroutines and who calls what
//
//   - Session goroutines (a connection's reader) call Registry.JoinOrCreate, Doc.Receive,
//     Doc.Leave / Registry.Leave. Receive blocks while the document's command channel is full:
//     that is the inbound backpressure, and it keeps one session's frames in order. Hooks.OnJoin
//     and Hooks.OnLeave run on these goroutines.
//   - The document goroutine (Doc.run) is the only one that touches the crdt.Doc, the awareness
//     and the peers. It calls Peer.Send and Peer.Close, which must never block. It never waits on
//     storage while it serves sessions: updates go to a storage goroutine (one Append in flight
//     per document, so the log keeps apply order) whose result comes back on a channel.
//     Exceptions, when nobody is being served: Store.Load and Hooks.LoadState before the first
//     command, Store.Compact and Hooks.StoreState in the final flush.
//   - HTTP handlers call Registry.Get/List/Count and Doc.Info; server-side code calls Doc.Update
//     and Doc.Broadcast (frames that are not document updates, e.g. server events).
//   - Server-side edits (edit.go) come from any goroutine: Doc.Edit and Doc.ApplyUpdate run on the
//     document's goroutine like a session's update (broadcast at once, queued for the store) and
//     wait, on the caller's goroutine, until the store has what they changed. Registry.Hold keeps
//     a document loaded without a session (no Hooks.OnJoin); Registry.Edit is Hold + Edit.
//     Registry.Delete closes the sessions with CloseDeleted and runs its delete function in the
//     final flush instead of the checkpoint, before the name can be loaded again.
//   - Hooks.OnStored (after a batch is stored) and Hooks.OnUnload (as the goroutine ends) run on
//     the document's goroutine and must not block (webhooks only queue).
//   - Registry.Shutdown runs on the server's shutdown goroutine.
//
// # Life of a document
//
// JoinOrCreate creates the document (or finds it) under the registry mutex and counts the join
// as "on its way" before releasing the mutex. The new goroutine first waits for a predecessor of
// the same name that is still doing its final flush, then loads the stored updates, then serves
// commands in order, so the first sync reply always sees the stored state. When the last session
// leaves, the document starts its idle countdown on the registry's one idle wheel (wheel.go; with
// IdleTimeout zero it tries at once). Unloading waits until nothing is pending storage, and
// then, under the registry mutex, gives up if a join is on its way; otherwise it leaves the map,
// checkpoints (Store.Compact with the whole state) and ends. A join racing an unload therefore
// either lands on the live document or creates a fresh one that loads after the checkpoint.
//
// The actor keeps where it is in one typed state, changed only by setState (lifecycle.go):
// loading (waiting for the predecessor, loading), live (serving), unloading (idle, waiting for
// the store before the final flush; a join or hold makes it live again), draining (shutdown or
// delete: sessions closed, joins refused, pending updates stored or dropped) and closed (final
// flush; the loop ends).
//
// Files: document.go has the Doc type, its public methods and the run loop; sync.go the
// sessions' commands (join, sync messages, updates) and fan-out (sendTo, ack, broadcast, kick);
// persist.go the store batches, retries and compaction; budget.go and backlog.go the pending
// budget and the peers held for it; lifecycle.go the states, load, idle
// unload, stop and the final flush.
//
// With Config.MaxLoadedDocs set, creating a document over the cap evicts the least recently used
// idle one — it unloads as above, storing and checkpointing first — and when none is idle the
// join fails with ErrTooManyDocuments (evict.go).
//
// # Sync
//
// On a session's SyncStep1 the document answers SyncStep2 (what the session lacks), then its own
// SyncStep1, then all awareness states. A session's SyncStep2 or Update is applied with the
// session as origin, broadcast at once to every other session, queued for storage, and echoed to
// the sender once stored. An update or awareness message that does not apply closes that session
// only (CloseBadUpdate); the document is unchanged. An update whose integration panics — from a
// session, a server-side edit or another node (Doc.apply in sync.go) — may have changed part of
// the crdt.Doc, so the document stops serving that state (failCorrupt in lifecycle.go): nothing of it is broadcast or stored, every session closes with CloseInternal
// (they reconnect), updates applied in full before are still stored, the in-memory state is never
// checkpointed, and the next join loads the document afresh from the store. Awareness changes go to every session,
// including the sender; the states a session introduced are removed, and the removal broadcast,
// when it leaves; states silent for awareness.OutdatedTimeout are dropped, and removed client ids
// forgotten after the same time, by a timer on the injected Clock that runs only while the
// document remembers any client (awareness.go).
//
// While the store is behind, a peer's update that would pass the pending-bytes budget
// (budget.go) is held, not applied, with every later message of that peer behind it in arrival
// order, and the peer is asked to stop reading (Pauser). A store result, or a recheck on the
// injected Clock for the process-wide budget, replays the held messages through the normal path
// once there is room; a peer held past Config.MaxBacklogWait, or holding more than 16 MiB, is
// closed with CloseBacklog and its held messages dropped (backlog.go). Other peers go on.
//
// Awareness is bounded (awareness.go): a session may introduce at most
// Config.MaxAwarenessClientsPerConn client ids, states are at most Config.MaxAwarenessStateBytes,
// and a client id belongs to the session that introduced it — another session's entries for it
// are refused unless it is the same user (SessionInfo.Subject) reconnecting, which takes it over.
// Refused entries are skipped and the sender gets a permission-denied message; it stays open.
// All-states answers (after SyncStep1, and to query-awareness) share one frame per change.
// Likewise the SyncStep2 for an empty or up-to-date state vector and the SyncStep1 carrying the
// document's state vector are encoded once per change and shared by every joiner's queue
// (joincache.go); peers never modify a frame they were sent.
//
// # Several processes on one log
//
// Other processes may append to a document's log (cluster mode; two servers on one database).
// Each document tracks its contiguous prefix of the log (prefix.go) and checkpoints at most up to
// it. Updates other nodes announce arrive through Config.Relay: its goroutines call the Doc's
// Subscriber methods (RemoteUpdate, RemoteAwareness, RemoteAwarenessQuery), which queue a command
// without blocking and drop it when the queue is full. A gap is read from the log by a fill
// goroutine (one in flight per document) whose result comes back on a channel; the registry's
// position-check goroutine (Config.PositionCheckInterval, or CheckPositions on demand) reads the
// log's last seqs and tells documents that are behind, also without blocking. Awareness of this
// node's sessions goes to the relay from the actor; Registry.NodeGone, called by the cluster layer
// when another node's heartbeat expired, removes the states that node's sessions introduced.
package shareddoc
