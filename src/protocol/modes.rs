//! Conversions between 9P2000.L's Linux modes and open flags and 9P2000's
//! (and 9P2000.u's) Plan 9 modes and open modes: for a server that speaks
//! 9P2000 on top of Linux files, and for a gateway that speaks 9P2000.L to
//! its guest on top of a 9P2000 upstream.

use super::flags::*;
use super::stat::{DMAPPEND, DMDEVICE, DMDIR, DMEXCL, DMNAMEDPIPE, DMSETGID, DMSETUID};
use super::stat::{DMSETVTX, DMSOCKET, DMSYMLINK};
use super::wire::{QTAPPEND, QTDIR, QTEXCL, QTFILE, QTSYMLINK};
use super::Dialect;

/// 9P2000.L open flags for a 9P2000 open mode.
pub fn lopen_flags_of_mode(mode: u8) -> u32 {
    let mut flags = match mode & 3 {
        OWRITE => P9_WRONLY,
        ORDWR => P9_RDWR,
        _ => P9_RDONLY, // OREAD, OEXEC
    };
    if mode & OTRUNC != 0 {
        flags |= P9_TRUNC;
    }
    if mode & OAPPEND != 0 {
        flags |= P9_APPEND;
    }
    flags
}

/// The 9P2000 open mode for 9P2000.L open flags: the access mode and
/// truncation, and in 9P2000.u appending (the rest has no 9P2000 form).
pub fn open_mode_of_flags(flags: u32, dialect: Dialect) -> u8 {
    let mut mode = match flags & P9_ACCMODE {
        P9_WRONLY => OWRITE,
        P9_RDWR => ORDWR,
        _ => 0, // OREAD
    };
    if flags & P9_TRUNC != 0 {
        mode |= OTRUNC;
    }
    if flags & P9_APPEND != 0 && dialect == Dialect::Unix {
        mode |= OAPPEND;
    }
    mode
}

/// The qid type that goes with a stat mode.
pub fn qid_type_of_dm(mode: u32) -> u8 {
    let mut ty = QTFILE;
    for (bit, qt) in [
        (DMDIR, QTDIR),
        (DMAPPEND, QTAPPEND),
        (DMEXCL, QTEXCL),
        (DMSYMLINK, QTSYMLINK),
    ] {
        if mode & bit != 0 {
            ty |= qt;
        }
    }
    ty
}

/// Plan 9 mode bits of a Unix mode: the permission bits and DMDIR, and in
/// 9P2000.u the file type and setuid/setgid/sticky bits too.
pub fn plan9_mode(mode: u32, dialect: Dialect) -> u32 {
    let mut out = mode & 0o777;
    let unix = dialect == Dialect::Unix;
    out |= match mode & S_IFMT {
        S_IFDIR => DMDIR,
        S_IFLNK if unix => DMSYMLINK,
        S_IFCHR | S_IFBLK if unix => DMDEVICE,
        S_IFIFO if unix => DMNAMEDPIPE,
        S_IFSOCK if unix => DMSOCKET,
        _ => 0,
    };
    if unix {
        for (unix_bit, plan9_bit) in special_bits() {
            if mode & unix_bit != 0 {
                out |= plan9_bit;
            }
        }
    }
    out
}

/// The Unix permission bits (with setuid, setgid, sticky) of a Plan 9 mode.
pub fn unix_permissions(mode: u32) -> u32 {
    let mut out = mode & 0o777;
    for (unix_bit, plan9_bit) in special_bits() {
        if mode & plan9_bit != 0 {
            out |= unix_bit;
        }
    }
    out
}

/// The Unix mode (file type and permission bits) of a Plan 9 mode, with a
/// 9P2000.u device's `extension` ("c MAJ MIN" or "b MAJ MIN"); and its
/// device number, `(major, minor)`.
pub fn unix_mode(mode: u32, extension: &[u8]) -> (u32, (u32, u32)) {
    let mut rdev = (0, 0);
    let file_type = if mode & DMDIR != 0 {
        S_IFDIR
    } else if mode & DMSYMLINK != 0 {
        S_IFLNK
    } else if mode & DMDEVICE != 0 {
        match device(extension) {
            Some((file_type, major, minor)) => {
                rdev = (major, minor);
                file_type
            }
            None => S_IFCHR,
        }
    } else if mode & DMNAMEDPIPE != 0 {
        S_IFIFO
    } else if mode & DMSOCKET != 0 {
        S_IFSOCK
    } else {
        S_IFREG
    };
    (file_type | unix_permissions(mode), rdev)
}

fn special_bits() -> [(u32, u32); 3] {
    [
        (S_ISUID, DMSETUID),
        (S_ISGID, DMSETGID),
        (S_ISVTX, DMSETVTX),
    ]
}

