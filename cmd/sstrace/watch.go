package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
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
	tcp, all, listening, numeric, ipv4, ipv6, noHeader bool
	interval, resync                                   time.Duration
	netns                                              string
	tf                                                 tracerFlags
}

func newWatchCmd(stdout, stderr io.Writer) *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch [OPTIONS] [FILTER]",
		Short: "the ss table kept live by socket events instead of re-dumping",
		Long: `watch shows ss's TCP table, loaded once from sock_diag and then kept current by
applying the tracer's socket events to it (it is re-dumped only after lost
events, or with --resync to check it).

On a terminal the table is redrawn in place: new rows are marked +, changed
rows ~, closed rows - (shown once), under a status line (events/s, lost
events, age of the last dump). Otherwise one block is printed per --interval:
a line "--- HH:MM:SS.mmm  N sockets  events E  lost L  resyncs R ---", then the
table as ss prints it.

Options: ss's -t -a -l -n -4 -6 -H and a FILTER as in the listing (TCP only).

Limits: rows are sorted by (family, local, peer), not in the kernel's hash
order. Events carry no queue sizes: Recv-Q/Send-Q are what the last dump said
(0 for sockets first seen through events; a listener's Send-Q is its
backlog as dumped, 0 for one born after). Request sockets (SYN-RECV before
the handshake completes) are not shown. With --netns, the dumps run inside
that namespace (entered on a locked OS thread); without it the namespace is
sstrace's own, and events are limited to it too.`,
		Example: `  sstrace watch -tan
  sstrace watch -tn --interval 500ms dport = :443
  sstrace watch -tan --netns /run/netns/blue --resync 10s`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), stdout, stderr, &o, watchOrder(cmd.Flags()), args)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("watch: %v (watch takes only -t -a -l -n -4 -6 -H, --interval, --resync, --netns and a FILTER)", err)
	})
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.BoolVarP(&o.tcp, "tcp", "t", false, "TCP sockets (the only table watch shows)")
	fl.BoolVarP(&o.all, "all", "a", false, "display all sockets (listening and not)")
	fl.BoolVarP(&o.listening, "listening", "l", false, "display listening sockets")
	fl.BoolVarP(&o.numeric, "numeric", "n", false, "don't resolve service names")
	fl.BoolVarP(&o.ipv4, "ipv4", "4", false, "display only IP version 4 sockets")
	fl.BoolVarP(&o.ipv6, "ipv6", "6", false, "display only IP version 6 sockets")
	fl.BoolVarP(&o.noHeader, "no-header", "H", false, "suppress the header line")
	fl.DurationVar(&o.interval, "interval", time.Second, "how often to print (or redraw) the table")
	fl.DurationVar(&o.resync, "resync", 0, "re-dump this often and report differences from the event-fed table (0: never)")
	fl.StringVar(&o.netns, "netns", "", "watch this network namespace (a path like /run/netns/NAME or /proc/PID/ns/net)")
	o.tf.add(fl)
	return cmd
}

// watchOrder is ss's selection for watch's options, in command-line order
// where it matters (-a/-l, -4/-6): taken from the process's arguments,
// with TCP always selected.
func watchOrder(fl *pflag.FlagSet) []filter.Opt {
	order := []filter.Opt{{Name: "t"}}
	for _, op := range selectionOrder(os.Args[1:]) {
		switch op.Name {
		case "a", "l", "4", "6":
			order = append(order, op)
		}
	}
	// Arguments not from os.Args (in-process callers): flag order is lost.
	if len(order) == 1 {
		for _, n := range []string{"ipv4", "ipv6", "all", "listening"} {
			if f := fl.Lookup(n); f != nil && f.Changed {
				order = append(order, filter.Opt{Name: f.Shorthand})
			}
		}
	}
	return order
}

type watchSession struct {
	o     *watchOptions
	sel   filter.Selection
	cond  filter.Expr
	req   snapshot.ListRequest
	ropt  render.Options
	out   io.Writer
	tty   bool
	width int
	clk   traceClock

	tr   *tracer.Tracer
	live *snapshot.Live

	prev        map[watchKey]string // the last frame's rows (terminal mode)
	lastApplied uint64
	lastTime    time.Time
	dumpedAt    time.Time
	lastResyncs int
	resyncMsg   string
}

