//! vhost-user-9p: serve a host directory to a VM over virtio-9p (vhost-user).

use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use log::{info, warn};
use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

use vhost_user_9p::gateway::Gateway;
use vhost_user_9p::privileges::{self, Caps};
use vhost_user_9p::sandbox::Sandbox;
use vhost_user_9p::server::{Config, SecurityModel, Server};
use vhost_user_9p::socket::{bind_private, ListenAddress, SocketFiles, SocketListener};
use vhost_user_9p::virtio::backend::MAX_QUEUE_SIZE;
use vhost_user_9p::virtio::P9Backend;

mod settings;
mod systemd;

use settings::{Cli, Settings, VhostSocket};

/// What `--print-capabilities` prints: QEMU's vhost-user.json
/// `VHostUserBackendCapabilities` for type 9p, which defines no features.
const CAPABILITIES: &str = r#"{"type": "9p", "features": []}"#;

/// The `-chardev`/`-device` arguments that attach this daemon to QEMU
/// (10.2 or later): its vhost-user socket `path` (None: a socket with no
/// path, so a placeholder), the device's config (`le16 tag_len; u8
/// tag[tag_len]`: 2 + the tag's length in bytes) and queue size. A comma
/// in the path is doubled (QEMU's escape); an argument with characters a
/// shell would take is single-quoted, so the line pastes into a shell.
fn qemu_arguments(path: Option<&Path>, tag: &str) -> String {
    let chardev = match path {
        Some(path) => shell_word(&format!(
            "socket,id=vu9p,path={}",
            path.to_string_lossy().replace(',', ",,")
        )),
        None => "socket,id=vu9p,path=<the socket's path>".to_string(),
    };
    format!(
        "-chardev {chardev} -device vhost-user-test-device-pci,chardev=vu9p,virtio-id=9,\
         num_vqs=1,vq_size={MAX_QUEUE_SIZE},config_size={}",
        2 + tag.len()
    )
}

/// `word` as one shell word: as it is when made only of characters no
/// shell interprets, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || ",._+-=/:@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The absolute form of a socket path (its directory canonicalized), so the
/// path in /proc/net/unix is the same whatever form a user gives.
fn absolute_socket_path(path: &Path) -> Result<PathBuf, String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("--socket-path {}: not a file path", path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = dir.canonicalize().map_err(|e| {
        format!(
            "--socket-path {}: directory {}: {e}",
            path.display(),
            dir.display()
        )
    })?;
    Ok(dir.join(name))
}

/// Whether some process listens on the Unix socket `path`, judged from
/// /proc/net/unix (connecting to probe would end a vhost-user backend's
/// only session).
fn socket_is_listening(path: &Path) -> bool {
    const SO_ACCEPTCON: u32 = 1 << 16;
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let wanted = path.as_os_str().as_encoded_bytes();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(3).and_then(|f| u32::from_str_radix(f, 16).ok());
        let bound = fields.get(7).map(|p| p.as_bytes());
        flags.is_some_and(|f| f & SO_ACCEPTCON != 0) && bound == Some(wanted)
    })
}

/// Refuses a live socket, removes a stale one, refuses anything else.
fn clear_socket_path(path: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("--socket-path {}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "--socket-path {}: exists and is not a socket; remove it or choose another path",
            path.display()
        ));
    }
    if socket_is_listening(path) {
        return Err(format!(
            "--socket-path {}: another process is listening on it; stop it or choose another path",
            path.display()
        ));
    }
    std::fs::remove_file(path).map_err(|e| {
        format!(
            "--socket-path {}: cannot remove stale socket: {e}",
            path.display()
        )
    })
}

