package render

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/nstest"
)

// ss state masks (ss.c: SS_ALL, SS_CONN, -l).
const (
	ssAll    = 1<<12 - 1
	ssConn   = ssAll &^ (1<<snapshot.StateListen | 1<<snapshot.StateClose | 1<<snapshot.StateTimeWait | 1<<snapshot.StateSynRecv)
	ssListen = 1<<snapshot.StateListen | 1<<snapshot.StateClose
)

// tableSpec is one socket table ss dumps: unix (proto 0), or an inet
// protocol, which ss dumps for IPv4 then IPv6.
type tableSpec struct {
	proto  uint16
	states uint32
}

var (
	unixAll = tableSpec{0, ssAll}
	udpAll  = tableSpec{unix.IPPROTO_UDP, ssAll}
	tcpAll  = tableSpec{unix.IPPROTO_TCP, ssAll}
)

// dumpTables dumps the tables in ss's order; it must run inside the
// namespace (ns.Do).
func dumpTables(specs []tableSpec, extended bool) ([]snapshot.Socket, error) {
	var out []snapshot.Socket
	var err error
	for _, sp := range specs {
		if sp.proto == 0 {
			show := uint32(0)
			if extended {
				show = snapshot.UDiagShowVFS | snapshot.UDiagShowIcons
			}
			out, err = snapshot.DumpAppend(out, snapshot.DumpRequest{Family: unix.AF_UNIX, States: sp.states, UnixShow: show})
			if err != nil {
				return nil, err
			}
			continue
		}
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			out, err = snapshot.DumpAppend(out, snapshot.DumpRequest{Family: fam, Protocol: sp.proto, States: sp.states})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// selfOwners maps the inodes of this process's sockets to their owners in
// the order ss -p lists them: ss prepends each fd it finds (walking
// /proc/PID/fd in ascending order) to a hash chain, so the highest fd
// comes first.
func selfOwners() (map[uint32][]snapshot.Owner, error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil, err
	}
	comm := string(stat)
	if i := strings.IndexByte(comm, '('); i >= 0 {
		comm = comm[i+1:]
	}
	if i := strings.IndexByte(comm, ')'); i >= 0 {
		comm = comm[:i]
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	pid := uint32(os.Getpid())
	m := make(map[uint32][]snapshot.Owner)
	for _, fd := range fds {
		l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"), 10, 32)
		if err != nil {
			continue
		}
		m[uint32(ino)] = append([]snapshot.Owner{{PID: pid, FD: uint32(fd), Comm: comm}}, m[uint32(ino)]...)
	}
	return m, nil
}

func fillOwners(socks []snapshot.Socket) error {
	m, err := selfOwners()
	if err != nil {
		return err
	}
	for i := range socks {
		if socks[i].Inode != 0 {
			socks[i].Owners = m[socks[i].Inode]
		}
	}
	return nil
}

// hostsFile resolves addresses from /etc/hosts only, as glibc's files
// backend does (the first line with the address gives its first name), so
// that the test never waits on DNS.
func hostsFile(t *testing.T) func(netip.Addr) (string, bool) {
	b, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[netip.Addr]string)
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		if _, dup := names[a]; !dup {
			names[a] = f[1]
		}
	}
	return func(a netip.Addr) (string, bool) {
		n, ok := names[a.Unmap()]
		return n, ok
	}
}

// closers closes what a test opened, last first, when it ends.
type closers []io.Closer

func (c *closers) keep(x io.Closer) { *c = append(*c, x) }

func (c *closers) closeAll() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i].Close()
	}
}

// setV6Only returns a net Control function that sets IPV6_V6ONLY.
func setV6Only(on int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, on)
		}); err != nil {
			return err
		}
		return serr
	}
}