func runWatch(ctx context.Context, stdout, stderr io.Writer, o *watchOptions, order []filter.Opt, args []string) error {
	if o.interval <= 0 {
		return errors.New("watch: --interval must be positive")
	}
	if o.resync < 0 {
		return errors.New("watch: --resync must not be negative")
	}
	stateArgs, expr, err := splitStates(args)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	sel, err := filter.Select(order, stateArgs)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	if sel.States == 0 || sel.Families == 0 {
		fmt.Fprintln(stderr, "sstrace: no socket states to show with such filter.")
		return nil
	}
	cond, err := sel.ParseFilter(expr, nil, filter.System)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	full := sel.ListRequest()
	req := snapshot.ListRequest{States: full.States}
	for _, d := range full.Inet {
		if d.Protocol == unix.IPPROTO_TCP {
			req.Inet = append(req.Inet, d)
		}
	}
	s := &watchSession{o: o, sel: sel, cond: cond, req: req, out: stdout, clk: newTraceClock()}
	s.width = screenWidth(stdout)
	s.tty = s.width > 0
	s.ropt = render.Options{
		ShowNetid: sel.ShowNetid(),
		ShowState: sel.ShowState(),
		Header:    !o.noHeader,
		Numeric:   o.numeric,
	}
	if !o.numeric {
		if svc, err := render.LoadServices("/etc/services"); err == nil {
			s.ropt.Services = svc
		}
	}

	cookie, err := tracer.NetNSCookie(o.netns)
	if err != nil {
		return fmt.Errorf("watch: --netns: %w", err)
	}
	tr, err := tracer.Open(ctx, o.tf.apply(tracer.Options{NetNSCookie: cookie}))
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer tr.Close()
	s.tr = tr
	if m := tr.MissingSummary(); m != "" {
		fmt.Fprintf(stderr, "sstrace: warning: not traced: %s\n", m)
	}
	s.live, err = snapshot.StartLive(tr, s.dump, nil)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	s.dumpedAt, s.lastTime = time.Now(), time.Now()
	fmt.Fprintf(stderr, "sstrace: watching TCP sockets every %s; Ctrl-C to stop\n", o.interval)

	waitErr := make(chan error, 1)
	go func() { waitErr <- s.live.Wait() }()
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-waitErr:
			if err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			return nil
		case <-tick.C:
			if err := s.frame(); err != nil {
				return err
			}
		case <-resync:
			if err := s.check(); err != nil {
				return err
			}
		}
	}
}

// dump takes the TCP sock_diag dump of the watched namespace.
func (s *watchSession) dump() ([]snapshot.Socket, error) {
	if s.o.netns == "" {
		return snapshot.List(s.req)
	}
	var socks []snapshot.Socket
	err := tracer.InNetNS(s.o.netns, func() (err error) {
		socks, err = snapshot.List(s.req)
		return err
	})
	return socks, err
}

// shows says whether ss would list the socket with watch's selection.
func (s *watchSession) shows(so *snapshot.Socket) bool {
	if so.Protocol != unix.IPPROTO_TCP || so.Type == unix.SOCK_RAW {
		return false
	}
	// The kernel's TCP dump never has a CLOSE socket, and ss 6.1 never
	// asks for bound-inactive ones.
	if so.State == snapshot.StateClose || so.State == snapshot.StateBoundInactive || !s.sel.HasState(so.State) {
		return false
	}
	if !s.sel.HasFamily(int(so.Family)) {
		return false
	}
	return s.cond == nil || filter.Eval(s.cond, so)
}

// watchRows is one frame: the sockets shown, sorted, and their keys.
type watchRows struct {
	socks []snapshot.Socket
	keys  []watchKey
}

// watchKey identifies a row across frames: the cookie of a full socket,
// the 4-tuple of a minisocket (which has no cookie until dumped).
type watchKey struct {
	cookie       uint64
	local, peer  string
	minisock     bool
	family, prot uint16
}

func entryKey(e *snapshot.Entry) watchKey {
	if e.Minisock || e.Cookie == 0 {
		return watchKey{local: e.Local.String(), peer: e.Peer.String(), minisock: true, family: uint16(e.Family), prot: e.Protocol}
	}
	return watchKey{cookie: e.Cookie}
}

