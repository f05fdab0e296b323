//! Tlock / Tgetlock against the server directly (no transport): owners,
//! conflicts, merging, release on clunk, host locks, descriptor hygiene.

use std::fs::{self, File};
use std::path::Path;
use std::sync::Mutex;

mod common;
use common::inproc::{InProc, TypedClient};
use common::proc::own_open_fds;

use vhost_user_9p::protocol::{self, Rmessage, Tmessage};
use vhost_user_9p::server::Config;

const RDLCK: u8 = 0;
const WRLCK: u8 = 1;
const UNLCK: u8 = 2;
const SUCCESS: u8 = 0;
const BLOCKED: u8 = 1;
const BLOCK: u32 = 1;

const ROOT: u32 = 0;
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;

/// The descriptor-count test needs the process to itself; the others are
/// cheap, so they all take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lock reply, or the Rlerror errno.
type LockResult = Result<u8, u32>;

#[derive(Debug, PartialEq, Eq)]
struct GetLock {
    lock_type: u8,
    start: u64,
    length: u64,
    proc_id: u32,
}

/// A server on a fresh directory (files `f` and `g`, a directory `d`),
/// a session attached at fid ROOT; and the directory.
fn conn() -> (tempfile::TempDir, InProc) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"0123456789").unwrap();
    fs::write(dir.path().join("g"), b"").unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    let c = session(&Config::new(dir.path()));
    (dir, c)
}

/// A session of a server on `config`, attached at fid ROOT.
fn session(config: &Config) -> InProc {
    let mut c = InProc::serving(config);
    start(&mut c);
    c
}

/// Tversion (a new session: every fid goes) and Tattach of ROOT as root.
fn start(c: &mut InProc) {
    c.version(65536, "9P2000.L").ok();
    c.attach_as(ROOT, 0).ok();
}

/// Walks `fid` from the root to `name` and opens it.
#[track_caller]
fn open(c: &mut InProc, fid: u32, name: &str, flags: u32) {
    c.walk_open(ROOT, fid, &[name], flags).ok();
}

#[allow(clippy::too_many_arguments)]
fn lock_full(
    c: &mut InProc,
    fid: u32,
    lock_type: u8,
    flags: u32,
    start: u64,
    length: u64,
    proc_id: u32,
    client: &str,
) -> LockResult {
    TypedClient::lock(c, fid, lock_type, flags, start, length, proc_id, client)
        .map_err(|e| e as u32)
}

fn lock(
    c: &mut InProc,
    fid: u32,
    lock_type: u8,
    start: u64,
    length: u64,
    proc_id: u32,
) -> LockResult {
    lock_full(c, fid, lock_type, 0, start, length, proc_id, "guest")
}

