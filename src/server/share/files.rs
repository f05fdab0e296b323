//! Changes to the share's files and entries that every dialect makes the
//! same way: directories, links, renames, removals, sizes, times,
//! filesystem statistics and syncs.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::Share;
use crate::protocol::Qid;
use crate::server::error::OpResult;
use crate::server::host;

impl Share {
    /// Makes the directory `name` in `dir` with guest mode `mode`, owned
    /// by guest `uid`/`gid`.
    pub(crate) fn mkdir(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> OpResult<Qid> {
        host::mkdirat(dir, name, self.host_dir_mode(mode))?;
        let mode = libc::S_IFDIR | (mode & 0o7777);
        self.finish_create(dir, name, uid, gid, mode, 0)
    }

    /// Makes `name` in `dir` a hard link to the file `file` holds.
    pub(crate) fn link(
        &self,
        file: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        name: &CString,
    ) -> OpResult<()> {
        Ok(host::link(file, dir, name)?)
    }

    /// Creates the regular file `name` in `dir` and opens it with the host
    /// open flags `flags` (O_CREAT | O_EXCL added: only a file made here
    /// gets the creator's attributes), with guest mode `mode`, owned by
    /// guest `uid`/`gid`: its open descriptor, an O_PATH one, and its statx
    /// as the guest sees it. An existing entry is EEXIST; a file whose
    /// attributes cannot be set is removed again.
    pub(crate) fn create_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> OpResult<(OwnedFd, OwnedFd, libc::statx)> {
        let flags = flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = host::openat(dir, name, flags, self.host_file_mode(mode))?;
        let file = host::reopen_path(fd.as_fd())?;
        let mode = libc::S_IFREG | (mode & 0o7777);
        if let Err(e) = self.set_new_attrs(file.as_fd(), uid, gid, mode, 0) {
            let _ = host::unlinkat(dir, name, 0);
            return Err(e);
        }
        let stx = self.stat(file.as_fd())?;
        Ok((fd, file, stx))
    }

    /// The file at `path` (from the root) again, reached one component at
    /// a time without following symlinks, or with `in_root` following them
    /// inside the share (a fid whose walk followed them).
    pub(crate) fn reopen(&self, path: &Path, in_root: bool) -> std::io::Result<OwnedFd> {
        if in_root {
            host::resolve_path_in_root(self.root.as_fd(), path)
        } else {
            host::lookup_path(self.root.as_fd(), path)
        }
    }

    /// The entry `name` of `dir` (not followed if a symlink).
    pub(crate) fn lookup(&self, dir: BorrowedFd<'_>, name: &CString) -> OpResult<OwnedFd> {
        Ok(host::lookup(dir, name)?)
    }

    /// Whether `dir` has an entry `name`.
    pub(crate) fn exists(&self, dir: BorrowedFd<'_>, name: &CString) -> bool {
        host::statx_at(dir, name, 0).is_ok()
    }

    /// Whether the request's user may remove entries of `dir` (write and
    /// search permission), as access(2) says; Err if not.
    pub(crate) fn may_change_entries(&self, dir: BorrowedFd<'_>) -> OpResult<()> {
        Ok(host::access(dir, libc::W_OK | libc::X_OK)?)
    }

    /// Renames `from_name` in `from` to `to_name` in `to`.
    pub(crate) fn rename(
        &self,
        from: BorrowedFd<'_>,
        from_name: &CString,
        to: BorrowedFd<'_>,
        to_name: &CString,
    ) -> OpResult<()> {
        Ok(host::renameat(from, from_name, to, to_name)?)
    }

    /// Removes the entry `name` of `dir`: a directory with `dir_entry`,
    /// anything else without.
    pub(crate) fn unlink(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        dir_entry: bool,
    ) -> OpResult<()> {
        let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
        Ok(host::unlinkat(dir, name, flags)?)
    }

    /// Removes the entry at `path` (from the root), a directory or not
    /// (`is_dir` is the first guess: the other is tried if the entry turns
    /// out to be the other kind).
    pub(crate) fn unlink_path(&self, path: &Path, is_dir: bool) -> OpResult<()> {
        let (parent, name) = self.parent(path)?;
        let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
        match host::unlinkat(parent.as_fd(), &name, flags) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::EISDIR)) => {
                let other = flags ^ libc::AT_REMOVEDIR;
                Ok(host::unlinkat(parent.as_fd(), &name, other)?)
            }
            other => Ok(other?),
        }
    }

    /// Sets the size of the file `file` holds: through `open_for_write`
    /// if the caller has it open for writing, else by opening it (only a
    /// regular file: truncate(2)'s EISDIR for a directory, EINVAL for
    /// anything else).
    pub(crate) fn truncate(
        &self,
        open_for_write: Option<BorrowedFd<'_>>,
        file: BorrowedFd<'_>,
        size: u64,
    ) -> OpResult<()> {
        self.with_open(open_for_write, file, libc::O_WRONLY, |fd| {
            host::ftruncate(fd, size)
        })
    }

    /// Runs `f` on an open descriptor of the file: `open` if the fid has
    /// one, else the file `file` holds opened with `access` for the call
    /// (only a regular file or directory; EINVAL for anything else).
    fn with_open(
        &self,
        open: Option<BorrowedFd<'_>>,
        file: BorrowedFd<'_>,
        access: i32,
        f: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<()>,
    ) -> OpResult<()> {
        if let Some(fd) = open {
            return Ok(f(fd)?);
        }
        let (fd, _) = self.open_existing(file, access | libc::O_NONBLOCK, libc::EINVAL)?;
        Ok(f(fd.as_fd())?)
    }

    /// Sets the access and modification times of the file `file` holds;
    /// of a host symlink (`symlink_at`: its path from the root), the link's
    /// own.
    pub(crate) fn set_times(
        &self,
        file: BorrowedFd<'_>,
        symlink_at: Option<&Path>,
        times: &[libc::timespec; 2],
    ) -> OpResult<()> {
        match symlink_at {
            Some(path) => {
                let (parent, name) = self.parent(path)?;
                Ok(host::utimens_at(parent.as_fd(), &name, times)?)
            }
            None => Ok(host::utimens(file, times)?),
        }
    }

    /// The statistics of the filesystem the file `file` holds is on.
    pub(crate) fn statfs(&self, file: BorrowedFd<'_>) -> OpResult<libc::statfs64> {
        Ok(host::fstatfs(file)?)
    }

    /// Syncs the file: through `open` if the caller has it open, else by
    /// opening it (only a regular file or directory: fsync(2) of a fifo or
    /// device node is EINVAL, and they are never opened).
    pub(crate) fn fsync(
        &self,
        open: Option<BorrowedFd<'_>>,
        file: BorrowedFd<'_>,
        datasync: bool,
    ) -> OpResult<()> {
        self.with_open(open, file, libc::O_RDONLY, |fd| host::fsync(fd, datasync))
    }
}
