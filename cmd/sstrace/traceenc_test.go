package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// Command names that exercise JSON escaping and column padding: the
// kernel's comm is any 15 bytes (16 without a NUL when a test builds one).
var encoderComms = []string{
	"", "curl", "a\"b\\c", "tab\there\nnl\r", "\x00hidden", "\x01\x1f\x7f", "<&>", "\b\f",
	"héllo", "日本語のプロセス", "\xff\xfe", "bad\xc3", "\xe2\x80\xa8sep\xe2\x80\xa9", "\xef\xbf\xbd",
	"exactly16bytes!!", "\xed\xa0\x80surrogate", "\xf4\x90\x80\x80", "ä\x00tail",
}

var encoderAddrs = []netip.AddrPort{
	{}, // invalid: no endpoint
	netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.1:0"),
	netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("0.0.0.0:8080"),
	netip.MustParseAddrPort("[::]:0"), netip.MustParseAddrPort("[::]:443"), netip.MustParseAddrPort("[::1]:65535"),
	netip.MustParseAddrPort("[::ffff:127.0.0.1]:5000"), netip.MustParseAddrPort("[2001:db8::1]:0"),
	netip.MustParseAddrPort("[fe80::1%eth0]:22"), netip.MustParseAddrPort("[fe80::1%a\"b]:1"),
}

// randomEvent draws an event over every field the encoder reads, with the
// values that change what a line says.
func randomEvent(r *rand.Rand) (tracer.Event, sockOwner) {
	pick := func(n int) int { return r.IntN(n) }
	kinds := []tracer.Kind{tracer.KindBirth, tracer.KindAccept, tracer.KindState, tracer.KindRelease, tracer.KindDestroy,
		tracer.KindReset, tracer.KindRetrans, tracer.KindSynAck, tracer.KindError}
	protos := []uint16{traceProtoTCP, traceProtoUDP, traceProtoMPTCP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP,
		unix.IPPROTO_DCCP, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6, 0, 255, 1000}
	types := []uint8{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_SEQPACKET, 0, 10, 200}
	families := []uint16{unix.AF_INET, unix.AF_INET6, unix.AF_UNIX, 0}
	froms := []string{"", ownerBPF, ownerSyscall, ownerListener, ownerInventory}
	ts := []uint64{0, 1, 999, 5e9, 2_000_123_456, 1 << 40, 1<<63 + 12345, ^uint64(0)}[pick(8)]
	ev := tracer.Event{
		Kind:     kinds[pick(len(kinds))],
		TS:       ts,
		Cookie:   []uint64{0, 1, 1 << 33, ^uint64(0)}[pick(4)],
		NetNS:    []uint32{0, 4026531840, ^uint32(0)}[pick(3)],
		CurPID:   []uint32{0, 1, 4194304}[pick(3)],
		Exiting:  pick(2) == 0,
		FD:       []uint32{0, 3, 1 << 20}[pick(3)],
		Inode:    []uint32{0, 12345}[pick(2)],
		Family:   families[pick(len(families))],
		Protocol: protos[pick(len(protos))],
		Type:     types[pick(len(types))],
		OldState: uint8(pick(16)),
		NewState: uint8(pick(16)),
		Local:    encoderAddrs[pick(len(encoderAddrs))],
		Peer:     encoderAddrs[pick(len(encoderAddrs))],
	}
	switch pick(6) {
	case 0: // no previous transition
	case 1:
		ev.Since = ts + 1 // after the event: not shown
	default:
		d := []uint64{0, 1, 87_456, 999_999_999, 1e9, 59_999_999_999, 60e9, 125_000_000_000, 1 << 62}[pick(9)]
		ev.Since = ts - min(d, ts)
	}
	if pick(20) == 0 {
		ev.Kind = tracer.Kind(10 + pick(240)) // a kind trace cannot name
	}
	var o sockOwner
	if pick(4) != 0 {
		o.PID = []uint32{1, 12345, ^uint32(0)}[pick(3)]
		copy(o.Comm[:], encoderComms[pick(len(encoderComms))])
		o.From = froms[pick(len(froms))]
	}
	return ev, o
}

