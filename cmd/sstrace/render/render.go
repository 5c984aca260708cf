// Package render prints socket tables byte for byte the way iproute2's ss
// (version 6.1) prints them (TCP, UDP, raw, MPTCP, unix, netlink and packet
// sockets, with -e, -o, -p, -m and -i details), and the same sockets as
// JSON.
//
// The table follows ss's output machinery: every row is a sequence of
// fields (Netid, State, Recv-Q, Send-Q, local address and port, peer address
// and port, and the free-form "Process" field that -p, -o and -e append to);
// fields are buffered, each column is made as wide as its widest field, and
// the buffer is printed with addresses right-aligned and everything else
// left-aligned. Like ss, the buffer is printed in batches once it holds
// about 5 MB, each batch laid out with the column widths measured so far.
package render

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"sstrace/snapshot"
)

// Options says which columns and details to print, like ss's flags.
type Options struct {
	ShowNetid bool // Netid column (ss disables it when only one socket table is selected)
	ShowState bool // State column (ss disables it when only one state is selected)
	Header    bool // !-H
	Numeric   bool // -n: numeric ports (hosts are always numeric unless Resolve)
	Resolve   bool // -r: resolve host names with HostName
	Options   bool // -o: timers (ss's -e implies -o; the caller sets both)
	Extended  bool // -e
	Processes bool // -p: users:(("comm",pid=N,fd=M),...) from Socket.Owners, in the given order
	Oneline   bool // -O: keeps -i, -m and -e details of inet and packet sockets on the socket's line (no "\n\t")
	Memory    bool // -m: socket memory, skmem:(...), from Socket.MemInfo
	Info      bool // -i: TCP and MPTCP internals from Socket.TCPInfo, CongAlg and CCInfo
	BPF       bool // -b: the classic BPF filters of packet sockets (ss's -b also turns on -o: the caller sets Options)
	// ScreenWidth > 0 is the width of the terminal stdout is (ss then
	// spreads the columns over the width); 0 means stdout is not a
	// terminal, and the output is compact.
	ScreenWidth int
	Services    *Services // port → service name table (nil: numeric)

	// HostName resolves an address for -r; ok false prints it numerically.
	// Nil uses net.DefaultResolver (/etc/hosts, then DNS), as ss uses
	// gethostbyaddr(3). IPv4-mapped IPv6 addresses are looked up as IPv4.
	HostName func(addr netip.Addr) (name string, ok bool)
	// IfName names the interface a socket is bound to (the "%ifname" after
	// the local address). Nil uses net.InterfaceByIndex in the calling
	// thread's namespace and falls back to "if<index>" like ss.
	IfName func(index uint32) string
	// CgroupPath names a cgroup id for -e. Nil uses a CgroupPaths made for
	// the call.
	CgroupPath func(id uint64) string

	// Protocols names the protocol numbers that raw sockets show in the
	// Port column (ss resolves them with getprotobynumber(3) instead of
	// services(5)). Nil prints "ipproto-N", as ss does without
	// /etc/protocols; Numeric prints the number.
	Protocols *Protocols
	// MPTCPServices is the services(5) protocol MPTCP ports are named
	// with. ss has none for MPTCP: it uses its global dg_proto, left by
	// whichever of the raw, udp and tcp tables it went through last in the
	// run (selected, even if empty), so set it from the selection:
	//   - "tcp" (or "udp") when the tcp (or udp, and not tcp) table is
	//     selected too (ss -a, ss -tM);
	//   - "raw" when raw is the last of them (ss -wM): ports print as
	//     protocol names, like raw sockets';
	//   - "" when none is (ss -M): the first services line with the
	//     port, whatever its protocol (getservbyport(port, NULL)).
	MPTCPServices string
	// ProcessName names the process whose pid a netlink socket's port id
	// is, as ss does from /proc/PID/stat (the comm up to its first ')').
	// Nil reads /proc; ok false prints the number.
	ProcessName func(pid int32) (comm string, ok bool)
}

// Address families, socket types and protocols (values from Linux).
const (
	afUnix    = 1
	afInet    = 2
	afInet6   = 10
	afNetlink = 16
	afPacket  = 17

	sockStream    = 1
	sockDgram     = 2
	sockRaw       = 3
	sockSeqpacket = 5

	ipprotoTCP    = 6
	ipprotoUDP    = 17
	ipprotoDCCP   = 33
	ipprotoICMPv6 = 58
	ipprotoSCTP   = 132
	ipprotoMPTCP  = 262
)