// openTestSockets opens the sockets the comparisons list; it runs inside
// the namespace.
func openTestSockets(cl *closers, dir string) error {
	ctx := context.Background()
	listen := func(network, addr string, v6only int) (net.Listener, error) {
		lc := net.ListenConfig{KeepAlive: -1}
		if v6only >= 0 {
			lc.Control = setV6Only(v6only)
		}
		l, err := lc.Listen(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s %s: %w", network, addr, err)
		}
		cl.keep(l)
		return l, nil
	}
	// connect dials l at addr and accepts the connection.
	connect := func(l net.Listener, network, addr string, keepAlive time.Duration) (net.Conn, net.Conn, error) {
		d := net.Dialer{KeepAlive: keepAlive}
		c, err := d.Dial(network, addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dialing %s %s: %w", network, addr, err)
		}
		cl.keep(c)
		s, err := l.Accept()
		if err != nil {
			return nil, nil, fmt.Errorf("accepting on %s: %w", l.Addr(), err)
		}
		cl.keep(s)
		return c, s, nil
	}

	// TCP listeners: IPv4 wildcard and loopback, IPv6 dual-stack and
	// v6only wildcards, IPv6 loopback.
	l22, err := listen("tcp4", "0.0.0.0:22", -1)
	if err != nil {
		return err
	}
	l631, err := listen("tcp4", "127.0.0.1:631", -1)
	if err != nil {
		return err
	}
	l80, err := listen("tcp", "[::]:80", 0)
	if err != nil {
		return err
	}
	if _, err := listen("tcp6", "[::]:8080", 1); err != nil {
		return err
	}
	l9000, err := listen("tcp6", "[::1]:9000", -1)
	if err != nil {
		return err
	}
	if _, err := listen("tcp4", "127.0.0.1:5000", -1); err != nil {
		return err
	}

	// IPv4 pair; the client's bytes wait in the server's Recv-Q.
	c, _, err := connect(l22, "tcp4", "127.0.0.1:22", -1)
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		return fmt.Errorf("writing to %s: %w", c.RemoteAddr(), err)
	}
	// An IPv4 client of the dual-stack listener: the accepted socket is
	// IPv6 with v4-mapped addresses. Its client keeps a keepalive timer
	// (2h: ss prints "119min" for a minute).
	if _, _, err := connect(l80, "tcp4", "127.0.0.1:80", 2*time.Hour); err != nil {
		return err
	}
	// IPv6 pair; the client gets a second descriptor: two owners.
	c, _, err = connect(l9000, "tcp6", "[::1]:9000", -1)
	if err != nil {
		return err
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			dupErr = fmt.Errorf("duplicating socket descriptor: %w", err)
			return
		}
		cl.keep(os.NewFile(uintptr(nfd), "dup"))
	}); err != nil {
		return err
	}
	if dupErr != nil {
		return dupErr
	}
	// Half-closed pair: FIN-WAIT-2 and CLOSE-WAIT, with shutdown marks.
	c, _, err = connect(l631, "tcp4", "127.0.0.1:631", -1)
	if err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("shutting down %s: %w", c.LocalAddr(), err)
	}

	// UDP: IPv4 wildcard and loopback, IPv6 dual-stack and v6only
	// wildcards, and a connected pair.
	packet := func(network, addr string, v6only int) (*net.UDPConn, error) {
		var lc net.ListenConfig
		if v6only >= 0 {
			lc.Control = setV6Only(v6only)
		}
		p, err := lc.ListenPacket(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s %s: %w", network, addr, err)
		}
		cl.keep(p)
		return p.(*net.UDPConn), nil
	}
	if _, err := packet("udp4", "0.0.0.0:53", -1); err != nil {
		return err
	}
	u1, err := packet("udp4", "127.0.0.1:0", -1)
	if err != nil {
		return err
	}
	if _, err := packet("udp", "[::]:5353", 0); err != nil {
		return err
	}
	if _, err := packet("udp6", "[::]:123", 1); err != nil {
		return err
	}
	uc, err := net.DialUDP("udp4", nil, u1.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return fmt.Errorf("connecting udp socket: %w", err)
	}
	cl.keep(uc)

	// Unix: a stream listener on a path with an accepted pair, an abstract
	// listener with two connections waiting in accept (-e peers), a
	// seqpacket pair, a bound datagram socket and unnamed pairs.
	ul, err := net.Listen("unix", filepath.Join(dir, "stream.sock"))
	if err != nil {
		return fmt.Errorf("listening on unix socket: %w", err)
	}
	cl.keep(ul)
	if _, _, err := connect(ul, "unix", filepath.Join(dir, "stream.sock"), 0); err != nil {
		return err
	}
	abstract := fmt.Sprintf("@sstrace-render-test-%d", os.Getpid())
	al, err := net.Listen("unix", abstract)
	if err != nil {
		return fmt.Errorf("listening on abstract unix socket: %w", err)
	}
	cl.keep(al)
	for range 2 {
		c, err := net.Dial("unix", abstract)
		if err != nil {
			return fmt.Errorf("dialing %s: %w", abstract, err)
		}
		cl.keep(c)
	}
	sl, err := net.Listen("unixpacket", filepath.Join(dir, "seq.sock"))
	if err != nil {
		return fmt.Errorf("listening on seqpacket socket: %w", err)
	}
	cl.keep(sl)
	if _, _, err := connect(sl, "unixpacket", filepath.Join(dir, "seq.sock"), 0); err != nil {
		return err
	}
	dg, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "dgram.sock"), Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("binding datagram socket: %w", err)
	}
	cl.keep(dg)
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_STREAM} {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socketpair: %w", err)
		}
		cl.keep(os.NewFile(uintptr(fds[0]), "pair0"))
		cl.keep(os.NewFile(uintptr(fds[1]), "pair1"))
	}
	return nil
}

