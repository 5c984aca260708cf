package symbol

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fileOffsetOf is the file offset of the symbol name in bin.
func fileOffsetOf(t *testing.T, bin, name string) uint64 {
	t.Helper()
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, _ := ef.Symbols()
	for _, s := range syms {
		if s.Name == name {
			for _, p := range ef.Progs {
				if p.Type == elf.PT_LOAD && s.Value >= p.Vaddr && s.Value < p.Vaddr+p.Filesz {
					return s.Value - p.Vaddr + p.Off
				}
			}
		}
	}
	t.Fatalf("%s: no symbol %s", bin, name)
	return 0
}

func elfType(t *testing.T, bin string) elf.Type {
	t.Helper()
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	return ef.Type
}

func testC(t *testing.T, bin string, wantType elf.Type) {
	if got := elfType(t, bin); got != wantType {
		t.Fatalf("%s is %v, want %v", bin, got, wantType)
	}
	mk := marks(t, "testdata/cfix/cfix.c")
	fx := start(t, bin)
	s := New()
	for how, p := range fx.procs(t, s) {
		t.Run(how, func(t *testing.T) {
			frames := p.Symbolize([]uint64{fx.addrs["leak_here"], fx.addrs["leak_ra"], fx.addrs["inl_ra"]})
			checkFrame(t, "leak_here (exact)", frames[0], want{fn: "leak_here", fileSuffix: "cfix.c", line: mk["leak_entry"], module: bin})
			checkFrame(t, "return into leak_here", frames[1], want{fn: "leak_here", fileSuffix: "cfix.c", line: mk["leak_call"], module: bin})
			checkFrame(t, "return into inlined inl", frames[2], want{fn: "inl", fileSuffix: "cfix.c", line: mk["inl_call"],
				inlined: []InlineCaller{{Function: "outer", File: "cfix.c", Line: mk["outer_call"]}}})
			if frames[1].InlinedInto != nil {
				t.Errorf("leak_here frame says inlined: %+v", frames[1].InlinedInto)
			}
			if want := fileOffsetOf(t, bin, "leak_here"); frames[0].Offset != want {
				t.Errorf("offset of leak_here %#x, want %#x", frames[0].Offset, want)
			}
			if frames[0].BuildID == "" || frames[0].Addr != fx.addrs["leak_here"] {
				t.Errorf("frame %+v: want a build ID and the address given", frames[0])
			}

			// libc's socket, exact (a function pointer).
			fr := p.Lookup(fx.addrs["socket"], false)
			checkFrame(t, "libc socket", fr, want{fn: "socket", module: "libc.so.6"})
			// An address in the (non-executable) data segment.
			fr = p.Lookup(fx.addrs["data"], true)
			if fr.Module != "[unknown]" || fr.Function != fmt.Sprintf("%#x", fx.addrs["data"]) {
				t.Errorf("data address: %+v, want module [unknown] and a hex function", fr)
			}

			var sawExe, sawLibc bool
			for _, m := range p.Mappings() {
				if m.File == bin && m.BuildID == frames[0].BuildID && m.Start <= fx.addrs["leak_here"] && fx.addrs["leak_here"] < m.Limit {
					sawExe = true
				}
				if strings.HasSuffix(m.File, "libc.so.6") && m.BuildID != "" {
					sawLibc = true
				}
			}
			if !sawExe || !sawLibc {
				t.Errorf("mappings %+v: executable %v, libc %v", p.Mappings(), sawExe, sawLibc)
			}
		})
	}
}

func TestCPIE(t *testing.T) {
	testC(t, buildC(t, "cfix-pie", "-pie", "-fPIE"), elf.ET_DYN)
}

func TestCNoPIE(t *testing.T) {
	testC(t, buildC(t, "cfix-nopie", "-no-pie", "-fno-PIE"), elf.ET_EXEC)
}

// TestCDynsym: a stripped executable exporting its functions symbolizes
// from .dynsym alone, without lines.
func TestCDynsym(t *testing.T) {
	bin := buildC(t, "cfix-rdynamic", "-rdynamic", "-s")
	fx := start(t, bin)
	p, err := New().ProcFromMaps(fx.maps, "")
	if err != nil {
		t.Fatal(err)
	}
	fr := p.Lookup(fx.addrs["leak_ra"], true)
	checkFrame(t, "return into leak_here", fr, want{fn: "leak_here", module: bin})
	if fr.File != "" || fr.Line != 0 {
		t.Errorf("stripped binary gave a line: %+v", fr)
	}
}

