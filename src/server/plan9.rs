//! 9P2000 and 9P2000.u: Topen, Tcreate, Tstat, Twstat and directory reads
//! as stat records, built on the 9P2000.L operations.
//!
//! 9P2000 follows symlinks inside the share (a Plan 9 client has no
//! symlinks); 9P2000.u shows them with DMSYMLINK and their target in the
//! stat's extension, as the Linux client expects.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::error::errno;
use super::fid::{Fid, FidRef, Node, OpenFile, Refind};
use super::ops::*;
use super::share::DirEntry;
use super::user::number;
use super::{child_path, share, Dialect, OpResult, ReadSink, Server, Session};
use crate::protocol::flags::*;
use crate::protocol::modes::{
    device, lopen_flags_of_mode, plan9_mode, qid_type_of_dm, unix_permissions,
};
use crate::protocol::{self, Qid, Stat, StatExtension, Str, Wire};
use crate::protocol::{DMAPPEND, DMDEVICE, DMDIR, DMLINK, DMNAMEDPIPE};
use crate::protocol::{DMSOCKET, DMSYMLINK, KEEP16, KEEP32, KEEP64};
use crate::sync::Locked;

/// Whether a Topen or Tcreate mode may change the share: writing,
/// truncation, or removal at clunk (ORCLOSE).
pub(super) fn open_mode_changes(mode: u8) -> bool {
    writes(lopen_flags_of_mode(mode)) || mode & ORCLOSE != 0
}

/// Whether a Twstat changes anything: every field but `muid` (which the
/// Linux client fills with its user name) "don't touch" is a request to
/// make the file's content stable (stat(5)), anything else a change.
pub(super) fn wstat_changes(st: &Stat<'_>) -> bool {
    let ids_kept = st
        .ext
        .is_none_or(|e| e.n_uid == KEEP32 && e.n_gid == KEEP32);
    let rest = Stat {
        muid: Str(b""),
        ext: None,
        ..*st
    };
    !(rest == Stat::DONT_TOUCH && ids_kept)
}

/// A stat record with its strings owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct StatRecord {
    pub qid: Qid,
    pub mode: u32,
    pub atime: u32,
    pub mtime: u32,
    pub length: u64,
    pub name: Vec<u8>,
    pub uid: String,
    pub gid: String,
    pub extension: Vec<u8>,
    pub n_uid: u32,
    pub n_gid: u32,
}

impl StatRecord {
    /// The record as sent in `dialect` (9P2000.u adds the extension).
    pub fn wire(&self, dialect: Dialect) -> Stat<'_> {
        Stat {
            ty: 0,
            dev: 0,
            qid: self.qid,
            mode: self.mode,
            atime: self.atime,
            mtime: self.mtime,
            length: self.length,
            name: Str(&self.name),
            uid: Str(self.uid.as_bytes()),
            gid: Str(self.gid.as_bytes()),
            muid: Str(self.uid.as_bytes()),
            ext: (dialect == Dialect::Unix).then_some(StatExtension {
                extension: Str(&self.extension),
                n_uid: self.n_uid,
                n_gid: self.n_gid,
                n_muid: self.n_uid,
            }),
        }
    }
}

/// Seconds as a 9P2000 time (unsigned 32 bits; earlier times are 0).
fn seconds(t: &libc::statx_timestamp) -> u32 {
    t.tv_sec.clamp(0, u32::MAX as i64) as u32
}

impl Server {
    pub(super) fn open(&self, s: &Session, t: &protocol::Topen) -> OpResult<(Qid, u32)> {
        let fid = self.any_fid(s, t.fid)?;
        let flags = lopen_flags_of_mode(t.mode);
        let opened_already = || match fid.opened.get() {
            Some(_) => Err(errno(libc::EBADF)),
            None => Ok(()),
        };
        if !fid.is_host_file() || fid.is_symlink() {
            opened_already()?;
            self.open_content(&fid, flags)?;
            return Ok((self.fid_qid(s.dialect(), &fid)?, 0));
        }
        if t.mode & ORCLOSE != 0 {
            self.check_removable(&fid)?;
        }
        opened_already()?;
        let opened = self.lopen(s, &fid, flags)?;
        if t.mode & ORCLOSE != 0 {
            set_remove_on_clunk(fid.open_file());
        }
        Ok(opened)
    }