// Columns, as in ss.c's columns[] (COL_EXT carries the "Process" header;
// COL_PROC is always empty).
const (
	colNetid = iota
	colState
	colRecvQ
	colSendQ
	colAddr
	colServ
	colRAddr
	colRServ
	colExt
	colProc
	numCols
)

var (
	colHeader = [numCols]string{"Netid", "State", "Recv-Q", "Send-Q", "Local Address:", "Port", "Peer Address:", "Port", "Process", ""}
	colDelim  = [numCols]string{"", " ", " ", " ", " ", "", " ", "", "", ""}
	colRight  = [numCols]bool{colAddr: true, colRAddr: true}
)

// ss's output buffer: chunks of BUF_CHUNK bytes (less the chunk header),
// rendered whenever BUF_CHUNKS_MAX chunks are in use at the end of a row.
const (
	chunkData    = 1<<20 - 16
	bufChunksMax = 5
)

// stateNames is ss's sstate_name, extended with TCP_NEW_SYN_RECV (which the
// kernel reports as SYN-RECV anyway).
var stateNames = [...]string{
	0:                           "UNKNOWN",
	snapshot.StateEstablished:   "ESTAB",
	snapshot.StateSynSent:       "SYN-SENT",
	snapshot.StateSynRecv:       "SYN-RECV",
	snapshot.StateFinWait1:      "FIN-WAIT-1",
	snapshot.StateFinWait2:      "FIN-WAIT-2",
	snapshot.StateTimeWait:      "TIME-WAIT",
	snapshot.StateClose:         "UNCONN",
	snapshot.StateCloseWait:     "CLOSE-WAIT",
	snapshot.StateLastAck:       "LAST-ACK",
	snapshot.StateListen:        "LISTEN",
	snapshot.StateClosing:       "CLOSING",
	snapshot.StateNewSynRecv:    "SYN-RECV",
	snapshot.StateBoundInactive: "UNKNOWN",
}

// StateName is the name ss gives a kernel socket state ("UNKNOWN" for
// states it has no name for).
func StateName(state uint8) string {
	if int(state) < len(stateNames) {
		return stateNames[state]
	}
	return "UNKNOWN"
}

// Netid is the name ss gives the socket's table (tcp, udp, u_str, nl,
// p_raw, ...). Raw inet sockets are named after their protocol, as ss
// names them: "raw" for rows read from /proc/net/raw, "icmp6" for ICMPv6,
// "???" for ICMP and most others.
func Netid(s *snapshot.Socket) string {
	switch s.Family {
	case afNetlink:
		return "nl"
	case afPacket:
		if s.Type == sockRaw {
			return "p_raw"
		}
		return "p_dgr"
	case afUnix:
		switch s.Type {
		case sockStream:
			return "u_str"
		case sockSeqpacket:
			return "u_seq"
		default:
			return "u_dgr"
		}
	case afInet, afInet6:
		switch s.Protocol {
		case 0:
			return "raw"
		case ipprotoUDP:
			return "udp"
		case ipprotoTCP:
			return "tcp"
		case ipprotoSCTP:
			return "sctp"
		case ipprotoDCCP:
			return "dccp"
		case ipprotoICMPv6:
			return "icmp6"
		case ipprotoMPTCP:
			return "mptcp"
		}
		return "???"
	}
	return "unknown"
}

var timerNames = [...]string{"off", "on", "keepalive", "timewait", "persist", "unknown"}

// TimerName is ss's name for idiag_timer.
func TimerName(timer uint8) string {
	if timer > 4 {
		timer = 5
	}
	return timerNames[timer]
}

// Table writes socks as ss prints them.
func Table(w io.Writer, socks []snapshot.Socket, opt Options) error {
	t := newTabler(w, &opt)
	if opt.Header {
		t.header()
	}
	for i := range socks {
		t.row(&socks[i])
	}
	return t.finish()
}

// tabler builds the fields of one batch into an arena, emulating ss's
// buffer accounting to know where ss would print a batch, then lays the
// batch out.
type tabler struct {
	w   io.Writer
	err error // the first write error
	opt *Options
	lk  *lookups

	cols   []int // enabled columns but colProc, in order
	maxLen [numCols]int

	*buffers
	lines int

	sim        chunkSim
	pendingExt int  // length of the last row's unflushed ext field, -1 none
	atProc     bool // the previous line ends at its (unflushed) colProc field
	batches    int  // batches written

	tcpSvc, udpSvc, anySvc map[uint16]string
}

