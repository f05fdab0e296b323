//! The control namespace (`--ctl`): files that exist only in the walk.
//!
//! `D/,ctl` is a directory that lists nothing; `D/,ctl/F` is the control
//! file of `F` (a symlink followed inside the share), `D/,ctl/,` that of `D`
//! itself. Reading one gives the host's stat of the file as one line;
//! writing commands to it changes the file (ctl_syntax.rs has the syntax).
//! `,nofollow` makes the rest of a walk keep symlinks as they are; the two
//! combine as `,ctl,nofollow`. A real entry of the same name wins over a
//! control name, which stays reachable under another spelling (`,ctl,ctl`).

use std::ffi::{CString, OsStr};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, PathBuf};
use std::sync::Mutex;

use super::ctl_syntax::{
    self, DirCommand, FileCommand, NodeKind, StatFields, Time, CONTROL_DIR_QID, CONTROL_FILE_QID,
};
use super::error::{cstring, errno};
use super::fid::{FidRef, Node, Opened};
use super::ops::{WalkFrom, WalkStep};
use super::{share, Dialect, OpResult, ReadSink, Server, Session, WriteSource};
use crate::protocol::flags::{GETATTR_BASIC, P9_ACCMODE, P9_RDONLY};
use crate::protocol::{self, Qid};
use crate::sync::Locked;

/// Most bytes one write to a control file may carry.
const MAX_COMMANDS: usize = 64 * 1024;

/// A write to a control file that failed: the errno, and the text a
/// 9P2000 client sees.
#[derive(Debug)]
pub struct CtlFailure {
    pub errno: i32,
    pub message: String,
}

impl fmt::Display for CtlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<CtlFailure> for super::reply::Failure {
    fn from(failure: CtlFailure) -> Self {
        super::reply::Failure {
            errno: failure.errno,
            text: Some(failure.message),
        }
    }
}

impl CtlFailure {
    fn new(errno: i32, message: impl Into<String>) -> Self {
        CtlFailure {
            errno,
            message: message.into(),
        }
    }

    /// A command that failed on the host.
    fn host(command: &str, e: super::Errno) -> Self {
        let text = super::error_text(e.0);
        CtlFailure::new(e.0, format!("ctl: {command}: {text}"))
    }
}

impl Server {
    /// A walk onto a control name from directory `from`; None if `name` is
    /// not one (or a real entry has it).
    pub(super) fn walk_to_control(
        &self,
        from: &WalkFrom<'_>,
        name: &[u8],
    ) -> OpResult<Option<WalkStep>> {
        if !self.ctl {
            return Ok(None);
        }
        let Some(control) = ctl_syntax::parse_control_name(name) else {
            return Ok(None);
        };
        let c = share::entry_name(name)?;
        if self.share.exists(from.fd, &c) {
            return Ok(None); // a real entry wins
        }
        let fd = from.fd.try_clone_to_owned()?;
        let node = if control.ctl {
            Node::CtlDir
        } else {
            Node::File
        };
        let qid = self.control_qid(node, fd.as_fd())?;
        let nofollow = from.nofollow || control.nofollow;
        Ok(Some(WalkStep {
            fd,
            path: from.path.clone(),
            file_type: libc::S_IFDIR,
            node,
            nofollow,
            qid,
        }))
    }

    /// A walk from a control directory: `,` is the directory's own control
    /// file, `..` the directory, any other name the control file of that
    /// entry.
    pub(super) fn walk_in_control_dir(
        &self,
        from: &WalkFrom<'_>,
        name: &[u8],
    ) -> OpResult<WalkStep> {
        let (fd, path, own_dir) = match name {
            b".." => {
                let fd = from.fd.try_clone_to_owned()?;
                return self.step_to(fd, from.path.clone(), from.nofollow, false);
            }
            b"." => {
                let fd = from.fd.try_clone_to_owned()?;
                return Ok(WalkStep {
                    qid: self.control_qid(Node::CtlDir, fd.as_fd())?,
                    fd,
                    path: from.path.clone(),
                    file_type: libc::S_IFDIR,
                    node: Node::CtlDir,
                    nofollow: from.nofollow,
                });
            }
            b"," => (from.fd.try_clone_to_owned()?, from.path.clone(), true),
            _ => {
                let c = share::entry_name(name)?;
                let fd = self.share.lookup(from.fd, &c)?;
                let path = super::child_path(&from.path, name);
                let step = self.step_to(fd, path, from.nofollow, !from.nofollow)?;
                (step.fd, step.path, false)
            }
        };
        let node = Node::CtlFile { own_dir };
        Ok(WalkStep {
            qid: self.control_qid(node, fd.as_fd())?,
            fd,
            path,
            file_type: libc::S_IFREG,
            node,
            nofollow: from.nofollow,
        })
    }