fn getlock_as(
    c: &mut InProc,
    fid: u32,
    lock_type: u8,
    start: u64,
    length: u64,
    proc_id: u32,
) -> Result<GetLock, u32> {
    let reply = c.getlock(fid, lock_type, start, length, proc_id, "guest");
    match reply.msg() {
        Rmessage::Getlock(r) => {
            assert_eq!(r.client_id.as_bytes(), b"guest");
            Ok(GetLock {
                lock_type: r.lock_type,
                start: r.start,
                length: r.length,
                proc_id: r.proc_id,
            })
        }
        Rmessage::Lerror(e) => Err(e.ecode),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// As the Linux client asks: always with type UNLCK.
fn getlock(c: &mut InProc, fid: u32, start: u64, length: u64, proc_id: u32) -> GetLock {
    getlock_as(c, fid, UNLCK, start, length, proc_id).unwrap()
}

fn unlocked(start: u64, length: u64, proc_id: u32) -> GetLock {
    GetLock {
        lock_type: UNLCK,
        start,
        length,
        proc_id,
    }
}

fn held(lock_type: u8, start: u64, length: u64, proc_id: u32) -> GetLock {
    GetLock {
        lock_type,
        start,
        length,
        proc_id,
    }
}

/// A host process that takes POSIX (fcntl) locks on one file on demand.
/// (Not this test process: the server closing any descriptor of the file
/// would drop this process's POSIX locks on it.)
struct HostProcess {
    pid: libc::pid_t,
    cmd: Option<File>,
    res: File,
}

/// What F_GETLK found, or (for F_SETLK) the l_type set; Err(errno).
type HostResult = Result<(i32, i64, i64, i32), i32>;

impl HostProcess {
    /// Forks a child with the file open read-write. The child only makes
    /// async-signal-safe calls, and keeps no descriptor but its own.
    fn new(path: &Path) -> HostProcess {
        use std::os::fd::FromRawFd;
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let mut cmd = [0; 2];
        let mut res = [0; 2];
        // SAFETY: plain syscalls on arrays of two ints.
        unsafe {
            assert_eq!(libc::pipe2(cmd.as_mut_ptr(), libc::O_CLOEXEC), 0);
            assert_eq!(libc::pipe2(res.as_mut_ptr(), libc::O_CLOEXEC), 0);
        }
        // SAFETY: the child only calls async-signal-safe functions below and
        // leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: async-signal-safe system calls on valid arguments.
            unsafe {
                libc::dup2(cmd[0], 0);
                libc::dup2(res[1], 1);
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                let fd = libc::open(path.as_ptr(), libc::O_RDWR);
                let mut req = [0i64; 4];
                while libc::read(0, req.as_mut_ptr().cast(), 32) == 32 {
                    let mut fl: libc::flock = std::mem::zeroed();
                    fl.l_type = req[1] as libc::c_short;
                    fl.l_whence = libc::SEEK_SET as libc::c_short;
                    fl.l_start = req[2];
                    fl.l_len = req[3];
                    let ret = libc::fcntl(fd, req[0] as i32, &mut fl);
                    let err = if ret < 0 {
                        *libc::__errno_location()
                    } else {
                        0
                    };
                    let out = [
                        err as i64,
                        fl.l_type as i64,
                        fl.l_start,
                        fl.l_len,
                        fl.l_pid as i64,
                    ];
                    libc::write(1, out.as_ptr().cast(), 40);
                }
                libc::_exit(0);
            }
        }
        // SAFETY: the parent owns its ends of the pipes and closes the others.
        unsafe {
            libc::close(cmd[0]);
            libc::close(res[1]);
            HostProcess {
                pid,
                cmd: Some(File::from_raw_fd(cmd[1])),
                res: File::from_raw_fd(res[0]),
            }
        }
    }

    fn fcntl(&mut self, cmd: i32, l_type: i32, start: i64, len: i64) -> HostResult {
        use std::io::{Read, Write};
        let req = [cmd as i64, l_type as i64, start, len];
        let bytes: Vec<u8> = req.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.cmd.as_mut().unwrap().write_all(&bytes).unwrap();
        let mut out = [0u8; 40];
        self.res.read_exact(&mut out).unwrap();
        let v: Vec<i64> = out
            .chunks(8)
            .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        if v[0] != 0 {
            return Err(v[0] as i32);
        }
        Ok((v[1] as i32, v[2], v[3], v[4] as i32))
    }

    /// F_SETLK: Ok or the errno.
    fn setlk(&mut self, l_type: i32, start: i64, len: i64) -> Result<(), i32> {
        self.fcntl(libc::F_SETLK, l_type, start, len).map(drop)
    }

    /// F_GETLK: (type, start, len, pid) of a conflicting lock, or F_UNLCK.
    fn getlk(&mut self, l_type: i32, start: i64, len: i64) -> (i32, i64, i64, i32) {
        self.fcntl(libc::F_GETLK, l_type, start, len).unwrap()
    }

    /// The conflicting lock's type only.
    fn getlk_type(&mut self, l_type: i32) -> i32 {
        self.getlk(l_type, 0, 0).0
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        // Closing the command pipe ends the child's loop.
        drop(self.cmd.take());
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}

#[test]
fn two_owners_conflict() {
    let _s = serial();
    let (_dir, mut c) = conn();
    open(&mut c, 1, "f", O_RDWR);
    open(&mut c, 2, "f", O_RDWR);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 10, 100), Ok(SUCCESS));
    // Another process: blocked on any overlap, also through a blocking request.
    assert_eq!(lock(&mut c, 2, WRLCK, 5, 1, 200), Ok(BLOCKED));
    assert_eq!(
        lock_full(&mut c, 2, RDLCK, BLOCK, 9, 0, 200, "guest"),
        Ok(BLOCKED)
    );
    // Beyond the range: free.
    assert_eq!(lock(&mut c, 2, WRLCK, 10, 5, 200), Ok(SUCCESS));
    // Same pid, other client: another owner.
    assert_eq!(
        lock_full(&mut c, 2, RDLCK, 0, 0, 1, 100, "other-guest"),
        Ok(BLOCKED)
    );
    // Read locks share.
    assert_eq!(lock(&mut c, 1, RDLCK, 0, 10, 100), Ok(SUCCESS)); // downgrade
    assert_eq!(lock(&mut c, 2, RDLCK, 0, 10, 200), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 0, 1, 200), Ok(BLOCKED));
}

