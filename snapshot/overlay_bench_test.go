package snapshot

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"sstrace/tracer"
)

// Benchmarks of Overlay.Apply: what keeping watch's table current costs per
// event, for the event streams of the two churn workloads of `make bench`
// (testdata/bench/churn), replayed in the order the tracer delivers them
// (taken from `sstrace trace -j` of those programs), on an overlay loaded
// with a dump of `dumped` established sockets.
//
// One op is one socket (3 events) or one connection (16 events); ns/event is
// reported beside ns/op. A connection closed actively leaves a TIME-WAIT
// minisocket in the overlay for 60 s of event time: conn-churn advances
// event time by 60 s / timewait per connection and expires minisockets
// every timewait/64 connections (watch expires them once a frame), so that
// about `timewait` of them are alive at any time, as on a host churning
// timewait/60 connections a second.

const (
	benchNetNS    = 4026532246
	benchListener = 34727
	benchTCP      = 6              // IPPROTO_TCP
	benchTimeWait = 60_000_000_000 // TCP_TIMEWAIT_LEN, ns
)

var benchComm = [16]byte{'c', 'o', 'n', 'n', 'c', 'h', 'u', 'r', 'n'}

// benchDump is a dump of n established sockets (n/2 loopback pairs) and
// one listener, the shape testdata/bench/farm leaves.
func benchDump(n int) []Socket {
	lo := netip.MustParseAddr("127.0.0.1")
	socks := make([]Socket, 0, n+1)
	socks = append(socks, Socket{Family: 2, Type: 1, Protocol: benchTCP, State: StateListen, Cookie: 1, Inode: 1,
		NetNS: benchNetNS, Local: netip.AddrPortFrom(lo, benchListener), HasShutdown: true})
	for i := 0; i < n; i++ {
		srv := netip.AddrPortFrom(lo, 20000)
		cli := netip.AddrPortFrom(lo, uint16(30000+i/2%30000))
		s := Socket{Family: 2, Type: 1, Protocol: benchTCP, State: StateEstablished, Cookie: uint64(i + 2),
			Inode: uint32(i + 2), NetNS: benchNetNS, HasShutdown: true, Local: cli, Peer: srv}
		if i%2 == 1 {
			s.Local, s.Peer = srv, cli
		}
		socks = append(socks, s)
	}
	return socks
}

// benchStream builds the events of one socket or connection into a
// reusable slice.
type benchStream struct {
	evs    []tracer.Event
	cookie uint64 // next cookie (and inode)
	ts     uint64
	step   uint64 // event time between events
}

func (s *benchStream) ev(kind tracer.Kind, cookie uint64, from, to uint8, local, peer netip.AddrPort) *tracer.Event {
	s.ts += s.step
	s.evs = append(s.evs, tracer.Event{Kind: kind, TS: s.ts, Cookie: cookie, NetNS: benchNetNS, PID: 4242, CurPID: 4242,
		Comm: benchComm, OwnerKnown: kind != tracer.KindBirth && kind != tracer.KindAccept,
		Family: 2, Protocol: benchTCP, Type: 1, OldState: from, NewState: to, Local: local, Peer: peer})
	return &s.evs[len(s.evs)-1]
}

// socket is socket() then close(): churn.c.
func (s *benchStream) socket() {
	s.evs = s.evs[:0]
	c := s.cookie
	s.cookie++
	var none netip.AddrPort
	b := s.ev(tracer.KindBirth, c, StateClose, StateClose, none, none)
	b.FD, b.Inode = 3, uint32(c)
	s.ev(tracer.KindRelease, c, StateClose, StateClose, none, none)
	s.ev(tracer.KindDestroy, c, StateClose, StateClose, none, none)
}

