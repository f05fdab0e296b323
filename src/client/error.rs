//! What a call to the upstream can end in, and the errno each maps to.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::protocol::{Rerror, Rlerror};

/// Why a call failed. Every error maps to the errno a gateway answers its
/// own client with ([`Error::errno`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The upstream answered with an error: Rlerror's errno, a 9P2000.u
    /// Rerror's errno, or a 9P2000 Rerror's text mapped to an errno (EIO
    /// for a text that is not a standard one). `ename` is the Rerror text.
    Upstream { errno: i32, ename: Option<String> },
    /// The call was flushed: the upstream answered its Tflush before
    /// answering it, so it never happened (EINTR).
    Flushed,
    /// Neither the call nor its Tflush was answered in time; the call is
    /// abandoned, its tag reserved until the Rflush comes (ETIMEDOUT).
    TimedOut,
    /// The connection is gone: closed by the upstream, an I/O error, a
    /// reply that broke the framing, or [`super::Client::close`]. This call
    /// and every later one fail with EIO; the text says why, once.
    Disconnected(Arc<str>),
    /// This call's reply broke the protocol (it does not decode, is not
    /// the request's reply, or says more than was asked): EIO for this call
    /// only, the framing being intact.
    Protocol(String),
    /// The request was not sent: a Tversion or Tflush given to `call`, a
    /// Twrite whose count is not its data's length, a message the dialect
    /// lacks, one over the msize, or no dialect agreed yet.
    Request { errno: i32, what: String },
    /// The connection could not be made.
    Connect { errno: i32, what: String },
}

impl Error {
    /// The errno this error stands for.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Upstream { errno, .. } => *errno,
            Error::Flushed => libc::EINTR,
            Error::TimedOut => libc::ETIMEDOUT,
            Error::Disconnected(_) | Error::Protocol(_) => libc::EIO,
            Error::Request { errno, .. } | Error::Connect { errno, .. } => *errno,
        }
    }

    pub(super) fn request(errno: i32, what: impl Into<String>) -> Error {
        Error::Request {
            errno,
            what: what.into(),
        }
    }

    /// Rlerror's errno (EIO for one that is not an errno).
    pub(super) fn from_rlerror(e: &Rlerror) -> Error {
        Error::Upstream {
            errno: plausible(e.ecode).unwrap_or(libc::EIO),
            ename: None,
        }
    }

    /// Rerror's errno (9P2000.u) or its text's.
    pub(super) fn from_rerror(e: &Rerror<'_>) -> Error {
        let errno = e
            .errno
            .and_then(plausible)
            .unwrap_or_else(|| errno_from_ename(e.ename.as_bytes()));
        Error::Upstream {
            errno,
            ename: Some(String::from_utf8_lossy(e.ename.as_bytes()).into_owned()),
        }
    }
}

/// An errno from the wire, if it can be one (1..4095, as Linux's).
fn plausible(n: u32) -> Option<i32> {
    (1..4096).contains(&n).then_some(n as i32)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Upstream {
                ename: Some(text), ..
            } => write!(f, "upstream error: {text}"),
            Error::Upstream { errno, .. } => {
                write!(
                    f,
                    "upstream error: {}",
                    io::Error::from_raw_os_error(*errno)
                )
            }
            Error::Flushed => write!(f, "call flushed before the upstream answered it"),
            Error::TimedOut => write!(f, "upstream answered neither the call nor its Tflush"),
            Error::Disconnected(why) => write!(f, "{why}"),
            Error::Protocol(what) => write!(f, "protocol error: {what}"),
            Error::Request { what, .. } => write!(f, "request not sent: {what}"),
            Error::Connect { what, .. } => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::from_raw_os_error(e.errno())
    }
}

/// Standard error texts: Linux's strerror (what Linux 9P2000 servers, this
/// crate's among them, send) and Plan 9's for the same errors.
const TEXTS: &[(&str, i32)] = &[
    ("no such file or directory", libc::ENOENT),
    ("file does not exist", libc::ENOENT),
    ("file not found", libc::ENOENT),
    ("permission denied", libc::EACCES),
    ("operation not permitted", libc::EPERM),
    ("file exists", libc::EEXIST),
    ("file already exists", libc::EEXIST),
    ("not a directory", libc::ENOTDIR),
    ("is a directory", libc::EISDIR),
    ("invalid argument", libc::EINVAL),
    ("directory not empty", libc::ENOTEMPTY),
    ("read-only file system", libc::EROFS),
    ("file system read only", libc::EROFS),
    ("no space left on device", libc::ENOSPC),
    ("input/output error", libc::EIO),
    ("i/o error", libc::EIO),
];

/// The errno a 9P2000 Rerror text stands for: a standard text (the table,
/// then any strerror text), alone or after a `prefix: ` (a file name, a
/// control command); EIO for any other.
pub fn errno_from_ename(ename: &[u8]) -> i32 {
    let Ok(text) = std::str::from_utf8(ename) else {
        return libc::EIO;
    };
    let text = text.trim().to_ascii_lowercase();
    let matches = |standard: &str| {
        text == standard
            || text
                .strip_suffix(standard)
                .is_some_and(|prefix| prefix.ends_with(": ") || prefix.ends_with("' "))
    };
    if let Some(&(_, errno)) = TEXTS.iter().find(|(standard, _)| matches(standard)) {
        return errno;
    }
    (1..134)
        .find(|&n| matches(&strerror(n).to_ascii_lowercase()))
        .unwrap_or(libc::EIO)
}

/// strerror(n) as Rust gives it, without its " (os error N)".
fn strerror(n: i32) -> String {
    let text = io::Error::from_raw_os_error(n).to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerror_texts_map_to_errnos() {
        let cases: &[(&str, i32)] = &[
            ("No such file or directory", libc::ENOENT),
            ("file does not exist", libc::ENOENT),
            ("'x' file does not exist", libc::ENOENT),
            ("ctl: bad: Invalid argument", libc::EINVAL),
            ("Permission denied", libc::EACCES),
            ("Directory not empty", libc::ENOTEMPTY),
            ("Read-only file system", libc::EROFS),
            ("Too many open files", libc::EMFILE),
            ("something else", libc::EIO),
            ("", libc::EIO),
        ];
        for &(text, errno) in cases {
            assert_eq!(errno_from_ename(text.as_bytes()), errno, "{text}");
        }
        assert_eq!(errno_from_ename(b"\xff\xfe"), libc::EIO);
    }

    #[test]
    fn rerror_prefers_its_errno() {
        let e = Rerror {
            ename: "whatever".into(),
            errno: Some(libc::ENOTDIR as u32),
        };
        assert_eq!(Error::from_rerror(&e).errno(), libc::ENOTDIR);
        let e = Rerror {
            ename: "File exists".into(),
            errno: Some(0),
        };
        assert_eq!(Error::from_rerror(&e).errno(), libc::EEXIST);
        assert_eq!(
            Error::from_rlerror(&Rlerror { ecode: 0 }).errno(),
            libc::EIO
        );
        assert_eq!(
            Error::from_rlerror(&Rlerror { ecode: u32::MAX }).errno(),
            libc::EIO
        );
    }
}
