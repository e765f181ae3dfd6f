package limits

import (
	"testing"
	"time"
)

func TestConnLimiter(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	type frame struct {
		at       time.Duration
		bytes    int
		wantWait time.Duration
		wantOK   bool
	}
	tests := []struct {
		name                      string
		msgRate, byteRate, bm, bb float64
		maxWait                   time.Duration
		frames                    []frame
	}{
		{"unlimited", 0, 0, 0, 0, time.Second, []frame{
			{bytes: 1 << 30, wantOK: true}, {bytes: 1 << 30, wantOK: true},
		}},
		{"message burst then paced", 10, 0, 2, 0, time.Second, []frame{
			{bytes: 1, wantOK: true},
			{bytes: 1, wantOK: true},
			{bytes: 1, wantWait: 100 * ms, wantOK: true},
			{at: 100 * ms, bytes: 1, wantWait: 100 * ms, wantOK: true}, // waited, sent again at once
			{at: 500 * ms, bytes: 1, wantOK: true},                     // a pause ends the run
		}},
		{"byte rate governs big frames", 1000, 1000, 0, 0, 5 * time.Second, []frame{
			{bytes: 3000, wantWait: 2 * time.Second, wantOK: true},
			{at: 2 * time.Second, bytes: 1000, wantWait: time.Second, wantOK: true},
		}},
		{"one frame needing more than maxWait is refused", 0, 1000, 0, 1000, 5 * time.Second, []frame{
			{bytes: 7000, wantWait: 6 * time.Second, wantOK: false},
			{bytes: 1000, wantOK: true}, // the refused frame took nothing
		}},
		{"sustained flooding is cut off", 10, 0, 1, 0, 350 * ms, []frame{
			{bytes: 1, wantOK: true},
			{bytes: 1, wantWait: 100 * ms, wantOK: true},                // the run starts at 0
			{at: 100 * ms, bytes: 1, wantWait: 100 * ms, wantOK: true},  // ends at 200ms
			{at: 200 * ms, bytes: 1, wantWait: 100 * ms, wantOK: true},  // ends at 300ms
			{at: 300 * ms, bytes: 1, wantWait: 100 * ms, wantOK: false}, // would end at 400ms > 350ms
		}},
		{"zero maxWait only slows", 10, 0, 1, 0, 0, []frame{
			{bytes: 1, wantOK: true},
			{bytes: 1, wantWait: 100 * ms, wantOK: true},
			{bytes: 1, wantWait: 200 * ms, wantOK: true},
			{bytes: 1, wantWait: 300 * ms, wantOK: true},
		}},
		{"zero burst is one second's worth", 2, 0, 0, 0, 0, []frame{
			{bytes: 1, wantOK: true}, {bytes: 1, wantOK: true},
			{bytes: 1, wantWait: 500 * ms, wantOK: true},
		}},
		{"the longer of the two waits", 10, 100, 1, 100, 0, []frame{
			{bytes: 100, wantOK: true},
			{bytes: 50, wantWait: 500 * ms, wantOK: true}, // messages want 100ms, bytes 500ms
		}},
		{"negative size counts as empty", 0, 10, 0, 1, 0, []frame{
			{bytes: -100, wantOK: true}, {bytes: 1, wantOK: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConnLimiter(tt.msgRate, tt.byteRate, tt.bm, tt.bb, tt.maxWait, t0)
			for i, f := range tt.frames {
				wait, ok := c.Admit(f.bytes, at(f.at))
				if wait != f.wantWait || ok != f.wantOK {
					t.Fatalf("frame %d (%d bytes at %v): Admit = %v, %v; want %v, %v", i, f.bytes, f.at, wait, ok, f.wantWait, f.wantOK)
				}
			}
		})
	}
}

// The proposed defaults let an eager but honest client through and cut off a flood.
func TestConnLimiterDefaults(t *testing.T) {
	t.Parallel()
	newDefault := func() *ConnLimiter { return NewConnLimiter(200, 8<<20, 400, 16<<20, 5*time.Second, t0) }

	// Honest: 60 small updates per second for a minute, plus a 16 MiB initial sync.
	c := newDefault()
	if wait, ok := c.Admit(16<<20, t0); !ok || wait != 0 {
		t.Fatalf("initial 16 MiB sync: %v, %v", wait, ok)
	}
	for i := range 60 * 60 {
		now := t0.Add(time.Second + time.Duration(i)*time.Second/60)
		if wait, ok := c.Admit(200, now); !ok || wait != 0 {
			t.Fatalf("update %d: %v, %v", i, wait, ok)
		}
	}

	// Flood: a client that waits as told but never pauses is cut off once it has been held back
	// for the max wait.
	c = newDefault()
	now := t0
	for i := 0; ; i++ {
		wait, ok := c.Admit(10, now)
		if !ok {
			if held := now.Sub(t0); held < 5*time.Second || held > 8*time.Second {
				t.Fatalf("flood cut off after %v (frame %d), want a little over the 2s burst + 5s", held, i)
			}
			break
		}
		now = now.Add(wait)
		if i > 100000 {
			t.Fatal("flood never cut off")
		}
	}
}

func TestConnLimiterNil(t *testing.T) {
	t.Parallel()
	var c *ConnLimiter
	if wait, ok := c.Admit(1<<30, t0); wait != 0 || !ok {
		t.Fatalf("nil limiter: %v, %v", wait, ok)
	}
}
