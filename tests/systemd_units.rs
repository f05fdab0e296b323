//! systemd: `contrib/systemd/vhost-user-9p@.service` and `.socket` pass
//! `systemd-analyze verify` as written (in a root holding this build of
//! the daemon where ExecStart= says); the service's own command line,
//! started by `systemd-socket-activate` on the first connection to a
//! socket that existed before it, serves the test as the VMM and a Linux
//! guest under QEMU; LISTEN_PID/LISTEN_FDS that do not match `--fd` are
//! refused; log lines lose their timestamp when stderr is the journal
//! (JOURNAL_STREAM). systemd itself (PID 1) cannot run the units here, so
//! the hardening directives are not exercised by these tests.

mod checks;
mod common;

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::daemon::{Killed, BIN};
use common::proc::{wait_for, wait_until};
use common::{uid, Client, Daemon, Vmm, VmmOpts, GETATTR_BASIC, O_RDONLY};

/// Where ExecStart= and contrib/50-vhost-user-9p.json put the binary.
const INSTALLED: &str = "/usr/libexec/vhost-user-9p";
const SERVICE: &str = "vhost-user-9p@.service";
const SOCKET: &str = "vhost-user-9p@.socket";
const ANALYZE: &str = "/usr/bin/systemd-analyze";
const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

fn unit(name: &str) -> String {
    fs::read_to_string(checks::repo().join("contrib/systemd").join(name))
        .unwrap_or_else(|e| panic!("contrib/systemd/{name}: {e}"))
}

/// The values of `key=` lines in `text` (a unit file).
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// The one `key=` line of `text`.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    match values(text, key)[..] {
        [v] => v,
        ref other => panic!("{key}=: expected one line, got {other:?}"),
    }
}

fn need(tool: &str) {
    assert!(
        Path::new(tool).exists(),
        "{tool} is missing: apt-get install systemd (ci/test.sh does)"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The service's ExecStart= as systemd would run it for a share: the
/// binary this build's, `${VAR}` one word, `$EXTRA_ARGS` split at blanks.
fn exec_start(share: &Path, tag: &str, extra: &str) -> Vec<String> {
    let service = unit(SERVICE);
    let line = value(&service, "ExecStart");
    line.split_whitespace()
        .enumerate()
        .flat_map(|(i, word)| match word {
            _ if i == 0 => {
                assert_eq!(word, INSTALLED, "ExecStart= binary");
                vec![BIN.to_string()]
            }
            "${SHARED_DIR}" => vec![share.display().to_string()],
            "${TAG}" => vec![tag.to_string()],
            "$EXTRA_ARGS" => extra.split_whitespace().map(String::from).collect(),
            _ => {
                assert!(
                    !word.contains('$'),
                    "ExecStart=: unknown variable in {word}"
                );
                vec![word.to_string()]
            }
        })
        .collect()
}

/// The socket unit's ListenStream= for `instance`, `%t` being `runtime`.
fn listen_stream(runtime: &Path, instance: &str) -> PathBuf {
    let socket = unit(SOCKET);
    let path = value(&socket, "ListenStream")
        .replace("%t", &runtime.display().to_string())
        .replace("%i", instance);
    PathBuf::from(path)
}

#[test]
fn the_units_follow_the_conventions_the_readme_documents() {
    let service = unit(SERVICE);
    let socket = unit(SOCKET);
    // The socket is the service's descriptor 3, given as --fd 3.
    let start = value(&service, "ExecStart");
    assert!(
        start.starts_with(&format!("{INSTALLED} --fd 3 ")),
        "{start}"
    );
    let json = fs::read_to_string(checks::repo().join("contrib/50-vhost-user-9p.json")).unwrap();
    assert!(
        json.contains(&format!("\"binary\": \"{INSTALLED}\"")),
        "{json}"
    );
    assert_eq!(
        value(&service, "EnvironmentFile"),
        "/etc/vhost-user-9p/%i.conf"
    );
    // One listening socket: the daemon refuses more.
    assert_eq!(
        values(&socket, "ListenStream"),
        ["%t/vhost-user-9p/%i.sock"]
    );
    assert!(values(&socket, "Accept").iter().all(|v| *v == "no"));
    assert_eq!(value(&socket, "SocketMode"), "0600");
    let readme = fs::read_to_string(checks::repo().join("README.md")).unwrap();
    for needle in [
        "contrib/systemd/vhost-user-9p@.service",
        "/etc/vhost-user-9p/",
        "SHARED_DIR=",
        "EXTRA_ARGS=",
        "systemctl enable --now vhost-user-9p@",
        "/run/vhost-user-9p/",
    ] {
        assert!(readme.contains(needle), "README.md names {needle}");
    }
}

/// A root for `systemd-analyze verify --root`: the host's systemd units
/// (sockets.target and the like), the units as written in
/// etc/systemd/system, and this build of the daemon where ExecStart=
/// says (unless `binary` is false).
fn verify_root(service: &str, binary: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&units).unwrap();
    for entry in fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let entry = entry.unwrap();
        let to = units.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), to).unwrap();
        } else if kind.is_file() {
            fs::copy(entry.path(), to).unwrap();
        }
    }
    let etc = root.path().join("etc/systemd/system");
    fs::create_dir_all(&etc).unwrap();
    fs::write(etc.join(SERVICE), service).unwrap();
    fs::write(etc.join(SOCKET), unit(SOCKET)).unwrap();
    if binary {
        let installed = root.path().join(INSTALLED.trim_start_matches('/'));
        fs::create_dir_all(installed.parent().unwrap()).unwrap();
        fs::copy(BIN, &installed).unwrap();
    }
    root
}

