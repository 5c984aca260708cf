package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sstrace/snapshot/doctor"
	"sstrace/snapshot/nstest"
	"sstrace/tracer"
)

// runDoctorBin runs the built sstrace doctor with args, env added, and
// prefix (setpriv ...) before it; it returns stdout, stderr and the exit
// status.
func runDoctorBin(t *testing.T, env []string, prefix []string, args ...string) (string, string, int) {
	out, errs, code, _ := runDoctorTimed(t, env, prefix, args...)
	return out, errs, code
}

// runDoctorTimed is runDoctorBin also returning the CPU time doctor used.
func runDoctorTimed(t *testing.T, env []string, prefix []string, args ...string) (string, string, int, time.Duration) {
	t.Helper()
	argv := append(append(prefix, sstraceBin, "doctor"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// doctorRows parses the text table: each capability's line (name, status,
// what is in use) and the lines under it (lacks, loses, tried, log).
type doctorRow struct {
	status, text string
	under        []string
}

func doctorRows(t *testing.T, out string) map[string]*doctorRow {
	t.Helper()
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "CAPABILITY") {
		t.Fatalf("no header: %q", lines[0])
	}
	statusAt, textAt := strings.Index(lines[0], "STATUS"), strings.Index(lines[0], "IN USE")
	rows := map[string]*doctorRow{}
	var last *doctorRow
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		if strings.TrimSpace(l[:statusAt]) == "" {
			if last == nil {
				t.Fatalf("an indented line before any row: %q", l)
			}
			last.under = append(last.under, strings.TrimSpace(l))
			continue
		}
		name := strings.TrimSpace(l[:statusAt])
		last = &doctorRow{status: strings.TrimSpace(l[statusAt:textAt]), text: l[textAt:]}
		rows[name] = last
	}
	return rows
}

// every capability doctor must list, in any status.
func doctorNames() []string {
	names := []string{"kernel", doctor.CapOwners, doctor.CapNetNSCookie, tracer.CapInventory, doctor.CapStacks}
	for _, f := range []string{"tcp", "udp", "mptcp", "raw", "unix", "packet", "netlink"} {
		names = append(names, doctor.ListingName(f))
	}
	for _, c := range tracer.AllCapabilities(true) {
		names = append(names, c.Name)
	}
	return names
}

// On this machine (see /work/shared/PLATFORM.md) every tracer capability
// loads; the rows say so, -j says the same as the text, and only -v shows
// the kernel's reasons.
func TestDoctorHere(t *testing.T) {
	nstest.RequireRoot(t)
	// This kernel's own ladders, whatever object the suite starts them
	// at (TestDoctorCore510 is the core-5.10 one).
	here := []string{tracer.ObjectEnv + "="}
	out, errs, code, _ := runDoctorTimed(t, here, nil)
	if code != 0 || errs != "" {
		t.Fatalf("doctor: status %d, stderr %q", code, errs)
	}
	_, version := nstest.KernelVersion()
	rows := doctorRows(t, out)
	for _, n := range doctorNames() {
		if rows[n] == nil {
			t.Errorf("no row %q in:\n%s", n, out)
		}
	}
	// From 6.1 on every tracer capability loads (6.1 from the core
	// object); before, what is degraded or missing says why.
	for _, c := range tracer.AllCapabilities(true) {
		r := rows[c.Name]
		if r == nil || r.status == "ok" {
			continue
		}
		if version >= 601 {
			t.Errorf("%s: %s %q; want ok on this kernel", c.Name, r.status, r.text)
		}
		why := false
		for _, l := range r.under {
			why = why || strings.HasPrefix(l, "lacks: ") || strings.HasPrefix(l, "needs: ")
		}
		if !why {
			t.Errorf("%s: %s without saying what it lacks or needs: %q", c.Name, r.status, r.under)
		}
	}
	// The kfunc the btf object needs came in 6.2.
	if r := rows[tracer.CapBirths]; r != nil && version >= 602 && !strings.HasSuffix(r.text, "(btf)") {
		t.Errorf("births: %q; want the btf object in use", r.text)
	}
	for name, r := range rows {
		for _, l := range r.under {
			if strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "tried ") {
				t.Errorf("%s: the kernel's reasons outside -v: %q", name, l)
			}
		}
	}
	if strings.Contains(out, "operation not permitted") {
		t.Errorf("the kernel's words outside -v:\n%s", out)
	}

	// -j: one document that says what the text says.
	js, _, code := runDoctorBin(t, here, nil, "-j")
	var r doctor.Report
	if err := json.Unmarshal([]byte(js), &r); err != nil || code != 0 {
		t.Fatalf("doctor -j: status %d, %v: %q", code, err, js)
	}
	if !strings.Contains(rows["kernel"].text, r.Kernel) {
		t.Errorf("kernel %q in -j, %q in the text", r.Kernel, rows["kernel"].text)
	}
	if len(r.Capabilities) != len(rows)-1 {
		t.Errorf("%d capabilities in -j, %d rows in the text", len(r.Capabilities), len(rows)-1)
	}
	for _, c := range r.Capabilities {
		tr := rows[c.Name]
		if tr == nil {
			t.Errorf("%s in -j, not in the text", c.Name)
			continue
		}
		if tr.status != string(c.Status) || !strings.HasPrefix(tr.text, c.Variant) {
			t.Errorf("%s: -j says %s %q, the text %s %q", c.Name, c.Status, c.Variant, tr.status, tr.text)
		}
		for _, l := range c.Lacks {
			if !slices.Contains(tr.under, "lacks: "+l) {
				t.Errorf("%s: -j lacks %q, the text does not say so: %q", c.Name, l, tr.under)
			}
		}
		if c.Tried != nil && c.Tried[0].Log != nil {
			t.Errorf("%s: a verifier log in -j without -v", c.Name)
		}
	}

	// -v: every variant refused, with the kernel's words (on this
	// project's machines lockdown refuses fexit: EPERM), as -j -v has them.
	vout, _, code := runDoctorBin(t, here, nil, "-v")
	vrows := doctorRows(t, vout)
	if code != 0 {
		t.Fatalf("doctor -v: status %d", code)
	}
	vjs, _, _ := runDoctorBin(t, here, nil, "-j", "-v")
	var vr doctor.Report
	if err := json.Unmarshal([]byte(vjs), &vr); err != nil {
		t.Fatalf("doctor -j -v: %v", err)
	}
	refusals := 0
	for _, c := range vr.Capabilities {
		for _, a := range c.Tried {
			prefix := "tried " + a.Hook + ": "
			if a.Object != "" {
				prefix = "tried " + a.Hook + " (" + a.Object + "): "
			}
			found := false
			for _, l := range vrows[c.Name].under {
				found = found || strings.HasPrefix(l, prefix)
			}
			if !found {
				t.Errorf("%s: %s refused in -j -v, not in -v: %q", c.Name, prefix, vrows[c.Name].under)
			}
			if len(a.Log) > 0 && !slices.Contains(vrows[c.Name].under, "| "+strings.TrimSpace(a.Log[0])) {
				t.Errorf("%s: the verifier log of %s in -j -v, not in -v", c.Name, a.Hook)
			}
			refusals++
		}
	}
	if strings.HasPrefix(rows[tracer.CapBirths].text, "tracepoint") && refusals == 0 {
		t.Errorf("births from the tracepoint, yet no refused fexit in -v:\n%s", vout)
	}
}

