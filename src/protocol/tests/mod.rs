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

mod vectors;
