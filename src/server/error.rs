//! The errors of the server's operations: an errno for the client, and
//! the standard text 9P2000 carries for it.

use std::ffi::CString;
use std::io;

/// The standard text of an errno ("No such file or directory"), which is
/// also what the Linux client maps back to the number in 9P2000.
pub fn error_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Result of a server operation: Ok, or the errno for Rlerror.
pub type OpResult<T> = Result<T, Errno>;

/// A host errno, sent to the client in Rlerror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

pub(super) fn errno(e: i32) -> Errno {
    Errno(e)
}

/// A name or path from the wire as a C string; one with a NUL is EINVAL.
pub(super) fn cstring(bytes: &[u8]) -> OpResult<CString> {
    CString::new(bytes).map_err(|_| errno(libc::EINVAL))
}
