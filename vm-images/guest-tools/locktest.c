/*
 * locktest: POSIX (fcntl) and flock() locks between guest processes.
 *
 *   locktest posix FILE        two processes, one path: conflicts, F_GETLK,
 *                              unlock, release on close and exit, F_SETLKW
 *   locktest server FILE LINK  LINK is a hard link to FILE: with cache=none
 *                              the guest has one inode per name, so only the
 *                              server sees the conflicts (F_GETLK l_pid is
 *                              then minus the holder's pid)
 *   locktest flock FILE LINK   flock() through both names
 *   locktest hold FILE TYPE START LEN READY RELEASE
 *                              take a lock (r/w), create READY, wait until
 *                              RELEASE exists, exit (for host-side checks)
 *   locktest try FILE TYPE START LEN [w]
 *                              F_SETLK (F_SETLKW with w); print "ok" or the
 *                              errno name; exit 0
 *   locktest getlk FILE TYPE START LEN
 *                              print "TYPE START LEN PID" of F_GETLK
 *
 * Prints one line per failed step and exits with the number of failures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                 \
	do {                                             \
		if (!(cond)) {                           \
			printf("FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__);             \
			printf("\n");                    \
			fflush(stdout);                  \
			failures++;                      \
		}                                        \
	} while (0)

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl) == 0 ? 0 : errno;
}

static struct flock getlk(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, F_GETLK, &fl) != 0) {
		printf("FAIL F_GETLK: %s\n", strerror(errno));
		failures++;
		fl.l_type = -1;
	}
	return fl;
}

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags | O_CREAT, 0644);
	if (fd < 0) {
		printf("FAIL open %s: %s\n", path, strerror(errno));
		exit(100);
	}
	return fd;
}

static int busy(int err)
{
	return err == EAGAIN || err == EACCES;
}

/* Runs fn(arg) in a child; returns the child's failure count. */
static int in_child(int (*fn)(const char *, const char *), const char *a, const char *b)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		failures = 0;
		failures += fn(a, b);
		fflush(stdout);
		_exit(failures > 100 ? 100 : failures);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
		printf("FAIL child did not finish\n");
		return 1;
	}
	return WEXITSTATUS(status);
}

static pid_t parent;

static int child_sees_parent_lock(const char *path, const char *unused)
{
	int fd = open_or_die(path, O_RDWR), err;
	struct flock fl;
	(void)unused;

	err = setlk(fd, F_SETLK, F_WRLCK, 5, 1);
	CHECK(busy(err), "F_SETLK inside the parent's lock: %s", strerror(err));
	err = setlk(fd, F_SETLK, F_RDLCK, 9, 0);
	CHECK(busy(err), "F_SETLK RDLCK over the parent's lock: %s", strerror(err));
	fl = getlk(fd, F_WRLCK, 0, 0);
	CHECK(fl.l_type == F_WRLCK && fl.l_start == 0 && fl.l_len == 10 && fl.l_pid == parent,
	      "F_GETLK: type %d start %ld len %ld pid %d (parent %d)", fl.l_type,
	      (long)fl.l_start, (long)fl.l_len, fl.l_pid, parent);
	err = setlk(fd, F_SETLK, F_WRLCK, 10, 10);
	CHECK(err == 0, "F_SETLK next to the parent's lock: %s", strerror(err));
	close(fd);
	return failures;
}

static int child_locks_all(const char *path, const char *type)
{
	int fd = open_or_die(path, O_RDWR);
	int err = setlk(fd, F_SETLK, type && *type == 'r' ? F_RDLCK : F_WRLCK, 0, 0);
	CHECK(err == 0, "F_SETLK whole file (%s): %s", type ? type : "w", strerror(err));
	return failures; /* exits with the lock held: released by the exit */
}

static int child_blocked(const char *path, const char *type)
{
	int fd = open_or_die(path, O_RDWR);
	int err = setlk(fd, F_SETLK, type && *type == 'r' ? F_RDLCK : F_WRLCK, 0, 0);
	CHECK(busy(err), "F_SETLK whole file (%s) should be refused: %s", type ? type : "w",
	      strerror(err));
	return failures;
}

static int child_waits(const char *path, const char *unused)
{
	int fd = open_or_die(path, O_RDWR);
	int err = setlk(fd, F_SETLKW, F_WRLCK, 0, 0);
	(void)unused;
	CHECK(err == 0, "F_SETLKW: %s", strerror(err));
	return failures;
}