    /// ORCLOSE is honoured only where the fid's file could be removed
    /// (open(5)): not the share's root, and only with write and search
    /// permission in its directory (checked with the credentials the
    /// request runs with).
    fn check_removable(&self, fid: &FidRef) -> OpResult<()> {
        let (parent, _, _) = self.parent_of(fid)?;
        self.share.may_change_entries(parent.as_fd())
    }

    pub(super) fn create(&self, s: &Session, t: &protocol::Tcreate<'_>) -> OpResult<(Qid, u32)> {
        let dir = self.fid(s, t.fid)?;
        if !dir.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        let dir_stat = self.share.stat(dir.fd())?;
        let dir_perm = dir_stat.stx_mode as u32 & 0o777;
        let gid = dir_stat.stx_gid;
        let name = t.name;
        let unix = s.dialect() == Dialect::Unix;
        let special = DMSYMLINK | DMLINK | DMDEVICE | DMNAMEDPIPE | DMSOCKET;
        if t.perm & DMDIR != 0 {
            if t.mode & 3 == OWRITE || t.mode & 3 == ORDWR || t.mode & OTRUNC != 0 {
                return Err(errno(libc::EISDIR));
            }
            // create(5): a directory's permissions are limited by its parent's.
            let mode = t.perm & (!0o777 | dir_perm) & 0o777;
            self.mkdir(
                s,
                &protocol::Tmkdir {
                    dfid: t.fid,
                    name,
                    mode,
                    gid,
                },
            )?;
            self.replace_with_entry(s, &dir, t.fid, name.as_bytes())?;
            return self.open(
                s,
                &protocol::Topen {
                    fid: t.fid,
                    mode: t.mode,
                },
            );
        }
        if unix && t.perm & special != 0 {
            let ext = t.extension.map_or(&b""[..], |e| e.as_bytes());
            let perm = unix_permissions(t.perm);
            if t.perm & DMSYMLINK != 0 {
                let symtgt = Str(ext);
                self.symlink(
                    s,
                    &protocol::Tsymlink {
                        fid: t.fid,
                        name,
                        symtgt,
                        gid,
                    },
                )?;
            } else if t.perm & DMLINK != 0 {
                let target = number(ext.trim_ascii()).ok_or(errno(libc::EINVAL))?;
                self.link(
                    s,
                    &protocol::Tlink {
                        dfid: t.fid,
                        fid: target,
                        name,
                    },
                )?;
            } else {
                let (file_type, major, minor) = if t.perm & DMDEVICE != 0 {
                    device(ext).ok_or(errno(libc::EINVAL))?
                } else if t.perm & DMNAMEDPIPE != 0 {
                    (libc::S_IFIFO, 0, 0)
                } else {
                    (libc::S_IFSOCK, 0, 0)
                };
                let mode = file_type | perm;
                let dfid = t.fid;
                self.mknod(
                    s,
                    &protocol::Tmknod {
                        dfid,
                        name,
                        mode,
                        major,
                        minor,
                        gid,
                    },
                )?;
            }
            return Ok((self.replace_with_entry(s, &dir, t.fid, name.as_bytes())?, 0));
        }
        // create(5): a file's permissions are limited by its parent's.
        let mode = unix_permissions(t.perm) & (!0o666 | dir_perm);
        let flags = lopen_flags_of_mode(t.mode) | P9_EXCL;
        let created = self.lcreate(
            s,
            &protocol::Tlcreate {
                fid: t.fid,
                name,
                flags,
                mode,
                gid,
            },
        )?;
        if t.mode & ORCLOSE != 0 {
            set_remove_on_clunk(self.any_fid(s, t.fid)?.open_file());
        }
        Ok(created)
    }

