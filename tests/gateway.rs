//! The gateway (`--upstream`): an upstream daemon (or diod) serves a host
//! directory on a unix socket, a gateway daemon serves that tree on its own
//! `--listen` socket (or a VM guest's device), and the crate's 9P client,
//! diod's clients and the Linux guest work through the gateway while the
//! test checks the host directory.

mod checks;
mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;
use vhost_user_9p::client::Client;
use vhost_user_9p::protocol::*;

#[path = "gateway/conn.rs"]
mod conn;
#[path = "gateway/control_hostile.rs"]
mod control_hostile;
#[path = "gateway/flush.rs"]
mod flush;
#[path = "gateway/plan9_upstream.rs"]
mod plan9_upstream;
#[path = "gateway/round_trips.rs"]
mod round_trips;

use conn::*;

/// An upstream daemon on a host directory and a gateway daemon to it.
/// (The gateway stops first: its upstream going is not what a test sees.)
struct Rig {
    share: tempfile::TempDir,
    gateway: Daemon,
    /// This daemon as the upstream (None: diod).
    upstream: Option<Daemon>,
    gateway_socket: PathBuf,
    /// diod as the upstream instead (`diod_rig`).
    diod: Option<common::daemon::Killed>,
    _dir: tempfile::TempDir,
}

fn rig(gateway_args: &[&str]) -> Rig {
    rig_with(&[], gateway_args)
}

/// `rig`, the upstream daemon given `upstream_args` too.
fn rig_with(upstream_args: &[&str], gateway_args: &[&str]) -> Rig {
    let share = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.sock");
    let gw = dir.path().join("gw.sock");
    let upstream = Daemon::builder(share.path())
        .listen_unix(&up)
        .args(["--sandbox", "none", "--no-root-squash", "--trace"])
        .args(upstream_args)
        .stderr_to_file()
        .start();
    let sandbox = match gateway_args.contains(&"--sandbox") {
        true => &[][..],
        false => &["--sandbox", "none"],
    };
    let mut gateway = Daemon::bare()
        .listen_unix(&gw)
        .arg("--upstream")
        .arg(format!("unix:{}", up.display()))
        .arg("--no-root-squash")
        .args(sandbox)
        .args(gateway_args);
    if gateway_args.contains(&"--trace") {
        gateway = gateway.stderr_to_file();
    }
    let gateway = gateway.start();
    Rig {
        share,
        upstream: Some(upstream),
        gateway,
        gateway_socket: gw,
        diod: None,
        _dir: dir,
    }
}

/// diod (`-n`, over a unix socket) as the upstream, exporting the share;
/// the gateway names it with `--upstream-aname` when `name_export`.
fn diod_rig(name_export: bool) -> Rig {
    let share = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("diod.sock");
    let gw = dir.path().join("gw.sock");
    let child = std::process::Command::new(diod_tool("diod"))
        .args(["-f", "-n", "-N", "-c", "/dev/null", "-L", "stderr"])
        .arg("-l")
        .arg(&up)
        .arg("-e")
        .arg(share.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let diod = common::daemon::Killed(child);
    common::proc::wait_for("diod's socket", || up.exists().then_some(()));
    let mut gateway = Daemon::bare()
        .listen_unix(&gw)
        .arg("--upstream")
        .arg(format!("unix:{}", up.display()))
        .args(["--sandbox", "none", "--no-root-squash"]);
    if name_export {
        gateway = gateway.arg("--upstream-aname").arg(share.path());
    }
    let gateway = gateway.start();
    Rig {
        share,
        upstream: None,
        gateway,
        gateway_socket: gw,
        diod: Some(diod),
        _dir: dir,
    }
}

impl Rig {
    fn host(&self, name: &str) -> PathBuf {
        self.share.path().join(name)
    }

    fn connect(&self) -> Conn {
        Conn::new(&self.gateway_socket)
    }

    /// The requests the upstream received, by type ("Twalk", ...), from
    /// its --trace.
    fn upstream_requests(&self) -> Vec<String> {
        self.upstream
            .as_ref()
            .expect("this daemon upstream")
            .log_text()
            .lines()
            .filter(|l| l.starts_with("<-"))
            .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
            .collect()
    }
}

#[test]
fn files_through_the_gateway_are_the_host_s() {
    exercise_files(&rig(&[]));
}

#[test]
fn a_gateway_in_a_namespace_sandbox_has_only_the_upstream_socket() {
    let rig = rig(&["--sandbox", "namespace"]);
    exercise_files(&rig);
    // Its root: an empty tmpfs with the upstream's socket at its path.
    let root = PathBuf::from(format!("/proc/{}/root", rig.gateway.serving_pid()));
    let mut found = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path.clone());
            } else {
                found.push(Path::new("/").join(path.strip_prefix(&root).unwrap()));
            }
        }
    }
    let socket = rig.upstream.as_ref().unwrap().unix_socket().canonicalize();
    assert_eq!(found, [socket.unwrap()]);
}

/// A TCP upstream reached from a namespace sandbox, which has no network:
/// its connections are made before the sandbox, and its root holds
/// nothing at all.
#[test]
fn a_gateway_in_a_namespace_sandbox_serves_a_tcp_upstream() {
    let share = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let _upstream = Daemon::builder(share.path())
        .args(["--listen", &format!("tcp:{address}"), "--no-auth"])
        .args(["--sandbox", "none", "--no-root-squash"])
        .start();
    common::proc::wait_for("the upstream's port", || {
        std::net::TcpStream::connect(&address).ok()
    });
    let gw = dir.path().join("gw.sock");
    let gateway = Daemon::bare()
        .listen_unix(&gw)
        .args(["--upstream", &format!("tcp:{address}"), "--no-root-squash"])
        .start();
    std::fs::write(share.path().join("f"), "over tcp").unwrap();
    let mut c = Conn::new(&gw);
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["f"]), Ok(1));
    c.lopen(2, O_RDONLY).unwrap();
    assert_eq!(c.read_all(2), b"over tcp");
    c.lcreate(1, "made", 0o644).unwrap();
    assert!(share.path().join("made").exists());
    // Confined: in a network namespace of its own, an empty root.
    let pid = gateway.serving_pid();
    let ns = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap();
    assert_ne!(ns(pid), ns(std::process::id()));
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(path.is_dir(), "a file in its root: {}", path.display());
            dirs.push(path);
        }
    }
}

