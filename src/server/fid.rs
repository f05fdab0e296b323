//! Fids: the client's handles on files. Each holds an O_PATH descriptor of
//! its file, reached one component at a time without following symlinks,
//! and once opened, its own open descriptor.
//!
//! A guest can hold more fids than the process may have descriptors (a
//! cache=loose client keeps one per dentry it caches). So when the fids'
//! descriptors near the open file limit, the O_PATH descriptors of idle
//! fids are closed (`FidTable::release_idle`) and opened again from the
//! fid's path when a request needs them (`Fid::pin`).
//!
//! A sweep looks only at the fids that hold a descriptor it may close: each
//! session keeps them in a queue (`Clock`), in the order they got their
//! descriptor, and a sweep takes them from the front, CLOCK style: one used
//! since it last came round gets a second chance (back to the end of the
//! queue), the others are released until enough are. So a sweep costs
//! what it releases, however many idle fids (their descriptors closed)
//! the session holds.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::share::budget::{self, OpenSlot};
use super::share::{DirCursor, StatxDev};
use crate::sync::Locked;

/// The open state of a fid after Tlopen / Tlcreate.
pub struct OpenFile {
    pub fd: Arc<OwnedFd>,
    /// The 9P2000.L open flags the client asked for.
    pub flags: u32,
    /// A directory's read position; boxed, since every fid has room for
    /// an OpenFile and few are open directories (64 bytes less per fid).
    pub dir: Option<Box<Mutex<DirCursor>>>,
    /// Device of the file, for the qids of directory entries.
    pub dev: u64,
    /// The next write must clear setuid/setgid (opened by a guest user other
    /// than root on a file that has them, as the kernel does for writes).
    pub kill_priv: std::sync::atomic::AtomicBool,
    /// 9P2000 ORCLOSE: remove the file when the fid is clunked.
    pub remove_on_clunk: std::sync::atomic::AtomicBool,
    /// Where the fid's writes have got to, for write-behind.
    pub write_stream: WriteStream,
    /// Counts against the session's open files.
    _slot: OpenSlot,
}

/// The run of back-to-back writes a fid is making (each write starting
/// where the last ended), so that a file being streamed out can be written
/// back to disk behind the writer. Racing writes on one fid only make the
/// guess worse, never wrong: write-behind is a hint.
#[derive(Debug, Default)]
pub struct WriteStream {
    /// Where the current run began.
    start: AtomicU64,
    /// Where a write must start to continue the run.
    next: AtomicU64,
}

impl WriteStream {
    /// Records a write of `len` bytes at `offset`. Returns the offset of the
    /// `window`-sized, `window`-aligned stretch to start writing back: the
    /// one that ended a whole window before this write's end, when this
    /// write crossed into a new window and that stretch lies entirely within
    /// the run. So nothing is written back before a run reaches two windows,
    /// and never the stretch still being written. `window` 0: never.
    pub fn advance(&self, offset: u64, len: u64, window: u64) -> Option<u64> {
        if window == 0 || len == 0 {
            return None;
        }
        if self.next.load(Ordering::Relaxed) != offset {
            self.start.store(offset, Ordering::Relaxed);
        }
        let end = offset.saturating_add(len);
        self.next.store(end, Ordering::Relaxed);
        let current = end / window;
        if current == offset / window || current < 2 {
            return None;
        }
        let from = (current - 2) * window;
        (from >= self.start.load(Ordering::Relaxed)).then_some(from)
    }
}

impl OpenFile {
    pub fn new(fd: OwnedFd, flags: u32, is_dir: bool, dev: u64, slot: OpenSlot) -> Self {
        budget::hold();
        OpenFile {
            _slot: slot,
            fd: Arc::new(fd),
            flags,
            dir: is_dir.then(|| Box::new(Mutex::new(DirCursor::new()))),
            dev,
            kill_priv: std::sync::atomic::AtomicBool::new(false),
            remove_on_clunk: std::sync::atomic::AtomicBool::new(false),
            write_stream: WriteStream::default(),
        }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        budget::release();
    }
}

/// A fid's O_PATH descriptor: open, or closed to spare descriptors (with
/// the identity of the file, to check it when opening it again).
pub struct PathHandle {
    state: Mutex<HandleState>,
    /// Used since a sweep last came to it: spared once (a second chance).
    pub(super) used: AtomicBool,
    /// In its session's `Clock`: set when pushed there, cleared when a
    /// sweep takes it off for good. Changed only with `state` locked, so
    /// that a fid released and opened again is pushed once more, and only
    /// once. (Beside the mutex rather than in it: a fid is 8 bytes less.)
    queued: AtomicBool,
}

