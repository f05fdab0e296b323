//! Bounds on what a 9P client controls: every resource a hostile or broken
//! client can make the daemon hold is bounded, and going over a bound is
//! answered with the errno a host filesystem would give (never a dead
//! daemon or unbounded memory), while another session goes on working.
//!
//! At the scale a hostile client works at, with the daemon's default
//! bounds: a million fids in one session; 100,000 directories opened;
//! 100,000 lock owners; 1,024 requests outstanding on one connection and
//! blocking locks on every worker of the pool; 1,000 idle connections;
//! peers announcing 4 MiB messages and sending them a byte at a time. Each
//! measures the memory and descriptors held (of this process for the
//! server run in-process, from /proc for the daemon binary) and has
//! another session served meanwhile. The other tests set the bounds small
//! (`server::Config`) to check what happens at them.
//!
//! The descriptor bounds follow the open file limit, so the tests at scale
//! first raise this process's soft limit towards the hard one, as the
//! daemon raises its own at start (`nofile_limit`); the daemon's default
//! descriptor budget for that limit is `default_budget`.

#[path = "../common/mod.rs"]
mod common;

use common::client::{
    check_reply, read_frame, Client, Dec, Stream, NOFID, NOTAG, T, TATTACH, TLOCK, TLOPEN,
    TVERSION, TWALK, TWRITE,
};
use common::daemon::Daemon;
use common::inproc::{InProc, TypedClient};
use common::proc::{own_open_fds, own_rss, status_field, wait_until};

mod blocking;
mod connections;
mod directories;
mod fids;
mod lock_owners;
mod warnings;
mod xattrs;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, Server};
use vhost_user_9p::socket::{serve_connection, ListenAddress, SocketAccess, SocketListener};

const ROOT: u32 = 1;
const O_RDWR: u32 = 2;
const WRLCK: u8 = 1;
const LOCK_SUCCESS: u8 = 0;
const LOCK_BLOCKED: u8 = 1;
const LOCK_FLAGS_BLOCK: u32 = 1;
const GETATTR_BASIC: u64 = 0x7ff;

/// The tests measure the process's memory and descriptors: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The msize of the in-process sessions: room for the largest replies.
const MSIZE: u32 = 512000;

/// A new session of `server` in `dialect` through the socket transport's
/// frame handling, attached as root at fid ROOT.
fn session_in(server: &Arc<Server>, dialect: &str) -> InProc {
    InProc::on(server).framed().mount(MSIZE, dialect, 0)
}

/// A 9P2000.L session attached as root at fid ROOT.
fn session(server: &Arc<Server>) -> InProc {
    session_in(server, "9P2000.L")
}

/// Treaddir: (offset, name) of each entry.
fn readdir(c: &mut InProc, fid: u32, offset: u64, count: u32) -> Result<Vec<(u64, String)>, i32> {
    let reply = c
        .call(Tmessage::Readdir(Treaddir { fid, offset, count }))
        .result()?;
    let mut entries = Vec::new();
    let mut d = Decoder::new(reply.data());
    while d.remaining() > 0 {
        let _qid: Qid = d.decode().unwrap();
        let off: u64 = d.decode().unwrap();
        let _ty: u8 = d.decode().unwrap();
        let name: Str = d.decode().unwrap();
        entries.push((off, String::from_utf8_lossy(name.as_bytes()).into_owned()));
    }
    Ok(entries)
}

/// Every name in the directory open at `fid`, read with Treaddir in
/// `count`-byte replies from offset 0.
fn list(c: &mut InProc, fid: u32, count: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let entries = readdir(c, fid, offset, count).unwrap();
        let Some(&(last, _)) = entries.last() else {
            return names;
        };
        offset = last;
        names.extend(entries.into_iter().map(|(_, name)| name));
    }
}

fn xattrcreate(c: &mut InProc, fid: u32, name: &str, attr_size: u64) -> Result<(), i32> {
    let create = Txattrcreate {
        fid,
        name: name.into(),
        attr_size,
        flags: 0,
    };
    c.call(Tmessage::Xattrcreate(create)).result().map(drop)
}

/// Txattrwalk: the value's size.
fn xattrwalk(c: &mut InProc, fid: u32, newfid: u32, name: &str) -> Result<u64, i32> {
    let walk = Txattrwalk {
        fid,
        newfid,
        name: name.into(),
    };
    let reply = c.call(Tmessage::Xattrwalk(walk)).result()?;
    match reply.msg() {
        Rmessage::Xattrwalk(r) => Ok(r.size),
        other => panic!("{other:?}"),
    }
}

/// A non-blocking write lock of one byte at `start` for `proc_id`.
fn lock(c: &mut InProc, fid: u32, start: u64, proc_id: u32, client_id: &str) -> Result<u8, i32> {
    c.lock(fid, WRLCK, 0, start, 1, proc_id, client_id)
}

fn getlock(c: &mut InProc, fid: u32, proc_id: u32, client_id: &str) -> Result<(), i32> {
    let reply = c.getlock(fid, WRLCK, 0, 0, proc_id, client_id);
    reply.result().map(drop)
}

/// A 9P client over a stream socket (the daemon's `--listen`, or a
/// connection served in-process by `serve_connection`).
type Peer = Client<Stream<UnixStream>>;

/// A client of `stream`, whose replies must come within 20 s.
fn peer(stream: UnixStream) -> Peer {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    Client::stream(stream)
}

fn connect(path: &Path) -> Peer {
    peer(UnixStream::connect(path).unwrap())
}

