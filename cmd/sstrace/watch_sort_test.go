package main

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
	"sstrace/snapshot/filter"
)

// The overlay's entries, sorted by their keys, come in the order
// compareRows gives their rows: IPv4, IPv6 and v4-mapped addresses, equal
// 4-tuples told apart by inode and cookie, a zoned address (no exact key)
// and a row of another protocol among them.
func TestWatchEntryOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("0.0.0.0"),
		netip.MustParseAddr("::1"), netip.MustParseAddr("::"), netip.MustParseAddr("::ffff:127.0.0.1"),
		netip.MustParseAddr("fe80::1%lo"), netip.MustParseAddr("2001:db8::1"),
	}
	var socks []snapshot.Socket
	for i := 0; i < 3000; i++ {
		l, p := addrs[rng.IntN(len(addrs))], addrs[rng.IntN(len(addrs))]
		fam := uint8(filter.AFInet6)
		if l.Is4() && p.Is4() {
			fam = filter.AFInet
		}
		s := snapshot.Socket{Family: fam, Type: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP, State: snapshot.StateEstablished,
			Local: netip.AddrPortFrom(l, uint16(rng.IntN(4))), Peer: netip.AddrPortFrom(p, uint16(rng.IntN(4))),
			Inode: uint32(rng.IntN(3)), Cookie: uint64(i)}
		if i%500 == 0 {
			s.Protocol = unix.IPPROTO_MPTCP
		}
		socks = append(socks, s)
	}
	want := make([]*snapshot.Socket, len(socks))
	entries := make([]*snapshot.Entry, len(socks))
	for i := range socks {
		want[i] = &socks[i]
		entries[i] = snapshot.NewEntry(&socks[i])
	}
	slices.SortFunc(want, compareRows)
	sortEntries(entries, nil)
	for i := range want {
		if entries[i].Cookie != want[i].Cookie {
			t.Fatalf("row %d: entry sk:%x (%s %s), want sk:%x (%s %s)", i, entries[i].Cookie, entries[i].Local(), entries[i].Peer(),
				want[i].Cookie, want[i].Local, want[i].Peer)
		}
	}
}
