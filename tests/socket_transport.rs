//! The socket transports (`--listen unix:PATH`, `--listen tcp:HOST:PORT`)
//! through the real daemon: independent sessions per connection, data both
//! ways, resources released when a client goes away.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;

mod common;
use common::client::*;
use common::proc::wait_for;
use common::Daemon;

/// The daemon on the `--listen` sockets `listen`, letting clients attach
/// as root (also over TCP).
fn start(share: &Path, listen: &[&str]) -> Daemon {
    let mut daemon = Daemon::builder(share).args(["--no-auth", "--no-root-squash"]);
    for l in listen {
        daemon = daemon.listen(l);
    }
    daemon.start()
}

/// A client of a stream.
type Conn<S> = Client<Stream<S>>;

/// Tversion 9P2000.L and Tattach of `fid` as root ("u", uid 0).
fn attach<S: Read + Write>(c: &mut Conn<S>, fid: u32) {
    c.version(65536, "9P2000.L");
    c.attach(fid, "u", "", Some(0));
}

/// Walks `root` to `name` as `fid` and opens it with `flags`.
fn open<S: Read + Write>(c: &mut Conn<S>, root: u32, fid: u32, name: &str, flags: u32) {
    c.walk(root, fid, &[name]);
    c.lopen(fid, flags);
}

/// All of the file open at `fid` (up to 60,000 bytes).
fn read<S: Read + Write>(c: &mut Conn<S>, fid: u32) -> Vec<u8> {
    c.read(fid, 0, 60000)
}

#[test]
fn unix_and_tcp_sessions_are_independent() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("a.txt"), "alpha").unwrap();
    let sock = sock_dir.path().join("9p.sock");
    // Find a free loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = start(
        share.path(),
        &[&format!("unix:{}", sock.display()), &format!("tcp:{port}")],
    );
    let unix = wait_for("a Unix connection", || UnixStream::connect(&sock).ok());
    let tcp = wait_for("a TCP connection", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let mut u = Client::stream(unix);
    let mut t = Client::stream(tcp);
    // The same fid numbers in both sessions name different things.
    attach(&mut u, 1);
    attach(&mut t, 1);
    open(&mut u, 1, 2, "a.txt", 0);
    t.walk(1, 2, &[]);
    t.try_lcreate(2, "new.txt", 2, 0o644, 0).expect("Tlcreate");
    t.try_write(2, 0, b"tcp!!").expect("Twrite");
    assert_eq!(read(&mut u, 2), b"alpha");
    assert_eq!(read(&mut t, 2), b"tcp!!");
    assert_eq!(
        std::fs::read_to_string(share.path().join("new.txt")).unwrap(),
        "tcp!!"
    );
    // A large read crosses several socket reads.
    std::fs::write(share.path().join("big"), vec![b'x'; 50_000]).unwrap();
    open(&mut u, 1, 3, "big", 0);
    assert_eq!(read(&mut u, 3).len(), 50_000);

    // A client that goes away mid-session frees what it held.
    let before_close = daemon.open_fds();
    drop(u);
    common::proc::wait_until("the closed session's descriptors to go", || {
        daemon.open_fds() < before_close - 2
    });
    // The other session is unaffected.
    assert_eq!(read(&mut t, 2), b"tcp!!");
}

#[test]
fn bad_listen_addresses_are_refused_in_one_line() {
    let share = tempfile::tempdir().unwrap();
    for bad in ["udp:1", "tcp:host", "unix:"] {
        let out = Daemon::builder(share.path())
            .default_log_level()
            .args(["--listen", bad])
            .output();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--listen"), "{bad}: {err}");
    }
    // Neither a vhost-user socket nor a listener: nothing to serve.
    let out = Daemon::builder(share.path()).default_log_level().output();
    assert!(!out.status.success());
}

#[test]
fn sigterm_removes_the_sockets_and_exits_zero() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let unix = sock_dir.path().join("9p.sock");
    let vhost = sock_dir.path().join("vhost.sock");
    let mut daemon = Daemon::builder(share.path())
        .listen_unix(&unix)
        .socket_path(&vhost)
        .tag("t")
        .start();
    assert!(unix.exists() && vhost.exists());
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(daemon.pid() as i32, libc::SIGTERM) }, 0);
    let status = daemon.wait();
    assert!(status.success(), "{status}");
    assert!(
        !unix.exists() && !vhost.exists(),
        "socket files left behind"
    );
}

/// The daemon started through `prlimit --nofile=SOFT:HARD` with `args`,
/// serving 9P on `sock`.
fn start_with_nofile(share: &Path, sock: &Path, nofile: &str, args: &[&str]) -> Daemon {
    Daemon::builder(share)
        .wrapper("prlimit", [format!("--nofile={nofile}")])
        .listen_unix(sock)
        .arg("--no-root-squash")
        .args(args)
        .start()
}

