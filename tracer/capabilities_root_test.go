package tracer

import (
	"context"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
)

// Every capability either loads or says which kernel feature it lacks, and
// each kernel lacks exactly what it is known to: a capability lost on a
// kernel where it loaded before fails here, not as a skip elsewhere.
func TestCapabilitiesExplained(t *testing.T) {
	ns := nstest.New(t)
	netns, err := LookupNetNS(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Open(context.Background(), Options{NetNS: netns, BirthStacks: true, ConnectStacks: true,
		FollowPIDs: []uint32{uint32(unix.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, inv, _ := ProbeInventory(netns)
	caps := append(slices.Clone(tr.Capabilities()), inv)

	rel, version := nstest.KernelVersion()
	// What a kernel line lacks (measured in the matrix, make test-kernels).
	var want []string
	switch {
	case version < 511:
		// inet_sk_error_report came in 5.15; bpf_sock_from_file in 5.11.
		want = []string{CapErrors, CapInventory}
	case version < 515:
		want = []string{CapErrors}
	}
	var missing []string
	for _, c := range caps {
		t.Logf("%-18s %-60s %s", c.Name, c.Variant(), c.Needs)
		if c.OK() {
			continue
		}
		missing = append(missing, c.Name)
		if c.Needs == "" {
			t.Errorf("%s missing, and no kernel feature named: %v", c.Name, c.Tried)
		}
		if len(c.Tried) == 0 || c.Loses == "" {
			t.Errorf("%s missing without its refusals or what it costs: %+v", c.Name, c)
		}
	}
	if !slices.Equal(missing, want) {
		t.Errorf("kernel %s lacks %v, want exactly %v", rel, missing, want)
	}
	// The one line a degraded command prints names what the tracer
	// lacks (not the inventory, loaded apart) and what runs degraded, and
	// points at doctor.
	lacking := slices.DeleteFunc(slices.Clone(missing), func(n string) bool { return n == CapInventory })
	var degraded []string
	for _, c := range tr.Capabilities() {
		if c.OK() && len(c.Lacks) > 0 {
			degraded = append(degraded, c.Name)
		}
	}
	s := tr.MissingSummary()
	if (s != "") != (len(lacking)+len(degraded) > 0) || (s != "" && !strings.Contains(s, "sstrace doctor")) ||
		(len(lacking) > 0 && !strings.HasPrefix(s, "not traced: "+strings.Join(lacking, ", "))) ||
		(len(degraded) > 0 && !strings.Contains(s, "degraded: "+strings.Join(degraded, ", "))) {
		t.Errorf("MissingSummary %q, with %v missing and %v degraded", s, lacking, degraded)
	}
}
