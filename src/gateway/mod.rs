//! The gateway: the share is an upstream 9P server's file tree rather than
//! a host directory (`--upstream`). A client's request is forwarded with
//! its fids translated (forward.rs): as it is when the upstream speaks the
//! client's dialect, else translated to the requests of the upstream's
//! 9P2000.u or 9P2000 (plan9.rs), through its `,ctl` control files where
//! it has them (ctl.rs). The reply comes back as the server's own reply,
//! encoded, msize-checked and traced by server/reply.rs.
//!
//! One [`Gateway`] owns the connections upstream ([`Client`]s, made at
//! start once the daemon is confined, so their reader threads have no
//! capabilities, like every other thread, and before the seccomp filter
//! forbids new sockets): one for 9P2000.L clients, and one each for
//! 9P2000.u and 9P2000 clients when the first is in another dialect
//! (versioned at such a client's first Tversion). Each connection has its upstream fid numbers, in blocks, one
//! block per session. A session's map ([`Fids`], kept in its `Session`)
//! clunks its upstream fids when the client sends Tversion and when the
//! session ends.

mod ctl;
mod forward;
mod plan9;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::client::{Canceller, Client, Connection, DEFAULT_MAX_IN_FLIGHT};
use crate::protocol::{Dialect, Tclunk, Tmessage, NOFID};
use crate::server::security::IdMap;
use crate::server::{default_max_fids_total, Config, Session};
use crate::sync::Locked;

pub use forward::{Answer, Refused};

/// What `--upstream` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `unix:PATH` or `tcp:HOST:PORT`.
    pub address: String,
    /// Tattach's aname upstream [None: empty, the upstream's default].
    pub aname: Option<String>,
    /// Tattach's uname upstream [None: the host name of the attaching
    /// user's uid]; the guest's aname and uname are never forwarded.
    pub uname: Option<String>,
    /// The protocol asked of the upstream (it may answer with less).
    pub version: Dialect,
}

/// An upstream 9P server, shared by every session.
pub struct Gateway {
    /// The connection 9P2000.L clients use (in the dialect `--upstream-version`
    /// asks, or less).
    upstream: Arc<Shared>,
    /// Connections in 9P2000.u and 9P2000 for clients that speak those,
    /// when `upstream` is in another dialect (None: it is not).
    unix: Option<Later>,
    plan9: Option<Later>,
    spec: Upstream,
    config: Config,
}

/// A connection made at start (once the daemon serves, its seccomp filter
/// lets no socket be made) and versioned at its first client's Tversion
/// (an upstream that never answers then holds up that client only).
struct Later {
    dialect: Dialect,
    client: Mutex<Option<Client>>,
    /// None: the upstream does not speak the dialect.
    versioned: OnceLock<Option<Arc<Shared>>>,
}

/// What the gateway and its sessions' fid maps share.
struct Shared {
    client: Client,
    aname: Option<String>,
    uname: Option<String>,
    /// Fids one session may hold upstream (Config::max_fids): EMFILE beyond.
    max_fids: usize,
    /// Fids all sessions may hold upstream together: ENFILE beyond.
    max_fids_total: usize,
    /// --trace: each message to and from the upstream is printed too.
    trace: bool,
    /// --uid-map, --gid-map: the guest's ids (9P2000.L clients') as the
    /// upstream's.
    uid_map: IdMap,
    gid_map: IdMap,
    /// Upstream fids in use, all sessions together.
    in_use: AtomicUsize,
    /// The blocks of upstream fid numbers, one per session.
    blocks: Mutex<Blocks>,
    /// A 9P2000 upstream's directories found without `,ctl`, and the
    /// stat lines read from its control files (ctl.rs).
    probes: ctl::Probes,
    lines: ctl::Lines,
}

/// Each session takes its upstream fid numbers from a block of its own, so
/// a number it gives back is reused by that session only: a request of
/// one session still holding a number another request of it clunked can
/// reach only that session's files, never another's.
#[derive(Default)]
struct Blocks {
    next: u32,
    free: Vec<u32>,
}

