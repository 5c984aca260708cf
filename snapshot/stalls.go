package snapshot

import (
	"math"
	"math/bits"
	"net/netip"
	"sort"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// Connection attempts (sstrace stalls).
//
// An active attempt is a socket's stay in SYN-SENT: it begins with the
// CLOSE → SYN-SENT transition, which runs inside connect() in the caller's
// context (the event carries the caller's pid and user stack), and ends
// with the transition out of it:
//
//	SYN-SENT → ESTABLISHED    established; latency = ESTABLISHED − SYN-SENT
//	SYN-SENT → CLOSE          by the socket's error report (which comes
//	                          after the transition for a reset or a
//	                          timeout, before it for an ICMP error):
//	                          ECONNREFUSED or a reset received: refused;
//	                          ETIMEDOUT: timed out; EHOSTUNREACH,
//	                          ENETUNREACH, EHOSTDOWN, ENETDOWN: unreachable;
//	                          another errno: failed. Without an error
//	                          report: refused after a reset, timed out
//	                          after retransmissions, else abandoned.
//	last fd closed (release)  abandoned, while still in SYN-SENT
//
// Retransmits counts the SYNs retransmitted (one event each, and the
// kernel's own count, total_retrans, when the handshake ends).
//
// A passive attempt is a handshake a listener answered. The kernel keeps
// it as a request socket (no cookie, no transitions) until the final ACK
// arrives; only then is the child socket made, and its LISTEN → SYN-RECV
// and SYN-RECV → ESTABLISHED transitions fire together. So:
//
//   - a passive attempt is seen when a SYN-ACK is retransmitted (the
//     request is stalling: keyed by its addresses until the child
//     appears), when a sock_diag scan finds its request socket (Request:
//     no event marks a SYN's arrival, so this is how one pending less
//     than the first retransmission timeout, 1 s, is seen), or when the
//     handshake completes;
//   - its time pending runs from the first SYN-ACK (sent when the SYN
//     arrived: the request's snt_synack, carried by every SYN-ACK
//     retransmit event) to ESTABLISHED. Without a retransmit that time is
//     not in any event; the final ACK came one round trip after the
//     SYN-ACK, so the handshake's RTT (the child's srtt, as tcp_info
//     reports it) stands in for it: latency = max(ESTABLISHED − SYN-RECV,
//     RTT), which is also right for TCP Fast Open, whose child is made at
//     the SYN;
//   - a request that goes silent (no SYN-ACK retransmit for twice the
//     next retransmission timeout, and no child) is timed out, inferred:
//     the kernel dropped it after its last SYN-ACK (or the client reset
//     it, which no event shows);
//   - its owner is the listener's: known from the listener's LISTEN
//     transition or its SYN-ACK retransmit events while tracing, else
//     from the process that accepts the child.
//
// Dst is always where the SYN went: the peer of an active attempt, the
// local (listening) address of a passive one.

// Outcomes of an attempt.
const (
	OutcomePending     = "pending" // still pending when the report was made
	OutcomeEstablished = "established"
	OutcomeRefused     = "refused"
	OutcomeTimedOut    = "timed-out"
	OutcomeUnreachable = "unreachable"
	OutcomeAbandoned   = "abandoned"
	OutcomeFailed      = "failed" // another error: see Errno
)

// Outcomes lists the outcomes in the order reports show them.
var Outcomes = []string{OutcomeEstablished, OutcomeRefused, OutcomeTimedOut, OutcomeUnreachable,
	OutcomeAbandoned, OutcomeFailed, OutcomePending}

// Attempt is one connection attempt.
type Attempt struct {
	// Seq numbers attempts in the order they were first seen.
	Seq     uint64
	Cookie  uint64 // the socket's; 0 for a passive attempt still a request
	Passive bool
	NetNS   uint32
	Family  uint16
	// Local and Peer are the socket's (ss's src and dst). An active
	// attempt's local port is assigned inside connect(), after SYN-SENT:
	// it is known from its first retransmit or its end.
	Local, Peer netip.AddrPort

	// PID and Comm: for an active attempt the process that called
	// connect(), for a passive one the listener's owner (0: unknown).
	// OwnerPID is an active socket's owner when another process made it.
	PID      uint32
	Comm     string
	OwnerPID uint32
	// Stack and UserRet: the user stack that called connect() (see
	// tracer.Event); Stack is zero (not Captured) when there is none.
	Stack   tracer.Stack
	UserRet uint64

	// Start and End in CLOCK_MONOTONIC ns; End is 0 while pending.
	Start, End uint64
	// Retransmits: SYNs (active) or SYN-ACKs (passive) retransmitted.
	Retransmits int
	// RTT is the handshake's round trip (srtt) when it completed.
	RTT     time.Duration
	Outcome string
	Errno   uint32 // the socket's error report, 0 if none
	Reset   bool   // a reset was received while pending
	// BeforeTracing: pending when tracing started; Start is its first
	// sighting.
	BeforeTracing bool
	// Inferred: the outcome is inferred (a passive request gone silent).
	Inferred bool
	// Stalled: reported as pending past the threshold (by Poll).
	Stalled bool

	closedAt    uint64 // left SYN-SENT/SYN-RECV for CLOSE; the error report may follow
	synRecvAt   uint64 // passive: the child's LISTEN → SYN-RECV
	firstSynAck uint64 // passive: the request's first SYN-ACK, 0 unknown
	lastSynAck  uint64 // passive: the last SYN-ACK retransmit seen
	scannedAt   uint64 // passive: last found by a sock_diag scan (Request)
	rtxSeen     int
	complete    bool // decided and nothing more is awaited
}

// Dst is where the SYN went: the peer (active) or the local listening
// address (passive).
func (a *Attempt) Dst() netip.AddrPort {
	if a.Passive {
		return a.Local
	}
	return a.Peer
}

// Src is the other end: the local address (active) or the client (passive).
func (a *Attempt) Src() netip.AddrPort {
	if a.Passive {
		return a.Peer
	}
	return a.Local
}

// Pending is how long the attempt was (or, at now, has been) pending.
func (a *Attempt) Pending(now uint64) time.Duration {
	end := a.End
	if end == 0 {
		end = now
	}
	if end < a.Start {
		return 0
	}
	return time.Duration(end - a.Start)
}

// Decided says whether the attempt has an outcome other than pending.
func (a *Attempt) Decided() bool { return a.Outcome != "" && a.Outcome != OutcomePending }

// ErrnoName is the error's name (ECONNREFUSED), "" if none.
func (a *Attempt) ErrnoName() string {
	if a.Errno == 0 {
		return ""
	}
	if n := unix.ErrnoName(syscall.Errno(a.Errno)); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(a.Errno))
}