/// `systemd-analyze verify` (no man page lookup: the page is not
/// installed here) of the instance `share` and of the template files.
fn verify(root: &Path) -> Output {
    let etc = root.join("etc/systemd/system");
    Command::new(ANALYZE)
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args(["vhost-user-9p@share.socket", "vhost-user-9p@share.service"])
        .arg(etc.join(SERVICE))
        .arg(etc.join(SOCKET))
        .env("SYSTEMD_LOG_LEVEL", "info")
        .output()
        .expect("run systemd-analyze")
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    need(ANALYZE);
    let service = unit(SERVICE);
    let root = verify_root(&service, true);
    let out = verify(root.path());
    // verify only warns (exit 0) about unknown keys and bad values: any
    // output is a failure.
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );

    // The check has teeth: a misspelt directive and a missing binary are
    // reported.
    let misspelt = service.replace("\nProtectSystem=", "\nProtectSystm=");
    assert_ne!(misspelt, service);
    let out = verify(verify_root(&misspelt, true).path());
    let said = text(&out.stderr);
    assert!(said.contains("Unknown key 'ProtectSystm'"), "{said}");
    let out = verify(verify_root(&service, false).path());
    let said = text(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("Command {INSTALLED} is not executable")),
        "{said}"
    );
}

/// The executable of process `pid`.
fn exe(pid: u32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default()
}

#[test]
fn socket_activation_starts_the_units_command_on_the_first_connection() {
    need(ACTIVATE);
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    fs::create_dir(&share).unwrap();
    fs::write(share.join("f"), b"served by socket activation\n").unwrap();
    let runtime = top.path().join("run");
    let socket = listen_stream(&runtime, "vm1");
    fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let log = top.path().join("daemon.log");
    // The instance name is the tag (the unit's default).
    let command = exec_start(&share, "vm1", "--log-level info");
    let mut activator = Killed(
        Command::new(ACTIVATE)
            .arg("-l")
            .arg(&socket)
            .args(&command)
            .stdin(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("run systemd-socket-activate"),
    );
    let pid = activator.0.id();
    wait_until("systemd-socket-activate's socket", || socket.exists());
    // Listening, and no daemon yet.
    assert_eq!(exe(pid), Path::new(ACTIVATE));
    assert!(!fs::read_to_string(&log)
        .unwrap()
        .contains("vhost-user socket"));
    {
        let vmm = Vmm::connect_with(&socket, VmmOpts::two_regions());
        // systemd-socket-activate execs the daemon in its place.
        assert_eq!(exe(pid), Path::new(BIN));
        let mut c = Client::chains(vmm);
        assert_eq!(c.vmm.get_config(0, 5), b"\x03\x00vm1");
        let (_, version) = c.version(65536, "9P2000.L");
        assert_eq!(version, "9P2000.L");
        c.attach(1, "root", "", Some(uid()));
        c.walk(1, 2, &["f"]);
        let attr = c.try_getattr(2, GETATTR_BASIC).expect("Tgetattr");
        assert_eq!(attr.size, 28);
        c.lopen(2, O_RDONLY);
        assert_eq!(c.read(2, 0, 4096), b"served by socket activation\n");
        c.clunk(2);
    }
    // The VMM gone, the daemon exits 0 (systemd would start it again on
    // the next connection); the socket is systemd's, left alone.
    let status = wait_for("the daemon to exit", || activator.0.try_wait().unwrap());
    let log = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains(&format!(
            "vhost-user socket {} (--fd 3) (tag \"vm1\")",
            socket.display()
        )),
        "{log}"
    );
    assert!(socket.exists());
}

