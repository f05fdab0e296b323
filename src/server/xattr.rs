//! Extended attributes: Txattrwalk (read one, or list with an empty name)
//! and Txattrcreate (set at clunk; size 0 with XATTR_REPLACE removes, which
//! is what the Linux client sends for removexattr).
//!
//! The daemon's own `user.virtfs.*` attributes are never shown to or set by
//! the guest. In mapped-xattr, POSIX ACLs, `trusted.*` and `security.*` are
//! kept under that prefix, so they neither need privileges nor act on the
//! host. Guest users other than root see no `trusted.*`, as on Linux.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::fid::{Fid, FidRef, XattrState};
use super::security::XATTR_PRIVATE_PREFIX;
use super::{host, Errno, OpResult, Server, Session};
use crate::protocol;

/// The largest value Linux stores (XATTR_SIZE_MAX).
const XATTR_SIZE_MAX: u64 = 65536;
/// Longest list (XATTR_LIST_MAX).
const XATTR_LIST_MAX: usize = 65536;
const ACL_PREFIX: &[u8] = b"system.posix_acl_";
const TRUSTED_PREFIX: &[u8] = b"trusted.";
const SECURITY_PREFIX: &[u8] = b"security.";

/// The file whose attributes a fid's xattr calls act on.
struct Target {
    path: host::ProcPath,
    /// l*xattr: the fid is a symlink, named through its parent directory.
    nofollow: bool,
    /// Keeps the parent directory (named in `path`) open.
    _dir: Option<OwnedFd>,
}

impl Server {
    fn xattr_target(&self, fid: &FidRef) -> OpResult<Target> {
        if !self.is_host_symlink(fid)? {
            return Ok(Target {
                path: host::ProcPath::of(fid.fd()),
                nofollow: false,
                _dir: None,
            });
        }
        let (dir, name, _) = self.parent_of(fid)?;
        Ok(Target {
            path: host::ProcPath::entry(std::os::fd::AsFd::as_fd(&dir), &name),
            nofollow: true,
            _dir: Some(dir),
        })
    }

    /// Whether the host keeps this guest attribute under the private prefix.
    fn kept_private(&self, name: &[u8]) -> bool {
        self.share.keeps_special_xattrs_private()
            && (name.starts_with(ACL_PREFIX)
                || name.starts_with(TRUSTED_PREFIX)
                || name.starts_with(SECURITY_PREFIX))
    }

    /// The host name of a guest attribute name, or None for names the
    /// guest cannot reach (the daemon's own; trusted.* for non-root).
    fn host_xattr_name(&self, fid: &FidRef, name: &[u8]) -> OpResult<Option<CString>> {
        if name.starts_with(XATTR_PRIVATE_PREFIX)
            || (fid.user.uid != 0 && name.starts_with(TRUSTED_PREFIX))
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
    fn guest_xattr_name<'a>(&self, fid: &FidRef, host: &'a [u8]) -> Option<&'a [u8]> {
        let name = match host.strip_prefix(XATTR_PRIVATE_PREFIX) {
            None => host,
            Some(rest) if self.kept_private(rest) => rest,
            Some(_) => return None,
        };
        if fid.user.uid != 0 && name.starts_with(TRUSTED_PREFIX) {
            return None;
        }
        Some(name)
    }

    pub(super) fn xattrwalk(&self, s: &Session, t: &protocol::Txattrwalk<'_>) -> OpResult<u64> {
        if !self.any_fid(s, t.fid)?.is_host_file() {
            return Err(Errno(libc::ENODATA)); // control files have no attributes
        }
        let fid = self.fid(s, t.fid)?;
        if t.newfid != t.fid && s.fids.get(t.newfid).is_some() {
            return Err(Errno(libc::EEXIST));
        }
        let target = self.xattr_target(&fid)?;
        let value = if t.name.as_bytes().is_empty() {
            self.list_xattrs(&fid, &target)?
        } else {
            let name = self
                .host_xattr_name(&fid, t.name.as_bytes())?
                .ok_or(Errno(libc::ENODATA))?;
            host::in_proc_dir(|dir| {
                read_sized(
                    |buf| dir.xattr_get(&target.path, target.nofollow, &name, buf),
                    XATTR_SIZE_MAX as usize,
                )
            })?
        };
        let size = value.len() as u64;
        let value = s.fids.xattr_value(value, self.max_xattr_bytes)?;
        let mut new = Fid::new(
            fid.clone_path()?,
            fid.path(),
            fid.file_type,
            fid.user.clone(),
        );
        // Found again as the fid it came from, so that idle xattr fids do
        // not pin descriptors.
        new.refind = fid.refind;
        *new.xattr_state() = Some(XattrState::Read(value));
        s.fids.replace(t.newfid, Arc::new(new), &self.fid_limit)?;
        Ok(size)
    }

    fn list_xattrs(&self, fid: &FidRef, target: &Target) -> OpResult<Vec<u8>> {
        let raw = host::in_proc_dir(|dir| {
            read_sized(
                |buf| dir.xattr_list(&target.path, target.nofollow, buf),
                XATTR_LIST_MAX,
            )
        })?;
        let mut out = Vec::with_capacity(raw.len());
        for name in raw.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if let Some(guest) = self.guest_xattr_name(fid, name) {
                out.extend_from_slice(guest);
                out.push(0);
            }
        }
        Ok(out)
    }

    pub(super) fn xattrcreate(&self, s: &Session, t: &protocol::Txattrcreate<'_>) -> OpResult<()> {
        let fid = self.fid(s, t.fid)?;
        if t.attr_size > XATTR_SIZE_MAX {
            return Err(Errno(libc::E2BIG));
        }
        let name = self
            .host_xattr_name(&fid, t.name.as_bytes())?
            .ok_or(Errno(libc::EPERM))?;
        let mut state = fid.xattr_state();
        if state.is_some() || fid.open.get().is_some() {
            return Err(Errno(libc::EBADF));
        }
        let value = s
            .fids
            .xattr_value(vec![0; t.attr_size as usize], self.max_xattr_bytes)?;
        *state = Some(XattrState::Write {
            name,
            flags: (t.flags & (libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32) as i32,
            value,
            written: 0,
        });
        Ok(())
    }

    /// Applies a pending Txattrcreate when its fid is clunked.
    pub(super) fn xattr_clunk(&self, fid: &FidRef) -> OpResult<()> {
        let Some(XattrState::Write {
            name,
            flags,
            value,
            written,
        }) = fid.xattr_state().take()
        else {
            return Ok(());
        };
        let target = self.xattr_target(fid)?;
        if value.is_empty() && flags & libc::XATTR_REPLACE != 0 {
            let removed =
                host::in_proc_dir(|dir| dir.xattr_remove(&target.path, target.nofollow, &name));
            return match removed {
                // Removing an ACL the file does not have is success, as
                // the host filesystems answer (the client sends this when
                // an ACL says no more than the mode).
                Err(e) if e.raw_os_error() == Some(libc::ENODATA) && is_acl(name.as_bytes()) => {
                    Ok(())
                }
                other => Ok(other?),
            };
        }
        if written != value.len() {
            return Err(Errno(libc::EINVAL)); // fewer bytes written than announced
        }
        Ok(host::in_proc_dir(|dir| {
            dir.xattr_set(&target.path, target.nofollow, &name, &value, flags)
        })?)
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
