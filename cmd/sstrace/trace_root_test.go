package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// buildTraceClient builds testdata/traceclient, the separate client
// process of the trace tests.
func buildTraceClient(t *testing.T) string {
	t.Helper()
	return helper(t, "traceclient")
}

// traceRun is a running `sstrace trace`, its output read as it comes.
type traceRun struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{} // signalled on each new line
	done  chan struct{} // closed when stdout ends
}

// startTrace starts `sstrace trace ARGS` and returns once it traces.
func startTrace(t *testing.T, args ...string) *traceRun {
	t.Helper()
	r := &traceRun{cmd: exec.Command(sstraceBin, append([]string{"trace"}, args...)...),
		more: make(chan struct{}, 1), done: make(chan struct{})}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
		}
	}()
	br := bufio.NewReader(stderr)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("sstrace trace ended before tracing: %v", err)
		}
		if strings.Contains(line, "tracing socket events") {
			go io.Copy(os.Stderr, br)
			return r
		}
		t.Logf("sstrace: %s", strings.TrimSpace(line))
	}
}

// waitFor returns once done holds for the lines printed so far. The
// deadline only turns a hang into a failure; it synchronizes nothing.
func (r *traceRun) waitFor(t *testing.T, what string, done func(lines []string) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok := done(r.lines)
		n := len(r.lines)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.more:
		case <-r.done:
			t.Fatalf("trace ended before %s; %d lines:\n%s", what, n, strings.Join(r.lines, "\n"))
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no %s after 20s; %d lines:\n%s", what, len(r.lines), strings.Join(r.lines, "\n"))
		}
	}
}

// stop interrupts trace (Ctrl-C) and returns all it printed.
func (r *traceRun) stop(t *testing.T) []string {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGINT)
	<-r.done
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("sstrace trace: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func parseRecords(t *testing.T, lines []string) []traceRecord {
	t.Helper()
	var out []traceRecord
	for _, l := range lines {
		var r traceRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("trace -j printed a line that is not JSON: %v\n%s", err, l)
		}
		out = append(out, r)
	}
	return out
}

// exchange is one connection made in a namespace: a listener in the test
// process, a client in a process of its own that closes first.
type exchange struct {
	server, client uint32 // pids
	port           uint16 // the listener's
}

