package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/tracer"
	"sstrace/tracer/symbol"
)

type leaksOptions struct {
	pids       []int
	minAge     time.Duration
	duration   time.Duration
	interval   time.Duration
	json       bool
	pprof      string
	force      bool
	failOnLeak bool
	netns      string
	tf         tracerFlags
	hooks      leakHooks
}

// leakHooks run at the steps of a report (test plumbing: they make the
// races between those steps happen on purpose); nil in the command.
type leakHooks struct {
	// beforeInventory runs after the ring was drained, before the fd
	// inventory; afterInventory right after the inventory.
	beforeInventory, afterInventory func()
}

// exitLeaks is the status of `leaks --fail-on-leak` when leaks were found.
const exitLeaks = 3

func newLeaksCmd(stdout, stderr io.Writer) *cobra.Command {
	var o leaksOptions
	cmd := &cobra.Command{
		Use:   "leaks [--pid P] [--min-age D] [--duration D] [-- CMD ARGS]",
		Short: "find sockets held open that never connected, with the line of code that made them",
		Long: `leaks reports TCP sockets that processes hold open but never used: created and
never connected, bound only, or a failed connect nobody closed (class
never-connected), and connections whose peer closed but the process never did
(class close-wait). ss -s counts the first kind as "closed"; lsof says "can't
identify protocol". sstrace names the process and the user stack that created
each one, each frame as function (file:line).

Sockets created while sstrace runs carry their creating stack. Sockets that
existed before are found in every process's file table and reported as
"created before tracing started".

With -- CMD ARGS, sstrace runs CMD, traces only it and the processes it forks,
reports the sockets they still held when they exited, and exits with CMD's
status (or 3 with --fail-on-leak when there are leaks).`,
		Example: `  sstrace leaks --duration 30s
  sstrace leaks --pid 4242 --min-age 1m -j
  sstrace leaks --pprof leaks.pb.gz --fail-on-leak -- ./my-service --once
  go tool pprof -top leaks.pb.gz`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() < 0 && len(args) > 0 {
				return fmt.Errorf("leaks: unexpected argument %q (a command to run goes after --)", args[0])
			}
			if cmd.ArgsLenAtDash() > 0 {
				return fmt.Errorf("leaks: unexpected argument %q before --", args[0])
			}
			return runLeaks(cmd.Context(), stdout, stderr, &o, args)
		},
	}
	fl := cmd.Flags()
	fl.IntSliceVar(&o.pids, "pid", nil, "only these processes (and what they fork from now on); repeatable")
	fl.DurationVar(&o.minAge, "min-age", 5*time.Second, "leave out sockets younger than this (they may be about to connect)")
	fl.DurationVar(&o.duration, "duration", 0, "report after this long, then exit (default: report on Ctrl-C)")
	fl.DurationVar(&o.interval, "interval", 0, "report every interval")
	fl.BoolVarP(&o.json, "json", "j", false, "print the report as JSON")
	fl.StringVar(&o.pprof, "pprof", "", "also write the report as a pprof profile (sample type sockets/count) to FILE")
	fl.BoolVar(&o.force, "force", false, "replace an existing --pprof file")
	fl.BoolVar(&o.failOnLeak, "fail-on-leak", false, "with -- CMD: exit 3 when leaks were found")
	fl.StringVar(&o.netns, "netns", "", "only sockets of this network namespace (a path like /run/netns/NAME or /proc/PID/ns/net)")
	o.tf.add(fl)
	return cmd
}

