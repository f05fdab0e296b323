//! Unit tests for the 9P wire codec: round trips of every message, byte-exact
//! vectors written by hand from the 9P2000(.L) spec, and malformed input.

use super::*;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

// ---------------------------------------------------------------------------
// Sample values
// ---------------------------------------------------------------------------

/// Produces integers from a running byte counter (never 0), so every field of
/// a sample has distinct, non-zero bytes: a swapped, misplaced, mis-sized or
/// wrong-endian field cannot decode back to the same value.
struct Gen(u8);

impl Gen {
    fn new() -> Self {
        Gen(1)
    }
    fn u8(&mut self) -> u8 {
        let b = self.0;
        self.0 = if b == 0xff { 1 } else { b + 1 };
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
    fn qid(&mut self) -> Qid {
        Qid {
            ty: self.u8(),
            version: self.u32(),
            path: self.u64(),
        }
    }
    fn qids(&mut self, n: usize) -> WalkList<Qid> {
        let qids: Vec<Qid> = (0..n).map(|_| self.qid()).collect();
        WalkList::from_slice(&qids).expect("at most MAXWELEM qids")
    }
}

/// Sixteen walk names (MAXWELEM), some of them not UTF-8.
const NAMES16: [&[u8]; 16] = [
    b"usr",
    b"lib",
    b"x86_64-linux-gnu",
    b"caf\xc3\xa9",
    b"\xff\xfe",
    b"..",
    b"a",
    b"with space",
    b"\x80\x81\x82",
    b"dir9",
    b"dir10",
    b"\xc0\xaf",
    b"dir12",
    b"dir13",
    b"dir14",
    b"last\xff",
];

fn names(n: usize) -> WalkList<Str<'static>> {
    let strs: Vec<Str<'static>> = NAMES16[..n].iter().map(|s| Str(s)).collect();
    WalkList::from_slice(&strs).expect("at most MAXWELEM names")
}

/// Opaque Rreaddir payload: one entry `qid[13] offset[8] type[1] name[s]`
/// plus a few bytes that are not UTF-8.
const DIRENTS: &[u8] = &[
    0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // qid
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, // offset
    4,    // type (DT_DIR)
    3, 0, b's', b'u', b'b', // name
    0xff, 0xfe, 0x00, 0x80,
];

