//! The test as the VMM: a vhost-user frontend with guest RAM in a memfd
//! (one region or several, handed over with SET_MEM_TABLE or ADD_MEM_REG)
//! and one split virtqueue of 1024 entries that the test drives itself, the
//! way the Linux `virtio_ring` driver does (VIRTIO_RING_F_EVENT_IDX or not,
//! from any ring index).
//!
//! Two ways to put requests on the queue:
//!
//! - Slots (`slot`, `post`, `kick`, `wait`, `reap`, `roundtrip`): chains
//!   built once, each as an indirect table behind one ring descriptor (as
//!   the Linux driver does when it has more than one scatter-gather entry),
//!   re-posted as often as wanted. Once set up, posting, kicking, waiting
//!   and reaping allocate nothing, so a test can count the daemon's
//!   allocations in the same process; kicks follow EVENT_IDX.
//! - Chains (`submit`, `post_chains`, `wait_used`, `collect`): fresh chains
//!   of any shape (split anywhere, direct or indirect, in either RAM
//!   region), every buffer between guard bytes that must be untouched
//!   afterwards, writable ones pre-filled, readable ones checked unchanged;
//!   a batch is one kick, and the device must signal its interrupt.
//!
//! Plus raw access for hostile drivers: ring descriptors written by hand
//! (`ring_descs`, `set_ring_desc`), raw heads and avail indices
//! (`post_raw_head`, `kick_raw`), new memory tables, resets.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{
    VhostUserConfigFlags, VhostUserHeaderFlag, VhostUserProtocolFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo};
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub use super::vring::{enable_vring, GuestRam, RingLayout};

mod chains;
use chains::Scratch;
#[allow(unused_imports)]
pub use chains::{rd, rd0, wr, wr0, Chain, Completed, Place, Posted, Seg};

/// Queue size: the device's advertised maximum.
pub const QSIZE: u16 = 1024;

pub const VIRTIO_9P_MOUNT_TAG: u64 = 1 << 0;
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

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

/// Bytes of guard around every buffer of a chain, checked after it is used.
pub const GUARD: u64 = 32;
pub const GUARD_BYTE: u8 = 0xa5;
/// What a chain's writable buffers hold before the device writes them.
pub const FRESH_BYTE: u8 = 0xee;

/// How long a wait for the device may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// How the guest RAM is handed to the daemon.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemSetup {
    /// One VHOST_USER_SET_MEM_TABLE with every region.
    SetMemTable,
    /// One VHOST_USER_ADD_MEM_REG per region (what QEMU does once
    /// CONFIGURE_MEM_SLOTS is acked).
    AddMemRegions,
}

/// How the VMM brings the device up.
#[derive(Clone, Debug)]
pub struct VmmOpts {
    /// Guest RAM (guest address, size), each region its own mapping of one
    /// memfd, at consecutive offsets of it. The first must start at 0: it
    /// holds the rings, and the heap runs to the end of the RAM contiguous
    /// with it.
    pub regions: Vec<(u64, u64)>,
    pub mem: MemSetup,
    /// Initial ring index (SET_VRING_BASE); near 65535 to test wrap-around.
    pub ring_base: u16,
    /// Acknowledge VIRTIO_RING_F_EVENT_IDX.
    pub event_idx: bool,
}

impl VmmOpts {
    /// `size` bytes of RAM at 0.
    pub fn ram(size: u64) -> VmmOpts {
        VmmOpts {
            regions: vec![(0, size)],
            mem: MemSetup::SetMemTable,
            ring_base: 0,
            event_idx: true,
        }
    }

    /// Two regions of one memfd: 4 MiB at 0 (the rings, indirect tables and
    /// the buffers chains place low) and 8 MiB above 4 GiB, at a non-zero
    /// offset of the memfd (the other buffers).
    pub fn two_regions() -> VmmOpts {
        VmmOpts {
            regions: vec![(0, 4 << 20), (HIGH_GPA, 8 << 20)],
            ..VmmOpts::ram(0)
        }
    }
}

/// Where `VmmOpts::two_regions` puts its second region.
pub const HIGH_GPA: u64 = 0x1_0000_0000;

/// A buffer area of a slot: a first descriptor of `first` bytes (none if
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
    /// Virtio features offered by the device.
    pub device_features: u64,
    /// Virtio features acknowledged.
    pub acked_features: u64,
    pub protocol_features: VhostUserProtocolFeatures,
    /// GET_QUEUE_NUM's answer.
    pub queue_num: u64,
    pub event_idx: bool,
    next_avail: u16,
    /// Avail index at the last kick decision.
    kicked_avail: u16,
    last_used: u16,
    heap: u64,
    next_desc: u16,
    scratch: Option<Scratch>,
    /// Chains posted and not yet reaped.
    pub in_flight: u16,
    /// Kicks actually sent (EVENT_IDX suppresses the others).
    pub kicks: u64,
    /// Kicks the device asked for (its avail_event), of those `submit`
    /// sends regardless.
    pub kicks_asked: u64,
}

/// What the device offered and what was acknowledged.
struct Negotiated {
    device: u64,
    acked: u64,
    protocol: VhostUserProtocolFeatures,
    queue_num: u64,
}

impl Vmm {
    /// Connects to a vhost-user-9p socket and brings queue 0 up the way
    /// QEMU does, with `mem_size` bytes of guest RAM.
    pub fn connect(socket: &Path, mem_size: u64, event_idx: bool) -> Vmm {
        Vmm::connect_with(
            socket,
            VmmOpts {
                event_idx,
                ..VmmOpts::ram(mem_size)
            },
        )
    }

