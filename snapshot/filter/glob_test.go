package filter

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"/tmp/x/*", "/tmp/x/a.sock", true},
		{"/tmp/x/*", "/tmp/x/sub/a.sock", true}, // no FNM_PATHNAME
		{"/tmp/x/*", "/tmp/y/a.sock", false},
		{"/TMP/X/*", "/tmp/x/a", true}, // FNM_CASEFOLD
		{"*", "", true},
		{"*", "/anything", true},
		{"", "", true},
		{"", "x", false},
		{"?", "", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", true},
		{"*.sock", ".sock", true}, // no FNM_PERIOD
		{"@*", "@0001a", true},
		{"[ab]x", "bx", true},
		{"[!ab]x", "bx", false},
		{"[^ab]x", "cx", true},
		{"[a-c]", "B", true},
		{"[A-C]", "b", true},
		{"[]]", "]", true},
		{"[!]]", "a", true},
		{"[a-]", "-", true},
		{"[[:digit:]]x", "7x", true},
		{"[[:upper:]]", "A", true},
		{"[[:upper:]]", "a", false}, // classes test the unfolded character
		{"[[:bogus:]]", "a", false},
		{"[[.a.]]", "a", true},
		{"[[=a=]]", "a", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\`, "a", false},   // a trailing backslash never matches
		{"[ab", "[ab", true}, // unterminated: '[' is literal
		{"[ab", "a", false},
		{"*[ab", "x[ab", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
	} {
		if got := fnmatch(c.pat, c.name); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

// TestFnmatchGlibc compares fnmatch with glibc's fnmatch(FNM_CASEFOLD) in
// the C locale on random patterns, when a C compiler is at hand.
func TestFnmatchGlibc(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a C helper")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "fnm.c")
	os.WriteFile(src, []byte(`#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
int main(void) {
	char pat[4096], name[4096];
	while (fgets(pat, sizeof pat, stdin) && fgets(name, sizeof name, stdin)) {
		pat[strcspn(pat, "\n")] = 0;
		name[strcspn(name, "\n")] = 0;
		printf("%d\n", fnmatch(pat, name, FNM_CASEFOLD) == 0);
	}
	return 0;
}
`), 0o644)
	bin := filepath.Join(dir, "fnm")
	if out, err := exec.Command(cc, "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("cannot build the C helper: %v: %s", err, out)
	}
	rng := rand.New(rand.NewSource(1))
	const alpha = "aAbBzZ09[]!^-\\*?:.=/_"
	classes := []string{"[:alpha:]", "[:digit:]", "[:upper:]", "[:lower:]", "[:xdigit:]", "[:bogus:]", "[:space:]", "[.a.]", "[.-.]", "[=b=]", "[.ab.]"}
	const brackety = "[[]]:.=aA\\!-^"
	gen := func(n int, pattern bool) string {
		var b strings.Builder
		alpha := alpha
		if pattern && rng.Intn(2) == 0 {
			alpha = brackety
		}
		for i := 0; i < n; i++ {
			if pattern && rng.Intn(8) == 0 {
				b.WriteString(classes[rng.Intn(len(classes))])
				continue
			}
			b.WriteByte(alpha[rng.Intn(len(alpha))])
		}
		return b.String()
	}
	type pair struct{ pat, name string }
	var cases []pair
	for i := 0; i < 400000; i++ {
		p := gen(rng.Intn(9), true)
		var n string
		if rng.Intn(3) == 0 {
			// Names derived from the pattern hit matches more often.
			n = strings.NewReplacer("*", "", "?", "a", "\\", "").Replace(p)
		} else {
			n = gen(rng.Intn(7), false)
		}
		cases = append(cases, pair{p, n})
	}
	var in strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&in, "%s\n%s\n", c.pat, c.name)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"LC_ALL=C"} // and no POSIXLY_CORRECT
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	bad := 0
	for i := 0; sc.Scan(); i++ {
		want := sc.Text() == "1"
		if got := fnmatch(cases[i].pat, cases[i].name); got != want {
			bad++
			if bad <= 20 {
				t.Errorf("fnmatch(%q, %q) = %v, glibc says %v", cases[i].pat, cases[i].name, got, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d differ from glibc", bad, len(cases))
	}
}

// TestFnmatchLinear: many stars must not backtrack exponentially.
func TestFnmatchLinear(t *testing.T) {
	p := strings.Repeat("*a", 30) + "*b"
	n := strings.Repeat("a", 100)
	done := make(chan bool)
	go func() { done <- fnmatch(p, n) }()
	select {
	case got := <-done:
		if got {
			t.Error("matched")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fnmatch takes exponential time")
	}
}