func newTabler(w io.Writer, opt *Options) *tabler {
	t := &tabler{
		w:          w,
		opt:        opt,
		lk:         newLookups(opt),
		pendingExt: -1,
		buffers:    bufPool.Get().(*buffers),
	}
	for c := 0; c < colProc; c++ {
		if (c == colNetid && !opt.ShowNetid) || (c == colState && !opt.ShowState) {
			continue
		}
		t.cols = append(t.cols, c)
	}
	if !opt.Numeric && opt.Services != nil {
		t.tcpSvc = opt.Services.byProto["tcp"]
		t.udpSvc = opt.Services.byProto["udp"]
		t.anySvc = opt.Services.byPort
	}
	return t
}

// buffers are a tabler's reusable memory.
type buffers struct {
	arena []byte  // the fields of the current batch, back to back
	ends  []int32 // end offset in arena of each field, len(cols) per line
	out   []byte  // output waiting to be written
}

var bufPool = sync.Pool{New: func() any {
	return &buffers{
		arena: make([]byte, 0, 1<<20),
		ends:  make([]int32, 0, 64<<10),
		out:   make([]byte, 0, outBufSize+4096),
	}
}}

const outBufSize = 64 << 10

// release returns the buffers to the pool.
func (t *tabler) release() {
	if t.buffers == nil {
		return
	}
	b := t.buffers
	t.buffers = nil
	if cap(b.arena) > 16<<20 || cap(b.ends) > 4<<20 {
		return // an outsize batch: let it go
	}
	b.arena, b.ends, b.out = b.arena[:0], b.ends[:0], b.out[:0]
	bufPool.Put(b)
}

// write sends out to the writer, keeping the first error.
func (t *tabler) write() {
	if len(t.out) > 0 && t.err == nil {
		_, t.err = t.w.Write(t.out)
	}
	t.out = t.out[:0]
}

// chunkSim follows the fill level of ss's chunked output buffer.
type chunkSim struct {
	active bool // a chunk is allocated
	chunks int
	used   int  // bytes used in the last chunk, the current token's length word included
	first  bool // the current token is the first of its chunk
}

func (c *chunkSim) begin() { *c = chunkSim{active: true, chunks: 1, used: 2, first: true} }

// out appends l > 0 bytes to the current token (ss's out and buf_update).
func (c *chunkSim) out(l int) {
	if c.used+l < chunkData || c.first {
		c.used = min(c.used+l, chunkData)
		return
	}
	// The token moves to a new chunk.
	c.chunks++
	c.used = min(2+l, chunkData)
	c.first = true
}

// flush ends the current token of length l (ss's field_flush).
func (c *chunkSim) flush(l int) {
	pad := l & 1
	if chunkData-c.used-pad < 2 {
		c.chunks++
		c.used = 2
		c.first = true
		return
	}
	c.used += pad + 2
	c.first = false
}

// beginLine does what ss does between the last field of a row and the
// first of the next: flush the pending fields, and print the batch if the
// buffer is full.
func (t *tabler) beginLine() {
	if t.pendingExt >= 0 {
		t.flushField(colExt, t.pendingExt)
		t.pendingExt = -1
		t.atProc = true
	}
	if t.atProc {
		t.atProc = false
		if t.sim.chunks >= bufChunksMax {
			t.render()
		} else {
			t.sim.flush(0)
		}
	}
	if !t.sim.active {
		t.sim.begin()
	}
}

func (t *tabler) flushField(c, l int) {
	if l > t.maxLen[c] {
		t.maxLen[c] = l
	}
	t.sim.flush(l)
}

// endField records the field that started at arena offset start.
func (t *tabler) endField(c, start int) {
	l := len(t.arena) - start
	t.ends = append(t.ends, int32(len(t.arena)))
	if l > 0 {
		t.sim.out(l)
	}
	if c == colExt {
		t.pendingExt = l
	} else {
		t.flushField(c, l)
	}
}

func (t *tabler) header() {
	t.beginLine()
	for _, c := range t.cols {
		start := len(t.arena)
		t.arena = append(t.arena, colHeader[c]...)
		t.endField(c, start)
	}
	// print_header flushes the "Process" field too and stops at COL_PROC.
	t.flushField(colExt, t.pendingExt)
	t.pendingExt = -1
	t.atProc = true
	t.lines++
}

