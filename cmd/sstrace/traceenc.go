package main

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"sstrace/cmd/sstrace/render"
	"sstrace/tracer"
)

// trace prints every event of a churning host: at a few hundred thousand
// events a second, encoding/json's reflection and fmt's verbs cost more than
// the rest of the reader together (and their garbage a collector fighting
// the workload for the CPU). traceEncoder appends the same bytes to a
// caller's buffer instead, allocating nothing: the JSON that encoding/json
// makes of traceRecord (SetEscapeHTML(false), as trace has always printed
// it) and the text line trace prints. trace_legacy_test.go keeps the
// encoding/json and fmt versions and checks both give the same bytes, over
// generated events and under fuzzing.
type traceEncoder struct {
	clk       traceClock
	start     uint64 // CLOCK_MONOTONIC ns of the trace's start: times are relative to it
	absolute  bool   // -T: wall-clock times
	showNetns bool   // the netns column (no --netns)

	// The last second appendWall formatted: the date and time up to the
	// second, and the zone offset (the same for a whole second).
	wallSec   int64
	wallValid bool
	wallDate  []byte
	wallZone  []byte
}

// appendWall appends an event's wall-clock time in recTimeLayout, as
// clk.wall(ts).Format(recTimeLayout) does. A churning host has thousands of
// events a second: all but the first of each second only append the
// microseconds between the cached date and zone.
func (e *traceEncoder) appendWall(b []byte, ts uint64) []byte {
	t := e.clk.wall(ts)
	if sec := t.Unix(); !e.wallValid || sec != e.wallSec {
		e.wallDate = t.AppendFormat(e.wallDate[:0], recDateLayout)
		e.wallZone = t.AppendFormat(e.wallZone[:0], recZoneLayout)
		e.wallSec, e.wallValid = sec, true
	}
	b = append(b, e.wallDate...)
	b = append(b, '.')
	b = appendDigits6(b, uint64(t.Nanosecond())/1e3)
	return append(b, e.wallZone...)
}

// recTimeLayout cut around its fraction of a second: appendWall's parts.
const (
	recDateLayout = "2006-01-02T15:04:05"
	recZoneLayout = "Z07:00"
)

// appendDigits6 appends v < 1e6 as six digits, zeros first.
func appendDigits6(b []byte, v uint64) []byte {
	for div := uint64(100000); div > 0; div /= 10 {
		b = append(b, byte('0'+v/div%10))
	}
	return b
}

// sockOwner is who a socket belongs to, and how that is known (see
// traceRecord's owner_from); PID 0 when not known. The command name is
// kept as the kernel gives it (NUL-padded) so that naming an owner per
// event allocates nothing.
type sockOwner struct {
	PID  uint32
	Comm [16]byte
	From string
}

// commLen is the length of a kernel command name: up to its first NUL.
func commLen(c *[16]byte) int {
	for i, b := range c {
		if b == 0 {
			return i
		}
	}
	return len(c)
}

// traceFacts is what a line says of an event, whatever its form: the
// fields of traceRecord that depend on the event's kind.
type traceFacts struct {
	typ        string
	state      string // "" when not shown
	oldState   string
	withFD     bool // fd (and inode, sock_type): births and accepts
	since      uint64
	oldStateNS uint64 // valid with hasOldNS
	stateNS    uint64 // valid with hasStateNS
	hasOldNS   bool
	hasStateNS bool
	exiting    bool
}

func eventFacts(ev *tracer.Event) traceFacts {
	f := traceFacts{typ: traceKindName(ev.Kind)}
	tcpLike := ev.Protocol == traceProtoTCP || ev.Protocol == traceProtoMPTCP
	switch ev.Kind {
	case tracer.KindBirth, tracer.KindAccept:
		f.withFD = true
		if tcpLike {
			f.state = traceStateName(ev.NewState)
		}
	case tracer.KindState:
		f.oldState, f.state = traceStateName(ev.OldState), traceStateName(ev.NewState)
	default:
		if tcpLike {
			f.state = traceStateName(ev.NewState)
		}
		f.exiting = ev.Exiting
	}
	if ev.Since != 0 && ev.Since <= ev.TS {
		f.since = ev.Since
		d := ev.TS - ev.Since
		switch ev.Kind {
		case tracer.KindState:
			f.oldStateNS, f.hasOldNS = d, true
		case tracer.KindRelease, tracer.KindDestroy, tracer.KindReset:
			f.stateNS, f.hasStateNS = d, true
		}
	}
	return f
}

