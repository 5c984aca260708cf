package tracer

import (
	"context"
	"testing"

	"sstrace/snapshot/nstest"
)

// BenchmarkOpenRoot loads and attaches watch's and trace's hooks (no
// stacks, no followed processes) and closes them again: the tracer's share
// of their start-up. Close is timed apart (detaching waits for RCU grace
// periods, and no one waits for it to print).
func BenchmarkOpenRoot(b *testing.B) {
	if testing.Short() {
		b.Skip("loads BPF")
	}
	nstest.RequireRoot(b)
	ns := nstest.New(b)
	cookie, err := LookupNetNS(ns.Path())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tr, err := Open(context.Background(), Options{NetNS: cookie})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		tr.Close()
		b.StartTimer()
	}
}
