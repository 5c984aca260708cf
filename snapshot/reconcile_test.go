package snapshot

import (
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// Rows as a 6.18 dump reports them (see the comment at the top of
// reconcile.go).
func rcFullRow(state uint8, inode uint32, cookie uint64) Socket {
	return Socket{Family: unix.AF_INET, State: state, Inode: inode, Cookie: cookie, HasShutdown: true}
}

func rcTWRow(state uint8, cookie uint64) Socket {
	return Socket{Family: unix.AF_INET, State: state, Timer: 3, Cookie: cookie}
}

func rcRequestRow(cookie uint64) Socket {
	return Socket{Family: unix.AF_INET, State: StateSynRecv, Timer: 1, Cookie: cookie}
}

func TestReconcileCountTCP(t *testing.T) {
	socks := []Socket{
		rcFullRow(StateListen, 10, 1),
		rcFullRow(StateListen, 11, 2),
		rcFullRow(StateEstablished, 12, 3),
		rcFullRow(StateEstablished, 0, 4), // in the accept queue
		rcFullRow(StateCloseWait, 0, 5),   // in the accept queue, peer closed
		rcFullRow(StateSynRecv, 0, 6),     // a Fast Open child: full, not accepted
		rcFullRow(StateSynSent, 13, 7),
		rcFullRow(StateFinWait1, 0, 8), // orphans
		rcFullRow(StateFinWait2, 0, 9),
		rcFullRow(StateLastAck, 0, 10),
		rcFullRow(StateClosing, 0, 11),
		rcFullRow(StateFinWait1, 14, 12), // shut down, still held
		rcFullRow(StateCloseWait, 15, 13),
		rcFullRow(StateBoundInactive, 16, 14),
		rcFullRow(StateClose, 17, 15), // closing while dumped: not hashed
		rcTWRow(StateTimeWait, 16),
		rcTWRow(StateFinWait2, 17), // a minisocket standing in for an orphan in FIN-WAIT-2
		rcRequestRow(18),
		rcRequestRow(19),
	}
	got := CountTCP(socks)
	want := TCPCount{
		Listen: 2, Established: 2, SynSent: 1, SynRecv: 1, FinWait1: 2, FinWait2: 1, CloseWait: 2, LastAck: 1, Closing: 1,
		Hashed: 13, Orphans: 4, Unaccepted: 3, BoundInactive: 1, TimeWait: 2, Request: 2,
	}
	if got != want {
		t.Errorf("CountTCP\n got %+v\nwant %+v", got, want)
	}
	var sum TCPCount
	sum.Add(got)
	sum.Add(got)
	if sum.Hashed != 26 || sum.Request != 4 || sum.Orphans != 8 {
		t.Errorf("Add: %+v", sum)
	}
}

func rcFD(netns uint32, cookie uint64, inode uint32, proto uint16, state uint8, used bool) tracer.FD {
	return tracer.FD{NetNS: netns, Cookie: cookie, Inode: inode, Family: unix.AF_INET, Type: unix.SOCK_STREAM,
		Protocol: proto, State: state, WasUsed: used}
}

func TestReconcileClassifyFDs(t *testing.T) {
	dumped := NewDumpedSet()
	dumped.Add([]Socket{
		rcFullRow(StateListen, 100, 1),
		rcFullRow(StateEstablished, 101, 2),
		rcFullRow(StateBoundInactive, 102, 3),
		rcFullRow(StateBoundInactive, 200, 50), // an MPTCP socket's bound first subflow: its file's inode
		rcTWRow(StateTimeWait, 4),              // the minisocket of cookie 4, whose full socket an fd still holds
	})
	const a, b = 7, 8
	fds := []tracer.FD{
		rcFD(a, 1, 100, unix.IPPROTO_TCP, StateListen, true),
		rcFD(a, 1, 100, unix.IPPROTO_TCP, StateListen, true), // the same socket in another fd (fork, dup)
		rcFD(a, 2, 101, unix.IPPROTO_TCP, StateEstablished, true),
		rcFD(a, 3, 102, unix.IPPROTO_TCP, StateClose, false),
		rcFD(a, 4, 103, unix.IPPROTO_TCP, StateClose, true), // closed after TIME-WAIT took its place
		rcFD(a, 5, 104, unix.IPPROTO_TCP, StateClose, false),
		rcFD(a, 6, 105, unix.IPPROTO_TCP, StateClose, false),
		rcFD(a, 9, 106, unix.IPPROTO_TCP, StateEstablished, true), // connected after its namespace was dumped
		rcFD(a, 60, 200, unix.IPPROTO_MPTCP, StateClose, false),   // bound: subflow dumped
		rcFD(a, 61, 201, unix.IPPROTO_MPTCP, StateClose, false),   // unbound or failed connect
		rcFD(a, 62, 202, unix.IPPROTO_MPTCP, StateListen, true),
		rcFD(b, 20, 300, unix.IPPROTO_TCP, StateClose, false),
		rcFD(b, 21, 301, unix.IPPROTO_TCP, StateEstablished, true),
		rcFD(b, 0, 302, unix.IPPROTO_TCP, StateClose, false), // no cookie: the inode identifies it
		rcFD(b, 0, 302, unix.IPPROTO_TCP, StateClose, false),
		{NetNS: a, Cookie: 70, Family: unix.AF_INET, Type: unix.SOCK_DGRAM, Protocol: unix.IPPROTO_UDP},
		{NetNS: a, Cookie: 71, Family: unix.AF_UNIX, Type: unix.SOCK_STREAM},
	}
	got := ClassifyFDs(fds, dumped)
	if len(got) != 2 {
		t.Fatalf("namespaces %v", got)
	}
	wantA := FDCount{Sockets: 7, Dumped: 3, NeverUsed: 2, ClosedAfterUse: 1, Open: 1, MPTCP: 3, MPTCPUnmatched: 1}
	wantB := FDCount{Sockets: 3, NeverUsed: 2, Open: 1}
	if *got[a] != wantA {
		t.Errorf("namespace a\n got %+v\nwant %+v", *got[a], wantA)
	}
	if *got[b] != wantB {
		t.Errorf("namespace b\n got %+v\nwant %+v", *got[b], wantB)
	}
	if got[a].NeverHashed() != 3 {
		t.Errorf("NeverHashed %d", got[a].NeverHashed())
	}
}

func TestReconcileSettle(t *testing.T) {
	for _, c := range []struct {
		before, after, got     int64
		diff, moved, unexplain int64
	}{
		{10, 10, 10, 0, 0, 0},
		{10, 10, 8, 2, 0, 2},
		{10, 10, 12, -2, 0, -2},
		{10, 14, 12, -2, -2, 0}, // within the movement
		{14, 10, 12, 2, 2, 0},
		{10, 14, 16, -6, -4, -2}, // beyond it
		{10, 14, 7, 3, 0, 3},
		{14, 10, 7, 7, 4, 3},
	} {
		d, m, u := settleCounter(c.before, c.after, c.got)
		if d != c.diff || m != c.moved || u != c.unexplain {
			t.Errorf("settleCounter(%d, %d, %d) = %d, %d, %d; want %d, %d, %d", c.before, c.after, c.got, d, m, u, c.diff, c.moved, c.unexplain)
		}
	}
}

// rcLeakNS is the namespace of the measurement in PLATFORM.md: 6,000 leaked
// sockets, 2 TIME-WAIT, ss said closed 6002.
func rcLeakNS(ino uint64) ReconcileNS {
	return ReconcileNS{
		NetNS: ino, This: true, Entered: true, HasV6: true,
		Sockstat:      NSCounters{InUse: 3, InUse6: 1, TW: 2},
		SockstatAfter: NSCounters{InUse: 3, InUse6: 1, TW: 2},
		V4:            TCPCount{Listen: 1, Established: 2, Hashed: 3, TimeWait: 2},
		V6:            TCPCount{Listen: 1, Hashed: 1},
		FDs:           FDCount{Sockets: 6004, Dumped: 4, NeverUsed: 6000},
	}
}

func rcRowOf(t *testing.T, r Reconciliation, counter string, netns uint64) Row {
	t.Helper()
	for _, row := range r.Rows {
		if row.Counter == counter && row.NetNS == netns {
			return row
		}
	}
	t.Fatalf("no row %s %d in %+v", counter, netns, r.Rows)
	return Row{}
}

// rcCheckClosed checks that ss's closed is the sum of its parts.
func rcCheckClosed(t *testing.T, c ClosedParts) {
	t.Helper()
	if c.SS != c.Alloc-(c.InUse+c.InUse6-c.TW) {
		t.Errorf("closed %d is not alloc − (inuse + inuse6 − tw): %+v", c.SS, c)
	}
	if sum := c.NeverHashed + c.TimeWait + c.OtherNamespaces + c.Changed + c.Rest; sum != c.SS {
		t.Errorf("closed %d, its parts add up to %d: %+v", c.SS, sum, c)
	}
	if c.NeverHashed != c.BoundInactive+c.HeldByFDs {
		t.Errorf("never hashed %d != bound %d + held %d", c.NeverHashed, c.BoundInactive, c.HeldByFDs)
	}
}

func TestReconcileLeaks(t *testing.T) {
	in := ReconcileInput{
		ThisNetNS: 1, AllocBefore: 6004, AllocAfter: 6004, Inventory: true, Attempts: 1,
		Namespaces: []ReconcileNS{rcLeakNS(1)},
	}
	r := Reconcile(in)
	if r.Verdict != "every number explained" || r.Unexplained != 0 {
		t.Errorf("verdict %q (%d)", r.Verdict, r.Unexplained)
	}
	for _, c := range []struct {
		name          string
		sockstat, got int64
	}{{"inuse", 3, 3}, {"inuse6", 1, 1}, {"tw", 2, 2}} {
		row := rcRowOf(t, r, c.name, 1)
		if row.Sockstat != c.sockstat || row.Sstrace != c.got || row.Diff != 0 || row.Unexplained != 0 {
			t.Errorf("row %+v", row)
		}
	}
	a := rcRowOf(t, r, "alloc", 0)
	if a.Sstrace != 6004 || a.Diff != 0 {
		t.Errorf("alloc row %+v", a)
	}
	c := r.Closed
	rcCheckClosed(t, c)
	if c.SS != 6002 || c.NeverHashed != 6000 || c.HeldByFDs != 6000 || c.TimeWait != 2 || c.OtherNamespaces != 0 || c.Rest != 0 {
		t.Errorf("closed %+v", c)
	}
	if c.ByCounters != 6000 || c.Namespaces != 1 {
		t.Errorf("never hashed by the counters %d over %d namespaces", c.ByCounters, c.Namespaces)
	}
	if len(r.Explanations) != 0 {
		t.Errorf("explanations %q", r.Explanations)
	}
}

func TestReconcileNamespaces(t *testing.T) {
	other := ReconcileNS{
		NetNS: 2, Entered: true, HasV6: true,
		Sockstat:      NSCounters{InUse: 5, InUse6: 2, TW: 1},
		SockstatAfter: NSCounters{InUse: 5, InUse6: 2, TW: 1},
		V4:            TCPCount{Listen: 1, Established: 3, FinWait1: 1, Hashed: 5, Orphans: 1, TimeWait: 1},
		V6:            TCPCount{Listen: 1, Established: 1, Hashed: 2, BoundInactive: 3},
		FDs:           FDCount{Sockets: 10, Dumped: 8, ClosedAfterUse: 2},
	}
	hidden := ReconcileNS{NetNS: 3, Error: "found only through the fd inventory",
		FDs: FDCount{Sockets: 4, NeverUsed: 1, Open: 3}}
	in := ReconcileInput{
		ThisNetNS: 1, Inventory: true, Attempts: 1,
		// 4 + 6000 here, 7 hashed + 3 bound + 2 held there, 4 held in 3.
		AllocBefore: 6004 + 12 + 4, AllocAfter: 6004 + 12 + 4,
		OrphanBefore: 1, OrphanAfter: 1,
		Namespaces: []ReconcileNS{hidden, other, rcLeakNS(1)},
	}
	r := Reconcile(in)
	if r.Namespaces[0].NetNS != 1 || r.Namespaces[1].NetNS != 2 || r.Namespaces[2].NetNS != 3 {
		t.Errorf("order: this, entered, not entered: %+v", r.Namespaces)
	}
	if r.Verdict != "every number explained" {
		t.Errorf("verdict %q", r.Verdict)
	}
	a := r.Alloc
	if a.Hashed != 11 || a.BoundInactive != 3 || a.NeverUsed != 6000 || a.ClosedAfterUse != 2 || a.OtherNS != 4 || a.OtherNSInClose != 1 || a.Found != 6020 || a.Gap != 0 {
		t.Errorf("alloc %+v", a)
	}
	if o := rcRowOf(t, r, "orphan", 0); o.Sstrace != 1 || o.Diff != 0 {
		t.Errorf("orphan %+v", o)
	}
	c := r.Closed
	rcCheckClosed(t, c)
	// closed = 6020 − (3 + 1 − 2) = 6018: never hashed 6000 + 3 bound + 2
	// + 1 held (the namespace not entered), TIME-WAIT 2, other namespaces
	// 7 hashed + 3 open in the one not entered.
	if c.SS != 6018 || c.NeverHashed != 6006 || c.BoundInactive != 3 || c.TimeWait != 2 || c.OtherNamespaces != 10 || c.Rest != 0 {
		t.Errorf("closed %+v", c)
	}
	if c.ByCounters != 6020-11 || c.Namespaces != 2 {
		t.Errorf("by counters %d over %d", c.ByCounters, c.Namespaces)
	}
	if !strings.Contains(strings.Join(r.Explanations, "\n"), "1 namespace sstrace could not enter: 4 TCP sockets held by fds there") {
		t.Errorf("explanations %q", r.Explanations)
	}
}

func TestReconcileMoved(t *testing.T) {
	ns := rcLeakNS(1)
	ns.SockstatAfter = NSCounters{InUse: 5, InUse6: 1, TW: 2} // two connections made during the dump
	ns.V4.Established, ns.V4.Hashed = 3, 4
	in := ReconcileInput{
		ThisNetNS: 1, AllocBefore: 6004, AllocAfter: 6010, Inventory: true, Attempts: 3,
		Namespaces: []ReconcileNS{ns},
	}
	r := Reconcile(in)
	if r.Verdict != "every number explained" {
		t.Errorf("verdict %q", r.Verdict)
	}
	if row := rcRowOf(t, r, "inuse", 1); row.Diff != -1 || row.Moved != -1 || row.Unexplained != 0 {
		t.Errorf("inuse %+v", row)
	}
	if a := r.Alloc; a.Found != 6005 || a.Gap != -1 || a.Moved != -1 || a.Unexplained != 0 {
		t.Errorf("alloc %+v", a)
	}
	ex := strings.Join(r.Explanations, "\n")
	if !strings.Contains(ex, "sockets created/freed during the reads") || !strings.Contains(ex, "alloc moved 6004 → 6010") {
		t.Errorf("explanations %q", r.Explanations)
	}
	rcCheckClosed(t, r.Closed)
}

func TestReconcileUnexplained(t *testing.T) {
	ns := rcLeakNS(1)
	ns.FDs.MPTCP, ns.FDs.MPTCPUnmatched = 4, 4
	in := ReconcileInput{
		ThisNetNS: 1, AllocBefore: 6004 + 7, AllocAfter: 6004 + 7, Inventory: true, Attempts: 1,
		Namespaces: []ReconcileNS{ns},
	}
	r := Reconcile(in)
	if r.Unexplained != 7 || r.Alloc.Unexplained != 7 {
		t.Fatalf("unexplained %d, alloc %+v", r.Unexplained, r.Alloc)
	}
	for _, s := range []string{"7 sockets unexplained (alloc: 7 sockets found nowhere: kernel sockets with no fd that are not hashed",
		"up to 4 may be unhashed first subflows of MPTCP sockets"} {
		if !strings.Contains(r.Verdict, s) {
			t.Errorf("verdict %q lacks %q", r.Verdict, s)
		}
	}
	rcCheckClosed(t, r.Closed)
	if r.Closed.Rest != 7 {
		t.Errorf("closed %+v", r.Closed)
	}

	// A socket missing from a stable dump shows in inuse and in alloc:
	// counted once.
	ns = rcLeakNS(1)
	ns.Sockstat.InUse, ns.SockstatAfter.InUse = 4, 4
	ns.Sockstat.TW, ns.SockstatAfter.TW = 3, 3
	in = ReconcileInput{ThisNetNS: 1, AllocBefore: 6005, AllocAfter: 6005, OrphanBefore: 1, OrphanAfter: 1,
		Inventory: true, Namespaces: []ReconcileNS{ns}}
	r = Reconcile(in)
	if r.Unexplained != 2 {
		t.Errorf("unexplained %d, want 2 (one socket in inuse, alloc and orphan; one TIME-WAIT): %s", r.Unexplained, r.Verdict)
	}
	for _, s := range []string{"orphan: 1 orphan in no dump", "inuse of net:[1]: +1", "tw of net:[1]: +1"} {
		if !strings.Contains(r.Verdict, s) {
			t.Errorf("verdict %q lacks %q", r.Verdict, s)
		}
	}
	rcCheckClosed(t, r.Closed)

	// More found than alloc has.
	in = ReconcileInput{ThisNetNS: 1, AllocBefore: 6000, AllocAfter: 6000, Inventory: true,
		Namespaces: []ReconcileNS{rcLeakNS(1)}}
	if r = Reconcile(in); r.Unexplained != 4 || !strings.Contains(r.Verdict, "sstrace counted 4 sockets more than alloc has") {
		t.Errorf("verdict %q", r.Verdict)
	}
}

func TestReconcileNoInventory(t *testing.T) {
	ns := rcLeakNS(1)
	ns.FDs = FDCount{}
	in := ReconcileInput{ThisNetNS: 1, AllocBefore: 6004, AllocAfter: 6004,
		InventoryError: "permission denied: loading BPF programs needs CAP_BPF, CAP_PERFMON",
		Namespaces:     []ReconcileNS{ns}}
	r := Reconcile(in)
	if r.Inventory || r.Unexplained != 6000 {
		t.Errorf("unexplained %d", r.Unexplained)
	}
	if !strings.HasPrefix(r.Verdict, "6000 sockets unexplained (alloc: 6000 sockets not hashed and not found, held by processes or by the kernel") {
		t.Errorf("verdict %q", r.Verdict)
	}
	if !strings.Contains(r.Explanations[0], "no fd inventory (permission denied") {
		t.Errorf("explanations %q", r.Explanations)
	}
	if row := rcRowOf(t, r, "inuse", 1); row.Diff != 0 {
		t.Errorf("per-namespace rows still compare: %+v", row)
	}
	rcCheckClosed(t, r.Closed)
}

// TestReconcileClosedIdentity: whatever the inputs, closed is the sum of
// its parts and the alloc parts add up.
func TestReconcileClosedIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := func() int64 { return rng.Int64N(50) }
	for i := 0; i < 500; i++ {
		var in ReconcileInput
		in.Inventory = rng.IntN(4) != 0
		in.AllocBefore, in.AllocAfter = n()*10, n()*10
		in.OrphanBefore, in.OrphanAfter = n(), n()
		for k := range 1 + rng.IntN(4) {
			ns := ReconcileNS{NetNS: uint64(k + 1), Entered: rng.IntN(5) != 0, HasV6: rng.IntN(2) == 0,
				Sockstat:      NSCounters{InUse: n(), InUse6: n(), TW: n()},
				SockstatAfter: NSCounters{InUse: n(), InUse6: n(), TW: n()},
				V4:            TCPCount{Hashed: n(), BoundInactive: n(), TimeWait: n(), Orphans: n()},
				V6:            TCPCount{Hashed: n(), BoundInactive: n(), TimeWait: n()},
				FDs:           FDCount{Sockets: n(), NeverUsed: n(), ClosedAfterUse: n(), Open: n(), MPTCPUnmatched: n()},
			}
			if k == 0 {
				ns.Entered, ns.This = true, true
				in.ThisNetNS = ns.NetNS
			}
			in.Namespaces = append(in.Namespaces, ns)
		}
		r := Reconcile(in)
		rcCheckClosed(t, r.Closed)
		a := r.Alloc
		if a.Found != a.Hashed+a.BoundInactive+a.NeverUsed+a.ClosedAfterUse+a.Changed+a.OtherNS || a.Gap != a.Alloc-a.Found || a.Gap != a.Moved+a.Unexplained {
			t.Fatalf("alloc parts %+v", a)
		}
		for _, row := range r.Rows {
			if row.Diff != row.Sockstat-row.Sstrace || row.Diff != row.Moved+row.Unexplained {
				t.Fatalf("row %+v", row)
			}
		}
		if (r.Unexplained == 0) != (r.Verdict == "every number explained") {
			t.Fatalf("unexplained %d, verdict %q", r.Unexplained, r.Verdict)
		}
	}
}

func TestReconcileNSMounts(t *testing.T) {
	const mi = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw
611 25 0:4 net:[4026532290] /run/netns/blue rw shared:309 - nsfs nsfs rw
612 25 0:4 net:[4026532291] /run/docker/netns/with\040space rw - nsfs nsfs rw
613 25 0:4 mnt:[4026532292] /run/mntns rw - nsfs nsfs rw
614 25 0:4 net:[4026532293] /tmp/x rw - tmpfs tmpfs rw
`
	got := parseNSMounts(mi)
	want := [][2]string{{"net:[4026532290]", "/run/netns/blue"}, {"net:[4026532291]", "/run/docker/netns/with space"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseNSMounts = %q, want %q", got, want)
	}
	for _, c := range []struct {
		in   string
		ino  uint64
		okay bool
	}{{"net:[4026531840]", 4026531840, true}, {"mnt:[4026531840]", 0, false}, {"net:[x]", 0, false}, {"socket:[12]", 0, false}, {"net:[12", 0, false}} {
		ino, ok := parseNSLink(c.in)
		if ino != c.ino || ok != c.okay {
			t.Errorf("parseNSLink(%q) = %d, %v", c.in, ino, ok)
		}
	}
}
