package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"

	"sstrace/snapshot/nstest"
)

// The long run (issue #7): watch, trace and leaks -- CMD, each limited to
// one network namespace where sockets churn for SSTRACE_LONGRUN (default
// 10m in CI, where CI=true, and 2m elsewhere, so that a developer's make
// test stays short), must keep their memory and every BPF map they hold
// bounded: the state of dead sockets (and processes) is freed in BPF and
// in Go, not kept until the process exits. Skipped with -short.
//
// The workload is testdata/longchurn, paced by a ticker: one instance for
// the namespace (~1900 sockets/s: socket()+close() of TCP and UDP over
// IPv4 and IPv6, loopback connections closed by either side, leaving
// ~6000 TIME-WAIT minisockets, or reset, and refused connects), and one as
// leaks' CMD (~350 sockets/s, plus a child process every 200ms that makes
// 8 sockets and exits).
//
// Every sample reads each process's VmRSS and, for each hash, LRU hash
// and stack-trace map it holds (map ids from its fdinfo), how many keys it
// has; ring buffers and arrays are fixed in size and left out. No process
// holds a stack-trace map or an exe_base map: stacks travel in the ring.
// Past a warm-up (the first 20% of the run):
//
//   - RSS stops growing: the largest value of the last third of the run is
//     at most 1.25 × the largest of the middle third + 8 MiB. 100 bytes
//     kept per dead socket add ~40 MiB per third of a 10-minute run.
//   - socks (per-socket owners, leaks only) holds at most 2 × the sockets
//     alive in the namespace (ss -tuan) + 256: an entry is a socket the
//     followed tree created and the kernel has not destroyed; the slack
//     covers sockets created and closed between the two counts (each
//     churning process has at most a few in flight).
//   - pids (leaks only: the followed tree) holds at most the processes
//     alive in the tree + 16: an exited process is forgotten (the slack
//     covers forks and exits between the two counts).
//   - every other map stops growing: its largest count of the last third
//     is at most that of the middle third + max(16, 10%). One entry kept
//     per process that ever ran adds a third of the forks.
//
// Lost events are allowed only if reported: each process's drops (the
// drops map summed over CPUs plus its programs' recursion misses, which
// is what sstrace counts) must be in trace's lost lines, in watch's block
// header "lost L" and in leaks' lost_events. And leaks must report no
// socket: the workload holds none for --min-age; and, when its ring lost
// nothing, no birth without its stack (births_without_stack).
func TestLongRun(t *testing.T) {
	if testing.Short() {
		t.Skip("long run: skipped with -short")
	}
	nstest.RequireRoot(t)
	dur := 2 * time.Minute
	if os.Getenv("CI") == "true" {
		dur = 10 * time.Minute
	}
	if s := os.Getenv("SSTRACE_LONGRUN"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Second {
			t.Fatalf("SSTRACE_LONGRUN=%q: want a Go duration of at least 10s", s)
		}
		dur = d
	}
	// Builds, readiness and the stops take well under this.
	const margin = 3 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl) < dur+margin {
		t.Fatalf("the long run needs %s and go test's -timeout leaves %s: run go test with -timeout 30m (or a shorter SSTRACE_LONGRUN)",
			dur+margin, time.Until(dl).Round(time.Second))
	}
	ns := nstest.New(t)
	churnBin := helper(t, "longchurn") // position-independent: see helperBuilds

	watch := &lrWatch{more: make(chan struct{}, 1)}
	wp := lrStart(t, ns, false, "watch", []string{"watch", "-tan", "--interval", "1s", "--netns", ns.Path()},
		"sstrace: watching", watch.line)
	watch.waitBlock(t, wp, time.Time{})
	trace := &lrTrace{}
	tp := lrStart(t, ns, false, "trace", []string{"trace", "-j", "--netns", ns.Path()},
		"sstrace: tracing socket events", trace.line)

	// The namespace's churn, for watch and trace; leaks follows its own.
	churn := exec.Command(churnBin, "-plain", "16")
	var churnErr lrLines
	churn.Stderr = &churnErr
	if err := ns.Do(churn.Start); err != nil {
		t.Fatalf("starting longchurn: %v", err)
	}
	t.Cleanup(func() { churn.Process.Kill(); churn.Wait() })

	// leaks runs inside the namespace, so CMD does too; its own process
	// group, so that Ctrl-C (SIGINT to the group) reaches CMD as well.
	leaks := &lrLeaks{}
	lp := lrStart(t, ns, true, "leaks", []string{"leaks", "-j", "--min-age", "1s", "--interval", "30s", "--netns", ns.Path(),
		"--", churnBin, "-interval", "20ms", "-plain", "4", "-fork", "200ms"}, "sstrace: tracing ", leaks.line)
	m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(lp.readyLine)
	if m == nil {
		t.Fatalf("leaks: no pid in %q", lp.readyLine)
	}
	cmdPID, _ := strconv.Atoi(m[1])
	procs := []*lrProc{wp, tp, lp}

	every := min(max(dur/30, time.Second), 20*time.Second)
	t.Logf("churning in %s for %s (leaks follows pid %d), a sample every %s", ns.Path(), dur, cmdPID, every)
	start := time.Now()
	var samples []lrSample
	take := func() {
		s := lrTake(t, ns, procs, cmdPID, time.Since(start))
		s.traceLines, s.watchBlocks, s.leaksReports = trace.count(), watch.count(), leaks.count()
		if len(samples) > 0 {
			s.since(&samples[len(samples)-1])
		}
		samples = append(samples, s)
		t.Log(s.table(procs))
	}
	take()
	tick := time.NewTicker(every)
	for time.Since(start) < dur {
		<-tick.C
		take()
	}
	tick.Stop()
	final := samples[len(samples)-1]

	// Every lost event measured must have been reported: watch in a
	// block printed after the last sample, trace and leaks when they stop.
	lastAt := time.Now()
	watch.waitBlock(t, wp, lastAt)
	for i, p := range procs {
		if p.name == "leaks" {
			p.stop(t, syscall.SIGINT, true)
		} else {
			p.stop(t, syscall.SIGINT, false)
		}
		if p.code != 0 {
			t.Errorf("%s exited with status %d after SIGINT; stderr:\n%s", p.name, p.code, p.stderr.String())
		}
		if d := final.procs[i].drops; d > 0 {
			t.Logf("%s: %d events lost (%d ring buffer full, %d recursion misses)", p.name, d, final.procs[i].ring, d-final.procs[i].ring)
		}
	}
	churn.Process.Signal(syscall.SIGINT)
	if err := churn.Wait(); err != nil {
		t.Errorf("longchurn: %v; stderr:\n%s", err, churnErr.String())
	}
	t.Logf("namespace churn: %s", strings.TrimSpace(churnErr.String()))
	t.Logf("leaks' CMD: %s", strings.TrimSpace(lp.stderr.String()))

	lost := map[string]uint64{"watch": watch.lostAfter(lastAt), "trace": trace.lostTotal(), "leaks": leaks.lastLost()}
	for i, p := range procs {
		if d := final.procs[i].drops; lost[p.name] < d {
			t.Errorf("%s lost %d events but reported %d", p.name, d, lost[p.name])
		}
	}
	if n := watch.staleLines(); n > 0 {
		t.Logf("watch printed %d stale lines", n)
	}
	if leaks.finalReports() != 1 {
		t.Errorf("leaks printed %d final reports, want 1", leaks.finalReports())
	}
	// A birth loses its stack only with its whole record (a ring loss).
	li := slices.Index(procs, lp)
	if n := leaks.lastStackless(); n > 0 && final.procs[li].ring == 0 {
		t.Errorf("leaks: %d births came without their stack, and the ring lost nothing", n)
	} else if n > 0 {
		t.Logf("leaks: %d births without their stack, with %d ring records lost", n, final.procs[li].ring)
	}
	// The churn holds its sockets for well under --min-age and exits
	// holding none: any socket reported is a false positive.
	bad := 0
	for _, r := range leaks.reports() {
		if r.Sockets != 0 {
			bad++
			t.Errorf("leaks reported %d sockets of a workload that leaks none: %s", r.Sockets, r.raw)
		}
	}
	if bad > 0 {
		t.Logf("%d of leaks' %d reports had false positives", bad, leaks.count())
	}

	lrCheck(t, samples, procs, dur)
}

