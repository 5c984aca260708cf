package snapshot

import (
	"math/rand"
	"net/netip"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

const ms = uint64(time.Millisecond)

var (
	cli  = netip.MustParseAddrPort("127.0.0.1:40000")
	srv  = netip.MustParseAddrPort("127.0.0.1:7000")
	any0 = netip.MustParseAddrPort("127.0.0.1:0")
)

// ev builds an event as the BPF side sends it (TCP, IPv4, netns 1).
func ev(kind tracer.Kind, ts uint64, cookie uint64, old, new uint8, local, peer netip.AddrPort) *tracer.Event {
	e := &tracer.Event{Kind: kind, TS: ts, Cookie: cookie, OldState: old, NewState: new, Local: local, Peer: peer,
		NetNS: 1, Family: unix.AF_INET, Protocol: protoTCP, PID: 100, CurPID: 100, OwnerKnown: true}
	copy(e.Comm[:], "client")
	return e
}

var connectStack = tracer.MakeStack([]uint64{0x7f0000001000, 0x401000}, 0x400000)

func synSent(ts, cookie uint64) *tracer.Event {
	e := ev(tracer.KindState, ts, cookie, StateClose, StateSynSent, any0, srv)
	e.Stack, e.UserRet = connectStack, 0x401000
	return e
}

func apply(tr *StallTracker, evs ...*tracer.Event) {
	for _, e := range evs {
		tr.Apply(e)
	}
}

func one(t *testing.T, as []*Attempt) *Attempt {
	t.Helper()
	if len(as) != 1 {
		t.Fatalf("%d attempts, want 1: %+v", len(as), as)
	}
	return as[0]
}

func TestActiveEstablished(t *testing.T) {
	tr := NewStallTracker()
	est := ev(tracer.KindState, 1000+52_000, 1, StateSynSent, StateEstablished, cli, srv)
	est.RTTus = 39
	apply(tr, synSent(1000, 1), est)
	stalled, fin := tr.Poll(2*ms, time.Millisecond)
	if len(stalled) != 0 {
		t.Errorf("stalled %+v", stalled)
	}
	a := one(t, fin)
	if a.Outcome != OutcomeEstablished || a.Pending(0) != 52*time.Microsecond || a.PID != 100 || a.Comm != "client" ||
		a.Stack != connectStack || a.UserRet != 0x401000 || a.Local != cli || a.Dst() != srv || a.Src() != cli ||
		a.RTT != 39*time.Microsecond || a.Passive || a.Retransmits != 0 {
		t.Errorf("attempt %+v", a)
	}
	if tr.Tracked() != 0 {
		t.Errorf("%d attempts still tracked", tr.Tracked())
	}
}

// connect() called by another process than the socket's owner.
func TestActiveConnectorNotOwner(t *testing.T) {
	tr := NewStallTracker()
	e := synSent(1000, 1)
	e.CurPID = 200
	apply(tr, e, ev(tracer.KindState, 2000, 1, StateSynSent, StateEstablished, cli, srv))
	_, fin := tr.Poll(2000, time.Second)
	if a := one(t, fin); a.PID != 200 || a.OwnerPID != 100 {
		t.Errorf("pid %d owner %d, want 200 and 100", a.PID, a.OwnerPID)
	}
}

// Refused: reset (in SYN-SENT), SYN-SENT → CLOSE, ECONNREFUSED, and the
// disconnect that follows. The outcome needs no grace.
func TestActiveRefused(t *testing.T) {
	tr := NewStallTracker()
	errEv := ev(tracer.KindError, 1090, 1, StateClose, StateClose, any0, srv)
	errEv.Errno = uint32(unix.ECONNREFUSED)
	apply(tr, synSent(1000, 1),
		ev(tracer.KindReset, 1080, 1, StateSynSent, StateSynSent, cli, srv),
		ev(tracer.KindState, 1085, 1, StateSynSent, StateClose, any0, srv),
		errEv,
		ev(tracer.KindRelease, 1100, 1, 0, StateClose, netip.AddrPort{}, srv),
		ev(tracer.KindDestroy, 1110, 1, 0, StateClose, any0, srv))
	_, fin := tr.Poll(1200, time.Second)
	a := one(t, fin)
	if a.Outcome != OutcomeRefused || !a.Reset || a.End != 1085 || a.Local != cli || a.ErrnoName() != "ECONNREFUSED" {
		t.Errorf("attempt %+v", a)
	}
	// Without the error report, the reset says refused once the grace
	// has passed.
	apply(tr, synSent(2000, 2),
		ev(tracer.KindReset, 2080, 2, StateSynSent, StateSynSent, cli, srv),
		ev(tracer.KindState, 2085, 2, StateSynSent, StateClose, any0, srv))
	if _, fin := tr.Poll(2100, time.Second); len(fin) != 0 {
		t.Fatalf("decided before the error report: %+v", fin)
	}
	_, fin = tr.Poll(2085+uint64(tr.Grace), time.Second)
	if a := one(t, fin); a.Outcome != OutcomeRefused || a.Errno != 0 {
		t.Errorf("attempt %+v", a)
	}
}

// Timed out: retransmits, SYN-SENT → CLOSE with total_retrans, then
// ETIMEDOUT. Past the threshold it is reported stalled once, before its
// outcome.
func TestActiveTimedOut(t *testing.T) {
	tr := NewStallTracker()
	apply(tr, synSent(1000, 1))
	if s, f := tr.Poll(1000+100*ms, 200*time.Millisecond); len(s)+len(f) != 0 {
		t.Fatalf("early: stalled %v finished %v", s, f)
	}
	s, _ := tr.Poll(1000+250*ms, 200*time.Millisecond)
	if a := one(t, s); !a.Stalled || a.Local.Port() != 0 {
		t.Errorf("stalled %+v", a)
	}
	if s, _ := tr.Poll(1000+300*ms, 200*time.Millisecond); len(s) != 0 {
		t.Errorf("stalled twice: %v", s)
	}
	for i := uint64(1); i <= 2; i++ {
		apply(tr, ev(tracer.KindRetrans, 1000+i*1000*ms, 1, StateSynSent, StateSynSent, cli, srv))
	}
	cl := ev(tracer.KindState, 1000+3000*ms, 1, StateSynSent, StateClose, any0, srv)
	cl.Retrans = 2
	apply(tr, cl)
	// The error report has not come yet: nothing is final.
	if s, f := tr.Poll(1000+3000*ms, 200*time.Millisecond); len(s)+len(f) != 0 {
		t.Fatalf("before the error report: stalled %v finished %v", s, f)
	}
	e := ev(tracer.KindError, 1000+3000*ms+10, 1, StateClose, StateClose, any0, srv)
	e.Errno = uint32(unix.ETIMEDOUT)
	apply(tr, e)
	_, fin := tr.Poll(1000+3000*ms+20, 200*time.Millisecond)
	a := one(t, fin)
	if a.Outcome != OutcomeTimedOut || a.Retransmits != 2 || a.Pending(0) != 3*time.Second || a.ErrnoName() != "ETIMEDOUT" || a.Local != cli {
		t.Errorf("attempt %+v", a)
	}
}

// Without an error report (e.g. the socket was dead), the outcome comes
// from what is known once the grace has passed, or at the release.
func TestActiveClosedNoErrorReport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rtx     uint32
		release bool
		want    string
	}{
		{"retransmitted", 2, false, OutcomeTimedOut},
		{"not retransmitted", 0, false, OutcomeAbandoned},
		{"released", 1, true, OutcomeTimedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewStallTracker()
			cl := ev(tracer.KindState, 5000, 1, StateSynSent, StateClose, any0, srv)
			cl.Retrans = tc.rtx
			apply(tr, synSent(1000, 1), cl)
			if tc.release {
				apply(tr, ev(tracer.KindRelease, 6000, 1, 0, StateClose, netip.AddrPort{}, srv))
				_, fin := tr.Poll(6000, 0)
				if a := one(t, fin); a.Outcome != tc.want || a.End != 5000 {
					t.Errorf("attempt %+v", a)
				}
				return
			}
			if _, fin := tr.Poll(5000+uint64(tr.Grace)-1, 0); len(fin) != 0 {
				t.Fatalf("decided within the grace: %+v", fin)
			}
			_, fin := tr.Poll(5000+uint64(tr.Grace), 0)
			if a := one(t, fin); a.Outcome != tc.want || a.Retransmits != int(tc.rtx) {
				t.Errorf("attempt %+v", a)
			}
		})
	}
}

