package render

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"testing"

	"sstrace/snapshot"
)

// randomSocket makes a socket with every field randomly present or not.
func randomSocket(r *rand.Rand) snapshot.Socket {
	strs := []string{"", "x", "/run/a b", "@abs@name", "quote\"back\\slash", "<html>&", "tab\tnl\nctl\x01\x7f",
		"utf8 é ✓", "bad \xff\xfe utf8", "\u2028\u2029", "nginx: worker"}
	pick := func() string { return strs[r.IntN(len(strs))] }
	var s snapshot.Socket
	switch r.IntN(3) {
	case 0:
		s.Family = afInet
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(r.IntN(3))}), uint16(r.IntN(3)*40000))
		s.Peer = netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(r.IntN(2)) * 10, 0, 0, 1}), uint16(r.IntN(2)*80))
	case 1:
		s.Family = afInet6
		addrs := []string{"::", "::1", "::ffff:127.0.0.1", "2001:db8::1", "::1.2.3.4"}
		s.Local = netip.AddrPortFrom(netip.MustParseAddr(addrs[r.IntN(len(addrs))]), uint16(r.IntN(65536)))
		s.Peer = netip.AddrPortFrom(netip.MustParseAddr(addrs[r.IntN(len(addrs))]), uint16(r.IntN(2)*22))
		s.HasV6Only = r.IntN(2) == 0
		s.V6Only = r.IntN(2) == 0
	default:
		s.Family = afUnix
		s.Type = uint8(1 + r.IntN(5))
		s.Path = pick()
		s.PeerInode = uint32(r.IntN(2) * r.IntN(1<<20))
		if r.IntN(2) == 0 {
			s.VFSInode, s.VFSDev = r.Uint32(), r.Uint32()
		}
		if r.IntN(2) == 0 {
			s.Icons = []uint32{r.Uint32(), r.Uint32()}
		}
	}
	if s.Family != afUnix {
		s.Protocol = []uint16{ipprotoTCP, ipprotoUDP, 0}[r.IntN(3)]
		s.Iface = uint32(r.IntN(2) * r.IntN(5))
		s.Timer = uint8(r.IntN(7))
		s.Expires = r.Uint32()
		s.Retrans = uint8(r.Uint32())
	}
	s.State = uint8(r.IntN(15))
	s.RecvQ, s.SendQ = r.Uint32(), r.Uint32()
	s.UID = uint32(r.IntN(2) * 1000)
	s.Inode = r.Uint32()
	s.Cookie = uint64(r.IntN(2)) * r.Uint64()
	s.NetNS = uint64(r.IntN(2)) * 4026531840
	s.Mark = uint32(r.IntN(2)) * r.Uint32()
	s.CgroupID = uint64(r.IntN(3))
	s.HasShutdown = r.IntN(2) == 0
	s.Shutdown = uint8(r.IntN(4))
	for range r.IntN(3) {
		s.Owners = append(s.Owners, snapshot.Owner{PID: r.Uint32(), FD: uint32(r.IntN(1000)), Comm: pick()})
	}
	return s
}

// AppendSocket writes exactly what encoding/json makes of Object.
func TestAppendSocketMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	svc := testServices(t)
	for _, opt := range []Options{
		{Numeric: true},
		{Services: svc, Resolve: true, Extended: true},
	} {
		e := NewEncoder(fakeOpts(opt))
		for range 20000 {
			s := randomSocket(r)
			got := e.AppendSocket(nil, &s)
			want, err := json.Marshal(e.Object(&s))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("socket %+v:\nAppendSocket: %s\njson.Marshal: %s", s, got, want)
			}
		}
	}
}

func TestJSONDocument(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	socks := make([]snapshot.Socket, 100)
	for i := range socks {
		socks[i] = randomSocket(r)
	}
	for _, n := range []int{0, 1, len(socks)} {
		var b bytes.Buffer
		if err := JSON(&b, socks[:n], fakeOpts(Options{})); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Sockets []JSONSocket `json:"sockets"`
		}
		dec := json.NewDecoder(&b)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%d sockets: decoding: %v", n, err)
		}
		if len(doc.Sockets) != n {
			t.Fatalf("decoded %d sockets, want %d", len(doc.Sockets), n)
		}
		e := NewEncoder(fakeOpts(Options{}))
		for i := range n {
			again, _ := json.Marshal(doc.Sockets[i])
			want, _ := json.Marshal(e.Object(&socks[i]))
			if bytes.Contains(want, []byte(`\ufffd`)) {
				continue // invalid UTF-8 does not survive, by design
			}
			if !bytes.Equal(again, want) {
				t.Errorf("socket %d does not survive a round trip:\n%s\n%s", i, again, want)
			}
		}
	}
}
