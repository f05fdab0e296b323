//! The vhost-user virtio transport: descriptor chains in, used ring out.

pub mod backend;
pub mod chain;

pub use backend::{P9Backend, MAX_TAG_LEN};
