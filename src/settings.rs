//! The command line (`Cli`) and what it asks for once checked
//! (`Settings`): every check of the arguments alone is made here, before
//! the daemon binds a socket, confines itself or serves anything.

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use log::warn;

use vhost_user_9p::gateway::Upstream;
use vhost_user_9p::privileges::Caps;
use vhost_user_9p::sandbox::Sandbox;
use vhost_user_9p::seccomp::Seccomp;
use vhost_user_9p::server::user::UserDb;
use vhost_user_9p::server::{Config, Dialect, IdMap, IdRange, SecurityModel, DEFAULT_WRITE_BEHIND};
use vhost_user_9p::socket::{ListenAddress, SocketAccess};
use vhost_user_9p::virtio::MAX_TAG_LEN;

/// `--log-level`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
    Off,
}

impl LogLevel {
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Off => log::LevelFilter::Off,
        }
    }
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
/// sockets; without a vhost-user socket (`--socket-path` or `--fd`) it
/// runs until stopped.
#[derive(Debug, Parser)]
#[command(version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// vhost-user Unix socket to listen on (a stale socket file is replaced)
    #[arg(long, value_name = "PATH",
          required_unless_present_any = ["listen", "fd", "print_capabilities"])]
    socket_path: Option<PathBuf>,

    /// Instead of --socket-path: serve vhost-user on the Unix stream socket
    /// inherited as file descriptor FDNUM, already listening (QEMU's
    /// backend program conventions; systemd socket activation gives 3)
    #[arg(long, value_name = "FDNUM", conflicts_with = "socket_path",
          value_parser = clap::value_parser!(RawFd).range(0..))]
    pub fd: Option<RawFd>,

    /// Print the backend's capabilities as JSON (QEMU's vhost-user.json:
    /// `{"type": "9p", "features": []}`) and exit; needs no other option
    #[arg(long)]
    pub print_capabilities: bool,

    /// Also (or instead) serve 9P over a stream socket: unix:PATH, or
    /// tcp:HOST:PORT (tcp:PORT is loopback); repeatable. Each connection is
    /// its own session
    #[arg(long, value_name = "ADDR", value_parser = ListenAddress::parse)]
    listen: Vec<ListenAddress>,

    /// Directory to share
    #[arg(long, value_name = "DIR", required_unless_present_any = ["upstream", "print_capabilities"])]
    shared_dir: Option<PathBuf>,

    /// Instead of a directory, share the file tree of an upstream 9P server
    /// (a gateway): unix:PATH or tcp:HOST:PORT, speaking 9P2000.L (diod,
    /// another vhost-user-9p), 9P2000.u or 9P2000 (its ,ctl conventions
    /// used where it has them). 9P2000.L clients' requests are translated
    /// where it speaks less; 9P2000 and 9P2000.u clients get a connection
    /// in their own dialect. With --sandbox namespace the daemon's root is
    /// an empty tmpfs (holding only a unix: upstream's socket), and a tcp:
    /// upstream is connected before the network is gone
    #[arg(long, value_name = "ADDR", value_parser = parse_upstream)]
    upstream: Option<String>,

    /// With --upstream: the aname of its Tattach [default: empty]
    #[arg(long, value_name = "NAME", requires = "upstream")]
    upstream_aname: Option<String>,

    /// With --upstream: the uname of its Tattach [default: the attaching user's name]
    #[arg(long, value_name = "NAME", requires = "upstream")]
    upstream_uname: Option<String>,

    /// With --upstream: the protocol asked of it for 9P2000.L clients,
    /// 9p2000.L (it may answer 9p2000.u or 9p2000), 9p2000.u or 9p2000;
    /// the clients speak 9P2000.L all the same
    #[arg(long, value_name = "VERSION", requires = "upstream", value_parser = parse_upstream_version)]
    upstream_version: Option<Dialect>,

    /// Mount tag the guest uses to find the share (1 to 255 bytes)
    #[arg(long, value_name = "TAG", required_unless_present_any = ["listen", "print_capabilities"])]
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

    /// Once the virtqueue runs dry, watch it for up to this many
    /// microseconds before sleeping on the guest's kick, so a request that
    /// comes meanwhile skips the wake-up; the window grows when kicks come
    /// within N µs of its end and shrinks when they come later, so an idle
    /// guest costs nothing. 0: never watch (for hosts with no core to spare)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_POLL_US,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    poll_us: u64,

    /// Write-behind window, MiB: while a guest writes a file back to back,
    /// each stretch of this size is handed to the disk (sync_file_range)
    /// once the writer is a further stretch past it, so a closing fsync has
    /// less left to wait for, at a cost in the daemon's CPU; a file written
    /// in less than two stretches is left alone. 0: leave all write-back to
    /// the host kernel (8 is a good window)
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
    /// Unix sockets the daemon binds (--socket-path, --listen unix:): mode
    /// 0660 instead of 0600 (the owner is the daemon's user). Not an --fd
    /// socket: whoever made it set its file's owner and mode
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
    pub log_level: LogLevel,
}