// conn is one loopback connection of connchurn.c: connect, accept, the
// client closes, then the server.
func (s *benchStream) conn(port uint16) {
	s.evs = s.evs[:0]
	cli, srv := s.cookie, s.cookie+1
	s.cookie += 2
	lo := netip.MustParseAddr("127.0.0.1")
	var none netip.AddrPort
	l := netip.AddrPortFrom(lo, benchListener)
	p := netip.AddrPortFrom(lo, port)
	b := s.ev(tracer.KindBirth, cli, StateClose, StateClose, none, none)
	b.FD, b.Inode = 4, uint32(cli)
	s.ev(tracer.KindState, cli, StateClose, StateSynSent, netip.AddrPortFrom(lo, 0), l)
	s.ev(tracer.KindState, cli, StateSynSent, StateEstablished, p, l)
	s.ev(tracer.KindState, srv, StateListen, StateSynRecv, l, p).OwnerKnown = false
	s.ev(tracer.KindState, srv, StateSynRecv, StateEstablished, l, p).OwnerKnown = false
	a := s.ev(tracer.KindAccept, srv, StateEstablished, StateEstablished, l, p)
	a.FD, a.Inode = 5, uint32(srv)
	s.ev(tracer.KindRelease, cli, StateEstablished, StateEstablished, p, l)
	s.ev(tracer.KindState, cli, StateEstablished, StateFinWait1, p, l)
	s.ev(tracer.KindState, srv, StateEstablished, StateCloseWait, l, p)
	s.ev(tracer.KindRelease, srv, StateCloseWait, StateCloseWait, l, p)
	s.ev(tracer.KindState, srv, StateCloseWait, StateLastAck, l, p)
	s.ev(tracer.KindState, cli, StateFinWait1, StateFinWait2, p, l)
	s.ev(tracer.KindState, cli, StateFinWait2, StateClose, p, l).PeerFIN = true
	s.ev(tracer.KindDestroy, cli, StateClose, StateClose, p, l)
	s.ev(tracer.KindState, srv, StateLastAck, StateClose, l, p)
	s.ev(tracer.KindDestroy, srv, StateClose, StateClose, l, p)
}

func BenchmarkOverlayApply(b *testing.B) {
	for _, dumped := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("socket-churn/dumped=%d", dumped), func(b *testing.B) {
			o := NewOverlay(benchDump(dumped))
			s := &benchStream{cookie: 1 << 40, ts: 1e9, step: 1000}
			var events int
			b.ReportAllocs()
			for b.Loop() {
				s.socket()
				for i := range s.evs {
					o.Apply(&s.evs[i])
				}
				events += len(s.evs)
			}
			if o.Len() != dumped+1 {
				b.Fatalf("%d sockets left, want %d", o.Len(), dumped+1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		})
	}
	for _, dumped := range []int{0, 100_000} {
		for _, timewait := range []int{1000, 10_000} {
			b.Run(fmt.Sprintf("conn-churn/dumped=%d/timewait=%d", dumped, timewait), func(b *testing.B) {
				o := NewOverlay(benchDump(dumped))
				const perConn = 16
				s := &benchStream{cookie: 1 << 40, ts: 1e9, step: benchTimeWait / uint64(timewait) / perConn}
				expireEvery := max(timewait/64, 1)
				var events, conns int
				b.ReportAllocs()
				for b.Loop() {
					s.conn(uint16(1024 + conns%64000))
					for i := range s.evs {
						o.Apply(&s.evs[i])
					}
					events += len(s.evs)
					conns++
					if conns%expireEvery == 0 {
						o.Expire(s.ts)
					}
				}
				if live := o.Len() - dumped - 1; live < 0 || live > timewait+expireEvery+1 {
					b.Fatalf("%d minisockets alive, want about %d", live, timewait)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
			})
		}
	}
}

// BenchmarkOverlayLoad loads an overlay with a dump of 100k established
// sockets, as watch's start-up does from DumpEntries (one Entry per row,
// no row kept), and reports the heap the overlay holds per socket once
// loaded (live-B/socket: entries, the cookie map, the listener index).
func BenchmarkOverlayLoad(b *testing.B) {
	dump := benchDump(100_000)
	var o *Overlay
	var live uint64
	b.ReportAllocs()
	for b.Loop() {
		o = nil
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		now := monotonicNow()
		entries := make([]*Entry, len(dump))
		for i := range dump {
			entries[i] = newEntry(&dump[i], now)
		}
		o = NewOverlayEntries(entries)
		entries = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		live = after.HeapAlloc - before.HeapAlloc
	}
	if o.Len() != len(dump) {
		b.Fatalf("%d sockets loaded, want %d", o.Len(), len(dump))
	}
	b.ReportMetric(float64(live)/float64(len(dump)), "live-B/socket")
}
