package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"sstrace/cmd/sstrace/render"
	"sstrace/snapshot"
	"sstrace/snapshot/filter"
	"sstrace/tracer"
)

type watchOptions struct {
	tcp, udp, raw, unixSock                       bool
	all, listening, numeric, ipv4, ipv6, noHeader bool
	interval, resync                              time.Duration
	netns                                         string
	tf                                            tracerFlags
}

func newWatchCmd(stdout, stderr io.Writer) *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch [OPTIONS] [FILTER]",
		Short: "the ss table kept live by socket events instead of re-dumping",
		Long: `watch shows ss's table, loaded once from sock_diag and then kept current. TCP
sockets are kept by applying the tracer's socket events to the dump (it is
re-dumped only after lost events, or with --resync to check it); the other
tables are re-dumped every --interval (see Limits). The first frame does
not wait for the tracer: it is a plain dump, printed before the tracer
loads; the event-fed table is loaded from a dump of its own once the
tracer is attached, and feeds the frames after it (stderr's "sstrace:
watching ..." line says when).

On a terminal the table is redrawn in place: new rows are marked +, changed
rows ~, closed rows - (shown once), under a status line (events/s, lost
events, resyncs, age of the TCP table's last dump). Otherwise one block is
printed per --interval: a line "--- HH:MM:SS.mmm  N sockets  events E  lost
L  resyncs R ---", then the table as ss prints it. Lost events make the TCP
table stale: it is rebuilt from a fresh dump (a resync) before it is shown
again; while a rebuild fails, "stale: ERROR" is on the status line (a line
of its own before the block when not on a terminal).

Options: ss's -t -u -w -x -a -l -n -4 -6 -H and a FILTER as in the listing.
The tables shown are ss's for the same options: with no -t -u -w -x, every
table ss shows with none (tcp, udp, raw, unix and mptcp, and with -a or -l
netlink and packet too; -4 or -6 alone: every inet table).

Limits: the tracer has no event that tells a UDP socket's bind or connect
(nor a raw socket's), or any change of a unix socket. So UDP, raw and unix
tables (and netlink, packet and MPTCP) are re-dumped through sock_diag every
--interval, which is cheap; only TCP is event-fed, and --resync checks only
TCP. With no TCP table (-u, -w, -x alone) no BPF is loaded, and the status
counts no events. Rows are sorted by table in ss's order (netlink, packet,
unix, raw, udp, tcp, mptcp), then by (family, local, peer), not in the
kernel's hash order. Events carry no queue sizes: TCP Recv-Q/Send-Q are what
the last dump said (0 for sockets first seen through events; a listener's
Send-Q is its backlog as dumped, 0 for one born after). Request sockets
(SYN-RECV before the handshake completes) have no events either: they are
re-dumped every --interval too (asking inet_diag for them alone), less often
where that would cost over 2% of a CPU (~1 s apart at 100k sockets). With --netns, the
dumps run inside that namespace (entered on a locked OS thread); without it
the namespace is sstrace's own, and events are limited to it too.`,
		Example: `  sstrace watch -tan
  sstrace watch -tn --interval 500ms dport = :443
  sstrace watch -tuan --netns /run/netns/blue --resync 10s
  sstrace watch -x`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), stdout, stderr, &o, watchOrder(cmd.Flags(), os.Args[1:]), args)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("watch: %v (watch takes only -t -u -w -x -a -l -n -4 -6 -H, --interval, --resync, --netns and a FILTER)", err)
	})
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.BoolVarP(&o.tcp, "tcp", "t", false, "TCP sockets (kept by events)")
	fl.BoolVarP(&o.udp, "udp", "u", false, "UDP sockets (re-dumped every --interval)")
	fl.BoolVarP(&o.raw, "raw", "w", false, "RAW sockets (re-dumped every --interval)")
	fl.BoolVarP(&o.unixSock, "unix", "x", false, "Unix domain sockets (re-dumped every --interval)")
	fl.BoolVarP(&o.all, "all", "a", false, "display all sockets (listening and not)")
	fl.BoolVarP(&o.listening, "listening", "l", false, "display listening sockets")
	fl.BoolVarP(&o.numeric, "numeric", "n", false, "don't resolve service names")
	fl.BoolVarP(&o.ipv4, "ipv4", "4", false, "display only IP version 4 sockets")
	fl.BoolVarP(&o.ipv6, "ipv6", "6", false, "display only IP version 6 sockets")
	fl.BoolVarP(&o.noHeader, "no-header", "H", false, "suppress the header line")
	fl.DurationVar(&o.interval, "interval", time.Second, "how often to print (or redraw) the table, and to re-dump the tables no event keeps")
	fl.DurationVar(&o.resync, "resync", 0, "re-dump TCP this often and report differences from the event-fed table (0: never)")
	fl.StringVar(&o.netns, "netns", "", "watch this network namespace (a path like /run/netns/NAME or /proc/PID/ns/net)")
	o.tf.add(fl)
	return cmd
}

