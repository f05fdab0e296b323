//! Virtqueues built from the input, served by the crate's virtio layer
//! (`virtio::P9Backend`, serving on the calling thread) over a scratch share,
//! without a vhost-user socket: the harness plays the frontend, writing the
//! descriptor table, indirect tables, avail ring and buffers into guest
//! memory and calling `handle_event` as the framework's epoll thread would.
//!
//! Input: see `fuzz_common::chain_input` (a configuration byte with the
//! queue size, event idx and whether to serve a Tversion + Tattach first;
//! descriptors; indirect descriptors; avail ring heads; the data area).
//!
//! Properties, after every `handle_event`: it returns Ok; the used ring
//! holds exactly the chains the avail ring published (as `virtio-queue`
//! pops them, heads within the queue size), in order; a used length is no
//! more than the chain's writable bytes in guest memory, 0 for a chain with
//! a buffer outside guest memory or a readable buffer after a writable one,
//! and otherwise 0 or at least a 9P header, whose size field is the used
//! length and whose tag is the request's (when no other buffer overlaps
//! the reply or request header). Another `handle_event` with nothing new
//! in the ring adds nothing. After every input: nothing outside the share
//! changed.
//!
//! The avail idx may jump more than the queue size ahead of the device's
//! (this once made `process_queue` spin for ever; the device now leaves such
//! a queue alone until it is reset). FUZZ_CHAIN_AVAIL_JUMP=0 cuts the jump
//! to at most the queue size.

#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use fuzz_common::chain_input::*;
use fuzz_common::{changes_share, scratch_server, Scratch, Setup};
use libfuzzer_sys::fuzz_target;
use vhost_user_9p::protocol::{self, Header, HEADER_SIZE};
use vhost_user_9p::server::Server;
use vhost_user_9p::virtio::P9Backend;
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

struct State {
    server: Arc<Server>,
    scratch: Scratch,
    mem: GuestMemoryAtomic<GuestMemoryMmap>,
    zeros: Vec<u8>,
    /// Let the avail idx run more than the queue size ahead (unless
    /// FUZZ_CHAIN_AVAIL_JUMP=0).
    allow_jump: bool,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let (scratch, server) = scratch_server();
        let server = Arc::new(server);
        let ranges: Vec<(GuestAddress, usize)> = MEM_REGIONS
            .iter()
            .map(|&(a, l)| (GuestAddress(a), l))
            .collect();
        let mem = GuestMemoryAtomic::new(GuestMemoryMmap::from_ranges(&ranges).expect("memory"));
        Mutex::new(State {
            server,
            scratch,
            mem,
            zeros: vec![0; MEM_END as usize],
            allow_jump: std::env::var_os("FUZZ_CHAIN_AVAIL_JUMP").map_or(true, |v| v != "0"),
        })
    })
}

/// FUZZ_TRACE set: print each used element with the request and reply
/// headers (to read a reproducer).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// A descriptor as the device reads it.
#[derive(Debug, Clone, Copy)]
struct Buf {
    addr: u64,
    len: u32,
    write: bool,
}

impl Buf {
    /// Whether all of it is guest memory.
    fn inside(&self) -> bool {
        self.addr
            .checked_add(u64::from(self.len))
            .is_some_and(|end| end <= MEM_END)
    }
}

/// What the harness expects of one popped chain.
#[derive(Debug)]
struct Model {
    head: u16,
    bufs: Vec<Buf>,
    /// A readable buffer after a writable one, or a non-empty buffer
    /// outside guest memory: the chain must come back with length 0.
    bad: bool,
    /// Writable bytes inside guest memory.
    writable: u64,
    /// Addresses of the first request bytes (readable buffers before the
    /// first writable one), and of the first reply bytes.
    request_at: Vec<u64>,
    reply_at: Vec<u64>,
    /// The request header as it was before serving.
    request: Vec<u8>,
}

/// Guest addresses of the first `n` bytes of `bufs` (stopping at a buffer
/// outside memory).
fn addresses<'a>(bufs: impl Iterator<Item = &'a Buf>, n: usize) -> Vec<u64> {
    let mut at = Vec::with_capacity(n);
    for b in bufs {
        if at.len() == n {
            break;
        }
        if !b.inside() {
            break;
        }
        let take = (b.len as usize).min(n - at.len());
        at.extend((0..take as u64).map(|i| b.addr + i));
    }
    at
}

fn read_bytes(mem: &GuestMemoryMmap, at: &[u64]) -> Vec<u8> {
    at.iter()
        .map(|&a| mem.read_obj::<u8>(GuestAddress(a)).expect("inside memory"))
        .collect()
}