// settle waits, without sleeping, until no TCP socket in the namespace
// has a retransmission pending (an ACK still in flight on loopback), so
// that ss and the dump see the same timers.
func settle(t *testing.T, ns *nstest.NS) {
	t.Helper()
	for try := 0; ; try++ {
		var busy bool
		if err := ns.Do(func() error {
			socks, err := dumpTables([]tableSpec{tcpAll}, false)
			for _, s := range socks {
				if s.Timer == 1 {
					busy = true
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !busy {
			return
		}
		if try > 100000 {
			t.Fatal("a retransmission timer stays pending on loopback")
		}
		runtime.Gosched()
	}
}

type ssCase struct {
	args   []string
	tables []tableSpec
	opt    Options
}

// ssCases are ss invocations and what the caller of Table would pass for
// them.
func ssCases(svc *Services) []ssCase {
	tcpConn := tableSpec{unix.IPPROTO_TCP, ssConn}
	tcpListen := tableSpec{unix.IPPROTO_TCP, ssListen}
	estab := tableSpec{unix.IPPROTO_TCP, 1 << snapshot.StateEstablished}
	udpListen := tableSpec{unix.IPPROTO_UDP, ssListen}
	std := Options{ShowState: true, Header: true, Numeric: true}
	with := func(o Options, f func(*Options)) Options { f(&o); return o }
	return []ssCase{
		{[]string{"-tan"}, []tableSpec{tcpAll}, std},
		{[]string{"-Htan"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Header = false })},
		{[]string{"-ta"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Numeric = false; o.Services = svc })},
		{[]string{"-tn"}, []tableSpec{tcpConn}, std},
		{[]string{"-tln"}, []tableSpec{tcpListen}, std},
		{[]string{"-tlnp"}, []tableSpec{tcpListen}, with(std, func(o *Options) { o.Processes = true })},
		{[]string{"-tanp"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Processes = true })},
		{[]string{"-tano"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Options = true })},
		{[]string{"-tane"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Options, o.Extended = true, true })},
		{[]string{"-tanep"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Options, o.Extended, o.Processes = true, true, true })},
		{[]string{"-tanr"}, []tableSpec{tcpAll}, with(std, func(o *Options) { o.Resolve = true })},
		{[]string{"-tn", "state", "established"}, []tableSpec{estab}, with(std, func(o *Options) { o.ShowState = false })},
		{[]string{"-Htn", "state", "established"}, []tableSpec{estab}, Options{Numeric: true}},
		{[]string{"-uan"}, []tableSpec{udpAll}, std},
		{[]string{"-ua"}, []tableSpec{udpAll}, with(std, func(o *Options) { o.Numeric = false; o.Services = svc })},
		{[]string{"-ulnep"}, []tableSpec{udpListen}, with(std, func(o *Options) { o.Options, o.Extended, o.Processes = true, true, true })},
		{[]string{"-xa"}, []tableSpec{unixAll}, with(std, func(o *Options) { o.ShowNetid = true })},
		{[]string{"-xae"}, []tableSpec{unixAll}, with(std, func(o *Options) { o.ShowNetid, o.Options, o.Extended = true, true, true })},
		{[]string{"-xap"}, []tableSpec{unixAll}, with(std, func(o *Options) { o.ShowNetid, o.Processes = true, true })},
		{[]string{"-tuan"}, []tableSpec{udpAll, tcpAll}, with(std, func(o *Options) { o.ShowNetid = true })},
		{[]string{"-tuxan"}, []tableSpec{unixAll, udpAll, tcpAll}, with(std, func(o *Options) { o.ShowNetid = true })},
		{[]string{"-tuxaep"}, []tableSpec{unixAll, udpAll, tcpAll}, with(std, func(o *Options) {
			o.ShowNetid, o.Numeric, o.Services, o.Options, o.Extended, o.Processes = true, false, svc, true, true, true
		})},
		{[]string{"-tuxanO"}, []tableSpec{unixAll, udpAll, tcpAll}, with(std, func(o *Options) { o.ShowNetid, o.Oneline = true, true })},
	}
}

