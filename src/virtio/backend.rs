//! The vhost-user backend of the virtio-9p device: features, config space
//! (the mount tag), and the request queue.
//!
//! The queue thread (the framework's epoll thread) pops descriptor chains.
//! With a worker pool it reads each request's header: a request that only
//! looks at metadata (a walk, a getattr, a clunk, a readdir...), or one
//! that is alone in the queue and cannot wait for long, it serves itself,
//! sparing the hop to another thread (see `served_by_queue_thread`); any
//! other it hands to the pool (see `pool.rs`), where a worker views the
//! chain, serves the request,
//! writes the reply and returns the chain to the used ring, in whatever
//! order requests finish, so a slow one (data, an fsync, a lock, an open
//! that waits for a lease) holds up only itself. Without a pool it serves
//! each request itself before popping the next.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use log::debug;
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::{DescriptorChain, QueueT};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use super::chain::{self, ChainView, Peek};
use super::pool::{Pool, Request};
use crate::protocol::{self, Header};
use crate::server::{Server, Session, MAX_MSIZE};
use crate::sync::Locked;

/// Feature bit: the device has a mount tag in its config space.
pub const VIRTIO_9P_MOUNT_TAG: u64 = 0;
/// Number of request queues (virtio-9p has one).
pub const NUM_QUEUES: usize = 1;
/// Largest queue size offered.
pub const MAX_QUEUE_SIZE: usize = 1024;
/// Longest mount tag (the config's tag_len is 16 bits, but QEMU caps a
/// vhost-user config at 256 bytes).
pub const MAX_TAG_LEN: usize = 255;

/// Descriptors per chain a worker's buffers hold before they grow (the
/// Linux client uses at most 128 scatter-gather entries per request).
const CHAIN_CAPACITY: usize = 512;

/// The default `--thread-pool-size`: one worker per CPU, at least 2.
pub fn default_thread_pool_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Per-worker buffers, reused across requests: once a worker has its
/// buffers, serving a Tread or Twrite allocates nothing.
struct Worker {
    chain: ChainView,
    request: Vec<u8>,
    reply: Vec<u8>,
}

impl Worker {
    fn new() -> Worker {
        Worker {
            chain: ChainView::with_capacity(CHAIN_CAPACITY),
            request: Vec::with_capacity(4096),
            reply: Vec::with_capacity(8192),
        }
    }
}

/// Chains the queue thread pops under one hold of the vring lock and
/// hands to the pool at once.
const BATCH: usize = 64;

/// The queue thread's state.
struct QueueThread {
    /// Its buffers, when it serves requests itself.
    worker: Worker,
    /// Chains popped, on their way to the pool.
    batch: Vec<DescriptorChain<Memory>>,
    /// Requests of a batch handed to the pool.
    jobs: Vec<Job>,
    poll: Polling,
}

/// How long the queue thread watches the queue once it runs dry before it
/// sleeps on the guest's kick (`--poll-us`): a request that comes within
/// that time is served without the wake-up. The window adapts when a kick
/// wakes the thread, by how long it slept (as KVM's halt polling does): a
/// kick within `most` of the thread's stopping would have been caught by a
/// longer window, which doubles (to at most `most`); a kick after longer
/// than `most` could not have been, and the window halves, down to none.
/// So a guest that sends nothing costs nothing, one whose requests come
/// further apart than `most` soon costs next to nothing, and a burst of
/// requests close together soon has the whole window. (Halving whenever
/// watching found nothing, as this did first, kept the window below the
/// gap for ever: halved by the miss, doubled back by the kick.)
struct Polling {
    most: Duration,
    window: Duration,
    /// When the thread last stopped watching.
    stopped: Option<Instant>,
}

/// The least window worth watching for (below, none).
const LEAST_POLL: Duration = Duration::from_micros(1);

/// A window growing from none starts at this share of `most`.
const GROW_START_DIVISOR: u32 = 4;

impl Polling {
    fn new(most: Duration) -> Polling {
        Polling {
            most,
            window: most,
            stopped: None,
        }
    }