/// (soft, hard) open file limits of a process, from /proc/PID/limits.
fn nofile_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut numbers = line["Max open files".len()..]
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

#[test]
fn the_open_file_limit_is_raised_at_start_unless_told_not_to() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["--rlimit-nofile", "0"][..]] {
        let sock = sock_dir.path().join("9p.sock");
        let daemon = start_with_nofile(share.path(), &sock, "128:4096", args);
        wait_for("a connection", || UnixStream::connect(&sock).ok());
        let (soft, hard) = nofile_limits(daemon.serving_pid());
        if args.is_empty() {
            // Up to 1,000,000 where the hard limit may be raised (with
            // CAP_SYS_RESOURCE), else up to the hard limit.
            assert!(soft >= 4096 && soft == hard.min(1_000_000), "{soft} {hard}");
        } else {
            assert_eq!((soft, hard), (128, 4096));
        }
        drop(daemon);
        let _ = std::fs::remove_file(&sock);
    }
}

fn walk_to<S: Read + Write>(client: &mut Conn<S>, newfid: u32, path: &[&str]) {
    client.walk(1, newfid, path);
}

/// The inode number (qid.path) and link count Tgetattr gives, or its errno.
fn getattr<S: Read + Write>(client: &mut Conn<S>, fid: u32) -> Result<(u64, u64), u32> {
    match client.try_getattr(fid, GETATTR_ALL) {
        Ok(a) => Ok((a.qid.path, a.nlink)),
        Err(e) => Err(e.0),
    }
}

fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::symlink_metadata(path).unwrap())
}

/// A share of `count` files `fI` holding "file I".
fn share_with_files(count: usize) -> tempfile::TempDir {
    let share = tempfile::tempdir().unwrap();
    for i in 0..count {
        let path = share.path().join(format!("f{i}"));
        std::fs::write(path, format!("file {i}")).unwrap();
    }
    share
}

#[test]
fn a_client_can_hold_more_fids_than_the_daemon_has_descriptors() {
    let share = share_with_files(400);
    let root = share.path();
    std::fs::create_dir(root.join("d")).unwrap();
    std::fs::write(root.join("d/passwd"), "not the host's").unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("9p.sock");
    // 128 descriptors in all: the fids may hold 64.
    let daemon = start_with_nofile(root, &sock, "128:128", &["--rlimit-nofile", "0"]);
    let mut client = Client::stream(wait_for("a connection", || UnixStream::connect(&sock).ok()));
    attach(&mut client, 1);

    // Fids walked (and one opened) first, to be changed on the host later.
    let (renamed, replaced, kept, unlinked, beneath) = (10, 11, 12, 13, 14);
    walk_to(&mut client, renamed, &["f0"]);
    walk_to(&mut client, replaced, &["f1"]);
    walk_to(&mut client, kept, &["f2"]);
    open(&mut client, 1, unlinked, "f3", 0);
    walk_to(&mut client, beneath, &["d", "passwd"]);
    let kept_ino = inode(&root.join("f2"));
    let unlinked_ino = inode(&root.join("f3"));
    // 400 more, each its own file: past the limit unless idle fids'
    // descriptors are closed (EMFILE otherwise).
    for i in 0..400 {
        walk_to(&mut client, 100 + i, &[&format!("f{i}")]);
    }
    let fds = daemon.open_fds();
    assert!(fds <= 128, "{fds} descriptors open");

    // Every fid still reaches its own file.
    for i in 0..400 {
        let ino = inode(&root.join(format!("f{i}")));
        assert_eq!(getattr(&mut client, 100 + i), Ok((ino, 1)), "f{i}");
    }
    // Host changes behind closed descriptors: a file renamed is gone, one
    // replaced is another file (ESTALE, not the new file's attributes),
    // and a directory swapped for a symlink out of the share is not
    // followed.
    std::fs::rename(root.join("f0"), root.join("g0")).unwrap();
    std::fs::remove_file(root.join("f1")).unwrap();
    std::fs::write(root.join("f1"), "new").unwrap();
    std::fs::rename(root.join("d"), root.join("d.old")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("d")).unwrap();
    std::fs::remove_file(root.join("f3")).unwrap();
    for i in 0..200 {
        walk_to(&mut client, 1000 + i, &[&format!("f{}", 200 + i)]);
    }
    assert_eq!(getattr(&mut client, renamed), Err(libc::ENOENT as u32));
    assert_eq!(getattr(&mut client, replaced), Err(libc::ESTALE as u32));
    assert_eq!(getattr(&mut client, beneath), Err(libc::ELOOP as u32));
    assert_eq!(getattr(&mut client, kept), Ok((kept_ino, 1)));
    // An open fid works on through its open descriptor, unlinked or not.
    assert_eq!(getattr(&mut client, unlinked), Ok((unlinked_ino, 0)));
    assert_eq!(read(&mut client, unlinked), b"file 3");

    // Clunked fids give their descriptors back.
    for fid in (100..500).chain(1000..1200) {
        client.clunk(fid);
    }
    let fds = daemon.open_fds();
    assert!(fds < 40, "{fds} descriptors open after the clunks");
}

