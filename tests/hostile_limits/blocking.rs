//! Requests outstanding and blocking locks: a connection or the whole
//! worker pool held up by a lock the host holds, other clients served.

use super::*;

/// 1,024 blocking Tlocks sent at once on one socket connection, for a byte
/// the host holds locked: the connection's thread serves one request at a
/// time, so it is held up in the first (the server waits a grace period of
/// 500 ms for the lock, then answers BLOCKED and goes on with the next);
/// the requests behind it wait in the socket, costing the server nothing;
/// another connection is served meanwhile, locks included. Once the host
/// lets go, every request gets its one reply, in order.
#[test]
fn requests_behind_a_blocked_lock_hold_up_only_their_connection() {
    let _s = serial();
    let dir = share();
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    // The host's lock: an open file description lock, which conflicts with
    // the server's own (on descriptors of their own) in this process too.
    let host = File::options()
        .read(true)
        .write(true)
        .open(dir.path().join("f"))
        .unwrap();
    ofd_lock(host.as_fd(), libc::F_WRLCK);
    let (mut a, a_unread, a_thread) = served_by(&server);
    mount(&mut a);
    a.walk(ROOT, 2, &["f"]);
    a.lopen(2, O_RDWR);
    const OUTSTANDING: u16 = 1024;
    let mut burst = Vec::new();
    for tag in 0..OUTSTANDING {
        burst.extend(tlock(tag, 2, 0, LOCK_FLAGS_BLOCK, 1));
    }
    let one = burst.len() / usize::from(OUTSTANDING);
    let heap0 = allocated();
    a.socket().write_all(&burst).unwrap();
    // The connection takes the first request, and waits in it.
    wait_until("the connection takes a request", || {
        unread(a_unread.as_fd()) < burst.len()
    });
    let held_from = Instant::now();

    // Another connection is served meanwhile, locks included.
    let (mut b, _, b_thread) = served_by(&server);
    use_file(&mut b, &["d", "entry-000"], 0);
    let b_served_in = held_from.elapsed();
    let taken = (burst.len() - unread(a_unread.as_fd())) / one;
    let answered = unread(a.socket().as_fd()) / 8; // an Rlock is 8 bytes
    let grown = allocated().saturating_sub(heap0);
    // The first answer: BLOCKED, once its grace period is over; the
    // connection then waits in the next.
    let first = read_frame(a.socket());
    let first_in = held_from.elapsed();
    assert_eq!(tag_of(&first), 0);
    assert_eq!(
        lock_status(&first),
        LOCK_BLOCKED,
        "granted while the host holds it"
    );
    ofd_lock(host.as_fd(), libc::F_UNLCK);
    let released_after = held_from.elapsed();
    let mut statuses = vec![LOCK_BLOCKED];
    for tag in 1..OUTSTANDING {
        let reply = read_frame(a.socket());
        assert_eq!(tag_of(&reply), tag, "replies in order");
        statuses.push(lock_status(&reply));
    }
    let blocked = statuses.iter().filter(|&&s| s == LOCK_BLOCKED).count();
    eprintln!(
        "{OUTSTANDING} blocking Tlocks on one connection: another connection served in \
         {b_served_in:.1?}, when {taken} of them were taken and {answered} answered; the \
         first answered BLOCKED after {first_in:.1?}; the host let go after \
         {released_after:.1?}; {blocked} BLOCKED in all; {grown} bytes allocated meanwhile"
    );
    assert!(
        taken <= 2 && answered <= 1,
        "{taken} requests taken, {answered} answered while the host held the lock"
    );
    // Granted from the one in its grace period when the host let go on
    // (that one may just have been answered BLOCKED).
    assert!(blocked <= 2, "{blocked} BLOCKED: {statuses:?}");
    assert!(
        statuses[2..].iter().all(|&s| s == LOCK_SUCCESS),
        "{statuses:?}"
    );
    assert!(
        grown < 256 << 10,
        "{grown} bytes allocated for waiting requests"
    );
    // One reply each: the next reply answers the next request.
    a.clunk(2);
    drop((a, b));
    a_thread.join().unwrap().unwrap();
    b_thread.join().unwrap().unwrap();
}

/// An open file description lock (F_OFD_SETLK) of all of a file, or its
/// release.
fn ofd_lock(fd: BorrowedFd<'_>, lock_type: i32) {
    // SAFETY: flock is plain data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = lock_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl on a descriptor this test owns, with a valid flock.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    assert_eq!(r, 0, "F_OFD_SETLK: {}", std::io::Error::last_os_error());
}