fn run(mut settings: Settings) -> Result<(), String> {
    // SIGTERM/SIGINT/SIGHUP are taken by one thread (below), so block them
    // before any other thread exists.
    let stop_signals = stop_signal_set();
    stop_signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    set_open_file_limit(settings.rlimit_nofile)?;
    let config = &settings.config;
    if settings.upstream.is_none() {
        warn_about_mount_flags(&settings.shared_dir, config.security_model);
    }

    // Bind everything before serving anything, and before the sandbox
    // leaves the host's file system.
    let mut socket_files = SocketFiles::default();
    let mut sockets = Vec::new();
    for address in &settings.listen {
        let path = match address {
            ListenAddress::Unix(path) => Some(absolute_socket_path(path)?),
            ListenAddress::Tcp(_) => None,
        };
        if let Some(path) = &path {
            clear_socket_path(path)?;
        }
        let listener = SocketListener::bind(address, &settings.access)
            .map_err(|e| format!("--listen {}: cannot listen: {e}", describe(address)))?;
        if let Some(path) = &path {
            note_socket_file(&mut socket_files, path)?;
        }
        sockets.push(listener);
    }
    let vhost = match settings.vhost.take() {
        Some(VhostSocket::Path(path)) => {
            let socket_path = absolute_socket_path(&path)?;
            clear_socket_path(&socket_path)?;
            let listener = bind_private(&socket_path, settings.access.group, |at| {
                std::os::unix::net::UnixListener::bind(at)
            })
            .map_err(|e| format!("--socket-path {}: cannot listen: {e}", path.display()))?;
            note_socket_file(&mut socket_files, &socket_path)?;
            // Without a path: the listener never removes a file by name.
            Some(VhostListener {
                listener: Listener::from(listener),
                name: path.display().to_string(),
                ownership: Ownership::Own,
                path: Some(socket_path),
            })
        }
        // Inherited, listening already (settings.rs checked it): its file
        // is its maker's, neither replaced nor removed here.
        Some(VhostSocket::Inherited(listener)) => {
            use std::os::fd::AsRawFd;
            let fd = listener.as_raw_fd();
            let path = listener
                .local_addr()
                .ok()
                .and_then(|addr| addr.as_pathname().map(Path::to_path_buf));
            let name = match &path {
                Some(path) => format!("{} (--fd {fd})", path.display()),
                None => format!("--fd {fd}"),
            };
            Some(VhostListener {
                listener: Listener::from(listener),
                name,
                ownership: Ownership::Inherited,
                path,
            })
        }
        None => None,
    };

    // A TCP upstream is reached before the namespace sandbox takes the
    // network away: its connections are made now and used once confined.
    let premade = match &settings.upstream {
        Some(upstream)
            if settings.sandbox == Sandbox::Namespace
                && matches!(
                    ListenAddress::parse(&upstream.address),
                    Ok(ListenAddress::Tcp(_))
                ) =>
        {
            Gateway::connections(upstream)?
        }
        _ => Vec::new(),
    };
    let mut confined = match &settings.upstream {
        None => settings
            .sandbox
            .enter(&settings.shared_dir, stop_signals, socket_files)?,
        Some(upstream) => {
            let socket = match ListenAddress::parse(&upstream.address) {
                Ok(ListenAddress::Unix(path)) => Some(path),
                _ => None,
            };
            let socket = socket.as_deref();
            settings
                .sandbox
                .enter_gateway(socket, stop_signals, socket_files)?
        }
    };
    // From here on, however run() ends, the socket files go.
    let socket_files = RemovedAtEnd(Arc::new(std::mem::take(&mut confined.socket_files)));
    keep_privileges(&settings, confined.subordinate_ids)?;
    confined.exit_with_parent();
    let server = Arc::new(match &settings.upstream {
        None => Server::new(config)?,
        // The gateway's upstream, connected once the daemon has only the
        // privileges it keeps: capabilities are per thread, and the
        // client's reader thread must have no more than the others.
        // (A TCP upstream's, made before the sandbox: `premade`.)
        Some(upstream) => Server::new(&Config {
            upstream: Some(Arc::new(Gateway::over(upstream, config, premade)?)),
            ..config.clone()
        })?,
    });
    settings.seccomp.install()?;
    #[cfg(debug_assertions)]
    if let Some(call) = std::env::var_os("VHOST_USER_9P_TEST_FORBIDDEN_CALL") {
        // Test hook (tests/sandbox.rs): a call outside the allowlist.
        if call == "ioctl" {
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD on stdin writes one int into `n`.
            unsafe { libc::ioctl(0, libc::FIONREAD, &mut n) };
        } else {
            // SAFETY: socket(2) with constant arguments; the descriptor leaks.
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        }
    }
    info!(
        "sharing {} ({}{}{})",
        match &settings.upstream {
            Some(upstream) => format!("upstream {}", upstream.address),
            None => settings.shared_dir.display().to_string(),
        },
        match settings.upstream {
            Some(_) => "gateway",
            None => config.security_model.name(),
        },
        if config.readonly { ", read-only" } else { "" },
        match settings.sandbox {
            Sandbox::Namespace => ", sandbox: namespace",
            Sandbox::Chroot => ", sandbox: chroot",
            Sandbox::None => ", no sandbox",
        },
    );

    {
        let socket_files = socket_files.0.clone();
        std::thread::spawn(move || {
            if let Ok(signal) = stop_signals.wait() {
                info!("{signal:?}: removing the sockets and exiting");
                socket_files.remove();
                std::process::exit(0);
            }
        });
    }

    let mut threads = Vec::new();
    for listener in sockets {
        info!("serving 9P on {}", listener.local_description());
        let server = server.clone();
        threads.push(std::thread::spawn(move || listener.serve(server)));
    }
    let result = match vhost {
        Some(vhost) => serve_vhost_user(
            server,
            vhost,
            &settings.tag,
            settings.thread_pool_size,
            settings.poll,
        ),
        None => {
            for thread in threads {
                let _ = thread.join();
            }
            Ok(())
        }
    };
    drop(socket_files);
    result
}

