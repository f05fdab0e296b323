//! Through the vhost-user device, many requests in flight.

use super::*;

/// Writes `bytes` into a chain area laid out as `area` at (`first`, `data`).
fn put(vmm: &Vmm, area: Area, at: (u64, u64), bytes: &[u8]) {
    let split = bytes.len().min(area.first as usize);
    vmm.write(at.0, &bytes[..split]);
    if split < bytes.len() {
        vmm.write(at.1, &bytes[split..]);
    }
}

/// Reads `len` bytes back from such an area.
fn get(vmm: &Vmm, area: Area, at: (u64, u64), len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let split = len.min(area.first as usize);
    vmm.read(at.0, &mut bytes[..split]);
    vmm.read(at.1, &mut bytes[split..]);
    bytes
}

/// Random requests of each dialect through the daemon's virtqueue, 16 in
/// flight on a worker pool of 4, in chains split as the Linux client
/// splits them (a header descriptor, then pages) or in one descriptor:
/// each chain comes back with one well-formed reply to its own request
/// (or, flushed, with none), no larger than the msize; the daemon lives
/// on and exits 0 when the VMM goes; nothing outside the share changes.
#[test]
fn random_requests_through_the_virtqueue_many_in_flight() {
    const IN_FLIGHT: usize = 16;
    const REQUESTS: usize = 3000;
    const MSIZE: u32 = 16384;
    let _serial = serial();
    for seed in 1..=6u64 {
        let dialect = DIALECTS[seed as usize % 3];
        let top = tempfile::tempdir().unwrap();
        let share = make_tree(top.path());
        let outside_before = snapshot(&top.path().join("outside"));
        let model = if seed % 4 < 2 {
            "passthrough"
        } else {
            "mapped-xattr"
        };
        let mut args = vec!["--thread-pool-size", "4", "--security-model", model];
        if dialect != "9P2000.L" {
            args.push("--ctl");
        }
        let mut daemon = common::Daemon::builder(&share)
            .vhost_user()
            .args(&args)
            .start();
        {
            let mut vmm = Vmm::connect(&daemon.socket, 64 << 20, true);
            let slots: Vec<(Slot, Area, Area)> = (0..IN_FLIGHT)
                .map(|i| {
                    let (request, reply) = if i % 2 == 0 {
                        (Area::paged(23, 12288), Area::paged(11, MSIZE))
                    } else {
                        (Area::one(MSIZE), Area::one(MSIZE))
                    };
                    (vmm.slot(request, reply), request, reply)
                })
                .collect();
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut fids = Fids::default();
            let mut frame = Vec::new();
            // What each slot carries, and the tags flushed while in flight.
            let mut carrying: Vec<Option<Sent>> = (0..IN_FLIGHT).map(|_| None).collect();
            let mut flushed = Vec::new();
            let mut sent = 0;
            let mut free: Vec<usize> = (0..IN_FLIGHT).collect();
            loop {
                // The first request (Tversion) goes alone.
                while let Some(i) = free.pop() {
                    if sent == REQUESTS || (sent == 1 && carrying.iter().any(Option::is_some)) {
                        free.push(i);
                        break;
                    }
                    let tag = i as u16;
                    let request = next_request(
                        &mut rng,
                        &fids,
                        dialect,
                        sent == 0,
                        &[MSIZE],
                        tag,
                        &mut frame,
                    );
                    if request.ty == Tflush::TYPE {
                        flushed.push(u16::from_le_bytes([frame[7], frame[8]]));
                    }
                    let (slot, area, _) = &slots[i];
                    put(&vmm, *area, (slot.request, slot.request_data), &frame);
                    vmm.post(slot.head);
                    carrying[i] = Some(request);
                    sent += 1;
                }
                vmm.kick();
                if carrying.iter().all(Option::is_none) {
                    break;
                }
                vmm.wait();
                let mut returned = Vec::new();
                vmm.reap(|head, len| returned.push((head, len)));
                for (head, len) in returned {
                    let i = slots.iter().position(|(s, _, _)| s.head == head).unwrap();
                    let request = carrying[i].take().unwrap();
                    free.push(i);
                    let tag = if request.ty == Tversion::TYPE {
                        NOTAG
                    } else {
                        i as u16
                    };
                    let context =
                        format!("seed {seed} ({dialect}), slot {i} (type {})", request.ty);
                    if len == 0 {
                        assert!(
                            flushed.contains(&tag),
                            "{context}: returned without a reply"
                        );
                        continue;
                    }
                    assert!(len <= MSIZE, "{context}: a reply of {len} bytes");
                    let (slot, _, area) = &slots[i];
                    let reply = get(&vmm, *area, (slot.reply, slot.reply_data), len as usize);
                    check(&context, dialect, tag, &request, &reply);
                    fids.update(&request, &reply);
                }
            }
        }
        let status = daemon
            .child
            .wait()
            .expect("the daemon exits when the VMM goes");
        assert!(status.success(), "seed {seed} ({dialect}): daemon {status}");
        assert_eq!(
            snapshot(&top.path().join("outside")),
            outside_before,
            "seed {seed} ({dialect}): outside the share changed"
        );
    }
}
