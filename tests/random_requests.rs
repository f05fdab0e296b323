//! Random request sequences, as a hostile or broken client might send them,
//! through the socket transport's connection loop into the server: well
//! framed messages with random fids, names (`..`, `/`, NUL, control names,
//! symlinks that lead out of the share), flags, modes, offsets and sizes,
//! in each dialect and security model, with few descriptors for the fids.
//! Every request gets one well-formed reply with its tag, in order, and
//! nothing hangs, panics or leaks a descriptor; nothing outside the share
//! changes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::{Area, Slot, Vmm};
use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, SecurityModel, Server, Session};
use vhost_user_9p::socket::{serve_connection, serve_frame};

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

/// One random request of the session's dialect on the session's `fids`
/// (mostly), framed with `tag`.
fn random_request(rng: &mut Rng, fids: &Fids, dialect: &str, tag: u16, out: &mut Vec<u8>) -> Sent {
    let long = vec![b'z'; 300];
    let name = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(100) {
            0..=2 => long.clone(),
            3..=22 => format!("n{}", rng.below(40)).into_bytes(),
            _ => rng.pick(NAMES).to_vec(),
        }
    };
    let (n1, n2) = (name(rng), name(rng));
    let names: Vec<Vec<u8>> = (0..rng.pick(&[0, 1, 1, 2, 3, 16]))
        .map(|_| name(rng))
        .collect();
    let walk: Vec<Str<'_>> = names.iter().map(|n| Str(n)).collect();
    let open_flags = [
        0,
        1,
        2,
        0o1000,
        0o2000,
        0o200,
        0o4000,
        0o200000,
        2 | 0o1000,
        0o100,
    ];
    let modes = [
        0o644, 0o755, 0o7777, 0, 0o40755, 0o10644, 0o20666, 0o60666, 0o140755,
    ];
    let offsets = [0, 1, 4096, 1 << 20, 1 << 40, u64::MAX, i64::MAX as u64];
    let counts = [0, 1, 100, 4096, 65536, u32::MAX];
    let targets: [&[u8]; 5] = [b"a", b"../outside/secret", b"/outside", b"d/e", b""];
    let target = rng.pick(&targets);
    let xattrs: [&[u8]; 6] = [
        b"user.x",
        b"security.capability",
        b"",
        b"trusted.t",
        b"system.posix_acl_access",
        b"user.virtfs.mode",
    ];
    let xattr = rng.pick(&xattrs);
    let unix = dialect == "9P2000.u";
    let ext_strings: [&[u8]; 5] = [b"a", b"c 1 3", b"b 1 5", b"3", b"junk"];
    let extension = rng.pick(&ext_strings);
    let ctl = CTL_COMMANDS[rng.below(CTL_COMMANDS.len() as u64) as usize];
    let payload: Vec<u8> = if rng.chance(40) {
        format!("{ctl}\n").into_bytes()
    } else {
        (0..rng.below(9000)).map(|_| rng.next() as u8).collect()
    };
    let linux = [
        12u8, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76, 8,
    ];
    let plan9 = [112u8, 114, 124, 126];
    let common = [104u8, 108, 110, 110, 110, 116, 118, 120, 122, 102];
    let ty = match rng.below(10) {
        0..=4 => rng.pick(&common),
        _ if dialect == "9P2000.L" => rng.pick(&linux),
        _ => rng.pick(&plan9),
    };
    let fid = if matches!(ty, 116 | 118) {
        fids.opened(rng)
    } else if matches!(ty, 102 | 104) {
        fids.fresh(rng)
    } else {
        fids.any(rng)
    };
    let (other, newfid) = (fids.any(rng), fids.fresh(rng));
    let stat = Stat {
        ty: rng.u32_from(&[u16::MAX as u32, 0]) as u16,
        dev: rng.u32_from(&[u32::MAX, 0]),
        qid: Qid {
            ty: u8::MAX,
            version: u32::MAX,
            path: u64::MAX,
        },
        mode: rng.u32_from(&[u32::MAX, 0o644, 0x8000_01ff, 0o7777]),
        atime: rng.u32_from(&[u32::MAX, 0]),
        mtime: rng.u32_from(&[u32::MAX, 0]),
        length: rng.u64_from(&[u64::MAX, 0, 10]),
        name: Str(if rng.chance(70) { b"" } else { &n2 }),
        uid: Str(rng.pick(&[&b""[..], b"root", b"nobody"])),
        gid: Str(b""),
        muid: Str(b""),
        ext: unix.then_some(StatExtension {
            extension: Str(b""),
            n_uid: rng.u32_from(&[u32::MAX, 0, 65534]),
            n_gid: u32::MAX,
            n_muid: u32::MAX,
        }),
    };
    let msg = match ty {
        12 => Tmessage::Lopen(Tlopen {
            fid,
            flags: rng.u32_from(&open_flags),
        }),
        14 => Tmessage::Lcreate(Tlcreate {
            fid,
            name: Str(&n1),
            flags: rng.u32_from(&open_flags),
            mode: rng.u32_from(&modes),
            gid: rng.u32_from(&[0, 65534]),
        }),
        16 => Tmessage::Symlink(Tsymlink {
            fid,
            name: Str(&n1),
            symtgt: Str(target),
            gid: 0,
        }),
        18 => Tmessage::Mknod(Tmknod {
            dfid: fid,
            name: Str(&n1),
            mode: rng.u32_from(&modes),
            // 1:3 and 1:5 are /dev/null and /dev/zero.
            major: 1,
            minor: rng.pick(&[3, 5]),
            gid: 0,
        }),
        20 => Tmessage::Rename(Trename {
            fid,
            dfid: other,
            name: Str(&n1),
        }),
        22 => Tmessage::Readlink(Treadlink { fid }),
        24 => Tmessage::Getattr(Tgetattr {
            fid,
            request_mask: rng.u64_from(&[0x3fff, 0, u64::MAX]),
        }),
        26 => Tmessage::Setattr(Tsetattr {
            fid,
            valid: rng.u32_from(&[1, 2, 4, 8, 0x10, 0x20, 0x80, 0x100, 0x1ff]),
            mode: rng.u32_from(&modes),
            uid: rng.u32_from(&[0, 65534, u32::MAX]),
            gid: rng.u32_from(&[0, 65534]),
            size: rng.u64_from(&[0, 10, 1 << 30, u64::MAX]),
            atime_sec: rng.u64_from(&[0, u64::MAX]),
            atime_nsec: rng.u64_from(&[0, 999_999_999, u64::MAX]),
            mtime_sec: 0,
            mtime_nsec: rng.u64_from(&[0, 1 << 40]),
        }),
        30 => Tmessage::Xattrwalk(Txattrwalk {
            fid,
            newfid,
            name: Str(xattr),
        }),
        32 => Tmessage::Xattrcreate(Txattrcreate {
            fid,
            name: Str(xattr),
            attr_size: rng.u64_from(&[0, 10, 65536, 65537, 1 << 40, u64::MAX]),
            flags: rng.u32_from(&[0, 1, 2, 3]),
        }),
        40 => Tmessage::Readdir(Treaddir {
            fid,
            offset: rng.u64_from(&offsets),
            count: rng.u32_from(&counts),
        }),
        50 => Tmessage::Fsync(Tfsync {
            fid,
            datasync: rng.u32_from(&[0, 1]),
        }),
        52 => Tmessage::Lock(Tlock {
            fid,
            lock_type: rng.pick(&[0, 1, 2, 3, 255]),
            flags: rng.u32_from(&[0, 1, 2]),
            start: rng.u64_from(&offsets),
            length: rng.u64_from(&[0, 1, u64::MAX]),
            proc_id: rng.u32_from(&[1, 2]),
            client_id: Str(b"c"),
        }),
        54 => Tmessage::Getlock(Tgetlock {
            fid,
            lock_type: rng.pick(&[0, 1, 2, 3]),
            start: rng.u64_from(&offsets),
            length: rng.u64_from(&[0, 1, u64::MAX]),
            proc_id: rng.u32_from(&[1, 2]),
            client_id: Str(b"c"),
        }),
        70 => Tmessage::Link(Tlink {
            dfid: fid,
            fid: other,
            name: Str(&n1),
        }),
        72 => Tmessage::Mkdir(Tmkdir {
            dfid: fid,
            name: Str(&n1),
            mode: rng.u32_from(&modes),
            gid: 0,
        }),
        74 => Tmessage::Renameat(Trenameat {
            olddirfid: fid,
            oldname: Str(&n1),
            newdirfid: other,
            newname: Str(&n2),
        }),
        76 => Tmessage::Unlinkat(Tunlinkat {
            dirfid: fid,
            name: Str(&n1),
            flags: rng.u32_from(&[0, 0x200]),
        }),
        8 => Tmessage::Statfs(Tstatfs { fid }),
        102 => Tmessage::Auth(Tauth {
            afid: fid,
            uname: Str(b"root"),
            aname: Str(b""),
            n_uname: (dialect != "9P2000").then_some(0),
        }),
        104 => Tmessage::Attach(Tattach {
            fid,
            afid: rng.u32_from(&[NOFID, 0]),
            uname: Str(rng.pick(&[&b"root"[..], b"nobody", b"u"])),
            aname: Str(rng.pick(&[&b""[..], b"x", b"/", b".."])),
            n_uname: (dialect != "9P2000").then(|| rng.u32_from(&[0, 65534, u32::MAX])),
        }),
        108 => Tmessage::Flush(Tflush {
            oldtag: rng.below(5) as u16,
        }),
        110 => Tmessage::Walk(Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&walk).unwrap(),
        }),
        112 => Tmessage::Open(Topen {
            fid,
            mode: rng.pick(&[0, 1, 2, 3, 0x10, 0x40, 0x11, 0xff]),
        }),
        114 => Tmessage::Create(Tcreate {
            fid,
            name: Str(&n1),
            perm: rng.u32_from(&[
                0o644,
                0x8000_01ed,
                0x0200_01ff,
                0x0100_01ff,
                0x0080_01b6,
                0x0020_01a4,
                0x0010_01a4,
            ]),
            mode: rng.pick(&[0, 1, 2, 0x10, 0x40]),
            extension: unix.then_some(Str(extension)),
        }),
        116 => Tmessage::Read(Tread {
            fid,
            offset: rng.u64_from(&offsets),
            count: rng.u32_from(&counts),
        }),
        118 => Tmessage::Write(Twrite {
            fid,
            offset: rng.u64_from(&[0, 1, 4096, 1 << 30, u64::MAX - 10]),
            // Now and then a count that is not what follows.
            count: if rng.chance(10) {
                rng.next() as u32 % 20_000
            } else {
                payload.len() as u32
            },
        }),
        120 => Tmessage::Clunk(Tclunk { fid }),
        122 => Tmessage::Remove(Tremove { fid }),
        124 => Tmessage::Stat(Tstat { fid }),
        126 => Tmessage::Wstat(Twstat {
            fid,
            stat: StatBlob(stat),
        }),
        _ => unreachable!(),
    };
    let start = out.len();
    msg.encode(tag, out);
    if ty == Twrite::TYPE {
        out.extend_from_slice(&payload);
    }
    patch_size(out, start);
    Sent { ty, fid, newfid }
}

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

