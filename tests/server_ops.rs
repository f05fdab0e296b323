//! The server's 9P2000.L semantics, driven in-process (no transport):
//! xattrs, security models, id maps, setattr corners, qids, write-behind.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

mod common;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, IdMap, IdRange, SecurityModel};

use common::inotify::opens_during;
use common::inproc::{InProc as Client, Reply, ROOT};
use vhost_user_9p::server::user::Users;

/// A 9P2000.L session of a VMM's guest on `dir`, attached as root.
fn client(dir: &Path, model: SecurityModel, uid_map: IdMap) -> Client {
    let mut config = Config::new(dir);
    config.security_model = model;
    config.uid_map = uid_map;
    with_config(&config)
}

fn with_config(config: &Config) -> Client {
    Client::attach(config, Users::Guest, "9P2000.L", 0)
}

/// The 9P2000.L requests these tests make, on the in-process client.
trait Linux {
    fn getattr(&mut self, fid: u32) -> Rgetattr;
    fn create(&mut self, dir: u32, fid: u32, name: &str, mode: u32) -> Reply;
    fn create_with_flags(&mut self, dir: u32, fid: u32, name: &str, mode: u32, flags: u32)
        -> Reply;
    fn set_xattr(&mut self, fid: u32, name: &str, value: &[u8], flags: u32) -> Reply;
    fn get_xattr(&mut self, fid: u32, name: &str) -> Result<Vec<u8>, i32>;
}

impl Linux for Client {
    fn getattr(&mut self, fid: u32) -> Rgetattr {
        match self
            .call(Tmessage::Getattr(Tgetattr {
                fid,
                request_mask: 0x3fff,
            }))
            .msg()
        {
            Rmessage::Getattr(a) => a,
            other => panic!("getattr: {other:?}"),
        }
    }

    fn create(&mut self, dir: u32, fid: u32, name: &str, mode: u32) -> Reply {
        self.create_with_flags(dir, fid, name, mode, 2) // O_RDWR
    }

    /// Tlcreate of `name` in `dir` through `fid` (walked from `dir` first),
    /// with these 9P2000.L open flags.
    fn create_with_flags(
        &mut self,
        dir: u32,
        fid: u32,
        name: &str,
        mode: u32,
        flags: u32,
    ) -> Reply {
        self.walk(dir, fid, &[]).ok();
        self.call(Tmessage::Lcreate(Tlcreate {
            fid,
            name: name.into(),
            flags,
            mode,
            gid: 0,
        }))
    }

    fn set_xattr(&mut self, fid: u32, name: &str, value: &[u8], flags: u32) -> Reply {
        self.walk(fid, 90, &[]).ok();
        let r = self.call(Tmessage::Xattrcreate(Txattrcreate {
            fid: 90,
            name: name.into(),
            attr_size: value.len() as u64,
            flags,
        }));
        if r.errno().is_some() {
            self.call(Tmessage::Clunk(Tclunk { fid: 90 }));
            return r;
        }
        if !value.is_empty() {
            self.call_with(
                Tmessage::Write(Twrite {
                    fid: 90,
                    offset: 0,
                    count: value.len() as u32,
                }),
                value,
            )
            .ok();
        }
        self.call(Tmessage::Clunk(Tclunk { fid: 90 }))
    }

    /// Reads an xattr (or the list, with an empty name): Ok(value) or Err(errno).
    fn get_xattr(&mut self, fid: u32, name: &str) -> Result<Vec<u8>, i32> {
        let r = self.call(Tmessage::Xattrwalk(Txattrwalk {
            fid,
            newfid: 91,
            name: name.into(),
        }));
        let size = match r.msg() {
            Rmessage::Xattrwalk(x) => x.size,
            Rmessage::Lerror(e) => return Err(e.ecode as i32),
            other => panic!("{other:?}"),
        };
        let data = self
            .call(Tmessage::Read(Tread {
                fid: 91,
                offset: 0,
                count: 100_000,
            }))
            .ok()
            .data()
            .to_vec();
        assert_eq!(data.len() as u64, size);
        self.call(Tmessage::Clunk(Tclunk { fid: 91 })).ok();
        Ok(data)
    }
}

