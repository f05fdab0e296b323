//! A 9P client on the crate's own codec: the upstream connection of the
//! gateway (vhost-user-9p serving a guest from an upstream 9P server
//! rather than from a host directory).
//!
//! One [`Client`] is one connection to one upstream (`unix:PATH` or
//! `tcp:HOST:PORT`). [`Client::version`] agrees the msize and the dialect
//! (9P2000.L, else 9P2000.u, else 9P2000). Then any number of threads call
//! at once, each request with its own tag, pipelined on the one connection:
//! the writer side sends whole frames under one mutex, a reader thread
//! hands each reply to the call with its tag. A reply is read straight into
//! a buffer the caller lends ([`Client::call`]'s `buf`), and decoded from
//! there: an Rread's data is read once, by the kernel, into the caller's
//! buffer.
//!
//! Bounds:
//! - calls in flight: the tags, `max_in_flight` (64 by default, at most
//!   32767); a call waits for a free tag. A Tflush has a tag of its own
//!   (its call's plus `max_in_flight`), so flushing never waits for one.
//! - memory: a reply larger than the msize closes the connection before
//!   anything is allocated for it; each buffer is at most the msize.
//! - a call's tag is reused only once nothing is pending on it: after its
//!   reply, or after the Rflush of its Tflush (flush(5)).
//! - the upstream going away (end of file, an I/O error, a frame that
//!   breaks the framing, a reply to a tag it was not asked on) fails every
//!   waiting and later call with EIO, logged once; nothing hangs on it.
//! - nothing from the upstream can panic the client: every frame is
//!   decoded with the bounds-checked codec and checked against its request
//!   (type, Rread and Rwrite counts, Rwalk length).
//!
//! An error reply (Rlerror, Rerror) is an [`Error::Upstream`] with its
//! errno: Rlerror's, 9P2000.u's number, or 9P2000's text mapped back
//! ([`errno_from_ename`]).

mod demux;
mod error;
mod stream;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::protocol::{self, Dialect, Rmessage, Tmessage, Tversion, NOTAG, RREAD_HEADER_SIZE};
use crate::socket::ListenAddress;
use demux::Shared;
use stream::Stream;

pub use error::{errno_from_ename, Error};

/// Calls in flight at once by default.
pub const DEFAULT_MAX_IN_FLIGHT: u16 = 64;
/// The most calls in flight at once (with their Tflush tags, every tag
/// below NOTAG).
pub const MAX_IN_FLIGHT: u16 = 0x7fff;
/// The smallest msize agreed: room for any fixed-size message.
pub const MIN_MSIZE: u32 = 256;
/// The largest msize asked for: what one reply buffer may grow to.
pub const MAX_MSIZE: u32 = 16 << 20;

/// One connection to an upstream 9P server, shared by the threads calling
/// through it (`&Client` is all a call needs). Dropping it closes the
/// connection: calls still waiting fail with EIO.
pub struct Client {
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

/// A reply, decoded from the buffer the caller lent.
#[derive(Debug)]
pub struct Reply<'b> {
    pub msg: Rmessage<'b>,
    /// An Rread's data (empty for any other reply).
    pub data: &'b [u8],
}

/// A call sent and not yet waited for: [`Pending::wait`] gives its reply.
/// Dropped without waiting, the call is abandoned: flushed if it is still
/// unanswered, its reply (if one comes) discarded.
pub struct Pending<'b> {
    shared: Arc<Shared>,
    /// The slot: the call tag, or `n` for Tversion.
    slot: usize,
    id: u64,
    expect: Expect,
    buf: Option<&'b mut Vec<u8>>,
}

/// Flushes one call from any thread ([`Pending::canceller`]).
#[derive(Clone)]
pub struct Canceller {
    shared: Arc<Shared>,
    tag: u16,
    id: u64,
}

/// What the reply to a request may be.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// The request's type.
    msg_type: u8,
    /// Tread, Twrite: the most bytes the reply may count.
    count: u32,
    /// Twalk: the most qids the Rwalk may carry.
    names: usize,
}

impl Expect {
    fn of(request: &Tmessage<'_>) -> Expect {
        let (count, names) = match request {
            Tmessage::Read(r) => (r.count, 0),
            Tmessage::Write(w) => (w.count, 0),
            Tmessage::Walk(w) => (0, w.names.len()),
            _ => (0, 0),
        };
        Expect {
            msg_type: request.msg_type(),
            count,
            names,
        }
    }
}

/// A connection to a 9P server, not yet a [`Client`] (no reader thread).
pub struct Connection {
    address: String,
    stream: Stream,
}

