package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"sstrace/snapshot/nstest"
)

// Without privileges the listing works as ss's does, and every command that
// needs BPF says in one line which capabilities are missing.
func TestWithoutPrivileges(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	nobody := func(args ...string) (string, string, int) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", sstraceBin}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	for _, args := range [][]string{{"-tan"}, {"-tanp"}, {"-xa"}} {
		out, errs, code := nobody(args...)
		if code != 0 || !strings.HasPrefix(out, "State") && !strings.HasPrefix(out, "Netid") {
			t.Errorf("%v as nobody: status %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{"leaks"}, {"trace"}, {"stalls"}} {
		out, errs, code := nobody(args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 1 || out != "" || len(lines) != 1 || !strings.Contains(errs, "CAP_BPF") {
			t.Errorf("%v as nobody: status %d, stdout %q, stderr %q; want one line naming CAP_BPF and status 1", args, code, out, errs)
		}
	}
}
