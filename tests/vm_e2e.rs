//! VM end-to-end test: a real Debian kernel under QEMU mounts the share
//! through the daemon's vhost-user socket with its own v9fs client, runs
//! tests/vm/e2e-guest.sh, and the host then checks what the guest did.
//!
//! Needs the VM rig (vm-images/build.sh, run here; cached after the first
//! run). It never skips: a missing rig is a failure.

mod checks;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use checks::{build_rig, planned_checks, repo, runvm, CheckerRun};

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

/// A host file of `len` deterministic pseudo-random bytes.
fn write_pattern(path: &Path, len: usize) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    fs::write(path, data).unwrap();
}

#[test]
fn guest_exercises_the_share() {
    build_rig(&[]);
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    let outside = top.path().join("outside");
    fs::create_dir(&share).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret.txt"), "HOST-SECRET\n").unwrap();
    fs::write(share.join("readme.txt"), "hello from host\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), share.join("to_secret_abs")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", share.join("to_secret_rel")).unwrap();
    fs::create_dir(share.join("many")).unwrap();
    let mut names: Vec<String> = (0..10_000).map(|i| format!("f{i:05}")).collect();
    for name in &names {
        fs::write(share.join("many").join(name), "").unwrap();
    }
    write_pattern(&share.join("big.bin"), 256 << 20);
    let big_sum = sha256(&share.join("big.bin"));
    write_pattern(&share.join("mid.bin"), 8 << 20);
    let mid_sum = sha256(&share.join("mid.bin"));

    let guest = CheckerRun::of(
        "the guest script",
        runvm(&share, &repo().join("tests/vm/e2e-guest.sh")).args([
            "--mem",
            "2G",
            "--timeout",
            "600",
        ]),
    );
    guest.assert_success("guest checks", "");
    assert!(
        !guest.stdout.contains("HOST-SECRET"),
        "the guest read a file outside the share"
    );
    let checks = guest.host_checks();
    // Every check in the script ran and passed.
    let script = fs::read_to_string(repo().join("tests/vm/e2e-guest.sh")).unwrap();
    assert_eq!(
        guest.passed().len(),
        planned_checks(&script, &["expect ", "check "]),
        "guest checks passed vs in the script"
    );

    // What the guest read matches the host.
    assert_eq!(
        checks.get("big_out"),
        Some(&big_sum.as_str()),
        "256 MiB copy out"
    );
    assert_eq!(
        checks.get("mid_mmap"),
        Some(&mid_sum.as_str()),
        "8 MiB mmap read"
    );
    names.sort();
    let listing = names.join("\n") + "\n";
    let md5 = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(listing.as_bytes())?;
            child.wait_with_output()
        })
        .expect("md5sum");
    let md5 = String::from_utf8_lossy(&md5.stdout);
    assert_eq!(
        checks.get("many_md5").copied(),
        md5.split_whitespace().next()
    );

    // What the guest wrote is on the host.
    assert_eq!(
        checks.get("big_in"),
        Some(&sha256(&share.join("big_in.bin")).as_str())
    );
    assert!(
        !share.join("w.txt").exists(),
        "w.txt was removed by the guest"
    );
    assert_eq!(
        fs::read_to_string(share.join("ow.txt")).unwrap(),
        "012XY56789"
    );
    assert_eq!(fs::read_to_string(share.join("dB/f")).unwrap(), "in\n");
    assert!(!share.join("dA").exists());
    assert_eq!(fs::read_to_string(share.join("r2")).unwrap(), "new\n");
    assert!(!share.join("r1").exists());
    assert_eq!(fs::read_to_string(share.join("dC/rb")).unwrap(), "x\n");
    assert_eq!(fs::metadata(share.join("l1")).unwrap().nlink(), 1);
    assert_eq!(
        fs::read_link(share.join("sl")).unwrap(),
        Path::new("readme.txt")
    );
    assert_eq!(
        fs::read_link(share.join("dangling")).unwrap(),
        Path::new("nowhere")
    );
    assert!(fs::symlink_metadata(share.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let modes = fs::metadata(share.join("modes")).unwrap();
    assert_eq!(modes.permissions().mode() & 0o7777, 0o640);
    assert_eq!(modes.mtime(), 981_173_106);
    assert_eq!(fs::metadata(share.join("synced")).unwrap().len(), 16384);
    assert!(!share.join("ou.txt").exists());
    assert!(share.join("notempty/x").exists());
    assert_eq!(
        fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "HOST-SECRET\n"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside the share"
    );
}
