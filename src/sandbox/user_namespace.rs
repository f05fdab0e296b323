//! The id maps of the user namespace an unprivileged daemon enters.
//!
//! The daemon's own uid and gid are always mapped to themselves, so the
//! files it makes keep its ids on the host. When /etc/subuid and
//! /etc/subgid give the user subordinate ids and newuidmap/newgidmap (the
//! `uidmap` package) are installed, every other id below the ranges' total
//! is mapped onto them as well (podman's `keep-id` layout): id `n` inside
//! is the `n`-th subordinate id, skipping the daemon's own. Those maps can
//! only be written from outside the namespace, by the set-uid helpers, so
//! a helper process forked before the namespace is made runs them on the
//! daemon once it is inside.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// One line of an id map: `inside` to `outside`, `count` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The kernel's limit on the lines of one id map.
const MAX_EXTENTS: usize = 340;

/// `own` as itself, then the ranges (`start`, `count`) in order from id 0
/// up, around `own`.
pub fn keep_id(own: u32, ranges: &[(u32, u32)]) -> Vec<Extent> {
    let mut map = vec![Extent {
        inside: own,
        outside: own,
        count: 1,
    }];
    let mut next: u64 = 0;
    for &(start, count) in ranges {
        let mut used: u64 = 0;
        while used < u64::from(count) && map.len() < MAX_EXTENTS {
            if next == u64::from(own) {
                next += 1;
                continue;
            }
            let room = if next < u64::from(own) {
                u64::from(own) - next
            } else {
                u64::from(u32::MAX) - next
            };
            let len = room.min(u64::from(count) - used);
            if len == 0 {
                return map;
            }
            map.push(Extent {
                inside: next as u32,
                outside: (u64::from(start) + used) as u32,
                count: len as u32,
            });
            next += len;
            used += len;
        }
    }
    map
}

/// The ranges /etc/subuid or /etc/subgid (`file`) gives the user named
/// `name` or numbered `id`, in the file's order.
pub fn subordinate_ranges(file: &str, name: &str, id: u32) -> Vec<(u32, u32)> {
    let id = id.to_string();
    file.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let start = fields.next()?.parse::<u32>().ok()?;
            let count = fields.next()?.parse::<u32>().ok()?;
            let fits = u64::from(start) + u64::from(count) <= u64::from(u32::MAX);
            ((owner == name || owner == id) && count > 0 && fits).then_some((start, count))
        })
        .collect()
}

