package limits

import (
	"sync"
	"testing"
)

func TestCounter(t *testing.T) {
	t.Parallel()
	type step struct {
		op   string // acquire, release
		key  string
		want bool
	}
	tests := []struct {
		name          string
		perKey, total int
		steps         []step
		wantCounts    map[string]int
		wantTotal     int
	}{
		{"per key", 2, 0, []step{
			{"acquire", "a", true}, {"acquire", "a", true}, {"acquire", "a", false},
			{"acquire", "b", true},
			{"release", "a", false}, {"acquire", "a", true}, {"acquire", "a", false},
		}, map[string]int{"a": 2, "b": 1}, 3},
		{"total", 0, 3, []step{
			{"acquire", "a", true}, {"acquire", "b", true}, {"acquire", "c", true}, {"acquire", "d", false},
			{"release", "b", false}, {"acquire", "d", true},
		}, map[string]int{"a": 1, "b": 0, "c": 1, "d": 1}, 3},
		{"both", 1, 2, []step{
			{"acquire", "a", true}, {"acquire", "a", false}, {"acquire", "b", true}, {"acquire", "c", false},
		}, map[string]int{"a": 1, "b": 1, "c": 0}, 2},
		{"unlimited", 0, 0, []step{
			{"acquire", "a", true}, {"acquire", "a", true}, {"acquire", "a", true},
		}, map[string]int{"a": 3}, 3},
		{"release without acquire does nothing", 1, 1, []step{
			{"release", "a", false}, {"release", "a", false},
			{"acquire", "a", true}, {"acquire", "b", false},
			{"release", "b", false}, // b holds nothing: the total must stay 1
			{"acquire", "b", false},
		}, map[string]int{"a": 1, "b": 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewCounter(tt.perKey, tt.total)
			for i, s := range tt.steps {
				switch s.op {
				case "acquire":
					if got := c.TryAcquire(s.key); got != s.want {
						t.Fatalf("step %d: TryAcquire(%q) = %v, want %v", i, s.key, got, s.want)
					}
				case "release":
					c.Release(s.key)
				}
			}
			for k, want := range tt.wantCounts {
				if got := c.Count(k); got != want {
					t.Errorf("Count(%q) = %d, want %d", k, got, want)
				}
			}
			if got := c.Total(); got != tt.wantTotal {
				t.Errorf("Total() = %d, want %d", got, tt.wantTotal)
			}
		})
	}
}

func TestCounterReleasedKeysAreForgotten(t *testing.T) {
	t.Parallel()
	c := NewCounter(0, 0)
	for i := range 100 {
		k := string(rune('a' + i%26))
		c.TryAcquire(k)
		c.Release(k)
	}
	if len(c.counts) != 0 || c.Total() != 0 {
		t.Fatalf("idle keys kept: %v, total %d", c.counts, c.Total())
	}
}

func TestCounterConcurrent(t *testing.T) {
	t.Parallel()
	const perKey, total, workers = 5, 12, 16
	c := NewCounter(perKey, total)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		held     = map[string]int{}
		heldAll  int
		violated bool
	)
	for w := range workers {
		wg.Go(func() {
			key := []string{"x", "y", "z"}[w%3]
			for range 2000 {
				if !c.TryAcquire(key) {
					continue
				}
				mu.Lock()
				held[key]++
				heldAll++
				if held[key] > perKey || heldAll > total {
					violated = true
				}
				held[key]--
				heldAll--
				mu.Unlock()
				c.Release(key)
			}
		})
	}
	wg.Wait()
	if violated {
		t.Fatal("a limit was exceeded")
	}
	if c.Total() != 0 {
		t.Fatalf("total %d after every release", c.Total())
	}
}

func TestCounterNil(t *testing.T) {
	t.Parallel()
	var c *Counter
	if !c.TryAcquire("a") || c.Count("a") != 0 || c.Total() != 0 {
		t.Fatal("nil counter should allow everything and count nothing")
	}
	c.Release("a")
}
