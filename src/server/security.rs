//! How guest ownership and file types are kept on the host: the security
//! models (as QEMU names them) and the uid/gid maps.

use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;

use super::host;

/// Where the guest's uid/gid/mode/rdev live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityModel {
    /// On the host file itself (chown/chmod/mknod as the guest asks; needs
    /// privileges to give files away or make devices).
    Passthrough,
    /// In `user.virtfs.{uid,gid,mode,rdev}` xattrs; host files stay the
    /// daemon's, special files and symlinks are regular files.
    MappedXattr,
    /// Like passthrough, but failed ownership changes are ignored.
    None,
}

impl SecurityModel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "passthrough" => Some(Self::Passthrough),
            "mapped-xattr" | "mapped" => Some(Self::MappedXattr),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// passthrough when running as root, mapped-xattr otherwise.
    pub fn default_for_process() -> Self {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            Self::Passthrough
        } else {
            Self::MappedXattr
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::MappedXattr => "mapped-xattr",
            Self::None => "none",
        }
    }
}

pub const XATTR_UID: &CStr = c"user.virtfs.uid";
pub const XATTR_GID: &CStr = c"user.virtfs.gid";
pub const XATTR_MODE: &CStr = c"user.virtfs.mode";
pub const XATTR_RDEV: &CStr = c"user.virtfs.rdev";
/// Prefix of the daemon's own xattrs in mapped-xattr; never shown to guests.
pub const XATTR_PRIVATE_PREFIX: &[u8] = b"user.virtfs.";
/// Host mode of files and directories made in mapped-xattr (QEMU's defaults).
pub const MAPPED_FILE_MODE: u32 = 0o600;
pub const MAPPED_DIR_MODE: u32 = 0o700;

/// The guest's attributes of a file, kept in mapped-xattr xattrs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MappedAttrs {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
    pub rdev: Option<u64>,
}

/// Reads a fixed-size little-endian value; None if absent or of another size.
fn get_le<const N: usize>(
    dir: &host::ProcDir,
    path: &host::ProcPath,
    name: &CStr,
) -> io::Result<Option<[u8; N]>> {
    let mut buf = [0u8; N];
    match dir.xattr_get(path, false, name, &mut buf) {
        Ok(n) if n == N => Ok(Some(buf)),
        Ok(_) => Ok(None),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENODATA) | Some(libc::EOPNOTSUPP) | Some(libc::ERANGE)
    )
}

impl MappedAttrs {
    /// Reads the xattrs of a regular file or directory.
    pub fn read(fd: BorrowedFd<'_>) -> io::Result<MappedAttrs> {
        let path = host::ProcPath::of(fd);
        host::in_proc_dir(|dir| {
            Ok(MappedAttrs {
                uid: get_le(dir, &path, XATTR_UID)?.map(u32::from_le_bytes),
                gid: get_le(dir, &path, XATTR_GID)?.map(u32::from_le_bytes),
                mode: get_le(dir, &path, XATTR_MODE)?.map(u32::from_le_bytes),
                rdev: get_le(dir, &path, XATTR_RDEV)?.map(u64::from_le_bytes),
            })
        })
    }

    /// Stores the fields that are set.
    pub fn write(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let path = host::ProcPath::of(fd);
        host::in_proc_dir(|dir| {
            let set = |name, value: &[u8]| dir.xattr_set(&path, false, name, value, 0);
            if let Some(uid) = self.uid {
                set(XATTR_UID, &uid.to_le_bytes())?;
            }
            if let Some(gid) = self.gid {
                set(XATTR_GID, &gid.to_le_bytes())?;
            }
            if let Some(mode) = self.mode {
                set(XATTR_MODE, &mode.to_le_bytes())?;
            }
            if let Some(rdev) = self.rdev {
                set(XATTR_RDEV, &rdev.to_le_bytes())?;
            }
            Ok(())
        })
    }

    /// Overlays the stored fields on a host statx record.
    pub fn apply(&self, stx: &mut libc::statx) {
        if let Some(uid) = self.uid {
            stx.stx_uid = uid;
        }
        if let Some(gid) = self.gid {
            stx.stx_gid = gid;
        }
        if let Some(mode) = self.mode {
            stx.stx_mode = mode as u16;
        }
        if let Some(rdev) = self.rdev {
            stx.stx_rdev_major = libc::major(rdev);
            stx.stx_rdev_minor = libc::minor(rdev);
        }
    }
}

/// One `--uid-map`/`--gid-map` range: guest ids `guest..guest+count` are
/// host ids `host..host+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub guest: u32,
    pub host: u32,
    pub count: u32,
}

impl IdRange {
    /// Parses virtiofsd's form `:guest:host:count:`.
    pub fn parse(s: &str) -> Result<IdRange, String> {
        let fields: Vec<&str> = s.split(':').collect();
        let [first, guest, host, count, last] = fields.as_slice() else {
            return Err(format!("{s:?}: expected :GUEST:HOST:COUNT:"));
        };
        if !first.is_empty() || !last.is_empty() {
            return Err(format!("{s:?}: expected :GUEST:HOST:COUNT:"));
        }
        let num = |v: &str, what: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("{s:?}: {what} {v:?} is not a number"))
        };
        let range = IdRange {
            guest: num(guest, "guest id")?,
            host: num(host, "host id")?,
            count: num(count, "count")?,
        };
        if range.count == 0
            || range.guest.checked_add(range.count - 1).is_none()
            || range.host.checked_add(range.count - 1).is_none()
        {
            return Err(format!("{s:?}: the range is empty or runs past 2^32"));
        }
        Ok(range)
    }
}