// lrCheck asserts boundedness over the samples (see TestLongRun).
func lrCheck(t *testing.T, samples []lrSample, procs []*lrProc, dur time.Duration) {
	t.Helper()
	warm, mid, last := dur/5, dur/3, 2*dur/3
	var first, middle, end []lrSample
	for _, s := range samples {
		switch {
		case s.at >= last:
			end = append(end, s)
		case s.at >= mid:
			middle = append(middle, s)
		default:
			first = append(first, s)
		}
	}
	if len(middle) == 0 || len(end) == 0 {
		t.Fatalf("too few samples: %d in the middle third, %d in the last", len(middle), len(end))
	}
	peak := func(ss []lrSample, f func(s *lrSample) uint64) uint64 {
		var m uint64
		for i := range ss {
			m = max(m, f(&ss[i]))
		}
		return m
	}
	for i, p := range procs {
		rss := func(s *lrSample) uint64 { return s.procs[i].rss }
		mRSS, lRSS := peak(middle, rss), peak(end, rss)
		bound := mRSS + mRSS/4 + 8<<20
		t.Logf("%s VmRSS: at start %s; max first third %s, middle third %s, last third %s (bound %s)",
			p.name, lrMiB(samples[0].procs[i].rss), lrMiB(peak(first, rss)), lrMiB(mRSS), lrMiB(lRSS), lrMiB(bound))
		if lRSS > bound {
			t.Errorf("%s: RSS keeps growing: max %s in the last third > 1.25 × %s (middle third) + 8 MiB",
				p.name, lrMiB(lRSS), lrMiB(mRSS))
		}
		for _, name := range lrMapNames(samples, i) {
			count := func(s *lrSample) uint64 { return uint64(s.procs[i].maps[name]) }
			if name == "stacks" || name == "exe_base" || slices.Contains(lrStackMaps(samples, i), name) {
				t.Errorf("%s holds map %s: stacks travel in the ring records, no map keeps them", p.name, name)
				continue
			}
			if name == "pids" && p.name == "leaks" {
				most, fewest, over := 0, -1, 0
				for _, s := range samples {
					n := s.procs[i].maps[name]
					most = max(most, n)
					if fewest < 0 || n < fewest {
						fewest = n
					}
					if lim := s.tree + 16; s.at >= warm && n > lim {
						if over == 0 {
							t.Errorf("%s: pids has %d entries at %s (%d of them exited) with %d processes alive in the tree (bound %d): exited processes are kept",
								p.name, n, s.at.Round(time.Second), s.procs[i].dead[name], s.tree, lim)
						}
						over++
					}
				}
				if over > 1 {
					t.Errorf("%s: pids over its bound in %d samples in all", p.name, over)
				}
				t.Logf("%s map pids: %d to %d entries; max first third %d, middle third %d, last third %d (bound: live tree + 16)",
					p.name, fewest, most, peak(first, count), peak(middle, count), peak(end, count))
				continue
			}
			if name == "socks" {
				most := 0
				for _, s := range samples {
					n := s.procs[i].maps[name]
					most = max(most, n)
					if lim := 2*s.live + 256; s.at >= warm && n > lim {
						t.Errorf("%s: socks has %d entries at %s with %d sockets alive in the namespace (bound %d): owners of dead sockets are kept",
							p.name, n, s.at.Round(time.Second), s.live, lim)
					}
				}
				t.Logf("%s map socks: at most %d entries; max first third %d, middle third %d, last third %d (bound: 2 × live sockets + 256)",
					p.name, most, peak(first, count), peak(middle, count), peak(end, count))
				continue
			}
			mN, lN := peak(middle, count), peak(end, count)
			lim := mN + max(16, mN/10)
			t.Logf("%s map %s: max first third %d, middle third %d, last third %d (bound %d)", p.name, name, peak(first, count), mN, lN, lim)
			if lN > lim {
				fin := samples[len(samples)-1]
				dead := ""
				if n, ok := fin.procs[i].dead[name]; ok {
					dead = fmt.Sprintf("; at the end %d of its %d keys are pids of processes that have exited (%d processes alive in the tree)",
						n, fin.procs[i].maps[name], fin.tree)
				}
				t.Errorf("%s: map %s keeps growing: %d entries in the last third, %d in the middle third (%d at %s, %d at %s)%s",
					p.name, name, lN, mN, samples[0].procs[i].maps[name], samples[0].at.Round(time.Second),
					fin.procs[i].maps[name], fin.at.Round(time.Second), dead)
			}
		}
	}
	// Still working at the end: trace printed events, watch blocks.
	f, l := end[0], end[len(end)-1]
	if l.traceLines <= f.traceLines {
		t.Errorf("trace printed nothing in the last third (%d lines, then %d)", f.traceLines, l.traceLines)
	}
	if l.watchBlocks <= f.watchBlocks {
		t.Errorf("watch printed no block in the last third (%d, then %d)", f.watchBlocks, l.watchBlocks)
	}
}

