package snapshot_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// rcSockets makes sockets on the calling thread (in the test's namespace)
// and closes them when the test ends.
type rcSockets struct {
	fds []int
	err error // the first error; later calls do nothing
}

func (s *rcSockets) fail(what string, err error) {
	if s.err == nil && err != nil {
		s.err = fmt.Errorf("%s: %w", what, err)
	}
}

func (s *rcSockets) socket(family int) int {
	if s.err != nil {
		return -1
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		s.fail("creating TCP socket", err)
		return -1
	}
	s.fds = append(s.fds, fd)
	return fd
}

func (s *rcSockets) closeAll() {
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

func (s *rcSockets) close(fd int) {
	if s.err != nil {
		return
	}
	for i, f := range s.fds {
		if f == fd {
			s.fds = append(s.fds[:i], s.fds[i+1:]...)
			break
		}
	}
	s.fail("closing socket", unix.Close(fd))
}

func rcLoopback(v6 bool) (int, unix.Sockaddr) {
	if v6 {
		return unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	}
	return unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
}

// bound returns a TCP socket bound to the loopback (port chosen by the
// kernel) and its address.
func (s *rcSockets) bound(v6 bool) (int, unix.Sockaddr) {
	family, addr := rcLoopback(v6)
	fd := s.socket(family)
	if s.err != nil {
		return -1, nil
	}
	s.fail("binding", unix.Bind(fd, addr))
	sa, err := unix.Getsockname(fd)
	s.fail("reading the bound address", err)
	return fd, sa
}

func (s *rcSockets) listen(fd int) {
	if s.err == nil {
		s.fail("listening", unix.Listen(fd, 128))
	}
}

func (s *rcSockets) connect(family int, addr unix.Sockaddr) int {
	fd := s.socket(family)
	if s.err == nil {
		s.fail("connecting", unix.Connect(fd, addr))
	}
	return fd
}

func (s *rcSockets) accept(l int) int {
	if s.err != nil {
		return -1
	}
	fd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		s.fail("accepting", err)
		return -1
	}
	s.fds = append(s.fds, fd)
	return fd
}

// readEOF returns once the kernel processed the peer's FIN.
func (s *rcSockets) readEOF(fd int) {
	if s.err != nil {
		return
	}
	var b [1]byte
	n, err := unix.Read(fd, b[:])
	s.fail("reading to EOF", err)
	if s.err == nil && n != 0 {
		s.err = fmt.Errorf("reading to EOF: got %d bytes", n)
	}
}

// timeWait closes a connection made to the listener l the usual way, the
// client first, leaving a TIME-WAIT minisocket. The client shuts its side
// down and reads the server's FIN: its read returns 0 only once the kernel
// processed that FIN in FIN-WAIT-2, which puts the minisocket in place.
// With keepClient the client's fd stays open (its full socket in CLOSE:
// closed after use, never hashed again). The server lingers in LAST-ACK
// until the client's last ACK reaches it, asynchronously: callers wait for
// the counters to settle.
func (s *rcSockets) timeWait(l int, addr unix.Sockaddr, keepClient bool) {
	c := s.connect(unix.AF_INET, addr)
	a := s.accept(l)
	if s.err != nil {
		return
	}
	s.fail("shutting down the client", unix.Shutdown(c, unix.SHUT_WR))
	s.readEOF(a)
	s.close(a)
	s.readEOF(c)
	if !keepClient {
		s.close(c)
	}
}

// orphan leaves an orphan in FIN-WAIT-1: a client fills the connection
// until the server (which never reads) advertises a zero window, then
// closes; its FIN waits behind the data.
func (s *rcSockets) orphan(l int, addr unix.Sockaddr) {
	c := s.connect(unix.AF_INET, addr)
	s.accept(l)
	if s.err != nil {
		return
	}
	s.fail("making the client non-blocking", unix.SetNonblock(c, true))
	buf := make([]byte, 64<<10)
	for s.err == nil {
		_, err := unix.Write(c, buf)
		if err == unix.EAGAIN {
			break
		}
		s.fail("filling the connection", err)
	}
	s.close(c)
}

// rcNamespace is what TestReconcileRootNamespace puts in its namespace.
const (
	rcUnbound    = 7 // never-hashed, held by fds (4 IPv4, 3 IPv6)
	rcBound      = 2 // bound only
	rcPairs      = 3 // established pairs
	rcTimeWait   = 4 // TIME-WAIT, fds closed
	rcClosedUsed = 1 // TIME-WAIT whose client fd stays open (CLOSE, used)
)

func rcCounters(ns *nstest.NS) (snapshot.Sockstat, error) {
	var st snapshot.Sockstat
	err := ns.Do(func() error {
		var err error
		st, err = snapshot.ReadSockstat()
		return err
	})
	return st, err
}

