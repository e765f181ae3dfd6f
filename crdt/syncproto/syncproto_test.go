package syncproto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

type frameFixture struct {
	Name     string `json:"name"`
	Frame    string `json:"frame"`
	Type     uint64 `json:"type"`
	SyncType uint64 `json:"syncType"`
	AuthType uint64 `json:"authType"`
	Payload  string `json:"payload"`
	Reason   string `json:"reason"`
}

func loadFrames(t testing.TB) []frameFixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "protocol", "frames.json"))
	if err != nil {
		t.Fatalf("read fixtures (regenerate with node scripts/gen-protocol-fixtures.mjs): %v", err)
	}
	var f struct{ Frames []frameFixture }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Frames) == 0 {
		t.Fatal("no frames in fixture")
	}
	return f.Frames
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenFrames decodes frames built by y-protocols/y-websocket and re-encodes them to the same
// bytes with both the generic and the specific encoders.
func TestGoldenFrames(t *testing.T) {
	for _, fx := range loadFrames(t) {
		t.Run(fx.Name, func(t *testing.T) {
			frame := b64(t, fx.Frame)
			m, err := Decode(frame)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := Message{Type: Type(fx.Type), Payload: b64(t, fx.Payload), Reason: fx.Reason}
			if want.Type == TypeSync {
				want.SyncType = SyncType(fx.SyncType)
			}
			if want.Type == TypeAuth {
				want.AuthType = AuthType(fx.AuthType)
			}
			if len(want.Payload) == 0 {
				want.Payload = nil
			}
			if !equalMsg(m, want) {
				t.Fatalf("Decode = %+v, want %+v", m, want)
			}
			enc, err := Encode(m)
			if err != nil || !bytes.Equal(enc, frame) {
				t.Fatalf("Encode = %x, %v; want %x", enc, err, frame)
			}
			var specific []byte
			switch {
			case m.Type == TypeSync && m.SyncType == SyncStep1:
				specific = EncodeSyncStep1(m.Payload)
			case m.Type == TypeSync && m.SyncType == SyncStep2:
				specific = EncodeSyncStep2(m.Payload)
			case m.Type == TypeSync && m.SyncType == SyncUpdate:
				specific = EncodeUpdate(m.Payload)
			case m.Type == TypeAwareness:
				specific = EncodeAwareness(m.Payload)
			case m.Type == TypeQueryAwareness:
				specific = EncodeQueryAwareness()
			case m.Type == TypeAuth:
				specific = EncodePermissionDenied(m.Reason)
			}
			if !bytes.Equal(specific, frame) {
				t.Fatalf("specific encoder = %x, want %x", specific, frame)
			}
			if m.Payload != nil && &m.Payload[0] != &frame[len(frame)-len(m.Payload)] {
				t.Fatal("Payload does not alias the frame")
			}
		})
	}
}

func equalMsg(a, b Message) bool {
	return a.Type == b.Type && a.SyncType == b.SyncType && a.AuthType == b.AuthType &&
		bytes.Equal(a.Payload, b.Payload) && a.Reason == b.Reason && a.Trailing == b.Trailing
}