impl Connection {
    /// Connects to `address`: `unix:PATH` or `tcp:HOST:PORT` (`tcp:PORT`:
    /// loopback).
    pub fn open(address: &str) -> Result<Connection, Error> {
        let parsed = ListenAddress::parse(address).map_err(|what| Error::Connect {
            errno: libc::EINVAL,
            what,
        })?;
        let stream = Stream::connect(&parsed).map_err(|e| Error::Connect {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            what: format!("cannot connect to upstream {address}: {e}"),
        })?;
        Ok(Connection {
            address: address.to_string(),
            stream,
        })
    }
}

impl Client {
    /// Connects to `address`: `unix:PATH` or `tcp:HOST:PORT` (`tcp:PORT`:
    /// loopback). Then [`Client::version`] before any call.
    pub fn connect(address: &str) -> Result<Client, Error> {
        Client::connect_with(address, DEFAULT_MAX_IN_FLIGHT)
    }

    /// [`Client::connect`] with at most `max_in_flight` calls in flight
    /// (1 to [`MAX_IN_FLIGHT`]).
    pub fn connect_with(address: &str, max_in_flight: u16) -> Result<Client, Error> {
        Client::over(Connection::open(address)?, max_in_flight)
    }

    /// A client over `connection`, made earlier (as the daemon does for a
    /// TCP upstream before its sandbox takes the network away).
    pub fn over(connection: Connection, max_in_flight: u16) -> Result<Client, Error> {
        let Connection { address, stream } = connection;
        if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
            return Err(Error::request(
                libc::EINVAL,
                format!("{max_in_flight} calls in flight: 1 to {MAX_IN_FLIGHT}"),
            ));
        }
        let shared = Arc::new(Shared::new(address.clone(), stream, max_in_flight));
        let reading = shared.clone();
        let reader = std::thread::Builder::new()
            .name("9p-upstream".into())
            .spawn(move || reading.read_replies())
            .map_err(|e| Error::Connect {
                errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
                what: format!("cannot start the reader of upstream {address}: {e}"),
            })?;
        Ok(Client {
            shared,
            reader: Some(reader),
        })
    }

    /// Agrees the msize (at most `msize`) and the dialect: `preferred`,
    /// else the next below it (9P2000.L, 9P2000.u, 9P2000), as version(5):
    /// the upstream answers "unknown" or a version it speaks, no later than
    /// the one asked. Starts a new session upstream (every fid is gone);
    /// only while no call is in flight. Returns the msize and dialect.
    pub fn version(&self, msize: u32, preferred: Dialect) -> Result<(u32, Dialect), Error> {
        if !(MIN_MSIZE..=MAX_MSIZE).contains(&msize) {
            return Err(Error::request(
                libc::EINVAL,
                format!("msize {msize}: {MIN_MSIZE} to {MAX_MSIZE}"),
            ));
        }
        {
            let n = self.shared.n as usize;
            let mut state = self.shared.lock();
            if let Some(why) = &state.closed {
                return Err(Error::Disconnected(why.clone()));
            }
            if state.negotiating || state.free.len() != n || state.slots.iter().any(|s| s.id != 0) {
                return Err(Error::request(
                    libc::EBUSY,
                    "Tversion while calls are in flight",
                ));
            }
            state.negotiating = true;
            state.msize = 0;
        }
        // Latest first: an upstream answers with the version asked or an
        // earlier one it speaks.
        let order = [Dialect::Linux, Dialect::Unix, Dialect::Plan9];
        let first = order.iter().position(|&d| d == preferred).unwrap_or(0);
        let mut answers = Vec::new();
        for (i, &asked) in order.iter().enumerate().skip(first) {
            let (agreed, version) = match self.exchange_version(msize, asked) {
                Ok(answer) => answer,
                Err(e) => {
                    self.end_negotiation(0, preferred);
                    return Err(e);
                }
            };
            let dialect = order[i..]
                .iter()
                .copied()
                .find(|&d| version_name(d).as_bytes() == version);
            let Some(dialect) = dialect else {
                answers.push(format!(
                    "{:?} to {}",
                    String::from_utf8_lossy(&version),
                    version_name(asked)
                ));
                continue;
            };
            if !(MIN_MSIZE..=msize).contains(&agreed) {
                self.end_negotiation(0, preferred);
                return Err(Error::Protocol(format!(
                    "upstream {} agreed msize {agreed} (asked {msize}, least {MIN_MSIZE})",
                    self.shared.address
                )));
            }
            self.end_negotiation(agreed, dialect);
            return Ok((agreed, dialect));
        }
        self.end_negotiation(0, preferred);
        let asked: Vec<&str> = order[first..].iter().map(|&d| version_name(d)).collect();
        Err(Error::Protocol(format!(
            "upstream {} speaks none of {}: it answered {}",
            self.shared.address,
            asked.join(", "),
            answers.join(", ")
        )))
    }

    /// Sends Tversion asking `asked` and returns the Rversion's msize and
    /// version string (an error reply counts as "unknown").
    fn exchange_version(&self, msize: u32, asked: Dialect) -> Result<(u32, Vec<u8>), Error> {
        let n = self.shared.n as usize;
        let mut buf = Vec::new();
        let id = {
            let mut state = self.shared.lock();
            if let Some(why) = &state.closed {
                return Err(Error::Disconnected(why.clone()));
            }
            state.occupy(n, Vec::new())
        };
        self.shared
            .limit
            .store(msize, std::sync::atomic::Ordering::Release);
        let request = Tmessage::Version(Tversion {
            msize,
            version: version_name(asked).into(),
        });
        let pending = self.submit(n, id, &request, &[], msize, &mut buf)?;
        let frame = pending.wait_frame()?;
        match protocol::decode_rmessage(frame) {
            Ok((_, Rmessage::Version(r))) => Ok((r.msize, r.version.as_bytes().to_vec())),
            Ok((_, Rmessage::Error(_) | Rmessage::Lerror(_))) => Ok((0, b"unknown".to_vec())),
            Ok((_, other)) => Err(Error::Protocol(format!(
                "upstream {} answered Tversion with type {}",
                self.shared.address,
                other.msg_type()
            ))),
            Err(e) => Err(Error::Protocol(format!(
                "upstream {} answered Tversion with an undecodable reply: {e}",
                self.shared.address
            ))),
        }
    }

    /// Records the outcome of Tversion: `msize` 0 for none agreed.
    fn end_negotiation(&self, msize: u32, dialect: Dialect) {
        let mut state = self.shared.lock();
        state.negotiating = false;
        state.msize = msize;
        state.dialect = dialect;
        self.shared
            .limit
            .store(msize, std::sync::atomic::Ordering::Release);
    }

    /// Sends `request` (and `write_data`, a Twrite's data) and waits for
    /// its reply, read into `buf`: the buffer is lent to the client and
    /// holds the reply frame when this returns (its allocation is reused
    /// call after call). An error reply is an `Err` with its errno.
    pub fn call<'b>(
        &self,
        request: &Tmessage<'_>,
        write_data: &[u8],
        buf: &'b mut Vec<u8>,
    ) -> Result<Reply<'b>, Error> {
        self.start(request, write_data, buf)?.wait()
    }

    /// Sends `request` (and `write_data`) and returns at once: the reply is
    /// waited for with [`Pending::wait`], the call flushed with
    /// [`Pending::cancel`] or a [`Canceller`]. Waits for a free tag when
    /// `max_in_flight` calls are in flight.
    pub fn start<'b>(
        &self,
        request: &Tmessage<'_>,
        write_data: &[u8],
        buf: &'b mut Vec<u8>,
    ) -> Result<Pending<'b>, Error> {
        match request {
            Tmessage::Version(_) => {
                return Err(Error::request(libc::EINVAL, "Tversion: use version()"))
            }
            Tmessage::Flush(_) => return Err(Error::request(libc::EINVAL, "Tflush: use cancel()")),
            Tmessage::Write(w) if w.count as usize != write_data.len() => {
                return Err(Error::request(
                    libc::EINVAL,
                    format!("Twrite of {} bytes with {}", w.count, write_data.len()),
                ))
            }
            Tmessage::Write(_) => {}
            _ if !write_data.is_empty() => {
                return Err(Error::request(
                    libc::EINVAL,
                    "data with a request other than Twrite",
                ))
            }
            _ => {}
        }
        let (tag, id, msize) = {
            let mut state = self.shared.lock();
            loop {
                if let Some(why) = &state.closed {
                    return Err(Error::Disconnected(why.clone()));
                }
                if state.msize == 0 || state.negotiating {
                    return Err(Error::request(libc::ENOTCONN, "no version agreed"));
                }
                if !state.dialect.has(request) {
                    return Err(Error::request(
                        libc::EOPNOTSUPP,
                        format!(
                            "message type {} is not {}",
                            request.msg_type(),
                            version_name(state.dialect)
                        ),
                    ));
                }
                if let Some(tag) = state.free.pop_front() {
                    let id = state.occupy(tag as usize, std::mem::take(buf));
                    break (tag, id, state.msize);
                }
                state = self.shared.wait_tag(state);
            }
        };
        self.submit(tag as usize, id, request, write_data, msize, buf)
    }

    /// Sends `request` on slot `slot`, which the caller occupied for call
    /// `id`.
    fn submit<'b>(
        &self,
        slot: usize,
        id: u64,
        request: &Tmessage<'_>,
        write_data: &[u8],
        msize: u32,
        buf: &'b mut Vec<u8>,
    ) -> Result<Pending<'b>, Error> {
        let n = self.shared.n as usize;
        let wire_tag = if slot == n { NOTAG } else { slot as u16 };
        let pending = Pending {
            shared: self.shared.clone(),
            slot,
            id,
            expect: Expect::of(request),
            buf: Some(buf),
        };
        match self.shared.send(wire_tag, request, write_data, msize) {
            Ok(()) => Ok(pending),
            Err(e) => {
                // Not sent (too large) or the connection is gone: nothing
                // is owed on the tag.
                let mut pending = pending;
                {
                    let mut state = self.shared.lock();
                    state.slots[slot].outstanding = false;
                }
                pending.abandon();
                Err(e)
            }
        }
    }

    /// The msize agreed (0 before [`Client::version`]).
    pub fn msize(&self) -> u32 {
        self.shared.lock().msize
    }

    /// The dialect agreed.
    pub fn dialect(&self) -> Dialect {
        self.shared.lock().dialect
    }

    /// The most data one Tread or Twrite may move: the msize less the
    /// room for their headers (IOHDRSZ).
    pub fn iounit(&self) -> u32 {
        self.msize().saturating_sub(protocol::IOHDRSZ)
    }

    /// The upstream's address, as given to `connect`.
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// Tags not free: calls waited for, answered but not collected, or
    /// flushed and not yet answered with Rflush.
    pub fn in_flight(&self) -> usize {
        let state = self.shared.lock();
        self.shared.n as usize - state.free.len()
    }

    /// Why the connection is gone, if it is.
    pub fn closed(&self) -> Option<Error> {
        let state = self.shared.lock();
        state.closed.clone().map(Error::Disconnected)
    }

    /// Closes the connection: waiting calls and later ones fail with EIO.
    pub fn close(&self) {
        self.shared.close(None);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.close(None);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The version string of `dialect`.
fn version_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Linux => "9P2000.L",
        Dialect::Unix => "9P2000.u",
        Dialect::Plan9 => "9P2000",
    }
}

