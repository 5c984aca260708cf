package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"sstrace/snapshot/doctor"
	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// bpfObjects lists the BPF program and link ids a process holds, from its
// fds' fdinfo (exact, whatever else runs BPF on the machine).
func bpfObjects(t *testing.T, pid int) (progs, links []string) {
	t.Helper()
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		b, err := os.ReadFile(fd)
		if err != nil {
			continue
		}
		isLink := strings.Contains(string(b), "link_type:")
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case isLink && strings.HasPrefix(l, "link_id:"):
				links = append(links, strings.TrimSpace(strings.TrimPrefix(l, "link_id:")))
			case !isLink && strings.HasPrefix(l, "prog_id:"):
				progs = append(progs, strings.TrimSpace(strings.TrimPrefix(l, "prog_id:")))
			}
		}
	}
	return progs, links
}

func requireBpftool(t *testing.T) {
	t.Helper()
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("bpftool"); err != nil {
		t.Skip("bpftool not installed (make deps installs it)")
	}
}

// exists asks bpftool whether an object id is still loaded.
func exists(kind, id string) bool {
	return exec.Command("bpftool", kind, "show", "id", id).Run() == nil
}

// After kill -9 nothing of sstrace's stays attached or loaded: every hook
// is a bpf_link owned by the process's fds, which the kernel drops with
// them (no legacy attachment outlives it).
func TestKilledLeavesNothingAttached(t *testing.T) {
	requireBpftool(t)
	ns := nstest.New(t)
	cmd := exec.Command(sstraceBin, "leaks", "--netns", ns.Path())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stderr)
	line, warning, err := firstStderrLine(func() (string, error) { return br.ReadString('\n') })
	if err != nil || !strings.Contains(line, "tracing socket lives") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("sstrace did not start tracing: %q %v (warning %q)", line, err, warning)
	}
	// The warning comes where doctor reports a tracer capability
	// degraded or missing (core-5.10), and only there.
	k := doctorCaps(t)
	var short []string
	for _, c := range tracer.AllCapabilities(false) {
		if r := k.row(t, c.Name); r.Status != doctor.OK {
			short = append(short, c.Name)
		}
	}
	if (warning != "") != (len(short) > 0) || warning != "" && !strings.Contains(warning, "sstrace doctor") {
		t.Errorf("warning %q; doctor reports short of what they need: %v", warning, short)
	}
	progs, links := bpfObjects(t, cmd.Process.Pid)
	if len(links) < 5 || len(progs) < 5 {
		t.Fatalf("expected the tracer's programs and links, found %d programs and %d links", len(progs), len(links))
	}
	for _, id := range links {
		if !exists("link", id) {
			t.Fatalf("link %s not visible to bpftool while sstrace runs", id)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	requireGone(t, links, progs, "sstrace was killed")
	t.Logf("%d links and %d programs gone after kill -9", len(links), len(progs))
}

// SIGTERM (like Ctrl-C) ends with the report, then everything detached.
func TestTerminatedReportsAndDetaches(t *testing.T) {
	requireBpftool(t)
	ns := nstest.New(t)
	cmd, out := startLeaks(t, "--netns", ns.Path())
	progs, links := bpfObjects(t, cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sstrace leaks after SIGTERM: %v", err)
	}
	if !strings.Contains(out.String(), `"final":true`) {
		t.Errorf("no final report after SIGTERM: %q", out.String())
	}
	requireGone(t, links, progs, "sstrace exited")
}

// requireGone fails the test for each link or program still loaded. The
// kernel frees them as the last fd goes, and bpftool may still list one for
// a moment after the process is reaped: it asks until it does not
// (bounded: a leftover fails).
func requireGone(t *testing.T, links, progs []string, after string) {
	t.Helper()
	for _, set := range []struct {
		kind string
		ids  []string
	}{{"link", links}, {"prog", progs}} {
		for _, id := range set.ids {
			gone := false
			for i := 0; i < 500 && !gone; i++ {
				gone = !exists(set.kind, id)
			}
			if !gone {
				t.Errorf("%s %s still loaded after %s", set.kind, id, after)
			}
		}
	}
}
