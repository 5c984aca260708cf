package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair (posix_openpt by hand: /dev/ptmx,
// unlock, name the slave) with a window cols wide, and output processing
// off so that what the program writes is what the master reads.
func openPTY(t *testing.T, cols uint16) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var n uint32
	if err := control(master, func(fd int) (err error) {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("ioctl TIOCSPTLCK: %w", err)
		}
		if n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("ioctl TIOCGPTN: %w", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's slave: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	if err := control(slave, func(fd int) error {
		if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: cols}); err != nil {
			return fmt.Errorf("ioctl TIOCSWINSZ: %w", err)
		}
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return fmt.Errorf("ioctl TCGETS: %w", err)
		}
		tio.Oflag &^= unix.OPOST // no "\n" -> "\r\n"
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
			return fmt.Errorf("ioctl TCSETS: %w", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return master, slave
}

// control runs fn on f's descriptor without taking it out of the runtime
// poller (f.Fd() would make reads blocking, and Close could not end them).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// ttyFrame is one redraw of watch on a terminal: the status line, the
// column header, and each row with its mark ('+' new, '~' changed, '-'
// closed, ' ' unchanged), normalized as normalize does.
type ttyFrame struct {
	status, header string
	rows           []ttyRow
}

type ttyRow struct {
	mark byte
	text string
}

// clearScreen starts every redraw: cursor home, erase the screen.
var clearScreen = []byte("\x1b[H\x1b[2J")

// parseTTYFrame splits one redraw (what follows a clearScreen) into its
// lines. watch's tests never pass -H: the column header is always there.
func parseTTYFrame(b []byte) ttyFrame {
	text := strings.ReplaceAll(string(b), "\r", "")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	f := ttyFrame{status: lines[0]}
	lines = lines[1:]
	if len(lines) > 0 {
		f.header, lines = lines[0], lines[1:]
	}
	for _, l := range lines {
		if len(l) < 2 {
			continue
		}
		// normalize drops the tools' own netlink rows.
		if n := normalize([]byte(l[2:])); len(n) == 1 {
			f.rows = append(f.rows, ttyRow{mark: l[0], text: n[0]})
		}
	}
	return f
}

// splitTTYFrames takes the whole redraws off the front of buf: a redraw is
// whole once the next one begins.
func splitTTYFrames(buf []byte) (frames []ttyFrame, rest []byte) {
	for {
		i := bytes.Index(buf, clearScreen)
		if i < 0 {
			return frames, buf
		}
		body := buf[i+len(clearScreen):]
		j := bytes.Index(body, clearScreen)
		if j < 0 {
			return frames, buf[i:]
		}
		frames = append(frames, parseTTYFrame(body[:j]))
		buf = body[j:]
	}
}

// startWatchTTY runs sstrace watch with its standard output on a
// pseudo-terminal 200 columns wide and returns its redraws.
func startWatchTTY(t *testing.T, args ...string) <-chan ttyFrame {
	t.Helper()
	master, slave := openPTY(t, 200)
	cmd := exec.Command(sstraceBin, append([]string{"watch"}, args...)...)
	cmd.Stdout = slave
	stderr := newWatchStderr()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // the child holds it: reads end (EIO) when it exits
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
		if t.Failed() {
			t.Logf("watch stderr: %s", stderr.String())
		}
	})
	frames := make(chan ttyFrame)
	go func() {
		defer close(frames)
		var buf []byte
		chunk := make([]byte, 64<<10)
		for {
			n, err := master.Read(chunk)
			var got []ttyFrame
			got, buf = splitTTYFrames(append(buf, chunk[:n]...))
			for _, f := range got {
				select {
				case frames <- f:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	stderr.waitReady(t)
	return frames
}

func nextTTYFrame(t *testing.T, frames <-chan ttyFrame) ttyFrame {
	t.Helper()
	f, ok := <-frames
	if !ok {
		t.Fatal("watch stopped redrawing")
	}
	return f
}

// ttyStatus is watch's status line on a terminal.
var ttyStatus = regexp.MustCompile(`^\d\d:\d\d:\d\d  (\d+) sockets  (\d+) events/s  lost (\d+)  resyncs (\d+)  age ([0-9hms.]+)(  .*)?$`)

// ttyCounts reads a status line: sockets shown, events/s, lost events,
// resyncs; ok false if it is not one.
func ttyCounts(status string) (sockets, rate, lost, resyncs uint64, ok bool) {
	m := ttyStatus.FindStringSubmatch(status)
	if m == nil {
		return 0, 0, 0, 0, false
	}
	n := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
	return n(m[1]), n(m[2]), n(m[3]), n(m[4]), true
}

// current is a frame's rows still open (not the ones marked closed).
func (f ttyFrame) current() []string {
	var out []string
	for _, r := range f.rows {
		if r.mark != '-' {
			out = append(out, r.text)
		}
	}
	return out
}

// find returns the first row containing all of parts, among the closed
// rows ('-') or the others.
func (f ttyFrame) find(closed bool, parts ...string) (ttyRow, bool) {
	for _, r := range f.rows {
		if (r.mark == '-') != closed {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r.text, p)
		}
		if ok {
			return r, true
		}
	}
	return ttyRow{}, false
}

func TestSplitTTYFrames(t *testing.T) {
	out := "junk\x1b[H\x1b[2J12:00:00  1 sockets  3 events/s  lost 0  resyncs 0  age 1s\n  State  Local\n+ LISTEN   127.0.0.1:22\n- ESTAB  x\n" +
		"\x1b[H\x1b[2J12:00:01  0 sockets  0 events/s  lost 2  resyncs 1  age 0s\n  State Local\n"
	frames, rest := splitTTYFrames([]byte(out))
	if len(frames) != 1 || !bytes.HasPrefix(rest, clearScreen) {
		t.Fatalf("%d frames, rest %q", len(frames), rest)
	}
	f := frames[0]
	if _, rate, lost, _, ok := ttyCounts(f.status); !ok || rate != 3 || lost != 0 {
		t.Errorf("status %q: rate %d lost %d ok %v", f.status, rate, lost, ok)
	}
	if r, ok := f.find(false, "127.0.0.1:22"); !ok || r.mark != '+' || r.text != "LISTEN 127.0.0.1:22" {
		t.Errorf("new row: %+v %v", r, ok)
	}
	if _, ok := f.find(true, "ESTAB"); !ok || len(f.current()) != 1 {
		t.Errorf("closed row missing, or counted as current: %+v", f.rows)
	}
	frames, _ = splitTTYFrames(append(rest, clearScreen...))
	if len(frames) != 1 || len(frames[0].rows) != 0 {
		t.Fatalf("second frame: %+v", frames)
	}
	if _, _, lost, resyncs, ok := ttyCounts(frames[0].status); !ok || lost != 2 || resyncs != 1 {
		t.Errorf("status %q: lost %d resyncs %d", frames[0].status, lost, resyncs)
	}
}
