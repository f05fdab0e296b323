//! The 9P2000.L operations on host files, one method each, and the fid
//! lookups and walk steps they share (route.rs picks them; plan9.rs, the
//! 9P2000 and 9P2000.u operations, builds on them).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::error::{cstring, errno, Errno};
use super::fid::{Fid, FidRef, Node, OpenFile, Opened, Refind};
use super::share::budget::{held_descriptors, OpenSlot};
use super::share::{privileged_bits, DirEntry, StatxDev};
use super::{child_path, share, Dialect, OpResult, ReadSink, Server, Session, WriteSource};
use super::{MAX_MSIZE, MIN_MSIZE};
use crate::protocol::flags::*;
use crate::protocol::{self, Qid, ReaddirWriter};
use crate::sync::Locked;

/// Host open(2) flags for 9P2000.L open flags. O_DIRECT is dropped: the
/// data moves through guest buffers with no alignment guarantee.
fn host_open_flags(flags: u32) -> i32 {
    let mut out = match flags & P9_ACCMODE {
        P9_WRONLY => libc::O_WRONLY,
        P9_RDWR => libc::O_RDWR,
        _ => libc::O_RDONLY,
    };
    for (p9, host) in [
        (P9_CREATE, libc::O_CREAT),
        (P9_EXCL, libc::O_EXCL),
        (P9_TRUNC, libc::O_TRUNC),
        (P9_APPEND, libc::O_APPEND),
        (P9_NONBLOCK, libc::O_NONBLOCK),
        (P9_DSYNC, libc::O_DSYNC),
        (P9_DIRECTORY, libc::O_DIRECTORY),
        (P9_NOATIME, libc::O_NOATIME),
        (P9_SYNC, libc::O_SYNC),
    ] {
        if flags & p9 == p9 {
            out |= host;
        }
    }
    out | libc::O_CLOEXEC
}

/// Whether 9P2000.L open flags write or truncate.
pub(super) fn writes(flags: u32) -> bool {
    flags & P9_ACCMODE != P9_RDONLY || flags & P9_TRUNC != 0
}

/// How many bytes a Tread may return: what it asks for, within the sink
/// and the msize.
pub(super) fn read_count(s: &Session, t: &protocol::Tread, sink: &dyn ReadSink) -> usize {
    let limit = (s.msize() as usize).saturating_sub(protocol::RREAD_HEADER_SIZE);
    (t.count as usize).min(sink.capacity()).min(limit)
}

pub(super) fn time(sec: u64, nsec: u64, set: bool, given: bool) -> libc::timespec {
    let tv_nsec = match (given, set) {
        (false, _) => libc::UTIME_OMIT,
        (true, false) => libc::UTIME_NOW,
        (true, true) => nsec as i64,
    };
    libc::timespec {
        tv_sec: sec as i64,
        tv_nsec,
    }
}

impl Server {
    /// A fid that stands for a host file: what nearly every operation
    /// needs. Control files and dangling links answer EPERM.
    pub(super) fn fid(&self, s: &Session, fid: u32) -> OpResult<FidRef> {
        let fid = self.any_fid(s, fid)?;
        if !fid.is_host_file() {
            return Err(errno(libc::EPERM));
        }
        Ok(fid)
    }

    /// Any fid, control files included.
    pub(super) fn any_fid(&self, s: &Session, fid: u32) -> OpResult<FidRef> {
        let fid = s.fids.get(fid).ok_or(errno(libc::EBADF))?;
        let pinned = self.pin(&fid)?;
        if pinned.reopened() {
            s.fids.hold(&fid);
        }
        // Every request on a fid passes here: the one place that keeps the
        // fids' descriptors (those earlier requests added, the one just
        // reopened) within their share.
        self.spare_descriptors(s);
        Ok(pinned)
    }

