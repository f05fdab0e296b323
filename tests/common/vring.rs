//! The ring level of the VMM harness (`vmm.rs`): little-endian ring fields
//! and descriptors in guest RAM, and handing one split virtqueue to the
//! daemon.

use std::sync::atomic::Ordering;

use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VringConfigData};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// Guest RAM as a virtio driver touches it.
pub trait GuestRam {
    /// Where guest physical address `gpa` is mapped in this process.
    fn host_addr(&self, gpa: u64) -> u64;
    fn store_u16(&self, gpa: u64, v: u16);
    fn load_u16(&self, gpa: u64) -> u16;
    fn load_u32(&self, gpa: u64) -> u32;
    /// Writes a split-ring descriptor at `gpa`.
    fn write_desc(&self, gpa: u64, addr: u64, len: u32, flags: u16, next: u16);
}

impl GuestRam for GuestMemoryMmap {
    fn host_addr(&self, gpa: u64) -> u64 {
        self.get_host_address(GuestAddress(gpa))
            .expect("host address of a GPA") as u64
    }

    fn store_u16(&self, gpa: u64, v: u16) {
        self.store(v.to_le(), GuestAddress(gpa), Ordering::Release)
            .expect("store u16");
    }

    fn load_u16(&self, gpa: u64) -> u16 {
        u16::from_le(
            self.load(GuestAddress(gpa), Ordering::Acquire)
                .expect("load u16"),
        )
    }

    fn load_u32(&self, gpa: u64) -> u32 {
        u32::from_le(
            self.load(GuestAddress(gpa), Ordering::Acquire)
                .expect("load u32"),
        )
    }

    fn write_desc(&self, gpa: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.write_slice(&d, GuestAddress(gpa))
            .expect("write a descriptor");
    }
}

/// Where queue 0's three parts live in guest RAM, and its size.
pub struct RingLayout {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

/// Hands queue 0 to the daemon (SET_VRING_NUM, _BASE, _ADDR, _CALL, _KICK,
/// _ENABLE), starting at ring index `base`.
pub fn enable_vring(
    frontend: &Frontend,
    mem: &GuestMemoryMmap,
    ring: &RingLayout,
    base: u16,
    call: &EventFd,
    kick: &EventFd,
) {
    frontend.set_vring_num(0, ring.size).expect("SET_VRING_NUM");
    frontend.set_vring_base(0, base).expect("SET_VRING_BASE");
    let config = VringConfigData {
        queue_max_size: ring.size,
        queue_size: ring.size,
        flags: 0,
        desc_table_addr: mem.host_addr(ring.desc),
        used_ring_addr: mem.host_addr(ring.used),
        avail_ring_addr: mem.host_addr(ring.avail),
        log_addr: None,
    };
    frontend.set_vring_addr(0, &config).expect("SET_VRING_ADDR");
    frontend.set_vring_call(0, call).expect("SET_VRING_CALL");
    frontend.set_vring_kick(0, kick).expect("SET_VRING_KICK");
    frontend
        .clone()
        .set_vring_enable(0, true)
        .expect("SET_VRING_ENABLE");
}
