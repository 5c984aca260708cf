package tracer

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"sstrace/bpf"
	"sstrace/snapshot/procfs"
)

// Object is one build of sstrace's BPF programs, as loaded: each hook
// tries them in this order and keeps the first the kernel accepts.
type Object int

const (
	// ObjectBTF reads kernel objects with plain loads through BTF
	// pointers, making them with the kfunc bpf_rdonly_cast (6.2+): the
	// cheapest.
	ObjectBTF Object = iota
	// ObjectCORE reads every field with bpf_probe_read_kernel at CO-RE
	// relocated offsets and calls no kfunc (6.1 has no bpf_rdonly_cast).
	ObjectCORE
	// ObjectCORE510 is ObjectCORE using only the helpers 5.10 gives
	// tracing and cgroup programs (legacy_helpers): it reads the socket
	// cookie a socket has instead of generating one, and goes without the
	// word at the user stack pointer and the exiting flag on releases.
	ObjectCORE510
	numObjects
)

var objectNames = [numObjects]string{"btf", "core", "core-5.10"}

func (o Object) String() string {
	if o >= 0 && o < numObjects {
		return objectNames[o]
	}
	return fmt.Sprintf("object(%d)", int(o))
}

// ParseObject reads an object's name (btf, core, core-5.10).
func ParseObject(s string) (Object, error) {
	for i, n := range objectNames {
		if s == n {
			return Object(i), nil
		}
	}
	return 0, fmt.Errorf("unknown BPF object %q (want one of %s)", s, strings.Join(objectNames[:], ", "))
}

// ObjectEnv names the environment variable that makes every hook start its
// ladder at a later object (test plumbing: the suites run again with
// SSTRACE_BPF_OBJECT=core on a kernel that would load btf, proving that
// each variant gives the same answers).
const ObjectEnv = "SSTRACE_BPF_OBJECT"

func firstObject() (Object, error) {
	s := os.Getenv(ObjectEnv)
	if s == "" {
		return ObjectBTF, nil
	}
	o, err := ParseObject(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ObjectEnv, err)
	}
	return o, nil
}

// Capability is one thing the tracer observes, and how it does so on this
// kernel: the hook and object in use, or, when none loaded, why.
type Capability struct {
	Name string `json:"name"`
	// Hooks in use (an alternative may take several), empty if none.
	Hooks  []string `json:"hooks,omitempty"`
	Object string   `json:"object,omitempty"`
	// Tried: each variant that was refused before the one in use (all of
	// them when none loaded), with the kernel's reason.
	Tried []HookError `json:"tried,omitempty"`
	// Lacks: what the variant in use goes without (Lack*), where it is
	// not the best; each a constant tests can compare with.
	Lacks []string `json:"lacks,omitempty"`
	// Loses says what the user goes without when no variant loads, and
	// Needs the kernel feature the refusals show is missing (see Needs),
	// "" if none is recognized.
	Loses string `json:"loses"`
	Needs string `json:"needs,omitempty"`
}

// settle fills Needs for a capability no variant of which loaded: what the
// most portable variant tried (the last) was refused for, else any other.
func (c *Capability) settle() {
	if c.OK() {
		return
	}
	for i := len(c.Tried) - 1; i >= 0; i-- {
		if n := Needs(c.Tried[i].Err); n != "" {
			c.Needs = n
			return
		}
	}
}

// What a variant may go without, said the way doctor shows it.
const (
	LackUserRet   = "the caller of glibc's syscall wrapper in user stacks (no bpf_task_pt_regs before 5.15)"
	LackCookieGen = "cookies for sockets that have none yet (no bpf_get_socket_cookie in tracing programs before 5.12): an accepted socket is known by inode until a dump names it"
	LackExiting   = "whether a socket was closed by its owner's exit (no bpf_get_current_task_btf in cgroup programs)"
	// LackIterCookie: the fd iterator reads cookies instead of making
	// them (6.18.44's verifier refuses bpf_get_socket_cookie there).
	LackIterCookie = "cookies for held sockets that have none yet (the iterator may not call bpf_get_socket_cookie here): trace, stalls and leaks fill them from a sock_diag dump, and an unbound socket keeps none"
	// LackHandshakeCookie is what remains of LackCookieGen once the
	// sock_ops hook gives accepted sockets their cookies.
	LackHandshakeCookie = "cookies for an accepted socket's handshake transitions (no bpf_get_socket_cookie in tracing programs before 5.12; a sock_ops hook gives it one once established)"
)

// objectLacks: what each capability goes without when it runs from an
// object other than the best.
var objectLacks = map[Object]map[string][]string{
	ObjectCORE510: {
		CapBirths:       {LackUserRet},
		CapTransitions:  {LackUserRet, LackCookieGen},
		CapReleases:     {LackExiting},
		CapDestroys:     {LackCookieGen},
		CapResets:       {LackCookieGen},
		CapSynRetrans:   {LackCookieGen},
		CapSynAckRetran: {LackCookieGen},
		CapErrors:       {LackCookieGen},
	},
}