#[test]
fn files_through_the_gateway_are_the_host_s_with_diod_upstream() {
    exercise_files(&diod_rig(true));
}

/// Attach, walk, getattr, read, create, write, setattr, xattrs, a lock,
/// mkdir, symlink, readlink, renameat, unlinkat, statfs through the
/// gateway, each checked against the host directory.
fn exercise_files(rig: &Rig) {
    std::fs::write(rig.host("hello.txt"), "hello from the host\n").unwrap();
    std::fs::create_dir(rig.host("dir")).unwrap();
    let mut c = rig.connect();
    c.attach(1);
    // walk, getattr, read
    assert_eq!(c.walk(1, 2, &["hello.txt"]), Ok(1));
    let attr = c.getattr(2).unwrap();
    assert_eq!(attr.size, 20);
    let host = std::fs::metadata(rig.host("hello.txt")).unwrap();
    assert_eq!(attr.mode & 0o7777, host.permissions().mode() & 0o7777);
    c.lopen(2, O_RDONLY).unwrap();
    assert_eq!(c.read_all(2), b"hello from the host\n");
    c.clunk(2).unwrap();
    assert_eq!(c.getattr(2), Err(libc::EBADF), "a clunked fid is gone");
    assert_eq!(c.walk(1, 3, &["missing"]), Err(libc::ENOENT));

    // create and write
    assert_eq!(c.walk(1, 3, &["dir"]), Ok(1));
    c.lcreate(3, "new.txt", 0o640).unwrap();
    assert_eq!(c.write(3, 0, b"written through the gateway"), Ok(27));
    c.clunk(3).unwrap();
    assert_eq!(
        std::fs::read(rig.host("dir/new.txt")).unwrap(),
        b"written through the gateway"
    );
    // setattr: chmod and truncate
    assert_eq!(c.walk(1, 4, &["dir", "new.txt"]), Ok(2));
    let setattr = Tsetattr {
        fid: 4,
        valid: 0x1 | 0x8, // mode, size
        mode: 0o600,
        uid: 0,
        gid: 0,
        size: 7,
        atime_sec: 0,
        atime_nsec: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    c.call(Tmessage::Setattr(setattr)).unwrap();
    let meta = std::fs::metadata(rig.host("dir/new.txt")).unwrap();
    assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (7, 0o600));
    // xattr set and get
    let xattr = Txattrcreate {
        fid: 4,
        name: "user.gateway".into(),
        attr_size: 5,
        flags: 0,
    };
    c.call(Tmessage::Xattrcreate(xattr)).unwrap();
    assert_eq!(c.write(4, 0, b"value"), Ok(5));
    c.clunk(4).unwrap();
    assert_eq!(c.walk(1, 5, &["dir", "new.txt"]), Ok(2));
    let xattrwalk = Txattrwalk {
        fid: 5,
        newfid: 6,
        name: "user.gateway".into(),
    };
    let Ok(Rmessage::Xattrwalk(r)) = c.call(Tmessage::Xattrwalk(xattrwalk)) else {
        panic!("no Rxattrwalk");
    };
    assert_eq!(r.size, 5);
    assert_eq!(c.read_all(6), b"value");
    c.clunk(6).unwrap();
    // a POSIX lock, and another session sees it
    c.lopen(5, O_RDWR).unwrap();
    let lock = Tlock {
        fid: 5,
        lock_type: 1, // write
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 42,
        client_id: "gateway-test".into(),
    };
    assert!(matches!(
        c.call(Tmessage::Lock(lock)),
        Ok(Rmessage::Lock(Rlock { status: 0 }))
    ));
    // (diod's locks are one process's POSIX locks: another of its fids
    // sees none of them.)
    if rig.diod.is_none() {
        let mut other = rig.connect();
        other.attach(1);
        assert_eq!(other.walk(1, 2, &["dir", "new.txt"]), Ok(2));
        other.lopen(2, O_RDWR).unwrap();
        let getlock = Tgetlock {
            fid: 2,
            lock_type: 1,
            start: 0,
            length: 0,
            proc_id: 7,
            client_id: "other".into(),
        };
        let Ok(Rmessage::Getlock(r)) = other.call(Tmessage::Getlock(getlock)) else {
            panic!("no Rgetlock");
        };
        assert_eq!((r.lock_type, r.proc_id), (1, 42), "{r:?}");
    }
    c.clunk(5).unwrap();

    // mkdir, symlink, readlink, rename, unlink
    let gid = unsafe { libc::getegid() };
    let mkdir = Tmkdir {
        dfid: 1,
        name: "made".into(),
        mode: 0o755,
        gid,
    };
    c.call(Tmessage::Mkdir(mkdir)).unwrap();
    assert!(rig.host("made").is_dir());
    let symlink = Tsymlink {
        fid: 1,
        name: "link".into(),
        symtgt: "dir/new.txt".into(),
        gid,
    };
    c.call(Tmessage::Symlink(symlink)).unwrap();
    assert_eq!(
        std::fs::read_link(rig.host("link")).unwrap(),
        Path::new("dir/new.txt")
    );
    assert_eq!(c.walk(1, 7, &["link"]), Ok(1));
    let Ok(Rmessage::Readlink(r)) = c.call(Tmessage::Readlink(Treadlink { fid: 7 })) else {
        panic!("no Rreadlink");
    };
    assert_eq!(r.target.0, b"dir/new.txt");
    c.clunk(7).unwrap();
    assert_eq!(c.walk(1, 8, &["made"]), Ok(1));
    let renameat = Trenameat {
        olddirfid: 1,
        oldname: "hello.txt".into(),
        newdirfid: 8,
        newname: "moved.txt".into(),
    };
    match c.call(Tmessage::Renameat(renameat)).map(|_| ()) {
        // diod has no Trenameat: Linux then sends Trename.
        Err(libc::EOPNOTSUPP) if rig.diod.is_some() => {
            assert_eq!(c.walk(1, 9, &["hello.txt"]), Ok(1));
            let rename = Trename {
                fid: 9,
                dfid: 8,
                name: "moved.txt".into(),
            };
            c.call(Tmessage::Rename(rename)).unwrap();
            c.clunk(9).unwrap();
        }
        other => other.unwrap(),
    }
    assert!(!rig.host("hello.txt").exists());
    assert_eq!(
        std::fs::read(rig.host("made/moved.txt")).unwrap(),
        b"hello from the host\n"
    );
    let unlinkat = Tunlinkat {
        dirfid: 8,
        name: "moved.txt".into(),
        flags: 0,
    };
    match c.call(Tmessage::Unlinkat(unlinkat)).map(|_| ()) {
        // diod has no Tunlinkat: Linux then sends Tremove.
        Err(libc::EOPNOTSUPP) if rig.diod.is_some() => {
            assert_eq!(c.walk(8, 9, &["moved.txt"]), Ok(1));
            c.call(Tmessage::Remove(Tremove { fid: 9 })).unwrap();
            assert_eq!(c.getattr(9), Err(libc::EBADF), "a removed fid is gone");
        }
        other => other.unwrap(),
    }
    assert!(!rig.host("made/moved.txt").exists());
    // statfs and fsync go through too
    assert!(matches!(
        c.call(Tmessage::Statfs(Tstatfs { fid: 1 })),
        Ok(Rmessage::Statfs(_))
    ));
    drop(c);
    assert!(rig.gateway_alive());
}

