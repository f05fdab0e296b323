//! The socket transports (`--listen unix:PATH`, `--listen tcp:HOST:PORT`)
//! through the real daemon: independent sessions per connection, data both
//! ways, resources released when a client goes away.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;

mod common;
use common::serving_pid;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        common::stop(&mut self.0);
    }
}

impl Daemon {
    fn start(share: &Path, listen: &[&str]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vhost-user-9p"));
        cmd.arg("--shared-dir")
            .arg(share)
            .args(["--log-level", "warn"])
            // The client attaches as root, also over TCP.
            .args(["--no-auth", "--no-root-squash"]);
        for l in listen {
            cmd.arg("--listen").arg(l);
        }
        Daemon(cmd.stdin(Stdio::null()).spawn().expect("start the daemon"))
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", serving_pid(self.0.id())))
            .unwrap()
            .count()
    }
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal 9P2000.L client over any stream.
struct Client<S: Read + Write> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    fn new(stream: S) -> Self {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a request (with `data` after its fixed fields) and returns the reply frame.
    fn rpc(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        msg.encode(7, &mut out);
        out.extend_from_slice(data);
        patch_size(&mut out, 0);
        self.stream.write_all(&out).unwrap();
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        self.buf = size.to_vec();
        self.buf.resize(u32::from_le_bytes(size) as usize, 0);
        self.stream.read_exact(&mut self.buf[4..]).unwrap();
        assert_eq!(Header::parse(&self.buf).unwrap().tag, 7);
        self.buf.clone()
    }

    fn ok(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Vec<u8> {
        let frame = self.rpc(msg, data);
        if let Ok((_, Rmessage::Lerror(e))) = decode_rmessage(&frame) {
            panic!("{msg:?}: Rlerror {}", e.ecode);
        }
        frame
    }

    fn attach(&mut self, fid: u32) {
        self.ok(
            Tmessage::Version(Tversion {
                msize: 65536,
                version: "9P2000.L".into(),
            }),
            &[],
        );
        self.ok(
            Tmessage::Attach(Tattach {
                fid,
                afid: NOFID,
                uname: "u".into(),
                aname: "".into(),
                n_uname: Some(0),
            }),
            &[],
        );
    }

    fn open(&mut self, root: u32, fid: u32, name: &str, flags: u32) {
        let names = [Str::from(name)];
        self.ok(
            Tmessage::Walk(Twalk {
                fid: root,
                newfid: fid,
                names: WalkList::from_slice(&names).unwrap(),
            }),
            &[],
        );
        self.ok(Tmessage::Lopen(Tlopen { fid, flags }), &[]);
    }

    fn read(&mut self, fid: u32) -> Vec<u8> {
        let frame = self.ok(
            Tmessage::Read(Tread {
                fid,
                offset: 0,
                count: 60000,
            }),
            &[],
        );
        frame[RREAD_HEADER_SIZE..].to_vec()
    }
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
    let daemon = Daemon::start(
        share.path(),
        &[&format!("unix:{}", sock.display()), &format!("tcp:{port}")],
    );
    let unix = wait_for(|| UnixStream::connect(&sock).ok());
    let tcp = wait_for(|| TcpStream::connect(("127.0.0.1", port)).ok());
    let mut u = Client::new(unix);
    let mut t = Client::new(tcp);
    // The same fid numbers in both sessions name different things.
    u.attach(1);
    t.attach(1);
    u.open(1, 2, "a.txt", 0);
    t.ok(
        Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 2,
            names: WalkList::new(),
        }),
        &[],
    );
    t.ok(
        Tmessage::Lcreate(Tlcreate {
            fid: 2,
            name: "new.txt".into(),
            flags: 2,
            mode: 0o644,
            gid: 0,
        }),
        &[],
    );
    t.ok(
        Tmessage::Write(Twrite {
            fid: 2,
            offset: 0,
            count: 5,
        }),
        b"tcp!!",
    );
    assert_eq!(u.read(2), b"alpha");
    assert_eq!(t.read(2), b"tcp!!");
    assert_eq!(
        std::fs::read_to_string(share.path().join("new.txt")).unwrap(),
        "tcp!!"
    );
    // A large read crosses several socket reads.
    std::fs::write(share.path().join("big"), vec![b'x'; 50_000]).unwrap();
    u.open(1, 3, "big", 0);
    assert_eq!(u.read(3).len(), 50_000);

    // A client that goes away mid-session frees what it held.
    let before_close = daemon.open_fds();
    drop(u);
    wait_for(|| (daemon.open_fds() < before_close - 2).then_some(()));
    // The other session is unaffected.
    assert_eq!(t.read(2), b"tcp!!");
}

#[test]
fn bad_listen_addresses_are_refused_in_one_line() {
    let share = tempfile::tempdir().unwrap();
    for bad in ["udp:1", "tcp:host", "unix:"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vhost-user-9p"))
            .arg("--shared-dir")
            .arg(share.path())
            .args(["--listen", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--listen"), "{bad}: {err}");
    }
    // Neither a vhost-user socket nor a listener: nothing to serve.
    let out = Command::new(env!("CARGO_BIN_EXE_vhost-user-9p"))
        .arg("--shared-dir")
        .arg(share.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn sigterm_removes_the_sockets_and_exits_zero() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let unix = sock_dir.path().join("9p.sock");
    let vhost = sock_dir.path().join("vhost.sock");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_vhost-user-9p"))
        .arg("--shared-dir")
        .arg(share.path())
        .arg("--listen")
        .arg(format!("unix:{}", unix.display()))
        .arg("--socket-path")
        .arg(&vhost)
        .args(["--tag", "t", "--log-level", "warn"])
        .spawn()
        .unwrap();
    wait_for(|| (unix.exists() && vhost.exists()).then_some(()));
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) }, 0);
    let status = daemon.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !unix.exists() && !vhost.exists(),
        "socket files left behind"
    );
}

