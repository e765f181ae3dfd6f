// Package crdt is a Yjs-compatible CRDT core: the Yjs document model (struct store, items and the
// YATA integration algorithm, delete sets, garbage collection, pending updates), its shared types
// (Map, Array, Text, XML) and the V1/V2 binary update formats, written in Go from the Yjs format and
// algorithm. Names follow Yjs (ApplyUpdate, EncodeStateAsUpdate, EncodeStateVector, MergeUpdates,
// DiffUpdate) so the code can be checked against the reference implementation.
//
// A Doc is not safe for concurrent use: one goroutine owns it (the server's document actor). There
// is no global mutable state, so independent docs may live on different goroutines.
//
// Lengths and positions in the type API are counted in UTF-16 code units, as in JavaScript, so that
// an index sent by a browser means the same thing here.
package crdt