/// The socket files, removed when this goes.
struct RemovedAtEnd(Arc<SocketFiles>);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        self.0.remove();
    }
}

/// Drops what file serving does not need: as root, the supplementary
/// groups and every capability but those the security model needs
/// (`--modcaps` changes the set). Unprivileged (in a user namespace of
/// its own with `--sandbox namespace`): with subordinate ids and a model
/// that gives files host owners (passthrough, none), the ownership
/// capabilities within that namespace (over its ids only; no devices);
/// otherwise none. Then sets no_new_privs.
fn keep_privileges(settings: &Settings, subordinate_ids: bool) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let host_owners = settings.config.security_model != SecurityModel::MappedXattr;
    let caps = if root && settings.upstream.is_some() {
        // A gateway touches no host file: no capability at all.
        privileges::drop_supplementary_groups()
            .map_err(|e| format!("cannot drop the supplementary groups: {e}"))?;
        Caps::default()
    } else if root {
        privileges::drop_supplementary_groups()
            .map_err(|e| format!("cannot drop the supplementary groups: {e}"))?;
        Caps::for_serving(host_owners)
    } else if subordinate_ids && host_owners {
        // newgidmap leaves setgroups allowed: the groups the user had
        // outside go, as root's do.
        privileges::drop_supplementary_groups()
            .map_err(|e| format!("cannot drop the supplementary groups: {e}"))?;
        Caps::for_serving(false)
    } else {
        Caps::default()
    };
    let caps = match &settings.modcaps {
        Some(spec) => caps.modify(spec).map_err(|e| format!("--modcaps: {e}"))?,
        None => caps,
    };
    privileges::keep_only(caps).map_err(|e| format!("cannot drop capabilities: {e}"))?;
    privileges::set_no_new_privs().map_err(|e| format!("cannot set no_new_privs: {e}"))
}

fn note_socket_file(files: &mut SocketFiles, path: &Path) -> Result<(), String> {
    files
        .add(path)
        .map_err(|e| format!("{}: cannot open its directory: {e}", path.display()))
}

