//! Symlinks: a share holding links out of it (absolute to a file, to a
//! directory, to `/` and `/etc/passwd`, `..`-heavy relative ones), links
//! that stay inside (`a/b/../../f`, to a directory), loops, a self-loop
//! and a chain past the kernel's 40, walked, stat'ed, opened, read, listed,
//! created and renamed through in every dialect (9P2000 follows them
//! inside the share; `,nofollow` and `,ctl` too); and a host process
//! swapping a directory and a symlink out of the share (RENAME_EXCHANGE)
//! against walks, opens and reads. Nothing outside the share is ever read
//! or changed, and every request is answered within a deadline.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inproc::{InProc, Reply, ROOT};
use crate::special_files::{Client, Timed, DIALECTS};
use crate::tree::fingerprint;

const SECRET: &[u8] = b"outside the share";

#[test]
fn a_directory_swapped_for_a_symlink_out_never_leads_out() {
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    let outside = top.path().join("outside");
    std::fs::create_dir_all(share.join("d")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(share.join("d/file"), "inside").unwrap();
    std::fs::write(outside.join("file"), SECRET).unwrap();
    std::os::unix::fs::symlink(&outside, share.join("e")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let d = CString::new(share.join("d").as_os_str().as_encoded_bytes()).unwrap();
        let e = CString::new(share.join("e").as_os_str().as_encoded_bytes()).unwrap();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: both are C strings; renameat2 with AT_FDCWD.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        d.as_ptr(),
                        libc::AT_FDCWD,
                        e.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
                swaps += 1;
            }
            swaps
        })
    };
    let config = Config::new(&share);
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut reads, mut tries) = (0, 0);
    for version in ["9P2000.L", "9P2000.u", "9P2000"].iter().cycle() {
        if Instant::now() > deadline {
            break;
        }
        let mut c = InProc::attach(&config, Users::Guest, version, 0);
        for _ in 0..200 {
            tries += 1;
            if c.walk(ROOT, 10, &["d", "file"]).errno().is_some() {
                continue;
            }
            let open = match *version {
                "9P2000.L" => c.call(Tmessage::Lopen(Tlopen { fid: 10, flags: 0 })),
                _ => c.call(Tmessage::Open(Topen { fid: 10, mode: 0 })),
            };
            if open.errno().is_none() {
                let read = c.call(Tmessage::Read(Tread {
                    fid: 10,
                    offset: 0,
                    count: 100,
                }));
                if read.errno().is_none() {
                    assert_ne!(read.data(), SECRET, "{version} read outside the share");
                    reads += 1;
                }
            }
            c.clunk(10);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 1000 && reads > 100,
        "{swaps} swaps, {reads} reads of {tries}"
    );
}

// ---- a share full of symlinks, in every dialect ----

const F: &[u8] = b"the share's f\n";
const INSIDE_PASSWD: &[u8] = b"the share's own etc/passwd\n";
/// The name every attempt to make something through a link uses.
const ESCAPED: &str = "vu9p-escaped";

