package tracer

import (
	"net/netip"
	"testing"
)

func comm(s string) (c [16]byte) {
	copy(c[:], s)
	return c
}

// A socket's life as the ring delivers it outside follow mode (BPF knows no
// owners): attribution gives each later event the creator as owner and the
// time of the previous transition, and a release its local address.
func TestAttribution(t *testing.T) {
	a := newAttribution()
	local := netip.MustParseAddrPort("127.0.0.1:4000")
	peer := netip.MustParseAddrPort("127.0.0.2:80")
	evs := []Event{
		{Kind: KindBirth, TS: 100, Cookie: 7, PID: 42, Comm: comm("client"), Protocol: ipprotoTCP},
		{Kind: KindState, TS: 150, Cookie: 7, PID: 9, Comm: comm("softirq"), OldState: 7, NewState: 2, Local: local, Peer: peer, NetNS: 5},
		{Kind: KindState, TS: 180, Cookie: 7, PID: 9, OldState: 2, NewState: 1, Local: local, Peer: peer, NetNS: 5},
		{Kind: KindRelease, TS: 300, Cookie: 7, PID: 42, Protocol: ipprotoTCP, NewState: 1,
			Local: netip.AddrPortFrom(netip.IPv4Unspecified(), 0), Peer: peer},
		{Kind: KindDestroy, TS: 400, Cookie: 7, PID: 1, Local: local, Peer: peer, NetNS: 5},
	}
	wantSince := []uint64{0, 100, 150, 180, 180}
	for i := range evs {
		ev := &evs[i]
		a.apply(ev)
		if ev.Since != wantSince[i] {
			t.Errorf("%v: since %d, want %d", ev.Kind, ev.Since, wantSince[i])
		}
		if i > 0 && (!ev.OwnerKnown || !ev.OwnerFromEvents || ev.PID != 42 || ev.CommString() != "client") {
			t.Errorf("%v: owner %d %q known=%v, want 42 client", ev.Kind, ev.PID, ev.CommString(), ev.OwnerKnown)
		}
	}
	if rel := evs[3]; rel.Local != local || rel.NetNS != 5 {
		t.Errorf("release: local %v netns %d, want %v 5", rel.Local, rel.NetNS, local)
	}
	if len(a.socks) != 0 {
		t.Errorf("%d sockets still attributed after the destroy", len(a.socks))
	}
}

// An owner BPF already knows (follow mode) is kept; a socket first seen in
// a transition gets times but no owner; a UDP release ends the entry.
func TestAttributionKeepsBPFOwner(t *testing.T) {
	a := newAttribution()
	ev := Event{Kind: KindState, TS: 10, Cookie: 1, PID: 5, OldState: 10, NewState: 3}
	a.apply(&ev)
	if ev.OwnerKnown || ev.Since != 0 {
		t.Errorf("first transition of an unknown socket: owner %v since %d", ev.OwnerKnown, ev.Since)
	}
	ev = Event{Kind: KindState, TS: 20, Cookie: 1, PID: 77, OwnerKnown: true, Since: 15, OldState: 3, NewState: 1}
	a.apply(&ev)
	if ev.PID != 77 || ev.Since != 15 || ev.OwnerFromEvents {
		t.Errorf("BPF's owner and since replaced: pid %d since %d", ev.PID, ev.Since)
	}
	udp := Event{Kind: KindBirth, TS: 30, Cookie: 2, PID: 3, Protocol: 17}
	a.apply(&udp)
	udp = Event{Kind: KindRelease, TS: 40, Cookie: 2, Protocol: 17}
	a.apply(&udp)
	if _, ok := a.socks[2]; ok || udp.PID != 3 {
		t.Errorf("UDP release: pid %d, entry kept %v", udp.PID, ok)
	}
}

// A Dying release unfolds into release and destroy; the kernel's own
// destroy of the same socket (sent when close() changed CPUs) is dropped.
func TestUnfoldDying(t *testing.T) {
	a := newAttribution()
	rel := Event{Kind: KindRelease, Dying: true, Exiting: true, Cookie: 9, TS: 5}
	var d Event
	if !Unfold(&rel, &d) {
		t.Fatal("a Dying release did not unfold")
	}
	if rel.Kind != KindRelease || !rel.Exiting || d.Kind != KindDestroy || d.Exiting || d.Dying || d.Cookie != 9 || d.TS != 5 {
		t.Errorf("unfolded into %+v and %+v", rel, d)
	}
	a.unfolded(9)
	if !a.duplicate(&Event{Kind: KindDestroy, Cookie: 9}) {
		t.Error("the kernel's destroy after an unfolded one is not a duplicate")
	}
	if a.duplicate(&Event{Kind: KindDestroy, Cookie: 9}) {
		t.Error("a duplicate is dropped only once")
	}
	plain := Event{Kind: KindRelease, Cookie: 3}
	if Unfold(&plain, &d) {
		t.Error("a plain release unfolded")
	}
}

// The table is bounded: past maxAttributed entries it starts over, and
// says how many it forgot.
func TestAttributionBounded(t *testing.T) {
	a := newAttribution()
	for c := uint64(1); c <= maxAttributed+1; c++ {
		ev := Event{Kind: KindBirth, Cookie: c, PID: 1}
		a.apply(&ev)
	}
	if len(a.socks) != 1 || a.Forgotten != maxAttributed {
		t.Errorf("%d entries, %d forgotten", len(a.socks), a.Forgotten)
	}
}

// The cost of attribution per event of a socket()+close() churn: a birth,
// then its death reported once (a Dying release, unfolded).
func BenchmarkAttribution(b *testing.B) {
	a := newAttribution()
	any4 := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	b.ReportAllocs()
	var cookie uint64
	for b.Loop() {
		cookie++
		birth := Event{Kind: KindBirth, TS: cookie * 10, Cookie: cookie, PID: 42, Comm: comm("churn"), Protocol: ipprotoTCP, Local: any4}
		a.apply(&birth)
		rel := Event{Kind: KindRelease, TS: cookie*10 + 5, Cookie: cookie, PID: 42, Protocol: ipprotoTCP, NewState: 7, Dying: true, Local: any4}
		a.apply(&rel)
		var destroy Event
		if Unfold(&rel, &destroy) {
			a.unfolded(cookie)
			a.apply(&destroy)
		}
	}
}
