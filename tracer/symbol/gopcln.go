package symbol

import (
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"sync"
)

// goTable reads the Go runtime's own pc/line table (.gopclntab), which
// stripped Go binaries keep: function names as the runtime prints them,
// file:line, and the inline tree (FUNCDATA_InlTree, PCDATA_InlTreeIndex)
// for the innermost inlined function. The Go 1.18 and 1.20+ layouts
// (runtime/symtab.go) are read directly and lazily (one binary search and
// a walk of three pc-value tables per address); older layouts go through
// debug/gosym, without inlining.
type goTable struct {
	bo        binary.ByteOrder
	ver       int // 118 or 120; 0: use old
	ptrSize   int
	quantum   uint64
	nfunc     int
	text      uint64 // moduledata.text: function entries are offsets from it
	end       uint64 // end of the last function
	funcname  []byte
	cutab     []byte
	filetab   []byte
	pctab     []byte
	pcln      []byte // functab and the _func records
	funcHdr   int    // size of the fixed part of _func
	inlSize   uint64 // size of an inlinedCall
	inlName   int    // offset of nameOff in an inlinedCall
	inlParent int    // offset of parentPc in an inlinedCall
	gofunc    uint64 // link-time address of go:func.*, 0 if unknown
	o         *object

	mu    sync.Mutex
	names map[uint32]string // by offset in funcname
	files map[uint32]string // by offset in filetab

	old *gosym.Table
}

const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
)

// goFrame is what the pclntab says about one pc.
type goFrame struct {
	fn, file string
	line     int
	outer    []InlineCaller
}

func (o *object) goTab() *goTable {
	o.goOnce.Do(func() {
		defer func() {
			if noteRecover(recover()) {
				o.gt = nil
			}
		}()
		o.gt = newGoTable(o)
	})
	return o.gt
}

func findSection(ef *elf.File, names ...string) *elf.Section {
	for _, n := range names {
		if s := ef.Section(n); s != nil && s.Type != elf.SHT_NOBITS {
			return s
		}
	}
	return nil
}

func newGoTable(o *object) *goTable {
	ef := o.ef
	sect := findSection(ef, ".gopclntab", ".data.rel.ro.gopclntab")
	if sect == nil {
		return nil
	}
	data, err := o.sectionData(sect)
	if err != nil || len(data) < 16 {
		return nil
	}
	bo := ef.ByteOrder
	t := &goTable{bo: bo, o: o, names: map[uint32]string{}, files: map[uint32]string{}}
	magic := bo.Uint32(data)
	switch magic {
	case 0xfffffff0:
		t.ver, t.funcHdr, t.inlSize, t.inlName, t.inlParent = 118, 40, 20, 12, 16
	case 0xfffffff1:
		t.ver, t.funcHdr, t.inlSize, t.inlName, t.inlParent = 120, 44, 16, 4, 8
	case 0xfffffffa, 0xfffffffb:
		return newOldGoTable(o, t, data)
	default:
		return nil
	}
	if data[4] != 0 || data[5] != 0 {
		return nil
	}
	t.quantum = uint64(data[6])
	t.ptrSize = int(data[7])
	if t.ptrSize != 4 && t.ptrSize != 8 || t.quantum == 0 {
		return nil
	}
	word := func(i int) uint64 {
		off := 8 + i*t.ptrSize
		if off+t.ptrSize > len(data) {
			return ^uint64(0)
		}
		if t.ptrSize == 4 {
			return uint64(bo.Uint32(data[off:]))
		}
		return bo.Uint64(data[off:])
	}
	nfunc := word(0)
	if nfunc > uint64(len(data))/8 {
		return nil
	}
	t.nfunc = int(nfunc)
	textStart := word(2) // Go 1.18 only; 0 in 1.20+ and in PIE files
	sub := func(i int) []byte {
		off := word(i)
		if off >= uint64(len(data)) {
			return nil
		}
		return data[off:]
	}
	t.funcname, t.cutab, t.filetab, t.pctab, t.pcln = sub(3), sub(4), sub(5), sub(6), sub(7)
	if t.funcname == nil || t.cutab == nil || t.filetab == nil || t.pctab == nil || t.pcln == nil {
		return nil
	}
	if uint64(len(t.pcln)) < (nfunc+1)*8 {
		return nil
	}

	// moduledata holds text and gofunc; find it (works when stripped).
	md := findModuledata(o, sect.Addr, sect.Addr+word(3), t.ptrSize)
	if md.ok {
		t.text = md.word(22)
		// gofunc is word 40 since Go 1.20 (covctrs added), 38 in 1.18.
		idx := 40
		if t.ver == 118 {
			idx = 38
		}
		t.gofunc = md.word(idx)
		if !o.inRodata(t.gofunc) {
			t.gofunc = 0
		}
	}
	if t.text == 0 || !o.inText(t.text) {
		t.text = textStart
	}
	if t.text == 0 || !o.inText(t.text) {
		if s := o.symbols(); s != nil {
			for _, sy := range s.syms {
				if sy.name == "runtime.text" {
					t.text = sy.addr
				}
			}
		}
	}
	if t.text == 0 {
		if s := ef.Section(".text"); s != nil {
			t.text = s.Addr
		}
	}
	if t.gofunc == 0 {
		if s, err := ef.Symbols(); err == nil {
			for _, sy := range s {
				if sy.Name == "go:func.*" || sy.Name == "go.func.*" {
					t.gofunc = sy.Value
					break
				}
			}
		}
	}
	t.end = t.text + uint64(t.u32(t.pcln, int(nfunc)*8))
	return t
}

