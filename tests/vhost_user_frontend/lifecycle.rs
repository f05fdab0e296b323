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
