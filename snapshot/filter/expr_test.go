package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// testResolver knows a few fixed names, so that tests do not depend on the
// machine's /etc/services, /etc/hosts, devices or cgroups.
type testResolver struct{ last uint16 }

var testServices = map[[2]string]uint16{
	{"ssh", "tcp"}: 22, {"smtp", "tcp"}: 25, {"http", "tcp"}: 80, {"https", "tcp"}: 443,
	{"domain", "tcp"}: 53, {"domain", "udp"}: 53, {"bootps", "udp"}: 67,
	{"split", "udp"}: 1000, {"split", "tcp"}: 2000,
}

func (r testResolver) Port(name, proto string) (uint16, bool) {
	p, ok := testServices[[2]string{name, proto}]
	return p, ok
}

func (r testResolver) LastPort() (uint16, bool) { return r.last, r.last != 0 }

func (testResolver) Host(name string) ([]netip.Addr, error) {
	switch name {
	case "example":
		return []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.9")}, nil
	case "v6host":
		return []netip.Addr{netip.MustParseAddr("2001:db8::1")}, nil
	case "dual":
		return []netip.Addr{netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("192.0.2.2")}, nil
	case "mapped":
		return []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.3")}, nil
	case "*weird", "and", "[x":
		return []netip.Addr{netip.MustParseAddr("192.0.2.4")}, nil
	}
	return nil, errors.New("no such host")
}

func (testResolver) Device(name string) (uint32, bool) {
	switch name {
	case "lo":
		return 1, true
	case "eth0":
		return 2, true
	}
	return 0, false
}

func (testResolver) Cgroup(path string) (uint64, error) {
	if path == "/system.slice" {
		return 4242, nil
	}
	return 0, fmt.Errorf("no such cgroup")
}

func (testResolver) EphemeralPorts() (int32, int32) { return 32768, 60999 }

var tres = testResolver{last: 60179}

func mustParse(t testing.TB, args ...string) Expr {
	t.Helper()
	e, err := Parse(args, tres)
	if err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return e
}