fn names(list: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = list
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn xattrs_get_set_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    c.create(ROOT, 2, "f", 0o644).ok();
    c.set_xattr(2, "user.color", b"blue", 0).ok();
    assert_eq!(c.get_xattr(2, "user.color"), Ok(b"blue".to_vec()));
    assert_eq!(c.get_xattr(2, "user.none"), Err(libc::ENODATA));
    // XATTR_CREATE on an existing attribute, XATTR_REPLACE on a missing one.
    assert_eq!(
        c.set_xattr(2, "user.color", b"red", 1).errno(),
        Some(libc::EEXIST)
    );
    assert_eq!(
        c.set_xattr(2, "user.size", b"big", 2).errno(),
        Some(libc::ENODATA)
    );
    c.set_xattr(2, "user.color", b"green", 2).ok();
    assert_eq!(c.get_xattr(2, "user.color"), Ok(b"green".to_vec()));
    // Oversized value, unknown namespace.
    let r = c.call(Tmessage::Xattrcreate(Txattrcreate {
        fid: 2,
        name: "user.x".into(),
        attr_size: 70_000,
        flags: 0,
    }));
    assert_eq!(r.errno(), Some(libc::E2BIG));
    assert_eq!(
        c.set_xattr(2, "bogus.x", b"1", 0).errno(),
        Some(libc::EOPNOTSUPP)
    );
    // The daemon's own attributes stay hidden and untouchable.
    let host = dir.path().join("f");
    xattr_set(&host, "user.virtfs.uid", &7u32.to_le_bytes());
    assert_eq!(names(&c.get_xattr(2, "").unwrap()), ["user.color"]);
    assert_eq!(
        c.set_xattr(2, "user.virtfs.uid", b"1", 0).errno(),
        Some(libc::EPERM)
    );
    assert_eq!(c.get_xattr(2, "user.virtfs.uid"), Err(libc::ENODATA));
    // An empty value is a value; size 0 with XATTR_REPLACE (removexattr) removes.
    c.set_xattr(2, "user.empty", b"", 0).ok();
    assert_eq!(c.get_xattr(2, "user.empty"), Ok(Vec::new()));
    c.set_xattr(2, "user.color", b"", 2).ok();
    assert_eq!(c.get_xattr(2, "user.color"), Err(libc::ENODATA));
    assert_eq!(names(&c.get_xattr(2, "").unwrap()), ["user.empty"]);
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name}");
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and buffer.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