/// Warns when the guest may make device nodes or setuid files that the
/// host would honour: passthrough (or none) as root, on a filesystem
/// mounted without nodev or nosuid.
fn warn_about_mount_flags(dir: &Path, model: SecurityModel) {
    // SAFETY: geteuid has no preconditions.
    if model == SecurityModel::MappedXattr || unsafe { libc::geteuid() } != 0 {
        return;
    }
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return;
    };
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c is a C string; st is writable for a statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: statvfs succeeded and filled it.
    let flags = unsafe { st.assume_init() }.f_flag;
    let missing: Vec<&str> = [(libc::ST_NODEV, "nodev"), (libc::ST_NOSUID, "nosuid")]
        .iter()
        .filter(|(bit, _)| flags & bit == 0)
        .map(|&(_, name)| name)
        .collect();
    if !missing.is_empty() {
        warn!(
            "--shared-dir {}: its filesystem is mounted without {}: device nodes and setuid \
             files the guest makes there ({} as root) work on the host; mount it {} or use \
             --security-model mapped-xattr (SECURITY.md)",
            dir.display(),
            missing.join(","),
            model.name(),
            missing.join(",")
        );
    }
}

/// The open file limit aimed at without `--rlimit-nofile` (virtiofsd's).
const DEFAULT_NOFILE: u64 = 1_000_000;

/// Applies `--rlimit-nofile`: an explicit limit is set as both the soft and
/// the hard limit or the daemon stops; the default raises the soft limit to
/// DEFAULT_NOFILE (capped by fs.nr_open), and the hard one too if it may.
fn set_open_file_limit(wanted: Option<u64>) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let limits = || {
        getrlimit(Resource::RLIMIT_NOFILE)
            .map_err(|e| format!("cannot read the open file limit: {e}"))
    };
    let (soft, hard) = limits()?;
    match wanted {
        Some(0) => {}
        Some(n) => {
            if let Some(max) = nr_open.filter(|&max| n > max) {
                return Err(format!(
                    "--rlimit-nofile {n}: above the system's fs.nr_open ({max}); give at most {max}"
                ));
            }
            setrlimit(Resource::RLIMIT_NOFILE, n, n).map_err(|e| {
                format!(
                    "--rlimit-nofile {n}: cannot set the open file limit ({e}); the hard limit is \
                     {hard}: give at most that, or run with CAP_SYS_RESOURCE"
                )
            })?;
        }
        None => {
            let target = nr_open.map_or(DEFAULT_NOFILE, |max| max.min(DEFAULT_NOFILE));
            if soft < target {
                // Raising the hard limit needs CAP_SYS_RESOURCE; without it
                // the soft limit goes as far as the hard one.
                if setrlimit(Resource::RLIMIT_NOFILE, target, hard.max(target)).is_err() {
                    let _ = setrlimit(Resource::RLIMIT_NOFILE, target.min(hard), hard);
                }
            }
        }
    }
    let (soft, _) = limits()?;
    info!("open file limit {soft}");
    Ok(())
}

fn stop_signal_set() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

fn describe(address: &ListenAddress) -> String {
    match address {
        ListenAddress::Unix(path) => format!("unix:{}", path.display()),
        ListenAddress::Tcp(addr) => format!("tcp:{addr}"),
    }
}

/// Whose the vhost-user listening socket is.
enum Ownership {
    /// Bound here (`--socket-path`): once a VMM knocks, it stops taking
    /// connections, so a second VMM is refused at once.
    Own,
    /// Handed over (`--fd`, socket activation): its maker may listen on it
    /// again after this daemon, so it is only closed here, never shut down.
    Inherited,
}

/// Waits until a connection is pending on `listener`, then shuts it for
/// reading: the pending connection is still accepted, any later one is
/// refused (ECONNREFUSED) instead of waiting in the backlog.
fn stop_taking_connections_after_the_first(listener: &Listener) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut pending = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd; the descriptor is open for the call.
        if unsafe { libc::poll(&mut pending, 1, -1) } >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("cannot wait for the VMM: {e}"));
        }
    }
    // SAFETY: shutdown(2) on an open socket descriptor.
    if unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RD) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("cannot close the socket to a second VMM: {e}"));
    }
    Ok(())
}

/// The vhost-user socket, listening: its name for the log, whose it is,
/// and its path (if it has one).
struct VhostListener {
    listener: Listener,
    name: String,
    ownership: Ownership,
    path: Option<PathBuf>,
}

