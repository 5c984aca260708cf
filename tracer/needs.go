package tracer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// helperSince: the first kernel that offers a helper to the program types
// sstrace uses, for the helpers a supported kernel may lack.
var helperSince = map[string]string{
	"bpf_sock_from_file":       "5.11",
	"bpf_get_current_task_btf": "5.11",
	"bpf_task_pt_regs":         "5.15",
	"bpf_get_socket_cookie":    "5.12 for tracing programs",
	"bpf_ringbuf_query":        "5.8",
	"bpf_ringbuf_reserve":      "5.8",
	"bpf_get_netns_cookie":     "5.8 for cgroup programs",
}

var (
	unknownHelper = regexp.MustCompile(`(?:unknown|invalid) func (?:(\w+)#(\d+)|unknown#(\d+))`)
	missingKfunc  = regexp.MustCompile(`kfunc "(\w+)": not supported`)
	missingRawTP  = regexp.MustCompile(`raw_tp (\w+) not supported|tracepoint (\S+) not found|target (\w+) not found`)
	untrusted     = regexp.MustCompile(`call (\w+)#\d+: R\d type=untrusted_ptr_`)
)

// Needs names the kernel feature whose absence the error of a refused
// variant shows ("" when it is not one sstrace recognizes): what doctor
// says a kernel lacks, instead of the verifier's words.
func Needs(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if m := missingKfunc.FindStringSubmatch(msg); m != nil {
		if m[1] == "bpf_rdonly_cast" {
			return "the kfunc bpf_rdonly_cast (6.2+)"
		}
		return "the kfunc " + m[1]
	}
	if m := unknownHelper.FindStringSubmatch(msg); m != nil {
		name := m[1]
		if name == "" || name == "unknown" {
			id, _ := strconv.Atoi(m[2] + m[3])
			name = helperName(asm.BuiltinFunc(id))
		}
		if since, ok := helperSince[name]; ok {
			return fmt.Sprintf("the helper %s (%s)", name, since)
		}
		return "the helper " + name
	}
	if m := untrusted.FindStringSubmatch(msg); m != nil {
		return m[1] + " on a pointer this kernel's verifier does not trust"
	}
	if m := missingRawTP.FindStringSubmatch(msg); m != nil {
		return "the tracepoint " + strings.Join(m[1:], "")
	}
	if errors.Is(err, unix.EPERM) {
		return "permission to load this program type (kernel lockdown, or no ftrace for BPF trampolines)"
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return "the attach point"
	}
	return ""
}

// helperName is the kernel's name of a helper (asm.FnSockFromFile ->
// bpf_sock_from_file).
func helperName(f asm.BuiltinFunc) string {
	s := strings.TrimPrefix(f.String(), "Fn")
	var b strings.Builder
	b.WriteString("bpf")
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			// An initialism stays whole: FnGetNetnsCookie, FnSkbCgroupId.
			if i == 0 || !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
