package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/filter"
	"sstrace/tracer"
)

type stallsOptions struct {
	threshold time.Duration
	duration  time.Duration
	json      bool
	stalled   bool
	netns     string
	tf        tracerFlags
}

func newStallsCmd(stdout, stderr io.Writer) *cobra.Command {
	var o stallsOptions
	cmd := &cobra.Command{
		Use:   "stalls [--threshold D] [FILTER]",
		Short: "trace connection attempts: who connects where, how long it takes, how it ends",
		Long: `stalls follows every TCP connection attempt: active ones (connect(): the
socket in SYN-SENT) and passive ones (a listener's handshakes). For each it
reports the process (for an active attempt the one that called connect(), with
the user stack that called it), where the SYN went, how long the attempt was
pending, how many SYNs (or SYN-ACKs) were retransmitted, and how it ended:

  established   the handshake completed, after the time shown
  refused       a reset answered the SYN (ECONNREFUSED)
  timed-out     no answer before the kernel gave up (ETIMEDOUT)
  unreachable   an ICMP error (EHOSTUNREACH, ENETUNREACH)
  abandoned     the socket was closed while still connecting
  failed        another error, named

An attempt still pending past --threshold is printed as it happens ("stalled"),
then again with its outcome. Every attempt's outcome is printed (with
--stalled only those that stalled or did not establish). On Ctrl-C or after
--duration comes a summary: the latency of established attempts (p50, p90,
p99, max) and the outcomes, overall, per destination and per process.

A passive attempt is kept by the kernel as a request socket until the final
ACK comes, and no hook marks a SYN's arrival: it is seen when a SYN-ACK is
retransmitted, when its handshake completes, or when a scan of the traced
namespace's request sockets (sock_diag, every 250 ms, less often on a table
so big that a scan costs more than 2% of a CPU: ~1 s at 100k sockets) finds
it, which is how one stalls past --threshold before its first retransmit. Its time
pending runs from the first SYN-ACK (estimated from the request's timer when
a scan found it); otherwise from the handshake's round trip (the child's
smoothed RTT, as tcp_info reports it). A request that goes silent (no SYN-ACK
retransmit, no longer found) is reported timed-out, inferred: a client's
reset of a pending request looks the same. Its process is the listener's
owner, or the one that accepted it.

FILTER is ss's filter expression (src, dst, sport, dport, ...), applied to
each attempt as ss would apply it to the attempt's socket: dst is the peer
(the server for an active attempt, the client for a passive one), sport an
active attempt's local port, which the kernel picks after SYN-SENT (filter
on dport or dst instead).`,
		Example: `  sstrace stalls
  sstrace stalls --threshold 200ms --duration 1m
  sstrace stalls -j dport = :443
  sstrace stalls --stalled --netns /run/netns/blue`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStalls(cmd.Context(), stdout, stderr, &o, args)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.threshold, "threshold", time.Second, "print an attempt as stalled once it has been pending this long")
	fl.DurationVar(&o.duration, "duration", 0, "summarize after this long, then exit (default: on Ctrl-C)")
	fl.BoolVarP(&o.json, "json", "j", false, "print one JSON object per line: attempts, then a summary")
	fl.BoolVar(&o.stalled, "stalled", false, "print only attempts that stalled or did not establish (the summary counts all)")
	fl.StringVar(&o.netns, "netns", "", "only attempts of this network namespace (a path like /run/netns/NAME or /proc/PID/ns/net)")
	o.tf.add(fl)
	return cmd
}

// stallsPoll is how often pending attempts are checked against the
// threshold (and the ring read when no wakeup comes).
const stallsPoll = 50 * time.Millisecond