/// Where a 9P2000 walk that follows a link ends: a file with this
/// content, a directory of the share (its path), or nowhere (a dangling
/// link: an empty file with mode 0).
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    File(&'static [u8]),
    Dir(&'static str),
    Dangling,
}

struct Link {
    names: Vec<&'static str>,
    target: String,
    end: End,
}

impl Link {
    fn is_dir(&self) -> bool {
        matches!(self.end, End::Dir(_)) || self.names[0].starts_with("out-dir")
    }
}

struct Tree {
    _top: tempfile::TempDir,
    share: PathBuf,
    outside: PathBuf,
    links: Vec<Link>,
}

/// The share: `f`, `a/b/`, its own `etc/passwd`, and links. Beside it,
/// `outside/secret`.
fn tree() -> Tree {
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    let outside = top.path().join("outside");
    std::fs::create_dir_all(share.join("a/b")).unwrap();
    std::fs::create_dir(share.join("etc")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(share.join("f"), F).unwrap();
    std::fs::write(share.join("etc/passwd"), INSIDE_PASSWD).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    let abs = |p: PathBuf| p.display().to_string();
    let table: [(&[&'static str], String, End); 14] = [
        (&["out-file"], abs(outside.join("secret")), End::Dangling),
        (&["out-dir"], abs(outside.clone()), End::Dangling),
        (&["out-dir-rel"], "../outside".into(), End::Dangling),
        (
            &["a", "b", "up"],
            "../../../outside/secret".into(),
            End::Dangling,
        ),
        (&["slash"], "/".into(), End::Dir("")),
        (&["passwd"], "/etc/passwd".into(), End::File(INSIDE_PASSWD)),
        (
            &["up-passwd"],
            "../../../../etc/passwd".into(),
            End::File(INSIDE_PASSWD),
        ),
        (&["inside"], "a/b/../../f".into(), End::File(F)),
        (&["in-dir"], "a".into(), End::Dir("a")),
        (&["loop1"], "loop2".into(), End::Dangling),
        (&["loop2"], "loop1".into(), End::Dangling),
        (&["self"], "self".into(), End::Dangling),
        // chain0 -> chain1 -> ... -> chain40 -> f: 41 links from chain0,
        // one more than the kernel follows; 40 from chain1.
        (&["chain0"], "chain1".into(), End::Dangling),
        (&["chain1"], "chain2".into(), End::File(F)),
    ];
    let mut links = Vec::new();
    for (names, target, end) in table {
        let path: PathBuf = names.iter().fold(share.clone(), |p, n| p.join(n));
        std::os::unix::fs::symlink(&target, path).unwrap();
        links.push(Link {
            names: names.to_vec(),
            target,
            end,
        });
    }
    for i in 2..=40 {
        let target = if i == 40 {
            "f".into()
        } else {
            format!("chain{}", i + 1)
        };
        std::os::unix::fs::symlink(target, share.join(format!("chain{i}"))).unwrap();
    }
    // The host agrees on the loops and the chain's limit.
    let errno = |name: &str| std::fs::read(share.join(name)).map_err(|e| e.raw_os_error());
    assert_eq!(errno("chain1"), Ok(F.to_vec()));
    for name in ["chain0", "loop1", "self"] {
        assert_eq!(errno(name), Err(Some(libc::ELOOP)), "{name}");
    }
    Tree {
        _top: top,
        share,
        outside,
        links,
    }
}

/// What no reply may hold: the bytes of files outside the share, the
/// inodes of those on the share's filesystem (as qid paths, and in a
/// control file's stat line).
struct Forbidden {
    bytes: Vec<Vec<u8>>,
    inodes: Vec<u64>,
}

fn forbidden(tree: &Tree) -> Forbidden {
    use std::os::unix::fs::MetadataExt;
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let first_line = passwd.split(|&b| b == b'\n').next().unwrap().to_vec();
    let mut bytes = vec![SECRET.to_vec(), first_line];
    let dev = std::fs::metadata(&tree.share).unwrap().dev();
    let mut inodes = Vec::new();
    let outside = [
        tree.outside.clone(),
        tree.outside.join("secret"),
        "/".into(),
        "/etc".into(),
        "/etc/passwd".into(),
    ];
    for path in outside {
        let md = std::fs::metadata(&path).unwrap();
        if md.dev() == dev {
            inodes.push(md.ino());
            bytes.push(format!(" inode {} ", md.ino()).into_bytes());
        }
    }
    Forbidden { bytes, inodes }
}

/// A session (each request within DEADLINE) whose every reply is
/// searched for anything from outside the share.
struct Guard<'a> {
    c: Timed,
    forbidden: &'a Forbidden,
    leaks: Vec<String>,
}

impl Client for Guard<'_> {
    fn call_with(&mut self, msg: Tmessage<'_>, data: &[u8]) -> Reply {
        let reply = self.c.call_with(msg, data);
        for bytes in &self.forbidden.bytes {
            if reply.0.windows(bytes.len()).any(|w| w == bytes) {
                let what = String::from_utf8_lossy(bytes);
                self.leaks
                    .push(format!("{msg:?}: the reply holds {what:?}"));
            }
        }
        for qid in qids(&reply) {
            if self.forbidden.inodes.contains(&qid.path) {
                self.leaks
                    .push(format!("{msg:?}: a qid of a file outside: {qid:?}"));
            }
        }
        reply
    }
}

/// Every qid a reply carries (a directory read's too).
fn qids(reply: &Reply) -> Vec<Qid> {
    match reply.msg() {
        Rmessage::Walk(w) => w.qids.as_slice().to_vec(),
        Rmessage::Stat(s) => vec![s.stat.0.qid],
        Rmessage::Getattr(a) => vec![a.qid],
        Rmessage::Lopen(o) => vec![o.qid],
        Rmessage::Open(o) => vec![o.qid],
        Rmessage::Lcreate(o) => vec![o.qid],
        Rmessage::Create(o) => vec![o.qid],
        Rmessage::Mkdir(o) => vec![o.qid],
        Rmessage::Symlink(o) => vec![o.qid],
        Rmessage::Mknod(o) => vec![o.qid],
        Rmessage::Readdir(_) => entries(reply.data()).into_iter().map(|e| e.0).collect(),
        Rmessage::Read(_) => records(reply.data())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.qid)
            .collect(),
        _ => Vec::new(),
    }
}

/// A 9P2000.L directory read's (qid, name) entries.
fn entries(data: &[u8]) -> Vec<(Qid, String)> {
    let mut d = Decoder::new(data);
    let mut out = Vec::new();
    while d.remaining() > 0 {
        let qid: Qid = d.decode().unwrap();
        let _offset: u64 = d.decode().unwrap();
        let _type: u8 = d.decode().unwrap();
        let name: Str = d.decode().unwrap();
        out.push((qid, String::from_utf8_lossy(name.as_bytes()).into_owned()));
    }
    out
}

/// A stat record with its strings owned.
#[derive(Debug)]
struct Record {
    qid: Qid,
    mode: u32,
    length: u64,
    name: String,
    extension: Option<String>,
}

/// A 9P2000 directory read's stat records (None if the data is not that).
fn records(data: &[u8]) -> Option<Vec<Record>> {
    let mut d = Decoder::new(data);
    let mut out = Vec::new();
    while d.remaining() > 0 {
        let st: Stat = d.decode().ok()?;
        out.push(record(&st));
    }
    Some(out)
}

fn record(st: &Stat<'_>) -> Record {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Record {
        qid: st.qid,
        mode: st.mode,
        length: st.length,
        name: text(st.name.as_bytes()),
        extension: st.ext.map(|e| text(e.extension.as_bytes())),
    }
}

