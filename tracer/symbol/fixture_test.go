package symbol

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fixture is a running fixture process and what it printed.
type fixture struct {
	bin   string
	pid   int
	addrs map[string]uint64
	maps  []byte
}

var markRE = regexp.MustCompile(`MARK:(\w+)`)

// marks returns the line numbers of the MARK:name comments in src.
func marks(t testing.TB, src string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		if m := markRE.FindStringSubmatch(line); m != nil {
			out[m[1]] = i + 1
		}
	}
	return out
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

func run(t testing.TB, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// builds caches fixture binaries per test binary run: each flavour is
// built once into a directory removed by TestMain.
var (
	buildMu  sync.Mutex
	builds   = map[string]string{}
	buildDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "symbol-fixtures-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildC compiles testdata/cfix/cfix.c with the extra gcc flags.
func buildC(t testing.TB, name string, flags ...string) string {
	t.Helper()
	gcc := needTool(t, "gcc")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builds[name]; ok {
		return p
	}
	src, _ := filepath.Abs("testdata/cfix/cfix.c")
	out := filepath.Join(buildDir, name)
	args := append([]string{"-g", "-O2", "-fno-omit-frame-pointer", "-o", out, src}, flags...)
	run(t, ".", gcc, args...)
	builds[name] = out
	return out
}

// buildGo builds testdata/gofix with the extra go build flags.
func buildGo(t testing.TB, name string, flags ...string) string {
	t.Helper()
	goTool := needTool(t, "go")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builds[name]; ok {
		return p
	}
	out := filepath.Join(buildDir, name)
	args := append([]string{"build", "-o", out}, flags...)
	args = append(args, "./testdata/gofix")
	run(t, ".", goTool, args...)
	builds[name] = out
	return out
}

// start runs bin and reads its addresses and maps; the process is ended
// when the test ends.
func start(t testing.TB, bin string) *fixture {
	t.Helper()
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	fx := &fixture{bin: bin, pid: cmd.Process.Pid, addrs: map[string]uint64{}}
	sc := bufio.NewScanner(stdout)
	inMaps := false
	var maps bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "MAPS":
			inMaps = true
		case line == "END":
			fx.maps = maps.Bytes()
			go io.Copy(io.Discard, stdout)
			return fx
		case inMaps:
			maps.WriteString(line + "\n")
		default:
			k, v, _ := strings.Cut(line, " ")
			a, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			if err != nil {
				t.Fatalf("fixture %s printed %q: %v", bin, line, err)
			}
			fx.addrs[k] = a
		}
	}
	t.Fatalf("fixture %s ended before END: %v", bin, sc.Err())
	return nil
}

// procs returns the fixture's Proc both ways: live and from its maps text.
func (fx *fixture) procs(t testing.TB, s *Symbolizer) map[string]*Proc {
	t.Helper()
	live, err := s.Process(fx.pid)
	if err != nil {
		t.Fatal(err)
	}
	fromMaps, err := s.ProcFromMaps(fx.maps, "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Proc{live, fromMaps} {
		for _, w := range p.Warnings() {
			t.Logf("warning: %v", w)
		}
	}
	return map[string]*Proc{"live": live, "maps": fromMaps}
}

// want is what a frame must say; empty fields are not checked.
type want struct {
	fn, fileSuffix string
	line           int
	module         string // suffix
	inlined        []InlineCaller
}

func checkFrame(t *testing.T, what string, fr Frame, w want) {
	t.Helper()
	if w.fn != "" && fr.Function != w.fn {
		t.Errorf("%s: function %q, want %q (frame %+v)", what, fr.Function, w.fn, fr)
	}
	if w.fileSuffix != "" && !strings.HasSuffix(fr.File, w.fileSuffix) {
		t.Errorf("%s: file %q, want suffix %q", what, fr.File, w.fileSuffix)
	}
	if w.line != 0 && fr.Line != w.line {
		t.Errorf("%s: line %d, want %d (frame %+v)", what, fr.Line, w.line, fr)
	}
	if w.module != "" && !strings.HasSuffix(fr.Module, w.module) {
		t.Errorf("%s: module %q, want suffix %q", what, fr.Module, w.module)
	}
	if w.inlined != nil {
		if len(fr.InlinedInto) != len(w.inlined) {
			t.Errorf("%s: inlined into %+v, want %+v", what, fr.InlinedInto, w.inlined)
			return
		}
		for i, c := range w.inlined {
			g := fr.InlinedInto[i]
			if g.Function != c.Function || !strings.HasSuffix(g.File, c.File) || g.Line != c.Line {
				t.Errorf("%s: inlined into[%d] = %+v, want %+v", what, i, g, c)
			}
		}
	}
}

func inodeOf(st os.FileInfo) uint64 { return st.Sys().(*syscall.Stat_t).Ino }

// rewriteInode gives the lines of maps mapping path the inode of st.
func rewriteInode(t testing.TB, maps []byte, path string, st os.FileInfo) []byte {
	t.Helper()
	es, err := parseMaps(maps)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, e := range es {
		if e.Path == path {
			e.Inode = inodeOf(st)
		}
		b.WriteString(e.String() + "\n")
	}
	return b.Bytes()
}