// rows takes the overlay's shown sockets, sorted by (family, local, peer):
// the kernel's dump order (hash buckets) cannot be reproduced from events.
func (s *watchSession) rows(ov *snapshot.Overlay) watchRows {
	ov.Expire(monoNow())
	var r watchRows
	type kv struct {
		s snapshot.Socket
		k watchKey
	}
	var all []kv
	for _, e := range ov.Entries() {
		if !s.shows(&e.Socket) {
			continue
		}
		all = append(all, kv{e.Socket, entryKey(e)})
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := &all[i].s, &all[j].s
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		if c := a.Local.Compare(b.Local); c != 0 {
			return c < 0
		}
		return a.Peer.Compare(b.Peer) < 0
	})
	for _, x := range all {
		r.socks = append(r.socks, x.s)
		r.keys = append(r.keys, x.k)
	}
	return r
}

// frame prints one block (or redraws the terminal).
func (s *watchSession) frame() error {
	var r watchRows
	var applied uint64
	var resyncs int
	s.live.View(func(ov *snapshot.Overlay) {
		r = s.rows(ov)
		applied = ov.Applied
		resyncs = s.live.Resyncs
	})
	now := time.Now()
	if resyncs != s.lastResyncs {
		s.lastResyncs, s.dumpedAt = resyncs, now
	}
	lost, _ := s.tr.Drops()
	opt := s.ropt
	if s.tty {
		opt.ScreenWidth = s.width - 2
	}
	var tb bytes.Buffer
	if err := render.Table(&tb, r.socks, opt); err != nil {
		return fmt.Errorf("watch: rendering: %w", err)
	}
	w := bufio.NewWriterSize(s.out, 64<<10)
	if !s.tty {
		fmt.Fprintf(w, "--- %s  %d sockets  events %d  lost %d  resyncs %d ---\n",
			now.Format("15:04:05.000"), len(r.socks), applied, lost, resyncs)
		w.Write(tb.Bytes())
	} else {
		rate := 0.0
		if d := now.Sub(s.lastTime).Seconds(); d > 0 {
			rate = float64(applied-s.lastApplied) / d
		}
		fmt.Fprint(w, "\x1b[H\x1b[2J")
		fmt.Fprintf(w, "%s  %d sockets  %.0f events/s  drops %d  resyncs %d  age %s",
			now.Format("15:04:05"), len(r.socks), rate, lost, resyncs, now.Sub(s.dumpedAt).Truncate(time.Second))
		if s.resyncMsg != "" {
			fmt.Fprintf(w, "  %s", s.resyncMsg)
		}
		fmt.Fprintln(w)
		lines, next := markRows(tb.String(), opt.Header, r.keys, s.prev)
		s.prev = next
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	s.lastApplied, s.lastTime = applied, now
	if err := w.Flush(); err != nil {
		if errors.Is(err, unix.EPIPE) {
			return nil
		}
		return fmt.Errorf("watch: writing output: %w", err)
	}
	return nil
}

// markRows prefixes each row of a rendered table (one line per socket, in
// keys' order, after the header when there is one) with a mark against the
// previous frame: "+" new, "~" changed, " " unchanged, and appends the
// previous frame's rows that are gone, marked "-". It returns the lines and
// the rows to compare the next frame with. prev nil (the first frame)
// marks nothing.
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
				} else if old != l {
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

// diagTimerTimeWait is idiag_timer for a TIME-WAIT minisocket.
const diagTimerTimeWait = 3

// check re-dumps and compares the kernel's full sockets with the overlay's.
func (s *watchSession) check() error {
	socks, err := s.dump()
	if err != nil {
		return fmt.Errorf("watch: --resync: %w", err)
	}
	type row struct {
		state       uint8
		local, peer string
	}
	kernel := map[uint64]row{}
	for i := range socks {
		so := &socks[i]
		// Minisockets (TIME-WAIT, and orphans' FIN-WAIT-2: the timewait
		// timer and no inode) have no cookie in the overlay, and request
		// sockets are not modelled: only full sockets compare.
		if so.Cookie == 0 || snapshot.IsRequestSock(so) || so.Inode == 0 && so.Timer == diagTimerTimeWait || !s.shows(so) {
			continue
		}
		kernel[so.Cookie] = row{so.State, so.Local.String(), so.Peer.String()}
	}
	overlay := map[uint64]row{}
	s.live.View(func(ov *snapshot.Overlay) {
		for _, e := range ov.Entries() {
			if e.Minisock || e.Cookie == 0 || !s.shows(&e.Socket) {
				continue
			}
			overlay[e.Cookie] = row{e.State, e.Local.String(), e.Peer.String()}
		}
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
