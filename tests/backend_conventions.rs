//! QEMU's backend program conventions (docs/interop/vhost-user.rst,
//! "Backend program conventions", and docs/interop/vhost-user.json):
//! `--print-capabilities` and the description file checked against the
//! schema's rules; `--fd`, a listening socket handed to the daemon, served
//! to the test as the VMM and to a Linux guest under QEMU; the descriptors
//! `--fd` refuses, before anything is served.

mod checks;
mod common;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use common::daemon::BIN;
use common::{uid, Client, Daemon, Vmm, VmmOpts, GETATTR_BASIC, O_RDONLY};

/// vhost-user.json's `VHostUserBackendType` (QEMU 4.0; `fs` since 4.2).
const BACKEND_TYPES: &[&str] = &[
    "9p",
    "balloon",
    "block",
    "caif",
    "console",
    "crypto",
    "gpu",
    "input",
    "net",
    "rng",
    "rpmsg",
    "rproc-serial",
    "scsi",
    "vsock",
    "fs",
];

/// The features vhost-user.json defines for a backend type: the union
/// `VHostUserBackendCapabilities` has branches (feature enums) for block,
/// input and gpu only; the other types, 9p among them, have none.
fn schema_features(backend_type: &str) -> &'static [&'static str] {
    match backend_type {
        "block" => &["read-only", "blk-file"],
        "input" => &["evdev-path", "no-grab"],
        "gpu" => &["render-node", "virgl"],
        _ => &[],
    }
}

/// The JSON object `what` is, with a `type` among the schema's backend
/// types and equal to "9p".
fn backend_object<'a>(what: &str, value: &'a Value) -> &'a serde_json::Map<String, Value> {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not a JSON object: {value}"));
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: no string \"type\": {value}"));
    assert!(
        BACKEND_TYPES.contains(&kind),
        "{what}: type {kind:?} is not a VHostUserBackendType"
    );
    assert_eq!(kind, "9p", "{what}: type");
    object
}

/// Checks `--print-capabilities` output against
/// `VHostUserBackendCapabilities`: `type`, and `features` (the rst's
/// convention) an array of strings each a feature the schema defines for
/// the type; nothing else.
fn check_capabilities(value: &Value) {
    let object = backend_object("capabilities", value);
    for key in object.keys() {
        assert!(
            ["type", "features"].contains(&key.as_str()),
            "capabilities: key {key:?} is not in the schema: {value}"
        );
    }
    let features = object
        .get("features")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("capabilities: no \"features\" array: {value}"));
    let defined = schema_features("9p");
    for feature in features {
        let feature = feature
            .as_str()
            .unwrap_or_else(|| panic!("capabilities: feature {feature} is not a string"));
        assert!(
            defined.contains(&feature),
            "capabilities: feature {feature:?} is not defined for 9p"
        );
    }
}

