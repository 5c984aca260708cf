package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sstrace/cmd/sstrace/internal/goldentest"
	"sstrace/snapshot/doctor"
	"sstrace/tracer"
)

// doctorFixture is a report with a row of each kind: ok from the best
// variant and from a fallback, degraded with what it lacks, missing with
// what it loses, a refusal with a verifier log.
func doctorFixture() doctor.Report {
	return doctor.Report{
		Kernel: "6.1.0-99-cloud-amd64", Machine: "x86_64", BTF: true,
		Capabilities: []doctor.Row{
			{Name: "listing tcp", Status: doctor.OK, Variant: "sock_diag (tcp_diag)"},
			{Name: "listing raw", Status: doctor.Degraded, Variant: "/proc/net/raw, /proc/net/raw6", Why: "no raw_diag in this kernel",
				Lacks: []string{"raw sockets read from /proc/net/raw{,6}"},
				Tried: []doctor.Attempt{{Hook: "sock_diag raw", Reason: "sock_diag dump of raw/ipv4: dump ended with error: no such file or directory"}}},
			{Name: "births", Status: doctor.OK, Variant: "tracepoint/syscalls/sys_exit_socket (core)",
				Hooks: []string{tracer.HookSocketTP}, Object: "core",
				Tried: []doctor.Attempt{
					{Hook: tracer.HookSocket, Object: "btf", Reason: "loading: permission denied: load program: operation not permitted"},
					{Hook: tracer.HookSocketTP, Object: "btf", Reason: "loading: load program: invalid argument: unknown func bpf_rdonly_cast#0 (1 line(s) omitted)",
						Log: []string{"0: R1=ctx() R10=fp0", "unknown func bpf_rdonly_cast#0"}},
				}},
			{Name: "releases", Status: doctor.Degraded, Variant: "cgroup/sock_release (core-5.10)",
				Hooks: []string{tracer.HookSockRelease}, Object: "core-5.10", Lacks: []string{tracer.LackExiting}},
			{Name: "resets", Status: doctor.Missing, Why: "tp_btf/tcp_receive_reset: not in this kernel",
				Loses: "no resets received",
				Tried: []doctor.Attempt{{Hook: tracer.HookReset, Object: "btf", Reason: "attaching: no such file or directory"}}},
		},
	}
}

func TestDoctorText(t *testing.T) {
	r := doctorFixture()
	for _, c := range []struct {
		name    string
		verbose bool
	}{{"doctor", false}, {"doctor_verbose", true}} {
		var b bytes.Buffer
		printDoctor(&b, &r, c.verbose)
		goldentest.Check(t, c.name, b.Bytes())
		out := b.String()
		// What -v alone may show: the kernel's words and the log.
		for _, s := range []string{"operation not permitted", "| unknown func bpf_rdonly_cast#0"} {
			if strings.Contains(out, s) != c.verbose {
				t.Errorf("%s: contains %q: %v, want %v", c.name, s, !c.verbose, c.verbose)
			}
		}
	}
}

func TestDoctorUnprivileged(t *testing.T) {
	r := doctor.Report{
		Kernel: "6.18.44", Machine: "x86_64", BTF: true, FirstObject: "core-5.10",
		MissingPrivileges: []string{"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"},
		Capabilities: []doctor.Row{
			{Name: "listing tcp", Status: doctor.OK, Variant: "sock_diag (tcp_diag)"},
			{Name: "cookies", Status: doctor.Missing, Why: "loading BPF programs needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN (run as root or grant them)",
				Loses: "sockets get their identity later"},
		},
	}
	var b bytes.Buffer
	printDoctor(&b, &r, false)
	goldentest.Check(t, "doctor_unprivileged", b.Bytes())
}

func TestDoctorJSON(t *testing.T) {
	r := doctorFixture()
	for _, c := range []struct {
		name    string
		verbose bool
	}{{"doctor_json", false}, {"doctor_verbose_json", true}} {
		var b bytes.Buffer
		if err := printDoctorJSON(&b, r, c.verbose); err != nil {
			t.Fatal(err)
		}
		goldentest.Check(t, c.name, b.Bytes())
		var back doctor.Report
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatalf("%s: not one JSON document: %v", c.name, err)
		}
		if bytes.Count(b.Bytes(), []byte("\n")) != 1 {
			t.Errorf("%s: want one line", c.name)
		}
		logs := 0
		for _, row := range back.Capabilities {
			for _, a := range row.Tried {
				logs += len(a.Log)
			}
		}
		if (logs > 0) != c.verbose {
			t.Errorf("%s: %d verifier log lines; want them only with -v", c.name, logs)
		}
	}
	// The caller's report keeps its logs: -j without -v copies.
	if len(r.Capabilities[2].Tried[1].Log) == 0 {
		t.Error("printDoctorJSON cleared the caller's verifier log")
	}
}
