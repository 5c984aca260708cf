package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// otherFixture is the set of netlink, packet, raw and MPTCP sockets the root
// tests open inside their namespace.
type otherFixture struct {
	ns *nstest.NS

	// Netlink: a route socket bound with groups, a generic one, and a
	// route socket connected to group 1.
	nlRoute, nlGeneric, nlConnected        uint32 // inodes
	nlRoutePort, nlGenericPort, nlConnPort int32
	nlRouteGroups                          uint64

	// Packet: SOCK_RAW (TPACKET_V2, an rx ring, a filter) unbound, and
	// SOCK_DGRAM bound to lo (with a fanout group).
	pktRaw, pktDgram uint32
	loIndex          uint32

	// Raw: ICMP v4, ICMPv6 v6, and a v4 one (protocol 17) connected to
	// 127.0.0.1.
	raw4, raw6, raw4conn uint32

	// MPTCP: a listener, a client and the accepted server side; noMPTCP
	// says why there are none (the kernel could not confirm MPTCP).
	mpListener, mpClient, mpServer uint32
	mpListenAddr                   netip.AddrPort
	noMPTCP                        string
}

func sockoptInt(fd, level, opt, v int) error { return unix.SetsockoptInt(fd, level, opt, v) }

func newOtherFixture(t *testing.T) *otherFixture {
	ns := nstest.New(t)
	f := &otherFixture{ns: ns}
	var closers []func() error
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
	})
	keep := func(c interface{ Close() error }) { closers = append(closers, c.Close) }
	socket := func(domain, typ, proto int) (int, error) {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return -1, fmt.Errorf("socket(%d, %d, %d): %w", domain, typ, proto, err)
		}
		closers = append(closers, func() error { return unix.Close(fd) })
		return fd, nil
	}
	nlPort := func(fd int) int32 {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			t.Errorf("getsockname: %v", err)
			return 0
		}
		return int32(sa.(*unix.SockaddrNetlink).Pid)
	}

	err := ns.Do(func() error {
		// Netlink. Only bound sockets are hashed, and so listed.
		fd, err := socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		f.nlRouteGroups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: uint32(f.nlRouteGroups)}); err != nil {
			return fmt.Errorf("binding route socket: %w", err)
		}
		f.nlRoute, f.nlRoutePort = fdInode(t, fd), nlPort(fd)

		fd, err = socket(unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_GENERIC)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("binding generic socket: %w", err)
		}
		f.nlGeneric, f.nlGenericPort = fdInode(t, fd), nlPort(fd)

		fd, err = socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
			return fmt.Errorf("connecting route socket: %w", err)
		}
		f.nlConnected, f.nlConnPort = fdInode(t, fd), nlPort(fd)

		// Packet.
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		f.loIndex = uint32(lo.Index)
		fd, err = socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := sockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
			return fmt.Errorf("PACKET_VERSION: %w", err)
		}
		ring := unix.TpacketReq{Block_size: 4096, Block_nr: 1, Frame_size: 2048, Frame_nr: 2}
		if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &ring); err != nil {
			return fmt.Errorf("PACKET_RX_RING: %w", err)
		}
		prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: 1, Filter: &prog[0]}); err != nil {
			return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
		}
		f.pktRaw = fdInode(t, fd)

		fd, err = socket(unix.AF_PACKET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
			return fmt.Errorf("binding packet socket: %w", err)
		}
		if err := sockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, 42|unix.PACKET_FANOUT_LB<<16); err != nil {
			return fmt.Errorf("PACKET_FANOUT: %w", err)
		}
		f.pktDgram = fdInode(t, fd)

		// Raw.
		fd, err = socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		f.raw4 = fdInode(t, fd)
		fd, err = socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
		if err != nil {
			return err
		}
		f.raw6 = fdInode(t, fd)
		fd, err = socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return fmt.Errorf("connecting raw socket: %w", err)
		}
		f.raw4conn = fdInode(t, fd)

		// MPTCP: Go listeners are MPTCP by default (Go 1.24); say so
		// anyway, and dial with MPTCP.
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		keep(ln)
		f.mpListener, f.mpListenAddr, _ = connInfo(t, ln.(*net.TCPListener))
		var d net.Dialer
		d.SetMultipathTCP(true)
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		keep(c)
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		keep(s)
		for _, c := range []net.Conn{c, s} {
			if ok, err := c.(*net.TCPConn).MultipathTCP(); !ok || err != nil {
				// Go asks MPTCP_INFO (5.16+): an older kernel cannot say,
				// and 5.10's Debian build has no mptcp_diag to list them.
				// ss lists none there either; the MPTCP test skips.
				f.noMPTCP = fmt.Sprintf("connection %v -> %v is not MPTCP as far as Go can tell (%v)", c.LocalAddr(), c.RemoteAddr(), err)
				return nil
			}
		}
		f.mpClient, _, _ = connInfo(t, c.(*net.TCPConn))
		f.mpServer, _, _ = connInfo(t, s.(*net.TCPConn))
		return nil
	})
	if err != nil {
		t.Fatalf("opening sockets in the namespace: %v", err)
	}
	return f
}