/// Runs the daemon to its end; its status and output.
fn run(args: &[&str]) -> Output {
    Daemon::bare().args(args).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn print_capabilities_prints_the_schema_object_and_exits_0() {
    let out = run(&["--print-capabilities"]);
    assert!(out.status.success(), "{:?}", out);
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let value: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    check_capabilities(&value);
    assert_eq!(value, serde_json::json!({"type": "9p", "features": []}));

    // Other options are ignored, and nothing is done: no socket is bound,
    // the share is not looked at.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("v.sock");
    let socket = socket.to_str().unwrap();
    let out = run(&[
        "--socket-path",
        socket,
        "--shared-dir",
        "/nonexistent/share",
        "--print-capabilities",
        "--readonly",
    ]);
    assert!(out.status.success(), "{:?}", out);
    assert_eq!(text(&out.stdout), stdout);
    assert!(!Path::new(socket).exists(), "it bound its socket");
}

#[test]
fn the_description_file_follows_vhost_user_json() {
    let path = checks::repo().join("contrib/50-vhost-user-9p.json");
    let raw = fs::read_to_string(&path).expect("contrib/50-vhost-user-9p.json");
    let value: Value = serde_json::from_str(&raw).expect("the description file is JSON");
    // `VhostUserBackend`: description, type, binary (strings), optional
    // tags (strings); nothing else.
    let object = backend_object("50-vhost-user-9p.json", &value);
    for key in object.keys() {
        assert!(
            ["description", "type", "binary", "tags"].contains(&key.as_str()),
            "key {key:?} is not a VhostUserBackend member"
        );
    }
    let description = object["description"].as_str().expect("a description");
    assert!(!description.is_empty());
    let binary = object["binary"].as_str().expect("a binary path");
    assert!(Path::new(binary).is_absolute(), "binary {binary:?}");
    assert_eq!(
        Path::new(binary).file_name(),
        Path::new(BIN).file_name(),
        "binary {binary:?}"
    );
    if let Some(tags) = object.get("tags") {
        let tags = tags.as_array().expect("tags: an array");
        assert!(tags.iter().all(Value::is_string), "tags: strings");
    }
    // The README says where it goes and where the binary is to be.
    let readme = fs::read_to_string(checks::repo().join("README.md")).unwrap();
    assert!(readme.contains("contrib/50-vhost-user-9p.json"));
    assert!(readme.contains(binary), "README names {binary}");
}

/// A share holding `f`, and a listening Unix socket in a directory of its
/// own, made by the test (the daemon's maker).
fn share_and_listener() -> (tempfile::TempDir, UnixListener, std::path::PathBuf) {
    let top = tempfile::tempdir().unwrap();
    fs::create_dir(top.path().join("share")).unwrap();
    fs::write(top.path().join("share/f"), b"served through --fd\n").unwrap();
    let socket = top.path().join("vhost.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    (top, listener, socket)
}

#[test]
fn serves_vhost_user_on_an_inherited_socket() {
    for sandbox in ["namespace", "chroot", "none"] {
        let (top, listener, socket) = share_and_listener();
        let fd = listener.as_raw_fd();
        let mut daemon = Daemon::builder(&top.path().join("share"))
            .inherit_fd(listener, Some(&socket))
            .tag("fdshare")
            .args(["--sandbox", sandbox])
            .log_level("info")
            .stderr_to_file()
            .start();
        {
            let mut c = Client::chains(Vmm::connect_with(&daemon.socket, VmmOpts::two_regions()));
            // The tag given with --fd is the device's.
            assert_eq!(c.vmm.get_config(0, 9), b"\x07\x00fdshare");
            let (_, version) = c.version(65536, "9P2000.L");
            assert_eq!(version, "9P2000.L");
            c.attach(1, "root", "", Some(uid()));
            c.walk(1, 2, &["f"]);
            let attr = c.try_getattr(2, GETATTR_BASIC).expect("Tgetattr");
            assert_eq!(attr.size, 20);
            c.lopen(2, O_RDONLY);
            assert_eq!(c.read(2, 0, 4096), b"served through --fd\n");
            c.clunk(2);
        }
        // The VMM gone, the daemon exits 0; the socket file is its maker's:
        // left where it is.
        let status = daemon.wait();
        let log = daemon.log_text();
        assert!(status.success(), "--sandbox {sandbox}: {status}\n{log}");
        assert!(
            log.contains(&format!(
                "vhost-user socket {} (--fd {fd}) (tag \"fdshare\")",
                socket.display()
            )),
            "--sandbox {sandbox}: {log}"
        );
        assert!(socket.exists(), "--sandbox {sandbox}: the socket file went");
    }
}

/// The line the daemon logs at start with the QEMU arguments for its
/// socket and tag, once it has logged it.
fn logged_qemu_line(daemon: &Daemon) -> String {
    common::proc::wait_for("the daemon's QEMU line", || {
        let log = daemon.log_text();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("QEMU: ")).collect();
        match lines[..] {
            [] => None,
            [line] => Some(line.split_once("QEMU: ").unwrap().1.to_string()),
            _ => panic!("more than one QEMU line: {log}"),
        }
    })
}

/// The arguments README's QEMU command line and runvm.py pass for a
/// socket and a tag of `tag_len` bytes.
fn qemu_line(path: &str, tag_len: usize) -> String {
    format!(
        "-chardev socket,id=vu9p,path={path} -device vhost-user-test-device-pci,chardev=vu9p,\
         virtio-id=9,num_vqs=1,vq_size=1024,config_size={}",
        2 + tag_len
    )
}

#[test]
fn logs_the_qemu_arguments_for_its_socket_and_tag() {
    let share = tempfile::tempdir().unwrap();
    // --socket-path: the socket's absolute path; config_size from the tag.
    let tag = "t".repeat(37);
    let mut daemon = Daemon::builder(share.path())
        .vhost_user()
        .tag(&tag)
        .log_level("info")
        .stderr_to_file()
        .start();
    let socket = daemon.socket.canonicalize().unwrap();
    assert_eq!(
        logged_qemu_line(&daemon),
        qemu_line(socket.to_str().unwrap(), 37)
    );
    assert!(daemon.stop().success());

    // --fd: the inherited socket's path.
    let (top, listener, socket) = share_and_listener();
    let mut daemon = Daemon::builder(&top.path().join("share"))
        .inherit_fd(listener, Some(&socket))
        .tag("x")
        .log_level("info")
        .stderr_to_file()
        .start();
    assert_eq!(
        logged_qemu_line(&daemon),
        qemu_line(socket.to_str().unwrap(), 1)
    );
    assert!(daemon.stop().success());

    // --fd, a socket with no path (an abstract address): a placeholder.
    use std::os::linux::net::SocketAddrExt;
    let name = format!("vhost-user-9p-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let mut daemon = Daemon::builder(share.path())
        .inherit_fd(listener, None)
        .tag("abc")
        .log_level("info")
        .stderr_to_file()
        .start();
    assert_eq!(
        logged_qemu_line(&daemon),
        qemu_line("<the socket's path>", 3)
    );
    assert!(daemon.stop().success());
}

#[test]
fn the_readme_shows_the_arguments_the_daemon_logs() {
    let readme = fs::read_to_string(checks::repo().join("README.md")).unwrap();
    // Continuation lines joined.
    let readme = readme.replace(" \\\n  ", " ");
    // The logged example and the QEMU command line: /tmp/vu9p.sock, "share".
    let line = qemu_line("/tmp/vu9p.sock", "share".len());
    assert!(
        readme.contains(&format!("QEMU: {line}\n")),
        "the logged line"
    );
    assert!(
        readme.contains(&format!(" {line} ")),
        "the QEMU command line"
    );
    // NixOS: one QEMU option a string, the socket systemd listens on, the
    // tag "nix-store".
    let line = qemu_line("/run/vhost-user-9p/nix-store.sock", "nix-store".len());
    let (chardev, device) = line.split_once(" -device ").unwrap();
    assert!(
        readme.contains(&format!("\"{chardev}\"")),
        "NixOS: {chardev}"
    );
    assert!(
        readme.contains(&format!("\"-device {device}\"")),
        "NixOS: {device}"
    );
}

/// The daemon's status and stderr when handed `fd` as `--fd` (with the
/// share and a tag, and `extra`): it must refuse with one line.
fn refused_fd(fd: impl Into<OwnedFd>, extra: &[&str]) -> String {
    let share = tempfile::tempdir().unwrap();
    let out = Daemon::builder(share.path())
        .inherit_fd(fd, None)
        .log_level("info")
        .args(extra)
        .output();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn refuses_fd_with_socket_path() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("a.sock")).unwrap();
    let path = dir.path().join("b.sock");
    let share = tempfile::tempdir().unwrap();
    let out = Daemon::builder(share.path())
        .inherit_fd(listener, None)
        .arg("--socket-path")
        .arg(&path)
        .output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: the argument '--fd <FDNUM>' cannot be used with '--socket-path <PATH>'"
        ),
        "{stderr}"
    );
    assert!(!path.exists(), "it bound --socket-path");
}

