//! What a broken or hostile driver sends: replies that do not fit,
//! malformed requests, bad descriptors and heads, an avail index past the
//! queue size. The daemon serves on.

use super::*;

/// Replies that do not fit, and malformed requests: the chain comes back, the daemon lives on.
#[test]
fn small_reply_buffers_and_malformed_requests() {
    let (share, daemon) = start("hostshare", &[]);
    let content = pattern(4096, 1);
    fs::write(share.path().join("big"), &content).unwrap();
    let mut c = connect(&daemon);
    mount(&mut c, 1);
    c.try_walk(1, 2, &["big"]).unwrap();
    c.try_lopen(2, O_RDONLY).unwrap();

    // Accept: len 0, or a well-formed Rlerror, or (legal 9P) a correct short Rread.
    let check_small = |m: &[u8], done: &Completed, what: &str| {
        if done.len == 0 {
            return;
        }
        match check_reply(m, &done.reply) {
            Err(_) => {}
            Ok(body) => {
                let data = parse::read(&body);
                assert_eq!(data, content[..data.len()].to_vec(), "{what}: short Rread");
            }
        }
    };

    // Tread 4096 with 20 writable bytes.
    let m = c.read_msg(2, 0, 4096);
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[20]));
    check_small(&m, &done, "20-byte reply buffer");
    // ... split in two pieces.
    let m = c.read_msg(2, 0, 4096);
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[13, 7]));
    check_small(&m, &done, "13+7-byte reply buffer");
    // 3 writable bytes: not even an Rlerror fits.
    let m = c.read_msg(2, 0, 4096);
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[3]));
    assert_eq!(
        done.len, 0,
        "reply into a 3-byte buffer: {:02x?}",
        done.reply
    );
    // No writable descriptor at all.
    let m = c.getattr_msg(2, GETATTR_BASIC);
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[]));
    assert_eq!(done.len, 0);
    // Still serving.
    assert_bytes_eq(&c.try_read(2, 0, 4096).unwrap(), &content, "Tread");

    // Malformed requests. Each must come back as an Rlerror with the request's tag, or
    // with len 0; then a good request must work.
    let accept_error = |m: &[u8], done: &Completed, what: &str| {
        if done.len != 0 {
            let r = check_reply(m, &done.reply);
            assert!(r.is_err(), "{what}: expected Rlerror, got {r:02x?}");
        }
    };
    let still_alive = |c: &mut Client<Chains>, what: &str| {
        let a = c
            .try_getattr(2, GETATTR_BASIC)
            .unwrap_or_else(|e| panic!("after {what}: {e:?}"));
        assert_eq!(a.size, 4096, "after {what}");
    };

    // Size field larger than the chain.
    let mut m = c.getattr_msg(2, GETATTR_BASIC);
    let real = m.len() as u32;
    m[0..4].copy_from_slice(&(real + 100).to_le_bytes());
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "size field > chain");
    still_alive(&mut c, "size field > chain");

    // Size field smaller than a header.
    let mut m = c.getattr_msg(2, GETATTR_BASIC);
    m[0..4].copy_from_slice(&3u32.to_le_bytes());
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "size field 3");
    still_alive(&mut c, "size field 3");

    // Unknown message type.
    let m = T::new(250, c.tag()).u32(2).u64(0).done();
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "type 250");
    still_alive(&mut c, "type 250");

    // An R-message type sent as a request.
    let m = T::new(TGETATTR + 1, c.tag()).u32(2).u64(0).done();
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "Rgetattr as request");
    still_alive(&mut c, "Rgetattr as request");

    // Truncated Twalk: nwname 2, one name present, size field consistent with the bytes.
    let m = T::new(TWALK, c.tag())
        .u32(1)
        .u32(7)
        .u16(2)
        .str("big")
        .done();
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "truncated Twalk");
    still_alive(&mut c, "truncated Twalk");

    // Twalk whose string length runs past the message.
    let m = T::new(TWALK, c.tag())
        .u32(1)
        .u32(8)
        .u16(1)
        .u16(0xffff)
        .raw(b"big")
        .done();
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "string length past the end");
    still_alive(&mut c, "string length past the end");

    // Twalk with more than MAXWELEM (16) names.
    let names = ["big"; 17];
    let m = c.walk_msg(1, 9, &names);
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "Twalk with 17 names");
    still_alive(&mut c, "Twalk with 17 names");

    // Twrite whose count is larger than the data present.
    let m = T::new(TWRITE, c.tag())
        .u32(2)
        .u64(0)
        .u32(1000)
        .raw(b"abc")
        .done();
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    accept_error(&m, &done, "Twrite count > data");
    still_alive(&mut c, "Twrite count > data");
    assert_bytes_eq(
        &fs::read(share.path().join("big")).unwrap(),
        &content,
        "host file after bad Twrite",
    );

    // Only 4 readable bytes (no type, no tag).
    let m = 4u32.to_le_bytes();
    let done = c.vmm.submit_one(Chain::simple(&[&m], &[REPLY_CAP]));
    if done.len != 0 {
        let r = &done.reply;
        assert!(
            r.len() >= 11 && r[4] == RLERROR,
            "reply to 4 bytes: {r:02x?}"
        );
    }
    still_alive(&mut c, "4-byte request");

    // No readable descriptor at all.
    let done = c.vmm.submit_one(Chain::simple(&[], &[REPLY_CAP]));
    if done.len != 0 {
        let r = &done.reply;
        assert!(
            r.len() >= 11 && r[4] == RLERROR,
            "reply to 0 bytes: {r:02x?}"
        );
    }
    still_alive(&mut c, "empty request");
}

