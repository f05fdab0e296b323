//! A guest's 9P2000.L request forwarded upstream: its fids translated, the
//! upstream's reply handed back for the server to encode (an Rread's data
//! copied into the read sink, an Rreaddir's entries into the reply buffer).

use std::cell::{Cell, RefCell};

use super::{ctl, plan9, Fids, Gateway};
use crate::client;
use crate::protocol::flags::{ATTR_GID, ATTR_UID};
use crate::protocol::trace::{ReplyTrace, RequestTrace, Upstream};
use crate::protocol::*;
use crate::server::security::IdMap;
use crate::server::user::UserDb;
use crate::server::{Dialect, ReadSink, Session, Tagged, WriteSource};
use crate::trace_output::write_line;

/// What the upstream answered, as the server's reply takes it.
// One lives on the stack for the length of a request, as the server's
// `Reply` does: boxing the message would allocate for every reply.
#[allow(clippy::large_enum_variant)]
pub enum Answer<'a> {
    /// A reply message, encoded whole.
    Message(Rmessage<'a>),
    /// An Rread of this many bytes, copied into the read sink.
    Read(u32),
    /// An Rreaddir of this many bytes of entries, in the reply buffer
    /// after the room left for its header.
    Readdir(u32),
}

/// Prints a request sent upstream for connection `conn` (--trace).
fn trace_request(conn: u32, tag: u16, msg: &Tmessage<'_>, data: &[u8]) {
    write_line(Upstream(RequestTrace {
        conn,
        tag,
        msg,
        data: matches!(msg, Tmessage::Write(_)).then_some(data),
    }));
}

/// Prints the upstream's answer (--trace): its reply, or an error reply
/// (Rlerror) with the errno the call ended with.
fn trace_reply(conn: u32, tag: u16, reply: &Result<client::Reply<'_>, client::Error>) {
    let error;
    let (msg, data) = match reply {
        Ok(r) => (&r.msg, matches!(r.msg, Rmessage::Read(_)).then_some(r.data)),
        Err(e) => {
            error = Rmessage::Lerror(Rlerror {
                ecode: e.errno() as u32,
            });
            (&error, None)
        }
    };
    write_line(Upstream(ReplyTrace {
        conn,
        tag,
        msg,
        data,
    }));
}

thread_local! {
    /// A Twrite's data on its way upstream.
    static WRITE_DATA: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How far a `Call::walk` got.
pub(super) enum Walked {
    /// All the way: the spare fid walked, and the qid of its last name
    /// (none for a clone).
    Made { fid: u32, last: Option<Qid> },
    /// It stopped after `walked` names (no fid made); `last`: the qid of
    /// the last name walked.
    Stopped { walked: usize, last: Option<Qid> },
}

/// One guest request on its way upstream: whose it is (for the fid map,
/// the guest's Tflush and the trace).
pub(super) struct Call<'c> {
    pub gateway: &'c Gateway,
    pub session: &'c Session,
    pub fids: &'c Fids,
    /// The guest's tag.
    pub tag: u16,
    /// Whether the last call that failed surely made nothing upstream (an
    /// error reply, a flush, a request never sent): see `unmade`.
    made_nothing: Cell<bool>,
    /// The last error reply's text, with its errno.
    error_text: RefCell<Option<(i32, String)>>,
}

/// A request the gateway answers with an error: its errno, and the
/// upstream's text for it when the upstream refused (9P2000's Rerror).
pub struct Refused {
    pub errno: i32,
    pub text: Option<String>,
}