// watchSelection are watch's selection flags: long name, ss's letter.
var watchSelection = []struct{ long, short string }{
	{"tcp", "t"}, {"udp", "u"}, {"raw", "w"}, {"unix", "x"},
	{"ipv4", "4"}, {"ipv6", "6"}, {"all", "a"}, {"listening", "l"},
}

// watchOrder is ss's selection for watch's options, in command-line order
// where it matters (-a/-l, -4/-6/-x): taken from the process's arguments
// when they are this command line's, else (in-process callers) from the
// flags set, whose order is lost.
func watchOrder(fl *pflag.FlagSet, args []string) []filter.Opt {
	set := map[string]bool{}
	for _, f := range watchSelection {
		if fl.Changed(f.long) {
			set[f.short] = true
		}
	}
	var order []filter.Opt
	seen := map[string]bool{}
	for _, op := range selectionOrder(args) {
		if set[op.Name] {
			order = append(order, op)
			seen[op.Name] = true
		}
	}
	if len(seen) == len(set) {
		return order
	}
	order = order[:0]
	for _, f := range watchSelection {
		if set[f.short] {
			order = append(order, filter.Opt{Name: f.short})
		}
	}
	return order
}

type watchSession struct {
	o    *watchOptions
	sel  filter.Selection
	cond filter.Expr
	// tcp is the event-fed table's dump (no Inet: TCP is not shown), rest
	// every other table, re-dumped for each frame as the listing dumps.
	tcp, rest snapshot.ListRequest
	// dccp: DCCP is selected and the kernel has not refused its dump.
	dccp        bool
	ropt        render.Options
	out, stderr io.Writer
	tty         bool
	width       int

	// tr and live are nil when no TCP table is shown, and until the
	// tracer has started (starting delivers them): TCP rows then come
	// from a plain dump, as the listing's.
	tr       *tracer.Tracer
	live     *snapshot.Live
	starting chan liveStart
	// firstFrame is closed once the first frame is out: the tracer and
	// the overlay's dump wait for it rather than compete with it.
	firstFrame chan struct{}
	phases     startupPhases

	prev        map[watchKey]string // the last frame's rows (terminal mode)
	lastApplied uint64
	lastTime    time.Time
	dumpedAt    time.Time
	lastResyncs int
	resyncMsg   string
	// reqScan paces requests(); reqs is its last dump.
	reqScan requestScan
	reqs    []snapshot.Socket
	// A frame's buffers, reused: the TCP rows' order, their sort keys,
	// the row each entry is made into to filter or print it, and the
	// renderer's.
	order    []*snapshot.Entry
	sortKeys []entrySortKey
	scratch  snapshot.Socket
	tables   render.Tables
}

