package tracer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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
// netnsCookie limits it to sockets of one network namespace (0: all).
func Inventory(netnsCookie uint64) ([]FD, error) {
	if err := requireCaps(capsIter); err != nil {
		return nil, err
	}
	spec, err := loadSpec(netnsCookie)
	if err != nil {
		return nil, err
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"inventory"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("loading iter/task_file program: %w", explainPerm(err))
	}
	defer objs.Prog.Close()
	return runInventory(objs.Prog)
}

// Inventory runs the iterator with the tracer's own settings.
func (t *Tracer) Inventory() ([]FD, error) {
	p, err := loadOne(t.spec, "inventory", nil)
	if err != nil {
		return nil, fmt.Errorf("loading iter/task_file program: %w", err)
	}
	defer p.Close()
	return runInventory(p)
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
