package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// connectorC connects to argv[1]:argv[2] from connect_to (the line marked
// CONNECT-HERE), says "start PID" before and "connected PID" or "failed
// PID ERRNO" after, then waits for its standard input to close. It has
// one thread: glibc's connect() then makes its syscall without a frame,
// which is the case the stack fix-up is for.
const connectorC = `#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) int connect_to(int fd, const struct sockaddr_in *sa)
{
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)); /* CONNECT-HERE */
	if (r < 0)
		return -errno;
	return r;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char buf[16];
	int fd, r;

	if (argc != 3 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 2;
	sa.sin_port = htons(atoi(argv[2]));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	printf("start %d\n", (int)getpid());
	fflush(stdout);
	r = connect_to(fd, &sa);
	if (r == 0)
		printf("connected %d\n", (int)getpid());
	else
		printf("failed %d %d\n", (int)getpid(), -r);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
`

// buildConnector compiles connectorC; it returns the binary and the
// CONNECT-HERE line.
func buildConnector(t *testing.T) (string, string, int) {
	t.Helper()
	bin := helper(t, "connector")
	src := bin + ".c"
	return bin, src, connectLine(t, src)
}

// connectLine is the line of path that holds "CONNECT-HERE".
func connectLine(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "CONNECT-HERE") {
			return i + 1
		}
	}
	t.Fatalf("no CONNECT-HERE in %s", path)
	return 0
}

// connector is a running connector: its pid, its result line and when it
// came.
type connector struct {
	pid    int
	result chan string
	at     time.Time // when the result came (set before result is sent)
}

// startConnector runs the connector in ns and waits for its "start" line.
func startConnector(t *testing.T, ns *nstest.NS, bin string, addr string, port int) *connector {
	t.Helper()
	cmd := exec.Command(bin, addr, fmt.Sprint(port))
	var stdin io.WriteCloser
	var stdout io.ReadCloser
	err := ns.Do(func() (err error) {
		cmd.Stderr = os.Stderr
		if stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return err
		}
		return cmd.Start()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	br := bufio.NewReader(stdout)
	c := &connector{result: make(chan string, 1)}
	line, err := br.ReadString('\n')
	if _, serr := fmt.Sscanf(line, "start %d", &c.pid); err != nil || serr != nil {
		t.Fatalf("connector did not start: %q %v", line, err)
	}
	go func() {
		line, _ := br.ReadString('\n')
		c.at = time.Now()
		c.result <- strings.TrimSpace(line)
	}()
	return c
}

// wait returns the connector's result line.
func (c *connector) wait(t *testing.T) string {
	t.Helper()
	select {
	case r := <-c.result:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the connector did not finish within 30s")
		return ""
	}
}

// stallsRun is a running `sstrace stalls -j`; lines carries its output.
type stallsRun struct {
	cmd   *exec.Cmd
	lines chan string
	seen  []string
}

// startStalls starts `sstrace stalls -j ARGS` and returns once it traces.
func startStalls(t *testing.T, args ...string) *stallsRun {
	t.Helper()
	cmd := exec.Command(sstraceBin, append([]string{"stalls", "-j"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := &stallsRun{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	br := bufio.NewReader(stderr)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("sstrace stalls ended before tracing: %v", err)
		}
		t.Logf("sstrace: %s", strings.TrimSpace(line))
		if strings.Contains(line, "tracing connection attempts") {
			go io.Copy(os.Stderr, br)
			return r
		}
	}
}

// next returns the first line (after those already returned) that is an
// attempt or stalled object satisfying ok. The timeout only turns a hang
// into a failure.
func (r *stallsRun) next(t *testing.T, what string, ok func(*stallJSON) bool) *stallJSON {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, open := <-r.lines:
			if !open {
				t.Fatalf("sstrace stalls ended without %s; output:\n%s", what, strings.Join(r.seen, "\n"))
			}
			r.seen = append(r.seen, line)
			var a stallJSON
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("not JSON: %q: %v", line, err)
			}
			if (a.Type == "attempt" || a.Type == "stalled") && ok(&a) {
				return &a
			}
		case <-timeout:
			t.Fatalf("no %s within 30s; output:\n%s", what, strings.Join(r.seen, "\n"))
		}
	}
}

// stop interrupts sstrace and returns its summary.
func (r *stallsRun) stop(t *testing.T) summaryJSON {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGINT)
	var last string
	for line := range r.lines {
		r.seen = append(r.seen, line)
		last = line
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("sstrace stalls: %v", err)
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(last), &s); err != nil || s.Type != "summary" {
		t.Fatalf("last line is no summary: %q (%v)", last, err)
	}
	return s
}

