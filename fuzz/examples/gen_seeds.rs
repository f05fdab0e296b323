//! Writes the seed corpora of the fuzz targets, from the crate's own
//! encoder:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//!
//! - `corpus/decode`: every request and reply type as a frame, and as a
//!   type byte then a body; Plan 9 stat records (with and without the
//!   9P2000.u extension) back to back.
//! - `corpus/frames`: what the Linux v9fs client sends for mount, ls, cat,
//!   echo > file, mkdir, rm, ln -s, ln, mv, chmod/chown/touch/truncate,
//!   xattr get/list/set and a lock; what Plan 9 and 9P2000.u clients send;
//!   the control namespace; attempts to leave the share; malformed frames.
//! - `corpus/ctl_syntax`: control names, commands as in README.md's
//!   "Control namespace", percent escapes and stat lines.
//! - `corpus/cli_args`: id maps, security models and listen addresses.
//!
//! Each corpus directory is emptied first, so the seeds are exactly what
//! this program writes.

use std::fs;
use std::path::{Path, PathBuf};

use fuzz_common::{frames_input, Setup};
use vhost_user_9p::protocol::*;

// ---- 9P2000.L constants, as the Linux client sends them ----
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_LARGEFILE: u32 = 0o100000;
const O_DIRECTORY: u32 = 0o200000;
const GETATTR_BASIC: u64 = 0x7ff;
const GETATTR_ALL: u64 = 0x3fff;
const SETATTR_MODE: u32 = 1;
const SETATTR_UID: u32 = 2;
const SETATTR_GID: u32 = 4;
const SETATTR_SIZE: u32 = 8;
const SETATTR_ATIME: u32 = 0x10;
const SETATTR_MTIME: u32 = 0x20;
const SETATTR_CTIME: u32 = 0x40;
const SETATTR_ATIME_SET: u32 = 0x80;
const SETATTR_MTIME_SET: u32 = 0x100;
const AT_REMOVEDIR: u32 = 0x200;
const LOCK_RDLCK: u8 = 0;
const LOCK_WRLCK: u8 = 1;
const LOCK_UNLCK: u8 = 2;
const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
// ---- 9P2000 ----
const OREAD: u8 = 0;
const OWRITE: u8 = 1;
const ORDWR: u8 = 2;
const OTRUNC: u8 = 0x10;
const ORCLOSE: u8 = 0x40;

/// A request sequence: frames with tags counting up from 1.
struct Seq {
    frames: Vec<Vec<u8>>,
    tag: u16,
}

impl Seq {
    fn new() -> Self {
        Seq {
            frames: Vec::new(),
            tag: 1,
        }
    }

    fn t(&mut self, msg: Tmessage) -> &mut Self {
        let mut f = Vec::new();
        msg.encode(self.tag, &mut f);
        self.tag += 1;
        self.frames.push(f);
        self
    }

    fn raw(&mut self, frame: Vec<u8>) -> &mut Self {
        self.frames.push(frame);
        self
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&'static str]) -> &mut Self {
        let names: Vec<Str> = names.iter().map(|n| Str(n.as_bytes())).collect();
        self.t(Tmessage::Walk(Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&names).expect("at most 16 names"),
        }))
    }

    fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> &mut Self {
        let mut f = Vec::new();
        Tmessage::Write(Twrite {
            fid,
            offset,
            count: data.len() as u32,
        })
        .encode(self.tag, &mut f);
        f.extend_from_slice(data);
        patch_size(&mut f, 0);
        self.tag += 1;
        self.frames.push(f);
        self
    }

    fn read(&mut self, fid: u32, offset: u64, count: u32) -> &mut Self {
        self.t(Tmessage::Read(Tread { fid, offset, count }))
    }

    fn clunk(&mut self, fid: u32) -> &mut Self {
        self.t(Tmessage::Clunk(Tclunk { fid }))
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> &mut Self {
        self.t(Tmessage::Lopen(Tlopen { fid, flags }))
    }

    fn getattr(&mut self, fid: u32) -> &mut Self {
        self.t(Tmessage::Getattr(Tgetattr {
            fid,
            request_mask: GETATTR_ALL,
        }))
    }

    fn setattr(&mut self, fid: u32, valid: u32, f: impl FnOnce(&mut Tsetattr)) -> &mut Self {
        let mut t = Tsetattr {
            fid,
            valid,
            ..Default::default()
        };
        f(&mut t);
        self.t(Tmessage::Setattr(t))
    }

    fn xattrwalk(&mut self, fid: u32, newfid: u32, name: &'static str) -> &mut Self {
        self.t(Tmessage::Xattrwalk(Txattrwalk {
            fid,
            newfid,
            name: Str(name.as_bytes()),
        }))
    }

    fn lock(&mut self, fid: u32, lock_type: u8, proc_id: u32, client: &'static str) -> &mut Self {
        self.t(Tmessage::Lock(Tlock {
            fid,
            lock_type,
            flags: 0,
            start: 0,
            length: 0,
            proc_id,
            client_id: Str(client.as_bytes()),
        }))
    }

    fn open(&mut self, fid: u32, mode: u8) -> &mut Self {
        self.t(Tmessage::Open(Topen { fid, mode }))
    }

    /// 9P2000 Tcreate (with 9P2000.u's extension if `extension` is some).
    fn create(
        &mut self,
        fid: u32,
        name: &'static str,
        perm: u32,
        mode: u8,
        extension: Option<&'static str>,
    ) -> &mut Self {
        self.t(Tmessage::Create(Tcreate {
            fid,
            name: Str(name.as_bytes()),
            perm,
            mode,
            extension: extension.map(|e| Str(e.as_bytes())),
        }))
    }

    fn lcreate(&mut self, fid: u32, name: &'static str, flags: u32, mode: u32) -> &mut Self {
        self.t(Tmessage::Lcreate(Tlcreate {
            fid,
            name: Str(name.as_bytes()),
            flags,
            mode,
            gid: 0,
        }))
    }
}

