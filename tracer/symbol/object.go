package symbol

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// object is one parsed ELF file (an executable or a shared library). Its
// headers are read when it is opened; symbols, DWARF and the Go pclntab are
// read on first use, each once. It is safe for concurrent use.
type object struct {
	name    string // path of the file, for messages
	f       *os.File
	ef      *elf.File
	buildID string // hex GNU build ID, else the Go build ID, else ""
	isGo    bool
	loads   []elf.ProgHeader // PT_LOAD segments, in file order
	roots   []string         // where to look for separate debug files

	symOnce sync.Once
	syms    *symTable

	dbgOnce sync.Once
	dbg     *elf.File // separate debug file, or nil

	dwOnce sync.Once
	dw     *dwarfInfo

	goOnce sync.Once
	gt     *goTable

	secMu   sync.Mutex
	secData map[*elf.Section][]byte
}

// openObject parses the ELF headers of f. It takes ownership of f: f is
// closed on error and otherwise when the object becomes unreachable.
func openObject(f *os.File, name string, roots []string) (o *object, err error) {
	defer func() {
		if r := recover(); noteRecover(r) {
			err = fmt.Errorf("parsing ELF %s: %v", name, r)
		}
		if err != nil {
			f.Close()
		}
	}()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("parsing ELF %s: %w", name, err)
	}
	o = &object{name: name, f: f, ef: ef, roots: roots, secData: map[*elf.Section][]byte{}}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD {
			o.loads = append(o.loads, p.ProgHeader)
		}
	}
	if len(o.loads) == 0 {
		return nil, fmt.Errorf("parsing ELF %s: no PT_LOAD segment", name)
	}
	gnu, goID := readBuildIDs(ef)
	switch {
	case gnu != "":
		o.buildID = gnu
	case goID != "":
		o.buildID = goID
	}
	o.isGo = goID != "" || ef.Section(".gopclntab") != nil || ef.Section(".go.buildinfo") != nil
	return o, nil
}

// readBuildIDs returns the hex GNU build ID and the Go build ID found in the
// notes of ef (from the note sections, else the PT_NOTE segments).
func readBuildIDs(ef *elf.File) (gnu, goID string) {
	var notes [][]byte
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOTE {
			if d, err := readSection(s, 1<<16); err == nil {
				notes = append(notes, d)
			}
		}
	}
	if len(notes) == 0 {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_NOTE && p.Filesz <= 1<<16 {
				d := make([]byte, p.Filesz)
				if _, err := p.ReadAt(d, 0); err == nil {
					notes = append(notes, d)
				}
			}
		}
	}
	bo := ef.ByteOrder
	for _, d := range notes {
		for len(d) >= 12 {
			namesz, descsz, typ := bo.Uint32(d), bo.Uint32(d[4:]), bo.Uint32(d[8:])
			d = d[12:]
			n4, d4 := align4(uint64(namesz)), align4(uint64(descsz))
			if n4+d4 > uint64(len(d)) {
				break
			}
			name := string(bytes.TrimRight(d[:namesz], "\x00"))
			desc := d[n4 : n4+uint64(descsz)]
			d = d[n4+d4:]
			switch {
			case name == "GNU" && typ == 3 && gnu == "": // NT_GNU_BUILD_ID
				gnu = hex.EncodeToString(desc)
			case name == "Go" && typ == 4 && goID == "": // Go build ID
				goID = string(bytes.TrimRight(desc, "\x00"))
			}
		}
	}
	return gnu, goID
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// readSection reads the data of s, refusing sections larger than limit
// bytes (which a truncated or corrupt file may claim).
func readSection(s *elf.Section, limit uint64) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("section %s has no data", s.Name)
	}
	if s.Size > limit {
		return nil, fmt.Errorf("section %s is %d bytes, over the limit of %d", s.Name, s.Size, limit)
	}
	return s.Data()
}

// maxSection bounds what is read of one section: 1 GiB.
const maxSection = 1 << 30