// appendJSON appends the event's `trace -j` line (with its '\n'): the JSON
// of traceRecord, field for field in its order and with its omitempty
// rules.
func (e *traceEncoder) appendJSON(b []byte, ev *tracer.Event, owner *sockOwner) []byte {
	f := eventFacts(ev)
	b = append(b, `{"type":`...)
	b = appendJSONString(b, f.typ)
	b = append(b, `,"time":"`...)
	b = e.appendWall(b, ev.TS)
	b = append(b, '"')
	b = appendJSONUint(b, `,"ts_ns":`, ev.TS)
	b = appendJSONUint(b, `,"cookie":`, ev.Cookie)
	b = appendJSONUint(b, `,"netns":`, uint64(ev.NetNS))
	if owner.PID != 0 {
		b = appendJSONUint(b, `,"pid":`, uint64(owner.PID))
		if n := commLen(&owner.Comm); n > 0 {
			b = append(b, `,"comm":`...)
			b = appendJSONString(b, string(owner.Comm[:n]))
		}
		if owner.From != "" {
			b = append(b, `,"owner_from":`...)
			b = appendJSONString(b, owner.From)
		}
	}
	b = append(b, `,"cur_pid":`...)
	b = strconv.AppendUint(b, uint64(ev.CurPID), 10)
	b = append(b, `,"netid":"`...)
	b = appendNetid(b, ev.Type, ev.Protocol)
	if ev.Family == unix.AF_INET6 {
		b = append(b, `","family":"inet6"`...)
	} else {
		b = append(b, `","family":"inet"`...)
	}
	if f.withFD {
		b = append(b, `,"sock_type":"`...)
		b = appendSockType(b, ev.Type)
		b = append(b, '"')
	}
	b = appendJSONEndpoint(b, `,"local":`, ev.Local)
	b = appendJSONEndpoint(b, `,"peer":`, ev.Peer)
	if f.oldState != "" {
		b = append(b, `,"old_state":`...)
		b = appendJSONString(b, f.oldState)
	}
	if f.state != "" {
		b = append(b, `,"state":`...)
		b = appendJSONString(b, f.state)
	}
	b = appendJSONUint(b, `,"since_ns":`, f.since)
	if f.hasOldNS {
		b = append(b, `,"old_state_ns":`...)
		b = strconv.AppendUint(b, f.oldStateNS, 10)
	}
	if f.hasStateNS {
		b = append(b, `,"state_ns":`...)
		b = strconv.AppendUint(b, f.stateNS, 10)
	}
	if f.withFD {
		b = append(b, `,"fd":`...)
		b = strconv.AppendUint(b, uint64(ev.FD), 10)
		b = appendJSONUint(b, `,"inode":`, uint64(ev.Inode))
	}
	if f.exiting {
		b = append(b, `,"exiting":true`...)
	}
	return append(b, "}\n"...)
}

// appendJSONUint appends a number field that omitempty leaves out when 0.
func appendJSONUint(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, key...)
	return strconv.AppendUint(b, v, 10)
}

// appendJSONEndpoint appends a traceEndpoint field: left out for an
// invalid address (traceEndpointOf's nil).
func appendJSONEndpoint(b []byte, key string, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return b
	}
	b = append(b, key...)
	b = append(b, `{"addr":`...)
	if a := ap.Addr(); a.Zone() == "" {
		// Digits, dots and colons only: nothing to escape.
		b = append(b, '"')
		b = a.AppendTo(b)
		b = append(b, '"')
	} else {
		b = appendJSONString(b, a.String())
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendUint(b, uint64(ap.Port()), 10)
	return append(b, '}')
}