// checkConnectStack checks that the connect() stack names connect_to at
// the CONNECT-HERE line of src; where doctor says transitions lack the
// caller of glibc's syscall wrapper (core-5.10: no bpf_task_pt_regs), that
// it does not, and goes from the wrapper straight to main's call of
// connect_to.
func checkConnectStack(t *testing.T, stack []reportFrame, stackErr, src string, line int) {
	t.Helper()
	base := filepath.Base(src)
	if doctorCaps(t).lacks(t, tracer.CapTransitions, tracer.LackUserRet) {
		if hasFrame(stack, "connect_to", base, line) {
			t.Errorf("frame connect_to in the connect() stack, though doctor says transitions lack %q: %+v", tracer.LackUserRet, stack)
		}
		if call := sourceLine(t, src, "r = connect_to(fd, &sa);"); !hasFrame(stack, "main", base, call) {
			t.Errorf("no frame main (%s:%d) in the connect() stack (%s): %+v", base, call, stackErr, stack)
		}
		return
	}
	if !hasFrame(stack, "connect_to", base, line) {
		t.Errorf("no frame connect_to (%s:%d) in the connect() stack (%s): %+v", base, line, stackErr, stack)
	}
}

// hasFrame says whether the stack holds function at file:line.
func hasFrame(stack []reportFrame, function, file string, line int) bool {
	for _, f := range stack {
		if f.Function == function && strings.HasSuffix(f.File, file) && f.Line == line {
			return true
		}
	}
	return false
}

