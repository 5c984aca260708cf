package main

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"sstrace/snapshot/nstest"
)

// Each tracing command, with hooks taken away, says in one short line which
// capabilities it goes without, points at doctor for why, and goes on.
func TestCommandsDegradeWithoutHooks(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	const off = "cgroup/sock_create,tp_btf/tcp_receive_reset"
	for _, c := range []struct {
		name  string
		args  []string
		ready string
	}{
		{"leaks", []string{"leaks", "-j"}, "tracing socket lives"},
		{"trace", []string{"trace", "-j"}, "tracing socket events"},
		{"stalls", []string{"stalls", "-j"}, "tracing connection attempts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(sstraceBin, append(c.args, "--netns", ns.Path(), "--disable-hooks", off)...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			br := bufio.NewReader(stderr)
			var warned bool
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("%s ended before tracing (warned %v): %v", c.name, warned, err)
				}
				if strings.Contains(line, "warning: not traced") {
					// A kernel whose variants go without something adds a
					// "; degraded: ..." part.
					warned = strings.Contains(line, "warning: not traced: cookies, resets") &&
						strings.Contains(line, "sstrace doctor") && len(line) < 200
					if !warned {
						t.Errorf("warning does not name both capabilities and doctor in one short line: %q", line)
					}
				}
				if strings.Contains(line, c.ready) {
					break
				}
			}
			if !warned {
				t.Errorf("%s started without saying which hooks are missing", c.name)
			}
			cmd.Process.Signal(syscall.SIGINT)
			if err := cmd.Wait(); err != nil {
				t.Errorf("%s after Ctrl-C: %v", c.name, err)
			}
		})
	}
}
