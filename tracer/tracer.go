// Package tracer loads sstrace's BPF programs, attaches them with bpf_link
// (so the kernel detaches them if the process dies), reads the ring buffer,
// decodes events and counts what was lost.
package tracer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/ringbuf"
)

// Hook names (attach points), as users see them in doctor and as tests
// disable them. Which capability each serves, and in what order they are
// tried, is capSpecs (variants.go).
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
	HookInventory   = "iter/task_file"
	HookSockOps     = "cgroup/sock_ops"
)

// DefaultRingSize is the ring buffer's size in bytes: at ~120-byte events,
// about 70k events of slack between two polls (about 7k of the ~1.1 KiB
// records that carry a user stack).
const DefaultRingSize = 8 << 20

// DefaultPoll is how often the reader looks at the ring when no wakeup came.
const DefaultPoll = 20 * time.Millisecond

// Options configure Open.
type Options struct {
	// NetNS limits events to one network namespace (see LookupNetNS); the
	// zero value traces every namespace.
	NetNS NetNS
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
	Hook string `json:"hook"`
	// Object is the BPF object whose program was refused ("" where none
	// was loaded: a disabled hook).
	Object string `json:"object,omitempty"`
	Err    error  `json:"-"`
	// loadErr: the load failed (another object's program may pass),
	// not the attach.
	loadErr bool
}

func (h HookError) Error() string {
	if h.Object == "" {
		return h.Hook + ": " + h.Err.Error()
	}
	return h.Hook + " (" + h.Object + "): " + h.Err.Error()
}

// MarshalJSON adds the reason as a string.
func (h HookError) MarshalJSON() ([]byte, error) {
	type plain HookError
	return json.Marshal(struct {
		plain
		Reason string `json:"reason"`
	}{plain(h), h.Err.Error()})
}

// Tracer owns the loaded objects, the links and the ring-buffer reader.
type Tracer struct {
	specs   *specs
	first   Object // where every hook's ladder starts (ObjectEnv)
	caps    []Capability
	events  *ebpf.Map
	drops   *ebpf.Map
	socks   *ebpf.Map
	pids    *ebpf.Map
	progs   []*ebpf.Program // attached programs, for their miss counts
	reader  *ringbuf.Reader
	poll    time.Duration
	closers []func() error // run last-in first-out by Close
	hooks   []string
	rec     ringbuf.Record
	// next: the destroy half of a Dying release, handed out by the next
	// Read.
	next    Event
	hasNext bool
	attr    *attribution
	shared  map[string]*ebpf.Map
	disable []string // Options.Disable
}

// Open loads and attaches every hook it can. A hook that fails is reported
// by Missing, not fatal; Open fails only if the shared maps cannot be made
// or no hook at all could be attached. On error nothing stays attached.
func Open(ctx context.Context, opts Options) (*Tracer, error) {
	t, err := newTracer(opts)
	if err != nil {
		return nil, err
	}
	if err := t.install(ctx, opts); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// newTracer is a Tracer with nothing loaded yet.
func newTracer(opts Options) (*Tracer, error) {
	if err := requireCaps(capsTrace); err != nil {
		return nil, err
	}
	if err := removeMemlock(); err != nil {
		return nil, err
	}
	first, err := firstObject()
	if err != nil {
		return nil, err
	}
	t := &Tracer{specs: newSpecs(settings(opts)), first: first, poll: opts.Poll, attr: newAttribution(), disable: opts.Disable}
	if t.poll <= 0 {
		t.poll = DefaultPoll
	}
	return t, nil
}

// Probe loads and attaches what Open would with opts, only to see what
// this kernel allows, and detaches it all again: every capability with
// the variant in use or why none loaded (doctor's report). Unlike Open it
// keeps the capabilities when Open would fail after walking them (no
// hook at all, or FollowPIDs without process-forks): err is that failure.
func Probe(ctx context.Context, opts Options) ([]Capability, error) {
	t, err := newTracer(opts)
	if err != nil {
		return nil, err
	}
	err = t.install(ctx, opts)
	caps := t.caps
	if cerr := t.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("detaching the probe's BPF programs: %w", cerr)
	}
	return caps, err
}

func (t *Tracer) onClose(f func() error) { t.closers = append(t.closers, f) }