impl Shared {
    /// Connects to the upstream and agrees `dialect` or less with it.
    fn connect(
        connection: Connection,
        upstream: &Upstream,
        dialect: Dialect,
        config: &Config,
    ) -> Result<Shared, String> {
        let address = &upstream.address;
        let client = Client::over(connection, DEFAULT_MAX_IN_FLIGHT)
            .map_err(|e| format!("--upstream {address}: {e}"))?;
        client
            .version(UPSTREAM_MSIZE, dialect)
            .map_err(|e| format!("--upstream {address}: {e}"))?;
        Ok(Shared::new(client, upstream, config))
    }

    /// `client`, versioned, as the connection of the sessions in its
    /// dialect.
    fn new(client: Client, upstream: &Upstream, config: &Config) -> Shared {
        Shared {
            client,
            aname: upstream.aname.clone(),
            uname: upstream.uname.clone(),
            max_fids: config.max_fids,
            max_fids_total: config
                .max_fids_total
                .unwrap_or(default_max_fids_total(config.max_fids)),
            trace: config.trace,
            uid_map: config.uid_map.clone(),
            gid_map: config.gid_map.clone(),
            in_use: AtomicUsize::new(0),
            blocks: Mutex::default(),
            probes: ctl::Probes::default(),
            lines: ctl::Lines::default(),
        }
    }

    /// Numbers per block: one session's fids and room for the spare fids
    /// of its requests in flight.
    fn block_size(&self) -> u32 {
        (self.max_fids as u64 + SPARE_FIDS).min(u64::from(NOFID) / 2) as u32
    }

    /// A free block's first number; None when every block is taken.
    fn take_block(&self) -> Option<u32> {
        let size = self.block_size();
        let mut blocks = self.blocks.locked();
        if let Some(base) = blocks.free.pop() {
            return Some(base);
        }
        let base = blocks.next;
        let end = base.checked_add(size).filter(|&end| end < NOFID)?;
        blocks.next = end;
        Some(base)
    }
}

/// Upstream fids a session's requests may hold at once beside its fids
/// (a walk to a directory for Tmkdir, ...).
const SPARE_FIDS: u64 = 1024;

/// How far a directory fid's stat records have been read from a 9P2000
/// upstream (which reads a directory only in sequence).
#[derive(Default)]
struct DirCursor {
    /// The upstream read offset of the next Tread.
    offset: u64,
    /// Records read and not yet all given to the guest, from `pos`.
    records: Vec<u8>,
    pos: usize,
    /// The entry number of the record at `pos`: the Treaddir offset that
    /// continues from it.
    at: u64,
}

/// A session's upstream fid numbers: from its block (taken at its first
/// fid), handed out from `next`, given back to `free` once clunked
/// upstream.
#[derive(Default)]
struct Pool {
    block: Option<u32>,
    next: u32,
    free: Vec<u32>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream.client.address())
            .field("msize", &self.upstream.client.msize())
            .finish()
    }
}

/// The msize asked of the upstream: the largest this server agrees to,
/// plus room for a Tread/Twrite header.
const UPSTREAM_MSIZE: u32 = crate::server::MAX_MSIZE + crate::protocol::IOHDRSZ;

impl Gateway {
    /// Connects to the upstream and agrees a dialect with it (9P2000.L,
    /// else 9P2000.u or 9P2000, translated: plan9.rs); `config` gives the
    /// fid bounds and --trace. Fails with a line fit for the user.
    pub fn connect(upstream: &Upstream, config: &Config) -> Result<Gateway, String> {
        Gateway::over(upstream, config, Vec::new())
    }

    /// The connections a gateway to `upstream` makes, made now (before a
    /// sandbox without a network, for a TCP upstream).
    pub fn connections(upstream: &Upstream) -> Result<Vec<Connection>, String> {
        let address = &upstream.address;
        (0..3)
            .map(|_| Connection::open(address).map_err(|e| format!("--upstream {address}: {e}")))
            .collect()
    }

