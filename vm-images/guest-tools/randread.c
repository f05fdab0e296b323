/* randread FILE COUNT [BS]: COUNT preads of BS bytes (default 4096) at random BS-aligned
 * offsets of FILE (a fixed seed: every run reads the same offsets), then print the bytes read. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *step)
{
	fprintf(stderr, "randread: %s: %s (errno %d)\n", step, strerror(errno), errno);
	return 1;
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	uint64_t x = 0x9e3779b97f4a7c15ull, blocks, total = 0;
	long count, bs = 4096, i;
	struct stat st;
	int fd;

	if (argc < 3 || argc > 4 || (count = atol(argv[2])) <= 0 ||
	    (argc == 4 && ((bs = atol(argv[3])) <= 0 || bs > (long)sizeof(buf)))) {
		fprintf(stderr, "usage: randread FILE COUNT [BS (1..1048576, default 4096)]\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return fail("open");
	if (fstat(fd, &st) != 0)
		return fail("fstat");
	blocks = st.st_size / bs;
	if (blocks == 0) {
		fprintf(stderr, "randread: %s is smaller than one block\n", argv[1]);
		return 1;
	}
	for (i = 0; i < count; i++) {
		ssize_t n;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		n = pread(fd, buf, bs, (off_t)(x % blocks) * bs);
		if (n != bs)
			return n < 0 ? fail("pread") : (fprintf(stderr, "randread: short read\n"), 1);
		total += n;
	}
	printf("%llu\n", (unsigned long long)total);
	return 0;
}