#[test]
fn refuses_descriptors_that_are_not_listening_unix_stream_sockets() {
    const GIVE: &str = "; hand the daemon a bound, listening Unix stream socket as that \
                        descriptor, or use --socket-path\n";
    let dir = tempfile::tempdir().unwrap();

    let file = fs::File::open(BIN).unwrap();
    let fd = file.as_raw_fd();
    assert_eq!(
        refused_fd(file, &[]),
        format!("vhost-user-9p: error: --fd {fd}: a regular file, not a socket{GIVE}")
    );

    // Connected, never listening.
    let (stream, peer) = UnixStream::pair().unwrap();
    let fd = stream.as_raw_fd();
    assert_eq!(
        refused_fd(stream, &[]),
        format!(
            "vhost-user-9p: error: --fd {fd}: a Unix stream socket that is not listening (a \
             connection, or not yet listen(2)ed){GIVE}"
        )
    );
    drop(peer);

    // Bound, not listening: a client finds nobody there.
    let path = dir.path().join("bound.sock");
    let bound = bound_unix_stream(&path);
    let fd = bound.as_raw_fd();
    assert_eq!(
        refused_fd(bound, &[]),
        format!(
            "vhost-user-9p: error: --fd {fd}: a Unix stream socket that is not listening (a \
             connection, or not yet listen(2)ed){GIVE}"
        )
    );

    let datagram = UnixDatagram::bind(dir.path().join("dgram.sock")).unwrap();
    let fd = datagram.as_raw_fd();
    assert_eq!(
        refused_fd(datagram, &[]),
        format!(
            "vhost-user-9p: error: --fd {fd}: a datagram (SOCK_DGRAM) Unix socket, not a stream \
             one{GIVE}"
        )
    );

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = tcp.as_raw_fd();
    assert_eq!(
        refused_fd(tcp, &[]),
        format!("vhost-user-9p: error: --fd {fd}: an IPv4 socket, not a Unix socket{GIVE}")
    );

    // A number the daemon has not inherited.
    let out = Daemon::bare()
        .args(["--shared-dir", "/", "--tag", "t", "--fd", "1000"])
        .output();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        format!(
            "vhost-user-9p: error: --fd 1000: not an open descriptor (Bad file descriptor (os \
             error 9)){GIVE}"
        )
    );
}

