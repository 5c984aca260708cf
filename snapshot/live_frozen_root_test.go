package snapshot

import (
	"fmt"
	"net"
	"reflect"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// While a ViewFrozen runs, the overlay it was given does not change: the
// reader goes on reading, and holds what it reads; once the view is over,
// what it held is applied.
func TestLiveViewFrozen(t *testing.T) {
	ns, tr := tracedNS(t, tracer.Options{})
	dump := func() (entries []*Entry, err error) {
		err = ns.Do(func() error {
			entries, err = DumpEntries(ListRequest{Inet: []InetDump{{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}}, States: 0xfff})
			return err
		})
		return entries, err
	}
	live, err := StartLiveEntries(tr, dump, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var before int
	live.ViewFrozen(func(o *Overlay) {
		before = o.Len()
		err := ns.Do(func() error {
			for i := 0; i < 10; i++ {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				fds = append(fds, fd)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// The reader holds their births as it reads them.
		deadline := time.Now().Add(30 * time.Second)
		for {
			live.mu.Lock()
			held := len(live.held)
			live.mu.Unlock()
			if held >= 10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the reader held %d events in 30 s, want the 10 births", held)
			}
			time.Sleep(10 * time.Millisecond) // polling the reader's progress
		}
		if o.Len() != before {
			t.Errorf("the frozen overlay changed: %d sockets, then %d", before, o.Len())
		}
	})
	live.View(func(o *Overlay) {
		if o.Len() != before+10 {
			t.Errorf("after the view: %d sockets, want %d", o.Len(), before+10)
		}
		if len(live.held) != 0 || live.frozen {
			t.Errorf("after the view: %d events held, frozen %v", len(live.held), live.frozen)
		}
	})
}

// DumpEntries lists what List lists, row for row (but the timers an entry
// does not keep).
func TestDumpEntriesIsList(t *testing.T) {
	ns := nstest.New(t)
	err := ns.Do(func() error {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		t.Cleanup(func() { ln.Close() })
		ln6, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			return err
		}
		t.Cleanup(func() { ln6.Close() })
		for _, l := range []net.Listener{ln, ln6} {
			for i := 0; i < 3; i++ {
				c, err := net.Dial(l.Addr().Network(), l.Addr().String())
				if err != nil {
					return err
				}
				t.Cleanup(func() { c.Close() })
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	req := ListRequest{Inet: []InetDump{{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}, {Family: unix.AF_INET6, Protocol: unix.IPPROTO_TCP}},
		States: 0xfff | 1<<StateBoundInactive}
	var socks []Socket
	var entries []*Entry
	err = ns.Do(func() (err error) {
		if socks, err = List(req); err != nil {
			return err
		}
		entries, err = DumpEntries(req)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	key := func(s *Socket) string { return fmt.Sprint(s.Cookie, s.Local, s.Peer) }
	sort.Slice(socks, func(i, j int) bool { return key(&socks[i]) < key(&socks[j]) })
	got := make([]Socket, len(entries))
	for i, e := range entries {
		got[i] = e.Socket()
	}
	sort.Slice(got, func(i, j int) bool { return key(&got[i]) < key(&got[j]) })
	if len(got) != len(socks) || len(socks) < 14 {
		t.Fatalf("%d entries, %d rows (want 14 or more)", len(got), len(socks))
	}
	for i := range socks {
		want := socks[i]
		want.Timer, want.Retrans, want.Expires = 0, 0, 0
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	if _, err := DumpEntries(ListRequest{Unix: true}); err == nil {
		t.Error("DumpEntries took a unix table")
	}
}
