package filter

import (
	"net/netip"
	"strings"
	"testing"

	"sstrace/snapshot"
)

func tcp(local, peer string) *snapshot.Socket {
	l, p := netip.MustParseAddrPort(local), netip.MustParseAddrPort(peer)
	fam := uint8(AFInet)
	if l.Addr().Is6() {
		fam = AFInet6
	}
	return &snapshot.Socket{Family: fam, Type: 1, Protocol: 6, State: snapshot.StateEstablished, Local: l, Peer: p}
}

func unixSock(path string, inode, peer uint32) *snapshot.Socket {
	return &snapshot.Socket{Family: AFUnix, Type: 1, State: snapshot.StateEstablished, Path: path, Inode: inode, PeerInode: peer}
}

// Sockets the evaluation tests use, by name.
var evalSocks = map[string]*snapshot.Socket{
	"v4ssh":   tcp("127.0.0.1:22", "127.0.0.1:40000"),
	"v4cli":   tcp("127.0.0.1:40000", "127.0.0.1:22"),
	"v4smtp":  tcp("127.0.0.2:25", "10.1.2.3:5555"),
	"v4http":  tcp("192.168.1.7:80", "192.168.2.9:1234"),
	"v4lst":   tcp("0.0.0.0:443", "0.0.0.0:0"),
	"v6lo":    tcp("[::1]:443", "[::1]:50000"),
	"v6any":   tcp("[::]:8080", "[::]:0"),
	"v6doc":   tcp("[2001:db8::1]:22", "[2001:db8::9]:6000"),
	"mapped":  tcp("[::ffff:127.0.0.1]:8080", "[::ffff:127.0.0.5]:38688"),
	"v4dev":   {Family: AFInet, Local: netip.MustParseAddrPort("10.0.0.1:53"), Peer: netip.MustParseAddrPort("0.0.0.0:0"), Iface: 2, Mark: 0x1234, CgroupID: 4242},
	"unamed":  unixSock("", 100, 101),
	"upath":   unixSock("/tmp/x/a.sock", 102, 0),
	"upath2":  unixSock("/tmp/x/sub/B.sock", 103, 0),
	"uabs":    unixSock("@/tmp/.X11-unix/X0", 104, 0),
	"uauto":   unixSock("@0001f", 105, 0),
	"nlroute": {Family: AFNetlink, Protocol: 0, NetlinkPortID: 0},
	"nldiag":  {Family: AFNetlink, Protocol: 4, NetlinkPortID: 4711},
	"nlauto":  {Family: AFNetlink, Protocol: 16, NetlinkPortID: -4096},
	"pkip":    {Family: AFPacket, Protocol: 0x0800, Iface: 1},
	"pkall":   {Family: AFPacket, Protocol: 3},
	"pk0":     {Family: AFPacket, Protocol: 0},
}

