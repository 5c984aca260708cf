package snapshot

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// A loss makes the overlay stale; a rebuild that fails leaves it stale
// (and says why), and the next check that can dump rebuilds it.
func TestLiveStaleUntilRebuilt(t *testing.T) {
	ns, tr := tracedNS(t, tracer.Options{RingSize: os.Getpagesize()})
	var refuse atomic.Bool
	dump := func() (socks []Socket, err error) {
		if refuse.Load() {
			return nil, errors.New("dump refused by the test")
		}
		err = ns.Do(func() error {
			socks, err = Dump(DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 0xfff})
			return err
		})
		return socks, err
	}
	live, err := StartLive(tr, dump, nil)
	if err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	// A burst no one-page ring can hold: three events a socket.
	err = ns.Do(func() error {
		for i := 0; i < 5000; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tr.Drops(); err != nil || n == 0 {
		t.Fatalf("no events lost with a one-page ring (%d, %v)", n, err)
	}
	live.View(func(*Overlay) {
		if !live.Stale || live.ResyncErr == nil || !strings.Contains(live.ResyncErr.Error(), "dump refused by the test") {
			t.Errorf("after a loss and a failed rebuild: stale %v, error %v", live.Stale, live.ResyncErr)
		}
		if live.Resyncs != 0 {
			t.Errorf("%d resyncs counted, though every dump failed", live.Resyncs)
		}
	})
	refuse.Store(false)
	live.View(func(*Overlay) {
		if live.Stale || live.ResyncErr != nil || live.Resyncs == 0 {
			t.Errorf("once a dump works: stale %v, error %v, %d resyncs", live.Stale, live.ResyncErr, live.Resyncs)
		}
	})
}
