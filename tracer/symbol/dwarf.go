package symbol

import (
	"debug/dwarf"
	"debug/elf"
	"sort"
	"sync"
)

// dwarfInfo indexes the compilation units of an object's DWARF by address.
// Each unit's line table and inline tree are read on first use.
type dwarfInfo struct {
	d     *dwarf.Data
	spans []cuSpan // sorted by lo
	units []*cuInfo
}

type cuSpan struct {
	lo, hi uint64
	unit   int
}

type cuInfo struct {
	off dwarf.Offset // of the compile unit entry

	linesOnce sync.Once
	files     []string  // file names by line table index
	rows      []lineRow // sorted by address; end rows first at equal addresses

	inlOnce sync.Once
	ivals   []ival // sorted by lo
	funcs   []dwFunc
}

type lineRow struct {
	addr uint64
	file uint32
	line int32
	end  bool
}

// dwFunc is a subprogram or an inlined subroutine.
type dwFunc struct {
	name     string
	depth    int32
	inlined  bool
	callFile int32 // for inlined: index into files of the call site
	callLine int32
}

// ival is one address range of a dwFunc.
type ival struct {
	lo, hi uint64
	fn     int32
}

// dwarf returns the DWARF index of o (from o or its separate debug file),
// or nil if there is none.
func (o *object) dwarf() *dwarfInfo {
	o.dwOnce.Do(func() {
		defer func() {
			if noteRecover(recover()) {
				o.dw = nil
			}
		}()
		ef := o.ef
		if ef.Section(".debug_info") == nil && ef.Section(".zdebug_info") == nil {
			if ef = o.debugFile(); ef == nil {
				return
			}
		}
		o.dw = newDwarfInfo(ef)
	})
	return o.dw
}

func newDwarfInfo(ef *elf.File) *dwarfInfo {
	for _, s := range ef.Sections {
		// Refuse absurd sizes claimed by corrupt headers before
		// debug/elf allocates them.
		if len(s.Name) > 7 && (s.Name[:7] == ".debug_" || s.Name[:8] == ".zdebug_") && s.Size > maxSection {
			return nil
		}
	}
	d, err := ef.DWARF()
	if err != nil {
		return nil
	}
	di := &dwarfInfo{d: d}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			rs, err := d.Ranges(e)
			if err == nil && len(rs) > 0 {
				u := len(di.units)
				di.units = append(di.units, &cuInfo{off: e.Offset})
				for _, rg := range rs {
					if rg[1] > rg[0] {
						di.spans = append(di.spans, cuSpan{rg[0], rg[1], u})
					}
				}
			}
		}
		r.SkipChildren()
	}
	sort.Slice(di.spans, func(i, j int) bool { return di.spans[i].lo < di.spans[j].lo })
	return di
}

// unit returns the compilation unit covering pc.
func (di *dwarfInfo) unit(pc uint64) *cuInfo {
	i := sort.Search(len(di.spans), func(i int) bool { return di.spans[i].lo > pc }) - 1
	for j := i; j >= 0 && j > i-8; j-- {
		if s := di.spans[j]; pc < s.hi {
			return di.units[s.unit]
		}
	}
	return nil
}

// lines loads the line table of u.
func (di *dwarfInfo) lines(u *cuInfo) {
	u.linesOnce.Do(func() {
		defer func() {
			if noteRecover(recover()) {
				u.rows, u.files = nil, nil
			}
		}()
		r := di.d.Reader()
		r.Seek(u.off)
		cu, err := r.Next()
		if err != nil || cu == nil {
			return
		}
		lr, err := di.d.LineReader(cu)
		if err != nil || lr == nil {
			return
		}
		idx := map[*dwarf.LineFile]uint32{}
		for _, f := range lr.Files() {
			idx[f] = uint32(len(u.files))
			if f == nil {
				u.files = append(u.files, "")
			} else {
				u.files = append(u.files, f.Name)
			}
		}
		var le dwarf.LineEntry
		for {
			if err := lr.Next(&le); err != nil {
				break
			}
			fi, ok := idx[le.File]
			if !ok {
				fi = uint32(len(u.files))
				idx[le.File] = fi
				name := ""
				if le.File != nil {
					name = le.File.Name
				}
				u.files = append(u.files, name)
			}
			u.rows = append(u.rows, lineRow{addr: le.Address, file: fi, line: int32(le.Line), end: le.EndSequence})
		}
		sort.SliceStable(u.rows, func(i, j int) bool {
			a, b := &u.rows[i], &u.rows[j]
			if a.addr != b.addr {
				return a.addr < b.addr
			}
			return a.end && !b.end
		})
	})
}

