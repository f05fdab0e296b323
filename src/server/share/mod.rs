//! The shared directory beneath the 9P sessions: its root, how its files'
//! owners, modes and inode numbers are shown (the security model, the id
//! maps, the qid mapping, the host's user names), write-behind and the
//! descriptor budget. The 9P layer (sessions, fids, dialects, the control
//! namespace) reaches the host's files through it.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use super::error::{cstring, errno, OpResult};
pub(super) mod budget;
mod dir;
mod files;
pub(super) mod locks;
mod model;
mod qid;
mod writeback;
pub(super) mod xattr;
pub use dir::{DirCursor, DirEntry};
pub(super) use model::privileged_bits;
pub use qid::QidMapper;
pub(super) use qid::StatxDev;

use super::security::{IdMap, SecurityModel};
use super::{cwd, host, user, Config};
use crate::protocol::Qid;

/// A name a client gives for an entry of a directory: one component (not
/// empty, no '/' or NUL, not "." or ".."), so that it can name nothing but
/// one entry of the directory it is applied to; else EINVAL.
pub(super) fn entry_name(name: &[u8]) -> OpResult<CString> {
    Ok(host::component(name)?)
}

/// The host's statx of the file a descriptor holds (not following a
/// symlink): what tells a fid's file from one that took its place.
pub(super) fn identity_stat(fd: BorrowedFd<'_>) -> std::io::Result<libc::statx> {
    host::statx(fd)
}

/// A new O_PATH descriptor of the file an open descriptor holds.
pub(super) fn path_descriptor(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    host::reopen_path(fd)
}

/// One shared directory.
pub(super) struct Share {
    pub(super) root: OwnedFd,
    pub(super) readonly: bool,
    pub(super) qids: QidMapper,
    pub(super) model: SecurityModel,
    pub(super) uids: IdMap,
    pub(super) gids: IdMap,
    pub(super) write_behind: writeback::WriteBehind,
    /// Host user and group names (9P2000 stat records).
    pub(super) names: &'static user::UserDb,
    /// Above this many descriptors held by fids, idle fids' O_PATH
    /// descriptors are closed, down to seven eighths of it (each session
    /// its own fids': `spare_descriptors`).
    pub(super) fid_descriptors: usize,
}

impl Share {
    /// Opens the shared directory. Fails with a message fit for the user.
    pub(super) fn open(config: &Config) -> Result<Share, String> {
        let dir = &config.shared_dir;
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("--shared-dir {}: contains a NUL byte", dir.display()))?;
        let root = host::openat(
            cwd(),
            &path,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR) => format!("--shared-dir {}: not a directory", dir.display()),
            _ => format!("--shared-dir {}: {}", dir.display(), e),
        })?;
        let stx = host::statx(root.as_fd())
            .map_err(|e| format!("--shared-dir {}: {}", dir.display(), e))?;
        // Everything needed from outside the share, opened now: nothing
        // after this names a host path (see host.rs).
        host::init().map_err(|e| format!("cannot open /proc/self/fd: {e}; is /proc mounted?"))?;
        // Modes the guest asks for are applied as given (the guest applied
        // its own umask already).
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(0) };
        let fid_descriptors = config
            .fid_descriptors
            .unwrap_or_else(default_fid_descriptors);
        Ok(Share {
            root,
            readonly: config.readonly,
            qids: QidMapper::new(libc::makedev(stx.stx_dev_major, stx.stx_dev_minor)),
            model: config.security_model,
            uids: config.uid_map.clone(),
            gids: config.gid_map.clone(),
            write_behind: writeback::WriteBehind::new(config.write_behind)
                .map_err(|e| format!("cannot start the write-behind thread: {e}"))?,
            names: user::UserDb::host(),
            fid_descriptors,
        })
    }
}

impl Share {
    pub(super) fn qid_of(&self, fd: BorrowedFd<'_>) -> OpResult<Qid> {
        Ok(self.qids.qid(&self.stat(fd)?))
    }

