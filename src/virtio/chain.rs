//! A descriptor chain seen as two byte areas of guest memory: the readable
//! request and the writable reply. Nothing is copied here; the views hand out
//! iovecs for preadv/pwritev straight into guest memory, and copy only the
//! small headers.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, BorrowedFd};

use virtio_queue::DescriptorChain;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    VolatileSlice,
};

use crate::protocol;
use crate::server::{ReadSink, WriteSource};

/// Most iovecs one preadv/pwritev takes.
const IOV_MAX: usize = 1024;

/// A contiguous piece of guest memory, as a host address.
#[derive(Clone, Copy)]
struct Piece {
    ptr: *mut u8,
    len: usize,
}

/// Why a chain cannot be served.
#[derive(Debug)]
pub enum ChainError {
    /// A descriptor points outside guest memory.
    BadAddress,
    /// A readable descriptor follows a writable one.
    Order,
}

/// Reusable storage for the pieces of one chain at a time (one per worker,
/// so serving a request allocates nothing once warmed up).
#[derive(Default)]
pub struct ChainView {
    readable: Vec<Piece>,
    writable: Vec<Piece>,
    readable_len: usize,
    writable_len: usize,
    read_iov: Vec<libc::iovec>,
    write_iov: Vec<libc::iovec>,
}

// SAFETY: the raw pointers are only used by the worker owning the view, and
// only while it holds the chain (and with it the guest memory) they were
// taken from.
unsafe impl Send for ChainView {}

impl ChainView {
    pub fn new() -> Self {
        Self::default()
    }

    /// A view with room for chains of up to `descriptors` pieces each way
    /// before it grows (the Linux client uses at most 128 per request).
    pub fn with_capacity(descriptors: usize) -> Self {
        ChainView {
            readable: Vec::with_capacity(descriptors),
            writable: Vec::with_capacity(descriptors),
            read_iov: Vec::with_capacity(descriptors),
            write_iov: Vec::with_capacity(descriptors),
            ..Self::default()
        }
    }

    /// Splits `chain` into readable and writable pieces of its memory.
    ///
    /// The pointers stay valid while the caller keeps `chain` (which holds
    /// the guest memory) alive: the caller serves the request and returns
    /// the chain to the used ring before dropping it.
    pub fn load<M>(&mut self, chain: &DescriptorChain<M>) -> Result<(), ChainError>
    where
        M: Deref<Target = GuestMemoryMmap> + Clone,
    {
        self.readable.clear();
        self.writable.clear();
        self.readable_len = 0;
        self.writable_len = 0;
        let mem = chain.memory();
        for desc in chain.clone() {
            let writable = desc.is_write_only();
            if !writable && !self.writable.is_empty() {
                return Err(ChainError::Order);
            }
            let (pieces, total) = if writable {
                (&mut self.writable, &mut self.writable_len)
            } else {
                (&mut self.readable, &mut self.readable_len)
            };
            host_pieces(
                mem,
                GuestAddress(desc.addr().0),
                desc.len() as usize,
                pieces,
            )?;
            *total += desc.len() as usize;
        }
        Ok(())
    }

    pub fn readable_len(&self) -> usize {
        self.readable_len
    }

    pub fn writable_len(&self) -> usize {
        self.writable_len
    }

    /// Copies readable bytes from `offset` into `buf`; returns bytes copied.
    pub fn gather(&self, offset: usize, buf: &mut [u8]) -> usize {
        copy_out(&self.readable, offset, buf)
    }

    /// Copies `data` into the writable area at `offset`; returns bytes copied.
    pub fn scatter(&self, offset: usize, data: &[u8]) -> usize {
        copy_in(&self.writable, offset, data)
    }

    /// The request's data (readable bytes `payload_offset..+payload_len`)
    /// as a Twrite source, and the writable bytes from `reply_offset` on as
    /// an Rread sink.
    pub fn data_areas(
        &mut self,
        payload_offset: usize,
        payload_len: usize,
        reply_offset: usize,
    ) -> (ChainPayload<'_>, ChainReplyArea<'_>) {
        (
            ChainPayload {
                pieces: &self.readable,
                offset: payload_offset,
                len: payload_len.min(self.readable_len.saturating_sub(payload_offset)),
                iov: &mut self.read_iov,
            },
            ChainReplyArea {
                pieces: &self.writable,
                offset: reply_offset,
                capacity: self.writable_len.saturating_sub(reply_offset),
                iov: &mut self.write_iov,
            },
        )
    }
}

/// What the queue thread reads of a request before handing it to a worker:
/// enough to track its tag and, for a Tflush, the tag it flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    pub msg_type: u8,
    pub tag: u16,
    /// For a Tflush: `oldtag`.
    pub oldtag: Option<u16>,
    /// For a Tread or Twrite: `count`.
    pub count: Option<u32>,
}