impl Call<'_> {
    /// Sends `request` (and a Twrite's `data`) upstream and waits for the
    /// reply, read into `buf`: flushed upstream if the guest flushes its
    /// request meanwhile, and traced with --trace.
    pub fn send<'b>(
        &self,
        request: &Tmessage<'_>,
        data: &[u8],
        buf: &'b mut Vec<u8>,
    ) -> Result<client::Reply<'b>, i32> {
        if self.fids.is_flushed(self.tag) {
            self.made_nothing.set(true);
            return Err(libc::EINTR);
        }
        self.send_unflushable(request, data, buf, true)
    }

    /// `send`, but never flushed: for Tclunk and Tremove, whose fid must
    /// be gone upstream before its number is given back.
    pub fn finish<'b>(
        &self,
        request: &Tmessage<'_>,
        buf: &'b mut Vec<u8>,
    ) -> Result<Rmessage<'b>, i32> {
        self.send_unflushable(request, &[], buf, false)
            .map(|reply| reply.msg)
    }

    fn send_unflushable<'b>(
        &self,
        request: &Tmessage<'_>,
        data: &[u8],
        buf: &'b mut Vec<u8>,
        flushable: bool,
    ) -> Result<client::Reply<'b>, i32> {
        let shared = &self.fids.upstream;
        let pending = match shared.client.start(request, data, buf) {
            Ok(pending) => pending,
            Err(e) => return Err(self.failed(&e)),
        };
        let upstream_tag = pending.tag();
        if shared.trace {
            trace_request(self.session.id, upstream_tag, request, data);
        }
        if flushable {
            self.fids.waiting(self.tag, pending.canceller());
        }
        let reply = pending.wait();
        if flushable {
            self.fids.answered(self.tag);
        }
        if shared.trace {
            trace_reply(self.session.id, upstream_tag, &reply);
        }
        reply.map_err(|e| self.failed(&e))
    }

    /// The errno of a failed call, noting whether it surely made nothing.
    fn failed(&self, e: &client::Error) -> i32 {
        use client::Error::*;
        let nothing = matches!(
            e,
            Upstream { .. } | Flushed | Request { .. } | Connect { .. }
        );
        self.made_nothing.set(nothing);
        if let Upstream {
            errno,
            ename: Some(text),
        } = e
        {
            *self.error_text.borrow_mut() = Some((*errno, text.clone()));
        }
        e.errno()
    }

    /// Gives back upstream fid `up`, which the last failed call was to
    /// make: at once if that call surely made nothing, else once clunked
    /// (a reply that broke the protocol, or none in time, may follow a fid
    /// the upstream made).
    pub fn unmade(&self, up: u32) {
        if !self.made_nothing.get() {
            let mut buf = Vec::new();
            let _ = self.finish(&Tmessage::Clunk(Tclunk { fid: up }), &mut buf);
        }
        self.fids.release(up);
    }

    /// Walks a spare upstream fid from `from` through `names` (none: a
    /// clone of it): the spare, which the caller gives back with `clunk`
    /// (or a Tremove and `Fids::release`), or how far the walk got.
    pub fn walk(&self, from: u32, names: &[Str<'_>], buf: &mut Vec<u8>) -> Result<Walked, i32> {
        let names = WalkList::from_slice(names).ok_or(libc::EINVAL)?;
        let spare = self.fids.spare()?;
        let walk = Tmessage::Walk(Twalk {
            fid: from,
            newfid: spare,
            names,
        });
        match self.message(&walk, buf) {
            Ok(Rmessage::Walk(r)) if r.qids.len() == names.len() => Ok(Walked::Made {
                fid: spare,
                last: r.qids.as_slice().last().copied(),
            }),
            // A walk that stops short makes no fid.
            Ok(Rmessage::Walk(r)) => {
                self.fids.release(spare);
                Ok(Walked::Stopped {
                    walked: r.qids.len(),
                    last: r.qids.as_slice().last().copied(),
                })
            }
            Ok(_) => {
                self.unmade(spare);
                Err(libc::EIO)
            }
            Err(e) => {
                self.unmade(spare);
                Err(e)
            }
        }
    }

    /// `walk` all the way: the spare fid, or ENOENT.
    pub fn walk_spare(&self, from: u32, names: &[Str<'_>], buf: &mut Vec<u8>) -> Result<u32, i32> {
        match self.walk(from, names, buf)? {
            Walked::Made { fid, .. } => Ok(fid),
            Walked::Stopped { .. } => Err(libc::ENOENT),
        }
    }

    /// Clunks a spare fid and gives it back (whatever the upstream says:
    /// clunk(5) frees it either way).
    pub fn clunk(&self, spare: u32, buf: &mut Vec<u8>) {
        let _ = self.finish(&Tmessage::Clunk(Tclunk { fid: spare }), buf);
        self.fids.release(spare);
    }

    /// The upstream's stat record of `fid` (9P2000, 9P2000.u).
    pub fn stat<'b>(&self, fid: u32, buf: &'b mut Vec<u8>) -> Result<Stat<'b>, i32> {
        match self.message(&Tmessage::Stat(Tstat { fid }), buf)? {
            Rmessage::Stat(r) => Ok(r.stat.0),
            _ => Err(libc::EIO),
        }
    }

    /// `send` of a request without data, for its reply message.
    pub fn message<'b>(
        &self,
        request: &Tmessage<'_>,
        buf: &'b mut Vec<u8>,
    ) -> Result<Rmessage<'b>, i32> {
        self.send(request, &[], buf).map(|reply| reply.msg)
    }
}

