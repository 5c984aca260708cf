// Package doctor finds out what this kernel lets sstrace do: each
// capability (the listing per sock_diag family, owners, the tracer's hooks,
// stacks, follow mode), the variant in use or why none loads, and what the
// user goes without. Gather returns it as data; cmd/sstrace prints it.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/tracer"
)

// Status is how a capability stands on this kernel.
type Status string

// Statuses, best first.
const (
	OK       Status = "ok"       // the best variant, or one as good
	Degraded Status = "degraded" // a variant that goes without something (Lacks)
	Missing  Status = "missing"  // no variant loads (Loses)
)

// Attempt is one variant that was refused, with the kernel's reason.
type Attempt struct {
	Hook   string `json:"hook"`
	Object string `json:"object,omitempty"`
	// Reason is the error in one line (the verifier's last words only).
	Reason string `json:"reason"`
	// Log is the verifier's whole log, when it wrote one.
	Log []string `json:"verifier_log,omitempty"`
}

// Row is one capability.
type Row struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Variant is what is in use, as one string ("" when missing); Hooks
	// and Object the same for the tracer's capabilities.
	Variant string   `json:"variant,omitempty"`
	Hooks   []string `json:"hooks,omitempty"`
	Object  string   `json:"object,omitempty"`
	// Why, in a few words, the better variants are not in use (missing,
	// and degraded where a fallback stands in).
	Why string `json:"why,omitempty"`
	// Lacks: what a degraded variant goes without. Loses: what the user
	// goes without when the capability is missing.
	Lacks []string `json:"lacks,omitempty"`
	Loses string   `json:"loses,omitempty"`
	// Needs: the kernel feature a missing capability's refusals show
	// this kernel lacks (tracer.Needs), "" when none is recognized.
	Needs string `json:"needs,omitempty"`
	// Tried: every variant refused, in the order tried.
	Tried []Attempt `json:"tried,omitempty"`
}

// Report is what doctor found.
type Report struct {
	Kernel  string `json:"kernel"` // uname release
	Machine string `json:"machine"`
	// BTF: the kernel describes its types at /sys/kernel/btf/vmlinux,
	// which every tracing hook's variants (CO-RE and tp_btf) need.
	BTF bool `json:"btf"`
	// FirstObject is set when tracer.ObjectEnv starts every ladder at a
	// later BPF object.
	FirstObject string `json:"first_object,omitempty"`
	// MissingPrivileges names the capabilities(7) tracing needs and this
	// process lacks.
	MissingPrivileges []string `json:"missing_privileges,omitempty"`
	Capabilities      []Row    `json:"capabilities"`
}

// Counts is how many capabilities are in each status.
func (r *Report) Counts() (ok, degraded, missing int) {
	for _, c := range r.Capabilities {
		switch c.Status {
		case OK:
			ok++
		case Degraded:
			degraded++
		default:
			missing++
		}
	}
	return ok, degraded, missing
}

// Options configure Gather.
type Options struct {
	// Disable names hooks not to try (test plumbing: shows a capability
	// missing on a kernel that has it).
	Disable []string
}

// Capability names doctor adds to the tracer's.
const (
	CapOwners      = "owners"
	CapNetNSCookie = "netns-cookie"
	CapStacks      = "stacks"
	listingPrefix  = "listing "
)

// ListingName is the capability name of the listing of one family (tcp,
// udp, mptcp, raw, unix, packet, netlink).
func ListingName(family string) string { return listingPrefix + family }

// Gather probes every capability. Nothing it loads stays attached. It
// fails only if it cannot tell what the kernel is; a capability that
// cannot be probed (no privileges, say) is reported missing, with why.
func Gather(ctx context.Context, o Options) (Report, error) {
	var r Report
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return r, fmt.Errorf("reading the kernel release: %w", err)
	}
	r.Kernel, r.Machine = unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])
	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	r.BTF = err == nil
	r.FirstObject = os.Getenv(tracer.ObjectEnv)
	r.MissingPrivileges = tracer.MissingTraceCaps()

	r.Capabilities = append(r.Capabilities, listings()...)
	ino, err := tracer.NetNSInode("")
	if err != nil {
		return r, err
	}
	_, inv, ierr := tracer.ProbeInventory(tracer.NetNS{Inode: ino})
	invRow := fromCapability(inv, ierr)
	r.Capabilities = append(r.Capabilities, owners(invRow), netnsCookie(), invRow)

	// One tracer with every option on, so that the code paths that walk
	// stacks and follow processes are verified too; the pid followed is
	// doctor's own.
	follow := []uint32{uint32(os.Getpid())}
	caps, terr := tracer.Probe(ctx, tracer.Options{
		BirthStacks: true, ConnectStacks: true, FollowPIDs: follow, Disable: o.Disable,
	})
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("probing the tracer: %w", err)
	}
	if len(caps) == 0 {
		// Nothing was tried: say why for each.
		caps = tracer.AllCapabilities(true)
	}
	byName := map[string]Row{}
	var rows []Row
	for _, c := range caps {
		row := fromCapability(c, terr)
		byName[c.Name] = row
		rows = append(rows, row)
	}
	// Stacks before the follow-mode rows, which end the table.
	i := len(rows)
	for i > 0 && (rows[i-1].Name == tracer.CapForks || rows[i-1].Name == tracer.CapExits) {
		i--
	}
	rows = append(rows[:i], append([]Row{stacks(byName[tracer.CapBirths], byName[tracer.CapTransitions])}, rows[i:]...)...)
	r.Capabilities = append(r.Capabilities, rows...)
	return r, nil
}

