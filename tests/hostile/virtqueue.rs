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

mod chains;
mod mid_request;
mod rewritten;

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
        let daemon = Daemon::builder(&share).vhost_user().args(args).start();
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
