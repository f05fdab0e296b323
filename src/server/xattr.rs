//! Extended attributes: Txattrwalk (read one, or list with an empty name)
//! and Txattrcreate (set at clunk; size 0 with XATTR_REPLACE removes, which
//! is what the Linux client sends for removexattr). Which names the guest
//! sees and how they are kept: share/xattr.rs.

use std::sync::{Arc, Mutex};

use super::fid::{Fid, FidRef, Opened, XattrState};
use super::share::xattr::{XattrTarget, XATTR_SIZE_MAX};
use super::{Errno, OpResult, ReadSink, Server, Session, WriteSource};
use crate::protocol;
use crate::sync::Locked;

/// Tread of an xattr fid: the value (or name list) Txattrwalk read.
pub(super) fn read_value(
    state: &Mutex<Option<XattrState>>,
    offset: u64,
    count: usize,
    sink: &mut dyn ReadSink,
) -> OpResult<u32> {
    match &*state.locked() {
        Some(XattrState::Read(value)) => {
            let start = (offset.min(value.len() as u64)) as usize;
            let end = start + count.min(value.len() - start);
            Ok(sink.copy_from(&value[start..end]) as u32)
        }
        _ => Err(Errno(libc::EBADF)),
    }
}

/// Twrite to an xattr fid: part of the value Txattrcreate announced.
pub(super) fn write_value(
    state: &Mutex<Option<XattrState>>,
    t: &protocol::Twrite,
    source: &mut dyn WriteSource,
) -> OpResult<u32> {
    match &mut *state.locked() {
        Some(XattrState::Write { value, written, .. }) => {
            let start = usize::try_from(t.offset).map_err(|_| Errno(libc::EINVAL))?;
            let end = start
                .checked_add(t.count as usize)
                .ok_or(Errno(libc::EINVAL))?;
            let area = value.get_mut(start..end).ok_or(Errno(libc::ENOSPC))?;
            let n = source.copy_to(area);
            *written = (*written).max(start + n);
            Ok(n as u32)
        }
        _ => Err(Errno(libc::EBADF)),
    }
}

impl Server {
    fn xattr_target(&self, fid: &FidRef) -> OpResult<XattrTarget> {
        let is_host_symlink = self.is_host_symlink(fid)?;
        let path = if is_host_symlink {
            fid.path()
        } else {
            std::path::PathBuf::new()
        };
        self.share.xattr_target(fid.fd(), &path, is_host_symlink)
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
            self.share.list_xattrs(&target, fid.user.uid)?
        } else {
            let name = self
                .share
                .host_xattr_name(fid.user.uid, t.name.as_bytes())?
                .ok_or(Errno(libc::ENODATA))?;
            self.share.get_xattr(&target, &name)?
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
        let _ = new.opened.set(Opened::xattr(XattrState::Read(value)));
        s.fids.replace(t.newfid, Arc::new(new), &self.fid_limit)?;
        Ok(size)
    }

    pub(super) fn xattrcreate(&self, s: &Session, t: &protocol::Txattrcreate<'_>) -> OpResult<()> {
        let fid = self.fid(s, t.fid)?;
        if t.attr_size > XATTR_SIZE_MAX {
            return Err(Errno(libc::E2BIG));
        }
        let name = self
            .share
            .host_xattr_name(fid.user.uid, t.name.as_bytes())?
            .ok_or(Errno(libc::EPERM))?;
        if fid.opened.get().is_some() {
            return Err(Errno(libc::EBADF));
        }
        let value = s
            .fids
            .xattr_value(vec![0; t.attr_size as usize], self.max_xattr_bytes)?;
        fid.set_opened(Opened::xattr(XattrState::Write {
            name,
            flags: (t.flags & (libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32) as i32,
            value,
            written: 0,
        }))
    }

    /// Applies a pending Txattrcreate when its fid is clunked.
    pub(super) fn xattr_clunk(
        &self,
        fid: &Arc<Fid>,
        state: &Mutex<Option<XattrState>>,
    ) -> OpResult<()> {
        let mut state = state.locked();
        if !matches!(*state, Some(XattrState::Write { .. })) {
            return Ok(());
        }
        let fid = self.pin(fid)?;
        let Some(XattrState::Write {
            name,
            flags,
            value,
            written,
        }) = state.take()
        else {
            return Ok(());
        };
        let target = self.xattr_target(&fid)?;
        if value.is_empty() && flags & libc::XATTR_REPLACE != 0 {
            return self.share.remove_xattr(&target, &name);
        }
        if written != value.len() {
            return Err(Errno(libc::EINVAL)); // fewer bytes written than announced
        }
        self.share.set_xattr(&target, &name, &value, flags)
    }
}
