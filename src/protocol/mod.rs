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

/// Whether `name` names one entry of a directory: not empty, not "." or
/// "..", without '/' or NUL. Any other name a client sends is refused
/// (EINVAL) before it reaches a file system.
pub fn is_entry_name(name: &[u8]) -> bool {
    !(name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0))
}

#[cfg(test)]
mod tests;
