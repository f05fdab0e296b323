//! Device nodes, fifos and sockets in the share are never opened on the
//! host, whatever reaches them. Nodes of each kind (c, b, p, s) made by each
//! way a client has (9P2000.L Tmknod, 9P2000.u Tcreate with DMDEVICE,
//! DMNAMEDPIPE or DMSOCKET, a control file's `mknod`), under passthrough
//! (real nodes on the host) and mapped-xattr (regular host files carrying
//! their type), then every request of every dialect that could open one:
//! each must be refused as a special file is, within a deadline (a fifo's
//! open would wait for a writer), and inotify must see no open. A pty in
//! the share never becomes the daemon's controlling terminal.

use std::ffi::CString;
use std::fmt::Display;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::security::SecurityModel;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inotify::opens_during;
use crate::common::inproc::{InProc, Reply, ROOT};
use crate::common::wait_for_socket;

const BIN: &str = env!("CARGO_BIN_EXE_vhost-user-9p");

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

fn mknod(path: &Path, mode: u32, dev: u64) {
    // SAFETY: a C string.
    let made = unsafe { libc::mknod(c_path(path).as_ptr(), mode, dev) };
    assert_eq!(
        made,
        0,
        "mknod {path:?}: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn control_truncate_never_opens_a_device_or_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    let fifo = dir.path().join("fifo");
    mknod(&null, libc::S_IFCHR | 0o666, libc::makedev(1, 3));
    mknod(&fifo, libc::S_IFIFO | 0o666, 0);
    let file = dir.path().join("file");
    std::fs::write(&file, "xyz").unwrap();
    let mut config = Config::new(dir.path());
    config.ctl = true;
    for version in ["9P2000", "9P2000.u", "9P2000.L"] {
        let mut c = InProc::attach(&config, Users::Guest, version, 0);
        let open_write = |c: &mut InProc, fid: u32| match version {
            "9P2000.L" => c.call(Tmessage::Lopen(Tlopen { fid, flags: 1 })),
            _ => c.call(Tmessage::Open(Topen { fid, mode: 1 })),
        };
        for (node, path) in [("null", &null), ("fifo", &fifo)] {
            let (opens, ()) = opens_during(&[path], || {
                c.walk(ROOT, 10, &[",ctl", node]).ok();
                open_write(&mut c, 10).ok();
                let write = c.write(10, b"truncate 0\n");
                assert_eq!(write.errno(), Some(libc::EINVAL), "{version} {node}");
                c.clunk(10);
                // The same through `,ctl,nofollow`.
                c.walk(ROOT, 11, &[",ctl,nofollow", node]).ok();
                open_write(&mut c, 11).ok();
                assert!(c.write(11, b"truncate 0\n").errno().is_some());
                c.clunk(11);
                // Opened, fsynced, truncated as the file itself.
                c.walk(ROOT, 12, &[node]).ok();
                assert!(open_write(&mut c, 12).errno().is_some(), "{version} {node}");
                if version == "9P2000.L" {
                    let fsync = c.call(Tmessage::Fsync(Tfsync {
                        fid: 12,
                        datasync: 0,
                    }));
                    assert_eq!(fsync.errno(), Some(libc::EINVAL));
                    let size = Tsetattr {
                        fid: 12,
                        valid: 8,
                        ..Default::default()
                    };
                    assert!(c.call(Tmessage::Setattr(size)).errno().is_some());
                }
                c.clunk(12);
            });
            assert_eq!(opens, 0, "{version}: {node} opened on the host");
        }
        // The watch sees a regular file's truncation through its ctl file.
        let (opens, ()) = opens_during(&[&file], || {
            c.walk(ROOT, 13, &[",ctl", "file"]).ok();
            open_write(&mut c, 13).ok();
            c.write(13, b"truncate 1\n").ok();
            c.clunk(13);
        });
        assert_eq!(opens, 1, "{version}");
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        std::fs::write(&file, "xyz").unwrap();
    }
}

// ---- clients whose every request has a deadline ----

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

// ---- the nodes and every request that could open one ----

/// A kind of special file and the numbers it is made with.
#[derive(Clone, Copy, Debug)]
struct Kind {
    letter: char,
    file_type: u32,
    major: u32,
    minor: u32,
    /// 9P2000.u's mode bit for it.
    dm: u32,
}

/// /dev/null's numbers; a loop device's; a fifo; a socket.
const KINDS: [Kind; 4] = [
    Kind {
        letter: 'c',
        file_type: libc::S_IFCHR,
        major: 1,
        minor: 3,
        dm: DMDEVICE,
    },
    Kind {
        letter: 'b',
        file_type: libc::S_IFBLK,
        major: 7,
        minor: 0,
        dm: DMDEVICE,
    },
    Kind {
        letter: 'p',
        file_type: libc::S_IFIFO,
        major: 0,
        minor: 0,
        dm: DMNAMEDPIPE,
    },
    Kind {
        letter: 's',
        file_type: libc::S_IFSOCK,
        major: 0,
        minor: 0,
        dm: DMSOCKET,
    },
];

impl Kind {
    fn rdev(&self) -> u64 {
        libc::makedev(self.major, self.minor)
    }

    /// The 9P2000.u stat extension of such a node.
    fn extension(&self) -> String {
        match self.letter {
            'c' | 'b' => format!("{} {} {}", self.letter, self.major, self.minor),
            _ => String::new(),
        }
    }

    fn d_type(&self) -> u8 {
        match self.file_type {
            libc::S_IFCHR => libc::DT_CHR,
            libc::S_IFBLK => libc::DT_BLK,
            libc::S_IFIFO => libc::DT_FIFO,
            _ => libc::DT_SOCK,
        }
    }
}

/// A special file in the share's root as the guest should see it.
struct Node {
    name: String,
    kind: Kind,
    perm: u32,
    /// Its directory entry's type (a bind mount shows the covered file's).
    listed: bool,
    /// What a hard link to it gets (a bind mount is another filesystem).
    link: Want,
}

/// What a request should get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Errno(i32),
    Ok,
    /// A request that needs no open (xattrs): either is fine.
    Either,
}

