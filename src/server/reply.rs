//! Replies: what an operation answers (`Reply`, or a `Failure`), and the
//! one function that encodes it, keeps it within the msize and traces it.

use super::{error_text, Errno, ReadSink, Server, Session, WriteSource};
use crate::protocol::{self, trace, Data, Rerror, Rlerror, Rmessage, Str, Tmessage};
use crate::protocol::{Dialect, Rread, Rreaddir, RREAD_HEADER_SIZE};
use crate::trace_output::write_line;

/// Bytes of Tread/Twrite data handed to a trace line: the 64 it shows, and
/// one more to tell it there is more.
const TRACE_DATA: usize = 65;

/// The longest error text an Rerror carries.
const MAX_ERROR_TEXT: usize = 1024;

/// What an operation answers.
// One lives on the stack for the length of a request: boxing the message
// would allocate for every reply.
#[allow(clippy::large_enum_variant)]
pub(super) enum Reply<'a> {
    /// A reply message, encoded whole.
    Message(Rmessage<'a>),
    /// An Rread of this many bytes, already in the read sink.
    Read(u32),
    /// An Rreaddir of this many bytes of entries, already in the reply
    /// buffer after the room left for its header (`ReaddirWriter`).
    Readdir(u32),
}

/// A refused request: its errno and, for the 9P2000 dialects, a text other
/// than the errno's standard one (a control file's parse error, say).
#[derive(Debug)]
pub(super) struct Failure {
    pub errno: i32,
    pub text: Option<String>,
}

impl From<Errno> for Failure {
    fn from(Errno(errno): Errno) -> Self {
        Failure { errno, text: None }
    }
}

impl Session {
    /// The error reply of this session's dialect: Rlerror in 9P2000.L,
    /// Rerror with the error's text (and in 9P2000.u its number) otherwise.
    /// `text` overrides the errno's standard text; `standard` keeps that
    /// text while the message lives.
    fn error_message<'a>(
        &self,
        errno: i32,
        text: Option<&'a str>,
        standard: &'a mut String,
    ) -> Rmessage<'a> {
        let dialect = self.dialect();
        if dialect == Dialect::Linux {
            return Rmessage::Lerror(Rlerror {
                ecode: errno as u32,
            });
        }
        let text = match text {
            Some(text) => text,
            None => {
                *standard = error_text(errno);
                standard
            }
        };
        // Short enough for any msize (a control file's message may quote
        // what it was sent).
        // (str::floor_char_boundary is newer than the crate's MSRV.)
        let mut end = text.len().min(MAX_ERROR_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Rmessage::Error(Rerror {
            ename: Str(&text.as_bytes()[..end]),
            errno: (dialect == Dialect::Unix).then_some(errno as u32),
        })
    }
}

impl Server {
    /// Writes the reply to request `tag` into `out` (an Rread's data is in
    /// `sink`; an Rreaddir's entries are in `out` already) and traces it.
    /// A reply larger than the msize agreed on goes back as EMSGSIZE (a
    /// 9P2000.u stat or a readlink of a long target under a small msize).
    /// Returns the reply's size on the wire, data included.
    pub(super) fn respond(
        &self,
        s: &Session,
        tag: u16,
        outcome: Result<Reply<'_>, Failure>,
        sink: &dyn ReadSink,
        out: &mut Vec<u8>,
    ) -> u32 {
        let mut standard = String::new();
        let reply = match &outcome {
            Ok(reply) => reply,
            Err(failure) => {
                let message =
                    s.error_message(failure.errno, failure.text.as_deref(), &mut standard);
                return self.send_message(s, tag, message, out);
            }
        };
        let size = match reply {
            Reply::Message(message) => return self.send_message(s, tag, *message, out),
            Reply::Read(count) => {
                out.clear();
                out.extend_from_slice(&protocol::data_header(Rread::TYPE, tag, *count));
                RREAD_HEADER_SIZE as u32 + count
            }
            Reply::Readdir(count) => {
                let header = protocol::data_header(Rreaddir::TYPE, tag, *count);
                out[..RREAD_HEADER_SIZE].copy_from_slice(&header);
                out.truncate(RREAD_HEADER_SIZE + *count as usize);
                RREAD_HEADER_SIZE as u32 + count
            }
        };
        if size > s.msize() {
            let message = s.error_message(libc::EMSGSIZE, None, &mut standard);
            return self.send_message(s, tag, message, out);
        }
        if self.trace {
            let mut head = [0u8; TRACE_DATA];
            let (message, data) = match *reply {
                Reply::Read(count) => {
                    let n = sink.peek(&mut head[..(count as usize).min(TRACE_DATA)]);
                    (Rmessage::Read(Rread { count }), Some(&head[..n]))
                }
                _ => {
                    let data = Data(&out[RREAD_HEADER_SIZE..]);
                    (Rmessage::Readdir(Rreaddir { data }), None)
                }
            };
            trace_reply(s, tag, &message, data);
        }
        size
    }

