//! The descriptor budget: how many descriptors the fids of the process
//! hold (the open file limit is the process's), and the slots of the files
//! a session may hold open.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::server::Errno;

/// Descriptors the fids of this process hold (O_PATH and open ones): the
/// open file limit is the process's, whatever the server or session.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// How many descriptors fids hold, in the whole process.
pub fn held_descriptors() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// A descriptor counted in [`held_descriptors`] while it lives, beside the
/// fids' own, and among the session's open files (`slot`): a lock owner's
/// open file description (lock.rs), which no sweep can close. So sweeps
/// close that many more idle ones, and a session holds no more such
/// descriptors than its bound on open files.
pub struct HeldFd {
    fd: OwnedFd,
    _slot: OpenSlot,
}

impl HeldFd {
    pub fn new(fd: OwnedFd, slot: OpenSlot) -> Self {
        hold();
        HeldFd { fd, _slot: slot }
    }
}

impl AsFd for HeldFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for HeldFd {
    fn drop(&mut self) {
        release();
    }
}

/// Counts one more descriptor held by a fid.
pub(crate) fn hold() {
    HELD.fetch_add(1, Ordering::Relaxed);
}

/// Counts one descriptor fewer.
pub(crate) fn release() {
    HELD.fetch_sub(1, Ordering::Relaxed);
}

/// One of the files a session may hold open, given back when the open
/// file goes (clunk, Tversion, the session's end).
pub struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OpenSlot {
    /// A slot for one more open file counted in `open_files`, or EMFILE if
    /// it holds `max`.
    pub(crate) fn take(open_files: &Arc<AtomicUsize>, max: usize) -> Result<OpenSlot, Errno> {
        open_files
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Errno(libc::EMFILE))?;
        Ok(OpenSlot(Arc::clone(open_files)))
    }
}
