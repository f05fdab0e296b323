//! Thin safe wrappers over the *at system calls the server uses. Every path
//! argument here is a single component validated by the caller, or a name
//! relative to one `/proc/self/fd` directory descriptor opened once
//! ([`proc_self_fd`]): nothing here names a host path from `/`, so the
//! daemon keeps working once its root is the share (sandbox).
//!
//! [`open_file`] is the only way a file is opened for I/O from its O_PATH
//! descriptor: it refuses anything but a regular file or a directory.

use std::ffi::{CStr, CString};
use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Converts a libc return value into an io::Result.
pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A single path component as a C string; rejects empty names, names with
/// '/' or NUL, "." and "..": nothing a client sends can name more than one
/// entry of the directory it is applied to.
pub fn component(name: &[u8]) -> io::Result<CString> {
    if !crate::protocol::is_entry_name(name) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `/proc/self/fd` as a directory descriptor, opened at the first use
/// (`Server::new`, or the sandbox before it leaves the host's file system)
/// and kept for the life of the process.
static PROC_FD_DIR: OnceLock<OwnedFd> = OnceLock::new();
/// The process's working directory when the server started (the share's
/// root in a sandbox), where `in_proc_dir` returns a thread to.
static START_DIR: OnceLock<OwnedFd> = OnceLock::new();

const DIR_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;

/// Opens `/proc/self/fd` now, if it is not open yet: the sandbox calls it
/// once its own /proc is mounted, before the host's root goes away.
pub fn open_proc_fd_dir() -> io::Result<BorrowedFd<'static>> {
    if let Some(fd) = PROC_FD_DIR.get() {
        return Ok(fd.as_fd());
    }
    let fd = openat(at_cwd(), c"/proc/self/fd", DIR_FLAGS, 0)?;
    Ok(PROC_FD_DIR.get_or_init(|| fd).as_fd())
}

fn start_dir() -> io::Result<BorrowedFd<'static>> {
    if let Some(fd) = START_DIR.get() {
        return Ok(fd.as_fd());
    }
    let fd =
        openat(at_cwd(), c".", DIR_FLAGS, 0).or_else(|_| openat(at_cwd(), c"/", DIR_FLAGS, 0))?;
    Ok(START_DIR.get_or_init(|| fd).as_fd())
}

/// Opens what the server needs from outside the share before it serves:
/// `/proc/self/fd` and the working directory; notes the daemon's own
/// credentials.
pub fn init() -> io::Result<()> {
    own_credentials();
    open_proc_fd_dir()?;
    start_dir().map(drop)
}

/// The `/proc/self/fd` directory descriptor (opened on first use).
pub fn proc_self_fd() -> io::Result<BorrowedFd<'static>> {
    open_proc_fd_dir()
}

fn at_cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a valid "descriptor" for the *at calls for the
    // life of the process; it is never closed.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// A descriptor's number as a name in `/proc/self/fd`, without allocating.
pub struct FdName {
    buf: [u8; 12],
}

impl FdName {
    pub fn of(fd: BorrowedFd<'_>) -> FdName {
        let mut digits = [0u8; 10];
        let mut n = fd.as_raw_fd() as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut buf = [0u8; 12];
        for i in 0..len {
            buf[i] = digits[len - 1 - i];
        }
        FdName { buf }
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).expect("a NUL follows the digits")
    }
}

/// A file named relative to `/proc/self/fd`: `N` (the file descriptor N
/// holds) or `N/NAME` (the entry NAME of the directory descriptor N holds).
pub struct ProcPath(CString);

impl ProcPath {
    pub fn of(fd: BorrowedFd<'_>) -> ProcPath {
        ProcPath(FdName::of(fd).as_cstr().to_owned())
    }

    pub fn entry(dir: BorrowedFd<'_>, name: &CStr) -> ProcPath {
        let mut path = FdName::of(dir).as_cstr().to_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(name.to_bytes());
        ProcPath(CString::new(path).expect("no NUL in a CStr's bytes"))
    }
}

/// Opens the file an O_PATH descriptor holds again with `flags` (through
/// `/proc/self/fd`, so also when it was unlinked or renamed meanwhile).
fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let name = FdName::of(fd);
    openat(proc_self_fd()?, name.as_cstr(), flags | libc::O_CLOEXEC, 0)
}

/// A second O_PATH descriptor of the file `fd` holds.
pub fn reopen_path(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    reopen(fd, libc::O_PATH)
}

