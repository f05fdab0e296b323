//! The one 9P client of an in-process server: any dialect, any session
//! policy; requests built with the crate's own encoder, replies decoded
//! into the errno whatever the dialect (Rlerror, or Rerror's number in
//! 9P2000.u / its text in 9P2000).
//!
//! - `InProc`: one session of a server, both held in `Arc`s so that
//!   `twin()` serves the same session from another thread (as a pool's
//!   workers do). Typed requests go through `Server::handle` (no
//!   transport) or, once `framed()`, through the socket transport's
//!   per-frame step `socket::serve_frame` (its framing, its msize clamps);
//!   raw frames, malformed ones too, through `frame` and `send`.
//! - `TypedClient`: the typed requests the tests share (walk, open, read,
//!   write, getattr, lock, clunk) on any session answering a `Tmessage`
//!   with a `Reply`: `InProc`, `Timed`, or a test's own (a socket's, one
//!   inspecting every reply).
//! - `Timed`: an `InProc` served on a thread of its own, each request with
//!   a deadline, so that a request that never returns fails the test
//!   rather than hanging it.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::{self, Users};
use vhost_user_9p::server::{error_text, Config, Server, Session, SliceSource, VecSink};
use vhost_user_9p::socket::serve_frame;

/// The fid the client attaches as.
pub const ROOT: u32 = 1;

/// How long a request of a session with a deadline (`Timed`, a test's
/// socket session) may take: far more than any takes, far less than the
/// open of a fifo with no writer (for ever).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The way typed requests reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `Server::handle`, the request as it is (no transport).
    Handle,
    /// `socket::serve_frame`, the request encoded (a Twrite's data after
    /// it): what a socket connection does with each frame.
    Frame,
}

/// One session of an in-process server.
pub struct InProc {
    pub server: Arc<Server>,
    pub session: Arc<Session>,
    pub via: Via,
}

/// A reply frame (with an Rread's data after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply(pub Vec<u8>);

impl Reply {
    pub fn msg(&self) -> Rmessage<'_> {
        decode_rmessage(&self.0).expect("decodable reply").1
    }

    /// The error's errno, if the reply is one (9P2000's text mapped back
    /// to the number, as the Linux client does).
    pub fn errno(&self) -> Option<i32> {
        match self.msg() {
            Rmessage::Lerror(e) => Some(e.ecode as i32),
            Rmessage::Error(e) => Some(match e.errno {
                Some(n) => n as i32,
                // The standard text, or a control file's "ctl: CMD: TEXT".
                None => (1..134)
                    .find(|&n| e.ename.as_bytes().ends_with(error_text(n).as_bytes()))
                    .unwrap_or(-1),
            }),
            _ => None,
        }
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.errno(), None, "unexpected error: {:?}", self.msg());
        self
    }

    /// The reply, or the error's errno.
    pub fn result(self) -> Result<Reply, i32> {
        match self.errno() {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }

    /// The data of an Rread.
    pub fn data(&self) -> &[u8] {
        &self.0[RREAD_HEADER_SIZE..]
    }

    /// An Rlock's status, or the error's errno.
    #[track_caller]
    pub fn lock_status(&self) -> Result<u8, i32> {
        match self.msg() {
            Rmessage::Lock(r) => Ok(r.status),
            _ => match self.errno() {
                Some(e) => Err(e),
                None => panic!("not an Rlock: {:?}", self.msg()),
            },
        }
    }
}

/// `msg` framed with `tag`, `data` after it (a Twrite's), the size field
/// counting both.
pub fn frame_of(msg: &Tmessage<'_>, tag: u16, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    msg.encode(tag, &mut frame);
    frame.extend_from_slice(data);
    patch_size(&mut frame, 0);
    frame
}

impl InProc {
    /// A new session of `server`, of a VMM's guest; nothing sent yet.
    pub fn on(server: &Arc<Server>) -> InProc {
        InProc::with_users(server, Users::Guest)
    }

    /// A new session of `server` whose attaches act as `users` chooses.
    pub fn with_users(server: &Arc<Server>, users: Users) -> InProc {
        InProc {
            server: Arc::clone(server),
            session: Arc::new(Session::with_users(users)),
            via: Via::Handle,
        }
    }

