package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Sockstat is what /proc/net/sockstat and /proc/net/sockstat6 report: the
// counters ss -s prints (ss's struct ssummary) and the memory figures it
// leaves out.
//
// Scope (Linux 6.x; checked on 6.18): most counters belong to the network
// namespace of the reader, but a few are global, summed over every
// namespace of the machine, so two namespaces see the same value and it
// moves with sockets that are none of the namespace's business:
//
//   - per namespace: SocketsUsed, TCP.InUse, TCP.TW, UDP.InUse,
//     UDPLite.InUse, RAW.InUse, FRAG, and all the IPv6 counters;
//   - global: TCP.Orphan, TCP.Alloc, TCP.Mem and UDP.Mem.
//
// Reconciling a namespace's socket table against these counters can use the
// per-namespace ones only.
type Sockstat struct {
	// SocketsUsed ("sockets: used"): struct socks of every family (unix,
	// netlink, packet, inet, ...) that user space created in the namespace
	// and that are not freed yet. Kernel sockets are not counted. It lags
	// close(2) for sockets the kernel frees after an RCU grace period
	// (netlink sockets, for instance), and includes sockets that are
	// closed but not destroyed (orphaned TCP sockets).
	SocketsUsed int64

	// TCP ("TCP:"). InUse: IPv4 TCP sockets (sk_prot tcp_prot) hashed in
	// the namespace: listening ones and those in the established hash
	// (SYN-SENT through LAST-ACK and CLOSING, orphaned or not); not
	// TIME-WAIT sockets (the kernel unhashes the full socket when its
	// timewait socket takes its place), not request sockets
	// (NEW-SYN-RECV), and not sockets that were never listened on or
	// connected (merely bound ones included). IPv6 sockets, including
	// v4-mapped connections accepted by an IPv6 listener, count in
	// TCP6.InUse instead.
	// TW: TIME-WAIT sockets of the namespace, IPv4 and IPv6 (and the
	// FIN-WAIT-2 timewait sockets that replace orphaned FIN-WAIT-2
	// sockets).
	// Orphan (global): TCP sockets closed by their owner but not yet
	// destroyed (FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK...).
	// Alloc (global): full TCP sockets, IPv4 and IPv6, allocated and not
	// destroyed: hashed or not (unbound, bound, closed ones still open in
	// a process, orphans), but not TIME-WAIT or request sockets.
	// Mem (global): pages of memory charged to TCP.
	TCP TCPStat

	// UDP ("UDP:"): InUse: IPv4 UDP sockets hashed (bound, or given a
	// port by connect/sendto) in the namespace; Mem (global): pages
	// charged to UDP, IPv4 and IPv6.
	UDP UDPStat

	// UDPLite ("UDPLITE:") and RAW ("RAW:"): IPv4 UDP-Lite and raw sockets
	// hashed in the namespace (raw sockets are hashed when created).
	UDPLite ProtoStat
	RAW     ProtoStat

	// FRAG ("FRAG:"): IPv4 reassembly queues of the namespace and the
	// memory (bytes) they hold.
	FRAG FragStat

	// HasV6 says sockstat6 was there to parse (it is not without IPv6).
	HasV6 bool

	// The IPv6 counterparts ("TCP6:", "UDP6:", "UDPLITE6:", "RAW6:",
	// "FRAG6:"), all per namespace.
	TCP6     ProtoStat
	UDP6     ProtoStat
	UDPLite6 ProtoStat
	RAW6     ProtoStat
	FRAG6    FragStat
}

// TCPStat is the "TCP:" line of /proc/net/sockstat.
type TCPStat struct {
	InUse  int64 // "inuse", per namespace
	Orphan int64 // "orphan", global
	TW     int64 // "tw", per namespace
	Alloc  int64 // "alloc", global
	Mem    int64 // "mem" (pages), global
}

// UDPStat is the "UDP:" line of /proc/net/sockstat.
type UDPStat struct {
	InUse int64 // "inuse", per namespace
	Mem   int64 // "mem" (pages), global
}

