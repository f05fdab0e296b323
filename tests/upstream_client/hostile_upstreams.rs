//! The client against hostile upstreams: small fake servers, each running
//! a script on its one connection, answering garbage, frames too large,
//! replies to tags never used, truncated frames, flushes in every order.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use vhost_user_9p::client::{Client, Error};
use vhost_user_9p::protocol::*;

use crate::common::proc::wait_until;
use crate::*;

/// The server's side of a fake upstream's connection.
struct Fake(UnixStream);

impl Fake {
    /// The next request frame; None at end of file (or after 20 s).
    fn request(&mut self) -> Option<Vec<u8>> {
        let mut size = [0u8; 4];
        self.0.read_exact(&mut size).ok()?;
        let size = u32::from_le_bytes(size) as usize;
        let mut frame = size.to_le_bytes()[..4].to_vec();
        frame.resize(size, 0);
        self.0.read_exact(&mut frame[4..]).ok()?;
        Some(frame)
    }

    /// The next request's tag and message (owned frame, decoded by `f`).
    fn expect<T>(&mut self, f: impl FnOnce(u16, Tmessage<'_>) -> T) -> T {
        let frame = self.request().expect("a request");
        let (tag, msg) = decode_tmessage(&frame).expect("a decodable request");
        f(tag, msg)
    }

    fn send(&mut self, bytes: &[u8]) {
        let _ = self.0.write_all(bytes);
    }

    fn reply(&mut self, tag: u16, msg: Rmessage<'_>) {
        let mut out = Vec::new();
        msg.encode(tag, &mut out);
        self.send(&out);
    }

    /// Answers Tversion with `version` and `msize`.
    fn version(&mut self, msize: u32, version: &str) {
        let tag = self.expect(|tag, msg| {
            assert!(matches!(msg, Tmessage::Version(_)), "{msg:?}");
            tag
        });
        assert_eq!(tag, NOTAG);
        self.reply(
            tag,
            Rmessage::Version(Rversion {
                msize,
                version: version.into(),
            }),
        );
    }

    /// Waits for the client to close the connection.
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.0.read_to_end(&mut rest).is_ok()
    }
}

/// A fake upstream running `script` on its one connection, and a client
/// connected to it (with `max_in_flight` tags).
fn fake(
    max_in_flight: u16,
    script: impl FnOnce(&mut Fake) + Send + 'static,
) -> (Client, thread::JoinHandle<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut fake = Fake(stream);
        script(&mut fake);
    });
    let client = Client::connect_with(&format!("unix:{}", sock.display()), max_in_flight).unwrap();
    (client, server, dir)
}

/// A fake that agrees 9P2000.L, msize 8192, then runs `script`.
fn fake_linux(
    max_in_flight: u16,
    script: impl FnOnce(&mut Fake) + Send + 'static,
) -> (Client, thread::JoinHandle<()>, tempfile::TempDir) {
    let (c, server, dir) = fake(max_in_flight, move |f| {
        f.version(8192, "9P2000.L");
        script(f);
    });
    assert_eq!(
        c.version(8192, Dialect::Linux).unwrap(),
        (8192, Dialect::Linux)
    );
    (c, server, dir)
}

fn getattr_msg(fid: u32) -> Tmessage<'static> {
    Tmessage::Getattr(Tgetattr {
        fid,
        request_mask: flags::GETATTR_BASIC,
    })
}

