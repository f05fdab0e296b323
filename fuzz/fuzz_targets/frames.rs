//! Sequences of 9P request frames served through one `Session` by
//! `socket::serve_frame`, over a scratch share with files, a directory,
//! symlinks leading out of the share and a fifo (see `fuzz_common`).
//!
//! Input: a configuration byte (dialect and msize of the Tversion the
//! harness sends first, with a Tattach of fid 0), then request frames back
//! to back; sizes are clamped to the input (see `fuzz_common::Frames`).
//!
//! Properties, after every frame: one reply, well formed, with the
//! request's tag, the reply type of the request (or the error of the
//! session's dialect), its size field counting the reply and an Rread's
//! data, and no larger than the session's msize. After every input:
//! nothing outside the share changed.

#![no_main]

use std::sync::{Mutex, OnceLock};

use fuzz_common::{changes_share, prepare_frame, scratch_server, Frames, Scratch, Setup};
use libfuzzer_sys::fuzz_target;
use vhost_user_9p::protocol::{self, trace, Header, Rmessage, Tmessage, HEADER_SIZE};
use vhost_user_9p::server::{Dialect, Server, Session};
use vhost_user_9p::socket::serve_frame;

struct State {
    server: Server,
    scratch: Scratch,
    frame: Vec<u8>,
    reply: Vec<u8>,
    data: Vec<u8>,
    /// FUZZ_TRACE set: print every request and reply (to read a reproducer).
    trace: bool,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let (scratch, server) = scratch_server();
        Mutex::new(State {
            server,
            scratch,
            frame: Vec::new(),
            reply: Vec::new(),
            data: Vec::new(),
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
        })
    })
}

/// Checks the reply to one frame; returns whether it is an error reply.
fn check_reply(frame: &[u8], session: &Session, reply: &[u8], data: &[u8]) -> bool {
    let request = Header::parse(frame).expect("frames have a header");
    let decoded = Tmessage::decode(request.msg_type, &frame[HEADER_SIZE..]);
    assert!(!reply.is_empty(), "no reply to {request:?} ({decoded:?})");
    let header = Header::parse(reply).unwrap_or_else(|e| panic!("reply header: {e}: {reply:x?}"));
    assert_eq!(
        header.size as usize,
        reply.len() + data.len(),
        "size field of the reply to {request:?} ({decoded:?}): {header:?}"
    );
    assert_eq!(header.tag, request.tag, "reply tag");
    assert!(
        header.size <= session.msize(),
        "reply to {decoded:?} of {} bytes over msize {}",
        header.size,
        session.msize()
    );
    let is_error = matches!(
        header.msg_type,
        protocol::Rlerror::TYPE | protocol::Rerror::TYPE
    );
    if !is_error {
        assert!(
            decoded.is_ok(),
            "undecodable {request:?} answered {header:?}"
        );
        assert_eq!(
            header.msg_type,
            request.msg_type.wrapping_add(1),
            "reply type to {decoded:?}"
        );
    }
    if header.msg_type == protocol::Rread::TYPE {
        // Only the header and count are in `reply`; the data follows.
        match Rmessage::decode(header.msg_type, &reply[HEADER_SIZE..]) {
            Ok(Rmessage::Read(r)) => {
                assert_eq!(reply.len(), protocol::RREAD_HEADER_SIZE, "Rread header");
                assert_eq!(r.count as usize, data.len(), "Rread count");
            }
            other => panic!("Rread: {other:?}"),
        }
        return false;
    }
    assert!(data.is_empty(), "data after a {header:?}");
    let msg = match protocol::decode_rmessage(reply) {
        Ok((_, msg)) => msg,
        Err(e) => panic!("reply to {decoded:?} does not decode: {e}: {reply:x?}"),
    };
    // The codec is canonical: the reply is what its encoder gives.
    let mut again = Vec::new();
    msg.encode(header.tag, &mut again);
    assert_eq!(again, reply, "reply re-encoded");
    // Errors are the session's dialect's (Tversion may just have changed
    // the dialect, and is never answered with one anyway).
    if is_error && request.msg_type != protocol::Tversion::TYPE {
        match (session.dialect(), msg) {
            (Dialect::Linux, Rmessage::Lerror(e)) => assert_ne!(e.ecode, 0, "Rlerror 0"),
            (Dialect::Unix, Rmessage::Error(e)) => {
                assert!(
                    matches!(e.errno, Some(n) if n != 0),
                    "9P2000.u Rerror: {e:?}"
                )
            }
            (Dialect::Plan9, Rmessage::Error(e)) => {
                assert_eq!(e.errno, None, "9P2000 Rerror: {e:?}");
                assert!(!e.ename.as_bytes().is_empty(), "9P2000 Rerror without text");
            }
            (dialect, msg) => panic!("{dialect:?} session answered {msg:?}"),
        }
    }
    is_error
}

fn print_request(session: &Session, frame: &[u8]) {
    match protocol::decode_tmessage(frame) {
        Ok((tag, msg)) => {
            let data = (msg.msg_type() == protocol::Twrite::TYPE)
                .then(|| &frame[protocol::TWRITE_HEADER_SIZE.min(frame.len())..]);
            let conn = session.id;
            eprintln!(
                "{}",
                trace::RequestTrace {
                    conn,
                    tag,
                    msg: &msg,
                    data
                }
            );
        }
        Err(e) => eprintln!("<-{}- undecodable ({e}): {frame:02x?}", session.id),
    }
}

fn print_reply(session: &Session, reply: &[u8], data: &[u8]) {
    let Ok(header) = Header::parse(reply) else {
        return eprintln!("-{}-> {reply:02x?}", session.id);
    };
    let decoded = if header.msg_type == protocol::Rread::TYPE {
        Rmessage::decode(header.msg_type, &reply[HEADER_SIZE..])
    } else {
        protocol::decode_rmessage(reply).map(|(_, m)| m)
    };
    match decoded {
        Ok(msg) => {
            let data = (header.msg_type == protocol::Rread::TYPE).then_some(data);
            let (conn, tag) = (session.id, header.tag);
            eprintln!(
                "{}",
                trace::ReplyTrace {
                    conn,
                    tag,
                    msg: &msg,
                    data
                }
            );
        }
        Err(e) => eprintln!("-{}-> undecodable ({e}): {reply:02x?}", session.id),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&setup, rest)) = input.split_first() else {
        return;
    };
    let mut guard = state().lock().unwrap_or_else(|e| e.into_inner());
    let State {
        server,
        scratch,
        frame,
        reply,
        data,
        trace,
    } = &mut *guard;
    let session = Session::new();
    let handshake = Setup::from_byte(setup).handshake();
    let mut changed = false;
    for raw in handshake.iter().map(Vec::as_slice).chain(Frames::new(rest)) {
        prepare_frame(raw, frame);
        if *trace {
            print_request(&session, frame);
        }
        serve_frame(server, &session, frame, reply, data);
        if *trace {
            print_reply(&session, reply, data);
        }
        let is_error = check_reply(frame, &session, reply, data);
        changed |= !is_error && changes_share(frame[4]);
    }
    drop(session); // clunks every fid (a Txattrcreate takes effect here)
    scratch.check_outside();
    if changed || !scratch.intact() {
        scratch.restock().expect("restock the share");
    }
});
