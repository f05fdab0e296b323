//! Lock owners: 100,000 of them, the bound on them, the descriptors they
//! hold.

use super::*;

/// 100,000 lock owners in one session (guest processes locking a byte
/// each of 1,000 files it holds open) at the default bound of 65,536 a
/// session: each lock is granted or refused with ENOLCK, no more than the
/// bound are granted, each owner costs little memory, and the descriptors
/// the owners hold (one each: an owner's locks are on an open file
/// description of its own) stay within the descriptor budget, so another
/// session still attaches, opens and locks. Tversion releases them all.
///
/// The owners are spread over files because each lock request goes
/// through every owner of its file: 100,000 on one file would take a
/// quarter of an hour in a debug build.
#[test]
fn a_hundred_thousand_lock_owners() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let dir = share();
    const FILES: u32 = 1000;
    const OWNERS: u32 = 100_000;
    const BOUND: u32 = 65_536; // Config::max_lock_owners' default
    std::fs::create_dir(dir.path().join("l")).unwrap();
    for i in 0..FILES {
        std::fs::write(dir.path().join("l").join(i.to_string()), b"").unwrap();
    }
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    let fds0 = own_open_fds();
    let mut conn = session(&server);
    for i in 0..FILES {
        conn.walk(ROOT, 10 + i, &["l", &i.to_string()]).ok();
        conn.lopen(10 + i, O_RDWR).ok();
    }
    let (rss0, heap0) = (own_rss(), allocated());
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut first_refusal = None;
    let mut most = 0;
    for owner in 0..OWNERS {
        let fid = 10 + owner % FILES;
        let outcome = match lock(&mut conn, fid, u64::from(owner / FILES), owner + 1, "guest") {
            Ok(LOCK_SUCCESS) => "granted".to_string(),
            Ok(status) => format!("status {status}"),
            Err(e) => std::io::Error::from_raw_os_error(e).to_string(),
        };
        if outcome != "granted" && first_refusal.is_none() {
            first_refusal = Some((owner, outcome.clone()));
        }
        *outcomes.entry(outcome).or_default() += 1;
        if owner % 5000 == 0 {
            most = most.max(own_open_fds().saturating_sub(fds0));
        }
    }
    let locked_in = started.elapsed();
    most = most.max(own_open_fds().saturating_sub(fds0));
    let (rss1, heap1) = (own_rss(), allocated());
    let granted = outcomes.get("granted").copied().unwrap_or(0);
    let enolck = std::io::Error::from_raw_os_error(libc::ENOLCK).to_string();
    let refused = outcomes.get(&enolck).copied().unwrap_or(0);
    let per_owner = heap1.saturating_sub(heap0) / u64::from(granted.max(1));
    eprintln!(
        "{OWNERS} lock owners in {locked_in:.1?}: {outcomes:?}, the first refused: \
         {first_refusal:?}; {} resident, {per_owner} bytes allocated an owner; at most {most} \
         descriptors (budget {budget})",
        mib(rss1.saturating_sub(rss0)),
    );
    // Another session attaches, opens and locks.
    let mut other = InProc::on(&server).framed();
    other.version(MSIZE, "9P2000.L").ok();
    let failed = |step: &'static str| {
        move |e: i32| format!("{step}: {}", std::io::Error::from_raw_os_error(e))
    };
    let served = other
        .attach_as(ROOT, 0)
        .result()
        .map_err(failed("Tattach"))
        .and_then(|_| {
            other
                .walk(ROOT, 2, &["f"])
                .result()
                .map_err(failed("Twalk"))
        })
        .and_then(|_| other.lopen(2, O_RDWR).result().map_err(failed("Tlopen")))
        .and_then(|_| lock(&mut other, 2, 0, 1, "other").map_err(failed("Tlock")));
    assert_eq!(
        served,
        Ok(LOCK_SUCCESS),
        "another session, after {OWNERS} lock owners in one"
    );
    assert_eq!(
        granted + refused,
        OWNERS,
        "only grants and ENOLCK: {outcomes:?}"
    );
    assert!(granted <= BOUND, "{granted} owners granted");
    assert!(
        most <= most_held(budget),
        "{most} descriptors at once for a budget of {budget}"
    );
    assert!(per_owner < 1024, "{per_owner} bytes per lock owner");
    // An owner that has its locks goes on locking.
    assert_eq!(lock(&mut conn, 10, 5000, 1, "guest"), Ok(LOCK_SUCCESS));
    // Tversion drops the owners and their descriptors.
    conn.version(MSIZE, "9P2000.L").ok();
    let left = own_open_fds().saturating_sub(fds0);
    assert!(left <= 8, "{left} descriptors left after Tversion");
    conn.attach_as(ROOT, 0).ok();
    conn.walk(ROOT, 2, &["l", "0"]).ok();
    conn.lopen(2, O_RDWR).ok();
    assert_eq!(lock(&mut conn, 2, 0, 1, "guest"), Ok(LOCK_SUCCESS));
}