func (t *tabler) row(s *snapshot.Socket) {
	t.beginLine()
	for _, c := range t.cols {
		start := len(t.arena)
		t.arena = t.appendField(t.arena, c, s)
		t.endField(c, start)
	}
	t.lines++
}

// appendField appends the field of column c of s's row. Netid, State and
// the queues are the same for every socket table; the address cells and
// the free-form field come from the socket's kind (see appendCell and
// appendExt), so that every table shares the buffering, width and layout
// machinery.
func (t *tabler) appendField(b []byte, c int, s *snapshot.Socket) []byte {
	switch c {
	case colNetid:
		return append(b, Netid(s)...)
	case colState:
		return append(b, StateName(s.State)...)
	case colRecvQ:
		return appendQueue(b, s.RecvQ)
	case colSendQ:
		return appendQueue(b, s.SendQ)
	case colAddr, colServ, colRAddr, colRServ:
		return t.appendCell(b, c, s)
	case colExt:
		return t.appendExt(b, s)
	}
	return b
}

// appendCell appends one of the four address cells (local address, its
// port, peer address, its port) of s, as its socket table prints them.
func (t *tabler) appendCell(b []byte, c int, s *snapshot.Socket) []byte {
	switch s.Family {
	case afInet, afInet6:
		return t.appendInetCell(b, c, s)
	case afUnix:
		return appendUnixCell(b, c, s)
	case afNetlink:
		return t.appendNetlinkCell(b, c, s)
	case afPacket:
		return t.appendPacketCell(b, c, s)
	}
	// A family ss has no table for: what the generic code would print.
	switch c {
	case colAddr, colRAddr:
		return append(b, "* "...)
	case colServ:
		return t.appendPort(b, s, s.Local.Port())
	}
	return t.appendPort(b, s, s.Peer.Port())
}

// appendInetCell is ss's inet_addr_print: host (with "%ifname" for a bound
// device) and port or service.
func (t *tabler) appendInetCell(b []byte, c int, s *snapshot.Socket) []byte {
	switch c {
	case colAddr:
		b = t.lk.appendHost(b, s.Family, s.Local.Addr(), v6only(s))
		if s.Iface != 0 {
			b = append(b, '%')
			b = append(b, t.lk.ifName(s.Iface)...)
		}
		return append(b, ':')
	case colServ:
		return t.appendPort(b, s, s.Local.Port())
	case colRAddr:
		b = t.lk.appendHost(b, s.Family, s.Peer.Addr(), v6only(s))
		return append(b, ':')
	}
	return t.appendPort(b, s, s.Peer.Port())
}

// appendUnixCell is ss's unix_stats_print: name (or "*") and inode, peer
// name (always "*" from sock_diag) and peer inode, as %d.
func appendUnixCell(b []byte, c int, s *snapshot.Socket) []byte {
	switch c {
	case colAddr:
		if s.Path == "" {
			return append(b, "* "...)
		}
		b = append(b, s.Path...)
		return append(b, ' ')
	case colServ:
		return strconv.AppendInt(b, int64(int32(s.Inode)), 10)
	case colRAddr:
		return append(b, "* "...)
	}
	return strconv.AppendInt(b, int64(int32(s.PeerInode)), 10)
}

// appendPort is ss's resolve_service: "*" for port 0, else the number
// (-n), or the name of the port in the database ss's global dg_proto
// selects at the time: the protocol's services(5) entry for tcp and udp
// (ports in the ephemeral range stay numbers), the protocol's name for raw
// sockets (ss names their "port", the protocol number, with
// getprotobynumber).
func (t *tabler) appendPort(b []byte, s *snapshot.Socket, port uint16) []byte {
	if port == 0 {
		return append(b, '*')
	}
	if !t.opt.Numeric {
		switch portDB(t.opt, s) {
		case dbTCP:
			if name, ok := t.service(t.tcpSvc, port); ok {
				return append(b, name...)
			}
		case dbUDP:
			if name, ok := t.service(t.udpSvc, port); ok {
				return append(b, name...)
			}
		case dbAny:
			if name, ok := t.service(t.anySvc, port); ok {
				return append(b, name...)
			}
		case dbRaw:
			return appendProtoName(b, t.opt.Protocols, port)
		}
	}
	return strconv.AppendUint(b, uint64(port), 10)
}

