package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/nstest"
)

// sstraceBin is the sstrace built for this test run: tests run it as a user
// would, inside their network namespace.
var sstraceBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv(buildHelpersEnv); dir != "" {
		if err := buildHelpers(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sstrace-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sstraceBin, err = prebuilt("sstrace")
	if err == nil && sstraceBin == "" {
		sstraceBin = filepath.Join(dir, "sstrace")
		err = helperBuilds["sstrace"](sstraceBin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "building sstrace: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is a namespace holding one of each kind of socket ss lists.
type fixture struct {
	ns      *nstest.NS
	dir     string // where its unix sockets are bound
	closers []func()
}

func (f *fixture) keep(c func()) { f.closers = append(f.closers, c) }

func (f *fixture) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
}

// plainTCP listens without MPTCP (Go's default for listeners since 1.24),
// so the fd's socket is the TCP socket ss lists.
func plainTCP(network, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), network, addr)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ns: nstest.New(t), dir: t.TempDir()}
	t.Cleanup(f.close)
	dir := f.dir
	err := f.ns.Do(func() error {
		// TCP listeners: v4, v6 loopback, dual-stack wildcard, v6only
		// wildcard, and well-known ports so service names show.
		var lns []net.Listener
		for _, a := range [][2]string{
			{"tcp4", "127.0.0.1:22"}, {"tcp4", "127.0.0.2:0"}, {"tcp6", "[::1]:80"},
			{"tcp", ":8080"}, {"tcp4", "0.0.0.0:443"},
			// The ss article's addresses, mapped into 127/8: smtp on a
			// loopback host, 74.125.236.178:80 as 127.125.236.178:80.
			{"tcp4", "127.0.0.1:25"}, {"tcp4", "127.125.236.178:80"},
		} {
			ln, err := plainTCP(a[0], a[1])
			if err != nil {
				return fmt.Errorf("listen %s %s: %w", a[0], a[1], err)
			}
			f.keep(func() { ln.Close() })
			lns = append(lns, ln)
		}
		v6only, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f.keep(func() { unix.Close(v6only) })
		unix.SetsockoptInt(v6only, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		if err := unix.Bind(v6only, &unix.SockaddrInet6{Port: 9090}); err != nil {
			return err
		}
		if err := unix.Listen(v6only, 8); err != nil {
			return err
		}
		// Established pairs: v4, v6, and v4-mapped through the dual-stack
		// listener.
		for _, d := range [][2]string{
			{"tcp4", lns[0].Addr().String()}, {"tcp6", lns[2].Addr().String()},
			{"tcp4", "127.0.0.3:8080"}, {"tcp4", "127.0.0.1:25"}, {"tcp4", "127.125.236.178:80"},
		} {
			c, err := net.Dial(d[0], d[1])
			if err != nil {
				return fmt.Errorf("dial %s: %w", d[1], err)
			}
			f.keep(func() { c.Close() })
		}
		// UDP: unconnected v4 and v6, a connected pair.
		for _, a := range [][2]string{{"udp4", "127.0.0.1:53"}, {"udp6", "[::1]:0"}} {
			c, err := net.ListenPacket(a[0], a[1])
			if err != nil {
				return err
			}
			f.keep(func() { c.Close() })
		}
		// A socket bound to a device: ss prints ADDR%lo and `dev lo` finds it.
		bd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f.keep(func() { unix.Close(bd) })
		if err := unix.SetsockoptString(bd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo"); err != nil {
			return err
		}
		if err := unix.Bind(bd, &unix.SockaddrInet4{Port: 5353, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		uc, err := net.Dial("udp4", "127.0.0.1:53")
		if err != nil {
			return err
		}
		f.keep(func() { uc.Close() })
		// Unix: a stream listener with a connection, a bound dgram socket, an
		// abstract listener, an unnamed pair, a seqpacket pair.
		path := filepath.Join(dir, "stream.sock")
		ul, err := net.Listen("unix", path)
		if err != nil {
			return err
		}
		f.keep(func() { ul.Close() })
		ucn, err := net.Dial("unix", path)
		if err != nil {
			return err
		}
		f.keep(func() { ucn.Close() })
		ud, err := net.ListenPacket("unixgram", filepath.Join(dir, "dgram.sock"))
		if err != nil {
			return err
		}
		f.keep(func() { ud.Close() })
		ua, err := net.Listen("unix", "@sstrace-test-"+filepath.Base(dir))
		if err != nil {
			return err
		}
		f.keep(func() { ua.Close() })
		for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_SEQPACKET, unix.SOCK_DGRAM} {
			pair, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			f.keep(func() { unix.Close(pair[0]); unix.Close(pair[1]) })
		}
		// Accept the TCP and unix connections so both ends are held.
		for _, ln := range append(lns, ul) {
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					f.keep(func() { c.Close() })
				}
			}()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	spaces = regexp.MustCompile(`\s+`)
	// Timer values tick between two runs; names and retransmits must match.
	timerValue = regexp.MustCompile(`timer:\(([a-z_]+),[^,]+,`)
	// ss -s numbers that count the whole machine (TCP alloc and orphans) or
	// trail RCU-delayed frees (Total): other processes change them between
	// two runs. The per-namespace numbers must match.
	globalCounts = regexp.MustCompile(`^(Total:|TCP:)\s+-?\d+|(closed|orphaned) -?\d+`)
)

var (
	// Each tool's own sock_diag socket: a row only it can print.
	selfNetlink = regexp.MustCompile(`tcpdiag:(ss|sstrace)/\d+`)
	number      = regexp.MustCompile(`\d+(\.\d+)?`)
)

// normalize collapses whitespace in each line, blanks timer values, drops
// the tools' own netlink rows, and in -i/-m detail lines (which start with
// a tab) keeps field names and order but blanks the numbers, which tick
// between two runs (the render package's tests compare the stable ones).
func normalize(out []byte) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if selfNetlink.MatchString(l) {
			continue
		}
		if strings.HasPrefix(l, "\t") {
			l = number.ReplaceAllString(l, "#")
		}
		l = timerValue.ReplaceAllString(l, "timer:($1,_,")
		l = globalCounts.ReplaceAllString(l, "$1$2 _")
		lines = append(lines, strings.TrimSpace(spaces.ReplaceAllString(l, " ")))
	}
	return lines
}

// waitAccepted returns once ss sees every connection's server side, so
// the two tools look at the same, settled set of sockets.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		out, err := f.ns.Output("ss", "-Htan", "state", "syn-recv")
		if err != nil {
			t.Fatal(err)
		}
		if len(strings.TrimSpace(string(out))) == 0 {
			return
		}
		if i > 1000 {
			t.Fatalf("connections still in SYN-RECV: %s", out)
		}
	}
}

