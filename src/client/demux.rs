//! The state shared by the callers and the reader thread: the tags (one
//! slot each), the writer, and the reader that hands each reply frame to
//! the call it answers.
//!
//! Tags: calls use `0..n`; the Tflush of call `t` goes as tag `t + n`, so
//! a flush never waits for a tag; Tversion goes as NOTAG, on slot `n`.
//! A tag returns to the free list only when nothing about it is pending:
//! no caller waits on it, the upstream owes no reply to it, and no Tflush
//! of it is unanswered.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::stream::Stream;
use super::Error;
use crate::protocol::{Dialect, Rflush, Tflush, Tmessage, HEADER_SIZE, NOTAG};
use crate::sync::{self, Locked};

pub(super) struct Shared {
    /// The upstream as given to `connect`, for messages.
    pub(super) address: String,
    pub(super) stream: Stream,
    /// Tags for calls: `0..n`.
    pub(super) n: u16,
    /// The encoding buffer; holding it is the right to write a frame.
    writer: Mutex<Vec<u8>>,
    pub(super) state: Mutex<State>,
    /// One per slot: its outcome is in.
    answered: Vec<Condvar>,
    /// A tag went back to the free list (or the connection closed).
    tag_freed: Condvar,
    /// The largest reply frame accepted: the msize agreed (or asked, while
    /// Tversion is in flight).
    pub(super) limit: AtomicU32,
}

pub(super) struct State {
    pub(super) slots: Vec<Slot>,
    pub(super) free: VecDeque<u16>,
    /// Why the connection is gone, once it is.
    pub(super) closed: Option<Arc<str>>,
    /// The msize agreed; 0 before Tversion is answered.
    pub(super) msize: u32,
    pub(super) dialect: Dialect,
    /// A Tversion is being exchanged: no call may start.
    pub(super) negotiating: bool,
    next_id: u64,
}

/// What is pending on one tag.
#[derive(Default)]
pub(super) struct Slot {
    /// Which call holds the slot (0: none), so that a stale canceller
    /// never flushes a later call on the same tag.
    pub(super) id: u64,
    /// A `Pending` still waits for the outcome.
    pub(super) waiter: bool,
    /// The request is sent and neither its reply nor an Rflush came.
    pub(super) outstanding: bool,
    /// Its Tflush is sent and not answered.
    pub(super) flushing: bool,
    /// The reply frame or the error, for the waiter.
    pub(super) outcome: Option<Result<Vec<u8>, Error>>,
    /// The caller's buffer, lent until the reply: the reader reads the
    /// next reply into it.
    pub(super) buf: Vec<u8>,
}

impl State {
    /// Takes slot `slot` for a new call: waited on, its request about to
    /// be sent. Returns the call's id.
    pub(super) fn occupy(&mut self, slot: usize, buf: Vec<u8>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.slots[slot] = Slot {
            id,
            waiter: true,
            outstanding: true,
            flushing: false,
            outcome: None,
            buf,
        };
        id
    }

    /// Frees slot `slot` if nothing is pending on it; a call tag goes back
    /// to the free list. Returns whether it did.
    pub(super) fn release(&mut self, slot: usize, n: u16) -> bool {
        let s = &mut self.slots[slot];
        if s.id == 0 || s.waiter || s.outstanding || s.flushing {
            return false;
        }
        *s = Slot::default();
        if slot < n as usize {
            self.free.push_back(slot as u16);
        }
        true
    }
}

