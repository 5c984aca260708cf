// Package nstest gives tests a network namespace of their own, so that the
// sockets they open (and the ss/sstrace processes they run) never touch the
// machine's namespaces. It needs root (CAP_SYS_ADMIN for unshare/setns).
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NS is a network namespace created for one test, with lo up.
type NS struct {
	fd    int
	inode uint64
}

// RequireRoot skips the test unless it runs as root (and not with -short).
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and a network namespace: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads BPF")
	}
}

// New creates a fresh network namespace with its loopback up. It is released
// when the test ends (once nothing else holds it).
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	ns, err := create()
	if err != nil {
		t.Fatalf("creating network namespace: %v", err)
	}
	t.Cleanup(func() { unix.Close(ns.fd) })
	return ns
}

func create() (*NS, error) {
	type result struct {
		ns  *NS
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it leaves the process's namespace
		// and so must die with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("opening /proc/thread-self/ns/net: %w", err)}
			return
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			ch <- result{err: fmt.Errorf("stat of netns: %w", err)}
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			unix.Close(fd)
			ch <- result{err: fmt.Errorf("bringing lo up: %w", err)}
			return
		}
		ch <- result{ns: &NS{fd: fd, inode: st.Ino}}
	}()
	r := <-ch
	return r.ns, r.err
}

// Inode is the namespace's inode number: the netns id the tracer filters on
// and the value sock_diag dumps inside it belong to.
func (ns *NS) Inode() uint64 { return ns.inode }

// Path names the namespace for tools that take one (nsenter --net=PATH).
func (ns *NS) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.fd) }

// Do runs fn on an OS thread switched into the namespace. Sockets fn creates
// and processes it starts (exec forks from the calling thread) live in the
// namespace. fn must not hand socket creation to other goroutines.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("opening current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering netns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with the goroutine.
			errc <- fmt.Errorf("leaving netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Output runs a command inside the namespace and returns its standard output.
// A non-zero exit is an error that carries the command's standard error.
func (ns *NS) Output(name string, args ...string) ([]byte, error) {
	var out []byte
	err := ns.Do(func() error {
		cmd := exec.Command(name, args...)
		var err error
		out, err = cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return fmt.Errorf("running %s %v: %w: %s", name, args, err, ee.Stderr)
		}
		if err != nil {
			return fmt.Errorf("running %s %v: %w", name, args, err)
		}
		return nil
	})
	return out, err
}

// KernelVersion is the running kernel's release (uname -r) and its
// major.minor as one number (6.1 -> 601): what tests ask when a kernel
// line behaves differently (a state bit, a helper, a sockopt).
func KernelVersion() (release string, version int) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", 0
	}
	release = unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(release, "%d.%d", &major, &minor)
	return release, major*100 + minor
}
