package snapshot

import (
	"cmp"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"unsafe"
)

// entryDropped are the Socket fields an Entry does not keep (see Entry).
var entryDropped = map[string]bool{"Timer": true, "Retrans": true, "Expires": true}

// nonZero sets v (a field of Socket) to a value of its kind that is not
// its zero value, different for each i.
func nonZero(t *testing.T, v reflect.Value, i int) {
	t.Helper()
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(i%200 + 1))
	case reflect.Int32:
		v.SetInt(-int64(i + 1))
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", i))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for j := 0; j < 2; j++ {
			nonZero(t, s.Index(j), i+j)
		}
		v.Set(s)
	case reflect.Struct:
		switch v.Interface().(type) {
		case netip.AddrPort:
			v.Set(reflect.ValueOf(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), uint16(1000+i))))
		case Owner:
			v.Set(reflect.ValueOf(Owner{PID: uint32(100 + i), FD: uint32(3 + i), Comm: fmt.Sprintf("comm%d", i)}))
		default:
			t.Fatalf("no non-zero value for %s", v.Type())
		}
	default:
		t.Fatalf("no non-zero value for %s", v.Type())
	}
}

// An entry gives back every field of the row it was made from, but the
// timers it does not keep, whatever the row holds: each field alone, and
// all at once. A field added to Socket that an entry would lose fails
// here.
func TestEntryRoundTrip(t *testing.T) {
	typ := reflect.TypeFor[Socket]()
	check := func(what string, s Socket) {
		t.Helper()
		want := s
		want.Timer, want.Retrans, want.Expires = 0, 0, 0
		if got := NewEntry(&s).Socket(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	var all Socket
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if entryDropped[f.Name] {
			continue
		}
		var s Socket
		nonZero(t, reflect.ValueOf(&s).Elem().Field(i), i)
		check(f.Name, s)
		nonZero(t, reflect.ValueOf(&all).Elem().Field(i), i)
	}
	check("every field", all)
}

// The rows watch shows, family by family: what the dump and the events
// give, and what an entry must hold without its rare part.
func TestEntryRows(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, c := range []struct {
		name string
		s    Socket
		rare bool
	}{
		{"tcp4 listener", Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateListen, SendQ: 4096, Local: ap("127.0.0.1:22"),
			Peer: ap("0.0.0.0:0"), Inode: 7, Cookie: 9, NetNS: 4026531840, CgroupID: 1234, UID: 1000, HasShutdown: true}, false},
		{"tcp6 v6only on a device", Socket{Family: afInet6, Type: 1, Protocol: protoTCP, State: StateListen, Local: ap("[::]:80"),
			Peer: ap("[::]:0"), Iface: 1, HasV6Only: true, V6Only: true, Cookie: 10, NetNS: 1}, false},
		{"tcp6 v4-mapped, owned", Socket{Family: afInet6, Type: 1, Protocol: protoTCP, State: StateEstablished, RecvQ: 3, SendQ: 5,
			Local: ap("[::ffff:127.0.0.1]:8080"), Peer: ap("[::ffff:127.0.0.3]:40000"), Cookie: 11, Inode: 8,
			HasShutdown: true, Shutdown: 1, Owners: []Owner{{PID: 1, FD: 4, Comm: "server"}}}, false},
		{"tcp4 time-wait", Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateTimeWait, Local: ap("127.0.0.1:1"),
			Peer: ap("127.0.0.2:2"), Cookie: 12}, false},
		{"link-local with zone", Socket{Family: afInet6, Type: 1, Protocol: protoTCP, State: StateEstablished,
			Local: ap("[fe80::1%lo]:1"), Peer: ap("[fe80::2%lo]:2"), Cookie: 13}, true},
		{"two owners", Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateListen, Local: ap("127.0.0.1:3"),
			Owners: []Owner{{PID: 1, FD: 3, Comm: "a"}, {PID: 2, FD: 3, Comm: "b"}}}, true},
		{"fwmark", Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateListen, Local: ap("127.0.0.1:4"), Mark: 1}, true},
		{"tcp_info", Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateEstablished, TCPInfo: []byte{1, 2},
			MemInfo: []uint32{1, 2, 3}, CongAlg: "cubic"}, true},
		{"udp", Socket{Family: afInet, Type: 2, Protocol: 17, State: StateClose, Local: ap("127.0.0.1:53"), Peer: ap("0.0.0.0:0")}, false},
		{"unix", Socket{Family: afUnix, Type: 1, State: StateListen, Path: "@x", Inode: 5, PeerInode: 6}, true},
		{"netlink", Socket{Family: 16, Type: 3, State: StateClose, NetlinkPortID: -5, NetlinkGroups: 1}, true},
		{"packet", Socket{Family: 17, Type: 3, Protocol: 3, State: StateClose, Iface: 1, HasPacketInfo: true, PacketVersion: 2}, true},
		{"far namespace", Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateListen, NetNS: 1 << 40}, true},
	} {
		e := NewEntry(&c.s)
		if got := e.Socket(); !reflect.DeepEqual(got, c.s) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.s)
		}
		if (e.rare != nil) != c.rare {
			t.Errorf("%s: rare part %v, want %v", c.name, e.rare != nil, c.rare)
		}
	}
	// A dumped minisocket keeps its timer: the timewait one, counting down.
	mini := Socket{Family: afInet, Type: 1, Protocol: protoTCP, State: StateTimeWait, Local: ap("127.0.0.1:1"),
		Peer: ap("127.0.0.2:2"), Cookie: 14, Timer: timerTimeWait, Expires: 30_000}
	e := NewEntry(&mini)
	got := e.Socket()
	if !e.Minisock() || got.Timer != timerTimeWait || got.Expires > 30_000 || got.Expires < 20_000 {
		t.Errorf("minisocket: %+v", got)
	}
	got.Expires = mini.Expires
	if !reflect.DeepEqual(got, mini) {
		t.Errorf("minisocket:\n got %+v\nwant %+v", got, mini)
	}
	if n := unsafe.Sizeof(Entry{}); n > 128 {
		t.Errorf("an entry is %d bytes, more than 128", n)
	}
}

