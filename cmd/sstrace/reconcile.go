package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sstrace/snapshot"
)

type reconcileOptions struct {
	json  bool
	netns string
}

func newReconcileCmd(stdout, stderr io.Writer) *cobra.Command {
	var o reconcileOptions
	cmd := &cobra.Command{
		Use:   "reconcile [-j] [--netns PATH]",
		Short: "set the kernel's TCP counters (ss -s) beside sstrace's own enumeration",
		Long: `reconcile reads /proc/net/sockstat and sockstat6 and sets each TCP counter beside
what sstrace finds itself, in every network namespace it can enter: hashed
sockets by state, TIME-WAIT and request minisockets, bound-only sockets
(sock_diag), never-hashed sockets processes hold (BPF iter/task_file) and
orphans. inuse and tw are per namespace; alloc and orphan are global and are
set against the sum over all namespaces.

It then takes ss -s's "closed" apart (alloc - (inuse + inuse6 - tw): on this
kernel the never-hashed sockets plus this namespace's TIME-WAIT sockets plus
the hashed sockets of other namespaces), names every remaining difference
(sockets created or freed during the reads, namespaces it could not enter,
kernel sockets with no fd) and ends with a verdict line.

The fd inventory needs CAP_BPF and CAP_PERFMON; without them reconcile says so
and reports what sock_diag and the counters give.`,
		Example: `  sstrace reconcile
  sstrace reconcile -j
  sstrace reconcile --netns /run/netns/blue`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReconcile(stdout, stderr, &o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.json, "json", "j", false, "print one JSON document")
	fl.StringVar(&o.netns, "netns", "", "the namespace whose counters ss -s would show (default: sstrace's own)")
	return cmd
}

func runReconcile(stdout, stderr io.Writer, o *reconcileOptions) error {
	in, err := snapshot.GatherReconcile(snapshot.ReconcileOptions{ThisNetNS: o.netns})
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if !in.Inventory {
		fmt.Fprintf(stderr, "sstrace: no fd inventory (%s): never-hashed sockets held by processes are not told apart from kernel ones\n", in.InventoryError)
	}
	r := snapshot.Reconcile(in)
	w := bufio.NewWriterSize(stdout, 64<<10)
	if o.json {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("reconcile: encoding JSON: %w", err)
		}
		w.Write(b)
		w.WriteByte('\n')
	} else {
		printReconcile(w, &r)
	}
	if err := w.Flush(); err != nil && !errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func reconcileNSLabel(r *snapshot.Reconciliation, ino uint64) string {
	if ino == 0 {
		return "global"
	}
	if ino == r.ThisNetNS {
		return snapshot.NSName(ino) + " this"
	}
	return snapshot.NSName(ino)
}

func printReconcile(w io.Writer, r *snapshot.Reconciliation) {
	entered, other := 0, 0
	for i := range r.Namespaces {
		if r.Namespaces[i].Entered {
			entered++
		} else {
			other++
		}
	}
	inv := "every process's fds (BPF iter/task_file)"
	if !r.Inventory {
		inv = "none (" + r.InventoryError + ")"
	}
	fmt.Fprintf(w, "TCP: /proc/net/sockstat{,6} against sstrace's enumeration\n")
	fmt.Fprintf(w, "namespaces: %d entered, %d not; fd inventory: %s", entered, other, inv)
	if r.Attempts > 1 {
		fmt.Fprintf(w, "; %d attempts (alloc or orphan moved during the reads)", r.Attempts)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	// Per namespace, what sstrace found.
	rows := [][]string{{"NETNS", "LISTEN", "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSING",
		"TIME-WAIT", "REQUEST", "BOUND", "UNHASHED", "ORPHAN", "UNACCEPTED"}}
	for i := range r.Namespaces {
		ns := &r.Namespaces[i]
		unhashed := fmt.Sprint(ns.FDs.NeverHashed())
		if !r.Inventory {
			unhashed = "?"
		}
		if !ns.Entered {
			rows = append(rows, []string{reconcileNSLabel(r, ns.NetNS), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", unhashed, "-", "-"})
			continue
		}
		c := ns.V4
		c.Add(ns.V6)
		row := []string{reconcileNSLabel(r, ns.NetNS)}
		for _, v := range []int64{c.Listen, c.Established, c.SynSent, c.SynRecv, c.FinWait1 + c.FinWait2, c.CloseWait,
			c.LastAck, c.Closing, c.TimeWait, c.Request, c.BoundInactive} {
			row = append(row, fmt.Sprint(v))
		}
		rows = append(rows, append(row, unhashed, fmt.Sprint(c.Orphans), fmt.Sprint(c.Unaccepted)))
	}
	reconcileTable(w, rows, 1, func(col int) bool { return col > 0 })
	for i := range r.Namespaces {
		if ns := &r.Namespaces[i]; !ns.Entered {
			fmt.Fprintf(w, "%s not entered: %s", snapshot.NSName(ns.NetNS), ns.Error)
			if ns.FDs.Sockets > 0 {
				fmt.Fprintf(w, " (%s held by fds there)", reconcilePlural(int(ns.FDs.Sockets), "TCP socket"))
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)

	// The counters beside sstrace's numbers.
	rows = [][]string{{"COUNTER", "NETNS", "SOCKSTAT", "SSTRACE", "DIFF", "WHAT SSTRACE COUNTED"}}
	for _, row := range r.Rows {
		diff := fmt.Sprint(row.Diff)
		if row.Diff > 0 {
			diff = "+" + diff
		}
		note := row.Note
		if row.Sockstat != row.SockstatAfter {
			note += fmt.Sprintf("; the counter moved %d → %d during the reads", row.Sockstat, row.SockstatAfter)
		}
		if row.Unexplained != 0 {
			note += fmt.Sprintf("; %+d unexplained", row.Unexplained)
		}
		rows = append(rows, []string{row.Counter, reconcileNSLabel(r, row.NetNS), fmt.Sprint(row.Sockstat), fmt.Sprint(row.Sstrace), diff, note})
	}
	reconcileTable(w, rows, 2, func(col int) bool { return col >= 2 && col <= 4 })
	fmt.Fprintln(w)

	a := &r.Alloc
	fmt.Fprintf(w, "alloc %d (global: full TCP sockets of every namespace, not TIME-WAIT or request minisockets)", a.Alloc)
	if a.AllocAfter != a.Alloc {
		fmt.Fprintf(w, "; %d after the reads: sockets created/freed during them (%+d)", a.AllocAfter, a.AllocAfter-a.Alloc)
	}
	fmt.Fprintln(w)
	parts := [][2]string{
		{fmt.Sprint(a.Hashed), fmt.Sprintf("hashed in %s: listeners and the established hash, what inuse counts (sock_diag)", reconcilePlural(entered, "namespace"))},
		{fmt.Sprint(a.BoundInactive), "bound only, never listened on or connected (sock_diag, state bit 13)"},
	}
	if r.Inventory {
		parts = append(parts, [2]string{fmt.Sprint(a.NeverUsed + a.ClosedAfterUse),
			fmt.Sprintf("never hashed, held by fds: %d never used, %d closed after use (iter/task_file)", a.NeverUsed, a.ClosedAfterUse)})
		if a.Changed != 0 {
			parts = append(parts, [2]string{fmt.Sprint(a.Changed), "held by fds, changed state between the dumps and the inventory"})
		}
		if a.OtherNS != 0 {
			parts = append(parts, [2]string{fmt.Sprint(a.OtherNS), fmt.Sprintf("held by fds in namespaces sstrace could not enter (%d in CLOSE)", a.OtherNSInClose)})
		}
	}
	if a.Moved != 0 {
		parts = append(parts, [2]string{fmt.Sprint(a.Moved), "created/freed during the reads"})
	}
	if a.Unexplained != 0 {
		what := "found nowhere: kernel sockets with no fd that are not hashed, or in namespaces sstrace could not enter"
		if !r.Inventory {
			what = "not hashed: held by processes or by the kernel (no fd inventory to tell)"
		}
		if a.MPTCPUnmatched > 0 && a.Unexplained > 0 {
			what += fmt.Sprintf("; up to %d unhashed subflows of MPTCP sockets in CLOSE", min(a.MPTCPUnmatched, a.Unexplained))
		}
		parts = append(parts, [2]string{fmt.Sprint(a.Unexplained), what})
	}
	reconcileParts(w, parts)

	if c := &r.Closed; r.Closed.Namespaces > 0 {
		fmt.Fprintf(w, "closed %d (ss -s in %s) = alloc %d − (inuse %d + inuse6 %d − tw %d)\n",
			c.SS, snapshot.NSName(r.ThisNetNS), c.Alloc, c.InUse, c.InUse6, c.TW)
		held := fmt.Sprintf("%d held by fds", c.HeldByFDs)
		if !r.Inventory {
			held = "those held by fds unknown"
		}
		parts := [][2]string{
			{fmt.Sprint(c.NeverHashed), fmt.Sprintf("never hashed: %d bound only + %s; what \"closed\" means to say", c.BoundInactive, held)},
			{fmt.Sprint(c.TimeWait), "TIME-WAIT of this namespace: in neither alloc nor inuse, yet ss subtracts tw from inuse"},
			{fmt.Sprint(c.OtherNamespaces), "hashed in other namespaces: alloc is global, inuse per namespace"},
		}
		if c.Changed != 0 {
			parts = append(parts, [2]string{fmt.Sprint(c.Changed), "changed state during the reads"})
		}
		if c.Rest != 0 {
			what := "alloc's remaining gap (see above), less this namespace's inuse differences"
			if !r.Inventory {
				what = "not hashed and not found: held by fds or by the kernel (no fd inventory to tell)"
			}
			parts = append(parts, [2]string{fmt.Sprint(c.Rest), what})
		}
		reconcileParts(w, parts)
		fmt.Fprintf(w, "never hashed by the counters: alloc − Σ (inuse + inuse6) over %s = %d (sstrace found %d)\n",
			reconcilePlural(c.Namespaces, "namespace"), c.ByCounters, c.NeverHashed)
	}
	for _, e := range r.Explanations {
		fmt.Fprintf(w, "note: %s\n", e)
	}
	fmt.Fprintf(w, "verdict: %s\n", r.Verdict)
}

// reconcileTable prints rows in columns gap spaces apart, right-aligned where
// right says so; the last column is not padded.
func reconcileTable(w io.Writer, rows [][]string, gap int, right func(col int) bool) {
	var width []int
	for _, row := range rows {
		for i, c := range row {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		for i, c := range row {
			if i > 0 {
				b.WriteString(strings.Repeat(" ", gap))
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case right(i):
				b.WriteString(pad + c)
			case i == len(row)-1:
				b.WriteString(c)
			default:
				b.WriteString(c + pad)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// reconcilePlural says "1 socket", "2 sockets".
func reconcilePlural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// reconcileParts prints "  = n  what" / "  + n  what" lines with the numbers
// aligned.
func reconcileParts(w io.Writer, parts [][2]string) {
	width := 0
	for _, p := range parts {
		width = max(width, len(p[0]))
	}
	for i, p := range parts {
		op := "+"
		if i == 0 {
			op = "="
		}
		fmt.Fprintf(w, "  %s %s%s  %s\n", op, strings.Repeat(" ", width-len(p[0])), p[0], p[1])
	}
}
