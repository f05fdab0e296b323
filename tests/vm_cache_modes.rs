//! Every cache mode of the Linux client works against the daemon: a guest
//! mounts the share with each mode in turn and runs tests/vm/cache-modes-guest.sh
//! (the mode named in /proc/mounts, write/read, O_WRONLY writes, MAP_SHARED
//! writes where the mode allows them, mmap reads, exec of a binary from the
//! share). Two guest kernels: bookworm's 6.1 with cache=none, mmap, loose and
//! fscache (it has no cache=readahead: that came with Linux 6.6), and trixie's
//! 6.12 (`build.sh --kernel 6.12`) with none, readahead, mmap, loose and
//! fscache. Never skips: a missing rig is a failure.

mod checks;

use std::fs;

use checks::{build_rig, planned_checks, repo, runvm, CheckerRun};

#[test]
fn every_cache_mode_works() {
    build_rig(&["--kernel", "6.12"]);
    let script = repo().join("tests/vm/cache-modes-guest.sh");
    // The two mmap-shared-write lines are alternatives.
    let planned = planned_checks(&fs::read_to_string(&script).unwrap(), &["expect "]) - 1;
    let mut failures = Vec::new();
    let runs = ["none", "mmap", "loose", "fscache"]
        .map(|mode| ("6.1", mode))
        .into_iter()
        .chain(["none", "readahead", "mmap", "loose", "fscache"].map(|mode| ("6.12", mode)));
    for (kernel, mode) in runs {
        let share = tempfile::tempdir().unwrap();
        let guest = CheckerRun::of(
            &format!("linux {kernel}, cache={mode}"),
            runvm(share.path(), &script).args([
                "--kernel",
                kernel,
                "--cache",
                mode,
                "--timeout",
                "300",
            ]),
        );
        let passed = guest.passed().len();
        if !guest.status.success() || passed != planned {
            failures.push(format!(
                "linux {kernel}, cache={mode}: {passed}/{planned} passed, {}\n{}",
                guest.status,
                guest.failures()
            ));
        }
        // The guest's writes are on the host.
        if guest.status.success() {
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
