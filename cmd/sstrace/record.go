package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// A recording (`trace --record FILE`) is JSON Lines: one JSON object per
// line, each line ending in '\n', so that it can be written as a stream
// and read back with standard tools:
//
//	line 1   HEADER  {"format":"sstrace-recording","version":1,...}
//	...      RECORD  one per event or loss, in the order they were read
//	last     END     {"type":"end",...}
//
// HEADER: format, version (this reader reads version 1 only), sstrace's
// version, host, kernel (uname), boot_time (the wall-clock time of
// CLOCK_MONOTONIC 0, RFC 3339 with ns: an event's wall time is boot_time
// plus its ts_ns), start (wall clock) and start_ns (CLOCK_MONOTONIC) of
// the trace, and the trace's options.
//
// RECORD: the same objects `trace -j` prints (traceRecord): "type" is
// birth, accept, state, release, destroy or reset for an event, and
// lost for events the ring buffer had no room for.
//
// END: the number of events and of lost records written, and when the
// trace stopped. A recording is written to a temporary file and renamed
// into place only after its END line, so a file without one was cut
// short; the reader says so rather than render half a trace as whole.
const (
	recordingFormat  = "sstrace-recording"
	recordingVersion = 1
	// recordingMaxLine bounds one line: an event is ~500 bytes; a
	// header with a long filter stays far below.
	recordingMaxLine = 64 << 10
)

// recHeader is a recording's first line.
type recHeader struct {
	Format   string     `json:"format"`
	Version  int        `json:"version"`
	Sstrace  string     `json:"sstrace,omitempty"`
	Host     string     `json:"host"`
	Kernel   string     `json:"kernel"`
	BootTime time.Time  `json:"boot_time"`
	Start    time.Time  `json:"start"`
	StartNS  uint64     `json:"start_ns"`
	Options  recOptions `json:"options"`
}

// recOptions are the trace's options, as given.
type recOptions struct {
	Args        []string `json:"args"`
	NetNS       string   `json:"netns,omitempty"`
	NetNSCookie uint64   `json:"netns_cookie,omitempty"`
	Filter      string   `json:"filter,omitempty"`
}

// traceEndpoint is one end of a socket: numeric, as in the listing's JSON
// ENDPOINT.
type traceEndpoint struct {
	Addr string `json:"addr"`
	Port uint16 `json:"port"`
}

// traceRecord is one line of `trace -j` and of a recording.
//
//	type          birth accept state release destroy reset | lost | end
//	time          wall clock, RFC 3339 with µs
//	ts_ns         CLOCK_MONOTONIC ns (events, end)
//	cookie        socket cookie: the socket's identity for its life (0: none)
//	netns         network namespace inode (omitted when unknown)
//	pid, comm     the socket's owner; omitted when it is not known
//	owner_from    how the owner is known: bpf (the kernel side's per-socket
//	              record), syscall (the event ran in the owner's own
//	              syscall: socket, accept, connect, listen, close),
//	              listener (a connection not yet accepted: its listener's
//	              owner), inventory (the fd table when tracing started)
//	cur_pid       the process on the CPU when the event fired (0: none,
//	              e.g. a softirq on an idle CPU)
//	netid         tcp, udp, mptcp, raw, ... (ss's Netid)
//	family        inet or inet6
//	sock_type     stream, dgram, raw, seqpacket (birth, accept)
//	local, peer   ENDPOINT; release events get the local one from the
//	              socket's earlier events
//	old_state     state events: the state left
//	state         state events: the state entered; others: the state then
//	since_ns      CLOCK_MONOTONIC of the socket's previous transition
//	old_state_ns  state events: time spent in old_state
//	state_ns      release, destroy, reset: time spent in state so far
//	fd, inode     birth, accept
//	exiting       release: the owner was exiting
//	lost          lost: events lost since "since" (wall clock)
//	events        end: event records in the recording
//	lost_total    end: events lost in all
type traceRecord struct {
	Type       string         `json:"type"`
	Time       string         `json:"time,omitempty"`
	TS         uint64         `json:"ts_ns,omitempty"`
	Cookie     uint64         `json:"cookie,omitempty"`
	NetNS      uint32         `json:"netns,omitempty"`
	PID        uint32         `json:"pid,omitempty"`
	Comm       string         `json:"comm,omitempty"`
	OwnerFrom  string         `json:"owner_from,omitempty"`
	CurPID     *uint32        `json:"cur_pid,omitempty"`
	Netid      string         `json:"netid,omitempty"`
	Family     string         `json:"family,omitempty"`
	SockType   string         `json:"sock_type,omitempty"`
	Local      *traceEndpoint `json:"local,omitempty"`
	Peer       *traceEndpoint `json:"peer,omitempty"`
	OldState   string         `json:"old_state,omitempty"`
	State      string         `json:"state,omitempty"`
	SinceNS    uint64         `json:"since_ns,omitempty"`
	OldStateNS *uint64        `json:"old_state_ns,omitempty"`
	StateNS    *uint64        `json:"state_ns,omitempty"`
	FD         *uint32        `json:"fd,omitempty"`
	Inode      uint32         `json:"inode,omitempty"`
	Exiting    bool           `json:"exiting,omitempty"`
	Lost       uint64         `json:"lost,omitempty"`
	Since      string         `json:"since,omitempty"`
	Events     *uint64        `json:"events,omitempty"`
	LostTotal  *uint64        `json:"lost_total,omitempty"`
}

