//! Fids: a million in one session, the bound on them, idle fids'
//! descriptors closed whichever session asks.

use super::*;

/// A million fids in one session at the default bounds (4 Mi fids a
/// session; the descriptor budget of the open file limit): each costs
/// a few hundred bytes once its descriptor is closed, the process holds
/// no more descriptors than the budget, a second session is answered
/// meanwhile, and clunks and Tversion give the memory back.
///
/// The walks come from two threads, as a pool's workers serve one
/// session's requests. In a debug build they take about 25 µs of CPU
/// each; a sweep of idle descriptors looks only at the fids that hold one
/// (a budget's worth at most), not at the million: the whole takes about
/// half a minute of CPU (it took a minute and a half when each sweep went
/// through every fid of the session).
#[test]
fn a_million_fids_in_one_session() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let dir = share();
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    let fds0 = own_open_fds();
    let mut conn = session(&server);
    // The session's fids: ROOT and fids 2..=FIDS.
    const FIDS: u32 = 1_000_000;
    const WARM: u32 = 10_000;
    for fid in 2..2 + WARM {
        conn.walk(ROOT, fid, &["f"]).ok();
    }
    let (rss0, heap0) = (own_rss(), allocated());
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let (walked, other) = std::thread::scope(|scope| {
        let other = scope.spawn(|| second_session_meanwhile(&server, &done));
        let walkers: Vec<_> = (0..2)
            .map(|first| {
                let mut walker = conn.twin();
                let done = &done;
                scope.spawn(move || {
                    let mut most = 0;
                    for (i, fid) in (2 + WARM + first..=FIDS).step_by(2).enumerate() {
                        if let Err(e) = walker.walk(ROOT, fid, &["f"]).result() {
                            done.store(true, Ordering::Relaxed);
                            let open = own_open_fds().saturating_sub(fds0);
                            let e = std::io::Error::from_raw_os_error(e);
                            return Err(format!("walk to fid {fid}: {e}, {open} descriptors open"));
                        }
                        if first == 0 && i % 20_000 == 0 {
                            most = most.max(own_open_fds().saturating_sub(fds0));
                        }
                        if done.load(Ordering::Relaxed) {
                            return Err("the other walker failed".into());
                        }
                    }
                    Ok(most)
                })
            })
            .collect();
        let mut walked: Vec<Result<usize, String>> =
            walkers.into_iter().map(|w| w.join().unwrap()).collect();
        // The walker that failed first, if one did.
        walked.sort_by_key(|w| w.as_ref().err().map(|e| e.starts_with("the other")));
        done.store(true, Ordering::Relaxed);
        (walked, other.join().unwrap())
    });
    let most = walked
        .into_iter()
        .collect::<Result<Vec<usize>, String>>()
        .unwrap_or_else(|e| panic!("{e} (budget {budget})"))
        .into_iter()
        .max()
        .unwrap();
    let (rounds, longest) = other.unwrap();
    let walked_in = started.elapsed();
    let (rss1, heap1) = (own_rss(), allocated());
    let n = u64::from(FIDS - 1 - WARM);
    let per_fid = heap1.saturating_sub(heap0) / n;
    eprintln!(
        "{FIDS} fids in {walked_in:.1?}: {} resident, {} allocated ({per_fid} bytes a fid); \
         at most {most} descriptors for a budget of {budget}; the other session: {rounds} \
         rounds, the longest {longest:.1?}",
        mib(rss1.saturating_sub(rss0)),
        mib(heap1.saturating_sub(heap0)),
    );
    assert!(per_fid < 1024, "{per_fid} bytes per idle fid");
    assert!(
        rss1.saturating_sub(rss0) / n < 2048,
        "{} resident for {n} fids",
        mib(rss1.saturating_sub(rss0))
    );
    assert!(
        most <= most_held(budget),
        "{most} descriptors at once for a budget of {budget}"
    );
    assert!(
        longest < Duration::from_secs(2),
        "the other session waited {longest:?}"
    );
    // The fids are all there, and still lead to their file.
    for fid in [2, FIDS / 2, FIDS] {
        conn.getattr(fid, GETATTR_BASIC).ok();
    }
    assert_eq!(conn.walk(ROOT, FIDS, &["f"]).errno(), Some(libc::EEXIST));

    // 100,000 clunked one by one give their memory back; Tversion the rest.
    const CLUNKED: u32 = 100_000;
    for fid in 2..2 + CLUNKED {
        conn.clunk(fid).ok();
    }
    let heap2 = allocated();
    let freed = heap1.saturating_sub(heap2) / u64::from(CLUNKED);
    conn.version(MSIZE, "9P2000.L").ok();
    let (rss3, heap3) = (own_rss(), allocated());
    eprintln!(
        "{CLUNKED} clunks: {freed} bytes a fid freed; after Tversion {} allocated, {} resident \
         more than with {WARM} fids",
        mib(heap3.saturating_sub(heap0)),
        mib(rss3.saturating_sub(rss0)),
    );
    assert!(freed >= per_fid / 2, "a clunk freed {freed} bytes");
    assert!(
        heap3 < heap0 + MIB,
        "{} still allocated after Tversion",
        mib(heap3.saturating_sub(heap0))
    );
    let left = own_open_fds().saturating_sub(fds0);
    assert!(left <= 4, "{left} descriptors left after Tversion");
    conn.attach_as(ROOT, 0).ok();
    conn.walk(ROOT, 2, &["f"]).ok();
}