    /// The same with guest RAM in `regions` (guest address, size), each
    /// its own mapping of one memfd (adjacent ones as one RAM to the
    /// guest, like QEMU's DIMMs).
    pub fn connect_regions(socket: &Path, regions: &[(u64, u64)], event_idx: bool) -> Vmm {
        Vmm::connect_with(
            socket,
            VmmOpts {
                regions: regions.to_vec(),
                event_idx,
                ..VmmOpts::ram(0)
            },
        )
    }

    /// Connects and brings the device up the way QEMU does, with queue 0
    /// enabled, as `opts` says.
    pub fn connect_with(socket: &Path, opts: VmmOpts) -> Vmm {
        let regions = &opts.regions;
        assert_eq!(regions.first().map(|r| r.0), Some(0), "RAM must start at 0");
        let mut frontend = Frontend::connect(socket, 1).expect("connect to the daemon socket");
        frontend.set_owner().expect("SET_OWNER");
        let n = negotiate(&mut frontend, opts.event_idx);
        let mem = guest_ram(regions);
        match opts.mem {
            MemSetup::SetMemTable => set_mem_table(&frontend, &mem),
            MemSetup::AddMemRegions => {
                for region in mem.iter() {
                    let info =
                        VhostUserMemoryRegionInfo::from_guest_region(region).expect("region info");
                    frontend.add_mem_region(&info).expect("ADD_MEM_REG");
                }
            }
        }
        let mut mem_size = 0;
        for &(gpa, size) in regions {
            if gpa == mem_size {
                mem_size += size;
            }
        }
        let base = opts.ring_base;
        let vmm = Vmm {
            frontend,
            mem,
            mem_size,
            kick: EventFd::new(EFD_NONBLOCK).expect("kick eventfd"),
            call: EventFd::new(EFD_NONBLOCK).expect("call eventfd"),
            device_features: n.device,
            acked_features: n.acked,
            protocol_features: n.protocol,
            queue_num: n.queue_num,
            event_idx: n.acked & VIRTIO_RING_F_EVENT_IDX != 0,
            next_avail: base,
            kicked_avail: base,
            last_used: base,
            heap: HEAP_GPA,
            next_desc: 0,
            scratch: None,
            in_flight: 0,
            kicks: 0,
            kicks_asked: 0,
        };
        // The driver owns the avail ring, the device the used ring; a
        // restored ring starts both indices at the base (the backend reads
        // used->idx at SET_VRING_ADDR).
        vmm.mem.store_u16(AVAIL_GPA, 0);
        vmm.mem.store_u16(AVAIL_GPA + 2, base);
        vmm.mem.store_u16(USED_GPA, 0);
        vmm.mem.store_u16(USED_GPA + 2, base);
        vmm.enable_vring(base);
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

    /// GET_CONFIG of `size` bytes at `offset`.
    pub fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let buf = vec![0u8; size as usize];
        let (_, data) = self
            .frontend
            .clone()
            .get_config(offset, size, VhostUserConfigFlags::empty(), &buf)
            .expect("GET_CONFIG");
        data
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
        let n = negotiate(&mut self.frontend, self.event_idx);
        assert_eq!(
            n.acked & VIRTIO_RING_F_EVENT_IDX != 0,
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

    /// `len` bytes of guest memory at `gpa`.
    pub fn read_vec(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.read(gpa, &mut v);
        v
    }

    /// Guest memory for buffers, `align`-aligned.
    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        assert!(
            self.scratch.is_none(),
            "slots and buffers are laid out before the first chain"
        );
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
        let head = self.ring_descs(1);
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
        assert!(
            self.scratch.is_none(),
            "ring descriptors are reserved before the first chain"
        );
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
        if self.kick_asked(old, new) {
            self.kicks += 1;
            self.kick.write(1).expect("kick");
        }
    }

    /// Whether the device asked for a kick once the avail index moved from
    /// `old` to `new`: always without EVENT_IDX, else when its avail_event
    /// lies in between.
    fn kick_asked(&self, old: u16, new: u16) -> bool {
        if !self.event_idx {
            return true;
        }
        let event = self.mem.load_u16(AVAIL_EVENT_GPA);
        new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
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
            if self.wait_call(left) {
                continue;
            }
        }
    }

    /// Waits at most `timeout` (and 1 s) for the call eventfd; whether it
    /// fired (then it is read).
    fn wait_call(&self, timeout: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.call.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 && pfd.revents & libc::POLLIN != 0 {
            let _ = self.call.read();
            return true;
        }
        false
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

/// SET_FEATURES and SET_PROTOCOL_FEATURES as QEMU sends them.
fn negotiate(frontend: &mut Frontend, event_idx: bool) -> Negotiated {
    let device = frontend.get_features().expect("GET_FEATURES");
    let mut wanted = VIRTIO_F_VERSION_1
        | VIRTIO_RING_F_INDIRECT_DESC
        | VIRTIO_9P_MOUNT_TAG
        | VHOST_USER_F_PROTOCOL_FEATURES;
    if event_idx {
        wanted |= VIRTIO_RING_F_EVENT_IDX;
    }
    let acked = device & wanted;
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
        // Every following message is acknowledged: when a call returns, the
        // daemon has applied it (so the first kick cannot overtake
        // SET_VRING_ENABLE).
        frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
    }
    let queue_num = if protocol.contains(VhostUserProtocolFeatures::MQ) {
        frontend.get_queue_num().expect("GET_QUEUE_NUM")
    } else {
        0
    };
    Negotiated {
        device,
        acked,
        protocol,
        queue_num,
    }
}

/// Guest RAM in one memfd: `regions` (guest address, size) mapped from
/// consecutive offsets of it.
pub fn guest_ram(regions: &[(u64, u64)]) -> GuestMemoryMmap<()> {
    let memfd = nix::sys::memfd::memfd_create(
        "vhost-user-9p-test-ram",
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
