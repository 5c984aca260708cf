package snapshot

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"unique"
)

// Entry is one socket the overlay knows of: the last row the kernel gave
// (or the events built) plus what only the tracer knows, kept compact. A
// watched table holds one per socket for as long as it runs (100k of them
// at 100k sockets), so an entry holds inline only what a TCP row has
// (128 bytes in all, owner included); the rest of a row (a unix path,
// tcp_info, memory, netlink and packet fields, a fwmark, a second owner,
// an address with a zone) is in one Socket allocated only for the rows
// that have any of it. Socket and Fill give the whole row back.
//
// An entry keeps no timers (Socket.Timer, Retrans, Expires): a dump's are
// stale at once and no event updates them. A minisocket's is the one
// exception: its row has the timewait timer, expiring at ExpiresAt.
type Entry struct {
	Cookie uint64
	// Born is the birth (or accept) time, CLOCK_MONOTONIC ns; 0 when the
	// socket predates tracing.
	Born uint64
	// ExpiresAt is when a minisocket ends (CLOCK_MONOTONIC ns).
	ExpiresAt uint64
	cgroupID  uint64
	// local and peer in 16-byte form, their kinds in flags (addrKind).
	local, peer  [16]byte
	lport, pport uint16
	RecvQ, SendQ uint32
	Inode        uint32
	iface, uid   uint32
	netns        uint32 // 0 when it does not fit (then in rare)
	Protocol     uint16
	Family       uint8
	Type         uint8
	State        uint8
	shutdown     uint8
	flags        entryFlags
	// owner is the first owner when it is the only one; more are in rare.
	owner ownerRef
	rare  *Socket
}

// entryFlags are an entry's booleans and its addresses' kinds.
type entryFlags uint16

const (
	fHasV6Only entryFlags = 1 << iota
	fV6Only
	fHasShutdown
	fReleased
	fEverConnected
	fMinisock
	fReset
	fInAcceptQueue
	fOwner // owner is set
	// Two bits each: the kind of local and of peer (addrKind).
	fLocalShift = 10
	fPeerShift  = 12
	fKindMask   = 3
)

// addrKind is how an address is held: none (the zero AddrPort), IPv4 or
// IPv6 (without zone) in the 16 bytes, or in rare.
type addrKind uint8

const (
	addrNone addrKind = iota
	addr4
	addr6
	addrRare
)

// ownerRef is an Owner with its command name shared by every socket of
// the same command.
type ownerRef struct {
	pid, fd uint32
	comm    unique.Handle[string]
}

func (o ownerRef) owner() Owner { return Owner{PID: o.pid, FD: o.fd, Comm: o.comm.Value()} }

func (e *Entry) flag(f entryFlags) bool { return e.flags&f != 0 }

func (e *Entry) setFlag(f entryFlags, on bool) {
	if on {
		e.flags |= f
	} else {
		e.flags &^= f
	}
}

// Released is set once the last fd is closed (the socket may live on,
// orphaned, until destroyed).
func (e *Entry) Released() bool { return e.flag(fReleased) }

// EverConnected is set once the socket reached ESTABLISHED or LISTEN
// (seen by an event or in the dump).
func (e *Entry) EverConnected() bool { return e.flag(fEverConnected) }

// Minisock marks a TIME-WAIT (or orphan's FIN-WAIT-2) minisocket, dumped
// or inferred from events (see addMinisock): no event names its cookie,
// and it ends at ExpiresAt.
func (e *Entry) Minisock() bool { return e.flag(fMinisock) }

// Reset is set once the socket received a reset: it then closes without
// a TIME-WAIT minisocket.
func (e *Entry) Reset() bool { return e.flag(fReset) }

// Local is the socket's local address and port.
func (e *Entry) Local() netip.AddrPort {
	return e.addr(addrKind(e.flags>>fLocalShift&fKindMask), &e.local, e.lport, true)
}

// Peer is the socket's peer address and port.
func (e *Entry) Peer() netip.AddrPort {
	return e.addr(addrKind(e.flags>>fPeerShift&fKindMask), &e.peer, e.pport, false)
}

