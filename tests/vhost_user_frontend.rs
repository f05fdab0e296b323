//! End-to-end tests of the `vhost-user-9p` daemon, with the test playing the VMM.
//!
//! Each test starts the real daemon binary on a private socket and share directory,
//! connects to it as a vhost-user frontend (like QEMU would), hands it guest memory
//! backed by a memfd, sets up one split virtqueue in that memory and then drives
//! 9P2000.L requests through the queue, the way the Linux `9pnet_virtio` driver does.
//!
//! The 9P encoder/decoder here is deliberately independent of the crate's own codec:
//! it is the oracle the daemon is checked against.

mod common;

use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vhost::vhost_user::message::{
    VhostUserConfigFlags, VhostUserHeaderFlag, VhostUserProtocolFeatures, VhostUserVirtioFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use common::{enable_vring, GuestRam, RingLayout, T};

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_vhost-user-9p");

/// How long any single wait on the daemon may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(10);

const VIRTIO_9P_MOUNT_TAG: u64 = 1 << 0;
const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;

const VRING_DESC_F_NEXT: u16 = 1;
const VRING_DESC_F_WRITE: u16 = 2;
const VRING_DESC_F_INDIRECT: u16 = 4;

/// Queue size used by every test: the device's advertised maximum.
const QSIZE: u16 = 1024;

// Guest physical memory: two regions backed by one memfd.
// RAM0 holds the rings, indirect tables and some data buffers; RAM1 (above 4 GiB, at a
// non-zero memfd offset) holds most data buffers.
const RAM0_GPA: u64 = 0;
const RAM0_SIZE: u64 = 4 << 20;
const RAM1_GPA: u64 = 0x1_0000_0000;
const RAM1_SIZE: u64 = 8 << 20;

const DESC_GPA: u64 = 0x1000; // 1024 * 16 bytes
const AVAIL_GPA: u64 = 0x6000; // 4 + 2 * 1024 + 2 bytes
const USED_GPA: u64 = 0x7000; // 4 + 8 * 1024 + 2 bytes
const INDIRECT_GPA: u64 = 0x1_0000;
const INDIRECT_END: u64 = 0x4_0000;
const SCRATCH0_GPA: u64 = 0x4_0000;

/// Bytes of canary around every data buffer, checked after each request.
const GUARD: u64 = 32;
const GUARD_BYTE: u8 = 0xa5;
const FRESH_BYTE: u8 = 0xee;

// 9P2000.L message types.
const RLERROR: u8 = 7;
const TLOPEN: u8 = 12;
const TLCREATE: u8 = 14;
const TGETATTR: u8 = 24;
const TREADDIR: u8 = 40;
const TMKDIR: u8 = 72;
const TUNLINKAT: u8 = 76;
const TVERSION: u8 = 100;
const TATTACH: u8 = 104;
const TWALK: u8 = 110;
const TREAD: u8 = 116;
const TWRITE: u8 = 118;
const TCLUNK: u8 = 120;

const NOTAG: u16 = 0xffff;
const NOFID: u32 = 0xffff_ffff;
const P9_GETATTR_BASIC: u64 = 0x7ff;
const P9_GETATTR_ALL: u64 = 0x3fff;
const AT_REMOVEDIR: u32 = 0x200;
const QTDIR: u8 = 0x80;
const QTFILE: u8 = 0;

// Linux open flags as used on the wire by 9P2000.L (x86 values).
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_DIRECTORY: u32 = 0o200000;

const MSIZE: u32 = 512_000;
/// Writable space offered for ordinary replies (like a client with a small msize).
const REPLY_CAP: u32 = 8192;

// ---------------------------------------------------------------------------------------------
// The daemon process
// ---------------------------------------------------------------------------------------------

/// A running `vhost-user-9p` process, its socket and its log.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    exited: Option<ExitStatus>,
    _dir: TempDir,
}

