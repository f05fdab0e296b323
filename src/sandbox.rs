//! The daemon confines itself before it serves (`--sandbox`), as virtiofsd
//! does:
//!
//! - `namespace`: new user (when not root), mount, pid and net namespaces;
//!   the share bind-mounted onto itself becomes the root (`pivot_root`)
//!   and the host's root is detached, so no host path can be named any
//!   more. A pid namespace takes a child process: the process started
//!   stays outside, forwards the stop signals and exits as the child does.
//! - `chroot`: `chroot` into the share, for containers that forbid
//!   namespaces (root only; weaker: the host's mounts stay attached).
//! - `none`: no confinement.
//!
//! Everything needed from outside the share is opened first, while the
//! host's file system is there: the sockets (by the caller), the host's
//! user database and `/proc/self/fd` (of the sandbox's own /proc).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, chroot, fork, getegid, geteuid, pivot_root, ForkResult, Pid};

use crate::server::{host, user::UserDb};
use crate::socket::SocketFiles;

pub mod user_namespace;
use user_namespace::Mapping;

/// How the daemon confines itself (`--sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sandbox {
    /// New mount, pid and net namespaces (and a user namespace when not
    /// root), with the share as the root.
    Namespace,
    /// chroot into the share (root only).
    Chroot,
    /// No confinement.
    None,
}

/// Where a sandbox step failed: one line naming the step, the error and
/// what to do.
fn step(what: &str, e: impl std::fmt::Display, hint: &str) -> String {
    format!("sandbox: cannot {what}: {e}; {hint}")
}

const NONE_HINT: &str = "or run with --sandbox none";

impl Sandbox {
    /// Confines the process to `shared_dir`. Returns in the process that
    /// is to serve, whose root is then the share (`namespace`, `chroot`),
    /// with the socket files it is to remove when it stops. In `namespace`
    /// mode the process that called it never returns: it waits for the
    /// serving child, removes `socket_files` and exits with the child's
    /// status (the child has none to remove). The caller blocks the stop
    /// signals (`stop_signals`) before, and has no other threads yet.
    pub fn enter(
        self,
        shared_dir: &Path,
        stop_signals: SigSet,
        socket_files: SocketFiles,
    ) -> Result<Confined, String> {
        self.confine(Root::Share(shared_dir), stop_signals, socket_files)
    }

    /// `enter` for a gateway (`--upstream`), which has no shared
    /// directory: in `namespace` mode the root is an empty tmpfs holding
    /// only the upstream's Unix socket, at its own path, to connect to
    /// once confined (`upstream_socket`; None: a TCP upstream, whose
    /// connections the caller made before, since the namespace has no
    /// network: the root holds nothing). `chroot` is refused.
    pub fn enter_gateway(
        self,
        upstream_socket: Option<&Path>,
        stop_signals: SigSet,
        socket_files: SocketFiles,
    ) -> Result<Confined, String> {
        self.confine(Root::Gateway(upstream_socket), stop_signals, socket_files)
    }

    fn confine(
        self,
        root: Root<'_>,
        stop_signals: SigSet,
        mut socket_files: SocketFiles,
    ) -> Result<Confined, String> {
        // Read while the host's /etc is there.
        UserDb::host();
        let mut subordinate_ids = false;
        let lifeline = match (self, root) {
            (Sandbox::None, _) => Ok(None),
            (Sandbox::Chroot, Root::Share(shared_dir)) => enter_chroot(shared_dir).map(|()| None),
            (Sandbox::Chroot, Root::Gateway(_)) => Err(step(
                "chroot",
                "a gateway has no shared directory to chroot into",
                "use --sandbox namespace or --sandbox none",
            )),
            (Sandbox::Namespace, root) => {
                enter_namespaces(root, stop_signals, &mut socket_files, &mut subordinate_ids)
                    .map(Some)
            }
        };
        match lifeline {
            Ok(lifeline) => Ok(Confined {
                socket_files,
                lifeline,
                subordinate_ids,
            }),
            Err(e) => {
                // The daemon stops here: its sockets go with it.
                socket_files.remove();
                Err(e)
            }
        }
    }
}

