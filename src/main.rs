//! vhost-user-9p: serve a host directory to a VM over virtio-9p (vhost-user).

use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use log::{info, warn};
use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

use vhost_user_9p::privileges::{self, Caps};
use vhost_user_9p::sandbox::Sandbox;
use vhost_user_9p::seccomp::Seccomp;
use vhost_user_9p::server::user::UserDb;
use vhost_user_9p::server::{Config, IdMap, IdRange, SecurityModel, Server, DEFAULT_WRITE_BEHIND};
use vhost_user_9p::socket::{
    bind_private, ListenAddress, SocketAccess, SocketFiles, SocketListener,
};
use vhost_user_9p::virtio::{P9Backend, MAX_TAG_LEN};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
    Off,
}

/// Share a host directory with a virtual machine over 9P2000.L, as a
/// vhost-user virtio-9p device backend.
///
/// Start it first, then QEMU with
/// `-chardev socket,id=c,path=SOCKET -device vhost-user-test-device-pci,chardev=c,virtio-id=9,num_vqs=1,vq_size=1024,config_size=<2+tag length>`
/// and shared guest memory (`-object memory-backend-memfd,...,share=on`).
/// In the guest: `mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 TAG /mnt`.
/// The daemon serves one VMM connection and exits when it disconnects.
/// With `--listen` it also (or only) serves 9P clients over Unix or TCP
/// sockets; without `--socket-path` it runs until stopped.
#[derive(Debug, Parser)]
#[command(version, about, long_about, max_term_width = 100)]
struct Cli {
    /// vhost-user Unix socket to listen on (a stale socket file is replaced)
    #[arg(long, value_name = "PATH", required_unless_present = "listen")]
    socket_path: Option<PathBuf>,

    /// Also (or instead) serve 9P over a stream socket: unix:PATH, or
    /// tcp:HOST:PORT (tcp:PORT is loopback); repeatable. Each connection is
    /// its own session
    #[arg(long, value_name = "ADDR", value_parser = ListenAddress::parse)]
    listen: Vec<ListenAddress>,

    /// Directory to share
    #[arg(long, value_name = "DIR")]
    shared_dir: PathBuf,

    /// Mount tag the guest uses to find the share (1 to 255 bytes)
    #[arg(long, value_name = "TAG", required_unless_present = "listen")]
    tag: Option<String>,

    /// Share read-only: every change is refused with EROFS
    #[arg(long)]
    readonly: bool,

    /// Where guest owners, modes and device numbers are kept: passthrough
    /// (on the host files, needs root), mapped-xattr (in user.virtfs.*
    /// xattrs of files the daemon owns), none (like passthrough, failed
    /// ownership changes ignored). Default: passthrough when running as
    /// root, mapped-xattr otherwise
    #[arg(long, value_name = "MODEL", value_parser = parse_security_model)]
    security_model: Option<SecurityModel>,

    /// Map guest uids to host uids, `:GUEST:HOST:COUNT:` (repeatable);
    /// unmapped host uids show as 65534, unmapped guest uids are refused
    #[arg(long, value_name = "MAP", value_parser = IdRange::parse)]
    uid_map: Vec<IdRange>,

    /// Map guest gids to host gids, `:GUEST:HOST:COUNT:` (repeatable)
    #[arg(long, value_name = "MAP", value_parser = IdRange::parse)]
    gid_map: Vec<IdRange>,

    /// Worker threads serving requests in parallel (0 or 1: serve them on
    /// the queue thread) [default: the number of CPUs, at least 2]
    #[arg(long, value_name = "N")]
    thread_pool_size: Option<usize>,

    /// Write-behind window, MiB: while a guest writes a file back to back,
    /// each stretch of this size is handed to the disk (sync_file_range)
    /// once the writer is a further stretch past it, so a closing fsync has
    /// less left to wait for; a file written in less than two stretches is
    /// left alone. 0: leave all write-back to the host kernel
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_WRITE_BEHIND >> 20,
          value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    write_behind: u64,

    /// Open file limit (RLIMIT_NOFILE) to set at start: every file the guest
    /// has walked to or opened and not yet clunked holds a descriptor, and a
    /// cache=loose guest keeps one per file in its dentry cache. 0: leave
    /// the limit as inherited [default: 1,000,000 (fs.nr_open if lower); as
    /// high as the hard limit allows when that cannot be raised]
    #[arg(long, value_name = "N")]
    rlimit_nofile: Option<u64>,

    /// Serve the control namespace: `D/,ctl/F` reads as the host's stat of
    /// F and takes commands (chmod, chown, utimes, truncate; in `D/,ctl/,`
    /// also symlink, link, rename, mknod); `,nofollow` stops symlink
    /// following. Never listed
    #[arg(long)]
    ctl: bool,

    /// Print every 9P message both ways to stderr, in Plan 9 lib9p's
    /// style (`<-N- Twalk tag 5 fid 1 newfid 2 nwname 1 0:etc`)
    #[arg(long)]
    trace: bool,

