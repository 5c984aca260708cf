package tracer

import "net/netip"

// Outside follow mode the BPF side keeps no per-socket state (see owner_of
// in bpf/sstrace.bpf.c): a map write at every birth and a delete at every
// death cost a churning host more than the rest of the hooks together.
// attribution does that bookkeeping here, off the workload's CPU: from the
// births, accepts and transitions it has read, it gives each later event of
// the same socket its owner (the process that created or accepted it; a
// transition in softirq runs on whatever task was interrupted) and the
// time of the socket's previous transition, and it gives a release the
// local address the kernel does not let a sock_release program read.
type attribution struct {
	socks map[uint64]*sockMeta
	// recent: cookies whose destroy was handed out from a Dying release,
	// so that the kernel's own destroy of the same socket, reported only
	// when the closing task changed CPUs inside close(), is not handed
	// out twice.
	recent [64]uint64
	next   int
	// Forgotten counts entries dropped because the table reached
	// maxAttributed (deaths lost with ring drops leave entries behind).
	Forgotten uint64
	// free: entries of sockets gone, for the next ones (on a churning
	// host, thousands a second).
	free []*sockMeta
}

type sockMeta struct {
	pid   uint32
	owned bool
	comm  [16]byte
	last  uint64 // previous transition (or birth), CLOCK_MONOTONIC ns
	local netip.AddrPort
	netns uint32
}

// maxAttributed bounds the table: well above the live sockets of a busy
// host, and a few tens of MiB at most.
const maxAttributed = 1 << 20

// maxFree bounds the entries kept for reuse.
const maxFree = 1024

func newAttribution() *attribution {
	return &attribution{socks: make(map[uint64]*sockMeta)}
}

// apply fills in ev from what is known of its socket and records what ev
// tells of it.
func (a *attribution) apply(ev *Event) {
	if ev.Cookie == 0 || ev.NoCookie {
		return
	}
	m := a.socks[ev.Cookie]
	switch ev.Kind {
	case KindBirth, KindAccept:
		if m == nil {
			m = a.add(ev.Cookie)
		}
		*m = sockMeta{pid: ev.PID, owned: true, comm: ev.Comm, last: ev.TS, local: ev.Local, netns: ev.NetNS}
		return
	case KindSynAck:
		// The cookie is the listener's; Since is the request's own.
		if m != nil {
			a.own(ev, m)
		}
		return
	}
	if m == nil {
		if ev.Kind == KindState {
			m = a.add(ev.Cookie)
			m.last, m.local, m.netns = ev.TS, ev.Local, ev.NetNS
		}
		return
	}
	a.own(ev, m)
	if ev.Since == 0 {
		ev.Since = m.last
	}
	if ev.Kind == KindRelease {
		if ev.Local.Port() == 0 && ev.Local.Addr().IsUnspecified() && m.local.IsValid() {
			ev.Local = m.local
		}
		if ev.NetNS == 0 {
			ev.NetNS = m.netns
		}
	} else if ev.Local.IsValid() {
		m.local = ev.Local
		if ev.NetNS != 0 {
			m.netns = ev.NetNS
		}
	}
	switch {
	case ev.Kind == KindState:
		m.last = ev.TS
	case ev.Kind == KindDestroy, ev.Kind == KindRelease && ev.Protocol != ipprotoTCP:
		delete(a.socks, ev.Cookie)
		if len(a.free) < maxFree {
			a.free = append(a.free, m)
		}
	}
}

func (a *attribution) own(ev *Event, m *sockMeta) {
	if !ev.OwnerKnown && m.owned {
		ev.PID, ev.Comm, ev.OwnerKnown, ev.OwnerFromEvents = m.pid, m.comm, true, true
	}
}

func (a *attribution) add(cookie uint64) *sockMeta {
	if len(a.socks) >= maxAttributed {
		a.Forgotten += uint64(len(a.socks))
		clear(a.socks)
	}
	var m *sockMeta
	if n := len(a.free); n > 0 {
		m, a.free = a.free[n-1], a.free[:n-1]
		*m = sockMeta{}
	} else {
		m = &sockMeta{}
	}
	a.socks[cookie] = m
	return m
}

// unfolded records that the destroy of cookie was handed out from a Dying
// release; duplicate reports whether a destroy read from the ring is that
// same death again.
func (a *attribution) unfolded(cookie uint64) {
	a.recent[a.next] = cookie
	a.next = (a.next + 1) % len(a.recent)
}

func (a *attribution) duplicate(ev *Event) bool {
	if ev.Kind != KindDestroy || ev.Cookie == 0 {
		return false
	}
	for i, c := range a.recent {
		if c == ev.Cookie {
			a.recent[i] = 0
			return true
		}
	}
	return false
}

const ipprotoTCP = 6
