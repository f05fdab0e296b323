//! The Linux v9fs client on each dialect the daemon speaks: a 6.1 guest
//! mounts the share with version=9p2000, version=9p2000.u and version=9p2000.L
//! and runs tests/vm/plan9-guest.sh (write/read, rename, mkdir, create in the
//! new directory, list it, chmod, utime, truncate, symlinks as the dialect
//! shows them); the host then checks the directory. The 9p2000 and 9p2000.L
//! runs give the daemon --ctl: the guest reads `,ctl/stamped.txt` (compared
//! here field by field, nanoseconds included, with the host's stat of the
//! file) and writes commands into `,ctl/,` and `,ctl/chm.txt`.
//!
//! Needs the VM rig (vm-images/build.sh, run here; cached). Never skips.

mod checks;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use checks::{build_rig, repo, runvm, CheckerRun};

const ATIME: (u64, u32) = (1_500_000_000, 111_111_111);
const MTIME: (u64, u32) = (1_600_000_000, 222_222_222);

fn prepare_share(share: &Path) {
    fs::set_permissions(share, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(share.join("hello.txt"), "hello from the host\n").unwrap();
    fs::write(share.join("trunc.txt"), "0123456789").unwrap();
    fs::write(share.join("chm.txt"), "chmod me\n").unwrap();
    fs::set_permissions(share.join("chm.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(share.join("chm2.txt"), "chmod me too\n").unwrap();
    fs::set_permissions(share.join("chm2.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    symlink("hello.txt", share.join("link_to_hello")).unwrap();
    fs::write(share.join("stamped.txt"), "stamped\n").unwrap();
    let times = fs::FileTimes::new()
        .set_accessed(UNIX_EPOCH + Duration::new(ATIME.0, ATIME.1))
        .set_modified(UNIX_EPOCH + Duration::new(MTIME.0, MTIME.1));
    fs::File::options()
        .write(true)
        .open(share.join("stamped.txt"))
        .unwrap()
        .set_times(times)
        .unwrap();
}

/// `name` percent-encoded as the control files print names.
fn pct(name: &[u8]) -> String {
    name.iter()
        .map(|&c| {
            if (0x21..=0x7e).contains(&c) && c != b'%' {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

/// Checks a control line against the host's stat of the file, field by field.
fn check_ctl_line(line: &str, meta: &fs::Metadata, name: &str) -> Vec<String> {
    let toks: Vec<&str> = line.split(' ').collect();
    let keys: Vec<&str> = toks.iter().step_by(2).copied().collect();
    let want_keys = [
        "dev",
        "inode",
        "mode",
        "nlink",
        "uid",
        "gid",
        "rdev",
        "size",
        "blksize",
        "blocks",
        "atime",
        "mtime",
        "ctime",
        "atimensec",
        "mtimensec",
        "ctimensec",
        "name",
    ];
    if toks.len() % 2 != 0 || keys != want_keys {
        return vec![format!(
            "expected the keys {want_keys:?} each with a value, got [{line}]"
        )];
    }
    let got: HashMap<&str, &str> = toks.chunks(2).map(|kv| (kv[0], kv[1])).collect();
    let expected = [
        ("dev", meta.dev().to_string()),
        ("inode", meta.ino().to_string()),
        ("mode", format!("0{:o}", meta.mode())),
        ("nlink", meta.nlink().to_string()),
        ("uid", meta.uid().to_string()),
        ("gid", meta.gid().to_string()),
        ("rdev", meta.rdev().to_string()),
        ("size", meta.size().to_string()),
        ("blksize", meta.blksize().to_string()),
        ("blocks", meta.blocks().to_string()),
        ("atime", meta.atime().to_string()),
        ("mtime", meta.mtime().to_string()),
        ("ctime", meta.ctime().to_string()),
        ("atimensec", meta.atime_nsec().to_string()),
        ("mtimensec", meta.mtime_nsec().to_string()),
        ("ctimensec", meta.ctime_nsec().to_string()),
        ("name", pct(name.as_bytes())),
    ];
    let mut bad: Vec<String> = expected
        .iter()
        .filter(|(k, v)| got[k] != v)
        .map(|(k, v)| format!("{k}: host has {v}, the guest read {}", got[k]))
        .collect();
    // The values the file was prepared with (nanoseconds kept end to end).
    for (k, v) in [
        ("atime", ATIME.0.to_string()),
        ("atimensec", ATIME.1.to_string()),
        ("mtime", MTIME.0.to_string()),
        ("mtimensec", MTIME.1.to_string()),
    ] {
        if got[k] != v {
            bad.push(format!("{k}: prepared as {v}, the guest read {}", got[k]));
        }
    }
    bad
}

/// Boots the 6.1 guest on a fresh share with `version` (and the daemon's
/// --ctl when `ctl`), checks the guest's results and then the host directory.
fn run(version: &str, ctl: bool) {
    build_rig(&[]);
    let share_dir = tempfile::tempdir().unwrap();
    let share = share_dir.path();
    prepare_share(share);
    let mut cmd = runvm(share, &repo().join("tests/vm/plan9-guest.sh"));
    cmd.args(["--version", version, "--timeout", "300"]);
    if ctl {
        cmd.args(["--daemon-arg=--ctl", "--env", "VU9P_CTL=1"]);
    }
    let guest = CheckerRun::of(&format!("version={version} ctl={ctl}"), &mut cmd);
    let stdout = &guest.stdout;
    guest.assert_success(
        &format!("version={version}: guest checks"),
        &format!("--- guest output:\n{stdout}"),
    );

    // Every check meant for this run ran and passed.
    let mut wanted = vec![
        "read-host-file",
        "stat-size",
        "write-read",
        "append",
        "rename",
        "mkdir",
        "create-in-new-dir",
        "list-new-dir",
        "rename-across-dirs",
        "unlink",
        "rmdir",
        "chmod",
        "utime",
        "truncate",
        "fsync",
    ];
    if version == "9p2000" {
        wanted.extend(["symlink-followed", "symlink-shows-as-file"]);
    } else {
        wanted.extend([
            "symlink-readlink",
            "symlink-create",
            "symlink-follow",
            "hard-link",
            "mkfifo",
        ]);
    }
    if ctl {
        wanted.extend([
            "ctl-read",
            "ctl-read-nofollow",
            "ctl-hidden-in-listing",
            "ctl-write-symlink",
            "ctl-write-chmod",
            "ctl-write-with-truncating-redirect",
            "ctl-chmod-after-truncating-redirect",
            "ctl-chmod-seen",
            "ctl-write-bad-command-fails",
            "ctl-bad-command-changed-nothing",
            "ctl-symlink-seen",
        ]);
    } else {
        wanted.push("no-ctl-without-the-flag");
    }
    let passed = guest.passed();
    let missing: Vec<&&str> = wanted.iter().filter(|w| !passed.contains(w)).collect();
    assert!(
        missing.is_empty(),
        "version={version}: checks that did not report ok: {missing:?}\n--- guest output:\n{stdout}"
    );
    let checks = guest.host_checks();

    // What the guest did is on the host.
    let s = |name: &str| share.join(name);
    assert_eq!(
        fs::read_to_string(s("newdir/inner.txt")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        fs::read_to_string(s("renamed.txt")).unwrap(),
        "written by the guest\nsecond line\n"
    );
    assert_eq!(
        fs::read_to_string(s("newdir/moved.txt")).unwrap(),
        "across\n"
    );
    for gone in ["new.txt", "across.txt", "newdir/second.txt", "gone"] {
        assert!(
            !s(gone).exists(),
            "version={version}: {gone} should not exist"
        );
    }
    let modes = fs::metadata(s("modes")).unwrap();
    assert_eq!(
        (modes.mode() & 0o7777, modes.mtime()),
        (0o640, 981_173_106),
        "version={version}: (mode, mtime) of modes"
    );
    assert_eq!(fs::read_to_string(s("trunc.txt")).unwrap(), "012");
    assert_eq!(fs::metadata(s("synced")).unwrap().len(), 8192);
    if version != "9p2000" {
        assert_eq!(
            fs::read_link(s("guestlink")).unwrap(),
            Path::new("hello.txt")
        );
        assert_eq!(
            fs::metadata(s("hardlink")).unwrap().ino(),
            fs::metadata(s("hello.txt")).unwrap().ino(),
            "version={version}: hardlink is hello.txt"
        );
        assert!(
            fs::symlink_metadata(s("fifo"))
                .unwrap()
                .file_type()
                .is_fifo(),
            "version={version}: fifo is a fifo on the host"
        );
    }
    // The guest's listing of the root is the host's.
    let mut listed: Vec<&str> = checks
        .get("listing")
        .unwrap_or_else(|| panic!("no HOSTCHECK listing in the guest output"))
        .split('/')
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .collect();
    listed.sort();
    let mut host: Vec<String> = fs::read_dir(share)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    assert_eq!(listed, host, "version={version}: guest listing vs host");

    if ctl {
        // Read after the VM is gone; nothing touched stamped.txt since the guest's read.
        let meta = fs::metadata(s("stamped.txt")).unwrap();
        let line = checks
            .get("ctl_stamped")
            .unwrap_or_else(|| panic!("no HOSTCHECK ctl_stamped"));
        let bad = check_ctl_line(line, &meta, "stamped.txt");
        assert!(
            bad.is_empty(),
            "version={version}: ,ctl/stamped.txt read by the guest vs the host's stat:\n{}\nline: [{line}]",
            bad.join("\n")
        );
        assert_eq!(
            fs::read_link(s("newlink")).unwrap_or_else(|e| panic!("newlink: {e}")),
            Path::new("target-text"),
            "version={version}: symlink written through ,ctl/,"
        );
        assert_eq!(
            fs::metadata(s("chm.txt")).unwrap().mode(),
            0o100600,
            "version={version}: mode of chm.txt after 'chmod 600' (and a refused 'chmod 999')"
        );
        assert_eq!(
            fs::metadata(s("chm2.txt")).unwrap().mode(),
            0o100640,
            "version={version}: mode of chm2.txt after 'chmod 640' written with '>'"
        );
    } else {
        assert!(!s(",ctl").exists());
    }
}

#[test]
fn guest_on_9p2000_with_ctl() {
    run("9p2000", true);
}

#[test]
fn guest_on_9p2000u() {
    run("9p2000.u", false);
}

#[test]
fn guest_on_9p2000l_with_ctl() {
    run("9p2000.L", true);
}
