package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
)

// hostileDial opens a raw WebSocket to the document, or returns nil when the upgrade is refused.
func hostileDial(base, doc string) *websocket.Conn {
	c, _ := hostileDialErr(base, doc)
	return c
}

func hostileDialErr(base, doc string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(base+"/"+doc, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: HTTP %d", err, resp.StatusCode)
		}
		return nil, err
	}
	return c, nil
}

// closeCode reads until the server closes and returns its close code (-1: no close frame).
func closeCode(c *websocket.Conn) int {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			return -1
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Random bytes, truncated and oversized frames, a flood above the rate limit and 2,000
// connect/disconnect cycles against documents honest y-websocket editors are using: the server
// stays up, closes only the hostile connections (with table codes), its memory and goroutines
// come back near the baseline, and the honest editors keep syncing and converge with every
// acknowledged edit.
func TestHostileClients(t *testing.T) {
	base, srv := startServer(t, server.Config{
		IdleTimeout: time.Minute,
		ReadLimit:   1 << 20,
		Limits: server.Limits{
			MessageRate:  500,
			MessageBurst: 1000,
			ByteRate:     1 << 20,
			MaxThrottle:  time.Second,
		},
	})
	doc := "hostile/doc"
	ed := startEditors(t, base, doc, 2, "")
	deadline := time.Now().Add(15 * time.Second)
	for ed.ackedCount() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("editors never got going\n%s", ed.stderrString())
		}
		time.Sleep(20 * time.Millisecond)
	}
	baseHeap := heapInUse()
	baseG := runtime.NumGoroutine()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))

	// Random bytes.
	for range 100 {
		c := hostileDial(base, doc)
		if c == nil {
			t.Fatal("upgrade refused")
		}
		frame := make([]byte, 1+rng.IntN(64))
		for i := range frame {
			frame[i] = byte(rng.UintN(256))
		}
		_ = c.WriteMessage(websocket.BinaryMessage, frame)
		_ = c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeQueryAwareness())
		_ = c.Close()
	}

	// Truncated frames: every prefix of a real update, each must close with 1007 (or pass
	// when the prefix happens to be a complete message).
	upd := syncproto.EncodeUpdate([]byte{1, 1, 200, 1, 0, 4, 1, 1, 't', 3, 'a', 'b', 'c', 0})
	codes := map[int]int{}
	for n := 1; n < len(upd); n++ {
		c := hostileDial(base, doc)
		_ = c.WriteMessage(websocket.BinaryMessage, upd[:n])
		codes[closeCode(c)]++
		_ = c.Close()
	}
	for code := range codes {
		if code != 1007 && code != 1003 {
			t.Errorf("truncated frames closed with %v", codes)
		}
	}

	// An oversized frame: 1009.
	c := hostileDial(base, doc)
	_ = c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(bytes.Repeat([]byte{1}, 2<<20)))
	if code := closeCode(c); code != 1009 && code != -1 {
		t.Errorf("oversized frame: close %d, want 1009", code)
	}
	_ = c.Close()

	// A flood far above the rate limit: 4429.
	// Big auth frames: they cost the server nothing, and each needs 100 ms of the byte rate,
	// so the limiter, not the server's own pace, is what holds the client back.
	c = hostileDial(base, doc)
	_ = c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
	flooded := make(chan int, 1)
	go func() { flooded <- closeCode(c) }()
	q := syncproto.EncodePermissionDenied(strings.Repeat("f", 100_000))
	for range 200 {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if c.WriteMessage(websocket.BinaryMessage, q) != nil {
			break
		}
	}
	// The close frame may be lost in the reset of a socket the client still writes to; the
	// server's counter says why it closed.
	if code := <-flooded; code != 4429 && code != -1 {
		t.Errorf("flood: close %d, want 4429", code)
	}
	_ = c.Close()
	if n := metricValue(t, base, "ysync_rate_limit_closes_total"); n != 1 {
		t.Errorf("rate limit closes %d, want 1", n)
	}

	// 2,000 connect/disconnect cycles, some starting a sync, some vanishing at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused, other := 0, 0
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 125 {
				c, err := hostileDialErr(base, doc)
				if c == nil {
					mu.Lock()
					if strings.Contains(err.Error(), "HTTP 503") || strings.Contains(err.Error(), "HTTP 429") {
						refused++ // the per-document or per-IP connection limit: sessions pile up faster than they end
					} else {
						other++
						if other == 1 {
							t.Errorf("dial: %v", err)
						}
					}
					mu.Unlock()
					continue
				}
				if (w+i)%2 == 0 {
					_ = c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
				}
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	t.Logf("connect/disconnect cycles: %d of 2000 refused with 503/429 (connection limits), %d failed otherwise", refused, other)

	// The honest editors kept going and converge with everything acknowledged.
	before := ed.ackedCount()
	deadline = time.Now().Add(15 * time.Second)
	for ed.ackedCount() < before+20 {
		if time.Now().After(deadline) {
			t.Fatalf("honest editors stalled after the attacks\n%s", ed.stderrString())
		}
		time.Sleep(20 * time.Millisecond)
	}
	items := ed.stop(t)
	checkAll(t, "honest editors", ed.ackedLabels(), items)

	// Resources come back: only the editors' sessions were left, and they are gone now.
	deadline = time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > baseG+5 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines %d, baseline %d\n%s", runtime.NumGoroutine(), baseG, firstLines(string(buf), 80))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if heap := heapInUse(); heap > baseHeap+32<<20 {
		t.Errorf("heap in use %d MiB after the attacks, baseline %d MiB", heap>>20, baseHeap>>20)
	} else {
		t.Logf("heap in use %d KiB (baseline %d KiB); goroutines %d (baseline %d); %d items", heap>>10, baseHeap>>10, runtime.NumGoroutine(), baseG, len(items))
	}
	if len(srv.Registry().List()) != 1 {
		t.Errorf("documents loaded: %v", srv.Registry().List())
	}
}

// metricValue reads one unlabelled metric of the server behind a ws base URL.
func metricValue(t *testing.T, wsBase, name string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + strings.TrimSuffix(strings.TrimPrefix(wsBase, "ws://"), "/ws") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64) // client_golang writes large counts as 1.5e+06
			return int64(f)
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