/// "b MAJ MIN" or "c MAJ MIN" (a 9P2000.u device extension).
pub fn device(ext: &[u8]) -> Option<(u32, u32, u32)> {
    let text = std::str::from_utf8(ext).ok()?;
    let mut words = text.split_ascii_whitespace();
    let file_type = match words.next()? {
        "b" => S_IFBLK,
        "c" => S_IFCHR,
        _ => return None,
    };
    let major = words.next()?.parse().ok()?;
    let minor = words.next()?.parse().ok()?;
    words.next().is_none().then_some((file_type, major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_convert_both_ways() {
        let cases = [
            (S_IFREG | 0o644, Dialect::Plan9, 0o644),
            (S_IFDIR | 0o755, Dialect::Plan9, DMDIR | 0o755),
            (S_IFLNK | 0o777, Dialect::Plan9, 0o777),
            (S_IFLNK | 0o777, Dialect::Unix, DMSYMLINK | 0o777),
            (S_IFCHR | 0o600, Dialect::Unix, DMDEVICE | 0o600),
            (S_IFBLK | 0o600, Dialect::Unix, DMDEVICE | 0o600),
            (S_IFIFO | 0o600, Dialect::Unix, DMNAMEDPIPE | 0o600),
            (S_IFSOCK | 0o600, Dialect::Unix, DMSOCKET | 0o600),
            (S_IFIFO | 0o600, Dialect::Plan9, 0o600),
            (S_IFREG | 0o4755, Dialect::Unix, DMSETUID | 0o755),
            (S_IFREG | 0o4755, Dialect::Plan9, 0o755),
            (
                S_IFDIR | 0o3775,
                Dialect::Unix,
                DMDIR | DMSETGID | DMSETVTX | 0o775,
            ),
        ];
        for (unix, dialect, plan9) in cases {
            assert_eq!(plan9_mode(unix, dialect), plan9, "{unix:o} in {dialect:?}");
        }
        assert_eq!(
            unix_permissions(DMDIR | DMSETGID | DMSETVTX | 0o775),
            0o3775
        );
        assert_eq!(unix_permissions(DMSETUID | 0o700), 0o4700);
    }

    #[test]
    fn qid_types_follow_the_mode() {
        assert_eq!(qid_type_of_dm(DMDIR | 0o755), QTDIR);
        assert_eq!(qid_type_of_dm(DMAPPEND | 0o444), QTAPPEND);
        assert_eq!(qid_type_of_dm(DMSYMLINK | 0o777), QTSYMLINK);
        assert_eq!(qid_type_of_dm(0o644), QTFILE);
    }

    #[test]
    fn open_modes() {
        assert_eq!(lopen_flags_of_mode(0), P9_RDONLY);
        assert_eq!(lopen_flags_of_mode(3), P9_RDONLY); // OEXEC
        assert_eq!(lopen_flags_of_mode(OWRITE | OTRUNC), P9_WRONLY | P9_TRUNC);
        assert_eq!(lopen_flags_of_mode(ORDWR | OAPPEND), P9_RDWR | P9_APPEND);
        assert_eq!(lopen_flags_of_mode(ORCLOSE), P9_RDONLY);
    }

    #[test]
    fn plan9_modes_become_unix_modes() {
        let cases = [
            (0o644, &b""[..], S_IFREG | 0o644, (0, 0)),
            (DMDIR | DMSETGID | 0o755, b"", S_IFDIR | 0o2755, (0, 0)),
            (DMSYMLINK | 0o777, b"target", S_IFLNK | 0o777, (0, 0)),
            (DMDEVICE | 0o600, b"b 8 1", S_IFBLK | 0o600, (8, 1)),
            (DMDEVICE | 0o600, b"c 1 3", S_IFCHR | 0o600, (1, 3)),
            (DMNAMEDPIPE | 0o600, b"", S_IFIFO | 0o600, (0, 0)),
            (DMSOCKET | 0o600, b"", S_IFSOCK | 0o600, (0, 0)),
        ];
        for (plan9, ext, unix, rdev) in cases {
            assert_eq!(unix_mode(plan9, ext), (unix, rdev), "{plan9:#x}");
            // And back, in 9P2000.u.
            assert_eq!(plan9_mode(unix, Dialect::Unix), plan9, "{unix:o}");
        }
    }

    #[test]
    fn open_modes_both_ways() {
        for (flags, dialect, mode) in [
            (P9_RDONLY, Dialect::Plan9, 0),
            (P9_WRONLY | P9_TRUNC, Dialect::Plan9, OWRITE | OTRUNC),
            (P9_RDWR | P9_APPEND, Dialect::Plan9, ORDWR),
            (P9_RDWR | P9_APPEND, Dialect::Unix, ORDWR | OAPPEND),
            (P9_RDONLY | P9_DIRECTORY | P9_NOATIME, Dialect::Unix, 0),
        ] {
            assert_eq!(open_mode_of_flags(flags, dialect), mode, "{flags:o}");
        }
    }

    #[test]
    fn device_extensions() {
        assert_eq!(device(b"c 1 3"), Some((S_IFCHR, 1, 3)));
        assert_eq!(device(b"b 8 0"), Some((S_IFBLK, 8, 0)));
        for bad in [&b"x 1 3"[..], b"c 1", b"c 1 3 4", b"c a b", b"", b"\xff"] {
            assert_eq!(device(bad), None, "{bad:?}");
        }
    }
}
