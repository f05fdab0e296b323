//! The worker pool, end to end through the daemon binary: requests complete
//! out of order, a request blocked on the host holds up only itself, and
//! Tflush is answered only after the request it flushes.
//!
//! A request that blocks on the host for as long as the test wants: Tlopen
//! of a file on which the test holds a write lease (F_SETLEASE). The
//! daemon's open() waits for the lease holder to give it up.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    reply_header, tflush, tgetattr, tread, Area, Client, Daemon, Lease, Slot, Vmm, GETATTR_BASIC,
    O_RDONLY, TLOPEN,
};

const MSIZE: u32 = 512 * 1024;
const RLOPEN: u8 = TLOPEN + 1;
const RGETATTR: u8 = 25;
const RFLUSH: u8 = 109;
const RREAD: u8 = 117;

/// The daemon serving `share` on a vhost-user socket.
fn start(share: &Path, args: &[&str]) -> Daemon {
    Daemon::builder(share).vhost_user().args(args).start()
}

fn connect(daemon: &Daemon) -> Client {
    let mut client = Client::new(Vmm::connect(&daemon.socket, 64 << 20, true));
    client.mount(MSIZE, 1);
    client
}

fn small_slot(vmm: &mut Vmm) -> Slot {
    vmm.slot(Area::one(64), Area::one(4096))
}

/// Waits for the next returned chains; returns their heads in used-ring order.
fn next_returned(vmm: &mut Vmm) -> Vec<u16> {
    vmm.wait();
    let mut heads = Vec::new();
    vmm.reap(|head, _| heads.push(head));
    heads
}

/// Whether a chain comes back within `timeout` (heads returned meanwhile
/// are collected in `seen`).
fn returned_within(vmm: &mut Vmm, timeout: Duration, seen: &mut Vec<u16>) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let before = seen.len();
        vmm.reap(|head, _| seen.push(head));
        if seen.len() > before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_blocked_request_holds_up_only_itself_and_its_flush() {
    let share = tempfile::tempdir().unwrap();
    fs::write(share.path().join("slow"), b"slow").unwrap();
    fs::write(share.path().join("fast"), b"fast!").unwrap();
    let daemon = start(share.path(), &["--thread-pool-size", "2"]);
    let mut client = connect(&daemon);
    client.walk(1, 2, &["slow"]);
    client.walk(1, 3, &["fast"]);
    let lease = Lease::take(&share.path().join("slow"));

    let vmm = &mut client.vmm;
    let open = small_slot(vmm);
    let getattr = small_slot(vmm);
    let flush = small_slot(vmm);
    let mut open_msg = [0u8; 15];
    open_msg[0..4].copy_from_slice(&15u32.to_le_bytes());
    open_msg[4] = TLOPEN;
    open_msg[5..7].copy_from_slice(&10u16.to_le_bytes());
    open_msg[7..11].copy_from_slice(&2u32.to_le_bytes());
    open_msg[11..15].copy_from_slice(&O_RDONLY.to_le_bytes());
    vmm.write(open.request, &open_msg);
    vmm.post(open.head);
    vmm.kick();

    // The open waits for the lease; other requests go on meanwhile.
    for i in 0..50 {
        vmm.write(getattr.request, &tgetattr(20 + i, 3, GETATTR_BASIC));
        vmm.post(getattr.head);
        vmm.kick();
        assert_eq!(
            next_returned(vmm),
            [getattr.head],
            "Tgetattr {i} did not come back alone while Tlopen waits"
        );
        let (_, ty, tag) = reply_header(vmm, &getattr);
        assert_eq!((ty, tag), (RGETATTR, 20 + i));
    }

    // Tflush of the waiting open: answered only after the open is.
    vmm.write(flush.request, &tflush(11, 10));
    vmm.post(flush.head);
    vmm.kick();
    let mut seen = Vec::new();
    assert!(
        !returned_within(vmm, Duration::from_millis(300), &mut seen),
        "returned while the flushed request still waits: {seen:?}"
    );
    drop(lease);
    let mut order = Vec::new();
    while order.len() < 2 {
        order.extend(next_returned(vmm));
    }
    assert_eq!(order, [open.head, flush.head], "Rflush before the Rlopen");
    assert_eq!(reply_header(vmm, &open).1, RLOPEN);
    assert_eq!(reply_header(vmm, &flush), (7, RFLUSH, 11));
}

