package snapshot

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"sstrace/tracer"
)

// Owners maps a socket inode to the process fds that hold it.
type Owners map[uint32][]Owner

// OwnerSource says where owners came from.
type OwnerSource string

// Owner sources.
const (
	OwnersBPF  OwnerSource = "bpf iter/task_file"
	OwnersProc OwnerSource = "/proc/*/fd"
)

// TakeOwners lists every socket fd's owner: from the BPF task_file iterator
// (one pass over the kernel's task list, every process), or, where BPF is
// not allowed, by walking /proc as ss does (only the processes this user
// may inspect). ns limits the BPF pass to one network namespace's
// sockets (0: all). The reason BPF was not used comes back as fallback.
func TakeOwners(ns tracer.NetNS) (o Owners, src OwnerSource, fallback error, err error) {
	fds, berr := tracer.Inventory(ns)
	if berr == nil {
		return FromInventory(fds), OwnersBPF, nil, nil
	}
	o, err = ProcOwners("/proc")
	return o, OwnersProc, berr, err
}

// FromInventory builds the owner table from the iterator's records.
func FromInventory(fds []tracer.FD) Owners {
	o := make(Owners, len(fds))
	for i := range fds {
		f := &fds[i]
		o[f.Inode] = append(o[f.Inode], Owner{PID: f.PID, FD: f.FD, Comm: ssComm(f.CommString())})
	}
	o.sortLikeSS()
	return o
}

// sortLikeSS orders each socket's owners as ss prints them. ss walks /proc
// in ascending pid and fd order and pushes each entry on the front of its
// hash chain, so it prints the last found first: pid descending, then fd
// descending.
func (o Owners) sortLikeSS() {
	for _, l := range o {
		if len(l) > 1 {
			slices.SortFunc(l, func(a, b Owner) int {
				if a.PID != b.PID {
					return cmpDesc(a.PID, b.PID)
				}
				return cmpDesc(a.FD, b.FD)
			})
		}
	}
}

func cmpDesc(a, b uint32) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// ProcOwners walks root/*/fd like ss does: processes it may not read are
// skipped, as ss skips them.
func ProcOwners(root string) (Owners, error) {
	dir, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("listing processes in %s: %w", root, err)
	}
	o := Owners{}
	for _, d := range dir {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		base := root + "/" + d.Name()
		fds, err := os.ReadDir(base + "/fd")
		if err != nil {
			continue // gone, or not ours to read
		}
		var comm string
		for _, fd := range fds {
			n, err := strconv.ParseUint(fd.Name(), 10, 32)
			if err != nil {
				continue
			}
			link, err := os.Readlink(base + "/fd/" + fd.Name())
			if err != nil {
				continue
			}
			ino, ok := socketInode(link)
			if !ok {
				continue
			}
			if comm == "" {
				comm = procComm(base)
			}
			o[ino] = append(o[ino], Owner{PID: uint32(pid), FD: uint32(n), Comm: comm})
		}
	}
	o.sortLikeSS()
	return o, nil
}

// socketInode parses "socket:[12345]".
func socketInode(link string) (uint32, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// procComm reads the command name from /proc/PID/stat as ss does.
func procComm(base string) string {
	b, err := os.ReadFile(base + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.IndexByte(s, '(')
	if i < 0 {
		return ""
	}
	return ssComm(s[i+1:])
}

// ssComm cuts a command name at its first ')': ss reads /proc/PID/stat with
// "%*d (%[^)])", so a comm holding ')' prints cut there. The iterator's
// comm is cut the same way so that -p prints what ss prints.
func ssComm(comm string) string {
	if j := strings.IndexByte(comm, ')'); j >= 0 {
		return comm[:j]
	}
	return comm
}

// Attach fills each socket's Owners from the table.
func (o Owners) Attach(socks []Socket) {
	for i := range socks {
		if l, ok := o[socks[i].Inode]; ok && socks[i].Inode != 0 {
			socks[i].Owners = l
		}
	}
}

// IsPermission reports whether err comes from missing privileges (this
// process lacks capabilities), not from the kernel refusing a program.
func IsPermission(err error) bool { return tracer.IsUnprivileged(err) }
