package render

import (
	"encoding/binary"
	"os"
	"strconv"

	"sstrace/snapshot"
)

// Netlink sockets, as ss's netlink_show_one prints them: "proto:process"
// and the peer ("*", or "group:portid" once connected); -e adds the
// socket and callback pointers (always 0 from netlink_diag) and the first
// 32 multicast groups; -m adds a tab and the memory. No users (-p) and no
// timers.

// nlProtoNames is iproute2's nl_proto_tab (lib/rt_names.c), the same as
// Debian's /etc/iproute2/nl_protos.
var nlProtoNames = [...]string{
	0:  "rtnl",
	1:  "unused",
	2:  "usersock",
	3:  "fw",
	4:  "tcpdiag",
	5:  "nflog",
	6:  "xfrm",
	7:  "selinux",
	8:  "iscsi",
	9:  "audit",
	10: "fiblookup",
	11: "connector",
	12: "nft",
	13: "ip6fw",
	14: "dec-rt",
	15: "uevent",
	16: "genl",
	18: "scsi-trans",
	19: "ecryptfs",
	20: "rdma",
	21: "crypto",
}

// NetlinkProtoName is ss's name for a netlink protocol (nl_proto_n2a
// without -n), "" if it has none.
func NetlinkProtoName(proto uint16) string {
	if int(proto) < len(nlProtoNames) {
		return nlProtoNames[proto]
	}
	return ""
}

func (t *tabler) appendNetlinkCell(b []byte, c int, s *snapshot.Socket) []byte {
	switch c {
	case colAddr:
		if name := NetlinkProtoName(s.Protocol); name != "" && !t.opt.Numeric {
			b = append(b, name...)
		} else {
			b = strconv.AppendUint(b, uint64(s.Protocol), 10)
		}
		return append(b, ':')
	case colServ:
		return t.lk.appendNetlinkPort(b, s.NetlinkPortID)
	case colRAddr:
		if s.NetlinkState == snapshot.NetlinkConnected {
			b = strconv.AppendInt(b, int64(int32(s.NetlinkDstGroup)), 10)
			return append(b, ':')
		}
		return append(b, '*')
	}
	if s.NetlinkState == snapshot.NetlinkConnected {
		return strconv.AppendInt(b, int64(int32(s.NetlinkDstPortID)), 10)
	}
	return b
}

// appendNetlinkPort is ss's procname: "*" for port id -1, else (unless
// -n) "kernel" for 0 and "comm/pid" for the pid of a live process, else the
// number.
func (l *lookups) appendNetlinkPort(b []byte, pid int32) []byte {
	switch {
	case pid == -1:
		return append(b, '*')
	case l.opt.Numeric:
	case pid == 0:
		return append(b, "kernel"...)
	case pid > 0:
		if comm, ok := l.processName(pid); ok {
			b = append(b, comm...)
			b = append(b, '/')
		}
	}
	return strconv.AppendInt(b, int64(pid), 10)
}

func (l *lookups) processName(pid int32) (string, bool) {
	if name, ok := l.procs[pid]; ok {
		return name, name != ""
	}
	var name string
	var ok bool
	if l.opt.ProcessName != nil {
		name, ok = l.opt.ProcessName(pid)
	} else {
		name, ok = readProcComm(pid)
	}
	if !ok {
		name = ""
	}
	if l.procs == nil {
		l.procs = make(map[int32]string)
	}
	l.procs[pid] = name
	return name, name != ""
}

// readProcComm reads the comm of /proc/PID/stat the way ss's
// fscanf(fp, "%*d (%[^)])") does: up to the first ')' (a comm holding one
// is cut there), at least one byte.
func readProcComm(pid int32) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return "", false
	}
	return scanStatComm(b)
}

func scanStatComm(b []byte) (string, bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	d := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == d {
		return "", false
	}
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i >= len(b) || b[i] != '(' {
		return "", false
	}
	i++
	j := i
	for j < len(b) && b[j] != ')' {
		j++
	}
	if j == i {
		return "", false
	}
	return string(b[i:j]), true
}