    /// `connect`, over the connections of `Gateway::connections` (more are
    /// opened if it has too few).
    pub fn over(
        upstream: &Upstream,
        config: &Config,
        mut premade: Vec<Connection>,
    ) -> Result<Gateway, String> {
        let address = &upstream.address;
        let mut open = || match premade.pop() {
            Some(connection) => Ok(connection),
            None => Connection::open(address).map_err(|e| format!("--upstream {address}: {e}")),
        };
        let shared = Shared::connect(open()?, upstream, upstream.version, config)?;
        let name = match shared.client.dialect() {
            Dialect::Linux => "9P2000.L",
            Dialect::Unix => "9P2000.u, translated (plan9.rs)",
            Dialect::Plan9 => "9P2000, translated (plan9.rs)",
        };
        log::info!(
            "upstream {}: {name}, msize {}",
            upstream.address,
            shared.client.msize()
        );
        let first = shared.client.dialect();
        let mut later = |dialect: Dialect| {
            if first == dialect {
                return None;
            }
            let client = Client::over(open().ok()?, DEFAULT_MAX_IN_FLIGHT).ok()?;
            Some(Later {
                dialect,
                client: Mutex::new(Some(client)),
                versioned: OnceLock::new(),
            })
        };
        Ok(Gateway {
            unix: later(Dialect::Unix),
            plan9: later(Dialect::Plan9),
            upstream: Arc::new(shared),
            spec: upstream.clone(),
            config: config.clone(),
        })
    }

    /// The connection for a client speaking `dialect`: 9P2000.L clients
    /// share the first, translated when it is less; 9P2000.u and 9P2000
    /// clients one in their own dialect, their requests passed as they are
    /// (None: the upstream does not speak it).
    fn shared_for(&self, dialect: Dialect) -> Option<Arc<Shared>> {
        if dialect == Dialect::Linux || self.upstream.client.dialect() == dialect {
            return Some(self.upstream.clone());
        }
        let later = match dialect {
            Dialect::Unix => self.unix.as_ref()?,
            _ => self.plan9.as_ref()?,
        };
        later
            .versioned
            .get_or_init(|| {
                let client = later.client.locked().take()?;
                let address = &self.spec.address;
                match client.version(UPSTREAM_MSIZE, later.dialect) {
                    Ok((_, agreed)) if agreed == later.dialect => {
                        log::info!(
                            "upstream {address}: another connection, for {agreed:?} clients"
                        );
                        Some(Arc::new(Shared::new(client, &self.spec, &self.config)))
                    }
                    Ok(_) => None,
                    Err(e) => {
                        log::warn!("--upstream {address}: {e}");
                        None
                    }
                }
            })
            .clone()
    }

    /// The upstream's address.
    pub fn address(&self) -> &str {
        self.upstream.client.address()
    }

