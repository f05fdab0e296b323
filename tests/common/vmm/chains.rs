//! Chains built afresh for each batch (`Vmm::submit`): pieces of any
//! shape in either RAM region, direct or indirect, every buffer between
//! guard bytes checked afterwards, writable ones pre-filled, readable ones
//! checked unchanged; a batch is one kick, and the device must signal its
//! interrupt.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

use super::{
    GuestRam, Vmm, AVAIL_GPA, FRESH_BYTE, GUARD, GUARD_BYTE, QSIZE, TIMEOUT, USED_EVENT_GPA,
    USED_GPA, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};

/// Which RAM a chain's buffer is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The RAM at 0 (with the rings).
    Low,
    /// The second, separate region if there is one, else the RAM at 0.
    High,
}

/// One piece of a descriptor chain.
#[derive(Clone, Debug)]
pub enum Seg {
    /// Device-readable buffer with this content.
    R(Vec<u8>, Place),
    /// Device-writable buffer of this size.
    W(u32, Place),
}

/// A readable piece in the high region.
pub fn rd(data: &[u8]) -> Seg {
    Seg::R(data.to_vec(), Place::High)
}
/// A readable piece in the RAM at 0.
pub fn rd0(data: &[u8]) -> Seg {
    Seg::R(data.to_vec(), Place::Low)
}
/// A writable piece in the high region.
pub fn wr(len: u32) -> Seg {
    Seg::W(len, Place::High)
}
/// A writable piece in the RAM at 0.
pub fn wr0(len: u32) -> Seg {
    Seg::W(len, Place::Low)
}

/// A chain to build afresh: its pieces, behind ring descriptors or an
/// indirect table.
#[derive(Clone, Debug)]
pub struct Chain {
    pub segs: Vec<Seg>,
    pub indirect: bool,
}

impl Chain {
    /// Ring descriptors (laid out backwards through the table: the device
    /// must follow `next`).
    pub fn direct(segs: Vec<Seg>) -> Chain {
        Chain {
            segs,
            indirect: false,
        }
    }

    /// One ring descriptor pointing at an indirect table.
    pub fn indirect(segs: Vec<Seg>) -> Chain {
        Chain {
            segs,
            indirect: true,
        }
    }

    /// Readable pieces from `readable`, writable pieces of `writable_sizes`,
    /// all in the high region, behind ring descriptors.
    pub fn simple(readable: &[&[u8]], writable_sizes: &[u32]) -> Chain {
        let mut segs: Vec<Seg> = readable.iter().map(|r| rd(r)).collect();
        segs.extend(writable_sizes.iter().map(|&w| wr(w)));
        Chain::direct(segs)
    }
}

/// Bookkeeping for a chain that has been made available to the device.
pub struct Posted {
    pub head: u16,
    writable: Vec<(u64, u32)>,
    readable: Vec<(u64, Vec<u8>)>,
    guards: Vec<u64>,
}

/// A chain the device put in the used ring.
#[derive(Debug)]
pub struct Completed {
    /// `len` of the used element.
    pub len: u32,
    /// The first `len` bytes of the writable buffers, concatenated.
    pub reply: Vec<u8>,
}

/// Where the chains' buffers and descriptors go: what is past the slots'
/// heap once the first chain is built, reused by each batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scratch {
    /// Start of the low arena (the heap's end at the first chain).
    low: u64,
    /// The high region (start, end), if there is one.
    high: Option<(u64, u64)>,
    /// First ring descriptor the chains may use.
    desc: u16,
    /// This batch's cursors.
    low_at: u64,
    high_at: u64,
    desc_at: u16,
}

impl Vmm {
    /// The chains' arenas, reset for a new batch.
    fn scratch(&mut self) -> &mut Scratch {
        if self.scratch.is_none() {
            let high = self
                .mem
                .iter()
                .map(|r| (r.start_addr().0, r.start_addr().0 + r.len()))
                .find(|&(start, _)| start >= self.mem_size);
            self.scratch = Some(Scratch {
                low: self.heap,
                high,
                desc: self.next_desc,
                low_at: 0,
                high_at: 0,
                desc_at: self.next_desc,
            });
        }
        self.scratch.as_mut().unwrap()
    }

