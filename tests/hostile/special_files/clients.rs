//! The sessions the battery runs on, every request with a deadline: an
//! in-process one on a thread of its own (`common::inproc::Timed`) and one
//! over the daemon's socket (typed requests on `common::client`'s stream).

use super::*;

use crate::common::client::{Client as Wire, Stream};
use crate::common::inproc::frame_of;

pub const DIALECTS: [&str; 3] = ["9P2000.L", "9P2000.u", "9P2000"];

/// A session over the daemon's `--listen unix:` socket, whose replies
/// must come within DEADLINE (past it, reading the reply fails the test).
pub struct Socket(Wire<Stream<UnixStream>>);

impl Socket {
    pub fn attach(sock: &Path, version: &str, uid: u32) -> Socket {
        let stream = UnixStream::connect(sock).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut c = Socket(Wire::stream(stream));
        let reply = c.call(Tmessage::Version(Tversion {
            msize: 65536,
            version: version.into(),
        }));
        assert!(matches!(reply.msg(), Rmessage::Version(v) if v.version == version.into()));
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
}

impl TypedClient for Socket {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        Reply(self.0.raw(&frame_of(&msg, 1, data)))
    }
}