func (t *tabler) appendNetlinkExt(b []byte, s *snapshot.Socket) []byte {
	if t.opt.Extended {
		b = append(b, " sk=0 cb=0 groups=0x"...)
		b = appendHex08(b, uint32(s.NetlinkGroups))
	}
	if t.opt.Memory {
		b = append(b, '\t')
		if s.MemInfo != nil {
			b = appendSkmem(b, s.MemInfo)
		}
	}
	return b
}

// appendHex08 is printf("%08x").
func appendHex08(b []byte, v uint32) []byte {
	for sh := 28; sh >= 0; sh -= 4 {
		b = append(b, hexDigits[v>>uint(sh)&0xf])
	}
	return b
}

// Packet sockets, as ss's packet_stats_print and packet_show_sock print
// them: "proto:iface" (ETH_P_ALL as "*", an unbound socket's device as
// "*"), an empty peer "*"; -p users; -e details and the socket's packet_diag
// info, rings and fanout on lines of their own (-O: the same line); -b the
// filter; -m the memory.

const ethPAll = 0x0003 // ETH_P_ALL

// llProtoNames is iproute2's llproto_names (lib/ll_proto.c), in its order:
// the first entry of a number names it.
var llProtoNames = [...]struct {
	id   uint16
	name string
}{
	{0x0060, "loop"}, {0x0200, "pup"}, {0x0201, "pupat"}, {0x0800, "ip"},
	{0x0805, "x25"}, {0x0806, "arp"}, {0x08FF, "bpq"}, {0x0a00, "ieeepup"},
	{0x0a01, "ieeepupat"}, {0x6000, "dec"}, {0x6001, "dna_dl"}, {0x6002, "dna_rc"},
	{0x6003, "dna_rt"}, {0x6004, "lat"}, {0x6005, "diag"}, {0x6006, "cust"},
	{0x6007, "sca"}, {0x8035, "rarp"}, {0x809B, "atalk"}, {0x80F3, "aarp"},
	{0x8137, "ipx"}, {0x86DD, "ipv6"}, {0x8863, "ppp_disc"}, {0x8864, "ppp_ses"},
	{0x884c, "atmmpoa"}, {0x8884, "atmfate"}, {0x0001, "802_3"}, {0x0002, "ax25"},
	{0x0003, "all"}, {0x0004, "802_2"}, {0x0005, "snap"}, {0x0006, "ddcmp"},
	{0x0007, "wan_ppp"}, {0x0008, "ppp_mp"}, {0x0009, "localtalk"}, {0x000C, "can"},
	{0x0010, "ppptalk"}, {0x0011, "tr_802_2"}, {0x0015, "mobitex"}, {0x0016, "control"},
	{0x0017, "irda"}, {0x0018, "econet"}, {0x88CA, "tipc"}, {0x8892, "profinet"},
	{0x88A2, "aoe"}, {0x88A4, "ethercat"}, {0x8100, "802.1Q"}, {0x88A8, "802.1ad"},
	{0x8847, "mpls_uc"}, {0x8848, "mpls_mc"}, {0x6558, "teb"},
	{0x8100, "802.1Q"}, {0x88cc, "LLDP"}, {0x0800, "ipv4"},
}

// EtherProtoName is ss's name for an ethertype (ll_proto_n2a without -n),
// "" if it has none.
func EtherProtoName(proto uint16) string {
	for _, p := range llProtoNames {
		if p.id == proto {
			return p.name
		}
	}
	return ""
}

func (t *tabler) appendPacketCell(b []byte, c int, s *snapshot.Socket) []byte {
	switch c {
	case colAddr:
		switch name := EtherProtoName(s.Protocol); {
		case s.Protocol == ethPAll:
			b = append(b, '*')
		case name != "" && !t.opt.Numeric:
			b = append(b, name...)
		default:
			b = append(b, '[')
			b = strconv.AppendUint(b, uint64(s.Protocol), 10)
			b = append(b, ']')
		}
		return append(b, ':')
	case colServ:
		if s.Iface == 0 {
			return append(b, '*')
		}
		return append(b, t.lk.ifName(s.Iface)...)
	case colRAddr:
		return append(b, '*')
	}
	return b
}

// Bits of packet_diag_info.pdi_flags.
const (
	pdiRunning = 1 << iota
	pdiAuxdata
	pdiOrigdev
	pdiVnethdr
	pdiLoss
)

var fanoutTypes = [...]string{"hash", "lb", "cpu", "roll", "random", "qm"}

