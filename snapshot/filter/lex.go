package filter

import (
	"fmt"
	"strconv"
	"strings"
)

// tokKind is what ss's yylex (misc/ssfilter.y) makes of a word.
type tokKind uint8

const (
	tEOF   tokKind = iota
	tValue         // anything that is not a keyword: an address, port, device, mark or cgroup
	tNot           // ! not
	tAnd           // & && and
	tOr            // | || or
	tLParen
	tRParen
	tSrc
	tDst
	tSport
	tDport
	tDev
	tFwmark
	tCgroup
	tAutobound
	tEq // = == eq
	tNe // != ne neq
	tLt // < lt
	tLe // <= le leq
	tGt // > gt
	tGe // >= ge geq
)

// keywords are ss's reserved words, compared byte for byte (case matters:
// "AND" is a value). A word that is one of these is never a value, even
// when backslash-escaped or where a value is expected: ss's lexer decides
// on the word alone.
var keywords = map[string]tokKind{
	"!": tNot, "not": tNot,
	"&": tAnd, "&&": tAnd, "and": tAnd,
	"|": tOr, "||": tOr, "or": tOr,
	"(": tLParen, ")": tRParen,
	"dst": tDst, "src": tSrc, "dport": tDport, "sport": tSport,
	"dev": tDev, "fwmark": tFwmark, "cgroup": tCgroup, "autobound": tAutobound,
	">=": tGe, "ge": tGe, "geq": tGe,
	"<=": tLe, "le": tLe, "leq": tLe,
	"!=": tNe, "ne": tNe, "neq": tNe,
	"=": tEq, "==": tEq, "eq": tEq,
	">": tGt, "gt": tGt,
	"<": tLt, "lt": tLt,
}

func isKeyword(s string) bool {
	_, ok := keywords[s]
	return ok
}

// token is one word of the filter.
type token struct {
	kind tokKind
	text string // the word, backslash escapes removed
	pos  int    // 1-based index among all the filter's words
	// Where the word came from: argument number (1-based) or, with file
	// set, line number of the filter file; col is its 1-based byte column
	// there. whole: the word is its whole argument.
	src   int
	col   int
	file  bool
	whole bool
}

// where describes a token's origin for error messages; "" for a word that
// is a whole argument.
func (t token) where() string {
	switch {
	case t.kind == tEOF:
		return ""
	case t.file:
		return fmt.Sprintf("filter file line %d column %d", t.src, t.col)
	case t.whole:
		return ""
	default:
		return fmt.Sprintf("argument %d column %d", t.src, t.col)
	}
}

// splitWords splits one argument or file line into words as ss's
// get_token_from_line does: words are separated by spaces and tabs only
// (no other whitespace), and a backslash takes the next byte literally
// (a space, a tab, a backslash) and is dropped; a backslash at the end is
// dropped too, so that a lone "\" is an empty word.
func splitWords(line string, emit func(word string, col int)) {
	i := 0
	var b strings.Builder
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i >= len(line) {
			return
		}
		start := i
		b.Reset()
		escaped := false
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			if line[i] == '\\' {
				escaped = true
				i++
				if i >= len(line) {
					break
				}
			}
			b.WriteByte(line[i])
			i++
		}
		word := line[start:i]
		if escaped {
			word = b.String()
		}
		emit(word, start+1)
	}
}

// cString is s up to its first NUL, as C sees an argument.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// lexer accumulates the words of the command-line arguments, then of the
// filter file, numbering them as they come (ss's yylex reads the
// arguments first, then the file).
type lexer struct {
	toks []token
}

func (l *lexer) add(word string, src, col int, file, whole bool) {
	k, ok := keywords[word]
	if !ok {
		k = tValue
	}
	l.toks = append(l.toks, token{kind: k, text: word, pos: len(l.toks) + 1, src: src, col: col, file: file, whole: whole})
}

func (l *lexer) args(args []string) {
	for i, a := range args {
		a = cString(a)
		splitWords(a, func(w string, col int) {
			l.add(w, i+1, col, false, col == 1 && len(w) == len(a))
		})
	}
}

// ssLineMax is the size of ss's line buffer (fgets into char[1024]): a
// line, newline included, must be shorter than 1023 bytes.
const ssLineMax = 1024

// file reads the filter file as ss does: line by line (in fgets chunks of
// at most 1023 bytes), skipping lines that start with '#' — and, an ss
// quirk kept here, lines that start with '0' — and splitting the others
// into words. A chunk of 1023 bytes or more is an error ("Too long line
// in filter"), as is a line that starts with a NUL byte ("Invalid line");
// a line is cut at its first NUL.
func (l *lexer) file(text string) error {
	line := 1
	for pos := 0; pos < len(text); {
		end := min(len(text), pos+ssLineMax-1)
		if nl := strings.IndexByte(text[pos:end], '\n'); nl >= 0 {
			end = pos + nl + 1
		}
		chunk := text[pos:end]
		pos = end
		n := len(chunk)
		if z := strings.IndexByte(chunk, 0); z >= 0 {
			n = z
		}
		if n == 0 {
			return &Error{Msg: fmt.Sprintf("filter file line %d starts with a NUL byte (ss: \"Invalid line\")", line)}
		}
		if n >= ssLineMax-1 {
			return &Error{Msg: fmt.Sprintf("filter file line %d is too long: ss reads at most %d bytes a line, newline included", line, ssLineMax-2)}
		}
		s := chunk[:n]
		s = strings.TrimSuffix(s, "\n")
		if s != "" && (s[0] == '#' || s[0] == '0') {
			line += strings.Count(chunk, "\n")
			continue
		}
		cur := line
		splitWords(s, func(w string, col int) { l.add(w, cur, col, true, false) })
		line += strings.Count(chunk, "\n")
	}
	return nil
}

// Error is a filter that does not parse. Its message names the offending
// word, its 1-based position among the filter's words and, for a word
// that is part of a longer argument or comes from the filter file, where
// exactly it is.
type Error struct {
	Pos   int    // 1-based word position; 0 for errors about the filter file itself
	Token string // the word
	AtEnd bool   // the filter ended where more was expected (Pos is one past the last word)
	Where string // "argument 2 column 3", "filter file line 4 column 1" or ""
	Msg   string
}

func (e *Error) Error() string {
	if e.Pos == 0 {
		return "filter: " + e.Msg
	}
	tok := "end of filter"
	if !e.AtEnd {
		tok = strconv.Quote(e.Token)
	}
	if e.Where != "" {
		tok += ", " + e.Where
	}
	return fmt.Sprintf("filter: position %d (%s): %s", e.Pos, tok, e.Msg)
}
