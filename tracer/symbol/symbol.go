// Package symbol turns user-space addresses of a process (the stacks the
// BPF side captures with bpf_get_stackid and BPF_F_USER_STACK) into
// function, file and line.
//
// Sources, per address, in order:
//   - Go binaries: the runtime's pc/line table (.gopclntab), which
//     stripped binaries keep: function names as the runtime prints them,
//     file:line, and inlined frames from the runtime's inline tree.
//   - Otherwise ELF symbols (.symtab, else the separate debug file's,
//     else .dynsym) for the function, and the DWARF line table
//     (.debug_line) for file:line, with the innermost inlined function
//     from the DWARF inlined-subroutine entries.
//
// Separate debug files are looked for under /usr/lib/debug/.build-id and
// by .gnu_debuglink when an object has no DWARF of its own.
//
// An address becomes a link-time address through the mapping holding it:
// file offset = addr - mapping start + mapping offset, then the PT_LOAD
// segment holding that file offset gives vaddr = offset - p_offset +
// p_vaddr. That is the load bias of PIE executables and shared libraries,
// and the identity for non-PIE executables.
package symbol

import (
	"container/list"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Frame is one symbolized address.
type Frame struct {
	// Addr is the address as given. A return address is looked up at
	// Addr-1 (the call instruction); an exact instruction pointer at Addr.
	Addr uint64
	// Function is the function at Addr: for Go, the name as the runtime
	// prints it (main.leakSockets, net.(*conn).Close); for C, the symbol
	// name (C++ names are left mangled). When the code at Addr was inlined,
	// it is the innermost inlined function and InlinedInto lists the
	// functions it was inlined into. "0x..." when nothing is known.
	Function string
	File     string
	Line     int
	// Module is the path of the ELF object as the process mapped it,
	// "[vdso]" (or another bracketed kernel name) for kernel-provided
	// mappings, or "[unknown]" outside any executable file mapping.
	Module string
	// Offset is Addr's offset in Module's file (Addr - mapping start +
	// mapping file offset).
	Offset uint64
	// BuildID is the hex GNU build ID of Module, or its Go build ID when it
	// has no GNU one.
	BuildID string
	// InlinedInto lists, innermost first, the functions Function was
	// inlined into, each with the file:line of its call: InlinedInto[0]
	// called Function at InlinedInto[0].File:Line. The last entry is the
	// function whose machine code holds Addr. Empty when Function was not
	// inlined. For a pprof Location, the lines are the frame itself
	// followed by InlinedInto.
	InlinedInto []InlineCaller
}

// InlineCaller is a function into which another was inlined, and the
// position of that call.
type InlineCaller struct {
	Function string
	File     string
	Line     int
}

// Mapping is one executable mapping of a process, for pprof.
type Mapping struct {
	Start, Limit uint64 // [Start, Limit)
	Offset       uint64 // file offset of Start
	File         string // path as in /proc/PID/maps, or "[vdso]" and the like
	BuildID      string
}

// DefaultCacheSize is how many parsed objects New keeps.
const DefaultCacheSize = 64

// Symbolizer opens and caches ELF objects. It is safe for concurrent use.
// Parsed objects are kept in an LRU cache keyed by build ID (or by
// device, inode, size and mtime when an object has none); objects evicted
// from it stay usable by the Procs holding them.
type Symbolizer struct {
	mu    sync.Mutex
	max   int
	lru   *list.List               // of *cacheEntry, most recent first
	byKey map[string]*list.Element // build ID and file keys
}

type cacheEntry struct {
	obj  *object
	keys []string
}

// New returns a Symbolizer caching DefaultCacheSize objects.
func New() *Symbolizer { return NewWithLimit(DefaultCacheSize) }

// NewWithLimit returns a Symbolizer caching at most maxObjects objects.
func NewWithLimit(maxObjects int) *Symbolizer {
	if maxObjects < 1 {
		maxObjects = 1
	}
	return &Symbolizer{max: maxObjects, lru: list.New(), byKey: map[string]*list.Element{}}
}

var (
	defaultOnce sync.Once
	defaultSym  *Symbolizer
)

// Default is the Symbolizer that ProcFromMaps uses.
func Default() *Symbolizer {
	defaultOnce.Do(func() { defaultSym = New() })
	return defaultSym
}

// Proc is the executable mappings of one process with their objects. It
// is immutable and safe for concurrent use.
type Proc struct {
	maps     []procMap // sorted by start, not overlapping
	warnings []error
}

type procMap struct {
	Mapping
	module string // Frame.Module
	obj    *object
}

// Process reads /proc/PID/maps once and opens the objects mapped
// executable in the process (through /proc/PID/root, falling back to
// /proc/PID/map_files for deleted or replaced files).
func (s *Symbolizer) Process(pid int) (*Proc, error) {
	path := fmt.Sprintf("/proc/%d/maps", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return s.newProc(data, path, fmt.Sprintf("/proc/%d/root", pid), pid)
}

// ProcFromMaps builds a Proc from the text of /proc/PID/maps, opening
// the files under root ("" or "/" for the host's; /proc/PID/root for a
// process in a container), with the Default Symbolizer.
func ProcFromMaps(maps []byte, root string) (*Proc, error) {
	return Default().ProcFromMaps(maps, root)
}

// ProcFromMaps is like the function ProcFromMaps, with s's cache.
func (s *Symbolizer) ProcFromMaps(maps []byte, root string) (*Proc, error) {
	return s.newProc(maps, "maps text", root, 0)
}

func (s *Symbolizer) newProc(maps []byte, what, root string, pid int) (*Proc, error) {
	entries, err := parseMaps(maps)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", what, err)
	}
	p := &Proc{}
	opened := map[string]*object{}
	failed := map[string]bool{}
	for i := range entries {
		e := &entries[i]
		if !e.exec() {
			continue
		}
		pm := procMap{Mapping: Mapping{Start: e.Start, Limit: e.End, Offset: e.Offset, File: e.Path}}
		switch {
		case e.Path == "" || (e.Inode == 0 && !strings.HasPrefix(e.Path, "/")):
			// Kernel-provided code ([vdso], [vsyscall]) keeps its name;
			// anonymous code (JIT, also when named "[anon:...]") is
			// unknown.
			if strings.HasPrefix(e.Path, "[") && !strings.HasPrefix(e.Path, "[anon") {
				pm.module = e.Path
			} else {
				pm.module = unknownModule
			}
		default:
			pm.module = e.Path
			key := fmt.Sprintf("%s\x00%d", e.Path, e.Inode)
			obj, ok := opened[key]
			if !ok && !failed[key] {
				obj, err = s.open(e, root, pid)
				if err != nil {
					failed[key] = true
					p.warnings = append(p.warnings, err)
				} else {
					opened[key] = obj
				}
			}
			pm.obj = obj
			if obj != nil {
				pm.BuildID = obj.buildID
			}
		}
		p.maps = append(p.maps, pm)
	}
	sort.Slice(p.maps, func(i, j int) bool { return p.maps[i].Start < p.maps[j].Start })
	// Drop overlaps (possible only in hand-written maps text).
	out := p.maps[:0]
	for _, m := range p.maps {
		if n := len(out); n > 0 && m.Start < out[n-1].Limit {
			continue
		}
		out = append(out, m)
	}
	p.maps = out
	return p, nil
}

const unknownModule = "[unknown]"

// open returns the object for the file of e, from the cache or parsed.
func (s *Symbolizer) open(e *mapEntry, root string, pid int) (*object, error) {
	var cands []string
	if !e.Deleted {
		cands = append(cands, joinRoot(root, e.Path))
	}
	if pid > 0 {
		cands = append(cands, fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, e.Start, e.End))
	}
	var firstErr error
	for _, c := range cands {
		// O_NONBLOCK: a FIFO at that path must not block us.
		f, err := os.OpenFile(c, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("opening %s: %w", c, err)
			}
			continue
		}
		st, err := f.Stat()
		if err == nil && !st.Mode().IsRegular() {
			err = fmt.Errorf("not a regular file (%v)", st.Mode().Type())
		}
		if err != nil {
			f.Close()
			if firstErr == nil {
				firstErr = fmt.Errorf("opening %s: %w", c, err)
			}
			continue
		}
		sys, _ := st.Sys().(*syscall.Stat_t)
		if sys != nil && e.Inode != 0 && sys.Ino != e.Inode {
			f.Close()
			if firstErr == nil {
				firstErr = fmt.Errorf("opening %s: inode %d, the process mapped inode %d", c, sys.Ino, e.Inode)
			}
			continue
		}
		fkey := "file:" + c + ":" + strconv.FormatInt(st.Size(), 10) + ":" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
		if sys != nil {
			fkey = fmt.Sprintf("file:%d:%d:%d:%d", sys.Dev, sys.Ino, st.Size(), st.ModTime().UnixNano())
		}
		if obj := s.get(fkey); obj != nil {
			f.Close()
			return obj, nil
		}
		roots := []string{"/"}
		if root != "" && root != "/" {
			roots = []string{root, "/"}
		}
		obj, err := openObject(f, e.Path, roots)
		if err != nil {
			return nil, err
		}
		return s.put(obj, fkey), nil
	}
	return nil, firstErr
}

