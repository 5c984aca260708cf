package filter

import (
	"encoding/binary"
	"net/netip"

	"sstrace/snapshot"
)

// Evaluation follows what ss shows, which is two filters in a row for inet
// sockets:
//
//   - ss's own run_ssfilter (misc/ss.c) on every socket, on its
//     struct sockstat: for inet sockets the addresses and ports; for unix
//     sockets the inode as the local port, the peer's inode as the remote
//     port, and the name (an unnamed socket has none, and no socket has
//     a remote name: "dst PATTERN" sees ""); for netlink sockets the port
//     id as the local port, -1 as the remote port and the protocol as
//     the local address; for packet sockets the device index as the
//     local port and the protocol as the local address. Address tests
//     compare raw address bits whatever the families, so an IPv4 rule
//     also tests the first bits of an IPv6 address, a netlink protocol
//     or an unnamed unix socket (all zeros: "src 0.0.0.0/8" matches them),
//     and an IPv4 rule matches an IPv4-mapped IPv6 socket on its IPv4
//     part, while an IPv4-mapped rule matches only mapped sockets.
//
//   - for inet sockets, the kernel's inet_diag bytecode that ss compiles
//     from the same expression (net/ipv4/inet_diag.c): a host rule with a
//     family only matches sockets of that family (or IPv4-mapped ones for
//     an IPv4 rule), even with a zero prefix ("src 0.0.0.0/0" is every
//     IPv4 socket), and port comparisons take the port as 16 bits
//     ("sport >= :-5" is sport >= 65531). ss sends no bytecode when the
//     expression has a dev condition, a non-inet host rule or a host name
//     with both IPv4 and IPv6 addresses (the kernel refuses that one; ss
//     then reads /proc/net instead), and then only the first filter
//     applies.
//
// The listing sends the kernel the real program (Bytecode), so for its
// sock_diag rows the kernel half is the kernel's own verdict, and Eval's
// model of it only repeats it. The model matters where no program ran:
// rows from /proc, sockets the tracer reports.
//
// Not modelled: the kernel's autobound test is "the port was not bound
// explicitly", which the socket table does not record; the model uses
// ss's own test (an inet port in ip_local_port_range); so without the
// kernel's program Eval keeps sockets explicitly bound to an ephemeral
// port under "autobound", and accepted TCP sockets (whose lock the kernel
// clears) under "not autobound", which ss does not show. ss reads a named unix socket's name
// pointer as address bits for inet rules, by chance: such a socket never
// matches an inet rule with a non-zero prefix here, and in ss almost
// never — but "src 0.0.0.0/8" matches it in about one run in 16, when
// ASLR leaves the pointer's low byte 0. A unix rule on a socket of
// another family (ss crashes, or reads its address as a name pointer)
// sees the name "".

// view is the socket as run_ssfilter sees it.
type view struct {
	fam          uint8
	inet         bool
	named        bool // a unix socket with a name (local.data holds a pointer)
	lport, rport int32
	ldata, rdata [16]byte
	name         string
	iface, mark  uint32
	cgroup       uint64
}

func (v *view) load(s *snapshot.Socket) {
	v.fam = s.Family
	switch s.Family {
	case AFInet, AFInet6:
		v.inet = true
		v.lport, v.rport = int32(s.Local.Port()), int32(s.Peer.Port())
		v.ldata = addrBytes(s.Family, s.Local.Addr())
		v.rdata = addrBytes(s.Family, s.Peer.Addr())
		v.iface, v.mark, v.cgroup = s.Iface, s.Mark, s.CgroupID
	case AFUnix:
		v.lport, v.rport = int32(s.Inode), int32(s.PeerInode)
		v.name, v.named = s.Path, s.Path != ""
	case AFNetlink:
		v.lport, v.rport = s.NetlinkPortID, -1
		binary.NativeEndian.PutUint32(v.ldata[:], uint32(s.Protocol))
	case AFPacket:
		v.lport, v.iface = int32(s.Iface), s.Iface
		binary.NativeEndian.PutUint32(v.ldata[:], uint32(s.Protocol))
	}
}

// addrBytes is an address as inet_diag gives it: 4 bytes for AF_INET, 16
// for AF_INET6 (v4-mapped included).
func addrBytes(fam uint8, a netip.Addr) (b [16]byte) {
	switch {
	case fam == AFInet && (a.Is4() || a.Is4In6()):
		x := a.Unmap().As4()
		copy(b[:], x[:])
	case fam == AFInet6 && a.Is6():
		b = a.As16()
	case fam == AFInet6 && a.Is4():
		b = netip.AddrFrom16(a.As16()).As16()
	}
	return b
}

func nativeU32(d [16]byte) uint32 { return binary.NativeEndian.Uint32(d[:]) }

func netipFrom4(d [16]byte) netip.Addr { return netip.AddrFrom4([4]byte(d[:4])) }

func netipFrom16(d [16]byte) netip.Addr { return netip.AddrFrom16(d) }

// Eval reports whether ss would show socket s under expression e. A nil
// Expr matches every socket. It allocates nothing, and is safe for
// concurrent use.
func Eval(e Expr, s *snapshot.Socket) bool {
	if e == nil {
		return true
	}
	var v view
	v.load(s)
	if !evalUser(e, &v) {
		return false
	}
	if v.inet && compiles(e) {
		return evalKernel(e, &v)
	}
	return true
}

func evalUser(e Expr, v *view) bool {
	switch n := e.(type) {
	case *And:
		return evalUser(n.L, v) && evalUser(n.R, v)
	case *Or:
		return evalUser(n.L, v) || evalUser(n.R, v)
	case *Not:
		return !evalUser(n.X, v)
	case *Cond:
		return n.eval(v, false)
	}
	return false
}

