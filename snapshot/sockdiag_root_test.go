package snapshot

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
)

// want is a socket the root test made and expects the dump to show.
type want struct {
	name        string
	inode       uint32
	family      uint8
	protocol    uint16
	typ         uint8
	state       uint8
	local, peer netip.AddrPort
	path        string
	listed      bool // false: the kernel must not list it
}

func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func fdInode(t *testing.T, fd int) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Errorf("fstat: %v", err)
	}
	return uint32(st.Ino)
}

// fdInfo returns the inode and, for inet sockets, the addresses of fd as the
// kernel has them.
func fdInfo(t *testing.T, fd int) (ino uint32, local, peer netip.AddrPort) {
	t.Helper()
	ino = fdInode(t, fd)
	if sa, err := unix.Getsockname(fd); err == nil {
		local = sockaddrAddrPort(sa)
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		peer = sockaddrAddrPort(sa)
	}
	return ino, local, peer
}

func connInfo(t *testing.T, c syscall.Conn) (ino uint32, local, peer netip.AddrPort) {
	t.Helper()
	// Called inside ns.Do, off the test goroutine: report, don't Fatal.
	rc, err := c.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { ino, local, peer = fdInfo(t, int(fd)) })
	}
	if err != nil {
		t.Errorf("inspecting socket: %v", err)
	}
	return ino, local, peer
}

