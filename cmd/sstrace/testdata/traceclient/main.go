// Command traceclient is the client of sstrace's trace tests: it connects
// (plain TCP) to the address given, waits until the server sends a byte,
// then closes first, so that the server's ESTABLISHED → CLOSE-WAIT fires in
// softirq while this process is on the CPU.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: traceclient HOST:PORT")
		os.Exit(2)
	}
	var d net.Dialer
	d.SetMultipathTCP(false)
	c, err := d.Dial("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
