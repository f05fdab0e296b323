//! Random request sequences, as a hostile or broken client might send them,
//! through the socket transport's connection loop into the server: well
//! framed messages with random fids, names (`..`, `/`, NUL, control names,
//! symlinks that lead out of the share), flags, modes, offsets and sizes,
//! in each dialect and security model, with few descriptors for the fids.
//! Every request gets one well-formed reply with its tag, in order, and
//! nothing hangs, panics or leaks a descriptor; nothing outside the share
//! changes.

#[path = "../common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::client::Client as Wire;
use common::inproc::InProc;
use common::proc::own_open_fds;
use common::{Area, Slot, Vmm};
use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, SecurityModel, Server};
use vhost_user_9p::socket::serve_connection;

mod generate;
mod sessions;
mod virtqueue;

use generate::random_request;

/// xorshift64*: the same sequence for a seed on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A fid number out of nowhere.
    fn wild_fid(&mut self) -> u32 {
        if self.chance(50) {
            self.pick(&[NOFID, u32::MAX - 1, 1 << 31])
        } else {
            self.below(12) as u32
        }
    }

    fn u32_from(&mut self, common: &[u32]) -> u32 {
        if self.chance(10) {
            self.next() as u32
        } else {
            self.pick(common)
        }
    }

    fn u64_from(&mut self, common: &[u64]) -> u64 {
        if self.chance(10) {
            self.next()
        } else {
            self.pick(common)
        }
    }
}

/// The fids the session holds, as far as the replies tell.
#[derive(Default)]
struct Fids {
    live: Vec<u32>,
    open: Vec<u32>,
    /// The msize the last Rversion gave.
    msize: u32,
}

impl Fids {
    /// Mostly a fid the session holds; now and then any number.
    fn any(&self, rng: &mut Rng) -> u32 {
        if self.live.is_empty() || rng.chance(8) {
            rng.wild_fid()
        } else {
            rng.pick(&self.live)
        }
    }

    /// Mostly an open fid, for reads and writes.
    fn opened(&self, rng: &mut Rng) -> u32 {
        if self.open.is_empty() || rng.chance(20) {
            self.any(rng)
        } else {
            rng.pick(&self.open)
        }
    }

    /// Mostly a number not in use, for a new fid.
    fn fresh(&self, rng: &mut Rng) -> u32 {
        if rng.chance(15) {
            return self.any(rng);
        }
        (0..)
            .find(|n| !self.live.contains(n) && rng.chance(60))
            .unwrap()
    }

    fn add(&mut self, fid: u32) {
        if !self.live.contains(&fid) {
            self.live.push(fid);
        }
    }

    fn forget(&mut self, fid: u32) {
        self.live.retain(|&f| f != fid);
        self.open.retain(|&f| f != fid);
    }

    /// What `reply` to `sent` did to the session's fids.
    fn update(&mut self, sent: &Sent, reply: &[u8]) {
        let ok = reply[4] == sent.ty + 1;
        match sent.ty {
            // A clunk or remove frees the fid whatever the outcome.
            120 | 122 => self.forget(sent.fid),
            100 if ok => {
                *self = Fids {
                    msize: u32::from_le_bytes(reply[7..11].try_into().unwrap()),
                    ..Fids::default()
                }
            }
            104 if ok => self.add(sent.fid),
            30 | 110 if ok => {
                if sent.newfid != sent.fid {
                    self.forget(sent.newfid);
                }
                self.add(sent.newfid);
            }
            12 | 14 | 112 | 114 if ok => self.open.push(sent.fid),
            _ => {}
        }
    }
}

/// What `random_request` sent.
struct Sent {
    ty: u8,
    fid: u32,
    newfid: u32,
}

