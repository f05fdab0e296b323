//! The upstream client (`vhost_user_9p::client`) against real servers
//! (`real_servers`): this crate's own, in-process on a Unix socket and as
//! the daemon binary (`--listen unix:PATH`), in all three dialects; and
//! against hostile upstreams (`hostile_upstreams`), small fake servers
//! answering garbage, frames too large, replies to tags never used,
//! truncated frames. Here: what both share, the calls as a client makes
//! them and what the client logs.
//!
//! No test may hang: each runs under a watchdog (`proc::Watchdog`) that
//! ends the test binary if it is still running after `DEADLINE`.

#[path = "../common/mod.rs"]
mod common;

mod hostile_upstreams;
mod real_servers;

use std::sync::{Mutex, Once};
use std::time::Duration;

use vhost_user_9p::client::{Client, Error, Reply};
use vhost_user_9p::protocol::flags::{OWRITE, P9_RDONLY, P9_WRONLY};
use vhost_user_9p::protocol::*;

use common::proc::Watchdog;

/// Longest any one test may run.
const DEADLINE: Duration = Duration::from_secs(120);
const ROOT: u32 = 1;
const DIALECTS: [Dialect; 3] = [Dialect::Linux, Dialect::Unix, Dialect::Plan9];

/// Ends the test binary if the calling test runs past `DEADLINE`.
fn watchdog() -> Watchdog {
    Watchdog::arm(DEADLINE)
}

// ---- logs ----

/// Every log record, to check what the client logs.
struct Capture;
static LOGGED: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = record.args().to_string();
        LOGGED.lock().unwrap().push((record.level(), line));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = log::set_logger(&Capture);
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// The error lines logged that mention `needle`.
fn errors_about(needle: &str) -> Vec<String> {
    let logged = LOGGED.lock().unwrap();
    logged
        .iter()
        .filter(|(level, line)| *level == log::Level::Error && line.contains(needle))
        .map(|(_, line)| line.clone())
        .collect()
}

// ---- calls ----

fn call<'b>(c: &Client, msg: Tmessage<'_>, buf: &'b mut Vec<u8>) -> Result<Reply<'b>, Error> {
    c.call(&msg, &[], buf)
}

fn connect(address: &str, msize: u32, dialect: Dialect) -> Client {
    let c = Client::connect(address).unwrap();
    assert_eq!(c.version(msize, dialect).unwrap(), (msize, dialect));
    assert_eq!((c.msize(), c.dialect()), (msize, dialect));
    c
}

fn attach(c: &Client, fid: u32) {
    let mut buf = Vec::new();
    let attach = Tattach {
        fid,
        afid: NOFID,
        uname: "root".into(),
        aname: "".into(),
        n_uname: (c.dialect() != Dialect::Plan9).then_some(0),
    };
    let reply = call(c, Tmessage::Attach(attach), &mut buf).unwrap();
    assert!(matches!(reply.msg, Rmessage::Attach(_)), "{reply:?}");
}

/// Walks `fid` to `newfid` along `names`: the number of qids.
fn walk(c: &Client, fid: u32, newfid: u32, names: &[&str]) -> Result<usize, Error> {
    let names: Vec<Str> = names.iter().map(|&n| Str::from(n)).collect();
    let walk = Twalk {
        fid,
        newfid,
        names: WalkList::from_slice(&names).unwrap(),
    };
    let mut buf = Vec::new();
    match call(c, Tmessage::Walk(walk), &mut buf)?.msg {
        Rmessage::Walk(r) => Ok(r.qids.len()),
        other => panic!("Twalk answered with {other:?}"),
    }
}

/// Opens `fid` for reading or writing, as the dialect does.
fn open(c: &Client, fid: u32, write: bool) {
    let msg = match c.dialect() {
        Dialect::Linux => Tmessage::Lopen(Tlopen {
            fid,
            flags: if write { P9_WRONLY } else { P9_RDONLY },
        }),
        _ => Tmessage::Open(Topen {
            fid,
            mode: if write { OWRITE } else { 0 },
        }),
    };
    let mut buf = Vec::new();
    let reply = call(c, msg, &mut buf).unwrap();
    assert!(
        matches!(reply.msg, Rmessage::Lopen(_) | Rmessage::Open(_)),
        "{reply:?}"
    );
}

/// Creates `name` in the directory `fid` (which becomes the open file).
fn create(c: &Client, fid: u32, name: &str) {
    let msg = match c.dialect() {
        Dialect::Linux => Tmessage::Lcreate(Tlcreate {
            fid,
            name: name.into(),
            flags: P9_WRONLY,
            mode: 0o644,
            gid: 0,
        }),
        d => Tmessage::Create(Tcreate {
            fid,
            name: name.into(),
            perm: 0o644,
            mode: OWRITE,
            extension: (d == Dialect::Unix).then_some(Str(b"")),
        }),
    };
    let mut buf = Vec::new();
    let reply = call(c, msg, &mut buf).unwrap();
    assert!(
        matches!(reply.msg, Rmessage::Lcreate(_) | Rmessage::Create(_)),
        "{reply:?}"
    );
}

/// Reads `count` bytes at `offset` into `buf`: the data.
fn read<'b>(c: &Client, fid: u32, offset: u64, count: u32, buf: &'b mut Vec<u8>) -> &'b [u8] {
    let reply = call(c, Tmessage::Read(Tread { fid, offset, count }), buf).unwrap();
    match reply.msg {
        Rmessage::Read(r) => assert_eq!(r.count as usize, reply.data.len()),
        other => panic!("Tread answered with {other:?}"),
    }
    reply.data
}

/// The whole file, read iounit bytes at a time.
fn read_all(c: &Client, fid: u32) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = Vec::new();
    loop {
        let data = read(c, fid, all.len() as u64, c.iounit(), &mut buf);
        if data.is_empty() {
            return all;
        }
        all.extend_from_slice(data);
    }
}

fn write_all(c: &Client, fid: u32, data: &[u8]) {
    let mut buf = Vec::new();
    let mut offset = 0;
    for chunk in data.chunks(c.iounit() as usize) {
        let write = Twrite {
            fid,
            offset,
            count: chunk.len() as u32,
        };
        let reply = c.call(&Tmessage::Write(write), chunk, &mut buf).unwrap();
        match reply.msg {
            Rmessage::Write(w) => assert_eq!(w.count as usize, chunk.len()),
            other => panic!("Twrite answered with {other:?}"),
        }
        offset += chunk.len() as u64;
    }
}

/// The file's size, from Tgetattr or Tstat.
fn size(c: &Client, fid: u32) -> u64 {
    let mut buf = Vec::new();
    let msg = match c.dialect() {
        Dialect::Linux => Tmessage::Getattr(Tgetattr {
            fid,
            request_mask: flags::GETATTR_BASIC,
        }),
        _ => Tmessage::Stat(Tstat { fid }),
    };
    match call(c, msg, &mut buf).unwrap().msg {
        Rmessage::Getattr(r) => r.size,
        Rmessage::Stat(r) => r.stat.0.length,
        other => panic!("{other:?}"),
    }
}

fn clunk(c: &Client, fid: u32) {
    let mut buf = Vec::new();
    call(c, Tmessage::Clunk(Tclunk { fid }), &mut buf).unwrap();
}

/// Bytes that differ with `seed` and position.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| ((k * 31 + seed * 7) % 251) as u8)
        .collect()
}