func runWatch(ctx context.Context, stdout, stderr io.Writer, o *watchOptions, order []filter.Opt, args []string) error {
	if o.interval <= 0 {
		return errors.New("watch: --interval must be positive")
	}
	if o.resync < 0 {
		return errors.New("watch: --resync must not be negative")
	}
	sel, expr, ok, err := selectTables(order, args, stderr)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	if !ok {
		return nil
	}
	s := &watchSession{o: o, sel: sel, out: stdout, stderr: stderr, dccp: sel.Has(filter.DCCP)}
	// Devices and the ephemeral port range a filter names are the watched
	// namespace's.
	err = s.inNS(func() (err error) {
		s.cond, err = sel.ParseFilter(expr, nil, filter.System)
		return err
	})
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	s.tcp, s.rest = splitTCP(sel.ListRequest())
	s.width = screenWidth(stdout)
	s.tty = s.width > 0
	s.ropt = render.Options{
		ShowNetid:     sel.ShowNetid(),
		ShowState:     sel.ShowState(),
		Header:        !o.noHeader,
		Numeric:       o.numeric,
		MPTCPServices: mptcpServices(sel),
	}
	if !o.numeric {
		if svc, err := render.LoadServices("/etc/services"); err == nil {
			s.ropt.Services = svc
		}
		if p, err := render.LoadProtocols("/etc/protocols"); err == nil {
			s.ropt.Protocols = p
		}
	}
	if o.netns != "" {
		s.ropt.IfName = s.ifName
	}
	hasTCP := len(s.tcp.Inet) > 0
	if !hasTCP && o.resync > 0 {
		return errors.New("watch: --resync checks the event-fed TCP table, and no TCP table is shown (the others are re-dumped every --interval)")
	}
	s.phases.on = os.Getenv("SSTRACE_DEBUG_STARTUP") == "1"
	if hasTCP {
		netns, err := tracer.LookupNetNS(o.netns)
		if err != nil {
			return fmt.Errorf("watch: --netns: %w", err)
		}
		if err := tracer.CheckPrivileges(); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		// The first frame does not wait for the tracer: it is the
		// kernel's table as the listing shows it, from a plain dump. The
		// tracer loads once it is out, and the overlay is built from a
		// dump of its own, taken once the tracer is attached (see
		// snapshot.StartLive).
		s.starting, s.firstFrame = make(chan liveStart, 1), make(chan struct{})
		startCtx, cancel := context.WithCancel(ctx)
		go s.startLive(startCtx, o.tf.apply(tracer.Options{NetNS: netns}))
		defer s.stopLive(cancel)
	}
	// A first re-dump fails early (on a --netns that cannot be entered,
	// say), and learns whether the kernel still has DCCP.
	if _, err := s.redump(); err != nil {
		return err
	}
	s.dumpedAt, s.lastTime = time.Now(), time.Now()
	if !hasTCP {
		s.sayWatching()
	}

	var waitErr chan error
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var resync <-chan time.Time
	if o.resync > 0 {
		rt := time.NewTicker(o.resync)
		defer rt.Stop()
		resync = rt.C
	}
	if err := s.frame(); err != nil {
		return err
	}
	s.phases.mark("first frame written")
	if os.Getenv("GOGC") == "" {
		// The heap then holds the table for as long as watch runs: let it
		// grow to 1.5 times what is live, not twice (after the first
		// frame, whose 100k allocations more collections would slow).
		// At 100k sockets, max RSS: idle 68-73 -> 55-60 MB; under 300k
		// socket()+close() 83-88 -> 71-75 MB, watch's CPU time for it the
		// same within noise (1.2-1.4 s either way). GOGC set by the user
		// is left alone.
		debug.SetGCPercent(50)
	}
	if s.firstFrame != nil {
		close(s.firstFrame)
	}
	for {
		select {
		case <-ctx.Done():
			if path := os.Getenv("SSTRACE_HEAPPROFILE"); path != "" {
				writeHeapProfile(stderr, path)
				runtime.KeepAlive(s.live) // the overlay is what to see
			}
			return nil
		case st := <-s.starting:
			if waitErr, err = s.started(st); err != nil {
				return err
			}
		case err := <-waitErr:
			if err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			return nil
		case <-tick.C:
			if s.starting != nil {
				// Still loading: the next frame is the overlay's, late,
				// rather than one more full dump competing with its own.
				select {
				case st := <-s.starting:
					if waitErr, err = s.started(st); err != nil {
						return err
					}
				case <-ctx.Done():
					return nil
				}
			}
			if err := s.frame(); err != nil {
				return err
			}
		case <-resync:
			if s.live == nil {
				continue // not started yet: nothing event-fed to check
			}
			if err := s.check(); err != nil {
				return err
			}
		}
	}
}

// liveStart is what starting the tracer and its overlay gave.
type liveStart struct {
	tr   *tracer.Tracer
	live *snapshot.Live
	at   time.Time // when the overlay was loaded
	err  error
}

// startLive opens the tracer once the first frame is out, then loads the
// overlay from a dump taken once it is attached, and delivers both (or
// why not) on s.starting. Loading the tracer beside the first frame's dump
// and sort made its first row later, not sooner, on 2 shared vCPUs (100k
// sockets, medians of 6: 527 ms beside it, 372 ms from the dump's end,
// 330 ms after the frame); the frames after the first are a second away.
func (s *watchSession) startLive(ctx context.Context, opts tracer.Options) {
	select {
	case <-s.firstFrame:
	case <-ctx.Done():
		s.starting <- liveStart{err: ctx.Err()}
		return
	}
	tr, err := tracer.Open(ctx, opts)
	if err != nil {
		s.starting <- liveStart{err: err}
		return
	}
	s.phases.mark("tracer attached")
	live, err := snapshot.StartLiveEntries(tr, s.dumpTCP, nil)
	if err != nil {
		tr.Close()
		s.starting <- liveStart{err: err}
		return
	}
	s.phases.mark("overlay loaded")
	s.starting <- liveStart{tr: tr, live: live, at: time.Now()}
}