fn open_descriptors() -> usize {
    // The server's two process-lifetime descriptors (/proc/self/fd and
    // the working directory) are open before counting.
    vhost_user_9p::server::host::init().unwrap();
    std::fs::read_dir("/proc/self/fd").unwrap().count()
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

/// Sends one framed request and reads its reply frame; None if no reply
/// came within the stream's read timeout.
fn exchange(stream: &mut UnixStream, request: &[u8]) -> Option<Vec<u8>> {
    stream.write_all(request).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut frame = size.to_vec();
    frame.resize(u32::from_le_bytes(size) as usize, 0);
    stream.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
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

/// Runs one session of `REQUESTS` random requests through the socket
/// transport's connection loop; the request types that succeeded.
fn run_session(seed: u64, dialect: &str, config: Config) -> BTreeSet<u8> {
    const REQUESTS: usize = 6000;
    let share = config.shared_dir.clone();
    let outside = share.with_file_name("outside");
    let (mut client, server_end) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::new(&config).unwrap();
        let result = serve_connection(&server, Box::new(server_end));
        drop(server);
        let _ = done.send(result.map_err(|e| e.to_string()));
    });

    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut fids = Fids::default();
    let mut succeeded = BTreeSet::new();
    let mut frame = Vec::new();
    for i in 0..REQUESTS {
        let tag = (i % 5) as u16;
        if i % 200 == 0 {
            restock(&share, &outside);
        }
        // Now and then a small msize (the least the server agrees to is
        // 4096) or an outlandish one.
        let msizes = [65536, 65536, 4096, 5000, 0, u32::MAX];
        let sent = next_request(&mut rng, &fids, dialect, i == 0, &msizes, tag, &mut frame);
        let context = format!("seed {seed} ({dialect}), request {i} (type {})", sent.ty);
        let reply = exchange(&mut client, &frame)
            .unwrap_or_else(|| panic!("{context}: no reply within 30 s"));
        check(&context, dialect, tag, &sent, &reply);
        assert!(
            sent.ty == Tversion::TYPE || reply.len() <= fids.msize as usize,
            "{context}: a reply of {} bytes with msize {}",
            reply.len(),
            fids.msize
        );
        if reply[4] == sent.ty + 1 {
            succeeded.insert(sent.ty);
        }
        fids.update(&sent, &reply);
    }
    drop(client);
    let result = finished
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("seed {seed} ({dialect}): the session did not end"));
    assert_eq!(result, Ok(()), "seed {seed} ({dialect})");
    succeeded
}