// ProtoStat is a line that only has "inuse".
type ProtoStat struct {
	InUse int64 // "inuse"
}

// FragStat is a "FRAG:" or "FRAG6:" line.
type FragStat struct {
	InUse  int64 // "inuse": reassembly queues
	Memory int64 // "memory": bytes
}

// sockstatField returns where the value of field name on the line whose
// first word is id goes, or nil if the parser does not know the pair. Every
// line is looked for in both files, as ss does.
func (st *Sockstat) sockstatField(id, name string) *int64 {
	switch id + " " + name {
	case "sockets: used":
		return &st.SocketsUsed
	case "TCP: inuse":
		return &st.TCP.InUse
	case "TCP: orphan":
		return &st.TCP.Orphan
	case "TCP: tw":
		return &st.TCP.TW
	case "TCP: alloc":
		return &st.TCP.Alloc
	case "TCP: mem":
		return &st.TCP.Mem
	case "UDP: inuse":
		return &st.UDP.InUse
	case "UDP: mem":
		return &st.UDP.Mem
	case "UDPLITE: inuse":
		return &st.UDPLite.InUse
	case "RAW: inuse":
		return &st.RAW.InUse
	case "FRAG: inuse":
		return &st.FRAG.InUse
	case "FRAG: memory":
		return &st.FRAG.Memory
	case "TCP6: inuse":
		return &st.TCP6.InUse
	case "UDP6: inuse":
		return &st.UDP6.InUse
	case "UDPLITE6: inuse":
		return &st.UDPLite6.InUse
	case "RAW6: inuse":
		return &st.RAW6.InUse
	case "FRAG6: inuse":
		return &st.FRAG6.InUse
	case "FRAG6: memory":
		return &st.FRAG6.Memory
	}
	return nil
}

// ParseSockstat parses the contents of /proc/net/sockstat (v4) and
// /proc/net/sockstat6 (v6; nil when the file does not exist, which leaves
// the IPv6 counters 0 and HasV6 false).
//
// Each line is a word ending in ':' followed by name/value pairs. Fields
// are found by name, so lines and fields this parser does not know (later
// kernels add some) are skipped, and a field missing from its line is 0.
// A known field whose value is not a decimal integer that fits in an
// int64, or that has no value at all, is an error naming the file and the
// line. When a field appears more than once, the last one wins (as it does
// for ss, which reads both files into the same summary).
//
// ss finds the numbers by position rather than by name; for the lines the
// kernel prints, both read the same values.
func ParseSockstat(v4, v6 []byte) (Sockstat, error) {
	var st Sockstat
	if err := st.parse("sockstat", v4); err != nil {
		return Sockstat{}, err
	}
	if v6 != nil {
		st.HasV6 = true
		if err := st.parse("sockstat6", v6); err != nil {
			return Sockstat{}, err
		}
	}
	return st, nil
}

func (st *Sockstat) parse(file string, b []byte) error {
	for lineNo, line := range strings.Split(string(b), "\n") {
		f := procFields(line)
		if len(f) == 0 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		for i := 1; i < len(f); i += 2 {
			p := st.sockstatField(f[0], f[i])
			if p == nil {
				continue
			}
			if i+1 == len(f) {
				return fmt.Errorf("parsing %s line %d %q: %s field %q has no value", file, lineNo+1, line, f[0], f[i])
			}
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return fmt.Errorf("parsing %s line %d %q: %s field %q: value %q is not a decimal integer", file, lineNo+1, line, f[0], f[i], f[i+1])
			}
			*p = v
		}
	}
	return nil
}

// procFields splits a line on the white space of C's isspace.
func procFields(line string) []string {
	return strings.FieldsFunc(line, func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			return true
		}
		return false
	})
}