/// Pops what the device will pop from `next_avail` on, with a queue of its
/// own over the same memory, and models each chain.
fn model_chains(
    mem: &GuestMemoryMmap,
    size: u16,
    event_idx: bool,
    next_avail: u16,
) -> (Vec<Model>, u16) {
    let mut q = Queue::new(MAX_QUEUE_SIZE).unwrap();
    q.set_size(size);
    q.try_set_desc_table_address(GuestAddress(DESC_TABLE))
        .unwrap();
    q.try_set_avail_ring_address(GuestAddress(AVAIL_RING))
        .unwrap();
    q.try_set_used_ring_address(GuestAddress(USED_RING))
        .unwrap();
    q.set_event_idx(event_idx);
    q.set_ready(true);
    q.set_next_avail(next_avail);
    let mut models = Vec::new();
    while let Some(chain) = q.pop_descriptor_chain(mem) {
        let head = chain.head_index();
        let bufs: Vec<Buf> = chain
            .map(|d| Buf {
                addr: d.addr().0,
                len: d.len(),
                write: d.is_write_only(),
            })
            .collect();
        // An empty buffer adds no bytes to either area: the device need not
        // mind where it is, nor that it is in the wrong order.
        let mut seen_write = false;
        let mut bad = false;
        for b in bufs.iter().filter(|b| b.len > 0) {
            bad |= !b.write && seen_write;
            seen_write |= b.write;
            bad |= !b.inside();
        }
        let writable = bufs
            .iter()
            .filter(|b| b.write && b.inside())
            .map(|b| u64::from(b.len))
            .sum();
        let request_at = addresses(
            bufs.iter().filter(|b| b.len > 0).take_while(|b| !b.write),
            protocol::TWRITE_HEADER_SIZE,
        );
        let reply_at = addresses(bufs.iter().filter(|b| b.write), HEADER_SIZE);
        let request = read_bytes(mem, &request_at);
        models.push(Model {
            head,
            bufs,
            bad,
            writable,
            request_at,
            reply_at,
            request,
        });
    }
    (models, q.next_avail())
}

/// A blocking Tlock that conflicts waits 500 ms in the server: clears its
/// BLOCK flag in guest memory (as `frames` does), so a queue full of them
/// cannot look like a hang. The flag byte may lie inside another chain's
/// request (or make another request a Tlock), so every request is read
/// again until no Tlock blocks: each round clears a bit, so it ends.
fn unblock_locks(mem: &GuestMemoryMmap, models: &mut [Model]) {
    const FLAGS: usize = HEADER_SIZE + 5;
    loop {
        let mut cleared = false;
        for m in models.iter_mut() {
            m.request = read_bytes(mem, &m.request_at);
            if m.request.len() > FLAGS
                && m.request[4] == protocol::Tlock::TYPE
                && m.request[FLAGS] & 1 != 0
            {
                m.request[FLAGS] &= !1;
                mem.write_obj(m.request[FLAGS], GuestAddress(m.request_at[FLAGS]))
                    .unwrap();
                cleared = true;
            }
        }
        if !cleared {
            return;
        }
    }
}

fn write_u16(mem: &GuestMemoryMmap, addr: u64, v: u16) {
    mem.write_obj(v.to_le(), GuestAddress(addr)).unwrap();
}

fn read_u16(mem: &GuestMemoryMmap, addr: u64) -> u16 {
    u16::from_le(mem.read_obj(GuestAddress(addr)).unwrap())
}

fn used_idx(mem: &GuestMemoryMmap) -> u16 {
    read_u16(mem, USED_RING + 2)
}

/// The used element in slot `i` (mod size): (id, len).
fn used_elem(mem: &GuestMemoryMmap, size: u16, i: u16) -> (u32, u32) {
    let at = USED_RING + 4 + 8 * u64::from(i % size);
    let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
    let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
    (u32::from_le(id), u32::from_le(len))
}

fn kick(backend: &P9Backend, vring: &VringRwLock) {
    backend
        .handle_event(0, EventSet::IN, std::slice::from_ref(vring), 0)
        .expect("handle_event");
}