impl Rig {
    fn gateway_alive(&self) -> bool {
        // SAFETY: signal 0 checks the process exists.
        unsafe { libc::kill(self.gateway.pid() as i32, 0) == 0 }
    }
}

#[test]
fn a_readdir_of_1000_entries_lists_the_host_directory() {
    let rig = rig(&[]);
    std::fs::create_dir(rig.host("many")).unwrap();
    for i in 0..1000 {
        std::fs::write(
            rig.host(&format!("many/entry-{i:04}-{}", "x".repeat(i % 40))),
            "",
        )
        .unwrap();
    }
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["many"]), Ok(1));
    c.lopen(2, O_RDONLY | O_DIRECTORY).unwrap();
    let listed: Vec<String> = c.readdir_all(2);
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), 1000, "no entry twice");
    let host: BTreeSet<String> = std::fs::read_dir(rig.host("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed_set, host);
}

#[test]
fn a_read_only_gateway_refuses_changes_with_erofs() {
    let rig = rig(&["--readonly"]);
    std::fs::write(rig.host("kept.txt"), "original").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["kept.txt"]), Ok(1));
    assert_eq!(c.lopen(2, O_RDWR), Err(libc::EROFS));
    assert_eq!(c.lcreate(1, "new.txt", 0o644), Err(libc::EROFS));
    let unlinkat = Tunlinkat {
        dirfid: 1,
        name: "kept.txt".into(),
        flags: 0,
    };
    assert_eq!(
        c.call(Tmessage::Unlinkat(unlinkat)).map(|_| ()),
        Err(libc::EROFS)
    );
    // A refused Tremove still clunks its fid (remove(5)): the number is
    // free again.
    assert_eq!(c.walk(1, 3, &["kept.txt"]), Ok(1));
    let remove = Tmessage::Remove(Tremove { fid: 3 });
    assert_eq!(c.call(remove).map(|_| ()), Err(libc::EROFS));
    assert_eq!(c.walk(1, 3, &["kept.txt"]), Ok(1));
    // Reading still works.
    c.lopen(2, O_RDONLY).unwrap();
    assert_eq!(c.read_all(2), b"original");
    assert_eq!(std::fs::read(rig.host("kept.txt")).unwrap(), b"original");
    assert!(!rig.host("new.txt").exists());
}

#[test]
fn each_guest_request_is_one_upstream_request_and_fids_are_clunked_at_the_end() {
    let rig = rig(&[]);
    std::fs::write(rig.host("f"), "data").unwrap();
    // The gateway's own Tversion, once.
    common::proc::wait_for("the gateway's Tversion", || {
        (!rig.upstream_requests().is_empty()).then_some(())
    });
    let before = rig.upstream_requests();
    assert_eq!(before, ["Tversion"], "{before:?}");
    let mut c = rig.connect();
    c.attach(1); // Tattach
    c.walk(1, 2, &["f"]).unwrap(); // Twalk
    c.getattr(2).unwrap(); // Tgetattr
    c.lopen(2, O_RDONLY).unwrap(); // Tlopen
    assert_eq!(c.read_all(2), b"data"); // Tread x2
    c.walk(1, 3, &[]).unwrap(); // Twalk (a clone)
    let after: Vec<String> = rig.upstream_requests()[1..].to_vec();
    assert_eq!(
        after,
        ["Tattach", "Twalk", "Tgetattr", "Tlopen", "Tread", "Tread", "Twalk"]
    );
    // Tversion again: the session's three fids are clunked upstream.
    c.client.version(MSIZE, Dialect::Linux).unwrap();
    let clunks = || {
        rig.upstream_requests()
            .iter()
            .filter(|r| *r == "Tclunk")
            .count()
    };
    common::proc::wait_for("3 Tclunk upstream", || (clunks() == 3).then_some(()));
    // Fids of a session that ends are clunked too.
    c.attach(1);
    c.walk(1, 2, &["f"]).unwrap();
    drop(c);
    common::proc::wait_for("5 Tclunk upstream", || (clunks() == 5).then_some(()));
}

