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
	Family   uint8 // unix.AF_INET, AF_INET6, AF_UNIX
	Type     uint8 // unix.SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW
	Protocol uint8 // unix.IPPROTO_TCP, IPPROTO_UDP (inet only)
	State    uint8 // kernel TCP state numbering (see State* above)

	RecvQ uint32
	SendQ uint32

	// Inet sockets: addresses and ports as the kernel has them. IPv4-mapped
	// IPv6 addresses stay IPv6 (ss prints them as such).
	Local netip.AddrPort
	Peer  netip.AddrPort
	Iface uint32 // idiag_if: the bound device index, 0 if none

	UID    uint32
	Inode  uint32
	Cookie uint64 // socket cookie (idiag_cookie); ss prints it as sk:%llx
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
	TCPInfo []byte // INET_DIAG_INFO (struct tcp_info)
	MemInfo []uint32
	CongAlg string

	// Congestion-control details (-i): the payload of the first of
	// INET_DIAG_VEGASINFO, INET_DIAG_DCTCPINFO or INET_DIAG_BBRINFO that came
	// (asked with the VEGASINFO extension bit), and which one it was.
	CCInfoType uint16
	CCInfo     []byte

	Owners []Owner
}

// IsInet reports whether the socket is IPv4 or IPv6.
func (s *Socket) IsInet() bool { return s.Family == afInet || s.Family == afInet6 }

const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)
