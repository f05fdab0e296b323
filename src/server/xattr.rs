//! Extended attributes: Txattrwalk (read one, or list with an empty name)
//! and Txattrcreate (set at clunk; size 0 removes).
//!
//! The daemon's own `user.virtfs.*` attributes are never shown to or set by
//! the guest; in mapped-xattr, POSIX ACLs are kept under that prefix so they
//! do not restrict the daemon on the host.

use std::ffi::CString;
use std::io;
use std::sync::Arc;

use super::fid::{Fid, XattrState};
use super::security::{SecurityModel, XATTR_PRIVATE_PREFIX};
use super::{host, Errno, OpResult, Server, Session};
use crate::protocol;

/// The largest value Linux stores (XATTR_SIZE_MAX).
const XATTR_SIZE_MAX: u64 = 65536;
/// Longest list (XATTR_LIST_MAX).
const XATTR_LIST_MAX: usize = 65536;
const ACL_PREFIX: &[u8] = b"system.posix_acl_";

impl Server {
    /// The host name of a guest attribute name; EPERM-free names only.
    fn host_xattr_name(&self, name: &[u8]) -> OpResult<CString> {
        if name.starts_with(XATTR_PRIVATE_PREFIX) {
            return Err(Errno(libc::EPERM));
        }
        let mapped = self.model == SecurityModel::MappedXattr && name.starts_with(ACL_PREFIX);
        let mut host = Vec::with_capacity(XATTR_PRIVATE_PREFIX.len() + name.len());
        if mapped {
            host.extend_from_slice(XATTR_PRIVATE_PREFIX);
        }
        host.extend_from_slice(name);
        CString::new(host).map_err(|_| Errno(libc::EINVAL))
    }

    /// The guest's name for a host attribute, or None if it is hidden.
    fn guest_xattr_name<'a>(&self, host: &'a [u8]) -> Option<&'a [u8]> {
        match host.strip_prefix(XATTR_PRIVATE_PREFIX) {
            None => Some(host),
            Some(rest)
                if self.model == SecurityModel::MappedXattr && rest.starts_with(ACL_PREFIX) =>
            {
                Some(rest)
            }
            Some(_) => None,
        }
    }

    fn xattr_target(fid: &Fid) -> OpResult<()> {
        // Attributes of symlinks themselves are not served (Linux keeps no
        // user.* attributes on symlinks).
        if fid.is_symlink() {
            return Err(Errno(libc::EOPNOTSUPP));
        }
        Ok(())
    }

    pub(super) fn xattrwalk(&self, s: &Session, t: &protocol::Txattrwalk<'_>) -> OpResult<u64> {
        let fid = self.fid(s, t.fid)?;
        if t.newfid != t.fid && s.fids.get(t.newfid).is_some() {
            return Err(Errno(libc::EEXIST));
        }
        Self::xattr_target(&fid)?;
        let value = if t.name.as_bytes().is_empty() {
            self.list_xattrs(&fid)?
        } else {
            let name = self.host_xattr_name(t.name.as_bytes())?;
            read_sized(
                |buf| host::getxattr(fid.fd(), &name, buf),
                XATTR_SIZE_MAX as usize,
            )?
        };
        let size = value.len() as u64;
        let new = Fid::new(fid.file.try_clone()?, fid.path(), fid.file_type, fid.uid);
        *new.xattr_state() = Some(XattrState::Read(value));
        s.fids.replace(t.newfid, Arc::new(new));
        Ok(size)
    }

    fn list_xattrs(&self, fid: &Fid) -> OpResult<Vec<u8>> {
        let raw = read_sized(|buf| host::listxattr(fid.fd(), buf), XATTR_LIST_MAX)?;
        let mut out = Vec::with_capacity(raw.len());
        for name in raw.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if let Some(guest) = self.guest_xattr_name(name) {
                out.extend_from_slice(guest);
                out.push(0);
            }
        }
        Ok(out)
    }

    pub(super) fn xattrcreate(&self, s: &Session, t: &protocol::Txattrcreate<'_>) -> OpResult<()> {
        self.check_writable()?;
        let fid = self.fid(s, t.fid)?;
        Self::xattr_target(&fid)?;
        if t.attr_size > XATTR_SIZE_MAX {
            return Err(Errno(libc::E2BIG));
        }
        let name = self.host_xattr_name(t.name.as_bytes())?;
        let mut state = fid.xattr_state();
        if state.is_some() || fid.open.get().is_some() {
            return Err(Errno(libc::EBADF));
        }
        *state = Some(XattrState::Write {
            name,
            flags: (t.flags & (libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32) as i32,
            value: vec![0; t.attr_size as usize],
            written: 0,
        });
        Ok(())
    }

    /// Applies a pending Txattrcreate when its fid is clunked.
    pub(super) fn xattr_clunk(&self, fid: &Fid) -> OpResult<()> {
        let Some(XattrState::Write {
            name,
            flags,
            value,
            written,
        }) = fid.xattr_state().take()
        else {
            return Ok(());
        };
        if value.is_empty() {
            return Ok(host::removexattr(fid.fd(), &name)?);
        }
        if written != value.len() {
            return Err(Errno(libc::EINVAL)); // fewer bytes written than announced
        }
        Ok(host::setxattr(fid.fd(), &name, &value, flags)?)
    }
}

/// Reads a variable-size value: asks for its size, then reads it, retrying
/// if it grew in between.
fn read_sized(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    max: usize,
) -> OpResult<Vec<u8>> {
    for _ in 0..4 {
        let size = read(&mut [])?;
        let mut buf = vec![0u8; size.min(max)];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno(libc::ERANGE))
}