/// The daemon's status and stderr when started with LISTEN_PID naming it
/// and LISTEN_FDS=`fds`, and `args`, as systemd would start it.
fn activated_output(fds: &str, fd: Option<impl Into<OwnedFd>>, args: &[&str]) -> Output {
    let share = tempfile::tempdir().unwrap();
    let script = format!("export LISTEN_PID=$$ LISTEN_FDS={fds}; exec \"$@\"");
    let mut builder = Daemon::builder(share.path())
        .wrapper("sh", ["-c", script.as_str()])
        .args(args);
    if let Some(fd) = fd {
        builder = builder.inherit_fd(fd, None);
    }
    builder.output()
}

fn listener(dir: &Path) -> UnixListener {
    UnixListener::bind(dir.join("v.sock")).unwrap()
}

#[test]
fn listen_fds_that_do_not_match_fd_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |out: Output| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        stderr
    };

    // The socket passed as 3, but another descriptor given (one above 3
    // in any case).
    let l = listener(dir.path());
    // SAFETY: F_DUPFD_CLOEXEC of an open descriptor; the copy is owned here.
    let l = unsafe {
        let fd = libc::fcntl(l.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10);
        assert!(fd >= 10, "dup: {}", std::io::Error::last_os_error());
        OwnedFd::from_raw_fd(fd)
    };
    let fd = l.as_raw_fd();
    assert_eq!(
        refused(activated_output("1", Some(l), &[])),
        format!(
            "vhost-user-9p: error: --fd {fd}: systemd passed its socket as descriptor 3 \
             (LISTEN_FDS=1); give --fd 3\n"
        )
    );
    fs::remove_file(dir.path().join("v.sock")).unwrap();

    // A socket passed, and --socket-path: nothing is bound.
    let path = dir.path().join("other.sock");
    let path_arg = path.display().to_string();
    let stderr = refused(activated_output(
        "1",
        None::<OwnedFd>,
        &["--tag", "t", "--socket-path", &path_arg],
    ));
    assert!(
        stderr.contains("serve it with --fd 3 (not --socket-path)"),
        "{stderr}"
    );
    assert!(!path.exists());

    // Two sockets.
    let l = listener(dir.path());
    let stderr = refused(activated_output("2", Some(l), &[]));
    assert!(
        stderr.starts_with("vhost-user-9p: error: LISTEN_FDS=2: systemd passed 2 sockets"),
        "{stderr}"
    );
    fs::remove_file(dir.path().join("v.sock")).unwrap();

    let stderr = refused(activated_output("x", Some(listener(dir.path())), &[]));
    assert!(stderr.contains("LISTEN_FDS=x: not a number"), "{stderr}");
}