func lrMiB(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// lrProc is one running sstrace command.
type lrProc struct {
	name      string
	cmd       *exec.Cmd
	readyLine string
	stderr    lrLines // its stderr but the ready line
	drained   chan struct{}
	code      int
	stopped   bool
}

// lrLines collects lines written by a process (its stderr), safely.
type lrLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lrLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lrLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lrStart runs sstrace with args (inside ns when inside is set; in a
// process group of its own, killed if the test binary dies) and returns
// once its stderr printed a line starting with ready. Its stdout lines go
// to onLine, from one goroutine.
func lrStart(t *testing.T, ns *nstest.NS, inside bool, name string, args []string, ready string, onLine func(string)) *lrProc {
	t.Helper()
	p := &lrProc{name: name, cmd: exec.Command(sstraceBin, args...), drained: make(chan struct{})}
	// Killed with the test binary (on a go test timeout, say). Pdeathsig
	// follows the thread that starts it, and Go ends a thread only when
	// a goroutine locked to it returns, which none does from here on.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if inside {
		err = ns.Do(p.cmd.Start)
	} else {
		err = p.cmd.Start()
	}
	if err != nil {
		t.Fatalf("starting sstrace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if !p.stopped {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			p.cmd.Wait()
		}
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			onLine(sc.Text())
		}
	}()
	readyc := make(chan string, 1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		var before []string
		waiting := true
		for sc.Scan() {
			if waiting && strings.HasPrefix(sc.Text(), ready) {
				readyc <- sc.Text()
				waiting = false
				continue
			}
			if waiting {
				before = append(before, sc.Text())
			}
			fmt.Fprintln(&p.stderr, sc.Text())
		}
		if waiting {
			readyc <- "ended before ready: " + strings.Join(before, "\n")
		}
	}()
	go func() {
		wg.Wait()
		close(p.drained)
	}()
	// The deadline turns a hang into a failure; it synchronizes nothing.
	select {
	case line := <-readyc:
		if !strings.HasPrefix(line, ready) {
			t.Fatalf("sstrace %s: %s", name, line)
		}
		p.readyLine = line
	case <-time.After(time.Minute):
		t.Fatalf("sstrace %s not ready after a minute; stderr:\n%s", name, p.stderr.String())
	}
	return p
}

