// Package session serves one WebSocket connection attached to one document.
//
// # Goroutines and who calls what
//
//   - The reader is the goroutine that calls Client.Run (the server starts one per connection
//     after the upgrade). It reads frames, decodes them (package crdt/syncproto) and hands them to
//     the document with shareddoc.Doc.Receive, which blocks while the document's command channel
//     is full: frames of one connection are applied in arrival order and a fast sender is slowed
//     down, never dropped. Malformed input closes the connection (1003/1007) without reaching the
//     document.
//   - The writer (Client.writeLoop) is the only goroutine writing data frames, and it runs only
//     while there is something to write: Send, a due ping or close starts it (under the queue
//     mutex, at most one at a time), each round drains the whole queue, and it ends when a round
//     finds nothing. An idle session has no writer goroutine, only its reader. The writer also
//     sends the pings and, at the end, the close frame; after that no writer starts again.
//     Over TCP, each round's frames go out in one writev with headers written by the session
//     (writev.go: why that is safe beside gorilla's control frames from the reader); over TLS,
//     one gorilla WriteMessage per frame.
//   - One keep-alive goroutine per clock and ping period (keepalive.go, 9/10 of the pong wait)
//     marks the sessions whose ping is due and starts their writers. It runs while a session is
//     registered; the last session to leave stops it and waits for it.
//   - The document's goroutine calls Send and Close (the shareddoc.Peer methods). Both only take
//     the queue mutex and never block: Send reports false when the queued bytes would pass the
//     budget and the document then closes the session as slow (4508, reconnect for a fresh sync).
//   - The document's goroutine also calls Pause and Resume (shareddoc.Pauser) while it holds the
//     session's updates for the storage backlog: the reader then waits at a gate before its next
//     read (backlog.go), woken by Resume, close or the context, so TCP pushes back on the client.
//     On a Hocuspocus socket the gate is the socket's: it stays shut while any document paused it.
//   - Anyone (shutdown, the admin API) may call Kick.
//   - The RPC goroutine (rpc.go), started at the connection's first message of type 5, serves
//     its JSON requests one at a time in arrival order through an RPCHandler and queues the
//     replies with Send. The reader hands it a request only after every earlier frame went to
//     the document, so a handler reading the document through the document's goroutine sees
//     the connection's earlier edits. Run waits for it after the writers ended.
//
// # Closing
//
// close(Disconnect) is the one way a session ends and is idempotent: it marks the session closed
// and starts the writer (or lets the running one see it), which flushes what is queued when the
// close-code row says so, writes the close frame, waits briefly for the peer's answer and closes
// the socket. The reader then fails its read, the session leaves the document, and Run returns
// once the writers are done. Close codes and their reconnect semantics live in one table
// (close.go).
//
// # Hocuspocus sockets
//
// HPSocket (hocuspocus.go) serves the Hocuspocus protocol: one socket, many documents, each an
// HPSession that is a peer (and shareddoc.Acker) of its document. Its reader authenticates, joins
// and dispatches in arrival order, holding a document's frames until its token was checked, and
// parks between frames as a Client's (park.go); one writer drains the socket's one byte-bounded
// queue; a wheel shared by the sockets (hocuspocus_wheel.go) sends keep-alives and WebSocket pings
// and handles token refresh and expiry; an RPC goroutine, started at the first stateless message,
// serves them in order (hocuspocus_rpc.go). Documents call HPSession.Send, Ack and Close, which
// only take the socket's queue mutex. A document closes alone (per-document Close message);
// whatever affects the whole socket closes it with a row of the close-code table.
package session
