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

use crate::common::daemon::{Daemon, Killed, BIN};
use crate::common::inotify::opens_during;
use crate::common::inproc::{InProc, Reply, ROOT};
// The battery's sessions; `Client` is the name symlinks.rs knows them by.
pub use crate::common::inproc::{Timed, TypedClient, DEADLINE};
use crate::common::proc::wait_for_path;

mod battery;
mod clients;
mod made;
mod ptys;

use battery::every_open;
pub use clients::{Socket, DIALECTS};

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
