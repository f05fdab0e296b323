//! Clients whose every request has a deadline.

use super::*;

/// How long any request may take: far more than any takes, far less than
/// the open of a fifo with no writer (for ever).
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const DIALECTS: [&str; 3] = ["9P2000.L", "9P2000.u", "9P2000"];

/// A 9P session whose requests are answered within DEADLINE or fail the
/// test (rather than hang it).
pub trait Client {
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

    fn read(&mut self, fid: u32, offset: u64) -> Reply {
        self.call(Tmessage::Read(Tread {
            fid,
            offset,
            count: 8192,
        }))
    }

    fn clunk(&mut self, fid: u32) -> Reply {
        self.call(Tmessage::Clunk(Tclunk { fid }))
    }
}

/// An in-process session served on a thread of its own, so that a
/// request that never returns is reported instead of hanging the test.
pub struct Timed {
    requests: mpsc::Sender<(Vec<u8>, Vec<u8>)>,
    replies: mpsc::Receiver<Reply>,
}

impl Timed {
    pub fn attach(config: &Config, version: &str, uid: u32) -> Timed {
        let mut c = InProc::attach(config, Users::Guest, version, uid);
        let (requests, serve) = mpsc::channel::<(Vec<u8>, Vec<u8>)>();
        let (answer, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for (frame, data) in serve {
                let (_, msg) = decode_tmessage(&frame).unwrap();
                if answer.send(c.call_with(msg, &data)).is_err() {
                    break;
                }
            }
        });
        Timed { requests, replies }
    }
}

impl Client for Timed {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        let mut frame = Vec::new();
        msg.encode(1, &mut frame);
        self.requests.send((frame, data.to_vec())).unwrap();
        self.replies
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no reply to {msg:?} within {DEADLINE:?}: the server hangs"))
    }
}

/// A session over the daemon's `--listen unix:` socket.
pub struct Socket(UnixStream);

impl Socket {
    pub fn attach(sock: &Path, version: &str, uid: u32) -> Socket {
        let stream = UnixStream::connect(sock).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut c = Socket(stream);
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

impl Client for Socket {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        let mut frame = Vec::new();
        msg.encode(1, &mut frame);
        frame.extend_from_slice(data);
        patch_size(&mut frame, 0);
        self.0.write_all(&frame).unwrap();
        let mut size = [0u8; 4];
        let hung = |e| panic!("no reply to {msg:?} within {DEADLINE:?}: {e}");
        self.0.read_exact(&mut size).unwrap_or_else(hung);
        let mut reply = size.to_vec();
        reply.resize(u32::from_le_bytes(size) as usize, 0);
        self.0.read_exact(&mut reply[4..]).unwrap_or_else(hung);
        Reply(reply)
    }
}