/// A frame: `size type tag` then `body`, the size as given.
fn raw(size: u32, msg_type: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut out = size.to_le_bytes().to_vec();
    out.push(msg_type);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// A well-framed reply to `tag` with `body`.
fn framed(msg_type: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    raw(7 + body.len() as u32, msg_type, tag, body)
}

#[test]
fn versions_are_negotiated_as_version5_says() {
    let _w = watchdog();
    // "unknown" to 9P2000.L, an error to 9P2000.u, then 9P2000.
    let (c, server, _dir) = fake(4, |f| {
        f.version(8192, "unknown");
        let tag = f.expect(|tag, _| tag);
        f.reply(
            tag,
            Rmessage::Error(Rerror {
                ename: "no".into(),
                errno: None,
            }),
        );
        f.version(4096, "9P2000");
    });
    assert_eq!(
        c.version(8192, Dialect::Linux).unwrap(),
        (4096, Dialect::Plan9)
    );
    server.join().unwrap();

    // An earlier version than asked is agreed at once.
    let (c, server, _dir) = fake(4, |f| f.version(8192, "9P2000.u"));
    assert_eq!(
        c.version(8192, Dialect::Linux).unwrap(),
        (8192, Dialect::Unix)
    );
    server.join().unwrap();

    // A later one than asked is not.
    let (c, server, _dir) = fake(4, |f| f.version(8192, "9P2000.L"));
    assert_eq!(
        c.version(8192, Dialect::Plan9).unwrap_err().errno(),
        libc::EIO
    );
    assert_eq!(c.msize(), 0);
    server.join().unwrap();

    // An msize over the one asked, or under the least.
    for msize in [8193, 100] {
        let (c, server, _dir) = fake(4, move |f| f.version(msize, "9P2000.L"));
        let err = c.version(8192, Dialect::Linux).unwrap_err();
        assert_eq!(err.errno(), libc::EIO, "{err}");
        server.join().unwrap();
    }

    // Nothing it speaks.
    let (c, server, _dir) = fake(4, |f| {
        for _ in 0..3 {
            f.version(8192, "unknown");
        }
    });
    let err = c.version(8192, Dialect::Linux).unwrap_err();
    assert!(err.to_string().contains("speaks none"), "{err}");
    server.join().unwrap();
}

#[test]
fn error_replies_become_errnos_in_each_dialect() {
    let _w = watchdog();
    let cases: [(&str, Option<u32>, i32); 6] = [
        ("No such file or directory", None, libc::ENOENT),
        ("file does not exist", None, libc::ENOENT),
        ("Directory not empty", None, libc::ENOTEMPTY),
        ("Read-only file system", None, libc::EROFS),
        ("not a standard text", None, libc::EIO),
        ("anything", Some(libc::EXDEV as u32), libc::EXDEV),
    ];
    let (c, server, _dir) = fake(4, move |f| {
        f.version(8192, "9P2000.u");
        for (text, errno, _) in cases {
            let tag = f.expect(|tag, _| tag);
            f.reply(
                tag,
                Rmessage::Error(Rerror {
                    ename: text.into(),
                    errno,
                }),
            );
        }
        let tag = f.expect(|tag, _| tag);
        f.reply(tag, Rmessage::Lerror(Rlerror { ecode: 0 }));
    });
    c.version(8192, Dialect::Unix).unwrap();
    let mut buf = Vec::new();
    for (text, _, errno) in cases {
        let err = call(&c, Tmessage::Clunk(Tclunk { fid: 1 }), &mut buf).unwrap_err();
        assert_eq!(err.errno(), errno, "{text}: {err}");
    }
    let err = call(&c, Tmessage::Clunk(Tclunk { fid: 1 }), &mut buf).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "Rlerror 0: {err}");
    server.join().unwrap();
}

#[test]
fn bad_replies_fail_their_call_only() {
    let _w = watchdog();
    let rgetattr = || {
        let mut out = Vec::new();
        Rmessage::Getattr(Rgetattr::default()).encode(0, &mut out);
        out[7..].to_vec()
    };
    // Each a bad answer to a Tread of 100 bytes on tag 0.
    let bad: Vec<Vec<u8>> = vec![
        framed(Rgetattr::TYPE, 0, &rgetattr()), // not the reply to Tread
        framed(Rread::TYPE, 0, &[1, 2]),        // count cut short
        framed(Rread::TYPE, 0, &50u32.to_le_bytes()), // count over its data
        framed(
            Rread::TYPE,
            0,
            &[&200u32.to_le_bytes()[..], &[7; 200]].concat(),
        ), // over asked
        framed(Rlerror::TYPE, 0, &[1]),         // a truncated error
        framed(Rerror::TYPE, 0, &[9, 0, b'x']), // a string over its frame
        framed(Rclunk::TYPE + 100, 0, &[]),     // no such type
    ];
    let n = bad.len();
    let (c, server, _dir) = fake_linux(1, move |f| {
        for frame in bad {
            let tag = f.expect(|tag, msg| {
                assert!(matches!(msg, Tmessage::Read(_)), "{msg:?}");
                tag
            });
            f.send(&frame);
            // Then a good reply to the next call.
            let tag2 = f.expect(|tag, _| tag);
            assert_eq!((tag, tag2), (0, 0));
            f.send(&framed(
                Rread::TYPE,
                0,
                &[&3u32.to_le_bytes()[..], b"abc"].concat(),
            ));
        }
        assert!(f.closed());
    });
    let mut buf = Vec::new();
    for i in 0..n {
        let tread = Tmessage::Read(Tread {
            fid: 1,
            offset: 0,
            count: 100,
        });
        let err = call(&c, tread, &mut buf).unwrap_err();
        assert_eq!(err.errno(), libc::EIO, "case {i}: {err}");
        assert!(matches!(err, Error::Protocol(_)), "case {i}: {err:?}");
        assert_eq!(read(&c, 1, 0, 100, &mut buf), b"abc", "case {i}");
    }
    let closed = c.closed();
    drop(c);
    server.join().unwrap();
    assert_eq!(closed, None);
}