// outcomeOf is what an error report means for a pending attempt.
func outcomeOf(errno uint32) string {
	switch syscall.Errno(errno) {
	case unix.ECONNREFUSED, unix.ECONNRESET:
		return OutcomeRefused
	case unix.ETIMEDOUT:
		return OutcomeTimedOut
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENETDOWN:
		return OutcomeUnreachable
	}
	return OutcomeFailed
}

// DefaultGrace is how long a decided attempt may wait for details that
// follow its end (an error report after CLOSE, the accept that names a
// passive attempt's owner).
const DefaultGrace = 250 * time.Millisecond

// MaxTracked bounds the attempts followed at once; past it new attempts
// are counted in StallTracker.Untracked and otherwise ignored.
const MaxTracked = 1 << 18

// rtoInit and rtoMax are the kernel's TCP_TIMEOUT_INIT and TCP_RTO_MAX.
const (
	rtoInit = uint64(time.Second)
	rtoMax  = uint64(120 * time.Second)
)

type reqKey struct {
	netns       uint32
	local, peer netip.AddrPort
}

func keyOf(netns uint32, local, peer netip.AddrPort) reqKey {
	// A v4 connection to a v6 listener: the request is AF_INET, its child
	// AF_INET6 with v4-mapped addresses.
	return reqKey{netns,
		netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())}
}