    /// Fids one client session may hold: one per file it has walked to and
    /// not clunked (a cache=loose guest keeps one per cached dentry); a new
    /// one beyond is refused with EMFILE. All sessions together hold at
    /// most twice as many (ENFILE beyond)
    #[arg(long, value_name = "N", default_value_t = vhost_user_9p::server::DEFAULT_MAX_FIDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_fids: usize,

    /// With --listen: connections served at once; one more is accepted and
    /// closed at once (its client reads end of file) and a warning logged
    #[arg(long, value_name = "N", default_value_t = vhost_user_9p::server::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,

    /// Give this group (a name from /etc/group, or a number) access to the
    /// daemon's Unix sockets: mode 0660 instead of 0600 (the owner is the
    /// daemon's user)
    #[arg(long, value_name = "GROUP")]
    socket_group: Option<String>,

    /// Accept --listen tcp: at all: 9P over TCP has no authentication, so
    /// anyone who reaches the port acts as any user they name (uid 0 is
    /// still squashed unless --no-root-squash)
    #[arg(long)]
    no_auth: bool,

    /// On --listen sockets, let a client attached as uid 0 act as root
    /// (default: it acts as 65534, like NFS's root_squash)
    #[arg(long)]
    no_root_squash: bool,

    /// How the daemon confines itself once its sockets are bound:
    /// namespace (new mount, pid and net namespaces, and a user namespace
    /// when not root, with the share as the root: nothing else of the
    /// host's file system is reachable), chroot (into the share; root
    /// only, for containers that forbid namespaces), none
    #[arg(long, value_enum, value_name = "MODE", default_value = "namespace")]
    sandbox: Sandbox,

    /// What a system call outside the daemon's allowlist does: kill (the
    /// process), log (allowed, logged by the kernel: find it with `dmesg |
    /// grep type=1326`), trap (SIGSYS), none (no filter)
    #[arg(long, value_enum, value_name = "ACTION", default_value = "kill")]
    seccomp: Seccomp,

    /// Change the capabilities kept as root: `+NAME` adds, `-NAME` drops,
    /// separated by `:` (e.g. `+sys_admin:-mknod`; names as in
    /// capabilities(7), `cap_` optional). Kept by default: chown,
    /// dac_override, fowner, fsetid, setgid, setuid, and with passthrough
    /// or none also mknod and setfcap
    #[arg(long, value_name = "CAPS")]
    modcaps: Option<String>,

    /// Log level (messages go to stderr)
    #[arg(long, value_enum, value_name = "LEVEL", default_value = "info")]
    log_level: LogLevel,
}

fn parse_security_model(s: &str) -> Result<SecurityModel, String> {
    SecurityModel::parse(s).ok_or_else(|| "expected passthrough, mapped-xattr or none".to_string())
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

fn run(cli: Cli) -> Result<(), String> {
    // SIGTERM/SIGINT/SIGHUP are taken by one thread (below), so block them
    // before any other thread exists.
    let stop_signals = stop_signal_set();
    stop_signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let access = socket_access(&cli)?;
    set_open_file_limit(cli.rlimit_nofile)?;
    let tag = cli.tag.clone().unwrap_or_default();
    if cli.socket_path.is_some() && (tag.is_empty() || tag.len() > MAX_TAG_LEN) {
        return Err(format!(
            "--tag: must be 1 to {MAX_TAG_LEN} bytes long, got {}",
            tag.len()
        ));
    }
    let uid_map = IdMap::new(cli.uid_map.clone()).map_err(|e| format!("--uid-map: {e}"))?;
    let gid_map = IdMap::new(cli.gid_map.clone()).map_err(|e| format!("--gid-map: {e}"))?;
    check_shared_dir(&cli.shared_dir)?;
    warn_about_mount_flags(&cli.shared_dir, security_model(&cli));

    // Bind everything before serving anything, and before the sandbox
    // leaves the host's file system.
    let mut socket_files = SocketFiles::default();
    let mut sockets = Vec::new();
    for address in &cli.listen {
        let path = match address {
            ListenAddress::Unix(path) => Some(absolute_socket_path(path)?),
            ListenAddress::Tcp(_) => None,
        };
        if let Some(path) = &path {
            clear_socket_path(path)?;
        }
        let listener = SocketListener::bind(address, &access)
            .map_err(|e| format!("--listen {}: cannot listen: {e}", describe(address)))?;
        if let Some(path) = &path {
            note_socket_file(&mut socket_files, path)?;
        }
        sockets.push(listener);
    }
    let vhost = match &cli.socket_path {
        Some(path) => {
            let socket_path = absolute_socket_path(path)?;
            clear_socket_path(&socket_path)?;
            let listener = bind_private(&socket_path, access.group, |at| {
                std::os::unix::net::UnixListener::bind(at)
            })
            .map_err(|e| format!("--socket-path {}: cannot listen: {e}", path.display()))?;
            note_socket_file(&mut socket_files, &socket_path)?;
            // Without a path: the listener never removes a file by name.
            Some((Listener::from(listener), path))
        }
        None => None,
    };

    let mut confined = cli
        .sandbox
        .enter(&cli.shared_dir, stop_signals, socket_files)?;
    // From here on, however run() ends, the socket files go.
    let socket_files = RemovedAtEnd(Arc::new(std::mem::take(&mut confined.socket_files)));
    keep_privileges(&cli, confined.subordinate_ids)?;
    confined.exit_with_parent();
    let shared_dir = match cli.sandbox {
        Sandbox::None => cli.shared_dir.clone(),
        Sandbox::Namespace | Sandbox::Chroot => PathBuf::from("/"),
    };
    let config = Config {
        readonly: cli.readonly,
        security_model: security_model(&cli),
        uid_map,
        gid_map,
        ctl: cli.ctl,
        trace: cli.trace,
        write_behind: cli.write_behind << 20,
        fid_descriptors: None,
        max_fids: cli.max_fids,
        max_connections: cli.max_connections,
        ..Config::new(&shared_dir)
    };
    let server = Arc::new(Server::new(&config)?);
    cli.seccomp.install()?;
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
        cli.shared_dir.display(),
        config.security_model.name(),
        if cli.readonly { ", read-only" } else { "" },
        match cli.sandbox {
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
        Some((listener, path)) => {
            serve_vhost_user(server, listener, path, &tag, cli.thread_pool_size)
        }
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
fn keep_privileges(cli: &Cli, subordinate_ids: bool) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let host_owners = security_model(cli) != SecurityModel::MappedXattr;
    let caps = if root {
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
    let caps = match &cli.modcaps {
        Some(spec) => caps.modify(spec).map_err(|e| format!("--modcaps: {e}"))?,
        None => caps,
    };
    privileges::keep_only(caps).map_err(|e| format!("cannot drop capabilities: {e}"))?;
    privileges::set_no_new_privs().map_err(|e| format!("cannot set no_new_privs: {e}"))
}

/// The security model the options ask for.
fn security_model(cli: &Cli) -> SecurityModel {
    cli.security_model
        .unwrap_or_else(SecurityModel::default_for_process)
}

/// The shared directory exists and is a directory (checked before the
/// sandbox, whose errors would say less).
fn check_shared_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("--shared-dir {}: not a directory", dir.display())),
        Err(e) => Err(format!("--shared-dir {}: {e}", dir.display())),
    }
}

