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

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, Server, Session};
use vhost_user_9p::socket::{
    serve_connection, serve_frame, ListenAddress, SocketAccess, SocketListener,
};

const BIN: &str = env!("CARGO_BIN_EXE_vhost-user-9p");
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

/// One session of an in-process server, through the socket transport's
/// frame handling.
struct Conn<'a> {
    server: &'a Server,
    session: Arc<Session>,
    frame: Vec<u8>,
    reply: Vec<u8>,
    data: Vec<u8>,
}

impl<'a> Conn<'a> {
    /// A session of `dialect`, attached at fid ROOT.
    fn with_dialect(server: &'a Server, dialect: &str) -> Conn<'a> {
        let mut conn = Conn::on(server, Arc::new(Session::new()));
        conn.version(dialect);
        let attach = Tattach {
            fid: ROOT,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: (dialect != "9P2000").then_some(0),
        };
        conn.call(Tmessage::Attach(attach)).unwrap();
        conn
    }

    /// A 9P2000.L session attached as root at fid ROOT.
    fn new(server: &'a Server) -> Conn<'a> {
        Conn::with_dialect(server, "9P2000.L")
    }

    /// Requests of `session`, as they come.
    fn on(server: &'a Server, session: Arc<Session>) -> Conn<'a> {
        Conn {
            server,
            session,
            frame: Vec::new(),
            reply: Vec::new(),
            data: Vec::new(),
        }
    }

    /// The same session, for requests from another thread (as a pool's
    /// workers serve one session's requests at once).
    fn twin(&self) -> Conn<'a> {
        Conn::on(self.server, Arc::clone(&self.session))
    }

    fn version(&mut self, dialect: &str) {
        let version = Tversion {
            msize: 512000,
            version: dialect.into(),
        };
        self.call(Tmessage::Version(version)).unwrap();
    }

    /// Sends a request; its reply frame (an Rread's data after it), or the
    /// error's errno.
    fn call(&mut self, msg: Tmessage<'_>) -> Result<Vec<u8>, i32> {
        self.frame.clear();
        msg.encode(1, &mut self.frame);
        serve_frame(
            self.server,
            &self.session,
            &self.frame,
            &mut self.reply,
            &mut self.data,
        );
        let mut reply = self.reply.clone();
        reply.extend_from_slice(&self.data);
        match decode_rmessage(&reply).expect("a decodable reply").1 {
            Rmessage::Lerror(e) => Err(e.ecode as i32),
            Rmessage::Error(e) => Err(e.errno.map_or(libc::EIO, |n| n as i32)),
            _ => Ok(reply),
        }
    }

    fn attach(&mut self, fid: u32) -> Result<(), i32> {
        let attach = Tattach {
            fid,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: Some(0),
        };
        self.call(Tmessage::Attach(attach)).map(drop)
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<(), i32> {
        let names: Vec<Str> = names.iter().map(|n| Str::from(*n)).collect();
        let walk = Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&names).unwrap(),
        };
        self.call(Tmessage::Walk(walk)).map(drop)
    }

    fn getattr(&mut self, fid: u32) -> Result<(), i32> {
        let getattr = Tgetattr {
            fid,
            request_mask: GETATTR_BASIC,
        };
        self.call(Tmessage::Getattr(getattr)).map(drop)
    }

    fn clunk(&mut self, fid: u32) -> Result<(), i32> {
        self.call(Tmessage::Clunk(Tclunk { fid })).map(drop)
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> Result<(), i32> {
        self.call(Tmessage::Lopen(Tlopen { fid, flags })).map(drop)
    }

    /// Tread: the data.
    fn read(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>, i32> {
        let read = Tread { fid, offset, count };
        Ok(self.call(Tmessage::Read(read))?[RREAD_HEADER_SIZE..].to_vec())
    }

    /// Treaddir: (offset, name) of each entry.
    fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<(u64, String)>, i32> {
        let reply = self.call(Tmessage::Readdir(Treaddir { fid, offset, count }))?;
        let mut entries = Vec::new();
        let mut d = Decoder::new(&reply[RREAD_HEADER_SIZE..]);
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
    fn list(&mut self, fid: u32, count: u32) -> Vec<String> {
        let mut names = Vec::new();
        let mut offset = 0;
        loop {
            let entries = self.readdir(fid, offset, count).unwrap();
            let Some(&(last, _)) = entries.last() else {
                return names;
            };
            offset = last;
            names.extend(entries.into_iter().map(|(_, name)| name));
        }
    }

    fn xattrcreate(&mut self, fid: u32, name: &str, attr_size: u64) -> Result<(), i32> {
        let create = Txattrcreate {
            fid,
            name: name.into(),
            attr_size,
            flags: 0,
        };
        self.call(Tmessage::Xattrcreate(create)).map(drop)
    }

    /// Txattrwalk: the value's size.
    fn xattrwalk(&mut self, fid: u32, newfid: u32, name: &str) -> Result<u64, i32> {
        let walk = Txattrwalk {
            fid,
            newfid,
            name: name.into(),
        };
        let reply = self.call(Tmessage::Xattrwalk(walk))?;
        match decode_rmessage(&reply).unwrap().1 {
            Rmessage::Xattrwalk(r) => Ok(r.size),
            other => panic!("{other:?}"),
        }
    }

    /// A non-blocking write lock of one byte at `start` for `proc_id`.
    fn lock(&mut self, fid: u32, start: u64, proc_id: u32, client_id: &str) -> Result<u8, i32> {
        let lock = Tlock {
            fid,
            lock_type: WRLCK,
            flags: 0,
            start,
            length: 1,
            proc_id,
            client_id: client_id.into(),
        };
        let reply = self.call(Tmessage::Lock(lock))?;
        match decode_rmessage(&reply).unwrap().1 {
            Rmessage::Lock(r) => Ok(r.status),
            other => panic!("{other:?}"),
        }
    }

    fn getlock(&mut self, fid: u32, proc_id: u32, client_id: &str) -> Result<(), i32> {
        let getlock = Tgetlock {
            fid,
            lock_type: WRLCK,
            start: 0,
            length: 0,
            proc_id,
            client_id: client_id.into(),
        };
        self.call(Tmessage::Getlock(getlock)).map(drop)
    }
}

/// A 9P client over a stream socket (the daemon's `--listen`, or a
/// connection served in-process by `serve_connection`).
struct Peer {
    stream: UnixStream,
    next_tag: u16,
}

impl Peer {
    fn new(stream: UnixStream) -> Peer {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Peer {
            stream,
            next_tag: 1,
        }
    }

    fn connect(path: &Path) -> Peer {
        Peer::new(UnixStream::connect(path).unwrap())
    }

    /// A connection served by `server` on a thread of its own, as a
    /// listener would; and a descriptor of the server's end of it, to see
    /// what it has not read yet (`unread`).
    fn served_by(server: &Arc<Server>) -> (Peer, UnixStream, JoinHandle<std::io::Result<()>>) {
        let (client, server_end) = UnixStream::pair().unwrap();
        let watch = server_end.try_clone().unwrap();
        let server = Arc::clone(server);
        let thread = std::thread::spawn(move || serve_connection(&server, Box::new(server_end)));
        (Peer::new(client), watch, thread)
    }

    fn send(&mut self, tag: u16, msg: Tmessage<'_>) {
        let mut frame = Vec::new();
        msg.encode(tag, &mut frame);
        self.stream.write_all(&frame).unwrap();
    }

    /// The next reply frame, whole.
    fn receive(&mut self) -> Vec<u8> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut frame = size.to_vec();
        frame.resize(u32::from_le_bytes(size) as usize, 0);
        self.stream.read_exact(&mut frame[4..]).unwrap();
        frame
    }

    /// Sends a request and reads its reply: the frame, or the errno.
    fn call(&mut self, msg: Tmessage<'_>) -> Result<Vec<u8>, i32> {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.send(tag, msg);
        let reply = self.receive();
        let (got, msg) = decode_rmessage(&reply).expect("a decodable reply");
        assert_eq!(got, tag, "reply tag");
        match msg {
            Rmessage::Lerror(e) => Err(e.ecode as i32),
            _ => Ok(reply),
        }
    }

    /// Tversion and Tattach of fid ROOT.
    fn mount(&mut self) {
        let version = Tversion {
            msize: 65536,
            version: "9P2000.L".into(),
        };
        self.call(Tmessage::Version(version)).unwrap();
        let attach = Tattach {
            fid: ROOT,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: Some(0),
        };
        self.call(Tmessage::Attach(attach)).unwrap();
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<(), i32> {
        let names: Vec<Str> = names.iter().map(|n| Str::from(*n)).collect();
        let walk = Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&names).unwrap(),
        };
        self.call(Tmessage::Walk(walk)).map(drop)
    }

    /// A mount, a walk to `path`, its attributes, an open and a one-byte
    /// write lock at `at`: what a second client does to show it is served.
    fn use_file(&mut self, path: &[&str], at: u64) {
        self.mount();
        self.walk(ROOT, 2, path).unwrap();
        let getattr = Tgetattr {
            fid: 2,
            request_mask: GETATTR_BASIC,
        };
        self.call(Tmessage::Getattr(getattr)).unwrap();
        let lopen = Tlopen {
            fid: 2,
            flags: O_RDWR,
        };
        self.call(Tmessage::Lopen(lopen)).unwrap();
        let reply = self.call(Tmessage::Lock(tlock(2, at, 0, 7))).unwrap();
        assert_eq!(lock_status(&reply), LOCK_SUCCESS);
    }
}

/// A write lock of one byte at `start` for guest process `proc_id`.
fn tlock(fid: u32, start: u64, flags: u32, proc_id: u32) -> Tlock<'static> {
    Tlock {
        fid,
        lock_type: WRLCK,
        flags,
        start,
        length: 1,
        proc_id,
        client_id: "guest".into(),
    }
}

/// The status of an Rlock frame.
fn lock_status(frame: &[u8]) -> u8 {
    match decode_rmessage(frame).expect("a decodable reply").1 {
        Rmessage::Lock(r) => r.status,
        other => panic!("not an Rlock: {other:?}"),
    }
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

/// Waits until `done` holds (checked every millisecond), at most 20 s.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Resident memory of this process, in bytes (read through a descriptor
/// opened once, as `open_descriptors`).
fn rss() -> u64 {
    use std::os::unix::fs::FileExt;
    static STATUS: std::sync::OnceLock<File> = std::sync::OnceLock::new();
    let status = STATUS.get_or_init(|| File::open("/proc/self/status").unwrap());
    let mut text = vec![0u8; 16 << 10];
    let n = status.read_at(&mut text, 0).unwrap();
    String::from_utf8_lossy(&text[..n])
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmRSS in /proc/self/status")
        * 1024
}

/// Bytes the allocator has handed out (heap and mmapped chunks, all
/// arenas).
fn allocated() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

/// Descriptors this process has open (counted through a directory
/// descriptor opened once: a process out of descriptors is counted too).
fn open_descriptors() -> usize {
    use nix::dir::Dir;
    use nix::fcntl::OFlag;
    static FDS: std::sync::OnceLock<Mutex<Dir>> = std::sync::OnceLock::new();
    let fds = FDS.get_or_init(|| {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        Mutex::new(Dir::open("/proc/self/fd", flags, nix::sys::stat::Mode::empty()).unwrap())
    });
    let mut fds = fds.lock().unwrap_or_else(|e| e.into_inner());
    // Less "." and "..".
    fds.iter().count() - 2
}

/// A number field of /proc/PID/status ("Threads:", "VmRSS:" in kB).
fn status_field(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
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
fn second_session_meanwhile(server: &Server, done: &AtomicBool) -> Result<(u32, Duration), String> {
    let mut other = Conn::on(server, Arc::new(Session::new()));
    other.version("9P2000.L");
    let (mut rounds, mut longest) = (0, Duration::ZERO);
    loop {
        let started = Instant::now();
        let round = other
            .attach(ROOT)
            .and_then(|()| other.walk(ROOT, 2, &["f"]))
            .and_then(|()| other.getattr(2))
            .and_then(|()| other.clunk(2))
            .and_then(|()| other.clunk(ROOT));
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

/// A child process killed when the test ends, also by a failed assertion.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        common::stop(&mut self.0);
    }
}

const MIB: u64 = 1 << 20;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

// ---- fids ----

/// A million fids in one session at the default bounds (4 Mi fids a
/// session; the descriptor budget of the open file limit): each costs
/// a few hundred bytes once its descriptor is closed, the process holds
/// no more descriptors than the budget, a second session is answered
/// meanwhile, and clunks and Tversion give the memory back.
///
/// The walks come from two threads, as a pool's workers serve one
/// session's requests. In a debug build they take about 25 µs of CPU
/// each; a sweep of idle descriptors looks only at the fids that hold one
/// (a budget's worth at most), not at the million: the whole takes about
/// half a minute of CPU (it took a minute and a half when each sweep went
/// through every fid of the session).
#[test]
fn a_million_fids_in_one_session() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let dir = share();
    let server = Server::new(&Config::new(dir.path())).unwrap();
    let fds0 = open_descriptors();
    let mut conn = Conn::new(&server);
    // The session's fids: ROOT and fids 2..=FIDS.
    const FIDS: u32 = 1_000_000;
    const WARM: u32 = 10_000;
    for fid in 2..2 + WARM {
        conn.walk(ROOT, fid, &["f"]).unwrap();
    }
    let (rss0, heap0) = (rss(), allocated());
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let (walked, other) = std::thread::scope(|scope| {
        let other = scope.spawn(|| second_session_meanwhile(&server, &done));
        let walkers: Vec<_> = (0..2)
            .map(|first| {
                let mut walker = conn.twin();
                let done = &done;
                scope.spawn(move || {
                    let mut most = 0;
                    for (i, fid) in (2 + WARM + first..=FIDS).step_by(2).enumerate() {
                        if let Err(e) = walker.walk(ROOT, fid, &["f"]) {
                            done.store(true, Ordering::Relaxed);
                            let open = open_descriptors().saturating_sub(fds0);
                            let e = std::io::Error::from_raw_os_error(e);
                            return Err(format!("walk to fid {fid}: {e}, {open} descriptors open"));
                        }
                        if first == 0 && i % 20_000 == 0 {
                            most = most.max(open_descriptors().saturating_sub(fds0));
                        }
                        if done.load(Ordering::Relaxed) {
                            return Err("the other walker failed".into());
                        }
                    }
                    Ok(most)
                })
            })
            .collect();
        let mut walked: Vec<Result<usize, String>> =
            walkers.into_iter().map(|w| w.join().unwrap()).collect();
        // The walker that failed first, if one did.
        walked.sort_by_key(|w| w.as_ref().err().map(|e| e.starts_with("the other")));
        done.store(true, Ordering::Relaxed);
        (walked, other.join().unwrap())
    });
    let most = walked
        .into_iter()
        .collect::<Result<Vec<usize>, String>>()
        .unwrap_or_else(|e| panic!("{e} (budget {budget})"))
        .into_iter()
        .max()
        .unwrap();
    let (rounds, longest) = other.unwrap();
    let walked_in = started.elapsed();
    let (rss1, heap1) = (rss(), allocated());
    let n = u64::from(FIDS - 1 - WARM);
    let per_fid = heap1.saturating_sub(heap0) / n;
    eprintln!(
        "{FIDS} fids in {walked_in:.1?}: {} resident, {} allocated ({per_fid} bytes a fid); \
         at most {most} descriptors for a budget of {budget}; the other session: {rounds} \
         rounds, the longest {longest:.1?}",
        mib(rss1.saturating_sub(rss0)),
        mib(heap1.saturating_sub(heap0)),
    );
    assert!(per_fid < 1024, "{per_fid} bytes per idle fid");
    assert!(
        rss1.saturating_sub(rss0) / n < 2048,
        "{} resident for {n} fids",
        mib(rss1.saturating_sub(rss0))
    );
    assert!(
        most <= most_held(budget),
        "{most} descriptors at once for a budget of {budget}"
    );
    assert!(
        longest < Duration::from_secs(2),
        "the other session waited {longest:?}"
    );
    // The fids are all there, and still lead to their file.
    for fid in [2, FIDS / 2, FIDS] {
        conn.getattr(fid).unwrap();
    }
    assert_eq!(conn.walk(ROOT, FIDS, &["f"]), Err(libc::EEXIST));

    // 100,000 clunked one by one give their memory back; Tversion the rest.
    const CLUNKED: u32 = 100_000;
    for fid in 2..2 + CLUNKED {
        conn.clunk(fid).unwrap();
    }
    let heap2 = allocated();
    let freed = heap1.saturating_sub(heap2) / u64::from(CLUNKED);
    conn.version("9P2000.L");
    let (rss3, heap3) = (rss(), allocated());
    eprintln!(
        "{CLUNKED} clunks: {freed} bytes a fid freed; after Tversion {} allocated, {} resident \
         more than with {WARM} fids",
        mib(heap3.saturating_sub(heap0)),
        mib(rss3.saturating_sub(rss0)),
    );
    assert!(freed >= per_fid / 2, "a clunk freed {freed} bytes");
    assert!(
        heap3 < heap0 + MIB,
        "{} still allocated after Tversion",
        mib(heap3.saturating_sub(heap0))
    );
    let left = open_descriptors().saturating_sub(fds0);
    assert!(left <= 4, "{left} descriptors left after Tversion");
    conn.attach(ROOT).unwrap();
    conn.walk(ROOT, 2, &["f"]).unwrap();
}

/// A session at its bound of fids gets EMFILE for every new fid number
/// (Tattach, Twalk, Txattrwalk), while replacing a fid (a walk onto
/// itself, Tlcreate) still works; a clunk makes room; another session has
/// a bound of its own; 50,000 walks refused at the bound keep nothing.
#[test]
fn new_fids_beyond_the_bound_are_emfile() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    config.max_fids = 64;
    let server = Server::new(&config).unwrap();
    let mut conn = Conn::new(&server);
    // ROOT, a directory fid 2 and files 3..=64: 64 fids.
    conn.walk(ROOT, 2, &[]).unwrap();
    for fid in 3..=64 {
        conn.walk(ROOT, fid, &["f"]).unwrap();
    }
    assert_eq!(conn.walk(ROOT, 65, &["f"]), Err(libc::EMFILE));
    assert_eq!(conn.walk(ROOT, 65, &[]), Err(libc::EMFILE));
    assert_eq!(conn.attach(65), Err(libc::EMFILE));
    assert_eq!(conn.xattrwalk(3, 65, ""), Err(libc::EMFILE));
    // A flood of walks to new fids at the bound: all refused, nothing kept.
    let heap0 = allocated();
    for fid in 200_000..250_000 {
        assert_eq!(conn.walk(ROOT, fid, &["f"]), Err(libc::EMFILE));
    }
    let grown = allocated().saturating_sub(heap0);
    assert!(grown < MIB, "{grown} bytes more after refused walks");
    // Replacing fids is not a new one.
    conn.walk(3, 3, &[]).unwrap();
    conn.walk(ROOT, 4, &["d"]).unwrap_err(); // EEXIST: newfid in use
    let create = Tlcreate {
        fid: 2,
        name: "new".into(),
        flags: O_RDWR,
        mode: 0o644,
        gid: 0,
    };
    conn.call(Tmessage::Lcreate(create)).unwrap();
    // Another session is not held up by this one.
    let mut other = Conn::new(&server);
    for fid in 2..=64 {
        other.walk(ROOT, fid, &["d"]).unwrap();
    }
    assert_eq!(other.walk(ROOT, 65, &["d"]), Err(libc::EMFILE));
    // Both hold the server's total (twice the bound): a third session
    // gets ENFILE until one of them lets a fid go.
    let mut third = Conn::on(&server, Arc::new(Session::new()));
    third.version("9P2000.L");
    assert_eq!(third.attach(ROOT), Err(libc::ENFILE));
    other.clunk(64).unwrap();
    third.attach(ROOT).unwrap();
    assert_eq!(other.walk(ROOT, 64, &["d"]), Err(libc::ENFILE));
    third.clunk(ROOT).unwrap();
    // A clunk makes room for one.
    conn.clunk(10).unwrap();
    conn.walk(ROOT, 65, &["f"]).unwrap();
    assert_eq!(conn.walk(ROOT, 66, &["f"]), Err(libc::EMFILE));
    // Tversion starts over.
    conn.version("9P2000.L");
    conn.attach(ROOT).unwrap();
    conn.walk(ROOT, 2, &["f"]).unwrap();
}

/// Idle fids' descriptors are closed once the fids hold more than the
/// budget, whichever session asks in between: a session walking to new
/// fids holds no more descriptors than the budget while another session
/// sends a request after each of its walks.
#[test]
fn another_session_does_not_put_off_the_sweeps() {
    let _s = serial();
    nofile_limit();
    let dir = share();
    let mut config = config(dir.path());
    const BUDGET: usize = 2000;
    config.fid_descriptors = Some(BUDGET);
    let server = Server::new(&config).unwrap();
    let fds0 = open_descriptors();
    let mut walker = Conn::new(&server);
    let mut other = Conn::new(&server);
    let mut most = 0;
    for fid in 2..10_000 {
        walker.walk(ROOT, fid, &["f"]).unwrap();
        other.getattr(ROOT).unwrap();
        if fid % 250 == 0 {
            most = most.max(open_descriptors().saturating_sub(fds0));
        }
    }
    assert!(
        most <= most_held(BUDGET),
        "{most} descriptors at once for a budget of {BUDGET}"
    );
}

/// Clones of the root fid and Txattrwalk fids give up their descriptors
/// when idle, like walked fids: a client making thousands of them holds no
/// more descriptors than the budget (they used to pin one each, until the
/// process had none left for any session).
#[test]
fn root_clones_and_xattr_fids_do_not_pin_descriptors() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    const BUDGET: usize = 300;
    config.fid_descriptors = Some(BUDGET);
    let server = Server::new(&config).unwrap();
    let before = open_descriptors();
    let mut conn = Conn::new(&server);
    conn.walk(ROOT, 2, &["f"]).unwrap();
    let mut most = 0;
    for fid in 10..1510 {
        conn.walk(ROOT, fid, &[]).unwrap();
        conn.xattrwalk(2, fid + 10_000, "").unwrap();
        if fid % 5 == 0 {
            most = most.max(open_descriptors() - before);
        }
    }
    assert!(
        most <= BUDGET + 8,
        "{most} descriptors at once for a budget of {BUDGET}"
    );
    // Released and found again: still the root and the file.
    conn.walk(10, 3, &["d"]).unwrap();
    conn.xattrwalk(2, 4, "").unwrap();
    let mut other = Conn::new(&server);
    other.walk(ROOT, 2, &["f"]).unwrap();
}

