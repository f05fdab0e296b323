//! The security model's side of the share: how the guest's owners,
//! modes, device nodes and symlinks are kept on the host (passthrough: as
//! themselves; mapped-xattr: in `user.virtfs.*` xattrs of regular files
//! the daemon owns; none: as the daemon makes them). Nothing outside the
//! share branches on the model.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::Share;
use crate::protocol::Qid;
use crate::server::error::{errno, Errno, OpResult};
use crate::server::host;
use crate::server::security::{MappedAttrs, SecurityModel, MAPPED_DIR_MODE, MAPPED_FILE_MODE};

impl Share {
    /// The guest's view of `stx`, the host statx of the file `fd` holds:
    /// ids mapped, and under mapped-xattr the attributes it keeps.
    pub(crate) fn guest_view(
        &self,
        fd: BorrowedFd<'_>,
        mut stx: libc::statx,
    ) -> OpResult<libc::statx> {
        stx.stx_uid = self.uids.to_guest(stx.stx_uid);
        stx.stx_gid = self.gids.to_guest(stx.stx_gid);
        let host_type = stx.stx_mode as u32 & libc::S_IFMT;
        if self.model == SecurityModel::MappedXattr
            && (host_type == libc::S_IFREG || host_type == libc::S_IFDIR)
        {
            MappedAttrs::read(fd)?.apply(&mut stx);
        }
        Ok(stx)
    }

    /// Records the guest's owner (and in mapped-xattr its mode and device
    /// number) on a file just made.
    pub(crate) fn set_new_attrs(
        &self,
        fd: BorrowedFd<'_>,
        uid: u32,
        gid: u32,
        mode: u32,
        rdev: u64,
    ) -> OpResult<()> {
        match self.model {
            SecurityModel::Passthrough => {
                host::chown(fd, self.host_uid(uid)?, self.host_gid(gid)?)?
            }
            SecurityModel::None => {
                if let (Ok(uid), Ok(gid)) = (self.host_uid(uid), self.host_gid(gid)) {
                    let _ = host::chown(fd, uid, gid);
                }
            }
            SecurityModel::MappedXattr => MappedAttrs {
                uid: Some(uid),
                gid: Some(gid),
                mode: Some(mode),
                rdev: (rdev != 0).then_some(rdev),
            }
            .write(fd)?,
        }
        Ok(())
    }

    fn mapped(&self) -> bool {
        self.model == SecurityModel::MappedXattr
    }

    /// Whether the guest's ACLs, trusted.* and security.* xattrs are kept
    /// under the private prefix (mapped-xattr: on the host's files, which
    /// the daemon owns, they would mean something to the host).
    pub(crate) fn keeps_special_xattrs_private(&self) -> bool {
        self.mapped()
    }

    /// The host mode of a regular file the guest creates with `mode`.
    pub(crate) fn host_file_mode(&self, mode: u32) -> u32 {
        if self.mapped() {
            MAPPED_FILE_MODE
        } else {
            mode & 0o7777
        }
    }

    /// The host mode of a directory the guest creates with `mode`.
    pub(crate) fn host_dir_mode(&self, mode: u32) -> u32 {
        if self.mapped() {
            MAPPED_DIR_MODE
        } else {
            mode & 0o7777
        }
    }

    /// The guest's d_type of the entry `name` of `dir`, whose host d_type
    /// is `d_type`.
    pub(crate) fn guest_d_type(&self, dir: BorrowedFd<'_>, name: &[u8], d_type: u8) -> u8 {
        if self.mapped() && d_type == libc::DT_REG {
            mapped_d_type(dir, name)
        } else {
            d_type
        }
    }