// TestSeparateDebugFile: a stripped executable whose DWARF and symbols
// are in <root>/usr/lib/debug/.build-id/xx/yyyy.debug.
func TestSeparateDebugFile(t *testing.T) {
	objcopy := needTool(t, "objcopy")
	full := buildC(t, "cfix-pie", "-pie", "-fPIE")
	mk := marks(t, "testdata/cfix/cfix.c")
	fx := start(t, full)
	root := t.TempDir()
	// The stripped binary at the same path under root, its debug file
	// by build ID.
	stripped := filepath.Join(root, full)
	if err := os.MkdirAll(filepath.Dir(stripped), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, ".", objcopy, "--strip-all", full, stripped)
	id := New().mustObject(t, full).buildID
	dbg := filepath.Join(root, "usr/lib/debug/.build-id", id[:2], id[2:]+".debug")
	if err := os.MkdirAll(filepath.Dir(dbg), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, ".", objcopy, "--only-keep-debug", full, dbg)
	// The maps name the same inode as the running fixture's binary, not
	// the stripped copy: rewrite it.
	st, err := os.Stat(stripped)
	if err != nil {
		t.Fatal(err)
	}
	maps := rewriteInode(t, fx.maps, full, st)
	p, err := New().ProcFromMaps(maps, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Warnings() {
		t.Logf("warning: %v", w)
	}
	frames := p.Symbolize([]uint64{fx.addrs["leak_here"], fx.addrs["leak_ra"], fx.addrs["inl_ra"]})
	checkFrame(t, "leak_here (exact)", frames[0], want{fn: "leak_here", fileSuffix: "cfix.c", line: mk["leak_entry"]})
	checkFrame(t, "return into leak_here", frames[1], want{fn: "leak_here", fileSuffix: "cfix.c", line: mk["leak_call"]})
	checkFrame(t, "return into inlined inl", frames[2], want{fn: "inl", line: mk["inl_call"],
		inlined: []InlineCaller{{Function: "outer", File: "cfix.c", Line: mk["outer_call"]}}})
}

// mustObject opens bin as an object.
func (s *Symbolizer) mustObject(t *testing.T, bin string) *object {
	t.Helper()
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	o, err := openObject(f, bin, []string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func testGo(t *testing.T, bin string) {
	mk := marks(t, "testdata/gofix/main.go")
	fx := start(t, bin)
	for how, p := range fx.procs(t, New()) {
		t.Run(how, func(t *testing.T) {
			frames := p.Symbolize([]uint64{fx.addrs["leak_entry"], fx.addrs["callers_ra"], fx.addrs["leak_ra"], fx.addrs["inl_ra"]})
			const file = "testdata/gofix/main.go"
			checkFrame(t, "leakSockets entry (exact)", frames[0], want{fn: "main.leakSockets", fileSuffix: file, line: mk["go_leak_decl"], module: bin})
			checkFrame(t, "return into callers", frames[1], want{fn: "main.callers", fileSuffix: file, line: mk["go_callers"]})
			checkFrame(t, "return into leakSockets", frames[2], want{fn: "main.leakSockets", fileSuffix: file, line: mk["go_leak_call"]})
			checkFrame(t, "return into inlined inlinedHelper", frames[3], want{fn: "main.inlinedHelper", fileSuffix: file, line: mk["go_inl_call"],
				inlined: []InlineCaller{{Function: "main.outer", File: file, Line: mk["go_outer_call"]}}})
			if frames[0].BuildID == "" {
				t.Errorf("no build ID: %+v", frames[0])
			}
			fr := p.Lookup(fx.addrs["data"], true)
			if fr.Module != "[unknown]" || !strings.HasPrefix(fr.Function, "0x") {
				t.Errorf("data address: %+v, want module [unknown] and a hex function", fr)
			}
		})
	}
}

func TestGo(t *testing.T) {
	t.Run("unstripped", func(t *testing.T) { testGo(t, buildGo(t, "gofix")) })
	t.Run("stripped", func(t *testing.T) { testGo(t, buildGo(t, "gofix-stripped", "-ldflags=-s -w")) })
	t.Run("pie-stripped", func(t *testing.T) {
		bin := buildGo(t, "gofix-pie-stripped", "-buildmode=pie", "-ldflags=-s -w")
		if got := elfType(t, bin); got != elf.ET_DYN {
			t.Fatalf("%s is %v, want ET_DYN", bin, got)
		}
		testGo(t, bin)
	})
}

// TestSelf compares, for every pc of this goroutine's stack, what the
// runtime says (runtime.CallersFrames, inlining included) with Lookup on
// the test binary itself.
func TestSelf(t *testing.T) {
	p, err := New().Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	pcs := deepCallers(12)
	if len(pcs) < 12 {
		t.Fatalf("only %d pcs", len(pcs))
	}
	exe, _ := os.Executable()
	for _, pc := range pcs {
		var rt []InlineCaller
		frames := runtime.CallersFrames([]uintptr{pc})
		for {
			f, more := frames.Next()
			rt = append(rt, InlineCaller{Function: f.Function, File: f.File, Line: f.Line})
			if !more {
				break
			}
		}
		fr := p.Lookup(uint64(pc), true)
		got := append([]InlineCaller{{Function: fr.Function, File: fr.File, Line: fr.Line}}, fr.InlinedInto...)
		if fmt.Sprint(got) != fmt.Sprint(rt) {
			t.Errorf("pc %#x: got %+v, runtime says %+v", pc, got, rt)
		}
		t.Logf("%#x %s %s:%d inlined into %v", pc, fr.Function, fr.File, fr.Line, fr.InlinedInto)
		if fr.Module != exe {
			t.Errorf("pc %#x: module %q, want %q", pc, fr.Module, exe)
		}
	}
}

//go:noinline
func deepCallers(n int) []uintptr {
	if n > 0 {
		return deepCallers(n - 1)
	}
	pcs := make([]uintptr, 64)
	return pcs[:runtime.Callers(1, pcs)]
}

func TestSpecialMappings(t *testing.T) {
	maps := []byte(`00400000-00401000 r-xp 00000000 00:00 0 
7f0000000000-7f0000001000 rwxp 00000000 00:00 0 
7f0000001000-7f0000002000 r-xp 00000000 00:00 0                          [anon:JIT code]
7ffd4b7f4000-7ffd4b7f6000 r-xp 00000000 00:00 0                          [vdso]
7ffd4b7f6000-7ffd4b7f8000 r--p 00000000 00:00 0                          [vvar]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
7f1000000000-7f1000001000 r-xp 00000000 fd:01 12345                      /nonexistent/lib.so
`)
	p, err := New().ProcFromMaps(maps, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr   uint64
		module string
	}{
		{0x400010, "[unknown]"},
		{0x7f0000000010, "[unknown]"},
		{0x7f0000001010, "[unknown]"},
		{0x7ffd4b7f4100, "[vdso]"},
		{0x7ffd4b7f6100, "[unknown]"}, // [vvar] is not executable
		{0xffffffffff600000, "[vsyscall]"},
		{0x7f1000000100, "/nonexistent/lib.so"},
		{0x10, "[unknown]"},
	} {
		fr := p.Lookup(c.addr, true)
		if fr.Module != c.module || fr.Function != fmt.Sprintf("%#x", c.addr) {
			t.Errorf("%#x: %+v, want module %s and a hex function", c.addr, fr, c.module)
		}
	}
	if fr := p.Lookup(0x7ffd4b7f4100, true); fr.Offset != 0x100 {
		t.Errorf("vdso offset %#x, want 0x100", fr.Offset)
	}
	if len(p.Warnings()) != 1 || !strings.Contains(p.Warnings()[0].Error(), "/nonexistent/lib.so") {
		t.Errorf("warnings %v, want one naming /nonexistent/lib.so", p.Warnings())
	}
	var files []string
	for _, m := range p.Mappings() {
		files = append(files, m.File)
	}
	if got := strings.Join(files, ","); got != "[anon:JIT code],/nonexistent/lib.so,[vdso],[vsyscall]" {
		t.Errorf("mappings %s", got)
	}
}

func TestParseMapsErrors(t *testing.T) {
	for _, bad := range []string{
		"zz-1000 r-xp 0 00:00 0",
		"1000-0500 r-xp 0 00:00 0",
		"1000-2000 r-x 0 00:00 0",
		"1000-2000 r-xp 0 0000 0",
		"1000-2000 r-xp 0 00:00 x",
		"1000",
	} {
		if _, err := ProcFromMaps([]byte("7f00-8f00 r-xp 0 00:00 0\n"+bad+"\n"), ""); err == nil || !strings.Contains(err.Error(), "parsing maps text: line 2: ") {
			t.Errorf("%q: error %v, want one naming line 2", bad, err)
		}
	}
	es, err := parseMaps([]byte("1000-2000 r-xp 00001000 fd:01 42   /a path/with spaces (deleted)\n\n"))
	if err != nil || len(es) != 1 || es[0].Path != "/a path/with spaces" || !es[0].Deleted || es[0].Offset != 0x1000 || es[0].Inode != 42 || es[0].Major != 0xfd {
		t.Errorf("parsed %+v, %v", es, err)
	}
}

// TestCache: objects are shared by build ID and evicted beyond the limit.
func TestCache(t *testing.T) {
	a := buildC(t, "cfix-pie", "-pie", "-fPIE")
	b := buildC(t, "cfix-nopie", "-no-pie", "-fno-PIE")
	// A hard link has another path but the same inode: same object.
	dir := t.TempDir()
	a2 := filepath.Join(dir, "copy")
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a2, data, 0o755); err != nil {
		t.Fatal(err)
	}
	mapsOf := func(path string) []byte {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(fmt.Sprintf("1000-2000 r-xp 00001000 00:00 %d %s\n", inodeOf(st), path))
	}
	s := NewWithLimit(1)
	p1, _ := s.ProcFromMaps(mapsOf(a), "")
	p2, _ := s.ProcFromMaps(mapsOf(a2), "") // same build ID, other file
	if p1.maps[0].obj == nil || p1.maps[0].obj != p2.maps[0].obj {
		t.Errorf("same build ID gave two objects")
	}
	p3, _ := s.ProcFromMaps(mapsOf(b), "")
	if s.Len() != 1 || p3.maps[0].obj == p1.maps[0].obj {
		t.Errorf("cache has %d objects, want 1", s.Len())
	}
	// The evicted object still works for the Proc holding it.
	if fr := p1.Lookup(0x1000+0x200, false); fr.Function == "" {
		t.Errorf("evicted object: %+v", fr)
	}
}

// TestConcurrent symbolizes from many goroutines at once (run with -race).
func TestConcurrent(t *testing.T) {
	bin := buildGo(t, "gofix-stripped", "-ldflags=-s -w")
	cbin := buildC(t, "cfix-pie", "-pie", "-fPIE")
	fx, cfx := start(t, bin), start(t, cbin)
	s := New()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range []*fixture{fx, cfx} {
				p, err := s.ProcFromMaps(f.maps, "")
				if err != nil {
					t.Error(err)
					return
				}
				for _, fr := range p.Symbolize([]uint64{f.addrs["leak_ra"], f.addrs["leak_ra"], f.addrs["inl_ra"]}) {
					if !strings.Contains(fr.Function, "leak") && !strings.Contains(fr.Function, "nl") {
						t.Errorf("frame %+v", fr)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestSelfSweep compares, for pcs all over this test binary's text, Lookup
// with what the runtime says: runtime.FuncForPC names the innermost
// inlined function and FileLine its position.
func TestSelfSweep(t *testing.T) {
	p, err := New().Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	checked, inlined, bad := 0, 0, 0
	for _, m := range p.Mappings() {
		if m.File != exe {
			continue
		}
		for pc := m.Start; pc < m.Limit; pc += 37 {
			f := runtime.FuncForPC(uintptr(pc))
			if f == nil {
				continue
			}
			if f.Name() == "" {
				continue // the runtime does not name the function at offset 0
			}
			file, line := f.FileLine(uintptr(pc))
			if file == "?" {
				file = ""
			}
			rt := InlineCaller{Function: f.Name(), File: file, Line: line}
			fr := p.Lookup(pc, false)
			got := InlineCaller{Function: fr.Function, File: fr.File, Line: fr.Line}
			checked++
			if len(fr.InlinedInto) > 0 {
				inlined++
				// The outermost function is the one whose code this is.
				outer := p.Lookup(uint64(f.Entry()), false)
				if last := fr.InlinedInto[len(fr.InlinedInto)-1].Function; last != outer.Function {
					if bad++; bad < 10 {
						t.Errorf("pc %#x: inlined into %+v, the function at %#x is %s", pc, fr.InlinedInto, f.Entry(), outer.Function)
					}
				}
			}
			if got != rt {
				if bad++; bad < 10 {
					t.Errorf("pc %#x: got %+v, runtime says %+v", pc, got, rt)
				}
			}
		}
	}
	t.Logf("checked %d pcs, %d in inlined code, %d differ", checked, inlined, bad)
	if checked < 1000 || inlined < 100 {
		t.Errorf("checked %d pcs, %d inlined: too few", checked, inlined)
	}
}

// TestAddr2line compares Lookup with addr2line -f -i over the
// whole text of the C fixture: function, file:line and inline chain.
func TestAddr2line(t *testing.T) {
	compareAddr2line(t, buildC(t, "cfix-pie", "-pie", "-fPIE"), 1, 0)
}

// TestAddr2lineLibc does the same over libc when its separate debug file
// is installed (Debian's libc6-dbg), every 61st byte.
func TestAddr2lineLibc(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	libc := "/usr/lib/x86_64-linux-gnu/libc.so.6"
	f, err := os.Open(libc)
	if err != nil {
		t.Skip(err)
	}
	o, err := openObject(f, libc, []string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	if o.debugFile() == nil {
		t.Skip("no debug file for libc")
	}
	compareAddr2line(t, libc, 61, 0.001)
}

// compareAddr2line compares Lookup with addr2line for every step-th byte of
// bin's .text, allowing a fraction of differences.
func compareAddr2line(t *testing.T, bin string, step uint64, allowed float64) {
	loose := allowed > 0
	// llvm-addr2line reads DWARF 5 file numbers right; binutils 2.40's
	// addr2line names the wrong file for code from included files.
	a2l, err := exec.LookPath("llvm-addr2line")
	if err != nil {
		a2l = needTool(t, "addr2line")
	}
	line, start, end := execMapping(t, bin, bin, 0)
	p, err := New().ProcFromMaps([]byte(line), "")
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	text := ef.Section(".text")
	ef.Close()
	var in strings.Builder
	var pcs []uint64
	for pc := text.Addr; pc < text.Addr+text.Size; pc += step {
		if pc >= start && pc < end {
			pcs = append(pcs, pc)
			fmt.Fprintf(&in, "%#x\n", pc)
		}
	}
	cmd := exec.Command(a2l, "-f", "-i", "-a", "-e", bin)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	// Output: per address, "0x..." then pairs of function, file:line.
	want := map[uint64][]InlineCaller{}
	var cur uint64
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "0x") {
			cur, _ = strconv.ParseUint(lines[i][2:], 16, 64)
			continue
		}
		fn := lines[i]
		i++
		fl := lines[i]
		if j := strings.Index(fl, " ("); j >= 0 {
			fl = fl[:j] // " (discriminator N)"
		}
		file, ln, _ := strings.Cut(fl, ":")
		n, _ := strconv.Atoi(ln)
		if file == "??" {
			file = ""
		}
		want[cur] = append(want[cur], InlineCaller{Function: fn, File: file, Line: n})
	}
	bad, padding := 0, 0
	for _, pc := range pcs {
		w := want[pc]
		if len(w) == 0 || w[0].Function == "??" {
			continue
		}
		fr := p.Lookup(pc, false)
		if strings.HasPrefix(fr.Function, "0x") && fr.File == "" {
			// Padding after a sized symbol: addr2line takes the symbol
			// below regardless of its size; Lookup does not.
			padding++
			continue
		}
		got := append([]InlineCaller{{Function: fr.Function, File: fr.File, Line: fr.Line}}, fr.InlinedInto...)
		if w[0].Line == 0 {
			// No line information: addr2line names the file of the
			// symbol (STT_FILE); compare the function only.
			got, w = got[:1], []InlineCaller{{Function: w[0].Function}}
			got[0].File, got[0].Line = "", 0
		}
		if loose {
			// libc: addr2line may print ./dir/./dir/file paths, and names
			// the real function by its DWARF name or __GI_ alias where
			// Lookup takes the public symbol (abort, round_away.cold).
			for _, l := range [][]InlineCaller{got, w} {
				for i := range l {
					l[i].File = filepath.Base(l[i].File)
					// The linkage name of glibc's internal aliases (what
					// llvm-addr2line prints) and the DW_AT_name (ours).
					l[i].Function = strings.TrimPrefix(l[i].Function, "__GI_")
				}
				l[len(l)-1].Function = ""
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			if bad++; bad <= 10 {
				t.Logf("%#x: got %+v, addr2line says %+v", pc, got, w)
			}
		}
	}
	t.Logf("compared %d pcs, %d differ, %d in padding", len(pcs), bad, padding)
	if float64(bad) > allowed*float64(len(pcs)) {
		t.Errorf("%d of %d differ", bad, len(pcs))
	}
}

// TestGoToolAddr2line compares Lookup on stripped Go binaries with `go
// tool addr2line` (debug/gosym: no inlining, so it names the function
// whose code holds the pc, which is the last of InlinedInto, and the same
// file:line as Frame).
func TestGoToolAddr2line(t *testing.T) {
	goTool := needTool(t, "go")
	bins := map[string]uint64{buildGo(t, "gofix-pie-stripped", "-buildmode=pie", "-ldflags=-s -w"): 13}
	if !testing.Short() {
		bins[buildGo(t, "gofix-stripped", "-ldflags=-s -w")] = 7
	}
	for bin, step := range bins {
		line, start, end := execMapping(t, bin, bin, 0)
		p, err := New().ProcFromMaps([]byte(line), "")
		if err != nil {
			t.Fatal(err)
		}
		var in strings.Builder
		var pcs []uint64
		for pc := start; pc < end; pc += step {
			pcs = append(pcs, pc)
			fmt.Fprintf(&in, "%#x\n", pc)
		}
		cmd := exec.Command(goTool, "tool", "addr2line", bin)
		cmd.Stdin = strings.NewReader(in.String())
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2*len(pcs) {
			t.Fatalf("%d lines of output for %d pcs", len(lines), len(pcs))
		}
		bad, inlined, known := 0, 0, 0
		for i, pc := range pcs {
			fn, fl := lines[2*i], lines[2*i+1]
			if fn == "?" || strings.HasPrefix(fn, "go:") {
				continue // no function, or a linker marker (negative lines)
			}
			known++
			if strings.HasSuffix(fl, ":-1") { // no line there; Lookup says 0
				fl = strings.TrimSuffix(fl, "-1") + "0"
			}
			fr := p.Lookup(pc, false)
			outer := fr.Function
			if n := len(fr.InlinedInto); n > 0 {
				outer = fr.InlinedInto[n-1].Function
				inlined++
			}
			if got := fmt.Sprintf("%s %s:%d", outer, fr.File, fr.Line); got != funcNameForPrint(fn)+" "+fl {
				if bad++; bad <= 10 {
					t.Errorf("%s %#x: got %s, go tool addr2line says %s %s", bin, pc, got, fn, fl)
				}
			}
		}
		t.Logf("%s: %d pcs, %d in inlined code, %d differ", bin, known, inlined, bad)
		if known < 1000 || inlined < 100 {
			t.Errorf("too few pcs compared")
		}
	}
}

// TestDeletedExecutable: a running process whose executable was deleted
// is read through /proc/PID/map_files (which needs root).
func TestDeletedExecutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("opening /proc/PID/map_files needs CAP_SYS_ADMIN")
	}
	data, err := os.ReadFile(buildC(t, "cfix-pie", "-pie", "-fPIE"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "deleted")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	fx := start(t, bin)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	p, err := New().Process(fx.pid)
	if err != nil {
		t.Fatal(err)
	}
	mk := marks(t, "testdata/cfix/cfix.c")
	checkFrame(t, "return into leak_here", p.Lookup(fx.addrs["leak_ra"], true),
		want{fn: "leak_here", fileSuffix: "cfix.c", line: mk["leak_call"], module: bin})
}