/// A guest's Tattach with its own uname and aname.
fn attach_as(c: &mut Conn, uname: &str, aname: &str) -> Result<(), i32> {
    c.call(Tmessage::Attach(Tattach {
        fid: 1,
        afid: NOFID,
        uname: uname.into(),
        aname: aname.into(),
        n_uname: Some(uid()),
    }))
    .map(|_| ())
}

#[test]
fn a_guest_s_aname_and_uname_never_reach_the_upstream() {
    // This daemon upstream, tracing: the Tattach it gets names the
    // attaching uid's user and no export, whatever the guest said.
    let rig = rig(&[]);
    let mut c = rig.connect();
    attach_as(&mut c, "mallory", "/etc").unwrap();
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let user = String::from_utf8(id.stdout).unwrap();
    let user = user.trim();
    let attach = rig
        .upstream
        .as_ref()
        .unwrap()
        .log_text()
        .lines()
        .find(|l| l.contains(" Tattach "))
        .map(String::from)
        .expect("a Tattach upstream");
    assert!(
        attach.contains(&format!(" uname {user} aname  n_uname ")),
        "{attach}"
    );
    // --upstream-uname names the user by number too (an upstream goes by
    // the number), whatever number the guest gave.
    let rig_named = self::rig(&["--upstream-uname", "nobody"]);
    let mut c = rig_named.connect();
    attach_as(&mut c, "root", "").unwrap();
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody = String::from_utf8(nobody.stdout).unwrap();
    let log = rig_named.upstream.as_ref().unwrap().log_text();
    assert!(
        log.contains(&format!(" uname nobody aname  n_uname {}", nobody.trim())),
        "{log}"
    );
    // diod upstream, which serves an export by its aname: a guest naming
    // the exported directory is refused (the gateway names none) ...
    let rig = diod_rig(false);
    std::fs::write(rig.host("secret.txt"), "s").unwrap();
    let mut c = rig.connect();
    let export = rig.share.path().to_str().unwrap().to_string();
    assert_eq!(attach_as(&mut c, "root", &export), Err(libc::EPERM));
    // ... and with --upstream-aname the guest gets that export, whatever
    // it names.
    let rig = diod_rig(true);
    std::fs::write(rig.host("public.txt"), "p").unwrap();
    let mut c = rig.connect();
    attach_as(&mut c, "root", "/").unwrap();
    c.walk(1, 2, &[]).unwrap();
    c.lopen(2, O_RDONLY | O_DIRECTORY).unwrap();
    assert_eq!(c.readdir_all(2), ["public.txt"]);
}

/// --uid-map and --gid-map apply to the upstream's files as to a
/// directory's: owners shown through them, set through them (EINVAL for
/// ids they do not map), a guest user they do not map refused at attach;
/// 9P2000 and 9P2000.u clients, whose ids would pass unmapped, are
/// answered "unknown".
#[test]
fn id_maps_apply_to_the_upstream_s_files() {
    let rig = rig(&[
        "--uid-map",
        ":0:0:1:",
        "--uid-map",
        ":5000:1234:10:",
        "--gid-map",
        ":0:0:1:",
        "--gid-map",
        ":5000:1234:10:",
    ]);
    std::fs::write(rig.host("mapped"), "x").unwrap();
    std::os::unix::fs::chown(rig.host("mapped"), Some(1234), Some(1235)).unwrap();
    std::fs::write(rig.host("unmapped"), "x").unwrap();
    std::os::unix::fs::chown(rig.host("unmapped"), Some(999), Some(999)).unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["mapped"]), Ok(1));
    let a = c.getattr(2).unwrap();
    assert_eq!((a.uid, a.gid), (5000, 5001));
    assert_eq!(c.walk(1, 3, &["unmapped"]), Ok(1));
    let a = c.getattr(3).unwrap();
    assert_eq!((a.uid, a.gid), (65534, 65534));
    let chown = |uid: u32, gid: u32| Tsetattr {
        fid: 2,
        valid: 0x2 | 0x4,
        mode: 0,
        uid,
        gid,
        size: 0,
        atime_sec: 0,
        atime_nsec: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    c.call(Tmessage::Setattr(chown(5009, 5008))).unwrap();
    let meta = std::fs::metadata(rig.host("mapped")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (1243, 1242));
    let unmapped = c.call(Tmessage::Setattr(chown(7777, 5000))).map(drop);
    assert_eq!(unmapped, Err(libc::EINVAL));
    assert_eq!(c.walk(1, 4, &[]), Ok(0));
    let create = Tlcreate {
        fid: 4,
        name: "made".into(),
        flags: O_RDWR,
        mode: 0o644,
        gid: 5003,
    };
    c.call(Tmessage::Lcreate(create)).unwrap();
    assert_eq!(std::fs::metadata(rig.host("made")).unwrap().gid(), 1237);
    // A guest user the map does not cover.
    let attach = Tattach {
        fid: 9,
        afid: NOFID,
        uname: "".into(),
        aname: "".into(),
        n_uname: Some(42),
    };
    let refused = c.call(Tmessage::Attach(attach)).map(drop);
    assert_eq!(refused, Err(libc::EPERM));
    for dialect in [Dialect::Unix, Dialect::Plan9] {
        let client = Client::connect(&format!("unix:{}", rig.gateway_socket.display())).unwrap();
        let e = client.version(MSIZE, dialect).unwrap_err();
        assert!(e.to_string().contains("speaks none of"), "{e}");
    }
}

