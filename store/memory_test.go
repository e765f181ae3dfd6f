package store_test

import (
	"testing"

	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return store.NewMemory() })
}

func BenchmarkAppend(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) storetest.Store { return store.NewMemory() })
	})
	b.Run("postgres", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) storetest.Store { return openPostgres(b, store.Options{}) })
	})
}
