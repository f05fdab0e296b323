//! Where each request goes: the one table from (message, what its fid
//! stands for, what the fid has open, dialect) to the operation that
//! serves it. A request's fid is looked up here, once, for the messages
//! whose operation depends on it; the operations answer typed values,
//! made into a `Reply` here and encoded by reply.rs.
//!
//! Beneath: ops.rs (9P2000.L on host files), walk.rs, plan9.rs (9P2000 and
//! 9P2000.u), ctl.rs (the control namespace), xattr.rs, lock.rs.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use super::error::errno;
use super::fid::{FidRef, Node, Opened};
use super::ops::read_count;
use super::plan9::StatRecord;
use super::reply::{Failure, Reply};
use super::{xattr, Dialect, Errno, OpResult, ReadSink, Server, Session, Tagged, WriteSource};
use crate::protocol;
use crate::protocol::flags::*;

/// What a reply borrows, kept beyond the operation that made it: a
/// link's target, a 9P2000 stat record.
#[derive(Default)]
pub(super) struct Scratch {
    link: Vec<u8>,
    record: Option<StatRecord>,
    /// A gateway's reply from upstream.
    upstream: Vec<u8>,
}

/// The fid itself, if it stands for a host file (not a control file or
/// directory, not a dangling link); else EPERM.
pub(super) fn host_file(fid: FidRef) -> OpResult<FidRef> {
    match fid.node {
        Node::File => Ok(fid),
        _ => Err(errno(libc::EPERM)),
    }
}

