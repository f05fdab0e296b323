//! The virtqueue as a hostile guest drives it, with the test as the VMM
//! (the daemon binary on a vhost-user socket, guest RAM the test owns):
//! descriptors out of range or across regions, zero and 4 GiB lengths,
//! `next` loops, nested and odd indirect tables, writable before readable,
//! no or tiny reply areas, request and reply on the same bytes, bogus
//! heads, an avail index past the queue size, the request rewritten while
//! it is served, and SET_MEM_TABLE, a stopped ring, a device reset and a
//! disconnect while a request waits on the host.
//!
//! Each hostile chain is posted with an ordinary Tgetattr behind it. The
//! chain must come back with used len 0 or a well-formed reply within its
//! writable bytes (or, where the guest made that impossible, not at all);
//! the Tgetattr must get the right answer; the daemon must not write a
//! byte of guest RAM outside the chain's writable buffers and the used ring
//! (the whole RAM is compared with a copy taken before the kick); and it
//! exits 0 when the VMM leaves.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vhost::VhostBackend;
use vhost_user_9p::protocol::{decode_rmessage, Rmessage};
use vm_memory::{Bytes, GuestAddress};

use crate::common::{
    remap, tgetattr, tread, twrite_header, Area, Client, Daemon, GuestRam, Lease, Slot, Vmm,
    AVAIL_END, AVAIL_GPA, GETATTR_BASIC, O_RDONLY, O_RDWR, QSIZE, RLERROR, T, TFLUSH, TGETATTR,
    TLOPEN, TREAD, TWALK, TWRITE, USED_END, USED_GPA, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
};

const BIN: &str = env!("CARGO_BIN_EXE_vhost-user-9p");
const TIMEOUT: Duration = Duration::from_secs(10);
const MSIZE: u32 = 64 * 1024;

/// Guest RAM of the chain tests: two adjacent regions of this size, two
/// mappings of one memfd (to the daemon, two regions of its memory table).
const REGION: u64 = 2 << 20;
const END: u64 = 2 * REGION;
/// Room kept free on both sides of the boundary, for buffers across it.
const WINDOW: u64 = 64 * 1024;
/// Far outside guest RAM.
const NOWHERE: u64 = 1 << 40;

const ROOT: u32 = 1;
/// "f", open O_RDWR: what Tread and Tgetattr look at.
const FILE: u32 = 2;
/// "w", open O_RDWR: what Twrite writes.
const WFILE: u32 = 3;
/// "slow", walked to: a Tlopen of it waits while the test holds a lease.
const SLOW: u32 = 4;
const FILE_LEN: usize = 4096;
const WRITE_LEN: usize = 64;

/// Every free byte of guest RAM, so that a stray write shows.
const FILL: u8 = 0xa5;
/// Writable areas before a request.
const FRESH: u8 = 0xee;

const RD: u16 = 0;
const WR: u16 = VRING_DESC_F_WRITE;
const NEXT: u16 = VRING_DESC_F_NEXT;
const INDIRECT: u16 = VRING_DESC_F_INDIRECT;

fn file_content() -> Vec<u8> {
    (0..FILE_LEN).map(|i| (i * 7 + i / 251 + 1) as u8).collect()
}