const PERM: u32 = 0o640;

// Fids the battery uses beside ROOT.
const NODE: u32 = 10;
const TMP: u32 = 11;
const DIR: u32 = 12;
const LINK: u32 = 13;
const XATTR: u32 = 14;

// 9P2000.L open flags are Linux's (x86-64) values.
const O_RDONLY: u32 = libc::O_RDONLY as u32;
const O_WRONLY: u32 = libc::O_WRONLY as u32;
const O_RDWR: u32 = libc::O_RDWR as u32;
const O_CREAT: u32 = libc::O_CREAT as u32;
const O_EXCL: u32 = libc::O_EXCL as u32;
const O_TRUNC: u32 = libc::O_TRUNC as u32;
const O_APPEND: u32 = libc::O_APPEND as u32;
const O_NONBLOCK: u32 = libc::O_NONBLOCK as u32;
const O_DIRECTORY: u32 = libc::O_DIRECTORY as u32;
const LOPEN_FLAGS: [u32; 12] = [
    O_RDONLY,
    O_WRONLY,
    O_RDWR,
    O_RDONLY | O_TRUNC,
    O_WRONLY | O_TRUNC,
    O_RDWR | O_TRUNC,
    O_RDWR | O_CREAT,
    O_RDWR | O_CREAT | O_TRUNC,
    O_RDONLY | O_NONBLOCK,
    O_WRONLY | O_NONBLOCK,
    O_RDWR | O_APPEND | O_NONBLOCK,
    O_RDONLY | O_DIRECTORY,
];

// Topen/Tcreate modes.
const OREAD: u8 = 0;
const OWRITE: u8 = 1;
const ORDWR: u8 = 2;
const OEXEC: u8 = 3;
const OTRUNC: u8 = 0x10;
const ORCLOSE: u8 = 0x40;
const OAPPEND: u8 = 0x80;
const TOPEN_MODES: [u8; 10] = [
    OREAD,
    OWRITE,
    ORDWR,
    OEXEC,
    OTRUNC,
    OWRITE | OTRUNC,
    ORDWR | OTRUNC,
    ORCLOSE,
    ORDWR | ORCLOSE,
    OWRITE | OAPPEND,
];
/// 9P2000.u Tcreate of a hard link to the fid named in the extension.
const DMLINK: u32 = 0x0100_0000;

/// Runs every request that could open `node` in `c`'s dialect and checks
/// the guest's view of it; returns what went otherwise than wanted.
fn every_open(c: &mut dyn Client, dialect: &str, node: &Node) -> Vec<String> {
    let mut run = Battery {
        c,
        dialect,
        node,
        failures: Vec::new(),
    };
    run.views();
    if dialect == "9P2000.L" {
        run.linux();
    } else {
        run.plan9();
    }
    run.control_file();
    run.failures
}

struct Battery<'a> {
    c: &'a mut dyn Client,
    dialect: &'a str,
    node: &'a Node,
    failures: Vec<String>,
}