// With every ladder started at the object a 5.10 kernel loads, the
// capabilities that goes without something are degraded and say what.
func TestDoctorCore510(t *testing.T) {
	nstest.RequireRoot(t)
	out, errs, code := runDoctorBin(t, []string{tracer.ObjectEnv + "=core-5.10"}, nil)
	if code != 0 || errs != "" {
		t.Fatalf("doctor: status %d, stderr %q", code, errs)
	}
	rows := doctorRows(t, out)
	if !strings.Contains(rows["kernel"].text, "core-5.10") {
		t.Errorf("the kernel row does not say the ladders start at core-5.10: %q", rows["kernel"].text)
	}
	for name, lacks := range map[string][]string{
		tracer.CapBirths: {tracer.LackUserRet},
		// The sock_ops hook gives accepted sockets their cookies once
		// established: only the handshake's transitions lack one.
		tracer.CapTransitions: {tracer.LackUserRet, tracer.LackHandshakeCookie},
		tracer.CapReleases:    {tracer.LackExiting},
		doctor.CapStacks:      {tracer.LackUserRet},
	} {
		r := rows[name]
		if r == nil || r.status != "degraded" || !strings.Contains(r.text, "core-5.10") {
			t.Errorf("%s: %+v; want degraded from core-5.10", name, r)
			continue
		}
		for _, l := range lacks {
			if !slices.Contains(r.under, "lacks: "+l) {
				t.Errorf("%s does not say it lacks %q: %q", name, l, r.under)
			}
		}
	}
	for _, name := range []string{tracer.CapAccepts, tracer.CapDestroys, tracer.CapPassiveCook} {
		if r := rows[name]; r == nil || r.status != "ok" {
			t.Errorf("%s: %+v; want ok (core-5.10 costs it nothing)", name, r)
		}
	}
	if !strings.Contains(out, "degraded (") {
		t.Errorf("the summary names no degraded capability:\n%s", out)
	}
}