/// Serves the one VMM that connects to `vhost`; returns when it leaves.
fn serve_vhost_user(
    server: Arc<Server>,
    vhost: VhostListener,
    tag: &str,
    thread_pool_size: Option<usize>,
    poll: std::time::Duration,
) -> Result<(), String> {
    let threads = thread_pool_size.unwrap_or_else(vhost_user_9p::virtio::default_thread_pool_size);
    let backend = Arc::new(
        P9Backend::with_thread_pool(server, tag, threads)
            .map_err(|e| format!("cannot start the worker threads: {e}"))?
            .with_polling(poll),
    );
    let mut daemon = VhostUserDaemon::new(
        "vhost-user-9p".to_string(),
        backend,
        GuestMemoryAtomic::new(GuestMemoryMmap::new()),
    )
    .map_err(|e| format!("cannot create the vhost-user daemon: {e}"))?;
    let VhostListener {
        mut listener,
        name,
        ownership,
        path,
    } = vhost;
    info!("vhost-user socket {name} (tag {tag:?})");
    info!("QEMU: {}", qemu_arguments(path.as_deref(), tag));
    if let Ownership::Own = ownership {
        stop_taking_connections_after_the_first(&listener)?;
    }
    daemon
        .start(&mut listener)
        .map_err(|e| format!("vhost-user connection failed: {e}"))?;
    // One VMM. An own socket refuses a second one already; an inherited
    // one is closed here, and a VMM that knocks later waits for its maker
    // (systemd starts the next instance). The file goes when the daemon
    // stops.
    drop(listener);
    info!("VMM connected");
    let result = daemon.wait();
    info!("VMM disconnected");
    match result {
        Ok(()) => Ok(()),
        Err(vhost_user_backend::Error::HandleRequest(
            vhost::vhost_user::Error::Disconnected | vhost::vhost_user::Error::PartialMessage,
        )) => Ok(()),
        Err(e) => Err(format!("vhost-user connection ended with an error: {e}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_capabilities {
        // QEMU's convention: print, exit 0, ignore every other option.
        use std::io::Write;
        return match writeln!(std::io::stdout(), "{CAPABILITIES}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vhost-user-9p: error: cannot write the capabilities: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Before any thread exists: this changes the environment.
    let passed = systemd::take_listen_fds();
    let mut logger = env_logger::Builder::new();
    logger
        .filter_level(cli.log_level.filter())
        .format_target(false);
    if systemd::stderr_is_journal() {
        // The journal stamps each line itself.
        logger.format_timestamp(None);
    }
    logger.init();
    let fd = cli.fd;
    match passed
        .and_then(|passed| systemd::check_fd(passed, fd))
        .and_then(|()| Settings::try_from(cli))
        .and_then(run)
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vhost-user-9p: error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_arguments_follow_the_socket_and_the_tag() {
        assert_eq!(
            qemu_arguments(Some(Path::new("/run/vhost-user-9p/vm1.sock")), "share"),
            "-chardev socket,id=vu9p,path=/run/vhost-user-9p/vm1.sock -device \
             vhost-user-test-device-pci,chardev=vu9p,virtio-id=9,num_vqs=1,vq_size=1024,\
             config_size=7"
        );
        // config_size counts the tag's bytes, not its characters.
        let tag = "é".repeat(100);
        assert!(qemu_arguments(Some(Path::new("/s")), &tag).ends_with(",config_size=202"));
        // QEMU's comma escape; quoted for a shell.
        assert_eq!(
            qemu_arguments(Some(Path::new("/tmp/a,b c's.sock")), "t"),
            "-chardev 'socket,id=vu9p,path=/tmp/a,,b c'\\''s.sock' -device \
             vhost-user-test-device-pci,chardev=vu9p,virtio-id=9,num_vqs=1,vq_size=1024,\
             config_size=3"
        );
        assert!(qemu_arguments(None, "t")
            .starts_with("-chardev socket,id=vu9p,path=<the socket's path> -device "));
    }
}