#[test]
fn listen_fds_meant_for_another_process_are_ignored() {
    // Left by a parent (LISTEN_PID is not the daemon): --fd serves.
    let top = tempfile::tempdir().unwrap();
    fs::create_dir(top.path().join("share")).unwrap();
    let socket = top.path().join("v.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut daemon = Daemon::builder(&top.path().join("share"))
        .inherit_fd(listener, Some(&socket))
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "2")
        .stderr_to_file()
        .start();
    {
        let mut c = Client::chains(Vmm::connect_with(&daemon.socket, VmmOpts::two_regions()));
        let (_, version) = c.version(65536, "9P2000.L");
        assert_eq!(version, "9P2000.L");
    }
    let status = daemon.wait();
    assert!(status.success(), "{status}\n{}", daemon.log_text());
}

/// What the daemon logs at info level until stopped, with JOURNAL_STREAM
/// set by `set` (a shell command) just before it starts.
fn log_with_journal_stream(set: &str) -> String {
    let share = tempfile::tempdir().unwrap();
    let script = format!("{set}; exec \"$@\"");
    let mut daemon = Daemon::builder(share.path())
        .vhost_user()
        .wrapper("sh", ["-c", script.as_str()])
        .log_level("info")
        .stderr_to_file()
        .start();
    let status = daemon.stop();
    let log = daemon.log_text();
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains(" open file limit "), "{log}");
    log
}

#[test]
fn log_lines_have_no_timestamp_when_stderr_is_the_journal() {
    // As systemd sets it: the device and inode of stderr (a file here).
    let journal =
        log_with_journal_stream("export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)");
    for line in journal.lines() {
        let first = line.strip_prefix('[').and_then(|l| l.split(' ').next());
        assert!(
            first.is_some_and(|w| ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&w)),
            "{line}\n{journal}"
        );
    }
    // Not set, or naming another file (stderr redirected since): stamped.
    for set in [":", "export JOURNAL_STREAM=1:2"] {
        let log = log_with_journal_stream(set);
        for line in log.lines() {
            let stamp = line.strip_prefix('[').and_then(|l| l.split(' ').next());
            assert!(
                stamp.is_some_and(|s| s.len() >= 20 && s.ends_with('Z')),
                "{set}: {line}\n{log}"
            );
        }
    }
}

/// What the guest does with the share.
const GUEST_SCRIPT: &str = r#"
expect read-host-file "hello through systemd" "$(cat $M/readme.txt)"
echo "from the guest" >$M/w.txt
expect write "from the guest" "$(cat $M/w.txt)"
sync
expect listing "readme.txt w.txt" "$(ls $M | tr '\n' ' ' | sed 's/ $//')"
[ $fails -eq 0 ]
"#;

/// vm-images/runvm.py starts its daemon with `--socket-path PATH`: this
/// wrapper has systemd-socket-activate listen on PATH instead and start
/// the service's command line (COMMAND) on QEMU's connection.
const ACTIVATE_WRAPPER: &str = r#"#!/usr/bin/env python3
import os, sys
args = sys.argv[1:]
path = args[args.index("--socket-path") + 1]
command = COMMAND
os.execv(ACTIVATE, [ACTIVATE, "-l", path] + command)
"#;

#[test]
fn a_linux_guest_mounts_the_share_through_socket_activation() {
    need(ACTIVATE);
    checks::build_rig(&[]);
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    fs::create_dir(&share).unwrap();
    fs::write(share.join("readme.txt"), "hello through systemd\n").unwrap();
    let command = exec_start(&share, "vm1", "--log-level info");
    let wrapper = top.path().join("activate-wrapper.py");
    checks::write_executable(
        &wrapper,
        &ACTIVATE_WRAPPER
            .replace("COMMAND", &format!("{command:?}"))
            .replace("ACTIVATE", &format!("{ACTIVATE:?}")),
    );
    let log = checks::guest_checks_pass(
        top.path(),
        &share,
        &wrapper,
        GUEST_SCRIPT,
        &["--tag", "vm1"],
        "guest checks through socket activation",
    );
    assert_eq!(
        fs::read_to_string(share.join("w.txt")).unwrap(),
        "from the guest\n"
    );
    // systemd-socket-activate started it, on descriptor 3.
    assert!(log.contains("Communication attempt on fd 3."), "{log}");
    assert!(log.contains(" (--fd 3) (tag \"vm1\")"), "{log}");
}
