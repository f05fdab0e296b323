//! A 9P2000.L client through a gateway whose upstream speaks 9P2000.u or
//! plain 9P2000 (this daemon, asked with --upstream-version): each request
//! 9P2000 lacks is translated (src/gateway/plan9.rs), checked on the host.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use vhost_user_9p::protocol::*;

use crate::conn::*;
use crate::{rig, Rig};

const S_IFMT: u32 = 0o170000;

fn unix_rig() -> Rig {
    rig(&[
        "--upstream-version",
        "9p2000.u",
        "--trace",
        "--log-level",
        "info",
    ])
}

fn plan9_rig() -> Rig {
    rig(&[
        "--upstream-version",
        "9p2000",
        "--trace",
        "--log-level",
        "info",
    ])
}

fn call_ok(c: &mut Conn, request: Tmessage<'_>) {
    let what = format!("{request:?}");
    if let Err(e) = c.call(request) {
        panic!("{what}: errno {e}");
    }
}

fn mkdir(c: &mut Conn, dfid: u32, name: &str) -> Result<(), i32> {
    let gid = unsafe { libc::getegid() };
    let request = Tmkdir {
        dfid,
        name: name.into(),
        mode: 0o750,
        gid,
    };
    c.call(Tmessage::Mkdir(request)).map(drop)
}

/// Every entry of directory `fid` (opened), read `count` bytes at a time:
/// (name, offset) in order.
fn readdir_in(c: &mut Conn, fid: u32, start: u64, count: u32) -> Vec<(String, u64)> {
    let mut entries = Vec::new();
    let mut offset = start;
    loop {
        let request = Treaddir { fid, offset, count };
        let Ok(Rmessage::Readdir(r)) = c.call(Tmessage::Readdir(request)) else {
            panic!("no Rreaddir");
        };
        if r.data.0.is_empty() {
            return entries;
        }
        assert!(r.data.0.len() <= count as usize);
        let mut d = Decoder::new(r.data.0);
        while d.remaining() > 0 {
            let _: Qid = d.decode().unwrap();
            offset = d.decode().unwrap();
            let _: u8 = d.decode().unwrap();
            let name: Str = d.decode().unwrap();
            entries.push((String::from_utf8(name.0.to_vec()).unwrap(), offset));
        }
    }
}