fn parse_upstream(s: &str) -> Result<String, String> {
    ListenAddress::parse(s).map(|_| s.to_string())
}

fn parse_upstream_version(s: &str) -> Result<Dialect, String> {
    match s.to_ascii_lowercase().as_str() {
        "9p2000.l" => Ok(Dialect::Linux),
        "9p2000.u" => Ok(Dialect::Unix),
        "9p2000" => Ok(Dialect::Plan9),
        _ => Err("expected 9p2000.L, 9p2000.u or 9p2000".to_string()),
    }
}

fn parse_security_model(s: &str) -> Result<SecurityModel, String> {
    SecurityModel::parse(s).ok_or_else(|| "expected passthrough, mapped-xattr or none".to_string())
}

/// What the command line asks for, checked: the server's configuration and
/// what only the daemon uses (its sockets, limits and confinement).
#[derive(Debug)]
pub struct Settings {
    /// The server's configuration; its `shared_dir` is the share as the
    /// confined daemon sees it (`/` in a namespace or chroot).
    pub config: Config,
    /// The share on the host, as given (`--shared-dir`): a directory
    /// (empty with `--upstream`).
    pub shared_dir: PathBuf,
    /// `--upstream` and its Tattach names: the gateway, connected at start.
    pub upstream: Option<Upstream>,
    /// The vhost-user socket (`--socket-path` or `--fd`).
    pub vhost: Option<VhostSocket>,
    /// The mount tag: 1 to MAX_TAG_LEN bytes with a vhost-user socket,
    /// empty when not given.
    pub tag: String,
    /// The 9P stream sockets (`--listen`); TCP ones only with `--no-auth`.
    pub listen: Vec<ListenAddress>,
    /// Who may connect to the sockets and as whom.
    pub access: SocketAccess,
    /// `--thread-pool-size` [None: the default for the machine].
    pub thread_pool_size: Option<usize>,
    /// `--poll-us`: how long the queue thread watches a dry queue.
    pub poll: std::time::Duration,
    /// `--rlimit-nofile` [None: the default raise].
    pub rlimit_nofile: Option<u64>,
    pub sandbox: Sandbox,
    pub seccomp: Seccomp,
    /// `--modcaps`, of valid syntax: applied to the capabilities the
    /// confined daemon would keep, known once it is.
    pub modcaps: Option<String>,
}

impl TryFrom<Cli> for Settings {
    /// The line the daemon prints (after `vhost-user-9p: error: `).
    type Error = String;