func unspec(family uint8) netip.AddrPort {
	if family == unix.AF_INET {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
}

// fixture is the set of sockets the root tests open inside their namespace.
type fixture struct {
	ns    *nstest.NS
	wants []want
	dir   string
	// abstract is the abstract unix name (without its leading '@').
	abstract string
	// pendingListener has one connection nobody accepted; pendingClient is
	// that connection's client end.
	pendingListener, pendingClient uint32
	unixListener                   uint32
	unixListenerPath               string
}

func newFixture(t *testing.T) *fixture {
	ns := nstest.New(t)
	f := &fixture{ns: ns, dir: t.TempDir(), abstract: fmt.Sprintf("sstrace-test-%d", ns.Inode())}
	var closers []func() error
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
	})
	keep := func(c interface{ Close() error }) { closers = append(closers, c.Close) }
	keepFD := func(fd int) { closers = append(closers, func() error { return unix.Close(fd) }) }

	addInet := func(name string, c syscall.Conn, family uint8, protocol uint16, state uint8) {
		ino, local, peer := connInfo(t, c)
		if !peer.IsValid() {
			peer = unspec(family)
		}
		typ := uint8(unix.SOCK_STREAM)
		if protocol == unix.IPPROTO_UDP {
			typ = unix.SOCK_DGRAM
		}
		f.wants = append(f.wants, want{name: name, inode: ino, family: family, protocol: protocol, typ: typ,
			state: state, local: local, peer: peer, listed: true})
	}
	addUnix := func(name string, c syscall.Conn, typ, state uint8, path string) uint32 {
		ino, _, _ := connInfo(t, c)
		f.wants = append(f.wants, want{name: name, inode: ino, family: unix.AF_UNIX, typ: typ, state: state, path: path, listed: true})
		return ino
	}

	err := ns.Do(func() error {
		// TCP: listeners, and an established pair on each.
		for _, v := range []struct {
			network, addr string
			family        uint8
		}{
			{"tcp4", "127.0.0.1:0", unix.AF_INET},
			{"tcp6", "[::1]:0", unix.AF_INET6},
		} {
			ln, err := net.Listen(v.network, v.addr)
			if err != nil {
				return err
			}
			keep(ln)
			addInet(v.network+" listener", ln.(*net.TCPListener), v.family, unix.IPPROTO_TCP, StateListen)
			c, err := net.Dial(v.network, ln.Addr().String())
			if err != nil {
				return err
			}
			keep(c)
			s, err := ln.Accept()
			if err != nil {
				return err
			}
			keep(s)
			addInet(v.network+" client", c.(*net.TCPConn), v.family, unix.IPPROTO_TCP, StateEstablished)
			addInet(v.network+" server", s.(*net.TCPConn), v.family, unix.IPPROTO_TCP, StateEstablished)
		}
		// A dual-stack listener: an IPv4 client's accepted socket is
		// AF_INET6 with v4-mapped addresses.
		ln, err := net.Listen("tcp", "[::]:0")
		if err != nil {
			return err
		}
		keep(ln)
		addInet("dual-stack listener", ln.(*net.TCPListener), unix.AF_INET6, unix.IPPROTO_TCP, StateListen)
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port))
		if err != nil {
			return err
		}
		keep(c)
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		keep(s)
		addInet("v4 client of dual-stack", c.(*net.TCPConn), unix.AF_INET, unix.IPPROTO_TCP, StateEstablished)
		addInet("v4-mapped server", s.(*net.TCPConn), unix.AF_INET6, unix.IPPROTO_TCP, StateEstablished)

		// Bound but never listened nor connected: TCP_BOUND_INACTIVE.
		for _, v := range []struct {
			family uint8
			sa     unix.Sockaddr
		}{
			{unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}},
			{unix.AF_INET6, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}},
		} {
			fd, err := unix.Socket(int(v.family), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			keepFD(fd)
			if err := unix.Bind(fd, v.sa); err != nil {
				return err
			}
			ino, local, _ := fdInfo(t, fd)
			f.wants = append(f.wants, want{name: fmt.Sprintf("bound-inactive family %d", v.family), inode: ino,
				family: v.family, protocol: unix.IPPROTO_TCP, typ: unix.SOCK_STREAM, state: StateBoundInactive,
				local: local, peer: unspec(v.family), listed: boundInactiveListed(t, 1) > 0})
		}
		// Neither bound nor connected: TCP_CLOSE, which no dump lists.
		for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
			fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			keepFD(fd)
			f.wants = append(f.wants, want{name: fmt.Sprintf("unbound type %d", typ), inode: fdInode(t, fd)})
		}

		// UDP: bound, and connected.
		for _, v := range []struct {
			network, addr string
			family        uint8
		}{
			{"udp4", "127.0.0.1:0", unix.AF_INET},
			{"udp6", "[::1]:0", unix.AF_INET6},
		} {
			u, err := net.ListenPacket(v.network, v.addr)
			if err != nil {
				return err
			}
			keep(u)
			addInet(v.network+" bound", u.(*net.UDPConn), v.family, unix.IPPROTO_UDP, StateClose)
			d, err := net.Dial(v.network, u.LocalAddr().String())
			if err != nil {
				return err
			}
			keep(d)
			addInet(v.network+" connected", d.(*net.UDPConn), v.family, unix.IPPROTO_UDP, StateEstablished)
		}

		// Unix stream: listener with an accepted connection.
		f.unixListenerPath = filepath.Join(f.dir, "stream.sock")
		ul, err := net.Listen("unix", f.unixListenerPath)
		if err != nil {
			return err
		}
		keep(ul)
		f.unixListener = addUnix("unix listener", ul.(*net.UnixListener), unix.SOCK_STREAM, StateListen, f.unixListenerPath)
		uc, err := net.Dial("unix", f.unixListenerPath)
		if err != nil {
			return err
		}
		keep(uc)
		us, err := ul.Accept()
		if err != nil {
			return err
		}
		keep(us)
		addUnix("unix client", uc.(*net.UnixConn), unix.SOCK_STREAM, StateEstablished, "")
		// The accepted socket shares the listener's address.
		addUnix("unix server", us.(*net.UnixConn), unix.SOCK_STREAM, StateEstablished, f.unixListenerPath)

		// An abstract listener with a connection nobody accepts.
		al, err := net.Listen("unix", "@"+f.abstract)
		if err != nil {
			return err
		}
		keep(al)
		f.pendingListener = addUnix("abstract listener", al.(*net.UnixListener), unix.SOCK_STREAM, StateListen, "@"+f.abstract)
		ac, err := net.Dial("unix", "@"+f.abstract)
		if err != nil {
			return err
		}
		keep(ac)
		f.pendingClient = addUnix("pending client", ac.(*net.UnixConn), unix.SOCK_STREAM, StateEstablished, "")

		// Unix datagram, bound.
		dp := filepath.Join(f.dir, "dgram.sock")
		ud, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dp, Net: "unixgram"})
		if err != nil {
			return err
		}
		keep(ud)
		addUnix("unix dgram", ud, unix.SOCK_DGRAM, StateClose, dp)
		return nil
	})
	if err != nil {
		t.Fatalf("opening sockets in the namespace: %v", err)
	}
	return f
}

