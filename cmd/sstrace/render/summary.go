package render

import (
	"fmt"
	"io"

	"sstrace/snapshot"
)

// Summary prints what ss -s prints (ss's print_summary) for the counters of
// /proc/net/sockstat{,6} and the "Tcp: CurrEstab" of /proc/net/snmp
// (tcpEstab; ss prints 0 when it cannot read it):
//
//	Total: <sockets used>
//	TCP:   <alloc+tw> (estab <CurrEstab>, closed <alloc-(inuse4+inuse6-tw)>, orphaned <orphan>, timewait <tw>)
//
//	Transport Total     IP        IPv6
//	RAW	  <raw4+raw6> <raw4> <raw6>
//	UDP	  ...
//	TCP	  <inuse4+inuse6> <inuse4> <inuse6>
//	INET	  <RAW+UDP+TCP of each column>
//	FRAG	  <frag4+frag6> <frag4> <frag6>
//	(blank line)
//
// with each table number left-aligned in 9 columns after a tab and two
// spaces. UDP-Lite sockets and the memory figures are not printed.
//
// ss keeps every counter in a C int: a value outside the int32 range is
// truncated to its low 32 bits, and the sums wrap around, as they do here.
//
// What the TCP line adds up on Linux 6.x: the first number is
// alloc + tw, TCP sockets of the whole machine (alloc is global) plus the
// namespace's TIME-WAIT sockets; "closed" is alloc - inuse4 - inuse6 + tw,
// the machine's TCP sockets that are not hashed in this namespace
// (unconnected ones, closed ones still open in a process, and every
// socket of every other namespace) plus this namespace's TIME-WAIT sockets;
// "orphaned" is global too.
func Summary(w io.Writer, st snapshot.Sockstat, tcpEstab int64) error {
	c := func(v int64) int32 { return int32(v) }
	var (
		socks   = c(st.SocketsUsed)
		total   = c(st.TCP.Alloc)
		orphans = c(st.TCP.Orphan)
		tws     = c(st.TCP.TW)
		tcp4    = c(st.TCP.InUse)
		tcp6    = c(st.TCP6.InUse)
		udp4    = c(st.UDP.InUse)
		udp6    = c(st.UDP6.InUse)
		raw4    = c(st.RAW.InUse)
		raw6    = c(st.RAW6.InUse)
		frag4   = c(st.FRAG.InUse)
		frag6   = c(st.FRAG6.InUse)
		estab   = c(tcpEstab)
	)
	b := make([]byte, 0, 512)
	b = fmt.Appendf(b, "Total: %d\n", socks)
	b = fmt.Appendf(b, "TCP:   %d (estab %d, closed %d, orphaned %d, timewait %d)\n",
		total+tws, estab, total-(tcp4+tcp6-tws), orphans, tws)
	b = append(b, "\nTransport Total     IP        IPv6\n"...)
	row := func(name string, v4, v6 int32) {
		b = fmt.Appendf(b, "%s\t  %-9d %-9d %-9d\n", name, v4+v6, v4, v6)
	}
	row("RAW", raw4, raw6)
	row("UDP", udp4, udp6)
	row("TCP", tcp4, tcp6)
	row("INET", raw4+udp4+tcp4, raw6+udp6+tcp6)
	row("FRAG", frag4, frag6)
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing summary: %w", err)
	}
	return nil
}
