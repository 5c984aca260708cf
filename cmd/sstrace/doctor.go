package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sstrace/snapshot/doctor"
)

type doctorOptions struct {
	json, verbose bool
	disable       []string
}

func newDoctorCmd(stdout, stderr io.Writer) *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [-v] [-j]",
		Short: "what this kernel lets sstrace do: each capability, the variant in use, what is missing",
		Long: `doctor probes, once, everything sstrace may use on this kernel and prints one
row per capability: ok, degraded or missing, the variant in use, and for the
degraded and missing ones what you go without. Nothing it loads stays
attached; it takes under a second.

The rows: the kernel; the listing of each socket family (sock_diag: tcp, udp,
mptcp, raw, unix, packet, netlink; raw falls back to /proc/net/raw as ss does
where the kernel has no raw_diag); owners (-p: the BPF fd inventory, else a
walk of /proc); the network namespace cookie (--netns); the fd inventory;
then each thing the tracer observes (cookies, births, accepts, transitions,
releases, destroys, resets, handshake retransmits, socket errors), user
stacks, and follow mode (process forks and exits, for leaks -- CMD and --pid).

Each tracer capability has a ladder of variants: hooks, best first (an fexit
where BPF trampolines load, else a tracepoint), each tried with three builds
of sstrace's BPF programs, best first:
  btf        plain loads through BTF pointers, made with the kfunc
             bpf_rdonly_cast (Linux 6.2+): the cheapest
  core       every field read with bpf_probe_read_kernel at CO-RE offsets,
             no kfunc (what 6.1 needs)
  core-5.10  core using only the helpers 5.10 has: goes without generating
             missing socket cookies, the caller of glibc's syscall wrapper in
             stacks, and whether a close came from its owner's exit
A capability whose variant goes without something is degraded, and says what.
The fd inventory's variants are named by object too; "cookies read" reads each
socket's cookie instead of generating it (a dump completes the rest).

-v adds, under each capability, every variant that was refused and the
kernel's reason, the verifier's whole log included. -j prints one JSON
document (with -v, the verifier logs too).

Doctor exits 0 whatever it finds: it is a report. Without root it says which
privileges tracing needs and still reports what needs none (the listing).`,
		Example: `  sstrace doctor
  sstrace doctor -v
  SSTRACE_BPF_OBJECT=core-5.10 sstrace doctor   # start every ladder at core-5.10`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.Context(), stdout, &o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.json, "json", "j", false, "print one JSON document")
	fl.BoolVarP(&o.verbose, "verbose", "v", false, "show every variant tried and the kernel's reason, verifier log included")
	fl.StringSliceVar(&o.disable, "disable-hooks", nil, "hooks not to try, e.g. tp_btf/tcp_receive_reset (test plumbing)")
	fl.MarkHidden("disable-hooks")
	return cmd
}

func runDoctor(ctx context.Context, stdout io.Writer, o *doctorOptions) error {
	r, err := doctor.Gather(ctx, doctor.Options{Disable: o.disable})
	if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	if o.json {
		err = printDoctorJSON(w, r, o.verbose)
	} else {
		printDoctor(w, &r, o.verbose)
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil && !errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// printDoctorJSON writes the report as one document; the verifier logs
// only with -v (they run to hundreds of lines).
func printDoctorJSON(w io.Writer, r doctor.Report, verbose bool) error {
	if !verbose {
		caps := make([]doctor.Row, len(r.Capabilities))
		for i, c := range r.Capabilities {
			if len(c.Tried) > 0 {
				c.Tried = append([]doctor.Attempt(nil), c.Tried...)
				for j := range c.Tried {
					c.Tried[j].Log = nil
				}
			}
			caps[i] = c
		}
		r.Capabilities = caps
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("doctor: encoding JSON: %w", err)
	}
	w.Write(b)
	_, err = io.WriteString(w, "\n")
	return err
}

// printDoctor writes the table: capability, status, variant in use, and
// under a degraded or missing one what it costs; -v adds every variant
// refused, with the kernel's reason and the verifier's log.
func printDoctor(w io.Writer, r *doctor.Report, verbose bool) {
	kernel := r.Kernel + " (" + r.Machine + "), "
	if r.BTF {
		kernel += "BTF at /sys/kernel/btf/vmlinux"
	} else {
		kernel += "no BTF (/sys/kernel/btf/vmlinux): no tracing hook can load"
	}
	if r.FirstObject != "" {
		kernel += "; objects from " + r.FirstObject + " on (SSTRACE_BPF_OBJECT)"
	}
	nameW, statusW := len("CAPABILITY"), len("degraded")
	for _, c := range r.Capabilities {
		nameW = max(nameW, len(c.Name))
	}
	indent := strings.Repeat(" ", nameW+2+statusW+2)
	row := func(name, status, text string) {
		fmt.Fprintf(w, "%-*s  %-*s  %s", nameW, name, statusW, status, text)
		fmt.Fprintln(w)
	}
	row("CAPABILITY", "STATUS", "IN USE")
	row("kernel", "", kernel)
	for _, c := range r.Capabilities {
		text := c.Variant
		switch {
		case c.Status == doctor.Missing:
			text = "none: " + c.Why
		case c.Why != "":
			text += " (" + c.Why + ")"
		}
		row(c.Name, string(c.Status), strings.TrimRight(text, " "))
		for _, l := range c.Lacks {
			fmt.Fprintf(w, "%slacks: %s\n", indent, l)
		}
		if c.Needs != "" {
			fmt.Fprintf(w, "%sneeds: %s\n", indent, c.Needs)
		}
		if c.Loses != "" {
			fmt.Fprintf(w, "%sloses: %s\n", indent, c.Loses)
		}
		if !verbose {
			continue
		}
		for _, a := range c.Tried {
			what := a.Hook
			if a.Object != "" {
				what += " (" + a.Object + ")"
			}
			fmt.Fprintf(w, "%stried %s: %s\n", indent, what, a.Reason)
			for _, l := range a.Log {
				fmt.Fprintf(w, "%s  | %s\n", indent, l)
			}
		}
	}
	fmt.Fprintln(w)
	if len(r.MissingPrivileges) > 0 {
		fmt.Fprintf(w, "not privileged: tracing needs %s; the BPF capabilities are reported missing for that, not for the kernel (run as root to see what it allows)\n",
			strings.Join(r.MissingPrivileges, ", "))
	}
	ok, degraded, missing := r.Counts()
	fmt.Fprintf(w, "%d ok, %d degraded%s, %d missing%s",
		ok, degraded, names(r, doctor.Degraded), missing, names(r, doctor.Missing))
	if !verbose {
		fmt.Fprint(w, "; sstrace doctor -v shows every variant tried and the kernel's reasons")
	}
	fmt.Fprintln(w)
}

// names lists the capabilities in status s, in parentheses ("" if none).
func names(r *doctor.Report, s doctor.Status) string {
	var n []string
	for _, c := range r.Capabilities {
		if c.Status == s {
			n = append(n, c.Name)
		}
	}
	if len(n) == 0 {
		return ""
	}
	return " (" + strings.Join(n, ", ") + ")"
}