impl Battery<'_> {
    fn check(&mut self, what: impl Display, ok: bool, detail: impl Display) {
        if !ok {
            let (dialect, name) = (self.dialect, &self.node.name);
            self.failures
                .push(format!("{dialect} {name}: {what}: {detail}"));
        }
    }

    fn expect(&mut self, what: impl Display, reply: Reply, want: Want) -> Reply {
        let got = reply.errno();
        let ok = match want {
            Want::Errno(e) => got == Some(e),
            Want::Ok => got.is_none(),
            Want::Either => true,
        };
        self.check(what, ok, format!("got {:?}, want {want:?}", reply.msg()));
        reply
    }

    fn send(&mut self, what: impl Display, msg: Tmessage<'_>, want: Want) -> Reply {
        let reply = self.c.call(msg);
        self.expect(what, reply, want)
    }

    /// Fid `fid` walked afresh from the root to `names`.
    fn at(&mut self, fid: u32, names: &[&str]) {
        self.c.clunk(fid);
        let reply = self.c.walk(ROOT, fid, names);
        let whole = matches!(reply.msg(), Rmessage::Walk(w) if w.qids.len() == names.len());
        self.check(
            format!("walk {names:?}"),
            whole,
            format!("{:?}", reply.msg()),
        );
    }

    fn is_linux(&self) -> bool {
        self.dialect == "9P2000.L"
    }

    /// Opens `fid` as the dialect does.
    fn open(&mut self, fid: u32, linux_flags: u32, plan9_mode: u8) -> Reply {
        if self.is_linux() {
            self.c.call(Tmessage::Lopen(Tlopen {
                fid,
                flags: linux_flags,
            }))
        } else {
            self.c.call(Tmessage::Open(Topen {
                fid,
                mode: plan9_mode,
            }))
        }
    }

    /// The node as the guest sees it: its stat, and its entry in a read
    /// of the share's root, with its type, numbers and permissions.
    fn views(&mut self) {
        let (kind, perm) = (self.node.kind, self.node.perm);
        let name = self.node.name.clone();
        self.at(NODE, &[&name]);
        if self.is_linux() {
            let getattr = Tgetattr {
                fid: NODE,
                request_mask: 0x7ff,
            };
            let reply = self.send("Tgetattr", Tmessage::Getattr(getattr), Want::Ok);
            if let Rmessage::Getattr(a) = reply.msg() {
                let got = (a.mode, a.rdev, a.size);
                let want = (kind.file_type | perm, kind.rdev(), 0);
                self.check(
                    "Rgetattr (mode, rdev, size)",
                    got == want,
                    format!("{got:?} != {want:?}"),
                );
            }
        } else {
            let reply = self.send("Tstat", Tmessage::Stat(Tstat { fid: NODE }), Want::Ok);
            if let Rmessage::Stat(st) = reply.msg() {
                self.stat_record("Rstat", &st.stat.0);
            }
        }
        // Its entry in the directory read.
        self.at(DIR, &[]);
        let open = self.open(DIR, O_RDONLY | O_DIRECTORY, OREAD);
        self.expect("open /", open, Want::Ok);
        let mut found = false;
        if self.is_linux() {
            let readdir = Treaddir {
                fid: DIR,
                offset: 0,
                count: 65536,
            };
            let reply = self.send("Treaddir /", Tmessage::Readdir(readdir), Want::Ok);
            let mut d = Decoder::new(reply.data());
            while d.remaining() > 0 {
                let (_, _, d_type, entry): (Qid, u64, u8, Str) = (
                    d.decode().unwrap(),
                    d.decode().unwrap(),
                    d.decode().unwrap(),
                    d.decode().unwrap(),
                );
                if entry.as_bytes() == name.as_bytes() {
                    found = true;
                    if self.node.listed {
                        let want = kind.d_type();
                        self.check(
                            "Treaddir d_type",
                            d_type == want,
                            format!("{d_type} != {want}"),
                        );
                    }
                }
            }
        } else {
            let mut offset = 0;
            loop {
                let read = self.c.read(DIR, offset);
                let reply = self.expect("Tread /", read, Want::Ok);
                if reply.data().is_empty() {
                    break;
                }
                offset += reply.data().len() as u64;
                let mut d = Decoder::new(reply.data());
                while d.remaining() > 0 {
                    let st: Stat = d.decode().unwrap();
                    if st.name.as_bytes() == name.as_bytes() {
                        found = true;
                        self.stat_record("directory record", &st);
                    }
                }
            }
        }
        self.check("directory read", found, "no entry");
        self.c.clunk(DIR);
    }

    /// A stat record of the node, in 9P2000.u with its type and numbers.
    fn stat_record(&mut self, what: &str, st: &Stat<'_>) {
        let (kind, perm) = (self.node.kind, self.node.perm);
        let got = (
            st.mode,
            st.length,
            st.ext.map(|e| e.extension.as_bytes().to_vec()),
        );
        let want = if self.dialect == "9P2000.u" {
            (kind.dm | perm, 0, Some(kind.extension().into_bytes()))
        } else {
            (perm, 0, None)
        };
        self.check(what, got == want, format!("{got:?} != {want:?}"));
    }

    fn linux(&mut self) {
        let name = self.node.name.clone();
        for flags in LOPEN_FLAGS {
            self.at(NODE, &[&name]);
            let open = self.c.call(Tmessage::Lopen(Tlopen { fid: NODE, flags }));
            self.expect(
                format_args!("Tlopen {flags:#o}"),
                open,
                Want::Errno(libc::EPERM),
            );
        }
        // The fid a refused open left: nothing to read, write, list or lock.
        self.no_io_on_unopened_fid();
        let treaddir = Tmessage::Readdir(Treaddir {
            fid: NODE,
            offset: 0,
            count: 4096,
        });
        self.send("Treaddir", treaddir, Want::Errno(libc::EBADF));
        let client_id = Str::from("client");
        let lock = Tmessage::Lock(Tlock {
            fid: NODE,
            lock_type: 1, // F_WRLCK
            flags: 0,
            start: 0,
            length: 0,
            proc_id: 1,
            client_id,
        });
        self.send("Tlock", lock, Want::Errno(libc::EBADF));
        let getlock = Tmessage::Getlock(Tgetlock {
            fid: NODE,
            lock_type: 1,
            start: 0,
            length: 0,
            proc_id: 1,
            client_id,
        });
        self.send("Tgetlock", getlock, Want::Errno(libc::EBADF));
        for datasync in [0, 1] {
            let fsync = Tmessage::Fsync(Tfsync {
                fid: NODE,
                datasync,
            });
            self.send(
                format_args!("Tfsync {datasync}"),
                fsync,
                Want::Errno(libc::EINVAL),
            );
        }
        for size in [0, 5] {
            let setattr = Tmessage::Setattr(Tsetattr {
                fid: NODE,
                valid: 8, // size
                size,
                ..Default::default()
            });
            self.send(
                format_args!("Tsetattr size {size}"),
                setattr,
                Want::Errno(libc::EINVAL),
            );
        }
        let readlink = Tmessage::Readlink(Treadlink { fid: NODE });
        self.send("Treadlink", readlink, Want::Errno(libc::EINVAL));
        let statfs = Tmessage::Statfs(Tstatfs { fid: NODE });
        self.send("Tstatfs", statfs, Want::Ok);
        // Its xattrs, read and written by path.
        for attr in ["", "user.absent"] {
            self.c.clunk(XATTR);
            let walk = Tmessage::Xattrwalk(Txattrwalk {
                fid: NODE,
                newfid: XATTR,
                name: attr.into(),
            });
            self.send(format_args!("Txattrwalk {attr:?}"), walk, Want::Either);
            self.c.clunk(XATTR);
        }
        self.at(TMP, &[&name]);
        let create = Tmessage::Xattrcreate(Txattrcreate {
            fid: TMP,
            name: "user.test".into(),
            attr_size: 1,
            flags: 0,
        });
        self.send("Txattrcreate", create, Want::Either);
        let write = self.c.write(TMP, b"x");
        self.expect("Twrite xattr", write, Want::Either);
        let clunk = self.c.clunk(TMP);
        self.expect("Tclunk xattr", clunk, Want::Either);
        // Tlcreate of the name: open(2) of an existing file without O_EXCL.
        for flags in [
            O_RDONLY,
            O_RDWR | O_TRUNC,
            O_WRONLY | O_NONBLOCK,
            O_RDWR | O_APPEND,
            O_EXCL,
        ] {
            self.at(DIR, &[]);
            let create = Tmessage::Lcreate(Tlcreate {
                fid: DIR,
                name: name.as_str().into(),
                flags,
                mode: 0o644,
                gid: 0,
            });
            let want = if flags & O_EXCL != 0 {
                libc::EEXIST
            } else {
                libc::EPERM
            };
            self.send(
                format_args!("Tlcreate {flags:#o}"),
                create,
                Want::Errno(want),
            );
            self.c.clunk(DIR);
        }
        // A hard link to it, opened.
        let link_name = format!("{name}.link");
        let link = Tmessage::Link(Tlink {
            dfid: ROOT,
            fid: NODE,
            name: link_name.as_str().into(),
        });
        let linked = self.send("Tlink", link, self.node.link).errno().is_none();
        if linked {
            for flags in [O_RDONLY, O_RDWR | O_TRUNC | O_NONBLOCK] {
                self.at(LINK, &[&link_name]);
                let open = self.c.call(Tmessage::Lopen(Tlopen { fid: LINK, flags }));
                self.expect(
                    format_args!("Tlopen of a link {flags:#o}"),
                    open,
                    Want::Errno(libc::EPERM),
                );
            }
            self.c.clunk(LINK);
            let unlink = Tmessage::Unlinkat(Tunlinkat {
                dirfid: ROOT,
                name: link_name.as_str().into(),
                flags: 0,
            });
            self.send("Tunlinkat link", unlink, Want::Ok);
        }
        self.c.clunk(NODE);
    }

    fn no_io_on_unopened_fid(&mut self) {
        let read = self.c.read(NODE, 0);
        self.expect("Tread", read, Want::Errno(libc::EBADF));
        let write = self.c.write(NODE, b"x");
        self.expect("Twrite", write, Want::Errno(libc::EBADF));
    }

    fn plan9(&mut self) {
        let name = self.node.name.clone();
        let unix = self.dialect == "9P2000.u";
        for mode in TOPEN_MODES {
            self.at(NODE, &[&name]);
            let open = self.c.call(Tmessage::Open(Topen { fid: NODE, mode }));
            self.expect(
                format_args!("Topen {mode:#x}"),
                open,
                Want::Errno(libc::EPERM),
            );
        }
        self.no_io_on_unopened_fid();
        // Truncation, and the Twstat that changes nothing (an fsync).
        let wstats = [
            (0, "length 0"),
            (5, "length 5"),
            (u64::MAX, "of nothing (an fsync)"),
        ];
        for (length, what) in wstats {
            let mut stat = Stat {
                length,
                ..Stat::DONT_TOUCH
            };
            stat.ext = unix.then_some(StatExtension::DONT_TOUCH);
            let wstat = Tmessage::Wstat(Twstat {
                fid: NODE,
                stat: StatBlob(stat),
            });
            self.send(
                format_args!("Twstat {what}"),
                wstat,
                Want::Errno(libc::EINVAL),
            );
        }
        // Tcreate of the name: always exclusive, whatever it would make.
        let creates: [(u32, u8, &str); 5] = [
            (0o644, OREAD, ""),
            (0o644, ORDWR | OTRUNC, ""),
            (0o644, OWRITE | ORCLOSE, ""),
            (DMNAMEDPIPE | 0o644, OREAD, ""),
            (DMDEVICE | 0o644, OREAD, "c 1 3"),
        ];
        for (perm, mode, extension) in creates {
            self.at(DIR, &[]);
            let create = Tmessage::Create(Tcreate {
                fid: DIR,
                name: name.as_str().into(),
                perm,
                mode,
                extension: unix.then_some(extension.into()),
            });
            let what = format_args!("Tcreate perm {perm:#o} mode {mode:#x}");
            self.send(what, create, Want::Errno(libc::EEXIST));
            self.c.clunk(DIR);
        }
        if unix {
            // A hard link to it (Tcreate DMLINK), opened.
            let link_name = format!("{name}.link");
            self.at(DIR, &[]);
            let fid = NODE.to_string();
            let create = Tmessage::Create(Tcreate {
                fid: DIR,
                name: link_name.as_str().into(),
                perm: DMLINK | 0o644,
                mode: OREAD,
                extension: Some(fid.as_str().into()),
            });
            let linked = self
                .send("Tcreate DMLINK", create, self.node.link)
                .errno()
                .is_none();
            self.c.clunk(DIR);
            if linked {
                for mode in [OREAD, ORDWR | OTRUNC, ORCLOSE] {
                    self.at(LINK, &[&link_name]);
                    let open = self.c.call(Tmessage::Open(Topen { fid: LINK, mode }));
                    self.expect(
                        format_args!("Topen of a link {mode:#x}"),
                        open,
                        Want::Errno(libc::EPERM),
                    );
                }
                let remove = Tmessage::Remove(Tremove { fid: LINK });
                self.send("Tremove link", remove, Want::Ok);
            }
        }
        self.c.clunk(NODE);
    }

    /// The node's control file: reads its stat, refuses its truncation.
    fn control_file(&mut self) {
        let name = self.node.name.clone();
        let (kind, perm) = (self.node.kind, self.node.perm);
        for ctl in [",ctl", ",ctl,nofollow"] {
            self.at(TMP, &[ctl, &name]);
            let open = self.open(TMP, O_RDWR, ORDWR);
            self.expect(format_args!("open {ctl}"), open, Want::Ok);
            let read = self.c.read(TMP, 0);
            let line = self.expect(format_args!("read {ctl}"), read, Want::Ok);
            let line = String::from_utf8_lossy(line.data()).into_owned();
            let mode = format!(" mode 0{:o} ", kind.file_type | perm);
            let rdev = format!(" rdev {} size 0 ", kind.rdev());
            let ok = line.contains(&mode) && line.contains(&rdev);
            self.check(
                format_args!("{ctl} stat line"),
                ok,
                format!("{line:?} lacks {mode:?} or {rdev:?}"),
            );
            for command in ["truncate 0\n", "truncate 5\n"] {
                let write = self.c.write(TMP, command.as_bytes());
                self.expect(
                    format_args!("{ctl} {command:?}"),
                    write,
                    Want::Errno(libc::EINVAL),
                );
            }
            self.c.clunk(TMP);
        }
    }
}

