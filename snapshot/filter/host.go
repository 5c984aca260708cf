package filter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Host values (ss's parse_hostcond), the words after src, dst, sport and
// dport. A value may start with a family prefix — unix:, link:, netlink:,
// vsock:, inet:, inet6: — which makes it, and every value after it, that
// family's (without one, the preferred family's: -4, -6, -0, -x, -f):
//
//	inet, and no family   ADDR  ADDR/PREFIX  ADDR:PORT  ADDR/PREFIX:PORT  :PORT
//	                      *  *:PORT  [IPV6]  [IPV6]:PORT  [IPV6/PREFIX]  IPV6/PREFIX[:PORT]
//	                      HOSTNAME[:PORT]  default  any  all (the zero prefix)
//	unix                  an fnmatch(3) pattern, case-insensitive ("" is unnamed)
//	link (packet)         PROTOCOL[:DEVICE], * for any
//	netlink               PROTOCOL[:PORTID], PORTID a number or "kernel"
//	vsock                 CID[:PORT] (ss ignores the CID)
//
// ADDR is ss's IPv4 (10.8 is 10.8.0.0; numbers may be hex or octal),
// PREFIX a length or a netmask, PORT a number (C syntax, -1 meaning any)
// or a service name; an IPv6 address without a prefix must be in
// brackets. For sport/dport the whole value is a PORT (":22", "22" or
// "ssh"), after any family prefix.

// afUnspec is AF_UNSPEC: no family (the others are in select.go).
const afUnspec = 0

// alt is one address a host condition compares with: ss's inet_prefix
// (family, prefix length in bits, the address bytes as ss keeps them).
// Packet and netlink conditions keep their protocol number in the first
// 4 bytes (host byte order), as ss does.
type alt struct {
	fam    uint8
	bitlen uint8
	data   [16]byte
}

// host is the value of a src, dst, sport or dport condition: ss's struct
// aafilter as parse_hostcond (misc/ss.c) builds it.
type host struct {
	// ctx is the family the value was read in: the family of a prefix
	// (unix:, inet6:, ...) or else the preferred family (the last of -4
	// -6 -0 -x -f, or of an earlier condition's prefix); 0 if none.
	ctx    int
	isPort bool  // a sport/dport value: only a port
	port   int32 // -1: any port
	// alts: at least one. alts[0].fam is ss's a->addr.family (AF_UNIX for
	// a unix pattern) and alts[0].bitlen 0 means "no address test". A
	// host name gives one alt per address.
	alts  []alt
	name  string // the host name as written, for one that was resolved
	mixed bool   // the name has IPv4 and IPv6 addresses
	glob  string // unix: the fnmatch pattern
}

// Family prefixes of host values, in the order ss tries them.
var famPrefixes = []struct {
	text string
	fam  int
}{
	{"unix:", AFUnix},
	{"link:", AFPacket},
	{"netlink:", AFNetlink},
	{"vsock:", AFVsock},
	{"inet:", AFInet},
	{"inet6:", AFInet6},
}

func famPrefix(fam int) string {
	for _, p := range famPrefixes {
		if p.fam == fam {
			return p.text
		}
	}
	return ""
}

func hasFamPrefix(s string) bool {
	for _, p := range famPrefixes {
		if strings.HasPrefix(s, p.text) {
			return true
		}
	}
	return false
}

// parseCtx is the state ss keeps while it parses a filter: the resolver,
// the preferred family (which a host value with a family changes, for the
// values after it) and the selected tables (which decide the services
// asked).
type parseCtx struct {
	r         Resolver
	preferred int
	dbs       uint32
	setFam    int // the family of the last host value that had one (0: none)
}

// hostErr is a host value that does not parse; the parser adds the
// word's position.
type hostErr struct{ msg string }

func (e *hostErr) Error() string { return e.msg }

func herr(format string, args ...any) error { return &hostErr{fmt.Sprintf(format, args...)} }

// parseHost parses word as ss's parse_hostcond(word, isPort).
func (c *parseCtx) parseHost(word string, isPort bool) (*host, error) {
	fam := c.preferred
	addr := word
	for _, p := range famPrefixes {
		if strings.HasPrefix(addr, p.text) {
			fam, addr = p.fam, addr[len(p.text):]
			break
		}
	}
	h := &host{ctx: fam, isPort: isPort, port: -1}
	var err error
	switch fam {
	case AFUnix:
		h.glob = addr
		h.alts = []alt{{fam: AFUnix}}
	case AFPacket:
		err = c.parsePacket(h, addr)
	case AFNetlink:
		err = c.parseNetlink(h, addr)
	case AFVsock:
		err = c.parseVsock(h, addr)
	default:
		err = c.parseInet(h, word, addr, fam)
	}
	if err != nil {
		return nil, err
	}
	if fam != afUnspec {
		c.preferred = fam
		c.setFam = fam
	}
	return h, nil
}

// findPort is ss's find_port: the port part of a packet, netlink or vsock
// value (all of it for sport/dport, else from the first ':'), and the
// address part left before it.
func findPort(addr string, isPort bool) (rest, port string, has bool) {
	if isPort {
		if strings.HasPrefix(addr, ":") {
			return "", addr[1:], true
		}
		return addr, addr, true
	}
	i := strings.IndexByte(addr, ':')
	if i < 0 {
		return addr, "", false
	}
	return addr[:i], addr[i+1:], true
}

func (c *parseCtx) parsePacket(h *host, addr string) error {
	h.alts = []alt{{fam: AFPacket}}
	addr, port, has := findPort(addr, h.isPort)
	if has && port != "" && port != "*" {
		if v, ok := getInteger(port); ok {
			h.port = v
		} else {
			idx, ok := c.device(port)
			if !ok || int32(idx) <= 0 {
				return herr("unknown device %q (link: values are PROTOCOL:DEVICE, the device a name or an index)", port)
			}
			h.port = int32(idx)
		}
	}
	if !h.isPort && addr != "" && addr != "*" {
		p, ok := llProtoNumber(addr)
		if !ok {
			return herr("unknown link-layer protocol %q (want a name like ip, ipv6, arp, all or a number like 0x0800)", addr)
		}
		h.alts[0].bitlen = 32
		binary.NativeEndian.PutUint32(h.alts[0].data[:], uint32(p))
	}
	return nil
}

func (c *parseCtx) parseNetlink(h *host, addr string) error {
	h.alts = []alt{{fam: AFNetlink}}
	addr, port, has := findPort(addr, h.isPort)
	if has && port != "" && port != "*" {
		if v, ok := getInteger(port); ok {
			h.port = v
		} else if port == "kernel" {
			h.port = 0
		} else {
			return herr("%q is not a netlink port id (want a number or \"kernel\")", port)
		}
	}
	if !h.isPort && addr != "" && addr != "*" {
		p, ok := nlProtoNumber(addr)
		if !ok {
			return herr("unknown netlink protocol %q (want a name like rtnl, tcpdiag, genl or a number 0-255)", addr)
		}
		h.alts[0].bitlen = 32
		binary.NativeEndian.PutUint32(h.alts[0].data[:], p)
	}
	return nil
}

func (c *parseCtx) parseVsock(h *host, addr string) error {
	// ss reads a CID but then drops it (vsock_set_inet_prefix clears the
	// prefix length): only the port counts.
	h.alts = []alt{{fam: AFVsock}}
	addr, port, has := findPort(addr, h.isPort)
	if has && port != "*" {
		v, ok := getUnsigned(port, 0)
		if !ok {
			return herr("%q is not a vsock port (want a number or *)", port)
		}
		h.port = int32(v)
	}
	if !h.isPort && addr != "" && addr != "*" {
		if _, ok := getUnsigned(addr, 0); !ok {
			return herr("%q is not a vsock CID (want a number or *)", addr)
		}
	}
	return nil
}

// parseInet is the inet part of parse_hostcond: [ADDR]:PORT, *:PORT,
// ADDR[/PREFIX][:PORT], :PORT; word is the whole value for messages.
func (c *parseCtx) parseInet(h *host, word, addr string, fam int) error {
	// As ss: find the port, then (once it is known to start with ':')
	// end the address there.
	var port string
	hasPort := false
	cutAt := -1
	switch {
	case strings.HasPrefix(addr, "["):
		i := strings.IndexByte(addr, ']')
		if i < 0 {
			return herr("missing \"]\" after the bracketed address in %q", word)
		}
		addr, port, hasPort = addr[1:i], addr[i+1:], true
	case strings.HasPrefix(addr, "*"):
		port, hasPort, cutAt = addr[1:], true, 1
	default:
		from := 0
		if j := strings.IndexByte(addr, '/'); j >= 0 {
			from = j
		}
		if k := strings.LastIndexByte(addr[from:], ':'); k >= 0 {
			port, hasPort, cutAt = addr[from+k:], true, from+k
		}
	}
	if h.isPort {
		port, hasPort, cutAt = addr, true, 0
	}
	if hasPort && port != "" {
		if port[0] == ':' {
			port = port[1:]
			if cutAt >= 0 {
				addr = addr[:cutAt]
			}
		}
		if port != "" && port[0] != '*' {
			v, err := c.parsePort(port)
			if err != nil {
				return c.inetHint(word, err)
			}
			h.port = v
		}
	}
	h.alts = []alt{{}}
	if h.isPort || addr == "" || addr[0] == '*' {
		return nil
	}
	if a, ok := getPrefix(addr, fam); ok {
		h.alts[0] = a
		return nil
	}
	alts, err := c.resolveHost(addr, fam)
	if err != nil {
		return c.inetHint(word, err)
	}
	h.alts, h.name = alts, addr
	if isDigitsDots(addr) {
		h.name = "" // a number, not a name: render the address
	}
	for _, a := range alts {
		if a.fam != alts[0].fam {
			h.mixed = true
		}
	}
	return nil
}

// inetHint improves on an error for values ss rejects but people write.
func (c *parseCtx) inetHint(word string, err error) error {
	v, pfx := word, ""
	for _, p := range famPrefixes {
		if strings.HasPrefix(v, p.text) {
			v, pfx = v[len(p.text):], p.text
			break
		}
	}
	if a, perr := netip.ParseAddr(v); perr == nil && a.Is6() && a.Zone() == "" {
		return herr("an IPv6 address must be in brackets: %[1]s[%[2]s] (or %[1]s[%[2]s]:PORT, or %[1]s%[2]s/128)", pfx, v)
	}
	if strings.HasPrefix(v, "[") {
		if i := strings.Index(v, "]/"); i > 0 {
			return herr("ss reads what follows \"]\" as the port: write %s%s/%s] or %s%s/%s", pfx, v[:i], v[i+2:], pfx, v[1:i], v[i+2:])
		}
	}
	return err
}

// parsePort turns a port word (after its ':') into a port: a number as
// get_integer reads it, or a service name.
func (c *parseCtx) parsePort(port string) (int32, error) {
	if v, ok := getInteger(port); ok {
		return v, nil
	}
	askUDP := c.dbs&(1<<UDP) != 0
	askTCP := c.dbs&(1<<TCP) != 0
	if !askUDP && !askTCP {
		return 0, herr("%q is not a port number, and ss looks service names up only when tcp or udp sockets are listed (-t, -u)", port)
	}
	var (
		udpPort, tcpPort uint16
		udpOK, tcpOK     bool
	)
	if c.r != nil {
		if askUDP {
			udpPort, udpOK = c.r.Port(port, "udp")
		}
		if askTCP {
			tcpPort, tcpOK = c.r.Port(port, "tcp")
		}
	}
	switch {
	case tcpOK:
		// getservbyname returns its static result: once both lookups
		// ran, ss sees the second (tcp) answer twice.
		return int32(tcpPort), nil
	case udpOK && askTCP:
		// ...and a failed tcp lookup leaves glibc's static result
		// holding the last entry it read of the services file, which
		// ss then takes for the udp answer.
		if lp, ok := c.r.(lastPorter); ok {
			if p, ok := lp.LastPort(); ok {
				return int32(p), nil
			}
		}
		return int32(udpPort), nil
	case udpOK:
		return int32(udpPort), nil
	}
	protos := "tcp or udp"
	if !askUDP {
		protos = "tcp"
	} else if !askTCP {
		protos = "udp"
	}
	return 0, herr("unknown service %q (not in /etc/services for %s)", port, protos)
}

// lastPorter is a Resolver that knows which port glibc's getservbyname
// leaves behind after a failed lookup (see ServicesResolver.LastPort).
type lastPorter interface {
	LastPort() (uint16, bool)
}

// afBitLen is iproute2's af_bit_len.
func afBitLen(fam uint8) int {
	switch fam {
	case AFInet6:
		return 128
	case AFInet:
		return 32
	}
	return 0
}

// getPrefix is iproute2's get_prefix_1(arg, fam): an address with an
// optional /PREFIX (a length or a dotted netmask). "default", "all" and
// "any" are the zero prefix of fam.
func getPrefix(arg string, fam int) (alt, bool) {
	s, plen, slash := arg, "", false
	if i := strings.IndexByte(arg, '/'); i >= 0 {
		s, plen, slash = arg[:i], arg[i+1:], true
	}
	a, special, ok := getAddr(s, fam)
	if !ok {
		return alt{}, false
	}
	bits := afBitLen(a.fam)
	if slash {
		if special {
			return alt{}, false
		}
		n, ok := getNetmask(plen)
		if !ok || n > uint32(bits) {
			return alt{}, false
		}
		bits = int(n)
	} else if special {
		bits = 0
	}
	a.bitlen = uint8(bits)
	return a, true
}

// getAddr is iproute2's get_addr_1 for the families ss can ask here.
func getAddr(s string, fam int) (a alt, special, ok bool) {
	switch {
	case s == "default" || s == "all" || s == "any":
		return alt{fam: uint8(fam)}, true, true
	case strings.IndexByte(s, ':') >= 0:
		if fam != afUnspec && fam != AFInet6 {
			return alt{}, false, false
		}
		ip, ok := parseIPv6(s)
		if !ok {
			return alt{}, false, false
		}
		return alt{fam: AFInet6, data: ip}, false, true
	default:
		if fam != afUnspec && fam != AFInet {
			return alt{}, false, false
		}
		b, ok := getAddrIPv4(s)
		if !ok {
			return alt{}, false, false
		}
		a := alt{fam: AFInet}
		copy(a.data[:], b[:])
		return a, false, true
	}
}

// parseIPv6 is inet_pton(AF_INET6).
func parseIPv6(s string) ([16]byte, bool) {
	if strings.IndexByte(s, '%') >= 0 {
		return [16]byte{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return [16]byte{}, false
	}
	return a.As16(), true
}

// getAddrIPv4 is iproute2's get_addr_ipv4: up to four dot-separated
// numbers (C syntax: 0x.. hex, 0.. octal) filling the address from the
// left, so 10.8 is 10.8.0.0.
func getAddrIPv4(s string) ([4]byte, bool) {
	var b [4]byte
	for i := 0; i < 4; i++ {
		n := scanC(s, 0)
		if !n.ok {
			return b, false
		}
		v, _ := n.strtoul()
		if v > 255 {
			return b, false
		}
		b[i] = byte(v)
		if n.end == len(s) {
			return b, true
		}
		if i == 3 || s[n.end] != '.' {
			return b, false
		}
		s = s[n.end+1:]
	}
	return b, true
}

// getNetmask is iproute2's get_netmask: a prefix length, or a dotted
// netmask.
func getNetmask(s string) (uint32, bool) {
	if v, ok := getUnsigned(s, 0); ok {
		return v, true
	}
	a, _, ok := getAddr(s, AFInet)
	if !ok || a.fam != AFInet {
		return 0, false
	}
	mask := binary.BigEndian.Uint32(a.data[:4])
	host := ^mask
	if host&(host+1) != 0 {
		return 0, false
	}
	bits := uint32(0)
	for ; mask != 0; mask <<= 1 {
		bits++
	}
	return bits, true
}

// inetAton is glibc's inet_aton as gethostbyname uses it for all-numeric
// names: a, a.b (8.24 bits), a.b.c (8.8.16) or a.b.c.d.
func inetAton(s string) ([4]byte, bool) {
	var parts [4]uint64
	n := 0
	for {
		if s == "" || !isDigit(s[0]) || n == 4 {
			return [4]byte{}, false
		}
		c := scanC(s, 0)
		v, over := c.strtoul()
		if !c.ok || over || v > 0xffffffff {
			return [4]byte{}, false
		}
		parts[n] = v
		n++
		s = s[c.end:]
		if s == "" {
			break
		}
		if s[0] != '.' {
			return [4]byte{}, false
		}
		s = s[1:]
	}
	for i := 0; i < n-1; i++ {
		if parts[i] > 0xff {
			return [4]byte{}, false
		}
	}
	last := parts[n-1]
	if last > [5]uint64{0, 0xffffffff, 0xffffff, 0xffff, 0xff}[n] {
		return [4]byte{}, false
	}
	var v uint32
	for i := 0; i < n-1; i++ {
		v |= uint32(parts[i]) << (24 - 8*i)
	}
	v |= uint32(last)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b, true
}

// isDigitsDots is glibc's test for a host name it converts itself
// instead of looking it up: digits and dots, starting with a digit, not
// ending with a dot.
func isDigitsDots(s string) bool {
	if s == "" || !isDigit(s[0]) || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// resolveHost is ss's get_dns_host: gethostbyname2 of name for fam's
// family (IPv4 then IPv6 when no family is set), each address a full-length
// prefix.
func (c *parseCtx) resolveHost(name string, fam int) ([]alt, error) {
	famName := map[int]string{AFInet: "IPv4 (inet)", AFInet6: "IPv6 (inet6)"}
	if fam != afUnspec && fam != AFInet && fam != AFInet6 {
		return nil, herr("%q: addresses are not understood in this family (-f %s); use a family prefix like inet: or inet6:", name, familyName(fam))
	}
	if i := strings.IndexByte(name, '/'); i >= 0 {
		a, special, ok := getAddr(name[:i], fam)
		switch {
		case !ok:
			return nil, addrErr(name[:i], fam)
		case special || afBitLen(a.fam) == 0:
			return nil, herr("%q takes no prefix length", name[:i])
		default:
			return nil, herr("bad prefix length %q: %s prefixes are /0 to /%d, or a netmask like /255.255.0.0", name[i:], map[uint8]string{AFInet: "IPv4", AFInet6: "IPv6"}[a.fam], afBitLen(a.fam))
		}
	}
	if strings.IndexByte(name, ':') >= 0 {
		return nil, addrErr(name, fam)
	}
	var alts []alt
	if isDigitsDots(name) {
		// glibc converts all-numeric names itself, IPv4 only.
		b, ok := inetAton(name)
		if !ok || fam == AFInet6 {
			return nil, addrErr(name, fam)
		}
		a := alt{fam: AFInet, bitlen: 32}
		copy(a.data[:], b[:])
		return []alt{a}, nil
	}
	if c.r == nil {
		return nil, herr("%q is not an address, and no resolver is set to look host names up", name)
	}
	addrs, err := c.r.Host(name)
	if err != nil {
		return nil, herr("%q is neither an address nor a known host: %v", name, err)
	}
	for _, want := range []int{AFInet, AFInet6} {
		if fam != afUnspec && fam != want {
			continue
		}
		for _, a := range addrs {
			if want == AFInet && (a.Is4() || a.Is4In6()) {
				x := alt{fam: AFInet, bitlen: 32}
				b := a.Unmap().As4()
				copy(x.data[:], b[:])
				alts = append(alts, x)
			}
			if want == AFInet6 && a.Is6() && !a.Is4In6() {
				alts = append(alts, alt{fam: AFInet6, bitlen: 128, data: a.As16()})
			}
		}
	}
	if len(alts) == 0 {
		if fam != afUnspec {
			return nil, herr("host %q has no %s address", name, famName[fam])
		}
		return nil, herr("host %q has no address", name)
	}
	return alts, nil
}

func addrErr(s string, fam int) error {
	switch fam {
	case AFInet:
		if _, _, ok := getAddr(s, afUnspec); ok {
			return herr("%q is not an IPv4 address, and only IPv4 (inet) addresses are read here (-4, -f inet or an earlier inet: prefix)", s)
		}
		return herr("%q is not an IPv4 address", s)
	case AFInet6:
		if _, _, ok := getAddr(s, afUnspec); ok {
			return herr("%q is not an IPv6 address, and only IPv6 (inet6) addresses are read here (-6, -f inet6 or an earlier inet6: prefix)", s)
		}
		return herr("%q is not an IPv6 address", s)
	}
	return herr("%q is not an IPv4 or IPv6 address", s)
}

func familyName(fam int) string {
	for n, f := range FamilyNames {
		if f == fam {
			return n
		}
	}
	return strconv.Itoa(fam)
}

// device resolves a device name as ss's ll_name_to_index: the resolver's
// answer, else "ifN".
func (c *parseCtx) device(name string) (uint32, bool) {
	if d, ok := c.r.(DeviceResolver); ok {
		if idx, ok := d.Device(name); ok && idx != 0 {
			return idx, true
		}
	}
	if rest, ok := strings.CutPrefix(name, "if"); ok {
		if v, ok := scanfUint10(rest); ok && v != 0 {
			return v, true
		}
	}
	return 0, false
}

// Link-layer protocol names (iproute2 lib/ll_proto.c), matched without
// regard to case; the first of a number is its name.
var llProtos = []struct {
	name string
	id   uint16
}{
	{"loop", 0x0060}, {"pup", 0x0200}, {"pupat", 0x0201}, {"ip", 0x0800},
	{"x25", 0x0805}, {"arp", 0x0806}, {"bpq", 0x08ff}, {"ieeepup", 0x0a00},
	{"ieeepupat", 0x0a01}, {"dec", 0x6000}, {"dna_dl", 0x6001}, {"dna_rc", 0x6002},
	{"dna_rt", 0x6003}, {"lat", 0x6004}, {"diag", 0x6005}, {"cust", 0x6006},
	{"sca", 0x6007}, {"rarp", 0x8035}, {"atalk", 0x809b}, {"aarp", 0x80f3},
	{"ipx", 0x8137}, {"ipv6", 0x86dd}, {"ppp_disc", 0x8863}, {"ppp_ses", 0x8864},
	{"atmmpoa", 0x884c}, {"atmfate", 0x8884}, {"802_3", 0x0001}, {"ax25", 0x0002},
	{"all", 0x0003}, {"802_2", 0x0004}, {"snap", 0x0005}, {"ddcmp", 0x0006},
	{"wan_ppp", 0x0007}, {"ppp_mp", 0x0008}, {"localtalk", 0x0009}, {"can", 0x000c},
	{"ppptalk", 0x0010}, {"tr_802_2", 0x0011}, {"mobitex", 0x0015}, {"control", 0x0016},
	{"irda", 0x0017}, {"econet", 0x0018}, {"tipc", 0x88ca}, {"profinet", 0x8892},
	{"aoe", 0x88a2}, {"ethercat", 0x88a4}, {"802.1Q", 0x8100}, {"802.1ad", 0x88a8},
	{"mpls_uc", 0x8847}, {"mpls_mc", 0x8848}, {"teb", 0x6558},
	{"802.1Q", 0x8100}, {"LLDP", 0x88cc}, {"ipv4", 0x0800},
}

// llProtoNumber is ll_proto_a2n: a name, or a 16-bit number.
func llProtoNumber(s string) (uint16, bool) {
	for _, p := range llProtos {
		if strings.EqualFold(p.name, s) {
			return p.id, true
		}
	}
	return getU16(s)
}

// Netlink protocol names (iproute2 lib/rt_names.c, as in
// /etc/iproute2/nl_protos), matched exactly.
var nlProtos = map[string]uint32{
	"rtnl": 0, "unused": 1, "usersock": 2, "fw": 3, "tcpdiag": 4, "nflog": 5,
	"xfrm": 6, "selinux": 7, "iscsi": 8, "audit": 9, "fiblookup": 10,
	"connector": 11, "nft": 12, "ip6fw": 13, "dec-rt": 14, "uevent": 15,
	"genl": 16, "scsi-trans": 18, "ecryptfs": 19, "rdma": 20, "crypto": 21,
}

// nlProtoNumber is nl_proto_a2n: a name, or a number up to 255.
func nlProtoNumber(s string) (uint32, bool) {
	if v, ok := nlProtos[s]; ok {
		return v, true
	}
	n := scanC(s, 0)
	v, _ := n.strtoul()
	if !n.ok || n.end != len(s) || v > 255 {
		return 0, false
	}
	return uint32(v), true
}

// parseMark is ss's parse_markmask: MARK or MARK/MASK, each as sscanf's
// %i reads it.
func parseMark(s string) (mark, mask uint32, ok bool) {
	if strings.IndexByte(s, '/') < 0 {
		v, _, ok := scanfInt(s)
		return v, 0xffffffff, ok
	}
	mark, rest, ok := scanfInt(s)
	if !ok || !strings.HasPrefix(rest, "/") {
		return 0, 0, false
	}
	mask, _, ok = scanfInt(rest[1:])
	return mark, mask, ok
}

// parseDev is ss's parse_devcond: a device name, else a number.
func (c *parseCtx) parseDev(s string) (uint32, bool) {
	if idx, ok := c.device(s); ok {
		return idx, true
	}
	n := scanC(s, 0)
	v, over := n.strtoul()
	if !n.ok || n.end != len(s) || over || v > 0xffffffff {
		return 0, false
	}
	return uint32(v), true
}