/// The daemon's worker pool, each worker held up in a blocking Tlock: the
/// guest (a VMM) fills its whole virtqueue, 1,024 chains, with Tlocks for a
/// byte a host process holds locked; a client of the daemon's `--listen`
/// socket is still served (its connection has a thread of its own), and
/// the daemon's threads and memory do not grow. Once the host lets go,
/// every chain comes back once, with its reply.
///
/// The guest's own other requests wait meanwhile: its queue is full, and
/// a request behind the Tlocks waits for a worker (each takes up to the
/// 500 ms grace period, 4 at a time).
#[test]
fn blocking_locks_on_every_worker_leave_other_clients_served() {
    use common::{Area, Slot, Vmm, QSIZE};
    let _s = serial();
    let dir = share();
    let sockets = tempfile::tempdir().unwrap();
    let vhost = sockets.path().join("vu.sock");
    let listen = sockets.path().join("9p.sock");
    const WORKERS: usize = 4;
    let daemon = Daemon::builder(dir.path())
        .socket_path(&vhost)
        .tag("t")
        .listen_unix(&listen)
        .arg("--no-root-squash")
        .arg(format!("--thread-pool-size={WORKERS}"))
        .start();
    let mut vmm = Vmm::connect(&vhost, 16 << 20, true);
    let slots: Vec<Slot> = (0..QSIZE)
        .map(|_| vmm.slot(Area::one(128), Area::one(128)))
        .collect();
    let write = |vmm: &Vmm, slot: &Slot, frame: &[u8]| {
        vmm.write(slot.request, frame);
    };
    let reply = |vmm: &Vmm, slot: &Slot| {
        let mut frame = vec![0u8; 128];
        vmm.read(slot.reply, &mut frame);
        let size = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        frame.truncate(size);
        frame
    };
    let call = |vmm: &mut Vmm, msg: Vec<u8>| {
        write(vmm, &slots[0], &msg);
        vmm.roundtrip(slots[0].head);
        let frame = reply(vmm, &slots[0]);
        check_reply(&msg, &frame).unwrap_or_else(|e| panic!("T-message {}: {e:?}", msg[4]));
    };
    call(
        &mut vmm,
        T::new(TVERSION, 1).u32(8192).str("9P2000.L").done(),
    );
    let attach = T::new(TATTACH, 1)
        .u32(ROOT)
        .u32(NOFID)
        .str("root")
        .str("")
        .u32(0)
        .done();
    call(&mut vmm, attach);
    let walk = T::new(TWALK, 1).u32(ROOT).u32(2).u16(1).str("f").done();
    call(&mut vmm, walk);
    call(&mut vmm, T::new(TLOPEN, 1).u32(2).u32(O_RDWR).done());
    // A host process (this one) locks all of f.
    let host = File::options()
        .read(true)
        .write(true)
        .open(dir.path().join("f"))
        .unwrap();
    ofd_lock(host.as_fd(), libc::F_WRLCK);
    let pid = daemon.serving_pid();
    let threads0 = status_field(pid, "Threads:");
    let rss0 = status_field(pid, "RssAnon:");
    // The whole queue: blocking write locks of byte 0 by one guest process.
    for (i, slot) in slots.iter().enumerate() {
        write(&vmm, slot, &tlock(i as u16, 2, 0, LOCK_FLAGS_BLOCK, 1));
        vmm.post(slot.head);
    }
    vmm.kick();
    let held_from = Instant::now();

    // A client of the --listen socket, meanwhile.
    let mut client = connect(&listen);
    use_file(&mut client, &["d", "entry-000"], 0);
    let served_in = held_from.elapsed();
    let threads1 = status_field(pid, "Threads:");
    let rss1 = status_field(pid, "RssAnon:");
    drop(client);
    // The chains come back BLOCKED, a worker's worth at a time after
    // its grace period, while the host holds on.
    let mut statuses: Vec<Option<u8>> = vec![None; slots.len()];
    let take = |vmm: &mut Vmm, statuses: &mut Vec<Option<u8>>| {
        let mut heads = Vec::new();
        vmm.reap(|head, _| heads.push(head));
        for head in heads {
            let i = usize::from(head);
            let frame = reply(vmm, &slots[i]);
            assert_eq!(tag_of(&frame), i as u16, "reply tag");
            assert!(statuses[i].is_none(), "chain {head} returned twice");
            statuses[i] = Some(lock_status(&frame));
        }
    };
    vmm.wait();
    let first_in = held_from.elapsed();
    take(&mut vmm, &mut statuses);
    let early: Vec<u8> = statuses.iter().flatten().copied().collect();
    assert!(
        early.iter().all(|&s| s == LOCK_BLOCKED),
        "granted while the host holds the lock"
    );
    ofd_lock(host.as_fd(), libc::F_UNLCK);
    let released_after = held_from.elapsed();
    while statuses.iter().any(Option::is_none) {
        vmm.wait();
        take(&mut vmm, &mut statuses);
    }
    let drained_in = held_from.elapsed() - released_after;
    let blocked = statuses
        .iter()
        .filter(|&&s| s == Some(LOCK_BLOCKED))
        .count();
    eprintln!(
        "{QSIZE} blocking Tlocks on {WORKERS} workers: a --listen client served in \
         {served_in:.1?}; the first chains back (BLOCKED) after {first_in:.1?}, {} of them; \
         the host let go after {released_after:.1?}, the rest back {drained_in:.1?} later, \
         {blocked} BLOCKED in all; daemon threads {threads0} -> {threads1} with the client, \
         anonymous memory {rss0} -> {rss1} kB",
        early.len(),
    );
    assert!(
        served_in < first_in,
        "the client was served after the first worker was free"
    );
    assert_eq!(
        threads1,
        threads0 + 1,
        "threads but the client's connection's"
    );
    assert!(
        rss1 < rss0 + 8192,
        "{} kB more anonymous memory",
        rss1.saturating_sub(rss0)
    );
    // Granted once the host let go: BLOCKED only for those answered before
    // (and one in its grace period per worker then).
    assert!(
        blocked <= early.len() + WORKERS,
        "{blocked} BLOCKED, {} before the host let go",
        early.len()
    );
}
