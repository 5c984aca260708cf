package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCgroupPathsWalk(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a", "a/b", "a/b/c", "d"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := &CgroupPaths{at: root}
	for _, d := range []string{"", "a", "a/b", "a/b/c", "d"} {
		id, ok := cgroupID(filepath.Join(root, d))
		if !ok {
			t.Fatalf("no id for %s", d)
		}
		want := "/" + d
		if got := c.Path(id); got != want {
			t.Errorf("Path(id of %q) = %q, want %q", d, got, want)
		}
	}
	if got := c.Path(0xdeadbeefcafe); got != "unreachable:deadbeefcafe" {
		t.Errorf("unknown id: %q", got)
	}
}

func TestCgroupPathsSystem(t *testing.T) {
	mnt := findCgroup2Mount()
	if mnt == "" {
		t.Skip("no cgroup2 mount")
	}
	id, ok := cgroupID(mnt)
	if !ok {
		t.Fatalf("no id for %s", mnt)
	}
	c := NewCgroupPaths()
	if got := c.Path(id); got != "/" {
		t.Errorf("root cgroup %d: %q, want /", id, got)
	}
	// Our own cgroup (the "0::" line of /proc/self/cgroup).
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			if id, ok := cgroupID(filepath.Join(mnt, rel)); ok {
				if got := c.Path(id); got != rel {
					t.Errorf("own cgroup: Path = %q, want %q", got, rel)
				}
			}
		}
	}
}
