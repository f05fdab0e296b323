//! What the fuzz targets and the seed generator share: the input format of
//! the `frames` target, and the scratch share it serves.
//!
//! A `frames` input is one configuration byte, then 9P request frames back
//! to back (`size[4] type[1] tag[2] body`). The configuration byte picks the
//! dialect and msize of the Tversion the harness sends first, followed by a
//! Tattach of fid 0, so every input starts past the handshake.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use vhost_user_9p::protocol::{
    Header, Str, Tattach, Tlock, Tmessage, Tversion, HEADER_SIZE, NOFID, NOTAG,
};

/// The Tversion strings the configuration byte chooses from.
pub const VERSIONS: [&str; 3] = ["9P2000.L", "9P2000.u", "9P2000"];
/// The msizes the configuration byte chooses from (4096 is the server's
/// minimum).
pub const MSIZES: [u32; 4] = [8192, 4096, 65536, 1 << 20];

/// The handshake an input's configuration byte asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Index into [`VERSIONS`].
    pub dialect: usize,
    pub msize: u32,
}

impl Setup {
    pub fn from_byte(byte: u8) -> Setup {
        Setup {
            dialect: usize::from(byte % 3),
            msize: MSIZES[usize::from(byte / 3 % 4)],
        }
    }

    /// The configuration byte of a setup (inverse of [`Setup::from_byte`]).
    pub fn byte(dialect: usize, msize_index: usize) -> u8 {
        (msize_index * 3 + dialect) as u8
    }

    /// Tversion (tag NOTAG), then Tattach of fid 0 (tag 0) as user 0.
    pub fn handshake(&self) -> [Vec<u8>; 2] {
        let mut version = Vec::new();
        Tmessage::Version(Tversion {
            msize: self.msize,
            version: Str(VERSIONS[self.dialect].as_bytes()),
        })
        .encode(NOTAG, &mut version);
        let mut attach = Vec::new();
        Tmessage::Attach(Tattach {
            fid: 0,
            afid: NOFID,
            uname: Str(b"root"),
            aname: Str(b""),
            // 9P2000 has no n_uname.
            n_uname: (self.dialect != 2).then_some(0),
        })
        .encode(0, &mut attach);
        [version, attach]
    }
}

/// Splits the frames part of an input by the frames' size fields, clamped:
/// a size below the header's 7 bytes counts as 7, one past the end of the
/// input as the rest of it; fewer than 7 bytes left end the sequence.
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Frames { rest: bytes }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < HEADER_SIZE {
            return None;
        }
        let size = u32::from_le_bytes(self.rest[..4].try_into().unwrap()) as usize;
        let size = size.clamp(HEADER_SIZE, self.rest.len());
        let (frame, rest) = self.rest.split_at(size);
        self.rest = rest;
        Some(frame)
    }
}

/// Copies a frame as a transport would hand it to `serve_frame`: its size
/// field made its length. A Tlock's BLOCK flag is cleared: a blocking lock
/// that conflicts waits up to 500 ms in the server, which would make the
/// fuzzer crawl (the server never waits longer, so nothing is lost but
/// that pause).
pub fn prepare_frame(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(raw);
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    // Tlock: header, fid[4] type[1] flags[4].
    const FLAGS: usize = HEADER_SIZE + 5;
    if out[4] == Tlock::TYPE && out.len() >= FLAGS + 4 {
        out[FLAGS] &= !1;
    }
}

/// An input of the `frames` target: the configuration byte, then the frames.
pub fn frames_input(setup_byte: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut input = vec![setup_byte];
    for f in frames {
        debug_assert_eq!(Header::parse(f).map(|h| h.size as usize), Ok(f.len()));
        input.extend_from_slice(f);
    }
    input
}

// ---------------------------------------------------------------------------
// The scratch share
// ---------------------------------------------------------------------------

/// The metadata of a path that tells whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    ino: u64,
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    xattr_list_len: isize,
}

