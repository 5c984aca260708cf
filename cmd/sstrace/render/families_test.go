package render

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"sstrace/snapshot"
)

// netlinkSockets are netlink sockets as netlink_diag reports them.
func netlinkSockets() []snapshot.Socket {
	nl := func(proto uint16, portid int32) snapshot.Socket {
		return snapshot.Socket{Family: afNetlink, Type: sockRaw, Protocol: proto, State: snapshot.StateClose,
			NetlinkPortID: portid, NetlinkState: 7, Inode: uint32(9000 + proto), Cookie: uint64(0x90 + proto),
			MemInfo: []uint32{0, 212992, 0, 212992, 0, 0, 0, 0, 0}}
	}
	kernel := nl(0, 0)
	kernel.Inode = 0
	grouped := nl(0, 1234)                // a live process: comm/pid
	grouped.NetlinkGroups = 0x1_0000_0011 // ss prints the low 32 bits
	autobound := nl(0, -928499645)
	autobound.NetlinkState = snapshot.NetlinkConnected // to the kernel
	diag := nl(4, 0)
	diag.RecvQ, diag.MemInfo[0] = 832, 832
	gone := nl(16, 4321) // no such process: the number
	star := nl(2, -1)    // "*"
	peer := nl(2, 1234)
	peer.NetlinkState, peer.NetlinkDstGroup, peer.NetlinkDstPortID = snapshot.NetlinkConnected, 3, 4242
	odd := nl(22, 0)  // NETLINK_SMC: no name in ss's table
	odd2 := nl(17, 0) // a hole in the table
	short := nl(9, 0)
	short.MemInfo = short.MemInfo[:7]
	return []snapshot.Socket{kernel, grouped, grouped, autobound, diag, gone, star, peer, odd, odd2, short}
}

// packetSockets are packet sockets as packet_diag reports them.
func packetSockets() []snapshot.Socket {
	pk := func(typ uint8, proto uint16, iface uint32) snapshot.Socket {
		return snapshot.Socket{Family: afPacket, Type: typ, Protocol: proto, State: snapshot.StateClose, Iface: iface,
			Inode: 10000 + uint32(proto), Cookie: 0xa0 + uint64(proto), HasPacketInfo: true, PacketFlags: pdiRunning,
			MemInfo: []uint32{1280, 212992, 0, 212992, 0, 0, 136, 0, 0}}
	}
	all := pk(sockRaw, ethPAll, 0)
	all.RecvQ = 1280
	all.Owners = []snapshot.Owner{{PID: 77, FD: 5, Comm: "tcpdump"}}
	all.PacketFilter = binary.NativeEndian.AppendUint16(nil, 0x28)
	all.PacketFilter = append(all.PacketFilter, 0, 0)
	all.PacketFilter = binary.NativeEndian.AppendUint32(all.PacketFilter, 12)
	all.PacketFilter = binary.NativeEndian.AppendUint16(all.PacketFilter, 0x15)
	all.PacketFilter = append(all.PacketFilter, 0, 1)
	all.PacketFilter = binary.NativeEndian.AppendUint32(all.PacketFilter, 0x800)
	ip := pk(sockDgram, 0x0800, 1)
	ip.UID, ip.PacketVersion, ip.PacketCopyThresh = 1000, 2, 64
	ip.PacketFlags = pdiRunning | pdiAuxdata | pdiOrigdev | pdiVnethdr | pdiLoss
	ip.PacketRxRing = []uint32{4096, 1, 2048, 2, 0, 0, 0}
	ip.PacketTxRing = []uint32{65536, 4, 2048, 128, 60, 0, 1}
	ip.HasPacketFanout, ip.PacketFanout = true, 7|3<<16
	v6 := pk(sockRaw, 0x86DD, 2)
	v6.PacketFlags = 0
	v6.HasPacketFanout, v6.PacketFanout = true, 1|0x8000<<16
	lldp := pk(sockRaw, 0x88cc, 3)
	lldp.HasPacketInfo = false
	unknown := pk(sockDgram, 0x1234, 0)
	unknown.HasPacketFanout, unknown.PacketFanout = true, 2|5<<16
	return []snapshot.Socket{all, ip, v6, lldp, unknown}
}