#[test]
fn bad_frames_close_the_connection_with_eio() {
    let _w = watchdog();
    capture_logs();
    // Each sent in answer to a Tgetattr on tag 0; then the fake waits for
    // the client to close (it must, without being told).
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a size over the msize",
            raw(0xffff_fff0, Rgetattr::TYPE, 0, &[0; 64]),
        ),
        ("a size just over", raw(8193, Rread::TYPE, 0, &[0; 16])),
        ("a size under a header", raw(3, 0, 0, &[])),
        ("a zero size", raw(0, 0, 0, &[])),
        ("an unknown tag", framed(Rclunk::TYPE, 1234, &[])),
        ("NOTAG", framed(Rclunk::TYPE, NOTAG, &[])),
        ("a flush tag not flushing", framed(Rflush::TYPE, 1, &[])),
    ];
    for (what, frame) in cases {
        let (c, server, _dir) = fake_linux(1, move |f| {
            f.expect(|_, _| ());
            f.send(&frame);
            assert!(f.closed(), "{what}: the client did not close");
        });
        let mut buf = Vec::new();
        let err = call(&c, getattr_msg(1), &mut buf).unwrap_err();
        assert_eq!(err.errno(), libc::EIO, "{what}: {err}");
        assert!(matches!(err, Error::Disconnected(_)), "{what}: {err:?}");
        let later = call(&c, getattr_msg(1), &mut buf).unwrap_err();
        assert_eq!(later.errno(), libc::EIO, "{what}");
        let lines = errors_about(c.address());
        assert_eq!(lines.len(), 1, "{what}: {lines:?}");
        assert!(lines[0].contains("broke the protocol"), "{what}: {lines:?}");
        server.join().unwrap();
    }

    // Truncated: a frame cut short, then the end.
    let (c, server, _dir) = fake_linux(1, |f| {
        f.expect(|_, _| ());
        f.send(&raw(100, Rread::TYPE, 0, &[1, 2, 3]));
    });
    let mut buf = Vec::new();
    let err = call(&c, getattr_msg(1), &mut buf).unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    assert!(
        err.to_string().contains("in the middle of a reply"),
        "{err}"
    );
    server.join().unwrap();

    // A second reply to the same tag.
    let (c, server, _dir) = fake_linux(1, |f| {
        f.expect(|_, _| ());
        f.send(&framed(Rclunk::TYPE, 0, &[]));
        f.send(&framed(Rclunk::TYPE, 0, &[]));
        assert!(f.closed());
    });
    call(&c, Tmessage::Clunk(Tclunk { fid: 1 }), &mut buf).unwrap();
    wait_until("the client to close", || c.closed().is_some());
    server.join().unwrap();
}

#[test]
fn garbage_never_panics_or_hangs() {
    let _w = watchdog();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..150 {
        let len = (next() % 200) as usize;
        let mut garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half of them with a plausible header: a small size, tag 0.
        if round % 2 == 0 && len >= 7 {
            garbage[0..4].copy_from_slice(&(len as u32).to_le_bytes());
            garbage[5..7].copy_from_slice(&0u16.to_le_bytes());
        }
        let (c, server, _dir) = fake_linux(2, move |f| {
            f.expect(|_, _| ());
            f.send(&garbage);
        });
        let mut buf = Vec::new();
        let tread = Tmessage::Read(Tread {
            fid: 1,
            offset: 0,
            count: 64,
        });
        // Garbage may by chance be a good Rread; else an error, no panic.
        if let Err(e) = call(&c, tread, &mut buf) {
            assert!(
                [libc::EIO, libc::EINTR].contains(&e.errno())
                    || matches!(e, Error::Upstream { .. }),
                "round {round}: {e:?}"
            );
        }
        server.join().unwrap();
    }
}