impl Meta {
    pub fn of(path: &Path) -> Option<Meta> {
        let m = fs::symlink_metadata(path).ok()?;
        Some(Meta {
            ino: m.ino(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            xattr_list_len: xattr_list_len(path),
        })
    }
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in scratch paths")
}

/// Bytes of the path's xattr name list (0: none), or -1.
fn xattr_list_len(path: &Path) -> isize {
    let p = cpath(path);
    // SAFETY: a valid C string; a null buffer of size 0 asks for the size.
    unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) }
}

/// Removes every xattr of a path (the share's root outlives restocking).
fn clear_xattrs(path: &Path) {
    let p = cpath(path);
    let mut buf = vec![0u8; 65536];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return;
    }
    for name in buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let name = CString::new(name).unwrap();
        // SAFETY: valid C strings.
        unsafe { libc::lremovexattr(p.as_ptr(), name.as_ptr()) };
    }
}

const HELLO: &[u8] = b"hello, world\n";
const INNER: &[u8] = b"inner file\n";
const SECRET: &[u8] = b"secret outside the share: must never change\n";

/// `BASE/share` (served), next to `BASE/outside/secret` (must never change).
/// Made once per process, removed at exit, under [`scratch_root`].
pub struct Scratch {
    pub base: PathBuf,
    pub share: PathBuf,
    secret: PathBuf,
    secret_meta: Meta,
    /// Paths in the share, as left by the last restock.
    expected: Vec<(PathBuf, Meta)>,
    root_entries: usize,
    pub restocks: u64,
}

static BASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

extern "C" fn remove_base() {
    if let Some(base) = BASE.get() {
        let _ = fs::remove_dir_all(base);
    }
}

/// Removes scratch directories left by fuzzing processes that are gone
/// (a crash skips the exit handler).
fn remove_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("vhost-user-9p-fuzz-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Where the scratch directories go: `$FUZZ_SCRATCH_DIR` if set, else
/// /dev/shm when it is a writable directory (tmpfs: making and removing
/// files there costs a fraction of what it does on a disk file system, and
/// restocking the share is most of a `frames` execution), else the temp
/// directory.
pub fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FUZZ_SCRATCH_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let c = cpath(shm);
    // SAFETY: a valid C string.
    if shm.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

impl Scratch {
    pub fn create() -> io::Result<Scratch> {
        let tmp = scratch_root();
        remove_stale(&tmp);
        let base = tmp.join(format!("vhost-user-9p-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("share"))?;
        fs::create_dir_all(base.join("outside"))?;
        if BASE.set(base.clone()).is_ok() {
            // SAFETY: registers a plain extern "C" function.
            unsafe { libc::atexit(remove_base) };
        }
        let secret = base.join("outside/secret");
        fs::write(&secret, SECRET)?;
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644))?;
        let secret_meta = Meta::of(&secret).expect("secret just made");
        let mut scratch = Scratch {
            share: base.join("share"),
            base,
            secret,
            secret_meta,
            expected: Vec::new(),
            root_entries: 0,
            restocks: 0,
        };
        scratch.restock()?;
        Ok(scratch)
    }

    /// Puts the share back as it was made: clears it (its root stays: the
    /// server holds it open) and fills it again.
    pub fn restock(&mut self) -> io::Result<()> {
        self.restocks += 1;
        let share = &self.share;
        for e in fs::read_dir(share)? {
            let path = e?.path();
            let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        clear_xattrs(share);
        std::os::unix::fs::lchown(share, Some(0), Some(0)).or_else(ignore_eperm)?;
        fs::set_permissions(share, fs::Permissions::from_mode(0o755))?;

        let file = |name: &str, content: &[u8], mode: u32| -> io::Result<()> {
            let p = share.join(name);
            fs::write(&p, content)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
        };
        file("hello.txt", HELLO, 0o644)?;
        file("empty", b"", 0o600)?;
        fs::create_dir(share.join("dir"))?;
        fs::set_permissions(share.join("dir"), fs::Permissions::from_mode(0o755))?;
        file("dir/inner.txt", INNER, 0o644)?;
        // Symlinks leading out of the share, relative and absolute, and one
        // that stays inside.
        symlink("../outside/secret", share.join("escape"))?;
        symlink(&self.secret, share.join("abs"))?;
        symlink("../../outside", share.join("dir/up"))?;
        symlink("dir", share.join("dirlink"))?;
        let fifo = cpath(&share.join("fifo"));
        // SAFETY: a valid C string.
        if unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) } != 0 {
            return Err(io::Error::last_os_error());
        }

        let paths = [
            "",
            "hello.txt",
            "empty",
            "dir",
            "dir/inner.txt",
            "dir/up",
            "escape",
            "abs",
            "dirlink",
            "fifo",
        ];
        self.expected = paths
            .iter()
            .map(|p| {
                let path = if p.is_empty() {
                    share.clone()
                } else {
                    share.join(p)
                };
                let meta = Meta::of(&path).expect("just made");
                (path, meta)
            })
            .collect();
        self.root_entries = fs::read_dir(share)?.count();
        Ok(())
    }

    /// Whether the share looks as the last restock left it (cheap: a stat
    /// and an xattr listing per path, the root's entry count and the
    /// contents of the two regular files).
    pub fn intact(&self) -> bool {
        self.expected
            .iter()
            .all(|(path, meta)| Meta::of(path).as_ref() == Some(meta))
            && fs::read_dir(&self.share).map(|d| d.count()).ok() == Some(self.root_entries)
            && fs::read(self.share.join("hello.txt")).ok().as_deref() == Some(HELLO)
            && fs::read(self.share.join("dir/inner.txt")).ok().as_deref() == Some(INNER)
    }

    /// Panics unless everything outside the share is as it was made.
    pub fn check_outside(&self) {
        let names = |dir: &Path| -> Vec<std::ffi::OsString> {
            let mut v: Vec<_> = fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&self.base),
            ["outside", "share"],
            "an entry appeared or went next to the share"
        );
        assert_eq!(
            names(&self.base.join("outside")),
            ["secret"],
            "an entry appeared or went outside the share"
        );
        assert_eq!(
            Meta::of(&self.secret).as_ref(),
            Some(&self.secret_meta),
            "outside/secret changed (metadata, links or xattrs)"
        );
        assert_eq!(
            fs::read(&self.secret).ok().as_deref(),
            Some(SECRET),
            "outside/secret's content changed"
        );
    }
}