func TestListingMatchesSS(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	for _, args := range [][]string{
		{},
		{"-tan"},
		{"-uan"},
		{"-xa"},
		{"-tlnp"},
		{"-tanep"},
		{"-4"},
		{"-6"},
		{"-H"},
		{"-t"},
		{"-ta"},
		{"-tl"},
		{"-ua"},
		{"-x"},
		{"-xl"},
		{"-an4"},
		{"-an6"},
		{"-tn", "state", "established"},
		{"-tn", "exclude", "listening"},
		{"-tan", "state", "connected"},
		{"-Htuna"},
		{"-xae"},
		{"-uanp"},
		{"-t", "-6", "-4", "-an"},
		{"-A", "tcp,udp", "-n"},
		{"-A", "all,!tcp", "-n"},
		{"-A", "unix_stream", "-a"},
		{"-a"},
		{"-la"},
		{"-al"},
		{"-tani"},
		{"-tanm"},
		{"-xam"},
		{"-f", "inet", "-ln"},
		{"-f", "inet6", "-an"},
		{"-f", "unix", "-a"},
		{"-tano"},
		{"-s"},
		{"-s", "-t", "-n"},
		{"-sa"},
		// The ss article's commands, addresses mapped into 127/8.
		{"-o", "state", "established", "( dport = :smtp or sport = :smtp )"},
		{"-o", "state", "fin-wait-1", "( sport = :http or sport = :https )", "dst", "127.168.1/24"},
		{"-nt", "dst", "127.125.236.178/16"},
		{"-nt", "dst", "127.125.236.178:80"},
		{"-nt", "src", "127.0.0.1", "sport", "gt", ":5000"},
		{"-nt", "src", "127.0.0.1", "sport", "\\>", ":5000"},
		{"-x", "src", f.dir + "/*"},
		{"-xa", "src", f.dir + "/*"},
		{"-tl", "-f", "inet"},
		{"-tl6"},
		{"-ltp"},
		{"-ltn", "sport", "=", ":22", "or", "sport", "=", ":25"},
		{"-tan", "not", "dst", "127.0.0.1"},
		{"-tan", "dport", "!=", ":8080", "and", "!", "sport", "=", ":8080"},
		{"-tan", "( sport = :22 or sport = :25 ) and dst 127.0.0.1"},
		{"-tan", "src", "[::1]"},
		{"-uan", "dev", "lo"},
		{"-ua"},
		{"-tan", "sport", "le", ":443", "sport", "ge", ":80"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want, err := f.ns.Output("ss", args...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.ns.Output(sstraceBin, args...)
			if err != nil {
				t.Fatal(err)
			}
			w, g := normalize(want), normalize(got)
			if strings.Join(w, "\n") != strings.Join(g, "\n") {
				t.Errorf("sstrace %s differs from ss\n--- ss\n%s\n--- sstrace\n%s", strings.Join(args, " "), want, got)
			}
			if len(w) < 2 && !(len(args) > 0 && strings.Contains(args[0], "H")) && !slices.Contains(args, "fin-wait-1") {
				t.Errorf("ss %v printed no socket: the fixture does not exercise it", args)
			}
		})
	}
}

