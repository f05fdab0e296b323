//! A directory read from the host: the cursor an open directory keeps
//! (its position and the linux_dirent64 records read ahead) and the
//! records themselves.

use std::os::fd::BorrowedFd;

use crate::server::host;

/// A directory opened for Treaddir: its descriptor position and entries
/// read from the host but not yet sent.
pub struct DirCursor {
    /// The readdir cookie the descriptor (with `buf`) is positioned at.
    pub pos: u64,
    /// linux_dirent64 records read ahead from the host.
    pub buf: Vec<u8>,
    pub start: usize,
    pub end: usize,
    /// 9P2000 directory reads: the byte offset in the stream of stat
    /// records that the next read continues from.
    pub stat_offset: u64,
}

impl DirCursor {
    /// The buffer a directory starts with at its first read: a small
    /// directory in one getdents64, at little cost per open directory.
    pub const MIN_BUF: usize = 4 * 1024;
    /// What it grows to, doubling, while reads ask for more than it holds.
    pub const MAX_BUF: usize = 64 * 1024;
    /// The largest linux_dirent64: 19 bytes of fields, a 255-byte name and
    /// its NUL, rounded up to 8.
    const MAX_RECORD: usize = 280;

    /// Makes sure unread entries are in `buf`, reading more from the
    /// directory if needed; false at the end of the directory. `want`: the
    /// bytes of entries the read in progress could still take. When the
    /// last getdents64 ran out of room (the directory has more) and `want`
    /// is more than the buffer holds, the buffer doubles first, up to
    /// `MAX_BUF`.
    pub fn fill(&mut self, dir: BorrowedFd<'_>, want: usize) -> std::io::Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        let cut_short = self.end + Self::MAX_RECORD > self.buf.len();
        if self.buf.is_empty() {
            self.buf = vec![0; Self::MIN_BUF];
        } else if cut_short && want > self.buf.len() {
            self.grow();
        }
        let n = loop {
            match host::getdents64(dir, &mut self.buf) {
                // An entry larger than the buffer (none is, on Linux).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.grow() => continue,
                other => break other?,
            }
        };
        self.start = 0;
        self.end = n;
        Ok(n > 0)
    }

    /// Doubles the (consumed) buffer up to `MAX_BUF`; false if it is there.
    fn grow(&mut self) -> bool {
        let len = (self.buf.len() * 2).clamp(Self::MIN_BUF, Self::MAX_BUF);
        if len <= self.buf.len() {
            return false;
        }
        self.buf = vec![0; len];
        true
    }

    /// Positions `dir` (the directory's open descriptor) and the cursor at
    /// the readdir cookie `pos` (0: the start), forgetting what was read
    /// ahead.
    pub fn seek(&mut self, dir: BorrowedFd<'_>, pos: u64) -> std::io::Result<()> {
        host::lseek(dir, pos)?;
        self.rewind();
        self.pos = pos;
        Ok(())
    }

    /// Forgets the position after the directory descriptor was seeked to 0.
    pub fn rewind(&mut self) {
        self.pos = 0;
        self.start = 0;
        self.end = 0;
        self.stat_offset = 0;
    }

    pub(crate) fn new() -> Self {
        DirCursor {
            pos: 0,
            buf: Vec::new(),
            start: 0,
            end: 0,
            stat_offset: 0,
        }
    }
}

/// One linux_dirent64 record.
pub struct DirEntry<'a> {
    pub ino: u64,
    pub off: u64,
    pub reclen: usize,
    pub d_type: u8,
    pub name: &'a [u8],
}

impl<'a> DirEntry<'a> {
    /// Parses the record at the start of `buf`: `d_ino[8] d_off[8]
    /// d_reclen[2] d_type[1] d_name[NUL-terminated]`.
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        const NAME_OFFSET: usize = 19;
        let ino = u64::from_ne_bytes(buf.get(0..8)?.try_into().ok()?);
        let off = u64::from_ne_bytes(buf.get(8..16)?.try_into().ok()?);
        let reclen = u16::from_ne_bytes(buf.get(16..18)?.try_into().ok()?) as usize;
        let d_type = *buf.get(18)?;
        let name_area = buf.get(NAME_OFFSET..reclen)?;
        let len = name_area.iter().position(|&b| b == 0)?;
        Some(DirEntry {
            ino,
            off,
            reclen,
            d_type,
            name: &name_area[..len],
        })
    }
}