func newOldGoTable(o *object, t *goTable, data []byte) *goTable {
	var text uint64
	if s := o.ef.Section(".text"); s != nil {
		text = s.Addr
	}
	for _, sy := range o.symbols().syms {
		if sy.name == "runtime.text" {
			text = sy.addr
		}
	}
	var symtab []byte
	if s := findSection(o.ef, ".gosymtab"); s != nil {
		symtab, _ = o.sectionData(s)
	}
	tab, err := gosym.NewTable(symtab, gosym.NewLineTable(data, text))
	if err != nil {
		return nil
	}
	t.old = tab
	return t
}

func (o *object) inText(addr uint64) bool {
	for _, s := range o.ef.Sections {
		if s.Flags&elf.SHF_EXECINSTR != 0 && addr >= s.Addr && addr-s.Addr < s.Size {
			return true
		}
	}
	return false
}

func (o *object) inRodata(addr uint64) bool {
	for _, s := range o.ef.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Flags&elf.SHF_EXECINSTR == 0 && s.Type != elf.SHT_NOBITS &&
			addr >= s.Addr && addr-s.Addr < s.Size {
			return true
		}
	}
	return false
}

func (t *goTable) u32(b []byte, off int) uint32 {
	if off < 0 || off+4 > len(b) {
		return 0
	}
	return t.bo.Uint32(b[off:])
}

// lookup symbolizes pc (a link-time address).
func (t *goTable) lookup(pc uint64) (goFrame, bool) {
	if t.old != nil {
		file, line, fn := t.old.PCToLine(pc)
		if fn == nil {
			return goFrame{}, false
		}
		return goFrame{fn: fn.Name, file: file, line: line}, true
	}
	if pc < t.text || pc >= t.end || t.nfunc == 0 {
		return goFrame{}, false
	}
	off := uint32(pc - t.text)
	i := sort.Search(t.nfunc, func(i int) bool { return t.u32(t.pcln, i*8) > off }) - 1
	if i < 0 {
		return goFrame{}, false
	}
	fo := int(t.u32(t.pcln, i*8+4))
	if fo <= 0 || fo+t.funcHdr > len(t.pcln) {
		return goFrame{}, false
	}
	f := t.pcln[fo:]
	entry := t.text + uint64(t.u32(f, 0))
	nameOff := t.u32(f, 4)
	pcfile, pcln := t.u32(f, 20), t.u32(f, 24)
	npcdata := int(t.u32(f, 28))
	cuOff := t.u32(f, 32)
	nfuncdata := int(f[t.funcHdr-1])

	var gf goFrame
	gf.fn = t.name(nameOff)
	gf.file = t.fileName(cuOff, t.pcvalue(pcfile, entry, pc))
	gf.line = max(int(t.pcvalue(pcln, entry, pc)), 0)

	// Inlining: the inline tree index at pc names the innermost inlined
	// function; its parentPc is a pc in the caller at the call site.
	if npcdata <= pcdataInlTreeIndex || nfuncdata <= funcdataInlTree || t.gofunc == 0 {
		return gf, true
	}
	if t.funcHdr+4*(npcdata+nfuncdata) > len(f) {
		return gf, true
	}
	inlPC := t.u32(f, t.funcHdr+4*pcdataInlTreeIndex)
	inlFD := t.u32(f, t.funcHdr+4*npcdata+4*funcdataInlTree)
	if inlPC == 0 || inlFD == ^uint32(0) {
		return gf, true
	}
	tree := t.gofunc + uint64(inlFD)
	ix := t.pcvalue(inlPC, entry, pc)
	outerFn := gf.fn
	for n := 0; ix >= 0 && n < 64; n++ {
		ic, ok := t.o.readVaddr(tree+uint64(ix)*t.inlSize, t.inlSize)
		if !ok {
			break
		}
		name := t.name(t.bo.Uint32(ic[t.inlName:]))
		parentPc := entry + uint64(t.bo.Uint32(ic[t.inlParent:]))
		if n == 0 {
			gf.fn = name
		} else {
			gf.outer[len(gf.outer)-1].Function = name
		}
		gf.outer = append(gf.outer, InlineCaller{
			Function: outerFn,
			File:     t.fileName(cuOff, t.pcvalue(pcfile, entry, parentPc)),
			Line:     max(int(t.pcvalue(pcln, entry, parentPc)), 0),
		})
		ix = t.pcvalue(inlPC, entry, parentPc)
	}
	return gf, true
}