fn write_data(seed: u8) -> Vec<u8> {
    (0..WRITE_LEN)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// A request of a hostile chain, and what the right answer to it is.
#[derive(Clone, Copy, Debug)]
enum Req {
    /// Tgetattr of "f".
    Getattr,
    /// Tread of "f" from 0.
    Read(u32),
    /// Twrite of `write_data(seed)` to "w" at 0.
    Write(u8),
    /// Tlopen O_RDONLY of "slow" (fid 4).
    Lopen,
}

impl Req {
    fn msg(self, tag: u16) -> Vec<u8> {
        match self {
            Req::Getattr => tgetattr(tag, FILE, GETATTR_BASIC).to_vec(),
            Req::Read(count) => tread(tag, FILE, 0, count).to_vec(),
            Req::Write(seed) => {
                let mut m = twrite_header(tag, WFILE, 0, WRITE_LEN as u32).to_vec();
                m.extend(write_data(seed));
                m
            }
            Req::Lopen => T::new(TLOPEN, tag).u32(SLOW).u32(O_RDONLY).done(),
        }
    }

    /// Checks a reply other than Rlerror is the right answer (for a Tread,
    /// all of it if `room` writable bytes hold it, else a correct start).
    fn check(self, what: &str, reply: &Rmessage, frame: &[u8], room: u64, share: &std::path::Path) {
        match (self, reply) {
            (Req::Getattr, Rmessage::Getattr(a)) => {
                assert_eq!(a.size, FILE_LEN as u64, "{what}: Rgetattr size")
            }
            (Req::Read(count), Rmessage::Read(r)) => {
                let want = (count as usize).min(FILE_LEN);
                let got = r.count as usize;
                if room >= 11 + want as u64 {
                    assert_eq!(got, want, "{what}: Rread count");
                } else {
                    assert!(got <= want, "{what}: Rread count {got}");
                }
                assert!(
                    frame[11..] == file_content()[..got],
                    "{what}: Rread data differs from the file"
                );
            }
            (Req::Write(seed), Rmessage::Write(w)) => {
                assert_eq!(w.count as usize, WRITE_LEN, "{what}: Rwrite count");
                let host = fs::read(share.join("w")).unwrap();
                assert!(
                    host[..WRITE_LEN] == write_data(seed),
                    "{what}: the file holds other bytes than the Twrite sent: {:02x?}",
                    &host[..WRITE_LEN]
                );
            }
            (Req::Lopen, Rmessage::Lopen(_)) => {}
            (req, other) => panic!("{what}: {other:?} to {req:?}"),
        }
    }
}

/// What a hostile chain may get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Used len 0, an Rlerror within its writable bytes, or not returned.
    Refused,
    /// An Rlerror within its writable bytes.
    Error,
    /// The right answer.
    Served,
    /// Refused or served; if served, the right answer.
    Either,
    /// Anything, as long as the daemon wrote nothing outside the chain's
    /// buffers (a chain that goes over the same bytes twice: the reply may
    /// be overwritten by its own later bytes).
    Contained,
    /// Not returned (there is no such head to return).
    Lost,
}

type Build = Box<dyn Fn(&mut Rig, &[u8]) -> u16>;

/// A request and what it may get.
struct Judged<'a> {
    what: &'a str,
    req: Req,
    expect: Expect,
}

struct Case {
    what: String,
    req: Req,
    expect: Expect,
    build: Build,
}

fn case(
    what: impl Into<String>,
    req: Req,
    expect: Expect,
    build: impl Fn(&mut Rig, &[u8]) -> u16 + 'static,
) -> Case {
    Case {
        what: what.into(),
        req,
        expect,
        build: Box::new(build),
    }
}

/// A daemon with a mounted session: fid 1 the share's root, fids 2 and 3
/// "f" and "w" open, fid 4 "slow", and a slot for the Tgetattr sent behind
/// each chain. The share is `share` in a directory that also holds
/// `outside/secret`, which nothing may change.
struct Rig {
    dir: TempDir,
    share: std::path::PathBuf,
    daemon: Daemon,
    client: Client,
    sentinel: Slot,
    /// Writable areas of the chain being built, in chain order.
    writable: Vec<(u64, u32)>,
    next_tag: u16,
}

