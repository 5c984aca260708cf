package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// watchBlock is one block of watch's output: its rows (without the column
// header), normalized.
type watchBlock struct {
	header string
	rows   []string
}

// startWatch runs sstrace watch with args (inside the fixture's namespace
// when inside is set) and returns its blocks and its other stdout lines.
func startWatch(t *testing.T, f *fixture, inside bool, args ...string) (<-chan watchBlock, <-chan string) {
	t.Helper()
	cmd := exec.Command(sstraceBin, append([]string{"watch"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if inside {
		err = f.ns.Do(cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("watch stderr: %s", stderr.String())
		}
	})
	blocks := make(chan watchBlock)
	other := make(chan string, 100)
	go func() {
		defer close(blocks)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "--- ") {
				select {
				case other <- l:
				default:
				}
				continue
			}
			var n int
			fields := strings.Fields(l)
			if len(fields) < 3 {
				return
			}
			fmt.Sscan(fields[2], &n)
			b := watchBlock{header: l}
			if !sc.Scan() { // column header
				return
			}
			for i := 0; i < n && sc.Scan(); i++ {
				b.rows = append(b.rows, sc.Text())
			}
			b.rows = normalize([]byte(strings.Join(b.rows, "\n")))
			if n == 0 {
				b.rows = nil
			}
			blocks <- b
		}
		io.Copy(io.Discard, stdout)
	}()
	return blocks, other
}

func nextBlock(t *testing.T, blocks <-chan watchBlock) watchBlock {
	t.Helper()
	b, ok := <-blocks
	if !ok {
		t.Fatal("watch stopped printing")
	}
	return b
}

// TestWatchMatchesSS: watch's blocks, kept by events, list what ss lists.
func TestWatchMatchesSS(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	blocks, _ := startWatch(t, f, true, "-tan", "--interval", "200ms")
	first := nextBlock(t, blocks)
	if len(first.rows) == 0 {
		t.Fatalf("first block has no rows: %s", first.header)
	}

	// After the first block: a listener and a connection to it, which only
	// events can show.
	err := f.ns.Do(func() error {
		ln, err := plainTCP("tcp4", "127.0.0.9:7777")
		if err != nil {
			return err
		}
		f.keep(func() { ln.Close() })
		c, err := net.Dial("tcp4", "127.0.0.9:7777")
		if err != nil {
			return err
		}
		f.keep(func() { c.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.settle(t)

	// Rows compare whole: the new listener's Send-Q (its backlog) comes
	// with its LISTEN event, its Recv-Q (the accept queue, 1: the
	// connection is never accepted) from the children's handshakes.
	key := func(rows []string) []string {
		out := slices.Clone(rows)
		slices.Sort(out)
		return out
	}
	var got, want []string
	for i := 0; i < 50; i++ {
		b := nextBlock(t, blocks)
		if !strings.Contains(strings.Join(b.rows, "\n"), "127.0.0.9:7777") {
			continue
		}
		out, err := f.ns.Output("ss", "-Htan")
		if err != nil {
			t.Fatal(err)
		}
		got, want = key(b.rows), key(normalize(out))
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("no block matched ss -tan:\nwatch:\n%s\nss:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// TestWatchResync: a periodic re-dump finds the event-fed table equal to
// the kernel's, here with the dump made through --netns from outside.
func TestWatchResync(t *testing.T) {
	f := newFixture(t)
	f.settle(t)
	blocks, other := startWatch(t, f, false, "-tan", "--interval", "200ms", "--resync", "200ms", "--netns", f.ns.Path())
	nextBlock(t, blocks)
	for i := 0; i < 50; i++ {
		nextBlock(t, blocks)
		select {
		case l := <-other:
			if !strings.HasPrefix(l, "resync: overlay and kernel agree (") {
				t.Fatalf("resync reported: %s", l)
			}
			return
		default:
		}
	}
	t.Fatal("no resync line after 50 blocks")
}

func TestMarkRows(t *testing.T) {
	k := func(c uint64) watchKey { return watchKey{cookie: c} }
	table := "State A B\nLISTEN x\nESTAB y\n"
	lines, prev := markRows(table, true, []watchKey{k(1), k(2)}, nil)
	if want := []string{"  State A B", "  LISTEN x", "  ESTAB y"}; !slices.Equal(lines, want) {
		t.Fatalf("first frame: %q, want %q", lines, want)
	}
	table = "State A B\nLISTEN x\nCLOSE-WAIT y\nESTAB z\n"
	lines, _ = markRows(table, true, []watchKey{k(1), k(2), k(3)}, prev)
	if want := []string{"  State A B", "  LISTEN x", "~ CLOSE-WAIT y", "+ ESTAB z"}; !slices.Equal(lines, want) {
		t.Fatalf("second frame: %q, want %q", lines, want)
	}
	lines, _ = markRows("LISTEN x\n", false, []watchKey{k(1)}, prev)
	if want := []string{"  LISTEN x", "- ESTAB y"}; !slices.Equal(lines, want) {
		t.Fatalf("third frame: %q, want %q", lines, want)
	}
}