// rows dumps the tables of c inside ns as the caller of Table would.
func rows(t *testing.T, ns *nstest.NS, c ssCase) []snapshot.Socket {
	t.Helper()
	var socks []snapshot.Socket
	if err := ns.Do(func() error {
		var err error
		socks, err = dumpTables(c.tables, c.opt.Extended)
		if err != nil {
			return err
		}
		if c.opt.Processes {
			return fillOwners(socks)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return socks
}

// TestAgainstSS compares Table with the real ss, byte for byte, on sockets
// opened in a fresh network namespace.
func TestAgainstSS(t *testing.T) {
	ns := nstest.New(t)
	var cl closers
	t.Cleanup(cl.closeAll)
	if err := ns.Do(func() error { return openTestSockets(&cl, t.TempDir()) }); err != nil {
		t.Fatal(err)
	}
	var svc *Services
	if err := ns.Do(func() (err error) {
		svc, err = LoadServices("/etc/services")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hosts := hostsFile(t)
	settle(t, ns)
	for _, c := range ssCases(svc) {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			want, err := ns.Output("ss", c.args...)
			if err != nil {
				t.Fatal(err)
			}
			socks := rows(t, ns, c)
			opt := c.opt
			opt.HostName = hosts
			var got bytes.Buffer
			if err := ns.Do(func() error { return Table(&got, socks, opt) }); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("ss %s: output differs:\n%s\nss printed:\n%s", strings.Join(c.args, " "), lineDiff(want, got.Bytes()), want)
			}
			if len(socks) == 0 {
				t.Errorf("ss %s: no sockets: the comparison proves little", strings.Join(c.args, " "))
			}
			if testing.Verbose() {
				t.Logf("ss %s:\n%s", strings.Join(c.args, " "), want)
			}
		})
	}
}

// ssOnTTY runs ss inside ns with its stdout on a pseudo-terminal of the
// given width and returns what it printed.
func ssOnTTY(ns *nstest.NS, cols uint16, args ...string) ([]byte, error) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	defer ptmx.Close()
	pfd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(pfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlocking pty: %w", err)
	}
	n, err := unix.IoctlGetInt(pfd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("getting pty number: %w", err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening pty: %w", err)
	}
	tfd := int(tty.Fd())
	if err := unix.IoctlSetWinsize(tfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: cols}); err != nil {
		tty.Close()
		return nil, fmt.Errorf("setting pty size: %w", err)
	}
	tio, err := unix.IoctlGetTermios(tfd, unix.TCGETS)
	if err != nil {
		tty.Close()
		return nil, err
	}
	tio.Oflag &^= unix.OPOST // no \n → \r\n
	if err := unix.IoctlSetTermios(tfd, unix.TCSETS, tio); err != nil {
		tty.Close()
		return nil, err
	}
	out := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, ptmx) // ends with EIO once the last slave fd is closed
		out <- b.Bytes()
	}()
	var stderr bytes.Buffer
	runErr := ns.Do(func() error {
		cmd := exec.Command("ss", args...)
		cmd.Stdout = tty
		cmd.Stderr = &stderr
		return cmd.Run()
	})
	tty.Close()
	b := <-out
	if runErr != nil {
		return nil, fmt.Errorf("running ss %v: %w: %s", args, runErr, stderr.Bytes())
	}
	return b, nil
}

// TestAgainstSSOnTTY compares the terminal layouts (columns spread over the
// screen width, wrapped when they do not fit).
func TestAgainstSSOnTTY(t *testing.T) {
	ns := nstest.New(t)
	var cl closers
	t.Cleanup(cl.closeAll)
	if err := ns.Do(func() error { return openTestSockets(&cl, t.TempDir()) }); err != nil {
		t.Fatal(err)
	}
	settle(t, ns)
	cases := ssCases(nil)
	pick := map[string]bool{"-tan": true, "-Htan": true, "-tanep": true, "-xa": true, "-xae": true, "-tuxan": true, "-tn_state_established": true, "-Htn_state_established": true}
	for _, width := range []uint16{40, 80, 120, 200, 300} {
		for _, c := range cases {
			name := strings.Join(c.args, "_")
			if !pick[name] {
				continue
			}
			t.Run(fmt.Sprintf("%s_%d", name, width), func(t *testing.T) {
				want, err := ssOnTTY(ns, width, c.args...)
				if err != nil {
					t.Fatal(err)
				}
				socks := rows(t, ns, c)
				opt := c.opt
				opt.ScreenWidth = int(width)
				var got bytes.Buffer
				if err := ns.Do(func() error { return Table(&got, socks, opt) }); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("ss %s on a %d-column terminal: output differs:\n%s", strings.Join(c.args, " "), width, lineDiff(want, got.Bytes()))
				}
			})
		}
	}
}