    /// A new session of a server on `config`; nothing sent yet.
    pub fn serving(config: &Config) -> InProc {
        InProc::on(&Arc::new(Server::new(config).unwrap()))
    }

    /// A server on `config`, a session of `users` speaking `version`,
    /// attached as `uid` (and `uname`) on fid ROOT.
    pub fn attach(config: &Config, users: Users, version: &str, uid: u32) -> InProc {
        let server = Arc::new(Server::new(config).unwrap());
        InProc::with_users(&server, users).mount(65536, version, uid)
    }

    /// A 9P2000.L session of a VMM's guest, attached as root.
    pub fn linux(dir: &Path) -> InProc {
        InProc::attach(&Config::new(dir), Users::Guest, "9P2000.L", 0)
    }

    /// The same session, for requests from another thread.
    pub fn twin(&self) -> InProc {
        InProc {
            server: Arc::clone(&self.server),
            session: Arc::clone(&self.session),
            via: self.via,
        }
    }

    /// The same, its typed requests through the socket transport's framing.
    pub fn framed(mut self) -> InProc {
        self.via = Via::Frame;
        self
    }

    /// Tversion of `version` with `msize`, then Tattach of fid ROOT as
    /// `uid`; each must succeed.
    #[track_caller]
    pub fn mount(mut self, msize: u32, version: &str, uid: u32) -> InProc {
        self.version(msize, version).ok();
        self.attach_as(ROOT, uid).ok();
        self
    }

    pub fn version(&mut self, msize: u32, version: &str) -> Reply {
        self.call(Tmessage::Version(Tversion {
            msize,
            version: version.into(),
        }))
    }

    /// Tattach of `fid` as "root" (and `uid`, in the dialects that carry a
    /// number), no afid, the share's root.
    pub fn attach_as(&mut self, fid: u32, uid: u32) -> Reply {
        self.call(Tmessage::Attach(Tattach {
            fid,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: (self.session.dialect() != Dialect::Plan9).then_some(uid),
        }))
    }

    pub fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        if self.via == Via::Frame {
            return self.send(&frame_of(&msg, 1, data));
        }
        let mut reply = Vec::new();
        let mut out = Vec::new();
        let mut sink = VecSink {
            buf: &mut out,
            limit: 1 << 20,
        };
        self.server.handle(
            &self.session,
            1,
            msg,
            &mut SliceSource(data),
            &mut sink,
            &mut reply,
        );
        reply.extend_from_slice(&out);
        Self::as_itself();
        Reply(reply)
    }

    pub fn call(&mut self, msg: Tmessage<'_>) -> Reply {
        self.call_with(msg, &[])
    }

    /// Serves a raw frame (well formed or not) as a socket connection
    /// does: the reply and the data after it, as `serve_frame` leaves them
    /// (no reply to a frame shorter than a header).
    pub fn frame(&self, frame: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut reply, mut data) = (Vec::new(), Vec::new());
        serve_frame(&self.server, &self.session, frame, &mut reply, &mut data);
        Self::as_itself();
        (reply, data)
    }

    /// The same, the reply whole.
    pub fn send(&self, frame: &[u8]) -> Reply {
        let (mut reply, data) = self.frame(frame);
        reply.extend_from_slice(&data);
        Reply(reply)
    }

    /// A socket session's request ran with its user's credentials on this
    /// thread: the test's own file calls run as itself again.
    fn as_itself() {
        user::act_as(None).unwrap();
    }

    // The typed requests the files that predate `TypedClient` call without
    // it in scope.

    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Reply {
        TypedClient::walk(self, fid, newfid, names)
    }

    /// Writes `data` at offset 0 of fid `fid`.
    pub fn write(&mut self, fid: u32, data: &[u8]) -> Reply {
        TypedClient::write(self, fid, data)
    }

    pub fn clunk(&mut self, fid: u32) -> Reply {
        TypedClient::clunk(self, fid)
    }

    /// Served on a thread of its own, each request within DEADLINE.
    pub fn timed(mut self) -> Timed {
        let (requests, serve) = mpsc::channel::<(Vec<u8>, Vec<u8>)>();
        let (answer, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for (frame, data) in serve {
                let (_, msg) = decode_tmessage(&frame).unwrap();
                if answer.send(self.call_with(msg, &data)).is_err() {
                    break;
                }
            }
        });
        Timed { requests, replies }
    }
}