// An ICMP error comes before the transition to CLOSE.
func TestActiveUnreachable(t *testing.T) {
	tr := NewStallTracker()
	e := ev(tracer.KindError, 2000, 1, StateSynSent, StateSynSent, cli, srv)
	e.Errno = uint32(unix.EHOSTUNREACH)
	apply(tr, synSent(1000, 1), e, ev(tracer.KindState, 2001, 1, StateSynSent, StateClose, any0, srv))
	_, fin := tr.Poll(2002, 0)
	if a := one(t, fin); a.Outcome != OutcomeUnreachable || a.ErrnoName() != "EHOSTUNREACH" {
		t.Errorf("attempt %+v", a)
	}
	for errno, want := range map[unix.Errno]string{unix.ENETUNREACH: OutcomeUnreachable, unix.ECONNREFUSED: OutcomeRefused,
		unix.ETIMEDOUT: OutcomeTimedOut, unix.EPERM: OutcomeFailed} {
		if got := outcomeOf(uint32(errno)); got != want {
			t.Errorf("%v: %s, want %s", errno, got, want)
		}
	}
}

// The last fd closed while connecting: abandoned, at once.
func TestActiveAbandoned(t *testing.T) {
	tr := NewStallTracker()
	cl := ev(tracer.KindState, 3001, 1, StateSynSent, StateClose, any0, srv)
	cl.Since = 1000
	apply(tr, synSent(1000, 1), ev(tracer.KindRelease, 3000, 1, 0, StateSynSent, netip.AddrPort{}, srv))
	_, fin := tr.Poll(3000, 0)
	if a := one(t, fin); a.Outcome != OutcomeAbandoned || a.End != 3000 {
		t.Errorf("attempt %+v", a)
	}
	// What follows the release (its socket's CLOSE and destruction) is
	// not another attempt.
	apply(tr, cl, ev(tracer.KindDestroy, 3002, 1, 0, StateClose, any0, srv))
	if s, f := tr.Poll(4000, 1); len(s)+len(f) != 0 || tr.Tracked() != 0 {
		t.Errorf("stalled %v finished %v tracked %d", s, f, tr.Tracked())
	}
}

