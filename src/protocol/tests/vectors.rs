//! Byte-exact vectors written by hand from the 9P2000(.L) spec, and
//! malformed input.

use super::*;

// ---------------------------------------------------------------------------
// 2. Byte-exact vectors, written by hand from the spec
// ---------------------------------------------------------------------------

fn t_vector(bytes: &[u8], tag: u16, msg: Tmessage) {
    assert_eq!(hex(&encode_t(&msg, tag)), hex(bytes), "encode {msg:?}");
    assert_eq!(decode_tmessage(bytes), Ok((tag, msg)), "decode {msg:?}");
}

fn r_vector(bytes: &[u8], tag: u16, msg: Rmessage) {
    assert_eq!(hex(&encode_r(&msg, tag)), hex(bytes), "encode {msg:?}");
    assert_eq!(decode_rmessage(bytes), Ok((tag, msg)), "decode {msg:?}");
}

// size[4] Tversion tag[2] msize[4] version[s]
const TVERSION: &[u8] = &[
    21, 0, 0, 0,   // size = 4+1+2+4+2+8
    100, // Tversion
    0xff, 0xff, // NOTAG
    0x00, 0x20, 0x00, 0x00, // msize 8192
    8, 0, b'9', b'P', b'2', b'0', b'0', b'0', b'.', b'L',
];

// size[4] Twalk tag[2] fid[4] newfid[4] nwname[2] nwname*(wname[s])
const TWALK: &[u8] = &[
    27, 0, 0, 0,   // size = 7+4+4+2+5+5
    110, // Twalk
    0x03, 0x02, // tag 0x0203
    0x44, 0x33, 0x22, 0x11, // fid 0x11223344
    0x88, 0x77, 0x66, 0x55, // newfid 0x55667788
    2, 0, // nwname
    3, 0, b'u', b's', b'r', //
    3, 0, b'l', b'i', b'b',
];

// size[4] Tgetattr tag[2] fid[4] request_mask[8]
const TGETATTR: &[u8] = &[
    19, 0, 0, 0,  // size = 7+4+8
    24, // Tgetattr
    4, 0, // tag
    1, 0, 0, 0, // fid
    0xff, 0x3f, 0, 0, 0, 0, 0, 0, // P9_GETATTR_ALL
];

// size[4] Tlcreate tag[2] fid[4] name[s] flags[4] mode[4] gid[4]
const TLCREATE: &[u8] = &[
    30, 0, 0, 0,  // size = 7+4+7+4+4+4
    14, // Tlcreate
    5, 0, // tag
    0x02, 0x01, 0, 0, // fid 0x102
    5, 0, b'f', b'.', b't', b'x', b't', // name
    0x42, 0x80, 0, 0, // flags: RDWR | CREAT | LARGEFILE
    0xa4, 0x81, 0, 0, // mode 0o100644
    0xe8, 0x03, 0, 0, // gid 1000
];

// size[4] Treaddir tag[2] fid[4] offset[8] count[4]
const TREADDIR: &[u8] = &[
    23, 0, 0, 0,  // size = 7+4+8+4
    40, // Treaddir
    6, 0, // tag
    3, 0, 0, 0, // fid
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // offset
    0xe8, 0x1f, 0, 0, // count 8168
];

// size[4] Tattach tag[2] fid[4] afid[4] uname[s] aname[s] n_uname[4]
const TATTACH: &[u8] = &[
    31, 0, 0, 0,   // size = 7+4+4+6+6+4
    104, // Tattach
    1, 0, // tag
    0, 0, 0, 0, // fid
    0xff, 0xff, 0xff, 0xff, // afid NOFID
    4, 0, b'r', b'o', b'o', b't', // uname
    4, 0, b'/', b't', b'm', b'p', // aname
    0, 0, 0, 0, // n_uname 0 (root)
];

// size[4] Twrite tag[2] fid[4] offset[8] count[4] (data follows)
const TWRITE_FIXED: &[u8] = &[
    23, 0, 0, 0,   // size = 7+4+8+4, fixed fields only
    118, // Twrite
    7, 0, // tag
    4, 0, 0, 0, // fid
    0x00, 0x20, 0, 0, 0, 0, 0, 0, // offset 0x2000
    3, 0, 0, 0, // count
];

// size[4] Tclunk tag[2] fid[4]
const TCLUNK: &[u8] = &[11, 0, 0, 0, 120, 8, 0, 9, 0, 0, 0];

