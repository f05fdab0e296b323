//! A guest's Tflush reaches the upstream: a fake upstream that never
//! answers a Tgetattr (but answers Tflush) stands behind the gateway's
//! vhost-user device.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

use vhost_user_9p::protocol::*;

use crate::common::client::{reply_header, tflush, tgetattr, Client as Guest, GETATTR_BASIC};
use crate::common::vmm::{Area, Vmm};
use crate::common::Daemon;
use crate::conn::MSIZE;

/// What the fake upstream saw: the tag of the request it holds, the
/// oldtag of a Tflush, and the type of each request after the held one.
#[derive(Debug, PartialEq)]
enum Seen {
    Held(u16),
    Flush(u16),
    After(u8),
}

/// Serves one connection: Tversion, Tattach, Twalk, Tgetattr and Tclunk
/// answered, the first request of type `hold` held unanswered (until the
/// next request comes, with `release_after`), a Tflush answered with
/// Rflush.
fn fake_upstream(listener: UnixListener, hold: u8, release_after: bool, seen: mpsc::Sender<Seen>) {
    let (mut stream, _) = listener.accept().unwrap();
    let mut frame = Vec::new();
    let mut held: Option<(u16, u8)> = None;
    let mut holding = true;
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        frame.clear();
        frame.extend_from_slice(&size);
        frame.resize(u32::from_le_bytes(size) as usize, 0);
        if stream.read_exact(&mut frame[4..]).is_err() {
            return;
        }
        let (tag, request) = decode_tmessage(&frame).unwrap();
        let msg_type = request.msg_type();
        if holding && msg_type == hold {
            holding = false;
            held = Some((tag, msg_type));
            let _ = seen.send(Seen::Held(tag));
            continue;
        }
        if held.is_some() && msg_type != Tflush::TYPE {
            let _ = seen.send(Seen::After(msg_type));
            if release_after {
                // The held request answered now, then this one.
                let (held_tag, held_type) = held.take().unwrap();
                let mut out = Vec::new();
                reply_to(held_type).encode(held_tag, &mut out);
                if stream.write_all(&out).is_err() {
                    return;
                }
            }
        }
        let reply = match request {
            Tmessage::Version(t) => Rmessage::Version(Rversion {
                msize: t.msize,
                version: "9P2000.L".into(),
            }),
            Tmessage::Attach(_) => Rmessage::Attach(Rattach {
                qid: Qid {
                    ty: QTDIR,
                    version: 0,
                    path: 1,
                },
            }),
            Tmessage::Clunk(_) | Tmessage::Getattr(_) | Tmessage::Walk(_) => reply_to(msg_type),
            Tmessage::Flush(t) => {
                let _ = seen.send(Seen::Flush(t.oldtag));
                Rmessage::Flush(Rflush {})
            }
            _ => Rmessage::Lerror(Rlerror {
                ecode: libc::EOPNOTSUPP as u32,
            }),
        };
        let mut out = Vec::new();
        reply.encode(tag, &mut out);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// The fake's answer to a request of type `msg_type` it answers.
fn reply_to(msg_type: u8) -> Rmessage<'static> {
    match msg_type {
        t if t == Tclunk::TYPE => Rmessage::Clunk(Rclunk {}),
        t if t == Twalk::TYPE => Rmessage::Walk(Rwalk {
            qids: WalkList::new(),
        }),
        _ => Rmessage::Getattr(Rgetattr {
            valid: GETATTR_BASIC,
            mode: 0o040755,
            ..Rgetattr::default()
        }),
    }
}

/// A gateway (2 workers) to a fake upstream holding requests of type
/// `hold`, and a guest mounted through it.
fn gateway_to_fake(
    hold: u8,
    release_after: bool,
) -> (Daemon, Guest, mpsc::Receiver<Seen>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&up).unwrap();
    let (tx, seen) = mpsc::channel();
    std::thread::spawn(move || fake_upstream(listener, hold, release_after, tx));
    let gateway = Daemon::bare()
        .vhost_user()
        .arg("--upstream")
        .arg(format!("unix:{}", up.display()))
        .args(["--sandbox", "none", "--thread-pool-size", "2"])
        .start();
    let mut guest = Guest::new(Vmm::connect(&gateway.socket, 64 << 20, true));
    guest.mount(MSIZE, 1);
    (gateway, guest, seen, dir)
}

