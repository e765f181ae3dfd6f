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
//
// Updates come from clients that may be hostile, so two rules hold everywhere:
//
//   - Nothing recurses over nested types. Delete, GC, ToJSON and the XML toString walk with a stack
//     on the heap (walk.go), so a document of millions of types each nested in the previous one is
//     served like any other; Any values and JSON stop at encoding.MaxNestingDepth.
//   - Decoding allocates in proportion to the bytes received, never to the counts they declare:
//     lists and maps grow as elements are read, and the structs of an update may take at most
//     maxStructBytesPerByte (128) bytes of heap per input byte plus 1 MiB (structBudget). No V1
//     update can reach that; a V2 update whose run-length columns repeat structs beyond it is
//     refused with ErrMalformedUpdate. The fuzz targets check these bounds per input byte.
package crdt