// Lacking tells whether the capability's variant in use goes without
// what a Lack* constant names.
func (c Capability) Lacking(what string) bool {
	for _, l := range c.Lacks {
		if l == what {
			return true
		}
	}
	return false
}

// OK tells whether a variant of the capability is in use.
func (c Capability) OK() bool { return len(c.Hooks) > 0 }

// Variant is the hooks and object in use, as one short string.
func (c Capability) Variant() string {
	if !c.OK() {
		return ""
	}
	return strings.Join(c.Hooks, " + ") + " (" + c.Object + ")"
}

// hookSpec is one attach point and the program (same name in every object)
// that goes there.
type hookSpec struct {
	hook   string
	prog   string
	attach attachKind
}

type attachKind int

const (
	attachTracing attachKind = iota // fexit, tp_btf
	attachTracepoint
	attachCgroupCreate
	attachCgroupRelease
	attachCgroupSockOps
)

// capSpec: a capability and its alternatives, best first. An alternative
// is the hooks that must all attach for it to stand.
type capSpec struct {
	name   string
	follow bool // attached only when following a process tree
	// when, if set, says from the capabilities attached before this one
	// whether it is wanted at all.
	when  func(t *Tracer) bool
	loses string
	alts  [][]hookSpec
}

// Capability names.
const (
	CapCookies      = "cookies"
	CapBirths       = "births"
	CapAccepts      = "accepts"
	CapTransitions  = "transitions"
	CapReleases     = "releases"
	CapDestroys     = "destroys"
	CapResets       = "resets"
	CapSynRetrans   = "syn-retransmits"
	CapSynAckRetran = "synack-retransmits"
	CapErrors       = "socket-errors"
	CapForks        = "process-forks"
	CapExits        = "process-exits"
	CapPassiveCook  = "accepted-cookies"
	CapInventory    = "inventory"
)

// capSpecs is every capability the tracer attaches, in attach order. The
// fexit hooks come first where the kernel allows BPF trampolines: a
// syscall tracepoint sends every syscall of every task down the slow path
// while attached (measured on 6.18: less than run-to-run noise for a
// socket()+close() loop, so the fallback is no worse in practice).
var capSpecs = []capSpec{
	{name: CapCookies, loses: "sockets get their identity (cookie) later, from the first hook that asks, so a socket's birth and its later events may not be joined",
		alts: [][]hookSpec{{{HookSockCreate, "sock_create", attachCgroupCreate}}}},
	{name: CapBirths, loses: "no socket() births: leaks cannot name the creating process and stack; sockets appear at their first transition",
		alts: [][]hookSpec{
			{{HookSocket, "socket_exit", attachTracing}},
			{{HookSocketTP, "sys_exit_socket", attachTracepoint}},
		}},
	{name: CapAccepts, loses: "no accepts: an accepted socket's owner is known only from the fd inventory",
		alts: [][]hookSpec{
			{{HookAccept, "accept_exit", attachTracing}},
			{{HookAccept4TP, "sys_exit_accept4", attachTracepoint}, {HookAcceptTP, "sys_exit_accept", attachTracepoint}},
		}},
	{name: CapTransitions, loses: "no TCP state transitions: trace, watch and stalls see no connection change state",
		alts: [][]hookSpec{
			{{HookSetState, "set_state_btf", attachTracing}},
			{{HookSetStateTP, "set_state_tp", attachTracepoint}},
		}},
	{name: CapReleases, loses: "no close() of sockets: a never-connected socket's end is seen only when it is destroyed",
		alts: [][]hookSpec{{{HookSockRelease, "sock_release", attachCgroupRelease}}}},
	{name: CapDestroys, loses: "no TCP socket destroys: ends of orphaned and TIME-WAIT sockets go unseen",
		alts: [][]hookSpec{{{HookDestroy, "destroy_sock", attachTracing}}}},
	{name: CapResets, loses: "no resets received: a refused connect is told only by its error, an aborted connection not at all",
		alts: [][]hookSpec{{{HookReset, "receive_reset", attachTracing}}}},
	{name: CapSynRetrans, loses: "no SYN retransmits: stalls cannot count a connect's retries",
		alts: [][]hookSpec{{{HookRetransmit, "retransmit_skb", attachTracing}}}},
	{name: CapSynAckRetran, loses: "no SYN-ACK retransmits: passive attempts that stall go unseen until they end",
		alts: [][]hookSpec{{{HookSynAck, "retransmit_synack", attachTracing}}}},
	{name: CapErrors, loses: "no socket errors: a failed connect is classified by its state changes alone (timed out, refused and unreachable look alike)",
		alts: [][]hookSpec{{{HookErrReport, "error_report", attachTracing}}}},
	{name: CapPassiveCook, when: func(t *Tracer) bool { return t.Capability(CapTransitions).Lacking(LackCookieGen) },
		loses: "accepted sockets have no cookie: trace and watch cannot follow them",
		alts:  [][]hookSpec{{{HookSockOps, "passive_cookie", attachCgroupSockOps}}}},
	{name: CapForks, follow: true, loses: "cannot follow a process tree (leaks -- CMD, --pid)",
		alts: [][]hookSpec{{{HookFork, "process_fork", attachTracing}}}},
	{name: CapExits, follow: true, loses: "followed processes are never forgotten: the pid table only grows",
		alts: [][]hookSpec{{{HookExit, "process_exit", attachTracing}}}},
}

