// Command farm holds established TCP pairs over loopback for sstrace's
// benchmarks: -pairs connections to a listener of its own on -addr (both
// ends held, so 2 sockets a pair), then prints "ready" and waits for its
// standard input to close. RLIMIT_NOFILE caps one process near 20000 fds:
// run several for 100k sockets.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
)

func main() {
	pairs := flag.Int("pairs", 1000, "established pairs to hold")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)

	// No keepalive: the pairs are all made within a second, so their
	// probes come due together, tens of thousands at once on loopback,
	// overflow the backlog (netdev_max_backlog, 1000) and go unanswered;
	// nine rounds later (~150 s) the kernel aborts the connections: a
	// 100k-socket namespace kept 40k after five minutes.
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	d := net.Dialer{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp4", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	held := make([]net.Conn, 0, 2**pairs)
	for i := 0; i < *pairs; i++ {
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			fmt.Fprintf(os.Stderr, "dial %d: %v\n", i, err)
			os.Exit(1)
		}
		s, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "accept %d: %v\n", i, err)
			os.Exit(1)
		}
		held = append(held, c, s)
	}
	fmt.Println("ready", len(held))
	bufio.NewReader(os.Stdin).ReadString('\n')
	// Without this, held is dead once printed: the next collection (the
	// runtime forces one every two minutes) finalizes the connections,
	// closing every socket of a benchmark that runs longer.
	runtime.KeepAlive(held)
}