// A socket already in SYN-SENT when tracing started is first seen at a
// retransmit.
func TestActiveBeforeTracing(t *testing.T) {
	tr := NewStallTracker()
	r := ev(tracer.KindRetrans, 5000, 9, StateSynSent, StateSynSent, cli, srv)
	apply(tr, r, ev(tracer.KindState, 6000, 9, StateSynSent, StateEstablished, cli, srv))
	_, fin := tr.Poll(6000, 0)
	if a := one(t, fin); !a.BeforeTracing || a.Start != 5000 || a.Retransmits != 1 || a.Outcome != OutcomeEstablished || a.PID != 100 {
		t.Errorf("attempt %+v", a)
	}
	// Events about sockets that are not attempts change nothing.
	e := ev(tracer.KindError, 7000, 10, StateEstablished, StateClose, cli, srv)
	e.Errno = uint32(unix.ECONNRESET)
	apply(tr, e, ev(tracer.KindReset, 7000, 10, StateEstablished, StateEstablished, cli, srv),
		ev(tracer.KindState, 7000, 11, StateEstablished, StateFinWait1, cli, srv))
	if s, f := tr.Poll(8000, 1); len(s)+len(f) != 0 || tr.Tracked() != 0 {
		t.Errorf("stalled %v finished %v tracked %d", s, f, tr.Tracked())
	}
}

