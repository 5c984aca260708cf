package snapshot

import (
	"testing"
	"time"

	"sstrace/tracer"
)

func inv(cookie uint64, pid, fd uint32, state uint8, used bool) tracer.FD {
	return tracer.FD{Cookie: cookie, PID: pid, FD: fd, Family: afInet, Protocol: protoTCP, State: state, WasUsed: used}
}

func TestLeakTracker(t *testing.T) {
	const sec = uint64(time.Second)
	l := NewLeakTracker(0)
	birth := func(cookie uint64, ts uint64, top uint64) {
		// Each its own event, as decoded from its own record: equal
		// frames are the same stack.
		stack := tracer.MakeStack([]uint64{top, 0x401000}, 0x400000)
		l.Apply(&tracer.Event{Kind: tracer.KindBirth, Cookie: cookie, TS: ts, PID: 10, FD: uint32(cookie), Family: afInet, Protocol: protoTCP, Stack: stack})
	}
	birth(1, 1*sec, 7) // never used: a leak
	birth(2, 1*sec, 7) // connects: not a leak
	l.Apply(&tracer.Event{Kind: tracer.KindState, Cookie: 2, OldState: StateSynSent, NewState: StateEstablished})
	birth(3, 9*sec, 7) // too young at t=10s with min-age 5s
	birth(4, 1*sec, 8) // failed connect, back in CLOSE: a leak
	l.Apply(&tracer.Event{Kind: tracer.KindState, Cookie: 4, OldState: StateClose, NewState: StateSynSent})
	l.Apply(&tracer.Event{Kind: tracer.KindState, Cookie: 4, OldState: StateSynSent, NewState: StateClose})
	l.Apply(&tracer.Event{Kind: tracer.KindState, Cookie: 50, OldState: StateEstablished, NewState: StateCloseWait, TS: 2 * sec})

	got := l.Report([]tracer.FD{
		inv(1, 10, 1, StateClose, false),
		inv(2, 10, 2, StateClose, true),
		inv(3, 10, 3, StateClose, false),
		inv(4, 10, 4, StateClose, false),
		inv(40, 11, 5, StateClose, false),    // before tracing, never used
		inv(41, 11, 6, StateClose, true),     // before tracing, was used
		inv(50, 11, 7, StateCloseWait, true), // CLOSE-WAIT since 2s
		inv(51, 11, 8, StateEstablished, true),
		{Cookie: 60, Family: 1, Protocol: 0, State: StateClose}, // unix
	}, 10*sec, 5*time.Second)
	byCookie := map[uint64]LeakedSocket{}
	for _, ls := range got {
		byCookie[ls.Cookie] = ls
	}
	for _, c := range []uint64{1, 4, 40, 50} {
		if _, ok := byCookie[c]; !ok {
			t.Errorf("socket %d not reported", c)
		}
	}
	for _, c := range []uint64{2, 3, 41, 51, 60} {
		if _, ok := byCookie[c]; ok {
			t.Errorf("socket %d reported", c)
		}
	}
	if len(got) != 4 {
		t.Fatalf("%d leaks: %+v", len(got), got)
	}
	if byCookie[1].Birth == nil || byCookie[1].Age != 9*time.Second || byCookie[40].Birth != nil || byCookie[40].Age != 10*time.Second {
		t.Errorf("ages/births: %+v %+v", byCookie[1], byCookie[40])
	}
	if byCookie[50].Class != ClassCloseWait || byCookie[50].Age != 8*time.Second {
		t.Errorf("close-wait: %+v", byCookie[50])
	}
	groups := GroupLeaks(got)
	// pid 10 stack 7 {1}, pid 10 stack 8 {4}, pid 11 before tracing {40}, pid 11 close-wait {50}
	if len(groups) != 4 {
		t.Errorf("%d groups: %+v", len(groups), groups)
	}
	for _, g := range groups {
		if want := g.PID == 10; g.Stack.Captured() != want {
			t.Errorf("group of pid %d (%s): stack captured %v, want %v", g.PID, g.Class, g.Stack.Captured(), want)
		}
	}

	// Released while the process exits, never used: leaked until exit.
	l.Apply(&tracer.Event{Kind: tracer.KindRelease, Cookie: 1, NewState: StateClose, Exiting: true, PID: 10, TS: 12 * sec})
	l.Apply(&tracer.Event{Kind: tracer.KindRelease, Cookie: 2, NewState: StateClose, Exiting: true, PID: 10})
	l.Apply(&tracer.Event{Kind: tracer.KindRelease, Cookie: 3, NewState: StateClose, PID: 10}) // closed normally
	if ax := l.AtExit(); len(ax) != 1 || ax[0].Cookie != 1 || ax[0].Age != 11*time.Second {
		t.Errorf("at exit: %+v", ax)
	}
	if l.Tracked() != 1 { // only 4 remains
		t.Errorf("%d sockets still tracked after their deaths", l.Tracked())
	}
}
