//! Requests rewritten by a guest thread while the daemon serves them.

use super::*;

/// Bytes of guest RAM a guest thread keeps rewriting: where, how many,
/// and the values it writes there (little-endian).
#[derive(Clone)]
struct Field {
    at: u64,
    width: usize,
    values: Vec<u64>,
}

/// Fields of a request (offset, width, values) rewritten while served.
type RequestFields = &'static [(u64, usize, &'static [u64])];

/// The requests rewritten while served, and their fields rewritten.
fn rewritten_request(i: u16, tag: u16) -> (Vec<u8>, RequestFields) {
    const TYPE: (u64, usize, &[u64]) = (
        4,
        1,
        &[
            TREAD as u64,
            TWRITE as u64,
            TWALK as u64,
            TGETATTR as u64,
            TFLUSH as u64,
            RLERROR as u64,
            0,
            0xff,
        ],
    );
    const TWRITE_FIELDS: RequestFields = &[
        TYPE,
        (
            0,
            4,
            &[55, 0, 3, 7, 22, 23, 54, 56, 256, 257, u32::MAX as u64],
        ),
        (19, 4, &[32, 0, 31, 33, 4096, u32::MAX as u64]),
        (11, 8, &[0, 64, u64::MAX, i64::MAX as u64 - 8]),
    ];
    const TWALK_FIELDS: RequestFields = &[
        TYPE,
        (0, 4, &[20, 0, 6, 7, 17, 19, 21, 256, 257, u32::MAX as u64]),
        (15, 2, &[1, 0, 2, 16, 17, u16::MAX as u64]),
        (17, 2, &[1, 0, 2, u16::MAX as u64]),
        (19, 1, &[b'f' as u64, b'/' as u64, b'.' as u64, 0]),
    ];
    const TREAD_FIELDS: RequestFields = &[
        TYPE,
        (0, 4, &[23, 0, 7, 22, 24, 256, 257, u32::MAX as u64]),
        (19, 4, &[128, 0, 8181, 8192, u32::MAX as u64]),
        (11, 8, &[0, u64::MAX]),
    ];
    const TGETATTR_FIELDS: RequestFields = &[
        TYPE,
        (0, 4, &[19, 0, 7, 18, 20, 256, 257, u32::MAX as u64]),
        (11, 8, &[GETATTR_BASIC, 0, u64::MAX]),
    ];
    match i % 4 {
        0 => {
            let mut m = twrite_header(tag, WFILE, 64 * u64::from(i), 32).to_vec();
            m.extend([i as u8; 32]);
            (m, TWRITE_FIELDS)
        }
        1 => {
            let m = T::new(TWALK, tag)
                .u32(ROOT)
                .u32(100 + u32::from(i))
                .u16(1)
                .str("f")
                .done();
            (m, TWALK_FIELDS)
        }
        2 => (tread(tag, FILE, 0, 128).to_vec(), TREAD_FIELDS),
        _ => (tgetattr(tag, FILE, GETATTR_BASIC).to_vec(), TGETATTR_FIELDS),
    }
}

/// A chain rewritten while served: a request area, a reply area, an
/// indirect table of the two behind ring descriptor `head`.
struct Rewritten {
    head: u16,
    tag: u16,
    msg: Vec<u8>,
    request: u64,
    reply: u64,
    table: u64,
    fields: Vec<Field>,
}

const REWRITTEN_REQUEST: u32 = 256;

const REWRITTEN_REPLY: u32 = 8192;

impl Rewritten {
    fn new(rig: &mut Rig, i: u16) -> Rewritten {
        let tag = 0x100 + i;
        let (msg, request_fields) = rewritten_request(i, tag);
        let request = rig.vmm().alloc(u64::from(REWRITTEN_REQUEST), 64);
        rig.allow(request, REWRITTEN_REQUEST);
        let reply = rig.space(REWRITTEN_REPLY);
        let table = rig.vmm().alloc(32, 16);
        rig.allow(table, 32);
        let head = rig.vmm().ring_descs(1);
        rig.allow(crate::common::DESC_GPA + 16 * u64::from(head), 16);
        let mut fields: Vec<Field> = request_fields
            .iter()
            .map(|&(at, width, values)| Field {
                at: request + at,
                width,
                values: values.to_vec(),
            })
            .collect();
        // The descriptors: the daemon's view of the chain may change too,
        // but never to bytes outside this chain's own areas.
        let ring = crate::common::DESC_GPA + 16 * u64::from(head);
        let nowhere = [NOWHERE, u64::MAX - 7];
        for (at, width, values) in [
            (table, 8, vec![request, nowhere[0]]),
            (table + 8, 4, vec![256, 0, 7, 23, u32::MAX as u64]),
            (table + 12, 2, vec![u64::from(RD | NEXT), u64::from(RD)]),
            (table + 16, 8, vec![reply, nowhere[0], nowhere[1]]),
            (table + 24, 4, vec![8192, 0, 1, 11, 4096, u32::MAX as u64]),
            (
                table + 28,
                2,
                [WR, RD, WR | NEXT, WR | INDIRECT].map(u64::from).to_vec(),
            ),
            (ring + 8, 4, vec![32, 16, 24, 0]),
            (
                ring + 12,
                2,
                [INDIRECT, INDIRECT | WR, INDIRECT | NEXT, 0]
                    .map(u64::from)
                    .to_vec(),
            ),
        ] {
            fields.push(Field { at, width, values });
        }
        Rewritten {
            head,
            tag,
            msg,
            request,
            reply,
            table,
            fields,
        }
    }

