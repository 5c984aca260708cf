package procfs

import (
	"strings"
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/plain`: "/plain", `/t\011x\134y`: "/t\tx\\y", `/short\04`: `/short\04`, `/bad\089`: `/bad\089`,
	} {
		if got := UnescapeMount(in); got != want {
			t.Errorf("UnescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCgroup2Root(t *testing.T) {
	const mi = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 /sub /elsewhere rw,relatime - cgroup2 cgroup2 rw
41 31 0:38 / /sys/fs/cgroup/uni\040fied rw,relatime shared:5 - cgroup2 cgroup2 rw
`
	got, err := ParseCgroup2Root(strings.NewReader(mi))
	if err != nil || got != "/sys/fs/cgroup/uni fied" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := ParseCgroup2Root(strings.NewReader("31 23 0:28 / /sys rw - sysfs sysfs rw\n")); err == nil {
		t.Error("no cgroup2 mount found no error")
	}
}