/// Walk and create names: the share's entries (often), and names no
/// client should get anywhere with.
const NAMES: &[&[u8]] = &[
    b"a",
    b"a",
    b"b",
    b"d",
    b"d",
    b"e",
    b"p",
    b"p",
    b"new",
    b"new2",
    b"out_rel",
    b"out_abs",
    b"up",
    b"self",
    b"long",
    b"..",
    b"..",
    b".",
    b"",
    b"/",
    b"x/y",
    b"a\0b",
    b",ctl",
    b",nofollow",
    b",",
    b",ctl,nofollow",
    b"../outside",
    b"\xff\xfe",
];

const CTL_COMMANDS: &[&str] = &[
    "chmod 0755",
    "chmod 07777",
    "chown 0 0",
    "chown 4294967295 1",
    "utimes 0 0",
    "truncate 0",
    "truncate 18446744073709551615",
    "symlink ../outside/secret s1",
    "symlink /outside s2",
    "link a hard",
    "link ../outside/secret hard2",
    "rename a ../outside/moved",
    "rename d/e moved",
    "rename new a",
    "mknod n c 0666 1 3",
    "mknod q p 0644 0 0",
    "mknod r f 0644 0 0",
    "bogus",
    "chmod",
];

/// Everything under `dir`: path, type and mode, owner, size, content or
/// link target, modification time.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = if meta.file_type().is_symlink() {
            std::fs::read_link(&path).unwrap().display().to_string()
        } else if meta.is_file() {
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
        } else {
            String::new()
        };
        out.push(format!(
            "{} {:o} {}:{} {} {:?} {}",
            path.display(),
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.len(),
            content,
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
        ));
        if meta.is_dir() {
            out.extend(snapshot(&path));
        }
    }
    out
}

/// The content of a file outside the share, which no reply may carry.
const SECRET: &[u8] = b"outside-the-share-7c1e0f";

/// The share each session starts from, beside a directory it must not
/// reach.
fn make_tree(top: &Path) -> PathBuf {
    let share = top.join("share");
    let outside = top.join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    std::fs::create_dir(&share).unwrap();
    restock(&share, &outside);
    share
}

/// Puts back the share's first entries that the session removed or
/// renamed (from the host, while the session goes on), so that requests
/// keep meeting them: files, a directory, a fifo, symlinks out of the
/// share and a symlink loop.
fn restock(share: &Path, outside: &Path) {
    let _ = std::fs::create_dir(share.join("d"));
    // Into d only if it is still a directory: the session may have made it
    // a symlink out of the share.
    let d_is_dir = std::fs::symlink_metadata(share.join("d")).is_ok_and(|m| m.is_dir());
    let files = [
        ("a", &b"content of a"[..]),
        ("b", &[7u8; 70_000]),
        ("d/e", b"e"),
    ];
    for (name, content) in files {
        if std::fs::symlink_metadata(share.join(name)).is_err() && (d_is_dir || name != "d/e") {
            let _ = std::fs::write(share.join(name), content);
        }
    }
    let long_target = "x/".repeat(2047) + "x";
    let links = [
        ("out_rel", Path::new("../outside")),
        ("out_abs", outside),
        ("up", Path::new("../../..")),
        ("self", Path::new("self")),
        // The longest target a host symlink may have.
        ("long", Path::new(&long_target)),
    ];
    for (name, target) in links {
        let _ = std::os::unix::fs::symlink(target, share.join(name));
    }
    let fifo = std::ffi::CString::new(share.join("p").into_os_string().into_encoded_bytes());
    // SAFETY: a valid C string.
    unsafe { libc::mkfifo(fifo.unwrap().as_ptr(), 0o666) };
}

/// Checks a reply: decodable, with the request's tag, of the request's
/// reply type or the dialect's error (which carries an error).
fn check_reply(context: &str, dialect: &str, tag: u16, ty: u8, frame: &[u8]) {
    let (reply_tag, reply) =
        decode_rmessage(frame).unwrap_or_else(|e| panic!("{context}: undecodable reply: {e:?}"));
    assert_eq!(reply_tag, tag, "{context}");
    let error_type = if dialect == "9P2000.L" {
        Rlerror::TYPE
    } else {
        Rerror::TYPE
    };
    assert!(
        frame[4] == ty + 1 || frame[4] == error_type,
        "{context}: reply type {}",
        frame[4]
    );
    match reply {
        Rmessage::Lerror(e) => assert_ne!(e.ecode, 0, "{context}: Rlerror 0"),
        Rmessage::Error(e) => assert!(!e.ename.as_bytes().is_empty(), "{context}: empty Rerror"),
        _ => {}
    }
}

