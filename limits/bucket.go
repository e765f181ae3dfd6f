package limits

import (
	"math"
	"time"
)

// Bucket is a token bucket: it holds up to burst tokens and refills at rate tokens per second.
// Taking more than it holds is a reservation: the bucket goes into debt and Take says how long
// the caller must wait for the debt to be paid, so a caller that waits before acting never
// exceeds the rate, and a single request larger than the burst is slowed rather than refused.
//
// A Bucket belongs to one goroutine. Time only moves forward for it: a now earlier than one
// already seen refills nothing.
type Bucket struct {
	rate   float64 // tokens per second; unlimited when not > 0
	burst  float64
	tokens float64 // negative while in debt
	last   time.Time
}

// NewBucket returns a full bucket. A rate that is zero, negative, NaN or +Inf means unlimited:
// every Take is free. A negative burst counts as zero (every token must be waited for).
func NewBucket(rate, burst float64, now time.Time) *Bucket {
	if !(rate > 0) || math.IsInf(rate, 1) {
		rate = 0
	}
	if !(burst > 0) {
		burst = 0
	}
	return &Bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

// Unlimited reports whether the bucket never makes anyone wait.
func (b *Bucket) Unlimited() bool { return b.rate == 0 }

// refill credits the tokens earned since the last call.
func (b *Bucket) refill(now time.Time) {
	if !now.After(b.last) {
		return
	}
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

// Tokens returns the tokens available at now (negative while in debt).
func (b *Bucket) Tokens(now time.Time) float64 {
	if b.Unlimited() {
		return math.Inf(1)
	}
	b.refill(now)
	return b.tokens
}

// Delay returns how long from now until n tokens are available, without taking them: 0 when
// they are available now.
func (b *Bucket) Delay(n float64, now time.Time) time.Duration {
	if b.Unlimited() || !(n > 0) {
		return 0
	}
	b.refill(now)
	return b.delay(n)
}

func (b *Bucket) delay(n float64) time.Duration {
	deficit := n - b.tokens
	if deficit <= 0 {
		return 0
	}
	secs := deficit / b.rate
	if secs >= math.MaxInt64/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}

// Take takes n tokens and returns how long the caller must wait before acting on them: 0 when
// they were available now. The tokens are taken either way (the bucket goes into debt), so the
// caller waits and then goes ahead, without calling Take again.
func (b *Bucket) Take(n float64, now time.Time) (wait time.Duration) {
	if b.Unlimited() || !(n > 0) {
		return 0
	}
	b.refill(now)
	wait = b.delay(n)
	b.tokens -= n
	return wait
}

// Allow takes n tokens if they are available now and reports whether it did; otherwise it
// changes nothing.
func (b *Bucket) Allow(n float64, now time.Time) bool {
	if b.Delay(n, now) > 0 {
		return false
	}
	if !b.Unlimited() && n > 0 {
		b.tokens -= n
	}
	return true
}