    fn control_qid(&self, node: Node, fd: BorrowedFd<'_>) -> OpResult<Qid> {
        let qid = self.share.qid_of(fd)?;
        Ok(match node {
            Node::CtlDir => Qid {
                ty: protocol::QTDIR,
                version: 0,
                path: qid.path ^ CONTROL_DIR_QID,
            },
            Node::CtlFile { .. } => Qid {
                ty: protocol::QTFILE,
                path: qid.path ^ CONTROL_FILE_QID,
                ..qid
            },
            Node::Dangling => Qid {
                ty: protocol::QTFILE,
                ..qid
            },
            Node::File => qid,
        })
    }

    /// The qid a client sees for a fid in its dialect: a symlink that
    /// 9P2000 shows as a file of its target is append-only.
    pub(super) fn fid_qid(&self, dialect: Dialect, fid: &FidRef) -> OpResult<Qid> {
        let mut qid = self.control_qid(fid.node, fid.fd())?;
        if fid.node == Node::File && fid.is_symlink() && dialect == Dialect::Plan9 {
            qid.ty = protocol::QTAPPEND;
        }
        Ok(qid)
    }

    /// Rgetattr of a control file or directory, or a dangling link.
    pub(super) fn control_getattr(&self, fid: &FidRef) -> OpResult<protocol::Rgetattr> {
        let stx = self.share.stat(fid.fd())?;
        let (mode, nlink, size) = match fid.node {
            Node::CtlDir => (libc::S_IFDIR | 0o555, 2, 0),
            Node::CtlFile { .. } => (libc::S_IFREG | 0o644, 1, self.content(fid)?.len() as u64),
            _ => (libc::S_IFREG, 1, 0),
        };
        Ok(protocol::Rgetattr {
            valid: GETATTR_BASIC,
            qid: self.control_qid(fid.node, fid.fd())?,
            mode,
            uid: stx.stx_uid,
            gid: stx.stx_gid,
            nlink,
            rdev: 0,
            size,
            blksize: 4096,
            blocks: 0,
            atime_sec: stx.stx_atime.tv_sec as u64,
            atime_nsec: stx.stx_atime.tv_nsec as u64,
            mtime_sec: stx.stx_mtime.tv_sec as u64,
            mtime_nsec: stx.stx_mtime.tv_nsec as u64,
            ctime_sec: stx.stx_ctime.tv_sec as u64,
            ctime_nsec: stx.stx_ctime.tv_nsec as u64,
            btime_sec: 0,
            btime_nsec: 0,
            gen: 0,
            data_version: 0,
        })
    }

    /// Opens a fid whose content the server makes up: a control file or
    /// directory, or (9P2000, 9P2000.u) a symlink read as its target.
    pub(super) fn open_content(&self, fid: &FidRef, flags: u32) -> OpResult<(Qid, u32)> {
        let writes = flags & P9_ACCMODE != P9_RDONLY;
        match fid.node {
            Node::Dangling => return Err(errno(libc::EACCES)),
            Node::CtlDir if writes => return Err(errno(libc::EISDIR)),
            Node::File if !fid.is_symlink() => return Err(errno(libc::EINVAL)),
            Node::File if writes => return Err(errno(libc::EACCES)),
            _ => {}
        }
        fid.set_opened(Opened::content(flags))?;
        Ok((self.control_qid(fid.node, fid.fd())?, 0))
    }

