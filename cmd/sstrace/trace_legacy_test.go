package main

// The encoding/json and fmt versions of trace's output, as trace printed it
// before it had its own encoder (traceenc.go): kept here only to check that
// both give the same bytes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// legacyOwner is the owner as the legacy path named it.
func legacyOwner(o *sockOwner) traceOwner {
	comm := o.Comm[:]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	return traceOwner{PID: o.PID, Comm: string(comm), From: o.From}
}

// legacyJSON is an event's `trace -j` line.
func legacyJSON(ev *tracer.Event, owner *sockOwner, clk traceClock) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	r := makeRecord(ev, legacyOwner(owner), clk)
	if err := enc.Encode(&r); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// legacyText is an event's text line.
func legacyText(ev *tracer.Event, owner *sockOwner, e *traceEncoder) []byte {
	r := makeRecord(ev, legacyOwner(owner), e.clk)
	return []byte(traceLine(&r, traceWhen(e.absolute, e.clk, ev.TS, e.start), e.showNetns) + "\n")
}

// legacyLost is a lost record's line, JSON or text.
func legacyLost(n uint64, now, since time.Time, asJSON bool) []byte {
	if !asJSON {
		return []byte(traceLostLine(n, since) + "\n")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	r := traceRecord{Type: recLost, Time: now.Format(recTimeLayout), Lost: n, Since: since.Format(recTimeLayout)}
	if err := enc.Encode(&r); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// traceNetid names the socket's table as ss does.
func traceNetid(family uint16, typ uint8, protocol uint16) string {
	if typ == unix.SOCK_RAW {
		return "raw"
	}
	switch protocol {
	case traceProtoTCP:
		return "tcp"
	case traceProtoUDP:
		return "udp"
	case traceProtoMPTCP:
		return "mptcp"
	case unix.IPPROTO_UDPLITE:
		return "udplite"
	case unix.IPPROTO_SCTP:
		return "sctp"
	case unix.IPPROTO_DCCP:
		return "dccp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmp6"
	}
	return "proto-" + strconv.Itoa(int(protocol))
}

func traceSockType(typ uint8) string {
	switch typ {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "dgram"
	case unix.SOCK_RAW:
		return "raw"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	}
	return "type-" + strconv.Itoa(int(typ))
}

func traceEndpointOf(ap netip.AddrPort) *traceEndpoint {
	if !ap.IsValid() {
		return nil
	}
	return &traceEndpoint{Addr: ap.Addr().String(), Port: ap.Port()}
}

// makeRecord is the JSON record of an attributed event.
func makeRecord(ev *tracer.Event, owner traceOwner, clk traceClock) traceRecord {
	typ := traceKindName(ev.Kind)
	cur := ev.CurPID
	r := traceRecord{
		Type:   typ,
		Time:   clk.wall(ev.TS).Format(recTimeLayout),
		TS:     ev.TS,
		Cookie: ev.Cookie,
		NetNS:  ev.NetNS,
		CurPID: &cur,
		Netid:  traceNetid(ev.Family, ev.Type, ev.Protocol),
		Local:  traceEndpointOf(ev.Local),
		Peer:   traceEndpointOf(ev.Peer),
	}
	if ev.Family == unix.AF_INET6 {
		r.Family = "inet6"
	} else {
		r.Family = "inet"
	}
	if owner.PID != 0 {
		r.PID, r.Comm, r.OwnerFrom = owner.PID, owner.Comm, owner.From
	}
	tcpLike := ev.Protocol == traceProtoTCP || ev.Protocol == traceProtoMPTCP
	switch ev.Kind {
	case tracer.KindBirth, tracer.KindAccept:
		fd := ev.FD
		r.FD, r.Inode, r.SockType = &fd, ev.Inode, traceSockType(ev.Type)
		if tcpLike {
			r.State = traceStateName(ev.NewState)
		}
	case tracer.KindState:
		r.OldState, r.State = traceStateName(ev.OldState), traceStateName(ev.NewState)
	default:
		if tcpLike {
			r.State = traceStateName(ev.NewState)
		}
		r.Exiting = ev.Exiting
	}
	if ev.Since != 0 && ev.Since <= ev.TS {
		r.SinceNS = ev.Since
		d := ev.TS - ev.Since
		switch ev.Kind {
		case tracer.KindState:
			r.OldStateNS = &d
		case tracer.KindRelease, tracer.KindDestroy, tracer.KindReset:
			r.StateNS = &d
		}
	}
	return r
}

// traceWhat is an event's last column.
func traceWhat(r *traceRecord) string {
	var b strings.Builder
	switch r.Type {
	case recBirth, recAccept:
		if r.Type == recBirth {
			b.WriteString("born")
		} else {
			b.WriteString("accepted")
		}
		if r.FD != nil {
			fmt.Fprintf(&b, " fd %d", *r.FD)
		}
		if r.Type == recAccept && r.State != "" {
			b.WriteString(" in " + r.State)
		}
	case recState:
		b.WriteString(r.OldState + " → " + r.State)
		if r.OldStateNS != nil {
			fmt.Fprintf(&b, "  (%s %s)", r.OldState, traceDur(*r.OldStateNS))
		}
	case recRelease, recDestroy, recReset:
		switch r.Type {
		case recRelease:
			b.WriteString("fd closed")
		case recDestroy:
			b.WriteString("destroyed")
		default:
			b.WriteString("reset received")
		}
		if r.State != "" {
			b.WriteString(" in " + r.State)
			if r.StateNS != nil {
				fmt.Fprintf(&b, "  (%s %s)", r.State, traceDur(*r.StateNS))
			}
		}
		if r.Exiting {
			b.WriteString(" (owner exiting)")
		}
	default:
		b.WriteString(r.Type)
		if r.State != "" {
			b.WriteString(" in " + r.State)
		}
	}
	return b.String()
}

// traceLine is an event's text line (no newline). Fixed columns: time,
// [netns,] owner, netid, local → peer, what happened.
func traceLine(r *traceRecord, when string, showNetns bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s ", when)
	if showNetns {
		ns := "-"
		if r.NetNS != 0 {
			ns = strconv.FormatUint(uint64(r.NetNS), 10)
		}
		fmt.Fprintf(&b, "%-10s ", ns)
	}
	fmt.Fprintf(&b, "%-22s %-5s %21s → %-21s %s", traceOwnerText(r.PID, r.Comm), r.Netid,
		traceAddr(r.Local), traceAddr(r.Peer), traceWhat(r))
	return b.String()
}

// traceLostLine reports lost events inline.
func traceLostLine(n uint64, since time.Time) string {
	return fmt.Sprintf("-- lost %d events (ring buffer full) since %s --", n, since.Format("15:04:05.000000"))
}
