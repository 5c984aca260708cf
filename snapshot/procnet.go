package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// ParseProcNet parses the text of /proc/net/raw (family unix.AF_INET) or
// /proc/net/raw6 (unix.AF_INET6), which also is the layout of the first
// columns of /proc/net/udp{,6} and /proc/net/tcp{,6}:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//	 220: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 538766 ...
//
// It returns one row per line after the header with what ss's
// dgram_show_line takes from it: state, addresses and ports, tx_queue as
// SendQ, rx_queue as RecvQ, uid and inode; every other field is zero (Type
// and Protocol too: the caller knows the table). Addresses are hex words
// of the kernel's memory as the kernel prints them (%08X of each __be32),
// so they are read back in host order, as ss does.
//
// ss reads with fgets into 256 bytes and stops at the first line it cannot
// split; ParseProcNet, which takes any line length, returns an error naming
// the line instead.
func ParseProcNet(b []byte, family uint8) ([]Socket, error) {
	var addrLen int
	switch family {
	case unix.AF_INET:
		addrLen = 8
	case unix.AF_INET6:
		addrLen = 32
	default:
		return nil, fmt.Errorf("parsing /proc/net table: unsupported address family %d", family)
	}
	// The header.
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if len(b) == 0 {
			return nil, nil
		}
		return nil, errors.New("parsing /proc/net table: header line without a newline")
	}
	b = b[nl+1:]
	var out []Socket
	for lineNo := 2; len(b) > 0; lineNo++ {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("parsing /proc/net table line %d: no newline at its end", lineNo)
		}
		line := b[:nl]
		b = b[nl+1:]
		s, err := parseProcNetLine(line, family, addrLen)
		if err != nil {
			return nil, fmt.Errorf("parsing /proc/net table line %d %q: %w", lineNo, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseProcNetLine parses one line after the header.
func parseProcNetLine(line []byte, family uint8, addrLen int) (Socket, error) {
	// The fields ss reads: "sl:" local remote st tx:rx tr:when retrnsmt
	// uid timeout inode; more follow (ref, pointer, drops for raw/udp).
	var f [10][]byte
	n := 0
	for rest := line; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
	}
	if n < len(f) {
		return Socket{}, fmt.Errorf("%d fields, want at least %d", n, len(f))
	}
	if len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return Socket{}, fmt.Errorf("slot %q does not end in ':'", f[0])
	}
	s := Socket{Family: family}
	var err error
	if s.Local, err = parseProcAddr(f[1], family, addrLen); err != nil {
		return Socket{}, fmt.Errorf("local address: %w", err)
	}
	if s.Peer, err = parseProcAddr(f[2], family, addrLen); err != nil {
		return Socket{}, fmt.Errorf("remote address: %w", err)
	}
	st, err := parseHex(f[3], 2)
	if err != nil {
		return Socket{}, fmt.Errorf("state: %w", err)
	}
	s.State = uint8(st)
	tx, rx, ok := bytes.Cut(f[4], []byte{':'})
	if !ok {
		return Socket{}, fmt.Errorf("queues %q: no ':'", f[4])
	}
	if s.SendQ, err = parseHex(tx, 8); err != nil {
		return Socket{}, fmt.Errorf("tx_queue: %w", err)
	}
	if s.RecvQ, err = parseHex(rx, 8); err != nil {
		return Socket{}, fmt.Errorf("rx_queue: %w", err)
	}
	uid, err := strconv.ParseUint(string(f[7]), 10, 32)
	if err != nil {
		return Socket{}, fmt.Errorf("uid: %w", err)
	}
	s.UID = uint32(uid)
	ino, err := strconv.ParseUint(string(f[9]), 10, 32)
	if err != nil {
		return Socket{}, fmt.Errorf("inode: %w", err)
	}
	s.Inode = uint32(ino)
	return s, nil
}

// parseProcAddr parses "0100007F:0016" (v4) or 32 hex digits and a port
// (v6).
func parseProcAddr(b []byte, family uint8, addrLen int) (netip.AddrPort, error) {
	if len(b) != addrLen+5 || b[addrLen] != ':' {
		return netip.AddrPort{}, fmt.Errorf("%q is not %d hex digits, ':' and a 4-digit port", b, addrLen)
	}
	port, err := parseHex(b[addrLen+1:], 4)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port: %w", err)
	}
	var a [16]byte
	for i := 0; i < addrLen/8; i++ {
		w, err := parseHex(b[8*i:8*i+8], 8)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address: %w", err)
		}
		binary.NativeEndian.PutUint32(a[4*i:], w)
	}
	if family == unix.AF_INET {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), uint16(port)), nil
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(port)), nil
}

// parseHex parses 1 to max hex digits.
func parseHex(b []byte, max int) (uint32, error) {
	if len(b) == 0 || len(b) > max {
		return 0, fmt.Errorf("%q is not 1 to %d hex digits", b, max)
	}
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, fmt.Errorf("%q is not hex", b)
		}
		v = v<<4 | uint32(c)
	}
	return v, nil
}

// readProcNetRaw reads the raw sockets of one family from
// /proc/thread-self/net/raw{,6}: those of the calling thread's network
// namespace, whatever namespace the process's main thread is in. A missing
// raw6 (no IPv6) lists nothing, as for ss.
func readProcNetRaw(dst []Socket, family uint8, states uint32) ([]Socket, error) {
	name := "raw"
	if family == unix.AF_INET6 {
		name = "raw6"
	}
	path := "/proc/thread-self/net/" + name
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	netns, err := NetNSInode()
	if err != nil {
		return dst, fmt.Errorf("reading %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if family == unix.AF_INET6 && errors.Is(err, fs.ErrNotExist) {
			return dst, nil
		}
		return dst, fmt.Errorf("reading raw sockets: %w", err)
	}
	socks, err := ParseProcNet(b, family)
	if err != nil {
		return dst, fmt.Errorf("reading %s: %w", path, err)
	}
	for _, s := range socks {
		// dgram_show_line keeps the states asked.
		if s.State >= 32 || states&(1<<s.State) == 0 {
			continue
		}
		s.Type = unix.SOCK_RAW
		s.Protocol = 0 // ss's type for these rows: it names them "raw"
		s.NetNS = netns
		dst = append(dst, s)
	}
	return dst, nil
}
