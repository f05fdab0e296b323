//! One 9P test client, over the VMM harness or a socket stream, with a
//! codec of its own: a small encoder (`T`) and decoder (`Dec`) written
//! here from the protocol's description, deliberately independent of the
//! crate's `protocol` module, so that it stays an oracle for it.
//!
//! Every reply's frame is checked (size field, tag, type: the request's
//! plus one, or an error); `try_X` gives the error's errno, `X` fails the
//! test on one.

use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};

use super::vmm::{Area, Chain, Slot, Vmm};

// 9P2000.L and 9P2000(.u) message types (R-message = T-message + 1).
pub const RLERROR: u8 = 7;
pub const TSTATFS: u8 = 8;
pub const TLOPEN: u8 = 12;
pub const TLCREATE: u8 = 14;
pub const TGETATTR: u8 = 24;
pub const TSETATTR: u8 = 26;
pub const TREADDIR: u8 = 40;
pub const TLOCK: u8 = 52;
pub const TGETLOCK: u8 = 54;
pub const TMKDIR: u8 = 72;
pub const TUNLINKAT: u8 = 76;
pub const TVERSION: u8 = 100;
pub const TATTACH: u8 = 104;
pub const RERROR: u8 = 107;
pub const TFLUSH: u8 = 108;
pub const TWALK: u8 = 110;
pub const TOPEN: u8 = 112;
pub const TREAD: u8 = 116;
pub const TWRITE: u8 = 118;
pub const TCLUNK: u8 = 120;
pub const TSTAT: u8 = 124;

pub const NOTAG: u16 = 0xffff;
pub const NOFID: u32 = 0xffff_ffff;
pub const GETATTR_BASIC: u64 = 0x7ff;
pub const GETATTR_ALL: u64 = 0x3fff;
pub const AT_REMOVEDIR: u32 = 0x200;
pub const QTDIR: u8 = 0x80;
pub const QTFILE: u8 = 0;

// Linux open flags as 9P2000.L carries them (x86 values).
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_DIRECTORY: u32 = 0o200000;

/// Room for replies that carry no data.
pub const REPLY_CAP: u32 = 8192;

// ---- the encoder ----

/// T-message builder: size[4] type[1] tag[2] ...; `done` fills in the size.
pub struct T(Vec<u8>);