/// A session at its bound of fids gets EMFILE for every new fid number
/// (Tattach, Twalk, Txattrwalk), while replacing a fid (a walk onto
/// itself, Tlcreate) still works; a clunk makes room; another session has
/// a bound of its own; 50,000 walks refused at the bound keep nothing.
#[test]
fn new_fids_beyond_the_bound_are_emfile() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    config.max_fids = 64;
    let server = Arc::new(Server::new(&config).unwrap());
    let mut conn = session(&server);
    // ROOT, a directory fid 2 and files 3..=64: 64 fids.
    conn.walk(ROOT, 2, &[]).ok();
    for fid in 3..=64 {
        conn.walk(ROOT, fid, &["f"]).ok();
    }
    assert_eq!(conn.walk(ROOT, 65, &["f"]).errno(), Some(libc::EMFILE));
    assert_eq!(conn.walk(ROOT, 65, &[]).errno(), Some(libc::EMFILE));
    assert_eq!(conn.attach_as(65, 0).errno(), Some(libc::EMFILE));
    assert_eq!(xattrwalk(&mut conn, 3, 65, ""), Err(libc::EMFILE));
    // A flood of walks to new fids at the bound: all refused, nothing kept.
    let heap0 = allocated();
    for fid in 200_000..250_000 {
        assert_eq!(conn.walk(ROOT, fid, &["f"]).errno(), Some(libc::EMFILE));
    }
    let grown = allocated().saturating_sub(heap0);
    assert!(grown < MIB, "{grown} bytes more after refused walks");
    // Replacing fids is not a new one.
    conn.walk(3, 3, &[]).ok();
    conn.walk(ROOT, 4, &["d"]).result().unwrap_err(); // EEXIST: newfid in use
    let create = Tlcreate {
        fid: 2,
        name: "new".into(),
        flags: O_RDWR,
        mode: 0o644,
        gid: 0,
    };
    conn.call(Tmessage::Lcreate(create)).ok();
    // Another session is not held up by this one.
    let mut other = session(&server);
    for fid in 2..=64 {
        other.walk(ROOT, fid, &["d"]).ok();
    }
    assert_eq!(other.walk(ROOT, 65, &["d"]).errno(), Some(libc::EMFILE));
    // Both hold the server's total (twice the bound): a third session
    // gets ENFILE until one of them lets a fid go.
    let mut third = InProc::on(&server).framed();
    third.version(MSIZE, "9P2000.L").ok();
    assert_eq!(third.attach_as(ROOT, 0).errno(), Some(libc::ENFILE));
    other.clunk(64).ok();
    third.attach_as(ROOT, 0).ok();
    assert_eq!(other.walk(ROOT, 64, &["d"]).errno(), Some(libc::ENFILE));
    third.clunk(ROOT).ok();
    // A clunk makes room for one.
    conn.clunk(10).ok();
    conn.walk(ROOT, 65, &["f"]).ok();
    assert_eq!(conn.walk(ROOT, 66, &["f"]).errno(), Some(libc::EMFILE));
    // Tversion starts over.
    conn.version(MSIZE, "9P2000.L").ok();
    conn.attach_as(ROOT, 0).ok();
    conn.walk(ROOT, 2, &["f"]).ok();
}

/// Idle fids' descriptors are closed once the fids hold more than the
/// budget, whichever session asks in between: a session walking to new
/// fids holds no more descriptors than the budget while another session
/// sends a request after each of its walks.
#[test]
fn another_session_does_not_put_off_the_sweeps() {
    let _s = serial();
    nofile_limit();
    let dir = share();
    let mut config = config(dir.path());
    const BUDGET: usize = 2000;
    config.fid_descriptors = Some(BUDGET);
    let server = Arc::new(Server::new(&config).unwrap());
    let fds0 = own_open_fds();
    let mut walker = session(&server);
    let mut other = session(&server);
    let mut most = 0;
    for fid in 2..10_000 {
        walker.walk(ROOT, fid, &["f"]).ok();
        other.getattr(ROOT, GETATTR_BASIC).ok();
        if fid % 250 == 0 {
            most = most.max(own_open_fds().saturating_sub(fds0));
        }
    }
    assert!(
        most <= most_held(BUDGET),
        "{most} descriptors at once for a budget of {BUDGET}"
    );
}

/// Clones of the root fid and Txattrwalk fids give up their descriptors
/// when idle, like walked fids: a client making thousands of them holds no
/// more descriptors than the budget (they used to pin one each, until the
/// process had none left for any session).
#[test]
fn root_clones_and_xattr_fids_do_not_pin_descriptors() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    const BUDGET: usize = 300;
    config.fid_descriptors = Some(BUDGET);
    let server = Arc::new(Server::new(&config).unwrap());
    let before = own_open_fds();
    let mut conn = session(&server);
    conn.walk(ROOT, 2, &["f"]).ok();
    let mut most = 0;
    for fid in 10..1510 {
        conn.walk(ROOT, fid, &[]).ok();
        xattrwalk(&mut conn, 2, fid + 10_000, "").unwrap();
        if fid % 5 == 0 {
            most = most.max(own_open_fds() - before);
        }
    }
    assert!(
        most <= BUDGET + 8,
        "{most} descriptors at once for a budget of {BUDGET}"
    );
    // Released and found again: still the root and the file.
    conn.walk(10, 3, &["d"]).ok();
    xattrwalk(&mut conn, 2, 4, "").unwrap();
    let mut other = session(&server);
    other.walk(ROOT, 2, &["f"]).ok();
}