/// The ways a client makes a special file.
#[derive(Clone, Copy, Debug)]
enum Maker {
    /// 9P2000.L Tmknod.
    Tmknod,
    /// 9P2000.u Tcreate with DMDEVICE, DMNAMEDPIPE or DMSOCKET.
    Tcreate,
    /// `mknod` written to the root's control file (in 9P2000).
    Ctl,
}

const MAKERS: [Maker; 3] = [Maker::Tmknod, Maker::Tcreate, Maker::Ctl];

fn make(config: &Config, maker: Maker, name: &str, kind: Kind) {
    let what = format!("{maker:?} {name}");
    match maker {
        Maker::Tmknod => {
            let mut c = Timed::attach(config, "9P2000.L", 0);
            let mknod = Tmessage::Mknod(Tmknod {
                dfid: ROOT,
                name: name.into(),
                mode: kind.file_type | PERM,
                major: kind.major,
                minor: kind.minor,
                gid: 0,
            });
            assert_eq!(c.call(mknod).errno(), None, "{what}");
        }
        Maker::Tcreate => {
            let mut c = Timed::attach(config, "9P2000.u", 0);
            c.walk(ROOT, DIR, &[]).ok();
            let extension = kind.extension();
            let create = Tmessage::Create(Tcreate {
                fid: DIR,
                name: name.into(),
                perm: kind.dm | PERM,
                mode: OREAD,
                extension: Some(extension.as_str().into()),
            });
            assert_eq!(c.call(create).errno(), None, "{what}");
        }
        Maker::Ctl => {
            let mut c = Timed::attach(config, "9P2000", 0);
            c.walk(ROOT, TMP, &[",ctl", ","]).ok();
            c.call(Tmessage::Open(Topen {
                fid: TMP,
                mode: OWRITE,
            }))
            .ok();
            let command = format!(
                "mknod {name} {} {PERM:o} {} {}\n",
                kind.letter, kind.major, kind.minor
            );
            assert_eq!(c.write(TMP, command.as_bytes()).errno(), None, "{what}");
        }
    }
}