fn ignore_eperm(e: io::Error) -> io::Result<()> {
    if e.raw_os_error() == Some(libc::EPERM) {
        Ok(())
    } else {
        Err(e)
    }
}

/// As root the server (passthrough) makes device nodes as the client asks:
/// a fuzzer must not be able to make one of the host's disks. Drops
/// CAP_MKNOD from this process, then checks that a device node cannot be
/// made; panics if it can.
pub fn forbid_device_nodes(scratch_dir: &Path) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_MKNOD: u32 = 27;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data records.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) == 0 {
            data[0].effective &= !(1 << CAP_MKNOD);
            data[0].permitted &= !(1 << CAP_MKNOD);
            data[0].inheritable &= !(1 << CAP_MKNOD);
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr());
        }
    }
    let probe = scratch_dir.join("device-probe");
    let p = cpath(&probe);
    // SAFETY: a valid C string; /dev/null's numbers (1, 3).
    let made = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    if made == 0 {
        let _ = fs::remove_file(&probe);
        panic!("this process can still make device nodes: refusing to fuzz the server");
    }
}

/// The server the `frames` and `chain` targets fuzz: on a new scratch share
/// (device nodes forbidden first), with the control namespace.
pub fn scratch_server() -> (Scratch, vhost_user_9p::server::Server) {
    let scratch = Scratch::create().expect("scratch share");
    forbid_device_nodes(&scratch.base);
    let mut config = vhost_user_9p::server::Config::new(&scratch.share);
    config.ctl = true;
    let server = vhost_user_9p::server::Server::new(&config).expect("server");
    (scratch, server)
}

/// Requests that change the share when they succeed (beside what the
/// cheap state check sees): an input that sends one restocks the share.
pub fn changes_share(msg_type: u8) -> bool {
    use vhost_user_9p::protocol::*;
    [
        Tlcreate::TYPE,
        Tsymlink::TYPE,
        Tmknod::TYPE,
        Trename::TYPE,
        Tsetattr::TYPE,
        Txattrcreate::TYPE,
        Tlink::TYPE,
        Tmkdir::TYPE,
        Trenameat::TYPE,
        Tunlinkat::TYPE,
        Tcreate::TYPE,
        Twrite::TYPE,
        Tremove::TYPE,
        Twstat::TYPE,
    ]
    .contains(&msg_type)
}

