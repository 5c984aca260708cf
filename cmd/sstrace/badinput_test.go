package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Bad input: one clear line on stderr, nothing on stdout, exit status 1.
func TestBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-f", "inet7"},
		{"-A", "tcp,bogus"},
		{"-t", "state", "establised"},
		{"-t", "state"},
		{"-t", "sport", "=", ":nope"},
		{"-t", "dst", "1.2.3.4/33"},
		{"-t", "( sport = :22"},
		{"-t", "sport", "=="},
		{"-t", "src", "::1"},
		{"-F", "/nonexistent/filter"},
		{"--bogus-flag"},
		{"leaks", "--min-age", "-1s"},
		{"leaks", "--min-age", "soon"},
		{"leaks", "--pid", "0"},
		{"leaks", "stray"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(sstraceBin, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr %q", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "sstrace: ") {
				t.Errorf("stderr is not one sstrace: line: %q", stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
		})
	}
}
