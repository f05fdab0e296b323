complete -c vhost-user-9p -l socket-path -d 'vhost-user Unix socket to listen on (a stale socket file is replaced)' -r -F
complete -c vhost-user-9p -l fd -d 'Instead of --socket-path: serve vhost-user on the Unix stream socket inherited as file descriptor FDNUM, already listening (QEMU\'s backend program conventions; systemd socket activation gives 3)' -r
complete -c vhost-user-9p -l listen -d 'Also (or instead) serve 9P over a stream socket: unix:PATH, or tcp:HOST:PORT (tcp:PORT is loopback); repeatable. Each connection is its own session' -r
complete -c vhost-user-9p -l shared-dir -d 'Directory to share' -r -F
complete -c vhost-user-9p -l upstream -d 'Instead of a directory, share the file tree of an upstream 9P server (a gateway): unix:PATH or tcp:HOST:PORT, speaking 9P2000.L (diod, another vhost-user-9p), 9P2000.u or 9P2000 (its ,ctl conventions used where it has them). 9P2000.L clients\' requests are translated where it speaks less; 9P2000 and 9P2000.u clients get a connection in their own dialect. With --sandbox namespace the daemon\'s root is an empty tmpfs (holding only a unix: upstream\'s socket), and a tcp: upstream is connected before the network is gone' -r
complete -c vhost-user-9p -l upstream-aname -d 'With --upstream: the aname of its Tattach [default: empty]' -r
complete -c vhost-user-9p -l upstream-uname -d 'With --upstream: the uname of its Tattach [default: the attaching user\'s name]' -r
complete -c vhost-user-9p -l upstream-version -d 'With --upstream: the protocol asked of it for 9P2000.L clients, 9p2000.L (it may answer 9p2000.u or 9p2000), 9p2000.u or 9p2000; the clients speak 9P2000.L all the same' -r
complete -c vhost-user-9p -l tag -d 'Mount tag the guest uses to find the share (1 to 255 bytes)' -r
complete -c vhost-user-9p -l security-model -d 'Where guest owners, modes and device numbers are kept: passthrough (on the host files, needs root), mapped-xattr (in user.virtfs.* xattrs of files the daemon owns), none (like passthrough, failed ownership changes ignored). Default: passthrough when running as root, mapped-xattr otherwise' -r
complete -c vhost-user-9p -l uid-map -d 'Map guest uids to host uids, `:GUEST:HOST:COUNT:` (repeatable); unmapped host uids show as 65534, unmapped guest uids are refused' -r
complete -c vhost-user-9p -l gid-map -d 'Map guest gids to host gids, `:GUEST:HOST:COUNT:` (repeatable)' -r
complete -c vhost-user-9p -l thread-pool-size -d 'Worker threads serving requests in parallel (0 or 1: serve them on the queue thread) [default: the number of CPUs, at least 2]' -r
complete -c vhost-user-9p -l poll-us -d 'Once the virtqueue runs dry, watch it for up to this many microseconds before sleeping on the guest\'s kick, so a request that comes meanwhile skips the wake-up; the window grows when kicks come within N µs of its end and shrinks when they come later, so an idle guest costs nothing. 0: never watch (for hosts with no core to spare)' -r
complete -c vhost-user-9p -l write-behind -d 'Write-behind window, MiB: while a guest writes a file back to back, each stretch of this size is handed to the disk (sync_file_range) once the writer is a further stretch past it, so a closing fsync has less left to wait for, at a cost in the daemon\'s CPU; a file written in less than two stretches is left alone. 0: leave all write-back to the host kernel (8 is a good window)' -r
complete -c vhost-user-9p -l rlimit-nofile -d 'Open file limit (RLIMIT_NOFILE) to set at start: every file the guest has walked to or opened and not yet clunked holds a descriptor, and a cache=loose guest keeps one per file in its dentry cache. 0: leave the limit as inherited [default: 1,000,000 (fs.nr_open if lower); as high as the hard limit allows when that cannot be raised]' -r
complete -c vhost-user-9p -l max-fids -d 'Fids one client session may hold: one per file it has walked to and not clunked (a cache=loose guest keeps one per cached dentry); a new one beyond is refused with EMFILE. All sessions together hold at most twice as many (ENFILE beyond)' -r
complete -c vhost-user-9p -l max-connections -d 'With --listen: connections served at once; one more is accepted and closed at once (its client reads end of file) and a warning logged' -r
complete -c vhost-user-9p -l socket-group -d 'Give this group (a name from /etc/group, or a number) access to the Unix sockets the daemon binds (--socket-path, --listen unix:): mode 0660 instead of 0600 (the owner is the daemon\'s user). Not an --fd socket: whoever made it set its file\'s owner and mode' -r
complete -c vhost-user-9p -l sandbox -d 'How the daemon confines itself once its sockets are bound: namespace (new mount, pid and net namespaces, and a user namespace when not root, with the share as the root: nothing else of the host\'s file system is reachable), chroot (into the share; root only, for containers that forbid namespaces), none' -r -f -a "namespace\t'New mount, pid and net namespaces (and a user namespace when not root), with the share as the root'
chroot\t'chroot into the share (root only)'
none\t'No confinement'"
complete -c vhost-user-9p -l seccomp -d 'What a system call outside the daemon\'s allowlist does: kill (the process), log (allowed, logged by the kernel: find it with `dmesg | grep type=1326`), trap (SIGSYS), none (no filter)' -r -f -a "kill\t'Kill the process'
log\t'Allow it, and have the kernel log it'
trap\t'Raise SIGSYS in the calling thread'
none\t'No filter'"
complete -c vhost-user-9p -l modcaps -d 'Change the capabilities kept as root: `+NAME` adds, `-NAME` drops, separated by `:` (e.g. `+sys_admin:-mknod`; names as in capabilities(7), `cap_` optional). Kept by default: chown, dac_override, fowner, fsetid, setgid, setuid, and with passthrough or none also mknod and setfcap' -r
complete -c vhost-user-9p -l log-level -d 'Log level (messages go to stderr)' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''
off\t''"
complete -c vhost-user-9p -l print-capabilities -d 'Print the backend\'s capabilities as JSON (QEMU\'s vhost-user.json: `{"type": "9p", "features": []}`) and exit; needs no other option'
complete -c vhost-user-9p -l readonly -d 'Share read-only: every change is refused with EROFS'
complete -c vhost-user-9p -l ctl -d 'Serve the control namespace: `D/,ctl/F` reads as the host\'s stat of F and takes commands (chmod, chown, utimes, truncate; in `D/,ctl/,` also symlink, link, rename, mknod); `,nofollow` stops symlink following. Never listed'
complete -c vhost-user-9p -l trace -d 'Print every 9P message both ways to stderr, in Plan 9 lib9p\'s style (`<-N- Twalk tag 5 fid 1 newfid 2 nwname 1 0:etc`)'
complete -c vhost-user-9p -l no-auth -d 'Accept --listen tcp: at all: 9P over TCP has no authentication, so anyone who reaches the port acts as any user they name (uid 0 is still squashed unless --no-root-squash)'
complete -c vhost-user-9p -l no-root-squash -d 'On --listen sockets, let a client attached as uid 0 act as root (default: it acts as 65534, like NFS\'s root_squash)'
complete -c vhost-user-9p -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vhost-user-9p -s V -l version -d 'Print version'
