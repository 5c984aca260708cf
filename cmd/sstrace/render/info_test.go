package render

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"sstrace/snapshot"
)

// What glibc's printf("%g") and printf("%.3g") print (from a C program on
// this system; appendG was also checked against 200000 random values).
func TestAppendG(t *testing.T) {
	cases := []struct {
		v       float64
		g, g3   string
		comment string
	}{
		{0, "0", "0", ""},
		{0.001, "0.001", "0.001", ""},
		{0.0001, "0.0001", "0.0001", "exponent -4: still fixed"},
		{0.00001, "1e-05", "1e-05", "exponent -5: exponent form"},
		{0.000123456, "0.000123456", "0.000123", ""},
		{0.5, "0.5", "0.5", ""},
		{1, "1", "1", ""},
		{0.027, "0.027", "0.027", ""},
		{5.405, "5.405", "5.41", ""},
		{10.787, "10.787", "10.8", ""},
		{204, "204", "204", ""},
		{739 / 256.0, "2.88672", "2.89", "BBR's high gain"},
		{100, "100", "100", ""},
		{123456, "123456", "1.23e+05", ""},
		{1234567, "1.23457e+06", "1.23e+06", ""},
		{999999.4, "999999", "1e+06", ""},
		{999999.5, "1e+06", "1e+06", "rounding carries into the exponent"},
		{9999995, "1e+07", "1e+07", ""},
		{1e15, "1e+15", "1e+15", ""},
		{1e21, "1e+21", "1e+21", ""},
		{0.1, "0.1", "0.1", ""},
		{999.5, "999.5", "1e+03", "%.3g: ties to even on the exact binary value"},
		{1000.5, "1000.5", "1e+03", ""},
		{21.8273, "21.8273", "21.8", ""},
		{0.015, "0.015", "0.015", ""},
		{2.5e-05, "2.5e-05", "2.5e-05", ""},
		{123.456789, "123.457", "123", ""},
		{-0.5, "-0.5", "-0.5", ""},
		{math.Inf(1), "inf", "inf", ""},
	}
	for _, c := range cases {
		if got := string(appendG(nil, c.v, 6)); got != c.g {
			t.Errorf("%%g of %v = %q, want %q %s", c.v, got, c.g, c.comment)
		}
		if got := string(appendG(nil, c.v, 3)); got != c.g3 {
			t.Errorf("%%.3g of %v = %q, want %q %s", c.v, got, c.g3, c.comment)
		}
	}
}

// sprint_bw: "%.0f" with -n, else three digits and a prefix (999.5 kbit/s
// rounds up to "1e+03k", as ss prints it).
func TestAppendBw(t *testing.T) {
	cases := []struct {
		bw      float64
		numeric bool
		want    string
	}{
		{0, false, "0"},
		{999, false, "999"},
		{1000, false, "1k"},
		{999500, false, "1e+03k"},
		{1.5e6, false, "1.5M"},
		{21827328128, false, "21.8G"},
		{2.49517099808e12, false, "2.5T"},
		{1e15, false, "1e+03T"},
		{21827328128, true, "21827328128"},
		{0.5, true, "0"},
		{1.5, true, "2"},
	}
	for _, c := range cases {
		if got := string(appendBw(nil, c.bw, c.numeric)); got != c.want {
			t.Errorf("sprint_bw(%v, numeric %v) = %q, want %q", c.bw, c.numeric, got, c.want)
		}
	}
}

// tcpInfoBytes builds a struct tcp_info of n bytes with the given fields
// (offset → value; the value's size is the field's).
type tiField struct {
	off  int
	size int
	v    uint64
}

func tcpInfoBytes(n int, fields ...tiField) []byte {
	b := make([]byte, max(n, 280))
	ne := binary.NativeEndian
	for _, f := range fields {
		switch f.size {
		case 1:
			b[f.off] = byte(f.v)
		case 2:
			ne.PutUint16(b[f.off:], uint16(f.v))
		case 4:
			ne.PutUint32(b[f.off:], uint32(f.v))
		default:
			ne.PutUint64(b[f.off:], f.v)
		}
	}
	return b[:n]
}

