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

/// What the fake upstream saw: the tag of the Tgetattr it holds, and the
/// oldtag of a Tflush.
enum Seen {
    Held(u16),
    Flush(u16),
}

/// Serves one connection: Tversion, Tattach and Tclunk answered, a
/// Tgetattr held unanswered, a Tflush answered with Rflush.
fn fake_upstream(listener: UnixListener, seen: mpsc::Sender<Seen>) {
    let (mut stream, _) = listener.accept().unwrap();
    let mut frame = Vec::new();
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
            Tmessage::Clunk(_) => Rmessage::Clunk(Rclunk {}),
            Tmessage::Getattr(_) => {
                let _ = seen.send(Seen::Held(tag));
                continue;
            }
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

#[test]
fn a_guest_s_tflush_flushes_its_request_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&up).unwrap();
    let (tx, seen) = mpsc::channel();
    std::thread::spawn(move || fake_upstream(listener, tx));
    let gateway = Daemon::bare()
        .vhost_user()
        .arg("--upstream")
        .arg(format!("unix:{}", up.display()))
        .args(["--sandbox", "none", "--thread-pool-size", "2"])
        .start();
    let mut guest = Guest::new(Vmm::connect(&gateway.socket, 64 << 20, true));
    guest.mount(MSIZE, 1);
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