// pcvalue decodes the pc-value table at off in pctab for a function
// starting at entry, returning the value at target (-1 if none).
func (t *goTable) pcvalue(off uint32, entry, target uint64) int32 {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return -1
	}
	p := t.pctab[off:]
	pc := entry
	val := int32(-1)
	first := true
	for len(p) > 0 {
		uv, n := binary.Uvarint(p)
		if n <= 0 || (uv == 0 && !first) {
			return -1
		}
		p = p[n:]
		uv32 := uint32(uv)
		val += int32(-(uv32 & 1) ^ (uv32 >> 1))
		pcd, n := binary.Uvarint(p)
		if n <= 0 {
			return -1
		}
		p = p[n:]
		pc += pcd * t.quantum
		if target < pc {
			return val
		}
		first = false
	}
	return -1
}

func cstring(b []byte, off uint32) string {
	if uint64(off) >= uint64(len(b)) {
		return ""
	}
	b = b[off:]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func (t *goTable) name(off uint32) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.names[off]; ok {
		return s
	}
	s := funcNameForPrint(cstring(t.funcname, off))
	t.names[off] = s
	return s
}

// funcNameForPrint replaces the shape arguments of a generic function
// name with "...", as the runtime does in tracebacks.
func funcNameForPrint(name string) string {
	i := strings.IndexByte(name, '[')
	j := strings.LastIndexByte(name, ']')
	if i < 0 || j <= i {
		return name
	}
	return name[:i] + "[...]" + name[j+1:]
}