    /// A kick woke the thread: grow the window if watching longer would
    /// have caught it, else shrink it.
    fn woken(&mut self) {
        let Some(stopped) = self.stopped.take() else {
            return;
        };
        if self.most.is_zero() {
            return;
        }
        if stopped.elapsed() < self.most {
            let start = (self.most / GROW_START_DIVISOR).max(LEAST_POLL);
            self.window = (self.window * 2).max(start).min(self.most);
        } else {
            self.window /= 2;
            if self.window < LEAST_POLL {
                self.window = Duration::ZERO;
            }
        }
    }
}

/// Requests that only look at metadata: served on the queue thread even
/// with a pool, since they never wait on anything but the filesystem's
/// metadata and the hop to a worker would cost more than serving them.
fn metadata_only(msg_type: u8) -> bool {
    use protocol::*;
    [
        Tattach::TYPE,
        Twalk::TYPE,
        Tgetattr::TYPE,
        Tclunk::TYPE,
        Treaddir::TYPE,
        Treadlink::TYPE,
        Txattrwalk::TYPE,
        Tstatfs::TYPE,
        Tstat::TYPE,
    ]
    .contains(&msg_type)
}

/// Largest Tread/Twrite the queue thread serves itself when nothing else
/// is waiting (one request of the usual msize of 512000; well under a
/// millisecond from the host's page cache); larger ones go to the pool.
const QUICK_DATA: u32 = 512 * 1024;

/// Whether the queue thread serves a request itself rather than hand it to
/// the pool: metadata always; and when it is the only request in sight
/// (nothing else popped, nothing in the pool), anything that cannot wait
/// for long (not an open, which may wait for a lease, a lock, an fsync, or
/// a large read or write). A request served here holds up only requests
/// that arrive meanwhile, for as long as a worker would take to serve it.
fn served_by_queue_thread(peek: &Peek, alone: bool) -> bool {
    use protocol::*;
    if metadata_only(peek.msg_type) {
        return true;
    }
    if !alone {
        return false;
    }
    let may_wait = [
        Tlopen::TYPE,
        Tlcreate::TYPE,
        Topen::TYPE,
        Tcreate::TYPE,
        Tlock::TYPE,
        Tfsync::TYPE,
        Twstat::TYPE,
        Tflush::TYPE,
        Tversion::TYPE,
    ];
    match peek.count {
        Some(count) => count <= QUICK_DATA,
        None => {
            !may_wait.contains(&peek.msg_type)
                && peek.msg_type != Tread::TYPE
                && peek.msg_type != Twrite::TYPE
        }
    }
}

/// Guest memory as a request holds it: the mapping stays valid while a
/// worker uses it, even if the VMM replaces the memory table meanwhile.
type Memory = Arc<GuestMemoryMmap>;

/// A request on its way from the queue thread to a worker.
struct Job {
    vring: VringRwLock,
    chain: DescriptorChain<Memory>,
    peek: Option<Peek>,
}

impl Request for Job {
    fn tag(&self) -> Option<u16> {
        self.peek.map(|p| p.tag)
    }

    fn flushes(&self) -> Option<u16> {
        self.peek.and_then(|p| p.oldtag)
    }
}

/// What the queue thread and the workers share: the server and the one
/// session of the device.
struct Core {
    server: Arc<Server>,
    session: Session,
}

pub struct P9Backend {
    core: Arc<Core>,
    tag: Vec<u8>,
    mem: Mutex<Option<GuestMemoryAtomic<GuestMemoryMmap>>>,
    event_idx: Mutex<bool>,
    /// Held by the queue thread while it processes the queue.
    queue_thread: Mutex<QueueThread>,
    pool: Option<Pool<Job>>,
}

impl P9Backend {
    /// A backend that serves every request on the queue thread.
    pub fn new(server: Arc<Server>, tag: &str) -> Self {
        P9Backend {
            core: Arc::new(Core {
                server,
                session: Session::new(),
            }),
            tag: tag.as_bytes().to_vec(),
            mem: Mutex::new(None),
            event_idx: Mutex::new(false),
            queue_thread: Mutex::new(QueueThread {
                worker: Worker::new(),
                batch: Vec::new(),
                jobs: Vec::new(),
                poll: Polling::new(Duration::ZERO),
            }),
            pool: None,
        }
    }

