//! The sockets: who may connect, and as whom their sessions act. The
//! daemon runs as its own process; diod's clients (Debian's diod, which
//! ci/test.sh installs) connect as root or as nobody.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::{Users, NOBODY};
use vhost_user_9p::server::Config;

use crate::common::daemon::{Builder, Daemon, BIN};
use crate::common::inotify::events_during;
use crate::common::inproc::{InProc, ROOT};
use crate::common::proc::wait_for_path;

/// A share with a world-readable file and one only its owner (uid 1000)
/// may read, in directories anyone may search.
fn share() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("public"), "for everyone\n").unwrap();
    std::fs::set_permissions(dir.path().join("public"), PermissionsExt::from_mode(0o644)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "for uid 1000 only\n").unwrap();
    std::fs::set_permissions(&secret, PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&secret, Some(1000), Some(1000)).unwrap();
    dir
}

/// The daemon serving `share` with `--listen unix:` in a directory anyone
/// may search, started under umask 022.
fn listen(share: &Path, extra: &[&str]) -> (Daemon, PathBuf) {
    let sock = share.parent().unwrap().join(format!(
        "{}.sock",
        share.file_name().unwrap().to_string_lossy()
    ));
    let daemon = Daemon::builder(share)
        .vhost_user()
        .listen_unix(&sock)
        .args(extra)
        .start();
    (daemon, sock)
}

/// diodcat of `file` over `sock`, run as `uid`/`gid` (naming uid 0 in its
/// attach): the file's content, or Err.
fn diodcat_as(uid: u32, gid: u32, sock: &Path, file: &str) -> Result<String, String> {
    let out: Output = Command::new("/usr/sbin/diodcat")
        .args([
            "-s",
            sock.to_str().unwrap(),
            "-a",
            "/",
            "-u",
            "0",
            "-t",
            "10",
            file,
        ])
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .output()
        .expect("diodcat (apt-get install diod; ci/test.sh does)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn mode_and_group(path: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(path).unwrap();
    (md.mode() & 0o7777, md.uid(), md.gid())
}

/// The daemon serving `share` on a vhost-user socket and a `--listen
/// unix:` socket.
fn both_sockets(share: &Path, vhost: &Path, unix: &Path) -> Builder {
    Daemon::builder(share)
        .socket_path(vhost)
        .tag("t")
        .listen_unix(unix)
}

#[test]
fn sockets_are_the_daemon_users_alone_whatever_the_umask() {
    let share = share();
    for (extra, want) in [
        (&[][..], (0o600, 0, 0)),
        (&["--socket-group", "65534"][..], (0o660, 0, 65534)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (vhost, unix) = (dir.path().join("vhost.sock"), dir.path().join("9p.sock"));
        let _daemon = both_sockets(share.path(), &vhost, &unix)
            .args(extra)
            .umask(0o022)
            .start();
        assert_eq!(mode_and_group(&vhost), want, "vhost-user socket {extra:?}");
        assert_eq!(mode_and_group(&unix), want, "--listen socket {extra:?}");
    }
}

/// The socket files appear only once they listen (bound under a
/// temporary name, then renamed), so whoever waits for the file and
/// connects at once is never refused: inotify sees both arrive by rename,
/// never created under their own names, and nothing else is left beside
/// them.
#[test]
fn socket_files_appear_only_once_they_listen() {
    let share = share();
    let dir = tempfile::tempdir().unwrap();
    let vhost = dir.path().join("vhost.sock");
    let unix = dir.path().join("9p.sock");
    let mask = libc::IN_CREATE | libc::IN_MOVED_TO;
    let (events, _child) = events_during(&[dir.path()], mask, || {
        let daemon = both_sockets(share.path(), &vhost, &unix).start();
        std::os::unix::net::UnixStream::connect(&unix).expect("connect to --listen");
        daemon
    });
    for name in ["vhost.sock", "9p.sock"] {
        let seen: Vec<u32> = events
            .iter()
            .filter(|e| e.name == name)
            .map(|e| e.mask & mask)
            .collect();
        assert_eq!(seen, [libc::IN_MOVED_TO], "{name}: {events:?}");
    }
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["9p.sock", "vhost.sock"]);
}

#[test]
fn another_user_cannot_connect_unless_given_the_group_and_then_acts_as_itself() {
    let share = share();
    let (daemon, sock) = listen(share.path(), &[]);
    let refused = diodcat_as(NOBODY, NOBODY, &sock, "public");
    assert!(refused.is_err(), "nobody connected to a private socket");
    drop(daemon);
    let (_daemon, sock) = listen(share.path(), &["--socket-group", "65534"]);
    // Connected, naming uid 0, it reads what nobody may read...
    assert_eq!(
        diodcat_as(NOBODY, NOBODY, &sock, "public").unwrap(),
        "for everyone\n"
    );
    // ...and not what only uid 1000 may: it acts as itself, not as root.
    let secret = diodcat_as(NOBODY, NOBODY, &sock, "secret");
    assert!(secret.is_err(), "nobody read uid 1000's file: {secret:?}");
}

#[test]
fn root_attaching_over_a_socket_is_squashed_unless_told_not_to() {
    let share = share();
    let (daemon, sock) = listen(share.path(), &[]);
    assert_eq!(diodcat_as(0, 0, &sock, "public").unwrap(), "for everyone\n");
    let secret = diodcat_as(0, 0, &sock, "secret");
    assert!(
        secret.is_err(),
        "a squashed root read a 0600 file: {secret:?}"
    );
    drop(daemon);
    let (_daemon, sock) = listen(share.path(), &["--no-root-squash"]);
    assert_eq!(
        diodcat_as(0, 0, &sock, "secret").unwrap(),
        "for uid 1000 only\n"
    );
}

#[test]
fn tcp_is_refused_without_no_auth_and_warned_about_beyond_loopback() {
    let share = share();
    let out = Daemon::builder(share.path())
        .listen("tcp:127.0.0.1:0")
        .output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no authentication") && err.contains("--no-auth"),
        "{err}"
    );
    // With --no-auth it serves; beyond loopback it says so at start.
    let mut daemon = Daemon::builder(share.path())
        .listen("tcp:0.0.0.0:0")
        .arg("--no-auth")
        .stderr_piped()
        .start();
    let line = daemon.stderr_line();
    drop(daemon);
    assert!(line.contains("without authentication"), "{line}");
}

