package e2e

// The deep-nesting attack of issue 8 against the real binary: one V1 update of ~15 MB holding 2M
// Y.Arrays, each nested in the previous one, then a 6-byte update deleting the outermost. Before
// crdt walked nested types without recursion, the delete overflowed the Go stack and killed the
// process (fatal, no recover). The chain is built here byte by byte, as an attacker would send
// it: building 2M yjs objects in Node would cost the test more than the server.

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/syncproto"
)

const (
	// depthChain is the nesting depth of the attack: with a one-byte client id the chain is about
	// 15.6 MB of V1, under the default 16 MiB read limit.
	depthChain  = 2_000_000
	depthClient = 7
	// depthRSSBound bounds the server's peak RSS over the whole test (VmHWM). A live 2M-deep
	// document is about 580 MB of heap (~300 bytes per nested array: item, type, search markers,
	// struct-store slot), the collector lets the heap grow to twice the live set while the update
	// is decoded and the state encoded, and the first attacked document stays loaded (collected)
	// while the second arrives: measured peaks were 1.5 GiB after the first attack and 1.9 GiB
	// after the second.
	depthRSSBound = 3 << 30
)

// depthChainUpdate writes structs [from, to) of the chain as one V1 update: struct 0 in the root
// array "root", struct i inside the array of struct i-1.
func depthChainUpdate(from, to int) []byte {
	enc := encoding.NewUpdateEncoderV1()
	rest := enc.RestEncoder()
	rest.WriteVarUint(1)
	rest.WriteVarUint(uint64(to - from))
	enc.WriteClient(depthClient)
	rest.WriteVarUint(uint64(from))
	for c := from; c < to; c++ {
		enc.WriteInfo(7) // ContentType, no origins: the parent is written
		enc.WriteParentInfo(c == 0)
		if c == 0 {
			enc.WriteString("root")
		} else {
			enc.WriteLeftID(depthClient, uint64(c-1))
		}
		enc.WriteTypeRef(crdt.KindArray)
	}
	rest.WriteVarUint(0)
	return enc.Bytes()
}

// depthDeleteUpdate deletes the item at clock (one unit) of the chain's client.
func depthDeleteUpdate(clock int) []byte {
	enc := encoding.NewUpdateEncoderV1()
	rest := enc.RestEncoder()
	rest.WriteVarUint(0)
	rest.WriteVarUint(1)
	rest.WriteVarUint(depthClient)
	rest.WriteVarUint(1)
	enc.WriteDsClock(uint64(clock))
	enc.WriteDsLen(1)
	return enc.Bytes()
}

// procStatus reads a field of /proc/<pid>/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, v)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// sendAndAwaitEchoes sends each update on its own connection to doc and waits until the server
// has echoed every one (it echoes an update to its sender once stored).
func sendAndAwaitEchoes(t *testing.T, p *proc, doc string, updates [][]byte) {
	t.Helper()
	c := hostileDial(p.base, doc)
	if c == nil {
		t.Fatal("upgrade refused")
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1(crdt.EncodeStateVectorFromMap(nil))); err != nil {
		t.Fatal(err)
	}
	waiting := map[string]bool{}
	for _, u := range updates {
		waiting[string(u)] = true
	}
	read := make(chan error, 1)
	go func() {
		for len(waiting) > 0 {
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
			_, frame, err := c.ReadMessage()
			if err != nil {
				read <- err
				return
			}
			if m, err := syncproto.Decode(frame); err == nil && m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncUpdate {
				delete(waiting, string(m.Payload))
			}
		}
		read <- nil
	}()
	for _, u := range updates {
		_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
		if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(u)); err != nil {
			t.Fatalf("send %d bytes: %v", len(u), err)
		}
	}
	select {
	case err := <-read:
		if err != nil {
			t.Fatalf("connection ended before every update was echoed: %v (%s)", err, firstLines(p.stderr.String(), 20))
		}
	case err := <-p.exited:
		t.Fatalf("ysync died: %v\n%s", err, firstLines(p.stderr.String(), 40))
	}
}

func TestDepthChainAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 2M nested arrays twice")
	}
	bin := buildBinary(t)
	// The in-memory store: the attack is on the document, not on the database.
	p := startServeAt(t, bin, "", freeAddr(t))
	pid := p.cmd.Process.Pid
	ed := startEditors(t, p.base, "depth/honest", 2, "")
	waitAcked := func(n int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for ed.ackedCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("honest editors stalled at %d acked edits\n%s", ed.ackedCount(), ed.stderrString())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitAcked(10)

	cases := []struct {
		name  string
		parts int
	}{{"one-update", 1}, {"eight-updates", 8}}
	for _, tc := range cases {
		doc := "depth/" + tc.name
		var updates [][]byte
		size := 0
		for i := range tc.parts {
			u := depthChainUpdate(i*depthChain/tc.parts, (i+1)*depthChain/tc.parts)
			size += len(u)
			updates = append(updates, u)
		}
		t.Logf("%s: %d nested arrays in %d bytes", tc.name, depthChain, size)
		sendAndAwaitEchoes(t, p, doc, updates)
		del := depthDeleteUpdate(0)
		if len(del) != 6 {
			t.Fatalf("the delete update is %d bytes, want 6", len(del))
		}
		sendAndAwaitEchoes(t, p, doc, [][]byte{del})
		// A fresh y-websocket client syncs the attacked document (collected now) ...
		if items := readStrings(t, p.base, doc); len(items) != 0 {
			t.Fatalf("reader of %s saw items %v", doc, items)
		}
		// ... and the honest editors elsewhere kept going.
		waitAcked(ed.ackedCount() + 10)
		t.Logf("%s: server RSS %d MiB, peak %d MiB", tc.name, procStatus(t, pid, "VmRSS")>>20, procStatus(t, pid, "VmHWM")>>20)
	}
	acked := ed.ackedLabels()
	items := ed.stop(t)
	checkAll(t, "honest edits", acked, items)
	if peak := procStatus(t, pid, "VmHWM"); peak > depthRSSBound {
		t.Errorf("server peak RSS %d MiB, bound %d MiB", peak>>20, depthRSSBound>>20)
	}
	// A clean shutdown, and nothing in the log that says a walk went wrong.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Fatalf("ysync exited with %v\n%s", err, firstLines(p.stderr.String(), 40))
	}
	if s := p.stderr.String(); strings.Contains(s, "stack overflow") || strings.Contains(s, "panic") {
		t.Fatalf("server log:\n%s", firstLines(s, 40))
	}
}