    /// A backend that serves requests on `threads` worker threads (0 or 1:
    /// on the queue thread, like [`P9Backend::new`]).
    pub fn with_thread_pool(server: Arc<Server>, tag: &str, threads: usize) -> io::Result<Self> {
        let mut backend = Self::new(server, tag);
        if threads >= 2 {
            let core = Arc::clone(&backend.core);
            backend.queue_thread().batch.reserve(BATCH);
            backend.queue_thread().jobs.reserve(BATCH);
            backend.pool = Some(Pool::new(
                threads,
                MAX_QUEUE_SIZE,
                Worker::new,
                move |worker: &mut Worker, job: Job| core.complete(worker, &job.vring, &job.chain),
            )?);
        }
        Ok(backend)
    }

    /// Watch the queue for up to `most` once it runs dry before sleeping
    /// on the guest's kick (see `Polling`; zero: never).
    pub fn with_polling(self, most: Duration) -> Self {
        self.queue_thread().poll = Polling::new(most);
        self
    }

    /// Worker threads serving requests (0: the queue thread serves them).
    pub fn thread_pool_size(&self) -> usize {
        self.pool.as_ref().map_or(0, Pool::threads)
    }

    /// The device's config space: `le16 tag_len` then the tag.
    fn config_space(&self) -> Vec<u8> {
        let mut config = (self.tag.len() as u16).to_le_bytes().to_vec();
        config.extend_from_slice(&self.tag);
        config
    }

    fn queue_thread(&self) -> MutexGuard<'_, QueueThread> {
        self.queue_thread.locked()
    }

    /// Pops every available request of the queue and serves it or hands it
    /// to the pool.
    fn process_queue(&self, vring: &VringRwLock) -> io::Result<()> {
        let Some(atomic) = self.mem.locked().clone() else {
            return Ok(());
        };
        let mem: Memory = atomic.memory().into_inner();
        let mut queue_thread = self.queue_thread();
        let QueueThread {
            worker,
            batch,
            jobs,
            poll,
        } = &mut *queue_thread;
        poll.woken();
        let result = self.serve_queue(vring, &mem, worker, batch, jobs, poll);
        poll.stopped = Some(Instant::now());
        result
    }

    /// `process_queue`'s work, the queue thread's state at hand.
    fn serve_queue(
        &self,
        vring: &VringRwLock,
        mem: &Memory,
        worker: &mut Worker,
        batch: &mut Vec<DescriptorChain<Memory>>,
        jobs: &mut Vec<Job>,
        poll: &mut Polling,
    ) -> io::Result<()> {
        loop {
            vring.disable_notification().map_err(io::Error::other)?;
            // Whether watching saw a request not yet popped.
            let mut seen = false;
            loop {
                let ready = {
                    let mut state = vring.get_mut();
                    let queue = state.get_queue_mut();
                    // Not ready: stopped (GET_VRING_BASE); the rest waits.
                    let ready = queue.ready();
                    let max = if self.pool.is_some() { BATCH } else { 1 };
                    while ready && batch.len() < max {
                        match queue.pop_descriptor_chain(Arc::clone(mem)) {
                            Some(chain) => batch.push(chain),
                            None => break,
                        }
                    }
                    ready
                };
                if batch.is_empty() {
                    if !ready {
                        return Ok(());
                    }
                    // Dry: watch for the next request a while (Polling);
                    // not again if what it saw could not be popped.
                    if !seen && !poll.window.is_zero() && watch(vring, mem, poll.window) {
                        seen = true;
                        continue;
                    }
                    break;
                }
                seen = false;
                match &self.pool {
                    Some(pool) => {
                        // Served in order, the quick ones here first: a
                        // Tflush reaches the pool after every earlier
                        // request of the batch is answered or submitted.
                        let alone = batch.len() == 1 && pool.is_idle();
                        // (A gateway's requests all wait on the upstream:
                        // the queue thread stays free for the next ones and
                        // for a Tflush that must reach the upstream.)
                        let inline = self.core.server.answers_locally();
                        for chain in batch.drain(..) {
                            let peek = chain::peek(&chain);
                            if let Some(oldtag) = peek.and_then(|p| p.oldtag) {
                                // Ask the request to end, if it waits.
                                self.core.server.flushing(&self.core.session, oldtag);
                            }
                            if inline && peek.is_some_and(|p| served_by_queue_thread(&p, alone)) {
                                self.core.complete(worker, vring, &chain);
                            } else {
                                let vring = vring.clone();
                                jobs.push(Job { vring, chain, peek });
                            }
                        }
                        pool.submit(jobs.drain(..));
                    }
                    None => {
                        for chain in batch.drain(..) {
                            self.core.complete(worker, vring, &chain);
                        }
                    }
                }
            }
            if !vring.enable_notification().map_err(io::Error::other)? {
                break;
            }
            if avail_ring_is_broken(vring, mem) {
                // enable_notification sees "more" for ever, and popping
                // finds nothing: the queue waits for the driver to reset it.
                crate::warn_limited!(
                    "the guest's avail index is more than the queue size ahead of the \
                     device: ignoring the queue until the driver resets it"
                );
                break;
            }
        }
        Ok(())
    }
}

