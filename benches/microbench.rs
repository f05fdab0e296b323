//! Host-side micro-benchmarks: no VM.
//!
//! ```sh
//! cargo bench --bench microbench [-- --runs N --secs S --poll-us N]
//! ```
//!
//! Requests per second of Tgetattr and MiB/s of 1 MiB Treads, with 1 and
//! with 16 requests in flight:
//!
//! - through the vhost-user transport: the daemon binary in its own
//!   process, this program as its VMM (`tests/common/mod.rs`: guest RAM in
//!   a memfd, a split virtqueue of 1024 entries, indirect chains laid out
//!   like the Linux driver's, EVENT_IDX kicks and interrupts), once with the
//!   default worker pool and once serving on the queue thread
//!   (`--thread-pool-size 0`), and once with the pool but unconfined
//!   (`--sandbox none --seccomp none`: what the sandbox costs);
//! - in-process: the same requests handed straight to `Server::handle` by
//!   1 or 16 threads, so the transport's own cost shows.
//!
//! Also the daemon's resident memory (VmRSS in /proc/PID/status), idle and
//! at its peak under load. Every figure is the median of `--runs` runs
//! (default 5) of `--secs` seconds (default 1).
//!
//! Under `cargo test` (no `--bench` argument) it runs once, briefly, as a
//! smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{reply_header, tgetattr, tread, Area, Client, Daemon, Rss, Slot, Vmm, PAGE, T};
use vhost_user_9p::protocol::decode_tmessage;
use vhost_user_9p::server::{Config, NoData, ReadSink, Server, Session};

const BIN: &str = env!("CARGO_BIN_EXE_vhost-user-9p");
const MIB: u32 = 1 << 20;
const MSIZE: u32 = 2 * MIB;
/// The file read: big enough that 16 reads in flight touch different parts.
const FILE_SIZE: u64 = 64 << 20;
const GUEST_RAM: u64 = 64 << 20;
const DEPTHS: [usize; 2] = [1, 16];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Getattr,
    Read,
}

impl Kind {
    fn request(self) -> &'static str {
        match self {
            Kind::Getattr => "Tgetattr",
            Kind::Read => "Tread 1 MiB",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Getattr => "Tgetattr (requests/s)",
            Kind::Read => "Tread 1 MiB (MiB/s)",
        }
    }
}

struct Options {
    runs: usize,
    secs: f64,
    smoke: bool,
    /// `--poll-us N`, given to the daemon (else its default).
    poll_us: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{name}: not a number"))
            })
    };
    Options {
        runs: value("--runs").map_or(if smoke { 1 } else { 5 }, |v| v as usize),
        secs: value("--secs").unwrap_or(if smoke { 0.05 } else { 1.0 }),
        smoke,
        poll_us: value("--poll-us").map(|v| (v as u64).to_string()),
    }
}

