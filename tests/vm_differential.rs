//! Differential POSIX test: tests/posix-suite/posix_suite.c runs on a host
//! directory (the oracle) and in a guest on a share, for every configuration
//! (the daemon with --security-model passthrough as root and mapped-xattr as
//! an unprivileged user, each under cache=none, mmap and loose; QEMU's
//! built-in 9p for comparison), and the outputs are compared line by line by
//! tests/differential/run.py.
//!
//! Fails when any vhost-user-9p configuration shows a difference that
//! tests/differential/known-differences.txt does not list (QEMU's are only
//! reported). Needs root and the VM rig (vm-images/build.sh, run here; cached
//! after the first run). It never skips. The result table is written to
//! target/differential-table.md.

mod checks;

use std::path::PathBuf;
use std::process::Command;

use checks::{build_rig, repo, CheckerRun};

#[test]
fn guest_matches_host() {
    build_rig(&[]);

    let table = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("differential-table.md"))
        .unwrap_or_else(|| repo().join("target/differential-table.md"));
    let suite = CheckerRun::of(
        "tests/differential/run.py",
        Command::new("python3")
            .arg(repo().join("tests/differential/run.py"))
            .arg("--no-build")
            .arg("--daemon")
            .arg(env!("CARGO_BIN_EXE_vhost-user-9p"))
            .arg("--table")
            .arg(&table),
    );
    suite.assert_success(
        "differential suite",
        &format!("table in {}", table.display()),
    );
}
