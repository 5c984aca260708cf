package symbol

import (
	"bytes"
	"debug/elf"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// execMapping returns a maps line mapping the executable segment of the
// ELF file orig (as laid out by orig) from path at base.
// A zero base maps it at its link-time address.
func execMapping(t testing.TB, orig, path string, base uint64) (line string, start, end uint64) {
	t.Helper()
	ef, err := elf.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			off := p.Off &^ 0xfff
			size := (p.Off + p.Filesz - off + 0xfff) &^ 0xfff
			if base == 0 {
				base = p.Vaddr &^ 0xfff
			}
			start, end = base, base+size
			return fmt.Sprintf("%x-%x r-xp %08x 00:00 0 %s\n", start, end, off, path), start, end
		}
	}
	t.Fatalf("%s has no executable segment", orig)
	return "", 0, 0
}

// sectionRanges returns the file ranges of the named sections of orig.
func sectionRanges(t testing.TB, orig string, names ...string) [][2]int {
	t.Helper()
	ef, err := elf.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	var out [][2]int
	for _, n := range names {
		if s := ef.Section(n); s != nil && s.Type != elf.SHT_NOBITS && s.Size > 0 {
			out = append(out, [2]int{int(s.Offset), int(s.Offset + s.FileSize)})
		}
	}
	return out
}

// TestCorruptObjects symbolizes addresses in truncated and corrupted
// copies of the fixtures: no panic, no hang, whatever the damage.
func TestCorruptObjects(t *testing.T) {
	bins := []string{
		buildC(t, "cfix-pie", "-pie", "-fPIE"),
		buildGo(t, "gofix"),
		buildGo(t, "gofix-pie-stripped", "-buildmode=pie", "-ldflags=-s -w"),
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	n := 0
	try := func(orig string, data []byte) {
		n++
		path := filepath.Join(dir, fmt.Sprintf("obj%d", n))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		line, start, end := execMapping(t, orig, path, 0x10000000)
		p, err := NewWithLimit(2).ProcFromMaps([]byte(line), "")
		if err != nil {
			t.Fatal(err)
		}
		addrs := make([]uint64, 0, 64)
		for i := 0; i < 64; i++ {
			addrs = append(addrs, start+uint64(rng.Int63n(int64(end-start))))
		}
		for _, fr := range p.Symbolize(addrs) {
			if fr.Function == "" {
				t.Errorf("%s: empty function in %+v", path, fr)
			}
		}
		p.Mappings()
		os.Remove(path)
	}
	before := recovered.Load()
	defer func() {
		if n := recovered.Load() - before; n > 0 {
			t.Logf("%d panics recovered; first: %v", n, firstPanic.Load())
		}
	}()
	for _, orig := range bins {
		data, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		// Truncated at many lengths, including inside the headers.
		for _, cut := range []int{0, 1, 16, 63, 64, 100, 512, 4096} {
			try(orig, data[:min(cut, len(data))])
		}
		for i := 1; i < 24; i++ {
			try(orig, data[:len(data)*i/24])
		}
		// Random bytes overwritten: anywhere, and inside the sections
		// the parsers read.
		hot := sectionRanges(t, orig, ".gopclntab", ".go.module", ".noptrdata", ".rela",
			".debug_info", ".debug_line", ".debug_abbrev", ".debug_rnglists", ".debug_str", ".debug_line_str",
			".symtab", ".strtab", ".dynsym", ".dynstr", ".note.gnu.build-id")
		for i := 0; i < 40; i++ {
			c := bytes.Clone(data)
			for j := 0; j < 1+rng.Intn(64); j++ {
				var k int
				if len(hot) > 0 && rng.Intn(4) != 0 {
					r := hot[rng.Intn(len(hot))]
					k = r[0] + rng.Intn(r[1]-r[0])
				} else {
					k = rng.Intn(len(c))
				}
				c[k] = byte(rng.Intn(256))
			}
			try(orig, c)
		}
	}
}

// FuzzProcFromMaps: the maps parser never panics, and what it accepts
// formats back to text it parses the same way.
func FuzzProcFromMaps(f *testing.F) {
	f.Add([]byte("55d4c8a00000-55d4c8a01000 r--p 00000000 fe:00 9977884                    /tmp/cfix\n" +
		"55d4c8a01000-55d4c8a02000 r-xp 00001000 fe:00 9977884                    /tmp/cfix\n" +
		"7f0e3f828000-7f0e3f97d000 r-xp 00026000 fe:00 1312                       /usr/lib/x86_64-linux-gnu/libc.so.6\n" +
		"7ffd4b7f4000-7ffd4b7f6000 r-xp 00000000 00:00 0                          [vdso]\n" +
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"))
	f.Add([]byte("1000-2000 r-xp 00001000 fd:01 42   /a path/with spaces (deleted)\n\n"))
	f.Add([]byte("7f0000000000-7f0000001000 rwxp 00000000 00:00 0 \n"))
	f.Add([]byte("0-1 ---p 0 0:0 0"))
	if data, err := os.ReadFile("/proc/self/maps"); err == nil {
		f.Add(data)
	}
	s := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseMaps(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		for i := range es {
			if es[i].Start >= es[i].End {
				t.Fatalf("entry %+v: empty range", es[i])
			}
			b.WriteString(es[i].String() + "\n")
		}
		es2, err := parseMaps(b.Bytes())
		if err != nil {
			t.Fatalf("reparsing %q: %v", b.Bytes(), err)
		}
		if fmt.Sprint(es) != fmt.Sprint(es2) {
			t.Fatalf("round trip:\n%+v\n%+v", es, es2)
		}
		// Build a Proc without opening files (an empty root dir that
		// holds none), and look up addresses around every mapping.
		p, err := s.ProcFromMaps(data, "/nonexistent-root")
		if err != nil {
			t.Fatalf("parsed, then ProcFromMaps failed: %v", err)
		}
		for _, e := range es {
			for _, a := range []uint64{e.Start - 1, e.Start, e.End - 1, e.End} {
				fr := p.Lookup(a, true)
				if fr.Function == "" || fr.Module == "" {
					t.Fatalf("lookup %#x: %+v", a, fr)
				}
			}
		}
		ms := p.Mappings()
		for i := 1; i < len(ms); i++ {
			if ms[i].Start < ms[i-1].Limit {
				t.Fatalf("overlapping mappings %+v", ms)
			}
		}
	})
}