/// A 9P session answering typed requests, and the requests the tests
/// share.
pub trait TypedClient {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply;

    fn call(&mut self, msg: Tmessage<'_>) -> Reply {
        self.call_with(msg, &[])
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Reply {
        let names: Vec<Str> = names.iter().map(|n| Str::from(*n)).collect();
        self.call(Tmessage::Walk(Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&names).unwrap(),
        }))
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> Reply {
        self.call(Tmessage::Lopen(Tlopen { fid, flags }))
    }

    /// Walks `newfid` from `fid` to `names` and opens it with Tlopen
    /// `flags`: the walk's error, or the open's reply.
    fn walk_open(&mut self, fid: u32, newfid: u32, names: &[&str], flags: u32) -> Reply {
        let walk = self.walk(fid, newfid, names);
        match walk.errno() {
            None => self.lopen(newfid, flags),
            Some(_) => walk,
        }
    }

    /// Writes `data` at offset 0 of fid `fid`.
    fn write(&mut self, fid: u32, data: &[u8]) -> Reply {
        let count = data.len() as u32;
        let msg = Tmessage::Write(Twrite {
            fid,
            offset: 0,
            count,
        });
        self.call_with(msg, data)
    }

    /// Tread of 8192 bytes at `offset`.
    fn read(&mut self, fid: u32, offset: u64) -> Reply {
        self.read_count(fid, offset, 8192)
    }

    fn read_count(&mut self, fid: u32, offset: u64, count: u32) -> Reply {
        self.call(Tmessage::Read(Tread { fid, offset, count }))
    }

    fn getattr(&mut self, fid: u32, request_mask: u64) -> Reply {
        self.call(Tmessage::Getattr(Tgetattr { fid, request_mask }))
    }

    /// Tlock: the status, or the errno.
    #[allow(clippy::too_many_arguments)]
    fn lock(
        &mut self,
        fid: u32,
        lock_type: u8,
        flags: u32,
        start: u64,
        length: u64,
        proc_id: u32,
        client_id: &str,
    ) -> Result<u8, i32> {
        let lock = Tlock {
            fid,
            lock_type,
            flags,
            start,
            length,
            proc_id,
            client_id: client_id.into(),
        };
        self.call(Tmessage::Lock(lock)).lock_status()
    }

    /// Tgetlock (an Rgetlock to decode with `msg()`, or an error).
    fn getlock(
        &mut self,
        fid: u32,
        lock_type: u8,
        start: u64,
        length: u64,
        proc_id: u32,
        client_id: &str,
    ) -> Reply {
        self.call(Tmessage::Getlock(Tgetlock {
            fid,
            lock_type,
            start,
            length,
            proc_id,
            client_id: client_id.into(),
        }))
    }

    fn clunk(&mut self, fid: u32) -> Reply {
        self.call(Tmessage::Clunk(Tclunk { fid }))
    }
}

impl TypedClient for InProc {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        InProc::call_with(self, msg, data)
    }
}

/// An in-process session served on a thread of its own (`InProc::timed`),
/// so that a request that never returns is reported instead of hanging
/// the test.
pub struct Timed {
    requests: mpsc::Sender<(Vec<u8>, Vec<u8>)>,
    replies: mpsc::Receiver<Reply>,
}

impl Timed {
    /// `InProc::attach` of a VMM's guest, timed.
    pub fn attach(config: &Config, version: &str, uid: u32) -> Timed {
        InProc::attach(config, Users::Guest, version, uid).timed()
    }
}

impl TypedClient for Timed {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        self.requests
            .send((frame_of(&msg, 1, &[]), data.to_vec()))
            .unwrap();
        self.replies
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no reply to {msg:?} within {DEADLINE:?}: the server hangs"))
    }
}