// fromCapability is the row of a tracer capability; err is what probing
// it failed with, if anything (it matters where no variant was tried).
func fromCapability(c tracer.Capability, err error) Row {
	row := Row{Name: c.Name, Hooks: c.Hooks, Object: c.Object, Variant: c.Variant(), Tried: attempts(c.Tried)}
	switch {
	case c.OK() && len(c.Lacks) > 0:
		row.Status, row.Lacks = Degraded, c.Lacks
	case c.OK():
		row.Status = OK
	default:
		row.Status, row.Loses, row.Needs = Missing, c.Loses, c.Needs
		row.Why = why(c.Tried)
		if row.Why == "" && err != nil {
			row.Why = whyErr(err)
		}
	}
	return row
}

func attempts(tried []tracer.HookError) []Attempt {
	var out []Attempt
	for _, h := range tried {
		a := Attempt{Hook: h.Hook, Object: h.Object, Reason: reason(h.Err)}
		var ve *ebpf.VerifierError
		if errors.As(h.Err, &ve) {
			a.Log = ve.Log
		}
		out = append(out, a)
	}
	return out
}

// reason is err in one line, without cilium/ebpf's guess that MEMLOCK is
// too low: the tracer raised it before loading, and on 5.11+ it is no
// limit at all, so an EPERM is the kernel's no (lockdown, or a missing
// capability).
func reason(err error) string {
	return strings.ReplaceAll(err.Error(), " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", "")
}

// why says in a few words why each hook tried was refused, each reason
// once: the verifier's log and the kernel's words are for -v.
func why(tried []tracer.HookError) string {
	var parts []string
	seen := map[string]bool{}
	for _, h := range tried {
		p := h.Hook + ": " + whyErr(h.Err)
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// whyErr classifies a refusal.
func whyErr(err error) string {
	var ve *ebpf.VerifierError
	switch {
	case tracer.IsUnprivileged(err):
		// Nothing was loaded for want of privileges.
		return strings.TrimPrefix(err.Error(), tracer.ErrPermission.Error()+": ")
	case errors.As(err, &ve) && len(ve.Log) > 0:
		return "rejected by the verifier"
	case errors.Is(err, unix.EPERM):
		return "refused by the kernel (EPERM)"
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOENT), errors.Is(err, unix.ESRCH), errors.Is(err, os.ErrNotExist):
		return "not in this kernel"
	case err.Error() == "disabled":
		return "disabled"
	}
	// The innermost error: the kernel's or the system's words.
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return err.Error()
}

// listing is one sock_diag family of the listing: the dump doctor asks
// for (as small as the kernel allows: listeners only where states apply),
// the module the kernel needs for it, and what its absence costs.
type listing struct {
	family string
	module string
	req    snapshot.DumpRequest
	loses  string
}

var listingSpecs = []listing{
	{"tcp", "tcp_diag", snapshot.DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 1 << snapshot.StateListen},
		"every listing that includes TCP fails (ss would read /proc/net/tcp; sstrace does not), and so do watch, stalls and reconcile, which dump TCP"},
	{"udp", "udp_diag", snapshot.DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_UDP, States: 1 << snapshot.StateListen},
		"every listing that includes UDP fails (ss would read /proc/net/udp; sstrace does not)"},
	{"mptcp", "mptcp_diag", snapshot.DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_MPTCP, States: 1 << snapshot.StateListen},
		"MPTCP sockets (Go's listeners since Go 1.24) are left out of every listing without a word, as ss leaves them out"},
	{"raw", "raw_diag", snapshot.DumpRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_RAW, States: 1 << snapshot.StateListen},
		"raw sockets cannot be listed: no raw_diag and no /proc/net/raw"},
	{"unix", "unix_diag", snapshot.DumpRequest{Family: unix.AF_UNIX, States: 1 << snapshot.StateListen},
		"every listing that includes unix sockets fails (ss would read /proc/net/unix; sstrace does not)"},
	{"packet", "af_packet_diag", snapshot.DumpRequest{Family: unix.AF_PACKET},
		"every listing that includes packet sockets fails (ss would read /proc/net/packet; sstrace does not)"},
	{"netlink", "netlink_diag", snapshot.DumpRequest{Family: unix.AF_NETLINK},
		"every listing that includes netlink sockets fails (ss would read /proc/net/netlink; sstrace does not)"},
}

