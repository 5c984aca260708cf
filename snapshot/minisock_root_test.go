package snapshot

import (
	"context"
	"net"
	"sort"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// The minisockets tcp_time_wait() leaves, inferred from events, are the
// ones the kernel lists: TIME-WAIT after the peer's FIN, FIN-WAIT-2 for an
// orphan whose peer never closed.
func TestOverlayMinisocketsMatchKernel(t *testing.T) {
	ns, tr := tracedNS(t, tracer.Options{})
	var mu sync.Mutex
	destroyed := map[uint64]bool{}
	births := map[uint32]uint64{}
	cond := sync.NewCond(&mu)
	dump := func() (socks []Socket, err error) {
		err = ns.Do(func() error {
			socks, err = Dump(DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 0xfff})
			return err
		})
		return socks, err
	}
	live, err := StartLive(tr, dump, func(_ *Overlay, ev *tracer.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case tracer.KindBirth:
			births[ev.Inode] = ev.Cookie
		case tracer.KindDestroy:
			destroyed[ev.Cookie] = true
			cond.Broadcast()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	if err := ns.Do(func() error {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		for _, mode := range []string{"both-close", "orphan"} {
			c, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				return err
			}
			s, err := ln.Accept()
			if err != nil {
				return err
			}
			switch mode {
			case "both-close":
				// The server closes first, the client reads the FIN and
				// closes too: the first closer's socket becomes the
				// TIME-WAIT minisocket.
				s.Close()
				buf := make([]byte, 1)
				c.Read(buf) // the FIN
				c.Close()
			case "orphan":
				// The client closes; the server never does: the client's
				// orphan becomes a FIN-WAIT-2 minisocket.
				c.Close()
				held = append(held, s)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := func() []string {
		socks, err := dump()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range socks {
			if s.Timer == timerTimeWait && s.Inode == 0 {
				out = append(out, stateName(s.State)+" "+s.Local.String()+" "+s.Peer.String())
			}
		}
		sort.Strings(out)
		return out
	}
	got := func() []string {
		var out []string
		live.View(func(o *Overlay) {
			for _, e := range o.Entries() {
				if e.Minisock() {
					out = append(out, stateName(e.State)+" "+e.Local().String()+" "+e.Peer().String())
				}
			}
		})
		sort.Strings(out)
		return out
	}
	// A marker socket is the readiness signal: once its destruction has
	// been applied, so has every event before it. Compare after each
	// marker until the namespace is quiet (bounded).
	marker := func() {
		var ino uint32
		if err := ns.Do(func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			var st unix.Stat_t
			unix.Fstat(fd, &st)
			ino = uint32(st.Ino)
			return unix.Close(fd)
		}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for !destroyed[births[ino]] || births[ino] == 0 {
			cond.Wait()
		}
	}
	var w, g []string
	for try := 0; try < 50; try++ {
		marker()
		w, g = want(), got()
		if len(w) == 2 && equal(w, g) {
			t.Logf("minisockets: %v", w)
			return
		}
	}
	t.Fatalf("kernel minisockets %v, overlay %v", w, g)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// stateName is the kernel state's ss name, for test messages.
func stateName(st uint8) string {
	return map[uint8]string{StateFinWait2: "FIN-WAIT-2", StateTimeWait: "TIME-WAIT"}[st]
}
