/* utimens FILE SEC NSEC: set FILE's access and modification times to
 * SEC.NSEC with utimensat(2), nanoseconds and all (busybox's touch sets
 * whole seconds only). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: utimens FILE SEC NSEC\n");
		return 2;
	}
	struct timespec times[2];
	times[0].tv_sec = strtoll(argv[2], NULL, 10);
	times[0].tv_nsec = strtol(argv[3], NULL, 10);
	times[1] = times[0];
	if (utimensat(AT_FDCWD, argv[1], times, 0) != 0) {
		perror("utimensat");
		return 1;
	}
	return 0;
}