    /// The fid pinned for a request, its O_PATH descriptor opened again
    /// from its path if it was released.
    pub(super) fn pin(&self, fid: &Arc<Fid>) -> OpResult<FidRef> {
        Ok(fid.pin(|path, refind| match refind {
            Refind::NoSymlinks => self.share.reopen(path, false),
            Refind::InRoot => self.share.reopen(path, true),
            // Such a fid's descriptor is never released.
            Refind::Never => Err(io::Error::from_raw_os_error(libc::ESTALE)),
        })?)
    }

    /// Closes the session's idle fids' O_PATH descriptors once the fids of
    /// the process hold more than their share of the open file limit
    /// (`fid_descriptors`), down to seven eighths of it if the session has
    /// enough idle ones. Each session sweeps its own fids, when the process
    /// is over the budget, whatever other sessions do.
    ///
    /// A sweep that leaves the process over the budget (what is left is
    /// open, in use, a lock owner's or another session's) closed every
    /// idle descriptor of the session's: its next sweep waits until the
    /// session has `sweep_slack` new descriptors a sweep may close (fids
    /// made or reopened), not to sweep (and reopen its fids) at every
    /// request. So the fids of the process hold at most the budget, or
    /// what no sweep can close plus `sweep_slack` for each session so put
    /// off; and the descriptors of the requests in flight.
    pub(super) fn spare_descriptors(&self, s: &Session) {
        let due = || held_descriptors() > self.share.fid_descriptors && s.fids.sweep_due();
        if !due() {
            return;
        }
        s.fids.one_sweep_at_a_time(|| {
            if !due() {
                return; // another thread of the session swept meanwhile
            }
            s.fids.release_idle(self.share.fid_descriptors / 8 * 7);
            let over = held_descriptors() > self.share.fid_descriptors;
            s.fids
                .put_off_sweeps(if over { self.sweep_slack() } else { 0 });
        });
    }

    /// How many new descriptors a session whose sweep could not get under
    /// the budget may add before its next sweep: a 64th of the budget (at
    /// least 16). That sweep closed every idle descriptor of the session's,
    /// so the next one costs about what the session added since.
    fn sweep_slack(&self) -> usize {
        (self.share.fid_descriptors / 64).max(16)
    }

    /// The parent directory and last name of a fid's file.
    pub(super) fn parent_of(
        &self,
        fid: &FidRef,
    ) -> OpResult<(OwnedFd, CString, std::path::PathBuf)> {
        let path = fid.path();
        let (dir, name) = self.share.parent(&path)?;
        Ok((dir, name, path))
    }

    pub(super) fn version(&self, s: &Session, t: &protocol::Tversion<'_>) -> (u32, &'static [u8]) {
        s.fids.clear();
        let msize = t.msize.clamp(MIN_MSIZE, MAX_MSIZE);
        s.set_msize(msize);
        let Some((dialect, name)) = Dialect::negotiate(t.version.as_bytes()) else {
            return (msize, b"unknown");
        };
        s.set_dialect(dialect);
        (msize, name)
    }

    pub(super) fn attach(&self, s: &Session, t: &protocol::Tattach<'_>) -> OpResult<Qid> {
        if t.afid != protocol::NOFID {
            return Err(errno(libc::EBADF));
        }
        let fd = self.share.root.try_clone()?;
        let qid = self.share.qid_of(fd.as_fd())?;
        let uid = match t.n_uname.filter(|&u| u != u32::MAX) {
            Some(uid) => uid,
            None if s.dialect() == Dialect::Linux => 0,
            // 9P2000 names the user: a host user of that name, else the
            // share's owner.
            None => self
                .share
                .names
                .uid_of(t.uname.as_bytes())
                .map_or_else(|| self.share.stat(fd.as_fd()).map(|stx| stx.stx_uid), Ok)?,
        };
        let user = s.users.attach(uid, self.share.names);
        let mut fid = Fid::new(fd, Default::default(), libc::S_IFDIR, user);
        // The root, found again from the empty path: an idle root fid (or
        // clone of one) gives up its descriptor like any other, so that
        // clones by the thousand cannot pin every descriptor the process has.
        fid.refind = Refind::NoSymlinks;
        s.fids.insert_new(t.fid, Arc::new(fid), &self.fid_limit)?;
        Ok(qid)
    }

