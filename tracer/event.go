package tracer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"

	"sstrace/bpf"
)

// Kind says what happened to a socket.
type Kind uint8

// Event kinds, as numbered by enum event_kind in bpf/sstrace.bpf.c.
const (
	KindBirth   Kind = 1 // socket() returned an fd
	KindAccept  Kind = 2 // accept()/accept4() returned an fd
	KindState   Kind = 3 // TCP state transition
	KindRelease Kind = 4 // last user reference closed
	KindDestroy Kind = 5 // TCP socket destroyed
	KindReset   Kind = 6 // TCP socket received a reset
	// KindRetrans: a SYN retransmitted (the socket is in SYN-SENT).
	KindRetrans Kind = 7
	// KindSynAck: a SYN-ACK retransmitted for a request socket, a passive
	// attempt whose final ACK has not come. Cookie, PID and Comm are the
	// listener's (the request has none of its own); Local and Peer are the
	// request's; Since is when its first SYN-ACK was sent; Retrans counts
	// the SYN-ACKs retransmitted before this one.
	KindSynAck Kind = 8
	// KindError: an error reported on a TCP socket (Errno).
	KindError Kind = 9
)

func (k Kind) String() string {
	switch k {
	case KindBirth:
		return "birth"
	case KindAccept:
		return "accept"
	case KindState:
		return "state"
	case KindRelease:
		return "release"
	case KindDestroy:
		return "destroy"
	case KindReset:
		return "reset"
	case KindRetrans:
		return "retransmit"
	case KindSynAck:
		return "synack-retransmit"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event flags, as enum event_flags in bpf/sstrace.bpf.c.
const (
	flagOwnerKnown = 1
	flagNoCookie   = 2
	flagExiting    = 4
	flagPeerFIN    = 8
	flagDying      = 16
)

// Event is one decoded tracer event.
type Event struct {
	Kind Kind
	// TS is CLOCK_MONOTONIC in nanoseconds; Since is the time of the
	// socket's previous transition (0 when not known), and for KindSynAck
	// the time the request's first SYN-ACK was sent.
	TS    uint64
	Since uint64

	Cookie uint64 // socket cookie (0 when the socket never had one: see NoCookie)
	NetNS  uint32 // network namespace inode, 0 where the hook cannot read it

	// PID and Comm are the socket's owner when OwnerKnown, else the task
	// that was on the CPU. CurPID is always the task on the CPU.
	PID        uint32
	CurPID     uint32
	Comm       [16]byte
	OwnerKnown bool
	// OwnerFromEvents: OwnerKnown was filled in by Tracer.Read from the
	// socket's birth or accept read earlier (see attribution), not by BPF.
	OwnerFromEvents bool
	NoCookie        bool
	// Exiting (release only): the owner was exiting, so the socket stayed
	// open until the process ended.
	Exiting bool
	// PeerFIN (transition to CLOSE only): the peer's FIN had arrived.
	PeerFIN bool
	// Dying (release only, as decoded): a TCP socket released in CLOSE,
	// which the same close() destroys at once; the record stands for the
	// destroy too (BPF reports that whole death once: it is the death of
	// most sockets on a churning host). Tracer.Read hands it out as the
	// release followed by the destroy.
	Dying bool

	FD    uint32 // birth and accept (0 otherwise)
	Inode uint32 // birth and accept (0 otherwise)
	// Stack is, for a birth, the user stack that called socket(), and for
	// a transition to SYN-SENT the one that called connect(), in the modes
	// that ask for them (Options.BirthStacks, ConnectStacks); zero
	// otherwise.
	Stack Stack
	// UserRet is, for those same events, the word at the user stack
	// pointer at the syscall: the caller's return address when the syscall
	// wrapper set up no frame (glibc's socket() and connect()), which a
	// frame-pointer walk misses.
	UserRet uint64

	// The BPF event reuses its fd and ino fields for these (they are
	// decoded here under their own names, and FD and Inode stay 0):
	//
	// Errno is, for KindError, the socket's error (sk_err: ECONNREFUSED,
	// ETIMEDOUT, EHOSTUNREACH, ...).
	Errno uint32
	// Retrans is, for a transition out of SYN-SENT or SYN-RECV, the
	// socket's retransmissions so far (tcp_info's total_retrans: the
	// handshake's), and for KindSynAck the SYN-ACKs retransmitted before
	// this one.
	Retrans uint32
	// RTTus is, for a transition out of SYN-SENT or SYN-RECV, the smoothed
	// round-trip time in microseconds (tcp_info's rtt; 0 when not
	// measured): after a handshake, its round trip.
	RTTus uint32
	// Backlog is, for a transition into LISTEN, listen()'s backlog (what
	// ss shows as a listener's Send-Q).
	Backlog uint32

	Family   uint16
	Protocol uint16 // IPPROTO_TCP, or IPPROTO_MPTCP for an MPTCP socket's fd
	Type     uint8
	OldState uint8
	NewState uint8 // for release/destroy: the state at that moment

	Local netip.AddrPort
	Peer  netip.AddrPort
}

// CommString is Comm up to its first NUL.
func (e *Event) CommString() string {
	if i := bytes.IndexByte(e.Comm[:], 0); i >= 0 {
		return string(e.Comm[:i])
	}
	return string(e.Comm[:])
}

// EventSize is the size of one ring-buffer record (struct event).
const EventSize = int(unsafe.Sizeof(bpf.SstraceEvent{}))

// StackedEventSize is the size of a record that carries a user stack
// (struct stacked_event: the event, the executable's base, the frames).
const StackedEventSize = int(unsafe.Sizeof(bpf.SstraceStackedEvent{}))

// Offsets of struct event's fields, taken from the generated Go mirror so
// that a change to the C struct cannot silently misalign the decoder.
var (
	offTS       = unsafe.Offsetof(bpf.SstraceEvent{}.TsNs)
	offCookie   = unsafe.Offsetof(bpf.SstraceEvent{}.Cookie)
	offSince    = unsafe.Offsetof(bpf.SstraceEvent{}.SinceNs)
	offUserRet  = unsafe.Offsetof(bpf.SstraceEvent{}.UserRet)
	offNetNS    = unsafe.Offsetof(bpf.SstraceEvent{}.Netns)
	offPID      = unsafe.Offsetof(bpf.SstraceEvent{}.Pid)
	offCurPID   = unsafe.Offsetof(bpf.SstraceEvent{}.CurPid)
	offFD       = unsafe.Offsetof(bpf.SstraceEvent{}.Fd)
	offIno      = unsafe.Offsetof(bpf.SstraceEvent{}.Ino)
	offNFrames  = unsafe.Offsetof(bpf.SstraceEvent{}.Nframes)
	offFamily   = unsafe.Offsetof(bpf.SstraceEvent{}.Family)
	offSport    = unsafe.Offsetof(bpf.SstraceEvent{}.Sport)
	offDport    = unsafe.Offsetof(bpf.SstraceEvent{}.Dport)
	offKind     = unsafe.Offsetof(bpf.SstraceEvent{}.Kind)
	offProtocol = unsafe.Offsetof(bpf.SstraceEvent{}.Protocol)
	offType     = unsafe.Offsetof(bpf.SstraceEvent{}.Type)
	offOld      = unsafe.Offsetof(bpf.SstraceEvent{}.Oldstate)
	offNew      = unsafe.Offsetof(bpf.SstraceEvent{}.Newstate)
	offFlags    = unsafe.Offsetof(bpf.SstraceEvent{}.Flags)
	offSaddr    = unsafe.Offsetof(bpf.SstraceEvent{}.Saddr)
	offDaddr    = unsafe.Offsetof(bpf.SstraceEvent{}.Daddr)
	offComm     = unsafe.Offsetof(bpf.SstraceEvent{}.Comm)

	offExeBase = unsafe.Offsetof(bpf.SstraceStackedEvent{}.ExeBase)
	offFrames  = unsafe.Offsetof(bpf.SstraceStackedEvent{}.Frames)
)

const (
	afInet  = 2
	afInet6 = 10

	stateSynSent = 2
	stateSynRecv = 3
	stateListen  = 10
)

// Decode fills ev from one ring-buffer record: a struct event, or a
// struct stacked_event (a record longer than an event) whose frame count
// is the event's nframes. It checks the lengths and never panics. It
// allocates nothing for a record without a stack, and for one with a
// stack at most a copy of its frames, the first time they are seen (see
// Stack).
func Decode(b []byte, ev *Event) error {
	if len(b) < EventSize {
		return fmt.Errorf("decoding event: %d bytes, want %d", len(b), EventSize)
	}
	ne := binary.NativeEndian
	var stack Stack
	switch n := int32(ne.Uint32(b[offNFrames:])); {
	case len(b) == EventSize && n != 0:
		return fmt.Errorf("decoding event: %d frames in a record without a stack", n)
	case len(b) == EventSize:
	case len(b) < int(offFrames):
		return fmt.Errorf("decoding event: %d bytes, want %d, or at least %d with a stack", len(b), EventSize, offFrames)
	case n < -4095: // errors are -errno
		return fmt.Errorf("decoding event: frame count %d", n)
	case n > int32((len(b)-int(offFrames))/8):
		return fmt.Errorf("decoding event: %d frames in a record with room for %d", n, (len(b)-int(offFrames))/8)
	default:
		stack = stackFromRecord(b[offFrames:], n, ne.Uint64(b[offExeBase:]))
	}
	*ev = Event{
		Kind:     Kind(b[offKind]),
		TS:       ne.Uint64(b[offTS:]),
		Since:    ne.Uint64(b[offSince:]),
		Cookie:   ne.Uint64(b[offCookie:]),
		NetNS:    ne.Uint32(b[offNetNS:]),
		PID:      ne.Uint32(b[offPID:]),
		CurPID:   ne.Uint32(b[offCurPID:]),
		FD:       ne.Uint32(b[offFD:]),
		Inode:    ne.Uint32(b[offIno:]),
		Stack:    stack,
		UserRet:  ne.Uint64(b[offUserRet:]),
		Family:   ne.Uint16(b[offFamily:]),
		Protocol: ne.Uint16(b[offProtocol:]),
		Type:     b[offType],
		OldState: b[offOld],
		NewState: b[offNew],
	}
	switch {
	case ev.Kind == KindBirth || ev.Kind == KindAccept:
	case ev.Kind == KindError:
		ev.Errno, ev.FD, ev.Inode = ev.FD, 0, 0
	case ev.Kind == KindSynAck:
		ev.Retrans, ev.FD, ev.Inode = ev.FD, 0, 0
	case ev.Kind == KindState && (ev.OldState == stateSynSent || ev.OldState == stateSynRecv):
		ev.Retrans, ev.RTTus, ev.FD, ev.Inode = ev.FD, ev.Inode, 0, 0
	case ev.Kind == KindState && ev.NewState == stateListen:
		ev.Backlog, ev.FD, ev.Inode = ev.FD, 0, 0
	default:
		ev.FD, ev.Inode = 0, 0
	}
	flags := b[offFlags]
	ev.OwnerKnown = flags&flagOwnerKnown != 0
	ev.NoCookie = flags&flagNoCookie != 0
	ev.Exiting = flags&flagExiting != 0
	ev.PeerFIN = flags&flagPeerFIN != 0
	ev.Dying = flags&flagDying != 0 && ev.Kind == KindRelease
	copy(ev.Comm[:], b[offComm:offComm+16])
	sport, dport := ne.Uint16(b[offSport:]), ne.Uint16(b[offDport:])
	switch ev.Family {
	case afInet:
		ev.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[offSaddr:offSaddr+4])), sport)
		ev.Peer = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[offDaddr:offDaddr+4])), dport)
	case afInet6:
		ev.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[offSaddr:offSaddr+16])), sport)
		ev.Peer = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[offDaddr:offDaddr+16])), dport)
	}
	return nil
}

// Unfold splits a release that stands for its destroy too (Dying) into the
// two events: ev stays the release and destroy becomes the destroy, at the
// same time and with the same socket. It reports whether it split.
func Unfold(ev, destroy *Event) bool {
	if ev.Kind != KindRelease || !ev.Dying {
		return false
	}
	*destroy = *ev
	destroy.Kind, destroy.Dying, destroy.Exiting = KindDestroy, false, false
	return true
}