/// A squashed root's and a peer's files are theirs on the host, and what
/// they may not reach stays out of reach (the host kernel checks, with the
/// request's credentials).
#[test]
fn socket_sessions_create_and_open_as_their_user() {
    let share = share();
    let drop_box = share.path().join("drop");
    std::fs::create_dir(&drop_box).unwrap();
    std::fs::set_permissions(&drop_box, PermissionsExt::from_mode(0o777)).unwrap();
    let config = Config::new(share.path());
    let users = [
        (Users::Named { root_squash: true }, 0, NOBODY),
        (Users::Named { root_squash: false }, 0, 0),
        (Users::Named { root_squash: true }, 1000, 1000),
    ];
    for (users, named, owner) in users {
        let label = format!("{users:?} named {named}");
        let mut c = InProc::attach(&config, users, "9P2000.L", named);
        c.walk(ROOT, 2, &["drop"]).ok();
        let name = format!("made-by-{owner}-{named}");
        let gid = owner; // each acting user's own group
        let create = Tlcreate {
            fid: 2,
            name: name.as_str().into(),
            flags: 2,
            mode: 0o644,
            gid,
        };
        c.call(Tmessage::Lcreate(create)).ok();
        assert_eq!(
            std::fs::metadata(drop_box.join(&name)).unwrap().uid(),
            owner,
            "{label}"
        );
        c.walk(ROOT, 3, &["secret"]).ok();
        let open = c.call(Tmessage::Lopen(Tlopen { fid: 3, flags: 0 }));
        let may_read = owner == 0 || owner == 1000;
        assert_eq!(open.errno(), (!may_read).then_some(libc::EACCES), "{label}");
    }
}

/// Nothing the daemon does after start names a path from the host's root:
/// with /proc and /etc covered by empty file systems once it listens (as
/// they are once it is confined to the share), it still opens files
/// (reopened through its /proc/self/fd descriptor) and reads mapped-xattr
/// attributes (xattr calls through it).
#[test]
fn files_open_after_proc_and_etc_are_gone() {
    let share = share();
    let top = tempfile::tempdir().unwrap();
    let sock = top.path().join("9p.sock");
    let ready = top.path().join("ready");
    let pid_file = top.path().join("pid");
    let script = format!(
        "{bin} --listen unix:{sock} --shared-dir {share} --no-root-squash \
         --security-model mapped-xattr --log-level warn </dev/null >/dev/null 2>&1 &
         echo $! > {pid}
         while [ ! -S {sock} ]; do sleep 0.02; done
         mount -t tmpfs none /proc && mount -t tmpfs none /etc && touch {ready}
         wait",
        bin = BIN,
        sock = sock.display(),
        share = share.path().display(),
        ready = ready.display(),
        pid = pid_file.display(),
    );
    let mut child = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--kill-child",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_path(&ready);
    let read = diodcat_as(0, 0, &sock, "public");
    // The daemon, by the pid its shell wrote; the shell then returns.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(read.unwrap(), "for everyone\n");
}

/// As root with passthrough, the daemon warns at start when the share's
/// filesystem would honour the device nodes and setuid files a guest makes
/// (mounted without nodev or nosuid); mapped-xattr makes neither.
#[test]
fn a_share_without_nodev_nosuid_is_warned_about_under_passthrough() {
    let share = share();
    let c = std::ffi::CString::new(share.path().as_os_str().as_encoded_bytes()).unwrap();
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c is a C string; st is writable for a statvfs.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) }, 0);
    // SAFETY: statvfs succeeded and filled it.
    let flags = unsafe { st.assume_init() }.f_flag;
    let exposed = flags & libc::ST_NODEV == 0 || flags & libc::ST_NOSUID == 0;
    for (model, warned) in [("passthrough", exposed), ("mapped-xattr", false)] {
        let out = Daemon::builder(share.path())
            .listen("unix:/nonexistent/x.sock")
            .args(["--security-model", model])
            .output();
        // It stops at once (no such socket directory), after the warning.
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.contains("mounted without"), warned, "{model}: {err}");
    }
}

/// The vhost-user socket serves one VMM: once one is connected, another is
/// refused at once rather than left waiting in the listen backlog.
#[test]
fn a_second_vmm_is_refused() {
    let share = share();
    let daemon = Daemon::builder(share.path()).vhost_user().start();
    let vmm = crate::common::Vmm::connect(&daemon.socket, 1 << 20, true);
    // The socket stopped taking connections when the VMM knocked, before
    // the daemon answered it: refused, deterministically.
    let second = std::os::unix::net::UnixStream::connect(&daemon.socket);
    let refused = [
        std::io::ErrorKind::ConnectionRefused,
        std::io::ErrorKind::NotFound,
    ];
    assert!(
        second.as_ref().is_err_and(|e| refused.contains(&e.kind())),
        "{second:?}"
    );
    drop(vmm);
}