    /// The walk step onto `fd`; a symlink is followed (inside the share)
    /// when `follow`, and shows as a dangling link when that fails.
    pub(super) fn step_to(
        &self,
        fd: OwnedFd,
        path: std::path::PathBuf,
        nofollow: bool,
        follow: bool,
    ) -> OpResult<WalkStep> {
        Ok(self.step_and_stat(fd, path, nofollow, follow)?.0)
    }

    /// `step_to`, and the statx of the step's `fd` it took on the way.
    pub(super) fn step_and_stat(
        &self,
        fd: OwnedFd,
        path: std::path::PathBuf,
        nofollow: bool,
        follow: bool,
    ) -> OpResult<(WalkStep, libc::statx)> {
        let (landing, stx) = self.share.land(fd, &path, follow)?;
        let step = WalkStep {
            qid: landing.qid,
            file_type: landing.file_type,
            fd: landing.fd,
            path,
            node: if landing.dangling {
                Node::Dangling
            } else {
                Node::File
            },
            nofollow,
        };
        Ok((step, stx))
    }

    /// Tgetattr of a host file.
    pub(super) fn getattr(&self, fid: &FidRef) -> OpResult<protocol::Rgetattr> {
        let st = self.share.stat(fid.fd())?;
        let has_btime = st.stx_mask & libc::STATX_BTIME != 0;
        Ok(protocol::Rgetattr {
            valid: GETATTR_BASIC | if has_btime { GETATTR_BTIME } else { 0 },
            qid: self.share.qids.qid(&st),
            mode: st.stx_mode as u32,
            uid: st.stx_uid,
            gid: st.stx_gid,
            nlink: st.stx_nlink as u64,
            rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
            size: st.stx_size,
            blksize: st.stx_blksize as u64,
            blocks: st.stx_blocks,
            atime_sec: st.stx_atime.tv_sec as u64,
            atime_nsec: st.stx_atime.tv_nsec as u64,
            mtime_sec: st.stx_mtime.tv_sec as u64,
            mtime_nsec: st.stx_mtime.tv_nsec as u64,
            ctime_sec: st.stx_ctime.tv_sec as u64,
            ctime_nsec: st.stx_ctime.tv_nsec as u64,
            btime_sec: if has_btime {
                st.stx_btime.tv_sec as u64
            } else {
                0
            },
            btime_nsec: if has_btime {
                st.stx_btime.tv_nsec as u64
            } else {
                0
            },
            gen: 0,
            data_version: 0,
        })
    }

    /// Tsetattr of a host file.
    pub(super) fn setattr(&self, fid: &FidRef, t: &protocol::Tsetattr) -> OpResult<()> {
        if t.valid & ATTR_MODE != 0 {
            self.set_mode(fid, t.mode)?;
        }
        if t.valid & (ATTR_UID | ATTR_GID) != 0 {
            let uid = (t.valid & ATTR_UID != 0).then_some(t.uid);
            let gid = (t.valid & ATTR_GID != 0).then_some(t.gid);
            self.chown(fid, uid, gid)?;
        }
        if t.valid & ATTR_SIZE != 0 {
            self.truncate(fid, t.size)?;
        }
        if t.valid & (ATTR_ATIME | ATTR_MTIME) != 0 {
            let times = [
                time(
                    t.atime_sec,
                    t.atime_nsec,
                    t.valid & ATTR_ATIME_SET != 0,
                    t.valid & ATTR_ATIME != 0,
                ),
                time(
                    t.mtime_sec,
                    t.mtime_nsec,
                    t.valid & ATTR_MTIME_SET != 0,
                    t.valid & ATTR_MTIME != 0,
                ),
            ];
            self.set_times(fid, &times)?;
        }
        Ok(())
    }