#[test]
fn unlock_then_success() {
    let _s = serial();
    let (_dir, mut c) = conn();
    open(&mut c, 1, "f", O_RDWR);
    open(&mut c, 2, "f", O_RDWR);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 100, 1, 200), Ok(BLOCKED));
    // Unlock part of it: the hole is free, the rest still held.
    assert_eq!(lock(&mut c, 1, UNLCK, 100, 10, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 100, 10, 200), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 110, 1, 200), Ok(BLOCKED));
    assert_eq!(lock(&mut c, 2, WRLCK, 99, 1, 200), Ok(BLOCKED));
    assert_eq!(lock(&mut c, 1, UNLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 0, 0, 200), Ok(SUCCESS));
    // Unlocking what one does not hold is fine.
    assert_eq!(lock(&mut c, 1, UNLCK, 0, 0, 300), Ok(SUCCESS));
}

#[test]
fn same_owner_through_two_fids_merges() {
    let _s = serial();
    let (_dir, mut c) = conn();
    open(&mut c, 1, "f", O_RDWR);
    open(&mut c, 2, "f", O_RDONLY);
    open(&mut c, 3, "f", O_RDWR);
    // One process, two open files: its locks are one set.
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 10, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, RDLCK, 5, 10, 100), Ok(SUCCESS)); // no self-conflict
    assert_eq!(lock(&mut c, 1, WRLCK, 10, 10, 100), Ok(SUCCESS));
    // Now [0,5) write, [5,10) read... then write again from 10: as POSIX.
    assert_eq!(getlock(&mut c, 3, 0, 0, 200), held(WRLCK, 0, 5, 100));
    assert_eq!(
        getlock_as(&mut c, 3, RDLCK, 5, 5, 200).unwrap(),
        unlocked(5, 5, 200)
    );
    assert_eq!(getlock(&mut c, 3, 5, 5, 200), held(RDLCK, 5, 5, 100));
    assert_eq!(getlock(&mut c, 3, 10, 0, 200), held(WRLCK, 10, 10, 100));
    // Unlocking through the other fid unlocks what was taken through the first.
    assert_eq!(lock(&mut c, 2, UNLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 3, WRLCK, 0, 0, 200), Ok(SUCCESS));
    // Adjacent locks of one kind merge into one range.
    assert_eq!(lock(&mut c, 3, UNLCK, 0, 0, 200), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 4, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 4, 4, 100), Ok(SUCCESS)); // read-only fid: still the owner's
    assert_eq!(getlock(&mut c, 3, 0, 0, 200), held(WRLCK, 0, 8, 100));
}

#[test]
fn getlock_reports_conflict() {
    let _s = serial();
    let (_dir, mut c) = conn();
    open(&mut c, 1, "f", O_RDWR);
    open(&mut c, 2, "f", O_RDWR);
    assert_eq!(getlock(&mut c, 2, 0, 0, 200), unlocked(0, 0, 200));
    assert_eq!(lock(&mut c, 1, RDLCK, 20, 30, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 1, WRLCK, 100, 0, 100), Ok(SUCCESS));
    assert_eq!(getlock(&mut c, 2, 0, 10, 200), unlocked(0, 10, 200));
    assert_eq!(getlock(&mut c, 2, 0, 0, 200), held(RDLCK, 20, 30, 100));
    assert_eq!(getlock(&mut c, 2, 60, 0, 200), held(WRLCK, 100, 0, 100));
    // A read lock does not conflict with read locks.
    assert_eq!(
        getlock_as(&mut c, 2, RDLCK, 0, 60, 200),
        Ok(unlocked(0, 60, 200))
    );
    assert_eq!(
        getlock_as(&mut c, 2, RDLCK, 0, 0, 200),
        Ok(held(WRLCK, 100, 0, 100))
    );
    // The owner's own locks are not conflicts.
    assert_eq!(getlock(&mut c, 1, 0, 0, 100), unlocked(0, 0, 100));
    assert_eq!(getlock(&mut c, 2, 0, 0, 100), unlocked(0, 0, 100));
}