// joinRoot is path under root; ".." in path cannot climb out of root.
func joinRoot(root, path string) string {
	path = filepath.Clean("/" + path)
	if root == "" || root == "/" {
		return path
	}
	return filepath.Join(root, path)
}

func (s *Symbolizer) get(key string) *object {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[key]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).obj
	}
	return nil
}

// put caches obj under fkey and its build ID, returning the object to use:
// an already cached one with the same build ID wins.
func (s *Symbolizer) put(obj *object, fkey string) *object {
	s.mu.Lock()
	defer s.mu.Unlock()
	if obj.buildID != "" {
		if el, ok := s.byKey["build:"+obj.buildID]; ok {
			ce := el.Value.(*cacheEntry)
			if _, dup := s.byKey[fkey]; !dup {
				s.byKey[fkey] = el
				ce.keys = append(ce.keys, fkey)
			}
			s.lru.MoveToFront(el)
			return ce.obj
		}
	}
	if el, ok := s.byKey[fkey]; ok { // raced with another open
		s.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).obj
	}
	ce := &cacheEntry{obj: obj, keys: []string{fkey}}
	if obj.buildID != "" {
		ce.keys = append(ce.keys, "build:"+obj.buildID)
	}
	el := s.lru.PushFront(ce)
	for _, k := range ce.keys {
		s.byKey[k] = el
	}
	for s.lru.Len() > s.max {
		old := s.lru.Back()
		for _, k := range old.Value.(*cacheEntry).keys {
			delete(s.byKey, k)
		}
		s.lru.Remove(old)
	}
	return obj
}

