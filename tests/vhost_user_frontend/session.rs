//! 9P sessions through the queue: files, directories, confinement, a
//! read-only share.

use super::*;

/// Version negotiation, attach, walk, getattr, read, create, write.
#[test]
fn basic_session() {
    let (share, daemon) = start("hostshare", &[]);
    let content = b"hello from the host\n".repeat(50);
    fs::write(share.path().join("hello.txt"), &content).unwrap();

    let mut c = connect(&daemon);

    // First exchange checked byte by byte: size[4] type[1] tag[2] msize[4] version[s].
    let m = T::new(TVERSION, NOTAG).u32(MSIZE).str("9P2000.L").done();
    let r = c.vmm.request(&[&m], &[REPLY_CAP]);
    assert_eq!(r.len(), 21, "Rversion length: {r:02x?}");
    assert_eq!(r[0..4], 21u32.to_le_bytes(), "Rversion size field");
    assert_eq!(r[4], TVERSION + 1, "Rversion type");
    assert_eq!(r[5..7], NOTAG.to_le_bytes(), "Rversion tag");
    assert_eq!(&r[11..21], b"\x08\x009P2000.L", "Rversion version string");
    let msize = u32::from_le_bytes(r[7..11].try_into().unwrap());
    assert!(
        (4096..=MSIZE).contains(&msize),
        "Rversion msize {msize} (the Linux client refuses < 4096)"
    );
    let (_, v) = c.version(MSIZE, "foo");
    assert_eq!(v, "unknown", "Rversion for an unknown version");
    // Renegotiate after the refused version.
    let (_, v) = c.version(MSIZE, "9P2000.L");
    assert_eq!(v, "9P2000.L");

    let root = c.try_attach(1, "root", "", Some(uid())).expect("Tattach");
    assert_eq!(
        root.ty & QTDIR,
        QTDIR,
        "root qid {root:?} is not a directory"
    );
    let rattr = c.try_getattr(1, GETATTR_BASIC).expect("Tgetattr root");
    assert_eq!(rattr.mode & libc::S_IFMT, libc::S_IFDIR);
    assert_eq!(rattr.qid, root);

    // Walk to the host file.
    let qids = c.try_walk(1, 2, &["hello.txt"]).expect("Twalk hello.txt");
    assert_eq!(qids.len(), 1);
    assert_eq!(qids[0].ty, QTFILE);
    assert_ne!(qids[0].path, root.path);

    let meta = fs::metadata(share.path().join("hello.txt")).unwrap();
    let a = c.try_getattr(2, GETATTR_ALL).expect("Tgetattr");
    assert_eq!(
        a.valid & GETATTR_BASIC,
        GETATTR_BASIC,
        "valid {:#x}",
        a.valid
    );
    assert_eq!(a.qid, qids[0], "Rgetattr qid vs Rwalk qid");
    assert_eq!(a.size, meta.len(), "size");
    assert_eq!(a.mode, meta.mode(), "mode (type + permissions)");
    assert_eq!(a.uid, meta.uid(), "uid");
    assert_eq!(a.gid, meta.gid(), "gid");
    assert_eq!(a.nlink, meta.nlink(), "nlink");
    assert_eq!(a.mtime_sec, meta.mtime() as u64, "mtime");

    // Open and read the whole file, then at an offset, then past EOF.
    let (oq, _iounit) = c.try_lopen(2, O_RDONLY).expect("Tlopen");
    assert_eq!(oq.path, qids[0].path);
    assert_bytes_eq(&c.try_read(2, 0, 8192).expect("Tread"), &content, "Tread");
    assert_eq!(
        c.try_read(2, 995, 10).expect("Tread offset"),
        content[995..].to_vec()
    );
    assert!(c
        .try_read(2, content.len() as u64 + 10, 100)
        .expect("Tread past EOF")
        .is_empty());
    c.try_clunk(2).expect("Tclunk");

    // Create a new file through a clone of the root fid, write to it.
    assert!(c.try_walk(1, 3, &[]).expect("Twalk clone").is_empty());
    let (cq, _) = c
        .try_lcreate(3, "new.txt", O_RDWR | O_CREAT | O_EXCL, 0o644, gid())
        .expect("Tlcreate");
    assert_eq!(cq.ty, QTFILE);
    let data = b"written by the guest";
    assert_eq!(c.try_write(3, 0, data).expect("Twrite"), data.len() as u32);
    assert_eq!(c.try_write(3, 100, b"tail").expect("Twrite @100"), 4);
    c.try_clunk(3).expect("Tclunk");

    let host = fs::read(share.path().join("new.txt")).expect("new.txt on the host");
    let mut want = vec![0u8; 104];
    want[..data.len()].copy_from_slice(data);
    want[100..].copy_from_slice(b"tail");
    assert_eq!(host, want);
    let mode = fs::metadata(share.path().join("new.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "mode of the created file");

    // The fid that was clunked is gone.
    assert!(c.try_getattr(3, GETATTR_BASIC).is_err());
    // Walking to something missing fails with ENOENT.
    assert_eq!(
        c.try_walk(1, 4, &["missing"]).unwrap_err(),
        Errno(libc::ENOENT as u32)
    );
}

/// mkdir, readdir, unlinkat, and walks that must stay inside the share.
#[test]
fn directories_and_confinement() {
    let (share, daemon) = start("hostshare", &[]);
    fs::write(share.path().join("a.txt"), b"a").unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"outside the share").unwrap();
    std::os::unix::fs::symlink(outside.path(), share.path().join("escape")).unwrap();

    let mut c = connect(&daemon);
    let root = mount(&mut c, 1);

    let dq = c.try_mkdir(1, "sub", 0o755, gid()).expect("Tmkdir");
    assert_eq!(dq.ty & QTDIR, QTDIR);
    assert!(share.path().join("sub").is_dir());
    c.try_walk(1, 2, &["sub"]).unwrap();
    c.try_lcreate(2, "inner", O_WRONLY | O_CREAT, 0o600, gid())
        .expect("Tlcreate in sub");
    c.try_clunk(2).unwrap();
    assert!(share.path().join("sub/inner").is_file());

    // Multi-component walk.
    let q = c
        .try_walk(1, 3, &["sub", "inner"])
        .expect("Twalk sub/inner");
    assert_eq!(q.len(), 2);
    // (qid.version may differ: creating "inner" changed the directory.)
    assert_eq!((q[0].ty, q[0].path), (dq.ty, dq.path));
    c.try_clunk(3).unwrap();

    // Readdir on the root lists what the host has.
    c.try_walk(1, 4, &[]).unwrap();
    c.try_lopen(4, O_RDONLY | O_DIRECTORY).expect("Tlopen dir");
    let ents = c.readdir_all(4);
    let names: Vec<&str> = ents.iter().map(|e| e.name.as_str()).collect();
    for want in ["a.txt", "sub", "escape"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let sub = ents.iter().find(|e| e.name == "sub").unwrap();
    assert_eq!(sub.qid.path, dq.path, "readdir qid of sub");
    assert_eq!(sub.ty, libc::DT_DIR);
    c.try_clunk(4).unwrap();

    // ".." at the root is the root; a name with '/' is refused.
    if let Ok(q) = c.try_walk(1, 5, &[".."]) {
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].path, root.path, "'..' escaped the share root");
        c.try_clunk(5).unwrap();
    }
    if let Ok(q) = c.try_walk(1, 6, &["sub/inner"]) {
        panic!("walk with a '/' in a name succeeded: {q:?}");
    }
    // A symlink to a directory outside the share must not lead outside.
    if c.try_walk(1, 7, &["escape", "secret"]).is_ok() {
        let r = c.try_lopen(7, O_RDONLY).and_then(|_| c.try_read(7, 0, 100));
        assert_ne!(
            r.ok(),
            Some(b"outside the share".to_vec()),
            "read a file outside the share through a symlink"
        );
    }

    // Unlink a file, refuse to rmdir without AT_REMOVEDIR... then remove the directory.
    c.try_walk(1, 8, &["sub"]).unwrap();
    c.try_unlinkat(8, "inner", 0).expect("Tunlinkat file");
    assert!(!share.path().join("sub/inner").exists());
    c.try_unlinkat(1, "sub", AT_REMOVEDIR)
        .expect("Tunlinkat dir");
    assert!(!share.path().join("sub").exists());
    c.try_unlinkat(1, "a.txt", 0).expect("Tunlinkat a.txt");
    assert!(!share.path().join("a.txt").exists());
    assert!(outside.path().join("secret").exists());
    assert_eq!(
        c.try_unlinkat(1, "a.txt", 0).unwrap_err(),
        Errno(libc::ENOENT as u32)
    );
}

