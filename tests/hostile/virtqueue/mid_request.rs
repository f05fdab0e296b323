//! SET_MEM_TABLE, a device reset and a disconnect while a request waits
//! on the host; an avail index past the queue size until the driver
//! resets the queue.

use super::*;

/// Guest RAM of the mid-request tests: the rings and heap at 0, and a
/// region at 1 GiB holding the waiting request's reply buffer.
const HIGH: u64 = 1 << 30;

const HIGH_SIZE: u64 = 1 << 20;

/// SET_MEM_TABLE while a Tlopen waits on the host: first the same RAM at
/// new host addresses (as after a VMM re-maps it), then a table without
/// the region holding the waiting request's reply buffer (a hot-unplug).
/// Meanwhile other requests are served (with a pool). Once the open goes
/// on, its chain comes back (the daemon still maps the memory it was
/// posted in: its reply lands there, not in the new table, and nothing
/// else in RAM changes); a new request with its reply buffer in the
/// unplugged region is refused and writes nothing there; with the region
/// back, requests there are served again; the daemon exits 0 at the end.
fn set_mem_table_mid_request(threads: &str) {
    let what = format!("SET_MEM_TABLE mid-request (thread pool {threads})");
    let what = what.as_str();
    let pool = threads != "1";
    let mut rig = Rig::start(
        &["--thread-pool-size", threads],
        &[(0, REGION), (HIGH, HIGH_SIZE)],
    );
    rig.put(HIGH, &[FRESH; 64]);
    let (lease, open, tag) = rig.post_blocked_open(HIGH);

    let remapped = remap(&rig.vmm().mem, |_| true);
    rig.vmm().set_memory(remapped);
    if pool {
        rig.sentinel_roundtrip(what);
    }
    let unplugged = remap(&rig.vmm().mem, |gpa| gpa == 0);
    let high = rig.vmm().set_memory(unplugged);
    if pool {
        rig.sentinel_roundtrip(what);
    }
    rig.assert_alive(what);

    rig.writable.clear();
    let before = rig.snapshot();
    drop(lease);
    let len = rig.wait_for(open, what);
    rig.assert_unchanged(&before, what);
    let mut reply = vec![0u8; len as usize];
    high.read_slice(&mut reply, GuestAddress(HIGH)).unwrap();
    let open_reply = Judged {
        what,
        req: Req::Lopen,
        expect: Expect::Either,
    };
    rig.writable.push((HIGH, 64));
    rig.judge(&open_reply, tag, Some((len, reply)));
    rig.writable.clear();
    rig.sentinel_roundtrip(what);

    // A reply buffer in the unplugged region: refused, nothing written.
    let area = HIGH + 4096;
    high.write_slice(&[FRESH; 4096], GuestAddress(area))
        .unwrap();
    let tag = rig.tag();
    let m = Req::Getattr.msg(tag);
    let a = rig.data(&m);
    let head = rig.direct(&[(a, m.len() as u32, RD), (area, 4096, WR)]);
    let got = rig.run(head, what);
    let unplugged_reply = Judged {
        what: "a reply buffer in the unplugged region",
        req: Req::Getattr,
        expect: Expect::Refused,
    };
    rig.judge(&unplugged_reply, tag, got);
    let mut there = vec![0u8; 4096];
    high.read_slice(&mut there, GuestAddress(area)).unwrap();
    assert!(
        there.iter().all(|&b| b == FRESH),
        "{what}: the daemon wrote into the unplugged region"
    );

    // Plugged back: served there.
    let replugged = remap(&high, |_| true);
    rig.vmm().set_memory(replugged);
    rig.writable.clear();
    let tag = rig.tag();
    let m = Req::Read(4096).msg(tag);
    let a = rig.data(&m);
    let w = rig.space_at(HIGH + 8192, 4107);
    let head = rig.direct(&[(a, m.len() as u32, RD), (w, 4107, WR)]);
    let got = rig.run(head, what);
    let replugged_reply = Judged {
        what: "a reply buffer in the region plugged back",
        req: Req::Read(4096),
        expect: Expect::Served,
    };
    rig.judge(&replugged_reply, tag, got);
    rig.disconnect();
}

#[test]
fn set_mem_table_mid_request_with_a_worker_pool() {
    set_mem_table_mid_request("2");
}

#[test]
fn set_mem_table_mid_request_on_the_queue_thread() {
    set_mem_table_mid_request("1");
}