/// A Unix stream socket bound at `path` and not listening.
fn bound_unix_stream(path: &Path) -> OwnedFd {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    fd
}

/// What the guest does with the share: reads, writes, lists.
const GUEST_SCRIPT: &str = r#"
expect read-host-file "hello through --fd" "$(cat $M/readme.txt)"
echo "from the guest" >$M/w.txt
expect write "from the guest" "$(cat $M/w.txt)"
sync
expect listing "readme.txt w.txt" "$(ls $M | tr '\n' ' ' | sed 's/ $//')"
[ $fails -eq 0 ]
"#;

/// vm-images/runvm.py starts the daemon with `--socket-path`: this wrapper
/// binds and listens on that path itself, then starts the daemon with the
/// socket as `--fd` (as a management layer or systemd would).
const FD_WRAPPER: &str = r#"#!/usr/bin/env python3
import os, socket, sys
args = sys.argv[1:]
i = args.index("--socket-path")
path = args[i + 1]
del args[i:i + 2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen()
os.set_inheritable(s.fileno(), True)
daemon = {daemon}
os.execv(daemon, [daemon, "--fd", str(s.fileno())] + args)
"#;

#[test]
fn a_linux_guest_mounts_the_share_through_an_inherited_socket() {
    checks::build_rig(&[]);
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    fs::create_dir(&share).unwrap();
    fs::write(share.join("readme.txt"), "hello through --fd\n").unwrap();
    let wrapper = top.path().join("fd-wrapper.py");
    checks::write_executable(
        &wrapper,
        &FD_WRAPPER.replace("{daemon}", &format!("{BIN:?}")),
    );
    let log = checks::guest_checks_pass(
        top.path(),
        &share,
        &wrapper,
        GUEST_SCRIPT,
        &[],
        "guest checks through --fd",
    );
    assert_eq!(
        fs::read_to_string(share.join("w.txt")).unwrap(),
        "from the guest\n"
    );
    // It was the inherited socket that served.
    assert!(log.contains(" (--fd "), "{log}");
}
