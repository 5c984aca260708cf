package snapshot

import "golang.org/x/sys/unix"

// InetDump is one inet table to dump.
type InetDump struct {
	Family   uint8 // unix.AF_INET or AF_INET6
	Protocol uint8 // unix.IPPROTO_TCP or IPPROTO_UDP
}

// ListRequest is a one-shot listing: which tables, in which order, in which
// states. It is what ss asks the kernel for a given command line.
type ListRequest struct {
	// Unix lists unix sockets first (ss prints them before inet ones),
	// keeping only the socket types set in UnixTypes (bit 1<<SOCK_*).
	Unix      bool
	UnixTypes uint32
	// Inet tables, dumped in this order.
	Inet []InetDump
	// States is the kernel state mask asked of every table.
	States uint32
	// Details asks for what -e prints beyond the basics (unix VFS and
	// peers).
	Details bool
	// Ext asks inet tables for INET_DIAG_* extensions (-i, -m).
	Ext uint8
	// Raw receives each TCP dump message (ss -D).
	Raw func(msg []byte)
}

// List dumps the requested tables from sock_diag in the calling thread's
// network namespace.
func List(req ListRequest) ([]Socket, error) {
	var socks []Socket
	var err error
	if req.Unix {
		show := uint32(0)
		if req.Details {
			show = UDiagShowVFS | UDiagShowIcons
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
	for _, d := range req.Inet {
		dr := DumpRequest{Family: d.Family, Protocol: d.Protocol, States: req.States, Ext: req.Ext}
		if d.Protocol == unix.IPPROTO_TCP {
			dr.Raw = req.Raw
		}
		// States 0 would mean "all, bound-inactive included" to Dump; a
		// listing never asks for nothing (the caller stops before).
		if dr.States == 0 {
			continue
		}
		socks, err = DumpAppend(socks, dr)
		if err != nil {
			return nil, err
		}
	}
	return socks, nil
}

