//! A 9P client of an in-process server (no transport): any dialect, any
//! session policy; requests built with the crate's own encoder, replies
//! decoded into the errno whatever the dialect (Rlerror, or Rerror's
//! number in 9P2000.u / its text in 9P2000).

use std::path::Path;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::{self, Users};
use vhost_user_9p::server::{error_text, Config, Server, Session, SliceSource, VecSink};

/// The fid the client attaches as.
pub const ROOT: u32 = 1;

pub struct InProc {
    pub server: Server,
    pub session: Session,
}

/// A reply frame (with an Rread's data after it).
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

    /// The data of an Rread.
    pub fn data(&self) -> &[u8] {
        &self.0[RREAD_HEADER_SIZE..]
    }
}

impl InProc {
    /// A server on `config`, a session of `users` speaking `version`,
    /// attached as `uid` (and `uname`) on fid ROOT.
    pub fn attach(config: &Config, users: Users, version: &str, uid: u32) -> InProc {
        let server = Server::new(config).unwrap();
        let mut c = InProc {
            server,
            session: Session::with_users(users),
        };
        c.call(Tmessage::Version(Tversion {
            msize: 65536,
            version: version.into(),
        }))
        .ok();
        c.call(Tmessage::Attach(Tattach {
            fid: ROOT,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: (version != "9P2000").then_some(uid),
        }))
        .ok();
        c
    }

    /// A 9P2000.L session of a VMM's guest, attached as root.
    pub fn linux(dir: &Path) -> InProc {
        InProc::attach(&Config::new(dir), Users::Guest, "9P2000.L", 0)
    }

    pub fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
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
        // A socket session's request ran with its user's credentials on
        // this thread: the test's own file calls run as itself again.
        user::act_as(None).unwrap();
        Reply(reply)
    }

    pub fn call(&mut self, msg: Tmessage<'_>) -> Reply {
        self.call_with(msg, &[])
    }

    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Reply {
        let names: Vec<Str> = names.iter().map(|n| Str::from(*n)).collect();
        self.call(Tmessage::Walk(Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&names).unwrap(),
        }))
    }

    /// Writes `data` at offset 0 of fid `fid`.
    pub fn write(&mut self, fid: u32, data: &[u8]) -> Reply {
        self.call_with(
            Tmessage::Write(Twrite {
                fid,
                offset: 0,
                count: data.len() as u32,
            }),
            data,
        )
    }

    pub fn clunk(&mut self, fid: u32) -> Reply {
        self.call(Tmessage::Clunk(Tclunk { fid }))
    }
}
