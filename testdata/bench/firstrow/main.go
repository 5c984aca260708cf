// Command firstrow runs a command and says how soon its output came: the
// start-up benchmark of testdata/bench/startup.sh.
//
//	firstrow [-blocks B] [-timeout D] -- CMD [ARGS...]
//
// Times are from just before the command is started (fork and exec
// included) to the arrival on its standard output (a pipe) of:
//
//	first  the first line (without -blocks), or the first row of the
//	       first block (with -blocks: the first line after the block's
//	       "--- ... N sockets ..." line and its table header)
//	done   end of output (without -blocks), or the last row of the first
//	       block (with -blocks, the blocks of sstrace watch in non-terminal
//	       mode)
//
// With -blocks, once block B is whole, the command's VmHWM and VmRSS are
// read from /proc/PID/status and it is sent SIGINT. Then its output is
// drained and it is waited for. Standard error passes through.
//
// It prints one line:
//
//	first_ms=F done_ms=D exit_ms=E lines=L sockets=N hwm_kib=H rss_kib=R maxrss_kib=M status=S
//
// sockets is the last block's count (-1 without -blocks), hwm_kib and
// rss_kib -1 without -blocks, maxrss_kib the child's ru_maxrss (wait4: its
// largest resident set over its whole life, as /usr/bin/time -v reports).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	blocks := flag.Int("blocks", 0, "stop after this many watch blocks (0: read to the end)")
	timeout := flag.Duration("timeout", 2*time.Minute, "kill the command after this long")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: firstrow [-blocks B] [-timeout D] -- CMD [ARGS...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	timer := time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "firstrow: %s still running after %s: killed\n", flag.Arg(0), *timeout)
		cmd.Process.Kill()
	})
	defer timer.Stop()

	ms := func(t time.Time) float64 { return float64(t.Sub(start).Microseconds()) / 1000 }
	r := bufio.NewReaderSize(out, 1<<20)
	var (
		first, done        = -1.0, -1.0
		lines              int
		sockets            = -1
		hwm, rss           = -1, -1
		block, left        int  // blocks seen; rows left in the current one
		inBlock, wantTable bool // in a block; its table header is next
		interrupted        bool
	)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer: it ends in a later read
		}
		if len(line) > 0 {
			now := time.Now()
			lines++
			switch {
			case *blocks == 0:
				if first < 0 {
					first = ms(now)
				}
			case interrupted:
			case bytes.HasPrefix(line, []byte("--- ")):
				block++
				sockets = blockSockets(line)
				left, inBlock, wantTable = sockets, true, true
			case inBlock && wantTable && (bytes.HasPrefix(line, []byte("State")) || bytes.HasPrefix(line, []byte("Netid"))):
				wantTable = false
			case inBlock && left > 0:
				wantTable = false
				left--
				if first < 0 {
					first = ms(now)
				}
			}
			if *blocks > 0 && inBlock && !wantTable && left == 0 {
				// A block is whole.
				inBlock = false
				if first < 0 {
					first = ms(now) // an empty table: its header is its first row
				}
				if done < 0 {
					done = ms(now)
				}
				if block >= *blocks && !interrupted {
					hwm, rss = procStatus(cmd.Process.Pid)
					cmd.Process.Signal(syscall.SIGINT)
					interrupted = true
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
	}
	end := time.Now()
	if *blocks == 0 {
		done = ms(end)
	}
	werr := cmd.Wait()
	exit := ms(time.Now())
	maxrss := int64(-1)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxrss = ru.Maxrss
	}
	status := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	fmt.Printf("first_ms=%.1f done_ms=%.1f exit_ms=%.1f lines=%d sockets=%d hwm_kib=%d rss_kib=%d maxrss_kib=%d status=%d\n",
		first, done, exit, lines, sockets, hwm, rss, maxrss, status)
	if werr != nil && !(interrupted && status == 0) {
		fmt.Fprintf(os.Stderr, "firstrow: %s: %v\n", flag.Arg(0), werr)
		os.Exit(1)
	}
	if *blocks > 0 && !interrupted {
		fmt.Fprintf(os.Stderr, "firstrow: %s ended before block %d was whole\n", flag.Arg(0), *blocks)
		os.Exit(1)
	}
}

// blockSockets reads N from a watch block's "--- HH:MM:SS.mmm  N sockets ..." line.
func blockSockets(line []byte) int {
	f := strings.Fields(string(line))
	for i := 1; i+1 < len(f); i++ {
		if f[i+1] == "sockets" {
			if n, err := strconv.Atoi(f[i]); err == nil {
				return n
			}
		}
	}
	return 0
}

// procStatus reads VmHWM and VmRSS (KiB) of a process.
func procStatus(pid int) (hwm, rss int) {
	hwm, rss = -1, -1
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmHWM:":
			hwm = n
		case "VmRSS:":
			rss = n
		}
	}
	return
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "firstrow: %v\n", err)
	os.Exit(1)
}
