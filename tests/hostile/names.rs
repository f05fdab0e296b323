//! Names no file may have (`.`, `..`, empty, with a slash, with NUL, longer
//! than the host allows) are refused by every request that takes a name,
//! in every dialect, and change nothing; a name that is only unusual
//! (not UTF-8) names exactly that entry, inside the share.

use std::os::unix::ffi::OsStrExt;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::Config;

use crate::common::inproc::{InProc, ROOT};
use crate::tree::fingerprint;

fn bad_names() -> Vec<Vec<u8>> {
    vec![
        b".".to_vec(),
        b"..".to_vec(),
        b"".to_vec(),
        b"a/b".to_vec(),
        b"f/".to_vec(),
        b"/etc".to_vec(),
        b"x\0y".to_vec(),
        vec![b'n'; 256],
        vec![b'n'; 65535],
    ]
}

/// Every request of 9P2000.L that makes, renames or links a name.
fn linux_requests<'a>(name: &'a [u8]) -> Vec<Tmessage<'a>> {
    let n = Str(name);
    vec![
        Tmessage::Lcreate(Tlcreate {
            fid: 10,
            name: n,
            flags: 2,
            mode: 0o644,
            gid: 0,
        }),
        Tmessage::Mkdir(Tmkdir {
            dfid: 10,
            name: n,
            mode: 0o755,
            gid: 0,
        }),
        Tmessage::Symlink(Tsymlink {
            fid: 10,
            name: n,
            symtgt: "f".into(),
            gid: 0,
        }),
        Tmessage::Mknod(Tmknod {
            dfid: 10,
            name: n,
            mode: libc::S_IFIFO | 0o644,
            major: 0,
            minor: 0,
            gid: 0,
        }),
        Tmessage::Renameat(Trenameat {
            olddirfid: 10,
            oldname: "f".into(),
            newdirfid: 10,
            newname: n,
        }),
        Tmessage::Renameat(Trenameat {
            olddirfid: 10,
            oldname: n,
            newdirfid: 10,
            newname: "g".into(),
        }),
        Tmessage::Link(Tlink {
            dfid: 10,
            fid: 11,
            name: n,
        }),
        Tmessage::Rename(Trename {
            fid: 11,
            dfid: 10,
            name: n,
        }),
        Tmessage::Unlinkat(Tunlinkat {
            dirfid: 10,
            name: n,
            flags: 0,
        }),
        Tmessage::Xattrcreate(Txattrcreate {
            fid: 11,
            name: n,
            attr_size: 0,
            flags: 0,
        }),
    ]
}

#[test]
fn impossible_names_are_refused_everywhere_and_change_nothing() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("share");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), "f").unwrap();
    std::fs::write(top.path().join("etc"), "outside").unwrap();
    let mut config = Config::new(&dir);
    config.ctl = true;
    let before = fingerprint(top.path());
    for name in bad_names() {
        let shown = String::from_utf8_lossy(&name[..name.len().min(12)]).into_owned();
        let mut c = InProc::attach(&config, Users::Guest, "9P2000.L", 0);
        for (i, msg) in linux_requests(&name).into_iter().enumerate() {
            c.walk(ROOT, 10, &[]).ok();
            c.walk(ROOT, 11, &["f"]).ok();
            let reply = c.call(msg);
            // Txattrcreate takes any name it can store; it changes nothing
            // until the fid is clunked, and the clunk must fail or store
            // nothing outside: checked by the fingerprint.
            if i != 9 {
                assert!(
                    reply.errno().is_some(),
                    "request {i} with {shown:?}: {:?}",
                    reply.msg()
                );
            }
            c.clunk(10);
            c.clunk(11);
        }
        // A walk to it, and to its control file.
        let names = [Str(&name)];
        for path in [&names[..], &[Str(b",ctl"), Str(&name)][..]] {
            let walk = Twalk {
                fid: ROOT,
                newfid: 12,
                names: WalkList::from_slice(path).unwrap(),
            };
            let reply = c.call(Tmessage::Walk(walk));
            if reply.errno().is_none() {
                // `.` and `..` walk within the share (or a partial walk
                // made no fid); never past its root.
                let walked = c.call(Tmessage::Walk(Twalk {
                    fid: 12,
                    newfid: 13,
                    names: WalkList::from_slice(&[Str(b"etc")]).unwrap(),
                }));
                assert!(
                    walked.errno().is_some(),
                    "{shown:?} then etc reached outside"
                );
                c.clunk(12);
            }
        }
        // 9P2000 creates, and a Twstat rename, in 9P2000.u.
        let mut p = InProc::attach(&config, Users::Guest, "9P2000.u", 0);
        p.walk(ROOT, 10, &[]).ok();
        let create = p.call(Tmessage::Create(Tcreate {
            fid: 10,
            name: Str(&name),
            perm: 0o644,
            mode: 2,
            extension: Some("".into()),
        }));
        assert!(create.errno().is_some(), "Tcreate {shown:?}");
        // ctl commands naming it.
        p.walk(ROOT, 14, &[",ctl", ","]).ok();
        p.call(Tmessage::Open(Topen { fid: 14, mode: 1 })).ok();
        let mut command = b"symlink f ".to_vec();
        command.extend(name.iter().flat_map(|&b| format!("%{b:02x}").into_bytes()));
        command.push(b'\n');
        let ctl = p.write(14, &command);
        if !matches!(name.as_slice(), b"/etc" | b"a/b" | b"f/") {
            assert!(ctl.errno().is_some(), "ctl symlink {shown:?}");
        }
        p.clunk(14);
    }
    // Only what a path written to a control file may name (`a/b`: no such
    // directory; `/etc` is the share's own /etc; `f/` is f) could appear.
    let after = fingerprint(top.path());
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(added.iter().all(|k| *k == "share/etc"), "{added:?}");
    for (k, v) in before.iter().filter(|(k, _)| *k != "share") {
        assert_eq!(after.get(k), Some(v), "{k} changed");
    }
}

#[test]
fn a_name_that_is_not_utf8_names_exactly_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = InProc::attach(&Config::new(dir.path()), Users::Guest, "9P2000.L", 0);
    let name = b"caf\xe9\xff";
    c.walk(ROOT, 10, &[]).ok();
    c.call(Tmessage::Mkdir(Tmkdir {
        dfid: 10,
        name: Str(name),
        mode: 0o755,
        gid: 0,
    }))
    .ok();
    let entries: Vec<Vec<u8>> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    assert_eq!(entries, [name.to_vec()]);
}