    /// Truncates a fid's file: through its open descriptor if the fid is
    /// open for writing, else by opening it (only a regular file:
    /// truncate(2)'s EISDIR for a directory, EINVAL for anything else).
    pub(super) fn truncate(&self, fid: &FidRef, size: u64) -> OpResult<()> {
        let open_for_write = fid
            .open_file()
            .filter(|open| open.flags & P9_ACCMODE != P9_RDONLY)
            .map(|open| open.fd.as_fd());
        self.share.truncate(open_for_write, fid.fd(), size)
    }

    /// Sets a fid's access and modification times (a symlink's own, not
    /// its target's).
    pub(super) fn set_times(&self, fid: &FidRef, times: &[libc::timespec; 2]) -> OpResult<()> {
        let symlink_at = self.is_host_symlink(fid)?.then(|| fid.path());
        self.share.set_times(fid.fd(), symlink_at.as_deref(), times)
    }

    /// Whether the fid's file is a symlink on the host (in mapped-xattr,
    /// the guest's symlinks are regular files there).
    pub(super) fn is_host_symlink(&self, fid: &FidRef) -> OpResult<bool> {
        // A control file's fid is a regular file whatever it controls.
        if fid.is_host_file() && !fid.is_symlink() {
            return Ok(false);
        }
        self.share.is_host_symlink_fd(fid.fd())
    }

    pub(super) fn set_mode(&self, fid: &FidRef, mode: u32) -> OpResult<()> {
        self.share.set_mode(fid.fd(), mode)
    }

    pub(super) fn chown(&self, fid: &FidRef, uid: Option<u32>, gid: Option<u32>) -> OpResult<()> {
        self.share
            .chown(fid.fd(), uid, gid, || self.is_host_symlink(fid))
    }

    /// Tlopen of a host file, with 9P2000.L open `flags`.
    pub(super) fn lopen(&self, s: &Session, fid: &FidRef, flags: u32) -> OpResult<(Qid, u32)> {
        match fid.file_type {
            libc::S_IFREG | libc::S_IFDIR => {}
            libc::S_IFLNK => return Err(errno(libc::ELOOP)),
            // Device nodes, fifos and sockets are never opened on the host:
            // the guest kernel handles them itself.
            _ => return Err(errno(libc::EPERM)),
        }
        let slot = s.fids.open_slot(self.max_open_files)?;
        let (open, stx) = self.open_host_file(fid.fd(), fid.is_dir(), fid.user.uid, flags, slot)?;
        fid.set_opened(Opened::File(open))?;
        if fid.refind == Refind::Never {
            // Its O_PATH descriptor may be closed now: the open one
            // stands in.
            s.fids.hold(fid.shared());
        }
        Ok((self.share.qids.qid(&stx), 0))
    }

