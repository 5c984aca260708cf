// Package snapshot builds the socket table: a sock_diag dump of the kernel's
// sockets, their owning processes, and the overlay that keeps the table current
// from tracer events.
package snapshot

import (
	"net/netip"
)

// Kernel TCP states (include/net/tcp_states.h). ss's SS_* numbering is the
// same for 1..11; unix_diag reports unix sockets in the same numbering.
const (
	StateEstablished   uint8 = 1
	StateSynSent       uint8 = 2
	StateSynRecv       uint8 = 3
	StateFinWait1      uint8 = 4
	StateFinWait2      uint8 = 5
	StateTimeWait      uint8 = 6
	StateClose         uint8 = 7
	StateCloseWait     uint8 = 8
	StateLastAck       uint8 = 9
	StateListen        uint8 = 10
	StateClosing       uint8 = 11
	StateNewSynRecv    uint8 = 12
	StateBoundInactive uint8 = 13 // bound, never listened/connected (kernel 6.5+)
)

// Owner is one process file descriptor that refers to a socket.
type Owner struct {
	PID  uint32 `json:"pid"`
	FD   uint32 `json:"fd"`
	Comm string `json:"comm"`
}

// Socket is one row of the socket table. The fields mirror what sock_diag
// reports (struct inet_diag_msg / unix_diag_msg and their attributes) so that
// a renderer can print exactly what ss prints.
type Socket struct {
	Family uint8 // unix.AF_INET, AF_INET6, AF_UNIX, AF_NETLINK, AF_PACKET
	Type   uint8 // unix.SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW
	// Protocol is the protocol of the socket's table, as ss knows it:
	//   - inet: unix.IPPROTO_TCP, IPPROTO_UDP, or IPPROTO_MPTCP (262) for
	//     the MPTCP sockets of an inet_diag dump asked for IPPROTO_MPTCP.
	//   - raw inet sockets (Type SOCK_RAW): what ss takes as the socket's
	//     type: the INET_DIAG_PROTOCOL attribute (the socket's protocol,
	//     e.g. IPPROTO_ICMP) from sock_diag, IPPROTO_RAW if the kernel left
	//     it out, and 0 for rows read from /proc/net/raw{,6}, which ss names
	//     "raw". The socket's protocol is always Local.Port() too (the
	//     kernel's inet_num, which ss prints in the Port column).
	//   - netlink: ndiag_protocol (unix.NETLINK_ROUTE, ...).
	//   - packet: pdiag_num, the ethertype in host order (unix.ETH_P_ALL).
	//   - unix: 0.
	Protocol uint16
	State    uint8 // kernel TCP state numbering (see State* above); netlink and packet sockets are always StateClose, as ss lists them

	// RecvQ and SendQ: the kernel's queue sizes. Netlink sockets: RecvQ
	// and SendQ are the SK_MEMINFO_RMEM_ALLOC and SK_MEMINFO_WMEM_ALLOC
	// words of NETLINK_DIAG_MEMINFO (0 without it). Packet sockets: RecvQ
	// is SK_MEMINFO_RMEM_ALLOC of PACKET_DIAG_MEMINFO, SendQ 0. Raw
	// sockets from /proc/net/raw{,6}: rx_queue and tx_queue.
	RecvQ uint32
	SendQ uint32

	// Inet sockets: addresses and ports as the kernel has them. IPv4-mapped
	// IPv6 addresses stay IPv6 (ss prints them as such).
	Local netip.AddrPort
	Peer  netip.AddrPort
	Iface uint32 // idiag_if: the bound device index, 0 if none; packet sockets: pdi_index of PACKET_DIAG_INFO (0 if unbound or absent), which ss prints as the Port

	UID    uint32 // idiag_uid, UNIX_DIAG_UID, PACKET_DIAG_UID, /proc's uid column; 0 for netlink sockets
	Inode  uint32
	Cookie uint64 // socket cookie (idiag_cookie, udiag_cookie, ndiag_cookie, pdiag_cookie); ss prints it as sk:%llx; 0 for rows read from /proc
	NetNS  uint64 // network namespace inode, where known

	Mark        uint32 // INET_DIAG_MARK
	CgroupID    uint64 // INET_DIAG_CGROUP_ID
	HasV6Only   bool   // INET_DIAG_SKV6ONLY was present
	V6Only      bool
	HasShutdown bool // INET_DIAG_SHUTDOWN / UNIX_DIAG_SHUTDOWN was present
	Shutdown    uint8

	// Timers (-o): idiag_timer, idiag_retrans, idiag_expires (ms).
	Timer   uint8
	Retrans uint8
	Expires uint32

	// Unix sockets. Path is "" for unnamed sockets; abstract names start with
	// '@' (every NUL of the name replaced by '@', as ss does).
	Path      string
	PeerInode uint32
	VFSInode  uint32 // UNIX_DIAG_VFS: inode of the bound path
	VFSDev    uint32 // UNIX_DIAG_VFS: device of the bound path
	Icons     []uint32

	// Raw attribute payloads kept for the detailed views (-i, -m); nil when
	// not requested.
	TCPInfo []byte   // INET_DIAG_INFO (struct tcp_info; struct mptcp_info for MPTCP sockets)
	ULPInfo []byte   // INET_DIAG_ULP_INFO: the upper-layer protocol (tls, mptcp subflow), nested attributes
	MemInfo []uint32 // INET_DIAG_SKMEMINFO, UNIX_DIAG_MEMINFO; NETLINK_DIAG_MEMINFO and PACKET_DIAG_MEMINFO, which are always asked (as ss does)
	CongAlg string

	// Congestion-control details (-i): the payload of the first of
	// INET_DIAG_VEGASINFO, INET_DIAG_DCTCPINFO or INET_DIAG_BBRINFO that came
	// (asked with the VEGASINFO extension bit), and which one it was.
	CCInfoType uint16
	CCInfo     []byte

	// Netlink sockets: struct netlink_diag_msg (linux/netlink_diag.h)
	// and its attributes, asked as ss asks (NDIAG_SHOW_GROUPS |
	// NDIAG_SHOW_MEMINFO). MemInfo holds NETLINK_DIAG_MEMINFO.
	NetlinkPortID    int32  // ndiag_portid: 0 for kernel sockets (ss prints "kernel"), a pid or a negative autobind id otherwise
	NetlinkDstPortID uint32 // ndiag_dst_portid: the peer's port id once connected
	NetlinkDstGroup  uint32 // ndiag_dst_group: the peer's group once connected
	NetlinkState     uint8  // ndiag_state (sk_state): NetlinkConnected once connect(2)ed (ss then prints "dst_group:dst_portid" as the peer); 7 (TCP_CLOSE, sock_init_data's) if never connected, NetlinkUnconnected after a disconnect
	NetlinkGroups    uint64 // first unsigned long of NETLINK_DIAG_GROUPS (multicast groups 1..64 as bits), 0 without it

	// Packet sockets: struct packet_diag_msg (linux/packet_diag.h) and its
	// attributes, asked as ss asks (PACKET_SHOW_INFO | MEMINFO | FILTER |
	// RING_CFG | FANOUT). The device index of PACKET_DIAG_INFO is Iface,
	// the ethertype Protocol, PACKET_DIAG_UID UID, PACKET_DIAG_MEMINFO
	// MemInfo.
	HasPacketInfo    bool     // PACKET_DIAG_INFO was present (ss -e prints ver, cpy_thresh, flags then)
	PacketVersion    uint32   // pdi_version: TPACKET_V1..V3
	PacketCopyThresh uint32   // pdi_copy_thresh
	PacketTstamp     uint32   // pdi_tstamp
	PacketFlags      uint32   // pdi_flags: PDI_RUNNING, PDI_AUXDATA, PDI_ORIGDEV, PDI_VNETHDR, PDI_LOSS
	PacketRxRing     []uint32 // PACKET_DIAG_RX_RING: struct packet_diag_ring as its 7 words; nil without a ring
	PacketTxRing     []uint32 // PACKET_DIAG_TX_RING, likewise
	HasPacketFanout  bool     // PACKET_DIAG_FANOUT was present
	PacketFanout     uint32   // PACKET_DIAG_FANOUT: id in the low 16 bits, type above
	PacketFilter     []byte   // PACKET_DIAG_FILTER: the attached classic BPF program, struct sock_filter (8 bytes) after another as the kernel sent it; nil without one

	Owners []Owner
}

// Netlink socket states (ndiag_state; linux/netlink.h).
const (
	NetlinkUnconnected uint8 = 0
	NetlinkConnected   uint8 = 1
)

// IsInet reports whether the socket is IPv4 or IPv6.
func (s *Socket) IsInet() bool { return s.Family == afInet || s.Family == afInet6 }

const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)