// inventoryLoses is what a kernel without the fd iterator costs.
const inventoryLoses = "no fd inventory: -p reads /proc/*/fd instead (slower, only the processes it may read); leaks cannot list never-connected sockets held since before it started"

// specs holds each object's collection spec, parsed on first use (a
// listing that needs only the iterator parses one object, not three) with
// the same settings applied to each.
type specs struct {
	set map[string]any
	// sizes: map sizes changed from the object's (every object must
	// declare a shared map exactly as the one made).
	sizes map[string]uint32
	objs  [numObjects]*ebpf.CollectionSpec
}

func newSpecs(set map[string]any) *specs { return &specs{set: set, sizes: map[string]uint32{}} }

func (s *specs) get(o Object) (*ebpf.CollectionSpec, error) {
	if o < 0 || o >= numObjects {
		return nil, fmt.Errorf("no BPF object %d", int(o))
	}
	if s.objs[o] != nil {
		return s.objs[o], nil
	}
	var (
		spec *ebpf.CollectionSpec
		err  error
	)
	if o == ObjectBTF {
		spec, err = bpf.LoadSstrace()
	} else {
		spec, err = bpf.LoadSstraceCompat()
	}
	if err != nil {
		return nil, fmt.Errorf("loading BPF object %s: %w", o, err)
	}
	set := s.set
	if o == ObjectCORE510 {
		set = maps.Clone(set)
		set["legacy_helpers"] = true
	}
	for name, v := range set {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s in BPF object %s: %w", name, o, err)
		}
	}
	for name, n := range s.sizes {
		spec.Maps[name].MaxEntries = n
	}
	s.objs[o] = spec
	return spec, nil
}

// settings are the variables every object gets from Options.
func settings(opts Options) map[string]any {
	return map[string]any{
		"target_netns":        opts.NetNS.Inode,
		"target_netns_cookie": opts.NetNS.Cookie,
		"follow_pids":         len(opts.FollowPIDs) > 0,
		"birth_stacks":        opts.BirthStacks,
		"connect_stacks":      opts.ConnectStacks,
	}
}

// attachCapabilities walks the capability table: for each capability, its
// alternatives best first, each tried with every object from first on,
// keeping the first that loads and attaches whole.
func (t *Tracer) attachCapabilities(first Object, opts Options, load func(Object, string) (*ebpf.Program, error)) {
	disabled := map[string]bool{}
	for _, h := range opts.Disable {
		disabled[h] = true
	}
	for _, cs := range capSpecs {
		if cs.follow && len(opts.FollowPIDs) == 0 || cs.when != nil && !cs.when(t) {
			continue
		}
		c := Capability{Name: cs.name, Loses: cs.loses}
	alts:
		for _, alt := range cs.alts {
			for _, h := range alt {
				if disabled[h.hook] {
					c.Tried = append(c.Tried, HookError{Hook: h.hook, Err: errors.New("disabled")})
					continue alts
				}
			}
			for o := first; o < numObjects; o++ {
				err := t.attachAlternative(alt, o, load)
				if err == nil {
					for _, h := range alt {
						c.Hooks = append(c.Hooks, h.hook)
					}
					c.Object = o.String()
					c.Lacks = objectLacks[o][cs.name]
					break alts
				}
				c.Tried = append(c.Tried, *err)
				// Permission refused (lockdown) or an attach point the
				// kernel lacks: no other object changes that.
				if !err.loadErr || errors.Is(err.Err, unix.EPERM) {
					continue alts
				}
			}
		}
		c.settle()
		t.caps = append(t.caps, c)
	}
	if t.Capability(CapPassiveCook).OK() {
		t.narrowCookieLack()
	}
}

// narrowCookieLack: with accepted sockets given cookies once established,
// only the transitions of their handshakes go without one.
func (t *Tracer) narrowCookieLack() {
	for i := range t.caps {
		c := &t.caps[i]
		lacks := slices.DeleteFunc(slices.Clone(c.Lacks), func(l string) bool { return l == LackCookieGen })
		if len(lacks) < len(c.Lacks) && c.Name == CapTransitions {
			lacks = append(lacks, LackHandshakeCookie)
		}
		c.Lacks = lacks
	}
}

