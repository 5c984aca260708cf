package snapshot

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// InetDump is one inet table to dump.
type InetDump struct {
	Family uint8 // unix.AF_INET or AF_INET6
	// Protocol is unix.IPPROTO_TCP, IPPROTO_UDP or IPPROTO_MPTCP. As ss's
	// mptcp_show, an MPTCP dump the kernel refuses (no MPTCP diag) lists
	// nothing and is no error, and ends the MPTCP dumps of the listing.
	Protocol uint16
}

// ListRequest is a one-shot listing: which tables, in which order, in which
// states. It is what ss asks the kernel for a given command line. The
// tables come in ss's order: netlink, packet, unix, raw, then Inet (udp,
// tcp, ..., mptcp last).
type ListRequest struct {
	// Netlink lists every netlink socket first (ss's netlink_show). ss
	// does so when the netlink table and family are selected and States
	// has StateClose; the rows are all StateClose. A socket subscribed to
	// multicast groups comes twice, as the kernel dumps it (once from the
	// bound sockets, once from the group listeners) and ss prints it.
	Netlink bool
	// Packet lists every packet socket, raw and datagram alike (ss's
	// packet_show filters neither type), when the packet family is
	// selected and States has StateClose; the rows are all StateClose.
	Packet bool
	// Unix lists unix sockets (after netlink and packet ones, before inet
	// ones), keeping only the socket types set in UnixTypes (bit
	// 1<<SOCK_*).
	Unix      bool
	UnixTypes uint32
	// RawInet lists raw inet sockets (ss's raw_show), after unix ones: a
	// sock_diag dump (IPPROTO_RAW) of each family of RawFamilies in order
	// (ss's inet_show_netlink). When the kernel refuses it (ENOENT without
	// CONFIG_INET_RAW_DIAG), the rows come instead from /proc/net/raw and
	// /proc/net/raw6 of the calling thread's namespace, for the families
	// of RawProcFamilies (ss reads the files of every selected family
	// there, not only the preferred one), keeping the States asked.
	RawInet         bool
	RawFamilies     []uint8
	RawProcFamilies []uint8
	// Inet tables, dumped in this order after the raw ones.
	Inet []InetDump
	// States is the kernel state mask asked of every table.
	States uint32
	// Details asks for what -e prints beyond the basics (unix VFS and
	// peers).
	Details bool
	// Ext asks inet tables for INET_DIAG_* extensions (-i, -m).
	Ext uint8
	// UnixMemInfo asks unix sockets for their skmem (-m).
	UnixMemInfo bool
	// Raw receives each TCP dump message (ss -D).
	Raw func(msg []byte)
	// Bytecode, if set, is the filter program sent with every inet and
	// raw dump, as ss sends it (filter.Bytecode): the kernel then returns
	// only the sockets it accepts. Should the kernel refuse the program
	// (a kernel without an op, EPERM for a mark test without
	// CAP_NET_ADMIN), List dumps without it, once for the whole listing:
	// the caller filters every socket anyway.
	Bytecode []byte
}