func (e *Entry) addr(k addrKind, b *[16]byte, port uint16, local bool) netip.AddrPort {
	switch k {
	case addr4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:])), port)
	case addr6:
		return netip.AddrPortFrom(netip.AddrFrom16(*b), port)
	case addrRare:
		if local {
			return e.rare.Local
		}
		return e.rare.Peer
	}
	return netip.AddrPort{}
}

// packAddr is how ap is held inline, if it can be.
func packAddr(ap netip.AddrPort) (addrKind, [16]byte, uint16) {
	a := ap.Addr()
	switch {
	case ap == netip.AddrPort{}:
		return addrNone, [16]byte{}, 0
	case a.Is4():
		return addr4, a.As16(), ap.Port()
	case a.Is6() && a.Zone() == "":
		return addr6, a.As16(), ap.Port()
	}
	return addrRare, [16]byte{}, 0
}

// SetAddrs sets the local and peer addresses.
func (e *Entry) setAddrs(local, peer netip.AddrPort) {
	lk, lb, lp := packAddr(local)
	pk, pb, pp := packAddr(peer)
	if lk == addrRare || pk == addrRare {
		r := e.rareRow()
		r.Local, r.Peer = local, peer
	} else if e.rare != nil {
		e.rare.Local, e.rare.Peer = netip.AddrPort{}, netip.AddrPort{}
	}
	e.local, e.lport, e.peer, e.pport = lb, lp, pb, pp
	e.flags = e.flags&^(fKindMask<<fLocalShift|fKindMask<<fPeerShift) |
		entryFlags(lk)<<fLocalShift | entryFlags(pk)<<fPeerShift
}

// NetNS is the socket's network namespace inode, where known.
func (e *Entry) NetNS() uint64 {
	if e.netns == 0 && e.rare != nil {
		return e.rare.NetNS
	}
	return uint64(e.netns)
}

func (e *Entry) setNetNS(ns uint64) {
	if ns <= math.MaxUint32 {
		e.netns = uint32(ns)
		if e.rare != nil {
			e.rare.NetNS = 0
		}
		return
	}
	e.netns = 0
	e.rareRow().NetNS = ns
}

// rareRow is the entry's rare part, allocated on first use.
func (e *Entry) rareRow() *Socket {
	if e.rare == nil {
		e.rare = &Socket{}
	}
	return e.rare
}

// Owners are the processes known to hold the socket (from its birth or
// accept, or the rebuild that kept them).
func (e *Entry) Owners() []Owner {
	if e.flag(fOwner) {
		return []Owner{e.owner.owner()}
	}
	if e.rare != nil && len(e.rare.Owners) > 0 {
		return append([]Owner(nil), e.rare.Owners...)
	}
	return nil
}

func (e *Entry) hasOwners() bool {
	return e.flag(fOwner) || e.rare != nil && len(e.rare.Owners) > 0
}

func (e *Entry) addOwner(ow Owner) {
	switch {
	case e.flag(fOwner):
		if e.owner.pid == ow.PID && e.owner.fd == ow.FD {
			return
		}
		e.rareRow().Owners = []Owner{e.owner.owner(), ow}
		e.owner, e.flags = ownerRef{}, e.flags&^fOwner
	case e.rare != nil && len(e.rare.Owners) > 0:
		for _, have := range e.rare.Owners {
			if have.PID == ow.PID && have.FD == ow.FD {
				return
			}
		}
		e.rare.Owners = append(e.rare.Owners, ow)
	default:
		e.owner = ownerRef{pid: ow.PID, fd: ow.FD, comm: unique.Make(ow.Comm)}
		e.flags |= fOwner
	}
}

func (e *Entry) clearOwners() {
	e.owner, e.flags = ownerRef{}, e.flags&^fOwner
	if e.rare != nil {
		e.rare.Owners = nil
	}
}

// setOwners replaces the owners with those of another entry.
func (e *Entry) setOwnersFrom(o *Entry) {
	e.clearOwners()
	if o.flag(fOwner) {
		e.owner, e.flags = o.owner, e.flags|fOwner
	} else if o.rare != nil && len(o.rare.Owners) > 0 {
		e.rareRow().Owners = append([]Owner(nil), o.rare.Owners...)
	}
}

