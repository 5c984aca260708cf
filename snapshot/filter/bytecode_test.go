package filter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// le16 and le32 spell operands in the machine's order, which is the
// kernel's for these structures (everything but addresses is host order).
func le16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func op(code, yes uint8, no uint16) []byte { return append([]byte{code, yes}, le16(no)...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestBytecodeEncoding pins the layout of a few programs, worked out by
// hand from the kernel's rules (see Bytecode).
func TestBytecodeEncoding(t *testing.T) {
	ge1 := cat(op(bcSGe, 8, 12), op(0, 0, 1))
	le2 := cat(op(bcDLe, 8, 12), op(0, 0, 2))
	for _, c := range []struct {
		expr string
		want []byte
	}{
		// A port-only host: an AF_UNSPEC hostcond with prefix 0.
		{"sport = :22", cat(op(bcSCond, 16, 20), []byte{0, 0, 0, 0}, le32(22), []byte{0, 0, 0, 0})},
		{"dst 127.0.0.1/8", cat(op(bcDCond, 16, 20), []byte{AFInet, 8, 0, 0}, le32(0xffffffff), []byte{127, 0, 0, 1})},
		{"src [::1]:443", cat(op(bcSCond, 28, 32), []byte{AFInet6, 128, 0, 0}, le32(443), []byte{15: 1})},
		{"sport >= :1", ge1},
		{"sport > :1000", cat(op(bcSLe, 8, 12), op(0, 0, 1000), op(bcJmp, 4, 8))},
		{"dport < :1024", cat(op(bcDGe, 8, 12), op(0, 0, 1024), op(bcJmp, 4, 8))},
		{"sport >= :-5", cat(op(bcSGe, 8, 12), op(0, 0, 65531))},
		{"not autobound", cat(op(bcAuto, 4, 8), op(bcJmp, 4, 8))},
		{"fwmark 0x5/0x7", cat(op(bcMarkCond, 12, 16), le32(5), le32(7))},
		// and: the first test's reject stretched over the second.
		{"sport >= :1 and dport <= :2", cat(op(bcSGe, 8, 20), op(0, 0, 1), le2)},
		// or: a failing first test lands on the second; a passing one
		// jumps over it to the end.
		{"sport >= :1 or dport <= :2", cat(ge1, op(bcJmp, 4, 12), le2)},
		// not (a and b): a's stretched reject and b's reject both land
		// on the end, past the final jump to end + 4.
		{"not ( sport >= :1 and dport <= :2 )", cat(op(bcSGe, 8, 20), op(0, 0, 1), le2, op(bcJmp, 4, 8))},
	} {
		got := Bytecode(mustParse(t, c.expr))
		if !bytes.Equal(got, c.want) {
			t.Errorf("%q:\n got  % x\n want % x", c.expr, got, c.want)
		}
		if err := auditBC(got); err != nil {
			t.Errorf("%q: % x: %v", c.expr, got, err)
		}
	}
}

// TestBytecodeNone: nothing is sent where ss sends nothing.
func TestBytecodeNone(t *testing.T) {
	if Bytecode(nil) != nil {
		t.Error("a nil expression compiled")
	}
	for _, s := range []string{"dev lo", "sport = :22 or dev lo", "src unix:/tmp/*", "src dual"} {
		if bc := Bytecode(mustParse(t, s)); bc != nil {
			t.Errorf("%q compiled to % x; ss sends no bytecode for it", s, bc)
		}
	}
}

// TestBytecodeMatchesModel runs each compiled expression of FuzzParse's
// seeds (and a few deep ones) over the inet sockets of the evaluation
// tests in an interpreter of the kernel's inet_diag_bc_run, and compares
// with evalKernel, the model Eval applies where no bytecode ran.
func TestBytecodeMatchesModel(t *testing.T) {
	exprs := []string{
		"( ( sport = :22 or sport = :25 ) and not ( dst 127.0.0.3 ) ) or dport = :443",
		"not ( not sport = :22 or not ( dport > :100 and src 127.0.0.0/8 ) ) or autobound",
		"src 127.0.0.1 dport = :22 or ( src [::1] and not dst ::/0:50000 ) or fwmark 0x1234 and cgroup != /",
		"src example or src inet:example and sport = :http",
		"a or b and c",
	}
	exprs = append(exprs, fuzzSeeds...)
	n := 0
	for _, s := range exprs {
		e, err := Parse([]string{s}, tres)
		if err != nil || e == nil {
			continue
		}
		checkBytecodeModel(t, s, e)
		n++
	}
	if n < 20 {
		t.Fatalf("only %d expressions compiled", n)
	}
}

// checkBytecodeModel: e's program passes the kernel's audit and decides
// every inet test socket as evalKernel does.
func checkBytecodeModel(t *testing.T, in string, e Expr) {
	t.Helper()
	bc := Bytecode(e)
	if bc == nil {
		return
	}
	if err := auditBC(bc); err != nil {
		t.Fatalf("%q: the kernel would refuse % x: %v", in, bc, err)
	}
	for name, s := range evalSocks {
		if !s.IsInet() {
			continue
		}
		var v view
		v.load(s)
		got, err := runBC(bc, &v, autoOf(e))
		if err != nil {
			t.Fatalf("%q on %s: % x: %v", in, name, bc, err)
		}
		if want := evalKernel(e, &v); got != want {
			t.Fatalf("%q on %s: the program (% x) says %v, evalKernel %v", in, name, bc, got, want)
		}
	}
}

// autoOf is the model's autobound test for e (every condition of one
// expression shares the port range it was parsed with).
func autoOf(e Expr) func(*view) bool {
	var c *Cond
	var find func(Expr)
	find = func(e Expr) {
		switch n := e.(type) {
		case *And:
			find(n.L)
			find(n.R)
		case *Or:
			find(n.L)
			find(n.R)
		case *Not:
			find(n.X)
		case *Cond:
			if n.kw == tAutobound && c == nil {
				c = n
			}
		}
	}
	find(e)
	return func(v *view) bool { return c != nil && c.autobound(v) }
}

// auditBC is the kernel's inet_diag_bc_audit (without its privilege
// check): every op known and long enough, every jump within the program
// or to its end + 4, and onto an op boundary.
func auditBC(bc []byte) error {
	ne := binary.NativeEndian
	for off := 0; off < len(bc); {
		left := len(bc) - off
		if left < 4 {
			return fmt.Errorf("op at %d: %d bytes left", off, left)
		}
		code, yes, no := bc[off], int(bc[off+1]), int(ne.Uint16(bc[off+2:]))
		minLen := 4
		switch code {
		case bcSCond, bcDCond:
			if left < 12 {
				return fmt.Errorf("hostcond at %d: short", off)
			}
			alen := map[uint8]int{afUnspec: 0, AFInet: 4, AFInet6: 16}
			n, ok := alen[bc[off+4]]
			if !ok {
				return fmt.Errorf("hostcond at %d: family %d", off, bc[off+4])
			}
			minLen = 12 + n
			if left < minLen || int(bc[off+5]) > 8*n {
				return fmt.Errorf("hostcond at %d: prefix %d of %d address bytes", off, bc[off+5], n)
			}
		case bcSGe, bcSLe, bcDGe, bcDLe:
			minLen = 8
		case bcMarkCond, bcCgroupCond:
			minLen = 12
		case bcAuto, bcJmp:
		default:
			return fmt.Errorf("op at %d: unknown code %d", off, code)
		}
		if left < minLen {
			return fmt.Errorf("op at %d: %d bytes, needs %d", off, left, minLen)
		}
		if no < minLen || no > left+4 || no&3 != 0 {
			return fmt.Errorf("op at %d: no %d (left %d)", off, no, left)
		}
		if no < left && !onBoundary(bc, off+no) {
			return fmt.Errorf("op at %d: no %d lands inside an op", off, no)
		}
		if yes < minLen || yes > left+4 || yes&3 != 0 {
			return fmt.Errorf("op at %d: yes %d (left %d)", off, yes, left)
		}
		off += yes
	}
	return nil
}

func onBoundary(bc []byte, at int) bool {
	for off := 0; off <= at; off += int(bc[off+1]) {
		if off == at {
			return true
		}
		if bc[off+1] < 4 {
			return false
		}
	}
	return false
}

// runBC is the kernel's inet_diag_bc_run over the socket v: kept when the
// program runs exactly to its end.
func runBC(bc []byte, v *view, auto func(*view) bool) (bool, error) {
	ne := binary.NativeEndian
	off := 0
	for steps := 0; off < len(bc); steps++ {
		if steps > len(bc) {
			return false, fmt.Errorf("no progress at %d", off)
		}
		o := bc[off:]
		yes := true
		port := func(src bool) int32 {
			if src {
				return v.lport
			}
			return v.rport
		}
		switch o[0] {
		case bcJmp:
			yes = false
		case bcSGe, bcDGe:
			yes = port(o[0] == bcSGe) >= int32(ne.Uint16(o[6:]))
		case bcSLe, bcDLe:
			yes = port(o[0] == bcSLe) <= int32(ne.Uint16(o[6:]))
		case bcAuto:
			yes = auto(v)
		case bcMarkCond:
			yes = v.mark&ne.Uint32(o[8:]) == ne.Uint32(o[4:])
		case bcCgroupCond:
			yes = v.cgroup == ne.Uint64(o[4:])
		case bcSCond, bcDCond:
			src := o[0] == bcSCond
			fam, bits, cport := o[4], int(o[5]), int32(ne.Uint32(o[8:]))
			data := &v.rdata
			if src {
				data = &v.ldata
			}
			switch {
			case cport != -1 && cport != port(src):
				yes = false
			case fam != afUnspec && fam != v.fam:
				yes = v.fam == AFInet6 && fam == AFInet && isV4Mapped(data) && prefixMatch(data[12:], o[12:16], bits)
			case bits == 0:
			default:
				yes = prefixMatch(data[:], o[12:], bits)
			}
		default:
			return false, fmt.Errorf("unknown op %d at %d", o[0], off)
		}
		if yes {
			off += int(o[1])
		} else {
			off += int(ne.Uint16(o[2:]))
		}
	}
	switch off {
	case len(bc):
		return true, nil
	case len(bc) + 4:
		return false, nil
	}
	return false, fmt.Errorf("ran to %d of a %d-byte program", off, len(bc))
}