func evalKernel(e Expr, v *view) bool {
	switch n := e.(type) {
	case *And:
		return evalKernel(n.L, v) && evalKernel(n.R, v)
	case *Or:
		return evalKernel(n.L, v) || evalKernel(n.R, v)
	case *Not:
		return !evalKernel(n.X, v)
	case *Cond:
		return n.eval(v, true)
	}
	return false
}

// compiles reports whether ss's ssfilter_bytecompile makes bytecode the
// kernel accepts of e.
func compiles(e Expr) bool {
	switch n := e.(type) {
	case *And:
		return compiles(n.L) && compiles(n.R)
	case *Or:
		return compiles(n.L) && compiles(n.R)
	case *Not:
		return compiles(n.X)
	case *Cond:
		switch n.kw {
		case tDev:
			return false
		case tSrc, tDst, tSport, tDport:
			if n.op != tEq && n.op != tNe {
				return true // S_GE/S_LE: the port alone
			}
			f := n.host.alts[0].fam
			return (f == afUnspec || f == AFInet || f == AFInet6) && !n.host.mixed
		}
		return true
	}
	return false
}

// eval is the condition under ss's run_ssfilter, or with kernel set under
// the kernel's inet_diag_bc_run.
func (c *Cond) eval(v *view, kernel bool) bool {
	switch c.kw {
	case tSrc, tDst, tSport, tDport:
		src := c.kw == tSrc || c.kw == tSport
		port := v.rport
		if src {
			port = v.lport
		}
		bound := c.host.port
		if kernel {
			bound = int32(uint16(bound)) // inet_diag_bc_op.no is 16 bits
		}
		switch c.op {
		case tNe:
			return !c.host.match(v, src, kernel)
		case tGe:
			return port >= bound
		case tLe:
			return port <= bound
		case tGt:
			return !(port <= bound)
		case tLt:
			return !(port >= bound)
		}
		return c.host.match(v, src, kernel)
	case tDev:
		return (v.iface == c.dev) == (c.op == tEq)
	case tFwmark:
		return (v.mark&c.mask == c.mark) == (c.op == tEq)
	case tCgroup:
		return (v.cgroup == c.cgroup) == (c.op == tEq)
	case tAutobound:
		return c.autobound(v)
	}
	return false
}

// match is SSF_SCOND/SSF_DCOND: a host value against the local (src) or
// remote end.
func (h *host) match(v *view, src, kernel bool) bool {
	port, data, named := v.rport, &v.rdata, false
	if src {
		port, data, named = v.lport, &v.ldata, v.named
	}
	if kernel {
		return h.matchKernel(v.fam, port, data)
	}
	if h.alts[0].fam == AFUnix {
		name := ""
		if src && v.fam == AFUnix {
			name = v.name
		}
		return fnmatch(h.glob, name)
	}
	if h.port != -1 && h.port != port {
		return false
	}
	if h.alts[0].bitlen == 0 {
		return true
	}
	for i := range h.alts {
		a := &h.alts[i]
		if !named && prefixMatch(data[:], a.data[:], int(a.bitlen)) {
			return true
		}
		// An IPv4 rule matches the IPv4 part of a v4-mapped address.
		if a.fam == AFInet && v.fam == AFInet6 && isV4Mapped(data) && prefixMatch(data[12:], a.data[:], int(a.bitlen)) {
			return true
		}
	}
	return false
}

// matchKernel is INET_DIAG_BC_S_COND/D_COND, one per address.
func (h *host) matchKernel(fam uint8, port int32, data *[16]byte) bool {
	if h.port != -1 && h.port != port {
		return false
	}
	cfam := h.alts[0].fam // ss gives every address the first one's family
	for i := range h.alts {
		a := &h.alts[i]
		if cfam != afUnspec && cfam != fam {
			if fam == AFInet6 && cfam == AFInet && isV4Mapped(data) && prefixMatch(data[12:], a.data[:], int(a.bitlen)) {
				return true
			}
			continue
		}
		if a.bitlen == 0 || prefixMatch(data[:], a.data[:], int(a.bitlen)) {
			return true
		}
	}
	return false
}

func isV4Mapped(d *[16]byte) bool {
	for i := 0; i < 10; i++ {
		if d[i] != 0 {
			return false
		}
	}
	return d[10] == 0xff && d[11] == 0xff
}

// prefixMatch compares the first bits bits of a and b.
func prefixMatch(a, b []byte, bits int) bool {
	n := bits / 8
	if n > len(a) || n > len(b) {
		return false
	}
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return false
		}
	}
	if r := bits % 8; r != 0 {
		if n >= len(a) || n >= len(b) {
			return false
		}
		mask := byte(0xff << (8 - r))
		return (a[n]^b[n])&mask == 0
	}
	return true
}

// autobound is SSF_S_AUTO.
func (c *Cond) autobound(v *view) bool {
	switch v.fam {
	case AFUnix:
		if !v.named {
			return true
		}
		n := v.name
		if len(n) != 6 || n[0] != '@' {
			return false
		}
		for i := 1; i < 6; i++ {
			if !isDigit(n[i]) && (n[i] < 'a' || n[i] > 'f') {
				return false
			}
		}
		return true
	case AFPacket:
		return v.lport == 0 && nativeU32(v.ldata) == 0
	case AFNetlink:
		return v.lport < 0
	case AFVsock:
		return v.lport > 1023
	}
	return v.lport >= c.ephLo && v.lport <= c.ephHi
}
