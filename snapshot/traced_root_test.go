package snapshot

import (
	"context"
	"testing"

	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// tracedNS is a fresh network namespace and a tracer filtered to it (opts
// with its NetNSCookie set), closed when the test ends.
func tracedNS(t *testing.T, opts tracer.Options) (*nstest.NS, *tracer.Tracer) {
	t.Helper()
	ns := nstest.New(t)
	cookie, err := tracer.LookupNetNS(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	opts.NetNS = cookie
	tr, err := tracer.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return ns, tr
}
