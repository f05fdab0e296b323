//! Fingerprints of a directory tree, to show that nothing changed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Every entry under `dir` (not following symlinks) with its type, mode,
/// owner, size, mtime, link target or content, and xattrs.
pub fn fingerprint(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let md = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let content = if md.file_type().is_symlink() {
            std::fs::read_link(&path).unwrap().display().to_string()
        } else if md.is_file() {
            format!("{:?}", std::fs::read(&path).unwrap())
        } else {
            String::new()
        };
        let xattrs = xattr_names(&path);
        out.insert(
            rel,
            format!(
                "mode {:o} uid {} gid {} size {} mtime {}.{} nlink {} [{content}] {xattrs:?}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.size(),
                md.mtime(),
                md.mtime_nsec(),
                md.nlink()
            ),
        );
        if md.is_dir() {
            walk(root, &path, out);
        }
    }
}

fn xattr_names(path: &Path) -> Vec<u8> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 65536];
    // SAFETY: buf is writable for its length; c is a C string.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(n.max(0) as usize);
    buf
}
