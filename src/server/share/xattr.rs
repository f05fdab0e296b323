//! Extended attributes of the share's files, as the guest names them: the
//! daemon's own `user.virtfs.*` are never shown to or set by the guest; in
//! mapped-xattr, POSIX ACLs, `trusted.*` and `security.*` are kept under
//! that prefix, so they neither need privileges nor act on the host; users
//! other than root see no `trusted.*`, as on Linux.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::Share;
use crate::server::error::{Errno, OpResult};
use crate::server::host;
use crate::server::security::XATTR_PRIVATE_PREFIX;

/// The largest value Linux stores (XATTR_SIZE_MAX).
pub(crate) const XATTR_SIZE_MAX: u64 = 65536;
/// Longest list (XATTR_LIST_MAX).
const XATTR_LIST_MAX: usize = 65536;
const ACL_PREFIX: &[u8] = b"system.posix_acl_";
const TRUSTED_PREFIX: &[u8] = b"trusted.";
const SECURITY_PREFIX: &[u8] = b"security.";

/// The file whose attributes are read or changed.
pub(crate) struct XattrTarget {
    path: host::ProcPath,
    /// l*xattr: a symlink, named through its parent directory.
    nofollow: bool,
    /// Keeps the parent directory (named in `path`) open.
    _dir: Option<OwnedFd>,
}

impl Share {
    /// The target for the file `fd` holds, at `path`; a host symlink
    /// (`is_host_symlink`) is named through its parent.
    pub(crate) fn xattr_target(
        &self,
        fd: BorrowedFd<'_>,
        path: &Path,
        is_host_symlink: bool,
    ) -> OpResult<XattrTarget> {
        if !is_host_symlink {
            return Ok(XattrTarget {
                path: host::ProcPath::of(fd),
                nofollow: false,
                _dir: None,
            });
        }
        let (dir, name) = self.parent(path)?;
        Ok(XattrTarget {
            path: host::ProcPath::entry(dir.as_fd(), &name),
            nofollow: true,
            _dir: Some(dir),
        })
    }

    /// Whether the host keeps this guest attribute under the private prefix.
    fn kept_private(&self, name: &[u8]) -> bool {
        self.keeps_special_xattrs_private()
            && (name.starts_with(ACL_PREFIX)
                || name.starts_with(TRUSTED_PREFIX)
                || name.starts_with(SECURITY_PREFIX))
    }

    /// The host name of a guest attribute name, for guest user `uid`, or
    /// None for names the guest cannot reach (the daemon's own; trusted.*
    /// for non-root).
    pub(crate) fn host_xattr_name(&self, uid: u32, name: &[u8]) -> OpResult<Option<CString>> {
        if name.starts_with(XATTR_PRIVATE_PREFIX) || (uid != 0 && name.starts_with(TRUSTED_PREFIX))
        {
            return Ok(None);
        }
        let mut host = Vec::with_capacity(XATTR_PRIVATE_PREFIX.len() + name.len());
        if self.kept_private(name) {
            host.extend_from_slice(XATTR_PRIVATE_PREFIX);
        }
        host.extend_from_slice(name);
        CString::new(host)
            .map(Some)
            .map_err(|_| Errno(libc::EINVAL))
    }

    /// The guest's name for a host attribute, or None if it is hidden.
    fn guest_xattr_name<'a>(&self, uid: u32, host: &'a [u8]) -> Option<&'a [u8]> {
        let name = match host.strip_prefix(XATTR_PRIVATE_PREFIX) {
            None => host,
            Some(rest) if self.kept_private(rest) => rest,
            Some(_) => return None,
        };
        if uid != 0 && name.starts_with(TRUSTED_PREFIX) {
            return None;
        }
        Some(name)
    }

    /// The value of the attribute `name` (a host name).
    pub(crate) fn get_xattr(&self, target: &XattrTarget, name: &CString) -> OpResult<Vec<u8>> {
        Ok(host::in_proc_dir(|dir| {
            read_sized(
                |buf| dir.xattr_get(&target.path, target.nofollow, name, buf),
                XATTR_SIZE_MAX as usize,
            )
        })?)
    }

    /// The names guest user `uid` sees, each NUL-terminated.
    pub(crate) fn list_xattrs(&self, target: &XattrTarget, uid: u32) -> OpResult<Vec<u8>> {
        let raw = host::in_proc_dir(|dir| {
            read_sized(
                |buf| dir.xattr_list(&target.path, target.nofollow, buf),
                XATTR_LIST_MAX,
            )
        })?;
        let mut out = Vec::with_capacity(raw.len());
        for name in raw.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if let Some(guest) = self.guest_xattr_name(uid, name) {
                out.extend_from_slice(guest);
                out.push(0);
            }
        }
        Ok(out)
    }

    /// Sets the attribute `name` (a host name) to `value`, with setxattr's
    /// `flags`.
    pub(crate) fn set_xattr(
        &self,
        target: &XattrTarget,
        name: &CString,
        value: &[u8],
        flags: i32,
    ) -> OpResult<()> {
        Ok(host::in_proc_dir(|dir| {
            dir.xattr_set(&target.path, target.nofollow, name, value, flags)
        })?)
    }

    /// Removes the attribute `name` (a host name). Removing an ACL the
    /// file does not have is success, as the host filesystems answer (the
    /// client sends this when an ACL says no more than the mode).
    pub(crate) fn remove_xattr(&self, target: &XattrTarget, name: &CString) -> OpResult<()> {
        let removed =
            host::in_proc_dir(|dir| dir.xattr_remove(&target.path, target.nofollow, name));
        match removed {
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) && is_acl(name.as_bytes()) => Ok(()),
            other => Ok(other?),
        }
    }
}

fn is_acl(host_name: &[u8]) -> bool {
    let name = host_name
        .strip_prefix(XATTR_PRIVATE_PREFIX)
        .unwrap_or(host_name);
    name.starts_with(ACL_PREFIX)
}

/// Reads a variable-size value: asks for its size, then reads it, retrying
/// if it grew in between.
fn read_sized(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    max: usize,
) -> io::Result<Vec<u8>> {
    for _ in 0..4 {
        let size = read(&mut [])?;
        let mut buf = vec![0u8; size.min(max)];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}