func (t *tabler) service(m map[uint16]string, port uint16) (string, bool) {
	if m == nil {
		return "", false
	}
	svc := t.opt.Services
	if int(port) >= svc.EphemeralMin && int(port) <= svc.EphemeralMax {
		return "", false
	}
	name, ok := m[port]
	return name, ok
}

// The name databases resolve_service can use for a port.
const (
	dbNone = iota // numbers only
	dbTCP         // services, tcp
	dbUDP         // services, udp
	dbAny         // services, any protocol (getservbyport(port, NULL))
	dbRaw         // protocols (getprotobynumber)
)

// portDB is the database ss names s's ports with: its dg_proto while it
// lists s's table.
func portDB(opt *Options, s *snapshot.Socket) int {
	if s.Family != afInet && s.Family != afInet6 {
		return dbNone
	}
	if s.Type == sockRaw {
		return dbRaw
	}
	switch s.Protocol {
	case ipprotoTCP:
		return dbTCP
	case ipprotoUDP:
		return dbUDP
	case ipprotoMPTCP:
		switch opt.MPTCPServices {
		case "tcp":
			return dbTCP
		case "udp":
			return dbUDP
		case "raw":
			return dbRaw
		case "":
			return dbAny
		}
	}
	return dbNone
}

// appendProtoName is iproute2's inet_proto_n2a: the protocol's name, or
// "ipproto-N".
func appendProtoName(b []byte, p *Protocols, proto uint16) []byte {
	if name, ok := p.Name(int(proto)); ok {
		return append(b, name...)
	}
	b = append(b, "ipproto-"...)
	return strconv.AppendUint(b, uint64(proto), 10)
}

// serviceName is the name appendPort prints for port, if any.
func serviceName(opt *Options, s *snapshot.Socket, port uint16) (string, bool) {
	if port == 0 || opt.Numeric {
		return "", false
	}
	switch portDB(opt, s) {
	case dbTCP:
		return opt.Services.Name(port, "tcp")
	case dbUDP:
		return opt.Services.Name(port, "udp")
	case dbAny:
		return opt.Services.NameAny(port)
	case dbRaw:
		if name, ok := opt.Protocols.Name(int(port)); ok {
			return name, true
		}
		return "ipproto-" + strconv.FormatUint(uint64(port), 10), true
	}
	return "", false
}

func v6only(s *snapshot.Socket) bool {
	return s.Family == afInet6 && s.HasV6Only && s.V6Only
}

// appendQueue is printf("%-6d") of the queue as ss's int.
func appendQueue(b []byte, q uint32) []byte {
	if q < 10 {
		return append(b, byte('0'+q), ' ', ' ', ' ', ' ', ' ')
	}
	n := len(b)
	b = strconv.AppendInt(b, int64(int32(q)), 10)
	for len(b)-n < 6 {
		b = append(b, ' ')
	}
	return b
}

// appendExt is the free-form field, as the socket's table prints it.
func (t *tabler) appendExt(b []byte, s *snapshot.Socket) []byte {
	switch s.Family {
	case afInet, afInet6:
		return t.appendInetExt(b, s)
	case afUnix:
		return t.appendUnixExt(b, s)
	case afNetlink:
		return t.appendNetlinkExt(b, s)
	case afPacket:
		return t.appendPacketExt(b, s)
	}
	return t.appendUsers(b, s)
}

// appendUsers is ss's proc_ctx_print for -p.
func (t *tabler) appendUsers(b []byte, s *snapshot.Socket) []byte {
	if t.opt.Processes && len(s.Owners) > 0 && s.Inode != 0 {
		b = appendUsers(b, s.Owners)
	}
	return b
}

