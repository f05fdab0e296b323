//! Device nodes and fifos in the share are never opened on the host,
//! whatever reaches them: Tlopen, Topen, Tfsync, truncation by Tsetattr,
//! Twstat or a control file's `truncate`. inotify sees every open.

use std::ffi::CString;
use std::path::Path;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inproc::{InProc, ROOT};

/// Opens of `paths` that inotify saw while `f` ran.
pub fn opens_during(paths: &[&Path], f: impl FnOnce()) -> usize {
    // SAFETY: plain system calls on a descriptor this function owns; the
    // events are read from a buffer the kernel filled.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        assert!(fd >= 0);
        for path in paths {
            let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            assert!(libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_OPEN) >= 0);
        }
        f();
        let mut buf = [0u8; 4096];
        let mut opens = 0;
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            let mut at = 0;
            while at < n as usize {
                let event = &*(buf.as_ptr().add(at) as *const libc::inotify_event);
                opens += usize::from(event.mask & libc::IN_OPEN != 0);
                at += std::mem::size_of::<libc::inotify_event>() + event.len as usize;
            }
        }
        libc::close(fd);
        opens
    }
}

fn mknod(path: &Path, mode: u32, dev: u64) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is a C string.
    assert_eq!(
        unsafe { libc::mknod(c.as_ptr(), mode, dev) },
        0,
        "mknod {path:?}"
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
            let opens = opens_during(&[path], || {
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
        let opens = opens_during(&[&file], || {
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
