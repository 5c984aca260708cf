package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/cmd/sstrace/render"
	"sstrace/snapshot"
	"sstrace/snapshot/nstest"
)

// counters is one reading of what ss -s prints from.
type counters struct {
	st    snapshot.Sockstat
	estab int64
}

func readCounters(ns *nstest.NS) (counters, error) {
	var c counters
	err := ns.Do(func() error {
		st, err := snapshot.ReadSockstat()
		if err != nil {
			return err
		}
		s, err := snapshot.ReadSNMP()
		if err != nil {
			return err
		}
		e, ok := s.TCPCurrEstab()
		if !ok {
			return fmt.Errorf("reading Tcp CurrEstab: not in snmp")
		}
		c = counters{st, e}
		return nil
	})
	return c, err
}

// sockets opens sockets on the calling thread (which must be in the test's
// namespace) and remembers them to close them at the end of the test.
type sockets struct {
	fds []int
	err error // first error; later calls do nothing
}

func (s *sockets) socket(domain, typ, proto int) int {
	if s.err != nil {
		return -1
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		s.err = fmt.Errorf("creating socket: %w", err)
		return -1
	}
	s.fds = append(s.fds, fd)
	return fd
}

// close closes a socket now (it then no longer counts in SocketsUsed).
func (s *sockets) close(fd int) {
	if s.err != nil {
		return
	}
	for i, f := range s.fds {
		if f == fd {
			s.fds = append(s.fds[:i], s.fds[i+1:]...)
			break
		}
	}
	if err := unix.Close(fd); err != nil {
		s.err = fmt.Errorf("closing socket: %w", err)
	}
}

func (s *sockets) check(what string, err error) {
	if s.err == nil && err != nil {
		s.err = fmt.Errorf("%s: %w", what, err)
	}
}

func loopback(v6 bool) (int, unix.Sockaddr) {
	if v6 {
		return unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	}
	return unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
}

// listener returns a TCP socket listening on the loopback address and its
// address.
func (s *sockets) listener(v6 bool) (int, unix.Sockaddr) {
	family, addr := loopback(v6)
	fd := s.socket(family, unix.SOCK_STREAM, 0)
	if s.err != nil {
		return -1, nil
	}
	s.check("binding listener", unix.Bind(fd, addr))
	s.check("listening", unix.Listen(fd, 128))
	sa, err := unix.Getsockname(fd)
	s.check("listener address", err)
	return fd, sa
}

// pair connects a client to the listener at addr and accepts it. connect
// returns once the client is ESTABLISHED, accept once the server side is.
func (s *sockets) pair(l int, addr unix.Sockaddr) (client, server int) {
	family := unix.AF_INET
	if _, ok := addr.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	c := s.socket(family, unix.SOCK_STREAM, 0)
	if s.err != nil {
		return -1, -1
	}
	s.check("connecting", unix.Connect(c, addr))
	if s.err != nil {
		return -1, -1
	}
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	s.check("accepting", err)
	if s.err != nil {
		return -1, -1
	}
	s.fds = append(s.fds, a)
	return c, a
}

// readEOF reads from fd, which must be at the end of its stream (its peer
// sent a FIN): read returns 0 only once the kernel processed the FIN.
func (s *sockets) readEOF(fd int) {
	if s.err != nil {
		return
	}
	var b [1]byte
	n, err := unix.Read(fd, b[:])
	s.check("reading to EOF", err)
	if s.err == nil && n != 0 {
		s.err = fmt.Errorf("reading to EOF: got %d bytes", n)
	}
}

// timeWait leaves a TIME-WAIT socket behind a connection closed the usual
// way, the client first. The client only shuts its sending side down
// (FIN), so that it still has a descriptor to learn from when the server's
// FIN has been processed: its read returns 0 only after the kernel handled
// that FIN in FIN-WAIT-2, which puts the TIME-WAIT socket in place of the
// connection (the full socket stays, in CLOSE, until closed here). The
// server, closed after reading the client's FIN, lingers in LAST-ACK
// (orphaned) until the client's last ACK reaches it: that happens
// asynchronously, so the caller waits for the counters to settle.
func (s *sockets) timeWait(l int, addr unix.Sockaddr) {
	c, a := s.pair(l, addr)
	if s.err != nil {
		return
	}
	s.check("shutting down client", unix.Shutdown(c, unix.SHUT_WR))
	s.readEOF(a)
	s.close(a)
	s.readEOF(c)
	s.close(c)
}

