// Package tracer loads sstrace's BPF programs, attaches them with bpf_link
// (so the kernel detaches them if the process dies), reads the ring buffer,
// decodes events and counts what was lost.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"sstrace/bpf"
	"sstrace/snapshot/procfs"
)

// Hook names, as users see them in warnings and as tests disable them.
const (
	HookSockCreate = "cgroup/sock_create"
	HookSocket     = "fexit/__sys_socket"
	HookAccept     = "fexit/__sys_accept4"
	// Fallbacks where BPF trampolines are missing: attaching a syscall
	// tracepoint slows every syscall of every task while it is attached.
	HookSocketTP    = "tracepoint/syscalls/sys_exit_socket"
	HookAccept4TP   = "tracepoint/syscalls/sys_exit_accept4"
	HookAcceptTP    = "tracepoint/syscalls/sys_exit_accept"
	HookSetState    = "tp_btf/inet_sock_set_state"
	HookSetStateTP  = "tracepoint/sock/inet_sock_set_state"
	HookSockRelease = "cgroup/sock_release"
	HookDestroy     = "tp_btf/tcp_destroy_sock"
	HookReset       = "tp_btf/tcp_receive_reset"
	HookRetransmit  = "tp_btf/tcp_retransmit_skb"
	HookSynAck      = "tp_btf/tcp_retransmit_synack"
	HookErrReport   = "tp_btf/inet_sk_error_report"
	HookFork        = "tp_btf/sched_process_fork"
	HookExit        = "tp_btf/sched_process_exit"
)

// DefaultRingSize is the ring buffer's size in bytes: at ~120-byte events,
// about 70k events of slack between two polls (about 7k of the ~1.1 KiB
// records that carry a user stack).
const DefaultRingSize = 8 << 20

// DefaultPoll is how often the reader looks at the ring when no wakeup came.
const DefaultPoll = 20 * time.Millisecond

// Options configure Open.
type Options struct {
	// NetNSCookie limits events to one network namespace (see NetNSCookie);
	// 0 traces every namespace.
	NetNSCookie uint64
	// RingSize in bytes (a power of two, multiple of the page size); 0 means
	// DefaultRingSize. Tests use a tiny ring to show drops are counted.
	RingSize int
	// Poll is the reader's polling interval; 0 means DefaultPoll.
	Poll time.Duration
	// Disable names hooks not to attach (test plumbing: shows degradation).
	Disable []string
	// FollowPIDs, when set, limits births and accepts to these processes
	// and every process they fork from then on, and the other events to
	// the sockets those processes own.
	FollowPIDs []uint32
	// BirthStacks: births carry the user stack that called socket()
	// (leaks). ConnectStacks: transitions to SYN-SENT carry the one that
	// called connect() (stalls). Each costs a stack walk per event and
	// makes its record ~1.1 KiB instead of 120 bytes (the frames travel
	// in the ring), so modes that print no stacks leave them off.
	BirthStacks, ConnectStacks bool
}

// HookError is a hook that could not be loaded or attached, and why.
type HookError struct {
	Hook string
	Err  error
}

func (h HookError) Error() string { return h.Hook + ": " + h.Err.Error() }

// Tracer owns the loaded objects, the links and the ring-buffer reader.
type Tracer struct {
	spec    *ebpf.CollectionSpec
	events  *ebpf.Map
	drops   *ebpf.Map
	socks   *ebpf.Map
	pids    *ebpf.Map
	progs   []*ebpf.Program // attached programs, for their miss counts
	reader  *ringbuf.Reader
	poll    time.Duration
	closers []func() error // run last-in first-out by Close
	missing []HookError
	hooks   []string
	rec     ringbuf.Record
	// next: the destroy half of a Dying release, handed out by the next
	// Read.
	next    Event
	hasNext bool
	attr    *attribution
}