// A second connect on the same socket after a failure is a new attempt.
func TestActiveReconnect(t *testing.T) {
	tr := NewStallTracker()
	cl := ev(tracer.KindState, 2000, 1, StateSynSent, StateClose, any0, srv)
	cl.Retrans = 1
	apply(tr, synSent(1000, 1), cl, synSent(2100, 1), ev(tracer.KindState, 2200, 1, StateSynSent, StateEstablished, cli, srv))
	_, fin := tr.Poll(2200, 0)
	if len(fin) != 2 || fin[0].Outcome != OutcomeTimedOut || fin[0].Start != 1000 || fin[0].End != 2000 ||
		fin[1].Outcome != OutcomeEstablished || fin[1].Start != 2100 {
		t.Fatalf("finished %+v", fin)
	}
}

// listen creates a listener owned by pid 300 ("server").
func listen(tr *StallTracker) {
	l := ev(tracer.KindState, 10, 50, StateClose, StateListen, srv, netip.MustParseAddrPort("0.0.0.0:0"))
	l.PID = 300
	copy(l.Comm[:], "server\x00")
	tr.Apply(l)
}

// A passive attempt completed at once: its child's two transitions come
// together; the handshake's RTT stands for its time pending.
func TestPassiveEstablished(t *testing.T) {
	tr := NewStallTracker()
	listen(tr)
	syn := ev(tracer.KindState, 1000*ms, 2, StateListen, StateSynRecv, srv, cli)
	syn.OwnerKnown, syn.PID = false, 22
	est := ev(tracer.KindState, 1000*ms+6, 2, StateSynRecv, StateEstablished, srv, cli)
	est.OwnerKnown, est.PID, est.RTTus, est.Since = false, 22, 19, 1000*ms
	apply(tr, syn, est)
	_, fin := tr.Poll(1001*ms, 0)
	a := one(t, fin)
	if !a.Passive || a.Outcome != OutcomeEstablished || a.PID != 300 || a.Comm != "server" || a.Dst() != srv || a.Src() != cli ||
		a.Pending(0) != 19*time.Microsecond || a.End != 1000*ms+6 {
		t.Errorf("attempt %+v pending %s", a, a.Pending(0))
	}
}

// Where tracing programs cannot make cookies (5.10: core-5.10), the
// child's LISTEN → SYN-RECV has none and its SYN-RECV → ESTABLISHED has
// the one the sock_ops hook gave it: the two are one attempt, joined by
// addresses, that began while tracing (not "before tracing").
func TestPassiveEstablishedChildWithoutCookie(t *testing.T) {
	tr := NewStallTracker()
	listen(tr)
	syn := ev(tracer.KindState, 1000*ms, 0, StateListen, StateSynRecv, srv, cli)
	syn.OwnerKnown, syn.PID = false, 22
	est := ev(tracer.KindState, 1000*ms+6, 2, StateSynRecv, StateEstablished, srv, cli)
	est.OwnerKnown, est.PID, est.RTTus, est.Since = false, 22, 19, 0
	apply(tr, syn)
	if st, fin := tr.Poll(1000*ms+3, time.Microsecond); len(st)+len(fin) != 0 {
		t.Fatalf("the child without a cookie ended or stalled at once: %+v %+v", st, fin)
	}
	apply(tr, est)
	_, fin := tr.Poll(1001*ms, 0)
	a := one(t, fin)
	if !a.Passive || a.Outcome != OutcomeEstablished || a.PID != 300 || a.Cookie != 2 || a.BeforeTracing ||
		a.Pending(0) != 19*time.Microsecond || a.End != 1000*ms+6 {
		t.Errorf("attempt %+v pending %s", a, a.Pending(0))
	}
	if len(tr.requests)+len(tr.bySock) != 0 {
		t.Errorf("left behind: requests %v, sockets %v", tr.requests, tr.bySock)
	}
}

