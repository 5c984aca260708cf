// Command gofix is a fixture for the symbol tests: it prints addresses of
// known code, then its own /proc/self/maps, then waits for stdin to close.
// The MARK comments name the lines the tests expect.
package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
)

var data [64]byte

//go:noinline
func callers() [2]uintptr {
	var pcs [8]uintptr
	runtime.Callers(1, pcs[:]) // MARK:go_callers
	return [2]uintptr{pcs[0], pcs[1]}
}

//go:noinline
func leakSockets() [2]uintptr { // MARK:go_leak_decl
	return callers() // MARK:go_leak_call
}

// inlinedHelper is small enough to be inlined into outer.
func inlinedHelper() [2]uintptr {
	return callers() // MARK:go_inl_call
}

//go:noinline
func outer() [2]uintptr {
	r := inlinedHelper() // MARK:go_outer_call
	return r
}

func main() {
	leak := leakSockets()
	inl := outer()
	fmt.Printf("callers_ra %#x\n", leak[0])
	fmt.Printf("leak_ra %#x\n", leak[1])
	fmt.Printf("inl_ra %#x\n", inl[1])
	fmt.Printf("leak_entry %#x\n", reflect.ValueOf(leakSockets).Pointer())
	fmt.Printf("data %p\n", &data)
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		os.Exit(1)
	}
	fmt.Printf("MAPS\n%sEND\n", maps)
	io.Copy(io.Discard, os.Stdin)
}