/// A connection served by `server` on a thread of its own, as a listener
/// would; and a descriptor of the server's end of it, to see what it has
/// not read yet (`unread`).
fn served_by(server: &Arc<Server>) -> (Peer, UnixStream, JoinHandle<std::io::Result<()>>) {
    let (client, server_end) = UnixStream::pair().unwrap();
    let watch = server_end.try_clone().unwrap();
    let server = Arc::clone(server);
    let thread = std::thread::spawn(move || serve_connection(&server, Box::new(server_end)));
    (peer(client), watch, thread)
}

/// Tversion and Tattach of fid ROOT.
fn mount(c: &mut Peer) {
    c.version(65536, "9P2000.L");
    c.attach(ROOT, "root", "", Some(0));
}

/// A mount, a walk to `path`, its attributes, an open and a one-byte
/// write lock at `at`: what a second client does to show it is served.
fn use_file(c: &mut Peer, path: &[&str], at: u64) {
    mount(c);
    c.walk(ROOT, 2, path);
    c.try_getattr(2, GETATTR_BASIC).expect("Tgetattr");
    c.lopen(2, O_RDWR);
    let m = tlock(c.tag(), 2, at, 0, 7);
    let reply = c.raw(&m);
    check_reply(&m, &reply).expect("Tlock");
    assert_eq!(lock_status(&reply), LOCK_SUCCESS);
}

/// Tlock (tag `tag`): a write lock of one byte at `start` for guest process
/// `proc_id`.
fn tlock(tag: u16, fid: u32, start: u64, flags: u32, proc_id: u32) -> Vec<u8> {
    T::new(TLOCK, tag)
        .u32(fid)
        .u8(WRLCK)
        .u32(flags)
        .u64(start)
        .u64(1)
        .u32(proc_id)
        .str("guest")
        .done()
}

/// The status of an Rlock frame.
fn lock_status(frame: &[u8]) -> u8 {
    assert_eq!(frame[4], TLOCK + 1, "not an Rlock: {frame:?}");
    let mut d = Dec::new(&frame[7..]);
    let status = d.u8();
    d.end();
    status
}

/// The tag of a reply frame.
fn tag_of(frame: &[u8]) -> u16 {
    u16::from_le_bytes([frame[5], frame[6]])
}

/// Bytes waiting to be read on a socket (FIONREAD): on the server's end of
/// a connection, what the server has not taken yet.
fn unread(socket: BorrowedFd<'_>) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// Bytes the allocator has handed out (heap and mmapped chunks, all
/// arenas).
fn allocated() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

/// The soft open file limit the tests at scale want: room for 100,000 open
/// directories beside the reserve the daemon keeps for everything else.
const NOFILE_WANTED: u64 = 131_072;

/// Sets this process's soft open file limit to `NOFILE_WANTED`, or to the
/// hard limit if that is lower (as the daemon raises its own at start,
/// `--rlimit-nofile`); returns it.
fn nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let want = NOFILE_WANTED.min(limit.rlim_max);
    if limit.rlim_cur != want {
        limit.rlim_cur = want;
        // SAFETY: as above; a soft limit within the hard one.
        let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
    }
    want
}

/// The descriptors a server with the default config lets its fids hold
/// under the soft limit `limit` (`Config::fid_descriptors`' default): the
/// limit less an eighth (at least 64) for everything else.
fn default_budget(limit: u64) -> usize {
    let soft = limit as usize;
    soft.saturating_sub((soft / 8).max(64)).max(16)
}

/// The most descriptors fids may hold for a `budget`: a session whose
/// sweep cannot get under the budget (what is left is open, in use or
/// another session's) puts its next one off until a 64th more (at least
/// 16); a few more for requests in flight.
fn most_held(budget: usize) -> usize {
    budget + (budget / 64).max(16) + 64
}

/// A share with a file `f`, a directory `d` of 20 empty files and an
/// empty directory `e`.
fn share() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for i in 0..20 {
        std::fs::write(dir.path().join("d").join(format!("entry-{i:03}")), b"").unwrap();
    }
    std::fs::create_dir(dir.path().join("e")).unwrap();
    dir
}

fn config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    // Few descriptors for the fids: idle ones are closed early.
    config.fid_descriptors = Some(4000);
    config
}

/// A second session of `server` that walks to `f`, asks its attributes and
/// clunks the fid every few milliseconds until `done`: how many times, and
/// the longest it took; or the first error.
fn second_session_meanwhile(
    server: &Arc<Server>,
    done: &AtomicBool,
) -> Result<(u32, Duration), String> {
    let mut other = InProc::on(server).framed();
    other.version(MSIZE, "9P2000.L").ok();
    let (mut rounds, mut longest) = (0, Duration::ZERO);
    loop {
        let started = Instant::now();
        let round = other
            .attach_as(ROOT, 0)
            .result()
            .and_then(|_| other.walk(ROOT, 2, &["f"]).result())
            .and_then(|_| other.getattr(2, GETATTR_BASIC).result())
            .and_then(|_| other.clunk(2).result())
            .and_then(|_| other.clunk(ROOT).result());
        if let Err(e) = round {
            let e = std::io::Error::from_raw_os_error(e);
            return Err(format!("the other session, round {rounds}: {e}"));
        }
        longest = longest.max(started.elapsed());
        rounds += 1;
        if done.load(Ordering::Relaxed) {
            return Ok((rounds, longest));
        }
        // Paces the rounds: a client going about its business.
        std::thread::sleep(Duration::from_millis(10));
    }
}

const MIB: u64 = 1 << 20;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}