// stop sends sig (to the process group with group) and waits for the
// process to exit and its output to end.
func (p *lrProc) stop(t *testing.T, sig syscall.Signal, group bool) {
	t.Helper()
	pid := p.cmd.Process.Pid
	if group {
		pid = -pid
	}
	syscall.Kill(pid, sig)
	select {
	case <-p.drained:
	case <-time.After(time.Minute):
		t.Fatalf("sstrace %s still running a minute after %v", p.name, sig)
	}
	err := p.cmd.Wait()
	p.stopped = true
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		p.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("sstrace %s: %v", p.name, err)
	}
}

// lrWatch follows watch's blocks, each headed "--- TIME  N sockets  events
// E  lost L  resyncs R ---".
type lrWatch struct {
	mu     sync.Mutex
	blocks uint64
	lost   uint64
	at     time.Time // when the last block header was read
	stale  int
	more   chan struct{} // signalled on each block
}

var lrWatchHeader = regexp.MustCompile(`^--- .*\blost (\d+)\b.* ---$`)

func (w *lrWatch) line(l string) {
	if strings.HasPrefix(l, "stale: ") {
		w.mu.Lock()
		w.stale++
		w.mu.Unlock()
		return
	}
	m := lrWatchHeader.FindStringSubmatch(l)
	if m == nil {
		return
	}
	lost, _ := strconv.ParseUint(m[1], 10, 64)
	w.mu.Lock()
	w.blocks++
	w.lost, w.at = lost, time.Now()
	w.mu.Unlock()
	select {
	case w.more <- struct{}{}:
	default:
	}
}

