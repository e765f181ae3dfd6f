package limits

import "sync"

// Counter counts holders per key (connections per document, per user) and in total (per
// process), refusing an acquisition that would go over either limit. It is safe for concurrent
// use. A nil *Counter allows everything.
type Counter struct {
	perKey, total int // zero or negative: unlimited

	mu     sync.Mutex
	counts map[string]int // only keys with holders: idle keys cost nothing
	n      int
}

// NewCounter returns a counter allowing perKey holders of any one key and total holders in all.
// Zero means unlimited.
func NewCounter(perKey, total int) *Counter {
	return &Counter{perKey: perKey, total: total, counts: map[string]int{}}
}

// TryAcquire counts one more holder of key and reports true, or reports false and changes nothing
// when that would exceed a limit. Every true must be matched by one Release(key).
func (c *Counter) TryAcquire(key string) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total > 0 && c.n >= c.total {
		return false
	}
	if c.perKey > 0 && c.counts[key] >= c.perKey {
		return false
	}
	c.counts[key]++
	c.n++
	return true
}

// Release gives back one holder of key. Releasing a key with no holders does nothing: counts
// never go negative, whatever a caller's bookkeeping does.
func (c *Counter) Release(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.counts[key]
	if !ok {
		return
	}
	if k <= 1 {
		delete(c.counts, key)
	} else {
		c.counts[key] = k - 1
	}
	c.n--
}

// Count returns the holders of key.
func (c *Counter) Count(key string) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

// Total returns the holders of all keys.
func (c *Counter) Total() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
