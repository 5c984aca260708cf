package nstest

import (
	"net"
	"strings"
	"testing"
)

// The namespace is really separate: a listener opened inside it is what ss
// sees inside it, and only that.
func TestNamespaceIsolated(t *testing.T) {
	ns := New(t)
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := ns.Output("ss", "-Htln")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], ln.Addr().String()) {
		t.Fatalf("ss in the namespace shows %q, want only %s", out, ln.Addr())
	}
	if ns.Inode() == 0 {
		t.Fatal("namespace inode is 0")
	}
}
