//! Rreaddir written entry by entry into the reply buffer: room for its
//! header (`size type tag count`, written once the count is known:
//! `data_header`), then `qid[13] offset[8] type[1] name[s]` per entry.

use super::{Qid, Str, Wire, RREAD_HEADER_SIZE};

/// An Rreaddir being written into `out`, at most `limit` bytes of entries.
pub struct ReaddirWriter<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
    used: usize,
}

impl<'a> ReaddirWriter<'a> {
    /// Clears `out` and leaves room for the header of an Rreaddir.
    pub fn start(out: &'a mut Vec<u8>, limit: usize) -> ReaddirWriter<'a> {
        out.clear();
        out.resize(RREAD_HEADER_SIZE, 0);
        ReaddirWriter {
            out,
            limit,
            used: 0,
        }
    }

    /// The bytes an entry named with `name_len` bytes takes.
    pub fn entry_size(name_len: usize) -> usize {
        Qid::WIRE_SIZE + 8 + 1 + 2 + name_len
    }

    /// Bytes left for entries.
    pub fn room(&self) -> usize {
        self.limit - self.used
    }

    /// Whether no entry was written yet.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Whether an entry named with `name_len` bytes fits.
    pub fn fits(&self, name_len: usize) -> bool {
        Self::entry_size(name_len) <= self.room()
    }

    /// Appends an entry (the caller has checked that it `fits`).
    pub fn push(&mut self, qid: Qid, offset: u64, d_type: u8, name: &[u8]) {
        debug_assert!(self.fits(name.len()));
        qid.encode(self.out);
        offset.encode(self.out);
        d_type.encode(self.out);
        Str(name).encode(self.out);
        self.used += Self::entry_size(name.len());
    }

    /// The bytes of entries written: the Rreaddir's count.
    pub fn finish(self) -> u32 {
        self.used as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{data_header, decode_rmessage, Rmessage, Rreaddir, QTDIR};

    #[test]
    fn entries_decode_as_an_rreaddir_and_stop_at_the_limit() {
        let mut out = vec![0xaa; 7];
        let qid = Qid {
            ty: QTDIR,
            version: 0,
            path: 42,
        };
        let limit = ReaddirWriter::entry_size(1) + ReaddirWriter::entry_size(2);
        let mut w = ReaddirWriter::start(&mut out, limit);
        assert!(w.is_empty() && w.fits(1));
        w.push(qid, 1, libc::DT_DIR, b".");
        w.push(qid, 2, libc::DT_DIR, b"..");
        assert!(!w.fits(0) && w.room() == 0);
        let count = w.finish();
        out[..RREAD_HEADER_SIZE].copy_from_slice(&data_header(Rreaddir::TYPE, 9, count));
        let (tag, reply) = decode_rmessage(&out).unwrap();
        assert_eq!(tag, 9);
        let Rmessage::Readdir(r) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(r.data.0.len(), limit);
        assert_eq!(&r.data.0[limit - 2..], b"..");
        assert_eq!(
            u32::from_le_bytes(out[0..4].try_into().unwrap()) as usize,
            out.len()
        );
    }
}