// ---- open directories ----

/// 100,000 directories opened by one session (each walked to on a fid of
/// its own) at the default bound on its open files, half the descriptor
/// budget: the opens past it are EMFILE, the process holds no more
/// descriptors than the budget, another session opens and reads meanwhile,
/// and Tversion gives every descriptor back.
#[test]
fn open_directories_past_the_default_bound_are_emfile() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let bound = (budget / 2).max(16); // Config::max_open_files' default
    let dir = share();
    let server = Server::new(&Config::new(dir.path())).unwrap();
    let fds0 = open_descriptors();
    let mut conn = Conn::new(&server);
    let mut other = Conn::new(&server);
    const ATTEMPTS: u32 = 100_000;
    assert!(
        bound < ATTEMPTS as usize,
        "a bound of {bound} is never reached"
    );
    let (mut opened, mut most) = (0, 0);
    let started = Instant::now();
    for i in 0..ATTEMPTS {
        let fid = 10 + i;
        conn.walk(ROOT, fid, &["e"]).unwrap();
        match conn.lopen(fid, 0) {
            Ok(()) => opened += 1,
            Err(e) => assert_eq!(e, libc::EMFILE, "open {i}"),
        }
        if i % 5000 == 0 || i as usize == bound {
            most = most.max(open_descriptors().saturating_sub(fds0));
        }
        if i as usize == bound {
            // Meanwhile, another session opens a directory and a file and
            // reads them.
            other.walk(ROOT, 2, &["d"]).unwrap();
            other.lopen(2, 0).unwrap();
            assert_eq!(other.list(2, 8192).len(), 22);
            other.walk(ROOT, 3, &["f"]).unwrap();
            other.lopen(3, 0).unwrap();
            assert_eq!(other.read(3, 0, 100).unwrap(), b"data");
            other.clunk(2).unwrap();
            other.clunk(3).unwrap();
        }
    }
    eprintln!(
        "{ATTEMPTS} directories opened in {:.1?}: {opened} open (bound {bound}), at most \
         {most} descriptors (budget {budget})",
        started.elapsed()
    );
    assert_eq!(opened, bound, "directories open at once");
    assert!(
        most <= most_held(budget),
        "{most} descriptors at once for a budget of {budget}"
    );
    // A clunk makes room for one more.
    conn.clunk(10).unwrap();
    conn.lopen(10 + ATTEMPTS - 1, 0).unwrap();
    assert_eq!(conn.lopen(10 + ATTEMPTS - 2, 0), Err(libc::EMFILE));
    conn.version("9P2000.L");
    let left = open_descriptors().saturating_sub(fds0);
    assert!(left <= 4, "{left} descriptors left after Tversion");
    conn.attach(ROOT).unwrap();
    conn.walk(ROOT, 2, &["e"]).unwrap();
    conn.lopen(2, 0).unwrap();
}

