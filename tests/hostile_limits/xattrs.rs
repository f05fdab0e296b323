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
    let server = Arc::new(Server::new(&config).unwrap());
    let mut conn = session(&server);
    for fid in 10..14 {
        conn.walk(ROOT, fid, &["f"]).ok();
        xattrcreate(&mut conn, fid, &format!("user.x{fid}"), 65536).unwrap();
    }
    conn.walk(ROOT, 14, &["f"]).ok();
    assert_eq!(
        xattrcreate(&mut conn, 14, "user.y", 65536),
        Err(libc::ENOMEM)
    );
    assert_eq!(xattrcreate(&mut conn, 14, "user.y", 1), Err(libc::ENOMEM));
    conn.walk(ROOT, 2, &["f"]).ok();
    assert_eq!(xattrwalk(&mut conn, 2, 20, "user.big"), Err(libc::ENOMEM));
    assert_eq!(xattrwalk(&mut conn, 2, 20, ""), Err(libc::ENOMEM));
    // Another session is not short of anything.
    let mut other = session(&server);
    other.walk(ROOT, 2, &["f"]).ok();
    assert_eq!(xattrwalk(&mut other, 2, 3, "user.big"), Ok(1000));
    other.walk(ROOT, 4, &["f"]).ok();
    xattrcreate(&mut other, 4, "user.z", 65536).unwrap();
    // A clunk gives its value's bytes back (the unfinished value is not
    // set: EINVAL).
    assert_eq!(conn.clunk(10).errno(), Some(libc::EINVAL));
    assert_eq!(xattrwalk(&mut conn, 2, 20, "user.big"), Ok(1000));
    xattrcreate(&mut conn, 14, "user.y", 65536 - 1000).unwrap(); // the budget, to the byte
    assert_eq!(xattrwalk(&mut conn, 2, 21, "user.big"), Err(libc::ENOMEM));
    conn.clunk(20).ok();
    assert_eq!(xattrwalk(&mut conn, 2, 21, "user.big"), Ok(1000));
    // Tversion drops them all.
    conn.version(MSIZE, "9P2000.L").ok();
    conn.attach_as(ROOT, 0).ok();
    for fid in 10..14 {
        conn.walk(ROOT, fid, &["f"]).ok();
        xattrcreate(&mut conn, fid, &format!("user.x{fid}"), 65536).unwrap();
    }
}