/// Runs `THREADS` threads of random requests on one session of one server
/// at once, as the worker pool serves a guest's requests: fids used,
/// clunked, replaced and renamed under each other's feet. Meanwhile a host
/// process swaps the share's directory `d` and file `a` for symlinks out
/// of the share and back, as fast as it can.
fn run_concurrent_session(seed: u64, dialect: &'static str, config: Config) {
    const THREADS: u64 = 4;
    const REQUESTS: usize = 2500;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (share, stop) = (config.shared_dir.clone(), stop.clone());
        std::thread::spawn(move || swap_for_symlinks_until(&share, &stop))
    };
    let server = Arc::new(Server::new(&config).unwrap());
    let session = Arc::new(Session::new());
    let (done, finished) = mpsc::channel();
    for thread in 0..THREADS {
        let (server, session, done) = (server.clone(), session.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rng = Rng((seed * THREADS + thread).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut fids = Fids::default();
            let (mut frame, mut reply, mut data) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..REQUESTS {
                let tag = (thread * 8 + i as u64 % 8) as u16;
                let sent =
                    next_request(&mut rng, &fids, dialect, i == 0, &[65536], tag, &mut frame);
                serve_frame(&server, &session, &frame, &mut reply, &mut data);
                reply.extend_from_slice(&data);
                let context = format!(
                    "seed {seed} ({dialect}), thread {thread}, request {i} (type {})",
                    sent.ty
                );
                check(&context, dialect, tag, &sent, &reply);
                fids.update(&sent, &reply);
            }
            // The last one out closes the session's descriptors.
            drop((server, session));
            let _ = done.send(thread);
        });
    }
    drop(done);
    for _ in 0..THREADS {
        finished
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("seed {seed} ({dialect}): a thread hung or panicked"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0, "seed {seed}: the host never swapped anything");
}

