//! POSIX byte-range locks (Tlock, Tgetlock) over open file description locks.
//!
//! The Linux client sends a lock with its owner: the guest process
//! (`proc_id`, the tgid) and the client (`client_id`, the guest's host
//! name). A lock belongs to that owner and that file, not to the fid it came
//! through: a process that locks through one open file and unlocks (or
//! closes) through another must see one set of locks, as with POSIX locks.
//!
//! So the connection keeps a [`LockTable`]: per host file (dev, ino) and
//! owner, an open file description of the file of its own, on which all of
//! that owner's locks are taken with F_OFD_SETLK. The host kernel then
//! merges and splits one owner's ranges like one process's POSIX locks,
//! makes different owners conflict, and makes guest locks conflict with
//! host processes' fcntl locks. The server never waits: a conflict is
//! answered BLOCKED and the client retries F_SETLKW itself.
//!
//! The table also keeps each owner's ranges (with the type the guest asked
//! for): Tgetlock reports the conflicting guest owner's proc_id from them
//! (an OFD lock has no pid), and they keep two guest owners apart when the
//! host lock had to be weaker than the one asked for (a write lock through a
//! descriptor that cannot be opened for writing, such as a directory or a
//! read-only file: flock(LOCK_EX) sends a write lock whatever the open mode)
//! — the host lock is then a read lock, which still keeps host writers out.
//!
//! An owner's descriptor is opened with the access the fid was opened with,
//! plus what the lock type needs, and closed (releasing everything) when the
//! owner holds nothing more. It counts among the session's open files (no
//! sweep can close it): an owner that would open one beyond the session's
//! bound on them is refused with ENOLCK, as fcntl is when the kernel's lock
//! table is full. Every fid remembers the owners that locked through it;
//! when the fid goes (Tclunk, Tremove, Tversion, end of the session) their
//! locks on that file go with it (closing any descriptor of a file drops
//! the process's POSIX locks on it too).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fid::{Fid, OpenFile};
use super::share::budget::{HeldFd, OpenSlot};
use super::{host, Errno, OpResult, Server, Session};
use crate::protocol::flags::*;
use crate::protocol::{self, Rgetlock};
use crate::sync::Locked;

/// The largest file offset (the kernel's OFFSET_MAX): a range ending here
/// runs to the end of the file, however long it grows.
const OFFSET_MAX: u64 = i64::MAX as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl Kind {
    fn wire(self) -> u8 {
        match self {
            Kind::Read => LOCK_TYPE_RDLCK,
            Kind::Write => LOCK_TYPE_WRLCK,
        }
    }

    fn conflicts(self, other: Kind) -> bool {
        self == Kind::Write || other == Kind::Write
    }
}

/// Bytes `start..=end` locked by one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: u64,
    end: u64,
    kind: Kind,
}

impl Range {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// A host file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
}

/// A lock owner: the client's id and the guest process.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OwnerKey {
    client_id: Box<[u8]>,
    proc_id: u32,
}

/// The longest client id taken: the Linux client sends its nodename (at
/// most 64 bytes); each owner keeps a copy, so a longer one (up to the
/// msize) is refused with EINVAL.
const MAX_CLIENT_ID: usize = 255;

impl OwnerKey {
    fn new(client_id: &[u8], proc_id: u32) -> OpResult<Self> {
        if client_id.len() > MAX_CLIENT_ID {
            return Err(Errno(libc::EINVAL));
        }
        Ok(OwnerKey {
            client_id: client_id.into(),
            proc_id,
        })
    }
}

/// One owner's locks on one file.
struct Owner {
    /// The open file description the owner's locks are held on; present
    /// exactly while `ranges` is not empty. Counted among the descriptors
    /// the fids hold, so that idle fids make room for it, and among the
    /// session's open files.
    fd: Option<HeldFd>,
    readable: bool,
    writable: bool,
    /// What the owner holds, as it asked: sorted, disjoint, adjacent ranges
    /// of one kind merged.
    ranges: Vec<Range>,
    /// Fids that remember this owner (see [`FidLocks`]).
    fids: usize,
}