// listIn runs List inside the namespace.
func listIn(t *testing.T, ns *nstest.NS, req ListRequest) []Socket {
	t.Helper()
	var out []Socket
	if err := ns.Do(func() (err error) {
		out, err = List(req)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

const statesSS = 0xfff // what ss -a asks

func TestListNetlinkRoot(t *testing.T) {
	f := newOtherFixture(t)
	socks := listIn(t, f.ns, ListRequest{Netlink: true, States: statesSS})
	got := byInode(socks)
	for _, s := range socks {
		if s.Family != unix.AF_NETLINK || s.State != StateClose || s.NetNS != f.ns.Inode() || s.Cookie == 0 {
			t.Errorf("netlink row %+v", s)
		}
		if s.MemInfo == nil || len(s.MemInfo) < unix.SK_MEMINFO_VARS {
			t.Errorf("netlink row without meminfo: %+v", s)
		}
	}
	for _, w := range []struct {
		name   string
		inode  uint32
		typ    uint8
		proto  uint16
		port   int32
		state  uint8
		groups uint64
		dstGrp uint32
	}{
		// Never connected: sk_state is still sock_init_data's TCP_CLOSE.
		{"route", f.nlRoute, unix.SOCK_RAW, unix.NETLINK_ROUTE, f.nlRoutePort, StateClose, f.nlRouteGroups, 0},
		{"generic", f.nlGeneric, unix.SOCK_DGRAM, unix.NETLINK_GENERIC, f.nlGenericPort, StateClose, 0, 0},
		{"connected", f.nlConnected, unix.SOCK_RAW, unix.NETLINK_ROUTE, f.nlConnPort, NetlinkConnected, 0, 1},
	} {
		s, ok := got[w.inode]
		if !ok {
			t.Errorf("%s netlink socket (inode %d) not listed", w.name, w.inode)
			continue
		}
		if s.Type != w.typ || s.Protocol != w.proto || s.NetlinkPortID != w.port || s.NetlinkState != w.state ||
			s.NetlinkGroups != w.groups || s.NetlinkDstGroup != w.dstGrp || s.NetlinkDstPortID != 0 {
			t.Errorf("%s: got type %d proto %d port %d state %d groups %#x dst %d:%d, want %d %d %d %d %#x %d:0", w.name,
				s.Type, s.Protocol, s.NetlinkPortID, s.NetlinkState, s.NetlinkGroups, s.NetlinkDstGroup, s.NetlinkDstPortID,
				w.typ, w.proto, w.port, w.state, w.groups, w.dstGrp)
		}
	}
	// The kernel lists a socket subscribed to groups twice (from its hash
	// table, then from the protocol's multicast listeners), and ss so
	// prints it: keep it so.
	rows := map[uint32]int{}
	for _, s := range socks {
		rows[s.Inode]++
	}
	if rows[f.nlRoute] != 2 || rows[f.nlGeneric] != 1 || rows[f.nlConnected] != 1 {
		t.Errorf("rows of the route, generic, connected sockets: %d %d %d, want 2 1 1",
			rows[f.nlRoute], rows[f.nlGeneric], rows[f.nlConnected])
	}
	// The kernel's own sockets: one per protocol the namespace has, port 0.
	kernel := map[uint16]bool{}
	for _, s := range socks {
		if s.NetlinkPortID == 0 {
			kernel[s.Protocol] = true
		}
	}
	for _, p := range []uint16{unix.NETLINK_ROUTE, unix.NETLINK_SOCK_DIAG, unix.NETLINK_GENERIC} {
		if !kernel[p] {
			t.Errorf("no kernel socket of netlink protocol %d", p)
		}
	}

	// ss -A netlink -a lists the same sockets but its own sock_diag socket
	// instead of ours: compare protocol:port, one sock_diag user socket on
	// each side aside.
	out, err := f.ns.Output("ss", "-HnaA", "netlink")
	if err != nil {
		t.Fatal(err)
	}
	ssRows := map[string]int{}
	ssDiag := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fs := strings.Fields(l)
		if len(fs) != 5 || fs[0] != "UNCONN" || fs[4] != "*" && !strings.Contains(fs[4], ":") {
			t.Fatalf("ss line %q", l)
		}
		if strings.HasPrefix(fs[3], "4:") && fs[3] != "4:0" { // -n: NETLINK_SOCK_DIAG
			ssDiag++
			continue
		}
		ssRows[strings.Join(fs, " ")]++
	}
	ours := map[string]int{}
	ourDiag := 0
	for _, s := range socks {
		if s.Protocol == unix.NETLINK_SOCK_DIAG && s.NetlinkPortID != 0 {
			ourDiag++
			continue
		}
		ours[ssNetlinkLine(s)]++
	}
	if ssDiag != 1 || ourDiag != 1 {
		t.Errorf("sock_diag user sockets: ss lists %d, we list %d; want 1 each", ssDiag, ourDiag)
	}
	if fmt.Sprint(ssRows) != fmt.Sprint(ours) {
		t.Errorf("ss -A netlink -a lists\n%v\nwe list\n%v\nss output:\n%s", ssRows, ours, out)
	}
}

// ssNetlinkLine is the line ss -Hn prints for a netlink socket (fields
// joined by one space): -n prints protocols and port ids as numbers.
func ssNetlinkLine(s Socket) string {
	peer := "*"
	if s.NetlinkState == NetlinkConnected {
		peer = fmt.Sprintf("%d:%d", s.NetlinkDstGroup, int32(s.NetlinkDstPortID))
	}
	return fmt.Sprintf("UNCONN %d %d %d:%d %s", int32(s.RecvQ), int32(s.SendQ), s.Protocol, s.NetlinkPortID, peer)
}

func TestListPacketRoot(t *testing.T) {
	f := newOtherFixture(t)
	socks := listIn(t, f.ns, ListRequest{Packet: true, States: statesSS})
	if len(socks) != 2 {
		t.Errorf("%d packet sockets, want 2: %+v", len(socks), socks)
	}
	got := byInode(socks)
	raw, ok := got[f.pktRaw]
	if !ok {
		t.Fatalf("raw packet socket %d not listed: %+v", f.pktRaw, socks)
	}
	dgram, ok := got[f.pktDgram]
	if !ok {
		t.Fatalf("dgram packet socket %d not listed: %+v", f.pktDgram, socks)
	}
	for _, s := range socks {
		if s.Family != unix.AF_PACKET || s.State != StateClose || s.NetNS != f.ns.Inode() || s.Cookie == 0 ||
			s.UID != 0 || s.MemInfo == nil || !s.HasPacketInfo {
			t.Errorf("packet row %+v", s)
		}
	}
	if raw.Type != unix.SOCK_RAW || raw.Protocol != unix.ETH_P_ALL || raw.Iface != 0 ||
		raw.PacketVersion != unix.TPACKET_V2 || raw.PacketFlags&1 == 0 /* PDI_RUNNING */ {
		t.Errorf("raw packet socket: %+v", raw)
	}
	if want := []uint32{4096, 1, 2048, 2, 0, 0, 0}; fmt.Sprint(raw.PacketRxRing) != fmt.Sprint(want) || raw.PacketTxRing != nil {
		t.Errorf("raw packet socket rings: rx %v tx %v, want rx %v", raw.PacketRxRing, raw.PacketTxRing, want)
	}
	if len(raw.PacketFilter) != 8 || raw.PacketFilter[0] != unix.BPF_RET|unix.BPF_K {
		t.Errorf("raw packet socket filter % x", raw.PacketFilter)
	}
	if raw.HasPacketFanout {
		t.Errorf("raw packet socket has a fanout: %#x", raw.PacketFanout)
	}
	if dgram.Type != unix.SOCK_DGRAM || dgram.Protocol != unix.ETH_P_ALL || dgram.Iface != f.loIndex ||
		dgram.PacketVersion != unix.TPACKET_V1 || !dgram.HasPacketFanout || dgram.PacketFanout != 42|unix.PACKET_FANOUT_LB<<16 ||
		dgram.PacketFilter != nil || dgram.PacketRxRing != nil {
		t.Errorf("dgram packet socket: %+v", dgram)
	}

	// ss -0 -a (and -A packet_raw, which lists both types all the same).
	want := map[uint32]bool{f.pktRaw: true, f.pktDgram: true}
	compareSS(t, f.ns, []string{"-HaneO0"}, inoField, want)
	compareSS(t, f.ns, []string{"-HaneOA", "packet_raw"}, inoField, want)
	out, err := f.ns.Output("ss", "-Hna0")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fs := strings.Fields(l)
		// "p_dgr UNCONN 3332 0 *:lo *": ETH_P_ALL is "*", the device the
		// port.
		if len(fs) != 6 || fs[1] != "UNCONN" || fs[4] != "*:"+map[bool]string{true: "lo", false: "*"}[fs[0] == "p_dgr"] {
			t.Errorf("ss line %q", l)
		}
	}
}

func TestListRawRoot(t *testing.T) {
	f := newOtherFixture(t)
	// Does this kernel have raw_diag? ss and List fall back to /proc
	// without it.
	var diagErr error
	f.ns.Do(func() error {
		_, diagErr = Dump(DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_RAW})
		return nil
	})
	if diagErr != nil && !(isKernelError(diagErr) && errors.Is(diagErr, unix.ENOENT)) {
		t.Fatalf("raw_diag dump: %v", diagErr)
	}
	viaProc := diagErr != nil
	t.Logf("raw_diag available: %v", !viaProc)

	req := ListRequest{RawInet: true, RawFamilies: []uint8{unix.AF_INET, unix.AF_INET6},
		RawProcFamilies: []uint8{unix.AF_INET, unix.AF_INET6}, States: statesSS}
	socks := listIn(t, f.ns, req)
	got := byInode(socks)
	if len(socks) != 3 {
		t.Errorf("%d raw sockets, want 3: %+v", len(socks), socks)
	}
	lo4 := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	for _, w := range []struct {
		name        string
		inode       uint32
		family      uint8
		proto       uint16
		state       uint8
		local, peer netip.AddrPort
	}{
		{"icmp", f.raw4, unix.AF_INET, unix.IPPROTO_ICMP, StateClose,
			netip.AddrPortFrom(netip.IPv4Unspecified(), unix.IPPROTO_ICMP), netip.AddrPortFrom(netip.IPv4Unspecified(), 0)},
		{"icmpv6", f.raw6, unix.AF_INET6, unix.IPPROTO_ICMPV6, StateClose,
			netip.AddrPortFrom(netip.IPv6Unspecified(), unix.IPPROTO_ICMPV6), netip.AddrPortFrom(netip.IPv6Unspecified(), 0)},
		{"connected", f.raw4conn, unix.AF_INET, unix.IPPROTO_UDP, StateEstablished,
			netip.AddrPortFrom(lo4, unix.IPPROTO_UDP), netip.AddrPortFrom(lo4, 0)},
	} {
		s, ok := got[w.inode]
		if !ok {
			t.Errorf("%s raw socket (inode %d) not listed", w.name, w.inode)
			continue
		}
		wantProto := w.proto // sock_diag: INET_DIAG_PROTOCOL
		if viaProc {
			wantProto = 0 // ss's type for /proc rows
		}
		if s.Family != w.family || s.Type != unix.SOCK_RAW || s.Protocol != wantProto || s.State != w.state ||
			s.Local != w.local || s.Peer != w.peer || s.NetNS != f.ns.Inode() || s.UID != 0 {
			t.Errorf("%s: got %+v\nwant family %d protocol %d state %d %v -> %v", w.name, s, w.family, wantProto, w.state, w.local, w.peer)
		}
	}
	// States are kept as asked.
	est := listIn(t, f.ns, ListRequest{RawInet: true, RawFamilies: req.RawFamilies, RawProcFamilies: req.RawProcFamilies,
		States: 1 << StateEstablished})
	// raw_diag ignores the states asked (its lookup checks protocol,
	// addresses and device only), and ss does not filter its rows again:
	// both list every raw socket then. /proc rows are filtered by state.
	if viaProc && (len(est) != 1 || est[0].Inode != f.raw4conn) || !viaProc && len(est) != 3 {
		t.Errorf("established raw sockets (raw_diag %v): %+v", !viaProc, est)
	}
	// Only the files asked for.
	v6 := listIn(t, f.ns, ListRequest{RawInet: true, RawFamilies: []uint8{unix.AF_INET6}, RawProcFamilies: []uint8{unix.AF_INET6},
		States: statesSS})
	if len(v6) != 1 || v6[0].Inode != f.raw6 {
		t.Errorf("IPv6 raw sockets: %+v", v6)
	}

	// ss -w -a: without raw_diag ss prints no ino: for these rows, so
	// compare what it prints of them.
	out, err := f.ns.Output("ss", "-Hnaw")
	if err != nil {
		t.Fatal(err)
	}
	var ssLines, ours []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ssLines = append(ssLines, strings.Join(strings.Fields(l), " "))
	}
	for _, s := range socks {
		ours = append(ours, ssRawLine(s))
	}
	sort.Strings(ssLines)
	sort.Strings(ours)
	if strings.Join(ssLines, "\n") != strings.Join(ours, "\n") {
		t.Errorf("ss -w -a lists\n%s\nwe list\n%s", strings.Join(ssLines, "\n"), strings.Join(ours, "\n"))
	}
}

