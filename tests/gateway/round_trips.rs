//! Not a check: upstream round trips and time per guest operation, straight
//! to the upstream and through the gateway in each upstream dialect
//! (`cargo test --release --test gateway round_trips -- --ignored
//! --nocapture`). The upstream traces (that is how its requests are
//! counted), so the times include writing its trace lines.

use std::time::{Duration, Instant};

use vhost_user_9p::protocol::*;

use crate::conn::*;
use crate::{rig_with, Rig};

/// One guest operation on a connection attached as fid 1, numbered `i`
/// (names stay unique); fids 2 and 3 are free before and after.
type Operation = fn(&mut Conn, u32) -> Result<(), i32>;

fn stat(c: &mut Conn, _: u32) -> Result<(), i32> {
    c.walk(1, 2, &["data"]).unwrap();
    c.getattr(2).unwrap();
    c.clunk(2).unwrap();
    Ok(())
}

/// A stat of a file not stat'ed before (no stat line kept for it).
fn stat_first(c: &mut Conn, i: u32) -> Result<(), i32> {
    c.walk(1, 2, &["many", &format!("entry-{:04}", i % 1000)])
        .unwrap();
    c.getattr(2).unwrap();
    c.clunk(2).unwrap();
    Ok(())
}

fn open_read(c: &mut Conn, _: u32) -> Result<(), i32> {
    c.walk(1, 2, &["data"]).unwrap();
    c.lopen(2, O_RDONLY).unwrap();
    let request = Tread {
        fid: 2,
        offset: 0,
        count: 4096,
    };
    c.call(Tmessage::Read(request)).unwrap();
    c.clunk(2).unwrap();
    Ok(())
}

fn create(c: &mut Conn, i: u32) -> Result<(), i32> {
    c.walk(1, 2, &["made"]).unwrap();
    c.lcreate(2, &format!("f{i}"), 0o644).unwrap();
    c.clunk(2).unwrap();
    Ok(())
}

fn rename(c: &mut Conn, i: u32) -> Result<(), i32> {
    let (old, new) = (format!("f{i}"), format!("g{i}"));
    c.walk(1, 2, &["made"]).unwrap();
    let request = Trenameat {
        olddirfid: 2,
        oldname: Str(old.as_bytes()),
        newdirfid: 2,
        newname: Str(new.as_bytes()),
    };
    c.call(Tmessage::Renameat(request)).unwrap();
    c.clunk(2).unwrap();
    Ok(())
}

fn symlink(c: &mut Conn, i: u32) -> Result<(), i32> {
    let name = format!("s{i}");
    let request = Tsymlink {
        fid: 1,
        name: Str(name.as_bytes()),
        symtgt: "data".into(),
        gid: 0,
    };
    c.call(Tmessage::Symlink(request)).map(drop)
}

fn readdir_1000(c: &mut Conn, _: u32) -> Result<(), i32> {
    c.walk(1, 2, &["many"]).unwrap();
    c.lopen(2, O_RDONLY | O_DIRECTORY).unwrap();
    assert_eq!(c.readdir_all(2).len(), 1000);
    c.clunk(2).unwrap();
    Ok(())
}

const OPERATIONS: [(&str, Operation, u32); 7] = [
    ("stat (walk, getattr, clunk)", stat, 300),
    ("stat of a file not stat'ed before", stat_first, 300),
    (
        "open + 4 KiB read (walk, lopen, read, clunk)",
        open_read,
        300,
    ),
    ("create (walk, lcreate, clunk)", create, 200),
    ("rename in a directory (walk, renameat, clunk)", rename, 200),
    ("symlink", symlink, 200),
    (
        "readdir of 1,000 entries (walk, lopen, readdirs, clunk)",
        readdir_1000,
        10,
    ),
];

fn prepare(rig: &Rig) {
    std::fs::write(rig.host("data"), vec![7u8; 4096]).unwrap();
    std::fs::create_dir(rig.host("made")).unwrap();
    std::fs::create_dir(rig.host("many")).unwrap();
    for i in 0..1000 {
        std::fs::write(rig.host(&format!("many/entry-{i:04}")), "").unwrap();
    }
}

