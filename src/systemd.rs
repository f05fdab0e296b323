//! What systemd hands the daemon: the listening socket of a `.socket` unit
//! (socket activation: sd_listen_fds(3)'s `LISTEN_PID`/`LISTEN_FDS`,
//! the descriptors from 3 on) and, when its stderr is the journal,
//! `JOURNAL_STREAM` (systemd.exec(5)).
//!
//! The unit passes the socket with `--fd 3` (QEMU's backend program
//! conventions): the daemon checks that it is the socket systemd says it
//! passed, and refuses a mismatch (another number, more sockets, a socket
//! passed but `--socket-path` used) rather than leave systemd's socket
//! unserved.

use std::ffi::OsStr;
use std::os::fd::RawFd;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// How many sockets systemd passed this process (`own_pid`), from the
/// values of `LISTEN_PID` and `LISTEN_FDS`: 0 unless `LISTEN_PID` names
/// this process (variables meant for another one are ignored, as
/// sd_listen_fds does).
pub fn passed_sockets(
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    own_pid: u32,
) -> Result<u32, String> {
    let Some(pid) = listen_pid else {
        return Ok(0);
    };
    let pid = pid
        .to_str()
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(|| format!("LISTEN_PID={}: not a process id", pid.to_string_lossy()))?;
    if pid != own_pid {
        return Ok(0);
    }
    let fds = listen_fds.unwrap_or_default();
    fds.to_str()
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| {
            format!(
                "LISTEN_FDS={}: not a number of descriptors (LISTEN_PID is this process)",
                fds.to_string_lossy()
            )
        })
}

/// Checks the vhost-user descriptor given (`--fd`) against the sockets
/// systemd passed: none, anything goes; one, it must be `--fd 3`; more,
/// refused (the daemon serves one vhost-user socket).
pub fn check_fd(passed: u32, fd: Option<RawFd>) -> Result<(), String> {
    const START: RawFd = LISTEN_FDS_START;
    match (passed, fd) {
        (0, _) | (1, Some(START)) => Ok(()),
        (1, Some(fd)) => Err(format!(
            "--fd {fd}: systemd passed its socket as descriptor {START} (LISTEN_FDS=1); give \
             --fd {START}"
        )),
        (1, None) => Err(format!(
            "systemd passed a listening socket as descriptor {START} (LISTEN_FDS=1): serve it \
             with --fd {START} (not --socket-path)"
        )),
        (n, _) => Err(format!(
            "LISTEN_FDS={n}: systemd passed {n} sockets; the daemon serves one vhost-user \
             socket: give its .socket unit one ListenStream="
        )),
    }
}

/// How many sockets systemd passed this process (`passed_sockets`);
/// unsets `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` whatever they
/// say, so that no process the daemon starts takes them for its own
/// (sd_listen_fds(3) with `unset_environment`). Call before any thread
/// exists (the environment is changed).
pub fn take_listen_fds() -> Result<u32, String> {
    let pid = std::env::var_os("LISTEN_PID");
    let fds = std::env::var_os("LISTEN_FDS");
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    passed_sockets(pid.as_deref(), fds.as_deref(), std::process::id())
}

/// Whether `journal_stream` (the value of `JOURNAL_STREAM`, `DEV:INODE`
/// in decimal) names the file `stderr` is (its device and inode): systemd
/// sets it for a service whose stderr is the journal, and the variable
/// may outlive a redirection, hence the comparison.
pub fn is_journal(journal_stream: Option<&OsStr>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some(stderr)) = (journal_stream.and_then(OsStr::to_str), stderr) else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    match (dev.parse::<u64>(), ino.parse::<u64>()) {
        (Ok(dev), Ok(ino)) => (dev, ino) == stderr,
        _ => false,
    }
}