impl Gateway {
    /// The session's fid map, made at its first request.
    fn fids<'s>(&self, s: &'s Session) -> &'s Fids {
        s.upstream.get_or_init(|| Fids::new(self.upstream.clone()))
    }

    /// A guest Tflush of `oldtag` arrived (see `Fids::flush`).
    pub fn flush(&self, s: &Session, oldtag: u16) {
        self.fids(s).flush(oldtag);
    }

    /// The guest's Tversion (see `Gateway::version`).
    pub fn version_of(&self, s: &Session, version: &'static [u8]) -> &'static [u8] {
        self.version(s, version)
    }

    /// A Tremove the gate refused (a read-only share): its fid is clunked
    /// all the same (remove(5)), upstream too.
    pub fn forget(&self, s: &Session, fid: u32) {
        let fids = self.fids(s);
        if let Some(up) = fids.remove(fid) {
            fids.clunk_upstream(&[up]);
        }
    }

    /// Forwards one admitted request of session `s` (Tversion aside: see
    /// `version_of`) and gives the upstream's answer, or an errno. The
    /// upstream's reply is read into `buf`, which the answer borrows; an
    /// Rreaddir's entries are copied into `out`, an Rread's data into
    /// `sink`.
    pub fn serve<'a>(
        &self,
        s: &Session,
        request: Tagged<'a>,
        source: &mut dyn WriteSource,
        sink: &mut dyn ReadSink,
        out: &mut Vec<u8>,
        buf: &'a mut Vec<u8>,
    ) -> Result<Answer<'a>, Refused> {
        let up_call = Call {
            gateway: self,
            session: s,
            fids: self.fids(s),
            tag: request.tag,
            made_nothing: Cell::new(true),
            error_text: RefCell::new(None),
        };
        let shared = &up_call.fids.upstream;
        let ids = (&shared.uid_map, &shared.gid_map);
        ids_to_upstream(ids, request.message)
            .and_then(|message| self.forward(&up_call, message, source, sink, out, buf))
            .map(|answer| ids_to_guest(ids, answer))
            .map_err(|errno| Refused {
                errno,
                // The upstream's own words, when it refused (a 9P2000
                // client reads them: "ctl: line 1: ...").
                text: up_call
                    .error_text
                    .take()
                    .filter(|(e, _)| *e == errno)
                    .map(|(_, text)| text),
            })
    }

    fn forward<'a>(
        &self,
        up_call: &Call<'_>,
        message: Tmessage<'a>,
        source: &mut dyn WriteSource,
        sink: &mut dyn ReadSink,
        out: &mut Vec<u8>,
        buf: &'a mut Vec<u8>,
    ) -> Result<Answer<'a>, i32> {
        let (s, fids) = (up_call.session, up_call.fids);
        let client = &fids.upstream.client;
        let forward = |request: &Tmessage<'_>, data: &[u8], buf: &'a mut Vec<u8>| {
            up_call.send(request, data, buf)
        };
        let call = |request: &Tmessage<'_>, data: &[u8], buf: &'a mut Vec<u8>| {
            up_call.send(request, data, buf).map(|reply| reply.msg)
        };
        // Data moves in the least of what the guest asked, what its msize
        // and buffer allow, and what the upstream's msize allows.
        let room = |count: u32, capacity: usize| {
            (count as usize)
                .min(capacity)
                .min((s.msize() as usize).saturating_sub(RREAD_HEADER_SIZE))
                .min(client.iounit() as usize) as u32
        };
        // A 9P2000.L client's requests are translated where the upstream's
        // dialect lacks them; a 9P2000.u or 9P2000 client's pass as they are,
        // on a connection in its dialect (Gateway::version).
        if s.dialect() != Dialect::Linux && s.dialect() != client.dialect() {
            return Err(libc::EOPNOTSUPP);
        }
        if !names_are_entries(&message) {
            return Err(libc::EINVAL);
        }
        // What the upstream's dialect lacks is translated (plan9.rs).
        if !client.dialect().has(&message) {
            let limit = match &message {
                Tmessage::Readdir(t) => room(t.count, sink.capacity()),
                _ => 0,
            };
            return plan9::serve(up_call, message, limit, out, buf);
        }
        let message = match message {
            Tmessage::Version(_) => return Err(libc::EINVAL),
            // Answered here: the transports answer it after its oldtag,
            // which is then over.
            Tmessage::Flush(t) => {
                fids.flushed(t.oldtag);
                Rmessage::Flush(Rflush {})
            }
            // No authentication: ENOENT, as for a host directory.
            Tmessage::Auth(_) => return Err(libc::ENOENT),
            Tmessage::Attach(t) => {
                if t.afid != NOFID {
                    return Err(libc::EBADF);
                }
                let up = fids.reserve(t.fid)?;
                let named = t.n_uname.filter(|&u| u != NONUNAME).unwrap_or(0);
                // A socket peer's uid, or root squashed, as for a directory;
                // through --uid-map (a guest user it does not map is refused).
                let uid = s.users.attach(named, UserDb::host()).uid;
                let uid = fids.upstream.uid_map.to_host(uid).ok_or(libc::EPERM)?;
                // The daemon names the export and the user, never the
                // guest: its aname and uname would let it pick another of
                // the upstream's exports, or claim another user's name.
                let upstream = &fids.upstream;
                let named_user;
                let (uname, uid) = match upstream.uname.as_deref() {
                    // The operator's user, by name and number alike (an
                    // upstream goes by the number when there is one).
                    Some(u) => (u, UserDb::host().uid_of(u.as_bytes()).unwrap_or(NONUNAME)),
                    None => {
                        named_user = UserDb::host().user(uid);
                        (named_user.as_str(), uid)
                    }
                };
                let forwarded = Tmessage::Attach(Tattach {
                    fid: up,
                    afid: NOFID,
                    uname: Str(uname.as_bytes()),
                    aname: Str(upstream.aname.as_deref().unwrap_or("").as_bytes()),
                    // (9P2000 has no numeric uname.)
                    n_uname: (client.dialect() != Dialect::Plan9).then_some(uid),
                });
                let qid = match call(&forwarded, &[], buf) {
                    Ok(Rmessage::Attach(r)) => r.qid,
                    Ok(_) => {
                        up_call.unmade(up);
                        return Err(libc::EIO);
                    }
                    Err(e) => {
                        up_call.unmade(up);
                        return Err(e);
                    }
                };
                fids.bind(t.fid, up)?;
                fids.attached(uid);
                if s.dialect() == Dialect::Linux && client.dialect() == Dialect::Plan9 {
                    ctl::attached(up_call, t.fid, up, qid, uid, &mut Vec::new());
                }
                Rmessage::Attach(Rattach { qid })
            }
            Tmessage::Walk(t) if t.newfid != t.fid => {
                let from = fids.get(t.fid)?;
                let up = fids.reserve(t.newfid)?;
                let forwarded = Tmessage::Walk(Twalk {
                    fid: from,
                    newfid: up,
                    names: t.names,
                });
                match call(&forwarded, &[], buf) {
                    Ok(Rmessage::Walk(r)) if r.qids.len() == t.names.len() => {
                        fids.bind(t.newfid, up)?;
                        let last = r.qids.as_slice().last().copied();
                        fids.walked(t.fid, t.newfid, t.names.as_slice(), last);
                        Rmessage::Walk(r)
                    }
                    // A walk that stops short makes no fid.
                    Ok(reply) => {
                        fids.release(up);
                        reply
                    }
                    Err(e) => {
                        up_call.unmade(up);
                        return Err(e);
                    }
                }
            }
            Tmessage::Xattrwalk(t) => {
                let from = fids.get(t.fid)?;
                let up = fids.reserve(t.newfid)?;
                let forwarded = Tmessage::Xattrwalk(Txattrwalk {
                    fid: from,
                    newfid: up,
                    name: t.name,
                });
                match call(&forwarded, &[], buf) {
                    Ok(reply) => {
                        fids.bind(t.newfid, up)?;
                        reply
                    }
                    Err(e) => {
                        up_call.unmade(up);
                        return Err(e);
                    }
                }
            }
            Tmessage::Clunk(t) => {
                let up = fids.remove(t.fid).ok_or(libc::EBADF)?;
                // Never flushed: the fid must be gone before its number is
                // given back; clunked whatever the upstream says (clunk(5)).
                let result = up_call.finish(&Tmessage::Clunk(Tclunk { fid: up }), buf);
                fids.release(up);
                result?
            }
            // (A Linux guest's fallback when Tunlinkat is EOPNOTSUPP.)
            Tmessage::Remove(t) => {
                let up = fids.remove(t.fid).ok_or(libc::EBADF)?;
                // Never flushed, as Tclunk; clunked whether or not the
                // remove succeeds (remove(5)).
                let result = up_call.finish(&Tmessage::Remove(Tremove { fid: up }), buf);
                fids.release(up);
                result?
            }
            Tmessage::Read(t) => {
                let count = room(t.count, sink.capacity());
                let forwarded = Tread {
                    fid: fids.get(t.fid)?,
                    offset: t.offset,
                    count,
                };
                let reply = forward(&Tmessage::Read(forwarded), &[], buf)?;
                return Ok(Answer::Read(sink.copy_from(reply.data) as u32));
            }
            Tmessage::Readdir(t) => {
                let count = room(t.count, sink.capacity());
                let forwarded = Treaddir {
                    fid: fids.get(t.fid)?,
                    offset: t.offset,
                    count,
                };
                let Rmessage::Readdir(r) = call(&Tmessage::Readdir(forwarded), &[], buf)? else {
                    return Err(libc::EIO);
                };
                let entries = r.data.0;
                if entries.len() > count as usize {
                    crate::warn_limited!(
                        "upstream {}: an Rreaddir of {} bytes for a Treaddir of {count}",
                        self.address(),
                        entries.len()
                    );
                    return Err(libc::EIO);
                }
                out.clear();
                out.resize(RREAD_HEADER_SIZE, 0);
                out.extend_from_slice(entries);
                return Ok(Answer::Readdir(entries.len() as u32));
            }
            Tmessage::Write(t) => {
                if t.count as usize > source.len() {
                    return Err(libc::EINVAL);
                }
                let count = room(t.count, usize::MAX);
                let forwarded = Tmessage::Write(Twrite {
                    fid: fids.get(t.fid)?,
                    offset: t.offset,
                    count,
                });
                return WRITE_DATA.with(|data| {
                    let mut data = data.borrow_mut();
                    data.resize(count as usize, 0);
                    let n = source.copy_to(&mut data);
                    if n != count as usize {
                        return Err(libc::EIO);
                    }
                    call(&forwarded, &data, buf).map(Answer::Message)
                });
            }
            // 9P2000.u: a hard link's extension names the target's fid.
            Tmessage::Create(t) if t.perm & DMLINK != 0 => {
                let named = t.extension.map(|e| e.0.trim_ascii()).unwrap_or_default();
                let target = std::str::from_utf8(named)
                    .ok()
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or(libc::EINVAL)?;
                let extension = format!("{}\n", fids.get(target)?);
                let forwarded = Tmessage::Create(Tcreate {
                    fid: fids.get(t.fid)?,
                    extension: Some(Str(extension.as_bytes())),
                    ..t
                });
                call(&forwarded, &[], buf)?
            }
            // A walk onto itself (newfid == fid) makes no fid.
            Tmessage::Walk(t) => {
                let forwarded = translate(fids, Tmessage::Walk(t))?;
                match call(&forwarded, &[], buf)? {
                    Rmessage::Walk(r) => {
                        if r.qids.len() == t.names.len() {
                            let last = r.qids.as_slice().last().copied();
                            fids.walked(t.fid, t.fid, t.names.as_slice(), last);
                        }
                        Rmessage::Walk(r)
                    }
                    _ => return Err(libc::EIO),
                }
            }
            other => {
                let forwarded = translate(fids, other)?;
                match call(&forwarded, &[], buf)? {
                    // Room for what the upstream can move at once.
                    Rmessage::Lopen(r) => Rmessage::Lopen(Rlopen {
                        iounit: iounit(r.iounit, client.iounit()),
                        ..r
                    }),
                    Rmessage::Lcreate(r) => Rmessage::Lcreate(Rlcreate {
                        iounit: iounit(r.iounit, client.iounit()),
                        ..r
                    }),
                    Rmessage::Open(r) => Rmessage::Open(Ropen {
                        iounit: iounit(r.iounit, client.iounit()),
                        ..r
                    }),
                    Rmessage::Create(r) => Rmessage::Create(Rcreate {
                        iounit: iounit(r.iounit, client.iounit()),
                        ..r
                    }),
                    reply => reply,
                }
            }
        };
        Ok(Answer::Message(message))
    }
}

