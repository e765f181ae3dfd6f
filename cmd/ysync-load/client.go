package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
)

// client is one simulated y-websocket peer: a connection, a local document, and the bookkeeping
// needed to tell which edits of the other peers of its document it has applied.
type client struct {
	idx   int
	docIx int
	r     *runner

	conn *websocket.Conn
	wmu  sync.Mutex // gorilla allows one writer at a time

	mu       sync.Mutex // guards doc, arr, captured, seen, nextSeq
	doc      *crdt.Doc
	arr      *crdt.Array
	captured []byte         // the update of the last local transaction
	seen     map[uint64]int // applied clock per peer client id (peers of the same document)
	nextSeq  int

	synced  chan struct{} // closed when the server's SyncStep2 was applied
	syncOne sync.Once
	alive   atomic.Bool // synced and not failed
	failed  atomic.Bool
	closing atomic.Bool // we are closing it on purpose
	wbuf    []byte      // frame scratch, used by the one worker that edits this client
}

func clientID(idx int) uint64 { return uint64(idx) + 1 }

func newClient(r *runner, idx int) *client {
	c := &client{
		idx:    idx,
		docIx:  idx % r.cfg.Docs,
		r:      r,
		doc:    crdt.NewDoc(crdt.DocOptions{ClientID: clientID(idx)}),
		seen:   make(map[uint64]int),
		synced: make(chan struct{}),
	}
	c.arr = c.doc.GetArray("log")
	c.doc.ObserveUpdate(func(update []byte, _ any, tx *crdt.Transaction) {
		if tx.Local {
			c.captured = update
		}
	})
	return c
}

// write sends one binary frame.
func (c *client) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteMessage(websocket.BinaryMessage, c.wrap(frame))
}

// connect dials, sends SyncStep1 and then runs the reader until the connection ends. It is the
// connection's only goroutine.
func (c *client) connect(ctx context.Context) {
	url := c.r.cfg.nodeURL(c.idx) + "/" + c.r.docName(c.docIx)
	if c.hocuspocus() {
		url = c.r.cfg.nodeURL(c.idx) // one socket per client; the document is named in every frame
	}
	conn, _, err := c.r.dialer.DialContext(ctx, url, nil)
	if err != nil {
		c.r.connectErrors.Add(1)
		c.r.noteError(fmt.Errorf("dial %s: %w", url, err))
		c.failed.Store(true)
		c.syncOne.Do(func() { close(c.synced) })
		return
	}
	c.conn = conn
	c.r.connected.Add(1)
	if c.hocuspocus() {
		c.wmu.Lock()
		err := conn.WriteMessage(websocket.BinaryMessage, syncproto.EncodeHPToken(c.r.docName(c.docIx), "", ""))
		c.wmu.Unlock()
		if err != nil {
			c.fail(fmt.Errorf("send token: %w", err))
			return
		}
	}
	c.mu.Lock()
	sv := crdt.EncodeStateVector(c.doc)
	c.mu.Unlock()
	if err := c.write(syncproto.EncodeSyncStep1(sv)); err != nil {
		c.fail(fmt.Errorf("send step1: %w", err))
		return
	}
	c.readLoop()
}

