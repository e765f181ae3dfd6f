package syncproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// Golden frames made by @hocuspocus/common 3.4.4 and lib0 (the writers the provider and the
// reference server use).
var hpGolden = map[string]string{
	"token":         "05646f632d31020003746f6b",
	"tokenV4":       "05646f632d31020003746f6b05342e382e30",
	"authenticated": "05646f632d31020208726561646f6e6c79",
	"denied":        "05646f632d310201046e6f7065",
	"tokenRequest":  "05646f632d310200",
	"syncStatus":    "05646f632d310801",
	"stateless":     "05646f632d3105077b2261223a317d",
	"close":         "05646f632d31070c556e617574686f72697a6564",
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(hpGolden[name])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHPEncodersMatchReference(t *testing.T) {
	for name, got := range map[string][]byte{
		"token":         EncodeHPToken("doc-1", "tok", ""),
		"tokenV4":       EncodeHPToken("doc-1", "tok", "4.8.0"),
		"authenticated": EncodeHPAuthenticated("doc-1", HPScopeReadOnly),
		"denied":        EncodeHPPermissionDenied("doc-1", "nope"),
		"tokenRequest":  EncodeHPTokenRequest("doc-1"),
		"syncStatus":    EncodeHPSyncStatus("doc-1", true),
		"stateless":     EncodeHPStateless("doc-1", `{"a":1}`),
		"close":         EncodeHPClose("doc-1", "Unauthorized"),
	} {
		if want := golden(t, name); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", name, got, want)
		}
	}
}