func familyOpts(o Options) Options {
	o = fakeOpts(o)
	o.ProcessName = func(pid int32) (string, bool) {
		if pid == 1234 {
			return "ip", true
		}
		return "", false
	}
	return o
}

func TestGoldenFamilies(t *testing.T) {
	all := append(append(netlinkSockets(), packetSockets()...), infoSockets()[10:16]...)
	base := Options{ShowNetid: true, ShowState: true, Header: true}
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	cases := []struct {
		name  string
		socks []snapshot.Socket
		opt   Options
	}{
		{"netlink", netlinkSockets(), with(func(o *Options) {})},
		{"netlink_numeric", netlinkSockets(), with(func(o *Options) { o.Numeric = true })},
		{"netlink_em", netlinkSockets(), with(func(o *Options) { o.Extended, o.Options, o.Memory, o.Processes = true, true, true, true })},
		{"packet", packetSockets(), with(func(o *Options) { o.Processes = true })},
		{"packet_numeric", packetSockets(), with(func(o *Options) { o.Numeric = true })},
		{"packet_embp", packetSockets(), with(func(o *Options) { o.Extended, o.Options, o.Memory, o.BPF, o.Processes = true, true, true, true, true })},
		{"packet_ebO", packetSockets(), with(func(o *Options) { o.Extended, o.Options, o.BPF, o.Oneline = true, true, true, true })},
		{"families_tty80", all, with(func(o *Options) { o.Numeric, o.ScreenWidth = true, 80 })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Table(&b, c.socks, familyOpts(c.opt)); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
		})
	}
}

