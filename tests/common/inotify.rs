//! inotify for tests: what happened to watched paths while a closure ran.

use std::ffi::CString;
use std::path::Path;

/// One event: the name within a watched directory (empty for the watched
/// path itself) and its mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub mask: u32,
}

/// The events of `mask` on `paths` while `f` ran, and what `f` returned.
pub fn events_during<R>(paths: &[&Path], mask: u32, f: impl FnOnce() -> R) -> (Vec<Event>, R) {
    // SAFETY: system calls on a descriptor this function owns (closed
    // below); the events are read from a buffer the kernel filled whole.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        assert!(fd >= 0, "inotify_init1");
        for path in paths {
            let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            assert!(
                libc::inotify_add_watch(fd, c.as_ptr(), mask) >= 0,
                "watch {path:?}"
            );
        }
        let result = f();
        let mut events = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            let mut at = 0;
            while at < n as usize {
                let event = &*(buf.as_ptr().add(at) as *const libc::inotify_event);
                let start = at + std::mem::size_of::<libc::inotify_event>();
                let name = &buf[start..start + event.len as usize];
                events.push(Event {
                    name: String::from_utf8_lossy(name)
                        .trim_end_matches('\0')
                        .to_string(),
                    mask: event.mask,
                });
                at = start + event.len as usize;
            }
        }
        libc::close(fd);
        (events, result)
    }
}

/// How many opens of `paths` inotify saw while `f` ran, and what `f`
/// returned.
pub fn opens_during<R>(paths: &[&Path], f: impl FnOnce() -> R) -> (usize, R) {
    let (events, result) = events_during(paths, libc::IN_OPEN, f);
    let opens = events
        .iter()
        .filter(|e| e.mask & libc::IN_OPEN != 0)
        .count();
    (opens, result)
}
