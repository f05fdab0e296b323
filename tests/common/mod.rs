//! A lean vhost-user frontend for tests and benchmarks that keep many 9P
//! requests in flight: the test plays the VMM (like `vhost_user_frontend.rs`,
//! whose approach this follows), with guest RAM in a memfd and one split
//! virtqueue of 1024 entries that it drives itself.
//!
//! Chains are built once, each as an indirect table behind one ring
//! descriptor (as the Linux driver does when it has more than one
//! scatter-gather entry), and re-posted as often as wanted: once set up,
//! posting, kicking, waiting and reaping allocate nothing, so a test can
//! count the daemon's allocations in the same process. Kicks and interrupts
//! follow VIRTIO_RING_F_EVENT_IDX like a real driver.
//!
//! Shared by `tests/alloc_count.rs` and `benches/microbench.rs`.

#![allow(dead_code)]

pub mod inproc;
pub mod vring;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{VhostUserHeaderFlag, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub use vring::{enable_vring, GuestRam, RingLayout};

pub const QSIZE: u16 = 1024;

const VIRTIO_9P_MOUNT_TAG: u64 = 1 << 0;
const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;

const VRING_DESC_F_NEXT: u16 = 1;
const VRING_DESC_F_WRITE: u16 = 2;
const VRING_DESC_F_INDIRECT: u16 = 4;

// Guest physical layout: the rings at the bottom, then a bump heap.
const DESC_GPA: u64 = 0; // 1024 * 16 bytes
const AVAIL_GPA: u64 = 0x4000; // 4 + 2 * 1024 + 2 bytes
const USED_GPA: u64 = 0x5000; // 4 + 8 * 1024 + 2 bytes
const HEAP_GPA: u64 = 0x8000;
/// `used_event`, at the end of the avail ring.
const USED_EVENT_GPA: u64 = AVAIL_GPA + 4 + 2 * QSIZE as u64;
/// `avail_event`, at the end of the used ring.
const AVAIL_EVENT_GPA: u64 = USED_GPA + 4 + 8 * QSIZE as u64;

pub const PAGE: u32 = 4096;

// 9P2000.L message types.
pub const RLERROR: u8 = 7;
pub const TLOPEN: u8 = 12;
pub const TLCREATE: u8 = 14;
pub const TGETATTR: u8 = 24;
pub const TVERSION: u8 = 100;
pub const TATTACH: u8 = 104;
pub const TFLUSH: u8 = 108;
pub const TWALK: u8 = 110;
pub const TREAD: u8 = 116;
pub const TWRITE: u8 = 118;
pub const TCLUNK: u8 = 120;
pub const NOTAG: u16 = 0xffff;
pub const NOFID: u32 = 0xffff_ffff;
pub const GETATTR_BASIC: u64 = 0x7ff;
pub const O_RDONLY: u32 = 0;
pub const O_RDWR: u32 = 2;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A buffer area of a chain: a first descriptor of `first` bytes (none if
/// 0), then `rest` bytes in page-aligned descriptors of `piece` bytes, kept
/// apart from the first (like a Linux zero-copy request: a header buffer,
/// then the pinned pages of the user's buffer).
#[derive(Clone, Copy, Debug)]
pub struct Area {
    pub first: u32,
    pub rest: u32,
    pub piece: u32,
}

impl Area {
    /// One descriptor of `len` bytes.
    pub fn one(len: u32) -> Area {
        Area {
            first: len,
            rest: 0,
            piece: PAGE,
        }
    }

    /// A `first`-byte header descriptor, then `data` bytes in pages.
    pub fn paged(first: u32, data: u32) -> Area {
        Area {
            first,
            rest: data,
            piece: PAGE,
        }
    }

    pub fn len(&self) -> u32 {
        self.first + self.rest
    }
}

/// A chain built once and posted as often as wanted.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// Head descriptor index: also what the used ring returns.
    pub head: u16,
    /// Guest address of the readable (request) area's first descriptor,
    /// of the data descriptors after it, and the area's size.
    pub request: u64,
    pub request_data: u64,
    pub request_len: u32,
    /// The same for the writable (reply) area.
    pub reply: u64,
    pub reply_data: u64,
    pub reply_len: u32,
}

pub struct Vmm {
    frontend: Frontend,
    pub mem: GuestMemoryMmap<()>,
    mem_size: u64,
    kick: EventFd,
    call: EventFd,
    pub event_idx: bool,
    next_avail: u16,
    /// Avail index at the last kick decision.
    kicked_avail: u16,
    last_used: u16,
    heap: u64,
    next_desc: u16,
    /// Chains posted and not yet reaped.
    pub in_flight: u16,
    /// Kicks actually sent (EVENT_IDX suppresses the others).
    pub kicks: u64,
}

impl Vmm {
    /// Connects to a vhost-user-9p socket and brings queue 0 up the way
    /// QEMU does, with `mem_size` bytes of guest RAM.
    pub fn connect(socket: &Path, mem_size: u64, event_idx: bool) -> Vmm {
        let mut frontend = Frontend::connect(socket, 1).expect("connect to the daemon socket");
        frontend.set_owner().expect("SET_OWNER");
        let device_features = frontend.get_features().expect("GET_FEATURES");
        let mut wanted = VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_9P_MOUNT_TAG
            | VHOST_USER_F_PROTOCOL_FEATURES;
        if event_idx {
            wanted |= VIRTIO_RING_F_EVENT_IDX;
        }
        let acked = device_features & wanted;
        frontend.set_features(acked).expect("SET_FEATURES");
        let protocol = frontend
            .get_protocol_features()
            .expect("GET_PROTOCOL_FEATURES")
            & (VhostUserProtocolFeatures::CONFIG
                | VhostUserProtocolFeatures::MQ
                | VhostUserProtocolFeatures::REPLY_ACK
                | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS);
        frontend
            .set_protocol_features(protocol)
            .expect("SET_PROTOCOL_FEATURES");
        if protocol.contains(VhostUserProtocolFeatures::REPLY_ACK) {
            frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        }
        frontend.get_queue_num().expect("GET_QUEUE_NUM");

        let memfd = nix::sys::memfd::memfd_create(
            "vhost-user-9p-bench-ram",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .expect("memfd_create");
        let file = File::from(memfd);
        file.set_len(mem_size).expect("size memfd");
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(
            GuestAddress(0),
            mem_size as usize,
            Some(FileOffset::new(file, 0)),
        )])
        .expect("map guest memory");
        let regions: Vec<VhostUserMemoryRegionInfo> = mem
            .iter()
            .map(|r| VhostUserMemoryRegionInfo::from_guest_region(r).expect("region info"))
            .collect();
        frontend.set_mem_table(&regions).expect("SET_MEM_TABLE");

