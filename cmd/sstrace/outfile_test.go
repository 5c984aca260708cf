package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOutFile(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out")

	o, err := createOutFile(dest, false)
	if err != nil {
		t.Fatal(err)
	}
	o.WriteString("partial")
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("destination exists before commit: %v", err)
	}
	o.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("abort left %d files behind", len(ents))
	}

	o, err = createOutFile(dest, false)
	if err != nil {
		t.Fatal(err)
	}
	o.WriteString("one")
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	o.Abort() // no-op after commit
	fi, err := os.Stat(dest)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("committed file: %v, mode %v", err, fi.Mode())
	}

	// No clobbering without force.
	if _, err := createOutFile(dest, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("existing file not refused: %v", err)
	}

	// A symlink at the destination is replaced, never followed.
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	o, err = createOutFile(link, true)
	if err != nil {
		t.Fatal(err)
	}
	o.WriteString("new")
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("symlink target was written through: %q", b)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink != 0 {
		t.Error("the symlink is still there")
	}
}