// appendInetExt is what ss's inet_show_sock prints after the addresses:
// -p users, -o timer, -e details, then -m and -i on a line of their own
// (-O: the same line). Raw sockets read from /proc/net/raw{,6} get users
// only (ss's dgram_show_line).
func (t *tabler) appendInetExt(b []byte, s *snapshot.Socket) []byte {
	opt := t.opt
	b = t.appendUsers(b, s)
	if s.Type == sockRaw && s.Protocol == 0 {
		return b
	}
	if opt.Options && s.Timer != 0 {
		b = append(b, " timer:("...)
		b = append(b, TimerName(s.Timer)...)
		b = append(b, ',')
		b = appendMsTimer(b, s.Expires)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(s.Retrans), 10)
		b = append(b, ')')
	}
	if opt.Extended {
		b = t.appendDetails(b, s)
		if s.Family == afInet6 && s.HasV6Only {
			b = append(b, " v6only:"...)
			if s.V6Only {
				b = append(b, '1')
			} else {
				b = append(b, '0')
			}
		}
		if s.HasShutdown {
			b = appendShutdown(b, s.Shutdown)
		}
	}
	// UDP sockets show -m, but nothing for -i.
	if opt.Memory || (opt.Info && s.Protocol != ipprotoUDP) {
		if !opt.Oneline {
			b = append(b, "\n\t"...)
		}
		if opt.Memory && s.MemInfo != nil {
			b = appendSkmem(b, s.MemInfo)
		}
		if opt.Info {
			if s.Protocol == ipprotoMPTCP {
				if s.TCPInfo != nil {
					b = appendMPTCPInfo(b, s.TCPInfo)
				}
			} else {
				if s.TCPInfo != nil {
					b = appendTCPInfo(b, s, opt)
				}
				if ulp := tcpULPInfo(s); ulp != nil {
					b = appendULPInfo(b, ulp)
				}
			}
		}
	}
	return b
}

// appendDetails is ss's sock_details_print (-e).
func (t *tabler) appendDetails(b []byte, s *snapshot.Socket) []byte {
	if s.UID != 0 {
		b = append(b, " uid:"...)
		b = strconv.AppendUint(b, uint64(s.UID), 10)
	}
	b = append(b, " ino:"...)
	b = strconv.AppendUint(b, uint64(s.Inode), 10)
	b = append(b, " sk:"...)
	b = strconv.AppendUint(b, s.Cookie, 16)
	if s.Mark != 0 {
		b = append(b, " fwmark:0x"...)
		b = strconv.AppendUint(b, uint64(s.Mark), 16)
	}
	if s.CgroupID != 0 {
		b = append(b, " cgroup:"...)
		b = append(b, t.lk.cgroupPath(s.CgroupID)...)
	}
	return b
}

// appendUnixExt is what ss's unix_show_sock prints after the addresses:
// -p users, -m memory, then -e details.
func (t *tabler) appendUnixExt(b []byte, s *snapshot.Socket) []byte {
	b = t.appendUsers(b, s)
	if t.opt.Memory && s.MemInfo != nil {
		b = appendSkmem(b, s.MemInfo)
	}
	if t.opt.Extended {
		if s.HasShutdown {
			b = appendShutdown(b, s.Shutdown)
		}
		if s.VFSInode != 0 || s.VFSDev != 0 {
			b = append(b, " ino:"...)
			b = strconv.AppendUint(b, uint64(s.VFSInode), 10)
			b = append(b, " dev:"...)
			b = strconv.AppendUint(b, uint64(devMajor(s.VFSDev)), 10)
			b = append(b, '/')
			b = strconv.AppendUint(b, uint64(devMinor(s.VFSDev)), 10)
		}
		if hasIcons(s) {
			b = append(b, " peers:"...)
			for _, p := range s.Icons {
				b = append(b, ' ')
				b = strconv.AppendUint(b, uint64(p), 10)
			}
		}
	}
	return b
}

// hasIcons says whether the kernel sent UNIX_DIAG_ICONS: it does for every
// listening socket (with an empty list when no connection is pending) and
// for no other.
func hasIcons(s *snapshot.Socket) bool {
	return len(s.Icons) > 0 || s.State == snapshot.StateListen
}

// devMajor and devMinor are glibc's major(3) and minor(3), which ss applies
// to the kernel-internal dev_t of UNIX_DIAG_VFS.
func devMajor(dev uint32) uint32 { return (dev >> 8) & 0xfff }
func devMinor(dev uint32) uint32 { return (dev & 0xff) | ((dev >> 12) & 0xfff00) }

func appendShutdown(b []byte, mask uint8) []byte {
	b = append(b, ' ')
	if mask&1 != 0 {
		b = append(b, '-')
	} else {
		b = append(b, '<')
	}
	b = append(b, '-')
	if mask&2 != 0 {
		return append(b, '-')
	}
	return append(b, '>')
}

func appendUsers(b []byte, owners []snapshot.Owner) []byte {
	b = append(b, " users:("...)
	for i, o := range owners {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "(\""...)
		b = append(b, o.Comm...)
		b = append(b, "\",pid="...)
		b = strconv.AppendInt(b, int64(int32(o.PID)), 10)
		b = append(b, ",fd="...)
		b = strconv.AppendInt(b, int64(int32(o.FD)), 10)
		b = append(b, ')')
	}
	return append(b, ')')
}