impl Daemon {
    /// Start the daemon serving `share` under `tag` and wait (bounded) for its socket.
    fn start(share: &Path, tag: &str, extra_args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("socket tempdir");
        let socket = dir.path().join("9p.sock");
        let log = dir.path().join("daemon.log");
        let log_file = File::create(&log).expect("create daemon log");
        let child = Command::new(BIN)
            .arg("--socket-path")
            .arg(&socket)
            .arg("--shared-dir")
            .arg(share)
            .arg("--tag")
            .arg(tag)
            .args(["--log-level", "debug"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log fd"))
            .stderr(log_file)
            .spawn()
            .expect("spawn vhost-user-9p");
        let mut daemon = Daemon {
            child,
            socket,
            log,
            exited: None,
            _dir: dir,
        };
        daemon.wait_for_socket();
        daemon
    }

    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(meta) = fs::metadata(&self.socket) {
                if meta.file_type().is_socket() {
                    return;
                }
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "daemon exited ({status}) before creating its socket; log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not create {} within {TIMEOUT:?}; log:\n{}",
                self.socket.display(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait on daemon");
        }
        self.exited
    }

    /// Wait for the process to exit by itself, at most `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            // Only the process this test started, by its own pid.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- vhost-user-9p log ({}) ----\n{}\n---- end of log ----",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// A fresh share directory plus a daemon serving it.
fn start(tag: &str, extra_args: &[&str]) -> (TempDir, Daemon) {
    let share = tempfile::tempdir().expect("share tempdir");
    let daemon = Daemon::start(share.path(), tag, extra_args);
    (share, daemon)
}

// ---------------------------------------------------------------------------------------------
// The VMM: vhost-user frontend, guest memory, one split virtqueue
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MemSetup {
    /// One VHOST_USER_SET_MEM_TABLE with both regions.
    SetMemTable,
    /// One VHOST_USER_ADD_MEM_REG per region (what QEMU does once CONFIGURE_MEM_SLOTS is acked).
    AddMemRegions,
}

#[derive(Clone, Copy, Debug)]
struct VmmOpts {
    mem: MemSetup,
    /// Initial ring index (SET_VRING_BASE); near 65535 to test index wrap-around.
    ring_base: u16,
    /// Acknowledge VIRTIO_RING_F_EVENT_IDX.
    event_idx: bool,
}

impl Default for VmmOpts {
    fn default() -> Self {
        VmmOpts {
            mem: MemSetup::SetMemTable,
            ring_base: 0,
            event_idx: true,
        }
    }
}

/// One piece of a descriptor chain.
#[derive(Clone, Debug)]
enum Seg {
    /// Device-readable buffer with this content, in RAM0 (`true`) or RAM1.
    R(Vec<u8>, bool),
    /// Device-writable buffer of this size, in RAM0 (`true`) or RAM1.
    W(u32, bool),
}

fn rd(data: &[u8]) -> Seg {
    Seg::R(data.to_vec(), false)
}
fn rd0(data: &[u8]) -> Seg {
    Seg::R(data.to_vec(), true)
}
fn wr(len: u32) -> Seg {
    Seg::W(len, false)
}
fn wr0(len: u32) -> Seg {
    Seg::W(len, true)
}

#[derive(Clone, Debug)]
struct Chain {
    segs: Vec<Seg>,
    indirect: bool,
}

impl Chain {
    fn direct(segs: Vec<Seg>) -> Chain {
        Chain {
            segs,
            indirect: false,
        }
    }
    fn indirect(segs: Vec<Seg>) -> Chain {
        Chain {
            segs,
            indirect: true,
        }
    }
    /// Readable pieces from `readable`, writable pieces of `writable_sizes`, all in RAM1.
    fn simple(readable: &[&[u8]], writable_sizes: &[u32]) -> Chain {
        let mut segs: Vec<Seg> = readable.iter().map(|r| rd(r)).collect();
        segs.extend(writable_sizes.iter().map(|&w| wr(w)));
        Chain::direct(segs)
    }
}

/// Bookkeeping for a chain that has been made available to the device.
struct Posted {
    head: u16,
    writable: Vec<(GuestAddress, u32)>,
    readable: Vec<(GuestAddress, Vec<u8>)>,
    guards: Vec<GuestAddress>,
}

/// A chain the device put in the used ring.
#[derive(Debug)]
struct Completed {
    /// `len` of the used element.
    len: u32,
    /// The first `len` bytes of the writable buffers, concatenated.
    reply: Vec<u8>,
}

#[derive(Default)]
struct Alloc {
    ram0: u64,
    ram1: u64,
    indirect: u64,
    desc: u16,
}

struct Vmm {
    frontend: Frontend,
    mem: GuestMemoryMmap<()>,
    kick: EventFd,
    call: EventFd,
    /// Virtio features offered by the device.
    device_features: u64,
    /// Virtio features acknowledged by us.
    acked_features: u64,
    protocol_features: VhostUserProtocolFeatures,
    queue_num: u64,
    event_idx: bool,
    next_avail: Cell<u16>,
    last_used: Cell<u16>,
    alloc: RefCell<Alloc>,
    next_tag: Cell<u16>,
}

impl Vmm {
    fn connect(socket: &Path) -> Vmm {
        Self::connect_with(socket, VmmOpts::default())
    }

    /// Connect and bring the device up the way QEMU does, with queue 0 enabled.
    fn connect_with(socket: &Path, opts: VmmOpts) -> Vmm {
        let mut frontend = Frontend::connect(socket, 1).expect("connect to the daemon socket");
        frontend.set_owner().expect("SET_OWNER");

        let device_features = frontend.get_features().expect("GET_FEATURES");
        let mut wanted = VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_9P_MOUNT_TAG
            | VHOST_USER_F_PROTOCOL_FEATURES;
        if opts.event_idx {
            wanted |= VIRTIO_RING_F_EVENT_IDX;
        }
        let acked_features = device_features & wanted;
        frontend.set_features(acked_features).expect("SET_FEATURES");

        let offered = frontend
            .get_protocol_features()
            .expect("GET_PROTOCOL_FEATURES");
        let protocol_features = offered
            & (VhostUserProtocolFeatures::CONFIG
                | VhostUserProtocolFeatures::MQ
                | VhostUserProtocolFeatures::REPLY_ACK
                | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS);
        frontend
            .set_protocol_features(protocol_features)
            .expect("SET_PROTOCOL_FEATURES");
        if protocol_features.contains(VhostUserProtocolFeatures::REPLY_ACK) {
            // Every following message is acknowledged: when a call returns, the daemon has
            // applied it (so the first kick cannot overtake SET_VRING_ENABLE).
            frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        }
        let queue_num = if protocol_features.contains(VhostUserProtocolFeatures::MQ) {
            frontend.get_queue_num().expect("GET_QUEUE_NUM")
        } else {
            0
        };

        // Guest RAM: one memfd, two regions, the second one at a non-zero file offset.
        let memfd = nix::sys::memfd::memfd_create(
            "vhost-user-9p-test-ram",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .expect("memfd_create");
        let file = File::from(memfd);
        file.set_len(RAM0_SIZE + RAM1_SIZE).expect("size memfd");
        let file1 = file.try_clone().expect("dup memfd");
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([
            (
                GuestAddress(RAM0_GPA),
                RAM0_SIZE as usize,
                Some(FileOffset::new(file, 0)),
            ),
            (
                GuestAddress(RAM1_GPA),
                RAM1_SIZE as usize,
                Some(FileOffset::new(file1, RAM0_SIZE)),
            ),
        ])
        .expect("map guest memory");
        let regions: Vec<VhostUserMemoryRegionInfo> = mem
            .iter()
            .map(|r| VhostUserMemoryRegionInfo::from_guest_region(r).expect("region info"))
            .collect();
        match opts.mem {
            MemSetup::SetMemTable => {
                frontend.set_mem_table(&regions).expect("SET_MEM_TABLE");
            }
            MemSetup::AddMemRegions => {
                for region in &regions {
                    frontend.add_mem_region(region).expect("ADD_MEM_REG");
                }
            }
        }

        let kick = EventFd::new(EFD_NONBLOCK).expect("kick eventfd");
        let call = EventFd::new(EFD_NONBLOCK).expect("call eventfd");

        let vmm = Vmm {
            frontend,
            mem,
            kick,
            call,
            device_features,
            acked_features,
            protocol_features,
            queue_num,
            event_idx: acked_features & VIRTIO_RING_F_EVENT_IDX != 0,
            next_avail: Cell::new(opts.ring_base),
            last_used: Cell::new(opts.ring_base),
            alloc: RefCell::new(Alloc::default()),
            next_tag: Cell::new(1),
        };

        // The driver owns the avail ring, the device the used ring; a restored ring starts
        // both indices at the base (the backend reads used->idx at SET_VRING_ADDR).
        vmm.mem.store_u16(AVAIL_GPA, 0);
        vmm.mem.store_u16(AVAIL_GPA + 2, opts.ring_base);
        vmm.mem.store_u16(USED_GPA, 0);
        vmm.mem.store_u16(USED_GPA + 2, opts.ring_base);

        enable_vring(
            &vmm.frontend,
            &vmm.mem,
            &RingLayout {
                size: QSIZE,
                desc: DESC_GPA,
                avail: AVAIL_GPA,
                used: USED_GPA,
            },
            opts.ring_base,
            &vmm.call,
            &vmm.kick,
        );
        vmm
    }

    fn write(&self, gpa: u64, data: &[u8]) {
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .expect("write guest memory");
    }

    fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem
            .read_slice(&mut v, GuestAddress(gpa))
            .expect("read guest memory");
        v
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let buf = vec![0u8; size as usize];
        let (_, data) = self
            .frontend
            .clone()
            .get_config(offset, size, VhostUserConfigFlags::empty(), &buf)
            .expect("GET_CONFIG");
        data
    }

    /// Place a data buffer (with canaries on both sides) in RAM0 or RAM1.
    fn alloc_buf(&self, len: u32, in_ram0: bool, guards: &mut Vec<GuestAddress>) -> u64 {
        let mut a = self.alloc.borrow_mut();
        let (base, end, next) = if in_ram0 {
            (SCRATCH0_GPA, RAM0_SIZE, &mut a.ram0)
        } else {
            (RAM1_GPA, RAM1_GPA + RAM1_SIZE, &mut a.ram1)
        };
        let start = base + *next;
        let buf = start + GUARD;
        let after = buf + u64::from(len);
        assert!(after + GUARD <= end, "test ran out of guest buffer space");
        *next += 2 * GUARD + u64::from(len);
        drop(a);
        let guard = [GUARD_BYTE; GUARD as usize];
        self.write(start, &guard);
        self.write(after, &guard);
        guards.push(GuestAddress(start));
        guards.push(GuestAddress(after));
        buf
    }

    /// Write chains into the descriptor table and avail ring, then kick once.
    fn post(&self, chains: &[Chain]) -> Vec<Posted> {
        let desc = self.alloc.borrow().desc;
        *self.alloc.borrow_mut() = Alloc {
            desc,
            ..Alloc::default()
        };
        let mut posted = Vec::new();
        for chain in chains {
            assert!(!chain.segs.is_empty());
            let mut p = Posted {
                head: 0,
                writable: Vec::new(),
                readable: Vec::new(),
                guards: Vec::new(),
            };
            // (addr, len, flags) of every buffer in chain order.
            let mut bufs = Vec::new();
            for seg in &chain.segs {
                match seg {
                    Seg::R(data, ram0) => {
                        let a = self.alloc_buf(data.len() as u32, *ram0, &mut p.guards);
                        self.write(a, data);
                        p.readable.push((GuestAddress(a), data.clone()));
                        bufs.push((a, data.len() as u32, 0));
                    }
                    Seg::W(len, ram0) => {
                        let a = self.alloc_buf(*len, *ram0, &mut p.guards);
                        self.write(a, &vec![FRESH_BYTE; *len as usize]);
                        p.writable.push((GuestAddress(a), *len));
                        bufs.push((a, *len, VRING_DESC_F_WRITE));
                    }
                }
            }
            let n = bufs.len() as u16;
            if chain.indirect {
                // One descriptor in the ring pointing at a table; the table is linked 0,1,2...
                let table = {
                    let mut a = self.alloc.borrow_mut();
                    let t = INDIRECT_GPA + a.indirect;
                    a.indirect += (u64::from(n) * 16).next_multiple_of(64);
                    assert!(INDIRECT_GPA + a.indirect <= INDIRECT_END);
                    t
                };
                for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
                    let last = i + 1 == bufs.len();
                    let f = if last {
                        flags
                    } else {
                        flags | VRING_DESC_F_NEXT
                    };
                    let next = if last { 0 } else { i as u16 + 1 };
                    self.mem
                        .write_desc(table + 16 * i as u64, addr, len, f, next);
                }
                let head = self.alloc_descs(1);
                self.mem.write_desc(
                    DESC_GPA + 16 * u64::from(head),
                    table,
                    u32::from(n) * 16,
                    VRING_DESC_F_INDIRECT,
                    0,
                );
                p.head = head;
            } else {
                // Chain laid out backwards through the table: the device must follow `next`.
                let first = self.alloc_descs(n);
                let index = |i: usize| first + n - 1 - i as u16;
                for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
                    let last = i + 1 == bufs.len();
                    let f = if last {
                        flags
                    } else {
                        flags | VRING_DESC_F_NEXT
                    };
                    let next = if last { 0 } else { index(i + 1) };
                    self.mem
                        .write_desc(DESC_GPA + 16 * u64::from(index(i)), addr, len, f, next);
                }
                p.head = index(0);
            }
            let slot = self.next_avail.get() % QSIZE;
            self.mem
                .store_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), p.head);
            self.next_avail.set(self.next_avail.get().wrapping_add(1));
            posted.push(p);
        }
        if self.event_idx {
            // used_event: ask for an interrupt once the last of these chains is used.
            let target = self.last_used.get().wrapping_add(posted.len() as u16);
            self.mem
                .store_u16(AVAIL_GPA + 4 + 2 * u64::from(QSIZE), target.wrapping_sub(1));
        }
        // Publish (release store orders the ring writes before the index).
        self.mem.store_u16(AVAIL_GPA + 2, self.next_avail.get());
        // Forget stale interrupts, then kick.
        let _ = self.call.read();
        self.kick.write(1).expect("kick");
        posted
    }

    fn alloc_descs(&self, n: u16) -> u16 {
        let mut a = self.alloc.borrow_mut();
        if a.desc + n > QSIZE {
            a.desc = 0;
        }
        let first = a.desc;
        a.desc += n;
        first
    }

    /// Wait for the call eventfd; true once it fired.
    fn wait_call(&self, deadline: Instant) -> bool {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: self.call.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = remaining.as_millis().clamp(1, 100) as libc::c_int;
        // SAFETY: one valid pollfd, valid for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 && pfd.revents & libc::POLLIN != 0 {
            let _ = self.call.read();
            return true;
        }
        false
    }

    /// Wait until `n` more used elements appeared and an interrupt was signalled.
    /// Returns false on timeout if `tolerate_timeout`, panics otherwise.
    fn wait_used(&self, n: u16, timeout: Duration, tolerate_timeout: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut notified = false;
        loop {
            let done = self
                .mem
                .load_u16(USED_GPA + 2)
                .wrapping_sub(self.last_used.get());
            assert!(
                done <= n,
                "device returned {done} chains but only {n} were outstanding"
            );
            if done == n && notified {
                return true;
            }
            if Instant::now() >= deadline {
                if tolerate_timeout && done == 0 {
                    return false;
                }
                panic!(
                    "timeout after {timeout:?}: {done} of {n} chains used, interrupt {}",
                    if notified { "received" } else { "NOT received" }
                );
            }
            if self.wait_call(deadline) {
                notified = true;
            }
        }
    }

    /// Collect the used elements of `posted`, check canaries, return in posting order.
    fn collect(&self, posted: Vec<Posted>) -> Vec<Completed> {
        let n = posted.len() as u16;
        let mut results: Vec<Option<Completed>> = (0..posted.len()).map(|_| None).collect();
        for k in 0..n {
            let slot = self.last_used.get().wrapping_add(k) % QSIZE;
            let elem = USED_GPA + 4 + 8 * u64::from(slot);
            let id = self.mem.load_u32(elem);
            let len = self.mem.load_u32(elem + 4);
            let i = posted
                .iter()
                .position(|p| u32::from(p.head) == id)
                .unwrap_or_else(|| panic!("used ring returned unknown head {id}"));
            assert!(results[i].is_none(), "head {id} returned twice");
            let p = &posted[i];
            let total: u32 = p.writable.iter().map(|w| w.1).sum();
            assert!(
                len <= total,
                "used len {len} larger than the {total} writable bytes of the chain"
            );
            let mut all = Vec::new();
            for &(addr, wlen) in &p.writable {
                all.extend(self.read(addr.0, wlen as usize));
            }
            all.truncate(len as usize);
            results[i] = Some(Completed { len, reply: all });
        }
        self.last_used.set(self.last_used.get().wrapping_add(n));
        for p in &posted {
            for g in &p.guards {
                assert_eq!(
                    self.read(g.0, GUARD as usize),
                    vec![GUARD_BYTE; GUARD as usize],
                    "daemon wrote outside a descriptor's buffer (canary at GPA {:#x})",
                    g.0
                );
            }
            for (addr, data) in &p.readable {
                assert_eq!(
                    &self.read(addr.0, data.len()),
                    data,
                    "daemon modified a device-readable buffer at GPA {:#x}",
                    addr.0
                );
            }
        }
        results.into_iter().map(|r| r.unwrap()).collect()
    }

    /// Post chains in one kick and wait for all of them.
    fn submit(&self, chains: &[Chain]) -> Vec<Completed> {
        let posted = self.post(chains);
        self.wait_used(posted.len() as u16, TIMEOUT, false);
        self.collect(posted)
    }

    fn submit_one(&self, chain: Chain) -> Completed {
        self.submit(&[chain]).pop().unwrap()
    }

    /// One request: readable pieces, writable pieces; returns the bytes written (used len).
    fn request(&self, readable: &[&[u8]], writable_sizes: &[u32]) -> Vec<u8> {
        self.submit_one(Chain::simple(readable, writable_sizes))
            .reply
    }

    // ----- 9P on top of the queue -----

    fn tag(&self) -> u16 {
        let t = self.next_tag.get();
        self.next_tag.set(if t >= 0xfffe { 1 } else { t + 1 });
        t
    }

    /// Send a T-message through `chain`, check the reply's framing, return (type, body).
    fn call_chain(&self, msg: &[u8], chain: Chain) -> Result<Vec<u8>, Errno> {
        let done = self.submit_one(chain);
        check_reply(msg, &done)
    }

    /// Send a T-message in one descriptor with `cap` writable bytes.
    fn call_cap(&self, msg: &[u8], cap: u32) -> Result<Vec<u8>, Errno> {
        self.call_chain(msg, Chain::simple(&[msg], &[cap]))
    }

    fn call(&self, msg: &[u8]) -> Result<Vec<u8>, Errno> {
        self.call_cap(msg, REPLY_CAP)
    }

    fn version(&self, msize: u32, version: &str) -> (u32, String) {
        let m = T::new(TVERSION, NOTAG).u32(msize).str(version).done();
        let body = self.call(&m).expect("Tversion");
        let mut d = Dec::new(&body);
        let r = (d.u32(), d.string());
        d.end();
        r
    }

    fn attach(&self, fid: u32, uname: &str, aname: &str, n_uname: u32) -> Result<Qid, Errno> {
        let m = T::new(TATTACH, self.tag())
            .u32(fid)
            .u32(NOFID)
            .str(uname)
            .str(aname)
            .u32(n_uname)
            .done();
        let body = self.call(&m)?;
        let mut d = Dec::new(&body);
        let q = d.qid();
        d.end();
        Ok(q)
    }

    fn walk_msg(&self, fid: u32, newfid: u32, names: &[&str]) -> Vec<u8> {
        let mut t = T::new(TWALK, self.tag())
            .u32(fid)
            .u32(newfid)
            .u16(names.len() as u16);
        for n in names {
            t = t.str(n);
        }
        t.done()
    }

    fn parse_walk(body: &[u8]) -> Vec<Qid> {
        let mut d = Dec::new(body);
        let n = d.u16();
        let q = (0..n).map(|_| d.qid()).collect();
        d.end();
        q
    }

    fn walk(&self, fid: u32, newfid: u32, names: &[&str]) -> Result<Vec<Qid>, Errno> {
        let m = self.walk_msg(fid, newfid, names);
        Ok(Self::parse_walk(&self.call(&m)?))
    }

    fn lopen(&self, fid: u32, flags: u32) -> Result<(Qid, u32), Errno> {
        let m = T::new(TLOPEN, self.tag()).u32(fid).u32(flags).done();
        let body = self.call(&m)?;
        let mut d = Dec::new(&body);
        let r = (d.qid(), d.u32());
        d.end();
        Ok(r)
    }

    fn lcreate(
        &self,
        fid: u32,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(Qid, u32), Errno> {
        let m = T::new(TLCREATE, self.tag())
            .u32(fid)
            .str(name)
            .u32(flags)
            .u32(mode)
            .u32(gid)
            .done();
        let body = self.call(&m)?;
        let mut d = Dec::new(&body);
        let r = (d.qid(), d.u32());
        d.end();
        Ok(r)
    }

    fn read_msg(&self, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        T::new(TREAD, self.tag())
            .u32(fid)
            .u64(offset)
            .u32(count)
            .done()
    }

    fn parse_read(body: &[u8]) -> Vec<u8> {
        let mut d = Dec::new(body);
        let n = d.u32();
        let data = d.bytes(n as usize).to_vec();
        d.end();
        data
    }

    fn read_file(&self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>, Errno> {
        let m = self.read_msg(fid, offset, count);
        let data = Self::parse_read(&self.call_cap(&m, count + 11)?);
        assert!(
            data.len() <= count as usize,
            "Rread returned more than asked"
        );
        Ok(data)
    }

    fn write_msg(&self, fid: u32, offset: u64, data: &[u8]) -> Vec<u8> {
        T::new(TWRITE, self.tag())
            .u32(fid)
            .u64(offset)
            .u32(data.len() as u32)
            .raw(data)
            .done()
    }

    fn parse_write(body: &[u8]) -> u32 {
        let mut d = Dec::new(body);
        let n = d.u32();
        d.end();
        n
    }

    fn write_file(&self, fid: u32, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let m = self.write_msg(fid, offset, data);
        Ok(Self::parse_write(&self.call(&m)?))
    }

    fn clunk(&self, fid: u32) -> Result<(), Errno> {
        let m = T::new(TCLUNK, self.tag()).u32(fid).done();
        let body = self.call(&m)?;
        Dec::new(&body).end();
        Ok(())
    }

    fn getattr_msg(&self, fid: u32, mask: u64) -> Vec<u8> {
        T::new(TGETATTR, self.tag()).u32(fid).u64(mask).done()
    }

    fn getattr(&self, fid: u32, mask: u64) -> Result<Attr, Errno> {
        let m = self.getattr_msg(fid, mask);
        let body = self.call(&m)?;
        Ok(Attr::parse(&body))
    }

    fn mkdir(&self, dfid: u32, name: &str, mode: u32, gid: u32) -> Result<Qid, Errno> {
        let m = T::new(TMKDIR, self.tag())
            .u32(dfid)
            .str(name)
            .u32(mode)
            .u32(gid)
            .done();
        let body = self.call(&m)?;
        let mut d = Dec::new(&body);
        let q = d.qid();
        d.end();
        Ok(q)
    }

    fn unlinkat(&self, dfid: u32, name: &str, flags: u32) -> Result<(), Errno> {
        let m = T::new(TUNLINKAT, self.tag())
            .u32(dfid)
            .str(name)
            .u32(flags)
            .done();
        let body = self.call(&m)?;
        Dec::new(&body).end();
        Ok(())
    }

    /// All directory entries of an opened directory fid, following the offset cookies.
    fn readdir_all(&self, fid: u32) -> Vec<DirEnt> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for _ in 0..1000 {
            let m = T::new(TREADDIR, self.tag())
                .u32(fid)
                .u64(offset)
                .u32(4096)
                .done();
            let body = self.call_cap(&m, 4096 + 11).expect("Treaddir");
            let mut d = Dec::new(&body);
            let n = d.u32() as usize;
            let data = d.bytes(n).to_vec();
            d.end();
            if data.is_empty() {
                return out;
            }
            let mut e = Dec::new(&data);
            while !e.at_end() {
                let qid = e.qid();
                let off = e.u64();
                let ty = e.u8();
                let name = e.string();
                offset = off;
                out.push(DirEnt { qid, ty, name });
            }
        }
        panic!("Treaddir never reached the end of the directory");
    }

    /// Tversion 9P2000.L + Tattach `fid` to the share root.
    fn mount(&self, fid: u32) -> Qid {
        let (msize, v) = self.version(MSIZE, "9P2000.L");
        assert_eq!(v, "9P2000.L");
        assert!(msize <= MSIZE);
        self.attach(fid, "root", "", uid()).expect("Tattach")
    }
}

