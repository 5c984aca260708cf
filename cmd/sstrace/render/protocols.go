package render

import (
	"fmt"
	"io"
	"os"
)

// Protocols maps IP protocol numbers to names the way glibc's
// getprotobynumber(3) does over /etc/protocols (its files backend: the
// first line with the number wins). ss names the "port" of a raw socket,
// its protocol number, with it.
//
// A nil *Protocols names nothing.
type Protocols struct {
	byNum map[int]string
}

// LoadProtocols parses the protocols file at path (normally
// /etc/protocols).
func LoadProtocols(path string) (*Protocols, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading protocols: %w", err)
	}
	defer f.Close()
	p, err := ParseProtocols(f)
	if err != nil {
		return nil, fmt.Errorf("loading protocols from %s: %w", path, err)
	}
	return p, nil
}

// ParseProtocols parses protocols(5) text with glibc's rules: '#' starts a
// comment anywhere on a line; a line is "name number [aliases...]"; the
// number is read like strtoul(3) in base 10, must end at whitespace or the
// end of the line, and is truncated to an int; lines that do not parse are
// skipped; for each number the first line wins.
func ParseProtocols(r io.Reader) (*Protocols, error) {
	p := &Protocols{byNum: make(map[int]string)}
	if err := eachLine(r, p.parseLine); err != nil {
		return nil, fmt.Errorf("reading protocols: %w", err)
	}
	return p, nil
}

func (p *Protocols) parseLine(line []byte) {
	name, line, ok := splitEntry(line)
	if !ok {
		return
	}
	v, n := strtoul10(line)
	if n == 0 || (n < len(line) && !isSpace(line[n])) {
		return
	}
	num := int(int32(v))
	if _, dup := p.byNum[num]; !dup {
		p.byNum[num] = string(name)
	}
}

// Name returns the name of protocol number n, if the file has one.
func (p *Protocols) Name(n int) (string, bool) {
	if p == nil {
		return "", false
	}
	name, ok := p.byNum[n]
	return name, ok
}