static int posix(const char *path)
{
	int fd, err, status;
	pid_t pid;

	parent = getpid();
	fd = open_or_die(path, O_RDWR);
	err = setlk(fd, F_SETLK, F_WRLCK, 0, 10);
	CHECK(err == 0, "F_SETLK [0,10): %s", strerror(err));
	failures += in_child(child_sees_parent_lock, path, NULL);
	/* Unlock: another process gets the whole file, and loses it on exit. */
	err = setlk(fd, F_SETLK, F_UNLCK, 0, 0);
	CHECK(err == 0, "F_UNLCK: %s", strerror(err));
	failures += in_child(child_locks_all, path, "w");
	err = setlk(fd, F_SETLK, F_WRLCK, 0, 0);
	CHECK(err == 0, "F_SETLK after the child exited: %s", strerror(err));
	/* Closing the file drops the process's locks. */
	close(fd);
	failures += in_child(child_locks_all, path, "w");
	/* Read locks share; a write lock waits for them. */
	fd = open_or_die(path, O_RDONLY);
	err = setlk(fd, F_SETLK, F_RDLCK, 0, 0);
	CHECK(err == 0, "F_SETLK RDLCK: %s", strerror(err));
	failures += in_child(child_locks_all, path, "r");
	failures += in_child(child_blocked, path, "w");
	/* F_SETLKW: the child waits until the parent lets go. */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		failures = child_waits(path, NULL);
		fflush(stdout);
		_exit(failures);
	}
	usleep(300 * 1000);
	err = setlk(fd, F_SETLK, F_UNLCK, 0, 0);
	CHECK(err == 0, "F_UNLCK for the waiter: %s", strerror(err));
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "F_SETLKW child: status %d", status);
	close(fd);
	return failures;
}


static int child_through_link(const char *link, const char *unused)
{
	int fd = open_or_die(link, O_RDWR), err;
	struct flock fl;
	(void)unused;

	err = setlk(fd, F_SETLK, F_WRLCK, 5, 1);
	CHECK(busy(err), "F_SETLK through the link: %s", strerror(err));
	fl = getlk(fd, F_RDLCK, 0, 0);
	/* Answered by the server: the client reports minus the pid. */
	CHECK(fl.l_type == F_WRLCK && fl.l_start == 0 && fl.l_len == 10 && fl.l_pid == -parent,
	      "F_GETLK through the link: type %d start %ld len %ld pid %d (parent %d)",
	      fl.l_type, (long)fl.l_start, (long)fl.l_len, fl.l_pid, parent);
	err = setlk(fd, F_SETLK, F_RDLCK, 10, 0);
	CHECK(err == 0, "F_SETLK RDLCK [10,) through the link: %s", strerror(err));
	/* Tell the parent, wait for it to try, exit with the lock held. */
	return failures;
}

static int server(const char *path, const char *link)
{
	int fd, err, pipe_go[2], pipe_done[2], status;
	struct stat a, b;
	pid_t pid;
	char c;

	parent = getpid();
	fd = open_or_die(path, O_RDWR);
	if (stat(path, &a) != 0 || stat(link, &b) != 0 || a.st_ino != b.st_ino) {
		printf("FAIL %s and %s are not one file\n", path, link);
		return 1;
	}
	err = setlk(fd, F_SETLK, F_WRLCK, 0, 10);
	CHECK(err == 0, "F_SETLK [0,10): %s", strerror(err));
	if (pipe(pipe_go) || pipe(pipe_done))
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		failures = child_through_link(link, NULL);
		fflush(stdout);
		c = 1;
		write(pipe_go[1], &c, 1);
		read(pipe_done[0], &c, 1);
		_exit(failures);
	}
	read(pipe_go[0], &c, 1);
	/* The child's read lock from 10 on keeps the parent's write lock out. */
	err = setlk(fd, F_SETLK, F_WRLCK, 10, 1);
	CHECK(busy(err), "F_SETLK over the child's read lock: %s", strerror(err));
	err = setlk(fd, F_SETLK, F_RDLCK, 10, 1);
	CHECK(err == 0, "F_SETLK RDLCK next to the child's: %s", strerror(err));
	write(pipe_done[1], &c, 1);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status),
	      "child through the link did not finish");
	failures += WEXITSTATUS(status);
	/* The child exited: its lock went with it. */
	err = setlk(fd, F_SETLK, F_WRLCK, 10, 1);
	CHECK(err == 0, "F_SETLK after the child exited: %s", strerror(err));
	/* Closing drops everything: the link's side gets the whole file. */
	close(fd);
	failures += in_child(child_locks_all, link, "w");
	return failures;
}