// Without a known listener the accept names the owner, or the grace ends
// the wait.
func TestPassiveOwnerFromAccept(t *testing.T) {
	tr := NewStallTracker()
	apply(tr, ev(tracer.KindState, 1000, 2, StateListen, StateSynRecv, srv, cli),
		ev(tracer.KindState, 1006, 2, StateSynRecv, StateEstablished, srv, cli))
	// (the helper marks these owner-known; the child's owner is unknown)
	tr.bySock[2].PID, tr.bySock[2].Comm = 0, ""
	tr.bySock[2].complete = false
	if _, fin := tr.Poll(1010, 0); len(fin) != 0 {
		t.Fatalf("finished before the accept: %+v", fin)
	}
	acc := ev(tracer.KindAccept, 2000, 2, 0, StateEstablished, srv, cli)
	acc.PID = 400
	copy(acc.Comm[:], "acceptor")
	apply(tr, acc)
	_, fin := tr.Poll(2001, 0)
	if a := one(t, fin); a.PID != 400 || a.Comm != "acceptor" {
		t.Errorf("attempt %+v", a)
	}
	// The accept taught the listener's owner.
	syn := ev(tracer.KindState, 3000, 3, StateListen, StateSynRecv, srv, cli)
	syn.OwnerKnown, syn.PID = false, 0
	apply(tr, syn)
	if a := tr.bySock[3]; a.PID != 400 {
		t.Errorf("second attempt's owner %d, want 400", a.PID)
	}
}

