package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// rcNS is a namespace the reconcile tests fill, and the sockets they hold.
type rcNS struct {
	ns  *nstest.NS
	fds []int
}

func (n *rcNS) closeAll() {
	for _, fd := range n.fds {
		unix.Close(fd)
	}
	n.fds = nil
}

func (n *rcNS) socket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("creating TCP socket: %w", err)
	}
	n.fds = append(n.fds, fd)
	return fd, nil
}

func (n *rcNS) close(fd int) error {
	for i, f := range n.fds {
		if f == fd {
			n.fds = append(n.fds[:i], n.fds[i+1:]...)
			break
		}
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("closing socket: %w", err)
	}
	return nil
}

// pair connects a client to the listener l at addr and accepts it.
func (n *rcNS) pair(l int, addr unix.Sockaddr) (c, a int, err error) {
	if c, err = n.socket(unix.AF_INET); err != nil {
		return -1, -1, err
	}
	if err := unix.Connect(c, addr); err != nil {
		return -1, -1, fmt.Errorf("connecting: %w", err)
	}
	a, _, err = unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		return -1, -1, fmt.Errorf("accepting: %w", err)
	}
	n.fds = append(n.fds, a)
	return c, a, nil
}

func rcReadEOF(fd int) error {
	var b [1]byte
	k, err := unix.Read(fd, b[:])
	if err != nil || k != 0 {
		return fmt.Errorf("reading to EOF: %d bytes, %v", k, err)
	}
	return nil
}

// timeWait closes a connection the client first, leaving a TIME-WAIT
// minisocket without waiting for any timer: the client shuts its side
// down and reads the server's FIN, which the kernel processed (putting the
// minisocket in place) by the time read returns 0. The server is freed
// when the client's last ACK reaches it, asynchronously.
func (n *rcNS) timeWait(l int, addr unix.Sockaddr) error {
	c, a, err := n.pair(l, addr)
	if err != nil {
		return err
	}
	if err := unix.Shutdown(c, unix.SHUT_WR); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := rcReadEOF(a); err != nil {
		return err
	}
	if err := n.close(a); err != nil {
		return err
	}
	if err := rcReadEOF(c); err != nil {
		return err
	}
	return n.close(c)
}

func (n *rcNS) counters() (snapshot.Sockstat, error) {
	var st snapshot.Sockstat
	err := n.ns.Do(func() error {
		var err error
		st, err = snapshot.ReadSockstat()
		return err
	})
	return st, err
}

func nsCountersOf(st snapshot.Sockstat) snapshot.NSCounters {
	return snapshot.NSCounters{InUse: st.TCP.InUse, InUse6: st.TCP6.InUse, TW: st.TCP.TW}
}

// settle waits, re-reading without sleeping, for the namespace's counters
// to be want.
func (n *rcNS) settle(t *testing.T, want snapshot.NSCounters) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; runtime.Gosched() {
		st, err := n.counters()
		if err != nil {
			t.Fatal(err)
		}
		if nsCountersOf(st) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace counters %+v, want %+v", nsCountersOf(st), want)
		}
	}
}

// leak opens count unbound TCP sockets in the namespace and returns how
// much the global alloc grew meanwhile. alloc moves with every TCP socket
// of the machine, so when it did not grow by exactly count the sockets are
// closed and made again, a bounded number of times.
func (n *rcNS) leak(count int) (delta int64, attempts int, err error) {
	for attempts = 1; attempts <= 200; attempts++ {
		var made []int
		err = n.ns.Do(func() error {
			before, err := snapshot.ReadSockstat()
			if err != nil {
				return err
			}
			for range count {
				fd, err := n.socket(unix.AF_INET)
				if err != nil {
					return err
				}
				made = append(made, fd)
			}
			after, err := snapshot.ReadSockstat()
			if err != nil {
				return err
			}
			delta = after.TCP.Alloc - before.TCP.Alloc
			return nil
		})
		if err != nil || delta == int64(count) {
			return delta, attempts, err
		}
		for _, fd := range made {
			if err := n.close(fd); err != nil {
				return delta, attempts, err
			}
		}
	}
	return delta, attempts - 1, nil
}