        let vmm = Vmm {
            frontend,
            mem,
            mem_size,
            kick: EventFd::new(EFD_NONBLOCK).expect("kick eventfd"),
            call: EventFd::new(EFD_NONBLOCK).expect("call eventfd"),
            event_idx: acked & VIRTIO_RING_F_EVENT_IDX != 0,
            next_avail: 0,
            kicked_avail: 0,
            last_used: 0,
            heap: HEAP_GPA,
            next_desc: 0,
            in_flight: 0,
            kicks: 0,
        };
        enable_vring(
            &vmm.frontend,
            &vmm.mem,
            &RingLayout {
                size: QSIZE,
                desc: DESC_GPA,
                avail: AVAIL_GPA,
                used: USED_GPA,
            },
            0,
            &vmm.call,
            &vmm.kick,
        );
        vmm
    }

    pub fn write(&self, gpa: u64, data: &[u8]) {
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .expect("write guest memory");
    }

    pub fn read(&self, gpa: u64, buf: &mut [u8]) {
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .expect("read guest memory");
    }

    /// Guest memory for buffers, `align`-aligned.
    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        let start = self.heap.next_multiple_of(align);
        assert!(start + len <= self.mem_size, "guest RAM exhausted");
        self.heap = start + len;
        start
    }

    /// Builds a chain: `readable` then `writable` buffers (address, length)
    /// in an indirect table behind one ring descriptor; returns its head.
    pub fn chain(&mut self, readable: &[(u64, u32)], writable: &[(u64, u32)]) -> u16 {
        let n = readable.len() + writable.len();
        assert!(n > 0 && n <= usize::from(QSIZE));
        let table = self.alloc(16 * n as u64, 16);
        let all = readable
            .iter()
            .map(|&(a, l)| (a, l, 0))
            .chain(writable.iter().map(|&(a, l)| (a, l, VRING_DESC_F_WRITE)));
        for (i, (addr, len, flags)) in all.enumerate() {
            let last = i + 1 == n;
            let flags = if last {
                flags
            } else {
                flags | VRING_DESC_F_NEXT
            };
            let next = if last { 0 } else { i as u16 + 1 };
            self.mem
                .write_desc(table + 16 * i as u64, addr, len, flags, next);
        }
        assert!(self.next_desc < QSIZE, "out of ring descriptors");
        let head = self.next_desc;
        self.next_desc += 1;
        self.mem.write_desc(
            DESC_GPA + 16 * u64::from(head),
            table,
            16 * n as u32,
            VRING_DESC_F_INDIRECT,
            0,
        );
        head
    }

    /// A slot: a readable request area and a writable reply area, each
    /// split into descriptors as `Area` says.
    pub fn slot(&mut self, request: Area, reply: Area) -> Slot {
        let (request_gpa, request_data, readable) = self.area(request);
        let (reply_gpa, reply_data, writable) = self.area(reply);
        let head = self.chain(&readable, &writable);
        Slot {
            head,
            request: request_gpa,
            request_data,
            request_len: request.len(),
            reply: reply_gpa,
            reply_data,
            reply_len: reply.len(),
        }
    }

    /// Lays out an area: (address of its start, of its data, descriptors).
    fn area(&mut self, area: Area) -> (u64, u64, Vec<(u64, u32)>) {
        let mut pieces = Vec::new();
        let first = self.alloc(u64::from(area.first.max(1)), 64);
        if area.first > 0 {
            pieces.push((first, area.first));
        }
        let data = self.alloc(u64::from(area.rest), u64::from(PAGE));
        let mut at = 0;
        while at < area.rest {
            let n = area.piece.min(area.rest - at);
            pieces.push((data + u64::from(at), n));
            at += n;
        }
        let start = if area.first > 0 { first } else { data };
        (start, data, pieces)
    }

    /// Puts a chain in the avail ring (visible to the device at `kick`).
    pub fn post(&mut self, head: u16) {
        let slot = self.next_avail % QSIZE;
        self.mem
            .store_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), head);
        self.next_avail = self.next_avail.wrapping_add(1);
        self.in_flight += 1;
    }

    /// Publishes the posted chains and kicks the device if it asked to be
    /// (EVENT_IDX) or always (without).
    pub fn kick(&mut self) {
        let old = self.kicked_avail;
        let new = self.next_avail;
        self.kicked_avail = new;
        self.mem.store_u16(AVAIL_GPA + 2, new);
        fence(Ordering::SeqCst);
        let needed = if self.event_idx {
            let event = self.mem.load_u16(AVAIL_EVENT_GPA);
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            true
        };
        if needed {
            self.kicks += 1;
            self.kick.write(1).expect("kick");
        }
    }

    fn used_idx(&self) -> u16 {
        self.mem.load_u16(USED_GPA + 2)
    }

    /// Calls `f(head, len)` for each chain the device returned since the
    /// last call; returns how many.
    pub fn reap(&mut self, mut f: impl FnMut(u16, u32)) -> u16 {
        let used = self.used_idx();
        let n = used.wrapping_sub(self.last_used);
        assert!(
            n <= self.in_flight,
            "device returned more chains than posted"
        );
        for _ in 0..n {
            let elem = USED_GPA + 4 + 8 * u64::from(self.last_used % QSIZE);
            let id = self.mem.load_u32(elem);
            let len = self.mem.load_u32(elem + 4);
            self.last_used = self.last_used.wrapping_add(1);
            f(id as u16, len);
        }
        self.in_flight -= n;
        n
    }

    /// Waits until the device returned at least one chain (asking, with
    /// EVENT_IDX, for an interrupt at the next one).
    pub fn wait(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.used_idx() != self.last_used {
                return;
            }
            if self.event_idx {
                self.mem.store_u16(USED_EVENT_GPA, self.last_used);
                fence(Ordering::SeqCst);
                if self.used_idx() != self.last_used {
                    return;
                }
            }
            let mut pfd = libc::pollfd {
                fd: self.call.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, 1000) };
            if r > 0 {
                let _ = self.call.read();
            }
            assert!(
                Instant::now() < deadline,
                "no chain returned within {TIMEOUT:?} ({} in flight)",
                self.in_flight
            );
        }
    }

    /// Posts one chain and waits for it; returns the used length.
    pub fn roundtrip(&mut self, head: u16) -> u32 {
        assert_eq!(self.in_flight, 0);
        self.post(head);
        self.kick();
        let mut result = None;
        while result.is_none() {
            self.wait();
            self.reap(|h, len| {
                assert_eq!(h, head, "unexpected head returned");
                result = Some(len);
            });
        }
        result.unwrap()
    }
}

