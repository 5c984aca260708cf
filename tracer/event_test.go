package tracer

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"sstrace/bpf"
)

func encode(t testing.TB, e bpf.SstraceEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, e); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecode(t *testing.T) {
	raw := bpf.SstraceEvent{
		TsNs: 2000, Cookie: 42, SinceNs: 1000, UserRet: 0x401000,
		Netns: 4026531840, Pid: 7, CurPid: 9, Fd: 3, Ino: 1234, StackId: -1,
		Family: afInet6, Sport: 80, Dport: 5555, Protocol: 262,
		Kind: uint8(KindState), Type: 1, Oldstate: 2, Newstate: 1, Flags: flagOwnerKnown,
	}
	raw.Saddr = netip.MustParseAddr("::1").As16()
	raw.Daddr = netip.MustParseAddr("::ffff:127.0.0.1").As16()
	copy(raw.Comm[:], []int8{'c', 'u', 'r', 'l'})

	var ev Event
	if err := Decode(encode(t, raw), &ev); err != nil {
		t.Fatal(err)
	}
	// Out of SYN-SENT, fd and ino carry the handshake's retransmissions
	// and RTT.
	want := Event{
		Kind: KindState, TS: 2000, Since: 1000, Cookie: 42, UserRet: 0x401000, NetNS: 4026531840,
		PID: 7, CurPID: 9, OwnerKnown: true, Retrans: 3, RTTus: 1234, StackID: -1,
		Family: afInet6, Protocol: 262, Type: 1, OldState: 2, NewState: 1,
		Local: netip.MustParseAddrPort("[::1]:80"),
		Peer:  netip.MustParseAddrPort("[::ffff:127.0.0.1]:5555"),
	}
	copy(want.Comm[:], "curl")
	if ev != want {
		t.Errorf("decoded\n%+v\nwant\n%+v", ev, want)
	}
	if ev.CommString() != "curl" {
		t.Errorf("comm %q", ev.CommString())
	}

	// IPv4 addresses take the first four bytes; flags decode independently.
	raw.Family, raw.Flags = afInet, flagNoCookie
	raw.Saddr = [16]uint8{127, 0, 0, 1}
	raw.Daddr = [16]uint8{127, 0, 0, 2}
	if err := Decode(encode(t, raw), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Local.String() != "127.0.0.1:80" || ev.Peer.String() != "127.0.0.2:5555" || ev.OwnerKnown || !ev.NoCookie {
		t.Errorf("v4 event decoded as %s %s owner=%v nocookie=%v", ev.Local, ev.Peer, ev.OwnerKnown, ev.NoCookie)
	}
}

// The fields the BPF event reuses decode under their own names by kind.
func TestDecodeReused(t *testing.T) {
	for _, tc := range []struct {
		kind            Kind
		old             uint8
		fd, ino         uint32
		errno, rtx, rtt uint32
	}{
		{kind: KindBirth, fd: 3, ino: 1234},
		{kind: KindAccept, fd: 3, ino: 1234},
		{kind: KindState, old: 7},
		{kind: KindState, old: 2, rtx: 3, rtt: 1234},
		{kind: KindState, old: 3, rtx: 3, rtt: 1234},
		{kind: KindError, errno: 3},
		{kind: KindSynAck, rtx: 3},
		{kind: KindRetrans},
		{kind: KindRelease},
	} {
		raw := bpf.SstraceEvent{Kind: uint8(tc.kind), Oldstate: tc.old, Fd: 3, Ino: 1234, Family: afInet}
		var ev Event
		if err := Decode(encode(t, raw), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.FD != tc.fd || ev.Inode != tc.ino || ev.Errno != tc.errno || ev.Retrans != tc.rtx || ev.RTTus != tc.rtt {
			t.Errorf("%s from %d: fd %d ino %d errno %d retrans %d rtt %d; want %d %d %d %d %d", tc.kind, tc.old,
				ev.FD, ev.Inode, ev.Errno, ev.Retrans, ev.RTTus, tc.fd, tc.ino, tc.errno, tc.rtx, tc.rtt)
		}
	}
}

func TestDecodeShort(t *testing.T) {
	var ev Event
	for _, n := range []int{0, 1, EventSize - 1} {
		if err := Decode(make([]byte, n), &ev); err == nil {
			t.Errorf("%d bytes decoded without error", n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(make([]byte, EventSize))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		_ = Decode(b, &ev)
	})
}

func BenchmarkDecode(b *testing.B) {
	raw := encode(b, bpf.SstraceEvent{Family: afInet, Kind: uint8(KindState)})
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeInventory(t *testing.T) {
	var buf bytes.Buffer
	r := bpf.SstraceInvRec{Cookie: 5, Pid: 10, Fd: 4, Ino: 99, Netns: 1, Family: 2, Type: 1, Protocol: 6, State: 7, Sport: 8080}
	copy(r.Comm[:], []int8{'s', 's', 'h', 'd'})
	binary.Write(&buf, binary.NativeEndian, r)
	binary.Write(&buf, binary.NativeEndian, r)
	fds, err := DecodeInventory(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 2 || fds[1].PID != 10 || fds[1].FD != 4 || fds[1].Inode != 99 || fds[1].Cookie != 5 || fds[1].CommString() != "sshd" || fds[1].State != 7 || fds[1].Port != 8080 {
		t.Errorf("decoded %+v", fds)
	}
	if _, err := DecodeInventory(buf.Bytes()[:buf.Len()-1], nil); err == nil {
		t.Error("a torn record decoded without error")
	}
}