/// What the confined process's root is made of.
#[derive(Clone, Copy)]
enum Root<'a> {
    /// The shared directory.
    Share(&'a Path),
    /// Nothing but the upstream's socket (a gateway).
    Gateway(Option<&'a Path>),
}

/// The serving process, once confined.
pub struct Confined {
    /// The socket files it removes when it stops.
    pub socket_files: SocketFiles,
    /// In `namespace` mode, the pipe whose other end the parent holds.
    lifeline: Option<OwnedFd>,
    /// Unprivileged, whether the user namespace maps subordinate ids
    /// beyond the daemon's own (see `user_namespace`).
    pub subordinate_ids: bool,
}

impl Confined {
    /// In `namespace` mode, exits once the parent outside is gone (killed,
    /// say): a thread waits for the end of the pipe. Called once the
    /// process's privileges are what it keeps, so the thread has no more.
    pub fn exit_with_parent(&mut self) {
        if let Some(lifeline) = self.lifeline.take() {
            std::thread::spawn(move || {
                // Returns (0 bytes) once the parent has gone.
                let _ = nix::unistd::read(&lifeline, &mut [0u8; 1]);
                std::process::exit(1);
            });
        }
    }
}

fn enter_chroot(shared_dir: &Path) -> Result<(), String> {
    if !geteuid().is_root() {
        return Err(step(
            "chroot",
            "only root may chroot",
            "use --sandbox namespace (which works unprivileged) or --sandbox none",
        ));
    }
    host::open_proc_fd_dir().map_err(|e| step("open /proc/self/fd", e, "is /proc mounted?"))?;
    chroot(shared_dir).map_err(|e| step("chroot into the share", e, NONE_HINT))?;
    chdir("/").map_err(|e| step("enter the share", e, NONE_HINT))
}

/// Returns in the serving child, with its end of the lifeline; notes
/// whether subordinate ids are mapped.
fn enter_namespaces(
    root: Root<'_>,
    stop_signals: SigSet,
    socket_files: &mut SocketFiles,
    subordinate_ids: &mut bool,
) -> Result<OwnedFd, String> {
    let (uid, gid) = (geteuid(), getegid());
    // The user namespace first, so that the process owns the others; the
    // pid namespace is for children only: the serving process is one.
    let mut flags = CloneFlags::CLONE_NEWPID;
    let mut mapping = None;
    if !uid.is_root() {
        flags |= CloneFlags::CLONE_NEWUSER;
        let name = UserDb::host().user(uid.as_raw());
        let wanted = Mapping::for_user(&name, uid.as_raw(), gid.as_raw());
        let prepared = wanted
            .prepare()
            .map_err(|e| step("start the subordinate id helper", e, NONE_HINT))?;
        mapping = Some((wanted, prepared));
    }
    unshare(flags).map_err(|e| {
        if flags.contains(CloneFlags::CLONE_NEWUSER) {
            step(
                "create a user namespace",
                e,
                "unprivileged user namespaces may be disabled (kernel.unprivileged_userns_clone, \
                 user.max_user_namespaces); run as root, or use --sandbox none",
            )
        } else {
            step("create a pid namespace", e, NONE_HINT)
        }
    })?;
    if let Some((wanted, prepared)) = mapping {
        // The daemon's own ids as themselves (files it makes keep its uid
        // and gid on the host), and the subordinate ids if it has some.
        prepared
            .write(&wanted)
            .map_err(|e| format!("sandbox: {e}; {NONE_HINT}"))?;
        *subordinate_ids = wanted.is_subordinate();
    }
    // The child learns that the parent is gone (killed, say) from the end
    // of this pipe, whose writing end only the parent holds (also if it is
    // gone before the child looks: no race as with PR_SET_PDEATHSIG).
    let (lifeline, parent_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| step("make a pipe", e, NONE_HINT))?;
    // SAFETY: the process has one thread (the caller's contract), so the
    // child may do anything after fork.
    match unsafe { fork() }.map_err(|e| step("fork the sandboxed process", e, NONE_HINT))? {
        ForkResult::Parent { child } => {
            drop(lifeline);
            close_all_but(socket_files, &parent_end);
            wait_for(child, stop_signals, socket_files)
        }
        ForkResult::Child => {
            // The parent removes the socket files; the child holds no
            // descriptor of the host's directories.
            drop((std::mem::take(socket_files), parent_end));
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)
                .map_err(|e| step("create mount and net namespaces", e, NONE_HINT))?;
            match root {
                Root::Share(shared_dir) => pivot_into(shared_dir)?,
                Root::Gateway(socket) => pivot_into_empty(socket)?,
            }
            Ok(lifeline)
        }
    }
}

/// In the process that stays outside: closes every descriptor but the
/// standard ones, the socket files' directories and the lifeline's end,
/// so that the sockets
/// (the vhost-user listener above all) are the serving child's alone.
fn close_all_but(socket_files: &SocketFiles, lifeline: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut keep: Vec<i32> = socket_files.dirs().map(|fd| fd.as_raw_fd()).collect();
    keep.push(lifeline.as_raw_fd());
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let open: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closes a descriptor this process no longer uses (the
            // one read_dir had is closed already, and closing it is EBADF).
            unsafe { libc::close(fd) };
        }
    }
}

/// In the new namespaces, before either pivot: mounts that propagate
/// neither way, a /proc of the pid namespace, and the /proc/self/fd
/// directory every reopen goes through.
fn private_mounts_and_proc() -> Result<(), String> {
    let none: Option<&str> = None;
    // Nothing mounted here propagates to the host, nor from it.
    mount(none, "/", none, MsFlags::MS_SLAVE | MsFlags::MS_REC, none)
        .map_err(|e| step("make the mounts private", e, NONE_HINT))?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID,
        none,
    )
    .map_err(|e| step("mount /proc for the pid namespace", e, NONE_HINT))?;
    host::open_proc_fd_dir().map_err(|e| step("open /proc/self/fd", e, NONE_HINT))?;
    Ok(())
}