func runStalls(ctx context.Context, stdout, stderr io.Writer, o *stallsOptions, args []string) error {
	if o.threshold <= 0 {
		return errors.New("stalls: --threshold must be positive")
	}
	if o.duration < 0 {
		return errors.New("stalls: --duration must not be negative")
	}
	expr, err := parseStallsFilter(args)
	if err != nil {
		return err
	}
	var netns tracer.NetNS
	if o.netns != "" {
		ns, err := tracer.LookupNetNS(o.netns)
		if err != nil {
			return fmt.Errorf("stalls: --netns: %w", err)
		}
		netns = ns
	}
	tr, err := tracer.Open(ctx, o.tf.apply(tracer.Options{NetNS: netns, ConnectStacks: true}))
	if err != nil {
		return fmt.Errorf("stalls: %w", err)
	}
	defer tr.Close()
	if s := tr.MissingSummary(); s != "" {
		fmt.Fprintf(stderr, "sstrace: warning: %s\n", s)
	}
	stacks := newUserStacks()
	s := &stallSession{
		tr: tr, o: o, w: bufio.NewWriter(stdout), expr: expr, stacks: stacks, frames: newStackCache(stacks),
		tracker: snapshot.NewStallTracker(), stats: snapshot.NewStallStats(),
		startMono: monoNow(), startWall: time.Now(), shown: map[uint64]bool{},
	}
	defer s.frames.close()
	// Listeners that predate tracing: their owners, for passive attempts.
	inv, err := snapshot.Inventory(tr)
	if err != nil {
		fmt.Fprintf(stderr, "sstrace: warning: listeners' owners unknown until they accept: %v\n", err)
	}
	for i := range inv {
		if f := &inv[i]; f.State == snapshot.StateListen && f.Cookie != 0 {
			s.tracker.Listener(f.Cookie, f.NetNS, f.Port, f.PID, f.CommString())
		}
	}
	what := "Ctrl-C for the summary"
	if o.duration > 0 {
		what = "summary after " + o.duration.String()
	}
	fmt.Fprintf(stderr, "sstrace: tracing connection attempts (threshold %s); %s\n", o.threshold, what)

	var deadline <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	var ev tracer.Event
	lastPoll := time.Now()
	scan := requestScan{minEvery: requestScanEvery}
	for {
		select {
		case <-ctx.Done():
			return s.finish()
		case <-deadline:
			return s.finish()
		default:
		}
		err := tr.ReadTimeout(&ev, stallsPoll)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("stalls: %w", err)
		}
		if err == nil {
			s.apply(&ev)
			s.known = max(s.known, ev.TS)
		} else {
			s.known = monoNow() // the read timed out: the ring was empty
		}
		if scan.due(time.Now()) {
			if err := scan.run(s.scanRequests); err != nil {
				return err
			}
		}
		if err != nil || time.Since(lastPoll) >= stallsPoll {
			lastPoll = time.Now()
			if err := s.poll(); err != nil {
				return err
			}
		}
	}
}

// parseStallsFilter parses an ss filter expression.
func parseStallsFilter(args []string) (filter.Expr, error) {
	if len(args) == 0 {
		return nil, nil
	}
	expr, err := filter.Parse(args, filter.System)
	if err != nil {
		return nil, fmt.Errorf("stalls: filter: %w", err)
	}
	return expr, nil
}

type stackKey struct {
	pid   uint32
	stack tracer.Stack
}

type stackResult struct {
	frames []reportFrame
	err    string
}

// stackCache symbolizes connect() stacks once per process and stack, on a
// background worker started as the attempt begins: the first stack of an
// object (libc's debug information) takes a while to read, and a live line
// should not wait for it when it can be done before the threshold passes.
type stackCache struct {
	stacks *userStacks
	mu     sync.Mutex
	m      map[stackKey]*stackFuture
	work   chan *stackFuture
}

type stackFuture struct {
	key     stackKey
	userRet uint64
	started bool // guarded by stackCache.mu
	done    chan struct{}
	res     stackResult
}

func newStackCache(stacks *userStacks) *stackCache {
	c := &stackCache{stacks: stacks, m: map[stackKey]*stackFuture{}, work: make(chan *stackFuture, 256)}
	go func() {
		for f := range c.work {
			if c.claim(f) {
				c.resolve(f)
			}
		}
	}()
	return c
}

