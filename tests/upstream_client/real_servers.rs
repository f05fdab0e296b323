//! The client against real servers: this crate's server in-process on a
//! Unix socket, and the daemon binary on `--listen unix:PATH`.

use std::fs;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use vhost_user_9p::client::Client;
use vhost_user_9p::protocol::flags::P9_RDONLY;
use vhost_user_9p::protocol::*;
use vhost_user_9p::server::{Config, Server};
use vhost_user_9p::socket;

use crate::common::daemon::Daemon;
use crate::common::proc::{wait_until, Lease};
use crate::*;

/// This crate's server in-process, serving `share` on a Unix socket: each
/// connection a session of a VMM's guest (`socket::serve_connection`).
struct InProcess {
    _dir: tempfile::TempDir,
    share: PathBuf,
    address: String,
    /// The server's side of each connection, to close it under the client.
    conns: Arc<Mutex<Vec<UnixStream>>>,
}

fn in_process() -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    fs::create_dir(&share).unwrap();
    let sock = dir.path().join("9p.sock");
    let server = Arc::new(Server::new(&Config::new(&share)).unwrap());
    let listener = UnixListener::bind(&sock).unwrap();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let accepted = conns.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            accepted.lock().unwrap().push(stream.try_clone().unwrap());
            let server = server.clone();
            thread::spawn(move || {
                let _ = socket::serve_connection(&server, Box::new(stream));
            });
        }
    });
    InProcess {
        _dir: dir,
        share,
        address: format!("unix:{}", sock.display()),
        conns,
    }
}

/// The daemon binary on `--listen unix:PATH`, serving `share` as root
/// (its output printed if the test fails).
struct Served {
    daemon: Daemon,
    share: PathBuf,
    address: String,
    _dir: tempfile::TempDir,
}

fn daemon() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    fs::create_dir(&share).unwrap();
    let sock = dir.path().join("9p.sock");
    let daemon = Daemon::builder(&share)
        .listen_unix(&sock)
        .args(["--sandbox", "none", "--no-root-squash"])
        .log_to_file()
        .start();
    Served {
        daemon,
        share,
        address: format!("unix:{}", sock.display()),
        _dir: dir,
    }
}

#[test]
fn each_dialect_reads_and_writes_real_files() {
    let _w = watchdog();
    let up = in_process();
    let content = pattern(1, 100_000);
    fs::write(up.share.join("hello.txt"), &content).unwrap();
    fs::create_dir(up.share.join("sub")).unwrap();
    fs::write(up.share.join("sub/deep.txt"), b"deep").unwrap();
    for dialect in DIALECTS {
        let c = connect(&up.address, 8192, dialect);
        attach(&c, ROOT);

        assert_eq!(walk(&c, ROOT, 2, &["hello.txt"]).unwrap(), 1);
        assert_eq!(size(&c, 2), content.len() as u64);
        open(&c, 2, false);
        assert!(read_all(&c, 2) == content, "{dialect:?}: read differs");
        clunk(&c, 2);

        assert_eq!(walk(&c, ROOT, 3, &["sub", "deep.txt"]).unwrap(), 2);
        open(&c, 3, false);
        assert_eq!(read_all(&c, 3), b"deep");
        clunk(&c, 3);

        // An error, whatever the dialect: Rlerror, 9P2000.u's errno,
        // 9P2000's text.
        let missing = walk(&c, ROOT, 4, &["missing"]).unwrap_err();
        assert_eq!(missing.errno(), libc::ENOENT, "{dialect:?}: {missing}");
        // A walk that stops short is no error.
        assert_eq!(walk(&c, ROOT, 4, &["sub", "missing"]).unwrap(), 1);

        let name = format!("new-{dialect:?}.txt");
        let data = pattern(2, 30_000);
        assert_eq!(walk(&c, ROOT, 5, &[]).unwrap(), 0);
        create(&c, 5, &name);
        write_all(&c, 5, &data);
        clunk(&c, 5);
        assert!(fs::read(up.share.join(&name)).unwrap() == data);
        assert_eq!(walk(&c, ROOT, 6, &[&name]).unwrap(), 1);
        assert_eq!(size(&c, 6), data.len() as u64);
        clunk(&c, 6);

        // What the dialect lacks is not sent.
        let mut buf = Vec::new();
        let other = match dialect {
            Dialect::Linux => Tmessage::Stat(Tstat { fid: ROOT }),
            _ => Tmessage::Getattr(Tgetattr {
                fid: ROOT,
                request_mask: flags::GETATTR_BASIC,
            }),
        };
        let refused = call(&c, other, &mut buf).unwrap_err();
        assert_eq!(refused.errno(), libc::EOPNOTSUPP);
        assert_eq!(c.in_flight(), 0);
    }
}