// Fids.
const AT: u32 = 20;
const DIR: u32 = 21;
const CTL: u32 = 22;
const VICTIM: u32 = 23;

struct Checks<'a, 'b> {
    c: &'a mut Guard<'b>,
    dialect: &'a str,
    root: Qid,
    failures: Vec<String>,
}

impl Checks<'_, '_> {
    fn check(&mut self, what: impl std::fmt::Display, ok: bool, detail: impl std::fmt::Debug) {
        if !ok {
            let dialect = self.dialect;
            self.failures.push(format!("{dialect} {what}: {detail:?}"));
        }
    }

    fn linux(&self) -> bool {
        self.dialect == "9P2000.L"
    }

    /// Fid `fid` walked afresh from the root over all of `names`.
    fn at(&mut self, fid: u32, names: &[&str]) -> bool {
        self.c.clunk(fid);
        let reply = self.c.walk(ROOT, fid, names);
        let whole = matches!(reply.msg(), Rmessage::Walk(w) if w.qids.len() == names.len());
        self.check(format_args!("walk {names:?}"), whole, reply.msg());
        whole
    }

    /// Expects an error (any, or `errno`) for `msg`.
    fn refused(&mut self, what: impl std::fmt::Display, msg: Tmessage<'_>, errno: Option<i32>) {
        let reply = self.c.call(msg);
        let ok = match errno {
            Some(e) => reply.errno() == Some(e),
            None => reply.errno().is_some(),
        };
        self.check(what, ok, format!("{:?}, want {errno:?}", reply.msg()));
    }

    fn succeeds(&mut self, what: impl std::fmt::Display, msg: Tmessage<'_>) -> Reply {
        let reply = self.c.call(msg);
        self.check(what, reply.errno().is_none(), reply.msg());
        reply
    }

    fn open(&mut self, fid: u32, flags: u32, mode: u8) -> Reply {
        if self.linux() {
            self.c.call(Tmessage::Lopen(Tlopen { fid, flags }))
        } else {
            self.c.call(Tmessage::Open(Topen { fid, mode }))
        }
    }

