//! The vhost-user backend of the virtio-9p device: features, config space
//! (the mount tag), and the request queue.

use std::io;
use std::sync::{Arc, Mutex};

use log::{debug, warn};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use super::chain::ChainView;
use crate::protocol::{self, DecodeError, Header, Tmessage};
use crate::server::{self, Server, Session, MAX_MSIZE};

/// Feature bit: the device has a mount tag in its config space.
pub const VIRTIO_9P_MOUNT_TAG: u64 = 0;
/// Number of request queues (virtio-9p has one).
pub const NUM_QUEUES: usize = 1;
/// Largest queue size offered.
pub const MAX_QUEUE_SIZE: usize = 1024;
/// Longest mount tag (the config's tag_len is 16 bits, but QEMU caps a
/// vhost-user config at 256 bytes).
pub const MAX_TAG_LEN: usize = 255;

/// Per-worker buffers, reused across requests.
struct Worker {
    chain: ChainView,
    request: Vec<u8>,
    reply: Vec<u8>,
}

pub struct P9Backend {
    server: Arc<Server>,
    session: Session,
    tag: Vec<u8>,
    mem: Mutex<Option<GuestMemoryAtomic<GuestMemoryMmap>>>,
    event_idx: Mutex<bool>,
    worker: Mutex<Worker>,
}

impl P9Backend {
    pub fn new(server: Arc<Server>, tag: &str) -> Self {
        P9Backend {
            server,
            session: Session::new(),
            tag: tag.as_bytes().to_vec(),
            mem: Mutex::new(None),
            event_idx: Mutex::new(false),
            worker: Mutex::new(Worker {
                chain: ChainView::new(),
                request: Vec::new(),
                reply: Vec::new(),
            }),
        }
    }

    /// The device's config space: `le16 tag_len` then the tag.
    fn config_space(&self) -> Vec<u8> {
        let mut config = (self.tag.len() as u16).to_le_bytes().to_vec();
        config.extend_from_slice(&self.tag);
        config
    }

    /// Pops and serves every available request of the queue.
    fn process_queue(&self, vring: &VringRwLock) -> io::Result<()> {
        let Some(atomic) = self.mem.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Ok(());
        };
        let mem = atomic.memory();
        let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            vring.disable_notification().map_err(io::Error::other)?;
            loop {
                let chain = vring
                    .get_mut()
                    .get_queue_mut()
                    .pop_descriptor_chain(mem.clone());
                let Some(chain) = chain else { break };
                let head = chain.head_index();
                let used = match worker.chain.load(chain, &mem) {
                    Ok(()) => self.serve(&mut worker),
                    Err(e) => {
                        warn!("dropping a bad descriptor chain: {e:?}");
                        0
                    }
                };
                if let Err(e) = vring.add_used(head, used) {
                    // A head the guest made up: nothing to return it to.
                    warn!("cannot return descriptor chain {head}: {e}");
                    continue;
                }
                if vring.needs_notification().map_err(io::Error::other)? {
                    vring.signal_used_queue()?;
                }
            }
            if !vring.enable_notification().map_err(io::Error::other)? {
                break;
            }
        }
        Ok(())
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
            warn!("dropping a request shorter than a 9P header");
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
            server::error_reply(h.tag, libc::EMSGSIZE, reply);
            return self.finish(chain, reply);
        }
        // Twrite's data stays in guest memory: copy only its fixed fields.
        let fixed = if h.msg_type == protocol::Twrite::TYPE {
            size.min(protocol::TWRITE_HEADER_SIZE)
        } else {
            size
        };
        request.resize(fixed, 0);
        chain.gather(0, request);
        let decoded = Tmessage::decode(h.msg_type, &request[protocol::HEADER_SIZE..]);
        match decoded {
            Ok(msg) => {
                if log::log_enabled!(log::Level::Trace) {
                    log::trace!("<- tag {} {:?}", h.tag, msg);
                }
                let (mut source, mut sink) =
                    chain.data_areas(fixed, size - fixed, protocol::RREAD_HEADER_SIZE);
                self.server
                    .handle(&self.session, h.tag, msg, &mut source, &mut sink, reply);
            }
            Err(e) => {
                debug!("undecodable request type {} tag {}: {e}", h.msg_type, h.tag);
                let errno = match e {
                    DecodeError::UnknownType(_) => libc::EOPNOTSUPP,
                    _ => libc::EINVAL,
                };
                server::error_reply(h.tag, errno, reply);
            }
        }
        self.finish(chain, reply)
    }

    /// Writes the reply header (and, but for Rread, the whole reply) into
    /// the chain; returns the used length.
    fn finish(&self, chain: &ChainView, reply: &mut Vec<u8>) -> u32 {
        let Ok(h) = Header::parse(reply) else {
            return 0;
        };
        if h.size as usize > chain.writable_len() {
            // Too big for the client's buffer: say so if even that fits.
            server::error_reply(h.tag, libc::EMSGSIZE, reply);
            if reply.len() > chain.writable_len() {
                warn!("reply buffer of {} bytes too small", chain.writable_len());
                return 0;
            }
            chain.scatter(0, reply);
            return reply.len() as u32;
        }
        chain.scatter(0, reply);
        h.size
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
        *self.event_idx.lock().unwrap_or_else(|e| e.into_inner()) = enabled;
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

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.mem.lock().unwrap_or_else(|e| e.into_inner()) = Some(mem);
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