fn t_samples() -> Vec<Tmessage<'static>> {
    let mut g = Gen::new();
    vec![
        Tmessage::Statfs(Tstatfs { fid: g.u32() }),
        Tmessage::Lopen(Tlopen {
            fid: g.u32(),
            flags: g.u32(),
        }),
        Tmessage::Lcreate(Tlcreate {
            fid: g.u32(),
            name: Str(b"new\xfffile"),
            flags: g.u32(),
            mode: g.u32(),
            gid: g.u32(),
        }),
        Tmessage::Symlink(Tsymlink {
            fid: g.u32(),
            name: Str(b"link\x80"),
            symtgt: Str(b"../target/\xfe\xff"),
            gid: g.u32(),
        }),
        Tmessage::Mknod(Tmknod {
            dfid: g.u32(),
            name: Str(b"fifo\xc3"),
            mode: g.u32(),
            major: g.u32(),
            minor: g.u32(),
            gid: g.u32(),
        }),
        Tmessage::Rename(Trename {
            fid: g.u32(),
            dfid: g.u32(),
            name: Str(b"renamed\xff"),
        }),
        Tmessage::Readlink(Treadlink { fid: g.u32() }),
        Tmessage::Getattr(Tgetattr {
            fid: g.u32(),
            request_mask: g.u64(),
        }),
        Tmessage::Setattr(Tsetattr {
            fid: g.u32(),
            valid: g.u32(),
            mode: g.u32(),
            uid: g.u32(),
            gid: g.u32(),
            size: g.u64(),
            atime_sec: g.u64(),
            atime_nsec: g.u64(),
            mtime_sec: g.u64(),
            mtime_nsec: g.u64(),
        }),
        Tmessage::Xattrwalk(Txattrwalk {
            fid: g.u32(),
            newfid: g.u32(),
            name: Str(b"user.\xffattr"),
        }),
        Tmessage::Xattrcreate(Txattrcreate {
            fid: g.u32(),
            name: Str(b"security.\xfe"),
            attr_size: g.u64(),
            flags: g.u32(),
        }),
        Tmessage::Readdir(Treaddir {
            fid: g.u32(),
            offset: g.u64(),
            count: g.u32(),
        }),
        Tmessage::Fsync(Tfsync {
            fid: g.u32(),
            datasync: g.u32(),
        }),
        Tmessage::Lock(Tlock {
            fid: g.u32(),
            lock_type: g.u8(),
            flags: g.u32(),
            start: g.u64(),
            length: g.u64(),
            proc_id: g.u32(),
            client_id: Str(b"client\x80one"),
        }),
        Tmessage::Getlock(Tgetlock {
            fid: g.u32(),
            lock_type: g.u8(),
            start: g.u64(),
            length: g.u64(),
            proc_id: g.u32(),
            client_id: Str(b"client\x81two"),
        }),
        Tmessage::Link(Tlink {
            dfid: g.u32(),
            fid: g.u32(),
            name: Str(b"hard\xfflink"),
        }),
        Tmessage::Mkdir(Tmkdir {
            dfid: g.u32(),
            name: Str(b"newdir\xfe"),
            mode: g.u32(),
            gid: g.u32(),
        }),
        Tmessage::Renameat(Trenameat {
            olddirfid: g.u32(),
            oldname: Str(b"old\xff"),
            newdirfid: g.u32(),
            newname: Str(b"new\xfe\xfd"),
        }),
        Tmessage::Unlinkat(Tunlinkat {
            dirfid: g.u32(),
            name: Str(b"gone\x80"),
            flags: g.u32(),
        }),
        Tmessage::Version(Tversion {
            msize: g.u32(),
            version: Str(b"9P2000.L"),
        }),
        Tmessage::Auth(Tauth {
            afid: g.u32(),
            uname: Str(b"user\xff"),
            aname: Str(b"/export\xfe"),
            n_uname: Some(g.u32()),
        }),
        Tmessage::Attach(Tattach {
            fid: g.u32(),
            afid: g.u32(),
            uname: Str(b"root\xc3"),
            aname: Str(b"/srv\x80"),
            n_uname: Some(g.u32()),
        }),
        Tmessage::Attach(Tattach {
            fid: g.u32(),
            afid: NOFID,
            uname: Str(b"glenda"),
            aname: Str(b""),
            n_uname: None,
        }),
        Tmessage::Open(Topen {
            fid: g.u32(),
            mode: g.u8(),
        }),
        Tmessage::Create(Tcreate {
            fid: g.u32(),
            name: Str(b"new\xff"),
            perm: g.u32(),
            mode: g.u8(),
            extension: None,
        }),
        Tmessage::Create(Tcreate {
            fid: g.u32(),
            name: Str(b"dev"),
            perm: DMDEVICE | 0o644,
            mode: g.u8(),
            extension: Some(Str(b"c 1 3")),
        }),
        Tmessage::Stat(Tstat { fid: g.u32() }),
        Tmessage::Wstat(Twstat {
            fid: g.u32(),
            stat: StatBlob(plan9_stat(&mut g, false)),
        }),
        Tmessage::Wstat(Twstat {
            fid: g.u32(),
            stat: StatBlob(plan9_stat(&mut g, true)),
        }),
        Tmessage::Flush(Tflush { oldtag: g.u16() }),
        Tmessage::Walk(Twalk {
            fid: g.u32(),
            newfid: g.u32(),
            names: names(0),
        }),
        Tmessage::Walk(Twalk {
            fid: g.u32(),
            newfid: g.u32(),
            names: names(1),
        }),
        Tmessage::Walk(Twalk {
            fid: g.u32(),
            newfid: g.u32(),
            names: names(MAXWELEM),
        }),
        Tmessage::Read(Tread {
            fid: g.u32(),
            offset: g.u64(),
            count: g.u32(),
        }),
        Tmessage::Write(Twrite {
            fid: g.u32(),
            offset: g.u64(),
            count: g.u32(),
        }),
        Tmessage::Clunk(Tclunk { fid: g.u32() }),
        Tmessage::Remove(Tremove { fid: g.u32() }),
    ]
}