// ReadSockstat reads /proc/thread-self/net/sockstat and sockstat6: the
// counters of the calling thread's network namespace (lock the goroutine to
// its thread to know which that is). A missing sockstat6 (no IPv6) leaves
// the IPv6 counters 0, as for ss. Errors opening or reading a file wrap the
// os error (errors.Is(err, fs.ErrNotExist) and such work).
func ReadSockstat() (Sockstat, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const v4Path, v6Path = "/proc/thread-self/net/sockstat", "/proc/thread-self/net/sockstat6"
	v4, err := os.ReadFile(v4Path)
	if err != nil {
		return Sockstat{}, fmt.Errorf("reading socket counters: %w", err)
	}
	v6, err := os.ReadFile(v6Path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return Sockstat{}, fmt.Errorf("reading IPv6 socket counters: %w", err)
		}
		v6 = nil
	} else if v6 == nil {
		v6 = []byte{}
	}
	st, err := ParseSockstat(v4, v6)
	if err != nil {
		return Sockstat{}, fmt.Errorf("reading socket counters: %w", err)
	}
	return st, nil
}

// SNMP is /proc/net/snmp (or /proc/net/netstat, which has the same
// format): table name without its colon ("Ip", "Icmp", "IcmpMsg", "Tcp",
// "Udp", "UdpLite", ...) → field name → value. All the MIB counters are
// per network namespace.
type SNMP map[string]map[string]int64

// Get returns a field of a table, and whether the file had it.
func (s SNMP) Get(table, field string) (int64, bool) {
	v, ok := s[table][field]
	return v, ok
}

// TCPCurrEstab is "Tcp: CurrEstab", the value ss -s prints as "estab": the
// namespace's TCP connections, IPv4 and IPv6, in ESTABLISHED or CLOSE-WAIT.
// ok is false if the file does not have it (ss then prints 0 after
// complaining "ss: get_snmpstat: No such process").
func (s SNMP) TCPCurrEstab() (v int64, ok bool) {
	return s.Get("Tcp", "CurrEstab")
}

// ParseSNMP parses /proc/net/snmp: pairs of lines, a header line
// "Table: Name1 Name2 ..." followed by a line "Table: v1 v2 ..." with as
// many values, each a decimal integer (some are negative, like Tcp
// MaxConn). Blank lines are skipped; tables it does not know are kept like
// the others. A values line that is missing, names another table, has a
// different number of fields or a value that is not a decimal integer is an
// error naming the line. If a table appears twice, its first pair wins (ss
// reads the first one).
func ParseSNMP(b []byte) (SNMP, error) {
	s := SNMP{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		names := procFields(lines[i])
		if len(names) == 0 {
			continue
		}
		table, ok := strings.CutSuffix(names[0], ":")
		if !ok || table == "" {
			return nil, fmt.Errorf("parsing snmp line %d %q: no table name ending in ':'", i+1, lines[i])
		}
		if i+1 == len(lines) {
			return nil, fmt.Errorf("parsing snmp line %d %q: no values line after it", i+1, lines[i])
		}
		i++
		vals := procFields(lines[i])
		if len(vals) == 0 || vals[0] != names[0] {
			return nil, fmt.Errorf("parsing snmp line %d %q: want the values of %s", i+1, lines[i], names[0])
		}
		if len(vals) != len(names) {
			return nil, fmt.Errorf("parsing snmp line %d %q: %d values for %d names", i+1, lines[i], len(vals)-1, len(names)-1)
		}
		if _, dup := s[table]; dup {
			continue
		}
		t := make(map[string]int64, len(names)-1)
		for j := 1; j < len(names); j++ {
			v, err := strconv.ParseInt(vals[j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parsing snmp line %d %q: %s field %q: value %q is not a decimal integer", i+1, lines[i], names[0], names[j], vals[j])
			}
			if _, dup := t[names[j]]; !dup {
				t[names[j]] = v
			}
		}
		s[table] = t
	}
	return s, nil
}

// ReadSNMP reads /proc/thread-self/net/snmp: the MIB counters of the calling
// thread's network namespace.
func ReadSNMP() (SNMP, error) {
	b, err := os.ReadFile("/proc/thread-self/net/snmp")
	if err != nil {
		return nil, fmt.Errorf("reading SNMP counters: %w", err)
	}
	s, err := ParseSNMP(b)
	if err != nil {
		return nil, fmt.Errorf("reading SNMP counters: %w", err)
	}
	return s, nil
}
