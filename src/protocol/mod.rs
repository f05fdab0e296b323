//! The 9P wire codec: bytes <-> typed messages. Pure: no I/O.

pub mod dialect;
pub mod dirent;
pub mod flags;
pub mod messages;
pub mod modes;
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