#[test]
fn flush_answered_first_cancels_the_call() {
    let _w = watchdog();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (c, server, _dir) = fake_linux(1, move |f| {
        let tag = f.expect(|tag, msg| {
            assert!(matches!(msg, Tmessage::Read(_)));
            tag
        });
        let (ftag, old) = f.expect(|ftag, msg| match msg {
            Tmessage::Flush(t) => (ftag, t.oldtag),
            other => panic!("{other:?}"),
        });
        assert_eq!((tag, old), (0, 0));
        assert_ne!(ftag, tag);
        // Nothing else comes while the flush is unanswered: the one tag is
        // the flushed call's.
        f.0.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(f.0.read(&mut byte).is_err(), "a request before the Rflush");
        f.0.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        f.reply(ftag, Rmessage::Flush(Rflush {}));
        // The next call reuses the tag.
        let tag = f.expect(|tag, _| tag);
        assert_eq!(tag, 0);
        f.reply(tag, Rmessage::Clunk(Rclunk {}));
        done_rx.recv().unwrap();
    });
    let c = Arc::new(c);
    let mut buf = Vec::new();
    let tread = Tmessage::Read(Tread {
        fid: 1,
        offset: 0,
        count: 64,
    });
    let pending = c.start(&tread, &[], &mut buf).unwrap();
    assert!(pending.cancel());
    let other = c.clone();
    let clunk = thread::spawn(move || {
        let mut buf = Vec::new();
        call(&other, Tmessage::Clunk(Tclunk { fid: 1 }), &mut buf).map(|_| ())
    });
    let err = pending.wait().unwrap_err();
    assert_eq!(err, Error::Flushed);
    assert_eq!(err.errno(), libc::EINTR);
    clunk.join().unwrap().unwrap();
    assert_eq!(c.in_flight(), 0);
    done_tx.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn a_reply_before_the_rflush_is_honoured_or_dropped() {
    let _w = watchdog();
    let (c, server, _dir) = fake_linux(1, |f| {
        for _ in 0..2 {
            let tag = f.expect(|tag, _| tag);
            let (ftag, old) = f.expect(|ftag, msg| match msg {
                Tmessage::Flush(t) => (ftag, t.oldtag),
                other => panic!("{other:?}"),
            });
            assert_eq!(old, tag);
            f.send(&framed(
                Rread::TYPE,
                tag,
                &[&2u32.to_le_bytes()[..], b"ok"].concat(),
            ));
            f.reply(ftag, Rmessage::Flush(Rflush {}));
        }
        // After the dropped one: a fresh call gets its own reply.
        let tag = f.expect(|tag, _| tag);
        f.send(&framed(
            Rread::TYPE,
            tag,
            &[&5u32.to_le_bytes()[..], b"fresh"].concat(),
        ));
        // A Tflush answered with an error breaks the protocol.
        let tag = f.expect(|tag, _| tag);
        let ftag = f.expect(|ftag, _| ftag);
        let _ = tag;
        f.reply(ftag, Rmessage::Lerror(Rlerror { ecode: 5 }));
        assert!(f.closed());
    });
    let tread = Tmessage::Read(Tread {
        fid: 1,
        offset: 0,
        count: 64,
    });
    // Still waited for: the reply is the caller's.
    let mut buf = Vec::new();
    let pending = c.start(&tread, &[], &mut buf).unwrap();
    assert!(pending.cancel());
    assert_eq!(pending.wait().unwrap().data, b"ok");
    wait_until("the Rflush", || c.in_flight() == 0);
    // Given up (dropped): its reply is dropped, the tag freed at the Rflush.
    drop(c.start(&tread, &[], &mut buf).unwrap());
    assert_eq!(read(&c, 1, 0, 64, &mut buf), b"fresh");
    // Rlerror to a Tflush.
    let pending = c.start(&tread, &[], &mut buf).unwrap();
    assert!(pending.cancel());
    assert_eq!(pending.wait().unwrap_err().errno(), libc::EIO);
    assert!(c.closed().is_some());
    server.join().unwrap();
}

#[test]
fn tcp_addresses_connect_too() {
    let _w = watchdog();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).unwrap();
        let mut rest = vec![0u8; u32::from_le_bytes(size) as usize - 4];
        stream.read_exact(&mut rest).unwrap();
        let mut out = Vec::new();
        Rmessage::Version(Rversion {
            msize: 4096,
            version: "9P2000".into(),
        })
        .encode(NOTAG, &mut out);
        stream.write_all(&out).unwrap();
    });
    let c = Client::connect(&format!("tcp:127.0.0.1:{port}")).unwrap();
    assert_eq!(
        c.version(8192, Dialect::Linux).unwrap(),
        (4096, Dialect::Plan9)
    );
    server.join().unwrap();
    for bad in ["udp:1", "unix:", "tcp:nohost"] {
        assert_eq!(
            Client::connect(bad).err().unwrap().errno(),
            libc::EINVAL,
            "{bad}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let none = format!("unix:{}", dir.path().join("none").display());
    assert_eq!(Client::connect(&none).err().unwrap().errno(), libc::ENOENT);
}
