package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"

	"golang.org/x/sys/unix"
)

// Attribute types of inet_diag replies (enum in include/uapi/linux/inet_diag.h).
// An extension numbered n below 9 is requested with bit 1<<(n-1) of
// DumpRequest.Ext.
const (
	InetDiagMemInfo    = 1
	InetDiagInfo       = 2
	InetDiagVegasInfo  = 3
	InetDiagCong       = 4
	InetDiagTOS        = 5
	InetDiagTClass     = 6
	InetDiagSkMemInfo  = 7
	InetDiagShutdown   = 8
	InetDiagDCTCPInfo  = 9 // requested as InetDiagVegasInfo
	InetDiagProtocol   = 10
	InetDiagSkV6Only   = 11
	InetDiagLocals     = 12
	InetDiagPeers      = 13
	InetDiagPad        = 14
	InetDiagMark       = 15
	InetDiagBBRInfo    = 16 // requested as InetDiagVegasInfo
	InetDiagClassID    = 17
	InetDiagMD5Sig     = 18
	InetDiagULPInfo    = 19
	InetDiagBPFStorage = 20
	InetDiagCgroupID   = 21
	InetDiagSockOpt    = 22
)

// Attribute types of unix_diag replies (include/uapi/linux/unix_diag.h).
const (
	UnixDiagName     = 0
	UnixDiagVFS      = 1
	UnixDiagPeer     = 2
	UnixDiagIcons    = 3
	UnixDiagRQLen    = 4
	UnixDiagMemInfo  = 5
	UnixDiagShutdown = 6
	UnixDiagUID      = 7
)

// Bits of unix_diag_req.udiag_show.
const (
	UDiagShowName    = 0x01
	UDiagShowVFS     = 0x02
	UDiagShowPeer    = 0x04
	UDiagShowIcons   = 0x08
	UDiagShowRQLen   = 0x10
	UDiagShowMemInfo = 0x20
	UDiagShowUID     = 0x40
)

// Attributes of inet_diag requests (enum in include/uapi/linux/inet_diag.h).
const (
	// InetDiagReqProtocol carries, as a u32, a protocol that does not fit
	// sdiag_protocol (IPPROTO_MPTCP); older kernels ignore it.
	InetDiagReqProtocol = 3
	// InetDiagReqBytecode carries a filter program the kernel runs on
	// each socket (see filter.Bytecode).
	InetDiagReqBytecode = 1
)

// Sizes of the fixed structures (include/uapi/linux/{netlink,inet_diag,unix_diag,netlink_diag,packet_diag}.h).
const (
	nlmsgHdrLen       = 16
	inetDiagReqLen    = 56 // struct inet_diag_req_v2
	inetDiagMsgLen    = 72 // struct inet_diag_msg
	unixDiagReqLen    = 24 // struct unix_diag_req
	unixDiagMsgLen    = 16 // struct unix_diag_msg
	netlinkDiagReqLen = 20 // struct netlink_diag_req
	netlinkDiagMsgLen = 28 // struct netlink_diag_msg
	packetDiagReqLen  = 20 // struct packet_diag_req
	packetDiagMsgLen  = 16 // struct packet_diag_msg
	rtattrHdrLen      = 4
	recvBufSize       = 64 << 10 // the kernel builds dump skbs of at most ~32 KiB
	maxDumpTries      = 5
	dumpRequestSeq    = 1
	nlmFlagsRequest   = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
)