// started takes what startLive delivered: from then on TCP rows are the
// overlay's. The channel returned says when its reader stops.
func (s *watchSession) started(st liveStart) (chan error, error) {
	s.starting = nil
	if st.err != nil {
		return nil, fmt.Errorf("watch: %w", st.err)
	}
	s.tr, s.live = st.tr, st.live
	s.dumpedAt = st.at
	if m := s.tr.MissingSummary(); m != "" {
		fmt.Fprintf(s.stderr, "sstrace: warning: %s\n", m)
	}
	s.sayWatching()
	waitErr := make(chan error, 1)
	go func() { waitErr <- s.live.Wait() }()
	return waitErr, nil
}

// sayWatching tells what is watched, once it is: with a TCP table, once
// events feed it (the frames before came from plain dumps).
func (s *watchSession) sayWatching() {
	fmt.Fprintf(s.stderr, "sstrace: watching %s every %s; Ctrl-C to stop\n", s.describe(), s.o.interval)
}

// stopLive closes the tracer, first cancelling its start if it has not
// started yet and waiting for that to end (Open gives up early once its
// context is done).
func (s *watchSession) stopLive(cancel context.CancelFunc) {
	cancel()
	if s.starting != nil {
		if st := <-s.starting; st.tr != nil {
			st.tr.Close()
		}
		return
	}
	if s.tr != nil {
		s.tr.Close()
	}
}

// writeHeapProfile writes, with SSTRACE_HEAPPROFILE=FILE, the heap when
// watch is stopped (Ctrl-C), after a collection: go tool pprof
// -sample_index=inuse_space shows what the table holds, alloc_space what
// the frames cost.
func writeHeapProfile(stderr io.Writer, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err == nil {
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sstrace: writing heap profile: %v\n", err)
	}
}

// startupPhases prints, with SSTRACE_DEBUG_STARTUP=1, when each phase of
// watch's start ended (ms since the process started), to stderr.
type startupPhases struct{ on bool }

var processStart = time.Now()

func (p *startupPhases) mark(what string) {
	if p.on {
		fmt.Fprintf(os.Stderr, "sstrace: start-up: %s at %.1f ms\n", what, float64(time.Since(processStart).Microseconds())/1000)
	}
}

// splitTCP splits a listing's request into the TCP dump that events keep
// and the rest, re-dumped for every frame.
func splitTCP(full snapshot.ListRequest) (tcp, rest snapshot.ListRequest) {
	tcp = snapshot.ListRequest{States: full.States}
	rest = full
	rest.Inet = nil
	for _, d := range full.Inet {
		if d.Protocol == unix.IPPROTO_TCP {
			tcp.Inet = append(tcp.Inet, d)
		} else {
			rest.Inet = append(rest.Inet, d)
		}
	}
	return tcp, rest
}

// hasRest says whether any table is re-dumped.
func (s *watchSession) hasRest() bool {
	r := &s.rest
	return r.Netlink || r.Packet || r.Unix || r.RawInet || len(r.Inet) > 0 || s.dccp
}

// describe names the tables watched and how each is kept.
func (s *watchSession) describe() string {
	var parts, redumped []string
	if len(s.tcp.Inet) > 0 {
		parts = append(parts, "TCP sockets by events")
	}
	r := &s.rest
	for _, t := range []struct {
		on   bool
		name string
	}{{r.Netlink, "netlink"}, {r.Packet, "packet"}, {r.Unix, "unix"}, {r.RawInet, "raw"}} {
		if t.on {
			redumped = append(redumped, t.name)
		}
	}
	for _, d := range r.Inet {
		name := "udp"
		if d.Protocol == unix.IPPROTO_MPTCP {
			name = "mptcp"
		}
		if !slices.Contains(redumped, name) {
			redumped = append(redumped, name)
		}
	}
	if s.dccp {
		redumped = append(redumped, "dccp")
	}
	if len(redumped) > 0 {
		parts = append(parts, strings.Join(redumped, ", ")+" sockets by re-dumps")
	}
	if len(parts) == 0 {
		return "no socket table"
	}
	return strings.Join(parts, " and ")
}

// inNS runs fn in the watched namespace.
func (s *watchSession) inNS(fn func() error) error {
	if s.o.netns == "" {
		return fn()
	}
	return tracer.InNetNS(s.o.netns, fn)
}

// dumpTCP takes the TCP sock_diag dump of the watched namespace, as
// entries: a row of 100k is never held whole.
func (s *watchSession) dumpTCP() ([]*snapshot.Entry, error) {
	var entries []*snapshot.Entry
	err := s.inNS(func() (err error) {
		entries, err = snapshot.DumpEntries(s.tcp)
		return err
	})
	return entries, err
}

