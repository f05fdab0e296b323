//! Tread and Twrite allocate nothing once warmed up.
//!
//! This binary's global allocator counts every allocation of the process.
//! The daemon runs in-process (the library's `P9Backend` under the
//! framework's `VhostUserDaemon`, as `main.rs` runs it) and the test is its
//! VMM, through a real vhost-user socket, guest memory in a memfd and a
//! split virtqueue (`common/vmm.rs`). After a warm-up, a burst of 1,000
//! Treads and 1,000 Twrites of 64 KiB (16 in flight, data in 4 KiB
//! descriptors like a Linux zero-copy request) must not allocate at all:
//! descriptor chain parsing, `Server::handle`, preadv/pwritev straight
//! between the file and guest memory, reply writing, the used ring and the
//! interrupt. The frontend side allocates nothing while posting and reaping,
//! so any allocation counted is the daemon's. Run both inline (no worker
//! pool) and with a pool of 2 workers.
//!
//! `ALLOC_TRAP=1` prints the backtrace of the first allocation in a burst.
//!
//! Its own binary, without the libtest harness (`harness = false`): no other
//! test or harness thread may allocate meanwhile.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{reply_header, tread, twrite_header, Area, Client, Slot, Vmm, O_RDWR};
use vhost::vhost_user::Listener;
use vhost_user_9p::server::{Config, Server};
use vhost_user_9p::virtio::P9Backend;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static TRAP: AtomicBool = AtomicBool::new(false);

impl Counting {
    fn count(&self) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if TRAP.swap(false, Ordering::Relaxed) {
            // Allocates in turn, but the trap is off by now.
            eprintln!(
                "first allocation in the burst, on thread {:?}:\n{}",
                std::thread::current().name(),
                std::backtrace::Backtrace::force_capture()
            );
        }
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MSIZE: u32 = 512 * 1024;
const IO: u32 = 64 * 1024;
const FILE_SIZE: u64 = 4 << 20;
const IN_FLIGHT: usize = 16;
const BURST: usize = 1000;

fn main() {
    for threads in [0, 2] {
        let allocations = run(threads);
        println!(
            "thread pool {threads}: {allocations} allocations in {BURST} Treads + {BURST} Twrites"
        );
        assert_eq!(
            allocations, 0,
            "serving Tread/Twrite allocated (thread pool {threads}); rerun with ALLOC_TRAP=1 for a backtrace"
        );
    }
    println!("alloc_count: ok");
}

/// Serves the burst through a daemon with `threads` workers; returns the
/// allocations counted during it.
fn run(threads: usize) -> u64 {
    let share = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(share.path().join("data"), &content).unwrap();

    let server = Arc::new(Server::new(&Config::new(share.path())).unwrap());
    let backend = Arc::new(P9Backend::with_thread_pool(server, "alloc", threads).unwrap());
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("9p.sock");
    let mut listener = Listener::new(&socket, true).unwrap();
    let mut daemon = VhostUserDaemon::new(
        "vhost-user-9p-alloc-test".to_string(),
        backend,
        GuestMemoryAtomic::new(GuestMemoryMmap::new()),
    )
    .unwrap();
    let serving = std::thread::spawn(move || {
        daemon.start(&mut listener).unwrap();
        let _ = daemon.wait();
    });

    let vmm = Vmm::connect(&socket, 32 << 20, true);
    let mut client = Client::new(vmm);
    client.mount(MSIZE, 1);
    client.walk(1, 2, &["data"]);
    client.lopen(2, O_RDWR);
    let vmm = &mut client.vmm;
    let reads: Vec<Slot> = (0..IN_FLIGHT)
        .map(|_| vmm.slot(Area::one(23), Area::paged(11, IO)))
        .collect();
    let writes: Vec<Slot> = (0..IN_FLIGHT)
        .map(|_| vmm.slot(Area::paged(23, IO), Area::one(11)))
        .collect();
    for s in &writes {
        vmm.write(s.request_data, &pattern());
    }

    // Warm-up: every worker meets both kinds of request many times.
    burst(vmm, &reads, &writes, 200);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    TRAP.store(std::env::var_os("ALLOC_TRAP").is_some(), Ordering::SeqCst);
    burst(vmm, &reads, &writes, BURST);
    TRAP.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;

    // The data really went through: the writes landed in the file, the
    // reads brought the file's bytes.
    let file = std::fs::read(share.path().join("data")).unwrap();
    let offset = write_offset(BURST - 1) as usize;
    assert!(file[offset..offset + IO as usize] == pattern()[..]);
    let s = reads[0];
    let offset = IO as usize;
    client.vmm.write(s.request, &tread(1, 2, offset as u64, IO));
    client.vmm.roundtrip(s.head);
    let mut got = vec![0u8; IO as usize];
    client.vmm.read(s.reply_data, &mut got);
    assert!(got[..] == content[offset..offset + IO as usize]);

    drop(client); // the VMM leaves: the daemon stops
    serving.join().unwrap();
    allocations
}

/// What every Twrite writes.
fn pattern() -> Vec<u8> {
    (0..IO).map(|j| (j * 13 + 5) as u8).collect()
}

fn read_offset(i: usize) -> u64 {
    (i as u64 * u64::from(IO)) % (FILE_SIZE / 2)
}

fn write_offset(i: usize) -> u64 {
    FILE_SIZE / 2 + (i as u64 * u64::from(IO)) % (FILE_SIZE / 2)
}

/// `count` Treads, then `count` Twrites, `IN_FLIGHT` at a time; checks
/// every reply's header. Allocates nothing.
fn burst(vmm: &mut Vmm, reads: &[Slot], writes: &[Slot], count: usize) {
    for (slots, is_read) in [(reads, true), (writes, false)] {
        // Request `i` goes out in slot `slot`, tagged with the slot number.
        let post = |vmm: &mut Vmm, slot: usize, i: usize| {
            let s = &slots[slot];
            let tag = slot as u16 + if is_read { 100 } else { 200 };
            if is_read {
                vmm.write(s.request, &tread(tag, 2, read_offset(i), IO));
            } else {
                vmm.write(s.request, &twrite_header(tag, 2, write_offset(i), IO));
            }
            vmm.post(s.head);
        };
        let mut sent = 0;
        while sent < IN_FLIGHT.min(count) {
            post(vmm, sent, sent);
            sent += 1;
        }
        vmm.kick();
        let mut done = 0;
        while done < count {
            vmm.wait();
            let mut returned = [0u16; IN_FLIGHT];
            let mut n = 0;
            vmm.reap(|head, _len| {
                returned[n] = head;
                n += 1;
            });
            for &head in &returned[..n] {
                let slot = slots
                    .iter()
                    .position(|s| s.head == head)
                    .expect("known head");
                let (size, ty, tag) = reply_header(vmm, &slots[slot]);
                if is_read {
                    assert_eq!((ty, size, tag), (117, 11 + IO, slot as u16 + 100));
                } else {
                    assert_eq!((ty, size, tag), (119, 11, slot as u16 + 200));
                }
                done += 1;
                if sent < count {
                    post(vmm, slot, sent);
                    sent += 1;
                }
            }
            vmm.kick();
        }
    }
}