// busyInfo is a tcp_info with every field ss prints set.
func busyInfo(n int) []byte {
	wscale := byte(7 | 9<<4)
	if bigEndian {
		wscale = 7<<4 | 9
	}
	return tcpInfoBytes(n,
		tiField{tiState, 1, 1}, tiField{tiBackoff, 1, 2},
		tiField{tiOptions, 1, tcpiOptTimestamps | tcpiOptSack | tcpiOptWscale | tcpiOptECN | tcpiOptECNSeen | tcpiOptSynData},
		tiField{tiWscale, 1, uint64(wscale)}, tiField{tiAppLimited, 1, 1},
		tiField{tiRTO, 4, 204000}, tiField{tiATO, 4, 40000}, tiField{tiSndMSS, 4, 1448}, tiField{tiRcvMSS, 4, 536},
		tiField{tiUnacked, 4, 3}, tiField{tiSacked, 4, 1}, tiField{tiLost, 4, 2}, tiField{tiRetrans, 4, 1}, tiField{tiFackets, 4, 4},
		tiField{tiLastDataSent, 4, 12}, tiField{tiLastDataRecv, 4, 34}, tiField{tiLastAckRecv, 4, 56},
		tiField{tiPMTU, 4, 1500}, tiField{tiRcvSsthresh, 4, 64076}, tiField{tiRTT, 4, 25123}, tiField{tiRTTVar, 4, 4567},
		tiField{tiSndSsthresh, 4, 20}, tiField{tiSndCwnd, 4, 10}, tiField{tiAdvMSS, 4, 1460}, tiField{tiReordering, 4, 5},
		tiField{tiRcvRTT, 4, 30000}, tiField{tiRcvSpace, 4, 14600}, tiField{tiTotalRetrans, 4, 7},
		tiField{tiPacingRate, 8, 1152000}, tiField{tiMaxPacingRate, 8, 125000000},
		tiField{tiBytesAcked, 8, 123456789}, tiField{tiBytesReceived, 8, 987654}, tiField{tiSegsOut, 4, 1000}, tiField{tiSegsIn, 4, 900},
		tiField{tiNotsentBytes, 4, 4096}, tiField{tiMinRTT, 4, 20001}, tiField{tiDataSegsIn, 4, 800}, tiField{tiDataSegsOut, 4, 950},
		tiField{tiDeliveryRate, 8, 575000}, tiField{tiBusyTime, 8, 1234567}, tiField{tiRwndLimited, 8, 123456}, tiField{tiSndbufLimited, 8, 5000},
		tiField{tiDelivered, 4, 940}, tiField{tiDeliveredCE, 4, 3},
		tiField{tiBytesSent, 8, 123470000}, tiField{tiBytesRetrans, 8, 14000}, tiField{tiDsackDups, 4, 2}, tiField{tiReordSeen, 4, 6},
		tiField{tiRcvOoopack, 4, 9}, tiField{tiSndWnd, 4, 65535},
		tiField{tiRcvWnd, 4, 131072}, tiField{tiRehash, 4, 1}, tiField{tiTotalRTO, 2, 2}, tiField{tiTotalRTORecov, 2, 1},
		tiField{tiTotalRTOTime, 4, 300}, tiField{tiReceivedCE, 4, 4})
}

func ccBytes(words ...uint32) []byte {
	b := make([]byte, 4*len(words))
	for i, w := range words {
		binary.NativeEndian.PutUint32(b[4*i:], w)
	}
	return b
}