pub(super) enum HandleState {
    Open(Arc<OwnedFd>),
    Released(FileIdentity),
}

/// What a sweep did with a fid's O_PATH descriptor.
pub(super) enum Release {
    /// Closed it.
    Closed,
    /// Left it: a request holds it (or its statx failed).
    Busy,
    /// Found none: released already.
    None,
}

/// What tells a file from one that took its place: device and inode, and
/// the birth time where the filesystem keeps one (inode numbers are reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    dev: u64,
    ino: u64,
    born: Option<(i64, u32)>,
}

impl FileIdentity {
    fn of(stx: &libc::statx) -> Self {
        FileIdentity {
            dev: stx.stx_dev(),
            ino: stx.stx_ino,
            born: (stx.stx_mask & libc::STATX_BTIME != 0)
                .then_some((stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec)),
        }
    }
}

impl PathHandle {
    fn new(fd: OwnedFd) -> Self {
        budget::hold();
        PathHandle {
            state: Mutex::new(HandleState::Open(Arc::new(fd))),
            used: AtomicBool::new(true),
            queued: AtomicBool::new(false),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HandleState> {
        self.state.locked()
    }

    /// Closes the descriptor if no request holds it (and then it is no
    /// longer queued).
    pub(super) fn release(&self) -> Release {
        let mut state = self.lock();
        let HandleState::Open(fd) = &*state else {
            self.queued.store(false, Ordering::Relaxed);
            return Release::None;
        };
        if Arc::strong_count(fd) > 1 {
            return Release::Busy;
        }
        let Ok(stx) = super::share::identity_stat(fd.as_fd()) else {
            return Release::Busy;
        };
        *state = HandleState::Released(FileIdentity::of(&stx));
        self.queued.store(false, Ordering::Relaxed);
        budget::release();
        Release::Closed
    }
}

impl Drop for PathHandle {
    fn drop(&mut self) {
        if let HandleState::Open(_) = &*self.lock() {
            budget::release();
        }
    }
}

/// A fid pinned for one request: the descriptor it works on stays open
/// until the request is done.
pub struct FidRef {
    fid: Arc<Fid>,
    fd: Arc<OwnedFd>,
    /// `fd` is the fid's open descriptor standing in for a released
    /// O_PATH one.
    pub(super) open_in_place: bool,
    /// `fd` is the fid's O_PATH descriptor, opened again for this request:
    /// the fid goes back into its session's `Clock` (`FidTable::hold`).
    reopened: bool,
}

impl FidRef {
    /// The fid itself.
    pub fn shared(&self) -> &Arc<Fid> {
        &self.fid
    }

    /// Whether the pin opened the fid's released O_PATH descriptor again.
    pub fn reopened(&self) -> bool {
        self.reopened
    }

    /// The file's descriptor: O_PATH, or the fid's open descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A new O_PATH descriptor of the same file, for a new fid.
    pub fn clone_path(&self) -> io::Result<OwnedFd> {
        if self.open_in_place {
            super::share::path_descriptor(self.fd())
        } else {
            self.fd.try_clone()
        }
    }
}

impl Deref for FidRef {
    type Target = Fid;
    fn deref(&self) -> &Fid {
        &self.fid
    }
}

/// How a fid's path leads back to its file once the fid's idle O_PATH
/// descriptor was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refind {
    /// It may not: the descriptor stays open while the fid lives.
    Never,
    /// Looked up beneath the share's root with no symlink followed: the
    /// path of a 9P2000.L or 9P2000.u walk, which never follows one.
    NoSymlinks,
    /// Looked up following symlinks, as if the share were the root: the
    /// path of a 9P2000 walk, which follows every symlink on its way.
    InRoot,
}

/// What a fid stands for, beside a plain host file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Node {
    /// The host file `Fid::file` (for 9P2000, the target of a followed symlink).
    #[default]
    File,
    /// A symlink 9P2000 was to follow that leads nowhere: shown as an empty
    /// file with mode 0 (`Fid::file` is the link).
    Dangling,
    /// `D/,ctl`: the control directory of the directory `Fid::file`.
    CtlDir,
    /// The control file of `Fid::file`; `own_dir` when reached as `D/,ctl/,`.
    CtlFile { own_dir: bool },
}

