package snapshot

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// netlinkMsg is the fixed part of a netlink_diag_msg.
type netlinkMsg struct {
	typ, protocol, state       uint8
	portid                     int32
	dstPortid, dstGroup, inode uint32
	cookie                     uint64
}

func (m netlinkMsg) encode(attrs ...[]byte) []byte {
	b := make([]byte, netlinkDiagMsgLen)
	b[0], b[1], b[2], b[3] = unix.AF_NETLINK, m.typ, m.protocol, m.state
	ne.PutUint32(b[4:], uint32(m.portid))
	ne.PutUint32(b[8:], m.dstPortid)
	ne.PutUint32(b[12:], m.dstGroup)
	ne.PutUint32(b[16:], m.inode)
	ne.PutUint32(b[20:], uint32(m.cookie))
	ne.PutUint32(b[24:], uint32(m.cookie>>32))
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// packetMsg is the fixed part of a packet_diag_msg.
type packetMsg struct {
	typ    uint8
	num    uint16
	inode  uint32
	cookie uint64
}

func (m packetMsg) encode(attrs ...[]byte) []byte {
	b := make([]byte, packetDiagMsgLen)
	b[0], b[1] = unix.AF_PACKET, m.typ
	ne.PutUint16(b[2:], m.num)
	ne.PutUint32(b[4:], m.inode)
	ne.PutUint32(b[8:], uint32(m.cookie))
	ne.PutUint32(b[12:], uint32(m.cookie>>32))
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

var meminfo9 = u32s(100, 212992, 300, 212992, 0, 0, 0, 0, 7)

func TestDecodeNetlink(t *testing.T) {
	base := netlinkMsg{typ: unix.SOCK_RAW, protocol: unix.NETLINK_ROUTE, state: NetlinkConnected,
		portid: -4099, dstPortid: 77, dstGroup: 5, inode: 31337, cookie: 0xaabbccdd11223344}
	tests := []struct {
		name  string
		msg   []byte
		check func(t *testing.T, s Socket)
	}{
		{"fixed fields", base.encode(), func(t *testing.T, s Socket) {
			want := Socket{Family: unix.AF_NETLINK, Type: unix.SOCK_RAW, Protocol: unix.NETLINK_ROUTE, State: StateClose,
				NetlinkState: NetlinkConnected, NetlinkPortID: -4099, NetlinkDstPortID: 77, NetlinkDstGroup: 5,
				Inode: 31337, Cookie: 0xaabbccdd11223344}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		}},
		{"kernel socket, dgram, generic", netlinkMsg{typ: unix.SOCK_DGRAM, protocol: unix.NETLINK_GENERIC, state: StateClose}.encode(), func(t *testing.T, s Socket) {
			if s.NetlinkPortID != 0 || s.Type != unix.SOCK_DGRAM || s.Protocol != unix.NETLINK_GENERIC || s.NetlinkState != StateClose || s.State != StateClose {
				t.Errorf("got %+v", s)
			}
		}},
		{"groups and meminfo", base.encode(
			rta(NetlinkDiagGroups, u64(0x8000000000000011)...),
			rta(NetlinkDiagMemInfo, meminfo9...),
			rta(NetlinkDiagFlags, u32s(3)...), // not asked by ss: ignored
		), func(t *testing.T, s Socket) {
			if s.NetlinkGroups != 0x8000000000000011 {
				t.Errorf("groups %#x", s.NetlinkGroups)
			}
			if s.RecvQ != 100 || s.SendQ != 300 || len(s.MemInfo) != 9 || s.MemInfo[8] != 7 {
				t.Errorf("rq %d wq %d meminfo %v", s.RecvQ, s.SendQ, s.MemInfo)
			}
		}},
		{"groups: only the first long of a longer bitmap", base.encode(
			rta(NetlinkDiagGroups, append(u64(0x40), u64(0xffff)...)...)), func(t *testing.T, s Socket) {
			if s.NetlinkGroups != 0x40 {
				t.Errorf("groups %#x", s.NetlinkGroups)
			}
		}},
		{"groups: a short bitmap is zero-extended", base.encode(rta(NetlinkDiagGroups, u32s(0x3)...)), func(t *testing.T, s Socket) {
			if s.NetlinkGroups != 0x3 {
				t.Errorf("groups %#x", s.NetlinkGroups)
			}
		}},
		{"groups: empty", base.encode(rta(NetlinkDiagGroups)), func(t *testing.T, s Socket) {
			if s.NetlinkGroups != 0 {
				t.Errorf("groups %#x", s.NetlinkGroups)
			}
		}},
		{"no meminfo: queues zero", base.encode(), func(t *testing.T, s Socket) {
			if s.RecvQ != 0 || s.SendQ != 0 || s.MemInfo != nil {
				t.Errorf("rq %d wq %d meminfo %v", s.RecvQ, s.SendQ, s.MemInfo)
			}
		}},
		{"first of repeated attributes wins", base.encode(
			rta(NetlinkDiagGroups, u64(1)...), rta(NetlinkDiagGroups, u64(2)...)), func(t *testing.T, s Socket) {
			if s.NetlinkGroups != 1 {
				t.Errorf("groups %#x", s.NetlinkGroups)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeNetlink(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
			var a arena
			var s2 Socket
			if err := decodeNetlink(&s2, tt.msg, &a); err != nil || !reflect.DeepEqual(s, s2) {
				t.Errorf("arena decoding differs: %v\n%+v\n%+v", err, s, s2)
			}
		})
	}
}

func TestDecodeNetlinkErrors(t *testing.T) {
	full := netlinkMsg{inode: 1}.encode(rta(NetlinkDiagGroups, u64(1)...))
	for n := 0; n < netlinkDiagMsgLen; n++ {
		if _, err := DecodeNetlink(full[:n]); err == nil || !strings.HasPrefix(err.Error(), "decoding netlink_diag_msg: ") {
			t.Errorf("%d bytes: error %v", n, err)
		}
	}
	for _, tt := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"attribute cut", full[:len(full)-2], "claims 12 bytes, 10 left"},
		{"attribute length below header", netlinkMsg{}.encode([]byte{2, 0, 1, 0}), "claims 2 bytes"},
		{"short meminfo", netlinkMsg{}.encode(rta(NetlinkDiagMemInfo, u32s(1, 2)...)), "attribute 0 has 8 bytes, want 12"},
	} {
		if _, err := DecodeNetlink(tt.msg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func packetInfo(index, version, copyThresh, tstamp, flags uint32) []byte {
	return rta(PacketDiagInfo, u32s(index, version, 0xdead, copyThresh, tstamp, flags)...)
}

func TestDecodePacket(t *testing.T) {
	base := packetMsg{typ: unix.SOCK_RAW, num: unix.ETH_P_ALL, inode: 4242, cookie: 0x0102030405060708}
	filter := []byte{0x06, 0, 0, 0, 0xff, 0xff, 0, 0, 0x06, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name  string
		msg   []byte
		check func(t *testing.T, s Socket)
	}{
		{"fixed fields", base.encode(), func(t *testing.T, s Socket) {
			want := Socket{Family: unix.AF_PACKET, Type: unix.SOCK_RAW, Protocol: unix.ETH_P_ALL, State: StateClose,
				Inode: 4242, Cookie: 0x0102030405060708}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		}},
		{"dgram ipv6", packetMsg{typ: unix.SOCK_DGRAM, num: unix.ETH_P_IPV6}.encode(), func(t *testing.T, s Socket) {
			if s.Type != unix.SOCK_DGRAM || s.Protocol != 0x86dd {
				t.Errorf("type %d protocol %#x", s.Type, s.Protocol)
			}
		}},
		{"every attribute", base.encode(
			packetInfo(3, unix.TPACKET_V3, 9, 1, 0x11),
			rta(PacketDiagMCList, make([]byte, 44)...), // not asked by ss: ignored
			rta(PacketDiagRxRing, u32s(4096, 4, 2048, 8, 60, 0, 1)...),
			rta(PacketDiagTxRing, u32s(8192, 2, 4096, 4, 0, 0, 0)...),
			rta(PacketDiagFanout, u32s(42|2<<16)...),
			rta(PacketDiagUID, u32s(1000)...),
			rta(PacketDiagMemInfo, meminfo9...),
			rta(PacketDiagFilter, filter...),
		), func(t *testing.T, s Socket) {
			if !s.HasPacketInfo || s.Iface != 3 || s.PacketVersion != unix.TPACKET_V3 || s.PacketCopyThresh != 9 ||
				s.PacketTstamp != 1 || s.PacketFlags != 0x11 {
				t.Errorf("info: %+v", s)
			}
			if !reflect.DeepEqual(s.PacketRxRing, []uint32{4096, 4, 2048, 8, 60, 0, 1}) ||
				!reflect.DeepEqual(s.PacketTxRing, []uint32{8192, 2, 4096, 4, 0, 0, 0}) {
				t.Errorf("rings %v %v", s.PacketRxRing, s.PacketTxRing)
			}
			if !s.HasPacketFanout || s.PacketFanout != 42|2<<16 {
				t.Errorf("fanout %v %#x", s.HasPacketFanout, s.PacketFanout)
			}
			if s.UID != 1000 || s.RecvQ != 100 || s.SendQ != 0 || len(s.MemInfo) != 9 {
				t.Errorf("uid %d rq %d wq %d meminfo %v", s.UID, s.RecvQ, s.SendQ, s.MemInfo)
			}
			if !bytes.Equal(s.PacketFilter, filter) {
				t.Errorf("filter % x", s.PacketFilter)
			}
		}},
		{"longer ring and info (newer kernel) are cut to what we know", base.encode(
			rta(PacketDiagInfo, u32s(5, 1, 0, 0, 0, 0, 99)...),
			rta(PacketDiagRxRing, u32s(1, 2, 3, 4, 5, 6, 7, 8)...)), func(t *testing.T, s Socket) {
			if s.Iface != 5 || len(s.PacketRxRing) != 7 {
				t.Errorf("iface %d ring %v", s.Iface, s.PacketRxRing)
			}
		}},
		{"absent attributes", base.encode(), func(t *testing.T, s Socket) {
			if s.HasPacketInfo || s.HasPacketFanout || s.PacketFilter != nil || s.PacketRxRing != nil || s.MemInfo != nil {
				t.Errorf("%+v", s)
			}
		}},
		{"empty filter still counts as present", base.encode(rta(PacketDiagFilter), rta(PacketDiagMemInfo, u32s(0)...)), func(t *testing.T, s Socket) {
			if s.PacketFilter == nil || len(s.PacketFilter) != 0 || s.MemInfo == nil {
				t.Errorf("filter %#v meminfo %#v", s.PacketFilter, s.MemInfo)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodePacket(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
			var a arena
			var s2 Socket
			if err := decodePacket(&s2, tt.msg, &a); err != nil || !reflect.DeepEqual(s, s2) {
				t.Errorf("arena decoding differs: %v\n%+v\n%+v", err, s, s2)
			}
		})
	}
}

func TestDecodePacketErrors(t *testing.T) {
	full := packetMsg{inode: 1}.encode(rta(PacketDiagUID, u32s(1)...))
	for n := 0; n < packetDiagMsgLen; n++ {
		if _, err := DecodePacket(full[:n]); err == nil || !strings.HasPrefix(err.Error(), "decoding packet_diag_msg: ") {
			t.Errorf("%d bytes: error %v", n, err)
		}
	}
	for _, tt := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"attribute cut", full[:len(full)-1], "claims 8 bytes, 7 left"},
		{"short info", packetMsg{}.encode(rta(PacketDiagInfo, u32s(1, 2, 3, 4, 5)...)), "attribute 0 has 20 bytes, want 24"},
		{"short rx ring", packetMsg{}.encode(rta(PacketDiagRxRing, u32s(1)...)), "attribute 2 has 4 bytes, want 28"},
		{"short tx ring", packetMsg{}.encode(rta(PacketDiagTxRing)), "attribute 3 has 0 bytes, want 28"},
		{"short fanout", packetMsg{}.encode(rta(PacketDiagFanout, 1, 2)), "attribute 4 has 2 bytes, want 4"},
		{"short uid", packetMsg{}.encode(rta(PacketDiagUID, 1)), "attribute 5 has 1 bytes, want 4"},
		{"empty meminfo", packetMsg{}.encode(rta(PacketDiagMemInfo)), "attribute 6 has 0 bytes, want 4"},
	} {
		if _, err := DecodePacket(tt.msg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestBuildRequestOtherTables(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  DumpRequest
		want []byte // after the netlink header
	}{
		{"netlink", DumpRequest{Family: unix.AF_NETLINK, States: 1 << StateListen},
			append([]byte{unix.AF_NETLINK, NDiagProtoAll, 0, 0}, u32s(0, NDiagShowGroups|NDiagShowMemInfo, 0, 0)...)},
		{"packet", DumpRequest{Family: unix.AF_PACKET},
			append([]byte{unix.AF_PACKET, 0, 0, 0}, u32s(0, 0x01|0x10|0x20|0x04|0x08, 0, 0)...)},
		{"raw", DumpRequest{Family: unix.AF_INET6, Protocol: unix.IPPROTO_RAW, States: 0xfff},
			func() []byte {
				r := make([]byte, inetDiagReqLen)
				r[0], r[1] = unix.AF_INET6, unix.IPPROTO_RAW
				copy(r[4:], u32s(0xfff))
				copy(r[48:], u32s(0xffffffff, 0xffffffff))
				return r
			}()},
		{"mptcp", DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_MPTCP, States: 0xfff, Ext: 2},
			func() []byte {
				r := make([]byte, inetDiagReqLen)
				r[0], r[1], r[2] = unix.AF_INET, unix.IPPROTO_TCP, 2 // 262's low byte
				copy(r[4:], u32s(0xfff))
				copy(r[48:], u32s(0xffffffff, 0xffffffff))
				return append(r, rta(InetDiagReqProtocol, u32s(unix.IPPROTO_MPTCP)...)...)
			}()},
	} {
		b, err := buildRequest(tt.req)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if int(ne.Uint32(b)) != len(b) || ne.Uint16(b[4:]) != unix.SOCK_DIAG_BY_FAMILY ||
			ne.Uint16(b[6:]) != unix.NLM_F_REQUEST|unix.NLM_F_DUMP || ne.Uint32(b[8:]) != dumpRequestSeq {
			t.Errorf("%s: bad header % x", tt.name, b[:16])
		}
		if !bytes.Equal(b[16:], tt.want) {
			t.Errorf("%s:\n got % x\nwant % x", tt.name, b[16:], tt.want)
		}
	}
}

func TestDiagStructSizes(t *testing.T) {
	// Layouts of include/uapi/linux/{netlink,packet}_diag.h.
	//lint:ignore U1000 a layout mirror: only its size is used
	type netlinkDiagReq struct {
		family, protocol uint8
		pad              uint16
		ino, show        uint32
		cookie           [2]uint32
	}
	//lint:ignore U1000 a layout mirror: only its size is used
	type netlinkDiagMsg struct {
		family, typ, protocol, state uint8
		portid, dstPortid, dstGroup  uint32
		ino                          uint32
		cookie                       [2]uint32
	}
	//lint:ignore U1000 a layout mirror: only its size is used
	type packetDiagMsg struct {
		family, typ uint8
		num         uint16
		ino         uint32
		cookie      [2]uint32
	}
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"netlink_diag_req", unsafe.Sizeof(netlinkDiagReq{}), netlinkDiagReqLen},
		{"netlink_diag_msg", unsafe.Sizeof(netlinkDiagMsg{}), netlinkDiagMsgLen},
		{"packet_diag_req (same layout as netlink_diag_req)", unsafe.Sizeof(netlinkDiagReq{}), packetDiagReqLen},
		{"packet_diag_msg", unsafe.Sizeof(packetDiagMsg{}), packetDiagMsgLen},
		{"packet_diag_info", 6 * 4, packetDiagInfoLen},
		{"packet_diag_ring", 7 * 4, packetDiagRingLen},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, constant says %d", c.name, c.got, c.want)
		}
	}
}

// fakeDiag makes every dump of the test (List's) go to a fake kernel that
// answers each connection with the next script.
func fakeDiag(t *testing.T, attempts ...[]recvResult) *fakeKernel {
	t.Helper()
	f := &fakeKernel{attempts: attempts}
	prev := openDiag
	openDiag = f.open
	t.Cleanup(func() { openDiag = prev })
	return f
}

func diagMsg(payload []byte) []byte {
	return nlmsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, dumpRequestSeq, payload)
}

// sentRequest decodes what List asked a fake kernel: family and protocol
// (with INET_DIAG_REQ_PROTOCOL applied).
func sentRequest(b []byte) (uint8, uint16) {
	fam, proto := b[16], uint16(b[17])
	if (fam == unix.AF_INET || fam == unix.AF_INET6) && len(b) >= 16+inetDiagReqLen+8 {
		proto = uint16(ne.Uint32(b[16+inetDiagReqLen+4:]))
	}
	return fam, proto
}

func TestListFakeKernel(t *testing.T) {
	rawMsg := func(fam uint8, proto byte, ino uint32) []byte {
		m := inetMsg{family: fam, state: StateClose, inode: ino}
		return diagMsg(m.encode(rta(InetDiagProtocol, proto)))
	}
	done := dg(doneMsg(0, 0))
	refused := []recvResult{dg(doneMsg(-int32(unix.ENOENT), 0))}
	f := fakeDiag(t,
		[]recvResult{dg(diagMsg(netlinkMsg{protocol: unix.NETLINK_ROUTE, inode: 1}.encode(rta(NetlinkDiagMemInfo, meminfo9...)))), done},
		[]recvResult{dg(diagMsg(packetMsg{typ: unix.SOCK_DGRAM, num: 3, inode: 2}.encode(rta(PacketDiagMemInfo, meminfo9...)))), done},
		[]recvResult{dg(rawMsg(unix.AF_INET, unix.IPPROTO_ICMP, 3)), done},
		[]recvResult{dg(rawMsg(unix.AF_INET6, unix.IPPROTO_ICMPV6, 4)), done},
		[]recvResult{dg(sockMsg(5, 0)), done}, // tcp v4
		refused,                               // mptcp v4: nothing, no error, no v6 dump
		[]recvResult{done},                    // spare: must stay unused
	)
	socks, err := List(ListRequest{
		Netlink: true, Packet: true,
		RawInet: true, RawFamilies: []uint8{unix.AF_INET, unix.AF_INET6},
		Inet:   []InetDump{{unix.AF_INET, unix.IPPROTO_TCP}, {unix.AF_INET, unix.IPPROTO_MPTCP}, {unix.AF_INET6, unix.IPPROTO_MPTCP}},
		States: 0xfff,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for _, s := range socks {
		got = append(got, s.Inode)
	}
	if !reflect.DeepEqual(got, []uint32{1, 2, 3, 4, 5}) {
		t.Errorf("inodes %v", got)
	}
	if f.opened != 6 {
		t.Errorf("%d dumps, want 6 (none after MPTCP was refused)", f.opened)
	}
	var asked []string
	for _, b := range f.sent {
		fam, proto := sentRequest(b)
		asked = append(asked, dumpName(fam, proto))
	}
	if want := "netlink packet raw/ipv4 raw/ipv6 tcp/ipv4 mptcp/ipv4"; strings.Join(asked, " ") != want {
		t.Errorf("asked %v, want %s", asked, want)
	}
	// Raw rows from sock_diag: SOCK_RAW, and INET_DIAG_PROTOCOL as
	// Protocol, as ss takes it.
	if s := socks[2]; s.Type != unix.SOCK_RAW || s.Protocol != unix.IPPROTO_ICMP || s.Family != unix.AF_INET {
		t.Errorf("raw row %+v", s)
	}
	if s := socks[3]; s.Type != unix.SOCK_RAW || s.Protocol != unix.IPPROTO_ICMPV6 || s.Family != unix.AF_INET6 {
		t.Errorf("raw row %+v", s)
	}

	// Errors on our side are errors, for MPTCP and raw too.
	for _, req := range []ListRequest{
		{Inet: []InetDump{{unix.AF_INET, unix.IPPROTO_MPTCP}}, States: 0xfff},
		{RawInet: true, RawFamilies: []uint8{unix.AF_INET}, RawProcFamilies: []uint8{unix.AF_INET}, States: 0xfff},
		{Netlink: true},
		{Packet: true},
	} {
		fakeDiag(t, []recvResult{{err: unix.EBADF}})
		if _, err := List(req); !errors.Is(err, unix.EBADF) {
			t.Errorf("%+v: error %v", req, err)
		}
	}
	// The kernel refusing a netlink, packet or TCP dump is an error.
	for _, req := range []ListRequest{
		{Netlink: true},
		{Packet: true},
		{Inet: []InetDump{{unix.AF_INET, unix.IPPROTO_TCP}}, States: 0xfff},
	} {
		fakeDiag(t, refused)
		if _, err := List(req); !errors.Is(err, unix.ENOENT) {
			t.Errorf("%+v: error %v", req, err)
		}
	}
	// A packet socket without PACKET_DIAG_MEMINFO: ss gives the dump up.
	fakeDiag(t, []recvResult{dg(diagMsg(packetMsg{inode: 9}.encode())), done})
	if _, err := List(ListRequest{Packet: true}); err == nil || !strings.Contains(err.Error(), "without PACKET_DIAG_MEMINFO") {
		t.Errorf("packet without meminfo: error %v", err)
	}
	// States 0 (never from a selection): no raw dump either.
	f = fakeDiag(t)
	if socks, err := List(ListRequest{RawInet: true, RawFamilies: []uint8{unix.AF_INET}}); err != nil || len(socks) != 0 || f.opened != 0 {
		t.Errorf("states 0: %v %v, %d dumps", socks, err, f.opened)
	}
}

func TestKernelError(t *testing.T) {
	req := DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_MPTCP}
	msg, err := buildRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		script []recvResult
		kernel bool
	}{
		{"DONE with error", []recvResult{dg(doneMsg(-int32(unix.ENOENT), 0))}, true},
		{"NLMSG_ERROR", []recvResult{dg(errMsg(-int32(unix.EINVAL)))}, true},
		{"receive error", []recvResult{{err: unix.EBADF}}, false},
		{"truncated reply", []recvResult{{data: make([]byte, 10)}}, false},
	} {
		f := &fakeKernel{attempts: [][]recvResult{tt.script}}
		_, err := dumpWith(f.open, nil, req, msg, 1)
		if err == nil || isKernelError(err) != tt.kernel {
			t.Errorf("%s: error %v, kernel's: %v", tt.name, err, isKernelError(err))
		}
	}
}

// FuzzDecodeDiag covers the decoders of the tables beyond tcp/udp/unix:
// netlink, packet, and inet dumps of raw and MPTCP sockets.
func FuzzDecodeDiag(f *testing.F) {
	f.Add(netlinkMsg{protocol: 16, portid: 5, inode: 7}.encode(rta(NetlinkDiagGroups, u64(3)...), rta(NetlinkDiagMemInfo, meminfo9...)), uint8(0))
	f.Add(packetMsg{typ: unix.SOCK_RAW, num: 3, inode: 8}.encode(packetInfo(1, 2, 3, 4, 5),
		rta(PacketDiagRxRing, u32s(1, 2, 3, 4, 5, 6, 7)...), rta(PacketDiagFanout, u32s(1)...), rta(PacketDiagUID, u32s(0)...),
		rta(PacketDiagMemInfo, meminfo9...), rta(PacketDiagFilter, make([]byte, 16)...)), uint8(1))
	f.Add(inetMsg{family: unix.AF_INET, state: StateClose}.encode(rta(InetDiagProtocol, 1)), uint8(2))
	f.Add(baseV4().encode(rta(InetDiagInfo, make([]byte, 16)...)), uint8(3))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		type decoder struct {
			family uint8
			proto  uint16
			min    int
			dec    func(*Socket, []byte, *arena) error
		}
		ds := []decoder{
			{unix.AF_NETLINK, 0, netlinkDiagMsgLen, decodeNetlink},
			{unix.AF_PACKET, 0, packetDiagMsgLen, decodePacket},
			{unix.AF_INET, unix.IPPROTO_RAW, inetDiagMsgLen, func(s *Socket, b []byte, a *arena) error { return decodeInet(s, b, unix.IPPROTO_RAW, a) }},
			{unix.AF_INET, unix.IPPROTO_MPTCP, inetDiagMsgLen, func(s *Socket, b []byte, a *arena) error { return decodeInet(s, b, unix.IPPROTO_MPTCP, a) }},
		}
		d := ds[int(which)%len(ds)]
		var s1, s2 Socket
		err1 := d.dec(&s1, b, nil)
		var a arena
		err2 := d.dec(&s2, b, &a)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && !reflect.DeepEqual(s1, s2)) {
			t.Fatalf("arena decoding differs: %v %v", err1, err2)
		}
		if err1 == nil {
			if len(b) < d.min {
				t.Fatalf("short input accepted: %+v", s1)
			}
			if (d.family == unix.AF_NETLINK || d.family == unix.AF_PACKET) && s1.State != StateClose {
				t.Fatalf("state %d", s1.State)
			}
			if s1.MemInfo != nil && d.family == unix.AF_NETLINK && (s1.RecvQ != s1.MemInfo[0] || s1.SendQ != s1.MemInfo[2]) {
				t.Fatalf("queues %d %d from %v", s1.RecvQ, s1.SendQ, s1.MemInfo)
			}
		}
		// The dump loop must not panic on a datagram made of this payload.
		h := &decodeHandler{family: d.family, protocol: d.proto}
		walkMessages(b, dumpRequestSeq, h)
		walkMessages(nlmsg(unix.SOCK_DIAG_BY_FAMILY, 0, dumpRequestSeq, b), dumpRequestSeq, h)
	})
}