/// With the bound on open files raised to what the open file limit
/// allows, up to 100,000: each open directory that was read costs a few
/// KiB (its cursor's first buffer), not 64; the bound still holds, and
/// another session is served.
///
/// Each open directory holds a descriptor; the budget keeps a thousand
/// for other sessions. A hard limit below about 116,000 descriptors (this
/// process cannot raise it) allows fewer than 100,000: the test then opens
/// as many as it allows, and says so.
#[test]
fn open_directories_cost_little() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let n = 100_000.min(budget.saturating_sub(1000));
    if n < 100_000 {
        eprintln!("the hard open file limit allows {n} open directories, not 100,000");
    }
    let dir = share();
    let mut config = Config::new(dir.path());
    config.max_open_files = Some(n);
    let server = Server::new(&config).unwrap();
    let fds0 = open_descriptors();
    let mut conn = Conn::new(&server);
    const WARM: usize = 100;
    let open = |conn: &mut Conn, i: usize| {
        let fid = 10 + i as u32;
        conn.walk(ROOT, fid, &["d"]).unwrap();
        conn.lopen(fid, 0).unwrap();
        assert_eq!(conn.readdir(fid, 0, 8192).unwrap().len(), 22);
    };
    for i in 0..WARM {
        open(&mut conn, i);
    }
    let (rss0, heap0) = (rss(), allocated());
    let started = Instant::now();
    for i in WARM..n {
        open(&mut conn, i);
    }
    let (rss1, heap1) = (rss(), allocated());
    let most = open_descriptors().saturating_sub(fds0);
    let measured = (n - WARM) as u64;
    let per_dir = heap1.saturating_sub(heap0) / measured;
    eprintln!(
        "{n} open directories in {:.1?}: {} bytes resident, {per_dir} bytes allocated each; \
         {most} descriptors (budget {budget})",
        started.elapsed(),
        rss1.saturating_sub(rss0) / measured,
    );
    assert!(per_dir < 8192, "{per_dir} bytes per open directory");
    assert!(
        most <= most_held(budget),
        "{most} descriptors for a budget of {budget}"
    );
    // The raised bound is a bound.
    conn.walk(ROOT, 5, &["d"]).unwrap();
    assert_eq!(conn.lopen(5, 0), Err(libc::EMFILE));
    // Another session is served, and opens a file.
    let mut other = Conn::new(&server);
    other.walk(ROOT, 2, &["f"]).unwrap();
    other.lopen(2, 0).unwrap();
    assert_eq!(other.read(2, 0, 100).unwrap(), b"data");
}