// fragment sends the first fragment of a UDP datagram that never gets its
// second: the namespace keeps a reassembly queue for it (until the
// ipfrag_time this test sets, longer than the test).
func (s *sockets) fragment(v6 bool) {
	family, addr := loopback(v6)
	fd := s.socket(family, unix.SOCK_RAW, unix.IPPROTO_RAW) // implies IP_HDRINCL
	if s.err != nil {
		return
	}
	payload := make([]byte, 16) // a UDP header and 8 bytes; not the last fragment, so a multiple of 8
	var pkt []byte
	if !v6 {
		pkt = make([]byte, 20)
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(20+len(payload)))
		binary.BigEndian.PutUint16(pkt[4:], 0x5eed)        // id
		binary.BigEndian.PutUint16(pkt[6:], 0x2000)        // MF, offset 0
		pkt[8], pkt[9] = 64, unix.IPPROTO_UDP              // ttl, protocol
		copy(pkt[12:], []byte{127, 0, 0, 1, 127, 0, 0, 1}) // the kernel fills the checksum in
	} else {
		pkt = make([]byte, 40+8)
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(8+len(payload)))
		pkt[6], pkt[7] = unix.IPPROTO_FRAGMENT, 64
		pkt[23], pkt[39] = 1, 1                      // ::1 → ::1
		pkt[40] = unix.IPPROTO_UDP                   // fragment header: next header
		binary.BigEndian.PutUint16(pkt[42:], 1)      // offset 0, M
		binary.BigEndian.PutUint32(pkt[44:], 0x5eed) // id
	}
	s.check("sending a fragment", unix.Sendto(fd, append(pkt, payload...), 0, addr))
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s: %w", path, err)
	}
	return nil
}

