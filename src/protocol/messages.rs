//! 9P2000.L messages, the 9P2000 messages and their 9P2000.u variants,
//! each declared once: the declaration gives the struct, its encoder and its
//! decoder, and for a 9P2000.L message its `--trace` line.
//!
//! Framing: `size[4] type[1] tag[2] body`. Twrite and Rread carry only their
//! fixed fields here; their data follows the fixed fields on the wire and is
//! moved by the transport directly between the host file and the client's
//! buffers (zero copy), so it is never part of a decoded message.

use super::stat::StatBlob;
use super::wire::{Data, DecodeError, Decoder, Qid, Str, WalkList, Wire};

/// Size of `size[4] type[1] tag[2]`.
pub const HEADER_SIZE: usize = 7;
/// Bytes before the data of an Rread: header + `count[4]`.
pub const RREAD_HEADER_SIZE: usize = HEADER_SIZE + 4;
/// Bytes before the data of a Twrite: header + `fid[4] offset[8] count[4]`.
pub const TWRITE_HEADER_SIZE: usize = HEADER_SIZE + 16;
/// The Linux client's IOHDRSZ: room it leaves for read/write headers.
pub const IOHDRSZ: u32 = 24;
/// Tag used by Tversion.
pub const NOTAG: u16 = 0xffff;
/// "No fid" in Tattach/Tauth.
pub const NOFID: u32 = 0xffff_ffff;

/// Declares a message: its struct, type byte, encoder and decoder.
///
/// A message declared `traced` also gets its `--trace` line from the
/// declaration (the 9P2000 ones are written by hand in `trace`, as Plan 9
/// prints them): `Name tag T`, then each field as ` name value`, its value
/// printed as the field's hint says:
/// - no hint: decimal (`fid: u32`);
/// - `as hex`: `0x` and hex digits, for flags and masks (`flags: u32 as hex`);
/// - `as octal`: C's `%#o`, for modes (`mode: u32 as octal` prints `0755`);
/// - `as text`: a string, escaped to one line (`name: Str<'a> as text`);
/// - `as qid`: fcallfmt's `(path version type)` (`qid: Qid as qid`);
/// - `as time(label)` on a seconds field followed by its nanoseconds field
///   `as nsec`: the pair as one ` label SEC.NSEC`, seconds signed
///   (`atime_sec: u64 as time(atime), atime_nsec: u64 as nsec`);
/// - `as dump(label)`: bytes as ` label N 'first 64 bytes'`, N their
///   length, as fcallfmt's Rread (`data: Data<'a> as dump(count)`).
macro_rules! message {
    ($(#[$doc:meta])* traced $name:ident $(<$lt:lifetime>)? = $id:literal {
        $($field:ident : $ty:ty $(as $hint:ident $(($label:ident))?)?),* $(,)?
    }) => {
        message!($(#[$doc])* $name $(<$lt>)? = $id { $($field: $ty),* });
        $crate::protocol::trace::trace_line!($name $(<$lt>)? {
            $($field $(as $hint $(($label))?)?),*
        });
    };
    ($(#[$doc:meta])* $name:ident $(<$lt:lifetime>)? = $id:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name $(<$lt>)? { $(pub $field: $ty),* }

        impl $(<$lt>)? $name $(<$lt>)? {
            pub const TYPE: u8 = $id;
        }

        impl<'a> Wire<'a> for $name $(<$lt>)? {
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) {
                $(self.$field.encode(out);)*
            }
            #[allow(unused_variables)]
            fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
                Ok($name { $($field: d.decode()?),* })
            }
        }
    };
}

// ---- 9P2000.L, traced as declared ----
message!(traced Rlerror = 7 { ecode: u32 });
message!(traced Tstatfs = 8 { fid: u32 });
message!(traced Rstatfs = 9 {
    fs_type: u32 as hex, bsize: u32, blocks: u64, bfree: u64, bavail: u64,
    files: u64, ffree: u64, fsid: u64 as hex, namelen: u32,
});
message!(traced Tlopen = 12 { fid: u32, flags: u32 as hex });
message!(traced Rlopen = 13 { qid: Qid as qid, iounit: u32 });
message!(traced Tlcreate<'a> = 14 {
    fid: u32, name: Str<'a> as text, flags: u32 as hex, mode: u32 as octal, gid: u32,
});
message!(traced Rlcreate = 15 { qid: Qid as qid, iounit: u32 });
message!(traced Tsymlink<'a> = 16 {
    fid: u32, name: Str<'a> as text, symtgt: Str<'a> as text, gid: u32,
});
message!(traced Rsymlink = 17 { qid: Qid as qid });
message!(traced Tmknod<'a> = 18 {
    dfid: u32, name: Str<'a> as text, mode: u32 as octal, major: u32, minor: u32, gid: u32,
});
message!(traced Rmknod = 19 { qid: Qid as qid });
message!(traced Trename<'a> = 20 { fid: u32, dfid: u32, name: Str<'a> as text });
message!(traced Rrename = 21 {});
message!(traced Treadlink = 22 { fid: u32 });
message!(traced Rreadlink<'a> = 23 { target: Str<'a> as text });
message!(traced Tgetattr = 24 { fid: u32, request_mask: u64 as hex });
message!(
    /// Attributes of a file; `valid` says which fields the server filled.
    traced Rgetattr = 25 {
    valid: u64 as hex, qid: Qid as qid, mode: u32 as octal, uid: u32, gid: u32,
    nlink: u64, rdev: u64, size: u64, blksize: u64, blocks: u64,
    atime_sec: u64 as time(atime), atime_nsec: u64 as nsec,
    mtime_sec: u64 as time(mtime), mtime_nsec: u64 as nsec,
    ctime_sec: u64 as time(ctime), ctime_nsec: u64 as nsec,
    btime_sec: u64 as time(btime), btime_nsec: u64 as nsec,
    gen: u64, data_version: u64,
});
message!(traced Tsetattr = 26 {
    fid: u32, valid: u32 as hex, mode: u32 as octal, uid: u32, gid: u32, size: u64,
    atime_sec: u64 as time(atime), atime_nsec: u64 as nsec,
    mtime_sec: u64 as time(mtime), mtime_nsec: u64 as nsec,
});
message!(traced Rsetattr = 27 {});
message!(traced Txattrwalk<'a> = 30 { fid: u32, newfid: u32, name: Str<'a> as text });
message!(traced Rxattrwalk = 31 { size: u64 });
message!(traced Txattrcreate<'a> = 32 {
    fid: u32, name: Str<'a> as text, attr_size: u64, flags: u32 as hex,
});
message!(traced Rxattrcreate = 33 {});
message!(traced Treaddir = 40 { fid: u32, offset: u64, count: u32 });
message!(
    /// Directory entries, each `qid[13] offset[8] type[1] name[s]`.
    traced Rreaddir<'a> = 41 { data: Data<'a> as dump(count) });
