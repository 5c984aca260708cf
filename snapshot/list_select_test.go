package snapshot_test

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/filter"
)

// TestSelectionListRequest checks, for the tables beyond tcp/udp/unix,
// what filter.Selection.ListRequest asks for the command lines of ss.
func TestSelectionListRequest(t *testing.T) {
	const (
		v4 = unix.AF_INET
		v6 = unix.AF_INET6
	)
	mptcp := func(fams ...uint8) []snapshot.InetDump {
		var d []snapshot.InetDump
		for _, f := range fams {
			d = append(d, snapshot.InetDump{Family: f, Protocol: unix.IPPROTO_MPTCP})
		}
		return d
	}
	type want struct {
		netlink, packet bool
		raw             bool
		rawFams         []uint8
		rawProc         []uint8
		mptcp           []snapshot.InetDump // the MPTCP entries of Inet, in order
	}
	for _, tt := range []struct {
		args string // options, then state arguments after "--"
		want want
	}{
		// ss alone: connected states only, so neither netlink nor
		// packet sockets (always UNCONN); raw and MPTCP for both
		// families.
		{"", want{raw: true, rawFams: []uint8{v4, v6}, rawProc: []uint8{v4, v6}, mptcp: mptcp(v4, v6)}},
		{"a", want{netlink: true, packet: true, raw: true, rawFams: []uint8{v4, v6}, rawProc: []uint8{v4, v6}, mptcp: mptcp(v4, v6)}},
		{"l", want{netlink: true, packet: true, raw: true, rawFams: []uint8{v4, v6}, rawProc: []uint8{v4, v6}, mptcp: mptcp(v4, v6)}},
		// -A netlink keeps ss's connected states: nothing.
		{"A=netlink", want{}},
		{"A=netlink a", want{netlink: true}},
		{"f=netlink", want{netlink: true}},
		{"f=netlink -- state established", want{}},
		{"0", want{packet: true}},
		{"f=link", want{packet: true}},
		{"A=packet_raw a", want{packet: true}},
		{"A=p_dgr a", want{packet: true}},
		{"0 -- state listening", want{}},
		{"0 -- exclude listening", want{packet: true}},
		{"w", want{raw: true, rawFams: []uint8{v4, v6}, rawProc: []uint8{v4, v6}}},
		{"w 4", want{raw: true, rawFams: []uint8{v4}, rawProc: []uint8{v4}}},
		{"w 6", want{raw: true, rawFams: []uint8{v6}, rawProc: []uint8{v6}}},
		// The last family option picks the one dumped through
		// sock_diag; the /proc fallback reads every selected family.
		{"w 4 6", want{raw: true, rawFams: []uint8{v6}, rawProc: []uint8{v4, v6}}},
		{"w 6 4", want{raw: true, rawFams: []uint8{v4}, rawProc: []uint8{v4, v6}}},
		{"w 6 0", want{packet: true, raw: true, rawFams: []uint8{v6}, rawProc: []uint8{v6}}},
		{"M", want{mptcp: mptcp(v4, v6)}},
		{"M 6", want{mptcp: mptcp(v6)}},
		{"A=mptcp a", want{mptcp: mptcp(v4, v6)}},
		{"A=inet,!mptcp", want{raw: true, rawFams: []uint8{v4, v6}, rawProc: []uint8{v4, v6}}},
		{"x", want{}},
		{"t", want{}},
	} {
		t.Run(tt.args, func(t *testing.T) {
			opts, states, _ := strings.Cut(tt.args, "--")
			var o []filter.Opt
			for _, f := range strings.Fields(opts) {
				name, arg, _ := strings.Cut(f, "=")
				o = append(o, filter.Opt{Name: name, Arg: arg})
			}
			var st []filter.StateArg
			fs := strings.Fields(states)
			for i := 0; i+1 < len(fs); i += 2 {
				st = append(st, filter.StateArg{Name: fs[i+1], Exclude: fs[i] == "exclude"})
			}
			sel, err := filter.Select(o, st)
			if err != nil {
				t.Fatal(err)
			}
			req := sel.ListRequest()
			var got want
			got.netlink, got.packet = req.Netlink, req.Packet
			got.raw, got.rawFams, got.rawProc = req.RawInet, req.RawFamilies, req.RawProcFamilies
			var order []uint16
			for _, d := range req.Inet {
				if d.Protocol == unix.IPPROTO_MPTCP {
					got.mptcp = append(got.mptcp, d)
				}
				if len(order) == 0 || order[len(order)-1] != d.Protocol {
					order = append(order, d.Protocol)
				}
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			// MPTCP comes last, after udp and tcp, as in ss's main().
			rank := map[uint16]int{unix.IPPROTO_UDP: 0, unix.IPPROTO_TCP: 1, unix.IPPROTO_MPTCP: 2}
			for i := 1; i < len(order); i++ {
				if rank[order[i]] <= rank[order[i-1]] {
					t.Errorf("inet order %v", order)
				}
			}
			if req.States != sel.States {
				t.Errorf("states %#x, selection's %#x", req.States, sel.States)
			}
		})
	}
}
