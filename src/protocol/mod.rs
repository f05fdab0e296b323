//! The 9P wire codec: bytes <-> typed messages. Pure: no I/O.

pub mod dialect;
pub mod dirent;
pub mod flags;
pub mod messages;
pub mod stat;
pub mod trace;
pub mod wire;

pub use dialect::Dialect;
pub use dirent::ReaddirWriter;
pub use messages::*;
pub use stat::*;
pub use wire::{Data, DecodeError, Decoder, Qid, Str, WalkList, Wire, MAXWELEM};
pub use wire::{QTAPPEND, QTAUTH, QTDIR, QTEXCL, QTFILE, QTSYMLINK, QTTMP};

#[cfg(test)]
mod tests;

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