impl Owner {
    fn new() -> Self {
        Owner {
            fd: None,
            readable: false,
            writable: false,
            ranges: Vec::new(),
            fids: 0,
        }
    }

    /// The host lock type that stands for `kind` on this owner's
    /// descriptor: the same, or weaker when the descriptor's access does not
    /// allow it (the table keeps guest owners apart then).
    fn host_type(&self, kind: Kind) -> i32 {
        match kind {
            Kind::Write if self.writable => libc::F_WRLCK,
            Kind::Write | Kind::Read if self.readable => libc::F_RDLCK,
            // A read lock through a write-only descriptor: nothing on the
            // host (a write lock would shut out the other guest readers).
            _ => libc::F_UNLCK,
        }
    }
}

/// Replaces whatever `ranges` holds on `start..=end` by `kind` (None:
/// unlocks it), POSIX style: ranges are cut, then neighbours of one kind are
/// merged.
fn apply(ranges: &mut Vec<Range>, start: u64, end: u64, kind: Option<Kind>) {
    let mut out = Vec::with_capacity(ranges.len() + 2);
    for r in ranges.drain(..) {
        if !r.overlaps(start, end) {
            out.push(r);
            continue;
        }
        if r.start < start {
            out.push(Range {
                end: start - 1,
                ..r
            });
        }
        if r.end > end {
            out.push(Range {
                start: end + 1,
                ..r
            });
        }
    }
    if let Some(kind) = kind {
        out.push(Range { start, end, kind });
    }
    out.sort_by_key(|r| r.start);
    for r in out {
        match ranges.last_mut() {
            Some(last) if last.kind == r.kind && last.end.checked_add(1) == Some(r.start) => {
                last.end = r.end
            }
            _ => ranges.push(r),
        }
    }
}

/// The owners holding locks on one file.
#[derive(Default)]
struct FileLocks {
    owners: HashMap<OwnerKey, Owner>,
}

impl FileLocks {
    /// The first range (lowest start) of another owner than `me` that
    /// conflicts with a `kind` lock on `start..=end`.
    fn conflict(
        &self,
        me: &OwnerKey,
        start: u64,
        end: u64,
        kind: Kind,
    ) -> Option<(&OwnerKey, Range)> {
        self.owners
            .iter()
            .filter(|(who, _)| *who != me)
            .flat_map(|(who, owner)| owner.ranges.iter().map(move |r| (who, *r)))
            .filter(|(_, r)| r.overlaps(start, end) && r.kind.conflicts(kind))
            .min_by_key(|(_, r)| r.start)
    }
}

/// The locks of one connection: per file, per owner. Shared by the fids
/// that locked (they release their owners when they go).
#[derive(Default)]
pub struct LockTable {
    files: Mutex<HashMap<FileKey, FileLocks>>,
    /// Owners in `files`, all files together (changed with `files` locked).
    owners: AtomicUsize,
}

/// The owners that locked through one fid. Dropping it (with the fid)
/// releases their locks on that file.
#[derive(Default)]
pub struct FidLocks {
    held: Mutex<Option<Held>>,
}

struct Held {
    table: Arc<LockTable>,
    owners: Vec<(FileKey, OwnerKey)>,
}

impl FidLocks {
    /// Remembers that `who` locked `file` through this fid; true the first
    /// time.
    fn remember(&self, table: &Arc<LockTable>, file: FileKey, who: &OwnerKey) -> bool {
        let mut held = self.held.locked();
        let held = held.get_or_insert_with(|| Held {
            table: Arc::clone(table),
            owners: Vec::new(),
        });
        if held.owners.iter().any(|(f, w)| *f == file && w == who) {
            return false;
        }
        held.owners.push((file, who.clone()));
        true
    }
}

