//! Tlock and Tgetlock: POSIX byte-range locks as the Linux client sends
//! them, kept by the connection's lock table (share/locks.rs, which says
//! how). The server never waits long: a conflict is answered BLOCKED after
//! a short grace and the client retries F_SETLKW itself.

use std::os::fd::AsFd;
use std::sync::Arc;

use super::fid::Fid;
use super::share::locks::{
    host_range, Conflict, FileKey, Kind, Outcome, OwnerKey, Via, OFFSET_MAX,
};
use super::{Errno, OpResult, Server, Session};
use crate::protocol::flags::*;
use crate::protocol::{self, Rgetlock};

/// The wire's lock type of `kind`.
fn wire(kind: Kind) -> u8 {
    match kind {
        Kind::Read => LOCK_TYPE_RDLCK,
        Kind::Write => LOCK_TYPE_WRLCK,
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

/// `start..=end` as a 9P start and length (0: to the end).
fn wire_range(start: u64, end: u64) -> (u64, u64) {
    let (s, l) = host_range(start, end);
    (s as u64, l as u64)
}

/// The fid's open file and the host file it is.
fn open_file(s: &Session, fid: u32) -> OpResult<(Arc<Fid>, FileKey)> {
    let fid = s.fids.get(fid).ok_or(Errno(libc::EBADF))?;
    let open = fid.open_file().ok_or(Errno(libc::EBADF))?;
    let file = FileKey::of(open.fd.as_fd())?;
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
        let open = fid.open_file().ok_or(Errno(libc::EBADF))?;
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
            let via = Via {
                locks: &fid.locks,
                file: open.fd.as_fd(),
                flags: open.flags,
            };
            outcome = s.fids.locks.set(
                file,
                who.clone(),
                via,
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
        let open = fid.open_file().ok_or(Errno(libc::EBADF))?;
        let who = OwnerKey::new(t.client_id.as_bytes(), t.proc_id)?;
        let conflict = s
            .fids
            .locks
            .test(file, &who, start, end, kind, open.fd.as_fd())?;
        Ok(match conflict {
            Some(Conflict::Guest {
                kind,
                start,
                end,
                proc_id,
            }) => {
                let (start, length) = wire_range(start, end);
                Rgetlock {
                    lock_type: wire(kind),
                    start,
                    length,
                    proc_id,
                    client_id: t.client_id,
                }
            }
            Some(Conflict::Host {
                kind,
                start,
                length,
                pid,
            }) => Rgetlock {
                lock_type: wire(kind),
                start,
                length,
                proc_id: pid,
                client_id: t.client_id,
            },
            None => Rgetlock {
                lock_type: LOCK_TYPE_UNLCK,
                start: t.start,
                length: t.length,
                proc_id: t.proc_id,
                client_id: t.client_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
