//! Open files are bounded per session: each holds a descriptor no sweep
//! can close, so one session could otherwise take the descriptors every
//! session needs. Beyond the bound an open or create is EMFILE (and a
//! create makes no file); a clunk gives the slot back; another session is
//! unaffected.

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inproc::{InProc, ROOT};

#[test]
fn open_files_beyond_the_bound_are_emfile() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..8 {
        std::fs::write(dir.path().join(format!("f{i}")), "x").unwrap();
    }
    let mut config = Config::new(dir.path());
    config.max_open_files = Some(5);
    let mut c = InProc::attach(&config, Users::Guest, "9P2000.L", 0);
    let open = |c: &mut InProc, fid: u32, name: &str| {
        c.walk(ROOT, fid, &[name]).ok();
        c.call(Tmessage::Lopen(Tlopen { fid, flags: 0 }))
    };
    for i in 0..5 {
        open(&mut c, 10 + i, &format!("f{i}")).ok();
    }
    assert_eq!(open(&mut c, 20, "f5").errno(), Some(libc::EMFILE));
    c.walk(ROOT, 21, &[]).ok();
    let create = Tlcreate {
        fid: 21,
        name: "new".into(),
        flags: 2,
        mode: 0o644,
        gid: 0,
    };
    assert_eq!(
        c.call(Tmessage::Lcreate(create)).errno(),
        Some(libc::EMFILE)
    );
    assert!(
        !dir.path().join("new").exists(),
        "a refused create made a file"
    );
    // A 9P2000 session's Topen counts the same way, on its own bound.
    let mut p = InProc::attach(&config, Users::Guest, "9P2000", 0);
    for i in 0..5 {
        p.walk(ROOT, 10 + i, &[&format!("f{i}")]).ok();
        p.call(Tmessage::Open(Topen {
            fid: 10 + i,
            mode: 0,
        }))
        .ok();
    }
    p.walk(ROOT, 20, &["f5"]).ok();
    assert_eq!(
        p.call(Tmessage::Open(Topen { fid: 20, mode: 0 })).errno(),
        Some(libc::EMFILE)
    );
    // A clunk gives a slot back.
    c.clunk(10).ok();
    open(&mut c, 22, "f6").ok();
    // Tversion gives them all back.
    c.call(Tmessage::Version(Tversion {
        msize: 65536,
        version: "9P2000.L".into(),
    }))
    .ok();
    c.call(Tmessage::Attach(Tattach {
        fid: ROOT,
        afid: NOFID,
        uname: "".into(),
        aname: "".into(),
        n_uname: Some(0),
    }))
    .ok();
    for i in 0..5 {
        open(&mut c, 30 + i, &format!("f{i}")).ok();
    }
}

/// Fids whose descriptors are never closed while they live (control
/// files and directories, paths through `,nofollow`) count as open files:
/// a session cannot pile them up past the bound.
#[test]
fn pinned_control_fids_count_as_open_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let mut config = Config::new(dir.path());
    config.ctl = true;
    config.max_open_files = Some(5);
    let mut c = InProc::attach(&config, Users::Guest, "9P2000", 0);
    for fid in 10..15 {
        c.walk(ROOT, fid, &[",ctl", "f"]).ok();
    }
    assert_eq!(c.walk(ROOT, 15, &[",ctl"]).errno(), Some(libc::EMFILE));
    assert_eq!(
        c.walk(10, 16, &[]).errno(),
        Some(libc::EMFILE),
        "a clone of one"
    );
    // Plain files' fids may be released while idle: not bounded here.
    c.walk(ROOT, 17, &["f"]).ok();
    c.clunk(10).ok();
    c.walk(ROOT, 18, &[",nofollow", "f"]).ok();
}

/// A 9P2000.u Tcreate of a symlink, fifo or device leaves its fid on the
/// new entry: a fid like a walked one, whose descriptor a sweep may close
/// (they used to stay open, one per create, past any budget).
#[test]
fn fids_of_special_files_made_by_tcreate_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    const BUDGET: usize = 100;
    config.fid_descriptors = Some(BUDGET);
    // Descriptors of this test's share only: the other tests of this
    // binary open theirs meanwhile.
    let share = dir.path().canonicalize().unwrap();
    let count = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(&share))
            .count()
    };
    vhost_user_9p::server::host::init().unwrap();
    let before = count();
    let mut c = InProc::attach(&config, Users::Guest, "9P2000.u", 0);
    let mut most = 0;
    for i in 0..600u32 {
        let fid = 10 + i;
        c.walk(ROOT, fid, &[]).ok();
        let (perm, extension) = match i % 3 {
            0 => (DMSYMLINK | 0o777, "target"),
            1 => (DMNAMEDPIPE | 0o644, ""),
            _ => (DMSOCKET | 0o644, ""),
        };
        let name = format!("n{i}");
        let create = Tcreate {
            fid,
            name: name.as_str().into(),
            perm,
            mode: 0,
            extension: Some(extension.into()),
        };
        c.call(Tmessage::Create(create)).ok();
        most = most.max(count() - before);
    }
    assert!(
        most <= BUDGET + 24,
        "{most} descriptors at once for a budget of {BUDGET}"
    );
    // The fids still stand for their files.
    let stat = c.call(Tmessage::Stat(Tstat { fid: 10 })).ok();
    let Rmessage::Stat(r) = stat.msg() else {
        panic!()
    };
    assert_eq!(r.stat.0.name.as_bytes(), b"n0");
    assert_ne!(r.stat.0.mode & DMSYMLINK, 0);
}