// listenIn listens on 127.0.0.1 (plain TCP) in ns and accepts until the
// test ends.
func listenIn(t *testing.T, ns *nstest.NS) *net.TCPAddr {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err = lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

// A normal connect: SYN-SENT → ESTABLISHED with its latency, the
// connecting pid and the line that called connect(); the server's side
// is a passive attempt owned by the listener's process.
func TestStallsEstablished(t *testing.T) {
	nstest.RequireRoot(t)
	bin, src, line := buildConnector(t)
	ns := nstest.New(t)
	run := startStalls(t, "--netns", ns.Path())
	addr := listenIn(t, ns)
	c := startConnector(t, ns, bin, "127.0.0.1", addr.Port)
	if r := c.wait(t); r != fmt.Sprintf("connected %d", c.pid) {
		t.Fatalf("connector: %q", r)
	}
	a := run.next(t, "the active attempt", func(a *stallJSON) bool { return a.Direction == "active" })
	if a.Type != "attempt" || a.Outcome != "established" || a.PID != uint32(c.pid) || a.Comm != "connector" ||
		a.Dst != addr.String() || a.PendingMs <= 0 || a.PendingMs > 1000 || a.Retransmits != 0 || a.Stalled {
		t.Errorf("active attempt: %+v", a)
	}
	if a.RTTUs <= 0 {
		t.Errorf("active attempt without a handshake RTT: %+v", a)
	}
	checkConnectStack(t, a.Stack, a.StackError, src, line)
	p := run.next(t, "the passive attempt", func(a *stallJSON) bool { return a.Direction == "passive" })
	if p.Outcome != "established" || p.PID != uint32(os.Getpid()) || p.Dst != addr.String() || p.Src != a.Src || p.PendingMs <= 0 {
		t.Errorf("passive attempt: %+v (client %s)", p, a.Src)
	}
	s := run.stop(t)
	if s.Attempts != 2 || s.Outcomes["established"] != 2 || s.Latency.Count != 2 || s.Latency.Max < a.PendingMs ||
		s.Latency.P50 <= 0 || s.LostEvents != 0 {
		t.Errorf("summary: %+v", s)
	}
	dsts := map[string]int{}
	for _, g := range s.ByDestination {
		dsts[g.Direction+" "+g.Dst] = g.Outcomes["established"]
	}
	if dsts["active "+addr.String()] != 1 || dsts["passive "+addr.String()] != 1 {
		t.Errorf("by destination: %+v", s.ByDestination)
	}
	procs := map[uint32]int{}
	for _, g := range s.ByProcess {
		procs[*g.PID] = g.Attempts
	}
	if procs[uint32(c.pid)] != 1 || procs[uint32(os.Getpid())] != 1 {
		t.Errorf("by process: %+v", s.ByProcess)
	}
}

// A port nobody listens on: refused.
func TestStallsRefused(t *testing.T) {
	nstest.RequireRoot(t)
	bin, src, line := buildConnector(t)
	ns := nstest.New(t)
	run := startStalls(t, "--netns", ns.Path())
	c := startConnector(t, ns, bin, "127.0.0.1", 9)
	if r := c.wait(t); r != fmt.Sprintf("failed %d %d", c.pid, syscall.ECONNREFUSED) {
		t.Fatalf("connector: %q", r)
	}
	a := run.next(t, "the attempt", func(a *stallJSON) bool { return a.PID == uint32(c.pid) })
	// Without socket errors (5.10: no inet_sk_error_report) the reset
	// alone says refused, and no errno is known.
	errno := "ECONNREFUSED"
	if k := doctorCaps(t); k.missing(t, tracer.CapErrors) {
		t.Logf("doctor: %s missing (needs %s): expecting no errno", tracer.CapErrors, k.needs(t, tracer.CapErrors))
		errno = ""
	}
	if a.Type != "attempt" || a.Outcome != "refused" || a.Errno != errno || !a.Reset || a.Dst != "127.0.0.1:9" {
		t.Errorf("attempt: %+v; want refused, reset, errno %q", a, errno)
	}
	checkConnectStack(t, a.Stack, a.StackError, src, line)
	if s := run.stop(t); s.Attempts != 1 || s.Outcomes["refused"] != 1 || s.Latency.Count != 0 {
		t.Errorf("summary: %+v", s)
	}
}

// nftablesDrop makes ns drop what rule matches on input.
func nftablesDrop(t *testing.T, ns *nstest.NS, rule ...string) {
	t.Helper()
	for _, args := range [][]string{
		{"add", "table", "inet", "t"},
		{"add", "chain", "inet", "t", "in", "{", "type", "filter", "hook", "input", "priority", "0", ";", "}"},
		append(append([]string{"add", "rule", "inet", "t", "in"}, rule...), "drop"),
	} {
		if _, err := ns.Output("nft", args...); err != nil {
			t.Fatal(err)
		}
	}
}

// SYNs dropped: the attempt shows up live once past the threshold, while
// connect() still waits, then times out with its retransmissions counted.
func TestStallsTimedOut(t *testing.T) {
	nstest.RequireRoot(t)
	bin, _, _ := buildConnector(t)
	ns := nstest.New(t)
	if _, err := ns.Output("sysctl", "-w", "net.ipv4.tcp_syn_retries=2"); err != nil {
		t.Fatal(err)
	}
	// Since 6.5 the first SYN retransmits may back off linearly, and
	// their number adds to tcp_syn_retries: without them, two it is.
	wantRetrans := 2
	if _, err := ns.Output("sysctl", "-w", "net.ipv4.tcp_syn_linear_timeouts=0"); err != nil {
		t.Logf("no tcp_syn_linear_timeouts (%v): expecting at least %d retransmits", err, wantRetrans)
		wantRetrans = -wantRetrans
	}
	nftablesDrop(t, ns, "tcp", "dport", "9")
	run := startStalls(t, "--netns", ns.Path(), "--threshold", "200ms")
	c := startConnector(t, ns, bin, "127.0.0.1", 9)
	s := run.next(t, "the stalled attempt", func(a *stallJSON) bool { return a.PID == uint32(c.pid) })
	if s.Type != "stalled" || s.Outcome != "pending" || s.PendingMs < 200 || s.Dst != "127.0.0.1:9" || s.Direction != "active" {
		t.Errorf("stalled line: %+v", s)
	}
	if len(s.Stack) == 0 {
		t.Errorf("stalled line without its connect() stack (%s)", s.StackError)
	}
	if r := c.wait(t); r != fmt.Sprintf("failed %d %d", c.pid, syscall.ETIMEDOUT) {
		t.Fatalf("connector: %q", r)
	}
	// Live: the stall was seen while connect() still waited (the line's
	// time is when it was seen, its stack may take longer to read).
	if !s.Time.Before(c.at) {
		t.Errorf("stalled at %s, but connect() had returned at %s", s.Time.Format(time.StampMicro), c.at.Format(time.StampMicro))
	}
	a := run.next(t, "the attempt's outcome", func(a *stallJSON) bool { return a.PID == uint32(c.pid) })
	// The errno comes from the socket's error report (5.15+: doctor says
	// where socket-errors is missing).
	wantErrno := "ETIMEDOUT"
	if doctorCaps(t).missing(t, tracer.CapErrors) {
		wantErrno = ""
	}
	if a.Type != "attempt" || a.Outcome != "timed-out" || a.Errno != wantErrno || a.Reset || !a.Stalled || a.PendingMs < 1000 {
		t.Errorf("attempt: %+v (errno want %q)", a, wantErrno)
	}
	if (wantRetrans > 0 && a.Retransmits != wantRetrans) || (wantRetrans < 0 && a.Retransmits < -wantRetrans) {
		t.Errorf("%d retransmits, want %d (negative: at least)", a.Retransmits, wantRetrans)
	}
	sum := run.stop(t)
	if sum.Attempts != 1 || sum.Outcomes["timed-out"] != 1 || sum.Retransmits != a.Retransmits {
		t.Errorf("summary: %+v", sum)
	}
}

// A passive attempt whose final ACK is lost: the listener retransmits its
// SYN-ACK, the request is reported stalled, and once ACKs pass again it
// is established, pending since the first SYN-ACK.
func TestStallsPassiveRetransmit(t *testing.T) {
	nstest.RequireRoot(t)
	// The listener predates the run: its owner comes from the fd
	// inventory, which a kernel without the iterator (5.10) lacks.
	if k := doctorCaps(t); k.missing(t, tracer.CapInventory) {
		k.skipMissing(t, tracer.CapInventory)
	}
	bin, _, _ := buildConnector(t)
	ns := nstest.New(t)
	addr := listenIn(t, ns)
	run := startStalls(t, "--netns", ns.Path(), "--threshold", "200ms")
	nftablesDrop(t, ns, "tcp", "dport", fmt.Sprint(addr.Port), "tcp", "flags", "&", "(syn|ack|fin|rst)", "==", "ack")
	c := startConnector(t, ns, bin, "127.0.0.1", addr.Port)
	// The client's side completes at once; the server never saw its ACK.
	if r := c.wait(t); r != fmt.Sprintf("connected %d", c.pid) {
		t.Fatalf("connector: %q", r)
	}
	s := run.next(t, "the stalled passive attempt", func(a *stallJSON) bool { return a.Direction == "passive" })
	if s.Type != "stalled" || s.Dst != addr.String() || s.PendingMs < 200 || s.PID != uint32(os.Getpid()) {
		t.Errorf("stalled line: %+v", s)
	}
	if _, err := ns.Output("nft", "flush", "chain", "inet", "t", "in"); err != nil {
		t.Fatal(err)
	}
	// The server learns of the client's ACK when it answers a
	// retransmitted SYN-ACK.
	a := run.next(t, "the passive outcome", func(a *stallJSON) bool { return a.Direction == "passive" })
	if a.Type != "attempt" || a.Outcome != "established" || !a.Stalled || a.Retransmits < 1 || a.PendingMs < s.PendingMs ||
		a.Src != s.Src || a.PID != uint32(os.Getpid()) {
		t.Errorf("passive attempt: %+v (stalled: %+v)", a, s)
	}
	sum := run.stop(t)
	if sum.Outcomes["established"] != 2 {
		t.Errorf("summary: %+v", sum)
	}
}

// A passive attempt stalls before any event can show it: with the SYN-ACK
// retransmit hook gone, only the scan of request sockets finds it, and it
// is reported live, from the listener's owner, then completes.
func TestStallsPassiveScan(t *testing.T) {
	nstest.RequireRoot(t)
	// The listener predates the run: its owner comes from the fd
	// inventory, which a kernel without the iterator (5.10) lacks.
	if k := doctorCaps(t); k.missing(t, tracer.CapInventory) {
		k.skipMissing(t, tracer.CapInventory)
	}
	bin, _, _ := buildConnector(t)
	ns := nstest.New(t)
	addr := listenIn(t, ns)
	run := startStalls(t, "--netns", ns.Path(), "--threshold", "100ms", "--disable-hooks", "tp_btf/tcp_retransmit_synack")
	nftablesDrop(t, ns, "tcp", "dport", fmt.Sprint(addr.Port), "tcp", "flags", "&", "(syn|ack|fin|rst)", "==", "ack")
	c := startConnector(t, ns, bin, "127.0.0.1", addr.Port)
	if r := c.wait(t); r != fmt.Sprintf("connected %d", c.pid) {
		t.Fatalf("connector: %q", r)
	}
	s := run.next(t, "the stalled passive attempt", func(a *stallJSON) bool { return a.Direction == "passive" })
	if s.Type != "stalled" || s.Dst != addr.String() || s.PendingMs < 100 || s.PID != uint32(os.Getpid()) {
		t.Errorf("stalled line: %+v", s)
	}
	if _, err := ns.Output("nft", "flush", "chain", "inet", "t", "in"); err != nil {
		t.Fatal(err)
	}
	a := run.next(t, "the passive outcome", func(a *stallJSON) bool { return a.Direction == "passive" })
	if a.Type != "attempt" || a.Outcome != "established" || !a.Stalled || a.Src != s.Src || a.PendingMs < s.PendingMs {
		t.Errorf("passive attempt: %+v (stalled: %+v)", a, s)
	}
}