func runLeaks(ctx context.Context, stdout, stderr io.Writer, o *leaksOptions, command []string) error {
	if o.minAge < 0 || o.duration < 0 || o.interval < 0 {
		return errors.New("leaks: --min-age, --duration and --interval must not be negative")
	}
	if len(command) > 0 && len(o.pids) > 0 {
		return errors.New("leaks: --pid and -- CMD exclude each other (CMD's own tree is traced)")
	}
	var netns tracer.NetNS
	if o.netns != "" {
		ns, err := tracer.LookupNetNS(o.netns)
		if err != nil {
			return fmt.Errorf("leaks: --netns: %w", err)
		}
		netns = ns
	}
	for _, p := range o.pids {
		if p <= 0 {
			return fmt.Errorf("leaks: --pid %d: not a process id", p)
		}
		if err := unix.Kill(p, 0); err != nil && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("leaks: --pid %d: no such process", p)
		}
	}

	// With a command, start it held at a barrier so that its pid is traced
	// before it runs a single instruction of its own.
	var child *heldChild
	if len(command) > 0 {
		var err error
		if child, err = startHeld(command, stderr); err != nil {
			return err
		}
		defer child.kill()
	}

	follow := make([]uint32, 0, len(o.pids)+1)
	for _, p := range o.pids {
		follow = append(follow, uint32(p))
	}
	if child != nil {
		follow = append(follow, uint32(child.cmd.Process.Pid))
	}
	tr, err := tracer.Open(ctx, o.tf.apply(tracer.Options{NetNS: netns, FollowPIDs: follow, BirthStacks: true}))
	if err != nil {
		return fmt.Errorf("leaks: %w", err)
	}
	defer tr.Close()
	if s := tr.MissingSummary(); s != "" {
		fmt.Fprintf(stderr, "sstrace: warning: %s\n", s)
	}
	switch {
	case child != nil:
		fmt.Fprintf(stderr, "sstrace: tracing %s (pid %d); the report comes when it exits\n", command[0], child.cmd.Process.Pid)
	case o.duration > 0:
		fmt.Fprintf(stderr, "sstrace: tracing socket lives for %s\n", o.duration)
	default:
		fmt.Fprintln(stderr, "sstrace: tracing socket lives; Ctrl-C to report")
	}

	l := &leakSession{
		tr: tr, o: o, stdout: stdout, stderr: stderr, stacks: newUserStacks(),
		tracker:   snapshot.NewLeakTracker(monoNow()),
		startWall: time.Now(),
	}
	if child != nil {
		if path, err := exec.LookPath(command[0]); err == nil {
			l.stacks.exeHint[uint32(child.cmd.Process.Pid)] = path
		}
	}
	var exited chan error
	if child != nil {
		exited = make(chan error, 1)
		if err := child.release(); err != nil {
			return err
		}
		go func() { exited <- child.cmd.Wait() }()
	}

	var deadline, tick <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	if o.interval > 0 {
		t := time.NewTicker(o.interval)
		defer t.Stop()
		tick = t.C
	}
	var ev tracer.Event
	for {
		select {
		case <-ctx.Done():
			if child != nil {
				// Ctrl-C reached the command too (same process group):
				// wait for it, then report what it left.
				err := <-exited
				return l.finishCommand(err)
			}
			return l.report(true)
		case <-deadline:
			if child != nil {
				return fmt.Errorf("leaks: --duration does not apply with -- CMD (the report comes when CMD exits)")
			}
			return l.report(true)
		case <-tick:
			if err := l.report(false); err != nil {
				return err
			}
		case err := <-exited:
			return l.finishCommand(err)
		default:
		}
		err := tr.ReadTimeout(&ev, 50*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return fmt.Errorf("leaks: %w", err)
		}
		l.apply(&ev)
	}
}

type leakSession struct {
	tr        *tracer.Tracer
	o         *leaksOptions
	stdout    io.Writer
	stderr    io.Writer
	stacks    *userStacks
	tracker   *snapshot.LeakTracker
	startWall time.Time
	leaked    bool
	// procInventory: the kernel has no fd iterator; inventories come
	// from /proc (see inventory).
	procInventory bool
	// stackless counts the births read without their creating stack
	// (bpf_get_stack failed): their leaks, if any, cannot say where.
	stackless uint64
}

