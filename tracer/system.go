package tracer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Capabilities, numbered as in linux/capability.h.
const (
	capNetAdmin    = 12
	capSysAdmin    = 21
	capSysResource = 24
	capPerfmon     = 38
	capBPF         = 39
)

var capNames = map[int]string{
	capNetAdmin:    "CAP_NET_ADMIN",
	capSysAdmin:    "CAP_SYS_ADMIN",
	capSysResource: "CAP_SYS_RESOURCE",
	capPerfmon:     "CAP_PERFMON",
	capBPF:         "CAP_BPF",
}

// What loading and attaching needs: BPF objects (CAP_BPF), tracing programs
// and stacks (CAP_PERFMON), cgroup attachment (CAP_NET_ADMIN). CAP_SYS_ADMIN
// stands in for all of them.
var (
	capsTrace = []int{capBPF, capPerfmon, capNetAdmin}
	capsIter  = []int{capBPF, capPerfmon}
)

// ErrPermission wraps failures that come from missing privileges.
var ErrPermission = errors.New("permission denied")

// CheckPrivileges returns the error Open would fail with first for want of
// capabilities, without loading anything: a command that starts the tracer
// in the background (watch) says so before it prints anything.
func CheckPrivileges() error { return requireCaps(capsTrace) }

// MissingTraceCaps names the capabilities Open needs that this process
// lacks (none when it may trace).
func MissingTraceCaps() []string { return MissingCaps(capsTrace) }

// PrivilegeError is the refusal, before anything is loaded, of a process
// that lacks capabilities BPF needs: unlike an EPERM from the kernel
// (lockdown, say), which is also ErrPermission, it says nothing about
// what the kernel allows.
type PrivilegeError struct {
	Missing []string // capability names, CAP_BPF ...
}

func (e *PrivilegeError) Error() string {
	return ErrPermission.Error() + ": loading BPF programs needs " + strings.Join(e.Missing, ", ") + " (run as root or grant them)"
}

// Is makes a PrivilegeError an ErrPermission.
func (e *PrivilegeError) Is(target error) bool { return target == ErrPermission }

// IsUnprivileged tells whether err is, or wraps, a PrivilegeError.
func IsUnprivileged(err error) bool {
	var pe *PrivilegeError
	return errors.As(err, &pe)
}

// requireCaps returns one clear error naming the missing capabilities.
func requireCaps(need []int) error {
	missing := MissingCaps(need)
	if len(missing) == 0 {
		return nil
	}
	return &PrivilegeError{Missing: missing}
}

// MissingCaps names the capabilities of need that this process lacks in its
// effective set (none if it has CAP_SYS_ADMIN, which covers them on 5.8+).
func MissingCaps(need []int) []string {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil // cannot tell; let the kernel say no
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(uint(c)%32)) != 0 }
	if has(capSysAdmin) {
		return nil
	}
	var missing []string
	for _, c := range need {
		if !has(c) {
			missing = append(missing, capNames[c])
		}
	}
	return missing
}

func explainPerm(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// ensureTracefs makes sure tracefs is reachable: classic tracepoints are
// found by their id under events/. If it is not mounted, it is mounted at
// its standard place (what systemd does at boot); that mount stays.
func ensureTracefs() error {
	for _, p := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: %w", err)
	}
	return nil
}

// NetNS names a network namespace the two ways the BPF programs compare
// one: by inode (hooks that read the socket) and by cookie (the release
// hook, which sees only a struct bpf_sock). The zero value means every
// namespace.
type NetNS struct {
	Inode  uint32
	Cookie uint64
}

// LookupNetNS names the network namespace at path (/proc/PID/ns/net,
// /run/netns/NAME); "" means this thread's own.
func LookupNetNS(path string) (NetNS, error) {
	var ns NetNS
	err := inNetNSOrHere(path, func() (err error) {
		if ns.Inode, err = NetNSInode(""); err != nil {
			return err
		}
		ns.Cookie, err = netnsCookieHere()
		return err
	})
	return ns, err
}

func inNetNSOrHere(path string, fn func() error) error {
	if path == "" {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return fn()
	}
	return InNetNS(path, fn)
}