type listenKey struct {
	netns uint32
	port  uint16
}

type owner struct {
	pid  uint32
	comm string
}

// StallTracker follows connection attempts from tracer events. It holds
// only attempts not yet reported and the listeners' owners: memory is
// bounded by what is pending.
type StallTracker struct {
	// Grace: see DefaultGrace.
	Grace time.Duration
	// Untracked counts attempts ignored because MaxTracked were pending.
	Untracked int

	bySock    map[uint64]*Attempt
	requests  map[reqKey]*Attempt
	listeners map[listenKey]owner
	lnByCook  map[uint64]listenKey
	lnOwners  map[uint64]owner // by the listener's cookie, from Listener
	decided   []*Attempt
	seq       uint64
}

// NewStallTracker returns an empty tracker.
func NewStallTracker() *StallTracker {
	return &StallTracker{
		Grace: DefaultGrace, bySock: map[uint64]*Attempt{}, requests: map[reqKey]*Attempt{},
		listeners: map[listenKey]owner{}, lnByCook: map[uint64]listenKey{}, lnOwners: map[uint64]owner{},
	}
}

// Listener tells the owner of a listening socket that existed before
// tracing started (from the fd inventory), by its cookie (SYN-ACK
// retransmit events name their listener so) and by its network namespace
// and port (its children are known by their local port only; an MPTCP
// listener's TCP subflow has no fd, its port is the same).
func (t *StallTracker) Listener(cookie uint64, netns uint32, port uint16, pid uint32, comm string) {
	t.lnOwners[cookie] = owner{pid, comm}
	if port != 0 {
		t.listeners[listenKey{netns, port}] = owner{pid, comm}
	}
}

// Tracked is the number of attempts held: pending, or decided and not yet
// returned by Poll.
func (t *StallTracker) Tracked() int { return len(t.bySock) + len(t.requests) }

func (t *StallTracker) full() bool {
	if t.Tracked() >= MaxTracked {
		t.Untracked++
		return true
	}
	return false
}

func (t *StallTracker) newAttempt(ev *tracer.Event) *Attempt {
	t.seq++
	return &Attempt{Seq: t.seq, Cookie: ev.Cookie, NetNS: ev.NetNS, Family: ev.Family,
		Local: ev.Local, Peer: ev.Peer}
}

// active starts an active attempt at a CLOSE → SYN-SENT transition.
func (t *StallTracker) active(ev *tracer.Event) {
	if t.full() {
		return
	}
	if old := t.bySock[ev.Cookie]; old != nil && !old.Decided() {
		// connect() again on the same socket: the last attempt is over.
		if old.closedAt != 0 {
			t.closed(old, old.closedAt)
		} else {
			t.decide(old, OutcomeAbandoned, ev.TS, true)
		}
	}
	a := t.newAttempt(ev)
	a.Start = ev.TS
	a.PID, a.Comm = ev.PID, ev.CommString()
	if ev.CurPID != 0 && ev.CurPID != ev.PID {
		// connect() was called by a process other than the owner.
		a.OwnerPID, a.PID = ev.PID, ev.CurPID
	}
	a.Stack, a.UserRet = ev.Stack, ev.UserRet
	t.bySock[ev.Cookie] = a
}

// before makes up an attempt first seen at ev, a retransmit or the end of
// a handshake. ev.Since is the socket's last transition: 0 if the BPF side
// never saw one, so the attempt was pending when tracing started; else its
// SYN-SENT (whose event was lost: a retransmit gives the attempt back its
// start).
func (t *StallTracker) before(ev *tracer.Event, passive bool) *Attempt {
	if t.full() {
		return nil
	}
	a := t.newAttempt(ev)
	a.Passive = passive
	a.Start = ev.TS
	if ev.Since != 0 && ev.Since < ev.TS {
		a.Start = ev.Since
	} else {
		a.BeforeTracing = true
	}
	if ev.OwnerKnown {
		a.PID, a.Comm = ev.PID, ev.CommString()
	}
	if passive && a.PID == 0 {
		t.listenerOwner(a)
	}
	t.bySock[ev.Cookie] = a
	return a
}

