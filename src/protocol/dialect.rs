//! The three dialects a session may speak, as Tversion agrees them, and
//! which messages each has.

use super::Tmessage;

/// The protocol a session speaks, as agreed by Tversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Dialect {
    /// "9P2000.L": the Linux client's dialect.
    Linux = 0,
    /// "9P2000.u": 9P2000 with Unix extensions.
    Unix = 1,
    /// "9P2000": Plan 9's protocol.
    Plan9 = 2,
}

impl Dialect {
    /// The dialect a Tversion's version string asks for and the name the
    /// Rversion answers with; None: "unknown". A suffix the server does not
    /// know is answered with the base protocol, as version(5) says.
    pub fn negotiate(version: &[u8]) -> Option<(Dialect, &'static [u8])> {
        match version {
            b"9P2000.L" => Some((Dialect::Linux, b"9P2000.L")),
            v if v.starts_with(b"9P2000.L.") => Some((Dialect::Linux, b"9P2000.L")),
            b"9P2000.u" => Some((Dialect::Unix, b"9P2000.u")),
            v if v == b"9P2000" || v.starts_with(b"9P2000.") => Some((Dialect::Plan9, b"9P2000")),
            _ => None,
        }
    }

    /// The dialect numbered `n` (as `Dialect as u8`), Linux for any other.
    pub fn from_u8(n: u8) -> Dialect {
        match n {
            1 => Dialect::Unix,
            2 => Dialect::Plan9,
            _ => Dialect::Linux,
        }
    }

    /// Whether the dialect has the message: 9P2000.L has its own messages
    /// and the base ones (Tremove included: the Linux client falls back to
    /// it), 9P2000 and 9P2000.u have Topen, Tcreate, Tstat and Twstat
    /// instead.
    pub fn has(self, request: &Tmessage<'_>) -> bool {
        use Tmessage::*;
        let plan9_only = matches!(request, Open(_) | Create(_) | Stat(_) | Wstat(_));
        let linux_only = matches!(
            request,
            Statfs(_)
                | Lopen(_)
                | Lcreate(_)
                | Symlink(_)
                | Mknod(_)
                | Rename(_)
                | Readlink(_)
                | Getattr(_)
                | Setattr(_)
                | Xattrwalk(_)
                | Xattrcreate(_)
                | Readdir(_)
                | Fsync(_)
                | Lock(_)
                | Getlock(_)
                | Link(_)
                | Mkdir(_)
                | Renameat(_)
                | Unlinkat(_)
        );
        match self {
            Dialect::Linux => !plan9_only,
            Dialect::Unix | Dialect::Plan9 => !linux_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer = Option<(Dialect, &'static [u8])>;

    #[test]
    fn versions_negotiate_to_a_dialect_or_unknown() {
        let cases: [(&[u8], Answer); 7] = [
            (b"9P2000.L", Some((Dialect::Linux, b"9P2000.L"))),
            (b"9P2000.L.x", Some((Dialect::Linux, b"9P2000.L"))),
            (b"9P2000.u", Some((Dialect::Unix, b"9P2000.u"))),
            (b"9P2000", Some((Dialect::Plan9, b"9P2000"))),
            (b"9P2000.x", Some((Dialect::Plan9, b"9P2000"))),
            (b"9P2000.Lx", Some((Dialect::Plan9, b"9P2000"))),
            (b"9P1999", None),
        ];
        for (version, want) in cases {
            assert_eq!(Dialect::negotiate(version), want, "{version:?}");
        }
        for d in [Dialect::Linux, Dialect::Unix, Dialect::Plan9] {
            assert_eq!(Dialect::from_u8(d as u8), d);
        }
    }
}
