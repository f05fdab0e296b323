//! The socket transport: idle connections, peers sending a byte at a
//! time, connections beyond the bound.

use super::*;

/// 1,000 idle connections to the daemon's `--listen unix:` socket, with
/// the default --max-connections (64): the first 64 are served, each
/// beyond is closed at once (its client reads end of file without sending
/// anything), the daemon's threads and memory grow only by what 64
/// connections take; once one leaves, a new client is served in its place.
#[test]
fn a_thousand_idle_connections() {
    let _s = serial();
    nofile_limit(); // room for the clients' 1,000 descriptors
    let dir = share();
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("9p.sock");
    let daemon = Daemon::builder(dir.path())
        .listen_unix(&socket)
        .arg("--no-root-squash")
        .stderr_to_file()
        .start();
    const SERVED: usize = 64; // --max-connections' default
    const CONNECTIONS: usize = 1000;
    // A first client, served and gone: the daemon is up and serving.
    let mut first = connect(&socket);
    mount(&mut first);
    let pid = daemon.serving_pid();
    let with_first = status_field(pid, "Threads:");
    drop(first);
    wait_until("the first connection's thread ends", || {
        status_field(pid, "Threads:") < with_first
    });
    let threads0 = status_field(pid, "Threads:");
    let rss0 = status_field(pid, "VmRSS:");
    let started = Instant::now();
    let mut peers: Vec<Peer> = (0..CONNECTIONS).map(|_| connect(&socket)).collect();
    let connected_in = started.elapsed();
    // Accepted in order: those beyond the first 64 are closed.
    let closed = |peer: &mut Peer| {
        let mut byte = [0u8; 1];
        match peer.socket().read(&mut byte) {
            Ok(n) => n == 0,
            Err(e) => e.raw_os_error() == Some(libc::ECONNRESET),
        }
    };
    for (i, peer) in peers.iter_mut().enumerate().skip(SERVED) {
        assert!(closed(peer), "connection {i} not closed");
    }
    let refused_in = started.elapsed();
    let threads1 = status_field(pid, "Threads:");
    let rss1 = status_field(pid, "VmRSS:");
    // Those served answer, idle as they were.
    for peer in &mut peers[..SERVED] {
        mount(peer);
    }
    eprintln!(
        "{CONNECTIONS} connections in {connected_in:.1?}, those refused closed within \
         {refused_in:.1?}; daemon threads {threads0} -> {threads1}, resident {rss0} -> {rss1} kB"
    );
    assert_eq!(threads1, threads0 + SERVED as u64, "daemon threads");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "{} kB more resident for {SERVED} idle connections",
        rss1.saturating_sub(rss0)
    );
    // One leaves; once its thread has ended, a new client is served in its
    // place, and the next is refused again.
    peers.truncate(SERVED);
    drop(peers.remove(0));
    wait_until("the connection's thread ends", || {
        status_field(pid, "Threads:") < threads1
    });
    let mut new = connect(&socket);
    use_file(&mut new, &["f"], 0);
    assert!(closed(&mut connect(&socket)), "one more than 64 served");
    drop((new, peers));
    wait_until("every connection's thread ends", || {
        status_field(pid, "Threads:") == threads0
    });
    let log = daemon.log_text();
    let warnings = log.matches("refusing 9P connection").count() as u64;
    let most = (started.elapsed().as_secs() + 1) * u64::from(vhost_user_9p::ratelimit::PER_SECOND);
    assert!(
        (1..=most).contains(&warnings),
        "{warnings} warnings for {} refused connections:\n{log}",
        CONNECTIONS - SERVED + 1
    );
}

