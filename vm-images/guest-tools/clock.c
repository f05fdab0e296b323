/* clock: print CLOCK_MONOTONIC as seconds.nanoseconds (for timings in the guest). */
#include <stdio.h>
#include <time.h>

int main(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) {
		perror("clock: clock_gettime");
		return 1;
	}
	printf("%lld.%09ld\n", (long long)t.tv_sec, t.tv_nsec);
	return 0;
}