// DumpRequest says what to dump.
type DumpRequest struct {
	// Family is unix.AF_INET, AF_INET6, AF_UNIX, AF_NETLINK or AF_PACKET.
	// Netlink and packet dumps ask for what ss asks (NetlinkDiagShow,
	// PacketDiagShow) and list every socket of the namespace: they take
	// no states.
	Family uint8
	// Protocol (inet only): unix.IPPROTO_TCP, IPPROTO_UDP, IPPROTO_RAW
	// (raw sockets of every protocol; kernels without CONFIG_INET_RAW_DIAG
	// answer ENOENT) or IPPROTO_MPTCP. A protocol above 255 goes in an
	// InetDiagReqProtocol attribute, its low byte in sdiag_protocol, as ss
	// does.
	Protocol uint16
	States   uint32 // bit mask of kernel TCP states (1<<StateListen ...); 0 means all incl. bit 13 (TCP_BOUND_INACTIVE)
	Ext      uint8  // inet: INET_DIAG_* extension bits to request (1<<(InetDiagInfo-1) etc.); 0 = none
	UnixShow uint32 // unix: UDIAG_SHOW_* bits beyond NAME|PEER|RQLEN, which are always asked (e.g. VFS|ICONS|MEMINFO|UID)
	// Bytecode (inet only) is an inet_diag filter program: the kernel
	// returns only the sockets it accepts. A program the kernel refuses
	// fails the dump (EINVAL; EPERM for a mark test without
	// CAP_NET_ADMIN).
	Bytecode []byte
	// Raw, if set, is called with each netlink message (header included,
	// bytes as the kernel sent them, NLMSG_DONE last) of the dump. It is
	// called only once the dump has completed, so that a dump restarted
	// after an interruption never shows the aborted attempt's messages.
	Raw func(msg []byte)
}

// Dump runs one sock_diag dump in the calling thread's network namespace and
// decodes every socket.
//
// A TCP dump that asks for TCP_BOUND_INACTIVE (States 0 or bit 13) reports
// the sockets the kernel lists in TCP_CLOSE as StateBoundInactive: the kernel
// walks its bind table for them only when bit 13 is asked, but gives them
// idiag_state TCP_CLOSE (no other TCP socket is hashed in TCP_CLOSE; a socket
// closing while the dump runs may rarely show up so too). DecodeInet, which
// sees one message without the request, keeps the kernel's TCP_CLOSE.
func Dump(req DumpRequest) ([]Socket, error) {
	return DumpAppend(nil, req)
}

// DumpAppend is Dump appending to dst, so that several dumps (tcp v4 and v6,
// say) can share one preallocated slice. On error it returns dst as it was.
func DumpAppend(dst []Socket, req DumpRequest) ([]Socket, error) {
	out := dst
	err := onDumpThread(req, func(msg []byte, netns uint64) (err error) {
		out, err = dumpWith(openDiag, dst, req, msg, netns)
		return err
	})
	if err != nil {
		return dst, err
	}
	return out, nil
}

// onDumpThread builds req's message and runs the dump with it on a locked
// OS thread: the netlink socket and the namespace inode must come from the
// same thread, whatever namespace that thread is in. Errors say which dump.
func onDumpThread(req DumpRequest, run func(msg []byte, netns uint64) error) error {
	what := dumpName(req.Family, req.Protocol)
	msg, err := buildRequest(req)
	if err != nil {
		return fmt.Errorf("sock_diag dump of %s: %w", what, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	netns, err := NetNSInode()
	if err == nil {
		err = run(msg, netns)
	}
	if err != nil {
		return fmt.Errorf("sock_diag dump of %s: %w", what, err)
	}
	return nil
}

// kernelError is an error the kernel answered a dump request with (an
// NLMSG_ERROR, or an NLMSG_DONE carrying an error), as opposed to a failure
// on our side of the socket. List tells them apart to fall back (raw) or
// keep quiet (MPTCP) where ss does.
type kernelError struct{ err error }

func (e *kernelError) Error() string { return e.err.Error() }
func (e *kernelError) Unwrap() error { return e.err }

// isKernelError reports whether err is, or wraps, an error the kernel
// answered a dump request with.
func isKernelError(err error) bool {
	var ke *kernelError
	return errors.As(err, &ke)
}

// dumpWith runs the dump of req (encoded as msg) through connections from
// open, appends the sockets to dst and finally hands the messages to req.Raw.
func dumpWith(open func() (dumpConn, error), dst []Socket, req DumpRequest, msg []byte, netns uint64) ([]Socket, error) {
	h := &decodeHandler{
		base:     len(dst),
		out:      dst,
		family:   req.Family,
		protocol: req.Protocol,
		netns:    netns,
		keepRaw:  req.Raw != nil,
		// The kernel lists bound-only TCP sockets when asked for
		// TCP_BOUND_INACTIVE, but reports them in TCP_CLOSE.
		boundInactive: req.Protocol == unix.IPPROTO_TCP && req.Family != unix.AF_UNIX &&
			(req.States == 0 || req.States&(1<<StateBoundInactive) != 0),
	}
	if cap(h.out)-len(h.out) < 64 {
		h.out = append(make([]Socket, 0, len(h.out)+256), h.out...)
	}
	if err := runDump(open, msg, h); err != nil {
		return dst, err
	}
	if req.Raw != nil {
		for b := h.raw; len(b) >= nlmsgHdrLen; {
			n := int(binary.NativeEndian.Uint32(b))
			req.Raw(b[:n:n])
			b = b[n:]
		}
	}
	return h.out, nil
}

// NetNSInode returns the inode of the calling thread's network namespace
// (/proc/thread-self/ns/net), the number ss and the tracer know it by.
func NetNSInode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("stat of /proc/thread-self/ns/net: %w", err)
	}
	return st.Ino, nil
}

