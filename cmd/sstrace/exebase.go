package main

import (
	"debug/elf"
	"fmt"
	"os"

	"sstrace/tracer/symbol"
)

// procFromExe rebuilds, for a process that is gone, the mapping of its
// executable: the kernel recorded where its text started (mm->start_code,
// the lowest executable segment's address plus the load bias). Frames in
// shared libraries stay unresolved this way; the process's own frames,
// which say where the socket was made, resolve.
func procFromExe(sym *symbol.Symbolizer, exe string, startCode uint64) (*symbol.Proc, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", exe, err)
	}
	defer f.Close()
	minX, first := ^uint64(0), (*elf.Prog)(nil)
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if first == nil || p.Off < first.Off {
			first = p
		}
		if p.Flags&elf.PF_X != 0 && p.Vaddr < minX {
			minX = p.Vaddr
		}
	}
	if first == nil || minX == ^uint64(0) || startCode < minX {
		return nil, fmt.Errorf("%s: no executable segment to place at %#x", exe, startCode)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", exe, err)
	}
	bias := startCode - minX
	start := bias + first.Vaddr - first.Off
	maps := fmt.Sprintf("%x-%x r-xp 00000000 00:00 0 %s\n", start, start+uint64(fi.Size()), exe)
	return sym.ProcFromMaps([]byte(maps), "/")
}