// size[4] Rlerror tag[2] ecode[4]
const RLERROR: &[u8] = &[
    11, 0, 0, 0, // size
    7, // Rlerror
    0x02, 0x01, // tag 0x0102
    2, 0, 0, 0, // ENOENT
];

// size[4] Rwalk tag[2] nwqid[2] nwqid*(qid[13])
const RWALK: &[u8] = &[
    22, 0, 0, 0,   // size = 7+2+13
    111, // Rwalk
    0x03, 0x02, // tag 0x0203
    1, 0,    // nwqid
    0x80, // qid.type QTDIR
    0x01, 0x02, 0x03, 0x04, // qid.version 0x04030201
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // qid.path
];

// size[4] Rversion tag[2] msize[4] version[s]
const RVERSION: &[u8] = &[
    21, 0, 0, 0, 101, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00, // msize 65536
    8, 0, b'9', b'P', b'2', b'0', b'0', b'0', b'.', b'L',
];

// size[4] Rread tag[2] count[4] (data follows)
const RREAD_FIXED: &[u8] = &[
    11, 0, 0, 0,   // size: fixed fields only
    117, // Rread
    6, 0, // tag
    5, 0, 0, 0, // count
];

// size[4] Rreaddir tag[2] count[4] data[count]
const RREADDIR: &[u8] = &[
    15, 0, 0, 0, 41, 9, 0, // header
    4, 0, 0, 0, // count
    0xde, 0xad, 0xbe, 0xef,
];

#[test]
fn vector_tversion() {
    t_vector(
        TVERSION,
        NOTAG,
        Tmessage::Version(Tversion {
            msize: 8192,
            version: "9P2000.L".into(),
        }),
    );
}

#[test]
fn vector_twalk_two_names() {
    t_vector(
        TWALK,
        0x0203,
        Tmessage::Walk(Twalk {
            fid: 0x1122_3344,
            newfid: 0x5566_7788,
            names: WalkList::from_slice(&["usr".into(), "lib".into()]).unwrap(),
        }),
    );
}

#[test]
fn vector_tgetattr() {
    t_vector(
        TGETATTR,
        4,
        Tmessage::Getattr(Tgetattr {
            fid: 1,
            request_mask: 0x3fff,
        }),
    );
}

#[test]
fn vector_tlcreate() {
    t_vector(
        TLCREATE,
        5,
        Tmessage::Lcreate(Tlcreate {
            fid: 0x102,
            name: "f.txt".into(),
            flags: 0x8042,
            mode: 0o100644,
            gid: 1000,
        }),
    );
}

#[test]
fn vector_treaddir() {
    t_vector(
        TREADDIR,
        6,
        Tmessage::Readdir(Treaddir {
            fid: 3,
            offset: 0x0102_0304_0506_0708,
            count: 8192 - IOHDRSZ,
        }),
    );
}

#[test]
fn vector_tattach() {
    t_vector(
        TATTACH,
        1,
        Tmessage::Attach(Tattach {
            fid: 0,
            afid: NOFID,
            uname: "root".into(),
            aname: "/tmp".into(),
            n_uname: Some(0),
        }),
    );
}

#[test]
fn vector_twrite_header_and_trailing_data() {
    let msg = Tmessage::Write(Twrite {
        fid: 4,
        offset: 0x2000,
        count: 3,
    });
    assert_eq!(TWRITE_FIXED.len(), TWRITE_HEADER_SIZE);
    t_vector(TWRITE_FIXED, 7, msg);

    // With its data on the wire the size covers it; decode accepts the data
    // bytes after the fixed fields and leaves them alone.
    let mut with_data = TWRITE_FIXED.to_vec();
    with_data[0] = 26;
    with_data.extend_from_slice(b"abc");
    assert_eq!(decode_tmessage(&with_data), Ok((7, msg)));

    // Tclunk has no data: a trailing byte is an error.
    t_vector(TCLUNK, 8, Tmessage::Clunk(Tclunk { fid: 9 }));
    let mut clunk = TCLUNK.to_vec();
    clunk[0] = 12;
    clunk.push(0);
    assert_eq!(decode_tmessage(&clunk), Err(DecodeError::TrailingBytes));
}

#[test]
fn vector_rlerror_enoent() {
    r_vector(RLERROR, 0x0102, Rmessage::Lerror(Rlerror { ecode: 2 }));
}