    /// Points fid `number` at the entry `name` of `dir` (after Tcreate).
    fn replace_with_entry(
        &self,
        s: &Session,
        dir: &FidRef,
        number: u32,
        name: &[u8],
    ) -> OpResult<Qid> {
        let c = share::entry_name(name)?;
        let fd = self.share.lookup(dir.fd(), &c)?;
        let step = self.step_to(fd, child_path(&dir.path(), name), dir.nofollow, false)?;
        let mut fid = Fid::new(step.fd, step.path, step.file_type, dir.user.clone());
        fid.nofollow = dir.nofollow;
        fid.node = step.node;
        fid.refind = refind_after_step(step.node, s.dialect(), step.nofollow);
        if fid.refind == Refind::Never {
            // As a walk's: its descriptor stays open while it lives.
            fid.pinned = Some(s.fids.open_slot(self.max_open_files)?);
        }
        s.fids.replace(number, Arc::new(fid), &self.fid_limit)?;
        Ok(step.qid)
    }

    /// The stat record of what a fid stands for.
    pub(super) fn fid_record(&self, dialect: Dialect, fid: &FidRef) -> OpResult<StatRecord> {
        let path = fid.path();
        let name = path.file_name().map_or(&b"/"[..], |n| n.as_bytes());
        match fid.node {
            Node::File | Node::Dangling => self.host_record(dialect, fid.fd(), fid.node, name),
            Node::CtlDir => {
                let mut record = self.host_record(dialect, fid.fd(), Node::File, b",ctl")?;
                record.mode = DMDIR | 0o555;
                record.length = 0;
                record.extension.clear();
                record.qid = self.fid_qid(dialect, fid)?;
                Ok(record)
            }
            Node::CtlFile { own_dir } => {
                let name = if own_dir { &b","[..] } else { name };
                let mut record = self.host_record(dialect, fid.fd(), Node::File, name)?;
                record.mode = 0o644;
                record.length = self.content(fid)?.len() as u64;
                record.extension.clear();
                record.qid = self.fid_qid(dialect, fid)?;
                Ok(record)
            }
        }
    }

    /// The stat record of a host file (or of a dangling link, shown as an
    /// empty file with mode 0).
    fn host_record(
        &self,
        dialect: Dialect,
        fd: BorrowedFd<'_>,
        node: Node,
        name: &[u8],
    ) -> OpResult<StatRecord> {
        self.record_of(dialect, fd, &self.share.stat(fd)?, node, name)
    }

    /// `host_record` from the statx `stx` of `fd`, already taken.
    fn record_of(
        &self,
        dialect: Dialect,
        fd: BorrowedFd<'_>,
        stx: &libc::statx,
        node: Node,
        name: &[u8],
    ) -> OpResult<StatRecord> {
        let file_type = stx.stx_mode as u32 & libc::S_IFMT;
        let mut extension = Vec::new();
        let mut length = stx.stx_size;
        let mut mode = plan9_mode(stx.stx_mode as u32, dialect);
        if node == Node::Dangling {
            mode = 0;
            length = 0;
        } else if file_type == libc::S_IFDIR {
            length = 0;
        } else if file_type == libc::S_IFLNK {
            let mut buf = [0u8; libc::PATH_MAX as usize];
            let n = self.share.link_target(fd, &mut buf)?;
            length = n as u64;
            if dialect == Dialect::Unix {
                extension = buf[..n].to_vec();
            } else {
                // Read as a file whose content is the target.
                mode = DMAPPEND | 0o444;
            }
        } else if dialect == Dialect::Unix && matches!(file_type, libc::S_IFCHR | libc::S_IFBLK) {
            let kind = if file_type == libc::S_IFCHR { 'c' } else { 'b' };
            let (major, minor) = (stx.stx_rdev_major, stx.stx_rdev_minor);
            extension = format!("{kind} {major} {minor}").into_bytes();
        }
        let mut qid = self.share.qids.qid(stx);
        qid.ty = qid_type_of_dm(mode);
        Ok(StatRecord {
            qid,
            mode,
            atime: seconds(&stx.stx_atime),
            mtime: seconds(&stx.stx_mtime),
            length,
            name: name.to_vec(),
            uid: self.share.names.user(stx.stx_uid),
            gid: self.share.names.group(stx.stx_gid),
            extension,
            n_uid: stx.stx_uid,
            n_gid: stx.stx_gid,
        })
    }

