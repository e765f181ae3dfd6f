package cluster

import (
	"bytes"
	"errors"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Kind: KindUpdate, Node: "n1", Seq: 1, Data: []byte{0, 0}},
		{Kind: KindUpdate, Node: "node-ü", Seq: 1 << 40, Data: bytes.Repeat([]byte{7}, 300)},
		{Kind: KindAwareness, Node: "n", Data: []byte{1, 2, 3}},
		{Kind: KindAwarenessQuery, Node: "abc"},
	} {
		got, err := Decode(Encode(nil, m))
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", m, err)
		}
		if got.Kind != m.Kind || got.Node != m.Node || got.Seq != m.Seq || !bytes.Equal(got.Data, m.Data) {
			t.Fatalf("round trip %+v -> %+v", m, got)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(nil, Message{Kind: KindUpdate, Node: "n1", Seq: 5, Data: []byte{1}})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"one byte":       {1},
		"version":        append([]byte{2}, good[1:]...),
		"kind 0":         {1, 0, 1, 'n'},
		"kind 9":         {1, 9, 1, 'n'},
		"no node":        {1, KindAwareness, 0, 1},
		"node too long":  {1, KindAwareness, 0xff, 0x01, 'n'},
		"node past end":  {1, KindAwareness, 5, 'n'},
		"node not utf8":  {1, KindAwareness, 1, 0xff, 1},
		"seq 0":          {1, KindUpdate, 1, 'n', 0, 1},
		"seq truncated":  {1, KindUpdate, 1, 'n', 0x80},
		"no update":      {1, KindUpdate, 1, 'n', 5},
		"no awareness":   {1, KindAwareness, 1, 'n'},
		"query trailing": {1, KindAwarenessQuery, 1, 'n', 0},
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode(%x) = %v, want ErrMalformed", name, b, err)
		}
	}
}

// FuzzDecode: relay messages come from Redis, untrusted. Decode never panics, and whatever it
// accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(nil, Message{Kind: KindUpdate, Node: "n1", Seq: 3, Data: []byte{0, 0}}))
	f.Add(Encode(nil, Message{Kind: KindAwareness, Node: "node", Data: []byte{1, 1, 1, 2, '{', '}'}}))
	f.Add(Encode(nil, Message{Kind: KindAwarenessQuery, Node: "q"}))
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if m.Node == "" || len(m.Node) > MaxNodeIDLen {
			t.Fatalf("accepted node id %q", m.Node)
		}
		if m.Kind == KindUpdate && m.Seq < 1 {
			t.Fatalf("accepted seq %d", m.Seq)
		}
		if again := Encode(nil, m); !bytes.Equal(again, b) {
			// Uvarints have non-minimal encodings; accept those only if they decode the same.
			m2, err := Decode(again)
			if err != nil || m2.Kind != m.Kind || m2.Node != m.Node || m2.Seq != m.Seq || !bytes.Equal(m2.Data, m.Data) {
				t.Fatalf("re-encoding %x gave %x", b, again)
			}
		}
	})
}