#[test]
fn vector_rwalk_one_qid() {
    r_vector(
        RWALK,
        0x0203,
        Rmessage::Walk(Rwalk {
            qids: WalkList::from_slice(&[Qid {
                ty: QTDIR,
                version: 0x0403_0201,
                path: 0x0807_0605_0403_0201,
            }])
            .unwrap(),
        }),
    );
}

#[test]
fn vector_rversion() {
    r_vector(
        RVERSION,
        NOTAG,
        Rmessage::Version(Rversion {
            msize: 65536,
            version: "9P2000.L".into(),
        }),
    );
}

#[test]
fn vector_rread_header_and_data() {
    let msg = Rmessage::Read(Rread { count: 5 });
    assert_eq!(RREAD_FIXED.len(), RREAD_HEADER_SIZE);
    r_vector(RREAD_FIXED, 6, msg);

    let mut out = encode_r(&msg, 6);
    out.extend_from_slice(b"hello");
    patch_size(&mut out, 0);
    let expected: &[u8] = &[
        16, 0, 0, 0, 117, 6, 0, 5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o',
    ];
    assert_eq!(out, expected);
    assert_eq!(decode_rmessage(expected), Ok((6, msg)));

    // Rwrite has no data: a trailing byte is an error.
    let rwrite: &[u8] = &[12, 0, 0, 0, 119, 6, 0, 5, 0, 0, 0, 0];
    assert_eq!(decode_rmessage(rwrite), Err(DecodeError::TrailingBytes));
}

#[test]
fn vector_rreaddir() {
    r_vector(
        RREADDIR,
        9,
        Rmessage::Readdir(Rreaddir {
            data: Data(&[0xde, 0xad, 0xbe, 0xef]),
        }),
    );
}

#[test]
fn vector_empty_replies() {
    // size[4] type[1] tag[2] and nothing else.
    r_vector(
        &[7, 0, 0, 0, 121, 0x34, 0x12],
        0x1234,
        Rmessage::Clunk(Rclunk {}),
    );
    r_vector(&[7, 0, 0, 0, 109, 1, 0], 1, Rmessage::Flush(Rflush {}));
    r_vector(&[7, 0, 0, 0, 77, 2, 0], 2, Rmessage::Unlinkat(Runlinkat {}));
}

// ---------------------------------------------------------------------------
// 3. Malformed input
// ---------------------------------------------------------------------------

const T_VECTORS: &[&[u8]] = &[
    TVERSION,
    TWALK,
    TGETATTR,
    TLCREATE,
    TREADDIR,
    TATTACH,
    TWRITE_FIXED,
    TCLUNK,
];
const R_VECTORS: &[&[u8]] = &[RLERROR, RWALK, RVERSION, RREAD_FIXED, RREADDIR];

#[test]
fn strict_prefixes_of_vectors_are_truncated() {
    for v in T_VECTORS {
        assert!(decode_tmessage(v).is_ok());
        for len in 0..v.len() {
            assert_eq!(
                decode_tmessage(&v[..len]).err(),
                Some(DecodeError::Truncated),
                "{} cut to {len}",
                hex(v)
            );
        }
    }
    for v in R_VECTORS {
        assert!(decode_rmessage(v).is_ok());
        for len in 0..v.len() {
            assert_eq!(
                decode_rmessage(&v[..len]).err(),
                Some(DecodeError::Truncated),
                "{} cut to {len}",
                hex(v)
            );
        }
    }
}

#[test]
fn string_length_past_the_end() {
    let mut v = TVERSION.to_vec();
    v[11] = 9; // version claims 9 bytes, 8 present
    assert_eq!(decode_tmessage(&v), Err(DecodeError::Truncated));
    v[11] = 0xff;
    v[12] = 0xff;
    assert_eq!(decode_tmessage(&v), Err(DecodeError::Truncated));

    // The bytes exist in the buffer but lie beyond the size field.
    let mut v = TVERSION.to_vec();
    v[11] = 9;
    v.push(b'x');
    assert_eq!(decode_tmessage(&v), Err(DecodeError::Truncated));

    // Rreaddir's count[4] past the end.
    let mut v = RREADDIR.to_vec();
    v[7] = 5;
    assert_eq!(decode_rmessage(&v), Err(DecodeError::Truncated));
    v[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode_rmessage(&v), Err(DecodeError::Truncated));
}