func dumpName(family uint8, protocol uint16) string {
	switch family {
	case unix.AF_UNIX:
		return "unix"
	case unix.AF_NETLINK:
		return "netlink"
	case unix.AF_PACKET:
		return "packet"
	}
	var p, f string
	switch protocol {
	case unix.IPPROTO_TCP:
		p = "tcp"
	case unix.IPPROTO_UDP:
		p = "udp"
	case unix.IPPROTO_UDPLITE:
		p = "udplite"
	case unix.IPPROTO_RAW:
		p = "raw"
	case unix.IPPROTO_SCTP:
		p = "sctp"
	case unix.IPPROTO_MPTCP:
		p = "mptcp"
	default:
		p = fmt.Sprintf("proto%d", protocol)
	}
	switch family {
	case unix.AF_INET:
		f = "ipv4"
	case unix.AF_INET6:
		f = "ipv6"
	default:
		f = fmt.Sprintf("family%d", family)
	}
	return p + "/" + f
}

// buildRequest encodes the netlink request (nlmsghdr + inet_diag_req_v2,
// unix_diag_req, netlink_diag_req or packet_diag_req) for req.
func buildRequest(req DumpRequest) ([]byte, error) {
	ne := binary.NativeEndian
	states := req.States
	if states == 0 {
		states = ^uint32(0)
	}
	var b []byte
	switch req.Family {
	case unix.AF_INET, unix.AF_INET6:
		n := nlmsgHdrLen + inetDiagReqLen
		if req.Protocol > 0xff {
			n += rtattrHdrLen + 4
		}
		bcAt := n
		if len(req.Bytecode) > 0 {
			if len(req.Bytecode) > 0xffff-rtattrHdrLen || len(req.Bytecode)%4 != 0 {
				return nil, fmt.Errorf("building request: filter bytecode of %d bytes", len(req.Bytecode))
			}
			n += rtattrHdrLen + len(req.Bytecode)
		}
		b = make([]byte, n)
		r := b[nlmsgHdrLen:]
		r[0] = req.Family
		// ss puts the low byte of a larger protocol here too (so that a
		// kernel ignoring the attribute dumps IPPROTO_MPTCP's low byte,
		// TCP). For IPPROTO_RAW, r[3] (sdiag_raw_protocol) stays 0: raw
		// sockets of every protocol.
		r[1] = uint8(req.Protocol)
		r[2] = req.Ext
		ne.PutUint32(r[4:], states)
		// id: ports, addresses and interface zero; cookie INET_DIAG_NOCOOKIE.
		ne.PutUint32(r[48:], ^uint32(0))
		ne.PutUint32(r[52:], ^uint32(0))
		if req.Protocol > 0xff {
			a := r[inetDiagReqLen:]
			ne.PutUint16(a, rtattrHdrLen+4)
			ne.PutUint16(a[2:], InetDiagReqProtocol)
			ne.PutUint32(a[rtattrHdrLen:], uint32(req.Protocol))
		}
		if len(req.Bytecode) > 0 {
			a := b[bcAt:]
			ne.PutUint16(a, uint16(rtattrHdrLen+len(req.Bytecode)))
			ne.PutUint16(a[2:], InetDiagReqBytecode)
			copy(a[rtattrHdrLen:], req.Bytecode)
		}
	case unix.AF_UNIX:
		b = make([]byte, nlmsgHdrLen+unixDiagReqLen)
		r := b[nlmsgHdrLen:]
		r[0] = unix.AF_UNIX
		ne.PutUint32(r[4:], states)
		ne.PutUint32(r[12:], UDiagShowName|UDiagShowPeer|UDiagShowRQLen|req.UnixShow)
	case unix.AF_NETLINK:
		b = make([]byte, nlmsgHdrLen+netlinkDiagReqLen)
		r := b[nlmsgHdrLen:]
		r[0] = unix.AF_NETLINK
		r[1] = NDiagProtoAll
		// ndiag_ino and the cookie zero: every socket.
		ne.PutUint32(r[8:], NetlinkDiagShow)
	case unix.AF_PACKET:
		b = make([]byte, nlmsgHdrLen+packetDiagReqLen)
		r := b[nlmsgHdrLen:]
		r[0] = unix.AF_PACKET
		// sdiag_protocol must be 0; pdiag_ino and the cookie zero.
		ne.PutUint32(r[8:], PacketDiagShow)
	default:
		return nil, fmt.Errorf("building request: unsupported address family %d", req.Family)
	}
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], nlmFlagsRequest)
	ne.PutUint32(b[8:], dumpRequestSeq)
	return b, nil
}

