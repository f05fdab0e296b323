//! The command line (`Cli`) and what it asks for once checked
//! (`Settings`): every check of the arguments alone is made here, before
//! the daemon binds a socket, confines itself or serves anything.

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use log::warn;

use vhost_user_9p::gateway::Upstream;
use vhost_user_9p::privileges::Caps;
use vhost_user_9p::sandbox::Sandbox;
use vhost_user_9p::seccomp::Seccomp;
use vhost_user_9p::server::user::UserDb;
use vhost_user_9p::server::{Config, IdMap, IdRange, SecurityModel, DEFAULT_WRITE_BEHIND};
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
/// sockets; without `--socket-path` it runs until stopped.
#[derive(Debug, Parser)]
#[command(version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// vhost-user Unix socket to listen on (a stale socket file is replaced)
    #[arg(long, value_name = "PATH", required_unless_present = "listen")]
    socket_path: Option<PathBuf>,

    /// Also (or instead) serve 9P over a stream socket: unix:PATH, or
    /// tcp:HOST:PORT (tcp:PORT is loopback); repeatable. Each connection is
    /// its own session
    #[arg(long, value_name = "ADDR", value_parser = ListenAddress::parse)]
    listen: Vec<ListenAddress>,

    /// Directory to share
    #[arg(long, value_name = "DIR", required_unless_present = "upstream")]
    shared_dir: Option<PathBuf>,

    /// Instead of a directory, share the file tree of an upstream 9P server
    /// (a gateway): unix:PATH or tcp:HOST:PORT. It must speak 9P2000.L for
    /// now (diod, another vhost-user-9p); guests speak 9P2000.L to it.
    /// With --sandbox namespace (unix: only) the daemon's root is an empty
    /// tmpfs holding only the upstream's socket
    #[arg(long, value_name = "ADDR", value_parser = parse_upstream)]
    upstream: Option<String>,

    /// With --upstream: the aname of its Tattach [default: empty]
    #[arg(long, value_name = "NAME", requires = "upstream")]
    upstream_aname: Option<String>,

    /// With --upstream: the uname of its Tattach [default: the attaching user's name]
    #[arg(long, value_name = "NAME", requires = "upstream")]
    upstream_uname: Option<String>,

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
    pub log_level: LogLevel,
}

fn parse_upstream(s: &str) -> Result<String, String> {
    ListenAddress::parse(s).map(|_| s.to_string())
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
    /// The vhost-user socket (`--socket-path`).
    pub socket_path: Option<PathBuf>,
    /// The mount tag: 1 to MAX_TAG_LEN bytes with `--socket-path`, empty
    /// when not given.
    pub tag: String,
    /// The 9P stream sockets (`--listen`); TCP ones only with `--no-auth`.
    pub listen: Vec<ListenAddress>,
    /// Who may connect to the sockets and as whom.
    pub access: SocketAccess,
    /// `--thread-pool-size` [None: the default for the machine].
    pub thread_pool_size: Option<usize>,
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
        if cli.socket_path.is_some() && (tag.is_empty() || tag.len() > MAX_TAG_LEN) {
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
            socket_path: cli.socket_path,
            tag,
            listen: cli.listen,
            access,
            thread_pool_size: cli.thread_pool_size,
            rlimit_nofile: cli.rlimit_nofile,
            sandbox: cli.sandbox,
            seccomp: cli.seccomp,
            modcaps: cli.modcaps,
        })
    }
}