impl Server {
    /// Serves an admitted request. Rread data goes to `sink`, Rreaddir
    /// entries into `out`; whatever else the reply borrows, into `scratch`.
    pub(super) fn route<'a>(
        &'a self,
        s: &Session,
        request: Tagged<'a>,
        source: &mut dyn WriteSource,
        sink: &mut dyn ReadSink,
        out: &mut Vec<u8>,
        scratch: &'a mut Scratch,
    ) -> Result<Reply<'a>, Failure> {
        use protocol::*;
        if let Some(gateway) = &self.gateway {
            use crate::gateway::Answer;
            if let Tmessage::Version(t) = &request.message {
                let (msize, version) = self.version(s, t);
                let version = Str(gateway.version_of(s, version));
                let version = Rversion { msize, version };
                return Ok(Reply::Message(Rmessage::Version(version)));
            }
            return match gateway.serve(s, request, source, sink, out, &mut scratch.upstream) {
                Ok(Answer::Message(message)) => Ok(Reply::Message(message)),
                Ok(Answer::Read(count)) => Ok(Reply::Read(count)),
                Ok(Answer::Readdir(count)) => Ok(Reply::Readdir(count)),
                Err(e) => Err(Failure {
                    errno: e.errno,
                    text: e.text,
                }),
            };
        }
        let message = match request.message {
            Tmessage::Read(t) => return Ok(Reply::Read(self.route_read(s, &t, sink)?)),
            Tmessage::Readdir(t) => {
                let fid = self.any_fid(s, t.fid)?;
                if let (Node::CtlDir, Some(Opened::Content { .. })) = (fid.node, fid.opened.get()) {
                    // A control directory lists nothing.
                    return Ok(Reply::Readdir(ReaddirWriter::start(out, 0).finish()));
                }
                let fid = host_file(fid)?;
                let open = fid.open_file().ok_or(errno(libc::EBADF))?;
                let limit = (t.count as usize)
                    .min(sink.capacity())
                    .min((s.msize() as usize).saturating_sub(RREAD_HEADER_SIZE));
                let mut entries = ReaddirWriter::start(out, limit);
                self.readdir(open, t.offset, &mut entries)?;
                return Ok(Reply::Readdir(entries.finish()));
            }
            Tmessage::Write(t) => {
                let fid = self.any_fid(s, t.fid)?;
                if let Node::CtlFile { own_dir } = fid.node {
                    let count = self.ctl_write(s, &fid, own_dir, &t, source)?;
                    return Ok(Reply::Message(Rmessage::Write(Rwrite { count })));
                }
                let fid = host_file(fid)?;
                if t.count as usize > source.len() {
                    return Err(Errno(libc::EINVAL).into());
                }
                let count = match fid.opened.get() {
                    Some(Opened::File(open)) => self.write(&fid, open, &t, source)?,
                    Some(Opened::Xattr(state)) => xattr::write_value(state, &t, source)?,
                    _ => return Err(Errno(libc::EBADF).into()),
                };
                Rmessage::Write(Rwrite { count })
            }
            Tmessage::Getattr(t) => {
                let fid = self.any_fid(s, t.fid)?;
                Rmessage::Getattr(match fid.node {
                    Node::File => self.getattr(&fid)?,
                    _ => self.control_getattr(&fid)?,
                })
            }
            Tmessage::Walk(t) => {
                let fid = self.any_fid(s, t.fid)?;
                Rmessage::Walk(Rwalk {
                    qids: self.walk(s, &fid, &t)?,
                })
            }
            Tmessage::Lopen(t) => {
                let fid = self.any_fid(s, t.fid)?;
                if fid.opened.get().is_some() {
                    return Err(Errno(libc::EBADF).into());
                }
                let (qid, iounit) = match fid.node {
                    Node::File => self.lopen(s, &fid, t.flags)?,
                    _ => self.open_content(&fid, t.flags)?,
                };
                Rmessage::Lopen(Rlopen { qid, iounit })
            }
            Tmessage::Setattr(t) => {
                let fid = self.any_fid(s, t.fid)?;
                let size_and_times = ATTR_SIZE | ATTR_ATIME | ATTR_MTIME | ATTR_CTIME;
                let size_and_times = size_and_times | ATTR_ATIME_SET | ATTR_MTIME_SET;
                let made_up = matches!(fid.node, Node::CtlFile { .. });
                if !(made_up && t.valid & !size_and_times == 0) {
                    // (O_TRUNC of a control file changes nothing: its
                    // content is made up.)
                    self.setattr(&host_file(fid)?, &t)?;
                }
                Rmessage::Setattr(Rsetattr {})
            }
            Tmessage::Clunk(t) => {
                let fid = s.fids.remove(t.fid).ok_or(errno(libc::EBADF))?;
                match fid.opened.get() {
                    Some(Opened::File(open)) if open.remove_on_clunk.load(Ordering::Relaxed) => {
                        // 9P2000 ORCLOSE: whether or not that works, the
                        // fid is gone.
                        let _ = self.unlink_fid_file(&self.pin(&fid)?);
                    }
                    Some(Opened::Xattr(state)) => self.xattr_clunk(&fid, state)?,
                    _ => {}
                }
                Rmessage::Clunk(Rclunk {})
            }
            Tmessage::Stat(t) => {
                let fid = self.any_fid(s, t.fid)?;
                let dialect = s.dialect();
                let record = scratch.record.insert(self.fid_record(dialect, &fid)?);
                Rmessage::Stat(Rstat {
                    stat: StatBlob(record.wire(dialect)),
                })
            }
            Tmessage::Readlink(t) => {
                let mut buf = [0u8; libc::PATH_MAX as usize];
                let n = self.readlink(s, &t, &mut buf)?;
                scratch.link = buf[..n].to_vec();
                Rmessage::Readlink(Rreadlink {
                    target: Str(&scratch.link),
                })
            }
            Tmessage::Version(t) => {
                let (msize, version) = self.version(s, &t);
                Rmessage::Version(Rversion {
                    msize,
                    version: Str(version),
                })
            }
            // No authentication: ENOENT is how 9P2000.L servers (diod) say
            // "not required", and what its clients expect.
            Tmessage::Auth(_) => return Err(Errno(libc::ENOENT).into()),
            Tmessage::Attach(t) => Rmessage::Attach(Rattach {
                qid: self.attach(s, &t)?,
            }),
            Tmessage::Flush(_) => Rmessage::Flush(Rflush {}),
            Tmessage::Lcreate(t) => {
                let (qid, iounit) = self.lcreate(s, &t)?;
                Rmessage::Lcreate(Rlcreate { qid, iounit })
            }
            Tmessage::Mkdir(t) => Rmessage::Mkdir(Rmkdir {
                qid: self.mkdir(s, &t)?,
            }),
            Tmessage::Symlink(t) => Rmessage::Symlink(Rsymlink {
                qid: self.symlink(s, &t)?,
            }),
            Tmessage::Mknod(t) => Rmessage::Mknod(Rmknod {
                qid: self.mknod(s, &t)?,
            }),
            Tmessage::Link(t) => {
                self.link(s, &t)?;
                Rmessage::Link(Rlink {})
            }
            Tmessage::Rename(t) => {
                self.rename(s, &t)?;
                Rmessage::Rename(Rrename {})
            }
            Tmessage::Renameat(t) => {
                self.renameat(s, &t)?;
                Rmessage::Renameat(Rrenameat {})
            }
            Tmessage::Unlinkat(t) => {
                self.unlinkat(s, &t)?;
                Rmessage::Unlinkat(Runlinkat {})
            }
            Tmessage::Remove(t) => {
                self.remove(s, &t)?;
                Rmessage::Remove(Rremove {})
            }
            Tmessage::Statfs(t) => Rmessage::Statfs(self.statfs(s, &t)?),
            Tmessage::Fsync(t) => {
                self.fsync(s, &t)?;
                Rmessage::Fsync(Rfsync {})
            }
            Tmessage::Lock(t) => Rmessage::Lock(Rlock {
                status: self.lock(s, &t)?,
            }),
            Tmessage::Getlock(t) => Rmessage::Getlock(self.getlock(s, &t)?),
            Tmessage::Xattrwalk(t) => Rmessage::Xattrwalk(Rxattrwalk {
                size: self.xattrwalk(s, &t)?,
            }),
            Tmessage::Xattrcreate(t) => {
                self.xattrcreate(s, &t)?;
                Rmessage::Xattrcreate(Rxattrcreate {})
            }
            Tmessage::Open(t) => {
                let (qid, iounit) = self.open(s, &t)?;
                Rmessage::Open(Ropen { qid, iounit })
            }
            Tmessage::Create(t) => {
                let (qid, iounit) = self.create(s, &t)?;
                Rmessage::Create(Rcreate { qid, iounit })
            }
            Tmessage::Wstat(t) => {
                self.wstat(s, &t)?;
                Rmessage::Wstat(Rwstat {})
            }
        };
        Ok(Reply::Message(message))
    }

    /// Tread: of made-up content, an xattr's value, a file's data, or in
    /// 9P2000 and 9P2000.u, an open directory's stat records.
    fn route_read(
        &self,
        s: &Session,
        t: &protocol::Tread,
        sink: &mut dyn ReadSink,
    ) -> OpResult<u32> {
        let fid = self.any_fid(s, t.fid)?;
        let count = read_count(s, t, sink);
        match (fid.opened.get(), s.dialect()) {
            (Some(Opened::Content { snapshot, .. }), _) => {
                self.read_content(&fid, snapshot, t.offset, count, sink)
            }
            (Some(Opened::Xattr(state)), _) => xattr::read_value(state, t.offset, count, sink),
            (Some(Opened::File(open)), Dialect::Unix | Dialect::Plan9) if open.dir.is_some() => {
                self.read_stat_records(s, &fid, open, t.offset, count, sink)
            }
            (Some(Opened::File(open)), _) => {
                Ok(sink.read_from(open.fd.as_fd(), t.offset, count)? as u32)
            }
            (None, _) => Err(errno(libc::EBADF)),
        }
    }
}