/// A device reset while a Tlopen waits on the host, as QEMU does it without
/// VHOST_USER_PROTOCOL_F_RESET_DEVICE (which the daemon does not offer;
/// nor does it offer F_STATUS, so there is no SET_STATUS 0): RESET_OWNER,
/// then GET_VRING_BASE. The stop waits for the request in flight (so the
/// used ring is complete when the VMM reads the base): it is not answered
/// while the open waits, and once the lease goes it reports the base of
/// every chain posted with every one of them returned, the open's reply
/// well-formed. Then the VMM sets the device up again (SET_OWNER, features,
/// memory, the ring from the base) and a new session is served; the daemon
/// exits 0 at the end.
fn reset_mid_request(threads: &str) {
    let what = format!("reset mid-request (thread pool {threads})");
    let what = what.as_str();
    let mut rig = Rig::start(&["--thread-pool-size", threads], &[(0, REGION)]);
    let reply = rig.space(64);
    let (lease, open, tag) = rig.post_blocked_open(reply);
    rig.vmm().frontend().reset_owner().expect("RESET_OWNER");
    rig.assert_alive(what);

    let frontend = rig.vmm().frontend().clone();
    let (tx, rx) = mpsc::channel();
    let stopper = std::thread::spawn(move || tx.send(frontend.get_vring_base(0)));
    // A measurement window: the stop must still wait at its end.
    let early = rx.recv_timeout(Duration::from_millis(300));
    assert!(
        early.is_err(),
        "{what}: GET_VRING_BASE answered ({early:?}) while a request it must wait for is in \
         flight"
    );
    let before = rig.snapshot();
    drop(lease);
    let base = rx
        .recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("{what}: GET_VRING_BASE unanswered"))
        .expect("GET_VRING_BASE") as u16;
    stopper.join().unwrap().unwrap();
    let vmm = rig.vmm();
    assert_eq!(base, vmm.avail_idx(), "{what}: base vs chains posted");
    assert_eq!(
        vmm.used_idx(),
        base,
        "{what}: GET_VRING_BASE answered before every chain popped was returned"
    );
    let mut len = None;
    vmm.reap(|h, l| {
        assert_eq!(h, open, "{what}: another chain came back");
        len = Some(l);
    });
    let len = len.expect("the open came back");
    rig.assert_unchanged(&before, what);
    let got = Some((len, rig.gathered(len as usize)));
    let open_reply = Judged {
        what,
        req: Req::Lopen,
        expect: Expect::Either,
    };
    rig.judge(&open_reply, tag, got);

    rig.vmm().renegotiate();
    rig.vmm().restart_vring(base);
    mount(&mut rig.client);
    rig.sentinel_roundtrip(what);
    rig.disconnect();
}

#[test]
fn reset_mid_request_with_a_worker_pool() {
    reset_mid_request("2");
}

#[test]
fn reset_mid_request_on_the_queue_thread() {
    reset_mid_request("1");
}

/// The VMM leaves while a Tlopen waits on the host: the daemon exits 0
/// (with a pool while the open still waits, the worker left behind;
/// serving on the queue thread, which the exit joins, once it is done).
fn disconnect_mid_request(threads: &str) {
    let mut rig = Rig::start(&["--thread-pool-size", threads], &[(0, REGION)]);
    let reply = rig.space(64);
    let (lease, _, _) = rig.post_blocked_open(reply);
    let Rig {
        mut daemon,
        client,
        dir,
        ..
    } = rig;
    drop(client);
    if threads == "1" {
        drop(lease);
    }
    let status = daemon.wait_exit(TIMEOUT).unwrap_or_else(|| {
        panic!("the daemon still runs {TIMEOUT:?} after the VMM left mid-request")
    });
    assert!(status.success(), "exit status: {status}");
    assert_outside_unchanged(dir.path());
}

#[test]
fn disconnect_mid_request_with_a_worker_pool() {
    disconnect_mid_request("2");
}

#[test]
fn disconnect_mid_request_on_the_queue_thread() {
    disconnect_mid_request("1");
}

/// An avail index more than the queue size ahead of the device: nothing
/// comes back (there is nothing to pop), the daemon stays; once the driver
/// resets the queue (GET_VRING_BASE, then the ring handed over again at
/// the base it got) it is served again.
#[test]
fn avail_index_past_the_queue_size_until_reset() {
    let what = "avail index past the queue size";
    let mut rig = Rig::start(&[], &[(0, REGION)]);
    rig.sentinel_roundtrip(what);
    let vmm = rig.vmm();
    let published = vmm.avail_idx();
    vmm.kick_raw(published.wrapping_add(QSIZE + 7));
    let deadline = Instant::now() + TIMEOUT;
    while vmm.kick_pending() {
        assert!(Instant::now() < deadline, "{what}: the kick is never read");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The stop waits for the queue thread's pass over the queue.
    let base = rig.stop_vring(what);
    let vmm = rig.vmm();
    assert_eq!(base, published, "{what}: chains popped");
    assert_eq!(vmm.used_idx(), published, "{what}: chains returned");
    rig.assert_alive(what);
    rig.vmm().restart_vring(base);
    rig.sentinel_roundtrip("after the queue's reset");
    rig.disconnect();
}