// dumpConn is the netlink socket one dump attempt talks through (a fake one
// in tests).
type dumpConn interface {
	send(req []byte) error
	// recv reads one datagram into buf and returns its full length, which
	// exceeds len(buf) when the datagram was truncated.
	recv(buf []byte) (int, error)
	close() error
}

// dumpHandler receives the messages of a dump.
type dumpHandler interface {
	// reset forgets everything received so far: the dump starts over.
	reset()
	// message is called with every message of the dump but errors and
	// no-ops (header included, NLMSG_DONE last).
	message(m []byte) error
}

// Reasons to start a dump over.
var (
	errDumpInterrupted = errors.New("dump interrupted: the kernel flagged NLM_F_DUMP_INTR")
	errDumpOverrun     = errors.New("dump overrun: the kernel sent NLMSG_OVERRUN")
)

// runDump runs a dump through connections from open, starting over with a
// fresh connection (at most maxDumpTries times in all) when the kernel says
// the dump was interrupted, the socket ran out of buffer space (ENOBUFS) or a
// datagram did not fit the receive buffer.
func runDump(open func() (dumpConn, error), req []byte, h dumpHandler) error {
	buf := make([]byte, recvBufSize)
	var why error
	for try := 0; try < maxDumpTries; try++ {
		h.reset()
		restart, err := dumpOnce(open, req, &buf, h)
		if err != nil {
			return err
		}
		if restart == nil {
			return nil
		}
		why = restart
	}
	return fmt.Errorf("giving up after %d tries, each restarted: %w", maxDumpTries, why)
}

// dumpOnce runs one attempt. It returns a non-nil restart when the attempt
// must be repeated, and err when the dump failed for good.
func dumpOnce(open func() (dumpConn, error), req []byte, buf *[]byte, h dumpHandler) (restart, err error) {
	c, err := open()
	if err != nil {
		return nil, fmt.Errorf("opening sock_diag socket: %w", err)
	}
	defer c.close()
	if err := c.send(req); err != nil {
		return nil, fmt.Errorf("sending sock_diag request: %w", err)
	}
	seq := binary.NativeEndian.Uint32(req[8:])
	for {
		n, err := c.recv(*buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ENOBUFS:
			return fmt.Errorf("receiving sock_diag reply: %w", err), nil
		case err != nil:
			return nil, fmt.Errorf("receiving sock_diag reply: %w", err)
		case n > len(*buf):
			restart := fmt.Errorf("receiving sock_diag reply: datagram of %d bytes truncated to %d", n, len(*buf))
			*buf = make([]byte, (n+4095)&^4095)
			return restart, nil
		case n <= 0:
			return nil, errors.New("receiving sock_diag reply: connection closed before NLMSG_DONE")
		}
		done, restart, err := walkMessages((*buf)[:n], seq, h)
		if err != nil || restart != nil || done {
			return restart, err
		}
	}
}

