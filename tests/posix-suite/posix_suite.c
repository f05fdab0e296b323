// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * posix-suite: a deterministic POSIX workload for the differential test.
 *
 *   posix-suite [-t] [-s PAT]... DIR   the root checks (run as root)
 *   posix-suite [-t] [-s PAT]... -u UID:GID DIR
 *                                 the unprivileged checks: root prepares
 *                                 fixtures, a child drops to UID:GID (groups
 *                                 = {GID}) and runs them; names start "u_"
 *
 * -t prints each group's duration on stderr ("@@TIME GROUP SECONDS"); -s PAT
 * makes the guarded checks matching PAT print "skipped" instead of running
 * (for checks known to crash a guest kernel).
 *
 * DIR must be an empty directory.  Every check prints one line
 * "NAME: OUTCOME" (OUTCOME: "ok", an errno name, or values such as
 * "mode=0640 size=2"), never inode numbers, device numbers, absolute times
 * other than ones the check set itself, or anything else host-specific, so the
 * output on a host directory (the oracle) and on a 9p mount in a guest can be
 * compared line by line.  The last line is "SUMMARY: N checks".
 *
 * Each group of checks runs in its own child process in DIR/GROUP, with an
 * alarm: a crash or hang in one group is reported as a line
 * "GROUP.died: signal SIG" and the others still run.
 *
 * Part of vhost-user-9p's tests (tests/differential/run.py).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

#define GROUP_ALARM 180 /* seconds a group may take (TCG guests are slow) */

/* ------------------------------------------------------------------ output */

static int *g_count; /* shared between the group processes */
static const char *g_prefix = "";

static void emit(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(const char *name, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	printf("%s%s: %s\n", g_prefix, name, buf);
	fflush(stdout);
	__atomic_add_fetch(g_count, 1, __ATOMIC_SEQ_CST);
}

static const char *en(int e)
{
	static char buf[16];
	const char *n = strerrorname_np(e);
	if (n)
		return n;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

/* -s PATTERN: checks that must not run here (e.g. ones that crash a guest
 * kernel); a guarded check prints "skipped" instead. */
static const char *g_skip[32];
static int g_nskip;

static int skipping(const char *name)
{
	for (int i = 0; i < g_nskip; i++)
		if (fnmatch(g_skip[i], name, 0) == 0) {
			emit(name, "skipped");
			return 1;
		}
	return 0;
}

/* "ok" or the errno name of a call returning < 0 on failure. */
static void res(const char *name, long rc)
{
	int e = errno;
	if (rc < 0)
		emit(name, "%s", en(e));
	else
		emit(name, "ok");
}

/* Like res() for a call returning a descriptor, which is closed. */
static void res_fd(const char *name, int fd)
{
	int e = errno;
	if (fd < 0) {
		emit(name, "%s", en(e));
	} else {
		emit(name, "ok");
		close(fd);
	}
}

/* A string builder for multi-part outcomes. */
struct sb {
	char b[4096];
	size_t n;
};
static void sbf(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbf(struct sb *s, const char *fmt, ...)
{
	va_list ap;
	if (s->n >= sizeof s->b - 1)
		return;
	if (s->n)
		s->b[s->n++] = ' ';
	va_start(ap, fmt);
	int k = vsnprintf(s->b + s->n, sizeof s->b - s->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		s->n += (size_t)k;
	if (s->n >= sizeof s->b)
		s->n = sizeof s->b - 1;
	s->b[s->n] = 0;
}
/* Append "what=ok" or "what=ERRNO" for a call's return value. */
static void sbr(struct sb *s, const char *what, long rc)
{
	int e = errno;
	if (rc < 0)
		sbf(s, "%s=%s", what, en(e));
	else
		sbf(s, "%s=ok", what);
}

/* Printable form of bytes (at most 80 shown). */
static const char *esc(const void *data, size_t n)
{
	static char out[512];
	const unsigned char *p = data;
	size_t k = 0;
	for (size_t i = 0; i < n && i < 80; i++) {
		if (p[i] >= 0x21 && p[i] < 0x7f && p[i] != '\\')
			out[k++] = (char)p[i];
		else
			k += (size_t)sprintf(out + k, "\\x%02x", p[i]);
	}
	if (n > 80)
		k += (size_t)sprintf(out + k, "...(%zu)", n);
	out[k] = 0;
	return out;
}

static const char *ftype(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "reg";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "lnk";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	default: return "unknown";
	}
}

static void sdesc(struct sb *s, const struct stat *st)
{
	sbf(s, "type=%s mode=%04o nlink=%lu uid=%u gid=%u", ftype(st->st_mode), st->st_mode & 07777,
	    (unsigned long)st->st_nlink, st->st_uid, st->st_gid);
	if (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode))
		sbf(s, "size=%lld", (long long)st->st_size);
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		sbf(s, "rdev=%u,%u", major(st->st_rdev), minor(st->st_rdev));
}

/* "type=... mode=... nlink=... uid=... gid=... [size=...]" of lstat(path). */
static void stat_line(const char *name, const char *path)
{
	struct stat st;
	struct sb s = {0};
	if (lstat(path, &st) < 0) {
		emit(name, "%s", en(errno));
		return;
	}
	sdesc(&s, &st);
	emit(name, "%s", s.b);
}

static void fstat_line(const char *name, int fd)
{
	struct stat st;
	struct sb s = {0};
	if (fstat(fd, &st) < 0) {
		emit(name, "%s", en(errno));
		return;
	}
	sdesc(&s, &st);
	emit(name, "%s", s.b);
}

/* Whole content of a file: length, or -errno. */
static long slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	for (;;) {
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (k == 0 || n + (size_t)k == cap) {
			n += (size_t)k;
			break;
		}
		n += (size_t)k;
	}
	close(fd);
	return (long)n;
}

/* "data=CONTENT" or the errno of reading it. */
static const char *content(const char *path)
{
	static char outs[4][600]; /* several may appear in one emit() */
	static int k;
	char *out = outs[k++ % 4];
	char buf[256];
	long n = slurp(path, buf, sizeof buf);
	if (n < 0)
		snprintf(out, sizeof outs[0], "%s", en((int)-n));
	else
		snprintf(out, sizeof outs[0], "%s", n ? esc(buf, (size_t)n) : "(empty)");
	return out;
}

static const char *exists(const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return "yes";
	return errno == ENOENT ? "no" : en(errno);
}

/* Setup steps report only when they fail (as an extra, unexpected line). */
static void setup_fail(const char *what, const char *path)
{
	char name[512];
	int e = errno;
	snprintf(name, sizeof name, "setup.%s.%s", what, path);
	emit(name, "%s", en(e));
}

static int mkfile(const char *path, mode_t mode, const char *data)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (fd < 0) {
		setup_fail("mkfile", path);
		return -1;
	}
	if (data && write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
		setup_fail("write", path);
		close(fd);
		return -1;
	}
	close(fd);
	if (chmod(path, mode) < 0) { /* the umask must not matter */
		setup_fail("chmod", path);
		return -1;
	}
	return 0;
}

static int mkd(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 || chmod(path, mode) < 0) {
		setup_fail("mkdir", path);
		return -1;
	}
	return 0;
}

