//! POSIX byte-range locks (Tlock, Tgetlock).

use super::{Errno, OpResult, Server, Session};
use crate::protocol;

impl Server {
    pub(super) fn lock(&self, _s: &Session, _t: &protocol::Tlock<'_>) -> OpResult<u8> {
        Err(Errno(libc::EOPNOTSUPP))
    }

    pub(super) fn getlock<'a>(
        &self,
        _s: &Session,
        _t: &protocol::Tgetlock<'a>,
    ) -> OpResult<protocol::Rgetlock<'a>> {
        Err(Errno(libc::EOPNOTSUPP))
    }
}
