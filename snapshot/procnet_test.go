package snapshot

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Real files (kernel 6.18), with a raw ICMP socket, a raw socket of
// protocol 17 connected to 127.0.0.1, and a raw ICMPv6 socket.
const (
	procRaw = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 220: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 538766 2 000000009f87e5e5 0
 249: 0100007F:0011 0100007F:0000 01 0000000A:00000340 00:00000000 00000000  1000        0 538768 2 0000000025e148a1 3
`
	procRaw6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   19: 00000000000000000000000000000000:003A 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 538767 2 000000001715f62e 0
  255: B80D0120000000000000000001000000:00FF 000080FE00000000785634120A000000:0000 01 00000001:00000002 00:00000000 00000000 4294967294        0 4294967295 2 0000000000000000 0
`
)

func TestParseProcNet(t *testing.T) {
	any4 := netip.IPv4Unspecified()
	lo := netip.MustParseAddr("127.0.0.1")
	got, err := ParseProcNet([]byte(procRaw), unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Family: unix.AF_INET, State: StateClose, Local: netip.AddrPortFrom(any4, 1), Peer: netip.AddrPortFrom(any4, 0), Inode: 538766},
		{Family: unix.AF_INET, State: StateEstablished, Local: netip.AddrPortFrom(lo, 17), Peer: netip.AddrPortFrom(lo, 0),
			SendQ: 10, RecvQ: 0x340, UID: 1000, Inode: 538768},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("raw:\n got %+v\nwant %+v", got, want)
	}

	got, err = ParseProcNet([]byte(procRaw6), unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel prints each 32-bit word of the address as a host-order
	// number (little-endian here): 2001:db8::1 is B80D0120 ... 01000000.
	w1 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	w2 := [16]byte{0xfe, 0x80, 8: 0x12, 0x34, 0x56, 0x78, 15: 0x0a} // 0A000000 is 0x0a000000
	if ne.Uint32([]byte{1, 0, 0, 0}) != 1 {
		t.Skip("big-endian host: the sample was taken on a little-endian one")
	}
	want = []Socket{
		{Family: unix.AF_INET6, State: StateClose, Local: netip.AddrPortFrom(netip.IPv6Unspecified(), 58),
			Peer: netip.AddrPortFrom(netip.IPv6Unspecified(), 0), Inode: 538767},
		{Family: unix.AF_INET6, State: StateEstablished, Local: netip.AddrPortFrom(netip.AddrFrom16(w1), 255),
			Peer: netip.AddrPortFrom(netip.AddrFrom16(w2), 0), SendQ: 1, RecvQ: 2, UID: 4294967294, Inode: 4294967295},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("raw6:\n got %+v\nwant %+v", got, want)
	}
	if got[1].Local.Addr().String() != "2001:db8::1" || got[1].Peer.Addr().String() != "fe80::1234:5678:0:a" {
		t.Errorf("raw6 addresses %v %v", got[1].Local, got[1].Peer)
	}

	// Only a header, or nothing at all: no sockets.
	for _, in := range []string{"", "  sl  local_address\n"} {
		if got, err := ParseProcNet([]byte(in), unix.AF_INET); err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	// Lowercase hex and tabs are taken too.
	if got, err := ParseProcNet([]byte("h\n0:\t0100007f:00ff 00000000:0000 0a 0:0 00:00000000 0 0 0 1\n"), unix.AF_INET); err != nil ||
		len(got) != 1 || got[0].Local != netip.MustParseAddrPort("127.0.0.1:255") || got[0].State != StateListen || got[0].Inode != 1 {
		t.Errorf("lowercase: %+v %v", got, err)
	}
}

func TestParseProcNetErrors(t *testing.T) {
	line := " 220: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 538766 2 000000009f87e5e5 0"
	for _, tt := range []struct {
		name   string
		in     string
		family uint8
		want   string
	}{
		{"bad family", "h\n", unix.AF_UNIX, "unsupported address family 1"},
		{"header without newline", "  sl  local_address", unix.AF_INET, "header line without a newline"},
		{"last line without newline", "h\n" + line, unix.AF_INET, "line 2: no newline"},
		{"few fields", "h\n" + line[:60] + "\n", unix.AF_INET, "6 fields, want at least 10"},
		{"empty line", "h\n\n", unix.AF_INET, "0 fields"},
		{"slot", "h\n" + strings.Replace(line, "220:", "220", 1) + "\n", unix.AF_INET, "does not end in ':'"},
		{"v6 line as v4", "h\n" + strings.Split(procRaw6, "\n")[1] + "\n", unix.AF_INET, "local address"},
		{"v4 line as v6", "h\n" + line + "\n", unix.AF_INET6, "local address"},
		{"bad port", "h\n" + strings.Replace(line, ":0001", ":00G1", 1) + "\n", unix.AF_INET, "port"},
		{"bad address", "h\n" + strings.Replace(line, "00000000:0000", "0000x000:0000", 1) + "\n", unix.AF_INET, "remote address"},
		{"bad state", "h\n" + strings.Replace(line, " 07 ", " 7Z ", 1) + "\n", unix.AF_INET, "state"},
		{"long state", "h\n" + strings.Replace(line, " 07 ", " 007 ", 1) + "\n", unix.AF_INET, "state"},
		{"queues", "h\n" + strings.Replace(line, "00000000:00000000", "0000000000000000", 1) + "\n", unix.AF_INET, "queues"},
		{"tx", "h\n" + strings.Replace(line, "00000000:00000000", ":00000000", 1) + "\n", unix.AF_INET, "tx_queue"},
		{"rx", "h\n" + strings.Replace(line, "00000000:00000000", "00000000:000000001", 1) + "\n", unix.AF_INET, "rx_queue"},
		{"uid", "h\n" + strings.Replace(line, "     0        0", "    -1        0", 1) + "\n", unix.AF_INET, "uid"},
		{"inode", "h\n" + strings.Replace(line, "538766", "4294967296", 1) + "\n", unix.AF_INET, "inode"},
	} {
		got, err := ParseProcNet([]byte(tt.in), tt.family)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "parsing /proc/net table") {
			t.Errorf("%s: %+v, error %v, want %q", tt.name, got, err, tt.want)
		}
	}
}

func FuzzProcNet(f *testing.F) {
	f.Add([]byte(procRaw), false)
	f.Add([]byte(procRaw6), true)
	f.Add([]byte("h\n0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1 0 0\n"), false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		family := uint8(unix.AF_INET)
		if v6 {
			family = unix.AF_INET6
		}
		socks, err := ParseProcNet(b, family)
		if err != nil {
			if socks != nil {
				t.Fatalf("rows with an error: %+v", socks)
			}
			return
		}
		// One row per line after the header, each line ending in '\n'.
		if n := strings.Count(string(b), "\n"); len(socks) != max(n-1, 0) || len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%d rows from %d lines", len(socks), n)
		}
		for _, s := range socks {
			if s.Family != family || s.Local.Addr().Is4() == v6 || s.Peer.Addr().Is4() == v6 {
				t.Fatalf("row %+v", s)
			}
		}
	})
}
