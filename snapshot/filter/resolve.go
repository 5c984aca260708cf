package filter

import (
	"sstrace/snapshot/procfs"

	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Resolver turns the names a filter may hold into numbers, as the libc
// calls ss makes do.
type Resolver interface {
	// Port is getservbyname(name, proto): a service's port. ss asks
	// for "udp" when udp sockets are listed and for "tcp" when tcp
	// sockets are (both by default), never for anything else.
	Port(name, proto string) (uint16, bool)
	// Host is gethostbyname2: a host name's addresses. The parser keeps
	// those of the family the filter reads (IPv4 first, then IPv6, when
	// no family is set).
	Host(name string) ([]netip.Addr, error)
}

// DeviceResolver is a Resolver that also knows network devices, for
// `dev NAME` and link:PROTO:DEVICE (ss's ll_name_to_index). Without it,
// devices can be given as numbers or ifN only.
type DeviceResolver interface {
	Device(name string) (index uint32, ok bool)
}

// CgroupResolver is a Resolver that also knows cgroups, for `cgroup
// PATH`: the cgroup v2 id (ss's get_cgroup2_id). Without it, `cgroup`
// is an error.
type CgroupResolver interface {
	Cgroup(path string) (id uint64, err error)
}

// EphemeralResolver is a Resolver that also knows the local port range
// (net.ipv4.ip_local_port_range) that `autobound` compares inet ports
// with. Without it, the range is read from /proc when a filter uses
// autobound, falling back to 1024-4999 as ss does.
type EphemeralResolver interface {
	EphemeralPorts() (lo, hi int32)
}

// ServicesResolver reads service names from a services(5) file, as
// glibc's getservbyname does with "services: files".
type ServicesResolver struct {
	ports map[[2]string]uint16 // {name, proto} → port; the first entry wins
	last  uint16
	any   bool
}

// NewServicesResolver reads path (normally /etc/services). Its Host
// knows no names.
func NewServicesResolver(path string) (*ServicesResolver, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &ServicesResolver{ports: map[[2]string]uint16{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.addLine(sc.Text())
	}
	return s, sc.Err()
}

// addLine parses one services(5) line as glibc's nss_files does:
// NAME PORT/PROTO [ALIAS...] [# comment].
func (s *ServicesResolver) addLine(line string) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return
	}
	num, proto, ok := strings.Cut(f[1], "/")
	if !ok || proto == "" {
		return
	}
	n := scanC(num, 10)
	if !n.ok || n.end != len(num) {
		return
	}
	v, _ := n.strtoul()
	port := uint16(v) // htons truncates
	for _, name := range append([]string{f[0]}, f[2:]...) {
		k := [2]string{name, proto}
		if _, dup := s.ports[k]; !dup {
			s.ports[k] = port
		}
	}
	s.last, s.any = port, true
}

// Port is getservbyname.
func (s *ServicesResolver) Port(name, proto string) (uint16, bool) {
	if s == nil {
		return 0, false
	}
	p, ok := s.ports[[2]string{name, proto}]
	return p, ok
}

// LastPort is the port of the file's last entry. glibc's getservbyname
// keeps its answer in a static buffer that a failed lookup leaves holding
// the last entry it read; ss (which asks udp, then tcp, and compares the
// two answers through that same buffer) thus filters a udp-only service
// name on that port when tcp sockets are listed too. The parser follows
// ss there when its Resolver has this method.
func (s *ServicesResolver) LastPort() (uint16, bool) {
	if s == nil {
		return 0, false
	}
	return s.last, s.any
}

// Host knows no host names.
func (s *ServicesResolver) Host(name string) ([]netip.Addr, error) {
	return nil, fmt.Errorf("no host name resolution")
}

// System is the resolver ss effectively uses: /etc/services, the system's
// host name resolution, the calling thread's network devices, the cgroup2
// hierarchy and its ip_local_port_range.
var System Resolver = &systemResolver{}

type systemResolver struct {
	once     sync.Once
	services *ServicesResolver
}

func (r *systemResolver) svc() *ServicesResolver {
	r.once.Do(func() { r.services, _ = NewServicesResolver("/etc/services") })
	return r.services
}

func (r *systemResolver) Port(name, proto string) (uint16, bool) { return r.svc().Port(name, proto) }
func (r *systemResolver) LastPort() (uint16, bool)               { return r.svc().LastPort() }

func (r *systemResolver) Host(name string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
}

func (r *systemResolver) Device(name string) (uint32, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, false
	}
	return uint32(ifi.Index), true
}

func (r *systemResolver) Cgroup(path string) (uint64, error) { return cgroup2ID(path) }

func (r *systemResolver) EphemeralPorts() (int32, int32) { return ephemeralPorts() }

// ephemeralPorts reads ip_local_port_range as ss's is_ephemeral does.
func ephemeralPorts() (int32, int32) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			lo, err1 := strconv.ParseInt(f[0], 10, 32)
			hi, err2 := strconv.ParseInt(f[1], 10, 32)
			if err1 == nil && err2 == nil && lo != 0 {
				return int32(lo), int32(hi)
			}
		}
	}
	return 1024, 4999
}

// cgroup2ID is iproute2's get_cgroup2_id: the 8-byte file handle of path
// (as given, relative to the working directory, then under the cgroup2
// mount).
func cgroup2ID(path string) (uint64, error) {
	id, err := handle8(unix.AT_FDCWD, path)
	if err == nil {
		return id, nil
	}
	rel := strings.TrimLeft(path, "/")
	if rel == "" {
		return 0, errors.New("invalid cgroup2 path")
	}
	mnt, err := procfs.FirstCgroup2Mount()
	if err != nil {
		return 0, err
	}
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening the cgroup2 mount %s: %w", mnt, err)
	}
	defer unix.Close(fd)
	id, err = handle8(fd, rel)
	if err != nil {
		return 0, fmt.Errorf("no cgroup %s under %s: %w", rel, mnt, err)
	}
	return id, nil
}

// handle8 is name_to_handle_at with ss's 8-byte buffer: a larger handle
// fails as EOVERFLOW does there.
func handle8(dirfd int, path string) (uint64, error) {
	h, _, err := unix.NameToHandleAt(dirfd, path, 0)
	if err != nil {
		return 0, err
	}
	b := h.Bytes()
	if len(b) != 8 {
		return 0, unix.EOVERFLOW
	}
	return binary.NativeEndian.Uint64(b), nil
}
