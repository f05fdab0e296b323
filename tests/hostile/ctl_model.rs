//! Control-file commands go through the id maps and the security model,
//! as Tsetattr, Tmknod and Tsymlink do: no host uid the map does not give,
//! no real setuid bits, fifos or device nodes under mapped-xattr.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::user::Users;
use vhost_user_9p::server::{Config, IdMap, IdRange, SecurityModel};

use crate::common::inproc::{InProc, ROOT};

/// Writes `commands` to the control file at `path`; the errno if refused.
fn ctl(c: &mut InProc, path: &[&str], commands: &str) -> Option<i32> {
    c.walk(ROOT, 30, path).ok();
    c.call(Tmessage::Open(Topen { fid: 30, mode: 1 })).ok();
    let errno = c.write(30, commands.as_bytes()).errno();
    c.clunk(30).ok();
    errno
}

/// The control file's stat line, as `key value` pairs.
fn stat_line(c: &mut InProc, path: &[&str]) -> String {
    c.walk(ROOT, 31, path).ok();
    c.call(Tmessage::Open(Topen { fid: 31, mode: 0 })).ok();
    let read = c
        .call(Tmessage::Read(Tread {
            fid: 31,
            offset: 0,
            count: 4096,
        }))
        .ok();
    let line = String::from_utf8(read.data().to_vec()).unwrap();
    c.clunk(31).ok();
    line
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == key {
            return words.next().unwrap();
        }
    }
    panic!("{key} not in {line}")
}

fn xattr_u32(path: &Path, name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 4];
    // SAFETY: buf is writable for 4 bytes; both are C strings.
    let got = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 4) };
    (got == 4).then(|| u32::from_le_bytes(buf))
}

#[test]
fn ctl_chown_goes_through_the_id_maps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    std::os::unix::fs::chown(&file, Some(3000), Some(3000)).unwrap();
    // The share belongs to the guest's root (host 1000).
    std::os::unix::fs::chown(dir.path(), Some(1000), Some(1000)).unwrap();
    let mut config = Config::new(dir.path());
    config.ctl = true;
    config.security_model = SecurityModel::Passthrough;
    config.uid_map = IdMap::new(vec![IdRange::parse(":0:1000:1:").unwrap()]).unwrap();
    config.gid_map = IdMap::new(vec![IdRange::parse(":0:1000:1:").unwrap()]).unwrap();
    let mut c = InProc::attach(&config, Users::Guest, "9P2000.u", 0);
    // Guest uid 0 is host uid 1000, never host root.
    assert_eq!(ctl(&mut c, &[",ctl", "f"], "chown 0 0\n"), None);
    let md = std::fs::metadata(&file).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    // The control file shows the guest's view of it.
    let line = stat_line(&mut c, &[",ctl", "f"]);
    assert_eq!(
        (field(&line, "uid"), field(&line, "gid")),
        ("0", "0"),
        "{line}"
    );
    // A guest uid outside the map is refused; the file keeps its owner.
    assert_eq!(
        ctl(&mut c, &[",ctl", "f"], "chown 5 -1\n"),
        Some(libc::EINVAL)
    );
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 1000);
    // mknod and symlink through `,ctl/,` are owned by the session's user,
    // mapped: host 1000, not root.
    assert_eq!(
        ctl(&mut c, &[",ctl", ","], "mknod p p 0644 0 0\nsymlink f s\n"),
        None
    );
    for name in ["p", "s"] {
        let md = std::fs::symlink_metadata(dir.path().join(name)).unwrap();
        assert_eq!(md.uid(), 1000, "{name}");
    }
}

#[test]
fn ctl_keeps_mapped_xattr_modes_and_nodes_off_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut config = Config::new(dir.path());
    config.ctl = true;
    config.security_model = SecurityModel::MappedXattr;
    let mut c = InProc::attach(&config, Users::Guest, "9P2000.u", 0);
    assert_eq!(ctl(&mut c, &[",ctl", "f"], "chmod 4755\nchown 0 0\n"), None);
    let md = std::fs::metadata(&file).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o600, "host mode changed");
    assert_eq!(
        xattr_u32(&file, "user.virtfs.mode"),
        Some(libc::S_IFREG | 0o4755)
    );
    assert_eq!(xattr_u32(&file, "user.virtfs.uid"), Some(0));
    let line = stat_line(&mut c, &[",ctl", "f"]);
    assert_eq!(field(&line, "mode"), "0104755", "{line}");
    // Device nodes, fifos, sockets and symlinks are regular host files
    // carrying their type, as Tmknod and Tsymlink make them.
    let made = "mknod c c 0644 1 3\nmknod p p 0644 0 0\nmknod s s 0644 0 0\nsymlink f l\n";
    assert_eq!(ctl(&mut c, &[",ctl", ","], made), None);
    for (name, kind) in [
        ("c", libc::S_IFCHR),
        ("p", libc::S_IFIFO),
        ("s", libc::S_IFSOCK),
        ("l", libc::S_IFLNK),
    ] {
        let path = dir.path().join(name);
        let ft = std::fs::symlink_metadata(&path).unwrap().file_type();
        assert!(
            ft.is_file() && !ft.is_char_device() && !ft.is_fifo(),
            "{name}: {ft:?}"
        );
        let mode = xattr_u32(&path, "user.virtfs.mode").unwrap();
        assert_eq!(mode & libc::S_IFMT, kind, "{name}");
    }
}