/// A 9P client over a `Vmm`, with one general-purpose slot for setup
/// requests (these allocate; the hot paths build messages in place).
pub struct Client {
    pub vmm: Vmm,
    general: Slot,
    next_tag: u16,
}

impl Client {
    pub fn new(mut vmm: Vmm) -> Client {
        let general = vmm.slot(Area::one(64 * 1024), Area::one(64 * 1024));
        Client {
            vmm,
            general,
            next_tag: 1,
        }
    }

    pub fn tag(&mut self) -> u16 {
        let t = self.next_tag;
        self.next_tag = if t >= 0x7fff { 1 } else { t + 1 };
        t
    }

    /// Sends a T-message, returns (reply type, body); panics on Rlerror.
    pub fn call(&mut self, msg: &[u8]) -> (u8, Vec<u8>) {
        let s = self.general;
        self.vmm.write(s.request, msg);
        let len = self.vmm.roundtrip(s.head) as usize;
        let mut reply = vec![0u8; len];
        self.vmm.read(s.reply, &mut reply);
        assert!(len >= 7, "short reply");
        assert_eq!(
            u32::from_le_bytes(reply[0..4].try_into().unwrap()) as usize,
            len
        );
        assert_eq!(reply[5..7], msg[5..7], "reply tag");
        if reply[4] == RLERROR {
            let e = u32::from_le_bytes(reply[7..11].try_into().unwrap());
            panic!(
                "T-message {} failed: {}",
                msg[4],
                std::io::Error::from_raw_os_error(e as i32)
            );
        }
        assert_eq!(reply[4], msg[4] + 1, "reply type");
        (reply[4], reply[7..].to_vec())
    }

