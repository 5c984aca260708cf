package render

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/nstest"
)

// Extension bits ss asks inet tables for (sockdiag_send).
const (
	extInfo = 1<<(snapshot.InetDiagInfo-1) | 1<<(snapshot.InetDiagVegasInfo-1) | 1<<(snapshot.InetDiagCong-1) // -i
	extMem  = 1<<(snapshot.InetDiagMemInfo-1) | 1<<(snapshot.InetDiagSkMemInfo-1)                             // -m
)

// listSpec is what ss dumps for a command line, in its order: netlink,
// packet, unix, raw, then the inet protocols (each for IPv4, then IPv6).
type listSpec struct {
	netlink, packet, unix, raw bool
	inet                       []uint16
	states                     uint32
	ext                        uint8
	unixShow                   uint32 // UDIAG_SHOW_* beyond name, peer and queues
}

// list dumps s inside the namespace (ns.Do) and returns the rows and the
// INET_DIAG_ULP_INFO payloads of the TCP rows, by cookie.
func (sp listSpec) list() ([]snapshot.Socket, map[uint64][]byte, error) {
	var out []snapshot.Socket
	if sp.netlink || sp.packet {
		socks, err := snapshot.List(snapshot.ListRequest{Netlink: sp.netlink, Packet: sp.packet})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, socks...)
	}
	if sp.unix {
		var err error
		out, err = snapshot.DumpAppend(out, snapshot.DumpRequest{Family: unix.AF_UNIX, States: sp.states, UnixShow: sp.unixShow})
		if err != nil {
			return nil, nil, err
		}
	}
	ulp := make(map[uint64][]byte)
	req := snapshot.ListRequest{States: sp.states, Ext: sp.ext, Raw: func(msg []byte) { collectULP(ulp, msg) }}
	if sp.raw {
		req.RawInet = true
		req.RawFamilies = []uint8{unix.AF_INET, unix.AF_INET6}
		req.RawProcFamilies = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	for _, p := range sp.inet {
		req.Inet = append(req.Inet, snapshot.InetDump{Family: unix.AF_INET, Protocol: p}, snapshot.InetDump{Family: unix.AF_INET6, Protocol: p})
	}
	socks, err := snapshot.List(req)
	if err != nil {
		return nil, nil, err
	}
	return append(out, socks...), ulp, nil
}

// collectULP keeps the INET_DIAG_ULP_INFO of one TCP dump message, which
// snapshot.Socket does not carry.
func collectULP(m map[uint64][]byte, msg []byte) {
	ne := binary.NativeEndian
	if len(msg) < 16+72 || ne.Uint16(msg[4:]) != unix.SOCK_DIAG_BY_FAMILY {
		return
	}
	p := msg[16:]
	cookie := uint64(ne.Uint32(p[44:])) | uint64(ne.Uint32(p[48:]))<<32
	var tb [snapshot.InetDiagULPInfo + 1][]byte
	parseAttrs(tb[:], p[72:])
	if a := tb[snapshot.InetDiagULPInfo]; a != nil {
		m[cookie] = append([]byte(nil), a...)
	}
}

// useULP makes the renderer see the collected ULP payloads.
func useULP(t *testing.T, m map[uint64][]byte) {
	old := tcpULPInfo
	tcpULPInfo = func(s *snapshot.Socket) []byte {
		if s.Protocol != ipprotoTCP {
			return nil
		}
		return m[s.Cookie]
	}
	t.Cleanup(func() { tcpULPInfo = old })
}

// runSS runs ss inside ns and returns its output and its pid.
func runSS(ns *nstest.NS, args ...string) (out []byte, pid int, err error) {
	err = ns.Do(func() error {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("ss", args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("running ss %v: %w", args, err)
		}
		pid = cmd.Process.Pid
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("running ss %v: %w: %s", args, err, stderr.Bytes())
		}
		out = stdout.Bytes()
		return nil
	})
	return out, pid, err
}

// dropOwnDiag removes the netlink rows of the tool's own NETLINK_SOCK_DIAG
// socket (which is ss's in ss's listing): they differ by nature.
func dropOwnDiag(socks []snapshot.Socket) []snapshot.Socket {
	kept := socks[:0]
	for _, s := range socks {
		if s.Family == unix.AF_NETLINK && s.Protocol == unix.NETLINK_SOCK_DIAG && s.NetlinkPortID != 0 {
			continue
		}
		kept = append(kept, s)
	}
	return kept
}