#[test]
fn clunk_releases() {
    let _s = serial();
    let (_dir, mut c) = conn();
    open(&mut c, 1, "f", O_RDWR);
    open(&mut c, 2, "f", O_RDWR);
    open(&mut c, 3, "f", O_RDWR);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 10, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 20, 10, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 3, WRLCK, 0, 0, 200), Ok(BLOCKED));
    // Clunking a fid the owner locked through releases all its locks on
    // the file (as closing any descriptor does for a process).
    c.clunk(1).ok();
    assert_eq!(lock(&mut c, 3, WRLCK, 0, 0, 200), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 3, UNLCK, 0, 0, 200), Ok(SUCCESS));
    // The owner can lock again through its other fid, and clunking that
    // one releases too.
    assert_eq!(lock(&mut c, 2, WRLCK, 0, 1, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 3, WRLCK, 0, 0, 200), Ok(BLOCKED));
    c.clunk(2).ok();
    assert_eq!(lock(&mut c, 3, WRLCK, 0, 0, 200), Ok(SUCCESS));
    // Tremove clunks as well.
    open(&mut c, 4, "g", O_RDWR);
    open(&mut c, 5, "g", O_RDWR);
    assert_eq!(lock(&mut c, 4, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 5, WRLCK, 0, 0, 200), Ok(BLOCKED));
    c.call(Tmessage::Remove(protocol::Tremove { fid: 4 })).ok();
    assert_eq!(lock(&mut c, 5, WRLCK, 0, 0, 200), Ok(SUCCESS));
}

#[test]
fn session_reset_and_end_release() {
    let _s = serial();
    let (dir, mut c) = conn();
    let mut host = HostProcess::new(&dir.path().join("f"));
    open(&mut c, 1, "f", O_RDWR);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(host.setlk(libc::F_RDLCK, 0, 1), Err(libc::EAGAIN));
    // Tversion starts a new session: all fids go, and their locks.
    c.version(65536, "9P2000.L").ok();
    assert_eq!(host.getlk_type(libc::F_WRLCK), libc::F_UNLCK);
    c.attach_as(ROOT, 0).ok();
    open(&mut c, 1, "f", O_RDWR);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(host.getlk_type(libc::F_WRLCK), libc::F_WRLCK);
    // The connection ends.
    let InProc {
        server, session, ..
    } = c;
    drop(session);
    drop(server);
    assert_eq!(host.getlk_type(libc::F_WRLCK), libc::F_UNLCK);
}

#[test]
fn host_locks_conflict_with_guest_locks() {
    let _s = serial();
    let (dir, mut c) = conn();
    let mut host = HostProcess::new(&dir.path().join("f"));
    let pid = host.pid as u32;
    // A host process holds a write lock on [10, 20).
    assert_eq!(host.setlk(libc::F_WRLCK, 10, 10), Ok(()));
    open(&mut c, 1, "f", O_RDWR);
    assert_eq!(lock(&mut c, 1, RDLCK, 15, 1, 100), Ok(BLOCKED));
    assert_eq!(
        lock_full(&mut c, 1, WRLCK, BLOCK, 0, 0, 100, "guest"),
        Ok(BLOCKED)
    );
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 10, 100), Ok(SUCCESS));
    assert_eq!(getlock(&mut c, 1, 0, 0, 100), held(WRLCK, 10, 10, pid));
    assert_eq!(getlock(&mut c, 1, 0, 10, 100), unlocked(0, 10, 100));
    // The guest's lock shuts the host out in turn (an OFD lock: pid -1).
    assert_eq!(host.getlk(libc::F_RDLCK, 0, 0), (libc::F_WRLCK, 0, 10, -1));
    assert_eq!(host.setlk(libc::F_RDLCK, 5, 1), Err(libc::EAGAIN));
    // The host lets go: the guest gets it.
    assert_eq!(host.setlk(libc::F_UNLCK, 0, 0), Ok(()));
    assert_eq!(getlock(&mut c, 1, 0, 0, 100), unlocked(0, 0, 100));
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Ok(SUCCESS));
    // A host reader and a guest read lock share; a guest write lock does not.
    assert_eq!(lock(&mut c, 1, RDLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(host.setlk(libc::F_RDLCK, 0, 0), Ok(()));
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 1, 100), Ok(BLOCKED));
    assert_eq!(getlock(&mut c, 1, 0, 0, 100), held(RDLCK, 0, 0, pid));
    // ... and the failed upgrade left the guest's read lock in place.
    assert_eq!(host.setlk(libc::F_UNLCK, 0, 0), Ok(()));
    assert_eq!(host.getlk(libc::F_WRLCK, 0, 0), (libc::F_RDLCK, 0, 0, -1));
    // Clunk: the host is free again.
    c.clunk(1).ok();
    assert_eq!(host.setlk(libc::F_WRLCK, 0, 0), Ok(()));
}

