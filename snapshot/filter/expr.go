package filter

// The ss filter expression (misc/ssfilter.y): the part of `ss [options]
// [state STATE]... [EXPRESSION]` after the state list.
//
// Words. ss splits every argument (and, with -F, every line of the filter
// file, after the arguments) at spaces and tabs — so "( dport = :ssh )"
// as one argument is five words — and a backslash takes the next byte
// literally. A word is a keyword or a value by its text alone:
//
//	! not            negation
//	& && and         conjunction; two expressions side by side are one too
//	| || or          disjunction
//	( )              grouping; they must be words of their own: "(dport" is a value
//	src dst          address conditions: src [=] HOST
//	sport dport      port conditions: sport [OP] HOST, OP one of
//	                 = == eq  != ne neq  < lt  <= le leq  > gt  >= ge geq
//	dev fwmark cgroup  dev [= | !=] DEVICE, fwmark [= | !=] MARK[/MASK],
//	                 cgroup [= | !=] PATH
//	autobound        the socket's port (or name) was picked by the kernel
//
// "\>" given to ss as is (the shell already removed one backslash from
// sport \> :1000) is ">" too. Keywords are case-sensitive.
//
// Precedence. There is none: and, or and juxtaposition are all
// left-associative at the same level, so "a or b and c" is "(a or b) and
// c", and "not" binds to the single condition or parenthesised group
// after it. ss's "state" keyword only exists before the expression.

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Expr is a parsed filter: *And, *Or, *Not or *Cond. Its String is the
// canonical ss syntax for it, which parses back to the same expression.
type Expr interface {
	String() string
	isExpr()
}

// And holds when both L and R hold.
type And struct{ L, R Expr }

// Or holds when L or R holds.
type Or struct{ L, R Expr }

// Not holds when X does not.
type Not struct{ X Expr }

// Cond is one condition: src, dst, sport, dport, dev, fwmark, cgroup or
// autobound with its operator and value.
type Cond struct {
	kw, op tokKind // op: tEq, tNe, tLt, tLe, tGt, tGe
	host   *host   // src, dst, sport, dport

	dev     uint32 // dev
	devName string

	mark, mask uint32 // fwmark

	cgroup     uint64 // cgroup
	cgroupPath string

	ephLo, ephHi int32 // autobound: ip_local_port_range
}

func (*And) isExpr()  {}
func (*Or) isExpr()   {}
func (*Not) isExpr()  {}
func (*Cond) isExpr() {}

func (e *And) String() string  { return render(e) }
func (e *Or) String() string   { return render(e) }
func (e *Not) String() string  { return render(e) }
func (e *Cond) String() string { return render(e) }

// Parse parses a filter expression given as command-line arguments (those
// after the state/exclude list), for ss's default selection: no family
// option, every table (service names are looked up as udp and tcp). A nil
// Expr (and no error) means no expression. r may be nil: then only
// numbers and literal addresses are understood.
func Parse(args []string, r Resolver) (Expr, error) {
	sel := defaultSelection()
	return sel.ParseFilter(args, nil, r)
}

// ParseFile parses the contents of a filter file (-F FILE) for ss's
// default selection, as ss reads it: line by line, words as in arguments,
// a line that starts with '#' ignored — and so, as in ss, is a line that
// starts with '0' — and a line longer than 1022 bytes, its newline
// included, refused.
func ParseFile(text string, r Resolver) (Expr, error) {
	sel := defaultSelection()
	return sel.ParseFilter(nil, &text, r)
}

func defaultSelection() Selection {
	var sel Selection
	for _, q := range queryNames[0].dbs {
		sel.DBs |= dbBit(q)
	}
	return sel
}

// ParseFilter parses the filter of a command line whose options made s:
// args are the arguments after the state/exclude list, file the contents
// of -F FILE (nil without -F; ss reads it after the arguments).
//
// As in ss, the selection shapes the parse and the parse the selection:
// host values are read in s.Preferred's family (-x makes "src /tmp/*" a
// unix path pattern, -4 makes addresses IPv4 only), service names are
// looked up for the udp and tcp tables selected, and a host value with a
// family (a prefix like unix: or inet6:, or the preferred family) restricts
// the listing to that family: s.Families becomes that family alone and
// s.Preferred that family, which also becomes the family of the values
// after it.
func (s *Selection) ParseFilter(args []string, file *string, r Resolver) (Expr, error) {
	var l lexer
	l.args(args)
	if file != nil {
		if err := l.file(*file); err != nil {
			return nil, err
		}
	}
	p := parser{toks: l.toks, ctx: parseCtx{r: r, preferred: s.Preferred, dbs: s.DBs}}
	if len(p.toks) == 0 {
		return nil, nil
	}
	e, err := p.list(0)
	if err != nil {
		return nil, err
	}
	if p.ctx.setFam != afUnspec {
		s.Families = afBit(p.ctx.setFam)
		s.Preferred = p.ctx.setFam
	}
	return e, nil
}

