package tracer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

func TestNeeds(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		// The words the kernels of the matrix refused with.
		{errors.New(`field Prog: program prog: fixing up kfuncs: kfunc "bpf_rdonly_cast": not supported`), "the kfunc bpf_rdonly_cast (6.2+)"},
		{errors.New(`load program: invalid argument: unknown func bpf_get_socket_cookie#46 (30 line(s) omitted)`), "the helper bpf_get_socket_cookie (5.12 for tracing programs)"},
		{errors.New(`load program: invalid argument: invalid func unknown#162 (66 line(s) omitted)`), "the helper bpf_sock_from_file (5.11)"},
		{errors.New(`attach Tracing/TraceRawTp: raw_tp inet_sk_error_report not supported`), "the tracepoint inet_sk_error_report"},
		{errors.New(`31: (85) call bpf_get_socket_cookie#46: R1 type=untrusted_ptr_ expected=sock_common`), "bpf_get_socket_cookie on a pointer this kernel's verifier does not trust"},
		{fmt.Errorf("load program: %w", unix.EPERM), "permission to load this program type (kernel lockdown, or no ftrace for BPF trampolines)"},
		{errors.New("something else"), ""},
		{nil, ""},
	} {
		if got := Needs(c.err); got != c.want {
			t.Errorf("Needs(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestHelperName(t *testing.T) {
	for f, want := range map[asm.BuiltinFunc]string{
		asm.FnSockFromFile:      "bpf_sock_from_file",
		asm.FnGetSocketCookie:   "bpf_get_socket_cookie",
		asm.FnGetCurrentTaskBtf: "bpf_get_current_task_btf",
		asm.FnTaskPtRegs:        "bpf_task_pt_regs",
	} {
		if got := helperName(f); got != want {
			t.Errorf("helperName(%v) = %q, want %q", f, got, want)
		}
	}
}