// close stops the worker.
func (c *stackCache) close() { close(c.work) }

func (c *stackCache) future(pid uint32, st tracer.Stack, userRet uint64) *stackFuture {
	k := stackKey{pid, st}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.m[k]; ok {
		return f
	}
	if len(c.m) >= maxProcs {
		clear(c.m) // futures in flight live on with their holders
	}
	f := &stackFuture{key: k, userRet: userRet, done: make(chan struct{})}
	c.m[k] = f
	return f
}

func (c *stackCache) claim(f *stackFuture) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.started {
		return false
	}
	f.started = true
	return true
}

func (c *stackCache) resolve(f *stackFuture) {
	frames, errStr := c.stacks.stack(f.key.pid, f.key.stack, f.userRet)
	f.res = stackResult{frames: reportFrames(frames), err: errStr}
	close(f.done)
}

// prefetch starts symbolizing a stack in the background (unless the
// worker is busy: then it is done when asked for).
func (c *stackCache) prefetch(pid uint32, st tracer.Stack, userRet uint64) {
	f := c.future(pid, st, userRet)
	select {
	case c.work <- f:
	default:
	}
}

// get returns a stack's symbols, resolving them now if no one has started.
func (c *stackCache) get(pid uint32, st tracer.Stack, userRet uint64) stackResult {
	f := c.future(pid, st, userRet)
	if c.claim(f) {
		c.resolve(f)
	}
	<-f.done
	return f.res
}

type stallSession struct {
	tr      *tracer.Tracer
	o       *stallsOptions
	w       *bufio.Writer
	expr    filter.Expr
	stacks  *userStacks
	tracker *snapshot.StallTracker
	stats   *snapshot.StallStats
	// Event times are CLOCK_MONOTONIC; lines show wall time.
	startMono uint64
	startWall time.Time
	// shown: attempts (by Seq) whose stalled line was printed; their
	// outcome is printed and counted whatever the filter says by then.
	shown  map[uint64]bool
	frames *stackCache
	reqBuf []snapshot.Socket // scanRequests' dump, reused
	// known: CLOCK_MONOTONIC ns up to which events have been read (the
	// last event's time, or the time a read found the ring empty).
	known uint64
}

func (s *stallSession) apply(ev *tracer.Event) {
	if ev.Kind == tracer.KindState && ev.NewState == snapshot.StateSynSent {
		// Read the caller's mappings now, while it lives: its stack is
		// symbolized when the attempt is reported.
		pid := ev.CurPID
		if pid == 0 {
			pid = ev.PID
		}
		s.stacks.process(pid)
		if ev.Stack.Captured() {
			s.frames.prefetch(pid, ev.Stack, ev.UserRet)
		}
	}
	s.tracker.Apply(ev)
}

// requestScanEvery is how often, at most, the traced namespace's request
// sockets are dumped (see requestScan). No hook marks a SYN's arrival (the
// first event of a passive attempt is its first SYN-ACK retransmit, 1 s
// later, or its child), so a scan is what shows a passive attempt
// stalling for less than that.
const requestScanEvery = 250 * time.Millisecond