func (l *leakSession) apply(ev *tracer.Event) {
	if ev.Kind == tracer.KindBirth {
		// Read the creator's mappings now, while it lives: the report may
		// come after it exited.
		l.stacks.process(ev.PID)
		if ev.Stack.Len() == 0 {
			l.stackless++
		}
	}
	l.tracker.Apply(ev)
}

// drain applies every event already in the ring: those emitted before now.
// It stops at the first event emitted after it began, or when the ring has
// been empty for a millisecond: under a churn that never leaves the ring
// empty for that long, "until idle" would never end, and neither would
// the report waiting for it.
func (l *leakSession) drain() error {
	_, err := l.drainHolding(false)
	return err
}

// drainHolding is drain, but with holdDeaths it applies no release or
// destroy: it returns them, in order, to be applied later.
func (l *leakSession) drainHolding(holdDeaths bool) ([]tracer.Event, error) {
	var (
		ev   tracer.Event
		held []tracer.Event
	)
	start := monoNow()
	for {
		err := l.tr.ReadTimeout(&ev, time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return held, nil
		}
		if err != nil {
			return held, fmt.Errorf("leaks: %w", err)
		}
		if holdDeaths && (ev.Kind == tracer.KindRelease || ev.Kind == tracer.KindDestroy) {
			held = append(held, ev)
		} else {
			l.apply(&ev)
		}
		if ev.TS > start {
			return held, nil
		}
	}
}

// finishCommand reports what CMD's processes held when they exited (and
// what descendants still alive hold), then exits with CMD's status.
func (l *leakSession) finishCommand(waitErr error) error {
	if err := l.drain(); err != nil {
		return err
	}
	// Descendants that outlived CMD (daemons) still hold theirs. Taken
	// first: the releases read after the inventory are applied only then,
	// and a process that exited meanwhile has its sockets among AtExit.
	live, err := l.inventoryLeaks(true)
	if err != nil {
		return err
	}
	leaks := append([]snapshot.LeakedSocket(nil), l.tracker.AtExit()...)
	atExit := map[uint64]bool{}
	for _, ls := range leaks {
		atExit[ls.Cookie] = true
	}
	for _, ls := range live {
		if !atExit[ls.Cookie] {
			leaks = append(leaks, ls)
		}
	}
	if err := l.print(leaks, true); err != nil {
		return err
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	case waitErr != nil:
		return fmt.Errorf("leaks: waiting for the command: %w", waitErr)
	}
	if l.o.failOnLeak && len(leaks) > 0 {
		code = exitLeaks
	}
	if code != 0 {
		return &exitError{code: code, err: fmt.Errorf("command exited with status %d", code)}
	}
	return nil
}

// inventoryLeaks classifies the sockets processes hold now (the events
// emitted before it are applied already). With onlyTraced (or --pid),
// only the followed process tree counts.
func (l *leakSession) inventoryLeaks(onlyTraced bool) ([]snapshot.LeakedSocket, error) {
	if h := l.o.hooks.beforeInventory; h != nil {
		h()
	}
	inv, owners, err := l.inventory()
	if err != nil {
		return nil, err
	}
	now := monoNow()
	if h := l.o.hooks.afterInventory; h != nil {
		h()
	}
	// A socket created after the drain and before the iterator reached
	// its process is in the inventory while its birth is still in the
	// ring: without reading that, the report would call it never
	// connected and created before tracing. So read the ring again, up
	// to now. Its deaths are held back until the inventory is classified:
	// a socket the inventory saw, closed since, would otherwise have lost
	// its birth record and be taken for one created before tracing.
	held, err := l.drainHolding(true)
	if err != nil {
		return nil, err
	}
	defer func() {
		for i := range held {
			l.apply(&held[i])
		}
	}()
	if owners != nil {
		// Judged by the births read up to now, the drain's included.
		inv = l.tracker.InventoryFromOwners(owners)
	}
	if onlyTraced || len(l.o.pids) > 0 {
		tree, err := l.tr.FollowedPIDs()
		if err != nil {
			return nil, fmt.Errorf("leaks: %w", err)
		}
		kept := inv[:0]
		for _, f := range inv {
			if tree[f.PID] {
				kept = append(kept, f)
			}
		}
		inv = kept
	}
	return l.tracker.Report(inv, now, l.o.minAge), nil
}

