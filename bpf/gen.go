// Package bpf holds sstrace's BPF program (sstrace.bpf.c) and the Go
// bindings bpf2go generates from it. The generated files are committed so
// that `go build` needs no clang; `make generate` rebuilds them.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I./include" -target bpfel -type event -type stacked_event -type inv_rec -type sock_info Sstrace sstrace.bpf.c
