//! A session's fid table: its fids, their bounds (per session and in all),
//! the session's open files and xattr bytes, and the sweep that closes idle
//! fids' O_PATH descriptors when the descriptor budget runs short (the
//! queue of fids that hold one, `Clock`; see fid.rs).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::fid::*;
use super::share::budget::{held_descriptors, OpenSlot};
use super::Errno;
use crate::sync::Locked;

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
mod clock_tests {
    use super::*;
    use crate::server::host;
    use crate::server::user::User;
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::PathBuf;

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
        let _ = never
            .opened
            .set(crate::server::fid::Opened::File(OpenFile::new(
                file, 0, false, 0, slot,
            )));
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
