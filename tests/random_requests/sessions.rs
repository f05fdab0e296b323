//! Random request sequences on socket sessions served in-process: one
//! after another, and concurrently on one session while the host swaps
//! directories for symlinks.

use super::*;

/// Runs one session of `REQUESTS` random requests through the socket
/// transport's connection loop; the request types that succeeded.
fn run_session(seed: u64, dialect: &str, config: Config) -> BTreeSet<u8> {
    const REQUESTS: usize = 6000;
    let share = config.shared_dir.clone();
    let outside = share.with_file_name("outside");
    let (client, server_end) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut client = Wire::stream(client);
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::new(&config).unwrap();
        let result = serve_connection(&server, Box::new(server_end));
        drop(server);
        let _ = done.send(result.map_err(|e| e.to_string()));
    });

    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut fids = Fids::default();
    let mut succeeded = BTreeSet::new();
    let mut frame = Vec::new();
    for i in 0..REQUESTS {
        let tag = (i % 5) as u16;
        if i % 200 == 0 {
            restock(&share, &outside);
        }
        // Now and then a small msize (the least the server agrees to is
        // 4096) or an outlandish one.
        let msizes = [65536, 65536, 4096, 5000, 0, u32::MAX];
        let sent = next_request(&mut rng, &fids, dialect, i == 0, &msizes, tag, &mut frame);
        let context = format!("seed {seed} ({dialect}), request {i} (type {})", sent.ty);
        // The wire client fails on a read past the timeout; the context
        // says which request went unanswered.
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.raw(&frame)))
            .unwrap_or_else(|_| panic!("{context}: no reply within 30 s"));
        check(&context, dialect, tag, &sent, &reply);
        assert!(
            sent.ty == Tversion::TYPE || reply.len() <= fids.msize as usize,
            "{context}: a reply of {} bytes with msize {}",
            reply.len(),
            fids.msize
        );
        if reply[4] == sent.ty + 1 {
            succeeded.insert(sent.ty);
        }
        fids.update(&sent, &reply);
    }
    drop(client);
    let result = finished
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("seed {seed} ({dialect}): the session did not end"));
    assert_eq!(result, Ok(()), "seed {seed} ({dialect})");
    succeeded
}

/// Runs `THREADS` threads of random requests on one session of one server
/// at once, as the worker pool serves a guest's requests: fids used,
/// clunked, replaced and renamed under each other's feet. Meanwhile a host
/// process swaps the share's directory `d` and file `a` for symlinks out
/// of the share and back, as fast as it can.
fn run_concurrent_session(seed: u64, dialect: &'static str, config: Config) {
    const THREADS: u64 = 4;
    const REQUESTS: usize = 2500;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (share, stop) = (config.shared_dir.clone(), stop.clone());
        std::thread::spawn(move || swap_for_symlinks_until(&share, &stop))
    };
    let session = InProc::on(&Arc::new(Server::new(&config).unwrap()));
    let (done, finished) = mpsc::channel();
    for thread in 0..THREADS {
        let (session, done) = (session.twin(), done.clone());
        std::thread::spawn(move || {
            let mut rng = Rng((seed * THREADS + thread).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut fids = Fids::default();
            let mut frame = Vec::new();
            for i in 0..REQUESTS {
                let tag = (thread * 8 + i as u64 % 8) as u16;
                let sent =
                    next_request(&mut rng, &fids, dialect, i == 0, &[65536], tag, &mut frame);
                let reply = session.send(&frame).0;
                let context = format!(
                    "seed {seed} ({dialect}), thread {thread}, request {i} (type {})",
                    sent.ty
                );
                check(&context, dialect, tag, &sent, &reply);
                fids.update(&sent, &reply);
            }
            // The last one out closes the session's descriptors.
            drop(session);
            let _ = done.send(thread);
        });
    }
    drop(done);
    for _ in 0..THREADS {
        finished
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("seed {seed} ({dialect}): a thread hung or panicked"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0, "seed {seed}: the host never swapped anything");
}

/// Until `stop`: moves `d` and `a` aside and puts symlinks out of the share
/// (to the outside directory and its secret file) in their place, then
/// back. Returns how many swaps it made.
fn swap_for_symlinks_until(share: &Path, stop: &std::sync::atomic::AtomicBool) -> usize {
    let outside = share.with_file_name("outside");
    let pairs = [("d", outside.clone()), ("a", outside.join("secret"))];
    let mut swaps = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for (name, target) in &pairs {
            let (path, aside) = (share.join(name), share.join(format!("{name}.host")));
            // Only what is (still) a plain directory or file is moved.
            let plain = std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_symlink());
            if plain && std::fs::rename(&path, &aside).is_ok() {
                let _ = std::os::unix::fs::symlink(target, &path);
                swaps += 1;
                std::thread::yield_now();
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) {
                    let _ = std::fs::remove_file(&path);
                }
                let _ = std::fs::rename(&aside, &path);
            }
        }
    }
    swaps
}

#[test]
fn random_requests_get_one_reply_each_and_never_reach_outside_the_share() {
    let _serial = serial();
    let mut succeeded = BTreeMap::new();
    for seed in 1..=18u64 {
        let dialect = DIALECTS[seed as usize % 3];
        let types = on_fresh_share(seed, dialect, |config| run_session(seed, dialect, config));
        succeeded
            .entry(dialect)
            .or_insert_with(Vec::new)
            .extend(types);
    }
    // The sessions got past the errors: every request type of each dialect
    // succeeded at least once.
    let linux = [
        8u8, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76,
    ];
    let plan9 = [112u8, 114, 116, 118, 122, 124, 126];
    for (dialect, types) in &succeeded {
        let wanted: Vec<u8> = if *dialect == "9P2000.L" {
            linux
                .iter()
                .chain(&[110, 116, 118, 120, 122])
                .copied()
                .collect()
        } else {
            plan9.iter().chain(&[110, 120]).copied().collect()
        };
        let missing: Vec<u8> = wanted.into_iter().filter(|t| !types.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "{dialect}: never succeeded: {missing:?}"
        );
    }
}

#[test]
fn concurrent_random_requests_on_one_session_neither_hang_nor_leak() {
    let _serial = serial();
    for seed in 1..=9u64 {
        let dialect = DIALECTS[seed as usize % 3];
        on_fresh_share(seed, dialect, |config| {
            run_concurrent_session(seed, dialect, config)
        });
    }
}