static int child_flock(const char *path, const char *how)
{
	int fd = open_or_die(path, O_RDONLY);
	int op = (how[0] == 's' ? LOCK_SH : LOCK_EX) | LOCK_NB;
	int err = flock(fd, op) == 0 ? 0 : errno;
	if (how[1] == '+')
		CHECK(err == 0, "flock(%s): %s", how, strerror(err));
	else
		CHECK(err == EWOULDBLOCK, "flock(%s) should be refused: %s", how, strerror(err));
	return failures;
}

static int flock_test(const char *path, const char *link)
{
	int fd = open_or_die(path, O_RDONLY);
	int err = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
	CHECK(err == 0, "flock(LOCK_EX): %s", strerror(err));
	failures += in_child(child_flock, path, "x-");
	failures += in_child(child_flock, link, "x-");
	failures += in_child(child_flock, link, "s-");
	err = flock(fd, LOCK_SH) == 0 ? 0 : errno;
	CHECK(err == 0, "flock(LOCK_SH): %s", strerror(err));
	failures += in_child(child_flock, link, "s+");
	failures += in_child(child_flock, link, "x-");
	err = flock(fd, LOCK_UN) == 0 ? 0 : errno;
	CHECK(err == 0, "flock(LOCK_UN): %s", strerror(err));
	failures += in_child(child_flock, link, "x+");
	failures += in_child(child_flock, path, "x+");
	/* Closing releases a flock() too. */
	err = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
	CHECK(err == 0, "flock(LOCK_EX) again: %s", strerror(err));
	close(fd);
	failures += in_child(child_flock, link, "x+");
	return failures;
}

static short lock_type(const char *s)
{
	return s[0] == 'r' ? F_RDLCK : s[0] == 'u' ? F_UNLCK : F_WRLCK;
}

static int hold(char **argv)
{
	int fd = open_or_die(argv[0], O_RDWR);
	int err = setlk(fd, F_SETLK, lock_type(argv[1]), atol(argv[2]), atol(argv[3]));
	struct timespec t = { 0, 50 * 1000 * 1000 };
	int i;

	if (err) {
		printf("hold: F_SETLK: %s\n", strerror(err));
		return 1;
	}
	close(open(argv[4], O_WRONLY | O_CREAT, 0644));
	for (i = 0; i < 20 * 120 && access(argv[5], F_OK) != 0; i++)
		nanosleep(&t, NULL);
	return access(argv[5], F_OK) == 0 ? 0 : 1;
}

static int try(int argc, char **argv)
{
	int fd = open_or_die(argv[0], O_RDWR);
	int cmd = argc > 4 && argv[4][0] == 'w' ? F_SETLKW : F_SETLK;
	int err = setlk(fd, cmd, lock_type(argv[1]), atol(argv[2]), atol(argv[3]));
	printf("%s\n", err == 0 ? "ok" : strerrorname_np(err));
	return 0;
}

static int getlk_cmd(char **argv)
{
	int fd = open_or_die(argv[0], O_RDWR);
	struct flock fl = getlk(fd, lock_type(argv[1]), atol(argv[2]), atol(argv[3]));
	const char *t = fl.l_type == F_RDLCK ? "r" : fl.l_type == F_WRLCK ? "w" : fl.l_type == F_UNLCK ? "u" : "?";
	printf("%s %ld %ld %d\n", t, (long)fl.l_start, (long)fl.l_len, fl.l_pid);
	return failures;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "posix"))
		return posix(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "server"))
		return server(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "flock"))
		return flock_test(argv[2], argv[3]);
	if (argc == 8 && !strcmp(argv[1], "hold"))
		return hold(argv + 2);
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "try"))
		return try(argc - 2, argv + 2);
	if (argc == 6 && !strcmp(argv[1], "getlk"))
		return getlk_cmd(argv + 2);
	fprintf(stderr, "usage: locktest posix FILE | server FILE LINK | flock FILE LINK |\n"
			"       hold FILE r|w START LEN READY RELEASE | try FILE r|w|u START LEN [w] |\n"
			"       getlk FILE r|w START LEN\n");
	return 2;
}
