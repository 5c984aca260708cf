package filter

// fnmatch(3) as ss calls it on unix socket names: glibc's, in the C locale
// (ss never calls setlocale), with FNM_CASEFOLD and no other flag — so '*'
// and '?' match '/' and a leading '.', a backslash quotes the next
// character, and letters match either case. It allocates nothing.

func fold(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// fnmatch reports whether name matches pattern.
func fnmatch(pattern, name string) bool {
	return fnm(pattern, name, 0, 0, nil)
}

// starEnd is glibc's struct STRUCT: where a nested match met its next
// '*'. glibc then resumes the outer match from there instead of
// backtracking further, which keeps matching linear in practice; the
// result is the same as a full backtracking match.
type starEnd struct {
	p, s int
	set  bool
}

// fnm matches p[pi:] against s[si:]. A non-nil e means this is a nested
// match after a '*': reaching another '*' ends it successfully, with e
// saying where.
func fnm(p, s string, pi, si int, e *starEnd) bool {
	for pi < len(p) {
		c := fold(p[pi])
		pi++
		switch c {
		case '?':
			if si == len(s) {
				return false
			}
			si++
		case '\\':
			if pi == len(p) {
				return false // a trailing backslash never matches
			}
			c = fold(p[pi])
			pi++
			if si == len(s) || fold(s[si]) != c {
				return false
			}
			si++
		case '*':
			if e != nil {
				e.p, e.s, e.set = pi-1, si, true
				return true
			}
			for pi < len(p) && (p[pi] == '?' || p[pi] == '*') {
				if p[pi] == '?' {
					if si == len(s) {
						return false
					}
					si++
				}
				pi++
			}
			if pi == len(p) {
				return true
			}
			var end starEnd
			found := false
			if p[pi] == '[' {
				for n := si; n < len(s); n++ {
					if fnm(p, s, pi, n, &end) {
						found = true
						break
					}
				}
			} else {
				c1 := p[pi]
				if c1 == '\\' {
					c1 = at(p, pi+1)
				}
				c1 = fold(c1)
				for n := si; n < len(s); n++ {
					if fold(s[n]) == c1 && fnm(p, s, pi, n, &end) {
						found = true
						break
					}
				}
			}
			if !found {
				return false
			}
			if !end.set {
				return true
			}
			pi, si = end.p, end.s
		case '[':
			if si == len(s) {
				return false
			}
			matched, next, literal := bracket(p, pi, s[si])
			switch {
			case literal:
				// An unterminated '[' is an ordinary character.
				if fold(s[si]) != '[' {
					return false
				}
			case !matched:
				return false
			default:
				pi = next
			}
			si++
		default:
			if si == len(s) || fold(s[si]) != c {
				return false
			}
			si++
		}
	}
	return si == len(s)
}

// charClass reports whether c is in the named POSIX class (C locale); ok
// is false for an unknown class name.
func charClass(name string, c byte) (in, ok bool) {
	switch name {
	case "alnum":
		return isAlpha(c) || isDigit(c), true
	case "alpha":
		return isAlpha(c), true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < 0x20 || c == 0x7f, true
	case "digit":
		return isDigit(c), true
	case "graph":
		return c > 0x20 && c < 0x7f, true
	case "lower":
		return 'a' <= c && c <= 'z', true
	case "print":
		return c >= 0x20 && c < 0x7f, true
	case "punct":
		return c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c), true
	case "space":
		return isCSpace(c), true
	case "upper":
		return 'A' <= c && c <= 'Z', true
	case "xdigit":
		return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F'), true
	}
	return false, false
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// charClassMax is glibc's CHAR_CLASS_MAX_LENGTH.
const charClassMax = 256

// at is p[i], or NUL past the end (C strings end in NUL).
func at(p string, i int) byte {
	if i < len(p) {
		return p[i]
	}
	return 0
}

// bracket matches the character n against the bracket expression whose
// '[' is just before p[start], as glibc's fnmatch does. It returns
// whether n matched (with the pattern index after the closing ']'), or
// literal when the '[' is unterminated and n did not match anything in it,
// in which case glibc takes the '[' as an ordinary character.
func bracket(p string, start int, n byte) (matched bool, next int, literal bool) {
	i := start
	not := at(p, i) == '!' || at(p, i) == '^'
	if not {
		i++
	}
	fn := fold(n)
	c := at(p, i)
	i++
	for {
		var cold byte
		isRange := false
		switch {
		case c == '\\':
			if at(p, i) == 0 {
				return false, 0, false
			}
			c = fold(at(p, i))
			i++
			isRange = at(p, i) == '-' && at(p, i+1) != 0 && at(p, i+1) != ']'
			if !isRange && c == fn {
				goto matched
			}
			cold = c
			c = at(p, i)
			i++
		case c == '[' && at(p, i) == ':':
			startp := i
			j := i
			var name []byte
			var buf [charClassMax]byte
			name = buf[:0]
			isClass := true
			for {
				if len(name) == charClassMax {
					return false, 0, false
				}
				j++
				cc := at(p, j)
				if cc == ':' && at(p, j+1) == ']' {
					j += 2
					break
				}
				if cc < 'a' || cc >= 'z' {
					isClass = false
					break
				}
				name = append(name, cc)
			}
			if !isClass {
				// Not a class name: an ordinary '['.
				i = startp
				c = '['
				isRange = at(p, i) == '-' && at(p, i+1) != 0 && at(p, i+1) != ']'
				if !isRange && c == fn {
					goto matched
				}
				cold = c
				c = at(p, i)
				i++
				break
			}
			in, ok := charClass(string(name), n)
			if !ok {
				return false, 0, false
			}
			i = j
			if in {
				goto matched
			}
			c = at(p, i)
			i++
			goto checkEnd
		case c == 0:
			return false, 0, true
		case c == '[' && at(p, i) == '.':
			sym, j, ok := collatingSymbol(p, i)
			if !ok {
				return false, 0, false
			}
			i = j
			isRange = at(p, i) == '-' && at(p, i+1) != 0
			if !isRange && n == sym {
				goto matched
			}
			cold = sym
			c = at(p, i)
			i++
		case c == '[' && at(p, i) == '=' && at(p, i+1) != 0 && at(p, i+2) == '=' && at(p, i+3) == ']':
			// An equivalence class: in the C locale [=x=] is x
			// (a malformed one is an ordinary '[', below).
			str := at(p, i+1)
			i += 4
			if n == str {
				goto matched
			}
			c = at(p, i)
			i++
			goto checkEnd
		default:
			c = fold(c)
			isRange = at(p, i) == '-' && at(p, i+1) != 0 && at(p, i+1) != ']'
			if !isRange && c == fn {
				goto matched
			}
			cold = c
			c = at(p, i)
			i++
		}
		if c == '-' && at(p, i) != ']' {
			cend := at(p, i)
			i++
			if cend == '[' && at(p, i) == '.' {
				// A collating symbol ends the range.
				sym, j, ok := collatingSymbol(p, i)
				if !ok {
					return false, 0, false
				}
				cend = sym
				i = j
			} else {
				if cend == '\\' {
					cend = at(p, i)
					i++
				}
				if cend == 0 {
					return false, 0, false
				}
				cend = fold(cend)
			}
			if cold <= fn && fn <= cend {
				goto matched
			}
			c = at(p, i)
			i++
		}
	checkEnd:
		if c == ']' {
			break
		}
	}
	if !not {
		return false, 0, false
	}
	return true, i, false

matched:
	// Skip the rest of the bracket expression.
	for {
		c = at(p, i)
		i++
		if c == ']' {
			break
		}
		switch {
		case c == 0:
			return false, 0, true
		case c == '\\':
			if at(p, i) == 0 {
				return false, 0, true
			}
			i++
		case c == '[' && at(p, i) == ':':
			j := i
			k := 0
			valid := true
			for {
				j++
				k++
				if k == charClassMax {
					return false, 0, false
				}
				if at(p, j) == ':' && at(p, j+1) == ']' {
					break
				}
				if cc := at(p, j); cc < 'a' || cc >= 'z' {
					valid = false
					break
				}
			}
			if valid {
				i = j + 2
			}
		case c == '[' && at(p, i) == '=':
			i++
			if at(p, i) == 0 {
				return false, 0, false
			}
			i++
			if at(p, i) != '=' || at(p, i+1) != ']' {
				return false, 0, false
			}
			i += 2
		case c == '[' && at(p, i) == '.':
			j := i
			for {
				j++
				if at(p, j) == 0 {
					return false, 0, false
				}
				if at(p, j) == '.' && at(p, j+1) == ']' {
					break
				}
			}
			i = j + 2
		}
	}
	if not {
		return false, 0, false
	}
	return true, i, false
}

// collatingSymbol reads the collating symbol whose '.' is at p[i] (its '['
// just before): in the C locale only [.x.] of a single character. It
// returns the character and the index just past the closing "].". ok is
// false for an unterminated or longer symbol, which fails the match.
func collatingSymbol(p string, i int) (sym byte, next int, ok bool) {
	j := i
	for {
		j++
		cc := at(p, j)
		if cc == '.' && at(p, j+1) == ']' {
			j += 2
			break
		}
		if cc == 0 {
			return 0, 0, false
		}
	}
	if j-i != 4 {
		return 0, 0, false
	}
	return p[i+1], j, true
}