#[test]
fn mapped_xattr_keeps_guest_attributes_in_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path(), SecurityModel::MappedXattr, IdMap::default());
    c.walk(ROOT, 2, &[]).ok();
    c.call(Tmessage::Lcreate(Tlcreate {
        fid: 2,
        name: "f".into(),
        flags: 2,
        mode: 0o4751,
        gid: 42,
    }))
    .ok();
    let host = dir.path().join("f");
    let meta = fs::metadata(&host).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "host mode stays the daemon's"
    );
    assert_eq!(
        xattr_get(&host, "user.virtfs.mode"),
        Some((libc::S_IFREG | 0o4751).to_le_bytes().to_vec())
    );
    assert_eq!(
        xattr_get(&host, "user.virtfs.gid"),
        Some(42u32.to_le_bytes().to_vec())
    );
    let a = c.getattr(2);
    assert_eq!((a.mode, a.uid, a.gid), (libc::S_IFREG | 0o4751, 0, 42));

    // chmod and chown change the xattrs, not the host file.
    c.call(Tmessage::Setattr(Tsetattr {
        fid: 2,
        valid: 1 | 2,
        mode: 0o640,
        uid: 1234,
        ..Default::default()
    }))
    .ok();
    let a = c.getattr(2);
    assert_eq!((a.mode, a.uid), (libc::S_IFREG | 0o640, 1234));
    assert_eq!(
        fs::metadata(&host).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    // A fifo and a device are regular files on the host.
    c.call(Tmessage::Mknod(Tmknod {
        dfid: ROOT,
        name: "p".into(),
        mode: libc::S_IFIFO | 0o644,
        major: 0,
        minor: 0,
        gid: 0,
    }))
    .ok();
    c.call(Tmessage::Mknod(Tmknod {
        dfid: ROOT,
        name: "c".into(),
        mode: libc::S_IFCHR | 0o600,
        major: 1,
        minor: 3,
        gid: 0,
    }))
    .ok();
    assert!(fs::symlink_metadata(dir.path().join("p"))
        .unwrap()
        .is_file());
    assert!(fs::symlink_metadata(dir.path().join("c"))
        .unwrap()
        .is_file());
    c.walk(ROOT, 3, &["c"]).ok();
    let a = c.getattr(3);
    assert_eq!(
        (a.mode, a.rdev),
        (libc::S_IFCHR | 0o600, libc::makedev(1, 3))
    );
    // ...never opened as devices.
    assert_eq!(
        c.call(Tmessage::Lopen(Tlopen { fid: 3, flags: 0 })).errno(),
        Some(libc::EPERM)
    );

    // A symlink is a regular file holding the target.
    c.call(Tmessage::Symlink(Tsymlink {
        fid: ROOT,
        name: "sl".into(),
        symtgt: "target/x".into(),
        gid: 0,
    }))
    .ok();
    assert_eq!(
        fs::read_to_string(dir.path().join("sl")).unwrap(),
        "target/x"
    );
    c.walk(ROOT, 4, &["sl"]).ok();
    assert_eq!(c.getattr(4).mode & libc::S_IFMT, libc::S_IFLNK);
    match c.call(Tmessage::Readlink(Treadlink { fid: 4 })).msg() {
        Rmessage::Readlink(r) => assert_eq!(r.target.as_bytes(), b"target/x"),
        other => panic!("{other:?}"),
    }
    // The guest never sees user.virtfs.*.
    assert!(names(&c.get_xattr(2, "").unwrap()).is_empty());

    // A file written by QEMU's mapped-xattr export reads the same.
    let q = dir.path().join("from-qemu");
    fs::write(&q, "").unwrap();
    xattr_set(&q, "user.virtfs.uid", &1000u32.to_le_bytes());
    xattr_set(&q, "user.virtfs.gid", &100u32.to_le_bytes());
    xattr_set(
        &q,
        "user.virtfs.mode",
        &(libc::S_IFREG | 0o755).to_le_bytes(),
    );
    c.walk(ROOT, 5, &["from-qemu"]).ok();
    let a = c.getattr(5);
    assert_eq!((a.mode, a.uid, a.gid), (libc::S_IFREG | 0o755, 1000, 100));
}

#[test]
fn id_maps_translate_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let map = IdMap::new(vec![
        IdRange::parse(":0:1000:1:").unwrap(),
        IdRange::parse(":500:2000:10:").unwrap(),
    ])
    .unwrap();
    let mut c = client(dir.path(), SecurityModel::Passthrough, map);
    c.create(ROOT, 2, "f", 0o644).ok();
    // Guest root creates: the host file belongs to host uid 1000.
    assert_eq!(fs::metadata(dir.path().join("f")).unwrap().uid(), 1000);
    assert_eq!(c.getattr(2).uid, 0);
    c.call(Tmessage::Setattr(Tsetattr {
        fid: 2,
        valid: 2,
        uid: 505,
        ..Default::default()
    }))
    .ok();
    assert_eq!(fs::metadata(dir.path().join("f")).unwrap().uid(), 2005);
    assert_eq!(c.getattr(2).uid, 505);
    // A guest uid outside the map is refused; a host uid outside it shows as 65534.
    let r = c.call(Tmessage::Setattr(Tsetattr {
        fid: 2,
        valid: 2,
        uid: 7,
        ..Default::default()
    }));
    assert_eq!(r.errno(), Some(libc::EINVAL));
    fs::write(dir.path().join("g"), "").unwrap();
    std::os::unix::fs::chown(dir.path().join("g"), Some(3), None).unwrap();
    c.walk(ROOT, 3, &["g"]).ok();
    assert_eq!(c.getattr(3).uid, 65534);
}