/// What both dialects translate alike.
fn exercise_common(rig: &Rig) -> Conn {
    std::fs::write(rig.host("hello.txt"), "hello from the host\n").unwrap();
    std::fs::create_dir(rig.host("dir")).unwrap();
    std::fs::create_dir(rig.host("many")).unwrap();
    for i in 0..300 {
        std::fs::write(rig.host(&format!("many/entry-{i:03}")), "").unwrap();
    }
    let mut c = rig.connect();
    c.attach(1);

    // Tgetattr from a Tstat.
    assert_eq!(c.walk(1, 2, &["hello.txt"]), Ok(1));
    let attr = c.getattr(2).unwrap();
    let host = std::fs::metadata(rig.host("hello.txt")).unwrap();
    assert_eq!(attr.mode, host.mode(), "{:o}", attr.mode);
    assert_eq!(
        (attr.size, attr.uid, attr.gid),
        (20, host.uid(), host.gid())
    );
    assert_eq!(attr.mtime_sec, host.mtime() as u64);
    assert_eq!(c.walk(1, 3, &["dir"]), Ok(1));
    assert_eq!(c.getattr(3).unwrap().mode & S_IFMT, 0o040000);
    // Tlopen, Tread.
    c.lopen(2, O_RDONLY).unwrap();
    assert_eq!(c.read_all(2), b"hello from the host\n");
    c.clunk(2).unwrap();

    // Tlcreate, Twrite.
    c.lcreate(3, "new.txt", 0o640).unwrap();
    assert_eq!(c.write(3, 0, b"written through 9P2000"), Ok(22));
    c.clunk(3).unwrap();
    let new = rig.host("dir/new.txt");
    assert_eq!(std::fs::read(&new).unwrap(), b"written through 9P2000");
    assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o777, 0o640);
    // Tsetattr: chmod, truncate and mtime as one Twstat.
    assert_eq!(c.walk(1, 4, &["dir", "new.txt"]), Ok(2));
    let setattr = Tsetattr {
        fid: 4,
        valid: 0x1 | 0x8 | 0x20 | 0x100, // mode, size, mtime (given)
        mode: 0o600,
        uid: 0,
        gid: 0,
        size: 7,
        atime_sec: 0,
        atime_nsec: 0,
        mtime_sec: 1_000_000_000,
        mtime_nsec: 0,
    };
    call_ok(&mut c, Tmessage::Setattr(setattr));
    let meta = std::fs::metadata(&new).unwrap();
    assert_eq!((meta.len(), meta.mode() & 0o777), (7, 0o600));
    assert_eq!(meta.mtime(), 1_000_000_000);
    call_ok(
        &mut c,
        Tmessage::Fsync(Tfsync {
            fid: 4,
            datasync: 0,
        }),
    );
    c.clunk(4).unwrap();

    // Tmkdir.
    mkdir(&mut c, 1, "made").unwrap();
    assert!(rig.host("made").is_dir());
    assert_eq!(mkdir(&mut c, 1, "made"), Err(libc::EEXIST));
    // Trenameat within a directory; across directories EXDEV.
    let renameat = |old: &'static str, newdir: u32, new: &'static str| Trenameat {
        olddirfid: 1,
        oldname: Str(old.as_bytes()),
        newdirfid: newdir,
        newname: Str(new.as_bytes()),
    };
    call_ok(
        &mut c,
        Tmessage::Renameat(renameat("hello.txt", 1, "renamed.txt")),
    );
    assert!(!rig.host("hello.txt").exists());
    assert_eq!(
        std::fs::read(rig.host("renamed.txt")).unwrap(),
        b"hello from the host\n"
    );
    assert_eq!(c.walk(1, 5, &["made"]), Ok(1));
    let across = c.call(Tmessage::Renameat(renameat("renamed.txt", 5, "x")));
    assert_eq!(across.map(drop), Err(libc::EXDEV));
    // The same directory by another fid is no move.
    assert_eq!(c.walk(1, 6, &[]), Ok(0));
    call_ok(
        &mut c,
        Tmessage::Renameat(renameat("renamed.txt", 6, "again.txt")),
    );
    assert!(rig.host("again.txt").exists());
    c.clunk(6).unwrap();
    // Tunlinkat: a file, then a directory.
    let unlinkat = |dirfid: u32, name: &'static str, flags: u32| Tunlinkat {
        dirfid,
        name: name.into(),
        flags,
    };
    call_ok(&mut c, Tmessage::Unlinkat(unlinkat(1, "again.txt", 0)));
    assert!(!rig.host("again.txt").exists());
    c.clunk(5).unwrap();
    call_ok(&mut c, Tmessage::Unlinkat(unlinkat(1, "made", 0x200)));
    assert!(!rig.host("made").exists());
    let gone = c.call(Tmessage::Unlinkat(unlinkat(1, "made", 0)));
    assert_eq!(gone.map(drop), Err(libc::ENOENT));

    // Treaddir from stat records, in pieces of 512 bytes: every entry
    // once, offsets that resume anywhere.
    assert_eq!(c.walk(1, 7, &["many"]), Ok(1));
    c.lopen(7, O_RDONLY | O_DIRECTORY).unwrap();
    let all = readdir_in(&mut c, 7, 0, 512);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    let host: BTreeSet<String> = std::fs::read_dir(rig.host("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 300, "no entry twice");
    assert_eq!(unique, host.iter().map(String::as_str).collect());
    // From the top again, and from an entry's offset (backwards: read
    // again from the top; forwards: skipped to).
    assert_eq!(readdir_in(&mut c, 7, 0, 8192), all);
    let (_, middle) = all[149].clone();
    assert_eq!(readdir_in(&mut c, 7, middle, 1024), all[150..].to_vec());
    let (_, early) = all[9].clone();
    assert_eq!(readdir_in(&mut c, 7, early, 300), all[10..].to_vec());
    c.clunk(7).unwrap();

    // Names that are not one entry never go upstream: ".." would be the
    // directory's parent (the Tremove's target).
    for bad in ["..", ".", "", "a/b"] {
        let request = Tunlinkat {
            dirfid: 1,
            name: Str(bad.as_bytes()),
            flags: 0x200,
        };
        assert_eq!(
            c.call(Tmessage::Unlinkat(request)).map(drop),
            Err(libc::EINVAL),
            "{bad:?}"
        );
    }
    assert_eq!(c.walk(1, 9, &["dir/new.txt"]), Err(libc::EINVAL));
    assert!(rig.host("dir").is_dir());
    // unlink of a directory, rmdir of a file: what Linux answers.
    let unlink_dir = Tunlinkat {
        dirfid: 1,
        name: "dir".into(),
        flags: 0,
    };
    assert_eq!(
        c.call(Tmessage::Unlinkat(unlink_dir)).map(drop),
        Err(libc::EISDIR)
    );
    assert_eq!(c.walk(1, 9, &["dir"]), Ok(1));
    let rmdir_file = Tunlinkat {
        dirfid: 9,
        name: "new.txt".into(),
        flags: 0x200,
    };
    assert_eq!(
        c.call(Tmessage::Unlinkat(rmdir_file)).map(drop),
        Err(libc::ENOTDIR)
    );
    assert!(rig.host("dir/new.txt").exists());
    // A Treaddir too small for one entry: EINVAL, not an empty directory.
    c.lopen(9, O_RDONLY | O_DIRECTORY).unwrap();
    let tiny = Treaddir {
        fid: 9,
        offset: 0,
        count: 10,
    };
    assert_eq!(c.call(Tmessage::Readdir(tiny)).map(drop), Err(libc::EINVAL));
    c.clunk(9).unwrap();

    // What 9P2000 has no form for.
    call_ok(&mut c, Tmessage::Statfs(Tstatfs { fid: 1 }));
    let xattr = Txattrwalk {
        fid: 1,
        newfid: 8,
        name: "user.x".into(),
    };
    assert_eq!(
        c.call(Tmessage::Xattrwalk(xattr)).map(drop),
        Err(libc::EOPNOTSUPP)
    );
    assert_eq!(c.walk(1, 8, &["renamed.txt"]), Err(libc::ENOENT));
    c
}

#[test]
fn a_9p2000_u_upstream_serves_a_linux_client() {
    let rig = unix_rig();
    let mut c = exercise_common(&rig);
    let gid = unsafe { libc::getegid() };
    // Symlinks, devices, hard links: 9P2000.u's DMSYMLINK, DMNAMEDPIPE,
    // DMLINK.
    let symlink = Tsymlink {
        fid: 1,
        name: "link".into(),
        symtgt: "dir/new.txt".into(),
        gid,
    };
    call_ok(&mut c, Tmessage::Symlink(symlink));
    let target = std::fs::read_link(rig.host("link")).unwrap();
    assert_eq!(target.to_str(), Some("dir/new.txt"));
    assert_eq!(c.walk(1, 2, &["link"]), Ok(1));
    assert_eq!(c.getattr(2).unwrap().mode & S_IFMT, 0o120000);
    let Ok(Rmessage::Readlink(r)) = c.call(Tmessage::Readlink(Treadlink { fid: 2 })) else {
        panic!("no Rreadlink");
    };
    assert_eq!(r.target.0, b"dir/new.txt");
    c.clunk(2).unwrap();
    let mknod = Tmknod {
        dfid: 1,
        name: "fifo".into(),
        mode: 0o010640,
        major: 0,
        minor: 0,
        gid,
    };
    call_ok(&mut c, Tmessage::Mknod(mknod));
    assert!(std::fs::metadata(rig.host("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(c.walk(1, 3, &["dir", "new.txt"]), Ok(2));
    let link = Tlink {
        dfid: 1,
        fid: 3,
        name: "hard".into(),
    };
    call_ok(&mut c, Tmessage::Link(link));
    assert_eq!(std::fs::metadata(rig.host("hard")).unwrap().nlink(), 2);
    // Locks: none over 9P2000.
    c.lopen(3, O_RDWR).unwrap();
    let lock = Tlock {
        fid: 3,
        lock_type: 1,
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: "t".into(),
    };
    assert_eq!(c.call(Tmessage::Lock(lock)).map(drop), Err(libc::ENOLCK));
    assert_translated(&rig, "9P2000.u");
}

/// The gateway agreed `version` upstream and sent it nothing 9P2000.L.
fn assert_translated(rig: &Rig, version: &str) {
    let log = rig.gateway.log_text();
    assert!(log.contains(&format!(": {version}, translated")), "{log}");
    let sent = rig.upstream_requests();
    for l_only in [
        "Tgetattr", "Tlopen", "Tlcreate", "Treaddir", "Tsetattr", "Tmkdir",
    ] {
        assert!(!sent.iter().any(|r| r == l_only), "{l_only} went upstream");
    }
    for used in ["Tstat", "Twstat", "Topen", "Tcreate", "Tremove"] {
        assert!(sent.iter().any(|r| r == used), "no {used} upstream");
    }
    assert!(rig.gateway_alive());
}

#[test]
fn a_9p2000_upstream_serves_a_linux_client_without_what_9p2000_lacks() {
    let rig = plan9_rig();
    let mut c = exercise_common(&rig);
    let gid = unsafe { libc::getegid() };
    let symlink = Tsymlink {
        fid: 1,
        name: "link".into(),
        symtgt: "x".into(),
        gid,
    };
    assert_eq!(
        c.call(Tmessage::Symlink(symlink)).map(drop),
        Err(libc::EPERM)
    );
    assert!(!rig.host("link").exists());
    assert_eq!(c.walk(1, 2, &["dir", "new.txt"]), Ok(2));
    let readlink = c.call(Tmessage::Readlink(Treadlink { fid: 2 }));
    assert_eq!(readlink.map(drop), Err(libc::EINVAL));
    let chown = Tsetattr {
        fid: 2,
        valid: 0x2, // uid
        mode: 0,
        uid: 1,
        gid: 0,
        size: 0,
        atime_sec: 0,
        atime_nsec: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    assert_eq!(c.call(Tmessage::Setattr(chown)).map(drop), Err(libc::EPERM));
    assert_translated(&rig, "9P2000");
}

/// A plain 9P2000 upstream with the `,ctl` conventions (this daemon with
/// `--ctl`): Linux metadata and operations 9P2000 has no form for go
/// through its control files, checked on the host.
#[test]
fn a_9p2000_upstream_with_control_files_keeps_linux_semantics() {
    use std::os::unix::fs::symlink;
    use std::time::{Duration, UNIX_EPOCH};
    let rig = crate::rig_with(
        &["--ctl"],
        &[
            "--upstream-version",
            "9p2000",
            "--trace",
            "--log-level",
            "info",
        ],
    );
    let gid = unsafe { libc::getegid() };
    std::fs::create_dir_all(rig.host("dir/sub")).unwrap();
    std::fs::create_dir(rig.host("other")).unwrap();
    std::fs::write(rig.host("dir/sub/f.txt"), "hello").unwrap();
    let stamp = UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_789);
    let file = std::fs::File::options()
        .write(true)
        .open(rig.host("dir/sub/f.txt"))
        .unwrap();
    file.set_modified(stamp).unwrap();
    drop(file);
    std::os::unix::fs::chown(rig.host("dir/sub/f.txt"), Some(1234), Some(5678)).unwrap();
    std::fs::hard_link(rig.host("dir/sub/f.txt"), rig.host("dir/second")).unwrap();
    symlink("sub/f.txt", rig.host("dir/host-link")).unwrap();
    let mut c = rig.connect();
    c.attach(1);

    // Tgetattr from the stat line: nanoseconds, numbers, nlink.
    assert_eq!(c.walk(1, 2, &["dir", "sub", "f.txt"]), Ok(3));
    let attr = c.getattr(2).unwrap();
    assert_eq!(
        (attr.mtime_sec, attr.mtime_nsec),
        (1_500_000_000, 123_456_789)
    );
    assert_eq!((attr.uid, attr.gid, attr.nlink), (1234, 5678, 2));
    assert_eq!((attr.mode, attr.size), (0o100644, 5), "{:o}", attr.mode);
    // Symlinks stay symlinks (walked below `,nofollow`).
    assert_eq!(c.walk(1, 3, &["dir", "host-link"]), Ok(2));
    assert_eq!(c.getattr(3).unwrap().mode & S_IFMT, 0o120000);
    let Ok(Rmessage::Readlink(r)) = c.call(Tmessage::Readlink(Treadlink { fid: 3 })) else {
        panic!("no Rreadlink");
    };
    assert_eq!(r.target.0, b"sub/f.txt");
    c.clunk(3).unwrap();

    // Tsetattr as commands: numeric owners, nanosecond times, mode, size.
    let setattr = Tsetattr {
        fid: 2,
        valid: 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x80 | 0x100,
        mode: 0o640,
        uid: 4321,
        gid: 8765,
        size: 3,
        atime_sec: 1_600_000_000,
        atime_nsec: 5,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 999_999_999,
    };
    call_ok(&mut c, Tmessage::Setattr(setattr));
    let meta = std::fs::metadata(rig.host("dir/sub/f.txt")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (4321, 8765, 0o640)
    );
    assert_eq!(
        (meta.len(), meta.atime(), meta.atime_nsec()),
        (3, 1_600_000_000, 5)
    );
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_700_000_000, 999_999_999)
    );

    // Tsymlink, Tmknod, Tlink as commands to the directory's `,ctl/,`.
    assert_eq!(c.walk(1, 4, &["dir"]), Ok(1));
    let made = Tsymlink {
        fid: 4,
        name: "made-link".into(),
        symtgt: "../other/x y".into(),
        gid,
    };
    call_ok(&mut c, Tmessage::Symlink(made));
    let target = std::fs::read_link(rig.host("dir/made-link")).unwrap();
    assert_eq!(target.to_str(), Some("../other/x y"));
    let mknod = Tmknod {
        dfid: 4,
        name: "fifo".into(),
        mode: 0o010640,
        major: 0,
        minor: 0,
        gid,
    };
    call_ok(&mut c, Tmessage::Mknod(mknod));
    assert!(std::fs::symlink_metadata(rig.host("dir/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let link = Tlink {
        dfid: 4,
        fid: 2,
        name: "third".into(),
    };
    call_ok(&mut c, Tmessage::Link(link));
    assert_eq!(std::fs::metadata(rig.host("dir/third")).unwrap().nlink(), 3);

    // Trenameat across directories: a move, and a fid below the moved
    // directory still finds its control file there.
    assert_eq!(c.walk(1, 5, &["other"]), Ok(1));
    let across = Trenameat {
        olddirfid: 4,
        oldname: "sub".into(),
        newdirfid: 5,
        newname: "moved".into(),
    };
    call_ok(&mut c, Tmessage::Renameat(across));
    assert!(rig.host("other/moved/f.txt").exists());
    assert!(!rig.host("dir/sub").exists());
    let attr = c.getattr(2).unwrap();
    assert_eq!(
        (attr.mtime_sec, attr.mtime_nsec),
        (1_700_000_000, 999_999_999)
    );

    // Treaddir: a symlink's type is left to Tgetattr (below `,nofollow` it
    // reads as an append-only file).
    c.lopen(4, O_RDONLY | O_DIRECTORY).unwrap();
    let request = Treaddir {
        fid: 4,
        offset: 0,
        count: 8192,
    };
    let Ok(Rmessage::Readdir(r)) = c.call(Tmessage::Readdir(request)) else {
        panic!("no Rreaddir");
    };
    let mut d = Decoder::new(r.data.0);
    let mut types = std::collections::BTreeMap::new();
    while d.remaining() > 0 {
        let _: Qid = d.decode().unwrap();
        let _: u64 = d.decode().unwrap();
        let d_type: u8 = d.decode().unwrap();
        let name: Str = d.decode().unwrap();
        types.insert(String::from_utf8(name.0.to_vec()).unwrap(), d_type);
    }
    assert_eq!(types.get("host-link"), Some(&0), "{types:?}");
    assert_eq!(types.get("made-link"), Some(&0), "{types:?}");
    assert_eq!(types.get("second"), Some(&8), "{types:?}");
    c.clunk(4).unwrap();

    // Another session moves a file this one holds a fid of and puts a new
    // one at its path: the path leads to another file (its control file's
    // qid tells), so this fid's own file is what changes.
    assert_eq!(c.walk(1, 6, &["dir", "second"]), Ok(2));
    let mut other = rig.connect();
    other.attach(1);
    assert_eq!(other.walk(1, 2, &["dir"]), Ok(1));
    assert_eq!(other.walk(1, 3, &["other"]), Ok(1));
    let away = Trenameat {
        olddirfid: 2,
        oldname: "second".into(),
        newdirfid: 3,
        newname: "second".into(),
    };
    call_ok(&mut other, Tmessage::Renameat(away));
    std::fs::write(rig.host("dir/second"), "a new file").unwrap();
    assert_eq!(c.getattr(6).unwrap().size, 3, "the moved file's size");
    let chmod = Tsetattr {
        fid: 6,
        valid: 0x1,
        mode: 0o604,
        uid: 0,
        gid: 0,
        size: 0,
        atime_sec: 0,
        atime_nsec: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    call_ok(&mut c, Tmessage::Setattr(chmod));
    let mode = |name: &str| std::fs::metadata(rig.host(name)).unwrap().mode() & 0o777;
    assert_eq!((mode("other/second"), mode("dir/second")), (0o604, 0o644));

    let log = rig.gateway.log_text();
    assert!(log.contains(": 9P2000, translated"), "{log}");
    let sent = rig.upstream_requests();
    for l_only in [
        "Tgetattr",
        "Tsetattr",
        "Tsymlink",
        "Tmknod",
        "Tlink",
        "Trenameat",
    ] {
        assert!(!sent.iter().any(|r| r == l_only), "{l_only} went upstream");
    }
    // No Tcreate of a symlink, device or link (and the one Twstat is the
    // moved file's chmod).
    assert!(!sent.iter().any(|r| r == "Tcreate"), "a Tcreate upstream");
    assert_eq!(sent.iter().filter(|r| *r == "Twstat").count(), 1);
    assert!(rig.gateway_alive());
}

/// A stat line is read once per version of its file: a Tgetattr of an
/// unchanged file is one Tstat upstream, and any change (here one made on
/// the host behind the upstream's back) is seen at once.
#[test]
fn control_file_stat_lines_are_kept_while_the_file_is_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let rig = crate::rig_with(&["--ctl"], &["--upstream-version", "9p2000"]);
    std::fs::write(rig.host("f"), "x").unwrap();
    let mut c = rig.connect();
    c.attach(1);
    assert_eq!(c.walk(1, 2, &["f"]), Ok(1));
    let first = c.getattr(2).unwrap();
    let before = rig.upstream_requests().len();
    for _ in 0..10 {
        assert_eq!(c.getattr(2).unwrap().mode, first.mode);
    }
    let sent = &rig.upstream_requests()[before..];
    assert_eq!(sent, vec!["Tstat"; 10], "one Tstat each");
    let perms = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(rig.host("f"), perms).unwrap();
    assert_eq!(c.getattr(2).unwrap().mode & 0o777, 0o600);
    std::os::unix::fs::chown(rig.host("f"), Some(77), None).unwrap();
    assert_eq!(c.getattr(2).unwrap().uid, 77);
}