    /// Opens a regular file or directory (from its O_PATH descriptor) with
    /// 9P2000.L open flags, for a fid of user `uid`.
    fn open_host_file(
        &self,
        file: BorrowedFd<'_>,
        is_dir: bool,
        uid: u32,
        p9_flags: u32,
        slot: OpenSlot,
    ) -> OpResult<(OpenFile, libc::statx)> {
        let flags = host_open_flags(p9_flags) & !(libc::O_CREAT | libc::O_EXCL);
        let (fd, stx) = self.share.open_existing(file, flags, libc::EPERM)?;
        let open = OpenFile::new(fd, p9_flags, is_dir, stx.stx_dev(), slot);
        if uid != 0 && privileged_bits(stx.stx_mode as u32) != 0 {
            open.kill_priv
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok((open, stx))
    }

    pub(super) fn lcreate(&self, s: &Session, t: &protocol::Tlcreate<'_>) -> OpResult<(Qid, u32)> {
        let dir = self.fid(s, t.fid)?;
        let name = share::entry_name(t.name.as_bytes())?;
        // O_EXCL whatever the client asked: only a file made here gets the
        // creator's attributes (or is removed if that fails), and an entry
        // that exists is opened only if it is a regular file.
        let slot = s.fids.open_slot(self.max_open_files)?;
        let created = self.share.create_file(
            dir.fd(),
            &name,
            host_open_flags(t.flags),
            t.mode,
            dir.user.uid,
            t.gid,
        );
        let (fd, file, stx) = match created {
            Ok(created) => created,
            Err(Errno(libc::EEXIST)) if t.flags & P9_EXCL == 0 => {
                return self.create_over_existing(s, &dir, &name, t, slot);
            }
            Err(e) => return Err(e),
        };
        let new = Fid::new(
            file,
            child_path(&dir.path(), t.name.as_bytes()),
            libc::S_IFREG,
            dir.user.clone(),
        );
        let open = OpenFile::new(fd, t.flags, false, stx.stx_dev(), slot);
        let _ = new.opened.set(Opened::File(open));
        s.fids.replace(t.fid, Arc::new(new), &self.fid_limit)?;
        Ok((self.share.qids.qid(&stx), 0))
    }

    /// Tlcreate (without O_EXCL) of a name that exists: opened as Tlopen
    /// would open it, if it is a regular file. A fifo, socket or device
    /// node is never opened on the host (the open of a fifo would wait for
    /// a writer; a device node is the host's device).
    fn create_over_existing(
        &self,
        s: &Session,
        dir: &FidRef,
        name: &CString,
        t: &protocol::Tlcreate<'_>,
        slot: OpenSlot,
    ) -> OpResult<(Qid, u32)> {
        let file = self.share.lookup(dir.fd(), name)?;
        match self.share.stat(file.as_fd())?.stx_mode as u32 & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(errno(libc::EISDIR)),
            libc::S_IFLNK => return Err(errno(libc::ELOOP)),
            _ => return Err(errno(libc::EPERM)),
        }
        let (open, stx) = self.open_host_file(file.as_fd(), false, dir.user.uid, t.flags, slot)?;
        let path = child_path(&dir.path(), t.name.as_bytes());
        let new = Fid::new(file, path, libc::S_IFREG, dir.user.clone());
        let _ = new.opened.set(Opened::File(open));
        s.fids.replace(t.fid, Arc::new(new), &self.fid_limit)?;
        Ok((self.share.qids.qid(&stx), 0))
    }

