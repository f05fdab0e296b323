//! 9P semantics over a host directory, independent of the transport: the
//! 9P2000.L, 9P2000.u and 9P2000 dialects, chosen per session by Tversion,
//! over one set of operations.
//!
//! A transport decodes a request, hands it to [`Server::handle`] with the
//! connection's [`Session`], a source for Twrite data and a sink for Rread
//! data, and gets back the encoded reply.

mod ctl;
pub mod ctl_syntax;
mod data;
mod error;
mod fid;
mod fid_table;
mod gate;
pub mod host;
mod lock;
mod ops;
mod plan9;
pub mod security;
mod share;
pub mod user;
mod writeback;
mod xattr;

pub use crate::protocol::Dialect;
pub use data::{NoData, ReadSink, SliceSource, VecSink, WriteSource};
pub use error::{error_text, Errno, OpResult};
pub use fid::Fid;
pub use fid_table::FidTable;
pub use security::{IdMap, IdRange, SecurityModel};
pub use share::QidMapper;
use share::Share;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};

use crate::protocol::{self, trace, Rerror, Rlerror, Rmessage, Str, Tmessage};

/// Bytes of Tread/Twrite data handed to a trace line: the 64 it shows, and
/// one more to tell it there is more.
const TRACE_DATA: usize = 65;

/// Largest msize the server agrees to.
pub const MAX_MSIZE: u32 = 4 * 1024 * 1024;
/// Smallest msize the server agrees to.
pub const MIN_MSIZE: u32 = 4096;

/// What the server shares and how.
#[derive(Debug, Clone)]
pub struct Config {
    pub shared_dir: PathBuf,
    pub readonly: bool,
    pub security_model: SecurityModel,
    pub uid_map: IdMap,
    pub gid_map: IdMap,
    /// Serve the `,ctl` / `,nofollow` control namespace (ctl.rs).
    pub ctl: bool,
    /// Print every message both ways to stderr, lib9p style.
    pub trace: bool,
    /// Write-behind window in bytes (0: off): once a fid has written a file
    /// back to back for two windows, each window is written back to disk
    /// while the writer fills the next (`WriteStream`).
    pub write_behind: u64,
    /// Descriptors the fids may hold before idle ones are closed (see
    /// fid.rs) [None: from the open file limit, less a reserve for
    /// everything else].
    pub fid_descriptors: Option<usize>,
    /// Fids one session may hold: a new fid beyond them is refused with
    /// EMFILE [DEFAULT_MAX_FIDS].
    pub max_fids: usize,
    /// Fids all sessions may hold together: a new fid beyond them is
    /// refused with ENFILE [None: twice `max_fids`, so that no one session
    /// can take them all].
    pub max_fids_total: Option<usize>,
    /// Files one session may hold open (each an open descriptor no sweep
    /// can close), lock owners' descriptors included: an open beyond them
    /// is refused with EMFILE, a lock that needs a descriptor with ENOLCK
    /// [None: half of the fids' descriptor budget, so no one session can
    /// take the descriptors every session needs].
    pub max_open_files: Option<usize>,
    /// Bytes of extended attribute values one session's xattr fids may
    /// hold (Txattrwalk's value, Txattrcreate's announced size, until the
    /// fid is clunked): beyond them, ENOMEM [DEFAULT_MAX_XATTR_BYTES].
    pub max_xattr_bytes: usize,
    /// Lock owners (client id, process, file) one session may have locks
    /// under: a new one beyond them is refused with ENOLCK
    /// [DEFAULT_MAX_LOCK_OWNERS]. Each holding locks has a descriptor of
    /// its own, one of the session's open files (`max_open_files`).
    pub max_lock_owners: usize,
    /// Socket transport: connections served at once; one beyond is accepted
    /// and closed at once [DEFAULT_MAX_CONNECTIONS].
    pub max_connections: usize,
}

