//! What the tests that drive an outside checker share: the VM tests (a guest
//! script run through vm-images/runvm.py) and the python-9p test. A checker
//! prints `ok NAME` for each check that passed, `FAIL NAME: why` for each
//! that did not, `HOSTCHECK KEY=VALUE` for what the host compares afterwards,
//! and exits non-zero when anything failed.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the VM rig (vm-images/build.sh with `args`; cached after the first
/// run). A rig that cannot be built fails the test: VM tests never skip.
pub fn build_rig(args: &[&str]) {
    let status = Command::new("bash")
        .arg(repo().join("vm-images/build.sh"))
        .args(args)
        .status()
        .expect("run vm-images/build.sh");
    assert!(status.success(), "vm-images/build.sh failed: {status}");
}

/// vm-images/runvm.py booting the guest against this build of the daemon
/// sharing `share`, the guest running `script`; add the run's own options.
pub fn runvm(share: &Path, script: &Path) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("vm-images/runvm.py"))
        .arg("--daemon")
        .arg(env!("CARGO_BIN_EXE_vhost-user-9p"))
        .arg("--shared-dir")
        .arg(share)
        .arg("--guest-script")
        .arg(script);
    cmd
}

/// The start of every guest script: the share on `$M`, and the shell
/// functions its checks use (`expect NAME WANTED GOT`, `check NAME CMD...`,
/// `ok`, `fail`); the script ends with `exit $fails` or `[ $fails -eq 0 ]`.
pub const GUEST_PRELUDE: &str = r#"M=/mnt
fails=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
expect() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi; }
check() { name=$1; shift; if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$* -> $out"; fi; }
"#;

/// Writes an executable file (a wrapper runvm.py starts as the daemon).
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Boots the guest on `share` with `daemon` started in the daemon's stead
/// (runvm.py gives it the daemon's arguments; `args`: more for runvm.py),
/// runs GUEST_PRELUDE and `script` there (files in `dir`), and asserts that
/// every check the script plans passed (`what` names the run). Returns the
/// daemon's log.
pub fn guest_checks_pass(
    dir: &Path,
    share: &Path,
    daemon: &Path,
    script: &str,
    args: &[&str],
    what: &str,
) -> String {
    let script_file = dir.join("guest.sh");
    std::fs::write(&script_file, format!("{GUEST_PRELUDE}{script}")).unwrap();
    let log_file = dir.join("daemon.log");
    let guest = CheckerRun::of(
        "the guest script",
        runvm(share, &script_file)
            .arg("--daemon")
            .arg(daemon)
            .arg("--daemon-log")
            .arg(&log_file)
            .args(args)
            .args(["--timeout", "300"]),
    );
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    guest.assert_success(what, &log);
    let planned = planned_checks(script, &["expect ", "check "]);
    assert_eq!(guest.passed().len(), planned, "{}", guest.stdout);
    log
}

/// How many checks `script` plans: its lines that start with one of `starts`
/// (leading blanks ignored).
pub fn planned_checks(script: &str, starts: &[&str]) -> usize {
    script
        .lines()
        .filter(|l| starts.iter().any(|s| l.trim_start().starts_with(s)))
        .count()
}

/// A checker that ran to its end.
pub struct CheckerRun {
    pub status: ExitStatus,
    pub stdout: String,
}

impl CheckerRun {
    /// Runs `cmd` to its end; what it printed goes to the test log.
    pub fn of(what: &str, cmd: &mut Command) -> CheckerRun {
        let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
        CheckerRun::printed(
            what,
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// A checker's run collected elsewhere; what it printed goes to the test
    /// log under `what`.
    pub fn printed(what: &str, status: ExitStatus, stdout: String, stderr: &str) -> CheckerRun {
        println!("== {what}\n{stdout}");
        eprintln!("{stderr}");
        CheckerRun { status, stdout }
    }

    /// Its `FAIL` lines and its last line (a checker's summary).
    pub fn failures(&self) -> String {
        let mut lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect();
        if let Some(last) = self.stdout.lines().last() {
            if !lines.contains(&last) {
                lines.push(last);
            }
        }
        lines.join("\n")
    }

    /// Fails the test unless the checker exited 0, quoting its failures and
    /// `context` (what else helps to see why).
    pub fn assert_success(&self, what: &str, context: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n{}{}{context}",
            self.status,
            self.failures(),
            if context.is_empty() { "" } else { "\n" },
        );
    }

    /// The names of the checks that reported `ok`.
    pub fn passed(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ok "))
            .collect()
    }

    /// Its `HOSTCHECK KEY=VALUE` lines.
    pub fn host_checks(&self) -> HashMap<&str, &str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("HOSTCHECK "))
            .filter_map(|l| l.split_once('='))
            .collect()
    }
}