/// A stat record with every field set; with the 9P2000.u extension if `u`.
fn plan9_stat(g: &mut Gen, u: bool) -> Stat<'static> {
    Stat {
        ty: g.u16(),
        dev: g.u32(),
        qid: g.qid(),
        mode: DMDIR | 0o755,
        atime: g.u32(),
        mtime: g.u32(),
        length: g.u64(),
        name: Str(b"name\xff"),
        uid: Str(b"glenda"),
        gid: Str(b"sys"),
        muid: Str(b""),
        ext: u.then(|| StatExtension {
            extension: Str(b"c 1 3"),
            n_uid: g.u32(),
            n_gid: g.u32(),
            n_muid: g.u32(),
        }),
    }
}

fn r_samples() -> Vec<Rmessage<'static>> {
    let mut g = Gen::new();
    vec![
        Rmessage::Lerror(Rlerror { ecode: g.u32() }),
        Rmessage::Statfs(Rstatfs {
            fs_type: g.u32(),
            bsize: g.u32(),
            blocks: g.u64(),
            bfree: g.u64(),
            bavail: g.u64(),
            files: g.u64(),
            ffree: g.u64(),
            fsid: g.u64(),
            namelen: g.u32(),
        }),
        Rmessage::Lopen(Rlopen {
            qid: g.qid(),
            iounit: g.u32(),
        }),
        Rmessage::Lcreate(Rlcreate {
            qid: g.qid(),
            iounit: g.u32(),
        }),
        Rmessage::Symlink(Rsymlink { qid: g.qid() }),
        Rmessage::Mknod(Rmknod { qid: g.qid() }),
        Rmessage::Rename(Rrename {}),
        Rmessage::Readlink(Rreadlink {
            target: Str(b"/some/\xff\xfetarget"),
        }),
        Rmessage::Getattr(Rgetattr {
            valid: g.u64(),
            qid: g.qid(),
            mode: g.u32(),
            uid: g.u32(),
            gid: g.u32(),
            nlink: g.u64(),
            rdev: g.u64(),
            size: g.u64(),
            blksize: g.u64(),
            blocks: g.u64(),
            atime_sec: g.u64(),
            atime_nsec: g.u64(),
            mtime_sec: g.u64(),
            mtime_nsec: g.u64(),
            ctime_sec: g.u64(),
            ctime_nsec: g.u64(),
            btime_sec: g.u64(),
            btime_nsec: g.u64(),
            gen: g.u64(),
            data_version: g.u64(),
        }),
        Rmessage::Setattr(Rsetattr {}),
        Rmessage::Xattrwalk(Rxattrwalk { size: g.u64() }),
        Rmessage::Xattrcreate(Rxattrcreate {}),
        Rmessage::Readdir(Rreaddir {
            data: Data(DIRENTS),
        }),
        Rmessage::Fsync(Rfsync {}),
        Rmessage::Lock(Rlock { status: g.u8() }),
        Rmessage::Getlock(Rgetlock {
            lock_type: g.u8(),
            start: g.u64(),
            length: g.u64(),
            proc_id: g.u32(),
            client_id: Str(b"holder\xff"),
        }),
        Rmessage::Link(Rlink {}),
        Rmessage::Mkdir(Rmkdir { qid: g.qid() }),
        Rmessage::Renameat(Rrenameat {}),
        Rmessage::Unlinkat(Runlinkat {}),
        Rmessage::Version(Rversion {
            msize: g.u32(),
            version: Str(b"9P2000.L"),
        }),
        Rmessage::Auth(Rauth { aqid: g.qid() }),
        Rmessage::Attach(Rattach { qid: g.qid() }),
        Rmessage::Error(Rerror {
            ename: Str(b"No such file \xff"),
            errno: None,
        }),
        Rmessage::Error(Rerror {
            ename: Str(b"No such file or directory"),
            errno: Some(2),
        }),
        Rmessage::Open(Ropen {
            qid: g.qid(),
            iounit: g.u32(),
        }),
        Rmessage::Create(Rcreate {
            qid: g.qid(),
            iounit: g.u32(),
        }),
        Rmessage::Stat(Rstat {
            stat: StatBlob(plan9_stat(&mut g, false)),
        }),
        Rmessage::Stat(Rstat {
            stat: StatBlob(plan9_stat(&mut g, true)),
        }),
        Rmessage::Wstat(Rwstat {}),
        Rmessage::Flush(Rflush {}),
        Rmessage::Walk(Rwalk { qids: g.qids(0) }),
        Rmessage::Walk(Rwalk { qids: g.qids(1) }),
        Rmessage::Walk(Rwalk {
            qids: g.qids(MAXWELEM),
        }),
        Rmessage::Read(Rread { count: g.u32() }),
        Rmessage::Write(Rwrite { count: g.u32() }),
        Rmessage::Clunk(Rclunk {}),
        Rmessage::Remove(Rremove {}),
    ]
}

