//! Every cache mode of the Linux client works against the daemon: a guest
//! mounts the share with each mode in turn and runs tests/vm/cache-modes-guest.sh
//! (the mode named in /proc/mounts, write/read, O_WRONLY writes, MAP_SHARED
//! writes where the mode allows them, mmap reads, exec of a binary from the
//! share). Two guest kernels: bookworm's 6.1 with cache=none, mmap, loose and
//! fscache (it has no cache=readahead: that came with Linux 6.6), and trixie's
//! 6.12 (`build.sh --kernel 6.12`) with none, readahead, mmap, loose and
//! fscache. Never skips: a missing rig is a failure.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_cache_mode_works() {
    let status = Command::new("bash")
        .arg(repo().join("vm-images/build.sh"))
        .args(["--kernel", "6.12"])
        .status()
        .expect("run vm-images/build.sh");
    assert!(status.success(), "vm-images/build.sh failed");
    let script = repo().join("tests/vm/cache-modes-guest.sh");
    let planned = fs::read_to_string(&script)
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("expect "))
        .count()
        - 1; // the two mmap-shared-write lines are alternatives
    let mut failures = Vec::new();
    let runs = ["none", "mmap", "loose", "fscache"]
        .map(|mode| ("6.1", mode))
        .into_iter()
        .chain(["none", "readahead", "mmap", "loose", "fscache"].map(|mode| ("6.12", mode)));
    for (kernel, mode) in runs {
        let share = tempfile::tempdir().unwrap();
        let out = Command::new("python3")
            .arg(repo().join("vm-images/runvm.py"))
            .args(["--kernel", kernel])
            .arg("--daemon")
            .arg(env!("CARGO_BIN_EXE_vhost-user-9p"))
            .arg("--shared-dir")
            .arg(share.path())
            .arg("--guest-script")
            .arg(&script)
            .args(["--cache", mode, "--timeout", "300"])
            .output()
            .expect("run vm-images/runvm.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!(
            "== linux {kernel}, cache={mode}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
        if !out.status.success() || passed != planned {
            failures.push(format!(
                "linux {kernel}, cache={mode}: {passed}/{planned} passed, {}",
                out.status
            ));
        }
        // The guest's writes are on the host.
        if out.status.success() {
            assert_eq!(
                fs::read_to_string(share.path().join("plain")).unwrap(),
                format!("from {mode}\n")
            );
            assert_eq!(
                fs::read_to_string(share.path().join("wronly")).unwrap(),
                "aXY"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
