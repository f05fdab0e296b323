//! The 9P2000 and 9P2000.u dialects and the `,ctl` control namespace through
//! the real daemon on `--listen unix:PATH`, driven by an independent client:
//! python-9p (`import py9p`, plan9port's 9P2000 codec), which ci/test.sh
//! installs into the rig cache. tests/plan9/py9p_check.py runs the checks
//! (one line each); this side prepares the share, starts the daemon and checks
//! the host directory afterwards. Also `--trace` (lib9p's chatty format).
//! A missing python-9p is a failure, not a skip.

mod checks;
mod common;

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use checks::{planned_checks, repo, CheckerRun};
use common::client::*;
use common::Daemon;

/// Where ci/test.sh installs python-9p: `$CACHE/python-9p`, with the rig's
/// cache directory (vm-images/build.sh's rule).
fn py9p_dir() -> PathBuf {
    let cache = match std::env::var_os("VU9P_CACHE") {
        Some(c) => PathBuf::from(c),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
            })
            .join("vhost-user-9p"),
    };
    let dir = cache.join("python-9p");
    assert!(
        dir.join("py9p/__init__.py").exists(),
        "python-9p is not installed in {} (run ci/test.sh: it installs it there)",
        dir.display()
    );
    dir
}

/// The daemon on `--listen unix:SOCK` (stderr to a file), letting clients
/// attach as root: the checks compare with the host as root sees it.
fn start(share: &Path, sock: &Path, extra: &[&str]) -> Daemon {
    Daemon::builder(share)
        .listen_unix(sock)
        .arg("--no-root-squash")
        .args(extra)
        .stderr_to_file()
        .start()
}