/// A directory of 3,000 entries (names up to 255 bytes) reads whole and
/// once each through the growing cursor: in large and small Treaddirs,
/// again from offset 0, and as 9P2000 stat records.
#[test]
fn large_directories_read_whole_as_the_cursor_grows() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    let mut expected: BTreeSet<String> = [".", ".."].iter().map(|s| s.to_string()).collect();
    for i in 0..3000 {
        let name = format!("{i:05}-{}", "x".repeat(i % 250));
        std::fs::write(big.join(&name), b"").unwrap();
        expected.insert(name);
    }
    let long = "y".repeat(255);
    std::fs::write(big.join(&long), b"").unwrap();
    expected.insert(long);
    let server = Server::new(&config(dir.path())).unwrap();
    let mut conn = Conn::new(&server);
    conn.walk(ROOT, 2, &["big"]).unwrap();
    conn.lopen(2, 0).unwrap();
    for count in [512_000 - 11, 300, 4096, 70_000, 512_000 - 11] {
        let names = conn.list(2, count);
        assert_eq!(names.len(), expected.len(), "count {count}: duplicates?");
        let got: BTreeSet<String> = names.into_iter().collect();
        assert_eq!(got, expected, "count {count}");
    }
    // A cookie from the middle, after the cursor moved on.
    let first = conn.readdir(2, 0, 2000).unwrap();
    let (cookie, _) = first[first.len() / 2];
    let from_middle = conn.readdir(2, cookie, 2000).unwrap();
    assert_eq!(from_middle[0].1, first[first.len() / 2 + 1].1);

    // 9P2000: the same names as stat records, in large and small reads.
    expected.remove(".");
    expected.remove("..");
    let mut plan9 = Conn::with_dialect(&server, "9P2000");
    plan9.walk(ROOT, 2, &["big"]).unwrap();
    plan9
        .call(Tmessage::Open(Topen { fid: 2, mode: 0 }))
        .unwrap();
    for count in [500_000u32, 1000, 64 * 1024] {
        let mut names = Vec::new();
        let mut offset = 0u64;
        loop {
            let read = Tread {
                fid: 2,
                offset,
                count,
            };
            let reply = plan9.call(Tmessage::Read(read)).unwrap();
            let data = &reply[RREAD_HEADER_SIZE..];
            if data.is_empty() {
                break;
            }
            let mut d = Decoder::new(data);
            while d.remaining() > 0 {
                let stat: Stat = d.decode().unwrap();
                names.push(String::from_utf8_lossy(stat.name.as_bytes()).into_owned());
            }
            offset += data.len() as u64;
        }
        assert_eq!(names.len(), expected.len(), "9P2000 count {count}");
        let got: BTreeSet<String> = names.into_iter().collect();
        assert_eq!(got, expected, "9P2000 count {count}");
    }
}

// ---- xattr values ----