// Record types.
const (
	recBirth   = "birth"
	recAccept  = "accept"
	recState   = "state"
	recRelease = "release"
	recDestroy = "destroy"
	recReset   = "reset"
	recLost    = "lost"
	recEnd     = "end"
)

// isTraceEvent says whether a record type is a socket event: one of the
// above, or another kind the tracer names (retransmit, error, ...: a
// lowercase word) that timeline shows as a mark on the socket's track.
func isTraceEvent(typ string) bool {
	switch typ {
	case recBirth, recAccept, recState, recRelease, recDestroy, recReset:
		return true
	case recLost, recEnd, "":
		return false
	}
	if len(typ) > 32 {
		return false
	}
	for i, c := range typ {
		if !(c >= 'a' && c <= 'z' || i > 0 && c == '-') {
			return false
		}
	}
	return true
}

// traceStateNames are the kernel's TCP states (include/net/tcp_states.h) as
// trace prints them.
var traceStateNames = [...]string{
	1: "ESTABLISHED", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
	6: "TIME-WAIT", 7: "CLOSE", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
	11: "CLOSING", 12: "NEW-SYN-RECV", 13: "BOUND-INACTIVE",
}

// traceStateName names a kernel TCP state.
func traceStateName(st uint8) string {
	if int(st) < len(traceStateNames) && traceStateNames[st] != "" {
		return traceStateNames[st]
	}
	return fmt.Sprintf("STATE-%d", st)
}