// NewEntry makes the entry of a dumped row. A minisocket's expiry
// (Socket.Expires, ms from now) becomes ExpiresAt.
func NewEntry(s *Socket) *Entry {
	return newEntry(s, monotonicNow())
}

func newEntry(s *Socket, now uint64) *Entry {
	e := &Entry{
		Cookie:   s.Cookie,
		cgroupID: s.CgroupID,
		RecvQ:    s.RecvQ,
		SendQ:    s.SendQ,
		Inode:    s.Inode,
		iface:    s.Iface,
		uid:      s.UID,
		Protocol: s.Protocol,
		Family:   s.Family,
		Type:     s.Type,
		State:    s.State,
		shutdown: s.Shutdown,
	}
	e.setFlag(fHasV6Only, s.HasV6Only)
	e.setFlag(fV6Only, s.V6Only)
	e.setFlag(fHasShutdown, s.HasShutdown)
	if s.Protocol == protoTCP && isMinisock(s) {
		e.flags |= fMinisock
		e.ExpiresAt = now + uint64(s.Expires)*1_000_000
	}
	if hasRare(s) {
		r := *s
		// What the entry holds inline is not kept twice.
		r.Cookie, r.CgroupID, r.RecvQ, r.SendQ, r.Inode, r.Iface, r.UID = 0, 0, 0, 0, 0, 0, 0
		r.Protocol, r.Family, r.Type, r.State, r.Shutdown = 0, 0, 0, 0, 0
		r.HasV6Only, r.V6Only, r.HasShutdown = false, false, false
		r.Timer, r.Retrans, r.Expires = 0, 0, 0
		r.Local, r.Peer, r.NetNS, r.Owners = netip.AddrPort{}, netip.AddrPort{}, 0, nil
		e.rare = &r
	}
	e.setAddrs(s.Local, s.Peer)
	e.setNetNS(s.NetNS)
	for _, ow := range s.Owners {
		e.addOwner(ow)
	}
	return e
}

// hasRare says whether a row has anything an entry does not hold inline
// (addresses, namespace and owners are sorted out by their setters).
func hasRare(s *Socket) bool {
	return s.Mark != 0 || s.Path != "" || s.PeerInode != 0 || s.VFSInode != 0 || s.VFSDev != 0 ||
		s.Icons != nil || s.TCPInfo != nil || s.ULPInfo != nil || s.MemInfo != nil || s.CongAlg != "" ||
		s.CCInfoType != 0 || s.CCInfo != nil ||
		s.NetlinkPortID != 0 || s.NetlinkDstPortID != 0 || s.NetlinkDstGroup != 0 || s.NetlinkState != 0 || s.NetlinkGroups != 0 ||
		s.HasPacketInfo || s.PacketVersion != 0 || s.PacketCopyThresh != 0 || s.PacketTstamp != 0 || s.PacketFlags != 0 ||
		s.PacketRxRing != nil || s.PacketTxRing != nil || s.HasPacketFanout || s.PacketFanout != 0 || s.PacketFilter != nil
}

// Socket is the entry's row (without timers but a minisocket's: see
// Entry).
func (e *Entry) Socket() Socket {
	var s Socket
	e.Fill(&s)
	return s
}

// Fill makes s the entry's row, reusing s.Owners' array (which must be
// s's own: nil, or from an earlier Fill), so that rendering rows one at
// a time through one Socket allocates nothing. The row's other slices are
// the entry's: read them, do not change them.
func (e *Entry) Fill(s *Socket) {
	owners := s.Owners[:0]
	if e.rare != nil {
		*s = *e.rare
	} else {
		*s = Socket{}
	}
	s.Cookie, s.CgroupID, s.RecvQ, s.SendQ, s.Inode, s.Iface, s.UID = e.Cookie, e.cgroupID, e.RecvQ, e.SendQ, e.Inode, e.iface, e.uid
	s.Protocol, s.Family, s.Type, s.State, s.Shutdown = e.Protocol, e.Family, e.Type, e.State, e.shutdown
	s.HasV6Only, s.V6Only, s.HasShutdown = e.flag(fHasV6Only), e.flag(fV6Only), e.flag(fHasShutdown)
	s.Local, s.Peer = e.Local(), e.Peer()
	s.NetNS = e.NetNS()
	if e.flag(fMinisock) {
		s.Timer = timerTimeWait
		if now := monotonicNow(); e.ExpiresAt > now {
			s.Expires = uint32(min((e.ExpiresAt-now)/1_000_000, math.MaxUint32))
		}
	}
	switch {
	case e.flag(fOwner):
		s.Owners = append(owners, e.owner.owner())
	case len(s.Owners) > 0:
		s.Owners = append(owners, s.Owners...)
	default:
		s.Owners = nil
		if cap(owners) > 0 {
			s.Owners = owners
		}
	}
}

