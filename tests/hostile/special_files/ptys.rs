//! A pty in the share never becomes the daemon's controlling terminal.

use super::*;

/// A pty's master (kept open while it lives) and its pts.
struct Pty {
    _master: std::os::fd::OwnedFd,
    pts: PathBuf,
    rdev: u64,
}

fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    // SAFETY: a descriptor just opened, owned here.
    let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: fd is a pty master; name is writable for its length.
    unsafe {
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
    }
    // SAFETY: ptsname_r wrote a NUL-terminated name.
    let pts = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let pts = PathBuf::from(pts.to_str().unwrap());
    let rdev = std::fs::metadata(&pts).unwrap().rdev();
    Pty {
        _master: master,
        pts,
        rdev,
    }
}

/// Fields of /proc/PID/stat: (session, tty_nr).
fn session_and_tty(pid: u32) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    // After "(comm)": state ppid pgrp session tty_nr.
    (rest[3].parse().unwrap(), rest[4].parse().unwrap())
}

/// tty_nr as /proc/PID/stat encodes a device number.
fn tty_nr(rdev: u64) -> u32 {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// The daemon, a session leader with no controlling terminal, serves a
/// share holding a pty's pts (bind-mounted in the daemon's own mount
/// namespace, so that it is the pts itself), a node made with the pts's
/// numbers and one with /dev/ptmx's; every request of every dialect that
/// could open one is refused over its socket, nothing opens the pts, and
/// the daemon still has no controlling terminal. The same pts opened by
/// another session leader becomes its terminal, as the check expects.
#[test]
fn a_pty_never_becomes_the_daemons_controlling_terminal() {
    let pty = open_pty();
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("pts"), "").unwrap(); // the bind mount's mount point
    let pts_md = std::fs::metadata(&pty.pts).unwrap();
    let pts_kind = Kind {
        letter: 'c',
        file_type: libc::S_IFCHR,
        major: libc::major(pty.rdev),
        minor: libc::minor(pty.rdev),
        dm: DMDEVICE,
    };
    let pts_perm = pts_md.mode() & 0o7777;
    mknod(&share.join("pts-node"), libc::S_IFCHR | PERM, pty.rdev);
    mknod(
        &share.join("ptmx"),
        libc::S_IFCHR | PERM,
        libc::makedev(5, 2),
    );
    let ptmx_kind = Kind {
        major: 5,
        minor: 2,
        ..pts_kind
    };
    let nodes = [
        Node {
            name: "pts".into(),
            kind: pts_kind,
            perm: pts_perm,
            listed: false, // the directory lists the file under the mount
            link: Want::Errno(libc::EXDEV),
        },
        Node {
            name: "pts-node".into(),
            kind: pts_kind,
            perm: PERM,
            listed: true,
            link: Want::Ok,
        },
        Node {
            name: "ptmx".into(),
            kind: ptmx_kind,
            perm: PERM,
            listed: true,
            link: Want::Ok,
        },
    ];
    let sock = top.path().join("9p.sock");
    // Served by the process started (a session leader), not by a child of
    // it in a sandbox's pid namespace (which could never take a terminal).
    let help = Daemon::bare()
        .default_log_level()
        .arg("--help")
        .output()
        .stdout;
    let sandbox = match String::from_utf8_lossy(&help).contains("--sandbox") {
        true => "--sandbox none",
        false => "",
    };
    let script = format!(
        "mount --bind {pts} {share}/pts && exec {BIN} --listen unix:{sock} --shared-dir {share} \
         --no-root-squash --ctl --log-level warn {sandbox}",
        pts = pty.pts.display(),
        share = share.display(),
        sock = sock.display(),
    );
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| match libc::setsid() {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    // unshare and sh exec the daemon: one process, a session leader.
    let daemon = Killed(command.spawn().unwrap());
    let pid = daemon.0.id();
    wait_for_path(&sock);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, std::fs::canonicalize(BIN).unwrap());
    assert_eq!(
        session_and_tty(pid),
        (pid, 0),
        "the daemon: its own session, no terminal"
    );
    let watched = [
        pty.pts.as_path(),
        &share.join("pts-node"),
        &share.join("ptmx"),
    ];
    let (opens, failures) = opens_during(&watched, || {
        let mut failures = Vec::new();
        for dialect in DIALECTS {
            let mut c = Socket::attach(&sock, dialect, 0);
            for node in &nodes {
                failures.extend(every_open(&mut c, dialect, node));
            }
        }
        failures
    });
    // It served them itself (after serving, a sandbox's child would be there).
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    assert_eq!(children, "", "the daemon serves in a child process");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(opens, 0, "the pts or a pty device node was opened");
    assert_eq!(
        session_and_tty(pid).1,
        0,
        "the daemon took a controlling terminal"
    );
    drop(daemon);

    // Another session leader that opens the pts (without O_NOCTTY) has it
    // as its terminal: what the check above would have seen.
    let pts = c_path(&pty.pts);
    let mut command = Command::new("cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    // SAFETY: setsid and open are async-signal-safe; the path was made
    // before the fork. The descriptor is left to the child.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 || libc::open(pts.as_ptr(), libc::O_RDWR) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (opens, child) = opens_during(&[&pty.pts], || Killed(command.spawn().unwrap()));
    assert_eq!(opens, 1, "the session leader's open of the pts");
    let pid = child.0.id();
    assert_eq!(session_and_tty(pid), (pid, tty_nr(pty.rdev)));
}