/// --readonly: reads work, every modification is refused, the host is untouched.
#[test]
fn readonly_share() {
    let (share, daemon) = start("ro", &["--readonly"]);
    fs::write(share.path().join("f"), b"read me").unwrap();
    fs::create_dir(share.path().join("d")).unwrap();
    let mut c = connect(&daemon);
    mount(&mut c, 1);

    // The daemon's documented behaviour: every change is refused with EROFS.
    let refused = |r: Result<(), Errno>, what: &str| match r {
        Ok(()) => panic!("{what} succeeded on a read-only share"),
        Err(e) => assert_eq!(e, Errno(libc::EROFS as u32), "{what}"),
    };

    c.try_walk(1, 2, &["f"]).unwrap();
    c.try_lopen(2, O_RDONLY).expect("read-only open");
    assert_eq!(c.try_read(2, 0, 100).unwrap(), b"read me");
    c.try_walk(1, 3, &["f"]).unwrap();
    refused(c.try_lopen(3, O_RDWR).map(|_| ()), "Tlopen O_RDWR");
    c.try_walk(1, 4, &[]).unwrap();
    refused(
        c.try_lcreate(4, "new", O_RDWR | O_CREAT, 0o644, gid())
            .map(|_| ()),
        "Tlcreate",
    );
    refused(c.try_mkdir(1, "newdir", 0o755, gid()).map(|_| ()), "Tmkdir");
    refused(c.try_unlinkat(1, "f", 0), "Tunlinkat file");
    refused(c.try_unlinkat(1, "d", AT_REMOVEDIR), "Tunlinkat dir");

    assert_eq!(fs::read(share.path().join("f")).unwrap(), b"read me");
    assert!(share.path().join("d").is_dir());
    assert!(!share.path().join("new").exists());
    assert!(!share.path().join("newdir").exists());
}