/// A 9P2000.L request's ids (Tsetattr's owners, a new file's group) as the
/// upstream's, through the id maps: EINVAL for one they do not map, as
/// for a directory.
fn ids_to_upstream<'r>(
    (uids, gids): (&IdMap, &IdMap),
    request: Tmessage<'r>,
) -> Result<Tmessage<'r>, i32> {
    use Tmessage::*;
    let gid = |gid: u32| gids.to_host(gid).ok_or(libc::EINVAL);
    Ok(match request {
        Setattr(t) => Setattr(Tsetattr {
            uid: match t.valid & ATTR_UID {
                0 => t.uid,
                _ => uids.to_host(t.uid).ok_or(libc::EINVAL)?,
            },
            gid: match t.valid & ATTR_GID {
                0 => t.gid,
                _ => gid(t.gid)?,
            },
            ..t
        }),
        Lcreate(t) => Lcreate(Tlcreate {
            gid: gid(t.gid)?,
            ..t
        }),
        Mkdir(t) => Mkdir(Tmkdir {
            gid: gid(t.gid)?,
            ..t
        }),
        Symlink(t) => Symlink(Tsymlink {
            gid: gid(t.gid)?,
            ..t
        }),
        Mknod(t) => Mknod(Tmknod {
            gid: gid(t.gid)?,
            ..t
        }),
        other => other,
    })
}