impl T {
    pub fn new(ty: u8, tag: u16) -> T {
        let mut v = vec![0, 0, 0, 0, ty];
        v.extend_from_slice(&tag.to_le_bytes());
        T(v)
    }
    pub fn u8(mut self, v: u8) -> T {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> T {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> T {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> T {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn str(self, s: &str) -> T {
        self.u16(s.len() as u16).raw(s.as_bytes())
    }
    pub fn raw(mut self, b: &[u8]) -> T {
        self.0.extend_from_slice(b);
        self
    }
    pub fn done(mut self) -> Vec<u8> {
        let n = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

/// Hot-path messages, built on the stack.
pub fn tread(tag: u16, fid: u32, offset: u64, count: u32) -> [u8; 23] {
    let mut m = [0u8; 23];
    m[0..4].copy_from_slice(&23u32.to_le_bytes());
    m[4] = TREAD;
    m[5..7].copy_from_slice(&tag.to_le_bytes());
    m[7..11].copy_from_slice(&fid.to_le_bytes());
    m[11..19].copy_from_slice(&offset.to_le_bytes());
    m[19..23].copy_from_slice(&count.to_le_bytes());
    m
}

/// The 23 bytes before a Twrite's data (whose size counts `count` bytes
/// of data after them).
pub fn twrite_header(tag: u16, fid: u32, offset: u64, count: u32) -> [u8; 23] {
    let mut m = tread(tag, fid, offset, count);
    m[0..4].copy_from_slice(&(23 + count).to_le_bytes());
    m[4] = TWRITE;
    m
}

pub fn tgetattr(tag: u16, fid: u32, mask: u64) -> [u8; 19] {
    let mut m = [0u8; 19];
    m[0..4].copy_from_slice(&19u32.to_le_bytes());
    m[4] = TGETATTR;
    m[5..7].copy_from_slice(&tag.to_le_bytes());
    m[7..11].copy_from_slice(&fid.to_le_bytes());
    m[11..19].copy_from_slice(&mask.to_le_bytes());
    m
}

pub fn tflush(tag: u16, oldtag: u16) -> [u8; 9] {
    let mut m = [0u8; 9];
    m[0..4].copy_from_slice(&9u32.to_le_bytes());
    m[4] = TFLUSH;
    m[5..7].copy_from_slice(&tag.to_le_bytes());
    m[7..9].copy_from_slice(&oldtag.to_le_bytes());
    m
}

/// The header of a reply in a slot's reply area: (size, type, tag).
pub fn reply_header(vmm: &Vmm, slot: &Slot) -> (u32, u8, u16) {
    let mut h = [0u8; 7];
    vmm.read(slot.reply, &mut h);
    (
        u32::from_le_bytes(h[0..4].try_into().unwrap()),
        h[4],
        u16::from_le_bytes([h[5], h[6]]),
    )
}

// ---- the decoder ----

/// Cursor over an R-message body; panics on truncation (a malformed reply
/// fails the test).
pub struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Dec { b, pos: 0 }
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.pos + n <= self.b.len(),
            "reply truncated: need {n} bytes at {} of {}",
            self.pos,
            self.b.len()
        );
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn u8(&mut self) -> u8 {
        self.bytes(1)[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes(2).try_into().unwrap())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes(4).try_into().unwrap())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes(8).try_into().unwrap())
    }
    /// A string's bytes, whatever they are.
    pub fn str_bytes(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.bytes(n)
    }
    pub fn string(&mut self) -> String {
        String::from_utf8(self.str_bytes().to_vec()).expect("reply string is not UTF-8")
    }
    pub fn qid(&mut self) -> Qid {
        Qid {
            ty: self.u8(),
            version: self.u32(),
            path: self.u64(),
        }
    }
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    pub fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }
    pub fn end(&self) {
        assert!(
            self.at_end(),
            "{} unexpected trailing bytes in reply",
            self.b.len() - self.pos
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qid {
    pub ty: u8,
    pub version: u32,
    pub path: u64,
}

/// An error reply's errno: Rlerror's, 9P2000.u's Rerror's, or the one
/// whose text a 9P2000 Rerror carries (`u32::MAX` if none has it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub u32);

impl Errno {
    pub fn of(errno: i32) -> Errno {
        Errno(errno as u32)
    }
}

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "errno {} ({})",
            self.0,
            io::Error::from_raw_os_error(self.0 as i32)
        )
    }
}

/// The text of `errno` as 9P2000 carries it ("Stale file handle").
pub fn error_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    text[..text.find(" (os error").unwrap_or(text.len())].to_string()
}

/// Rgetattr.
#[derive(Debug)]
pub struct Attr {
    pub valid: u64,
    pub qid: Qid,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    pub blocks: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
}

impl Attr {
    pub fn parse(body: &[u8]) -> Attr {
        let mut d = Dec::new(body);
        let valid = d.u64();
        let qid = d.qid();
        let mode = d.u32();
        let uid = d.u32();
        let gid = d.u32();
        let nlink = d.u64();
        let rdev = d.u64();
        let size = d.u64();
        let _blksize = d.u64();
        let blocks = d.u64();
        let _atime = (d.u64(), d.u64());
        let mtime_sec = d.u64();
        let mtime_nsec = d.u64();
        let _ctime = (d.u64(), d.u64());
        let _btime = (d.u64(), d.u64());
        let _gen = d.u64();
        let _data_version = d.u64();
        d.end();
        Attr {
            valid,
            qid,
            mode,
            uid,
            gid,
            nlink,
            rdev,
            size,
            blocks,
            mtime_sec,
            mtime_nsec,
        }
    }
}

/// A 9P2000(.u) stat record.
#[derive(Debug)]
pub struct Stat {
    pub qid: Qid,
    pub mode: u32,
    pub length: u64,
    pub name: Vec<u8>,
    pub uid: Vec<u8>,
    pub gid: Vec<u8>,
}

impl Stat {
    /// The record at the decoder (9P2000.u's extension skipped).
    pub fn decode(d: &mut Dec<'_>) -> Stat {
        let size = usize::from(d.u16());
        let mut r = Dec::new(d.bytes(size));
        let (_type, _dev) = (r.u16(), r.u32());
        let qid = r.qid();
        let mode = r.u32();
        let (_atime, _mtime) = (r.u32(), r.u32());
        let length = r.u64();
        let name = r.str_bytes().to_vec();
        let uid = r.str_bytes().to_vec();
        let gid = r.str_bytes().to_vec();
        let _muid = r.str_bytes();
        Stat {
            qid,
            mode,
            length,
            name,
            uid,
            gid,
        }
    }

