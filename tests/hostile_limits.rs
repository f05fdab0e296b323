//! Bounds on what a 9P client controls: every resource a hostile or broken
//! client can make the daemon hold is bounded, and going over a bound is
//! answered with the errno a host filesystem would give (never a dead
//! daemon or unbounded memory), while another session goes on working.
//! The bounds are set small here (`server::Config`); the defaults are
//! generous.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, Server, Session};
use vhost_user_9p::socket::{
    serve_connection, serve_frame, ListenAddress, SocketAccess, SocketListener,
};

const ROOT: u32 = 1;
const O_RDWR: u32 = 2;
const WRLCK: u8 = 1;
const LOCK_SUCCESS: u8 = 0;

/// The tests measure the process's memory and descriptors: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One session of an in-process server, through the socket transport's
/// frame handling.
struct Conn<'a> {
    server: &'a Server,
    session: Session,
    frame: Vec<u8>,
    reply: Vec<u8>,
    data: Vec<u8>,
}

impl<'a> Conn<'a> {
    /// A session of `dialect`, attached at fid ROOT.
    fn with_dialect(server: &'a Server, dialect: &str) -> Conn<'a> {
        let mut conn = Conn {
            server,
            session: Session::new(),
            frame: Vec::new(),
            reply: Vec::new(),
            data: Vec::new(),
        };
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

    fn clunk(&mut self, fid: u32) -> Result<(), i32> {
        self.call(Tmessage::Clunk(Tclunk { fid })).map(drop)
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> Result<(), i32> {
        self.call(Tmessage::Lopen(Tlopen { fid, flags })).map(drop)
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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    common::Rss::of(std::process::id()).total * 1024
}

/// Bytes the allocator has handed out (heap and mmapped chunks).
fn allocated() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A share with a file `f` and a directory `d` of 20 empty files.
fn share() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for i in 0..20 {
        std::fs::write(dir.path().join("d").join(format!("entry-{i:03}")), b"").unwrap();
    }
    dir
}

fn config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    // Few descriptors for the fids: idle ones are closed early.
    config.fid_descriptors = Some(4000);
    config
}

// ---- fids ----

/// A session at its bound of fids gets EMFILE for every new fid number
/// (Tattach, Twalk, Txattrwalk), while replacing a fid (a walk onto
/// itself, Tlcreate) still works; a clunk makes room; another session has
/// a bound of its own.
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
    // A clunk makes room for one.
    conn.clunk(10).unwrap();
    conn.walk(ROOT, 65, &["f"]).unwrap();
    assert_eq!(conn.walk(ROOT, 66, &["f"]), Err(libc::EMFILE));
    // Tversion starts over.
    conn.version("9P2000.L");
    conn.attach(ROOT).unwrap();
    conn.walk(ROOT, 2, &["f"]).unwrap();
}

/// Memory per idle fid (its descriptor closed), over 100,000 of them; and a
/// client that keeps walking to new fids past its bound holds no more.
#[test]
fn idle_fids_cost_little_and_a_flood_is_bounded() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    config.max_fids = 102_001;
    let server = Server::new(&config).unwrap();
    let mut conn = Conn::new(&server);
    const WARM: u32 = 2000;
    const N: u32 = 100_000;
    for fid in 2..2 + WARM {
        conn.walk(ROOT, fid, &["f"]).unwrap();
    }
    let (rss0, heap0) = (rss(), allocated());
    for fid in 2 + WARM..2 + WARM + N {
        conn.walk(ROOT, fid, &["f"]).unwrap();
    }
    let (rss1, heap1) = (rss(), allocated());
    let per_fid = (heap1 - heap0) / u64::from(N);
    eprintln!(
        "per idle fid: {} bytes resident, {per_fid} bytes allocated",
        rss1.saturating_sub(rss0) / u64::from(N),
    );
    assert!(per_fid < 1024, "{per_fid} bytes per idle fid");
    // At the bound: 50,000 more walks to new fids are all refused and
    // allocate nothing that stays.
    for fid in 200_000..250_000 {
        assert_eq!(conn.walk(ROOT, fid, &["f"]), Err(libc::EMFILE));
    }
    let grown = allocated().saturating_sub(heap1);
    assert!(grown < 1 << 20, "{grown} bytes more after refused walks");
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

// ---- directory cursors ----

/// An open directory that was read costs a few KiB, not 64.
#[test]
fn open_directories_cost_little() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    // Every directory stays open: more than half the descriptor budget,
    // the default bound on one session's open files.
    config.max_open_files = Some(1 << 20);
    let server = Server::new(&config).unwrap();
    let mut conn = Conn::new(&server);
    const N: u32 = 4000;
    for fid in 10..110 {
        conn.walk(ROOT, fid, &["d"]).unwrap();
        conn.lopen(fid, 0).unwrap();
        assert_eq!(conn.readdir(fid, 0, 8192).unwrap().len(), 22);
    }
    let (rss0, heap0) = (rss(), allocated());
    for fid in 110..110 + N {
        conn.walk(ROOT, fid, &["d"]).unwrap();
        conn.lopen(fid, 0).unwrap();
        assert_eq!(conn.readdir(fid, 0, 8192).unwrap().len(), 22);
    }
    let (rss1, heap1) = (rss(), allocated());
    let per_dir = (heap1 - heap0) / u64::from(N);
    eprintln!(
        "per open directory: {} bytes resident, {per_dir} bytes allocated",
        rss1.saturating_sub(rss0) / u64::from(N),
    );
    assert!(per_dir < 8192, "{per_dir} bytes per open directory");
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
/// may hold: with 200 of them, idle fids give theirs up sooner, and the
/// process holds no more descriptors than the budget allows.
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
    for proc_id in 1..=200 {
        assert_eq!(
            conn.lock(2, u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
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

// ---- the socket transport ----

/// A peer that announces a 4 MiB message and sends nothing more costs the
/// daemon next to nothing while it waits (it used to cost the 4 MiB).
#[test]
fn idle_peers_announcing_large_messages_hold_little() {
    let _s = serial();
    let dir = share();
    let server = Arc::new(Server::new(&config(dir.path())).unwrap());
    const PEERS: usize = 16;
    let rss0 = rss();
    let mut peers = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..PEERS {
        let (mut peer, server_end) = UnixStream::pair().unwrap();
        let server = Arc::clone(&server);
        threads.push(std::thread::spawn(move || {
            serve_connection(&server, Box::new(server_end))
        }));
        // A Twrite of 4 MiB: its header and a few bytes, then nothing.
        let mut head = (4u32 << 20).to_le_bytes().to_vec();
        head.extend_from_slice(&[Twrite::TYPE, 1, 0, 0, 0, 0, 0]);
        peer.write_all(&head).unwrap();
        peers.push(peer);
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown = rss().saturating_sub(rss0);
    eprintln!("{PEERS} idle peers: {} KiB resident", grown >> 10);
    assert!(
        grown < 8 << 20,
        "{} KiB for {PEERS} idle peers",
        grown >> 10
    );
    // They go; their connections end with an error (the frame was cut).
    drop(peers);
    for thread in threads {
        assert!(thread.join().unwrap().is_err());
    }
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
