//go:build linux

package session

import (
	"bufio"
	"encoding/binary"
	"errors"
	"maps"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reader states.
const (
	readerRunning int32 = iota
	readerParked
)

// parkState is the reader's side of parking (park.go). Everything but state is the reader's
// own: touched only by the goroutine that reads, and not after it published readerParked
// unless it took the state back.
type parkState struct {
	br       *bufio.Reader         // gorilla's read buffer (ParkWhenIdle)
	holder   *bufio.Reader         // owns br's buffer while the reader runs (dropBuffer)
	src      net.Conn              // what br reads from
	lstate   atomic.Int32          // linger's handshake with the keep-alive wheel (interruptLinger)
	since    atomic.Int64          // when the current linger began, Unix ns
	ping     func(string) error    // the ping handler gorilla has too (startReading)
	deadline int64                 // the read deadline, Unix ns (extendDeadline)
	busy     bool                  // the last message was an edit or awareness: linger first
	on       bool                  // parking set up (startParking)
	rc       syscall.RawConn       // the socket
	fd       int32                 // its descriptor while registered with p
	p        *poller               // nil until startParking
	added    bool                  // fd was added to p's epoll set
	timer    *time.Timer           // wakes the parked reader at its read deadline
	resume   func()                // c.serveReads, made once
	wakeFn   func()                // c.wake, made once
	peekFn   func(fd uintptr) bool // c.recvOnce, made once
	waitFn   func(fd uintptr) bool // c.waitOnce, made once
	buf      []byte                // recvOnce's buffer, flags and results
	flags    int
	n        int
	err      error
	state    atomic.Int32
}

// startParking sets the reader up to park, when the session has what it takes.
func (c *Client) startParking() {
	if c.pk.br == nil || c.wv.tcp == nil {
		return
	}
	rc, err := c.wv.tcp.SyscallConn()
	if err != nil {
		return
	}
	p, err := joinPoller()
	if err != nil {
		c.log.Debug("reader cannot park", "err", err)
		return
	}
	var fd int32 = -1
	if rc.Control(func(s uintptr) { fd = int32(s) }) != nil || fd < 0 {
		p.leave()
		return
	}
	p.own(fd, c)
	c.pk.rc, c.pk.p, c.pk.fd, c.pk.on = rc, p, fd, true
	c.pk.resume, c.pk.wakeFn, c.pk.peekFn, c.pk.waitFn = c.resumeReads, c.wake, c.recvOnce, c.waitOnce
	// The hijacked connection br was made on, maybe wrapped (wv.tcp was found through it).
	c.pk.src = c.conn.(interface{ UnderlyingConn() net.Conn }).UnderlyingConn()
}

// resumeReads is the goroutine a wake-up starts: the reader takes a read buffer again and goes
// on.
func (c *Client) resumeReads() {
	c.takeBuffer()
	c.serveReads()
}

// readers hold the read buffers parked readers gave back, each in a bufio.Reader of its own.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, ReadBufferSize) }}

// dropBuffer gives br's buffer back while the reader is parked: br is empty then, and nothing
// reads it until the reader resumes (takeBuffer). gorilla keeps its pointer to br, so br's value
// is swapped: its buffer goes to the pool inside the reader that held it, and br is left
// without one. A parked connection then costs no read buffer.
func (c *Client) dropBuffer() {
	h := c.pk.holder
	if h == nil {
		h = new(bufio.Reader) // the first park: br's buffer came from Upgrade
	}
	*h = *c.pk.br
	h.Reset(nil)
	*c.pk.br = bufio.Reader{}
	c.pk.holder = nil
	readers.Put(h)
}

// takeBuffer gives br a buffer from the pool again, before anything reads it after a park.
func (c *Client) takeBuffer() {
	if c.pk.br.Size() > 0 {
		return
	}
	h := readers.Get().(*bufio.Reader)
	h.Reset(c.pk.src)
	*c.pk.br = *h // br and its holder share the buffer until the next park
	c.pk.holder = h
}

// stopParking undoes startParking once the reader ended for good.
func (c *Client) stopParking() {
	if c.pk.p == nil {
		return
	}
	if c.pk.timer != nil {
		c.pk.timer.Stop()
	}
	c.pk.p.disown(c.pk.fd, c)
	c.pk.p.leave()
	c.pk.p, c.pk.on = nil, false
}

// idleStep runs on the reader between messages: it handles a ping or pong that is there, or
// parks when there is nothing to read, or tells the reader to read a message.
func (c *Client) idleStep() int {
	if c.isClosing() {
		return stepRead // the reader waits in ReadMessage for the peer's close, as always
	}
	if n := c.pk.br.Buffered(); n > 0 {
		p, _ := c.pk.br.Peek(min(n, maxControlFrame))
		if size := controlFrameLen(p); size > 0 {
			c.handleControl(p[:size])
			_, _ = c.pk.br.Discard(size)
			return stepControl
		}
		return stepRead
	}
	buf := ctlBufs.Get().(*[maxControlFrame]byte)
	defer ctlBufs.Put(buf)
	var n, outcome int
	if c.pk.busy {
		n, outcome = c.linger(buf[:])
	} else {
		n, outcome = c.peek(buf[:])
	}
	switch outcome {
	case lingerQuiet:
		c.pk.busy = false
		if c.park() {
			return stepPark
		}
		return stepRead
	case lingerOther:
		return stepRead // closed, reset, or the read deadline passed: ReadMessage says which
	}
	size := controlFrameLen(buf[:n])
	if size == 0 {
		return stepRead
	}
	// The peek saw the whole frame and nothing else reads this socket: it is all there.
	if got, err := c.recv(buf[:size], 0); err != nil || got != size {
		c.close(DisconnectBroken)
		return stepRead
	}
	c.handleControl(buf[:size])
	return stepControl
}

// ctlBufs are idleStep's buffers for the bytes at the head of the socket.
var ctlBufs = sync.Pool{New: func() any { return new([maxControlFrame]byte) }}

// recv reads (or with MSG_PEEK looks at) what the socket has, without waiting.
func (c *Client) recv(buf []byte, flags int) (int, error) {
	c.pk.buf, c.pk.flags = buf, flags
	err := c.pk.rc.Read(c.pk.peekFn)
	n, rerr := c.pk.n, c.pk.err
	c.pk.buf, c.pk.err = nil, nil
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// recvOnce is recv's attempt, run by the socket's RawConn with its read lock held.
func (c *Client) recvOnce(fd uintptr) bool {
	for {
		c.pk.n, _, c.pk.err = unix.Recvfrom(int(fd), c.pk.buf, c.pk.flags|unix.MSG_DONTWAIT)
		if c.pk.err != unix.EINTR {
			return true // never wait here: waiting is what parking is for
		}
	}
}

// parkAfter is how long a busy reader (its last message was an edit or an awareness update)
// waits for the next message on its goroutine before it parks, at least: the keep-alive
// wheel ends the wait on its first tick after that (interruptLinger). A reader that parked at once
// after every message would pay a goroutine start, an epoll_ctl and a wake-up of the poller's
// thread per message received; the wait is the runtime's own (netpoll), which costs nothing to
// set up. Peers that type or move the cursor send more often than this; a connection quieter
// than this is idle. A reader whose last message was anything else (the sync handshake, a
// pong, an RPC) parks at once: a client that has only synced is most likely going to sit idle,
// and after a storm of connections a wait would keep thousands of stacks alive at once, which
// the runtime returns to the system only slowly. (A variable for the tests, which shorten it.)
var parkAfter = 2 * time.Second

// linger's outcomes.
const (
	lingerReadable = iota // something to read
	lingerQuiet           // nothing came for parkAfter: park
	lingerOther           // an error or the read deadline: let ReadMessage report it
)

// peek is linger without the wait.
func (c *Client) peek(buf []byte) (int, int) {
	n, err := c.recv(buf, unix.MSG_PEEK)
	switch {
	case err == unix.EAGAIN:
		return 0, lingerQuiet
	case err != nil || n == 0:
		return 0, lingerOther
	}
	return n, lingerReadable
}

// States of lstate.
const (
	notLingering int32 = iota
	lingering
	interrupting // the wheel is moving the deadline to end the wait
	interrupted  // it has; the reader puts the real deadline back
)

// linger looks at what the socket has (MSG_PEEK into buf: nothing is consumed), waiting for it
// on the reader's goroutine, in the runtime's netpoller, under the real read deadline. The
// keep-alive wheel ends a wait that lasted parkAfter (interruptLinger) by moving the socket's
// deadline to now; so the wait costs nothing per message beyond the peek. (Bringing the
// deadline forward here for every wait, and back after, measured +12% of server CPU per
// delivery under steady editing: a timer moved earlier wakes the runtime's netpoller.)
func (c *Client) linger(buf []byte) (int, int) {
	c.pk.since.Store(time.Now().UnixNano())
	c.pk.lstate.Store(lingering)
	c.pk.buf, c.pk.flags = buf, unix.MSG_PEEK
	err := c.pk.rc.Read(c.pk.waitFn)
	n, rerr := c.pk.n, c.pk.err
	c.pk.buf, c.pk.err = nil, nil
	if !c.pk.lstate.CompareAndSwap(lingering, notLingering) {
		// The wheel is ending the wait (maybe just as data came): once it has moved the
		// deadline, put the real one back before anything reads.
		for c.pk.lstate.Load() != interrupted {
			runtime.Gosched()
		}
		c.pk.lstate.Store(notLingering)
		_ = c.pk.src.SetReadDeadline(time.Unix(0, c.pk.deadline))
		if err != nil {
			if time.Now().UnixNano() < c.pk.deadline {
				return 0, lingerQuiet
			}
			return 0, lingerOther
		}
	}
	switch {
	case err == nil && rerr == nil && n > 0:
		return n, lingerReadable
	}
	return 0, lingerOther
}

// interruptLinger ends c's linger if it has lasted parkAfter by now; the keep-alive wheel calls
// it for every session on each tick. It moves the read deadline only while the reader waits in
// linger (the lstate handshake), never while gorilla reads.
func (c *Client) interruptLinger(now time.Time) {
	if c.pk.lstate.Load() != lingering || now.UnixNano()-c.pk.since.Load() < int64(parkAfter) {
		return
	}
	if !c.pk.lstate.CompareAndSwap(lingering, interrupting) {
		return
	}
	_ = c.pk.src.SetReadDeadline(now)
	c.pk.lstate.Store(interrupted)
}

// waitOnce is linger's look at the socket, run by its RawConn with the read lock held: false
// (nothing yet) makes the RawConn wait for readability.
func (c *Client) waitOnce(fd uintptr) bool {
	c.recvOnce(fd)
	return c.pk.err != unix.EAGAIN
}

// park registers the socket with the poller and arms the deadline timer, then publishes the
// parked state; it reports false when the reader should read on instead (the deadline passed,
// the session is closing, the poller refused). After it returned true the goroutine must not
// touch the session: a wake-up may already have started the next reader.
func (c *Client) park() bool {
	wait := time.Duration(c.pk.deadline - time.Now().UnixNano())
	if wait <= 0 {
		return false
	}
	wait += time.Millisecond // so that the woken reader finds the deadline passed
	if c.pk.timer == nil {
		c.pk.timer = time.AfterFunc(wait, c.pk.wakeFn)
	} else {
		c.pk.timer.Reset(wait)
	}
	op := unix.EPOLL_CTL_MOD
	if !c.pk.added {
		op, c.pk.added = unix.EPOLL_CTL_ADD, true
	}
	p, fd, rc, deadline := c.pk.p, c.pk.fd, c.pk.rc, c.pk.deadline
	c.dropBuffer()
	c.pk.state.Store(readerParked)
	// Armed after the state is published: readiness is checked when the socket is armed, so
	// data that came after the peek wakes the reader through the poller.
	var err error
	if cerr := rc.Control(func(uintptr) { err = p.arm(op, fd) }); cerr != nil {
		err = cerr
	}
	if err == nil && !c.isClosing() && time.Now().UnixNano() < deadline {
		return true
	}
	if !c.pk.state.CompareAndSwap(readerParked, readerRunning) {
		return true // woken meanwhile: the new reader goes on
	}
	c.takeBuffer()
	if err != nil {
		c.log.Debug("reader cannot park", "err", err)
		c.pk.on = false // read as before, blocking in ReadMessage
	}
	return false
}

// wake resumes a parked reader on a new goroutine; it does nothing to a running one. The
// poller, the deadline timer and close call it.
func (c *Client) wake() {
	if c.pk.state.CompareAndSwap(readerParked, readerRunning) {
		go c.pk.resume()
	}
}

// poller is the process's epoll set for parked readers, with the goroutine that waits on it.
// It runs while at least one session can park; the last to leave stops it (an eventfd wakes
// it) and waits for it.
type poller struct {
	epfd, evfd int
	users      int // under pollers.mu
	done       chan struct{}
	failed     atomic.Bool // the epoll wait failed: nothing parks any more

	mu     sync.Mutex
	owners map[int32]*Client // by socket descriptor: the session it belongs to now
}

var pollers struct {
	mu sync.Mutex
	p  *poller
}

// joinPoller returns the running poller, starting one if none runs.
func joinPoller() (*poller, error) {
	pollers.mu.Lock()
	defer pollers.mu.Unlock()
	if p := pollers.p; p != nil {
		p.users++
		return p, nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, err
	}
	p := &poller{epfd: epfd, evfd: evfd, users: 1, done: make(chan struct{}), owners: make(map[int32]*Client)}
	pollers.p = p
	go p.run()
	return p, nil
}

// leave is the end of a session's use of p; the last one stops it.
func (p *poller) leave() {
	pollers.mu.Lock()
	p.users--
	last := p.users == 0
	if last && pollers.p == p {
		pollers.p = nil
	}
	pollers.mu.Unlock()
	if !last {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.evfd, one[:])
	<-p.done
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.evfd)
}

// own records that fd is c's socket. A descriptor number is reused once its socket closed, so
// an event can reach the wrong session; that one finds nothing to read and parks again.
func (p *poller) own(fd int32, c *Client) {
	p.mu.Lock()
	p.owners[fd] = c
	p.mu.Unlock()
}

// disown forgets fd unless another session has it by now.
func (p *poller) disown(fd int32, c *Client) {
	p.mu.Lock()
	if p.owners[fd] == c {
		delete(p.owners, fd)
	}
	p.mu.Unlock()
}

// arm asks for one wake-up when fd is readable (or hung up); op adds or re-arms it.
func (p *poller) arm(op int, fd int32) error {
	if p.failed.Load() {
		return errPollerFailed
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: fd}
	err := unix.EpollCtl(p.epfd, op, int(fd), &ev)
	switch {
	case err == unix.ENOENT && op == unix.EPOLL_CTL_MOD:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	case err == unix.EEXIST && op == unix.EPOLL_CTL_ADD:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
	}
	return err
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.failAll()
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(p.evfd) {
				return
			}
			p.mu.Lock()
			c := p.owners[ev.Fd]
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

var errPollerFailed = errors.New("session: the parking poller failed")

// failAll wakes every parked reader after the epoll wait failed (which takes a bad descriptor
// or buffer, so should never happen); parking then fails and each reader reads blocking in
// ReadMessage, as without parking. Sessions are owners from startParking on, so a reader that
// parks while this runs is either woken here or refused by arm.
func (p *poller) failAll() {
	p.failed.Store(true)
	p.mu.Lock()
	cs := slices.Collect(maps.Values(p.owners))
	p.mu.Unlock()
	for _, c := range cs {
		c.wake()
	}
}
