//! The socket transports: 9P over Unix or TCP stream sockets, for Plan 9
//! machines, AF_UNIX users and tests. Each connection is its own session
//! (its own fids), served by its own thread, one request at a time; when
//! the peer goes away, everything it held is released.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use log::info;

use crate::protocol::{self, Header};
use crate::server::user::{Credentials, Users};
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

/// Who may connect to the daemon's sockets, and as whom their sessions act.
#[derive(Debug, Clone, Default)]
pub struct SocketAccess {
    /// Unix sockets are mode 0600, owned by the daemon's user; with a
    /// group, 0660 and of that group (`--socket-group`).
    pub group: Option<u32>,
    /// A session attached as uid 0 acts as 65534 (unless `--no-root-squash`).
    pub root_squash: bool,
}

/// Creates a Unix socket file with `bind` so that only the daemon's user
/// (and `group`, if given) may connect: bound under umask 0177 (no window
/// in which the file is more open), then given to the group, mode 0660.
/// `bind` binds and listens at the path it is given: a temporary name
/// beside `path`, renamed to `path` once it listens, so that whoever waits
/// for the file (a VMM, libvirt, a test) never finds it refusing
/// connections. An existing `path` is an error (EEXIST), as for bind(2).
pub fn bind_private<T>(
    path: &Path,
    group: Option<u32>,
    bind: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    let temporary = temporary_name(path);
    let at = temporary.as_deref().unwrap_or(path);
    // SAFETY: umask has no preconditions; the previous mask is restored.
    let previous = unsafe { libc::umask(0o177) };
    let bound = bind(at);
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
    let bound = bound?;
    let placed = (|| {
        if let Some(gid) = group {
            std::os::unix::fs::lchown(at, None, Some(gid))?;
            std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o660))?;
        }
        match &temporary {
            Some(temporary) => rename_no_replace(temporary, path),
            None => Ok(()),
        }
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(at);
        return Err(e);
    }
    Ok(bound)
}

/// `.NAME.PID` beside `path`, if it fits a socket address (108 bytes).
fn temporary_name(path: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let name = path.file_name()?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}", std::process::id()));
    let temporary = path.with_file_name(temporary);
    (temporary.as_os_str().as_bytes().len() < 108).then_some(temporary)
}

/// rename(2) that fails with EEXIST rather than replace `to`; a plain
/// rename where the file system cannot refuse (EINVAL).
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two C strings; renameat2 reads them only.
    let ret = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EINVAL) {
        return Err(error);
    }
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    std::fs::rename(from, to)
}

/// The socket files the daemon made, to remove when it stops: each held by
/// a descriptor of its directory, opened while the host's file system was
/// there, so that removing it names no path the sandbox would resolve in
/// the share.
#[derive(Default)]
pub struct SocketFiles(Vec<(std::os::fd::OwnedFd, std::ffi::CString)>);

impl SocketFiles {
    /// Notes the socket file at `path` (an absolute path).
    pub fn add(&mut self, path: &Path) -> io::Result<()> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let dir = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: `dir` is a C string; a descriptor returned is ours.
        let fd = unsafe { libc::open(dir.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let dir = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        self.0.push((dir, std::ffi::CString::new(name.as_bytes())?));
        Ok(())
    }

    /// The directories' descriptors.
    pub fn dirs(&self) -> impl Iterator<Item = &std::os::fd::OwnedFd> {
        self.0.iter().map(|(dir, _)| dir)
    }

    /// Removes the files (what is gone already is no error).
    pub fn remove(&self) {
        use std::os::fd::AsRawFd;
        for (dir, name) in &self.0 {
            // SAFETY: a directory descriptor we hold and a C string.
            unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
        }
    }
}

/// The user a Unix socket's peer acts as: a process of another user than
/// root and the daemon's acts as itself (its uid, gid and groups, from
/// SO_PEERCRED and SO_PEERGROUPS), whatever it names in Tattach.
fn unix_peer(stream: &UnixStream, root_squash: bool) -> io::Result<Users> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    // SAFETY: ucred is plain data; getsockopt fills at most `len` bytes.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is writable for `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: geteuid has no preconditions.
    if cred.uid == 0 || cred.uid == unsafe { libc::geteuid() } {
        return Ok(Users::Named { root_squash });
    }
    let mut groups = vec![0u32; 256];
    let mut len = (groups.len() * 4) as libc::socklen_t;
    // SAFETY: `groups` is writable for `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if ret < 0 {
        // More than 256 groups (ERANGE) or an old kernel: the primary
        // group alone, never more than the peer has.
        groups.clear();
    } else {
        groups.truncate(len as usize / 4);
    }
    Ok(Users::Peer(Credentials {
        uid: cred.uid,
        gid: cred.gid,
        groups,
    }))
}

/// A bound listener.
pub struct SocketListener {
    socket: Listening,
    access: SocketAccess,
    description: String,
}