/// A Twalk frame with the given nwname and `present` one-letter names.
fn twalk_frame(nwname: u16, present: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, Twalk::TYPE, 1, 0];
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&2u32.to_le_bytes());
    v.extend_from_slice(&nwname.to_le_bytes());
    for _ in 0..present {
        v.extend_from_slice(&[1, 0, b'a']);
    }
    let len = v.len();
    set_size(&mut v, len);
    v
}

#[test]
fn walk_with_too_many_elements() {
    // 16 is the limit and fine.
    let frame = twalk_frame(16, 16);
    let (_, msg) = decode_tmessage(&frame).unwrap();
    match msg {
        Tmessage::Walk(w) => assert_eq!(w.names.len(), 16),
        other => panic!("decoded {other:?}"),
    }
    assert_eq!(
        decode_tmessage(&twalk_frame(17, 17)),
        Err(DecodeError::TooMany)
    );
    assert_eq!(
        decode_tmessage(&twalk_frame(17, 0)),
        Err(DecodeError::TooMany)
    );
    assert_eq!(
        decode_tmessage(&twalk_frame(u16::MAX, 1)),
        Err(DecodeError::TooMany)
    );

    // Rwalk with 17 qids.
    let mut v = vec![0, 0, 0, 0, Rwalk::TYPE, 1, 0, 17, 0];
    v.extend_from_slice(&[0x55; 17 * Qid::WIRE_SIZE]);
    let len = v.len();
    set_size(&mut v, len);
    assert_eq!(decode_rmessage(&v), Err(DecodeError::TooMany));
    // And 16 is fine.
    v[7] = 16;
    v.truncate(len - Qid::WIRE_SIZE);
    set_size(&mut v, len - Qid::WIRE_SIZE);
    assert!(decode_rmessage(&v).is_ok());
}

#[test]
fn unknown_message_types() {
    let frame: &[u8] = &[7, 0, 0, 0, 250, 0, 0];
    assert_eq!(decode_tmessage(frame), Err(DecodeError::UnknownType(250)));
    assert_eq!(decode_rmessage(frame), Err(DecodeError::UnknownType(250)));
    let frame: &[u8] = &[11, 0, 0, 0, 250, 0, 0, 1, 2, 3, 4];
    assert_eq!(decode_tmessage(frame), Err(DecodeError::UnknownType(250)));
    assert_eq!(decode_rmessage(frame), Err(DecodeError::UnknownType(250)));
    // Tlerror and Terror do not exist.
    for t in [0, 6, 106, 255] {
        assert_eq!(
            Tmessage::decode(t, &[]),
            Err(DecodeError::UnknownType(t)),
            "type {t}"
        );
    }
    for t in [0, 6, 106, 255] {
        assert_eq!(
            Rmessage::decode(t, &[]),
            Err(DecodeError::UnknownType(t)),
            "type {t}"
        );
    }
    assert_eq!(
        DecodeError::UnknownType(250).to_string(),
        "unknown message type 250"
    );
}

#[test]
fn size_field_bigger_than_buffer() {
    let mut v = TCLUNK.to_vec();
    v[0] = 12;
    assert_eq!(decode_tmessage(&v), Err(DecodeError::Truncated));
    set_size(&mut v, u32::MAX as usize);
    assert_eq!(decode_tmessage(&v), Err(DecodeError::Truncated));
    let mut v = RLERROR.to_vec();
    set_size(&mut v, 0x8000_0000);
    assert_eq!(decode_rmessage(&v), Err(DecodeError::Truncated));
}

#[test]
fn size_field_smaller_than_header() {
    for size in 0..HEADER_SIZE {
        let mut v = TCLUNK.to_vec();
        set_size(&mut v, size);
        assert_eq!(
            decode_tmessage(&v),
            Err(DecodeError::Truncated),
            "size {size}"
        );
        let mut v = RLERROR.to_vec();
        set_size(&mut v, size);
        assert_eq!(
            decode_rmessage(&v),
            Err(DecodeError::Truncated),
            "size {size}"
        );
        // Even for a message with an empty body.
        let v: &[u8] = &[size as u8, 0, 0, 0, Rclunk::TYPE, 0, 0];
        assert_eq!(
            decode_rmessage(v),
            Err(DecodeError::Truncated),
            "size {size}"
        );
    }
}

#[test]
fn size_field_smaller_than_fixed_fields() {
    // The buffer holds the whole Tclunk but the size field cuts the fid.
    for size in HEADER_SIZE..TCLUNK.len() {
        let mut v = TCLUNK.to_vec();
        set_size(&mut v, size);
        assert_eq!(
            decode_tmessage(&v),
            Err(DecodeError::Truncated),
            "size {size}"
        );
    }
}