impl Drop for FidLocks {
    fn drop(&mut self) {
        let held = self.held.locked_mut();
        if let Some(held) = held.take() {
            held.table.release(&held.owners);
        }
    }
}

/// Where a lock request stands once the table has looked at it.
enum Outcome {
    Done,
    Blocked,
}

impl LockTable {
    fn files(&self) -> MutexGuard<'_, HashMap<FileKey, FileLocks>> {
        self.files.locked()
    }

    /// Sets (`kind` Some) or clears a lock of `who` on `start..=end` of
    /// `file`, through `fid`. An owner without a descriptor takes a slot
    /// among the session's open files from `slot` for the one it opens.
    #[allow(clippy::too_many_arguments)]
    fn set(
        self: &Arc<Self>,
        file: FileKey,
        who: OwnerKey,
        fid: &Fid,
        open: &OpenFile,
        start: u64,
        end: u64,
        kind: Option<Kind>,
        may_write: bool,
        max_owners: usize,
        slot: impl FnOnce() -> OpResult<OpenSlot>,
    ) -> OpResult<Outcome> {
        let mut files = self.files();
        let Some(kind) = kind else {
            // Unlock: nothing to do for an owner that holds nothing here.
            if let Some(owner) = files.get_mut(&file).and_then(|f| f.owners.get_mut(&who)) {
                if let Some(fd) = &owner.fd {
                    let (s, l) = host_range(start, end);
                    host::ofd_setlk(fd.as_fd(), libc::F_UNLCK, s, l)?;
                }
                apply(&mut owner.ranges, start, end, None);
            }
            tidy(&mut files, file, &who, &self.owners);
            return Ok(Outcome::Done);
        };
        let locks = files.entry(file).or_default();
        if locks.conflict(&who, start, end, kind).is_some() {
            tidy(&mut files, file, &who, &self.owners);
            return Ok(Outcome::Blocked);
        }
        if !locks.owners.contains_key(&who) {
            // A new owner: within the session's bound, as a host kernel
            // bounds its lock table (ENOLCK).
            if self.owners.load(Ordering::Relaxed) >= max_owners {
                tidy(&mut files, file, &who, &self.owners);
                return Err(Errno(libc::ENOLCK));
            }
            self.owners.fetch_add(1, Ordering::Relaxed);
        }
        let locks = files.entry(file).or_default();
        let owner = locks.owners.entry(who.clone()).or_insert_with(Owner::new);
        let result = take(owner, open, start, end, kind, may_write, slot);
        if matches!(result, Ok(Outcome::Done)) && fid.locks.remember(self, file, &who) {
            owner.fids += 1;
        }
        tidy(&mut files, file, &who, &self.owners);
        result
    }

    /// A fid went: the owners that locked through it lose their locks on
    /// its file, and are forgotten once no fid remembers them.
    fn release(&self, owners: &[(FileKey, OwnerKey)]) {
        let mut files = self.files();
        for (file, who) in owners {
            if let Some(owner) = files.get_mut(file).and_then(|f| f.owners.get_mut(who)) {
                owner.fids = owner.fids.saturating_sub(1);
                owner.ranges.clear();
                // Closing the descriptor releases its locks.
                owner.fd = None;
            }
            tidy(&mut files, *file, who, &self.owners);
        }
    }
}

