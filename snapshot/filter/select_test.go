package filter

import (
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
)

func opts(names ...string) []Opt {
	var o []Opt
	for _, n := range names {
		o = append(o, Opt{Name: n})
	}
	return o
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []Opt
		states    []StateArg
		netid     bool
		state     bool
		wantDBs   []DB
		notDBs    []DB
		states32  uint32
		preferred int
	}{
		{name: "default", netid: true, state: true, wantDBs: []DB{TCP, UDP, UnixStream, Netlink}, states32: StatesConn},
		{name: "-t", opts: opts("t"), netid: false, state: true, wantDBs: []DB{TCP}, notDBs: []DB{UDP}, states32: StatesConn},
		{name: "-u", opts: opts("u"), netid: false, state: false, wantDBs: []DB{UDP}, states32: 1 << stEstablished},
		{name: "-tl", opts: opts("t", "l"), state: true, wantDBs: []DB{TCP}, states32: 1<<stListen | 1<<stClose},
		{name: "-la", opts: opts("l", "a"), netid: true, state: true, states32: StatesAll},
		{name: "-al", opts: opts("a", "l"), netid: true, state: true, states32: 1<<stListen | 1<<stClose},
		{name: "-x", opts: opts("x"), netid: true, state: true, wantDBs: []DB{UnixStream, UnixDgram, UnixSeq}, notDBs: []DB{TCP}, preferred: AFUnix},
		{name: "-4", opts: opts("4"), netid: true, state: true, wantDBs: []DB{TCP, UDP, RAW}, notDBs: []DB{UnixStream}, preferred: AFInet},
		{name: "-t state established", opts: opts("t"), states: []StateArg{{Name: "established"}}, state: false, wantDBs: []DB{TCP}, states32: 1 << stEstablished},
		{name: "-t exclude listening", opts: opts("t"), states: []StateArg{{Name: "listening", Exclude: true}}, state: true, states32: StatesAll &^ (1 << stListen)},
		{name: "-A tcp,udp", opts: []Opt{{Name: "A", Arg: "tcp,udp"}}, netid: true, state: true, wantDBs: []DB{TCP, UDP}, notDBs: []DB{UnixStream}, states32: StatesConn},
		{name: "-A all,!tcp", opts: []Opt{{Name: "A", Arg: "all,!tcp"}}, netid: true, state: true, wantDBs: []DB{UDP}, notDBs: []DB{TCP}},
		{name: "-f inet6", opts: []Opt{{Name: "f", Arg: "inet6"}}, netid: true, state: true, wantDBs: []DB{TCP, UDP}, preferred: AFInet6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := Select(tc.opts, tc.states)
			if err != nil {
				t.Fatal(err)
			}
			if sel.ShowNetid() != tc.netid || sel.ShowState() != tc.state {
				t.Errorf("netid %v state %v, want %v %v", sel.ShowNetid(), sel.ShowState(), tc.netid, tc.state)
			}
			for _, db := range tc.wantDBs {
				if !sel.Has(db) {
					t.Errorf("table %d not selected", db)
				}
			}
			for _, db := range tc.notDBs {
				if sel.Has(db) {
					t.Errorf("table %d selected", db)
				}
			}
			if tc.states32 != 0 && sel.States != tc.states32 {
				t.Errorf("states %#x, want %#x", sel.States, tc.states32)
			}
			if sel.Preferred != tc.preferred {
				t.Errorf("preferred family %d, want %d", sel.Preferred, tc.preferred)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	if _, err := Select([]Opt{{Name: "f", Arg: "inet7"}}, nil); err == nil {
		t.Error("-f inet7 accepted")
	}
	if _, err := Select([]Opt{{Name: "A", Arg: "tcp,bogus"}}, nil); err == nil {
		t.Error("-A bogus accepted")
	}
	if _, err := Select(nil, []StateArg{{Name: "establised"}}); err == nil {
		t.Error("state establised accepted")
	}
}

// ss's dump order: -6 last means IPv6 only, -4 last IPv4 only (even with
// both families selected), otherwise v4 then v6; UDP before TCP.
func TestListRequestOrder(t *testing.T) {
	for _, tc := range []struct {
		opts []Opt
		want []snapshot.InetDump
	}{
		{opts("t", "u"), []snapshot.InetDump{{Family: AFInet, Protocol: unix.IPPROTO_UDP}, {Family: AFInet6, Protocol: unix.IPPROTO_UDP}, {Family: AFInet, Protocol: unix.IPPROTO_TCP}, {Family: AFInet6, Protocol: unix.IPPROTO_TCP}}},
		{opts("t", "6"), []snapshot.InetDump{{Family: AFInet6, Protocol: unix.IPPROTO_TCP}}},
		{opts("t", "6", "4"), []snapshot.InetDump{{Family: AFInet, Protocol: unix.IPPROTO_TCP}}},
	} {
		sel, err := Select(tc.opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := sel.ListRequest().Inet
		if len(got) != len(tc.want) {
			t.Fatalf("%v: dumps %v, want %v", tc.opts, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: dumps %v, want %v", tc.opts, got, tc.want)
			}
		}
	}
}