/// Reads the 9P header (and a Tflush's oldtag) at the start of the chain's
/// readable descriptors; None if there is no whole header there.
pub fn peek<M>(chain: &DescriptorChain<M>) -> Option<Peek>
where
    M: Deref<Target = GuestMemoryMmap> + Clone,
{
    // The header, then a Tflush's oldtag[2] or a Tread/Twrite's
    // fid[4] offset[8] count[4].
    let mut buf = [0u8; protocol::TWRITE_HEADER_SIZE];
    let mut got = 0;
    for desc in chain.clone() {
        if desc.is_write_only() || got == buf.len() {
            break;
        }
        let n = (desc.len() as usize).min(buf.len() - got);
        chain
            .memory()
            .read_slice(&mut buf[got..got + n], GuestAddress(desc.addr().0))
            .ok()?;
        got += n;
    }
    if got < protocol::HEADER_SIZE {
        return None;
    }
    let msg_type = buf[4];
    let oldtag = (msg_type == protocol::Tflush::TYPE && got >= protocol::HEADER_SIZE + 2)
        .then(|| u16::from_le_bytes([buf[7], buf[8]]));
    let data = msg_type == protocol::Tread::TYPE || msg_type == protocol::Twrite::TYPE;
    let count = (data && got == buf.len())
        .then(|| u32::from_le_bytes([buf[19], buf[20], buf[21], buf[22]]));
    Some(Peek {
        msg_type,
        tag: u16::from_le_bytes([buf[5], buf[6]]),
        oldtag,
        count,
    })
}

/// Appends the host pieces of guest memory `addr..addr + len` to `pieces`,
/// one per memory region the range crosses.
fn host_pieces(
    mem: &GuestMemoryMmap,
    mut addr: GuestAddress,
    len: usize,
    pieces: &mut Vec<Piece>,
) -> Result<(), ChainError> {
    let mut left = len;
    while left > 0 {
        let (region, start) = mem.to_region_addr(addr).ok_or(ChainError::BadAddress)?;
        let n = ((region.len() - start.raw_value()) as usize).min(left);
        let ptr = region
            .get_host_address(start)
            .map_err(|_| ChainError::BadAddress)?;
        pieces.push(Piece { ptr, len: n });
        left -= n;
        if left > 0 {
            addr = addr.checked_add(n as u64).ok_or(ChainError::BadAddress)?;
        }
    }
    Ok(())
}

/// Iterates the pieces covering `offset..`, with how far into the first to start.
fn pieces_from(pieces: &[Piece], mut offset: usize) -> impl Iterator<Item = (Piece, usize)> + '_ {
    pieces.iter().filter_map(move |p| {
        if offset >= p.len {
            offset -= p.len;
            None
        } else {
            let skip = offset;
            offset = 0;
            Some((*p, skip))
        }
    })
}

/// Copies guest bytes of `pieces` from `offset` into `buf`.
fn copy_out(pieces: &[Piece], offset: usize, buf: &mut [u8]) -> usize {
    let mut done = 0;
    for (piece, skip) in pieces_from(pieces, offset) {
        if done == buf.len() {
            break;
        }
        let n = (piece.len - skip).min(buf.len() - done);
        // SAFETY: the piece is mapped guest memory (see `ChainView::load`)
        // and skip + n <= piece.len.
        let slice = unsafe { VolatileSlice::new(piece.ptr.add(skip), n) };
        slice.copy_to(&mut buf[done..done + n]);
        done += n;
    }
    done
}

/// Copies `data` into the guest bytes of `pieces` from `offset`.
fn copy_in(pieces: &[Piece], offset: usize, data: &[u8]) -> usize {
    let mut done = 0;
    for (piece, skip) in pieces_from(pieces, offset) {
        if done == data.len() {
            break;
        }
        let n = (piece.len - skip).min(data.len() - done);
        // SAFETY: the piece is mapped guest memory (see `ChainView::load`)
        // and skip + n <= piece.len.
        let slice = unsafe { VolatileSlice::new(piece.ptr.add(skip), n) };
        slice.copy_from(&data[done..done + n]);
        done += n;
    }
    done
}

/// Fills `iov` with up to `count` bytes of `pieces` from `offset`.
fn build_iov(pieces: &[Piece], offset: usize, count: usize, iov: &mut Vec<libc::iovec>) -> usize {
    iov.clear();
    let mut total = 0;
    for (piece, skip) in pieces_from(pieces, offset) {
        if total == count || iov.len() == IOV_MAX {
            break;
        }
        let n = (piece.len - skip).min(count - total);
        iov.push(libc::iovec {
            // SAFETY: skip < piece.len, so the pointer stays in the piece.
            iov_base: unsafe { piece.ptr.add(skip) }.cast(),
            iov_len: n,
        });
        total += n;
    }
    total
}

/// The kernel's fault-around window: a read fault on a page of shared
/// memory maps the pages around it that exist, up to 16 (64 KiB).
const FAULT_AROUND: usize = 64 * 1024;