func (t *goTable) fileName(cuOff uint32, fileno int32) string {
	if fileno < 0 {
		return ""
	}
	fo := t.u32(t.cutab, int(cuOff+uint32(fileno))*4)
	if fo == ^uint32(0) {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.files[fo]; ok {
		return s
	}
	s := cstring(t.filetab, fo)
	t.files[fo] = s
	return s
}

// moduledata is the runtime.firstmoduledata record of a Go binary.
type moduledata struct {
	ok      bool
	o       *object
	addr    uint64
	ptrSize int
	relocs  map[uint64]uint64 // PIE: RELATIVE relocations inside it
}

func (m moduledata) word(i int) uint64 {
	a := m.addr + uint64(i*m.ptrSize)
	if m.relocs != nil {
		if v, ok := m.relocs[a]; ok {
			return v
		}
	}
	b, ok := m.o.readVaddr(a, uint64(m.ptrSize))
	if !ok {
		return 0
	}
	if m.ptrSize == 4 {
		return uint64(m.o.ef.ByteOrder.Uint32(b))
	}
	return m.o.ef.ByteOrder.Uint64(b)
}

// mdWords is how many words of moduledata are read.
const mdWords = 48

// findModuledata finds the moduledata whose first two words point to the
// pcHeader (pclntab) and the function name table. In a PIE the pointers
// are not in the file but in R_*_RELATIVE relocations.
func findModuledata(o *object, pclntab, funcnametab uint64, ptrSize int) moduledata {
	ef := o.ef
	bo := ef.ByteOrder
	// PIE: relocations with addend pclntab.
	for _, s := range ef.Sections {
		if s.Type != elf.SHT_RELA || s.Flags&elf.SHF_ALLOC == 0 || ptrSize != 8 {
			continue
		}
		d, err := readSection(s, maxSection) // not cached: read once
		if err != nil {
			continue
		}
		for i := 0; i+24 <= len(d); i += 24 {
			if bo.Uint64(d[i+16:]) != pclntab || !isRelative(ef.Machine, uint32(bo.Uint64(d[i+8:]))) {
				continue
			}
			a := bo.Uint64(d[i:])
			md := moduledata{ok: true, o: o, addr: a, ptrSize: ptrSize, relocs: relativeRelocs(o, a, a+mdWords*8)}
			if md.word(1) == funcnametab {
				return md
			}
		}
	}
	// Not PIE: scan the data sections for the pointer.
	// Go 1.26 has a .go.module section for it; older ones keep it in
	// .noptrdata.
	var scan []*elf.Section
	for _, name := range []string{".go.module", ".noptrdata", ".data", ".data.rel.ro"} {
		if s := ef.Section(name); s != nil {
			scan = append(scan, s)
		}
	}
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_WRITE != 0 && s.Flags&elf.SHF_ALLOC != 0 && !slices.Contains(scan, s) {
			scan = append(scan, s)
		}
	}
	for _, s := range scan {
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		d, err := readSection(s, maxSection)
		if err != nil {
			continue
		}
		for i := 0; i+2*ptrSize <= len(d); i += ptrSize {
			var w0, w1 uint64
			if ptrSize == 8 {
				w0, w1 = bo.Uint64(d[i:]), bo.Uint64(d[i+8:])
			} else {
				w0, w1 = uint64(bo.Uint32(d[i:])), uint64(bo.Uint32(d[i+4:]))
			}
			if w0 == pclntab && w1 == funcnametab {
				return moduledata{ok: true, o: o, addr: s.Addr + uint64(i), ptrSize: ptrSize}
			}
		}
	}
	// Last, the symbol table, when there is one (reading it costs more).
	if s, err := ef.Symbols(); err == nil {
		for _, sy := range s {
			if sy.Name == "runtime.firstmoduledata" {
				md := moduledata{ok: true, o: o, addr: sy.Value, ptrSize: ptrSize}
				md.relocs = relativeRelocs(o, sy.Value, sy.Value+mdWords*uint64(ptrSize))
				if md.word(0) == pclntab {
					return md
				}
			}
		}
	}
	return moduledata{}
}

func isRelative(m elf.Machine, typ uint32) bool {
	switch m {
	case elf.EM_X86_64:
		return typ == uint32(elf.R_X86_64_RELATIVE)
	case elf.EM_AARCH64:
		return typ == uint32(elf.R_AARCH64_RELATIVE)
	case elf.EM_PPC64:
		return typ == uint32(elf.R_PPC64_RELATIVE)
	case elf.EM_RISCV:
		return typ == uint32(elf.R_RISCV_RELATIVE)
	case elf.EM_S390:
		return typ == uint32(elf.R_390_RELATIVE)
	case elf.EM_LOONGARCH:
		return typ == uint32(elf.R_LARCH_RELATIVE)
	}
	return false
}

// relativeRelocs returns the RELATIVE relocations (offset → addend) with
// offsets in [lo, hi), or nil when the object has none there.
func relativeRelocs(o *object, lo, hi uint64) map[uint64]uint64 {
	ef := o.ef
	if ef.Type != elf.ET_DYN || ef.Class != elf.ELFCLASS64 {
		return nil
	}
	var m map[uint64]uint64
	bo := ef.ByteOrder
	for _, s := range ef.Sections {
		if s.Type != elf.SHT_RELA || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		d, err := readSection(s, maxSection)
		if err != nil {
			continue
		}
		for i := 0; i+24 <= len(d); i += 24 {
			off := bo.Uint64(d[i:])
			if off < lo || off >= hi || !isRelative(ef.Machine, uint32(bo.Uint64(d[i+8:]))) {
				continue
			}
			if m == nil {
				m = map[uint64]uint64{}
			}
			m[off] = bo.Uint64(d[i+16:])
		}
	}
	return m
}