// validTraceState says whether a recording's state name is one trace
// writes.
func validTraceState(s string) bool {
	for _, n := range traceStateNames {
		if n != "" && n == s {
			return true
		}
	}
	if n, ok := strings.CutPrefix(s, "STATE-"); ok && n != "" && len(n) <= 3 {
		for _, c := range n {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	return false
}

// recTimeLayout is RFC 3339 with microseconds, as trace prints times.
const recTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// recordWriter writes a recording.
type recordWriter struct {
	w      *bufio.Writer
	events uint64
	lost   uint64
	buf    bytes.Buffer
	enc    *json.Encoder
}

func newRecordWriter(w io.Writer) *recordWriter {
	rw := &recordWriter{w: bufio.NewWriterSize(w, 64<<10)}
	rw.enc = json.NewEncoder(&rw.buf)
	rw.enc.SetEscapeHTML(false)
	return rw
}

func (rw *recordWriter) line(v any) error {
	rw.buf.Reset()
	if err := rw.enc.Encode(v); err != nil { // Encode ends the line
		return err
	}
	_, err := rw.w.Write(rw.buf.Bytes())
	return err
}

// Header writes the first line.
func (rw *recordWriter) Header(h *recHeader) error {
	h.Format, h.Version = recordingFormat, recordingVersion
	return rw.line(h)
}

// Record writes one event or lost record.
func (rw *recordWriter) Record(r *traceRecord) error {
	switch {
	case r.Type == recLost:
		rw.lost += r.Lost
	case isTraceEvent(r.Type):
		rw.events++
	default:
		return fmt.Errorf("internal error: recording a %q record", r.Type)
	}
	return rw.line(r)
}

// End writes the last line and flushes.
func (rw *recordWriter) End(now time.Time, ts uint64) error {
	ev, lost := rw.events, rw.lost
	if err := rw.line(&traceRecord{Type: recEnd, Time: now.Format(recTimeLayout), TS: ts, Events: &ev, LostTotal: &lost}); err != nil {
		return err
	}
	return rw.w.Flush()
}

// recording is a recording read back.
type recording struct {
	Header recHeader
	// Records are the events and lost records, in order.
	Records []traceRecord
	End     traceRecord
}

// recordingError is one failure to read a recording: the file, the line,
// what is wrong.
type recordingError struct {
	name string
	line int
	msg  string
}

func (e *recordingError) Error() string {
	return fmt.Sprintf("reading %s: line %d: %s", e.name, e.line, e.msg)
}

// readRecording reads and checks a whole recording. name is the file's
// name for error messages. Any defect (not a recording, another version,
// a line that is not a valid record, a file cut short) is one error
// naming the file and the line.
func readRecording(r io.Reader, name string) (*recording, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	rec := &recording{}
	var (
		lineNo            int
		events, lostTotal uint64
		ended             bool
	)
	fail := func(format string, args ...any) error {
		return &recordingError{name: name, line: lineNo, msg: fmt.Sprintf(format, args...)}
	}
	for {
		line, err := readRecordingLine(br)
		if err == io.EOF {
			break
		}
		lineNo++
		if errors.Is(err, errRecordingLineTooLong) {
			return nil, fail("longer than %d bytes: not a recording line", recordingMaxLine)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			if lineNo == 1 {
				return nil, fail("not an sstrace recording (no complete first line)")
			}
			return nil, fail("truncated: the file ends in the middle of a line")
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if ended {
			return nil, fail("data after the end record")
		}
		if lineNo == 1 {
			if err := parseRecordingHeader(line, &rec.Header); err != nil {
				return nil, fail("%v", err)
			}
			continue
		}
		var tr traceRecord
		if err := decodeRecordingLine(line, &tr); err != nil {
			return nil, fail("not a record: %v", err)
		}
		if err := checkTraceRecord(&tr); err != nil {
			return nil, fail("%v", err)
		}
		switch {
		case tr.Type == recEnd:
			if *tr.Events != events || *tr.LostTotal != lostTotal {
				return nil, fail("the end record counts %d events and %d lost, the file holds %d and %d: records are missing", *tr.Events, *tr.LostTotal, events, lostTotal)
			}
			rec.End = tr
			ended = true
			continue
		case tr.Type == recLost:
			lostTotal += tr.Lost
		default:
			events++
		}
		rec.Records = append(rec.Records, tr)
	}
	switch {
	case lineNo == 0:
		return nil, fmt.Errorf("reading %s: empty file: not an sstrace recording", name)
	case !ended:
		return nil, &recordingError{name: name, line: lineNo, msg: fmt.Sprintf("truncated: no end record after %d events (was the trace killed?)", events)}
	}
	return rec, nil
}

var errRecordingLineTooLong = errors.New("line too long")

// readRecordingLine returns the next line without its '\n'; io.EOF at a clean end,
// io.ErrUnexpectedEOF for a last line without '\n'.
func readRecordingLine(br *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		frag, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, frag...)
			if len(long) > recordingMaxLine {
				return nil, errRecordingLineTooLong
			}
			continue
		}
		if long != nil {
			frag = append(long, frag...)
		}
		if len(frag) > recordingMaxLine+1 {
			return nil, errRecordingLineTooLong
		}
		switch {
		case err == io.EOF && len(frag) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		return frag[:len(frag)-1], nil
	}
}

// decodeRecordingLine decodes one JSON object that must fill the whole line.
func decodeRecordingLine(line []byte, v any) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return errors.New("empty line")
	}
	if line[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

func parseRecordingHeader(line []byte, h *recHeader) error {
	// The format and version first, alone: a newer version may have
	// changed everything else.
	var probe struct {
		Format  *string `json:"format"`
		Version *int    `json:"version"`
	}
	if err := decodeRecordingLine(line, &probe); err != nil || probe.Format == nil || *probe.Format != recordingFormat {
		return errors.New("not an sstrace recording (the first line is not its header)")
	}
	if probe.Version == nil {
		return errors.New("the header has no version")
	}
	if *probe.Version != recordingVersion {
		return fmt.Errorf("recording format version %d; this sstrace reads version %d", *probe.Version, recordingVersion)
	}
	if err := decodeRecordingLine(line, h); err != nil {
		return fmt.Errorf("bad header: %v", err)
	}
	if h.StartNS == 0 || h.Start.IsZero() {
		return errors.New("bad header: no start time")
	}
	if h.BootTime.IsZero() {
		return errors.New("bad header: no boot time")
	}
	return nil
}

// checkTraceRecord validates what timeline relies on.
func checkTraceRecord(r *traceRecord) error {
	switch {
	case r.Type == "":
		return errors.New("record without a type")
	case r.Type == recEnd:
		if r.Events == nil || r.LostTotal == nil {
			return errors.New("end record without its counts")
		}
		return nil
	case r.Type == recLost:
		if r.Lost == 0 {
			return errors.New("lost record without a count")
		}
		for _, t := range []string{r.Time, r.Since} {
			if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
				return fmt.Errorf("lost record: bad time %q", t)
			}
		}
		return nil
	case !isTraceEvent(r.Type):
		return fmt.Errorf("unknown record type %q", r.Type)
	}
	if r.TS == 0 {
		return fmt.Errorf("%s event without ts_ns", r.Type)
	}
	if r.State != "" && !validTraceState(r.State) {
		return fmt.Errorf("%s event: unknown state %q", r.Type, r.State)
	}
	if r.OldState != "" && !validTraceState(r.OldState) {
		return fmt.Errorf("%s event: unknown old_state %q", r.Type, r.OldState)
	}
	if r.Type == recState && (r.State == "" || r.OldState == "") {
		return errors.New("state event without old_state and state")
	}
	for _, ep := range []*traceEndpoint{r.Local, r.Peer} {
		if ep == nil {
			continue
		}
		if _, err := netip.ParseAddr(ep.Addr); err != nil {
			return fmt.Errorf("%s event: bad address %q", r.Type, ep.Addr)
		}
	}
	return nil
}

// RecordLine writes one event or lost record already encoded as its line
// (with its '\n'): trace encodes each record once for its output and the
// recording. lost is a lost record's count, 0 for an event.
func (rw *recordWriter) RecordLine(line []byte, lost uint64) error {
	if lost > 0 {
		rw.lost += lost
	} else {
		rw.events++
	}
	_, err := rw.w.Write(line)
	return err
}
