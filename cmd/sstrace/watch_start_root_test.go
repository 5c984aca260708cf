package main

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"sstrace/snapshot/nstest"
)

// addTimeWait leaves a TIME-WAIT minisocket in the fixture's namespace
// (a closed connection's client side): a row the overlay keys by 4-tuple.
func addTimeWait(t *testing.T, f *fixture) {
	t.Helper()
	err := f.ns.Do(func() error {
		ln, err := plainTCP("tcp4", "127.0.0.11:7779")
		if err != nil {
			return err
		}
		defer ln.Close()
		c, err := net.Dial("tcp4", "127.0.0.11:7779")
		if err != nil {
			return err
		}
		a, err := ln.Accept()
		if err != nil {
			return err
		}
		return closeWithEvents(c, a)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatchFirstFrames: the first block (printed from a plain dump while
// the tracer loads) lists what ss lists, and the next ones (the overlay's,
// loaded from a dump taken once the tracer is attached) list the same rows
// in the same order when nothing changed: switching from one to the other
// shows no change the sockets did not make.
func TestWatchFirstFrames(t *testing.T) {
	f := newFixture(t)
	addTimeWait(t, f)
	f.settle(t)
	ss := func() []string {
		out, err := f.ns.Output("ss", "-Htan")
		if err != nil {
			t.Fatal(err)
		}
		return sortedRows(normalize(out))
	}
	want := ss()
	if !slices.ContainsFunc(want, func(r string) bool { return strings.HasPrefix(r, "TIME-WAIT ") }) {
		t.Fatalf("no TIME-WAIT row to compare:\n%s", strings.Join(want, "\n"))
	}
	blocks, _ := startWatch(t, f, false, "-tan", "--interval", "200ms", "--netns", f.ns.Path())
	first := nextBlock(t, blocks)
	if got := sortedRows(first.rows); !slices.Equal(got, want) {
		t.Fatalf("first block:\n%s\nss -tan:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 0; i < 3; i++ {
		b := nextBlock(t, blocks)
		if !slices.Equal(b.rows, first.rows) {
			t.Fatalf("block %d differs from the first, nothing having changed:\n%s\nfirst:\n%s", i+2, strings.Join(b.rows, "\n"), strings.Join(first.rows, "\n"))
		}
	}
	if now := ss(); !slices.Equal(now, want) {
		t.Fatalf("the namespace changed during the test:\n%s", strings.Join(now, "\n"))
	}

	// On a terminal, the redraws after the first mark no row new, changed
	// or closed.
	frames := startWatchTTY(t, "-tan", "--interval", "200ms", "--netns", f.ns.Path())
	fr := nextTTYFrame(t, frames)
	if got := sortedRows(fr.current()); !slices.Equal(got, want) {
		t.Fatalf("first redraw:\n%s\nss -tan:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 0; i < 3; i++ {
		fr = nextTTYFrame(t, frames)
		for _, r := range fr.rows {
			if r.mark != ' ' {
				t.Errorf("redraw %d marks %q: %s", i+2, r.mark, r.text)
			}
		}
		if got := sortedRows(fr.current()); !slices.Equal(got, want) {
			t.Fatalf("redraw %d:\n%s\nss -tan:\n%s", i+2, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestWatchWithoutPrivileges: the tracer loads in the background, yet
// watch without BPF privileges still prints no frame, only one line naming
// what is missing.
func TestWatchWithoutPrivileges(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", sstraceBin, "watch", "-tan")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("watch as nobody: %v, want exit status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if out.Len() != 0 || len(lines) != 1 || !strings.Contains(errb.String(), "CAP_BPF") {
		t.Errorf("watch as nobody: stdout %q, stderr %q; want one line naming CAP_BPF", out.String(), errb.String())
	}
}