/// An Rgetattr's owners as the guest's, through the id maps (the
/// overflow id for one they do not map).
fn ids_to_guest<'a>((uids, gids): (&IdMap, &IdMap), answer: Answer<'a>) -> Answer<'a> {
    match answer {
        Answer::Message(Rmessage::Getattr(r)) => Answer::Message(Rmessage::Getattr(Rgetattr {
            uid: uids.to_guest(r.uid),
            gid: gids.to_guest(r.gid),
            ..r
        })),
        other => other,
    }
}

/// Whether every name `request` carries names one directory entry (see
/// `protocol::is_entry_name`; a walk may also go up, ".."), as the host
/// directory's share requires: the upstream is not trusted to refuse the
/// others, and a 9P2000 translation would act on them (".." as a Tremove's
/// target).
fn names_are_entries(request: &Tmessage<'_>) -> bool {
    use Tmessage::*;
    let entry = |name: &Str<'_>| is_entry_name(name.0);
    match request {
        Walk(t) => t.names.as_slice().iter().all(|n| n.0 == b".." || entry(n)),
        Lcreate(t) => entry(&t.name),
        Symlink(t) => entry(&t.name),
        Mknod(t) => entry(&t.name),
        Rename(t) => entry(&t.name),
        Link(t) => entry(&t.name),
        Mkdir(t) => entry(&t.name),
        Renameat(t) => entry(&t.oldname) && entry(&t.newname),
        Unlinkat(t) => entry(&t.name),
        Create(t) => entry(&t.name),
        // A Twstat's name, when it changes it, is the file's new one.
        Wstat(t) => t.stat.0.name.0.is_empty() || entry(&t.stat.0.name),
        _ => true,
    }
}