// dropSSDiagLine removes ss's line of its own sock_diag socket.
func dropSSDiagLine(out []byte, pid int) []byte {
	re := regexp.MustCompile(`(tcpdiag:ss/|\s4:)` + strconv.Itoa(pid) + `\s`)
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		if !re.Match(line) {
			b.Write(line)
		}
	}
	return b.Bytes()
}

// tickRE matches the values of -i and -o that change from one reading to
// the next (times since, rates, timers), which normalize blanks.
var tickRE = regexp.MustCompile(`\b(rtt:|lastsnd:|lastrcv:|lastack:|busy:|rwnd_limited:|sndbuf_limited:|send |pacing_rate |delivery_rate |bw:|mrtt:)[0-9.]+[kMGT]?(bps)?(/[0-9.]+(/?[kMGT]?bps)?)?(ms)?(\([0-9.]+%\))?|timer:\((\w+),[^,]*,`)

// normalize blanks the ticking values and drops the trailing blanks of
// every line (the widths of the free-form column follow the values).
func normalize(out []byte) []byte {
	out = tickRE.ReplaceAllFunc(out, func(m []byte) []byte {
		if bytes.HasPrefix(m, []byte("timer:(")) {
			i := bytes.IndexByte(m, ',')
			return append(append([]byte(nil), m[:i]...), ",#,"...)
		}
		for i, c := range m {
			if c == ':' || c == ' ' {
				return append(append([]byte(nil), m[:i+1]...), '#')
			}
		}
		return m
	})
	var b bytes.Buffer
	for _, line := range bytes.Split(out, []byte("\n")) {
		b.Write(bytes.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// attachDrop attaches a classic BPF program that drops every packet, so
// that the socket's queue stays as it is whatever goes through lo.
func attachDrop(fd int) error {
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attaching socket filter: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// fdCloser closes a raw descriptor.
type fdCloser int

func (f fdCloser) Close() error { return unix.Close(int(f)) }

// openFamilySockets opens, inside the namespace, netlink, packet, raw and
// MPTCP sockets and TCP pairs with data waiting.
func openFamilySockets(cl *closers) error {
	sock := func(family, typ, proto int) (int, error) {
		fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return -1, fmt.Errorf("socket(%d, %d, %d): %w", family, typ, proto, err)
		}
		cl.keep(fdCloser(fd))
		return fd, nil
	}
	// Netlink: rtnl bound to RTMGRP_LINK (port id: our pid), genl, rtnl
	// connected to the kernel (an autobound negative port id), and two
	// usersock sockets, one connected to the other's port and group with
	// a message waiting; large buffers, so that its -m line is the
	// widest of the netlink rows.
	fd, err := sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		return fmt.Errorf("binding rtnl socket: %w", err)
	}
	if fd, err = sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_GENERIC); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("binding genl socket: %w", err)
	}
	if fd, err = sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE); err != nil {
		return err
	}
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("connecting rtnl socket: %w", err)
	}
	a, err := sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_USERSOCK)
	if err != nil {
		return err
	}
	for _, o := range []int{unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
		if err := unix.SetsockoptInt(a, unix.SOL_SOCKET, o, 8<<20); err != nil {
			return fmt.Errorf("setting netlink buffers: %w", err)
		}
	}
	if err := unix.Bind(a, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: 4242}); err != nil {
		return fmt.Errorf("binding usersock socket: %w", err)
	}
	b, err := sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_USERSOCK)
	if err != nil {
		return err
	}
	if err := unix.Connect(b, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: 4242, Groups: 1 << 2}); err != nil {
		return fmt.Errorf("connecting usersock socket: %w", err)
	}
	msg := make([]byte, 16+2000)
	binary.NativeEndian.PutUint32(msg, uint32(len(msg)))
	if err := unix.Sendto(b, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: 4242}); err != nil {
		return fmt.Errorf("sending netlink message: %w", err)
	}

	// Packet: all protocols, unbound; IPv4 on lo; IPv6 on lo with an RX
	// ring and a fanout group. Each drops every packet (no queue grows).
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	packet := func(typ int, proto uint16, ifindex int) (int, error) {
		fd, err := sock(unix.AF_PACKET, typ, 0)
		if err != nil {
			return -1, err
		}
		if err := attachDrop(fd); err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex}); err != nil {
			return -1, fmt.Errorf("binding packet socket: %w", err)
		}
		return fd, nil
	}
	if _, err := packet(unix.SOCK_RAW, unix.ETH_P_ALL, 0); err != nil {
		return err
	}
	if _, err := packet(unix.SOCK_DGRAM, unix.ETH_P_IP, lo.Index); err != nil {
		return err
	}
	if fd, err = packet(unix.SOCK_RAW, unix.ETH_P_IPV6, lo.Index); err != nil {
		return err
	}
	ring := unix.TpacketReq{Block_size: 4096, Block_nr: 1, Frame_size: 2048, Frame_nr: 2}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &ring); err != nil {
		return fmt.Errorf("setting packet ring: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, 7|unix.PACKET_FANOUT_CPU<<16); err != nil {
		return fmt.Errorf("joining packet fanout: %w", err)
	}

	// Raw ICMP and ICMPv6, dropping what they would receive.
	for _, r := range [][2]int{{unix.AF_INET, unix.IPPROTO_ICMP}, {unix.AF_INET6, unix.IPPROTO_ICMPV6}} {
		fd, err := sock(r[0], unix.SOCK_RAW, r[1])
		if err != nil {
			return err
		}
		if err := attachDrop(fd); err != nil {
			return err
		}
	}

	// MPTCP: a listener and a connection that has sent data.
	ctx := context.Background()
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ml, err := lc.Listen(ctx, "tcp4", "127.0.0.1:8443")
	if err != nil {
		return fmt.Errorf("listening on mptcp: %w", err)
	}
	cl.keep(ml)
	var d net.Dialer
	d.SetMultipathTCP(true)
	d.KeepAlive = -1
	mc, err := d.Dial("tcp4", "127.0.0.1:8443")
	if err != nil {
		return fmt.Errorf("dialing mptcp: %w", err)
	}
	cl.keep(mc)
	ms, err := ml.Accept()
	if err != nil {
		return fmt.Errorf("accepting mptcp: %w", err)
	}
	cl.keep(ms)
	// Go tells a fallback by MPTCP_INFO, 5.16+: before, it answers false
	// for MPTCP too (and Debian's 5.10 has no mptcp_diag: ss and the
	// listing then show no MPTCP rows alike).
	_, kernel := nstest.KernelVersion()
	if mp, err := mc.(*net.TCPConn).MultipathTCP(); (err != nil || !mp) && kernel >= 516 {
		return fmt.Errorf("checking the mptcp connection: it fell back to tcp (%v)", err)
	}
	if _, err := mc.Write(bytes.Repeat([]byte("m"), 3000)); err != nil {
		return fmt.Errorf("writing on mptcp: %w", err)
	}

	// TCP: a pair whose server leaves 50000 bytes unread (cubic), and
	// one the other way (the default algorithm).
	for i, cc := range []string{"cubic", ""} {
		tl, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", 7000+i))
		if err != nil {
			return err
		}
		cl.keep(tl)
		c, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp4", tl.Addr().String())
		if err != nil {
			return err
		}
		cl.keep(c)
		s, err := tl.Accept()
		if err != nil {
			return err
		}
		cl.keep(s)
		from := c
		if i == 1 {
			from = s
		}
		if cc != "" {
			rc, err := from.(*net.TCPConn).SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("setting congestion control %s: %w", cc, serr)
			}
		}
		if _, err := from.Write(bytes.Repeat([]byte("x"), 50000)); err != nil {
			return fmt.Errorf("writing to %s: %w", from.RemoteAddr(), err)
		}
	}
	return nil
}

