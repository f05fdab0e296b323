/* nop: exit 0 at once (a small static binary for exec-from-the-share timings). */
int main(void)
{
	return 0;
}