message!(traced Tfsync = 50 { fid: u32, datasync: u32 });
message!(traced Rfsync = 51 {});
message!(traced Tlock<'a> = 52 {
    fid: u32, lock_type: u8, flags: u32 as hex, start: u64, length: u64, proc_id: u32,
    client_id: Str<'a> as text,
});
message!(traced Rlock = 53 { status: u8 });
message!(traced Tgetlock<'a> = 54 {
    fid: u32, lock_type: u8, start: u64, length: u64, proc_id: u32, client_id: Str<'a> as text,
});
message!(traced Rgetlock<'a> = 55 {
    lock_type: u8, start: u64, length: u64, proc_id: u32, client_id: Str<'a> as text,
});
message!(traced Tlink<'a> = 70 { dfid: u32, fid: u32, name: Str<'a> as text });
message!(traced Rlink = 71 {});
message!(traced Tmkdir<'a> = 72 { dfid: u32, name: Str<'a> as text, mode: u32 as octal, gid: u32 });
message!(traced Rmkdir = 73 { qid: Qid as qid });
message!(traced Trenameat<'a> = 74 {
    olddirfid: u32, oldname: Str<'a> as text, newdirfid: u32, newname: Str<'a> as text,
});
message!(traced Rrenameat = 75 {});
message!(traced Tunlinkat<'a> = 76 { dirfid: u32, name: Str<'a> as text, flags: u32 as hex });
message!(traced Runlinkat = 77 {});