fn sample_stat(u: bool) -> Stat<'static> {
    Stat {
        ty: 0,
        dev: 0,
        qid: Qid {
            ty: QTFILE,
            version: 7,
            path: 0x1234,
        },
        mode: 0o644,
        atime: 1_700_000_000,
        mtime: 1_700_000_001,
        length: 13,
        name: Str(b"hello.txt"),
        uid: Str(b"root"),
        gid: Str(b"root"),
        muid: Str(b""),
        ext: u.then_some(StatExtension {
            extension: Str(b""),
            n_uid: 0,
            n_gid: 0,
            n_muid: 0,
        }),
    }
}

const QID: Qid = Qid {
    ty: QTDIR,
    version: 3,
    path: 0x0102_0304_0506_0708,
};

/// One request of every type.
fn t_samples() -> Vec<Tmessage<'static>> {
    let names = WalkList::from_slice(&[Str(b"dir"), Str(b"inner.txt")]).unwrap();
    let mut dirent = Vec::new();
    sample_stat(true).encode(&mut dirent);
    vec![
        Tmessage::Statfs(Tstatfs { fid: 0 }),
        Tmessage::Lopen(Tlopen {
            fid: 1,
            flags: O_RDWR | O_LARGEFILE,
        }),
        Tmessage::Lcreate(Tlcreate {
            fid: 1,
            name: Str(b"new.txt"),
            flags: O_WRONLY | O_CREAT | O_TRUNC,
            mode: S_IFREG | 0o644,
            gid: 0,
        }),
        Tmessage::Symlink(Tsymlink {
            fid: 1,
            name: Str(b"link"),
            symtgt: Str(b"hello.txt"),
            gid: 0,
        }),
        Tmessage::Mknod(Tmknod {
            dfid: 1,
            name: Str(b"pipe"),
            mode: S_IFIFO | 0o644,
            major: 0,
            minor: 0,
            gid: 0,
        }),
        Tmessage::Rename(Trename {
            fid: 2,
            dfid: 1,
            name: Str(b"renamed"),
        }),
        Tmessage::Readlink(Treadlink { fid: 2 }),
        Tmessage::Getattr(Tgetattr {
            fid: 1,
            request_mask: GETATTR_BASIC,
        }),
        Tmessage::Setattr(Tsetattr {
            fid: 1,
            valid: SETATTR_MODE | SETATTR_SIZE | SETATTR_MTIME | SETATTR_MTIME_SET,
            mode: 0o600,
            uid: 0,
            gid: 0,
            size: 4,
            atime_sec: 0,
            atime_nsec: 0,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 5,
        }),
        Tmessage::Xattrwalk(Txattrwalk {
            fid: 1,
            newfid: 2,
            name: Str(b"user.comment"),
        }),
        Tmessage::Xattrcreate(Txattrcreate {
            fid: 2,
            name: Str(b"user.comment"),
            attr_size: 5,
            flags: 0,
        }),
        Tmessage::Readdir(Treaddir {
            fid: 1,
            offset: 0,
            count: 8168,
        }),
        Tmessage::Fsync(Tfsync {
            fid: 1,
            datasync: 0,
        }),
        Tmessage::Lock(Tlock {
            fid: 1,
            lock_type: LOCK_WRLCK,
            flags: 0,
            start: 0,
            length: 0,
            proc_id: 42,
            client_id: Str(b"guest"),
        }),
        Tmessage::Getlock(Tgetlock {
            fid: 1,
            lock_type: LOCK_RDLCK,
            start: 0,
            length: 100,
            proc_id: 43,
            client_id: Str(b"guest"),
        }),
        Tmessage::Link(Tlink {
            dfid: 1,
            fid: 2,
            name: Str(b"hard"),
        }),
        Tmessage::Mkdir(Tmkdir {
            dfid: 1,
            name: Str(b"newdir"),
            mode: S_IFDIR | 0o755,
            gid: 0,
        }),
        Tmessage::Renameat(Trenameat {
            olddirfid: 1,
            oldname: Str(b"hello.txt"),
            newdirfid: 1,
            newname: Str(b"moved.txt"),
        }),
        Tmessage::Unlinkat(Tunlinkat {
            dirfid: 1,
            name: Str(b"dir"),
            flags: AT_REMOVEDIR,
        }),
        Tmessage::Version(Tversion {
            msize: 8192,
            version: Str(b"9P2000.L"),
        }),
        Tmessage::Auth(Tauth {
            afid: 5,
            uname: Str(b"root"),
            aname: Str(b""),
            n_uname: Some(0),
        }),
        Tmessage::Attach(Tattach {
            fid: 0,
            afid: NOFID,
            uname: Str(b"glenda"),
            aname: Str(b""),
            n_uname: None,
        }),
        Tmessage::Flush(Tflush { oldtag: 3 }),
        Tmessage::Walk(Twalk {
            fid: 0,
            newfid: 1,
            names,
        }),
        Tmessage::Open(Topen {
            fid: 1,
            mode: ORDWR | OTRUNC,
        }),
        Tmessage::Create(Tcreate {
            fid: 1,
            name: Str(b"link"),
            perm: DMSYMLINK | 0o777,
            mode: OREAD,
            extension: Some(Str(b"hello.txt")),
        }),
        Tmessage::Read(Tread {
            fid: 1,
            offset: 0,
            count: 8168,
        }),
        Tmessage::Write(Twrite {
            fid: 1,
            offset: 0,
            count: 6,
        }),
        Tmessage::Clunk(Tclunk { fid: 1 }),
        Tmessage::Remove(Tremove { fid: 1 }),
        Tmessage::Stat(Tstat { fid: 1 }),
        Tmessage::Wstat(Twstat {
            fid: 1,
            stat: StatBlob(Stat {
                name: Str(b"renamed"),
                ..Stat::DONT_TOUCH
            }),
        }),
    ]
}

