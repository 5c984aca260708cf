package snapshot

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

// DumpEntries dumps the inet tables of req (req.Inet, in order, with
// req.States and req.Ext; the other tables of a ListRequest are not
// dumped: it is for the TCP table an overlay keeps) in the calling
// thread's network namespace, as List does, but keeps each socket only as
// an Entry, decoded one at a time: 100k sockets never exist as 100k rows.
func DumpEntries(req ListRequest) ([]*Entry, error) {
	if req.Netlink || req.Packet || req.Unix || req.RawInet || req.Raw != nil {
		return nil, errors.New("DumpEntries: only inet tables, without Raw")
	}
	var out []*Entry
	var refused []uint16
	for _, d := range req.Inet {
		if req.States == 0 || contains(refused, d.Protocol) {
			continue
		}
		var err error
		out, err = dumpEntries(out, DumpRequest{Family: d.Family, Protocol: d.Protocol, States: req.States, Ext: req.Ext})
		if err != nil {
			// As List: the kernel refusing MPTCP ends its dumps, quietly.
			if d.Protocol == unix.IPPROTO_MPTCP && isKernelError(err) {
				refused = append(refused, d.Protocol)
				continue
			}
			return nil, err
		}
	}
	return out, nil
}

// dumpEntries is DumpAppend into entries.
func dumpEntries(dst []*Entry, req DumpRequest) ([]*Entry, error) {
	var h *entryHandler
	err := onDumpThread(req, func(msg []byte, netns uint64) error {
		h = &entryHandler{
			base: len(dst), out: dst, protocol: req.Protocol, netns: netns, now: monotonicNow(),
			boundInactive: req.Protocol == unix.IPPROTO_TCP && (req.States == 0 || req.States&(1<<StateBoundInactive) != 0),
		}
		return runDump(openDiag, msg, h)
	})
	if err != nil {
		return dst, err
	}
	return h.out, nil
}

// entryHandler decodes each socket of an inet dump into one reused row
// and keeps its Entry.
type entryHandler struct {
	base     int
	out      []*Entry
	row      Socket
	protocol uint16
	netns    uint64
	// now: when the dump ran, for minisockets' expiry.
	now uint64
	// boundInactive: report TCP_CLOSE as StateBoundInactive (see Dump).
	boundInactive bool
}

func (h *entryHandler) reset() {
	clear(h.out[h.base:])
	h.out = h.out[:h.base]
}

func (h *entryHandler) message(m []byte) error {
	if binary.NativeEndian.Uint16(m[4:]) != unix.SOCK_DIAG_BY_FAMILY {
		return nil
	}
	h.row = Socket{}
	// No arena: the few attribute payloads a row has are the entry's.
	if err := decodeInet(&h.row, m[nlmsgHdrLen:], h.protocol, nil); err != nil {
		return err
	}
	if h.boundInactive && h.row.State == StateClose {
		h.row.State = StateBoundInactive
	}
	h.row.NetNS = h.netns
	if len(h.out) == cap(h.out) {
		// Doubling, as decodeHandler: pointers are cheap to copy.
		grown := make([]*Entry, len(h.out), 2*cap(h.out)+1024)
		copy(grown, h.out)
		h.out = grown
	}
	h.out = append(h.out, newEntry(&h.row, h.now))
	return nil
}