// ssRawLine is what ss -Hn prints for a raw socket from /proc (fields joined
// by one space).
func ssRawLine(s Socket) string {
	addr := func(ap netip.AddrPort) string {
		port := "*"
		if ap.Port() != 0 {
			port = strconv.Itoa(int(ap.Port()))
		}
		a := ap.Addr()
		switch {
		case a.Is6() && a.IsUnspecified():
			return "*:" + port
		case a.Is6():
			return "[" + a.String() + "]:" + port
		}
		return a.String() + ":" + port
	}
	state := map[uint8]string{StateClose: "UNCONN", StateEstablished: "ESTAB"}[s.State]
	return fmt.Sprintf("%s %d %d %s %s", state, s.RecvQ, s.SendQ, addr(s.Local), addr(s.Peer))
}

func TestListMPTCPRoot(t *testing.T) {
	f := newOtherFixture(t)
	if f.noMPTCP != "" {
		t.Skip(f.noMPTCP)
	}
	req := ListRequest{Inet: []InetDump{{unix.AF_INET, unix.IPPROTO_MPTCP}, {unix.AF_INET6, unix.IPPROTO_MPTCP}}, States: statesSS}
	socks := listIn(t, f.ns, req)
	got := byInode(socks)
	if len(socks) != 3 {
		t.Errorf("%d MPTCP sockets, want 3: %+v", len(socks), socks)
	}
	for _, w := range []struct {
		name  string
		inode uint32
		state uint8
	}{
		{"listener", f.mpListener, StateListen},
		{"client", f.mpClient, StateEstablished},
		{"server", f.mpServer, StateEstablished},
	} {
		s, ok := got[w.inode]
		if !ok {
			t.Errorf("MPTCP %s (inode %d) not listed", w.name, w.inode)
			continue
		}
		if s.Family != unix.AF_INET || s.Type != unix.SOCK_STREAM || s.Protocol != unix.IPPROTO_MPTCP ||
			s.State != w.state || s.NetNS != f.ns.Inode() || s.Cookie == 0 {
			t.Errorf("MPTCP %s: %+v", w.name, s)
		}
		if w.name == "listener" && s.Local != f.mpListenAddr {
			t.Errorf("MPTCP listener at %v, want %v", s.Local, f.mpListenAddr)
		}
	}
	// The dump asked the kernel for MPTCP (262 in INET_DIAG_REQ_PROTOCOL),
	// not TCP, which its low byte is: the TCP subflows of these sockets
	// (the listener's and one per connection end) are in the TCP dump
	// only.
	tcp := listIn(t, f.ns, ListRequest{Inet: []InetDump{{unix.AF_INET, unix.IPPROTO_TCP}}, States: statesSS})
	if len(tcp) < 3 {
		t.Errorf("%d TCP subflows", len(tcp))
	}
	for _, s := range tcp {
		if s.Protocol != unix.IPPROTO_TCP {
			t.Errorf("TCP dump row %+v", s)
		}
	}
	compareSS(t, f.ns, []string{"-HaneM"}, inoField, map[uint32]bool{f.mpListener: true, f.mpClient: true, f.mpServer: true})
}