/// Outside-memory descriptors, done properly (published only once bad), plus a descriptor
/// loop. The daemon may return the chain (len 0 or Rlerror) or drop it, but must keep serving.
#[test]
fn bad_descriptors_do_not_kill_the_daemon() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"abc").unwrap();
    let mut c = connect(&daemon);
    mount(&mut c, 1);
    c.try_walk(1, 2, &["f"]).unwrap();

    // Writable descriptor outside guest memory: build the chain by hand.
    let m = c.getattr_msg(2, GETATTR_BASIC);
    let a = HIGH_GPA + (6 << 20);
    c.vmm.write(a, &m);
    let head = 500u16;
    c.vmm
        .set_ring_desc(head, a, m.len() as u32, VRING_DESC_F_NEXT, head + 1);
    c.vmm
        .set_ring_desc(head + 1, 0x7000_0000_0000, 4096, VRING_DESC_F_WRITE, 0);
    let returned = c.vmm.post_raw_head(head);
    if let Some(len) = returned {
        assert_eq!(
            len, 0,
            "reply into unmapped memory cannot have been written"
        );
    }
    assert!(daemon.try_wait().is_none(), "daemon died");
    assert_eq!(c.try_getattr(2, GETATTR_BASIC).unwrap().size, 3);

    // Descriptor loop: 600 -> 601 -> 600 ...
    c.vmm.write(a, &m);
    c.vmm
        .set_ring_desc(600, a, m.len() as u32, VRING_DESC_F_NEXT, 601);
    c.vmm.set_ring_desc(
        601,
        HIGH_GPA + (7 << 20),
        4096,
        VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
        600,
    );
    let _ = c.vmm.post_raw_head(600);
    assert!(daemon.try_wait().is_none(), "daemon died");
    assert_eq!(c.try_getattr(2, GETATTR_BASIC).unwrap().size, 3);
}

/// A head index beyond the queue size in the avail ring (a driver bug). The chain cannot be
/// returned; the daemon should skip it and keep serving the queue, as it does for other bad
/// chains. In any case it must still exit 0 when the frontend leaves.
#[test]
fn avail_head_out_of_range() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"abc").unwrap();
    let served = {
        let mut c = connect(&daemon);
        mount(&mut c, 1);
        c.try_walk(1, 2, &["f"]).unwrap();

        let returned = c.vmm.post_raw_head(QSIZE + 5);
        assert_eq!(
            returned, None,
            "a head >= queue size came back in the used ring"
        );
        assert!(daemon.try_wait().is_none(), "daemon died");

        let m = c.getattr_msg(2, GETATTR_BASIC);
        let posted = c.vmm.post_chains(&[Chain::simple(&[&m], &[REPLY_CAP])]);
        if c.vmm.wait_used(1, Duration::from_secs(3), true) {
            let done = c.vmm.collect(posted).pop().unwrap();
            assert_eq!(Attr::parse(&check_reply(&m, &done.reply).unwrap()).size, 3);
            true
        } else {
            false
        }
    };
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
    assert!(
        served,
        "after an avail ring entry with head {} (queue size {QSIZE}) the queue is no longer served",
        QSIZE + 5
    );
}

/// An avail index more than the queue size ahead of the device (a broken
/// or hostile driver; found by the `chain` fuzz target): no chain can be
/// popped, yet the index says there is more. The daemon must not spin on
/// it: the queue is left alone until the driver resets it, the daemon's
/// CPU stays idle, and it exits 0 when the frontend leaves.
#[test]
fn avail_index_past_the_queue_size_does_not_spin() {
    let (share, mut daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"abc").unwrap();
    {
        let mut c = connect(&daemon);
        mount(&mut c, 1);
        c.try_walk(1, 2, &["f"]).unwrap();
        let jump = c.vmm.avail_idx().wrapping_add(QSIZE + 7);
        c.vmm.kick_raw(jump);
        // A spinning queue thread would burn a whole core meanwhile.
        let cpu = common::proc::cpu_ticks;
        let pid = daemon.serving_pid();
        let before = cpu(pid);
        // A measurement window, not a wait for an event.
        std::thread::sleep(Duration::from_millis(1500));
        let ticks = cpu(pid) - before;
        assert!(
            ticks < 50,
            "the daemon used {ticks} ticks in 1.5 s: spinning"
        );
        assert!(daemon.try_wait().is_none(), "daemon died");
    }
    let status = daemon
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|| panic!("daemon still running {TIMEOUT:?} after the disconnect"));
    assert!(status.success(), "daemon exit status: {status}");
}