// ---------------------------------------------------------------------------
// The `chain` target's input format
// ---------------------------------------------------------------------------

/// The input format of the `chain` target: a virtqueue (descriptor table,
/// indirect tables, avail ring) and the guest memory its buffers point to.
///
/// Guest memory is two adjacent regions, `0..0x10000` and
/// `0x10000..0x12000` (a buffer may span both, or run past the end):
///
/// | guest address | what |
/// | --- | --- |
/// | `0x0000` | descriptor table (16 bytes × queue size) |
/// | `0x1000` | avail ring (flags, idx, ring, used_event) |
/// | `0x1800` | used ring (flags, idx, ring, avail_event) |
/// | `0x2400..0x3000` | indirect tables (192 descriptors) |
/// | `0x3000..0x12000` | data: the rest of the input, copied from 0x3000 |
///
/// Input bytes (missing bytes read as 0):
///
/// - `config`: queue size `1 << ((config & 0x0f) % 9)`; `0x10` event idx; `0x20`
///   serve a Tversion and a Tattach (fid 0) first, on chains of the
///   harness's (so the queue's indexes start at 2); `0x40` publish the
///   heads in two halves, with a `handle_event` after each.
/// - `setup`: the handshake's dialect and msize ([`Setup::from_byte`]).
/// - `n`, then `min(n, size)` descriptors of 6 bytes, from index 0;
/// - `m`, then `min(m, 192)` descriptors of the indirect area;
/// - `k`, then `k` heads of one byte each (written to the ring from the
///   queue's next index on, wrapping), then `extra`: avail idx moves by
///   `k + extra`, cut to the queue size unless the harness lets it jump;
/// - `used_event` (2 bytes, LE);
/// - the data area's bytes.
///
/// A descriptor is `off[2] len[2] flags[1] next[1]`: the virtio flags are
/// `flags & 7` (NEXT, WRITE, INDIRECT); the address is `0x3000 + off`
/// (`0x2400 + off % 0xc00` for an INDIRECT one); `flags & 0x08` makes it
/// `0xffff_ffff_ffff_0000 | off` (outside memory, near overflow), else
/// `flags & 0x20` makes it `off` itself (anywhere, the rings included);
/// `flags & 0x10` makes the length `0xffff_0000 | len`.
pub mod chain_input {
    pub const MEM_REGIONS: [(u64, usize); 2] = [(0, 0x10000), (0x10000, 0x2000)];
    pub const MEM_END: u64 = 0x12000;
    pub const DESC_TABLE: u64 = 0x0000;
    pub const AVAIL_RING: u64 = 0x1000;
    pub const USED_RING: u64 = 0x1800;
    pub const INDIRECT_BASE: u64 = 0x2400;
    pub const INDIRECT_SPAN: u64 = 0xc00;
    pub const INDIRECT_MAX: usize = (INDIRECT_SPAN / 16) as usize;
    pub const DATA_BASE: u64 = 0x3000;
    pub const DATA_LEN: usize = (MEM_END - DATA_BASE) as usize;
    pub const MAX_QUEUE_SIZE: u16 = 256;

    pub const CONFIG_EVENT_IDX: u8 = 0x10;
    pub const CONFIG_HANDSHAKE: u8 = 0x20;
    pub const CONFIG_TWO_ROUNDS: u8 = 0x40;

    pub const NEXT: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const INDIRECT: u8 = 4;
    pub const FAR: u8 = 0x08;
    pub const HUGE: u8 = 0x10;
    pub const RAW: u8 = 0x20;