/// A session's lock owners beyond its bound get ENOLCK (an owner it has
/// goes on locking); a client id longer than 255 bytes is EINVAL; a clunk
/// frees the owners that locked through the fid; another session has its
/// own bound.
#[test]
fn lock_owners_beyond_the_bound_are_enolck() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    config.max_lock_owners = 8;
    let server = Arc::new(Server::new(&config).unwrap());
    let mut conn = session(&server);
    conn.walk(ROOT, 2, &["f"]).ok();
    conn.lopen(2, O_RDWR).ok();
    for proc_id in 1..=8 {
        assert_eq!(
            lock(&mut conn, 2, 10 * u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(lock(&mut conn, 2, 90, 9, "guest"), Err(libc::ENOLCK));
    assert_eq!(lock(&mut conn, 2, 90, 1, "other-guest"), Err(libc::ENOLCK));
    assert_eq!(lock(&mut conn, 2, 31, 3, "guest"), Ok(LOCK_SUCCESS));
    // The client id: the Linux client's nodename is at most 64 bytes.
    let long = "h".repeat(256);
    assert_eq!(lock(&mut conn, 2, 31, 3, &long), Err(libc::EINVAL));
    assert_eq!(getlock(&mut conn, 2, 3, &long), Err(libc::EINVAL));
    let longest = "h".repeat(255);
    getlock(&mut conn, 2, 3, &longest).unwrap();
    // Another session: owners of its own.
    let mut other = session(&server);
    other.walk(ROOT, 2, &["f"]).ok();
    other.lopen(2, O_RDWR).ok();
    assert_eq!(lock(&mut other, 2, 1000, 1, &longest), Ok(LOCK_SUCCESS));
    for proc_id in 2..=8 {
        assert_eq!(
            lock(&mut other, 2, 1000 + u64::from(proc_id), proc_id, "g"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(lock(&mut other, 2, 2000, 9, "g"), Err(libc::ENOLCK));
    // The fid goes, and its owners with it.
    conn.clunk(2).ok();
    conn.walk(ROOT, 3, &["f"]).ok();
    conn.lopen(3, O_RDWR).ok();
    for proc_id in 11..=18 {
        assert_eq!(
            lock(&mut conn, 3, 10 * u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(lock(&mut conn, 3, 500, 19, "guest"), Err(libc::ENOLCK));
}

/// The descriptors lock owners hold count against the descriptors the fids
/// may hold: with 199 of them, idle fids give theirs up sooner, and the
/// process holds no more descriptors than the budget allows. They count
/// among the session's open files too (half the budget by default): with
/// the open fid, 199 owners fill them, and one more is ENOLCK.
#[test]
fn lock_descriptors_count_against_the_descriptor_budget() {
    let _s = serial();
    let dir = share();
    let mut config = config(dir.path());
    const BUDGET: usize = 400;
    config.fid_descriptors = Some(BUDGET);
    let server = Arc::new(Server::new(&config).unwrap());
    let before = own_open_fds();
    let mut conn = session(&server);
    conn.walk(ROOT, 2, &["f"]).ok();
    conn.lopen(2, O_RDWR).ok();
    for proc_id in 1..=199 {
        assert_eq!(
            lock(&mut conn, 2, u64::from(proc_id), proc_id, "guest"),
            Ok(LOCK_SUCCESS)
        );
    }
    assert_eq!(lock(&mut conn, 2, 200, 200, "guest"), Err(libc::ENOLCK));
    conn.walk(ROOT, 3, &["f"]).ok();
    assert_eq!(conn.lopen(3, O_RDWR).errno(), Some(libc::EMFILE));
    conn.clunk(3).ok();
    // An owner that has its descriptor goes on locking.
    assert_eq!(lock(&mut conn, 2, 300, 5, "guest"), Ok(LOCK_SUCCESS));
    // Sweeps close idle fids' descriptors whenever the budget is passed:
    // the most held at once is what counts.
    let mut most = 0;
    for fid in 10..2010 {
        conn.walk(ROOT, fid, &["f"]).ok();
        if fid % 5 == 0 {
            most = most.max(own_open_fds() - before);
        }
    }
    assert!(
        most <= BUDGET + 8,
        "{most} descriptors at once for a budget of {BUDGET}"
    );
}
