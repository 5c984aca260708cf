package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// heldEnv marks sstrace started as a trampoline for `leaks -- CMD`: it waits
// on fd 3 until the tracer follows its pid, then execs CMD in its place (the
// pid stays the same through exec).
const heldEnv = "SSTRACE_HELD_EXEC"

// heldChild is CMD started behind that barrier.
type heldChild struct {
	cmd  *exec.Cmd
	gate *os.File
}

func startHeld(command []string, stderr io.Writer) (*heldChild, error) {
	if _, err := exec.LookPath(command[0]); err != nil {
		return nil, fmt.Errorf("leaks: %s: %w", command[0], err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("leaks: starting %s: %w", command[0], err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("leaks: starting %s: finding sstrace itself: %w", command[0], err)
	}
	cmd := exec.Command(self, command...)
	cmd.Env = append(os.Environ(), heldEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("leaks: starting %s: %w", command[0], err)
	}
	r.Close()
	return &heldChild{cmd: cmd, gate: w}, nil
}

// release lets CMD run.
func (h *heldChild) release() error {
	_, err := h.gate.Write([]byte{1})
	h.gate.Close()
	if err != nil {
		return fmt.Errorf("leaks: releasing the command: %w", err)
	}
	return nil
}

// kill ends CMD if it is still held or running (on an error path).
func (h *heldChild) kill() {
	h.gate.Close()
	if h.cmd.ProcessState == nil {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	}
}

// runHeld is the trampoline's side: wait for the gate, then become CMD.
func runHeld(args []string) int {
	gate := os.NewFile(3, "gate")
	var b [1]byte
	if n, _ := gate.Read(b[:]); n != 1 {
		return 1 // sstrace went away before releasing us
	}
	gate.Close()
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sstrace: %s: %v\n", args[0], err)
		return 127
	}
	env := make([]string, 0, len(os.Environ()))
	for _, e := range os.Environ() {
		if e != heldEnv+"=1" {
			env = append(env, e)
		}
	}
	err = syscall.Exec(path, args, env)
	fmt.Fprintf(os.Stderr, "sstrace: executing %s: %v\n", args[0], err)
	return 126
}