// appendLostJSON appends a lost record's line.
func appendLostJSON(b []byte, n uint64, now, since time.Time) []byte {
	b = append(b, `{"type":"lost","time":"`...)
	b = now.AppendFormat(b, recTimeLayout)
	b = append(b, '"')
	b = appendJSONUint(b, `,"lost":`, n)
	b = append(b, `,"since":"`...)
	b = since.AppendFormat(b, recTimeLayout)
	return append(b, "\"}\n"...)
}

// appendJSONString appends s as a JSON string the way encoding/json does
// with SetEscapeHTML(false), which is how trace has always written comm:
// '<', '>' and '&' as they are (see render.AppendJSONString).
func appendJSONString(b []byte, s string) []byte { return render.AppendJSONString(b, s, false) }

// appendText appends the event's text line (with its '\n'): fixed columns
// time, [netns,] owner, netid, local → peer, then what happened. Columns
// are padded by runes, as fmt's %-22s pads: a command name may hold any
// bytes.
func (e *traceEncoder) appendText(b []byte, ev *tracer.Event, owner *sockOwner) []byte {
	f := eventFacts(ev)
	col := len(b)
	if e.absolute {
		b = e.appendWall(b, ev.TS)
	} else {
		b = appendTraceOffset(b, ev.TS, e.start)
	}
	b = padRight(b, col, 11)
	b = append(b, ' ')
	if e.showNetns {
		col = len(b)
		if ev.NetNS != 0 {
			b = strconv.AppendUint(b, uint64(ev.NetNS), 10)
		} else {
			b = append(b, '-')
		}
		b = padRight(b, col, 10)
		b = append(b, ' ')
	}
	col = len(b)
	if owner.PID == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendUint(b, uint64(owner.PID), 10)
		b = append(b, '/')
		b = append(b, owner.Comm[:commLen(&owner.Comm)]...)
	}
	b = padRight(b, col, 22)
	b = append(b, ' ')
	col = len(b)
	b = appendNetid(b, ev.Type, ev.Protocol)
	b = padRight(b, col, 5)
	b = append(b, ' ')
	col = len(b)
	b = appendTraceAddr(b, ev.Local)
	b = padLeft(b, col, 21)
	b = append(b, " → "...)
	col = len(b)
	b = appendTraceAddr(b, ev.Peer)
	b = padRight(b, col, 21)
	b = append(b, ' ')
	b = appendTraceWhat(b, ev, &f)
	return append(b, '\n')
}

// appendTraceOffset appends an event's time since the start, as
// traceWhen prints it.
func appendTraceOffset(b []byte, ts, start uint64) []byte {
	var d uint64
	if ts < start {
		b, d = append(b, '-'), start-ts
	} else {
		b, d = append(b, '+'), ts-start
	}
	b = strconv.AppendUint(b, d/1e9, 10)
	b = append(b, '.')
	return appendDigits6(b, d%1e9/1e3)
}

// appendTraceWhat appends an event's last column (traceWhat).
func appendTraceWhat(b []byte, ev *tracer.Event, f *traceFacts) []byte {
	switch f.typ {
	case recBirth, recAccept:
		if f.typ == recBirth {
			b = append(b, "born"...)
		} else {
			b = append(b, "accepted"...)
		}
		b = append(b, " fd "...)
		b = strconv.AppendUint(b, uint64(ev.FD), 10)
		if f.typ == recAccept && f.state != "" {
			b = append(b, " in "...)
			b = append(b, f.state...)
		}
	case recState:
		b = append(b, f.oldState...)
		b = append(b, " → "...)
		b = append(b, f.state...)
		if f.hasOldNS {
			b = appendStateDur(b, f.oldState, f.oldStateNS)
		}
	case recRelease, recDestroy, recReset:
		switch f.typ {
		case recRelease:
			b = append(b, "fd closed"...)
		case recDestroy:
			b = append(b, "destroyed"...)
		default:
			b = append(b, "reset received"...)
		}
		if f.state != "" {
			b = append(b, " in "...)
			b = append(b, f.state...)
			if f.hasStateNS {
				b = appendStateDur(b, f.state, f.stateNS)
			}
		}
		if f.exiting {
			b = append(b, " (owner exiting)"...)
		}
	default:
		b = append(b, f.typ...)
		if f.state != "" {
			b = append(b, " in "...)
			b = append(b, f.state...)
		}
	}
	return b
}