/// The host file of a node made under `model`: the node itself under
/// passthrough; under mapped-xattr a regular file of the daemon's carrying
/// the guest's type, mode and device number.
fn check_host_file(model: SecurityModel, path: &Path, kind: Kind) {
    let md = std::fs::symlink_metadata(path).unwrap();
    if model == SecurityModel::MappedXattr {
        assert!(md.is_file(), "{path:?} {md:?}");
        assert_eq!(md.mode() & 0o7777, 0o600, "{path:?}");
        let mode =
            xattr(path, "user.virtfs.mode").map(|v| u32::from_le_bytes(v.try_into().unwrap()));
        assert_eq!(mode, Some(kind.file_type | PERM), "{path:?}");
        let rdev =
            xattr(path, "user.virtfs.rdev").map(|v| u64::from_le_bytes(v.try_into().unwrap()));
        assert_eq!(rdev, (kind.rdev() != 0).then_some(kind.rdev()), "{path:?}");
        return;
    }
    let ft = md.file_type();
    let is_kind = match kind.letter {
        'c' => ft.is_char_device(),
        'b' => ft.is_block_device(),
        'p' => ft.is_fifo(),
        _ => ft.is_socket(),
    };
    assert!(is_kind, "{path:?} is {ft:?}, not {}", kind.letter);
    assert_eq!(
        (md.mode() & 0o7777, md.rdev()),
        (PERM, kind.rdev()),
        "{path:?}"
    );
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let (path, name) = (c_path(path), CString::new(name).unwrap());
    let mut buf = [0u8; 64];
    // SAFETY: C strings; buf is writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// Nodes of every kind made every way, under both security models; then
/// every request of every dialect that could open one: refused as a
/// special file is, answered within DEADLINE, and (passthrough) no open
/// on the host. Under mapped-xattr the host file is a regular file the
/// daemon could open, but the guest must see the same refusals.
#[test]
fn special_files_made_every_way_are_never_opened() {
    for model in [SecurityModel::Passthrough, SecurityModel::MappedXattr] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.ctl = true;
        config.security_model = model;
        let mut nodes = Vec::new();
        for maker in MAKERS {
            for kind in KINDS {
                let name = format!("{maker:?}-{}", kind.letter).to_lowercase();
                make(&config, maker, &name, kind);
                check_host_file(model, &dir.path().join(&name), kind);
                nodes.push(Node {
                    name,
                    kind,
                    perm: PERM,
                    listed: true,
                    link: Want::Ok,
                });
            }
        }
        let paths: Vec<PathBuf> = nodes.iter().map(|n| dir.path().join(&n.name)).collect();
        let watched: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let (opens, failures) = opens_during(&watched, || {
            let mut failures = Vec::new();
            for dialect in DIALECTS {
                let mut c = Timed::attach(&config, dialect, 0);
                for node in &nodes {
                    failures.extend(every_open(&mut c, dialect, node));
                }
            }
            failures
        });
        assert!(failures.is_empty(), "{model:?}:\n{}", failures.join("\n"));
        if model == SecurityModel::Passthrough {
            assert_eq!(opens, 0, "{model:?}: a special file was opened on the host");
        }
        // Still what they were (ORCLOSE removed none, nothing truncated).
        for (node, path) in nodes.iter().zip(&paths) {
            check_host_file(model, path, node.kind);
            assert_eq!(
                std::fs::symlink_metadata(path).unwrap().len(),
                0,
                "{path:?}"
            );
        }
        // The watch sees the open of a regular file.
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let (opens, ()) = opens_during(&[&dir.path().join("file")], || {
            let mut c = Timed::attach(&config, "9P2000.L", 0);
            c.walk(ROOT, NODE, &["file"]).ok();
            c.call(Tmessage::Lopen(Tlopen {
                fid: NODE,
                flags: O_RDONLY,
            }))
            .ok();
        });
        assert_eq!(opens, 1, "{model:?}: the open of a regular file");
    }
}