    /// What reading the fid gives: a control file's stat line, a link's
    /// target, nothing for a control directory or a dangling link.
    pub(super) fn content(&self, fid: &FidRef) -> OpResult<Vec<u8>> {
        match fid.node {
            Node::CtlFile { .. } => {
                // The file as the guest sees it: ids through the id maps,
                // mapped-xattr's attributes laid over the host's.
                let stx = self.share.stat(fid.fd())?;
                let path = fid.path();
                let name = match path.file_name() {
                    Some(name) => name.as_bytes().to_vec(),
                    None => b".".to_vec(), // the share's root
                };
                let mut target = [0u8; libc::PATH_MAX as usize];
                let target = if stx.stx_mode as u32 & libc::S_IFMT == libc::S_IFLNK {
                    let n = self.share.link_target(fid.fd(), &mut target)?;
                    Some(&target[..n])
                } else {
                    None
                };
                Ok(ctl_syntax::stat_line(&StatFields::from(&stx), &name, target).into_bytes())
            }
            Node::File if fid.is_symlink() => {
                let mut buf = [0u8; libc::PATH_MAX as usize];
                let n = self.share.link_target(fid.fd(), &mut buf)?;
                Ok(buf[..n].to_vec())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A read of made-up content: taken anew at offset 0 (or at a fid's
    /// first read), else from the text the fid read last.
    pub(super) fn read_content(
        &self,
        fid: &FidRef,
        snapshot: &Mutex<Option<Vec<u8>>>,
        offset: u64,
        count: usize,
        sink: &mut dyn ReadSink,
    ) -> OpResult<u32> {
        let mut snapshot = snapshot.locked();
        let content = match &mut *snapshot {
            Some(content) if offset != 0 => content,
            _ => snapshot.insert(self.content(fid)?),
        };
        let start = offset.min(content.len() as u64) as usize;
        let end = start + count.min(content.len() - start);
        Ok(sink.copy_from(&content[start..end]) as u32)
    }

    /// A write to the control file `fid` (of its own directory if
    /// `own_dir`): every command is parsed before any is applied, so a
    /// malformed write changes nothing.
    pub(super) fn ctl_write(
        &self,
        s: &Session,
        fid: &FidRef,
        own_dir: bool,
        t: &protocol::Twrite,
        source: &mut dyn WriteSource,
    ) -> Result<u32, CtlFailure> {
        let bad = |e: i32| CtlFailure::new(e, super::error_text(e));
        match fid.opened.get() {
            Some(Opened::Content { flags, .. }) if flags & P9_ACCMODE != P9_RDONLY => {}
            _ => return Err(bad(libc::EBADF)),
        }
        let count = t.count as usize;
        if count > source.len() || count > MAX_COMMANDS {
            return Err(bad(libc::EINVAL));
        }
        let mut text = vec![0u8; count];
        source.copy_to(&mut text);
        let invalid = |e: ctl_syntax::CtlError| CtlFailure::new(libc::EINVAL, e.to_string());
        if own_dir {
            for command in ctl_syntax::parse_dir_commands(&text).map_err(invalid)? {
                self.apply_dir_command(s, fid, command)?;
            }
        } else {
            for command in ctl_syntax::parse_file_commands(&text).map_err(invalid)? {
                self.apply_file_command(fid, command)?;
            }
        }
        Ok(t.count)
    }

    /// Applies a command to a file through the code Tsetattr uses: guest
    /// ids through the id maps, modes and owners where the security model
    /// keeps them, truncation only of a regular file.
    fn apply_file_command(&self, fid: &FidRef, command: FileCommand) -> Result<(), CtlFailure> {
        let result: OpResult<()> = match command {
            FileCommand::Chmod(mode) => self.set_mode(fid, mode),
            FileCommand::Chown { uid, gid } => self.chown(fid, uid, gid),
            FileCommand::Utimes { atime, mtime } => {
                self.set_times(fid, &[timespec(atime), timespec(mtime)])
            }
            FileCommand::Truncate(size) => self.truncate(fid, size),
        };
        result.map_err(|e| CtlFailure::host(command_name(&command), e))
    }

    fn apply_dir_command(
        &self,
        s: &Session,
        dir: &FidRef,
        command: DirCommand,
    ) -> Result<(), CtlFailure> {
        let name = match &command {
            DirCommand::File(c) => return self.apply_file_command(dir, *c),
            DirCommand::Symlink { .. } => "symlink",
            DirCommand::Link { .. } => "link",
            DirCommand::Rename { .. } => "rename",
            DirCommand::Mknod { .. } => "mknod",
        };
        let result: OpResult<()> = (|| match command {
            DirCommand::File(_) => Ok(()),
            DirCommand::Symlink { target, name } => {
                let (parent, last, _) = self.resolve_name(dir, &name)?;
                let gid = self.share.stat(parent.as_fd())?.stx_gid;
                let target = cstring(&target)?;
                self.share
                    .make_symlink(parent.as_fd(), &last, &target, dir.user.uid, gid)
                    .map(drop)
            }
            DirCommand::Link { old, new } => {
                let (old_parent, old_last, _) = self.resolve_name(dir, &old)?;
                let (new_parent, new_last, _) = self.resolve_name(dir, &new)?;
                let file = self.share.lookup(old_parent.as_fd(), &old_last)?;
                self.share.link(file.as_fd(), new_parent.as_fd(), &new_last)
            }
            DirCommand::Rename { old, new } => {
                let (old_parent, old_last, old_path) = self.resolve_name(dir, &old)?;
                let (new_parent, new_last, new_path) = self.resolve_name(dir, &new)?;
                self.share
                    .rename(old_parent.as_fd(), &old_last, new_parent.as_fd(), &new_last)?;
                s.fids.renamed(&old_path, &new_path);
                Ok(())
            }
            DirCommand::Mknod {
                name,
                kind,
                mode,
                major,
                minor,
            } => {
                let (parent, last, _) = self.resolve_name(dir, &name)?;
                let gid = self.share.stat(parent.as_fd())?.stx_gid;
                let file_type = match kind {
                    NodeKind::Regular => libc::S_IFREG,
                    NodeKind::Block => libc::S_IFBLK,
                    NodeKind::Char => libc::S_IFCHR,
                    NodeKind::Fifo => libc::S_IFIFO,
                    NodeKind::Socket => libc::S_IFSOCK,
                };
                let dev = libc::makedev(major, minor);
                let mode = file_type | (mode & 0o7777);
                self.share
                    .make_node(parent.as_fd(), &last, mode, dev, dir.user.uid, gid)
                    .map(drop)
            }
        })();
        result.map_err(|e| CtlFailure::host(name, e))
    }

    /// Resolves a name written to a directory's control file: a path from
    /// that directory, or from the share's root if it starts with '/'; `..`
    /// never leads above the root. Returns the parent directory, the last
    /// component and the path from the root.
    fn resolve_name(&self, dir: &FidRef, name: &[u8]) -> OpResult<(OwnedFd, CString, PathBuf)> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if !name.starts_with(b"/") {
            for c in dir.path().components() {
                if let Component::Normal(c) = c {
                    parts.push(c.as_bytes().to_vec());
                }
            }
        }
        for part in name.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                part => parts.push(part.to_vec()),
            }
        }
        let last = parts.pop().ok_or(errno(libc::EINVAL))?;
        let parent: PathBuf = parts.iter().map(|p| OsStr::from_bytes(p)).collect();
        let path = super::child_path(&parent, &last);
        Ok((
            self.share.resolve(&parent)?,
            share::entry_name(&last)?,
            path,
        ))
    }
}

fn timespec(time: Time) -> libc::timespec {
    match time {
        Time::Set { sec, nsec } => libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec as i64,
        },
        Time::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Time::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    }
}

fn command_name(command: &FileCommand) -> &'static str {
    match command {
        FileCommand::Chmod(_) => "chmod",
        FileCommand::Chown { .. } => "chown",
        FileCommand::Utimes { .. } => "utimes",
        FileCommand::Truncate(_) => "truncate",
    }
}