// dumpIn runs Dump inside the namespace.
func dumpIn(t *testing.T, ns *nstest.NS, req DumpRequest) []Socket {
	t.Helper()
	var out []Socket
	if err := ns.Do(func() (err error) {
		out, err = Dump(req)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func byInode(socks []Socket) map[uint32]Socket {
	m := make(map[uint32]Socket, len(socks))
	for _, s := range socks {
		m[s.Inode] = s
	}
	return m
}

func TestDumpRoot(t *testing.T) {
	f := newFixture(t)
	ns := f.ns

	var inet []Socket
	for _, r := range []DumpRequest{
		{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP},
		{Family: unix.AF_INET6, Protocol: unix.IPPROTO_TCP},
		{Family: unix.AF_INET, Protocol: unix.IPPROTO_UDP},
		{Family: unix.AF_INET6, Protocol: unix.IPPROTO_UDP},
	} {
		socks := dumpIn(t, ns, r)
		for _, s := range socks {
			if s.Family != r.Family || s.Protocol != r.Protocol {
				t.Errorf("dump of %s returned %+v", dumpName(r.Family, r.Protocol), s)
			}
		}
		inet = append(inet, socks...)
	}
	unixSocks := dumpIn(t, ns, DumpRequest{Family: unix.AF_UNIX})
	all := append(append([]Socket(nil), inet...), unixSocks...)
	got := byInode(all)
	for _, s := range all {
		if s.NetNS != ns.Inode() {
			t.Errorf("socket %d: NetNS %d, want %d", s.Inode, s.NetNS, ns.Inode())
		}
		if s.UID != 0 && s.Family != unix.AF_UNIX {
			t.Errorf("socket %d: uid %d", s.Inode, s.UID)
		}
	}

	for _, w := range f.wants {
		s, ok := got[w.inode]
		if !w.listed {
			if ok {
				t.Errorf("%s (inode %d) is listed: %+v", w.name, w.inode, s)
			}
			continue
		}
		if !ok {
			t.Errorf("%s (inode %d) not found", w.name, w.inode)
			continue
		}
		if s.Family != w.family || s.Type != w.typ || s.State != w.state || s.Protocol != w.protocol {
			t.Errorf("%s: family %d type %d state %d protocol %d, want %d %d %d %d", w.name,
				s.Family, s.Type, s.State, s.Protocol, w.family, w.typ, w.state, w.protocol)
		}
		if w.family == unix.AF_UNIX {
			if s.Path != w.path {
				t.Errorf("%s: path %q, want %q", w.name, s.Path, w.path)
			}
			continue
		}
		if s.Local != w.local || s.Peer != w.peer {
			t.Errorf("%s: %v -> %v, want %v -> %v", w.name, s.Local, s.Peer, w.local, w.peer)
		}
		// The kernel adds INET_DIAG_SKV6ONLY for v6 sockets in LISTEN or
		// CLOSE only.
		v6only := s.Family == unix.AF_INET6 && (w.state == StateListen || w.state == StateClose || w.state == StateBoundInactive)
		if s.HasV6Only != v6only {
			t.Errorf("%s: INET_DIAG_SKV6ONLY present: %v, want %v", w.name, s.HasV6Only, v6only)
		}
		if s.State != StateListen && s.State != StateBoundInactive && s.Protocol == unix.IPPROTO_TCP && !s.HasShutdown {
			t.Errorf("%s: no INET_DIAG_SHUTDOWN", w.name)
		}
	}
	// The v4-mapped server really is v6 with mapped addresses.
	for _, w := range f.wants {
		if w.name == "v4-mapped server" && !(got[w.inode].Local.Addr().Is4In6() && got[w.inode].Peer.Addr().Is4In6()) {
			t.Errorf("v4-mapped server: %v -> %v", got[w.inode].Local, got[w.inode].Peer)
		}
	}

	// Cookies: non-zero and distinct (per family: inet and unix cookies
	// come from the same counter, but check each dump's own anyway).
	for _, socks := range [][]Socket{inet, unixSocks} {
		seen := map[uint64]uint32{}
		for _, s := range socks {
			if s.Cookie == 0 {
				t.Errorf("socket %d: cookie 0", s.Inode)
			}
			if o, dup := seen[s.Cookie]; dup {
				t.Errorf("sockets %d and %d share cookie %#x", o, s.Inode, s.Cookie)
			}
			seen[s.Cookie] = s.Inode
		}
	}

	// Unix peers point at each other, but the client of a connection not
	// yet accepted points at the embryonic server end, which has no inode
	// yet (and is not listed).
	if p := got[f.pendingClient].PeerInode; p != 0 {
		t.Errorf("pending client: peer inode %d, want 0", p)
	}
	for _, s := range unixSocks {
		if s.State == StateEstablished && s.Inode != f.pendingClient {
			p, ok := got[s.PeerInode]
			if !ok {
				t.Errorf("unix %d: peer %d not listed", s.Inode, s.PeerInode)
			} else if p.PeerInode != s.Inode {
				t.Errorf("unix %d: peer %d has peer %d", s.Inode, s.PeerInode, p.PeerInode)
			}
		}
	}

	t.Run("ss agrees", func(t *testing.T) {
		visible := func(socks []Socket, protocol uint16) map[uint32]bool {
			m := map[uint32]bool{}
			for _, s := range socks {
				// ss 6.1 asks for states 0..11 of SS_ALL (0xfff), not
				// bit 13.
				if s.Protocol == protocol && s.State != StateBoundInactive {
					m[s.Inode] = true
				}
			}
			return m
		}
		compareSS(t, ns, []string{"-Htane"}, inoField, visible(inet, unix.IPPROTO_TCP))
		compareSS(t, ns, []string{"-Huane"}, inoField, visible(inet, unix.IPPROTO_UDP))
		compareSS(t, ns, []string{"-Hxa"}, unixInoField, visible(unixSocks, 0))
		// And what we see with bit 13 is exactly what ss's states miss.
		var bound int
		for _, s := range inet {
			if s.State == StateBoundInactive {
				bound++
			}
		}
		if want := boundInactiveListed(t, 2); bound != want {
			t.Errorf("%d bound-inactive sockets, want %d", bound, want)
		}
	})
}

var inoRE = regexp.MustCompile(`\bino:(\d+)\b`)

func inoField(line string) (uint32, error) {
	m := inoRE.FindStringSubmatch(line)
	if m == nil {
		return 0, fmt.Errorf("no ino: in %q", line)
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	return uint32(n), err
}

// unixInoField reads "u_str LISTEN 0 4096 /path 1234 * 0": the inode is the
// local "port".
func unixInoField(line string) (uint32, error) {
	fs := strings.Fields(line)
	if len(fs) < 8 {
		return 0, fmt.Errorf("short ss line %q", line)
	}
	n, err := strconv.ParseUint(fs[5], 10, 32)
	return uint32(n), err
}

func compareSS(t *testing.T, ns *nstest.NS, args []string, ino func(string) (uint32, error), want map[uint32]bool) {
	t.Helper()
	out, err := ns.Output("ss", args...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(out) == 0 {
		lines = nil
	}
	got := map[uint32]bool{}
	for _, l := range lines {
		n, err := ino(l)
		if err != nil {
			t.Fatalf("ss %v: %v", args, err)
		}
		got[n] = true
	}
	if len(lines) != len(want) || len(got) != len(want) {
		t.Errorf("ss %v: %d rows (%d inodes), we dumped %d:\n%s", args, len(lines), len(got), len(want), out)
	}
	var missing, extra []uint32
	for n := range want {
		if !got[n] {
			missing = append(missing, n)
		}
	}
	for n := range got {
		if !want[n] {
			extra = append(extra, n)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	sort.Slice(extra, func(i, j int) bool { return extra[i] < extra[j] })
	if len(missing)+len(extra) > 0 {
		t.Errorf("ss %v: inodes we have and ss lacks %v, ss has and we lack %v", args, missing, extra)
	}
}

func TestDumpRootStatesAndExtensions(t *testing.T) {
	f := newFixture(t)
	ns := f.ns

	// What ss asks (0xfff) leaves the bound-inactive sockets out; listen
	// only gives listeners.
	for _, tt := range []struct {
		states uint32
		ok     func(state uint8) bool
	}{
		{0xfff, func(s uint8) bool { return s != StateBoundInactive }},
		{1 << StateListen, func(s uint8) bool { return s == StateListen }},
		{1 << StateBoundInactive, func(s uint8) bool { return s == StateBoundInactive }},
	} {
		var n int
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			for _, s := range dumpIn(t, ns, DumpRequest{Family: fam, Protocol: unix.IPPROTO_TCP, States: tt.states}) {
				n++
				if !tt.ok(s.State) {
					t.Errorf("states %#x: got a socket in state %d", tt.states, s.State)
				}
			}
		}
		if n == 0 && (tt.states != 1<<StateBoundInactive || boundInactiveListed(t, 1) > 0) {
			t.Errorf("states %#x: nothing dumped", tt.states)
		}
	}

	// Extensions as ss -tmi asks them.
	ext := uint8(1<<(InetDiagMemInfo-1) | 1<<(InetDiagSkMemInfo-1) | 1<<(InetDiagInfo-1) |
		1<<(InetDiagVegasInfo-1) | 1<<(InetDiagCong-1))
	var raw [][]byte
	socks := dumpIn(t, ns, DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ext,
		Raw: func(m []byte) { raw = append(raw, append([]byte(nil), m...)) }})
	if len(raw) != len(socks)+1 || ne.Uint16(raw[len(raw)-1][4:]) != unix.NLMSG_DONE {
		t.Fatalf("%d raw messages for %d sockets", len(raw), len(socks))
	}
	for i, s := range socks {
		if s.State == StateBoundInactive {
			continue
		}
		if len(s.MemInfo) < 9 {
			t.Errorf("socket %d (state %d): skmeminfo %v", s.Inode, s.State, s.MemInfo)
		}
		if len(s.TCPInfo) < 104 || s.TCPInfo[0] != s.State {
			t.Errorf("socket %d (state %d): tcp_info %x", s.Inode, s.State, s.TCPInfo)
		}
		if s.CongAlg == "" {
			t.Errorf("socket %d: no congestion algorithm", s.Inode)
		}
		if r, err := DecodeInet(raw[i][nlmsgHdrLen:], unix.IPPROTO_TCP); err != nil || r.Inode != s.Inode {
			t.Errorf("raw message %d decodes to %d (%v), want %d", i, r.Inode, err, s.Inode)
		}
	}

	// Unix extras as ss -xme asks them, and the uid.
	us := byInode(dumpIn(t, ns, DumpRequest{Family: unix.AF_UNIX,
		UnixShow: UDiagShowVFS | UDiagShowIcons | UDiagShowMemInfo | UDiagShowUID}))
	var st unix.Stat_t
	if err := unix.Stat(f.unixListenerPath, &st); err != nil {
		t.Fatal(err)
	}
	if l := us[f.unixListener]; l.VFSInode != uint32(st.Ino) || l.VFSInode == 0 {
		t.Errorf("unix listener: vfs inode %d, want %d", l.VFSInode, st.Ino)
	}
	pl := us[f.pendingListener]
	if len(pl.Icons) != 1 || pl.Icons[0] != f.pendingClient {
		t.Errorf("abstract listener: icons %v, want [%d]", pl.Icons, f.pendingClient)
	}
	if pl.RecvQ != 1 {
		t.Errorf("abstract listener: backlog %d, want 1", pl.RecvQ)
	}
	for _, s := range us {
		if len(s.MemInfo) < 9 {
			t.Errorf("unix %d: meminfo %v", s.Inode, s.MemInfo)
		}
		if s.Type == unix.SOCK_STREAM && s.State == StateEstablished && !s.HasShutdown {
			t.Errorf("unix %d: no UNIX_DIAG_SHUTDOWN", s.Inode)
		}
	}
}

// BenchmarkDumpRoot dumps a namespace holding 1 listener and N established
// connections (2N+1 TCP sockets), and has ss do the same for comparison.
func BenchmarkDumpRoot(b *testing.B) {
	if testing.Short() {
		b.Skip("opens thousands of sockets")
	}
	for _, n := range []int{1000, 5000} {
		b.Run(strconv.Itoa(2*n+1), func(b *testing.B) {
			ns := nstest.New(b)
			var closers []func() error
			defer func() {
				for _, c := range closers {
					c()
				}
			}()
			if err := ns.Do(func() error {
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					return err
				}
				closers = append(closers, ln.Close)
				for range n {
					c, err := net.Dial("tcp4", ln.Addr().String())
					if err != nil {
						return err
					}
					s, err := ln.Accept()
					if err != nil {
						return err
					}
					closers = append(closers, c.Close, s.Close)
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.Run("dump", func(b *testing.B) {
				b.ReportAllocs()
				if err := ns.Do(func() error {
					for b.Loop() {
						socks, err := Dump(DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP})
						if err != nil {
							return err
						}
						if len(socks) != 2*n+1 {
							return fmt.Errorf("dumped %d sockets, want %d", len(socks), 2*n+1)
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			})
			// The same dump by ss, process start and formatting included,
			// for comparison.
			b.Run("ss-tan", func(b *testing.B) {
				for b.Loop() {
					out, err := ns.Output("ss", "-Htan")
					if err != nil {
						b.Fatal(err)
					}
					if got := strings.Count(string(out), "\n"); got != 2*n+1 {
						b.Fatalf("ss shows %d sockets, want %d", got, 2*n+1)
					}
				}
			})
		})
	}
}

// boundInactiveListed is n where sock_diag lists bound-only TCP sockets
// (state bit 13, TCP_BOUND_INACTIVE: Linux 6.5), 0 on older kernels,
// which list them under no state: neither ss nor sstrace can show them
// there.
func boundInactiveListed(t *testing.T, n int) int {
	t.Helper()
	if _, v := nstest.KernelVersion(); v < 605 {
		return 0
	}
	return n
}