func (t *tabler) appendPacketExt(b []byte, s *snapshot.Socket) []byte {
	opt := t.opt
	b = t.appendUsers(b, s)
	if opt.Extended {
		b = t.appendDetails(b, s)
		if s.HasPacketInfo {
			b = t.appendBreak(b)
			b = append(b, "ver:"...)
			b = strconv.AppendInt(b, int64(int32(s.PacketVersion)), 10)
			b = append(b, " cpy_thresh:"...)
			b = strconv.AppendInt(b, int64(int32(s.PacketCopyThresh)), 10)
			b = append(b, " flags( "...)
			f := s.PacketFlags
			if f&pdiRunning != 0 {
				b = append(b, "running"...)
			}
			if f&pdiAuxdata != 0 {
				b = append(b, " auxdata"...)
			}
			if f&pdiOrigdev != 0 {
				b = append(b, " origdev"...)
			}
			if f&pdiVnethdr != 0 {
				b = append(b, " vnethdr"...)
			}
			if f&pdiLoss != 0 {
				b = append(b, " loss"...)
			}
			if f == 0 {
				b = append(b, '0')
			}
			b = append(b, " )"...)
		}
		if s.PacketRxRing != nil {
			b = t.appendBreak(b)
			b = append(b, "ring_rx("...)
			b = appendPacketRing(b, s.PacketRxRing)
			b = append(b, ')')
		}
		if s.PacketTxRing != nil {
			b = t.appendBreak(b)
			b = append(b, "ring_tx("...)
			b = appendPacketRing(b, s.PacketTxRing)
			b = append(b, ')')
		}
		if s.HasPacketFanout {
			b = t.appendBreak(b)
			b = append(b, "fanout(id:"...)
			b = strconv.AppendInt(b, int64(s.PacketFanout&0xffff), 10)
			b = append(b, ",type:"...)
			if typ := s.PacketFanout >> 16; int(typ) < len(fanoutTypes) {
				b = append(b, fanoutTypes[typ]...)
			} else {
				b = append(b, "0x"...)
				b = strconv.AppendUint(b, uint64(typ), 16)
			}
			b = append(b, ')')
		}
	}
	if opt.BPF && s.PacketFilter != nil {
		n := len(s.PacketFilter) / 8
		b = t.appendBreak(b)
		b = append(b, "bpf filter ("...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "): "...)
		ne := binary.NativeEndian
		for i := range n {
			ins := s.PacketFilter[8*i:]
			b = append(b, " 0x"...)
			code := ne.Uint16(ins)
			if code < 0x10 {
				b = append(b, '0')
			}
			b = strconv.AppendUint(b, uint64(code), 16)
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(ins[2]), 10)
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(ins[3]), 10)
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(ne.Uint32(ins[4:])), 10)
			b = append(b, ',')
		}
	}
	if opt.Memory && s.MemInfo != nil {
		b = appendSkmem(b, s.MemInfo)
	}
	return b
}

// appendBreak starts a detail: on a line of its own ("\n\t"), or after a
// space with -O.
func (t *tabler) appendBreak(b []byte) []byte {
	if t.opt.Oneline {
		return append(b, ' ')
	}
	return append(b, '\n', '\t')
}

// appendPacketRing is ss's packet_show_ring of struct packet_diag_ring's
// words (block size, block count, frame size, frame count, retire timeout,
// private size, features).
func appendPacketRing(b []byte, r []uint32) []byte {
	var w [7]uint32
	copy(w[:], r)
	b = append(b, "blk_size:"...)
	b = strconv.AppendInt(b, int64(int32(w[0])), 10)
	b = append(b, ",blk_nr:"...)
	b = strconv.AppendInt(b, int64(int32(w[1])), 10)
	b = append(b, ",frm_size:"...)
	b = strconv.AppendInt(b, int64(int32(w[2])), 10)
	b = append(b, ",frm_nr:"...)
	b = strconv.AppendInt(b, int64(int32(w[3])), 10)
	b = append(b, ",tmo:"...)
	b = strconv.AppendInt(b, int64(int32(w[4])), 10)
	b = append(b, ",features:0x"...)
	return strconv.AppendUint(b, uint64(w[6]), 16)
}