    /// The guest's Tversion, answered `version` by the server (the
    /// session now speaking `dialect`): every upstream fid of the session
    /// is clunked. A client whose dialect the upstream does not speak, or
    /// one that changes dialect, is answered "unknown".
    pub fn version(&self, s: &Session, version: &'static [u8]) -> &'static [u8] {
        if let Some(fids) = s.upstream.get() {
            fids.clunk_all();
        }
        if version == b"unknown" {
            return version;
        }
        let dialect = s.dialect();
        let refused = |why: &str| {
            crate::warn_limited!(
                "gateway to {}: a client asked for {}: {why}",
                self.address(),
                String::from_utf8_lossy(version)
            );
            b"unknown" as &'static [u8]
        };
        if dialect != Dialect::Linux
            && !(self.upstream.uid_map == IdMap::default()
                && self.upstream.gid_map == IdMap::default())
        {
            // Their ids (9P2000.u's numbers, in stat records of directory
            // reads too) would pass unmapped.
            return refused("the id maps apply to 9P2000.L clients only");
        }
        let Some(shared) = self.shared_for(dialect) else {
            return refused("the upstream does not speak it");
        };
        let fids = s.upstream.get_or_init(|| Fids::new(shared.clone()));
        if !Arc::ptr_eq(&fids.upstream, &shared) {
            return refused("a session keeps the dialect it started with");
        }
        version
    }
}

/// A session's fids: guest fid to upstream fid. Dropped (the session
/// ended), it clunks its upstream fids.
pub struct Fids {
    upstream: Arc<Shared>,
    map: Mutex<HashMap<u32, u32>>,
    pool: Mutex<Pool>,
    /// A 9P2000 upstream: where each directory fid's reading stands, and
    /// the bytes of records they keep (at most CURSOR_BYTES).
    cursors: Mutex<HashMap<u32, DirCursor>>,
    cursor_bytes: AtomicUsize,
    /// Who attached, (uid, gid): the owner of files whose owner the
    /// upstream names in no way the host knows.
    owner: OnceLock<(u32, u32)>,
    /// The session's requests by the guest's tag: waiting upstream (what
    /// a guest Tflush of that tag flushes there), or flushed already.
    in_flight: Mutex<HashMap<u16, InFlight>>,
    /// A session using a 9P2000 upstream's `,ctl` conventions (ctl.rs):
    /// for each user attached upstream (by uid), an upstream fid of the
    /// root as that user, from which that user's control files are walked
    /// to; and each guest fid's place.
    control_roots: Mutex<HashMap<u32, u32>>,
    places: Mutex<Places>,
}

/// Where a guest fid is, for the `,ctl` conventions: the control root of
/// the user it was attached as (its control files are walked to as that
/// user, whose permissions the upstream checks), its path from the root
/// (names joined by '/', the root empty) and its qid.path, which its
/// control file's must match (ctl_syntax::CONTROL_FILE_QID): a path
/// another session changed leads to another file, which is then not used.
#[derive(Clone)]
struct Place {
    root: u32,
    path: Box<[u8]>,
    qid: u64,
}

/// What a place costs beside its path's bytes, as PLACE_BYTES counts.
const PLACE_SIZE: usize = 64;

/// The session's fids' places, and the bytes of their paths (at most
/// PLACE_BYTES: a fid beyond has none, and is served as plain 9P2000).
#[derive(Default)]
struct Places {
    map: HashMap<u32, Place>,
    bytes: usize,
}

/// Bytes of paths a session's places may hold.
const PLACE_BYTES: usize = 64 << 20;

/// A guest request's state as its Tflush sees it.
enum InFlight {
    /// Its call waits upstream.
    Waiting(Canceller),
    /// The guest flushed it: no further call of it goes upstream (until
    /// its Tflush is answered, after it).
    Flushed,
}

/// Bytes of directory records a session's cursors may keep between
/// Treaddirs; a cursor beyond is dropped (its directory is then read again
/// from the top to its offset).
const CURSOR_BYTES: usize = 8 << 20;

impl Fids {
    /// A new session's fid map, on the connection `upstream`.
    fn new(upstream: Arc<Shared>) -> Fids {
        Fids {
            upstream,
            map: Mutex::default(),
            pool: Mutex::default(),
            cursors: Mutex::default(),
            cursor_bytes: AtomicUsize::new(0),
            owner: OnceLock::new(),
            in_flight: Mutex::default(),
            control_roots: Mutex::default(),
            places: Mutex::default(),
        }
    }

    /// The upstream fid of guest fid `fid` (EBADF: none).
    fn get(&self, fid: u32) -> Result<u32, i32> {
        self.map.locked().get(&fid).copied().ok_or(libc::EBADF)
    }

    /// A fresh upstream fid for guest fid `fid`, which must be free
    /// (EBADF), within the session's bound (EMFILE) and all sessions'
    /// (ENFILE). Not yet in the map:
    /// `bind` puts it there once the upstream made it.
    fn reserve(&self, fid: u32) -> Result<u32, i32> {
        {
            let map = self.map.locked();
            if fid == NOFID || map.contains_key(&fid) {
                return Err(libc::EBADF);
            }
            if map.len() >= self.upstream.max_fids {
                return Err(libc::EMFILE);
            }
        }
        self.spare()
    }

    /// A fresh upstream fid for a request's own use (ENFILE beyond all
    /// sessions' bound): clunked, or given back with `release` if the
    /// upstream never made it.
    fn spare(&self) -> Result<u32, i32> {
        let shared = &self.upstream;
        let mut pool = self.pool.locked();
        if shared.in_use.fetch_add(1, Ordering::Relaxed) >= shared.max_fids_total {
            shared.in_use.fetch_sub(1, Ordering::Relaxed);
            return Err(libc::ENFILE);
        }
        if let Some(up) = pool.free.pop() {
            return Ok(up);
        }
        let base = match pool.block {
            Some(base) => base,
            None => match shared.take_block() {
                Some(base) => *pool.block.insert(base),
                None => {
                    shared.in_use.fetch_sub(1, Ordering::Relaxed);
                    return Err(libc::ENFILE);
                }
            },
        };
        if pool.next >= shared.block_size() {
            shared.in_use.fetch_sub(1, Ordering::Relaxed);
            return Err(libc::ENFILE);
        }
        pool.next += 1;
        Ok(base + pool.next - 1)
    }