// parker opens UDP sockets and parks each in flight in an SCM_RIGHTS
// message queued on a unix socket, so that the sockets live on without
// taking descriptors (RLIMIT_NOFILE may be lower than their number, and not
// raisable). It must be used inside the namespace.
type parker struct {
	keep  []int // the queues' descriptors: closing them closes the sockets
	w     int
	batch []int
}

func newParker() *parker { return &parker{w: -1, batch: make([]int, 0, 253)} }

func (p *parker) close() {
	for _, fd := range p.batch {
		unix.Close(fd)
	}
	for _, fd := range p.keep {
		unix.Close(fd)
	}
}

// udp opens a UDP socket bound to addr:port.
func (p *parker) udp(addr [4]byte, port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: addr}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("binding %v:%d: %w", addr, port, err)
	}
	p.batch = append(p.batch, fd)
	if len(p.batch) == cap(p.batch) {
		return p.flush()
	}
	return nil
}

func (p *parker) flush() error {
	for len(p.batch) > 0 {
		if p.w < 0 {
			pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("socketpair: %w", err)
			}
			p.keep = append(p.keep, pair[0], pair[1])
			p.w = pair[0]
		}
		err := unix.Sendmsg(p.w, []byte{0}, unix.UnixRights(p.batch...), nil, 0)
		if err == unix.EAGAIN {
			p.w = -1 // this queue is full: start another
			continue
		}
		if err != nil {
			return fmt.Errorf("sending descriptors: %w", err)
		}
		for _, fd := range p.batch {
			unix.Close(fd)
		}
		p.batch = p.batch[:0]
	}
	return nil
}

// TestAgainstSSBatches lists enough sockets that ss prints its buffer in
// two batches, each laid out with the column widths measured so far.
func TestAgainstSSBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 52000 sockets")
	}
	ns := nstest.New(t)
	p := newParker()
	t.Cleanup(p.close)
	c := ssCase{[]string{"-uane"}, []tableSpec{udpAll}, Options{ShowState: true, Header: true, Numeric: true, Options: true, Extended: true}}
	// 50000 sockets on 127.0.0.1, then 2000 on a longer address with the
	// ports of the sockets the dump lists last: a port's sockets share a
	// hash slot, so the wide rows come at the end of the dump, in ss's
	// second batch (the first holds about 43000 rows).
	const narrow, wide = 50000, 2000
	if err := ns.Do(func() error {
		for i := range narrow {
			if err := p.udp([4]byte{127, 0, 0, 1}, 1024+i); err != nil {
				return err
			}
		}
		if err := p.flush(); err != nil {
			return err
		}
		socks, err := dumpTables(c.tables, false)
		if err != nil {
			return err
		}
		for _, s := range socks[len(socks)-wide:] {
			if err := p.udp([4]byte{127, 100, 100, 100}, int(s.Local.Port())); err != nil {
				return err
			}
		}
		return p.flush()
	}); err != nil {
		t.Fatal(err)
	}
	want, err := ns.Output("ss", c.args...)
	if err != nil {
		t.Fatal(err)
	}
	socks := rows(t, ns, c)
	if len(socks) != narrow+wide {
		t.Fatalf("dumped %d sockets, want %d", len(socks), narrow+wide)
	}
	var got bytes.Buffer
	tb := newTabler(&got, &c.opt)
	tb.header()
	for i := range socks {
		tb.row(&socks[i])
	}
	if err := tb.finish(); err != nil {
		t.Fatal(err)
	}
	if tb.batches != 2 {
		t.Fatalf("rendered in %d batch(es), want 2", tb.batches)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("ss %s: output differs:\n%s", strings.Join(c.args, " "), lineDiff(want, got.Bytes()))
	}
	// The batches must show: rows are padded to their batch's widths, so
	// the first and the next-to-last rows differ in length.
	lines := bytes.Split(want, []byte("\n"))
	if first, late := len(lines[1]), len(lines[len(lines)-3]); first == late {
		t.Errorf("rows of the first and last batches are both %d bytes long: the batches are not told apart", first)
	}
	t.Logf("%d sockets, %d bytes, %d batches", len(socks), got.Len(), tb.batches)
}