func (t *Tracer) install(ctx context.Context, opts Options) error {
	ringSize := opts.RingSize
	if ringSize == 0 {
		ringSize = DefaultRingSize
	}
	// Wake the reader early when a quarter of the ring is pending, so a
	// burst between two polls is not lost.
	t.specs.set["wakeup_bytes"] = uint64(ringSize / 4)
	t.specs.sizes["events"] = uint32(ringSize)
	// Maps a mode never writes are made as small as the kernel allows
	// (the LRU map of owners is preallocated: ~20 MiB).
	if len(opts.FollowPIDs) == 0 {
		for _, m := range []string{"socks", "pids"} {
			t.specs.sizes[m] = 1
		}
	}
	// The maps are made once, from the first object (every object
	// declares the same ones), and shared by every program.
	spec, err := t.specs.get(ObjectBTF)
	if err != nil {
		return err
	}

	var maps struct {
		Events     *ebpf.Map `ebpf:"events"`
		Drops      *ebpf.Map `ebpf:"drops"`
		Socks      *ebpf.Map `ebpf:"socks"`
		PIDs       *ebpf.Map `ebpf:"pids"`
		Dying      *ebpf.Map `ebpf:"dying"`
		NetNSProbe *ebpf.Map `ebpf:"netns_probe_out"`
		Early      *ebpf.Map `ebpf:"early_synrecv"`
	}
	if err := spec.LoadAndAssign(&maps, nil); err != nil {
		return fmt.Errorf("creating BPF maps: %w", explainPerm(err))
	}
	t.events, t.drops, t.socks, t.pids = maps.Events, maps.Drops, maps.Socks, maps.PIDs
	for _, m := range []*ebpf.Map{t.events, t.drops, t.socks, t.pids, maps.Dying, maps.NetNSProbe, maps.Early} {
		t.onClose(m.Close)
	}
	// Every program must use these same maps: a map left out would be
	// created anew, private to each program.
	t.shared = map[string]*ebpf.Map{
		"events": t.events, "drops": t.drops, "socks": t.socks, "pids": t.pids, "dying": maps.Dying,
		"netns_probe_out": maps.NetNSProbe, "early_synrecv": maps.Early,
	}
	for name := range spec.Maps {
		if !strings.HasPrefix(name, ".") && t.shared[name] == nil {
			return fmt.Errorf("loading BPF maps: map %q is not shared between the programs", name)
		}
	}
	for _, pid := range opts.FollowPIDs {
		if err := t.pids.Put(pid, uint8(1)); err != nil {
			return fmt.Errorf("adding pid %d to the traced processes: %w", pid, err)
		}
	}

	// The kernel's BTF, which CO-RE relocations and tracing targets are
	// resolved against, decoded once for all the programs rather than
	// once each (~25 ms a program here), and let go when Open returns.
	kernelBTF := btf.NewCache()
	load := func(o Object, prog string) (*ebpf.Program, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		spec, err := t.specs.get(o)
		if err != nil {
			return nil, err
		}
		return loadOneWith(spec, prog, nil, &ebpf.CollectionOptions{MapReplacements: t.shared, Cache: kernelBTF})
	}
	t.attachCapabilities(t.first, opts, load)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("attaching BPF programs: %w", err)
	}
	for _, c := range t.caps {
		if c.Name == CapForks && !c.OK() {
			return fmt.Errorf("following the process tree: %w", errors.Join(hookErrs(c.Tried)...))
		}
	}
	if len(t.hooks) == 0 {
		return fmt.Errorf("attaching BPF programs: no hook could be attached: %w", errors.Join(hookErrs(t.Missing())...))
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

// loadOneWith loads one program of spec on its own, with the variables in
// set changed for it alone, sharing the maps in opts: one program the
// verifier rejects costs only its own hook.
func loadOneWith(spec *ebpf.CollectionSpec, name string, set map[string]any, opts *ebpf.CollectionOptions) (*ebpf.Program, error) {
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("no program %q in the BPF object", name)
	}
	one := spec.Copy()
	one.Programs = map[string]*ebpf.ProgramSpec{name: ps.Copy()}
	for k, v := range set {
		if err := one.Variables[k].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", k, err)
		}
	}
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

// Missing lists, for each capability no variant of which attached, every
// variant tried and why it was refused.
func (t *Tracer) Missing() []HookError {
	var out []HookError
	for _, c := range t.caps {
		if !c.OK() {
			out = append(out, c.Tried...)
		}
	}
	return out
}

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
