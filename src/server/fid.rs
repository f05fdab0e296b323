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

use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::share::budget::held_descriptors;
use super::share::budget::{self, OpenSlot};
use super::share::{DirCursor, StatxDev};
use super::Errno;
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
    used: AtomicBool,
    /// In its session's `Clock`: set when pushed there, cleared when a
    /// sweep takes it off for good. Changed only with `state` locked, so
    /// that a fid released and opened again is pushed once more, and only
    /// once. (Beside the mutex rather than in it: a fid is 8 bytes less.)
    queued: AtomicBool,
}

enum HandleState {
    Open(Arc<OwnedFd>),
    Released(FileIdentity),
}

/// What a sweep did with a fid's O_PATH descriptor.
enum Release {
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
struct FileIdentity {
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

    fn lock(&self) -> MutexGuard<'_, HandleState> {
        self.state.locked()
    }

    /// Closes the descriptor if no request holds it (and then it is no
    /// longer queued).
    fn release(&self) -> Release {
        let mut state = self.lock();
        let HandleState::Open(fd) = &*state else {
            self.queued.store(false, Ordering::Relaxed);
            return Release::None;
        };
        if Arc::strong_count(fd) > 1 {
            return Release::Busy;
        }
        let Ok(stx) = super::host::statx(fd.as_fd()) else {
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
    open_in_place: bool,
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
            super::host::reopen_path(self.fd())
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
    file: PathHandle,
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
    pub open: OnceLock<OpenFile>,
    pub node: Node,
    /// Walked through `,nofollow`: walks from here do not follow symlinks.
    pub nofollow: bool,
    /// Opened (with these 9P2000.L flags) as content the server makes up:
    /// a control file or directory, or a symlink read as its target.
    pub content_open: OnceLock<u32>,
    /// What such a fid reads: made by a read at offset 0 (or the first
    /// read), kept for the reads further on, so that a reader taking it in
    /// pieces gets one text even if the file changes meanwhile.
    pub content: Mutex<Option<Vec<u8>>>,
    /// An extended attribute read (Txattrwalk) or being written (Txattrcreate).
    xattr: Mutex<Option<XattrState>>,
    /// A slot among the session's open files, for a fid whose descriptor
    /// is never closed while it lives (`Refind::Never`, set by a walk).
    pub pinned: Option<OpenSlot>,
    /// Lock owners that locked through this fid (lock.rs): released when
    /// the fid goes (Tclunk, Tremove, Tversion, end of the session).
    pub(crate) locks: super::share::locks::FidLocks,
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
    bytes: Vec<u8>,
    /// The session's count of such bytes.
    held: Arc<AtomicUsize>,
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
            open: OnceLock::new(),
            node: Node::File,
            nofollow: false,
            content_open: OnceLock::new(),
            content: Mutex::new(None),
            xattr: Mutex::new(None),
            pinned: None,
            locks: Default::default(),
        }
    }