func TestFamilyNames(t *testing.T) {
	for _, c := range []struct {
		s    snapshot.Socket
		want string
	}{
		{snapshot.Socket{Family: afNetlink}, "nl"},
		{snapshot.Socket{Family: afPacket, Type: sockRaw}, "p_raw"},
		{snapshot.Socket{Family: afPacket, Type: sockDgram}, "p_dgr"},
		{snapshot.Socket{Family: afInet, Type: sockStream, Protocol: ipprotoMPTCP}, "mptcp"},
		{snapshot.Socket{Family: afInet, Type: sockRaw, Protocol: 1}, "???"},
		{snapshot.Socket{Family: afInet6, Type: sockRaw, Protocol: ipprotoICMPv6}, "icmp6"},
		{snapshot.Socket{Family: afInet, Type: sockRaw, Protocol: 0}, "raw"},
	} {
		if got := Netid(&c.s); got != c.want {
			t.Errorf("Netid(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
	for proto, want := range map[uint16]string{0: "rtnl", 4: "tcpdiag", 15: "uevent", 16: "genl", 17: "", 21: "crypto", 22: "", 255: ""} {
		if got := NetlinkProtoName(proto); got != want {
			t.Errorf("NetlinkProtoName(%d) = %q, want %q", proto, got, want)
		}
	}
	for proto, want := range map[uint16]string{0x0800: "ip", 0x86DD: "ipv6", 3: "all", 0x8100: "802.1Q", 0x88cc: "LLDP", 0x88A8: "802.1ad", 0x1234: ""} {
		if got := EtherProtoName(proto); got != want {
			t.Errorf("EtherProtoName(%#x) = %q, want %q", proto, got, want)
		}
	}
}

// ss reads /proc/PID/stat with fscanf("%*d (%[^)])").
func TestScanStatComm(t *testing.T) {
	for in, want := range map[string]string{
		"1234 (ip) S 1 1234":        "ip",
		"1 (systemd) S 0":           "systemd",
		"77 (a b) R":                "a b",
		"77 (a)b) R":                "a",
		"  77 (x)":                  "x",
		"77(x)":                     "x",
		"77 (unterminated":          "unterminated",
		"77 () S":                   "",
		"(x) S":                     "",
		"77 x":                      "",
		"+77 (plus)":                "plus",
		"77 (new\nline) S 1 2 3 4 ": "new\nline",
	} {
		got, ok := scanStatComm([]byte(in))
		if got != want || ok != (want != "") {
			t.Errorf("scanStatComm(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	// This process, read from /proc.
	comm, ok := readProcComm(int32(os.Getpid()))
	if !ok || comm == "" {
		t.Errorf("readProcComm(self) = %q, %v", comm, ok)
	}
}

func TestProtocols(t *testing.T) {
	p, err := ParseProtocols(strings.NewReader("# c\nip\t0\tIP\nicmp 1 ICMP\nicmp-dup 1\n  tcp   6 TCP # x\nbad 7x\nneg -1 NEG\nbig 4294967297\nnonum\n\x00zero 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]string{0: "ip", 1: "icmp", 6: "tcp", 7: "", -1: "neg", 9: "", 17: ""} {
		if got, ok := p.Name(n); got != want || ok != (want != "") {
			t.Errorf("Name(%d) = %q, %v; want %q", n, got, ok, want)
		}
	}
	if got, ok := p.Name(1); !ok || got != "icmp" {
		t.Errorf("Name(1) = %q", got)
	}
	var nilp *Protocols
	if _, ok := nilp.Name(1); ok {
		t.Error("nil Protocols names something")
	}
	if got := string(appendProtoName(nil, nil, 1)); got != "ipproto-1" {
		t.Errorf("without a database: %q", got)
	}
}

// MPTCP ports follow the database of the last of raw, udp and tcp.
func TestMPTCPServices(t *testing.T) {
	svc, err := ParseServices(strings.NewReader("echo 7/udp\necho 7/tcp\nhttp-alt 8080/tcp\nwebcache 8080/udp\nonlyudp 9999/udp\n"))
	if err != nil {
		t.Fatal(err)
	}
	protos, _ := ParseProtocols(strings.NewReader("hopopt 0\nicmp 1\n"))
	s := snapshot.Socket{Family: afInet, Type: sockStream, Protocol: ipprotoMPTCP, Local: ap("1.2.3.4:8080"), Peer: ap("1.2.3.4:9999")}
	r := snapshot.Socket{Family: afInet, Type: sockStream, Protocol: ipprotoMPTCP, Local: ap("1.2.3.4:1"), Peer: ap("1.2.3.4:7")}
	for db, want := range map[string][2]string{
		"":    {"http-alt onlyudp", "1 echo"},
		"tcp": {"http-alt 9999", "1 echo"},
		"udp": {"webcache onlyudp", "1 echo"},
		"raw": {"ipproto-8080 ipproto-9999", "icmp ipproto-7"},
		"bad": {"8080 9999", "1 7"},
	} {
		opt := Options{Services: svc, Protocols: protos, MPTCPServices: db}
		tb := newTabler(nil, &opt)
		for i, sock := range []*snapshot.Socket{&s, &r} {
			got := string(tb.appendPort(nil, sock, sock.Local.Port())) + " " + string(tb.appendPort(nil, sock, sock.Peer.Port()))
			if got != want[i] {
				t.Errorf("MPTCPServices %q: %q, want %q", db, got, want[i])
			}
			// JSON names the same.
			l, _ := serviceName(&opt, sock, sock.Local.Port())
			p, _ := serviceName(&opt, sock, sock.Peer.Port())
			if w := strings.Fields(want[i]); (l != "" && l != w[0]) || (p != "" && p != w[1]) {
				t.Errorf("MPTCPServices %q: JSON names %q %q, table %q", db, l, p, want[i])
			}
		}
		tb.release()
	}
}

func TestGoldenJSONFamilies(t *testing.T) {
	withULP(t)
	all := append(append(netlinkSockets(), packetSockets()...), infoSockets()...)
	for i := range all {
		all[i].NetNS = 4026531840
	}
	for _, c := range []struct {
		name string
		opt  Options
	}{
		{"json_families", Options{Info: true, Memory: true}},
		{"json_families_numeric", Options{Numeric: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := JSON(&b, all, familyOpts(c.opt)); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
			// Each object is what encoding/json makes of Object.
			e := NewEncoder(familyOpts(c.opt))
			for i := range all {
				want, err := json.Marshal(e.Object(&all[i]))
				if err != nil {
					t.Fatal(err)
				}
				if got := e.AppendSocket(nil, &all[i]); !bytes.Equal(got, want) {
					t.Errorf("socket %d:\nAppendSocket: %s\njson.Marshal: %s", i, got, want)
				}
			}
		})
	}
}

// randomFamilySocket makes a netlink, packet, TCP, MPTCP or raw socket
// with random details.
func randomFamilySocket(r *rand.Rand) snapshot.Socket {
	bytesOf := func(max int) []byte {
		if r.IntN(4) == 0 {
			return nil
		}
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	words := func(max int) []uint32 {
		if r.IntN(4) == 0 {
			return nil
		}
		w := make([]uint32, r.IntN(max+1))
		for i := range w {
			w[i] = r.Uint32()
		}
		return w
	}
	s := snapshot.Socket{State: uint8(r.IntN(14)), RecvQ: r.Uint32(), Inode: r.Uint32(), Cookie: r.Uint64(), UID: uint32(r.IntN(2) * 1000)}
	s.MemInfo = words(10)
	switch r.IntN(4) {
	case 0:
		s.Family, s.Type, s.Protocol = afNetlink, sockRaw, uint16(r.IntN(24))
		s.NetlinkPortID = []int32{0, -1, 1234, 4321, int32(r.Uint32())}[r.IntN(5)]
		s.NetlinkState = uint8(r.IntN(2))
		s.NetlinkDstPortID, s.NetlinkDstGroup, s.NetlinkGroups = uint32(r.IntN(2))*r.Uint32(), uint32(r.IntN(3)), uint64(r.IntN(2))*r.Uint64()
	case 1:
		s.Family, s.Type = afPacket, []uint8{sockRaw, sockDgram}[r.IntN(2)]
		s.Protocol = []uint16{3, 0x800, 0x86dd, 0x1234}[r.IntN(4)]
		s.Iface = uint32(r.IntN(3))
		s.HasPacketInfo = r.IntN(2) == 0
		s.PacketVersion, s.PacketCopyThresh, s.PacketTstamp, s.PacketFlags = r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32()
		s.PacketRxRing, s.PacketTxRing = words(7), words(7)
		s.HasPacketFanout, s.PacketFanout = r.IntN(2) == 0, r.Uint32()
		s.PacketFilter = bytesOf(40)
	default:
		s.Family, s.Type = afInet, sockStream
		s.Protocol = []uint16{ipprotoTCP, ipprotoMPTCP, ipprotoUDP, 1}[r.IntN(4)]
		if s.Protocol == 1 {
			s.Type = sockRaw
		}
		s.Local, s.Peer = ap("127.0.0.1:80"), ap("127.0.0.1:50000")
		s.TCPInfo = bytesOf(300)
		s.CongAlg = []string{"", "bbr", "cubic"}[r.IntN(3)]
		s.CCInfoType = []uint16{0, ccVegas, ccDCTCP, ccBBR}[r.IntN(4)]
		s.CCInfo = bytesOf(24)
	}
	return s
}

func TestAppendSocketMatchesEncodingJSONFamilies(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, opt := range []Options{{Numeric: true}, {Info: true, Memory: true}, {Info: true, Numeric: true}} {
		e := NewEncoder(familyOpts(opt))
		for range 20000 {
			s := randomFamilySocket(r)
			got := e.AppendSocket(nil, &s)
			want, err := json.Marshal(e.Object(&s))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("socket %+v:\nAppendSocket: %s\njson.Marshal: %s", s, got, want)
			}
			var back JSONSocket
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&back); err != nil {
				t.Fatalf("decoding %s: %v", got, err)
			}
		}
	}
}

// Whatever the bytes, rendering never panics.
func TestTableRandomFamilies(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	socks := make([]snapshot.Socket, 5000)
	for i := range socks {
		socks[i] = randomFamilySocket(r)
	}
	opt := familyOpts(Options{ShowNetid: true, ShowState: true, Header: true, Info: true, Memory: true, Extended: true, Options: true, BPF: true, Processes: true})
	for _, oneline := range []bool{false, true} {
		opt.Oneline = oneline
		var b bytes.Buffer
		if err := Table(&b, socks, opt); err != nil {
			t.Fatal(err)
		}
	}
}