/// Peers that announce a 4 MiB message and send it a byte at a time (a
/// real one would send a byte a second): the daemon takes each byte as it
/// comes and holds next to nothing for them, the announced size is never
/// allocated, and another connection is served meanwhile.
///
/// Each byte is sent once the server has taken the one before (the server's
/// end of the connection has nothing unread), so when the test measures,
/// each connection's thread has read the size and the header that follows
/// and is waiting for the body.
#[test]
fn peers_sending_a_4_mib_message_a_byte_at_a_time_hold_little() {
    let _s = serial();
    let dir = share();
    let server = Arc::new(Server::new(&Config::new(dir.path())).unwrap());
    const PEERS: usize = 16;
    const ANNOUNCED: u32 = 4 << 20;
    // A Twrite of 4 MiB: its size, type, tag, fid, offset and count, then
    // the first bytes of its data.
    let mut message = ANNOUNCED.to_le_bytes().to_vec();
    message.push(TWRITE);
    message.extend_from_slice(&1u16.to_le_bytes());
    message.extend_from_slice(&ROOT.to_le_bytes());
    message.extend_from_slice(&0u64.to_le_bytes());
    message.extend_from_slice(&(ANNOUNCED - 23).to_le_bytes());
    message.resize(64, b'x');
    let (rss0, heap0) = (own_rss(), allocated());
    let mut peers: Vec<_> = (0..PEERS).map(|_| served_by(&server)).collect();
    let started = Instant::now();
    for byte in message.chunks(1) {
        for (peer, _, _) in &mut peers {
            peer.socket().write_all(byte).unwrap();
        }
        for (_, unread_by_server, _) in &peers {
            wait_until("the server takes the byte", || {
                unread(unread_by_server.as_fd()) == 0
            });
        }
        // Paces the sender (a slow peer).
        std::thread::sleep(Duration::from_millis(5));
    }
    let (rss1, heap1) = (own_rss(), allocated());
    // Another connection is served meanwhile.
    let (mut other, _, other_thread) = served_by(&server);
    use_file(&mut other, &["f"], 0);
    eprintln!(
        "{PEERS} peers a byte at a time ({} bytes in {:.1?}): {} resident, {} allocated",
        message.len(),
        started.elapsed(),
        mib(rss1.saturating_sub(rss0)),
        mib(heap1.saturating_sub(heap0)),
    );
    // The announced size taken at its word would be 64 MiB.
    assert!(
        heap1.saturating_sub(heap0) < MIB,
        "{} allocated for {PEERS} peers",
        mib(heap1.saturating_sub(heap0))
    );
    assert!(
        rss1.saturating_sub(rss0) < 8 * MIB,
        "{} resident for {PEERS} peers",
        mib(rss1.saturating_sub(rss0))
    );
    // They go; their connections end with an error (the frame was cut).
    for (peer, _, thread) in peers {
        drop(peer);
        assert!(thread.join().unwrap().is_err());
    }
    drop(other);
    other_thread.join().unwrap().unwrap();
}

/// Log records captured in this process (warnings and worse).
fn captured() -> &'static Mutex<Vec<String>> {
    struct Capture;
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Warn
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
                lines.push(record.args().to_string());
            }
        }
        fn flush(&self) {}
    }
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
    &LINES
}

/// Sends Tversion over `stream` and reads the reply: whether one came.
fn version_reply(stream: &mut UnixStream) -> bool {
    let frame = T::new(TVERSION, NOTAG).u32(8192).str("9P2000.L").done();
    if stream.write_all(&frame).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if stream.read_exact(&mut size).is_err() {
        return false;
    }
    let mut rest = vec![0u8; u32::from_le_bytes(size) as usize - 4];
    stream.read_exact(&mut rest).is_ok() && rest[0] == TVERSION + 1
}

/// Beyond --max-connections a connection is closed at once (the client
/// reads end of file), those served go on, a slot is freed when a
/// connection ends, and the warnings about refused ones are rate-limited.
#[test]
fn connections_beyond_the_bound_are_closed_at_once() {
    let _s = serial();
    let lines = captured();
    let dir = share();
    let mut config = config(dir.path());
    config.max_connections = 2;
    let server = Arc::new(Server::new(&config).unwrap());
    let socket = dir.path().join("9p.sock");
    let address = ListenAddress::Unix(socket.clone());
    let listener = SocketListener::bind(&address, &SocketAccess::default()).unwrap();
    std::thread::spawn(move || listener.serve(server));
    let connect = || {
        let stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    };
    let mut a = connect();
    let mut b = connect();
    assert!(version_reply(&mut a));
    assert!(version_reply(&mut b));
    // The third: closed before it could send anything.
    let started = Instant::now();
    let mut c = connect();
    let mut byte = [0u8; 1];
    assert!(matches!(c.read(&mut byte), Ok(0) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(2));
    // A flood of them: a few warnings, not one each.
    lines.lock().unwrap().clear();
    let started = Instant::now();
    for _ in 0..300 {
        let mut refused = connect();
        assert!(matches!(refused.read(&mut byte), Ok(0) | Err(_)));
    }
    let seconds = started.elapsed().as_secs() + 1;
    let warnings = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("refusing 9P connection"))
        .count() as u64;
    let most = seconds * u64::from(vhost_user_9p::ratelimit::PER_SECOND);
    assert!(
        (1..=most).contains(&warnings),
        "{warnings} warnings for 300 refused connections in {seconds} s"
    );
    // Those served are unaffected; one ending frees its slot.
    assert!(version_reply(&mut b));
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = connect();
        if version_reply(&mut d) {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}