    fn try_from(cli: Cli) -> Result<Settings, String> {
        let access = socket_access(&cli)?;
        let upstream = upstream(&cli)?;
        let tag = cli.tag.unwrap_or_default();
        let vhost_user = cli.socket_path.is_some() || cli.fd.is_some();
        if vhost_user && (tag.is_empty() || tag.len() > MAX_TAG_LEN) {
            return Err(format!(
                "--tag: must be 1 to {MAX_TAG_LEN} bytes long, got {}",
                tag.len()
            ));
        }
        let uid_map = IdMap::new(cli.uid_map).map_err(|e| format!("--uid-map: {e}"))?;
        let gid_map = IdMap::new(cli.gid_map).map_err(|e| format!("--gid-map: {e}"))?;
        let shared_dir = cli.shared_dir.clone().unwrap_or_default();
        if upstream.is_none() {
            check_shared_dir(&shared_dir)?;
        }
        if let Some(spec) = &cli.modcaps {
            // The syntax only: the set it changes is known once confined.
            Caps::default()
                .modify(spec)
                .map_err(|e| format!("--modcaps: {e}"))?;
        }
        // Last of the checks: once accepted, the descriptor is the
        // listener's, closed with it.
        let vhost = match (cli.socket_path, cli.fd) {
            (Some(path), _) => Some(VhostSocket::Path(path)),
            (None, Some(fd)) => Some(VhostSocket::Inherited(inherited_listener(fd)?)),
            (None, None) => None,
        };
        let root = match cli.sandbox {
            Sandbox::None => shared_dir.clone(),
            Sandbox::Namespace | Sandbox::Chroot => PathBuf::from("/"),
        };
        let config = Config {
            readonly: cli.readonly,
            security_model: cli
                .security_model
                .unwrap_or_else(SecurityModel::default_for_process),
            uid_map,
            gid_map,
            ctl: cli.ctl,
            trace: cli.trace,
            write_behind: cli.write_behind << 20,
            fid_descriptors: None,
            max_fids: cli.max_fids,
            max_connections: cli.max_connections,
            ..Config::new(root)
        };
        Ok(Settings {
            config,
            shared_dir,
            upstream,
            vhost,
            tag,
            listen: cli.listen,
            access,
            thread_pool_size: cli.thread_pool_size,
            poll: std::time::Duration::from_micros(cli.poll_us),
            rlimit_nofile: cli.rlimit_nofile,
            sandbox: cli.sandbox,
            seccomp: cli.seccomp,
            modcaps: cli.modcaps,
        })
    }
}

/// `--poll-us`'s default (BENCHMARKS.md, "Polling").
const DEFAULT_POLL_US: u64 = 50;

/// Where the vhost-user socket comes from.
#[derive(Debug)]
pub enum VhostSocket {
    /// `--socket-path`: bound at start.
    Path(PathBuf),
    /// `--fd`: inherited, checked to be a listening Unix stream socket.
    Inherited(UnixListener),
}