fn main() {
    let opts = options();
    let share = tempfile::tempdir().unwrap();
    let path = share.path().join("data");
    let content: Vec<u8> = (0..FILE_SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    drop(content);
    std::fs::read(&path).unwrap(); // in the page cache
    let load_before = loadavg();

    // Every target is set up first; then each run measures them in turn,
    // so a burst of load elsewhere on the machine hits them alike.
    let workers = vhost_user_9p::virtio::default_thread_pool_size();
    let mut targets = vec![
        Target::transport(share.path(), workers, false, &opts),
        Target::transport(share.path(), workers, true, &opts),
        Target::transport(share.path(), 0, false, &opts),
        Target::in_process(share.path()),
    ];
    let mut figures = vec![Vec::new(); targets.len()]; // [target][row]
    let mut cpu = vec![Vec::new(); targets.len()]; // daemon µs per request
    for kind in [Kind::Getattr, Kind::Read] {
        for depth in DEPTHS {
            eprintln!("{} with {depth} in flight ...", kind.label());
            for target in targets.iter_mut() {
                target.run(kind, depth, opts.secs / 5.0); // warm-up
            }
            let mut runs = vec![Vec::new(); targets.len()];
            let mut cpu_runs = vec![Vec::new(); targets.len()];
            for _ in 0..opts.runs {
                for (t, target) in targets.iter_mut().enumerate() {
                    let (rate, cpu) = target.run(kind, depth, opts.secs);
                    runs[t].push(rate);
                    cpu_runs[t].push(cpu);
                }
            }
            for (t, r) in runs.into_iter().enumerate() {
                figures[t].push(median(r));
            }
            for (t, r) in cpu_runs.into_iter().enumerate() {
                cpu[t].push(median(r));
            }
        }
    }

    println!(
        "Median of {} runs of {} s each; {} CPUs; load average {} before, {} after.\n",
        opts.runs,
        opts.secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        loadavg(),
    );
    print!("| request | in flight |");
    for target in &targets {
        print!(" {} |", target.name);
    }
    println!();
    println!("|---|--:|{}", "--:|".repeat(targets.len()));
    let mut row = 0;
    for kind in [Kind::Getattr, Kind::Read] {
        for depth in DEPTHS {
            print!("| {} | {depth} |", kind.label());
            for column in &figures {
                print!(" {:.0} |", column[row]);
            }
            println!();
            row += 1;
        }
    }
    println!(
        "\nDaemon CPU time per request, µs (all its threads, from \
         /proc/PID/task/*/schedstat; in-process: the serving threads'):\n"
    );
    print!("| request | in flight |");
    for target in &targets {
        print!(" {} |", target.name);
    }
    println!();
    println!("|---|--:|{}", "--:|".repeat(targets.len()));
    let mut row = 0;
    for kind in [Kind::Getattr, Kind::Read] {
        for depth in DEPTHS {
            print!("| {} | {depth} |", kind.request());
            for column in &cpu {
                print!(" {:.1} |", column[row]);
            }
            println!();
            row += 1;
        }
    }
    println!(
        "\nDaemon resident memory, kB: VmRSS (RssAnon / RssFile / RssShmem, the last \
         being guest RAM the daemon touched):\n"
    );
    println!("| daemon | idle (connected, mounted) | peak under load |");
    println!("|---|--:|--:|");
    for target in &mut targets {
        if let Some(t) = &mut target.transport {
            let peak = t.sampler.stop();
            println!("| {} | {} | {} |", target.name, show(t.idle), show(peak));
        }
    }
    if opts.smoke {
        println!("\n(smoke run: use `cargo bench --bench microbench` for figures)");
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn show(r: Rss) -> String {
    format!("{} ({} / {} / {})", r.total, r.anon, r.file, r.shmem)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// What a column measures: a daemon through vhost-user, or `Server::handle`.
struct Target {
    name: String,
    transport: Option<Transport>,
    in_process: Option<InProcess>,
}

// ---------------------------------------------------------------------------
// Through the vhost-user transport
// ---------------------------------------------------------------------------

/// A daemon process and this program as its VMM, mounted, with fid 2 open
/// on the data file and 16 chains of each kind built.
struct Transport {
    // Fields drop in order: the VMM disconnects before the daemon is killed.
    client: Client,
    getattrs: Vec<Slot>,
    reads: Vec<Slot>,
    idle: Rss,
    sampler: Sampler,
    _daemon: Daemon,
}

impl Target {
    /// The daemon with `threads` workers, sandboxed by default or, with
    /// `unconfined`, with `--sandbox none --seccomp none` (what the
    /// confinement costs).
    fn transport(share: &Path, threads: usize, unconfined: bool, opts: &Options) -> Target {
        let mut name = if threads >= 2 {
            format!("vhost-user, {threads} workers")
        } else {
            "vhost-user, inline".to_string()
        };
        let threads = threads.to_string();
        let mut args = vec!["--thread-pool-size", &threads, "--log-level", "info"];
        if unconfined {
            name.push_str(", unconfined");
            args.extend(["--sandbox", "none", "--seccomp", "none"]);
        }
        if let Some(us) = &opts.poll_us {
            args.extend(["--poll-us", us]);
        }
        let daemon = Daemon::start(BIN, share, &args);
        let mut client = Client::new(Vmm::connect(&daemon.socket, GUEST_RAM, true));
        client.mount(MSIZE, 1);
        client.walk(1, 2, &["data"]);
        client.lopen(2, common::O_RDONLY);
        let getattrs: Vec<Slot> = (0..16)
            .map(|_| client.vmm.slot(Area::one(64), Area::one(4096)))
            .collect();
        let reads: Vec<Slot> = (0..16)
            .map(|_| client.vmm.slot(Area::one(64), Area::paged(11, MIB)))
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let idle = daemon.rss();
        let sampler = Sampler::start(daemon.serving_pid());
        Target {
            name,
            transport: Some(Transport {
                client,
                getattrs,
                reads,
                idle,
                sampler,
                _daemon: daemon,
            }),
            in_process: None,
        }
    }

    fn in_process(share: &Path) -> Target {
        Target {
            name: "in-process (`Server::handle`)".to_string(),
            transport: None,
            in_process: Some(InProcess::new(share)),
        }
    }

    /// One run: requests (for 1 MiB reads: MiB) per second, and the CPU
    /// time the serving side spent per request, in µs.
    fn run(&mut self, kind: Kind, depth: usize, secs: f64) -> (f64, f64) {
        if let Some(t) = &mut self.transport {
            let slots = match kind {
                Kind::Getattr => &t.getattrs[..depth],
                Kind::Read => &t.reads[..depth],
            };
            let pid = t._daemon.serving_pid();
            let before = cpu_ns(pid);
            let (rate, requests) = run(&mut t.client.vmm, kind, slots, secs);
            let cpu = (cpu_ns(pid) - before) as f64 / 1000.0 / requests as f64;
            (rate, cpu)
        } else {
            let p = self.in_process.as_ref().unwrap();
            serve_threads(&p.server, &p.session, kind, depth, secs)
        }
    }
}

/// CPU time used so far by the threads of a process, in ns.
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// CPU time used so far by the calling thread, in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Keeps `slots.len()` requests in flight for `secs`; returns requests/s
/// (for 1 MiB reads: MiB/s) and the number of requests.
fn run(vmm: &mut Vmm, kind: Kind, slots: &[Slot], secs: f64) -> (f64, u64) {
    let post = |vmm: &mut Vmm, slot: usize, i: u64| {
        let s = &slots[slot];
        let tag = slot as u16 + 1;
        match kind {
            Kind::Getattr => vmm.write(s.request, &tgetattr(tag, 2, common::GETATTR_BASIC)),
            Kind::Read => {
                let offset = (i * u64::from(MIB)) % FILE_SIZE;
                vmm.write(s.request, &tread(tag, 2, offset, MIB));
            }
        }
        vmm.post(s.head);
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut issued = 0u64;
    for slot in 0..slots.len() {
        post(vmm, slot, issued);
        issued += 1;
    }
    vmm.kick();
    let mut done = 0u64;
    let mut returned = Vec::with_capacity(slots.len());
    while vmm.in_flight > 0 {
        vmm.wait();
        returned.clear();
        vmm.reap(|head, _| returned.push(head));
        let more = Instant::now() < deadline;
        for &head in &returned {
            let slot = slots.iter().position(|s| s.head == head).unwrap();
            let (size, ty, _) = reply_header(vmm, &slots[slot]);
            match kind {
                Kind::Getattr => assert_eq!(ty, 25, "Rgetattr"),
                Kind::Read => assert_eq!((ty, size), (117, 11 + MIB), "Rread"),
            }
            done += 1;
            if more {
                post(vmm, slot, issued);
                issued += 1;
            }
        }
        vmm.kick();
    }
    (done as f64 / start.elapsed().as_secs_f64(), done)
}

/// Samples a process's RSS every few milliseconds; keeps the peak.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<Mutex<Rss>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new(Rss::default()));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let rss = Rss::of(pid);
                    let mut p = peak.lock().unwrap();
                    if rss.total > p.total {
                        *p = rss;
                    }
                    drop(p);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Sampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> Rss {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        *self.peak.lock().unwrap()
    }
}

// ---------------------------------------------------------------------------
// In-process: Server::handle directly
// ---------------------------------------------------------------------------

/// An Rread data area in a plain buffer: pread straight into it.
struct BufSink<'a>(&'a mut [u8]);

impl ReadSink for BufSink<'_> {
    fn capacity(&self) -> usize {
        self.0.len()
    }

    fn read_from(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize> {
        let count = count.min(self.0.len());
        // SAFETY: the buffer is valid for `count` bytes of writes.
        let n = unsafe {
            libc::pread64(
                fd.as_raw_fd(),
                self.0.as_mut_ptr().cast(),
                count,
                offset as i64,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn copy_from(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.0.len());
        self.0[..n].copy_from_slice(&data[..n]);
        n
    }

    fn peek(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        n
    }
}

fn handle(server: &Server, session: &Session, msg: &[u8], buf: &mut [u8], reply: &mut Vec<u8>) {
    let (tag, request) = decode_tmessage(msg).expect("decodable request");
    server.handle(session, tag, request, &mut NoData, &mut BufSink(buf), reply);
}

/// A server and a session, mounted, with fid 2 open on the data file.
struct InProcess {
    server: Arc<Server>,
    session: Arc<Session>,
}

impl InProcess {
    fn new(share: &Path) -> InProcess {
        let server = Arc::new(Server::new(&Config::new(share)).unwrap());
        let session = Arc::new(Session::new());
        let mut buf = vec![0u8; 8192];
        let mut reply = Vec::new();
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        for msg in [
            T::new(common::TVERSION, common::NOTAG)
                .u32(MSIZE)
                .str("9P2000.L")
                .done(),
            T::new(common::TATTACH, 1)
                .u32(1)
                .u32(common::NOFID)
                .str("root")
                .str("")
                .u32(uid)
                .done(),
            T::new(common::TWALK, 1)
                .u32(1)
                .u32(2)
                .u16(1)
                .str("data")
                .done(),
            T::new(common::TLOPEN, 1)
                .u32(2)
                .u32(common::O_RDONLY)
                .done(),
        ] {
            handle(&server, &session, &msg, &mut buf, &mut reply);
            assert_eq!(reply[4], msg[4] + 1, "setup reply to {}", msg[4]);
        }
        InProcess { server, session }
    }
}

/// `threads` threads calling `Server::handle` for `secs`; returns requests/s
/// and their CPU time per request in µs.
fn serve_threads(
    server: &Arc<Server>,
    session: &Arc<Session>,
    kind: Kind,
    threads: usize,
    secs: f64,
) -> (f64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let cpu = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (server, session, done, cpu) = (
                Arc::clone(server),
                Arc::clone(session),
                Arc::clone(&done),
                Arc::clone(&cpu),
            );
            std::thread::spawn(move || {
                let cpu_start = thread_cpu_ns();
                // Page-aligned, like the guest pages of a zero-copy read
                // (a misaligned destination makes the copy several times
                // slower on some CPUs).
                let mut space = vec![0u8; (MIB + PAGE) as usize];
                let skip = space.as_ptr().align_offset(PAGE as usize);
                let buf = &mut space[skip..skip + MIB as usize];
                let mut reply = Vec::with_capacity(4096);
                let mut i = t as u64;
                let mut n = 0;
                while Instant::now() < deadline {
                    let tag = t as u16 + 1;
                    match kind {
                        Kind::Getattr => {
                            let m = tgetattr(tag, 2, common::GETATTR_BASIC);
                            handle(&server, &session, &m, &mut buf[..4096], &mut reply);
                            assert_eq!(reply[4], 25, "Rgetattr");
                        }
                        Kind::Read => {
                            let offset = (i * u64::from(MIB)) % FILE_SIZE;
                            let m = tread(tag, 2, offset, MIB);
                            handle(&server, &session, &m, buf, &mut reply);
                            assert_eq!(reply[..5], [11, 0, 16, 0, 117], "Rread of 1 MiB");
                            i += threads as u64;
                        }
                    }
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
                cpu.fetch_add(thread_cpu_ns() - cpu_start, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let requests = done.load(Ordering::Relaxed);
    (
        requests as f64 / start.elapsed().as_secs_f64(),
        cpu.load(Ordering::Relaxed) as f64 / 1000.0 / requests as f64,
    )
}
