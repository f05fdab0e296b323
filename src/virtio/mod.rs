//! The vhost-user virtio transport: descriptor chains in, used ring out.

pub mod backend;
pub mod chain;
mod pool;

pub use backend::{default_thread_pool_size, P9Backend, MAX_TAG_LEN};
