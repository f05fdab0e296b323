//! The connection to the upstream: one Unix or TCP stream, read by the
//! reader thread and written under the writer's mutex, both through `&`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::socket::ListenAddress;

/// How long connecting to one TCP address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(super) fn connect(address: &ListenAddress) -> io::Result<Stream> {
        match address {
            ListenAddress::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            ListenAddress::Tcp(addr) => {
                let mut last = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
                for resolved in addr.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&resolved, CONNECT_TIMEOUT) {
                        Ok(stream) => {
                            stream.set_nodelay(true)?;
                            return Ok(Stream::Tcp(stream));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    /// Ends both directions: the reader sees end of file, a writer EPIPE.
    pub(super) fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Writes `head` then `data` whole, in one writev where it can.
    pub(super) fn write_two(&self, mut head: &[u8], mut data: &[u8]) -> io::Result<()> {
        let mut w = self;
        while !head.is_empty() || !data.is_empty() {
            let written = if data.is_empty() {
                w.write(head)
            } else if head.is_empty() {
                w.write(data)
            } else {
                w.write_vectored(&[IoSlice::new(head), IoSlice::new(data)])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let from_head = n.min(head.len());
                    head = &head[from_head..];
                    data = data.get(n - from_head..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write_vectored(bufs),
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
