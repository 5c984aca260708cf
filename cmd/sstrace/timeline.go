package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type timelineOptions struct {
	absolute bool
	json     bool
	perfetto string
	force    bool
}

func newTimelineCmd(stdout, stderr io.Writer) *cobra.Command {
	var o timelineOptions
	cmd := &cobra.Command{
		Use:   "timeline [OPTIONS] FILE",
		Short: "render a recorded trace per connection, or as a Perfetto trace",
		Long: `timeline reads a recording made by "sstrace trace --record FILE" ("-" reads
standard input) and prints one line per socket, sorted by when it was first
seen: its owner, addresses, every state it went through with the time it spent
there, and how it ended (destroyed, closed, or still open when the recording
ended). A socket alive while events were lost is marked with *: it may miss
states.

With --perfetto OUT.json, it writes the recording as Chrome trace-event JSON
instead, for ui.perfetto.dev (or chrome://tracing): one process per owner, one
track per socket, one slice per state.`,
		Example: `  sstrace trace --record web.rec dport = :443
  sstrace timeline web.rec
  sstrace timeline --perfetto web.json web.rec`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("timeline: needs one recording FILE (- for standard input)")
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTimeline(timelineStdin(cmd), stdout, stderr, &o, args[0])
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.BoolVarP(&o.absolute, "absolute", "T", false, "print absolute start times (RFC 3339, µs) instead of seconds since the recording started")
	fl.BoolVarP(&o.json, "json", "j", false, "print one JSON object per socket")
	fl.StringVar(&o.perfetto, "perfetto", "", "write Chrome trace-event JSON for ui.perfetto.dev to FILE instead")
	fl.BoolVar(&o.force, "force", false, "replace an existing --perfetto file")
	return cmd
}

func timelineStdin(cmd *cobra.Command) io.Reader { return cmd.InOrStdin() }

func runTimeline(in io.Reader, stdout, stderr io.Writer, o *timelineOptions, file string) error {
	var r io.Reader = in
	name := file
	if file == "-" {
		name = "standard input"
	} else {
		f, err := os.Open(file)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("timeline: reading %s: %w", file, err)
		}
		defer f.Close()
		r = f
	}
	rec, err := readRecording(r, name)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	tl := buildTimeline(rec)
	if o.perfetto != "" {
		out, err := createOutFile(o.perfetto, o.force)
		if err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		defer out.Abort()
		slices, err := writePerfetto(out, tl)
		if err != nil {
			return fmt.Errorf("timeline: writing %s: %w", o.perfetto, err)
		}
		if err := out.Commit(); err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		fmt.Fprintf(stderr, "sstrace: wrote %s: %d sockets, %d state slices; open it in ui.perfetto.dev\n", o.perfetto, len(tl.Conns), slices)
		return nil
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	if o.json {
		err = writeTimelineJSON(w, tl)
	} else {
		err = writeTimelineText(w, tl, o.absolute)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil && !errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("timeline: writing output: %w", err)
	}
	return nil
}

// tlState is one state a socket was in.
type tlState struct {
	Name  string
	Start uint64 // CLOCK_MONOTONIC ns
	End   uint64
	// StartUnknown: the socket was in this state before its first event
	// (Start is that event); Open: still in it when the recording ended
	// (End is the end).
	StartUnknown bool
	Open         bool
}

// tlConn is one socket's life as recorded.
type tlConn struct {
	Cookie     uint64
	NetNS      uint32
	Owner      traceOwner
	Netid      string
	Family     string
	Local      *traceEndpoint
	Peer       *traceEndpoint
	First      uint64 // its first event
	States     []tlState
	Born       bool   // its birth was recorded
	Accepted   uint64 // when accept() took it
	Closed     uint64 // when its last fd was closed
	Reset      uint64 // when it received a reset
	End        string // destroyed, closed, open
	EndTS      uint64
	Incomplete bool     // events of its life are missing
	Marks      []tlMark // other events (retransmit, error, ...)
}

// tlMark is an event that is no transition: a retransmission, an error.
type tlMark struct {
	Name string
	TS   uint64
}

const (
	tlDestroyed = "destroyed"
	tlClosed    = "closed"
	tlOpen      = "open"
)

// timeline is a recording rendered per socket.
type timeline struct {
	Header    recHeader
	Conns     []*tlConn // by first event
	Events    int
	Lost      []traceRecord
	NoCookie  int    // events without a socket cookie, left out
	EndTS     uint64 // when the recording ended
	MultiNS   bool   // sockets of several namespaces
	StartTS   uint64
	LostTotal uint64
}

// ownerRank orders how owners are known: what the process itself did
// beats what was inferred.
func tlOwnerRank(from string) int {
	switch from {
	case ownerBPF, ownerSyscall:
		return 3
	case ownerInventory:
		return 2
	case ownerListener:
		return 1
	}
	return 0
}

func buildTimeline(rec *recording) *timeline {
	tl := &timeline{Header: rec.Header, EndTS: rec.End.TS, StartTS: rec.Header.StartNS}
	byCookie := map[uint64]*tlConn{}
	netns := map[uint32]bool{}
	for i := range rec.Records {
		r := &rec.Records[i]
		if r.Type == recLost {
			tl.Lost = append(tl.Lost, *r)
			tl.LostTotal += r.Lost
			continue
		}
		tl.Events++
		if r.Cookie == 0 {
			tl.NoCookie++
			continue
		}
		c := byCookie[r.Cookie]
		if c == nil {
			c = &tlConn{Cookie: r.Cookie, First: r.TS, End: tlOpen}
			byCookie[r.Cookie] = c
			tl.Conns = append(tl.Conns, c)
		}
		c.apply(r)
		if c.NetNS != 0 {
			netns[c.NetNS] = true
		}
		if r.TS > tl.EndTS {
			tl.EndTS = r.TS
		}
	}
	tl.MultiNS = len(netns) > 1
	for _, c := range tl.Conns {
		if n := len(c.States); n > 0 && c.States[n-1].End == 0 {
			c.States[n-1].End, c.States[n-1].Open = max(tl.EndTS, c.States[n-1].Start), true
		}
	}
	// Sockets alive while events were lost may miss some of theirs.
	boot := rec.Header.BootTime
	for _, l := range tl.Lost {
		since, err1 := time.Parse(time.RFC3339Nano, l.Since)
		until, err2 := time.Parse(time.RFC3339Nano, l.Time)
		lo, hi := uint64(0), ^uint64(0)
		if err1 == nil && since.After(boot) {
			lo = uint64(since.Sub(boot))
		}
		if err2 == nil && until.After(boot) {
			hi = uint64(until.Sub(boot))
		}
		for _, c := range tl.Conns {
			end := c.EndTS
			if c.End == tlOpen {
				end = ^uint64(0)
			}
			if c.First <= hi && end >= lo {
				c.Incomplete = true
			}
		}
	}
	sort.SliceStable(tl.Conns, func(i, j int) bool {
		a, b := tl.Conns[i], tl.Conns[j]
		if a.start() != b.start() {
			return a.start() < b.start()
		}
		return a.Cookie < b.Cookie
	})
	return tl
}

// start is when the socket's life began as far as the recording tells.
func (c *tlConn) start() uint64 {
	if len(c.States) > 0 && c.States[0].Start < c.First {
		return c.States[0].Start
	}
	return c.First
}

func (c *tlConn) cur() *tlState {
	if n := len(c.States); n > 0 && c.States[n-1].End == 0 {
		return &c.States[n-1]
	}
	return nil
}

// enter starts state name at ts, ending the current one there.
func (c *tlConn) enter(name string, ts uint64) {
	if cur := c.cur(); cur != nil {
		cur.End = max(ts, cur.Start)
	}
	c.States = append(c.States, tlState{Name: name, Start: ts})
}

func (c *tlConn) apply(r *traceRecord) {
	if r.PID != 0 && (c.Owner.PID == 0 || tlOwnerRank(r.OwnerFrom) > tlOwnerRank(c.Owner.From)) {
		c.Owner = traceOwner{PID: r.PID, Comm: r.Comm, From: r.OwnerFrom}
	}
	if r.NetNS != 0 {
		c.NetNS = r.NetNS
	}
	if r.Netid != "" && (c.Netid == "" || r.Type == recBirth) {
		c.Netid = r.Netid
	}
	if r.Family != "" {
		c.Family = r.Family
	}
	known := r.Type == recBirth || r.Type == recAccept || r.Type == recState ||
		r.Type == recRelease || r.Type == recDestroy || r.Type == recReset
	switch {
	case known && tlEpKnown(r.Local) && !(r.Local.Port == 0 && c.Local != nil && c.Local.Port != 0):
		c.Local = r.Local
	case !known && r.Local != nil && r.Local.Port != 0 && c.Local != nil && c.Local.Port == 0 && r.Local.Addr == c.Local.Addr:
		// Other kinds may carry other sockets' addresses (a listener's
		// SYN-ACK retransmits carry their request's); trust them only
		// for the port a connecting socket got.
		c.Local = r.Local
	}
	if known && tlEpKnown(r.Peer) {
		c.Peer = r.Peer
	}
	if c.End != tlOpen {
		// Nothing after the end counts (a recording's cookies are unique).
		c.Incomplete = true
		return
	}
	switch r.Type {
	case recBirth:
		c.Born = true
		if len(c.States) == 0 && r.State != "" {
			c.enter(r.State, r.TS)
		} else if len(c.States) == 0 {
			c.enter("CLOSE", r.TS) // a new socket; non-TCP ones have no state of their own
		}
	case recAccept:
		c.Accepted = r.TS
		if len(c.States) == 0 && r.State != "" {
			c.enter(r.State, r.TS)
			c.States[0].StartUnknown = true
		}
	case recState:
		cur := c.cur()
		switch {
		case cur == nil && r.SinceNS != 0 && r.SinceNS <= r.TS:
			// Known since when it was in the old state.
			c.States = append(c.States, tlState{Name: r.OldState, Start: r.SinceNS})
		case cur == nil:
			// A passive connection's clone of its listener, or a socket
			// older than the recording: its old state began before.
			if r.OldState != "LISTEN" || r.State != "SYN-RECV" {
				c.States = append(c.States, tlState{Name: r.OldState, Start: r.TS, StartUnknown: true})
			}
		case cur.Name != r.OldState:
			// Transitions are missing in between.
			c.Incomplete = true
			cur.End = max(r.TS, cur.Start)
			c.States = append(c.States, tlState{Name: r.OldState, Start: r.TS, StartUnknown: true})
		}
		c.enter(r.State, r.TS)
	case recRelease:
		c.Closed = r.TS
		if c.Netid != "tcp" {
			// Only TCP sockets outlive their last fd.
			c.finish(r, tlClosed)
		}
	case recReset:
		c.Reset = r.TS
	case recDestroy:
		c.finish(r, tlDestroyed)
	default:
		c.Marks = append(c.Marks, tlMark{Name: r.Type, TS: r.TS})
	}
}

func (c *tlConn) finish(r *traceRecord, how string) {
	if len(c.States) == 0 {
		name := r.State
		if name == "" {
			name = "CLOSE"
		}
		start, unknown := r.TS, true
		if r.SinceNS != 0 && r.SinceNS <= r.TS {
			start, unknown = r.SinceNS, false
		}
		c.States = append(c.States, tlState{Name: name, Start: start, StartUnknown: unknown})
	}
	if cur := c.cur(); cur != nil {
		cur.End = max(r.TS, cur.Start)
	}
	c.End, c.EndTS = how, r.TS
}

func tlEpKnown(ep *traceEndpoint) bool {
	return ep != nil && (ep.Port != 0 || (ep.Addr != "0.0.0.0" && ep.Addr != "::"))
}

// stateText is "NAME duration": ">" when the state began before the
// socket's first event, "+" when it had not ended when the recording did.
func (s *tlState) text() string {
	d := traceDur(s.End - s.Start)
	if s.StartUnknown {
		d = ">" + d
	}
	if s.Open {
		d += "+"
	}
	return s.Name + " " + d
}

func (c *tlConn) endText() string {
	var parts []string
	counts := map[string]int{}
	var names []string
	for _, m := range c.Marks {
		if counts[m.Name] == 0 {
			names = append(names, m.Name)
		}
		counts[m.Name]++
	}
	for _, n := range names {
		if counts[n] > 1 {
			n = fmt.Sprintf("%s ×%d", n, counts[n])
		}
		parts = append(parts, n)
	}
	if c.Reset != 0 {
		parts = append(parts, "reset")
	}
	switch c.End {
	case tlOpen:
		if c.Closed != 0 {
			parts = append(parts, "fd closed")
		}
		parts = append(parts, "open at the end")
	default:
		parts = append(parts, c.End)
	}
	return strings.Join(parts, ", ")
}

func writeTimelineText(w *bufio.Writer, tl *timeline, absolute bool) error {
	h := &tl.Header
	fmt.Fprintf(w, "# %s on %s (%s), %s, %d events, %d sockets",
		h.Start.Format(recTimeLayout), tlOrDash(h.Host), tlOrDash(h.Kernel),
		traceDur(tl.EndTS-min(tl.EndTS, tl.StartTS)), tl.Events, len(tl.Conns))
	if h.Options.NetNS != "" {
		fmt.Fprintf(w, ", netns %s", h.Options.NetNS)
	}
	if h.Options.Filter != "" {
		fmt.Fprintf(w, ", filter %q", h.Options.Filter)
	}
	w.WriteByte('\n')
	for _, l := range tl.Lost {
		fmt.Fprintf(w, "# lost %d events (ring buffer full) between %s and %s: sockets marked * may miss states\n", l.Lost, l.Since, l.Time)
	}
	if tl.NoCookie > 0 {
		fmt.Fprintf(w, "# %d events without a socket cookie left out\n", tl.NoCookie)
	}
	clk := traceClock{boot: h.BootTime}
	for _, c := range tl.Conns {
		mark := " "
		if c.Incomplete {
			mark = "*"
		}
		when := traceWhen(absolute, clk, c.start(), tl.StartTS)
		fmt.Fprintf(w, "%s%-11s ", mark, when)
		if tl.MultiNS {
			fmt.Fprintf(w, "%-10d ", c.NetNS)
		}
		fmt.Fprintf(w, "%-22s %-5s %21s → %-21s ", traceOwnerText(c.Owner.PID, c.Owner.Comm), c.Netid,
			traceAddr(c.Local), traceAddr(c.Peer))
		for i := range c.States {
			if i > 0 {
				w.WriteString(" → ")
			}
			w.WriteString(c.States[i].text())
		}
		w.WriteString("; " + c.endText() + "\n")
	}
	return nil
}

func tlOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tlStateJSON is one state of a socket in timeline -j.
type tlStateJSON struct {
	State        string `json:"state"`
	StartNS      uint64 `json:"start_ns"`
	DurNS        uint64 `json:"dur_ns"`
	StartUnknown bool   `json:"start_unknown,omitempty"`
	Open         bool   `json:"open,omitempty"`
}

// tlJSON is one socket in timeline -j: one object per line.
type tlJSON struct {
	Cookie     uint64         `json:"cookie"`
	NetNS      uint32         `json:"netns,omitempty"`
	PID        uint32         `json:"pid,omitempty"`
	Comm       string         `json:"comm,omitempty"`
	OwnerFrom  string         `json:"owner_from,omitempty"`
	Netid      string         `json:"netid"`
	Family     string         `json:"family,omitempty"`
	Local      *traceEndpoint `json:"local,omitempty"`
	Peer       *traceEndpoint `json:"peer,omitempty"`
	Start      string         `json:"start"`
	StartNS    uint64         `json:"start_ns"`
	States     []tlStateJSON  `json:"states"`
	End        string         `json:"end"`
	EndNS      uint64         `json:"end_ns,omitempty"`
	Born       bool           `json:"born,omitempty"`
	AcceptedNS uint64         `json:"accepted_ns,omitempty"`
	ClosedNS   uint64         `json:"fd_closed_ns,omitempty"`
	ResetNS    uint64         `json:"reset_ns,omitempty"`
	Marks      []tlMarkJSON   `json:"marks,omitempty"`
	Incomplete bool           `json:"incomplete,omitempty"`
}

// tlMarkJSON is an event other than a transition (retransmit, error, ...).
type tlMarkJSON struct {
	Type string `json:"type"`
	TS   uint64 `json:"ts_ns"`
}

func writeTimelineJSON(w *bufio.Writer, tl *timeline) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	clk := traceClock{boot: tl.Header.BootTime}
	for _, c := range tl.Conns {
		j := tlJSON{
			Cookie: c.Cookie, NetNS: c.NetNS, PID: c.Owner.PID, Comm: c.Owner.Comm, OwnerFrom: c.Owner.From,
			Netid: c.Netid, Family: c.Family, Local: c.Local, Peer: c.Peer,
			Start: clk.wall(c.start()).Format(recTimeLayout), StartNS: c.start(), States: []tlStateJSON{},
			End: c.End, EndNS: c.EndTS, Born: c.Born, AcceptedNS: c.Accepted, ClosedNS: c.Closed, ResetNS: c.Reset,
			Incomplete: c.Incomplete,
		}
		for _, m := range c.Marks {
			j.Marks = append(j.Marks, tlMarkJSON{Type: m.Name, TS: m.TS})
		}
		for _, s := range c.States {
			j.States = append(j.States, tlStateJSON{State: s.Name, StartNS: s.Start, DurNS: s.End - s.Start,
				StartUnknown: s.StartUnknown, Open: s.Open})
		}
		if err := enc.Encode(&j); err != nil {
			return err
		}
	}
	return nil
}

