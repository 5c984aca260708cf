package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/filter"
	"sstrace/tracer"
)

type traceOptions struct {
	absolute bool
	json     bool
	record   string
	force    bool
	netns    string
	duration time.Duration
	tcp, udp bool
	raw      bool
	ipv4     bool
	ipv6     bool
	tf       tracerFlags
}

func newTraceCmd(stdout, stderr io.Writer) *cobra.Command {
	var o traceOptions
	cmd := &cobra.Command{
		Use:   "trace [OPTIONS] [FILTER]",
		Short: "stream socket events: births, every TCP state transition with its owner and latency, deaths",
		Long: `trace prints one line per socket event as it happens: births (socket, accept),
every TCP state transition with the time spent in the state it leaves, the last
close of the socket's fd, resets and destruction. Each line names the socket's
owner (pid/comm): the process that holds the socket, also when the transition
fired in softirq while another process was on the CPU. A connection not yet
accepted belongs to its listener's owner.

FILTER is ss's: leading "state NAME" / "exclude NAME" keep the events that
leave or enter those states (births and deaths: the state the socket is in),
then an expression (src, dst, sport, dport, ...) is evaluated on each event's
addresses. Inet sockets only (TCP, UDP, MPTCP, raw).

Events the ring buffer had no room for are never lost silently: a line says
how many, and since when.

With --record FILE, the events also go to FILE (JSON Lines, a header first)
for "sstrace timeline FILE". The file appears when trace stops.`,
		Example: `  sstrace trace
  sstrace trace -T state syn-sent
  sstrace trace -j dport = :443
  sstrace trace --netns /run/netns/blue --record blue.rec --duration 1m
  sstrace timeline blue.rec`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTrace(cmd.Context(), stdout, stderr, &o, args)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.BoolVarP(&o.absolute, "absolute", "T", false, "print absolute times (RFC 3339, µs) instead of seconds since the start")
	fl.BoolVarP(&o.json, "json", "j", false, "print one JSON object per event")
	fl.StringVar(&o.record, "record", "", "also write the events to FILE, for sstrace timeline")
	fl.BoolVar(&o.force, "force", false, "replace an existing --record file")
	fl.StringVar(&o.netns, "netns", "", "only sockets of this network namespace (a path like /run/netns/NAME or /proc/PID/ns/net)")
	fl.DurationVar(&o.duration, "duration", 0, "stop after this long (default: on Ctrl-C)")
	fl.BoolVarP(&o.tcp, "tcp", "t", false, "TCP sockets (and MPTCP sockets' fds)")
	fl.BoolVarP(&o.udp, "udp", "u", false, "UDP sockets")
	fl.BoolVarP(&o.raw, "raw", "w", false, "raw sockets")
	fl.BoolVarP(&o.ipv4, "ipv4", "4", false, "IPv4 sockets only")
	fl.BoolVarP(&o.ipv6, "ipv6", "6", false, "IPv6 sockets only")
	o.tf.add(fl)
	return cmd
}

// traceFilter decides which events trace shows.
type traceFilter struct {
	states uint32 // bit per TCP state; 0: every state
	expr   filter.Expr
	tcp    bool // tables; all false: every table
	udp    bool
	raw    bool
	v4, v6 bool // families; both false: both
}

// parseTraceFilter reads FILTER: ss's state/exclude list, then its
// expression.
func parseTraceFilter(o *traceOptions, args []string) (*traceFilter, error) {
	f := &traceFilter{tcp: o.tcp, udp: o.udp, raw: o.raw, v4: o.ipv4, v6: o.ipv6}
	stateArgs, rest, err := splitStates(args)
	if err != nil {
		return nil, err
	}
	for i, a := range stateArgs {
		mask, err := filter.ParseState(a.Name)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		if i == 0 && a.Exclude {
			f.states = filter.StatesAll
		}
		if a.Exclude {
			f.states &^= mask
		} else {
			f.states |= mask
		}
	}
	if len(stateArgs) > 0 && f.states == 0 {
		return nil, errors.New("filter: no state left to show")
	}
	if len(rest) > 0 {
		e, err := filter.Parse(rest, filter.System)
		if err != nil {
			return nil, err // "filter: position N ...: ..."
		}
		f.expr = e
	}
	return f, nil
}

const (
	traceProtoTCP   = 6
	traceProtoUDP   = 17
	traceProtoMPTCP = 262
)

// match says whether trace shows the event (after attribution filled its
// addresses in).
func (f *traceFilter) match(ev *tracer.Event) bool {
	switch ev.Family {
	case unix.AF_INET:
		if f.v6 && !f.v4 {
			return false
		}
	case unix.AF_INET6:
		if f.v4 && !f.v6 {
			return false
		}
	default:
		return false
	}
	if f.tcp || f.udp || f.raw {
		isRaw := ev.Type == unix.SOCK_RAW
		isTCP := !isRaw && (ev.Protocol == traceProtoTCP || ev.Protocol == traceProtoMPTCP)
		isUDP := !isRaw && ev.Protocol == traceProtoUDP
		if !(f.tcp && isTCP || f.udp && isUDP || f.raw && isRaw) {
			return false
		}
	}
	if f.states != 0 {
		in := f.states&(1<<ev.NewState) != 0
		if ev.Kind == tracer.KindState {
			in = in || f.states&(1<<ev.OldState) != 0
		}
		if !in {
			return false
		}
	}
	if f.expr == nil {
		return true
	}
	s := snapshot.Socket{
		Family: uint8(ev.Family), Type: ev.Type, Protocol: ev.Protocol, State: ev.NewState,
		Local: ev.Local, Peer: ev.Peer, Cookie: ev.Cookie, NetNS: uint64(ev.NetNS), Inode: ev.Inode,
	}
	return filter.Eval(f.expr, &s)
}

// traceClock turns CLOCK_MONOTONIC event times into wall-clock times.
type traceClock struct {
	boot time.Time // wall-clock time of CLOCK_MONOTONIC 0
}

// newTraceClock reads the offset between the wall clock and
// CLOCK_MONOTONIC once, keeping the tightest of a few samples.
func newTraceClock() traceClock {
	var best time.Duration = -1
	var boot time.Time
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		m := monoNow()
		t1 := time.Now()
		if d := t1.Sub(t0); best < 0 || d < best {
			best = d
			boot = t0.Add(d / 2).Add(-time.Duration(m)).Round(0)
		}
	}
	return traceClock{boot: boot}
}