    pub fn xattr_state(&self) -> std::sync::MutexGuard<'_, Option<XattrState>> {
        self.xattr.locked()
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
        if let Some(open) = self.open.get() {
            return Ok(FidRef {
                fid: Arc::clone(self),
                fd: Arc::clone(&open.fd),
                open_in_place: true,
                reopened: false,
            });
        }
        let fd = reopen(&self.path(), self.refind)?;
        let stx = super::host::statx(fd.as_fd())?;
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
        self.refind != Refind::Never || self.open.get().is_some()
    }

    /// Marks the fid queued in its session's `Clock` if it holds an O_PATH
    /// descriptor a sweep may close and is not queued yet: whether it is
    /// to be pushed there.
    fn enqueue(&self) -> bool {
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

/// The bound on fids: `max` per session (EMFILE beyond) and `total` for
/// all the server's sessions together, counted in `held` (ENFILE beyond),
/// as the kernel bounds files per process and in all.
pub struct FidLimit {
    held: Arc<AtomicUsize>,
    max: usize,
    total: usize,
}

impl FidLimit {
    pub fn new(max: usize, total: usize) -> FidLimit {
        FidLimit {
            held: Arc::new(AtomicUsize::new(0)),
            max,
            total,
        }
    }
}

/// The fids of one client connection.
#[derive(Default)]
pub struct FidTable {
    fids: Mutex<HashMap<u32, Arc<Fid>>>,
    /// The server-wide count the fids are counted in (`FidLimit::held`),
    /// from the first insert on.
    counted_in: OnceLock<Arc<AtomicUsize>>,
    /// The POSIX locks the connection's clients hold (lock.rs).
    pub(crate) locks: Arc<super::share::locks::LockTable>,
    /// Bytes of xattr values the fids hold (`XattrValue`).
    xattr_bytes: Arc<AtomicUsize>,
    /// Files the fids hold open, and lock owners' descriptors (`OpenSlot`).
    open_files: Arc<AtomicUsize>,
    /// The fids that hold an O_PATH descriptor a sweep may close.
    clock: Mutex<Clock>,
    /// Held by the thread sweeping the session's fids (`one_sweep_at_a_time`).
    sweeping: Mutex<()>,
    /// Fids pushed into `clock` so far (new descriptors a sweep may close).
    added: AtomicUsize,
    /// No sweep of the session's fids until `added` reaches this
    /// (`put_off_sweeps`).
    sweep_after: AtomicUsize,
}

/// A session's fids that hold an O_PATH descriptor a sweep may close, in
/// the order they got it (created by a walk, attach or create, or opened
/// again by `Fid::pin`), each once (`PathHandle::queued`). An entry whose fid
/// is gone stays until a sweep comes to it or the queue is compacted.
#[derive(Default)]
struct Clock {
    queue: VecDeque<Weak<Fid>>,
    /// The length at which the queue is next rid of the entries of fids
    /// gone: twice its length after the last compaction or sweep, so that
    /// compacting costs O(1) a push, and fids clunked with their descriptor
    /// open (whose memory a `Weak` keeps) never outnumber by much the
    /// entries of fids holding descriptors.
    compact_at: usize,
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sweep {
    /// Descriptors it closed.
    released: usize,
    /// Entries of the queue it took.
    visited: usize,
}

impl Clock {
    /// The least `compact_at`.
    const MIN_COMPACT: usize = 256;

    fn push(&mut self, fid: Weak<Fid>) {
        if self.queue.len() >= self.compact_at {
            self.queue.retain(|fid| fid.strong_count() > 0);
            self.queue.shrink_to(self.queue.len() * 2);
            self.reset_compact_at();
        }
        self.queue.push_back(fid);
    }

    fn reset_compact_at(&mut self) {
        self.compact_at = (self.queue.len() * 2).max(Self::MIN_COMPACT);
    }
}

impl FidTable {
    pub fn get(&self, fid: u32) -> Option<Arc<Fid>> {
        self.lock().get(&fid).cloned()
    }

    /// Inserts a fid: EEXIST if the number is taken, EMFILE if the table
    /// holds `limit.max` fids already, ENFILE if all sessions hold
    /// `limit.total`.
    pub fn insert_new(&self, fid: u32, value: Arc<Fid>, limit: &FidLimit) -> Result<(), Errno> {
        let mut fids = self.lock();
        if fids.contains_key(&fid) {
            return Err(Errno(libc::EEXIST));
        }
        self.count_one(fids.len(), limit)?;
        fids.insert(fid, Arc::clone(&value));
        drop(fids);
        self.hold(&value);
        Ok(())
    }

    /// Inserts or replaces a fid: EMFILE or ENFILE (as `insert_new`) if the
    /// number is new (replacing one never fails).
    pub fn replace(&self, fid: u32, value: Arc<Fid>, limit: &FidLimit) -> Result<(), Errno> {
        let mut fids = self.lock();
        if !fids.contains_key(&fid) {
            self.count_one(fids.len(), limit)?;
        }
        let old = fids.insert(fid, Arc::clone(&value));
        drop(fids);
        drop(old);
        self.hold(&value);
        Ok(())
    }

    /// Puts a fid of the session in the queue of those a sweep looks at,
    /// if it holds an O_PATH descriptor a sweep may close and is not there
    /// yet: a fid just made, one whose descriptor a request opened again
    /// (`FidRef::reopened`), one just opened (its open descriptor then
    /// stands in for its O_PATH one).
    pub fn hold(&self, fid: &Arc<Fid>) {
        if fid.enqueue() {
            self.clock().push(Arc::downgrade(fid));
            self.added.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one more fid for a table holding `len`, or refuses it.
    fn count_one(&self, len: usize, limit: &FidLimit) -> Result<(), Errno> {
        if len >= limit.max {
            return Err(Errno(libc::EMFILE));
        }
        let held = self.counted_in.get_or_init(|| Arc::clone(&limit.held));
        held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < limit.total).then_some(n + 1)
        })
        .map_err(|_| Errno(libc::ENFILE))?;
        Ok(())
    }

    /// Uncounts `n` fids that left the table.
    fn uncount(&self, n: usize) {
        if let Some(held) = self.counted_in.get() {
            held.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// A slot for one more open file, or EMFILE if the session holds `max`.
    pub fn open_slot(&self, max: usize) -> Result<OpenSlot, Errno> {
        OpenSlot::take(&self.open_files, max)
    }

    /// Counts `bytes` (all its capacity) against the session's budget of
    /// `max` bytes of xattr values: ENOMEM beyond it, which is what the host
    /// kernel answers getxattr or setxattr when it cannot allocate the
    /// value's buffer (fs/xattr.c); the bound is on memory held for values
    /// in flight, not on room to store them (ENOSPC would tell the guest
    /// the filesystem is full).
    pub fn xattr_value(&self, bytes: Vec<u8>, max: usize) -> Result<XattrValue, Errno> {
        let size = bytes.capacity();
        self.xattr_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(size).filter(|&total| total <= max)
            })
            .map_err(|_| Errno(libc::ENOMEM))?;
        Ok(XattrValue {
            bytes,
            held: Arc::clone(&self.xattr_bytes),
        })
    }

    /// Bytes of xattr values the session's fids hold.
    pub fn xattr_bytes(&self) -> usize {
        self.xattr_bytes.load(Ordering::Relaxed)
    }

    pub fn remove(&self, fid: u32) -> Option<Arc<Fid>> {
        let removed = self.lock().remove(&fid);
        self.uncount(usize::from(removed.is_some()));
        removed
    }

    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.lock());
        self.uncount(old.len());
        drop(old);
        let queue = std::mem::take(&mut *self.clock());
        drop(queue);
        self.put_off_sweeps(0);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the O_PATH descriptors of the session's idle fids until the
    /// process holds no more than `down_to` descriptors
    /// ([`held_descriptors`]), going round the queue of the fids that hold
    /// one a sweep may close (see `Fid::refind`; an open fid keeps its
    /// open descriptor) at most twice: a fid a request is using is passed
    /// over, one used since the sweep last came to it is given a second
    /// chance, the others are released in the order they got their
    /// descriptor. Entries of fids gone or holding none are dropped on the
    /// way. Returns how many descriptors it closed. The queue stays locked
    /// only for each entry's taking and putting back, not for the statx
    /// each release takes. (Called within `one_sweep_at_a_time`.)
    pub fn release_idle(&self, down_to: usize) -> usize {
        self.sweep(|_| held_descriptors() <= down_to).released
    }

    /// Runs `sweep` while no other thread sweeps the session's fids,
    /// waiting for one that does to finish: so that the threads serving
    /// one session do not sweep the same fids at once, nor go on adding
    /// descriptors while one of them sweeps (it might be preempted there
    /// for a while). `sweep` decides again whether a sweep is needed:
    /// the other thread's may have done it.
    pub fn one_sweep_at_a_time<R>(&self, sweep: impl FnOnce() -> R) -> R {
        let _sweeping = self.sweeping.locked();
        sweep()
    }

    /// `release_idle`, until `done(released so far)`.
    fn sweep(&self, mut done: impl FnMut(usize) -> bool) -> Sweep {
        let most = 2 * self.clock().queue.len();
        let mut sweep = Sweep::default();
        while sweep.visited < most && !done(sweep.released) {
            let Some(entry) = self.clock().queue.pop_front() else {
                break;
            };
            sweep.visited += 1;
            let Some(fid) = entry.upgrade() else {
                continue;
            };
            if fid.file.used.swap(false, Ordering::Relaxed) {
                self.clock().queue.push_back(entry);
                continue;
            }
            match fid.file.release() {
                Release::Closed => sweep.released += 1,
                Release::Busy => self.clock().queue.push_back(entry),
                Release::None => {}
            }
        }
        self.clock().reset_compact_at();
        sweep
    }

    /// Whether the session's fids may be swept: not put off, or the
    /// session has added as many descriptors as it was put off for.
    pub fn sweep_due(&self) -> bool {
        self.added.load(Ordering::Relaxed) >= self.sweep_after.load(Ordering::Relaxed)
    }

    /// Puts the session's next sweep off until its fids have `added` more
    /// descriptors a sweep may close (0: due at once).
    pub fn put_off_sweeps(&self, added: usize) {
        let now = self.added.load(Ordering::Relaxed);
        self.sweep_after.store(now + added, Ordering::Relaxed);
    }

    /// How many fids the sweeps' queue holds (entries of fids gone
    /// included): tests check it stays near the fids holding descriptors.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.clock().queue.len()
    }

    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.clock.locked()
    }

    /// After a rename of `from` to `to`, points every fid at or below
    /// `from` at its new path.
    pub fn renamed(&self, from: &Path, to: &Path) {
        for fid in self.lock().values() {
            let mut path = fid.path.locked();
            if let Ok(rest) = path.strip_prefix(from) {
                *path = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<Fid>>> {
        self.fids.locked()
    }
}

impl Drop for FidTable {
    fn drop(&mut self) {
        self.uncount(self.lock().len());
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

#[cfg(test)]
mod clock_tests {
    use super::*;
    use crate::server::host;
    use crate::server::user::User;
    use std::ffi::CString;

    /// A directory with a file `f` and `g`, open.
    fn share() -> (tempfile::TempDir, std::fs::File) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"").unwrap();
        std::fs::write(dir.path().join("g"), b"").unwrap();
        let open = std::fs::File::open(dir.path()).unwrap();
        (dir, open)
    }

    fn lookup(dir: &std::fs::File, name: &str) -> io::Result<OwnedFd> {
        host::lookup(dir.as_fd(), &CString::new(name).unwrap())
    }

    /// A fid of `f`.
    fn fid(dir: &std::fs::File, refind: Refind) -> Arc<Fid> {
        let fd = lookup(dir, "f").unwrap();
        let mut fid = Fid::new(fd, PathBuf::from("f"), libc::S_IFREG, User::guest(0));
        fid.refind = refind;
        Arc::new(fid)
    }

    fn holds(fid: &Fid) -> bool {
        matches!(*fid.file.lock(), HandleState::Open(_))
    }

    fn limit() -> FidLimit {
        FidLimit::new(1 << 20, 1 << 21)
    }

    #[test]
    fn a_sweep_costs_what_it_releases() {
        let (_dir, dir) = share();
        let (table, limit) = (FidTable::default(), limit());
        for n in 0..10_000 {
            table
                .insert_new(n, fid(&dir, Refind::NoSymlinks), &limit)
                .unwrap();
        }
        assert_eq!(table.queued(), 10_000);
        // New fids count as used: the first sweep goes round once, giving
        // each its second chance, then releases the oldest.
        let sweep = table.sweep(|released| released >= 1000);
        let expected = Sweep {
            released: 1000,
            visited: 11_000,
        };
        assert_eq!(sweep, expected);
        assert!(!holds(&table.get(0).unwrap()) && !holds(&table.get(999).unwrap()));
        assert!(holds(&table.get(1000).unwrap()));
        // The next takes the oldest at once.
        let sweep = table.sweep(|released| released >= 1000);
        let expected = Sweep {
            released: 1000,
            visited: 1000,
        };
        assert_eq!(sweep, expected);
        // One used meanwhile is passed over, once.
        let used = table.pin(2000);
        drop(used);
        let sweep = table.sweep(|released| released >= 1);
        assert_eq!(sweep.visited, 2);
        assert!(holds(&table.get(2000).unwrap()));
        // Every one.
        let sweep = table.sweep(|_| false);
        assert_eq!(sweep.released, 10_000 - 2001);
        assert_eq!(table.queued(), 0);
        // With 10,000 fids whose descriptors are closed, a sweep for ten
        // new ones looks at those ten only (twice: they are new).
        for n in 10_000..10_010 {
            table
                .insert_new(n, fid(&dir, Refind::NoSymlinks), &limit)
                .unwrap();
        }
        let sweep = table.sweep(|_| false);
        let expected = Sweep {
            released: 10,
            visited: 20,
        };
        assert_eq!(sweep, expected);
        let empty = table.sweep(|_| false);
        assert_eq!(empty, Sweep::default());
    }

    impl FidTable {
        /// Pins fid `n`, which holds its descriptor, as a request does.
        fn pin(&self, n: u32) -> FidRef {
            let fid = self.get(n).unwrap();
            let pinned = fid
                .pin(|_, _| Err(io::Error::from_raw_os_error(libc::ESTALE)))
                .unwrap();
            if pinned.reopened() {
                self.hold(&fid);
            }
            pinned
        }
    }

    #[test]
    fn fids_in_use_never_and_open_ones() {
        let (_dir, dir) = share();
        let (table, limit) = (FidTable::default(), limit());
        // In use: passed over, and still queued for the next sweep.
        let busy = fid(&dir, Refind::NoSymlinks);
        table.insert_new(1, Arc::clone(&busy), &limit).unwrap();
        let pinned = busy.pin(|_, _| unreachable!()).unwrap();
        assert_eq!(table.sweep(|_| false).released, 0);
        assert!(holds(&busy));
        assert_eq!(table.queued(), 1);
        drop(pinned);
        assert_eq!(table.sweep(|_| false).released, 1);
        assert!(!holds(&busy));
        // Opened again from its path: queued again, once.
        let pinned = busy.pin(|_, _| lookup(&dir, "f")).unwrap();
        assert!(pinned.reopened() && holds(&busy));
        table.hold(&busy);
        table.hold(&busy);
        assert_eq!(table.queued(), 1);
        drop(pinned);
        assert_eq!(table.sweep(|_| false).released, 1);
        // Another file in its place: ESTALE.
        let stale = busy.pin(|_, _| lookup(&dir, "g")).map(|_| ()).unwrap_err();
        assert_eq!(stale.raw_os_error(), Some(libc::ESTALE));
        assert_eq!(table.queued(), 0);

        // Refind::Never: never queued, never released...
        let never = fid(&dir, Refind::Never);
        table.insert_new(2, Arc::clone(&never), &limit).unwrap();
        assert_eq!(table.queued(), 0);
        assert_eq!(table.sweep(|_| false).released, 0);
        assert!(holds(&never));
        // ... until it is open: its open descriptor stands in, and stays.
        let slot = table.open_slot(1).unwrap();
        assert_eq!(table.open_slot(1).map(|_| ()), Err(Errno(libc::EMFILE)));
        let pinned = never.pin(|_, _| unreachable!()).unwrap();
        let file = host::open_file(pinned.fd(), libc::O_RDONLY, libc::EPERM).unwrap();
        drop(pinned);
        let _ = never.open.set(OpenFile::new(file, 0, false, 0, slot));
        table.hold(&never);
        assert_eq!(table.queued(), 1);
        assert_eq!(table.sweep(|_| false).released, 1);
        assert!(!holds(&never));
        let lent = never.pin(|_, _| unreachable!()).unwrap();
        assert!(lent.open_in_place && !lent.reopened());
        assert_eq!(table.queued(), 0);
    }

    #[test]
    fn fids_gone_leave_the_queue() {
        let (_dir, dir) = share();
        let (table, limit) = (FidTable::default(), limit());
        for n in 0..5000 {
            table
                .insert_new(n, fid(&dir, Refind::NoSymlinks), &limit)
                .unwrap();
        }
        // Clunked with their descriptors open: their entries go when the
        // queue is compacted.
        for n in 10..5000 {
            table.remove(n).unwrap();
        }
        for n in 5000..8200 {
            table
                .insert_new(n, fid(&dir, Refind::NoSymlinks), &limit)
                .unwrap();
        }
        let live = 10 + 3200;
        assert!(table.queued() < 2 * live, "{} queued", table.queued());
        assert_eq!(table.sweep(|_| false).released, live);
        assert_eq!(table.queued(), 0);
        // Tversion: nothing left.
        table
            .insert_new(100_000, fid(&dir, Refind::NoSymlinks), &limit)
            .unwrap();
        table.put_off_sweeps(123);
        assert!(!table.sweep_due());
        table.clear();
        assert_eq!(table.queued(), 0);
        assert!(table.sweep_due());
    }
}
