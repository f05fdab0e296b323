/*
 * openunlink FILE: open FILE O_RDWR (creating it if needed), unlink it, then
 * use the open fd: write, read back, ftruncate, fstat.  Prints OK, or the
 * failing step with errno and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char msg[] = "written after unlink\n";

static int fail(const char *step, int err)
{
	printf("FAIL %s: %s (errno %d)\n", step, strerror(err), err);
	return 1;
}

int main(int argc, char **argv)
{
	char buf[sizeof(msg)];
	struct stat st;
	ssize_t n;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: openunlink FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return fail("open", errno);
	if (unlink(argv[1]) != 0)
		return fail("unlink", errno);
	n = pwrite(fd, msg, sizeof(msg) - 1, 0);
	if (n < 0)
		return fail("pwrite", errno);
	if (n != sizeof(msg) - 1)
		return fail("pwrite (short)", EIO);
	memset(buf, 0, sizeof(buf));
	n = pread(fd, buf, sizeof(msg) - 1, 0);
	if (n < 0)
		return fail("pread", errno);
	if (n != sizeof(msg) - 1 || memcmp(buf, msg, n) != 0)
		return fail("pread (wrong data)", EIO);
	if (ftruncate(fd, 4) != 0)
		return fail("ftruncate", errno);
	if (fstat(fd, &st) != 0)
		return fail("fstat", errno);
	if (st.st_size != 4)
		return fail("fstat (size after ftruncate)", EIO);
	if (close(fd) != 0)
		return fail("close", errno);
	printf("OK\n");
	return 0;
}
