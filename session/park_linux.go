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
	ping     func(string) error    // answers a ping the reader consumed itself (the owner's startReading)
	deadline int64                 // the read deadline, Unix ns (extendDeadline)
	busy     bool                  // the last message was an edit or awareness: linger first
	on       bool                  // parking set up (startParking)
	rc       syscall.RawConn       // the socket
	fd       int32                 // its descriptor while registered with p
	p        *poller               // nil until startParking
	added    bool                  // fd was added to p's epoll set
	timer    *time.Timer           // wakes the parked reader at its read deadline
	resume   func()                // k.resumeReads, made once
	wakeFn   func()                // k.wake, made once
	peekFn   func(fd uintptr) bool // k.recvOnce, made once
	waitFn   func(fd uintptr) bool // k.waitOnce, made once
	buf      []byte                // recvOnce's buffer, flags and results
	flags    int
	n        int
	err      error
	state    atomic.Int32
}

// startParking sets the reader up to park, when the connection has what it takes: ParkWhenIdle's
// reader and a raw TCP socket (wv.raw ran).
func (k *connCore) startParking() {
	if k.pk.br == nil || k.wv.tcp == nil {
		return
	}
	rc, err := k.wv.tcp.SyscallConn()
	if err != nil {
		return
	}
	p, err := joinPoller()
	if err != nil {
		k.log.Debug("reader cannot park", "err", err)
		return
	}
	var fd int32 = -1
	if rc.Control(func(s uintptr) { fd = int32(s) }) != nil || fd < 0 {
		p.leave()
		return
	}
	p.own(fd, k)
	k.pk.rc, k.pk.p, k.pk.fd, k.pk.on = rc, p, fd, true
	k.pk.resume, k.pk.wakeFn, k.pk.peekFn, k.pk.waitFn = k.resumeReads, k.wake, k.recvOnce, k.waitOnce
	// The hijacked connection br was made on, maybe wrapped (wv.tcp was found through it).
	k.pk.src = k.conn.(interface{ UnderlyingConn() net.Conn }).UnderlyingConn()
}

// resumeReads is the goroutine a wake-up starts: the reader takes a read buffer again and goes
// on.
func (k *connCore) resumeReads() {
	k.takeBuffer()
	k.serveReads()
}

// readers hold the read buffers parked readers gave back, each in a bufio.Reader of its own.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, ReadBufferSize) }}

// dropBuffer gives br's buffer back while the reader is parked: br is empty then, and nothing
// reads it until the reader resumes (takeBuffer). gorilla keeps its pointer to br, so br's value
// is swapped: its buffer goes to the pool inside the reader that held it, and br is left
// without one. A parked connection then costs no read buffer.
func (k *connCore) dropBuffer() {
	h := k.pk.holder
	if h == nil {
		h = new(bufio.Reader) // the first park: br's buffer came from Upgrade
	}
	*h = *k.pk.br
	h.Reset(nil)
	*k.pk.br = bufio.Reader{}
	k.pk.holder = nil
	readers.Put(h)
}

// takeBuffer gives br a buffer from the pool again, before anything reads it after a park.
func (k *connCore) takeBuffer() {
	if k.pk.br.Size() > 0 {
		return
	}
	h := readers.Get().(*bufio.Reader)
	h.Reset(k.pk.src)
	*k.pk.br = *h // br and its holder share the buffer until the next park
	k.pk.holder = h
}

// stopParking undoes startParking once the reader ended for good.
func (k *connCore) stopParking() {
	if k.pk.p == nil {
		return
	}
	if k.pk.timer != nil {
		k.pk.timer.Stop()
	}
	k.pk.p.disown(k.pk.fd, k)
	k.pk.p.leave()
	k.pk.p, k.pk.on = nil, false
}