func connectOnce(t *testing.T, ns *nstest.NS, clientBin string) exchange {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = plainTCP("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return connectTo(t, ns, clientBin, ln)
}

// connectTo runs one client against ln, accepts, and closes after the
// client did.
func connectTo(t *testing.T, ns *nstest.NS, clientBin string, ln net.Listener) exchange {
	t.Helper()
	client := exec.Command(clientBin, ln.Addr().String())
	client.Stderr = os.Stderr
	if err := ns.Do(client.Start); err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The byte tells the client to close: its FIN moves our socket to
	// CLOSE-WAIT in softirq while the client is on the CPU.
	if _, err := srv.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := client.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
	srv.Close()
	return exchange{server: uint32(os.Getpid()), client: uint32(client.Process.Pid),
		port: uint16(ln.Addr().(*net.TCPAddr).Port)}
}

// sockets of an exchange, by cookie, found in the records.
type exchangeCookies struct{ listener, client, child uint64 }

func findCookies(recs []traceRecord, x exchange) exchangeCookies {
	var c exchangeCookies
	for _, r := range recs {
		switch {
		case r.Type == recState && r.State == "LISTEN" && r.Local != nil && r.Local.Port == x.port:
			c.listener = r.Cookie
		case r.Type == recBirth && r.PID == x.client:
			c.client = r.Cookie
		case r.Type == recAccept && r.PID == x.server && r.Local != nil && r.Local.Port == x.port:
			c.child = r.Cookie
		}
	}
	return c
}

// destroyedAll says whether the three sockets of the exchange are found
// and destroyed.
func destroyedAll(recs []traceRecord, x exchange) bool {
	c := findCookies(recs, x)
	if c.listener == 0 || c.client == 0 || c.child == 0 {
		return false
	}
	gone := map[uint64]bool{}
	for _, r := range recs {
		if r.Type == recDestroy {
			gone[r.Cookie] = true
		}
	}
	return gone[c.listener] && gone[c.client] && gone[c.child]
}

func jsonLines(lines []string) []traceRecord {
	var out []traceRecord
	for _, l := range lines {
		var r traceRecord
		if json.Unmarshal([]byte(l), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// The "done when": a connect shows SYN-SENT → ESTABLISHED with its
// latency and the connecting pid; the server side's transitions that fire
// in softirq carry the server's pid, not the client's that was on the CPU;
// births and deaths are there.
func TestTraceConnectOwners(t *testing.T) {
	nstest.RequireRoot(t)
	clientBin := buildTraceClient(t)
	ns := nstest.New(t)
	run := startTrace(t, "-j", "--netns", ns.Path())
	x := connectOnce(t, ns, clientBin)
	run.waitFor(t, "destroy of the exchange's three sockets", func(lines []string) bool {
		return destroyedAll(jsonLines(lines), x)
	})
	recs := parseRecords(t, run.stop(t))
	c := findCookies(recs, x)
	var out strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&out, "%s cookie=%d pid=%d cur=%d from=%s %s→%s\n", r.Type, r.Cookie, r.PID, deref(r.CurPID), r.OwnerFrom, r.OldState, r.State)
	}
	t.Logf("records:\n%s", out.String())

	has := func(cookie uint64, pred func(r *traceRecord) bool) *traceRecord {
		for i := range recs {
			if recs[i].Cookie == cookie && pred(&recs[i]) {
				return &recs[i]
			}
		}
		return nil
	}
	trans := func(from, to string) func(r *traceRecord) bool {
		return func(r *traceRecord) bool { return r.Type == recState && r.OldState == from && r.State == to }
	}

	// The connect: the client's pid and comm, and how long SYN-SENT took.
	r := has(c.client, trans("SYN-SENT", "ESTABLISHED"))
	switch {
	case r == nil:
		t.Error("no SYN-SENT → ESTABLISHED for the client's socket")
	case r.PID != x.client || r.Comm != "traceclient":
		t.Errorf("connect attributed to %d/%s, want %d/traceclient", r.PID, r.Comm, x.client)
	case r.OldStateNS == nil || *r.OldStateNS == 0 || r.SinceNS == 0 || r.SinceNS+*r.OldStateNS != r.TS:
		t.Errorf("connect without its SYN-SENT latency: %+v", r)
	case r.Peer == nil || r.Peer.Port != x.port || r.Local == nil || r.Local.Port == 0:
		t.Errorf("connect addresses: %+v → %+v", r.Local, r.Peer)
	}

	// The server side, in softirq with the client on the CPU: the server's
	// pid, the client's as cur_pid. Where doctor says transitions lack
	// the handshake's cookies (core-5.10), the clone's LISTEN → SYN-RECV
	// has none (the accepted socket is not yet known by one): it is the
	// listener's port's, with no cookie, and still the server's.
	noHandshakeCookie := doctorCaps(t).lacks(t, tracer.CapTransitions, tracer.LackHandshakeCookie)
	childTrans := func(from, to string) *traceRecord {
		if noHandshakeCookie && from == "LISTEN" {
			// A kernel that fires it early (before 6.15) has it held until
			// the child's next transition, by when 5.10 has given the
			// child its cookie (sock_ops runs first there): either way.
			if r := has(c.child, trans(from, to)); r != nil {
				return r
			}
			return has(0, func(r *traceRecord) bool { return trans(from, to)(r) && r.Local != nil && r.Local.Port == x.port })
		}
		return has(c.child, trans(from, to))
	}
	for _, tc := range []struct{ from, to string }{{"ESTABLISHED", "CLOSE-WAIT"}, {"LISTEN", "SYN-RECV"}, {"SYN-RECV", "ESTABLISHED"}} {
		r := childTrans(tc.from, tc.to)
		switch {
		case r == nil:
			t.Errorf("no %s → %s for the accepted socket", tc.from, tc.to)
		case r.PID != x.server:
			t.Errorf("%s → %s attributed to %d/%s (%s), want the server %d", tc.from, tc.to, r.PID, r.Comm, r.OwnerFrom, x.server)
		case r.CurPID == nil:
			t.Errorf("%s → %s without cur_pid", tc.from, tc.to)
		case tc.to == "CLOSE-WAIT" && *r.CurPID == x.server:
			t.Errorf("ESTABLISHED → CLOSE-WAIT fired with the server on the CPU (cur_pid %d): not the softirq case this test is about", *r.CurPID)
		}
	}
	if r := childTrans("LISTEN", "SYN-RECV"); r != nil && r.OwnerFrom != ownerListener {
		t.Errorf("a connection not yet accepted: owner from %q, want %q", r.OwnerFrom, ownerListener)
	}
	if r := childTrans("SYN-RECV", "ESTABLISHED"); noHandshakeCookie && r != nil && r.OwnerFrom != ownerListener {
		t.Errorf("a connection not yet accepted, first known by cookie at ESTABLISHED: owner from %q, want %q", r.OwnerFrom, ownerListener)
	}

	// Births and deaths.
	for _, tc := range []struct {
		name   string
		cookie uint64
		types  []string
	}{
		{"client", c.client, []string{recBirth, recRelease, recDestroy}},
		{"accepted", c.child, []string{recAccept, recRelease, recDestroy}},
		{"listener", c.listener, []string{recBirth, recRelease, recDestroy}},
	} {
		for _, typ := range tc.types {
			r := has(tc.cookie, func(r *traceRecord) bool { return r.Type == typ })
			switch {
			case r == nil:
				t.Errorf("%s socket: no %s event", tc.name, typ)
			case r.PID == 0:
				t.Errorf("%s socket: %s without an owner", tc.name, typ)
			case r.Local == nil || (typ != recBirth && r.Local.Port == 0):
				t.Errorf("%s socket: %s without its local address: %+v", tc.name, typ, r.Local)
			case r.NetNS != uint32(ns.Inode()):
				t.Errorf("%s socket: %s in netns %d, want %d", tc.name, typ, r.NetNS, ns.Inode())
			}
		}
	}
}

// A listener opened before the trace is found in the fd inventory: its
// connections belong to its owner before they are accepted too.
func TestTraceListenerBeforeTrace(t *testing.T) {
	nstest.RequireRoot(t)
	if k := doctorCaps(t); k.missing(t, tracer.CapInventory) {
		k.skipMissing(t, tracer.CapInventory) // 5.10: who held the listener is unknown
	}
	clientBin := buildTraceClient(t)
	ns := nstest.New(t)
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = plainTCP("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	run := startTrace(t, "-j", "--netns", ns.Path())
	x := connectTo(t, ns, clientBin, ln)
	run.waitFor(t, "the accepted socket's destroy", func(lines []string) bool {
		for _, r := range jsonLines(lines) {
			if r.Type == recDestroy && r.Local != nil && r.Local.Port == x.port && r.PID == x.server {
				return true
			}
		}
		return false
	})
	recs := parseRecords(t, run.stop(t))
	found := false
	for _, r := range recs {
		if r.Type == recState && r.OldState == "LISTEN" && r.State == "SYN-RECV" {
			found = true
			if r.PID != x.server || r.OwnerFrom != ownerListener {
				t.Errorf("connection to a listener older than the trace: owner %d (%s), want %d (listener)", r.PID, r.OwnerFrom, x.server)
			}
		}
	}
	if !found {
		t.Errorf("no LISTEN → SYN-RECV: %+v", recs)
	}
}

// Go listens with MPTCP by default: the TCP sockets that change state are
// subflows without an fd (their accept() returns the MPTCP socket). They
// still belong to the server.
func TestTraceMPTCPListener(t *testing.T) {
	nstest.RequireRoot(t)
	clientBin := buildTraceClient(t)
	ns := nstest.New(t)
	run := startTrace(t, "-j", "--netns", ns.Path())
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	var proto int
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { proto, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) })
	if proto != traceProtoMPTCP {
		ln.Close()
		t.Skipf("Go's listener is not MPTCP here (protocol %d)", proto)
	}
	x := connectTo(t, ns, clientBin, ln)
	ln.Close()
	run.waitFor(t, "the server side's CLOSE-WAIT", func(lines []string) bool {
		for _, r := range jsonLines(lines) {
			if r.Type == recState && r.State == "CLOSE-WAIT" {
				return true
			}
		}
		return false
	})
	recs := parseRecords(t, run.stop(t))
	var out strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&out, "%s %s cookie=%d pid=%d cur=%d from=%s %s→%s %s\n", r.Type, r.Netid, r.Cookie, r.PID, deref(r.CurPID), r.OwnerFrom, r.OldState, r.State, traceAddr(r.Local))
	}
	t.Logf("records:\n%s", out.String())
	for _, r := range recs {
		if r.Netid != "tcp" || r.Local == nil || r.Local.Port != x.port || r.Type != recState {
			continue
		}
		if r.PID != x.server {
			t.Errorf("server side %s → %s owned by %d/%s (%s), want %d", r.OldState, r.State, r.PID, r.Comm, r.OwnerFrom, x.server)
		}
	}
}

