//! Processes seen from outside, and waiting for something to happen: the
//! descriptors a process holds, its memory and threads, and one way to poll
//! a condition with a deadline (the poll interval is the only sleep).

use std::fs::File;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a wait may take before the test fails, unless it says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(2);

/// Polls `f` until it gives a value, at most [`TIMEOUT`]; the test fails
/// naming `what` if it never does.
#[track_caller]
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_within(what, TIMEOUT, f)
}

/// The same with a deadline of `timeout`.
#[track_caller]
pub fn wait_for_within<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Polls `done` until it holds, at most [`TIMEOUT`].
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_for(what, || done().then_some(()))
}

/// Waits until `path` exists.
#[track_caller]
pub fn wait_for_path(path: &std::path::Path) {
    wait_until(&format!("{}", path.display()), || path.exists())
}

/// Polls `done` for at most `timeout`; whether it came to hold.
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The descriptors process `pid` has open. This process's own are counted
/// through a directory descriptor opened once (included in the count), so
/// that a process out of descriptors is counted too.
pub fn open_fds(pid: u32) -> usize {
    if pid != std::process::id() {
        return std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
            .count();
    }
    use nix::dir::Dir;
    use nix::fcntl::OFlag;
    static FDS: OnceLock<Mutex<Dir>> = OnceLock::new();
    let fds = FDS.get_or_init(|| {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        Mutex::new(Dir::open("/proc/self/fd", flags, nix::sys::stat::Mode::empty()).unwrap())
    });
    let mut fds = fds.lock().unwrap_or_else(|e| e.into_inner());
    // Less "." and "..".
    fds.iter().count() - 2
}

/// This process's descriptors (see [`open_fds`]).
pub fn own_open_fds() -> usize {
    open_fds(std::process::id())
}

/// A number field of /proc/PID/status ("Threads:", "VmRSS:" in kB).
pub fn status_field(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

/// Resident memory of this process, in bytes (read through a descriptor
/// opened once, as [`open_fds`]).
pub fn own_rss() -> u64 {
    use std::os::unix::fs::FileExt;
    static STATUS: OnceLock<File> = OnceLock::new();
    let status = STATUS.get_or_init(|| File::open("/proc/self/status").unwrap());
    let mut text = vec![0u8; 16 << 10];
    let n = status.read_at(&mut text, 0).unwrap();
    String::from_utf8_lossy(&text[..n])
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmRSS in /proc/self/status")
        * 1024
}

/// Resident memory of a process, in kB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    pub total: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
}

impl Rss {
    pub fn of(pid: u32) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
            shmem: field("RssShmem:"),
        }
    }
}

/// CPU time (user + system, in clock ticks) process `pid` has used.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A write lease on a host file: opening it elsewhere (the daemon's
/// Tlopen) blocks until the lease is dropped, so a request can be held up
/// on the host for as long as a test wants.
pub struct Lease(File);

impl Lease {
    pub fn take(path: &std::path::Path) -> Lease {
        use std::os::fd::AsRawFd;
        // The lease break is announced with SIGIO, which would end the test.
        // SAFETY: ignoring a signal has no preconditions.
        unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
        let file = File::options().read(true).write(true).open(path).unwrap();
        // SAFETY: plain fcntl on a descriptor we own.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
        assert_eq!(r, 0, "F_SETLEASE: {}", std::io::Error::last_os_error());
        Lease(file)
    }

    /// Whether someone is waiting for the lease (its break has begun).
    pub fn contended(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: plain fcntl on a descriptor we own.
        let r = unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_GETLEASE) };
        r != libc::F_WRLCK
    }

    /// Waits until someone waits for the lease.
    pub fn wait_contended(&self) {
        wait_until("someone to open the leased file", || self.contended());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    }
}

/// Ends the test binary if the test holding it is still running after its
/// limit: for a test whose hang (a reply never coming, a thread never
/// joined) would otherwise hang the whole run, where no one wait can be
/// given a deadline. Dropping it (the test's end, by a panic too) disarms it.
pub struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

impl Watchdog {
    /// Armed for `limit`; the test is named as its thread is (libtest
    /// names each test's thread after the test).
    pub fn arm(limit: Duration) -> Watchdog {
        let what = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?}: a hang");
                std::process::exit(101);
            }
        });
        Watchdog(tx)
    }
}