fn uid() -> u32 {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { libc::getuid() }
}

fn gid() -> u32 {
    // SAFETY: as above.
    unsafe { libc::getgid() }
}

/// Check an R-message against the T-message that caused it; Ok(body) or Err(Rlerror ecode).
fn check_reply(msg: &[u8], done: &Completed) -> Result<Vec<u8>, Errno> {
    let ty = msg[4];
    let tag = u16::from_le_bytes([msg[5], msg[6]]);
    let r = &done.reply;
    assert!(
        r.len() >= 7,
        "reply to type {ty} too short: used len {} (bytes {r:02x?})",
        done.len
    );
    let size = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
    assert_eq!(
        size, done.len,
        "R-message size field differs from the used element's len"
    );
    let rtag = u16::from_le_bytes([r[5], r[6]]);
    assert_eq!(rtag, tag, "reply tag does not echo the request tag");
    let body = r[7..].to_vec();
    if r[4] == RLERROR {
        let mut d = Dec::new(&body);
        let e = d.u32();
        d.end();
        return Err(Errno(e));
    }
    assert_eq!(r[4], ty + 1, "reply type for T-message {ty}");
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// An independent 9P2000.L encoder/decoder
// ---------------------------------------------------------------------------------------------

/// Cursor over an R-message body; panics on truncation (a malformed reply fails the test).
struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn new(b: &'a [u8]) -> Self {
        Dec { b, pos: 0 }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.pos + n <= self.b.len(),
            "reply truncated: need {n} bytes at {} of {}",
            self.pos,
            self.b.len()
        );
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn u8(&mut self) -> u8 {
        self.bytes(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes(2).try_into().unwrap())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes(8).try_into().unwrap())
    }
    fn string(&mut self) -> String {
        let n = self.u16() as usize;
        String::from_utf8(self.bytes(n).to_vec()).expect("reply string is not UTF-8")
    }
    fn qid(&mut self) -> Qid {
        Qid {
            ty: self.u8(),
            version: self.u32(),
            path: self.u64(),
        }
    }
    fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }
    fn end(&self) {
        assert!(
            self.at_end(),
            "{} unexpected trailing bytes in reply",
            self.b.len() - self.pos
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Qid {
    ty: u8,
    version: u32,
    path: u64,
}

/// An Rlerror code.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Errno(u32);

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rlerror {} ({})",
            self.0,
            io::Error::from_raw_os_error(self.0 as i32)
        )
    }
}