// The overlay changes entries in place: addresses that come and go out of
// what fits inline, namespaces, owners; Fill reuses its row's owners and
// never lets them alias the entry's.
func TestEntryChanges(t *testing.T) {
	ap := netip.MustParseAddrPort
	e := NewEntry(&Socket{Family: afInet6, Type: 1, Protocol: protoTCP, State: StateEstablished, Mark: 7})
	e.setAddrs(ap("[fe80::1%eth0]:1"), ap("[::1]:2"))
	if e.Local() != ap("[fe80::1%eth0]:1") || e.Peer() != ap("[::1]:2") {
		t.Errorf("zoned: %s %s", e.Local(), e.Peer())
	}
	e.setAddrs(ap("[::1]:3"), ap("[::1]:4"))
	if e.Local() != ap("[::1]:3") || e.Peer() != ap("[::1]:4") || e.rare.Local.IsValid() {
		t.Errorf("back inline: %s %s (rare %s)", e.Local(), e.Peer(), e.rare.Local)
	}
	e.setNetNS(1 << 33)
	if e.NetNS() != 1<<33 {
		t.Errorf("netns %d", e.NetNS())
	}
	e.setNetNS(5)
	if e.NetNS() != 5 || e.rare.NetNS != 0 {
		t.Errorf("netns %d (rare %d)", e.NetNS(), e.rare.NetNS)
	}

	o := &Entry{}
	o.addOwner(Owner{PID: 1, FD: 3, Comm: "a"})
	o.addOwner(Owner{PID: 1, FD: 3, Comm: "a"})
	if got := o.Owners(); len(got) != 1 || o.rare != nil {
		t.Errorf("one owner added twice: %+v (rare %v)", got, o.rare != nil)
	}
	o.addOwner(Owner{PID: 2, FD: 4, Comm: "b"})
	o.addOwner(Owner{PID: 3, FD: 5, Comm: "c"})
	want := []Owner{{PID: 1, FD: 3, Comm: "a"}, {PID: 2, FD: 4, Comm: "b"}, {PID: 3, FD: 5, Comm: "c"}}
	if got := o.Owners(); !slices.Equal(got, want) {
		t.Errorf("owners %+v, want %+v", got, want)
	}
	var row Socket
	o.Fill(&row)
	row.Owners[0].Comm = "changed"
	if o.rare.Owners[0].Comm != "a" {
		t.Error("Fill's owners alias the entry's")
	}
	single := &Entry{}
	single.addOwner(Owner{PID: 9, FD: 9, Comm: "z"})
	single.Fill(&row) // reuses row's array
	if o.Fill(&row); !slices.Equal(row.Owners, want) {
		t.Errorf("refilled owners %+v", row.Owners)
	}
	o.clearOwners()
	if o.Owners() != nil || o.hasOwners() {
		t.Errorf("cleared: %+v", o.Owners())
	}
}