func (t *StallTracker) listenerOwner(a *Attempt) {
	if o, ok := t.listeners[listenKey{a.NetNS, a.Local.Port()}]; ok {
		a.PID, a.Comm = o.pid, o.comm
	}
}

// learn keeps the best-known addresses: the local port appears after
// SYN-SENT, and a closed socket reads as port 0 again.
func (a *Attempt) learn(ev *tracer.Event) {
	if ev.Local.IsValid() && ev.Local.Port() != 0 {
		a.Local = ev.Local
	}
	if ev.Peer.IsValid() && ev.Peer.Port() != 0 {
		a.Peer = ev.Peer
	}
}

func (a *Attempt) retrans(n int) {
	if n > a.Retransmits {
		a.Retransmits = n
	}
}

// decide gives the attempt its outcome at ts. complete: nothing more is
// awaited.
func (t *StallTracker) decide(a *Attempt, outcome string, ts uint64, complete bool) {
	if a.Decided() {
		return
	}
	a.Outcome, a.End, a.complete = outcome, ts, complete
	t.decided = append(t.decided, a)
}

// closed decides an attempt that left SYN-SENT (or SYN-RECV) for CLOSE, or
// whose socket went away, from what is known.
func (t *StallTracker) closed(a *Attempt, ts uint64) {
	switch {
	case a.Errno != 0:
		t.decide(a, outcomeOf(a.Errno), ts, true)
	case a.Reset:
		t.decide(a, OutcomeRefused, ts, true)
	case a.Retransmits > 0:
		t.decide(a, OutcomeTimedOut, ts, true)
	default:
		t.decide(a, OutcomeAbandoned, ts, true)
	}
}

// Apply ingests one event.
func (t *StallTracker) Apply(ev *tracer.Event) {
	if ev.Kind == tracer.KindSynAck {
		t.synAck(ev)
		return
	}
	if ev.Cookie == 0 {
		if ev.Kind == tracer.KindState && ev.Protocol == protoTCP && ev.OldState == StateListen && ev.NewState == StateSynRecv {
			// A child the BPF side could give no cookie (tracing
			// programs before 5.12): known by its addresses until its
			// next transition, which has one.
			t.child(ev)
		}
		return
	}
	a := t.bySock[ev.Cookie]
	pending := a != nil && !a.Decided()
	switch ev.Kind {
	case tracer.KindState:
		if ev.Protocol != protoTCP {
			return
		}
		t.state(ev, a, pending)
	case tracer.KindRetrans:
		if !pending {
			if a = t.before(ev, false); a == nil {
				return
			}
		}
		a.learn(ev)
		a.rtxSeen++
		a.retrans(a.rtxSeen)
	case tracer.KindReset:
		if pending {
			a.learn(ev)
			a.Reset = true
		}
	case tracer.KindError:
		if !pending {
			return
		}
		a.learn(ev)
		a.Errno = ev.Errno
		if a.closedAt != 0 {
			t.closed(a, a.closedAt)
		}
	case tracer.KindAccept:
		if a != nil && a.Passive {
			if a.PID == 0 {
				a.PID, a.Comm = ev.PID, ev.CommString()
			}
			if a.Decided() {
				a.complete = true
			}
		}
		k := listenKey{ev.NetNS, ev.Local.Port()}
		if _, ok := t.listeners[k]; !ok && ev.NetNS != 0 {
			t.listeners[k] = owner{ev.PID, ev.CommString()}
		}
	case tracer.KindRelease, tracer.KindDestroy:
		if pending {
			if a.closedAt != 0 {
				t.closed(a, a.closedAt)
			} else {
				// Closed by its owner while still pending.
				t.decide(a, OutcomeAbandoned, ev.TS, true)
			}
		}
		if ev.Kind == tracer.KindDestroy {
			if k, ok := t.lnByCook[ev.Cookie]; ok {
				delete(t.listeners, k)
				delete(t.lnByCook, ev.Cookie)
			}
			delete(t.lnOwners, ev.Cookie)
		}
	}
}

