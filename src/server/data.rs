//! Where the bulk data of Tread and Twrite lives. The server never copies it:
//! a transport hands it a source (Twrite payload) and a sink (Rread data
//! area), and the file I/O goes straight between them and the host file.

use std::io;
use std::os::fd::BorrowedFd;

use super::host;

/// The data of a Twrite, wherever the transport keeps it.
pub trait WriteSource {
    /// Bytes of data available.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Writes the first `count` bytes to `fd` at `offset` (pwritev).
    fn write_to(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize>;
    /// Copies the first bytes into `buf`, for small payloads the server
    /// keeps (xattr values).
    fn copy_to(&mut self, buf: &mut [u8]) -> usize;
}

/// The area an Rread's (or Rreaddir's) data goes to, after the 11-byte
/// `size type tag count` header.
pub trait ReadSink {
    /// Bytes of data the area can take.
    fn capacity(&self) -> usize;
    /// Reads up to `count` bytes of `fd` at `offset` into the area (preadv).
    fn read_from(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize>;
    /// Copies `data` into the area; returns the bytes copied.
    fn copy_from(&mut self, data: &[u8]) -> usize;
    /// Copies the first bytes of the area back out (for the trace).
    fn peek(&self, buf: &mut [u8]) -> usize;
}

/// A source with no data (any request but Twrite).
pub struct NoData;

impl WriteSource for NoData {
    fn len(&self) -> usize {
        0
    }
    fn write_to(&mut self, _fd: BorrowedFd<'_>, _offset: u64, _count: usize) -> io::Result<usize> {
        Ok(0)
    }
    fn copy_to(&mut self, _buf: &mut [u8]) -> usize {
        0
    }
}

/// A Twrite payload held in memory (socket transports, tests).
pub struct SliceSource<'a>(pub &'a [u8]);

impl WriteSource for SliceSource<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn write_to(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize> {
        host::pwrite(fd, &self.0[..count.min(self.0.len())], offset)
    }
    fn copy_to(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        n
    }
}

/// An Rread data area in memory: the bytes after the header of a reply
/// buffer (socket transports, tests).
pub struct VecSink<'a> {
    pub buf: &'a mut Vec<u8>,
    pub limit: usize,
}

impl ReadSink for VecSink<'_> {
    fn capacity(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }
    fn read_from(&mut self, fd: BorrowedFd<'_>, offset: u64, count: usize) -> io::Result<usize> {
        let count = count.min(self.capacity());
        let start = self.buf.len();
        self.buf.resize(start + count, 0);
        let result = host::pread(fd, &mut self.buf[start..], offset);
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        result
    }
    fn copy_from(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity());
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    fn peek(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.buf.len());
        buf[..n].copy_from_slice(&self.buf[..n]);
        n
    }
}