/// A 9P2000 or 9P2000.u client gets a connection upstream in its dialect
/// (tests/socket_plan9.rs runs python-9p's checks through one); where the
/// upstream speaks only 9P2000.L (diod), it is answered "unknown".
#[test]
fn a_9p2000_client_of_a_9p2000_l_only_upstream_is_answered_unknown() {
    let rig = diod_rig(false);
    for dialect in [Dialect::Unix, Dialect::Plan9] {
        let client = Client::connect(&format!("unix:{}", rig.gateway_socket.display())).unwrap();
        let e = client.version(MSIZE, dialect).unwrap_err();
        assert!(e.to_string().contains("speaks none of"), "{e}");
    }
    let client = Client::connect(&format!("unix:{}", rig.gateway_socket.display())).unwrap();
    assert_eq!(
        client.version(MSIZE, Dialect::Linux).unwrap().1,
        Dialect::Linux
    );
}

#[test]
fn the_upstream_gone_every_request_fails_with_eio_and_the_gateway_stays() {
    let mut rig = rig(&[]);
    std::fs::write(rig.host("f"), "data").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    c.walk(1, 2, &["f"]).unwrap();
    let task = format!("/proc/{}/task", rig.gateway.pid());
    let threads = || std::fs::read_dir(&task).unwrap().count();
    let (fds, tasks) = (rig.gateway.open_fds(), threads());
    rig.upstream.as_mut().unwrap().stop();
    let start = Instant::now();
    assert_eq!(c.getattr(2), Err(libc::EIO));
    assert_eq!(c.walk(1, 3, &["f"]), Err(libc::EIO));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(rig.gateway_alive());
    // New sessions too: their attaches fail, the gateway answers, and
    // nothing of theirs is left once they are gone.
    for _ in 0..20 {
        let mut other = rig.connect();
        let r = other.call(Tmessage::Attach(Tattach {
            fid: 1,
            afid: NOFID,
            uname: "".into(),
            aname: "".into(),
            n_uname: Some(uid()),
        }));
        assert_eq!(r.map(|_| ()), Err(libc::EIO));
    }
    assert!(
        rig.gateway.try_wait().is_none(),
        "the gateway keeps running"
    );
    // (The upstream's reader thread has ended; each session's thread ends
    // with its connection.)
    common::proc::wait_for("the sessions' threads and descriptors to go", || {
        (threads() <= tasks && rig.gateway.open_fds() <= fds).then_some(())
    });
}

fn diod_tool(tool: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} not installed (apt-get install diod; ci/test.sh does)"))
}