func TestParseString(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		// Conditions and their value forms.
		{[]string{"dport", "=", ":smtp", "or", "sport", "=", ":smtp"}, "dport = :25 or sport = :25"},
		{[]string{"( dport = :ssh )"}, "dport = :22"},
		{[]string{"(", "sport", "=", ":http", "or", "sport", "=", ":https", ")"}, "sport = :80 or sport = :443"},
		{[]string{"dst", "127.125.236.178/16"}, "dst 127.125.236.178/16"},
		{[]string{"src", "127.0.0.1", "sport", "gt", ":5000"}, "src 127.0.0.1 and sport > :5000"},
		{[]string{"sport", ">", ":1000"}, "sport > :1000"},
		{[]string{"sport", `\>`, ":1000"}, "sport > :1000"},
		{[]string{`sport \> :1000`}, "sport > :1000"},
		{[]string{"sport", `\<=`, ":1000"}, "sport <= :1000"},
		{[]string{"not", "dst", "127.0.0.1"}, "not dst 127.0.0.1"},
		{[]string{"src", "[::1]"}, "src [::1]"},
		{[]string{"src", "[::1]:22"}, "src [::1]:22"},
		{[]string{"src", "::1/128"}, "src [::1]"},
		{[]string{"src", "[fe80::/64]"}, "src fe80::/64"},
		{[]string{"src", "fe80::/64:443"}, "src fe80::/64:443"},
		{[]string{"dst", "[::ffff:127.0.0.1]"}, "dst [::ffff:127.0.0.1]"},
		{[]string{"src", "*"}, "src *"},
		{[]string{"src", "*:22"}, "src :22"},
		{[]string{"src", "*:*"}, "src *"},
		{[]string{"src", "*ssh"}, "src :22"},
		{[]string{"src", ":ssh"}, "src :22"},
		{[]string{"src", "1.2.3.4:"}, "src 1.2.3.4"},
		{[]string{"src", "127.0.0.1/8:22"}, "src 127.0.0.1/8:22"},
		{[]string{"src", "192.168.1/24"}, "src 192.168.1.0/24"},
		{[]string{"src", "127.1"}, "src 127.1.0.0"},
		{[]string{"src", "0x7f.1"}, "src 127.1.0.0"},
		{[]string{"src", "10.0.0.0/255.0.0.0"}, "src 10.0.0.0/8"},
		{[]string{"src", "10.0.0.0/0x10"}, "src 10.0.0.0/16"},
		{[]string{"src", "2130706433"}, "src 127.0.0.1"}, // gethostbyname's inet_aton
		{[]string{"src", "default"}, "src *"},
		{[]string{"src", "any:22"}, "src :22"},
		{[]string{"src", "0.0.0.0/0"}, "src 0.0.0.0/0"},
		{[]string{"src", "::/0"}, "src ::/0"},
		{[]string{"src", "example"}, "src example"},
		{[]string{"src", "example:ssh"}, "src example:22"},
		{[]string{"src", "[and]"}, "src [and]"},
		{[]string{"src", "[*weird]:1"}, "src :1"}, // a value starting with * has no address
		{[]string{"src", "[[x]"}, "src [[x]"},
		{[]string{"sport", ":22"}, "sport = :22"},
		{[]string{"sport", "22"}, "sport = :22"},
		{[]string{"sport", "eq", "0x16"}, "sport = :22"},
		{[]string{"sport", "==", "026"}, "sport = :22"},
		{[]string{"sport", "neq", ":22"}, "sport != :22"},
		{[]string{"dport", "ge", ":-5"}, "dport >= :-5"},
		{[]string{"dport", "lt", "*"}, "dport < *"},
		{[]string{"dport", "leq", ":-1"}, "dport <= *"},
		{[]string{"src", "=", "1.2.3.4"}, "src 1.2.3.4"},
		{[]string{"src", "==", "1.2.3.4"}, "src 1.2.3.4"},
		{[]string{"dev", "lo"}, "dev = lo"},
		{[]string{"dev", "!=", "3"}, "dev != 3"},
		{[]string{"dev", "if7"}, "dev = if7"},
		{[]string{"fwmark", "0x10/0xff"}, "fwmark = 0x10/0xff"},
		{[]string{"fwmark", "ne", "-1"}, "fwmark != 0xffffffff/0xffffffff"},
		{[]string{"cgroup", "/system.slice"}, "cgroup = /system.slice"},
		{[]string{"autobound"}, "autobound"},
		// Service lookups: udp then tcp, and ss's static-buffer quirk.
		{[]string{"sport", "=", ":domain"}, "sport = :53"},
		{[]string{"sport", "=", ":split"}, "sport = :2000"},
		{[]string{"sport", "=", ":bootps"}, "sport = :60179"},
		// Families: prefixes, and the family they leave for later values.
		{[]string{"src", "unix:/tmp/x/*"}, "src unix:/tmp/x/*"},
		{[]string{"src", "unix:/tmp/*", "or", "sport", "=", ":22"}, "src unix:/tmp/* or sport = :22"},
		{[]string{"src", "unix:/tmp/*", "or", "src", "inet:1.2.3.4"}, "src unix:/tmp/* or src inet:1.2.3.4"},
		{[]string{"src", "inet6:[::1]", "or", "src", "[::2]"}, "src inet6:[::1] or src [::2]"},
		{[]string{"src", "inet:example"}, "src inet:example"},
		{[]string{"sport", "=", "inet::22"}, "sport = inet::22"},
		{[]string{`src unix:/tmp/a\ b`}, `src unix:/tmp/a\ b`},
		{[]string{`src unix:a\\b`}, `src unix:a\\b`},
		{[]string{"src", "unix:"}, "src unix:"},
		{[]string{"src", "unix:and"}, "src unix:and"},
		{[]string{"src", "unix:x", "src", "link:"}, "src unix:x and src link:*"},
		{[]string{"src", "unix:unix:x", "src", "unix:y"}, "src unix:unix:x and src y"},
		{[]string{"src", "link:ip:lo"}, "src link:0x0800:1"},
		{[]string{"src", "link:IPV6"}, "src link:0x86dd"},
		{[]string{"src", "link:*:if2"}, "src link:*:2"},
		{[]string{"sport", "=", "link:eth0"}, "sport = link::2"},
		{[]string{"src", "netlink:tcpdiag:kernel"}, "src netlink:4:0"},
		{[]string{"src", "netlink:*:-4711"}, "src netlink:*:-4711"},
		{[]string{"dport", "=", "netlink::1"}, "dport = netlink::1"},
		{[]string{"src", "vsock:3:1024"}, "src vsock:*:1024"},
		{[]string{"sport", "=", "vsock:*"}, "sport = vsock:*"},
		// Operators: one level, left to right.
		{[]string{"sport = :22 or sport = :80 and dport = :1"}, "sport = :22 or sport = :80 and dport = :1"},
		{[]string{"sport = :22 or ( sport = :80 and dport = :1 )"}, "sport = :22 or ( sport = :80 and dport = :1 )"},
		{[]string{"sport", "=", ":22", "dport", "=", ":80"}, "sport = :22 and dport = :80"},
		{[]string{"sport = :22 && ! dport = :80 || autobound"}, "sport = :22 and not dport = :80 or autobound"},
		{[]string{"sport = :22 & dport = :80 | autobound"}, "sport = :22 and dport = :80 or autobound"},
		{[]string{"! ( sport = :22 or sport = :25 ) not not autobound"}, "not ( sport = :22 or sport = :25 ) and not not autobound"},
		{[]string{"( ( sport = :22 ) )"}, "sport = :22"},
		{[]string{"( ( sport = :22 or sport = :25 ) and not ( dst 127.0.0.3 ) ) or dport = :443"}, "sport = :22 or sport = :25 and not dst 127.0.0.3 or dport = :443"},
		{[]string{"autobound or ( sport = :1 or sport = :2 )"}, "autobound or ( sport = :1 or sport = :2 )"},
		// Words: spaces, tabs, empty arguments, escapes.
		{[]string{"", " sport\t=  :22 ", ""}, "sport = :22"},
		{[]string{"src", `\`}, "src *"}, // a lone backslash is an empty word: no address, no port
		{[]string{`dev \lo`}, "dev = lo"},
		{[]string{"sport = :22\x00 garbage"}, "sport = :22"}, // C strings end at NUL
	} {
		e, err := Parse(c.args, tres)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.args, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("Parse(%q) = %q, want %q", c.args, got, c.want)
			continue
		}
		// The canonical form parses back to itself.
		e2, err := Parse([]string{e.String()}, tres)
		if err != nil {
			t.Errorf("Parse(%q) (from %q): %v", e.String(), c.args, err)
		} else if e2.String() != e.String() {
			t.Errorf("Parse(%q) = %q: not canonical", e.String(), e2.String())
		}
	}
}

func TestParseEmpty(t *testing.T) {
	for _, args := range [][]string{nil, {}, {""}, {"  ", "\t"}} {
		e, err := Parse(args, tres)
		if e != nil || err != nil {
			t.Errorf("Parse(%q) = %v, %v; want nil, nil", args, e, err)
		}
	}
	e, err := ParseFile("# nothing\n\n", tres)
	if e != nil || err != nil {
		t.Errorf("ParseFile(comment) = %v, %v; want nil, nil", e, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sport", "=", "=="}, `filter: position 3 ("=="): expected a port like :22 or :ssh after "sport ="`},
		{[]string{"src", "1.2.3.4", "sport", "=", "=="}, `filter: position 5 ("=="): expected a port like :22 or :ssh after "sport ="`},
		{[]string{"dport", "=", ":smpt"}, `filter: position 3 (":smpt"): unknown service "smpt" (not in /etc/services for tcp or udp)`},
		{[]string{"src", "1.2.3.4.5"}, `filter: position 2 ("1.2.3.4.5"): "1.2.3.4.5" is not an IPv4 or IPv6 address`},
		{[]string{"src", "256.1.1.1"}, `filter: position 2 ("256.1.1.1"): "256.1.1.1" is not an IPv4 or IPv6 address`},
		{[]string{"src", "nosuchhost"}, `filter: position 2 ("nosuchhost"): "nosuchhost" is neither an address nor a known host: no such host`},
		{[]string{"src", "127.0.0.1/33"}, `filter: position 2 ("127.0.0.1/33"): bad prefix length "/33": IPv4 prefixes are /0 to /32, or a netmask like /255.255.0.0`},
		{[]string{"src", "[::1/129]"}, `filter: position 2 ("[::1/129]"): bad prefix length "/129": IPv6 prefixes are /0 to /128, or a netmask like /255.255.0.0`},
		{[]string{"src", "10.0.0.0/255.0.255.0"}, `filter: position 2 ("10.0.0.0/255.0.255.0"): bad prefix length "/255.0.255.0": IPv4 prefixes are /0 to /32, or a netmask like /255.255.0.0`},
		{[]string{"src", "any/8"}, `filter: position 2 ("any/8"): "any" takes no prefix length`},
		{[]string{"src", "::1"}, `filter: position 2 ("::1"): an IPv6 address must be in brackets: [::1] (or [::1]:PORT, or ::1/128)`},
		{[]string{"src", "inet6:fe80::1"}, `filter: position 2 ("inet6:fe80::1"): an IPv6 address must be in brackets: inet6:[fe80::1] (or inet6:[fe80::1]:PORT, or inet6:fe80::1/128)`},
		{[]string{"src", "[::1]/128"}, `filter: position 2 ("[::1]/128"): ss reads what follows "]" as the port: write [::1/128] or ::1/128`},
		{[]string{"src", "[::1"}, `filter: position 2 ("[::1"): missing "]" after the bracketed address in "[::1"`},
		{[]string{"src", "inet:[::1]"}, `filter: position 2 ("inet:[::1]"): "::1" is not an IPv4 address, and only IPv4 (inet) addresses are read here (-4, -f inet or an earlier inet: prefix)`},
		{[]string{"src", "inet6:1.2.3.4"}, `filter: position 2 ("inet6:1.2.3.4"): "1.2.3.4" is not an IPv6 address, and only IPv6 (inet6) addresses are read here (-6, -f inet6 or an earlier inet6: prefix)`},
		{[]string{"src", "inet6:example"}, `filter: position 2 ("inet6:example"): host "example" has no IPv6 (inet6) address`},
		{[]string{"src", "inet:1.2.3.4", "or", "src", "/tmp/x"}, `filter: position 5 ("/tmp/x"): "" is not an IPv4 address`},
		{[]string{"(", "sport", "=", ":22"}, `filter: position 1 ("("): unbalanced parentheses: this "(" is never closed`},
		{[]string{"sport = :22 )"}, `filter: position 4 (")", argument 1 column 13): unbalanced parentheses: this ")" closes nothing`},
		{[]string{"(", "(", "sport", "=", ":22", ")"}, `filter: position 1 ("("): unbalanced parentheses: this "(" is never closed`},
		{[]string{"(", ")"}, `filter: position 2 (")"): empty parentheses`},
		{[]string{"sport = :22 and"}, `filter: position 5 (end of filter): dangling "and": expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "(" after "and"`},
		{[]string{"not"}, `filter: position 2 (end of filter): dangling "not": expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "(" after "not"`},
		{[]string{"or", "sport", "=", ":22"}, `filter: position 1 ("or"): "or" has no condition before it`},
		{[]string{"sport", "=", ":22", "and", "or", "dport", "=", ":1"}, `filter: position 5 ("or"): "or" cannot follow "and": expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "(" after "and"`},
		{[]string{"(dport", "=", ":ssh)"}, `filter: position 1 ("(dport"): parentheses must be words of their own: write "( dport"`},
		{[]string{"(", "dport", "=", ":ssh)"}, `filter: position 4 (":ssh)"): unknown service "ssh)" (not in /etc/services for tcp or udp) (parentheses must be words of their own: ":ssh )")`},
		{[]string{"nosuchhost"}, `filter: position 1 ("nosuchhost"): expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "("`},
		{[]string{"sport", "=", ":22", "state", "listening"}, `filter: position 4 ("state"): "state" must come before the expression: ss [options] [state NAME | exclude NAME]... [EXPRESSION]`},
		{[]string{"127.0.0.1"}, `filter: position 1 ("127.0.0.1"): expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "(" (did you mean "src 127.0.0.1" or "dst 127.0.0.1"?)`},
		{[]string{"sport", "=", ":22", ":80"}, `filter: position 4 (":80"): expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "(" (did you mean "src :80" or "dst :80"?)`},
		{[]string{"=", ":22"}, `filter: position 1 ("="): comparison "=" without sport, dport, dev, fwmark or cgroup before it`},
		{[]string{"src", ">", "1.2.3.4"}, `filter: position 2 (">"): "src" takes no comparison but "=": for port ranges use sport/dport (sport > :1024), for "not equal" write "not src ..."`},
		{[]string{"src", "!=", "1.2.3.4"}, `filter: position 2 ("!="): "src" takes no comparison but "=": for port ranges use sport/dport (sport > :1024), for "not equal" write "not src ..."`},
		{[]string{"dev", ">", "1"}, `filter: position 2 (">"): "dev" compares with = or != only`},
		{[]string{"src", "dev", "lo"}, `filter: position 2 ("dev"): expected an address after "src"`},
		{[]string{"src"}, `filter: position 2 (end of filter): expected an address after "src"`},
		{[]string{"sport", "AND"}, `filter: position 2 ("AND"): unknown service "AND" (not in /etc/services for tcp or udp)`},
		{[]string{"dev", "eth9"}, `filter: position 2 ("eth9"): unknown device "eth9" (want a device name, ifN or an index)`},
		{[]string{"dev", "if0"}, `filter: position 2 ("if0"): unknown device "if0" (want a device name, ifN or an index)`},
		{[]string{"fwmark", "x"}, `filter: position 2 ("x"): "x" is not a mark (want MARK or MARK/MASK, numbers like 0x10/0xff)`},
		{[]string{"fwmark", "1/"}, `filter: position 2 ("1/"): "1/" is not a mark (want MARK or MARK/MASK, numbers like 0x10/0xff)`},
		{[]string{"cgroup", "/nope"}, `filter: position 2 ("/nope"): cgroup "/nope": no such cgroup`},
		{[]string{"src", "link:nosuchproto"}, `filter: position 2 ("link:nosuchproto"): unknown link-layer protocol "nosuchproto" (want a name like ip, ipv6, arp, all or a number like 0x0800)`},
		{[]string{"src", "link:ip:eth9"}, `filter: position 2 ("link:ip:eth9"): unknown device "eth9" (link: values are PROTOCOL:DEVICE, the device a name or an index)`},
		{[]string{"src", "netlink:nope"}, `filter: position 2 ("netlink:nope"): unknown netlink protocol "nope" (want a name like rtnl, tcpdiag, genl or a number 0-255)`},
		{[]string{"src", "netlink:4:x"}, `filter: position 2 ("netlink:4:x"): "x" is not a netlink port id (want a number or "kernel")`},
		{[]string{"src", "vsock:1:"}, `filter: position 2 ("vsock:1:"): "" is not a vsock port (want a number or *)`},
		{[]string{"sport = :ssh or dport = :nope"}, `filter: position 7 (":nope", argument 1 column 25): unknown service "nope" (not in /etc/services for tcp or udp)`},
	} {
		_, err := Parse(c.args, tres)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %s", c.args, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", c.args, err, c.want)
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): error %T is no *Error", c.args, err)
		}
	}
}

// TestParseSelection checks how the selection (ss's options) shapes the
// parse, and how the parse changes the selection.
func TestParseSelection(t *testing.T) {
	sel := func(opts ...string) Selection {
		var o []Opt
		for _, s := range opts {
			name, arg, _ := strings.Cut(s, "=")
			o = append(o, Opt{Name: name, Arg: arg})
		}
		s, err := Select(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		opts     []string
		args     []string
		want     string // String, or "error: ..." with the error's end
		families uint64 // 0: unchanged
		pref     int
	}{
		// -x reads host values as unix patterns, sport ones too.
		{[]string{"x"}, []string{"src", "/tmp/x/*"}, "src unix:/tmp/x/*", 1 << AFUnix, AFUnix},
		{[]string{"x"}, []string{"sport", "=", ":22"}, "sport = unix::22", 1 << AFUnix, AFUnix},
		// -4/-6: addresses of that family only; every host value sets the family.
		{[]string{"4"}, []string{"src", "127.0.0.1"}, "src inet:127.0.0.1", 1 << AFInet, AFInet},
		{[]string{"4"}, []string{"sport", "=", ":22"}, "sport = inet::22", 1 << AFInet, AFInet},
		{[]string{"4"}, []string{"src", "[::1]"}, `error: "::1" is not an IPv4 address, and only IPv4 (inet) addresses are read here (-4, -f inet or an earlier inet: prefix)`, 0, 0},
		{[]string{"6"}, []string{"src", "default"}, "src inet6:::/0", 1 << AFInet6, AFInet6},
		{[]string{"0"}, []string{"src", "ip:lo"}, "src link:0x0800:1", 1 << AFPacket, AFPacket},
		{[]string{"f=netlink"}, []string{"src", "rtnl"}, "src netlink:0", 1 << AFNetlink, AFNetlink},
		// No family: families unchanged; dev and the like never change them.
		{[]string{"t"}, []string{"src", "127.0.0.1", "dev", "lo"}, "src 127.0.0.1 and dev = lo", 0, 0},
		{[]string{"t"}, []string{"src", "unix:/x", "or", "src", "inet:1.2.3.4"}, "src unix:/x or src inet:1.2.3.4", 1 << AFInet, AFInet},
		// Services: looked up only for the udp and tcp tables selected.
		{[]string{"t"}, []string{"sport", "=", ":bootps"}, `error: unknown service "bootps" (not in /etc/services for tcp)`, 0, 0},
		{[]string{"u"}, []string{"sport", "=", ":bootps"}, "sport = :67", 0, 0},
		{[]string{"u"}, []string{"sport", "=", ":split"}, "sport = :1000", 0, 0},
		{[]string{"t"}, []string{"sport", "=", ":split"}, "sport = :2000", 0, 0},
		{[]string{"t", "u"}, []string{"sport", "=", ":bootps"}, "sport = :60179", 0, 0},
		{[]string{"w"}, []string{"sport", "=", ":ssh"}, `error: "ssh" is not a port number, and ss looks service names up only when tcp or udp sockets are listed (-t, -u)`, 0, 0},
		// Families ss has no prefix for: only values without an address.
		{[]string{"f=tipc"}, []string{"sport", "=", ":22"}, "sport = :22", 1 << AFTIPC, AFTIPC},
		{[]string{"f=tipc"}, []string{"src", "1.2.3.4"}, `error: "1.2.3.4": addresses are not understood in this family (-f tipc); use a family prefix like inet: or inet6:`, 0, 0},
	} {
		s := sel(c.opts...)
		before := s
		e, err := s.ParseFilter(c.args, nil, tres)
		if wantErr, ok := strings.CutPrefix(c.want, "error: "); ok {
			if err == nil || !strings.HasSuffix(err.Error(), wantErr) {
				t.Errorf("-%v %q: error %v, want one ending %q", c.opts, c.args, err, wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("-%v %q: %v", c.opts, c.args, err)
			continue
		}
		if e.String() != c.want {
			t.Errorf("-%v %q = %q, want %q", c.opts, c.args, e, c.want)
		}
		wantFam, wantPref := before.Families, before.Preferred
		if c.families != 0 {
			wantFam, wantPref = c.families, c.pref
		}
		if s.Families != wantFam || s.Preferred != wantPref {
			t.Errorf("-%v %q: families %#x preferred %d, want %#x %d", c.opts, c.args, s.Families, s.Preferred, wantFam, wantPref)
		}
		if s.DBs != before.DBs || s.States != before.States {
			t.Errorf("-%v %q: tables or states changed", c.opts, c.args)
		}
	}
}

func TestParseFile(t *testing.T) {
	for _, c := range []struct {
		args []string
		file string
		want string // String, or "error: ..."
	}{
		{nil, "sport = :22\n  or dport = :22\n", "sport = :22 or dport = :22"},
		{nil, "sport = :22\n# or sport = :25\n0 or sport = :80\n\tor dport = :1", "sport = :22 or dport = :1"},
		{nil, "sport = :22 or\r\n dport = :1\n", `error: filter: position 4 ("or\r", filter file line 1 column 13): expected a condition (src, dst, sport, dport, dev, fwmark, cgroup, autobound), "not" or "("`}, // CR is part of the word
		{nil, "src unix:/a\\ b\\\n", `src unix:/a\ b`},
		{[]string{"sport", "=", ":22"}, "or dport = :1\n", "sport = :22 or dport = :1"},
		{nil, "sport = :22\nor dport = :nope\n", `error: filter: position 7 (":nope", filter file line 2 column 12): unknown service "nope" (not in /etc/services for tcp or udp)`},
		{nil, "sport = :22\n\x00x\n", `error: filter: filter file line 2 starts with a NUL byte (ss: "Invalid line")`},
		{nil, "sport = :22 \x00 or garbage\n", "sport = :22"},
		{nil, strings.Repeat(" ", 1021) + "\nautobound", "autobound"},
		{nil, strings.Repeat(" ", 1022) + "\nautobound", "error: filter: filter file line 1 is too long: ss reads at most 1022 bytes a line, newline included"},
		{nil, "autobound\n" + strings.Repeat(" ", 1022), "autobound"},
	} {
		sel := defaultSelection()
		file := c.file
		e, err := sel.ParseFilter(c.args, &file, tres)
		if wantErr, ok := strings.CutPrefix(c.want, "error: "); ok {
			if err == nil || err.Error() != wantErr {
				t.Errorf("file %q: error %v, want %s", c.file, err, wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("file %q: %v", c.file, err)
			continue
		}
		if e.String() != c.want {
			t.Errorf("file %q = %q, want %q", c.file, e, c.want)
		}
	}
	if e, err := ParseFile("dport = :ssh\n", tres); err != nil || e.String() != "dport = :22" {
		t.Errorf("ParseFile = %v, %v", e, err)
	}
}

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a b\tc", []string{"a@1", "b@3", "c@5"}},
		{"  a  ", []string{"a@3"}},
		{`a\ b`, []string{"a b@1"}},
		{`a\\b`, []string{`a\b@1`}},
		{`\`, []string{"@1"}},
		{`ab\`, []string{"ab@1"}},
		{`\>`, []string{">@1"}},
		{"a\nb", []string{"a\nb@1"}}, // only spaces and tabs separate
		{"a\vb\fc", []string{"a\vb\fc@1"}},
	} {
		var got []string
		splitWords(c.in, func(w string, col int) { got = append(got, fmt.Sprintf("%s@%d", w, col)) })
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("splitWords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct {
		s    string
		v    int32
		okay bool
	}{
		{"22", 22, true}, {"0x16", 22, true}, {"026", 22, true}, {"+22", 22, true},
		{" 22", 22, true}, {"-1", -1, true}, {"22 ", 0, false}, {"", 0, false},
		{"0x", 0, false}, {"2147483647", 2147483647, true}, {"2147483648", 0, false},
		{"08", 0, false}, {"ssh", 0, false},
	} {
		v, ok := getInteger(c.s)
		if v != c.v || ok != c.okay {
			t.Errorf("getInteger(%q) = %d, %v; want %d, %v", c.s, v, ok, c.v, c.okay)
		}
	}
	for _, c := range []struct {
		s    string
		want string
	}{
		{"10.8", "10.8.0.0"}, {"1.2.3.4", "1.2.3.4"}, {"0x7f.0.0.1", "127.0.0.1"},
		{"010.0.0.1", "8.0.0.1"}, {"1.2.3.4.5", ""}, {"256.0.0.0", ""}, {"1..2", ""},
		{"-0.1", "0.1.0.0"}, {"", ""},
	} {
		b, ok := getAddrIPv4(c.s)
		got := ""
		if ok {
			got = netip.AddrFrom4(b).String()
		}
		if got != c.want {
			t.Errorf("getAddrIPv4(%q) = %q, want %q", c.s, got, c.want)
		}
	}
	for _, c := range []struct {
		s    string
		want string
	}{
		{"2130706433", "127.0.0.1"}, {"127.1", "127.0.0.1"}, {"10.1.2", "10.1.0.2"},
		{"1.2.3.256", ""}, {"1.2.3.4.5", ""}, {"4294967296", ""}, {"0127.1", "87.0.0.1"},
	} {
		b, ok := inetAton(c.s)
		got := ""
		if ok {
			got = netip.AddrFrom4(b).String()
		}
		if got != c.want {
			t.Errorf("inetAton(%q) = %q, want %q", c.s, got, c.want)
		}
	}
	for _, c := range []struct {
		s          string
		mark, mask uint32
		ok         bool
	}{
		{"5", 5, 0xffffffff, true}, {"0x10/0xff", 0x10, 0xff, true}, {"5abc", 5, 0xffffffff, true},
		{"1/2xyz", 1, 2, true}, {"1x/2", 0, 0, false}, {"/2", 0, 0, false}, {"-1", 0xffffffff, 0xffffffff, true},
		{"0xffffffff/1", 0xffffffff, 1, true}, {" 7", 7, 0xffffffff, true},
	} {
		m, k, ok := parseMark(c.s)
		if ok != c.ok || (ok && (m != c.mark || k != c.mask)) {
			t.Errorf("parseMark(%q) = %#x, %#x, %v; want %#x, %#x, %v", c.s, m, k, ok, c.mark, c.mask, c.ok)
		}
	}
}

func TestServicesResolver(t *testing.T) {
	path := t.TempDir() + "/services"
	writeFile(t, path, "# comment\nssh\t\t22/tcp\t\t# SSH\nfoo 7/udp bar baz\nfoo 8/udp\nbig 70000/tcp\n\nlast 60179/tcp\n")
	r, err := NewServicesResolver(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, proto string
		port        uint16
		ok          bool
	}{
		{"ssh", "tcp", 22, true}, {"ssh", "udp", 0, false}, {"foo", "udp", 7, true},
		{"baz", "udp", 7, true}, {"big", "tcp", 4464, true}, {"SSH", "tcp", 0, false},
	} {
		p, ok := r.Port(c.name, c.proto)
		if p != c.port || ok != c.ok {
			t.Errorf("Port(%q, %q) = %d, %v; want %d, %v", c.name, c.proto, p, ok, c.port, c.ok)
		}
	}
	if p, ok := r.LastPort(); p != 60179 || !ok {
		t.Errorf("LastPort = %d, %v", p, ok)
	}
	if _, err := NewServicesResolver(path + ".missing"); err == nil {
		t.Error("missing file: no error")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
