package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/store"
)

// OutboxStore is the method set RunOutbox exercises.
type OutboxStore interface {
	Close() error
	EnqueueDeliveries(ctx context.Context, ds []store.Delivery) error
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error)
	FinishDelivery(ctx context.Context, id int64, state string, status int, errMsg string, nextAt time.Time) error
	ListDeliveries(ctx context.Context, state string, limit int) ([]store.Delivery, error)
}

// RunOutbox runs the contract tests of the webhook outbox. newStore must return a new, empty
// store each call.
func RunOutbox(t *testing.T, newStore func(t *testing.T) OutboxStore) {
	open := func(t *testing.T) OutboxStore {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s OutboxStore)
	}{
		{"ClaimLeaseFinish", testOutboxClaimLeaseFinish},
		{"ConcurrentClaimsShare", testOutboxConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func testOutboxClaimLeaseFinish(t *testing.T, s OutboxStore) {
	c := ctx(t)
	now := time.Now()
	if ds, err := s.ClaimDeliveries(c, now, time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("claim from an empty outbox: %v, %v", ds, err)
	}
	err := s.EnqueueDeliveries(c, []store.Delivery{
		{EventID: "e1", Type: "document.changed", Doc: "d", URL: "http://a", Body: []byte(`{"n":1}`)},
		{EventID: "e1", Type: "document.changed", Doc: "d", URL: "http://b", Body: []byte(`{"n":1}`)},
		{EventID: "e2", Type: "later", URL: "http://a", Body: []byte(`{}`), NextAt: now.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDeliveries(c, now.Add(time.Second), time.Minute, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim: %+v, %v; want the two due deliveries", got, err)
	}
	for _, d := range got {
		if d.EventID != "e1" || d.Attempts != 1 || d.State != store.DeliveryPending || !bytes.Equal(d.Body, []byte(`{"n":1}`)) || d.Doc != "d" {
			t.Fatalf("claimed %+v", d)
		}
	}
	// Leased: not claimed again until the lease runs out.
	if again, _ := s.ClaimDeliveries(c, now.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed again within the lease: %+v", again)
	}
	if again, _ := s.ClaimDeliveries(c, now.Add(2*time.Minute), time.Minute, 10); len(again) != 2 || again[0].Attempts != 2 {
		t.Fatalf("after the lease: %+v; want both again, attempt 2", again)
	}
	if err := s.FinishDelivery(c, got[0].ID, store.DeliveryDelivered, 200, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(c, got[1].ID, store.DeliveryPending, 500, "HTTP 500", now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ClaimDeliveries(c, now.Add(5*time.Minute), time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed before its retry time: %+v", again)
	}
	retry, _ := s.ClaimDeliveries(c, now.Add(11*time.Minute), time.Minute, 10)
	if len(retry) != 1 || retry[0].ID != got[1].ID || retry[0].LastStatus != 500 || retry[0].LastError != "HTTP 500" {
		t.Fatalf("retry claim: %+v", retry)
	}
	if err := s.FinishDelivery(c, retry[0].ID, store.DeliveryFailed, 0, "gave up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListDeliveries(c, "", 0)
	if err != nil || len(all) != 3 || all[0].EventID != "e2" {
		t.Fatalf("list: %+v, %v", all, err)
	}
	delivered, _ := s.ListDeliveries(c, store.DeliveryDelivered, 0)
	if len(delivered) != 1 || delivered[0].DeliveredAt.IsZero() || delivered[0].LastStatus != 200 {
		t.Fatalf("delivered: %+v", delivered)
	}
	if failed, _ := s.ListDeliveries(c, store.DeliveryFailed, 0); len(failed) != 1 {
		t.Fatalf("failed: %+v", failed)
	}
	if pending, _ := s.ListDeliveries(c, store.DeliveryPending, 0); len(pending) != 1 || !pending[0].DeliveredAt.IsZero() {
		t.Fatalf("pending: %+v", pending)
	}
	if err := s.FinishDelivery(c, 999999, store.DeliveryDelivered, 200, "", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finish unknown: %v", err)
	}
}

// Claims running at the same time never hand out the same delivery.
func testOutboxConcurrentClaims(t *testing.T, s OutboxStore) {
	c := ctx(t)
	var ds []store.Delivery
	for i := range 200 {
		ds = append(ds, store.Delivery{EventID: fmt.Sprint(i), Type: "x", URL: "http://a", Body: []byte("{}")})
	}
	if err := s.EnqueueDeliveries(c, ds); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	now := time.Now().Add(time.Second)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimDeliveries(c, now, time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("claimed %d distinct deliveries, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %d claimed %d times", id, n)
		}
	}
}
