package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"sstrace/snapshot/nstest"
)

// runThroughLoss runs an sstrace command with a one-page ring in its own
// namespace, makes a burst of sockets there once it traces, stops it with
// Ctrl-C and returns its last line of output (its final report).
func runThroughLoss(t *testing.T, ready string, args ...string) string {
	t.Helper()
	ns := nstest.New(t)
	args = append(args, "--netns", ns.Path(), "--ring-size", strconv.Itoa(os.Getpagesize()))
	cmd := exec.Command(sstraceBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		var last string
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			last = sc.Text()
		}
		lines <- last
	}()
	br := bufio.NewReader(stderr)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s ended before tracing: %v", args[0], err)
		}
		if strings.Contains(line, ready) {
			break
		}
	}
	go func() {
		for {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	// 5000 sockets in a burst: a page holds ~30 events.
	err = ns.Do(func() error {
		for i := 0; i < 5000; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	last := <-lines
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s after Ctrl-C: %v", args[0], err)
	}
	return last
}

// Lost events make leaks' and stalls' reports say they are incomplete, and
// how many were lost (issue #7; trace and watch have tests of their own).
func TestReportsIncompleteAfterLoss(t *testing.T) {
	nstest.RequireRoot(t)
	t.Run("leaks", func(t *testing.T) {
		var r leakReport
		last := runThroughLoss(t, "tracing socket lives", "leaks", "-j")
		if err := json.Unmarshal([]byte(last), &r); err != nil {
			t.Fatalf("last line is no report: %q (%v)", last, err)
		}
		if !r.Final || !r.Incomplete || r.LostEvents == 0 {
			t.Errorf("final report: final %v incomplete %v lost %d", r.Final, r.Incomplete, r.LostEvents)
		}
	})
	t.Run("stalls", func(t *testing.T) {
		var s summaryJSON
		last := runThroughLoss(t, "tracing connection attempts", "stalls", "-j")
		if err := json.Unmarshal([]byte(last), &s); err != nil || s.Type != "summary" {
			t.Fatalf("last line is no summary: %q (%v)", last, err)
		}
		if !s.Incomplete || s.LostEvents == 0 {
			t.Errorf("summary: incomplete %v lost %d", s.Incomplete, s.LostEvents)
		}
	})
}