/// A 9P2000 stat's qid.path, or the Rerror's text.
fn stat_9p2000<S: Read + Write>(client: &mut Conn<S>, fid: u32) -> Result<u64, String> {
    let m = T::new(TSTAT, client.tag()).u32(fid).done();
    let reply = client.raw(&m);
    assert_eq!(reply[5..7], m[5..7], "reply tag");
    match reply[4] {
        RERROR => Err(String::from_utf8_lossy(Dec::new(&reply[7..]).str_bytes()).into()),
        ty if ty == TSTAT + 1 => Ok(Stat::parse_rstat(&reply[7..]).qid.path),
        ty => panic!("Tstat: reply type {ty}: {reply:?}"),
    }
}

#[test]
fn a_9p2000_client_can_hold_more_fids_than_the_daemon_has_descriptors() {
    // 9P2000 walks follow symlinks: a fid's descriptor closed while idle
    // is found again by its path, following them inside the share.
    let share = share_with_files(300);
    let root = share.path();
    for dir in ["d", "e"] {
        std::fs::create_dir(root.join(dir)).unwrap();
        std::fs::write(root.join(dir).join("x"), dir).unwrap();
    }
    std::os::unix::fs::symlink("d", root.join("rel")).unwrap();
    std::os::unix::fs::symlink("/d", root.join("abs")).unwrap();
    std::os::unix::fs::symlink("f5", root.join("link")).unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("9p.sock");
    let daemon = start_with_nofile(root, &sock, "128:128", &["--rlimit-nofile", "0"]);
    let mut client = Client::stream(wait_for("a connection", || UnixStream::connect(&sock).ok()));
    client.version(65536, "9P2000");
    client.attach(1, "u", "", None);

    let (relative, absolute, link) = (10, 11, 12);
    walk_to(&mut client, relative, &["rel", "x"]);
    walk_to(&mut client, absolute, &["abs", "x"]);
    walk_to(&mut client, link, &["link"]);
    for i in 0..300 {
        walk_to(&mut client, 100 + i, &[&format!("f{i}")]);
    }
    let fds = daemon.open_fds();
    assert!(fds <= 128, "{fds} descriptors open");
    for i in 0..300 {
        let ino = inode(&root.join(format!("f{i}")));
        assert_eq!(stat_9p2000(&mut client, 100 + i), Ok(ino), "f{i}");
    }
    assert_eq!(
        stat_9p2000(&mut client, relative),
        Ok(inode(&root.join("d/x")))
    );
    assert_eq!(
        stat_9p2000(&mut client, absolute),
        Ok(inode(&root.join("d/x")))
    );
    assert_eq!(stat_9p2000(&mut client, link), Ok(inode(&root.join("f5"))));

    // A symlink on the way now leads elsewhere: that is another file.
    std::fs::remove_file(root.join("rel")).unwrap();
    std::os::unix::fs::symlink("e", root.join("rel")).unwrap();
    for i in 0..300 {
        walk_to(&mut client, 1000 + i, &[&format!("f{i}")]);
    }
    let stale = error_text(libc::ESTALE);
    assert_eq!(stat_9p2000(&mut client, relative), Err(stale));
    assert_eq!(
        stat_9p2000(&mut client, absolute),
        Ok(inode(&root.join("d/x")))
    );
    assert_eq!(stat_9p2000(&mut client, link), Ok(inode(&root.join("f5"))));
    assert!(daemon.open_fds() <= 128);
}

#[test]
fn an_explicit_open_file_limit_is_set_or_refused_in_one_line() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("9p.sock");
    let daemon = start_with_nofile(share.path(), &sock, "128:4096", &["--rlimit-nofile", "300"]);
    wait_for("a connection", || UnixStream::connect(&sock).ok());
    assert_eq!(nofile_limits(daemon.serving_pid()), (300, 300));
    drop(daemon);

    // More than the kernel allows any process (fs.nr_open).
    let out = Daemon::builder(share.path())
        .default_log_level()
        .listen_unix(&sock)
        .args(["--rlimit-nofile", "4294967296"])
        .output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--rlimit-nofile 4294967296"), "{err}");
}
