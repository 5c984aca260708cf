// Command longchurn is the workload of the long-run test
// (longrun_root_test.go): in the network namespace it runs in, it creates
// and frees sockets at a steady, paced rate until SIGINT or SIGTERM, then
// exits 0 holding nothing.
//
// Every -interval it makes -plain socket()+close() pairs (TCP and UDP,
// IPv4 and IPv6 in turn), -conns loopback TCP connections to its own
// listener (connect, accept, then in turn: the client closes first and
// keeps a TIME-WAIT minisocket, the server closes first and keeps it, or
// the client aborts with a reset and nobody does) and -refused connects to
// 127.0.0.1:1, where nothing listens. With -fork D it also starts, every D,
// a child (itself with -child) that does one such round with a listener of
// its own and exits: a followed process tree that keeps changing.
//
// Only raw syscalls, from one goroutine locked to its thread: each socket
// is created with the same user stack every time. On exit it prints what it
// did to stderr. It also stops when its parent goes away (a test killed on
// timeout), so that it never churns on for nobody.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type churn struct {
	plain, conns, refused int
	listener              int
	addr                  unix.SockaddrInet4
	round                 uint64
	sockets               uint64
	fam                   int
}

func main() {
	var (
		c        churn
		interval = flag.Duration("interval", 10*time.Millisecond, "pace: one round of work per interval")
		fork     = flag.Duration("fork", 0, "start a child doing one round every D (0: never)")
		child    = flag.Bool("child", false, "do one round and exit (what -fork starts)")
	)
	flag.IntVar(&c.plain, "plain", 8, "socket()+close() per round")
	flag.IntVar(&c.conns, "conns", 1, "loopback TCP connections per round")
	flag.IntVar(&c.refused, "refused", 1, "refused connects per round")
	flag.Parse()
	runtime.LockOSThread()

	if *child {
		// A SIGINT sent to the whole process group (Ctrl-C) lets the
		// round finish: the child never exits holding a socket.
		signal.Ignore(os.Interrupt)
	}
	if err := c.listen(); err != nil {
		fail(err)
	}
	if *child {
		if err := c.do(); err != nil {
			fail(err)
		}
		unix.Close(c.listener)
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	var (
		children sync.WaitGroup
		started  uint64
		forkTick <-chan time.Time
	)
	if *fork > 0 {
		ft := time.NewTicker(*fork)
		defer ft.Stop()
		forkTick = ft.C
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	parent := os.Getppid()
	fmt.Fprintf(os.Stderr, "longchurn: churning (pid %d)\n", os.Getpid())
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-forkTick:
			cmd := exec.Command(self, "-child", "-plain", "4", "-conns", "3", "-refused", "1")
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				fail(fmt.Errorf("starting a child: %w", err))
			}
			started++
			children.Add(1)
			go func() {
				defer children.Done()
				cmd.Wait()
			}()
		case <-tick.C:
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "longchurn: parent gone, stopping")
				break loop
			}
			if err := c.do(); err != nil {
				fail(err)
			}
		}
	}
	children.Wait()
	unix.Close(c.listener)
	fmt.Fprintf(os.Stderr, "longchurn: %d rounds, %d sockets, %d children\n", c.round, c.sockets, started)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "longchurn: %v\n", err)
	os.Exit(1)
}

var families = []struct {
	domain, typ int
}{
	{unix.AF_INET, unix.SOCK_STREAM}, {unix.AF_INET, unix.SOCK_DGRAM},
	{unix.AF_INET6, unix.SOCK_STREAM}, {unix.AF_INET6, unix.SOCK_DGRAM},
}

func (c *churn) listen() error {
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("binding the listener: %w", err)
	}
	if err := unix.Listen(l, 4096); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(l)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	c.listener, c.addr = l, *sa.(*unix.SockaddrInet4)
	return nil
}

func (c *churn) socket(domain, typ int) (int, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	c.sockets++
	return fd, nil
}

// do is one round.
func (c *churn) do() error {
	c.round++
	for i := 0; i < c.plain; i++ {
		f := families[c.fam%len(families)]
		c.fam++
		fd, err := c.socket(f.domain, f.typ)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	for i := 0; i < c.conns; i++ {
		if err := c.connection(int(c.round+uint64(i)) % 3); err != nil {
			return err
		}
	}
	for i := 0; i < c.refused; i++ {
		fd, err := c.socket(unix.AF_INET, unix.SOCK_STREAM)
		if err != nil {
			return err
		}
		err = unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 1})
		unix.Close(fd)
		if !errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("connect to 127.0.0.1:1: %v, want connection refused", err)
		}
	}
	return nil
}

// connection makes one loopback connection and ends it: kind 0, the
// client closes first (client TIME-WAIT); 1, the server does (server
// TIME-WAIT); 2, the client aborts (a reset, no TIME-WAIT).
func (c *churn) connection(kind int) error {
	cl, err := c.socket(unix.AF_INET, unix.SOCK_STREAM)
	if err != nil {
		return err
	}
	if err := unix.Connect(cl, &c.addr); err != nil {
		unix.Close(cl)
		return fmt.Errorf("connect to the listener: %w", err)
	}
	// Over loopback the handshake is done when connect returns; accept
	// blocks at most until the final ACK is processed.
	sv, _, err := unix.Accept4(c.listener, unix.SOCK_CLOEXEC)
	if err != nil {
		unix.Close(cl)
		return fmt.Errorf("accept: %w", err)
	}
	c.sockets++
	switch kind {
	case 0:
		unix.Close(cl)
		err = readEOF(sv)
		unix.Close(sv)
	case 1:
		unix.Close(sv)
		err = readEOF(cl)
		unix.Close(cl)
	default:
		unix.SetsockoptLinger(cl, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(cl)
		readEOF(sv) // ECONNRESET, or EOF
		unix.Close(sv)
	}
	return err
}

// readEOF waits for the peer's FIN: then closing this side completes the
// close the other side began.
func readEOF(fd int) error {
	var b [64]byte
	for {
		n, err := unix.Read(fd, b[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for the peer's FIN: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}