impl Rig {
    fn start(args: &[&str], regions: &[(u64, u64)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        fs::create_dir(&share).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        fs::write(share.join("f"), file_content()).unwrap();
        fs::write(share.join("w"), [0u8; WRITE_LEN]).unwrap();
        fs::write(share.join("slow"), b"slow").unwrap();
        let daemon = Daemon::start(BIN, &share, args);
        let mut client = Client::new(Vmm::connect_regions(&daemon.socket, regions, true));
        mount(&mut client);
        let sentinel = client.vmm.slot(Area::one(64), Area::one(4096));
        let vmm = &mut client.vmm;
        let heap = vmm.alloc(0, 1);
        vmm.write(heap, &vec![FILL; (vmm.mem_size() - heap) as usize]);
        Rig {
            dir,
            share,
            daemon,
            client,
            sentinel,
            writable: Vec::new(),
            next_tag: 0x8000,
        }
    }

    fn vmm(&mut self) -> &mut Vmm {
        &mut self.client.vmm
    }

    fn tag(&mut self) -> u16 {
        self.next_tag = self.next_tag.wrapping_add(1).max(0x8000);
        self.next_tag
    }

    fn put(&mut self, gpa: u64, bytes: &[u8]) {
        self.vmm().write(gpa, bytes);
    }

    /// `bytes` in fresh guest RAM.
    fn data(&mut self, bytes: &[u8]) -> u64 {
        let a = self.vmm().alloc(bytes.len().max(1) as u64, 64);
        self.put(a, bytes);
        a
    }

    /// Lets the daemon write `len` bytes at `gpa` (the chain's next
    /// writable area).
    fn allow(&mut self, gpa: u64, len: u32) -> u64 {
        self.writable.push((gpa, len));
        gpa
    }

    /// A writable area at `gpa`, filled with FRESH.
    fn space_at(&mut self, gpa: u64, len: u32) -> u64 {
        self.put(gpa, &vec![FRESH; len as usize]);
        self.allow(gpa, len)
    }

    /// A writable area in fresh guest RAM.
    fn space(&mut self, len: u32) -> u64 {
        let a = self.vmm().alloc(u64::from(len).max(1), 64);
        self.space_at(a, len)
    }

    /// Ring descriptors linked in order; the head.
    fn direct(&mut self, descs: &[(u64, u32, u16)]) -> u16 {
        let first = self.vmm().ring_descs(descs.len() as u16);
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let i = i as u16;
            let (flags, next) = if usize::from(i) + 1 == descs.len() {
                (flags, 0)
            } else {
                (flags | NEXT, first + i + 1)
            };
            self.vmm().set_ring_desc(first + i, addr, len, flags, next);
        }
        first
    }

    /// One ring descriptor; its index.
    fn ring(&mut self, addr: u64, len: u32, flags: u16) -> u16 {
        let head = self.vmm().ring_descs(1);
        self.vmm().set_ring_desc(head, addr, len, flags, 0);
        head
    }

    /// An indirect table at `gpa`: (addr, len, flags, next) each.
    fn raw_table_at(&mut self, gpa: u64, descs: &[(u64, u32, u16, u16)]) -> u64 {
        for (i, &(addr, len, flags, next)) in descs.iter().enumerate() {
            self.vmm()
                .mem
                .write_desc(gpa + 16 * i as u64, addr, len, flags, next);
        }
        gpa
    }

    /// An indirect table of `descs` linked in order, at `gpa`.
    fn table_at(&mut self, gpa: u64, descs: &[(u64, u32, u16)]) -> u64 {
        let linked: Vec<_> = descs
            .iter()
            .enumerate()
            .map(|(i, &(addr, len, flags))| {
                if i + 1 == descs.len() {
                    (addr, len, flags, 0)
                } else {
                    (addr, len, flags | NEXT, i as u16 + 1)
                }
            })
            .collect();
        self.raw_table_at(gpa, &linked)
    }

    fn table(&mut self, descs: &[(u64, u32, u16)]) -> u64 {
        let gpa = self.vmm().alloc(16 * descs.len() as u64, 16);
        self.table_at(gpa, descs)
    }

    /// A ring descriptor pointing at a table of `descs`; the head.
    fn indirect(&mut self, descs: &[(u64, u32, u16)]) -> u16 {
        let t = self.table(descs);
        self.ring(t, 16 * descs.len() as u32, INDIRECT)
    }

    fn snapshot(&mut self) -> Vec<u8> {
        let mut ram = vec![0u8; self.vmm().mem_size() as usize];
        self.vmm().read(0, &mut ram);
        ram
    }

    /// Panics if guest RAM changed since `before` anywhere but in the
    /// rings, the sentinel's reply and the chain's writable areas.
    fn assert_unchanged(&mut self, before: &[u8], what: &str) {
        let after = self.snapshot();
        let s = self.sentinel;
        let mut allowed = vec![
            (AVAIL_GPA, AVAIL_END),
            (USED_GPA, USED_END),
            (s.reply, s.reply + u64::from(s.reply_len)),
        ];
        allowed.extend(
            self.writable
                .iter()
                .map(|&(a, len)| (a, a + u64::from(len))),
        );
        allowed.sort_unstable();
        let mut at = 0usize;
        let end = after.len();
        for (start, stop) in allowed
            .into_iter()
            .map(|(a, b)| ((a as usize).min(end), (b as usize).min(end)))
            .chain([(end, end)])
        {
            if start > at && before[at..start] != after[at..start] {
                let first = (at..start).find(|&i| before[i] != after[i]).unwrap();
                panic!(
                    "{what}: the daemon wrote guest RAM at {first:#x} ({:#04x} -> {:#04x}), \
                     outside the writable buffers",
                    before[first], after[first]
                );
            }
            at = at.max(stop);
        }
    }

