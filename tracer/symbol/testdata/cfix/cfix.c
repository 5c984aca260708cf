/*
 * Fixture for the symbol tests: prints addresses of known code, then its
 * own /proc/self/maps, then waits for stdin to close. The MARK comments
 * name the lines the tests expect.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

void *volatile sink;

__attribute__((noipa)) void *get_ra(void)
{
	return __builtin_return_address(0);
}

/* Inlined into outer: the call to get_ra is inlined code of inl. */
static inline __attribute__((always_inline)) void *inl(void)
{
	return get_ra(); /* MARK:inl_call */
}

__attribute__((noipa)) void *outer(void)
{
	void *p = inl(); /* MARK:outer_call */
	sink = p;
	return p;
}

__attribute__((noipa)) void *leak_here(void)
{ /* MARK:leak_entry */
	void *p = get_ra(); /* MARK:leak_call */
	sink = p;
	return p;
}

int main(void)
{
	char buf[4096];
	size_t n;
	FILE *f;

	printf("leak_here %p\n", (void *)&leak_here);
	printf("leak_ra %p\n", leak_here());
	printf("inl_ra %p\n", outer());
	/* libc's socket through dlsym: taking &socket would make a non-PIE
	 * executable's PLT stub the canonical address of socket. */
	printf("socket %p\n", dlsym(RTLD_DEFAULT, "socket"));
	printf("data %p\n", (void *)&sink);
	printf("MAPS\n");
	f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return 1;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(f);
	printf("END\n");
	fflush(stdout);
	while (getchar() != EOF)
		;
	return 0;
}