/// The deadline catches an open that waits: the host's own open of a fifo
/// with no writer does not return until a writer comes.
#[test]
fn an_open_of_a_fifo_without_a_writer_would_be_caught() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mknod(&fifo, libc::S_IFIFO | 0o600, 0);
    let (done, opened) = mpsc::channel();
    let reader = fifo.clone();
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&reader);
        done.send(file.is_ok()).unwrap();
    });
    assert_eq!(
        opened.recv_timeout(Duration::from_millis(300)),
        Err(mpsc::RecvTimeoutError::Timeout)
    );
    // A writer releases it.
    let _writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    assert_eq!(opened.recv_timeout(DEADLINE), Ok(true));
    thread.join().unwrap();
}

// ---- ptys ----

/// A pty's master (kept open while it lives) and its pts.
struct Pty {
    _master: std::os::fd::OwnedFd,
    pts: PathBuf,
    rdev: u64,
}

fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    // SAFETY: a descriptor just opened, owned here.
    let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: fd is a pty master; name is writable for its length.
    unsafe {
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
    }
    // SAFETY: ptsname_r wrote a NUL-terminated name.
    let pts = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let pts = PathBuf::from(pts.to_str().unwrap());
    let rdev = std::fs::metadata(&pts).unwrap().rdev();
    Pty {
        _master: master,
        pts,
        rdev,
    }
}