// inventory is the tracer's fd inventory, or, where the kernel has no fd
// iterator (tracer.Needs names what it lacks), the socket fds a /proc walk
// finds (owners), to be judged by the births the tracker has seen (see
// snapshot.LeakTracker.InventoryFromOwners): said once.
func (l *leakSession) inventory() ([]tracer.FD, snapshot.Owners, error) {
	if !l.procInventory {
		inv, c, err := l.tr.ProbeInventory()
		if err == nil {
			return inv, nil, nil
		}
		if c.Needs == "" {
			return nil, nil, fmt.Errorf("leaks: %w", err)
		}
		fmt.Fprintf(l.stderr, "sstrace: warning: no fd inventory on this kernel (it lacks %s): only sockets born while tracing are judged, found through /proc/*/fd\n", c.Needs)
		l.procInventory = true
	}
	owners, err := snapshot.ProcOwners("/proc")
	if err != nil {
		return nil, nil, fmt.Errorf("leaks: %w", err)
	}
	return nil, owners, nil
}

func (l *leakSession) report(final bool) error {
	if err := l.drain(); err != nil {
		return err
	}
	leaks, err := l.inventoryLeaks(false)
	if err != nil {
		return err
	}
	return l.print(leaks, final)
}

// reportGroup is one group as printed and written to JSON and pprof.
type reportGroup struct {
	Class         string        `json:"class"`
	PID           uint32        `json:"pid"`
	Comm          string        `json:"comm"`
	Exe           string        `json:"exe,omitempty"`
	Count         int           `json:"count"`
	OldestMs      int64         `json:"oldest_ms"`
	NewestMs      int64         `json:"newest_ms"`
	FDs           []uint32      `json:"fds"`
	AtExit        bool          `json:"at_exit,omitempty"`
	BeforeTracing bool          `json:"created_before_tracing,omitempty"`
	Stack         []reportFrame `json:"stack,omitempty"`
	StackError    string        `json:"stack_error,omitempty"`
	frames        []symbol.Frame
}

type leakReport struct {
	Time       time.Time `json:"time"`
	TracedMs   int64     `json:"traced_ms"`
	MinAgeMs   int64     `json:"min_age_ms"`
	Sockets    int       `json:"sockets"`
	NeverConn  int       `json:"never_connected"`
	CloseWait  int       `json:"close_wait"`
	LostEvents uint64    `json:"lost_events"`
	Incomplete bool      `json:"incomplete,omitempty"`
	// StacklessBirths: births read without their stack, since the start.
	StacklessBirths uint64        `json:"births_without_stack,omitempty"`
	NotTraced       string        `json:"not_traced,omitempty"`
	Groups          []reportGroup `json:"groups"`
	Final           bool          `json:"final"`
	ExitedCommand   bool          `json:"command_exited,omitempty"`
}