// attachAlternative loads and attaches every hook of alt from object o;
// on failure nothing of it stays attached.
func (t *Tracer) attachAlternative(alt []hookSpec, o Object, load func(Object, string) (*ebpf.Program, error)) *HookError {
	type attached struct {
		hook string
		p    *ebpf.Program
		l    link.Link
	}
	var done []attached
	fail := func(h hookSpec, loadErr bool, err error) *HookError {
		for i := len(done) - 1; i >= 0; i-- {
			done[i].l.Close()
			done[i].p.Close()
		}
		return &HookError{Hook: h.hook, Object: o.String(), Err: err, loadErr: loadErr}
	}
	for _, h := range alt {
		p, err := load(o, h.prog)
		if err != nil {
			return fail(h, true, fmt.Errorf("loading: %w", err))
		}
		l, err := t.attachProgram(h, p)
		if err != nil {
			p.Close()
			return fail(h, false, fmt.Errorf("attaching: %w", err))
		}
		done = append(done, attached{h.hook, p, l})
	}
	for _, a := range done {
		// Kept open (the link has its own reference) to read the
		// kernel's count of runs it skipped.
		t.progs = append(t.progs, a.p)
		t.onClose(a.p.Close)
		t.onClose(a.l.Close)
		t.hooks = append(t.hooks, a.hook)
	}
	return nil
}

func (t *Tracer) attachProgram(h hookSpec, p *ebpf.Program) (link.Link, error) {
	switch h.attach {
	case attachTracepoint:
		if err := ensureTracefs(); err != nil {
			return nil, err
		}
		group, name, _ := strings.Cut(strings.TrimPrefix(h.hook, "tracepoint/"), "/")
		return link.Tracepoint(group, name, p, nil)
	case attachCgroupCreate:
		return attachCgroup(p, ebpf.AttachCGroupInetSockCreate)
	case attachCgroupRelease:
		return attachCgroup(p, ebpf.AttachCgroupInetSockRelease)
	case attachCgroupSockOps:
		return attachCgroup(p, ebpf.AttachCGroupSockOps)
	default:
		return link.AttachTracing(link.TracingOptions{Program: p})
	}
}

// cgroup2Root is where cgroup v2 is mounted, found once per process.
var cgroup2Root = sync.OnceValues(procfs.Cgroup2Root)

// attachCgroup attaches p at the cgroup v2 root with a raw bpf_link, never
// the legacy PROG_ATTACH fallback that link.AttachCgroup may take: a link
// dies with its last fd, so a killed sstrace leaves nothing attached.
func attachCgroup(p *ebpf.Program, at ebpf.AttachType) (link.Link, error) {
	root, err := cgroup2Root()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", root, err)
	}
	defer f.Close()
	return link.AttachRawLink(link.RawLinkOptions{Target: int(f.Fd()), Program: p, Attach: at})
}

// Capability is the named capability as it stands on this kernel.
func (t *Tracer) Capability(name string) Capability {
	for _, c := range t.caps {
		if c.Name == name {
			return c
		}
	}
	return Capability{Name: name}
}

// AllCapabilities lists every capability Open would try (those of follow
// mode only if follow), unprobed: names and what each costs when missing,
// in attach order. Doctor reports them so when nothing may be loaded.
func AllCapabilities(follow bool) []Capability {
	var out []Capability
	for _, cs := range capSpecs {
		// Capabilities wanted only where another runs degraded
		// (accepted-cookies) are listed where they attach.
		if cs.follow && !follow || cs.when != nil {
			continue
		}
		out = append(out, Capability{Name: cs.name, Loses: cs.loses})
	}
	return out
}

// Capabilities lists what the tracer observes on this kernel and how,
// in the order they attach (the fd inventory, loaded on demand, is not
// among them: see ProbeInventory).
func (t *Tracer) Capabilities() []Capability { return t.caps }

// MissingSummary is one short line naming the capabilities no variant of
// which loaded ("not traced: ...") and those whose variant goes without
// something ("degraded: ...", see Lacks), "" if neither: what a degraded
// command says before it runs. The reasons are doctor's to show.
func (t *Tracer) MissingSummary() string {
	var missing, degraded []string
	for _, c := range t.caps {
		switch {
		case !c.OK():
			missing = append(missing, c.Name)
		case len(c.Lacks) > 0:
			degraded = append(degraded, c.Name)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "not traced: "+strings.Join(missing, ", "))
	}
	if len(degraded) > 0 {
		parts = append(parts, "degraded: "+strings.Join(degraded, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + " (this kernel lacks what they need; run 'sstrace doctor' for what and what it costs)"
}