func TestEncoders(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, 200)
	cases := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"step1", EncodeSyncStep1([]byte{0}), []byte{0, 0, 1, 0}},
		{"step2", EncodeSyncStep2([]byte{0, 0}), []byte{0, 1, 2, 0, 0}},
		{"update", EncodeUpdate([]byte{9}), []byte{0, 2, 1, 9}},
		{"update empty", EncodeUpdate(nil), []byte{0, 2, 0}},
		{"update long", EncodeUpdate(long), append([]byte{0, 2, 0xc8, 0x01}, long...)},
		{"awareness", EncodeAwareness([]byte{0}), []byte{1, 1, 0}},
		{"query", EncodeQueryAwareness(), []byte{3}},
		{"denied", EncodePermissionDenied("no"), []byte{2, 0, 2, 'n', 'o'}},
		{"rpc", EncodeRPC([]byte(`{}`)), []byte{5, 2, '{', '}'}},
		{"append keeps prefix", AppendUpdate([]byte{7}, []byte{1}), []byte{7, 0, 2, 1, 1}},
	}
	for _, c := range cases {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: got %x, want %x", c.name, c.got, c.want)
		}
	}
	if f := EncodeUpdate(long); cap(f) != len(f) {
		t.Errorf("EncodeUpdate: cap %d != len %d (should be sized exactly)", cap(f), len(f))
	}
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  Message
		err   error
	}{
		{"empty", nil, Message{}, ErrEmpty},
		{"unknown type 4", []byte{4}, Message{Type: 4}, ErrUnknownType},
		{"unknown type 6 with body", []byte{6, 1, 2}, Message{Type: 6}, ErrUnknownType},
		{"unknown type 128", []byte{0x80, 0x01}, Message{Type: 128}, ErrUnknownType},
		{"type truncated", []byte{0x80}, Message{}, ErrTruncated},
		{"type overflow", bytes.Repeat([]byte{0xff}, 10), Message{}, ErrTruncated},
		{"sync no subtype", []byte{0}, Message{}, ErrTruncated},
		{"sync unknown subtype", []byte{0, 3, 0}, Message{SyncType: 3}, ErrUnknownSyncType},
		{"sync no length", []byte{0, 0}, Message{}, ErrTruncated},
		{"sync short payload", []byte{0, 2, 3, 1, 2}, Message{SyncType: 2}, ErrTruncated},
		{"sync 4 GiB length", []byte{0, 2, 0x80, 0x80, 0x80, 0x80, 0x10}, Message{SyncType: 2}, ErrTruncated},
		{"sync 2^53-1 length", []byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}, Message{SyncType: 2}, ErrTruncated},
		{"sync length overflow", []byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, Message{SyncType: 2}, ErrTruncated},
		{"awareness no length", []byte{1}, Message{Type: 1}, ErrTruncated},
		{"auth no subtype", []byte{2}, Message{Type: 2}, ErrTruncated},
		{"auth unknown subtype", []byte{2, 1, 0}, Message{Type: 2, AuthType: 1}, ErrUnknownAuthType},
		{"auth no reason", []byte{2, 0}, Message{Type: 2}, ErrTruncated},
		{"auth short reason", []byte{2, 0, 5, 'a'}, Message{Type: 2}, ErrTruncated},
		{"rpc short", []byte{5, 3, '{'}, Message{Type: 5}, ErrTruncated},

		{"step1", []byte{0, 0, 1, 0}, Message{Payload: []byte{0}}, nil},
		{"update empty payload", []byte{0, 2, 0}, Message{SyncType: 2}, nil},
		{"query", []byte{3}, Message{Type: 3}, nil},
		{"query trailing", []byte{3, 9, 9}, Message{Type: 3, Trailing: 2}, nil},
		{"update trailing", []byte{0, 2, 1, 7, 0}, Message{SyncType: 2, Payload: []byte{7}, Trailing: 1}, nil},
		{"non-canonical varuints", []byte{0x80, 0x00, 0x81, 0x00, 0x81, 0x00, 5}, Message{SyncType: 1, Payload: []byte{5}}, nil},
		{"auth invalid utf8", []byte{2, 0, 2, 0xff, 'a'}, Message{Type: 2, Reason: "\uFFFDa"}, nil},
		{"rpc", []byte{5, 2, '[', ']'}, Message{Type: 5, Payload: []byte("[]")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(c.frame)
			if c.err != nil {
				if !errors.Is(err, c.err) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				if m.Payload != nil {
					t.Fatalf("payload %x returned with error", m.Payload)
				}
				c.want.Payload = nil
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !equalMsg(m, c.want) {
				t.Fatalf("Decode = %+v, want %+v", m, c.want)
			}
		})
	}
}

func TestHugeLengthDoesNotAllocate(t *testing.T) {
	frame := []byte{0, 2, 0x80, 0x80, 0x80, 0x80, 0x10}
	n := testing.AllocsPerRun(100, func() {
		if _, err := Decode(frame); err == nil {
			t.Fatal("no error")
		}
	})
	// the error value itself allocates; nothing proportional to the 4 GiB prefix may
	if n > 4 {
		t.Fatalf("%v allocations", n)
	}
}

func TestDecodeValidFrameAllocs(t *testing.T) {
	frame := EncodeUpdate(bytes.Repeat([]byte{1}, 1000))
	n := testing.AllocsPerRun(100, func() {
		if _, err := Decode(frame); err != nil {
			t.Fatal(err)
		}
	})
	if n > 0 {
		t.Fatalf("Decode of a valid frame: %v allocations", n)
	}
}

func TestAppendZeroAlloc(t *testing.T) {
	update := bytes.Repeat([]byte{1}, 500)
	buf := make([]byte, 0, 1024)
	n := testing.AllocsPerRun(100, func() {
		b := AppendUpdate(buf[:0], update)
		b = AppendSyncStep1(b, update[:10])
		b = AppendAwareness(b, update[:3])
		b = AppendPermissionDenied(b, "reason")
		b = AppendQueryAwareness(b)
		_ = AppendRPC(b, update[:2])
	})
	if n != 0 {
		t.Fatalf("Append*: %v allocations", n)
	}
}

