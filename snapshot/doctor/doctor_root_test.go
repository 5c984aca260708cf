package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// bpfFDs counts this process's fds that hold a BPF program, map or link.
func bpfFDs(t *testing.T) int {
	t.Helper()
	infos, err := filepath.Glob("/proc/self/fdinfo/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range infos {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		if strings.Contains(s, "\nprog_id:") || strings.Contains(s, "\nmap_id:") || strings.Contains(s, "\nlink_id:") {
			n++
		}
	}
	return n
}

// Gather probes everything and keeps nothing: every program, link and map
// it made is closed when it returns, and every capability has a row.
func TestGatherLeavesNothing(t *testing.T) {
	nstest.RequireRoot(t)
	before := bpfFDs(t)
	r, err := Gather(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if after := bpfFDs(t); after != before {
		t.Errorf("%d BPF fds held after Gather, %d before", after, before)
	}
	ok, _, _ := r.Counts()
	want := 7 + 3 + len(tracer.AllCapabilities(true)) + 1
	for _, c := range r.Capabilities {
		if c.Name == tracer.CapPassiveCook { // only where transitions need it
			want++
		}
	}
	if ok == 0 || len(r.Capabilities) != want {
		t.Errorf("%d capabilities, %d ok: %+v", len(r.Capabilities), ok, r.Capabilities)
	}
	for _, c := range r.Capabilities {
		if c.Name == tracer.CapForks && c.Status != OK {
			t.Errorf("follow mode not probed: %+v", c)
		}
	}
}