// TestListOrderRoot lists every table at once: ss's order, and the same row
// count as ss -a for each table.
func TestListOrderRoot(t *testing.T) {
	f := newOtherFixture(t)
	req := ListRequest{
		Netlink: true, Packet: true,
		Unix: true, UnixTypes: 1<<unix.SOCK_STREAM | 1<<unix.SOCK_DGRAM | 1<<unix.SOCK_SEQPACKET,
		RawInet: true, RawFamilies: []uint8{unix.AF_INET, unix.AF_INET6}, RawProcFamilies: []uint8{unix.AF_INET, unix.AF_INET6},
		Inet: []InetDump{
			{unix.AF_INET, unix.IPPROTO_UDP}, {unix.AF_INET6, unix.IPPROTO_UDP},
			{unix.AF_INET, unix.IPPROTO_TCP}, {unix.AF_INET6, unix.IPPROTO_TCP},
			{unix.AF_INET, unix.IPPROTO_MPTCP}, {unix.AF_INET6, unix.IPPROTO_MPTCP},
		},
		States: statesSS,
	}
	socks := listIn(t, f.ns, req)
	netid := func(s Socket) string {
		switch s.Family {
		case unix.AF_NETLINK:
			return "nl"
		case unix.AF_PACKET:
			return map[uint8]string{unix.SOCK_RAW: "p_raw", unix.SOCK_DGRAM: "p_dgr"}[s.Type]
		case unix.AF_UNIX:
			return map[uint8]string{unix.SOCK_STREAM: "u_str", unix.SOCK_DGRAM: "u_dgr", unix.SOCK_SEQPACKET: "u_seq"}[s.Type]
		}
		names := map[uint16]string{unix.IPPROTO_UDP: "udp", unix.IPPROTO_TCP: "tcp", unix.IPPROTO_MPTCP: "mptcp"}
		if s.Type == unix.SOCK_RAW {
			// ss names a raw socket after its protocol: "raw" for /proc
			// rows (0), "udp" for a raw IPPROTO_UDP one from raw_diag,
			// "icmp6", else "???".
			names[0], names[unix.IPPROTO_ICMPV6] = "raw", "icmp6"
			if n, ok := names[s.Protocol]; ok {
				return n
			}
			return "???"
		}
		return names[s.Protocol]
	}
	table := func(s Socket) string {
		if s.Type == unix.SOCK_RAW && (s.Family == unix.AF_INET || s.Family == unix.AF_INET6) {
			return "raw"
		}
		return netid(s)
	}
	rank := map[string]int{"nl": 0, "p_raw": 1, "p_dgr": 1, "u_str": 2, "u_dgr": 2, "u_seq": 2, "raw": 3, "udp": 4, "tcp": 5, "mptcp": 6}
	count := map[string]int{}
	last := -1
	for _, s := range socks {
		id := table(s)
		r, ok := rank[id]
		if !ok {
			t.Fatalf("unexpected row %+v", s)
		}
		if r < last {
			t.Errorf("%s row after a later table: %+v", id, s)
		}
		last = r
		count[netid(s)]++
	}
	out, err := f.ns.Output("ss", "-Hna")
	if err != nil {
		t.Fatal(err)
	}
	ssCount := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ssCount[strings.Fields(l)[0]]++
	}
	if fmt.Sprint(ssCount) != fmt.Sprint(count) {
		t.Errorf("ss -a rows per table %v, ours %v\n%s", ssCount, count, out)
	}
}
