package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/filter"
	"sstrace/snapshot/nstest"
)

// watchBlock is one block of watch's output: its rows (without the column
// header), normalized.
type watchBlock struct {
	header string
	rows   []string
}

// startWatch runs sstrace watch with args (inside the fixture's namespace
// when inside is set) and returns its blocks and its other stdout lines.
func startWatch(t *testing.T, f *fixture, inside bool, args ...string) (<-chan watchBlock, <-chan string) {
	t.Helper()
	cmd := exec.Command(sstraceBin, append([]string{"watch"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := newWatchStderr()
	cmd.Stderr = stderr
	if inside {
		err = f.ns.Do(cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("watch stderr: %s", stderr.String())
		}
	})
	blocks := make(chan watchBlock)
	other := make(chan string, 100)
	go func() {
		defer close(blocks)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "--- ") {
				select {
				case other <- l:
				default:
				}
				continue
			}
			var n int
			fields := strings.Fields(l)
			if len(fields) < 3 {
				return
			}
			fmt.Sscan(fields[2], &n)
			b := watchBlock{header: l}
			if !sc.Scan() { // column header
				return
			}
			for i := 0; i < n && sc.Scan(); i++ {
				b.rows = append(b.rows, sc.Text())
			}
			b.rows = normalize([]byte(strings.Join(b.rows, "\n")))
			if n == 0 {
				b.rows = nil
			}
			blocks <- b
		}
		io.Copy(io.Discard, stdout)
	}()
	stderr.waitReady(t)
	return blocks, other
}

// watchStderr is watch's standard error, collected safely; ready is closed
// once watch says it is watching (with a TCP table: once its tracer is
// attached and the event-fed table loaded, after the first frame).
type watchStderr struct {
	mu    sync.Mutex
	b     strings.Builder
	ready chan struct{}
	once  sync.Once
}

func newWatchStderr() *watchStderr { return &watchStderr{ready: make(chan struct{})} }

func (w *watchStderr) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), "sstrace: watching ") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *watchStderr) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitReady returns once watch said it is watching: what it prints from
// then on reflects every socket event.
func (w *watchStderr) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-w.ready:
	case <-time.After(time.Minute):
		t.Fatalf("watch not watching after a minute; stderr: %s", w.String())
	}
}

func nextBlock(t *testing.T, blocks <-chan watchBlock) watchBlock {
	t.Helper()
	b, ok := <-blocks
	if !ok {
		t.Fatal("watch stopped printing")
	}
	return b
}

// TestWatchMatchesSS: watch's blocks, kept by events, list what ss lists.
func TestWatchMatchesSS(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	blocks, _ := startWatch(t, f, true, "-tan", "--interval", "200ms")
	first := nextBlock(t, blocks)
	if len(first.rows) == 0 {
		t.Fatalf("first block has no rows: %s", first.header)
	}

	// After the first block: a listener and a connection to it, which only
	// events can show.
	f.dialUnaccepted(t, "127.0.0.9:7777")
	f.settle(t)

	// Rows compare whole: the new listener's Send-Q (its backlog) comes
	// with its LISTEN event, its Recv-Q (the accept queue, 1: the
	// connection is never accepted) from the children's handshakes.
	waitMatchSS(t, f, blocks, "127.0.0.9:7777")
}