// TestSummaryMatchesSSInNamespace fills a fresh namespace with sockets of
// known kinds, checks the namespace's counters, then checks that
// render.Summary of the counters read by snapshot prints what ss -s
// prints there, byte for byte.
func TestSummaryMatchesSSInNamespace(t *testing.T) {
	ns := nstest.New(t)
	const (
		listen4, listen6 = 3, 2 // listeners
		estab4, estab6   = 4, 2 // established pairs
		closeWait4       = 2    // half-closed pairs: server CLOSE-WAIT, client FIN-WAIT-2
		tw4, tw6         = 5, 3 // TIME-WAIT sockets
	)
	s := &sockets{}
	t.Cleanup(func() {
		for _, fd := range s.fds {
			unix.Close(fd)
		}
	})
	err := ns.Do(func() error {
		// Keep the fragment queues for the test's life.
		if err := writeSysctl("/proc/sys/net/ipv4/ipfrag_time", "3600"); err != nil {
			return err
		}
		if err := writeSysctl("/proc/sys/net/ipv6/ip6frag_time", "3600"); err != nil {
			return err
		}
		for _, v6 := range []bool{false, true} {
			nl, ne, ntw := listen4, estab4, tw4
			if v6 {
				nl, ne, ntw = listen6, estab6, tw6
			}
			l, addr := s.listener(v6)
			for range nl - 1 {
				s.listener(v6)
			}
			for range ne {
				s.pair(l, addr)
			}
			for range ntw {
				s.timeWait(l, addr)
			}
			if !v6 {
				for range closeWait4 {
					c, a := s.pair(l, addr)
					if s.err != nil {
						break
					}
					s.check("shutting down client", unix.Shutdown(c, unix.SHUT_WR))
					s.readEOF(a) // a is in CLOSE-WAIT once this returns
				}
			}
		}
		// UDP: bound sockets are hashed (in use), an unbound one is not.
		for _, v6 := range []bool{false, false, true} {
			family, addr := loopback(v6)
			fd := s.socket(family, unix.SOCK_DGRAM, 0)
			if s.err == nil {
				s.check("binding UDP socket", unix.Bind(fd, addr))
			}
		}
		s.socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		// Raw sockets are hashed when created; fragment adds one of
		// each family too.
		s.socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		s.socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
		s.fragment(false)
		s.fragment(true)
		return s.err
	})
	if err != nil {
		t.Fatal(err)
	}

	// What the namespace's counters must come to. All of these are per
	// namespace. The server sides of the TIME-WAIT connections are freed
	// when the clients' last ACKs reach them, and the netlink sockets
	// nstest used to bring lo up when an RCU grace period ends, both
	// asynchronously: wait (without sleeping, re-reading the counters) for
	// them to settle.
	want := snapshot.Sockstat{
		SocketsUsed: int64(len(s.fds)),
		TCP:         snapshot.TCPStat{InUse: listen4 + 2*estab4 + 2*closeWait4, TW: tw4 + tw6},
		UDP:         snapshot.UDPStat{InUse: 2},
		RAW:         snapshot.ProtoStat{InUse: 2},
		FRAG:        snapshot.FragStat{InUse: 1},
		HasV6:       true,
		TCP6:        snapshot.ProtoStat{InUse: listen6 + 2*estab6},
		UDP6:        snapshot.ProtoStat{InUse: 1},
		RAW6:        snapshot.ProtoStat{InUse: 2},
		FRAG6:       snapshot.FragStat{InUse: 1},
	}
	const wantEstab = 2*(estab4+estab6) + closeWait4 // ESTABLISHED and CLOSE-WAIT
	perNS := func(st snapshot.Sockstat) snapshot.Sockstat {
		st.TCP.Orphan, st.TCP.Alloc, st.TCP.Mem, st.UDP.Mem = 0, 0, 0, 0 // global
		st.FRAG.Memory, st.FRAG6.Memory = 0, 0                           // checked apart
		st.UDPLite, st.UDPLite6 = snapshot.ProtoStat{}, snapshot.ProtoStat{}
		return st
	}
	var c counters
	for deadline := time.Now().Add(30 * time.Second); ; runtime.Gosched() {
		if c, err = readCounters(ns); err != nil {
			t.Fatal(err)
		}
		if perNS(c.st) == want && c.estab == wantEstab {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace counters\n%+v, estab %d\nwant\n%+v, estab %d", perNS(c.st), c.estab, want, wantEstab)
		}
	}
	if c.st.FRAG.Memory <= 0 || c.st.FRAG6.Memory <= 0 || c.st.UDPLite.InUse != 0 || c.st.UDPLite6.InUse != 0 {
		t.Errorf("counters %+v", c.st)
	}
	// alloc counts the machine's full TCP sockets, ours among them.
	if ours := int64(listen4 + listen6 + 2*(estab4+estab6+closeWait4)); c.st.TCP.Alloc < ours {
		t.Errorf("TCP alloc %d, fewer than this namespace's %d sockets", c.st.TCP.Alloc, ours)
	}

	// Now compare with ss -s. Everything ss prints is per namespace, and
	// settled, except what TCP alloc and orphan (global, moved by every
	// TCP socket of the machine) go into: the first number of the "TCP:"
	// line (alloc+tw), "closed" (alloc-(inuse4+inuse6-tw)) and "orphaned".
	// So read the counters before and after ss: when the two reads are
	// equal, ss most likely read the same values in between, and its
	// output must be Summary's byte for byte. When they differ, or when
	// they are equal but ss's global numbers still differ (they moved and
	// came back while ss ran), try again, a bounded number of times. The
	// per-namespace numbers must match on every attempt.
	const attempts = 1000
	var diff string
	for i := range attempts {
		before, err := readCounters(ns)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ns.Output("ss", "-s")
		if err != nil {
			t.Fatal(err)
		}
		after, err := readCounters(ns)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := render.Summary(&b, before.st, before.estab); err != nil {
			t.Fatal(err)
		}
		if before == after && bytes.Equal(out, b.Bytes()) {
			t.Logf("ss -s matched on attempt %d:\n%s", i+1, out)
			return
		}
		got, exp := strings.Split(string(out), "\n"), strings.Split(b.String(), "\n")
		if len(got) != len(exp) {
			t.Fatalf("ss -s:\n%s\nSummary:\n%s", out, b.Bytes())
		}
		for j := range got {
			if j != 1 && got[j] != exp[j] {
				t.Fatalf("line %d differs (per-namespace numbers): ss -s:\n%s\nSummary:\n%s", j+1, out, b.Bytes())
			}
		}
		var total, estab, closed, orphaned, tw int
		if _, err := fmt.Sscanf(got[1], "TCP:   %d (estab %d, closed %d, orphaned %d, timewait %d)", &total, &estab, &closed, &orphaned, &tw); err != nil {
			t.Fatalf("ss's TCP line %q: %v", got[1], err)
		}
		if int64(estab) != before.estab || int64(tw) != before.st.TCP.TW {
			t.Fatalf("ss's estab and timewait (per namespace) differ: ss -s:\n%s\nSummary:\n%s", out, b.Bytes())
		}
		diff = fmt.Sprintf("counters before %+v\nafter %+v\nss -s:\n%s\nSummary:\n%s", before, after, out, b.Bytes())
	}
	t.Fatalf("no match in %d attempts; the last:\n%s", attempts, diff)
}