// redump lists the tables no event keeps, as the listing does (sock_diag,
// DCCP where the kernel still has it, then the filter).
func (s *watchSession) redump() ([]snapshot.Socket, error) {
	if !s.hasRest() {
		return nil, nil
	}
	var socks []snapshot.Socket
	err := s.inNS(func() (err error) {
		if socks, err = snapshot.List(s.rest); err != nil {
			return err
		}
		if s.dccp {
			// A kernel without DCCP is said once, then no longer asked.
			var refused bytes.Buffer
			socks = appendDCCP(&refused, socks, s.sel)
			if refused.Len() > 0 {
				s.dccp = false
				s.stderr.Write(refused.Bytes())
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watch: re-dumping: %w", err)
	}
	if s.cond != nil {
		kept := socks[:0]
		for i := range socks {
			if filter.Eval(s.cond, &socks[i]) {
				kept = append(kept, socks[i])
			}
		}
		socks = kept
	}
	return socks, nil
}

// requests dumps the TCP request sockets shown (SYN-RECV, awaiting the
// handshake's last ACK): no event names them, so they are re-dumped,
// asking the kernel for that state alone, for every frame or as often as
// requestScan allows on a big table (the last dump's rows stand between).
func (s *watchSession) requests() ([]snapshot.Socket, error) {
	if len(s.tcp.Inet) == 0 || !s.sel.HasState(snapshot.StateSynRecv) {
		return nil, nil
	}
	if !s.reqScan.due(time.Now()) {
		return s.reqs, nil
	}
	req := snapshot.ListRequest{States: 1 << snapshot.StateSynRecv, Inet: s.tcp.Inet}
	var socks []snapshot.Socket
	err := s.reqScan.run(func() error {
		return s.inNS(func() (err error) {
			socks, err = snapshot.List(req)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("watch: dumping request sockets: %w", err)
	}
	kept := socks[:0]
	for i := range socks {
		// Full sockets in SYN-RECV (Fast Open children) are the overlay's.
		if snapshot.IsRequestSock(&socks[i]) && s.shows(&socks[i]) {
			kept = append(kept, socks[i])
		}
	}
	s.reqs = kept
	return kept, nil
}

// ifName names a device of the watched namespace (render's default looks
// in sstrace's own).
func (s *watchSession) ifName(index uint32) string {
	name := "if" + strconv.FormatUint(uint64(index), 10)
	s.inNS(func() error {
		if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
			name = ifi.Name
		}
		return nil
	})
	return name
}

// shows says whether ss would list the overlay's socket with watch's
// selection.
func (s *watchSession) shows(so *snapshot.Socket) bool {
	if !s.showsTCP(so.Protocol, so.Type, so.State, so.Family) {
		return false
	}
	return s.cond == nil || filter.Eval(s.cond, so)
}

// showsEntry is shows for an entry, which is made a row only if the
// filter must see it.
func (s *watchSession) showsEntry(e *snapshot.Entry) bool {
	if !s.showsTCP(e.Protocol, e.Type, e.State, e.Family) {
		return false
	}
	if s.cond == nil {
		return true
	}
	e.Fill(&s.scratch)
	return filter.Eval(s.cond, &s.scratch)
}

// showsTCP is what shows asks before the filter.
func (s *watchSession) showsTCP(protocol uint16, typ, state, family uint8) bool {
	if protocol != unix.IPPROTO_TCP || typ == unix.SOCK_RAW {
		return false
	}
	// The kernel's TCP dump never has a CLOSE socket, and ss 6.1 never
	// asks for bound-inactive ones.
	if state == snapshot.StateClose || state == snapshot.StateBoundInactive || !s.sel.HasState(state) {
		return false
	}
	// The families ss dumps (-6 after -4 dumps only IPv6, say).
	return slices.ContainsFunc(s.tcp.Inet, func(d snapshot.InetDump) bool { return d.Family == family })
}

// watchRows is one frame's sockets, sorted: the TCP table's as entries
// (the overlay's, or a plain dump's, and the request sockets),
// the re-dumped tables' as rows. In ss's order of tables the TCP rows
// come after the rows of tables ranked below TCP (see tableRank), before
// the others.
type watchRows struct {
	tcp  []*snapshot.Entry
	rest []*snapshot.Socket
}

func (r *watchRows) len() int { return len(r.tcp) + len(r.rest) }

// each yields the frame's rows in order: re-dumped rows as they are, each
// TCP entry as row, refilled.
func (r *watchRows) each(row *snapshot.Socket, fn func(so *snapshot.Socket, e *snapshot.Entry) bool) {
	i := 0
	for ; i < len(r.rest) && tableRank(r.rest[i]) < tcpRank; i++ {
		if !fn(r.rest[i], nil) {
			return
		}
	}
	for _, e := range r.tcp {
		e.Fill(row)
		if !fn(row, e) {
			return
		}
	}
	for ; i < len(r.rest); i++ {
		if !fn(r.rest[i], nil) {
			return
		}
	}
}

// watchKey identifies a row across frames: the cookie of a full socket,
// the 4-tuple of a minisocket (which has no cookie until dumped), the
// whole row's identity for a raw socket read from /proc (no cookie).
type watchKey struct {
	cookie      uint64
	local, peer string
	minisock    bool
	family, typ uint8
	prot        uint16
	inode       uint32
	path        string
}

// entryKey is a TCP entry's key, the same whether a plain dump or the
// overlay made it (a dumped minisocket is keyed by 4-tuple in both).
func entryKey(e *snapshot.Entry) watchKey {
	if e.Minisock() || e.Cookie == 0 {
		return watchKey{local: e.Local().String(), peer: e.Peer().String(), minisock: true, family: e.Family, prot: e.Protocol}
	}
	return watchKey{cookie: e.Cookie}
}

func socketKey(so *snapshot.Socket) watchKey {
	if so.Cookie != 0 {
		return watchKey{cookie: so.Cookie}
	}
	return watchKey{local: so.Local.String(), peer: so.Peer.String(), family: so.Family, typ: so.Type, prot: so.Protocol, inode: so.Inode, path: so.Path}
}

// tableRank is a row's table in the order ss lists them (netlink, packet,
// unix, raw, udp, tcp, dccp, mptcp).
func tableRank(so *snapshot.Socket) int {
	switch {
	case so.Family == filter.AFNetlink:
		return 0
	case so.Family == filter.AFPacket:
		return 1
	case so.Family == filter.AFUnix:
		return 2
	case so.Type == unix.SOCK_RAW:
		return 3
	case so.Protocol == unix.IPPROTO_UDP:
		return 4
	case so.Protocol == unix.IPPROTO_TCP:
		return tcpRank
	case so.Protocol == unix.IPPROTO_DCCP:
		return 6
	}
	return 7
}

const tcpRank = 5

// compareRows is watch's row order: by table, then (family, local, peer),
// and for sockets with no address (unix, netlink, packet) by path and
// inode; the cookie last keeps the order stable. The kernel's dump order
// (hash buckets) cannot be reproduced from events.
func compareRows(a, b *snapshot.Socket) int {
	if c := cmp.Compare(tableRank(a), tableRank(b)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Family, b.Family); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	if c := a.Local.Compare(b.Local); c != 0 {
		return c
	}
	if c := a.Peer.Compare(b.Peer); c != 0 {
		return c
	}
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Inode, b.Inode); c != 0 {
		return c
	}
	return cmp.Compare(a.Cookie, b.Cookie)
}

// compareEntries is compareRows for TCP entries (same table, no path),
// without making them rows.
func compareEntries(a, b *snapshot.Entry) int {
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Family, b.Family); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	if c := a.CompareAddrs(b); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Inode, b.Inode); c != 0 {
		return c
	}
	return cmp.Compare(a.Cookie, b.Cookie)
}

// sortRows orders a frame's rows (see compareRows): both lists in place.
// Rows that compare equal are the same socket (the cookie is the last
// key; minisockets without one are alike in every field shown), so no
// stable sort is needed: pdqsort takes a third of a stable merge's time on
// 100k rows.
func (s *watchSession) sortRows(r *watchRows) {
	slices.SortFunc(r.rest, compareRows)
	s.sortKeys = sortEntries(r.tcp, s.sortKeys)
}

// entrySortKey is an entry's place in the order, as far as its OrderKey
// tells (24 bytes): 100k of them sort in contiguous memory, where pointers
// to the entries made every comparison two cache misses (0.1-0.2 s a
// frame). The key's lowest bit is set when it is exact for the order of
// compareEntries: an exact OrderKey of a TCP stream entry (the Type and
// Protocol it leaves out).
type entrySortKey struct {
	key [2]uint64
	e   *snapshot.Entry
}

// sortEntries orders TCP entries by compareEntries, with keys' array if
// it is long enough; it returns the array to reuse.
func sortEntries(entries []*snapshot.Entry, keys []entrySortKey) []entrySortKey {
	if cap(keys) < len(entries) {
		keys = make([]entrySortKey, len(entries), len(entries)+len(entries)/8)
	}
	keys = keys[:len(entries)]
	for i, e := range entries {
		k, exact := e.OrderKey()
		if exact && e.Type == unix.SOCK_STREAM && e.Protocol == unix.IPPROTO_TCP {
			k[1] |= 1
		}
		keys[i] = entrySortKey{k, e}
	}
	slices.SortFunc(keys, func(a, b entrySortKey) int {
		if a.key[1]&b.key[1]&1 != 0 {
			switch {
			case a.key[0] != b.key[0]:
				return cmp.Compare(a.key[0], b.key[0])
			case a.key[1] != b.key[1]:
				return cmp.Compare(a.key[1], b.key[1])
			}
		}
		return compareEntries(a.e, b.e)
	})
	for i := range keys {
		entries[i] = keys[i].e
	}
	clear(keys)
	return keys[:0]
}

// frame prints one block (or redraws the terminal).
func (s *watchSession) frame() error {
	rest, err := s.redump()
	if err != nil {
		return err
	}
	r := watchRows{tcp: s.order[:0]}
	for i := range rest {
		r.rest = append(r.rest, &rest[i])
	}
	// Until the overlay is loaded, TCP rows are a plain dump's (request
	// sockets and minisockets included, as the listing has them).
	var reqs []snapshot.Socket
	if s.live != nil {
		reqs, err = s.requests()
	} else if len(s.tcp.Inet) > 0 {
		var plain []*snapshot.Entry
		plain, err = s.dumpTCP()
		if err != nil {
			err = fmt.Errorf("watch: dumping TCP: %w", err)
		}
		s.phases.mark("TCP dumped")
		for _, e := range plain {
			if s.showsEntry(e) {
				r.tcp = append(r.tcp, e)
			}
		}
	}
	if err != nil {
		return err
	}
	if s.live == nil {
		return s.print(&r, frameStats{})
	}
	// The overlay's entries are sorted and printed as they are, the
	// overlay held still meanwhile: copying 100k of them for every frame
	// cost as much memory as the overlay itself.
	s.live.ViewFrozen(func(ov *snapshot.Overlay) {
		ov.Expire(monoNow())
		ov.Each(func(e *snapshot.Entry) {
			if s.showsEntry(e) {
				r.tcp = append(r.tcp, e)
			}
		})
		for i := range reqs {
			r.tcp = append(r.tcp, snapshot.NewEntry(&reqs[i]))
		}
		st := frameStats{applied: ov.Applied, resyncs: s.live.Resyncs}
		if s.live.Stale {
			st.stale = s.live.ResyncErr
			if st.stale == nil {
				st.stale = errors.New("events lost, not resynchronized yet")
			}
		}
		st.lost, _ = s.tr.Drops()
		err = s.print(&r, st)
	})
	return err
}

// frameStats is what a frame's status says.
type frameStats struct {
	applied, lost uint64
	resyncs       int
	stale         error
}

// print sorts a frame's rows and prints them.
func (s *watchSession) print(r *watchRows, st frameStats) error {
	s.phases.mark("rows taken")
	s.sortRows(r)
	s.phases.mark("rows sorted")
	s.order = r.tcp[:0] // reused by the next frame
	defer clear(r.tcp)  // a plain dump's entries are garbage once shown
	applied, lost, resyncs, stale := st.applied, st.lost, st.resyncs, st.stale
	now := time.Now()
	if s.live == nil || resyncs != s.lastResyncs {
		s.lastResyncs, s.dumpedAt = resyncs, now
	}
	opt := s.ropt
	if s.tty {
		opt.ScreenWidth = s.width - 2
	}
	rows := func(yield func(*snapshot.Socket) bool) {
		r.each(&s.scratch, func(so *snapshot.Socket, _ *snapshot.Entry) bool { return yield(so) })
	}
	w := bufio.NewWriterSize(s.out, 64<<10)
	if !s.tty {
		if stale != nil {
			fmt.Fprintf(w, "stale: %v\n", stale)
		}
		fmt.Fprintf(w, "--- %s  %d sockets  events %d  lost %d  resyncs %d ---\n",
			now.Format("15:04:05.000"), r.len(), applied, lost, resyncs)
		// Straight to the output: no frame is ever held as text.
		if err := s.tables.Table(w, rows, opt); err != nil {
			return s.writeErr(err)
		}
	} else {
		var tb bytes.Buffer
		if err := s.tables.Table(&tb, rows, opt); err != nil {
			return fmt.Errorf("watch: rendering: %w", err)
		}
		keys := make([]watchKey, 0, r.len())
		r.each(&s.scratch, func(so *snapshot.Socket, e *snapshot.Entry) bool {
			if e != nil {
				keys = append(keys, entryKey(e))
			} else {
				keys = append(keys, socketKey(so))
			}
			return true
		})
		rate := 0.0
		if d := now.Sub(s.lastTime).Seconds(); d > 0 {
			rate = float64(applied-s.lastApplied) / d
		}
		fmt.Fprint(w, "\x1b[H\x1b[2J")
		fmt.Fprintf(w, "%s  %d sockets  %.0f events/s  lost %d  resyncs %d  age %s",
			now.Format("15:04:05"), r.len(), rate, lost, resyncs, now.Sub(s.dumpedAt).Truncate(time.Second))
		if stale != nil {
			fmt.Fprintf(w, "  stale: %v", stale)
		}
		if s.resyncMsg != "" {
			fmt.Fprintf(w, "  %s", s.resyncMsg)
		}
		fmt.Fprintln(w)
		lines, next := markRows(tb.String(), opt.Header, keys, s.prev)
		s.prev = next
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	s.lastApplied, s.lastTime = applied, now
	return s.writeErr(w.Flush())
}

// writeErr is the error of writing a frame: none when the reader went
// away (EPIPE), as ss says nothing then either.
func (s *watchSession) writeErr(err error) error {
	if err == nil || errors.Is(err, unix.EPIPE) {
		return nil
	}
	return fmt.Errorf("watch: writing output: %w", err)
}

// markRows prefixes each row of a rendered table (one line per socket, in
// keys' order, after the header when there is one) with a mark against the
// previous frame: "+" new, "~" changed, " " unchanged, and appends the
// previous frame's rows that are gone, marked "-". Rows compare by their
// fields, not their padding: on a terminal the columns widen and narrow
// with what they hold. It returns the lines and the rows to compare the
// next frame with. prev nil (the first frame) marks nothing.
func markRows(table string, header bool, keys []watchKey, prev map[watchKey]string) ([]string, map[watchKey]string) {
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if table == "" {
		lines = nil
	}
	var out []string
	if header && len(lines) > 0 {
		out = append(out, "  "+lines[0])
		lines = lines[1:]
	}
	next := make(map[watchKey]string, len(keys))
	for i, l := range lines {
		mark := " "
		if i < len(keys) {
			next[keys[i]] = l
			if prev != nil {
				if old, ok := prev[keys[i]]; !ok {
					mark = "+"
				} else if !slices.Equal(strings.Fields(old), strings.Fields(l)) {
					mark = "~"
				}
			}
		}
		out = append(out, mark+" "+l)
	}
	var gone []string
	for k, l := range prev {
		if _, ok := next[k]; !ok {
			gone = append(gone, "- "+l)
		}
	}
	sort.Strings(gone)
	return append(out, gone...), next
}

// check re-dumps and compares the kernel's full sockets with the overlay's.
func (s *watchSession) check() error {
	entries, err := s.dumpTCP()
	if err != nil {
		return fmt.Errorf("watch: --resync: %w", err)
	}
	type row struct {
		state       uint8
		local, peer string
	}
	kernel := map[uint64]row{}
	for _, e := range entries {
		// Minisockets (TIME-WAIT, and orphans' FIN-WAIT-2: the timewait
		// timer and no inode) have no cookie in the overlay, and request
		// sockets are not modelled: only full sockets compare.
		if e.Cookie == 0 || e.IsRequestSock() || e.Minisock() || !s.showsEntry(e) {
			continue
		}
		kernel[e.Cookie] = row{e.State, e.Local().String(), e.Peer().String()}
	}
	overlay := map[uint64]row{}
	s.live.View(func(ov *snapshot.Overlay) {
		ov.Each(func(e *snapshot.Entry) {
			if e.Minisock() || e.Cookie == 0 || !s.showsEntry(e) {
				return
			}
			overlay[e.Cookie] = row{e.State, e.Local().String(), e.Peer().String()}
		})
	})
	var diffs []string
	name := func(st uint8) string { return render.StateName(st) }
	for c, k := range kernel {
		o, ok := overlay[c]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("resync: sk:%x %s %s %s: in the kernel, missing from the overlay", c, name(k.state), k.local, k.peer))
		case o != k:
			diffs = append(diffs, fmt.Sprintf("resync: sk:%x: kernel %s %s %s, overlay %s %s %s", c, name(k.state), k.local, k.peer, name(o.state), o.local, o.peer))
		}
	}
	for c, o := range overlay {
		if _, ok := kernel[c]; !ok {
			diffs = append(diffs, fmt.Sprintf("resync: sk:%x %s %s %s: in the overlay, gone from the kernel", c, name(o.state), o.local, o.peer))
		}
	}
	sort.Strings(diffs)
	if len(diffs) == 0 {
		s.resyncMsg = fmt.Sprintf("resync: overlay and kernel agree (%d sockets)", len(kernel))
	} else {
		s.resyncMsg = fmt.Sprintf("resync: %d differences", len(diffs))
	}
	if s.tty {
		return nil
	}
	w := bufio.NewWriter(s.out)
	if len(diffs) == 0 {
		fmt.Fprintln(w, s.resyncMsg)
	}
	for _, d := range diffs {
		fmt.Fprintln(w, d)
	}
	if err := w.Flush(); err != nil && !errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("watch: writing output: %w", err)
	}
	return nil
}
