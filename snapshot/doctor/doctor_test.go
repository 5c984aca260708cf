package doctor

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

func TestFromCapability(t *testing.T) {
	refused := tracer.HookError{Hook: tracer.HookSocket, Object: "btf",
		Err: fmt.Errorf("loading: %w: load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", tracer.ErrPermission, unix.EPERM)}
	verifier := tracer.HookError{Hook: tracer.HookSocketTP, Object: "btf",
		Err: fmt.Errorf("loading: %w", &ebpf.VerifierError{Cause: unix.EACCES, Log: []string{"0: R1=ctx()", "R1 type=untrusted_ptr_"}})}

	ok := fromCapability(tracer.Capability{Name: tracer.CapBirths, Hooks: []string{tracer.HookSocketTP}, Object: "core", Tried: []tracer.HookError{refused, verifier}}, nil)
	if ok.Status != OK || ok.Variant != tracer.HookSocketTP+" (core)" || len(ok.Tried) != 2 || ok.Loses != "" {
		t.Errorf("a fallback with nothing lacking: %+v; want ok, its variant, both refusals, no loss", ok)
	}
	if strings.Contains(ok.Tried[0].Reason, "MEMLOCK") {
		t.Errorf("reason keeps cilium/ebpf's MEMLOCK guess: %q", ok.Tried[0].Reason)
	}
	if len(ok.Tried[1].Log) != 2 || ok.Tried[0].Log != nil {
		t.Errorf("verifier logs: %q and %q; want the log of the verifier's refusal only", ok.Tried[0].Log, ok.Tried[1].Log)
	}

	deg := fromCapability(tracer.Capability{Name: tracer.CapReleases, Hooks: []string{tracer.HookSockRelease}, Object: "core-5.10", Lacks: []string{tracer.LackExiting}}, nil)
	if deg.Status != Degraded || len(deg.Lacks) != 1 || deg.Loses != "" {
		t.Errorf("a variant lacking something: %+v; want degraded with its lack", deg)
	}

	needs := fromCapability(tracer.Capability{Name: tracer.CapErrors, Loses: "no socket errors", Needs: "the tracepoint inet_sk_error_report"}, nil)
	if needs.Status != Missing || needs.Needs != "the tracepoint inet_sk_error_report" {
		t.Errorf("missing with a known cause: %+v; want what the kernel lacks in Needs", needs)
	}
	if deg.Needs != "" {
		t.Errorf("a degraded capability needs %q; want Needs only where missing", deg.Needs)
	}

	miss := fromCapability(tracer.Capability{Name: tracer.CapBirths, Loses: "no births", Tried: []tracer.HookError{refused, verifier}}, nil)
	want := tracer.HookSocket + ": refused by the kernel (EPERM); " + tracer.HookSocketTP + ": rejected by the verifier"
	if miss.Status != Missing || miss.Loses != "no births" || miss.Why != want {
		t.Errorf("nothing loaded: %+v; want missing, loses, why %q", miss, want)
	}

	priv := fromCapability(tracer.Capability{Name: tracer.CapCookies, Loses: "later cookies"},
		&tracer.PrivilegeError{Missing: []string{"CAP_BPF"}})
	if priv.Status != Missing || priv.Why != "loading BPF programs needs CAP_BPF (run as root or grant them)" {
		t.Errorf("not privileged: %+v; want missing, why naming the capability", priv)
	}
}

func TestWhyErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("disabled"), "disabled"},
		{fmt.Errorf("attaching: %w", unix.ENOENT), "not in this kernel"},
		{fmt.Errorf("attaching: %w", ebpf.ErrNotSupported), "not in this kernel"},
		{fmt.Errorf("loading: %w", &ebpf.VerifierError{Cause: unix.EINVAL}), "invalid argument"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", unix.EBUSY)), "device or resource busy"},
	} {
		if got := whyErr(c.err); got != c.want {
			t.Errorf("whyErr(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestStacks(t *testing.T) {
	births := Row{Name: tracer.CapBirths, Status: OK, Object: "btf"}
	trans := Row{Name: tracer.CapTransitions, Status: OK, Object: "core"}
	if s := stacks(births, trans); s.Status != OK || s.Variant != "user stacks at socket() (btf), connect() (core)" {
		t.Errorf("both there: %+v", s)
	}
	lacking := trans
	lacking.Status, lacking.Lacks = Degraded, []string{tracer.LackUserRet, tracer.LackCookieGen}
	if s := stacks(births, lacking); s.Status != Degraded || len(s.Lacks) != 1 || s.Lacks[0] != tracer.LackUserRet {
		t.Errorf("transitions without the wrapper's caller: %+v; want degraded lacking only that", s)
	}
	gone := Row{Name: tracer.CapBirths, Status: Missing, Why: "needs CAP_BPF"}
	if s := stacks(gone, trans); s.Status != Degraded || len(s.Lacks) != 1 || s.Lacks[0] != noBirthStacks {
		t.Errorf("no births: %+v; want degraded without creating stacks", s)
	}
	goneToo := Row{Name: tracer.CapTransitions, Status: Missing, Why: "needs CAP_BPF"}
	if s := stacks(gone, goneToo); s.Status != Missing || s.Why != "needs CAP_BPF" || s.Variant != "" {
		t.Errorf("neither: %+v; want missing, for the reason both share", s)
	}
}

func TestCounts(t *testing.T) {
	r := Report{Capabilities: []Row{{Status: OK}, {Status: Degraded}, {Status: Missing}, {Status: OK}}}
	if ok, d, m := r.Counts(); ok != 2 || d != 1 || m != 1 {
		t.Errorf("Counts = %d, %d, %d; want 2, 1, 1", ok, d, m)
	}
}