// A passive attempt whose final ACK is lost: SYN-ACK retransmits (keyed by
// addresses, with the first SYN-ACK's time), then the child.
func TestPassiveRetransmitted(t *testing.T) {
	tr := NewStallTracker()
	listen(tr)
	first := uint64(1000 * ms)
	sa := func(ts uint64, before uint32) *tracer.Event {
		e := ev(tracer.KindSynAck, ts, 50, StateSynRecv, StateSynRecv, srv, cli)
		e.Since, e.Retrans, e.PID = first, before, 300
		return e
	}
	apply(tr, sa(first+1000*ms, 0))
	s, _ := tr.Poll(first+1000*ms, 500*time.Millisecond)
	if a := one(t, s); !a.Passive || a.Start != first || a.Retransmits != 1 || a.PID != 300 || a.Cookie != 0 {
		t.Errorf("stalled %+v", a)
	}
	apply(tr, sa(first+3000*ms, 1))
	// The child arrives (v4-mapped, as from a v6 listener).
	mapped := func(ap netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
	syn := ev(tracer.KindState, first+3040*ms, 2, StateListen, StateSynRecv, mapped(srv), mapped(cli))
	est := ev(tracer.KindState, first+3040*ms+6, 2, StateSynRecv, StateEstablished, mapped(srv), mapped(cli))
	est.Retrans, est.RTTus = 2, 3040000
	apply(tr, syn, est)
	s, fin := tr.Poll(first+3041*ms, 500*time.Millisecond)
	a := one(t, fin)
	if len(s) != 0 || a.Outcome != OutcomeEstablished || a.Retransmits != 2 || a.Pending(0) != 3040*time.Millisecond+6 || !a.Stalled || a.Cookie != 2 {
		t.Errorf("stalled %v, attempt %+v", s, a)
	}
	if tr.Tracked() != 0 {
		t.Errorf("%d still tracked", tr.Tracked())
	}
}

// A listener born before tracing is known from the inventory, by cookie.
func TestPassiveListenerFromInventory(t *testing.T) {
	tr := NewStallTracker()
	tr.Listener(50, 1, 0, 500, "old-server")
	e := ev(tracer.KindSynAck, 2000*ms, 50, StateSynRecv, StateSynRecv, srv, cli)
	e.Since, e.OwnerKnown, e.PID = 1000*ms, false, 22
	apply(tr, e)
	s, _ := tr.Poll(2000*ms, time.Second)
	if a := one(t, s); a.PID != 500 || a.Comm != "old-server" {
		t.Errorf("stalled %+v", a)
	}
	// Later attempts on its port too, even without a retransmit.
	apply(tr, ev(tracer.KindState, 3000*ms, 3, StateListen, StateSynRecv, srv, netip.MustParseAddrPort("127.0.0.1:40001")))
	if a := tr.bySock[3]; a == nil || a.PID != 500 {
		t.Errorf("child attempt %+v", a)
	}
	// A listener known by its port names its children's owner at once.
	tr = NewStallTracker()
	tr.Listener(60, 1, srv.Port(), 600, "mptcp-server")
	apply(tr, ev(tracer.KindState, 3000*ms, 4, StateListen, StateSynRecv, srv, cli))
	if a := tr.bySock[4]; a == nil || a.PID != 600 || a.Comm != "mptcp-server" {
		t.Errorf("child attempt %+v", a)
	}
}

// A request that goes silent after its SYN-ACK retransmits timed out.
func TestPassiveRequestTimesOut(t *testing.T) {
	tr := NewStallTracker()
	e := ev(tracer.KindSynAck, 2000*ms, 50, StateSynRecv, StateSynRecv, srv, cli)
	e.Since, e.OwnerKnown = 1000*ms, false
	apply(tr, e)
	// Next SYN-ACK expected 2 s later; silence for twice that ends it.
	if _, fin := tr.Poll(2000*ms+4000*ms-1, 0); len(fin) != 0 {
		t.Fatalf("finished early: %+v", fin)
	}
	_, fin := tr.Poll(2000*ms+4000*ms, 0)
	a := one(t, fin)
	if a.Outcome != OutcomeTimedOut || !a.Inferred || a.End != 4000*ms || a.PID != 0 {
		t.Errorf("attempt %+v", a)
	}
}

// Finish reports what is still pending and decides what awaited details.
func TestFinish(t *testing.T) {
	tr := NewStallTracker()
	cl := ev(tracer.KindState, 2000, 2, StateSynSent, StateClose, any0, srv)
	cl.Retrans = 1
	e := ev(tracer.KindSynAck, 3000, 50, StateSynRecv, StateSynRecv, srv, cli)
	apply(tr, synSent(1000, 1), synSent(1500, 2), cl, e)
	fin, pending := tr.Finish(5000)
	if len(fin) != 1 || fin[0].Cookie != 2 || fin[0].Outcome != OutcomeTimedOut {
		t.Errorf("finished %+v", fin)
	}
	if len(pending) != 2 || pending[0].Cookie != 1 || !pending[1].Passive || pending[0].Outcome != OutcomePending ||
		pending[0].Pending(5000) != 4000 {
		t.Errorf("pending %+v", pending)
	}
	if tr.Tracked() != 0 {
		t.Errorf("%d still tracked", tr.Tracked())
	}
}

func TestMaxTracked(t *testing.T) {
	tr := NewStallTracker()
	for i := uint64(1); i <= MaxTracked+5; i++ {
		tr.Apply(synSent(i, i))
	}
	if tr.Tracked() != MaxTracked || tr.Untracked != 5 {
		t.Errorf("tracked %d untracked %d", tr.Tracked(), tr.Untracked)
	}
}

func TestPercentiles(t *testing.T) {
	var d LatencyDist
	if d.Summary() != (LatencySummary{}) {
		t.Errorf("empty: %+v", d.Summary())
	}
	for i := 100; i >= 1; i-- {
		d.Add(time.Duration(i) * time.Millisecond)
	}
	s := d.Summary()
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P90 != 90*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Errorf("1..100 ms: %+v", s)
	}
	var one LatencyDist
	one.Add(7)
	if s := one.Summary(); s.P50 != 7 || s.P99 != 7 || s.Max != 7 {
		t.Errorf("one value: %+v", s)
	}
}

// Past ExactSamples the histogram answers within its precision.
func TestPercentilesHistogram(t *testing.T) {
	var d LatencyDist
	rng := rand.New(rand.NewSource(1))
	var all []time.Duration
	for range 50000 {
		v := time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))
		all = append(all, v)
		d.Add(v)
	}
	if d.samples != nil || d.hist == nil {
		t.Fatal("histogram not in use")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, p := range []float64{50, 90, 99, 100} {
		exact := all[int(p/100*float64(len(all)))-1]
		got := d.Percentile(p)
		if diff := float64(got-exact) / float64(exact); diff > 1.0/64 || diff < -1.0/64 {
			t.Errorf("p%v: %s, exact %s", p, got, exact)
		}
	}
	if d.Max != all[len(all)-1] || d.Count != 50000 {
		t.Errorf("max %s count %d", d.Max, d.Count)
	}
	for _, v := range []time.Duration{0, 1, 127, 128, 129, 1000, 123456789, 1 << 62} {
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Errorf("%d in bucket [%d, %d]", v, lo, hi)
		}
	}
}