// walkMessages hands the messages of one datagram to h and reports whether
// the dump is over.
func walkMessages(b []byte, seq uint32, h dumpHandler) (done bool, restart, err error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return false, nil, fmt.Errorf("parsing sock_diag reply: %d trailing bytes, too short for a netlink header", len(b))
		}
		l := ne.Uint32(b)
		if l < nlmsgHdrLen || uint64(l) > uint64(len(b)) {
			return false, nil, fmt.Errorf("parsing sock_diag reply: netlink message claims %d bytes, %d left", l, len(b))
		}
		m := b[:l:l]
		if adv := (int(l) + 3) &^ 3; adv < len(b) {
			b = b[adv:]
		} else {
			b = nil
		}
		typ := ne.Uint16(m[4:])
		flags := ne.Uint16(m[6:])
		if ne.Uint32(m[8:]) != seq {
			continue // not an answer to this request
		}
		if flags&unix.NLM_F_DUMP_INTR != 0 {
			return false, errDumpInterrupted, nil
		}
		switch typ {
		case unix.NLMSG_NOOP:
			continue
		case unix.NLMSG_OVERRUN:
			return false, errDumpOverrun, nil
		case unix.NLMSG_ERROR:
			if len(m) < nlmsgHdrLen+4 {
				return false, nil, errors.New("parsing sock_diag reply: truncated NLMSG_ERROR")
			}
			code := int32(ne.Uint32(m[nlmsgHdrLen:]))
			if code == 0 {
				continue // an acknowledgement
			}
			if code == -int32(unix.ENOBUFS) {
				return false, unix.ENOBUFS, nil
			}
			return false, nil, &kernelError{unix.Errno(-code)}
		case unix.NLMSG_DONE:
			if len(m) >= nlmsgHdrLen+4 {
				if code := int32(ne.Uint32(m[nlmsgHdrLen:])); code < 0 {
					if code == -int32(unix.ENOBUFS) {
						return false, unix.ENOBUFS, nil
					}
					return false, nil, &kernelError{fmt.Errorf("dump ended with error: %w", unix.Errno(-code))}
				}
			}
			if err := h.message(m); err != nil {
				return false, nil, err
			}
			return true, nil, nil
		default:
			if err := h.message(m); err != nil {
				return false, nil, err
			}
		}
	}
	return false, nil, nil
}

// netlinkConn is a NETLINK_SOCK_DIAG socket.
type netlinkConn struct{ fd int }

// openDiag opens the connection of each dump: openNetlink, or a fake
// kernel in tests.
var openDiag = openNetlink

func openNetlink() (dumpConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	return &netlinkConn{fd: fd}, nil
}

func (c *netlinkConn) send(req []byte) error {
	for {
		err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR {
			return err
		}
	}
}

func (c *netlinkConn) recv(buf []byte) (int, error) {
	n, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
	return n, err
}

func (c *netlinkConn) close() error { return unix.Close(c.fd) }

// decodeHandler decodes the sockets of a dump into out[base:].
type decodeHandler struct {
	base     int
	out      []Socket
	family   uint8
	protocol uint16
	netns    uint64
	keepRaw  bool
	raw      []byte // the messages, back to back, when keepRaw
	arena    arena
	// boundInactive: report TCP_CLOSE as StateBoundInactive.
	boundInactive bool
}

func (h *decodeHandler) reset() {
	clear(h.out[h.base:])
	h.out = h.out[:h.base]
	h.raw = h.raw[:0]
}