// line returns the file and line of pc in u.
func (di *dwarfInfo) line(u *cuInfo, pc uint64) (string, int, bool) {
	di.lines(u)
	i := sort.Search(len(u.rows), func(i int) bool { return u.rows[i].addr > pc }) - 1
	if i < 0 || u.rows[i].end {
		return "", 0, false
	}
	r := u.rows[i]
	return u.file(r.file), int(r.line), true
}

func (u *cuInfo) file(i uint32) string {
	if int(i) < len(u.files) {
		return u.files[i]
	}
	return ""
}

// inlines loads the subprograms and inlined subroutines of u.
func (di *dwarfInfo) inlines(u *cuInfo) {
	di.lines(u) // call files index the line table's file list
	u.inlOnce.Do(func() {
		defer func() {
			if noteRecover(recover()) {
				u.ivals, u.funcs = nil, nil
			}
		}()
		d := di.d
		names := map[dwarf.Offset]string{}
		r := d.Reader()
		r.Seek(u.off)
		cu, err := r.Next()
		if err != nil || cu == nil || !cu.Children {
			return
		}
		depth := int32(1)
		for n := 0; depth > 0 && n < 1<<24; n++ {
			e, err := r.Next()
			if err != nil || e == nil {
				break
			}
			if e.Tag == 0 {
				depth--
				continue
			}
			descend := false
			switch e.Tag {
			case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine:
				rs, err := d.Ranges(e)
				if err != nil || len(rs) == 0 {
					break // declarations and abstract instances
				}
				descend = true
				fn := dwFunc{name: di.funcName(e, names, 0), depth: depth}
				if e.Tag == dwarf.TagInlinedSubroutine {
					fn.inlined = true
					fn.callFile = int32(attrInt(e, dwarf.AttrCallFile, -1))
					fn.callLine = int32(attrInt(e, dwarf.AttrCallLine, 0))
				}
				k := int32(len(u.funcs))
				u.funcs = append(u.funcs, fn)
				for _, rg := range rs {
					if rg[1] > rg[0] {
						u.ivals = append(u.ivals, ival{rg[0], rg[1], k})
					}
				}
			case dwarf.TagLexDwarfBlock, dwarf.TagNamespace, dwarf.TagModule:
				descend = true
			}
			if e.Children {
				if descend {
					depth++
				} else {
					r.SkipChildren()
				}
			}
		}
		sort.SliceStable(u.ivals, func(i, j int) bool { return u.ivals[i].lo < u.ivals[j].lo })
	})
}

func attrInt(e *dwarf.Entry, a dwarf.Attr, def int64) int64 {
	switch v := e.Val(a).(type) {
	case int64:
		return v
	case uint64:
		return int64(v)
	}
	return def
}

// funcName is the name of a subprogram entry, following abstract origins
// and specifications.
func (di *dwarfInfo) funcName(e *dwarf.Entry, cache map[dwarf.Offset]string, hops int) string {
	if s, ok := e.Val(dwarf.AttrName).(string); ok {
		return s
	}
	if s, ok := e.Val(dwarf.AttrLinkageName).(string); ok {
		return s
	}
	if hops > 8 {
		return ""
	}
	for _, a := range []dwarf.Attr{dwarf.AttrAbstractOrigin, dwarf.AttrSpecification} {
		off, ok := e.Val(a).(dwarf.Offset)
		if !ok {
			continue
		}
		if s, ok := cache[off]; ok {
			return s
		}
		r := di.d.Reader()
		r.Seek(off)
		oe, err := r.Next()
		if err != nil || oe == nil {
			continue
		}
		s := di.funcName(oe, cache, hops+1)
		cache[off] = s
		return s
	}
	return ""
}

// inlineChain appends to chain the functions whose ranges hold pc,
// innermost first: inlined subroutines, then (last) the subprogram.
func (di *dwarfInfo) inlineChain(u *cuInfo, pc uint64, chain []*dwFunc) []*dwFunc {
	di.inlines(u)
	i := sort.Search(len(u.ivals), func(i int) bool { return u.ivals[i].lo > pc }) - 1
	for ; i >= 0; i-- {
		iv := u.ivals[i]
		if pc >= iv.hi {
			continue
		}
		fn := &u.funcs[iv.fn]
		// Insertion sort by depth, deepest first.
		chain = append(chain, fn)
		for k := len(chain) - 1; k > 0 && chain[k-1].depth < chain[k].depth; k-- {
			chain[k-1], chain[k] = chain[k], chain[k-1]
		}
		if !fn.inlined {
			break
		}
	}
	return chain
}