fn write(path: &Path, data: &str, mode: u32) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path) {
    fs::create_dir(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The share the script expects (its FIXTURES list), under `top/share`, and
/// `top/outside/secret.txt` beside it.
fn prepare_share(top: &Path) -> PathBuf {
    let share = top.join("share");
    mkdir(&share);
    mkdir(&top.join("outside"));
    write(&top.join("outside/secret.txt"), "HOST-SECRET\n", 0o644);
    let s = |name: &str| share.join(name);
    write(&s("hello.txt"), "hello from the share\n", 0o644);
    write(&s("stamped.txt"), "stamped\n", 0o644);
    let times = fs::FileTimes::new()
        .set_accessed(UNIX_EPOCH + Duration::new(1_500_000_000, 111_111_111))
        .set_modified(UNIX_EPOCH + Duration::new(1_600_000_000, 222_222_222));
    fs::File::options()
        .write(true)
        .open(s("stamped.txt"))
        .unwrap()
        .set_times(times)
        .unwrap();
    mkdir(&s("sub"));
    write(&s("sub/inner.txt"), "inner\n", 0o644);
    write(&s("sub/mvsub.txt"), "to the top\n", 0o644);
    write(&s("sub/esc.txt"), "clamped\n", 0o644);
    mkdir(&s("sub2"));
    symlink("hello.txt", s("link_to_hello")).unwrap();
    symlink("sub", s("link_to_sub")).unwrap();
    symlink("/hello.txt", s("abs_link")).unwrap();
    symlink("nowhere", s("dangling")).unwrap();
    symlink("../outside/secret.txt", s("escape")).unwrap();
    write(&s("ctlfile.txt"), "0123456789\n", 0o644);
    write(&s("rn_src.txt"), "rename me\n", 0o644);
    for name in [
        "wmode.txt",
        "wmtime.txt",
        "wgid.txt",
        "wuid.txt",
        "remove_me.txt",
    ] {
        write(&s(name), "w\n", 0o644);
    }
    write(&s("trunc.txt"), &"x".repeat(100), 0o644);
    write(&s("mvsrc.txt"), "moving\n", 0o644);
    write(&s("sp ace%.txt"), "odd name\n", 0o644);
    write(&s("caf\u{e9}\n.txt"), "odder name\n", 0o644);
    write(&s("nouser.txt"), "nobody's\n", 0o644);
    std::os::unix::fs::chown(s("nouser.txt"), Some(54321), Some(54321))
        .expect("chown nouser.txt to 54321:54321 (the test runs as root, like ci/test.sh)");
    write(&s(",other"), "comma file\n", 0o644);
    mkdir(&s("realctl"));
    write(&s("realctl/,ctl"), "I am a real file\n", 0o644);
    write(&s("realctl/f.txt"), "f\n", 0o644);
    share
}

#[test]
fn py9p_checks_9p2000_9p2000u_and_ctl() {
    py9p_checks(false);
}

/// The same checks through a gateway (`--upstream`) to the daemon: a
/// 9P2000 and a 9P2000.u client each get a connection upstream in their
/// own dialect, their requests passed as they are.
#[test]
fn py9p_checks_9p2000_9p2000u_and_ctl_through_a_gateway() {
    py9p_checks(true);
}

fn py9p_checks(through_a_gateway: bool) {
    let pythonpath = py9p_dir();
    let top = tempfile::tempdir().unwrap();
    let share = prepare_share(top.path());
    let run = tempfile::tempdir().unwrap();
    let upstream_sock = run.path().join("9p.sock");
    let daemon = start(&share, &upstream_sock, &["--ctl"]);
    let gateway_sock = run.path().join("gateway.sock");
    let gateway = through_a_gateway.then(|| {
        Daemon::bare()
            .listen_unix(&gateway_sock)
            .arg("--upstream")
            .arg(format!("unix:{}", upstream_sock.display()))
            .args(["--no-root-squash", "--sandbox", "none"])
            .stderr_to_file()
            .start()
    });
    let sock = match gateway {
        Some(_) => &gateway_sock,
        None => &upstream_sock,
    };

    let client = CheckerRun::of(
        "tests/plan9/py9p_check.py",
        Command::new("python3")
            .arg(repo().join("tests/plan9/py9p_check.py"))
            .arg("--sock")
            .arg(sock)
            .arg("--share")
            .arg(&share)
            .env("PYTHONPATH", &pythonpath),
    );
    let logs = match &gateway {
        Some(g) => format!("--- gateway stderr:\n{}", g.log_text()),
        None => String::new(),
    };
    client.assert_success(
        "py9p_check.py",
        &format!("--- daemon stderr:\n{}{logs}", daemon.log_text()),
    );
    let script = fs::read_to_string(repo().join("tests/plan9/py9p_check.py")).unwrap();
    assert_eq!(
        client.passed().len(),
        planned_checks(&script, &["@check("]),
        "checks passed (ok lines) vs @check in the script"
    );
    drop(gateway);
    drop(daemon);

    // What the client did is on the host.
    let s = |name: &str| share.join(name);
    let created = fs::read(s("created.txt")).unwrap();
    assert!(
        created.starts_with(b"written via 9P2000\n") && created.ends_with(b"more bytes"),
        "created.txt: expected \"written via 9P2000\\n\" ... \"more bytes\", got {:?}",
        String::from_utf8_lossy(&created)
    );
    assert_eq!(
        fs::read_to_string(s("newdir/inner.txt")).unwrap(),
        "in newdir\n"
    );
    assert_eq!(fs::read_to_string(s("rn_dst.txt")).unwrap(), "rename me\n");
    assert!(!s("rn_src.txt").exists(), "rn_src.txt was renamed");
    assert!(!s("remove_me.txt").exists(), "remove_me.txt was removed");
    assert_eq!(fs::metadata(s("wmode.txt")).unwrap().mode(), 0o100600);
    assert_eq!(
        fs::metadata(s("wmtime.txt")).unwrap().mtime(),
        1_234_567_890
    );
    assert_eq!(fs::metadata(s("trunc.txt")).unwrap().len(), 5);
    for (link, target) in [
        ("newlink", "tgt"),
        ("sp link", "target with space"),
        ("ulink", "hello.txt"),
    ] {
        assert_eq!(
            fs::read_link(s(link)).unwrap_or_else(|e| panic!("{link}: {e}")),
            Path::new(target),
            "symlink {link}"
        );
    }
    assert_eq!(
        fs::metadata(s("hard.txt")).unwrap().ino(),
        fs::metadata(s("hello.txt")).unwrap().ino()
    );
    assert_eq!(fs::read_to_string(s("sub/moved.txt")).unwrap(), "moving\n");
    assert_eq!(fs::read_to_string(s("top.txt")).unwrap(), "to the top\n");
    assert_eq!(fs::read_to_string(s("esc2.txt")).unwrap(), "clamped\n");
    assert!(fs::symlink_metadata(s("fifo1"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(s("cdev"))
        .unwrap()
        .file_type()
        .is_char_device());
    let ctlfile = fs::metadata(s("ctlfile.txt")).unwrap();
    assert_eq!(
        (ctlfile.mode(), ctlfile.len()),
        (0o100604, 2),
        "ctlfile.txt (mode, size) after the ctl writes"
    );
    // Nothing was written outside the share.
    let mut beside: Vec<String> = fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["outside", "share"], "next to the share");
    assert_eq!(fs::read_dir(top.path().join("outside")).unwrap().count(), 1);
}

// ---- --trace, with a raw client ----

/// Sends one message; the reply's (type, tag, payload).
fn rpc(c: &mut Client<Stream<UnixStream>>, msg: &[u8]) -> (u8, u16, Vec<u8>) {
    let reply = c.raw(msg);
    (
        reply[4],
        u16::from_le_bytes([reply[5], reply[6]]),
        reply[7..].to_vec(),
    )
}

/// Whether `line` is `<-N- rest` (dir "<-") or `-N-> rest` (dir "->") for some number N.
fn trace_line_is(line: &str, dir: &str, rest: &str) -> bool {
    let line = line.trim_end();
    let body = match dir {
        "<-" => line.strip_prefix("<-").and_then(|l| {
            let digits = l.find(|c: char| !c.is_ascii_digit())?;
            (digits > 0).then(|| l[digits..].strip_prefix("- "))?
        }),
        _ => line.strip_prefix('-').and_then(|l| {
            let digits = l.find(|c: char| !c.is_ascii_digit())?;
            (digits > 0).then(|| l[digits..].strip_prefix("-> "))?
        }),
    };
    body == Some(rest)
}

#[test]
fn trace_prints_every_message_like_lib9p() {
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    mkdir(&share);
    write(&share.join("hello.txt"), "hi\n", 0o644);
    let sock = top.path().join("9p.sock");
    // No --ctl: ",ctl" is an ordinary (absent) name.
    let daemon = start(&share, &sock, &["--trace"]);
    let mut c = Client::stream(UnixStream::connect(&sock).unwrap());

    let m = T::new(TVERSION, NOTAG).u32(8192).str("9P2000").done();
    let (ty, tag, p) = rpc(&mut c, &m);
    assert_eq!((ty, tag), (101, 0xffff), "Rversion");
    let msize = u32::from_le_bytes(p[..4].try_into().unwrap());
    assert_eq!(&p[4..], b"\x06\x009P2000", "Rversion version");

    let m = T::new(TATTACH, 1)
        .u32(0)
        .u32(NOFID)
        .str("root")
        .str("")
        .done();
    let (ty, _, p) = rpc(&mut c, &m);
    assert_eq!(ty, 105, "Rattach to a 9P2000 Tattach (no n_uname): {p:?}");

    let m = T::new(TWALK, 2)
        .u32(0)
        .u32(1)
        .u16(1)
        .str("hello.txt")
        .done();
    let (ty, _, p) = rpc(&mut c, &m);
    assert_eq!(ty, 111, "Rwalk: {p:?}");
    assert_eq!(u16::from_le_bytes([p[0], p[1]]), 1, "nwqid");
    let qtype = p[2];
    let qvers = u32::from_le_bytes(p[3..7].try_into().unwrap());
    let qpath = u64::from_le_bytes(p[7..15].try_into().unwrap());
    assert_eq!(qtype, 0, "qid type of hello.txt");

    let m = T::new(TWALK, 3).u32(0).u32(2).u16(1).str(",ctl").done();
    let (ty, _, p) = rpc(&mut c, &m);
    assert_eq!(
        ty, 107,
        "walk to ,ctl without --ctl: expected Rerror, got type {ty}"
    );
    let mut d = Dec::new(&p);
    assert_eq!(
        String::from_utf8_lossy(d.str_bytes()),
        "No such file or directory",
        "Rerror ename"
    );
    assert!(d.at_end(), "Rerror ename (9P2000: no errno): {p:?}");

    let (ty, _, _) = rpc(&mut c, &T::new(TCLUNK, 4).u32(1).done());
    assert_eq!(ty, 121, "Rclunk");

    let expected = [
        (
            "<-",
            "Tversion tag 65535 msize 8192 version '9P2000'".to_string(),
        ),
        (
            "->",
            format!("Rversion tag 65535 msize {msize} version '9P2000'"),
        ),
        (
            "<-",
            "Twalk tag 2 fid 0 newfid 1 nwname 1 0:hello.txt".to_string(),
        ),
        (
            "->",
            format!("Rwalk tag 2 nwqid 1 0:({qpath:016x} {qvers} )"),
        ),
        (
            "<-",
            "Twalk tag 3 fid 0 newfid 2 nwname 1 0:,ctl".to_string(),
        ),
        (
            "->",
            "Rerror tag 3 ename No such file or directory".to_string(),
        ),
        ("<-", "Tclunk tag 4 fid 1".to_string()),
    ];
    let missing = |text: &str| -> Vec<String> {
        expected
            .iter()
            .filter(|(dir, rest)| !text.lines().any(|l| trace_line_is(l, dir, rest)))
            .map(|(dir, rest)| {
                if *dir == "<-" {
                    format!("<-N- {rest}")
                } else {
                    format!("-N-> {rest}")
                }
            })
            .collect()
    };
    // The lines may be written just after the replies: wait for them (bounded).
    let mut text = String::new();
    common::proc::poll_until(Duration::from_secs(10), || {
        text = daemon.log_text();
        missing(&text).is_empty()
    });
    assert!(
        missing(&text).is_empty(),
        "--trace: expected lines\n{}\nnot found in the daemon's stderr:\n{text}",
        missing(&text).join("\n")
    );
}

// ---- a control file read in pieces ----

/// The data of an Rread of `count` bytes at `offset` of `fid`.
fn read_at(c: &mut Client<Stream<UnixStream>>, fid: u32, offset: u64, count: u32) -> Vec<u8> {
    c.try_read(fid, offset, count).expect("Rread")
}

#[test]
fn a_control_file_read_in_pieces_gives_one_text() {
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    mkdir(&share);
    write(&share.join("f"), "content", 0o644);
    let sock = top.path().join("9p.sock");
    let _daemon = start(&share, &sock, &["--ctl"]);
    let mut c = Client::stream(UnixStream::connect(&sock).unwrap());
    c.version(8192, "9P2000");
    c.try_attach(0, "root", "", None).expect("Rattach");
    c.try_walk(0, 1, &[",ctl", "f"]).expect("Rwalk");
    c.try_open(1, 0).expect("Ropen");

    // The file changes between the first piece and the rest: the rest is
    // still that of the text the first piece began.
    let mut text = read_at(&mut c, 1, 0, 10);
    fs::set_permissions(share.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    let rest = read_at(&mut c, 1, 10, 8000);
    text.extend_from_slice(&rest);
    assert!(read_at(&mut c, 1, text.len() as u64, 8000).is_empty());
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(" mode 0100644 "), "{text}");
    assert!(text.ends_with(" name f\n"), "{text}");
    // A read from the start again reads the file anew.
    let fresh = String::from_utf8(read_at(&mut c, 1, 0, 8000)).unwrap();
    assert!(fresh.contains(" mode 0100600 "), "{fresh}");
}
