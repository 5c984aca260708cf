package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"sstrace/snapshot/doctor"
	"sstrace/snapshot/nstest"
)

// kernelCaps is what `sstrace doctor -j` says of this kernel, run with the
// tests' environment (SSTRACE_BPF_OBJECT included): the capabilities the
// tracing commands the tests start will have. A test whose assertion
// depends on a capability asks here, so that on a kernel that goes without
// it (Debian's 5.10) it checks the degraded behaviour instead, or skips
// with doctor's own words.
type kernelCaps struct {
	rows map[string]doctor.Row
}

// doctorCapsOnce runs doctor once per test binary.
var doctorCapsOnce = sync.OnceValues(func() (*kernelCaps, error) {
	cmd := exec.Command(sstraceBin, "doctor", "-j")
	cmd.Env = os.Environ()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var r doctor.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, err
	}
	k := &kernelCaps{rows: map[string]doctor.Row{}}
	for _, c := range r.Capabilities {
		k.rows[c.Name] = c
	}
	return k, nil
})

// doctorCaps returns doctor's report of this kernel (root only: without
// privileges every tracer capability reads missing).
func doctorCaps(t *testing.T) *kernelCaps {
	t.Helper()
	nstest.RequireRoot(t)
	k, err := doctorCapsOnce()
	if err != nil {
		t.Fatalf("sstrace doctor -j: %v", err)
	}
	return k
}

func (k *kernelCaps) row(t *testing.T, name string) doctor.Row {
	t.Helper()
	r, ok := k.rows[name]
	if !ok {
		t.Fatalf("doctor reports no capability %q", name)
	}
	return r
}

// lacks tells whether doctor reports the capability degraded for want of
// lack (a tracer.Lack* constant).
func (k *kernelCaps) lacks(t *testing.T, name, lack string) bool {
	t.Helper()
	r := k.row(t, name)
	return r.Status == doctor.Degraded && slices.Contains(r.Lacks, lack)
}

// missing tells whether doctor reports no variant of the capability.
func (k *kernelCaps) missing(t *testing.T, name string) bool {
	t.Helper()
	return k.row(t, name).Status == doctor.Missing
}

// needs is what doctor says a missing capability needs: the kernel
// feature, else (a refusal it does not recognize, a hook disabled) why
// no variant loaded.
func (k *kernelCaps) needs(t *testing.T, name string) string {
	t.Helper()
	r := k.row(t, name)
	if r.Needs != "" {
		return r.Needs
	}
	return r.Why
}

// skipLacking skips the test, saying in doctor's words what the
// capability goes without; for a part of a test that means nothing
// without it. It fails the test if doctor does not say so.
func (k *kernelCaps) skipLacking(t *testing.T, name, lack string) {
	t.Helper()
	if !k.lacks(t, name, lack) {
		t.Fatalf("skipping for want of %q, but doctor does not say %s lacks it: %+v", lack, name, k.row(t, name))
	}
	t.Skipf("doctor: %s is degraded, it lacks %s", name, lack)
}

// skipMissing skips the test, saying in doctor's words what the kernel
// lacks for the capability; it fails the test if doctor does not report
// the capability missing.
func (k *kernelCaps) skipMissing(t *testing.T, name string) {
	t.Helper()
	if !k.missing(t, name) {
		t.Fatalf("skipping for want of %s, but doctor does not report it missing: %+v", name, k.row(t, name))
	}
	t.Skipf("doctor: %s is missing: needs %s", name, k.needs(t, name))
}

// firstStderrLine reads the line of a tracing command's stderr that says
// it traces, past the one warning line a degraded or partial kernel adds
// before it ("sstrace: warning: not traced: ...; degraded: ..."). Any
// other line before it, or a second warning, is an error.
func firstStderrLine(read func() (string, error)) (line string, warning string, err error) {
	line, err = read()
	if err != nil || !strings.HasPrefix(line, "sstrace: warning: ") {
		return line, "", err
	}
	warning = line
	line, err = read()
	return line, warning, err
}
