package snapshot

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// netlink_diag (include/uapi/linux/netlink_diag.h).
const (
	// NDiagProtoAll in sdiag_protocol asks for the sockets of every
	// netlink protocol.
	NDiagProtoAll = 0xff

	// Bits of netlink_diag_req.ndiag_show.
	NDiagShowMemInfo = 0x01
	NDiagShowGroups  = 0x02
	NDiagShowFlags   = 0x08

	// NetlinkDiagShow is what ss asks of netlink_diag.
	NetlinkDiagShow = NDiagShowGroups | NDiagShowMemInfo

	// Attribute types of netlink_diag replies.
	NetlinkDiagMemInfo = 0
	NetlinkDiagGroups  = 1
	NetlinkDiagRxRing  = 2
	NetlinkDiagTxRing  = 3
	NetlinkDiagFlags   = 4
)

// packet_diag (include/uapi/linux/packet_diag.h).
const (
	// Bits of packet_diag_req.pdiag_show.
	PacketShowInfo    = 0x01
	PacketShowMCList  = 0x02
	PacketShowRingCfg = 0x04
	PacketShowFanout  = 0x08
	PacketShowMemInfo = 0x10
	PacketShowFilter  = 0x20

	// PacketDiagShow is what ss asks of packet_diag.
	PacketDiagShow = PacketShowInfo | PacketShowMemInfo | PacketShowFilter | PacketShowRingCfg | PacketShowFanout

	// Attribute types of packet_diag replies.
	PacketDiagInfo    = 0
	PacketDiagMCList  = 1
	PacketDiagRxRing  = 2
	PacketDiagTxRing  = 3
	PacketDiagFanout  = 4
	PacketDiagUID     = 5
	PacketDiagMemInfo = 6
	PacketDiagFilter  = 7

	packetDiagInfoLen = 24 // struct packet_diag_info
	packetDiagRingLen = 28 // struct packet_diag_ring
)

// DecodeNetlink decodes one netlink_diag_msg and its attributes (a netlink
// message payload, after the nlmsghdr).
func DecodeNetlink(b []byte) (Socket, error) {
	var s Socket
	if err := decodeNetlink(&s, b, nil); err != nil {
		return Socket{}, err
	}
	return s, nil
}

// DecodePacket decodes one packet_diag_msg and its attributes (a netlink
// message payload, after the nlmsghdr).
func DecodePacket(b []byte) (Socket, error) {
	var s Socket
	if err := decodePacket(&s, b, nil); err != nil {
		return Socket{}, err
	}
	return s, nil
}

// decodeNetlink fills the zeroed s from b, as ss's netlink_show_sock reads
// it.
func decodeNetlink(s *Socket, b []byte, a *arena) error {
	if len(b) < netlinkDiagMsgLen {
		return fmt.Errorf("decoding netlink_diag_msg: %d bytes, want at least %d", len(b), netlinkDiagMsgLen)
	}
	ne := binary.NativeEndian
	s.Family = b[0]
	s.Type = b[1]
	s.Protocol = uint16(b[2])
	s.NetlinkState = b[3]
	// ss shows every netlink socket as UNCONN, connected or not.
	s.State = StateClose
	s.NetlinkPortID = int32(ne.Uint32(b[4:]))
	s.NetlinkDstPortID = ne.Uint32(b[8:])
	s.NetlinkDstGroup = ne.Uint32(b[12:])
	s.Inode = ne.Uint32(b[16:])
	s.Cookie = uint64(ne.Uint32(b[20:])) | uint64(ne.Uint32(b[24:]))<<32

	at := newAttrs(b, netlinkDiagMsgLen, "netlink_diag_msg")
	for {
		typ, p, ok, err := at.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch typ {
		case NetlinkDiagGroups:
			// ss reads the first unsigned long of a non-empty bitmap
			// (the kernel sends whole longs).
			var w [8]byte
			copy(w[:], p)
			s.NetlinkGroups = ne.Uint64(w[:])
		case NetlinkDiagMemInfo:
			if len(p) < 4*(unix.SK_MEMINFO_WMEM_ALLOC+1) {
				return attrShort("netlink_diag_msg", typ, len(p), 4*(unix.SK_MEMINFO_WMEM_ALLOC+1))
			}
			s.MemInfo = a.uint32s(p)
			s.RecvQ = s.MemInfo[unix.SK_MEMINFO_RMEM_ALLOC]
			s.SendQ = s.MemInfo[unix.SK_MEMINFO_WMEM_ALLOC]
		}
	}
	return nil
}

// decodePacket fills the zeroed s from b, as ss's packet_show_sock reads it.
func decodePacket(s *Socket, b []byte, a *arena) error {
	if len(b) < packetDiagMsgLen {
		return fmt.Errorf("decoding packet_diag_msg: %d bytes, want at least %d", len(b), packetDiagMsgLen)
	}
	ne := binary.NativeEndian
	s.Family = b[0]
	s.Type = b[1]
	s.Protocol = ne.Uint16(b[2:]) // pdiag_num: the kernel converts it to host order
	s.State = StateClose          // ss shows every packet socket as UNCONN
	s.Inode = ne.Uint32(b[4:])
	s.Cookie = uint64(ne.Uint32(b[8:])) | uint64(ne.Uint32(b[12:]))<<32

	at := newAttrs(b, packetDiagMsgLen, "packet_diag_msg")
	for {
		typ, p, ok, err := at.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch typ {
		case PacketDiagInfo:
			if len(p) < packetDiagInfoLen {
				return attrShort("packet_diag_msg", typ, len(p), packetDiagInfoLen)
			}
			s.HasPacketInfo = true
			s.Iface = ne.Uint32(p)
			s.PacketVersion = ne.Uint32(p[4:])
			// p[8:12] is pdi_reserve.
			s.PacketCopyThresh = ne.Uint32(p[12:])
			s.PacketTstamp = ne.Uint32(p[16:])
			s.PacketFlags = ne.Uint32(p[20:])
		case PacketDiagRxRing, PacketDiagTxRing:
			if len(p) < packetDiagRingLen {
				return attrShort("packet_diag_msg", typ, len(p), packetDiagRingLen)
			}
			r := a.uint32s(p[:packetDiagRingLen])
			if typ == PacketDiagRxRing {
				s.PacketRxRing = r
			} else {
				s.PacketTxRing = r
			}
		case PacketDiagFanout:
			if len(p) < 4 {
				return attrShort("packet_diag_msg", typ, len(p), 4)
			}
			s.HasPacketFanout = true
			s.PacketFanout = ne.Uint32(p)
		case PacketDiagUID:
			if len(p) < 4 {
				return attrShort("packet_diag_msg", typ, len(p), 4)
			}
			s.UID = ne.Uint32(p)
		case PacketDiagMemInfo:
			if len(p) < 4*(unix.SK_MEMINFO_RMEM_ALLOC+1) {
				return attrShort("packet_diag_msg", typ, len(p), 4*(unix.SK_MEMINFO_RMEM_ALLOC+1))
			}
			s.MemInfo = a.uint32s(p)
			s.RecvQ = s.MemInfo[unix.SK_MEMINFO_RMEM_ALLOC]
		case PacketDiagFilter:
			s.PacketFilter = a.bytes(p)
		}
	}
	return nil
}
