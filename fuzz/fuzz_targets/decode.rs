//! The 9P codec on arbitrary bytes: never a panic, and what decodes is
//! canonical, as src/protocol/tests.rs states it ("after a successful
//! decode the codec is canonical: re-encoding gives back the frame's bytes,
//! for Twrite/Rread its fixed part"), so decode(encode(m)) == m too.
//!
//! Each input is tried
//! - as a whole frame `size[4] type[1] tag[2] body` (Header::parse,
//!   decode_tmessage, decode_rmessage), the size field deciding where the
//!   frame ends;
//! - as a type byte then a body (Tmessage::decode, Rmessage::decode);
//! - the body as Plan 9 stat records back to back (a 9P2000 directory
//!   read; with and without the 9P2000.u extension, which the record's own
//!   size tells apart) and as an Rstat/Twstat stat blob.
//!
//! What decodes is also formatted by the protocol trace, which promises one
//! line per message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vhost_user_9p::protocol::trace::{ReplyTrace, RequestTrace};
use vhost_user_9p::protocol::{
    decode_rmessage, decode_tmessage, Decoder, Header, Rmessage, Rread, Stat, StatBlob, Tmessage,
    Twrite, Wire, HEADER_SIZE,
};

/// The bytes after a frame's fixed fields, within its size (Twrite/Rread data).
fn data_after(frame: &[u8], fixed: usize) -> &[u8] {
    let size = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    frame.get(fixed..size).unwrap_or(&[])
}

/// Re-encoding a decoded frame gives back its bytes (for a message whose
/// data follows, its fixed part, whose size field counts the fixed part).
fn check_canonical(frame: &[u8], reencoded: &[u8], data_follows: bool) {
    let size = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    if data_follows {
        assert!(reencoded.len() <= size, "re-encoded longer than the frame");
        assert_eq!(&reencoded[4..], &frame[4..reencoded.len()], "fixed fields");
    } else {
        assert_eq!(reencoded, &frame[..size], "re-encoded frame");
    }
}

fn one_line(line: String) {
    assert!(
        !line.contains(['\n', '\r']),
        "trace line is not one line: {line:?}"
    );
}

fn check_t(frame: &[u8], tag: u16, msg: &Tmessage) {
    let is_write = msg.msg_type() == Twrite::TYPE;
    let mut out = Vec::new();
    msg.encode(tag, &mut out);
    check_canonical(frame, &out, is_write);
    assert_eq!(decode_tmessage(&out), Ok((tag, *msg)), "decode(encode(m))");
    let data = is_write.then(|| data_after(frame, out.len()));
    one_line(
        RequestTrace {
            conn: 1,
            tag,
            msg,
            data,
        }
        .to_string(),
    );
}

fn check_r(frame: &[u8], tag: u16, msg: &Rmessage) {
    let is_read = msg.msg_type() == Rread::TYPE;
    let mut out = Vec::new();
    msg.encode(tag, &mut out);
    check_canonical(frame, &out, is_read);
    assert_eq!(decode_rmessage(&out), Ok((tag, *msg)), "decode(encode(m))");
    let data = is_read.then(|| data_after(frame, out.len()));
    one_line(
        ReplyTrace {
            conn: 1,
            tag,
            msg,
            data,
        }
        .to_string(),
    );
}

/// Decodes values of `T` back to back from `bytes` while they decode; each
/// re-encodes to the bytes it was decoded from.
fn check_records<'a, T>(bytes: &'a [u8])
where
    T: Wire<'a> + std::fmt::Debug,
{
    let mut d = Decoder::new(bytes);
    loop {
        let start = bytes.len() - d.remaining();
        let Ok(value) = d.decode::<T>() else { return };
        let end = bytes.len() - d.remaining();
        let mut out = Vec::new();
        value.encode(&mut out);
        // Equal bytes: decode(encode(v)) == v follows.
        assert_eq!(out, &bytes[start..end], "{value:?} re-encoded");
        if end == start {
            return;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The input as a whole frame.
    let header = Header::parse(data);
    let t = decode_tmessage(data);
    let r = decode_rmessage(data);
    if let Ok((tag, msg)) = &t {
        assert_eq!(
            header.map(|h| (h.tag, h.msg_type)),
            Ok((*tag, msg.msg_type()))
        );
        check_t(data, *tag, msg);
    }
    if let Ok((tag, msg)) = &r {
        assert_eq!(
            header.map(|h| (h.tag, h.msg_type)),
            Ok((*tag, msg.msg_type()))
        );
        check_r(data, *tag, msg);
    }
    assert!(
        t.is_err() || r.is_err(),
        "a frame decodes as request and reply"
    );

    // A type byte, then a body.
    let Some((&ty, body)) = data.split_first() else {
        return;
    };
    let mut framed = Vec::new();
    if let Ok(msg) = Tmessage::decode(ty, body) {
        assert_eq!(msg.msg_type(), ty);
        msg.encode(0x1234, &mut framed);
        let fixed = &framed[HEADER_SIZE..];
        if ty == Twrite::TYPE {
            assert_eq!(fixed, &body[..fixed.len()], "Twrite fixed fields");
        } else {
            assert_eq!(fixed, body, "body re-encoded");
        }
        assert_eq!(Tmessage::decode(ty, fixed), Ok(msg));
    }
    if let Ok(msg) = Rmessage::decode(ty, body) {
        assert_eq!(msg.msg_type(), ty);
        framed.clear();
        msg.encode(0x1234, &mut framed);
        let fixed = &framed[HEADER_SIZE..];
        if ty == Rread::TYPE {
            assert_eq!(fixed, &body[..fixed.len()], "Rread fixed fields");
        } else {
            assert_eq!(fixed, body, "body re-encoded");
        }
        assert_eq!(Rmessage::decode(ty, fixed), Ok(msg));
    }

    // Stat records: a 9P2000(.u) directory read, and an Rstat/Twstat blob.
    check_records::<Stat>(body);
    check_records::<StatBlob>(body);
});