type parser struct {
	toks []token
	i    int
	ctx  parseCtx
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: tEOF, pos: len(p.toks) + 1}
}

func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{Pos: t.pos, Token: t.text, AtEnd: t.kind == tEOF, Where: t.where(), Msg: fmt.Sprintf(format, args...)}
}

// startsExpr reports whether a word can begin an expression.
func startsExpr(k tokKind) bool {
	return k == tLParen || k == tNot || (k >= tSrc && k <= tAutobound)
}

func isCompare(k tokKind) bool { return k >= tEq && k <= tGe }

// list parses ssfilter.y's exprlist: expressions joined by and, or or
// nothing, left to right. depth is the number of open parentheses.
func (p *parser) list(depth int) (Expr, error) {
	left, err := p.expr(token{})
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tEOF:
			return left, nil
		case t.kind == tRParen:
			if depth > 0 {
				return left, nil
			}
			return nil, p.errAt(t, "unbalanced parentheses: this \")\" closes nothing")
		case t.kind == tAnd || t.kind == tOr:
			p.next()
			right, err := p.expr(t)
			if err != nil {
				return nil, err
			}
			if t.kind == tAnd {
				left = &And{left, right}
			} else {
				left = &Or{left, right}
			}
		case startsExpr(t.kind):
			right, err := p.expr(token{})
			if err != nil {
				return nil, err
			}
			left = &And{left, right}
		default:
			return nil, p.unexpected(t, "")
		}
	}
}

// unexpected explains a word where a condition (or an operator joining
// conditions) was expected; after is the operator just read, if any.
func (p *parser) unexpected(t token, after string) error {
	want := `a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "("`
	if after != "" {
		want += " after " + strconv.Quote(after)
	}
	switch {
	case t.kind == tEOF && after != "":
		return p.errAt(t, "dangling %q: expected %s", after, want)
	case t.kind == tEOF:
		return p.errAt(t, "expected %s", want)
	case t.kind == tAnd || t.kind == tOr:
		if after != "" {
			return p.errAt(t, "%q cannot follow %q: expected %s", t.text, after, want)
		}
		return p.errAt(t, "%q has no condition before it", t.text)
	case isCompare(t.kind):
		return p.errAt(t, "comparison %q without sport, dport, dev, fwmark or cgroup before it", t.text)
	case t.kind == tRParen:
		return p.errAt(t, "expected %s before \")\"", want)
	case t.text == "state" || t.text == "exclude" || t.text == "excl":
		return p.errAt(t, "%q must come before the expression: ss [options] [state NAME | exclude NAME]... [EXPRESSION]", t.text)
	case strings.HasPrefix(t.text, "(") || strings.HasSuffix(t.text, ")"):
		return p.errAt(t, "parentheses must be words of their own: write %q", spaceParens(t.text))
	}
	hint := ""
	probe := *p
	probe.ctx.r = noHosts{p.ctx.r} // no name lookups just for a hint
	if _, err := probe.ctx.parseHost(t.text, false); err == nil {
		hint = fmt.Sprintf(" (did you mean \"src %s\" or \"dst %s\"?)", t.text, t.text)
	}
	return p.errAt(t, "expected %s%s", want, hint)
}

func spaceParens(s string) string {
	s = strings.ReplaceAll(s, "(", " ( ")
	s = strings.ReplaceAll(s, ")", " ) ")
	return strings.Join(strings.Fields(s), " ")
}

// noHosts is a Resolver that resolves services as r does but no host
// names.
type noHosts struct{ r Resolver }

func (n noHosts) Port(name, proto string) (uint16, bool) {
	if n.r == nil {
		return 0, false
	}
	return n.r.Port(name, proto)
}

func (noHosts) Host(string) ([]netip.Addr, error) { return nil, errors.New("not looked up") }

