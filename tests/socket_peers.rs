//! Independent 9P2000.L clients against `--listen unix:PATH`: diod's
//! `diodls` and `diodcat` (Debian package diod, which ci/test.sh installs).
//! A missing diod is a failure, not a skip.

mod common;

use std::path::Path;
use std::process::Command;

use common::Daemon;

fn run(tool: &str, args: &[&str]) -> String {
    let path = ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} not installed (apt-get install diod; ci/test.sh does)"));
    let out = Command::new(path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn diod_clients_list_and_read_the_share() {
    let share = tempfile::tempdir().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("hello.txt"), "hello from the share\n").unwrap();
    std::fs::create_dir(share.path().join("sub")).unwrap();
    std::fs::write(share.path().join("sub/inner"), "").unwrap();
    let sock = sock_dir.path().join("9p.sock");
    let daemon = Daemon::builder(share.path())
        .listen_unix(&sock)
        // diod's clients attach as the user running them: root here.
        .arg("--no-root-squash")
        .start();
    let s = sock.to_str().unwrap();
    let mut listing: Vec<String> = run("diodls", &["-s", s, "-a", "/", "/"])
        .lines()
        .map(String::from)
        .collect();
    listing.sort();
    assert_eq!(listing, ["hello.txt", "sub"]);
    assert_eq!(run("diodls", &["-s", s, "-a", "/", "/sub"]).trim(), "inner");
    let long = run("diodls", &["-s", s, "-a", "/", "-l", "/"]);
    assert!(
        long.lines()
            .any(|l| l.contains("21") && l.ends_with("hello.txt")),
        "{long}"
    );
    assert_eq!(
        run("diodcat", &["-s", s, "-a", "/", "hello.txt"]),
        "hello from the share\n"
    );
    drop(daemon);
}