impl Shared {
    pub(super) fn new(address: String, stream: Stream, n: u16) -> Shared {
        let slots = (0..=n).map(|_| Slot::default()).collect();
        Shared {
            address,
            stream,
            n,
            writer: Mutex::new(Vec::new()),
            state: Mutex::new(State {
                slots,
                free: (0..n).collect(),
                closed: None,
                msize: 0,
                dialect: Dialect::Linux,
                negotiating: false,
                next_id: 0,
            }),
            answered: (0..=n).map(|_| Condvar::new()).collect(),
            tag_freed: Condvar::new(),
            limit: AtomicU32::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.locked()
    }

    /// Waits for slot `slot`'s outcome (the lock given back while waiting).
    pub(super) fn wait_answer<'a>(
        &self,
        slot: usize,
        state: MutexGuard<'a, State>,
        timeout: Option<std::time::Duration>,
    ) -> MutexGuard<'a, State> {
        match timeout {
            None => sync::wait(&self.answered[slot], state),
            Some(t) => match self.answered[slot].wait_timeout(state, t) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            },
        }
    }

    /// Waits for a tag to be freed.
    pub(super) fn wait_tag<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        sync::wait(&self.tag_freed, state)
    }

    /// Tells whoever waits on slot `slot` (and for a free tag, if it was
    /// freed).
    fn notify(&self, slot: usize, freed: bool) {
        self.answered[slot].notify_all();
        if freed {
            self.tag_freed.notify_one();
        }
    }

    /// Frees `slot` if it can be, telling a caller waiting for a tag.
    pub(super) fn release(&self, state: &mut State, slot: usize) {
        if state.release(slot, self.n) {
            self.tag_freed.notify_one();
        }
    }

    /// Sends `request` as `tag`, then `data` (a Twrite's), one whole frame
    /// of at most `msize` bytes. A write that fails closes the connection.
    pub(super) fn send(
        &self,
        tag: u16,
        request: &Tmessage<'_>,
        data: &[u8],
        msize: u32,
    ) -> Result<(), Error> {
        let mut out = self.writer.locked();
        out.clear();
        request.encode(tag, &mut out);
        let size = out.len() + data.len();
        if size > msize as usize {
            out.clear();
            return Err(Error::request(
                libc::EMSGSIZE,
                format!("a {size}-byte message, over the msize {msize}"),
            ));
        }
        if let Some(field) = out.get_mut(0..4) {
            field.copy_from_slice(&(size as u32).to_le_bytes());
        }
        let written = self.stream.write_two(&out, data);
        drop(out);
        written.map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    format!("closed the connection: sending: {e}")
                }
                _ => format!("could not be written to: {e}"),
            };
            self.close(Some(why))
        })
    }

    /// Sends the Tflush of call tag `tag`.
    pub(super) fn send_flush(&self, tag: u16) {
        let flush = Tmessage::Flush(Tflush { oldtag: tag });
        // Failing, it closed the connection: every call learns of it.
        let _ = self.send(tag + self.n, &flush, &[], u32::MAX);
    }

    /// Flushes call `id` on tag `tag` if it is still unanswered and not
    /// flushed yet. Returns whether a Tflush was sent.
    pub(super) fn cancel(&self, tag: u16, id: u64) -> bool {
        {
            let mut state = self.lock();
            if state.closed.is_some() || tag >= self.n {
                return false;
            }
            let s = &mut state.slots[tag as usize];
            if s.id != id || !s.outstanding || s.flushing {
                return false;
            }
            s.flushing = true;
        }
        self.send_flush(tag);
        true
    }

    /// Closes the connection (once): every waiting call and every later
    /// one fails with EIO. `why` (None: closed by the client) completes
    /// "upstream ADDRESS ..." and is logged once as an error.
    pub(super) fn close(&self, why: Option<String>) -> Error {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Error::Disconnected(reason.clone());
        }
        let in_flight = state
            .slots
            .iter()
            .filter(|s| s.outstanding || s.flushing)
            .count();
        let reason: Arc<str> = match &why {
            Some(why) => format!(
                "upstream {} {why}; its calls fail with EIO ({in_flight} in flight)",
                self.address
            ),
            None => format!("connection to upstream {} closed", self.address),
        }
        .into();
        state.closed = Some(reason.clone());
        for s in state.slots.iter_mut() {
            if s.waiter && s.outcome.is_none() {
                s.outcome = Some(Err(Error::Disconnected(reason.clone())));
            }
        }
        drop(state);
        if why.is_some() {
            log::error!("{reason}");
        } else {
            log::debug!("{reason}");
        }
        self.stream.shutdown();
        for answered in &self.answered {
            answered.notify_all();
        }
        self.tag_freed.notify_all();
        Error::Disconnected(reason)
    }

    /// The reader thread: reads reply frames until the connection ends.
    pub(super) fn read_replies(&self) {
        let mut spare = Vec::new();
        let why = loop {
            if let Err(why) = self.read_reply(&mut spare) {
                break why;
            }
        };
        self.close(Some(why));
    }

    /// Reads one reply frame into `spare` and hands it to its call (the
    /// call's lent buffer becoming the next `spare`). Err: why the
    /// connection cannot go on.
    fn read_reply(&self, spare: &mut Vec<u8>) -> Result<(), String> {
        let mut header = [0u8; HEADER_SIZE];
        let mut stream = &self.stream;
        let mut got = 0;
        while got < HEADER_SIZE {
            match stream.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Err("closed the connection".into()),
                Ok(0) => return Err("closed the connection in the middle of a reply".into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("closed the connection: reading: {e}")),
            }
        }
        let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let msg_type = header[4];
        let tag = u16::from_le_bytes([header[5], header[6]]);
        let limit = self.limit.load(Ordering::Acquire);
        if (size as usize) < HEADER_SIZE || size > limit {
            return Err(format!(
                "broke the protocol: a reply (tag {tag}) of {size} bytes, \
                 not between {HEADER_SIZE} and the msize {limit}"
            ));
        }
        // At most the msize: the size was checked above.
        let body = size as u64 - HEADER_SIZE as u64;
        spare.clear();
        spare.reserve(size as usize);
        spare.extend_from_slice(&header);
        match stream.take(body).read_to_end(spare) {
            Ok(n) if n as u64 == body => {}
            Ok(_) => return Err("closed the connection in the middle of a reply".into()),
            Err(e) => return Err(format!("closed the connection: reading: {e}")),
        }
        self.deliver(tag, msg_type, spare)
    }

    /// Hands the frame in `spare` (type `msg_type`) to what tag `tag` is.
    fn deliver(&self, tag: u16, msg_type: u8, spare: &mut Vec<u8>) -> Result<(), String> {
        let n = self.n;
        let mut state = self.lock();
        let unknown = || {
            format!("broke the protocol: a reply (type {msg_type}) to tag {tag}, which no request of ours has")
        };
        if tag == NOTAG || tag < n {
            // A reply to a call (or to Tversion).
            let slot = if tag == NOTAG {
                n as usize
            } else {
                tag as usize
            };
            let s = &mut state.slots[slot];
            if !s.outstanding {
                return Err(unknown());
            }
            s.outstanding = false;
            // Honoured if its caller still waits, even when flushed meanwhile
            // (flush(5)); dropped if the caller gave up.
            if s.waiter && s.outcome.is_none() {
                let frame = std::mem::replace(spare, std::mem::take(&mut s.buf));
                s.outcome = Some(Ok(frame));
            }
            let freed = state.release(slot, n);
            drop(state);
            self.notify(slot, freed);
            return Ok(());
        }
        if tag < n.saturating_mul(2) {
            // The Rflush of call tag - n.
            let slot = (tag - n) as usize;
            let s = &mut state.slots[slot];
            if !s.flushing {
                return Err(unknown());
            }
            if msg_type != Rflush::TYPE || spare.len() != HEADER_SIZE {
                return Err(format!(
                    "broke the protocol: answered Tflush (tag {tag}) with a {}-byte message \
                     of type {msg_type}",
                    spare.len()
                ));
            }
            s.flushing = false;
            if s.outstanding {
                // Flushed before it was answered: it never happened.
                s.outstanding = false;
                if s.waiter && s.outcome.is_none() {
                    s.outcome = Some(Err(Error::Flushed));
                }
            }
            let freed = state.release(slot, n);
            drop(state);
            self.notify(slot, freed);
            return Ok(());
        }
        Err(unknown())
    }
}
