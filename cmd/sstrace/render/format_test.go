package render

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"sstrace/snapshot"
)

// What glibc's inet_ntop prints (checked against Python's socket.inet_ntop
// on this system's glibc).
func TestAppendAddr(t *testing.T) {
	cases := map[string]string{
		"0.0.0.0":                  "0.0.0.0",
		"127.0.0.1":                "127.0.0.1",
		"255.255.255.255":          "255.255.255.255",
		"::":                       "::",
		"::1":                      "::1",
		"::2":                      "::2",
		"::1.2.3.4":                "::1.2.3.4", // IPv4-compatible: Go says ::102:304
		"::1.2.0.0":                "::1.2.0.0",
		"::ffff:127.0.0.1":         "::ffff:127.0.0.1",
		"::ffff:0.0.0.0":           "::ffff:0.0.0.0",
		"::ffff:1:2":               "::ffff:0.1.0.2",
		"0:0:0:0:1::":              "::1:0:0:0",
		"2001:db8::1:0:0:1":        "2001:db8::1:0:0:1", // the first of equal runs
		"2001:db8:0:1::2":          "2001:db8:0:1::2",
		"2001:db8:0:0:1:0:0:1":     "2001:db8::1:0:0:1",
		"fe80::1":                  "fe80::1",
		"1:0:2:0:3:0:4:0":          "1:0:2:0:3:0:4:0", // single zero words stay
		"1::":                      "1::",
		"1:2:3:4:5:6:7:8":          "1:2:3:4:5:6:7:8",
		"abcd:ef01:2345:6789::":    "abcd:ef01:2345:6789::",
		"0:0:0:0:0:1:0:0":          "::1:0:0",
		"0:0:0:ffff::":             "0:0:0:ffff::", // the trailing run is the longer
		"0:0:0:0:0:fffe:7f00:1":    "::fffe:7f00:1",
		"64:ff9b::192.0.2.33":      "64:ff9b::c000:221",
		"0:0:0:0:1:ffff:7f00:0001": "::1:ffff:7f00:1",
	}
	for in, want := range cases {
		a := netip.MustParseAddr(in)
		if got := string(AppendAddr(nil, a)); got != want {
			t.Errorf("AppendAddr(%s) = %q, want %q", in, got, want)
		}
	}
}

// Where glibc and Go agree (neither IPv4-compatible nor -mapped), the
// outputs are the same.
func TestAppendAddrMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var b [16]byte
		for i := 0; i < 16; i += 2 {
			switch r.IntN(3) {
			case 0: // zero word
			case 1:
				b[i+1] = byte(r.IntN(3))
			default:
				b[i], b[i+1] = byte(r.Uint32()), byte(r.Uint32())
			}
		}
		a := netip.AddrFrom16(b)
		var zero12 [12]byte
		if [12]byte(b[:12]) == zero12 || a.Is4In6() {
			continue
		}
		if got, want := string(AppendAddr(nil, a)), a.String(); got != want {
			t.Fatalf("AppendAddr(%x) = %q, Go says %q", b, got, want)
		}
	}
}

func TestMsTimer(t *testing.T) {
	cases := map[uint32]string{
		0:       "",
		1:       "001ms",
		50:      "050ms",
		999:     "999ms",
		1000:    "1sec",
		1001:    "1.001ms",
		1234:    "1.234ms",
		9999:    "9.999ms",
		10000:   "10sec",
		10500:   "10sec",
		59999:   "59sec",
		60000:   "1min",
		61500:   "1min1sec",
		65000:   "1min5sec",
		119999:  "1min59sec",
		599999:  "9min59sec",
		600000:  "10min",
		659000:  "10min",
		7199000: "119min",
	}
	for in, want := range cases {
		if got := string(appendMsTimer(nil, in)); got != want {
			t.Errorf("print_ms_timer(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestQueueAndNames(t *testing.T) {
	for in, want := range map[uint32]string{0: "0     ", 12345: "12345 ", 123456: "123456", 1234567: "1234567", 1 << 31: "-2147483648"} {
		if got := string(appendQueue(nil, in)); got != want {
			t.Errorf("queue %d = %q, want %q", in, got, want)
		}
	}
	for st, want := range map[uint8]string{0: "UNKNOWN", 1: "ESTAB", 7: "UNCONN", 10: "LISTEN", 11: "CLOSING", 12: "SYN-RECV", 13: "UNKNOWN", 200: "UNKNOWN"} {
		if got := StateName(st); got != want {
			t.Errorf("StateName(%d) = %q, want %q", st, got, want)
		}
	}
	for tm, want := range map[uint8]string{1: "on", 2: "keepalive", 3: "timewait", 4: "persist", 5: "unknown", 9: "unknown"} {
		if got := TimerName(tm); got != want {
			t.Errorf("TimerName(%d) = %q, want %q", tm, got, want)
		}
	}
	netids := []struct {
		s    snapshot.Socket
		want string
	}{
		{snapshot.Socket{Family: afInet, Protocol: ipprotoTCP}, "tcp"},
		{snapshot.Socket{Family: afInet6, Protocol: ipprotoUDP}, "udp"},
		{snapshot.Socket{Family: afInet, Protocol: 0}, "raw"},
		{snapshot.Socket{Family: afInet, Protocol: 136}, "???"},
		{snapshot.Socket{Family: afUnix, Type: sockStream}, "u_str"},
		{snapshot.Socket{Family: afUnix, Type: sockDgram}, "u_dgr"},
		{snapshot.Socket{Family: afUnix, Type: sockSeqpacket}, "u_seq"},
		{snapshot.Socket{Family: afUnix, Type: sockRaw}, "u_dgr"},
		{snapshot.Socket{Family: 42}, "unknown"},
	}
	for _, c := range netids {
		if got := Netid(&c.s); got != c.want {
			t.Errorf("Netid(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

// A socket of an unknown family or state renders without panicking.
func TestOddSockets(t *testing.T) {
	socks := []snapshot.Socket{
		{Family: 42, State: 200},
		{Family: afInet, Protocol: ipprotoTCP, State: snapshot.StateBoundInactive},
		{Family: afInet6, Protocol: ipprotoTCP, State: snapshot.StateNewSynRecv, Local: ap("1.2.3.4:5")},
		{Family: afInet, Protocol: ipprotoTCP, Local: ap("[::ffff:1.2.3.4]:5"), Peer: ap("[2001:db8::1]:6")},
	}
	var b strings.Builder
	if err := Table(&b, socks, fakeOpts(Options{ShowNetid: true, ShowState: true, Header: true, Options: true, Extended: true, Processes: true})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "UNKNOWN") || !strings.Contains(b.String(), "SYN-RECV") {
		t.Errorf("odd sockets rendered as:\n%s", b.String())
	}
}