func TestStallStats(t *testing.T) {
	s := NewStallStats()
	other := netip.MustParseAddrPort("10.0.0.1:443")
	add := func(outcome string, passive bool, dst netip.AddrPort, pid uint32, d time.Duration) {
		a := &Attempt{Outcome: outcome, Passive: passive, PID: pid, Comm: "p", Start: 1000, End: 1000 + uint64(d)}
		if passive {
			a.Local = dst
		} else {
			a.Peer = dst
		}
		s.Add(a)
	}
	add(OutcomeEstablished, false, srv, 1, time.Millisecond)
	add(OutcomeEstablished, false, srv, 1, 3*time.Millisecond)
	add(OutcomeRefused, false, srv, 2, 0)
	add(OutcomeTimedOut, false, other, 2, 3*time.Second)
	add(OutcomeEstablished, true, srv, 3, 2*time.Millisecond)
	if s.All.Attempts != 5 || s.All.Outcomes[OutcomeEstablished] != 3 || s.All.Latency.Count != 3 || s.All.Latency.Max != 3*time.Millisecond {
		t.Errorf("all: %+v", s.All)
	}
	dsts := s.ByDestination()
	if len(dsts) != 3 || dsts[0].Dst != srv || dsts[0].Passive || dsts[0].Attempts != 3 || dsts[0].Outcomes[OutcomeRefused] != 1 ||
		dsts[0].Latency.Summary().P50 != time.Millisecond || !dsts[2].Passive {
		t.Errorf("by destination: %+v %+v %+v", dsts[0], dsts[1], dsts[2])
	}
	procs := s.ByProcess()
	if len(procs) != 3 || procs[0].PID != 1 || procs[1].PID != 2 || procs[1].Outcomes[OutcomeTimedOut] != 1 {
		t.Errorf("by process: %+v", procs)
	}
}

// A request's first SYN-ACK, from its timer: after n retransmissions the
// timer runs 1 s << n from the last one.
func TestRequestStart(t *testing.T) {
	s := uint64(time.Second)
	for _, c := range []struct {
		now     uint64
		expires time.Duration
		retrans int
		want    uint64
	}{
		{100 * s, 700 * time.Millisecond, 0, 100*s + 700*uint64(time.Millisecond) - s}, // 300 ms old
		{100 * s, 2 * time.Second, 2, 100*s + 2*s - 7*s},                               // 1+2+4 s of timers
		{1 * s, 0, 3, 0}, // older than the clock: unknown
	} {
		if got := RequestStart(c.now, c.expires, c.retrans); got != c.want {
			t.Errorf("RequestStart(%d, %v, %d) = %d, want %d", c.now, c.expires, c.retrans, got, c.want)
		}
	}
}

// A request found by scans is pending, with the listener's owner; once the
// scans stop finding it (and no child came) it is taken for timed out.
func TestStallTrackerRequestScan(t *testing.T) {
	tr := NewStallTracker()
	s := uint64(time.Second)
	local, peer := netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.2:5000")
	tr.Listener(1, 9, 80, 42, "server")
	tr.Request(9, 2, local, peer, 10*s, 10*s+300*uint64(time.Millisecond), 0)
	stalled, _ := tr.Poll(10*s+300*uint64(time.Millisecond), 200*time.Millisecond)
	if len(stalled) != 1 || !stalled[0].Passive || stalled[0].PID != 42 || stalled[0].Dst() != local {
		t.Fatalf("stalled %+v", stalled)
	}
	tr.Request(9, 2, local, peer, 10*s, 12*s, 1)
	if _, fin := tr.Poll(12*s+500*uint64(time.Millisecond), 0); len(fin) != 0 {
		t.Fatalf("a request the last scan found is over: %+v", fin[0])
	}
	_, fin := tr.Poll(16*s, 0)
	if len(fin) != 1 || fin[0].Outcome != OutcomeTimedOut || !fin[0].Inferred || fin[0].Retransmits != 1 {
		t.Fatalf("finished %+v", fin)
	}
}