// CompareAddrs orders as netip.AddrPort's Compare of (Local, Peer).
func TestEntryCompareAddrs(t *testing.T) {
	addrs := []netip.AddrPort{
		{}, netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"),
		netip.MustParseAddrPort("127.0.0.2:0"), netip.MustParseAddrPort("[::]:0"), netip.MustParseAddrPort("[::1]:1"),
		netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), netip.MustParseAddrPort("[fe80::1%lo]:1"), netip.MustParseAddrPort("[fe80::1]:1"),
	}
	var entries []*Entry
	for _, l := range addrs {
		for _, p := range addrs {
			e := &Entry{}
			e.setAddrs(l, p)
			entries = append(entries, e)
		}
	}
	for _, a := range entries {
		for _, b := range entries {
			want := a.Local().Compare(b.Local())
			if want == 0 {
				want = a.Peer().Compare(b.Peer())
			}
			if got := a.CompareAddrs(b); got != want {
				t.Errorf("(%s %s) vs (%s %s): %d, want %d", a.Local(), a.Peer(), b.Local(), b.Peer(), got, want)
			}
		}
	}
}

// OrderKey orders as Family, then CompareAddrs, wherever both keys are
// exact and differ.
func TestEntryOrderKey(t *testing.T) {
	addrs := []netip.AddrPort{
		{}, netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:65535"),
		netip.MustParseAddrPort("127.0.0.2:0"), netip.MustParseAddrPort("255.255.255.255:7"), netip.MustParseAddrPort("[::]:0"),
		netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), netip.MustParseAddrPort("[fe80::1%lo]:1"),
		netip.MustParseAddrPort("[fe80::1]:1"), netip.MustParseAddrPort("[fe80::1]:2"), netip.MustParseAddrPort("[fe80::2]:1"),
		netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
	}
	var entries []*Entry
	for _, fam := range []uint8{afInet, afInet6} {
		for _, l := range addrs {
			for _, p := range addrs {
				e := &Entry{Family: fam, Type: 1, Protocol: protoTCP}
				e.setAddrs(l, p)
				entries = append(entries, e)
			}
		}
	}
	full := func(a, b *Entry) int {
		if c := cmp.Compare(a.Family, b.Family); c != 0 {
			return c
		}
		return a.CompareAddrs(b)
	}
	exact := 0
	for _, a := range entries {
		ka, ea := a.OrderKey()
		if ka[1]&1 != 0 {
			t.Fatalf("(%s %s): the key's lowest bit is set", a.Local(), a.Peer())
		}
		if ea && a.Local().Addr().Is4() && a.Peer().Addr().Is4() {
			exact++
		}
		for _, b := range entries {
			kb, eb := b.OrderKey()
			if !ea || !eb || ka == kb {
				if ea && eb && ka == kb && a.Local().Addr().Is4() && a.Peer().Addr().Is4() && full(a, b) != 0 {
					t.Errorf("(%s %s) and (%s %s): IPv4 keys equal, rows not", a.Local(), a.Peer(), b.Local(), b.Peer())
				}
				continue
			}
			got := slices.Compare(ka[:], kb[:])
			if want := full(a, b); got != want {
				t.Errorf("(%d %s %s) vs (%d %s %s): keys order %d, want %d", a.Family, a.Local(), a.Peer(), b.Family, b.Local(), b.Peer(), got, want)
			}
		}
	}
	if exact == 0 {
		t.Fatal("no IPv4 key was exact")
	}
}