// sectionData is readSection with a per-object cache.
func (o *object) sectionData(s *elf.Section) ([]byte, error) {
	o.secMu.Lock()
	defer o.secMu.Unlock()
	if d, ok := o.secData[s]; ok {
		return d, nil
	}
	d, err := readSection(s, maxSection)
	if err != nil {
		return nil, fmt.Errorf("reading %s of %s: %w", s.Name, o.name, err)
	}
	o.secData[s] = d
	return d, nil
}

// vaddr converts an offset in the file to a link-time virtual address,
// using the PT_LOAD segment holding that offset (executable segments
// first: with some linkers the same page is in two segments). This is the
// load bias computation: runtime address = mapping start + (vaddr - p_vaddr)
// - (mapping offset - p_offset).
func (o *object) vaddr(fileOff uint64) (uint64, bool) {
	for pass := 0; pass < 2; pass++ {
		for i := range o.loads {
			p := &o.loads[i]
			if (pass == 0) != (p.Flags&elf.PF_X != 0) {
				continue
			}
			if fileOff >= p.Off && fileOff-p.Off < p.Filesz {
				return p.Vaddr + (fileOff - p.Off), true
			}
		}
	}
	return 0, false
}

// readVaddr returns n bytes at link-time address addr from the allocated
// section holding them.
func (o *object) readVaddr(addr, n uint64) ([]byte, bool) {
	for _, s := range o.ef.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || addr < s.Addr || addr-s.Addr >= s.Size {
			continue
		}
		d, err := o.sectionData(s)
		if err != nil {
			return nil, false
		}
		off := addr - s.Addr
		if off > uint64(len(d)) || n > uint64(len(d))-off {
			return nil, false
		}
		return d[off : off+n], true
	}
	return nil, false
}

// debugFile returns the separate debug file of o (by build ID under
// /usr/lib/debug/.build-id, else by .gnu_debuglink), or nil. It is looked
// for only when o has no DWARF of its own.
func (o *object) debugFile() *elf.File {
	o.dbgOnce.Do(func() {
		if o.ef.Section(".debug_info") != nil || o.ef.Section(".zdebug_info") != nil {
			return
		}
		o.dbg = o.findDebugFile()
	})
	return o.dbg
}

func (o *object) findDebugFile() *elf.File {
	var cands []string
	gnu, _ := readBuildIDs(o.ef)
	for _, root := range o.roots {
		if len(gnu) > 2 {
			cands = append(cands, filepath.Join(root, "/usr/lib/debug/.build-id", gnu[:2], gnu[2:]+".debug"))
		}
	}
	if s := o.ef.Section(".gnu_debuglink"); s != nil {
		if d, err := readSection(s, 4096); err == nil {
			if i := bytes.IndexByte(d, 0); i > 0 {
				link := filepath.Base(string(d[:i]))
				dir := filepath.Dir(o.name)
				for _, root := range o.roots {
					cands = append(cands,
						filepath.Join(root, "/usr/lib/debug", dir, link),
						filepath.Join(root, dir, ".debug", link))
				}
			}
		}
	}
	for _, c := range cands {
		if ef := openDebug(c, gnu); ef != nil {
			return ef
		}
	}
	return nil
}

func openDebug(path, buildID string) (ef *elf.File) {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() {
		if noteRecover(recover()) || ef == nil {
			f.Close()
			ef = nil
		}
	}()
	ef, err = elf.NewFile(f)
	if err != nil {
		return nil
	}
	if buildID != "" {
		if got, _ := readBuildIDs(ef); got != buildID {
			return nil
		}
	}
	if ef.Section(".debug_info") == nil && ef.Section(".zdebug_info") == nil && ef.Section(".symtab") == nil {
		return nil
	}
	return ef
}

// fsym is a function symbol.
type fsym struct {
	addr, size uint64
	limit      uint64 // for size 0: end of the symbol's section
	name       string
}

// symTable is the sorted function symbols of an object, one per address.
type symTable struct {
	syms []fsym
}