// idleStep runs on the reader between messages: it handles a ping or pong that is there, or
// parks when there is nothing to read, or tells the reader to read a message.
func (k *connCore) idleStep() int {
	if k.isClosing() {
		return stepRead // the reader waits in ReadMessage for the peer's close, as always
	}
	if n := k.pk.br.Buffered(); n > 0 {
		p, _ := k.pk.br.Peek(min(n, maxControlFrame))
		if size := controlFrameLen(p); size > 0 {
			k.handleControl(p[:size])
			_, _ = k.pk.br.Discard(size)
			return stepControl
		}
		return stepRead
	}
	buf := ctlBufs.Get().(*[maxControlFrame]byte)
	defer ctlBufs.Put(buf)
	var n, outcome int
	if k.pk.busy {
		n, outcome = k.linger(buf[:])
	} else {
		n, outcome = k.peek(buf[:])
	}
	switch outcome {
	case lingerQuiet:
		k.pk.busy = false
		if k.park() {
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
	if got, err := k.recv(buf[:size], 0); err != nil || got != size {
		k.close(DisconnectBroken)
		return stepRead
	}
	k.handleControl(buf[:size])
	return stepControl
}

// ctlBufs are idleStep's buffers for the bytes at the head of the socket.
var ctlBufs = sync.Pool{New: func() any { return new([maxControlFrame]byte) }}

// recv reads (or with MSG_PEEK looks at) what the socket has, without waiting.
func (k *connCore) recv(buf []byte, flags int) (int, error) {
	k.pk.buf, k.pk.flags = buf, flags
	err := k.pk.rc.Read(k.pk.peekFn)
	n, rerr := k.pk.n, k.pk.err
	k.pk.buf, k.pk.err = nil, nil
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// recvOnce is recv's attempt, run by the socket's RawConn with its read lock held.
func (k *connCore) recvOnce(fd uintptr) bool {
	for {
		k.pk.n, _, k.pk.err = unix.Recvfrom(int(fd), k.pk.buf, k.pk.flags|unix.MSG_DONTWAIT)
		if k.pk.err != unix.EINTR {
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
func (k *connCore) peek(buf []byte) (int, int) {
	n, err := k.recv(buf, unix.MSG_PEEK)
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
func (k *connCore) linger(buf []byte) (int, int) {
	k.pk.since.Store(time.Now().UnixNano())
	k.pk.lstate.Store(lingering)
	k.pk.buf, k.pk.flags = buf, unix.MSG_PEEK
	err := k.pk.rc.Read(k.pk.waitFn)
	n, rerr := k.pk.n, k.pk.err
	k.pk.buf, k.pk.err = nil, nil
	if !k.pk.lstate.CompareAndSwap(lingering, notLingering) {
		// The wheel is ending the wait (maybe just as data came): once it has moved the
		// deadline, put the real one back before anything reads.
		for k.pk.lstate.Load() != interrupted {
			runtime.Gosched()
		}
		k.pk.lstate.Store(notLingering)
		_ = k.pk.src.SetReadDeadline(time.Unix(0, k.pk.deadline))
		if err != nil {
			if time.Now().UnixNano() < k.pk.deadline {
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

// interruptLinger ends k's linger if it has lasted parkAfter by now; the keep-alive wheel calls
// it for every session on each tick. It moves the read deadline only while the reader waits in
// linger (the lstate handshake), never while gorilla reads.
func (k *connCore) interruptLinger(now time.Time) {
	if k.pk.lstate.Load() != lingering || now.UnixNano()-k.pk.since.Load() < int64(parkAfter) {
		return
	}
	if !k.pk.lstate.CompareAndSwap(lingering, interrupting) {
		return
	}
	_ = k.pk.src.SetReadDeadline(now)
	k.pk.lstate.Store(interrupted)
}

// waitOnce is linger's look at the socket, run by its RawConn with the read lock held: false
// (nothing yet) makes the RawConn wait for readability.
func (k *connCore) waitOnce(fd uintptr) bool {
	k.recvOnce(fd)
	return k.pk.err != unix.EAGAIN
}

// park registers the socket with the poller and arms the deadline timer, then publishes the
// parked state; it reports false when the reader should read on instead (the deadline passed,
// the session is closing, the poller refused). After it returned true the goroutine must not
// touch the session: a wake-up may already have started the next reader.
func (k *connCore) park() bool {
	wait := time.Duration(k.pk.deadline - time.Now().UnixNano())
	if wait <= 0 {
		return false
	}
	wait += time.Millisecond // so that the woken reader finds the deadline passed
	if k.pk.timer == nil {
		k.pk.timer = time.AfterFunc(wait, k.pk.wakeFn)
	} else {
		k.pk.timer.Reset(wait)
	}
	op := unix.EPOLL_CTL_MOD
	if !k.pk.added {
		op, k.pk.added = unix.EPOLL_CTL_ADD, true
	}
	p, fd, rc, deadline := k.pk.p, k.pk.fd, k.pk.rc, k.pk.deadline
	k.dropBuffer()
	k.pk.state.Store(readerParked)
	// Armed after the state is published: readiness is checked when the socket is armed, so
	// data that came after the peek wakes the reader through the poller.
	var err error
	if cerr := rc.Control(func(uintptr) { err = p.arm(op, fd) }); cerr != nil {
		err = cerr
	}
	if err == nil && !k.isClosing() && time.Now().UnixNano() < deadline {
		return true
	}
	if !k.pk.state.CompareAndSwap(readerParked, readerRunning) {
		return true // woken meanwhile: the new reader goes on
	}
	k.takeBuffer()
	if err != nil {
		k.log.Debug("reader cannot park", "err", err)
		k.pk.on = false // read as before, blocking in ReadMessage
	}
	return false
}

// wake resumes a parked reader on a new goroutine; it does nothing to a running one. The
// poller, the deadline timer and close call it.
func (k *connCore) wake() {
	if k.pk.state.CompareAndSwap(readerParked, readerRunning) {
		go k.pk.resume()
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
	owners map[int32]*connCore // by socket descriptor: the connection it belongs to now
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
	p := &poller{epfd: epfd, evfd: evfd, users: 1, done: make(chan struct{}), owners: make(map[int32]*connCore)}
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

// own records that fd is k's socket (a y-websocket Client's or a Hocuspocus HPSocket's, through
// the connCore both embed). A descriptor number is reused once its socket closed, so an event can
// reach the wrong connection; that one finds nothing to read and parks again.
func (p *poller) own(fd int32, k *connCore) {
	p.mu.Lock()
	p.owners[fd] = k
	p.mu.Unlock()
}

// disown forgets fd unless another session has it by now.
func (p *poller) disown(fd int32, k *connCore) {
	p.mu.Lock()
	if p.owners[fd] == k {
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