func (h *decodeHandler) message(m []byte) error {
	if h.keepRaw {
		h.raw = append(h.raw, m...)
	}
	if binary.NativeEndian.Uint16(m[4:]) != unix.SOCK_DIAG_BY_FAMILY {
		return nil
	}
	if len(h.out) == cap(h.out) {
		// Double: append's growth drops to 1.25x for large slices, which
		// for 100k sockets of ~320 bytes means copying ~5x the table.
		grown := make([]Socket, len(h.out), 2*cap(h.out)+256)
		copy(grown, h.out)
		h.out = grown
	}
	h.out = h.out[:len(h.out)+1]
	s := &h.out[len(h.out)-1]
	*s = Socket{} // dst's spare capacity may hold old rows
	var err error
	switch h.family {
	case unix.AF_UNIX:
		err = decodeUnix(s, m[nlmsgHdrLen:], &h.arena)
	case unix.AF_NETLINK:
		err = decodeNetlink(s, m[nlmsgHdrLen:], &h.arena)
	case unix.AF_PACKET:
		err = decodePacket(s, m[nlmsgHdrLen:], &h.arena)
	default:
		err = decodeInet(s, m[nlmsgHdrLen:], h.protocol, &h.arena)
	}
	if err != nil {
		return err
	}
	if h.boundInactive && s.State == StateClose {
		s.State = StateBoundInactive
	}
	s.NetNS = h.netns
	return nil
}

// arena hands out copies of attribute payloads carved from large chunks, so
// that a dump costs a few allocations rather than a few per socket. A nil
// arena allocates each copy on its own.
type arena struct {
	b []byte
	u []uint32
}

const arenaChunk = 64 << 10

func (a *arena) bytes(p []byte) []byte {
	// An attribute that came, even empty, must not look absent (nil).
	if len(p) == 0 {
		return []byte{}
	}
	if a == nil {
		b := make([]byte, len(p))
		copy(b, p)
		return b
	}
	if len(p) > cap(a.b)-len(a.b) {
		a.b = make([]byte, 0, max(arenaChunk, len(p)))
	}
	n := len(a.b)
	a.b = append(a.b, p...)
	return a.b[n:len(a.b):len(a.b)]
}

// uint32s decodes p as an array of host-order u32 (a trailing partial word
// is ignored).
func (a *arena) uint32s(p []byte) []uint32 {
	k := len(p) / 4
	if k == 0 {
		return []uint32{}
	}
	var u []uint32
	if a == nil {
		u = make([]uint32, k)
	} else {
		if k > cap(a.u)-len(a.u) {
			a.u = make([]uint32, 0, max(arenaChunk/4, k))
		}
		n := len(a.u)
		a.u = a.u[:n+k]
		u = a.u[n : n+k : n+k]
	}
	for i := range u {
		u[i] = binary.NativeEndian.Uint32(p[4*i:])
	}
	return u
}

// DecodeInet decodes one inet_diag_msg and its attributes (a netlink message
// payload, after the nlmsghdr) of a dump asked with protocol.
func DecodeInet(b []byte, protocol uint16) (Socket, error) {
	var s Socket
	if err := decodeInet(&s, b, protocol, nil); err != nil {
		return Socket{}, err
	}
	return s, nil
}

// DecodeUnix decodes one unix_diag_msg and its attributes (a netlink message
// payload, after the nlmsghdr).
func DecodeUnix(b []byte) (Socket, error) {
	var s Socket
	if err := decodeUnix(&s, b, nil); err != nil {
		return Socket{}, err
	}
	return s, nil
}