#[derive(Debug)]
struct Attr {
    valid: u64,
    qid: Qid,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    mtime_sec: u64,
}

impl Attr {
    fn parse(body: &[u8]) -> Attr {
        let mut d = Dec::new(body);
        let valid = d.u64();
        let qid = d.qid();
        let mode = d.u32();
        let uid = d.u32();
        let gid = d.u32();
        let nlink = d.u64();
        let _rdev = d.u64();
        let size = d.u64();
        let _blksize = d.u64();
        let _blocks = d.u64();
        let _atime = (d.u64(), d.u64());
        let mtime_sec = d.u64();
        let _mtime_nsec = d.u64();
        let _ctime = (d.u64(), d.u64());
        let _btime = (d.u64(), d.u64());
        let _gen = d.u64();
        let _data_version = d.u64();
        d.end();
        Attr {
            valid,
            qid,
            mode,
            uid,
            gid,
            nlink,
            size,
            mtime_sec,
        }
    }
}

#[derive(Debug)]
struct DirEnt {
    qid: Qid,
    ty: u8,
    name: String,
}

/// Deterministic test content.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

/// Compare byte strings, reporting lengths and the first difference instead of dumping both.
#[track_caller]
fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |v: &[u8]| v[first..v.len().min(first + 16)].to_vec();
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first}: got {:02x?}, want {:02x?}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    );
}

