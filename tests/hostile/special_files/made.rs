//! Special files made every way a client has, never opened.

use super::*;

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