    /// Tversion + Tattach of `fid` to the share's root.
    pub fn mount(&mut self, msize: u32, fid: u32) {
        let m = T::new(TVERSION, NOTAG).u32(msize).str("9P2000.L").done();
        let (_, body) = self.call(&m);
        let got = u32::from_le_bytes(body[0..4].try_into().unwrap());
        assert_eq!(got, msize, "msize");
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let tag = self.tag();
        let m = T::new(TATTACH, tag)
            .u32(fid)
            .u32(NOFID)
            .str("root")
            .str("")
            .u32(uid)
            .done();
        self.call(&m);
    }

    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) {
        let tag = self.tag();
        let mut t = T::new(TWALK, tag)
            .u32(fid)
            .u32(newfid)
            .u16(names.len() as u16);
        for n in names {
            t = t.str(n);
        }
        self.call(&t.done());
    }

    pub fn lopen(&mut self, fid: u32, flags: u32) {
        let tag = self.tag();
        self.call(&T::new(TLOPEN, tag).u32(fid).u32(flags).done());
    }
}

/// T-message builder: size[4] type[1] tag[2] ...; `done` fills in the size.
pub struct T(Vec<u8>);

impl T {
    pub fn new(ty: u8, tag: u16) -> T {
        let mut v = vec![0, 0, 0, 0, ty];
        v.extend_from_slice(&tag.to_le_bytes());
        T(v)
    }
    pub fn u16(mut self, v: u16) -> T {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> T {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> T {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn str(self, s: &str) -> T {
        self.u16(s.len() as u16).raw(s.as_bytes())
    }
    pub fn raw(mut self, b: &[u8]) -> T {
        self.0.extend_from_slice(b);
        self
    }
    pub fn done(mut self) -> Vec<u8> {
        let n = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

/// Hot-path messages, built on the stack.
pub fn tread(tag: u16, fid: u32, offset: u64, count: u32) -> [u8; 23] {
    let mut m = [0u8; 23];
    m[0..4].copy_from_slice(&23u32.to_le_bytes());
    m[4] = TREAD;
    m[5..7].copy_from_slice(&tag.to_le_bytes());
    m[7..11].copy_from_slice(&fid.to_le_bytes());
    m[11..19].copy_from_slice(&offset.to_le_bytes());
    m[19..23].copy_from_slice(&count.to_le_bytes());
    m
}

/// The 23 bytes before a Twrite's data (whose size counts `count` bytes
/// of data after them).
pub fn twrite_header(tag: u16, fid: u32, offset: u64, count: u32) -> [u8; 23] {
    let mut m = tread(tag, fid, offset, count);
    m[0..4].copy_from_slice(&(23 + count).to_le_bytes());
    m[4] = TWRITE;
    m
}

pub fn tgetattr(tag: u16, fid: u32, mask: u64) -> [u8; 19] {
    let mut m = [0u8; 19];
    m[0..4].copy_from_slice(&19u32.to_le_bytes());
    m[4] = TGETATTR;
    m[5..7].copy_from_slice(&tag.to_le_bytes());
    m[7..11].copy_from_slice(&fid.to_le_bytes());
    m[11..19].copy_from_slice(&mask.to_le_bytes());
    m
}

pub fn tflush(tag: u16, oldtag: u16) -> [u8; 9] {
    let mut m = [0u8; 9];
    m[0..4].copy_from_slice(&9u32.to_le_bytes());
    m[4] = TFLUSH;
    m[5..7].copy_from_slice(&tag.to_le_bytes());
    m[7..9].copy_from_slice(&oldtag.to_le_bytes());
    m
}

/// The header of a reply in guest memory: (size, type, tag).
pub fn reply_header(vmm: &Vmm, slot: &Slot) -> (u32, u8, u16) {
    let mut h = [0u8; 7];
    vmm.read(slot.reply, &mut h);
    (
        u32::from_le_bytes(h[0..4].try_into().unwrap()),
        h[4],
        u16::from_le_bytes([h[5], h[6]]),
    )
}

/// The daemon binary running as its own process.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `bin` serving `share` (logging warnings only, unless
    /// `extra_args` says otherwise) and waits for its socket.
    pub fn start(bin: &str, share: &Path, extra_args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("socket tempdir");
        let socket = dir.path().join("9p.sock");
        let mut command = Command::new(bin);
        command
            .arg("--socket-path")
            .arg(&socket)
            .arg("--shared-dir")
            .arg(share)
            .args(["--tag", "bench"]);
        if !extra_args.contains(&"--log-level") {
            command.args(["--log-level", "warn"]);
        }
        let child = command
            .args(extra_args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn vhost-user-9p");
        wait_for_socket(&socket);
        Daemon {
            child,
            socket,
            _dir: dir,
        }
    }

    /// VmRSS and its parts (kB) from /proc/PID/status.
    pub fn rss(&self) -> Rss {
        Rss::of(self.child.id())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only the process this started, by its own pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket {}", socket.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Resident memory of a process, in kB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    pub total: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
}

impl Rss {
    pub fn of(pid: u32) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
            shmem: field("RssShmem:"),
        }
    }
}
