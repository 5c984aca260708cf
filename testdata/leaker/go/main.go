// Command leaker leaks sockets on purpose, for sstrace's tests: -n TCP
// sockets created and never used (from leakOne, the line marked LEAK-HERE),
// and -close-wait connections whose peer closed but that it never closes.
// It prints "ready" when done, then waits for its standard input to close
// (or exits at once with -exit).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
)

var held []int

//go:noinline
func leakOne() int {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0) // LEAK-HERE
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return fd
}

func leakSockets(n int) {
	for i := 0; i < n; i++ {
		held = append(held, leakOne())
	}
}

// closeWait makes connections to a listener that accepts and closes them:
// the client ends sit in CLOSE-WAIT, held.
func closeWait(n int) []net.Conn {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer ln.Close()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s.Close()
		// Read the FIN: the client end is now in CLOSE-WAIT.
		buf := make([]byte, 1)
		c.Read(buf)
		conns = append(conns, c)
	}
	return conns
}

func main() {
	n := flag.Int("n", 10, "never-connected sockets to leak")
	cw := flag.Int("close-wait", 0, "CLOSE-WAIT connections to hold")
	exit := flag.Bool("exit", false, "exit right after leaking")
	flag.Parse()
	leakSockets(*n)
	conns := closeWait(*cw)
	fmt.Println("ready", os.Getpid())
	if *exit {
		os.Exit(0)
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	_ = conns
}
