package filter

// C library number parsing as iproute2 and glibc do it, so that a filter
// accepts exactly the numbers ss accepts (hex 0x.., octal 0.., signs,
// leading whitespace).

import "math"

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func digitVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// cNum is the result of C's strtoul/strtol scanning.
type cNum struct {
	neg      bool
	mag      uint64 // magnitude, saturated at MaxUint64
	overflow bool   // the magnitude did not fit 64 bits
	end      int    // index after the number; 0 if there were no digits
	ok       bool   // there were digits
}

// scanC scans s as strtoul/strtol do with the given base (0: 0x hex, 0
// octal, else decimal).
func scanC(s string, base int) cNum {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	var r cNum
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		r.neg = s[i] == '-'
		i++
	}
	if (base == 0 || base == 16) && i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && digitVal(s[i+2]) < 16 {
		i += 2
		base = 16
	} else if base == 0 {
		if i < len(s) && s[i] == '0' {
			base = 8
		} else {
			base = 10
		}
	}
	start := i
	for i < len(s) && digitVal(s[i]) < base {
		d := uint64(digitVal(s[i]))
		if r.mag > (math.MaxUint64-d)/uint64(base) {
			r.overflow = true
			r.mag = math.MaxUint64
		} else if !r.overflow {
			r.mag = r.mag*uint64(base) + d
		}
		i++
	}
	if i == start {
		return cNum{}
	}
	r.ok, r.end = true, i
	return r
}

// strtoul is C's strtoul: the value (negated modulo 2^64 after a '-',
// ULONG_MAX on overflow) and whether it overflowed.
func (n cNum) strtoul() (uint64, bool) {
	if n.overflow {
		return math.MaxUint64, true
	}
	if n.neg {
		return -n.mag, false
	}
	return n.mag, false
}

// strtol is C's strtol on a 64-bit long, saturating with ERANGE.
func (n cNum) strtol() (int64, bool) {
	if n.neg {
		if n.overflow || n.mag > 1<<63 {
			return math.MinInt64, true
		}
		return int64(-n.mag), false
	}
	if n.overflow || n.mag > math.MaxInt64 {
		return math.MaxInt64, true
	}
	return int64(n.mag), false
}

// getInteger is iproute2's get_integer(…, base 0): the whole string an
// int.
func getInteger(s string) (int32, bool) {
	n := scanC(s, 0)
	if !n.ok || n.end != len(s) {
		return 0, false
	}
	v, erange := n.strtol()
	if erange || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

// getUnsigned is iproute2's get_unsigned / get_u32 (base 0): the whole
// string an unsigned int.
func getUnsigned(s string, base int) (uint32, bool) {
	n := scanC(s, base)
	if !n.ok || n.end != len(s) {
		return 0, false
	}
	v, erange := n.strtoul()
	if erange || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// getU16 is iproute2's get_u16 (base 0).
func getU16(s string) (uint16, bool) {
	v, ok := getUnsigned(s, 0)
	if !ok || v > math.MaxUint16 {
		return 0, false
	}
	return uint16(v), true
}

// scanfInt is sscanf's %i: an int (strtol, truncated to 32 bits) at the
// start of s, and what follows it.
func scanfInt(s string) (v uint32, rest string, ok bool) {
	n := scanC(s, 0)
	if !n.ok {
		return 0, s, false
	}
	l, _ := n.strtol()
	return uint32(l), s[n.end:], true
}

// scanfUint10 is sscanf's %u: strtoul base 10 truncated to unsigned int.
func scanfUint10(s string) (uint32, bool) {
	n := scanC(s, 10)
	if !n.ok {
		return 0, false
	}
	v, _ := n.strtoul()
	return uint32(v), true
}
