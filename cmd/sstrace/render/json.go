package render

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"sstrace/snapshot"
)

// JSON writes socks as one JSON document (-j):
//
//	{"sockets":[
//	SOCKET,
//	...
//	SOCKET
//	]}
//
// with one SOCKET object (JSONSocket) per line; the stream commands print
// the same objects one per line. Numbers are always numeric (addresses,
// ports, ids); names are added beside them: "service" unless Numeric,
// "host" with Resolve, "iface" for a bound device, "cgroup" with Extended.
//
// SOCKET, in this field order (fields marked "omitted" are left out when
// absent or zero):
//
//	netid       string   tcp, udp, mptcp, raw, icmp6, ???, u_str, u_dgr, u_seq, nl, p_raw, p_dgr: ss's Netid
//	state       string   ESTAB, LISTEN, UNCONN, SYN-SENT, ...: ss's State
//	recv_q      number   Recv-Q
//	send_q      number   Send-Q
//	local       ENDPOINT inet sockets only
//	peer        ENDPOINT inet sockets only
//	path        string   unix: the bound name ("@..." for an abstract name); omitted when unnamed
//	peer_inode  number   unix: the peer's inode; omitted when 0
//	netlink     NETLINK  netlink sockets only
//	packet      PACKET   packet sockets only
//	inode       number   the socket's inode (0 for TIME-WAIT and SYN-RECV)
//	uid         number   inet: always; unix: when non-zero
//	cookie      number   socket cookie (ss -e prints it as sk:%x); omitted when 0
//	netns       number   network namespace inode; omitted when unknown
//	mark        number   SO_MARK (ss's fwmark); omitted when 0
//	cgroup_id   number   cgroup v2 id; omitted when 0
//	cgroup      string   that cgroup's path, as ss -e prints it; Extended only
//	v6only      bool     IPv6 sockets, when the kernel reports IPV6_V6ONLY
//	shutdown    number   shutdown mask (1: receives shut, 2: sends shut), when reported
//	vfs         VFS      unix sockets bound to a path
//	peers       [number] unix listeners: inodes of the connections waiting in accept
//	timer       TIMER    when a timer is pending (idiag_timer != 0)
//	skmem       SKMEM    with Memory (-m), when the kernel sent the socket's memory
//	cong        string   inet, with Info (-i): the congestion control algorithm
//	tcp_info    TCPINFO  with Info, TCP sockets: struct tcp_info (JSONTCPInfo)
//	mptcp_info  MPTCPINFO with Info, MPTCP sockets: struct mptcp_info (JSONMPTCPInfo)
//	vegas, dctcp, bbr    with Info: the algorithm's state (JSONVegas, JSONDCTCP, JSONBBR)
//	owners      [OWNER]  the processes holding the socket, when known (-p)
//
// ENDPOINT: {"addr": "127.0.0.1" | "::" | "::ffff:10.0.0.1" (inet_ntop
// form, no brackets), "port": number (0: none), "ifindex": number and
// "iface": string (local endpoint bound to a device only), "host": string
// (Resolve, when the address has a name), "service": string (unless
// Numeric, when ss would print a service name)}.
//
// VFS: {"inode": number, "dev": number (the kernel's internal dev_t:
// major<<20 | minor)}.
//
// TIMER: {"name": "on" | "keepalive" | "timewait" | "persist" | "unknown",
// "expires_ms": number, "retrans": number}.
//
// OWNER: {"pid": number, "fd": number, "comm": string}.
//
// NETLINK: {"protocol": number, "protocol_name": string (ss's name: rtnl,
// tcpdiag, genl, ...; unless Numeric), "portid": number (0: the kernel),
// "process": string (the comm of the process whose pid the port id is,
// when there is one; unless Numeric), "connected": bool, "dst_portid",
// "dst_group": numbers (omitted when 0), "groups": number (multicast groups
// 1..64 as bits; omitted when 0)}.
//
// PACKET: {"protocol": number (the ethertype, host order; 3 is ETH_P_ALL),
// "protocol_name": string (unless Numeric), "ifindex": number and "iface":
// string (bound sockets), "info": {"version", "copy_thresh", "tstamp",
// "flags"}, "rx_ring", "tx_ring": {"block_size", "block_nr", "frame_size",
// "frame_nr", "retire_tmo", "sizeof_priv", "features"}, "fanout": {"id",
// "type"}, "filter": [{"code", "jt", "jf", "k"}] (each when the kernel sent
// it)}.
//
// SKMEM: {"rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc",
// "wmem_queued", "optmem", "backlog", "drops"}: bytes (SK_MEMINFO_*; the
// last two when the kernel sent them).
//
// Raw inet sockets: the local port is the socket's protocol, and its
// "service" the protocol's name (as ss prints it).
func JSON(w io.Writer, socks []snapshot.Socket, opt Options) error {
	e := NewEncoder(opt)
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 0, 1024)
	bw.WriteString("{\"sockets\":[")
	for i := range socks {
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		buf = e.AppendSocket(buf, &socks[i])
		bw.Write(buf)
	}
	if len(socks) > 0 {
		bw.WriteByte('\n')
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// JSONSocket is the JSON object of one socket (see JSON for the schema).
// Encoder.AppendSocket writes exactly what encoding/json makes of it.
type JSONSocket struct {
	Netid     string           `json:"netid"`
	State     string           `json:"state"`
	RecvQ     uint32           `json:"recv_q"`
	SendQ     uint32           `json:"send_q"`
	Local     *JSONEndpoint    `json:"local,omitempty"`
	Peer      *JSONEndpoint    `json:"peer,omitempty"`
	Path      string           `json:"path,omitempty"`
	PeerInode uint32           `json:"peer_inode,omitempty"`
	Netlink   *JSONNetlink     `json:"netlink,omitempty"`
	Packet    *JSONPacket      `json:"packet,omitempty"`
	Inode     uint32           `json:"inode"`
	UID       *uint32          `json:"uid,omitempty"`
	Cookie    uint64           `json:"cookie,omitempty"`
	NetNS     uint64           `json:"netns,omitempty"`
	Mark      uint32           `json:"mark,omitempty"`
	CgroupID  uint64           `json:"cgroup_id,omitempty"`
	Cgroup    string           `json:"cgroup,omitempty"`
	V6Only    *bool            `json:"v6only,omitempty"`
	Shutdown  *uint8           `json:"shutdown,omitempty"`
	VFS       *JSONVFS         `json:"vfs,omitempty"`
	Peers     []uint32         `json:"peers,omitempty"`
	Timer     *JSONTimer       `json:"timer,omitempty"`
	Skmem     *JSONSkmem       `json:"skmem,omitempty"`
	Cong      string           `json:"cong,omitempty"`
	TCPInfo   *JSONTCPInfo     `json:"tcp_info,omitempty"`
	MPTCPInfo *JSONMPTCPInfo   `json:"mptcp_info,omitempty"`
	Vegas     *JSONVegas       `json:"vegas,omitempty"`
	DCTCP     *JSONDCTCP       `json:"dctcp,omitempty"`
	BBR       *JSONBBR         `json:"bbr,omitempty"`
	Owners    []snapshot.Owner `json:"owners,omitempty"`
}

// JSONEndpoint is one end of an inet socket.
type JSONEndpoint struct {
	Addr    string `json:"addr"`
	Port    uint16 `json:"port"`
	IfIndex uint32 `json:"ifindex,omitempty"`
	Iface   string `json:"iface,omitempty"`
	Host    string `json:"host,omitempty"`
	Service string `json:"service,omitempty"`
}

// JSONVFS is the file a unix socket is bound to.
type JSONVFS struct {
	Inode uint32 `json:"inode"`
	Dev   uint32 `json:"dev"`
}

// JSONTimer is a pending socket timer.
type JSONTimer struct {
	Name      string `json:"name"`
	ExpiresMs uint32 `json:"expires_ms"`
	Retrans   uint8  `json:"retrans"`
}

// Encoder turns sockets into JSON objects. It caches name lookups and is
// not safe for concurrent use.
type Encoder struct {
	opt Options
	lk  *lookups
}

// NewEncoder returns an Encoder for opt.
func NewEncoder(opt Options) *Encoder {
	e := &Encoder{opt: opt}
	e.lk = newLookups(&e.opt)
	return e
}

type endpointInfo struct {
	addr    netip.Addr
	port    uint16
	ifindex uint32
	iface   string
	host    string
	service string
}

func (e *Encoder) endpoint(s *snapshot.Socket, ap netip.AddrPort, ifindex uint32) endpointInfo {
	ep := endpointInfo{addr: normAddr(s.Family, ap.Addr()), port: ap.Port(), ifindex: ifindex}
	if ifindex != 0 {
		ep.iface = e.lk.ifName(ifindex)
	}
	if e.opt.Resolve && !ep.addr.IsUnspecified() {
		ep.host, _ = e.lk.hostName(ep.addr)
	}
	ep.service, _ = serviceName(&e.opt, s, ep.port)
	return ep
}

func (ep *endpointInfo) object() *JSONEndpoint {
	return &JSONEndpoint{
		Addr:    string(AppendAddr(nil, ep.addr)),
		Port:    ep.port,
		IfIndex: ep.ifindex,
		Iface:   ep.iface,
		Host:    ep.host,
		Service: ep.service,
	}
}

func isInet(s *snapshot.Socket) bool { return s.Family == afInet || s.Family == afInet6 }

// Object returns the JSON object of s as a value (for encoding/json, or
// for decoding into).
func (e *Encoder) Object(s *snapshot.Socket) JSONSocket {
	o := JSONSocket{
		Netid: Netid(s),
		State: StateName(s.State),
		RecvQ: s.RecvQ,
		SendQ: s.SendQ,
		Inode: s.Inode,
	}
	if isInet(s) {
		l := e.endpoint(s, s.Local, s.Iface)
		p := e.endpoint(s, s.Peer, 0)
		o.Local, o.Peer = l.object(), p.object()
		uid := s.UID
		o.UID = &uid
	} else if s.UID != 0 {
		uid := s.UID
		o.UID = &uid
	}
	switch s.Family {
	case afNetlink:
		o.Netlink = e.netlinkObject(s)
	case afPacket:
		o.Packet = e.packetObject(s)
	}
	if s.Family == afUnix {
		o.Path = s.Path
		o.PeerInode = s.PeerInode
		if s.VFSInode != 0 || s.VFSDev != 0 {
			o.VFS = &JSONVFS{Inode: s.VFSInode, Dev: s.VFSDev}
		}
		if len(s.Icons) > 0 {
			o.Peers = s.Icons
		}
	}
	o.Cookie = s.Cookie
	o.NetNS = s.NetNS
	o.Mark = s.Mark
	o.CgroupID = s.CgroupID
	if e.opt.Extended && s.CgroupID != 0 {
		o.Cgroup = e.lk.cgroupPath(s.CgroupID)
	}
	if s.Family == afInet6 && s.HasV6Only {
		v := s.V6Only
		o.V6Only = &v
	}
	if s.HasShutdown {
		v := s.Shutdown
		o.Shutdown = &v
	}
	if s.Timer != 0 && isInet(s) {
		o.Timer = &JSONTimer{Name: TimerName(s.Timer), ExpiresMs: s.Expires, Retrans: s.Retrans}
	}
	if e.opt.Memory && s.MemInfo != nil {
		o.Skmem = skmemObject(s.MemInfo)
	}
	e.setInfo(&o, s)
	if len(s.Owners) > 0 {
		o.Owners = s.Owners
	}
	return o
}

// AppendSocket appends the JSON object of s (no newline): the bytes
// encoding/json makes of Object(s), without its reflection.
func (e *Encoder) AppendSocket(b []byte, s *snapshot.Socket) []byte {
	b = append(b, `{"netid":`...)
	b = appendJSONString(b, Netid(s))
	b = append(b, `,"state":`...)
	b = appendJSONString(b, StateName(s.State))
	b = append(b, `,"recv_q":`...)
	b = strconv.AppendUint(b, uint64(s.RecvQ), 10)
	b = append(b, `,"send_q":`...)
	b = strconv.AppendUint(b, uint64(s.SendQ), 10)
	inet := isInet(s)
	if inet {
		l := e.endpoint(s, s.Local, s.Iface)
		b = append(b, `,"local":`...)
		b = appendEndpoint(b, &l)
		p := e.endpoint(s, s.Peer, 0)
		b = append(b, `,"peer":`...)
		b = appendEndpoint(b, &p)
	}
	unixSock := s.Family == afUnix
	if unixSock && s.Path != "" {
		b = append(b, `,"path":`...)
		b = appendJSONString(b, s.Path)
	}
	if unixSock && s.PeerInode != 0 {
		b = append(b, `,"peer_inode":`...)
		b = strconv.AppendUint(b, uint64(s.PeerInode), 10)
	}
	switch s.Family {
	case afNetlink:
		b = e.appendNetlink(b, s)
	case afPacket:
		b = e.appendPacket(b, s)
	}
	b = append(b, `,"inode":`...)
	b = strconv.AppendUint(b, uint64(s.Inode), 10)
	if inet || s.UID != 0 {
		b = append(b, `,"uid":`...)
		b = strconv.AppendUint(b, uint64(s.UID), 10)
	}
	b = appendUintField(b, `,"cookie":`, s.Cookie)
	b = appendUintField(b, `,"netns":`, s.NetNS)
	b = appendUintField(b, `,"mark":`, uint64(s.Mark))
	b = appendUintField(b, `,"cgroup_id":`, s.CgroupID)
	if e.opt.Extended && s.CgroupID != 0 {
		if p := e.lk.cgroupPath(s.CgroupID); p != "" {
			b = append(b, `,"cgroup":`...)
			b = appendJSONString(b, p)
		}
	}
	if s.Family == afInet6 && s.HasV6Only {
		b = append(b, `,"v6only":`...)
		b = strconv.AppendBool(b, s.V6Only)
	}
	if s.HasShutdown {
		b = append(b, `,"shutdown":`...)
		b = strconv.AppendUint(b, uint64(s.Shutdown), 10)
	}
	if unixSock && (s.VFSInode != 0 || s.VFSDev != 0) {
		b = append(b, `,"vfs":{"inode":`...)
		b = strconv.AppendUint(b, uint64(s.VFSInode), 10)
		b = append(b, `,"dev":`...)
		b = strconv.AppendUint(b, uint64(s.VFSDev), 10)
		b = append(b, '}')
	}
	if unixSock && len(s.Icons) > 0 {
		b = append(b, `,"peers":[`...)
		for i, p := range s.Icons {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(p), 10)
		}
		b = append(b, ']')
	}
	if inet && s.Timer != 0 {
		b = append(b, `,"timer":{"name":`...)
		b = appendJSONString(b, TimerName(s.Timer))
		b = append(b, `,"expires_ms":`...)
		b = strconv.AppendUint(b, uint64(s.Expires), 10)
		b = append(b, `,"retrans":`...)
		b = strconv.AppendUint(b, uint64(s.Retrans), 10)
		b = append(b, '}')
	}
	if e.opt.Memory && s.MemInfo != nil {
		b = append(b, `,"skmem":`...)
		b = appendSkmemJSON(b, s.MemInfo)
	}
	b = e.appendInfo(b, s)
	if len(s.Owners) > 0 {
		b = append(b, `,"owners":[`...)
		for i := range s.Owners {
			o := &s.Owners[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"pid":`...)
			b = strconv.AppendUint(b, uint64(o.PID), 10)
			b = append(b, `,"fd":`...)
			b = strconv.AppendUint(b, uint64(o.FD), 10)
			b = append(b, `,"comm":`...)
			b = appendJSONString(b, o.Comm)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendUintField(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, key...)
	return strconv.AppendUint(b, v, 10)
}

func appendEndpoint(b []byte, ep *endpointInfo) []byte {
	b = append(b, `{"addr":"`...)
	b = AppendAddr(b, ep.addr)
	b = append(b, `","port":`...)
	b = strconv.AppendUint(b, uint64(ep.port), 10)
	if ep.ifindex != 0 {
		b = append(b, `,"ifindex":`...)
		b = strconv.AppendUint(b, uint64(ep.ifindex), 10)
	}
	if ep.iface != "" {
		b = append(b, `,"iface":`...)
		b = appendJSONString(b, ep.iface)
	}
	if ep.host != "" {
		b = append(b, `,"host":`...)
		b = appendJSONString(b, ep.host)
	}
	if ep.service != "" {
		b = append(b, `,"service":`...)
		b = appendJSONString(b, ep.service)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s exactly as encoding/json does by default
// (HTML-safe).
func appendJSONString(b []byte, s string) []byte { return AppendJSONString(b, s, true) }

// AppendJSONString quotes s exactly as encoding/json does: '"' and '\'
// escaped, control characters as \b \f \n \r \t or \u00XX, each byte
// that is not valid UTF-8 as \ufffd, U+2028 and U+2029 (JSONP's line
// breaks) as \u2028 and \u2029, and with escapeHTML (json.Encoder's
// SetEscapeHTML) '<', '>' and '&' as \u003c, \u003e and \u0026;
// everything else, DEL included, as it is.
func AppendJSONString(b []byte, s string, escapeHTML bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && !(escapeHTML && (c == '<' || c == '>' || c == '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
