package limits

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// dialFrom connects to ln from the loopback address local (all of 127/8 is routed to lo).
func dialFrom(t *testing.T, ln net.Listener, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func accept(t *testing.T, l *Listener) *Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn)
}

func TestListenerPerIPAndTotal(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, ListenerConfig{MaxConns: 3, MaxConnsPerIP: 2})
	defer l.Close()

	// Two from .1 pass, the third is refused per IP; one from .2 passes.
	dialFrom(t, l, "127.0.0.1")
	a1 := accept(t, l)
	dialFrom(t, l, "127.0.0.1")
	a2 := accept(t, l)
	dialFrom(t, l, "127.0.0.1")
	a3 := accept(t, l)
	dialFrom(t, l, "127.0.0.2")
	b1 := accept(t, l)
	for i, c := range []*Conn{a1, a2, b1} {
		if c.Refused() != NotRefused {
			t.Errorf("conn %d refused (%v)", i, c.Refused())
		}
	}
	if a3.Refused() != RefusedPerIP || a3.IP() != "127.0.0.1" {
		t.Errorf("third conn of 127.0.0.1: refused %v ip %s, want per-IP", a3.Refused(), a3.IP())
	}
	// The total (3) is reached: .3 is refused as over the total.
	dialFrom(t, l, "127.0.0.3")
	if c := accept(t, l); c.Refused() != RefusedTotal {
		t.Errorf("fourth conn: refused %v, want total", c.Refused())
	}
	// A detached conn leaves the total but keeps its per-IP slot.
	a1.Detach()
	a1.Detach()
	if total, perIP := l.Open("127.0.0.1"); total != 2 || perIP != 2 {
		t.Errorf("after detach: total %d per-IP %d, want 2 2", total, perIP)
	}
	dialFrom(t, l, "127.0.0.3")
	if c := accept(t, l); c.Refused() != NotRefused {
		t.Errorf("after detach: refused %v", c.Refused())
	}
	// Closing gives the slots back, once.
	a2.Close()
	a2.Close()
	a1.Close()
	if total, perIP := l.Open("127.0.0.1"); total != 2 || perIP != 0 {
		t.Errorf("after close: total %d per-IP %d, want 2 0", total, perIP)
	}
	st := l.Stats()
	if st.Accepted.Load() != 6 || st.RefusedPerIP.Load() != 1 || st.RefusedTotal.Load() != 1 {
		t.Errorf("stats accepted %d per-IP %d total %d", st.Accepted.Load(), st.RefusedPerIP.Load(), st.RefusedTotal.Load())
	}
}

// Refused connections are answered under a short deadline, and past MaxRefusing of them in
// flight the next one is closed at accept.
func TestListenerRefusedBounded(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, ListenerConfig{MaxConnsPerIP: 1, MaxRefusing: 1, RefuseTimeout: 50 * time.Millisecond})
	defer l.Close()
	dialFrom(t, l, "127.0.0.1")
	accept(t, l)
	dialFrom(t, l, "127.0.0.1")
	r := accept(t, l)
	if r.Refused() != RefusedPerIP {
		t.Fatalf("refused %v", r.Refused())
	}
	// Its deadline is set: a read ends with a timeout instead of waiting for the client.
	_, err = r.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read of a refused conn: %v, want a timeout", err)
	}
	// One refused conn is in flight: the next refused one is dropped at accept, and Accept
	// returns the one after it (from another address).
	dropped := dialFrom(t, l, "127.0.0.1")
	dialFrom(t, l, "127.0.0.2")
	if c := accept(t, l); c.IP() != "127.0.0.2" || c.Refused() != NotRefused {
		t.Errorf("after the drop: ip %s refused %v", c.IP(), c.Refused())
	}
	_ = dropped.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := dropped.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("dropped conn read: %v, want closed", err)
	}
	if l.Stats().DroppedRefused.Load() != 1 {
		t.Errorf("dropped %d, want 1", l.Stats().DroppedRefused.Load())
	}
	r.Close()
	dialFrom(t, l, "127.0.0.1")
	if c := accept(t, l); c.Refused() != RefusedPerIP {
		t.Errorf("after the refused conn closed: refused %v, want per-IP (answered again)", c.Refused())
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header string
		values       []string
		want         string
	}{
		{"no header configured", "", []string{"10.0.0.1"}, "192.0.2.1"},
		{"header missing", "X-Forwarded-For", nil, "192.0.2.1"},
		{"single", "X-Real-IP", []string{" 10.0.0.7 "}, "10.0.0.7"},
		{"list: last entry", "X-Forwarded-For", []string{"6.6.6.6, 10.0.0.8"}, "10.0.0.8"},
		{"several headers: last", "X-Forwarded-For", []string{"6.6.6.6", "10.0.0.9"}, "10.0.0.9"},
		{"ipv6", "X-Forwarded-For", []string{"2001:db8::1"}, "2001:db8::1"},
		{"garbage falls back", "X-Forwarded-For", []string{"not an ip"}, "192.0.2.1"},
		{"empty last falls back", "X-Forwarded-For", []string{"10.0.0.1,"}, "192.0.2.1"},
	}
	for _, tt := range tests {
		if got := ClientIP("192.0.2.1", tt.header, tt.values); got != tt.want {
			t.Errorf("%s: ClientIP = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1, 10.0.0.2")
	f.Add("::1")
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, v string) {
		got := ClientIP("192.0.2.1", "X-Forwarded-For", []string{v})
		if got != "192.0.2.1" && net.ParseIP(got) == nil {
			t.Fatalf("ClientIP(%q) = %q: neither the peer nor an IP", v, got)
		}
	})
}