/// The next request of a session: a Tversion first and now and then, a
/// Tattach whenever the session holds no fid (and now and then), else a
/// random request.
fn next_request(
    rng: &mut Rng,
    fids: &Fids,
    dialect: &str,
    first: bool,
    msizes: &[u32],
    tag: u16,
    frame: &mut Vec<u8>,
) -> Sent {
    frame.clear();
    if first || rng.chance(1) {
        let version = Tversion {
            msize: rng.pick(msizes),
            version: dialect.into(),
        };
        Tmessage::Version(version).encode(NOTAG, frame);
        patch_size(frame, 0);
        Sent {
            ty: Tversion::TYPE,
            fid: NOFID,
            newfid: NOFID,
        }
    } else if fids.live.is_empty() || rng.chance(2) {
        let fid = fids.fresh(rng);
        let attach = Tattach {
            fid,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: (dialect != "9P2000").then_some(0),
        };
        Tmessage::Attach(attach).encode(tag, frame);
        patch_size(frame, 0);
        Sent {
            ty: Tattach::TYPE,
            fid,
            newfid: fid,
        }
    } else {
        random_request(rng, fids, dialect, tag, frame)
    }
}

/// Checks a reply to `sent` (sent with `tag`), and that it carries nothing
/// from outside the share.
fn check(context: &str, dialect: &str, tag: u16, sent: &Sent, reply: &[u8]) {
    let tag = if sent.ty == Tversion::TYPE {
        NOTAG
    } else {
        tag
    };
    check_reply(context, dialect, tag, sent.ty, reply);
    assert!(
        !reply.windows(SECRET.len()).any(|w| w == SECRET),
        "{context}: a reply carries a file from outside the share"
    );
}

/// The tests count the process's descriptors: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session's configuration for `seed`: passthrough or mapped-xattr, the
/// control namespace for the Plan 9 dialects, and few descriptors for the
/// fids (idle ones are closed and found again by path all the time).
fn config_for(seed: u64, dialect: &str, share: &Path) -> Config {
    let mut config = Config::new(share);
    config.security_model = if seed % 4 < 2 {
        SecurityModel::Passthrough
    } else {
        SecurityModel::MappedXattr
    };
    config.ctl = dialect != "9P2000.L";
    config.fid_descriptors = Some(if seed % 2 == 0 { 4 } else { 64 });
    config
}

/// Runs `session` on a fresh share; then nothing outside the share has
/// changed and no descriptor is left open.
fn on_fresh_share<T>(seed: u64, dialect: &str, session: impl FnOnce(Config) -> T) -> T {
    // The server's two process-lifetime descriptors (/proc/self/fd and
    // the working directory) are open before counting.
    vhost_user_9p::server::host::init().unwrap();
    let descriptors_before = own_open_fds();
    let top = tempfile::tempdir().unwrap();
    let share = make_tree(top.path());
    let outside_before = snapshot(&top.path().join("outside"));
    let result = session(config_for(seed, dialect, &share));
    assert_eq!(
        snapshot(&top.path().join("outside")),
        outside_before,
        "seed {seed} ({dialect}): outside the share changed"
    );
    let mut top_level: Vec<String> = std::fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top_level.sort();
    assert_eq!(top_level, ["outside", "share"], "seed {seed} ({dialect})");
    assert_eq!(
        own_open_fds(),
        descriptors_before,
        "seed {seed} ({dialect}): descriptors left open after the session"
    );
    result
}

const DIALECTS: [&str; 3] = ["9P2000.L", "9P2000.u", "9P2000"];