func TestEncodeRejectsUnknown(t *testing.T) {
	for _, m := range []Message{{Type: 4}, {Type: TypeSync, SyncType: 3}, {Type: TypeAuth, AuthType: 1}} {
		if _, err := Encode(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("Encode(%+v) err = %v", m, err)
		}
	}
}

func seedFrames(f *testing.F) {
	for _, fx := range loadFrames(f) {
		f.Add(b64(f, fx.Frame))
	}
	for _, s := range [][]byte{
		nil, {0}, {3, 1}, {0, 2, 0x80, 0x80, 0x80, 0x80, 0x10}, {2, 0, 1, 0xff}, {5, 2, '{', '}'},
		{0x80, 0x00, 0x81, 0x00, 0x81, 0x00, 5}, {0, 3, 0}, {9},
	} {
		f.Add(s)
	}
}

// FuzzDecode: Decode never panics; whatever it accepts re-encodes to a frame that decodes to the
// same message, is no longer than the accepted part of the input, and equals it when the input was
// canonical.
func FuzzDecode(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m Message
		var err error
		// Payloads alias the frame; only an auth reason is copied (tripled at worst, when every
		// byte is invalid UTF-8), and an error message allocates a little.
		allocbound.Check(t, "Decode", len(frame), allocbound.Bound{PerByte: 3, Base: 1 << 10}, func() { m, err = Decode(frame) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if m.Payload != nil {
				t.Fatal("payload with error")
			}
			return
		}
		if m.Trailing < 0 || m.Trailing > len(frame) {
			t.Fatalf("Trailing %d of %d", m.Trailing, len(frame))
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		body := frame[:len(frame)-m.Trailing]
		// Only an auth reason with invalid UTF-8 (replaced by U+FFFD) can grow.
		reasonIntact := len(m.Reason) <= len(body) && string(body[len(body)-len(m.Reason):]) == m.Reason
		if len(enc) > len(body) && reasonIntact {
			t.Fatalf("re-encoding grew: %x -> %x", frame, enc)
		}
		if len(enc) == len(body) && reasonIntact && !bytes.Equal(enc, body) {
			t.Fatalf("canonical frame re-encoded differently: %x -> %x", frame, enc)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(m)): %v", err)
		}
		m.Trailing = 0
		if !equalMsg(m, m2) {
			t.Fatalf("round trip: %+v != %+v", m, m2)
		}
	})
}

// FuzzRoundTrip: Decode(Encode(m)) == m for every encodable message.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{0}, "")
	f.Add(uint8(0), uint8(2), bytes.Repeat([]byte{1}, 300), "")
	f.Add(uint8(1), uint8(0), []byte{1, 2, 3, 4, 2, 'n', 'o'}, "")
	f.Add(uint8(2), uint8(0), []byte(nil), "permission denied")
	f.Add(uint8(3), uint8(0), []byte(nil), "")
	f.Add(uint8(5), uint8(0), []byte(`{"id":1}`), "")
	f.Fuzz(func(t *testing.T, typ, sub uint8, payload []byte, reason string) {
		m := Message{Type: Type(typ % 6)}
		switch m.Type {
		case TypeSync:
			m.SyncType = SyncType(sub % 3)
			m.Payload = payload
		case TypeAwareness, TypeRPC:
			m.Payload = payload
		case TypeAuth:
			m.Reason = string(bytes.ToValidUTF8([]byte(reason), []byte("\uFFFD")))
		case TypeQueryAwareness:
		default:
			return
		}
		if len(m.Payload) == 0 {
			m.Payload = nil
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%x): %v", enc, err)
		}
		if !equalMsg(got, m) {
			t.Fatalf("got %+v, want %+v", got, m)
		}
	})
}

// FrameSyncStep2InPlace writes the same frame as EncodeSyncStep2, for every varuint length size.
func TestFrameSyncStep2InPlace(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 21} {
		update := bytes.Repeat([]byte{0xab}, n)
		buf := append(make([]byte, SyncStep2Reserve), update...)
		got := FrameSyncStep2InPlace(buf, SyncStep2Reserve)
		if want := EncodeSyncStep2(update); !bytes.Equal(got, want) {
			t.Fatalf("len %d: in-place frame %x... differs from %x...", n, got[:min(8, len(got))], want[:min(8, len(want))])
		}
		if n > 0 && &got[len(got)-1] != &buf[len(buf)-1] {
			t.Fatalf("len %d: update copied", n)
		}
	}
	// Too little room: still the right frame (a copy).
	buf := []byte{0, 5, 6}
	if got, want := FrameSyncStep2InPlace(buf, 1), EncodeSyncStep2([]byte{5, 6}); !bytes.Equal(got, want) {
		t.Fatalf("short reserve: %x, want %x", got, want)
	}
}
