//! The confined daemon seen from outside: with `--sandbox namespace` the
//! serving process's root is the share, its mount, pid and net namespaces
//! are its own, every thread has the seccomp filter, no_new_privs and only
//! the documented capabilities; a system call outside the allowlist kills
//! it; files a guest plants in the share to look like /proc or /etc change
//! nothing the daemon does. Runs the daemon binary as root and as nobody.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::client::{Client, Stream};
use common::Daemon;

const TIMEOUT: Duration = Duration::from_secs(20);
const NOBODY: u32 = 65534;

/// The daemon with `--listen unix:` on a socket beside the share, as
/// `uid`, its stderr piped; its socket, or its end (the caller looks at
/// its status).
fn start(share: &Path, uid: u32, args: &[&str], env: &[(&str, &str)]) -> Daemon {
    start_as(share, (uid, uid), args, env)
}

fn start_as(share: &Path, user: (u32, u32), args: &[&str], env: &[(&str, &str)]) -> Daemon {
    let (uid, gid) = user;
    let mut daemon = Daemon::builder(share)
        .listen_unix(&share.parent().unwrap().join("9p.sock"))
        .args(args)
        .stderr_piped()
        .may_exit();
    for (key, value) in env {
        daemon = daemon.env(key, value);
    }
    if uid != 0 {
        daemon = daemon.user(uid, gid);
    }
    daemon.start()
}

/// Connects a client, or says why the daemon is not there.
fn client(daemon: &mut Daemon, version: &str) -> Conn {
    if let Some(status) = daemon.try_wait() {
        panic!("the daemon exited: {status}: {}", daemon.stderr());
    }
    connect(daemon.unix_socket(), version)
}

/// A share (world-searchable, owned by `uid`) with a file `f`.
fn share(uid: u32) -> tempfile::TempDir {
    let top = tempfile::tempdir().unwrap();
    std::fs::set_permissions(top.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let share = top.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("f"), "the share's f\n").unwrap();
    for path in [top.path(), &share, &share.join("f")] {
        std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    }
    top
}

/// A 9P client on a Unix socket.
type Conn = Client<Stream<UnixStream>>;

/// A client of `socket` speaking `version`, attached as root at fid 0.
fn connect(socket: &Path, version: &str) -> Conn {
    let stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut c = Client::stream(stream);
    c.version(65536, version);
    c.attach(0, "root", "", (version != "9P2000").then_some(0));
    c
}

/// Tsetattr of `name`'s owner (9P2000.L): Ok, or the errno.
fn chown(c: &mut Conn, name: &str, uid: u32, gid: u32) -> Result<(), u32> {
    let _ = c.try_walk(0, 2, &[name]);
    let result = c.try_chown(2, uid, gid);
    let _ = c.try_clunk(2);
    result.map_err(|e| e.0)
}

/// Walks fid 0 to `name` as fid 1, opens it and reads it (9P2000.L).
fn cat(c: &mut Conn, name: &str) -> Vec<u8> {
    let _ = c.try_walk(0, 1, &[name]);
    let _ = c.try_lopen(1, 0);
    let data = c.try_read(1, 0, 4096);
    let _ = c.try_clunk(1);
    data.unwrap_or_else(|e| panic!("Tread of {name}: {e:?}"))
}

