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
		Netns: 4026531840, Pid: 7, CurPid: 9, Fd: 3, Ino: 1234,
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
		PID: 7, CurPID: 9, OwnerKnown: true, Retrans: 3, RTTus: 1234,
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

func encodeStacked(t testing.TB, e bpf.SstraceStackedEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, e); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stackedBirth is a birth record as BPF writes it with birth_stacks: the
// event, the executable's base, then three frames and zeroes.
func stackedBirth() bpf.SstraceStackedEvent {
	se := bpf.SstraceStackedEvent{ExeBase: 0x555555554000}
	se.E = bpf.SstraceEvent{Kind: uint8(KindBirth), Cookie: 42, Pid: 7, Fd: 3, Ino: 99, Family: afInet, Nframes: 3, UserRet: 0x401234}
	copy(se.Frames[:], []uint64{0x7f0000001000, 0x401234, 0x402000})
	return se
}

func TestDecodeStacked(t *testing.T) {
	b := encodeStacked(t, stackedBirth())
	if len(b) != StackedEventSize {
		t.Fatalf("stacked record of %d bytes, want %d", len(b), StackedEventSize)
	}
	var ev Event
	if err := Decode(b, &ev); err != nil {
		t.Fatal(err)
	}
	want := MakeStack([]uint64{0x7f0000001000, 0x401234, 0x402000}, 0x555555554000)
	if ev.Kind != KindBirth || ev.Cookie != 42 || ev.FD != 3 || ev.UserRet != 0x401234 || ev.Stack != want {
		t.Errorf("decoded %+v, want a birth with stack %v", ev, want.Frames())
	}
	if f := ev.Stack.Frames(); len(f) != 3 || f[1] != 0x401234 || ev.Stack.Len() != 3 || ev.Stack.ExeBase() != 0x555555554000 || ev.Stack.Err() != nil {
		t.Errorf("frames %#x len %d base %#x err %v", f, ev.Stack.Len(), ev.Stack.ExeBase(), ev.Stack.Err())
	}

	// Equal stacks compare equal, from separate records; another process's
	// placement of the same addresses does not.
	var again Event
	if err := Decode(encodeStacked(t, stackedBirth()), &again); err != nil || again.Stack != ev.Stack {
		t.Errorf("the same stack decoded twice compares unequal (%v)", err)
	}
	other := stackedBirth()
	other.ExeBase = 0x400000
	if err := Decode(encodeStacked(t, other), &again); err != nil || again.Stack == ev.Stack {
		t.Errorf("stacks of two executable bases compare equal (%v)", err)
	}

	// A failed capture is a stack with an error and no frames.
	failed := stackedBirth()
	failed.E.Nframes = -14
	if err := Decode(encodeStacked(t, failed), &ev); err != nil {
		t.Fatal(err)
	}
	if !ev.Stack.Captured() || ev.Stack.Len() != 0 || ev.Stack.Err() == nil {
		t.Errorf("failed capture decoded as captured %v, %d frames, err %v", ev.Stack.Captured(), ev.Stack.Len(), ev.Stack.Err())
	}

	// A plain record has no stack.
	if err := Decode(encode(t, bpf.SstraceEvent{Kind: uint8(KindBirth), Family: afInet}), &ev); err != nil || ev.Stack.Captured() || ev.Stack != (Stack{}) {
		t.Errorf("plain birth: stack %v captured %v (%v)", ev.Stack.Frames(), ev.Stack.Captured(), err)
	}
}

func TestDecodeShort(t *testing.T) {
	var ev Event
	for _, n := range []int{0, 1, EventSize - 1, EventSize + 1, int(offFrames) - 1} {
		if err := Decode(make([]byte, n), &ev); err == nil {
			t.Errorf("%d bytes decoded without error", n)
		}
	}
}

// A frame count the record has no room for is refused, never read past
// the record.
func TestDecodeBadFrameCount(t *testing.T) {
	se := stackedBirth()
	full := encodeStacked(t, se)
	var ev Event
	for _, tc := range []struct {
		n    int32
		size int
	}{
		{128, len(full)},                  // more than a stacked record holds
		{3, len(full) - 127*8 + 2*8},      // a torn record with room for 2
		{1, EventSize},                    // frames in a plain record
		{-1, EventSize},                   // an error in a plain record
		{-1 << 31, len(full)},             // no errno
		{1 << 30, len(full)},              // would overflow a byte count
		{-(1 << 30), int(offFrames) + 16}, // no errno either
	} {
		se.E.Nframes = tc.n
		b := encodeStacked(t, se)[:tc.size]
		if err := Decode(b, &ev); err == nil {
			t.Errorf("%d frames in %d bytes decoded without error: %+v", tc.n, tc.size, ev)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(make([]byte, EventSize))
	f.Add([]byte{1, 2, 3})
	se := stackedBirth()
	f.Add(encodeStacked(f, se))
	se.E.Nframes = 127
	f.Add(encodeStacked(f, se))
	se.E.Nframes = -14
	f.Add(encodeStacked(f, se))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		if err := Decode(b, &ev); err != nil {
			return
		}
		// What decoded is within the record.
		if n := ev.Stack.Len(); n > 0 && int(offFrames)+8*n > len(b) {
			t.Errorf("%d frames from a %d-byte record", n, len(b))
		}
		if ev.Stack.Captured() != (len(b) > EventSize) {
			t.Errorf("a %d-byte record decoded with captured=%v", len(b), ev.Stack.Captured())
		}
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

// A birth with a 20-frame stack that was seen before (the common case: one
// line of code makes many sockets).
func BenchmarkDecodeStacked(b *testing.B) {
	se := stackedBirth()
	se.E.Nframes = 20
	for i := range 20 {
		se.Frames[i] = 0x401000 + uint64(i)*0x40
	}
	raw := encodeStacked(b, se)
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