/// In the new namespaces: a /proc of the pid namespace, then the share as
/// the root and the host's root detached.
fn pivot_into(shared_dir: &Path) -> Result<(), String> {
    private_mounts_and_proc()?;
    let none: Option<&str> = None;
    mount(
        Some(shared_dir),
        shared_dir,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(|e| step("bind-mount the share", e, NONE_HINT))?;
    chdir(shared_dir).map_err(|e| step("enter the share", e, NONE_HINT))?;
    pivot_root(".", ".").map_err(|e| step("pivot_root into the share", e, NONE_HINT))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| step("detach the host's root", e, NONE_HINT))?;
    chdir("/").map_err(|e| step("enter the share", e, NONE_HINT))
}

/// For a gateway, in the new namespaces: a /proc of the pid namespace,
/// then an empty tmpfs as the root, holding only the upstream's socket
/// (bind-mounted at its own path; None: nothing), and the host's root
/// detached.
fn pivot_into_empty(socket: Option<&Path>) -> Result<(), String> {
    private_mounts_and_proc()?;
    let dir = match socket {
        Some(socket) => keep_the_socket(socket)?,
        None => {
            // Any directory will do as the tmpfs's mount point.
            let dir = PathBuf::from("/tmp");
            mount_empty_root(&dir)?;
            dir
        }
    };
    // A place for the gateway's own empty share (server/mod.rs).
    std::fs::create_dir_all(dir.join("tmp")).map_err(|e| step("make /tmp", e, NONE_HINT))?;
    chdir(&dir).map_err(|e| step("enter the empty root", e, NONE_HINT))?;
    pivot_root(".", ".").map_err(|e| step("pivot_root into the empty root", e, NONE_HINT))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| step("detach the host's root", e, NONE_HINT))?;
    chdir("/").map_err(|e| step("enter the empty root", e, NONE_HINT))
}

/// An empty tmpfs mounted on `dir`.
fn mount_empty_root(dir: &Path) -> Result<(), String> {
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID,
        Some("mode=0700,size=64k"),
    )
    .map_err(|e| step("mount an empty root", e, NONE_HINT))
}

/// An empty tmpfs over the directory of the upstream's `socket`, with the
/// socket bind-mounted at its own path inside it: the tmpfs's mount point.
fn keep_the_socket(socket: &Path) -> Result<PathBuf, String> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let none: Option<&str> = None;
    let what = |e: &dyn std::fmt::Display| {
        step(
            &format!("reach the upstream socket {}", socket.display()),
            e,
            NONE_HINT,
        )
    };
    // Its absolute path (the one it has in the new root too), and a hold
    // on it from before the tmpfs covers its directory.
    let dir = socket.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(|e| what(&e))?;
    let name = socket.file_name().ok_or_else(|| what(&"not a file"))?;
    let socket = dir.join(name);
    if dir == Path::new("/") {
        return Err(what(
            &"a socket in / cannot be kept apart from the host's root",
        ));
    }
    let held =
        open(&socket, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| what(&e))?;
    mount_empty_root(&dir)?;
    let inside = dir.join(socket.strip_prefix("/").unwrap_or(&socket));
    let parent = inside.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).map_err(|e| what(&e))?;
    std::fs::File::create(&inside).map_err(|e| what(&e))?;
    use std::os::fd::AsRawFd;
    let source = format!("/proc/self/fd/{}", held.as_raw_fd());
    mount(Some(source.as_str()), &inside, none, MsFlags::MS_BIND, none).map_err(|e| what(&e))?;
    drop(held);
    Ok(dir)
}

/// The process outside the namespaces: passes the stop signals on to the
/// serving child, and when it ends removes the socket files and exits as
/// it did.
fn wait_for(child: Pid, stop_signals: SigSet, socket_files: &SocketFiles) -> ! {
    let mut signals = stop_signals;
    signals.add(Signal::SIGCHLD);
    let _ = signals.thread_block();
    loop {
        let status = waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if matches!(
            status,
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_)
        ) {
            socket_files.remove();
        }
        match status {
            Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                // Die of the same signal, so the caller sees what happened.
                // SAFETY: restores the default action, then raises.
                unsafe {
                    libc::signal(signal as i32, libc::SIG_DFL);
                    let mut set = SigSet::empty();
                    set.add(signal);
                    let _ = set.thread_unblock();
                    libc::raise(signal as i32);
                }
                std::process::exit(128 + signal as i32);
            }
            Err(_) => std::process::exit(1),
            _ => {}
        }
        match signals.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(signal) => {
                let _ = kill(child, signal);
            }
        }
    }
}