/// `Key:` of /proc/PID/task/TID/status for every thread of `pid`.
fn thread_field(pid: u32, key: &str) -> BTreeSet<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .map(|t| {
            let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn namespace(pid: &str, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

/// CapEff as the daemon documents it: chown, dac_override, fowner, fsetid,
/// setgid, setuid, and for passthrough mknod and setfcap.
const PASSTHROUGH_CAPS: &str = "00000000880000db";

/// As root and as nobody: the serving child's root is the share, its
/// namespaces are its own, every thread is filtered and has no_new_privs
/// and the documented capabilities; it serves; SIGTERM ends both
/// processes with status 0 and removes the socket.
#[test]
fn the_namespace_sandbox_confines_the_serving_process() {
    for (uid, caps) in [(0, PASSTHROUGH_CAPS), (NOBODY, "0000000000000000")] {
        let top = share(uid);
        let share = top.path().join("share");
        let mut daemon = start(&share, uid, &["--sandbox", "namespace"], &[]);
        let pid = daemon.serving_pid();
        assert_ne!(pid, daemon.child.id());
        let mut client = client(&mut daemon, "9P2000.L");
        assert_eq!(cat(&mut client, "f"), b"the share's f\n", "uid {uid}");
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        assert_eq!(
            names(&root),
            names(&share),
            "uid {uid}: the root is not the share"
        );
        assert!(!root.join("etc/passwd").exists());
        for kind in ["mnt", "net", "pid"] {
            assert_ne!(
                namespace(&pid.to_string(), kind),
                namespace("self", kind),
                "uid {uid}: the {kind} namespace is the host's"
            );
        }
        assert_eq!(
            thread_field(pid, "Seccomp:"),
            BTreeSet::from(["2".to_string()])
        );
        assert_eq!(
            thread_field(pid, "NoNewPrivs:"),
            BTreeSet::from(["1".to_string()])
        );
        // Permitted and bounding: the set; effective: the set, less the
        // file capabilities a thread acting as a socket client's user
        // (squashed root here) gives up while it does.
        for key in ["CapPrm:", "CapBnd:"] {
            assert_eq!(
                thread_field(pid, key),
                BTreeSet::from([caps.to_string()]),
                "uid {uid}"
            );
        }
        let caps = u64::from_str_radix(caps, 16).unwrap();
        for eff in thread_field(pid, "CapEff:") {
            let eff = u64::from_str_radix(&eff, 16).unwrap();
            assert_eq!(eff & !caps, 0, "uid {uid}: CapEff {eff:x}");
        }
        assert_eq!(
            thread_field(pid, "Groups:"),
            BTreeSet::from([String::new()])
        );
        drop(client);
        let status = daemon.stop();
        assert_eq!(status.code(), Some(0), "uid {uid}: {status}");
        assert!(
            !daemon.unix_socket().exists(),
            "uid {uid}: the socket file is left"
        );
    }
}

/// chroot: the root is the share, the namespaces are the host's.
#[test]
fn the_chroot_sandbox_roots_the_process_in_the_share() {
    let top = share(0);
    let share = top.path().join("share");
    let mut daemon = start(&share, 0, &["--sandbox", "chroot"], &[]);
    let pid = daemon.serving_pid();
    let mut client = client(&mut daemon, "9P2000.L");
    assert_eq!(cat(&mut client, "f"), b"the share's f\n");
    assert_eq!(
        names(Path::new(&format!("/proc/{pid}/root"))),
        names(&share)
    );
    assert_eq!(namespace(&pid.to_string(), "mnt"), namespace("self", "mnt"));
    assert_eq!(
        thread_field(pid, "Seccomp:"),
        BTreeSet::from(["2".to_string()])
    );
    drop(client);
    assert_eq!(daemon.stop().code(), Some(0));
    assert!(!daemon.unix_socket().exists());
}

/// A system call outside the allowlist (the debug build's test hook makes
/// one once it serves: socket(2), or an ioctl(2) request not on the list,
/// FIONREAD) kills the daemon under `kill`; under `log` the kernel logs it
/// (audit type 1326, the serving process's pid, the call's number, action
/// "log") and the daemon serves on; without the filter it serves on.
#[test]
fn a_forbidden_system_call_kills_the_daemon() {
    for (call, number) in [("socket", libc::SYS_socket), ("ioctl", libc::SYS_ioctl)] {
        let hook = [("VHOST_USER_9P_TEST_FORBIDDEN_CALL", call)];
        for (seccomp, killed) in [("kill", true), ("log", false), ("none", false)] {
            let top = share(0);
            let share = top.path().join("share");
            let args = ["--sandbox", "namespace", "--seccomp", seccomp];
            let mut daemon = start(&share, 0, &args, &hook);
            if killed {
                let status = daemon.wait();
                assert_eq!(status.signal(), Some(libc::SIGSYS), "{call}: {status}");
                assert!(
                    !daemon.unix_socket().exists(),
                    "{call}: the socket file is left"
                );
                continue;
            }
            let mut session = client(&mut daemon, "9P2000.L");
            assert_eq!(cat(&mut session, "f"), b"the share's f\n");
            drop(session);
            let pid = daemon.serving_pid();
            assert_eq!(daemon.stop().code(), Some(0));
            if seccomp != "log" {
                continue;
            }
            // kauditd prints the line a moment later, and printk's rate
            // limit (10 lines in 5 s) drops it when other tests made the
            // kernel log just before: then a fresh daemon, once the
            // limit's interval has passed, must be logged.
            let mut logged = seccomp_logged(pid, number);
            for _ in 0..2 {
                if logged {
                    break;
                }
                std::thread::sleep(Duration::from_secs(5)); // printk's rate-limit interval
                let mut daemon = start(&share, 0, &args, &hook);
                let pid = daemon.serving_pid();
                let mut session = client(&mut daemon, "9P2000.L");
                assert_eq!(cat(&mut session, "f"), b"the share's f\n");
                drop(session);
                assert_eq!(daemon.stop().code(), Some(0));
                logged = seccomp_logged(pid, number);
            }
            assert!(logged, "no seccomp log line for {call} in dmesg");
        }
    }
}

/// Whether dmesg shows, within 3 s, the seccomp "log" action's audit line
/// (type 1326) for system call `number` by process `pid`.
fn seccomp_logged(pid: u32, number: i64) -> bool {
    let (logged, syscall) = (format!("pid={pid} "), format!("syscall={number} "));
    common::proc::poll_until(Duration::from_secs(3), || {
        let log = Command::new("dmesg").output().expect("dmesg");
        String::from_utf8_lossy(&log.stdout).lines().any(|l| {
            l.contains("type=1326")
                && l.contains(&logged)
                && l.contains(&syscall)
                && l.contains("code=0x7ffc0000")
        })
    })
}

/// A system user with subordinate ids (created, and given 65,536 of each
/// from 300,000 with usermod, if missing): its uid and gid.
fn user_with_subordinate_ids() -> (u32, u32) {
    const NAME: &str = "vu9p-subids";
    let has = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{NAME}:")))
    };
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().expect(program);
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
    };
    if !Command::new("id")
        .arg(NAME)
        .output()
        .unwrap()
        .status
        .success()
    {
        run(
            "useradd",
            &["--system", "--no-create-home", "--user-group", NAME],
        );
    }
    if !has("/etc/subuid") {
        run("usermod", &["--add-subuids", "300000-365535", NAME]);
    }
    if !has("/etc/subgid") {
        run("usermod", &["--add-subgids", "300000-365535", NAME]);
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, NAME]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// /proc/PID/uid_map or gid_map: where `inside` goes on the host.
fn mapped(pid: u32, map: &str, inside: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{map}")).unwrap();
    text.lines().find_map(|line| {
        let n: Vec<u64> = line
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        let offset = u64::from(inside).checked_sub(n[0])?;
        (offset < n[2]).then(|| (n[1] + offset) as u32)
    })
}

/// Unprivileged, the user namespace maps the daemon's own ids as
/// themselves and, when /etc/subuid and /etc/subgid give the user
/// subordinate ids (newuidmap/newgidmap, the uidmap package, which
/// ci/test.sh installs), every other id onto those: under passthrough a
/// guest's chown to another owner then lands on that owner's subordinate
/// ids on the host, as the kernel's map says. Without subordinate ids
/// (nobody has none) the same chown is refused (EINVAL: no such id).
#[test]
fn subordinate_ids_give_guest_owners_beyond_the_daemons_own() {
    let (uid, gid) = user_with_subordinate_ids();
    let args = [
        "--sandbox",
        "namespace",
        "--security-model",
        "passthrough",
        "--no-root-squash",
    ];
    for (user, subordinate) in [((uid, gid), true), ((NOBODY, NOBODY), false)] {
        let top = share(user.0);
        std::os::unix::fs::chown(top.path().join("share/f"), Some(user.0), Some(user.1)).unwrap();
        let share = top.path().join("share");
        let mut daemon = start_as(&share, user, &args, &[]);
        // Once it serves (the id helper it forked first is gone by then).
        let mut client = client(&mut daemon, "9P2000.L");
        let pid = daemon.serving_pid();
        assert_eq!(mapped(pid, "uid_map", user.0), Some(user.0));
        assert_eq!(mapped(pid, "gid_map", user.1), Some(user.1));
        let result = chown(&mut client, "f", 1234, 1235);
        let meta = std::fs::metadata(share.join("f")).unwrap();
        use std::os::unix::fs::MetadataExt;
        if subordinate {
            let (host_uid, host_gid) = (
                mapped(pid, "uid_map", 1234).expect("uid 1234 mapped"),
                mapped(pid, "gid_map", 1235).expect("gid 1235 mapped"),
            );
            assert!((300000..365536).contains(&host_uid), "{host_uid}");
            assert!((300000..365536).contains(&host_gid), "{host_gid}");
            assert_eq!(result, Ok(()));
            assert_eq!((meta.uid(), meta.gid()), (host_uid, host_gid));
            assert_eq!(mapped(pid, "uid_map", 0).map(|u| u >= 300000), Some(true));
        } else {
            assert_eq!(mapped(pid, "uid_map", 1234), None);
            assert_eq!(result, Err(libc::EINVAL as u32));
            assert_eq!((meta.uid(), meta.gid()), user);
        }
        assert_eq!(cat(&mut client, "f"), b"the share's f\n");
        drop(client);
        assert_eq!(daemon.stop().code(), Some(0));
    }
}

/// What a guest plants in the share to look like the host's /proc and /etc
/// (a `proc/self/fd/N` for every descriptor, a passwd naming uid 0 "evil",
/// an nsswitch.conf and an NSS module) changes nothing: files open as
/// themselves, 9P2000 names owners from the host's /etc/passwd.
#[test]
fn planted_proc_and_etc_change_nothing() {
    let top = share(0);
    let share = top.path().join("share");
    let planted = share.join("proc/self/fd");
    std::fs::create_dir_all(&planted).unwrap();
    for fd in 0..64 {
        std::fs::write(planted.join(fd.to_string()), "planted\n").unwrap();
    }
    std::fs::create_dir_all(share.join("etc")).unwrap();
    std::fs::write(share.join("etc/passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
    std::fs::write(share.join("etc/group"), "evil:x:0:\n").unwrap();
    std::fs::write(
        share.join("etc/nsswitch.conf"),
        "passwd: evil\ngroup: evil\n",
    )
    .unwrap();
    let lib = share.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("libnss_evil.so.2"), "not a library").unwrap();
    let mut daemon = start(&share, 0, &["--sandbox", "namespace"], &[]);
    let mut linux = client(&mut daemon, "9P2000.L");
    for _ in 0..3 {
        assert_eq!(cat(&mut linux, "f"), b"the share's f\n");
    }
    let mut plan9 = client(&mut daemon, "9P2000");
    let _ = plan9.try_walk(0, 1, &["f"]);
    let stat = plan9.try_stat(1).expect("Tstat");
    assert_eq!(stat.uid, b"root");
    assert_eq!(stat.gid, b"root");
    drop((linux, plan9));
    assert_eq!(daemon.stop().code(), Some(0));
}

/// A sandbox that cannot be set up, or privileges that cannot be kept,
/// stop the daemon with one line saying what and what to do; the sockets
/// it bound are gone.
#[test]
fn setup_errors_are_one_line_and_leave_no_socket() {
    for (args, says) in [
        (
            &["--sandbox", "chroot"][..],
            "error: sandbox: cannot chroot: only root may chroot; use",
        ),
        (
            &["--sandbox", "none", "--modcaps", "+sys_admin"][..],
            "error: cannot drop capabilities",
        ),
    ] {
        let top = share(NOBODY);
        let share = top.path().join("share");
        let mut daemon = start(&share, NOBODY, args, &[]);
        let status = daemon.wait();
        let stderr = daemon.stderr();
        assert_eq!(status.code(), Some(1), "{args:?}: {status}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(errors[0].contains(says), "{args:?}: {stderr}");
        assert!(
            !daemon.unix_socket().exists(),
            "{args:?}: the socket file is left"
        );
    }
}
