/* mmapread FILE: mmap FILE read-only (MAP_SHARED) and write the mapped bytes to stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *step)
{
	fprintf(stderr, "mmapread: %s: %s (errno %d)\n", step, strerror(errno), errno);
	return 1;
}

int main(int argc, char **argv)
{
	struct stat st;
	const char *p;
	size_t off = 0;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: mmapread FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return fail("open");
	if (fstat(fd, &st) != 0)
		return fail("fstat");
	if (st.st_size == 0)
		return 0;
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	while (off < (size_t)st.st_size) {
		ssize_t n = write(1, p + off, st.st_size - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("write");
		}
		off += n;
	}
	if (munmap((void *)p, st.st_size) != 0)
		return fail("munmap");
	return 0;
}
