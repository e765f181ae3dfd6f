package limits

import "time"

// ConnLimiter paces the frames one connection sends: a message rate and a byte rate, each a
// token bucket. The connection's reader calls Admit for every frame before handling it, waits
// what Admit says, and closes the connection when Admit says no.
//
// Waiting in the reader is backpressure, not loss: the client's frames stay in the socket until
// the reader catches up, and TCP slows the client down. A client that keeps sending faster than
// the rate for longer than maxWait is flooding, and is cut off (see Admit).
//
// A ConnLimiter belongs to one goroutine. A nil *ConnLimiter admits everything.
type ConnLimiter struct {
	msgs, bytes *Bucket
	maxWait     time.Duration
	// throttledSince is when the current run of frames that each had to wait began; zero when
	// the last frame went through at once.
	throttledSince time.Time
}

// NewConnLimiter returns a limiter allowing msgsPerSec frames and bytesPerSec bytes per second.
// Zero (or negative) rates mean unlimited. A zero burst means one second's worth of its rate.
// maxWait bounds how long a connection may be held back continuously before Admit refuses it;
// zero means never refuse, only slow down.
func NewConnLimiter(msgsPerSec, bytesPerSec float64, burstMsgs, burstBytes float64, maxWait time.Duration, now time.Time) *ConnLimiter {
	if burstMsgs == 0 {
		burstMsgs = msgsPerSec
	}
	if burstBytes == 0 {
		burstBytes = bytesPerSec
	}
	return &ConnLimiter{
		msgs:    NewBucket(msgsPerSec, burstMsgs, now),
		bytes:   NewBucket(bytesPerSec, burstBytes, now),
		maxWait: max(maxWait, 0),
	}
}

// Admit accounts for one frame of frameBytes bytes arriving at now. It returns how long the
// caller must wait before handling the frame (0: at once), and ok=false when the connection
// should be closed instead: when it has been held back without a break since some moment, and
// handling this frame would end more than maxWait after that moment. That covers one frame too
// large to pass within maxWait, and a client sending faster than the rate for longer than
// maxWait. A refused frame takes no tokens.
func (c *ConnLimiter) Admit(frameBytes int, now time.Time) (wait time.Duration, ok bool) {
	if c == nil {
		return 0, true
	}
	n := float64(max(frameBytes, 0))
	wait = max(c.msgs.Delay(1, now), c.bytes.Delay(n, now))
	if wait == 0 {
		c.throttledSince = time.Time{}
	} else {
		start := c.throttledSince
		if start.IsZero() {
			start = now
		}
		if c.maxWait > 0 && now.Sub(start)+wait > c.maxWait {
			return wait, false
		}
		c.throttledSince = start
	}
	c.msgs.Take(1, now)
	c.bytes.Take(n, now)
	return wait, true
}
