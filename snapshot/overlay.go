package snapshot

import (
	"sort"

	"sstrace/tracer"
)

// Entry is one socket the overlay knows of: the last row the kernel gave
// (or the events built) plus what only the tracer knows.
type Entry struct {
	Socket
	// Born is the birth (or accept) time, CLOCK_MONOTONIC ns; 0 when the
	// socket predates tracing.
	Born uint64
	// Changed is the time of the last event applied.
	Changed uint64
	// StackID is the user stack that created the socket (<0: unknown).
	StackID int32
	// Released is set once the last fd is closed (the socket may live on,
	// orphaned, until destroyed).
	Released bool
	// EverConnected is set once the socket reached ESTABLISHED or LISTEN
	// (seen by an event or in the dump).
	EverConnected bool
}

// Overlay is the socket table kept current by tracer events: loaded from one
// dump, then every event applied in order. Keyed by socket cookie.
//
// Start-up: the tracer is attached before the dump, and every event is
// applied whether or not the dump already reflects it. Application is
// idempotent (a birth merges into a dumped row, a transition sets the state
// it names, a death of an unknown socket is ignored), so a socket born
// while the dump ran is neither missed nor doubled.
type Overlay struct {
	socks map[uint64]*Entry
	// Sockets with no cookie in the events (classic tracepoint fallback)
	// are keyed by inode through this index.
	byInode map[uint32]uint64
	// Applied counts events applied; Unknown those about sockets the
	// overlay never saw (deaths of sockets gone before the dump, or of
	// other namespaces' sockets when unfiltered).
	Applied, Unknown uint64
}

// NewOverlay returns an overlay loaded with a dump.
func NewOverlay(dump []Socket) *Overlay {
	o := &Overlay{
		socks:   make(map[uint64]*Entry, len(dump)),
		byInode: make(map[uint32]uint64, len(dump)),
	}
	for i := range dump {
		s := &dump[i]
		if s.Cookie == 0 {
			continue
		}
		e := &Entry{Socket: *s, StackID: -1}
		e.EverConnected = s.State != StateClose && s.State != StateBoundInactive && s.State != StateSynSent
		o.socks[s.Cookie] = e
		if s.Inode != 0 {
			o.byInode[s.Inode] = s.Cookie
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
	if c, ok := o.byInode[ev.Inode]; ok && ev.Inode != 0 {
		return c
	}
	return 0
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
	switch ev.Kind {
	case tracer.KindBirth, tracer.KindAccept:
		if !known {
			e = &Entry{StackID: -1}
			e.Cookie = k
			e.Family = uint8(ev.Family)
			e.Type = ev.Type
			e.Protocol = uint8(ev.Protocol)
			e.State = ev.NewState
			e.Local, e.Peer = ev.Local, ev.Peer
			e.NetNS = uint64(ev.NetNS)
			o.socks[k] = e
		}
		if e.Born == 0 {
			e.Born = ev.TS
		}
		if ev.Kind == tracer.KindBirth {
			e.StackID = ev.StackID
		}
		e.Inode = ev.Inode
		o.byInode[ev.Inode] = k
		e.addOwner(Owner{PID: ev.PID, FD: ev.FD, Comm: ev.CommString()})
	case tracer.KindState:
		if !known {
			// First sighting: an accepted child (born in the kernel) or a
			// socket the dump did not list yet.
			e = &Entry{StackID: -1}
			e.Cookie = k
			e.Family = uint8(ev.Family)
			e.Protocol = uint8(ev.Protocol)
			e.Type = ev.Type
			e.NetNS = uint64(ev.NetNS)
			e.Born = ev.TS
			o.socks[k] = e
		}
		e.State = ev.NewState
		e.Local, e.Peer = ev.Local, ev.Peer
		if ev.NewState == StateEstablished || ev.NewState == StateListen {
			e.EverConnected = true
		}
	case tracer.KindRelease:
		if !known {
			o.Unknown++
			return
		}
		e.Released = true
		e.Owners = nil
		if e.Protocol != protoTCP {
			o.remove(k, e)
			return
		}
	case tracer.KindDestroy:
		if !known {
			o.Unknown++
			return
		}
		o.remove(k, e)
		return
	}
	e.Changed = ev.TS
}

const protoTCP = 6

func (o *Overlay) remove(k uint64, e *Entry) {
	delete(o.socks, k)
	if c, ok := o.byInode[e.Inode]; ok && c == k {
		delete(o.byInode, e.Inode)
	}
}

func (e *Entry) addOwner(ow Owner) {
	for _, have := range e.Owners {
		if have.PID == ow.PID && have.FD == ow.FD {
			return
		}
	}
	e.Owners = append(e.Owners, ow)
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