var encoderClocks = []traceClock{
	{boot: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)},
	{boot: time.Date(2024, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("", -(9*3600+30*60)))},
	{boot: time.Date(2026, 10, 25, 0, 30, 0, 123_456_789, time.Local)},
}

// checkEncoder compares one event's lines, JSON and text, with what
// encoding/json and fmt make of it.
func checkEncoder(t *testing.T, e *traceEncoder, ev *tracer.Event, o *sockOwner) {
	t.Helper()
	if traceKindName(ev.Kind) == "" {
		return // trace prints no line for it
	}
	want := legacyJSON(ev, o, e.clk)
	// An append to a buffer already holding something appends only.
	got := e.appendJSON([]byte("x"), ev, o)
	if !bytes.Equal(got[1:], want) {
		t.Fatalf("JSON of %+v owner %+v:\n got %s\nwant %s", *ev, *o, got[1:], want)
	}
	want = legacyText(ev, o, e)
	got = e.appendText([]byte("x"), ev, o)
	if !bytes.Equal(got[1:], want) {
		t.Fatalf("text of %+v owner %+v:\n got %q\nwant %q", *ev, *o, got[1:], want)
	}
}

// The encoder writes the bytes trace wrote with encoding/json and fmt, for
// every kind of event and combination of fields.
func TestTraceEncoderMatchesLegacy(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 2026))
	n := 0
	for _, clk := range encoderClocks {
		for _, mode := range []traceEncoder{{}, {absolute: true}, {showNetns: true}, {absolute: true, showNetns: true}} {
			for _, start := range []uint64{0, 5e9, ^uint64(0)} {
				e := mode
				e.clk, e.start = clk, start
				for i := 0; i < 2000; i++ {
					ev, o := randomEvent(r)
					checkEncoder(t, &e, &ev, &o)
					n++
				}
			}
		}
	}
	// Every kind with every state, once each, with and without times.
	e := traceEncoder{clk: encoderClocks[0], start: 1e9, showNetns: true}
	for k := tracer.Kind(0); k < 12; k++ {
		for st := uint8(0); st < 16; st++ {
			for _, proto := range []uint16{traceProtoTCP, traceProtoMPTCP, traceProtoUDP} {
				ev := tracer.Event{Kind: k, TS: 3e9, Since: 2e9, Family: unix.AF_INET, Protocol: proto, Type: unix.SOCK_STREAM,
					OldState: st, NewState: 15 - st, FD: 4, Local: encoderAddrs[1], Peer: encoderAddrs[3]}
				checkEncoder(t, &e, &ev, &sockOwner{PID: 7, Comm: comm("x"), From: ownerListener})
				ev.Since = 0
				checkEncoder(t, &e, &ev, &sockOwner{})
				n += 2
			}
		}
	}
	for _, lost := range []uint64{1, 12, ^uint64(0)} {
		for _, clk := range encoderClocks {
			now, since := clk.boot.Add(time.Hour+1234567), clk.boot
			if got, want := appendLostJSON(nil, lost, now, since), legacyLost(lost, now, since, true); !bytes.Equal(got, want) {
				t.Errorf("lost JSON\n got %s\nwant %s", got, want)
			}
			if got, want := appendLostText(nil, lost, since), legacyLost(lost, now, since, false); !bytes.Equal(got, want) {
				t.Errorf("lost text\n got %q\nwant %q", got, want)
			}
		}
	}
	t.Logf("%d events compared", n)
}