func (c traceClock) wall(ts uint64) time.Time { return c.boot.Add(time.Duration(ts)) }

// traceOwner is who a socket belongs to, and how that is known, as a
// recording says (timeline).
type traceOwner struct {
	PID  uint32
	Comm string
	From string // see traceRecord's owner_from
}

const (
	ownerBPF       = "bpf"
	ownerSyscall   = "syscall"
	ownerListener  = "listener"
	ownerInventory = "inventory"
)

// sockMemo is what trace remembers of a socket between its events.
type sockMemo struct {
	owner     sockOwner
	netns     uint32
	local     netip.AddrPort
	peer      netip.AddrPort
	child     bool // a passive connection: owned by its listener until accepted
	released  bool
	listening bool
}

type listenKey struct {
	netns uint32
	port  uint16
}

type listenerInfo struct {
	cookie uint64
	addr   netip.Addr
	owner  sockOwner
}

// traceMemoLimit bounds the sockets remembered: past it, those already
// released (whose destroy may have been lost) are forgotten.
const traceMemoLimit = 1 << 20

// traceMemoFree bounds the memos kept for reuse.
const traceMemoFree = 1024

// attributor names each event's owner, from the kernel side's record when
// it has one, else from what trace saw of the socket (its birth, accept,
// connect or listen), its listener (a connection not yet accepted) or the
// fd inventory taken at start, and fills in what an event lacks (the
// netns and local address of a release) from the socket's earlier events.
type attributor struct {
	socks     map[uint64]*sockMemo
	listeners map[listenKey][]listenerInfo
	inventory map[uint64]sockOwner
	// free: memos of sockets gone, for the next ones (a churning host
	// makes and ends thousands a second); scratch: the memo of an event
	// without a cookie, remembered nowhere.
	free    []*sockMemo
	scratch sockMemo
}

