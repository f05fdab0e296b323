//! VM test of POSIX locks between the guest and host processes: the Linux
//! v9fs client in a real guest (vm-images/runvm.py) against locks this test
//! process takes on the share with fcntl, and the other way round. The guest
//! and the host take turns through marker files in the share.
//!
//! (Locks between guest processes are checked in tests/vm/e2e-guest.sh.)

mod checks;
mod common;

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use checks::{build_rig, planned_checks, runvm, CheckerRun};

/// fcntl F_SETLK / F_GETLK by this process: Ok((type, start, len, pid)).
fn fcntl(
    file: &File,
    cmd: i32,
    l_type: i32,
    start: i64,
    len: i64,
) -> Result<(i32, i64, i64, i32), i32> {
    let mut fl = libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    // SAFETY: fl is a valid struct flock for the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) } < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    Ok((fl.l_type as i32, fl.l_start, fl.l_len, fl.l_pid))
}

fn wait_for(path: &Path, vm: &mut std::process::Child) {
    let what = path.display().to_string();
    common::proc::wait_for_within(&what, Duration::from_secs(300), || {
        if let Ok(Some(status)) = vm.try_wait() {
            panic!("the VM ended ({status}) before {what} appeared");
        }
        path.exists().then_some(())
    });
}

const GUEST_SCRIPT: &str = r#"

# The host holds a write lock on [0, 100) of hostlocked.
expect host-lock-refuses-write EAGAIN "$(locktest try $M/hostlocked w 0 1)"
expect host-lock-refuses-read EAGAIN "$(locktest try $M/hostlocked r 99 1)"
# Reported with pid 0: the host process is outside the sandboxed daemon's
# pid namespace, so the kernel gives its pid as 0.
expect host-lock-reported "w 0 100 0" "$(locktest getlk $M/hostlocked r 0 0)"
expect beside-host-lock ok "$(locktest try $M/hostlocked w 100 0)"
expect nothing-reported-beside "u 100 0 0" "$(locktest getlk $M/hostlocked w 100 0)"
# The guest holds a write lock on [10, 30) of guestlocked while the host looks.
check guest-lock-held locktest hold $M/guestlocked w 10 20 $M/ready $M/release
expect guest-lock-gone-with-process ok "$(locktest try $M/guestlocked w 0 0)"
# F_SETLKW on the host's lock: answered BLOCKED, retried by the client until
# the host lets go.
touch $M/waiting
t0=$(clock)
expect setlkw-waits-for-host ok "$(locktest try $M/hostlocked w 0 1 w)"
echo "HOSTCHECK setlkw_seconds=$(awk "BEGIN { print $(clock) - $t0 }")"
exit $fails
"#;

#[test]
fn guest_and_host_locks_meet() {
    build_rig(&[]);

    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    fs::create_dir(&share).unwrap();
    fs::write(share.join("hostlocked"), [0u8; 200]).unwrap();
    fs::write(share.join("guestlocked"), [0u8; 200]).unwrap();
    let script = top.path().join("guest.sh");
    fs::write(&script, format!("{}{GUEST_SCRIPT}", checks::GUEST_PRELUDE)).unwrap();
    // This process's locks (POSIX: they go when it closes any descriptor of
    // the file, so each file is opened once).
    let host = File::options()
        .read(true)
        .write(true)
        .open(share.join("hostlocked"))
        .unwrap();
    let guest_file = File::open(share.join("guestlocked")).unwrap();
    assert_eq!(
        fcntl(&host, libc::F_SETLK, libc::F_WRLCK, 0, 100).map(drop),
        Ok(())
    );

    let mut vm = runvm(&share, &script)
        // The client retries a blocked F_SETLKW after this many seconds
        // (default 30).
        .args(["--mount-opts", "locktimeout=1", "--timeout", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vm-images/runvm.py");
    let mut out = vm.stdout.take().unwrap();
    let mut err = vm.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });

    // The guest holds its lock: the host sees it (an OFD lock: pid -1) and
    // is kept out, but not beside it.
    wait_for(&share.join("ready"), &mut vm);
    let seen = fcntl(&guest_file, libc::F_GETLK, libc::F_RDLCK, 0, 0);
    let refused = fcntl(&guest_file, libc::F_SETLK, libc::F_RDLCK, 29, 1).map(drop);
    let beside = fcntl(&guest_file, libc::F_SETLK, libc::F_RDLCK, 30, 0).map(drop);
    let _ = fcntl(&guest_file, libc::F_SETLK, libc::F_UNLCK, 0, 0);
    fs::write(share.join("release"), "").unwrap();

    // The guest waits in F_SETLKW on the host's lock: let go after a while.
    wait_for(&share.join("waiting"), &mut vm);
    let after_exit = fcntl(&guest_file, libc::F_GETLK, libc::F_WRLCK, 0, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        fcntl(&host, libc::F_SETLK, libc::F_UNLCK, 0, 0).map(drop),
        Ok(())
    );

    let guest = CheckerRun::printed(
        "the guest script",
        vm.wait().unwrap(),
        stdout.join().unwrap(),
        &stderr.join().unwrap(),
    );
    guest.assert_success("guest checks", "");
    assert_eq!(
        guest.passed().len(),
        planned_checks(GUEST_SCRIPT, &["expect ", "check "]),
        "guest checks passed vs in the script"
    );

    assert_eq!(
        seen,
        Ok((libc::F_WRLCK, 10, 20, -1)),
        "host F_GETLK of the guest's lock"
    );
    assert_eq!(
        refused,
        Err(libc::EAGAIN),
        "host F_SETLK inside the guest's lock"
    );
    assert_eq!(beside, Ok(()), "host F_SETLK beside the guest's lock");
    assert_eq!(
        after_exit.map(|l| l.0),
        Ok(libc::F_UNLCK),
        "the guest's lock went with its process"
    );
    // Blocked from the host's release ~2 s in; retried every second.
    let waited: f64 = guest
        .host_checks()
        .get("setlkw_seconds")
        .and_then(|v| v.trim().parse().ok())
        .expect("setlkw_seconds");
    assert!((1.5..15.0).contains(&waited), "F_SETLKW waited {waited} s");
}
