//! Open directories: 100,000 of them, what each costs, large ones read
//! whole.

use super::*;

/// 100,000 directories opened by one session (each walked to on a fid of
/// its own) at the default bound on its open files, half the descriptor
/// budget: the opens past it are EMFILE, the process holds no more
/// descriptors than the budget, another session opens and reads meanwhile,
/// and Tversion gives every descriptor back.
#[test]
fn open_directories_past_the_default_bound_are_emfile() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let bound = (budget / 2).max(16); // Config::max_open_files' default
    let dir = share();
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    let fds0 = own_open_fds();
    let mut conn = session(&server);
    let mut other = session(&server);
    const ATTEMPTS: u32 = 100_000;
    assert!(
        bound < ATTEMPTS as usize,
        "a bound of {bound} is never reached"
    );
    let (mut opened, mut most) = (0, 0);
    let started = Instant::now();
    for i in 0..ATTEMPTS {
        let fid = 10 + i;
        conn.walk(ROOT, fid, &["e"]).ok();
        match conn.lopen(fid, 0).result() {
            Ok(_) => opened += 1,
            Err(e) => assert_eq!(e, libc::EMFILE, "open {i}"),
        }
        if i % 5000 == 0 || i as usize == bound {
            most = most.max(own_open_fds().saturating_sub(fds0));
        }
        if i as usize == bound {
            // Meanwhile, another session opens a directory and a file and
            // reads them.
            other.walk(ROOT, 2, &["d"]).ok();
            other.lopen(2, 0).ok();
            assert_eq!(list(&mut other, 2, 8192).len(), 22);
            other.walk(ROOT, 3, &["f"]).ok();
            other.lopen(3, 0).ok();
            assert_eq!(other.read_count(3, 0, 100).ok().data(), b"data");
            other.clunk(2).ok();
            other.clunk(3).ok();
        }
    }
    eprintln!(
        "{ATTEMPTS} directories opened in {:.1?}: {opened} open (bound {bound}), at most \
         {most} descriptors (budget {budget})",
        started.elapsed()
    );
    assert_eq!(opened, bound, "directories open at once");
    assert!(
        most <= most_held(budget),
        "{most} descriptors at once for a budget of {budget}"
    );
    // A clunk makes room for one more.
    conn.clunk(10).ok();
    conn.lopen(10 + ATTEMPTS - 1, 0).ok();
    assert_eq!(conn.lopen(10 + ATTEMPTS - 2, 0).errno(), Some(libc::EMFILE));
    conn.version(MSIZE, "9P2000.L").ok();
    let left = own_open_fds().saturating_sub(fds0);
    assert!(left <= 4, "{left} descriptors left after Tversion");
    conn.attach_as(ROOT, 0).ok();
    conn.walk(ROOT, 2, &["e"]).ok();
    conn.lopen(2, 0).ok();
}