/// `--upstream`, and the options it cannot go with yet (phase 1 of the
/// gateway: a 9P2000.L upstream, passed through).
fn upstream(cli: &Cli) -> Result<Option<Upstream>, String> {
    let Some(address) = &cli.upstream else {
        return Ok(None);
    };
    let conflicts = [
        (cli.shared_dir.is_some(), "--shared-dir"),
        (cli.ctl, "--ctl"),
        (cli.security_model.is_some(), "--security-model"),
        (!cli.uid_map.is_empty(), "--uid-map"),
        (!cli.gid_map.is_empty(), "--gid-map"),
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
    let tcp = matches!(ListenAddress::parse(address), Ok(ListenAddress::Tcp(_)));
    if cli.sandbox == Sandbox::Namespace && tcp {
        return Err(format!(
            "--upstream {address}: --sandbox namespace has no network to reach a TCP upstream; \
             use a unix: upstream, or --sandbox none"
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
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use vhost_user_9p::server::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FIDS};

    /// A directory that exists: the crate's.
    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vhost-user-9p").chain(args.iter().copied()))
    }

    /// The settings of a command line clap accepts, or the daemon's error.
    fn settings(args: &[&str]) -> Result<Settings, String> {
        Settings::try_from(parse(args).expect("clap accepts it"))
    }

    /// The error of a command line clap accepts and the conversion refuses.
    fn refused(args: &[&str]) -> String {
        settings(args).expect_err("refused")
    }

    /// A vhost-user command line on DIR with `extra` after it.
    fn vhost<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "--socket-path",
            "/tmp/v.sock",
            "--tag",
            "t",
            "--shared-dir",
            DIR,
        ];
        args.extend(extra);
        args
    }

    /// A command line clap refuses: its kind and message.
    fn clap_refuses(args: &[&str]) -> (ErrorKind, String) {
        let e = parse(args).expect_err("clap refuses it");
        (e.kind(), e.to_string())
    }

    #[test]
    fn the_share_and_a_socket_are_required() {
        let (kind, text) = clap_refuses(&["--socket-path", "s", "--tag", "t"]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(text.contains("--shared-dir"), "{text}");
        let (kind, text) = clap_refuses(&["--shared-dir", DIR]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(
            text.contains("--socket-path") && text.contains("--tag"),
            "{text}"
        );
        // --socket-path needs --tag; --listen alone needs neither.
        let (kind, text) = clap_refuses(&["--shared-dir", DIR, "--socket-path", "s"]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(text.contains("--tag"), "{text}");
        assert!(settings(&["--shared-dir", DIR, "--listen", "unix:/tmp/x"]).is_ok());
    }

    #[test]
    fn values_that_do_not_parse_are_refused_by_clap() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--listen", "udp:1"],
                "expected unix:PATH or tcp:HOST:PORT",
            ),
            (&["--listen", "unix:"], "unix: needs a path"),
            (&["--listen", "tcp:host"], "expected tcp:HOST:PORT"),
            (&["--listen", "tcp:host:99999"], "expected tcp:HOST:PORT"),
            (&["--uid-map", ":0:1000:"], "expected :GUEST:HOST:COUNT:"),
            (&["--uid-map", ":0:x:1:"], "host id \"x\" is not a number"),
            (
                &["--gid-map", ":0:1000:0:"],
                "the range is empty or runs past 2^32",
            ),
            (
                &["--gid-map", ":4294967295:0:2:"],
                "the range is empty or runs past 2^32",
            ),
            (
                &["--security-model", "xattr"],
                "expected passthrough, mapped-xattr or none",
            ),
            (&["--max-fids", "0"], "--max-fids"),
            (&["--max-connections", "0"], "--max-connections"),
            (&["--write-behind", "1048577"], "--write-behind"),
            (&["--write-behind", "-1"], "-1"),
            (&["--thread-pool-size", "many"], "--thread-pool-size"),
            (&["--rlimit-nofile", "-5"], "-5"),
            (&["--sandbox", "jail"], "--sandbox"),
            (&["--seccomp", "ignore"], "--seccomp"),
            (&["--log-level", "loud"], "--log-level"),
        ];
        for (extra, wanted) in cases {
            let (kind, text) = clap_refuses(&vhost(extra));
            assert!(
                matches!(
                    kind,
                    ErrorKind::ValueValidation
                        | ErrorKind::InvalidValue
                        | ErrorKind::UnknownArgument
                ),
                "{extra:?}: {kind:?}"
            );
            assert!(text.contains(wanted), "{extra:?}: {text}");
        }
        // The bounds themselves are accepted.
        let s = settings(&vhost(&["--write-behind", "1048576", "--max-fids", "1"])).unwrap();
        assert_eq!(s.config.write_behind, 1 << 40);
        assert_eq!(s.config.max_fids, 1);
    }

    #[test]
    fn the_tag_is_1_to_255_bytes_with_a_vhost_user_socket() {
        let with_tag = |tag: &str| {
            let args = ["--socket-path", "s", "--tag", tag, "--shared-dir", DIR];
            settings(&args)
        };
        assert_eq!(
            with_tag("").unwrap_err(),
            "--tag: must be 1 to 255 bytes long, got 0"
        );
        assert_eq!(
            with_tag(&"t".repeat(256)).unwrap_err(),
            "--tag: must be 1 to 255 bytes long, got 256"
        );
        assert_eq!(with_tag(&"t".repeat(255)).unwrap().tag.len(), 255);
        assert_eq!(with_tag("é").unwrap().tag, "é");
        // Without --socket-path no tag is offered, so none is checked.
        let listen = ["--listen", "unix:/tmp/x", "--shared-dir", DIR, "--tag", ""];
        assert_eq!(settings(&listen).unwrap().tag, "");
    }

    #[test]
    fn overlapping_or_too_many_id_ranges_are_refused() {
        assert_eq!(
            refused(&vhost(&[
                "--uid-map",
                ":0:1000:10:",
                "--uid-map",
                ":5:2000:1:"
            ])),
            "--uid-map: ranges IdRange { guest: 0, host: 1000, count: 10 } and \
             IdRange { guest: 5, host: 2000, count: 1 } overlap"
        );
        let e = refused(&vhost(&[
            "--gid-map",
            ":0:1000:10:",
            "--gid-map",
            ":100:1009:1:",
        ]));
        assert!(
            e.starts_with("--gid-map: ranges ") && e.ends_with(" overlap"),
            "{e}"
        );
        let many: Vec<String> = (0..341).map(|i| format!("--uid-map=:{i}:{i}:1:")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            refused(&vhost(&many)),
            "--uid-map: at most 340 ranges (as in a user namespace's map), got 341"
        );
        assert!(settings(&vhost(&many[..340])).is_ok());
    }

    #[test]
    fn tcp_needs_no_auth() {
        assert_eq!(
            refused(&vhost(&["--listen", "tcp:564"])),
            "--listen tcp:127.0.0.1:564: 9P over TCP has no authentication: anyone who can \
             reach the port (every local user, for loopback) acts as any user they name; add \
             --no-auth to accept that, or use --listen unix:PATH (with --socket-group)"
        );
        // Refused whichever --listen it is, unix ones before it or not.
        let e = refused(&vhost(&[
            "--listen",
            "unix:/tmp/a",
            "--listen",
            "tcp:[::]:564",
        ]));
        assert!(e.starts_with("--listen tcp:[::]:564: 9P over TCP"), "{e}");
        let s = settings(&vhost(&["--listen", "tcp:0.0.0.0:564", "--no-auth"])).unwrap();
        assert_eq!(s.listen, [ListenAddress::Tcp("0.0.0.0:564".into())]);
    }

    #[test]
    fn loopback_addresses() {
        for addr in ["127.0.0.1:1", "127.1.2.3:1", "[::1]:1", "localhost:1"] {
            assert!(is_loopback(addr), "{addr}");
        }
        for addr in ["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.org:1"] {
            assert!(!is_loopback(addr), "{addr}");
        }
    }

    #[test]
    fn the_socket_group_must_exist() {
        assert_eq!(
            refused(&vhost(&["--socket-group", "no-such-group-here"])),
            "--socket-group no-such-group-here: no such group in /etc/group; give a group name \
             or number"
        );
        // A number needs no entry.
        let s = settings(&vhost(&["--socket-group", "4242"])).unwrap();
        assert_eq!(s.access.group, Some(4242));
    }

    #[test]
    fn the_share_must_be_a_directory() {
        let file = format!("{DIR}/Cargo.toml");
        let args = ["--listen", "unix:/tmp/x", "--shared-dir", &file];
        assert_eq!(
            refused(&args),
            format!("--shared-dir {file}: not a directory")
        );
        let missing = "/nonexistent/vhost-user-9p-share";
        let args = ["--listen", "unix:/tmp/x", "--shared-dir", missing];
        let e = refused(&args);
        assert!(
            e.starts_with(&format!("--shared-dir {missing}: No such file")),
            "{e}"
        );
    }

    #[test]
    fn an_upstream_replaces_the_shared_dir() {
        let up = ["--listen", "unix:/tmp/x", "--upstream", "unix:/tmp/up.sock"];
        let s = settings(&[&up[..], &["--sandbox", "none", "--upstream-aname", "/srv"]].concat())
            .unwrap();
        let wanted = Upstream {
            address: "unix:/tmp/up.sock".into(),
            aname: Some("/srv".into()),
            uname: None,
        };
        assert_eq!(s.upstream, Some(wanted));
        assert_eq!(s.shared_dir, Path::new(""));
        // What phase 1 does not do with an upstream.
        for extra in [
            &["--ctl"][..],
            &["--security-model", "none"],
            &["--uid-map", ":0:0:1:"],
            &["--gid-map", ":0:0:1:"],
            &["--shared-dir", DIR],
        ] {
            let e = refused(&[&up[..], &["--sandbox", "none"], extra].concat());
            assert_eq!(
                e,
                format!(
                    "--upstream unix:/tmp/up.sock: {} is not supported with an upstream (the \
                     upstream keeps the files: give it {} instead)",
                    extra[0], extra[0]
                )
            );
        }
        // A relative socket path is made canonical.
        let rel = ["--listen", "unix:/tmp/x", "--upstream", "unix:rel.sock"];
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        let wanted = format!("unix:{}", cwd.join("rel.sock").display());
        assert_eq!(settings(&rel).unwrap().upstream.unwrap().address, wanted);
        // A namespace sandbox with a unix: upstream (its socket alone in
        // an empty root), never with a TCP one; no chroot.
        assert_eq!(settings(&up).unwrap().sandbox, Sandbox::Namespace);
        let e = refused(&["--listen", "unix:/tmp/x", "--upstream", "tcp:564"]);
        assert!(e.contains("--sandbox namespace has no network"), "{e}");
        let e = refused(&[&up[..], &["--sandbox", "chroot"]].concat());
        assert!(e.contains("--sandbox chroot is not supported"), "{e}");
        // Its address is checked by clap, and its names need it.
        let (kind, _) = clap_refuses(&["--listen", "unix:/tmp/x", "--upstream", "udp:1"]);
        assert_eq!(kind, ErrorKind::ValueValidation);
        let (kind, _) = clap_refuses(&vhost(&["--upstream-uname", "u"]));
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn modcaps_syntax_is_checked() {
        assert_eq!(
            refused(&vhost(&["--modcaps", "sys_admin"])),
            "--modcaps: sys_admin: expected +NAME or -NAME"
        );
        assert_eq!(
            refused(&vhost(&["--modcaps", "+chown:-bogus"])),
            "--modcaps: bogus: no such capability"
        );
        let s = settings(&vhost(&["--modcaps", "+CAP_SYS_ADMIN:-mknod:"])).unwrap();
        assert_eq!(s.modcaps.as_deref(), Some("+CAP_SYS_ADMIN:-mknod:"));
    }

    #[test]
    fn defaults() {
        let s = settings(&vhost(&[])).unwrap();
        let c = &s.config;
        assert_eq!(c.shared_dir, Path::new("/"));
        assert!(!c.readonly && !c.ctl && !c.trace);
        assert_eq!(c.security_model, SecurityModel::default_for_process());
        assert_eq!(c.uid_map, IdMap::default());
        assert_eq!(c.gid_map, IdMap::default());
        assert_eq!(c.write_behind, DEFAULT_WRITE_BEHIND);
        assert_eq!(c.fid_descriptors, None);
        assert_eq!(c.max_fids, DEFAULT_MAX_FIDS);
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.shared_dir, Path::new(DIR));
        assert_eq!(s.socket_path.as_deref(), Some(Path::new("/tmp/v.sock")));
        assert_eq!(s.tag, "t");
        assert!(s.listen.is_empty());
        assert_eq!(s.access.group, None);
        assert!(s.access.root_squash);
        assert_eq!(s.thread_pool_size, None);
        assert_eq!(s.rlimit_nofile, None);
        assert_eq!(s.sandbox, Sandbox::Namespace);
        assert_eq!(s.seccomp, Seccomp::Kill);
        assert_eq!(s.modcaps, None);
        assert!(matches!(
            parse(&vhost(&[])).unwrap().log_level,
            LogLevel::Info
        ));
    }

    #[test]
    fn every_option_reaches_its_setting() {
        let s = settings(&[
            "--shared-dir",
            DIR,
            "--listen",
            "unix:/tmp/a.sock",
            "--listen",
            "tcp:5640",
            "--no-auth",
            "--readonly",
            "--security-model",
            "none",
            "--uid-map",
            ":0:1000:1:",
            "--uid-map",
            ":1:2000:10:",
            "--gid-map",
            ":0:100:1:",
            "--thread-pool-size",
            "0",
            "--write-behind",
            "0",
            "--rlimit-nofile",
            "0",
            "--ctl",
            "--trace",
            "--max-fids",
            "10",
            "--max-connections",
            "3",
            "--socket-group",
            "0",
            "--no-root-squash",
            "--sandbox",
            "none",
            "--seccomp",
            "log",
        ])
        .unwrap();
        let c = &s.config;
        // Unconfined, the server opens the share by its host path.
        assert_eq!(c.shared_dir, Path::new(DIR));
        assert!(c.readonly && c.ctl && c.trace);
        assert_eq!(c.security_model, SecurityModel::None);
        let range = |s| IdRange::parse(s).unwrap();
        let uids = vec![range(":0:1000:1:"), range(":1:2000:10:")];
        assert_eq!(c.uid_map, IdMap::new(uids).unwrap());
        assert_eq!(c.gid_map, IdMap::new(vec![range(":0:100:1:")]).unwrap());
        assert_eq!(c.write_behind, 0);
        assert_eq!((c.max_fids, c.max_connections), (10, 3));
        assert_eq!(s.socket_path, None);
        assert_eq!(
            s.listen,
            [
                ListenAddress::Unix("/tmp/a.sock".into()),
                ListenAddress::Tcp("127.0.0.1:5640".into())
            ]
        );
        assert_eq!(s.access.group, Some(0));
        assert!(!s.access.root_squash);
        assert_eq!(s.thread_pool_size, Some(0));
        assert_eq!(s.rlimit_nofile, Some(0));
        assert_eq!((s.sandbox, s.seccomp), (Sandbox::None, Seccomp::Log));
        let s = settings(&vhost(&["--sandbox", "chroot", "--write-behind", "3"])).unwrap();
        assert_eq!(s.config.shared_dir, Path::new("/"));
        assert_eq!(s.config.write_behind, 3 << 20);
    }
}