/// Fids per session by default: 4 Mi, four times what a Linux cache=loose
/// guest holding a million dentries needs (a fid per dentry, a few more
/// for open files and walks in flight), at ~400 bytes each when idle
/// (their descriptors closed): ~1.6 GiB for a session at the bound.
pub const DEFAULT_MAX_FIDS: usize = 4 << 20;
/// Xattr value bytes per session by default: 16 MiB, 256 values of the
/// largest size Linux stores (64 KiB) in flight at once.
pub const DEFAULT_MAX_XATTR_BYTES: usize = 16 << 20;
/// Lock owners per session by default: each holding locks has an open
/// descriptor, counted among the session's open files, whose bound (half
/// the descriptor budget) is then the tighter one.
pub const DEFAULT_MAX_LOCK_OWNERS: usize = 65536;
/// Socket connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// The default write-behind window.
pub const DEFAULT_WRITE_BEHIND: u64 = 8 << 20;

impl Config {
    /// A config with the defaults: read-write, the default security model
    /// for this process, no id maps.
    pub fn new(shared_dir: impl Into<PathBuf>) -> Config {
        Config {
            shared_dir: shared_dir.into(),
            readonly: false,
            security_model: SecurityModel::default_for_process(),
            uid_map: IdMap::default(),
            gid_map: IdMap::default(),
            ctl: false,
            trace: false,
            write_behind: DEFAULT_WRITE_BEHIND,
            fid_descriptors: None,
            max_fids: DEFAULT_MAX_FIDS,
            max_fids_total: None,
            max_open_files: None,
            max_xattr_bytes: DEFAULT_MAX_XATTR_BYTES,
            max_lock_owners: DEFAULT_MAX_LOCK_OWNERS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// One shared directory.
pub struct Server {
    /// The directory served, beneath the 9P layer.
    share: Share,
    ctl: bool,
    trace: bool,
    /// Per-session bounds (see `Config`).
    fid_limit: fid_table::FidLimit,
    max_xattr_bytes: usize,
    /// Files one session may hold open, lock owners' descriptors included
    /// (Config::max_open_files).
    max_open_files: usize,
    max_lock_owners: usize,
    max_connections: usize,
    /// Socket connections being served, on all listeners (socket.rs).
    pub(crate) connections: std::sync::Arc<AtomicUsize>,
}

/// One client connection: the agreed dialect and msize, and the fid table.
pub struct Session {
    /// Numbers the connection in traces.
    pub id: u32,
    msize: AtomicU32,
    dialect: AtomicU8,
    pub fids: FidTable,
    /// Who its attaches act as.
    pub users: user::Users,
}

impl Default for Session {
    fn default() -> Self {
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);
        Session {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            msize: AtomicU32::new(MAX_MSIZE),
            dialect: AtomicU8::new(Dialect::Linux as u8),
            fids: FidTable::default(),
            users: user::Users::Guest,
        }
    }
}

impl Session {
    /// A VMM's guest's session: it names its users, its kernel checks
    /// their permissions.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session whose attaches act as `users` chooses.
    pub fn with_users(users: user::Users) -> Self {
        Session {
            users,
            ..Self::default()
        }
    }

    pub fn msize(&self) -> u32 {
        self.msize.load(Ordering::Relaxed)
    }

    pub fn dialect(&self) -> Dialect {
        Dialect::from_u8(self.dialect.load(Ordering::Relaxed))
    }

    fn set_dialect(&self, dialect: Dialect) {
        self.dialect.store(dialect as u8, Ordering::Relaxed);
    }

    /// Sets the msize Tversion agreed.
    fn set_msize(&self, msize: u32) {
        self.msize.store(msize, Ordering::Relaxed);
    }

    /// The error reply of this session's dialect: Rlerror in 9P2000.L,
    /// Rerror with the error's text (and in 9P2000.u its number) otherwise.
    /// `text` overrides the errno's standard text.
    pub fn error_reply(&self, tag: u16, errno: i32, text: Option<&str>, reply: &mut Vec<u8>) {
        reply.clear();
        let dialect = self.dialect();
        if dialect == Dialect::Linux {
            let ecode = errno as u32;
            Rmessage::Lerror(Rlerror { ecode }).encode(tag, reply);
            return;
        }
        let standard;
        let text = match text {
            Some(text) => text,
            None => {
                standard = error_text(errno);
                &standard
            }
        };
        // Short enough for any msize (a control file's message may quote
        // what it was sent).
        // (str::floor_char_boundary is newer than the crate's MSRV.)
        let mut end = text.len().min(MAX_ERROR_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &text[..end];
        Rmessage::Error(Rerror {
            ename: Str(text.as_bytes()),
            errno: (dialect == Dialect::Unix).then_some(errno as u32),
        })
        .encode(tag, reply);
    }
}

impl Session {
    /// The error reply to a request that cannot be decoded: EOPNOTSUPP for
    /// a type the server does not know, EINVAL for a malformed one.
    pub fn undecodable_reply(
        &self,
        msg_type: u8,
        tag: u16,
        e: protocol::DecodeError,
        reply: &mut Vec<u8>,
    ) {
        log::debug!("undecodable request type {msg_type} tag {tag}: {e}");
        let errno = match e {
            protocol::DecodeError::UnknownType(_) => libc::EOPNOTSUPP,
            _ => libc::EINVAL,
        };
        self.error_reply(tag, errno, None, reply);
    }
}

/// The longest error text an Rerror carries.
const MAX_ERROR_TEXT: usize = 1024;

impl Server {
    /// Opens the shared directory. Fails with a message fit for the user.
    pub fn new(config: &Config) -> Result<Server, String> {
        let share = Share::open(config)?;
        let fid_descriptors = share.fid_descriptors;
        Ok(Server {
            share,
            ctl: config.ctl,
            trace: config.trace,
            max_open_files: config
                .max_open_files
                .unwrap_or((fid_descriptors / 2).max(16)),
            fid_limit: fid_table::FidLimit::new(
                config.max_fids,
                config
                    .max_fids_total
                    .unwrap_or(config.max_fids.saturating_mul(2)),
            ),
            max_xattr_bytes: config.max_xattr_bytes,
            max_lock_owners: config.max_lock_owners,
            max_connections: config.max_connections,
            connections: Default::default(),
        })
    }

    /// Connections a socket listener serves at once (`Config::max_connections`).
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Waits until the write-behind thread has handed to the disk every
    /// stretch queued so far (tests watch its effect).
    pub fn wait_for_write_behind(&self) {
        self.share.write_behind.wait();
    }

    /// Serves one request and writes the whole framed reply into `reply`
    /// (which is cleared first). For Rread the data went to `sink`, and
    /// `reply` holds only the header (its `size` counts the data). Other
    /// replies are kept within `sink.capacity()` + 11 bytes.
    pub fn handle(
        &self,
        session: &Session,
        tag: u16,
        request: Tmessage<'_>,
        source: &mut dyn WriteSource,
        sink: &mut dyn ReadSink,
        reply: &mut Vec<u8>,
    ) {
        reply.clear();
        if self.trace {
            self.trace_request(session, tag, &request, source);
        }
        let result = match self.admit(session, &request).map(|()| request) {
            Err(refused) => Err(refused),
            Ok(Tmessage::Read(t)) => {
                let read = match session.dialect() {
                    Dialect::Linux => self.read(session, &t, sink),
                    Dialect::Unix | Dialect::Plan9 => self.plan9_read(session, &t, sink),
                };
                read.map(|count| {
                    protocol::data_reply_header(protocol::Rread::TYPE, tag, count, reply)
                })
            }
            Ok(Tmessage::Write(t)) if self.is_control_file(session, t.fid) => {
                match self.ctl_write(session, &t, source) {
                    Ok(count) => {
                        Rmessage::Write(protocol::Rwrite { count }).encode(tag, reply);
                        Ok(())
                    }
                    Err(failure) => {
                        let text = failure.to_string();
                        session.error_reply(tag, failure.errno, Some(&text), reply);
                        Ok(())
                    }
                }
            }
            Ok(other) => self.dispatch(session, other, source, sink.capacity(), tag, reply),
        };
        if let Err(Errno(errno)) = result {
            session.error_reply(tag, errno, None, reply);
        }
        // Nothing larger than the msize agreed on goes back: a 9P2000.u
        // stat or a readlink of a symlink with a long target, say, under a
        // small msize.
        if protocol::Header::parse(reply).is_ok_and(|h| h.size > session.msize()) {
            session.error_reply(tag, libc::EMSGSIZE, None, reply);
        }
        if self.trace {
            self.trace_reply(session, reply, &*sink);
        }
    }

    fn dispatch(
        &self,
        s: &Session,
        request: Tmessage<'_>,
        source: &mut dyn WriteSource,
        reply_capacity: usize,
        tag: u16,
        out: &mut Vec<u8>,
    ) -> OpResult<()> {
        use protocol::*;
        let reply = match request {
            Tmessage::Version(t) => {
                let (msize, version) = self.version(s, &t);
                Rmessage::Version(Rversion {
                    msize,
                    version: Str(version),
                })
            }
            // No authentication: ENOENT is how 9P2000.L servers (diod) say
            // "not required", and what its clients expect.
            Tmessage::Auth(_) => return Err(Errno(libc::ENOENT)),
            Tmessage::Attach(t) => Rmessage::Attach(Rattach {
                qid: self.attach(s, &t)?,
            }),
            Tmessage::Flush(_) => Rmessage::Flush(Rflush {}),
            Tmessage::Walk(t) => Rmessage::Walk(Rwalk {
                qids: self.walk(s, &t)?,
            }),
            Tmessage::Clunk(t) => {
                self.clunk(s, &t)?;
                Rmessage::Clunk(Rclunk {})
            }
            Tmessage::Getattr(t) => Rmessage::Getattr(self.getattr(s, &t)?),
            Tmessage::Setattr(t) => {
                self.setattr(s, &t)?;
                Rmessage::Setattr(Rsetattr {})
            }
            Tmessage::Lopen(t) => {
                let (qid, iounit) = self.lopen(s, &t)?;
                Rmessage::Lopen(Rlopen { qid, iounit })
            }
            Tmessage::Lcreate(t) => {
                let (qid, iounit) = self.lcreate(s, &t)?;
                Rmessage::Lcreate(Rlcreate { qid, iounit })
            }
            Tmessage::Write(t) => Rmessage::Write(Rwrite {
                count: self.write(s, &t, source)?,
            }),
            Tmessage::Mkdir(t) => Rmessage::Mkdir(Rmkdir {
                qid: self.mkdir(s, &t)?,
            }),
            Tmessage::Symlink(t) => Rmessage::Symlink(Rsymlink {
                qid: self.symlink(s, &t)?,
            }),
            Tmessage::Mknod(t) => Rmessage::Mknod(Rmknod {
                qid: self.mknod(s, &t)?,
            }),
            Tmessage::Readlink(t) => {
                let mut buf = [0u8; libc::PATH_MAX as usize];
                let n = self.readlink(s, &t, &mut buf)?;
                Rmessage::Readlink(Rreadlink {
                    target: Str(&buf[..n]),
                })
                .encode(tag, out);
                return Ok(());
            }
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
            Tmessage::Readdir(t) => return self.readdir(s, &t, reply_capacity, tag, out),
            Tmessage::Open(t) => {
                let (qid, iounit) = self.open(s, &t)?;
                Rmessage::Open(Ropen { qid, iounit })
            }
            Tmessage::Create(t) => {
                let (qid, iounit) = self.create(s, &t)?;
                Rmessage::Create(Rcreate { qid, iounit })
            }
            Tmessage::Stat(t) => return self.stat_reply(s, &t, tag, out),
            Tmessage::Wstat(t) => {
                self.wstat(s, &t)?;
                Rmessage::Wstat(Rwstat {})
            }
            Tmessage::Read(_) => unreachable!("handled by Server::handle"),
        };
        reply.encode(tag, out);
        Ok(())
    }

    /// Prints a request to stderr (--trace), with the first bytes of a
    /// Twrite's data.
    fn trace_request(
        &self,
        s: &Session,
        tag: u16,
        msg: &Tmessage<'_>,
        source: &mut dyn WriteSource,
    ) {
        let mut head = [0u8; TRACE_DATA];
        let data = match msg {
            Tmessage::Write(_) => {
                let n = source.copy_to(&mut head);
                Some(&head[..n])
            }
            _ => None,
        };
        let conn = s.id;
        trace_line(trace::RequestTrace {
            conn,
            tag,
            msg,
            data,
        });
    }

    /// Prints the reply in `reply` (--trace); an Rread's data is in `sink`.
    fn trace_reply(&self, s: &Session, reply: &[u8], sink: &dyn ReadSink) {
        let Ok(header) = protocol::Header::parse(reply) else {
            return;
        };
        let mut head = [0u8; TRACE_DATA];
        let (msg, data) = if header.msg_type == protocol::Rread::TYPE {
            let body = &reply[protocol::HEADER_SIZE..];
            let Ok(Rmessage::Read(rread)) = Rmessage::decode(header.msg_type, body) else {
                return;
            };
            let n = sink.peek(&mut head[..(rread.count as usize).min(TRACE_DATA)]);
            (Rmessage::Read(rread), Some(&head[..n]))
        } else {
            match protocol::decode_rmessage(reply) {
                Ok((_, msg)) => (msg, None),
                Err(_) => return,
            }
        };
        let (conn, tag) = (s.id, header.tag);
        trace_line(trace::ReplyTrace {
            conn,
            tag,
            msg: &msg,
            data,
        });
    }
}

/// Writes one `--trace` line to stderr in one write (stderr is unbuffered:
/// `eprintln!` writes each piece of the line on its own), formatted in a
/// buffer the thread keeps.
fn trace_line(line: impl std::fmt::Display) {
    use std::fmt::Write as _;
    use std::io::Write as _;
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LINE.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        let _ = writeln!(buf, "{line}");
        let _ = std::io::stderr().write_all(buf.as_bytes());
    });
}

fn cwd() -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a valid "descriptor" for the *at calls for the
    // life of the process; it is never closed.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// Joins a fid's path and a name.
fn child_path(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_text_is_cut_short_at_a_character_boundary() {
        let session = Session::new();
        session.set_dialect(Dialect::Unix);
        let long = "é".repeat(3000); // 6000 bytes, two per character
        let mut reply = Vec::new();
        session.error_reply(7, libc::EINVAL, Some(&long), &mut reply);
        match protocol::decode_rmessage(&reply) {
            Ok((7, Rmessage::Error(e))) => {
                let text = std::str::from_utf8(e.ename.as_bytes()).unwrap();
                assert_eq!(text, &long[..MAX_ERROR_TEXT]);
                assert_eq!(e.errno, Some(libc::EINVAL as u32));
            }
            other => panic!("{other:?}"),
        }
        // An odd limit falls inside a character: the cut steps back.
        let odd = format!("x{long}");
        session.error_reply(7, libc::EINVAL, Some(&odd), &mut reply);
        let Ok((_, Rmessage::Error(e))) = protocol::decode_rmessage(&reply) else {
            panic!("no Rerror");
        };
        assert_eq!(e.ename.as_bytes().len(), MAX_ERROR_TEXT - 1);
    }
}