/// Until `stop`: moves `d` and `a` aside and puts symlinks out of the share
/// (to the outside directory and its secret file) in their place, then
/// back. Returns how many swaps it made.
fn swap_for_symlinks_until(share: &Path, stop: &std::sync::atomic::AtomicBool) -> usize {
    let outside = share.with_file_name("outside");
    let pairs = [("d", outside.clone()), ("a", outside.join("secret"))];
    let mut swaps = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for (name, target) in &pairs {
            let (path, aside) = (share.join(name), share.join(format!("{name}.host")));
            // Only what is (still) a plain directory or file is moved.
            let plain = std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_symlink());
            if plain && std::fs::rename(&path, &aside).is_ok() {
                let _ = std::os::unix::fs::symlink(target, &path);
                swaps += 1;
                std::thread::yield_now();
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) {
                    let _ = std::fs::remove_file(&path);
                }
                let _ = std::fs::rename(&aside, &path);
            }
        }
    }
    swaps
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
    let descriptors_before = open_descriptors();
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
        open_descriptors(),
        descriptors_before,
        "seed {seed} ({dialect}): descriptors left open after the session"
    );
    result
}

const DIALECTS: [&str; 3] = ["9P2000.L", "9P2000.u", "9P2000"];

#[test]
fn random_requests_get_one_reply_each_and_never_reach_outside_the_share() {
    let _serial = serial();
    let mut succeeded = BTreeMap::new();
    for seed in 1..=18u64 {
        let dialect = DIALECTS[seed as usize % 3];
        let types = on_fresh_share(seed, dialect, |config| run_session(seed, dialect, config));
        succeeded
            .entry(dialect)
            .or_insert_with(Vec::new)
            .extend(types);
    }
    // The sessions got past the errors: every request type of each dialect
    // succeeded at least once.
    let linux = [
        8u8, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76,
    ];
    let plan9 = [112u8, 114, 116, 118, 122, 124, 126];
    for (dialect, types) in &succeeded {
        let wanted: Vec<u8> = if *dialect == "9P2000.L" {
            linux
                .iter()
                .chain(&[110, 116, 118, 120, 122])
                .copied()
                .collect()
        } else {
            plan9.iter().chain(&[110, 120]).copied().collect()
        };
        let missing: Vec<u8> = wanted.into_iter().filter(|t| !types.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "{dialect}: never succeeded: {missing:?}"
        );
    }
}

