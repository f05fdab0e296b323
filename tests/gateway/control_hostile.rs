//! A 9P2000 upstream's `,ctl` conventions under attack: each user's
//! changes go through that user's own control root, names that would
//! stand in for the control namespace are not made, and paths that went
//! stale (another client moved things) never lead a change to another
//! file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use vhost_user_9p::protocol::*;

use crate::conn::*;
use crate::Rig;

fn ctl_rig() -> Rig {
    crate::rig_with(&["--ctl"], &["--upstream-version", "9p2000"])
}

fn attach_as(c: &mut Conn, fid: u32, uid: u32) {
    let attach = Tattach {
        fid,
        afid: NOFID,
        uname: "".into(),
        aname: "".into(),
        n_uname: Some(uid),
    };
    c.call(Tmessage::Attach(attach)).unwrap();
}

fn setattr(fid: u32, valid: u32) -> Tsetattr {
    Tsetattr {
        fid,
        valid,
        mode: 0,
        uid: 0,
        gid: 0,
        size: 0,
        atime_sec: 0,
        atime_nsec: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    }
}

fn chmod(fid: u32, mode: u32) -> Tsetattr {
    Tsetattr {
        mode,
        ..setattr(fid, 0x1)
    }
}

fn mode(rig: &Rig, name: &str) -> u32 {
    std::fs::metadata(rig.host(name)).unwrap().mode() & 0o7777
}

#[test]
fn each_user_changes_files_as_itself_after_another_attached() {
    let rig = ctl_rig();
    let perms = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(rig.share.path(), perms).unwrap();
    std::fs::write(rig.host("secret"), "root only").unwrap();
    let perms = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(rig.host("secret"), perms).unwrap();
    // Root attaches first (as a Linux mount does), then nobody.
    let mut c = rig.connect();
    attach_as(&mut c, 1, 0);
    attach_as(&mut c, 10, 65534);
    assert_eq!(c.walk(10, 11, &["secret"]), Ok(1));
    let refused = c.call(Tmessage::Setattr(chmod(11, 0o666))).map(drop);
    assert_eq!(refused, Err(libc::EPERM));
    let truncate = Tsetattr {
        size: 0,
        ..setattr(11, 0x8)
    };
    assert!(c.call(Tmessage::Setattr(truncate)).is_err());
    assert_eq!(mode(&rig, "secret"), 0o600);
    assert_eq!(std::fs::read(rig.host("secret")).unwrap(), b"root only");
    // What nobody makes is nobody's (a control file's symlink takes the
    // directory's group, which nobody must be in).
    let perms = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(rig.share.path(), perms).unwrap();
    std::os::unix::fs::chown(rig.share.path(), None, Some(65534)).unwrap();
    let symlink = Tsymlink {
        fid: 10,
        name: "mine".into(),
        symtgt: "x".into(),
        gid: 65534,
    };
    c.call(Tmessage::Symlink(symlink)).unwrap();
    let link = std::fs::symlink_metadata(rig.host("mine")).unwrap();
    assert_eq!(link.uid(), 65534);
    // Root's changes still work, through root's own root.
    assert_eq!(c.walk(1, 2, &["secret"]), Ok(1));
    c.call(Tmessage::Setattr(chmod(2, 0o640))).unwrap();
    assert_eq!(mode(&rig, "secret"), 0o640);
}

#[test]
fn control_names_are_not_made_and_a_planted_one_is_not_followed() {
    let rig = ctl_rig();
    std::fs::create_dir(rig.host("sub")).unwrap();
    std::fs::write(rig.host("sub/planted"), "x").unwrap();
    std::fs::write(rig.host("real"), "x").unwrap();
    let mut a = rig.connect();
    a.attach(1);
    let gid = unsafe { libc::getegid() };
    for name in [",nofollow", ",ctl", ",ctl,nofollow"] {
        let symlink = Tsymlink {
            fid: 1,
            name: name.into(),
            symtgt: "sub".into(),
            gid,
        };
        let made = a.call(Tmessage::Symlink(symlink)).map(drop);
        assert_eq!(made, Err(libc::EINVAL), "{name}");
    }
    assert_eq!(a.walk(1, 2, &[]), Ok(0));
    assert_eq!(a.lcreate(2, ",nofollow", 0o644), Err(libc::EINVAL));
    // Other names with commas are names.
    assert_eq!(a.lcreate(2, ",other", 0o644), Ok(()));
    // One planted on the host: the next session's root stays the root,
    // without the conventions.
    std::os::unix::fs::symlink("sub", rig.host(",nofollow")).unwrap();
    let mut b = rig.connect();
    b.attach(1);
    assert_eq!(b.walk(1, 2, &["real"]), Ok(1));
    assert_eq!(b.walk(1, 3, &["planted"]), Err(libc::ENOENT));
}

