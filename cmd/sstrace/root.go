package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sstrace/cmd/sstrace/render"
	"sstrace/snapshot"
	"sstrace/snapshot/filter"
	"sstrace/tracer"
)

// ssVersion is the ss whose output sstrace reproduces.
const ssVersion = "iproute2-6.1.0"

// listFlags are ss's options.
type listFlags struct {
	numeric, resolve, options, extended, memory, processes, info bool
	summary, noHeader, oneline, json, version                    bool
	tcp, udp, dccp, raw, unixSock, packet, all, listening        bool
	ipv4, ipv6                                                   bool
	families, queries                                            []string
	diag, filterFile                                             string
	force                                                        bool
}

func newRootCmd(rawArgs []string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "sstrace [OPTIONS] [FILTER]",
		Short: "ss with a memory: list sockets like ss, trace their lives with BPF",
		Long: `sstrace lists sockets exactly like iproute2's ss (same options, filter language,
columns and output), and with BPF underneath records each socket's birth, state
transitions and death.

Listing (as ss):
  sstrace                  connected sockets of every kind (ss's default)
  sstrace -tan             all TCP sockets, numeric
  sstrace -tlnp            listening TCP sockets with their processes
  sstrace -x               unix sockets
  sstrace -tanep -j        the same as JSON, with cookie, inode, netns and owners

Owners (-p) come from a BPF iterator over every process's file table: one pass
in the kernel instead of ss's walk of /proc. Without BPF privileges sstrace
falls back to /proc, as ss does.`,
		Example: `  sstrace -tan state established
  sstrace -t -4 -l -n -p
  sstrace -A unix_stream -a`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.version {
				fmt.Fprintf(stdout, "sstrace %s (ss utility compatible with %s)\n", version, ssVersion)
				return nil
			}
			return runList(cmd, stdout, stderr, &f, selectionOrder(rawArgs), args)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.BoolVarP(&f.numeric, "numeric", "n", false, "don't resolve service names")
	fl.BoolVarP(&f.resolve, "resolve", "r", false, "resolve host names")
	fl.BoolVarP(&f.all, "all", "a", false, "display all sockets (listening and not)")
	fl.BoolVarP(&f.listening, "listening", "l", false, "display listening sockets")
	fl.BoolVarP(&f.options, "options", "o", false, "show timer information")
	fl.BoolVarP(&f.extended, "extended", "e", false, "show detailed socket information (uid, inode, cookie)")
	fl.BoolVarP(&f.memory, "memory", "m", false, "show socket memory usage")
	fl.BoolVarP(&f.processes, "processes", "p", false, "show the processes using each socket")
	fl.BoolVarP(&f.info, "info", "i", false, "show internal TCP information")
	fl.BoolVarP(&f.summary, "summary", "s", false, "show socket usage summary")
	fl.BoolVarP(&f.ipv4, "ipv4", "4", false, "display only IP version 4 sockets")
	fl.BoolVarP(&f.ipv6, "ipv6", "6", false, "display only IP version 6 sockets")
	fl.BoolVarP(&f.packet, "packet", "0", false, "display PACKET sockets")
	fl.BoolVarP(&f.tcp, "tcp", "t", false, "display TCP sockets")
	fl.BoolVarP(&f.udp, "udp", "u", false, "display UDP sockets")
	fl.BoolVarP(&f.dccp, "dccp", "d", false, "display DCCP sockets")
	fl.BoolVarP(&f.raw, "raw", "w", false, "display RAW sockets")
	fl.BoolVarP(&f.unixSock, "unix", "x", false, "display Unix domain sockets")
	fl.StringArrayVarP(&f.families, "family", "f", nil, "display sockets of type FAMILY: unix, inet, inet6, link, netlink")
	fl.StringArrayVarP(&f.queries, "query", "A", nil, "socket tables to show: all, inet, tcp, udp, raw, unix, packet, netlink, ... (comma list, ! excludes)")
	fl.StringArrayVar(&f.queries, "socket", nil, "alias of --query")
	fl.StringVarP(&f.diag, "diag", "D", "", "dump raw information about TCP sockets to FILE")
	fl.StringVarP(&f.filterFile, "filter", "F", "", "read filter information from FILE (- for standard input)")
	fl.BoolVar(&f.force, "force", false, "replace an existing output file (-D)")
	fl.BoolVarP(&f.noHeader, "no-header", "H", false, "suppress the header line")
	fl.BoolVarP(&f.oneline, "oneline", "O", false, "print each socket's data on a single line")
	fl.BoolVarP(&f.json, "json", "j", false, "print JSON: one document for a listing")
	fl.BoolVarP(&f.version, "version", "V", false, "print the version")
	fl.MarkHidden("socket")
	cmd.AddCommand(newDoctorCmd(stdout, stderr))
	cmd.AddCommand(newLeaksCmd(stdout, stderr))
	cmd.AddCommand(newReconcileCmd(stdout, stderr))
	cmd.AddCommand(newStallsCmd(stdout, stderr))
	cmd.AddCommand(newTraceCmd(stdout, stderr))
	cmd.AddCommand(newTimelineCmd(stdout, stderr))
	cmd.AddCommand(newWatchCmd(stdout, stderr))
	return cmd
}