// scanRequests hands the tracker every request socket (a passive attempt
// awaiting its final ACK) of the traced namespace: sstrace's own without
// --netns.
func (s *stallSession) scanRequests() error {
	dump := func() (err error) {
		s.reqBuf = s.reqBuf[:0]
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			s.reqBuf, err = snapshot.DumpAppend(s.reqBuf, snapshot.DumpRequest{
				Family: fam, Protocol: unix.IPPROTO_TCP, States: 1 << snapshot.StateSynRecv})
			if err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if s.o.netns != "" {
		err = tracer.InNetNS(s.o.netns, dump)
	} else {
		err = dump()
	}
	if err != nil {
		return fmt.Errorf("stalls: scanning request sockets: %w", err)
	}
	now := monoNow()
	for i := range s.reqBuf {
		r := &s.reqBuf[i]
		if !snapshot.IsRequestSock(r) {
			continue // a Fast Open child: a full socket, its events tell
		}
		start := snapshot.RequestStart(now, time.Duration(r.Expires)*time.Millisecond, int(r.Retrans))
		s.tracker.Request(uint32(r.NetNS), uint16(r.Family), r.Local, r.Peer, start, now, int(r.Retrans))
	}
	return nil
}

func (s *stallSession) poll() error {
	// Poll infers from silence (no SYN-ACK retransmit, no error report
	// for so long): it may only count as silent the time up to which the
	// ring has been read. A reader behind a busy ring is not yet told of
	// what already happened.
	stalled, finished := s.tracker.Poll(s.known, s.o.threshold)
	for _, a := range stalled {
		if s.match(a) {
			s.shown[a.Seq] = true
			s.emit(a, true)
		}
	}
	for _, a := range finished {
		s.done(a)
	}
	return s.flush()
}

// done prints (as the options say) and counts a finished attempt.
func (s *stallSession) done(a *snapshot.Attempt) {
	wasShown := s.shown[a.Seq]
	delete(s.shown, a.Seq)
	if !wasShown && !s.match(a) {
		return
	}
	s.stats.Add(a)
	if s.o.stalled && !a.Stalled && a.Outcome == snapshot.OutcomeEstablished {
		return
	}
	s.emit(a, false)
}

func (s *stallSession) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("stalls: writing: %w", err)
	}
	return nil
}

// match applies the filter to the attempt's socket as ss would see it.
func (s *stallSession) match(a *snapshot.Attempt) bool {
	if s.expr == nil {
		return true
	}
	state := snapshot.StateSynSent
	if a.Passive {
		state = snapshot.StateSynRecv
	}
	sock := snapshot.Socket{Family: uint8(a.Family), Type: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP,
		State: state, Local: a.Local, Peer: a.Peer, Cookie: a.Cookie, NetNS: uint64(a.NetNS)}
	return filter.Eval(s.expr, &sock)
}

// wall is the wall-clock time of a CLOCK_MONOTONIC timestamp.
func (s *stallSession) wall(mono uint64) time.Time {
	return s.startWall.Add(time.Duration(int64(mono) - int64(s.startMono)))
}