// JSON strings are escaped as encoding/json escapes them with
// SetEscapeHTML(false), byte for byte.
func TestAppendJSONString(t *testing.T) {
	check := func(s string) {
		t.Helper()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
	for _, s := range encoderComms {
		check(s)
	}
	for c := 0; c < 256; c++ {
		check(string([]byte{byte(c)}))
		check("a" + string([]byte{byte(c)}) + "é")
	}
	for r := rune(0x7f); r < 0x3000; r++ {
		check(string(r))
	}
	check(string(utf8.MaxRune))
}

// Encoding an event allocates nothing once the buffer has grown.
func TestTraceEncoderAllocs(t *testing.T) {
	e := traceEncoder{clk: encoderClocks[2], start: 1e9, showNetns: true}
	ev := tracer.Event{Kind: tracer.KindState, TS: 2_000_123_456, Since: 2_000_036_000, Cookie: 7, NetNS: 4026531840,
		CurPID: 999, Family: unix.AF_INET6, Protocol: 6, Type: unix.SOCK_STREAM, OldState: 2, NewState: 1,
		Local: encoderAddrs[8], Peer: encoderAddrs[7]}
	o := sockOwner{PID: 12345, Comm: comm("日本\xff\"x"), From: ownerBPF}
	buf := make([]byte, 0, 1024)
	for _, absolute := range []bool{false, true} {
		e.absolute = absolute
		if n := testing.AllocsPerRun(100, func() { buf = e.appendText(buf[:0], &ev, &o) }); n != 0 {
			t.Errorf("text line (absolute %v): %v allocations", absolute, n)
		}
		if n := testing.AllocsPerRun(100, func() { buf = e.appendJSON(buf[:0], &ev, &o) }); n != 0 {
			t.Errorf("JSON line: %v allocations", n)
		}
	}
}

// FuzzTraceEncoder compares the encoder with encoding/json and fmt on
// events made of arbitrary values (seeds: testdata/fuzz/FuzzTraceEncoder).
func FuzzTraceEncoder(f *testing.F) {
	f.Add(uint8(3), uint16(6), uint8(1), uint8(2), uint8(1), uint64(2_000_123_456), uint64(2_000_036_000), uint64(7),
		uint32(4026531840), uint32(999), uint32(12345), []byte("curl"), uint8(1), uint32(0), uint32(0), true,
		[]byte{127, 0, 0, 1}, uint16(43210), []byte{127, 0, 0, 1}, uint16(80), uint8(0))
	f.Add(uint8(1), uint16(6), uint8(1), uint8(0), uint8(7), uint64(5e9), uint64(0), uint64(1),
		uint32(0), uint32(1), uint32(0), []byte(""), uint8(0), uint32(3), uint32(77), false,
		[]byte{}, uint16(0), []byte{}, uint16(0), uint8(3))
	f.Add(uint8(4), uint16(17), uint8(2), uint8(0), uint8(7), uint64(9e10), uint64(1e9), uint64(1<<40),
		uint32(1), uint32(0), uint32(4), []byte("a\"<\xff\xe2\x80\xa8\n"), uint8(4), uint32(0), uint32(0), true,
		make([]byte, 16), uint16(53), []byte{0x20, 1, 0xd, 0xb8, 15: 1}, uint16(0), uint8(1))
	f.Fuzz(func(t *testing.T, kind uint8, proto uint16, typ, oldState, newState uint8, ts, since, cookie uint64,
		netns, curPID, pid uint32, commBytes []byte, from uint8, fd, inode uint32, v6 bool,
		local []byte, lport uint16, peer []byte, pport uint16, mode uint8) {
		ev := tracer.Event{Kind: tracer.Kind(kind), TS: ts, Since: since, Cookie: cookie, NetNS: netns, CurPID: curPID,
			FD: fd, Inode: inode, Protocol: proto, Type: typ, OldState: oldState, NewState: newState, Exiting: mode&4 != 0}
		ev.Family = unix.AF_INET
		if v6 {
			ev.Family = unix.AF_INET6
		}
		ev.Local, ev.Peer = fuzzAddrPort(local, lport), fuzzAddrPort(peer, pport)
		o := sockOwner{PID: pid, From: []string{"", ownerBPF, ownerSyscall, ownerListener, ownerInventory}[int(from)%5]}
		copy(o.Comm[:], commBytes)
		e := traceEncoder{clk: encoderClocks[int(mode>>3)%len(encoderClocks)], start: since ^ ts,
			absolute: mode&1 != 0, showNetns: mode&2 != 0}
		checkEncoder(t, &e, &ev, &o)
	})
}

// fuzzAddrPort: 4 bytes an IPv4 address, 16 an IPv6 one, else none.
func fuzzAddrPort(b []byte, port uint16) netip.AddrPort {
	switch len(b) {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b)), port)
	case 16:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b)), port)
	}
	return netip.AddrPort{}
}