pub struct Fid {
    /// O_PATH descriptor of the file itself (a symlink stays a symlink,
    /// unless 9P2000 followed it).
    pub(super) file: PathHandle,
    /// How `path` leads back to the file, if it does: then the fid's O_PATH
    /// descriptor may be closed while idle and opened again from the path.
    /// (An open fid's may be closed in any case: its open descriptor
    /// stands in.)
    pub refind: Refind,
    /// Path from the share's root, kept current across renames; used to walk
    /// ".." and to find the parent for Tremove/Trename.
    pub path: Mutex<PathBuf>,
    /// File type bits (S_IFMT) of the file.
    pub file_type: u32,
    /// The user the client attached as (and the credentials its requests
    /// run with).
    pub user: Arc<super::user::User>,
    /// What the fid stands for.
    pub node: Node,
    /// What it was opened as, once it is.
    pub opened: OnceLock<Opened>,
    /// Walked through `,nofollow`: walks from here do not follow symlinks.
    pub nofollow: bool,
    /// A slot among the session's open files, for a fid whose descriptor
    /// is never closed while it lives (`Refind::Never`, set by a walk).
    pub pinned: Option<OpenSlot>,
    /// Lock owners that locked through this fid (lock.rs): released when
    /// the fid goes (Tclunk, Tremove, Tversion, end of the session).
    pub(crate) locks: super::share::locks::FidLocks,
}

/// What a fid was opened as: set once, by the request that opens it.
pub enum Opened {
    /// The host file or directory (Tlopen, Tlcreate, Topen, Tcreate).
    File(OpenFile),
    /// Content the server makes up, opened with these 9P2000.L flags: a
    /// control file or directory, or a symlink 9P2000 reads as its target.
    Content {
        flags: u32,
        /// What the fid reads: made by a read at offset 0 (or the first
        /// read), kept for the reads further on, so that a reader taking
        /// it in pieces gets one text even if the file changes meanwhile.
        snapshot: Mutex<Option<Vec<u8>>>,
    },
    /// An extended attribute: read (Txattrwalk) or being written
    /// (Txattrcreate); None once a pending write was applied.
    Xattr(Mutex<Option<XattrState>>),
}

impl Opened {
    /// Content opened with 9P2000.L `flags`.
    pub fn content(flags: u32) -> Opened {
        Opened::Content {
            flags,
            snapshot: Mutex::new(None),
        }
    }

    /// An xattr fid in `state`.
    pub fn xattr(state: XattrState) -> Opened {
        Opened::Xattr(Mutex::new(Some(state)))
    }
}

/// The state of an xattr fid.
pub enum XattrState {
    /// The value (or name list) read by Txattrwalk, served by Tread.
    Read(XattrValue),
    /// A value announced by Txattrcreate, filled by Twrite, set at clunk.
    Write {
        name: std::ffi::CString,
        flags: i32,
        value: XattrValue,
        written: usize,
    },
}

/// The bytes of an xattr fid's value, counted against its session's budget
/// (`FidTable::xattr_value`) until they are dropped (with the fid, at
/// Tclunk, Tversion or the end of the session).
pub struct XattrValue {
    pub(super) bytes: Vec<u8>,
    /// The session's count of such bytes.
    pub(super) held: Arc<AtomicUsize>,
}

impl Deref for XattrValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::ops::DerefMut for XattrValue {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl Drop for XattrValue {
    fn drop(&mut self) {
        self.held
            .fetch_sub(self.bytes.capacity(), Ordering::Relaxed);
    }
}

impl Fid {
    pub fn new(file: OwnedFd, path: PathBuf, file_type: u32, user: Arc<super::user::User>) -> Self {
        Fid {
            file: PathHandle::new(file),
            refind: Refind::Never,
            path: Mutex::new(path),
            file_type,
            user,
            node: Node::File,
            opened: OnceLock::new(),
            nofollow: false,
            pinned: None,
            locks: Default::default(),
        }
    }

    /// The host file or directory the fid has open.
    pub fn open_file(&self) -> Option<&OpenFile> {
        match self.opened.get() {
            Some(Opened::File(open)) => Some(open),
            _ => None,
        }
    }

    /// Opens the fid as `opened`; EBADF if it was opened already.
    pub fn set_opened(&self, opened: Opened) -> Result<(), super::Errno> {
        self.opened
            .set(opened)
            .map_err(|_| super::Errno(libc::EBADF))
    }