func (t *StallTracker) state(ev *tracer.Event, a *Attempt, pending bool) {
	switch {
	case ev.NewState == StateSynSent:
		t.active(ev)
	case ev.OldState == StateListen && ev.NewState == StateSynRecv:
		t.child(ev)
	case ev.NewState == StateListen:
		k := listenKey{ev.NetNS, ev.Local.Port()}
		t.lnByCook[ev.Cookie] = k
		if ev.OwnerKnown {
			t.listeners[k] = owner{ev.PID, ev.CommString()}
		}
	case ev.OldState == StateListen:
		if k, ok := t.lnByCook[ev.Cookie]; ok {
			delete(t.listeners, k)
			delete(t.lnByCook, ev.Cookie)
		}
	case ev.OldState == StateSynSent || ev.OldState == StateSynRecv:
		if !pending && a == nil && ev.OldState == StateSynRecv {
			// The child's LISTEN → SYN-RECV came without a cookie.
			k := keyOf(ev.NetNS, ev.Local, ev.Peer)
			if r := t.requests[k]; r != nil && r.synRecvAt != 0 {
				delete(t.requests, k)
				r.Cookie = ev.Cookie
				t.bySock[ev.Cookie] = r
				a, pending = r, true
			}
		}
		if !pending {
			// Only an attempt pending since before tracing began is new
			// here (its socket had no transition yet); else this one was
			// already decided (closed while connecting) or reported.
			if a != nil || ev.Since != 0 {
				return
			}
			if a = t.before(ev, ev.OldState == StateSynRecv); a == nil {
				return
			}
		}
		a.learn(ev)
		a.retrans(int(ev.Retrans))
		if ev.RTTus != 0 {
			a.RTT = time.Duration(ev.RTTus) * time.Microsecond
		}
		switch ev.NewState {
		case StateEstablished:
			if a.Passive && a.firstSynAck == 0 && a.synRecvAt != 0 {
				// No SYN-ACK retransmit: the handshake took one round trip.
				a.Start = a.synRecvAt
				if rtt := uint64(a.RTT); rtt > ev.TS-a.Start && rtt < ev.TS {
					a.Start = ev.TS - rtt
				}
			}
			t.decide(a, OutcomeEstablished, ev.TS, !a.Passive || a.PID != 0)
		case StateClose:
			a.closedAt = ev.TS
			if a.Errno != 0 {
				// An ICMP error, reported before the transition.
				t.closed(a, ev.TS)
			}
			// Else the error report (a reset's ECONNREFUSED, a timeout's
			// ETIMEDOUT) follows.
		}
		// SYN-SENT → SYN-RECV (simultaneous open) stays pending.
	}
}

// child is a passive attempt's child socket (LISTEN → SYN-RECV).
func (t *StallTracker) child(ev *tracer.Event) {
	k := keyOf(ev.NetNS, ev.Local, ev.Peer)
	a := t.requests[k]
	if a != nil {
		delete(t.requests, k)
	} else {
		if t.full() {
			return
		}
		a = t.newAttempt(ev)
		a.Passive = true
		a.Start = ev.TS
		t.listenerOwner(a)
	}
	a.Cookie = ev.Cookie
	a.synRecvAt = ev.TS
	a.learn(ev)
	if ev.Cookie == 0 {
		// Still known by its addresses (see Apply); alive as if it had
		// just sent a SYN-ACK.
		a.lastSynAck = max(a.lastSynAck, ev.TS)
		t.requests[k] = a
		return
	}
	t.bySock[ev.Cookie] = a
}

