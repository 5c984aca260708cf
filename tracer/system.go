package tracer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

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

// requireCaps returns one clear error naming the missing capabilities.
func requireCaps(need []int) error {
	missing := MissingCaps(need)
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: loading BPF programs needs %s (run as root or grant them)",
		ErrPermission, strings.Join(missing, ", "))
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

// NetNSCookie is the kernel's cookie for a network namespace: what the BPF
// programs compare against. path names the namespace (/proc/PID/ns/net,
// /run/netns/NAME); "" means this thread's own.
func NetNSCookie(path string) (uint64, error) {
	if path == "" {
		return netnsCookieHere()
	}
	var c uint64
	err := InNetNS(path, func() (err error) {
		c, err = netnsCookieHere()
		return err
	})
	return c, err
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

func netnsCookieHere() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("reading network namespace cookie: socket: %w", err)
	}
	defer unix.Close(fd)
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("reading network namespace cookie: getsockopt SO_NETNS_COOKIE: %w", err)
	}
	return c, nil
}