/// Names every request variant. Exhaustive on purpose (no wildcard): a new
/// variant does not compile until it is listed here, and the round-trip test
/// then fails until it also has a sample.
fn t_variant(m: &Tmessage) -> &'static str {
    match m {
        Tmessage::Statfs(_) => "Statfs",
        Tmessage::Lopen(_) => "Lopen",
        Tmessage::Lcreate(_) => "Lcreate",
        Tmessage::Symlink(_) => "Symlink",
        Tmessage::Mknod(_) => "Mknod",
        Tmessage::Rename(_) => "Rename",
        Tmessage::Readlink(_) => "Readlink",
        Tmessage::Getattr(_) => "Getattr",
        Tmessage::Setattr(_) => "Setattr",
        Tmessage::Xattrwalk(_) => "Xattrwalk",
        Tmessage::Xattrcreate(_) => "Xattrcreate",
        Tmessage::Readdir(_) => "Readdir",
        Tmessage::Fsync(_) => "Fsync",
        Tmessage::Lock(_) => "Lock",
        Tmessage::Getlock(_) => "Getlock",
        Tmessage::Link(_) => "Link",
        Tmessage::Mkdir(_) => "Mkdir",
        Tmessage::Renameat(_) => "Renameat",
        Tmessage::Unlinkat(_) => "Unlinkat",
        Tmessage::Version(_) => "Version",
        Tmessage::Auth(_) => "Auth",
        Tmessage::Attach(_) => "Attach",
        Tmessage::Flush(_) => "Flush",
        Tmessage::Walk(_) => "Walk",
        Tmessage::Read(_) => "Read",
        Tmessage::Write(_) => "Write",
        Tmessage::Clunk(_) => "Clunk",
        Tmessage::Remove(_) => "Remove",
        Tmessage::Open(_) => "Open",
        Tmessage::Create(_) => "Create",
        Tmessage::Stat(_) => "Stat",
        Tmessage::Wstat(_) => "Wstat",
    }
}