/// With the bound on open files raised to what the open file limit
/// allows, up to 100,000: each open directory that was read costs a few
/// KiB (its cursor's first buffer), not 64; the bound still holds, and
/// another session is served.
///
/// Each open directory holds a descriptor; the budget keeps a thousand
/// for other sessions. A hard limit below about 116,000 descriptors (this
/// process cannot raise it) allows fewer than 100,000: the test then opens
/// as many as it allows, and says so.
#[test]
fn open_directories_cost_little() {
    let _s = serial();
    let budget = default_budget(nofile_limit());
    let n = 100_000.min(budget.saturating_sub(1000));
    if n < 100_000 {
        eprintln!("the hard open file limit allows {n} open directories, not 100,000");
    }
    let dir = share();
    let mut config = Config::new(dir.path());
    config.max_open_files = Some(n);
    let server = Arc::new(Server::new(&config).unwrap());
    let fds0 = own_open_fds();
    let mut conn = session(&server);
    const WARM: usize = 100;
    let open = |conn: &mut InProc, i: usize| {
        let fid = 10 + i as u32;
        conn.walk(ROOT, fid, &["d"]).ok();
        conn.lopen(fid, 0).ok();
        assert_eq!(readdir(conn, fid, 0, 8192).unwrap().len(), 22);
    };
    for i in 0..WARM {
        open(&mut conn, i);
    }
    let (rss0, heap0) = (own_rss(), allocated());
    let started = Instant::now();
    for i in WARM..n {
        open(&mut conn, i);
    }
    let (rss1, heap1) = (own_rss(), allocated());
    let most = own_open_fds().saturating_sub(fds0);
    let measured = (n - WARM) as u64;
    let per_dir = heap1.saturating_sub(heap0) / measured;
    eprintln!(
        "{n} open directories in {:.1?}: {} bytes resident, {per_dir} bytes allocated each; \
         {most} descriptors (budget {budget})",
        started.elapsed(),
        rss1.saturating_sub(rss0) / measured,
    );
    assert!(per_dir < 8192, "{per_dir} bytes per open directory");
    assert!(
        most <= most_held(budget),
        "{most} descriptors for a budget of {budget}"
    );
    // The raised bound is a bound.
    conn.walk(ROOT, 5, &["d"]).ok();
    assert_eq!(conn.lopen(5, 0).errno(), Some(libc::EMFILE));
    // Another session is served, and opens a file.
    let mut other = session(&server);
    other.walk(ROOT, 2, &["f"]).ok();
    other.lopen(2, 0).ok();
    assert_eq!(other.read_count(2, 0, 100).ok().data(), b"data");
}

/// A directory of 3,000 entries (names up to 255 bytes) reads whole and
/// once each through the growing cursor: in large and small Treaddirs,
/// again from offset 0, and as 9P2000 stat records.
#[test]
fn large_directories_read_whole_as_the_cursor_grows() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    let mut expected: BTreeSet<String> = [".", ".."].iter().map(|s| s.to_string()).collect();
    for i in 0..3000 {
        let name = format!("{i:05}-{}", "x".repeat(i % 250));
        std::fs::write(big.join(&name), b"").unwrap();
        expected.insert(name);
    }
    let long = "y".repeat(255);
    std::fs::write(big.join(&long), b"").unwrap();
    expected.insert(long);
    let server = Arc::new(Server::new(&config(dir.path())).unwrap());
    let mut conn = session(&server);
    conn.walk(ROOT, 2, &["big"]).ok();
    conn.lopen(2, 0).ok();
    for count in [512_000 - 11, 300, 4096, 70_000, 512_000 - 11] {
        let names = list(&mut conn, 2, count);
        assert_eq!(names.len(), expected.len(), "count {count}: duplicates?");
        let got: BTreeSet<String> = names.into_iter().collect();
        assert_eq!(got, expected, "count {count}");
    }
    // A cookie from the middle, after the cursor moved on.
    let first = readdir(&mut conn, 2, 0, 2000).unwrap();
    let (cookie, _) = first[first.len() / 2];
    let from_middle = readdir(&mut conn, 2, cookie, 2000).unwrap();
    assert_eq!(from_middle[0].1, first[first.len() / 2 + 1].1);

    // 9P2000: the same names as stat records, in large and small reads.
    expected.remove(".");
    expected.remove("..");
    let mut plan9 = session_in(&server, "9P2000");
    plan9.walk(ROOT, 2, &["big"]).ok();
    plan9.call(Tmessage::Open(Topen { fid: 2, mode: 0 })).ok();
    for count in [500_000u32, 1000, 64 * 1024] {
        let mut names = Vec::new();
        let mut offset = 0u64;
        loop {
            let read = Tread {
                fid: 2,
                offset,
                count,
            };
            let reply = plan9.call(Tmessage::Read(read)).ok();
            let data = reply.data();
            if data.is_empty() {
                break;
            }
            let mut d = Decoder::new(data);
            while d.remaining() > 0 {
                let stat: Stat = d.decode().unwrap();
                names.push(String::from_utf8_lossy(stat.name.as_bytes()).into_owned());
            }
            offset += data.len() as u64;
        }
        assert_eq!(names.len(), expected.len(), "9P2000 count {count}");
        let got: BTreeSet<String> = names.into_iter().collect();
        assert_eq!(got, expected, "9P2000 count {count}");
    }
}