    /// A 9P2000 read of a directory: whole stat records, continuing only
    /// from offset 0 or where the previous read ended (read(5)).
    pub(super) fn read_stat_records(
        &self,
        s: &Session,
        fid: &FidRef,
        open: &OpenFile,
        offset: u64,
        count: usize,
        sink: &mut dyn ReadSink,
    ) -> OpResult<u32> {
        let dialect = s.dialect();
        let follow = dialect == Dialect::Plan9 && !fid.nofollow;
        let dir = open.dir.as_ref().ok_or(errno(libc::ENOTDIR))?;
        let mut cursor = dir.locked();
        if offset == 0 {
            cursor.seek(open.fd.as_fd(), 0)?;
        } else if offset != cursor.stat_offset {
            return Err(errno(libc::EINVAL));
        }
        let dir_path = fid.path();
        let mut out = Vec::new();
        while cursor.fill(open.fd.as_fd(), count.saturating_sub(out.len()))? {
            let c = &mut *cursor;
            let Some(entry) = DirEntry::parse(&c.buf[c.start..c.end]) else {
                return Err(errno(libc::EIO));
            };
            let (name, reclen, off) = (entry.name, entry.reclen, entry.off);
            if name != b"." && name != b".." {
                // An entry gone or unreadable since getdents is left out.
                if let Ok(record) =
                    self.entry_record(dialect, open.fd.as_fd(), &dir_path, name, follow)
                {
                    let stat = record.wire(dialect);
                    if out.len() + stat.wire_size() > count {
                        if out.is_empty() {
                            return Err(errno(libc::EINVAL)); // count too small for one record
                        }
                        break;
                    }
                    stat.encode(&mut out);
                }
            }
            c.pos = off;
            c.start += reclen;
        }
        cursor.stat_offset += out.len() as u64;
        Ok(sink.copy_from(&out) as u32)
    }

    fn entry_record(
        &self,
        dialect: Dialect,
        dir: BorrowedFd<'_>,
        dir_path: &std::path::Path,
        name: &[u8],
        follow: bool,
    ) -> OpResult<StatRecord> {
        let c = share::entry_name(name)?;
        let fd = self.share.lookup(dir, &c)?;
        let (step, stx) = self.step_and_stat(fd, child_path(dir_path, name), !follow, follow)?;
        self.record_of(dialect, step.fd.as_fd(), &stx, step.node, name)
    }

    /// Twstat: the changes a Plan 9 client makes (name within the
    /// directory, mode, mtime, length, gid; in 9P2000.u also atime and the
    /// numeric owner), all checked before any is applied. Changing the
    /// owner by name, the type, dev or qid is refused (stat(5)).
    pub(super) fn wstat(&self, s: &Session, t: &protocol::Twstat<'_>) -> OpResult<()> {
        let st = t.stat.0;
        let fid = self.any_fid(s, t.fid)?;
        if matches!(fid.node, Node::CtlFile { .. })
            && st.mode == KEEP32
            && st.name.0.is_empty()
            && st.uid.0.is_empty()
            && st.gid.0.is_empty()
        {
            return Ok(()); // truncation or times of a control file: made-up content
        }
        let fid = self.fid(s, t.fid)?;
        let dialect = s.dialect();
        let untouched_qid = Qid {
            ty: u8::MAX,
            version: KEEP32,
            path: KEEP64,
        };
        // muid is ignored: the Linux client sends its user name there.
        if st.ty != KEEP16 || st.dev != KEEP32 || st.qid != untouched_qid {
            return Err(errno(libc::EPERM));
        }
        let current = self.fid_record(dialect, &fid)?;
        let mut set = protocol::Tsetattr {
            fid: t.fid,
            ..Default::default()
        };
        if st.mode != KEEP32 {
            if (st.mode & DMDIR != 0) != fid.is_dir() {
                return Err(errno(libc::EPERM)); // the directory bit stays
            }
            set.valid |= ATTR_MODE;
            set.mode = unix_permissions(st.mode);
        }
        let ext = st.ext.filter(|_| dialect == Dialect::Unix);
        if let Some(uid) = ext.map(|e| e.n_uid).filter(|&u| u != KEEP32) {
            set.valid |= ATTR_UID;
            set.uid = uid;
        } else if !st.uid.0.is_empty() && st.uid.0 != current.uid.as_bytes() {
            return Err(errno(libc::EPERM)); // the owner stays
        }
        if let Some(gid) = ext.map(|e| e.n_gid).filter(|&g| g != KEEP32) {
            set.valid |= ATTR_GID;
            set.gid = gid;
        } else if !st.gid.0.is_empty() && st.gid.0 != current.gid.as_bytes() {
            set.valid |= ATTR_GID;
            set.gid = self
                .share
                .names
                .gid_of(st.gid.0)
                .ok_or(errno(libc::EINVAL))?;
        }
        if st.length != KEEP64 {
            if fid.is_dir() {
                return Err(errno(libc::EPERM));
            }
            set.valid |= ATTR_SIZE;
            set.size = st.length;
        }
        if st.atime != KEEP32 {
            set.valid |= ATTR_ATIME | ATTR_ATIME_SET;
            set.atime_sec = st.atime as u64;
        }
        if st.mtime != KEEP32 {
            set.valid |= ATTR_MTIME | ATTR_MTIME_SET;
            set.mtime_sec = st.mtime as u64;
        }
        let new_name =
            (!st.name.0.is_empty() && st.name.0 != current.name.as_slice()).then_some(st.name.0);
        if let Some(name) = new_name {
            share::entry_name(name)?; // a name within the directory, checked first
        }
        if set.valid == 0 && new_name.is_none() {
            // All "don't touch": make the file's content stable.
            return self.fsync(
                s,
                &protocol::Tfsync {
                    fid: t.fid,
                    datasync: 0,
                },
            );
        }
        if set.valid != 0 {
            self.setattr(&fid, &set)?;
        }
        if let Some(name) = new_name {
            let (parent, old, old_path) = self.parent_of(&fid)?;
            let new = share::entry_name(name)?;
            self.share
                .rename(parent.as_fd(), &old, parent.as_fd(), &new)?;
            let new_path = child_path(old_path.parent().unwrap_or("".as_ref()), name);
            s.fids.renamed(&old_path, &new_path);
        }
        Ok(())
    }
}