/// Serves one handshake frame on a chain of the harness's own (an
/// indirect table: any queue size can hold it), checking the reply type.
fn handshake_frame(
    mem: &GuestMemoryMmap,
    backend: &P9Backend,
    vring: &VringRwLock,
    size: u16,
    idx: u16,
    frame: &[u8],
    reply_type: u8,
) {
    let request = DATA_BASE;
    let reply = DATA_BASE + 0x1000;
    mem.write_slice(frame, GuestAddress(request)).unwrap();
    let table = [
        Desc::data(0, frame.len() as u16, false, Some(1)).bytes(),
        Desc::data(0x1000, 0x1000, true, None).bytes(),
    ];
    mem.write_slice(table.as_flattened(), GuestAddress(INDIRECT_BASE))
        .unwrap();
    mem.write_slice(&Desc::indirect(0, 2).bytes(), GuestAddress(DESC_TABLE))
        .unwrap();
    write_u16(mem, AVAIL_RING + 4 + 2 * u64::from(idx % size), 0);
    write_u16(mem, AVAIL_RING + 2, idx.wrapping_add(1));
    kick(backend, vring);
    assert_eq!(used_idx(mem), idx.wrapping_add(1), "handshake not served");
    let (id, len) = used_elem(mem, size, idx);
    let mut header = [0u8; HEADER_SIZE];
    mem.read_slice(&mut header, GuestAddress(reply)).unwrap();
    let h = Header::parse(&header).expect("handshake reply");
    assert_eq!(
        (id, len, h.msg_type),
        (0, h.size, reply_type),
        "handshake reply {h:?}"
    );
}

/// Checks the used ring after a `handle_event` that should have returned
/// `models` (from `used_start` on). `count` counts, per guest byte, the
/// writable buffers of every chain of the input over it.
fn check_used(mem: &GuestMemoryMmap, size: u16, used_start: u16, models: &[Model], count: &[u8]) {
    let expected: Vec<&Model> = models.iter().filter(|m| m.head < size).collect();
    let used = used_idx(mem).wrapping_sub(used_start);
    assert_eq!(
        usize::from(used),
        expected.len(),
        "used idx moved by {used}, for {} chains popped ({} with a head in the queue)",
        models.len(),
        expected.len()
    );
    for (i, m) in expected.iter().enumerate() {
        let (id, len) = used_elem(mem, size, used_start.wrapping_add(i as u16));
        if trace() {
            let reply = read_bytes(mem, &m.reply_at);
            eprintln!(
                "chain {id}: request {:02x?} ({} buffers) -> used {len}, reply {reply:02x?}",
                m.request,
                m.bufs.len()
            );
        }
        assert_eq!(id, u32::from(m.head), "used element {i}: {m:?}");
        assert!(
            u64::from(len) <= m.writable,
            "used length {len} over the chain's {} writable bytes: {m:?}",
            m.writable
        );
        if m.bad {
            assert_eq!(len, 0, "a bad chain returned with a length: {m:?}");
            continue;
        }
        if len == 0 {
            continue;
        }
        assert!(
            len as usize >= HEADER_SIZE,
            "used length {len} under a 9P header: {m:?}"
        );
        // Another chain's reply may have been written over this one.
        let reply_clean =
            m.reply_at.len() == HEADER_SIZE && m.reply_at.iter().all(|&a| count[a as usize] == 1);
        if !reply_clean {
            continue;
        }
        let reply = read_bytes(mem, &m.reply_at);
        let h = Header::parse(&reply).unwrap_or_else(|e| panic!("reply header {e}: {m:?}"));
        assert_eq!(h.size, len, "reply size field vs used length: {m:?}");
        // A reply may have been written over the request before it was
        // read.
        let request_clean = m.request.len() >= HEADER_SIZE
            && m.request_at[..HEADER_SIZE]
                .iter()
                .all(|&a| count[a as usize] == 0);
        if request_clean {
            let tag = u16::from_le_bytes([m.request[5], m.request[6]]);
            assert_eq!(h.tag, tag, "reply tag: {m:?}");
        }
    }
}

/// Adds the chains' writable buffers to the per-byte counts; returns
/// whether one of them lies over the rings, the descriptor table or an
/// indirect table (the device may then see other chains than the model).
fn count_writes(models: &[Model], tables: &[(u64, u64)], count: &mut [u8]) -> bool {
    let mut wild = false;
    for b in models.iter().flat_map(|m| &m.bufs) {
        if !b.write || !b.inside() || b.len == 0 {
            continue;
        }
        let (start, end) = (b.addr, b.addr + u64::from(b.len));
        wild |= start < DATA_BASE;
        wild |= tables
            .iter()
            .any(|&(a, l)| start < a.saturating_add(l) && a < end);
        for c in &mut count[start as usize..end as usize] {
            *c = c.saturating_add(1);
        }
    }
    wild
}

