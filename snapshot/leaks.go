package snapshot

import (
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// Leak classes.
const (
	// ClassNeverConnected: a TCP socket held open by a process in CLOSE that
	// never reached ESTABLISHED or LISTEN (never used, bound only, or a
	// failed connect nobody closed).
	ClassNeverConnected = "never-connected"
	// ClassCloseWait: the peer closed, the application never did.
	ClassCloseWait = "close-wait"
)

// Birth is what the tracer saw when a socket was created.
type Birth struct {
	TS   uint64 // CLOCK_MONOTONIC ns
	PID  uint32
	Comm string
	FD   uint32
	// Stack called socket() (see tracer.Event.Stack); UserRet is the
	// word at the user stack pointer then.
	Stack   tracer.Stack
	UserRet uint64
}

// LeakedSocket is one socket a report counts.
type LeakedSocket struct {
	Cookie uint64
	Inode  uint32
	Family uint8
	Class  string
	// PID, FD and Comm hold it now (or held it until the process exited).
	PID  uint32
	FD   uint32
	Comm string
	// Age is how long it has existed; for sockets created before tracing
	// started it is at least the tracing time (Birth is nil).
	Age   time.Duration
	Birth *Birth
	// AtExit: the process exited with the socket still open.
	AtExit bool
}

type leakRecord struct {
	birth     Birth
	inode     uint32
	family    uint8
	protocol  uint16
	used      bool   // reached ESTABLISHED or LISTEN
	closeWait uint64 // when it entered CLOSE-WAIT (0: not in it)
}

// LeakTracker follows socket lives from tracer events and, with an fd
// inventory, says which sockets are leaks. Memory is bounded by the
// sockets alive: a death forgets its socket.
type LeakTracker struct {
	start   uint64 // when tracing started (CLOCK_MONOTONIC ns)
	recs    map[uint64]*leakRecord
	cwSince map[uint64]uint64 // CLOSE-WAIT entry times of sockets born before tracing
	atExit  []LeakedSocket
}

// NewLeakTracker starts tracking at start (CLOCK_MONOTONIC ns).
func NewLeakTracker(start uint64) *LeakTracker {
	return &LeakTracker{start: start, recs: map[uint64]*leakRecord{}, cwSince: map[uint64]uint64{}}
}

// Tracked is the number of sockets with a record.
func (l *LeakTracker) Tracked() int { return len(l.recs) }

func isTCPLike(protocol uint16) bool { return protocol == protoTCP || protocol == protoMPTCP }

const protoMPTCP = 262

// Apply ingests one event.
func (l *LeakTracker) Apply(ev *tracer.Event) {
	if ev.Cookie == 0 {
		return
	}
	r := l.recs[ev.Cookie]
	switch ev.Kind {
	case tracer.KindBirth:
		if !isTCPLike(ev.Protocol) || (ev.Family != afInet && ev.Family != afInet6) {
			return
		}
		l.recs[ev.Cookie] = &leakRecord{
			birth: Birth{TS: ev.TS, PID: ev.PID, Comm: ev.CommString(), FD: ev.FD,
				Stack: ev.Stack, UserRet: ev.UserRet},
			inode: ev.Inode, family: uint8(ev.Family), protocol: ev.Protocol,
		}
	case tracer.KindState:
		switch ev.NewState {
		case StateEstablished, StateListen:
			if r != nil {
				r.used = true
			}
		case StateCloseWait:
			if r != nil {
				r.closeWait = ev.TS
			} else {
				l.cwSince[ev.Cookie] = ev.TS
			}
		}
		if ev.OldState == StateCloseWait {
			if r != nil {
				r.closeWait = 0
			}
			delete(l.cwSince, ev.Cookie)
		}
	case tracer.KindRelease:
		if r != nil && ev.Exiting && !r.used && ev.NewState == StateClose {
			l.atExit = append(l.atExit, LeakedSocket{
				Cookie: ev.Cookie, Family: r.family, Class: ClassNeverConnected,
				PID: ev.PID, FD: r.birth.FD, Comm: ev.CommString(),
				Age: time.Duration(ev.TS - r.birth.TS), Birth: &r.birth, AtExit: true,
			})
		}
		if r != nil && ev.Exiting && ev.NewState == StateCloseWait {
			since := r.closeWait
			l.atExit = append(l.atExit, LeakedSocket{
				Cookie: ev.Cookie, Family: r.family, Class: ClassCloseWait,
				PID: ev.PID, FD: r.birth.FD, Comm: ev.CommString(),
				Age: time.Duration(ev.TS - since), Birth: &r.birth, AtExit: true,
			})
		}
		delete(l.recs, ev.Cookie)
		delete(l.cwSince, ev.Cookie)
	case tracer.KindDestroy:
		delete(l.recs, ev.Cookie)
		delete(l.cwSince, ev.Cookie)
	}
}

// AtExit returns the sockets that processes still held open when they
// exited, never used (or in CLOSE-WAIT): what `leaks -- CMD` reports.
func (l *LeakTracker) AtExit() []LeakedSocket { return l.atExit }

// Report classifies the sockets an inventory (taken at now) shows held by
// process fds. minAge keeps sockets about to connect out of the report:
// a socket younger than that is not counted, nor one that entered
// CLOSE-WAIT less than minAge ago. Sockets created before tracing started
// count as old as the tracing time.
func (l *LeakTracker) Report(inv []tracer.FD, now uint64, minAge time.Duration) []LeakedSocket {
	var out []LeakedSocket
	traced := time.Duration(now - l.start)
	for i := range inv {
		f := &inv[i]
		if !isTCPLike(f.Protocol) || (f.Family != afInet && f.Family != afInet6) {
			continue
		}
		r := l.recs[f.Cookie]
		ls := LeakedSocket{Cookie: f.Cookie, Inode: f.Inode, Family: uint8(f.Family),
			PID: f.PID, FD: f.FD, Comm: ssComm(f.CommString()), Age: traced}
		if r != nil {
			ls.Birth = &r.birth
			ls.Age = time.Duration(now - r.birth.TS)
		}
		switch {
		case f.State == StateClose && !f.WasUsed && (r == nil || !r.used):
			ls.Class = ClassNeverConnected
			if ls.Age < minAge {
				continue
			}
		case f.State == StateCloseWait:
			ls.Class = ClassCloseWait
			since := l.start
			if r != nil && r.closeWait != 0 {
				since = r.closeWait
			} else if t, ok := l.cwSince[f.Cookie]; ok {
				since = t
			}
			if time.Duration(now-since) < minAge {
				continue
			}
			ls.Age = time.Duration(now - since)
		default:
			continue
		}
		out = append(out, ls)
	}
	return out
}

// InventoryFromOwners stands in for the fd inventory where the kernel has
// none (no bpf_sock_from_file before 5.11): the socket fds a /proc walk
// found (see ProcOwners), classified by what the tracker saw of their
// lives. Only sockets born while tracing are known this way: what else a
// process holds has no record to give its family, protocol or state, and
// is left out.
func (l *LeakTracker) InventoryFromOwners(o Owners) []tracer.FD {
	byInode := make(map[uint32]uint64, len(l.recs))
	for c, r := range l.recs {
		if r.inode != 0 {
			byInode[r.inode] = c
		}
	}
	var out []tracer.FD
	for ino, owners := range o {
		cookie, ok := byInode[ino]
		if !ok {
			continue
		}
		r := l.recs[cookie]
		f := tracer.FD{Inode: ino, Cookie: cookie, Family: uint16(r.family), Type: unix.SOCK_STREAM, Protocol: r.protocol,
			State: StateClose, WasUsed: r.used}
		switch {
		case r.closeWait != 0:
			f.State = StateCloseWait
		case r.used:
			f.State = StateEstablished // used and not in CLOSE-WAIT: no leak class
		}
		for _, ow := range owners {
			f.PID, f.FD = ow.PID, ow.FD
			copy(f.Comm[:], ow.Comm)
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PID != out[j].PID {
			return out[i].PID < out[j].PID
		}
		return out[i].FD < out[j].FD
	})
	return out
}

// LeakGroup is the leaks of one process from one creating stack.
type LeakGroup struct {
	PID   uint32
	Comm  string
	Class string
	// Stack created the group's sockets; zero (not Captured) when they
	// were created before tracing started, or their births carried none.
	Stack   tracer.Stack
	UserRet uint64
	Sockets []LeakedSocket // oldest first
}

// Oldest and Newest are the ages of the group's oldest and newest sockets.
func (g *LeakGroup) Oldest() time.Duration { return g.Sockets[0].Age }

// Newest is the age of the youngest socket of the group.
func (g *LeakGroup) Newest() time.Duration { return g.Sockets[len(g.Sockets)-1].Age }

// GroupLeaks groups leaks by process, class and creating stack (its
// frames and the word at its stack pointer), largest group first.
func GroupLeaks(leaks []LeakedSocket) []LeakGroup {
	type key struct {
		pid     uint32
		class   string
		stack   tracer.Stack // comparable: by content
		userRet uint64
	}
	idx := map[key]int{}
	var groups []LeakGroup
	for _, ls := range leaks {
		k := key{pid: ls.PID, class: ls.Class}
		if ls.Birth != nil {
			k.stack, k.userRet = ls.Birth.Stack, ls.Birth.UserRet
		}
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, LeakGroup{PID: ls.PID, Comm: ls.Comm, Class: ls.Class, Stack: k.stack, UserRet: k.userRet})
		}
		groups[i].Sockets = append(groups[i].Sockets, ls)
	}
	for i := range groups {
		s := groups[i].Sockets
		sort.SliceStable(s, func(a, b int) bool { return s[a].Age > s[b].Age })
	}
	sort.SliceStable(groups, func(a, b int) bool {
		if len(groups[a].Sockets) != len(groups[b].Sockets) {
			return len(groups[a].Sockets) > len(groups[b].Sockets)
		}
		if groups[a].PID != groups[b].PID {
			return groups[a].PID < groups[b].PID
		}
		return groups[a].Class < groups[b].Class
	})
	return groups
}
