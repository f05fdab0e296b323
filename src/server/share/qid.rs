//! qids of the share's files: qid.path from (device, inode), unique within
//! the share; the type from the mode; a version that moves with every
//! change.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::protocol::Qid;
use crate::sync::Locked;

/// The qid type of a file of Unix mode `mode`.
pub fn qid_type(mode: u32) -> u8 {
    use crate::protocol::{QTDIR, QTFILE, QTSYMLINK};
    match mode & libc::S_IFMT {
        libc::S_IFDIR => QTDIR,
        libc::S_IFLNK => QTSYMLINK,
        _ => QTFILE,
    }
}

/// Computes qids from statx records. Maps (device, inode) to a qid.path
/// unique within the share: inodes of the root's filesystem map to
/// themselves; each other device gets its own prefix in the top 16 bits.
pub struct QidMapper {
    root_dev: u64,
    devices: Mutex<HashMap<u64, u64>>,
}

impl QidMapper {
    pub fn new(root_dev: u64) -> Self {
        QidMapper {
            root_dev,
            devices: Mutex::new(HashMap::new()),
        }
    }

    pub fn path(&self, dev: u64, ino: u64) -> u64 {
        const INO_BITS: u32 = 48;
        const INO_MASK: u64 = (1 << INO_BITS) - 1;
        if dev == self.root_dev && ino <= INO_MASK {
            return ino;
        }
        let mut devices = self.devices.locked();
        let next = devices.len() as u64 + 1;
        let prefix = *devices.entry(dev).or_insert(next);
        (prefix << INO_BITS) | (ino & INO_MASK)
    }

    pub fn qid(&self, stx: &libc::statx) -> Qid {
        let dev = libc::makedev(stx.stx_dev_major, stx.stx_dev_minor);
        Qid {
            ty: qid_type(stx.stx_mode as u32),
            version: qid_version(stx),
            path: self.path(dev, stx.stx_ino),
        }
    }
}

/// A version that changes whenever the content or the metadata does: a mix
/// of mtime, ctime (every change moves it) and size.
fn qid_version(stx: &libc::statx) -> u32 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in [
        stx.stx_mtime.tv_sec as u64,
        stx.stx_mtime.tv_nsec as u64,
        stx.stx_ctime.tv_sec as u64,
        stx.stx_ctime.tv_nsec as u64,
        stx.stx_size,
    ] {
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
        h ^= h >> 29;
    }
    (h ^ (h >> 32)) as u32
}

pub(crate) trait StatxDev {
    fn stx_dev(&self) -> u64;
}

impl StatxDev for libc::statx {
    fn stx_dev(&self) -> u64 {
        libc::makedev(self.stx_dev_major, self.stx_dev_minor)
    }
}