#[test]
fn requests_are_checked_before_they_are_sent() {
    let _w = watchdog();
    let up = in_process();
    fs::write(up.share.join("f"), b"x").unwrap();
    let c = Client::connect(&up.address).unwrap();
    let mut buf = Vec::new();
    let getattr = Tmessage::Getattr(Tgetattr {
        fid: ROOT,
        request_mask: 1,
    });
    // Nothing before Tversion.
    assert_eq!(
        call(&c, getattr, &mut buf).unwrap_err().errno(),
        libc::ENOTCONN
    );
    assert_eq!(
        c.version(100, Dialect::Linux).unwrap_err().errno(),
        libc::EINVAL
    );
    c.version(8192, Dialect::Linux).unwrap();
    attach(&c, ROOT);
    walk(&c, ROOT, 2, &["f"]).unwrap();
    open(&c, 2, true);
    let version = Tmessage::Version(Tversion {
        msize: 8192,
        version: "9P2000".into(),
    });
    let short_write = Tmessage::Write(Twrite {
        fid: 2,
        offset: 0,
        count: 5,
    });
    let refused: [(Tmessage, &[u8]); 4] = [
        (version, b""),
        (Tmessage::Flush(Tflush { oldtag: 0 }), b""),
        (short_write, b"abc"),
        (getattr, b"data"),
    ];
    for (msg, data) in refused {
        let err = c.call(&msg, data, &mut buf).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{msg:?}");
    }
    // Over the msize: EMSGSIZE, and the tag is free again.
    let big = vec![0u8; 8192];
    let write = Twrite {
        fid: 2,
        offset: 0,
        count: big.len() as u32,
    };
    let err = c.call(&Tmessage::Write(write), &big, &mut buf).unwrap_err();
    assert_eq!(err.errno(), libc::EMSGSIZE);
    assert_eq!(c.in_flight(), 0);
    // The connection goes on.
    write_all(&c, 2, b"fine");
    assert_eq!(fs::read(up.share.join("f")).unwrap(), b"fine");
    // A second Tversion starts a new session upstream.
    assert_eq!(
        c.version(4096, Dialect::Plan9).unwrap(),
        (4096, Dialect::Plan9)
    );
    assert!(walk(&c, ROOT, 3, &[]).is_err(), "fids survived Tversion");
}

