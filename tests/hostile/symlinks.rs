//! Symlinks a host process swaps in while the client walks: a directory
//! and a symlink out of the share exchanged (RENAME_EXCHANGE) as fast as
//! the host can, against walks, opens and reads of every dialect. Nothing
//! outside the share is ever read.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inproc::{InProc, ROOT};

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
