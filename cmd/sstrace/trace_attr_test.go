package main

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// connChurnEvents appends the events trace reads for one loopback
// connection of testdata/bench/churn/connchurn.c (client closes first),
// as tracer.Read hands them out: births, accepts and transitions of the
// client and the accepted socket, their releases and destroys; owners
// filled in where the tracer took them from a birth or accept.
func connChurnEvents(evs []tracer.Event, i int, ts uint64) []tracer.Event {
	const ns = 4026531840
	srv := netip.MustParseAddrPort("127.0.0.1:35795")
	cli := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1024+i%60000))
	any4 := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	c, s := uint64(1000+2*i), uint64(1001+2*i) // cookies: client, accepted
	base := tracer.Event{NetNS: ns, CurPID: 11075, Comm: comm("connect"), Family: unix.AF_INET, Protocol: 6, Type: unix.SOCK_STREAM}
	ev := func(kind tracer.Kind, cookie uint64, old, new uint8, local, peer netip.AddrPort, owned bool) {
		e := base
		e.Kind, e.Cookie, e.OldState, e.NewState, e.Local, e.Peer = kind, cookie, old, new, local, peer
		e.TS, ts = ts, ts+1000
		if owned {
			e.PID, e.OwnerKnown, e.OwnerFromEvents, e.Since = 11075, true, true, e.TS-500
		}
		evs = append(evs, e)
	}
	ev(tracer.KindBirth, c, 0, 7, any4, any4, false)
	ev(tracer.KindState, c, 7, 2, netip.AddrPortFrom(cli.Addr(), 0), srv, true)
	ev(tracer.KindState, c, 2, 1, cli, srv, true)
	ev(tracer.KindState, s, 10, 3, srv, cli, false)
	ev(tracer.KindState, s, 3, 1, srv, cli, false)
	ev(tracer.KindAccept, s, 0, 1, srv, cli, false)
	ev(tracer.KindRelease, c, 0, 1, any4, srv, true)
	ev(tracer.KindState, c, 1, 4, cli, srv, true)
	ev(tracer.KindState, s, 1, 8, srv, cli, true)
	ev(tracer.KindRelease, s, 0, 8, any4, cli, true)
	ev(tracer.KindState, s, 8, 9, srv, cli, true)
	ev(tracer.KindState, c, 4, 5, cli, srv, true)
	ev(tracer.KindState, c, 5, 7, cli, srv, true)
	ev(tracer.KindDestroy, c, 0, 7, cli, srv, true)
	ev(tracer.KindState, s, 9, 7, srv, cli, true)
	ev(tracer.KindDestroy, s, 0, 7, srv, cli, true)
	return evs
}

// The cost of trace's own attribution per event of a connection churn
// (a listener known from the start).
func BenchmarkTraceAttributor(b *testing.B) {
	a := newAttributor()
	a.addListener(4026531840, 1, netip.MustParseAddrPort("127.0.0.1:35795"), sockOwner{PID: 11075, Comm: comm("connect"), From: ownerSyscall})
	var evs []tracer.Event
	for i := 0; i < 1024; i++ {
		evs = connChurnEvents(evs, i, uint64(i)*1e5)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := evs[i%len(evs)]
		e.Cookie += uint64(i / len(evs) * 4096) // new sockets each round
		a.apply(&e)
		i++
	}
}
