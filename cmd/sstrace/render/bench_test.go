package render

import (
	"io"
	"net/netip"
	"testing"

	"sstrace/snapshot"
)

// syntheticTCP makes n TCP sockets like a busy server's: a few listeners,
// then established connections from many clients, IPv4 and IPv6.
func syntheticTCP(n int) []snapshot.Socket {
	socks := make([]snapshot.Socket, n)
	for i := range socks {
		s := &socks[i]
		s.Type, s.Protocol = sockStream, ipprotoTCP
		s.Inode = uint32(100000 + i)
		s.Cookie = uint64(0x1000 + i)
		s.CgroupID = 1
		s.HasShutdown = true
		s.Owners = []snapshot.Owner{{PID: 4242, FD: uint32(10 + i), Comm: "server"}}
		client := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		if i%4 == 3 {
			s.Family = afInet6
			s.HasV6Only = true
			s.Local = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 443)
			c := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 12: client[0], 13: client[1], 14: client[2], 15: client[3]})
			s.Peer = netip.AddrPortFrom(c, uint16(32768+i%28000))
		} else {
			s.Family = afInet
			s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, 1, 10}), 443)
			s.Peer = netip.AddrPortFrom(netip.AddrFrom4(client), uint16(32768+i%28000))
		}
		s.State = snapshot.StateEstablished
		if i < 4 {
			s.State = snapshot.StateListen
			s.Peer = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
			if s.Family == afInet6 {
				s.Peer = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
			}
			s.SendQ = 4096
		}
		if i%7 == 0 {
			s.Timer, s.Expires = 2, uint32(7000000+i)
		}
	}
	return socks
}

func benchTable(b *testing.B, opt Options) {
	socks := syntheticTCP(100000)
	opt = fakeOpts(opt)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := Table(io.Discard, socks, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(socks)), "ns/row")
}

// ss -tan
func BenchmarkTable100kTCP(b *testing.B) {
	benchTable(b, Options{ShowState: true, Header: true, Numeric: true})
}

// ss -ta (service names)
func BenchmarkTable100kTCPServices(b *testing.B) {
	benchTable(b, Options{ShowState: true, Header: true, Services: testServices(b)})
}

// ss -tanep
func BenchmarkTable100kTCPExtended(b *testing.B) {
	benchTable(b, Options{ShowState: true, Header: true, Numeric: true, Options: true, Extended: true, Processes: true})
}

// ss -tan on a 200-column terminal
func BenchmarkTable100kTCPTTY(b *testing.B) {
	benchTable(b, Options{ShowState: true, Header: true, Numeric: true, ScreenWidth: 200})
}

func BenchmarkJSON100kTCP(b *testing.B) {
	socks := syntheticTCP(100000)
	opt := fakeOpts(Options{Numeric: true, Processes: true})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := JSON(io.Discard, socks, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(socks)), "ns/row")
}

// ss -tanim on sockets with tcp_info, BBR details and memory.
func BenchmarkTable100kTCPInfo(b *testing.B) {
	socks := syntheticTCP(100000)
	info := busyInfo(232)
	bbr := ccBytes(0x5d8e5c40, 0x1, 12000, 739, 512)
	mem := skmem(9)
	for i := range socks {
		socks[i].TCPInfo, socks[i].CongAlg, socks[i].MemInfo = info, "bbr", mem
		socks[i].CCInfoType, socks[i].CCInfo = ccBBR, bbr
	}
	opt := fakeOpts(Options{ShowState: true, Header: true, Numeric: true, Info: true, Memory: true})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := Table(io.Discard, socks, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(socks)), "ns/row")
}