    /// Rstat's body: stat[n] holding one record.
    pub fn parse_rstat(body: &[u8]) -> Stat {
        let mut d = Dec::new(body);
        let n = usize::from(d.u16());
        let mut inner = Dec::new(d.bytes(n));
        d.end();
        let stat = Stat::decode(&mut inner);
        inner.end();
        stat
    }
}

/// A Treaddir entry.
#[derive(Debug)]
pub struct DirEnt {
    pub qid: Qid,
    pub offset: u64,
    pub ty: u8,
    pub name: String,
}

/// Reply bodies.
pub mod parse {
    use super::{Dec, DirEnt, Qid};

    pub fn walk(body: &[u8]) -> Vec<Qid> {
        let mut d = Dec::new(body);
        let n = d.u16();
        let q = (0..n).map(|_| d.qid()).collect();
        d.end();
        q
    }

    /// Rread's (and Rreaddir's) data.
    pub fn read(body: &[u8]) -> Vec<u8> {
        let mut d = Dec::new(body);
        let n = d.u32();
        let data = d.bytes(n as usize).to_vec();
        d.end();
        data
    }

    pub fn write(body: &[u8]) -> u32 {
        let mut d = Dec::new(body);
        let n = d.u32();
        d.end();
        n
    }

    /// Rlopen's and Rlcreate's (qid, iounit).
    pub fn open(body: &[u8]) -> (Qid, u32) {
        let mut d = Dec::new(body);
        let r = (d.qid(), d.u32());
        d.end();
        r
    }

    pub fn qid(body: &[u8]) -> Qid {
        let mut d = Dec::new(body);
        let q = d.qid();
        d.end();
        q
    }

    pub fn empty(body: &[u8]) {
        Dec::new(body).end();
    }

    /// Rreaddir's entries.
    pub fn dirents(data: &[u8]) -> Vec<DirEnt> {
        let mut e = Dec::new(data);
        let mut out = Vec::new();
        while !e.at_end() {
            let qid = e.qid();
            let offset = e.u64();
            let ty = e.u8();
            let name = String::from_utf8_lossy(e.str_bytes()).into_owned();
            out.push(DirEnt {
                qid,
                offset,
                ty,
                name,
            });
        }
        out
    }
}

/// Checks the 9P2000.L R-message `reply` to the T-message `msg` (size
/// field, tag, type: Rlerror or the request's plus one); Ok(body) or
/// Err(the Rlerror's errno).
pub fn check_reply(msg: &[u8], reply: &[u8]) -> Result<Vec<u8>, Errno> {
    check(msg, reply, false)
}

/// The same in 9P2000 or 9P2000.u: errors are Rerror.
pub fn check_reply_legacy(msg: &[u8], reply: &[u8]) -> Result<Vec<u8>, Errno> {
    check(msg, reply, true)
}

fn check(msg: &[u8], reply: &[u8], legacy: bool) -> Result<Vec<u8>, Errno> {
    let ty = msg[4];
    let tag = u16::from_le_bytes([msg[5], msg[6]]);
    assert!(
        reply.len() >= 7,
        "reply to type {ty} too short: {} bytes {reply:02x?}",
        reply.len()
    );
    let size = u32::from_le_bytes(reply[0..4].try_into().unwrap());
    assert_eq!(
        size as usize,
        reply.len(),
        "R-message size field differs from the reply's length"
    );
    let rtag = u16::from_le_bytes([reply[5], reply[6]]);
    assert_eq!(rtag, tag, "reply tag does not echo the request tag");
    let body = reply[7..].to_vec();
    match reply[4] {
        RLERROR if !legacy => {
            let mut d = Dec::new(&body);
            let e = d.u32();
            d.end();
            Err(Errno(e))
        }
        RERROR if legacy => {
            let mut d = Dec::new(&body);
            let text = d.str_bytes().to_vec();
            if d.remaining() == 4 {
                return Err(Errno(d.u32()));
            }
            d.end();
            let errno = (1..134)
                .find(|&n| error_text(n).as_bytes() == text)
                .map_or(u32::MAX, |n| n as u32);
            Err(Errno(errno))
        }
        r => {
            assert_eq!(r, ty + 1, "reply type for T-message {ty}");
            Ok(body)
        }
    }
}

// ---- transports ----