/// The iounit a guest is told: the upstream's, else what the upstream's
/// msize allows.
pub(super) fn iounit(upstream: u32, most: u32) -> u32 {
    if upstream == 0 {
        most
    } else {
        upstream.min(most)
    }
}

/// The request with its fids made upstream ones: the requests that use
/// fids and make none.
fn translate<'r>(fids: &Fids, request: Tmessage<'r>) -> Result<Tmessage<'r>, i32> {
    use Tmessage::*;
    let up = |fid| fids.get(fid);
    Ok(match request {
        Statfs(t) => Statfs(Tstatfs { fid: up(t.fid)? }),
        Lopen(t) => Lopen(Tlopen {
            fid: up(t.fid)?,
            ..t
        }),
        Lcreate(t) => Lcreate(Tlcreate {
            fid: up(t.fid)?,
            ..t
        }),
        Symlink(t) => Symlink(Tsymlink {
            fid: up(t.fid)?,
            ..t
        }),
        Mknod(t) => Mknod(Tmknod {
            dfid: up(t.dfid)?,
            ..t
        }),
        Rename(t) => Rename(Trename {
            fid: up(t.fid)?,
            dfid: up(t.dfid)?,
            ..t
        }),
        Readlink(t) => Readlink(Treadlink { fid: up(t.fid)? }),
        Getattr(t) => Getattr(Tgetattr {
            fid: up(t.fid)?,
            ..t
        }),
        Setattr(t) => Setattr(Tsetattr {
            fid: up(t.fid)?,
            ..t
        }),
        Xattrcreate(t) => Xattrcreate(Txattrcreate {
            fid: up(t.fid)?,
            ..t
        }),
        Fsync(t) => Fsync(Tfsync {
            fid: up(t.fid)?,
            ..t
        }),
        Lock(t) => Lock(Tlock {
            fid: up(t.fid)?,
            ..t
        }),
        Getlock(t) => Getlock(Tgetlock {
            fid: up(t.fid)?,
            ..t
        }),
        Link(t) => Link(Tlink {
            dfid: up(t.dfid)?,
            fid: up(t.fid)?,
            ..t
        }),
        Mkdir(t) => Mkdir(Tmkdir {
            dfid: up(t.dfid)?,
            ..t
        }),
        Renameat(t) => Renameat(Trenameat {
            olddirfid: up(t.olddirfid)?,
            newdirfid: up(t.newdirfid)?,
            ..t
        }),
        Unlinkat(t) => Unlinkat(Tunlinkat {
            dirfid: up(t.dirfid)?,
            ..t
        }),
        // A walk onto itself (newfid == fid) makes no fid.
        Walk(t) => Walk(Twalk {
            fid: up(t.fid)?,
            newfid: up(t.newfid)?,
            ..t
        }),
        // A 9P2000 or 9P2000.u client's, on a connection in its dialect.
        Open(t) => Open(Topen {
            fid: up(t.fid)?,
            ..t
        }),
        Create(t) => Create(Tcreate {
            fid: up(t.fid)?,
            ..t
        }),
        Stat(t) => Stat(Tstat { fid: up(t.fid)? }),
        Wstat(t) => Wstat(Twstat {
            fid: up(t.fid)?,
            ..t
        }),
        // Served above.
        Version(_) | Auth(_) | Attach(_) | Flush(_) | Xattrwalk(_) | Readdir(_) | Read(_)
        | Write(_) | Clunk(_) | Remove(_) => return Err(libc::EOPNOTSUPP),
    })
}
