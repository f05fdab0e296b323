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
mod reply;
mod route;
pub mod security;
mod share;
pub mod user;
mod walk;
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

use crate::protocol::{self, Tmessage};

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
    /// Serve an upstream 9P server's tree instead of `shared_dir`
    /// (`--upstream`, gateway/): every request goes there.
    pub upstream: Option<std::sync::Arc<crate::gateway::Gateway>>,
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

/// The default write-behind window: off. It costs the daemon CPU (in the
/// TCG guest 0.38-1.76 s per GiB written, against 0.35-0.44 s without),
/// and the time it saves did not show there (BENCHMARKS.md, "Write-behind").
pub const DEFAULT_WRITE_BEHIND: u64 = 0;

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
            upstream: None,
        }
    }
}

/// A request as the operations take it: its tag (what a Tflush names) and
/// its message.
pub struct Tagged<'a> {
    pub tag: u16,
    pub message: Tmessage<'a>,
}

/// Fids all sessions may hold together unless `Config::max_fids_total`
/// says otherwise: twice one session's, so that no one session can take
/// them all.
pub fn default_max_fids_total(max_fids: usize) -> usize {
    max_fids.saturating_mul(2)
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
    /// `Config::upstream`: route.rs sends every request there.
    gateway: Option<std::sync::Arc<crate::gateway::Gateway>>,
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
    /// Its fids upstream, when the server is a gateway (gateway/); they
    /// are clunked when the session goes.
    pub(crate) upstream: std::sync::OnceLock<crate::gateway::Fids>,
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
            upstream: Default::default(),
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
}

impl Server {
    /// Opens the shared directory. Fails with a message fit for the user.
    pub fn new(config: &Config) -> Result<Server, String> {
        let share = match &config.upstream {
            None => Share::open(config)?,
            Some(_) => empty_share(config)?,
        };
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
                    .unwrap_or(default_max_fids_total(config.max_fids)),
            ),
            max_xattr_bytes: config.max_xattr_bytes,
            max_lock_owners: config.max_lock_owners,
            max_connections: config.max_connections,
            connections: Default::default(),
            gateway: config.upstream.clone(),
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

    /// Decodes and serves one request. `request` holds the whole message
    /// but for a Twrite's data, which `source` gives; an Rread's data goes
    /// to `sink`, the rest of the reply into `reply`. Returns the reply's
    /// size on the wire, data included (0: no reply, `request` is not even
    /// a header).
    pub fn serve(
        &self,
        session: &Session,
        request: &[u8],
        source: &mut dyn WriteSource,
        sink: &mut dyn ReadSink,
        reply: &mut Vec<u8>,
    ) -> u32 {
        reply.clear();
        let Ok(header) = protocol::Header::parse(request) else {
            return 0;
        };
        match Tmessage::decode(header.msg_type, &request[protocol::HEADER_SIZE..]) {
            Ok(message) => {
                if log::log_enabled!(log::Level::Trace) {
                    log::trace!("<- tag {} {:?}", header.tag, message);
                }
                self.handle(session, header.tag, message, source, sink, reply)
            }
            Err(e) => {
                log::debug!(
                    "undecodable request type {} tag {}: {e}",
                    header.msg_type,
                    header.tag
                );
                let errno = match e {
                    protocol::DecodeError::UnknownType(_) => libc::EOPNOTSUPP,
                    _ => libc::EINVAL,
                };
                self.refuse(session, header.tag, errno, reply)
            }
        }
    }

    /// Whether every request is served on this host (a directory share),
    /// quick ones quickly: a transport's queue thread may then serve them
    /// itself. A gateway's requests wait on the upstream.
    pub fn answers_locally(&self) -> bool {
        self.gateway.is_none()
    }

    /// A Tflush of `oldtag` arrived while that request may be in flight
    /// (the transport answers the Tflush once it is answered): a gateway
    /// flushes it upstream, so that it ends soon; a host directory's
    /// requests end by themselves.
    pub fn flushing(&self, session: &Session, oldtag: u16) {
        if let Some(gateway) = &self.gateway {
            gateway.flush(session, oldtag);
        }
    }

    /// Serves one decoded request (see `serve`): the gate, then the
    /// operation `route` picks, then the reply, encoded and traced.
    pub fn handle(
        &self,
        session: &Session,
        tag: u16,
        request: Tmessage<'_>,
        source: &mut dyn WriteSource,
        sink: &mut dyn ReadSink,
        reply: &mut Vec<u8>,
    ) -> u32 {
        if self.trace {
            reply::trace_request(session, tag, &request, source);
        }
        let mut scratch = route::Scratch::default();
        let outcome = match self.admit(session, &request) {
            Ok(()) => {
                let request = Tagged {
                    tag,
                    message: request,
                };
                self.route(session, request, source, sink, reply, &mut scratch)
            }
            Err(refused) => {
                if let (Some(gateway), Tmessage::Remove(t)) = (&self.gateway, &request) {
                    // Gone whether or not removed (remove(5)), upstream too.
                    gateway.forget(session, t.fid);
                }
                Err(refused.into())
            }
        };
        self.respond(session, tag, outcome, &*sink, reply)
    }
}

/// A gateway's share: a private directory, removed once opened, so that
/// nothing (were anything to reach it) can be found or made in it.
fn empty_share(config: &Config) -> Result<Share, String> {
    use std::os::unix::fs::DirBuilderExt;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "9p-gateway-share-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // $TMPDIR, else /tmp (the one a namespace sandbox has).
    let mut made = Err(String::new());
    for parent in [std::env::temp_dir(), PathBuf::from("/tmp")] {
        let dir = parent.join(&name);
        made = match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        };
        if made.is_ok() {
            break;
        }
    }
    let dir = made?;
    let share = Share::open(&Config {
        shared_dir: dir.clone(),
        upstream: None,
        ..config.clone()
    });
    let _ = std::fs::remove_dir(&dir);
    share
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