/// The daemon started through `prlimit --nofile=SOFT:HARD` with `args`,
/// serving 9P on `sock`.
fn start_with_nofile(share: &Path, sock: &Path, nofile: &str, args: &[&str]) -> Daemon {
    let child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_vhost-user-9p"))
        .arg("--shared-dir")
        .arg(share)
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .args(["--log-level", "warn", "--no-root-squash"])
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the daemon through prlimit (util-linux)");
    Daemon(child)
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
        wait_for(|| UnixStream::connect(&sock).ok());
        let (soft, hard) = nofile_limits(serving_pid(daemon.0.id()));
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

/// Sends `msg`; the reply, or the Rlerror's errno.
fn call<S: Read + Write>(client: &mut Client<S>, msg: Tmessage<'_>) -> Result<Vec<u8>, u32> {
    let frame = client.rpc(msg, &[]);
    match decode_rmessage(&frame) {
        Ok((_, Rmessage::Lerror(e))) => Err(e.ecode),
        _ => Ok(frame),
    }
}

fn walk_to<S: Read + Write>(client: &mut Client<S>, newfid: u32, path: &[&str]) {
    let names: Vec<Str<'_>> = path.iter().map(|n| Str::from(*n)).collect();
    let walk = Twalk {
        fid: 1,
        newfid,
        names: WalkList::from_slice(&names).unwrap(),
    };
    call(client, Tmessage::Walk(walk)).unwrap_or_else(|e| panic!("walk {path:?}: errno {e}"));
}

/// The inode number (qid.path) and link count Tgetattr gives, or its errno.
fn getattr<S: Read + Write>(client: &mut Client<S>, fid: u32) -> Result<(u64, u64), u32> {
    let frame = call(
        client,
        Tmessage::Getattr(Tgetattr {
            fid,
            request_mask: 0x3fff,
        }),
    )?;
    match decode_rmessage(&frame) {
        Ok((_, Rmessage::Getattr(a))) => Ok((a.qid.path, a.nlink)),
        other => panic!("Tgetattr: {other:?}"),
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
    let mut client = Client::new(wait_for(|| UnixStream::connect(&sock).ok()));
    client.attach(1);

    // Fids walked (and one opened) first, to be changed on the host later.
    let (renamed, replaced, kept, unlinked, beneath) = (10, 11, 12, 13, 14);
    walk_to(&mut client, renamed, &["f0"]);
    walk_to(&mut client, replaced, &["f1"]);
    walk_to(&mut client, kept, &["f2"]);
    client.open(1, unlinked, "f3", 0);
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
    assert_eq!(client.read(unlinked), b"file 3");

    // Clunked fids give their descriptors back.
    for fid in (100..500).chain(1000..1200) {
        call(&mut client, Tmessage::Clunk(Tclunk { fid })).unwrap();
    }
    let fds = daemon.open_fds();
    assert!(fds < 40, "{fds} descriptors open after the clunks");
}

/// A 9P2000 stat's qid.path, or the Rerror's text.
fn stat_9p2000<S: Read + Write>(client: &mut Client<S>, fid: u32) -> Result<u64, String> {
    let frame = client.rpc(Tmessage::Stat(Tstat { fid }), &[]);
    match decode_rmessage(&frame) {
        Ok((_, Rmessage::Stat(r))) => Ok(r.stat.0.qid.path),
        Ok((_, Rmessage::Error(e))) => Err(String::from_utf8_lossy(e.ename.as_bytes()).into()),
        other => panic!("Tstat: {other:?}"),
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
    let mut client = Client::new(wait_for(|| UnixStream::connect(&sock).ok()));
    let version = Tversion {
        msize: 65536,
        version: "9P2000".into(),
    };
    client.ok(Tmessage::Version(version), &[]);
    let attach = Tattach {
        fid: 1,
        afid: NOFID,
        uname: "u".into(),
        aname: "".into(),
        n_uname: None,
    };
    client.ok(Tmessage::Attach(attach), &[]);

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
    let stale = io_error_text(libc::ESTALE);
    assert_eq!(stat_9p2000(&mut client, relative), Err(stale));
    assert_eq!(
        stat_9p2000(&mut client, absolute),
        Ok(inode(&root.join("d/x")))
    );
    assert_eq!(stat_9p2000(&mut client, link), Ok(inode(&root.join("f5"))));
    assert!(daemon.open_fds() <= 128);
}

/// The text 9P2000 sends for an errno ("Stale file handle").
fn io_error_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    text[..text.find(" (os error").unwrap()].to_string()
}

#[test]
fn an_explicit_open_file_limit_is_set_or_refused_in_one_line() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("9p.sock");
    let daemon = start_with_nofile(share.path(), &sock, "128:4096", &["--rlimit-nofile", "300"]);
    wait_for(|| UnixStream::connect(&sock).ok());
    assert_eq!(nofile_limits(serving_pid(daemon.0.id())), (300, 300));
    drop(daemon);

    // More than the kernel allows any process (fs.nr_open).
    let out = Command::new(env!("CARGO_BIN_EXE_vhost-user-9p"))
        .arg("--shared-dir")
        .arg(share.path())
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .args(["--rlimit-nofile", "4294967296"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--rlimit-nofile 4294967296"), "{err}");
}
