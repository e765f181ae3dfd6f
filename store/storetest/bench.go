package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// Bench runs the append benchmarks: one goroutine appending to one document (latency bound: no
// batching possible), many goroutines appending to one document, and many goroutines appending
// to a document each (where group commit pays). ns/op is wall time per update, so 1e9/(ns/op)
// is throughput; updates/flush shows how well appends were batched. newStore must return a new,
// empty store.
func Bench(b *testing.B, newStore func(b *testing.B) Store) {
	update := make([]byte, 128) // a typical small Yjs update (a few keystrokes)
	for i := range update {
		update[i] = byte(i)
	}
	run := func(b *testing.B, parallel bool, docs bool) {
		s := newStore(b)
		defer s.Close()
		ctx := context.Background()
		before := s.Stats()
		b.SetBytes(int64(len(update)))
		b.ResetTimer()
		if !parallel {
			for b.Loop() {
				if _, err := s.Append(ctx, "bench", update); err != nil {
					b.Fatal(err)
				}
			}
		} else {
			b.SetParallelism(16) // 16 × GOMAXPROCS goroutines: many clients, few cores
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				name := "bench"
				if docs {
					name = fmt.Sprintf("bench-%d", next.Add(1))
				}
				for pb.Next() {
					if _, err := s.Append(ctx, name, update); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		b.StopTimer()
		st := s.Stats()
		if n := st.Flushes - before.Flushes; n > 0 {
			b.ReportMetric(float64(st.Appends-before.Appends)/float64(n), "updates/flush")
		}
	}
	b.Run("one-doc", func(b *testing.B) { run(b, false, false) })
	b.Run("one-doc-parallel", func(b *testing.B) { run(b, true, false) })
	b.Run("many-docs-parallel", func(b *testing.B) { run(b, true, true) })
}