#[test]
fn concurrent_random_requests_on_one_session_neither_hang_nor_leak() {
    let _serial = serial();
    for seed in 1..=9u64 {
        let dialect = DIALECTS[seed as usize % 3];
        on_fresh_share(seed, dialect, |config| {
            run_concurrent_session(seed, dialect, config)
        });
    }
}

// ---- through the vhost-user device, many requests in flight ----

/// Writes `bytes` into a chain area laid out as `area` at (`first`, `data`).
fn put(vmm: &Vmm, area: Area, at: (u64, u64), bytes: &[u8]) {
    let split = bytes.len().min(area.first as usize);
    vmm.write(at.0, &bytes[..split]);
    if split < bytes.len() {
        vmm.write(at.1, &bytes[split..]);
    }
}

/// Reads `len` bytes back from such an area.
fn get(vmm: &Vmm, area: Area, at: (u64, u64), len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let split = len.min(area.first as usize);
    vmm.read(at.0, &mut bytes[..split]);
    vmm.read(at.1, &mut bytes[split..]);
    bytes
}

/// Random requests of each dialect through the daemon's virtqueue, 16 in
/// flight on a worker pool of 4, in chains split as the Linux client
/// splits them (a header descriptor, then pages) or in one descriptor:
/// each chain comes back with one well-formed reply to its own request
/// (or, flushed, with none), no larger than the msize; the daemon lives
/// on and exits 0 when the VMM goes; nothing outside the share changes.
#[test]
fn random_requests_through_the_virtqueue_many_in_flight() {
    const IN_FLIGHT: usize = 16;
    const REQUESTS: usize = 3000;
    const MSIZE: u32 = 16384;
    let _serial = serial();
    for seed in 1..=6u64 {
        let dialect = DIALECTS[seed as usize % 3];
        let top = tempfile::tempdir().unwrap();
        let share = make_tree(top.path());
        let outside_before = snapshot(&top.path().join("outside"));
        let model = if seed % 4 < 2 {
            "passthrough"
        } else {
            "mapped-xattr"
        };
        let mut args = vec!["--thread-pool-size", "4", "--security-model", model];
        if dialect != "9P2000.L" {
            args.push("--ctl");
        }
        let mut daemon = common::Daemon::start(env!("CARGO_BIN_EXE_vhost-user-9p"), &share, &args);
        {
            let mut vmm = Vmm::connect(&daemon.socket, 64 << 20, true);
            let slots: Vec<(Slot, Area, Area)> = (0..IN_FLIGHT)
                .map(|i| {
                    let (request, reply) = if i % 2 == 0 {
                        (Area::paged(23, 12288), Area::paged(11, MSIZE))
                    } else {
                        (Area::one(MSIZE), Area::one(MSIZE))
                    };
                    (vmm.slot(request, reply), request, reply)
                })
                .collect();
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut fids = Fids::default();
            let mut frame = Vec::new();
            // What each slot carries, and the tags flushed while in flight.
            let mut carrying: Vec<Option<Sent>> = (0..IN_FLIGHT).map(|_| None).collect();
            let mut flushed = Vec::new();
            let mut sent = 0;
            let mut free: Vec<usize> = (0..IN_FLIGHT).collect();
            loop {
                // The first request (Tversion) goes alone.
                while let Some(i) = free.pop() {
                    if sent == REQUESTS || (sent == 1 && carrying.iter().any(Option::is_some)) {
                        free.push(i);
                        break;
                    }
                    let tag = i as u16;
                    let request = next_request(
                        &mut rng,
                        &fids,
                        dialect,
                        sent == 0,
                        &[MSIZE],
                        tag,
                        &mut frame,
                    );
                    if request.ty == Tflush::TYPE {
                        flushed.push(u16::from_le_bytes([frame[7], frame[8]]));
                    }
                    let (slot, area, _) = &slots[i];
                    put(&vmm, *area, (slot.request, slot.request_data), &frame);
                    vmm.post(slot.head);
                    carrying[i] = Some(request);
                    sent += 1;
                }
                vmm.kick();
                if carrying.iter().all(Option::is_none) {
                    break;
                }
                vmm.wait();
                let mut returned = Vec::new();
                vmm.reap(|head, len| returned.push((head, len)));
                for (head, len) in returned {
                    let i = slots.iter().position(|(s, _, _)| s.head == head).unwrap();
                    let request = carrying[i].take().unwrap();
                    free.push(i);
                    let tag = if request.ty == Tversion::TYPE {
                        NOTAG
                    } else {
                        i as u16
                    };
                    let context =
                        format!("seed {seed} ({dialect}), slot {i} (type {})", request.ty);
                    if len == 0 {
                        assert!(
                            flushed.contains(&tag),
                            "{context}: returned without a reply"
                        );
                        continue;
                    }
                    assert!(len <= MSIZE, "{context}: a reply of {len} bytes");
                    let (slot, _, area) = &slots[i];
                    let reply = get(&vmm, *area, (slot.reply, slot.reply_data), len as usize);
                    check(&context, dialect, tag, &request, &reply);
                    fids.update(&request, &reply);
                }
            }
        }
        let status = daemon
            .child
            .wait()
            .expect("the daemon exits when the VMM goes");
        assert!(status.success(), "seed {seed} ({dialect}): daemon {status}");
        assert_eq!(
            snapshot(&top.path().join("outside")),
            outside_before,
            "seed {seed} ({dialect}): outside the share changed"
        );
    }
}