/// How a client's messages reach the daemon.
pub trait Transport {
    /// Sends one T-message; the whole R-message. `room` is the most the
    /// reply may need when it carries data.
    fn rpc(&mut self, msg: &[u8], room: Option<u32>) -> Vec<u8>;
}

/// A socket stream (`--listen`, or a connection served in-process).
pub struct Stream<S>(pub S);

impl<S: Read + Write> Transport for Stream<S> {
    fn rpc(&mut self, msg: &[u8], _room: Option<u32>) -> Vec<u8> {
        self.0.write_all(msg).expect("send a T-message");
        read_frame(&mut self.0)
    }
}

/// The next whole frame from a stream.
pub fn read_frame(stream: &mut impl Read) -> Vec<u8> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("read a reply's size");
    let mut frame = size.to_vec();
    frame.resize(u32::from_le_bytes(size) as usize, 0);
    stream
        .read_exact(&mut frame[4..])
        .expect("read a reply's rest");
    frame
}

/// The VMM harness, each request in one general-purpose slot (64 KiB each
/// way, laid out when the client is made), posted and waited for alone.
pub struct OnVmm {
    pub vmm: Vmm,
    general: Slot,
}

impl Transport for OnVmm {
    fn rpc(&mut self, msg: &[u8], room: Option<u32>) -> Vec<u8> {
        let s = self.general;
        assert!(msg.len() <= s.request_len as usize && room.unwrap_or(0) <= s.reply_len);
        self.vmm.write(s.request, msg);
        let len = self.vmm.roundtrip(s.head) as usize;
        self.vmm.read_vec(s.reply, len)
    }
}

/// The VMM harness, each request in a chain of its own (`Vmm::submit`):
/// guard bytes around its buffers, one writable buffer of `cap` bytes (or
/// the room a reply with data needs).
pub struct Chains {
    pub vmm: Vmm,
    pub cap: u32,
}

impl Transport for Chains {
    fn rpc(&mut self, msg: &[u8], room: Option<u32>) -> Vec<u8> {
        let cap = room.unwrap_or(self.cap);
        let done = self.vmm.submit_one(Chain::simple(&[msg], &[cap]));
        if done.len >= 4 {
            let size = u32::from_le_bytes(done.reply[0..4].try_into().unwrap());
            assert_eq!(
                size, done.len,
                "R-message size field differs from the used element's len"
            );
        }
        done.reply
    }
}

// ---- the client ----

/// A 9P client on a transport (its fields reachable through it: a VMM
/// client's `client.vmm`).
pub struct Client<X = OnVmm> {
    pub link: X,
    next_tag: u16,
    /// The session speaks 9P2000 or 9P2000.u (errors are Rerror).
    legacy: bool,
}

impl<X> Deref for Client<X> {
    type Target = X;
    fn deref(&self) -> &X {
        &self.link
    }
}

impl<X> DerefMut for Client<X> {
    fn deref_mut(&mut self) -> &mut X {
        &mut self.link
    }
}

impl Client<OnVmm> {
    /// A client of the VMM's queue, through one general-purpose slot.
    pub fn new(mut vmm: Vmm) -> Client<OnVmm> {
        let general = vmm.slot(Area::one(64 * 1024), Area::one(64 * 1024));
        Client::over(OnVmm { vmm, general })
    }
}

impl Client<Chains> {
    /// A client of the VMM's queue, each request a chain of its own.
    pub fn chains(vmm: Vmm) -> Client<Chains> {
        Client::over(Chains {
            vmm,
            cap: REPLY_CAP,
        })
    }
}

impl<S: Read + Write> Client<Stream<S>> {
    pub fn stream(stream: S) -> Client<Stream<S>> {
        Client::over(Stream(stream))
    }

    /// The stream itself, to send or read past the client.
    pub fn socket(&mut self) -> &mut S {
        &mut self.link.0
    }
}

/// The uid of this process (what a client attaches as).
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The gid of this process.
pub fn gid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

impl<X: Transport> Client<X> {
    pub fn over(link: X) -> Client<X> {
        Client {
            link,
            next_tag: 1,
            legacy: false,
        }
    }

    /// The next tag (never NOTAG).
    pub fn tag(&mut self) -> u16 {
        let t = self.next_tag;
        self.next_tag = if t >= 0xfffe { 1 } else { t + 1 };
        t
    }

    /// Sends a T-message; its reply, whole and unchecked.
    pub fn raw(&mut self, msg: &[u8]) -> Vec<u8> {
        self.link.rpc(msg, None)
    }