func (c *client) fail(err error) {
	if c.closing.Load() {
		return
	}
	if !c.failed.Swap(true) {
		if c.alive.Swap(false) {
			c.r.dropped.Add(1)
		} else {
			c.r.connectErrors.Add(1)
		}
		c.r.noteError(fmt.Errorf("client %d: %w", c.idx, err))
	}
	c.syncOne.Do(func() { close(c.synced) })
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

func (c *client) readLoop() {
	for {
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		if mt != websocket.BinaryMessage {
			continue
		}
		msg, err := c.decode(data)
		if err != nil {
			if errors.Is(err, syncproto.ErrUnknownType) || errors.Is(err, errSkip) {
				continue // a message type we do not speak; stock clients ignore them too
			}
			c.fail(fmt.Errorf("decode: %w", err))
			return
		}
		switch msg.Type {
		case syncproto.TypeSync:
			switch msg.SyncType {
			case syncproto.SyncStep1:
				c.mu.Lock()
				upd, err := crdt.EncodeStateAsUpdate(c.doc, msg.Payload)
				c.mu.Unlock()
				if err != nil {
					c.fail(fmt.Errorf("encode step2: %w", err))
					return
				}
				if err := c.write(syncproto.EncodeSyncStep2(upd)); err != nil {
					c.fail(fmt.Errorf("send step2: %w", err))
					return
				}
			case syncproto.SyncStep2, syncproto.SyncUpdate:
				if err := c.apply(msg.Payload); err != nil {
					c.fail(err)
					return
				}
				if msg.SyncType == syncproto.SyncStep2 {
					c.syncOne.Do(func() { close(c.synced) })
				}
			}
		case syncproto.TypeAuth:
			c.fail(fmt.Errorf("permission denied: %s", msg.Reason))
			return
		}
	}
}

// apply applies a remote update and credits the ledger with every edit of another client that it
// made visible (the document's state vector moved past it; updates missing dependencies stay
// pending in the document and are credited once they integrate).
func (c *client) apply(update []byte) error {
	if update == nil {
		return nil
	}
	c.mu.Lock()
	if err := crdt.ApplyUpdate(c.doc, update, "remote"); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("apply: %w", err)
	}
	at := c.r.ledger.now()
	sv := c.doc.StateVector()
	self := clientID(c.idx)
	type credit struct{ peer, from, to int }
	var credits [16]credit
	cs := credits[:0]
	for id, clock := range sv {
		if id == self {
			continue
		}
		if prev := c.seen[id]; clock > prev {
			c.seen[id] = clock
			cs = append(cs, credit{int(id - 1), prev, clock})
		}
	}
	c.mu.Unlock()
	for _, cr := range cs {
		if cr.peer < 0 || cr.peer >= len(c.r.clients) {
			c.r.ledger.unexpected.Add(int64(cr.to - cr.from))
			continue
		}
		c.r.ledger.deliver(cr.peer, cr.from, cr.to, at)
	}
	return nil
}

// edit makes one edit (inserts "c:n:t" at the front of the shared array) and sends its update. It runs on the
// client's worker only.
func (c *client) edit(measured bool) {
	if !c.alive.Load() || c.r.ledger.full(c.idx) {
		return
	}
	c.mu.Lock()
	if id := c.doc.ClientID(); id != clientID(c.idx) {
		// The ledger maps Yjs client id i+1 to client i; a document that switched ids (Yjs does
		// when a remote update advances its own id) would make edits nobody can credit.
		c.mu.Unlock()
		c.fail(fmt.Errorf("document switched client id %d -> %d", clientID(c.idx), id))
		return
	}
	seq := c.nextSeq
	// Insert at the front: appending would walk the whole list on every edit (a remote change
	// drops the array's search markers, as in Yjs), which made the generator CPU-bound.
	err := c.arr.Insert(0, editToken(c.idx, seq, time.Now().UnixMicro()))
	upd := c.captured
	c.captured = nil
	if err == nil {
		c.nextSeq++
	}
	c.mu.Unlock()
	if err != nil || upd == nil {
		c.fail(fmt.Errorf("local edit: %v (update %d bytes)", err, len(upd)))
		return
	}
	c.wbuf = syncproto.AppendUpdate(c.wbuf[:0], upd)
	receivers := c.r.receivers(c)
	c.r.ledger.send(c.idx, seq, c.r.ledger.now(), receivers, measured)
	if err := c.write(c.wbuf); err != nil {
		c.r.sendErrors.Add(1)
		c.fail(fmt.Errorf("send update: %w", err))
		return
	}
}

func (c *client) close() {
	c.closing.Store(true)
	if c.conn == nil {
		return
	}
	c.wmu.Lock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.conn.Close()
}

// editToken is the value one edit inserts: "<client>:<seq>:<unix µs>". A string is much lighter
// to decode and keep than a {c, n, t} map, for 1000 documents in one process.
func editToken(client, seq int, tUS int64) string {
	return strconv.Itoa(client) + ":" + strconv.Itoa(seq) + ":" + strconv.FormatInt(tUS, 10)
}

// parseToken is the inverse of editToken.
func parseToken(v any) (client, seq int64, ok bool) {
	s, isStr := v.(string)
	if !isStr {
		return 0, 0, false
	}
	a, rest, ok1 := strings.Cut(s, ":")
	b, t, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	c, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	_, err3 := strconv.ParseInt(t, 10, 64)
	return c, n, err1 == nil && err2 == nil && err3 == nil
}
