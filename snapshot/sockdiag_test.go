package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian

// rta encodes one rtattr with its padding.
func rta(typ uint16, payload ...byte) []byte {
	b := make([]byte, (rtattrHdrLen+len(payload)+3)&^3)
	ne.PutUint16(b, uint16(rtattrHdrLen+len(payload)))
	ne.PutUint16(b[2:], typ)
	copy(b[rtattrHdrLen:], payload)
	return b
}

func u32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		ne.PutUint32(b[4*i:], x)
	}
	return b
}

func u64(v uint64) []byte { return ne.AppendUint64(nil, v) }

// inetMsg is the fixed part of an inet_diag_msg.
type inetMsg struct {
	family, state, timer, retrans uint8
	src, dst                      netip.AddrPort
	iface                         uint32
	cookie                        uint64
	expires, rq, wq, uid, inode   uint32
}

func (m inetMsg) encode(attrs ...[]byte) []byte {
	b := make([]byte, inetDiagMsgLen)
	b[0], b[1], b[2], b[3] = m.family, m.state, m.timer, m.retrans
	binary.BigEndian.PutUint16(b[4:], m.src.Port())
	binary.BigEndian.PutUint16(b[6:], m.dst.Port())
	if m.src.Addr().IsValid() {
		copy(b[8:24], m.src.Addr().AsSlice())
	}
	if m.dst.Addr().IsValid() {
		copy(b[24:40], m.dst.Addr().AsSlice())
	}
	ne.PutUint32(b[40:], m.iface)
	ne.PutUint32(b[44:], uint32(m.cookie))
	ne.PutUint32(b[48:], uint32(m.cookie>>32))
	ne.PutUint32(b[52:], m.expires)
	ne.PutUint32(b[56:], m.rq)
	ne.PutUint32(b[60:], m.wq)
	ne.PutUint32(b[64:], m.uid)
	ne.PutUint32(b[68:], m.inode)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func unixMsg(typ, state uint8, ino uint32, cookie uint64, attrs ...[]byte) []byte {
	b := make([]byte, unixDiagMsgLen)
	b[0], b[1], b[2] = unix.AF_UNIX, typ, state
	ne.PutUint32(b[4:], ino)
	ne.PutUint32(b[8:], uint32(cookie))
	ne.PutUint32(b[12:], uint32(cookie>>32))
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// nlmsg wraps a payload in a netlink header.
func nlmsg(typ, flags uint16, seq uint32, payload []byte) []byte {
	b := make([]byte, (nlmsgHdrLen+len(payload)+3)&^3)
	ne.PutUint32(b, uint32(nlmsgHdrLen+len(payload)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], payload)
	return b
}

var (
	v4Local  = netip.MustParseAddrPort("10.1.2.3:8080")
	v4Peer   = netip.MustParseAddrPort("192.168.7.9:54321")
	v6Local  = netip.MustParseAddrPort("[2001:db8::1]:443")
	v6Peer   = netip.MustParseAddrPort("[fe80::1234:5678]:65535")
	v6Mapped = netip.MustParseAddrPort("[::ffff:127.0.0.1]:22")
)

func baseV4() inetMsg {
	return inetMsg{family: unix.AF_INET, state: StateEstablished, timer: 1, retrans: 2,
		src: v4Local, dst: v4Peer, iface: 3, cookie: 0x1122334455667788,
		expires: 200, rq: 5, wq: 6, uid: 1000, inode: 424242}
}

func TestDecodeInet(t *testing.T) {
	tcpInfo := bytes.Repeat([]byte{0xab}, 232)
	tests := []struct {
		name     string
		msg      []byte
		protocol uint16
		check    func(t *testing.T, s Socket)
	}{
		{"v4 fixed fields", baseV4().encode(), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			want := Socket{Family: unix.AF_INET, Type: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP,
				State: StateEstablished, Timer: 1, Retrans: 2, Local: v4Local, Peer: v4Peer, Iface: 3,
				Cookie: 0x1122334455667788, Expires: 200, RecvQ: 5, SendQ: 6, UID: 1000, Inode: 424242}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
			if !s.Local.Addr().Is4() {
				t.Errorf("v4 address %v is not 4 bytes", s.Local.Addr())
			}
		}},
		{"v6 addresses", inetMsg{family: unix.AF_INET6, state: StateListen, src: v6Local, dst: v6Peer}.encode(), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.Local != v6Local || s.Peer != v6Peer || s.State != StateListen {
				t.Errorf("got %v -> %v state %d", s.Local, s.Peer, s.State)
			}
		}},
		{"v4-mapped stays v6", inetMsg{family: unix.AF_INET6, src: v6Mapped}.encode(), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if !s.Local.Addr().Is6() || !s.Local.Addr().Is4In6() || s.Local.Port() != 22 {
				t.Errorf("got %v, want %v as 16 bytes", s.Local, v6Mapped)
			}
			if s.Peer.Addr() != netip.IPv6Unspecified() {
				t.Errorf("peer %v, want ::", s.Peer)
			}
		}},
		{"udp type", baseV4().encode(), unix.IPPROTO_UDP, func(t *testing.T, s Socket) {
			if s.Type != unix.SOCK_DGRAM || s.Protocol != unix.IPPROTO_UDP {
				t.Errorf("type %d protocol %d", s.Type, s.Protocol)
			}
		}},
		{"cookie halves", inetMsg{family: unix.AF_INET, cookie: 0xffffffff00000001}.encode(), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.Cookie != 0xffffffff00000001 {
				t.Errorf("cookie %#x", s.Cookie)
			}
		}},
		{"all attributes", baseV4().encode(
			rta(InetDiagMemInfo, u32s(1, 2, 3, 4)...),
			rta(InetDiagSkMemInfo, u32s(10, 20, 30, 40, 50, 60, 70, 80, 90)...),
			rta(InetDiagInfo, tcpInfo...),
			rta(InetDiagCong, 'c', 'u', 'b', 'i', 'c', 0),
			rta(InetDiagShutdown, 3),
			rta(InetDiagSkV6Only, 1),
			rta(InetDiagMark, u32s(0xdeadbeef)...),
			rta(InetDiagCgroupID, u64(0x0102030405060708)...),
			rta(InetDiagBBRInfo, 9, 8, 7, 6),
			rta(InetDiagSockOpt, 0, 0),
			rta(200, 1, 2, 3), // unknown: ignored
		), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if !reflect.DeepEqual(s.MemInfo, []uint32{10, 20, 30, 40, 50, 60, 70, 80, 90}) {
				t.Errorf("MemInfo %v", s.MemInfo)
			}
			if !bytes.Equal(s.TCPInfo, tcpInfo) {
				t.Errorf("TCPInfo %x", s.TCPInfo)
			}
			if s.CongAlg != "cubic" {
				t.Errorf("CongAlg %q", s.CongAlg)
			}
			if !s.HasShutdown || s.Shutdown != 3 {
				t.Errorf("shutdown %v %d", s.HasShutdown, s.Shutdown)
			}
			if !s.HasV6Only || !s.V6Only {
				t.Errorf("v6only %v %v", s.HasV6Only, s.V6Only)
			}
			if s.Mark != 0xdeadbeef || s.CgroupID != 0x0102030405060708 {
				t.Errorf("mark %#x cgroup %#x", s.Mark, s.CgroupID)
			}
			if s.CCInfoType != InetDiagBBRInfo || !bytes.Equal(s.CCInfo, []byte{9, 8, 7, 6}) {
				t.Errorf("CCInfo %d %x", s.CCInfoType, s.CCInfo)
			}
		}},
		{"no attributes means zero values", baseV4().encode(), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.HasShutdown || s.HasV6Only || s.MemInfo != nil || s.TCPInfo != nil || s.CongAlg != "" {
				t.Errorf("attribute fields set: %+v", s)
			}
		}},
		{"empty payloads still count as present", baseV4().encode(rta(InetDiagInfo), rta(InetDiagSkMemInfo), rta(InetDiagCong)), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.TCPInfo == nil || len(s.TCPInfo) != 0 || s.MemInfo == nil || len(s.MemInfo) != 0 {
				t.Errorf("TCPInfo %#v MemInfo %#v", s.TCPInfo, s.MemInfo)
			}
			var a arena
			var s2 Socket
			if err := decodeInet(&s2, baseV4().encode(rta(InetDiagInfo), rta(InetDiagSkMemInfo)), unix.IPPROTO_TCP, &a); err != nil || s2.TCPInfo == nil || s2.MemInfo == nil {
				t.Errorf("arena: TCPInfo %#v MemInfo %#v %v", s2.TCPInfo, s2.MemInfo, err)
			}
		}},
		{"v6only zero", inetMsg{family: unix.AF_INET6}.encode(rta(InetDiagSkV6Only, 0)), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if !s.HasV6Only || s.V6Only {
				t.Errorf("v6only %v %v", s.HasV6Only, s.V6Only)
			}
		}},
		{"protocol attribute overrides", baseV4().encode(rta(InetDiagProtocol, unix.IPPROTO_UDPLITE)), unix.IPPROTO_UDP, func(t *testing.T, s Socket) {
			if s.Protocol != unix.IPPROTO_UDPLITE || s.Type != unix.SOCK_DGRAM {
				t.Errorf("protocol %d type %d", s.Protocol, s.Type)
			}
		}},
		{"uncommon cong without NUL", baseV4().encode(rta(InetDiagCong, []byte("my_cc")...)), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.CongAlg != "my_cc" {
				t.Errorf("CongAlg %q", s.CongAlg)
			}
		}},
		{"first of repeated attributes wins", baseV4().encode(rta(InetDiagMark, u32s(1)...), rta(InetDiagMark, u32s(2)...)), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.Mark != 1 {
				t.Errorf("mark %d", s.Mark)
			}
		}},
		{"trailing bytes shorter than an attribute header", append(baseV4().encode(rta(InetDiagShutdown, 1)), 0, 0), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.Shutdown != 1 {
				t.Errorf("shutdown %d", s.Shutdown)
			}
		}},
		{"last attribute without padding", baseV4().encode(rta(InetDiagShutdown, 2)[:5]), unix.IPPROTO_TCP, func(t *testing.T, s Socket) {
			if s.Shutdown != 2 {
				t.Errorf("shutdown %d", s.Shutdown)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeInet(tt.msg, tt.protocol)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestDecodeInetErrors(t *testing.T) {
	full := baseV4().encode(rta(InetDiagShutdown, 1))
	for n := 0; n < inetDiagMsgLen; n++ {
		if _, err := DecodeInet(full[:n], unix.IPPROTO_TCP); err == nil {
			t.Errorf("%d bytes: no error", n)
		}
	}
	badLen := func(l uint16) []byte {
		a := rta(InetDiagMark, u32s(7)...)
		ne.PutUint16(a, l)
		return a
	}
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"unknown family", inetMsg{family: unix.AF_UNIX}.encode(), "family 1"},
		{"attribute longer than message", baseV4().encode(badLen(9)), "claims 9 bytes"},
		{"attribute length below header", baseV4().encode(badLen(3)), "claims 3 bytes"},
		{"attribute cut after its header", append(baseV4().encode(), rta(InetDiagMark, 1)[:4]...), "claims 5 bytes, 4 left"},
		{"short mark", baseV4().encode(rta(InetDiagMark, 1, 2)), "attribute 15 has 2 bytes"},
		{"short cgroup", baseV4().encode(rta(InetDiagCgroupID, 1, 2, 3, 4)), "attribute 21 has 4 bytes"},
		{"empty shutdown", baseV4().encode(rta(InetDiagShutdown)), "attribute 8 has 0 bytes"},
		{"empty v6only", baseV4().encode(rta(InetDiagSkV6Only)), "attribute 11 has 0 bytes"},
		{"empty protocol", baseV4().encode(rta(InetDiagProtocol)), "attribute 10 has 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeInet(tt.msg, unix.IPPROTO_TCP)
			if err == nil {
				t.Fatalf("no error, got %+v", s)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "decoding inet_diag_msg: ") {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
			if !reflect.DeepEqual(s, Socket{}) {
				t.Errorf("partial socket returned: %+v", s)
			}
		})
	}
}

func TestDecodeUnix(t *testing.T) {
	name := func(s string) []byte { return rta(UnixDiagName, []byte(s)...) }
	tests := []struct {
		name  string
		msg   []byte
		check func(t *testing.T, s Socket)
	}{
		{"fixed fields", unixMsg(unix.SOCK_STREAM, StateListen, 777, 0xabcdef0123), func(t *testing.T, s Socket) {
			want := Socket{Family: unix.AF_UNIX, Type: unix.SOCK_STREAM, State: StateListen, Inode: 777, Cookie: 0xabcdef0123}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		}},
		{"path with NUL", unixMsg(unix.SOCK_DGRAM, StateClose, 1, 0, name("/run/x.sock\x00")), func(t *testing.T, s Socket) {
			if s.Path != "/run/x.sock" {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"path without NUL", unixMsg(unix.SOCK_DGRAM, StateClose, 1, 0, name("/run/y")), func(t *testing.T, s Socket) {
			if s.Path != "/run/y" {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"abstract", unixMsg(unix.SOCK_STREAM, StateListen, 1, 0, name("\x00my-socket")), func(t *testing.T, s Socket) {
			if s.Path != "@my-socket" {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"abstract with inner and trailing NULs", unixMsg(unix.SOCK_STREAM, StateListen, 1, 0, name("\x00a\x00b\x00\x00")), func(t *testing.T, s Socket) {
			if s.Path != "@a@b@@" {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"abstract autobind", unixMsg(unix.SOCK_DGRAM, StateClose, 1, 0, name("\x0000a1f")), func(t *testing.T, s Socket) {
			if s.Path != "@00a1f" {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"long abstract", unixMsg(unix.SOCK_STREAM, StateListen, 1, 0, name("\x00"+strings.Repeat("x", 200))), func(t *testing.T, s Socket) {
			if s.Path != "@"+strings.Repeat("x", 200) {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"all attributes", unixMsg(unix.SOCK_SEQPACKET, StateEstablished, 5, 0,
			rta(UnixDiagPeer, u32s(6)...),
			rta(UnixDiagRQLen, u32s(11, 12)...),
			rta(UnixDiagVFS, u32s(99, 0x800003)...),
			rta(UnixDiagIcons, u32s(7, 8, 9)...),
			rta(UnixDiagShutdown, 1),
			rta(UnixDiagMemInfo, u32s(1, 2, 3, 4, 5, 6, 7, 8, 9)...),
			rta(UnixDiagUID, u32s(65534)...),
			rta(99, 1),
		), func(t *testing.T, s Socket) {
			if s.Type != unix.SOCK_SEQPACKET || s.PeerInode != 6 || s.RecvQ != 11 || s.SendQ != 12 {
				t.Errorf("type %d peer %d queues %d/%d", s.Type, s.PeerInode, s.RecvQ, s.SendQ)
			}
			if s.VFSInode != 99 || s.VFSDev != 0x800003 {
				t.Errorf("vfs %d %#x", s.VFSInode, s.VFSDev)
			}
			if !reflect.DeepEqual(s.Icons, []uint32{7, 8, 9}) || len(s.MemInfo) != 9 || s.MemInfo[8] != 9 {
				t.Errorf("icons %v meminfo %v", s.Icons, s.MemInfo)
			}
			if !s.HasShutdown || s.Shutdown != 1 || s.UID != 65534 {
				t.Errorf("shutdown %v %d uid %d", s.HasShutdown, s.Shutdown, s.UID)
			}
			if s.Path != "" {
				t.Errorf("path %q", s.Path)
			}
		}},
		{"empty icons", unixMsg(unix.SOCK_STREAM, StateListen, 5, 0, rta(UnixDiagIcons)), func(t *testing.T, s Socket) {
			if s.Icons == nil || len(s.Icons) != 0 {
				t.Errorf("icons %#v, want empty non-nil", s.Icons)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeUnix(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestDecodeUnixErrors(t *testing.T) {
	full := unixMsg(unix.SOCK_STREAM, StateListen, 1, 0)
	for n := 0; n < unixDiagMsgLen; n++ {
		if _, err := DecodeUnix(full[:n]); err == nil {
			t.Errorf("%d bytes: no error", n)
		}
	}
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"attribute overruns", append(full[:len(full):len(full)], 200, 0, 0, 0, 1, 2), "claims 200 bytes"},
		{"short peer", unixMsg(1, 1, 1, 0, rta(UnixDiagPeer, 1)), "attribute 2 has 1 bytes"},
		{"short rqlen", unixMsg(1, 1, 1, 0, rta(UnixDiagRQLen, u32s(1)...)), "attribute 4 has 4 bytes"},
		{"short vfs", unixMsg(1, 1, 1, 0, rta(UnixDiagVFS, 1, 2, 3, 4, 5)), "attribute 1 has 5 bytes"},
		{"empty shutdown", unixMsg(1, 1, 1, 0, rta(UnixDiagShutdown)), "attribute 6 has 0 bytes"},
		{"short uid", unixMsg(1, 1, 1, 0, rta(UnixDiagUID, 1, 2, 3)), "attribute 7 has 3 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeUnix(tt.msg)
			if err == nil {
				t.Fatalf("no error, got %+v", s)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "decoding unix_diag_msg: ") {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestBuildRequest(t *testing.T) {
	b, err := buildRequest(DumpRequest{Family: unix.AF_INET6, Protocol: unix.IPPROTO_UDP, Ext: 1 << (InetDiagInfo - 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != unix.SOCK_DIAG_BY_FAMILY ||
		ne.Uint16(b[6:]) != unix.NLM_F_REQUEST|unix.NLM_F_DUMP {
		t.Fatalf("bad header % x", b[:16])
	}
	r := b[16:]
	want := make([]byte, 56)
	want[0], want[1], want[2] = unix.AF_INET6, unix.IPPROTO_UDP, 2
	copy(want[4:], u32s(0xffffffff))
	copy(want[48:], u32s(0xffffffff, 0xffffffff))
	if !bytes.Equal(r, want) {
		t.Errorf("inet_diag_req_v2\n got % x\nwant % x", r, want)
	}

	b, err = buildRequest(DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 1 << StateListen})
	if err != nil || ne.Uint32(b[16+4:]) != 1<<StateListen {
		t.Errorf("states: %v % x", err, b)
	}

	b, err = buildRequest(DumpRequest{Family: unix.AF_UNIX, UnixShow: UDiagShowVFS | UDiagShowUID})
	if err != nil {
		t.Fatal(err)
	}
	want = make([]byte, 24)
	want[0] = unix.AF_UNIX
	copy(want[4:], u32s(0xffffffff))
	copy(want[12:], u32s(UDiagShowName|UDiagShowPeer|UDiagShowRQLen|UDiagShowVFS|UDiagShowUID))
	if len(b) != 40 || ne.Uint32(b) != 40 || !bytes.Equal(b[16:], want) {
		t.Errorf("unix_diag_req\n got % x\nwant % x", b[16:], want)
	}

	if _, err := buildRequest(DumpRequest{Family: unix.AF_VSOCK}); err == nil {
		t.Error("AF_VSOCK: no error")
	}
}

// recvResult is one scripted answer of a fake netlink socket.
type recvResult struct {
	data []byte // datagram (may be longer than the buffer: truncated)
	err  error
}

type fakeConn struct {
	f      *fakeKernel
	script []recvResult
}

func (c *fakeConn) send(req []byte) error {
	c.f.sent = append(c.f.sent, append([]byte(nil), req...))
	return nil
}

func (c *fakeConn) recv(buf []byte) (int, error) {
	if len(c.script) == 0 {
		return 0, nil
	}
	r := c.script[0]
	c.script = c.script[1:]
	c.f.bufSizes = append(c.f.bufSizes, len(buf))
	if r.err != nil {
		return 0, r.err
	}
	copy(buf, r.data)
	return len(r.data), nil
}

func (c *fakeConn) close() error { c.f.closed++; return nil }

// fakeKernel serves one script per connection opened.
type fakeKernel struct {
	attempts [][]recvResult
	opened   int
	closed   int
	sent     [][]byte
	bufSizes []int
}

func (f *fakeKernel) open() (dumpConn, error) {
	if f.opened >= len(f.attempts) {
		return nil, errors.New("fake: no more connections")
	}
	f.opened++
	return &fakeConn{f: f, script: f.attempts[f.opened-1]}, nil
}

// dg joins messages into one datagram.
func dg(msgs ...[]byte) recvResult { return recvResult{data: bytes.Join(msgs, nil)} }

func sockMsg(inode uint32, flags uint16) []byte {
	m := baseV4()
	m.inode = inode
	return nlmsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI|flags, dumpRequestSeq, m.encode(rta(InetDiagShutdown, 0)))
}

func doneMsg(code int32, flags uint16) []byte {
	return nlmsg(unix.NLMSG_DONE, unix.NLM_F_MULTI|flags, dumpRequestSeq, u32s(uint32(code)))
}

func errMsg(code int32) []byte {
	return nlmsg(unix.NLMSG_ERROR, 0, dumpRequestSeq, append(u32s(uint32(code)), make([]byte, 16)...))
}

func TestRunDump(t *testing.T) {
	ok := []recvResult{dg(sockMsg(1, 0), sockMsg(2, 0)), dg(sockMsg(3, 0)), dg(doneMsg(0, 0))}
	intr := []recvResult{dg(sockMsg(1, 0)), dg(sockMsg(9, unix.NLM_F_DUMP_INTR))}
	nobufs := []recvResult{dg(sockMsg(1, 0)), {err: unix.ENOBUFS}}
	big := recvResult{data: bytes.Join([][]byte{bytes.Repeat(sockMsg(1, 0), recvBufSize/90), doneMsg(0, 0)}, nil)}
	tests := []struct {
		name       string
		attempts   [][]recvResult
		wantInodes []uint32
		wantErr    string
		wantErrIs  error
		wantOpened int
	}{
		{"clean", [][]recvResult{ok}, []uint32{1, 2, 3}, "", nil, 1},
		{"done in same datagram", [][]recvResult{{dg(sockMsg(4, 0), doneMsg(0, 0))}}, []uint32{4}, "", nil, 1},
		{"empty dump", [][]recvResult{{dg(doneMsg(0, 0))}}, nil, "", nil, 1},
		{"EINTR is retried in place", [][]recvResult{{dg(sockMsg(1, 0)), {err: unix.EINTR}, dg(doneMsg(0, 0))}}, []uint32{1}, "", nil, 1},
		{"DUMP_INTR restarts", [][]recvResult{intr, ok}, []uint32{1, 2, 3}, "", nil, 2},
		{"DUMP_INTR on DONE restarts", [][]recvResult{{dg(sockMsg(1, 0), doneMsg(0, unix.NLM_F_DUMP_INTR))}, ok}, []uint32{1, 2, 3}, "", nil, 2},
		{"ENOBUFS restarts", [][]recvResult{nobufs, nobufs, ok}, []uint32{1, 2, 3}, "", nil, 3},
		{"ENOBUFS error message restarts", [][]recvResult{{dg(errMsg(-int32(unix.ENOBUFS)))}, ok}, []uint32{1, 2, 3}, "", nil, 2},
		{"overrun restarts", [][]recvResult{{dg(nlmsg(unix.NLMSG_OVERRUN, 0, dumpRequestSeq, nil))}, ok}, []uint32{1, 2, 3}, "", nil, 2},
		{"truncated datagram restarts with a bigger buffer", [][]recvResult{{big}, {big}}, nil, "", nil, 2},
		{"gives up after 5 tries", [][]recvResult{intr, nobufs, intr, intr, intr, ok}, nil, "giving up after 5 tries", errDumpInterrupted, 5},
		{"gives up on ENOBUFS", [][]recvResult{nobufs, nobufs, nobufs, nobufs, nobufs, ok}, nil, "giving up after 5 tries", unix.ENOBUFS, 5},
		{"NLMSG_ERROR", [][]recvResult{{dg(sockMsg(1, 0)), dg(errMsg(-int32(unix.ENOENT)))}}, nil, "no such file", unix.ENOENT, 1},
		{"ack is ignored", [][]recvResult{{dg(errMsg(0), sockMsg(1, 0), doneMsg(0, 0))}}, []uint32{1}, "", nil, 1},
		{"DONE with error", [][]recvResult{{dg(sockMsg(1, 0), doneMsg(-int32(unix.EINVAL), 0))}}, nil, "dump ended with error", unix.EINVAL, 1},
		{"other sequence numbers are ignored", [][]recvResult{{dg(nlmsg(unix.SOCK_DIAG_BY_FAMILY, 0, 77, nil), nlmsg(unix.NLMSG_DONE, 0, 77, nil)), dg(sockMsg(5, 0), doneMsg(0, 0))}}, []uint32{5}, "", nil, 1},
		{"noop is ignored", [][]recvResult{{dg(nlmsg(unix.NLMSG_NOOP, 0, dumpRequestSeq, nil), sockMsg(6, 0), doneMsg(0, 0))}}, []uint32{6}, "", nil, 1},
		{"DONE without payload", [][]recvResult{{dg(sockMsg(7, 0), nlmsg(unix.NLMSG_DONE, 0, dumpRequestSeq, nil))}}, []uint32{7}, "", nil, 1},
		{"receive error", [][]recvResult{{{err: unix.EBADF}}}, nil, "receiving sock_diag reply: bad file descriptor", unix.EBADF, 1},
		{"end of stream before DONE", [][]recvResult{{dg(sockMsg(1, 0))}}, nil, "connection closed before NLMSG_DONE", nil, 1},
		{"short header", [][]recvResult{{{data: make([]byte, 10)}}}, nil, "too short for a netlink header", nil, 1},
		{"message longer than datagram", [][]recvResult{{{data: sockMsg(1, 0)[:40]}}}, nil, "claims", nil, 1},
		{"bad socket message", [][]recvResult{{dg(nlmsg(unix.SOCK_DIAG_BY_FAMILY, 0, dumpRequestSeq, make([]byte, 20)))}}, nil, "decoding inet_diag_msg: 20 bytes", nil, 1},
		{"truncated error message", [][]recvResult{{dg(nlmsg(unix.NLMSG_ERROR, 0, dumpRequestSeq, nil))}}, nil, "truncated NLMSG_ERROR", nil, 1},
		{"cannot open", nil, nil, "opening sock_diag socket: fake", nil, 0},
	}
	req, err := buildRequest(DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeKernel{attempts: tt.attempts}
			prev := []Socket{{Inode: 100}}
			var raw [][]byte
			out, err := dumpWith(f.open, prev, DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP,
				Raw: func(m []byte) { raw = append(raw, append([]byte(nil), m...)) }}, req, 4026531840)
			if f.opened != tt.wantOpened || f.closed != f.opened {
				t.Errorf("opened %d closed %d, want %d", f.opened, f.closed, tt.wantOpened)
			}
			for _, s := range f.sent {
				if !bytes.Equal(s, req) {
					t.Errorf("sent % x", s)
				}
			}
			if tt.wantErr != "" || tt.wantErrIs != nil {
				if err == nil {
					t.Fatalf("no error, got %d sockets", len(out))
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want %q", err, tt.wantErr)
				}
				if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
					t.Errorf("error %q is not %v", err, tt.wantErrIs)
				}
				if len(out) != 1 || raw != nil {
					t.Errorf("on error got %d sockets, %d raw messages", len(out), len(raw))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out[0].Inode != 100 {
				t.Errorf("dst element changed: %+v", out[0])
			}
			var got []uint32
			for _, s := range out[1:] {
				got = append(got, s.Inode)
				if s.NetNS != 4026531840 || s.Local != v4Local || !s.HasShutdown {
					t.Errorf("socket %+v", s)
				}
			}
			if tt.name == "truncated datagram restarts with a bigger buffer" {
				if len(got) != recvBufSize/90 || f.bufSizes[1] < len(big.data) {
					t.Errorf("got %d sockets, buffer sizes %v", len(got), f.bufSizes)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.wantInodes) {
				t.Errorf("inodes %v, want %v", got, tt.wantInodes)
			}
			// Raw sees the messages of the successful attempt only, DONE last.
			if len(raw) != len(tt.wantInodes)+1 || ne.Uint16(raw[len(raw)-1][4:]) != unix.NLMSG_DONE {
				t.Errorf("%d raw messages", len(raw))
			}
			for i, m := range raw[:len(raw)-1] {
				if ne.Uint32(m[nlmsgHdrLen+68:]) != tt.wantInodes[i] || int(ne.Uint32(m)) != len(m) {
					t.Errorf("raw message %d: % x", i, m)
				}
			}
		})
	}
}

// The kernel lists bound-only TCP sockets in TCP_CLOSE when asked for bit 13;
// Dump reports them as StateBoundInactive, and only then.
func TestDumpBoundInactive(t *testing.T) {
	closed := func(family uint8) []byte {
		m := inetMsg{family: family, state: StateClose, src: v4Local}
		if family == unix.AF_INET6 {
			m.src = v6Local
		}
		return nlmsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, dumpRequestSeq, m.encode())
	}
	for _, tt := range []struct {
		req  DumpRequest
		want uint8
	}{
		{DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}, StateBoundInactive},
		{DumpRequest{Family: unix.AF_INET6, Protocol: unix.IPPROTO_TCP, States: 1 << StateBoundInactive}, StateBoundInactive},
		{DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 0xfff}, StateClose},
		{DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_UDP}, StateClose},
	} {
		msg, err := buildRequest(tt.req)
		if err != nil {
			t.Fatal(err)
		}
		f := &fakeKernel{attempts: [][]recvResult{{dg(closed(tt.req.Family), doneMsg(0, 0))}}}
		out, err := dumpWith(f.open, nil, tt.req, msg, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].State != tt.want {
			t.Errorf("%s states %#x: got %+v, want state %d", dumpName(tt.req.Family, tt.req.Protocol), tt.req.States, out, tt.want)
		}
	}
	// DecodeInet keeps what the kernel said.
	if s, err := DecodeInet(closed(unix.AF_INET)[nlmsgHdrLen:], unix.IPPROTO_TCP); err != nil || s.State != StateClose {
		t.Errorf("DecodeInet: state %d, %v", s.State, err)
	}
}

// DumpAppend into a slice whose spare capacity holds old rows: the new rows
// come out clean, the old ones before len(dst) untouched.
func TestDumpAppendReusesCapacity(t *testing.T) {
	dst := make([]Socket, 100)
	for i := range dst {
		dst[i] = Socket{Inode: uint32(1000 + i), Path: "stale", Mark: 7, TCPInfo: []byte{1}}
	}
	dst = dst[:2]
	req := DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}
	msg, _ := buildRequest(req)
	f := &fakeKernel{attempts: [][]recvResult{intrAttempt(), {dg(sockMsg(1, 0), sockMsg(2, 0), doneMsg(0, 0))}}}
	out, err := dumpWith(f.open, dst, req, msg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 || &out[0] != &dst[0] || out[0].Inode != 1000 || out[1].Inode != 1001 {
		t.Fatalf("got %d rows, first %+v", len(out), out[0])
	}
	for _, s := range out[2:] {
		if s.Path != "" || s.Mark != 0 || s.TCPInfo != nil {
			t.Errorf("stale fields in %+v", s)
		}
	}
}

func intrAttempt() []recvResult {
	return []recvResult{dg(sockMsg(1, 0)), dg(sockMsg(9, unix.NLM_F_DUMP_INTR))}
}

func TestDumpName(t *testing.T) {
	for _, tt := range []struct {
		f    uint8
		p    uint16
		want string
	}{
		{unix.AF_INET, unix.IPPROTO_TCP, "tcp/ipv4"},
		{unix.AF_INET6, unix.IPPROTO_UDP, "udp/ipv6"},
		{unix.AF_UNIX, 0, "unix"},
		{unix.AF_INET6, unix.IPPROTO_MPTCP, "mptcp/ipv6"},
		{unix.AF_INET, unix.IPPROTO_RAW, "raw/ipv4"},
		{unix.AF_NETLINK, 0, "netlink"},
		{unix.AF_PACKET, 0, "packet"},
		{unix.AF_INET, 300, "proto300/ipv4"},
	} {
		if got := dumpName(tt.f, tt.p); got != tt.want {
			t.Errorf("dumpName(%d, %d) = %q, want %q", tt.f, tt.p, got, tt.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(baseV4().encode(), true)
	f.Add(inetMsg{family: unix.AF_INET6, src: v6Local, dst: v6Peer}.encode(
		rta(InetDiagSkMemInfo, u32s(1, 2, 3, 4, 5, 6, 7, 8, 9)...),
		rta(InetDiagInfo, make([]byte, 232)...),
		rta(InetDiagCong, 'b', 'b', 'r', 0),
		rta(InetDiagShutdown, 0), rta(InetDiagSkV6Only, 1), rta(InetDiagMark, u32s(1)...),
		rta(InetDiagCgroupID, u64(5)...), rta(InetDiagProtocol, 6), rta(InetDiagVegasInfo, u32s(1, 2, 3, 4)...)), true)
	f.Add(unixMsg(unix.SOCK_STREAM, StateListen, 1, 2, rta(UnixDiagName, 0, 'a', 0),
		rta(UnixDiagPeer, u32s(3)...), rta(UnixDiagRQLen, u32s(1, 2)...), rta(UnixDiagVFS, u32s(1, 2)...),
		rta(UnixDiagIcons, u32s(4, 5)...), rta(UnixDiagMemInfo, u32s(1, 2, 3)...), rta(UnixDiagShutdown, 2),
		rta(UnixDiagUID, u32s(0)...)), false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, inet bool) {
		if inet {
			s, err := DecodeInet(b, unix.IPPROTO_TCP)
			if err == nil && len(b) < inetDiagMsgLen {
				t.Fatalf("short input accepted: %+v", s)
			}
			var a arena
			var s2 Socket
			err2 := decodeInet(&s2, b, unix.IPPROTO_TCP, &a)
			if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(s, s2)) {
				t.Fatalf("arena decoding differs: %v %v", err, err2)
			}
		} else {
			s, err := DecodeUnix(b)
			if err == nil && len(b) < unixDiagMsgLen {
				t.Fatalf("short input accepted: %+v", s)
			}
			var a arena
			var s2 Socket
			err2 := decodeUnix(&s2, b, &a)
			if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(s, s2)) {
				t.Fatalf("arena decoding differs: %v %v", err, err2)
			}
		}
		// The dump loop must not panic on a datagram made of this payload
		// either.
		h := &decodeHandler{family: unix.AF_INET, protocol: unix.IPPROTO_TCP}
		if !inet {
			h.family = unix.AF_UNIX
		}
		walkMessages(b, dumpRequestSeq, h)
		walkMessages(nlmsg(unix.SOCK_DIAG_BY_FAMILY, 0, dumpRequestSeq, b), dumpRequestSeq, h)
	})
}

// benchMsg is a typical `ss -tni` answer: tcp_info, congestion control,
// skmeminfo and the attributes the kernel always adds.
func benchMsg() []byte {
	return inetMsg{family: unix.AF_INET6, state: StateEstablished, src: v6Local, dst: v6Peer, cookie: 12345, inode: 99}.encode(
		rta(InetDiagSkMemInfo, u32s(1, 2, 3, 4, 5, 6, 7, 8, 9)...),
		rta(InetDiagInfo, make([]byte, 280)...),
		rta(InetDiagCong, 'c', 'u', 'b', 'i', 'c', 0),
		rta(InetDiagShutdown, 0), rta(InetDiagSkV6Only, 0),
		rta(InetDiagCgroupID, u64(5)...), rta(InetDiagSockOpt, 0, 0))
}

func BenchmarkDecodeInet(b *testing.B) {
	for _, bc := range []struct {
		name string
		msg  []byte
	}{
		{"plain", inetMsg{family: unix.AF_INET, state: StateEstablished, src: v4Local, dst: v4Peer}.encode(
			rta(InetDiagShutdown, 0), rta(InetDiagCgroupID, u64(5)...), rta(InetDiagSockOpt, 0, 0))},
		{"info", benchMsg()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				if _, err := DecodeInet(bc.msg, unix.IPPROTO_TCP); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What Dump does: decode into a preallocated slice, copying
		// attribute payloads into an arena.
		b.Run(bc.name+"/arena", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			var a arena
			out := make([]Socket, 1024)
			i := 0
			for b.Loop() {
				if i == len(out) {
					clear(out)
					i = 0
				}
				if err := decodeInet(&out[i], bc.msg, unix.IPPROTO_TCP, &a); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