    fn read_all(&mut self, fid: u32) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let reply = self.c.call(Tmessage::Read(Tread {
                fid,
                offset: data.len() as u64,
                count: 8192,
            }));
            self.check("Tread", reply.errno().is_none(), reply.msg());
            if reply.errno().is_some() || reply.data().is_empty() {
                return data;
            }
            data.extend_from_slice(reply.data());
        }
    }

    /// The link as this dialect shows it: stat, open, read.
    fn link(&mut self, link: &Link) {
        let names = link.names.clone();
        let target = link.target.as_str();
        if !self.at(AT, &names) {
            return;
        }
        match self.dialect {
            "9P2000.L" => {
                let getattr = Tmessage::Getattr(Tgetattr {
                    fid: AT,
                    request_mask: 0x7ff,
                });
                if let Rmessage::Getattr(a) = self.succeeds("Tgetattr", getattr).msg() {
                    let got = (a.mode, a.size);
                    let want = (libc::S_IFLNK | 0o777, target.len() as u64);
                    self.check(format_args!("Rgetattr {names:?}"), got == want, (got, want));
                }
                let readlink = Tmessage::Readlink(Treadlink { fid: AT });
                if let Rmessage::Readlink(r) = self.succeeds("Treadlink", readlink).msg() {
                    let got = r.target.as_bytes();
                    self.check(
                        format_args!("Rreadlink {names:?}"),
                        got == target.as_bytes(),
                        got,
                    );
                }
                for flags in [0, libc::O_RDWR as u32 | libc::O_TRUNC as u32] {
                    let open = Tmessage::Lopen(Tlopen { fid: AT, flags });
                    let what = format_args!("Tlopen {names:?} {flags:#o}");
                    self.refused(what, open, Some(libc::ELOOP));
                }
            }
            "9P2000.u" => {
                let stat = self.stat(AT);
                let want = (DMSYMLINK | 0o777, target.len() as u64, Some(target.into()));
                self.check(
                    format_args!("Rstat {names:?}"),
                    stat == want,
                    (&stat, &want),
                );
                self.content_is(&names, target.as_bytes());
            }
            _ => self.followed(link),
        }
        self.control_files(link);
    }

    /// (mode, length, extension) of a fid's Rstat.
    fn stat(&mut self, fid: u32) -> (u32, u64, Option<String>) {
        let reply = self.succeeds("Tstat", Tmessage::Stat(Tstat { fid }));
        match reply.msg() {
            Rmessage::Stat(s) => {
                let r = record(&s.stat.0);
                (r.mode, r.length, r.extension)
            }
            _ => (u32::MAX, 0, None),
        }
    }

    /// A Plan 9 open of `names` reads `content`, and refuses writing.
    fn content_is(&mut self, names: &[&str], content: &[u8]) {
        self.at(AT, names);
        self.succeeds("Topen", Tmessage::Open(Topen { fid: AT, mode: 0 }));
        let data = self.read_all(AT);
        self.check(
            format_args!("read {names:?}"),
            data == content,
            String::from_utf8_lossy(&data),
        );
        for mode in [1, 2, 0x11] {
            self.at(AT, names);
            let open = Tmessage::Open(Topen { fid: AT, mode });
            self.refused(format_args!("Topen {names:?} {mode:#x}"), open, None);
        }
    }

    /// 9P2000: the link followed inside the share; through `,nofollow`,
    /// a file holding its target.
    fn followed(&mut self, link: &Link) {
        let names = link.names.clone();
        let (mode, length, _) = self.stat(AT);
        match link.end {
            End::File(content) => {
                let ok = mode & !0o777 == 0 && length == content.len() as u64;
                self.check(format_args!("Rstat {names:?}"), ok, (mode, length));
                self.at(AT, &names);
                self.succeeds("Topen", Tmessage::Open(Topen { fid: AT, mode: 0 }));
                let data = self.read_all(AT);
                self.check(
                    format_args!("read {names:?}"),
                    data == content,
                    String::from_utf8_lossy(&data),
                );
            }
            End::Dir(path) => {
                let stat = self.succeeds("Tstat", Tmessage::Stat(Tstat { fid: AT }));
                let qid = match stat.msg() {
                    Rmessage::Stat(s) => s.stat.0.qid,
                    _ => Qid::default(),
                };
                let want = if path.is_empty() {
                    self.root.path
                } else {
                    self.root_entry_qid(path)
                };
                let ok = mode & DMDIR != 0 && qid.path == want;
                self.check(format_args!("Rstat {names:?}"), ok, (mode, qid, want));
                self.succeeds("Topen", Tmessage::Open(Topen { fid: AT, mode: 0 }));
                let data = self.read_all(AT);
                let listed =
                    records(&data).map(|r| r.into_iter().map(|r| r.name).collect::<Vec<_>>());
                let want = if path.is_empty() { "f" } else { "b" };
                let ok = listed.as_ref().is_some_and(|l| l.iter().any(|n| n == want));
                self.check(format_args!("list {names:?}"), ok, listed);
            }
            End::Dangling => {
                self.check(
                    format_args!("Rstat {names:?}"),
                    (mode, length) == (0, 0),
                    (mode, length),
                );
                self.at(AT, &names);
                let open = Tmessage::Open(Topen { fid: AT, mode: 0 });
                self.refused(format_args!("Topen {names:?}"), open, Some(libc::EACCES));
            }
        }
        // Through `,nofollow`: a read-only file holding the target.
        let mut nofollow = vec![",nofollow"];
        nofollow.extend_from_slice(&names);
        self.at(AT, &nofollow);
        let stat = self.stat(AT);
        let want = (DMAPPEND | 0o444, link.target.len() as u64, None);
        self.check(
            format_args!("Rstat {nofollow:?}"),
            stat == want,
            (&stat, &want),
        );
        self.content_is(&nofollow, link.target.as_bytes());
    }

    /// The qid path of a directory of the share, by its host inode.
    fn root_entry_qid(&mut self, path: &str) -> u64 {
        self.c.clunk(DIR);
        let reply = self.c.walk(ROOT, DIR, &[path]);
        let path = match reply.msg() {
            Rmessage::Walk(w) => w.qids.as_slice().last().map_or(0, |q| q.path),
            _ => 0,
        };
        self.c.clunk(DIR);
        path
    }

    /// `,ctl/LINK` reads the stat of what the link leads to inside the
    /// share (the link's own when it leads nowhere); `,ctl,nofollow/LINK`
    /// the link's.
    fn control_files(&mut self, link: &Link) {
        let (last, parent) = link.names.split_last().unwrap();
        let target = &link.target;
        for ctl in [",ctl", ",ctl,nofollow"] {
            let mut names = parent.to_vec();
            names.extend([ctl, *last]);
            self.at(CTL, &names);
            let open = self.open(CTL, 0, 0);
            self.check(
                format_args!("open {names:?}"),
                open.errno().is_none(),
                open.msg(),
            );
            let line = String::from_utf8_lossy(&self.read_all(CTL)).into_owned();
            let wants = match (ctl, link.end) {
                (",ctl", End::File(content)) => vec![format!(" size {} ", content.len())],
                (",ctl", End::Dir(_)) => vec![" mode 040".into()],
                _ => vec![" mode 0120777 ".into(), format!(" symlink {target}\n")],
            };
            let ok = wants.iter().all(|w| line.contains(w.as_str()));
            self.check(format_args!("read {names:?}"), ok, (line, wants));
        }
        self.c.clunk(CTL);
    }

    /// Every entry of the share's root as a directory read shows it.
    fn listing(&mut self, links: &[Link]) {
        self.at(DIR, &[]);
        let open = self.open(DIR, libc::O_DIRECTORY as u32, 0);
        self.check("open /", open.errno().is_none(), open.msg());
        if self.linux() {
            let readdir = Tmessage::Readdir(Treaddir {
                fid: DIR,
                offset: 0,
                count: 65536,
            });
            let reply = self.succeeds("Treaddir /", readdir);
            let names: Vec<String> = entries(reply.data()).into_iter().map(|e| e.1).collect();
            let ok = links
                .iter()
                .filter(|l| l.names.len() == 1)
                .all(|l| names.contains(&l.names[0].to_string()));
            self.check("Treaddir / lists every link", ok, names);
        } else {
            let data = self.read_all(DIR);
            let records = records(&data).unwrap_or_default();
            for link in links.iter().filter(|l| l.names.len() == 1) {
                let found = records.iter().find(|r| r.name == link.names[0]);
                let ok = found.is_some_and(|r| match (self.dialect, link.end) {
                    ("9P2000.u", _) => {
                        r.mode == DMSYMLINK | 0o777
                            && r.extension.as_deref() == Some(link.target.as_str())
                    }
                    (_, End::Dangling) => r.mode == 0 && r.length == 0,
                    (_, End::File(content)) => {
                        r.mode & !0o777 == 0 && r.length == content.len() as u64
                    }
                    (_, End::Dir(_)) => r.mode & DMDIR != 0,
                });
                self.check(format_args!("listed {}", link.names[0]), ok, found);
            }
        }
        self.c.clunk(DIR);
    }
}

