//! The test library: what the integration tests (and `benches/`) share,
//! one module per concern.
//!
//! - `daemon`: starting the daemon binary (one builder) and stopping it;
//! - `vmm`: the test as the VMM, a vhost-user frontend driving a virtqueue
//!   (with `vring`, the ring's layout in guest RAM);
//! - `client`: a 9P client over the VMM or a socket, with its own codec;
//! - `inproc`: a 9P client of an in-process server (the crate's codec);
//! - `proc`: processes seen from outside, and waiting with a deadline;
//! - `inotify`: what happened to watched paths.

#![allow(dead_code)]

pub mod client;
pub mod daemon;
pub mod inotify;
pub mod inproc;
pub mod proc;
pub mod vmm;
pub mod vring;

// What the tests and benchmarks name from here.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use daemon::{serving_pid, stop, Daemon};
#[allow(unused_imports)]
pub use proc::{Lease, Rss};
#[allow(unused_imports)]
pub use vmm::*;