/// Split `data` at the given cut points.
fn split_at<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in cuts {
        out.push(&data[prev..c]);
        prev = c;
    }
    out.push(&data[prev..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Features, protocol features, queue count and the config space (mount tag).
#[test]
fn negotiation_and_config() {
    let (_share, daemon) = start("hostshare", &[]);
    let vmm = Vmm::connect_with(
        &daemon.socket,
        VmmOpts {
            mem: MemSetup::AddMemRegions,
            ..VmmOpts::default()
        },
    );

    let f = vmm.device_features;
    for (bit, name) in [
        (VIRTIO_F_VERSION_1, "VIRTIO_F_VERSION_1"),
        (VIRTIO_RING_F_INDIRECT_DESC, "VIRTIO_RING_F_INDIRECT_DESC"),
        (VIRTIO_RING_F_EVENT_IDX, "VIRTIO_RING_F_EVENT_IDX"),
        (VIRTIO_9P_MOUNT_TAG, "VIRTIO_9P_MOUNT_TAG"),
        (
            VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits(),
            "VHOST_USER_F_PROTOCOL_FEATURES",
        ),
    ] {
        assert!(f & bit != 0, "device features {f:#x} lack {name}");
    }
    let wanted = VIRTIO_F_VERSION_1
        | VIRTIO_RING_F_INDIRECT_DESC
        | VIRTIO_RING_F_EVENT_IDX
        | VIRTIO_9P_MOUNT_TAG
        | VHOST_USER_F_PROTOCOL_FEATURES;
    assert_eq!(vmm.acked_features, wanted, "SET_FEATURES accepted");

    let pf = vmm.protocol_features;
    for (feat, name) in [
        (VhostUserProtocolFeatures::CONFIG, "CONFIG"),
        (VhostUserProtocolFeatures::MQ, "MQ"),
        (VhostUserProtocolFeatures::REPLY_ACK, "REPLY_ACK"),
        (
            VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS,
            "CONFIGURE_MEM_SLOTS",
        ),
    ] {
        assert!(pf.contains(feat), "protocol features {pf:?} lack {name}");
    }
    assert_eq!(vmm.queue_num, 1, "GET_QUEUE_NUM");
    let slots = vmm
        .frontend
        .clone()
        .get_max_mem_slots()
        .expect("GET_MAX_MEM_SLOTS");
    assert!(slots >= 2, "GET_MAX_MEM_SLOTS = {slots}");

    // Config space: le16 tag_len, then the tag, no NUL.
    let tag = b"hostshare";
    let cfg = vmm.get_config(0, 2 + tag.len() as u32);
    let mut want = (tag.len() as u16).to_le_bytes().to_vec();
    want.extend_from_slice(tag);
    assert_eq!(cfg, want, "GET_CONFIG(0, {})", 2 + tag.len());
    // A frontend may read just the length field first.
    assert_eq!(vmm.get_config(0, 2), want[..2].to_vec(), "GET_CONFIG(0, 2)");

    // The full-size (1024-entry) ring set up through ADD_MEM_REG works.
    let (msize, v) = vmm.version(MSIZE, "9P2000.L");
    assert_eq!(v, "9P2000.L");
    assert!(msize <= MSIZE);
}

/// A different tag length, to be sure the config is not hard-wired.
#[test]
fn config_space_other_tag() {
    let tag = "t";
    let (_share, daemon) = start(tag, &[]);
    let vmm = Vmm::connect(&daemon.socket);
    assert_eq!(vmm.get_config(0, 3), vec![1, 0, b't']);
}

/// Version negotiation, attach, walk, getattr, read, create, write.
#[test]
fn basic_session() {
    let (share, daemon) = start("hostshare", &[]);
    let content = b"hello from the host\n".repeat(50);
    fs::write(share.path().join("hello.txt"), &content).unwrap();

    let vmm = Vmm::connect(&daemon.socket);

    // First exchange checked byte by byte: size[4] type[1] tag[2] msize[4] version[s].
    let m = T::new(TVERSION, NOTAG).u32(MSIZE).str("9P2000.L").done();
    let r = vmm.request(&[&m], &[REPLY_CAP]);
    assert_eq!(r.len(), 21, "Rversion length: {r:02x?}");
    assert_eq!(r[0..4], 21u32.to_le_bytes(), "Rversion size field");
    assert_eq!(r[4], TVERSION + 1, "Rversion type");
    assert_eq!(r[5..7], NOTAG.to_le_bytes(), "Rversion tag");
    assert_eq!(&r[11..21], b"\x08\x009P2000.L", "Rversion version string");
    let msize = u32::from_le_bytes(r[7..11].try_into().unwrap());
    assert!(
        (4096..=MSIZE).contains(&msize),
        "Rversion msize {msize} (the Linux client refuses < 4096)"
    );
    let (_, v) = vmm.version(MSIZE, "foo");
    assert_eq!(v, "unknown", "Rversion for an unknown version");
    // Renegotiate after the refused version.
    let (_, v) = vmm.version(MSIZE, "9P2000.L");
    assert_eq!(v, "9P2000.L");

    let root = vmm.attach(1, "root", "", uid()).expect("Tattach");
    assert_eq!(
        root.ty & QTDIR,
        QTDIR,
        "root qid {root:?} is not a directory"
    );
    let rattr = vmm.getattr(1, P9_GETATTR_BASIC).expect("Tgetattr root");
    assert_eq!(rattr.mode & libc::S_IFMT, libc::S_IFDIR);
    assert_eq!(rattr.qid, root);

    // Walk to the host file.
    let qids = vmm.walk(1, 2, &["hello.txt"]).expect("Twalk hello.txt");
    assert_eq!(qids.len(), 1);
    assert_eq!(qids[0].ty, QTFILE);
    assert_ne!(qids[0].path, root.path);

    let meta = fs::metadata(share.path().join("hello.txt")).unwrap();
    let a = vmm.getattr(2, P9_GETATTR_ALL).expect("Tgetattr");
    assert_eq!(
        a.valid & P9_GETATTR_BASIC,
        P9_GETATTR_BASIC,
        "valid {:#x}",
        a.valid
    );
    assert_eq!(a.qid, qids[0], "Rgetattr qid vs Rwalk qid");
    assert_eq!(a.size, meta.len(), "size");
    assert_eq!(a.mode, meta.mode(), "mode (type + permissions)");
    assert_eq!(a.uid, meta.uid(), "uid");
    assert_eq!(a.gid, meta.gid(), "gid");
    assert_eq!(a.nlink, meta.nlink(), "nlink");
    assert_eq!(a.mtime_sec, meta.mtime() as u64, "mtime");

    // Open and read the whole file, then at an offset, then past EOF.
    let (oq, _iounit) = vmm.lopen(2, O_RDONLY).expect("Tlopen");
    assert_eq!(oq.path, qids[0].path);
    assert_bytes_eq(
        &vmm.read_file(2, 0, 8192).expect("Tread"),
        &content,
        "Tread",
    );
    assert_eq!(
        vmm.read_file(2, 995, 10).expect("Tread offset"),
        content[995..].to_vec()
    );
    assert!(vmm
        .read_file(2, content.len() as u64 + 10, 100)
        .expect("Tread past EOF")
        .is_empty());
    vmm.clunk(2).expect("Tclunk");

    // Create a new file through a clone of the root fid, write to it.
    assert!(vmm.walk(1, 3, &[]).expect("Twalk clone").is_empty());
    let (cq, _) = vmm
        .lcreate(3, "new.txt", O_RDWR | O_CREAT | O_EXCL, 0o644, gid())
        .expect("Tlcreate");
    assert_eq!(cq.ty, QTFILE);
    let data = b"written by the guest";
    assert_eq!(
        vmm.write_file(3, 0, data).expect("Twrite"),
        data.len() as u32
    );
    assert_eq!(vmm.write_file(3, 100, b"tail").expect("Twrite @100"), 4);
    vmm.clunk(3).expect("Tclunk");

    let host = fs::read(share.path().join("new.txt")).expect("new.txt on the host");
    let mut want = vec![0u8; 104];
    want[..data.len()].copy_from_slice(data);
    want[100..].copy_from_slice(b"tail");
    assert_eq!(host, want);
    let mode = fs::metadata(share.path().join("new.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "mode of the created file");

    // The fid that was clunked is gone.
    assert!(vmm.getattr(3, P9_GETATTR_BASIC).is_err());
    // Walking to something missing fails with ENOENT.
    assert_eq!(
        vmm.walk(1, 4, &["missing"]).unwrap_err(),
        Errno(libc::ENOENT as u32)
    );
}

/// Requests and replies split across many descriptors, in both memory regions,
/// direct and indirect, and several chains per kick.
#[test]
fn split_descriptor_chains() {
    let (share, daemon) = start("hostshare", &[]);
    let content = pattern(3000, 7);
    fs::write(share.path().join("split.bin"), &content).unwrap();
    let vmm = Vmm::connect_with(
        &daemon.socket,
        VmmOpts {
            mem: MemSetup::AddMemRegions,
            ..VmmOpts::default()
        },
    );
    let root = vmm.mount(1);

    // Twalk with the header split mid-field: size[0..2] | size[2..4]+type | tag[0] | ...
    let m = vmm.walk_msg(1, 2, &["split.bin"]);
    let pieces = split_at(&m, &[2, 5, 6, 9, 12]);
    let chain = Chain::direct(vec![
        rd(pieces[0]),
        rd0(pieces[1]),
        rd(pieces[2]),
        rd0(pieces[3]),
        rd(pieces[4]),
        rd(pieces[5]),
        wr(64),
    ]);
    let q = Vmm::parse_walk(&vmm.call_chain(&m, chain).expect("split Twalk"));
    assert_eq!(q.len(), 1);
    assert_ne!(q[0].path, root.path);

    // Tlopen with every byte in its own descriptor; reply split 7 / 1 / rest.
    let m = T::new(TLOPEN, vmm.tag()).u32(2).u32(O_RDWR).done();
    let mut segs: Vec<Seg> = m.iter().map(|b| rd(&[*b])).collect();
    segs.extend([wr(7), wr0(1), wr(100)]);
    let body = vmm
        .call_chain(&m, Chain::direct(segs))
        .expect("byte-split Tlopen");
    let mut d = Dec::new(&body);
    assert_eq!(d.qid().path, q[0].path);
    d.u32();
    d.end();

    // Rread across a 7-byte, a 1-byte and larger writable pieces (RAM0 and RAM1).
    let m = vmm.read_msg(2, 0, 3000);
    let chain = Chain::direct(vec![rd(&m), wr(7), wr0(1), wr(3), wr0(1000), wr(4096)]);
    let data = Vmm::parse_read(&vmm.call_chain(&m, chain).expect("split Rread"));
    assert_bytes_eq(&data, &content, "Rread through split writable buffers");

    // Twrite: header split mid-field (offset), payload split in three, across regions.
    let payload = pattern(2500, 99);
    let m = vmm.write_msg(2, 100, &payload);
    // header is 23 bytes: size type tag fid offset count
    let pieces = split_at(&m, &[10, 14, 23, 23 + 1000, 23 + 1001]);
    let chain = Chain::direct(vec![
        rd(pieces[0]),
        rd0(pieces[1]),
        rd(pieces[2]),
        rd0(pieces[3]),
        rd(pieces[4]),
        rd0(pieces[5]),
        wr(5),
        wr0(6),
    ]);
    let n = Vmm::parse_write(&vmm.call_chain(&m, chain).expect("split Twrite"));
    assert_eq!(n, 2500);
    let host = fs::read(share.path().join("split.bin")).unwrap();
    let mut want = content.clone();
    want[100..2600].copy_from_slice(&payload);
    assert_bytes_eq(&host, &want, "host file after the split Twrite");

    // Indirect descriptor tables (what the Linux client sends).
    let m = vmm.read_msg(2, 0, 3000);
    let (a, b) = m.split_at(6);
    let chain = Chain::indirect(vec![rd(a), rd0(b), wr(7), wr(1), wr0(2000), wr(1100)]);
    let data = Vmm::parse_read(&vmm.call_chain(&m, chain).expect("indirect Tread"));
    assert_bytes_eq(&data, &want, "Rread through an indirect table");

    let payload2 = pattern(700, 3);
    let m = vmm.write_msg(2, 0, &payload2);
    let pieces = split_at(&m, &[3, 23, 400]);
    let chain = Chain::indirect(vec![
        rd(pieces[0]),
        rd(pieces[1]),
        rd0(pieces[2]),
        rd(pieces[3]),
        wr(11),
    ]);
    let n = Vmm::parse_write(&vmm.call_chain(&m, chain).expect("indirect Twrite"));
    assert_eq!(n, 700);
    want[..700].copy_from_slice(&payload2);
    assert_bytes_eq(
        &fs::read(share.path().join("split.bin")).unwrap(),
        &want,
        "host file after the indirect Twrite",
    );

    // Several chains in one kick, direct and indirect mixed; each reply to its own chain.
    let m1 = vmm.getattr_msg(2, P9_GETATTR_BASIC);
    let m2 = vmm.read_msg(2, 10, 20);
    let m3 = vmm.getattr_msg(1, P9_GETATTR_BASIC);
    let m4 = vmm.read_msg(2, 2000, 600);
    let chains = [
        Chain::simple(&[&m1], &[200]),
        Chain::indirect(vec![rd(&m2[..4]), rd(&m2[4..]), wr(4), wr(100)]),
        Chain::direct(vec![rd0(&m3), wr0(200)]),
        Chain::indirect(vec![rd(&m4), wr(300), wr(311)]),
    ];
    let done = vmm.submit(&chains);
    let a1 = Attr::parse(&check_reply(&m1, &done[0]).unwrap());
    assert_eq!(a1.size, 3000);
    assert_eq!(
        Vmm::parse_read(&check_reply(&m2, &done[1]).unwrap()),
        want[10..30].to_vec()
    );
    let a3 = Attr::parse(&check_reply(&m3, &done[2]).unwrap());
    assert_eq!(a3.qid, root);
    assert_eq!(
        Vmm::parse_read(&check_reply(&m4, &done[3]).unwrap()),
        want[2000..2600].to_vec()
    );
}

/// msize-sized reads and writes laid out the way the Linux client's zero-copy path does:
/// an indirect table with a small header buffer followed by page-sized pieces.
#[test]
fn large_io_like_linux() {
    let (share, daemon) = start("hostshare", &[]);
    let content = pattern(600_000, 42);
    fs::write(share.path().join("large"), &content).unwrap();
    let vmm = Vmm::connect(&daemon.socket);
    let (msize, _) = vmm.version(MSIZE, "9P2000.L");
    vmm.attach(1, "root", "", uid()).unwrap();
    vmm.walk(1, 2, &["large"]).unwrap();
    vmm.lopen(2, O_RDWR).unwrap();
    let count = msize - 24; // what the Linux client asks for

    // Tread: out = the 23-byte request; in = 11-byte header buffer, then a user buffer
    // that starts 100 bytes into a page, then whole pages.
    let m = vmm.read_msg(2, 1000, count);
    let mut segs = vec![rd(&m), wr(11), wr(4096 - 100)];
    let mut left = count - (4096 - 100);
    while left > 0 {
        let n = left.min(4096);
        segs.push(wr(n));
        left -= n;
    }
    assert!(segs.len() <= 130);
    let data = Vmm::parse_read(
        &vmm.call_chain(&m, Chain::indirect(segs))
            .expect("large Tread"),
    );
    assert_eq!(data.len(), count as usize, "short read of a large file");
    assert_bytes_eq(&data, &content[1000..1000 + count as usize], "large Tread");

    // A Tread asking for more than msize allows, with room for all of it: the reply must
    // still respect msize.
    let m = vmm.read_msg(2, 0, 2 * msize);
    let done = vmm.submit_one(Chain::indirect(vec![rd(&m), wr(11), wr(2 * msize)]));
    match check_reply(&m, &done) {
        Ok(body) => {
            let data = Vmm::parse_read(&body);
            assert!(
                data.len() + 11 <= msize as usize,
                "Rread of {} bytes exceeds msize {msize}",
                data.len()
            );
            assert_bytes_eq(&data, &content[..data.len()], "clamped Tread");
        }
        Err(e) => assert_eq!(e, Errno(libc::EMSGSIZE as u32), "Tread count > msize"),
    }

    // Twrite: out = 23-byte header, then pages; in = a 4096-byte reply buffer.
    let payload = pattern(count as usize, 9);
    let m = vmm.write_msg(2, 50_000, &payload);
    let mut segs = vec![rd(&m[..23])];
    for page in m[23..].chunks(4096) {
        segs.push(rd(page));
    }
    segs.push(wr(4096));
    let n = Vmm::parse_write(
        &vmm.call_chain(&m, Chain::indirect(segs))
            .expect("large Twrite"),
    );
    assert_eq!(n, count);
    let mut want = content.clone();
    want[50_000..50_000 + count as usize].copy_from_slice(&payload);
    assert_bytes_eq(
        &fs::read(share.path().join("large")).unwrap(),
        &want,
        "host file after the large Twrite",
    );
}

/// Ring indices that wrap past 65535, without EVENT_IDX (plain interrupts).
#[test]
fn ring_index_wraparound_without_event_idx() {
    let (share, daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"0123456789").unwrap();
    let vmm = Vmm::connect_with(
        &daemon.socket,
        VmmOpts {
            ring_base: 65530,
            event_idx: false,
            ..VmmOpts::default()
        },
    );
    assert_eq!(vmm.acked_features & VIRTIO_RING_F_EVENT_IDX, 0);
    vmm.mount(1);
    vmm.walk(1, 2, &["f"]).unwrap();
    vmm.lopen(2, O_RDONLY).unwrap();
    for i in 0..12u64 {
        assert_eq!(
            vmm.read_file(2, i % 10, 1).unwrap(),
            vec![b'0' + (i % 10) as u8]
        );
    }
    // A batch straddling nothing in particular, after the wrap.
    let msgs: Vec<Vec<u8>> = (0..5).map(|i| vmm.read_msg(2, i, 2)).collect();
    let chains: Vec<Chain> = msgs.iter().map(|m| Chain::simple(&[m], &[64])).collect();
    let done = vmm.submit(&chains);
    for (i, (m, d)) in msgs.iter().zip(&done).enumerate() {
        let data = Vmm::parse_read(&check_reply(m, d).unwrap());
        assert_eq!(data, b"0123456789"[i..i + 2].to_vec());
    }
    assert!(vmm.next_avail.get() < 100, "indices did wrap");
}

/// Replies that do not fit, and malformed requests: the chain comes back, the daemon lives on.
#[test]
fn small_reply_buffers_and_malformed_requests() {
    let (share, daemon) = start("hostshare", &[]);
    let content = pattern(4096, 1);
    fs::write(share.path().join("big"), &content).unwrap();
    let vmm = Vmm::connect(&daemon.socket);
    vmm.mount(1);
    vmm.walk(1, 2, &["big"]).unwrap();
    vmm.lopen(2, O_RDONLY).unwrap();

    // Accept: len 0, or a well-formed Rlerror, or (legal 9P) a correct short Rread.
    let check_small = |m: &[u8], done: &Completed, what: &str| {
        if done.len == 0 {
            return;
        }
        match check_reply(m, done) {
            Err(_) => {}
            Ok(body) => {
                let data = Vmm::parse_read(&body);
                assert_eq!(data, content[..data.len()].to_vec(), "{what}: short Rread");
            }
        }
    };

    // Tread 4096 with 20 writable bytes.
    let m = vmm.read_msg(2, 0, 4096);
    let done = vmm.submit_one(Chain::simple(&[&m], &[20]));
    check_small(&m, &done, "20-byte reply buffer");
    // ... split in two pieces.
    let m = vmm.read_msg(2, 0, 4096);
    let done = vmm.submit_one(Chain::simple(&[&m], &[13, 7]));
    check_small(&m, &done, "13+7-byte reply buffer");
    // 3 writable bytes: not even an Rlerror fits.
    let m = vmm.read_msg(2, 0, 4096);
    let done = vmm.submit_one(Chain::simple(&[&m], &[3]));
    assert_eq!(
        done.len, 0,
        "reply into a 3-byte buffer: {:02x?}",
        done.reply
    );
    // No writable descriptor at all.
    let m = vmm.getattr_msg(2, P9_GETATTR_BASIC);
    let done = vmm.submit_one(Chain::simple(&[&m], &[]));
    assert_eq!(done.len, 0);
    // Still serving.
    assert_bytes_eq(&vmm.read_file(2, 0, 4096).unwrap(), &content, "Tread");

    // Malformed requests. Each must come back as an Rlerror with the request's tag, or
    // with len 0; then a good request must work.
    let accept_error = |m: &[u8], done: &Completed, what: &str| {
        if done.len != 0 {
            let r = check_reply(m, done);
            assert!(r.is_err(), "{what}: expected Rlerror, got {r:02x?}");
        }
    };
    let still_alive = |what: &str| {
        let a = vmm
            .getattr(2, P9_GETATTR_BASIC)
            .unwrap_or_else(|e| panic!("after {what}: {e:?}"));
        assert_eq!(a.size, 4096, "after {what}");
    };

    // Size field larger than the chain.
    let mut m = vmm.getattr_msg(2, P9_GETATTR_BASIC);
    let real = m.len() as u32;
    m[0..4].copy_from_slice(&(real + 100).to_le_bytes());
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "size field > chain");
    still_alive("size field > chain");

    // Size field smaller than a header.
    let mut m = vmm.getattr_msg(2, P9_GETATTR_BASIC);
    m[0..4].copy_from_slice(&3u32.to_le_bytes());
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "size field 3");
    still_alive("size field 3");

    // Unknown message type.
    let m = T::new(250, vmm.tag()).u32(2).u64(0).done();
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "type 250");
    still_alive("type 250");

    // An R-message type sent as a request.
    let m = T::new(TGETATTR + 1, vmm.tag()).u32(2).u64(0).done();
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "Rgetattr as request");
    still_alive("Rgetattr as request");

    // Truncated Twalk: nwname 2, one name present, size field consistent with the bytes.
    let m = T::new(TWALK, vmm.tag())
        .u32(1)
        .u32(7)
        .u16(2)
        .str("big")
        .done();
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "truncated Twalk");
    still_alive("truncated Twalk");

    // Twalk whose string length runs past the message.
    let m = T::new(TWALK, vmm.tag())
        .u32(1)
        .u32(8)
        .u16(1)
        .u16(0xffff)
        .raw(b"big")
        .done();
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "string length past the end");
    still_alive("string length past the end");

    // Twalk with more than MAXWELEM (16) names.
    let names = ["big"; 17];
    let m = vmm.walk_msg(1, 9, &names);
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "Twalk with 17 names");
    still_alive("Twalk with 17 names");

    // Twrite whose count is larger than the data present.
    let m = T::new(TWRITE, vmm.tag())
        .u32(2)
        .u64(0)
        .u32(1000)
        .raw(b"abc")
        .done();
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "Twrite count > data");
    still_alive("Twrite count > data");
    assert_bytes_eq(
        &fs::read(share.path().join("big")).unwrap(),
        &content,
        "host file after bad Twrite",
    );

    // Only 4 readable bytes (no type, no tag).
    let m = 4u32.to_le_bytes();
    let done = vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    if done.len != 0 {
        let r = &done.reply;
        assert!(
            r.len() >= 11 && r[4] == RLERROR,
            "reply to 4 bytes: {r:02x?}"
        );
    }
    still_alive("4-byte request");

    // No readable descriptor at all.
    let done = vmm.submit_one(Chain::simple(&[], &[REPLY_CAP]));
    if done.len != 0 {
        let r = &done.reply;
        assert!(
            r.len() >= 11 && r[4] == RLERROR,
            "reply to 0 bytes: {r:02x?}"
        );
    }
    still_alive("empty request");
}