// ---- base protocol ----
message!(Tversion<'a> = 100 { msize: u32, version: Str<'a> });
message!(Rversion<'a> = 101 { msize: u32, version: Str<'a> });
message!(
    /// `n_uname` is sent in 9P2000.u and .L only.
    Tauth<'a> = 102 { afid: u32, uname: Str<'a>, aname: Str<'a>, n_uname: Option<u32> });
message!(Rauth = 103 { aqid: Qid });
message!(
    /// `n_uname` is sent in 9P2000.u and .L only.
    Tattach<'a> = 104 { fid: u32, afid: u32, uname: Str<'a>, aname: Str<'a>, n_uname: Option<u32> });
message!(Rattach = 105 { qid: Qid });
message!(
    /// `errno` is sent in 9P2000.u only.
    Rerror<'a> = 107 { ename: Str<'a>, errno: Option<u32> });
message!(Tflush = 108 { oldtag: u16 });
message!(Rflush = 109 {});
message!(Twalk<'a> = 110 { fid: u32, newfid: u32, names: WalkList<Str<'a>> });
message!(Rwalk = 111 { qids: WalkList<Qid> });
message!(Topen = 112 { fid: u32, mode: u8 });
message!(Ropen = 113 { qid: Qid, iounit: u32 });
message!(
    /// `extension` is sent in 9P2000.u only.
    Tcreate<'a> = 114 { fid: u32, name: Str<'a>, perm: u32, mode: u8, extension: Option<Str<'a>> });
message!(Rcreate = 115 { qid: Qid, iounit: u32 });
message!(Tread = 116 { fid: u32, offset: u64, count: u32 });
message!(
    /// Only the count: `count` bytes of data follow on the wire.
    Rread = 117 { count: u32 });
message!(
    /// Only the fixed fields: `count` bytes of data follow on the wire.
    Twrite = 118 { fid: u32, offset: u64, count: u32 });
message!(Rwrite = 119 { count: u32 });
message!(Tclunk = 120 { fid: u32 });
message!(Rclunk = 121 {});
message!(Tremove = 122 { fid: u32 });
message!(Rremove = 123 {});
message!(Tstat = 124 { fid: u32 });
message!(Rstat<'a> = 125 { stat: StatBlob<'a> });
message!(Twstat<'a> = 126 { fid: u32, stat: StatBlob<'a> });
message!(Rwstat = 127 {});