func TestEval(t *testing.T) {
	for _, c := range []struct {
		filter string
		match  string // the names of the sockets that match, in any order
	}{
		// Ports.
		{"sport = :22", "v4ssh v6doc"},
		{"dport = :22", "v4cli"},
		{"sport = :ssh or dport = :ssh", "v4ssh v4cli v6doc"},
		{"sport != :22", "v4cli v4smtp v4http v4lst v6lo v6any mapped v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		{"sport > :1000", "v4cli v6any mapped nldiag"},
		{"sport \\> :1000", "v4cli v6any mapped nldiag"},
		{"sport >= :8080", "v4cli v6any mapped"},
		{"sport < :80", "v4ssh v4smtp v6doc v4dev nlroute nlauto pkip pkall pk0"},
		{"sport <= :80 and sport >= :25", "v4smtp v4http v4dev"},
		{"dport = :0", "v4lst v6any v4dev upath upath2 uabs uauto pkip pkall pk0"},
		{"dport = *", "v4ssh v4cli v4smtp v4http v4lst v6lo v6any v6doc mapped v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		// Unix sockets: the inode is the port, the peer's inode the remote one.
		{"sport = :102", "upath"},
		{"dport = :101", "unamed"},
		// The kernel reads ports as 16 bits: only ss's own test sees -5.
		{"sport >= :-5", "unamed upath upath2 uabs uauto nlroute nldiag pkip pkall pk0"},
		{"sport > :70000", ""},
		// Addresses.
		{"src 127.0.0.1", "v4ssh v4cli mapped"},
		{"dst 127.0.0.5", "mapped"},
		{"src 127.0.0.0/8", "v4ssh v4cli v4smtp mapped"},
		{"dst 127.125.236.178/16", ""},
		{"dst 127.0.236.178/16", "v4ssh v4cli mapped"},
		{"src 192.168.0.0/255.255.0.0", "v4http"},
		{"src 127.0.0.1:22", "v4ssh"},
		{"src [::1]", "v6lo"},
		{"src [::1]:443", "v6lo"},
		{"src 2001:db8::/32", "v6doc"},
		{"src [::ffff:127.0.0.1]", "mapped"},
		{"src [::ffff:0.0.0.0/96]", "mapped"},
		{"src *:22", "v4ssh v6doc"},
		{"not dst 127.0.0.1", "v4smtp v4http v4lst v6lo v6any v6doc mapped v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		{"src example", ""},
		{"src mapped", ""}, // a v4-mapped host address is an IPv4 rule
		// A family with a zero prefix: the kernel's family test.
		{"src 0.0.0.0/0", "v4ssh v4cli v4smtp v4http v4lst mapped v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		{"src ::/0", "v6lo v6any v6doc mapped unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		{"src default", "v4ssh v4cli v4smtp v4http v4lst v6lo v6any v6doc mapped v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		// ss's raw bit test: 0.0.0.0/8 is the zero first byte of anything.
		{"src 0.0.0.0/8", "v4lst unamed nlroute pkip pk0"},
		{"not src 0.0.0.0/8", "v4ssh v4cli v4smtp v4http v4dev v6doc upath upath2 uabs uauto nldiag nlauto pkall"},
		{"dst 0.0.0.0", "v4lst v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		// Unix names: fnmatch with FNM_CASEFOLD; dst always sees "".
		{"src unix:/tmp/x/*", "upath upath2"},
		{"src unix:/TMP/X/*.SOCK", "upath upath2"},
		{"src unix:/tmp/x/?.sock", "upath"},
		{"src unix:@*", "uabs uauto"},
		{"src unix:", "v4ssh v4cli v4smtp v4http v4lst v6lo v6any v6doc mapped v4dev unamed nlroute nldiag nlauto pkip pkall pk0"},
		{"src unix:*", "v4ssh v4cli v4smtp v4http v4lst v6lo v6any v6doc mapped v4dev unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		{"dst unix:/tmp/*", ""},
		// Netlink: the protocol is the address, the port id the port.
		{"src netlink:tcpdiag", "nldiag"},
		{"src netlink:rtnl", "v4lst v6any v6lo mapped unamed nlroute pk0"}, // no bytecode: raw bits only
		{"src netlink:*:kernel", "nlroute pkall pk0"},
		{"src netlink:4:4711", "nldiag"},
		{"dport < netlink::0", "nlroute nldiag nlauto"}, // netlink's remote port is -1
		// Packet: the protocol is the address, the device the port.
		{"src link:ip", "pkip"},
		{"src link:all", "pkall"},
		{"src link:*:lo", "pkip"},
		{"sport = link::1", "pkip"},
		// Devices, marks, cgroups.
		{"dev eth0", "v4dev"},
		{"dev lo", "pkip"},
		{"dev != 0", "v4dev pkip"},
		{"fwmark 0x1234", "v4dev"},
		{"fwmark 0x1000/0xf000", "v4dev"},
		{"fwmark != 0", "v4dev"},
		{"cgroup /system.slice", "v4dev"},
		{"cgroup != /system.slice", "v4ssh v4cli v4smtp v4http v4lst v6lo v6any v6doc mapped unamed upath upath2 uabs uauto nlroute nldiag nlauto pkip pkall pk0"},
		// autobound: inet ephemeral ports, unnamed or autobound unix
		// names, unbound packet sockets, negative netlink port ids.
		{"autobound", "v4cli unamed uauto nlauto pk0"},
		// Operators: one level, left to right.
		{"sport = :22 or sport = :25 and dport = :5555", "v4smtp"},
		{"sport = :22 or ( sport = :25 and dport = :5555 )", "v4ssh v4smtp v6doc"},
		{"src 127.0.0.1 dport = :22", "v4cli"},
		{"sport = :22 and ! dport = :40000", "v6doc"},
		{"! ( sport = :22 or sport = :25 ) and src 127.0.0.0/8", "v4cli mapped"},
		{"not not sport = :22", "v4ssh v6doc"},
	} {
		e, err := Parse([]string{c.filter}, tres)
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		want := map[string]bool{}
		for _, n := range strings.Fields(c.match) {
			if evalSocks[n] == nil {
				t.Fatalf("no socket %q", n)
			}
			want[n] = true
		}
		for name, s := range evalSocks {
			if got := Eval(e, s); got != want[name] {
				t.Errorf("%s on %s: %v, want %v", c.filter, name, got, want[name])
			}
		}
	}
}

func TestEvalNil(t *testing.T) {
	for _, s := range evalSocks {
		if !Eval(nil, s) {
			t.Fatal("nil Expr must match everything")
		}
	}
}

// TestEvalDevNoKernel: with a dev condition ss sends no bytecode, and
// only its own (raw bit) tests decide.
func TestEvalDevNoKernel(t *testing.T) {
	s := evalSocks["v6lo"] // ::1, whose first byte is 0
	if Eval(mustParse(t, "src 0.0.0.0/8"), s) {
		t.Error("src 0.0.0.0/8 matched ::1 with the kernel's family test")
	}
	if !Eval(mustParse(t, "src 0.0.0.0/8 and dev 0"), s) {
		t.Error("src 0.0.0.0/8 and dev 0: without bytecode, ::1 matches on raw bits")
	}
	// A host name with both families: the kernel refuses the bytecode.
	if !Eval(mustParse(t, "src dual"), tcp("[2001:db8::2]:1", "[::]:0")) || !Eval(mustParse(t, "src dual"), tcp("192.0.2.2:1", "0.0.0.0:0")) {
		t.Error("src dual: both addresses must match")
	}
	if !Eval(mustParse(t, "src example"), tcp("192.0.2.9:1", "0.0.0.0:0")) {
		t.Error("src example: every address of the name counts")
	}
}

func BenchmarkEval(b *testing.B) {
	e := mustParse(b, "( sport = :http or sport = :https or src unix:/run/*.sock ) and not dst 10.0.0.0/8 and dport > :1023")
	socks := make([]*snapshot.Socket, 0, len(evalSocks))
	for _, s := range evalSocks {
		socks = append(socks, s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		if Eval(e, socks[i%len(socks)]) {
			n++
		}
	}
	_ = n
}

func TestEvalAllocs(t *testing.T) {
	e := mustParse(t, "( sport = :http or src unix:/run/*.sock or src example or autobound ) and not dst 10.0.0.0/8 and dport > :1023 or fwmark 1 or dev lo")
	for name, s := range evalSocks {
		if a := testing.AllocsPerRun(100, func() { Eval(e, s) }); a != 0 {
			t.Errorf("Eval on %s: %v allocations", name, a)
		}
	}
}