#[test]
fn setattr_times_and_truncate_after_unlink() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    c.create(ROOT, 2, "f", 0o644).ok();
    c.call_with(
        Tmessage::Write(Twrite {
            fid: 2,
            offset: 0,
            count: 5,
        }),
        b"hello",
    )
    .ok();
    let v0 = c.getattr(2).qid.version;
    // Explicit nanosecond times; atime only (mtime omitted).
    let set = Tsetattr {
        fid: 2,
        valid: 0x10 | 0x20 | 0x80 | 0x100,
        atime_sec: 1_000_000_000,
        atime_nsec: 123_456_789,
        mtime_sec: 1_100_000_000,
        mtime_nsec: 987_654_321,
        ..Default::default()
    };
    c.call(Tmessage::Setattr(set)).ok();
    let a = c.getattr(2);
    assert_eq!(
        (a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec),
        (1_000_000_000, 123_456_789, 1_100_000_000, 987_654_321)
    );
    assert_ne!(a.qid.version, v0, "qid.version follows changes");
    c.call(Tmessage::Setattr(Tsetattr {
        fid: 2,
        valid: 0x10,
        ..Default::default()
    }))
    .ok(); // atime = now
    let b = c.getattr(2);
    assert!(b.atime_sec > 1_600_000_000);
    assert_eq!(
        (b.mtime_sec, b.mtime_nsec),
        (1_100_000_000, 987_654_321),
        "mtime omitted"
    );
    // chmod changes qid.version too.
    let v1 = c.getattr(2).qid.version;
    c.call(Tmessage::Setattr(Tsetattr {
        fid: 2,
        valid: 1,
        mode: 0o600,
        ..Default::default()
    }))
    .ok();
    assert_ne!(c.getattr(2).qid.version, v1);

    // Unlinked while open: truncate and chmod through the fid still work.
    c.walk(ROOT, 3, &["f"]).ok();
    c.call(Tmessage::Unlinkat(Tunlinkat {
        dirfid: ROOT,
        name: "f".into(),
        flags: 0,
    }))
    .ok();
    c.call(Tmessage::Setattr(Tsetattr {
        fid: 3,
        valid: 8 | 1,
        size: 2,
        mode: 0o640,
        ..Default::default()
    }))
    .ok();
    let a = c.getattr(2);
    assert_eq!((a.size, a.mode & 0o7777, a.nlink), (2, 0o640, 0));
    let r = c
        .call(Tmessage::Read(Tread {
            fid: 2,
            offset: 0,
            count: 100,
        }))
        .ok();
    assert_eq!(r.data(), b"he");
}

#[test]
fn create_mode_0000_rdwr_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    c.create(ROOT, 2, "locked", 0).ok();
    c.call_with(
        Tmessage::Write(Twrite {
            fid: 2,
            offset: 0,
            count: 3,
        }),
        b"abc",
    )
    .ok();
    let r = c
        .call(Tmessage::Read(Tread {
            fid: 2,
            offset: 0,
            count: 10,
        }))
        .ok();
    assert_eq!(r.data(), b"abc");
    assert_eq!(
        fs::metadata(dir.path().join("locked"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0
    );
}

/// A fifo `fifo` and a device node `null` (1:3, the host's /dev/null) in
/// `dir`. Making a device node needs root, as CI runs.
fn make_fifo_and_null(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (fifo, null) = (dir.join("fifo"), dir.join("null"));
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o666) }, 0);
    // SAFETY: a valid C string.
    let made = unsafe {
        libc::mknod(
            c(&null).as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(1, 3),
        )
    };
    assert_eq!(
        made,
        0,
        "mknod (needs root): {}",
        std::io::Error::last_os_error()
    );
    (fifo, null)
}