/// How the namespace's ids are to be mapped.
pub enum Mapping {
    /// The daemon's own uid and gid only (written by the daemon itself).
    Own { uid: u32, gid: u32 },
    /// With the subordinate ids, by newuidmap and newgidmap.
    Subordinate {
        uids: Vec<Extent>,
        gids: Vec<Extent>,
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

impl Mapping {
    /// The mapping for the user `name` (`uid`, `gid`): subordinate ids if
    /// both files give some and both helpers are installed.
    pub fn for_user(name: &str, uid: u32, gid: u32) -> Mapping {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        let uids = subordinate_ranges(&read("/etc/subuid"), name, uid);
        let gids = subordinate_ranges(&read("/etc/subgid"), name, gid);
        match (
            uids.is_empty() || gids.is_empty(),
            helper("newuidmap"),
            helper("newgidmap"),
        ) {
            (false, Some(newuidmap), Some(newgidmap)) => Mapping::Subordinate {
                uids: keep_id(uid, &uids),
                gids: keep_id(gid, &gids),
                newuidmap,
                newgidmap,
            },
            _ => Mapping::Own { uid, gid },
        }
    }

    /// Whether ids beyond the daemon's own are mapped.
    pub fn is_subordinate(&self) -> bool {
        matches!(self, Mapping::Subordinate { .. })
    }

    /// Prepares the mapping of this process's user namespace-to-be: for
    /// subordinate ids, forks the helper (which waits). Called before the
    /// namespace is made, with one thread in the process.
    pub fn prepare(&self) -> io::Result<Prepared> {
        let Mapping::Subordinate {
            uids,
            gids,
            newuidmap,
            newgidmap,
        } = self
        else {
            return Ok(Prepared::Own);
        };
        let pid = std::process::id();
        let uid_args = helper_args(newuidmap, pid, uids)?;
        let gid_args = helper_args(newgidmap, pid, gids)?;
        let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // SAFETY: the process has one thread (the caller's contract); the
        // child makes async-signal-safe calls only (read, fork, execv,
        // waitpid, _exit) on what was prepared before the fork.
        match unsafe { nix::unistd::fork() }? {
            nix::unistd::ForkResult::Child => unsafe {
                use std::os::fd::AsRawFd;
                libc::close(go_write.as_raw_fd());
                let mut byte = 0u8;
                if libc::read(go_read.as_raw_fd(), (&raw mut byte).cast(), 1) != 1 {
                    libc::_exit(2);
                }
                let status = run(&gid_args);
                if status != 0 {
                    libc::_exit(status);
                }
                libc::_exit(run(&uid_args));
            },
            nix::unistd::ForkResult::Parent { child } => {
                drop(go_read);
                Ok(Prepared::Helper {
                    child,
                    go: go_write,
                })
            }
        }
    }
}

/// A mapping ready to be written once the namespace exists.
pub enum Prepared {
    Own,
    Helper {
        child: nix::unistd::Pid,
        go: std::os::fd::OwnedFd,
    },
}

impl Prepared {
    /// Writes the maps of the user namespace the process has just entered.
    pub fn write(self, mapping: &Mapping) -> Result<(), String> {
        match (self, mapping) {
            (Prepared::Own, Mapping::Own { uid, gid }) => map_own(*uid, *gid)
                .map_err(|e| format!("cannot map the daemon's ids in its user namespace: {e}")),
            (Prepared::Helper { child, go }, _) => {
                let _ = nix::unistd::write(&go, &[1]);
                drop(go);
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                    status => Err(format!(
                        "cannot map the subordinate ids of /etc/subuid and /etc/subgid with \
                         newuidmap/newgidmap ({status:?}, its message above): check those \
                         files and that both helpers are set-uid root (the uidmap package)"
                    )),
                }
            }
            (Prepared::Own, Mapping::Subordinate { .. }) => {
                Err("the subordinate id helper was not prepared".into())
            }
        }
    }
}

/// Writes the user namespace's id maps: `uid` and `gid` as themselves.
fn map_own(uid: u32, gid: u32) -> io::Result<()> {
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
}

/// newuidmap or newgidmap, where Debian installs them.
fn helper(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// `HELPER PID inside outside count ...` as C strings, with the pointer
/// array execv takes (the strings it points into are the vector's own).
struct Args {
    strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

fn helper_args(helper: &Path, pid: u32, map: &[Extent]) -> io::Result<Args> {
    use std::os::unix::ffi::OsStrExt;
    let mut strings = vec![
        CString::new(helper.as_os_str().as_bytes())?,
        CString::new(pid.to_string())?,
    ];
    for e in map {
        for n in [e.inside, e.outside, e.count] {
            strings.push(CString::new(n.to_string())?);
        }
    }
    let mut pointers: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
    pointers.push(std::ptr::null());
    Ok(Args { strings, pointers })
}

/// Runs a helper and waits for it: its exit status, or 127.
///
/// # Safety
/// Called in a forked child of a process with one thread; makes
/// async-signal-safe calls only.
unsafe fn run(args: &Args) -> i32 {
    let pid = libc::fork();
    if pid == 0 {
        libc::execv(args.strings[0].as_ptr(), args.pointers.as_ptr());
        libc::_exit(127);
    }
    if pid < 0 {
        return 127;
    }
    let mut status = 0;
    if libc::waitpid(pid, &mut status, 0) != pid || !libc::WIFEXITED(status) {
        return 127;
    }
    libc::WEXITSTATUS(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(inside: u32, outside: u32, count: u32) -> Extent {
        Extent {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn own_id_stays_and_the_range_fills_around_it() {
        assert_eq!(
            keep_id(1000, &[(100000, 65536)]),
            [e(1000, 1000, 1), e(0, 100000, 1000), e(1001, 101000, 64536)]
        );
        assert_eq!(keep_id(0, &[(100000, 10)]), [e(0, 0, 1), e(1, 100000, 10)]);
        assert_eq!(
            keep_id(70000, &[(100000, 65536)]),
            [e(70000, 70000, 1), e(0, 100000, 65536)]
        );
    }

    #[test]
    fn several_ranges_follow_each_other() {
        assert_eq!(
            keep_id(5, &[(100, 3), (200, 4)]),
            [e(5, 5, 1), e(0, 100, 3), e(3, 200, 2), e(6, 202, 2)]
        );
    }

    #[test]
    fn the_map_never_passes_the_top_nor_the_kernels_line_limit() {
        let map = keep_id(1, &[(10, u32::MAX - 10)]);
        assert!(map
            .iter()
            .all(|x| u64::from(x.inside) + u64::from(x.count) <= 1 << 32));
        let many: Vec<(u32, u32)> = (0..1000).map(|i| (100_000 + i * 10, 1)).collect();
        assert_eq!(keep_id(50_000, &many).len(), MAX_EXTENTS);
    }

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let file = "alice:100000:65536\n# comment\n1001:300000:10\nbob:200000:65536\n\
                    alice:400000:0\nalice:x:1\nalice:4294967295:2\n";
        assert_eq!(subordinate_ranges(file, "alice", 1000), [(100000, 65536)]);
        assert_eq!(subordinate_ranges(file, "carol", 1001), [(300000, 10)]);
        assert!(subordinate_ranges(file, "dave", 1002).is_empty());
    }
}
