package snapshot

import (
	"container/heap"
	"net/netip"
	"slices"
	"sort"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// Overlay is the socket table kept current by tracer events: loaded from one
// dump, then every event applied in order. Keyed by socket cookie.
//
// Start-up: the tracer is attached before the dump. Events from before
// the dump began (Since) are already in it and are skipped (a birth still
// lends owner and stack to a dumped socket); events from while it ran may
// or may not be, and are applied: application is idempotent (a birth
// merges into a dumped row, a transition sets the state it names, a death
// of an unknown socket is ignored), so a socket born while the dump ran is
// neither missed nor doubled.
type Overlay struct {
	socks map[uint64]*Entry
	// Sockets with no cookie in the events (classic tracepoint fallback)
	// are keyed by inode through this index, made when the first such
	// event comes (with cookies, which sock_create gives every socket,
	// it would be 100k entries no one looks up).
	byInode map[uint32]uint64
	// Applied counts events applied; Unknown those about sockets the
	// overlay never saw (deaths of sockets gone before the dump, or of
	// other namespaces' sockets when unfiltered).
	Applied, Unknown uint64
	seq, minisocks   uint64
	// TIME-WAIT minisockets by 4-tuple (a new connection on it ends
	// one), and by expiry: a connection churn keeps tens of thousands,
	// and each transition must not walk them all.
	minis     map[tuple][]uint64
	expiry    expiryHeap
	listeners map[uint16][]uint64 // port -> listener cookies
	// Stale counts events skipped for being older than the dump.
	Stale uint64
	// Since is when the dump it was loaded from began (CLOCK_MONOTONIC
	// ns; 0: unknown): a transition older than that never creates a
	// socket the dump did not have.
	Since uint64
}

// NewOverlay returns an overlay loaded with a dump.
func NewOverlay(dump []Socket) *Overlay {
	now := monotonicNow()
	entries := make([]*Entry, 0, len(dump))
	for i := range dump {
		entries = append(entries, newEntry(&dump[i], now))
	}
	return NewOverlayEntries(entries)
}

// NewOverlayEntries returns an overlay loaded with a dump's entries (see
// DumpEntries), which it keeps.
func NewOverlayEntries(dump []*Entry) *Overlay {
	o := &Overlay{socks: make(map[uint64]*Entry, len(dump))}
	for _, e := range dump {
		if e.Cookie == 0 {
			continue
		}
		if e.IsRequestSock() {
			// A request minisocket (TCP_NEW_SYN_RECV): no event names it,
			// and the child that replaces it has a cookie of its own.
			continue
		}
		if e.Minisock() {
			// A dumped minisocket: no event will name its cookie; it
			// ends by time or by a new connection on its 4-tuple.
			o.putMinisock(e)
			continue
		}
		e.setFlag(fEverConnected, e.State != StateClose && e.State != StateBoundInactive && e.State != StateSynSent)
		o.socks[e.Cookie] = e
		if e.State == StateListen {
			o.addListener(e)
		}
	}
	// A child the dump caught in its listener's accept queue: no fd yet
	// (inode 0) and not an orphan (those are past ESTABLISHED/CLOSE-WAIT).
	// The dumped Recv-Q counts it; its accept (or death) takes it off.
	for _, e := range o.socks {
		if e.Inode == 0 && !e.Minisock() && (e.State == StateEstablished || e.State == StateCloseWait) {
			if l := o.listenerOf(e.Local(), e.NetNS()); l != nil {
				e.flags |= fInAcceptQueue
			}
		}
	}
	return o
}

// Len is the number of sockets known.
func (o *Overlay) Len() int { return len(o.socks) }

// Get returns the entry for a cookie.
func (o *Overlay) Get(cookie uint64) (*Entry, bool) {
	e, ok := o.socks[cookie]
	return e, ok
}

func (o *Overlay) key(ev *tracer.Event) uint64 {
	if ev.Cookie != 0 {
		return ev.Cookie
	}
	if ev.Inode == 0 {
		return 0
	}
	if o.byInode == nil {
		o.byInode = make(map[uint32]uint64, len(o.socks))
		for k, e := range o.socks {
			if e.Inode != 0 && !e.Minisock() {
				o.byInode[e.Inode] = k
			}
		}
	}
	return o.byInode[ev.Inode]
}

// indexInode records a socket's inode, once the index is kept.
func (o *Overlay) indexInode(inode uint32, k uint64) {
	if o.byInode != nil {
		o.byInode[inode] = k
	}
}

// Apply applies one event.
func (o *Overlay) Apply(ev *tracer.Event) {
	o.Applied++
	k := o.key(ev)
	if k == 0 {
		o.Unknown++
		return
	}
	e, known := o.socks[k]
	if ev.TS < o.Since {
		// Older than the dump, which already reflects it: replaying it
		// could only regress a state, or bring back a socket whose death
		// was lost. A birth or accept still lends what only the tracer
		// knows (owner, stack) to a socket the dump has.
		if !known || (ev.Kind != tracer.KindBirth && ev.Kind != tracer.KindAccept) {
			o.Stale++
			return
		}
	}
	switch ev.Kind {
	case tracer.KindBirth, tracer.KindAccept:
		if !known {
			e = &Entry{Cookie: k, Family: uint8(ev.Family), Type: ev.Type, Protocol: uint16(ev.Protocol), State: ev.NewState}
			e.setAddrs(ev.Local, ev.Peer)
			e.setNetNS(uint64(ev.NetNS))
			o.socks[k] = e
		}
		if e.Born == 0 {
			e.Born = ev.TS
		}
		if ev.Kind == tracer.KindAccept && e.flag(fInAcceptQueue) {
			if l := o.listenerOf(ev.Local, uint64(ev.NetNS)); l != nil && l.RecvQ > 0 {
				l.RecvQ--
			}
			e.flags &^= fInAcceptQueue
		}
		e.Inode = ev.Inode
		o.indexInode(ev.Inode, k)
		e.addOwner(Owner{PID: ev.PID, FD: ev.FD, Comm: ev.CommString()})
	case tracer.KindState:
		if ev.NewState == StateEstablished || ev.NewState == StateSynRecv {
			// A new connection on a TIME-WAIT 4-tuple ends the minisocket.
			o.dropMinisock(ev.Local, ev.Peer)
		}
		if !known {
			// First sighting: an accepted child (born in the kernel) or a
			// socket the dump did not list yet.
			e = &Entry{Cookie: k, Family: uint8(ev.Family), Protocol: uint16(ev.Protocol), Type: ev.Type, Born: ev.TS}
			e.setNetNS(uint64(ev.NetNS))
			o.socks[k] = e
		}
		if ev.NewState == StateClose && e.Protocol == protoTCP && known && !e.Reset() &&
			(ev.OldState == StateFinWait2 || ev.OldState == StateClosing) {
			o.addMinisock(e, ev)
		}
		switch {
		case ev.NewState == StateListen:
			// Send-Q of a listener is its backlog; its accept queue
			// (Recv-Q) starts empty.
			e.SendQ, e.RecvQ = ev.Backlog, 0
			e.setAddrs(ev.Local, e.Peer())
			o.addListener(e)
		case ev.OldState == StateSynRecv && ev.NewState == StateEstablished:
			// A child completed its handshake: one more in its
			// listener's accept queue, until accept() takes it.
			if l := o.listenerOf(ev.Local, uint64(ev.NetNS)); l != nil {
				l.RecvQ++
				e.flags |= fInAcceptQueue
			}
		}
		e.State = ev.NewState
		// Going to CLOSE the kernel has already given the port back: keep
		// the last addresses the socket had.
		if ev.NewState != StateClose || ev.Local.Port() != 0 || !e.Local().IsValid() {
			e.setAddrs(ev.Local, ev.Peer)
		}
		if ev.NewState == StateEstablished || ev.NewState == StateListen {
			e.flags |= fEverConnected
		}
	case tracer.KindRelease:
		if !known {
			o.Unknown++
			return
		}
		e.flags |= fReleased
		e.clearOwners()
		if e.Protocol != protoTCP {
			o.remove(k, e)
			return
		}
	case tracer.KindReset:
		if !known {
			o.Unknown++
			return
		}
		e.flags |= fReset
	case tracer.KindDestroy:
		if !known {
			o.Unknown++
			return
		}
		o.remove(k, e)
		return
	default:
		// Handshake details (retransmits, errors) change no row.
		return
	}
}

const protoTCP = 6

// TCP_TIMEWAIT_LEN: how long a TIME-WAIT minisocket lives.
const timeWaitLen = 60_000_000_000

// timerTimeWait is idiag_timer for a minisocket (ss: "timewait").
const timerTimeWait = 3

// minisockKey marks overlay keys of TIME-WAIT minisockets, whose cookie is
// unknown until a dump generates one.
const minisockKey = 1 << 63

// addMinisock records the TIME-WAIT minisocket that tcp_time_wait() puts in
// the full socket's place. No event announces it: the full socket's
// FIN-WAIT-2 or CLOSING -> CLOSE transition is how it shows. Whether the
// peer's FIN had arrived (the event's PeerFIN, SOCK_DONE in the kernel)
// says which: TIME-WAIT if so, else an orphan's FIN-WAIT-2 minisocket
// (tcp_close/tcp_rcv_state_process with tcp_fin_timeout <= 60s). A received
// reset (KindReset) takes the socket to CLOSE without one.
func (o *Overlay) addMinisock(e *Entry, ev *tracer.Event) {
	// tcp_time_wait() keeps TIME-WAIT once the peer's FIN arrived, and
	// FIN-WAIT-2 for an orphan that never got one (CLOSING always had it).
	sub := StateTimeWait
	if ev.OldState == StateFinWait2 && !ev.PeerFIN {
		sub = StateFinWait2
	}
	tw := &Entry{Born: ev.TS, ExpiresAt: ev.TS + timeWaitLen, flags: fMinisock,
		Family: e.Family, Type: e.Type, Protocol: e.Protocol, State: sub}
	tw.setAddrs(e.Local(), e.Peer())
	tw.setNetNS(e.NetNS())
	o.putMinisock(tw)
}

type tuple struct{ local, peer netip.AddrPort }

func (o *Overlay) putMinisock(e *Entry) {
	o.seq++
	k := minisockKey | o.seq
	o.socks[k] = e
	if o.minis == nil {
		o.minis = map[tuple][]uint64{}
	}
	t := tuple{e.Local(), e.Peer()}
	o.minis[t] = append(o.minis[t], k)
	heap.Push(&o.expiry, expiring{e.ExpiresAt, k})
	o.minisocks++
}

// dropMinisock ends the minisockets of a 4-tuple a new connection took.
func (o *Overlay) dropMinisock(local, peer netip.AddrPort) {
	t := tuple{local, peer}
	for _, k := range o.minis[t] {
		if _, ok := o.socks[k]; ok {
			delete(o.socks, k)
			o.minisocks--
		}
	}
	delete(o.minis, t)
}

// Expire drops minisockets whose time is up at now (CLOCK_MONOTONIC ns).
func (o *Overlay) Expire(now uint64) {
	for len(o.expiry) > 0 && o.expiry[0].at <= now {
		x := heap.Pop(&o.expiry).(expiring)
		e, ok := o.socks[x.key]
		if !ok {
			continue // a new connection took its 4-tuple first
		}
		delete(o.socks, x.key)
		o.minisocks--
		t := tuple{e.Local(), e.Peer()}
		keys := slices.DeleteFunc(o.minis[t], func(k uint64) bool { return k == x.key })
		if len(keys) == 0 {
			delete(o.minis, t)
		} else {
			o.minis[t] = keys
		}
	}
}

// expiryHeap orders minisockets by the time they expire.
type expiring struct{ at, key uint64 }
type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (o *Overlay) remove(k uint64, e *Entry) {
	if e.flag(fInAcceptQueue) {
		// Reset or aborted before accept(): the kernel took it off its
		// listener's queue.
		if l := o.listenerOf(e.Local(), e.NetNS()); l != nil && l.RecvQ > 0 {
			l.RecvQ--
		}
	}
	delete(o.socks, k)
	if c, ok := o.byInode[e.Inode]; ok && c == k {
		delete(o.byInode, e.Inode)
	}
}

// Each calls fn for every known socket, in no particular order.
func (o *Overlay) Each(fn func(*Entry)) {
	for _, e := range o.socks {
		fn(e)
	}
}

// Entries returns every known socket, ordered by cookie (creation order).
func (o *Overlay) Entries() []*Entry {
	out := make([]*Entry, 0, len(o.socks))
	for _, e := range o.socks {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cookie < out[j].Cookie })
	return out
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of event timestamps.
func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// isMinisock says whether a dumped TCP row is a minisocket (TIME-WAIT, or
// an orphan's FIN-WAIT-2): the timewait timer and no inode. The overlay
// keeps those by 4-tuple: no event names their cookie.
func isMinisock(s *Socket) bool {
	return s.Timer == timerTimeWait && s.Inode == 0
}

// IsRequestSock says whether a dumped row is a request minisocket (a SYN
// received, the handshake not complete): sock_diag reports it as SYN-RECV
// with inode 0 and the SYN-ACK timer, and without the shutdown attribute a
// full socket always has.
func IsRequestSock(s *Socket) bool {
	return s.Protocol == protoTCP && s.State == StateSynRecv && s.Inode == 0 && !s.HasShutdown
}

// listenerOf finds the listener a child on local was accepted from: the
// same port in the same namespace, on the same address or a wildcard,
// through an index by port (pruned as listeners close).
func (o *Overlay) listenerOf(local netip.AddrPort, netns uint64) *Entry {
	var best *Entry
	cookies := o.listeners[local.Port()]
	kept := cookies[:0]
	for _, c := range cookies {
		e, ok := o.socks[c]
		if !ok || e.State != StateListen {
			continue
		}
		kept = append(kept, c)
		if ens := e.NetNS(); netns != 0 && ens != 0 && ens != netns {
			continue
		}
		switch a := e.Local().Addr(); {
		case a == local.Addr() || a == local.Addr().Unmap():
			best = e // an exact address wins over a wildcard
		case a.IsUnspecified() && best == nil:
			best = e
		}
	}
	o.listeners[local.Port()] = kept
	return best
}

func (o *Overlay) addListener(e *Entry) {
	if o.listeners == nil {
		o.listeners = map[uint16][]uint64{}
	}
	p := e.Local().Port()
	o.listeners[p] = append(o.listeners[p], e.Cookie)
}