// waitBlock returns once a block header was read after since.
func (w *lrWatch) waitBlock(t *testing.T, p *lrProc, since time.Time) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		w.mu.Lock()
		ok := w.blocks > 0 && w.at.After(since)
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.more:
		case <-p.drained:
			t.Fatalf("watch ended; stderr:\n%s", p.stderr.String())
		case <-deadline:
			t.Fatalf("no watch block for a minute; stderr:\n%s", p.stderr.String())
		}
	}
}

func (w *lrWatch) count() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blocks
}

// lostAfter is the lost count of the last block, which must have been
// read after since.
func (w *lrWatch) lostAfter(since time.Time) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.at.After(since) {
		return 0
	}
	return w.lost
}

func (w *lrWatch) staleLines() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stale
}

// lrTrace counts trace -j's lines and adds up its lost records.
type lrTrace struct {
	mu    sync.Mutex
	lines uint64
	lost  uint64
}

func (r *lrTrace) line(l string) {
	var lost uint64
	if strings.HasPrefix(l, `{"type":"lost"`) {
		var rec struct {
			Lost uint64 `json:"lost"`
		}
		json.Unmarshal([]byte(l), &rec)
		lost = rec.Lost
	}
	r.mu.Lock()
	r.lines++
	r.lost += lost
	r.mu.Unlock()
}

func (r *lrTrace) count() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines
}

func (r *lrTrace) lostTotal() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// lrLeaksReport is what the test reads of a leaks -j report.
type lrLeaksReport struct {
	Sockets    int    `json:"sockets"`
	LostEvents uint64 `json:"lost_events"`
	Stackless  uint64 `json:"births_without_stack"`
	Final      bool   `json:"final"`
	raw        string
}

// lrLeaks collects leaks' reports (one JSON object per line; CMD prints
// nothing to stdout).
type lrLeaks struct {
	mu   sync.Mutex
	reps []lrLeaksReport
}

func (r *lrLeaks) line(l string) {
	rep := lrLeaksReport{raw: l}
	if err := json.Unmarshal([]byte(l), &rep); err != nil {
		return
	}
	r.mu.Lock()
	r.reps = append(r.reps, rep)
	r.mu.Unlock()
}

func (r *lrLeaks) reports() []lrLeaksReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reps)
}

func (r *lrLeaks) count() uint64 { return uint64(len(r.reports())) }

func (r *lrLeaks) lastLost() uint64 {
	reps := r.reports()
	if len(reps) == 0 {
		return 0
	}
	return reps[len(reps)-1].LostEvents
}

// lastStackless is the last report's count of births without a stack.
func (r *lrLeaks) lastStackless() uint64 {
	reps := r.reports()
	if len(reps) == 0 {
		return 0
	}
	return reps[len(reps)-1].Stackless
}

func (r *lrLeaks) finalReports() int {
	n := 0
	for _, rep := range r.reports() {
		if rep.Final {
			n++
		}
	}
	return n
}

// lrSample is one sample of every process.
type lrSample struct {
	at    time.Duration
	live  int // TCP and UDP sockets in the namespace (ss -tuanH)
	tree  int // processes alive in leaks' CMD tree
	procs []lrProcSample
	// CPU time of the machine (all CPUs, in ticks): busy and in all, from
	// /proc/stat; busy is the percentage since the previous sample.
	sysBusy, sysTotal, busy float64
	// What the processes printed so far.
	traceLines, watchBlocks, leaksReports uint64
}