func newAttributor() *attributor {
	return &attributor{
		socks:     map[uint64]*sockMemo{},
		listeners: map[listenKey][]listenerInfo{},
		inventory: map[uint64]sockOwner{},
	}
}

// addInventory records the sockets processes held when tracing started.
func (a *attributor) addInventory(fds []tracer.FD) {
	for i := range fds {
		f := &fds[i]
		if f.Cookie == 0 {
			continue
		}
		if _, ok := a.inventory[f.Cookie]; !ok {
			a.inventory[f.Cookie] = sockOwner{PID: f.PID, Comm: f.Comm, From: ownerInventory}
		}
	}
}

// addListener records a listening socket.
func (a *attributor) addListener(netns uint32, cookie uint64, local netip.AddrPort, owner sockOwner) {
	k := listenKey{netns, local.Port()}
	l := a.listeners[k]
	for i := range l {
		if l[i].cookie == cookie {
			l[i].addr, l[i].owner = local.Addr(), owner
			return
		}
	}
	a.listeners[k] = append(l, listenerInfo{cookie: cookie, addr: local.Addr(), owner: owner})
}

func (a *attributor) dropListener(netns uint32, cookie uint64, port uint16) {
	k := listenKey{netns, port}
	l := a.listeners[k]
	for i := range l {
		if l[i].cookie == cookie {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(a.listeners, k)
	} else {
		a.listeners[k] = l
	}
}

// listenerOwner finds the owner of the listener a passive connection with
// this local address came from: one bound to that address, else a
// wildcard one.
func (a *attributor) listenerOwner(netns uint32, local netip.AddrPort) (sockOwner, bool) {
	l := a.listeners[listenKey{netns, local.Port()}]
	addr := local.Addr().Unmap()
	var wild *listenerInfo
	for i := range l {
		la := l[i].addr.Unmap()
		if la == addr {
			return l[i].owner, true
		}
		if la.IsUnspecified() && (wild == nil || la.Is6()) {
			wild = &l[i]
		}
	}
	if wild != nil {
		return wild.owner, true
	}
	return sockOwner{}, false
}

func addrKnown(ap netip.AddrPort) bool {
	return ap.IsValid() && (ap.Port() != 0 || !ap.Addr().IsUnspecified())
}

func currentOwner(ev *tracer.Event) sockOwner {
	return sockOwner{PID: ev.CurPID, Comm: ev.Comm, From: ownerSyscall}
}

// apply attributes ev and completes it from the socket's history. It
// returns the owner (PID 0 when unknown).
func (a *attributor) apply(ev *tracer.Event) sockOwner {
	var m *sockMemo
	if ev.Cookie != 0 {
		m = a.socks[ev.Cookie]
		if m == nil {
			if len(a.socks) >= traceMemoLimit {
				a.sweep()
			}
			m = a.newMemo()
			a.socks[ev.Cookie] = m
		}
	} else {
		a.scratch = sockMemo{}
		m = &a.scratch
	}
	// Complete the event, then remember what it tells.
	if ev.NetNS == 0 {
		ev.NetNS = m.netns
	}
	if ev.Kind == tracer.KindRelease && !addrKnown(ev.Local) && addrKnown(m.local) {
		ev.Local = m.local
	}
	if ev.Local.Port() == 0 && m.local.Port() != 0 && ev.Local.Addr() == m.local.Addr() {
		// Unhashed on its way to CLOSE, a socket has lost its port
		// number: it is still the same connection.
		ev.Local = m.local
	}
	if ev.NetNS != 0 {
		m.netns = ev.NetNS
	}
	// Other kinds may carry other addresses (a listener's SYN-ACK
	// retransmits carry their request's).
	if traceKindRecord(ev.Kind) != "" {
		if addrKnown(ev.Local) {
			m.local = ev.Local
		}
		if addrKnown(ev.Peer) {
			m.peer = ev.Peer
		}
	} else if m.local.Port() == 0 && ev.Local.Port() != 0 && ev.Local.Addr() == m.local.Addr() {
		m.local = ev.Local // the port a connecting socket got
	}

	var owner sockOwner
	switch {
	case ev.OwnerKnown:
		// The process that made or accepted it, as BPF kept it (follow
		// mode) or the tracer took it from that event.
		from := ownerBPF
		if ev.OwnerFromEvents {
			from = ownerSyscall
		}
		owner = sockOwner{PID: ev.PID, Comm: ev.Comm, From: from}
		m.owner, m.child = owner, false
	case ev.Kind == tracer.KindBirth || ev.Kind == tracer.KindAccept:
		// In the syscall that made or took the socket.
		owner = currentOwner(ev)
		m.owner, m.child = owner, false
	case m.owner.PID != 0:
		owner = m.owner
	case a.inventory[ev.Cookie].PID != 0:
		owner = a.inventory[ev.Cookie]
		m.owner = owner
	case ev.Kind == tracer.KindState && ev.OldState == snapshot.StateListen && ev.NewState == snapshot.StateSynRecv,
		ev.Kind == tracer.KindState && ev.OldState == snapshot.StateSynRecv,
		m.child:
		// A connection born from a listener (its first transition is
		// LISTEN → SYN-RECV: it is cloned from it) fires in softirq,
		// with anyone on the CPU. Where tracing programs cannot make
		// cookies (before 5.12) that first transition has none, and the
		// child is first known at SYN-RECV → ESTABLISHED: nothing else
		// leaves SYN-RECV unowned (a simultaneous open was connect()'s).
		m.child = true
		if lo, ok := a.listenerOwner(ev.NetNS, ev.Local); ok {
			owner = sockOwner{PID: lo.PID, Comm: lo.Comm, From: ownerListener}
			m.owner = owner
		}
	case ev.Kind == tracer.KindState && ev.OldState == snapshot.StateClose &&
		(ev.NewState == snapshot.StateListen || ev.NewState == snapshot.StateSynSent),
		ev.Kind == tracer.KindRelease:
		// listen(), connect() and close() run in the owner's syscall.
		// (MPTCP's TCP subflows have no fd of their own: their owner is
		// known this way only.)
		if ev.CurPID != 0 {
			owner = currentOwner(ev)
			m.owner = owner
		}
	}

	switch ev.Kind {
	case tracer.KindState:
		if ev.NewState == snapshot.StateListen {
			a.addListener(ev.NetNS, ev.Cookie, ev.Local, owner)
			m.listening = true
		} else if ev.OldState == snapshot.StateListen && m.listening {
			a.dropListener(ev.NetNS, ev.Cookie, ev.Local.Port())
			m.listening = false
		}
	case tracer.KindRelease:
		m.released = true
		if ev.Protocol != traceProtoTCP {
			// Only TCP sockets outlive their last fd (and get a destroy).
			a.forget(ev.Cookie, m)
		}
	case tracer.KindDestroy:
		a.forget(ev.Cookie, m)
	}
	return owner
}

func (a *attributor) newMemo() *sockMemo {
	if n := len(a.free); n > 0 {
		m := a.free[n-1]
		a.free = a.free[:n-1]
		return m
	}
	return &sockMemo{}
}

// forget ends a socket's memo; m must not be used after.
func (a *attributor) forget(cookie uint64, m *sockMemo) {
	if m.listening {
		a.dropListener(m.netns, cookie, m.local.Port())
	}
	delete(a.socks, cookie)
	if m != &a.scratch && len(a.free) < traceMemoFree {
		*m = sockMemo{}
		a.free = append(a.free, m)
	}
}

// sweep forgets released sockets, then (if that was not enough) all.
func (a *attributor) sweep() {
	for c, m := range a.socks {
		if m.released {
			a.forget(c, m)
		}
	}
	if len(a.socks) >= traceMemoLimit {
		clear(a.socks)
		clear(a.listeners)
	}
}

// traceKindRecord is the record type of one of the six event kinds trace
// knows; "" for another.
func traceKindRecord(k tracer.Kind) string {
	switch k {
	case tracer.KindBirth:
		return recBirth
	case tracer.KindAccept:
		return recAccept
	case tracer.KindState:
		return recState
	case tracer.KindRelease:
		return recRelease
	case tracer.KindDestroy:
		return recDestroy
	case tracer.KindReset:
		return recReset
	}
	return ""
}

// traceKindName is the record type of an event kind: other kinds than
// the six trace knows (the tracer grows) go by the tracer's name for them;
// "" for a kind without one.
func traceKindName(k tracer.Kind) string {
	if typ := traceKindRecord(k); typ != "" {
		return typ
	}
	if typ := k.String(); isTraceEvent(typ) {
		return typ
	}
	return ""
}

// traceDur prints a duration for people: ms with µs below a second.
func traceDur(ns uint64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.3fms", float64(ns)/1e6)
	case d < time.Minute:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
	return d.Round(time.Millisecond).String()
}

// traceAddr prints an endpoint as ss does: "*" for what is unspecified,
// brackets around IPv6 addresses.
func traceAddr(ep *traceEndpoint) string {
	if ep == nil {
		return "*"
	}
	a, err := netip.ParseAddr(ep.Addr)
	addr := ep.Addr
	if err == nil && a.IsUnspecified() {
		addr = "*"
	} else if err == nil && a.Is6() {
		addr = "[" + addr + "]"
	}
	if ep.Port == 0 {
		if addr == "*" {
			return "*"
		}
		return addr + ":*"
	}
	return addr + ":" + strconv.Itoa(int(ep.Port))
}

// traceOwnerText is "pid/comm", "-" when unknown.
func traceOwnerText(pid uint32, comm string) string {
	if pid == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(pid), 10) + "/" + comm
}