    /// Encodes a whole reply message into `out` (EMSGSIZE instead if it is
    /// larger than the msize) and traces it; returns its size.
    fn send_message(&self, s: &Session, tag: u16, message: Rmessage<'_>, out: &mut Vec<u8>) -> u32 {
        out.clear();
        message.encode(tag, out);
        if out.len() > s.msize() as usize {
            // An error reply fits any msize (MIN_MSIZE is larger than the
            // longest error text).
            let mut standard = String::new();
            let refusal = s.error_message(libc::EMSGSIZE, None, &mut standard);
            out.clear();
            refusal.encode(tag, out);
            if self.trace {
                trace_reply(s, tag, &refusal, None);
            }
        } else if self.trace {
            trace_reply(s, tag, &message, None);
        }
        out.len() as u32
    }

    /// The reply to a request refused before it was served: a transport's
    /// EMSGSIZE, an undecodable message. Not traced: no request line went
    /// before it (and one too large for the client's buffer was traced as
    /// the reply it replaces). Returns its size.
    pub fn refuse(&self, s: &Session, tag: u16, errno: i32, out: &mut Vec<u8>) -> u32 {
        let mut standard = String::new();
        out.clear();
        s.error_message(errno, None, &mut standard).encode(tag, out);
        out.len() as u32
    }
}

/// Prints a request (--trace), with the first bytes of a Twrite's data.
pub(super) fn trace_request(
    s: &Session,
    tag: u16,
    msg: &Tmessage<'_>,
    source: &mut dyn WriteSource,
) {
    let mut head = [0u8; TRACE_DATA];
    let data = match msg {
        Tmessage::Write(_) => {
            let n = source.copy_to(&mut head);
            Some(&head[..n])
        }
        _ => None,
    };
    write_line(trace::RequestTrace {
        conn: s.id,
        tag,
        msg,
        data,
    });
}

/// Prints a reply (--trace); `data` is the head of an Rread's data.
fn trace_reply(s: &Session, tag: u16, msg: &Rmessage<'_>, data: Option<&[u8]>) {
    write_line(trace::ReplyTrace {
        conn: s.id,
        tag,
        msg,
        data,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Config, Session, VecSink};

    #[test]
    fn an_error_text_is_cut_short_at_a_character_boundary() {
        let dir = std::env::temp_dir();
        let server = Server::new(&Config::new(&dir)).unwrap();
        let session = Session::new();
        session.set_dialect(Dialect::Unix);
        let long = "é".repeat(3000); // 6000 bytes, two per character
        let mut out = Vec::new();
        let refuse = |text: &str, out: &mut Vec<u8>| {
            let failure = Failure {
                errno: libc::EINVAL,
                text: Some(text.to_string()),
            };
            let mut data = Vec::new();
            let sink = VecSink {
                buf: &mut data,
                limit: 0,
            };
            server.respond(&session, 7, Err(failure), &sink, out)
        };
        let size = refuse(&long, &mut out);
        assert_eq!(size as usize, out.len());
        match protocol::decode_rmessage(&out) {
            Ok((7, Rmessage::Error(e))) => {
                let text = std::str::from_utf8(e.ename.as_bytes()).unwrap();
                assert_eq!(text, &long[..MAX_ERROR_TEXT]);
                assert_eq!(e.errno, Some(libc::EINVAL as u32));
            }
            other => panic!("{other:?}"),
        }
        // An odd limit falls inside a character: the cut steps back.
        refuse(&format!("x{long}"), &mut out);
        let Ok((_, Rmessage::Error(e))) = protocol::decode_rmessage(&out) else {
            panic!("no Rerror");
        };
        assert_eq!(e.ename.as_bytes().len(), MAX_ERROR_TEXT - 1);
    }
}