    /// Twrite to a host file open as `open`.
    pub(super) fn write(
        &self,
        fid: &FidRef,
        open: &OpenFile,
        t: &protocol::Twrite,
        source: &mut dyn WriteSource,
    ) -> OpResult<u32> {
        let written = source.write_to(open.fd.as_fd(), t.offset, t.count as usize)?;
        let window = self.share.write_behind.window();
        if let Some(from) = open.write_stream.advance(t.offset, written as u64, window) {
            self.share.write_behind.start(open.fd.as_fd(), from);
        }
        if open
            .kill_priv
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.share.clear_privileged_bits(fid.fd())?;
        }
        Ok(written as u32)
    }

    /// Treaddir of an open directory: its entries after cookie `offset`,
    /// as many as fit.
    pub(super) fn readdir(
        &self,
        open: &OpenFile,
        offset: u64,
        entries: &mut ReaddirWriter<'_>,
    ) -> OpResult<()> {
        let dir = open.dir.as_ref().ok_or(errno(libc::ENOTDIR))?;
        let mut cursor = dir.locked();
        if offset != cursor.pos {
            cursor.seek(open.fd.as_fd(), offset)?;
        }
        loop {
            if !cursor.fill(open.fd.as_fd(), entries.room())? {
                break;
            }
            let c = &mut *cursor;
            let Some(entry) = DirEntry::parse(&c.buf[c.start..c.end]) else {
                return Err(errno(libc::EIO));
            };
            if !entries.fits(entry.name.len()) {
                if entries.is_empty() {
                    return Err(errno(libc::EINVAL)); // count too small for one entry
                }
                break;
            }
            let d_type = self
                .share
                .guest_d_type(open.fd.as_fd(), entry.name, entry.d_type);
            let qid = Qid {
                ty: match d_type {
                    libc::DT_DIR => protocol::QTDIR,
                    libc::DT_LNK => protocol::QTSYMLINK,
                    _ => protocol::QTFILE,
                },
                version: 0,
                path: self.share.qids.path(open.dev, entry.ino),
            };
            entries.push(qid, entry.off, d_type, entry.name);
            c.pos = entry.off;
            c.start += entry.reclen;
        }
        Ok(())
    }

    pub(super) fn mkdir(&self, s: &Session, t: &protocol::Tmkdir<'_>) -> OpResult<Qid> {
        let dir = self.fid(s, t.dfid)?;
        let name = share::entry_name(t.name.as_bytes())?;
        self.share
            .mkdir(dir.fd(), &name, t.mode, dir.user.uid, t.gid)
    }

    pub(super) fn symlink(&self, s: &Session, t: &protocol::Tsymlink<'_>) -> OpResult<Qid> {
        let dir = self.fid(s, t.fid)?;
        let name = share::entry_name(t.name.as_bytes())?;
        let target = cstring(t.symtgt.as_bytes())?;
        self.share
            .make_symlink(dir.fd(), &name, &target, dir.user.uid, t.gid)
    }

    pub(super) fn mknod(&self, s: &Session, t: &protocol::Tmknod<'_>) -> OpResult<Qid> {
        let dir = self.fid(s, t.dfid)?;
        let name = share::entry_name(t.name.as_bytes())?;
        let dev = libc::makedev(t.major, t.minor);
        let mode = t.mode & (libc::S_IFMT | 0o7777);
        self.share
            .make_node(dir.fd(), &name, mode, dev, dir.user.uid, t.gid)
    }

    pub(super) fn readlink(
        &self,
        s: &Session,
        t: &protocol::Treadlink,
        buf: &mut [u8],
    ) -> OpResult<usize> {
        let fid = self.fid(s, t.fid)?;
        if !fid.is_symlink() {
            return Err(errno(libc::EINVAL));
        }
        self.share.link_target(fid.fd(), buf)
    }

    pub(super) fn link(&self, s: &Session, t: &protocol::Tlink<'_>) -> OpResult<()> {
        let dir = self.fid(s, t.dfid)?;
        let fid = self.fid(s, t.fid)?;
        let name = share::entry_name(t.name.as_bytes())?;
        self.share.link(fid.fd(), dir.fd(), &name)
    }

    pub(super) fn renameat(&self, s: &Session, t: &protocol::Trenameat<'_>) -> OpResult<()> {
        let olddir = self.fid(s, t.olddirfid)?;
        let newdir = self.fid(s, t.newdirfid)?;
        let oldname = share::entry_name(t.oldname.as_bytes())?;
        let newname = share::entry_name(t.newname.as_bytes())?;
        self.share
            .rename(olddir.fd(), &oldname, newdir.fd(), &newname)?;
        s.fids.renamed(
            &child_path(&olddir.path(), t.oldname.as_bytes()),
            &child_path(&newdir.path(), t.newname.as_bytes()),
        );
        Ok(())
    }

    pub(super) fn rename(&self, s: &Session, t: &protocol::Trename<'_>) -> OpResult<()> {
        let fid = self.fid(s, t.fid)?;
        let newdir = self.fid(s, t.dfid)?;
        let newname = share::entry_name(t.name.as_bytes())?;
        let (parent, oldname, oldpath) = self.parent_of(&fid)?;
        self.share
            .rename(parent.as_fd(), &oldname, newdir.fd(), &newname)?;
        s.fids
            .renamed(&oldpath, &child_path(&newdir.path(), t.name.as_bytes()));
        Ok(())
    }

    pub(super) fn unlinkat(&self, s: &Session, t: &protocol::Tunlinkat<'_>) -> OpResult<()> {
        let dir = self.fid(s, t.dirfid)?;
        let name = share::entry_name(t.name.as_bytes())?;
        self.share
            .unlink(dir.fd(), &name, t.flags & AT_REMOVEDIR_9P != 0)
    }

    pub(super) fn remove(&self, s: &Session, t: &protocol::Tremove) -> OpResult<()> {
        // The fid is clunked whether or not the remove succeeds.
        let fid = s.fids.remove(t.fid).ok_or(errno(libc::EBADF))?;
        if !matches!(fid.node, Node::File | Node::Dangling) {
            return Err(errno(libc::EPERM));
        }
        self.unlink_fid_file(&self.pin(&fid)?)
    }

    /// Removes the directory entry a fid was walked to (for 9P2000, the
    /// link itself when the walk followed one).
    pub(super) fn unlink_fid_file(&self, fid: &FidRef) -> OpResult<()> {
        self.share.unlink_path(&fid.path(), fid.is_dir())
    }

    pub(super) fn statfs(&self, s: &Session, t: &protocol::Tstatfs) -> OpResult<protocol::Rstatfs> {
        let fid = self.any_fid(s, t.fid)?;
        let st = self.share.statfs(fid.fd())?;
        // SAFETY: fsid_t is two ints; reading them as such is sound.
        let fsid: [i32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
        Ok(protocol::Rstatfs {
            fs_type: st.f_type as u32,
            bsize: st.f_bsize as u32,
            blocks: st.f_blocks,
            bfree: st.f_bfree,
            bavail: st.f_bavail,
            files: st.f_files,
            ffree: st.f_ffree,
            fsid: (fsid[0] as u32 as u64) | ((fsid[1] as u32 as u64) << 32),
            namelen: st.f_namelen as u32,
        })
    }

    pub(super) fn fsync(&self, s: &Session, t: &protocol::Tfsync) -> OpResult<()> {
        let fid = self.fid(s, t.fid)?;
        let datasync = t.datasync != 0;
        let open = fid.open_file().map(|open| open.fd.as_fd());
        self.share.fsync(open, fid.fd(), datasync)
    }
}