func dctcpBytes(enabled, ceState uint16, alpha, abECN, abTot uint32) []byte {
	b := make([]byte, 16)
	ne := binary.NativeEndian
	ne.PutUint16(b, enabled)
	ne.PutUint16(b[2:], ceState)
	ne.PutUint32(b[4:], alpha)
	ne.PutUint32(b[8:], abECN)
	ne.PutUint32(b[12:], abTot)
	return b
}

func mptcpInfoBytes(n int) []byte {
	b := make([]byte, 96)
	ne := binary.NativeEndian
	b[miSubflows], b[miAddAddrSignal], b[miAddAddrAccepted] = 1, 2, 3
	b[miSubflowsMax], b[miAddAddrSignalMax], b[miAddAddrAcceptedMax] = 4, 5, 6
	ne.PutUint32(b[miFlags:], mptcpInfoFlagFallback|mptcpInfoFlagRemKey)
	ne.PutUint32(b[miToken:], 0x1ad54b47)
	ne.PutUint64(b[miWriteSeq:], 0xc0b47d1813217c9f)
	ne.PutUint64(b[miSndUna:], 0xc0b47d1813217000)
	ne.PutUint64(b[miRcvNxt:], 0x54fc8770c75b215b)
	b[miLocalAddrUsed], b[miLocalAddrMax], b[miCsumEnabled] = 1, 2, 1
	ne.PutUint32(b[miRetransmits:], 3)
	ne.PutUint64(b[miBytesRetrans:], 1000)
	ne.PutUint64(b[miBytesSent:], 2000)
	ne.PutUint64(b[miBytesReceived:], 3000)
	ne.PutUint64(b[miBytesAcked:], 1999)
	b[miSubflowsTotal] = 2
	ne.PutUint32(b[miLastDataSent:], 10)
	ne.PutUint32(b[miLastDataRecv:], 20)
	ne.PutUint32(b[miLastAckRecv:], 30)
	return b[:n]
}