// decodeInet fills the zeroed s from b.
func decodeInet(s *Socket, b []byte, protocol uint16, a *arena) error {
	if len(b) < inetDiagMsgLen {
		return fmt.Errorf("decoding inet_diag_msg: %d bytes, want at least %d", len(b), inetDiagMsgLen)
	}
	ne := binary.NativeEndian
	s.Family = b[0]
	s.State = b[1]
	s.Timer = b[2]
	s.Retrans = b[3]
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	switch s.Family {
	case unix.AF_INET:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), sport)
		s.Peer = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[24:28])), dport)
	case unix.AF_INET6:
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), sport)
		s.Peer = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), dport)
	default:
		return fmt.Errorf("decoding inet_diag_msg: unexpected address family %d", s.Family)
	}
	s.Iface = ne.Uint32(b[40:])
	s.Cookie = uint64(ne.Uint32(b[44:])) | uint64(ne.Uint32(b[48:]))<<32
	s.Expires = ne.Uint32(b[52:])
	s.RecvQ = ne.Uint32(b[56:])
	s.SendQ = ne.Uint32(b[60:])
	s.UID = ne.Uint32(b[64:])
	s.Inode = ne.Uint32(b[68:])
	s.Protocol = protocol
	switch protocol {
	case unix.IPPROTO_TCP, unix.IPPROTO_MPTCP:
		s.Type = unix.SOCK_STREAM
	case unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE:
		s.Type = unix.SOCK_DGRAM
	case unix.IPPROTO_RAW:
		s.Type = unix.SOCK_RAW
	case unix.IPPROTO_SCTP:
		s.Type = unix.SOCK_SEQPACKET
	}

	at := newAttrs(b, inetDiagMsgLen, "inet_diag_msg")
	for {
		typ, p, ok, err := at.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch typ {
		case InetDiagSkMemInfo:
			s.MemInfo = a.uint32s(p)
		case InetDiagInfo:
			s.TCPInfo = a.bytes(p)
		case InetDiagVegasInfo, InetDiagDCTCPInfo, InetDiagBBRInfo:
			if s.CCInfo == nil {
				s.CCInfoType = typ
				s.CCInfo = a.bytes(p)
			}
		case InetDiagCong:
			s.CongAlg = congName(p)
		case InetDiagULPInfo:
			s.ULPInfo = a.bytes(p)
		case InetDiagShutdown:
			if len(p) < 1 {
				return attrShort("inet_diag_msg", typ, len(p), 1)
			}
			s.HasShutdown, s.Shutdown = true, p[0]
		case InetDiagSkV6Only:
			if len(p) < 1 {
				return attrShort("inet_diag_msg", typ, len(p), 1)
			}
			s.HasV6Only, s.V6Only = true, p[0] != 0
		case InetDiagMark:
			if len(p) < 4 {
				return attrShort("inet_diag_msg", typ, len(p), 4)
			}
			s.Mark = ne.Uint32(p)
		case InetDiagCgroupID:
			if len(p) < 8 {
				return attrShort("inet_diag_msg", typ, len(p), 8)
			}
			s.CgroupID = ne.Uint64(p)
		case InetDiagProtocol:
			if len(p) < 1 {
				return attrShort("inet_diag_msg", typ, len(p), 1)
			}
			// ss takes it as the socket's type (raw sockets; the
			// kernel sends it for SOCK_RAW only).
			s.Protocol = uint16(p[0])
		}
	}
	return nil
}

// decodeUnix fills the zeroed s from b.
func decodeUnix(s *Socket, b []byte, a *arena) error {
	if len(b) < unixDiagMsgLen {
		return fmt.Errorf("decoding unix_diag_msg: %d bytes, want at least %d", len(b), unixDiagMsgLen)
	}
	ne := binary.NativeEndian
	s.Family = b[0]
	s.Type = b[1]
	s.State = b[2]
	s.Inode = ne.Uint32(b[4:])
	s.Cookie = uint64(ne.Uint32(b[8:])) | uint64(ne.Uint32(b[12:]))<<32

	at := newAttrs(b, unixDiagMsgLen, "unix_diag_msg")
	for {
		typ, p, ok, err := at.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch typ {
		case UnixDiagName:
			s.Path = unixName(p)
		case UnixDiagVFS:
			if len(p) < 8 {
				return attrShort("unix_diag_msg", typ, len(p), 8)
			}
			s.VFSInode = ne.Uint32(p)
			s.VFSDev = ne.Uint32(p[4:])
		case UnixDiagPeer:
			if len(p) < 4 {
				return attrShort("unix_diag_msg", typ, len(p), 4)
			}
			s.PeerInode = ne.Uint32(p)
		case UnixDiagIcons:
			s.Icons = a.uint32s(p)
		case UnixDiagRQLen:
			if len(p) < 8 {
				return attrShort("unix_diag_msg", typ, len(p), 8)
			}
			s.RecvQ = ne.Uint32(p)
			s.SendQ = ne.Uint32(p[4:])
		case UnixDiagMemInfo:
			s.MemInfo = a.uint32s(p)
		case UnixDiagShutdown:
			if len(p) < 1 {
				return attrShort("unix_diag_msg", typ, len(p), 1)
			}
			s.HasShutdown, s.Shutdown = true, p[0]
		case UnixDiagUID:
			if len(p) < 4 {
				return attrShort("unix_diag_msg", typ, len(p), 4)
			}
			s.UID = ne.Uint32(p)
		}
	}
	return nil
}

