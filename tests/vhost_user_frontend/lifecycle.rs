//! The daemon's end once its frontend leaves.

use super::*;

/// The daemon exits with status 0 once its frontend goes away (mid-session, fids open).
#[test]
fn exits_zero_after_disconnect() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"x").unwrap();
    {
        let mut c = connect(&daemon);
        mount(&mut c, 1);
        c.try_walk(1, 2, &["f"]).unwrap();
        c.try_lopen(2, O_RDWR).unwrap();
        assert!(daemon.try_wait().is_none());
        // Dropping the Vmm closes the socket, the eventfds and the memfd mapping.
    }
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
}

/// Same, for a frontend that connects, asks for the features and leaves.
#[test]
fn exits_zero_after_bare_disconnect() {
    let (_share, mut daemon) = start("hostshare", &[]);
    {
        let frontend = Frontend::connect(&daemon.socket, 1).expect("connect");
        frontend.get_features().expect("GET_FEATURES");
    }
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
}

/// With `--poll-us`, requests back to back after idle gaps are caught by
/// the watching queue thread: for most the device asks for no kick. (The first rule halved the
/// window whenever watching found nothing and doubled it at the next kick;
/// once idle gaps had shrunk it below the gap between requests, it stayed
/// there, and nearly every request needed a kick: polling did nothing.)
#[test]
fn polling_catches_back_to_back_requests_after_idle_gaps() {
    let (share, daemon) = start("hostshare", &["--poll-us", "200"]);
    fs::write(share.path().join("f"), b"x").unwrap();
    let mut c = connect(&daemon);
    mount(&mut c, 1);
    c.try_walk(1, 2, &["f"]).unwrap();
    // Gaps far longer than the window (pacing, not synchronisation): it
    // shrinks to nothing.
    for _ in 0..12 {
        c.try_getattr(2, GETATTR_BASIC).unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    let before = c.link.vmm.kicks_asked;
    let requests = 1000;
    for _ in 0..requests {
        assert_eq!(c.try_getattr(2, GETATTR_BASIC).unwrap().size, 1);
    }
    let kicks = c.link.vmm.kicks_asked - before;
    assert!(
        kicks < requests / 2,
        "{kicks} kicks asked for {requests} requests back to back with --poll-us 200"
    );
}

/// With `--poll-us` 0 (off), with none given (the default) and with 200 (a
/// long window), requests back to back and in a pipeline are served alike,
/// and a guest that then sends nothing costs the daemon no CPU to speak of
/// (the watch window shrinks to nothing).
#[test]
fn polling_serves_as_before_and_an_idle_guest_costs_no_cpu() {
    let settings: [&[&str]; 3] = [&["--poll-us", "0"], &[], &["--poll-us", "200"]];
    for args in settings {
        let poll = args.get(1).copied().unwrap_or("default");
        let (share, daemon) = start("hostshare", args);
        fs::write(share.path().join("f"), b"x").unwrap();
        let mut c = connect(&daemon);
        mount(&mut c, 1);
        c.try_walk(1, 2, &["f"]).unwrap();
        for _ in 0..500 {
            assert_eq!(c.try_getattr(2, GETATTR_BASIC).unwrap().size, 1);
        }
        let pid = daemon.serving_pid();
        let before = common::proc::cpu_ticks(pid);
        // Idle: measured over a stretch of time, not waited on.
        std::thread::sleep(Duration::from_secs(2));
        let idle = common::proc::cpu_ticks(pid) - before;
        // (Clock ticks of 10 ms: 2 s of one busy core would be 200.)
        assert!(
            idle <= 5,
            "--poll-us {poll}: {idle} ticks of CPU in 2 s idle"
        );
        assert_eq!(c.try_getattr(2, GETATTR_BASIC).unwrap().size, 1);
    }
}
