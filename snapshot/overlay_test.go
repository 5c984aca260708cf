package snapshot

import (
	"net/netip"
	"testing"

	"sstrace/tracer"
)

func stateEv(cookie uint64, from, to uint8, local, peer string) *tracer.Event {
	return &tracer.Event{Kind: tracer.KindState, Cookie: cookie, Family: 2, Protocol: protoTCP,
		OldState: from, NewState: to, TS: 1_000_000_000,
		Local: netip.MustParseAddrPort(local), Peer: netip.MustParseAddrPort(peer)}
}

func minisocks(o *Overlay) []Entry {
	var out []Entry
	for _, e := range o.Entries() {
		if e.Minisock() {
			out = append(out, *e)
		}
	}
	return out
}

func TestOverlayLifecycle(t *testing.T) {
	o := NewOverlay(nil)
	o.Apply(&tracer.Event{Kind: tracer.KindBirth, Cookie: 7, Family: 2, Protocol: protoTCP, Type: 1,
		NewState: StateClose, PID: 42, FD: 3, Inode: 99, TS: 10,
		Stack: tracer.MakeStack([]uint64{0x401000}, 0x400000)})
	e, ok := o.Get(7)
	if !ok || e.Inode != 99 || len(e.Owners()) != 1 || e.Owners()[0].PID != 42 || e.Born != 10 {
		t.Fatalf("after birth: %+v", e)
	}
	o.Apply(stateEv(7, StateClose, StateSynSent, "127.0.0.1:0", "127.0.0.1:80"))
	o.Apply(stateEv(7, StateSynSent, StateEstablished, "127.0.0.1:5000", "127.0.0.1:80"))
	if e.State != StateEstablished || !e.EverConnected() || e.Local().Port() != 5000 {
		t.Fatalf("after connect: %+v", e)
	}
	// The kernel has given the port back when it reports CLOSE: keep it.
	o.Apply(stateEv(7, StateEstablished, StateClose, "127.0.0.1:0", "127.0.0.1:80"))
	if e.Local().Port() != 5000 {
		t.Errorf("CLOSE lost the local port: %s", e.Local())
	}
	// A birth again (the dump saw it first) merges, not doubles.
	o.Apply(&tracer.Event{Kind: tracer.KindBirth, Cookie: 7, PID: 42, FD: 3, Inode: 99})
	if o.Len() != 1 || len(e.Owners()) != 1 {
		t.Errorf("birth applied twice: %d sockets, owners %+v", o.Len(), e.Owners())
	}
	o.Apply(&tracer.Event{Kind: tracer.KindRelease, Cookie: 7})
	if !e.Released() || e.Owners() != nil || o.Len() != 1 {
		t.Errorf("release: %+v", e)
	}
	o.Apply(&tracer.Event{Kind: tracer.KindDestroy, Cookie: 7})
	if o.Len() != 0 {
		t.Errorf("destroy left %d sockets", o.Len())
	}
	// Deaths of sockets never seen are counted, not fatal.
	o.Apply(&tracer.Event{Kind: tracer.KindDestroy, Cookie: 8})
	if o.Unknown != 1 {
		t.Errorf("unknown = %d", o.Unknown)
	}
}

func TestOverlayMinisockets(t *testing.T) {
	const l, p = "127.0.0.1:5000", "127.0.0.1:80"
	dump := []Socket{{Family: 2, Protocol: protoTCP, State: StateEstablished, Cookie: 1, Inode: 11,
		Local: netip.MustParseAddrPort(l), Peer: netip.MustParseAddrPort(p)}}

	// Active close, then the peer's FIN: TIME-WAIT.
	o := NewOverlay(dump)
	o.Apply(stateEv(1, StateEstablished, StateFinWait1, l, p))
	o.Apply(stateEv(1, StateFinWait1, StateFinWait2, l, p))
	fin := stateEv(1, StateFinWait2, StateClose, "127.0.0.1:0", p)
	fin.PeerFIN = true
	o.Apply(fin)
	tw := minisocks(o)
	if len(tw) != 1 || tw[0].State != StateTimeWait || tw[0].Local().String() != l || tw[0].ExpiresAt != tw[0].Born+timeWaitLen {
		t.Fatalf("minisockets %+v", tw)
	}
	// It expires after TCP_TIMEWAIT_LEN.
	o.Expire(tw[0].Born + timeWaitLen - 1)
	if len(minisocks(o)) != 1 {
		t.Error("expired early")
	}
	o.Expire(tw[0].Born + timeWaitLen)
	if len(minisocks(o)) != 0 {
		t.Error("did not expire")
	}

	// An orphan leaving FIN-WAIT-2 without the peer's FIN becomes a
	// FIN-WAIT-2 minisocket.
	o = NewOverlay(dump)
	o.Apply(&tracer.Event{Kind: tracer.KindRelease, Cookie: 1})
	o.Apply(stateEv(1, StateEstablished, StateFinWait1, l, p))
	o.Apply(stateEv(1, StateFinWait1, StateFinWait2, l, p))
	o.Apply(stateEv(1, StateFinWait2, StateClose, l, p))
	if tw := minisocks(o); len(tw) != 1 || tw[0].State != StateFinWait2 {
		t.Fatalf("orphan minisockets %+v", tw)
	}
	// A new connection on the same 4-tuple ends it.
	o.Apply(stateEv(2, StateSynSent, StateEstablished, l, p))
	if tw := minisocks(o); len(tw) != 0 {
		t.Errorf("minisocket survived a new connection on its 4-tuple: %+v", tw)
	}

	// Simultaneous close: CLOSING -> CLOSE is TIME-WAIT too.
	o = NewOverlay(dump)
	o.Apply(stateEv(1, StateFinWait1, StateClosing, l, p))
	o.Apply(stateEv(1, StateClosing, StateClose, l, p))
	if tw := minisocks(o); len(tw) != 1 || tw[0].State != StateTimeWait {
		t.Errorf("CLOSING minisockets %+v", tw)
	}

	// A reset closes without one; so does the passive side's LAST-ACK.
	o = NewOverlay(dump)
	o.Apply(stateEv(1, StateEstablished, StateFinWait1, l, p))
	o.Apply(stateEv(1, StateFinWait1, StateFinWait2, l, p))
	o.Apply(&tracer.Event{Kind: tracer.KindReset, Cookie: 1})
	o.Apply(stateEv(1, StateFinWait2, StateClose, l, p))
	o.Apply(stateEv(1, StateLastAck, StateClose, l, p))
	if tw := minisocks(o); len(tw) != 0 {
		t.Errorf("minisocket after a reset: %+v", tw)
	}

	// A dumped minisocket is kept apart from cookie-keyed sockets.
	o = NewOverlay([]Socket{{Family: 2, Protocol: protoTCP, State: StateTimeWait, Cookie: 9, Timer: timerTimeWait, Expires: 1000,
		Local: netip.MustParseAddrPort(l), Peer: netip.MustParseAddrPort(p)}})
	if _, ok := o.Get(9); ok || len(minisocks(o)) != 1 {
		t.Errorf("dumped minisocket keyed by cookie or lost")
	}
}

