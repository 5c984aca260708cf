package tracer

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unique"
	"unsafe"
)

// Stack is a user stack that came with an event (see Event.Stack): its
// return addresses, innermost first, and where the process's executable
// text started (mm->start_code), which places the executable's own frames
// once the process and its /proc/PID/maps are gone. The zero Stack is no
// stack.
//
// The frames are interned: a Stack holds a unique.Handle of their raw
// bytes. So a Stack is comparable, in constant time, and keys maps (leaks
// groups sockets by process and stack); the thousands of sockets one line
// of code creates share one copy of its frames; and that copy is freed
// once no event, record or group holds the stack any more, which neither
// a slice (not comparable) nor a content key kept beside it (a table that
// someone must empty) gives for free.
type Stack struct {
	frames  unique.Handle[string] // native-endian uint64s; zero: none captured
	exeBase uint64
	errno   syscall.Errno // capturing failed
}

// MakeStack is the Stack of frames (innermost first) from a process whose
// executable text started at exeBase (0: unknown).
func MakeStack(frames []uint64, exeBase uint64) Stack {
	b := make([]byte, 8*len(frames))
	for i, f := range frames {
		binary.NativeEndian.PutUint64(b[8*i:], f)
	}
	return Stack{frames: unique.Make(string(b)), exeBase: exeBase}
}

// stackFromRecord is the Stack of n frames in b (raw, as BPF wrote them),
// or a failed capture when n < 0 (bpf_get_stack's -errno).
func stackFromRecord(b []byte, n int32, exeBase uint64) Stack {
	if n < 0 {
		return Stack{frames: unique.Make(""), exeBase: exeBase, errno: syscall.Errno(-n)}
	}
	if n == 0 {
		return Stack{frames: unique.Make(""), exeBase: exeBase}
	}
	// unique.Make looks the frames up in place and clones them only when
	// they are new, so a stack seen before costs no allocation; the record
	// buffer is not kept.
	return Stack{frames: unique.Make(unsafe.String(&b[0], 8*int(n))), exeBase: exeBase}
}

// Captured says whether the event came with a stack (which may still have
// failed: see Err).
func (s Stack) Captured() bool { return s.frames != unique.Handle[string]{} }

// Err says why a captured stack has no frames, nil if it has them.
func (s Stack) Err() error {
	if s.errno != 0 {
		return fmt.Errorf("capturing the user stack: %w", s.errno)
	}
	return nil
}

// Len is the number of frames.
func (s Stack) Len() int {
	if !s.Captured() {
		return 0
	}
	return len(s.frames.Value()) / 8
}

// Frames returns the return addresses, innermost first (a new slice).
func (s Stack) Frames() []uint64 {
	if !s.Captured() {
		return nil
	}
	raw := s.frames.Value()
	out := make([]uint64, len(raw)/8)
	for i := range out {
		out[i] = binary.NativeEndian.Uint64([]byte(raw[8*i : 8*i+8]))
	}
	return out
}

// ExeBase is where the executable's text started in the process that made
// the stack (mm->start_code), 0 if unknown.
func (s Stack) ExeBase() uint64 { return s.exeBase }