    /// Room for `len` bytes (with `guard` bytes before and after) in the
    /// current batch's arena of `place`; the address after the first guard.
    fn scratch_buf(&mut self, len: u64, align: u64, guard: u64, place: Place) -> u64 {
        let mem_size = self.mem_size;
        let s = self.scratch();
        let (base, end, at) = match (place, s.high) {
            (Place::High, Some((start, end))) => (start, end, &mut s.high_at),
            _ => (s.low, mem_size, &mut s.low_at),
        };
        let start = (base + *at).next_multiple_of(align);
        let after = start + guard + len + guard;
        assert!(after <= end, "test ran out of guest buffer space");
        *at = after - base;
        start + guard
    }

    /// `n` consecutive ring descriptors for a chain of this batch (from
    /// the start again once the table's end is reached).
    fn scratch_descs(&mut self, n: u16) -> u16 {
        let s = self.scratch();
        if s.desc_at + n > QSIZE {
            s.desc_at = s.desc;
        }
        let first = s.desc_at;
        s.desc_at += n;
        first
    }

    /// A data buffer with guards on both sides.
    fn guarded_buf(&mut self, len: u32, place: Place, guards: &mut Vec<u64>) -> u64 {
        let buf = self.scratch_buf(u64::from(len), 1, GUARD, place);
        let guard = [GUARD_BYTE; GUARD as usize];
        self.write(buf - GUARD, &guard);
        self.write(buf + u64::from(len), &guard);
        guards.push(buf - GUARD);
        guards.push(buf + u64::from(len));
        buf
    }