macro_rules! message_enum {
    ($(#[$doc:meta])* $enum:ident { $($variant:ident($ty:ident $(<$lt:lifetime>)?)),* $(,)? }
     data_follows: [$($df:ident),*]) => {
        $(#[$doc])*
        #[allow(clippy::large_enum_variant)] // Twalk/Rwalk lists are inline by design.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $enum<'a> { $($variant($ty $(<$lt>)?)),* }

        impl<'a> $enum<'a> {
            /// The message type byte.
            pub fn msg_type(&self) -> u8 {
                match self { $($enum::$variant(_) => $ty::TYPE),* }
            }

            /// Decodes a message body (the bytes after `size type tag`).
            /// For messages whose data follows their fixed fields, bytes
            /// after the fixed fields are allowed and ignored.
            pub fn decode(msg_type: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
                let mut d = Decoder::new(body);
                let msg = match msg_type {
                    $($ty::TYPE => $enum::$variant(d.decode()?),)*
                    other => return Err(DecodeError::UnknownType(other)),
                };
                match msg_type {
                    $($df::TYPE => {})*
                    _ => d.finish()?,
                }
                Ok(msg)
            }

            /// Appends the whole framed message (`size` included) to `out`.
            /// The size field counts only the fixed fields; for messages with
            /// following data use [`patch_size`] once the data is in place.
            pub fn encode(&self, tag: u16, out: &mut Vec<u8>) {
                let start = out.len();
                0u32.encode(out);
                self.msg_type().encode(out);
                tag.encode(out);
                match self { $($enum::$variant(m) => m.encode(out)),* }
                let size = (out.len() - start) as u32;
                out[start..start + 4].copy_from_slice(&size.to_le_bytes());
            }
        }
    };
}

message_enum! {
    /// A request.
    Tmessage {
        Statfs(Tstatfs), Lopen(Tlopen), Lcreate(Tlcreate<'a>), Symlink(Tsymlink<'a>),
        Mknod(Tmknod<'a>), Rename(Trename<'a>), Readlink(Treadlink), Getattr(Tgetattr),
        Setattr(Tsetattr), Xattrwalk(Txattrwalk<'a>), Xattrcreate(Txattrcreate<'a>),
        Readdir(Treaddir), Fsync(Tfsync), Lock(Tlock<'a>), Getlock(Tgetlock<'a>),
        Link(Tlink<'a>), Mkdir(Tmkdir<'a>), Renameat(Trenameat<'a>), Unlinkat(Tunlinkat<'a>),
        Version(Tversion<'a>), Auth(Tauth<'a>), Attach(Tattach<'a>), Flush(Tflush),
        Walk(Twalk<'a>), Open(Topen), Create(Tcreate<'a>), Read(Tread), Write(Twrite),
        Clunk(Tclunk), Remove(Tremove), Stat(Tstat), Wstat(Twstat<'a>),
    }
    data_follows: [Twrite]
}

message_enum! {
    /// A reply.
    Rmessage {
        Lerror(Rlerror), Statfs(Rstatfs), Lopen(Rlopen), Lcreate(Rlcreate), Symlink(Rsymlink),
        Mknod(Rmknod), Rename(Rrename), Readlink(Rreadlink<'a>), Getattr(Rgetattr),
        Setattr(Rsetattr), Xattrwalk(Rxattrwalk), Xattrcreate(Rxattrcreate),
        Readdir(Rreaddir<'a>), Fsync(Rfsync), Lock(Rlock), Getlock(Rgetlock<'a>), Link(Rlink),
        Mkdir(Rmkdir), Renameat(Rrenameat), Unlinkat(Runlinkat), Version(Rversion<'a>),
        Auth(Rauth), Attach(Rattach), Error(Rerror<'a>), Flush(Rflush), Walk(Rwalk),
        Open(Ropen), Create(Rcreate), Read(Rread), Write(Rwrite), Clunk(Rclunk),
        Remove(Rremove), Stat(Rstat<'a>), Wstat(Rwstat),
    }
    data_follows: [Rread]
}

/// Writes the total length of the message starting at `start` into its size field.
pub fn patch_size(out: &mut [u8], start: usize) {
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_le_bytes());
}

/// The framing header of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub size: u32,
    pub msg_type: u8,
    pub tag: u16,
}

impl Header {
    pub fn parse(bytes: &[u8]) -> Result<Header, DecodeError> {
        let mut d = Decoder::new(bytes);
        Ok(Header {
            size: d.decode()?,
            msg_type: d.decode()?,
            tag: d.decode()?,
        })
    }

    /// Writes a header into the first 7 bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.size.to_le_bytes());
        out[4] = self.msg_type;
        out[5..7].copy_from_slice(&self.tag.to_le_bytes());
    }
}

/// Decodes a whole framed message (as from a socket) into its tag and request.
pub fn decode_tmessage(frame: &[u8]) -> Result<(u16, Tmessage<'_>), DecodeError> {
    let header = Header::parse(frame)?;
    let body = frame
        .get(HEADER_SIZE..header.size as usize)
        .ok_or(DecodeError::Truncated)?;
    Ok((header.tag, Tmessage::decode(header.msg_type, body)?))
}

/// Decodes a whole framed reply into its tag and message.
pub fn decode_rmessage(frame: &[u8]) -> Result<(u16, Rmessage<'_>), DecodeError> {
    let header = Header::parse(frame)?;
    let body = frame
        .get(HEADER_SIZE..header.size as usize)
        .ok_or(DecodeError::Truncated)?;
    Ok((header.tag, Rmessage::decode(header.msg_type, body)?))
}

/// The 11-byte header (`size type tag count`) of an Rread or Rreaddir
/// whose `count` data bytes follow it on the wire.
pub fn data_header(msg_type: u8, tag: u16, count: u32) -> [u8; RREAD_HEADER_SIZE] {
    let mut header = [0u8; RREAD_HEADER_SIZE];
    let size = RREAD_HEADER_SIZE as u32 + count;
    header[0..4].copy_from_slice(&size.to_le_bytes());
    header[4] = msg_type;
    header[5..7].copy_from_slice(&tag.to_le_bytes());
    header[7..11].copy_from_slice(&count.to_le_bytes());
    header
}