impl Checks<'_, '_> {
    /// Making, linking, renaming and removing through links: refused where
    /// the link leads out (or is not followed), done inside the share where
    /// 9P2000 follows it inside.
    fn changes(&mut self, tree: &Tree) {
        let plan9 = self.dialect == "9P2000";
        for link in tree.links.iter().filter(|l| l.is_dir()) {
            let names = link.names.clone();
            if plan9 && link.end != End::Dangling {
                continue; // followed inside: below
            }
            self.at(AT, &names);
            if self.linux() {
                self.at(VICTIM, &["f"]);
                let name = Str::from(ESCAPED);
                let requests = [
                    Tmessage::Lcreate(Tlcreate {
                        fid: AT,
                        name,
                        flags: (libc::O_RDWR | libc::O_CREAT) as u32,
                        mode: 0o644,
                        gid: 0,
                    }),
                    Tmessage::Mkdir(Tmkdir {
                        dfid: AT,
                        name,
                        mode: 0o755,
                        gid: 0,
                    }),
                    Tmessage::Symlink(Tsymlink {
                        fid: AT,
                        name,
                        symtgt: "x".into(),
                        gid: 0,
                    }),
                    Tmessage::Mknod(Tmknod {
                        dfid: AT,
                        name,
                        mode: libc::S_IFREG | 0o644,
                        major: 0,
                        minor: 0,
                        gid: 0,
                    }),
                    Tmessage::Link(Tlink {
                        dfid: AT,
                        fid: VICTIM,
                        name,
                    }),
                    Tmessage::Renameat(Trenameat {
                        olddirfid: ROOT,
                        oldname: "f".into(),
                        newdirfid: AT,
                        newname: name,
                    }),
                    Tmessage::Rename(Trename {
                        fid: VICTIM,
                        dfid: AT,
                        name,
                    }),
                    Tmessage::Unlinkat(Tunlinkat {
                        dirfid: AT,
                        name: "secret".into(),
                        flags: 0,
                    }),
                ];
                for msg in requests {
                    self.refused(format_args!("{names:?}: {msg:?}"), msg, None);
                }
            } else {
                let creates: [(u32, u8, &str); 3] = [
                    (0o644, 2, ""),
                    (DMDIR | 0o755, 0, ""),
                    (DMSYMLINK | 0o777, 0, "x"),
                ];
                for (perm, mode, extension) in creates {
                    let create = Tmessage::Create(Tcreate {
                        fid: AT,
                        name: ESCAPED.into(),
                        perm,
                        mode,
                        extension: (self.dialect == "9P2000.u").then_some(extension.into()),
                    });
                    self.refused(format_args!("{names:?}: Tcreate {perm:#o}"), create, None);
                }
            }
        }
        if plan9 {
            // Followed inside: `slash` is the share's root, `in-dir` is `a`.
            for (link, dir) in [("slash", ""), ("in-dir", "a")] {
                let name = format!("made-through-{link}");
                self.at(AT, &[link]);
                let create = Tmessage::Create(Tcreate {
                    fid: AT,
                    name: name.as_str().into(),
                    perm: 0o644,
                    mode: 2,
                    extension: None,
                });
                self.succeeds(format_args!("Tcreate through {link}"), create);
                let made = tree.share.join(dir).join(&name).is_file();
                self.check(format_args!("{name} in the share's {dir:?}"), made, ());
            }
        }
        // Truncation, modes, owners and times of links to files out of
        // the share (not followed, or followed to nothing).
        let out_files = tree
            .links
            .iter()
            .filter(|l| !l.is_dir() && (!plan9 || l.end == End::Dangling));
        for link in out_files {
            let names = link.names.clone();
            self.at(AT, &names);
            if self.linux() {
                let changes = [(8, 0o777), (1, 0o777)]; // size 0, mode
                for (valid, mode) in changes {
                    let setattr = Tmessage::Setattr(Tsetattr {
                        fid: AT,
                        valid,
                        mode,
                        ..Default::default()
                    });
                    self.refused(
                        format_args!("{names:?}: Tsetattr {valid:#x}"),
                        setattr,
                        None,
                    );
                }
                // The link's own owner and times: no matter.
                let setattr = Tmessage::Setattr(Tsetattr {
                    fid: AT,
                    valid: 2 | 4 | 16 | 32,
                    uid: 1,
                    gid: 1,
                    ..Default::default()
                });
                self.c.call(setattr);
            } else {
                let changes = [("length 0", 0, u32::MAX), ("mode 0777", u64::MAX, 0o777)];
                for (what, length, mode) in changes {
                    let stat = Stat {
                        length,
                        mode,
                        ext: (self.dialect == "9P2000.u").then_some(StatExtension::DONT_TOUCH),
                        ..Stat::DONT_TOUCH
                    };
                    let wstat = Tmessage::Wstat(Twstat {
                        fid: AT,
                        stat: StatBlob(stat),
                    });
                    self.refused(format_args!("{names:?}: Twstat {what}"), wstat, None);
                }
            }
        }
        self.control_commands(tree);
        // A file renamed over links out: the link goes, not its target.
        self.at(VICTIM, &["victim"]);
        if self.linux() {
            let rename = Tmessage::Renameat(Trenameat {
                olddirfid: ROOT,
                oldname: "victim".into(),
                newdirfid: ROOT,
                newname: "out-file".into(),
            });
            self.succeeds("Trenameat victim out-file", rename);
        } else {
            let stat = Stat {
                name: "out-file".into(),
                ext: (self.dialect == "9P2000.u").then_some(StatExtension::DONT_TOUCH),
                ..Stat::DONT_TOUCH
            };
            let wstat = Tmessage::Wstat(Twstat {
                fid: VICTIM,
                stat: StatBlob(stat),
            });
            self.succeeds("Twstat name victim -> out-file", wstat);
        }
        let renamed = std::fs::read(tree.share.join("out-file")).ok();
        self.check(
            "out-file after the rename",
            renamed.as_deref() == Some(b"victim"),
            renamed,
        );
        if plan9 {
            // Removing a followed link removes the link.
            self.at(AT, &["out-dir-rel"]);
            self.succeeds("Tremove out-dir-rel", Tmessage::Remove(Tremove { fid: AT }));
            let gone = std::fs::symlink_metadata(tree.share.join("out-dir-rel")).is_err();
            self.check("out-dir-rel removed", gone, ());
        }
        for fid in [AT, DIR, CTL, VICTIM] {
            self.c.clunk(fid);
        }
    }