// A capability with no variant that loads is missing, with what it
// costs; doctor still exits 0.
func TestDoctorMissing(t *testing.T) {
	nstest.RequireRoot(t)
	out, _, code := runDoctorBin(t, nil, nil, "--disable-hooks", tracer.HookReset)
	if code != 0 {
		t.Fatalf("doctor: status %d", code)
	}
	r := doctorRows(t, out)[tracer.CapResets]
	var loses string
	for _, c := range tracer.AllCapabilities(false) {
		if c.Name == tracer.CapResets {
			loses = c.Loses
		}
	}
	if r == nil || r.status != "missing" || !strings.Contains(r.text, "disabled") || !slices.Contains(r.under, "loses: "+loses) {
		t.Errorf("resets: %+v; want missing, why (disabled) and %q", r, loses)
	}
	// The summary names it among what this kernel misses (5.10 misses
	// more: socket-errors, the inventory, the MPTCP listing).
	m := regexp.MustCompile(`\d+ missing \(([^)]*)\)`).FindStringSubmatch(out)
	if m == nil || !slices.Contains(strings.Split(m[1], ", "), tracer.CapResets) {
		t.Errorf("the summary does not name resets:\n%s", out)
	}
}

// Without privileges doctor reports what needs none (the listing) and
// names the capabilities tracing needs, exiting 0.
func TestDoctorWithoutPrivileges(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"}
	out, errs, code := runDoctorBin(t, nil, nobody)
	if code != 0 || errs != "" {
		t.Fatalf("doctor as nobody: status %d, stderr %q", code, errs)
	}
	rows := doctorRows(t, out)
	for _, n := range doctorNames() {
		if rows[n] == nil {
			t.Errorf("no row %q", n)
		}
	}
	if r := rows[doctor.ListingName("tcp")]; r == nil || r.status != "ok" {
		t.Errorf("listing tcp as nobody: %+v; want ok (sock_diag needs no privileges)", r)
	}
	if r := rows[doctor.CapOwners]; r == nil || r.status != "degraded" || !strings.HasPrefix(r.text, "/proc/*/fd") {
		t.Errorf("owners as nobody: %+v; want degraded to /proc/*/fd", r)
	}
	for _, c := range tracer.AllCapabilities(true) {
		if r := rows[c.Name]; r == nil || r.status != "missing" || !strings.Contains(r.text, "CAP_BPF") {
			t.Errorf("%s as nobody: %+v; want missing, naming CAP_BPF", c.Name, r)
		}
	}
	if !strings.Contains(out, "not privileged: tracing needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN") {
		t.Errorf("no line naming the missing privileges:\n%s", out)
	}
}
