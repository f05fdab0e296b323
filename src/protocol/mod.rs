//! The 9P wire codec: bytes <-> typed messages. Pure: no I/O.

pub mod messages;
pub mod wire;

pub use messages::*;
pub use wire::{Data, DecodeError, Decoder, Qid, Str, WalkList, Wire, MAXWELEM};
pub use wire::{QTAPPEND, QTDIR, QTEXCL, QTFILE, QTSYMLINK};

#[cfg(test)]
mod tests;
