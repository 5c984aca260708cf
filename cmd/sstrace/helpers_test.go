package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// The programs these tests run besides themselves (sstrace, the trace
// client, the leakers, the connector, longchurn) are built with go and gcc
// from this package's directory. The kernel matrix (make test-kernels) runs
// the tests in a VM with neither: it builds them on the host by running the
// test binary with SSTRACE_BUILD_HELPERS=DIR, and the VM's run finds them
// in SSTRACE_TEST_HELPERS=DIR. Without either variable nothing changes.
const (
	buildHelpersEnv = "SSTRACE_BUILD_HELPERS"
	testHelpersEnv  = "SSTRACE_TEST_HELPERS"
)

// helperBuilds builds each helper into out.
var helperBuilds = map[string]func(out string) error{
	"sstrace":     goBuild("."),
	"traceclient": goBuild("./testdata/traceclient"),
	"goleaker":    goBuild("../../testdata/leaker/go"),
	// Position-independent, as distribution binaries are: each process
	// (the children leaks follows) has its code at its own address, so
	// its stacks are its own.
	"longchurn": goBuild("-buildmode=pie", "./testdata/longchurn"),
	"cleaker":   gccBuild("../../testdata/leaker/c/leaker.c"),
	// The connector's source sits beside it (OUT.c): the stalls tests read
	// its CONNECT-HERE line and match the file name in stacks.
	"connector": func(out string) error {
		if err := os.WriteFile(out+".c", []byte(connectorC), 0o644); err != nil {
			return err
		}
		return gccBuild(out + ".c")(out)
	},
}

func goBuild(args ...string) func(string) error {
	return func(out string) error {
		return runBuild("go", append([]string{"build", "-o", out}, args...)...)
	}
}

func gccBuild(src string) func(string) error {
	return func(out string) error {
		return runBuild("gcc", "-g", "-O2", "-fno-omit-frame-pointer", "-o", out, src)
	}
}

func runBuild(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// buildHelpers builds every helper into dir (SSTRACE_BUILD_HELPERS).
func buildHelpers(dir string) error {
	names := make([]string, 0, len(helperBuilds))
	for name := range helperBuilds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := helperBuilds[name](filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("building %s: %w", name, err)
		}
	}
	return nil
}

// prebuilt is the helper's path in SSTRACE_TEST_HELPERS, or "" when that
// is not set.
func prebuilt(name string) (string, error) {
	dir := os.Getenv(testHelpersEnv)
	if dir == "" {
		return "", nil
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s=%s: %w", testHelpersEnv, dir, err)
	}
	return p, nil
}

// helper is the path of a helper program: prebuilt, or built into a
// directory of the test's own.
func helper(t testing.TB, name string) string {
	t.Helper()
	p, err := prebuilt(name)
	if err != nil {
		t.Fatal(err)
	}
	if p != "" {
		return p
	}
	p = filepath.Join(t.TempDir(), name)
	if err := helperBuilds[name](p); err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return p
}