// List dumps the requested tables from sock_diag in the calling thread's
// network namespace (and reads /proc/net/raw{,6} where ss does). Where ss
// would fall back to /proc/net/netlink or /proc/net/packet (kernels without
// netlink_diag or packet_diag), List fails.
func List(req ListRequest) ([]Socket, error) {
	var socks []Socket
	var err error
	if req.Netlink {
		socks, err = DumpAppend(socks, DumpRequest{Family: unix.AF_NETLINK})
		if err != nil {
			return nil, err
		}
	}
	if req.Packet {
		n := len(socks)
		socks, err = DumpAppend(socks, DumpRequest{Family: unix.AF_PACKET})
		if err != nil {
			return nil, err
		}
		for _, s := range socks[n:] {
			// ss's packet_show_sock gives up on the dump then, and
			// reads /proc/net/packet instead; no kernel with
			// packet_diag leaves it out when asked.
			if s.MemInfo == nil {
				return nil, fmt.Errorf("sock_diag dump of packet: socket %d came without PACKET_DIAG_MEMINFO", s.Inode)
			}
		}
	}
	if req.Unix {
		show := uint32(0)
		if req.Details {
			show = UDiagShowVFS | UDiagShowIcons
		}
		if req.UnixMemInfo {
			show |= UDiagShowMemInfo
		}
		n := len(socks)
		socks, err = DumpAppend(socks, DumpRequest{Family: unix.AF_UNIX, States: req.States, UnixShow: show})
		if err != nil {
			return nil, err
		}
		// Keep only the selected unix types, in place.
		kept := socks[:n]
		for _, s := range socks[n:] {
			if s.Type < 32 && req.UnixTypes&(1<<s.Type) != 0 {
				kept = append(kept, s)
			}
		}
		socks = kept
	}
	// States 0 would mean "all, bound-inactive included" to Dump; a
	// listing never asks for nothing (the caller stops before).
	if req.RawInet && req.States != 0 {
		socks, err = listRaw(socks, &req)
		if err != nil {
			return nil, err
		}
	}
	var refused []uint16 // protocols whose dump the kernel refused
	for _, d := range req.Inet {
		dr := DumpRequest{Family: d.Family, Protocol: d.Protocol, States: req.States, Ext: req.Ext}
		if d.Protocol == unix.IPPROTO_TCP {
			dr.Raw = req.Raw
		}
		if dr.States == 0 || contains(refused, d.Protocol) {
			continue
		}
		socks, err = req.dumpFiltered(socks, dr)
		if err != nil {
			// mptcp_show: inet_show_netlink fails, silently (the
			// handle suppresses netlink errors for protocols above
			// 255), and ss shows nothing more of the table.
			if d.Protocol == unix.IPPROTO_MPTCP && isKernelError(err) {
				refused = append(refused, d.Protocol)
				continue
			}
			return nil, err
		}
	}
	return socks, nil
}

// dumpFiltered is DumpAppend with req's bytecode, dropped for good (req
// is the listing's own copy) when the kernel refuses it.
func (req *ListRequest) dumpFiltered(dst []Socket, dr DumpRequest) ([]Socket, error) {
	if len(req.Bytecode) == 0 {
		return DumpAppend(dst, dr)
	}
	dr.Bytecode = req.Bytecode
	out, err := DumpAppend(dst, dr)
	if err != nil && isKernelError(err) && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM)) {
		req.Bytecode = nil
		dr.Bytecode = nil
		return DumpAppend(dst, dr)
	}
	return out, err
}

func contains(l []uint16, v uint16) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// listRaw appends the raw sockets of req: sock_diag, or /proc/net/raw{,6}
// where the kernel has no raw_diag.
func listRaw(socks []Socket, req *ListRequest) ([]Socket, error) {
	n := len(socks)
	var err error
	for _, fam := range req.RawFamilies {
		socks, err = req.dumpFiltered(socks, DumpRequest{Family: fam, Protocol: unix.IPPROTO_RAW, States: req.States, Ext: req.Ext})
		if err != nil {
			break
		}
	}
	if err == nil {
		return socks, nil
	}
	if !isKernelError(err) {
		return nil, err
	}
	// ss falls back to /proc when inet_show_netlink fails, for whichever
	// family failed. (If IPv4 succeeded and IPv6 failed, ss would show
	// the IPv4 sockets twice; a kernel has raw_diag for both or neither,
	// so drop the dumped ones and read the files.)
	clear(socks[n:])
	socks = socks[:n]
	for _, fam := range req.RawProcFamilies {
		var perr error
		socks, perr = readProcNetRaw(socks, fam, req.States)
		if perr != nil {
			return nil, errors.Join(fmt.Errorf("listing raw sockets: %w", err), perr)
		}
	}
	return socks, nil
}
