//! The hostile-client suite: what a hostile guest, local user or network
//! client tries, each check asserting what reached the host. Each module
//! is one kind of attack.

#[path = "../common/mod.rs"]
mod common;

mod ctl_model;
mod ids;
mod names;
mod open_files;
mod protocol;
mod readonly;
mod special_files;
mod symlinks;
mod transports;
mod tree;
mod virtqueue;
