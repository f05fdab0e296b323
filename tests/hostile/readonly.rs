//! `--readonly` holds whatever a client sends: every changing request of
//! every dialect (ORCLOSE opens and name-only Twstat included), xattrs and
//! control files, leaves the whole tree as it was.

use std::path::Path;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inproc::{InProc, ROOT};
use crate::tree::fingerprint;

const ORCLOSE: u8 = 0x40;

fn share(dir: &Path) {
    std::fs::write(dir.join("f"), b"keep me").unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/g"), b"and me").unwrap();
    std::os::unix::fs::symlink("f", dir.join("l")).unwrap();
}

/// A Twstat that changes nothing but what `change` sets.
fn wstat<'a>(fid: u32, change: impl FnOnce(&mut Stat<'a>)) -> Tmessage<'a> {
    let mut stat = Stat::DONT_TOUCH;
    change(&mut stat);
    Tmessage::Wstat(Twstat {
        fid,
        stat: StatBlob(stat),
    })
}

/// Sends `msg` on a fresh clone of `path` (fid 10) and expects `errno`.
#[track_caller]
fn refused(c: &mut InProc, path: &[&str], msg: impl FnOnce(u32) -> Tmessage<'static>, errno: i32) {
    c.walk(ROOT, 10, path).ok();
    let reply = c.call(msg(10));
    assert_eq!(reply.errno(), Some(errno), "{:?}", reply.msg());
    c.clunk(10);
}

fn config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    config.readonly = true;
    config.ctl = true;
    config
}

#[test]
fn orclose_and_name_only_wstat_change_nothing_in_9p2000() {
    let dir = tempfile::tempdir().unwrap();
    share(dir.path());
    let before = fingerprint(dir.path());
    for version in ["9P2000", "9P2000.u"] {
        let mut c = InProc::attach(&config(dir.path()), Users::Guest, version, 0);
        // Open to be removed at clunk, then clunk: the hole this closes.
        c.walk(ROOT, 10, &["f"]).ok();
        let open = c.call(Tmessage::Open(Topen {
            fid: 10,
            mode: ORCLOSE,
        }));
        assert_eq!(open.errno(), Some(libc::EROFS), "{version}");
        c.clunk(10);
        // A Twstat that only renames.
        refused(
            &mut c,
            &["f"],
            |f| wstat(f, |s| s.name = "renamed".into()),
            libc::EROFS,
        );
        // Every other change a Plan 9 client can ask for.
        refused(
            &mut c,
            &["f"],
            |f| wstat(f, |s| s.mode = 0o777),
            libc::EROFS,
        );
        refused(&mut c, &["f"], |f| wstat(f, |s| s.length = 0), libc::EROFS);
        refused(&mut c, &["f"], |f| wstat(f, |s| s.mtime = 1), libc::EROFS);
        refused(
            &mut c,
            &["f"],
            |f| wstat(f, |s| s.gid = "0".into()),
            libc::EROFS,
        );
        for mode in [1u8, 2, 0x10, 0x80 | 1] {
            refused(
                &mut c,
                &["f"],
                |f| Tmessage::Open(Topen { fid: f, mode }),
                libc::EROFS,
            );
        }
        for (perm, ext) in [
            (0o644, ""),
            (0x8000_0000 | 0o755, ""),
            (0x0200_0000 | 0o777, "f"),
        ] {
            refused(
                &mut c,
                &[],
                |f| {
                    Tmessage::Create(Tcreate {
                        fid: f,
                        name: "new".into(),
                        perm,
                        mode: 1,
                        extension: Some(ext.into()),
                    })
                },
                libc::EROFS,
            );
        }
        // Tremove is refused and still clunks its fid.
        c.walk(ROOT, 11, &["d", "g"]).ok();
        let remove = c.call(Tmessage::Remove(Tremove { fid: 11 }));
        assert_eq!(remove.errno(), Some(libc::EROFS));
        assert!(c.clunk(11).errno().is_some(), "Tremove left fid 11");
        // A control file opened for writing.
        c.walk(ROOT, 12, &[",ctl", "f"]).ok();
        let open = c.call(Tmessage::Open(Topen { fid: 12, mode: 1 }));
        assert_eq!(open.errno(), Some(libc::EROFS));
        c.clunk(12);
        // The all-"don't touch" Twstat is a sync, not a change.
        c.walk(ROOT, 13, &["f"]).ok();
        c.call(wstat(13, |_| {})).ok();
    }
    assert_eq!(fingerprint(dir.path()), before);
}