    /// One descriptor as the input gives it.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Desc {
        pub off: u16,
        pub len: u16,
        pub flags: u8,
        pub next: u8,
    }

    impl Desc {
        /// A buffer at `off` in the data area.
        pub fn data(off: u16, len: u16, write: bool, next: Option<u8>) -> Desc {
            let mut flags = if write { WRITE } else { 0 };
            if next.is_some() {
                flags |= NEXT;
            }
            Desc {
                off,
                len,
                flags,
                next: next.unwrap_or(0),
            }
        }

        /// An indirect table of `count` descriptors, `first` descriptors
        /// into the indirect area.
        pub fn indirect(first: u16, count: u16) -> Desc {
            Desc {
                off: first * 16,
                len: count * 16,
                flags: INDIRECT,
                next: 0,
            }
        }

        fn parse(b: &[u8]) -> Desc {
            Desc {
                off: u16::from_le_bytes([b[0], b[1]]),
                len: u16::from_le_bytes([b[2], b[3]]),
                flags: b[4],
                next: b[5],
            }
        }

        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.off.to_le_bytes());
            out.extend_from_slice(&self.len.to_le_bytes());
            out.push(self.flags);
            out.push(self.next);
        }

        /// The virtio descriptor: `(addr, len, flags, next)`.
        pub fn raw(&self) -> (u64, u32, u16, u16) {
            let off = u64::from(self.off);
            let addr = if self.flags & FAR != 0 {
                0xffff_ffff_ffff_0000 | off
            } else if self.flags & RAW != 0 {
                off
            } else if self.flags & INDIRECT != 0 {
                INDIRECT_BASE + off % INDIRECT_SPAN
            } else {
                DATA_BASE + off
            };
            let len = if self.flags & HUGE != 0 {
                0xffff_0000 | u32::from(self.len)
            } else {
                u32::from(self.len)
            };
            (addr, len, u16::from(self.flags & 7), u16::from(self.next))
        }

        /// The 16 bytes of the virtio descriptor.
        pub fn bytes(&self) -> [u8; 16] {
            let (addr, len, flags, next) = self.raw();
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            b[12..14].copy_from_slice(&flags.to_le_bytes());
            b[14..].copy_from_slice(&next.to_le_bytes());
            b
        }
    }

    /// A parsed `chain` input.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ChainInput {
        pub config: u8,
        pub setup: u8,
        pub descs: Vec<Desc>,
        pub indirect: Vec<Desc>,
        pub heads: Vec<u8>,
        pub extra: u8,
        pub used_event: u16,
        pub data: Vec<u8>,
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let n = n.min(self.0.len());
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        }
        fn byte(&mut self) -> u8 {
            self.take(1).first().copied().unwrap_or(0)
        }
        fn desc(&mut self) -> Desc {
            let mut b = [0u8; 6];
            let got = self.take(6);
            b[..got.len()].copy_from_slice(got);
            Desc::parse(&b)
        }
    }

    impl ChainInput {
        pub fn queue_size(&self) -> u16 {
            1 << ((self.config & 0x0f) % 9)
        }

        pub fn parse(input: &[u8]) -> ChainInput {
            let mut r = Reader(input);
            let config = r.byte();
            let setup = r.byte();
            let size = 1usize << ((config & 0x0f) % 9);
            let n = usize::from(r.byte()).min(size);
            let descs = (0..n).map(|_| r.desc()).collect();
            let m = usize::from(r.byte()).min(INDIRECT_MAX);
            let indirect = (0..m).map(|_| r.desc()).collect();
            let k = usize::from(r.byte());
            let heads = r.take(k).to_vec();
            let extra = r.byte();
            let used_event = u16::from_le_bytes([r.byte(), r.byte()]);
            let data = r.take(DATA_LEN).to_vec();
            ChainInput {
                config,
                setup,
                descs,
                indirect,
                heads,
                extra,
                used_event,
                data,
            }
        }

        /// The input bytes (inverse of [`ChainInput::parse`] for inputs
        /// within its limits).
        pub fn encode(&self) -> Vec<u8> {
            let mut out = vec![self.config, self.setup, self.descs.len() as u8];
            self.descs.iter().for_each(|d| d.encode(&mut out));
            out.push(self.indirect.len() as u8);
            self.indirect.iter().for_each(|d| d.encode(&mut out));
            out.push(self.heads.len() as u8);
            out.extend_from_slice(&self.heads);
            out.push(self.extra);
            out.extend_from_slice(&self.used_event.to_le_bytes());
            out.extend_from_slice(&self.data);
            out
        }
    }
}