/// Opens the file an O_PATH (or open) descriptor holds for I/O with
/// `flags` (O_ACCMODE and status flags; never O_CREAT or O_PATH). The only
/// way the server opens an existing host file: only a regular file or a
/// directory, judged from the file's own statx (which the descriptor pins),
/// is opened; a symlink is ELOOP, any other file (fifo, socket, device
/// node) `special_errno`, and nothing is opened on the host for either.
/// O_NOCTTY always: no tty becomes the daemon's controlling terminal.
pub fn open_file(fd: BorrowedFd<'_>, flags: i32, special_errno: i32) -> io::Result<OwnedFd> {
    open_file_statx(fd, flags, special_errno).map(|(file, _)| file)
}

/// [`open_file`], also giving the host statx it judged the file by.
pub fn open_file_statx(
    fd: BorrowedFd<'_>,
    flags: i32,
    special_errno: i32,
) -> io::Result<(OwnedFd, libc::statx)> {
    let stx = statx(fd)?;
    match stx.stx_mode as u32 & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => {}
        libc::S_IFLNK => return Err(io::Error::from_raw_os_error(libc::ELOOP)),
        _ => return Err(io::Error::from_raw_os_error(special_errno)),
    }
    let flags = flags & !(libc::O_CREAT | libc::O_PATH | libc::O_TMPFILE);
    Ok((reopen(fd, flags | libc::O_NOCTTY)?, stx))
}

/// Inside [`in_proc_dir`]: the calling thread's working directory is
/// `/proc/self/fd`, so a [`ProcPath`] names the file it stands for in the
/// path-based calls that have no *at form (the xattr calls).
pub struct ProcDir {
    /// Tied to the thread whose working directory was changed.
    _thread: PhantomData<*const ()>,
}

/// Per thread: whether it has a working directory of its own yet, and
/// how deep it is in `in_proc_dir`.
#[derive(Clone, Copy)]
struct ProcCwd {
    own: bool,
    depth: usize,
}

thread_local! {
    static PROC_CWD: std::cell::Cell<ProcCwd> =
        const { std::cell::Cell::new(ProcCwd { own: false, depth: 0 }) };
}

fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a valid descriptor.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

/// Runs `f` with the calling thread's working directory at `/proc/self/fd`
/// (virtiofsd's way to reach a descriptor's file with path-only calls).
/// The first call on a thread gives the thread a working directory of its
/// own (unshare CLONE_FS), so other threads' relative paths are never
/// affected; the directory is restored on the way out. Nests.
pub fn in_proc_dir<R>(f: impl FnOnce(&ProcDir) -> io::Result<R>) -> io::Result<R> {
    let (fd_dir, start) = (proc_self_fd()?, start_dir()?);
    let mut state = PROC_CWD.with(|c| c.get());
    let outermost = state.depth == 0;
    if outermost {
        if !state.own {
            // SAFETY: unshare(CLONE_FS) only detaches this thread's
            // cwd/root/umask from the other threads'.
            check(unsafe { libc::unshare(libc::CLONE_FS) })?;
            state.own = true;
            PROC_CWD.with(|c| c.set(state));
        }
        fchdir(fd_dir)?;
    }
    state.depth += 1;
    PROC_CWD.with(|c| c.set(state));
    let result = f(&ProcDir {
        _thread: PhantomData,
    });
    state.depth -= 1;
    PROC_CWD.with(|c| c.set(state));
    if outermost {
        // Back to the process's working directory (this thread's own
        // since the unshare); should it no longer be searchable under the
        // request's credentials, the thread stays in /proc/self/fd, which
        // is harmless: the server names nothing relative to the cwd.
        let _ = fchdir(start);
    }
    result
}

/// The daemon's own credentials, as the process started with.
struct OwnCredentials {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

static OWN_CREDENTIALS: OnceLock<OwnCredentials> = OnceLock::new();

fn own_credentials() -> &'static OwnCredentials {
    OWN_CREDENTIALS.get_or_init(|| {
        // SAFETY: getgroups(0, NULL) only counts; the second call fills a
        // buffer of that many entries.
        let groups = unsafe {
            let n = libc::getgroups(0, std::ptr::null_mut()).max(0) as usize;
            let mut groups = vec![0 as libc::gid_t; n];
            let n = libc::getgroups(n as libc::c_int, groups.as_mut_ptr()).max(0) as usize;
            groups.truncate(n);
            groups
        };
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        OwnCredentials { uid, gid, groups }
    })
}