// Len is how many objects are cached.
func (s *Symbolizer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Warnings are the objects that could not be opened or parsed; their
// addresses symbolize to their module and offset only.
func (p *Proc) Warnings() []error { return p.warnings }

// Mappings returns the executable mappings of the process that have a
// name (files and kernel-provided ones such as [vdso]), in address order.
func (p *Proc) Mappings() []Mapping {
	out := make([]Mapping, 0, len(p.maps))
	for _, m := range p.maps {
		if m.File != "" {
			out = append(out, m.Mapping)
		}
	}
	return out
}

// Symbolize symbolizes a user stack: addrs[0] is the exact instruction
// pointer of the innermost frame, the others are return addresses.
func (p *Proc) Symbolize(addrs []uint64) []Frame {
	out := make([]Frame, len(addrs))
	for i, a := range addrs {
		out[i] = p.Lookup(a, i > 0)
	}
	return out
}

// SymbolizeReturns symbolizes addresses that are all return addresses
// (such as those of runtime.Callers, or a stack whose first entry is a
// return address too).
func (p *Proc) SymbolizeReturns(addrs []uint64) []Frame {
	out := make([]Frame, len(addrs))
	for i, a := range addrs {
		out[i] = p.Lookup(a, true)
	}
	return out
}

// Lookup symbolizes one address; isReturn says it is a return address,
// looked up at addr-1 to land in the call instruction.
func (p *Proc) Lookup(addr uint64, isReturn bool) (fr Frame) {
	fr = Frame{Addr: addr, Module: unknownModule}
	i := sort.Search(len(p.maps), func(i int) bool { return p.maps[i].Limit > addr })
	if i >= len(p.maps) || addr < p.maps[i].Start {
		fr.Function = hexAddr(addr)
		return fr
	}
	m := &p.maps[i]
	fr.Module = m.module
	fr.Offset = addr - m.Start + m.Offset
	fr.BuildID = m.BuildID
	if m.obj != nil {
		pc := addr
		if isReturn && pc > m.Start {
			pc--
		}
		func() {
			defer func() {
				if noteRecover(recover()) {
					fr.Function, fr.File, fr.Line, fr.InlinedInto = "", "", 0, nil
				}
			}()
			m.obj.lookup(pc-m.Start+m.Offset, &fr)
		}()
	}
	if fr.Function == "" {
		fr.Function = hexAddr(addr)
	}
	return fr
}

func hexAddr(a uint64) string { return "0x" + strconv.FormatUint(a, 16) }

// lookup fills in fr for the code at file offset off.
func (o *object) lookup(off uint64, fr *Frame) {
	pc, ok := o.vaddr(off)
	if !ok {
		return
	}
	if o.isGo {
		if gt := o.goTab(); gt != nil {
			if g, ok := gt.lookup(pc); ok {
				fr.Function, fr.File, fr.Line, fr.InlinedInto = g.fn, g.file, g.line, g.outer
				return
			}
		}
	}
	if sym, ok := o.symbols().lookup(pc); ok {
		fr.Function = sym.name
	}
	dw := o.dwarf()
	if dw == nil {
		return
	}
	u := dw.unit(pc)
	if u == nil {
		return
	}
	file, line, ok := dw.line(u, pc)
	if !ok {
		return
	}
	var buf [8]*dwFunc
	chain := dw.inlineChain(u, pc, buf[:0])
	if len(chain) == 0 {
		if fr.Function != "" { // else padding between functions
			fr.File, fr.Line = file, line
		}
		return
	}
	fr.File, fr.Line = file, line
	symName := fr.Function
	if symName == "" && !chain[len(chain)-1].inlined {
		symName = chain[len(chain)-1].name
	}
	if !chain[0].inlined {
		fr.Function = symName
		return
	}
	// chain: innermost inlined ... subprogram. Each inlined entry's call
	// site is in the next one out; the real function is the symbol's.
	outer := make([]InlineCaller, 0, len(chain))
	for k := 1; k <= len(chain); k++ {
		in := chain[k-1]
		if !in.inlined {
			break
		}
		name := symName
		if k < len(chain) && chain[k].inlined {
			name = chain[k].name
		}
		outer = append(outer, InlineCaller{Function: name, File: u.file(uint32(in.callFile)), Line: int(in.callLine)})
	}
	fr.Function = chain[0].name
	fr.InlinedInto = outer
}