#[test]
fn write_lock_through_read_only_open_and_directories() {
    let _s = serial();
    let (dir, mut c) = conn();
    let mut host = HostProcess::new(&dir.path().join("f"));
    // flock(LOCK_EX) on an O_RDONLY file arrives as a write lock.
    open(&mut c, 1, "f", O_RDONLY);
    open(&mut c, 2, "f", O_RDONLY);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, RDLCK, 0, 0, 200), Ok(BLOCKED));
    assert_eq!(host.getlk_type(libc::F_RDLCK), libc::F_WRLCK);
    c.clunk(1).ok();
    // A write-only open takes read locks too.
    open(&mut c, 3, "f", O_WRONLY);
    assert_eq!(lock(&mut c, 3, RDLCK, 0, 0, 300), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, RDLCK, 0, 0, 200), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, WRLCK, 0, 0, 200), Ok(BLOCKED));
    c.clunk(2).ok();
    c.clunk(3).ok();
    // Directories: a write lock is a read lock on the host (a directory
    // cannot be opened for writing), and exclusive between guest owners.
    open(&mut c, 4, "d", O_RDONLY);
    open(&mut c, 5, "d", O_RDONLY);
    assert_eq!(lock(&mut c, 4, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 5, RDLCK, 0, 0, 200), Ok(BLOCKED));
    assert_eq!(getlock(&mut c, 5, 0, 0, 200), held(WRLCK, 0, 0, 100));
    c.clunk(4).ok();
    assert_eq!(lock(&mut c, 5, WRLCK, 0, 0, 200), Ok(SUCCESS));
}

#[test]
fn bad_requests() {
    let _s = serial();
    let (_dir, mut c) = conn();
    // Not open: EBADF; no such fid: EBADF.
    c.walk(ROOT, 1, &["f"]).ok();
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Err(libc::EBADF as u32));
    assert_eq!(
        getlock_as(&mut c, 1, WRLCK, 0, 0, 100),
        Err(libc::EBADF as u32)
    );
    assert_eq!(lock(&mut c, 9, WRLCK, 0, 0, 100), Err(libc::EBADF as u32));
    c.lopen(1, O_RDWR).ok();
    // Bad type, bad flags.
    assert_eq!(lock(&mut c, 1, 3, 0, 0, 100), Err(libc::EINVAL as u32));
    assert_eq!(
        getlock_as(&mut c, 1, 7, 0, 0, 100),
        Err(libc::EINVAL as u32)
    );
    assert_eq!(
        lock_full(&mut c, 1, WRLCK, 4, 0, 0, 100, "guest"),
        Err(libc::EINVAL as u32)
    );
    // Offsets beyond i64: EINVAL; lengths reaching beyond run to the end.
    assert_eq!(
        lock(&mut c, 1, WRLCK, 1 << 63, 1, 100),
        Err(libc::EINVAL as u32)
    );
    assert_eq!(
        getlock_as(&mut c, 1, WRLCK, u64::MAX, 0, 100),
        Err(libc::EINVAL as u32)
    );
    assert_eq!(lock(&mut c, 1, WRLCK, 1000, u64::MAX, 100), Ok(SUCCESS));
    open(&mut c, 2, "f", O_RDWR);
    assert_eq!(getlock(&mut c, 2, 0, 0, 200), held(WRLCK, 1000, 0, 100));
    let last = i64::MAX as u64;
    assert_eq!(lock(&mut c, 1, UNLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 1, WRLCK, last, 1, 100), Ok(SUCCESS));
    assert_eq!(getlock(&mut c, 2, 0, 0, 200), held(WRLCK, last, 0, 100));
    // RECLAIM is accepted (there is no grace period).
    assert_eq!(
        lock_full(&mut c, 1, RDLCK, 2, 0, 1, 100, "guest"),
        Ok(SUCCESS)
    );
}