fn set_remove_on_clunk(open: Option<&OpenFile>) {
    if let Some(open) = open {
        open.remove_on_clunk
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_s_linux_modes_are_the_host_s() {
        use crate::protocol::flags as wire;
        for (ours, host) in [
            (wire::S_IFMT, libc::S_IFMT),
            (wire::S_IFSOCK, libc::S_IFSOCK),
            (wire::S_IFLNK, libc::S_IFLNK),
            (wire::S_IFREG, libc::S_IFREG),
            (wire::S_IFBLK, libc::S_IFBLK),
            (wire::S_IFDIR, libc::S_IFDIR),
            (wire::S_IFCHR, libc::S_IFCHR),
            (wire::S_IFIFO, libc::S_IFIFO),
            (wire::S_ISUID, libc::S_ISUID),
            (wire::S_ISGID, libc::S_ISGID),
            (wire::S_ISVTX, libc::S_ISVTX),
        ] {
            assert_eq!(ours, host);
        }
    }

    #[test]
    fn stat_record_wire_forms() {
        let record = StatRecord {
            qid: Qid {
                ty: protocol::QTDIR,
                version: 7,
                path: 42,
            },
            mode: DMDIR | 0o755,
            atime: 1,
            mtime: 2,
            length: 0,
            name: b"dir".to_vec(),
            uid: "glenda".into(),
            gid: "sys".into(),
            extension: Vec::new(),
            n_uid: 1000,
            n_gid: 100,
        };
        let plain = record.wire(Dialect::Plan9);
        assert_eq!(plain.ext, None);
        assert_eq!(plain.muid, Str(b"glenda"));
        // size[2] type[2] dev[4] qid[13] mode[4] atime[4] mtime[4] length[8]
        // + 4 strings: 3 + 6 + 3 + 6 bytes and 4 length fields.
        assert_eq!(plain.wire_size(), 2 + 2 + 4 + 13 + 4 + 4 + 4 + 8 + 18 + 8);
        let unix = record.wire(Dialect::Unix);
        let ext = unix.ext.expect("9P2000.u extension");
        assert_eq!((ext.n_uid, ext.n_gid, ext.n_muid), (1000, 100, 1000));
        assert_eq!(unix.wire_size(), plain.wire_size() + 2 + 12);
    }
}