    /// Pins the fid for a request. A released O_PATH descriptor is opened
    /// again by `reopen` from the fid's path (looked up as `Fid::refind`
    /// says) and must still be the same file (ESTALE otherwise); an open
    /// fid lends its open descriptor.
    pub fn pin(
        self: &Arc<Self>,
        reopen: impl FnOnce(&Path, Refind) -> io::Result<OwnedFd>,
    ) -> io::Result<FidRef> {
        self.file.used.store(true, Ordering::Relaxed);
        let mut state = self.file.lock();
        let identity = match &*state {
            HandleState::Open(fd) => {
                return Ok(FidRef {
                    fid: Arc::clone(self),
                    fd: Arc::clone(fd),
                    open_in_place: false,
                    reopened: false,
                })
            }
            HandleState::Released(identity) => *identity,
        };
        if let Some(open) = self.open_file() {
            return Ok(FidRef {
                fid: Arc::clone(self),
                fd: Arc::clone(&open.fd),
                open_in_place: true,
                reopened: false,
            });
        }
        let fd = reopen(&self.path(), self.refind)?;
        let stx = super::share::identity_stat(fd.as_fd())?;
        if FileIdentity::of(&stx) != identity {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        let fd = Arc::new(fd);
        *state = HandleState::Open(Arc::clone(&fd));
        budget::hold();
        Ok(FidRef {
            fid: Arc::clone(self),
            fd,
            open_in_place: false,
            reopened: true,
        })
    }

    /// Whether a sweep may close the fid's O_PATH descriptor when idle:
    /// it can be found again from its path, or its open descriptor stands
    /// in for it.
    fn releasable(&self) -> bool {
        self.refind != Refind::Never || self.open_file().is_some()
    }

    /// Marks the fid queued in its session's `Clock` if it holds an O_PATH
    /// descriptor a sweep may close and is not queued yet: whether it is
    /// to be pushed there.
    pub(super) fn enqueue(&self) -> bool {
        let state = self.file.lock();
        let queued = self.file.queued.load(Ordering::Relaxed);
        if queued || !matches!(*state, HandleState::Open(_)) || !self.releasable() {
            return false;
        }
        self.file.queued.store(true, Ordering::Relaxed);
        true
    }

    pub fn is_dir(&self) -> bool {
        self.file_type == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type == libc::S_IFLNK
    }

    /// A host file (not a control file or directory, not a dangling link).
    pub fn is_host_file(&self) -> bool {
        self.node == Node::File
    }

    pub fn path(&self) -> PathBuf {
        self.path.locked().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::WriteStream;

    const MIB: u64 = 1 << 20;

    /// Feeds `writes` (offset, len) to a fresh stream; the stretches it
    /// asks to write back.
    fn written_back(window: u64, writes: &[(u64, u64)]) -> Vec<u64> {
        let stream = WriteStream::default();
        writes
            .iter()
            .filter_map(|&(offset, len)| stream.advance(offset, len, window))
            .collect()
    }

    fn sequential(from: u64, to: u64, chunk: u64) -> Vec<(u64, u64)> {
        (from..to)
            .step_by(chunk as usize)
            .map(|o| (o, chunk.min(to - o)))
            .collect()
    }

    #[test]
    fn a_streamed_file_is_written_back_one_window_behind_the_writer() {
        // 40 MiB in the Linux client's 500,000-byte Twrites, 8 MiB windows:
        // each window once, when the writer is a whole window past its end.
        let got = written_back(8 * MIB, &sequential(0, 40 * MIB, 500_000));
        assert_eq!(got, vec![0, 8 * MIB, 16 * MIB, 24 * MIB]);
        // 4 KiB page-by-page writes (cache=loose) give the same.
        let got = written_back(8 * MIB, &sequential(0, 40 * MIB, 4096));
        assert_eq!(got, vec![0, 8 * MIB, 16 * MIB, 24 * MIB]);
    }

    #[test]
    fn short_files_scattered_writes_and_window_zero_are_left_alone() {
        // A file of less than two windows is never written back early.
        assert!(written_back(8 * MIB, &sequential(0, 16 * MIB - 1, 500_000)).is_empty());
        // Writes that jump about do not form a run.
        let scattered: Vec<(u64, u64)> = (0..1000u64)
            .map(|i| ((i * 7919 % 1000) * 65536, 65536))
            .collect();
        assert!(written_back(8 * MIB, &scattered).is_empty());
        assert!(written_back(0, &sequential(0, 64 * MIB, 500_000)).is_empty());
    }

    #[test]
    fn a_run_starting_mid_file_writes_back_only_windows_inside_it() {
        // Starting at 5 MiB: the window at 0 is not the run's; 8 MiB is,
        // once the writer has passed 24 MiB.
        let got = written_back(8 * MIB, &sequential(5 * MIB, 30 * MIB, 500_000));
        assert_eq!(got, vec![8 * MIB]);
        // A seek back starts a new run.
        let mut writes = sequential(0, 20 * MIB, 500_000);
        writes.extend(sequential(MIB, 20 * MIB, 500_000));
        assert_eq!(written_back(8 * MIB, &writes), vec![0]);
    }
}