// rcSettle waits, re-reading without sleeping, until the namespace's
// counters are want (the servers of TIME-WAIT connections are freed when
// the clients' last ACKs reach them).
func rcSettle(t *testing.T, ns *nstest.NS, want snapshot.NSCounters) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; runtime.Gosched() {
		st, err := rcCounters(ns)
		if err != nil {
			t.Fatal(err)
		}
		got := snapshot.NSCounters{InUse: st.TCP.InUse, InUse6: st.TCP6.InUse, TW: st.TCP.TW}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace counters %+v, want %+v", got, want)
		}
	}
}

func rcFind(t *testing.T, nss []snapshot.ReconcileNS, ino uint64) snapshot.ReconcileNS {
	t.Helper()
	for _, n := range nss {
		if n.NetNS == ino {
			return n
		}
	}
	t.Fatalf("namespace %d not among %+v", ino, nss)
	return snapshot.ReconcileNS{}
}

// TestReconcileRootNamespace fills a namespace with TCP sockets of every
// kind the counters treat differently, gathers from outside it (--netns
// its path) and checks each count against what was made and against the
// namespace's counters.
func TestReconcileRootNamespace(t *testing.T) {
	ns := nstest.New(t)
	s := &rcSockets{}
	t.Cleanup(s.closeAll)
	err := ns.Do(func() error {
		for i := range rcUnbound {
			s.socket([]int{unix.AF_INET, unix.AF_INET6}[i%2])
		}
		for range rcBound {
			s.bound(false)
		}
		l, addr := s.bound(false)
		s.listen(l)
		for range rcPairs {
			s.connect(unix.AF_INET, addr)
			s.accept(l)
		}
		for range rcTimeWait {
			s.timeWait(l, addr, false)
		}
		for range rcClosedUsed {
			s.timeWait(l, addr, true)
		}
		s.orphan(l, addr)
		// A dual-stack IPv6 listener accepting an IPv4 connection: the
		// client is a TCP socket, the accepted one a TCP6 socket.
		l6 := s.socket(unix.AF_INET6)
		s.fail("binding the IPv6 listener", unix.Bind(l6, &unix.SockaddrInet6{}))
		s.listen(l6)
		sa6, err := unix.Getsockname(l6)
		s.fail("reading the IPv6 listener's address", err)
		if s.err != nil {
			return s.err
		}
		s.connect(unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: sa6.(*unix.SockaddrInet6).Port})
		s.accept(l6)
		// A request socket: TCP_DEFER_ACCEPT drops the bare final ACK,
		// so the connection stays a request until data comes.
		ld, daddr := s.bound(false)
		s.fail("setting TCP_DEFER_ACCEPT", unix.SetsockoptInt(ld, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 60))
		s.listen(ld)
		s.connect(unix.AF_INET, daddr)
		// A child nobody accepts (last: accept takes the queue's head).
		s.connect(unix.AF_INET, addr)
		return s.err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Hashed IPv4: 2 listeners; established: the pairs, the orphan's
	// server, the IPv4 client of l6, the deferred client, the unaccepted
	// pair; the orphan in FIN-WAIT-1.
	want4 := snapshot.TCPCount{Listen: 2, Established: 2*rcPairs + 1 + 1 + 1 + 2, FinWait1: 1,
		Orphans: 1, Unaccepted: 1, BoundInactive: int64(boundInactiveShown()), TimeWait: rcTimeWait + rcClosedUsed, Request: 1}
	want4.Hashed = want4.Listen + want4.Established + want4.FinWait1
	want6 := snapshot.TCPCount{Listen: 1, Established: 1, Hashed: 2}
	rcSettle(t, ns, snapshot.NSCounters{InUse: want4.Hashed, InUse6: want6.Hashed, TW: want4.TimeWait})

	in, err := snapshot.GatherReconcile(snapshot.ReconcileOptions{ThisNetNS: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if !in.Inventory {
		// A kernel without the fd iterator must say which feature it
		// lacks (5.10: bpf_sock_from_file); the rest needs the inventory.
		if _, c, err := tracer.ProbeInventory(tracer.NetNS{}); err != nil && c.Needs != "" {
			t.Skipf("this kernel lacks %s: no fd inventory to reconcile", c.Needs)
		}
		t.Fatalf("no inventory: %s", in.InventoryError)
	}
	got := rcFind(t, in.Namespaces, ns.Inode())
	if !got.This || !got.Entered || got.Source != ns.Path() || in.ThisNetNS != ns.Inode() {
		t.Errorf("namespace %+v (this %d)", got, in.ThisNetNS)
	}
	if got.V4 != want4 {
		t.Errorf("IPv4\n got %+v\nwant %+v", got.V4, want4)
	}
	if got.V6 != want6 {
		t.Errorf("IPv6\n got %+v\nwant %+v", got.V6, want6)
	}
	wantCounters := snapshot.NSCounters{InUse: want4.Hashed, InUse6: want6.Hashed, TW: want4.TimeWait}
	if got.Sockstat != wantCounters || got.SockstatAfter != wantCounters {
		t.Errorf("counters %+v / %+v, want %+v", got.Sockstat, got.SockstatAfter, wantCounters)
	}
	// Every TCP socket held here: never hashed (the unbound ones, and the
	// client kept in CLOSE), the rest in the dump.
	// Listener, pairs, the orphan's server; l6, its client and the
	// accepted socket; the deferring listener and its client; the client
	// whose child nobody accepted.
	held := int64(rcUnbound + rcBound + rcClosedUsed + 1 + 2*rcPairs + 1 + 3 + 2 + 1)
	// Before 6.5 no dump lists the bound-only ones (TCP_BOUND_INACTIVE):
	// never used, as far as the fds tell.
	unlisted := int64(rcBound - boundInactiveShown())
	wantFDs := snapshot.FDCount{Sockets: held, Dumped: held - rcUnbound - rcClosedUsed - unlisted,
		NeverUsed: rcUnbound + unlisted, ClosedAfterUse: rcClosedUsed}
	if got.FDs != wantFDs {
		t.Errorf("fds\n got %+v\nwant %+v", got.FDs, wantFDs)
	}

	r := snapshot.Reconcile(in)
	for _, row := range r.Rows {
		if row.NetNS == ns.Inode() && (row.Diff != 0 || row.Sockstat != row.SockstatAfter) {
			t.Errorf("row %+v", row)
		}
	}
	c := r.Closed
	if c.InUse != wantCounters.InUse || c.InUse6 != wantCounters.InUse6 || c.TW != wantCounters.TW ||
		c.SS != c.Alloc-(c.InUse+c.InUse6-c.TW) || c.SS != c.NeverHashed+c.TimeWait+c.OtherNamespaces+c.Changed+c.Rest {
		t.Errorf("closed %+v", c)
	}
	// Global numbers move with the whole machine: show them.
	t.Logf("alloc %+v\nverdict: %s", r.Alloc, r.Verdict)
}

// TestReconcileRootNoInventory: without the inventory, reconcile still
// compares every namespace's counters and leaves alloc's never-hashed
// sockets unexplained, saying why.
func TestReconcileRootNoInventory(t *testing.T) {
	ns := nstest.New(t)
	s := &rcSockets{}
	t.Cleanup(s.closeAll)
	err := ns.Do(func() error {
		for range rcUnbound {
			s.socket(unix.AF_INET)
		}
		l, addr := s.bound(true)
		s.listen(l)
		s.connect(unix.AF_INET6, addr)
		s.accept(l)
		return s.err
	})
	if err != nil {
		t.Fatal(err)
	}
	denied := func(tracer.NetNS) ([]tracer.FD, error) {
		return nil, fmt.Errorf("%w: loading BPF programs needs CAP_BPF", tracer.ErrPermission)
	}
	in, err := snapshot.GatherReconcile(snapshot.ReconcileOptions{ThisNetNS: ns.Path(), Inventory: denied})
	if err != nil {
		t.Fatal(err)
	}
	if in.Inventory || !strings.Contains(in.InventoryError, "permission denied") {
		t.Fatalf("inventory %v %q", in.Inventory, in.InventoryError)
	}
	got := rcFind(t, in.Namespaces, ns.Inode())
	if got.V6.Hashed != 3 || got.V4.Hashed != 0 || got.Sockstat.InUse6 != 3 || got.FDs != (snapshot.FDCount{}) {
		t.Errorf("namespace %+v", got)
	}
	r := snapshot.Reconcile(in)
	if !strings.Contains(r.Explanations[0], "no fd inventory (permission denied") {
		t.Errorf("explanations %q", r.Explanations)
	}
	if r.Alloc.NeverUsed != 0 || r.Alloc.ClosedAfterUse != 0 {
		t.Errorf("alloc %+v", r.Alloc)
	}
	// The unbound sockets are in alloc and found nowhere: unexplained,
	// unless alloc moved by as much during the reads (other tests).
	if r.Alloc.Unexplained == 0 {
		t.Logf("alloc moved during the reads, covering the gap: %+v", r.Alloc)
	} else if !strings.Contains(r.Verdict, "sockets unexplained (alloc:") || !strings.Contains(r.Verdict, "without the fd inventory sstrace cannot tell them apart") {
		t.Errorf("verdict %q", r.Verdict)
	}
}

// boundInactiveShown is rcBound where sock_diag lists bound-only TCP
// sockets (state bit 13, TCP_BOUND_INACTIVE: 6.5+), else 0.
func boundInactiveShown() int {
	if _, v := nstest.KernelVersion(); v < 605 {
		return 0
	}
	return rcBound
}