/// The listening Unix stream socket inherited as `fd` (`--fd`), made
/// close-on-exec and blocking; refused, left as it is, if `fd` is anything
/// else.
fn inherited_listener(fd: RawFd) -> Result<UnixListener, String> {
    const GIVE: &str = "hand the daemon a bound, listening Unix stream socket as that \
                        descriptor, or use --socket-path";
    // SAFETY: F_GETFD reads the descriptor's flags; any number may be asked.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("--fd {fd}: not an open descriptor ({e}); {GIVE}"));
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fd is open; st is writable for a stat.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("--fd {fd}: cannot stat it ({e}); {GIVE}"));
    }
    // SAFETY: fstat succeeded and filled it.
    let kind = match unsafe { st.assume_init() }.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => None,
        libc::S_IFREG => Some("a regular file"),
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFIFO => Some("a pipe"),
        libc::S_IFCHR => Some("a character device"),
        libc::S_IFBLK => Some("a block device"),
        libc::S_IFLNK => Some("a symbolic link"),
        _ => Some("not a socket"),
    };
    if let Some(kind) = kind {
        return Err(format!("--fd {fd}: {kind}, not a socket; {GIVE}"));
    }
    let option = |name| {
        socket_option(fd, name)
            .map_err(|e| format!("--fd {fd}: cannot read its socket options ({e}); {GIVE}"))
    };
    let domain = option(libc::SO_DOMAIN)?;
    if domain != libc::AF_UNIX {
        let family = match domain {
            libc::AF_INET => "an IPv4 socket".to_string(),
            libc::AF_INET6 => "an IPv6 socket".to_string(),
            libc::AF_NETLINK => "a netlink socket".to_string(),
            other => format!("a socket of address family {other}"),
        };
        return Err(format!("--fd {fd}: {family}, not a Unix socket; {GIVE}"));
    }
    let kind = option(libc::SO_TYPE)?;
    if kind != libc::SOCK_STREAM {
        let kind = match kind {
            libc::SOCK_DGRAM => "a datagram (SOCK_DGRAM)".to_string(),
            libc::SOCK_SEQPACKET => "a SOCK_SEQPACKET".to_string(),
            other => format!("a type {other}"),
        };
        return Err(format!(
            "--fd {fd}: {kind} Unix socket, not a stream one; {GIVE}"
        ));
    }
    if option(libc::SO_ACCEPTCONN)? == 0 {
        return Err(format!(
            "--fd {fd}: a Unix stream socket that is not listening (a connection, or not yet \
             listen(2)ed); {GIVE}"
        ));
    }
    // SAFETY: F_SETFD sets the flags of a descriptor that is open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("--fd {fd}: cannot make it close-on-exec ({e})"));
    }
    // SAFETY: fd is an open, listening Unix stream socket, given to the
    // daemon to serve on; nothing else in the process uses it (Settings
    // are made once), so the listener may own and close it.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    // The daemon's accept loop waits in accept(2): a non-blocking socket
    // would make it spin. (The flag is the open file's: the socket's
    // maker sees the change; accepted connections never inherit it.)
    listener
        .set_nonblocking(false)
        .map_err(|e| format!("--fd {fd}: cannot make it blocking ({e})"))?;
    Ok(listener)
}

/// An int-valued SOL_SOCKET option of the socket `fd`.
fn socket_option(fd: RawFd, name: libc::c_int) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value is writable for len bytes, the size of a c_int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `--upstream`, and the options it cannot go with: those of a directory,
/// which the upstream gives instead, and a chroot.
fn upstream(cli: &Cli) -> Result<Option<Upstream>, String> {
    let Some(address) = &cli.upstream else {
        return Ok(None);
    };
    let conflicts = [
        (cli.shared_dir.is_some(), "--shared-dir"),
        (cli.ctl, "--ctl"),
        (cli.security_model.is_some(), "--security-model"),
    ];
    if let Some((_, option)) = conflicts.iter().find(|(given, _)| *given) {
        return Err(format!(
            "--upstream {address}: {option} is not supported with an upstream (the upstream \
             keeps the files: give it {option} instead)"
        ));
    }
    if cli.sandbox == Sandbox::Chroot {
        return Err(format!(
            "--upstream {address}: --sandbox chroot is not supported with an upstream (there \
             is no shared directory to chroot into); use --sandbox namespace or none"
        ));
    }
    // A socket by its canonical path: the one a namespace sandbox gives
    // it in its empty root (sandbox.rs), whatever the daemon's directory.
    let address = match ListenAddress::parse(address) {
        Ok(ListenAddress::Unix(path)) => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.unwrap_or(Path::new(".")).canonicalize();
            match (dir, path.file_name()) {
                (Ok(dir), Some(name)) => format!("unix:{}", dir.join(name).display()),
                _ => address.clone(),
            }
        }
        _ => address.clone(),
    };
    Ok(Some(Upstream {
        address,
        aname: cli.upstream_aname.clone(),
        uname: cli.upstream_uname.clone(),
        version: cli.upstream_version.unwrap_or(Dialect::Linux),
    }))
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

/// Whether a `HOST:PORT` listens on loopback only.
fn is_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
