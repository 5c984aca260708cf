package tracer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
)

// The test binary doubles as a client process, so that transitions on the
// server's socket fire while another process is on the CPU, and as the
// process tree of TestFollowExit.
func TestMain(m *testing.M) {
	switch os.Getenv("SSTRACE_TEST_FOLLOW") {
	case "root":
		followRoot()
		return
	case "child":
		// Lives until its stdin closes.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	if addr := os.Getenv("SSTRACE_TEST_CLIENT"); addr != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// Wait until the server says it has accepted, then close first.
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// openIn opens a tracer filtered to ns. A test that needs capabilities
// this kernel lacks is skipped, naming the kernel feature missing (what
// doctor says too); TestCapabilitiesExplained checks that every kernel of
// the matrix lacks only what it is known to lack.
func openIn(t *testing.T, ns *nstest.NS, opts Options, need ...string) *Tracer {
	t.Helper()
	cookie, err := LookupNetNS(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	opts.NetNS = cookie
	tr, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	for _, name := range need {
		if c := tr.Capability(name); !c.OK() {
			t.Skipf("this kernel lacks %s: %s is missing", c.Needs, name)
		}
	}
	return tr
}

// Capabilities every test of this file needs, beyond their own.
var basic = []string{CapCookies, CapBirths, CapAccepts, CapTransitions, CapReleases, CapDestroys}

func fdInode(t *testing.T, fd int) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func connInode(t *testing.T, c syscall.Conn) uint32 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ino uint32
	rc.Control(func(fd uintptr) { ino = fdInode(t, int(fd)) })
	return ino
}

// collect reads events until done says it has seen enough. The deadline
// only turns a hang into a failure; it synchronizes nothing.
func collect(t *testing.T, tr *Tracer, done func([]Event) bool) []Event {
	t.Helper()
	var evs []Event
	deadline := time.Now().Add(20 * time.Second)
	for !done(evs) {
		if time.Now().After(deadline) {
			t.Fatalf("events incomplete after 20s; got %d:\n%s", len(evs), dump(evs))
		}
		var ev Event
		err := tr.ReadTimeout(&ev, 100*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func dump(evs []Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("%-7s cookie=%d pid=%d cur=%d owner=%v %d->%d %s %s ino=%d fd=%d\n",
			e.Kind, e.Cookie, e.PID, e.CurPID, e.OwnerKnown, e.OldState, e.NewState, e.Local, e.Peer, e.Inode, e.FD)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	ns := nstest.New(t)
	tr := openIn(t, ns, Options{BirthStacks: true}, basic...)
	me := uint32(os.Getpid())
	// The test joins a socket's events by cookie: a kernel that gives
	// none to accepted sockets (before 5.12) must say so instead.
	if c := tr.Capability(CapTransitions); c.Lacking(LackCookieGen) {
		t.Skipf("transitions from %s lack %s", c.Variant(), LackCookieGen)
	}

	var (
		ln              *net.TCPListener
		srv             *net.TCPConn
		client          *exec.Cmd
		lnIno, srvIno   uint32
		unusedIno       uint32
		unusedFD        int
		err             error
		clientPID       uint32
		listenerAddress string
	)
	err = ns.Do(func() error {
		// A socket that is created and closed without ever being used.
		unusedFD, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		unusedIno = fdInode(t, unusedFD)
		unix.Close(unusedFD)

		// Plain TCP: Go listens with MPTCP by default, whose fd socket is
		// not the TCP socket that changes state.
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ln = l.(*net.TCPListener)
		listenerAddress = ln.Addr().String()
		client = exec.Command(os.Args[0], "-test.run=^$")
		client.Env = append(os.Environ(), "SSTRACE_TEST_CLIENT="+listenerAddress)
		client.Stderr = os.Stderr
		return client.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	clientPID = uint32(client.Process.Pid)
	lnIno = connInode(t, ln)
	srv, err = ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	srvIno = connInode(t, srv)
	// Tell the client to close; its FIN moves our socket to CLOSE-WAIT in
	// softirq, while the client is on the CPU.
	if _, err := srv.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := client.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
	srv.Close()
	ln.Close()

	var lnCookie, srvCookie uint64
	evs := collect(t, tr, func(evs []Event) bool {
		// Done once the unused socket, the listener, the accepted socket
		// and the client's socket have each been destroyed.
		want := map[uint64]bool{}
		destroyed := map[uint64]bool{}
		for _, e := range evs {
			switch {
			case e.Kind == KindBirth && (e.Inode == unusedIno || e.Inode == lnIno || e.PID == clientPID),
				e.Kind == KindAccept && e.Inode == srvIno:
				want[e.Cookie] = true
			case e.Kind == KindDestroy:
				destroyed[e.Cookie] = true
			}
		}
		for c := range want {
			if !destroyed[c] {
				return false
			}
		}
		return len(want) == 4
	})
	t.Logf("events:\n%s", dump(evs))

	// Where tracing hooks cannot generate cookies, an accepted socket
	// gets one once established: its handshake's transitions have none.
	handshakeUncookied := tr.Capability(CapTransitions).Lacking(LackHandshakeCookie)
	byCookie := map[uint64][]Event{}
	for _, e := range evs {
		if e.Cookie == 0 {
			if handshakeUncookied && e.Kind == KindState && (e.OldState == 10 || e.OldState == 3) {
				continue
			}
			t.Errorf("event without cookie: %+v", e)
		}
		byCookie[e.Cookie] = append(byCookie[e.Cookie], e)
		if e.Kind == KindBirth && e.Inode == lnIno {
			lnCookie = e.Cookie
		}
		if e.Kind == KindAccept && e.Inode == srvIno {
			srvCookie = e.Cookie
		}
	}

	// The unused socket: born and released by us, destroyed, no transition.
	var unusedCookie uint64
	for _, e := range evs {
		if e.Kind == KindBirth && e.Inode == unusedIno {
			unusedCookie = e.Cookie
			if e.PID != me || e.FD != uint32(unusedFD) {
				t.Errorf("unused socket birth: pid %d fd %d, want %d %d", e.PID, e.FD, me, unusedFD)
			}
			if e.Stack.Len() < 2 || e.Stack.ExeBase() == 0 {
				t.Errorf("unused socket birth has no user stack: %d frames (%v), executable at %#x", e.Stack.Len(), e.Stack.Err(), e.Stack.ExeBase())
			}
		}
	}
	if unusedCookie == 0 {
		t.Fatal("no birth event for the unused socket")
	}
	wantKinds(t, "unused", byCookie[unusedCookie], KindBirth, KindRelease, KindDestroy)

	// The listener: CLOSE -> LISTEN -> CLOSE, owned by us throughout.
	if lnCookie == 0 {
		t.Fatal("no birth event for the listener")
	}
	wantStates(t, "listener", byCookie[lnCookie], [][2]uint8{{7, 10}, {10, 7}})
	for _, e := range byCookie[lnCookie] {
		if e.PID != me {
			t.Errorf("listener event %s attributed to pid %d, want %d", e.Kind, e.PID, me)
		}
	}

	// The server's accepted socket: born in the kernel (no birth event),
	// accepted by us; the client's FIN moved it to CLOSE-WAIT in softirq
	// while the client was on the CPU, and the event still names us.
	if srvCookie == 0 {
		t.Fatal("no accept event for the server socket")
	}
	srvEvs := byCookie[srvCookie]
	// A child is cloned from the listener (LISTEN) and set to SYN-RECV.
	wantSrv := [][2]uint8{{10, 3}, {3, 1}, {1, 8}, {8, 9}, {9, 7}}
	for handshakeUncookied && len(srvEvs) > 0 && len(wantSrv) > 3 && firstState(srvEvs) != wantSrv[0] {
		wantSrv = wantSrv[1:] // that transition came without the cookie
	}
	wantStates(t, "server", srvEvs, wantSrv)
	for _, e := range srvEvs {
		if e.Kind == KindState && e.NewState == 8 {
			if !e.OwnerKnown || e.PID != me {
				t.Errorf("ESTABLISHED->CLOSE-WAIT attributed to pid %d (owner known %v), want the server %d", e.PID, e.OwnerKnown, me)
			}
			if e.CurPID == me {
				t.Logf("note: FIN processed while the server was on the CPU (cur=%d)", e.CurPID)
			}
			if e.Since == 0 || e.Since > e.TS {
				t.Errorf("CLOSE-WAIT transition has no time in the old state: since=%d ts=%d", e.Since, e.TS)
			}
		}
	}

	// The client: born in the client process, SYN-SENT -> ESTABLISHED.
	var clientCookie uint64
	for _, e := range evs {
		if e.Kind == KindBirth && e.PID == clientPID {
			clientCookie = e.Cookie
		}
	}
	if clientCookie == 0 {
		t.Fatalf("no birth event from the client process %d", clientPID)
	}
	// TIME-WAIT lives on in a minisock: the full socket goes FIN-WAIT-2 -> CLOSE.
	wantStates(t, "client", byCookie[clientCookie], [][2]uint8{{7, 2}, {2, 1}, {1, 4}, {4, 5}, {5, 7}})
}

func wantKinds(t *testing.T, what string, evs []Event, kinds ...Kind) {
	t.Helper()
	var got []Kind
	for _, e := range evs {
		got = append(got, e.Kind)
	}
	if fmt.Sprint(got) != fmt.Sprint(kinds) {
		t.Errorf("%s: kinds %v, want %v", what, got, kinds)
	}
}

func wantStates(t *testing.T, what string, evs []Event, want [][2]uint8) {
	t.Helper()
	var got [][2]uint8
	for _, e := range evs {
		if e.Kind == KindState {
			got = append(got, [2]uint8{e.OldState, e.NewState})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: transitions %v, want %v", what, got, want)
	}
}

// A ring too small for the burst loses events, and the loss is counted:
// plain records, and births that carry a stack in a record of their own
// size.
func TestDropsCounted(t *testing.T) {
	for _, stacks := range []bool{false, true} {
		t.Run(fmt.Sprintf("stacks=%v", stacks), func(t *testing.T) { testDropsCounted(t, stacks) })
	}
}

func testDropsCounted(t *testing.T, stacks bool) {
	ns := nstest.New(t)
	tr := openIn(t, ns, Options{RingSize: os.Getpagesize(), BirthStacks: stacks}, basic...)
	const n = 200
	err := ns.Do(func() error {
		for i := 0; i < n; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing was read while the burst ran: at most a page of events fits.
	drops, err := tr.Drops()
	if err != nil {
		t.Fatal(err)
	}
	var got, births int
	for {
		var ev Event
		err := tr.ReadTimeout(&ev, 50*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got++
		if ev.Kind == KindBirth {
			births++
			if ev.Stack.Captured() != stacks || (stacks && ev.Stack.Len() == 0) {
				t.Errorf("birth with stack captured %v (%d frames, %v); want %v", ev.Stack.Captured(), ev.Stack.Len(), ev.Stack.Err(), stacks)
			}
		}
	}
	t.Logf("%d sockets: %d events delivered (%d births), %d dropped", n, got, births, drops)
	if drops == 0 {
		t.Fatal("no drops counted with a one-page ring")
	}
	if births == 0 {
		t.Error("no birth delivered")
	}
	// Three events per socket (birth, release, destroy): every one is
	// either delivered or counted.
	if uint64(got)+drops != 3*n {
		t.Errorf("delivered %d + dropped %d != %d emitted", got, drops, 3*n)
	}
}

// The inventory names every socket fd with its owner, as /proc does.
func TestInventoryMatchesProc(t *testing.T) {
	ns := nstest.New(t)
	var fds []int
	err := ns.Do(func() error {
		for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
			fd, err := unix.Socket(unix.AF_INET6, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	// The first socket has a cookie (getsockopt SO_COOKIE makes one): every
	// variant must report it; one that generates cookies, a non-zero one
	// for the others too.
	known, err := unix.GetsockoptUint64(fds[0], unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		t.Fatal(err)
	}
	netns, err := LookupNetNS(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	inv, c, err := ProbeInventory(netns)
	if err != nil && c.Needs != "" {
		t.Skipf("this kernel lacks %s: the inventory is missing", c.Needs)
	}
	if err != nil {
		t.Fatal(err)
	}
	generates := c.Object == ObjectBTF.String()
	t.Logf("inventory variant %q (refused: %v)", c.Variant(), c.Tried)
	got := map[uint32]FD{}
	for _, f := range inv {
		got[f.FD] = f
	}
	if len(inv) != len(fds) {
		t.Errorf("inventory of the namespace has %d fds, want %d: %+v", len(inv), len(fds), inv)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			t.Fatal(err)
		}
		f, ok := got[uint32(fd)]
		if !ok {
			t.Errorf("fd %d (%s) missing from the inventory", fd, link)
			continue
		}
		if want := fmt.Sprintf("socket:[%d]", f.Inode); link != want {
			t.Errorf("fd %d: /proc says %s, inventory says %s", fd, link, want)
		}
		if f.PID != uint32(os.Getpid()) || f.CommString()+"\n" != string(comm) {
			t.Errorf("fd %d: owner %d %q, want %d %q", fd, f.PID, f.CommString(), os.Getpid(), comm)
		}
		if f.Family != unix.AF_INET6 || f.State != 7 {
			t.Errorf("fd %d: family %d state %d", fd, f.Family, f.State)
		}
		switch {
		case fd == fds[0] && f.Cookie != known:
			t.Errorf("fd %d: cookie %d, SO_COOKIE says %d", fd, f.Cookie, known)
		case fd != fds[0] && generates && f.Cookie == 0:
			t.Errorf("fd %d: no cookie from a variant that generates them", fd)
		}
		// A variant that reads cookies may still find one on the
		// others: any tracer attached meanwhile (another test package
		// runs at the same time) generates one at every socket's birth.
	}
}

// connectIn makes a blocking connect() from this process in ns and
// returns its error.
func connectIn(t *testing.T, ns *nstest.NS, port int) error {
	t.Helper()
	var cerr error
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		cerr = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cerr
}

// A refused connect: SYN-SENT (with the connect() caller and its stack),
// the reset, CLOSE, then the error report; an accepted one ends its
// handshake with the RTT.
func TestHandshakeEvents(t *testing.T) {
	ns := nstest.New(t)
	tr := openIn(t, ns, Options{ConnectStacks: true}, append(basic, CapErrors, CapResets)...)
	me := uint32(os.Getpid())
	if err := connectIn(t, ns, 9); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v", err)
	}
	var refused uint64
	evs := collect(t, tr, func(evs []Event) bool {
		for _, e := range evs {
			if e.Kind == KindState && e.NewState == stateSynSent {
				refused = e.Cookie
			}
			if e.Kind == KindError && e.Cookie == refused && refused != 0 {
				return true
			}
		}
		return false
	})
	var got []string
	for _, e := range evs {
		if e.Cookie != refused || e.Kind == KindBirth || e.Kind == KindRelease || e.Kind == KindDestroy {
			continue
		}
		got = append(got, fmt.Sprintf("%s %d->%d", e.Kind, e.OldState, e.NewState))
		switch {
		case e.Kind == KindState && e.NewState == stateSynSent:
			if !e.Stack.Captured() || !userRetAsVariant(t, tr, e) || e.CurPID != me || e.Peer.String() != "127.0.0.1:9" {
				t.Errorf("SYN-SENT: stack %v ret %#x cur %d peer %s; want a stack, pid %d", e.Stack.Captured(), e.UserRet, e.CurPID, e.Peer, me)
			}
			if e.Stack.Len() < 2 || e.Stack.Err() != nil {
				t.Errorf("connect() stack: %#x %v", e.Stack.Frames(), e.Stack.Err())
			}
		case e.Kind == KindError:
			if e.Errno != uint32(unix.ECONNREFUSED) || e.FD != 0 {
				t.Errorf("error event: errno %d fd %d, want %d", e.Errno, e.FD, unix.ECONNREFUSED)
			}
		}
	}
	want := []string{"state 7->2", "reset 2->2", "state 2->7", "error 7->7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("refused connect: %v, want %v", got, want)
	}

	var ln net.Listener
	err := ns.Do(func() (err error) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err = lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := connectIn(t, ns, ln.Addr().(*net.TCPAddr).Port); err != nil {
		t.Fatal(err)
	}
	evs = collect(t, tr, func(evs []Event) bool {
		n := 0
		for _, e := range evs {
			if e.Kind == KindState && e.NewState == 1 {
				n++
			}
		}
		return n == 2 // the client's and the server's child
	})
	for _, e := range evs {
		if e.Kind == KindState && e.NewState == 1 {
			if e.RTTus == 0 || e.RTTus > 1_000_000 || e.Retrans != 0 || e.FD != 0 || e.Inode != 0 {
				t.Errorf("%d->1: rtt %dus retrans %d fd %d ino %d", e.OldState, e.RTTus, e.Retrans, e.FD, e.Inode)
			}
		}
	}
}

// Without tp_btf the classic tracepoint stands in, connect() stacks
// included.
func TestSetStateFallback(t *testing.T) {
	ns := nstest.New(t)
	tr := openIn(t, ns, Options{Disable: []string{HookSetState}, ConnectStacks: true}, CapTransitions)
	if !tr.has(HookSetStateTP) {
		t.Fatalf("fallback not attached: hooks %v", tr.Hooks())
	}
	connectIn(t, ns, 9)
	evs := collect(t, tr, func(evs []Event) bool {
		for _, e := range evs {
			if e.Kind == KindState && e.NewState == stateSynSent {
				return true
			}
		}
		return false
	})
	for _, e := range evs {
		if e.Kind == KindState && e.NewState == stateSynSent && (e.Stack.Len() == 0 || !userRetAsVariant(t, tr, e)) {
			t.Errorf("SYN-SENT from the classic tracepoint without a stack: %+v", e)
		}
	}
}

// followRoot is TestFollowExit's followed process. Each line on stdin is a
// step; it answers each with one line on stdout:
//
//	go     starts a child (answers "child PID"), then lets one of its own
//	       threads exit and waits until it has ("thread TID"), then makes
//	       a TCP socket it never uses ("socket INODE")
//	reap   ends the child and waits for it ("reaped")
//	EOF    exits, the socket still open
func followRoot() {
	// Keeps other goroutines off the main thread, which Go parks instead
	// of ending when a goroutine locked to it returns.
	runtime.LockOSThread()
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	var child *exec.Cmd
	var childIn io.WriteCloser
	for in.Scan() {
		switch in.Text() {
		case "go":
			child = exec.Command(os.Args[0])
			child.Env = append(os.Environ(), "SSTRACE_TEST_FOLLOW=child")
			var err error
			if childIn, err = child.StdinPipe(); err != nil {
				fail(err)
			}
			if err := child.Start(); err != nil {
				fail(err)
			}
			fmt.Println("child", child.Process.Pid)

			// A goroutine that ends locked to its thread ends the thread
			// (while the process lives on). A thread pidfd becomes
			// readable once the thread has exited.
			type gone struct{ tid, pidfd int }
			c := make(chan gone)
			go func() {
				runtime.LockOSThread()
				tid := unix.Gettid()
				fd, err := unix.PidfdOpen(tid, unix.PIDFD_THREAD)
				if errors.Is(err, unix.EINVAL) {
					fd = -1 // no thread pidfds before 6.9: see below
				} else if err != nil {
					fail(fmt.Errorf("pidfd of thread %d: %w", tid, err))
				}
				c <- gone{tid, fd}
			}()
			g := <-c
			if g.pidfd >= 0 {
				pfd := []unix.PollFd{{Fd: int32(g.pidfd), Events: unix.POLLIN}}
				for {
					if _, err := unix.Poll(pfd, -1); err == nil {
						break
					} else if err != unix.EINTR {
						fail(err)
					}
				}
			} else {
				// Kernels before 6.9 signal a thread's exit to nobody
				// outside it: watch its /proc entry go, bounded.
				task := fmt.Sprintf("/proc/self/task/%d", g.tid)
				deadline := time.Now().Add(10 * time.Second)
				for _, err := os.Stat(task); err == nil; _, err = os.Stat(task) {
					if time.Now().After(deadline) {
						fail(fmt.Errorf("thread %d still there after 10s", g.tid))
					}
					time.Sleep(time.Millisecond)
				}
			}
			fmt.Println("thread", g.tid)

			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				fail(err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				fail(err)
			}
			fmt.Println("socket", st.Ino)
		case "reap":
			childIn.Close()
			child.Wait()
			fmt.Println("reaped")
		}
	}
	os.Exit(0)
}

// In follow mode the pids map holds the live tree: a fork adds the child,
// its exit takes it out, a thread's exit does not take its process out,
// and the whole process's exit does. The socket the process held until it
// exited (closed after the exit tracepoint) is still reported dead.
func TestFollowExit(t *testing.T) {
	ns := nstest.New(t)
	root := exec.Command(os.Args[0])
	root.Env = append(os.Environ(), "SSTRACE_TEST_FOLLOW=root")
	root.Stderr = os.Stderr
	stdin, err := root.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := root.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Do(root.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Process.Kill(); root.Wait() })
	pid := uint32(root.Process.Pid)
	tr := openIn(t, ns, Options{FollowPIDs: []uint32{pid}}, append(basic, CapForks, CapExits)...)
	if !tr.has(HookExit) || !tr.has(HookFork) {
		t.Fatalf("follow mode without its hooks: %v", tr.Hooks())
	}
	out := bufio.NewScanner(stdout)
	ask := func(step string, fields int) []string {
		t.Helper()
		if _, err := io.WriteString(stdin, step+"\n"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range fields {
			if !out.Scan() {
				t.Fatalf("%s: the followed process ended: %v", step, out.Err())
			}
			if strings.HasPrefix(out.Text(), "error") {
				t.Fatalf("%s: %s", step, out.Text())
			}
			got = append(got, out.Text())
		}
		return got
	}
	followed := func(want map[uint32]bool, when string) {
		t.Helper()
		got, err := tr.FollowedPIDs()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: followed %v, want %v", when, got, want)
		}
	}

	var child, tid int
	var ino uint32
	lines := ask("go", 3)
	_, err1 := fmt.Sscanf(lines[0], "child %d", &child)
	_, err2 := fmt.Sscanf(lines[1], "thread %d", &tid)
	_, err3 := fmt.Sscanf(lines[2], "socket %d", &ino)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("answers %q: %v", lines, err)
	}
	if tid == int(pid) {
		t.Fatalf("the thread that exited was the main thread")
	}
	followed(map[uint32]bool{pid: true, uint32(child): true}, "after a fork and a thread's exit")
	ask("reap", 1)
	followed(map[uint32]bool{pid: true}, "after the child's exit")
	stdin.Close()
	if err := root.Wait(); err != nil {
		t.Fatalf("followed process: %v", err)
	}
	// Reaped: its do_exit, the tracepoint and exit_files are done.
	followed(map[uint32]bool{}, "after the process's exit")

	var cookie uint64
	evs := collect(t, tr, func(evs []Event) bool {
		for _, e := range evs {
			if e.Kind == KindBirth && e.Inode == ino {
				cookie = e.Cookie
			}
			if e.Kind == KindDestroy && e.Cookie == cookie && cookie != 0 {
				return true
			}
		}
		return false
	})
	var mine []Event
	for _, e := range evs {
		if e.Cookie != cookie {
			continue
		}
		mine = append(mine, e)
		if e.PID != pid {
			t.Errorf("%s of the socket attributed to pid %d, want %d", e.Kind, e.PID, pid)
		}
		// A variant without the task in cgroup programs cannot tell.
		if exiting := !tr.Capability(CapReleases).Lacking(LackExiting); e.Kind == KindRelease && e.Exiting != exiting {
			t.Errorf("release at exit: Exiting %v, want %v: %+v", e.Exiting, exiting, e)
		}
	}
	wantKinds(t, "socket held until exit", mine, KindBirth, KindRelease, KindDestroy)
}

// Outside follow mode neither process hook is attached: trace and watch do
// not pay for them.
func TestNoProcessHooksUnlessFollowing(t *testing.T) {
	ns := nstest.New(t)
	tr := openIn(t, ns, Options{}, basic...)
	if tr.has(HookFork) || tr.has(HookExit) {
		t.Errorf("hooks %v: process hooks attached without FollowPIDs", tr.Hooks())
	}
}

// userRetAsVariant tells whether a SYN-SENT event's word at the user stack
// pointer is as the transitions' variant promises: set, or 0 where the
// variant lacks it (LackUserRet).
func userRetAsVariant(t *testing.T, tr *Tracer, e Event) bool {
	t.Helper()
	if tr.Capability(CapTransitions).Lacking(LackUserRet) {
		return e.UserRet == 0
	}
	return e.UserRet != 0
}

// firstState is the first transition among evs, as wantStates lists them.
func firstState(evs []Event) [2]uint8 {
	for _, e := range evs {
		if e.Kind == KindState {
			return [2]uint8{e.OldState, e.NewState}
		}
	}
	return [2]uint8{}
}