/// Txattrcreate and Txattrwalk beyond a session's budget of xattr bytes
/// answer ENOMEM; a clunk or Tversion gives the bytes back; another
/// session has its own budget.
#[test]
fn xattr_bytes_beyond_the_bound_are_enomem() {
    let _s = serial();
    let dir = share();
    let path =
        std::ffi::CString::new(dir.path().join("f").into_os_string().into_encoded_bytes()).unwrap();
    let value = vec![7u8; 1000];
    // SAFETY: valid C strings and a buffer of the length given.
    let set = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"user.big".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(set, 0, "setxattr: {}", std::io::Error::last_os_error());
    let mut config = config(dir.path());
    config.max_xattr_bytes = 4 * 65536;
    let server = Server::new(&config).unwrap();
    let mut conn = Conn::new(&server);
    for fid in 10..14 {
        conn.walk(ROOT, fid, &["f"]).unwrap();
        conn.xattrcreate(fid, &format!("user.x{fid}"), 65536)
            .unwrap();
    }
    conn.walk(ROOT, 14, &["f"]).unwrap();
    assert_eq!(conn.xattrcreate(14, "user.y", 65536), Err(libc::ENOMEM));
    assert_eq!(conn.xattrcreate(14, "user.y", 1), Err(libc::ENOMEM));
    conn.walk(ROOT, 2, &["f"]).unwrap();
    assert_eq!(conn.xattrwalk(2, 20, "user.big"), Err(libc::ENOMEM));
    assert_eq!(conn.xattrwalk(2, 20, ""), Err(libc::ENOMEM));
    // Another session is not short of anything.
    let mut other = Conn::new(&server);
    other.walk(ROOT, 2, &["f"]).unwrap();
    assert_eq!(other.xattrwalk(2, 3, "user.big"), Ok(1000));
    other.walk(ROOT, 4, &["f"]).unwrap();
    other.xattrcreate(4, "user.z", 65536).unwrap();
    // A clunk gives its value's bytes back (the unfinished value is not
    // set: EINVAL).
    assert_eq!(conn.clunk(10), Err(libc::EINVAL));
    assert_eq!(conn.xattrwalk(2, 20, "user.big"), Ok(1000));
    conn.xattrcreate(14, "user.y", 65536 - 1000).unwrap(); // the budget, to the byte
    assert_eq!(conn.xattrwalk(2, 21, "user.big"), Err(libc::ENOMEM));
    conn.clunk(20).unwrap();
    assert_eq!(conn.xattrwalk(2, 21, "user.big"), Ok(1000));
    // Tversion drops them all.
    conn.version("9P2000.L");
    conn.attach(ROOT).unwrap();
    for fid in 10..14 {
        conn.walk(ROOT, fid, &["f"]).unwrap();
        conn.xattrcreate(fid, &format!("user.x{fid}"), 65536)
            .unwrap();
    }
}

// ---- lock owners ----

/// 100,000 lock owners in one session (guest processes locking a byte
/// each of 1,000 files it holds open) at the default bound of 65,536 a
/// session: each lock is granted or refused with ENOLCK, no more than the
/// bound are granted, each owner costs little memory, and the descriptors
/// the owners hold (one each: an owner's locks are on an open file
/// description of its own) stay within the descriptor budget, so another
/// session still attaches, opens and locks. Tversion releases them all.
///
/// The owners are spread over files because each lock request goes
/// through every owner of its file: 100,000 on one file would take a
/// quarter of an hour in a debug build.
#[test]
fn a_hundred_thousand_lock_owners() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let dir = share();
    const FILES: u32 = 1000;
    const OWNERS: u32 = 100_000;
    const BOUND: u32 = 65_536; // Config::max_lock_owners' default
    std::fs::create_dir(dir.path().join("l")).unwrap();
    for i in 0..FILES {
        std::fs::write(dir.path().join("l").join(i.to_string()), b"").unwrap();
    }
    let server = Server::new(&Config::new(dir.path())).unwrap();
    let fds0 = open_descriptors();
    let mut conn = Conn::new(&server);
    for i in 0..FILES {
        conn.walk(ROOT, 10 + i, &["l", &i.to_string()]).unwrap();
        conn.lopen(10 + i, O_RDWR).unwrap();
    }
    let (rss0, heap0) = (rss(), allocated());
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut first_refusal = None;
    let mut most = 0;
    for owner in 0..OWNERS {
        let fid = 10 + owner % FILES;
        let outcome = match conn.lock(fid, u64::from(owner / FILES), owner + 1, "guest") {
            Ok(LOCK_SUCCESS) => "granted".to_string(),
            Ok(status) => format!("status {status}"),
            Err(e) => std::io::Error::from_raw_os_error(e).to_string(),
        };
        if outcome != "granted" && first_refusal.is_none() {
            first_refusal = Some((owner, outcome.clone()));
        }
        *outcomes.entry(outcome).or_default() += 1;
        if owner % 5000 == 0 {
            most = most.max(open_descriptors().saturating_sub(fds0));
        }
    }
    let locked_in = started.elapsed();
    most = most.max(open_descriptors().saturating_sub(fds0));
    let (rss1, heap1) = (rss(), allocated());
    let granted = outcomes.get("granted").copied().unwrap_or(0);
    let enolck = std::io::Error::from_raw_os_error(libc::ENOLCK).to_string();
    let refused = outcomes.get(&enolck).copied().unwrap_or(0);
    let per_owner = heap1.saturating_sub(heap0) / u64::from(granted.max(1));
    eprintln!(
        "{OWNERS} lock owners in {locked_in:.1?}: {outcomes:?}, the first refused: \
         {first_refusal:?}; {} resident, {per_owner} bytes allocated an owner; at most {most} \
         descriptors (budget {budget})",
        mib(rss1.saturating_sub(rss0)),
    );
    // Another session attaches, opens and locks.
    let mut other = Conn::on(&server, Arc::new(Session::new()));
    other.version("9P2000.L");
    let failed = |step: &'static str| {
        move |e: i32| format!("{step}: {}", std::io::Error::from_raw_os_error(e))
    };
    let served = other
        .attach(ROOT)
        .map_err(failed("Tattach"))
        .and_then(|()| other.walk(ROOT, 2, &["f"]).map_err(failed("Twalk")))
        .and_then(|()| other.lopen(2, O_RDWR).map_err(failed("Tlopen")))
        .and_then(|()| other.lock(2, 0, 1, "other").map_err(failed("Tlock")));
    assert_eq!(
        served,
        Ok(LOCK_SUCCESS),
        "another session, after {OWNERS} lock owners in one"
    );
    assert_eq!(
        granted + refused,
        OWNERS,
        "only grants and ENOLCK: {outcomes:?}"
    );
    assert!(granted <= BOUND, "{granted} owners granted");
    assert!(
        most <= most_held(budget),
        "{most} descriptors at once for a budget of {budget}"
    );
    assert!(per_owner < 1024, "{per_owner} bytes per lock owner");
    // An owner that has its locks goes on locking.
    assert_eq!(conn.lock(10, 5000, 1, "guest"), Ok(LOCK_SUCCESS));
    // Tversion drops the owners and their descriptors.
    conn.version("9P2000.L");
    let left = open_descriptors().saturating_sub(fds0);
    assert!(left <= 8, "{left} descriptors left after Tversion");
    conn.attach(ROOT).unwrap();
    conn.walk(ROOT, 2, &["l", "0"]).unwrap();
    conn.lopen(2, O_RDWR).unwrap();
    assert_eq!(conn.lock(2, 0, 1, "guest"), Ok(LOCK_SUCCESS));
}