/// One reply of every type.
fn r_samples(dirents: &'static [u8]) -> Vec<Rmessage<'static>> {
    let qids = WalkList::from_slice(&[QID, Qid::default()]).unwrap();
    vec![
        Rmessage::Lerror(Rlerror { ecode: 2 }),
        Rmessage::Statfs(Rstatfs {
            fs_type: 0x0102_1994,
            bsize: 4096,
            blocks: 1000,
            bfree: 500,
            bavail: 400,
            files: 100,
            ffree: 50,
            fsid: 7,
            namelen: 255,
        }),
        Rmessage::Lopen(Rlopen {
            qid: QID,
            iounit: 0,
        }),
        Rmessage::Lcreate(Rlcreate {
            qid: QID,
            iounit: 0,
        }),
        Rmessage::Symlink(Rsymlink { qid: QID }),
        Rmessage::Mknod(Rmknod { qid: QID }),
        Rmessage::Rename(Rrename {}),
        Rmessage::Readlink(Rreadlink {
            target: Str(b"../outside/secret"),
        }),
        Rmessage::Getattr(Rgetattr {
            valid: GETATTR_BASIC,
            qid: QID,
            mode: S_IFDIR | 0o755,
            uid: 0,
            gid: 0,
            nlink: 3,
            size: 4096,
            blksize: 4096,
            blocks: 8,
            atime_sec: 1_700_000_000,
            mtime_sec: 1_700_000_000,
            ctime_sec: 1_700_000_000,
            ..Default::default()
        }),
        Rmessage::Setattr(Rsetattr {}),
        Rmessage::Xattrwalk(Rxattrwalk { size: 5 }),
        Rmessage::Xattrcreate(Rxattrcreate {}),
        Rmessage::Readdir(Rreaddir {
            data: Data(dirents),
        }),
        Rmessage::Fsync(Rfsync {}),
        Rmessage::Lock(Rlock { status: 0 }),
        Rmessage::Getlock(Rgetlock {
            lock_type: LOCK_UNLCK,
            start: 0,
            length: 0,
            proc_id: 42,
            client_id: Str(b"guest"),
        }),
        Rmessage::Link(Rlink {}),
        Rmessage::Mkdir(Rmkdir { qid: QID }),
        Rmessage::Renameat(Rrenameat {}),
        Rmessage::Unlinkat(Runlinkat {}),
        Rmessage::Version(Rversion {
            msize: 8192,
            version: Str(b"9P2000.u"),
        }),
        Rmessage::Auth(Rauth { aqid: QID }),
        Rmessage::Attach(Rattach { qid: QID }),
        Rmessage::Error(Rerror {
            ename: Str(b"No such file or directory"),
            errno: Some(2),
        }),
        Rmessage::Error(Rerror {
            ename: Str(b"file does not exist"),
            errno: None,
        }),
        Rmessage::Flush(Rflush {}),
        Rmessage::Walk(Rwalk { qids }),
        Rmessage::Open(Ropen {
            qid: QID,
            iounit: 0,
        }),
        Rmessage::Create(Rcreate {
            qid: QID,
            iounit: 0,
        }),
        Rmessage::Read(Rread { count: 5 }),
        Rmessage::Write(Rwrite { count: 6 }),
        Rmessage::Clunk(Rclunk {}),
        Rmessage::Remove(Rremove {}),
        Rmessage::Stat(Rstat {
            stat: StatBlob(sample_stat(true)),
        }),
        Rmessage::Stat(Rstat {
            stat: StatBlob(sample_stat(false)),
        }),
        Rmessage::Wstat(Rwstat {}),
    ]
}

fn t_name(m: &Tmessage) -> String {
    let debug = format!("{m:?}");
    format!("t-{}", debug.split('(').next().unwrap().to_lowercase())
}

fn r_name(m: &Rmessage) -> String {
    let debug = format!("{m:?}");
    format!("r-{}", debug.split('(').next().unwrap().to_lowercase())
}

struct Corpus {
    dir: PathBuf,
    count: usize,
    bytes: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Corpus {
        let dir = root.join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Corpus {
            dir,
            count: 0,
            bytes: 0,
        }
    }

    fn add(&mut self, name: &str, bytes: &[u8]) {
        let mut path = self.dir.join(name);
        let mut n = 2;
        while path.exists() {
            path = self.dir.join(format!("{name}-{n}"));
            n += 1;
        }
        fs::write(path, bytes).unwrap();
        self.count += 1;
        self.bytes += bytes.len();
    }

    fn report(&self) {
        println!(
            "{}: {} files, {} bytes",
            self.dir.display(),
            self.count,
            self.bytes
        );
    }
}

fn decode_corpus(root: &Path) {
    let mut c = Corpus::new(root, "decode");
    // An Rreaddir payload: one entry `qid[13] offset[8] type[1] name[s]`.
    let mut dirents = Vec::new();
    QID.encode(&mut dirents);
    1u64.encode(&mut dirents);
    4u8.encode(&mut dirents);
    Str(b"dir").encode(&mut dirents);
    let dirents: &'static [u8] = Box::leak(dirents.into_boxed_slice());

    for m in t_samples() {
        let mut frame = Vec::new();
        m.encode(0x0102, &mut frame);
        c.add(&t_name(&m), &frame);
        let mut typed = vec![m.msg_type()];
        typed.extend_from_slice(&frame[HEADER_SIZE..]);
        c.add(&format!("{}-body", t_name(&m)), &typed);
    }
    for m in r_samples(dirents) {
        let mut frame = Vec::new();
        m.encode(0x0102, &mut frame);
        c.add(&r_name(&m), &frame);
        let mut typed = vec![m.msg_type()];
        typed.extend_from_slice(&frame[HEADER_SIZE..]);
        c.add(&format!("{}-body", r_name(&m)), &typed);
    }
    // Twrite and Rread with their data, the size counting it.
    let mut f = Vec::new();
    Tmessage::Write(Twrite {
        fid: 1,
        offset: 0,
        count: 6,
    })
    .encode(9, &mut f);
    f.extend_from_slice(b"hello\n");
    patch_size(&mut f, 0);
    c.add("t-write-data", &f);
    let mut f = Vec::new();
    data_reply_header(Rread::TYPE, 9, 5, &mut f);
    f.extend_from_slice(b"\x00\xffhi\n");
    c.add("r-read-data", &f);
    // A 9P2000 and a 9P2000.u directory read: stat records back to back,
    // after a type byte (the body decoders skip it).
    for (name, u) in [("stats-9p2000", false), ("stats-9p2000u", true)] {
        let mut s = vec![Rread::TYPE];
        sample_stat(u).encode(&mut s);
        Stat {
            name: Str(b"dir"),
            mode: DMDIR | 0o755,
            ..sample_stat(u)
        }
        .encode(&mut s);
        c.add(name, &s);
    }
    c.report();
}

fn frames_corpus(root: &Path) {
    let mut c = Corpus::new(root, "frames");
    let linux = Setup::byte(0, 0);
    let unix = Setup::byte(1, 0);
    let plan9 = Setup::byte(2, 0);
    let mut add = |name: &str, setup: u8, seq: &mut Seq| {
        c.add(name, &frames_input(setup, &seq.frames));
    };

    // ---- the Linux client (9P2000.L) ----
    add(
        "l-mount",
        linux,
        Seq::new()
            .getattr(0)
            .t(Tmessage::Statfs(Tstatfs { fid: 0 }))
            .walk(0, 1, &[])
            .getattr(1)
            .clunk(1),
    );
    add(
        "l-ls",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .lopen(1, O_RDONLY | O_DIRECTORY | O_LARGEFILE)
            .t(Tmessage::Readdir(Treaddir {
                fid: 1,
                offset: 0,
                count: 8168,
            }))
            .t(Tmessage::Readdir(Treaddir {
                fid: 1,
                offset: 3,
                count: 8168,
            }))
            .clunk(1)
            .walk(0, 2, &["hello.txt"])
            .getattr(2)
            .xattrwalk(2, 3, "security.selinux")
            .walk(0, 4, &["escape"])
            .getattr(4),
    );
    add(
        "l-cat",
        linux,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .getattr(1)
            .lopen(1, O_RDONLY | O_LARGEFILE)
            .read(1, 0, 8168)
            .read(1, 13, 8168)
            .clunk(1)
            .walk(0, 2, &["dir", "inner.txt"])
            .lopen(2, O_RDONLY)
            .read(2, 0, 4096),
    );
    add(
        "l-echo-create",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .lcreate(
                1,
                "new.txt",
                O_WRONLY | O_CREAT | O_TRUNC | O_LARGEFILE,
                0o644,
            )
            .write(1, 0, b"hello\n")
            .t(Tmessage::Fsync(Tfsync {
                fid: 1,
                datasync: 1,
            }))
            .clunk(1)
            .walk(0, 2, &["new.txt"])
            .getattr(2),
    );
    add(
        "l-echo-append",
        linux,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .lopen(1, O_WRONLY | O_APPEND)
            .write(1, 13, b"more\n")
            .getattr(1)
            .clunk(1),
    );
    add(
        "l-mkdir",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .t(Tmessage::Mkdir(Tmkdir {
                dfid: 1,
                name: Str(b"newdir"),
                mode: 0o755,
                gid: 0,
            }))
            .walk(0, 2, &["newdir"])
            .getattr(2)
            .lopen(2, O_RDONLY | O_DIRECTORY)
            .t(Tmessage::Readdir(Treaddir {
                fid: 2,
                offset: 0,
                count: 4096,
            })),
    );
    add(
        "l-rm",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .t(Tmessage::Unlinkat(Tunlinkat {
                dirfid: 1,
                name: Str(b"hello.txt"),
                flags: 0,
            }))
            .t(Tmessage::Unlinkat(Tunlinkat {
                dirfid: 1,
                name: Str(b"dir"),
                flags: AT_REMOVEDIR,
            }))
            .t(Tmessage::Unlinkat(Tunlinkat {
                dirfid: 1,
                name: Str(b"escape"),
                flags: 0,
            }))
            .walk(0, 2, &["empty"])
            .t(Tmessage::Remove(Tremove { fid: 2 })),
    );
    add(
        "l-symlink",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .t(Tmessage::Symlink(Tsymlink {
                fid: 1,
                name: Str(b"link"),
                symtgt: Str(b"hello.txt"),
                gid: 0,
            }))
            .walk(0, 2, &["link"])
            .t(Tmessage::Readlink(Treadlink { fid: 2 }))
            .walk(0, 3, &["escape"])
            .t(Tmessage::Readlink(Treadlink { fid: 3 }))
            .lopen(3, O_RDONLY),
    );
    add(
        "l-link-rename",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .walk(0, 2, &["hello.txt"])
            .t(Tmessage::Link(Tlink {
                dfid: 1,
                fid: 2,
                name: Str(b"hard"),
            }))
            .t(Tmessage::Renameat(Trenameat {
                olddirfid: 1,
                oldname: Str(b"hard"),
                newdirfid: 1,
                newname: Str(b"moved"),
            }))
            .walk(0, 3, &["dir"])
            .t(Tmessage::Rename(Trename {
                fid: 2,
                dfid: 3,
                name: Str(b"again"),
            }))
            .getattr(2),
    );
    add(
        "l-setattr",
        linux,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .setattr(1, SETATTR_MODE | SETATTR_CTIME, |t| t.mode = 0o600)
            .setattr(1, SETATTR_UID | SETATTR_GID, |t| {
                t.uid = 1000;
                t.gid = 1000
            })
            .setattr(1, SETATTR_SIZE, |t| t.size = 4)
            .setattr(
                1,
                SETATTR_ATIME | SETATTR_MTIME | SETATTR_ATIME_SET | SETATTR_MTIME_SET,
                |t| {
                    t.atime_sec = 1_000_000_000;
                    t.mtime_sec = 1_000_000_001;
                    t.mtime_nsec = 999_999_999;
                },
            )
            .setattr(1, SETATTR_ATIME | SETATTR_MTIME, |_| {})
            .getattr(1),
    );
    add(
        "l-xattr-get-list",
        linux,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .xattrwalk(1, 2, "user.comment")
            .read(2, 0, 256)
            .clunk(2)
            .xattrwalk(1, 3, "")
            .read(3, 0, 4096)
            .xattrwalk(1, 4, "system.posix_acl_access"),
    );
    add(
        "l-xattr-set",
        linux,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .walk(1, 2, &[])
            .t(Tmessage::Xattrcreate(Txattrcreate {
                fid: 2,
                name: Str(b"user.comment"),
                attr_size: 5,
                flags: 0,
            }))
            .write(2, 0, b"value")
            .clunk(2)
            .xattrwalk(1, 3, "user.comment")
            .read(3, 0, 5)
            .walk(1, 4, &[])
            .t(Tmessage::Xattrcreate(Txattrcreate {
                fid: 4,
                name: Str(b"user.comment"),
                attr_size: 0,
                flags: 0,
            }))
            .clunk(4),
    );
    add(
        "l-lock",
        linux,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .lopen(1, O_RDWR)
            .lock(1, LOCK_WRLCK, 42, "guest")
            .t(Tmessage::Getlock(Tgetlock {
                fid: 1,
                lock_type: LOCK_WRLCK,
                start: 0,
                length: 0,
                proc_id: 43,
                client_id: Str(b"guest"),
            }))
            .walk(0, 2, &["hello.txt"])
            .lopen(2, O_RDONLY)
            .lock(2, LOCK_RDLCK, 43, "guest")
            .lock(1, LOCK_UNLCK, 42, "guest")
            .lock(2, LOCK_RDLCK, 43, "guest")
            .clunk(1),
    );
    add(
        "l-mknod",
        linux,
        Seq::new()
            .walk(0, 1, &[])
            .t(Tmessage::Mknod(Tmknod {
                dfid: 1,
                name: Str(b"pipe"),
                mode: S_IFIFO | 0o644,
                major: 0,
                minor: 0,
                gid: 0,
            }))
            .t(Tmessage::Mknod(Tmknod {
                dfid: 1,
                name: Str(b"null"),
                mode: S_IFCHR | 0o644,
                major: 1,
                minor: 3,
                gid: 0,
            }))
            .walk(0, 2, &["fifo"])
            .getattr(2)
            .lopen(2, O_RDONLY),
    );
    add(
        "l-escape",
        linux,
        Seq::new()
            .walk(0, 1, &[".."])
            .walk(0, 2, &["escape"])
            .lopen(2, O_RDWR)
            .read(2, 0, 100)
            .walk(0, 3, &["dir", "up", "secret"])
            .walk(0, 4, &["abs"])
            .setattr(4, SETATTR_SIZE | SETATTR_MODE, |t| t.mode = 0o777)
            .walk(0, 5, &["dirlink", "inner.txt"])
            .walk(0, 6, &["dir", "up"])
            .lcreate(6, "planted", O_WRONLY | O_CREAT, 0o644)
            .walk(0, 7, &[])
            .lcreate(7, "../outside/planted", O_WRONLY | O_CREAT, 0o644)
            .walk(0, 8, &["escape"])
            .t(Tmessage::Link(Tlink {
                dfid: 0,
                fid: 8,
                name: Str(b"hardlink"),
            })),
    );
    add(
        "l-ctl",
        linux,
        Seq::new()
            .walk(0, 1, &[",ctl", "hello.txt"])
            .lopen(1, O_RDWR)
            .read(1, 0, 4096)
            .write(1, 0, b"chmod 600\nchown -1 -1\nutimes now omit\ntruncate 5\n")
            .clunk(1)
            .walk(0, 2, &[",ctl", ","])
            .lopen(2, O_WRONLY)
            .write(
                2,
                0,
                b"symlink ../outside/secret sl\nmknod p1 p 644 0 0\nrename sl /dir/sl2\nlink hello.txt h2\n",
            )
            .walk(0, 3, &[",nofollow", "escape"])
            .lopen(3, O_RDONLY)
            .read(3, 0, 100)
            .walk(0, 4, &[",ctl,nofollow", "escape"])
            .lopen(4, O_RDONLY)
            .read(4, 0, 4096)
            .walk(0, 5, &["dir", ",ctl", "up"])
            .lopen(5, O_RDWR)
            .write(5, 0, b"chmod 777\n"),
    );
    add(
        "l-errors",
        linux,
        Seq::new()
            .t(Tmessage::Flush(Tflush { oldtag: 1 }))
            .t(Tmessage::Auth(Tauth {
                afid: 9,
                uname: Str(b"root"),
                aname: Str(b""),
                n_uname: Some(0),
            }))
            .raw(vec![7, 0, 0, 0, 250, 1, 0])
            .raw(vec![9, 0, 0, 0, Tclunk::TYPE, 2, 0, 1, 0])
            .clunk(77)
            .read(0, 0, 100)
            .t(Tmessage::Readdir(Treaddir {
                fid: 0,
                offset: 0,
                count: 100,
            }))
            .walk(0, 0, &["dir"])
            .t(Tmessage::Version(Tversion {
                msize: 100,
                version: Str(b"9P2000.X"),
            }))
            .getattr(0),
    );
    // A small and a large msize.
    c_msizes(&mut add);

    // ---- 9P2000 (Plan 9) ----
    add(
        "p9-ls-cat",
        plan9,
        Seq::new()
            .walk(0, 1, &[])
            .open(1, OREAD)
            .read(1, 0, 8168)
            .clunk(1)
            .walk(0, 2, &["hello.txt"])
            .t(Tmessage::Stat(Tstat { fid: 2 }))
            .open(2, OREAD)
            .read(2, 0, 100)
            .walk(0, 3, &["escape"])
            .t(Tmessage::Stat(Tstat { fid: 3 })),
    );
    add(
        "p9-create-remove",
        plan9,
        Seq::new()
            .walk(0, 1, &[])
            .create(1, "new", 0o644, OWRITE, None)
            .write(1, 0, b"plan 9\n")
            .clunk(1)
            .walk(0, 2, &[])
            .create(2, "newdir", DMDIR | 0o755, OREAD, None)
            .t(Tmessage::Remove(Tremove { fid: 2 }))
            .walk(0, 3, &["empty"])
            .open(3, ORDWR | ORCLOSE)
            .clunk(3),
    );
    add(
        "p9-wstat",
        plan9,
        Seq::new()
            .walk(0, 1, &["hello.txt"])
            .t(Tmessage::Wstat(Twstat {
                fid: 1,
                stat: StatBlob(Stat {
                    name: Str(b"renamed.txt"),
                    ..Stat::DONT_TOUCH
                }),
            }))
            .t(Tmessage::Wstat(Twstat {
                fid: 1,
                stat: StatBlob(Stat {
                    mode: 0o600,
                    length: 3,
                    mtime: 1_000_000_000,
                    ..Stat::DONT_TOUCH
                }),
            }))
            .t(Tmessage::Wstat(Twstat {
                fid: 1,
                stat: StatBlob(Stat {
                    gid: Str(b"root"),
                    ..Stat::DONT_TOUCH
                }),
            }))
            .t(Tmessage::Stat(Tstat { fid: 1 })),
    );
    // ---- 9P2000.u ----
    add(
        "u-create-special",
        unix,
        Seq::new()
            .walk(0, 1, &[])
            .create(1, "link", DMSYMLINK | 0o777, OREAD, Some("hello.txt"))
            .walk(0, 2, &[])
            .create(2, "pipe", DMNAMEDPIPE | 0o644, OREAD, Some(""))
            .walk(0, 3, &[])
            .create(3, "null", DMDEVICE | 0o644, OREAD, Some("c 1 3"))
            .walk(0, 4, &["escape"])
            .t(Tmessage::Stat(Tstat { fid: 4 }))
            .walk(0, 5, &["dir"])
            .open(5, OREAD)
            .read(5, 0, 8168)
            .t(Tmessage::Wstat(Twstat {
                fid: 4,
                stat: StatBlob(Stat {
                    ext: Some(StatExtension {
                        extension: Str(b""),
                        n_uid: 1000,
                        n_gid: u32::MAX,
                        n_muid: u32::MAX,
                    }),
                    ..Stat::DONT_TOUCH
                }),
            })),
    );
    c.report();
}

fn c_msizes(add: &mut impl FnMut(&str, u8, &mut Seq)) {
    for (name, index) in [("l-msize-4096", 1), ("l-msize-1m", 3)] {
        add(
            name,
            Setup::byte(0, index),
            Seq::new()
                .walk(0, 1, &["hello.txt"])
                .lopen(1, O_RDONLY)
                .read(1, 0, u32::MAX)
                .walk(0, 2, &[])
                .lopen(2, O_RDONLY | O_DIRECTORY)
                .t(Tmessage::Readdir(Treaddir {
                    fid: 2,
                    offset: 0,
                    count: u32::MAX,
                }))
                .walk(0, 3, &[",ctl", "hello.txt"])
                .lopen(3, O_RDONLY)
                .read(3, 0, 10),
        );
    }
}

fn ctl_corpus(root: &Path) {
    let mut c = Corpus::new(root, "ctl_syntax");
    let mut text = |name: &str, mode: u8, t: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(t);
        c.add(name, &v);
    };
    text("name-ctl", 0, b",ctl");
    text("name-both", 0, b",ctl,nofollow");
    text("name-nofollow", 0, b",nofollow,nofollow");
    text(
        "file-commands",
        1,
        b"chmod 644\nchown 1000 -1\nutimes now omit\ntruncate 0\n",
    );
    text(
        "file-utimes",
        1,
        b"utimes 1700000000 5 -1 999999999\n\nchown -1 100",
    );
    text("file-bad", 1, b"chmod 644\nchmod 8\n");
    text(
        "dir-commands",
        2,
        b"symlink ../target%20x name\nlink a b\nrename a/b /c\nmknod p1 p 644 0 0\nmknod dev c 600 1 3\nchmod 755\n",
    );
    text(
        "dir-mknod",
        2,
        b"mknod f f 0644 0 0\nmknod s s 600 0 0\nmknod b b 600 8 0",
    );
    text("percent", 3, b"hello world%\xff\x00%41%zz");
    text("percent-valid", 3, b"a%20b%25c%c3%A9");
    let mut st = Vec::new();
    for v in [2049u64, 131_074] {
        st.extend_from_slice(&v.to_le_bytes());
    }
    st.extend_from_slice(&0o100644u32.to_le_bytes());
    st.extend_from_slice(&1u64.to_le_bytes());
    st.extend_from_slice(&1000u32.to_le_bytes());
    st.extend_from_slice(&100u32.to_le_bytes());
    for v in [0u64, 5, 4096, 8] {
        st.extend_from_slice(&v.to_le_bytes());
    }
    for (sec, nsec) in [(1_700_000_000i64, 1u32), (-5, 999_999_999), (0, 0)] {
        st.extend_from_slice(&sec.to_le_bytes());
        st.extend_from_slice(&nsec.to_le_bytes());
    }
    let mut plain = st.clone();
    plain.extend_from_slice(&[0, 11]);
    plain.extend_from_slice(b"hello world");
    text("stat-line", 4, &plain);
    let mut link = st;
    link.extend_from_slice(&[1, 1]);
    link.extend_from_slice(b"l../a b%c");
    text("stat-line-symlink", 4, &link);
    c.report();
}

fn cli_args_corpus(root: &Path) {
    let mut c = Corpus::new(root, "cli_args");
    c.add("uid-maps", b":0:100000:65536:\n:65536:0:1:\n");
    c.add("gid-map-overlap", b":0:0:10:\n:5:100:10:\n");
    c.add("map-top", b":4294901760:4294901760:65536:\n");
    c.add("models", b"passthrough\nmapped-xattr\nmapped\nnone\n");
    c.add(
        "listen",
        b"unix:/run/9p.sock\ntcp:564\ntcp:0.0.0.0:5640\ntcp:[::1]:5640\n",
    );
    c.report();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    decode_corpus(&root);
    frames_corpus(&root);
    ctl_corpus(&root);
    cli_args_corpus(&root);
}