/// Fields of /proc/PID/stat: (session, tty_nr).
fn session_and_tty(pid: u32) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    // After "(comm)": state ppid pgrp session tty_nr.
    (rest[3].parse().unwrap(), rest[4].parse().unwrap())
}

/// tty_nr as /proc/PID/stat encodes a device number.
fn tty_nr(rdev: u64) -> u32 {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// A child process killed when the test ends, also by a failed assertion.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        crate::common::stop(&mut self.0);
    }
}

/// The daemon, a session leader with no controlling terminal, serves a
/// share holding a pty's pts (bind-mounted in the daemon's own mount
/// namespace, so that it is the pts itself), a node made with the pts's
/// numbers and one with /dev/ptmx's; every request of every dialect that
/// could open one is refused over its socket, nothing opens the pts, and
/// the daemon still has no controlling terminal. The same pts opened by
/// another session leader becomes its terminal, as the check expects.
#[test]
fn a_pty_never_becomes_the_daemons_controlling_terminal() {
    let pty = open_pty();
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("pts"), "").unwrap(); // the bind mount's mount point
    let pts_md = std::fs::metadata(&pty.pts).unwrap();
    let pts_kind = Kind {
        letter: 'c',
        file_type: libc::S_IFCHR,
        major: libc::major(pty.rdev),
        minor: libc::minor(pty.rdev),
        dm: DMDEVICE,
    };
    let pts_perm = pts_md.mode() & 0o7777;
    mknod(&share.join("pts-node"), libc::S_IFCHR | PERM, pty.rdev);
    mknod(
        &share.join("ptmx"),
        libc::S_IFCHR | PERM,
        libc::makedev(5, 2),
    );
    let ptmx_kind = Kind {
        major: 5,
        minor: 2,
        ..pts_kind
    };
    let nodes = [
        Node {
            name: "pts".into(),
            kind: pts_kind,
            perm: pts_perm,
            listed: false, // the directory lists the file under the mount
            link: Want::Errno(libc::EXDEV),
        },
        Node {
            name: "pts-node".into(),
            kind: pts_kind,
            perm: PERM,
            listed: true,
            link: Want::Ok,
        },
        Node {
            name: "ptmx".into(),
            kind: ptmx_kind,
            perm: PERM,
            listed: true,
            link: Want::Ok,
        },
    ];
    let sock = top.path().join("9p.sock");
    // Served by the process started (a session leader), not by a child of
    // it in a sandbox's pid namespace (which could never take a terminal).
    let help = Command::new(BIN).arg("--help").output().unwrap().stdout;
    let sandbox = match String::from_utf8_lossy(&help).contains("--sandbox") {
        true => "--sandbox none",
        false => "",
    };
    let script = format!(
        "mount --bind {pts} {share}/pts && exec {BIN} --listen unix:{sock} --shared-dir {share} \
         --no-root-squash --ctl --log-level warn {sandbox}",
        pts = pty.pts.display(),
        share = share.display(),
        sock = sock.display(),
    );
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| match libc::setsid() {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    // unshare and sh exec the daemon: one process, a session leader.
    let daemon = Killed(command.spawn().unwrap());
    let pid = daemon.0.id();
    wait_for_socket(&sock);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, std::fs::canonicalize(BIN).unwrap());
    assert_eq!(
        session_and_tty(pid),
        (pid, 0),
        "the daemon: its own session, no terminal"
    );
    let watched = [
        pty.pts.as_path(),
        &share.join("pts-node"),
        &share.join("ptmx"),
    ];
    let (opens, failures) = opens_during(&watched, || {
        let mut failures = Vec::new();
        for dialect in DIALECTS {
            let mut c = Socket::attach(&sock, dialect, 0);
            for node in &nodes {
                failures.extend(every_open(&mut c, dialect, node));
            }
        }
        failures
    });
    // It served them itself (after serving, a sandbox's child would be there).
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    assert_eq!(children, "", "the daemon serves in a child process");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(opens, 0, "the pts or a pty device node was opened");
    assert_eq!(
        session_and_tty(pid).1,
        0,
        "the daemon took a controlling terminal"
    );
    drop(daemon);

    // Another session leader that opens the pts (without O_NOCTTY) has it
    // as its terminal: what the check above would have seen.
    let pts = c_path(&pty.pts);
    let mut command = Command::new("cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    // SAFETY: setsid and open are async-signal-safe; the path was made
    // before the fork. The descriptor is left to the child.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 || libc::open(pts.as_ptr(), libc::O_RDWR) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (opens, child) = opens_during(&[&pty.pts], || Killed(command.spawn().unwrap()));
    assert_eq!(opens, 1, "the session leader's open of the pts");
    let pid = child.0.id();
    assert_eq!(session_and_tty(pid), (pid, tty_nr(pty.rdev)));
}
