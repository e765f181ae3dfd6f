package limits

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestBucket(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	type step struct {
		op       string // take, allow, delay
		at       time.Duration
		n        float64
		wantWait time.Duration // take, delay
		wantOK   bool          // allow
	}
	tests := []struct {
		name        string
		rate, burst float64
		steps       []step
	}{
		{"burst then paced", 10, 3, []step{
			{op: "take", n: 1}, {op: "take", n: 1}, {op: "take", n: 1},
			{op: "take", n: 1, wantWait: 100 * ms}, // into debt: one token at 10/s
			{op: "take", n: 1, wantWait: 200 * ms}, // debt accumulates
			{op: "delay", at: 200 * ms, n: 1, wantWait: 100 * ms},
			{op: "delay", at: 300 * ms, n: 1},
		}},
		{"refill caps at burst", 10, 3, []step{
			{op: "take", n: 3},
			{op: "delay", at: time.Hour, n: 3},
			{op: "delay", at: time.Hour, n: 4, wantWait: 100 * ms},
		}},
		{"larger than burst is slowed, not refused", 100, 10, []step{
			{op: "take", n: 110, wantWait: time.Second},
			{op: "delay", at: time.Second, n: 0.5, wantWait: 5 * ms},
			{op: "delay", at: time.Second + 5*ms, n: 0.5},
		}},
		{"allow takes only when available", 1, 2, []step{
			{op: "allow", n: 2, wantOK: true},
			{op: "allow", n: 1, wantOK: false},
			{op: "allow", at: 500 * ms, n: 1, wantOK: false},
			{op: "allow", at: time.Second, n: 1, wantOK: true},
			{op: "delay", at: time.Second, n: 1, wantWait: time.Second},
		}},
		{"zero rate is unlimited", 0, 0, []step{
			{op: "take", n: 1e12}, {op: "allow", n: 1e12, wantOK: true}, {op: "delay", n: 1e12},
		}},
		{"negative rate is unlimited", -5, 1, []step{{op: "take", n: 1e12}}},
		{"NaN rate is unlimited", math.NaN(), 1, []step{{op: "take", n: 1e12}}},
		{"infinite rate is unlimited", math.Inf(1), 1, []step{{op: "take", n: 1e12}}},
		{"zero burst paces every token", 4, 0, []step{
			{op: "take", n: 1, wantWait: 250 * ms},
			{op: "take", at: 250 * ms, n: 1, wantWait: 250 * ms},
			{op: "take", at: time.Hour, n: 1, wantWait: 250 * ms},
		}},
		{"zero and negative n are free", 1, 1, []step{
			{op: "take", n: 1}, {op: "take", n: 0}, {op: "take", n: -3}, {op: "take", n: math.NaN()},
			{op: "allow", n: 0, wantOK: true},
			{op: "delay", n: 1, wantWait: time.Second},
		}},
		{"clock going back refills nothing", 1, 1, []step{
			{op: "take", at: 10 * time.Second, n: 1},
			{op: "delay", at: 5 * time.Second, n: 1, wantWait: time.Second},
			{op: "delay", at: 11 * time.Second, n: 1},
		}},
		{"huge wait saturates", 1e-12, 0, []step{
			{op: "take", n: 1e12, wantWait: time.Duration(math.MaxInt64)},
		}},
		{"wait rounds up", 3, 0, []step{
			{op: "delay", n: 1, wantWait: 333333334 * time.Nanosecond},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBucket(tt.rate, tt.burst, t0)
			for i, s := range tt.steps {
				switch s.op {
				case "take":
					if got := b.Take(s.n, at(s.at)); got != s.wantWait {
						t.Fatalf("step %d: Take(%v) at %v = %v, want %v", i, s.n, s.at, got, s.wantWait)
					}
				case "delay":
					if got := b.Delay(s.n, at(s.at)); got != s.wantWait {
						t.Fatalf("step %d: Delay(%v) at %v = %v, want %v", i, s.n, s.at, got, s.wantWait)
					}
				case "allow":
					if got := b.Allow(s.n, at(s.at)); got != s.wantOK {
						t.Fatalf("step %d: Allow(%v) at %v = %v, want %v", i, s.n, s.at, got, s.wantOK)
					}
				}
			}
		})
	}
}

// A caller that waits what Take says never goes faster than the rate, over any stretch.
func TestBucketWaitingKeepsTheRate(t *testing.T) {
	t.Parallel()
	const rate, burst = 50.0, 10.0
	b := NewBucket(rate, burst, t0)
	now := t0
	sizes := []float64{1, 3, 0.5, 7, 2, 25, 1, 1, 4}
	var taken float64
	for i := range 1000 {
		n := sizes[i%len(sizes)]
		now = now.Add(b.Take(n, now))
		taken += n
	}
	elapsed := now.Sub(t0).Seconds()
	if max := burst + rate*elapsed + 25; taken > max {
		t.Fatalf("took %v tokens in %vs, over burst+rate*t = %v", taken, elapsed, max)
	}
	if taken < rate*elapsed {
		t.Fatalf("took %v tokens in %vs: the bucket made the caller wait too long", taken, elapsed)
	}
	if got := b.Tokens(now); got < -1e-6 || got > 1e-6 {
		t.Fatalf("after waiting the last Take the bucket holds %v, want 0", got)
	}
}