/// Names every reply variant; exhaustive on purpose, see [`t_variant`].
fn r_variant(m: &Rmessage) -> &'static str {
    match m {
        Rmessage::Lerror(_) => "Lerror",
        Rmessage::Statfs(_) => "Statfs",
        Rmessage::Lopen(_) => "Lopen",
        Rmessage::Lcreate(_) => "Lcreate",
        Rmessage::Symlink(_) => "Symlink",
        Rmessage::Mknod(_) => "Mknod",
        Rmessage::Rename(_) => "Rename",
        Rmessage::Readlink(_) => "Readlink",
        Rmessage::Getattr(_) => "Getattr",
        Rmessage::Setattr(_) => "Setattr",
        Rmessage::Xattrwalk(_) => "Xattrwalk",
        Rmessage::Xattrcreate(_) => "Xattrcreate",
        Rmessage::Readdir(_) => "Readdir",
        Rmessage::Fsync(_) => "Fsync",
        Rmessage::Lock(_) => "Lock",
        Rmessage::Getlock(_) => "Getlock",
        Rmessage::Link(_) => "Link",
        Rmessage::Mkdir(_) => "Mkdir",
        Rmessage::Renameat(_) => "Renameat",
        Rmessage::Unlinkat(_) => "Unlinkat",
        Rmessage::Version(_) => "Version",
        Rmessage::Auth(_) => "Auth",
        Rmessage::Attach(_) => "Attach",
        Rmessage::Error(_) => "Error",
        Rmessage::Flush(_) => "Flush",
        Rmessage::Walk(_) => "Walk",
        Rmessage::Read(_) => "Read",
        Rmessage::Write(_) => "Write",
        Rmessage::Clunk(_) => "Clunk",
        Rmessage::Remove(_) => "Remove",
        Rmessage::Open(_) => "Open",
        Rmessage::Create(_) => "Create",
        Rmessage::Stat(_) => "Stat",
        Rmessage::Wstat(_) => "Wstat",
    }
}

/// The type bytes a decoder knows, found by probing all 256 of them: an
/// unknown type is the only way to get `UnknownType` from an empty body.
fn known_types(decode: impl Fn(u8) -> Result<(), DecodeError>) -> BTreeSet<u8> {
    (0..=u8::MAX)
        .filter(|&t| decode(t) != Err(DecodeError::UnknownType(t)))
        .collect()
}

// ---------------------------------------------------------------------------
// Frame helpers
// ---------------------------------------------------------------------------

const TAGS: [u16; 3] = [0x0000, 0xa35c, NOTAG];

fn size_field(frame: &[u8]) -> u32 {
    u32::from_le_bytes(frame[0..4].try_into().unwrap())
}

fn set_size(frame: &mut [u8], size: usize) {
    frame[0..4].copy_from_slice(&(size as u32).to_le_bytes());
}

fn encode_t(msg: &Tmessage, tag: u16) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(tag, &mut out);
    out
}

fn encode_r(msg: &Rmessage, tag: u16) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(tag, &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a message ends, which decides what its prefixes and a trailing
/// byte decode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// The last field is a fixed one.
    Fixed,
    /// Data follows the fixed fields (Twrite, Rread).
    DataFollows,
    /// A field only some dialects send ends the message, and is present
    /// with this many bytes: the frame without it is another valid message.
    Optional(usize),
    /// That field is absent: a trailing byte starts it (truncated).
    OptionalAbsent,
}

fn t_tail(msg: &Tmessage) -> Tail {
    let optional = |len: Option<usize>| len.map_or(Tail::OptionalAbsent, Tail::Optional);
    match msg {
        Tmessage::Write(_) => Tail::DataFollows,
        Tmessage::Attach(t) => optional(t.n_uname.map(|_| 4)),
        Tmessage::Auth(t) => optional(t.n_uname.map(|_| 4)),
        Tmessage::Create(t) => optional(t.extension.map(|e| 2 + e.0.len())),
        _ => Tail::Fixed,
    }
}

fn r_tail(msg: &Rmessage) -> Tail {
    match msg {
        Rmessage::Read(_) => Tail::DataFollows,
        Rmessage::Error(r) => r.errno.map_or(Tail::OptionalAbsent, |_| Tail::Optional(4)),
        _ => Tail::Fixed,
    }
}

