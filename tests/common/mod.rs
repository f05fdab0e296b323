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

pub mod inotify;
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
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub use vring::{enable_vring, GuestRam, RingLayout};

pub const QSIZE: u16 = 1024;

const VIRTIO_9P_MOUNT_TAG: u64 = 1 << 0;
const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;

pub const VRING_DESC_F_NEXT: u16 = 1;
pub const VRING_DESC_F_WRITE: u16 = 2;
pub const VRING_DESC_F_INDIRECT: u16 = 4;

// Guest physical layout: the rings at the bottom, then a bump heap.
pub const DESC_GPA: u64 = 0; // 1024 * 16 bytes
pub const AVAIL_GPA: u64 = 0x4000; // 4 + 2 * 1024 + 2 bytes
pub const USED_GPA: u64 = 0x5000; // 4 + 8 * 1024 + 2 bytes
const HEAP_GPA: u64 = 0x8000;
/// Where the avail ring ends (`used_event` included): the driver's part.
pub const AVAIL_END: u64 = AVAIL_GPA + 4 + 2 * QSIZE as u64 + 2;
/// Where the used ring ends (`avail_event` included): the device's part.
pub const USED_END: u64 = USED_GPA + 4 + 8 * QSIZE as u64 + 2;
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
        Self::connect_regions(socket, &[(0, mem_size)], event_idx)
    }

    /// The same with guest RAM in `regions` (guest address, size), each
    /// its own mapping of one memfd (adjacent ones as one RAM to the
    /// guest, like QEMU's DIMMs). The first must start at 0: it holds the
    /// rings, and the heap runs to the end of the RAM contiguous with it.
    pub fn connect_regions(socket: &Path, regions: &[(u64, u64)], event_idx: bool) -> Vmm {
        assert_eq!(regions.first().map(|r| r.0), Some(0), "RAM must start at 0");
        let mut frontend = Frontend::connect(socket, 1).expect("connect to the daemon socket");
        frontend.set_owner().expect("SET_OWNER");
        let acked = negotiate(&mut frontend, event_idx);
        let mem = guest_ram(regions);
        set_mem_table(&frontend, &mem);
        let mut mem_size = 0;
        for &(gpa, size) in regions {
            if gpa == mem_size {
                mem_size += size;
            }
        }

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
        vmm.enable_vring(0);
        vmm
    }

    fn enable_vring(&self, base: u16) {
        enable_vring(
            &self.frontend,
            &self.mem,
            &RingLayout {
                size: QSIZE,
                desc: DESC_GPA,
                avail: AVAIL_GPA,
                used: USED_GPA,
            },
            base,
            &self.call,
            &self.kick,
        );
    }

    /// The vhost-user connection, for messages the helpers here do not send.
    pub fn frontend(&self) -> &Frontend {
        &self.frontend
    }

    /// End of the guest RAM contiguous with address 0.
    pub fn mem_size(&self) -> u64 {
        self.mem_size
    }

    /// Hands the daemon a new memory table (SET_MEM_TABLE) and uses `mem`
    /// from now on; returns the previous mapping.
    pub fn set_memory(&mut self, mem: GuestMemoryMmap<()>) -> GuestMemoryMmap<()> {
        set_mem_table(&self.frontend, &mem);
        std::mem::replace(&mut self.mem, mem)
    }

    /// After RESET_OWNER: SET_OWNER, the features and the memory table
    /// again, as a VMM restarting the device does (then `restart_vring`).
    pub fn renegotiate(&mut self) {
        self.frontend.set_owner().expect("SET_OWNER");
        let acked = negotiate(&mut self.frontend, self.event_idx);
        assert_eq!(
            acked & VIRTIO_RING_F_EVENT_IDX != 0,
            self.event_idx,
            "EVENT_IDX no longer offered"
        );
        set_mem_table(&self.frontend, &self.mem);
    }

    /// Hands queue 0 to the daemon again after GET_VRING_BASE stopped it
    /// at `base`, as where the device goes on popping. Chains popped
    /// before the stop and never returned are forgotten: call `reap`
    /// first, so that what is still in flight is only what is posted and
    /// not popped.
    pub fn restart_vring(&mut self, base: u16) {
        self.in_flight =
            self.next_avail.wrapping_sub(base) + self.used_idx().wrapping_sub(self.last_used);
        self.kicked_avail = self.next_avail;
        self.enable_vring(base);
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

    /// Reserves `n` consecutive ring descriptors for hand-made chains;
    /// returns the first index.
    pub fn ring_descs(&mut self, n: u16) -> u16 {
        assert!(self.next_desc + n <= QSIZE, "out of ring descriptors");
        let first = self.next_desc;
        self.next_desc += n;
        first
    }

    /// Writes ring descriptor `index`.
    pub fn set_ring_desc(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.mem
            .write_desc(DESC_GPA + 16 * u64::from(index), addr, len, flags, next);
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

    /// The avail ring's index once the posted chains are published.
    pub fn avail_idx(&self) -> u16 {
        self.next_avail
    }

    /// Publishes `idx` as the avail ring's index, whatever was posted, and
    /// kicks (a broken or hostile driver).
    pub fn kick_raw(&mut self, idx: u16) {
        self.mem.store_u16(AVAIL_GPA + 2, idx);
        fence(Ordering::SeqCst);
        self.kicks += 1;
        self.kick.write(1).expect("kick");
    }

    /// Whether a kick is still unread by the device.
    pub fn kick_pending(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.kick.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
    }

    /// The used ring's index, as the device last published it.
    pub fn used_idx(&self) -> u16 {
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
        assert!(
            self.wait_timeout(TIMEOUT),
            "no chain returned within {TIMEOUT:?} ({} in flight)",
            self.in_flight
        );
    }

    /// The same, for at most `timeout`; whether a chain came back.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.used_idx() != self.last_used {
                return true;
            }
            if self.event_idx {
                self.mem.store_u16(USED_EVENT_GPA, self.last_used);
                fence(Ordering::SeqCst);
                if self.used_idx() != self.last_used {
                    return true;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut pfd = libc::pollfd {
                fd: self.call.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                let _ = self.call.read();
            }
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

/// SET_FEATURES and SET_PROTOCOL_FEATURES as QEMU sends them; returns
/// the virtio features acknowledged.
fn negotiate(frontend: &mut Frontend, event_idx: bool) -> u64 {
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
    acked
}

/// Guest RAM in one memfd: `regions` (guest address, size) mapped from
/// consecutive offsets of it.
pub fn guest_ram(regions: &[(u64, u64)]) -> GuestMemoryMmap<()> {
    let memfd = nix::sys::memfd::memfd_create(
        "vhost-user-9p-bench-ram",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .expect("memfd_create");
    let file = File::from(memfd);
    file.set_len(regions.iter().map(|r| r.1).sum())
        .expect("size memfd");
    let mut offset = 0;
    let ranges: Vec<_> = regions
        .iter()
        .map(|&(gpa, size)| {
            let f = FileOffset::new(file.try_clone().expect("dup memfd"), offset);
            offset += size;
            (GuestAddress(gpa), size as usize, Some(f))
        })
        .collect();
    GuestMemoryMmap::<()>::from_ranges_with_files(ranges).expect("map guest memory")
}

/// A new mapping of the regions of `mem` that `keep` selects, from the same
/// files: the same guest RAM at new host addresses (as after a VMM re-maps
/// or hot-unplugs memory).
pub fn remap(mem: &GuestMemoryMmap<()>, keep: impl Fn(u64) -> bool) -> GuestMemoryMmap<()> {
    let ranges: Vec<_> = mem
        .iter()
        .filter(|r| keep(r.start_addr().0))
        .map(|r| {
            let f = r.file_offset().expect("a file-backed region");
            let file = f.file().try_clone().expect("dup memfd");
            (
                r.start_addr(),
                r.len() as usize,
                Some(FileOffset::new(file, f.start())),
            )
        })
        .collect();
    GuestMemoryMmap::<()>::from_ranges_with_files(ranges).expect("map guest memory")
}

fn set_mem_table(frontend: &Frontend, mem: &GuestMemoryMmap<()>) {
    let regions: Vec<VhostUserMemoryRegionInfo> = mem
        .iter()
        .map(|r| VhostUserMemoryRegionInfo::from_guest_region(r).expect("region info"))
        .collect();
    frontend.set_mem_table(&regions).expect("SET_MEM_TABLE");
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

/// A write lease on a host file: opening it elsewhere (the daemon's
/// Tlopen) blocks until the lease is dropped, so a request can be held up
/// on the host for as long as a test wants.
pub struct Lease(File);

impl Lease {
    pub fn take(path: &Path) -> Lease {
        // The lease break is announced with SIGIO, which would end the test.
        // SAFETY: ignoring a signal has no preconditions.
        unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
        let file = File::options().read(true).write(true).open(path).unwrap();
        // SAFETY: plain fcntl on a descriptor we own.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
        assert_eq!(r, 0, "F_SETLEASE: {}", std::io::Error::last_os_error());
        Lease(file)
    }

    /// Whether someone is waiting for the lease (its break has begun).
    pub fn contended(&self) -> bool {
        // SAFETY: plain fcntl on a descriptor we own.
        let r = unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_GETLEASE) };
        r != libc::F_WRLCK
    }

    /// Waits until someone waits for the lease.
    pub fn wait_contended(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.contended() {
            assert!(Instant::now() < deadline, "nobody opened the leased file");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    }
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

    /// Waits (at most `timeout`) for the daemon to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// VmRSS and its parts (kB) from /proc/PID/status.
    pub fn rss(&self) -> Rss {
        Rss::of(self.serving_pid())
    }

    /// The process that serves (see [`serving_pid`]).
    pub fn serving_pid(&self) -> u32 {
        serving_pid(self.child.id())
    }
}

/// The process of the daemon `pid` that serves: with `--sandbox
/// namespace` (the default) the child it forks into its namespaces
/// (waited for), else the daemon itself.
pub fn serving_pid(pid: u32) -> u32 {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the daemon's cmdline");
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let sandbox = args
        .windows(2)
        .rev()
        .find(|w| w[0] == b"--sandbox")
        .map_or(&b"namespace"[..], |w| w[1]);
    if sandbox != b"namespace" {
        return pid;
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("the daemon's children");
        if let Some(child) = children.split_whitespace().next() {
            return child.parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "daemon {pid} forked no serving process"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stops a daemon the test started: SIGTERM, which it passes on to the
/// child serving in its namespaces and exits only once that one has (so
/// its sockets are free when this returns); SIGKILL if it has not exited
/// within 10 s.
pub fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill(2) of the process this test started, by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let _ = child.wait();
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