    /// Maps `fid` to `up`, made upstream; if another request took `fid`
    /// meanwhile, `up` is clunked and EBADF returned.
    fn bind(&self, fid: u32, up: u32) -> Result<(), i32> {
        let taken = {
            let mut map = self.map.locked();
            match map.entry(fid) {
                std::collections::hash_map::Entry::Occupied(_) => true,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(up);
                    false
                }
            }
        };
        if taken {
            self.clunk_upstream(&[up]);
            return Err(libc::EBADF);
        }
        Ok(())
    }

    /// A guest Tflush of `tag` arrived: the request, if it waits
    /// upstream, is flushed there (its forwarded call then ends with the
    /// upstream's reply or EINTR, and the transport answers the Tflush
    /// after it). A request not yet sent upstream is not flushed: it is
    /// forwarded and answered as usual.
    pub(crate) fn flush(&self, tag: u16) {
        let was = self.in_flight.locked().insert(tag, InFlight::Flushed);
        if let Some(InFlight::Waiting(c)) = was {
            c.cancel();
        }
    }

    /// The guest's Tflush of `tag` is answered: the request is over.
    pub(crate) fn flushed(&self, tag: u16) {
        self.in_flight.locked().remove(&tag);
    }

    /// Whether the guest flushed its request `tag`.
    fn is_flushed(&self, tag: u16) -> bool {
        matches!(self.in_flight.locked().get(&tag), Some(InFlight::Flushed))
    }

    /// The guest's request `tag` waits upstream; `flush` cancels it there
    /// (at once if the guest flushed it meanwhile).
    fn waiting(&self, tag: u16, canceller: Canceller) {
        let mut in_flight = self.in_flight.locked();
        match in_flight.get(&tag) {
            Some(InFlight::Flushed) => {
                drop(in_flight);
                canceller.cancel();
            }
            _ => {
                in_flight.insert(tag, InFlight::Waiting(canceller));
            }
        }
    }

    /// The guest's request `tag` no longer waits upstream.
    fn answered(&self, tag: u16) {
        let mut in_flight = self.in_flight.locked();
        if let Some(InFlight::Waiting(_)) = in_flight.get(&tag) {
            in_flight.remove(&tag);
        }
    }

    /// Gives back an upstream fid the upstream never made (or clunked).
    fn release(&self, up: u32) {
        self.pool.locked().free.push(up);
        self.upstream.in_use.fetch_sub(1, Ordering::Relaxed);
    }

    /// Takes guest fid `fid` out of the map.
    fn remove(&self, fid: u32) -> Option<u32> {
        drop(self.take_cursor(fid));
        // Out of the map first: a place set meanwhile (set_place checks
        // the map) is then not kept.
        let up = self.map.locked().remove(&fid);
        self.set_place(fid, None);
        up
    }

    /// Whether the session uses the `,ctl` conventions.
    fn controls(&self) -> bool {
        !self.control_roots.locked().is_empty()
    }

    /// The control root of user `uid`, if the session has one.
    fn control_root(&self, uid: u32) -> Option<u32> {
        self.control_roots.locked().get(&uid).copied()
    }

    /// Makes `root` user `uid`'s control root, unless there is one: the
    /// root kept, and whether it was `root`.
    fn set_control_root(&self, uid: u32, root: u32) -> (u32, bool) {
        let mut roots = self.control_roots.locked();
        match roots.get(&uid) {
            Some(&kept) => (kept, false),
            None => {
                roots.insert(uid, root);
                (root, true)
            }
        }
    }

    /// Guest fid `fid`'s place, where known (`,ctl` conventions only).
    fn place(&self, fid: u32) -> Option<Place> {
        self.places.locked().map.get(&fid).cloned()
    }