// appendMsTimer is ss's print_ms_timer.
func appendMsTimer(b []byte, timeout uint32) []byte {
	secs := timeout / 1000
	minutes := secs / 60
	secs %= 60
	msecs := timeout % 1000
	if minutes != 0 {
		msecs = 0
		b = strconv.AppendUint(b, uint64(minutes), 10)
		b = append(b, "min"...)
		if minutes > 9 {
			secs = 0
		}
	}
	if secs != 0 {
		if secs > 9 {
			msecs = 0
		}
		b = strconv.AppendUint(b, uint64(secs), 10)
		if msecs != 0 {
			b = append(b, '.')
		} else {
			b = append(b, "sec"...)
		}
	}
	if msecs != 0 {
		b = append(b, byte('0'+msecs/100), byte('0'+msecs/10%10), byte('0'+msecs%10))
		b = append(b, "ms"...)
	}
	return b
}

// finish prints what is buffered, as ss's final render does.
func (t *tabler) finish() error {
	t.render()
	t.write()
	t.release()
	return t.err
}

// render lays out and writes the buffered lines.
func (t *tabler) render() {
	if t.lines > 0 {
		width := t.widths()
		t.writeLines(&width)
		t.batches++
	}
	t.arena = t.arena[:0]
	t.ends = t.ends[:0]
	t.lines = 0
	t.sim = chunkSim{}
}

// widths is ss's render_calc_width.
func (t *tabler) widths() [numCols]int {
	var w [numCols]int
	screen := t.opt.ScreenWidth
	first := true
	for _, c := range append(t.cols[:len(t.cols):len(t.cols)], colProc) {
		if !first && t.maxLen[c] > 0 {
			w[c] = t.maxLen[c] + len(colDelim[c])
		} else {
			w[c] = t.maxLen[c]
		}
		if screen > 0 {
			w[c] = min(w[c], screen)
		}
		if w[c] > 0 {
			first = false
		}
	}
	if screen <= 0 {
		return w
	}
	// Break the columns into lines that fit the screen and spread the
	// spare space of each line over its columns.
	length, linecols, eol := 0, 0, -1
	for c := 0; c < numCols; c++ {
		if w[c] == 0 {
			continue
		}
		linecols++
		length += w[c]
		last := true
		for tmp := c + 1; tmp < numCols; tmp++ {
			if w[tmp] != 0 {
				last = false
				break
			}
		}
		if !last && length < screen {
			continue
		}
		if length != screen {
			if length > screen {
				length -= w[c]
				c--
				linecols--
			}
			if linecols > 0 {
				pad := screen - length
				spacing, rem := pad/linecols, pad%linecols
				for tmp := c; tmp > eol; tmp-- {
					if w[tmp] == 0 {
						continue
					}
					w[tmp] += spacing
					if rem > 0 {
						w[tmp]++
						rem--
					}
				}
			}
		}
		eol = c
		length = 0
		linecols = 0
	}
	return w
}

var spaces = []byte(strings.Repeat(" ", 512))

func appendSpaces(b []byte, n int) []byte {
	for n > 0 {
		k := min(n, len(spaces))
		b = append(b, spaces[:k]...)
		n -= k
	}
	return b
}

// writeLines is ss's render: delimiters, alignment and padding.
func (t *tabler) writeLines(width *[numCols]int) {
	out := t.out
	start := 0
	fi := 0
	for line := 0; line < t.lines; line++ {
		for i, c := range t.cols {
			end := int(t.ends[fi])
			fi++
			field := t.arena[start:end]
			start = end
			printed := 0
			if i > 0 {
				printed = len(colDelim[c])
				out = append(out, colDelim[c]...)
			}
			wd := width[c]
			if wd > 0 && colRight[c] {
				if s := wd - len(field) - printed; s > 0 {
					out = appendSpaces(out, s)
					printed += s
				}
			}
			out = append(out, field...)
			printed += len(field)
			if wd > 0 && !colRight[c] {
				if s := wd - printed; s > 0 {
					out = appendSpaces(out, s)
				}
			}
		}
		out = append(out, '\n')
		if len(out) >= outBufSize {
			t.out = out
			t.write()
			out = t.out
		}
	}
	t.out = out
}

// lookups caches the name lookups of one rendering.
type lookups struct {
	opt     *Options
	ifnames map[uint32]string
	hosts   map[netip.Addr]string // "" when the address has no name
	procs   map[int32]string      // netlink port id → comm, "" when none
	cg      *CgroupPaths
}