    /// Sends a T-message; the reply's body, or the error's errno.
    pub fn try_call(&mut self, msg: &[u8]) -> Result<Vec<u8>, Errno> {
        self.try_call_room(msg, None)
    }

    /// The same for a reply that may need `room` bytes.
    pub fn try_call_room(&mut self, msg: &[u8], room: Option<u32>) -> Result<Vec<u8>, Errno> {
        let reply = self.link.rpc(msg, room);
        check(msg, &reply, self.legacy)
    }

    /// Sends a T-message; the reply's body (the test fails on an error).
    #[track_caller]
    pub fn call(&mut self, msg: &[u8]) -> Vec<u8> {
        self.try_call(msg)
            .unwrap_or_else(|e| panic!("T-message {} failed: {e:?}", msg[4]))
    }

    /// Tversion: the msize and version the server answers.
    #[track_caller]
    pub fn version(&mut self, msize: u32, version: &str) -> (u32, String) {
        let m = T::new(TVERSION, NOTAG).u32(msize).str(version).done();
        let body = self.call(&m);
        let mut d = Dec::new(&body);
        let r = (d.u32(), d.string());
        d.end();
        self.legacy = r.1 == "9P2000" || r.1 == "9P2000.u";
        r
    }

    /// Tattach (`n_uname` None: 9P2000's, without it).
    pub fn try_attach(
        &mut self,
        fid: u32,
        uname: &str,
        aname: &str,
        n_uname: Option<u32>,
    ) -> Result<Qid, Errno> {
        let mut t = T::new(TATTACH, self.tag())
            .u32(fid)
            .u32(NOFID)
            .str(uname)
            .str(aname);
        if let Some(n) = n_uname {
            t = t.u32(n);
        }
        Ok(parse::qid(&self.try_call(&t.done())?))
    }

    #[track_caller]
    pub fn attach(&mut self, fid: u32, uname: &str, aname: &str, n_uname: Option<u32>) -> Qid {
        self.try_attach(fid, uname, aname, n_uname)
            .unwrap_or_else(|e| panic!("Tattach: {e:?}"))
    }

    /// Tversion 9P2000.L of `msize` (which the server must grant) and
    /// Tattach of `fid` to the share's root, as this process's user.
    #[track_caller]
    pub fn mount(&mut self, msize: u32, fid: u32) -> Qid {
        let (got, version) = self.version(msize, "9P2000.L");
        assert_eq!(version, "9P2000.L");
        assert_eq!(got, msize, "msize");
        self.attach(fid, "root", "", Some(uid()))
    }

