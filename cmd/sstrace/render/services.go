package render

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// Services maps ports to service names the way ss's resolve_service does:
// glibc getservbyport(3) over /etc/services (the first line naming the port
// for the protocol wins), except that ports inside the local ephemeral port
// range are never resolved.
//
// A nil *Services resolves nothing.
type Services struct {
	byProto map[string]map[uint16]string
	byPort  map[uint16]string // the first line of each port, whatever its protocol

	// Ports in [EphemeralMin, EphemeralMax] are never resolved (ss's
	// is_ephemeral). ParseServices leaves the range empty (0, -1);
	// LoadServices reads it from /proc/sys/net/ipv4/ip_local_port_range.
	EphemeralMin, EphemeralMax int
}

// Default ephemeral range ss assumes when ip_local_port_range cannot be read.
const (
	fallbackEphemeralMin = 1024
	fallbackEphemeralMax = 4999
)

// LoadServices parses the services file at path (normally /etc/services) and
// reads the ephemeral port range of the calling thread's network namespace,
// as ss does once per run.
func LoadServices(path string) (*Services, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading services: %w", err)
	}
	defer f.Close()
	s, err := ParseServices(f)
	if err != nil {
		return nil, fmt.Errorf("loading services from %s: %w", path, err)
	}
	s.EphemeralMin, s.EphemeralMax = EphemeralRange()
	return s, nil
}

// EphemeralRange returns the local port range ss keeps out of service
// resolution: /proc/sys/net/ipv4/ip_local_port_range of the calling thread's
// network namespace, or ss's fallback 1024-4999 when that cannot be read.
func EphemeralRange() (lo, hi int) {
	// /proc/sys/net shows the namespace of the thread that opens it.
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var a, z int
		if n, _ := fmt.Sscan(string(b), &a, &z); n == 2 {
			return a, z
		}
	}
	return fallbackEphemeralMin, fallbackEphemeralMax
}

// ParseServices parses services(5) text with glibc's rules: '#' starts a
// comment anywhere on a line; a line is "name port/proto [aliases...]"; the
// port is read like strtoul(3) in base 10 and truncated to 16 bits; lines
// that do not parse are skipped; for each (port, proto) the first line wins.
func ParseServices(r io.Reader) (*Services, error) {
	s := &Services{byProto: make(map[string]map[uint16]string), byPort: make(map[uint16]string), EphemeralMin: 0, EphemeralMax: -1}
	if err := eachLine(r, s.parseLine); err != nil {
		return nil, fmt.Errorf("reading services: %w", err)
	}
	return s, nil
}

// eachLine calls fn with every line of r, its newline included, however
// long.
func eachLine(r io.Reader, fn func(line []byte)) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			fn(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// splitEntry reads a services(5) or protocols(5) line as glibc does: the
// C string ends at a NUL, '#' starts a comment, and the entry is a name
// up to whitespace, then (the whitespace swallowed) the rest. ok is false
// for a line with no entry.
func splitEntry(line []byte) (name, rest []byte, ok bool) {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	for len(line) > 0 && isSpace(line[0]) {
		line = line[1:]
	}
	if i := bytes.IndexAny(line, "#\n"); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 {
		return nil, nil, false
	}
	i := 0
	for i < len(line) && !isSpace(line[i]) {
		i++
	}
	name = line[:i]
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	return name, line[i:], true
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func (s *Services) parseLine(line []byte) {
	name, line, ok := splitEntry(line)
	if !ok {
		return
	}
	// Port: strtoul(line, &end, 10).
	port, n := strtoul10(line)
	if n == 0 {
		return
	}
	line = line[n:]
	switch {
	case len(line) > 0 && line[0] == '/':
		line = line[1:]
	case len(line) > 0:
		return
	}
	// Protocol: up to whitespace.
	i := 0
	for i < len(line) && !isSpace(line[i]) {
		i++
	}
	proto := line[:i]
	m := s.byProto[string(proto)]
	if m == nil {
		m = make(map[uint16]string)
		s.byProto[string(proto)] = m
	}
	p := uint16(port)
	if _, dup := m[p]; !dup {
		m[p] = string(name)
	}
	if s.byPort == nil {
		s.byPort = make(map[uint16]string)
	}
	if _, dup := s.byPort[p]; !dup {
		s.byPort[p] = m[p]
	}
}

// strtoul10 mimics strtoul(b, &end, 10) on a string without leading
// whitespace: an optional sign, then decimal digits. It returns the value
// (ULONG_MAX on overflow, negated modulo 2^64 after a '-') and how many bytes
// were consumed, 0 when there are no digits.
func strtoul10(b []byte) (uint64, int) {
	i := 0
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v uint64
	overflow := false
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if v > (^uint64(0)-d)/10 {
			overflow = true
		}
		v = v*10 + d
		i++
	}
	if i == start {
		return 0, 0
	}
	if overflow {
		return ^uint64(0), i
	}
	if neg {
		v = -v
	}
	return v, i
}

// Lookup returns the name of the first services line for port/proto,
// regardless of the ephemeral range.
func (s *Services) Lookup(port uint16, proto string) (string, bool) {
	if s == nil {
		return "", false
	}
	name, ok := s.byProto[proto][port]
	return name, ok
}

// Name is ss's resolution of a non-zero port: no name for ports in the
// ephemeral range, else Lookup.
func (s *Services) Name(port uint16, proto string) (string, bool) {
	if s == nil || (int(port) >= s.EphemeralMin && int(port) <= s.EphemeralMax) {
		return "", false
	}
	return s.Lookup(port, proto)
}

// NameAny is ss's resolution of a non-zero port when it has no protocol to
// ask for (getservbyport(port, NULL)): no name in the ephemeral range, else
// the first services line with the port, whatever its protocol.
func (s *Services) NameAny(port uint16) (string, bool) {
	if s == nil || (int(port) >= s.EphemeralMin && int(port) <= s.EphemeralMax) {
		return "", false
	}
	name, ok := s.byPort[port]
	return name, ok
}

// Len is the number of (port, protocol) entries.
func (s *Services) Len() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, m := range s.byProto {
		n += len(m)
	}
	return n
}
