package symbol

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// mapEntry is one line of /proc/PID/maps.
type mapEntry struct {
	Start, End uint64
	Perms      string // "r-xp"
	Offset     uint64
	Major      uint32
	Minor      uint32
	Inode      uint64
	Path       string // as the kernel printed it, without " (deleted)"
	Deleted    bool
}

func (e *mapEntry) exec() bool { return len(e.Perms) >= 3 && e.Perms[2] == 'x' }

// String formats e the way the kernel does (modulo column padding), so that
// parseMaps(e.String()) gives e back.
func (e *mapEntry) String() string {
	s := fmt.Sprintf("%x-%x %s %08x %02x:%02x %d", e.Start, e.End, e.Perms, e.Offset, e.Major, e.Minor, e.Inode)
	if e.Path != "" || e.Deleted {
		s += " " + e.Path
		if e.Deleted {
			s += " (deleted)"
		}
	}
	return s
}

const deletedSuffix = " (deleted)"

// parseMaps parses the text of /proc/PID/maps. Blank lines are skipped; any
// other line that does not parse is an error naming its number.
func parseMaps(data []byte) ([]mapEntry, error) {
	var out []mapEntry
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := parseMapsLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// nextField cuts s at its first run of spaces.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func parseMapsLine(line string) (mapEntry, error) {
	var e mapEntry
	rng, rest := nextField(line)
	perms, rest := nextField(rest)
	off, rest := nextField(rest)
	dev, rest := nextField(rest)
	ino, rest := nextField(rest)
	lo, hi, ok := strings.Cut(rng, "-")
	if !ok {
		return e, fmt.Errorf("address range %q has no '-'", rng)
	}
	var err error
	if e.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return e, fmt.Errorf("start address %q: %w", lo, err)
	}
	if e.End, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return e, fmt.Errorf("end address %q: %w", hi, err)
	}
	if e.End <= e.Start {
		return e, fmt.Errorf("empty address range %q", rng)
	}
	if len(perms) != 4 {
		return e, fmt.Errorf("permissions %q are not 4 characters", perms)
	}
	e.Perms = perms
	if e.Offset, err = strconv.ParseUint(off, 16, 64); err != nil {
		return e, fmt.Errorf("offset %q: %w", off, err)
	}
	maj, min, ok := strings.Cut(dev, ":")
	if !ok {
		return e, fmt.Errorf("device %q has no ':'", dev)
	}
	m1, err := strconv.ParseUint(maj, 16, 32)
	if err != nil {
		return e, fmt.Errorf("device major %q: %w", maj, err)
	}
	m2, err := strconv.ParseUint(min, 16, 32)
	if err != nil {
		return e, fmt.Errorf("device minor %q: %w", min, err)
	}
	e.Major, e.Minor = uint32(m1), uint32(m2)
	if e.Inode, err = strconv.ParseUint(ino, 10, 64); err != nil {
		return e, fmt.Errorf("inode %q: %w", ino, err)
	}
	// The path is the rest after the padding; it may contain spaces.
	path := strings.TrimLeft(rest, " \t")
	if strings.HasSuffix(path, deletedSuffix) {
		path = strings.TrimSuffix(path, deletedSuffix)
		e.Deleted = true
	}
	if strings.ContainsAny(path, "\n\x00") {
		return e, errors.New("path has a newline or NUL")
	}
	e.Path = path
	return e, nil
}
