//! vhost-user-9p: a vhost-user virtio-9p backend serving a host directory
//! over 9P2000.L.
//!
//! Data flows one way: `virtio` pops a descriptor chain and views it as a
//! request and a reply area; `protocol` decodes the request; `server`
//! performs it against the host directory; `protocol` encodes the reply;
//! `virtio` returns the chain to the guest.

pub mod client;
pub mod gateway;
pub mod privileges;
pub mod protocol;
pub mod ratelimit;
pub mod sandbox;
pub mod seccomp;
pub mod server;
pub mod socket;
mod sync;
pub mod trace_output;
pub mod virtio;