func TestDecodeHP(t *testing.T) {
	cases := []struct {
		name string
		want HPMessage
	}{
		{"token", HPMessage{Key: "doc-1", Type: HPAuth, AuthType: HPAuthToken, Text: "tok"}},
		{"tokenV4", HPMessage{Key: "doc-1", Type: HPAuth, AuthType: HPAuthToken, Text: "tok", Version: "4.8.0", HasVersion: true}},
		{"authenticated", HPMessage{Key: "doc-1", Type: HPAuth, AuthType: HPAuthAuthenticated, Text: "readonly"}},
		{"denied", HPMessage{Key: "doc-1", Type: HPAuth, AuthType: HPAuthPermissionDenied, Text: "nope"}},
		{"tokenRequest", HPMessage{Key: "doc-1", Type: HPAuth, AuthType: HPAuthToken}},
		{"syncStatus", HPMessage{Key: "doc-1", Type: HPSyncStatus, Status: 1}},
		{"stateless", HPMessage{Key: "doc-1", Type: HPStateless, Text: `{"a":1}`}},
		{"close", HPMessage{Key: "doc-1", Type: HPClose, Text: "Unauthorized"}},
	}
	for _, c := range cases {
		got, err := DecodeHP(golden(t, c.name))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !hpEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestDecodeHPSyncAndPing(t *testing.T) {
	f, err := EncodeHP("a\x00session", Message{Type: TypeSync, SyncType: SyncUpdate, Payload: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeHP(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.Key != "a\x00session" || m.Type != HPSync || m.Sync.SyncType != SyncUpdate || !bytes.Equal(m.Sync.Payload, []byte{1, 2, 3}) {
		t.Fatalf("got %+v", m)
	}
	for _, b := range [][]byte{HPPingFrame, HPPongFrame} {
		m, err := DecodeHP(b)
		if err != nil || m.Key != "" || m.Type != HPType(b[0]) {
			t.Fatalf("%x: %+v %v", b, m, err)
		}
	}
	// A key of length 9 without its bytes is a truncated keyed frame only when more follows.
	if _, err := DecodeHP([]byte{9, 'a'}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated key: %v", err)
	}
	if _, err := DecodeHP(append(AppendHPKey(nil, "d"), 42)); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestHPFromYWS(t *testing.T) {
	for _, f := range [][]byte{
		EncodeSyncStep1([]byte{0}), EncodeSyncStep2([]byte{0, 0}), EncodeUpdate([]byte{0, 0}),
		EncodeAwareness([]byte{0}), EncodeQueryAwareness(), EncodeRPC([]byte(`{"event":"x"}`)),
	} {
		out, ok := HPFromYWS("k", f)
		if !ok {
			t.Fatalf("%x: not translated", f)
		}
		m, err := DecodeHP(out)
		if err != nil || m.Key != "k" {
			t.Fatalf("%x → %x: %+v %v", f, out, m, err)
		}
		if Type(f[0]) == TypeRPC {
			if m.Type != HPStateless || m.Text != `{"event":"x"}` {
				t.Fatalf("rpc → %+v", m)
			}
			continue
		}
		y, err := Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if m.Sync.Type != y.Type || m.Sync.SyncType != y.SyncType || !bytes.Equal(m.Sync.Payload, y.Payload) {
			t.Fatalf("%x → %+v", f, m)
		}
	}
	out, ok := HPFromYWS("k", EncodePermissionDenied("read-only"))
	if m, err := DecodeHP(out); !ok || err != nil || m.AuthType != HPAuthPermissionDenied || m.Text != "read-only" {
		t.Fatalf("permission denied → %+v %v", m, err)
	}
	if _, ok := HPFromYWS("k", nil); ok {
		t.Fatal("empty frame translated")
	}
}

// FuzzDecodeHP: no input panics; a decoded message re-encodes (for the types the server
// writes or relays) to a frame that decodes to the same message.
func FuzzDecodeHP(f *testing.F) {
	for name := range hpGolden {
		f.Add(golden(&testing.T{}, name))
	}
	f.Add(HPPingFrame)
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{1, 'd', 0, 1, 3, 1, 2, 3})
	f.Add([]byte{1, 'd', 1, 1, 0})
	f.Add([]byte{1, 'd', 7})
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := DecodeHP(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		var re []byte
		switch m.Type {
		case HPSync, HPAwareness, HPQueryAwareness:
			re, err = EncodeHP(m.Key, m.Sync)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type == HPSync {
				// Byte-compatible with y-websocket after the key.
				y, ok := HPFromYWS(m.Key, re[len(AppendHPKey(nil, m.Key)):])
				if !ok || !bytes.Equal(y, re) {
					t.Fatalf("sync frame does not translate back: %x", re)
				}
			}
		case HPStateless:
			re = EncodeHPStateless(m.Key, m.Text)
		case HPSyncStatus:
			if m.Status > 1 {
				return
			}
			re = EncodeHPSyncStatus(m.Key, m.Status == 1)
		case HPAuth:
			switch m.AuthType {
			case HPAuthToken:
				if m.Text == "" && !m.HasVersion {
					re = EncodeHPTokenRequest(m.Key)
				} else if m.HasVersion && m.Version != "" {
					re = EncodeHPToken(m.Key, m.Text, m.Version)
				} else {
					return
				}
			case HPAuthPermissionDenied:
				re = EncodeHPPermissionDenied(m.Key, m.Text)
			case HPAuthAuthenticated:
				re = EncodeHPAuthenticated(m.Key, m.Text)
			}
		default:
			return
		}
		m2, err := DecodeHP(re)
		if err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", re, err)
		}
		m.Trailing, m2.Trailing = 0, 0
		if !hpEqual(m, m2) {
			t.Fatalf("round trip: %+v → %x → %+v", m, re, m2)
		}
	})
}

func hpEqual(a, b HPMessage) bool {
	sa, sb := a.Sync, b.Sync
	return a.Key == b.Key && a.Type == b.Type && a.AuthType == b.AuthType && a.Text == b.Text &&
		a.Version == b.Version && a.HasVersion == b.HasVersion && a.Status == b.Status && a.Trailing == b.Trailing &&
		sa.Type == sb.Type && sa.SyncType == sb.SyncType && bytes.Equal(sa.Payload, sb.Payload)
}