// selectionOrder lists ss's order-sensitive options in command-line order:
// ss's result depends on it (-a -l differs from -l -a; the last family
// option decides which inet families are dumped).
func selectionOrder(args []string) []filter.Opt {
	long := map[string]string{
		"tcp": "t", "udp": "u", "dccp": "d", "raw": "w", "unix": "x", "packet": "0",
		"ipv4": "4", "ipv6": "6", "all": "a", "listening": "l", "family": "f",
		"query": "A", "socket": "A",
	}
	withArg := map[byte]bool{'f': true, 'A': true, 'D': true, 'F': true}
	var out []filter.Opt
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return out
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			letter, ok := long[name]
			if !ok {
				if name == "diag" || name == "filter" {
					if !hasVal {
						i++
					}
				}
				continue
			}
			if letter == "f" || letter == "A" {
				if !hasVal && i+1 < len(args) {
					i++
					val = args[i]
				}
			}
			out = append(out, filter.Opt{Name: letter, Arg: val})
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				c := a[j]
				if withArg[c] {
					val := a[j+1:]
					if val == "" && i+1 < len(args) {
						i++
						val = args[i]
					}
					if c == 'f' || c == 'A' {
						out = append(out, filter.Opt{Name: string(c), Arg: val})
					}
					break
				}
				if strings.IndexByte("tudwxS0M46al", c) >= 0 {
					out = append(out, filter.Opt{Name: string(c)})
				}
			}
		}
	}
	return out
}

// splitStates takes ss's leading `state X` / `exclude X` arguments off the
// filter.
// selectTables reads the state list at the start of args and the table
// and family options (order) as ss does, and returns the selection and
// the expression after the states. When nothing can match, it prints ss's
// answer to stderr and returns ok false: ss then exits 0.
func selectTables(order []filter.Opt, args []string, stderr io.Writer) (sel filter.Selection, expr []string, ok bool, err error) {
	stateArgs, expr, err := splitStates(args)
	if err != nil {
		return sel, nil, false, err
	}
	if sel, err = filter.Select(order, stateArgs); err != nil {
		return sel, nil, false, err
	}
	switch {
	case sel.DBs == 0:
		fmt.Fprintln(stderr, "sstrace: no socket tables to show with such filter.")
	case sel.Families == 0:
		fmt.Fprintln(stderr, "sstrace: no families to show with such filter.")
	case sel.States == 0:
		fmt.Fprintln(stderr, "sstrace: no socket states to show with such filter.")
	default:
		return sel, expr, true, nil
	}
	return sel, expr, false, nil
}

func splitStates(args []string) ([]filter.StateArg, []string, error) {
	var states []filter.StateArg
	for len(args) > 0 {
		var excl bool
		switch args[0] {
		case "state":
		case "exclude", "excl":
			excl = true
		default:
			return states, args, nil
		}
		if len(args) < 2 {
			return nil, nil, fmt.Errorf("filter: %q needs a state name after it", args[0])
		}
		states = append(states, filter.StateArg{Name: args[1], Exclude: excl})
		args = args[2:]
	}
	return states, nil, nil
}