/// The device and inode of the daemon's stderr, if it is open.
fn stderr_id() -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st is writable for a stat; any descriptor number may be asked.
    if unsafe { libc::fstat(libc::STDERR_FILENO, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded and filled it.
    let st = unsafe { st.assume_init() };
    Some((st.st_dev, st.st_ino))
}

/// Whether the daemon's stderr is the journal (which stamps each line
/// itself).
pub fn stderr_is_journal() -> bool {
    is_journal(std::env::var_os("JOURNAL_STREAM").as_deref(), stderr_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn sockets_are_passed_only_to_the_process_listen_pid_names() {
        assert_eq!(passed_sockets(None, None, 42), Ok(0));
        assert_eq!(passed_sockets(None, os("1"), 42), Ok(0));
        assert_eq!(passed_sockets(os("42"), os("1"), 42), Ok(1));
        assert_eq!(passed_sockets(os("42"), os("0"), 42), Ok(0));
        assert_eq!(passed_sockets(os("42"), os("3"), 42), Ok(3));
        // Meant for another process (a parent that did not unset them).
        assert_eq!(passed_sockets(os("41"), os("1"), 42), Ok(0));
        assert_eq!(passed_sockets(os("41"), os("junk"), 42), Ok(0));
        assert_eq!(
            passed_sockets(os("x42"), os("1"), 42),
            Err("LISTEN_PID=x42: not a process id".into())
        );
        assert_eq!(
            passed_sockets(os("42"), None, 42),
            Err("LISTEN_FDS=: not a number of descriptors (LISTEN_PID is this process)".into())
        );
        assert_eq!(
            passed_sockets(os("42"), os("-1"), 42),
            Err("LISTEN_FDS=-1: not a number of descriptors (LISTEN_PID is this process)".into())
        );
    }

    #[test]
    fn a_passed_socket_must_be_served_as_fd_3() {
        assert_eq!(check_fd(0, None), Ok(()));
        assert_eq!(check_fd(0, Some(7)), Ok(()));
        assert_eq!(check_fd(1, Some(3)), Ok(()));
        assert!(check_fd(1, Some(4))
            .unwrap_err()
            .starts_with("--fd 4: systemd passed its socket as descriptor 3"));
        assert!(check_fd(1, None)
            .unwrap_err()
            .contains("serve it with --fd 3"));
        assert!(check_fd(2, Some(3))
            .unwrap_err()
            .starts_with("LISTEN_FDS=2: systemd passed 2 sockets"));
    }

    #[test]
    fn taking_the_sockets_unsets_the_variables() {
        // The only test of this binary that touches these variables.
        let pid = std::process::id().to_string();
        std::env::set_var("LISTEN_PID", &pid);
        std::env::set_var("LISTEN_FDS", "1");
        std::env::set_var("LISTEN_FDNAMES", "vhost");
        assert_eq!(take_listen_fds(), Ok(1));
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            assert_eq!(std::env::var_os(name), None, "{name}");
        }
        // Unset also when they were another process's.
        std::env::set_var("LISTEN_PID", "1");
        std::env::set_var("LISTEN_FDS", "1");
        assert_eq!(take_listen_fds(), Ok(0));
        assert_eq!(std::env::var_os("LISTEN_PID"), None);
        assert_eq!(take_listen_fds(), Ok(0));
    }

    #[test]
    fn the_journal_is_stderr_only_when_journal_stream_names_it() {
        let stderr = Some((2049, 123456));
        assert!(is_journal(os("2049:123456"), stderr));
        assert!(!is_journal(None, stderr));
        assert!(!is_journal(os("2049:123456"), None));
        // Stderr redirected since systemd set it.
        assert!(!is_journal(os("2049:654321"), stderr));
        assert!(!is_journal(os("2050:123456"), stderr));
        for junk in [
            "",
            ":",
            "2049",
            "2049:",
            ":123456",
            "2049:123456:1",
            "0x801:123456",
        ] {
            assert!(!is_journal(os(junk), stderr), "{junk:?}");
        }
        // The test's own stderr, as the daemon reads it.
        let (dev, ino) = stderr_id().expect("stderr is open");
        assert!(is_journal(os(&format!("{dev}:{ino}")), stderr_id()));
    }
}
