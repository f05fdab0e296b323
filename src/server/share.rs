//! The shared directory beneath the 9P sessions: its root, how its files'
//! owners, modes and inode numbers are shown (the security model, the id
//! maps, the qid mapping, the host's user names), write-behind and the
//! descriptor budget. The 9P layer (sessions, fids, dialects, the control
//! namespace) reaches the host's files through it.

use std::os::fd::{AsFd, OwnedFd};

use super::fid::QidMapper;
use super::security::{IdMap, SecurityModel};
use super::{cwd, host, user, writeback, Config};

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