/// Checks shared by requests and replies on a valid encoded frame. `decode`
/// decodes a frame and asserts it is the expected message with the expected
/// tag.
fn check_frame(
    what: &str,
    frame: &[u8],
    tail: Tail,
    decode: impl Fn(&[u8]) -> Result<(), DecodeError>,
) {
    assert_eq!(
        size_field(frame) as usize,
        frame.len(),
        "{what}: size field"
    );
    assert_eq!(decode(frame), Ok(()), "{what}: decode");

    // Every strict prefix is an error, whether the size field still claims
    // the full length or was patched to the prefix's length.
    for len in 0..frame.len() {
        let prefix = &frame[..len];
        assert_eq!(
            decode(prefix),
            Err(DecodeError::Truncated),
            "{what}: prefix of {len} bytes"
        );
        let without_optional = matches!(tail, Tail::Optional(n) if len == frame.len() - n);
        if len >= 4 && !without_optional {
            let mut patched = prefix.to_vec();
            set_size(&mut patched, len);
            assert_eq!(
                decode(&patched),
                Err(DecodeError::Truncated),
                "{what}: prefix of {len} bytes, size patched"
            );
        }
    }

    // A byte past the fixed fields, counted by the size field: only the
    // messages whose data follows accept (and ignore) it.
    let mut longer = frame.to_vec();
    longer.push(0xa5);
    set_size(&mut longer, frame.len() + 1);
    let expected = match tail {
        Tail::DataFollows => Ok(()),
        Tail::OptionalAbsent => Err(DecodeError::Truncated),
        Tail::Fixed | Tail::Optional(_) => Err(DecodeError::TrailingBytes),
    };
    assert_eq!(decode(&longer), expected, "{what}: one trailing byte");

    // Bytes after the frame (not counted by its size field) are not part of it.
    let mut padded = frame.to_vec();
    padded.extend_from_slice(&[0xa5, 0x5a, 0xff]);
    assert_eq!(decode(&padded), Ok(()), "{what}: bytes after the frame");
}

fn check_t_round_trip(msg: &Tmessage<'static>, tag: u16) {
    let what = format!("T{} {msg:?} tag {tag:#06x}", t_variant(msg));
    let frame = encode_t(msg, tag);
    assert_eq!(
        Header::parse(&frame),
        Ok(Header {
            size: frame.len() as u32,
            msg_type: msg.msg_type(),
            tag,
        }),
        "{what}: header"
    );
    check_frame(&what, &frame, t_tail(msg), |f: &[u8]| {
        decode_tmessage(f).map(|(t, m)| assert_eq!((t, m), (tag, *msg), "{what}"))
    });
    // The body decoder agrees with the frame decoder.
    assert_eq!(
        Tmessage::decode(msg.msg_type(), &frame[HEADER_SIZE..]),
        Ok(*msg),
        "{what}: body decode"
    );
    // A request is not a reply.
    assert_eq!(
        decode_rmessage(&frame).err(),
        Some(DecodeError::UnknownType(msg.msg_type())),
        "{what}: as reply"
    );
    // Encoding appends: what was in the buffer stays, the size field counts
    // only this message.
    let mut out = vec![0xee; 5];
    msg.encode(tag, &mut out);
    assert_eq!(&out[..5], &[0xee; 5], "{what}: prefix kept");
    assert_eq!(&out[5..], &frame[..], "{what}: appended frame");
}

fn check_r_round_trip(msg: &Rmessage<'static>, tag: u16) {
    let what = format!("R{} {msg:?} tag {tag:#06x}", r_variant(msg));
    let frame = encode_r(msg, tag);
    assert_eq!(
        Header::parse(&frame),
        Ok(Header {
            size: frame.len() as u32,
            msg_type: msg.msg_type(),
            tag,
        }),
        "{what}: header"
    );
    check_frame(&what, &frame, r_tail(msg), |f: &[u8]| {
        decode_rmessage(f).map(|(t, m)| assert_eq!((t, m), (tag, *msg), "{what}"))
    });
    assert_eq!(
        Rmessage::decode(msg.msg_type(), &frame[HEADER_SIZE..]),
        Ok(*msg),
        "{what}: body decode"
    );
    assert_eq!(
        decode_tmessage(&frame).err(),
        Some(DecodeError::UnknownType(msg.msg_type())),
        "{what}: as request"
    );
    let mut out = vec![0xee; 5];
    msg.encode(tag, &mut out);
    assert_eq!(&out[..5], &[0xee; 5], "{what}: prefix kept");
    assert_eq!(&out[5..], &frame[..], "{what}: appended frame");
}