    /// Commands to control files naming paths through links: refused where
    /// they lead out, done inside where a link in the middle of a path is
    /// followed inside the share.
    fn control_commands(&mut self, tree: &Tree) {
        let refused = [
            format!("mknod out-dir/{ESCAPED} f 600 0 0"),
            format!("mknod out-dir-rel/{ESCAPED} f 600 0 0"),
            format!("mknod out-dir/sub/{ESCAPED} f 600 0 0"),
            format!("mknod slash/{ESCAPED} f 600 0 0"),
            format!("mknod a/b/up/{ESCAPED} f 600 0 0"),
            format!("mknod passwd/{ESCAPED} f 600 0 0"),
            format!("symlink x out-dir/{ESCAPED}"),
            format!("link f out-dir/{ESCAPED}"),
            format!("rename f out-dir/{ESCAPED}"),
            format!("rename f out-dir-rel/{ESCAPED}"),
        ];
        for command in &refused {
            let write = self.ctl_write(&[",ctl", ","], command);
            self.check(format_args!("{command:?}"), write.is_some(), "done");
        }
        // `slash/etc` is the share's etc.
        let command = format!("mknod slash/etc/{ESCAPED} f 600 0 0");
        if self.ctl_write(&[",ctl", ","], &command).is_none() {
            let made = tree.share.join("etc").join(ESCAPED).is_file();
            self.check(
                format_args!("{command:?} made in the share's etc"),
                made,
                (),
            );
        }
        // A link's control file: its own attributes at most.
        for link in ["out-file", "out-dir", "out-dir-rel"] {
            for command in ["truncate 0", "chmod 777", "chown 1 1", "utimes 0 0 0 0"] {
                self.ctl_write(&[",ctl", link], command);
            }
        }
        for command in ["truncate 0", "chmod 777", "chown 1 1", "utimes 0 0 0 0"] {
            self.ctl_write(&["a", "b", ",ctl", "up"], command);
        }
    }