// stallJSON is one attempt line of -j.
type stallJSON struct {
	Type          string        `json:"type"` // "stalled" (still pending) or "attempt" (with its outcome)
	Time          time.Time     `json:"time"`
	Direction     string        `json:"direction"` // "active" or "passive"
	Outcome       string        `json:"outcome"`
	Src           string        `json:"src"`
	Dst           string        `json:"dst"`
	PID           uint32        `json:"pid"`
	Comm          string        `json:"comm"`
	OwnerPID      uint32        `json:"owner_pid,omitempty"`
	NetNS         uint32        `json:"netns"`
	Cookie        uint64        `json:"cookie,omitempty"`
	PendingMs     float64       `json:"pending_ms"`
	Retransmits   int           `json:"retransmits"`
	RTTUs         int64         `json:"rtt_us,omitempty"`
	Errno         string        `json:"errno,omitempty"`
	Reset         bool          `json:"reset,omitempty"`
	Stalled       bool          `json:"stalled,omitempty"`
	BeforeTracing bool          `json:"started_before_tracing,omitempty"`
	Inferred      bool          `json:"inferred,omitempty"`
	Stack         []reportFrame `json:"stack,omitempty"`
	StackError    string        `json:"stack_error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *stallSession) toJSON(a *snapshot.Attempt, live bool, now uint64) stallJSON {
	j := stallJSON{Type: "attempt", Direction: "active", Outcome: a.Outcome, Src: addrString(a.Src()), Dst: addrString(a.Dst()),
		PID: a.PID, Comm: a.Comm, OwnerPID: a.OwnerPID, NetNS: a.NetNS, Cookie: a.Cookie,
		PendingMs: ms(a.Pending(now)), Retransmits: a.Retransmits, RTTUs: a.RTT.Microseconds(),
		Errno: a.ErrnoName(), Reset: a.Reset, Stalled: a.Stalled, BeforeTracing: a.BeforeTracing, Inferred: a.Inferred}
	if a.Passive {
		j.Direction = "passive"
	}
	j.Time = s.wall(now)
	if live {
		j.Type, j.Outcome = "stalled", snapshot.OutcomePending
	} else if a.End != 0 {
		j.Time = s.wall(a.End)
	}
	if !a.Passive {
		st := s.stack(a)
		j.Stack, j.StackError = st.frames, st.err
	}
	return j
}

// addrString is an address as ss prints it: port 0 (an active attempt's
// before the kernel picks one) as *.
func addrString(ap netip.AddrPort) string {
	switch {
	case !ap.IsValid():
		return "*"
	case ap.Port() == 0 && ap.Addr().Is6():
		return "[" + ap.Addr().String() + "]:*"
	case ap.Port() == 0:
		return ap.Addr().String() + ":*"
	}
	return ap.String()
}

// stack symbolizes (once per process and stack) the stack that called
// connect().
func (s *stallSession) stack(a *snapshot.Attempt) stackResult {
	if !a.Stack.Captured() {
		if a.BeforeTracing {
			return stackResult{err: "connect() called before tracing started"}
		}
		return stackResult{err: "no user stack captured"}
	}
	return s.frames.get(a.PID, a.Stack, a.UserRet)
}

// emit prints one attempt: live (stalled, still pending) or with its
// outcome.
func (s *stallSession) emit(a *snapshot.Attempt, live bool) {
	now := monoNow()
	if s.o.json {
		b, err := json.Marshal(s.toJSON(a, live, now))
		if err == nil {
			s.w.Write(b)
			s.w.WriteByte('\n')
		}
		return
	}
	t := s.wall(now)
	what := a.Outcome
	if live {
		what = "stalled"
	} else if a.End != 0 {
		t = s.wall(a.End)
	}
	dir := "out"
	if a.Passive {
		dir = "in"
	}
	fmt.Fprintf(s.w, "%s  %-11s %-3s %s -> %s  pid %d (%s)  %s\n", t.Format("15:04:05.000"), what, dir,
		addrString(a.Src()), addrString(a.Dst()), a.PID, commOr(a.Comm), s.details(a, live, now))
	// The stack goes with the first line that says something is wrong.
	if !a.Passive && (live || (!a.Stalled && a.Outcome != snapshot.OutcomeEstablished)) {
		st := s.stack(a)
		switch {
		case len(st.frames) > 0:
			fmt.Fprintln(s.w, "  connect() at:")
			printFrames(s.w, "    ", st.frames)
		case st.err != "":
			fmt.Fprintf(s.w, "  connect() at: unknown (%s)\n", st.err)
		}
	}
}

func commOr(c string) string {
	if c == "" {
		return "?"
	}
	return c
}

// details: time pending, retransmissions, RTT, error.
func (s *stallSession) details(a *snapshot.Attempt, live bool, now uint64) string {
	var parts []string
	d := fmtDuration(a.Pending(now))
	switch {
	case live || a.Outcome == snapshot.OutcomePending:
		parts = append(parts, "pending "+d)
	case a.Outcome == snapshot.OutcomeEstablished:
		parts = append(parts, "in "+d)
	default:
		parts = append(parts, "after "+d)
	}
	what := "SYN"
	if a.Passive {
		what = "SYN-ACK"
	}
	if a.Retransmits > 0 || (!a.Passive && a.Outcome != snapshot.OutcomeEstablished) {
		parts = append(parts, plural(a.Retransmits, what+" retransmit"))
	}
	if a.RTT > 0 && !live {
		parts = append(parts, "rtt "+fmtDuration(a.RTT))
	}
	if e := a.ErrnoName(); e != "" && !live {
		parts = append(parts, e)
	} else if a.Reset && !live {
		parts = append(parts, "reset")
	}
	if a.Inferred {
		parts = append(parts, "inferred: no SYN-ACK retransmit since")
	}
	if a.BeforeTracing {
		parts = append(parts, "started before tracing")
	}
	if a.OwnerPID != 0 {
		parts = append(parts, fmt.Sprintf("socket of pid %d", a.OwnerPID))
	}
	return strings.Join(parts, ", ")
}

// fmtDuration rounds to what is worth reading: µs below 1 ms, 10 µs below
// 1 s, ms above.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// finish reads what is left in the ring, reports every attempt (those
// still pending as such) and the summary.
func (s *stallSession) finish() error {
	var ev tracer.Event
	for {
		err := s.tr.ReadTimeout(&ev, time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return fmt.Errorf("stalls: %w", err)
		}
		s.apply(&ev)
	}
	s.known = monoNow()
	if err := s.poll(); err != nil {
		return err
	}
	now := monoNow()
	finished, pending := s.tracker.Finish(now)
	for _, a := range finished {
		s.done(a)
	}
	for _, a := range pending {
		s.done(a)
	}
	s.summary(now)
	return s.flush()
}

// latencyJSON is a latency summary in milliseconds.
type latencyJSON struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func toLatencyJSON(l snapshot.LatencySummary) latencyJSON {
	return latencyJSON{Count: l.Count, P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
}

type groupJSON struct {
	Direction   string         `json:"direction,omitempty"`
	Dst         string         `json:"dst,omitempty"`
	PID         *uint32        `json:"pid,omitempty"`
	Comm        string         `json:"comm,omitempty"`
	Attempts    int            `json:"attempts"`
	Outcomes    map[string]int `json:"outcomes"`
	Retransmits int            `json:"retransmits"`
	Latency     latencyJSON    `json:"latency"`
}

type summaryJSON struct {
	Type          string         `json:"type"` // "summary"
	Time          time.Time      `json:"time"`
	TracedMs      int64          `json:"traced_ms"`
	ThresholdMs   float64        `json:"threshold_ms"`
	Attempts      int            `json:"attempts"`
	Outcomes      map[string]int `json:"outcomes"`
	Retransmits   int            `json:"retransmits"`
	Latency       latencyJSON    `json:"latency"`
	ByDestination []groupJSON    `json:"by_destination"`
	ByProcess     []groupJSON    `json:"by_process"`
	LostEvents    uint64         `json:"lost_events"`
	Untracked     int            `json:"untracked,omitempty"`
	Incomplete    bool           `json:"incomplete,omitempty"`
	NotTraced     string         `json:"not_traced,omitempty"`
}

// buildSummary makes the summary at now; drops and notTraced are the
// tracer's lost events and missing hooks.
func (s *stallSession) buildSummary(now, drops uint64, notTraced string) summaryJSON {
	all := &s.stats.All
	r := summaryJSON{Type: "summary", Time: s.wall(now), TracedMs: time.Duration(now - s.startMono).Milliseconds(),
		ThresholdMs: ms(s.o.threshold), Attempts: all.Attempts, Outcomes: all.Outcomes, Retransmits: all.Retransmits,
		Latency: toLatencyJSON(all.Latency.Summary()), ByDestination: []groupJSON{}, ByProcess: []groupJSON{},
		LostEvents: drops, Untracked: s.tracker.Untracked, Incomplete: drops > 0 || s.tracker.Untracked > 0,
		NotTraced: notTraced}
	for _, g := range s.stats.ByDestination() {
		dir := "active"
		if g.Passive {
			dir = "passive"
		}
		r.ByDestination = append(r.ByDestination, groupJSON{Direction: dir, Dst: addrString(g.Dst), Attempts: g.Attempts,
			Outcomes: g.Outcomes, Retransmits: g.Retransmits, Latency: toLatencyJSON(g.Latency.Summary())})
	}
	for _, g := range s.stats.ByProcess() {
		pid := g.PID
		r.ByProcess = append(r.ByProcess, groupJSON{PID: &pid, Comm: commOr(g.Comm), Attempts: g.Attempts,
			Outcomes: g.Outcomes, Retransmits: g.Retransmits, Latency: toLatencyJSON(g.Latency.Summary())})
	}
	return r
}

func (s *stallSession) summary(now uint64) {
	var drops uint64
	var notTraced string
	if s.tr != nil {
		drops, _ = s.tr.Drops()
		notTraced = s.tr.MissingSummary()
	}
	r := s.buildSummary(now, drops, notTraced)
	if s.o.json {
		b, err := json.Marshal(r)
		if err == nil {
			s.w.Write(b)
			s.w.WriteByte('\n')
		}
		return
	}
	printStallSummary(s.w, &r)
}

func printStallSummary(w io.Writer, r *summaryJSON) {
	fmt.Fprintf(w, "\nsummary: %s in %s", plural(r.Attempts, "attempt"), fmtDuration(time.Duration(r.TracedMs)*time.Millisecond))
	if o := outcomeList(r.Outcomes); o != "" {
		fmt.Fprintf(w, ": %s", o)
	}
	fmt.Fprintf(w, "; %s\n", plural(r.Retransmits, "retransmit"))
	if r.LostEvents > 0 {
		fmt.Fprintf(w, "INCOMPLETE: %d events were lost (ring buffer full): some attempts are missing or wrong\n", r.LostEvents)
	}
	if r.Untracked > 0 {
		fmt.Fprintf(w, "INCOMPLETE: %d attempts not followed (more than %d pending at once)\n", r.Untracked, snapshot.MaxTracked)
	}
	if r.NotTraced != "" {
		fmt.Fprintf(w, "%s\n", r.NotTraced)
	}
	if r.Attempts == 0 {
		return
	}
	fmt.Fprintf(w, "latency of established attempts: %s\n", latencyLine(r.Latency))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nby destination:")
	fmt.Fprintln(tw, "  DIR\tDESTINATION\tATTEMPTS\tP50\tP90\tP99\tMAX\tRETRANS\tOUTCOMES")
	for _, g := range r.ByDestination {
		dir := "out"
		if g.Direction == "passive" {
			dir = "in"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\t%s\n", dir, g.Dst, g.Attempts, latencyCols(g.Latency), g.Retransmits, outcomeList(g.Outcomes))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nby process:")
	fmt.Fprintln(tw, "  PID\tCOMM\tATTEMPTS\tP50\tP90\tP99\tMAX\tRETRANS\tOUTCOMES")
	for _, g := range r.ByProcess {
		pid := "?"
		if *g.PID != 0 {
			pid = fmt.Sprint(*g.PID)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\t%s\n", pid, g.Comm, g.Attempts, latencyCols(g.Latency), g.Retransmits, outcomeList(g.Outcomes))
	}
	tw.Flush()
}

func msDuration(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func latencyLine(l latencyJSON) string {
	if l.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s (%s)", fmtDuration(msDuration(l.P50)),
		fmtDuration(msDuration(l.P90)), fmtDuration(msDuration(l.P99)), fmtDuration(msDuration(l.Max)), plural(l.Count, "attempt"))
}

func latencyCols(l latencyJSON) string {
	if l.Count == 0 {
		return "-\t-\t-\t-"
	}
	return strings.Join([]string{fmtDuration(msDuration(l.P50)), fmtDuration(msDuration(l.P90)),
		fmtDuration(msDuration(l.P99)), fmtDuration(msDuration(l.Max))}, "\t")
}

// plural: "1 attempt", "2 attempts".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// outcomeList: "established 3, refused 1", in snapshot.Outcomes order.
func outcomeList(m map[string]int) string {
	var parts []string
	for _, o := range snapshot.Outcomes {
		if n := m[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
	}
	return strings.Join(parts, ", ")
}