    /// Writes the chain whole again and posts it.
    fn post(&self, vmm: &mut Vmm) {
        vmm.write(self.request, &self.msg);
        vmm.mem
            .write_desc(self.table, self.request, REWRITTEN_REQUEST, RD | NEXT, 1);
        vmm.mem
            .write_desc(self.table + 16, self.reply, REWRITTEN_REPLY, WR, 0);
        vmm.set_ring_desc(self.head, self.table, 32, INDIRECT, 0);
        vmm.post(self.head);
    }
}

/// A guest thread rewrites the size, type, counts, offsets and walk names
/// of 16 posted requests, and the addresses, lengths and flags of their
/// descriptors, all the time while the daemon serves 10,000 chains of them
/// (each written whole again before it is posted again): each comes back
/// with used len 0 or a well-formed reply with its tag within its reply
/// area (the only writable bytes any of its descriptors ever name); some
/// are served and some refused (so the rewriting reached the daemon);
/// nothing else in guest RAM or outside the share changes; the session
/// serves normally afterwards.
#[test]
fn requests_rewritten_while_served() {
    const CHAINS: usize = 10_000;
    let mut rig = Rig::start(&["--thread-pool-size", "2"], &[(0, REGION)]);
    let chains: Vec<Rewritten> = (0..16).map(|i| Rewritten::new(&mut rig, i)).collect();
    let before = rig.snapshot();

    let stop = Arc::new(AtomicBool::new(false));
    let rewriter = {
        let stop = Arc::clone(&stop);
        let mem = rig.vmm().mem.clone();
        let targets: Vec<Vec<Field>> = chains.iter().map(|c| c.fields.clone()).collect();
        std::thread::spawn(move || {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as usize
            };
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let fields = &targets[next() % targets.len()];
                let f = &fields[next() % fields.len()];
                let value = f.values[next() % f.values.len()];
                mem.write_slice(&value.to_le_bytes()[..f.width], GuestAddress(f.at))
                    .unwrap();
                writes += 1;
            }
            writes
        })
    };

    let vmm = rig.vmm();
    for c in &chains {
        c.post(vmm);
    }
    vmm.kick();
    let (mut posted, mut done) = (chains.len(), 0);
    let (mut served, mut refused) = (0, 0);
    while done < CHAINS {
        assert!(
            vmm.wait_timeout(TIMEOUT),
            "no chain came back for {TIMEOUT:?}, {} in flight",
            vmm.in_flight
        );
        let mut back = Vec::new();
        vmm.reap(|h, len| back.push((h, len)));
        for (head, len) in back {
            let c = chains.iter().find(|c| c.head == head).unwrap();
            assert!(len <= REWRITTEN_REPLY, "used len {len}");
            if len == 0 {
                refused += 1;
            } else {
                let mut reply = vec![0u8; len as usize];
                vmm.read(c.reply, &mut reply);
                let size = u32::from_le_bytes(reply[..4].try_into().unwrap());
                assert_eq!(size, len, "size field vs used len: {reply:02x?}");
                match decode_rmessage(&reply) {
                    Ok((t, Rmessage::Lerror(_))) if t == c.tag => refused += 1,
                    Ok((t, _)) if t == c.tag => served += 1,
                    other => panic!("reply {other:?} to tag {}", c.tag),
                }
            }
            done += 1;
            if posted < CHAINS {
                c.post(vmm);
                posted += 1;
            }
        }
        vmm.kick();
    }
    stop.store(true, Ordering::Relaxed);
    let writes = rewriter.join().unwrap();
    assert!(
        served > 0 && refused > 0,
        "{served} served, {refused} refused: the rewriting did not show"
    );
    assert!(writes > CHAINS as u64, "only {writes} rewrites");
    rig.assert_unchanged(&before, "requests rewritten while served");
    rig.assert_alive("requests rewritten while served");
    rig.sentinel_roundtrip("after requests rewritten while served");
    rig.disconnect();
}
