package snapshot

import (
	"sstrace/snapshot/procfs"

	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// Reconciling the kernel's TCP counters with sstrace's enumeration.
//
// What each counter of /proc/net/sockstat{,6} counts (Linux 6.18, measured):
//
//   - TCP inuse / TCP6 inuse (per namespace): full sockets of the family's
//     protocol (tcp_prot, tcpv6_prot) hashed in the namespace: listeners and
//     everything in the established hash (SYN-SENT through LAST-ACK and
//     CLOSING, orphans and children not yet accepted included). Not
//     TIME-WAIT or request minisockets, not bound-only sockets (they are in
//     the bind table only) and not unbound ones. A connection an IPv6
//     listener accepted from an IPv4 peer is a TCP6 socket (v4-mapped).
//     MPTCP subflows are TCP sockets and count here; the MPTCP socket a
//     process holds does not.
//   - tw (per namespace): TIME-WAIT minisockets of both families, including
//     those standing in for orphans that left FIN-WAIT-2.
//   - alloc (global): full TCP sockets of both families in every namespace,
//     hashed or not: unbound and bound-only ones, closed ones still held by
//     a process, orphans, children not yet accepted, MPTCP subflows. Not
//     minisockets.
//   - orphan (global): full sockets closed by their owner and not yet
//     destroyed.
//
// How sock_diag reports them (a dump asking every state, bit 13 included):
//
//   - full sockets carry INET_DIAG_SHUTDOWN (the kernel adds it to every
//     full socket) and the socket's inode, 0 when no file refers to it:
//     orphans (FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK) and children
//     waiting in an accept queue (ESTABLISHED, CLOSE-WAIT, SYN-RECV);
//   - TIME-WAIT minisockets: idiag_timer 3, inode 0, state TIME-WAIT or the
//     substate they replace (FIN-WAIT-2), no INET_DIAG_SHUTDOWN;
//   - request sockets: state SYN-RECV, idiag_timer 1, inode 0, no
//     INET_DIAG_SHUTDOWN;
//   - bound-only sockets: TCP_CLOSE, relabelled StateBoundInactive by Dump;
//   - MPTCP subflows carry the inode of the MPTCP socket's file.
//
// Never-hashed sockets (unbound, or closed after a reset or a failed
// connect) are in no dump: the fd inventory (iter/task_file) finds the ones
// a process holds. What remains of alloc are sockets with no fd that are not
// hashed (an MPTCP socket's first subflow after a failed connect, a child
// reset in an accept queue, sockets in flight in SCM_RIGHTS messages) and
// sockets of namespaces sstrace could not enter.

// TCPCount counts one namespace's TCP sockets of one family from a dump.
type TCPCount struct {
	// Full sockets in the listening and established hashes, by state.
	Listen      int64 `json:"listen"`
	Established int64 `json:"established"`
	SynSent     int64 `json:"syn_sent"`
	SynRecv     int64 `json:"syn_recv"` // full sockets (TCP Fast Open children), not request sockets
	FinWait1    int64 `json:"fin_wait1"`
	FinWait2    int64 `json:"fin_wait2"`
	CloseWait   int64 `json:"close_wait"`
	LastAck     int64 `json:"last_ack"`
	Closing     int64 `json:"closing"`
	// Hashed is the sum of the states above: what inuse counts.
	Hashed int64 `json:"hashed"`
	// Orphans and Unaccepted are hashed full sockets no file refers to
	// (inode 0): closed by their owner (FIN-WAIT-1, FIN-WAIT-2, CLOSING,
	// LAST-ACK), or waiting in a listener's accept queue.
	Orphans    int64 `json:"orphans"`
	Unaccepted int64 `json:"unaccepted"`
	// BoundInactive: bound, never listened on or connected (in the bind
	// table only; counted in alloc, not in inuse).
	BoundInactive int64 `json:"bound_inactive"`
	// Minisockets: not in alloc or inuse.
	TimeWait int64 `json:"time_wait"` // counted in tw
	Request  int64 `json:"request"`   // SYN-RECV request sockets, counted nowhere
}

// Add adds o to c.
func (c *TCPCount) Add(o TCPCount) {
	c.Listen += o.Listen
	c.Established += o.Established
	c.SynSent += o.SynSent
	c.SynRecv += o.SynRecv
	c.FinWait1 += o.FinWait1
	c.FinWait2 += o.FinWait2
	c.CloseWait += o.CloseWait
	c.LastAck += o.LastAck
	c.Closing += o.Closing
	c.Hashed += o.Hashed
	c.Orphans += o.Orphans
	c.Unaccepted += o.Unaccepted
	c.BoundInactive += o.BoundInactive
	c.TimeWait += o.TimeWait
	c.Request += o.Request
}

// tcpKind is what a dumped TCP row is.
type tcpKind uint8

const (
	kindFull tcpKind = iota
	kindTimeWait
	kindRequest
)

// diagTimerTimeWait is idiag_timer of a TIME-WAIT minisocket.
const diagTimerTimeWait = 3

func dumpKind(s *Socket) tcpKind {
	switch {
	case s.State == StateTimeWait || s.Timer == diagTimerTimeWait && !s.HasShutdown:
		return kindTimeWait
	case s.State == StateSynRecv && !s.HasShutdown && s.Inode == 0:
		return kindRequest
	}
	return kindFull
}

// CountTCP counts the rows of a TCP dump (one family or both; the caller
// splits them) by what they are.
func CountTCP(socks []Socket) TCPCount {
	var c TCPCount
	for i := range socks {
		c.add(&socks[i])
	}
	return c
}

func (c *TCPCount) add(s *Socket) {
	switch dumpKind(s) {
	case kindTimeWait:
		c.TimeWait++
		return
	case kindRequest:
		c.Request++
		return
	}
	hashed := true
	switch s.State {
	case StateListen:
		c.Listen++
	case StateEstablished:
		c.Established++
	case StateSynSent:
		c.SynSent++
	case StateSynRecv:
		c.SynRecv++
	case StateFinWait1:
		c.FinWait1++
	case StateFinWait2:
		c.FinWait2++
	case StateCloseWait:
		c.CloseWait++
	case StateLastAck:
		c.LastAck++
	case StateClosing:
		c.Closing++
	case StateBoundInactive:
		c.BoundInactive++
		hashed = false
	default:
		// StateClose: a socket closing while the dump ran (Dump
		// relabels the ones the kernel lists in TCP_CLOSE, so this is
		// only a dump asked without bit 13). Not hashed any more.
		hashed = false
	}
	if !hashed {
		return
	}
	c.Hashed++
	if s.Inode == 0 && s.State != StateListen {
		switch s.State {
		case StateFinWait1, StateFinWait2, StateClosing, StateLastAck:
			c.Orphans++
		default:
			c.Unaccepted++
		}
	}
}

// isFullTCP says whether a dumped row is a full socket (counted in alloc).
func isFullTCP(s *Socket) bool { return dumpKind(s) == kindFull }

// FDCount counts, for one namespace, the TCP sockets processes hold by fds
// (from the task_file inventory, each socket once however many fds refer to
// it) and what the dumps did not show of them.
type FDCount struct {
	// Sockets: distinct TCP sockets held by fds.
	Sockets int64 `json:"sockets"`
	// Dumped: the ones a dump of the namespace listed (hashed or bound).
	Dumped int64 `json:"dumped"`
	// In no dump, in CLOSE: never hashed or unhashed again. NeverUsed
	// never reached ESTABLISHED or LISTEN (unbound: leaks); ClosedAfterUse
	// did (reset, or closed after TIME-WAIT took its place while the fd
	// stays open).
	NeverUsed      int64 `json:"never_used"`
	ClosedAfterUse int64 `json:"closed_after_use"`
	// Open: in no dump and not in CLOSE. In a namespace sstrace entered, a
	// socket that changed state between the dump and the inventory; in one
	// it could not enter, a socket the dump would have shown.
	Open int64 `json:"open"`
	// MPTCP sockets held by fds (not TCP sockets: their subflows are), and
	// those in CLOSE with no subflow in any dump: each has no subflow
	// (never bound) or one that is not hashed (a failed connect), counted
	// in alloc and seen nowhere.
	MPTCP          int64 `json:"mptcp"`
	MPTCPUnmatched int64 `json:"mptcp_closed_unmatched"`
}

// NeverHashed is NeverUsed + ClosedAfterUse.
func (f FDCount) NeverHashed() int64 { return f.NeverUsed + f.ClosedAfterUse }

// DumpedSet is what the inventory is matched against: the cookies and
// inodes of the full TCP sockets the dumps listed.
type DumpedSet struct {
	Cookies map[uint64]struct{}
	Inodes  map[uint32]struct{}
}

// NewDumpedSet returns an empty set.
func NewDumpedSet() DumpedSet {
	return DumpedSet{Cookies: map[uint64]struct{}{}, Inodes: map[uint32]struct{}{}}
}

// Add records the full sockets of a dump. TIME-WAIT minisockets are left
// out: they carry the cookie of the full socket they replaced, which may
// still be open (in CLOSE) in a process.
func (d DumpedSet) Add(socks []Socket) {
	for i := range socks {
		s := &socks[i]
		if !isFullTCP(s) {
			continue
		}
		d.Cookies[s.Cookie] = struct{}{}
		if s.Inode != 0 {
			d.Inodes[s.Inode] = struct{}{}
		}
	}
}

// ClassifyFDs counts the inventory's TCP and MPTCP sockets per network
// namespace inode against the dumps.
func ClassifyFDs(fds []tracer.FD, dumped DumpedSet) map[uint64]*FDCount {
	out := map[uint64]*FDCount{}
	seen := make(map[uint64]struct{}, len(fds))
	for i := range fds {
		f := &fds[i]
		if f.Family != unix.AF_INET && f.Family != unix.AF_INET6 {
			continue
		}
		if f.Protocol != unix.IPPROTO_TCP && f.Protocol != unix.IPPROTO_MPTCP {
			continue
		}
		key := f.Cookie
		if key == 0 {
			key = 1<<63 | uint64(f.Inode) // no cookie: the inode is the identity
		}
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		c := out[uint64(f.NetNS)]
		if c == nil {
			c = &FDCount{}
			out[uint64(f.NetNS)] = c
		}
		if f.Protocol == unix.IPPROTO_MPTCP {
			c.MPTCP++
			if _, ok := dumped.Inodes[f.Inode]; !ok && f.State == StateClose {
				c.MPTCPUnmatched++
			}
			continue
		}
		c.Sockets++
		if _, ok := dumped.Cookies[f.Cookie]; ok && f.Cookie != 0 {
			c.Dumped++
			continue
		}
		switch {
		case f.State != StateClose:
			c.Open++
		case f.WasUsed:
			c.ClosedAfterUse++
		default:
			c.NeverUsed++
		}
	}
	return out
}

// NSCounters are a namespace's own TCP counters.
type NSCounters struct {
	InUse  int64 `json:"inuse"`  // TCP inuse
	InUse6 int64 `json:"inuse6"` // TCP6 inuse
	TW     int64 `json:"tw"`
}

func nsCounters(st Sockstat) NSCounters {
	return NSCounters{InUse: st.TCP.InUse, InUse6: st.TCP6.InUse, TW: st.TCP.TW}
}

// ReconcileNS is what was gathered for one network namespace.
type ReconcileNS struct {
	NetNS uint64 `json:"netns"` // inode
	This  bool   `json:"this"`  // the namespace ss -s would report on
	// Source is the path it was entered through.
	Source  string `json:"source,omitempty"`
	Entered bool   `json:"entered"`
	// Error says why it was not entered (a namespace only the fd
	// inventory revealed has no path to enter it by).
	Error string `json:"error,omitempty"`
	// Gone: every path to it vanished before sstrace could enter it (the
	// processes in it exited).
	Gone bool `json:"gone,omitempty"`
	// The namespace's counters read before and after its dumps.
	Sockstat      NSCounters `json:"sockstat"`
	SockstatAfter NSCounters `json:"sockstat_after"`
	HasV6         bool       `json:"has_v6"`
	V4            TCPCount   `json:"tcp4"`
	V6            TCPCount   `json:"tcp6"`
	FDs           FDCount    `json:"fds"`
}

// ReconcileInput is everything Reconcile works from.
type ReconcileInput struct {
	ThisNetNS uint64
	// Global counters, read before and after the whole enumeration.
	AllocBefore, AllocAfter   int64
	OrphanBefore, OrphanAfter int64
	Namespaces                []ReconcileNS
	// Inventory: the fd inventory ran; InventoryError says why not.
	Inventory      bool
	InventoryError string
	// ChildPIDNS: sstrace runs in a PID namespace below the initial one,
	// so the processes outside it (and the sockets they hold) are out of
	// the inventory's reach.
	ChildPIDNS bool
	Attempts   int
}

// Row is one counter set beside sstrace's count.
type Row struct {
	Counter string `json:"counter"`         // inuse, inuse6, tw, orphan, alloc
	NetNS   uint64 `json:"netns,omitempty"` // 0: a global counter
	// Sockstat before and after the reads, and what sstrace counted.
	Sockstat      int64 `json:"sockstat"`
	SockstatAfter int64 `json:"sockstat_after"`
	Sstrace       int64 `json:"sstrace"`
	// Diff = Sockstat - Sstrace = Moved + Unexplained: Moved is the part
	// within the counter's movement during the reads.
	Diff        int64  `json:"diff"`
	Moved       int64  `json:"moved"`
	Unexplained int64  `json:"unexplained"`
	Note        string `json:"note"`
}

// AllocParts is alloc taken apart.
type AllocParts struct {
	Alloc      int64 `json:"alloc"`
	AllocAfter int64 `json:"alloc_after"`
	// Found in the namespaces entered.
	Hashed        int64 `json:"hashed"`
	BoundInactive int64 `json:"bound_inactive"`
	// Held by fds, in no dump, in CLOSE (namespaces entered).
	NeverUsed      int64 `json:"never_used"`
	ClosedAfterUse int64 `json:"closed_after_use"`
	// Held by fds in no dump, not in CLOSE: changed state during the reads.
	Changed int64 `json:"changed"`
	// Held by fds in namespaces sstrace could not enter (InCLOSE of them
	// in CLOSE: never hashed).
	OtherNS        int64 `json:"other_namespaces"`
	OtherNSInClose int64 `json:"other_namespaces_in_close"`
	// Found is the sum of the above.
	Found int64 `json:"found"`
	// Gap = Alloc - Found = Moved + Unexplained.
	Gap         int64 `json:"gap"`
	Moved       int64 `json:"moved"`
	Unexplained int64 `json:"unexplained"`
	// MPTCPUnmatched MPTCP sockets in CLOSE may each hold one unhashed
	// subflow: up to that many of a positive gap.
	MPTCPUnmatched int64 `json:"mptcp_closed_unmatched"`
}

// ClosedParts is ss -s's "closed" for this namespace taken apart.
type ClosedParts struct {
	// SS = alloc - (inuse + inuse6 - tw), this namespace's counters.
	SS     int64 `json:"ss"`
	Alloc  int64 `json:"alloc"`
	InUse  int64 `json:"inuse"`
	InUse6 int64 `json:"inuse6"`
	TW     int64 `json:"tw"`
	// SS = NeverHashed + TimeWait + OtherNamespaces + Changed + Rest.
	NeverHashed     int64 `json:"never_hashed"` // every namespace: bound-only + held by fds in CLOSE
	BoundInactive   int64 `json:"bound_inactive"`
	HeldByFDs       int64 `json:"held_by_fds"`
	TimeWait        int64 `json:"time_wait"`        // this namespace's tw, added back by ss
	OtherNamespaces int64 `json:"other_namespaces"` // hashed sockets of other namespaces
	Changed         int64 `json:"changed"`
	Rest            int64 `json:"rest"` // alloc's gap, less this namespace's inuse differences
	// ByCounters = alloc - Σ (inuse + inuse6) over the namespaces
	// entered: the never-hashed count the counters give (plus the
	// sockets of namespaces sstrace could not enter).
	ByCounters int64 `json:"by_counters"`
	Namespaces int   `json:"namespaces"`
}

// Reconciliation is Reconcile's answer.
type Reconciliation struct {
	ThisNetNS      uint64        `json:"this_netns"`
	Attempts       int           `json:"attempts"`
	Inventory      bool          `json:"inventory"`
	InventoryError string        `json:"inventory_error,omitempty"`
	ChildPIDNS     bool          `json:"child_pid_namespace,omitempty"`
	Namespaces     []ReconcileNS `json:"namespaces"`
	Rows           []Row         `json:"rows"`
	Alloc          AllocParts    `json:"alloc"`
	Closed         ClosedParts   `json:"closed"`
	Explanations   []string      `json:"explanations"`
	Unexplained    int64         `json:"unexplained"`
	Verdict        string        `json:"verdict"`
}

// settleCounter splits the difference between a counter read before and after
// the enumeration and what sstrace counted: what lies within the counter's
// movement is Moved, the rest (signed: positive when the counter has more)
// is Unexplained.
func settleCounter(before, after, got int64) (diff, moved, unexplained int64) {
	diff = before - got
	lo, hi := min(before, after), max(before, after)
	switch {
	case got < lo:
		unexplained = lo - got
	case got > hi:
		unexplained = hi - got
	}
	return diff, diff - unexplained, unexplained
}

func reconcileAbs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Reconcile sets the counters beside the enumeration. It is pure
// arithmetic over in.
//
// The unexplained total is max(|alloc's|, |orphan's|, Σ|inuse rows'|) +
// Σ|tw rows'|: a socket missing from a dump shows in its namespace's inuse
// and again in alloc (and in orphan if it is one), so those are not added
// up; TIME-WAIT minisockets are in neither alloc nor inuse.
func Reconcile(in ReconcileInput) Reconciliation {
	r := Reconciliation{
		ThisNetNS: in.ThisNetNS, Attempts: in.Attempts, Inventory: in.Inventory,
		InventoryError: in.InventoryError, ChildPIDNS: in.ChildPIDNS,
		Namespaces: append([]ReconcileNS(nil), in.Namespaces...), Rows: []Row{}, Explanations: []string{},
	}
	sort.SliceStable(r.Namespaces, func(i, j int) bool {
		a, b := &r.Namespaces[i], &r.Namespaces[j]
		if a.This != b.This {
			return a.This
		}
		if a.Entered != b.Entered {
			return a.Entered
		}
		return a.NetNS < b.NetNS
	})
	explain := func(format string, args ...any) {
		r.Explanations = append(r.Explanations, fmt.Sprintf(format, args...))
	}

	var (
		a                         AllocParts
		orphans                   int64
		inuseUnexpl, twUnexpl     int64
		entered, notEntered, gone int
		this                      *ReconcileNS
		otherHashed, sumInUse     int64
		movedRows                 []string
		unexplainedRows           []string
		mptcpClosed               int64
	)
	a.Alloc, a.AllocAfter = in.AllocBefore, in.AllocAfter
	for i := range r.Namespaces {
		ns := &r.Namespaces[i]
		mptcpClosed += ns.FDs.MPTCPUnmatched
		if !ns.Entered {
			if ns.Gone && ns.FDs.Sockets == 0 {
				gone++
			} else {
				notEntered++
			}
			a.OtherNS += ns.FDs.Sockets
			a.OtherNSInClose += ns.FDs.NeverHashed()
			continue
		}
		entered++
		if ns.This {
			this = ns
		}
		a.Hashed += ns.V4.Hashed + ns.V6.Hashed
		a.BoundInactive += ns.V4.BoundInactive + ns.V6.BoundInactive
		a.NeverUsed += ns.FDs.NeverUsed
		a.ClosedAfterUse += ns.FDs.ClosedAfterUse
		a.Changed += ns.FDs.Open
		orphans += ns.V4.Orphans + ns.V6.Orphans
		sumInUse += ns.Sockstat.InUse + ns.Sockstat.InUse6
		if !ns.This {
			otherHashed += ns.V4.Hashed + ns.V6.Hashed
		}
		type cmp struct {
			name          string
			before, after int64
			got           int64
			note          string
		}
		cmps := []cmp{{"inuse", ns.Sockstat.InUse, ns.SockstatAfter.InUse, ns.V4.Hashed,
			hashedNote(ns.V4)}}
		if ns.HasV6 {
			cmps = append(cmps, cmp{"inuse6", ns.Sockstat.InUse6, ns.SockstatAfter.InUse6, ns.V6.Hashed,
				hashedNote(ns.V6)})
		}
		cmps = append(cmps, cmp{"tw", ns.Sockstat.TW, ns.SockstatAfter.TW, ns.V4.TimeWait + ns.V6.TimeWait,
			fmt.Sprintf("TIME-WAIT minisockets (%d IPv4, %d IPv6)", ns.V4.TimeWait, ns.V6.TimeWait)})
		for _, c := range cmps {
			diff, moved, un := settleCounter(c.before, c.after, c.got)
			r.Rows = append(r.Rows, Row{Counter: c.name, NetNS: ns.NetNS, Sockstat: c.before,
				SockstatAfter: c.after, Sstrace: c.got, Diff: diff, Moved: moved, Unexplained: un, Note: c.note})
			if moved != 0 {
				movedRows = append(movedRows, fmt.Sprintf("%s of %s moved %d → %d", c.name, NSName(ns.NetNS), c.before, c.after))
			}
			if un != 0 {
				unexplainedRows = append(unexplainedRows, fmt.Sprintf("%s of %s: %+d", c.name, NSName(ns.NetNS), un))
				if c.name == "tw" {
					twUnexpl += reconcileAbs(un)
				} else {
					inuseUnexpl += reconcileAbs(un)
				}
			}
		}
	}

	// orphan: global; the namespaces sstrace could not enter have theirs.
	odiff, omoved, oun := settleCounter(in.OrphanBefore, in.OrphanAfter, orphans)
	onote := "hashed full sockets no file refers to, in FIN-WAIT-1/2, CLOSING or LAST-ACK"
	r.Rows = append(r.Rows, Row{Counter: "orphan", Sockstat: in.OrphanBefore, SockstatAfter: in.OrphanAfter,
		Sstrace: orphans, Diff: odiff, Moved: omoved, Unexplained: oun, Note: onote})
	if omoved != 0 {
		movedRows = append(movedRows, fmt.Sprintf("orphan moved %d → %d", in.OrphanBefore, in.OrphanAfter))
	}

	// alloc: global.
	a.Found = a.Hashed + a.BoundInactive + a.NeverUsed + a.ClosedAfterUse + a.Changed + a.OtherNS
	a.Gap, a.Moved, a.Unexplained = settleCounter(a.Alloc, a.AllocAfter, a.Found)
	a.MPTCPUnmatched = mptcpClosed
	r.Alloc = a
	anote := fmt.Sprintf("hashed %d + bound-only %d", a.Hashed, a.BoundInactive)
	if in.Inventory {
		anote += fmt.Sprintf(" + held by fds, not hashed %d", a.NeverUsed+a.ClosedAfterUse)
		if a.Changed != 0 {
			anote += fmt.Sprintf(" + changed state %d", a.Changed)
		}
		if a.OtherNS != 0 {
			anote += fmt.Sprintf(" + held by fds in namespaces not entered %d", a.OtherNS)
		}
	} else {
		anote += " (no fd inventory)"
	}
	r.Rows = append(r.Rows, Row{Counter: "alloc", Sockstat: a.Alloc, SockstatAfter: a.AllocAfter,
		Sstrace: a.Found, Diff: a.Gap, Moved: a.Moved, Unexplained: a.Unexplained, Note: anote})
	if a.Moved != 0 {
		movedRows = append(movedRows, fmt.Sprintf("alloc moved %d → %d", a.Alloc, a.AllocAfter))
	}

	// ss's "closed", in this namespace.
	if this != nil {
		c := ClosedParts{
			Alloc: a.Alloc, InUse: this.Sockstat.InUse, InUse6: this.Sockstat.InUse6, TW: this.Sockstat.TW,
			BoundInactive: a.BoundInactive, HeldByFDs: a.NeverUsed + a.ClosedAfterUse + a.OtherNSInClose,
			TimeWait: this.Sockstat.TW, OtherNamespaces: otherHashed + (a.OtherNS - a.OtherNSInClose),
			Changed: a.Changed, Namespaces: entered,
		}
		c.SS = c.Alloc - (c.InUse + c.InUse6 - c.TW)
		c.NeverHashed = c.BoundInactive + c.HeldByFDs
		c.Rest = c.SS - (c.NeverHashed + c.TimeWait + c.OtherNamespaces + c.Changed)
		c.ByCounters = a.Alloc - sumInUse
		r.Closed = c
	}

	// Explanations.
	if !in.Inventory {
		explain("no fd inventory (%s): the sockets processes hold that are in no dump are not counted; alloc's gap holds them", in.InventoryError)
	}
	if len(movedRows) > 0 {
		explain("sockets created/freed during the reads: %s", strings.Join(movedRows, "; "))
	}
	if a.Changed != 0 {
		explain("%s held by fds changed state between their namespace's dump and the fd inventory", reconcilePlural(int(a.Changed), "socket"))
	}
	if in.ChildPIDNS && in.Inventory {
		explain("sstrace runs in a child PID namespace: the fd inventory sees only its processes")
	}
	if gone > 0 {
		explain("%s vanished before sstrace could enter (their processes exited)", reconcilePlural(gone, "namespace"))
	}
	if notEntered > 0 {
		explain("%s sstrace could not enter: %s held by fds there (%d of them never hashed); their sockets with no fd (orphans, children not yet accepted, kernel sockets) and their counters are out of reach",
			reconcilePlural(notEntered, "namespace"), reconcilePlural(int(a.OtherNS), "TCP socket"), a.OtherNSInClose)
	}
	var reasons []string
	switch {
	case !in.Inventory && a.Unexplained != 0:
		reasons = append(reasons, fmt.Sprintf("alloc: %d sockets not hashed and not found, held by processes or by the kernel (without the fd inventory sstrace cannot tell them apart)", a.Unexplained))
	case a.Unexplained > 0:
		s := fmt.Sprintf("alloc: %d sockets found nowhere: kernel sockets with no fd that are not hashed, or sockets in namespaces sstrace could not enter or find", a.Unexplained)
		if in.ChildPIDNS {
			s += ", or held by processes outside sstrace's PID namespace"
		}
		if mptcpClosed > 0 {
			s += fmt.Sprintf("; up to %d may be unhashed first subflows of MPTCP sockets in CLOSE (a failed connect)", min(mptcpClosed, a.Unexplained))
		}
		reasons = append(reasons, s)
	case a.Unexplained < 0:
		reasons = append(reasons, fmt.Sprintf("alloc: sstrace counted %d sockets more than alloc has", -a.Unexplained))
	}
	if a.Unexplained != 0 && in.Attempts > 1 {
		reasons[len(reasons)-1] += fmt.Sprintf("; alloc moved during %s before this one: sockets are being created and freed, and some may have been both between the two reads of alloc",
			reconcilePlural(in.Attempts-1, "attempt"))
	}
	switch {
	case oun > 0:
		reasons = append(reasons, fmt.Sprintf("orphan: %s in no dump: in namespaces sstrace could not enter, or no longer hashed", reconcilePlural(int(oun), "orphan")))
	case oun < 0:
		reasons = append(reasons, fmt.Sprintf("orphan: sstrace counted %s more than the counter has", reconcilePlural(int(-oun), "orphan")))
	}
	if len(unexplainedRows) > 0 {
		reasons = append(reasons, "per namespace: "+strings.Join(unexplainedRows, "; "))
	}
	r.Unexplained = max(reconcileAbs(a.Unexplained), reconcileAbs(oun), inuseUnexpl) + twUnexpl
	if r.Unexplained == 0 {
		r.Verdict = "every number explained"
	} else {
		r.Verdict = fmt.Sprintf("%d sockets unexplained (%s)", r.Unexplained, strings.Join(reasons, "; "))
	}
	return r
}

func hashedNote(c TCPCount) string {
	s := fmt.Sprintf("listen %d + established hash %d", c.Listen, c.Hashed-c.Listen)
	var extra []string
	if c.Orphans != 0 {
		extra = append(extra, reconcilePlural(int(c.Orphans), "orphan"))
	}
	if c.Unaccepted != 0 {
		extra = append(extra, fmt.Sprintf("%d not yet accepted", c.Unaccepted))
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// reconcilePlural says "1 socket", "2 sockets".
func reconcilePlural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// NSName is how reconcile names a namespace: net:[inode], as ls -l
// /proc/*/ns/net shows it.
func NSName(ino uint64) string { return fmt.Sprintf("net:[%d]", ino) }

// ReconcileOptions say how to gather.
type ReconcileOptions struct {
	// ThisNetNS is the path of the namespace ss -s would report on ("":
	// the caller's).
	ThisNetNS string
	// Inventory lists every socket fd (nil: tracer.Inventory).
	Inventory func(ns tracer.NetNS) ([]tracer.FD, error)
	// ProcRoot is /proc (for tests).
	ProcRoot string
	// Attempts bounds how many times the whole enumeration is repeated
	// while alloc or orphan moves during it (0: 3).
	Attempts int
}

// nsPaths maps namespace inodes to paths that name them, best first.
type nsPaths struct {
	order []uint64
	paths map[uint64][]string
}

func (p *nsPaths) add(ino uint64, path string) {
	if ino == 0 {
		return
	}
	l, ok := p.paths[ino]
	if !ok {
		p.order = append(p.order, ino)
	}
	for _, q := range l {
		if q == path {
			return
		}
	}
	p.paths[ino] = append(l, path)
}

// parseNSLink reads the inode out of a "net:[4026531840]" link.
func parseNSLink(l string) (uint64, bool) {
	rest, ok := strings.CutPrefix(l, "net:[")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(num, 10, 64)
	return v, err == nil
}

// parseNSMounts returns the network namespaces bind-mounted somewhere
// (ip netns, container runtimes), from /proc/self/mountinfo text: inode →
// mount point.
func parseNSMounts(mountinfo string) [][2]string {
	var out [][2]string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		sep := -1
		for i, w := range f {
			if w == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(f) || f[sep+1] != "nsfs" {
			continue
		}
		if !strings.HasPrefix(f[3], "net:[") {
			continue
		}
		out = append(out, [2]string{f[3], procfs.UnescapeMount(f[4])})
	}
	return out
}

// findNamespaces lists the network namespaces reachable by a path: bind
// mounts (/run/netns and others), /run/netns itself, nsfs fds processes
// hold, and every thread's namespace. Entries that vanish while read are
// skipped.
func findNamespaces(proc string, p *nsPaths) {
	if b, err := os.ReadFile(filepath.Join(proc, "self/mountinfo")); err == nil {
		for _, m := range parseNSMounts(string(b)) {
			if ino, ok := parseNSLink(m[0]); ok {
				p.add(ino, m[1])
			}
		}
	}
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			path := filepath.Join(dir, e.Name())
			var sfs unix.Statfs_t
			var st unix.Stat_t
			if unix.Statfs(path, &sfs) == nil && sfs.Type == unix.NSFS_MAGIC && unix.Stat(path, &st) == nil {
				p.add(st.Ino, path)
			}
		}
	}
	pids, _ := os.ReadDir(proc)
	var tasks []string
	for _, e := range pids {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		pdir := filepath.Join(proc, e.Name())
		fds, _ := os.ReadDir(filepath.Join(pdir, "fd"))
		for _, fd := range fds {
			path := filepath.Join(pdir, "fd", fd.Name())
			if l, err := os.Readlink(path); err == nil {
				if ino, ok := parseNSLink(l); ok {
					p.add(ino, path)
				}
			}
		}
		ts, _ := os.ReadDir(filepath.Join(pdir, "task"))
		for _, t := range ts {
			tasks = append(tasks, filepath.Join(pdir, "task", t.Name(), "ns/net"))
		}
	}
	for _, path := range tasks {
		if l, err := os.Readlink(path); err == nil {
			if ino, ok := parseNSLink(l); ok {
				p.add(ino, path)
			}
		}
	}
}

// nsRead is one namespace's dumps and counters.
type nsRead struct {
	before, after Sockstat
	v4, v6        TCPCount
	socks         []Socket
}

// readNamespace dumps the calling thread's namespace between two reads of
// its counters, again (a bounded number of times) while they move.
func readNamespace(buf []Socket) (nsRead, error) {
	var r nsRead
	for try := 0; try < 3; try++ {
		var err error
		if r.before, err = ReadSockstat(); err != nil {
			return r, err
		}
		socks, err := DumpAppend(buf[:0], DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP})
		if err != nil {
			return r, err
		}
		n4 := len(socks)
		if r.before.HasV6 {
			if socks, err = DumpAppend(socks, DumpRequest{Family: unix.AF_INET6, Protocol: unix.IPPROTO_TCP}); err != nil {
				return r, err
			}
		}
		if r.after, err = ReadSockstat(); err != nil {
			return r, err
		}
		r.socks = socks
		r.v4, r.v6 = CountTCP(socks[:n4]), CountTCP(socks[n4:])
		buf = socks
		if nsCounters(r.before) == nsCounters(r.after) {
			break
		}
	}
	return r, nil
}