#[test]
fn flush_of_a_tag_not_in_flight_is_answered_at_once() {
    let share = tempfile::tempdir().unwrap();
    let daemon = start(share.path(), &[]);
    let mut client = connect(&daemon);
    let vmm = &mut client.vmm;
    let flush = small_slot(vmm);
    vmm.write(flush.request, &tflush(5, 77));
    vmm.roundtrip(flush.head);
    assert_eq!(reply_header(vmm, &flush), (7, RFLUSH, 5));
    // A Tflush naming itself does not wait for itself.
    vmm.write(flush.request, &tflush(6, 6));
    vmm.roundtrip(flush.head);
    assert_eq!(reply_header(vmm, &flush), (7, RFLUSH, 6));
}

/// Many requests in flight on 4 workers: each reply answers its own
/// request (tag, type, data at the right offset).
#[test]
fn many_requests_in_flight_complete_out_of_order() {
    const SLOTS: usize = 64;
    const IO: u32 = 16 * 1024;
    const TOTAL: usize = 3000;
    let share = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
    fs::write(share.path().join("data"), &content).unwrap();
    let daemon = start(share.path(), &["--thread-pool-size", "4"]);
    let mut client = connect(&daemon);
    client.walk(1, 2, &["data"]);
    client.lopen(2, O_RDONLY);
    let vmm = &mut client.vmm;
    let slots: Vec<Slot> = (0..SLOTS)
        .map(|_| vmm.slot(Area::one(64), Area::paged(11, IO)))
        .collect();
    // What each slot carries: (request number, tag).
    let mut carrying = vec![(0usize, 0u16); SLOTS];
    let offset = |i: usize| (i as u64 * 4093) % (content.len() as u64 - u64::from(IO));
    let post = |vmm: &mut Vmm, slot: usize, i: usize, carrying: &mut Vec<(usize, u16)>| {
        let tag = (i % 30000) as u16 + 1;
        let s = &slots[slot];
        if i % 3 == 0 {
            vmm.write(s.request, &tgetattr(tag, 2, GETATTR_BASIC));
        } else {
            vmm.write(s.request, &tread(tag, 2, offset(i), IO));
        }
        carrying[slot] = (i, tag);
        vmm.post(s.head);
    };
    for slot in 0..SLOTS {
        post(vmm, slot, slot, &mut carrying);
    }
    vmm.kick();
    let mut sent = SLOTS;
    let mut done = 0;
    let mut out_of_order = 0;
    let mut last = 0;
    let mut data = vec![0u8; IO as usize];
    while done < TOTAL {
        for head in next_returned(vmm) {
            let slot = slots.iter().position(|s| s.head == head).unwrap();
            let (i, tag) = carrying[slot];
            let (size, ty, rtag) = reply_header(vmm, &slots[slot]);
            assert_eq!(rtag, tag, "reply tag for request {i}");
            if i % 3 == 0 {
                assert_eq!(ty, RGETATTR, "request {i}");
            } else {
                assert_eq!((ty, size), (RREAD, 11 + IO), "request {i}");
                vmm.read(slots[slot].reply_data, &mut data);
                let at = offset(i) as usize;
                assert!(
                    data[..] == content[at..at + IO as usize],
                    "data of request {i}"
                );
            }
            if i < last {
                out_of_order += 1;
            }
            last = i;
            done += 1;
            if sent < TOTAL {
                post(vmm, slot, sent, &mut carrying);
                sent += 1;
            }
        }
        vmm.kick();
    }
    eprintln!("{out_of_order} of {TOTAL} replies came back before an earlier request's");
}

#[test]
fn thread_pool_size_flag() {
    let share = tempfile::tempdir().unwrap();
    fs::write(share.path().join("f"), b"abc").unwrap();
    for n in ["0", "1", "3"] {
        let daemon = start(share.path(), &["--thread-pool-size", n]);
        let mut client = connect(&daemon);
        client.walk(1, 2, &["f"]);
        let vmm = &mut client.vmm;
        let s = small_slot(vmm);
        vmm.write(s.request, &tgetattr(3, 2, GETATTR_BASIC));
        vmm.roundtrip(s.head);
        assert_eq!(reply_header(vmm, &s).1, RGETATTR, "--thread-pool-size {n}");
    }
    let out = Daemon::builder(Path::new("/"))
        .socket_path(Path::new("/nonexistent/s"))
        .tag("t")
        .default_log_level()
        .args(["--thread-pool-size", "many"])
        .output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--thread-pool-size"), "{err}");
}