type lrProcSample struct {
	rss   uint64         // VmRSS, bytes
	maps  map[string]int // keys in each hash-like map, by map name
	stack []string       // the names of its stack-trace maps (there should be none)
	dead  map[string]int // pids: keys naming no live process
	drops uint64         // ring + recursion misses: what sstrace counts as lost
	ring  uint64         // the drops map (failed reserves), summed over CPUs
	cpu   time.Duration  // user + system time so far
	pct   float64        // CPU use since the previous sample, %
}

func lrTake(t *testing.T, ns *nstest.NS, procs []*lrProc, treeRoot int, at time.Duration) lrSample {
	t.Helper()
	s := lrSample{at: at}
	for _, p := range procs {
		ps, err := lrProcess(p.cmd.Process.Pid)
		if err != nil {
			t.Fatalf("sampling sstrace %s (pid %d) at %s: %v; stderr:\n%s", p.name, p.cmd.Process.Pid, at, err, p.stderr.String())
		}
		s.procs = append(s.procs, ps)
	}
	out, err := ns.Output("ss", "-tuanH")
	if err != nil {
		t.Fatalf("ss in the namespace: %v", err)
	}
	s.live = strings.Count(string(out), "\n")
	s.tree = lrTree(treeRoot)
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			if i < 8 { // user nice system idle iowait irq softirq steal
				s.sysTotal += v
				if i != 3 && i != 4 {
					s.sysBusy += v
				}
			}
		}
	}
	return s
}

// lrProcess reads a process's VmRSS and the BPF maps its fds hold.
func lrProcess(pid int) (lrProcSample, error) {
	ps := lrProcSample{maps: map[string]int{}, dead: map[string]int{}}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// After "pid (comm) ": utime and stime are fields 14 and 15, in
	// clock ticks (USER_HZ, 100 on Linux).
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 12 {
		u, _ := strconv.ParseUint(f[11], 10, 64)
		k, _ := strconv.ParseUint(f[12], 10, 64)
		ps.cpu = time.Duration(u+k) * 10 * time.Millisecond
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			ps.rss = kb << 10
		}
	}
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	if err != nil {
		return ps, err
	}
	maps := map[uint32]bool{}
	progs := map[string]uint64{} // prog id → recursion misses
	for _, fd := range fds {
		b, err := os.ReadFile(fd)
		if err != nil {
			continue // closed meanwhile
		}
		info := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				info[k] = strings.TrimSpace(v)
			}
		}
		switch {
		case info["map_id"] != "":
			id, _ := strconv.ParseUint(info["map_id"], 10, 32)
			maps[uint32(id)] = true
		case info["prog_type"] != "" && info["link_type"] == "":
			misses, _ := strconv.ParseUint(info["recursion_misses"], 10, 64)
			progs[info["prog_id"]] = misses
		}
	}
	var misses uint64
	for _, n := range progs {
		misses += n
	}
	for id := range maps {
		m, err := ebpf.NewMapFromID(ebpf.MapID(id))
		if err != nil {
			continue // freed meanwhile
		}
		err = lrMap(m, &ps)
		m.Close()
		if err != nil {
			return ps, fmt.Errorf("map %d: %w", id, err)
		}
	}
	ps.drops = ps.ring + misses
	return ps, nil
}

func lrMap(m *ebpf.Map, ps *lrProcSample) error {
	info, err := m.Info()
	if err != nil {
		return err
	}
	switch info.Type {
	case ebpf.PerCPUArray:
		if info.Name == "drops" {
			var perCPU []uint64
			if err := m.Lookup(uint32(0), &perCPU); err != nil {
				return fmt.Errorf("reading drops: %w", err)
			}
			for _, v := range perCPU {
				ps.ring += v
			}
		}
		return nil
	case ebpf.Hash, ebpf.LRUHash, ebpf.StackTrace, ebpf.PerCPUHash, ebpf.LRUCPUHash:
	default:
		return nil // ring buffers and arrays: fixed size
	}
	keys, err := lrKeys(m, info.MaxEntries)
	if err != nil {
		return err
	}
	name := info.Name
	if _, dup := ps.maps[name]; dup || name == "" {
		id, _ := info.ID()
		name = fmt.Sprintf("%s#%d", name, id)
	}
	ps.maps[name] = len(keys)
	if info.Type == ebpf.StackTrace {
		ps.stack = append(ps.stack, name)
	}
	if info.Name == "pids" && info.KeySize == 4 {
		// Keyed by tgid.
		for _, k := range keys {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", binary.NativeEndian.Uint32([]byte(k)))); err != nil {
				ps.dead[name]++
			}
		}
	}
	return nil
}