// traceWhen prints an event's time: seconds since start, or -T's wall
// clock.
func traceWhen(absolute bool, clk traceClock, ts, start uint64) string {
	if absolute {
		return clk.wall(ts).Format(recTimeLayout)
	}
	if ts < start {
		return "-" + traceSeconds(start-ts)
	}
	return "+" + traceSeconds(ts-start)
}

func traceSeconds(ns uint64) string {
	return fmt.Sprintf("%d.%06d", ns/1e9, ns%1e9/1e3)
}

// traceSession is one running trace.
type traceSession struct {
	o         *traceOptions
	tr        *tracer.Tracer
	f         *traceFilter
	attr      *attributor
	clk       traceClock
	start     uint64
	enc       traceEncoder
	line      []byte // the line being written, reused
	out       *bufio.Writer
	rec       *recordWriter
	drops     uint64
	dropCheck time.Time
}

func runTrace(ctx context.Context, stdout, stderr io.Writer, o *traceOptions, args []string) error {
	if o.duration < 0 {
		return errors.New("trace: --duration must not be negative")
	}
	f, err := parseTraceFilter(o, args)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	var netns tracer.NetNS
	if o.netns != "" {
		if netns, err = tracer.LookupNetNS(o.netns); err != nil {
			return fmt.Errorf("trace: --netns: %w", err)
		}
	}
	var out *outFile
	if o.record != "" {
		if out, err = createOutFile(o.record, o.force); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer out.Abort()
	}

	s := &traceSession{
		o: o, f: f, attr: newAttributor(), clk: newTraceClock(),
		out: bufio.NewWriterSize(stdout, 64<<10), line: make([]byte, 0, 1024),
	}
	s.start = monoNow()
	s.enc = traceEncoder{clk: s.clk, start: s.start, absolute: o.absolute, showNetns: o.netns == ""}
	tr, err := tracer.Open(ctx, o.tf.apply(tracer.Options{NetNS: netns}))
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	defer tr.Close()
	s.tr = tr
	if m := tr.MissingSummary(); m != "" {
		fmt.Fprintf(stderr, "sstrace: warning: %s\n", m)
	}
	if err := s.loadInventory(); err != nil {
		fmt.Fprintf(stderr, "sstrace: warning: owners of sockets opened before the trace are unknown: %v\n", err)
	}
	if out != nil {
		s.rec = newRecordWriter(out)
		h := &recHeader{
			Sstrace: version, Host: traceHostname(), Kernel: traceKernel(),
			BootTime: s.clk.boot, Start: s.clk.wall(s.start), StartNS: s.start,
			Options: recOptions{Args: append([]string{}, os.Args[1:]...), NetNS: o.netns, NetNSCookie: netns.Cookie,
				Filter: strings.Join(args, " ")},
		}
		if err := s.rec.Header(h); err != nil {
			return fmt.Errorf("trace: writing %s: %w", o.record, err)
		}
	}
	s.drops, err = tr.Drops()
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	s.dropCheck = time.Now()
	if o.duration > 0 {
		fmt.Fprintf(stderr, "sstrace: tracing socket events for %s\n", o.duration)
	} else {
		fmt.Fprintln(stderr, "sstrace: tracing socket events; Ctrl-C to stop")
	}

	if err := s.loop(ctx); err != nil {
		return err
	}
	if s.rec != nil {
		if err := s.rec.End(time.Now(), monoNow()); err != nil {
			return fmt.Errorf("trace: writing %s: %w", o.record, err)
		}
		if err := out.Commit(); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		fmt.Fprintf(stderr, "sstrace: wrote %s: %d events, %d lost\n", o.record, s.rec.events, s.rec.lost)
	}
	return nil
}