    /// Stops queue 0 (GET_VRING_BASE, which waits for every request the
    /// daemon popped); the base.
    fn stop_vring(&mut self, what: &str) -> u16 {
        let frontend = self.vmm().frontend().clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(frontend.get_vring_base(0)));
        let base = rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("{what}: GET_VRING_BASE unanswered for {TIMEOUT:?}"))
            .expect("GET_VRING_BASE");
        base as u16
    }

    /// Posts the chain at `head` and the sentinel Tgetattr behind it, and
    /// waits for the sentinel (then, if the chain has not come back, stops
    /// the ring, which waits for whatever the daemon still holds, and
    /// restarts it). Checks the sentinel's answer, the daemon alive and
    /// RAM unchanged outside the writable buffers. Returns the chain's used
    /// len and the first len bytes of its writable areas, or None if the
    /// daemon did not return it.
    fn run(&mut self, head: u16, what: &str) -> Option<(u32, Vec<u8>)> {
        let tag = self.tag();
        let s = self.sentinel;
        self.put(s.request, &tgetattr(tag, FILE, GETATTR_BASIC));
        let before = self.snapshot();
        let vmm = self.vmm();
        vmm.post(head);
        vmm.post(s.head);
        vmm.kick();
        let (mut hostile, mut sentinel) = (None, None);
        let deadline = Instant::now() + TIMEOUT;
        while sentinel.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                vmm.wait_timeout(left),
                "{what}: the Tgetattr behind it never came back"
            );
            vmm.reap(|h, len| {
                if h == s.head && sentinel.is_none() {
                    sentinel = Some(len);
                } else if h == head && hostile.is_none() {
                    hostile = Some(len);
                } else {
                    panic!("{what}: head {h} came back, unexpected");
                }
            });
        }
        if hostile.is_none() {
            let base = self.stop_vring(what);
            let vmm = self.vmm();
            vmm.reap(|h, len| {
                assert_eq!(h, head, "{what}: unexpected head");
                hostile = Some(len);
            });
            vmm.restart_vring(base);
        }
        self.check_sentinel(tag, sentinel, what);
        self.assert_unchanged(&before, what);
        self.assert_alive(what);
        hostile.map(|len| (len, self.gathered(len as usize)))
    }

    fn assert_alive(&mut self, what: &str) {
        assert!(
            self.daemon.child.try_wait().unwrap().is_none(),
            "{what}: the daemon died"
        );
    }

    /// The first `len` bytes of the chain's writable areas.
    fn gathered(&mut self, len: usize) -> Vec<u8> {
        let mut all = Vec::new();
        for (a, l) in self.writable.clone() {
            let mut b = vec![0u8; l as usize];
            self.vmm().read(a, &mut b);
            all.extend(b);
        }
        all.truncate(len);
        all
    }

    /// Checks the sentinel's answer, returned with used len `len`.
    fn check_sentinel(&mut self, tag: u16, len: Option<u32>, what: &str) {
        let s = self.sentinel;
        let mut reply = vec![0u8; 4096];
        self.vmm().read(s.reply, &mut reply);
        let size = u32::from_le_bytes(reply[..4].try_into().unwrap());
        assert_eq!(Some(size), len, "{what}: the Tgetattr's used len");
        let frame = reply.get(..size as usize).unwrap_or(&reply);
        match decode_rmessage(frame) {
            Ok((t, Rmessage::Getattr(a))) if t == tag && a.size == FILE_LEN as u64 => {}
            other => panic!("{what}: the Tgetattr behind it got {other:?}"),
        }
    }

    /// Judges what the hostile chain got.
    fn judge(&mut self, c: &Judged, tag: u16, got: Option<(u32, Vec<u8>)>) {
        let what = c.what;
        let Some((len, reply)) = got else {
            assert!(
                matches!(
                    c.expect,
                    Expect::Refused | Expect::Either | Expect::Contained | Expect::Lost
                ),
                "{what}: never returned"
            );
            return;
        };
        assert!(c.expect != Expect::Lost, "{what}: returned (len {len})");
        if c.expect == Expect::Contained {
            return;
        }
        let total: u64 = self.writable.iter().map(|w| u64::from(w.1)).sum();
        assert!(
            u64::from(len) <= total,
            "{what}: used len {len} for {total} writable bytes"
        );
        if len == 0 {
            assert!(
                matches!(c.expect, Expect::Refused | Expect::Either),
                "{what}: returned with used len 0"
            );
            return;
        }
        let size = reply
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()));
        assert_eq!(
            size,
            Some(len),
            "{what}: size field vs used len: {reply:02x?}"
        );
        let (t, msg) = decode_rmessage(&reply)
            .unwrap_or_else(|e| panic!("{what}: malformed reply ({e:?}): {reply:02x?}"));
        assert_eq!(t, tag, "{what}: reply tag");
        match msg {
            Rmessage::Lerror(e) => assert!(
                c.expect != Expect::Served,
                "{what}: {}",
                std::io::Error::from_raw_os_error(e.ecode as i32)
            ),
            m => {
                assert!(
                    matches!(c.expect, Expect::Served | Expect::Either),
                    "{what}: served ({m:?})"
                );
                c.req.check(what, &m, &reply, total, &self.share);
            }
        }
    }

    /// Leaves (closing the socket, the eventfds and the memory) and
    /// expects the daemon to exit 0 and nothing outside the share changed.
    fn disconnect(self) {
        let Rig {
            mut daemon,
            client,
            dir,
            ..
        } = self;
        drop(client);
        let status = daemon
            .wait_exit(TIMEOUT)
            .unwrap_or_else(|| panic!("the daemon still runs {TIMEOUT:?} after the VMM left"));
        assert!(status.success(), "exit status after the VMM left: {status}");
        assert_outside_unchanged(dir.path());
    }

    /// Posts the sentinel Tgetattr alone and checks its answer (other
    /// chains may be in flight: none may come back meanwhile).
    fn sentinel_roundtrip(&mut self, what: &str) {
        let tag = self.tag();
        let s = self.sentinel;
        self.put(s.request, &tgetattr(tag, FILE, GETATTR_BASIC));
        let vmm = self.vmm();
        vmm.post(s.head);
        vmm.kick();
        let mut back = None;
        let deadline = Instant::now() + TIMEOUT;
        while back.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(vmm.wait_timeout(left), "{what}: no answer to a Tgetattr");
            vmm.reap(|h, len| {
                assert_eq!(h, s.head, "{what}: another chain came back");
                back = Some(len);
            });
        }
        self.check_sentinel(tag, back, what);
    }

    /// Posts a Tlopen of "slow" while the test holds a lease on it, its
    /// reply area at `reply` (64 bytes); returns once the daemon waits in
    /// open(): the lease, the head and the tag.
    fn post_blocked_open(&mut self, reply: u64) -> (Lease, u16, u16) {
        let lease = Lease::take(&self.share.join("slow"));
        let tag = self.tag();
        let m = Req::Lopen.msg(tag);
        let a = self.data(&m);
        let head = self.direct(&[(a, m.len() as u32, RD), (reply, 64, WR)]);
        self.vmm().post(head);
        self.vmm().kick();
        lease.wait_contended();
        (lease, head, tag)
    }

    /// Waits for the chain at `head`, the only one in flight; its used len.
    fn wait_for(&mut self, head: u16, what: &str) -> u32 {
        let vmm = self.vmm();
        assert!(vmm.wait_timeout(TIMEOUT), "{what}: never came back");
        let mut len = None;
        vmm.reap(|h, l| {
            assert_eq!(h, head, "{what}: another chain came back");
            len = Some(l);
        });
        len.unwrap()
    }
}

fn mount(client: &mut Client) {
    client.mount(MSIZE, ROOT);
    client.walk(ROOT, FILE, &["f"]);
    client.lopen(FILE, O_RDWR);
    client.walk(ROOT, WFILE, &["w"]);
    client.lopen(WFILE, O_RDWR);
    client.walk(ROOT, SLOW, &["slow"]);
}

/// What the share's parent holds besides the share: exactly as made.
fn assert_outside_unchanged(dir: &std::path::Path) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["outside", "share"], "the share's parent changed");
    let outside: Vec<_> = fs::read_dir(dir.join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["secret"], "outside the share changed");
    assert_eq!(fs::read(dir.join("outside/secret")).unwrap(), b"secret");
}

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