func deref(p *uint32) uint32 {
	if p == nil {
		return 0
	}
	return *p
}

// The text lines: fixed columns, the owner, the transition and its time.
func TestTraceText(t *testing.T) {
	nstest.RequireRoot(t)
	clientBin := buildTraceClient(t)
	ns := nstest.New(t)
	run := startTrace(t, "--netns", ns.Path())
	x := connectOnce(t, ns, clientBin)
	run.waitFor(t, "three destroyed lines", func(lines []string) bool {
		return strings.Count(strings.Join(lines, "\n"), "destroyed in CLOSE") >= 3
	})
	lines := run.stop(t)
	text := strings.Join(lines, "\n")
	t.Logf("output:\n%s", text)
	wants := []string{
		fmt.Sprintf(`^\+\d+\.\d{6} +%d/traceclient +tcp +127\.0\.0\.1:\d+ → 127\.0\.0\.1:%d +SYN-SENT → ESTABLISHED  \(SYN-SENT \d+\.\d{3}ms\)$`, x.client, x.port),
		fmt.Sprintf(`^\+\d+\.\d{6} +%d/[^ ]+ +tcp +127\.0\.0\.1:%d → 127\.0\.0\.1:\d+ +ESTABLISHED → CLOSE-WAIT  \(ESTABLISHED \d+\.\d{3}ms\)$`, x.server, x.port),
		fmt.Sprintf(`^\+\d+\.\d{6} +%d/traceclient +tcp +\* → \* +born fd \d+$`, x.client),
		fmt.Sprintf(`^\+\d+\.\d{6} +%d/[^ ]+ +tcp +127\.0\.0\.1:%d → 127\.0\.0\.1:\d+ +accepted fd \d+ in ESTABLISHED$`, x.server, x.port),
		fmt.Sprintf(`^\+\d+\.\d{6} +%d/[^ ]+ +tcp +127\.0\.0\.1:%d → \* +destroyed in CLOSE  \(CLOSE \d+\.\d{3}ms\)$`, x.server, x.port),
	}
	for _, w := range wants {
		if !regexp.MustCompile(`(?m)` + w).MatchString(text) {
			t.Errorf("no line matching %s", w)
		}
	}
	// Fixed columns: the arrow between the addresses is at the same place
	// on every line.
	col := -1
	for _, l := range lines {
		i := strings.Index(l, " → ")
		if col < 0 {
			col = i
		}
		if i != col {
			t.Errorf("columns move: %q", l)
		}
	}
}