// expr parses one expression: a parenthesised list, a negation or a
// condition. op is the operator just read before it, if any.
func (p *parser) expr(op token) (Expr, error) {
	t := p.next()
	after := ""
	if op.kind != tEOF {
		after = op.text
	}
	switch t.kind {
	case tLParen:
		if p.peek().kind == tRParen {
			return nil, p.errAt(p.peek(), "empty parentheses")
		}
		e, err := p.list(1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(t, "unbalanced parentheses: this \"(\" is never closed")
		}
		return e, nil
	case tNot:
		if !startsExpr(p.peek().kind) {
			return nil, p.unexpected(p.peek(), t.text)
		}
		x, err := p.expr(t)
		if err != nil {
			return nil, err
		}
		return &Not{x}, nil
	case tSrc, tDst, tSport, tDport, tDev, tFwmark, tCgroup:
		return p.cond(t)
	case tAutobound:
		c := &Cond{kw: tAutobound, op: tEq}
		if er, ok := p.ctx.r.(EphemeralResolver); ok {
			c.ephLo, c.ephHi = er.EphemeralPorts()
		} else {
			c.ephLo, c.ephHi = ephemeralPorts()
		}
		return c, nil
	}
	return nil, p.unexpected(t, after)
}

// cond parses a condition after its keyword kw: [OP] VALUE.
func (p *parser) cond(kw token) (Expr, error) {
	c := &Cond{kw: kw.kind, op: tEq}
	after := kw.text
	if t := p.peek(); isCompare(t.kind) {
		switch {
		case (kw.kind == tSrc || kw.kind == tDst) && t.kind != tEq:
			return nil, p.errAt(t, "%q takes no comparison but \"=\": for port ranges use sport/dport (sport > :1024), for \"not equal\" write \"not %s ...\"", kw.text, kw.text)
		case (kw.kind == tDev || kw.kind == tFwmark || kw.kind == tCgroup) && t.kind != tEq && t.kind != tNe:
			return nil, p.errAt(t, "%q compares with = or != only", kw.text)
		}
		p.next()
		c.op = t.kind
		after += " " + t.text
	}
	v := p.next()
	if v.kind != tValue {
		what := map[tokKind]string{
			tSrc: "an address", tDst: "an address",
			tSport: "a port like :22 or :ssh", tDport: "a port like :22 or :ssh",
			tDev: "a device name or index", tFwmark: "a mark like 0x10 or 0x10/0xff",
			tCgroup: "a cgroup path",
		}[kw.kind]
		return nil, p.errAt(v, "expected %s after %q", what, after)
	}
	switch kw.kind {
	case tSrc, tDst, tSport, tDport:
		h, err := p.ctx.parseHost(v.text, kw.kind == tSport || kw.kind == tDport)
		if err != nil {
			if strings.ContainsAny(v.text, "()") {
				return nil, p.errAt(v, "%v (parentheses must be words of their own: %q)", err, spaceParens(v.text))
			}
			return nil, p.errAt(v, "%v", err)
		}
		c.host = h
	case tDev:
		idx, ok := p.ctx.parseDev(v.text)
		if !ok {
			return nil, p.errAt(v, "unknown device %q (want a device name, ifN or an index)", v.text)
		}
		c.dev, c.devName = idx, v.text
	case tFwmark:
		m, k, ok := parseMark(v.text)
		if !ok {
			return nil, p.errAt(v, "%q is not a mark (want MARK or MARK/MASK, numbers like 0x10/0xff)", v.text)
		}
		c.mark, c.mask = m, k
	case tCgroup:
		cr, ok := p.ctx.r.(CgroupResolver)
		if !ok {
			return nil, p.errAt(v, "cgroup %q: no cgroup resolver", v.text)
		}
		id, err := cr.Cgroup(v.text)
		if err == nil && id == 0 {
			err = fmt.Errorf("cgroup id 0")
		}
		if err != nil {
			return nil, p.errAt(v, "cgroup %q: %v", v.text, err)
		}
		c.cgroup, c.cgroupPath = id, v.text
	}
	return c, nil
}

// render writes e in canonical ss syntax: and/or/not as words, explicit
// parentheses where the left-to-right reading needs them, the family
// prefix of a host value wherever the family it was read in is not
// already the one in force at that point of the text.
func render(e Expr) string {
	var r renderer
	r.expr(e, false)
	return r.b.String()
}

type renderer struct {
	b   strings.Builder
	cur int // the family in force, as the parser would have it
}

