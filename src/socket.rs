//! The socket transports: 9P over Unix or TCP stream sockets, for Plan 9
//! machines, AF_UNIX users and tests. Each connection is its own session
//! (its own fids), served by its own thread, one request at a time; when
//! the peer goes away, everything it held is released.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use log::{info, warn};

use crate::protocol::{self, Header, Tmessage};
use crate::server::{Server, Session, SliceSource, VecSink, MAX_MSIZE};

/// Where to listen, as given to `--listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    Unix(PathBuf),
    Tcp(String),
}

impl ListenAddress {
    /// Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:PORT` means loopback).
    pub fn parse(s: &str) -> Result<ListenAddress, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, as in unix:/run/9p.sock".into());
            }
            return Ok(ListenAddress::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            let addr = if addr.parse::<u16>().is_ok() {
                format!("127.0.0.1:{addr}")
            } else {
                addr.to_string()
            };
            let Some((host, port)) = addr.rsplit_once(':') else {
                return Err(format!("{s:?}: expected tcp:HOST:PORT"));
            };
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("{s:?}: expected tcp:HOST:PORT"));
            }
            return Ok(ListenAddress::Tcp(addr));
        }
        Err(format!("{s:?}: expected unix:PATH or tcp:HOST:PORT"))
    }
}

/// A bound listener.
pub enum SocketListener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl SocketListener {
    /// Binds (a Unix socket path must not exist; the caller clears stale ones).
    pub fn bind(address: &ListenAddress) -> io::Result<SocketListener> {
        Ok(match address {
            ListenAddress::Unix(path) => SocketListener::Unix(UnixListener::bind(path)?),
            ListenAddress::Tcp(addr) => SocketListener::Tcp(TcpListener::bind(addr.as_str())?),
        })
    }

    pub fn local_description(&self) -> String {
        match self {
            SocketListener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix:?".into()),
            SocketListener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("tcp:{a}"))
                .unwrap_or_else(|_| "tcp:?".into()),
        }
    }

    /// Accepts connections forever, serving each on its own thread.
    pub fn serve(self, server: Arc<Server>) {
        loop {
            let accepted: io::Result<(Box<dyn Connection>, String)> = match &self {
                SocketListener::Unix(l) => l
                    .accept()
                    .map(|(s, _)| (Box::new(s) as Box<dyn Connection>, "unix peer".to_string())),
                SocketListener::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    (Box::new(s) as Box<dyn Connection>, a.to_string())
                }),
            };
            match accepted {
                Ok((stream, peer)) => {
                    let server = server.clone();
                    let spawned = thread::Builder::new()
                        .name("9p-conn".into())
                        .spawn(move || {
                            info!("9P connection from {peer}");
                            match serve_connection(&server, stream) {
                                Ok(()) => info!("9P connection from {peer} closed"),
                                Err(e) => info!("9P connection from {peer} ended: {e}"),
                            }
                        });
                    if let Err(e) = spawned {
                        warn!("cannot start a connection thread: {e}");
                    }
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

/// A byte stream a 9P client talks over.
pub trait Connection: Read + Write + Send {}
impl<T: Read + Write + Send> Connection for T {}

/// Serves one connection until the peer closes it. Returns Err on a
/// transport error or a frame that cannot be a 9P message.
pub fn serve_connection(server: &Server, mut stream: Box<dyn Connection>) -> io::Result<()> {
    let session = Session::new();
    let mut frame = Vec::new();
    let mut reply = Vec::new();
    let mut data = Vec::new();
    loop {
        let mut size = [0u8; 4];
        match stream.read_exact(&mut size) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let size = u32::from_le_bytes(size);
        if (size as usize) < protocol::HEADER_SIZE || size > MAX_MSIZE.max(session.msize()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad message size {size}"),
            ));
        }
        frame.clear();
        frame.extend_from_slice(&size.to_le_bytes());
        frame.resize(size as usize, 0);
        stream.read_exact(&mut frame[4..])?;
        serve_frame(server, &session, &frame, &mut reply, &mut data);
        reply.extend_from_slice(&data);
        stream.write_all(&reply)?;
    }
}

/// Serves one whole request frame of `session` (the caller has checked its
/// size): the reply (an Rreaddir's entries included) in `reply`, the data
/// of an Rread in `data` (to be sent after it).
pub fn serve_frame(
    server: &Server,
    session: &Session,
    frame: &[u8],
    reply: &mut Vec<u8>,
    data: &mut Vec<u8>,
) {
    data.clear();
    let Ok(header) = Header::parse(frame) else {
        reply.clear();
        return;
    };
    let body = &frame[protocol::HEADER_SIZE..];
    match Tmessage::decode(header.msg_type, body) {
        Ok(msg) => {
            let payload = if header.msg_type == protocol::Twrite::TYPE {
                &frame[protocol::TWRITE_HEADER_SIZE.min(frame.len())..]
            } else {
                &[][..]
            };
            let limit = (session.msize() as usize).saturating_sub(protocol::RREAD_HEADER_SIZE);
            let mut sink = VecSink { buf: data, limit };
            server.handle(
                session,
                header.tag,
                msg,
                &mut SliceSource(payload),
                &mut sink,
                reply,
            );
            if reply.get(4) != Some(&protocol::Rread::TYPE) {
                data.clear(); // only an Rread's data follows its reply
            }
        }
        Err(e) => session.undecodable_reply(header.msg_type, header.tag, e, reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            ListenAddress::parse("unix:/run/x.sock"),
            Ok(ListenAddress::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            ListenAddress::parse("tcp:564"),
            Ok(ListenAddress::Tcp("127.0.0.1:564".into()))
        );
        assert_eq!(
            ListenAddress::parse("tcp:0.0.0.0:5640"),
            Ok(ListenAddress::Tcp("0.0.0.0:5640".into()))
        );
        assert_eq!(
            ListenAddress::parse("tcp:[::1]:5640"),
            Ok(ListenAddress::Tcp("[::1]:5640".into()))
        );
        for bad in ["unix:", "tcp:", "tcp:host", "tcp:host:x", "udp:1", "/path"] {
            assert!(ListenAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