// lrKeys lists a map's keys with BPF_MAP_GET_NEXT_KEY. Keys deleted
// meanwhile make the kernel start over from the first key: keys are
// listed once each, and the walk is bounded.
func lrKeys(m *ebpf.Map, maxEntries uint32) ([]string, error) {
	seen := map[string]bool{}
	var keys []string
	var key any // nil: the first key
	for steps := 0; steps < 2*int(maxEntries)+64; steps++ {
		next, err := m.NextKeyBytes(key)
		if err != nil {
			return nil, fmt.Errorf("next key: %w", err)
		}
		if next == nil {
			break
		}
		if !seen[string(next)] {
			seen[string(next)] = true
			keys = append(keys, string(next))
		}
		key = next
	}
	return keys, nil
}

// lrTree counts the live processes descending from root, root included.
func lrTree(root int) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	children := map[int][]int{}
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		head, tail, ok := strings.Cut(string(b), " (")
		i := strings.LastIndexByte(tail, ')')
		if !ok || i < 0 {
			continue
		}
		f := strings.Fields(tail[i+1:])
		if len(f) < 2 {
			continue
		}
		pid, _ := strconv.Atoi(head)
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", root)); err != nil {
		return 0
	}
	n, queue := 0, []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		n++
		queue = append(queue, children[p]...)
	}
	return n
}

// lrStackMaps lists the stack-trace maps a process held in any sample.
func lrStackMaps(samples []lrSample, i int) []string {
	var names []string
	for _, s := range samples {
		for _, n := range s.procs[i].stack {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// lrMapNames lists the maps a process held in any sample, socks and pids
// first.
func lrMapNames(samples []lrSample, i int) []string {
	set := map[string]bool{}
	for _, s := range samples {
		for name := range s.procs[i].maps {
			set[name] = true
		}
	}
	var names []string
	for _, n := range []string{"socks", "pids"} {
		if set[n] {
			names = append(names, n)
			delete(set, n)
		}
	}
	var rest []string
	for n := range set {
		rest = append(rest, n)
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// since computes CPU use since the previous sample.
func (s *lrSample) since(prev *lrSample) {
	d := s.at - prev.at
	if d <= 0 {
		return
	}
	for i := range s.procs {
		s.procs[i].pct = 100 * float64(s.procs[i].cpu-prev.procs[i].cpu) / float64(d)
	}
	s.busy = 100 * (s.sysBusy - prev.sysBusy) / (s.sysTotal - prev.sysTotal)
}

// table is the sample as a few lines for the log.
func (s *lrSample) table(procs []*lrProc) string {
	var names []string
	seen := map[string]bool{}
	for i := range procs {
		for _, n := range lrMapNames([]lrSample{*s}, i) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s  %d tcp/udp sockets in the netns, %d processes in leaks' tree; trace %d lines, watch %d blocks, leaks %d reports; CPUs %.0f%% busy\n",
		s.at.Round(time.Second), s.live, s.tree, s.traceLines, s.watchBlocks, s.leaksReports, s.busy)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "\tVmRSS\tCPU\tlost (ring+rec)\t")
	for _, n := range names {
		fmt.Fprintf(w, "%s\t", n)
	}
	fmt.Fprintln(w)
	for i, p := range procs {
		ps := &s.procs[i]
		fmt.Fprintf(w, "%s\t%s\t%.0f%%\t%d+%d\t", p.name, lrMiB(ps.rss), ps.pct, ps.ring, ps.drops-ps.ring)
		for _, n := range names {
			if v, ok := ps.maps[n]; ok && ps.dead[n] > 0 {
				fmt.Fprintf(w, "%d (%d dead)\t", v, ps.dead[n])
			} else if ok {
				fmt.Fprintf(w, "%d\t", v)
			} else {
				fmt.Fprint(w, "-\t")
			}
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	return strings.TrimRight(b.String(), "\n")
}