// synAck is a SYN-ACK retransmitted for a request socket.
func (t *StallTracker) synAck(ev *tracer.Event) {
	if ev.OwnerKnown {
		t.listeners[listenKey{ev.NetNS, ev.Local.Port()}] = owner{ev.PID, ev.CommString()}
	} else if o, ok := t.lnOwners[ev.Cookie]; ok {
		t.listeners[listenKey{ev.NetNS, ev.Local.Port()}] = o
	}
	k := keyOf(ev.NetNS, ev.Local, ev.Peer)
	a := t.requests[k]
	if a == nil {
		if t.full() {
			return
		}
		a = t.newAttempt(ev)
		a.Cookie = 0
		a.Passive = true
		a.Start = ev.TS
		if ev.Since != 0 && ev.Since <= ev.TS {
			a.Start, a.firstSynAck = ev.Since, ev.Since
		}
		t.listenerOwner(a)
		t.requests[k] = a
	}
	a.lastSynAck = ev.TS
	a.rtxSeen++
	a.retrans(a.rtxSeen)
	a.retrans(int(ev.Retrans) + 1)
}

// Request tells of a request socket a sock_diag scan found at now (CLOCK_MONOTONIC
// ns): a passive attempt still pending, perhaps not yet seen in any event.
// firstSynAck is when its first SYN-ACK went out (see RequestStart);
// retrans the SYN-ACKs retransmitted so far. While scans keep finding it,
// the request is not taken for gone.
func (t *StallTracker) Request(netns uint32, family uint16, local, peer netip.AddrPort, firstSynAck, now uint64, retrans int) {
	k := keyOf(netns, local, peer)
	a := t.requests[k]
	if a == nil {
		if t.full() {
			return
		}
		t.seq++
		a = &Attempt{Seq: t.seq, Passive: true, NetNS: netns, Family: family, Local: local, Peer: peer,
			Start: firstSynAck, firstSynAck: firstSynAck, lastSynAck: firstSynAck}
		t.listenerOwner(a)
		t.requests[k] = a
	}
	a.retrans(retrans)
	a.scannedAt = max(a.scannedAt, now)
}

// RequestStart estimates when a request socket sent its first SYN-ACK, from
// what sock_diag reports of it at now: its timer fires in expires, after
// retrans retransmissions; the kernel arms it TCP_TIMEOUT_INIT << n (at
// most TCP_RTO_MAX) after each SYN-ACK n.
func RequestStart(now uint64, expires time.Duration, retrans int) uint64 {
	elapsed := uint64(0)
	for i := 0; i <= retrans && i < 64; i++ {
		step := rtoMax
		if i < 7 {
			step = min(rtoInit<<i, rtoMax)
		}
		elapsed += step
	}
	end := now + uint64(max(expires, 0))
	if elapsed > end {
		return 0
	}
	return end - elapsed
}

// Poll reports, at now (CLOCK_MONOTONIC ns): the pending attempts that
// have just passed threshold (each once; threshold <= 0 reports none),
// and the attempts whose outcome is final, in the order they were
// decided. Returned attempts are forgotten.
func (t *StallTracker) Poll(now uint64, threshold time.Duration) (stalled, finished []*Attempt) {
	grace := uint64(t.Grace)
	for _, a := range t.bySock {
		if a.Decided() {
			continue
		}
		if a.closedAt != 0 && now >= a.closedAt+grace {
			// No error report came: decide from what is known.
			t.closed(a, a.closedAt)
			continue
		}
		if threshold > 0 && a.closedAt == 0 && !a.Stalled && a.Pending(now) >= threshold {
			a.Stalled = true
			stalled = append(stalled, a)
		}
	}
	for k, a := range t.requests {
		// The kernel retransmits a SYN-ACK after TCP_TIMEOUT_INIT <<
		// retransmissions (at most TCP_RTO_MAX); twice that in silence
		// and the request is gone.
		next := rtoMax
		if a.Retransmits < 7 {
			next = min(rtoInit<<a.Retransmits, rtoMax)
		}
		if now >= max(a.lastSynAck+2*next, a.scannedAt+next) {
			delete(t.requests, k)
			a.Inferred = true
			t.decide(a, OutcomeTimedOut, max(a.lastSynAck+next, a.scannedAt), true)
			continue
		}
		if threshold > 0 && !a.Stalled && a.Pending(now) >= threshold {
			a.Stalled = true
			stalled = append(stalled, a)
		}
	}
	sortSeq(stalled)
	kept := t.decided[:0]
	for _, a := range t.decided {
		if a.complete || now >= a.End+grace {
			finished = append(finished, t.forget(a))
			continue
		}
		kept = append(kept, a)
	}
	clear(t.decided[len(kept):])
	t.decided = kept
	return stalled, finished
}

