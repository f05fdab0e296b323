//! Hostile chains, each posted with an ordinary Tgetattr behind it.

use super::*;

/// The hostile chains, each with its request kind and what it may get.
fn cases() -> Vec<Case> {
    use Expect::*;
    use Req::*;
    let b = REGION;
    let mut v = vec![
        // Guest RAM: across regions, out of range, wrapping.
        case(
            "request across the region boundary",
            Getattr,
            Served,
            move |r, m| {
                let a = b - 5;
                r.put(a, m);
                let w = r.space(4096);
                r.direct(&[(a, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "reply across the region boundary",
            Read(4096),
            Served,
            move |r, m| {
                let a = r.data(m);
                let w = r.space_at(b - 100, 4107);
                r.direct(&[(a, m.len() as u32, RD), (w, 4107, WR)])
            },
        ),
        case(
            "indirect table with a descriptor cut by the region boundary",
            Read(4096),
            Served,
            move |r, m| {
                let a = r.data(m);
                let w = r.space(4107);
                let t = r.table_at(b - 8, &[(a, m.len() as u32, RD), (w, 4107, WR)]);
                r.ring(t, 32, INDIRECT)
            },
        ),
        case(
            "readable descriptor running past the end of RAM",
            Getattr,
            Refused,
            |r, m| {
                let a = END - 10;
                r.put(a, &m[..10]);
                let w = r.space(4096);
                r.direct(&[(a, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "writable descriptor running past the end of RAM",
            Read(4096),
            Refused,
            |r, m| {
                let a = r.data(m);
                r.direct(&[(a, m.len() as u32, RD), (END - 100, 4107, WR)])
            },
        ),
        case(
            "readable descriptor outside RAM",
            Getattr,
            Refused,
            |r, m| {
                let w = r.space(4096);
                r.direct(&[(NOWHERE, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "writable descriptor outside RAM",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                r.direct(&[(a, m.len() as u32, RD), (NOWHERE, 4096, WR)])
            },
        ),
        case(
            "writable descriptor outside RAM, then one inside",
            Read(4096),
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4107);
                r.direct(&[(a, m.len() as u32, RD), (NOWHERE, 100, WR), (w, 4107, WR)])
            },
        ),
        case(
            "readable address wrapping past 2^64",
            Getattr,
            Refused,
            |r, m| {
                let w = r.space(4096);
                r.direct(&[(u64::MAX - 7, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "writable address wrapping past 2^64",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                r.direct(&[(a, m.len() as u32, RD), (u64::MAX - 7, 4096, WR)])
            },
        ),
        // Zero and 4 GiB lengths.
        case(
            "zero-length readable outside RAM before the request",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                r.direct(&[(NOWHERE, 0, RD), (a, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "zero-length writable outside RAM amid the reply",
            Read(4096),
            Either,
            |r, m| {
                let a = r.data(m);
                let w1 = r.space(11);
                let w2 = r.space(4096);
                r.direct(&[
                    (a, m.len() as u32, RD),
                    (w1, 11, WR),
                    (NOWHERE, 0, WR),
                    (w2, 4096, WR),
                ])
            },
        ),
        case("zero-length request only", Getattr, Refused, |r, m| {
            let a = r.data(m);
            let w = r.space(4096);
            r.direct(&[(a, 0, RD), (w, 4096, WR)])
        }),
        case("zero-length reply area only", Getattr, Refused, |r, m| {
            let a = r.data(m);
            let w = r.space(0);
            r.direct(&[(a, m.len() as u32, RD), (w, 0, WR)])
        }),
        case("4 GiB readable descriptor", Getattr, Refused, |r, m| {
            let a = r.data(m);
            let w = r.space(4096);
            r.direct(&[(a, u32::MAX, RD), (w, 4096, WR)])
        }),
        case("4 GiB writable descriptor", Read(4096), Refused, |r, m| {
            let a = r.data(m);
            let w = r.vmm().alloc(4107, 64);
            r.direct(&[(a, m.len() as u32, RD), (w, u32::MAX, WR)])
        }),
        case(
            "writable lengths adding up past 4 GiB",
            Read(4096),
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4107);
                let x = r.vmm().alloc(64, 64);
                r.direct(&[(a, m.len() as u32, RD), (w, 4107, WR), (x, u32::MAX, WR)])
            },
        ),
        case("4 GiB indirect table", Getattr, Refused, |r, m| {
            let a = r.data(m);
            let w = r.space(4096);
            let t = r.table(&[(a, m.len() as u32, RD), (w, 4096, WR)]);
            r.ring(t, 0xffff_fff0, INDIRECT)
        }),
        // Indirect tables.
        case(
            "indirect table inside an indirect table",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let inner = r.table(&[(w, 4096, WR)]);
                r.indirect(&[(a, m.len() as u32, RD), (inner, 16, INDIRECT)])
            },
        ),
        case(
            "indirect table behind a direct descriptor",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let t = r.table(&[(w, 4096, WR)]);
                r.direct(&[(a, m.len() as u32, RD), (t, 16, INDIRECT)])
            },
        ),
        case(
            "indirect descriptor with NEXT set",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let t = r.table(&[(a, m.len() as u32, RD), (w, 4096, WR)]);
                let other = r.vmm().alloc(4096, 64);
                r.direct(&[(t, 32, INDIRECT), (other, 4096, WR)])
            },
        ),
        case(
            "indirect table twice the queue size, all linked",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let n = 2 * u32::from(QSIZE) - 1;
                let w = r.space(2 * n);
                let mut descs = vec![(a, m.len() as u32, RD)];
                descs.extend((0..n).map(|i| (w + 2 * u64::from(i), 2, WR)));
                r.indirect(&descs)
            },
        ),
        case(
            "indirect table said to be 65535 entries long",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let t = r.table(&[(a, m.len() as u32, RD), (w, 4096, WR)]);
                r.ring(t, 16 * 65535, INDIRECT)
            },
        ),
        case(
            "indirect table of 65535 entries looping on its reply entry",
            Getattr,
            Contained,
            |r, m| {
                let a = r.data(m);
                let w = r.space(64);
                let t = r.vmm().alloc(32, 16);
                r.raw_table_at(
                    t,
                    &[(a, m.len() as u32, RD | NEXT, 1), (w, 64, WR | NEXT, 1)],
                );
                r.ring(t, 16 * 65535, INDIRECT)
            },
        ),
        case(
            "indirect table length not a multiple of 16",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let t = r.table(&[(a, m.len() as u32, RD), (w, 4096, WR)]);
                r.ring(t, 24, INDIRECT)
            },
        ),
        case("zero-length indirect table", Getattr, Refused, |r, m| {
            let a = r.data(m);
            let w = r.space(4096);
            let t = r.table(&[(a, m.len() as u32, RD), (w, 4096, WR)]);
            r.ring(t, 0, INDIRECT)
        }),
        case("indirect table outside RAM", Getattr, Refused, |r, _| {
            r.ring(NOWHERE, 32, INDIRECT)
        }),
        case(
            "indirect table running past the end of RAM",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let t = r.raw_table_at(END - 16, &[(a, m.len() as u32, RD | NEXT, 1)]);
                r.ring(t, 32, INDIRECT)
            },
        ),
        case(
            "indirect entry whose next is past the table",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let t = r.vmm().alloc(32, 16);
                r.raw_table_at(t, &[(a, m.len() as u32, RD | NEXT, 5), (w, 4096, WR, 0)]);
                r.ring(t, 32, INDIRECT)
            },
        ),
        // Loops and `next` out of range.
        case(
            "reply descriptor whose next is itself",
            Getattr,
            Contained,
            |r, m| {
                let a = r.data(m);
                let w = r.space(64);
                let h = r.vmm().ring_descs(2);
                r.vmm()
                    .set_ring_desc(h, a, m.len() as u32, RD | NEXT, h + 1);
                r.vmm().set_ring_desc(h + 1, w, 64, WR | NEXT, h + 1);
                h
            },
        ),
        case(
            "chain looping back to its head",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let h = r.vmm().ring_descs(2);
                r.vmm()
                    .set_ring_desc(h, a, m.len() as u32, RD | NEXT, h + 1);
                r.vmm().set_ring_desc(h + 1, w, 4096, WR | NEXT, h);
                h
            },
        ),
        case(
            "request whose next is past the queue size",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let h = r.vmm().ring_descs(1);
                r.vmm()
                    .set_ring_desc(h, a, m.len() as u32, RD | NEXT, QSIZE + 3);
                h
            },
        ),
        case(
            "reply whose next is past the queue size",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let h = r.vmm().ring_descs(2);
                r.vmm()
                    .set_ring_desc(h, a, m.len() as u32, RD | NEXT, h + 1);
                r.vmm().set_ring_desc(h + 1, w, 4096, WR | NEXT, u16::MAX);
                h
            },
        ),
        // Order and size of the writable part.
        case("writable before readable", Getattr, Refused, |r, m| {
            let w = r.space(4096);
            let a = r.data(m);
            r.direct(&[(w, 4096, WR), (a, m.len() as u32, RD)])
        }),
        case(
            "readable, writable, readable again",
            Getattr,
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                r.direct(&[
                    (a, m.len() as u32, RD),
                    (w, 4096, WR),
                    (a, m.len() as u32, RD),
                ])
            },
        ),
        case("no writable descriptor", Getattr, Refused, |r, m| {
            let a = r.data(m);
            r.direct(&[(a, m.len() as u32, RD)])
        }),
        case("no readable descriptor", Getattr, Refused, |r, _| {
            let w = r.space(4096);
            r.direct(&[(w, 4096, WR)])
        }),
        case(
            "zero-length writable before the request",
            Getattr,
            Either,
            |r, m| {
                let x = r.space(0);
                let a = r.data(m);
                let w = r.space(4096);
                r.direct(&[(x, 0, WR), (a, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "reply area of ten 1-byte descriptors",
            Read(4096),
            Refused,
            |r, m| {
                let a = r.data(m);
                let w = r.space(10);
                let mut descs = vec![(a, m.len() as u32, RD)];
                descs.extend((0..10).map(|i| (w + i, 1, WR)));
                r.direct(&descs)
            },
        ),
        case(
            "reply area of 11 bytes: room for an Rlerror only",
            Getattr,
            Error,
            |r, m| {
                let a = r.data(m);
                let w = r.space(11);
                r.direct(&[(a, m.len() as u32, RD), (w, 11, WR)])
            },
        ),
        case(
            "Tread 4096 with a reply area of 11 bytes",
            Read(4096),
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(11);
                r.direct(&[(a, m.len() as u32, RD), (w, 11, WR)])
            },
        ),
        // Readable and writable descriptors over the same bytes.
        case(
            "request and reply on the same bytes",
            Getattr,
            Either,
            |r, m| {
                let w = r.space(4096);
                r.put(w, m);
                r.direct(&[(w, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "Tread whose reply area is its request",
            Read(4096),
            Either,
            |r, m| {
                let w = r.space(4107);
                r.put(w, m);
                r.direct(&[(w, m.len() as u32, RD), (w, 4107, WR)])
            },
        ),
        case(
            "reply area starting inside the request",
            Read(4096),
            Either,
            |r, m| {
                let a = r.vmm().alloc(4200, 64);
                let w = r.space_at(a + 8, 4107);
                r.put(a, m);
                r.indirect(&[(a, m.len() as u32, RD), (w, 4107, WR)])
            },
        ),
        case(
            "Twrite whose data is its reply area",
            Write(1),
            Either,
            |r, m| {
                let w = r.space(4096);
                r.put(w, m);
                r.direct(&[(w, m.len() as u32, RD), (w, 4096, WR)])
            },
        ),
        case(
            "Twrite whose reply area is in its data",
            Write(2),
            Either,
            |r, m| {
                let a = r.vmm().alloc(m.len() as u64, 64);
                let w = r.space_at(a + 40, 16);
                r.put(a, m);
                r.direct(&[(a, m.len() as u32, RD), (w, 16, WR)])
            },
        ),
        case(
            "two writable descriptors on the same bytes",
            Getattr,
            Contained,
            |r, m| {
                let a = r.data(m);
                let w = r.space(100);
                r.direct(&[(a, m.len() as u32, RD), (w, 100, WR), (w, 100, WR)])
            },
        ),
        case(
            "reply area over its own indirect table",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let w = r.space(4096);
                let t = r.table_at(w, &[(a, m.len() as u32, RD), (w, 4096, WR)]);
                r.ring(t, 32, INDIRECT)
            },
        ),
        case(
            "reply area over its own ring descriptors",
            Getattr,
            Either,
            |r, m| {
                let a = r.data(m);
                let h = r.vmm().ring_descs(2);
                let w = r.allow(crate::common::DESC_GPA + 16 * u64::from(h), 4096);
                r.vmm()
                    .set_ring_desc(h, a, m.len() as u32, RD | NEXT, h + 1);
                r.vmm().set_ring_desc(h + 1, w, 4096, WR, 0);
                h
            },
        ),
        // Heads.
        case("head index past the queue size", Getattr, Lost, |_, _| {
            QSIZE + 5
        }),
        case("head index 65535", Getattr, Lost, |_, _| u16::MAX),
        case(
            "head of an all-zero descriptor",
            Getattr,
            Refused,
            |r, _| r.ring(0, 0, 0),
        ),
    ];
    // Reply areas too small for even an Rlerror.
    for n in 1..=10u32 {
        v.push(case(
            format!("reply area of {n} bytes"),
            Read(4096),
            Refused,
            move |r, m| {
                let a = r.data(m);
                let w = r.space(n);
                r.direct(&[(a, m.len() as u32, RD), (w, n, WR)])
            },
        ));
    }
    v
}

fn hostile_chains(threads: &str) {
    let mut rig = Rig::start(
        &["--thread-pool-size", threads],
        &[(0, REGION), (REGION, REGION)],
    );
    // Keep the RAM around the region boundary free for the buffers across it.
    let here = rig.vmm().alloc(0, 1);
    assert!(here < REGION - WINDOW);
    rig.vmm().alloc(REGION + WINDOW - here, 1);
    for c in cases() {
        rig.writable.clear();
        let tag = rig.tag();
        let msg = c.req.msg(tag);
        let head = (c.build)(&mut rig, &msg);
        let what = format!("{} (thread pool {threads})", c.what);
        let got = rig.run(head, &what);
        let judged = Judged {
            what: &what,
            req: c.req,
            expect: c.expect,
        };
        rig.judge(&judged, tag, got);
    }
    rig.disconnect();
}

#[test]
fn hostile_chains_with_a_worker_pool() {
    hostile_chains("2");
}

#[test]
fn hostile_chains_on_the_queue_thread() {
    hostile_chains("1");
}