/// Id used for host ids no map covers (the kernel's overflow id).
pub const OVERFLOW_ID: u32 = 65534;

/// Translation of ids between guest and host. Empty: the identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    ranges: Vec<IdRange>,
}

/// Ranges an id map may have: as many as the kernel allows in a user
/// namespace's map (each request looks through them).
pub const MAX_ID_RANGES: usize = 340;

impl IdMap {
    pub fn new(ranges: Vec<IdRange>) -> Result<IdMap, String> {
        if ranges.len() > MAX_ID_RANGES {
            return Err(format!(
                "at most {MAX_ID_RANGES} ranges (as in a user namespace's map), got {}",
                ranges.len()
            ));
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                // In u64: ranges may end at 2^32 (u32 sums would overflow).
                let overlap = |x: u32, y: u32| {
                    let (x, y) = (u64::from(x), u64::from(y));
                    x < y + u64::from(b.count) && y < x + u64::from(a.count)
                };
                if overlap(a.guest, b.guest) || overlap(a.host, b.host) {
                    return Err(format!("ranges {a:?} and {b:?} overlap"));
                }
            }
        }
        Ok(IdMap { ranges })
    }

    /// The host id of a guest id; None if no range covers it.
    pub fn to_host(&self, guest: u32) -> Option<u32> {
        if self.ranges.is_empty() || guest == u32::MAX {
            return Some(guest);
        }
        self.ranges
            .iter()
            .find(|r| guest >= r.guest && guest - r.guest < r.count)
            .map(|r| r.host + (guest - r.guest))
    }

    /// The guest id of a host id (the overflow id if no range covers it).
    pub fn to_guest(&self, host: u32) -> u32 {
        if self.ranges.is_empty() {
            return host;
        }
        self.ranges
            .iter()
            .find(|r| host >= r.host && host - r.host < r.count)
            .map_or(OVERFLOW_ID, |r| r.guest + (host - r.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges that reach 2^32 (found by the cli_args fuzz target: the
    /// overlap check overflowed).
    #[test]
    fn ranges_at_the_top_of_the_id_space() {
        let range = |s| IdRange::parse(s).unwrap();
        let top = range(":4294901760:4294901760:65536:");
        assert!(IdMap::new(vec![top, top]).is_err());
        let map = IdMap::new(vec![
            range(":4294901760:0:65536:"),
            range(":0:4294901760:65536:"),
        ])
        .unwrap();
        assert_eq!(map.to_host(4294967294), Some(65534));
        assert_eq!(map.to_guest(4294967294), 65534);
        let a = range(":4294967294:5:2:");
        let b = range(":4294967290:100:6:");
        assert!(
            IdMap::new(vec![a, b]).is_err(),
            "guest ids 4294967294-5 are in both"
        );
    }

    /// As many ranges as a user namespace's map may have, and no more
    /// (the overlap check compares every pair: the cli_args fuzz target
    /// spent 10 s on a map of tens of thousands).
    #[test]
    fn maps_have_at_most_340_ranges() {
        let ranges = |n: u32| -> Vec<IdRange> {
            (0..n)
                .map(|i| IdRange {
                    guest: i * 10,
                    host: 100_000 + i * 10,
                    count: 10,
                })
                .collect()
        };
        assert!(IdMap::new(ranges(340)).is_ok());
        assert!(IdMap::new(ranges(341)).is_err());
    }

    #[test]
    fn id_range_parse() {
        assert_eq!(
            IdRange::parse(":0:1000:1:"),
            Ok(IdRange {
                guest: 0,
                host: 1000,
                count: 1
            })
        );
        for bad in [
            "0:1000:1",
            ":0:1000:1",
            ":a:1:1:",
            ":0:1:0:",
            ":4294967295:0:2:",
            "",
        ] {
            assert!(IdRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_map_both_ways() {
        let map = IdMap::new(vec![
            IdRange::parse(":0:1000:1:").unwrap(),
            IdRange::parse(":1000:2000:10:").unwrap(),
        ])
        .unwrap();
        assert_eq!(map.to_host(0), Some(1000));
        assert_eq!(map.to_host(1005), Some(2005));
        assert_eq!(map.to_host(1), None);
        assert_eq!(map.to_guest(1000), 0);
        assert_eq!(map.to_guest(2009), 1009);
        assert_eq!(map.to_guest(0), OVERFLOW_ID);
        assert_eq!(IdMap::default().to_host(7), Some(7));
        assert_eq!(IdMap::default().to_guest(7), 7);
        assert!(IdMap::new(vec![
            IdRange::parse(":0:0:10:").unwrap(),
            IdRange::parse(":5:100:1:").unwrap()
        ])
        .is_err());
    }
}