// ---------------------------------------------------------------------------
// 1. Round trips
// ---------------------------------------------------------------------------

#[test]
fn round_trip_every_tmessage_variant() {
    let samples = t_samples();
    let mut variants = BTreeSet::new();
    let mut types = BTreeSet::new();
    for msg in &samples {
        variants.insert(t_variant(msg));
        types.insert(msg.msg_type());
        for tag in TAGS {
            check_t_round_trip(msg, tag);
        }
    }
    let known = known_types(|t| Tmessage::decode(t, &[]).map(|_| ()));
    assert_eq!(types, known, "request types with a sample vs. known types");
    assert_eq!(
        variants.len(),
        known.len(),
        "variants covered: {variants:?}"
    );
    // The walk samples cover 0, 1 and MAXWELEM names.
    let walk_lens: BTreeSet<usize> = samples
        .iter()
        .filter_map(|m| match m {
            Tmessage::Walk(w) => Some(w.names.len()),
            _ => None,
        })
        .collect();
    assert_eq!(walk_lens, BTreeSet::from([0, 1, MAXWELEM]));
}

#[test]
fn round_trip_every_rmessage_variant() {
    let samples = r_samples();
    let mut variants = BTreeSet::new();
    let mut types = BTreeSet::new();
    for msg in &samples {
        variants.insert(r_variant(msg));
        types.insert(msg.msg_type());
        for tag in TAGS {
            check_r_round_trip(msg, tag);
        }
    }
    let known = known_types(|t| Rmessage::decode(t, &[]).map(|_| ()));
    assert_eq!(types, known, "reply types with a sample vs. known types");
    assert_eq!(
        variants.len(),
        known.len(),
        "variants covered: {variants:?}"
    );
    let walk_lens: BTreeSet<usize> = samples
        .iter()
        .filter_map(|m| match m {
            Rmessage::Walk(w) => Some(w.qids.len()),
            _ => None,
        })
        .collect();
    assert_eq!(walk_lens, BTreeSet::from([0, 1, MAXWELEM]));
}

#[test]
fn message_type_numbers_match_the_spec() {
    // From the Linux client's include/net/9p/9p.h.
    let expected_t: &[(&str, u8)] = &[
        ("Statfs", 8),
        ("Lopen", 12),
        ("Lcreate", 14),
        ("Symlink", 16),
        ("Mknod", 18),
        ("Rename", 20),
        ("Readlink", 22),
        ("Getattr", 24),
        ("Setattr", 26),
        ("Xattrwalk", 30),
        ("Xattrcreate", 32),
        ("Readdir", 40),
        ("Fsync", 50),
        ("Lock", 52),
        ("Getlock", 54),
        ("Link", 70),
        ("Mkdir", 72),
        ("Renameat", 74),
        ("Unlinkat", 76),
        ("Version", 100),
        ("Auth", 102),
        ("Attach", 104),
        ("Flush", 108),
        ("Walk", 110),
        ("Open", 112),
        ("Create", 114),
        ("Read", 116),
        ("Write", 118),
        ("Clunk", 120),
        ("Remove", 122),
        ("Stat", 124),
        ("Wstat", 126),
    ];
    for msg in t_samples() {
        let name = t_variant(&msg);
        let (_, ty) = expected_t.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(msg.msg_type(), *ty, "T{name}");
    }
    // Every reply is its request's type + 1, plus Rlerror (7) and Rerror (107).
    for msg in r_samples() {
        let name = r_variant(&msg);
        let ty = match name {
            "Lerror" => 7,
            "Error" => 107,
            _ => expected_t.iter().find(|(n, _)| *n == name).unwrap().1 + 1,
        };
        assert_eq!(msg.msg_type(), ty, "R{name}");
    }
}