// enterAndRead runs readNamespace in every namespace of p, on one locked
// thread, restoring its namespace after each. here is the thread's own
// namespace (entered without setns).
func enterAndRead(p *nsPaths, thisIno uint64, dumped DumpedSet) ([]ReconcileNS, error) {
	type result struct {
		out []ReconcileNS
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("opening own network namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		here, err := NetNSInode()
		if err != nil {
			ch <- result{err: err}
			return
		}
		var out []ReconcileNS
		var buf []Socket
		for _, ino := range p.order {
			ns := ReconcileNS{NetNS: ino, This: ino == thisIno}
			var rd nsRead
			if ino == here {
				ns.Source = "/proc/thread-self/ns/net"
				rd, err = readNamespace(buf)
				if err != nil {
					ns.Error = err.Error()
				} else {
					ns.Entered = true
				}
			} else {
				var lastErr error
				gone := true // every path vanished (its process exited)
				for _, path := range p.paths[ino] {
					fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if err != nil {
						lastErr = fmt.Errorf("opening %s: %w", path, err)
						gone = gone && (err == unix.ENOENT || err == unix.ESRCH)
						continue
					}
					var st unix.Stat_t
					if err := unix.Fstat(fd, &st); err != nil || st.Ino != ino {
						unix.Close(fd)
						lastErr = fmt.Errorf("opening %s: no longer %s", path, NSName(ino))
						continue
					}
					gone = false
					err = unix.Setns(fd, unix.CLONE_NEWNET)
					unix.Close(fd)
					if err != nil {
						lastErr = fmt.Errorf("entering %s through %s: %w", NSName(ino), path, err)
						continue
					}
					rd, err = readNamespace(buf)
					if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
						// The thread stays locked and dies with
						// this goroutine.
						ch <- result{err: fmt.Errorf("leaving %s: %w", NSName(ino), rerr)}
						return
					}
					if err != nil {
						lastErr = fmt.Errorf("reading %s: %w", NSName(ino), err)
						break
					}
					ns.Source, ns.Entered, lastErr = path, true, nil
					break
				}
				switch {
				case lastErr != nil && gone:
					ns.Error = "gone before sstrace could enter it: " + lastErr.Error()
					ns.Gone = true
				case lastErr != nil:
					ns.Error = lastErr.Error()
				}
			}
			if ns.Entered {
				ns.Sockstat, ns.SockstatAfter = nsCounters(rd.before), nsCounters(rd.after)
				ns.HasV6 = rd.before.HasV6
				ns.V4, ns.V6 = rd.v4, rd.v6
				dumped.Add(rd.socks)
				buf = rd.socks
			} else if ns.Error == "" {
				ns.Error = "no path to enter it by"
			}
			out = append(out, ns)
		}
		runtime.UnlockOSThread()
		ch <- result{out: out}
	}()
	r := <-ch
	return r.out, r.err
}