/// Tlcreate of a name that exists (no O_EXCL) opens a regular file, as
/// open(2) would, but never a fifo or a device node the share holds: those
/// are never opened on the host (a fifo's open would wait for a writer for
/// ever; a device node is the host's device).
#[test]
fn create_of_an_existing_name_opens_only_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("file"), "old content").unwrap();
    fs::create_dir(dir.path().join("dir")).unwrap();
    std::os::unix::fs::symlink("file", dir.path().join("link")).unwrap();
    make_fifo_and_null(dir.path());

    let (done, finished) = std::sync::mpsc::channel();
    let share = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let mut c = client(&share, SecurityModel::Passthrough, IdMap::default());
        let mut errno_of = |name: &str, flags: u32| {
            let r = c.create_with_flags(ROOT, 2, name, 0o644, flags);
            c.call(Tmessage::Clunk(Tclunk { fid: 2 }));
            r.errno()
        };
        // O_RDONLY: the open of a fifo that waits for a writer.
        let results = [
            errno_of("fifo", 0),
            errno_of("null", 2),
            errno_of("dir", 0),
            errno_of("link", 0),
        ];
        done.send(results).unwrap();
    });
    let results = finished
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("Tlcreate of an existing fifo returns (not waiting for a writer)");
    let eperm = libc::EPERM;
    let want = [
        Some(eperm),
        Some(eperm),
        Some(libc::EISDIR),
        Some(libc::ELOOP),
    ];
    assert_eq!(results, want, "fifo, device node, directory, symlink");

    // An existing regular file is opened, and truncated if asked; with
    // O_EXCL it is EEXIST.
    let mut c = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    c.create_with_flags(ROOT, 2, "file", 0o644, 2 | 0o1000) // O_RDWR | O_TRUNC
        .ok();
    let r = c.call_with(
        Tmessage::Write(Twrite {
            fid: 2,
            offset: 0,
            count: 3,
        }),
        b"new",
    );
    r.ok();
    assert_eq!(fs::read(dir.path().join("file")).unwrap(), b"new");
    let r = c.create_with_flags(ROOT, 3, "file", 0o644, 2 | 0o200); // O_RDWR | O_EXCL
    assert_eq!(r.errno(), Some(libc::EEXIST));
    // The failed create left fid 3 on the directory.
    c.walk(3, 4, &["file"]).ok();
}

/// No request opens a fifo or device node of the share on the host: not
/// Tlopen, Tfsync of a fid that is not open, a truncate by Tsetattr, or
/// Tlcreate of the name. (A regular file's open shows, to prove the watch.)
#[test]
fn fifos_and_device_nodes_are_never_opened_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let (fifo, null) = make_fifo_and_null(dir.path());
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let mut client = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    let (opens, ()) = opens_during(&[&fifo, &null], || {
        for (fid, name) in [(2, "fifo"), (3, "null")] {
            client.walk(ROOT, fid, &[name]).ok();
            let fsync = client.call(Tmessage::Fsync(Tfsync { fid, datasync: 0 }));
            assert_eq!(fsync.errno(), Some(libc::EINVAL), "Tfsync {name}");
            let truncate = client.call(Tmessage::Setattr(Tsetattr {
                fid,
                valid: 0x8, // size
                mode: 0,
                uid: 0,
                gid: 0,
                size: 0,
                atime_sec: 0,
                atime_nsec: 0,
                mtime_sec: 0,
                mtime_nsec: 0,
            }));
            assert_eq!(truncate.errno(), Some(libc::EINVAL), "truncate {name}");
            let open = client.call(Tmessage::Lopen(Tlopen { fid, flags: 2 }));
            assert_eq!(open.errno(), Some(libc::EPERM), "Tlopen {name}");
            let create = client.create(ROOT, 4, name, 0o644);
            assert_eq!(create.errno(), Some(libc::EPERM), "Tlcreate {name}");
            client.call(Tmessage::Clunk(Tclunk { fid: 4 }));
        }
    });
    assert_eq!(opens, 0, "a fifo or device node was opened on the host");
    let (opens, ()) = opens_during(&[&file], || {
        client.walk(ROOT, 5, &["file"]).ok();
        client
            .call(Tmessage::Fsync(Tfsync {
                fid: 5,
                datasync: 0,
            }))
            .ok();
    });
    assert_eq!(opens, 1, "the regular file's open for Tfsync");
}

