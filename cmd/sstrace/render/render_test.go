package render

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"sstrace/cmd/sstrace/internal/goldentest"
	"sstrace/snapshot"
)

// golden compares got with testdata/name.golden (-update rewrites it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Check(t, name, got)
}

var lineDiff = goldentest.LineDiff

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Fixed lookups so that golden output does not depend on the machine.
func fakeOpts(o Options) Options {
	o.IfName = func(i uint32) string { return fmt.Sprintf("eth%d", i) }
	o.CgroupPath = func(id uint64) string {
		if id == 1 {
			return "/"
		}
		return fmt.Sprintf("/system.slice/unit%d.service", id)
	}
	o.HostName = func(a netip.Addr) (string, bool) {
		switch a.Unmap().String() {
		case "127.0.0.1":
			return "localhost", true
		case "::1":
			return "ip6-localhost", true
		case "fe80::1":
			return "fe80::1%lo", true
		}
		return "", false
	}
	return o
}

func tcpSockets() []snapshot.Socket {
	return []snapshot.Socket{
		{Family: afInet, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateListen, SendQ: 4096,
			Local: ap("0.0.0.0:22"), Peer: ap("0.0.0.0:0"), Inode: 1001, Cookie: 0x1, CgroupID: 1, HasShutdown: true},
		{Family: afInet, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateListen, SendQ: 128,
			Local: ap("127.0.0.1:631"), Peer: ap("0.0.0.0:0"), Inode: 1002, Cookie: 0x2, UID: 1000, Mark: 0x2a, CgroupID: 7, HasShutdown: true},
		{Family: afInet, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateEstablished, RecvQ: 12, SendQ: 3,
			Local: ap("10.1.2.3:45678"), Peer: ap("93.184.216.34:443"), Iface: 2, Inode: 1003, Cookie: 0xdeadbeef,
			Timer: 1, Expires: 1234, Retrans: 2, HasShutdown: true, Shutdown: 1},
		{Family: afInet, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateTimeWait,
			Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:50000"), Cookie: 0x10, Timer: 3, Expires: 59876},
		{Family: afInet6, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateListen, SendQ: 4096,
			Local: ap("[::]:80"), Peer: ap("[::]:0"), Inode: 1004, Cookie: 0x3, HasV6Only: true, V6Only: false, HasShutdown: true},
		{Family: afInet6, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateListen, SendQ: 4096,
			Local: ap("[::]:8080"), Peer: ap("[::]:0"), Inode: 1005, Cookie: 0x4, HasV6Only: true, V6Only: true, HasShutdown: true, Shutdown: 3},
		{Family: afInet6, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateEstablished,
			Local: ap("[::ffff:127.0.0.1]:80"), Peer: ap("[::ffff:127.0.0.1]:51234"), Inode: 1006, Cookie: 0x5,
			HasV6Only: true, Timer: 2, Expires: 7199000, HasShutdown: true, Shutdown: 2},
		{Family: afInet6, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateSynSent, SendQ: 1,
			Local: ap("[2001:db8::1]:40000"), Peer: ap("[2001:db8:0:1::2]:22"), Inode: 1007, Cookie: 0x6,
			HasV6Only: true, Timer: 1, Expires: 61500, Retrans: 4, HasShutdown: true},
		{Family: afInet6, Type: sockStream, Protocol: ipprotoTCP, State: snapshot.StateCloseWait, RecvQ: 1,
			Local: ap("[fe80::1]:9000"), Peer: ap("[::1]:1234"), Iface: 1, Inode: 1008, Cookie: 0x7, HasV6Only: true, V6Only: true,
			Timer: 4, Expires: 500, HasShutdown: true, Shutdown: 1},
	}
}

func udpSockets() []snapshot.Socket {
	return []snapshot.Socket{
		{Family: afInet, Type: sockDgram, Protocol: ipprotoUDP, State: snapshot.StateClose,
			Local: ap("0.0.0.0:53"), Peer: ap("0.0.0.0:0"), Inode: 2001, Cookie: 0x11, HasShutdown: true},
		{Family: afInet, Type: sockDgram, Protocol: ipprotoUDP, State: snapshot.StateEstablished,
			Local: ap("127.0.0.1:40001"), Peer: ap("127.0.0.53:53"), Inode: 2002, Cookie: 0x12, HasShutdown: true},
		{Family: afInet6, Type: sockDgram, Protocol: ipprotoUDP, State: snapshot.StateClose,
			Local: ap("[::]:123"), Peer: ap("[::]:0"), Inode: 2003, Cookie: 0x13, HasV6Only: true, V6Only: true, HasShutdown: true},
	}
}

func unixSockets() []snapshot.Socket {
	return []snapshot.Socket{
		{Family: afUnix, Type: sockStream, State: snapshot.StateListen, SendQ: 4096,
			Path: "/run/dbus/system_bus_socket", Inode: 3001, VFSInode: 77, VFSDev: 25, HasShutdown: true},
		{Family: afUnix, Type: sockStream, State: snapshot.StateListen, RecvQ: 2, SendQ: 128,
			Path: "@/tmp/.X11-unix/X0", Inode: 3002, Icons: []uint32{3010, 3011}, HasShutdown: true},
		{Family: afUnix, Type: sockStream, State: snapshot.StateEstablished,
			Path: "/run/dbus/system_bus_socket", Inode: 3003, PeerInode: 3004, VFSInode: 77, VFSDev: 8<<20 | 1, HasShutdown: true},
		{Family: afUnix, Type: sockStream, State: snapshot.StateEstablished,
			Inode: 3004, PeerInode: 3003, HasShutdown: true, Shutdown: 2},
		{Family: afUnix, Type: sockDgram, State: snapshot.StateClose,
			Path: "/run/systemd/journal/dev-log", Inode: 3005, VFSInode: 88, VFSDev: 25, HasShutdown: true},
		{Family: afUnix, Type: sockDgram, State: snapshot.StateEstablished,
			Inode: 3006, PeerInode: 3005, HasShutdown: true},
		{Family: afUnix, Type: sockSeqpacket, State: snapshot.StateEstablished,
			Path: "@abstract@with@nuls", Inode: 3007, PeerInode: 3008, HasShutdown: true},
		{Family: afUnix, Type: sockSeqpacket, State: snapshot.StateEstablished,
			Inode: 3008, PeerInode: 3007, HasShutdown: true},
		{Family: afUnix, Type: sockStream, State: snapshot.StateEstablished,
			Inode: 3_000_000_000, PeerInode: 3009, HasShutdown: true}, // ss prints inodes as %d
	}
}

func withOwners(socks []snapshot.Socket) []snapshot.Socket {
	out := append([]snapshot.Socket(nil), socks...)
	for i := range out {
		switch i % 3 {
		case 0:
			out[i].Owners = []snapshot.Owner{{PID: 812, FD: 3, Comm: "sshd"}}
		case 1:
			out[i].Owners = []snapshot.Owner{{PID: 1201, FD: 12, Comm: "nginx"}, {PID: 1200, FD: 12, Comm: "nginx"}, {PID: 1, FD: 40, Comm: "systemd"}}
		}
	}
	return out
}

func testServices(t testing.TB) *Services {
	svc, err := ParseServices(strings.NewReader(`
ssh		22/tcp
domain		53/tcp
domain		53/udp
http		80/tcp		www
ntp		123/udp
https		443/tcp
ipp		631/tcp
http-alt	8080/tcp	webcache
cslistener	9000/tcp
`))
	if err != nil {
		t.Fatal(err)
	}
	svc.EphemeralMin, svc.EphemeralMax = 32768, 60999
	return svc
}

func render(t *testing.T, socks []snapshot.Socket, opt Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Table(&b, socks, fakeOpts(opt)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	all := append(append(unixSockets(), udpSockets()...), tcpSockets()...)
	svc := testServices(t)
	cases := []struct {
		name  string
		socks []snapshot.Socket
		opt   Options
	}{
		{"tcp_numeric", tcpSockets(), Options{ShowState: true, Header: true, Numeric: true}},
		{"tcp_services", tcpSockets(), Options{ShowState: true, Header: true, Services: svc}},
		{"tcp_resolve", tcpSockets(), Options{ShowState: true, Header: true, Resolve: true, Services: svc}},
		{"tcp_no_header", tcpSockets(), Options{ShowState: true, Numeric: true}},
		{"tcp_no_state", tcpSockets()[:2], Options{Header: true, Numeric: true}},
		{"tcp_no_state_no_header", tcpSockets()[:2], Options{Numeric: true}},
		{"tcp_extended", tcpSockets(), Options{ShowState: true, Header: true, Numeric: true, Options: true, Extended: true}},
		{"tcp_timers", tcpSockets(), Options{ShowState: true, Header: true, Numeric: true, Options: true}},
		{"tcp_processes", withOwners(tcpSockets()), Options{ShowState: true, Header: true, Numeric: true, Processes: true}},
		{"tcp_all_details", withOwners(tcpSockets()), Options{ShowState: true, Header: true, Numeric: true, Processes: true, Options: true, Extended: true}},
		{"udp", udpSockets(), Options{ShowState: true, Header: true, Services: svc}},
		{"unix", unixSockets(), Options{ShowNetid: true, ShowState: true, Header: true}},
		{"unix_extended", unixSockets(), Options{ShowNetid: true, ShowState: true, Header: true, Options: true, Extended: true}},
		{"unix_processes", withOwners(unixSockets()), Options{ShowNetid: true, ShowState: true, Header: true, Processes: true}},
		{"all_netid_state", all, Options{ShowNetid: true, ShowState: true, Header: true, Numeric: true}},
		{"all_netid_only", all, Options{ShowNetid: true, Header: true, Numeric: true}},
		{"all_none", all, Options{Numeric: true}},
		{"header_only", nil, Options{ShowNetid: true, ShowState: true, Header: true}},
		{"empty", nil, Options{ShowNetid: true, ShowState: true}},
		{"tty80", all, Options{ShowNetid: true, ShowState: true, Header: true, Numeric: true, ScreenWidth: 80}},
		{"tty80_extended", withOwners(all), Options{ShowNetid: true, ShowState: true, Header: true, Numeric: true, Processes: true, Options: true, Extended: true, ScreenWidth: 80}},
		{"tty200", all, Options{ShowNetid: true, ShowState: true, Header: true, Numeric: true, ScreenWidth: 200}},
		{"tty200_extended", withOwners(all), Options{ShowNetid: true, ShowState: true, Header: true, Numeric: true, Processes: true, Options: true, Extended: true, ScreenWidth: 200}},
		{"tty40_no_header", tcpSockets(), Options{ShowState: true, Numeric: true, ScreenWidth: 40}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			golden(t, c.name, render(t, c.socks, c.opt))
		})
	}
}

func TestGoldenJSON(t *testing.T) {
	all := append(append(withOwners(unixSockets()), udpSockets()...), withOwners(tcpSockets())...)
	for i := range all {
		all[i].NetNS = 4026531840
	}
	cases := []struct {
		name string
		opt  Options
	}{
		{"json_numeric", Options{Numeric: true}},
		{"json_names", Options{Services: testServices(t), Resolve: true, Extended: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := JSON(&b, all, fakeOpts(c.opt)); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
		})
	}
}
