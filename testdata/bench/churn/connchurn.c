/* connchurn: N loopback TCP connections on one core, prints connections per
 * second. One process pinned to CPU 0 listens on 127.0.0.1 (an ephemeral
 * port), then N times: socket(), a blocking connect() (over loopback the
 * handshake completes within it), accept(), close() of the client, then of
 * the accepted socket: a graceful close (FIN both ways), the client side
 * closing first.
 *
 * Every connection leaves the client a TIME-WAIT minisocket for 60 s, and
 * its port with it: run it in a network namespace of its own, with
 * net.ipv4.tcp_max_tw_buckets=0 (no minisocket is kept: the full socket
 * still goes FIN-WAIT-2 -> CLOSE, the same events, and the port is free at
 * once; runs do not inherit the last one's TIME-WAIT) or with a wide
 * net.ipv4.ip_local_port_range and net.ipv4.tcp_tw_reuse=1. A failed call
 * (EADDRNOTAVAIL: ports exhausted) ends it with status 1.
 *
 * With tcp_max_tw_buckets=0, a few connections in 10,000 end in a real
 * reset: when the ACK of the client's FIN comes alone (not with the
 * server's FIN), the orphaned client in FIN-WAIT-2 would need a minisocket
 * to wait for the server's FIN, gets none (TcpExtTCPTimeWaitOverflow) and
 * is destroyed at once; the server's FIN then finds no socket and is
 * answered with a RST (TcpOutRsts), which the server receives in LAST-ACK.
 *
 * Built with: gcc -O2 -o connchurn connchurn.c
 * Usage: connchurn [N] [CPU]   (defaults: 100000, 0) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, long i)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "connchurn: %s (connection %ld)", what, i);
	perror(msg);
	exit(1);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int cpu = argc > 2 ? atoi(argv[2]) : 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	struct timespec a, b;
	cpu_set_t set;
	int one = 1, l;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("sched_setaffinity", -1);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		die("socket (listener)", -1);
	if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("SO_REUSEADDR", -1);
	if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(l, 128) < 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &alen) < 0)
		die("listen on 127.0.0.1", -1);

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s;

		if (c < 0)
			die("socket", i);
		if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			die("connect", i);
		s = accept(l, NULL, NULL);
		if (s < 0)
			die("accept", i);
		close(c);
		close(s);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n", n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9));
	close(l);
	return 0;
}