// expr renders e; primary asks for a single expression (the right side
// of an operator, the operand of not), which a list must parenthesise.
func (r *renderer) expr(e Expr, primary bool) {
	switch n := e.(type) {
	case *And:
		r.binary(n.L, n.R, "and", primary)
	case *Or:
		r.binary(n.L, n.R, "or", primary)
	case *Not:
		r.b.WriteString("not ")
		r.expr(n.X, true)
	case *Cond:
		r.cond(n)
	case nil:
		r.b.WriteString("<nil>")
	}
}

func (r *renderer) binary(l, rt Expr, op string, primary bool) {
	if primary {
		r.b.WriteString("( ")
	}
	r.expr(l, false)
	r.b.WriteString(" " + op + " ")
	r.expr(rt, true)
	if primary {
		r.b.WriteString(" )")
	}
}

var opText = map[tokKind]string{tEq: "=", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">="}

var kwText = map[tokKind]string{
	tSrc: "src", tDst: "dst", tSport: "sport", tDport: "dport",
	tDev: "dev", tFwmark: "fwmark", tCgroup: "cgroup", tAutobound: "autobound",
}

func (r *renderer) cond(c *Cond) {
	r.b.WriteString(kwText[c.kw])
	switch c.kw {
	case tAutobound:
		return
	case tSrc, tDst:
	default:
		r.b.WriteString(" " + opText[c.op])
	}
	r.b.WriteByte(' ')
	switch c.kw {
	case tSrc, tDst, tSport, tDport:
		r.b.WriteString(escapeWord(r.host(c.host)))
	case tDev:
		if c.devName != "" && !isKeyword(c.devName) {
			r.b.WriteString(escapeWord(c.devName))
		} else {
			r.b.WriteString(strconv.FormatUint(uint64(c.dev), 10))
		}
	case tFwmark:
		fmt.Fprintf(&r.b, "0x%x/0x%x", c.mark, c.mask)
	case tCgroup:
		r.b.WriteString(escapeWord(c.cgroupPath))
	}
}

// host renders a host value, with its family prefix when needed.
func (r *renderer) host(h *host) string {
	v := h.text()
	pfx := famPrefix(h.ctx)
	need := h.ctx != r.cur || v == "" || hasFamPrefix(v) || isKeyword(v)
	if pfx == "" {
		// -f tipc and the like: ss has no prefix for them.
		need = false
	} else {
		r.cur = h.ctx
	}
	if need {
		return pfx + v
	}
	return v
}

// text is the host value without its family prefix.
func (h *host) text() string {
	port := ""
	if h.port != -1 {
		port = ":" + strconv.FormatInt(int64(h.port), 10)
	}
	a := h.alts[0]
	switch a.fam {
	case AFUnix:
		return h.glob
	case AFPacket:
		if h.isPort {
			return orStar(port)
		}
		proto := "*"
		if a.bitlen != 0 {
			proto = fmt.Sprintf("0x%04x", nativeU32(a.data))
		}
		return proto + port
	case AFNetlink:
		if h.isPort {
			return orStar(port)
		}
		proto := "*"
		if a.bitlen != 0 {
			proto = strconv.FormatUint(uint64(nativeU32(a.data)), 10)
		}
		return proto + port
	case AFVsock:
		if h.port != -1 {
			port = ":" + strconv.FormatUint(uint64(uint32(h.port)), 10)
		}
		if h.isPort {
			return orStar(port)
		}
		return "*" + port
	}
	if h.isPort {
		return orStar(port)
	}
	addr := ""
	switch {
	case h.name != "":
		addr = h.name
		if strings.HasPrefix(addr, "[") || strings.HasPrefix(addr, "*") || isKeyword(addr) || hasFamPrefix(addr) {
			addr = "[" + addr + "]"
		}
	case a.fam == AFInet:
		ip := netipFrom4(a.data)
		addr = ip.String()
		if a.bitlen != 32 {
			addr += "/" + strconv.Itoa(int(a.bitlen))
		}
	case a.fam == AFInet6:
		ip := netipFrom16(a.data)
		if a.bitlen == 128 {
			addr = "[" + ip.String() + "]"
		} else {
			addr = ip.String() + "/" + strconv.Itoa(int(a.bitlen))
		}
	}
	if addr == "" {
		return orStar(port)
	}
	return addr + port
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// escapeWord backslash-escapes what ss's word splitting would otherwise
// split or drop.
func escapeWord(s string) string {
	if !strings.ContainsAny(s, " \t\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