    /// Sets the owner of the file `fd` holds; `is_host_symlink` says
    /// whether it is a symlink on the host (asked only under mapped-xattr,
    /// where a host symlink keeps its host owner).
    pub(crate) fn chown(
        &self,
        fd: BorrowedFd<'_>,
        uid: Option<u32>,
        gid: Option<u32>,
        is_host_symlink: impl FnOnce() -> OpResult<bool>,
    ) -> OpResult<()> {
        if self.mapped() && !is_host_symlink()? {
            return Ok(MappedAttrs {
                uid,
                gid,
                ..Default::default()
            }
            .write(fd)?);
        }
        let host_uid = uid.map_or(Ok(u32::MAX), |u| self.host_uid(u))?;
        let host_gid = gid.map_or(Ok(u32::MAX), |g| self.host_gid(g))?;
        match host::chown(fd, host_uid, host_gid) {
            Err(_) if self.model == SecurityModel::None => Ok(()),
            other => Ok(other?),
        }
    }

    /// Sets the permission bits (and setuid, setgid, sticky) of a fid's
    /// file as the security model keeps them (Tsetattr, Twstat, ctl chmod).
    pub(crate) fn set_mode(&self, fd: BorrowedFd<'_>, mode: u32) -> OpResult<()> {
        let file_type = self.stat(fd)?.stx_mode as u32 & libc::S_IFMT;
        if file_type == libc::S_IFLNK {
            return Err(errno(libc::EOPNOTSUPP)); // a symlink has no mode of its own
        }
        self.write_mode(fd, file_type | (mode & 0o7777))
    }

    /// Keeps `mode` (type and permission bits) as the file's: in its
    /// xattrs under mapped-xattr, else its permission bits on the host.
    fn write_mode(&self, fd: BorrowedFd<'_>, mode: u32) -> OpResult<()> {
        if self.mapped() {
            Ok(MappedAttrs {
                mode: Some(mode),
                ..Default::default()
            }
            .write(fd)?)
        } else {
            Ok(host::chmod(fd, mode & 0o7777)?)
        }
    }

    /// Opens the existing file `file` (an O_PATH descriptor) for I/O with
    /// `flags`, with its statx as the guest sees it: only a regular file or
    /// a directory in the guest's eyes and on the host (`host::open_file`);
    /// a symlink is ELOOP, anything else `special_errno`. Under
    /// mapped-xattr the guest's device nodes, fifos, sockets and symlinks
    /// are regular files on the host: they are judged by the type kept in
    /// their xattrs and never opened either.
    pub(crate) fn open_existing(
        &self,
        file: BorrowedFd<'_>,
        flags: i32,
        special_errno: i32,
    ) -> OpResult<(OwnedFd, libc::statx)> {
        if self.mapped() {
            let stx = self.stat(file)?;
            match stx.stx_mode as u32 & libc::S_IFMT {
                libc::S_IFREG | libc::S_IFDIR => {}
                libc::S_IFLNK => return Err(errno(libc::ELOOP)),
                _ => return Err(errno(special_errno)),
            }
            return Ok((host::open_file(file, flags, special_errno)?, stx));
        }
        let (fd, stx) = host::open_file_statx(file, flags, special_errno)?;
        Ok((fd, self.guest_view(file, stx)?))
    }

    pub(crate) fn is_host_symlink_fd(&self, fd: BorrowedFd<'_>) -> OpResult<bool> {
        Ok(host::statx(fd)?.stx_mode as u32 & libc::S_IFMT == libc::S_IFLNK)
    }

    /// Clears setuid (and setgid of a group-executable file) after a
    /// write by a user other than root, as Linux does.
    pub(crate) fn clear_privileged_bits(&self, fd: BorrowedFd<'_>) -> OpResult<()> {
        let mode = self.stat(fd)?.stx_mode as u32;
        let bits = privileged_bits(mode);
        if bits == 0 {
            return Ok(());
        }
        self.write_mode(fd, mode & !bits)
    }

    /// Makes the symlink `name` in `dir` owned by guest `uid`/`gid` as the
    /// security model keeps it (Tsymlink, 9P2000.u Tcreate, ctl symlink).
    pub(crate) fn make_symlink(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        target: &CString,
        uid: u32,
        gid: u32,
    ) -> OpResult<Qid> {
        if self.mapped() {
            // A regular file holding the target: user.* xattrs cannot be
            // set on a host symlink.
            let fd = create_mapped_file(dir, name)?;
            let written = host::pwrite(fd.as_fd(), target.as_bytes(), 0);
            if written.map_or(true, |n| n != target.as_bytes().len()) {
                let _ = host::unlinkat(dir, name, 0);
                return Err(errno(libc::EIO));
            }
        } else {
            host::symlinkat(target, dir, name)?;
        }
        self.finish_create(dir, name, uid, gid, libc::S_IFLNK | 0o777, 0)
    }