// IsRequestSock is the package's IsRequestSock of the entry's row.
func (e *Entry) IsRequestSock() bool {
	return e.Protocol == protoTCP && e.State == StateSynRecv && e.Inode == 0 && !e.flag(fHasShutdown)
}

// CompareAddrs orders two entries by (Local, Peer) as netip.AddrPort's
// Compare does, without making them: no address < IPv4 < IPv6, then the
// address, then the port. Watch sorts 100k rows by it every frame.
func (e *Entry) CompareAddrs(o *Entry) int {
	if c := compareAddr(e, o, fLocalShift, &e.local, &o.local, e.lport, o.lport, true); c != 0 {
		return c
	}
	return compareAddr(e, o, fPeerShift, &e.peer, &o.peer, e.pport, o.pport, false)
}

func compareAddr(e, o *Entry, shift entryFlags, a, b *[16]byte, pa, pb uint16, local bool) int {
	ka, kb := addrKind(e.flags>>shift&fKindMask), addrKind(o.flags>>shift&fKindMask)
	if ka == addrRare || kb == addrRare {
		x, y := e.Peer(), o.Peer()
		if local {
			x, y = e.Local(), o.Local()
		}
		return x.Compare(y)
	}
	if ka != kb {
		return cmp.Compare(ka, kb) // the addresses' bit lengths: 0, 32, 128
	}
	if c := bytes.Compare(a[:], b[:]); c != 0 {
		return c
	}
	return cmp.Compare(pa, pb)
}

// OrderKey is the start of the entry's place in the order of (Family,
// Local, Peer) as bits: Family, then each address as its kind (none <
// IPv4 < IPv6), its bytes (4 for IPv4) and its port, cut at 127 bits (the
// lowest bit of the key is always 0, for the caller's use). Two entries
// whose keys differ, both exact, are in the order of their keys;
// otherwise (equal keys, or an address with a zone, which the key cannot
// place) compare them in full. A sort of 100k entries by key runs in
// contiguous memory instead of chasing two pointers per comparison; an
// IPv4 row's key is exact (108 bits).
func (e *Entry) OrderKey() (key [2]uint64, exact bool) {
	var k bitKey
	k.put(uint64(e.Family), 8)
	lk, pk := addrKind(e.flags>>fLocalShift&fKindMask), addrKind(e.flags>>fPeerShift&fKindMask)
	if lk == addrRare || pk == addrRare {
		return k.w, false
	}
	k.addr(lk, &e.local, e.lport)
	k.addr(pk, &e.peer, e.pport)
	return k.w, true
}

// bitKey packs fields, most significant first, into 127 bits.
type bitKey struct {
	w [2]uint64
	n int // bits used
}

// put appends the low bits bits of v.
func (k *bitKey) put(v uint64, bits int) {
	for bits > 0 && k.n < 127 {
		room := 64 - k.n%64
		take := min(bits, room, 127-k.n)
		chunk := v >> (bits - take)
		if take < 64 {
			chunk &= 1<<take - 1
		}
		k.w[k.n/64] |= chunk << (room - take)
		k.n += take
		bits -= take
	}
}

func (k *bitKey) addr(kind addrKind, b *[16]byte, port uint16) {
	k.put(uint64(kind), 2)
	switch kind {
	case addr4:
		k.put(uint64(binary.BigEndian.Uint32(b[12:])), 32)
	case addr6:
		k.put(binary.BigEndian.Uint64(b[:8]), 64)
		k.put(binary.BigEndian.Uint64(b[8:]), 64)
	}
	k.put(uint64(port), 16)
}
