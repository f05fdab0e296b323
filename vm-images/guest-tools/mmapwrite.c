/*
 * mmapwrite FILE TEXT: open FILE O_RDWR, map it MAP_SHARED, write TEXT at
 * its start through the mapping, msync, unmap, close; then read FILE back
 * with read(2) on a new descriptor and print it. Exits 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *step)
{
	printf("FAIL %s: %s (errno %d)\n", step, strerror(errno), errno);
	return 1;
}

int main(int argc, char **argv)
{
	char buf[4096];
	size_t len;
	ssize_t n;
	char *p;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: mmapwrite FILE TEXT\n");
		return 2;
	}
	len = strlen(argv[2]);
	fd = open(argv[1], O_RDWR);
	if (fd < 0)
		return fail("open");
	if (ftruncate(fd, len) != 0)
		return fail("ftruncate");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	memcpy(p, argv[2], len);
	if (msync(p, len, MS_SYNC) != 0)
		return fail("msync");
	if (munmap(p, len) != 0)
		return fail("munmap");
	if (close(fd) != 0)
		return fail("close");
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return fail("reopen");
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return fail("read");
	buf[n] = 0;
	printf("%s\n", buf);
	return 0;
}