// notYet names options whose output sstrace does not reproduce yet: an
// honest error beats a listing that silently differs from ss.
func notYet(f *listFlags) error {
	var missing []string
	for _, o := range []struct {
		set  bool
		name string
	}{} {
		if o.set {
			missing = append(missing, o.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: not implemented yet in this version of sstrace", strings.Join(missing, " "))
	}
	return nil
}

func runList(cmd *cobra.Command, stdout, stderr io.Writer, f *listFlags, order []filter.Opt, args []string) error {
	// A listing lives for one dump: collecting garbage while it builds the
	// table costs more than the dump itself (measured: at 32k sockets 0.23 s
	// with the default GOGC, 0.08 s without, ss 0.10 s). The memory limit
	// keeps a huge table from growing without bound: the collector runs
	// again as the heap nears it.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(listMemoryLimit)
	if err := notYet(f); err != nil {
		return err
	}
	if f.summary {
		if err := printSummary(stdout); err != nil {
			return err
		}
		// ss: the summary alone unless an option chose tables or families
		// (leaving its default mode) or arguments follow.
		if defaultMode(order) && len(args) == 0 {
			return nil
		}
	}
	sel, expr, ok, err := selectTables(order, args, stderr)
	if err != nil || !ok {
		return err
	}

	if f.diag != "" {
		return dumpTCPDiag(stdout, stderr, sel, f.diag, f.force)
	}
	// The expression (and -F FILE) comes after, as in ss: it may narrow
	// the families (src unix:..., -4 values).
	var file *string
	if f.filterFile != "" {
		text, err := readFilterFile(cmd.InOrStdin(), f.filterFile)
		if err != nil {
			return err
		}
		file = &text
	}
	cond, err := sel.ParseFilter(expr, file, filter.System)
	if err != nil {
		return err
	}
	req := sel.ListRequest()
	// As ss does, the kernel filters the inet tables first; Eval below
	// still sees every row that comes back.
	req.Bytecode = filter.Bytecode(cond)
	req.Details = f.extended
	if f.info {
		req.Ext |= 1<<(snapshot.InetDiagInfo-1) | 1<<(snapshot.InetDiagVegasInfo-1) | 1<<(snapshot.InetDiagCong-1)
	}
	if f.memory {
		req.Ext |= 1<<(snapshot.InetDiagMemInfo-1) | 1<<(snapshot.InetDiagSkMemInfo-1)
		req.UnixMemInfo = true
	}
	socks, err := snapshot.List(req)
	if err != nil {
		return err
	}
	if sel.Has(filter.DCCP) {
		socks = appendDCCP(stderr, socks, sel)
	}
	if cond != nil {
		kept := socks[:0]
		for i := range socks {
			if filter.Eval(cond, &socks[i]) {
				kept = append(kept, socks[i])
			}
		}
		socks = kept
	}
	if f.processes {
		ino, err := tracer.NetNSInode("")
		if err != nil {
			return err
		}
		owners, src, why, err := snapshot.TakeOwners(tracer.NetNS{Inode: ino})
		if err != nil {
			return fmt.Errorf("finding socket owners: %w", err)
		}
		// Without privileges /proc is what ss reads too: no word. A
		// kernel that refuses the iterator is a finding, whose reasons
		// (a verifier log) are doctor's to show.
		if src != snapshot.OwnersBPF && !snapshot.IsPermission(why) {
			fmt.Fprintf(stderr, "sstrace: warning: owners from %s: this kernel refuses the fd inventory (run 'sstrace doctor' for why)\n", src)
		}
		owners.Attach(socks)
	}

	opt := render.Options{
		ShowNetid: sel.ShowNetid(),
		ShowState: sel.ShowState(),
		Header:    !f.noHeader,
		Numeric:   f.numeric,
		Resolve:   f.resolve,
		Options:   f.options || f.extended,
		Extended:  f.extended,
		Processes: f.processes,
		Oneline:   f.oneline,
		Memory:    f.memory,
		Info:      f.info,
		// ss names MPTCP ports with the protocol of the last inet table
		// listed before them.
		MPTCPServices: mptcpServices(sel),
	}
	if !f.numeric {
		// Like ss, a missing /etc/services (or /etc/protocols) just means
		// numbers.
		if svc, err := render.LoadServices("/etc/services"); err == nil {
			opt.Services = svc
		}
		if p, err := render.LoadProtocols("/etc/protocols"); err == nil {
			opt.Protocols = p
		}
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	if f.json {
		err = render.JSON(w, socks, opt)
	} else {
		opt.ScreenWidth = screenWidth(stdout)
		err = render.Table(w, socks, opt)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if err := w.Flush(); err != nil && !errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// screenWidth is the terminal's width when stdout is one, else 0 (ss then
// prints compact columns).
func screenWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 0
	}
	return int(ws.Col)
}

// dumpTCPDiag writes the raw sock_diag messages of the TCP dump (ss -D):
// each netlink message padded to 4 bytes, NLMSG_DONE included, as ss
// writes the datagrams it receives. Like ss, it runs before any filter
// expression is looked at.
func dumpTCPDiag(stdout, stderr io.Writer, sel filter.Selection, dest string, force bool) error {
	if !sel.Has(filter.TCP) {
		fmt.Fprintln(stderr, "sstrace: tcpdiag dump requested and no tcp in filter.")
		return nil
	}
	full := sel.ListRequest()
	req := snapshot.ListRequest{States: full.States}
	for _, d := range full.Inet {
		if d.Protocol == unix.IPPROTO_TCP {
			req.Inet = append(req.Inet, d)
		}
	}
	var (
		w   io.Writer = stdout
		out *outFile
		err error
	)
	if dest != "-" {
		if out, err = createOutFile(dest, force); err != nil {
			return err
		}
		defer out.Abort()
		w = out
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var pad [4]byte
	req.Raw = func(msg []byte) {
		bw.Write(msg)
		bw.Write(pad[:(4-len(msg)%4)%4])
	}
	if _, err := snapshot.List(req); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	if out != nil {
		return out.Commit()
	}
	return nil
}

// defaultMode says whether ss stays in its default mode: no option chose
// socket tables or families (-a and -l choose states only).
func defaultMode(order []filter.Opt) bool {
	for _, o := range order {
		if o.Name != "a" && o.Name != "l" {
			return false
		}
	}
	return true
}

// printSummary prints ss -s's lines for the calling thread's namespace.
func printSummary(w io.Writer) error {
	st, err := snapshot.ReadSockstat()
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	snmp, err := snapshot.ReadSNMP()
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	estab, ok := snmp.TCPCurrEstab()
	if !ok {
		return errors.New("summary: /proc/net/snmp has no Tcp: CurrEstab")
	}
	bw := bufio.NewWriter(w)
	if err := render.Summary(bw, st, estab); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return bw.Flush()
}

// mptcpServices is the protocol ss's MPTCP rows look service names up
// with: whatever its last inet table (raw, udp, tcp in that order) left
// in its global dg_proto.
func mptcpServices(sel filter.Selection) string {
	last := ""
	for _, t := range []struct {
		db   filter.DB
		name string
	}{{filter.RAW, "raw"}, {filter.UDP, "udp"}, {filter.TCP, "tcp"}} {
		if sel.Has(t.db) {
			last = t.name
		}
	}
	return last
}

// readFilterFile reads -F FILE ("-" is standard input).
func readFilterFile(stdin io.Reader, path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("reading filter file %s: %w", path, err)
	}
	return string(b), nil
}

// appendDCCP lists DCCP sockets where the kernel still has DCCP (Linux
// removed it in 6.16): like ss, a kernel that refuses the dump leaves the
// table empty, and sstrace says why in one line instead of ss's
// "RTNETLINK answers: Invalid argument".
func appendDCCP(stderr io.Writer, socks []snapshot.Socket, sel filter.Selection) []snapshot.Socket {
	for _, fam := range []uint8{filter.AFInet, filter.AFInet6} {
		if !sel.HasFamily(int(fam)) {
			continue
		}
		out, err := snapshot.DumpAppend(socks, snapshot.DumpRequest{Family: fam, Protocol: unix.IPPROTO_DCCP, States: sel.States})
		if err != nil {
			fmt.Fprintln(stderr, "sstrace: DCCP: this kernel has no DCCP sock_diag (DCCP was removed in Linux 6.16): no DCCP sockets listed")
			return socks
		}
		socks = out
	}
	return socks
}

// listMemoryLimit bounds the heap of a one-shot listing (see runList).
const listMemoryLimit = 256 << 20