    /// Makes the file `name` of type and mode `mode` (and device number
    /// `dev`) in `dir`, owned by guest `uid`/`gid`, as the security model
    /// keeps it: in mapped-xattr never a real device, fifo or socket on the
    /// host (Tmknod, 9P2000.u Tcreate, ctl mknod).
    pub(crate) fn make_node(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        mode: u32,
        dev: u64,
        uid: u32,
        gid: u32,
    ) -> OpResult<Qid> {
        if self.mapped() {
            create_mapped_file(dir, name)?;
        } else {
            host::mknodat(dir, name, mode, dev)?;
        }
        self.finish_create(dir, name, uid, gid, mode, dev)
    }

    /// Records the owner (and guest mode) of an entry just made in `dir`
    /// and returns its qid; removes the entry if that fails.
    pub(crate) fn finish_create(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        uid: u32,
        gid: u32,
        mode: u32,
        rdev: u64,
    ) -> OpResult<Qid> {
        let result = host::lookup(dir, name).map_err(Errno::from).and_then(|fd| {
            self.set_new_attrs(fd.as_fd(), uid, gid, mode, rdev)?;
            self.qid_of(fd.as_fd())
        });
        if result.is_err() {
            let flags = if mode & libc::S_IFMT == libc::S_IFDIR {
                libc::AT_REMOVEDIR
            } else {
                0
            };
            let _ = host::unlinkat(dir, name, flags);
        }
        result
    }

    /// The target of a symlink, in `buf`; returns its length.
    pub(crate) fn link_target(&self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> OpResult<usize> {
        match host::readlink(fd, buf) {
            // mapped-xattr: the target is the content of a regular file.
            // (readlinkat of a non-symlink fails with ENOENT or EINVAL.)
            Err(e)
                if self.mapped()
                    && matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) =>
            {
                let fd = host::open_file(fd, libc::O_RDONLY, libc::EINVAL)?;
                Ok(host::pread(fd.as_fd(), buf, 0)?)
            }
            other => Ok(other?),
        }
    }
}

/// The setuid/setgid bits a write by a non-root user removes: setuid, and
/// setgid when group-executable (setgid alone means mandatory locking).
/// A new empty regular file `name` in `dir`, as mapped-xattr keeps the
/// guest's special files and symlinks.
fn create_mapped_file(dir: BorrowedFd<'_>, name: &CString) -> std::io::Result<OwnedFd> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    host::openat(dir, name, flags, MAPPED_FILE_MODE)
}

pub(crate) fn privileged_bits(mode: u32) -> u32 {
    let mut bits = mode & libc::S_ISUID;
    if mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
        bits |= libc::S_ISGID;
    }
    bits
}

/// The guest's d_type of a regular host file in mapped-xattr (a fifo,
/// socket, device or symlink is a regular file carrying its type).
fn mapped_d_type(dir: BorrowedFd<'_>, name: &[u8]) -> u8 {
    let Ok(name) = CString::new(name) else {
        return libc::DT_REG;
    };
    let path = host::ProcPath::entry(dir, &name);
    let mut mode = [0u8; 4];
    let got = host::in_proc_dir(|proc| {
        proc.xattr_get(&path, true, crate::server::security::XATTR_MODE, &mut mode)
    });
    match got {
        Ok(4) => match u32::from_le_bytes(mode) & libc::S_IFMT {
            libc::S_IFIFO => libc::DT_FIFO,
            libc::S_IFSOCK => libc::DT_SOCK,
            libc::S_IFCHR => libc::DT_CHR,
            libc::S_IFBLK => libc::DT_BLK,
            libc::S_IFLNK => libc::DT_LNK,
            libc::S_IFDIR => libc::DT_DIR,
            _ => libc::DT_REG,
        },
        _ => libc::DT_REG,
    }
}