thread_local! {
    /// The credentials this thread's file system calls run with, if not
    /// the daemon's own.
    static THREAD_CREDENTIALS: std::cell::RefCell<Option<(u32, u32, Vec<u32>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes the calling thread's file system calls run as `uid`, `gid` and
/// `groups` (None: the daemon's own credentials again), with the raw
/// per-thread system calls (setgroups, setfsgid, setfsuid: glibc's
/// wrappers would change every thread). Once the filesystem uid is not 0
/// the kernel also drops the thread's file capabilities (CAP_CHOWN,
/// CAP_DAC_OVERRIDE, CAP_FOWNER, ...), so it checks permissions as for
/// that user. Needs root; fails (EPERM) if the kernel did not switch.
pub fn set_thread_credentials(wanted: Option<(u32, u32, &[u32])>) -> io::Result<()> {
    THREAD_CREDENTIALS.with(|current| {
        let mut current = current.borrow_mut();
        let same = match (&*current, wanted) {
            (None, None) => true,
            (Some((u, g, gs)), Some((uid, gid, groups))) => {
                *u == uid && *g == gid && gs.as_slice() == groups
            }
            _ => false,
        };
        if same {
            return Ok(());
        }
        let own = own_credentials();
        let (uid, gid, groups) = wanted.unwrap_or((own.uid, own.gid, &own.groups));
        // Mark the state unknown until the switch completes.
        *current = Some((u32::MAX, u32::MAX, Vec::new()));
        // SAFETY: raw system calls on this thread's credentials; `groups`
        // is valid for its length.
        unsafe {
            check(
                libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) as libc::c_int,
            )?;
            libc::syscall(libc::SYS_setfsgid, gid);
            libc::syscall(libc::SYS_setfsuid, uid);
            // setfsuid/setfsgid answer with the previous value; asking for
            // an invalid id (-1) changes nothing and tells the current one.
            let now_uid = libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32;
            let now_gid = libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32;
            if now_uid != uid || now_gid != gid {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
        }
        *current = wanted.map(|(u, g, gs)| (u, g, gs.to_vec()));
        Ok(())
    })
}

static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// Opens one entry of `dir` as an O_PATH descriptor without following a
/// symlink, and without crossing out of `dir` (openat2 RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS where the kernel has it; `name` is one component in
/// any case).
pub fn lookup(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    if let Some(result) = openat2(
        dir,
        name,
        flags,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    ) {
        return result;
    }
    openat(dir, name, flags, 0)
}

/// Opens `path` (relative to `root`, any number of components; empty:
/// `root` itself) as an O_PATH descriptor, as `lookup` would one component
/// at a time: no symlink followed, nothing outside `root` reached.
pub fn lookup_path(root: BorrowedFd<'_>, path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let Some(c_path) = path_below(path)? else {
        return root.try_clone_to_owned();
    };
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    if let Some(result) = openat2(root, &c_path, flags, resolve) {
        return result;
    }
    let mut at: Option<OwnedFd> = None;
    for name in path.iter() {
        let name = component(name.as_bytes())?;
        let dir = at.as_ref().map_or(root, |fd| std::os::fd::AsFd::as_fd(fd));
        at = Some(lookup(dir, &name)?);
    }
    at.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

/// `resolve_in_root` of a path from the share's root (empty: the root).
pub fn resolve_path_in_root(root: BorrowedFd<'_>, path: &std::path::Path) -> io::Result<OwnedFd> {
    match path_below(path)? {
        Some(c_path) => resolve_in_root(root, &c_path),
        None => root.try_clone_to_owned(),
    }
}

/// A path from the share's root as a C string; None for the root itself.
fn path_below(path: &std::path::Path) -> io::Result<Option<CString>> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    CString::new(path.as_os_str().as_bytes())
        .map(Some)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `path` (relative, any number of components) as an O_PATH
/// descriptor, following symlinks as if `root` were the filesystem's root:
/// an absolute target or `..` never leads out of `root` (openat2
/// RESOLVE_IN_ROOT). Fails with ELOOP where the kernel lacks openat2.
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_CLOEXEC;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    openat2(root, path, flags, resolve).unwrap_or(Err(io::Error::from_raw_os_error(libc::ELOOP)))
}

/// Tries of an O_PATH openat2 that the kernel answers EAGAIN: a lookup
/// through `..` under RESOLVE_IN_ROOT or RESOLVE_BENEATH fails so when any
/// rename or mount happened anywhere meanwhile, and is to be tried again.
const OPENAT2_TRIES: usize = 256;

/// openat2(2); None if the kernel does not have it.
fn openat2(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    resolve: u64,
) -> Option<io::Result<OwnedFd>> {
    let tries = if flags & libc::O_PATH != 0 {
        OPENAT2_TRIES
    } else {
        1
    };
    for _ in 1..tries {
        match openat2_once(dir, name, flags, resolve) {
            Some(Err(e)) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            other => return other,
        }
    }
    openat2_once(dir, name, flags, resolve)
}

fn openat2_once(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    resolve: u64,
) -> Option<io::Result<OwnedFd>> {
    if !OPENAT2_MISSING.load(Ordering::Relaxed) {
        // SAFETY: open_how is plain data; all-zero is a valid value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        how.resolve = resolve;
        // SAFETY: `how` and `name` are valid for the call; the size is that of `how`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                name.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel returned a new descriptor that we now own.
            return Some(Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Some(Err(err));
        }
        OPENAT2_MISSING.store(true, Ordering::Relaxed);
    }
    None
}

pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid C string; the result is checked.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) })?;
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// statx of the file a descriptor holds (not following a symlink).
pub fn statx(fd: BorrowedFd<'_>) -> io::Result<libc::statx> {
    statx_at(fd, c"", libc::AT_EMPTY_PATH)
}