#[test]
fn no_descriptor_leak() {
    let _s = serial();
    let (_dir, mut c) = conn();
    open(&mut c, 1, "f", O_RDWR);
    // The server's two process-lifetime descriptors (/proc/self/fd and
    // the working directory) are open before counting.
    vhost_user_9p::server::host::init().unwrap();
    let before = own_open_fds();
    for i in 0..1000u32 {
        let fid = 10 + i % 3;
        open(&mut c, fid, "f", if i % 2 == 0 { O_RDWR } else { O_RDONLY });
        let pid = 1000 + i % 7;
        assert_eq!(lock(&mut c, fid, WRLCK, u64::from(i), 10, pid), Ok(SUCCESS));
        assert_eq!(lock(&mut c, fid, RDLCK, 0, 5, pid), Ok(SUCCESS));
        assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 1), Ok(BLOCKED));
        assert_eq!(getlock(&mut c, 1, 0, 0, 1).proc_id, pid);
        match i % 3 {
            // Unlock, then clunk.
            0 => assert_eq!(lock(&mut c, fid, UNLCK, 0, 0, pid), Ok(SUCCESS)),
            // Clunk with the locks held.
            1 => {}
            // Unlock through another fid of the owner, then clunk.
            _ => {
                open(&mut c, 20, "f", O_RDONLY);
                assert_eq!(lock(&mut c, 20, UNLCK, 0, 0, pid), Ok(SUCCESS));
                c.clunk(20).ok();
            }
        }
        c.clunk(fid).ok();
        assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 1), Ok(SUCCESS), "cycle {i}");
        assert_eq!(lock(&mut c, 1, UNLCK, 0, 0, 1), Ok(SUCCESS));
    }
    assert_eq!(own_open_fds(), before);
    // Lock/unlock through one fid that stays: no descriptor piles up either.
    open(&mut c, 2, "f", O_RDWR);
    let before = own_open_fds();
    for pid in 0..1000 {
        assert_eq!(lock(&mut c, 2, WRLCK, 0, 0, pid), Ok(SUCCESS));
        assert_eq!(lock(&mut c, 2, UNLCK, 0, 0, pid), Ok(SUCCESS));
    }
    assert_eq!(own_open_fds(), before);
    // Many owners at once each hold one descriptor, all closed by the clunk.
    for pid in 0..100 {
        assert_eq!(lock(&mut c, 2, RDLCK, 0, 0, pid), Ok(SUCCESS));
    }
    assert_eq!(own_open_fds(), before + 100);
    c.clunk(2).ok();
    assert_eq!(own_open_fds(), before - 2); // and the fid's own two
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 1), Ok(SUCCESS));
}

#[test]
fn readonly_share_still_locks() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"x").unwrap();
    let mut config = Config::new(dir.path());
    config.readonly = true;
    let mut c = session(&config);
    open(&mut c, 1, "f", O_RDONLY);
    open(&mut c, 2, "f", O_RDONLY);
    assert_eq!(lock(&mut c, 1, WRLCK, 0, 0, 100), Ok(SUCCESS));
    assert_eq!(lock(&mut c, 2, RDLCK, 0, 0, 200), Ok(BLOCKED));
    // On the host it is a read lock: the share is never opened for writing.
    let mut host = HostProcess::new(&dir.path().join("f"));
    assert_eq!(host.getlk_type(libc::F_WRLCK), libc::F_RDLCK);
}
