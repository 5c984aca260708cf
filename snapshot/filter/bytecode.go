package filter

import "encoding/binary"

// Bytecode compiles e into the inet_diag filter program the kernel runs on
// each socket of a dump (INET_DIAG_REQ_BYTECODE, net/ipv4/inet_diag.c),
// the program ss sends for the same expression. It returns nil when there
// is nothing to send: no expression, or one ss sends no bytecode for (see
// compiles: a dev condition, a non-inet host rule, a host name with both
// IPv4 and IPv6 addresses), or one too long for the 16-bit jumps.
//
// The kernel then drops the sockets the expression rejects before they are
// copied out, which is what makes a narrow filter over a large table cheap.
// Eval still runs on every socket that comes back: the kernel's verdict is
// one half of what ss shows (evalKernel models it for the sockets no
// bytecode filtered: /proc rows, tracer events), ss's own run_ssfilter the
// other.
//
// The program: a run of 4-byte ops {code u8, yes u8, no u16}, some followed
// by an operand. The kernel runs an op, then moves yes bytes on when it
// holds and no bytes on when it does not; the socket is kept when it lands
// exactly on the end, dropped when it lands 4 bytes past it. Every program
// here falls through (yes is always the op's own length) and rejects by
// jumping to its end + 4, so programs compose: "a and b" is a then b, with
// a's rejecting jumps stretched over b; "a or b" is a, an always-taken
// jump over b to the end, then b, where a's rejecting jumps land; "not a"
// is a then a jump to end + 4, where a's own rejecting jumps land on the
// end instead.
func Bytecode(e Expr) []byte {
	if e == nil || !compiles(e) {
		return nil
	}
	b := compileBC(e)
	if len(b) > maxBytecode {
		return nil
	}
	return b
}

// maxBytecode keeps every jump within an op's 16-bit no field, and the
// program within one netlink attribute.
const maxBytecode = 0xfff0

// The kernel's op codes (enum in include/uapi/linux/inet_diag.h).
const (
	bcJmp        = 1
	bcSGe        = 2
	bcSLe        = 3
	bcDGe        = 4
	bcDLe        = 5
	bcAuto       = 6
	bcSCond      = 7
	bcDCond      = 8
	bcMarkCond   = 10
	bcCgroupCond = 13
)

func bcOp(code uint8, yes uint8, no int) []byte {
	b := make([]byte, 4, yes)
	b[0], b[1] = code, yes
	binary.NativeEndian.PutUint16(b[2:], uint16(no))
	return b
}

func compileBC(e Expr) []byte {
	switch n := e.(type) {
	case *And:
		a, b := compileBC(n.L), compileBC(n.R)
		stretchRejects(a, len(b))
		return append(a, b...)
	case *Or:
		a, b := compileBC(n.L), compileBC(n.R)
		a = append(a, bcOp(bcJmp, 4, len(b)+4)...)
		return append(a, b...)
	case *Not:
		return negate(compileBC(n.X))
	case *Cond:
		return n.bytecode()
	}
	return nil
}

// negate turns "holds: fall off the end" into "holds: jump to end + 4".
func negate(a []byte) []byte {
	return append(a, bcOp(bcJmp, 4, 8)...)
}

// stretchRejects makes a's jumps to its end + 4 jump extra bytes further,
// past a program appended to it.
func stretchRejects(a []byte, extra int) {
	ne := binary.NativeEndian
	for off := 0; off < len(a); off += int(a[off+1]) {
		left := len(a) - off
		if int(ne.Uint16(a[off+2:])) == left+4 {
			ne.PutUint16(a[off+2:], uint16(left+4+extra))
		}
	}
}

func (c *Cond) bytecode() []byte {
	ne := binary.NativeEndian
	src := c.kw == tSrc || c.kw == tSport
	switch c.kw {
	case tSrc, tDst, tSport, tDport:
		cmp := func(sCode, dCode uint8) []byte {
			code := dCode
			if src {
				code = sCode
			}
			op := bcOp(code, 8, 12)
			// The operand is a second op whose no holds the port.
			op = append(op, 0, 0, 0, 0)
			ne.PutUint16(op[6:], uint16(c.host.port))
			return op
		}
		switch c.op {
		case tGe:
			return cmp(bcSGe, bcDGe)
		case tLe:
			return cmp(bcSLe, bcDLe)
		case tGt:
			return negate(cmp(bcSLe, bcDLe))
		case tLt:
			return negate(cmp(bcSGe, bcDGe))
		case tNe:
			return negate(c.host.bytecode(src))
		}
		return c.host.bytecode(src)
	case tAutobound:
		return bcOp(bcAuto, 4, 8)
	case tFwmark:
		op := bcOp(bcMarkCond, 12, 16)
		op = ne.AppendUint32(op, c.mark)
		op = ne.AppendUint32(op, c.mask)
		if c.op == tNe {
			return negate(op)
		}
		return op
	case tCgroup:
		op := bcOp(bcCgroupCond, 12, 16)
		op = ne.AppendUint64(op, c.cgroup)
		if c.op == tNe {
			return negate(op)
		}
		return op
	}
	return nil
}

// bytecode is one S_COND (src) or D_COND op per address, any of which
// matches: each but the last is followed by a jump to the end, and fails
// over that jump to the next. Every op carries the first address's family,
// as ss sends it (see matchKernel), and 16 address bytes for AF_INET6, 4
// otherwise (AF_UNSPEC's prefix is 0, so its bytes are never read).
func (h *host) bytecode(src bool) []byte {
	code := uint8(bcDCond)
	if src {
		code = bcSCond
	}
	fam := h.alts[0].fam
	alen := 4
	if fam == AFInet6 {
		alen = 16
	}
	oplen := 4 + 8 + alen // op, struct inet_diag_hostcond, address
	total := len(h.alts)*(oplen+4) - 4
	b := make([]byte, 0, total)
	for i := range h.alts {
		a := &h.alts[i]
		b = append(b, bcOp(code, uint8(oplen), oplen+4)...)
		// struct inet_diag_hostcond: family, prefix_len, 2 bytes of
		// padding, int port (-1: any).
		b = append(b, fam, a.bitlen, 0, 0)
		b = binary.NativeEndian.AppendUint32(b, uint32(h.port))
		b = append(b, a.data[:alen]...)
		if i < len(h.alts)-1 {
			b = append(b, bcOp(bcJmp, 4, total-len(b))...)
		}
	}
	return b
}
