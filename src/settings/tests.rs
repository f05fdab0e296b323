//! The command line's checks (`Cli` to `Settings`), one refusal and one
//! acceptance at a time.

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
                ErrorKind::ValueValidation | ErrorKind::InvalidValue | ErrorKind::UnknownArgument
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

/// A command line serving vhost-user on `--fd fd`.
fn on_fd(fd: &str) -> Vec<&str> {
    vec!["--fd", fd, "--tag", "t", "--shared-dir", DIR]
}

#[test]
fn fd_excludes_socket_path_and_needs_a_tag() {
    let (kind, text) = clap_refuses(&vhost(&["--fd", "3"]));
    assert_eq!(kind, ErrorKind::ArgumentConflict);
    assert!(
        text.contains("--fd <FDNUM>") && text.contains("--socket-path <PATH>"),
        "{text}"
    );
    let (kind, text) = clap_refuses(&["--fd", "3", "--shared-dir", DIR]);
    assert_eq!(kind, ErrorKind::MissingRequiredArgument);
    assert!(text.contains("--tag"), "{text}");
    let (kind, _) = clap_refuses(&on_fd("-1"));
    assert!(
        matches!(
            kind,
            ErrorKind::ValueValidation | ErrorKind::UnknownArgument
        ),
        "{kind:?}"
    );
    // With --listen clap needs no tag, the vhost-user socket does (and
    // is refused before its descriptor is looked at).
    let args = ["--fd", "2147483647", "--listen", "unix:/tmp/x"];
    assert_eq!(
        refused(&[&args[..], &["--shared-dir", DIR]].concat()),
        "--tag: must be 1 to 255 bytes long, got 0"
    );
}

#[test]
fn fd_must_be_a_listening_unix_stream_socket() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::os::unix::net::{UnixDatagram, UnixStream};
    const GIVE: &str = "; hand the daemon a bound, listening Unix stream socket as that \
                        descriptor, or use --socket-path";
    let refused_fd = |fd: RawFd| refused(&on_fd(&fd.to_string()));
    // A descriptor no process has open (past any open file limit).
    let e = refused_fd(i32::MAX);
    assert!(
        e.starts_with("--fd 2147483647: not an open descriptor (Bad file descriptor")
            && e.ends_with(GIVE),
        "{e}"
    );
    let file = std::fs::File::open(format!("{DIR}/Cargo.toml")).unwrap();
    let fd = file.as_raw_fd();
    assert_eq!(
        refused_fd(fd),
        format!("--fd {fd}: a regular file, not a socket{GIVE}")
    );
    let dir = tempfile::tempdir().unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = tcp.as_raw_fd();
    assert_eq!(
        refused_fd(fd),
        format!("--fd {fd}: an IPv4 socket, not a Unix socket{GIVE}")
    );
    let datagram = UnixDatagram::bind(dir.path().join("d")).unwrap();
    let fd = datagram.as_raw_fd();
    assert_eq!(
        refused_fd(fd),
        format!("--fd {fd}: a datagram (SOCK_DGRAM) Unix socket, not a stream one{GIVE}")
    );
    let (stream, _peer) = UnixStream::pair().unwrap();
    let fd = stream.as_raw_fd();
    assert_eq!(
        refused_fd(fd),
        format!(
            "--fd {fd}: a Unix stream socket that is not listening (a connection, or not \
             yet listen(2)ed){GIVE}"
        )
    );
    // Refused descriptors are left as they were: still open.
    for fd in [file.as_raw_fd(), tcp.as_raw_fd(), stream.as_raw_fd()] {
        // SAFETY: F_GETFD of a descriptor this test holds.
        assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
    }

    // Accepted: a listening one, taken over close-on-exec and blocking.
    let path = dir.path().join("v.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let fd = listener.into_raw_fd();
    // SAFETY: F_SETFD on the descriptor this test just took out.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);
    let s = settings(&on_fd(&fd.to_string())).unwrap();
    let Some(VhostSocket::Inherited(listener)) = &s.vhost else {
        panic!("{:?}", s.vhost);
    };
    assert_eq!(listener.as_raw_fd(), fd);
    assert_eq!(
        listener.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    assert_eq!(s.tag, "t");
    // SAFETY: F_GETFD and F_GETFL of the descriptor the settings hold.
    let (fd_flags, fl_flags) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFD),
            libc::fcntl(fd, libc::F_GETFL),
        )
    };
    assert_eq!(fd_flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    assert_eq!(fl_flags & libc::O_NONBLOCK, 0);
    // It serves: a client connects and is accepted.
    let _client = UnixStream::connect(&path).unwrap();
    listener.accept().unwrap();
}

#[test]
fn print_capabilities_needs_nothing_else() {
    assert!(parse(&["--print-capabilities"]).unwrap().print_capabilities);
    // Other options are ignored (when clap can parse them).
    let cli = parse(&["--print-capabilities", "--socket-path", "s", "--readonly"]).unwrap();
    assert!(cli.print_capabilities);
    assert!(!parse(&vhost(&[])).unwrap().print_capabilities);
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
    let s =
        settings(&[&up[..], &["--sandbox", "none", "--upstream-aname", "/srv"]].concat()).unwrap();
    let wanted = Upstream {
        address: "unix:/tmp/up.sock".into(),
        aname: Some("/srv".into()),
        uname: None,
        version: Dialect::Linux,
    };
    assert_eq!(s.upstream, Some(wanted));
    let plan9 = [
        &up[..],
        &["--sandbox", "none", "--upstream-version", "9P2000"],
    ]
    .concat();
    assert_eq!(
        settings(&plan9).unwrap().upstream.unwrap().version,
        Dialect::Plan9
    );
    let (_, e) = clap_refuses(&[&up[..], &["--upstream-version", "9p2000.x"]].concat());
    assert!(e.contains("expected 9p2000.L, 9p2000.u or 9p2000"), "{e}");
    assert_eq!(s.shared_dir, Path::new(""));
    // The id maps apply to an upstream's files too.
    let mapped = [&up[..], &["--sandbox", "none", "--uid-map", ":0:0:1:"]].concat();
    assert_eq!(settings(&mapped).unwrap().config.uid_map.to_host(1), None);
    // What the upstream does instead.
    for extra in [
        &["--ctl"][..],
        &["--security-model", "none"],
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
    // an empty root) or a TCP one (connected before it); no chroot.
    assert_eq!(settings(&up).unwrap().sandbox, Sandbox::Namespace);
    let tcp = settings(&["--listen", "unix:/tmp/x", "--upstream", "tcp:564"]).unwrap();
    assert_eq!(tcp.sandbox, Sandbox::Namespace);
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
    assert!(
        matches!(&s.vhost, Some(VhostSocket::Path(p)) if p == Path::new("/tmp/v.sock")),
        "{:?}",
        s.vhost
    );
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
        "16",
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
    assert_eq!(c.write_behind, 16 << 20);
    assert_eq!((c.max_fids, c.max_connections), (10, 3));
    assert!(s.vhost.is_none());
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