/// Outside-memory descriptors, done properly (published only once bad), plus a descriptor
/// loop. The daemon may return the chain (len 0 or Rlerror) or drop it, but must keep serving.
#[test]
fn bad_descriptors_do_not_kill_the_daemon() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"abc").unwrap();
    let vmm = Vmm::connect(&daemon.socket);
    vmm.mount(1);
    vmm.walk(1, 2, &["f"]).unwrap();

    // Writable descriptor outside guest memory: build the chain by hand.
    let m = vmm.getattr_msg(2, P9_GETATTR_BASIC);
    let a = RAM1_GPA + (6 << 20);
    vmm.write(a, &m);
    let head = 500u16;
    vmm.mem.write_desc(
        DESC_GPA + 16 * u64::from(head),
        a,
        m.len() as u32,
        VRING_DESC_F_NEXT,
        head + 1,
    );
    vmm.mem.write_desc(
        DESC_GPA + 16 * u64::from(head + 1),
        0x7000_0000_0000,
        4096,
        VRING_DESC_F_WRITE,
        0,
    );
    let returned = post_raw_head(&vmm, head);
    if let Some(len) = returned {
        assert_eq!(
            len, 0,
            "reply into unmapped memory cannot have been written"
        );
    }
    assert!(daemon.try_wait().is_none(), "daemon died");
    assert_eq!(vmm.getattr(2, P9_GETATTR_BASIC).unwrap().size, 3);

    // Descriptor loop: 600 -> 601 -> 600 ...
    vmm.write(a, &m);
    vmm.mem.write_desc(
        DESC_GPA + 16 * 600,
        a,
        m.len() as u32,
        VRING_DESC_F_NEXT,
        601,
    );
    vmm.mem.write_desc(
        DESC_GPA + 16 * 601,
        RAM1_GPA + (7 << 20),
        4096,
        VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
        600,
    );
    let _ = post_raw_head(&vmm, 600);
    assert!(daemon.try_wait().is_none(), "daemon died");
    assert_eq!(vmm.getattr(2, P9_GETATTR_BASIC).unwrap().size, 3);
}