// appendStateDur appends "  (STATE DURATION)".
func appendStateDur(b []byte, state string, ns uint64) []byte {
	b = append(b, "  ("...)
	b = append(b, state...)
	b = append(b, ' ')
	b = appendTraceDur(b, ns)
	return append(b, ')')
}

// appendTraceDur appends traceDur(ns).
func appendTraceDur(b []byte, ns uint64) []byte {
	d := time.Duration(ns)
	switch {
	case d < time.Second:
		b = strconv.AppendFloat(b, float64(ns)/1e6, 'f', 3, 64)
		return append(b, "ms"...)
	case d < time.Minute:
		b = strconv.AppendFloat(b, d.Seconds(), 'f', 3, 64)
		return append(b, 's')
	}
	return append(b, d.Round(time.Millisecond).String()...) // rare: allocates
}

// appendTraceAddr appends an endpoint as traceAddr prints it: "*" for
// what is unspecified, brackets around IPv6 addresses.
func appendTraceAddr(b []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(b, '*')
	}
	a := ap.Addr()
	switch {
	case a.IsUnspecified():
		b = append(b, '*')
		if ap.Port() == 0 {
			return b
		}
	case a.Is6():
		b = append(b, '[')
		b = a.AppendTo(b)
		b = append(b, ']')
	default:
		b = a.AppendTo(b)
	}
	if ap.Port() == 0 {
		return append(b, ":*"...)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

// appendLostText appends traceLostLine's line.
func appendLostText(b []byte, n uint64, since time.Time) []byte {
	b = append(b, "-- lost "...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, " events (ring buffer full) since "...)
	b = since.AppendFormat(b, "15:04:05.000000")
	return append(b, " --\n"...)
}

const padSpaces = "                      " // the widest column's width

// padRight pads b[col:] with spaces to width runes, as fmt's %-Ns.
func padRight(b []byte, col, width int) []byte {
	n := width - utf8.RuneCount(b[col:])
	for n > 0 {
		k := min(n, len(padSpaces))
		b = append(b, padSpaces[:k]...)
		n -= k
	}
	return b
}

// padLeft right-aligns b[col:] in width runes, as fmt's %Ns.
func padLeft(b []byte, col, width int) []byte {
	n := width - utf8.RuneCount(b[col:])
	if n <= 0 {
		return b
	}
	end := len(b)
	for i := 0; i < n; i++ {
		b = append(b, ' ')
	}
	copy(b[col+n:], b[col:end])
	copy(b[col:col+n], padSpaces) // n ≤ width ≤ len(padSpaces)
	return b
}

// appendNetid appends the socket's table as ss names it.
func appendNetid(b []byte, typ uint8, protocol uint16) []byte {
	if typ == unix.SOCK_RAW {
		return append(b, "raw"...)
	}
	switch protocol {
	case traceProtoTCP:
		return append(b, "tcp"...)
	case traceProtoUDP:
		return append(b, "udp"...)
	case traceProtoMPTCP:
		return append(b, "mptcp"...)
	case unix.IPPROTO_UDPLITE:
		return append(b, "udplite"...)
	case unix.IPPROTO_SCTP:
		return append(b, "sctp"...)
	case unix.IPPROTO_DCCP:
		return append(b, "dccp"...)
	case unix.IPPROTO_ICMP:
		return append(b, "icmp"...)
	case unix.IPPROTO_ICMPV6:
		return append(b, "icmp6"...)
	}
	b = append(b, "proto-"...)
	return strconv.AppendUint(b, uint64(protocol), 10)
}

// appendSockType appends the socket's type.
func appendSockType(b []byte, typ uint8) []byte {
	switch typ {
	case unix.SOCK_STREAM:
		return append(b, "stream"...)
	case unix.SOCK_DGRAM:
		return append(b, "dgram"...)
	case unix.SOCK_RAW:
		return append(b, "raw"...)
	case unix.SOCK_SEQPACKET:
		return append(b, "seqpacket"...)
	}
	b = append(b, "type-"...)
	return strconv.AppendUint(b, uint64(typ), 10)
}
