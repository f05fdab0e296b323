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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::budget::{HeldFd, OpenSlot};
use crate::protocol::flags::{P9_ACCMODE, P9_RDWR, P9_WRONLY};
use crate::server::error::{Errno, OpResult};
use crate::server::host;
use crate::sync::Locked;

/// The largest file offset (the kernel's OFFSET_MAX): a range ending here
/// runs to the end of the file, however long it grows.
pub(crate) const OFFSET_MAX: u64 = i64::MAX as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
}

impl Kind {
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
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
}

impl FileKey {
    /// The host file `fd` holds open.
    pub(crate) fn of(fd: BorrowedFd<'_>) -> OpResult<FileKey> {
        let stx = host::statx(fd)?;
        Ok(FileKey {
            dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
            ino: stx.stx_ino,
        })
    }
}

/// A lock owner: the client's id and the guest process.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OwnerKey {
    client_id: Box<[u8]>,
    proc_id: u32,
}

/// The longest client id taken: the Linux client sends its nodename (at
/// most 64 bytes); each owner keeps a copy, so a longer one (up to the
/// msize) is refused with EINVAL.
const MAX_CLIENT_ID: usize = 255;

impl OwnerKey {
    pub(crate) fn new(client_id: &[u8], proc_id: u32) -> OpResult<Self> {
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
pub(crate) struct LockTable {
    files: Mutex<HashMap<FileKey, FileLocks>>,
    /// Owners in `files`, all files together (changed with `files` locked).
    owners: AtomicUsize,
}

/// The owners that locked through one fid. Dropping it (with the fid)
/// releases their locks on that file.
#[derive(Default)]
pub(crate) struct FidLocks {
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

/// The fid a lock request comes through.
pub(crate) struct Via<'a> {
    /// The owners that locked through it.
    pub locks: &'a FidLocks,
    /// The file it holds open.
    pub file: BorrowedFd<'a>,
    /// Its 9P2000.L open flags.
    pub flags: u32,
}

/// A lock that conflicts with one asked about (Tgetlock).
pub(crate) enum Conflict {
    /// Another guest owner's, from the table: `start..=end`.
    Guest {
        kind: Kind,
        start: u64,
        end: u64,
        proc_id: u32,
    },
    /// A host process's (or another connection's), from the host: fcntl's
    /// start and length (0: to the end), and a pid (0 for none).
    Host {
        kind: Kind,
        start: u64,
        length: u64,
        pid: u32,
    },
}

/// Where a lock request stands once the table has looked at it.
pub(crate) enum Outcome {
    Done,
    Blocked,
}

impl LockTable {
    fn files(&self) -> MutexGuard<'_, HashMap<FileKey, FileLocks>> {
        self.files.locked()
    }

    /// Sets (`kind` Some) or clears a lock of `who` on `start..=end` of
    /// `file`, through a fid (`via`: the owners it remembers, the file it
    /// holds open and its 9P2000.L open flags). An owner without a
    /// descriptor takes a slot among the session's open files from `slot`
    /// for the one it opens.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set(
        self: &Arc<Self>,
        file: FileKey,
        who: OwnerKey,
        via: Via<'_>,
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
        let result = take(owner, &via, start, end, kind, may_write, slot);
        if matches!(result, Ok(Outcome::Done)) && via.locks.remember(self, file, &who) {
            owner.fids += 1;
        }
        tidy(&mut files, file, &who, &self.owners);
        result
    }

    /// The first lock that would conflict with a `kind` lock of `who` on
    /// `start..=end` of `file`: another guest owner's from the table (it
    /// knows the owner), else anyone else's from the host, asked through
    /// `who`'s own descriptor if it has one (so that its own locks do not
    /// count), else through `file_fd`.
    pub(crate) fn test(
        &self,
        file: FileKey,
        who: &OwnerKey,
        start: u64,
        end: u64,
        kind: Kind,
        file_fd: BorrowedFd<'_>,
    ) -> OpResult<Option<Conflict>> {
        let files = self.files();
        let locks = files.get(&file);
        if let Some((owner, r)) = locks.and_then(|l| l.conflict(who, start, end, kind)) {
            return Ok(Some(Conflict::Guest {
                kind: r.kind,
                start: r.start,
                end: r.end,
                proc_id: owner.proc_id,
            }));
        }
        let own = locks
            .and_then(|l| l.owners.get(who))
            .and_then(|o| o.fd.as_ref());
        let probe = own.map_or(file_fd, |fd| fd.as_fd());
        let host_type = match kind {
            Kind::Read => libc::F_RDLCK,
            Kind::Write => libc::F_WRLCK,
        };
        let (host_start, host_len) = host_range(start, end);
        let found = host::ofd_getlk(probe, host_type, host_start, host_len)?;
        Ok(found.map(|fl| Conflict::Host {
            kind: if fl.l_type == libc::F_RDLCK as libc::c_short {
                Kind::Read
            } else {
                Kind::Write
            },
            start: fl.l_start as u64,
            length: fl.l_len as u64,
            // A host process's pid; an OFD lock has none.
            pid: u32::try_from(fl.l_pid).unwrap_or(0),
        }))
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
    via: &Via<'_>,
    start: u64,
    end: u64,
    kind: Kind,
    may_write: bool,
    slot: impl FnOnce() -> OpResult<OpenSlot>,
) -> OpResult<Outcome> {
    if owner.fd.is_none() {
        let slot = slot()?;
        match open_for_locks(via, kind, may_write) {
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
fn open_for_locks(via: &Via<'_>, kind: Kind, may_write: bool) -> OpResult<(OwnedFd, bool, bool)> {
    let mode = via.flags & P9_ACCMODE;
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
        match host::open_file(via.file, access | libc::O_NONBLOCK, libc::EBADF) {
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

/// `start..=end` as fcntl's start and length (0: to the end).
pub(crate) fn host_range(start: u64, end: u64) -> (i64, i64) {
    let len = if end == OFFSET_MAX {
        0
    } else {
        end - start + 1
    };
    (start as i64, len as i64)
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
}