// -j holds the same sockets as the table, with identity and owners.
func TestJSONListing(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	table, err := f.ns.Output("ss", "-Htanep")
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.ns.Output(sstraceBin, "-tanep", "-j")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sockets []struct {
			Netid  string `json:"netid"`
			State  string `json:"state"`
			Inode  uint32 `json:"inode"`
			Cookie uint64 `json:"cookie"`
			NetNS  uint64 `json:"netns"`
			Owners []struct {
				PID  uint32 `json:"pid"`
				FD   uint32 `json:"fd"`
				Comm string `json:"comm"`
			} `json:"owners"`
		} `json:"sockets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("sstrace -j output does not parse: %v\n%s", err, out)
	}
	rows := normalize(table)
	if len(doc.Sockets) != len(rows) {
		t.Fatalf("JSON has %d sockets, ss lists %d", len(doc.Sockets), len(rows))
	}
	inodes := regexp.MustCompile(`ino:(\d+) sk:([0-9a-f]+)`)
	for i, s := range doc.Sockets {
		m := inodes.FindStringSubmatch(rows[i])
		if m == nil || m[1] != fmt.Sprint(s.Inode) || m[2] != fmt.Sprintf("%x", s.Cookie) {
			t.Errorf("socket %d: JSON inode %d cookie %x, ss row %q", i, s.Inode, s.Cookie, rows[i])
		}
		if s.NetNS != f.ns.Inode() {
			t.Errorf("socket %d: netns %d, want %d", i, s.NetNS, f.ns.Inode())
		}
		if s.Inode != 0 && (len(s.Owners) == 0 || s.Owners[0].PID != uint32(os.Getpid())) {
			t.Errorf("socket %d (inode %d): owners %+v, want this test (pid %d)", i, s.Inode, s.Owners, os.Getpid())
		}
	}
}

// -D writes the raw TCP sock_diag messages: they decode to the sockets ss
// lists, and the file appears only whole, mode 0600.
func TestDiagDump(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	dest := filepath.Join(t.TempDir(), "tcp.diag")
	if _, err := f.ns.Output(sstraceBin, "-ta", "-D", dest); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dest)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	var got []string
	dones := 0
	for b := raw; len(b) >= 16; {
		n := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		if n < 16 || n > len(b) {
			t.Fatalf("bad message length %d", n)
		}
		switch typ {
		case unix.NLMSG_DONE:
			dones++
		case unix.SOCK_DIAG_BY_FAMILY:
			s, err := snapshot.DecodeInet(b[16:n], unix.IPPROTO_TCP)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d", s.Inode))
		}
		b = b[(n+3)&^3:]
	}
	if dones != 2 {
		t.Errorf("%d NLMSG_DONE, want 2 (IPv4 and IPv6 dumps)", dones)
	}
	out, err := f.ns.Output("ss", "-Htae")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`ino:(\d+)`).FindAllStringSubmatch(string(out), -1) {
		want = append(want, m[1])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("-D holds inodes %v, ss lists %v", got, want)
	}
	// The same destination again is refused without --force.
	if _, err := f.ns.Output(sstraceBin, "-ta", "-D", dest); err == nil {
		t.Error("-D replaced an existing file without --force")
	}
}
