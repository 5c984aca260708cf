package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"sstrace/tracer"
	"sstrace/tracer/symbol"
)

// userStacks symbolizes the user stacks the tracer captured (the socket()
// of a birth for leaks, the connect() of a SYN-SENT for stalls). Each
// process's mappings are read once, while it lives: call process when its
// event arrives, stack when reporting. It is safe for concurrent use.
type userStacks struct {
	sym   *symbol.Symbolizer
	mu    sync.Mutex // guards procs
	procs map[uint32]*procInfo
	// exeHint names the executable of processes that may be gone before
	// their /proc entry is read (leaks -- CMD: the command's).
	exeHint map[uint32]string
}

// maxProcs bounds the processes whose mappings are kept; past it the
// cache starts over (mappings are cheap to read again, symbol tables are
// cached by file in the Symbolizer).
const maxProcs = 4096

type procInfo struct {
	exe  string
	proc *symbol.Proc
	err  error
}

func newUserStacks() *userStacks {
	return &userStacks{sym: symbol.New(), procs: map[uint32]*procInfo{}, exeHint: map[uint32]string{}}
}

// process reads (once) a process's executable and mappings.
func (u *userStacks) process(pid uint32) *procInfo {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p, ok := u.procs[pid]; ok {
		return p
	}
	if len(u.procs) >= maxProcs {
		clear(u.procs)
	}
	p := &procInfo{}
	p.exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if p.exe == "" {
		p.exe = u.exeHint[pid]
	}
	p.proc, p.err = u.sym.Process(int(pid))
	u.procs[pid] = p
	return p
}

// resolved says whether a frame was found in a symbol table.
func resolved(f symbol.Frame) bool { return !strings.HasPrefix(f.Function, "0x") }

// syscallWrappers are libc functions that make a syscall without setting up
// a stack frame: a frame-pointer walk from inside one skips its caller.
// glibc's connect() makes its syscall frameless when the process has one
// thread (with more, it calls the cancellation hooks from a frame of its
// own, and the word at the stack pointer is no return address: stack
// checks that the word resolves before using it).
var syscallWrappers = map[string]bool{
	"socket": true, "__socket": true, "__GI_socket": true, "__libc_socket": true,
	"connect": true, "__connect": true, "__libc_connect": true, "__GI___connect": true, "__GI_connect": true,
}

// stack symbolizes a stack captured in pid. When the innermost frame is a
// frameless libc wrapper, userRet (the word at the stack pointer: the
// caller's return address) is put back in as the second frame. The string
// says why there is no stack.
func (u *userStacks) stack(pid uint32, st tracer.Stack, userRet uint64) ([]symbol.Frame, string) {
	p := u.process(pid)
	if err := st.Err(); err != nil {
		return nil, err.Error()
	}
	addrs := st.Frames()
	if len(addrs) == 0 {
		return nil, "no user frames captured"
	}
	proc := p.proc
	if proc != nil && len(addrs) > 0 && !resolved(proc.Lookup(addrs[0], false)) &&
		!resolved(proc.Lookup(addrs[len(addrs)-1], true)) {
		// Maps read while the process was exiting come back empty, or
		// name files that can no longer be opened through /proc/PID/root.
		proc = nil
	}
	if proc == nil {
		// Gone before its maps could be read: place its executable where
		// the kernel saw its text.
		var perr error
		switch {
		case p.exe == "":
			perr = errors.New("executable unknown")
		case st.ExeBase() == 0:
			perr = errors.New("no text address recorded")
		default:
			proc, perr = procFromExe(u.sym, p.exe, st.ExeBase())
		}
		if proc == nil {
			msg := "process gone before its mappings were read"
			if p.err != nil {
				msg = p.err.Error()
			}
			return nil, msg + "; " + perr.Error()
		}
	}
	frames := proc.Symbolize(addrs)
	// The wrapper is known by name, or, when only the executable could be
	// placed, by being outside it while the stack's top word is inside.
	frameless := len(frames) > 0 && (syscallWrappers[frames[0].Function] ||
		(proc != p.proc && !resolved(frames[0])))
	if frameless && userRet != 0 && (len(addrs) < 2 || addrs[1] != userRet) && resolved(proc.Lookup(userRet, true)) {
		with := make([]uint64, 0, len(addrs)+1)
		with = append(with, addrs[0], userRet)
		with = append(with, addrs[1:]...)
		frames = proc.Symbolize(with)
	}
	return frames, ""
}

// reportFrame is one frame as reports print it and write it to JSON.
type reportFrame struct {
	Function string `json:"function"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Module   string `json:"module,omitempty"`
	Address  string `json:"address"`
}

// reportFrames flattens symbolized frames: inlined calls are frames of
// their own, as the source reads.
func reportFrames(frames []symbol.Frame) []reportFrame {
	var out []reportFrame
	for _, f := range frames {
		out = append(out, reportFrame{Function: f.Function, File: f.File, Line: f.Line,
			Module: f.Module, Address: fmt.Sprintf("%#x", f.Addr)})
		for _, in := range f.InlinedInto {
			out = append(out, reportFrame{Function: in.Function, File: in.File, Line: in.Line,
				Module: f.Module, Address: fmt.Sprintf("%#x", f.Addr)})
		}
	}
	return out
}

// printFrames writes one frame a line: function (file:line) [module].
func printFrames(w io.Writer, indent string, frames []reportFrame) {
	for _, f := range frames {
		fmt.Fprintf(w, "%s%s", indent, f.Function)
		if f.File != "" {
			fmt.Fprintf(w, " (%s:%d)", f.File, f.Line)
		}
		if f.Module != "" {
			fmt.Fprintf(w, " [%s]", f.Module)
		}
		fmt.Fprintln(w)
	}
}