// Events the table has no use for, about sockets it does not know, are
// ignored (the tracer sends kinds the overlay does not handle).
func TestOverlayIgnoresOtherKinds(t *testing.T) {
	o := NewOverlay(nil)
	for _, k := range []tracer.Kind{tracer.KindReset, tracer.KindRetrans, tracer.KindSynAck, tracer.KindError} {
		o.Apply(&tracer.Event{Kind: k, Cookie: 99})
	}
	if o.Len() != 0 {
		t.Errorf("%d sockets from events about unknown ones", o.Len())
	}
}

// A listener's Send-Q is its backlog, its Recv-Q the children that
// completed their handshake and wait for accept().
func TestOverlayListenerQueues(t *testing.T) {
	o := NewOverlay(nil)
	ln := stateEv(1, StateClose, StateListen, "127.0.0.1:80", "0.0.0.0:0")
	ln.Backlog = 128
	o.Apply(ln)
	l, _ := o.Get(1)
	if l.SendQ != 128 || l.RecvQ != 0 {
		t.Fatalf("listener queues %d/%d, want 0/128", l.RecvQ, l.SendQ)
	}
	o.Apply(stateEv(2, StateListen, StateSynRecv, "127.0.0.1:80", "127.0.0.1:5000"))
	o.Apply(stateEv(2, StateSynRecv, StateEstablished, "127.0.0.1:80", "127.0.0.1:5000"))
	o.Apply(stateEv(3, StateListen, StateSynRecv, "127.0.0.1:80", "127.0.0.1:5001"))
	o.Apply(stateEv(3, StateSynRecv, StateEstablished, "127.0.0.1:80", "127.0.0.1:5001"))
	if l.RecvQ != 2 {
		t.Fatalf("accept queue %d, want 2", l.RecvQ)
	}
	acc := &tracer.Event{Kind: tracer.KindAccept, Cookie: 2, Family: 2, Protocol: protoTCP,
		Local: netip.MustParseAddrPort("127.0.0.1:80"), NewState: StateEstablished}
	o.Apply(acc)
	o.Apply(acc) // an accept seen twice counts once
	if l.RecvQ != 1 {
		t.Errorf("accept queue %d after one accept, want 1", l.RecvQ)
	}
}

// Children the dump caught in an accept queue (no fd: inode 0) leave the
// queue when accepted, or when destroyed unaccepted; an orphan on the same
// port (past CLOSE-WAIT) was never queued.
func TestOverlayDumpedAcceptQueue(t *testing.T) {
	ap := netip.MustParseAddrPort
	o := NewOverlay([]Socket{
		{Family: 2, Protocol: protoTCP, State: StateListen, Local: ap("0.0.0.0:80"), Peer: ap("0.0.0.0:0"), Cookie: 1, Inode: 10, RecvQ: 2, SendQ: 128},
		{Family: 2, Protocol: protoTCP, State: StateEstablished, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5000"), Cookie: 2},
		{Family: 2, Protocol: protoTCP, State: StateCloseWait, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5001"), Cookie: 3},
		{Family: 2, Protocol: protoTCP, State: StateFinWait1, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5002"), Cookie: 4},
	})
	l, _ := o.Get(1)
	o.Apply(&tracer.Event{Kind: tracer.KindAccept, Cookie: 2, Family: 2, Protocol: protoTCP, Inode: 11,
		Local: ap("127.0.0.1:80"), NewState: StateEstablished})
	if l.RecvQ != 1 {
		t.Fatalf("accept queue %d after accepting a dumped child, want 1", l.RecvQ)
	}
	o.Apply(&tracer.Event{Kind: tracer.KindDestroy, Cookie: 4, Family: 2, Protocol: protoTCP, Local: ap("127.0.0.1:80")})
	if l.RecvQ != 1 {
		t.Fatalf("accept queue %d after an orphan's death, want 1", l.RecvQ)
	}
	o.Apply(&tracer.Event{Kind: tracer.KindDestroy, Cookie: 3, Family: 2, Protocol: protoTCP, Local: ap("127.0.0.1:80")})
	if l.RecvQ != 0 {
		t.Errorf("accept queue %d after the last queued child died, want 0", l.RecvQ)
	}
}