    /// Writes `command` to the control file at `names`: its errno.
    fn ctl_write(&mut self, names: &[&str], command: &str) -> Option<i32> {
        self.at(CTL, names);
        let open = self.open(CTL, libc::O_WRONLY as u32, 1);
        self.check(
            format_args!("open {names:?}"),
            open.errno().is_none(),
            open.msg(),
        );
        let errno = self.c.write(CTL, format!("{command}\n").as_bytes()).errno();
        self.c.clunk(CTL);
        errno
    }
}

/// /etc/passwd's content and attributes.
fn host_passwd() -> (Vec<u8>, String) {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata("/etc/passwd").unwrap();
    let attrs = format!(
        "{:o} {} {} {} {}.{}",
        md.mode(),
        md.uid(),
        md.gid(),
        md.size(),
        md.mtime(),
        md.mtime_nsec()
    );
    (std::fs::read("/etc/passwd").unwrap(), attrs)
}

/// The share's root qid (a 9P2000 session's stat, a 9P2000.L getattr).
fn root_qid(c: &mut impl Client, dialect: &str) -> Qid {
    let reply = if dialect == "9P2000.L" {
        c.call(Tmessage::Getattr(Tgetattr {
            fid: ROOT,
            request_mask: 0x7ff,
        }))
    } else {
        c.call(Tmessage::Stat(Tstat { fid: ROOT }))
    };
    qids(&reply)[0]
}

/// Every link of `tree()` in every dialect: walked, stat'ed, opened, read,
/// listed, through `,nofollow` and `,ctl`, made and renamed through. No
/// reply holds a byte or an inode from outside the share, nothing outside
/// changes, loops and the 41-link chain end promptly (a dangling file in
/// 9P2000), links inside resolve inside.
#[test]
fn links_out_of_the_share_lead_nowhere_in_any_dialect() {
    use std::os::unix::fs::MetadataExt;
    let passwd = host_passwd();
    for dialect in DIALECTS {
        let tree = tree();
        std::fs::write(tree.share.join("victim"), "victim").unwrap();
        let forbidden = forbidden(&tree);
        let outside = fingerprint(&tree.outside);
        let mut config = Config::new(&tree.share);
        config.ctl = true;
        let mut guard = Guard {
            c: Timed::attach(&config, dialect, 0),
            forbidden: &forbidden,
            leaks: Vec::new(),
        };
        let root = root_qid(&mut guard, dialect);
        // qid paths are inodes here: an outside file's would be seen.
        assert_eq!(root.path, std::fs::metadata(&tree.share).unwrap().ino());
        let mut checks = Checks {
            c: &mut guard,
            dialect,
            root,
            failures: Vec::new(),
        };
        checks.listing(&tree.links);
        for link in &tree.links {
            checks.link(link);
        }
        checks.changes(&tree);
        let failures = std::mem::take(&mut checks.failures);
        assert!(
            guard.leaks.is_empty(),
            "{dialect}:\n{}",
            guard.leaks.join("\n")
        );
        assert!(failures.is_empty(), "{dialect}:\n{}", failures.join("\n"));
        assert_eq!(
            fingerprint(&tree.outside),
            outside,
            "{dialect}: outside changed"
        );
        assert_eq!(host_passwd(), passwd, "{dialect}: /etc/passwd changed");
        for dir in ["/", "/etc"] {
            let made = Path::new(dir).join(ESCAPED);
            assert!(
                std::fs::symlink_metadata(&made).is_err(),
                "{dialect}: {made:?}"
            );
        }
    }
}

/// The guard sees a file from outside: a session on the outside
/// directory itself reads the secret, and its qid.
#[test]
fn the_guard_sees_what_comes_from_outside() {
    let tree = tree();
    let forbidden = forbidden(&tree);
    let mut guard = Guard {
        c: Timed::attach(&Config::new(&tree.outside), "9P2000.L", 0),
        forbidden: &forbidden,
        leaks: Vec::new(),
    };
    guard.walk(ROOT, AT, &["secret"]).ok();
    guard
        .call(Tmessage::Lopen(Tlopen { fid: AT, flags: 0 }))
        .ok();
    guard.read(AT, 0).ok();
    assert_eq!(guard.leaks.len(), 3, "{:?}", guard.leaks); // walk, open, read
}