/// A session's lock owners beyond its bound get ENOLCK (an owner it has
/// goes on locking); a client id longer than 255 bytes is EINVAL; a clunk
/// frees the owners that locked through the fid; another session has its
/// own bound.
#[test]
fn lock_owners_beyond_the_bound_are_enolck() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    config.max_lock_owners = 8;
    let server = Server::new(&config).unwrap();
    let mut conn = Conn::new(&server);
    conn.walk(ROOT, 2, &["f"]).unwrap();
    conn.lopen(2, O_RDWR).unwrap();
    for proc_id in 1..=8 {
        assert_eq!(
            conn.lock(2, 10 * u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(conn.lock(2, 90, 9, "guest"), Err(libc::ENOLCK));
    assert_eq!(conn.lock(2, 90, 1, "other-guest"), Err(libc::ENOLCK));
    assert_eq!(conn.lock(2, 31, 3, "guest"), Ok(LOCK_SUCCESS));
    // The client id: the Linux client's nodename is at most 64 bytes.
    let long = "h".repeat(256);
    assert_eq!(conn.lock(2, 31, 3, &long), Err(libc::EINVAL));
    assert_eq!(conn.getlock(2, 3, &long), Err(libc::EINVAL));
    let longest = "h".repeat(255);
    conn.getlock(2, 3, &longest).unwrap();
    // Another session: owners of its own.
    let mut other = Conn::new(&server);
    other.walk(ROOT, 2, &["f"]).unwrap();
    other.lopen(2, O_RDWR).unwrap();
    assert_eq!(other.lock(2, 1000, 1, &longest), Ok(LOCK_SUCCESS));
    for proc_id in 2..=8 {
        assert_eq!(
            other.lock(2, 1000 + u64::from(proc_id), proc_id, "g"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(other.lock(2, 2000, 9, "g"), Err(libc::ENOLCK));
    // The fid goes, and its owners with it.
    conn.clunk(2).unwrap();
    conn.walk(ROOT, 3, &["f"]).unwrap();
    conn.lopen(3, O_RDWR).unwrap();
    for proc_id in 11..=18 {
        assert_eq!(
            conn.lock(3, 10 * u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(conn.lock(3, 500, 19, "guest"), Err(libc::ENOLCK));
}

/// The descriptors lock owners hold count against the descriptors the fids
/// may hold: with 199 of them, idle fids give theirs up sooner, and the
/// process holds no more descriptors than the budget allows. They count
/// among the session's open files too (half the budget by default): with
/// the open fid, 199 owners fill them, and one more is ENOLCK.
#[test]
fn lock_descriptors_count_against_the_descriptor_budget() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    const BUDGET: usize = 400;
    config.fid_descriptors = Some(BUDGET);
    let server = Server::new(&config).unwrap();
    let before = open_descriptors();
    let mut conn = Conn::new(&server);
    conn.walk(ROOT, 2, &["f"]).unwrap();
    conn.lopen(2, O_RDWR).unwrap();
    for proc_id in 1..=199 {
        assert_eq!(
            conn.lock(2, u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(conn.lock(2, 200, 200, "guest"), Err(libc::ENOLCK));
    conn.walk(ROOT, 3, &["f"]).unwrap();
    assert_eq!(conn.lopen(3, O_RDWR), Err(libc::EMFILE));
    conn.clunk(3).unwrap();
    // An owner that has its descriptor goes on locking.
    assert_eq!(conn.lock(2, 300, 5, "guest"), Ok(LOCK_SUCCESS));
    // Sweeps close idle fids' descriptors whenever the budget is passed:
    // the most held at once is what counts.
    let mut most = 0;
    for fid in 10..2010 {
        conn.walk(ROOT, fid, &["f"]).unwrap();
        if fid % 5 == 0 {
            most = most.max(open_descriptors() - before);
        }
    }
    assert!(
        most <= BUDGET + 8,
        "{most} descriptors at once for a budget of {BUDGET}"
    );
}

// ---- requests outstanding, blocking locks ----

/// 1,024 blocking Tlocks sent at once on one socket connection, for a byte
/// the host holds locked: the connection's thread serves one request at a
/// time, so it is held up in the first (the server waits a grace period of
/// 500 ms for the lock, then answers BLOCKED and goes on with the next);
/// the requests behind it wait in the socket, costing the server nothing;
/// another connection is served meanwhile, locks included. Once the host
/// lets go, every request gets its one reply, in order.
#[test]
fn requests_behind_a_blocked_lock_hold_up_only_their_connection() {
    let _s = serial();
    let dir = share();
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    // The host's lock: an open file description lock, which conflicts with
    // the server's own (on descriptors of their own) in this process too.
    let host = File::options()
        .read(true)
        .write(true)
        .open(dir.path().join("f"))
        .unwrap();
    ofd_lock(host.as_fd(), libc::F_WRLCK);
    let (mut a, a_unread, a_thread) = Peer::served_by(&server);
    a.mount();
    a.walk(ROOT, 2, &["f"]).unwrap();
    a.call(Tmessage::Lopen(Tlopen {
        fid: 2,
        flags: O_RDWR,
    }))
    .unwrap();
    const OUTSTANDING: u16 = 1024;
    let mut burst = Vec::new();
    for tag in 0..OUTSTANDING {
        Tmessage::Lock(tlock(2, 0, LOCK_FLAGS_BLOCK, 1)).encode(tag, &mut burst);
    }
    let one = burst.len() / usize::from(OUTSTANDING);
    let heap0 = allocated();
    a.stream.write_all(&burst).unwrap();
    // The connection takes the first request, and waits in it.
    wait_until("the connection takes a request", || {
        unread(a_unread.as_fd()) < burst.len()
    });
    let held_from = Instant::now();

    // Another connection is served meanwhile, locks included.
    let (mut b, _, b_thread) = Peer::served_by(&server);
    b.use_file(&["d", "entry-000"], 0);
    let b_served_in = held_from.elapsed();
    let taken = (burst.len() - unread(a_unread.as_fd())) / one;
    let answered = unread(a.stream.as_fd()) / 8; // an Rlock is 8 bytes
    let grown = allocated().saturating_sub(heap0);
    // The first answer: BLOCKED, once its grace period is over; the
    // connection then waits in the next.
    let first = a.receive();
    let first_in = held_from.elapsed();
    assert_eq!(decode_rmessage(&first).unwrap().0, 0);
    assert_eq!(
        lock_status(&first),
        LOCK_BLOCKED,
        "granted while the host holds it"
    );
    ofd_lock(host.as_fd(), libc::F_UNLCK);
    let released_after = held_from.elapsed();
    let mut statuses = vec![LOCK_BLOCKED];
    for tag in 1..OUTSTANDING {
        let reply = a.receive();
        assert_eq!(decode_rmessage(&reply).unwrap().0, tag, "replies in order");
        statuses.push(lock_status(&reply));
    }
    let blocked = statuses.iter().filter(|&&s| s == LOCK_BLOCKED).count();
    eprintln!(
        "{OUTSTANDING} blocking Tlocks on one connection: another connection served in \
         {b_served_in:.1?}, when {taken} of them were taken and {answered} answered; the \
         first answered BLOCKED after {first_in:.1?}; the host let go after \
         {released_after:.1?}; {blocked} BLOCKED in all; {grown} bytes allocated meanwhile"
    );
    assert!(
        taken <= 2 && answered <= 1,
        "{taken} requests taken, {answered} answered while the host held the lock"
    );
    // Granted from the one in its grace period when the host let go on
    // (that one may just have been answered BLOCKED).
    assert!(blocked <= 2, "{blocked} BLOCKED: {statuses:?}");
    assert!(
        statuses[2..].iter().all(|&s| s == LOCK_SUCCESS),
        "{statuses:?}"
    );
    assert!(
        grown < 256 << 10,
        "{grown} bytes allocated for waiting requests"
    );
    // One reply each: the next reply answers the next request.
    a.call(Tmessage::Clunk(Tclunk { fid: 2 })).unwrap();
    drop((a, b));
    a_thread.join().unwrap().unwrap();
    b_thread.join().unwrap().unwrap();
}

/// An open file description lock (F_OFD_SETLK) of all of a file, or its
/// release.
fn ofd_lock(fd: BorrowedFd<'_>, lock_type: i32) {
    // SAFETY: flock is plain data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = lock_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl on a descriptor this test owns, with a valid flock.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    assert_eq!(r, 0, "F_OFD_SETLK: {}", std::io::Error::last_os_error());
}

/// The daemon's worker pool, each worker held up in a blocking Tlock: the
/// guest (a VMM) fills its whole virtqueue, 1,024 chains, with Tlocks for a
/// byte a host process holds locked; a client of the daemon's `--listen`
/// socket is still served (its connection has a thread of its own), and
/// the daemon's threads and memory do not grow. Once the host lets go,
/// every chain comes back once, with its reply.
///
/// The guest's own other requests wait meanwhile: its queue is full, and
/// a request behind the Tlocks waits for a worker (each takes up to the
/// 500 ms grace period, 4 at a time).
#[test]
fn blocking_locks_on_every_worker_leave_other_clients_served() {
    use common::{Area, Slot, Vmm, QSIZE};
    let _s = serial();
    let dir = share();
    let sockets = tempfile::tempdir().unwrap();
    let vhost = sockets.path().join("vu.sock");
    let listen = sockets.path().join("9p.sock");
    const WORKERS: usize = 4;
    let daemon = Killed(
        Command::new(BIN)
            .arg("--socket-path")
            .arg(&vhost)
            .arg(format!("--listen=unix:{}", listen.display()))
            .arg("--shared-dir")
            .arg(dir.path())
            .args(["--tag", "t", "--log-level", "warn", "--no-root-squash"])
            .arg(format!("--thread-pool-size={WORKERS}"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_for_socket(&vhost);
    common::wait_for_socket(&listen);
    let mut vmm = Vmm::connect(&vhost, 16 << 20, true);
    let slots: Vec<Slot> = (0..QSIZE)
        .map(|_| vmm.slot(Area::one(128), Area::one(128)))
        .collect();
    let write = |vmm: &Vmm, slot: &Slot, tag: u16, msg: Tmessage<'_>| {
        let mut frame = Vec::new();
        msg.encode(tag, &mut frame);
        vmm.write(slot.request, &frame);
    };
    let reply = |vmm: &Vmm, slot: &Slot| {
        let mut frame = vec![0u8; 128];
        vmm.read(slot.reply, &mut frame);
        let size = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        frame.truncate(size);
        frame
    };
    let call = |vmm: &mut Vmm, msg: Tmessage<'_>| {
        write(vmm, &slots[0], 1, msg);
        vmm.roundtrip(slots[0].head);
        let frame = reply(vmm, &slots[0]);
        let (tag, msg) = decode_rmessage(&frame).unwrap();
        assert!(tag == 1 && !matches!(msg, Rmessage::Lerror(_)), "{msg:?}");
    };
    let version = Tversion {
        msize: 8192,
        version: "9P2000.L".into(),
    };
    call(&mut vmm, Tmessage::Version(version));
    let attach = Tattach {
        fid: ROOT,
        afid: NOFID,
        uname: "root".into(),
        aname: "".into(),
        n_uname: Some(0),
    };
    call(&mut vmm, Tmessage::Attach(attach));
    let walk = Twalk {
        fid: ROOT,
        newfid: 2,
        names: WalkList::from_slice(&["f".into()]).unwrap(),
    };
    call(&mut vmm, Tmessage::Walk(walk));
    call(
        &mut vmm,
        Tmessage::Lopen(Tlopen {
            fid: 2,
            flags: O_RDWR,
        }),
    );
    // A host process (this one) locks all of f.
    let host = File::options()
        .read(true)
        .write(true)
        .open(dir.path().join("f"))
        .unwrap();
    ofd_lock(host.as_fd(), libc::F_WRLCK);
    let pid = common::serving_pid(daemon.0.id());
    let threads0 = status_field(pid, "Threads:");
    let rss0 = status_field(pid, "RssAnon:");
    // The whole queue: blocking write locks of byte 0 by one guest process.
    for (i, slot) in slots.iter().enumerate() {
        write(
            &vmm,
            slot,
            i as u16,
            Tmessage::Lock(tlock(2, 0, LOCK_FLAGS_BLOCK, 1)),
        );
        vmm.post(slot.head);
    }
    vmm.kick();
    let held_from = Instant::now();

    // A client of the --listen socket, meanwhile.
    let mut client = Peer::connect(&listen);
    client.use_file(&["d", "entry-000"], 0);
    let served_in = held_from.elapsed();
    let threads1 = status_field(pid, "Threads:");
    let rss1 = status_field(pid, "RssAnon:");
    drop(client);
    // The chains come back BLOCKED, a worker's worth at a time after
    // its grace period, while the host holds on.
    let mut statuses: Vec<Option<u8>> = vec![None; slots.len()];
    let take = |vmm: &mut Vmm, statuses: &mut Vec<Option<u8>>| {
        let mut heads = Vec::new();
        vmm.reap(|head, _| heads.push(head));
        for head in heads {
            let i = usize::from(head);
            let frame = reply(vmm, &slots[i]);
            assert_eq!(decode_rmessage(&frame).unwrap().0, i as u16, "reply tag");
            assert!(statuses[i].is_none(), "chain {head} returned twice");
            statuses[i] = Some(lock_status(&frame));
        }
    };
    vmm.wait();
    let first_in = held_from.elapsed();
    take(&mut vmm, &mut statuses);
    let early: Vec<u8> = statuses.iter().flatten().copied().collect();
    assert!(
        early.iter().all(|&s| s == LOCK_BLOCKED),
        "granted while the host holds the lock"
    );
    ofd_lock(host.as_fd(), libc::F_UNLCK);
    let released_after = held_from.elapsed();
    while statuses.iter().any(Option::is_none) {
        vmm.wait();
        take(&mut vmm, &mut statuses);
    }
    let drained_in = held_from.elapsed() - released_after;
    let blocked = statuses
        .iter()
        .filter(|&&s| s == Some(LOCK_BLOCKED))
        .count();
    eprintln!(
        "{QSIZE} blocking Tlocks on {WORKERS} workers: a --listen client served in \
         {served_in:.1?}; the first chains back (BLOCKED) after {first_in:.1?}, {} of them; \
         the host let go after {released_after:.1?}, the rest back {drained_in:.1?} later, \
         {blocked} BLOCKED in all; daemon threads {threads0} -> {threads1} with the client, \
         anonymous memory {rss0} -> {rss1} kB",
        early.len(),
    );
    assert!(
        served_in < first_in,
        "the client was served after the first worker was free"
    );
    assert_eq!(
        threads1,
        threads0 + 1,
        "threads but the client's connection's"
    );
    assert!(
        rss1 < rss0 + 8192,
        "{} kB more anonymous memory",
        rss1.saturating_sub(rss0)
    );
    // Granted once the host let go: BLOCKED only for those answered before
    // (and one in its grace period per worker then).
    assert!(
        blocked <= early.len() + WORKERS,
        "{blocked} BLOCKED, {} before the host let go",
        early.len()
    );
}

// ---- the socket transport ----

/// 1,000 idle connections to the daemon's `--listen unix:` socket, with
/// the default --max-connections (64): the first 64 are served, each
/// beyond is closed at once (its client reads end of file without sending
/// anything), the daemon's threads and memory grow only by what 64
/// connections take; once one leaves, a new client is served in its place.
#[test]
fn a_thousand_idle_connections() {
    let _s = serial();
    nofile_limit(); // room for the clients' 1,000 descriptors
    let dir = share();
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("9p.sock");
    let log_path = sockets.path().join("stderr");
    let daemon = Killed(
        Command::new(BIN)
            .arg(format!("--listen=unix:{}", socket.display()))
            .arg("--shared-dir")
            .arg(dir.path())
            .args(["--log-level", "warn", "--no-root-squash"])
            .stdin(Stdio::null())
            .stderr(File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    common::wait_for_socket(&socket);
    const SERVED: usize = 64; // --max-connections' default
    const CONNECTIONS: usize = 1000;
    // A first client, served and gone: the daemon is up and serving.
    let mut first = Peer::connect(&socket);
    first.mount();
    let pid = common::serving_pid(daemon.0.id());
    let with_first = status_field(pid, "Threads:");
    drop(first);
    wait_until("the first connection's thread ends", || {
        status_field(pid, "Threads:") < with_first
    });
    let threads0 = status_field(pid, "Threads:");
    let rss0 = status_field(pid, "VmRSS:");
    let started = Instant::now();
    let mut peers: Vec<Peer> = (0..CONNECTIONS).map(|_| Peer::connect(&socket)).collect();
    let connected_in = started.elapsed();
    // Accepted in order: those beyond the first 64 are closed.
    let closed = |peer: &mut Peer| {
        let mut byte = [0u8; 1];
        match peer.stream.read(&mut byte) {
            Ok(n) => n == 0,
            Err(e) => e.raw_os_error() == Some(libc::ECONNRESET),
        }
    };
    for (i, peer) in peers.iter_mut().enumerate().skip(SERVED) {
        assert!(closed(peer), "connection {i} not closed");
    }
    let refused_in = started.elapsed();
    let threads1 = status_field(pid, "Threads:");
    let rss1 = status_field(pid, "VmRSS:");
    // Those served answer, idle as they were.
    for peer in &mut peers[..SERVED] {
        peer.mount();
    }
    eprintln!(
        "{CONNECTIONS} connections in {connected_in:.1?}, those refused closed within \
         {refused_in:.1?}; daemon threads {threads0} -> {threads1}, resident {rss0} -> {rss1} kB"
    );
    assert_eq!(threads1, threads0 + SERVED as u64, "daemon threads");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "{} kB more resident for {SERVED} idle connections",
        rss1.saturating_sub(rss0)
    );
    // One leaves; once its thread has ended, a new client is served in its
    // place, and the next is refused again.
    peers.truncate(SERVED);
    drop(peers.remove(0));
    wait_until("the connection's thread ends", || {
        status_field(pid, "Threads:") < threads1
    });
    let mut new = Peer::connect(&socket);
    new.use_file(&["f"], 0);
    assert!(
        closed(&mut Peer::connect(&socket)),
        "one more than 64 served"
    );
    drop((new, peers));
    wait_until("every connection's thread ends", || {
        status_field(pid, "Threads:") == threads0
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warnings = log.matches("refusing 9P connection").count() as u64;
    let most = (started.elapsed().as_secs() + 1) * u64::from(vhost_user_9p::ratelimit::PER_SECOND);
    assert!(
        (1..=most).contains(&warnings),
        "{warnings} warnings for {} refused connections:\n{log}",
        CONNECTIONS - SERVED + 1
    );
}

/// Peers that announce a 4 MiB message and send it a byte at a time (a
/// real one would send a byte a second): the daemon takes each byte as it
/// comes and holds next to nothing for them, the announced size is never
/// allocated, and another connection is served meanwhile.
///
/// Each byte is sent once the server has taken the one before (the server's
/// end of the connection has nothing unread), so when the test measures,
/// each connection's thread has read the size and the header that follows
/// and is waiting for the body.
#[test]
fn peers_sending_a_4_mib_message_a_byte_at_a_time_hold_little() {
    let _s = serial();
    let dir = share();
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    const PEERS: usize = 16;
    const ANNOUNCED: u32 = 4 << 20;
    // A Twrite of 4 MiB: its size, type, tag, fid, offset and count, then
    // the first bytes of its data.
    let mut message = ANNOUNCED.to_le_bytes().to_vec();
    message.push(Twrite::TYPE);
    message.extend_from_slice(&1u16.to_le_bytes());
    message.extend_from_slice(&ROOT.to_le_bytes());
    message.extend_from_slice(&0u64.to_le_bytes());
    message.extend_from_slice(&(ANNOUNCED - 23).to_le_bytes());
    message.resize(64, b'x');
    let (rss0, heap0) = (rss(), allocated());
    let mut peers: Vec<_> = (0..PEERS).map(|_| Peer::served_by(&server)).collect();
    let started = Instant::now();
    for byte in message.chunks(1) {
        for (peer, _, _) in &mut peers {
            peer.stream.write_all(byte).unwrap();
        }
        for (_, unread_by_server, _) in &peers {
            wait_until("the server takes the byte", || {
                unread(unread_by_server.as_fd()) == 0
            });
        }
        // Paces the sender (a slow peer).
        std::thread::sleep(Duration::from_millis(5));
    }
    let (rss1, heap1) = (rss(), allocated());
    // Another connection is served meanwhile.
    let (mut other, _, other_thread) = Peer::served_by(&server);
    other.use_file(&["f"], 0);
    eprintln!(
        "{PEERS} peers a byte at a time ({} bytes in {:.1?}): {} resident, {} allocated",
        message.len(),
        started.elapsed(),
        mib(rss1.saturating_sub(rss0)),
        mib(heap1.saturating_sub(heap0)),
    );
    // The announced size taken at its word would be 64 MiB.
    assert!(
        heap1.saturating_sub(heap0) < MIB,
        "{} allocated for {PEERS} peers",
        mib(heap1.saturating_sub(heap0))
    );
    assert!(
        rss1.saturating_sub(rss0) < 8 * MIB,
        "{} resident for {PEERS} peers",
        mib(rss1.saturating_sub(rss0))
    );
    // They go; their connections end with an error (the frame was cut).
    for (peer, _, thread) in peers {
        drop(peer);
        assert!(thread.join().unwrap().is_err());
    }
    drop(other);
    other_thread.join().unwrap().unwrap();
}

/// Log records captured in this process (warnings and worse).
fn captured() -> &'static Mutex<Vec<String>> {
    struct Capture;
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Warn
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
                lines.push(record.args().to_string());
            }
        }
        fn flush(&self) {}
    }
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
    &LINES
}

/// Sends Tversion over `stream` and reads the reply: whether one came.
fn version_reply(stream: &mut UnixStream) -> bool {
    let mut frame = Vec::new();
    let version = Tversion {
        msize: 8192,
        version: "9P2000.L".into(),
    };
    Tmessage::Version(version).encode(NOTAG, &mut frame);
    if stream.write_all(&frame).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if stream.read_exact(&mut size).is_err() {
        return false;
    }
    let mut rest = vec![0u8; u32::from_le_bytes(size) as usize - 4];
    stream.read_exact(&mut rest).is_ok() && rest[0] == Rversion::TYPE
}

/// Beyond --max-connections a connection is closed at once (the client
/// reads end of file), those served go on, a slot is freed when a
/// connection ends, and the warnings about refused ones are rate-limited.
#[test]
fn connections_beyond_the_bound_are_closed_at_once() {
    let _s = serial();
    let lines = captured();
    let dir = share();
    let mut config = config(dir.path());
    config.max_connections = 2;
    let server = Arc::new(Server::new(&config).unwrap());
    let socket = dir.path().join("9p.sock");
    let address = ListenAddress::Unix(socket.clone());
    let listener = SocketListener::bind(&address, &SocketAccess::default()).unwrap();
    std::thread::spawn(move || listener.serve(server));
    let connect = || {
        let stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    };
    let mut a = connect();
    let mut b = connect();
    assert!(version_reply(&mut a));
    assert!(version_reply(&mut b));
    // The third: closed before it could send anything.
    let started = Instant::now();
    let mut c = connect();
    let mut byte = [0u8; 1];
    assert!(matches!(c.read(&mut byte), Ok(0) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(2));
    // A flood of them: a few warnings, not one each.
    lines.lock().unwrap().clear();
    let started = Instant::now();
    for _ in 0..300 {
        let mut refused = connect();
        assert!(matches!(refused.read(&mut byte), Ok(0) | Err(_)));
    }
    let seconds = started.elapsed().as_secs() + 1;
    let warnings = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("refusing 9P connection"))
        .count() as u64;
    let most = seconds * u64::from(vhost_user_9p::ratelimit::PER_SECOND);
    assert!(
        (1..=most).contains(&warnings),
        "{warnings} warnings for 300 refused connections in {seconds} s"
    );
    // Those served are unaffected; one ending frees its slot.
    assert!(version_reply(&mut b));
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = connect();
        if version_reply(&mut d) {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- the vhost-user transport's warnings ----

/// A guest sending malformed chains by the hundred gets a few warning
/// lines logged, not one each (and the daemon serves on).
#[test]
fn a_flood_of_bad_chains_logs_a_few_warnings() {
    let _s = serial();
    let dir = share();
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("vu.sock");
    let log_path = sockets.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vhost-user-9p"))
        .arg("--socket-path")
        .arg(&socket)
        .arg("--shared-dir")
        .arg(dir.path())
        .args([
            "--tag",
            "t",
            "--log-level",
            "warn",
            "--thread-pool-size",
            "2",
        ])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    common::wait_for_socket(&socket);
    let started = Instant::now();
    {
        let mut vmm = common::Vmm::connect(&socket, 16 << 20, true);
        // Three readable bytes: shorter than a 9P header.
        let short = vmm.slot(common::Area::one(3), common::Area::one(64));
        vmm.write(short.request, &[1, 2, 3]);
        for _ in 0..500 {
            assert_eq!(vmm.roundtrip(short.head), 0);
        }
        // The daemon still answers a good request.
        let mut client = common::Client::new(vmm);
        client.mount(8192, ROOT);
    }
    let seconds = started.elapsed().as_secs() + 1;
    let status = child.wait().unwrap();
    assert!(status.success(), "daemon: {status}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warnings = log.matches("shorter than a 9P header").count() as u64;
    let most = seconds * u64::from(vhost_user_9p::ratelimit::PER_SECOND);
    assert!(
        (1..=most).contains(&warnings),
        "{warnings} warnings for 500 short requests in {seconds} s:\n{log}"
    );
}