enum Listening {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl SocketListener {
    /// Binds (a Unix socket path must not exist; the caller clears stale
    /// ones), a Unix socket as `bind_private` makes it.
    pub fn bind(address: &ListenAddress, access: &SocketAccess) -> io::Result<SocketListener> {
        let (socket, description) = match address {
            ListenAddress::Unix(path) => (
                Listening::Unix(bind_private(path, access.group, |at| {
                    UnixListener::bind(at)
                })?),
                format!("unix:{}", path.display()),
            ),
            ListenAddress::Tcp(addr) => {
                let listener = TcpListener::bind(addr.as_str())?;
                let bound = listener.local_addr().map(|a| a.to_string());
                let description = format!("tcp:{}", bound.as_deref().unwrap_or(addr));
                (Listening::Tcp(listener), description)
            }
        };
        Ok(SocketListener {
            socket,
            access: access.clone(),
            description,
        })
    }

    /// Where it listens (a TCP port as bound, for `tcp:HOST:0`).
    pub fn local_description(&self) -> &str {
        &self.description
    }

    /// Accepts connections forever, serving each on its own thread: at
    /// most `Server::max_connections` at once, on all listeners together.
    /// One beyond is accepted and closed at once, so its client reads end
    /// of file (or ECONNRESET) rather than waiting in the backlog, and a
    /// warning is logged (rate-limited).
    pub fn serve(self, server: Arc<Server>) {
        loop {
            let root_squash = self.access.root_squash;
            type Accepted = (Box<dyn Connection>, String, Users);
            let accepted: io::Result<Accepted> = match &self.socket {
                Listening::Unix(l) => l.accept().and_then(|(s, _)| {
                    let users = unix_peer(&s, root_squash)?;
                    let peer = match &users {
                        Users::Peer(c) => format!("unix peer uid {}", c.uid),
                        _ => "unix peer".to_string(),
                    };
                    Ok((Box::new(s) as Box<dyn Connection>, peer, users))
                }),
                Listening::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    let users = Users::Named { root_squash };
                    (Box::new(s) as Box<dyn Connection>, a.to_string(), users)
                }),
            };
            match accepted {
                Ok((stream, peer, users)) => {
                    let Some(slot) = ConnectionSlot::take(&server) else {
                        drop(stream);
                        crate::warn_limited!(
                            "refusing 9P connection from {peer}: {} connections already \
                             (--max-connections)",
                            server.max_connections()
                        );
                        continue;
                    };
                    let server = server.clone();
                    let spawned = thread::Builder::new()
                        .name("9p-conn".into())
                        .spawn(move || {
                            let _slot = slot;
                            info!("9P connection from {peer}");
                            let session = Session::with_users(users);
                            match serve_session(&server, &session, stream) {
                                Ok(()) => info!("9P connection from {peer} closed"),
                                Err(e) => info!("9P connection from {peer} ended: {e}"),
                            }
                        });
                    if let Err(e) = spawned {
                        crate::warn_limited!("cannot start a connection thread: {e}");
                    }
                }
                Err(e) => {
                    crate::warn_limited!("accept failed: {e}");
                    thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

/// One of the connections a server's listeners serve at once, given back
/// when dropped (with the connection's thread, or with the thread that
/// could not be started).
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(server: &Server) -> Option<ConnectionSlot> {
        let max = server.max_connections();
        server
            .connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(ConnectionSlot(Arc::clone(&server.connections)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A byte stream a 9P client talks over.
pub trait Connection: Read + Write + Send {}
impl<T: Read + Write + Send> Connection for T {}

/// Serves one connection until the peer closes it, as a VMM guest's
/// session (the users it names, the daemon's credentials).
pub fn serve_connection(server: &Server, stream: Box<dyn Connection>) -> io::Result<()> {
    serve_session(server, &Session::new(), stream)
}

/// Serves `session` over one connection until the peer closes it. Returns
/// Err on a transport error or a frame that cannot be a 9P message.
pub fn serve_session(
    server: &Server,
    session: &Session,
    mut stream: Box<dyn Connection>,
) -> io::Result<()> {
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
        // The body as it arrives: `frame` grows with what came (read_to_end
        // at most doubles it), not to the size announced, so a peer that
        // announces a large message and sends nothing holds next to nothing.
        let body = size as u64 - 4;
        if (&mut stream).take(body).read_to_end(&mut frame)? as u64 != body {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        serve_frame(server, session, &frame, &mut reply, &mut data);
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
    let payload = if header.msg_type == protocol::Twrite::TYPE {
        &frame[protocol::TWRITE_HEADER_SIZE.min(frame.len())..]
    } else {
        &[][..]
    };
    let limit = (session.msize() as usize).saturating_sub(protocol::RREAD_HEADER_SIZE);
    let mut sink = VecSink { buf: data, limit };
    server.serve(session, frame, &mut SliceSource(payload), &mut sink, reply);
    if reply.get(4) != Some(&protocol::Rread::TYPE) {
        data.clear(); // only an Rread's data follows its reply
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
