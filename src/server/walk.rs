//! Twalk: name by name from a fid, through host directories and the
//! control namespace (ctl.rs), which the walk knows as a plug-in: a
//! control name is tried before a host lookup, and a walk inside a control
//! directory is the namespace's. The step onto a host file is ops.rs's.

use std::path::Path;
use std::sync::Arc;

use super::error::errno;
use super::fid::{Fid, FidRef, Node, Refind};
use super::ops::{refind_after_step, WalkFrom, WalkStep};
use super::{child_path, share, Dialect, OpResult, Server, Session};
use crate::protocol::{self, Qid, WalkList};

impl Server {
    /// Twalk from `fid`: the qids of the names walked; `newfid` made only
    /// if every name was.
    pub(super) fn walk(
        &self,
        s: &Session,
        fid: &FidRef,
        t: &protocol::Twalk<'_>,
    ) -> OpResult<WalkList<Qid>> {
        if t.newfid != t.fid && s.fids.get(t.newfid).is_some() {
            return Err(errno(libc::EEXIST));
        }
        let mut qids = WalkList::new();
        // Walked from the fid's own descriptor: it is copied only for a
        // walk of no names (a clone of the fid).
        let mut at: Option<WalkStep> = None;
        for (i, name) in t.names.as_slice().iter().enumerate() {
            let from = match &at {
                Some(step) => step.position(),
                None => WalkFrom {
                    fd: fid.fd(),
                    path: fid.path(),
                    file_type: fid.file_type,
                    node: fid.node,
                    nofollow: fid.nofollow,
                },
            };
            match self.walk_one(s, &from, name.as_bytes()) {
                Ok(mut step) => {
                    if step.node == Node::File
                        && step.file_type == libc::S_IFLNK
                        && s.dialect() == Dialect::Plan9
                    {
                        step.qid.ty = protocol::QTAPPEND; // read as its target
                    }
                    let _ = qids.push(step.qid);
                    at = Some(step);
                }
                Err(e) if i == 0 => return Err(e),
                Err(_) => return Ok(qids), // partial walk: newfid not made
            }
        }
        let mut new = match at {
            Some(step) => {
                let mut new = Fid::new(step.fd, step.path, step.file_type, fid.user.clone());
                new.node = step.node;
                new.nofollow = step.nofollow;
                new.refind = refind_after_step(step.node, s.dialect(), step.nofollow);
                new
            }
            None => {
                let mut new = Fid::new(
                    fid.clone_path()?,
                    fid.path(),
                    fid.file_type,
                    fid.user.clone(),
                );
                new.node = fid.node;
                new.nofollow = fid.nofollow;
                new.refind = fid.refind;
                new
            }
        };
        if new.refind == Refind::Never {
            // Its descriptor stays open while it lives (a control file or
            // directory, a dangling link, a path through `,nofollow`):
            // it counts as an open file of the session.
            new.pinned = Some(s.fids.open_slot(self.max_open_files)?);
        }
        s.fids.replace(t.newfid, Arc::new(new), &self.fid_limit)?;
        Ok(qids)
    }

    /// One step of a walk: a name looked up from where the walk is.
    fn walk_one(&self, s: &Session, from: &WalkFrom<'_>, name: &[u8]) -> OpResult<WalkStep> {
        match from.node {
            Node::File if from.file_type == libc::S_IFDIR => {}
            Node::CtlDir => return self.walk_in_control_dir(from, name),
            _ => return Err(errno(libc::ENOTDIR)),
        }
        if let Some(step) = self.walk_to_control(from, name)? {
            return Ok(step);
        }
        let (fd, path) = match name {
            b".." => {
                // Never above the root: ".." of the root is the root.
                let parent = from.path.parent().unwrap_or(Path::new("")).to_path_buf();
                (self.share.resolve(&parent)?, parent)
            }
            b"." => (from.fd.try_clone_to_owned()?, from.path.clone()),
            _ => {
                let c = share::entry_name(name)?;
                (
                    self.share.lookup(from.fd, &c)?,
                    child_path(&from.path, name),
                )
            }
        };
        let follow = s.dialect() == Dialect::Plan9 && !from.nofollow;
        self.step_to(fd, path, from.nofollow, follow)
    }
}