fn note_socket_file(files: &mut SocketFiles, path: &Path) -> Result<(), String> {
    files
        .add(path)
        .map_err(|e| format!("{}: cannot open its directory: {e}", path.display()))
}

/// Who may connect to the sockets and as whom (`--socket-group`,
/// `--no-root-squash`); refuses `--listen tcp:` without `--no-auth`.
fn socket_access(cli: &Cli) -> Result<SocketAccess, String> {
    for address in &cli.listen {
        let ListenAddress::Tcp(addr) = address else {
            continue;
        };
        if !cli.no_auth {
            return Err(format!(
                "--listen tcp:{addr}: 9P over TCP has no authentication: anyone who can reach \
                 the port (every local user, for loopback) acts as any user they name; add \
                 --no-auth to accept that, or use --listen unix:PATH (with --socket-group)"
            ));
        }
        if !is_loopback(addr) {
            warn!(
                "--listen tcp:{addr}: serving 9P without authentication beyond this host: \
                 anyone who can reach the port acts as any user they name"
            );
        }
    }
    let group = match &cli.socket_group {
        None => None,
        Some(name) => Some(UserDb::host().gid_of(name.as_bytes()).ok_or_else(|| {
            format!(
                "--socket-group {name}: no such group in /etc/group; give a group name or number"
            )
        })?),
    };
    Ok(SocketAccess {
        group,
        root_squash: !cli.no_root_squash,
    })
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

/// Whether a `HOST:PORT` listens on loopback only.
fn is_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

/// Serves the one VMM that connects to `listener`; returns when it leaves.
fn serve_vhost_user(
    server: Arc<Server>,
    mut listener: Listener,
    path: &Path,
    tag: &str,
    thread_pool_size: Option<usize>,
) -> Result<(), String> {
    let threads = thread_pool_size.unwrap_or_else(vhost_user_9p::virtio::default_thread_pool_size);
    let backend = Arc::new(
        P9Backend::with_thread_pool(server, tag, threads)
            .map_err(|e| format!("cannot start the worker threads: {e}"))?,
    );
    let mut daemon = VhostUserDaemon::new(
        "vhost-user-9p".to_string(),
        backend,
        GuestMemoryAtomic::new(GuestMemoryMmap::new()),
    )
    .map_err(|e| format!("cannot create the vhost-user daemon: {e}"))?;
    info!("vhost-user socket {} (tag {tag:?})", path.display());
    daemon
        .start(&mut listener)
        .map_err(|e| format!("vhost-user connection failed: {e}"))?;
    // One VMM: closing the listener makes a second one fail at once
    // (connection refused) rather than wait in the listen backlog; the
    // file goes when the daemon stops.
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
    let level = match cli.log_level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
        LogLevel::Off => log::LevelFilter::Off,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_target(false)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vhost-user-9p: error: {message}");
            ExitCode::FAILURE
        }
    }
}