func newLookups(opt *Options) *lookups { return &lookups{opt: opt} }

func (l *lookups) ifName(index uint32) string {
	if name, ok := l.ifnames[index]; ok {
		return name
	}
	var name string
	if l.opt.IfName != nil {
		name = l.opt.IfName(index)
	} else if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		name = ifi.Name
	} else {
		name = "if" + strconv.FormatUint(uint64(index), 10)
	}
	if l.ifnames == nil {
		l.ifnames = make(map[uint32]string)
	}
	l.ifnames[index] = name
	return name
}

func (l *lookups) hostName(a netip.Addr) (string, bool) {
	if name, ok := l.hosts[a]; ok {
		return name, name != ""
	}
	var name string
	var ok bool
	if l.opt.HostName != nil {
		name, ok = l.opt.HostName(a)
	} else {
		name, ok = defaultHostName(a)
	}
	if !ok {
		name = ""
	}
	if l.hosts == nil {
		l.hosts = make(map[netip.Addr]string)
	}
	l.hosts[a] = name
	return name, name != ""
}

func defaultHostName(a netip.Addr) (string, bool) {
	a = a.Unmap()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, a.String())
	if err != nil || len(names) == 0 {
		return "", false
	}
	return strings.TrimSuffix(names[0], "."), true
}

func (l *lookups) cgroupPath(id uint64) string {
	if l.opt.CgroupPath != nil {
		return l.opt.CgroupPath(id)
	}
	if l.cg == nil {
		l.cg = NewCgroupPaths()
	}
	return l.cg.Path(id)
}

// normAddr returns a as an address of family: 4 bytes for AF_INET, 16
// for AF_INET6.
func normAddr(family uint8, a netip.Addr) netip.Addr {
	if family == afInet {
		if a.Is4In6() {
			return a.Unmap()
		}
		if !a.Is4() {
			return netip.IPv4Unspecified()
		}
		return a
	}
	if !a.IsValid() {
		return netip.IPv6Unspecified()
	}
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a.WithZone("")
}

// appendHost is ss's inet_addr_print without the port: "*" for the IPv6
// wildcard of a socket that is not v6only, else the address (or its name
// under -r), bracketed when it contains a colon.
func (l *lookups) appendHost(b []byte, family uint8, a netip.Addr, v6only bool) []byte {
	a = normAddr(family, a)
	if family != afInet && !v6only && a == netip.IPv6Unspecified() {
		return append(b, '*')
	}
	if l.opt.Resolve {
		if name, ok := l.hostName(a); ok {
			if strings.IndexByte(name, ':') >= 0 {
				b = append(b, '[')
				b = append(b, name...)
				return append(b, ']')
			}
			return append(b, name...)
		}
	}
	if a.Is4() {
		return appendIPv4(b, a.As4())
	}
	b = append(b, '[')
	b = appendIPv6(b, a.As16())
	return append(b, ']')
}

// AppendAddr appends a as glibc's inet_ntop prints it (IPv4-compatible and
// IPv4-mapped IPv6 addresses end in dotted quads).
func AppendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		return appendIPv4(b, a.As4())
	}
	return appendIPv6(b, a.As16())
}

// decimalByte holds "0" to "255".
var decimalByte = func() (t [256]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func appendIPv4(b []byte, a [4]byte) []byte {
	b = append(b, decimalByte[a[0]]...)
	b = append(b, '.')
	b = append(b, decimalByte[a[1]]...)
	b = append(b, '.')
	b = append(b, decimalByte[a[2]]...)
	b = append(b, '.')
	return append(b, decimalByte[a[3]]...)
}

// appendIPv6 is glibc's inet_ntop6.
func appendIPv6(b []byte, a [16]byte) []byte {
	var words [8]uint16
	for i := range words {
		words[i] = uint16(a[2*i])<<8 | uint16(a[2*i+1])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i, w := range words {
		if w == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
		} else if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	for i := 0; i < 8; i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				b = append(b, ':')
			}
			continue
		}
		if i != 0 {
			b = append(b, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && words[5] == 0xffff)) {
			return appendIPv4(b, [4]byte(a[12:16]))
		}
		b = strconv.AppendUint(b, uint64(words[i]), 16)
	}
	if bestBase != -1 && bestBase+bestLen == 8 {
		b = append(b, ':')
	}
	return b
}
