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
use crate::special_files::{Timed, TypedClient, DIALECTS};
use crate::tree::fingerprint;

mod changes;
mod checks;

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

impl TypedClient for Guard<'_> {
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
fn root_qid(c: &mut impl TypedClient, dialect: &str) -> Qid {
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