func (t *StallTracker) forget(a *Attempt) *Attempt {
	if a.Cookie != 0 && t.bySock[a.Cookie] == a {
		delete(t.bySock, a.Cookie)
	}
	return a
}

func sortSeq(as []*Attempt) {
	sort.Slice(as, func(i, j int) bool { return as[i].Seq < as[j].Seq })
}

// Finish ends tracking at now: every decided attempt (those still waiting
// for details included) is returned in finished, and the attempts still
// pending, with Outcome "pending" and no End, in pending.
func (t *StallTracker) Finish(now uint64) (finished, pending []*Attempt) {
	for _, a := range t.bySock {
		if !a.Decided() && a.closedAt != 0 {
			t.closed(a, a.closedAt)
		}
	}
	for _, a := range t.decided {
		finished = append(finished, t.forget(a))
	}
	t.decided = nil
	for _, a := range t.bySock {
		if !a.Decided() {
			a.Outcome = OutcomePending
			pending = append(pending, a)
		}
	}
	for _, a := range t.requests {
		a.Outcome = OutcomePending
		pending = append(pending, a)
	}
	clear(t.bySock)
	clear(t.requests)
	sortSeq(pending)
	return finished, pending
}

// LatencyDist is a distribution of durations: exact up to ExactSamples
// values, then a log-linear histogram (buckets 1/64 of a power of two
// wide, so percentiles stay within 1.6%) whose memory does not grow with
// the count. Count and Max are always exact.
type LatencyDist struct {
	Count   int
	Max     time.Duration
	samples []time.Duration
	hist    map[uint16]uint32
}

// ExactSamples is how many values a LatencyDist keeps before it switches
// to its histogram.
const ExactSamples = 4096

// Add records one value (negative values count as 0).
func (d *LatencyDist) Add(v time.Duration) {
	v = max(v, 0)
	d.Count++
	d.Max = max(d.Max, v)
	if d.hist == nil && len(d.samples) < ExactSamples {
		d.samples = append(d.samples, v)
		return
	}
	if d.hist == nil {
		d.hist = map[uint16]uint32{}
		for _, s := range d.samples {
			d.hist[bucketOf(s)]++
		}
		d.samples = nil
	}
	d.hist[bucketOf(v)]++
}

// bucketOf: values below 128 ns have a bucket each; above, a power of two
// is split into 64 buckets.
func bucketOf(v time.Duration) uint16 {
	u := uint64(v)
	if u < 128 {
		return uint16(u)
	}
	e := bits.Len64(u) - 7
	return uint16(e<<6) + uint16(u>>e)
}

