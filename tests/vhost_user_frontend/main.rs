//! End-to-end tests of the `vhost-user-9p` daemon, with the test playing the VMM.
//!
//! Each test starts the real daemon binary on a private socket and share directory,
//! connects to it as a vhost-user frontend (like QEMU would), hands it guest memory
//! backed by a memfd, sets up one split virtqueue in that memory and then drives
//! 9P2000.L requests through the queue, the way the Linux `9pnet_virtio` driver does.
//!
//! The 9P encoder/decoder here is deliberately independent of the crate's own codec:
//! it is the oracle the daemon is checked against (`common::client`). One module per
//! topic.

#[path = "../common/mod.rs"]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use tempfile::TempDir;
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::VhostBackend;

use common::client::*;
use common::vmm::*;
use common::Daemon;

mod descriptors;
mod lifecycle;
mod malformed;
mod negotiation;
mod session;

const MSIZE: u32 = 512_000;
/// How long the daemon may take to exit.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh share directory plus a daemon serving it.
fn start(tag: &str, extra_args: &[&str]) -> (TempDir, Daemon) {
    let share = tempfile::tempdir().expect("share tempdir");
    let daemon = Daemon::builder(share.path())
        .vhost_user()
        .tag(tag)
        .log_level("debug")
        .log_to_file()
        .args(extra_args)
        .start();
    (share, daemon)
}

/// A VMM with both RAM regions, its requests each in a chain of its own.
fn connect(daemon: &Daemon) -> Client<Chains> {
    connect_with(daemon, VmmOpts::two_regions())
}

fn connect_with(daemon: &Daemon, opts: VmmOpts) -> Client<Chains> {
    Client::chains(Vmm::connect_with(&daemon.socket, opts))
}

/// Tversion 9P2000.L + Tattach `fid` to the share root.
fn mount(c: &mut Client<Chains>, fid: u32) -> Qid {
    let (msize, v) = c.version(MSIZE, "9P2000.L");
    assert_eq!(v, "9P2000.L");
    assert!(msize <= MSIZE);
    c.try_attach(fid, "root", "", Some(uid())).expect("Tattach")
}

/// Sends a T-message through `chain`; checks the reply's framing.
fn call_chain(c: &mut Client<Chains>, msg: &[u8], chain: Chain) -> Result<Vec<u8>, Errno> {
    let done = c.vmm.submit_one(chain);
    check_reply(msg, &done.reply)
}

/// Deterministic test content.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

/// Compare byte strings, reporting lengths and the first difference instead of dumping both.
#[track_caller]
fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |v: &[u8]| v[first..v.len().min(first + 16)].to_vec();
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first}: got {:02x?}, want {:02x?}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    );
}

/// Split `data` at the given cut points.
fn split_at<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in cuts {
        out.push(&data[prev..c]);
        prev = c;
    }
    out.push(&data[prev..]);
    out
}
