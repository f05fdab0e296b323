//! The vhost-user transport's warnings.

use super::*;

/// A guest sending malformed chains by the hundred gets a few warning
/// lines logged, not one each (and the daemon serves on).
#[test]
fn a_flood_of_bad_chains_logs_a_few_warnings() {
    let _s = serial();
    let dir = share();
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("vu.sock");
    let mut daemon = Daemon::builder(dir.path())
        .socket_path(&socket)
        .tag("t")
        .args(["--thread-pool-size", "2"])
        .stderr_to_file()
        .start();
    let started = Instant::now();
    {
        let mut vmm = common::Vmm::connect(&socket, 16 << 20, true);
        // Three readable bytes: shorter than a 9P header.
        let short = vmm.slot(common::Area::one(3), common::Area::one(64));
        vmm.write(short.request, &[1, 2, 3]);
        for _ in 0..500 {
            assert_eq!(vmm.roundtrip(short.head), 0);
        }
        // The daemon still answers a good request.
        let mut client = Client::new(vmm);
        client.mount(8192, ROOT);
    }
    let seconds = started.elapsed().as_secs() + 1;
    let status = daemon.wait();
    assert!(status.success(), "daemon: {status}");
    let log = daemon.log_text();
    let warnings = log.matches("shorter than a 9P header").count() as u64;
    let most = seconds * u64::from(vhost_user_9p::ratelimit::PER_SECOND);
    assert!(
        (1..=most).contains(&warnings),
        "{warnings} warnings for 500 short requests in {seconds} s:\n{log}"
    );
}