pub fn statx_at(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<libc::statx> {
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: stx is writable memory of the right size; name is a C string.
    check(unsafe {
        libc::statx(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            stx.as_mut_ptr(),
        )
    })?;
    // SAFETY: statx succeeded and filled the structure (it was zeroed before).
    Ok(unsafe { stx.assume_init() })
}

/// Whether the calling thread's credentials (its fsuid, fsgid and
/// groups) grant `mode` (R_OK, W_OK, X_OK) on the directory `dir`.
pub fn access(dir: BorrowedFd<'_>, mode: i32) -> io::Result<()> {
    // faccessat2 itself (Linux 5.8): glibc's fallback for AT_EACCESS would
    // judge by the effective ids, not the thread's filesystem ids.
    // SAFETY: "." is a valid C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            dir.as_raw_fd(),
            c".".as_ptr(),
            mode,
            libc::AT_EACCESS,
        )
    };
    check(ret as libc::c_int).map(drop)
}

pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<libc::statfs64> {
    let mut st = MaybeUninit::<libc::statfs64>::zeroed();
    // SAFETY: st is writable memory of the right size.
    check(unsafe { libc::fstatfs64(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded and filled the structure.
    Ok(unsafe { st.assume_init() })
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both are valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
}

pub fn readlink(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is writable for its length; "" with an O_PATH symlink
    // descriptor reads that link.
    check_size(unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

/// Makes a new name `name` in `dir` for the file `fd` holds.
pub fn link(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let proc = proc_self_fd()?;
    let file = FdName::of(fd);
    // SAFETY: both names are valid C strings.
    check(unsafe {
        libc::linkat(
            proc.as_raw_fd(),
            file.as_cstr().as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

pub fn renameat(
    olddir: BorrowedFd<'_>,
    oldname: &CStr,
    newdir: BorrowedFd<'_>,
    newname: &CStr,
) -> io::Result<()> {
    // SAFETY: both names are valid C strings.
    check(unsafe {
        libc::renameat(
            olddir.as_raw_fd(),
            oldname.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
        )
    })
    .map(drop)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// chmod of the file an O_PATH descriptor holds (not a symlink).
pub fn chmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let proc = proc_self_fd()?;
    let file = FdName::of(fd);
    // SAFETY: the name is a valid C string.
    check(unsafe { libc::fchmodat(proc.as_raw_fd(), file.as_cstr().as_ptr(), mode, 0) }).map(drop)
}

/// lchown of the file a descriptor holds; u32::MAX leaves an id unchanged.
pub fn chown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: "" with AT_EMPTY_PATH names the descriptor itself.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// utimensat of the entry `name` in `dir` (nofollow), or with an empty name
/// of the file an O_PATH descriptor holds (through /proc, not a symlink).
pub fn utimens(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    let proc = proc_self_fd()?;
    let file = FdName::of(fd);
    // SAFETY: the name is a valid C string and times points to two timespecs.
    check(unsafe { libc::utimensat(proc.as_raw_fd(), file.as_cstr().as_ptr(), times.as_ptr(), 0) })
        .map(drop)
}

pub fn utimens_at(dir: BorrowedFd<'_>, name: &CStr, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: name is a valid C string and times points to two timespecs.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

pub fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let size = i64::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain syscall on a valid descriptor.
    check(unsafe { libc::ftruncate64(fd.as_raw_fd(), size) }).map(drop)
}

/// Starts writing back the dirty pages of `len` bytes at `offset` and
/// returns without waiting for them (sync_file_range WRITE): no durability
/// promise, an I/O error still shows at the next fsync.
pub fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let offset = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let len = i64::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: plain syscall on a valid descriptor.
    check(unsafe {
        libc::sync_file_range(fd.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    })
    .map(drop)
}

pub fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
    // SAFETY: plain syscall on a valid descriptor.
    check(unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })
    .map(drop)
}

pub fn lseek(fd: BorrowedFd<'_>, offset: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a valid descriptor.
    let ret = unsafe { libc::lseek64(fd.as_raw_fd(), offset as i64, libc::SEEK_SET) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads directory entries (linux_dirent64 records) into `buf`.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is writable for its length.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: buf is writable for its length.
    check_size(unsafe {
        libc::pread64(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as i64,
        )
    })
}

pub fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
    // SAFETY: buf is readable for its length.
    check_size(unsafe {
        libc::pwrite64(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            offset as i64,
        )
    })
}

/// getxattr of the file an O_PATH descriptor holds (not a symlink: the
/// /proc magic link is followed to the file).
pub fn getxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    in_proc_dir(|dir| dir.xattr_get(&ProcPath::of(fd), false, name, buf))
}

pub fn setxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
    in_proc_dir(|dir| dir.xattr_set(&ProcPath::of(fd), false, name, value, flags))
}

/// The xattr calls on a [`ProcPath`]; `nofollow` uses the l* forms (the
/// attributes of a symlink itself).
impl ProcDir {
    pub fn xattr_get(
        &self,
        path: &ProcPath,
        nofollow: bool,
        name: &CStr,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let f = if nofollow {
            libc::lgetxattr
        } else {
            libc::getxattr
        };
        // SAFETY: path and name are C strings; buf is writable for its length.
        check_size(unsafe {
            f(
                path.0.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        })
    }

    pub fn xattr_set(
        &self,
        path: &ProcPath,
        nofollow: bool,
        name: &CStr,
        value: &[u8],
        flags: i32,
    ) -> io::Result<()> {
        let f = if nofollow {
            libc::lsetxattr
        } else {
            libc::setxattr
        };
        // SAFETY: path and name are C strings; value is readable for its length.
        check(unsafe {
            f(
                path.0.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        })
        .map(drop)
    }

    pub fn xattr_list(&self, path: &ProcPath, nofollow: bool, buf: &mut [u8]) -> io::Result<usize> {
        let f = if nofollow {
            libc::llistxattr
        } else {
            libc::listxattr
        };
        // SAFETY: path is a C string; buf is writable for its length.
        check_size(unsafe { f(path.0.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    pub fn xattr_remove(&self, path: &ProcPath, nofollow: bool, name: &CStr) -> io::Result<()> {
        let f = if nofollow {
            libc::lremovexattr
        } else {
            libc::removexattr
        };
        // SAFETY: path and name are C strings.
        check(unsafe { f(path.0.as_ptr(), name.as_ptr()) }).map(drop)
    }
}

// ---- open file description locks (lock.rs) ----

fn ofd_flock(l_type: i32, start: i64, len: i64) -> libc::flock {
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0, // must be 0 for the F_OFD_* commands
    }
}

/// F_OFD_SETLK: sets (`F_RDLCK`, `F_WRLCK`) or clears (`F_UNLCK`) an open
/// file description lock on `len` bytes from `start` (`len` 0: to the end
/// of any file). Never waits: a conflicting lock is EAGAIN.
pub fn ofd_setlk(fd: BorrowedFd<'_>, l_type: i32, start: i64, len: i64) -> io::Result<()> {
    let lock = ofd_flock(l_type, start, len);
    // SAFETY: lock is a valid struct flock for the call.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) }).map(drop)
}

/// F_OFD_GETLK: a lock held through another open file description (OFD
/// lock: `l_pid` -1) or by a process (POSIX lock) that would conflict with
/// an `l_type` lock on that range, or None.
pub fn ofd_getlk(
    fd: BorrowedFd<'_>,
    l_type: i32,
    start: i64,
    len: i64,
) -> io::Result<Option<libc::flock>> {
    let mut lock = ofd_flock(l_type, start, len);
    // SAFETY: lock is a valid, writable struct flock for the call.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) })?;
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock))
}