/// Takes a `kind` lock for `owner` on its descriptor (opening one, in a
/// slot from `slot`, if it holds none).
fn take(
    owner: &mut Owner,
    open: &OpenFile,
    start: u64,
    end: u64,
    kind: Kind,
    may_write: bool,
    slot: impl FnOnce() -> OpResult<OpenSlot>,
) -> OpResult<Outcome> {
    if owner.fd.is_none() {
        let slot = slot()?;
        match open_for_locks(open, kind, may_write) {
            Ok((fd, readable, writable)) => {
                owner.fd = Some(HeldFd::new(fd, slot));
                owner.readable = readable;
                owner.writable = writable;
            }
            // A lease on the file (O_NONBLOCK open): like a conflict.
            Err(Errno(libc::EWOULDBLOCK)) => return Ok(Outcome::Blocked),
            Err(e) => return Err(e),
        }
    }
    let fd = owner.fd.as_ref().expect("opened above");
    let (s, l) = host_range(start, end);
    match host::ofd_setlk(fd.as_fd(), owner.host_type(kind), s, l) {
        Ok(()) => {
            apply(&mut owner.ranges, start, end, Some(kind));
            Ok(Outcome::Done)
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {
            Ok(Outcome::Blocked)
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the fid's file for an owner's locks: with the access the fid was
/// opened with plus what `kind` needs, or failing that (a directory, a file
/// the daemon may not write, a read-only filesystem) with less.
/// Returns the descriptor and whether it can read and write.
fn open_for_locks(open: &OpenFile, kind: Kind, may_write: bool) -> OpResult<(OwnedFd, bool, bool)> {
    let mode = open.flags & P9_ACCMODE;
    let read = mode != P9_WRONLY || kind == Kind::Read;
    let write = may_write && (mode == P9_WRONLY || mode == P9_RDWR || kind == Kind::Write);
    let mut tries = Vec::with_capacity(3);
    if read && write {
        tries.push((true, true));
    }
    // What the lock needs first, then the other access.
    match kind {
        Kind::Read => tries.extend([(true, false), (false, true)]),
        Kind::Write => tries.extend([(false, true), (true, false)]),
    }
    tries.retain(|&(_, w)| may_write || !w);
    let mut last = Errno(libc::EBADF);
    for (r, w) in tries {
        let access = match (r, w) {
            (true, true) => libc::O_RDWR,
            (false, true) => libc::O_WRONLY,
            _ => libc::O_RDONLY,
        };
        match host::open_file(open.fd.as_fd(), access | libc::O_NONBLOCK, libc::EBADF) {
            Ok(fd) => return Ok((fd, r, w)),
            Err(e) => match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::EISDIR | libc::ETXTBSY) => {
                    last = e.into()
                }
                _ => return Err(e.into()),
            },
        }
    }
    Err(last)
}

/// Forgets what no longer holds anything: an owner's descriptor once it
/// holds no lock, an owner no fid remembers (taken off the count of
/// `owners`), a file without owners.
fn tidy(
    files: &mut HashMap<FileKey, FileLocks>,
    file: FileKey,
    who: &OwnerKey,
    owners: &AtomicUsize,
) {
    let Some(locks) = files.get_mut(&file) else {
        return;
    };
    if let Some(owner) = locks.owners.get_mut(who) {
        if owner.ranges.is_empty() {
            owner.fd = None;
            if owner.fids == 0 && locks.owners.remove(who).is_some() {
                owners.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    if locks.owners.is_empty() {
        files.remove(&file);
    }
}

/// A 9P range (`length` 0: to the end of the file) as `start..=end`. A
/// start beyond the largest offset is EINVAL; a length reaching beyond it
/// runs to the end.
fn range(start: u64, length: u64) -> OpResult<(u64, u64)> {
    if start > OFFSET_MAX {
        return Err(Errno(libc::EINVAL));
    }
    let end = match length {
        0 => OFFSET_MAX,
        n => start.saturating_add(n - 1).min(OFFSET_MAX),
    };
    Ok((start, end))
}

/// `start..=end` as fcntl's start and length (0: to the end).
fn host_range(start: u64, end: u64) -> (i64, i64) {
    let len = if end == OFFSET_MAX {
        0
    } else {
        end - start + 1
    };
    (start as i64, len as i64)
}

/// `start..=end` as a 9P start and length (0: to the end).
fn wire_range(start: u64, end: u64) -> (u64, u64) {
    let (s, l) = host_range(start, end);
    (s as u64, l as u64)
}

/// The fid's open file and the host file it is.
fn open_file(s: &Session, fid: u32) -> OpResult<(Arc<Fid>, FileKey)> {
    let fid = s.fids.get(fid).ok_or(Errno(libc::EBADF))?;
    let open = fid.open.get().ok_or(Errno(libc::EBADF))?;
    let stx = host::statx(open.fd.as_fd())?;
    let file = FileKey {
        dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
    };
    Ok((fid, file))
}

/// How long a blocking Tlock waits for a conflicting lock to go before
/// answering BLOCKED.
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

impl Server {
    pub(super) fn lock(&self, s: &Session, t: &protocol::Tlock<'_>) -> OpResult<u8> {
        let kind = match t.lock_type {
            LOCK_TYPE_RDLCK => Some(Kind::Read),
            LOCK_TYPE_WRLCK => Some(Kind::Write),
            LOCK_TYPE_UNLCK => None,
            _ => return Err(Errno(libc::EINVAL)),
        };
        // BLOCK: the client waits and retries (the server never waits);
        // RECLAIM: there is no grace period to reclaim locks in.
        if t.flags & !(LOCK_FLAGS_BLOCK | LOCK_FLAGS_RECLAIM) != 0 {
            return Err(Errno(libc::EINVAL));
        }
        let (start, end) = range(t.start, t.length)?;
        let (fid, file) = open_file(s, t.fid)?;
        let open = fid.open.get().ok_or(Errno(libc::EBADF))?;
        let who = OwnerKey::new(t.client_id.as_bytes(), t.proc_id)?;
        // A blocking request gets a short grace period before BLOCKED: the
        // Linux client drops its local lock before sending the unlock, so a
        // waiter's request often arrives just before the holder's unlock,
        // and a BLOCKED answer costs the waiter the client's retry timeout
        // (30 s by default).
        let mut outcome;
        let mut pause = std::time::Duration::from_millis(1);
        let deadline = std::time::Instant::now() + BLOCKING_GRACE;
        loop {
            outcome = s.fids.locks.set(
                file,
                who.clone(),
                &fid,
                open,
                start,
                end,
                kind,
                !self.share.readonly,
                self.max_lock_owners,
                // The session's open files are all taken: ENOLCK, as for
                // an owner beyond the bound (a lock table that is full),
                // not the EMFILE of an open.
                || {
                    s.fids
                        .open_slot(self.max_open_files)
                        .map_err(|_| Errno(libc::ENOLCK))
                },
            )?;
            let waiting = matches!(outcome, Outcome::Blocked)
                && t.flags & LOCK_FLAGS_BLOCK != 0
                && std::time::Instant::now() < deadline;
            if !waiting {
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
        Ok(match outcome {
            Outcome::Done => LOCK_SUCCESS,
            Outcome::Blocked => LOCK_BLOCKED,
        })
    }

    pub(super) fn getlock<'a>(
        &self,
        s: &Session,
        t: &protocol::Tgetlock<'a>,
    ) -> OpResult<Rgetlock<'a>> {
        let kind = match t.lock_type {
            LOCK_TYPE_RDLCK => Kind::Read,
            // The Linux client always asks with UNLCK (it does not pass on
            // the type F_GETLK was given): test the strictest, so that
            // every lock held by someone else is reported.
            LOCK_TYPE_WRLCK | LOCK_TYPE_UNLCK => Kind::Write,
            _ => return Err(Errno(libc::EINVAL)),
        };
        let (start, end) = range(t.start, t.length)?;
        let (fid, file) = open_file(s, t.fid)?;
        let open = fid.open.get().ok_or(Errno(libc::EBADF))?;
        let who = OwnerKey::new(t.client_id.as_bytes(), t.proc_id)?;
        let files = s.fids.locks.files();
        let locks = files.get(&file);
        // Another guest owner's lock, from the table (it knows the owner).
        if let Some((owner, r)) = locks.and_then(|l| l.conflict(&who, start, end, kind)) {
            let (start, length) = wire_range(r.start, r.end);
            return Ok(Rgetlock {
                lock_type: r.kind.wire(),
                start,
                length,
                proc_id: owner.proc_id,
                client_id: t.client_id,
            });
        }
        // Anyone else's, from the host: asked through the owner's own
        // descriptor, so that its own locks do not count.
        let own = locks
            .and_then(|l| l.owners.get(&who))
            .and_then(|o| o.fd.as_ref());
        let probe = own.map_or(open.fd.as_fd(), |fd| fd.as_fd());
        let host_type = match kind {
            Kind::Read => libc::F_RDLCK,
            Kind::Write => libc::F_WRLCK,
        };
        let (host_start, host_len) = host_range(start, end);
        let found = host::ofd_getlk(probe.as_fd(), host_type, host_start, host_len)?;
        drop(files);
        Ok(match found {
            None => Rgetlock {
                lock_type: LOCK_TYPE_UNLCK,
                start: t.start,
                length: t.length,
                proc_id: t.proc_id,
                client_id: t.client_id,
            },
            Some(fl) => Rgetlock {
                lock_type: if fl.l_type == libc::F_RDLCK as libc::c_short {
                    LOCK_TYPE_RDLCK
                } else {
                    LOCK_TYPE_WRLCK
                },
                start: fl.l_start as u64,
                length: fl.l_len as u64,
                // A host process's pid; an OFD lock has none.
                proc_id: u32::try_from(fl.l_pid).unwrap_or(0),
                client_id: t.client_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64, kind: Kind) -> Range {
        Range { start, end, kind }
    }

    #[test]
    fn apply_cuts_replaces_and_merges_like_posix() {
        use Kind::{Read, Write};
        let mut v = Vec::new();
        apply(&mut v, 0, 9, Some(Write));
        apply(&mut v, 20, 29, Some(Write));
        assert_eq!(v, [r(0, 9, Write), r(20, 29, Write)]);
        // Filling the gap with the same kind merges the three.
        apply(&mut v, 10, 19, Some(Write));
        assert_eq!(v, [r(0, 29, Write)]);
        // Another kind in the middle splits.
        apply(&mut v, 5, 14, Some(Read));
        assert_eq!(v, [r(0, 4, Write), r(5, 14, Read), r(15, 29, Write)]);
        // Unlocking across boundaries cuts both sides.
        apply(&mut v, 3, 16, None);
        assert_eq!(v, [r(0, 2, Write), r(17, 29, Write)]);
        // To the end of the file, then unlocking from the start.
        apply(&mut v, 25, OFFSET_MAX, Some(Read));
        assert_eq!(
            v,
            [r(0, 2, Write), r(17, 24, Write), r(25, OFFSET_MAX, Read)]
        );
        apply(&mut v, 0, OFFSET_MAX, None);
        assert!(v.is_empty());
        // Overlapping locks of one kind merge.
        apply(&mut v, 0, 10, Some(Read));
        apply(&mut v, 5, 20, Some(Read));
        assert_eq!(v, [r(0, 20, Read)]);
    }

    #[test]
    fn ranges() {
        assert_eq!(range(0, 0), Ok((0, OFFSET_MAX)));
        assert_eq!(range(5, 1), Ok((5, 5)));
        assert_eq!(range(OFFSET_MAX, 1), Ok((OFFSET_MAX, OFFSET_MAX)));
        assert_eq!(range(10, u64::MAX), Ok((10, OFFSET_MAX)));
        assert_eq!(range(OFFSET_MAX + 1, 0), Err(Errno(libc::EINVAL)));
        assert_eq!(host_range(5, 5), (5, 1));
        assert_eq!(host_range(5, OFFSET_MAX), (5, 0));
        assert_eq!(wire_range(0, 9), (0, 10));
    }
}
