//! Flag and mode values carried in 9P messages, once each: the Linux
//! client's (include/net/9p/9p.h) for 9P2000.L, Plan 9's for 9P2000 and
//! 9P2000.u. The server translates them; none is passed to the host raw.

// Tlopen and Tlcreate flags (9P2000.L).
pub const P9_RDONLY: u32 = 0o0;
pub const P9_WRONLY: u32 = 0o1;
pub const P9_RDWR: u32 = 0o2;
/// The access mode bits of a Tlopen's flags.
pub const P9_ACCMODE: u32 = 0o3;
pub const P9_CREATE: u32 = 0o100;
pub const P9_EXCL: u32 = 0o200;
pub const P9_TRUNC: u32 = 0o1000;
pub const P9_APPEND: u32 = 0o2000;
pub const P9_NONBLOCK: u32 = 0o4000;
pub const P9_DSYNC: u32 = 0o10000;
pub const P9_DIRECTORY: u32 = 0o200000;
pub const P9_NOATIME: u32 = 0o1000000;
pub const P9_SYNC: u32 = 0o4000000;

// File types and special bits of a 9P2000.L mode (Rgetattr, Tsetattr,
// Tlcreate, Tmknod): Linux's stat(2) values, carried as they are.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;

// Tsetattr valid bits.
pub const ATTR_MODE: u32 = 1 << 0;
pub const ATTR_UID: u32 = 1 << 1;
pub const ATTR_GID: u32 = 1 << 2;
pub const ATTR_SIZE: u32 = 1 << 3;
pub const ATTR_ATIME: u32 = 1 << 4;
pub const ATTR_MTIME: u32 = 1 << 5;
pub const ATTR_CTIME: u32 = 1 << 6;
pub const ATTR_ATIME_SET: u32 = 1 << 7;
pub const ATTR_MTIME_SET: u32 = 1 << 8;

// Tgetattr request and Rgetattr valid bits: BASIC (mode to blocks) and
// BTIME.
pub const GETATTR_BASIC: u64 = 0x7ff;
pub const GETATTR_BTIME: u64 = 0x800;

/// Tunlinkat: remove a directory.
pub const AT_REMOVEDIR_9P: u32 = 0x200;

// Tlock and Tgetlock.
pub const LOCK_TYPE_RDLCK: u8 = 0;
pub const LOCK_TYPE_WRLCK: u8 = 1;
pub const LOCK_TYPE_UNLCK: u8 = 2;
pub const LOCK_SUCCESS: u8 = 0;
pub const LOCK_BLOCKED: u8 = 1;
pub const LOCK_FLAGS_BLOCK: u32 = 1;
pub const LOCK_FLAGS_RECLAIM: u32 = 2;

// Topen and Tcreate modes (9P2000, 9P2000.u); OREAD is 0 and OEXEC 3,
// the access mode being `mode & 3`.
pub const OWRITE: u8 = 1;
pub const ORDWR: u8 = 2;
pub const OTRUNC: u8 = 0x10;
pub const ORCLOSE: u8 = 0x40;
/// 9P2000.u (the Linux client's P9_OAPPEND).
pub const OAPPEND: u8 = 0x80;