/// A head index beyond the queue size in the avail ring (a driver bug). The chain cannot be
/// returned; the daemon should skip it and keep serving the queue, as it does for other bad
/// chains. In any case it must still exit 0 when the frontend leaves.
#[test]
fn avail_head_out_of_range() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"abc").unwrap();
    let served = {
        let vmm = Vmm::connect(&daemon.socket);
        vmm.mount(1);
        vmm.walk(1, 2, &["f"]).unwrap();

        let returned = post_raw_head(&vmm, QSIZE + 5);
        assert_eq!(
            returned, None,
            "a head >= queue size came back in the used ring"
        );
        assert!(daemon.try_wait().is_none(), "daemon died");

        let m = vmm.getattr_msg(2, P9_GETATTR_BASIC);
        let posted = vmm.post(&[Chain::simple(&[&m], &[REPLY_CAP])]);
        if vmm.wait_used(1, Duration::from_secs(3), true) {
            let done = vmm.collect(posted).pop().unwrap();
            assert_eq!(Attr::parse(&check_reply(&m, &done).unwrap()).size, 3);
            true
        } else {
            false
        }
    };
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
    assert!(
        served,
        "after an avail ring entry with head {} (queue size {QSIZE}) the queue is no longer served",
        QSIZE + 5
    );
}