/// Two filesystems under the share hand out the same inode numbers; their
/// qids must still differ. (Mounts two tmpfs: needs root, as CI runs.)
#[test]
fn qid_paths_unique_across_filesystems() {
    let dir = tempfile::tempdir().unwrap();
    let mut mounted = Vec::new();
    for name in ["m", "n"] {
        let point = dir.path().join(name);
        fs::create_dir(&point).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&point)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount tmpfs on {} (the test needs root)",
            point.display()
        );
        mounted.push(point.clone());
        fs::write(point.join("a"), name).unwrap();
    }
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    let same_ino = ino(&dir.path().join("m/a")) == ino(&dir.path().join("n/a"));
    let mut c = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    c.walk(ROOT, 2, &["m", "a"]).ok();
    c.walk(ROOT, 3, &["n", "a"]).ok();
    let (q2, q3) = (c.getattr(2).qid, c.getattr(3).qid);
    drop(c);
    for point in mounted {
        let _ = std::process::Command::new("umount").arg(&point).status();
    }
    assert!(same_ino, "both tmpfs should number their first file alike");
    assert_ne!(q2.path, q3.path, "qid.path collides across filesystems");
}

/// Reads a whole directory with Treaddir, resuming from each last cookie;
/// `between` runs after every reply (to change the directory meanwhile).
fn readdir_all(c: &mut Client, fid: u32, mut between: impl FnMut(usize)) -> Vec<String> {
    let mut names = Vec::new();
    let mut offset = 0u64;
    for round in 0.. {
        let r = c
            .call(Tmessage::Readdir(Treaddir {
                fid,
                offset,
                count: 32 * 1024,
            }))
            .ok();
        let Rmessage::Readdir(rd) = r.msg() else {
            panic!("not Rreaddir")
        };
        let mut d = Decoder::new(rd.data.0);
        if d.remaining() == 0 {
            break;
        }
        while d.remaining() > 0 {
            let _qid: Qid = d.decode().unwrap();
            offset = d.decode::<u64>().unwrap();
            let _ty: u8 = d.decode().unwrap();
            let name: Str = d.decode().unwrap();
            names.push(String::from_utf8_lossy(name.as_bytes()).into_owned());
        }
        between(round);
    }
    names
}