    /// The file's attributes as the guest sees them: host ids mapped, and
    /// in mapped-xattr the stored uid/gid/mode/rdev laid over the host's.
    pub(super) fn stat(&self, fd: BorrowedFd<'_>) -> OpResult<libc::statx> {
        self.guest_view(fd, host::statx(fd)?)
    }

    pub(super) fn host_uid(&self, uid: u32) -> OpResult<u32> {
        self.uids.to_host(uid).ok_or(errno(libc::EINVAL))
    }

    pub(super) fn host_gid(&self, gid: u32) -> OpResult<u32> {
        self.gids.to_host(gid).ok_or(errno(libc::EINVAL))
    }

    /// Walks a path relative to the share's root one component at a time.
    /// A path that goes through a symlink (one a 9P2000 walk followed) is
    /// resolved again with symlinks followed inside the share.
    pub(super) fn resolve(&self, rel: &Path) -> OpResult<OwnedFd> {
        let mut fd = self.root.try_clone()?;
        for component in rel.components() {
            let Component::Normal(name) = component else {
                return Err(errno(libc::EINVAL));
            };
            let name = host::component(name.as_encoded_bytes())?;
            fd = match host::lookup(fd.as_fd(), &name) {
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
                    let rel = cstring(rel.as_os_str().as_encoded_bytes())?;
                    return Ok(host::resolve_in_root(self.root.as_fd(), &rel)?);
                }
                other => other?,
            };
        }
        Ok(fd)
    }
}

/// Where a walk step lands on the host.
pub(crate) struct Landing {
    pub fd: OwnedFd,
    pub qid: Qid,
    /// S_IFMT of the file, as the guest sees it.
    pub file_type: u32,
    /// A symlink to be followed whose target is not in the share: the
    /// step stays on the link, shown as a file.
    pub dangling: bool,
}

impl Share {
    /// The directory holding the file at `path` (from the root) and the
    /// file's name in it; EBUSY for the root.
    pub(crate) fn parent(&self, path: &Path) -> OpResult<(OwnedFd, CString)> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(errno(libc::EBUSY));
        };
        let name = host::component(name.as_encoded_bytes())?;
        Ok((self.resolve(parent)?, name))
    }

    /// A walk step onto `fd`, the file at `path`: with `follow`, a
    /// symlink is followed inside the share. Also the statx of where it
    /// landed.
    pub(crate) fn land(
        &self,
        fd: OwnedFd,
        path: &Path,
        follow: bool,
    ) -> OpResult<(Landing, libc::statx)> {
        let mut stx = self.stat(fd.as_fd())?;
        let mut landing = Landing {
            qid: self.qids.qid(&stx),
            file_type: stx.stx_mode as u32 & libc::S_IFMT,
            fd,
            dangling: false,
        };
        if follow
            && landing.file_type == libc::S_IFLNK
            && self.is_host_symlink_fd(landing.fd.as_fd())?
        {
            let rel = cstring(path.as_os_str().as_encoded_bytes())?;
            match host::resolve_in_root(self.root.as_fd(), &rel) {
                Ok(target) => {
                    stx = self.stat(target.as_fd())?;
                    landing.qid = self.qids.qid(&stx);
                    landing.file_type = stx.stx_mode as u32 & libc::S_IFMT;
                    landing.fd = target;
                }
                Err(_) => {
                    landing.dangling = true;
                    landing.qid.ty = crate::protocol::QTFILE;
                }
            }
        }
        Ok((landing, stx))
    }
}

/// Descriptors the fids may hold: the open file limit less an eighth (at
/// least 64) for sockets, eventfds, guest memory and passing opens.
fn default_fid_descriptors() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            let soft = usize::try_from(soft).unwrap_or(usize::MAX);
            soft.saturating_sub((soft / 8).max(64)).max(16)
        }
        Err(_) => 1024 - 128,
    }
}