/// (upstream requests, median time) per operation, through `socket`
/// (None: the operation is refused); names made are numbered from `first`.
fn measure(rig: &Rig, socket: &std::path::Path, first: u32) -> Vec<Option<(f64, Duration)>> {
    let mut c = Conn::new(socket);
    c.attach(1);
    let mut rows = Vec::new();
    for (_, operation, n) in OPERATIONS {
        let before = rig.upstream_requests().len();
        let mut times = Vec::new();
        for i in 0..n {
            let start = Instant::now();
            if operation(&mut c, first + i).is_err() {
                break;
            }
            times.push(start.elapsed());
        }
        let sent = rig.upstream_requests().len() - before;
        times.sort();
        rows.push(
            (times.len() == n as usize)
                .then(|| (sent as f64 / f64::from(n), times[times.len() / 2])),
        );
    }
    rows
}

#[test]
#[ignore]
fn upstream_round_trips_per_guest_operation() {
    let mut columns = Vec::new();
    for (name, upstream_args, args) in [
        ("9P2000.L", &[][..], &[][..]),
        ("9P2000.u", &[], &["--upstream-version", "9p2000.u"][..]),
        ("9P2000", &[], &["--upstream-version", "9p2000"][..]),
        (
            "9P2000 + ,ctl",
            &["--ctl"],
            &["--upstream-version", "9p2000"],
        ),
    ] {
        let rig = rig_with(upstream_args, args);
        prepare(&rig);
        if columns.is_empty() {
            let up = rig.upstream.as_ref().unwrap().unix_socket().to_path_buf();
            columns.push(("direct".to_string(), measure(&rig, &up, 10_000)));
        }
        let through = measure(&rig, &rig.gateway_socket, 0);
        columns.push((format!("gateway, {name} upstream"), through));
    }
    let mut table = String::from("| guest operation |");
    for (name, _) in &columns {
        table.push_str(&format!(" {name}: requests, µs |"));
    }
    table.push_str("\n|---|");
    table.push_str(&"--:|".repeat(columns.len()));
    for (row, (operation, _, _)) in OPERATIONS.iter().enumerate() {
        table.push_str(&format!("\n| {operation} |"));
        for (_, rows) in &columns {
            match rows[row] {
                Some((sent, time)) => {
                    table.push_str(&format!(" {sent:.1}, {:.0} |", time.as_secs_f64() * 1e6))
                }
                None => table.push_str(" refused |"),
            }
        }
    }
    eprintln!("{table}");
}

/// The Linux guest's script (GUEST_SCRIPT) timed in the guest, served
/// directly and through the gateway to each upstream, three rounds
/// alternating (`cargo test --release --test gateway script_time --
/// --ignored --nocapture`): the median seconds of each.
#[test]
#[ignore]
fn guest_script_time_direct_and_through_the_gateway() {
    let timed = format!(
        "t0=$(clock)\n{}",
        crate::GUEST_SCRIPT.replace(
            "exit $fails",
            "echo \"$t0 $(clock)\" >$M/script-time\nexit $fails"
        )
    );
    let ways: [(&str, &[&str], &[&str]); 5] = [
        ("direct", crate::DIRECT, &[]),
        ("gateway, 9P2000.L upstream", &[], &[]),
        ("gateway, diod upstream", crate::DIOD, &[]),
        (
            "gateway, 9P2000.u upstream",
            &[],
            &["--upstream-version", "9p2000.u"],
        ),
        (
            "gateway, 9P2000 + ,ctl upstream",
            &["--ctl"],
            &["--upstream-version", "9p2000"],
        ),
    ];
    let mut times = vec![Vec::new(); ways.len()];
    for _ in 0..3 {
        for (i, (_, upstream, gateway)) in ways.iter().enumerate() {
            // The 9P2000.u upstream has no link count (as the VM test).
            let script = match i {
                3 => timed.replace(
                    r#"expect hard-link "2" "$(stat -c %h $M/moved)""#,
                    r#"expect hard-link "in" "$(cat $M/hard)""#,
                ),
                _ => timed.clone(),
            };
            let top = crate::guest_through_the_gateway(upstream, gateway, &script);
            let text = std::fs::read_to_string(top.path().join("share/script-time")).unwrap();
            let t: Vec<f64> = text
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            times[i].push(t[1] - t[0]);
        }
    }
    for ((name, _, _), mut t) in ways.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        eprintln!("| {name} | {:.2} s | {t:.2?} |", t[1]);
    }
}