// settleInfo waits, without sleeping, until no TCP or MPTCP socket has data
// in flight or a retransmission pending: then nothing moves on lo and two
// readings agree but for the ages and rates normalize blanks.
func settleInfo(t *testing.T, ns *nstest.NS) {
	t.Helper()
	sp := listSpec{inet: []uint16{unix.IPPROTO_TCP, unix.IPPROTO_MPTCP}, states: ssAll, ext: extInfo}
	for try := 0; ; try++ {
		var busy string
		if err := ns.Do(func() error {
			socks, _, err := sp.list()
			for _, s := range socks {
				var ti tcpInfo
				copy(ti[:], s.TCPInfo)
				switch {
				case s.Timer == 1:
					busy = "retransmission timer"
				case s.Protocol == unix.IPPROTO_TCP && ti.u32(tiUnacked) != 0:
					busy = "unacked data"
				case s.Protocol == unix.IPPROTO_MPTCP && len(s.TCPInfo) >= miRcvNxt &&
					binary.NativeEndian.Uint64(s.TCPInfo[miWriteSeq:]) != binary.NativeEndian.Uint64(s.TCPInfo[miSndUna:]):
					busy = "unacked mptcp data"
				default:
					continue
				}
				busy += " on " + s.Local.String()
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if busy == "" {
			return
		}
		if try > 200000 {
			t.Fatalf("the namespace does not settle: %s", busy)
		}
		runtime.Gosched()
	}
}

type famCase struct {
	args []string
	spec listSpec
	opt  Options
}

func famCases(svc *Services, protos *Protocols) []famCase {
	all := listSpec{netlink: true, packet: true, unix: true, raw: true,
		inet: []uint16{unix.IPPROTO_UDP, unix.IPPROTO_TCP, unix.IPPROTO_MPTCP}, states: ssAll}
	tcp := listSpec{inet: []uint16{unix.IPPROTO_TCP}, states: ssAll}
	with := func(sp listSpec, f func(*listSpec)) listSpec { f(&sp); return sp }
	std := Options{ShowState: true, Header: true, Services: svc, Protocols: protos}
	opt := func(f func(*Options)) Options { o := std; f(&o); return o }
	num := func(f func(*Options)) Options { o := std; o.Numeric = true; f(&o); return o }
	return []famCase{
		{[]string{"-a"}, all, opt(func(o *Options) { o.ShowNetid, o.MPTCPServices = true, "tcp" })},
		{[]string{"-la"}, all, opt(func(o *Options) { o.ShowNetid, o.MPTCPServices = true, "tcp" })},
		{[]string{"-an"}, all, num(func(o *Options) { o.ShowNetid = true })},
		{[]string{"-A", "netlink", "-a"}, listSpec{netlink: true, states: ssAll}, std},
		{[]string{"-A", "netlink", "-an"}, listSpec{netlink: true, states: ssAll}, num(func(o *Options) {})},
		{[]string{"-A", "netlink", "-aem"}, listSpec{netlink: true, states: ssAll}, opt(func(o *Options) { o.Options, o.Extended, o.Memory = true, true, true })},
		{[]string{"-0", "-a"}, listSpec{packet: true, states: ssAll}, opt(func(o *Options) { o.ShowNetid = true })},
		{[]string{"-0", "-an"}, listSpec{packet: true, states: ssAll}, num(func(o *Options) { o.ShowNetid = true })},
		{[]string{"-0", "-aemb"}, listSpec{packet: true, states: ssAll}, opt(func(o *Options) { o.ShowNetid, o.Options, o.Extended, o.Memory, o.BPF = true, true, true, true, true })},
		{[]string{"-0", "-aebO"}, listSpec{packet: true, states: ssAll}, opt(func(o *Options) { o.ShowNetid, o.Options, o.Extended, o.BPF, o.Oneline = true, true, true, true, true })},
		{[]string{"-w", "-a"}, listSpec{raw: true, states: ssAll}, std},
		{[]string{"-w", "-aenpim"}, listSpec{raw: true, states: ssAll, ext: extInfo | extMem}, num(func(o *Options) { o.Options, o.Extended, o.Processes, o.Info, o.Memory = true, true, true, true, true })},
		{[]string{"-M", "-a"}, listSpec{inet: []uint16{unix.IPPROTO_MPTCP}, states: ssAll}, std},
		{[]string{"-M", "-ai"}, listSpec{inet: []uint16{unix.IPPROTO_MPTCP}, states: ssAll, ext: extInfo}, opt(func(o *Options) { o.Info = true })},
		{[]string{"-M", "-aniem"}, listSpec{inet: []uint16{unix.IPPROTO_MPTCP}, states: ssAll, ext: extInfo | extMem}, num(func(o *Options) { o.Info, o.Options, o.Extended, o.Memory = true, true, true, true })},
		{[]string{"-tM", "-a"}, listSpec{inet: []uint16{unix.IPPROTO_TCP, unix.IPPROTO_MPTCP}, states: ssAll}, opt(func(o *Options) { o.ShowNetid, o.MPTCPServices = true, "tcp" })},
		{[]string{"-tani"}, with(tcp, func(sp *listSpec) { sp.ext = extInfo }), num(func(o *Options) { o.Info = true })},
		{[]string{"-tai"}, with(tcp, func(sp *listSpec) { sp.ext = extInfo }), opt(func(o *Options) { o.Info = true })},
		{[]string{"-tanm"}, with(tcp, func(sp *listSpec) { sp.ext = extMem }), num(func(o *Options) { o.Memory = true })},
		{[]string{"-tanim"}, with(tcp, func(sp *listSpec) { sp.ext = extInfo | extMem }), num(func(o *Options) { o.Info, o.Memory = true, true })},
		{[]string{"-tanimO"}, with(tcp, func(sp *listSpec) { sp.ext = extInfo | extMem }), num(func(o *Options) { o.Info, o.Memory, o.Oneline = true, true, true })},
		{[]string{"-tanieO"}, with(tcp, func(sp *listSpec) { sp.ext = extInfo }), num(func(o *Options) { o.Info, o.Options, o.Extended, o.Oneline = true, true, true, true })},
		{[]string{"-tanoi"}, with(tcp, func(sp *listSpec) { sp.ext = extInfo }), num(func(o *Options) { o.Info, o.Options = true, true })},
		{[]string{"-xam"}, listSpec{unix: true, states: ssAll, unixShow: snapshot.UDiagShowMemInfo}, opt(func(o *Options) { o.ShowNetid, o.Memory = true, true })},
		{[]string{"-xaem"}, listSpec{unix: true, states: ssAll, unixShow: snapshot.UDiagShowMemInfo | snapshot.UDiagShowVFS | snapshot.UDiagShowIcons},
			opt(func(o *Options) { o.ShowNetid, o.Memory, o.Options, o.Extended = true, true, true, true })},
		{[]string{"-uaim"}, listSpec{inet: []uint16{unix.IPPROTO_UDP}, states: ssAll, ext: extInfo | extMem}, opt(func(o *Options) { o.Info, o.Memory = true, true })},
		{[]string{"-uai"}, listSpec{inet: []uint16{unix.IPPROTO_UDP}, states: ssAll, ext: extInfo}, opt(func(o *Options) { o.Info = true })},
	}
}

// TestAgainstSSFamilies compares Table with the real ss on netlink, packet,
// raw, MPTCP and TCP sockets, with -i, -m, -e and -O, in a fresh network
// namespace. For -i, the values that change between ss's reading and ours
// are blanked (see normalize); everything else must match byte for byte.
func TestAgainstSSFamilies(t *testing.T) {
	ns := nstest.New(t)
	var cl closers
	t.Cleanup(cl.closeAll)
	if err := ns.Do(func() error {
		if err := openTestSockets(&cl, t.TempDir()); err != nil {
			return err
		}
		return openFamilySockets(&cl)
	}); err != nil {
		t.Fatal(err)
	}
	var svc *Services
	if err := ns.Do(func() (err error) {
		svc, err = LoadServices("/etc/services")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	protos, err := LoadProtocols("/etc/protocols")
	if err != nil {
		t.Fatal(err)
	}
	settleInfo(t, ns)
	for _, c := range famCases(svc, protos) {
		name := strings.Join(c.args, "_")
		t.Run(name, func(t *testing.T) {
			// ss and the listing dump one after the other. A netlink
			// table's dump follows its hash buckets, which a resize
			// (run by a kernel worker, at any time) reorders: rows that
			// differ only so are dumped again, up to three times.
			var (
				want, g, w []byte
				socks      []snapshot.Socket
			)
			for attempt := 1; ; attempt++ {
				var pid int
				var err error
				want, pid, err = runSS(ns, c.args...)
				if err != nil {
					t.Fatal(err)
				}
				var ulp map[uint64][]byte
				if err := ns.Do(func() (err error) {
					socks, ulp, err = c.spec.list()
					if err == nil && c.opt.Processes {
						err = fillOwners(socks)
					}
					return err
				}); err != nil {
					t.Fatal(err)
				}
				useULP(t, ulp)
				socks = dropOwnDiag(socks)
				want = dropSSDiagLine(want, pid)
				var got bytes.Buffer
				if err := ns.Do(func() error { return Table(&got, socks, c.opt) }); err != nil {
					t.Fatal(err)
				}
				g, w = got.Bytes(), want
				if c.opt.Info || c.opt.Options {
					g, w = normalize(g), normalize(w)
				}
				if bytes.Equal(g, w) || attempt == 3 || !sameLines(g, w) {
					break
				}
				t.Logf("attempt %d: the same rows in another order; dumping again", attempt)
			}
			if !bytes.Equal(g, w) {
				t.Errorf("ss %s: output differs:\n%s\nss printed:\n%s", strings.Join(c.args, " "), lineDiff(w, g), want)
			}
			// Before 5.16 (Debian's 5.10: no mptcp_diag) neither ss nor the
			// listing has MPTCP rows to show.
			mptcpOnly := len(c.spec.inet) == 1 && c.spec.inet[0] == unix.IPPROTO_MPTCP
			if _, kernel := nstest.KernelVersion(); len(socks) == 0 && !(mptcpOnly && kernel < 516) {
				t.Errorf("ss %s: no sockets: the comparison proves little", strings.Join(c.args, " "))
			}
			if testing.Verbose() {
				t.Logf("ss %s:\n%s", strings.Join(c.args, " "), want)
			}
		})
	}
}

// sameLines reports whether a and b hold the same lines, in any order.
func sameLines(a, b []byte) bool {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	slices.Sort(la)
	slices.Sort(lb)
	return slices.Equal(la, lb)
}