    /// Guest fid `to` was walked from `from` through `names`, to a file of
    /// qid `qid` (None: a clone, `from`'s): its place follows (`,ctl`
    /// conventions only).
    fn walked(
        &self,
        from: u32,
        to: u32,
        names: &[crate::protocol::Str<'_>],
        qid: Option<crate::protocol::Qid>,
    ) {
        if !self.controls() {
            return;
        }
        let place = self.place(from).and_then(|p| {
            Some(Place {
                root: p.root,
                path: ctl::walked_path(&p.path, names)?,
                qid: qid.map_or(p.qid, |q| q.path),
            })
        });
        self.set_place(to, place);
    }

    /// Notes guest fid `fid`'s place (or that it has none); a fid no
    /// longer in the map (clunked meanwhile) gets none.
    fn set_place(&self, fid: u32, place: Option<Place>) {
        let mapped = place.is_some() && self.map.locked().contains_key(&fid);
        let mut places = self.places.locked();
        let Places { map, bytes } = &mut *places;
        if let Some(old) = map.remove(&fid) {
            *bytes -= PLACE_SIZE + old.path.len();
        }
        if let (Some(place), true) = (place, mapped) {
            let size = PLACE_SIZE + place.path.len();
            if *bytes + size <= PLACE_BYTES {
                *bytes += size;
                map.insert(fid, place);
            }
        }
    }

    /// A file moved from path `from` to `to`: so did every fid at or below
    /// it.
    fn renamed(&self, from: &[u8], to: &[u8]) {
        let mut places = self.places.locked();
        let Places { map, bytes } = &mut *places;
        for place in map.values_mut() {
            let Some(rest) = place.path.strip_prefix(from) else {
                continue;
            };
            if rest.is_empty() || rest[0] == b'/' {
                let mut moved = to.to_vec();
                moved.extend_from_slice(rest);
                *bytes = *bytes + moved.len() - place.path.len();
                place.path = moved.into_boxed_slice();
            }
        }
    }

    /// Where the reading of directory fid `fid` stands (a fresh cursor if
    /// it has none); `put_cursor` keeps it for the next Treaddir.
    fn take_cursor(&self, fid: u32) -> DirCursor {
        let cursor = self.cursors.locked().remove(&fid).unwrap_or_default();
        self.cursor_bytes
            .fetch_sub(cursor.records.capacity(), Ordering::Relaxed);
        cursor
    }

    fn put_cursor(&self, fid: u32, cursor: DirCursor) {
        let bytes = cursor.records.capacity();
        if self.cursor_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > CURSOR_BYTES {
            self.cursor_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return;
        }
        let kept = self.map.locked().contains_key(&fid);
        if kept {
            self.cursors.locked().insert(fid, cursor);
        } else {
            self.cursor_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Who attached first in this session (see `owner`).
    fn attached(&self, uid: u32) {
        let gid = crate::server::user::UserDb::host().credentials(uid).gid;
        let _ = self.owner.set((uid, gid));
    }

    /// The owner of files whose owner the upstream does not name in a way
    /// the host knows: who attached (nobody before that).
    fn owner(&self) -> (u32, u32) {
        const NOBODY: u32 = crate::server::user::NOBODY;
        self.owner.get().copied().unwrap_or((NOBODY, NOBODY))
    }

    /// Clunks every upstream fid of the session (Tversion, the session's
    /// end).
    fn clunk_all(&self) {
        let cursors: Vec<u32> = self.cursors.locked().keys().copied().collect();
        for fid in cursors {
            drop(self.take_cursor(fid));
        }
        *self.places.locked() = Places::default();
        let mut ups: Vec<u32> = self.map.locked().drain().map(|(_, up)| up).collect();
        ups.extend(self.control_roots.locked().drain().map(|(_, root)| root));
        self.clunk_upstream(&ups);
    }

    /// Clunks upstream fids, pipelined a batch at a time, and gives them
    /// back to the pool (whatever the upstream answers: clunk(5) frees the
    /// fid either way; a connection gone frees them all).
    fn clunk_upstream(&self, ups: &[u32]) {
        const BATCH: usize = 32;
        let client = &self.upstream.client;
        for batch in ups.chunks(BATCH) {
            let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); batch.len()];
            let mut pending = Vec::with_capacity(batch.len());
            for (&fid, buf) in batch.iter().zip(bufs.iter_mut()) {
                let request = Tmessage::Clunk(Tclunk { fid });
                if let Ok(p) = client.start(&request, &[], buf) {
                    pending.push(p);
                }
            }
            for p in pending {
                let _ = p.wait();
            }
            for &up in batch {
                self.release(up);
            }
        }
    }
}

impl Drop for Fids {
    fn drop(&mut self) {
        self.clunk_all();
        // No request of the session is left: its block is free.
        if let Some(base) = self.pool.get_mut().ok().and_then(|p| p.block) {
            self.upstream.blocks.locked().free.push(base);
        }
    }
}