#[test]
fn diod_clients_list_and_read_through_the_gateway() {
    let rig = rig(&[]);
    std::fs::write(rig.host("hello.txt"), "hello via the gateway\n").unwrap();
    std::fs::create_dir(rig.host("sub")).unwrap();
    let s = rig.gateway_socket.to_str().unwrap();
    let run = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(diod_tool(tool))
            .args(["-s", s, "-a", "/"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool} {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut listing: Vec<String> = run("diodls", &["/"]).lines().map(String::from).collect();
    listing.sort();
    assert_eq!(listing, ["hello.txt", "sub"]);
    assert_eq!(run("diodcat", &["hello.txt"]), "hello via the gateway\n");
}

#[test]
fn what_an_upstream_gives_instead_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let up = format!("unix:{}", dir.path().join("none.sock").display());
    let refused = |args: &[&str]| {
        let out = Daemon::bare()
            .listen_unix(&dir.path().join("gw.sock"))
            .args(["--upstream", &up])
            .args(args)
            .output();
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    for option in [
        &["--ctl"][..],
        &["--security-model", "none"],
        &["--shared-dir", "/tmp"],
    ] {
        let e = refused(&[&["--sandbox", "none"], option].concat());
        assert!(
            e.contains(&format!("{} is not supported with an upstream", option[0])),
            "{e}"
        );
    }
    let e = refused(&["--sandbox", "chroot"]);
    assert!(e.contains("--sandbox chroot is not supported"), "{e}");
    // A TCP upstream with nothing listening: one line, at start.
    let tcp = Daemon::bare()
        .listen_unix(&dir.path().join("gw.sock"))
        .args(["--upstream", "tcp:127.0.0.1:1"])
        .output();
    let e = String::from_utf8(tcp.stderr).unwrap();
    assert!(e.contains("--upstream tcp:127.0.0.1:1: "), "{e}");
    assert_eq!(e.lines().filter(|l| l.contains("error")).count(), 1, "{e}");
    // In a namespace sandbox, a socket that is not there.
    let e = refused(&[]);
    assert!(
        e.contains("sandbox: cannot reach the upstream socket"),
        "{e}"
    );
    // Nothing listening there.
    let e = refused(&["--sandbox", "none"]);
    assert!(e.contains(&format!("--upstream {up}: ")), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_vhost_user_guest_reads_writes_and_lists_through_the_gateway() {
    use common::client::Client as Guest;
    use common::vmm::Vmm;
    let share = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.sock");
    let _upstream = Daemon::builder(share.path())
        .listen_unix(&up)
        .args(["--sandbox", "none", "--no-root-squash"])
        .start();
    let gateway = Daemon::bare()
        .vhost_user()
        .arg("--upstream")
        .arg(format!("unix:{}", up.display()))
        .args(["--sandbox", "none"])
        .start();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(share.path().join("big"), &big).unwrap();
    for i in 0..50 {
        std::fs::write(share.path().join(format!("f{i}")), "").unwrap();
    }
    let mut guest = Guest::new(Vmm::connect(&gateway.socket, 64 << 20, true));
    guest.mount(MSIZE, 1);
    guest.walk(1, 2, &["big"]);
    guest.lopen(2, O_RDONLY);
    let mut read = Vec::new();
    loop {
        // (The harness's slot: 64 KiB each way.)
        let chunk = guest.read(2, read.len() as u64, 60_000);
        if chunk.is_empty() {
            break;
        }
        read.extend_from_slice(&chunk);
    }
    assert!(
        read == big,
        "the file read through the gateway is the host's"
    );
    guest.walk(1, 3, &[]);
    let gid = unsafe { libc::getegid() };
    guest
        .try_lcreate(3, "from-guest", O_RDWR | O_CREAT, 0o644, gid)
        .unwrap();
    assert_eq!(guest.try_write(3, 0, &big[..60_000]), Ok(60_000));
    assert_eq!(
        guest.try_write(3, 60_000, &big[60_000..100_000]),
        Ok(40_000)
    );
    guest.clunk(3);
    assert!(std::fs::read(share.path().join("from-guest")).unwrap() == big[..100_000]);
    guest.walk(1, 4, &[]);
    guest.lopen(4, O_RDONLY | O_DIRECTORY);
    let listed: BTreeSet<String> = guest
        .readdir_all(4)
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect();
    let host: BTreeSet<String> = std::fs::read_dir(share.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed, host);
}

/// Not a check: times N getattr and N 4 KiB reads straight to the upstream
/// and through the gateway (`cargo test --test gateway -- --ignored
/// --nocapture`; run it on a release build for numbers worth quoting).
#[test]
#[ignore]
fn measure_latency_direct_and_through_the_gateway() {
    const N: u32 = 2000;
    let rig = rig(&[]);
    std::fs::write(rig.host("f"), vec![7u8; 4096]).unwrap();
    let up = rig.upstream.as_ref().unwrap().unix_socket().to_path_buf();
    for (what, socket) in [("direct", up), ("gateway", rig.gateway_socket.clone())] {
        let mut c = Conn::new(&socket);
        c.attach(1);
        c.walk(1, 2, &["f"]).unwrap();
        c.lopen(2, O_RDONLY).unwrap();
        let start = Instant::now();
        for _ in 0..N {
            c.getattr(2).unwrap();
        }
        let getattr = start.elapsed() / N;
        let start = Instant::now();
        for _ in 0..N {
            let request = Tread {
                fid: 2,
                offset: 0,
                count: 4096,
            };
            c.call(Tmessage::Read(request)).unwrap();
        }
        let read = start.elapsed() / N;
        eprintln!("{what}: getattr {getattr:?}, 4 KiB read {read:?}");
    }
}

#[test]
fn fids_are_bounded_per_session_and_in_all_and_traced_as_for_a_directory() {
    let rig = rig(&["--max-fids", "3", "--trace"]);
    std::fs::write(rig.host("f"), "").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["f"]), Ok(1));
    assert_eq!(c.walk(1, 3, &[]), Ok(0));
    assert_eq!(c.walk(1, 4, &["f"]), Err(libc::EMFILE));
    c.clunk(3).unwrap();
    assert_eq!(c.walk(1, 4, &["f"]), Ok(1));
    // A fid in use is not made again.
    assert_eq!(c.walk(1, 4, &[]), Err(libc::EBADF));
    // Each session's upstream fid numbers are its own: one given back by
    // this session is never another's next.
    let upstream_newfids = |rig: &Rig| -> Vec<String> {
        rig.upstream
            .as_ref()
            .unwrap()
            .log_text()
            .lines()
            .filter(|l| l.starts_with("<-") && l.contains(" Twalk "))
            .filter_map(|l| l.split(" newfid ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next().map(String::from))
            .collect()
    };
    let mine = upstream_newfids(&rig);
    // All sessions together hold twice one session's bound: a second
    // session takes the other 3, a third gets ENFILE until one clunks.
    let mut second = rig.connect();
    second.attach(1);
    assert_eq!(second.walk(1, 2, &[]), Ok(0));
    assert_eq!(second.walk(1, 3, &[]), Ok(0));
    let mut third = rig.connect();
    assert_eq!(attach_as(&mut third, "", ""), Err(libc::ENFILE));
    second.clunk(3).unwrap();
    assert_eq!(attach_as(&mut third, "", ""), Ok(()));
    let theirs = &upstream_newfids(&rig)[mine.len()..];
    assert!(!theirs.is_empty());
    for fid in theirs {
        assert!(
            !mine.contains(fid),
            "upstream fid {fid} of two sessions: {mine:?} {theirs:?}"
        );
    }
    // The gateway's --trace shows the guest's side.
    let trace = rig.gateway.log_text();
    assert!(
        trace
            .lines()
            .any(|l| l.starts_with("<-") && l.contains("Twalk")),
        "{trace}"
    );
    assert!(
        trace
            .lines()
            .any(|l| l.starts_with("-") && l.contains("Rwalk")),
        "{trace}"
    );
    // And the upstream's side, marked apart: each forwarded request and
    // its reply, on behalf of the same connection.
    let upstream = |mark: &str, what: &str| {
        trace
            .lines()
            .filter(|l| l.starts_with(mark) && l.contains(what))
            .count()
    };
    assert_eq!(upstream("=", "=> Tattach"), 3, "{trace}");
    assert_eq!(upstream("<=", "= Rattach"), 3, "{trace}");
    assert!(upstream("=", "=> Twalk") >= 3, "{trace}");
    assert!(upstream("<=", "= Rwalk") >= 3, "{trace}");
    // The upstream's error replies show too.
    c.clunk(4).unwrap();
    assert_eq!(third.walk(1, 2, &["missing"]), Err(libc::ENOENT));
    let trace = rig.gateway.log_text();
    assert!(
        trace
            .lines()
            .any(|l| l.starts_with("<=") && l.contains("= Rlerror") && l.ends_with(" ecode 2")),
        "{trace}"
    );
}

/// The Linux guest's half of the VM test (busybox sh, the share on /mnt).
const GUEST_SCRIPT: &str = r#"
expect read-host-file "hello from host" "$(cat $M/readme.txt)"
echo abc >$M/w.txt
echo def >>$M/w.txt
expect create-append "$(printf 'abc\ndef')" "$(cat $M/w.txt)"
truncate -s 2 $M/w.txt
expect truncate "2 ab" "$(stat -c %s $M/w.txt) $(cat $M/w.txt)"
mkdir -p $M/d/e
echo in >$M/d/e/f
mv $M/d/e/f $M/moved
expect rename-across-dirs "in" "$(cat $M/moved)"
ln -s moved $M/sym
expect symlink-readlink "moved" "$(readlink $M/sym)"
ln $M/moved $M/hard
expect hard-link "2" "$(stat -c %h $M/moved)"
rm $M/hard
chmod 640 $M/moved
expect chmod "640" "$(stat -c %a $M/moved)"
rmdir $M/d/e
check rmdir test ! -e $M/d/e
expect readdir-1000 "1000" "$(ls $M/many | wc -l)"
dd if=/dev/zero of=$M/big bs=1M count=8 2>/dev/null
check fsync sync
expect write-8-mib "8388608" "$(stat -c %s $M/big)"
check statfs df $M
exit $fails
"#;

#[test]
fn a_linux_guest_mounts_the_upstream_through_the_gateway() {
    let top = guest_through_the_gateway(&[], &[], GUEST_SCRIPT);
    assert_guest_script_on_host(&top);
}

#[test]
fn a_linux_guest_mounts_a_diod_upstream_through_the_gateway() {
    let top = guest_through_the_gateway(DIOD, &[], GUEST_SCRIPT);
    assert_guest_script_on_host(&top);
}

/// What a Linux guest does through a 9P2000 upstream with the `,ctl`
/// conventions, beyond GUEST_SCRIPT (`$NS_TIME`: readme.txt's mtime as the
/// guest's stat shows it).
const CONTROL_FILES_SCRIPT: &str = r#"
mkfifo $M/fifo
check mknod-fifo test -p $M/fifo
chown 1234:5678 $M/moved
expect chown "1234 5678" "$(stat -c '%u %g' $M/moved)"
expect mtime-nanoseconds "$NS_TIME" "$(stat -c %y $M/readme.txt)"
# The Linux client sets times in whole seconds (its superblock keeps the
# VFS's default granularity, one second): its Tsetattr carries no
# nanoseconds to pass on. Reading shows them.
check utimens utimens $M/w.txt 1500000000 123456789
expect utimes-whole-seconds "2017-07-14 02:40:00.000000000 +0000" "$(stat -c %y $M/w.txt)"
ln $M/moved $M/hard2
expect hard-link-count "2 $(stat -c %i $M/moved)" "$(stat -c %h $M/hard2) $(stat -c %i $M/hard2)"
rm $M/hard2
ln -s nowhere $M/dangling
expect dangling-symlink "nowhere missing" "$(readlink $M/dangling) $(test -e $M/dangling && echo present || echo missing)"
check symlink-is-a-link test -L $M/sym
expect symlink-follow "in" "$(cat $M/sym)"
mkdir $M/dir2
mv $M/d $M/dir2/d
check rename-dir-across test -d $M/dir2/d
check unlinked-while-open openunlink $M/ou.txt
check unlinked-gone test ! -e $M/ou.txt
exit $fails
"#;

#[test]
fn a_linux_guest_mounts_a_9p2000_upstream_with_control_files_through_the_gateway() {
    // busybox stat's %y: local time (the guest's is UTC), nanoseconds.
    let script = GUEST_SCRIPT.replace(
        "exit $fails",
        &CONTROL_FILES_SCRIPT.replace("$NS_TIME", "2017-07-14 02:40:00.123456789 +0000"),
    );
    let top = guest_through_the_gateway(
        &["--ctl"],
        &["--upstream-version", "9p2000", "--trace"],
        &script,
    );
    let share = top.path().join("share");
    // `ln -s moved sym` crossed as a command to the directory's `,ctl/,`
    // (README, "Gateway", shows this trace).
    let trace = std::fs::read_to_string(top.path().join("daemon.log")).unwrap();
    let from = trace
        .find("Tsymlink tag 0 fid 1 name sym symtgt moved")
        .expect("the guest's Tsymlink");
    let ln: Vec<&str> = trace[from..].lines().take(14).collect();
    assert!(
        ln[1].contains("=> Twalk") && ln[1].ends_with("0:,ctl 1:,"),
        "{ln:#?}"
    );
    assert!(ln[5].ends_with("'symlink moved sym\\n'"), "{ln:#?}");
    assert!(
        ln[13].contains("-> Rsymlink") && ln[13].ends_with(" L)"),
        "{ln:#?}"
    );
    let meta = |name: &str| std::fs::symlink_metadata(share.join(name)).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(meta("fifo").file_type().is_fifo());
    assert_eq!((meta("moved").uid(), meta("moved").gid()), (1234, 5678));
    assert_eq!(
        (meta("w.txt").mtime(), meta("w.txt").mtime_nsec()),
        (1_500_000_000, 0)
    );
    assert_eq!(
        std::fs::read_link(share.join("dangling")).unwrap(),
        Path::new("nowhere")
    );
    assert!(share.join("dir2/d").is_dir() && !share.join("d").exists());
}

#[test]
fn a_linux_guest_mounts_a_9p2000_u_upstream_through_the_gateway() {
    // 9P2000.u has no link count: the hard link is checked by its name.
    let script = GUEST_SCRIPT.replace(
        r#"expect hard-link "2" "$(stat -c %h $M/moved)""#,
        r#"expect hard-link "in" "$(cat $M/hard)""#,
    );
    assert_ne!(script, GUEST_SCRIPT);
    let top = guest_through_the_gateway(&[], &["--upstream-version", "9p2000.u"], &script);
    assert_guest_script_on_host(&top);
}

/// A Linux guest through a plain 9P2000 upstream (this daemon without
/// `--ctl`): what 9P2000 has a form for works, and what it has none for
/// fails with the errno a Linux file system without it gives.
const PLAIN_9P2000_SCRIPT: &str = r#"
expect read-host-file "hello from host" "$(cat $M/readme.txt)"
echo abc >$M/w.txt
echo def >>$M/w.txt
expect create-append "$(printf 'abc\ndef')" "$(cat $M/w.txt)"
truncate -s 2 $M/w.txt
expect truncate "2 ab" "$(stat -c %s $M/w.txt) $(cat $M/w.txt)"
mv $M/w.txt $M/w2.txt
expect rename-in-a-directory "ab missing" "$(cat $M/w2.txt) $(test -e $M/w.txt && echo present || echo missing)"
mkdir -p $M/d/e
echo in >$M/d/e/f
mv $M/d/e/f $M/moved
expect rename-across-dirs-copies "in missing" "$(cat $M/moved) $(test -e $M/d/e/f && echo present || echo missing)"
rmdir $M/d/e
check rmdir test ! -e $M/d/e
chmod 640 $M/moved
expect chmod "640" "$(stat -c %a $M/moved)"
expect mtime-seconds "2017-07-14 02:40:00.000000000 +0000" "$(stat -c %y $M/readme.txt)"
expect readdir-1000 "1000" "$(ls $M/many | wc -l)"
check statfs df $M
# The errno is a Linux file system's for an operation it lacks.
eperm() { ! "$@" 2>/tmp/err && grep -q "Operation not permitted" /tmp/err; }
check symlink-eperm eperm ln -s moved $M/sym
check hard-link-eperm eperm ln $M/moved $M/hard
check mkfifo-eperm eperm mkfifo $M/fifo
check chown-eperm eperm chown 1234 $M/moved
exit $fails
"#;

#[test]
fn a_linux_guest_mounts_a_plain_9p2000_upstream_through_the_gateway() {
    let top =
        guest_through_the_gateway(&[], &["--upstream-version", "9p2000"], PLAIN_9P2000_SCRIPT);
    let share = top.path().join("share");
    assert_eq!(std::fs::read(share.join("w2.txt")).unwrap(), b"ab");
    assert_eq!(std::fs::read(share.join("moved")).unwrap(), b"in\n");
    for never in ["w.txt", "sym", "hard", "fifo", "d/e"] {
        assert!(
            std::fs::symlink_metadata(share.join(never)).is_err(),
            "{never}"
        );
    }
}

/// `guest_through_the_gateway`'s upstream: diod rather than this daemon;
/// or none, the guest served by this daemon directly.
const DIOD: &[&str] = &["diod"];
const DIRECT: &[&str] = &["direct"];

/// Boots the rig's guest on a gateway (given `gateway_args`) to this
/// daemon upstream (given `upstream_args`; DIOD: to diod), runs
/// `guest_script` there and checks the host; the directory holding the
/// share (`share/`), for more checks.
fn guest_through_the_gateway(
    upstream_args: &[&str],
    gateway_args: &[&str],
    guest_script: &str,
) -> tempfile::TempDir {
    checks::build_rig(&[]);
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("readme.txt"), "hello from host\n").unwrap();
    let readme = std::fs::File::options()
        .write(true)
        .open(share.join("readme.txt"))
        .unwrap();
    let stamp = std::time::UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_789);
    readme.set_modified(stamp).unwrap();
    drop(readme);
    std::fs::create_dir(share.join("many")).unwrap();
    for i in 0..1000 {
        std::fs::write(share.join(format!("many/f{i:04}")), "").unwrap();
    }
    let up = top.path().join("up.sock");
    if upstream_args == DIRECT {
        // No gateway: the daemon on the share, as runvm.py starts it.
        let daemon = Path::new(common::daemon::BIN);
        checks::guest_checks_pass(
            top.path(),
            &share,
            daemon,
            guest_script,
            &[],
            "guest checks",
        );
        return top;
    }
    let (_upstream, _diod, gateway_args) = if upstream_args == DIOD {
        // diod exports the share by its path: the gateway names it.
        let diod = std::process::Command::new(diod_tool("diod"))
            .args(["-f", "-n", "-N", "-c", "/dev/null", "-L", "stderr"])
            .arg("-l")
            .arg(&up)
            .arg("-e")
            .arg(&share)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let diod = common::daemon::Killed(diod);
        common::proc::wait_for("diod's socket", || up.exists().then_some(()));
        let mut args: Vec<String> = gateway_args.iter().map(|a| a.to_string()).collect();
        args.extend(["--upstream-aname".to_string(), share.display().to_string()]);
        (None, Some(diod), args)
    } else {
        let upstream = Daemon::builder(&share)
            .listen_unix(&up)
            .args(["--sandbox", "none", "--no-root-squash"])
            .args(upstream_args)
            .start();
        let args = gateway_args.iter().map(|a| a.to_string()).collect();
        (Some(upstream), None, args)
    };
    // runvm.py starts the daemon with --shared-dir: this wrapper starts
    // the gateway (in its namespace sandbox) in its stead.
    let wrapper = top.path().join("gateway.sh");
    checks::write_executable(
        &wrapper,
        &format!(
            "#!/bin/sh\n\
             n=$#\n\
             while [ $n -gt 0 ]; do\n\
             a=$1; shift; n=$((n - 1))\n\
             if [ \"$a\" = --shared-dir ]; then shift; n=$((n - 1)); continue; fi\n\
             set -- \"$@\" \"$a\"\n\
             done\n\
             exec {} --upstream unix:{} {} \"$@\"\n",
            common::daemon::BIN,
            up.display(),
            gateway_args.join(" ")
        ),
    );
    checks::guest_checks_pass(
        top.path(),
        &share,
        &wrapper,
        guest_script,
        &[],
        "guest checks through the gateway",
    );
    top
}

/// The host directory behind the upstream has what GUEST_SCRIPT did.
fn assert_guest_script_on_host(top: &tempfile::TempDir) {
    let share = top.path().join("share");
    assert_eq!(std::fs::read(share.join("w.txt")).unwrap(), b"ab");
    assert_eq!(std::fs::read(share.join("moved")).unwrap(), b"in\n");
    let mode = std::fs::metadata(share.join("moved"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(
        std::fs::read_link(share.join("sym")).unwrap(),
        Path::new("moved")
    );
    assert!(!share.join("hard").exists() && !share.join("d/e").exists());
    assert_eq!(std::fs::metadata(share.join("big")).unwrap().len(), 8 << 20);
}