func (o *object) symbols() *symTable {
	o.symOnce.Do(func() {
		defer func() {
			if noteRecover(recover()) && o.syms == nil {
				o.syms = &symTable{}
			}
		}()
		o.syms = &symTable{}
		// The full symbol table of the object, else that of its debug
		// file, else the dynamic symbols.
		ef := o.ef
		syms, err := ef.Symbols()
		if len(syms) == 0 || err != nil {
			if dbg := o.debugFile(); dbg != nil {
				if s, err := dbg.Symbols(); err == nil && len(s) > 0 {
					syms, ef = s, dbg
				}
			}
		}
		if len(syms) == 0 {
			syms, _ = o.ef.DynamicSymbols()
			ef = o.ef
		}
		o.syms = newSymTable(ef, syms)
	})
	return o.syms
}

func newSymTable(ef *elf.File, syms []elf.Symbol) *symTable {
	type cand struct {
		fsym
		rank int
	}
	var cs []cand
	for _, s := range syms {
		if s.Value == 0 || s.Name == "" || s.Section == elf.SHN_UNDEF {
			continue
		}
		typ := elf.ST_TYPE(s.Info)
		switch typ {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		case elf.STT_NOTYPE:
			// Assembly labels: only in executable sections, not local
			// compiler labels.
			if int(s.Section) >= len(ef.Sections) || ef.Sections[s.Section].Flags&elf.SHF_EXECINSTR == 0 ||
				strings.HasPrefix(s.Name, ".L") || strings.HasPrefix(s.Name, "$") {
				continue
			}
		default:
			continue
		}
		// Rank aliases at one address: sized, fewer leading underscores
		// (socket over __socket), global, weak, local, shorter.
		rank := 0
		if s.Size == 0 {
			rank += 10000
		}
		rank += 100 * (len(s.Name) - len(strings.TrimLeft(s.Name, "_")))
		switch elf.ST_BIND(s.Info) {
		case elf.STB_GLOBAL:
		case elf.STB_WEAK:
			rank += 10
		default:
			rank += 20
		}
		if typ == elf.STT_NOTYPE {
			rank += 5
		}
		// A symbol without size extends at most to the end of its section.
		limit := ^uint64(0)
		if s.Size == 0 && int(s.Section) < len(ef.Sections) {
			sec := ef.Sections[s.Section]
			limit = sec.Addr + sec.Size
		}
		cs = append(cs, cand{fsym{s.Value, s.Size, limit, s.Name}, rank})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].addr != cs[j].addr {
			return cs[i].addr < cs[j].addr
		}
		if cs[i].rank != cs[j].rank {
			return cs[i].rank < cs[j].rank
		}
		if len(cs[i].name) != len(cs[j].name) {
			return len(cs[i].name) < len(cs[j].name)
		}
		return cs[i].name < cs[j].name
	})
	t := &symTable{syms: make([]fsym, 0, len(cs))}
	for _, c := range cs {
		if n := len(t.syms); n > 0 && t.syms[n-1].addr == c.addr {
			t.syms[n-1].size = max(t.syms[n-1].size, c.size)
			t.syms[n-1].limit = max(t.syms[n-1].limit, c.limit)
			continue
		}
		t.syms = append(t.syms, c.fsym)
	}
	return t
}

// lookup returns the symbol containing addr: a sized symbol whose range
// holds it, else the nearest symbol below it if that one has no size.
func (t *symTable) lookup(addr uint64) (fsym, bool) {
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].addr > addr }) - 1
	if i < 0 {
		return fsym{}, false
	}
	if s := t.syms[i]; (s.size == 0 && addr < s.limit) || addr-s.addr < s.size {
		return s, true
	}
	// A few symbols further down may still contain addr (nested or
	// overlapping symbols, as in hand-written assembly).
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		if s := t.syms[j]; s.size > 0 && addr-s.addr < s.size {
			return s, true
		}
	}
	return fsym{}, false
}

// recovered counts the panics of the ELF, DWARF and pclntab readers that
// were turned into missing information (for tests); firstPanic is the
// first one's value and stack.
var (
	recovered  atomic.Int64
	firstPanic atomic.Value
)

func noteRecover(r any) bool {
	if r == nil {
		return false
	}
	if recovered.Add(1) == 1 {
		firstPanic.Store(fmt.Sprintf("%v\n%s", r, debug.Stack()))
	}
	return true
}