// rawProcLacks is what the listing of raw sockets goes without when it
// reads /proc/net/raw{,6} as ss does on a kernel without raw_diag.
const rawProcLacks = "raw sockets read from /proc/net/raw{,6}, as ss reads them then: no cookie, bound device, -e details or memory (-m)"

// listings asks the kernel for one small dump of each family, in the
// caller's network namespace. sock_diag needs no privileges.
func listings() []Row {
	var rows []Row
	for _, l := range listingSpecs {
		row := Row{Name: ListingName(l.family), Status: OK, Variant: "sock_diag (" + l.module + ")"}
		_, err := snapshot.Dump(l.req)
		if err != nil {
			row.Tried = []Attempt{{Hook: "sock_diag " + l.family, Reason: err.Error()}}
			row.Why = whyErr(err)
			if errors.Is(err, unix.ENOENT) {
				row.Why = "no " + l.module + " in this kernel"
			}
			row.Status, row.Variant, row.Loses = Missing, "", l.loses
			if l.family == "raw" && readable("/proc/thread-self/net/raw") {
				row.Status, row.Variant, row.Loses = Degraded, "/proc/net/raw, /proc/net/raw6", ""
				row.Lacks = []string{rawProcLacks}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func readable(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// procOwnersLacks is what -p goes without when it walks /proc.
const procOwnersLacks = "owners from a walk of /proc/*/fd, as ss: only the processes this user may read, and ~6x slower (0.86 s against 0.15 s for 108k sockets)"

// owners is -p: the fd inventory where it loads, else /proc.
func owners(inv Row) Row {
	row := Row{Name: CapOwners, Status: OK, Variant: inv.Variant, Hooks: inv.Hooks, Object: inv.Object}
	if inv.Status == Missing {
		row.Status, row.Variant, row.Hooks, row.Object = Degraded, "/proc/*/fd", nil, ""
		row.Why = "no fd inventory: " + inv.Why
		row.Lacks = []string{procOwnersLacks}
	}
	return row
}

// netnsCookieLoses: the release hook sees only a struct bpf_sock, which
// names its namespace by cookie.
const netnsCookieLoses = "--netns cannot be used with trace, watch, leaks or stalls (the release hook knows a namespace only by its cookie)"

func netnsCookie() Row {
	how, err := tracer.ProbeNetNSCookie()
	if err != nil {
		return Row{Name: CapNetNSCookie, Status: Missing, Why: whyErr(err), Loses: netnsCookieLoses,
			Tried: []Attempt{{Hook: tracer.NetNSCookieSockopt + ", then " + tracer.NetNSCookieBPF, Reason: err.Error()}}}
	}
	return Row{Name: CapNetNSCookie, Status: OK, Variant: how}
}

// Stacks: what leaks and stalls print, walked in the births and
// transitions programs (opened with stacks on, so these rows say whether
// the stack-walking code loads).
const (
	noBirthStacks   = "leaks cannot name the stack that created a socket"
	noConnectStacks = "stalls cannot name the stack that called connect()"
)

func stacks(births, transitions Row) Row {
	row := Row{Name: CapStacks}
	var at []string
	if births.Status != Missing {
		at = append(at, "socket() ("+births.Object+")")
	}
	if transitions.Status != Missing {
		at = append(at, "connect() ("+transitions.Object+")")
	}
	row.Variant = strings.Join(at, ", ")
	if row.Variant != "" {
		row.Variant = "user stacks at " + row.Variant
	}
	switch {
	case births.Status == Missing && transitions.Status == Missing:
		row.Status, row.Loses = Missing, noBirthStacks+"; "+noConnectStacks
		row.Why = "no births and no transitions"
		if births.Why == transitions.Why {
			row.Why = births.Why // no privileges, say
		}
	case births.Status == Missing:
		row.Status, row.Lacks, row.Why = Degraded, []string{noBirthStacks}, "no births"
	case transitions.Status == Missing:
		row.Status, row.Lacks, row.Why = Degraded, []string{noConnectStacks}, "no transitions"
	default:
		row.Status = OK
	}
	for _, r := range []Row{births, transitions} {
		for _, l := range r.Lacks {
			if l == tracer.LackUserRet && !slices.Contains(row.Lacks, l) {
				row.Status = Degraded
				row.Lacks = append(row.Lacks, l)
			}
		}
	}
	return row
}
