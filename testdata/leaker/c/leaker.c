/* leaker leaks sockets on purpose, for sstrace's tests: argv[1] TCP sockets
 * created from leak_one (the line marked LEAK-HERE) and never used. It
 * prints "ready PID" when done, then waits for its standard input to close
 * (or exits at once when argv[2] is "exit").
 * Built with: gcc -g -O2 -fno-omit-frame-pointer */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

__attribute__((noinline)) int leak_one(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0); /* LEAK-HERE */
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	return fd;
}

__attribute__((noinline)) void leak_sockets(int n)
{
	for (int i = 0; i < n; i++)
		leak_one();
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	char buf[16];

	leak_sockets(n);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (argc > 2 && strcmp(argv[2], "exit") == 0)
		return 0;
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
