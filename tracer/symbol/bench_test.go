package symbol

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkSymbolizeGo20 symbolizes a 20-frame stack of this (unstripped
// Go) test binary, warm.
func BenchmarkSymbolizeGo20(b *testing.B) {
	p, err := New().Process(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	pcs := deepCallers(24)
	stack := make([]uint64, 20)
	for i := range stack {
		stack[i] = uint64(pcs[len(pcs)-20+i])
	}
	p.Symbolize(stack) // warm-up: tables loaded
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Symbolize(stack)
	}
}

// BenchmarkSymbolizeGoStripped20 symbolizes 20 return addresses spread
// over a large stripped Go binary (a stripped copy of the go command,
// 15 MB), warm.
func BenchmarkSymbolizeGoStripped20(b *testing.B) {
	p, stack := bigGo(b, 20)
	p.Symbolize(stack)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Symbolize(stack)
	}
}

// BenchmarkSymbolizeC20 symbolizes a 20-frame stack of the C fixture and
// libc (symbols, DWARF lines and inlining), warm.
func BenchmarkSymbolizeC20(b *testing.B) {
	fx := start(b, buildC(b, "cfix-pie", "-pie", "-fPIE"))
	p, err := New().ProcFromMaps(fx.maps, "")
	if err != nil {
		b.Fatal(err)
	}
	stack := []uint64{fx.addrs["socket"]}
	for len(stack) < 20 {
		stack = append(stack, fx.addrs["leak_ra"], fx.addrs["inl_ra"])
	}
	stack = stack[:20]
	p.Symbolize(stack)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Symbolize(stack)
	}
}

// BenchmarkColdGo is the first use of a large stripped Go binary: open,
// parse, symbolize 20 addresses, with an empty cache each time.
func BenchmarkColdGo(b *testing.B) {
	_, stack := bigGo(b, 20)
	maps := bigGoMaps(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := New().ProcFromMaps(maps, "")
		if err != nil {
			b.Fatal(err)
		}
		p.Symbolize(stack)
	}
}

// bigGoMaps maps the text of a stripped copy of the go command.
func bigGoMaps(b *testing.B) []byte {
	b.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go command")
	}
	goTool, _ = filepath.EvalSymlinks(goTool)
	buildMu.Lock()
	stripped, ok := builds["go-stripped"]
	if !ok {
		stripped = filepath.Join(buildDir, "go-stripped")
		run(b, ".", needTool(b, "objcopy"), "--strip-all", goTool, stripped)
		builds["go-stripped"] = stripped
	}
	buildMu.Unlock()
	line, _, _ := execMapping(b, stripped, stripped, 0)
	return []byte(line)
}

func bigGo(b *testing.B, n int) (*Proc, []uint64) {
	b.Helper()
	maps := bigGoMaps(b)
	es, _ := parseMaps(maps)
	p, err := New().ProcFromMaps(maps, "")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	stack := make([]uint64, n)
	for i := range stack {
		stack[i] = es[0].Start + uint64(rng.Int63n(int64(es[0].End-es[0].Start)))
	}
	return p, stack
}