// attrs walks the rtattrs after a diag message's fixed header. Like ss,
// it yields only the first of repeated attribute types. what names the
// message in errors.
type attrs struct {
	rest []byte
	off  int
	seen uint64
	what string
}

func newAttrs(b []byte, hdrLen int, what string) attrs {
	return attrs{rest: b[hdrLen:], off: hdrLen, what: what}
}

// next returns the next attribute not seen before; ok is false at the end
// of the message.
func (a *attrs) next() (typ uint16, payload []byte, ok bool, err error) {
	for len(a.rest) >= rtattrHdrLen {
		l := int(binary.NativeEndian.Uint16(a.rest))
		typ = binary.NativeEndian.Uint16(a.rest[2:])
		if l < rtattrHdrLen || l > len(a.rest) {
			return 0, nil, false, a.overrun(typ, l)
		}
		payload = a.rest[rtattrHdrLen:l:l]
		adv := min((l+3)&^3, len(a.rest))
		a.rest, a.off = a.rest[adv:], a.off+adv
		if typ < 64 {
			if a.seen&(1<<typ) != 0 {
				continue
			}
			a.seen |= 1 << typ
		}
		return typ, payload, true, nil
	}
	return 0, nil, false, nil
}

func (a *attrs) overrun(typ uint16, l int) error {
	return fmt.Errorf("decoding %s: attribute %d at offset %d claims %d bytes, %d left", a.what, typ, a.off, l, len(a.rest))
}

func attrShort(what string, typ uint16, got, want int) error {
	return fmt.Errorf("decoding %s: attribute %d has %d bytes, want %d", what, typ, got, want)
}

// unixName turns a UNIX_DIAG_NAME payload into what ss prints: an abstract
// name (leading NUL) with every NUL replaced by '@', a path up to its NUL.
func unixName(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if p[0] != 0 {
		for i, c := range p {
			if c == 0 {
				return string(p[:i])
			}
		}
		return string(p)
	}
	var tmp [128]byte
	var q []byte
	if len(p) <= len(tmp) {
		q = tmp[:len(p)]
	} else {
		q = make([]byte, len(p))
	}
	for i, c := range p {
		if c == 0 {
			c = '@'
		}
		q[i] = c
	}
	return string(q)
}

// congName returns the INET_DIAG_CONG string up to its NUL, without
// allocating for the algorithms Linux ships.
func congName(p []byte) string {
	for i, c := range p {
		if c == 0 {
			p = p[:i]
			break
		}
	}
	switch string(p) {
	case "cubic":
		return "cubic"
	case "reno":
		return "reno"
	case "bbr":
		return "bbr"
	case "dctcp":
		return "dctcp"
	case "vegas":
		return "vegas"
	case "htcp":
		return "htcp"
	case "westwood":
		return "westwood"
	case "bic":
		return "bic"
	case "highspeed":
		return "highspeed"
	case "hybla":
		return "hybla"
	case "illinois":
		return "illinois"
	case "scalable":
		return "scalable"
	case "veno":
		return "veno"
	case "yeah":
		return "yeah"
	case "nv":
		return "nv"
	case "lp":
		return "lp"
	case "cdg":
		return "cdg"
	}
	return string(p)
}
