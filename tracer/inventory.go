package tracer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"sstrace/bpf"
)

// FD is one socket file descriptor held by a process, from the task_file
// iterator.
type FD struct {
	PID      uint32
	FD       uint32
	Inode    uint32
	NetNS    uint32
	Cookie   uint64
	Family   uint16
	Type     uint16
	Protocol uint16
	State    uint8
	// Port is an inet socket's local port (0 unbound or not inet): with
	// NetNS, what names a listener in events about its connections.
	Port uint16
	// WasUsed: a TCP socket that once reached ESTABLISHED (it has a
	// receive sequence) or had listen() called on it.
	WasUsed bool
	Comm    [16]byte
}

// CommString is Comm up to its first NUL.
func (f *FD) CommString() string {
	if i := bytes.IndexByte(f.Comm[:], 0); i >= 0 {
		return string(f.Comm[:i])
	}
	return string(f.Comm[:])
}

// invWasUsed is INV_WAS_USED in bpf/sstrace.bpf.c.
const invWasUsed = 1

// invRecSize is the size of struct inv_rec.
const invRecSize = int(unsafe.Sizeof(bpf.SstraceInvRec{}))

var (
	invCookie   = unsafe.Offsetof(bpf.SstraceInvRec{}.Cookie)
	invPID      = unsafe.Offsetof(bpf.SstraceInvRec{}.Pid)
	invFD       = unsafe.Offsetof(bpf.SstraceInvRec{}.Fd)
	invIno      = unsafe.Offsetof(bpf.SstraceInvRec{}.Ino)
	invNetNS    = unsafe.Offsetof(bpf.SstraceInvRec{}.Netns)
	invFamily   = unsafe.Offsetof(bpf.SstraceInvRec{}.Family)
	invType     = unsafe.Offsetof(bpf.SstraceInvRec{}.Type)
	invProtocol = unsafe.Offsetof(bpf.SstraceInvRec{}.Protocol)
	invState    = unsafe.Offsetof(bpf.SstraceInvRec{}.State)
	invFlags    = unsafe.Offsetof(bpf.SstraceInvRec{}.Flags)
	invSport    = unsafe.Offsetof(bpf.SstraceInvRec{}.Sport)
	invComm     = unsafe.Offsetof(bpf.SstraceInvRec{}.Comm)
)

// DecodeInventory appends the records in b (a whole number of inv_rec) to
// out.
func DecodeInventory(b []byte, out []FD) ([]FD, error) {
	if len(b)%invRecSize != 0 {
		return out, fmt.Errorf("decoding inventory: %d bytes is not a whole number of %d-byte records", len(b), invRecSize)
	}
	ne := binary.NativeEndian
	for ; len(b) > 0; b = b[invRecSize:] {
		var f FD
		f.Cookie = ne.Uint64(b[invCookie:])
		f.PID = ne.Uint32(b[invPID:])
		f.FD = ne.Uint32(b[invFD:])
		f.Inode = ne.Uint32(b[invIno:])
		f.NetNS = ne.Uint32(b[invNetNS:])
		f.Family = ne.Uint16(b[invFamily:])
		f.Type = ne.Uint16(b[invType:])
		f.Protocol = ne.Uint16(b[invProtocol:])
		f.State = b[invState]
		f.WasUsed = b[invFlags]&invWasUsed != 0
		f.Port = ne.Uint16(b[invSport:])
		copy(f.Comm[:], b[invComm:invComm+16])
		out = append(out, f)
	}
	return out, nil
}

// Inventory lists every socket fd of every process, loading only the
// iterator program (not the tracing hooks): what `sstrace -p` needs.
// ns limits it to sockets of one network namespace (zero: all).
func Inventory(ns NetNS) ([]FD, error) {
	fds, _, err := ProbeInventory(ns)
	return fds, err
}

// ProbeInventory is Inventory that also says how it was taken: the
// capability with the variant in use, or every variant tried and why each
// was refused (then err is the last refusal).
func ProbeInventory(ns NetNS) ([]FD, Capability, error) {
	c := Capability{Name: CapInventory, Loses: inventoryLoses}
	if err := requireCaps(capsIter); err != nil {
		return nil, c, err
	}
	if err := removeMemlock(); err != nil {
		return nil, c, err
	}
	first, err := firstObject()
	if err != nil {
		return nil, c, err
	}
	return inventoryWith(newSpecs(settings(Options{NetNS: ns})), first, c)
}

// Inventory runs the iterator with the tracer's own settings.
func (t *Tracer) Inventory() ([]FD, error) {
	fds, _, err := t.ProbeInventory()
	return fds, err
}

// ProbeInventory is Inventory that also says how it was taken, or why it
// could not be (see the package-level ProbeInventory).
func (t *Tracer) ProbeInventory() ([]FD, Capability, error) {
	c := Capability{Name: CapInventory, Loses: inventoryLoses}
	if slices.Contains(t.disable, HookInventory) {
		// Test plumbing: a kernel without the iterator, as commands see it.
		err := errors.New("disabled")
		c.Tried, c.Needs = []HookError{{Hook: HookInventory, Err: err}}, "the fd iterator (disabled)"
		return nil, c, fmt.Errorf("%s: %w", HookInventory, err)
	}
	return inventoryWith(t.specs, t.first, c)
}

// inventoryVariants: the iterator's ladder, best first. It generates
// missing socket cookies where the kernel lets it call
// bpf_get_socket_cookie on the socket it reaches (6.18.44 does not: an
// untrusted pointer), else reads the cookie each socket has.
var inventoryVariants = []struct {
	obj   Object
	name  string
	set   map[string]any
	lacks []string
}{
	{ObjectBTF, "btf", nil, nil},
	{ObjectBTF, "btf, cookies read", map[string]any{"iter_gen_cookie": false}, []string{LackIterCookie}},
	{ObjectCORE, "core, cookies read", nil, []string{LackIterCookie}},
}

func inventoryWith(s *specs, first Object, c Capability) ([]FD, Capability, error) {
	var last error
	// The iterator needs nothing that ObjectCORE510 leaves out: a later
	// first object starts it at ObjectCORE.
	first = min(first, ObjectCORE)
	for _, v := range inventoryVariants {
		if v.obj < first {
			continue
		}
		spec, err := s.get(v.obj)
		if err != nil {
			return nil, c, err
		}
		p, err := loadOneWith(spec, "inventory", v.set, nil)
		if err != nil {
			last = fmt.Errorf("loading %s program: %w", HookInventory, err)
			c.Tried = append(c.Tried, HookError{Hook: HookInventory, Object: v.name, Err: err, loadErr: true})
			continue
		}
		fds, err := runInventory(p)
		p.Close()
		if err != nil {
			c.Tried = append(c.Tried, HookError{Hook: HookInventory, Object: v.name, Err: err})
			return nil, c, err
		}
		c.Hooks, c.Object, c.Lacks = []string{HookInventory}, v.name, v.lacks
		return fds, c, nil
	}
	c.settle()
	return nil, c, last
}

func runInventory(p *ebpf.Program) ([]FD, error) {
	it, err := link.AttachIter(link.IterOptions{Program: p})
	if err != nil {
		return nil, fmt.Errorf("attaching iter/task_file: %w", err)
	}
	defer it.Close()
	rd, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("opening iter/task_file: %w", err)
	}
	defer rd.Close()
	// One read drains a page of the seq_file at a time; read it whole, then
	// decode once.
	buf, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("reading iter/task_file: %w", err)
	}
	return DecodeInventory(buf, make([]FD, 0, len(buf)/invRecSize))
}