#[test]
fn eight_threads_pipeline_getattr_and_read_on_one_connection() {
    let _w = watchdog();
    const THREADS: usize = 8;
    const CALLS: usize = 1000;
    let up = in_process();
    let contents: Vec<Vec<u8>> = (0..THREADS).map(|i| pattern(i, 4096 + i * 1000)).collect();
    for (i, content) in contents.iter().enumerate() {
        fs::write(up.share.join(format!("f{i}")), content).unwrap();
    }
    // Fewer tags than threads: calls also wait for a free tag.
    let c = Arc::new(Client::connect_with(&up.address, 5).unwrap());
    c.version(65536, Dialect::Linux).unwrap();
    attach(&c, ROOT);
    for i in 0..THREADS {
        let fid = 10 + i as u32;
        walk(&c, ROOT, fid, &[&format!("f{i}")]).unwrap();
        open(&c, fid, false);
    }
    let contents = Arc::new(contents);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let (c, contents, done) = (c.clone(), contents.clone(), done.clone());
            thread::spawn(move || {
                let fid = 10 + i as u32;
                let content = &contents[i];
                let mut buf = Vec::new();
                for j in 0..CALLS {
                    if j % 2 == 0 {
                        let getattr = Tgetattr {
                            fid,
                            request_mask: flags::GETATTR_BASIC,
                        };
                        match call(&c, Tmessage::Getattr(getattr), &mut buf).unwrap().msg {
                            Rmessage::Getattr(r) => assert_eq!(r.size, content.len() as u64),
                            other => panic!("thread {i} call {j}: {other:?}"),
                        }
                    } else {
                        let offset = (j * 997) % content.len();
                        let end = (offset + 512).min(content.len());
                        let data = read(&c, fid, offset as u64, 512, &mut buf);
                        assert!(data == &content[offset..end], "thread {i} call {j}");
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
        })
        .collect();
    let mut most = 0;
    while done.load(std::sync::atomic::Ordering::Relaxed) < THREADS {
        most = most.max(c.in_flight());
        thread::sleep(Duration::from_micros(200));
    }
    for w in workers {
        w.join().unwrap();
    }
    assert!(most > 1, "never more than one call in flight");
    assert!(most <= 5, "{most} calls in flight, over the 5 tags");
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn a_flushed_call_keeps_its_tag_until_the_rflush() {
    let _w = watchdog();
    let d = daemon();
    fs::write(d.share.join("slow"), b"slow").unwrap();
    // One tag: a call started after the flush must wait for the Rflush.
    let c = Arc::new(Client::connect_with(&d.address, 1).unwrap());
    c.version(65536, Dialect::Linux).unwrap();
    attach(&c, ROOT);
    walk(&c, ROOT, 2, &["slow"]).unwrap();
    walk(&c, ROOT, 3, &["slow"]).unwrap();

    let lease = Lease::take(&d.share.join("slow"));
    let mut buf = Vec::new();
    let lopen = Tmessage::Lopen(Tlopen {
        fid: 2,
        flags: P9_RDONLY,
    });
    let pending = c.start(&lopen, &[], &mut buf).unwrap();
    assert_eq!(pending.tag(), 0);
    lease.wait_contended();
    let canceller = pending.canceller();
    assert!(canceller.cancel(), "no Tflush sent");
    assert!(!pending.cancel(), "a second Tflush of the same call");
    assert_eq!(c.in_flight(), 1);

    let (tx, rx) = mpsc::channel();
    let other = c.clone();
    let getattr = thread::spawn(move || {
        let mut buf = Vec::new();
        let getattr = Tgetattr {
            fid: ROOT,
            request_mask: flags::GETATTR_BASIC,
        };
        let r = call(&other, Tmessage::Getattr(getattr), &mut buf)
            .map(|r| matches!(r.msg, Rmessage::Getattr(_)));
        tx.send(r).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "a call got the flushed call's tag before its Rflush"
    );
    drop(lease);
    // The daemon answers the open, then the flush: the reply came first,
    // so the call happened (flush(5)) and its reply is the caller's.
    let reply = pending.wait().unwrap();
    assert!(matches!(reply.msg, Rmessage::Lopen(_)), "{reply:?}");
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), Ok(true));
    getattr.join().unwrap();
    wait_until("the tag to be free", || c.in_flight() == 0);
    assert!(!canceller.cancel(), "a stale canceller flushed something");

    // Abandoned: neither the open nor its flush is answered in time; the
    // reply that comes later is dropped and the tag freed at the Rflush.
    call(&c, Tmessage::Clunk(Tclunk { fid: 2 }), &mut buf).unwrap();
    let lease = Lease::take(&d.share.join("slow"));
    let lopen = Tmessage::Lopen(Tlopen {
        fid: 3,
        flags: P9_RDONLY,
    });
    let pending = c.start(&lopen, &[], &mut buf).unwrap();
    lease.wait_contended();
    let err = pending
        .wait_timeout(Duration::from_millis(150))
        .unwrap_err();
    assert_eq!(err.errno(), libc::ETIMEDOUT, "{err}");
    assert_eq!(c.in_flight(), 1, "the tag was freed before the Rflush");
    drop(lease);
    wait_until("the Rflush", || c.in_flight() == 0);
    // The connection goes on (fid 3 is open upstream: the open happened).
    call(&c, Tmessage::Clunk(Tclunk { fid: 3 }), &mut buf).unwrap();
}

#[test]
fn calls_fail_with_eio_when_the_daemon_dies_mid_call() {
    let _w = watchdog();
    capture_logs();
    let mut d = daemon();
    fs::write(d.share.join("slow"), b"slow").unwrap();
    let c = Arc::new(Client::connect_with(&d.address, 1).unwrap());
    c.version(65536, Dialect::Linux).unwrap();
    attach(&c, ROOT);
    walk(&c, ROOT, 2, &["slow"]).unwrap();
    let lease = Lease::take(&d.share.join("slow"));

    let (tx, rx) = mpsc::channel();
    // One call waits for its reply (the daemon waits in open()), one for
    // the only tag.
    let waiting: Vec<_> = [true, false]
        .into_iter()
        .map(|first| {
            let (c, tx) = (c.clone(), tx.clone());
            let msg = if first {
                Tmessage::Lopen(Tlopen {
                    fid: 2,
                    flags: P9_RDONLY,
                })
            } else {
                Tmessage::Clunk(Tclunk { fid: 2 })
            };
            let t = thread::spawn(move || {
                let mut buf = Vec::new();
                let r = call(&c, msg, &mut buf).map(|_| ()).map_err(|e| e.errno());
                tx.send(r).unwrap();
            });
            if first {
                lease.wait_contended();
            }
            t
        })
        .collect();
    wait_until("the call to be in flight", || c.in_flight() == 1);
    d.daemon.child.kill().unwrap();
    d.daemon.wait();
    for _ in 0..2 {
        assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), Err(libc::EIO));
    }
    for t in waiting {
        t.join().unwrap();
    }
    // Later calls fail at once.
    let mut buf = Vec::new();
    let err = call(&c, Tmessage::Clunk(Tclunk { fid: ROOT }), &mut buf).unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    assert!(c.closed().is_some());
    let lines = errors_about(&d.address);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("upstream {} closed the connection", d.address)),
        "{}",
        lines[0]
    );
    drop(lease);
}

#[test]
fn calls_fail_with_eio_when_the_server_closes_its_socket() {
    let _w = watchdog();
    let up = in_process();
    fs::write(up.share.join("f"), pattern(0, 10_000)).unwrap();
    let c = Arc::new(connect(&up.address, 65536, Dialect::Linux));
    attach(&c, ROOT);
    for fid in 10..18 {
        walk(&c, ROOT, fid, &["f"]).unwrap();
        open(&c, fid, false);
    }
    let workers: Vec<_> = (10..18u32)
        .map(|fid| {
            let c = c.clone();
            thread::spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let tread = Tread {
                        fid,
                        offset: 0,
                        count: 4096,
                    };
                    if let Err(e) = call(&c, Tmessage::Read(tread), &mut buf) {
                        return e.errno();
                    }
                }
            })
        })
        .collect();
    wait_until("calls in flight", || c.in_flight() > 1);
    for conn in up.conns.lock().unwrap().iter() {
        conn.shutdown(std::net::Shutdown::Both).unwrap();
    }
    for w in workers {
        assert_eq!(w.join().unwrap(), libc::EIO);
    }
}