#[test]
fn a_guest_s_tflush_flushes_its_request_upstream() {
    let (_gateway, mut guest, seen, _dir) = gateway_to_fake(Tgetattr::TYPE, false);
    let vmm = &mut guest.vmm;
    let getattr = vmm.slot(Area::one(64), Area::one(4096));
    let flush = vmm.slot(Area::one(64), Area::one(4096));
    let wait = Duration::from_secs(10);

    vmm.write(getattr.request, &tgetattr(50, 1, GETATTR_BASIC));
    vmm.post(getattr.head);
    vmm.kick();
    let held = match seen.recv_timeout(wait) {
        Ok(Seen::Held(tag)) => tag,
        _ => panic!("the Tgetattr did not reach the upstream"),
    };
    // The guest gives up on it: the gateway flushes the upstream's tag.
    vmm.write(flush.request, &tflush(51, 50));
    vmm.post(flush.head);
    vmm.kick();
    match seen.recv_timeout(wait) {
        Ok(Seen::Flush(oldtag)) => assert_eq!(oldtag, held),
        _ => panic!("no Tflush reached the upstream"),
    }
    // The flushed request is answered (EINTR), then the Tflush.
    let mut order = Vec::new();
    while order.len() < 2 {
        assert!(vmm.wait_timeout(wait), "replies did not come back");
        vmm.reap(|head, _| order.push(head));
    }
    assert_eq!(
        order,
        [getattr.head, flush.head],
        "Rflush after the flushed reply"
    );
    let (_, ty, tag) = reply_header(vmm, &getattr);
    assert_eq!((ty, tag), (Rlerror::TYPE, 50));
    let mut ecode = [0u8; 4];
    vmm.read(getattr.reply + 7, &mut ecode);
    assert_eq!(u32::from_le_bytes(ecode), libc::EINTR as u32);
    assert_eq!(reply_header(vmm, &flush), (7, Rflush::TYPE, 51));
}

/// Both replies, in the order they come back (within `wait`).
fn two_replies(vmm: &mut Vmm, wait: Duration) -> Vec<u16> {
    let mut order = Vec::new();
    while order.len() < 2 {
        assert!(vmm.wait_timeout(wait), "replies did not come back");
        vmm.reap(|head, _| order.push(head));
    }
    order
}

#[test]
fn a_tflush_in_the_same_kick_as_its_request_still_flushes_it() {
    // The Tflush reaches the gateway before its request reaches the
    // upstream: the request is not sent at all.
    let (_gateway, mut guest, seen, _dir) = gateway_to_fake(Tgetattr::TYPE, false);
    let vmm = &mut guest.vmm;
    let getattr = vmm.slot(Area::one(64), Area::one(4096));
    let flush = vmm.slot(Area::one(64), Area::one(4096));
    vmm.write(getattr.request, &tgetattr(60, 1, GETATTR_BASIC));
    vmm.write(flush.request, &tflush(61, 60));
    vmm.post(getattr.head);
    vmm.post(flush.head);
    vmm.kick();
    let order = two_replies(vmm, Duration::from_secs(10));
    assert_eq!(order, [getattr.head, flush.head]);
    let (_, ty, _) = reply_header(vmm, &getattr);
    assert_eq!(ty, Rlerror::TYPE, "the flushed Tgetattr is answered EINTR");
    assert_eq!(reply_header(vmm, &flush), (7, Rflush::TYPE, 61));
    assert!(seen.try_recv().is_err(), "nothing reached the upstream");
    // The tag is free again: a new request with it goes through.
    vmm.write(getattr.request, &tgetattr(60, 1, GETATTR_BASIC));
    vmm.post(getattr.head);
    vmm.kick();
    assert!(matches!(
        seen.recv_timeout(Duration::from_secs(10)),
        Ok(Seen::Held(_))
    ));
}

#[test]
fn a_flushed_tclunk_still_clunks_upstream() {
    // The upstream holds a Tclunk; the guest flushes it. No Tflush goes
    // upstream for it (the fid must be gone before its number is used
    // again): the next request the upstream sees is the guest's next one.
    let (_gateway, mut guest, seen, _dir) = gateway_to_fake(Tclunk::TYPE, true);
    guest.walk(1, 2, &[]);
    let vmm = &mut guest.vmm;
    let clunk = vmm.slot(Area::one(64), Area::one(4096));
    let flush = vmm.slot(Area::one(64), Area::one(4096));
    let next = vmm.slot(Area::one(64), Area::one(4096));
    let mut tclunk = vec![];
    tclunk.extend_from_slice(&11u32.to_le_bytes());
    tclunk.push(Tclunk::TYPE);
    tclunk.extend_from_slice(&70u16.to_le_bytes());
    tclunk.extend_from_slice(&2u32.to_le_bytes());
    vmm.write(clunk.request, &tclunk);
    vmm.post(clunk.head);
    vmm.kick();
    assert!(matches!(
        seen.recv_timeout(Duration::from_secs(10)),
        Ok(Seen::Held(_))
    ));
    vmm.write(flush.request, &tflush(71, 70));
    vmm.post(flush.head);
    vmm.write(next.request, &tgetattr(72, 1, GETATTR_BASIC));
    vmm.post(next.head);
    vmm.kick();
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(10)),
        Ok(Seen::After(Tgetattr::TYPE)),
        "a Tflush went upstream for the Tclunk"
    );
    let mut order = Vec::new();
    while order.len() < 3 {
        assert!(vmm.wait_timeout(Duration::from_secs(10)));
        vmm.reap(|head, _| order.push(head));
    }
    assert_eq!(reply_header(vmm, &clunk).1, Rclunk::TYPE, "clunked");
    assert_eq!(reply_header(vmm, &flush), (7, Rflush::TYPE, 71));
}
