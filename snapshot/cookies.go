package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"sstrace/tracer"
)

// FillCookies gives the TCP and MPTCP sockets of an fd inventory that came
// without a cookie the one the kernel gives them, joined by inode. The
// iterator reads a socket's cookie where the kernel will not let it
// generate one (tracer.ProbeInventory's "cookies read" variants), and a
// socket nothing has asked about has none: a sock_diag dump of its
// namespace generates it, as the hooks' bpf_get_socket_cookie would, so
// the events that follow carry the same one. Only the namespaces such
// sockets are in are dumped, once each, through the namespace of a process
// holding one. A socket no dump lists (unbound, never connected: it fires
// no event until connect(), which runs in its owner's context) keeps 0.
func FillCookies(fds []tracer.FD) error {
	type nsWant struct {
		pid uint32
		fds map[uint32][]int // inode -> indexes into fds
	}
	byNS := map[uint32]*nsWant{}
	for i := range fds {
		f := &fds[i]
		if f.Cookie != 0 || (f.Protocol != unix.IPPROTO_TCP && f.Protocol != unix.IPPROTO_MPTCP) ||
			(f.Family != unix.AF_INET && f.Family != unix.AF_INET6) {
			continue
		}
		w := byNS[f.NetNS]
		if w == nil {
			w = &nsWant{pid: f.PID, fds: map[uint32][]int{}}
			byNS[f.NetNS] = w
		}
		w.fds[f.Inode] = append(w.fds[f.Inode], i)
	}
	var errs []error
	for ns, w := range byNS {
		path, err := NetNSPath(ns, w.pid)
		if err != nil {
			errs = append(errs, fmt.Errorf("dumping netns %d for socket cookies: %w", ns, err))
			continue
		}
		var socks []Socket
		err = tracer.InNetNS(path, func() (err error) {
			socks, err = List(ListRequest{
				Inet: []InetDump{
					{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}, {Family: unix.AF_INET6, Protocol: unix.IPPROTO_TCP},
					{Family: unix.AF_INET, Protocol: unix.IPPROTO_MPTCP}, {Family: unix.AF_INET6, Protocol: unix.IPPROTO_MPTCP},
				},
				States: 0xfff | 1<<StateBoundInactive,
			})
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("dumping netns %d for socket cookies: %w", ns, err))
			continue
		}
		for i := range socks {
			for _, j := range w.fds[socks[i].Inode] {
				fds[j].Cookie = socks[i].Cookie
			}
		}
	}
	return errors.Join(errs...)
}

// Inventory is the tracer's fd inventory with FillCookies applied: what
// the commands that join a socket's events to its holder by cookie read.
// A failure to fill comes back with the inventory, which is still usable.
func Inventory(tr *tracer.Tracer) ([]tracer.FD, error) {
	fds, err := tr.Inventory()
	if err != nil {
		return nil, err
	}
	return fds, FillCookies(fds)
}

// NetNSPath finds a path to the network namespace with inode ino through
// process pid, which holds a socket there: the process's own namespace,
// else one of its threads' (a thread may have entered another namespace
// to make the socket, as sstrace's tests do), else a namespace fd it
// holds, else a name under /run/netns.
func NetNSPath(ino uint32, pid uint32) (string, error) {
	is := func(p string) bool {
		var st unix.Stat_t
		return unix.Stat(p, &st) == nil && uint32(st.Ino) == ino
	}
	if p := fmt.Sprintf("/proc/%d/ns/net", pid); is(p) {
		return p, nil
	}
	var cands []string
	proc := fmt.Sprintf("/proc/%d", pid)
	if tasks, err := os.ReadDir(proc + "/task"); err == nil {
		for _, t := range tasks {
			cands = append(cands, filepath.Join(proc, "task", t.Name(), "ns/net"))
		}
	}
	want := fmt.Sprintf("net:[%d]", ino)
	if fds, err := os.ReadDir(proc + "/fd"); err == nil {
		for _, fd := range fds {
			p := filepath.Join(proc, "fd", fd.Name())
			if l, err := os.Readlink(p); err == nil && l == want {
				cands = append(cands, p)
			}
		}
	}
	if names, err := os.ReadDir("/run/netns"); err == nil {
		for _, n := range names {
			cands = append(cands, filepath.Join("/run/netns", n.Name()))
		}
	}
	for _, p := range cands {
		if is(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("finding netns %d: neither pid %d (its threads, its fds) nor /run/netns leads to it", ino, pid)
}
