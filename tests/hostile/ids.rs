//! Owners and privileges a guest may not give itself: guest ids outside
//! the id maps are refused by every request that sets an owner; the
//! daemon's own `user.virtfs.*` attributes are invisible and untouchable;
//! `security.capability` is kept where the security model keeps modes (on
//! the host under passthrough, where only a nosuid mount or mapped-xattr
//! keeps it from working there; see SECURITY.md).

use std::os::unix::fs::MetadataExt;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::{Config, IdMap, IdRange, SecurityModel};

use crate::common::inproc::{InProc, ROOT};

fn host_xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 1024];
    // SAFETY: buf is writable for its length; both are C strings.
    let got =
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (got >= 0).then(|| buf[..got as usize].to_vec())
}

fn set_xattr(c: &mut InProc, fid: u32, name: &str, value: &[u8]) -> Option<i32> {
    c.walk(fid, 40, &[]).ok();
    let create = Txattrcreate {
        fid: 40,
        name: name.into(),
        attr_size: value.len() as u64,
        flags: 0,
    };
    if let Some(e) = c.call(Tmessage::Xattrcreate(create)).errno() {
        c.clunk(40);
        return Some(e);
    }
    c.write(40, value).ok();
    c.clunk(40).errno()
}

#[test]
fn unmapped_guest_ids_are_refused_by_every_request_that_sets_one() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(1000), Some(1000)).unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    std::os::unix::fs::chown(dir.path().join("f"), Some(1000), Some(1000)).unwrap();
    let mut config = Config::new(dir.path());
    config.security_model = SecurityModel::Passthrough;
    config.uid_map = IdMap::new(vec![IdRange::parse(":0:1000:1:").unwrap()]).unwrap();
    config.gid_map = IdMap::new(vec![IdRange::parse(":0:1000:1:").unwrap()]).unwrap();
    let mut l = InProc::attach(&config, Users::Guest, "9P2000.L", 0);
    l.walk(ROOT, 2, &["f"]).ok();
    for (valid, uid, gid) in [(2u32, 5u32, 0u32), (4, 0, 5), (6, 0xffff_fffe, 0)] {
        let set = Tsetattr {
            fid: 2,
            valid,
            uid,
            gid,
            ..Default::default()
        };
        assert_eq!(
            l.call(Tmessage::Setattr(set)).errno(),
            Some(libc::EINVAL),
            "{valid} {uid} {gid}"
        );
    }
    l.walk(ROOT, 3, &[]).ok();
    let create = Tlcreate {
        fid: 3,
        name: "g".into(),
        flags: 2,
        mode: 0o644,
        gid: 5,
    };
    assert_eq!(
        l.call(Tmessage::Lcreate(create)).errno(),
        Some(libc::EINVAL)
    );
    l.walk(ROOT, 4, &[]).ok();
    let mkdir = Tmkdir {
        dfid: 4,
        name: "h".into(),
        mode: 0o755,
        gid: 5,
    };
    assert_eq!(l.call(Tmessage::Mkdir(mkdir)).errno(), Some(libc::EINVAL));
    // 9P2000.u's numeric owner in Twstat.
    let mut u = InProc::attach(&config, Users::Guest, "9P2000.u", 0);
    u.walk(ROOT, 2, &["f"]).ok();
    let stat = Stat {
        ext: Some(StatExtension {
            n_uid: 5,
            ..StatExtension::DONT_TOUCH
        }),
        ..Stat::DONT_TOUCH
    };
    let wstat = u.call(Tmessage::Wstat(Twstat {
        fid: 2,
        stat: StatBlob(stat),
    }));
    assert_eq!(wstat.errno(), Some(libc::EINVAL));
    // Nothing was made, nothing changed owner.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["f"]);
    assert_eq!(std::fs::metadata(dir.path().join("f")).unwrap().uid(), 1000);
}

#[test]
fn the_daemons_own_attributes_are_invisible_and_capabilities_follow_the_model() {
    // A version 2 capability set: cap_net_raw permitted.
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 13, 0, 0, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    for model in [SecurityModel::Passthrough, SecurityModel::MappedXattr] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let mut config = Config::new(dir.path());
        config.security_model = model;
        let mut c = InProc::attach(&config, Users::Guest, "9P2000.L", 0);
        c.walk(ROOT, 2, &["f"]).ok();
        assert_eq!(
            set_xattr(&mut c, 2, "security.capability", &cap),
            None,
            "{model:?}"
        );
        let (on_host, kept) = match model {
            SecurityModel::MappedXattr => (None, Some(cap.clone())),
            _ => (Some(cap.clone()), None),
        };
        assert_eq!(
            host_xattr(&file, "security.capability"),
            on_host,
            "{model:?}"
        );
        assert_eq!(
            host_xattr(&file, "user.virtfs.security.capability"),
            kept,
            "{model:?}"
        );
        // The daemon's own names: refused, and never listed.
        assert_eq!(
            set_xattr(&mut c, 2, "user.virtfs.uid", &0u32.to_le_bytes()),
            Some(libc::EPERM)
        );
        c.walk(ROOT, 3, &["f"]).ok();
        let walk = c
            .call(Tmessage::Xattrwalk(Txattrwalk {
                fid: 3,
                newfid: 4,
                name: "".into(),
            }))
            .ok();
        let Rmessage::Xattrwalk(x) = walk.msg() else {
            unreachable!()
        };
        let list = c
            .call(Tmessage::Read(Tread {
                fid: 4,
                offset: 0,
                count: x.size as u32,
            }))
            .ok();
        let list = String::from_utf8_lossy(list.data()).into_owned();
        assert!(!list.contains("virtfs"), "{model:?}: {list:?}");
        assert!(list.contains("security.capability"), "{model:?}: {list:?}");
    }
}
