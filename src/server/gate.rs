//! The one gate every request passes before it is served: the messages of
//! another dialect are refused; with `--readonly` every request that could
//! change the share is refused with EROFS, whatever its dialect and
//! whatever it would reach (a file, an xattr, a control file); and a socket
//! session's request is served with the credentials of the user its fid
//! was attached as (user.rs).

use super::ops::writes;
use super::plan9::{open_mode_changes, wstat_changes};
use super::user::{self, Users};
use super::{Errno, OpResult, Server, Session};
use crate::protocol::Tmessage;

/// Whether a request may change the share: make, remove, rename or link an
/// entry, change a file's data, attributes or xattrs, open a file for
/// writing or truncation, or open it to be removed at clunk (ORCLOSE).
pub(super) fn changes(request: &Tmessage<'_>) -> bool {
    use Tmessage::*;
    match request {
        Lopen(t) => writes(t.flags),
        Open(t) => open_mode_changes(t.mode),
        Wstat(t) => wstat_changes(&t.stat.0),
        Lcreate(_) | Create(_) | Write(_) | Setattr(_) | Xattrcreate(_) | Mkdir(_) | Symlink(_)
        | Mknod(_) | Link(_) | Rename(_) | Renameat(_) | Unlinkat(_) | Remove(_) => true,
        Version(_) | Auth(_) | Attach(_) | Flush(_) | Walk(_) | Read(_) | Clunk(_) | Statfs(_)
        | Readlink(_) | Getattr(_) | Xattrwalk(_) | Readdir(_) | Fsync(_) | Lock(_)
        | Getlock(_) | Stat(_) => false,
    }
}

/// The fid whose user a request acts as (the first it names); None for
/// the requests that name no file (version, auth, attach, flush).
fn acting_fid(request: &Tmessage<'_>) -> Option<u32> {
    use Tmessage::*;
    Some(match request {
        Version(_) | Auth(_) | Attach(_) | Flush(_) => return None,
        Statfs(t) => t.fid,
        Lopen(t) => t.fid,
        Lcreate(t) => t.fid,
        Symlink(t) => t.fid,
        Mknod(t) => t.dfid,
        Rename(t) => t.fid,
        Readlink(t) => t.fid,
        Getattr(t) => t.fid,
        Setattr(t) => t.fid,
        Xattrwalk(t) => t.fid,
        Xattrcreate(t) => t.fid,
        Readdir(t) => t.fid,
        Fsync(t) => t.fid,
        Lock(t) => t.fid,
        Getlock(t) => t.fid,
        Link(t) => t.dfid,
        Mkdir(t) => t.dfid,
        Renameat(t) => t.olddirfid,
        Unlinkat(t) => t.dirfid,
        Walk(t) => t.fid,
        Open(t) => t.fid,
        Create(t) => t.fid,
        Read(t) => t.fid,
        Write(t) => t.fid,
        Clunk(t) => t.fid,
        Remove(t) => t.fid,
        Stat(t) => t.fid,
        Wstat(t) => t.fid,
    })
}

impl Server {
    /// Admits a request of session `s`, or gives the errno it is refused
    /// with: EOPNOTSUPP for a message of another dialect, EROFS for a
    /// change to a read-only share. A refused Tremove still clunks its fid
    /// (remove(5): the fid is clunked whether or not the remove succeeds).
    pub(super) fn admit(&self, s: &Session, request: &Tmessage<'_>) -> OpResult<()> {
        let refusal = if !s.dialect().has(request) {
            Some(libc::EOPNOTSUPP)
        } else if self.share.readonly && changes(request) {
            Some(libc::EROFS)
        } else {
            None
        };
        match (refusal, request) {
            (None, _) => self.act_for(s, request),
            (Some(errno), Tmessage::Remove(t)) => {
                s.fids.remove(t.fid);
                Err(Errno(errno))
            }
            (Some(errno), _) => Err(Errno(errno)),
        }
    }

    /// Makes the serving thread act as the user of the request's fid (a
    /// socket session's; a VMM guest's requests keep the daemon's
    /// credentials). A switch the kernel refuses fails the request (EPERM)
    /// rather than serve it with the daemon's rights.
    fn act_for(&self, s: &Session, request: &Tmessage<'_>) -> OpResult<()> {
        if s.users == Users::Guest {
            return Ok(());
        }
        let fid = acting_fid(request).and_then(|fid| s.fids.get(fid));
        Ok(user::act_as(fid.as_ref().map(|fid| &*fid.user))?)
    }
}
