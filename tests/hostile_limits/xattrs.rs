//! Xattr values being written: the bound on their bytes.

use super::*;

/// Txattrcreate and Txattrwalk beyond a session's budget of xattr bytes
/// answer ENOMEM; a clunk or Tversion gives the bytes back; another
/// session has its own budget.
#[test]
fn xattr_bytes_beyond_the_bound_are_enomem() {
    let _s = serial();
    let dir = share();
    let path =
        std::ffi::CString::new(dir.path().join("f").into_os_string().into_encoded_bytes()).unwrap();
    let value = vec![7u8; 1000];
    // SAFETY: valid C strings and a buffer of the length given.
    let set = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"user.big".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(set, 0, "setxattr: {}", std::io::Error::last_os_error());
    let mut config = config(dir.path());
    config.max_xattr_bytes = 4 * 65536;
    let server = Server::new(&config).unwrap();
    let mut conn = Conn::new(&server);
    for fid in 10..14 {
        conn.walk(ROOT, fid, &["f"]).unwrap();
        conn.xattrcreate(fid, &format!("user.x{fid}"), 65536)
            .unwrap();
    }
    conn.walk(ROOT, 14, &["f"]).unwrap();
    assert_eq!(conn.xattrcreate(14, "user.y", 65536), Err(libc::ENOMEM));
    assert_eq!(conn.xattrcreate(14, "user.y", 1), Err(libc::ENOMEM));
    conn.walk(ROOT, 2, &["f"]).unwrap();
    assert_eq!(conn.xattrwalk(2, 20, "user.big"), Err(libc::ENOMEM));
    assert_eq!(conn.xattrwalk(2, 20, ""), Err(libc::ENOMEM));
    // Another session is not short of anything.
    let mut other = Conn::new(&server);
    other.walk(ROOT, 2, &["f"]).unwrap();
    assert_eq!(other.xattrwalk(2, 3, "user.big"), Ok(1000));
    other.walk(ROOT, 4, &["f"]).unwrap();
    other.xattrcreate(4, "user.z", 65536).unwrap();
    // A clunk gives its value's bytes back (the unfinished value is not
    // set: EINVAL).
    assert_eq!(conn.clunk(10), Err(libc::EINVAL));
    assert_eq!(conn.xattrwalk(2, 20, "user.big"), Ok(1000));
    conn.xattrcreate(14, "user.y", 65536 - 1000).unwrap(); // the budget, to the byte
    assert_eq!(conn.xattrwalk(2, 21, "user.big"), Err(libc::ENOMEM));
    conn.clunk(20).unwrap();
    assert_eq!(conn.xattrwalk(2, 21, "user.big"), Ok(1000));
    // Tversion drops them all.
    conn.version("9P2000.L");
    conn.attach(ROOT).unwrap();
    for fid in 10..14 {
        conn.walk(ROOT, fid, &["f"]).unwrap();
        conn.xattrcreate(fid, &format!("user.x{fid}"), 65536)
            .unwrap();
    }
}
