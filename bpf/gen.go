// Package bpf holds sstrace's BPF program (sstrace.bpf.c) and the Go
// bindings bpf2go generates from it. The generated files are committed so
// that `go build` needs no clang; `make generate` rebuilds them.
//
// The one source is built twice: Sstrace, the primary object (plain loads
// through BTF pointers, the kfunc bpf_rdonly_cast: 6.2+), and
// SstraceCompat (-DSSTRACE_COMPAT: every kernel field read with
// bpf_probe_read_kernel at CO-RE offsets, no kfunc), which the tracer
// loads program by program where the kernel refuses the primary's.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I./include" -target bpfel -type event -type stacked_event -type inv_rec -type sock_info Sstrace sstrace.bpf.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I./include -DSSTRACE_COMPAT" -target bpfel SstraceCompat sstrace.bpf.c