// InNetNS runs fn on an OS thread switched into the network namespace at
// path, and switches back. Sockets fn opens (a sock_diag dump's netlink
// socket, say) belong to that namespace. If switching back fails the
// thread is never unlocked, so it dies instead of serving other goroutines
// in the wrong namespace.
func InNetNS(path string, fn func() error) error {
	nsfd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer unix.Close(nsfd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("opening own network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leaving network namespace %s: %w", path, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// How a network namespace's cookie is read (ProbeNetNSCookie).
const (
	NetNSCookieSockopt = "getsockopt SO_NETNS_COOKIE"
	NetNSCookieBPF     = HookSockCreate + " probe (bpf_get_netns_cookie)"
)

// ProbeNetNSCookie reads the cookie of the caller's network namespace and
// says how: NetNSCookieSockopt (5.14+) or NetNSCookieBPF.
func ProbeNetNSCookie() (how string, err error) {
	err = inNetNSOrHere("", func() (err error) {
		_, how, err = netnsCookieVia()
		return err
	})
	return how, err
}

// netnsCookieHere reads the cookie of the calling thread's network
// namespace (the caller locks the thread).
func netnsCookieHere() (uint64, error) {
	c, _, err := netnsCookieVia()
	return c, err
}

// netnsCookieVia is netnsCookieHere saying how it was read:
// getsockopt(SO_NETNS_COOKIE) where the kernel has it (5.14+), else from a
// BPF program that sees a socket made here.
func netnsCookieVia() (uint64, string, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, "", fmt.Errorf("reading network namespace cookie: socket: %w", err)
	}
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	unix.Close(fd)
	if err == nil {
		return c, NetNSCookieSockopt, nil
	}
	if !errors.Is(err, unix.ENOPROTOOPT) {
		return 0, "", fmt.Errorf("reading network namespace cookie: getsockopt SO_NETNS_COOKIE: %w", err)
	}
	c, perr := netnsCookieBPF()
	if perr != nil {
		return 0, "", fmt.Errorf("reading network namespace cookie: getsockopt SO_NETNS_COOKIE: %w (before 5.14), and from BPF: %w", err, perr)
	}
	return c, NetNSCookieBPF, nil
}

// netnsCookieBPF learns the calling thread's network namespace cookie from
// the netns_probe program: attached to socket creation, it records
// bpf_get_netns_cookie for the socket this thread makes (an inet one: the
// hook runs only for those), then is detached.
func netnsCookieBPF() (uint64, error) {
	if err := requireCaps(capsTrace); err != nil {
		return 0, err
	}
	if err := removeMemlock(); err != nil {
		return 0, err
	}
	tid := uint32(unix.Gettid())
	s := newSpecs(map[string]any{"probe_tid": tid})
	spec, err := s.get(ObjectCORE)
	if err != nil {
		return 0, err
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"netns_probe"`
		Out  *ebpf.Map     `ebpf:"netns_probe_out"`
	}
	one := spec.Copy()
	one.Programs = map[string]*ebpf.ProgramSpec{"netns_probe": spec.Programs["netns_probe"]}
	if err := one.LoadAndAssign(&objs, nil); err != nil {
		return 0, fmt.Errorf("loading %s probe: %w", HookSockCreate, explainPerm(err))
	}
	defer objs.Prog.Close()
	defer objs.Out.Close()
	l, err := attachCgroup(objs.Prog, ebpf.AttachCGroupInetSockCreate)
	if err != nil {
		return 0, fmt.Errorf("attaching %s probe: %w", HookSockCreate, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	l.Close()
	if err != nil {
		return 0, fmt.Errorf("making a probe socket: %w", err)
	}
	unix.Close(fd)
	var c uint64
	if err := objs.Out.Lookup(uint32(0), &c); err != nil {
		return 0, fmt.Errorf("reading the probe's cookie: %w", err)
	}
	if c == 0 {
		return 0, errors.New("the probe saw no socket")
	}
	return c, nil
}

// removeMemlock lifts RLIMIT_MEMLOCK where BPF maps count against it
// (before 5.11; later kernels charge them to the memory cgroup and this
// does nothing).
var removeMemlock = sync.OnceValue(func() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps (before 5.11 they count against it): %w", err)
	}
	return nil
})

// NetNSInode is the inode of the network namespace at path ("" for this
// thread's own): all the fd iterator needs to keep to one namespace, and
// readable on every kernel.
func NetNSInode(path string) (uint32, error) {
	var ino uint32
	err := inNetNSOrHere(path, func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return fmt.Errorf("reading network namespace inode: %w", err)
		}
		ino = uint32(st.Ino)
		return nil
	})
	return ino, err
}