/// Watches the avail ring for up to `window`: whether a request came.
fn watch(vring: &VringRwLock, mem: &Memory, window: Duration) -> bool {
    let start = Instant::now();
    loop {
        {
            let state = vring.get_ref();
            let queue = state.get_queue();
            let next = std::num::Wrapping(queue.next_avail());
            match queue.avail_idx(&**mem, std::sync::atomic::Ordering::Acquire) {
                // (More than the queue holds: a broken ring, not a request.)
                Ok(avail) if avail != next => return (avail - next).0 <= queue.size(),
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        if start.elapsed() >= window {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Whether the avail ring's index is further ahead of the device's next
/// entry than the queue has entries (a broken or hostile driver): no chain
/// can be popped (virtio-queue refuses it), yet the index says there is
/// more, so serving would spin.
fn avail_ring_is_broken(vring: &VringRwLock, mem: &Memory) -> bool {
    let state = vring.get_ref();
    let queue = state.get_queue();
    match queue.avail_idx(&**mem, std::sync::atomic::Ordering::Acquire) {
        Ok(avail) => (avail - std::num::Wrapping(queue.next_avail())).0 > queue.size(),
        Err(_) => true,
    }
}

impl Core {
    /// Serves the request in `chain` and returns the chain to the guest,
    /// signalling it if it asked to be.
    fn complete(&self, worker: &mut Worker, vring: &VringRwLock, chain: &DescriptorChain<Memory>) {
        let head = chain.head_index();
        let used = match worker.chain.load(chain) {
            Ok(()) => self.serve(worker),
            Err(e) => {
                crate::warn_limited!("dropping a bad descriptor chain: {e:?}");
                0
            }
        };
        // The vring lock is held only to publish the used element and
        // decide on the interrupt.
        let notify = {
            let mut state = vring.get_mut();
            if let Err(e) = state.add_used(head, used) {
                // A head the guest made up: nothing to return it to.
                crate::warn_limited!("cannot return descriptor chain {head}: {e}");
                return;
            }
            state.needs_notification()
        };
        let notify = notify.unwrap_or_else(|e| {
            crate::warn_limited!("cannot read the used event index: {e}");
            true
        });
        if notify {
            if let Err(e) = vring.signal_used_queue() {
                crate::warn_limited!("cannot signal the used queue: {e}");
            }
        }
    }

    /// Serves the request in the loaded chain; returns the bytes written to
    /// the chain's writable area (0: chain returned without a reply).
    fn serve(&self, worker: &mut Worker) -> u32 {
        let Worker {
            chain,
            request,
            reply,
        } = worker;
        let mut header = [0u8; protocol::HEADER_SIZE];
        if chain.gather(0, &mut header) < header.len() {
            crate::warn_limited!("dropping a request shorter than a 9P header");
            return 0;
        }
        let Ok(h) = Header::parse(&header) else {
            return 0;
        };
        let size = h.size as usize;
        if size < protocol::HEADER_SIZE || size > chain.readable_len() || h.size > MAX_MSIZE {
            debug!(
                "request size {} vs {} readable bytes",
                h.size,
                chain.readable_len()
            );
            let size = self
                .server
                .refuse(&self.session, h.tag, libc::EMSGSIZE, reply);
            return self.finish(chain, h.tag, size, reply);
        }
        // Twrite's data stays in guest memory: copy only its fixed fields.
        let fixed = if h.msg_type == protocol::Twrite::TYPE {
            size.min(protocol::TWRITE_HEADER_SIZE)
        } else {
            size
        };
        request.resize(fixed, 0);
        chain.gather(0, request);
        let (mut source, mut sink) =
            chain.data_areas(fixed, size - fixed, protocol::RREAD_HEADER_SIZE);
        let size = self
            .server
            .serve(&self.session, request, &mut source, &mut sink, reply);
        self.finish(chain, h.tag, size, reply)
    }

    /// Writes the reply header (and, but for Rread, the whole reply) into
    /// the chain: `size` bytes on the wire (0: no reply). Returns the used
    /// length.
    fn finish(&self, chain: &ChainView, tag: u16, size: u32, reply: &mut Vec<u8>) -> u32 {
        if size == 0 {
            return 0;
        }
        if size as usize > chain.writable_len() {
            // Too big for the client's buffer: say so if even that fits.
            self.server
                .refuse(&self.session, tag, libc::EMSGSIZE, reply);
            if reply.len() > chain.writable_len() {
                crate::warn_limited!("reply buffer of {} bytes too small", chain.writable_len());
                return 0;
            }
            chain.scatter(0, reply);
            return reply.len() as u32;
        }
        chain.scatter(0, reply);
        size
    }
}

impl VhostUserBackend for P9Backend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | (1 << VIRTIO_9P_MOUNT_TAG)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    }

    fn set_event_idx(&self, enabled: bool) {
        *self.event_idx.locked() = enabled;
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let config = self.config_space();
        (offset as usize..offset as usize + size as usize)
            .map(|i| config.get(i).copied().unwrap_or(0))
            .collect()
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        // The framework signals it to stop the queue thread when the VMM
        // disconnects; without one, shutting down would wait forever.
        new_event_consumer_and_notifier(EventFlag::NONBLOCK | EventFlag::CLOEXEC).ok()
    }

    fn stop_vring(&self, _queue_index: u32) -> io::Result<()> {
        // The queue is marked not ready: once the queue thread is done with
        // its current pass it pops nothing more. Then wait for the requests
        // it handed out, so the used ring is complete when the VMM reads
        // where the queue stopped.
        drop(self.queue_thread());
        if let Some(pool) = &self.pool {
            pool.drain();
        }
        Ok(())
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.mem.locked() = Some(mem);
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            return Err(io::Error::other(format!("unexpected event set {evset:?}")));
        }
        match vrings.get(device_event as usize) {
            Some(vring) => self.process_queue(vring),
            None => Err(io::Error::other(format!(
                "unknown device event {device_event}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOST: Duration = Duration::from_micros(64);

    /// Wakes `poll` as if it had slept `slept`.
    fn wake_after(poll: &mut Polling, slept: Duration) {
        poll.stopped = Instant::now().checked_sub(slept);
        poll.woken();
    }

    #[test]
    fn kicks_long_after_the_thread_stopped_halve_the_window_to_nothing() {
        let mut poll = Polling::new(MOST);
        let mut windows = Vec::new();
        for _ in 0..8 {
            wake_after(&mut poll, MOST * 2);
            windows.push(poll.window.as_micros());
        }
        assert_eq!(windows, [32, 16, 8, 4, 2, 1, 0, 0]);
    }

    #[test]
    fn kicks_soon_after_the_thread_stopped_grow_the_window_past_their_gap() {
        let mut poll = Polling::new(MOST);
        for _ in 0..10 {
            wake_after(&mut poll, MOST * 2);
        }
        assert!(poll.window.is_zero());
        // Kicks 40 µs after it stopped: the window grows from a quarter of
        // MOST past the gap, to at most MOST (the old rule halved a window
        // that found nothing and doubled it back, never getting past it).
        let mut windows = Vec::new();
        for _ in 0..4 {
            wake_after(&mut poll, Duration::from_micros(40));
            windows.push(poll.window.as_micros());
        }
        assert_eq!(windows, [16, 32, 64, 64]);
        // Off: never grows.
        let mut off = Polling::new(Duration::ZERO);
        wake_after(&mut off, Duration::ZERO);
        assert!(off.window.is_zero());
    }
}