// loop reads events until Ctrl-C or --duration, then drains what was
// emitted before it stopped.
func (s *traceSession) loop(ctx context.Context) error {
	var deadline <-chan time.Time
	if s.o.duration > 0 {
		t := time.NewTimer(s.o.duration)
		defer t.Stop()
		deadline = t.C
	}
	var ev tracer.Event
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return s.finish()
		case <-deadline:
			return s.finish()
		default:
		}
		err := s.tr.ReadTimeout(&ev, 50*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Idle: the ring has no more records ready (ReadTimeout says
			// so once it has handed out every record that came before the
			// deadline, or with none). Report losses and let a reader
			// see the lines now: a line waits 50 ms at most for it.
			if err := s.checkDrops(); err != nil {
				return err
			}
			if err := s.flush(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		if err := s.handle(&ev); err != nil {
			return err
		}
		// A ring that never empties (a reader slower than the events)
		// still has its losses reported: every 100 ms, looked at every
		// 64 events (reading the clock for each costs more than it
		// looks on a churning host).
		if n%64 == 63 && time.Since(s.dropCheck) >= 100*time.Millisecond {
			if err := s.checkDrops(); err != nil {
				return err
			}
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

// finish shows the events emitted before the stop (not those after: on a
// busy host the ring never empties), then the last losses.
func (s *traceSession) finish() error {
	stop := monoNow()
	var ev tracer.Event
	for {
		err := s.tr.ReadTimeout(&ev, 10*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		if ev.TS > stop {
			break
		}
		if err := s.handle(&ev); err != nil {
			return err
		}
	}
	if err := s.checkDrops(); err != nil {
		return err
	}
	return s.flush()
}

func (s *traceSession) flush() error {
	if err := s.out.Flush(); err != nil {
		if errors.Is(err, unix.EPIPE) {
			return nil
		}
		return fmt.Errorf("trace: writing output: %w", err)
	}
	return nil
}

func (s *traceSession) handle(ev *tracer.Event) error {
	if ev.Family != unix.AF_INET && ev.Family != unix.AF_INET6 {
		// Births of unix, netlink, packet sockets: not traced further.
		return nil
	}
	if traceKindName(ev.Kind) == "" {
		return nil // a kind this sstrace cannot name
	}
	owner := s.attr.apply(ev)
	if !s.f.match(ev) {
		return nil
	}
	if s.o.json || s.rec != nil {
		s.line = s.enc.appendJSON(s.line[:0], ev, &owner)
		if s.rec != nil {
			if err := s.rec.RecordLine(s.line, 0); err != nil {
				return fmt.Errorf("trace: writing %s: %w", s.o.record, err)
			}
		}
	}
	if !s.o.json {
		s.line = s.enc.appendText(s.line[:0], ev, &owner)
	}
	return s.write()
}

// write puts s.line out, through the buffered writer: it writes when
// full, and the read loop flushes it whenever the ring has nothing more
// ready (see loop), so lines are never held back from a reader for long.
// As before the encoder was ours: -j stops at the first error writing,
// text lines leave it to the next flush.
func (s *traceSession) write() error {
	if _, err := s.out.Write(s.line); err != nil && s.o.json {
		return fmt.Errorf("trace: writing output: %w", err)
	}
	return nil
}

// checkDrops reports the events lost since the last check.
func (s *traceSession) checkDrops() error {
	n, err := s.tr.Drops()
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	now := time.Now()
	since := s.dropCheck
	s.dropCheck = now
	if n <= s.drops {
		return nil
	}
	lost := n - s.drops
	s.drops = n
	if s.o.json || s.rec != nil {
		s.line = appendLostJSON(s.line[:0], lost, now, since)
		if s.rec != nil {
			if err := s.rec.RecordLine(s.line, lost); err != nil {
				return fmt.Errorf("trace: writing %s: %w", s.o.record, err)
			}
		}
	}
	if !s.o.json {
		s.line = appendLostText(s.line[:0], lost, since)
	}
	return s.write()
}

// loadInventory learns who holds the sockets that existed before the
// trace, and where the listeners among them listen: a connection to one
// belongs to its owner until it is accepted.
func (s *traceSession) loadInventory() error {
	fds, err := snapshot.Inventory(s.tr)
	if fds == nil {
		return err
	}
	s.attr.addInventory(fds)
	// Listening sockets by namespace; their addresses come from a
	// sock_diag dump inside each.
	errs := []error{err}
	byNS := map[uint32][]*tracer.FD{}
	for i := range fds {
		f := &fds[i]
		if f.State == snapshot.StateListen && (f.Protocol == traceProtoTCP || f.Protocol == traceProtoMPTCP) && f.Cookie != 0 {
			byNS[f.NetNS] = append(byNS[f.NetNS], f)
		}
	}
	for ns, lfds := range byNS {
		path := s.o.netns
		if path == "" {
			p, err := snapshot.NetNSPath(ns, lfds[0].PID)
			if err != nil {
				errs = append(errs, fmt.Errorf("listing the listeners of netns %d: %w", ns, err))
				continue
			}
			path = p
		}
		var socks []snapshot.Socket
		err := tracer.InNetNS(path, func() error {
			var err error
			socks, err = snapshot.List(snapshot.ListRequest{
				Inet: []snapshot.InetDump{
					{Family: unix.AF_INET, Protocol: traceProtoTCP}, {Family: unix.AF_INET6, Protocol: traceProtoTCP},
					{Family: unix.AF_INET, Protocol: traceProtoMPTCP}, {Family: unix.AF_INET6, Protocol: traceProtoMPTCP},
				},
				States: 1 << snapshot.StateListen,
			})
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the listeners of netns %d: %w", ns, err))
			continue
		}
		byCookie := map[uint64]*tracer.FD{}
		for _, f := range lfds {
			byCookie[f.Cookie] = f
		}
		for i := range socks {
			f, ok := byCookie[socks[i].Cookie]
			if !ok {
				continue
			}
			s.attr.addListener(ns, f.Cookie, socks[i].Local,
				sockOwner{PID: f.PID, Comm: f.Comm, From: ownerInventory})
		}
	}
	return errors.Join(errs...)
}

func traceHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// traceKernel is uname's sysname, release and version.
func traceKernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " +
		unix.ByteSliceToString(u.Version[:])
}