    /// Writes chains into the descriptor table and avail ring, asks for an
    /// interrupt once the last of them is used, and kicks once.
    pub fn post_chains(&mut self, chains: &[Chain]) -> Vec<Posted> {
        let s = self.scratch();
        (s.low_at, s.high_at) = (0, 0);
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
                    Seg::R(data, place) => {
                        let a = self.guarded_buf(data.len() as u32, *place, &mut p.guards);
                        self.write(a, data);
                        p.readable.push((a, data.clone()));
                        bufs.push((a, data.len() as u32, 0));
                    }
                    Seg::W(len, place) => {
                        let a = self.guarded_buf(*len, *place, &mut p.guards);
                        self.write(a, &vec![FRESH_BYTE; *len as usize]);
                        p.writable.push((a, *len));
                        bufs.push((a, *len, VRING_DESC_F_WRITE));
                    }
                }
            }
            let n = bufs.len() as u16;
            // Flags and next of buffer `i`, linked to `next(i + 1)`.
            let link = |i: usize, flags: u16, next: &dyn Fn(usize) -> u16| {
                if i + 1 == bufs.len() {
                    (flags, 0)
                } else {
                    (flags | VRING_DESC_F_NEXT, next(i + 1))
                }
            };
            if chain.indirect {
                // One descriptor in the ring pointing at a table linked 0, 1, 2...
                let table = self.scratch_buf(u64::from(n) * 16, 64, 0, Place::Low);
                for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
                    let (f, next) = link(i, flags, &|j| j as u16);
                    self.mem
                        .write_desc(table + 16 * i as u64, addr, len, f, next);
                }
                let head = self.scratch_descs(1);
                self.set_ring_desc(head, table, u32::from(n) * 16, VRING_DESC_F_INDIRECT, 0);
                p.head = head;
            } else {
                // Laid out backwards through the table: the device must follow `next`.
                let first = self.scratch_descs(n);
                let index = |i: usize| first + n - 1 - i as u16;
                for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
                    let (f, next) = link(i, flags, &index);
                    self.set_ring_desc(index(i), addr, len, f, next);
                }
                p.head = index(0);
            }
            let slot = self.next_avail % QSIZE;
            self.mem
                .store_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), p.head);
            self.next_avail = self.next_avail.wrapping_add(1);
            posted.push(p);
        }
        self.publish(posted.len() as u16);
        posted
    }

    /// Publishes `n` chains put in the avail ring: forgets stale
    /// interrupts, asks (EVENT_IDX) for an interrupt once the last is used,
    /// kicks. (Stale ones are forgotten before the index moves: a polling
    /// device may serve the chains and signal at once, and draining after
    /// the index store lost that interrupt.)
    fn publish(&mut self, n: u16) {
        let _ = self.call.read();
        self.in_flight += n;
        if self.event_idx {
            let target = self.last_used.wrapping_add(n);
            self.mem.store_u16(USED_EVENT_GPA, target.wrapping_sub(1));
        }
        // Release store: the ring writes before the index.
        self.mem.store_u16(AVAIL_GPA + 2, self.next_avail);
        fence(Ordering::SeqCst);
        if self.kick_asked(self.kicked_avail, self.next_avail) {
            self.kicks_asked += 1;
        }
        self.kicked_avail = self.next_avail;
        self.kicks += 1;
        self.kick.write(1).expect("kick");
    }

    /// Waits until `n` more used elements appeared and an interrupt was
    /// signalled. Returns false on timeout if `tolerate_timeout` and none
    /// came back, panics otherwise.
    pub fn wait_used(&mut self, n: u16, timeout: Duration, tolerate_timeout: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut notified = false;
        loop {
            let done = self.used_idx().wrapping_sub(self.last_used);
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
            let left = deadline.saturating_duration_since(Instant::now());
            if self.wait_call(left.min(Duration::from_millis(100))) {
                notified = true;
            }
        }
    }

    /// Collects the used elements of `posted`, checks the guards and the
    /// readable buffers; returns them in posting order.
    pub fn collect(&mut self, posted: Vec<Posted>) -> Vec<Completed> {
        let n = posted.len() as u16;
        let mut results: Vec<Option<Completed>> = (0..posted.len()).map(|_| None).collect();
        for k in 0..n {
            let slot = self.last_used.wrapping_add(k) % QSIZE;
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
                all.extend(self.read_vec(addr, wlen as usize));
            }
            all.truncate(len as usize);
            results[i] = Some(Completed { len, reply: all });
        }
        self.last_used = self.last_used.wrapping_add(n);
        self.in_flight -= n;
        for p in &posted {
            for &g in &p.guards {
                assert_eq!(
                    self.read_vec(g, GUARD as usize),
                    vec![GUARD_BYTE; GUARD as usize],
                    "daemon wrote outside a descriptor's buffer (canary at GPA {g:#x})"
                );
            }
            for (addr, data) in &p.readable {
                assert_eq!(
                    &self.read_vec(*addr, data.len()),
                    data,
                    "daemon modified a device-readable buffer at GPA {addr:#x}"
                );
            }
        }
        results.into_iter().map(|r| r.unwrap()).collect()
    }

    /// Posts chains in one kick and waits for all of them.
    pub fn submit(&mut self, chains: &[Chain]) -> Vec<Completed> {
        let posted = self.post_chains(chains);
        self.wait_used(posted.len() as u16, TIMEOUT, false);
        self.collect(posted)
    }

    pub fn submit_one(&mut self, chain: Chain) -> Completed {
        self.submit(&[chain]).pop().unwrap()
    }

    /// One request: readable pieces, writable pieces; the bytes written.
    pub fn request(&mut self, readable: &[&[u8]], writable_sizes: &[u32]) -> Vec<u8> {
        self.submit_one(Chain::simple(readable, writable_sizes))
            .reply
    }

    /// Publishes a hand-made `head` in the avail ring; the used len if it
    /// came back within 2 s.
    pub fn post_raw_head(&mut self, head: u16) -> Option<u32> {
        let slot = self.next_avail % QSIZE;
        self.mem
            .store_u16(AVAIL_GPA + 4 + 2 * u64::from(slot), head);
        self.next_avail = self.next_avail.wrapping_add(1);
        self.publish(1);
        if !self.wait_used(1, Duration::from_secs(2), true) {
            return None;
        }
        let slot = self.last_used % QSIZE;
        let id = self.mem.load_u32(USED_GPA + 4 + 8 * u64::from(slot));
        let len = self.mem.load_u32(USED_GPA + 8 + 8 * u64::from(slot));
        assert_eq!(id, u32::from(head), "used id");
        self.last_used = self.last_used.wrapping_add(1);
        self.in_flight -= 1;
        Some(len)
    }
}