// GatherReconcile reads every namespace it can enter (dumps and counters),
// the fd inventory, and the global counters around them. Without the
// privileges for the inventory it gathers the rest and says why in
// InventoryError.
func GatherReconcile(o ReconcileOptions) (ReconcileInput, error) {
	proc := o.ProcRoot
	if proc == "" {
		proc = "/proc"
	}
	inventory := o.Inventory
	if inventory == nil {
		inventory = tracer.Inventory
	}
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	var thisIno uint64
	thisPath := o.ThisNetNS
	if thisPath != "" {
		var st unix.Stat_t
		var sfs unix.Statfs_t
		if err := unix.Stat(o.ThisNetNS, &st); err != nil {
			return ReconcileInput{}, fmt.Errorf("reading network namespace %s: %w", o.ThisNetNS, err)
		}
		if err := unix.Statfs(o.ThisNetNS, &sfs); err != nil || sfs.Type != unix.NSFS_MAGIC {
			return ReconcileInput{}, fmt.Errorf("reading network namespace %s: not a namespace file", o.ThisNetNS)
		}
		thisIno = st.Ino
	} else {
		var err error
		if thisIno, err = ownNetNS(); err != nil {
			return ReconcileInput{}, err
		}
		thisPath = fmt.Sprintf("%s/%d/ns/net", proc, os.Getpid())
	}

	// The initial PID namespace's inode is fixed (PROC_PID_INIT_INO).
	const initPIDNS = 0xEFFFFFFC
	var pidns unix.Stat_t
	childPIDNS := unix.Stat(filepath.Join(proc, "self/ns/pid"), &pidns) == nil && pidns.Ino != initPIDNS

	var in ReconcileInput
	for try := 1; try <= attempts; try++ {
		in = ReconcileInput{ThisNetNS: thisIno, Attempts: try, ChildPIDNS: childPIDNS}
		// Found again on each attempt: namespaces come and go.
		p := &nsPaths{paths: map[uint64][]string{}}
		p.add(thisIno, thisPath)
		findNamespaces(proc, p)
		before, err := ReadSockstat()
		if err != nil {
			return in, err
		}
		dumped := NewDumpedSet()
		nss, err := enterAndRead(p, thisIno, dumped)
		if err != nil {
			return in, err
		}
		fds, ierr := inventory(tracer.NetNS{})
		after, err := ReadSockstat()
		if err != nil {
			return in, err
		}
		in.AllocBefore, in.AllocAfter = before.TCP.Alloc, after.TCP.Alloc
		in.OrphanBefore, in.OrphanAfter = before.TCP.Orphan, after.TCP.Orphan
		if ierr != nil {
			in.InventoryError = ierr.Error()
		} else {
			in.Inventory = true
			byNS := ClassifyFDs(fds, dumped)
			known := map[uint64]bool{}
			for i := range nss {
				known[nss[i].NetNS] = true
				if c := byNS[nss[i].NetNS]; c != nil {
					nss[i].FDs = *c
				}
			}
			var extra []uint64
			for ino := range byNS {
				if !known[ino] {
					extra = append(extra, ino)
				}
			}
			sort.Slice(extra, func(i, j int) bool { return extra[i] < extra[j] })
			for _, ino := range extra {
				nss = append(nss, ReconcileNS{NetNS: ino, FDs: *byNS[ino],
					Error: "found only through the fd inventory: no process lives in it and no path names it"})
			}
		}
		in.Namespaces = nss
		if before.TCP.Alloc == after.TCP.Alloc && before.TCP.Orphan == after.TCP.Orphan {
			break
		}
	}
	return in, nil
}

// ownNetNS is the inode of the process's network namespace.
func ownNetNS() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("reading own network namespace: %w", err)
	}
	return st.Ino, nil
}
