package store_test

import (
	"testing"

	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/store/storetest"
)

func TestMemoryVersions(t *testing.T) {
	storetest.RunVersions(t, func(t *testing.T) storetest.VersionStore { return store.NewMemory() })
}

func TestPostgresVersions(t *testing.T) {
	t.Parallel()
	storetest.RunVersions(t, func(t *testing.T) storetest.VersionStore { return openPostgres(t, store.Options{}) })
}

func TestMemoryOutbox(t *testing.T) {
	storetest.RunOutbox(t, func(t *testing.T) storetest.OutboxStore { return store.NewMemory() })
}

func TestPostgresOutbox(t *testing.T) {
	t.Parallel()
	storetest.RunOutbox(t, func(t *testing.T) storetest.OutboxStore { return openPostgres(t, store.Options{}) })
}