/// Reads one byte of every fault-around window the iovecs touch, before a
/// preadv writes to them.
///
/// Guest pages this process has not touched yet are not mapped in its page
/// tables even when the guest has written them through the VMM's mapping
/// (the pages of a 6.1 guest's page cache are: `mincore` finds them
/// present): the copy in preadv would then take one write fault per 4 KiB,
/// 262,144 for a GiB read into the guest's page cache. A read fault maps
/// the whole window at once, writable (shared memory has no dirty tracking);
/// on pages already mapped the reads cost a cache miss each.
fn map_ahead(iov: &[libc::iovec]) {
    for v in iov {
        let start = v.iov_base as usize;
        let end = start + v.iov_len;
        let mut at = start;
        while at < end {
            // SAFETY: `at` lies inside an iovec over mapped guest memory
            // (see `build_iov`); a volatile byte read has no other effect.
            unsafe { std::ptr::read_volatile(at as *const u8) };
            at = (at & !(FAULT_AROUND - 1)) + FAULT_AROUND;
        }
    }
}

/// preadv64 or pwritev64 of `iov` at `offset`.
fn vectored_io(
    call: unsafe extern "C" fn(i32, *const libc::iovec, i32, i64) -> isize,
    fd: BorrowedFd<'_>,
    iov: &[libc::iovec],
    offset: u64,
) -> io::Result<usize> {
    // SAFETY: the iovecs were built by `build_iov` over pieces of mapped
    // guest memory (see `ChainView::load`), readable for pwritev and
    // guest-writable for preadv (the chain's writable descriptors), and the
    // memory guard outlives the call.
    let ret = unsafe {
        call(
            fd.as_raw_fd(),
            iov.as_ptr(),
            iov.len() as i32,
            offset as i64,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Twrite data in the chain's readable descriptors.
pub struct ChainPayload<'a> {
    pieces: &'a [Piece],
    offset: usize,
    len: usize,
    iov: &'a mut Vec<libc::iovec>,
}

impl WriteSource for ChainPayload<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn write_to(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize> {
        let count = count.min(self.len);
        build_iov(self.pieces, self.offset, count, self.iov);
        vectored_io(libc::pwritev64, fd, self.iov, offset)
    }

    fn copy_to(&mut self, buf: &mut [u8]) -> usize {
        let want = buf.len().min(self.len);
        copy_out(self.pieces, self.offset, &mut buf[..want])
    }
}

/// The data area of an Rread in the chain's writable descriptors.
pub struct ChainReplyArea<'a> {
    pieces: &'a [Piece],
    offset: usize,
    capacity: usize,
    iov: &'a mut Vec<libc::iovec>,
}

impl ReadSink for ChainReplyArea<'_> {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn read_from(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize> {
        let count = count.min(self.capacity);
        if count == 0 {
            return Ok(0);
        }
        build_iov(self.pieces, self.offset, count, self.iov);
        map_ahead(self.iov);
        vectored_io(libc::preadv64, fd, self.iov, offset)
    }

    fn copy_from(&mut self, data: &[u8]) -> usize {
        let want = data.len().min(self.capacity);
        copy_in(self.pieces, self.offset, &data[..want])
    }

    fn peek(&self, buf: &mut [u8]) -> usize {
        let want = buf.len().min(self.capacity);
        copy_out(self.pieces, self.offset, &mut buf[..want])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minor faults this thread has taken.
    fn minor_faults() -> i64 {
        // SAFETY: getrusage fills the zeroed struct it is given.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
            usage.ru_minflt
        }
    }

    /// Maps `len` bytes of `fd` shared, read-write.
    fn map(fd: i32, len: usize) -> *mut u8 {
        // SAFETY: a fresh shared mapping of a memfd of at least `len` bytes.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p.cast()
    }

    #[test]
    fn map_ahead_maps_pages_the_guest_touched_a_window_at_a_time() {
        const PAGES: usize = 1024;
        let len = PAGES * 4096;
        // SAFETY: memfd_create with a valid name; ftruncate of the new fd.
        let fd = unsafe { libc::memfd_create(c"guest".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is the memfd just made.
        assert_eq!(unsafe { libc::ftruncate(fd, len as i64) }, 0);
        // The "guest" writes every page through its own mapping.
        let guest = map(fd, len);
        for page in 0..PAGES {
            // SAFETY: inside the mapping.
            unsafe { guest.add(page * 4096).write_volatile(1) };
        }
        // The daemon's mapping: one iovec per page, in a scattered order,
        // as the guest's page cache hands them out.
        let daemon = map(fd, len);
        let iov: Vec<libc::iovec> = (0..PAGES)
            .map(|k| libc::iovec {
                // SAFETY: inside the mapping.
                iov_base: unsafe { daemon.add((k * 37 % PAGES) * 4096) }.cast(),
                iov_len: 4096,
            })
            .collect();
        let before = minor_faults();
        map_ahead(&iov);
        for v in &iov {
            // SAFETY: inside the mapping; stands for the preadv's copy.
            unsafe { v.iov_base.cast::<u8>().write_volatile(2) };
        }
        let faults = minor_faults() - before;
        // One fault per 16 pages, against 1,024 without the map-ahead.
        assert!(
            faults <= (PAGES / 16 + 8) as i64,
            "{faults} faults for {PAGES} pages"
        );
        // SAFETY: unmapping what was mapped above, closing the memfd.
        unsafe {
            libc::munmap(guest.cast(), len);
            libc::munmap(daemon.cast(), len);
            libc::close(fd);
        }
    }
}