// bucketRange is the values [lo, hi] of bucket b.
func bucketRange(b uint16) (lo, hi time.Duration) {
	if b < 128 {
		return time.Duration(b), time.Duration(b)
	}
	e := uint(b>>6) - 1
	m := uint64(b&63) + 64
	return time.Duration(m << e), time.Duration((m+1)<<e - 1)
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100): the
// smallest value that at least p% of the values do not exceed. From the
// histogram it is the middle of that value's bucket, within [min, Max].
func (d *LatencyDist) Percentile(p float64) time.Duration {
	if d.Count == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(d.Count)))
	rank = min(max(rank, 1), d.Count)
	if d.hist == nil {
		s := append([]time.Duration(nil), d.samples...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[rank-1]
	}
	keys := make([]uint16, 0, len(d.hist))
	for k := range d.hist {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	n := 0
	for _, k := range keys {
		n += int(d.hist[k])
		if n >= rank {
			lo, hi := bucketRange(k)
			return min(lo+(hi-lo)/2, d.Max)
		}
	}
	return d.Max
}

// LatencySummary is what reports show of a distribution.
type LatencySummary struct {
	Count              int
	P50, P90, P99, Max time.Duration
}

// Summary computes p50, p90, p99 and max.
func (d *LatencyDist) Summary() LatencySummary {
	return LatencySummary{Count: d.Count, P50: d.Percentile(50), P90: d.Percentile(90),
		P99: d.Percentile(99), Max: d.Max}
}

// StallGroup is the attempts of one destination or one process.
type StallGroup struct {
	// Destination groups: the direction and where the SYNs went.
	Passive bool
	Dst     netip.AddrPort
	// Process groups.
	PID  uint32
	Comm string

	Attempts int
	Outcomes map[string]int
	// Latency of the established attempts.
	Latency     LatencyDist
	Retransmits int
}

func (g *StallGroup) add(a *Attempt) {
	g.Attempts++
	g.Outcomes[a.Outcome]++
	g.Retransmits += a.Retransmits
	if a.Outcome == OutcomeEstablished {
		g.Latency.Add(a.Pending(0))
	}
}

type dstKey struct {
	passive bool
	dst     netip.AddrPort
}

type procKey struct {
	pid  uint32
	comm string
}

// StallStats accumulates finished attempts for the summary.
type StallStats struct {
	All    StallGroup
	byDst  map[dstKey]*StallGroup
	byProc map[procKey]*StallGroup
}

// NewStallStats returns empty statistics.
func NewStallStats() *StallStats {
	return &StallStats{All: StallGroup{Outcomes: map[string]int{}},
		byDst: map[dstKey]*StallGroup{}, byProc: map[procKey]*StallGroup{}}
}

// Add counts one attempt with its outcome (pending included).
func (s *StallStats) Add(a *Attempt) {
	s.All.add(a)
	dk := dstKey{a.Passive, keyOf(0, a.Dst(), netip.AddrPort{}).local}
	g := s.byDst[dk]
	if g == nil {
		g = &StallGroup{Passive: dk.passive, Dst: dk.dst, Outcomes: map[string]int{}}
		s.byDst[dk] = g
	}
	g.add(a)
	pk := procKey{a.PID, a.Comm}
	p := s.byProc[pk]
	if p == nil {
		p = &StallGroup{PID: a.PID, Comm: a.Comm, Outcomes: map[string]int{}}
		s.byProc[pk] = p
	}
	p.add(a)
}

// ByDestination lists the destination groups, most attempts first.
func (s *StallStats) ByDestination() []*StallGroup {
	out := make([]*StallGroup, 0, len(s.byDst))
	for _, g := range s.byDst {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Attempts != b.Attempts {
			return a.Attempts > b.Attempts
		}
		if a.Passive != b.Passive {
			return !a.Passive
		}
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c < 0
		}
		return a.Dst.Port() < b.Dst.Port()
	})
	return out
}

// ByProcess lists the process groups, most attempts first.
func (s *StallStats) ByProcess() []*StallGroup {
	out := make([]*StallGroup, 0, len(s.byProc))
	for _, g := range s.byProc {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Attempts != b.Attempts {
			return a.Attempts > b.Attempts
		}
		if a.PID != b.PID {
			return a.PID < b.PID
		}
		return a.Comm < b.Comm
	})
	return out
}
