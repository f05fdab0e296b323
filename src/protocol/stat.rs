//! The Plan 9 stat record of 9P2000 (Tstat/Rstat/Twstat and directory
//! reads), with the 9P2000.u extension fields.
//!
//! `size[2] type[2] dev[4] qid[13] mode[4] atime[4] mtime[4] length[8]
//! name[s] uid[s] gid[s] muid[s]`, then in 9P2000.u `extension[s]
//! n_uid[4] n_gid[4] n_muid[4]`. `size` counts the bytes after itself, so a
//! decoder knows whether the extension is there.

use super::wire::{DecodeError, Decoder, Qid, Str, Wire};

/// Mode bits of a stat record (beside the permission bits).
pub const DMDIR: u32 = 0x8000_0000;
pub const DMAPPEND: u32 = 0x4000_0000;
pub const DMEXCL: u32 = 0x2000_0000;
pub const DMAUTH: u32 = 0x0800_0000;
pub const DMTMP: u32 = 0x0400_0000;
/// 9P2000.u only.
pub const DMSYMLINK: u32 = 0x0200_0000;
/// 9P2000.u Tcreate: a hard link to the fid named in the extension.
pub const DMLINK: u32 = 0x0100_0000;
pub const DMDEVICE: u32 = 0x0080_0000;
pub const DMNAMEDPIPE: u32 = 0x0020_0000;
pub const DMSOCKET: u32 = 0x0010_0000;
pub const DMSETUID: u32 = 0x0008_0000;
pub const DMSETGID: u32 = 0x0004_0000;
pub const DMSETVTX: u32 = 0x0001_0000;

/// The 9P2000.u fields after `muid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatExtension<'a> {
    pub extension: Str<'a>,
    pub n_uid: u32,
    pub n_gid: u32,
    pub n_muid: u32,
}

/// One stat record. In Twstat, all-ones integers and empty strings mean
/// "don't change".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat<'a> {
    pub ty: u16,
    pub dev: u32,
    pub qid: Qid,
    pub mode: u32,
    pub atime: u32,
    pub mtime: u32,
    pub length: u64,
    pub name: Str<'a>,
    pub uid: Str<'a>,
    pub gid: Str<'a>,
    pub muid: Str<'a>,
    /// Present in 9P2000.u.
    pub ext: Option<StatExtension<'a>>,
}

/// 9P2000.u's and 9P2000.L's numeric user (n_uname, n_uid, n_gid) when
/// none is given.
pub const NONUNAME: u32 = u32::MAX;

/// A Twstat integer field that is not to be changed: all ones (stat(5)).
pub const KEEP16: u16 = u16::MAX;
pub const KEEP32: u32 = u32::MAX;
pub const KEEP64: u64 = u64::MAX;

impl StatExtension<'static> {
    /// The 9P2000.u fields of a Twstat that changes nothing.
    pub const DONT_TOUCH: StatExtension<'static> = StatExtension {
        extension: Str(b""),
        n_uid: KEEP32,
        n_gid: KEEP32,
        n_muid: KEEP32,
    };
}

impl Stat<'static> {
    /// The Twstat record that changes nothing (stat(5): every integer all
    /// ones, every string empty), in 9P2000; `StatExtension::DONT_TOUCH`
    /// for 9P2000.u.
    pub const DONT_TOUCH: Stat<'static> = Stat {
        ty: KEEP16,
        dev: KEEP32,
        qid: Qid {
            ty: u8::MAX,
            version: KEEP32,
            path: KEEP64,
        },
        mode: KEEP32,
        atime: KEEP32,
        mtime: KEEP32,
        length: KEEP64,
        name: Str(b""),
        uid: Str(b""),
        gid: Str(b""),
        muid: Str(b""),
        ext: None,
    };
}

impl Stat<'_> {
    /// Bytes the record takes on the wire, its own `size[2]` included.
    pub fn wire_size(&self) -> usize {
        let strings = self.name.0.len() + self.uid.0.len() + self.gid.0.len() + self.muid.0.len();
        let ext = self.ext.map_or(0, |e| 2 + e.extension.0.len() + 12);
        2 + 2 + 4 + Qid::WIRE_SIZE + 4 + 4 + 4 + 8 + 4 * 2 + strings + ext
    }
}

impl<'a> Wire<'a> for Stat<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        ((self.wire_size() - 2) as u16).encode(out);
        self.ty.encode(out);
        self.dev.encode(out);
        self.qid.encode(out);
        self.mode.encode(out);
        self.atime.encode(out);
        self.mtime.encode(out);
        self.length.encode(out);
        self.name.encode(out);
        self.uid.encode(out);
        self.gid.encode(out);
        self.muid.encode(out);
        if let Some(e) = &self.ext {
            e.extension.encode(out);
            e.n_uid.encode(out);
            e.n_gid.encode(out);
            e.n_muid.encode(out);
        }
    }

    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        let size = u16::decode(d)? as usize;
        let mut r = Decoder::new(d.take(size)?);
        let mut stat = Stat {
            ty: r.decode()?,
            dev: r.decode()?,
            qid: r.decode()?,
            mode: r.decode()?,
            atime: r.decode()?,
            mtime: r.decode()?,
            length: r.decode()?,
            name: r.decode()?,
            uid: r.decode()?,
            gid: r.decode()?,
            muid: r.decode()?,
            ext: None,
        };
        if r.remaining() > 0 {
            stat.ext = Some(StatExtension {
                extension: r.decode()?,
                n_uid: r.decode()?,
                n_gid: r.decode()?,
                n_muid: r.decode()?,
            });
        }
        r.finish()?;
        Ok(stat)
    }
}

/// A stat record as Rstat and Twstat carry it: with a second, outer
/// `n[2]` length in front (a historical wart of 9P2000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatBlob<'a>(pub Stat<'a>);

impl<'a> Wire<'a> for StatBlob<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.0.wire_size() as u16).encode(out);
        self.0.encode(out);
    }

    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        let n = u16::decode(d)? as usize;
        let mut inner = Decoder::new(d.take(n)?);
        let stat = inner.decode()?;
        inner.finish()?;
        Ok(StatBlob(stat))
    }
}