/// A guest's symlink is not a file to truncate or sync, whichever
/// security model keeps it (under mapped-xattr it is a regular host file
/// holding the target): every request that would open it is refused as
/// under passthrough, and its target stays.
#[test]
fn a_guests_symlink_is_never_opened_as_its_host_file() {
    use vhost_user_9p::server::security::SecurityModel;
    for model in [SecurityModel::Passthrough, SecurityModel::MappedXattr] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.ctl = true;
        config.security_model = model;
        let mut c = Timed::attach(&config, "9P2000.L", 0);
        let symlink = Tmessage::Symlink(Tsymlink {
            fid: ROOT,
            name: "l".into(),
            symtgt: "target".into(),
            gid: 0,
        });
        assert_eq!(c.call(symlink).errno(), None, "{model:?}");
        let mut failures = Vec::new();
        for dialect in DIALECTS {
            let mut c = Timed::attach(&config, dialect, 0);
            let mut refused = |what: &str, names: &[&str], msg: Tmessage<'_>, data: &[u8]| {
                c.clunk(AT);
                c.walk(ROOT, AT, names).ok();
                if names[0].starts_with(",ctl") {
                    let open = match dialect {
                        "9P2000.L" => Tmessage::Lopen(Tlopen { fid: AT, flags: 1 }),
                        _ => Tmessage::Open(Topen { fid: AT, mode: 1 }),
                    };
                    c.call(open).ok();
                }
                let errno = c.call_with(msg, data).errno();
                if errno != Some(libc::ELOOP) {
                    failures.push(format!("{model:?} {dialect} {what}: {errno:?}, want ELOOP"));
                }
            };
            let write = Tmessage::Write(Twrite {
                fid: AT,
                offset: 0,
                count: 11,
            });
            refused(
                "ctl truncate",
                &[",ctl,nofollow", "l"],
                write,
                b"truncate 0\n",
            );
            if dialect == "9P2000.L" {
                let size = Tmessage::Setattr(Tsetattr {
                    fid: AT,
                    valid: 8,
                    ..Default::default()
                });
                refused("Tsetattr size", &["l"], size, b"");
                let fsync = Tmessage::Fsync(Tfsync {
                    fid: AT,
                    datasync: 0,
                });
                refused("Tfsync", &["l"], fsync, b"");
                let open = Tmessage::Lopen(Tlopen { fid: AT, flags: 2 });
                refused("Tlopen", &["l"], open, b"");
            } else if dialect == "9P2000.u" {
                let stat = Stat {
                    length: 0,
                    ext: Some(StatExtension::DONT_TOUCH),
                    ..Stat::DONT_TOUCH
                };
                let wstat = Tmessage::Wstat(Twstat {
                    fid: AT,
                    stat: StatBlob(stat),
                });
                refused("Twstat length", &["l"], wstat, b"");
            }
        }
        c.walk(ROOT, AT, &["l"]).ok();
        let readlink = c.call(Tmessage::Readlink(Treadlink { fid: AT }));
        let target = match readlink.msg() {
            Rmessage::Readlink(r) => r.target.as_bytes().to_vec(),
            other => format!("{other:?}").into_bytes(),
        };
        if target != b"target" {
            let target = String::from_utf8_lossy(&target);
            failures.push(format!("{model:?}: the link's target is now {target:?}"));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// A 9P2000 walk follows a link whose target goes through `..` (and
/// stays inside) however busy the host is: renames anywhere on the host,
/// here in a directory that has nothing to do with the share, make the
/// kernel's scoped lookup (RESOLVE_IN_ROOT) answer EAGAIN for such a path,
/// which asks the caller to try again, not to see a dangling link.
#[test]
fn links_through_dotdot_resolve_while_the_host_renames_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("f"), F).unwrap();
    std::os::unix::fs::symlink("a/b/../../f", dir.path().join("inside")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    for name in ["x", "y"] {
        std::fs::write(elsewhere.path().join(name), name).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let renames = Arc::new(AtomicU64::new(0));
    let renamer = {
        let (stop, renames) = (stop.clone(), renames.clone());
        let x = CString::new(elsewhere.path().join("x").as_os_str().as_encoded_bytes()).unwrap();
        let y = CString::new(elsewhere.path().join("y").as_os_str().as_encoded_bytes()).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: both are C strings; renameat2 with AT_FDCWD.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        x.as_ptr(),
                        libc::AT_FDCWD,
                        y.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
                renames.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut c = InProc::attach(&Config::new(dir.path()), Users::Guest, "9P2000", 0);
    // The walks start once the renames have.
    while renames.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    let (mut dangling, walks) = (0, 10_000);
    for _ in 0..walks {
        c.walk(ROOT, AT, &["inside"]).ok();
        let stat = c.call(Tmessage::Stat(Tstat { fid: AT }));
        if matches!(stat.msg(), Rmessage::Stat(s) if s.stat.0.length != F.len() as u64) {
            dangling += 1;
        }
        c.clunk(AT);
    }
    stop.store(true, Ordering::Relaxed);
    renamer.join().unwrap();
    let renames = renames.load(Ordering::Relaxed);
    assert_eq!(
        dangling, 0,
        "of {walks} walks to a/b/../../f ({renames} renames)"
    );
}