#[test]
fn readdir_100000_entries_and_while_changing() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    fs::create_dir(&big).unwrap();
    for i in 0..100_000 {
        fs::File::create(big.join(format!("f{i:06}"))).unwrap();
    }
    let mut c = client(dir.path(), SecurityModel::Passthrough, IdMap::default());
    c.walk(ROOT, 2, &["big"]).ok();
    c.call(Tmessage::Lopen(Tlopen {
        fid: 2,
        flags: 0o200000,
    }))
    .ok();
    let mut names = readdir_all(&mut c, 2, |_| {});
    names.retain(|n| n != "." && n != "..");
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(
        (total, names.len()),
        (100_000, 100_000),
        "every entry exactly once"
    );

    // While entries come and go: those present throughout appear once each.
    let churn = dir.path().join("churn");
    fs::create_dir(&churn).unwrap();
    for i in 0..5_000 {
        fs::File::create(churn.join(format!("keep{i:05}"))).unwrap();
        fs::File::create(churn.join(format!("gone{i:05}"))).unwrap();
    }
    c.walk(ROOT, 3, &["churn"]).ok();
    c.call(Tmessage::Lopen(Tlopen {
        fid: 3,
        flags: 0o200000,
    }))
    .ok();
    let seen = readdir_all(&mut c, 3, |round| {
        for i in round * 400..(round + 1) * 400 {
            let _ = fs::remove_file(churn.join(format!("gone{i:05}")));
            fs::File::create(churn.join(format!("new{round:03}-{i:05}"))).unwrap();
        }
    });
    let mut keep: Vec<&String> = seen.iter().filter(|n| n.starts_with("keep")).collect();
    let listed = keep.len();
    keep.sort();
    keep.dedup();
    assert_eq!(
        (listed, keep.len()),
        (5_000, 5_000),
        "kept entries: all, once"
    );
    let mut all = seen.clone();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "no entry twice");
}

/// Pages of the `len` bytes at `offset` of `file` that are in the host's
/// page cache, and how many of them are dirty (cachestat(2), Linux 6.5).
fn cached_and_dirty(file: &fs::File, offset: u64, len: u64) -> (u64, u64) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451; // the same on every architecture
    let range = Range { off: offset, len };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat reads `range` and writes `stat`, both live and of
    // the kernel's layout; the descriptor is open.
    let r = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range, &mut stat, 0) };
    assert_eq!(r, 0, "cachestat: {}", std::io::Error::last_os_error());
    (stat.nr_cache, stat.nr_dirty)
}

#[test]
fn a_file_written_back_to_back_is_handed_to_the_disk_a_window_behind() {
    const MIB: u64 = 1 << 20;
    const PAGES: u64 = 8 * MIB / 4096;
    // On the build's own disk: tmpfs has no write-back to watch.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let chunk = vec![0xa5u8; 500_000]; // the Linux client's Twrite size
    let stream = |write_behind: u64, name: &str| {
        let mut config = Config::new(dir.path());
        config.write_behind = write_behind;
        let mut c = with_config(&config);
        c.create(ROOT, 2, name, 0o644).ok();
        let mut offset = 0;
        while offset < 24 * MIB {
            let r = c.call_with(
                Tmessage::Write(Twrite {
                    fid: 2,
                    offset,
                    count: chunk.len() as u32,
                }),
                &chunk,
            );
            assert!(matches!(r.msg(), Rmessage::Write(w) if w.count == 500_000));
            offset += chunk.len() as u64;
        }
        c.server.wait_for_write_behind();
        let file = fs::File::open(dir.path().join(name)).unwrap();
        let windows = [0, 8 * MIB, 16 * MIB].map(|w| cached_and_dirty(&file, w, 8 * MIB));
        (file, windows)
    };

    // 8 MiB windows: the first two were handed over when the writer passed
    // 16 and 24 MiB; the third, still being written, stays dirty. Nothing
    // was dropped from the page cache.
    let (file, [first, second, third]) = stream(8 * MIB, "behind");
    assert_eq!(first, (PAGES, 0), "first window: (cached, dirty) pages");
    assert_eq!(second, (PAGES, 0), "second window: (cached, dirty) pages");
    assert_eq!(third.0, PAGES);
    assert!(third.1 > 0, "third window: {} dirty pages", third.1);
    assert_eq!(file.metadata().unwrap().len(), 51 * 500_000);

    // Without write-behind all of it is left dirty for the host kernel.
    let (_, windows) = stream(0, "not-behind");
    assert_eq!(windows, [(PAGES, PAGES); 3]);
}