#[test]
fn a_stale_path_never_leads_a_rename_or_a_link_to_another_file() {
    let rig = ctl_rig();
    std::fs::create_dir(rig.host("d")).unwrap();
    std::fs::write(rig.host("x"), "moved").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["d"]), Ok(1));
    // Another client moves d away and makes a new d.
    std::fs::rename(rig.host("d"), rig.host("d.old")).unwrap();
    std::fs::create_dir(rig.host("d")).unwrap();
    let rename = Trenameat {
        olddirfid: 1,
        oldname: "x".into(),
        newdirfid: 2,
        newname: "x".into(),
    };
    let _ = c.call(Tmessage::Renameat(rename));
    assert!(!rig.host("d/x").exists(), "into a directory never named");
    // A link of a fid whose path now names another file.
    std::fs::write(rig.host("f"), "first").unwrap();
    assert_eq!(c.walk(1, 3, &["f"]), Ok(1));
    std::fs::rename(rig.host("f"), rig.host("f.old")).unwrap();
    std::fs::write(rig.host("f"), "second").unwrap();
    let link = Tlink {
        dfid: 1,
        fid: 3,
        name: "lnk".into(),
    };
    let _ = c.call(Tmessage::Link(link));
    let linked = std::fs::read_to_string(rig.host("lnk")).ok();
    assert_ne!(linked.as_deref(), Some("second"));
}

#[test]
fn a_fid_whose_path_is_gone_is_served_from_its_own_file() {
    let rig = ctl_rig();
    std::fs::create_dir(rig.host("d")).unwrap();
    std::fs::write(rig.host("d/f"), "hello").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["d", "f"]), Ok(2));
    std::fs::rename(rig.host("d"), rig.host("e")).unwrap();
    assert_eq!(c.getattr(2).map(|a| a.size), Ok(5));
    c.call(Tmessage::Setattr(chmod(2, 0o600))).unwrap();
    assert_eq!(mode(&rig, "e/f"), 0o600);
    // Open, then unlinked with its directory: fstat and ftruncate.
    std::fs::create_dir(rig.host("g")).unwrap();
    std::fs::write(rig.host("g/h"), "hello").unwrap();
    assert_eq!(c.walk(1, 3, &["g", "h"]), Ok(2));
    c.lopen(3, O_RDWR).unwrap();
    std::fs::remove_file(rig.host("g/h")).unwrap();
    std::fs::remove_dir(rig.host("g")).unwrap();
    assert_eq!(c.getattr(3).map(|a| a.size), Ok(5));
    let truncate = Tsetattr {
        size: 1,
        ..setattr(3, 0x8)
    };
    c.call(Tmessage::Setattr(truncate)).unwrap();
    assert_eq!(c.getattr(3).map(|a| a.size), Ok(1));
}

#[test]
fn a_path_that_was_briefly_a_file_is_not_remembered_without_control_files() {
    let rig = ctl_rig();
    std::fs::create_dir(rig.host("d")).unwrap();
    std::fs::write(rig.host("d/x"), "x").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["d", "x"]), Ok(2));
    std::fs::rename(rig.host("d"), rig.host("d2")).unwrap();
    std::fs::write(rig.host("d"), "now a file").unwrap();
    c.getattr(2).unwrap();
    std::fs::remove_file(rig.host("d")).unwrap();
    std::fs::rename(rig.host("d2"), rig.host("d")).unwrap();
    let mut other = rig.connect();
    other.attach(1);
    assert_eq!(other.walk(1, 3, &["d", "x"]), Ok(2));
    let chown = Tsetattr {
        uid: 4321,
        ..setattr(3, 0x2)
    };
    other.call(Tmessage::Setattr(chown)).unwrap();
    assert_eq!(std::fs::metadata(rig.host("d/x")).unwrap().uid(), 4321);
}

#[test]
fn times_before_1970_are_set() {
    let rig = ctl_rig();
    std::fs::write(rig.host("f"), "x").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["f"]), Ok(1));
    let old = Tsetattr {
        mtime_sec: (-86400i64) as u64,
        ..setattr(2, 0x20 | 0x100)
    };
    c.call(Tmessage::Setattr(old)).unwrap();
    assert_eq!(std::fs::metadata(rig.host("f")).unwrap().mtime(), -86400);
    assert_eq!(c.getattr(2).map(|a| a.mtime_sec as i64), Ok(-86400));
}