/// How a fid a walk step reached finds its file again once its descriptor
/// was released.
pub(super) fn refind_after_step(node: Node, dialect: Dialect, nofollow: bool) -> Refind {
    match (node, dialect) {
        (Node::File, Dialect::Linux | Dialect::Unix) => Refind::NoSymlinks,
        // Walked through `,nofollow`: the path may end in a symlink that
        // following would leave.
        (Node::File, Dialect::Plan9) if nofollow => Refind::Never,
        (Node::File, Dialect::Plan9) => Refind::InRoot,
        _ => Refind::Never,
    }
}

/// Where a walk is: the fid it starts from, or the last step taken.
pub(super) struct WalkFrom<'a> {
    pub fd: BorrowedFd<'a>,
    pub path: std::path::PathBuf,
    pub file_type: u32,
    pub node: Node,
    pub nofollow: bool,
}

/// The result of walking one name.
pub(super) struct WalkStep {
    pub fd: OwnedFd,
    pub path: std::path::PathBuf,
    pub file_type: u32,
    pub node: Node,
    pub nofollow: bool,
    pub qid: Qid,
}

impl WalkStep {
    pub(super) fn position(&self) -> WalkFrom<'_> {
        WalkFrom {
            fd: self.fd.as_fd(),
            path: self.path.clone(),
            file_type: self.file_type,
            node: self.node,
            nofollow: self.nofollow,
        }
    }
}