// A filter applies to each event: sport selects the server's sockets, a
// state list the transitions that leave or enter those states.
func TestTraceFilter(t *testing.T) {
	nstest.RequireRoot(t)
	clientBin := buildTraceClient(t)
	ns := nstest.New(t)
	// The port is only known once listening: filter on a fixed one.
	const port = 8091
	bySport := startTrace(t, "-j", "--netns", ns.Path(), "sport", "=", ":"+strconv.Itoa(port))
	synSent := startTrace(t, "-j", "--netns", ns.Path(), "state", "syn-sent")
	var (
		ln     net.Listener
		client *exec.Cmd
	)
	err := ns.Do(func() (err error) {
		if ln, err = plainTCP("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			return err
		}
		client = exec.Command(clientBin, ln.Addr().String())
		client.Stderr = os.Stderr
		return client.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv.Write([]byte{1})
	if err := client.Wait(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ln.Close()
	clientPID := uint32(client.Process.Pid)

	bySport.waitFor(t, "the listener's destroy", func(lines []string) bool {
		n := 0
		for _, r := range jsonLines(lines) {
			if r.Type == recDestroy {
				n++
			}
		}
		return n >= 2 // the accepted socket's and the listener's
	})
	synSent.waitFor(t, "SYN-SENT → ESTABLISHED", func(lines []string) bool {
		for _, r := range jsonLines(lines) {
			if r.OldState == "SYN-SENT" {
				return true
			}
		}
		return false
	})
	for _, r := range parseRecords(t, bySport.stop(t)) {
		if r.Local == nil || r.Local.Port != port {
			t.Errorf("sport = :%d shows %s of %+v → %+v", port, r.Type, r.Local, r.Peer)
		}
		if r.PID == clientPID {
			t.Errorf("sport = :%d shows a client event: %+v", port, r)
		}
	}
	recs := parseRecords(t, synSent.stop(t))
	if len(recs) != 2 {
		t.Errorf("state syn-sent: %d events, want CLOSE → SYN-SENT and SYN-SENT → ESTABLISHED: %+v", len(recs), recs)
	}
	for _, r := range recs {
		if r.Type != recState || (r.State != "SYN-SENT" && r.OldState != "SYN-SENT") || r.PID != clientPID {
			t.Errorf("state syn-sent shows %+v", r)
		}
	}
}

// trace --record, then timeline: every socket comes back with the states
// the stream showed, in order; the Perfetto file parses and holds one
// slice per state.
func TestTraceRecordTimeline(t *testing.T) {
	nstest.RequireRoot(t)
	clientBin := buildTraceClient(t)
	ns := nstest.New(t)
	dir := t.TempDir()
	recFile := filepath.Join(dir, "trace.rec")
	run := startTrace(t, "-j", "--netns", ns.Path(), "--record", recFile)
	var xs []exchange
	for i := 0; i < 3; i++ {
		xs = append(xs, connectOnce(t, ns, clientBin))
	}
	// And a refused connect: SYN-SENT, a reset, CLOSE.
	var refusedPort int
	err := ns.Do(func() error {
		ln, err := plainTCP("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		refusedPort = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", refusedPort))
		if err == nil {
			c.Close()
			return fmt.Errorf("connect to a closed port succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run.waitFor(t, "every socket destroyed", func(lines []string) bool {
		recs := jsonLines(lines)
		for _, x := range xs {
			if !destroyedAll(recs, x) {
				return false
			}
		}
		refused := false
		for _, r := range recs {
			refused = refused || (r.Type == recDestroy && r.Peer != nil && int(r.Peer.Port) == refusedPort)
		}
		return refused
	})
	recs := parseRecords(t, run.stop(t))

	// What the stream says, per socket: owner and state sequence.
	type sockSeq struct {
		pid    uint32
		states []string
	}
	want := map[uint64]*sockSeq{}
	for _, r := range recs {
		if r.Cookie == 0 {
			continue
		}
		s := want[r.Cookie]
		if s == nil {
			s = &sockSeq{}
			want[r.Cookie] = s
		}
		if s.pid == 0 || r.OwnerFrom == ownerBPF || r.OwnerFrom == ownerSyscall {
			s.pid = r.PID
		}
		switch r.Type {
		case recBirth:
			s.states = append(s.states, r.State)
		case recState:
			if len(s.states) == 0 && !(r.OldState == "LISTEN" && r.State == "SYN-RECV") {
				s.states = append(s.states, r.OldState)
			}
			s.states = append(s.states, r.State)
		}
	}

	out, err := exec.Command(sstraceBin, "timeline", "-j", recFile).Output()
	if err != nil {
		t.Fatalf("timeline -j: %v", err)
	}
	got := map[uint64]tlJSON{}
	var order []uint64
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var c tlJSON
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("timeline -j line is not JSON: %v\n%s", err, l)
		}
		got[c.Cookie] = c
		order = append(order, c.Cookie)
	}
	if len(got) != len(want) {
		t.Errorf("timeline has %d sockets, the stream %d", len(got), len(want))
	}
	for cookie, w := range want {
		g, ok := got[cookie]
		if !ok {
			t.Errorf("socket %d missing from the timeline (states %v)", cookie, w.states)
			continue
		}
		var names []string
		for _, s := range g.States {
			names = append(names, s.State)
		}
		if strings.Join(names, " ") != strings.Join(w.states, " ") {
			t.Errorf("socket %d: timeline states %v, stream %v", cookie, names, w.states)
		}
		if g.PID != w.pid {
			t.Errorf("socket %d: timeline owner %d, stream %d", cookie, g.PID, w.pid)
		}
		if g.End != tlDestroyed {
			t.Errorf("socket %d: ends %q, want destroyed", cookie, g.End)
		}
		if g.Incomplete {
			t.Errorf("socket %d marked incomplete", cookie)
		}
	}
	for i := 1; i < len(order); i++ {
		if got[order[i]].StartNS < got[order[i-1]].StartNS {
			t.Errorf("timeline not sorted by start at %d", i)
		}
	}

	// The text: a header, then one line per socket.
	text, err := exec.Command(sstraceBin, "timeline", recFile).Output()
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	t.Logf("timeline:\n%s", text)
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	// Events without a cookie (the handshakes' LISTEN → SYN-RECV where
	// doctor says transitions lack their cookies) are left out, and a
	// second header line counts them.
	noCookie := 0
	for _, r := range recs {
		if r.Cookie == 0 {
			noCookie++
		}
	}
	if noCookie > 0 && !doctorCaps(t).lacks(t, tracer.CapTransitions, tracer.LackHandshakeCookie) {
		t.Errorf("%d events without a cookie, though doctor says transitions lack nothing", noCookie)
	}
	header := 1
	if noCookie > 0 {
		header = 2
		if len(lines) < 2 || lines[1] != fmt.Sprintf("# %d events without a socket cookie left out", noCookie) {
			t.Errorf("the timeline does not say %d events without a cookie were left out", noCookie)
		}
	}
	if n := len(lines) - header; n != len(want) || !strings.HasPrefix(lines[0], "# ") {
		t.Errorf("timeline prints %d lines after its %d header lines, want %d", n, header, len(want))
	}
	for _, x := range xs {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^ \+\d+\.\d{6} +%d/traceclient +tcp +127\.0\.0\.1:\d+ → 127\.0\.0\.1:%d +CLOSE [0-9.]+ms → SYN-SENT [0-9.]+ms → ESTABLISHED [0-9.]+m?s → FIN-WAIT-1 [0-9.]+ms → FIN-WAIT-2 [0-9.]+ms → CLOSE [0-9.]+ms; destroyed$`, x.client, x.port))
		if !re.Match(text) {
			t.Errorf("no timeline line for client %d", x.client)
		}
	}

	// Perfetto: valid JSON, one X slice per state, on one track per
	// socket, in a process per owner.
	pf := filepath.Join(dir, "trace.json")
	if out, err := exec.Command(sstraceBin, "timeline", "--perfetto", pf, recFile).CombinedOutput(); err != nil {
		t.Fatalf("timeline --perfetto: %v\n%s", err, out)
	}
	checkPerfetto(t, pf, got)
}

// checkPerfetto parses a --perfetto file and compares its slices with the
// timeline's states.
func checkPerfetto(t *testing.T, path string, conns map[uint64]tlJSON) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []struct {
			Name string         `json:"name"`
			Ph   string         `json:"ph"`
			TS   *float64       `json:"ts"`
			Dur  *float64       `json:"dur"`
			PID  int64          `json:"pid"`
			TID  int64          `json:"tid"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	slices := map[string][]string{} // cookie → state names in order
	procs := map[int64]string{}
	for _, e := range doc.TraceEvents {
		switch e.Ph {
		case "X":
			if e.TS == nil || e.Dur == nil {
				t.Errorf("slice %s without ts or dur", e.Name)
			}
			cookie, _ := e.Args["cookie"].(string)
			slices[cookie] = append(slices[cookie], e.Name)
		case "M":
			if e.Name == "process_name" {
				procs[e.PID], _ = e.Args["name"].(string)
			}
		}
	}
	for cookie, c := range conns {
		var want []string
		for _, s := range c.States {
			want = append(want, s.State)
		}
		key := strconv.FormatUint(cookie, 10)
		if strings.Join(slices[key], " ") != strings.Join(want, " ") {
			t.Errorf("socket %d: Perfetto slices %v, states %v", cookie, slices[key], want)
		}
		if c.PID != 0 && procs[int64(c.PID)] != c.Comm {
			t.Errorf("process %d named %q, want %q", c.PID, procs[int64(c.PID)], c.Comm)
		}
	}
	if len(slices) != len(conns) {
		t.Errorf("Perfetto tracks for %d sockets, timeline has %d", len(slices), len(conns))
	}
}

// Lost events appear inline, count exactly what was lost, and go into the
// recording.
func TestTraceLostEvents(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	recFile := filepath.Join(t.TempDir(), "lost.rec")
	run := startTrace(t, "-j", "--netns", ns.Path(), "--ring-size", strconv.Itoa(os.Getpagesize()), "--record", recFile)
	// A burst far faster than anyone can read a one-page ring: three
	// events a socket (birth, release, destroy).
	const n = 5000
	err := ns.Do(func() error {
		for i := 0; i < n; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func(lines []string) (events, lost uint64) {
		for _, r := range jsonLines(lines) {
			if r.Type == recLost {
				lost += r.Lost
			} else {
				events++
			}
		}
		return events, lost
	}
	run.waitFor(t, "every event shown or counted lost", func(lines []string) bool {
		ev, lost := count(lines)
		return ev+lost >= 3*n
	})
	lines := run.stop(t)
	ev, lost := count(lines)
	t.Logf("%d sockets: %d events shown, %d lost", n, ev, lost)
	if lost == 0 {
		t.Fatal("no lost events reported with a one-page ring")
	}
	if ev+lost != 3*n {
		t.Errorf("shown %d + lost %d != %d emitted", ev, lost, 3*n)
	}
	for _, r := range jsonLines(lines) {
		if r.Type == recLost {
			if _, err := time.Parse(time.RFC3339Nano, r.Since); err != nil {
				t.Errorf("lost record without its since: %+v", r)
			}
		}
	}
	f, err := os.Open(recFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := readRecording(f, recFile)
	if err != nil {
		t.Fatal(err)
	}
	if *rec.End.LostTotal != lost || *rec.End.Events != ev {
		t.Errorf("recording counts %d events and %d lost, the stream %d and %d", *rec.End.Events, *rec.End.LostTotal, ev, lost)
	}
	text, err := exec.Command(sstraceBin, "timeline", recFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^# lost \d+ events \(ring buffer full\) between `).Match(text) {
		t.Errorf("timeline does not say events were lost:\n%.500s", text)
	}
}

// --- No root needed below: the parts of trace that are pure.

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func comm(s string) (c [16]byte) {
	copy(c[:], s)
	return c
}

func TestAttributor(t *testing.T) {
	const ns = 4026531840
	a := newAttributor()
	a.addInventory([]tracer.FD{{PID: 400, Cookie: 50, Comm: comm("old")}})
	zero4 := ap("0.0.0.0:0")
	steps := []struct {
		name string
		ev   tracer.Event
		pid  uint32
		from string
	}{
		{"listener born", tracer.Event{Kind: tracer.KindBirth, Cookie: 1, NetNS: ns, PID: 100, CurPID: 100, Comm: comm("srv"), Local: zero4, Peer: zero4}, 100, ownerSyscall},
		{"listen", tracer.Event{Kind: tracer.KindState, Cookie: 1, NetNS: ns, PID: 100, CurPID: 100, Comm: comm("srv"), OwnerKnown: true, OldState: 7, NewState: 10, Local: ap("127.0.0.1:80"), Peer: zero4}, 100, ownerBPF},
		{"child cloned in softirq", tracer.Event{Kind: tracer.KindState, Cookie: 2, NetNS: ns, PID: 200, CurPID: 200, Comm: comm("cli"), OldState: 10, NewState: 3, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5000")}, 100, ownerListener},
		{"child established in softirq", tracer.Event{Kind: tracer.KindState, Cookie: 2, NetNS: ns, PID: 200, CurPID: 200, Comm: comm("cli"), OldState: 3, NewState: 1, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5000")}, 100, ownerListener},
		// core-5.10: the clone had no cookie; the sock_ops hook gave it
		// one before its SYN-RECV → ESTABLISHED.
		{"child cloned without a cookie", tracer.Event{Kind: tracer.KindState, NetNS: ns, PID: 200, CurPID: 200, Comm: comm("cli"), OldState: 10, NewState: 3, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5002")}, 100, ownerListener},
		{"child first known at ESTABLISHED", tracer.Event{Kind: tracer.KindState, Cookie: 6, NetNS: ns, PID: 200, CurPID: 200, Comm: comm("cli"), OldState: 3, NewState: 1, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5002")}, 100, ownerListener},
		{"accept", tracer.Event{Kind: tracer.KindAccept, Cookie: 2, NetNS: ns, PID: 100, CurPID: 100, Comm: comm("srv"), NewState: 1, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5000")}, 100, ownerSyscall},
		{"no owner known: a socket older than the trace", tracer.Event{Kind: tracer.KindState, Cookie: 7, NetNS: ns, PID: 200, CurPID: 200, Comm: comm("cli"), OldState: 1, NewState: 8, Local: ap("127.0.0.1:81"), Peer: ap("127.0.0.1:6000")}, 0, ""},
		{"from the inventory", tracer.Event{Kind: tracer.KindState, Cookie: 50, NetNS: ns, PID: 200, CurPID: 200, Comm: comm("cli"), OldState: 1, NewState: 8, Local: ap("127.0.0.1:82"), Peer: ap("127.0.0.1:6001")}, 400, ownerInventory},
		{"MPTCP subflow listens in listen()", tracer.Event{Kind: tracer.KindState, Cookie: 3, NetNS: ns, PID: 300, CurPID: 300, Comm: comm("gosrv"), OldState: 7, NewState: 10, Local: ap("[::]:8443"), Peer: ap("[::]:0")}, 300, ownerSyscall},
		{"v4-mapped child of a dual-stack listener", tracer.Event{Kind: tracer.KindState, Cookie: 4, NetNS: ns, PID: 0, CurPID: 0, OldState: 10, NewState: 3, Local: ap("[::ffff:127.0.0.1]:8443"), Peer: ap("[::ffff:127.0.0.1]:7000")}, 300, ownerListener},
		{"same port, other namespace: no listener", tracer.Event{Kind: tracer.KindState, Cookie: 5, NetNS: ns + 1, PID: 200, CurPID: 200, OldState: 10, NewState: 3, Local: ap("127.0.0.1:80"), Peer: ap("127.0.0.1:5001")}, 0, ""},
	}
	for _, s := range steps {
		ev := s.ev
		got := a.apply(&ev)
		if got.PID != s.pid || got.From != s.from {
			t.Errorf("%s: owner %d (%s), want %d (%s)", s.name, got.PID, got.From, s.pid, s.from)
		}
	}
	// A release has neither netns nor local address: both come from the
	// socket's history.
	rel := tracer.Event{Kind: tracer.KindRelease, Cookie: 2, Protocol: 6, PID: 100, CurPID: 100, OwnerKnown: true, Local: zero4, Peer: ap("127.0.0.1:5000")}
	a.apply(&rel)
	if rel.NetNS != ns || rel.Local != ap("127.0.0.1:80") {
		t.Errorf("release completed to netns %d local %s", rel.NetNS, rel.Local)
	}
	// Unhashed on its way to CLOSE: the port comes back.
	cl := tracer.Event{Kind: tracer.KindState, Cookie: 2, NetNS: ns, OldState: 9, NewState: 7, Local: ap("127.0.0.1:0"), Peer: ap("127.0.0.1:5000")}
	a.apply(&cl)
	if cl.Local != ap("127.0.0.1:80") {
		t.Errorf("port not restored: %s", cl.Local)
	}
	// Deaths free the memory; a closed listener no longer owns children.
	for _, c := range []uint64{1, 2} {
		ev := tracer.Event{Kind: tracer.KindDestroy, Cookie: c, NetNS: ns, Protocol: 6, Local: ap("127.0.0.1:80")}
		a.apply(&ev)
	}
	if _, ok := a.socks[1]; ok {
		t.Error("destroyed socket still remembered")
	}
	if _, ok := a.listenerOwner(ns, ap("127.0.0.1:80")); ok {
		t.Error("destroyed listener still owns connections")
	}
	udp := tracer.Event{Kind: tracer.KindRelease, Cookie: 9, Protocol: 17, PID: 1, CurPID: 1}
	a.apply(&udp)
	if _, ok := a.socks[9]; ok {
		t.Error("released UDP socket still remembered")
	}
}

func TestTraceFilterMatch(t *testing.T) {
	est := tracer.Event{Kind: tracer.KindState, Family: unix.AF_INET, Protocol: 6, Type: unix.SOCK_STREAM,
		OldState: 2, NewState: 1, Local: ap("10.0.0.1:40000"), Peer: ap("10.0.0.2:443")}
	birth6 := tracer.Event{Kind: tracer.KindBirth, Family: unix.AF_INET6, Protocol: 17, Type: unix.SOCK_DGRAM,
		NewState: 7, Local: ap("[::]:0"), Peer: ap("[::]:0")}
	for _, tc := range []struct {
		args       []string
		o          traceOptions
		est, birth bool
	}{
		{nil, traceOptions{}, true, true},
		{[]string{"state", "established"}, traceOptions{}, true, false},
		{[]string{"state", "syn-sent"}, traceOptions{}, true, false}, // it leaves SYN-SENT
		{[]string{"exclude", "established", "exclude", "syn-sent"}, traceOptions{}, false, true},
		{[]string{"dport", "=", ":443"}, traceOptions{}, true, false},
		{[]string{"dst", "10.0.0.0/8"}, traceOptions{}, true, false},
		{[]string{"not", "dport", "=", ":443"}, traceOptions{}, false, true},
		{nil, traceOptions{udp: true}, false, true},
		{nil, traceOptions{tcp: true}, true, false},
		{nil, traceOptions{ipv4: true}, true, false},
		{nil, traceOptions{ipv6: true}, false, true},
	} {
		f, err := parseTraceFilter(&tc.o, tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := f.match(&est); got != tc.est {
			t.Errorf("%v %+v: established match %v, want %v", tc.args, tc.o, got, tc.est)
		}
		if got := f.match(&birth6); got != tc.birth {
			t.Errorf("%v %+v: birth match %v, want %v", tc.args, tc.o, got, tc.birth)
		}
	}
	for _, bad := range [][]string{{"state", "bogus"}, {"state"}, {"dport", "=", "("}, {"exclude", "all"}} {
		if _, err := parseTraceFilter(&traceOptions{}, bad); err == nil {
			t.Errorf("%v: no error", bad)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error on several lines: %v", bad, err)
		}
	}
}

func TestTraceLineFormat(t *testing.T) {
	clk := traceClock{boot: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	e := traceEncoder{clk: clk, start: 2_000_000_333}
	ev := tracer.Event{Kind: tracer.KindState, TS: 2_000_123_456, Since: 2_000_036_000, Cookie: 7, NetNS: 4026531840,
		PID: 12345, CurPID: 999, Comm: comm("curl"), OwnerKnown: true, Family: unix.AF_INET, Protocol: 6, Type: unix.SOCK_STREAM,
		OldState: 2, NewState: 1, Local: ap("127.0.0.1:43210"), Peer: ap("127.0.0.1:80")}
	owner := sockOwner{PID: 12345, Comm: comm("curl"), From: ownerBPF}
	got := string(e.appendText(nil, &ev, &owner))
	want := "+0.000123   12345/curl             tcp         127.0.0.1:43210 → 127.0.0.1:80          SYN-SENT → ESTABLISHED  (SYN-SENT 0.087ms)\n"
	if got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	if w := traceWhen(true, clk, ev.TS, 0); w != "2025-03-04T05:06:09.000123Z" {
		t.Errorf("-T time %q", w)
	}
	eT := e
	eT.absolute = true
	if got := string(eT.appendText(nil, &ev, &owner)); !strings.HasPrefix(got, "2025-03-04T05:06:09.000123Z 12345/curl ") {
		t.Errorf("-T line %q", got)
	}
	wantJSON := `{"type":"state","time":"2025-03-04T05:06:09.000123Z","ts_ns":2000123456,"cookie":7,"netns":4026531840,"pid":12345,"comm":"curl","owner_from":"bpf","cur_pid":999,"netid":"tcp","family":"inet","local":{"addr":"127.0.0.1","port":43210},"peer":{"addr":"127.0.0.1","port":80},"old_state":"SYN-SENT","state":"ESTABLISHED","since_ns":2000036000,"old_state_ns":87456}` + "\n"
	if got := string(e.appendJSON(nil, &ev, &owner)); got != wantJSON {
		t.Errorf("JSON\n got %s\nwant %s", got, wantJSON)
	}
	// Unknown owner, netns column, IPv6, a birth.
	birth := tracer.Event{Kind: tracer.KindBirth, TS: 5e9, CurPID: 1, FD: 3, Family: unix.AF_INET6, Protocol: 6,
		Type: unix.SOCK_STREAM, NewState: 7, Local: ap("[::]:0"), Peer: ap("[::]:0")}
	e.start, e.showNetns = 0, true
	got = string(e.appendText(nil, &birth, &sockOwner{}))
	want = "+5.000000   -          -                      tcp                       * → *                     born fd 3\n"
	if got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	st := tracer.Event{Kind: tracer.KindState, Family: unix.AF_INET6, Protocol: 6, OldState: 1, NewState: 4,
		Local: ap("[2001:db8::1]:443"), Peer: ap("[2001:db8::2]:50000")}
	e.showNetns = false
	if got := string(e.appendText(nil, &st, &sockOwner{})); !regexp.MustCompile(`^\+0\.000000 +- +tcp +\[2001:db8::1\]:443 → \[2001:db8::2\]:50000 +ESTABLISHED → FIN-WAIT-1\n$`).MatchString(got) {
		t.Errorf("IPv6 line %q", got)
	}
	if got, want := string(appendLostText(nil, 12, time.Date(2025, 1, 1, 13, 4, 5, 123456789, time.Local))), "-- lost 12 events (ring buffer full) since 13:04:05.123456 --\n"; got != want {
		t.Errorf("lost line %q, want %q", got, want)
	}
	for ns, want := range map[uint64]string{87_456: "0.087ms", 12_345_678: "12.346ms", 1_500_000_000: "1.500s", 125_000_000_000: "2m5s"} {
		if got := traceDur(ns); got != want {
			t.Errorf("traceDur(%d) = %q, want %q", ns, got, want)
		}
		if got := string(appendTraceDur(nil, ns)); got != want {
			t.Errorf("appendTraceDur(%d) = %q, want %q", ns, got, want)
		}
	}
}

// The wall clock of an event is the boot time plus its CLOCK_MONOTONIC
// time: now reads back as now.
func TestTraceClock(t *testing.T) {
	clk := newTraceClock()
	before := time.Now()
	w := clk.wall(monoNow())
	after := time.Now()
	if w.Before(before.Add(-time.Millisecond)) || w.After(after.Add(time.Millisecond)) {
		t.Errorf("wall(now) = %v, not within [%v, %v]", w, before, after)
	}
}

// The cost of one event from the ring to a printed line: attribution,
// filter, and the line or the JSON object (legacy-*: the same through
// makeRecord and encoding/json or fmt, as trace did before traceEncoder).
func BenchmarkTraceEvent(b *testing.B) {
	clk := traceClock{boot: time.Now()}
	f, err := parseTraceFilter(&traceOptions{}, []string{"sport", ">", ":1000"})
	if err != nil {
		b.Fatal(err)
	}
	ev := tracer.Event{Kind: tracer.KindState, TS: 2e9, Since: 1e9, Cookie: 7, NetNS: 4026531840, PID: 12345, CurPID: 999,
		Comm: comm("curl"), OwnerKnown: true, Family: unix.AF_INET, Protocol: 6, Type: unix.SOCK_STREAM,
		OldState: 2, NewState: 1, Local: ap("127.0.0.1:43210"), Peer: ap("127.0.0.1:80")}
	for _, mode := range []string{"text", "json", "legacy-text", "legacy-json"} {
		b.Run(mode, func(b *testing.B) {
			a := newAttributor()
			w := bufio.NewWriter(io.Discard)
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			te := traceEncoder{clk: clk, showNetns: true}
			line := make([]byte, 0, 1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := ev
				e.Cookie = uint64(i % 4096)
				owner := a.apply(&e)
				if !f.match(&e) {
					b.Fatal("no match")
				}
				switch mode {
				case "text":
					line = te.appendText(line[:0], &e, &owner)
					w.Write(line)
				case "json":
					line = te.appendJSON(line[:0], &e, &owner)
					w.Write(line)
				case "legacy-text":
					r := makeRecord(&e, legacyOwner(&owner), clk)
					w.WriteString(traceLine(&r, traceWhen(false, clk, e.TS, 0), true))
					w.WriteByte('\n')
				case "legacy-json":
					r := makeRecord(&e, legacyOwner(&owner), clk)
					enc.Encode(&r)
				}
			}
		})
	}
}