#[test]
fn round_trip_zero_fields_and_empty_strings() {
    let t = [
        Tmessage::Version(Tversion::default()),
        Tmessage::Attach(Tattach::default()),
        Tmessage::Lcreate(Tlcreate::default()),
        Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 2,
            names: WalkList::from_slice(&[Str(b""), Str(b"x"), Str(b"")]).unwrap(),
        }),
        Tmessage::Write(Twrite::default()),
    ];
    for msg in &t {
        check_t_round_trip(msg, 0);
    }
    let r = [
        Rmessage::Readdir(Rreaddir::default()),
        Rmessage::Readlink(Rreadlink::default()),
        Rmessage::Getattr(Rgetattr::default()),
        Rmessage::Read(Rread::default()),
    ];
    for msg in &r {
        check_r_round_trip(msg, 0);
    }
}

#[test]
fn data_follows_messages_with_their_data_and_patched_size() {
    // Twrite: fixed fields, then `count` data bytes, then patch_size.
    let w = Twrite {
        fid: 0x0a0b_0c0d,
        offset: 0x1122_3344_5566_7788,
        count: 5,
    };
    let mut out = vec![0x99; 3];
    Tmessage::Write(w).encode(0x4321, &mut out);
    assert_eq!(out.len() - 3, TWRITE_HEADER_SIZE);
    out.extend_from_slice(b"hello");
    patch_size(&mut out, 3);
    assert_eq!(size_field(&out[3..]) as usize, TWRITE_HEADER_SIZE + 5);
    assert_eq!(&out[..3], &[0x99; 3]);
    assert_eq!(decode_tmessage(&out[3..]), Ok((0x4321, Tmessage::Write(w))));
    assert_eq!(&out[3 + TWRITE_HEADER_SIZE..], b"hello");

    // Rread likewise.
    let r = Rread { count: 4 };
    let mut out = Vec::new();
    Rmessage::Read(r).encode(0x0102, &mut out);
    assert_eq!(out.len(), RREAD_HEADER_SIZE);
    out.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    patch_size(&mut out, 0);
    assert_eq!(size_field(&out) as usize, RREAD_HEADER_SIZE + 4);
    assert_eq!(decode_rmessage(&out), Ok((0x0102, Rmessage::Read(r))));
}

#[test]
fn walk_list_bounds() {
    let seventeen = [Str(b"n"); MAXWELEM + 1];
    assert!(WalkList::from_slice(&seventeen).is_none());
    let mut list = WalkList::from_slice(&seventeen[..MAXWELEM]).unwrap();
    assert_eq!(list.len(), MAXWELEM);
    assert_eq!(list.push(Str(b"extra")), Err(Str(b"extra")));
    assert_eq!(list.len(), MAXWELEM);
    let empty: WalkList<Qid> = WalkList::new();
    assert!(empty.is_empty());
    assert_eq!(empty.as_slice(), &[]);
}

#[test]
fn str_longer_than_u16_max_is_clamped() {
    // Documented: callers bound strings; the encoder clamps rather than
    // writing a length that disagrees with the bytes.
    let long = vec![b'x'; u16::MAX as usize + 10];
    let msg = Rmessage::Readlink(Rreadlink { target: Str(&long) });
    let frame = encode_r(&msg, 1);
    assert_eq!(frame.len(), HEADER_SIZE + 2 + u16::MAX as usize);
    assert_eq!(
        decode_rmessage(&frame),
        Ok((
            1,
            Rmessage::Readlink(Rreadlink {
                target: Str(&long[..u16::MAX as usize]),
            })
        ))
    );
}

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