static void must(const char *what, const char *path, int rc)
{
	if (rc < 0)
		setup_fail(what, path);
}

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int same_ts(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* ------------------------------------------------------------------ child helpers */

/* Runs fn in a child process (with an alarm) and returns its result string. */
typedef void (*childfn)(void *arg, struct sb *out);
static void in_child(childfn fn, void *arg, char *out, size_t cap)
{
	int p[2];
	if (pipe(p) < 0) {
		snprintf(out, cap, "pipe:%s", en(errno));
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct sb s = {0};
		close(p[0]);
		alarm(30);
		fn(arg, &s);
		if (write(p[1], s.b, s.n) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t k;
	while (n + 1 < cap && (k = read(p[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		snprintf(out, cap, "child-died:%s", sigabbrev_np(WTERMSIG(st)));
}

/* ------------------------------------------------------------------ groups: open */

static void g_open(void)
{
	int fd;
	char buf[64];
	ssize_t n;

	fd = open("new", O_CREAT | O_EXCL | O_WRONLY, 0640);
	res_fd("open_creat_excl_new", fd);
	stat_line("open_creat_excl_new_stat", "new");
	res_fd("open_creat_excl_existing", open("new", O_CREAT | O_EXCL | O_WRONLY, 0640));
	res_fd("open_excl_without_creat", open("new", O_EXCL | O_RDONLY));
	res_fd("open_enoent", open("missing", O_RDONLY));
	res_fd("open_creat_missing_dir", open("nodir/x", O_CREAT | O_WRONLY, 0644));
	res_fd("open_enotdir_component", open("new/x", O_RDONLY));
	res_fd("open_trailing_slash_file", open("new/", O_RDONLY));
	res_fd("open_creat_trailing_slash", open("brandnew/", O_CREAT | O_WRONLY, 0644));

	/* O_CREAT on an existing file keeps its mode */
	mkfile("keepmode", 0600, "abc");
	res_fd("open_creat_existing", open("keepmode", O_CREAT | O_WRONLY, 0777));
	stat_line("open_creat_existing_stat", "keepmode");

	/* umask applies to the creation mode */
	umask(027);
	res_fd("open_creat_umask027", open("um", O_CREAT | O_WRONLY, 0666));
	umask(022);
	stat_line("open_creat_umask027_stat", "um");

	/* O_TRUNC */
	mkfile("tr", 0644, "0123456789");
	res_fd("open_trunc_wronly", open("tr", O_WRONLY | O_TRUNC));
	stat_line("open_trunc_wronly_stat", "tr");
	mkfile("tr2", 0644, "0123456789");
	res_fd("open_creat_trunc_existing", open("tr2", O_CREAT | O_RDWR | O_TRUNC, 0600));
	stat_line("open_creat_trunc_existing_stat", "tr2");
	mkfile("tr3", 0644, "0123456789");
	res_fd("open_trunc_rdonly", open("tr3", O_RDONLY | O_TRUNC));
	stat_line("open_trunc_rdonly_stat", "tr3");

	/* O_APPEND */
	mkfile("app", 0644, "12345");
	fd = open("app", O_WRONLY | O_APPEND);
	if (fd >= 0) {
		struct sb s = {0};
		lseek(fd, 0, SEEK_SET);
		sbr(&s, "write", write(fd, "ab", 2));
		sbf(&s, "pos=%lld", (long long)lseek(fd, 0, SEEK_CUR));
		emit("open_append_write", "%s", s.b);
		emit("open_append_write_content", "%s", content("app"));
		s = (struct sb){0};
		sbr(&s, "pwrite", pwrite(fd, "XY", 2, 0));
		emit("open_append_pwrite", "%s", s.b);
		emit("open_append_pwrite_content", "%s", content("app"));
		close(fd);
	} else {
		emit("open_append_write", "open=%s", en(errno));
	}
	mkfile("app2", 0644, "");
	{
		int a = open("app2", O_WRONLY | O_APPEND), b = open("app2", O_WRONLY | O_APPEND);
		struct sb s = {0};
		sbr(&s, "w1", write(a, "A", 1));
		sbr(&s, "w2", write(b, "BB", 2));
		sbr(&s, "w3", write(a, "C", 1));
		close(a);
		close(b);
		emit("open_append_two_fds", "%s", s.b);
		emit("open_append_two_fds_content", "%s", content("app2"));
	}

	/* O_DIRECTORY, directories */
	mkd("dir", 0755);
	res_fd("open_directory_on_file", open("new", O_RDONLY | O_DIRECTORY));
	res_fd("open_directory_on_dir", open("dir", O_RDONLY | O_DIRECTORY));
	res_fd("open_dir_wronly", open("dir", O_WRONLY));
	res_fd("open_dir_rdwr", open("dir", O_RDWR));
	res_fd("open_creat_on_dir", open("dir", O_CREAT | O_WRONLY, 0644));
	res_fd("open_creat_excl_on_dir", open("dir", O_CREAT | O_EXCL | O_WRONLY, 0644));

	/* symlinks */
	must("symlink", "lnk", symlink("new", "lnk"));
	must("symlink", "dangling", symlink("nothere", "dangling"));
	res_fd("open_nofollow_symlink", open("lnk", O_RDONLY | O_NOFOLLOW));
	res_fd("open_nofollow_symlink_path", open("lnk", O_PATH | O_NOFOLLOW));
	res_fd("open_follow_symlink", open("lnk", O_RDONLY));
	res_fd("open_creat_excl_dangling", open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644));
	res_fd("open_creat_dangling", open("dangling", O_CREAT | O_WRONLY, 0644));
	stat_line("open_creat_dangling_target", "nothere");
	res_fd("open_directory_on_symlink_to_file", open("lnk", O_RDONLY | O_DIRECTORY));

	/* mode 0000 with O_RDWR: the creator may still use the descriptor */
	fd = open("zero", O_CREAT | O_EXCL | O_RDWR, 0);
	if (fd >= 0) {
		struct sb s = {0};
		sbr(&s, "write", write(fd, "hi", 2));
		memset(buf, 0, sizeof buf);
		n = pread(fd, buf, sizeof buf, 0);
		if (n < 0)
			sbf(&s, "pread=%s", en(errno));
		else
			sbf(&s, "pread=%s", esc(buf, (size_t)n));
		emit("open_mode0000_rdwr", "%s", s.b);
		fstat_line("open_mode0000_rdwr_fstat", fd);
		close(fd);
	} else {
		emit("open_mode0000_rdwr", "open=%s", en(errno));
	}

	/* access modes */
	mkfile("acc", 0644, "data");
	fd = open("acc", O_WRONLY);
	res("open_wronly_then_read", fd < 0 ? -1 : read(fd, buf, sizeof buf));
	close(fd);
	fd = open("acc", O_RDONLY);
	res("open_rdonly_then_write", fd < 0 ? -1 : write(fd, "x", 1));
	close(fd);
	fd = open("acc", O_PATH);
	res("open_path_then_read", fd < 0 ? -1 : read(fd, buf, sizeof buf));
	{
		struct stat st;
		res("open_path_fstat", fd < 0 ? -1 : fstat(fd, &st));
	}
	close(fd);

	/* names */
	{
		char name[300];
		memset(name, 'n', 255);
		name[255] = 0;
		res_fd("open_name_255", open(name, O_CREAT | O_WRONLY, 0644));
		memset(name, 'm', 256);
		name[256] = 0;
		res_fd("open_name_256", open(name, O_CREAT | O_WRONLY, 0644));
	}

	/* flags the host may or may not support the same way through 9p */
	res_fd("open_noatime", open("acc", O_RDONLY | O_NOATIME));
	fd = open(".", O_TMPFILE | O_RDWR, 0600);
	res_fd("open_tmpfile", fd);
	fd = open("direct", O_CREAT | O_RDWR | O_DIRECT, 0644);
	if (fd < 0) {
		emit("open_direct", "%s", en(errno));
	} else {
		void *p = NULL;
		struct sb s = {0};
		if (posix_memalign(&p, 4096, 8192) == 0) {
			memset(p, 'D', 8192);
			sbr(&s, "write", write(fd, p, 8192));
			memset(p, 0, 8192);
			n = pread(fd, p, 4096, 4096);
			if (n < 0)
				sbf(&s, "pread=%s", en(errno));
			else
				sbf(&s, "pread=%zd first=%c", n, ((char *)p)[0]);
			free(p);
		}
		close(fd);
		emit("open_direct", "%s", s.b);
	}
	stat_line("open_direct_stat", "direct");
}

/* ------------------------------------------------------------------ read/write/seek */

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

static void g_rw(void)
{
	char buf[128];
	ssize_t n;
	int fd = open("f", O_CREAT | O_RDWR, 0644);
	if (fd < 0) {
		setup_fail("open", "f");
		return;
	}
	res("rw_write", write(fd, "hello world", 11));
	n = pread(fd, buf, 5, 6);
	emit("rw_pread_middle", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	emit("rw_lseek_end", "%lld", (long long)lseek(fd, 0, SEEK_END));
	n = read(fd, buf, sizeof buf);
	emit("rw_read_at_eof", "%zd", n);
	n = pread(fd, buf, sizeof buf, 1000);
	emit("rw_pread_beyond_eof", "%zd", n);
	emit("rw_lseek_negative", "%s", lseek(fd, -100, SEEK_SET) < 0 ? en(errno) : "ok");
	/* a write beyond EOF leaves a hole of zeros */
	res("rw_pwrite_gap", pwrite(fd, "Z", 1, 1 << 20));
	{
		struct stat st;
		fstat(fd, &st);
		memset(buf, 'x', sizeof buf);
		n = pread(fd, buf, 16, 4096);
		int zeros = n == 16;
		for (int i = 0; i < 16 && zeros; i++)
			zeros = buf[i] == 0;
		emit("rw_pwrite_gap_result", "size=%lld hole_zeros=%d", (long long)st.st_size, zeros);
	}
	/* writev / readv */
	{
		struct iovec iov[3] = {{"ab", 2}, {"cde", 3}, {"f", 1}};
		res("rw_writev", pwritev(fd, iov, 3, 20));
		char a[3] = {0}, b[4] = {0};
		struct iovec r[2] = {{a, 2}, {b, 4}};
		n = preadv(fd, r, 2, 20);
		emit("rw_readv", "n=%zd a=%s b=%s", n, esc(a, 2), esc(b, 4));
	}
	close(fd);

	/* large transfers: more than one 9p message */
	{
		size_t big = 3u << 20;
		unsigned char *w = malloc(big), *r = malloc(big);
		fill_pattern(w, big, 7);
		fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0644);
		ssize_t wn = write(fd, w, big);
		memset(r, 0, big);
		ssize_t rn = pread(fd, r, big, 0);
		emit("rw_large_3MiB", "write=%zd read=%zd match=%d", wn, rn, rn == (ssize_t)big && memcmp(w, r, big) == 0);
		/* an odd range across the middle */
		rn = pread(fd, r, 700001, 123457);
		emit("rw_large_odd_range", "read=%zd match=%d", rn,
		     rn == 700001 && memcmp(w + 123457, r, 700001) == 0);
		/* overwrite in the middle, then read the whole file */
		memset(w + 1000000, 0x5a, 300000);
		wn = pwrite(fd, w + 1000000, 300000, 1000000);
		rn = pread(fd, r, big, 0);
		emit("rw_large_overwrite", "write=%zd read=%zd match=%d", wn, rn,
		     rn == (ssize_t)big && memcmp(w, r, big) == 0);
		close(fd);
		free(w);
		free(r);
	}

	/* independent offsets of two descriptors, shared offset of a dup */
	mkfile("off", 0644, "abcdefgh");
	{
		int a = open("off", O_RDONLY), b = open("off", O_RDONLY), c = dup(a);
		char x[3] = {0}, y[3] = {0}, z[3] = {0};
		ssize_t r1 = read(a, x, 2), r2 = read(b, y, 2), r3 = read(c, z, 2);
		emit("rw_offsets", "a=%s b=%s dup=%s n=%zd,%zd,%zd", x, y, z, r1, r2, r3);
		close(a);
		close(b);
		close(c);
	}

	/* sparse files: SEEK_DATA / SEEK_HOLE */
	fd = open("sparse", O_CREAT | O_RDWR | O_TRUNC, 0644);
	must("pwrite", "sparse", (int)pwrite(fd, "data", 4, 1 << 20));
	{
		off_t d = lseek(fd, 0, SEEK_DATA);
		int ed = errno;
		off_t h = lseek(fd, 0, SEEK_HOLE);
		int eh = errno;
		struct sb s = {0};
		if (d < 0)
			sbf(&s, "data=%s", en(ed));
		else
			sbf(&s, "data=%lld", (long long)d);
		if (h < 0)
			sbf(&s, "hole=%s", en(eh));
		else
			sbf(&s, "hole=%lld", (long long)h);
		emit("rw_seek_data_hole", "%s", s.b);
	}
	close(fd);

	/* fallocate / copy_file_range */
	fd = open("falloc", O_CREAT | O_RDWR | O_TRUNC, 0644);
	res("rw_fallocate", fallocate(fd, 0, 0, 65536));
	stat_line("rw_fallocate_stat", "falloc");
	res("rw_fallocate_keep_size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 65536, 65536));
	res("rw_fallocate_punch_hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
	{
		int e = posix_fallocate(fd, 0, 100000);
		emit("rw_posix_fallocate", "%s", e ? en(e) : "ok");
	}
	stat_line("rw_posix_fallocate_stat", "falloc");
	close(fd);
	mkfile("cfr_src", 0644, "copy this text");
	{
		int a = open("cfr_src", O_RDONLY), b = open("cfr_dst", O_CREAT | O_WRONLY | O_TRUNC, 0644);
		ssize_t k = copy_file_range(a, NULL, b, NULL, 14, 0);
		emit("rw_copy_file_range", "%s", k < 0 ? en(errno) : "ok");
		close(a);
		close(b);
		emit("rw_copy_file_range_content", "%s", content("cfr_dst"));
	}
}

/* ------------------------------------------------------------------ truncate */

static void g_truncate(void)
{
	struct stat st;
	char buf[64];
	ssize_t n;

	mkfile("t", 0644, "abcdef");
	res("trunc_grow", truncate("t", 100));
	stat_line("trunc_grow_stat", "t");
	{
		int fd = open("t", O_RDONLY);
		n = pread(fd, buf, 10, 6);
		int zeros = n == 10;
		for (int i = 0; i < 10 && zeros; i++)
			zeros = buf[i] == 0;
		n = pread(fd, buf, 6, 0);
		emit("trunc_grow_read", "head=%s tail_zeros=%d", esc(buf, n > 0 ? (size_t)n : 0), zeros);
		close(fd);
	}
	res("trunc_shrink", truncate("t", 3));
	stat_line("trunc_shrink_stat", "t");
	emit("trunc_shrink_content", "%s", content("t"));
	res("trunc_zero", truncate("t", 0));
	stat_line("trunc_zero_stat", "t");
	res("trunc_negative", truncate("t", -1));
	res("trunc_enoent", truncate("missing", 0));
	mkd("d", 0755);
	res("trunc_dir", truncate("d", 0));

	int fd = open("ft", O_CREAT | O_RDWR, 0644);
	must("write", "ft", (int)write(fd, "123456789", 9));
	res("ftrunc_shrink", ftruncate(fd, 4));
	fstat_line("ftrunc_shrink_fstat", fd);
	res("ftrunc_grow", ftruncate(fd, 4096));
	fstat_line("ftrunc_grow_fstat", fd);
	n = pread(fd, buf, 8, 0);
	emit("ftrunc_grow_read", "%s", esc(buf, n > 0 ? (size_t)n : 0));
	/* the file position is not moved by ftruncate */
	lseek(fd, 10000, SEEK_SET);
	res("ftrunc_below_pos", ftruncate(fd, 100));
	res("ftrunc_write_at_pos", write(fd, "P", 1));
	fstat_line("ftrunc_write_at_pos_fstat", fd);
	close(fd);
	fd = open("ft", O_RDONLY);
	res("ftrunc_rdonly_fd", ftruncate(fd, 0));
	close(fd);

	/* beyond 4 GiB, sparse */
	long long big = 5LL << 30;
	fd = open("huge", O_CREAT | O_RDWR, 0644);
	res("trunc_5GiB", ftruncate(fd, big));
	if (fstat(fd, &st) == 0)
		emit("trunc_5GiB_stat", "size=%lld sparse=%d", (long long)st.st_size, (long long)st.st_blocks * 512 < (1LL << 20));
	memset(buf, 'x', sizeof buf);
	n = pread(fd, buf, 16, (4LL << 30) + 12345);
	{
		int zeros = n == 16;
		for (int i = 0; i < 16 && zeros; i++)
			zeros = buf[i] == 0;
		emit("trunc_5GiB_read_zeros", "n=%zd zeros=%d", n, zeros);
	}
	res("trunc_5GiB_write_tail", pwrite(fd, "END!", 4, big - 4));
	n = pread(fd, buf, 8, big - 4);
	emit("trunc_5GiB_read_tail", "n=%zd data=%s", n, esc(buf, n > 0 ? (size_t)n : 0));
	res("trunc_5GiB_write_past_4GiB", pwrite(fd, "4G", 2, (4LL << 30) + 1));
	n = pread(fd, buf, 4, 4LL << 30);
	emit("trunc_5GiB_read_past_4GiB", "n=%zd data=%s", n, esc(buf, n > 0 ? (size_t)n : 0));
	res("trunc_5GiB_shrink", ftruncate(fd, (4LL << 30) + 2));
	fstat_line("trunc_5GiB_shrink_fstat", fd);
	n = pread(fd, buf, 8, 4LL << 30);
	emit("trunc_5GiB_shrink_read", "n=%zd data=%s", n, esc(buf, n > 0 ? (size_t)n : 0));
	close(fd);
	stat_line("trunc_5GiB_stat_by_path", "huge");
	res("trunc_5GiB_by_path", truncate("huge", 1));
	stat_line("trunc_5GiB_by_path_stat", "huge");
}

/* ------------------------------------------------------------------ rename */

static void rename_case(const char *name, const char *from, const char *to)
{
	res(name, rename(from, to));
}

static void g_rename(void)
{
	char nm[80];
	(void)nm;
	mkfile("a", 0644, "A");
	mkfile("b", 0600, "B");
	rename_case("rename_file_over_file", "a", "b");
	emit("rename_file_over_file_result", "a=%s b=%s", exists("a"), content("b"));
	stat_line("rename_file_over_file_stat", "b");

	mkfile("f1", 0644, "1");
	mkd("ed1", 0755);
	rename_case("rename_file_over_empty_dir", "f1", "ed1");
	mkd("ned", 0755);
	mkfile("ned/x", 0644, "x");
	rename_case("rename_file_over_nonempty_dir", "f1", "ned");
	rename_case("rename_dir_over_file", "ed1", "f1");
	emit("rename_mismatch_result", "f1=%s ed1=%s", exists("f1"), exists("ed1"));

	mkd("sd", 0755);
	mkfile("sd/marker", 0644, "M");
	mkd("td", 0755);
	rename_case("rename_dir_over_empty_dir", "sd", "td");
	emit("rename_dir_over_empty_dir_result", "sd=%s td_marker=%s", exists("sd"), content("td/marker"));
	rename_case("rename_dir_over_nonempty_dir", "ed1", "td");
	emit("rename_dir_over_nonempty_dir_result", "ed1=%s td_marker=%s", exists("ed1"), content("td/marker"));

	mkd("p", 0755);
	mkd("p/sub", 0755);
	rename_case("rename_into_own_subdir", "p", "p/sub/x");
	rename_case("rename_onto_own_child", "p", "p/sub");
	rename_case("rename_onto_own_parent", "p/sub", "p");
	rename_case("rename_dir_into_itself", "p", "p/x");
	emit("rename_subdir_result", "p=%s p_sub=%s", exists("p"), exists("p/sub"));

	/* across directories */
	mkd("s", 0755);
	mkd("t", 0755);
	mkfile("s/f", 0640, "across");
	rename_case("rename_across_dirs", "s/f", "t/g");
	emit("rename_across_dirs_result", "src=%s dst=%s", exists("s/f"), content("t/g"));
	stat_line("rename_across_dirs_stat", "t/g");
	mkd("s/sd", 0755);
	mkfile("s/sd/in", 0644, "inside");
	{
		struct stat a1, b1, a2, b2;
		lstat("s", &a1);
		lstat("t", &b1);
		rename_case("rename_dir_across_dirs", "s/sd", "t/sd");
		lstat("s", &a2);
		lstat("t", &b2);
		emit("rename_dir_across_dirs_nlink", "src_parent=%lu->%lu dst_parent=%lu->%lu", (unsigned long)a1.st_nlink,
		     (unsigned long)a2.st_nlink, (unsigned long)b1.st_nlink, (unsigned long)b2.st_nlink);
		emit("rename_dir_across_dirs_content", "%s", content("t/sd/in"));
	}
	/* ".." of a moved directory is its new parent */
	{
		struct stat a, b;
		int r1 = stat("t/sd/..", &a), r2 = stat("t", &b);
		emit("rename_dir_dotdot", "%s", r1 < 0 || r2 < 0 ? "error" : (a.st_ino == b.st_ino ? "new_parent" : "other"));
	}

	/* onto itself, hard links of one file */
	mkfile("self", 0644, "S");
	rename_case("rename_onto_itself", "self", "self");
	emit("rename_onto_itself_result", "%s", content("self"));
	mkd("selfd", 0755);
	rename_case("rename_dir_onto_itself", "selfd", "selfd");
	mkfile("h1", 0644, "H");
	must("link", "h2", link("h1", "h2"));
	rename_case("rename_hardlink_onto_other_link", "h1", "h2");
	emit("rename_hardlink_onto_other_link_result", "h1=%s h2=%s", exists("h1"), exists("h2"));
	stat_line("rename_hardlink_onto_other_link_stat", "h2");

	/* errors */
	rename_case("rename_missing_source", "nosuch", "x");
	rename_case("rename_missing_target_dir", "self", "nodir/x");
	rename_case("rename_file_trailing_slash_target", "self", "newname/");
	rename_case("rename_file_trailing_slash_source", "self/", "newname");
	rename_case("rename_dot", ".", "dotname");
	rename_case("rename_dotdot_target", "self", "..");
	mkd("slash1", 0755);
	rename_case("rename_dir_trailing_slashes", "slash1/", "slash2/");
	emit("rename_dir_trailing_slashes_result", "old=%s new=%s", exists("slash1"), exists("slash2"));
	{
		char name[300];
		memset(name, 'r', 255);
		name[255] = 0;
		rename_case("rename_to_name_255", "self", name);
		rename_case("rename_back_from_name_255", name, "self");
		memset(name, 'q', 256);
		name[256] = 0;
		rename_case("rename_to_name_256", "self", name);
	}

	/* symlinks are renamed, not followed */
	must("symlink", "sl", symlink("self", "sl"));
	rename_case("rename_symlink", "sl", "sl2");
	{
		char t[64];
		ssize_t k = readlink("sl2", t, sizeof t);
		emit("rename_symlink_result", "sl=%s target=%s", exists("sl"), k < 0 ? en(errno) : esc(t, (size_t)k));
	}
	mkfile("ovl", 0644, "new content");
	rename_case("rename_file_over_symlink", "ovl", "sl2");
	stat_line("rename_file_over_symlink_stat", "sl2");
	emit("rename_file_over_symlink_target", "%s", content("self"));

	/* the inode survives a rename */
	{
		struct stat x, y;
		mkfile("ino1", 0644, "i");
		lstat("ino1", &x);
		rename("ino1", "ino2");
		lstat("ino2", &y);
		emit("rename_keeps_inode", "%d", x.st_ino == y.st_ino);
	}

	/* an open descriptor follows the file */
	{
		mkfile("openf", 0644, "before");
		int fd = open("openf", O_RDWR);
		rename_case("rename_open_file", "openf", "openf2");
		char buf[32];
		ssize_t k = pread(fd, buf, sizeof buf, 0);
		struct sb s = {0};
		sbf(&s, "read=%s", k < 0 ? en(errno) : esc(buf, (size_t)k));
		sbr(&s, "write", pwrite(fd, "AFTER!", 6, 0));
		close(fd);
		emit("rename_open_file_io", "%s", s.b);
		emit("rename_open_file_content", "%s", content("openf2"));
	}

	/* a directory renamed with descriptors open inside it */
	{
		mkd("od", 0755);
		mkfile("od/inner", 0644, "inner");
		int dfd = open("od", O_RDONLY | O_DIRECTORY);
		int ffd = open("od/inner", O_RDWR);
		rename_case("rename_dir_with_open_fds", "od", "od2");
		struct sb s = {0};
		sbr(&s, "write_inner", pwrite(ffd, "INNER", 5, 0));
		int nfd = openat(dfd, "created_after", O_CREAT | O_WRONLY, 0644);
		sbr(&s, "openat_create", nfd);
		if (nfd >= 0) {
			sbr(&s, "write_new", write(nfd, "N", 1));
			close(nfd);
		}
		struct stat st;
		sbr(&s, "fstatat_inner", fstatat(dfd, "inner", &st, 0));
		emit("rename_dir_with_open_fds_io", "%s", s.b);
		emit("rename_dir_with_open_fds_inner", "%s", content("od2/inner"));
		emit("rename_dir_with_open_fds_new", "new_path=%s old_path=%s", content("od2/created_after"),
		     exists("od/created_after"));
		/* and renamed again while the descriptors are still open */
		rename_case("rename_dir_with_open_fds_again", "od2", "od3");
		int mfd = openat(dfd, "created_later", O_CREAT | O_WRONLY, 0644);
		close(mfd);
		emit("rename_dir_with_open_fds_again_new", "%s", exists("od3/created_later"));
		close(ffd);
		close(dfd);
	}

	/* renameat2 flags */
	mkfile("n1", 0644, "one");
	mkfile("n2", 0644, "two");
	res("rename_noreplace_existing", renameat2(AT_FDCWD, "n1", AT_FDCWD, "n2", RENAME_NOREPLACE));
	res("rename_noreplace_new", renameat2(AT_FDCWD, "n1", AT_FDCWD, "n3", RENAME_NOREPLACE));
	emit("rename_noreplace_result", "n1=%s n2=%s n3=%s", exists("n1"), content("n2"), exists("n3"));
	mkfile("x1", 0644, "ex-one");
	mkfile("x2", 0644, "ex-two");
	res("rename_exchange", renameat2(AT_FDCWD, "x1", AT_FDCWD, "x2", RENAME_EXCHANGE));
	emit("rename_exchange_result", "x1=%s x2=%s", content("x1"), content("x2"));
	res("rename_exchange_missing", renameat2(AT_FDCWD, "x1", AT_FDCWD, "x9", RENAME_EXCHANGE));
	mkd("xd", 0755);
	res("rename_exchange_file_dir", renameat2(AT_FDCWD, "x1", AT_FDCWD, "xd", RENAME_EXCHANGE));
	emit("rename_exchange_file_dir_result", "x1=%s", exists("x1/."));
	res("rename_noreplace_exchange", renameat2(AT_FDCWD, "x1", AT_FDCWD, "x2", RENAME_NOREPLACE | RENAME_EXCHANGE));
}

/* ------------------------------------------------------------------ link/unlink/rmdir/mkdir */

static void g_link(void)
{
	mkfile("f", 0644, "F");
	res("link_basic", link("f", "g"));
	stat_line("link_basic_stat_f", "f");
	stat_line("link_basic_stat_g", "g");
	{
		int fd = open("g", O_WRONLY | O_TRUNC);
		must("write", "g", (int)write(fd, "via g", 5));
		close(fd);
		emit("link_shared_content", "%s", content("f"));
	}
	res("link_existing_target", link("f", "g"));
	mkd("d", 0755);
	res("link_dir", link("d", "dlink"));
	res("link_missing_source", link("nosuch", "x"));
	res("link_missing_target_dir", link("f", "nodir/x"));
	res("link_trailing_slash", link("f", "h/"));
	must("symlink", "sl", symlink("f", "sl"));
	res("link_symlink_nofollow", link("sl", "sl_link"));
	stat_line("link_symlink_nofollow_stat", "sl_link");
	res("linkat_symlink_follow", linkat(AT_FDCWD, "sl", AT_FDCWD, "sl_follow", AT_SYMLINK_FOLLOW));
	stat_line("linkat_symlink_follow_stat", "sl_follow");
	{
		struct stat a, b;
		lstat("f", &a);
		lstat("g", &b);
		emit("link_same_inode", "%d", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	}
	/* linkat AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH) */
	{
		int fd = open("f", O_RDONLY);
		res("linkat_empty_path", linkat(fd, "", AT_FDCWD, "from_fd", AT_EMPTY_PATH));
		close(fd);
		stat_line("linkat_empty_path_stat", "f");
	}

	res("unlink_one_link", unlink("g"));
	stat_line("unlink_one_link_stat", "f");
	res("unlink_dir", unlink("d"));
	res("unlink_missing", unlink("nosuch"));
	res("unlink_trailing_slash", unlink("f/"));
	res("unlink_symlink", unlink("sl"));
	emit("unlink_symlink_result", "sl=%s f=%s", exists("sl"), exists("f"));

	mkd("ne", 0755);
	mkfile("ne/x", 0644, "");
	res("rmdir_nonempty", rmdir("ne"));
	res("rmdir_file", rmdir("f"));
	res("rmdir_missing", rmdir("nosuch"));
	res("rmdir_dot", rmdir("d/."));
	res("rmdir_dotdot", rmdir("d/.."));
	must("symlink", "dl", symlink("d", "dl"));
	res("rmdir_symlink_to_dir", rmdir("dl"));
	res("unlinkat_removedir_file", unlinkat(AT_FDCWD, "f", AT_REMOVEDIR));
	res("unlinkat_removedir_dir", unlinkat(AT_FDCWD, "d", AT_REMOVEDIR));
	emit("unlinkat_removedir_dir_result", "%s", exists("d"));
	res("rmdir_after_emptying", (unlink("ne/x"), rmdir("ne")));

	res("mkdir_basic", mkdir("m", 0750));
	stat_line("mkdir_basic_stat", "m");
	res("mkdir_existing", mkdir("m", 0755));
	res("mkdir_over_file", mkdir("f", 0755));
	res("mkdir_missing_parent", mkdir("nodir/x", 0755));
	res("mkdir_over_symlink", mkdir("dl", 0755));
	res("mkdir_trailing_slash", mkdir("m2/", 0755));
	stat_line("mkdir_trailing_slash_stat", "m2");
	umask(077);
	res("mkdir_umask077", mkdir("m3", 0777));
	umask(022);
	stat_line("mkdir_umask077_stat", "m3");
	res("mkdir_sticky_mode", mkdir("m4", 01777));
	stat_line("mkdir_sticky_mode_stat", "m4");

	/* set-group-ID directories pass their group down */
	mkd("sg", 0755);
	must("chown", "sg", chown("sg", 0, 4321));
	must("chmod", "sg", chmod("sg", 02775));
	res("sgid_dir_mkdir", mkdir("sg/sub", 0755));
	stat_line("sgid_dir_mkdir_stat", "sg/sub");
	res_fd("sgid_dir_create", open("sg/file", O_CREAT | O_WRONLY, 0644));
	stat_line("sgid_dir_create_stat", "sg/file");
	res("sgid_dir_mknod_fifo", mknod("sg/fifo", S_IFIFO | 0644, 0));
	stat_line("sgid_dir_mknod_fifo_stat", "sg/fifo");
	res("sgid_dir_symlink", symlink("x", "sg/sym"));
	stat_line("sgid_dir_symlink_stat", "sg/sym");
}

/* ------------------------------------------------------------------ nlink / identity */

static void g_nlink(void)
{
	struct stat st;
	struct sb s = {0};
	mkfile("f", 0644, "");
	for (int i = 0; i < 3; i++) {
		char n[16];
		snprintf(n, sizeof n, "l%d", i);
		link("f", n);
		lstat("f", &st);
		sbf(&s, "%lu", (unsigned long)st.st_nlink);
	}
	unlink("l0");
	lstat("f", &st);
	sbf(&s, "%lu", (unsigned long)st.st_nlink);
	lstat("l2", &st);
	sbf(&s, "%lu", (unsigned long)st.st_nlink);
	emit("nlink_file_sequence", "%s", s.b);

	s = (struct sb){0};
	mkd("d", 0755);
	lstat("d", &st);
	sbf(&s, "%lu", (unsigned long)st.st_nlink);
	mkd("d/a", 0755);
	mkd("d/b", 0755);
	mkfile("d/file", 0644, "");
	lstat("d", &st);
	sbf(&s, "%lu", (unsigned long)st.st_nlink);
	rmdir("d/a");
	lstat("d", &st);
	sbf(&s, "%lu", (unsigned long)st.st_nlink);
	rename("d/b", "b_out");
	lstat("d", &st);
	sbf(&s, "%lu", (unsigned long)st.st_nlink);
	emit("nlink_dir_sequence", "%s", s.b);

	/* an open file's link count reaches 0 when unlinked */
	{
		int fd = open("f", O_RDONLY);
		unlink("f");
		unlink("l1");
		unlink("l2");
		fstat(fd, &st);
		emit("nlink_open_unlinked", "%lu", (unsigned long)st.st_nlink);
		close(fd);
	}

	/* identity */
	{
		struct stat a, b, c, dd;
		mkfile("x", 0644, "");
		mkfile("y", 0644, "");
		lstat("x", &a);
		lstat("x", &b);
		lstat("y", &c);
		stat(".", &dd);
		emit("ino_stable", "%d", a.st_ino == b.st_ino);
		emit("ino_distinct", "%d", a.st_ino != c.st_ino);
		emit("dev_same_in_dir", "%d", a.st_dev == c.st_dev && a.st_dev == dd.st_dev);
		int fd = open("x", O_RDONLY);
		fstat(fd, &b);
		close(fd);
		emit("ino_fstat_matches_stat", "%d", a.st_ino == b.st_ino);
		/* a new file reusing a name gets ... any inode; the old one's identity must not leak */
		struct dirent *e;
		DIR *dir = opendir(".");
		int match = -1;
		while (dir && (e = readdir(dir)))
			if (!strcmp(e->d_name, "x"))
				match = e->d_ino == a.st_ino;
		if (dir)
			closedir(dir);
		emit("ino_readdir_matches_stat", "%d", match);
	}
}

/* ------------------------------------------------------------------ symlinks */

static void g_symlink(void)
{
	char buf[8192];
	ssize_t n;
	mkfile("file", 0644, "target content");
	res("symlink_basic", symlink("file", "l"));
	stat_line("symlink_basic_lstat", "l");
	n = readlink("l", buf, sizeof buf);
	emit("symlink_basic_readlink", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	emit("symlink_basic_follow", "%s", content("l"));
	res("symlink_existing", symlink("file", "l"));
	res("symlink_over_file", symlink("x", "file"));
	res("symlink_empty_target", symlink("", "empty"));
	res("symlink_dangling", symlink("nowhere/at/all", "dang"));
	{
		struct stat st;
		res("symlink_dangling_stat", stat("dang", &st));
		res("symlink_dangling_lstat", lstat("dang", &st));
	}
	res("readlink_on_file", readlink("file", buf, sizeof buf));
	res("readlink_missing", readlink("nosuch", buf, sizeof buf));
	n = readlink("l", buf, 2);
	emit("readlink_small_buffer", "n=%zd data=%s", n, n < 0 ? en(errno) : esc(buf, (size_t)n));

	/* long targets */
	static const int lens[] = {100, 255, 256, 1024, 4000, 4095, 4096};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char name[64], lname[32], t[4200];
		for (int k = 0; k < lens[i]; k++)
			t[k] = (char)('a' + (k % 26));
		for (int k = 50; k < lens[i]; k += 50)
			t[k] = '/';
		t[lens[i]] = 0;
		snprintf(lname, sizeof lname, "long%d", lens[i]);
		snprintf(name, sizeof name, "symlink_target_%d", lens[i]);
		int rc = symlink(t, lname);
		if (rc < 0) {
			emit(name, "%s", en(errno));
			continue;
		}
		n = readlink(lname, buf, sizeof buf);
		struct stat st;
		lstat(lname, &st);
		emit(name, "readlink=%zd size=%lld match=%d", n, (long long)st.st_size,
		     n == lens[i] && memcmp(buf, t, (size_t)n) == 0);
	}

	/* loops */
	must("symlink", "loop_a", symlink("loop_b", "loop_a"));
	must("symlink", "loop_b", symlink("loop_a", "loop_b"));
	must("symlink", "self", symlink("self", "self"));
	res_fd("symlink_loop_open", open("loop_a", O_RDONLY));
	res_fd("symlink_self_open", open("self", O_RDONLY));
	{
		struct stat st;
		res("symlink_loop_stat", stat("loop_a", &st));
		res("symlink_loop_lstat", lstat("loop_a", &st));
	}
	res_fd("symlink_loop_creat", open("self", O_CREAT | O_WRONLY, 0644));
	/* a chain of 40 links resolves, 41 does not */
	{
		char a[16], b[16];
		must("symlink", "c0", symlink("file", "c0"));
		for (int i = 1; i <= 40; i++) {
			snprintf(a, sizeof a, "c%d", i);
			snprintf(b, sizeof b, "c%d", i - 1);
			must("symlink", a, symlink(b, a));
		}
		res_fd("symlink_chain_40", open("c39", O_RDONLY));
		res_fd("symlink_chain_41", open("c40", O_RDONLY));
	}

	/* relative targets, directories */
	mkd("dir", 0755);
	mkfile("dir/inner", 0644, "inner");
	mkd("sub", 0755);
	must("symlink", "sub/up", symlink("../dir", "sub/up"));
	emit("symlink_relative_dotdot", "%s", content("sub/up/inner"));
	must("symlink", "dl", symlink("dir", "dl"));
	emit("symlink_to_dir_follow", "%s", content("dl/inner"));
	res_fd("symlink_to_dir_nofollow_directory", open("dl", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
	res("symlink_to_dir_trailing_slash_lstat", ({
		    struct stat st;
		    int r = lstat("dl/", &st);
		    r < 0 ? r : (S_ISDIR(st.st_mode) ? 0 : (errno = EINVAL, -1));
	    }));
	res("symlink_to_dir_chdir", ({
		    int r = chdir("dl");
		    if (r == 0)
			    r = chdir("..");
		    r;
	    }));
	/* absolute target: readlink returns it verbatim, no resolution by the server */
	res("symlink_absolute_target", symlink("/nonexistent/abs/path", "abs"));
	n = readlink("abs", buf, sizeof buf);
	emit("symlink_absolute_readlink", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	/* readlinkat with an empty path on an O_PATH descriptor */
	{
		int fd = open("l", O_PATH | O_NOFOLLOW);
		n = readlinkat(fd, "", buf, sizeof buf);
		emit("readlinkat_empty_path", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
		close(fd);
	}
}

/* ------------------------------------------------------------------ chmod/chown */

static void g_chmod(void)
{
	static const mode_t modes[] = {0, 0640, 0777, 04755, 02755, 01644, 07777, 0444};
	mkfile("f", 0644, "x");
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		char name[64];
		struct stat st;
		snprintf(name, sizeof name, "chmod_%04o", modes[i]);
		int rc = chmod("f", modes[i]);
		if (rc < 0) {
			emit(name, "%s", en(errno));
			continue;
		}
		lstat("f", &st);
		emit(name, "mode=%04o", st.st_mode & 07777);
	}
	mkd("d", 0755);
	res("chmod_dir_sticky", chmod("d", 01777));
	stat_line("chmod_dir_sticky_stat", "d");
	res("chmod_dir_sgid", chmod("d", 02750));
	stat_line("chmod_dir_sgid_stat", "d");
	must("symlink", "l", symlink("f", "l"));
	chmod("f", 0600);
	res("chmod_through_symlink", chmod("l", 0604));
	stat_line("chmod_through_symlink_target", "f");
	stat_line("chmod_through_symlink_link", "l");
	res("fchmodat_symlink_nofollow", fchmodat(AT_FDCWD, "l", 0600, AT_SYMLINK_NOFOLLOW));
	res("chmod_missing", chmod("nosuch", 0644));
	{
		int fd = open("f", O_RDONLY);
		res("fchmod_rdonly_fd", fchmod(fd, 0640));
		fstat_line("fchmod_rdonly_fd_fstat", fd);
		close(fd);
		fd = open("f", O_PATH);
		res("fchmod_path_fd", fchmod(fd, 0640));
		close(fd);
	}
	must("mkfifo", "fifo", mkfifo("fifo", 0644));
	res("chmod_fifo", chmod("fifo", 0600));
	stat_line("chmod_fifo_stat", "fifo");

	/* chown (as root) */
	mkfile("o", 0644, "o");
	res("chown_basic", chown("o", 1234, 5678));
	stat_line("chown_basic_stat", "o");
	res("chown_uid_only", chown("o", 4321, (gid_t)-1));
	stat_line("chown_uid_only_stat", "o");
	res("chown_gid_only", chown("o", (uid_t)-1, 8765));
	stat_line("chown_gid_only_stat", "o");
	res("chown_noop", chown("o", (uid_t)-1, (gid_t)-1));
	stat_line("chown_noop_stat", "o");
	res("chown_large_ids", chown("o", 3000000000u, 3000000001u));
	stat_line("chown_large_ids_stat", "o");
	mkfile("su", 06755, "s");
	res("chown_clears_setid", chown("su", 1000, 1000));
	stat_line("chown_clears_setid_stat", "su");
	mkfile("sg", 02745, "s"); /* set-gid without group exec: mandatory locking bit, kept */
	res("chown_setgid_noexec", chown("sg", 1000, 1000));
	stat_line("chown_setgid_noexec_stat", "sg");
	mkd("dsu", 0755);
	chmod("dsu", 06755);
	res("chown_dir_keeps_setid", chown("dsu", 1000, 1000));
	stat_line("chown_dir_keeps_setid_stat", "dsu");
	must("symlink", "ol", symlink("o", "ol"));
	res("lchown_symlink", lchown("ol", 777, 778));
	stat_line("lchown_symlink_link", "ol");
	stat_line("lchown_symlink_target", "o");
	res("chown_through_symlink", chown("ol", 999, 998));
	stat_line("chown_through_symlink_target", "o");
	res("chown_dir", chown("d", 2000, 2001));
	stat_line("chown_dir_stat", "d");
	res("chown_fifo", chown("fifo", 3, 4));
	stat_line("chown_fifo_stat", "fifo");
	{
		int fd = open("o", O_RDONLY);
		res("fchown_rdonly_fd", fchown(fd, 55, 66));
		fstat_line("fchown_rdonly_fd_fstat", fd);
		close(fd);
	}
	/* chmod/chown change ctime, not mtime */
	{
		struct stat a, b;
		lstat("o", &a);
		msleep(30);
		chmod("o", 0600);
		lstat("o", &b);
		emit("chmod_times", "ctime_changed=%d mtime_changed=%d", !same_ts(a.st_ctim, b.st_ctim),
		     !same_ts(a.st_mtim, b.st_mtim));
		msleep(30);
		chown("o", 1, 1);
		lstat("o", &a);
		emit("chown_times", "ctime_changed=%d mtime_changed=%d", !same_ts(a.st_ctim, b.st_ctim),
		     !same_ts(a.st_mtim, b.st_mtim));
	}
}

/* ------------------------------------------------------------------ times */

static const char *tsfmt(struct timespec t)
{
	static char b[4][40];
	static int i;
	i = (i + 1) % 4;
	snprintf(b[i], sizeof b[i], "%lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
	return b[i];
}

static int recent(struct timespec t)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return t.tv_sec > now.tv_sec - 300 && t.tv_sec < now.tv_sec + 300;
}

static void g_times(void)
{
	struct stat st;
	struct timespec ts[2];
	mkfile("f", 0644, "x");
	/* nanoseconds (the only checks with a sub-second part, see below) */
	ts[0] = (struct timespec){1000000000, 123456789};
	ts[1] = (struct timespec){1200000000, 987654321};
	res("utimensat_ns", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_ns_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	{
		int fd = open("f", O_RDONLY);
		ts[0] = (struct timespec){1000000001, 1};
		ts[1] = (struct timespec){1000000002, 999999999};
		res("futimens_ns", futimens(fd, ts));
		struct stat fs;
		fstat(fd, &fs);
		emit("futimens_ns_stat", "atime=%s mtime=%s", tsfmt(fs.st_atim), tsfmt(fs.st_mtim));
		close(fd);
	}
	/* before 1970 */
	ts[0] = (struct timespec){-1, 0};
	ts[1] = (struct timespec){-86400, 0};
	res("utimensat_negative", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_negative_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));

	/* whole seconds from here on */
	ts[0] = (struct timespec){1000000000, 0};
	ts[1] = (struct timespec){1200000000, 0};
	utimensat(AT_FDCWD, "f", ts, 0);
	ts[0] = (struct timespec){0, UTIME_OMIT};
	ts[1] = (struct timespec){1300000000, 0};
	res("utimensat_omit_atime", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_omit_atime_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));

	ts[0] = (struct timespec){1100000000, 0};
	ts[1] = (struct timespec){0, UTIME_OMIT};
	res("utimensat_omit_mtime", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_omit_mtime_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));

	ts[0] = (struct timespec){0, UTIME_OMIT};
	ts[1] = (struct timespec){0, UTIME_OMIT};
	{
		struct stat a;
		lstat("f", &a);
		msleep(30);
		res("utimensat_omit_both", utimensat(AT_FDCWD, "f", ts, 0));
		lstat("f", &st);
		emit("utimensat_omit_both_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	}

	ts[0] = (struct timespec){0, UTIME_NOW};
	ts[1] = (struct timespec){1400000000, 0};
	res("utimensat_now_atime", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_now_atime_stat", "atime_recent=%d mtime=%s", recent(st.st_atim), tsfmt(st.st_mtim));

	ts[0] = (struct timespec){1, 0};
	ts[1] = (struct timespec){0, UTIME_NOW};
	res("utimensat_now_mtime", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_now_mtime_stat", "atime=%s mtime_recent=%d", tsfmt(st.st_atim), recent(st.st_mtim));

	res("utimensat_null", utimensat(AT_FDCWD, "f", NULL, 0));
	lstat("f", &st);
	emit("utimensat_null_stat", "atime_recent=%d mtime_recent=%d", recent(st.st_atim), recent(st.st_mtim));

	ts[0] = (struct timespec){0, 1000000000};
	ts[1] = (struct timespec){0, 0};
	res("utimensat_bad_nsec", utimensat(AT_FDCWD, "f", ts, 0));
	ts[0] = (struct timespec){4102444800LL, 0}; /* 2100-01-01 */
	ts[1] = (struct timespec){4102444801LL, 0};
	res("utimensat_year_2100", utimensat(AT_FDCWD, "f", ts, 0));
	lstat("f", &st);
	emit("utimensat_year_2100_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));

	/* futimens on a read-only descriptor (owner: allowed) */
	{
		int fd = open("f", O_RDONLY);
		ts[0] = (struct timespec){1111111111, 0};
		ts[1] = (struct timespec){1222222222, 0};
		res("futimens_rdonly_fd", futimens(fd, ts));
		struct stat fs;
		fstat(fd, &fs);
		emit("futimens_rdonly_fd_stat", "atime=%s mtime=%s", tsfmt(fs.st_atim), tsfmt(fs.st_mtim));
		close(fd);
	}

	/* symlinks: AT_SYMLINK_NOFOLLOW touches the link only */
	mkfile("target", 0644, "t");
	must("symlink", "l", symlink("target", "l"));
	ts[0] = (struct timespec){1000000001, 0};
	ts[1] = (struct timespec){1000000002, 0};
	utimensat(AT_FDCWD, "target", ts, 0);
	ts[0] = (struct timespec){1500000000, 0};
	ts[1] = (struct timespec){1500000001, 0};
	res("utimensat_symlink_nofollow", utimensat(AT_FDCWD, "l", ts, AT_SYMLINK_NOFOLLOW));
	lstat("l", &st);
	emit("utimensat_symlink_nofollow_link", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	lstat("target", &st);
	emit("utimensat_symlink_nofollow_target", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	ts[0] = (struct timespec){1600000000, 0};
	ts[1] = (struct timespec){1600000001, 0};
	res("utimensat_symlink_follow", utimensat(AT_FDCWD, "l", ts, 0));
	lstat("target", &st);
	emit("utimensat_symlink_follow_target", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	lstat("l", &st);
	emit("utimensat_symlink_follow_link", "mtime=%s", tsfmt(st.st_mtim));

	/* directories */
	mkd("d", 0755);
	ts[0] = (struct timespec){1000, 0};
	ts[1] = (struct timespec){2000, 0};
	res("utimensat_dir", utimensat(AT_FDCWD, "d", ts, 0));
	lstat("d", &st);
	emit("utimensat_dir_stat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	{
		struct stat b;
		msleep(30);
		mkfile("d/new", 0644, "");
		lstat("d", &b);
		emit("dir_mtime_after_create", "changed=%d", !same_ts(b.st_mtim, st.st_mtim));
		utimensat(AT_FDCWD, "d", ts, 0);
		msleep(30);
		unlink("d/new");
		lstat("d", &b);
		emit("dir_mtime_after_unlink", "changed=%d", !same_ts(b.st_mtim, st.st_mtim));
		utimensat(AT_FDCWD, "d", ts, 0);
		mkfile("d/r", 0644, "");
		utimensat(AT_FDCWD, "d", ts, 0);
		msleep(30);
		rename("d/r", "d/r2");
		lstat("d", &b);
		emit("dir_mtime_after_rename", "changed=%d", !same_ts(b.st_mtim, st.st_mtim));
	}

	/* what updates mtime / ctime of a file */
	{
		struct stat a, b;
		int fd = open("f", O_RDWR);
		ts[0] = (struct timespec){1000000000, 0};
		ts[1] = (struct timespec){1000000000, 0};
		futimens(fd, ts);
		fstat(fd, &a);
		msleep(30);
		must("write", "f", (int)pwrite(fd, "abc", 3, 0));
		fstat(fd, &b);
		emit("write_updates_times", "mtime_changed=%d ctime_changed=%d", !same_ts(a.st_mtim, b.st_mtim),
		     !same_ts(a.st_ctim, b.st_ctim));
		futimens(fd, ts);
		fstat(fd, &a);
		msleep(30);
		must("ftruncate", "f", ftruncate(fd, 1));
		fstat(fd, &b);
		emit("ftruncate_updates_times", "mtime_changed=%d ctime_changed=%d", !same_ts(a.st_mtim, b.st_mtim),
		     !same_ts(a.st_ctim, b.st_ctim));
		futimens(fd, ts);
		fstat(fd, &a);
		msleep(30);
		must("ftruncate", "f", ftruncate(fd, 1)); /* same size */
		fstat(fd, &b);
		emit("ftruncate_same_size_times", "mtime_changed=%d", !same_ts(a.st_mtim, b.st_mtim));
		futimens(fd, ts);
		fstat(fd, &a);
		msleep(30);
		char c;
		must("read", "f", (int)pread(fd, &c, 1, 0));
		fstat(fd, &b);
		emit("read_keeps_mtime", "mtime_changed=%d ctime_changed=%d", !same_ts(a.st_mtim, b.st_mtim),
		     !same_ts(a.st_ctim, b.st_ctim));
		close(fd);
		lstat("f", &a);
		msleep(30);
		link("f", "f_link");
		lstat("f", &b);
		emit("link_updates_ctime", "ctime_changed=%d mtime_changed=%d", !same_ts(a.st_ctim, b.st_ctim),
		     !same_ts(a.st_mtim, b.st_mtim));
		msleep(30);
		rename("f_link", "f_link2");
		lstat("f", &a);
		emit("rename_updates_ctime", "ctime_changed=%d", !same_ts(a.st_ctim, b.st_ctim));
		setxattr("f", "user.t", "v", 1, 0);
		lstat("f", &b);
		msleep(30);
		setxattr("f", "user.t", "w", 1, 0);
		lstat("f", &a);
		emit("setxattr_updates_ctime", "ctime_changed=%d mtime_changed=%d", !same_ts(a.st_ctim, b.st_ctim),
		     !same_ts(a.st_mtim, b.st_mtim));
	}
	/* new files get current times */
	mkfile("fresh", 0644, "");
	lstat("fresh", &st);
	emit("create_times_recent", "atime=%d mtime=%d ctime=%d", recent(st.st_atim), recent(st.st_mtim), recent(st.st_ctim));
}

/* ------------------------------------------------------------------ mknod */

static void g_mknod(void)
{
	int fd;
	char buf[16];
	res("mknod_fifo", mknod("fifo", S_IFIFO | 0640, 0));
	stat_line("mknod_fifo_stat", "fifo");
	res("mkfifo", mkfifo("fifo2", 0600));
	stat_line("mkfifo_stat", "fifo2");
	fd = open("fifo", O_RDWR | O_NONBLOCK);
	if (fd < 0) {
		emit("fifo_io", "open=%s", en(errno));
	} else {
		struct sb s = {0};
		sbr(&s, "write", write(fd, "pipe", 4));
		ssize_t n = read(fd, buf, sizeof buf);
		sbf(&s, "read=%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
		emit("fifo_io", "%s", s.b);
		close(fd);
	}
	stat_line("fifo_io_stat", "fifo");
	/* a fifo between two processes, opened by name on each side */
	{
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(20);
			int w = open("fifo2", O_WRONLY);
			if (w >= 0 && write(w, "from-child", 10) == 10)
				_exit(0);
			_exit(1);
		}
		int r = open("fifo2", O_RDONLY);
		ssize_t n = r < 0 ? -1 : read(r, buf, sizeof buf);
		int st;
		waitpid(pid, &st, 0);
		emit("fifo_two_processes", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
		close(r);
	}
	res("mknod_socket", mknod("sock", S_IFSOCK | 0644, 0));
	stat_line("mknod_socket_stat", "sock");
	res("mknod_chr", mknod("null", S_IFCHR | 0666, makedev(1, 3)));
	stat_line("mknod_chr_stat", "null");
	fd = open("null", O_WRONLY);
	if (fd < 0)
		emit("mknod_chr_write", "open=%s", en(errno));
	else {
		ssize_t n = write(fd, "discard", 7);
		emit("mknod_chr_write", "%zd", n);
		close(fd);
	}
	stat_line("mknod_chr_write_stat", "null");
	res("mknod_chr_zero", mknod("zero", S_IFCHR | 0444, makedev(1, 5)));
	fd = open("zero", O_RDONLY);
	if (fd < 0)
		emit("mknod_chr_zero_read", "open=%s", en(errno));
	else {
		memset(buf, 'x', sizeof buf);
		ssize_t n = read(fd, buf, 8);
		emit("mknod_chr_zero_read", "n=%zd data=%s", n, n < 0 ? en(errno) : esc(buf, (size_t)n));
		close(fd);
	}
	res("mknod_blk", mknod("blk", S_IFBLK | 0600, makedev(7, 200)));
	stat_line("mknod_blk_stat", "blk");
	res("mknod_chr_large_numbers", mknod("bignum", S_IFCHR | 0600, makedev(300, 70000)));
	stat_line("mknod_chr_large_numbers_stat", "bignum");
	res("mknod_reg", mknod("reg", S_IFREG | 0640, 0));
	stat_line("mknod_reg_stat", "reg");
	res("mknod_default_type", mknod("deftype", 0640, 0));
	stat_line("mknod_default_type_stat", "deftype");
	res("mknod_existing", mknod("fifo", S_IFIFO | 0644, 0));
	res("mknod_dir", mknod("dirnode", S_IFDIR | 0755, 0));
	res("mknod_bad_type", mknod("bad", 0170000 | 0644, 0));
	res("mknod_missing_dir", mknod("nodir/x", S_IFIFO | 0644, 0));
	/* special files keep their type across rename and link */
	res("mknod_rename_chr", rename("null", "null2"));
	stat_line("mknod_rename_chr_stat", "null2");
	res("mknod_link_fifo", link("fifo", "fifo_link"));
	stat_line("mknod_link_fifo_stat", "fifo");
	/* a unix socket bound in the directory */
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		strcpy(sa.sun_path, "bound.sock");
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		res("unix_bind", bind(s, (struct sockaddr *)&sa, sizeof sa));
		stat_line("unix_bind_stat", "bound.sock");
		listen(s, 1);
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		res("unix_connect", connect(c, (struct sockaddr *)&sa, sizeof sa));
		close(c);
		close(s);
		int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
		res("unix_connect_closed", connect(c2, (struct sockaddr *)&sa, sizeof sa));
		close(c2);
		int s3 = socket(AF_UNIX, SOCK_STREAM, 0);
		res("unix_bind_existing", bind(s3, (struct sockaddr *)&sa, sizeof sa));
		close(s3);
	}
}

/* ------------------------------------------------------------------ xattrs */

static void list_line(const char *name, const char *path, int follow)
{
	char buf[8192], *names[256];
	ssize_t n = follow ? listxattr(path, buf, sizeof buf) : llistxattr(path, buf, sizeof buf);
	if (n < 0) {
		emit(name, "%s", en(errno));
		return;
	}
	int k = 0;
	for (char *p = buf; p < buf + n && k < 256; p += strlen(p) + 1)
		names[k++] = p;
	/* sort */
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	struct sb s = {0};
	sbf(&s, "n=%d", k);
	for (int i = 0; i < k && i < 40; i++)
		sbf(&s, "%s", names[i]);
	emit(name, "%s", s.b);
}

static void get_line(const char *name, const char *path, const char *attr)
{
	char buf[70000];
	ssize_t n = getxattr(path, attr, buf, sizeof buf);
	if (n < 0)
		emit(name, "%s", en(errno));
	else
		emit(name, "len=%zd value=%s", n, esc(buf, (size_t)n));
}

static void g_xattr(void)
{
	char buf[256];
	mkfile("f", 0644, "x");
	res("xattr_set", setxattr("f", "user.test", "value", 5, 0));
	get_line("xattr_get", "f", "user.test");
	emit("xattr_get_size_query", "%zd", getxattr("f", "user.test", NULL, 0));
	res("xattr_get_small_buffer", getxattr("f", "user.test", buf, 2));
	res("xattr_get_missing", getxattr("f", "user.missing", buf, sizeof buf));
	res("xattr_create_existing", setxattr("f", "user.test", "other", 5, XATTR_CREATE));
	res("xattr_replace_missing", setxattr("f", "user.nothere", "v", 1, XATTR_REPLACE));
	res("xattr_replace_existing", setxattr("f", "user.test", "replaced", 8, XATTR_REPLACE));
	get_line("xattr_replace_existing_get", "f", "user.test");
	res("xattr_create_new", setxattr("f", "user.second", "2", 1, XATTR_CREATE));
	res("xattr_set_shorter", setxattr("f", "user.test", "v", 1, 0));
	get_line("xattr_set_shorter_get", "f", "user.test");
	res("xattr_binary_value", setxattr("f", "user.bin", "a\0b\377c", 5, 0));
	get_line("xattr_binary_value_get", "f", "user.bin");
	list_line("xattr_list", "f", 1);
	{
		ssize_t sz = listxattr("f", NULL, 0);
		emit("xattr_list_size_query", "%zd", sz);
		res("xattr_list_small_buffer", listxattr("f", buf, 3));
	}
	res("xattr_remove", removexattr("f", "user.second"));
	list_line("xattr_list_after_remove", "f", 1);
	res("xattr_remove_missing", removexattr("f", "user.second"));
	res("xattr_get_removed", getxattr("f", "user.second", buf, sizeof buf));
	/* empty values: on the wire a set of size 0 with XATTR_REPLACE is also what
	 * removexattr() sends; with flags 0 or XATTR_CREATE it is not ambiguous */
	res("xattr_empty_value", setxattr("f", "user.empty", "", 0, 0));
	get_line("xattr_empty_value_get", "f", "user.empty");
	res("xattr_empty_value_create", setxattr("f", "user.empty2", "", 0, XATTR_CREATE));
	get_line("xattr_empty_value_create_get", "f", "user.empty2");
	list_line("xattr_list_with_empty", "f", 1);
	must("setxattr", "f", setxattr("f", "user.empty3", "x", 1, 0));
	res("xattr_empty_value_replace", setxattr("f", "user.empty3", "", 0, XATTR_REPLACE));
	get_line("xattr_empty_value_replace_get", "f", "user.empty3");
	removexattr("f", "user.empty");
	removexattr("f", "user.empty2");
	removexattr("f", "user.empty3");

	/* sizes */
	{
		static char big[70000];
		static char back[70000];
		fill_pattern((unsigned char *)big, sizeof big, 3);
		static const int sizes[] = {255, 1024, 3000, 65536, 65537};
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			char name[64], an[64];
			snprintf(an, sizeof an, "user.big%d", sizes[i]);
			snprintf(name, sizeof name, "xattr_value_%d", sizes[i]);
			int rc = setxattr("f", an, big, (size_t)sizes[i], 0);
			if (rc < 0) {
				emit(name, "%s", en(errno));
				continue;
			}
			ssize_t n = getxattr("f", an, back, sizeof back);
			emit(name, "get=%zd match=%d", n, n == sizes[i] && memcmp(big, back, (size_t)n) == 0);
			removexattr("f", an);
		}
	}
	/* names */
	{
		char an[300];
		memcpy(an, "user.", 5);
		memset(an + 5, 'n', 250);
		an[255] = 0;
		res("xattr_name_255", setxattr("f", an, "v", 1, 0));
		removexattr("f", an);
		memset(an + 5, 'n', 251);
		an[256] = 0;
		res("xattr_name_256", setxattr("f", an, "v", 1, 0));
		res("xattr_name_empty_user", setxattr("f", "user.", "v", 1, 0));
		res("xattr_name_empty", setxattr("f", "", "v", 1, 0));
		res("xattr_unknown_namespace", setxattr("f", "bogus.name", "v", 1, 0));
		res("xattr_unknown_namespace_get", getxattr("f", "bogus.name", buf, sizeof buf));
	}
	/* many attributes */
	{
		mkfile("many", 0644, "");
		int ok = 0;
		for (int i = 0; i < 40; i++) {
			char an[32];
			snprintf(an, sizeof an, "user.attr%02d", i);
			ok += setxattr("many", an, an, strlen(an), 0) == 0;
		}
		emit("xattr_many_set", "%d", ok);
		list_line("xattr_many_list", "many", 1);
	}
	/* other namespaces (root) */
	res("xattr_trusted_set", setxattr("f", "trusted.t", "tv", 2, 0));
	get_line("xattr_trusted_get", "f", "trusted.t");
	res("xattr_security_set", setxattr("f", "security.s", "sv", 2, 0));
	get_line("xattr_security_get", "f", "security.s");
	list_line("xattr_list_namespaces", "f", 1);
	res("xattr_trusted_remove", removexattr("f", "trusted.t"));
	res("xattr_security_remove", removexattr("f", "security.s"));
	/* the daemon's own bookkeeping (mapped-xattr) must stay invisible and untouchable */
	res("xattr_virtfs_get", getxattr("f", "user.virtfs.uid", buf, sizeof buf));

	/* other file types */
	mkd("d", 0755);
	res("xattr_dir_set", setxattr("d", "user.d", "dv", 2, 0));
	get_line("xattr_dir_get", "d", "user.d");
	list_line("xattr_dir_list", "d", 1);
	must("symlink", "l", symlink("f", "l"));
	res("xattr_symlink_user_nofollow", lsetxattr("l", "user.l", "lv", 2, 0));
	res("xattr_symlink_user_follow", setxattr("l", "user.via_link", "tv", 2, 0));
	get_line("xattr_symlink_user_follow_get", "f", "user.via_link");
	res("xattr_symlink_trusted_nofollow", lsetxattr("l", "trusted.l", "lv", 2, 0));
	{
		ssize_t n = lgetxattr("l", "trusted.l", buf, sizeof buf);
		emit("xattr_symlink_trusted_nofollow_get", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	}
	list_line("xattr_symlink_list_nofollow", "l", 0);
	must("mkfifo", "p", mkfifo("p", 0644));
	res("xattr_fifo_user", setxattr("p", "user.p", "pv", 2, 0));
	res("xattr_fifo_trusted", setxattr("p", "trusted.p", "pv", 2, 0));
	{
		ssize_t n = getxattr("p", "trusted.p", buf, sizeof buf);
		emit("xattr_fifo_trusted_get", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	}
	/* through descriptors */
	{
		int fd = open("f", O_RDONLY);
		res("xattr_fsetxattr_rdonly_fd", fsetxattr(fd, "user.fd", "fdv", 3, 0));
		ssize_t n = fgetxattr(fd, "user.fd", buf, sizeof buf);
		emit("xattr_fgetxattr", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
		res("xattr_fremovexattr", fremovexattr(fd, "user.fd"));
		close(fd);
	}
	/* attributes follow the inode through rename and link */
	rename("f", "f2");
	get_line("xattr_after_rename", "f2", "user.test");
	link("f2", "f3");
	get_line("xattr_through_hardlink", "f3", "user.test");
	/* copying a file does not copy attributes; a new file has none */
	mkfile("plain", 0644, "");
	list_line("xattr_new_file_list", "plain", 1);
}

/* ------------------------------------------------------------------ ACLs */

#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP 0x08
#define ACL_MASK 0x10
#define ACL_OTHER 0x20
#define ACL_UNDEF 0xffffffffu

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

static size_t acl_blob(unsigned char *out, const struct acl_entry *e, int n)
{
	uint32_t v = 2; /* POSIX_ACL_XATTR_VERSION, little endian on x86 */
	memcpy(out, &v, 4);
	for (int i = 0; i < n; i++)
		memcpy(out + 4 + 8 * i, &e[i], 8);
	return 4 + 8 * (size_t)n;
}

static const char *acl_text(const unsigned char *b, ssize_t n)
{
	static char out[1024];
	size_t k = 0;
	if (n < 4) {
		snprintf(out, sizeof out, "short(%zd)", n);
		return out;
	}
	uint32_t v;
	memcpy(&v, b, 4);
	k += (size_t)snprintf(out, sizeof out, "v%u", v);
	for (ssize_t i = 4; i + 8 <= n && k < sizeof out - 40; i += 8) {
		struct acl_entry e;
		memcpy(&e, b + i, 8);
		const char *t = e.tag == ACL_USER_OBJ ? "u:" : e.tag == ACL_USER ? "u:" : e.tag == ACL_GROUP_OBJ ? "g:"
			: e.tag == ACL_GROUP ? "g:" : e.tag == ACL_MASK ? "m:" : e.tag == ACL_OTHER ? "o:" : "?:";
		char id[16] = "";
		if (e.tag == ACL_USER || e.tag == ACL_GROUP)
			snprintf(id, sizeof id, "%u", e.id);
		k += (size_t)snprintf(out + k, sizeof out - k, ",%s%s:%c%c%c", t, id, e.perm & 4 ? 'r' : '-',
				      e.perm & 2 ? 'w' : '-', e.perm & 1 ? 'x' : '-');
	}
	return out;
}

static void acl_line(const char *name, const char *path, const char *which)
{
	unsigned char buf[1024];
	ssize_t n = getxattr(path, which, buf, sizeof buf);
	if (n < 0)
		emit(name, "%s", en(errno));
	else
		emit(name, "%s", acl_text(buf, n));
}

static void g_acl(void)
{
	unsigned char blob[256];
	size_t n;
	struct stat st;
	mkfile("f", 0644, "acl");
	struct acl_entry a1[] = {
		{ACL_USER_OBJ, 6, ACL_UNDEF}, {ACL_USER, 4, 1234}, {ACL_GROUP_OBJ, 4, ACL_UNDEF},
		{ACL_GROUP, 6, 5678},         {ACL_MASK, 6, ACL_UNDEF}, {ACL_OTHER, 0, ACL_UNDEF},
	};
	n = acl_blob(blob, a1, 6);
	res("acl_set_access", setxattr("f", "system.posix_acl_access", blob, n, 0));
	acl_line("acl_get_access", "f", "system.posix_acl_access");
	stat_line("acl_set_access_stat", "f");
	emit("acl_get_access_size", "%zd", getxattr("f", "system.posix_acl_access", NULL, 0));
	list_line("acl_list", "f", 1);
	/* chmod rewrites the mask entry */
	res("acl_chmod", chmod("f", 0600));
	acl_line("acl_chmod_get", "f", "system.posix_acl_access");
	stat_line("acl_chmod_stat", "f");
	/* an ACL equivalent to a mode is folded into the mode */
	struct acl_entry a2[] = {{ACL_USER_OBJ, 7, ACL_UNDEF}, {ACL_GROUP_OBJ, 5, ACL_UNDEF}, {ACL_OTHER, 1, ACL_UNDEF}};
	mkfile("g", 0600, "");
	n = acl_blob(blob, a2, 3);
	res("acl_set_minimal", setxattr("g", "system.posix_acl_access", blob, n, 0));
	stat_line("acl_set_minimal_stat", "g");
	acl_line("acl_set_minimal_get", "g", "system.posix_acl_access");
	/* invalid ACLs */
	struct acl_entry bad1[] = {{ACL_USER_OBJ, 6, ACL_UNDEF}, {ACL_USER, 4, 1}, {ACL_GROUP_OBJ, 4, ACL_UNDEF},
				   {ACL_OTHER, 0, ACL_UNDEF}}; /* named entry without a mask */
	n = acl_blob(blob, bad1, 4);
	res("acl_invalid_no_mask", setxattr("g", "system.posix_acl_access", blob, n, 0));
	n = acl_blob(blob, a1, 6);
	blob[0] = 9; /* version */
	res("acl_invalid_version", setxattr("g", "system.posix_acl_access", blob, n, 0));
	res("acl_invalid_size", setxattr("g", "system.posix_acl_access", blob, 7, 0));
	/* removal */
	res("acl_remove", removexattr("f", "system.posix_acl_access"));
	acl_line("acl_remove_get", "f", "system.posix_acl_access");
	stat_line("acl_remove_stat", "f");
	res("acl_remove_missing", removexattr("f", "system.posix_acl_access"));
	res("acl_get_missing", getxattr("g", "system.posix_acl_access", blob, sizeof blob));
	/* default ACLs are inherited */
	mkd("d", 0755);
	struct acl_entry def[] = {
		{ACL_USER_OBJ, 7, ACL_UNDEF}, {ACL_USER, 5, 1000}, {ACL_GROUP_OBJ, 5, ACL_UNDEF},
		{ACL_MASK, 7, ACL_UNDEF},     {ACL_OTHER, 0, ACL_UNDEF},
	};
	n = acl_blob(blob, def, 5);
	res("acl_set_default", setxattr("d", "system.posix_acl_default", blob, n, 0));
	acl_line("acl_get_default", "d", "system.posix_acl_default");
	res("acl_default_on_file", setxattr("f", "system.posix_acl_default", blob, n, 0));
	res_fd("acl_inherit_file", open("d/file", O_CREAT | O_WRONLY, 0666));
	stat_line("acl_inherit_file_stat", "d/file");
	acl_line("acl_inherit_file_access", "d/file", "system.posix_acl_access");
	acl_line("acl_inherit_file_default", "d/file", "system.posix_acl_default");
	if (!skipping("acl_inherit_dir")) {
		res("acl_inherit_dir", mkdir("d/sub", 0750));
		stat_line("acl_inherit_dir_stat", "d/sub");
		acl_line("acl_inherit_dir_access", "d/sub", "system.posix_acl_access");
		acl_line("acl_inherit_dir_default", "d/sub", "system.posix_acl_default");
	}
	res("acl_inherit_fifo", mknod("d/fifo", S_IFIFO | 0666, 0));
	stat_line("acl_inherit_fifo_stat", "d/fifo");
	res("acl_inherit_symlink", symlink("x", "d/sym"));
	stat_line("acl_inherit_symlink_stat", "d/sym");
	res("acl_remove_default", removexattr("d", "system.posix_acl_default"));
	res_fd("acl_after_remove_default", open("d/file2", O_CREAT | O_WRONLY, 0666));
	stat_line("acl_after_remove_default_stat", "d/file2");
	acl_line("acl_after_remove_default_access", "d/file2", "system.posix_acl_access");
	/* ACL through a symlink and a descriptor */
	must("symlink", "lf", symlink("g", "lf"));
	n = acl_blob(blob, a1, 6);
	res("acl_set_through_symlink", setxattr("lf", "system.posix_acl_access", blob, n, 0));
	acl_line("acl_set_through_symlink_get", "g", "system.posix_acl_access");
	lstat("g", &st);
	emit("acl_set_through_symlink_mode", "mode=%04o", st.st_mode & 07777);
}

/* ------------------------------------------------------------------ locks */

struct lockreq {
	const char *path;
	int oflags, cmd;
	short type;
	off_t start, len;
};

static void lock_child(void *arg, struct sb *out)
{
	struct lockreq *r = arg;
	int fd = open(r->path, r->oflags);
	if (fd < 0) {
		sbf(out, "open=%s", en(errno));
		return;
	}
	struct flock fl = {.l_type = r->type, .l_whence = SEEK_SET, .l_start = r->start, .l_len = r->len};
	if (fcntl(fd, r->cmd, &fl) < 0) {
		sbf(out, "%s", en(errno));
		return;
	}
	if (r->cmd == F_GETLK) {
		const char *t = fl.l_type == F_RDLCK ? "F_RDLCK" : fl.l_type == F_WRLCK ? "F_WRLCK" : fl.l_type == F_UNLCK ? "F_UNLCK" : "?";
		if (fl.l_type == F_UNLCK)
			sbf(out, "type=%s", t);
		else
			sbf(out, "type=%s start=%lld len=%lld pid=%s", t, (long long)fl.l_start, (long long)fl.l_len,
			    fl.l_pid == getppid() ? "holder" : fl.l_pid == -getppid() ? "-holder" : "other");
	} else {
		sbf(out, "ok");
	}
	close(fd);
}

static void child_lock(const char *name, const char *path, int cmd, short type, off_t start, off_t len)
{
	char out[512];
	struct lockreq r = {path, O_RDWR, cmd, type, start, len};
	in_child(lock_child, &r, out, sizeof out);
	emit(name, "%s", out);
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, cmd, &fl);
}

struct flockreq {
	const char *path;
	int op;
	int fcntl_instead;
};

static void flock_child(void *arg, struct sb *out)
{
	struct flockreq *r = arg;
	int fd = open(r->path, O_RDWR);
	if (fd < 0) {
		sbf(out, "open=%s", en(errno));
		return;
	}
	if (r->fcntl_instead)
		sbr(out, "fcntl", setlk(fd, F_SETLK, F_WRLCK, 0, 10));
	else
		sbr(out, "flock", flock(fd, r->op));
	close(fd);
}

static void child_flock(const char *name, const char *path, int op, int fcntl_instead)
{
	char out[512];
	struct flockreq r = {path, op, fcntl_instead};
	in_child(flock_child, &r, out, sizeof out);
	emit(name, "%s", out);
}

static void g_lock(void)
{
	mkfile("f", 0644, "0123456789");
	int fd = open("f", O_RDWR);
	res("lock_wr", setlk(fd, F_SETLK, F_WRLCK, 0, 100));
	child_lock("lock_conflict_wr", "f", F_SETLK, F_WRLCK, 50, 10);
	child_lock("lock_conflict_rd", "f", F_SETLK, F_RDLCK, 50, 10);
	child_lock("lock_no_overlap", "f", F_SETLK, F_WRLCK, 200, 10);
	child_lock("lock_getlk_conflict", "f", F_GETLK, F_WRLCK, 50, 10);
	child_lock("lock_getlk_free", "f", F_GETLK, F_WRLCK, 200, 10);
	child_lock("lock_getlk_rd_vs_wr", "f", F_GETLK, F_RDLCK, 99, 1);
	{
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
		res("lock_getlk_own", fcntl(fd, F_GETLK, &fl));
		emit("lock_getlk_own_result", "type=%s", fl.l_type == F_UNLCK ? "F_UNLCK" : "locked");
	}
	/* split the lock */
	res("lock_unlock_middle", setlk(fd, F_SETLK, F_UNLCK, 40, 20));
	child_lock("lock_split_hole", "f", F_SETLK, F_WRLCK, 45, 10);
	child_lock("lock_split_left", "f", F_SETLK, F_WRLCK, 30, 5);
	child_lock("lock_split_right", "f", F_SETLK, F_WRLCK, 70, 5);
	child_lock("lock_split_getlk_right", "f", F_GETLK, F_WRLCK, 55, 20);
	/* downgrade to a read lock over the whole file */
	res("lock_rd_whole", setlk(fd, F_SETLK, F_RDLCK, 0, 0));
	child_lock("lock_shared_rd", "f", F_SETLK, F_RDLCK, 10, 10);
	child_lock("lock_shared_wr_conflict", "f", F_SETLK, F_WRLCK, 1000000, 10);
	child_lock("lock_getlk_whole", "f", F_GETLK, F_WRLCK, 1000, 10);
	/* beyond EOF and relative to the end */
	res("lock_unlock_all", setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	{
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = 0, .l_len = 5};
		res("lock_seek_end", fcntl(fd, F_SETLK, &fl));
		child_lock("lock_seek_end_conflict", "f", F_SETLK, F_WRLCK, 12, 1);
		child_lock("lock_seek_end_before", "f", F_SETLK, F_WRLCK, 9, 1);
		child_lock("lock_seek_end_getlk", "f", F_GETLK, F_WRLCK, 0, 0);
		setlk(fd, F_SETLK, F_UNLCK, 0, 0);
	}
	res("lock_negative_len", setlk(fd, F_SETLK, F_WRLCK, 100, -50));
	child_lock("lock_negative_len_getlk", "f", F_GETLK, F_WRLCK, 0, 0);
	setlk(fd, F_SETLK, F_UNLCK, 0, 0);
	res("lock_bad_range", setlk(fd, F_SETLK, F_WRLCK, 10, -50));
	/* closing any descriptor of the file releases the process's locks */
	res("lock_before_close", setlk(fd, F_SETLK, F_WRLCK, 0, 10));
	child_lock("lock_before_close_conflict", "f", F_SETLK, F_WRLCK, 0, 10);
	close(open("f", O_RDONLY));
	child_lock("lock_released_by_other_close", "f", F_SETLK, F_WRLCK, 0, 10);
	/* a child's locks go away when it exits */
	child_lock("lock_child_exit_takes", "f", F_SETLK, F_WRLCK, 0, 0);
	res("lock_after_child_exit", setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	setlk(fd, F_SETLK, F_UNLCK, 0, 0);
	/* lock type vs open mode */
	{
		int ro = open("f", O_RDONLY), wo = open("f", O_WRONLY);
		res("lock_wr_on_rdonly_fd", setlk(ro, F_SETLK, F_WRLCK, 0, 1));
		res("lock_rd_on_wronly_fd", setlk(wo, F_SETLK, F_RDLCK, 0, 1));
		res("lock_rd_on_rdonly_fd", setlk(ro, F_SETLK, F_RDLCK, 0, 1));
		close(ro);
		close(wo);
	}
	close(fd);

	/* F_SETLKW waits for the holder, and gets the lock soon after its release
	 * ("stalled": it took more than 10 s) */
	{
		fd = open("f", O_RDWR);
		setlk(fd, F_SETLK, F_WRLCK, 0, 10);
		int ready[2], result[2];
		if (pipe(ready) < 0 || pipe(result) < 0)
			setup_fail("pipe", "setlkw");
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(60);
			close(ready[0]);
			close(result[0]);
			int cfd = open("f", O_RDWR);
			char c = 'r', msg[64];
			if (write(ready[1], &c, 1) < 0)
				_exit(1);
			double t0 = now_s();
			int rc = setlk(cfd, F_SETLKW, F_WRLCK, 0, 10);
			int e = errno;
			double dt = now_s() - t0;
			int k = snprintf(msg, sizeof msg, "%s waited=%d%s", rc < 0 ? en(e) : "ok", dt > 0.1,
					 dt > 10 ? " stalled" : "");
			if (write(result[1], msg, (size_t)k) < 0)
				_exit(1);
			_exit(0);
		}
		close(ready[1]);
		close(result[1]);
		char c, msg[64] = "";
		if (read(ready[0], &c, 1) != 1)
			setup_fail("read", "ready");
		msleep(600);
		setlk(fd, F_SETLK, F_UNLCK, 0, 10);
		ssize_t k = read(result[0], msg, sizeof msg - 1);
		msg[k > 0 ? k : 0] = 0;
		int st;
		waitpid(pid, &st, 0);
		if (WIFSIGNALED(st))
			snprintf(msg, sizeof msg, "child-died:%s", sigabbrev_np(WTERMSIG(st)));
		emit("lock_setlkw_waits_for_release", "%s", msg);
		close(fd);
		close(ready[0]);
		close(result[0]);
	}

	/* deadlock detection */
	{
		fd = open("f", O_RDWR);
		setlk(fd, F_SETLK, F_WRLCK, 0, 10);
		int ready[2];
		if (pipe(ready) < 0)
			setup_fail("pipe", "deadlock");
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(60);
			close(ready[0]);
			int cfd = open("f", O_RDWR);
			char c = 'r';
			setlk(cfd, F_SETLK, F_WRLCK, 20, 10);
			if (write(ready[1], &c, 1) < 0)
				_exit(1);
			double t0 = now_s();
			int rc = setlk(cfd, F_SETLKW, F_WRLCK, 0, 10); /* until the parent lets go */
			_exit(rc < 0 ? 2 : now_s() - t0 > 10 ? 3 : 0);
		}
		close(ready[1]);
		char c;
		if (read(ready[0], &c, 1) != 1)
			setup_fail("read", "ready");
		msleep(500); /* the child is now waiting for our lock */
		res("lock_deadlock_detected", setlk(fd, F_SETLKW, F_WRLCK, 20, 10));
		close(fd); /* releases our lock: the child gets it */
		int st;
		waitpid(pid, &st, 0);
		emit("lock_deadlock_child", "%s", WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st))
			: WEXITSTATUS(st) == 0 ? "got-lock" : WEXITSTATUS(st) == 3 ? "got-lock stalled" : "failed");
		close(ready[0]);
	}

	/* flock */
	mkfile("fl", 0644, "");
	fd = open("fl", O_RDWR);
	res("flock_ex", flock(fd, LOCK_EX | LOCK_NB));
	child_flock("flock_ex_conflict", "fl", LOCK_EX | LOCK_NB, 0);
	child_flock("flock_sh_conflict", "fl", LOCK_SH | LOCK_NB, 0);
	child_flock("flock_vs_fcntl", "fl", 0, 1);
	{
		int fd2 = open("fl", O_RDWR);
		res("flock_same_process_other_fd", flock(fd2, LOCK_EX | LOCK_NB));
		close(fd2);
	}
	res("flock_downgrade", flock(fd, LOCK_SH | LOCK_NB));
	child_flock("flock_shared", "fl", LOCK_SH | LOCK_NB, 0);
	child_flock("flock_shared_ex_conflict", "fl", LOCK_EX | LOCK_NB, 0);
	res("flock_unlock", flock(fd, LOCK_UN));
	child_flock("flock_after_unlock", "fl", LOCK_EX | LOCK_NB, 0);
	res("flock_relock", flock(fd, LOCK_EX | LOCK_NB));
	close(fd);
	child_flock("flock_released_on_close", "fl", LOCK_EX | LOCK_NB, 0);
	/* a dup shares the open file description and its flock */
	fd = open("fl", O_RDWR);
	{
		int d = dup(fd);
		flock(fd, LOCK_EX);
		close(fd);
		child_flock("flock_held_by_dup", "fl", LOCK_EX | LOCK_NB, 0);
		close(d);
		child_flock("flock_released_with_last_dup", "fl", LOCK_EX | LOCK_NB, 0);
	}
	/* fcntl lock held, flock from another process */
	fd = open("fl", O_RDWR);
	setlk(fd, F_SETLK, F_WRLCK, 0, 0);
	child_flock("fcntl_vs_flock", "fl", LOCK_EX | LOCK_NB, 0);
	close(fd);
}

/* ------------------------------------------------------------------ mmap */

static void g_mmap(void)
{
	char buf[64];
	ssize_t n;
	{
		char page[4096];
		memset(page, 'a', sizeof page);
		int fd = open("m", O_CREAT | O_RDWR | O_TRUNC, 0644);
		must("write", "m", (int)write(fd, page, sizeof page));
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			/* the checks below need the mapping: they are left out */
			emit("mmap_shared_write", "%s", en(errno));
		} else {
			emit("mmap_shared_write", "ok");
			memcpy(p, "MMAP", 4);
			n = pread(fd, buf, 8, 0);
			emit("mmap_shared_write_then_read", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
			res("mmap_msync", msync(p, 4096, MS_SYNC));
			n = pread(fd, buf, 8, 0);
			emit("mmap_shared_msync_then_read", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
			/* write(2) is visible through the mapping */
			must("pwrite", "m", (int)pwrite(fd, "WRIT", 4, 100));
			emit("mmap_shared_sees_write", "%s", esc(p + 100, 4));
			memcpy(p + 200, "LAST", 4);
			munmap(p, 4096);
			close(fd);
			fd = -1;
			char b2[8];
			int f2 = open("m", O_RDONLY);
			n = pread(f2, b2, 4, 200);
			emit("mmap_shared_after_munmap_close", "%s", n < 0 ? en(errno) : esc(b2, (size_t)n));
			close(f2);
		}
		if (fd >= 0)
			close(fd);
	}
	/* a read-only shared mapping (of a read-only descriptor) follows write(2)
	 * through another descriptor */
	{
		mkfile("ro", 0644, "0123456789");
		int fd = open("ro", O_RDONLY), wfd = open("ro", O_WRONLY);
		char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			emit("mmap_readonly_sees_write", "%s", en(errno));
		} else {
			char before = p[0];
			must("pwrite", "ro", (int)pwrite(wfd, "AB", 2, 4));
			emit("mmap_readonly_sees_write", "before=%c after=%s", before, esc(p, 10));
			munmap(p, 4096);
		}
		close(fd);
		close(wfd);
	}
	/* read-only shared mapping of data written with write(2) */
	{
		mkfile("r", 0644, "read-only mapping");
		int fd = open("r", O_RDONLY);
		char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			emit("mmap_shared_readonly", "%s", en(errno));
		else {
			emit("mmap_shared_readonly", "%s", esc(p, 17));
			munmap(p, 4096);
		}
		close(fd);
	}
	/* private mappings never reach the file */
	{
		mkfile("pv", 0644, "private");
		int fd = open("pv", O_RDWR);
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			emit("mmap_private_write", "%s", en(errno));
		else {
			memcpy(p, "CHANGED", 7);
			emit("mmap_private_write", "mapping=%s", esc(p, 7));
			munmap(p, 4096);
		}
		close(fd);
		emit("mmap_private_write_file", "%s", content("pv"));
	}
	/* a mapping on a file grown with ftruncate */
	{
		int fd = open("grow", O_CREAT | O_RDWR | O_TRUNC, 0644);
		must("ftruncate", "grow", ftruncate(fd, 8192));
		char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			emit("mmap_grown_file", "%s", en(errno));
		else {
			memcpy(p + 5000, "GROWN", 5);
			msync(p, 8192, MS_SYNC);
			munmap(p, 8192);
			n = pread(fd, buf, 5, 5000);
			emit("mmap_grown_file", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
		}
		close(fd);
		stat_line("mmap_grown_file_stat", "grow");
	}
	/* mapping a write-only descriptor */
	{
		int fd = open("r", O_WRONLY);
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		emit("mmap_wronly_fd", "%s", p == MAP_FAILED ? en(errno) : "ok");
		if (p != MAP_FAILED)
			munmap(p, 4096);
		close(fd);
	}
	/* a shared writable mapping of a read-only descriptor */
	{
		int fd = open("r", O_RDONLY);
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		emit("mmap_shared_write_rdonly_fd", "%s", p == MAP_FAILED ? en(errno) : "ok");
		if (p != MAP_FAILED)
			munmap(p, 4096);
		close(fd);
	}
}

/* ------------------------------------------------------------------ use after unlink */

static void g_unlinked(void)
{
	char buf[64];
	ssize_t n;
	struct sb s = {0};
	mkfile("f", 0644, "data");
	int fd = open("f", O_RDWR);
	res("unlinked_unlink", unlink("f"));
	fstat_line("unlinked_fstat", fd);
	n = pread(fd, buf, sizeof buf, 0);
	emit("unlinked_read", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	res("unlinked_write", pwrite(fd, "more", 4, 4));
	n = pread(fd, buf, sizeof buf, 0);
	emit("unlinked_read_after_write", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	res("unlinked_ftruncate", ftruncate(fd, 2));
	fstat_line("unlinked_ftruncate_fstat", fd);
	res("unlinked_ftruncate_grow", ftruncate(fd, 10));
	n = pread(fd, buf, sizeof buf, 0);
	emit("unlinked_ftruncate_grow_read", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	res("unlinked_fchmod", fchmod(fd, 0600));
	res("unlinked_fchown", fchown(fd, 1111, 2222));
	fstat_line("unlinked_fchmod_fchown_fstat", fd);
	{
		struct timespec ts[2] = {{1000000001, 0}, {1000000002, 0}};
		res("unlinked_futimens", futimens(fd, ts));
		struct stat st;
		fstat(fd, &st);
		emit("unlinked_futimens_fstat", "atime=%s mtime=%s", tsfmt(st.st_atim), tsfmt(st.st_mtim));
	}
	res("unlinked_fsetxattr", fsetxattr(fd, "user.u", "uv", 2, 0));
	n = fgetxattr(fd, "user.u", buf, sizeof buf);
	emit("unlinked_fgetxattr", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	res("unlinked_fsync", fsync(fd));
	{
		struct statfs sf;
		res("unlinked_fstatfs", fstatfs(fd, &sf));
	}
	res("unlinked_lock", setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	/* a new file under the old name is a different file */
	mkfile("f", 0644, "new file");
	n = pread(fd, buf, sizeof buf, 0);
	emit("unlinked_old_fd_after_recreate", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	emit("unlinked_new_file_content", "%s", content("f"));
	close(fd);

	/* replaced by rename */
	mkfile("victim", 0644, "victim data");
	mkfile("winner", 0644, "winner data");
	fd = open("victim", O_RDWR);
	res("replaced_rename", rename("winner", "victim"));
	n = pread(fd, buf, sizeof buf, 0);
	emit("replaced_old_fd_read", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	fstat_line("replaced_old_fd_fstat", fd);
	res("replaced_old_fd_write", pwrite(fd, "V", 1, 0));
	emit("replaced_path_content", "%s", content("victim"));
	close(fd);

	/* a read-only descriptor and a write-only one, unlinked */
	mkfile("g", 0644, "gg");
	int r = open("g", O_RDONLY), w = open("g", O_WRONLY);
	unlink("g");
	sbr(&s, "write", write(w, "WW", 2));
	n = pread(r, buf, sizeof buf, 0);
	sbf(&s, "read=%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
	emit("unlinked_two_fds", "%s", s.b);
	close(r);
	close(w);

	/* a file created, unlinked, then written a lot */
	fd = open("h", O_CREAT | O_RDWR, 0644);
	unlink("h");
	{
		static char big[1 << 20];
		memset(big, 'u', sizeof big);
		ssize_t wn = write(fd, big, sizeof big);
		struct stat st;
		fstat(fd, &st);
		emit("unlinked_large_write", "write=%zd size=%lld", wn, (long long)st.st_size);
	}
	close(fd);

	/* directories */
	mkd("d", 0755);
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	res("unlinked_dir_rmdir", rmdir("d"));
	fstat_line("unlinked_dir_fstat", dfd);
	res_fd("unlinked_dir_openat_create", openat(dfd, "x", O_CREAT | O_WRONLY, 0644));
	{
		char dbuf[4096];
		long k = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf);
		res("unlinked_dir_getdents", k);
	}
	close(dfd);
	/* opendir, rmdir, then read */
	mkd("e", 0755);
	DIR *dir = opendir("e");
	rmdir("e");
	errno = 0;
	struct dirent *de = dir ? readdir(dir) : NULL;
	emit("unlinked_dir_readdir", "%s", de ? "entry" : errno ? en(errno) : "end");
	if (dir)
		closedir(dir);
}

/* ------------------------------------------------------------------ readdir */

#define NFILES 500

/* Reads a directory of files named f000..f(N-1) (plus maybe others). */
struct scan {
	int seen[2000];
	int dot, dotdot, other, dup;
};

static int name_index(const char *n, char prefix)
{
	if (n[0] != prefix || strlen(n) != 4)
		return -1;
	return atoi(n + 1);
}

static void populate(const char *dir, int count, char prefix)
{
	char p[64];
	mkd(dir, 0755);
	for (int i = 0; i < count; i++) {
		snprintf(p, sizeof p, "%s/%c%03d", dir, prefix, i);
		int fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			setup_fail("create", p);
			return;
		}
		close(fd);
	}
}

static void g_readdir(void)
{
	DIR *d;
	struct dirent *e;
	{
		struct scan sc = {0};
		populate("d500", NFILES, 'f');
		d = opendir("d500");
		while (d && (e = readdir(d))) {
			int i = name_index(e->d_name, 'f');
			if (!strcmp(e->d_name, "."))
				sc.dot++;
			else if (!strcmp(e->d_name, ".."))
				sc.dotdot++;
			else if (i >= 0 && i < NFILES)
				sc.seen[i]++;
			else
				sc.other++;
		}
		if (d)
			closedir(d);
		int once = 0, dup = 0, missing = 0;
		for (int i = 0; i < NFILES; i++)
			once += sc.seen[i] == 1, dup += sc.seen[i] > 1, missing += sc.seen[i] == 0;
		emit("readdir_500", "once=%d dups=%d missing=%d dot=%d dotdot=%d other=%d", once, dup, missing, sc.dot,
		     sc.dotdot, sc.other);
	}
	/* remove each entry as it is read (rm -r) */
	{
		int seen[NFILES] = {0}, dup = 0, errs = 0;
		d = opendir("d500");
		while (d && (e = readdir(d))) {
			int i = name_index(e->d_name, 'f');
			if (i < 0)
				continue;
			if (seen[i]++)
				dup++;
			char p[64];
			snprintf(p, sizeof p, "d500/%s", e->d_name);
			errs += unlink(p) < 0;
		}
		int once = 0, remaining = 0;
		for (int i = 0; i < NFILES; i++)
			once += seen[i] == 1;
		rewinddir(d);
		while (d && (e = readdir(d)))
			remaining += e->d_name[0] != '.';
		if (d)
			closedir(d);
		emit("readdir_unlink_each", "once=%d dups=%d unlink_errors=%d remaining=%d", once, dup, errs, remaining);
		res("readdir_unlink_each_rmdir", rmdir("d500"));
	}
	/* remove other entries while reading: entries present throughout are seen exactly once */
	{
		int seen[NFILES] = {0}, dup = 0;
		populate("dr", NFILES, 'f');
		d = opendir("dr");
		while (d && (e = readdir(d))) {
			int i = name_index(e->d_name, 'f');
			if (i < 0)
				continue;
			if (seen[i]++)
				dup++;
			if (i % 2 == 0 && i + 1 < NFILES) { /* odd files go away */
				char p[64];
				snprintf(p, sizeof p, "dr/f%03d", i + 1);
				unlink(p);
			}
		}
		if (d)
			closedir(d);
		int kept_once = 0;
		for (int i = 0; i < NFILES; i += 2)
			kept_once += seen[i] == 1;
		emit("readdir_unlink_others", "kept_seen_once=%d/%d dups=%d", kept_once, NFILES / 2, dup);
	}
	/* add entries while reading */
	{
		int seen[300] = {0}, dup = 0, added_seen = 0;
		populate("da", 300, 'f');
		d = opendir("da");
		while (d && (e = readdir(d))) {
			int i = name_index(e->d_name, 'f');
			if (i >= 0 && i < 300) {
				if (seen[i]++)
					dup++;
				char p[64];
				snprintf(p, sizeof p, "da/n%03d", i);
				close(open(p, O_CREAT | O_WRONLY, 0644));
			} else if (e->d_name[0] == 'n') {
				added_seen++;
			}
		}
		if (d)
			closedir(d);
		int once = 0;
		for (int i = 0; i < 300; i++)
			once += seen[i] == 1;
		emit("readdir_add_while_reading", "orig_seen_once=%d/300 dups=%d", once, dup);
		/* afterwards every entry is listed */
		int total = 0;
		d = opendir("da");
		while (d && (e = readdir(d)))
			total += e->d_name[0] != '.';
		if (d)
			closedir(d);
		emit("readdir_add_while_reading_after", "total=%d", total);
	}
	/* d_type */
	{
		mkd("dt", 0755);
		mkfile("dt/reg", 0644, "");
		mkd("dt/dir", 0755);
		must("symlink", "dt/lnk", symlink("reg", "dt/lnk"));
		must("mkfifo", "dt/fifo", mkfifo("dt/fifo", 0644));
		must("mknod", "dt/sock", mknod("dt/sock", S_IFSOCK | 0644, 0));
		must("mknod", "dt/chr", mknod("dt/chr", S_IFCHR | 0644, makedev(1, 3)));
		must("mknod", "dt/blk", mknod("dt/blk", S_IFBLK | 0644, makedev(7, 201)));
		const char *names[] = {"blk", "chr", "dir", "fifo", "lnk", "reg", "sock"};
		char types[7][12] = {{0}};
		d = opendir("dt");
		while (d && (e = readdir(d)))
			for (int i = 0; i < 7; i++)
				if (!strcmp(e->d_name, names[i])) {
					const char *t = e->d_type == DT_REG ? "reg" : e->d_type == DT_DIR ? "dir" : e->d_type == DT_LNK ? "lnk"
						: e->d_type == DT_FIFO ? "fifo" : e->d_type == DT_SOCK ? "sock" : e->d_type == DT_CHR ? "chr"
						: e->d_type == DT_BLK ? "blk" : "unknown";
					snprintf(types[i], sizeof types[i], "%s", t);
				}
		if (d)
			closedir(d);
		struct sb s = {0};
		for (int i = 0; i < 7; i++)
			sbf(&s, "%s=%s", names[i], types[i][0] ? types[i] : "missing");
		emit("readdir_d_type", "%s", s.b);
	}
	/* telldir / seekdir */
	{
		populate("ds", 100, 'f');
		d = opendir("ds");
		for (int i = 0; i < 10 && d; i++)
			readdir(d);
		long pos = d ? telldir(d) : -1;
		char first[5][16], again[5][16];
		for (int i = 0; i < 5; i++) {
			e = d ? readdir(d) : NULL;
			snprintf(first[i], 16, "%.15s", e ? e->d_name : "-");
		}
		if (d)
			seekdir(d, pos);
		for (int i = 0; i < 5; i++) {
			e = d ? readdir(d) : NULL;
			snprintf(again[i], 16, "%.15s", e ? e->d_name : "-");
		}
		int same = 1;
		for (int i = 0; i < 5; i++)
			same &= !strcmp(first[i], again[i]) && first[i][0] != '-';
		emit("readdir_seekdir", "same=%d", same);
		/* reopening and seeking to a saved offset */
		if (d) {
			rewinddir(d);
			int total = 0;
			while ((e = readdir(d)))
				total++;
			emit("readdir_rewind_total", "%d", total);
			closedir(d);
		}
	}
	/* raw getdents64 with a small buffer, resuming many times */
	{
		int fd = open("ds", O_RDONLY | O_DIRECTORY);
		char buf[200];
		int total = 0, calls = 0, seen[100] = {0}, dup = 0;
		long k;
		while ((k = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
			calls++;
			for (long off = 0; off < k;) {
				/* linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name */
				unsigned short reclen;
				memcpy(&reclen, buf + off + 16, 2);
				int i = name_index(buf + off + 19, 'f');
				if (i >= 0 && i < 100 && seen[i]++)
					dup++;
				total++;
				off += reclen;
			}
		}
		emit("readdir_small_buffer", "total=%d dups=%d last=%s many_calls=%d", total, dup, k < 0 ? en(errno) : "end",
		     calls > 10);
		/* lseek back to 0 and read again */
		lseek(fd, 0, SEEK_SET);
		int again = 0;
		while ((k = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
			for (long off = 0; off < k; again++) {
				unsigned short reclen;
				memcpy(&reclen, buf + off + 16, 2);
				off += reclen;
			}
		emit("readdir_lseek_zero", "total=%d", again);
		close(fd);
	}
	/* an empty directory, rewind sees new entries */
	{
		mkd("empty", 0755);
		d = opendir("empty");
		struct sb s = {0};
		int n = 0;
		char *names[4];
		char store[4][16];
		while (d && (e = readdir(d)) && n < 4) {
			snprintf(store[n], 16, "%.15s", e->d_name);
			names[n] = store[n];
			n++;
		}
		if (n == 2 && strcmp(names[0], names[1]) > 0) {
			char *t = names[0];
			names[0] = names[1];
			names[1] = t;
		}
		for (int i = 0; i < n; i++)
			sbf(&s, "%s", names[i]);
		emit("readdir_empty", "%s", s.b);
		mkfile("empty/new", 0644, "");
		rewinddir(d);
		int found = 0;
		while (d && (e = readdir(d)))
			found += !strcmp(e->d_name, "new");
		emit("readdir_rewind_sees_new", "%d", found);
		if (d)
			closedir(d);
	}
	/* long names */
	{
		mkd("dl", 0755);
		char name[300];
		for (int i = 0; i < 60; i++) {
			memset(name, 'a' + (i % 26), 255);
			snprintf(name + 250, 6, "%05d", i);
			char p[320];
			snprintf(p, sizeof p, "dl/%s", name);
			close(open(p, O_CREAT | O_WRONLY, 0644));
		}
		int total = 0, len255 = 0;
		d = opendir("dl");
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			total++;
			len255 += strlen(e->d_name) == 255;
		}
		if (d)
			closedir(d);
		emit("readdir_long_names", "total=%d len255=%d", total, len255);
	}
	/* non-directories */
	mkfile("file", 0644, "");
	errno = 0;
	d = opendir("file");
	emit("opendir_file", "%s", d ? "ok" : en(errno));
	if (d)
		closedir(d);
	{
		int fd = open("file", O_RDONLY);
		char buf[512];
		res("getdents_on_file", syscall(SYS_getdents64, fd, buf, sizeof buf));
		close(fd);
	}
}

/* ------------------------------------------------------------------ fsync, statfs, misc */

static void g_misc(void)
{
	mkfile("f", 0644, "sync me");
	int fd = open("f", O_RDWR);
	res("fsync_file", fsync(fd));
	res("fdatasync_file", fdatasync(fd));
	res("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
	res("syncfs", syncfs(fd));
	close(fd);
	fd = open("f", O_RDONLY);
	res("fsync_rdonly_fd", fsync(fd));
	close(fd);
	mkd("d", 0755);
	fd = open("d", O_RDONLY | O_DIRECTORY);
	res("fsync_dir", fsync(fd));
	res("fdatasync_dir", fdatasync(fd));
	close(fd);
	fd = open("f", O_PATH);
	res("fsync_path_fd", fsync(fd));
	close(fd);

	{
		struct statfs a, b;
		res("statfs", statfs(".", &a));
		emit("statfs_namelen", "%ld", (long)a.f_namelen);
		emit("statfs_sizes_nonzero", "bsize=%d frsize=%d blocks=%d files=%d", a.f_bsize > 0, a.f_frsize > 0,
		     a.f_blocks > 0, a.f_files > 0);
		emit("statfs_consistent", "bavail_le_bfree=%d bfree_le_blocks=%d ffree_le_files=%d", a.f_bavail <= a.f_bfree,
		     a.f_bfree <= a.f_blocks, a.f_ffree <= a.f_files);
		fd = open("f", O_RDONLY);
		res("fstatfs", fstatfs(fd, &b));
		close(fd);
		emit("fstatfs_matches_statfs", "blocks=%d namelen=%d bsize=%d", a.f_blocks == b.f_blocks,
		     a.f_namelen == b.f_namelen, a.f_bsize == b.f_bsize);
		struct statvfs v;
		res("statvfs", statvfs(".", &v));
		emit("statvfs_namemax", "%lu", (unsigned long)v.f_namemax);
		res("statfs_missing", statfs("nosuch", &a));
	}

	/* access(2) as root */
	mkfile("noperm", 0, "");
	mkfile("exec", 0755, "#!/bin/sh\n");
	mkfile("noexec", 0644, "");
	{
		struct sb s = {0};
		sbr(&s, "R", access("noperm", R_OK));
		sbr(&s, "W", access("noperm", W_OK));
		sbr(&s, "X", access("noperm", X_OK));
		sbr(&s, "Xexec", access("exec", X_OK));
		sbr(&s, "Xnoexec", access("noexec", X_OK));
		sbr(&s, "Xdir", access("d", X_OK));
		sbr(&s, "F_missing", access("nosuch", F_OK));
		emit("access_root", "%s", s.b);
	}

	/* statx */
	{
		struct statx sx;
		int rc = statx(AT_FDCWD, "f", AT_SYMLINK_NOFOLLOW, STATX_ALL, &sx);
		if (rc < 0)
			emit("statx", "%s", en(errno));
		else
			emit("statx", "basic_stats=%d btime=%d size=%llu mode=%04o", (sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS,
			     !!(sx.stx_mask & STATX_BTIME), (unsigned long long)sx.stx_size, sx.stx_mode & 07777);
		rc = statx(AT_FDCWD, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
		emit("statx_empty_path_cwd", "%s", rc < 0 ? en(errno) : (S_ISDIR(sx.stx_mode) ? "dir" : "other"));
	}

	/* O_PATH descriptors */
	{
		int pfd = open("f", O_PATH);
		struct stat st;
		res("fstatat_empty_path", fstatat(pfd, "", &st, AT_EMPTY_PATH));
		emit("fstatat_empty_path_size", "%lld", (long long)st.st_size);
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
		int rfd = open(proc, O_RDONLY);
		char buf[16];
		ssize_t n = rfd < 0 ? -1 : read(rfd, buf, sizeof buf);
		emit("reopen_via_proc", "%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
		close(rfd);
		close(pfd);
		int dfd = open("d", O_PATH | O_DIRECTORY);
		res("fchdir_path_fd", fchdir(dfd));
		res("fchdir_back", chdir(".."));
		close(dfd);
	}

	/* exec a binary stored in the directory */
	{
		char buf[65536];
		int in = open("/proc/self/exe", O_RDONLY), out = open("prog", O_CREAT | O_WRONLY | O_TRUNC, 0755);
		ssize_t n;
		long total = 0;
		while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
			total += write(out, buf, (size_t)n);
		close(in);
		close(out);
		chmod("prog", 0755);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			execl("./prog", "prog", "--exec-child", "exit42", (char *)NULL);
			_exit(errno);
		}
		int st;
		waitpid(pid, &st, 0);
		emit("exec_from_dir", "%s", total <= 0 ? "copy-failed" : WIFEXITED(st) ? (WEXITSTATUS(st) == 42 ? "exit=42" : en(WEXITSTATUS(st))) : "signal");
		/* a running binary cannot be opened for writing */
		int p[2], q[2];
		if (pipe(p) < 0 || pipe(q) < 0)
			setup_fail("pipe", "exec");
		pid = fork();
		if (pid == 0) {
			dup2(p[0], 0);
			dup2(q[1], 1);
			close(p[1]);
			close(q[0]);
			execl("./prog", "prog", "--exec-child", "wait", (char *)NULL);
			_exit(errno);
		}
		close(p[0]);
		close(q[1]);
		char c;
		ssize_t r = read(q[0], &c, 1); /* the child is running */
		int wfd = open("prog", O_WRONLY);
		emit("exec_etxtbsy", "%s", r != 1 ? "child-failed" : wfd < 0 ? en(errno) : "ok");
		if (wfd >= 0)
			close(wfd);
		close(p[1]);
		waitpid(pid, &st, 0);
		close(q[0]);
		chmod("prog", 0644);
		pid = fork();
		if (pid == 0) {
			execl("./prog", "prog", "--exec-child", "exit42", (char *)NULL);
			_exit(200 + (errno == EACCES));
		}
		waitpid(pid, &st, 0);
		emit("exec_noexec_mode", "%s", WIFEXITED(st) && WEXITSTATUS(st) == 201 ? "EACCES" : "other");
	}
}

/* ------------------------------------------------------------------ unprivileged groups */

static uid_t g_uid;
static gid_t g_gid;

static void u_perm_setup(void)
{
	mkfile("secret", 0600, "s");
	mkfile("grpread", 0640, "g");
	must("chown", "grpread", chown("grpread", 0, g_gid));
	mkfile("grpnone", 0604, "g");
	must("chown", "grpnone", chown("grpnone", 0, g_gid));
	mkd("rootdir", 0755);
	mkfile("rootdir/f", 0644, "r");
	mkd("sticky", 01777);
	mkfile("sticky/rootf", 0666, "r");
	mkfile("sticky/otherf", 0666, "o");
	must("chown", "sticky/otherf", chown("sticky/otherf", g_uid + 1, g_gid + 1));
	mkfile("others", 0644, "o");
	must("chown", "others", chown("others", g_uid + 1, g_gid + 1));
	mkfile("others_ww", 0666, "w");
	must("chown", "others_ww", chown("others_ww", g_uid + 1, g_gid + 1));
	mkfile("ro_own", 0444, "ro");
	must("chown", "ro_own", chown("ro_own", g_uid, g_gid));
	mkfile("own_gid0", 0644, "");
	must("chown", "own_gid0", chown("own_gid0", g_uid, 0));
	mkfile("own_suid", 04755, "");
	must("chown", "own_suid", chown("own_suid", g_uid, g_gid));
	must("chmod", "own_suid", chmod("own_suid", 04755));
	mkfile("own_sgid", 02775, "");
	must("chown", "own_sgid", chown("own_sgid", g_uid, g_gid));
	must("chmod", "own_sgid", chmod("own_sgid", 02775));
	mkd("own", 0755);
	must("chown", "own", chown("own", g_uid, g_gid));
	mkfile("trusted", 0644, "");
	must("chown", "trusted", chown("trusted", g_uid, g_gid));
	must("setxattr", "trusted", setxattr("trusted", "trusted.secret", "x", 1, 0));
	must("setxattr", "trusted", setxattr("trusted", "user.visible", "y", 1, 0));
	/* an ACL granting the user read access to a root-only file */
	mkfile("acl_read", 0600, "acl ok");
	{
		unsigned char blob[128];
		struct acl_entry e[] = {
			{ACL_USER_OBJ, 6, ACL_UNDEF}, {ACL_USER, 4, g_uid}, {ACL_GROUP_OBJ, 0, ACL_UNDEF},
			{ACL_MASK, 4, ACL_UNDEF},     {ACL_OTHER, 0, ACL_UNDEF},
		};
		size_t n = acl_blob(blob, e, 5);
		must("setxattr", "acl_read", setxattr("acl_read", "system.posix_acl_access", blob, n, 0));
		/* and one denying the user what "other" would allow */
		mkfile("acl_deny", 0644, "denied");
		struct acl_entry d[] = {
			{ACL_USER_OBJ, 6, ACL_UNDEF}, {ACL_USER, 0, g_uid}, {ACL_GROUP_OBJ, 4, ACL_UNDEF},
			{ACL_MASK, 4, ACL_UNDEF},     {ACL_OTHER, 4, ACL_UNDEF},
		};
		n = acl_blob(blob, d, 5);
		must("setxattr", "acl_deny", setxattr("acl_deny", "system.posix_acl_access", blob, n, 0));
	}
}

static void u_perm(void)
{
	char buf[64];
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	emit("whoami", "uid=%u gid=%u euid=%u", getuid(), getgid(), geteuid());
	res_fd("open_root_0600", open("secret", O_RDONLY));
	res_fd("open_group_readable", open("grpread", O_RDONLY));
	res_fd("open_group_class_denies", open("grpnone", O_RDONLY));
	res_fd("open_others_for_write", open("others", O_WRONLY));
	res_fd("open_own_readonly_for_write", open("ro_own", O_WRONLY));
	res_fd("create_in_root_dir", open("rootdir/new", O_CREAT | O_WRONLY, 0644));
	res("mkdir_in_root_dir", mkdir("rootdir/sub", 0755));
	res("unlink_in_root_dir", unlink("rootdir/f"));
	res("rename_out_of_root_dir", rename("rootdir/f", "own/f"));
	res("symlink_in_root_dir", symlink("x", "rootdir/l"));
	res("mkfifo_in_root_dir", mkfifo("rootdir/p", 0644));
	res("sticky_unlink_root_file", unlink("sticky/rootf"));
	res("sticky_unlink_other_file", unlink("sticky/otherf"));
	res("sticky_rename_other_file", rename("sticky/otherf", "sticky/mine"));
	res_fd("sticky_create_own", open("sticky/mine", O_CREAT | O_WRONLY, 0644));
	stat_line("sticky_create_own_stat", "sticky/mine");
	res("sticky_rename_own_over_other", rename("sticky/mine", "sticky/otherf"));
	res("sticky_unlink_own", unlink("sticky/mine"));
	res("sticky_write_other_writable", ({
		    int fd = open("sticky/rootf", O_WRONLY | O_APPEND);
		    int r = fd < 0 ? -1 : (int)write(fd, "+", 1);
		    if (fd >= 0)
			    close(fd);
		    r;
	    }));
	res("chmod_others", chmod("others", 0777));
	res("chown_others_to_self", chown("others", g_uid, g_gid));
	res("chown_own_to_other_user", chown("ro_own", g_uid + 1, (gid_t)-1));
	res("chgrp_own_to_nonmember", chown("ro_own", (uid_t)-1, 0));
	res("chgrp_own_to_member", chown("ro_own", (uid_t)-1, g_gid));
	res("chown_own_to_self", chown("ro_own", g_uid, g_gid));
	res("utime_explicit_others_writable", utimensat(AT_FDCWD, "others_ww", ts, 0));
	res("utime_now_others_writable", utimensat(AT_FDCWD, "others_ww", now2, 0));
	res("utime_null_others_writable", utimensat(AT_FDCWD, "others_ww", NULL, 0));
	res("utime_now_others_readonly", utimensat(AT_FDCWD, "others", now2, 0));
	res("utime_explicit_others_readonly", utimensat(AT_FDCWD, "others", ts, 0));
	res("utime_explicit_own", utimensat(AT_FDCWD, "ro_own", ts, 0));
	res("truncate_others", truncate("others", 0));
	res("truncate_others_writable", truncate("others_ww", 0));
	res("chmod_setgid_nonmember_group", chmod("own_gid0", 02755));
	stat_line("chmod_setgid_nonmember_group_stat", "own_gid0");
	res("chmod_own", chmod("ro_own", 0640));
	stat_line("chmod_own_stat", "ro_own");
	/* writing clears set-user-ID (and set-group-ID when group-executable) */
	{
		int fd = open("own_suid", O_WRONLY);
		res("write_own_setuid", fd < 0 ? -1 : write(fd, "x", 1));
		close(fd);
		stat_line("write_own_setuid_stat", "own_suid");
		fd = open("own_sgid", O_WRONLY);
		res("write_own_setgid", fd < 0 ? -1 : write(fd, "x", 1));
		close(fd);
		stat_line("write_own_setgid_stat", "own_sgid");
	}
	res("mknod_chr", mknod("own/chr", S_IFCHR | 0644, makedev(1, 3)));
	res("mknod_fifo", mknod("own/fifo", S_IFIFO | 0644, 0));
	stat_line("mknod_fifo_stat", "own/fifo");
	res("mknod_socket", mknod("own/sock", S_IFSOCK | 0644, 0));
	stat_line("mknod_socket_stat", "own/sock");
	/* create with mode 0000 and O_RDWR, then use the descriptor */
	{
		int fd = open("own/zero", O_CREAT | O_EXCL | O_RDWR, 0);
		if (fd < 0) {
			emit("create_0000_rdwr", "%s", en(errno));
		} else {
			struct sb s = {0};
			sbr(&s, "write", write(fd, "hi", 2));
			ssize_t n = pread(fd, buf, sizeof buf, 0);
			sbf(&s, "pread=%s", n < 0 ? en(errno) : esc(buf, (size_t)n));
			sbr(&s, "ftruncate", ftruncate(fd, 1));
			sbr(&s, "fchmod", fchmod(fd, 0400));
			emit("create_0000_rdwr", "%s", s.b);
			fstat_line("create_0000_rdwr_fstat", fd);
			close(fd);
		}
		chmod("own/zero", 0);
		res_fd("create_0000_reopen", open("own/zero", O_RDONLY));
		res("create_0000_access_r", access("own/zero", R_OK));
	}
	/* a write-only file (cache=loose first tries O_WRONLY opens as O_RDWR) */
	{
		struct sb s = {0};
		int fd = open("own/wo", O_CREAT | O_EXCL | O_WRONLY, 0200);
		sbr(&s, "create", fd);
		sbr(&s, "write", fd < 0 ? -1 : write(fd, "abc", 3));
		close(fd);
		fd = open("own/wo", O_WRONLY | O_APPEND);
		sbr(&s, "reopen", fd);
		sbr(&s, "append", fd < 0 ? -1 : write(fd, "d", 1));
		close(fd);
		sbr(&s, "open_rdonly", fd = open("own/wo", O_RDONLY));
		if (fd >= 0)
			close(fd);
		emit("write_only_file", "%s", s.b);
		chmod("own/wo", 0600);
		emit("write_only_file_content", "%s", content("own/wo"));
	}
	/* creating files: ownership */
	res_fd("create_own", open("own/file", O_CREAT | O_WRONLY, 0640));
	stat_line("create_own_stat", "own/file");
	res("mkdir_own", mkdir("own/dir", 0750));
	stat_line("mkdir_own_stat", "own/dir");
	res("symlink_own", symlink("file", "own/link"));
	stat_line("symlink_own_stat", "own/link");
	res("link_own", link("own/file", "own/file2"));
	stat_line("link_own_stat", "own/file");
	/* directory permission bits */
	mkfile("own/dir/inner", 0644, "in");
	res("chmod_dir_noexec", chmod("own/dir", 0600));
	{
		struct stat st;
		res("stat_in_noexec_dir", stat("own/dir/inner", &st));
		res_fd("open_in_noexec_dir", open("own/dir/inner", O_RDONLY));
	}
	res("chmod_dir_noread", chmod("own/dir", 0300));
	{
		errno = 0;
		DIR *d = opendir("own/dir");
		emit("opendir_noread_dir", "%s", d ? "ok" : en(errno));
		if (d)
			closedir(d);
		struct stat st;
		res("stat_in_noread_dir", stat("own/dir/inner", &st));
	}
	res("chmod_dir_nowrite", chmod("own/dir", 0500));
	res_fd("create_in_nowrite_dir", open("own/dir/new", O_CREAT | O_WRONLY, 0644));
	res("unlink_in_nowrite_dir", unlink("own/dir/inner"));
	chmod("own/dir", 0700);
	/* an own file made unreadable */
	mkfile("own/mine", 0644, "mine");
	res("chmod_own_0", chmod("own/mine", 0));
	res_fd("open_own_mode0", open("own/mine", O_RDONLY));
	/* xattrs */
	res("setxattr_user_others", setxattr("others", "user.x", "v", 1, 0));
	res("setxattr_user_own", setxattr("own/file", "user.x", "v", 1, 0));
	get_line("getxattr_user_own", "own/file", "user.x");
	res("getxattr_user_others_readable", getxattr("others", "user.nothing", buf, sizeof buf));
	res("setxattr_trusted_own", setxattr("own/file", "trusted.x", "v", 1, 0));
	res("getxattr_trusted_hidden", getxattr("trusted", "trusted.secret", buf, sizeof buf));
	list_line("listxattr_hides_trusted", "trusted", 1);
	res("getxattr_user_visible", getxattr("trusted", "user.visible", buf, sizeof buf));
	/* ACLs */
	res_fd("acl_grants_read", open("acl_read", O_RDONLY));
	emit("acl_grants_read_content", "%s", content("acl_read"));
	res_fd("acl_no_write", open("acl_read", O_WRONLY));
	res_fd("acl_denies_read", open("acl_deny", O_RDONLY));
	res("acl_set_on_others", setxattr("others", "system.posix_acl_access", "\2\0\0\0", 4, 0));
	{
		unsigned char blob[128];
		struct acl_entry e[] = {
			{ACL_USER_OBJ, 6, ACL_UNDEF}, {ACL_USER, 6, g_uid + 5}, {ACL_GROUP_OBJ, 4, ACL_UNDEF},
			{ACL_MASK, 6, ACL_UNDEF},     {ACL_OTHER, 0, ACL_UNDEF},
		};
		size_t n = acl_blob(blob, e, 5);
		res("acl_set_on_own", setxattr("own/file", "system.posix_acl_access", blob, n, 0));
		acl_line("acl_set_on_own_get", "own/file", "system.posix_acl_access");
		stat_line("acl_set_on_own_stat", "own/file");
	}
	/* access(2) */
	{
		struct sb s = {0};
		sbr(&s, "secret_R", access("secret", R_OK));
		sbr(&s, "grpread_R", access("grpread", R_OK));
		sbr(&s, "others_W", access("others", W_OK));
		sbr(&s, "others_ww_W", access("others_ww", W_OK));
		sbr(&s, "rootdir_W", access("rootdir", W_OK));
		sbr(&s, "acl_read_R", access("acl_read", R_OK));
		emit("access_user", "%s", s.b);
	}
	/* locks on a file one cannot write */
	{
		int fd = open("others", O_RDONLY);
		res("lock_rd_others", setlk(fd, F_SETLK, F_RDLCK, 0, 0));
		res("lock_wr_others_rdonly", setlk(fd, F_SETLK, F_WRLCK, 0, 0));
		close(fd);
	}
}

/* ------------------------------------------------------------------ main */

struct suite_group {
	const char *name;
	void (*run)(void);
	void (*setup)(void); /* user mode: run as root first */
};

static const struct suite_group root_groups[] = {
	{"open", g_open, NULL},       {"rw", g_rw, NULL},         {"truncate", g_truncate, NULL},
	{"rename", g_rename, NULL},   {"link", g_link, NULL},     {"nlink", g_nlink, NULL},
	{"symlink", g_symlink, NULL}, {"chmod", g_chmod, NULL},   {"times", g_times, NULL},
	{"mknod", g_mknod, NULL},     {"xattr", g_xattr, NULL},   {"acl", g_acl, NULL},
	{"lock", g_lock, NULL},       {"mmap", g_mmap, NULL},     {"unlinked", g_unlinked, NULL},
	{"readdir", g_readdir, NULL}, {"misc", g_misc, NULL},
};

static const struct suite_group user_groups[] = {
	{"perm", u_perm, u_perm_setup},
};

static int g_timing; /* -t: "@@TIME GROUP SECONDS" on stderr after each group */
static const char *g_only; /* -g GROUP: run only that group (debugging) */

static void run_group(const struct suite_group *g, int user_mode)
{
	double t0 = now_s();
	if (g_only && strcmp(g_only, g->name))
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		emit("fork", "%s", en(errno));
		return;
	}
	if (pid == 0) {
		alarm(GROUP_ALARM);
		umask(022);
		if (mkdir(g->name, 0755) < 0 || chmod(g->name, 0755) < 0 || chdir(g->name) < 0) {
			setup_fail("groupdir", g->name);
			_exit(1);
		}
		if (user_mode) {
			if (g->setup)
				g->setup();
			if (setgroups(1, &g_gid) < 0 || setgid(g_gid) < 0 || setuid(g_uid) < 0) {
				setup_fail("setuid", g->name);
				_exit(1);
			}
		}
		g->run();
		fflush(stdout);
		_exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char name[64];
	snprintf(name, sizeof name, "%s.died", g->name);
	if (WIFSIGNALED(st))
		emit(name, "signal %s", sigabbrev_np(WTERMSIG(st)));
	else if (WEXITSTATUS(st))
		emit(name, "exit %d", WEXITSTATUS(st));
	if (g_timing)
		fprintf(stderr, "@@TIME %s%s %.2f\n", g_prefix, g->name, now_s() - t0);
}

static int exec_child(const char *mode)
{
	if (!strcmp(mode, "exit42"))
		return 42;
	if (!strcmp(mode, "wait")) { /* say we run, then wait for stdin to close */
		char c = 'r';
		if (write(1, &c, 1) < 0)
			return 1;
		while (read(0, &c, 1) > 0)
			;
		return 0;
	}
	return 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: posix-suite [-t] [-g GROUP] [-s PATTERN]... [-u UID:GID] DIR\n"
			"Runs deterministic POSIX checks in the empty directory DIR, one line each.\n"
			"  -u UID:GID  the unprivileged checks (root prepares, UID:GID runs them)\n"
			"  -s PATTERN  do not run the guarded checks matching PATTERN (fnmatch); they print \"skipped\"\n"
			"  -t          print each group's duration on stderr\n"
			"  -g GROUP    run only GROUP (open, rw, ..., lock, ...; perm with -u)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int user_mode = 0;
	if (argc == 3 && !strcmp(argv[1], "--exec-child"))
		return exec_child(argv[2]);
	int i = 1;
	for (;;) {
		if (i < argc && !strcmp(argv[i], "-t")) {
			g_timing = 1;
			i++;
		} else if (i + 1 < argc && !strcmp(argv[i], "-g")) {
			g_only = argv[i + 1];
			i += 2;
		} else if (i + 1 < argc && !strcmp(argv[i], "-s") && g_nskip < 32) {
			g_skip[g_nskip++] = argv[i + 1];
			i += 2;
		} else {
			break;
		}
	}
	if (i < argc && !strcmp(argv[i], "-u")) {
		unsigned u, g;
		if (i + 1 >= argc || sscanf(argv[i + 1], "%u:%u", &u, &g) != 2)
			usage();
		g_uid = u;
		g_gid = g;
		user_mode = 1;
		i += 2;
	}
	if (i != argc - 1)
		usage();
	const char *dir = argv[i];
	if (geteuid() != 0) {
		fprintf(stderr, "posix-suite: must run as root (the oracle and the guest both run as root)\n");
		return 2;
	}
	if (chdir(dir) < 0) {
		fprintf(stderr, "posix-suite: %s: %s\n", dir, strerror(errno));
		return 2;
	}
	DIR *d = opendir(".");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			fprintf(stderr, "posix-suite: %s is not empty\n", dir);
			return 2;
		}
	if (d)
		closedir(d);
	if (chmod(".", 0755) < 0) {
		fprintf(stderr, "posix-suite: chmod %s: %s\n", dir, strerror(errno));
		return 2;
	}
	g_count = mmap(NULL, sizeof *g_count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_count == MAP_FAILED)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	if (user_mode) {
		g_prefix = "u_";
		for (size_t k = 0; k < sizeof user_groups / sizeof user_groups[0]; k++)
			run_group(&user_groups[k], 1);
	} else {
		for (size_t k = 0; k < sizeof root_groups / sizeof root_groups[0]; k++)
			run_group(&root_groups[k], 0);
	}
	g_prefix = "";
	printf("SUMMARY: %d checks\n", *g_count);
	return 0;
}