#[test]
fn header_parse() {
    assert_eq!(
        Header::parse(TWALK),
        Ok(Header {
            size: 27,
            msg_type: 110,
            tag: 0x0203,
        })
    );
    for len in 0..HEADER_SIZE {
        assert_eq!(Header::parse(&TWALK[..len]), Err(DecodeError::Truncated));
    }
    let mut out = [0u8; 9];
    Header {
        size: 0x0403_0201,
        msg_type: 0x99,
        tag: 0xbbaa,
    }
    .write(&mut out);
    assert_eq!(out, [1, 2, 3, 4, 0x99, 0xaa, 0xbb, 0, 0]);
}

/// Deterministic xorshift64 generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// One random buffer: pure noise, or a valid frame with a few mutations,
/// usually with the size field fixed up so decoding gets past the framing.
fn fuzz_input(rng: &mut XorShift, corpus: &[Vec<u8>], types: &[u8]) -> Vec<u8> {
    let mut v = if rng.below(4) == 0 {
        let len = rng.below(96);
        let mut v: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if len > 4 && rng.below(2) == 0 {
            v[4] = types[rng.below(types.len())];
        }
        v
    } else {
        let mut v = corpus[rng.below(corpus.len())].clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(7) {
                0 | 1 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = rng.byte();
                }
                2 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = [0x00, 0xff, 0x10, 0x11, 0x80][rng.below(5)];
                }
                3 => {
                    let len = rng.below(v.len() + 1);
                    v.truncate(len);
                }
                4 => {
                    for _ in 0..1 + rng.below(24) {
                        v.push(rng.byte());
                    }
                }
                5 if v.len() >= 2 => {
                    // A suspicious 16-bit count/length.
                    let i = rng.below(v.len() - 1);
                    let n = [0u16, 1, 16, 17, 0x7fff, 0xffff][rng.below(6)];
                    v[i..i + 2].copy_from_slice(&n.to_le_bytes());
                }
                _ if v.len() > 4 => {
                    v[4] = types[rng.below(types.len())];
                }
                _ => {}
            }
        }
        v
    };
    if v.len() >= 4 && rng.below(4) != 0 {
        let len = v.len();
        set_size(&mut v, len);
    }
    v
}

/// After a successful decode the codec is canonical: re-encoding gives back
/// the frame's bytes (for Twrite/Rread, its fixed part).
fn check_canonical(frame: &[u8], reencoded: &[u8], data_follows: bool) {
    let size = size_field(frame) as usize;
    if data_follows {
        assert!(reencoded.len() <= size);
    } else {
        assert_eq!(reencoded.len(), size);
    }
    assert_eq!(&reencoded[4..], &frame[4..reencoded.len()]);
}

#[test]
fn fuzz_decoders_never_panic() {
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    corpus.extend(t_samples().iter().map(|m| encode_t(m, 0x1234)));
    corpus.extend(r_samples().iter().map(|m| encode_r(m, 0x1234)));
    corpus.extend(T_VECTORS.iter().chain(R_VECTORS).map(|v| v.to_vec()));
    let mut types: Vec<u8> = known_types(|t| Tmessage::decode(t, &[]).map(|_| ()))
        .union(&known_types(|t| Rmessage::decode(t, &[]).map(|_| ())))
        .copied()
        .collect();
    types.push(250);

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err) = (0, 0);
    for i in 0..10_000 {
        let input = fuzz_input(&mut rng, &corpus, &types);
        let ty = rng.byte();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut oks = 0;
            if let Ok((tag, m)) = decode_tmessage(&input) {
                check_canonical(&input, &encode_t(&m, tag), m.msg_type() == Twrite::TYPE);
                oks += 1;
            }
            if let Ok((tag, m)) = decode_rmessage(&input) {
                check_canonical(&input, &encode_r(&m, tag), m.msg_type() == Rread::TYPE);
                oks += 1;
            }
            let _ = Header::parse(&input);
            let _ = Tmessage::decode(ty, &input);
            let _ = Rmessage::decode(ty, &input);
            oks
        }));
        match result {
            Ok(0) => err += 1,
            Ok(_) => ok += 1,
            Err(_) => panic!("iteration {i}: panic on input {}", hex(&input)),
        }
    }
    // The fuzzer reaches both the accepting and the rejecting paths.
    assert!(ok > 1000 && err > 1000, "ok {ok}, err {err}");
}