    pub fn walk_msg(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Vec<u8> {
        let mut t = T::new(TWALK, self.tag())
            .u32(fid)
            .u32(newfid)
            .u16(names.len() as u16);
        for n in names {
            t = t.str(n);
        }
        t.done()
    }

    pub fn try_walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<Vec<Qid>, Errno> {
        let m = self.walk_msg(fid, newfid, names);
        Ok(parse::walk(&self.try_call(&m)?))
    }

    #[track_caller]
    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Vec<Qid> {
        self.try_walk(fid, newfid, names)
            .unwrap_or_else(|e| panic!("Twalk {names:?}: {e:?}"))
    }

    pub fn try_lopen(&mut self, fid: u32, flags: u32) -> Result<(Qid, u32), Errno> {
        let m = T::new(TLOPEN, self.tag()).u32(fid).u32(flags).done();
        Ok(parse::open(&self.try_call(&m)?))
    }

    #[track_caller]
    pub fn lopen(&mut self, fid: u32, flags: u32) -> (Qid, u32) {
        self.try_lopen(fid, flags)
            .unwrap_or_else(|e| panic!("Tlopen: {e:?}"))
    }

    pub fn try_lcreate(
        &mut self,
        fid: u32,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(Qid, u32), Errno> {
        let m = T::new(TLCREATE, self.tag())
            .u32(fid)
            .str(name)
            .u32(flags)
            .u32(mode)
            .u32(gid)
            .done();
        Ok(parse::open(&self.try_call(&m)?))
    }

    /// Topen (9P2000): the qid and iounit.
    pub fn try_open(&mut self, fid: u32, mode: u8) -> Result<(Qid, u32), Errno> {
        let m = T::new(TOPEN, self.tag()).u32(fid).u8(mode).done();
        Ok(parse::open(&self.try_call(&m)?))
    }

    pub fn read_msg(&mut self, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        T::new(TREAD, self.tag())
            .u32(fid)
            .u64(offset)
            .u32(count)
            .done()
    }

    /// Tread, with room for `count` bytes of data: the data.
    pub fn try_read(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>, Errno> {
        let m = self.read_msg(fid, offset, count);
        let data = parse::read(&self.try_call_room(&m, Some(count + 11))?);
        assert!(
            data.len() <= count as usize,
            "Rread returned more than asked"
        );
        Ok(data)
    }

    #[track_caller]
    pub fn read(&mut self, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        self.try_read(fid, offset, count)
            .unwrap_or_else(|e| panic!("Tread: {e:?}"))
    }

    pub fn write_msg(&mut self, fid: u32, offset: u64, data: &[u8]) -> Vec<u8> {
        T::new(TWRITE, self.tag())
            .u32(fid)
            .u64(offset)
            .u32(data.len() as u32)
            .raw(data)
            .done()
    }

    /// Twrite: the count written.
    pub fn try_write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let m = self.write_msg(fid, offset, data);
        Ok(parse::write(&self.try_call(&m)?))
    }

    pub fn try_clunk(&mut self, fid: u32) -> Result<(), Errno> {
        let m = T::new(TCLUNK, self.tag()).u32(fid).done();
        parse::empty(&self.try_call(&m)?);
        Ok(())
    }

    #[track_caller]
    pub fn clunk(&mut self, fid: u32) {
        self.try_clunk(fid)
            .unwrap_or_else(|e| panic!("Tclunk: {e:?}"))
    }

    pub fn getattr_msg(&mut self, fid: u32, mask: u64) -> Vec<u8> {
        T::new(TGETATTR, self.tag()).u32(fid).u64(mask).done()
    }

    pub fn try_getattr(&mut self, fid: u32, mask: u64) -> Result<Attr, Errno> {
        let m = self.getattr_msg(fid, mask);
        Ok(Attr::parse(&self.try_call(&m)?))
    }

    /// Tsetattr of `fid`'s owner (`valid`: P9_SETATTR_UID | _GID).
    pub fn try_chown(&mut self, fid: u32, uid: u32, gid: u32) -> Result<(), Errno> {
        let m = T::new(TSETATTR, self.tag())
            .u32(fid)
            .u32(0x2 | 0x4)
            .u32(0) // mode
            .u32(uid)
            .u32(gid)
            .u64(0) // size
            .u64(0) // atime
            .u64(0)
            .u64(0) // mtime
            .u64(0)
            .done();
        parse::empty(&self.try_call(&m)?);
        Ok(())
    }

    /// Tstat (9P2000): the stat record.
    pub fn try_stat(&mut self, fid: u32) -> Result<Stat, Errno> {
        let m = T::new(TSTAT, self.tag()).u32(fid).done();
        Ok(Stat::parse_rstat(&self.try_call(&m)?))
    }

    pub fn try_mkdir(&mut self, dfid: u32, name: &str, mode: u32, gid: u32) -> Result<Qid, Errno> {
        let m = T::new(TMKDIR, self.tag())
            .u32(dfid)
            .str(name)
            .u32(mode)
            .u32(gid)
            .done();
        Ok(parse::qid(&self.try_call(&m)?))
    }

    pub fn try_unlinkat(&mut self, dfid: u32, name: &str, flags: u32) -> Result<(), Errno> {
        let m = T::new(TUNLINKAT, self.tag())
            .u32(dfid)
            .str(name)
            .u32(flags)
            .done();
        parse::empty(&self.try_call(&m)?);
        Ok(())
    }

    /// Treaddir of `count` bytes at `offset`: the entries.
    pub fn try_readdir(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<DirEnt>, Errno> {
        let m = T::new(TREADDIR, self.tag())
            .u32(fid)
            .u64(offset)
            .u32(count)
            .done();
        let data = parse::read(&self.try_call_room(&m, Some(count + 11))?);
        Ok(parse::dirents(&data))
    }

    /// All entries of an opened directory, following the offset cookies.
    #[track_caller]
    pub fn readdir_all(&mut self, fid: u32) -> Vec<DirEnt> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for _ in 0..1000 {
            let entries = self.try_readdir(fid, offset, 4096).expect("Treaddir");
            let Some(last) = entries.last() else {
                return out;
            };
            offset = last.offset;
            out.extend(entries);
        }
        panic!("Treaddir never reached the end of the directory");
    }
}