// Open loads and attaches every hook it can. A hook that fails is reported
// by Missing, not fatal; Open fails only if the shared maps cannot be made
// or no hook at all could be attached. On error nothing stays attached.
func Open(ctx context.Context, opts Options) (*Tracer, error) {
	if err := requireCaps(capsTrace); err != nil {
		return nil, err
	}
	spec, err := loadSpec(opts.NetNSCookie)
	if err != nil {
		return nil, err
	}
	for name, on := range map[string]bool{
		"follow_pids": len(opts.FollowPIDs) > 0, "birth_stacks": opts.BirthStacks, "connect_stacks": opts.ConnectStacks,
	} {
		if err := spec.Variables[name].Set(on); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	t := &Tracer{spec: spec, poll: opts.Poll, attr: newAttribution()}
	if t.poll <= 0 {
		t.poll = DefaultPoll
	}
	if err := t.install(ctx, opts); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func loadSpec(netnsCookie uint64) (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadSstrace()
	if err != nil {
		return nil, fmt.Errorf("loading BPF object: %w", err)
	}
	if err := spec.Variables["target_netns_cookie"].Set(netnsCookie); err != nil {
		return nil, fmt.Errorf("setting target_netns_cookie: %w", err)
	}
	return spec, nil
}

func (t *Tracer) onClose(f func() error) { t.closers = append(t.closers, f) }

func (t *Tracer) install(ctx context.Context, opts Options) error {
	ringSize := opts.RingSize
	if ringSize == 0 {
		ringSize = DefaultRingSize
	}
	t.spec.Maps["events"].MaxEntries = uint32(ringSize)
	// Maps a mode never writes are made as small as the kernel allows
	// (the LRU map of owners is preallocated: ~20 MiB).
	if len(opts.FollowPIDs) == 0 {
		for _, m := range []string{"socks", "pids"} {
			t.spec.Maps[m].MaxEntries = 1
		}
	}
	// Wake the reader early when a quarter of the ring is pending, so a
	// burst between two polls is not lost.
	if err := t.spec.Variables["wakeup_bytes"].Set(uint64(ringSize / 4)); err != nil {
		return fmt.Errorf("setting wakeup_bytes: %w", err)
	}

	var maps struct {
		Events *ebpf.Map `ebpf:"events"`
		Drops  *ebpf.Map `ebpf:"drops"`
		Socks  *ebpf.Map `ebpf:"socks"`
		PIDs   *ebpf.Map `ebpf:"pids"`
		Dying  *ebpf.Map `ebpf:"dying"`
	}
	if err := t.spec.LoadAndAssign(&maps, nil); err != nil {
		return fmt.Errorf("creating BPF maps: %w", explainPerm(err))
	}
	t.events, t.drops, t.socks, t.pids = maps.Events, maps.Drops, maps.Socks, maps.PIDs
	for _, m := range []*ebpf.Map{t.events, t.drops, t.socks, t.pids, maps.Dying} {
		t.onClose(m.Close)
	}
	// Every program must use these same maps: a map left out would be
	// created anew, private to each program.
	shared := map[string]*ebpf.Map{
		"events": t.events, "drops": t.drops, "socks": t.socks, "pids": t.pids, "dying": maps.Dying,
	}
	for name := range t.spec.Maps {
		if !strings.HasPrefix(name, ".") && shared[name] == nil {
			return fmt.Errorf("loading BPF maps: map %q is not shared between the programs", name)
		}
	}
	for _, pid := range opts.FollowPIDs {
		if err := t.pids.Put(pid, uint8(1)); err != nil {
			return fmt.Errorf("adding pid %d to the traced processes: %w", pid, err)
		}
	}

	disabled := map[string]bool{}
	for _, h := range opts.Disable {
		disabled[h] = true
	}
	cgroup, cgErr := procfs.Cgroup2Root()
	// The kernel's BTF, which CO-RE relocations and tracing targets are
	// resolved against, decoded once for all the programs rather than
	// once each (~25 ms a program here), and let go when Open returns.
	kernelBTF := btf.NewCache()

	attach := func(hook, prog string, do func(p *ebpf.Program) (link.Link, error)) bool {
		if ctx.Err() != nil {
			return false
		}
		if disabled[hook] {
			t.missing = append(t.missing, HookError{hook, errors.New("disabled")})
			return false
		}
		p, err := t.loadProgram(prog, shared, kernelBTF)
		if err != nil {
			t.missing = append(t.missing, HookError{hook, fmt.Errorf("loading: %w", err)})
			return false
		}
		l, err := do(p)
		if err != nil {
			p.Close()
			t.missing = append(t.missing, HookError{hook, fmt.Errorf("attaching: %w", err)})
			return false
		}
		// Kept open (the link has its own reference) to read the kernel's
		// count of runs it skipped.
		t.progs = append(t.progs, p)
		t.onClose(p.Close)
		t.onClose(l.Close)
		t.hooks = append(t.hooks, hook)
		return true
	}
	cgroupLink := func(at ebpf.AttachType) func(p *ebpf.Program) (link.Link, error) {
		return func(p *ebpf.Program) (link.Link, error) {
			if cgErr != nil {
				return nil, cgErr
			}
			f, err := os.Open(cgroup)
			if err != nil {
				return nil, fmt.Errorf("opening cgroup %s: %w", cgroup, err)
			}
			defer f.Close()
			// A raw bpf_link, never the legacy PROG_ATTACH fallback that
			// link.AttachCgroup may take: a link dies with its last fd, so
			// a killed sstrace leaves nothing attached.
			return link.AttachRawLink(link.RawLinkOptions{Target: int(f.Fd()), Program: p, Attach: at})
		}
	}
	tracepoint := func(group, name string) func(p *ebpf.Program) (link.Link, error) {
		return func(p *ebpf.Program) (link.Link, error) { return link.Tracepoint(group, name, p, nil) }
	}
	tracing := func(p *ebpf.Program) (link.Link, error) {
		return link.AttachTracing(link.TracingOptions{Program: p})
	}

	attach(HookSockCreate, "sock_create", cgroupLink(ebpf.AttachCGroupInetSockCreate))
	// Each hook with a classic tracepoint in reserve: the fallbacks
	// attach only where the first choice failed (and was not disabled).
	// Disabling a first choice (test plumbing) leaves its fallback to
	// attach, as on a kernel without it; disable both to have neither.
	fallback := func(hook string, tps ...[2]string) {
		if err := ensureTracefs(); err != nil {
			for _, tp := range tps {
				t.missing = append(t.missing, HookError{tp[0], err})
			}
			return
		}
		for _, tp := range tps {
			group, name, _ := strings.Cut(strings.TrimPrefix(tp[0], "tracepoint/"), "/")
			attach(tp[0], tp[1], tracepoint(group, name))
		}
	}
	if !attach(HookSocket, "socket_exit", tracing) {
		fallback(HookSocket, [2]string{HookSocketTP, "sys_exit_socket"})
	}
	if !attach(HookAccept, "accept_exit", tracing) {
		fallback(HookAccept, [2]string{HookAccept4TP, "sys_exit_accept4"}, [2]string{HookAcceptTP, "sys_exit_accept"})
	}
	if !attach(HookSetState, "set_state_btf", tracing) {
		fallback(HookSetState, [2]string{HookSetStateTP, "set_state_tp"})
	}
	attach(HookSockRelease, "sock_release", cgroupLink(ebpf.AttachCgroupInetSockRelease))
	attach(HookDestroy, "destroy_sock", tracing)
	attach(HookReset, "receive_reset", tracing)
	attach(HookRetransmit, "retransmit_skb", tracing)
	attach(HookSynAck, "retransmit_synack", tracing)
	attach(HookErrReport, "error_report", tracing)
	if len(opts.FollowPIDs) > 0 {
		if !attach(HookFork, "process_fork", tracing) {
			return fmt.Errorf("following the process tree: %w", t.missing[len(t.missing)-1])
		}
		// Without it the tree is still followed; the pids map only
		// grows, as it did before this hook (Missing says so).
		attach(HookExit, "process_exit", tracing)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("attaching BPF programs: %w", err)
	}
	if len(t.hooks) == 0 {
		return fmt.Errorf("attaching BPF programs: no hook could be attached: %w", errors.Join(hookErrs(t.missing)...))
	}

	rd, err := ringbuf.NewReader(t.events)
	if err != nil {
		return fmt.Errorf("opening ring buffer reader: %w", err)
	}
	t.reader = rd
	t.onClose(rd.Close)
	return nil
}

func hookErrs(h []HookError) []error {
	errs := make([]error, len(h))
	for i := range h {
		errs[i] = h[i]
	}
	return errs
}

// loadProgram loads one program on its own, sharing the already created
// maps, so that one program the verifier rejects costs only its own hook,
// and the kernel's BTF as decoded by the loads before it.
func (t *Tracer) loadProgram(name string, shared map[string]*ebpf.Map, kernelBTF *btf.Cache) (*ebpf.Program, error) {
	return loadOneWith(t.spec, name, &ebpf.CollectionOptions{MapReplacements: shared, Cache: kernelBTF})
}

func loadOne(spec *ebpf.CollectionSpec, name string, shared map[string]*ebpf.Map) (*ebpf.Program, error) {
	return loadOneWith(spec, name, &ebpf.CollectionOptions{MapReplacements: shared})
}

func loadOneWith(spec *ebpf.CollectionSpec, name string, opts *ebpf.CollectionOptions) (*ebpf.Program, error) {
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("no program %q in the BPF object", name)
	}
	one := spec.Copy()
	one.Programs = map[string]*ebpf.ProgramSpec{name: ps.Copy()}
	var objs struct {
		Prog *ebpf.Program `ebpf:"prog"`
	}
	one.Programs["prog"] = one.Programs[name]
	delete(one.Programs, name)
	if err := one.LoadAndAssign(&objs, opts); err != nil {
		return nil, explainPerm(err)
	}
	return objs.Prog, nil
}

// Hooks lists the hooks that are attached.
func (t *Tracer) Hooks() []string { return t.hooks }

// Missing lists the hooks that could not be attached, and why.
func (t *Tracer) Missing() []HookError { return t.missing }

// MissingSummary is one line naming what is not traced, "" if nothing.
func (t *Tracer) MissingSummary() string {
	var parts []string
	for _, m := range t.missing {
		if stands, ok := standIns[m.Hook]; ok && t.has(stands) {
			continue // the fallback stands in
		}
		parts = append(parts, m.Error())
	}
	return strings.Join(parts, "; ")
}

// standIns: a hook whose fallback, when attached, does its job.
var standIns = map[string]string{HookSetState: HookSetStateTP, HookSocket: HookSocketTP, HookAccept: HookAccept4TP}

func (t *Tracer) has(hook string) bool {
	for _, h := range t.hooks {
		if h == hook {
			return true
		}
	}
	return false
}

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("tracer closed")

// Read blocks until the next event, or returns ErrClosed once Close was
// called. Events are submitted without wakeups, so Read polls the ring
// every Options.Poll; a burst that fills a quarter of the ring wakes it.
func (t *Tracer) Read(ev *Event) error {
	return t.read(ev, 0)
}

// ReadTimeout is Read that gives up after d, returning os.ErrDeadlineExceeded.
func (t *Tracer) ReadTimeout(ev *Event, d time.Duration) error {
	return t.read(ev, d)
}

// read hands out the next event (with timeout d; 0 waits for ever): the
// destroy half of a Dying release first, then records from the ring, with
// owners and times filled in (see attribution).
func (t *Tracer) read(ev *Event, d time.Duration) error {
	if t.hasNext {
		*ev, t.hasNext = t.next, false
		t.attr.apply(ev)
		return nil
	}
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	for {
		wait := deadline
		if d == 0 {
			wait = time.Now().Add(t.poll)
		}
		t.reader.SetDeadline(wait)
		err := t.reader.ReadInto(&t.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) && d == 0 {
			continue
		}
		if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if err != nil {
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		if err := Decode(t.rec.RawSample, ev); err != nil {
			return err
		}
		if t.attr.duplicate(ev) {
			continue
		}
		t.attr.apply(ev)
		if Unfold(ev, &t.next) {
			t.hasNext = true
			t.attr.unfolded(ev.Cookie)
		}
		return nil
	}
}

// Drops is the number of events lost because the ring was full, summed
// over CPUs.
//
// It also counts the runs the kernel skipped: a tracing program is not
// re-entered on a CPU where it is already running, so a softirq that
// interrupts it (processing a reset, say) loses its own event; the kernel
// counts these as the program's recursion misses.
func (t *Tracer) Drops() (uint64, error) {
	var perCPU []uint64
	if err := t.drops.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("reading drop counter: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	for _, p := range t.progs {
		st, err := p.Stats()
		if err != nil {
			return n, fmt.Errorf("reading program stats: %w", err)
		}
		n += st.RecursionMisses
	}
	return n, nil
}

// FollowedPIDs is the set of processes traced with Options.FollowPIDs: the
// roots and every process they forked since, as long as they live.
func (t *Tracer) FollowedPIDs() (map[uint32]bool, error) {
	out := map[uint32]bool{}
	var (
		k    uint32
		v    uint8
		iter = t.pids.Iterate()
	)
	for iter.Next(&k, &v) {
		out[k] = true
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("iterating pids map: %w", err)
	}
	return out, nil
}

// Close detaches every hook and frees every object; it is safe on a
// partially opened Tracer and more than once.
func (t *Tracer) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		if err := t.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	t.closers = nil
	return errors.Join(errs...)
}