fuzz_target!(|bytes: &[u8]| {
    let input = ChainInput::parse(bytes);
    let mut guard = state().lock().unwrap_or_else(|e| e.into_inner());
    let State {
        server,
        scratch,
        mem: atomic,
        zeros,
        allow_jump,
    } = &mut *guard;
    let mem_ref = atomic.memory();
    let mem: &GuestMemoryMmap = &mem_ref;
    mem.write_slice(zeros, GuestAddress(0)).unwrap();

    let size = input.queue_size();
    let event_idx = input.config & CONFIG_EVENT_IDX != 0;
    let backend = P9Backend::new(Arc::clone(server), "fuzz");
    backend.update_memory(atomic.clone()).unwrap();
    backend.set_event_idx(event_idx);
    let vring = VringRwLock::new(atomic.clone(), MAX_QUEUE_SIZE).unwrap();
    vring.set_queue_size(size);
    vring
        .set_queue_info(DESC_TABLE, AVAIL_RING, USED_RING)
        .unwrap();
    vring.set_queue_event_idx(event_idx);
    vring.set_queue_ready(true);
    vring.set_enabled(true);

    // Where the fuzzer's chains start in the rings.
    let mut next = 0u16;
    if input.config & CONFIG_HANDSHAKE != 0 {
        let [version, attach] = Setup::from_byte(input.setup).handshake();
        handshake_frame(
            mem,
            &backend,
            &vring,
            size,
            0,
            &version,
            protocol::Rversion::TYPE,
        );
        handshake_frame(
            mem,
            &backend,
            &vring,
            size,
            1,
            &attach,
            protocol::Rattach::TYPE,
        );
        next = 2;
        mem.write_slice(zeros, GuestAddress(0)).unwrap();
    }

    // The fuzzer's memory image.
    for (i, d) in input.descs.iter().enumerate() {
        mem.write_slice(&d.bytes(), GuestAddress(DESC_TABLE + 16 * i as u64))
            .unwrap();
    }
    for (i, d) in input.indirect.iter().enumerate() {
        mem.write_slice(&d.bytes(), GuestAddress(INDIRECT_BASE + 16 * i as u64))
            .unwrap();
    }
    mem.write_slice(&input.data, GuestAddress(DATA_BASE))
        .unwrap();
    write_u16(mem, AVAIL_RING + 2, next);
    write_u16(mem, USED_RING + 2, next);
    write_u16(mem, AVAIL_RING + 4 + 2 * u64::from(size), input.used_event);
    // Indirect tables the main table points to: a reply written over one
    // changes chains the model has already walked.
    let tables: Vec<(u64, u64)> = input
        .descs
        .iter()
        .map(Desc::raw)
        .filter(|&(_, _, flags, _)| flags & u16::from(INDIRECT) != 0)
        .map(|(addr, len, _, _)| (addr, u64::from(len)))
        .collect();

    let k = input.heads.len();
    let mut delta = k + usize::from(input.extra);
    if !*allow_jump && delta > usize::from(size) {
        delta %= usize::from(size) + 1;
    }
    let rounds: &[(usize, usize)] = if input.config & CONFIG_TWO_ROUNDS != 0 {
        &[(0, k / 2), (k / 2, k)]
    } else {
        &[(0, k)]
    };
    let mut count = vec![0u8; MEM_END as usize];
    let mut wild = false;
    let mut changed = false;
    let mut next_avail = next;
    for (r, &(from, to)) in rounds.iter().enumerate() {
        for (j, &head) in input.heads[from..to].iter().enumerate() {
            let slot = next.wrapping_add((from + j) as u16) % size;
            write_u16(mem, AVAIL_RING + 4 + 2 * u64::from(slot), u16::from(head));
        }
        let published = if r + 1 == rounds.len() {
            delta
        } else {
            to.min(delta)
        };
        write_u16(mem, AVAIL_RING + 2, next.wrapping_add(published as u16));
        let used_start = used_idx(mem);
        let (mut models, popped_to) = model_chains(mem, size, event_idx, next_avail);
        next_avail = popped_to;
        unblock_locks(mem, &mut models);
        changed |= models
            .iter()
            .any(|m| m.request.len() >= HEADER_SIZE && changes_share(m.request[4]));
        wild |= count_writes(&models, &tables, &mut count);
        kick(&backend, &vring);
        if !wild {
            check_used(mem, size, used_start, &models, &count);
        }
    }
    // Nothing new: nothing more used.
    let before = used_idx(mem);
    kick(&backend, &vring);
    if !wild {
        assert_eq!(used_idx(mem), before, "used ring moved with nothing new");
    }

    drop(backend); // the session's fids are clunked
    drop(vring);
    scratch.check_outside();
    if changed || !scratch.intact() {
        scratch.restock().expect("restock the share");
    }
});