/// Publish a hand-made head in the avail ring; return the used len if it came back.
fn post_raw_head(vmm: &Vmm, head: u16) -> Option<u32> {
    let slot = vmm.next_avail.get() % QSIZE;
    vmm.mem.store_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), head);
    vmm.next_avail.set(vmm.next_avail.get().wrapping_add(1));
    if vmm.event_idx {
        vmm.mem
            .store_u16(AVAIL_GPA + 4 + 2 * u64::from(QSIZE), vmm.last_used.get());
    }
    vmm.mem.store_u16(AVAIL_GPA + 2, vmm.next_avail.get());
    let _ = vmm.call.read();
    vmm.kick.write(1).unwrap();
    if vmm.wait_used(1, Duration::from_secs(2), true) {
        let slot = vmm.last_used.get() % QSIZE;
        let id = vmm.mem.load_u32(USED_GPA + 4 + 8 * u64::from(slot));
        let len = vmm.mem.load_u32(USED_GPA + 8 + 8 * u64::from(slot));
        assert_eq!(id, u32::from(head), "used id");
        vmm.last_used.set(vmm.last_used.get().wrapping_add(1));
        Some(len)
    } else {
        None
    }
}

/// mkdir, readdir, unlinkat, and walks that must stay inside the share.
#[test]
fn directories_and_confinement() {
    let (share, daemon) = start("hostshare", &[]);
    fs::write(share.path().join("a.txt"), b"a").unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"outside the share").unwrap();
    std::os::unix::fs::symlink(outside.path(), share.path().join("escape")).unwrap();

    let vmm = Vmm::connect(&daemon.socket);
    let root = vmm.mount(1);

    let dq = vmm.mkdir(1, "sub", 0o755, gid()).expect("Tmkdir");
    assert_eq!(dq.ty & QTDIR, QTDIR);
    assert!(share.path().join("sub").is_dir());
    vmm.walk(1, 2, &["sub"]).unwrap();
    vmm.lcreate(2, "inner", O_WRONLY | O_CREAT, 0o600, gid())
        .expect("Tlcreate in sub");
    vmm.clunk(2).unwrap();
    assert!(share.path().join("sub/inner").is_file());

    // Multi-component walk.
    let q = vmm.walk(1, 3, &["sub", "inner"]).expect("Twalk sub/inner");
    assert_eq!(q.len(), 2);
    // (qid.version may differ: creating "inner" changed the directory.)
    assert_eq!((q[0].ty, q[0].path), (dq.ty, dq.path));
    vmm.clunk(3).unwrap();

    // Readdir on the root lists what the host has.
    vmm.walk(1, 4, &[]).unwrap();
    vmm.lopen(4, O_RDONLY | O_DIRECTORY).expect("Tlopen dir");
    let ents = vmm.readdir_all(4);
    let names: Vec<&str> = ents.iter().map(|e| e.name.as_str()).collect();
    for want in ["a.txt", "sub", "escape"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let sub = ents.iter().find(|e| e.name == "sub").unwrap();
    assert_eq!(sub.qid.path, dq.path, "readdir qid of sub");
    assert_eq!(sub.ty, libc::DT_DIR);
    vmm.clunk(4).unwrap();

    // ".." at the root is the root; a name with '/' is refused.
    if let Ok(q) = vmm.walk(1, 5, &[".."]) {
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].path, root.path, "'..' escaped the share root");
        vmm.clunk(5).unwrap();
    }
    if let Ok(q) = vmm.walk(1, 6, &["sub/inner"]) {
        panic!("walk with a '/' in a name succeeded: {q:?}");
    }
    // A symlink to a directory outside the share must not lead outside.
    if vmm.walk(1, 7, &["escape", "secret"]).is_ok() {
        let r = vmm
            .lopen(7, O_RDONLY)
            .and_then(|_| vmm.read_file(7, 0, 100));
        assert_ne!(
            r.ok(),
            Some(b"outside the share".to_vec()),
            "read a file outside the share through a symlink"
        );
    }

    // Unlink a file, refuse to rmdir without AT_REMOVEDIR... then remove the directory.
    vmm.walk(1, 8, &["sub"]).unwrap();
    vmm.unlinkat(8, "inner", 0).expect("Tunlinkat file");
    assert!(!share.path().join("sub/inner").exists());
    vmm.unlinkat(1, "sub", AT_REMOVEDIR).expect("Tunlinkat dir");
    assert!(!share.path().join("sub").exists());
    vmm.unlinkat(1, "a.txt", 0).expect("Tunlinkat a.txt");
    assert!(!share.path().join("a.txt").exists());
    assert!(outside.path().join("secret").exists());
    assert_eq!(
        vmm.unlinkat(1, "a.txt", 0).unwrap_err(),
        Errno(libc::ENOENT as u32)
    );
}

/// --readonly: reads work, every modification is refused, the host is untouched.
#[test]
fn readonly_share() {
    let (share, daemon) = start("ro", &["--readonly"]);
    fs::write(share.path().join("f"), b"read me").unwrap();
    fs::create_dir(share.path().join("d")).unwrap();
    let vmm = Vmm::connect(&daemon.socket);
    vmm.mount(1);

    // The daemon's documented behaviour: every change is refused with EROFS.
    let refused = |r: Result<(), Errno>, what: &str| match r {
        Ok(()) => panic!("{what} succeeded on a read-only share"),
        Err(e) => assert_eq!(e, Errno(libc::EROFS as u32), "{what}"),
    };

    vmm.walk(1, 2, &["f"]).unwrap();
    vmm.lopen(2, O_RDONLY).expect("read-only open");
    assert_eq!(vmm.read_file(2, 0, 100).unwrap(), b"read me");
    vmm.walk(1, 3, &["f"]).unwrap();
    refused(vmm.lopen(3, O_RDWR).map(|_| ()), "Tlopen O_RDWR");
    vmm.walk(1, 4, &[]).unwrap();
    refused(
        vmm.lcreate(4, "new", O_RDWR | O_CREAT, 0o644, gid())
            .map(|_| ()),
        "Tlcreate",
    );
    refused(vmm.mkdir(1, "newdir", 0o755, gid()).map(|_| ()), "Tmkdir");
    refused(vmm.unlinkat(1, "f", 0), "Tunlinkat file");
    refused(vmm.unlinkat(1, "d", AT_REMOVEDIR), "Tunlinkat dir");

    assert_eq!(fs::read(share.path().join("f")).unwrap(), b"read me");
    assert!(share.path().join("d").is_dir());
    assert!(!share.path().join("new").exists());
    assert!(!share.path().join("newdir").exists());
}

/// The daemon exits with status 0 once its frontend goes away (mid-session, fids open).
#[test]
fn exits_zero_after_disconnect() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"x").unwrap();
    {
        let vmm = Vmm::connect(&daemon.socket);
        vmm.mount(1);
        vmm.walk(1, 2, &["f"]).unwrap();
        vmm.lopen(2, O_RDWR).unwrap();
        assert!(daemon.try_wait().is_none());
        // Dropping the Vmm closes the socket, the eventfds and the memfd mapping.
    }
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
}

/// Same, for a frontend that connects, asks for the features and leaves.
#[test]
fn exits_zero_after_bare_disconnect() {
    let (_share, mut daemon) = start("hostshare", &[]);
    {
        let frontend = Frontend::connect(&daemon.socket, 1).expect("connect");
        frontend.get_features().expect("GET_FEATURES");
    }
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
}

/// An avail index more than the queue size ahead of the device (a broken
/// or hostile driver; found by the `chain` fuzz target): no chain can be
/// popped, yet the index says there is more. The daemon must not spin on
/// it: the queue is left alone until the driver resets it, the daemon's
/// CPU stays idle, and it exits 0 when the frontend leaves.
#[test]
fn avail_index_past_the_queue_size_does_not_spin() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"abc").unwrap();
    {
        let vmm = Vmm::connect(&daemon.socket);
        vmm.mount(1);
        vmm.walk(1, 2, &["f"]).unwrap();
        let jump = vmm.next_avail.get().wrapping_add(QSIZE + 7);
        vmm.mem.store_u16(AVAIL_GPA + 2, jump);
        vmm.kick.write(1).unwrap();
        // A spinning queue thread would burn a whole core meanwhile.
        let cpu = |pid: u32| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        };
        let pid = common::serving_pid(daemon.child.id());
        let before = cpu(pid);
        // A measurement window, not a wait for an event.
        std::thread::sleep(Duration::from_millis(1500));
        let ticks = cpu(pid) - before;
        assert!(
            ticks < 50,
            "the daemon used {ticks} ticks in 1.5 s: spinning"
        );
        assert!(daemon.try_wait().is_none(), "daemon died");
    }
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
}