func (l *leakSession) build(leaks []snapshot.LeakedSocket, final bool) leakReport {
	drops, _ := l.tr.Drops()
	r := leakReport{
		Time: time.Now(), TracedMs: time.Since(l.startWall).Milliseconds(), MinAgeMs: l.o.minAge.Milliseconds(),
		Sockets: len(leaks), LostEvents: drops, Incomplete: drops > 0, StacklessBirths: l.stackless, NotTraced: l.tr.MissingSummary(),
		Final: final, Groups: []reportGroup{},
	}
	for _, g := range snapshot.GroupLeaks(leaks) {
		rg := reportGroup{Class: g.Class, PID: g.PID, Comm: g.Comm, Count: len(g.Sockets),
			OldestMs: g.Oldest().Milliseconds(), NewestMs: g.Newest().Milliseconds(),
			BeforeTracing: !g.Stack.Captured() && g.Sockets[0].Birth == nil}
		for _, s := range g.Sockets {
			rg.FDs = append(rg.FDs, s.FD)
			rg.AtExit = rg.AtExit || s.AtExit
		}
		sort.Slice(rg.FDs, func(i, j int) bool { return rg.FDs[i] < rg.FDs[j] })
		if g.Class == snapshot.ClassNeverConnected {
			r.NeverConn += len(g.Sockets)
		} else {
			r.CloseWait += len(g.Sockets)
		}
		rg.Exe = l.stacks.process(g.PID).exe
		if g.Stack.Captured() {
			rg.frames, rg.StackError = l.stacks.stack(g.PID, g.Stack, g.UserRet)
			rg.Stack = reportFrames(rg.frames)
		}
		r.Groups = append(r.Groups, rg)
	}
	return r
}

func (l *leakSession) print(leaks []snapshot.LeakedSocket, final bool) error {
	r := l.build(leaks, final)
	if len(leaks) > 0 {
		l.leaked = true
	}
	if l.o.pprof != "" && final {
		if err := writeLeakProfile(l.o.pprof, l.o.force, &r); err != nil {
			return err
		}
	}
	w := bufio.NewWriter(l.stdout)
	if l.o.json {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("leaks: encoding JSON: %w", err)
		}
		w.Write(b)
		w.WriteByte('\n')
		return w.Flush()
	}
	printLeakReport(w, &r)
	return w.Flush()
}

func printLeakReport(w io.Writer, r *leakReport) {
	fmt.Fprintf(w, "%s  leaks: %d sockets (%d never-connected, %d close-wait) in %d groups; traced %s, min-age %s\n",
		r.Time.Format("15:04:05"), r.Sockets, r.NeverConn, r.CloseWait, len(r.Groups),
		(time.Duration(r.TracedMs) * time.Millisecond).String(), (time.Duration(r.MinAgeMs) * time.Millisecond).String())
	if r.LostEvents > 0 {
		fmt.Fprintf(w, "INCOMPLETE: %d events were lost (ring buffer full): some births or deaths are missing\n", r.LostEvents)
	}
	if r.StacklessBirths > 0 {
		fmt.Fprintf(w, "%d socket births came without their user stack: the leaks they made say \"created at: unknown\"\n", r.StacklessBirths)
	}
	if r.NotTraced != "" {
		fmt.Fprintf(w, "%s\n", r.NotTraced)
	}
	for _, g := range r.Groups {
		fmt.Fprintln(w)
		what := "held open"
		if g.AtExit {
			what = "held until exit"
		}
		fmt.Fprintf(w, "%s: %d sockets %s by pid %d (%s)", g.Class, g.Count, what, g.PID, g.Comm)
		if g.Exe != "" {
			fmt.Fprintf(w, " %s", g.Exe)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  age: oldest %s, newest %s; fds %s\n",
			(time.Duration(g.OldestMs) * time.Millisecond).String(), (time.Duration(g.NewestMs) * time.Millisecond).String(), fdList(g.FDs, 8))
		switch {
		case g.BeforeTracing:
			fmt.Fprintln(w, "  created before tracing started (no stack)")
		case g.StackError != "":
			fmt.Fprintf(w, "  created at: unknown (%s)\n", g.StackError)
		case len(g.Stack) > 0:
			fmt.Fprintln(w, "  created at:")
			printFrames(w, "    ", g.Stack)
		}
	}
}

func fdList(fds []uint32, max int) string {
	var b strings.Builder
	for i, fd := range fds {
		if i == max {
			fmt.Fprintf(&b, " … (%d more)", len(fds)-max)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, fd)
	}
	return b.String()
}

// monoNow is CLOCK_MONOTONIC in ns, the clock of event timestamps.
func monoNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