// nlattr encodes one netlink attribute (padded).
func nlattr(typ uint16, payload []byte) []byte {
	b := make([]byte, 4, 4+len(payload)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(payload)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32b(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u16b(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// mptcpSubflowULP is an INET_DIAG_ULP_INFO of an MPTCP subflow.
func mptcpSubflowULP() []byte {
	return join(nlattr(ulpInfoName, []byte("mptcp\x00")), nlattr(ulpInfoMPTCP, join(
		nlattr(sfFlags, u32b(1|2|64|128)),
		nlattr(sfTokenRem, u32b(0)), nlattr(sfTokenLoc, u32b(0x6c8f54f0)),
		nlattr(sfIDRem, []byte{0}), nlattr(sfIDLoc, []byte{1}),
		nlattr(sfMapSeq, binary.NativeEndian.AppendUint64(nil, 0xc2e9faad6f8aaf91)),
		nlattr(sfMapSfseq, u32b(1)), nlattr(sfSsnOffset, u32b(0x35d45099)), nlattr(sfMapDatalen, u32b(0x56c)),
		nlattr(sfMax+1, u32b(99)), // newer attributes: ignored
	)))
}

func tlsULP(version, cipher, rx, tx uint16, zc bool) []byte {
	inner := join(nlattr(tlsInfoVersion, u16b(version)), nlattr(tlsInfoCipher, u16b(cipher)),
		nlattr(tlsInfoTxConf, u16b(tx)), nlattr(tlsInfoRxConf, u16b(rx)))
	if zc {
		inner = append(inner, nlattr(tlsInfoZcRoTx, nil)...)
	}
	return join(nlattr(ulpInfoName, []byte("tls\x00")), nlattr(ulpInfoTLS, inner))
}

func skmem(n int) []uint32 {
	return []uint32{100, 131072, 200, 16384, 4096, 300, 40, 1, 2}[:n]
}

// infoSockets are TCP, UDP, raw and MPTCP sockets with -i and -m data.
func infoSockets() []snapshot.Socket {
	tcp := func(state uint8, local, peer string) snapshot.Socket {
		return snapshot.Socket{Family: afInet, Type: sockStream, Protocol: ipprotoTCP, State: state,
			Local: ap(local), Peer: ap(peer), Inode: 5000, Cookie: 0x50, HasShutdown: true}
	}
	busy := tcp(snapshot.StateEstablished, "10.0.0.1:22", "10.0.0.2:50000")
	busy.TCPInfo, busy.CongAlg, busy.MemInfo = busyInfo(280), "cubic", skmem(9)
	busy.Timer, busy.Expires = 1, 204

	bbr := tcp(snapshot.StateEstablished, "10.0.0.1:443", "10.0.0.3:50001")
	bbr.TCPInfo, bbr.CongAlg, bbr.MemInfo = busyInfo(232), "bbr", skmem(8)
	bbr.CCInfoType, bbr.CCInfo = ccBBR, ccBytes(0x5d8e5c40, 0x1, 12000, 739, 512)

	dctcp := tcp(snapshot.StateEstablished, "10.0.0.1:80", "10.0.0.4:50002")
	dctcp.TCPInfo, dctcp.CongAlg = busyInfo(232), "dctcp"
	dctcp.CCInfoType, dctcp.CCInfo = ccDCTCP, dctcpBytes(1, 2, 1024, 30, 4000)

	fallback := tcp(snapshot.StateEstablished, "10.0.0.1:81", "10.0.0.4:50003")
	fallback.TCPInfo, fallback.CongAlg = busyInfo(232), "dctcp"
	fallback.CCInfoType, fallback.CCInfo = ccDCTCP, dctcpBytes(0, 0, 0, 0, 0)

	// Vegas's RTT (90ms) replaces tcpi_rtt in the send rate.
	vegas := tcp(snapshot.StateEstablished, "10.0.0.1:82", "10.0.0.4:50004")
	vegas.TCPInfo, vegas.CongAlg = busyInfo(232), "vegas"
	vegas.CCInfoType, vegas.CCInfo = ccVegas, ccBytes(1, 10, 90000, 20000)

	// A kernel older than ss: 104 bytes, up to total_retrans; the
	// sentinels ss leaves out (rto 3s, ssthresh ≥ 0xFFFF, reordering 3).
	old := tcp(snapshot.StateEstablished, "10.0.0.1:83", "10.0.0.4:50005")
	old.TCPInfo = tcpInfoBytes(104, tiField{tiRTO, 4, 3000000}, tiField{tiSndSsthresh, 4, 0x7fffffff},
		tiField{tiReordering, 4, 3}, tiField{tiSndMSS, 4, 536}, tiField{tiSndCwnd, 4, 2}, tiField{tiRTT, 4, 1000},
		tiField{tiPacingRate, 8, ^uint64(0)}, tiField{tiSacked, 4, 0})
	old.CongAlg = "a-very-long-congestion-name"

	// A listener: no sacked:, pacing rate without its maximum.
	listen := tcp(snapshot.StateListen, "0.0.0.0:22", "0.0.0.0:0")
	listen.TCPInfo = tcpInfoBytes(232, tiField{tiSacked, 4, 128}, tiField{tiReordering, 4, 3}, tiField{tiSndCwnd, 4, 10},
		tiField{tiPacingRate, 8, 1000}, tiField{tiMaxPacingRate, 8, ^uint64(0)}, tiField{tiMinRTT, 4, 0xffffffff})
	listen.CongAlg, listen.MemInfo = "bbr", skmem(7)

	// An MPTCP subflow and a kTLS socket (ULP details).
	subflow := tcp(snapshot.StateEstablished, "127.0.0.1:8443", "127.0.0.1:41370")
	subflow.Cookie, subflow.TCPInfo, subflow.CongAlg = 0x51, tcpInfoBytes(232, tiField{tiReordering, 4, 3}), "bbr"
	ktls := tcp(snapshot.StateEstablished, "127.0.0.1:8444", "127.0.0.1:41371")
	ktls.Cookie, ktls.TCPInfo = 0x52, tcpInfoBytes(232, tiField{tiReordering, 4, 3})

	// A TIME-WAIT socket: no INET_DIAG_INFO at all.
	tw := tcp(snapshot.StateTimeWait, "10.0.0.1:22", "10.0.0.9:50009")
	tw.Inode, tw.Timer, tw.Expires = 0, 3, 59000

	udp := snapshot.Socket{Family: afInet6, Type: sockDgram, Protocol: ipprotoUDP, State: snapshot.StateClose,
		Local: ap("[::]:53"), Peer: ap("[::]:0"), Inode: 6000, Cookie: 0x60, HasV6Only: true, MemInfo: skmem(9)}

	// Raw sockets: from sock_diag (ICMP: "???", ICMPv6: "icmp6"), and
	// from /proc/net/raw ("raw": users only, whatever the options).
	rawICMP := snapshot.Socket{Family: afInet, Type: sockRaw, Protocol: 1, State: snapshot.StateClose,
		Local: ap("0.0.0.0:1"), Peer: ap("0.0.0.0:0"), Inode: 7000, Cookie: 0x70, MemInfo: skmem(9)}
	rawICMP6 := snapshot.Socket{Family: afInet6, Type: sockRaw, Protocol: ipprotoICMPv6, State: snapshot.StateClose,
		Local: ap("[::]:58"), Peer: ap("[::]:0"), Inode: 7001, Cookie: 0x71, MemInfo: skmem(9)}
	rawUDP := snapshot.Socket{Family: afInet, Type: sockRaw, Protocol: ipprotoUDP, State: snapshot.StateClose,
		Local: ap("0.0.0.0:17"), Peer: ap("0.0.0.0:0"), Inode: 7002, Cookie: 0x72, MemInfo: skmem(9)}
	rawProc := snapshot.Socket{Family: afInet, Type: sockRaw, Protocol: 0, State: snapshot.StateClose,
		Local: ap("0.0.0.0:255"), Peer: ap("0.0.0.0:0"), Inode: 7003, UID: 1000,
		Owners: []snapshot.Owner{{PID: 99, FD: 3, Comm: "ping"}}}
	rawUnknown := snapshot.Socket{Family: afInet, Type: sockRaw, Protocol: 253, State: snapshot.StateClose,
		Local: ap("0.0.0.0:253"), Peer: ap("0.0.0.0:0"), Inode: 7004}

	mptcp := func(state uint8, local, peer string) snapshot.Socket {
		return snapshot.Socket{Family: afInet, Type: sockStream, Protocol: ipprotoMPTCP, State: state,
			Local: ap(local), Peer: ap(peer), Inode: 8000, Cookie: 0x80, HasShutdown: true, MemInfo: skmem(9)}
	}
	mest := mptcp(snapshot.StateEstablished, "127.0.0.1:8443", "127.0.0.1:41370")
	mest.TCPInfo = mptcpInfoBytes(96)
	mold := mptcp(snapshot.StateEstablished, "127.0.0.1:80", "127.0.0.1:41371")
	mold.TCPInfo = mptcpInfoBytes(20) // up to the token's first bytes
	mlisten := mptcp(snapshot.StateListen, "127.0.0.1:8443", "0.0.0.0:0")
	mlisten.TCPInfo = mptcpInfoBytes(0)
	return []snapshot.Socket{busy, bbr, dctcp, fallback, vegas, old, listen, subflow, ktls, tw, udp,
		rawICMP, rawICMP6, rawUDP, rawProc, rawUnknown, mest, mold, mlisten}
}

// withULP feeds the ULP details of infoSockets' subflow and kTLS socket.
func withULP(t *testing.T) {
	old := tcpULPInfo
	m := map[uint64][]byte{0x51: mptcpSubflowULP(), 0x52: tlsULP(0x0304, 52, 2, 3, true)}
	tcpULPInfo = func(s *snapshot.Socket) []byte { return m[s.Cookie] }
	t.Cleanup(func() { tcpULPInfo = old })
}

func TestGoldenInfo(t *testing.T) {
	withULP(t)
	protos, err := ParseProtocols(strings.NewReader("ip 0 IP\nicmp 1 ICMP # comment\nudp 17 UDP\nipv6-icmp 58 IPv6-ICMP\nraw 255 RAW\nbad 300x\n"))
	if err != nil {
		t.Fatal(err)
	}
	base := Options{ShowNetid: true, ShowState: true, Header: true, Numeric: true, Protocols: protos}
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	cases := []struct {
		name string
		opt  Options
	}{
		{"info_i", with(func(o *Options) { o.Info = true })},
		{"info_m", with(func(o *Options) { o.Memory = true })},
		{"info_im", with(func(o *Options) { o.Info, o.Memory = true, true })},
		{"info_imO", with(func(o *Options) { o.Info, o.Memory, o.Oneline = true, true, true })},
		{"info_ieop", with(func(o *Options) { o.Info, o.Extended, o.Options, o.Processes = true, true, true, true })},
		{"info_names", with(func(o *Options) { o.Info, o.Numeric, o.Services = true, false, testServices(t) })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			golden(t, c.name, render(t, infoSockets(), c.opt))
		})
	}
}

// The lines of -i for hand-made tcp_info bytes, field by field.
func TestTCPInfoLine(t *testing.T) {
	s := infoSockets()[0] // busy, cubic, 280 bytes
	opt := Options{Numeric: true}
	got := string(appendTCPInfo(nil, &s, &opt))
	want := " cubic wscale:7,9 rto:204 backoff:2 rtt:25.123/4.567 ato:40 mss:1448 pmtu:1500 rcvmss:536 advmss:1460" +
		" cwnd:10 ssthresh:20 bytes_sent:123470000 bytes_retrans:14000 bytes_acked:123456789 bytes_received:987654" +
		" segs_out:1000 segs_in:900 data_segs_out:950 data_segs_in:800 send 4610914bps lastsnd:12 lastrcv:34 lastack:56" +
		" pacing_rate 9216000bps/1000000000bps delivery_rate 4600000bps delivered:940 delivered_ce:3 app_limited" +
		" busy:1234ms rwnd_limited:123ms(10.0%) sndbuf_limited:5ms(0.4%) unacked:3 retrans:1/7 lost:2 sacked:1" +
		" dsack_dups:2 fackets:4 reordering:5 reord_seen:6 rcv_rtt:30 rcv_space:14600 rcv_ssthresh:64076" +
		" notsent:4096 minrtt:20.001 rcv_ooopack:9 snd_wnd:65535"
	if got != want {
		t.Errorf("tcp_info line:\n got %q\nwant %q", got, want)
	}
	// -o adds the options, before the algorithm.
	opt.Options = true
	if got := string(appendTCPInfo(nil, &s, &opt)); !strings.HasPrefix(got, " ts sack ecn ecnseen fastopen cubic wscale:7,9 ") {
		t.Errorf("with -o: %q", got)
	}
	// Without -n, rates get prefixes.
	opt = Options{}
	if got := string(appendTCPInfo(nil, &s, &opt)); !strings.Contains(got, " send 4.61Mbps ") ||
		!strings.Contains(got, " pacing_rate 9.22Mbps/1Gbps ") || !strings.Contains(got, " delivery_rate 4.6Mbps ") {
		t.Errorf("without -n: %q", got)
	}
	// Shorter payloads read as zero-filled, as ss's memcpy into a zeroed
	// struct: a field cut short keeps the bytes that came.
	for n := 0; n <= tcpInfoLen61; n++ {
		s.TCPInfo = busyInfo(280)[:n]
		got := string(appendTCPInfo(nil, &s, &opt))
		if n <= tiSndWnd && strings.Contains(got, "snd_wnd") {
			t.Fatalf("%d bytes: snd_wnd printed: %q", n, got)
		}
		if n == tiSndWnd+1 && !bigEndian && !strings.HasSuffix(got, " snd_wnd:255") {
			t.Fatalf("%d bytes: %q", n, got)
		}
		if n == 0 && got != " cubic reordering:0" {
			t.Fatalf("0 bytes: %q", got)
		}
	}
}

func TestSkmem(t *testing.T) {
	for n, want := range map[int]string{
		0: " skmem:(r0,rb0,t0,tb0,f0,w0,o0)",
		7: " skmem:(r100,rb131072,t200,tb16384,f4096,w300,o40)",
		8: " skmem:(r100,rb131072,t200,tb16384,f4096,w300,o40,bl1)",
		9: " skmem:(r100,rb131072,t200,tb16384,f4096,w300,o40,bl1,d2)",
	} {
		if got := string(appendSkmem(nil, skmem(n))); got != want {
			t.Errorf("%d words: %q, want %q", n, got, want)
		}
	}
	long := append(skmem(9), 7, 8)
	if got := string(appendSkmem(nil, long)); got != " skmem:(r100,rb131072,t200,tb16384,f4096,w300,o40,bl1,d2)" {
		t.Errorf("11 words: %q", got)
	}
}

func TestULPInfo(t *testing.T) {
	cases := []struct {
		p    []byte
		want string
	}{
		{mptcpSubflowULP(), " tcp-ulp-mptcp flags:Mmec token:0000(id:0)/6c8f54f0(id:1) seq:c2e9faad6f8aaf91 sfseq:1 ssnoff:35d45099 maplen:56c"},
		{nlattr(ulpInfoName, []byte("mptcp\x00")), " tcp-ulp-mptcp"},
		{tlsULP(0x0303, 51, 1, 2, false), " tcp-ulp-tls version: 1.2 cipher: aes-gcm-128 rxconf: none txconf: sw"},
		{tlsULP(0x0304, 52, 3, 4, true), " tcp-ulp-tls version: 1.3 cipher: aes-gcm-256 rxconf: hw txconf: hw-record zc_ro_tx"},
		{tlsULP(0x0305, 53, 9, 0, false), " tcp-ulp-tls version: unknown(773) rxconf: unknown(9) txconf: unknown(0)"},
		// Only the first attribute of a type counts; a bad length ends
		// the walk.
		{join(nlattr(ulpInfoName, []byte("a\x00")), nlattr(ulpInfoName, []byte("b\x00"))), " tcp-ulp-a"},
		{join(nlattr(ulpInfoName, []byte("x")), []byte{200, 0, 1, 0}), " tcp-ulp-x"},
		{nil, ""},
	}
	for _, c := range cases {
		if got := string(appendULPInfo(nil, c.p)); got != c.want {
			t.Errorf("ULP %x:\n got %q\nwant %q", c.p, got, c.want)
		}
	}
}

func TestMPTCPInfoLine(t *testing.T) {
	got := string(appendMPTCPInfo(nil, mptcpInfoBytes(96)))
	want := " subflows:1 add_addr_signal:2 add_addr_accepted:3 subflows_max:4 add_addr_signal_max:5 add_addr_accepted_max:6" +
		" fallback remote_key token:1ad54b47 write_seq:c0b47d1813217c9f snd_una:c0b47d1813217000 rcv_nxt:54fc8770c75b215b"
	if got != want {
		t.Errorf("mptcp_info:\n got %q\nwant %q", got, want)
	}
	if got := string(appendMPTCPInfo(nil, nil)); got != "" {
		t.Errorf("empty mptcp_info: %q", got)
	}
}

// The JSON objects of -i and -m hold the kernel's numbers, and the fields
// a kernel did not send are left out.
func TestJSONInfo(t *testing.T) {
	withULP(t)
	e := NewEncoder(fakeOpts(Options{Numeric: true, Info: true, Memory: true}))
	socks := infoSockets()
	var o JSONSocket
	if err := json.Unmarshal(e.AppendSocket(nil, &socks[0]), &o); err != nil {
		t.Fatal(err)
	}
	ti := o.TCPInfo
	if ti == nil || ti.RTT != 25123 || ti.SndWscale != 7 || ti.RcvWscale != 9 || ti.DeliveryRateAppLimited != 1 ||
		ti.PacingRate != 1152000 || ti.SndWnd != 65535 || ti.RcvWnd == nil || *ti.RcvWnd != 131072 ||
		ti.TotalRTO == nil || *ti.TotalRTO != 2 || ti.ReceivedCE == nil || *ti.ReceivedCE != 4 {
		t.Errorf("tcp_info of 280 bytes: %+v", ti)
	}
	if o.Skmem == nil || o.Skmem.Rcvbuf != 131072 || o.Skmem.Drops == nil || *o.Skmem.Drops != 2 || o.Cong != "cubic" {
		t.Errorf("skmem/cong: %+v %q", o.Skmem, o.Cong)
	}
	o = JSONSocket{}
	if err := json.Unmarshal(e.AppendSocket(nil, &socks[1]), &o); err != nil {
		t.Fatal(err)
	}
	if o.TCPInfo == nil || o.TCPInfo.RcvWnd != nil || o.BBR == nil || o.BBR.BW != 1<<32|0x5d8e5c40 || o.BBR.PacingGain != 739 ||
		o.Skmem.Backlog == nil || o.Skmem.Drops != nil {
		t.Errorf("232 bytes, bbr: %+v %+v %+v", o.TCPInfo, o.BBR, o.Skmem)
	}
	o = JSONSocket{}
	if err := json.Unmarshal(e.AppendSocket(nil, &socks[16]), &o); err != nil {
		t.Fatal(err)
	}
	if o.MPTCPInfo == nil || o.MPTCPInfo.Token != 0x1ad54b47 || o.MPTCPInfo.LastAckRecv == nil || *o.MPTCPInfo.LastAckRecv != 30 || o.TCPInfo != nil {
		t.Errorf("mptcp_info: %+v", o.MPTCPInfo)
	}
	// Without Info and Memory: none of it.
	e = NewEncoder(fakeOpts(Options{Numeric: true}))
	if b := e.AppendSocket(nil, &socks[0]); bytes.Contains(b, []byte("tcp_info")) || bytes.Contains(b, []byte("skmem")) {
		t.Errorf("without -i -m: %s", b)
	}
}

// The infoField tables and the JSON structs agree, field by field (fillInfo
// relies on it).
func TestInfoFieldTables(t *testing.T) {
	for _, c := range []struct {
		typ    reflect.Type
		fields []infoField
	}{{reflect.TypeFor[JSONTCPInfo](), tcpInfoFields}, {reflect.TypeFor[JSONMPTCPInfo](), mptcpInfoFields}} {
		if c.typ.NumField() != len(c.fields) {
			t.Errorf("%v: %d fields, table has %d", c.typ, c.typ.NumField(), len(c.fields))
			continue
		}
		for i, f := range c.fields {
			sf := c.typ.Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			key := strings.TrimSuffix(strings.TrimPrefix(f.key, ","), ":")
			if `"`+tag+`"` != key || (i == 0) == strings.HasPrefix(f.key, ",") {
				t.Errorf("%v field %d: %s is %q in the table", c.typ, i, tag, f.key)
			}
			if f.opt != (sf.Type.Kind() == reflect.Pointer) {
				t.Errorf("%v.%s: optional in one place only", c.typ, sf.Name)
			}
		}
	}
}