// dialUnaccepted listens on addr in the fixture's namespace and connects
// to it, never accepting; both stay open until the test ends.
func (f *fixture) dialUnaccepted(t *testing.T, addr string) {
	t.Helper()
	err := f.ns.Do(func() error {
		ln, err := plainTCP("tcp4", addr)
		if err != nil {
			return err
		}
		f.keep(func() { ln.Close() })
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		f.keep(func() { c.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitMatchSS waits (at most 50 blocks) for a block that holds want and
// whose rows, as sorted sets, equal ss -tan's at that moment.
func waitMatchSS(t *testing.T, f *fixture, blocks <-chan watchBlock, want string) {
	t.Helper()
	var got, ss []string
	for i := 0; i < 50; i++ {
		b := nextBlock(t, blocks)
		if !strings.Contains(strings.Join(b.rows, "\n"), want) {
			continue
		}
		out, err := f.ns.Output("ss", "-Htan")
		if err != nil {
			t.Fatal(err)
		}
		got, ss = sortedRows(b.rows), sortedRows(normalize(out))
		if slices.Equal(got, ss) {
			return
		}
	}
	t.Fatalf("no block with %s matched ss -tan:\nwatch:\n%s\nss:\n%s", want, strings.Join(got, "\n"), strings.Join(ss, "\n"))
}

// TestWatchRequestSockets: a handshake whose last ACK the server never
// gets leaves a request socket (SYN-RECV), which no event names; watch
// shows it as ss does, from its per-frame dump of request sockets.
func TestWatchRequestSockets(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	blocks, _ := startWatch(t, f, true, "-tan", "--interval", "200ms")
	nextBlock(t, blocks)
	nftablesDrop(t, f.ns, "tcp", "dport", "7778", "tcp", "flags", "&", "(syn|ack|fin|rst)", "==", "ack")
	// The client's side completes: the SYN-ACK came; its ACK is dropped.
	f.dialUnaccepted(t, "127.0.0.10:7778")
	waitMatchSS(t, f, blocks, "SYN-RECV")
}

// TestWatchResync: a periodic re-dump finds the event-fed table equal to
// the kernel's, here with the dump made through --netns from outside.
func TestWatchResync(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	blocks, other := startWatch(t, f, false, "-tan", "--interval", "200ms", "--resync", "200ms", "--netns", f.ns.Path())
	nextBlock(t, blocks)
	for i := 0; i < 50; i++ {
		nextBlock(t, blocks)
		select {
		case l := <-other:
			if !strings.HasPrefix(l, "resync: overlay and kernel agree (") {
				t.Fatalf("resync reported: %s", l)
			}
			return
		default:
		}
	}
	t.Fatal("no resync line after 50 blocks")
}

func TestMarkRows(t *testing.T) {
	k := func(c uint64) watchKey { return watchKey{cookie: c} }
	table := "State A B\nLISTEN x\nESTAB y\n"
	lines, prev := markRows(table, true, []watchKey{k(1), k(2)}, nil)
	if want := []string{"  State A B", "  LISTEN x", "  ESTAB y"}; !slices.Equal(lines, want) {
		t.Fatalf("first frame: %q, want %q", lines, want)
	}
	table = "State A B\nLISTEN x\nCLOSE-WAIT y\nESTAB z\n"
	lines, _ = markRows(table, true, []watchKey{k(1), k(2), k(3)}, prev)
	if want := []string{"  State A B", "  LISTEN x", "~ CLOSE-WAIT y", "+ ESTAB z"}; !slices.Equal(lines, want) {
		t.Fatalf("second frame: %q, want %q", lines, want)
	}
	lines, _ = markRows("LISTEN x\n", false, []watchKey{k(1)}, prev)
	if want := []string{"  LISTEN x", "- ESTAB y"}; !slices.Equal(lines, want) {
		t.Fatalf("third frame: %q, want %q", lines, want)
	}
	// Columns widened by another row change no row.
	lines, _ = markRows("State      A B\nLISTEN     x\nCLOSE-WAIT y\n", true, []watchKey{k(1), k(2)}, prev)
	if want := []string{"  State      A B", "  LISTEN     x", "~ CLOSE-WAIT y"}; !slices.Equal(lines, want) {
		t.Fatalf("wider frame: %q, want %q", lines, want)
	}
}

// sortedRows is rows in sort order, for comparing watch's order with ss's.
func sortedRows(rows []string) []string {
	out := slices.Clone(rows)
	slices.Sort(out)
	return out
}

// addWatched opens, in the fixture's namespace, one socket of each table
// watch re-dumps and a TCP connection, all on 127.0.0.9 or named after n,
// (the raw one on 127.0.1.n+1) and returns what their rows contain. Each
// is connected too, so ss's default (connected sockets only) shows it.
func addWatched(t *testing.T, f *fixture, n int) []string {
	t.Helper()
	// Ports services(5) has no name for: the marks hold without -n too.
	udpPort, tcpPort := strconv.Itoa(16000+n), strconv.Itoa(16100+n)
	name := fmt.Sprintf("@sstrace-watch-%s-%d", filepath.Base(f.dir), n)
	err := f.ns.Do(func() error {
		u, err := net.ListenPacket("udp4", "127.0.0.9:"+udpPort)
		if err != nil {
			return err
		}
		f.keep(func() { u.Close() })
		uc, err := net.Dial("udp4", "127.0.0.9:"+udpPort)
		if err != nil {
			return err
		}
		f.keep(func() { uc.Close() })
		raw, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		f.keep(func() { unix.Close(raw) })
		if err := unix.Bind(raw, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 1, byte(n + 1)}}); err != nil {
			return err
		}
		if err := unix.Connect(raw, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		ul, err := net.Listen("unix", name)
		if err != nil {
			return err
		}
		f.keep(func() { ul.Close() })
		ln, err := plainTCP("tcp4", "127.0.0.9:"+tcpPort)
		if err != nil {
			return err
		}
		f.keep(func() { ln.Close() })
		for _, l := range []net.Listener{ul, ln} {
			c, err := net.Dial(l.Addr().Network(), l.Addr().String())
			if err != nil {
				return err
			}
			f.keep(func() { c.Close() })
			a, err := l.Accept()
			if err != nil {
				return err
			}
			f.keep(func() { a.Close() })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return []string{"127.0.0.9:" + udpPort + " ", "127.0.0.9:" + tcpPort + " ", fmt.Sprintf("127.0.1.%d:", n+1), name + " "}
}

// TestWatchTablesMatchSS: the tables watch re-dumps (UDP, raw, unix, and
// with no table option every table ss shows) list what ss lists for the
// same options, sockets opened after watch started included.
func TestWatchTablesMatchSS(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	for n, args := range [][]string{
		{"-uan"},
		{"-ul"},
		{"-xa"},
		{"-x"},
		{"-wan"},
		{"-w"},
		// Every table, netlink's included (with -n the tools' own
		// sock_diag sockets show as port ids normalize cannot tell).
		{"-a"},
		{"-n"}, // ss's default: connected sockets of every table
		{"-tuxan"},
		{"-uwan", "dst", "127.0.0.9"},
		{"-xa", "src", "@sstrace-watch-*"},
		{"-an4"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			blocks, _ := startWatch(t, f, false, append([]string{"--interval", "200ms", "--netns", f.ns.Path()}, args...)...)
			first := nextBlock(t, blocks)
			marks := addWatched(t, f, n)
			f.settle(t)
			shows := func(rows []string) bool {
				for _, r := range rows {
					for _, m := range marks {
						if strings.Contains(r+" ", m) {
							return true
						}
					}
				}
				return false
			}
			if shows(first.rows) {
				t.Fatalf("the first block shows sockets opened after it:\n%s", strings.Join(first.rows, "\n"))
			}
			var got, want []string
			for i := 0; i < 50; i++ {
				b := nextBlock(t, blocks)
				out, err := f.ns.Output("ss", append([]string{"-H"}, args...)...)
				if err != nil {
					t.Fatal(err)
				}
				got, want = sortedRows(b.rows), sortedRows(normalize(out))
				if len(out) == 0 {
					want = nil
				}
				if slices.Equal(got, want) && shows(want) {
					return
				}
			}
			t.Fatalf("no block matched ss %s with the new sockets:\nwatch:\n%s\nss:\n%s", strings.Join(args, " "), strings.Join(got, "\n"), strings.Join(want, "\n"))
		})
	}
}

// churn opens and closes sockets inside ns as fast as it can, far faster
// than a one-page ring can be read: bare socket()+close() (three events
// each) and TCP connections to a listener, every other one closed (its
// client side then in TIME-WAIT). It returns once all of it is done, with
// the listener closed: a child a resync dumped while it waited in the
// accept queue stays counted in its listener's Recv-Q after accept() (the
// overlay counts accept queues only from handshakes it saw), so the
// listener's row would not compare.
func churn(t *testing.T, ns *nstest.NS, keep func(func())) {
	t.Helper()
	err := ns.Do(func() error {
		ln, err := plainTCP("tcp4", "127.0.0.1:7000")
		if err != nil {
			return err
		}
		defer ln.Close()
		for i := 0; i < 300; i++ {
			for j := 0; j < 20; j++ {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				unix.Close(fd)
			}
			c, err := net.Dial("tcp4", "127.0.0.1:7000")
			if err != nil {
				return err
			}
			a, err := ln.Accept()
			if err != nil {
				return err
			}
			if i%2 == 0 {
				if err := closeWithEvents(c, a); err != nil {
					return err
				}
				continue
			}
			keep(func() { c.Close(); a.Close() })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// closeWithEvents closes a connection so that an event tells each step:
// the client's FIN first (shutdown, its fd kept), the server's close once
// it has read it, and the client's fd only once the server's FIN came. The
// client's socket then goes TIME-WAIT by a transition. Closing the
// client's fd first would leave an orphan's FIN-WAIT-2 minisocket, whose
// later TIME-WAIT no event tells (only a resync would).
func closeWithEvents(c, a net.Conn) error {
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	if _, err := io.ReadAll(a); err != nil {
		return err
	}
	if err := a.Close(); err != nil {
		return err
	}
	if _, err := io.ReadAll(c); err != nil {
		return err
	}
	return c.Close()
}

// settleNS returns once ns has no connection in SYN-RECV (ss -tan).
func settleNS(t *testing.T, ns *nstest.NS) {
	t.Helper()
	(&fixture{ns: ns}).settle(t)
}

// TestWatchLostEvents (issue #7): with a one-page ring under socket churn,
// watch shows that events were lost, in its block header and on a
// terminal in its status line; the overlay resynchronizes; and once the
// churn is over the rows are ss's again.
func TestWatchLostEvents(t *testing.T) {
	nstest.RequireRoot(t)
	ring := strconv.Itoa(os.Getpagesize())
	t.Run("blocks", func(t *testing.T) {
		ns := nstest.New(t)
		var closers []func()
		defer func() {
			for _, c := range closers {
				c()
			}
		}()
		f := &fixture{ns: ns}
		blocks, other := startWatch(t, f, false, "-tan", "--interval", "100ms", "--ring-size", ring, "--netns", ns.Path())
		nextBlock(t, blocks)
		churn(t, ns, func(c func()) { closers = append(closers, c) })
		settleNS(t, ns)
		header := regexp.MustCompile(`  events \d+  lost (\d+)  resyncs (\d+) ---$`)
		var b watchBlock
		for i := 0; i < 100; i++ {
			b = nextBlock(t, blocks)
			m := header.FindStringSubmatch(b.header)
			if m == nil {
				t.Fatalf("block header %q", b.header)
			}
			lost, _ := strconv.Atoi(m[1])
			resyncs, _ := strconv.Atoi(m[2])
			if lost == 0 || resyncs == 0 {
				continue
			}
			out, err := ns.Output("ss", "-Htan")
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(sortedRows(b.rows), sortedRows(normalize(out))) {
				t.Logf("%s: %d rows as ss -tan", b.header, len(b.rows))
				for len(other) > 0 {
					if l := <-other; strings.HasPrefix(l, "stale:") {
						t.Errorf("the overlay stayed stale: %s", l)
					}
				}
				return
			}
		}
		out, _ := ns.Output("ss", "-Htan")
		t.Fatalf("no block after the churn showed lost events, a resync and ss -tan's rows; last: %s\n%s\nss:\n%s", b.header, strings.Join(sortedRows(b.rows), "\n"), strings.Join(sortedRows(normalize(out)), "\n"))
	})
	t.Run("terminal", func(t *testing.T) {
		ns := nstest.New(t)
		var closers []func()
		defer func() {
			for _, c := range closers {
				c()
			}
		}()
		frames := startWatchTTY(t, "-tan", "--interval", "100ms", "--ring-size", ring, "--netns", ns.Path())
		nextTTYFrame(t, frames)
		churn(t, ns, func(c func()) { closers = append(closers, c) })
		settleNS(t, ns)
		var fr ttyFrame
		for i := 0; i < 100; i++ {
			fr = nextTTYFrame(t, frames)
			sockets, _, lost, resyncs, ok := ttyCounts(fr.status)
			if !ok {
				t.Fatalf("status line %q", fr.status)
			}
			if strings.Contains(fr.status, "stale:") {
				t.Errorf("the overlay stayed stale: %s", fr.status)
			}
			if lost == 0 || resyncs == 0 {
				continue
			}
			if cur := fr.current(); uint64(len(cur)) != sockets {
				t.Fatalf("status says %d sockets, %d rows shown", sockets, len(cur))
			}
			out, err := ns.Output("ss", "-Htan")
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(sortedRows(fr.current()), sortedRows(normalize(out))) {
				t.Logf("%s: %d rows as ss -tan", fr.status, len(fr.current()))
				return
			}
		}
		out, _ := ns.Output("ss", "-Htan")
		t.Fatalf("no redraw after the churn showed lost events, a resync and ss -tan's rows; last: %s\n%s\nss:\n%s", fr.status, strings.Join(sortedRows(fr.current()), "\n"), strings.Join(sortedRows(normalize(out)), "\n"))
	})
}

// TestWatchTerminal: on a terminal, a connection's rows come marked +, a
// state change ~, a closed row - (once), under a status line with events/s,
// lost and age.
func TestWatchTerminal(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	frames := startWatchTTY(t, "-tan", "--interval", "100ms", "--netns", ns.Path())
	first := nextTTYFrame(t, frames)
	if _, _, _, _, ok := ttyCounts(first.status); !ok {
		t.Fatalf("status line %q: want time, sockets, events/s, lost, resyncs, age", first.status)
	}
	if !strings.HasPrefix(first.header, "  State ") {
		t.Fatalf("column header %q", first.header)
	}
	sawRate := false
	// next returns the next redraw, checking its status line.
	next := func() ttyFrame {
		t.Helper()
		f := nextTTYFrame(t, frames)
		sockets, rate, _, _, ok := ttyCounts(f.status)
		if !ok {
			t.Fatalf("status line %q", f.status)
		}
		if uint64(len(f.current())) != sockets {
			t.Fatalf("status says %d sockets, %d rows shown: %+v", sockets, len(f.current()), f.rows)
		}
		sawRate = sawRate || rate > 0
		return f
	}
	var ln net.Listener
	var client, server net.Conn
	err := ns.Do(func() (err error) {
		if ln, err = plainTCP("tcp4", "127.0.0.1:7777"); err != nil {
			return err
		}
		if client, err = net.Dial("tcp4", "127.0.0.1:7777"); err != nil {
			return err
		}
		server, err = ln.Accept()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer client.Close()
	defer server.Close()
	cli := client.LocalAddr().String()
	srv := []string{"127.0.0.1:7777 " + cli} // the accepted side: local, peer
	cln := []string{cli + " 127.0.0.1:7777"}

	// New rows: the first redraw that shows a row marks it +.
	var f ttyFrame
	seen := map[string]bool{}
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("the connection's rows never came established")
		}
		f = next()
		for name, parts := range map[string][]string{"listener": {"LISTEN", "127.0.0.1:7777 0.0.0.0:*"}, "server": srv, "client": cln} {
			if r, ok := f.find(false, parts...); ok && !seen[name] {
				seen[name] = true
				if r.mark != '+' {
					t.Errorf("new %s row marked %q: %s", name, r.mark, r.text)
				}
			}
		}
		s, ok1 := f.find(false, srv...)
		c, ok2 := f.find(false, cln...)
		if ok1 && ok2 && strings.HasPrefix(s.text, "ESTAB ") && strings.HasPrefix(c.text, "ESTAB ") {
			break
		}
	}

	// A state change: the peer closes, the server side goes CLOSE-WAIT.
	client.Close()
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("the server side never showed CLOSE-WAIT")
		}
		f = next()
		if r, ok := f.find(false, srv...); ok && strings.HasPrefix(r.text, "CLOSE-WAIT ") {
			if r.mark != '~' {
				t.Errorf("changed row marked %q: %s", r.mark, r.text)
			}
			// The wider state column moved the listener's fields, and
			// changed nothing of it.
			if l, ok := f.find(false, "LISTEN"); !ok || l.mark != ' ' {
				t.Errorf("unchanged listener row marked %q: %s", l.mark, l.text)
			}
			break
		}
	}

	// Closed: the server side ends; its row is shown once, marked -.
	server.Close()
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("the closed server side never came marked -")
		}
		f = next()
		if _, ok := f.find(false, srv...); ok {
			continue
		}
		if _, ok := f.find(true, srv...); !ok {
			t.Fatalf("the server side's row vanished unmarked: %+v", f.rows)
		}
		break
	}
	f = next()
	if r, ok := f.find(true, srv...); ok {
		t.Errorf("a closed row shown twice: %s", r.text)
	}
	if !sawRate {
		t.Error("no status line counted events/s > 0, though events came")
	}
}

func TestWatchOrder(t *testing.T) {
	parse := func(args ...string) *pflag.FlagSet {
		cmd := newWatchCmd(io.Discard, io.Discard)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return cmd.Flags()
	}
	names := func(o []filter.Opt) string {
		var s []string
		for _, op := range o {
			s = append(s, op.Name)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-l", "-a", "-x"}, "l a x"},
		{[]string{"-tuan", "--interval", "1s"}, "t u a"},
		{[]string{"-6", "--udp", "-4"}, "6 u 4"},
		{[]string{"--netns", "/run/netns/x"}, ""},
	} {
		if got := names(watchOrder(parse(c.args...), c.args)); got != c.want {
			t.Errorf("watch %v: order %q, want %q", c.args, got, c.want)
		}
	}
	// Not the process's arguments (an in-process caller): flag order.
	if got := names(watchOrder(parse("-a", "-w", "-t"), []string{"-test.v"})); got != "t w a" {
		t.Errorf("in-process: order %q, want %q", got, "t w a")
	}
}

func TestWatchSplitAndSort(t *testing.T) {
	sel, err := filter.Select(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcp, rest := splitTCP(sel.ListRequest())
	if len(tcp.Inet) != 2 || tcp.Inet[0].Protocol != unix.IPPROTO_TCP || tcp.States != sel.States {
		t.Errorf("TCP request %+v", tcp)
	}
	for _, d := range rest.Inet {
		if d.Protocol == unix.IPPROTO_TCP {
			t.Errorf("TCP re-dumped: %+v", rest.Inet)
		}
	}
	if !rest.Unix || !rest.RawInet {
		t.Errorf("rest %+v: no unix or raw", rest)
	}
	ap := netip.MustParseAddrPort
	rows := []*snapshot.Socket{
		{Family: filter.AFInet, Type: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP, Local: ap("127.0.0.2:1")},
		{Family: filter.AFInet6, Type: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP, Local: ap("[::1]:1")},
		{Family: filter.AFInet, Type: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP, Local: ap("127.0.0.1:2")},
		{Family: filter.AFInet, Type: unix.SOCK_DGRAM, Protocol: unix.IPPROTO_UDP, Local: ap("127.0.0.9:1")},
		{Family: filter.AFUnix, Type: unix.SOCK_DGRAM, Path: "/a"},
		{Family: filter.AFUnix, Type: unix.SOCK_STREAM, Path: "/b"},
		{Family: filter.AFInet, Type: unix.SOCK_RAW, Protocol: unix.IPPROTO_ICMP},
		{Family: filter.AFNetlink, Type: unix.SOCK_RAW},
	}
	// TCP rows as the overlay's entries and as re-dumped rows alike.
	r := watchRows{rest: rows[3:], tcp: []*snapshot.Entry{snapshot.NewEntry(rows[0]), snapshot.NewEntry(rows[1]), snapshot.NewEntry(rows[2])}}
	(&watchSession{}).sortRows(&r)
	var got []string
	var row snapshot.Socket
	r.each(&row, func(so *snapshot.Socket, _ *snapshot.Entry) bool {
		got = append(got, fmt.Sprintf("%d/%d/%d %s%s", so.Family, so.Type, so.Protocol, so.Local, so.Path))
		return true
	})
	want := []string{
		"16/3/0 invalid AddrPort", "1/1/0 invalid AddrPort/b", "1/2/0 invalid AddrPort/a", "2/3/1 invalid AddrPort",
		"2/2/17 127.0.0.9:1", "2/1/6 127.0.0.1:2", "2/1/6 127.0.0.2:1", "10/1/6 [::1]:1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