#[test]
fn every_changing_9p2000_l_request_is_erofs() {
    let dir = tempfile::tempdir().unwrap();
    share(dir.path());
    let before = fingerprint(dir.path());
    let mut c = InProc::attach(&config(dir.path()), Users::Guest, "9P2000.L", 0);
    let erofs = libc::EROFS;
    let name = || Str::from("new");
    refused(
        &mut c,
        &[],
        |fid| {
            Tmessage::Lcreate(Tlcreate {
                fid,
                name: name(),
                flags: 2,
                mode: 0o644,
                gid: 0,
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &[],
        |dfid| {
            Tmessage::Mkdir(Tmkdir {
                dfid,
                name: name(),
                mode: 0o755,
                gid: 0,
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &[],
        |fid| {
            Tmessage::Symlink(Tsymlink {
                fid,
                name: name(),
                symtgt: "f".into(),
                gid: 0,
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &[],
        |dfid| {
            Tmessage::Mknod(Tmknod {
                dfid,
                name: name(),
                mode: libc::S_IFIFO | 0o644,
                major: 0,
                minor: 0,
                gid: 0,
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &[],
        |dirfid| {
            Tmessage::Unlinkat(Tunlinkat {
                dirfid,
                name: "f".into(),
                flags: 0,
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &[],
        |olddirfid| {
            Tmessage::Renameat(Trenameat {
                olddirfid,
                oldname: "f".into(),
                newdirfid: ROOT,
                newname: name(),
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &["f"],
        |fid| {
            Tmessage::Rename(Trename {
                fid,
                dfid: ROOT,
                name: name(),
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &["f"],
        |fid| {
            Tmessage::Link(Tlink {
                dfid: ROOT,
                fid,
                name: name(),
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &["f"],
        |fid| {
            Tmessage::Setattr(Tsetattr {
                fid,
                valid: 1,
                mode: 0o777,
                ..Default::default()
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &["f"],
        |fid| {
            Tmessage::Setattr(Tsetattr {
                fid,
                valid: 8,
                size: 0,
                ..Default::default()
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &["f"],
        |fid| {
            Tmessage::Xattrcreate(Txattrcreate {
                fid,
                name: "user.x".into(),
                attr_size: 1,
                flags: 0,
            })
        },
        erofs,
    );
    for flags in [1u32, 2, 0o1000] {
        refused(
            &mut c,
            &["f"],
            |fid| Tmessage::Lopen(Tlopen { fid, flags }),
            erofs,
        );
    }
    refused(
        &mut c,
        &["f"],
        |fid| {
            Tmessage::Write(Twrite {
                fid,
                offset: 0,
                count: 0,
            })
        },
        erofs,
    );
    refused(
        &mut c,
        &["d", "g"],
        |fid| Tmessage::Remove(Tremove { fid }),
        erofs,
    );
    refused(
        &mut c,
        &[",ctl", "f"],
        |fid| Tmessage::Lopen(Tlopen { fid, flags: 1 }),
        erofs,
    );
    // Plan 9's messages are not 9P2000.L's: refused before anything else.
    let eopnotsupp = libc::EOPNOTSUPP;
    refused(
        &mut c,
        &["f"],
        |fid| Tmessage::Open(Topen { fid, mode: ORCLOSE }),
        eopnotsupp,
    );
    refused(
        &mut c,
        &["f"],
        |f| wstat(f, |s| s.name = "renamed".into()),
        eopnotsupp,
    );
    // Reading still works.
    c.walk(ROOT, 20, &["f"]).ok();
    c.call(Tmessage::Lopen(Tlopen { fid: 20, flags: 0 })).ok();
    let read = c
        .call(Tmessage::Read(Tread {
            fid: 20,
            offset: 0,
            count: 100,
        }))
        .ok();
    assert_eq!(read.data(), b"keep me");
    assert_eq!(fingerprint(dir.path()), before);
}

/// Without --readonly, a 9P2000 session's ORCLOSE still removes at clunk
/// and a name-only Twstat still renames, while 9P2000.L has neither.
#[test]
fn the_gate_lets_a_writable_share_change() {
    let dir = tempfile::tempdir().unwrap();
    share(dir.path());
    let mut config = config(dir.path());
    config.readonly = false;
    let mut c = InProc::attach(&config, Users::Guest, "9P2000", 0);
    c.walk(ROOT, 10, &["f"]).ok();
    c.call(Tmessage::Open(Topen {
        fid: 10,
        mode: ORCLOSE,
    }))
    .ok();
    c.clunk(10).ok();
    assert!(!dir.path().join("f").exists());
    c.walk(ROOT, 11, &["d"]).ok();
    c.call(wstat(11, |s| s.name = "e".into())).ok();
    assert!(dir.path().join("e/g").exists());
    // The root cannot be opened to be removed.
    c.walk(ROOT, 12, &[]).ok();
    let open = c.call(Tmessage::Open(Topen {
        fid: 12,
        mode: ORCLOSE,
    }));
    assert_eq!(open.errno(), Some(libc::EBUSY));
    let mut l = InProc::attach(&config, Users::Guest, "9P2000.L", 0);
    l.walk(ROOT, 10, &["e"]).ok();
    let wstat = l.call(wstat(10, |s| s.name = "x".into()));
    assert_eq!(wstat.errno(), Some(libc::EOPNOTSUPP));
    assert!(dir.path().join("e/g").exists());
}