impl<'b> Pending<'b> {
    /// The call's tag on the wire.
    pub fn tag(&self) -> u16 {
        if self.slot == self.shared.n as usize {
            NOTAG
        } else {
            self.slot as u16
        }
    }

    /// A handle that flushes this call from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            shared: self.shared.clone(),
            tag: self.tag(),
            id: self.id,
        }
    }

    /// Flushes the call: sends Tflush unless it is answered or flushed
    /// already. [`Pending::wait`] then gives the reply if the upstream
    /// answered before the Rflush (flush(5): the call happened), else
    /// [`Error::Flushed`] (EINTR). Returns whether a Tflush was sent.
    pub fn cancel(&self) -> bool {
        self.shared.cancel(self.tag(), self.id)
    }

    /// Waits for the reply (or the connection's end: never longer).
    pub fn wait(self) -> Result<Reply<'b>, Error> {
        let outcome = self.collect(None);
        self.finish(outcome)
    }

    /// Waits at most `timeout` for the reply; then flushes the call and
    /// waits at most `timeout` again for the reply or the Rflush. If
    /// neither comes, the call is abandoned ([`Error::TimedOut`]): its
    /// reply, if one comes, is discarded and its tag freed at the Rflush.
    pub fn wait_timeout(mut self, timeout: Duration) -> Result<Reply<'b>, Error> {
        if let Some(outcome) = self.collect(Some(timeout)) {
            return self.finish(Some(outcome));
        }
        self.cancel();
        if let Some(outcome) = self.collect(Some(timeout)) {
            return self.finish(Some(outcome));
        }
        self.abandon();
        Err(Error::TimedOut)
    }

    /// The reply frame, unchecked (Tversion's).
    fn wait_frame(mut self) -> Result<&'b [u8], Error> {
        let outcome = self.collect(None);
        self.take_frame(outcome)
    }

    /// Waits for the outcome, at most `timeout`.
    fn collect(&self, timeout: Option<Duration>) -> Option<Result<Vec<u8>, Error>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.shared.lock();
        loop {
            if let Some(outcome) = state.slots[self.slot].outcome.take() {
                return Some(outcome);
            }
            let left = match deadline {
                None => None,
                Some(d) => Some(d.checked_duration_since(Instant::now())?),
            };
            state = self.shared.wait_answer(self.slot, state, left);
        }
    }

    /// Releases the slot and puts the frame in the caller's buffer.
    fn take_frame(&mut self, outcome: Option<Result<Vec<u8>, Error>>) -> Result<&'b [u8], Error> {
        let lent = {
            let mut state = self.shared.lock();
            let s = &mut state.slots[self.slot];
            if s.id != self.id {
                return Err(Error::Protocol("a call collected twice".into()));
            }
            s.waiter = false;
            let lent = std::mem::take(&mut s.buf);
            self.shared.release(&mut state, self.slot);
            lent
        };
        let Some(buf) = self.buf.take() else {
            return Err(Error::Protocol("a call collected twice".into()));
        };
        match outcome.unwrap_or(Err(Error::TimedOut)) {
            Ok(frame) => {
                *buf = frame;
                Ok(buf)
            }
            Err(e) => {
                *buf = lent;
                Err(e)
            }
        }
    }

    /// Checks and decodes the outcome against the request.
    fn finish(mut self, outcome: Option<Result<Vec<u8>, Error>>) -> Result<Reply<'b>, Error> {
        let expect = self.expect;
        let frame = self.take_frame(outcome)?;
        decode_reply(frame, &expect, &self.shared.address)
    }

    /// Gives the call up: flushed if still unanswered (its reply then
    /// discarded), the caller's buffer given back.
    fn abandon(&mut self) {
        let n = self.shared.n as usize;
        let flush = {
            let mut state = self.shared.lock();
            let closed = state.closed.is_some();
            let s = &mut state.slots[self.slot];
            if s.id != self.id || !s.waiter {
                return;
            }
            s.waiter = false;
            let lent = match s.outcome.take() {
                Some(Ok(frame)) => frame,
                _ => std::mem::take(&mut s.buf),
            };
            if let Some(buf) = self.buf.take() {
                *buf = lent;
            }
            let flush = s.outstanding && !s.flushing && !closed && self.slot < n;
            if flush {
                s.flushing = true;
            }
            self.shared.release(&mut state, self.slot);
            flush
        };
        if flush {
            self.shared.send_flush(self.slot as u16);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl Canceller {
    /// [`Pending::cancel`], from any thread; nothing once the call is
    /// answered, flushed or its tag reused.
    pub fn cancel(&self) -> bool {
        self.shared.cancel(self.tag, self.id)
    }
}

/// Decodes a reply frame and checks it answers the request `expect`.
fn decode_reply<'b>(frame: &'b [u8], expect: &Expect, address: &str) -> Result<Reply<'b>, Error> {
    let bad = |what: String| {
        crate::warn_limited!("upstream {address}: {what}");
        Error::Protocol(what)
    };
    let (_, msg) = protocol::decode_rmessage(frame).map_err(|e| {
        bad(format!(
            "an undecodable reply to type {}: {e}",
            expect.msg_type
        ))
    })?;
    let data: &'b [u8] = match msg {
        Rmessage::Lerror(e) => return Err(Error::from_rlerror(&e)),
        Rmessage::Error(e) => return Err(Error::from_rerror(&e)),
        m if m.msg_type() != expect.msg_type.wrapping_add(1) => {
            return Err(bad(format!(
                "answered type {} with type {}",
                expect.msg_type,
                m.msg_type()
            )))
        }
        Rmessage::Read(r) => {
            let data = frame.get(RREAD_HEADER_SIZE..).unwrap_or_default();
            if r.count as usize != data.len() || r.count > expect.count {
                return Err(bad(format!(
                    "an Rread of count {} with {} bytes, for a Tread of {}",
                    r.count,
                    data.len(),
                    expect.count
                )));
            }
            data
        }
        Rmessage::Write(w) if w.count > expect.count => {
            return Err(bad(format!(
                "an Rwrite of count {} for a Twrite of {}",
                w.count, expect.count
            )))
        }
        Rmessage::Walk(w) if w.qids.len() > expect.names => {
            return Err(bad(format!(
                "an Rwalk of {} qids for a Twalk of {} names",
                w.qids.len(),
                expect.names
            )))
        }
        _ => &[],
    };
    Ok(Reply { msg, data })
}