// TestReconcileCommand runs `sstrace reconcile -j` in a namespace holding
// N leaked (unbound) sockets, M established pairs and K TIME-WAIT sockets:
// its numbers for the namespace must be the namespace's counters, and the
// leaks it finds held by fds must be what they added to alloc.
func TestReconcileCommand(t *testing.T) {
	nstest.RequireRoot(t)
	if k := doctorCaps(t); k.missing(t, tracer.CapInventory) {
		k.skipMissing(t, tracer.CapInventory) // 5.10: no never-hashed count without it
	}
	const N, M, K = 40, 5, 3
	n := &rcNS{ns: nstest.New(t)}
	t.Cleanup(n.closeAll)
	err := n.ns.Do(func() error {
		l, err := n.socket(unix.AF_INET)
		if err != nil {
			return err
		}
		if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return fmt.Errorf("binding: %w", err)
		}
		if err := unix.Listen(l, 128); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
		addr, err := unix.Getsockname(l)
		if err != nil {
			return fmt.Errorf("reading the listener's address: %w", err)
		}
		for range M {
			if _, _, err := n.pair(l, addr); err != nil {
				return err
			}
		}
		for range K {
			if err := n.timeWait(l, addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot.NSCounters{InUse: 1 + 2*M, TW: K}
	n.settle(t, want)
	delta, attempts, err := n.leak(N)
	if err != nil {
		t.Fatal(err)
	}
	if delta != N {
		t.Fatalf("alloc grew by %d for %d unbound sockets (in %d attempts)", delta, N, attempts)
	}
	t.Logf("alloc grew by %d for %d unbound sockets (attempt %d)", delta, N, attempts)

	// The namespace's counters are settled: reading them around the run
	// only guards against a surprise.
	before, err := n.counters()
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.ns.Output(sstraceBin, "reconcile", "-j")
	if err != nil {
		t.Fatal(err)
	}
	after, err := n.counters()
	if err != nil {
		t.Fatal(err)
	}
	if nsCountersOf(before) != want || nsCountersOf(after) != want {
		t.Fatalf("namespace counters moved: %+v, %+v, want %+v", before, after, want)
	}
	var r snapshot.Reconciliation
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	if r.ThisNetNS != n.ns.Inode() || !r.Inventory {
		t.Fatalf("this %d (want %d), inventory %v %q", r.ThisNetNS, n.ns.Inode(), r.Inventory, r.InventoryError)
	}
	var got *snapshot.ReconcileNS
	for i := range r.Namespaces {
		if r.Namespaces[i].NetNS == n.ns.Inode() {
			got = &r.Namespaces[i]
		}
	}
	if got == nil || !got.This || !got.Entered {
		t.Fatalf("namespace %d: %+v", n.ns.Inode(), got)
	}

	// Per namespace: reconcile's numbers are sockstat's, and what was made.
	if got.Sockstat != want || got.SockstatAfter != want {
		t.Errorf("reconcile read the counters %+v / %+v; sockstat in the namespace says %+v", got.Sockstat, got.SockstatAfter, want)
	}
	if got.V4.Hashed != want.InUse || got.V6.Hashed != want.InUse6 || got.V4.TimeWait+got.V6.TimeWait != want.TW {
		t.Errorf("counted inuse %d, inuse6 %d, tw %d; sockstat %+v", got.V4.Hashed, got.V6.Hashed, got.V4.TimeWait+got.V6.TimeWait, want)
	}
	if got.V4.Listen != 1 || got.V4.Established != 2*M || got.V4.TimeWait != K {
		t.Errorf("IPv4 counts %+v", got.V4)
	}
	rows := 0
	for _, row := range r.Rows {
		if row.NetNS != n.ns.Inode() {
			continue
		}
		rows++
		if row.Diff != 0 || row.Unexplained != 0 {
			t.Errorf("row %+v", row)
		}
	}
	if rows != 3 {
		t.Errorf("%d rows for the namespace, want inuse, inuse6 and tw", rows)
	}
	// The leaks: held by fds, in no dump, never used; as many as alloc
	// grew by.
	if got.FDs.NeverUsed != delta || got.FDs.ClosedAfterUse != 0 || got.FDs.Open != 0 {
		t.Errorf("never-hashed sockets held by fds %+v; alloc grew by %d", got.FDs, delta)
	}
	if r.Alloc.NeverUsed < delta {
		t.Errorf("alloc parts %+v: fewer never-used sockets than this namespace's %d", r.Alloc, delta)
	}
	c := r.Closed
	if c.InUse != want.InUse || c.InUse6 != want.InUse6 || c.TW != want.TW || c.TimeWait != K ||
		c.SS != c.Alloc-(c.InUse+c.InUse6-c.TW) ||
		c.SS != c.NeverHashed+c.TimeWait+c.OtherNamespaces+c.Changed+c.Rest {
		t.Errorf("closed %+v", c)
	}
	// alloc and orphan are the machine's: other tests move them.
	t.Logf("alloc %+v\nverdict: %s", r.Alloc, r.Verdict)

	// The table says the same.
	text, err := n.ns.Output(sstraceBin, "reconcile")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "verdict: ") {
		t.Errorf("no verdict line last:\n%s", text)
	}
	name := snapshot.NSName(n.ns.Inode())
	// NETNS this LISTEN ESTAB ... TIME-WAIT REQUEST BOUND UNHASHED ...
	if f := rcLine(string(text), name, "this"); len(f) != 16 || f[2] != "1" || f[3] != fmt.Sprint(2*M) ||
		f[10] != fmt.Sprint(K) || f[13] != fmt.Sprint(N) {
		t.Errorf("namespace line %q:\n%s", f, text)
	}
	for _, c := range []struct {
		counter string
		value   int64
	}{{"inuse", want.InUse}, {"inuse6", want.InUse6}, {"tw", want.TW}} {
		// COUNTER NETNS this SOCKSTAT SSTRACE DIFF ...
		v := fmt.Sprint(c.value)
		if f := rcLine(string(text), c.counter, name, "this"); len(f) < 6 || f[3] != v || f[4] != v || f[5] != "0" {
			t.Errorf("%s row %q:\n%s", c.counter, f, text)
		}
	}
	if !strings.Contains(string(text), "never hashed, held by fds: ") ||
		!strings.Contains(string(text), "\nclosed ") {
		t.Errorf("table:\n%s", text)
	}
	t.Logf("sstrace reconcile:\n%s", text)
}

// rcLine returns the fields of the first line of text whose fields start
// with prefix.
func rcLine(text string, prefix ...string) []string {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(prefix) && slices.Equal(f[:len(prefix)], prefix) {
			return f
		}
	}
	return nil
}

// TestReconcileWithoutBPF: without CAP_BPF and CAP_PERFMON (and without
// CAP_SYS_ADMIN, which would cover them), reconcile says so in one line
// and still compares its own namespace.
func TestReconcileWithoutBPF(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to drop capabilities")
	}
	n := &rcNS{ns: nstest.New(t)}
	t.Cleanup(n.closeAll)
	err = n.ns.Do(func() error {
		for range 3 {
			if _, err := n.socket(unix.AF_INET); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = n.ns.Do(func() error {
		cmd := exec.Command(setpriv, "--bounding-set=-sys_admin,-bpf,-perfmon", "--inh-caps=-sys_admin,-bpf,-perfmon",
			sstraceBin, "reconcile")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	})
	if err != nil {
		t.Fatalf("sstrace reconcile: %v\n%s", err, stderr.Bytes())
	}
	errLines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "sstrace: no fd inventory (permission denied: ") {
		t.Errorf("stderr:\n%s", stderr.Bytes())
	}
	text := stdout.String()
	name := snapshot.NSName(n.ns.Inode())
	for _, counter := range []string{"inuse", "inuse6", "tw"} {
		if f := rcLine(text, counter, name, "this"); len(f) < 6 || f[3] != "0" || f[4] != "0" || f[5] != "0" {
			t.Errorf("%s row %q:\n%s", counter, f, text)
		}
	}
	if !strings.Contains(text, "fd inventory: none (permission denied") || !strings.Contains(text, "\nverdict: ") {
		t.Errorf("output:\n%s", text)
	}
	t.Logf("without BPF:\n%s", text)
}