// Chrome trace-event JSON (the format ui.perfetto.dev and chrome://tracing
// open): {"traceEvents":[...]} with
//
//	M process_name  one process per owner (pid); sockets without a known
//	                owner go to a made-up process "owner unknown"
//	M thread_name   one thread (track) per socket: netid local → peer
//	X               one complete slice per state: name the state, ts and
//	                dur in µs since the recording began
//	i               instants on the socket's track: accepted, fd closed,
//	                reset received
//
// Times are whole µs, cut from ns: a state's end is exactly the next
// one's start, so slices never overlap however the reader rounds.
const (
	// perfettoNoOwner is the pid of "owner unknown": above the kernel's
	// largest pid (PID_MAX_LIMIT, 4194304).
	perfettoNoOwner = 4194305
	// perfettoTIDBase numbers the socket tracks above any real pid.
	perfettoTIDBase = 5000000
)

type perfettoEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	TS   *uint64        `json:"ts,omitempty"`
	Dur  *uint64        `json:"dur,omitempty"`
	PID  uint32         `json:"pid"`
	TID  uint64         `json:"tid,omitempty"`
	S    string         `json:"s,omitempty"`
	Args map[string]any `json:"args,omitempty"`
}

// writePerfetto writes the timeline as trace-event JSON and returns how
// many state slices it holds.
func writePerfetto(w io.Writer, tl *timeline) (int, error) {
	origin := tl.StartTS
	for _, c := range tl.Conns {
		origin = min(origin, c.start())
	}
	us := func(ns uint64) uint64 { return (ns - min(ns, origin)) / 1000 }

	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	first := true
	emit := func(e *perfettoEvent) error {
		if !first {
			bw.WriteString(",")
		}
		first = false
		return enc.Encode(e) // one event per line
	}
	bw.WriteString("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")

	named := map[uint32]bool{}
	slices := 0
	for i, c := range tl.Conns {
		pid := c.Owner.PID
		pname := c.Owner.Comm
		if pid == 0 {
			pid, pname = perfettoNoOwner, "owner unknown"
		}
		if !named[pid] {
			named[pid] = true
			if err := emit(&perfettoEvent{Name: "process_name", Ph: "M", PID: pid, Args: map[string]any{"name": pname}}); err != nil {
				return 0, err
			}
		}
		tid := uint64(perfettoTIDBase + i)
		tname := fmt.Sprintf("%s %s → %s", c.Netid, traceAddr(c.Local), traceAddr(c.Peer))
		if err := emit(&perfettoEvent{Name: "thread_name", Ph: "M", PID: pid, TID: tid, Args: map[string]any{"name": tname}}); err != nil {
			return 0, err
		}
		for _, s := range c.States {
			ts, end := us(s.Start), us(s.End)
			dur := end - ts
			args := map[string]any{"cookie": strconv.FormatUint(c.Cookie, 10), "dur_ns": s.End - s.Start}
			if s.StartUnknown {
				args["start_unknown"] = true
			}
			if s.Open {
				args["open_at_end"] = true
			}
			if err := emit(&perfettoEvent{Name: s.Name, Cat: c.Netid, Ph: "X", TS: &ts, Dur: &dur, PID: pid, TID: tid, Args: args}); err != nil {
				return 0, err
			}
			slices++
		}
		marks := append([]tlMark{{"accepted", c.Accepted}, {"fd closed", c.Closed}, {"reset received", c.Reset}}, c.Marks...)
		for _, m := range marks {
			if m.TS == 0 {
				continue
			}
			ts := us(m.TS)
			if err := emit(&perfettoEvent{Name: m.Name, Cat: c.Netid, Ph: "i", TS: &ts, PID: pid, TID: tid, S: "t"}); err != nil {
				return 0, err
			}
		}
	}
	bw.WriteString("]}\n")
	return slices, bw.Flush()
}
