//! A protocol trace in the style of Plan 9 lib9p's chatty9p output: one
//! line per message, `<-N- ` before a request and `-N-> ` before a reply on
//! connection N (and, for a gateway, `=N=> ` before a request it sends
//! upstream for connection N and `<=N= ` before the upstream's reply).
//!
//! The 9P2000 messages are printed as Plan 9's `fcallfmt` (`%F`) prints
//! them: the same words, order and conversions, including its signedness
//! (fids printed with `%d` there show NOFID as -1, Twstat's all-ones "don't
//! change" fields show as -1). Deviations, all deliberate:
//! - no trailing spaces (fcallfmt leaves one after Twalk names, Rwalk qids,
//!   Ropen/Rcreate iounit) and a single space before `stat` in Rstat;
//! - qid types also show `t` (QTTMP) and `L` (QTSYMLINK), after
//!   fcallfmt's `d`, `a`, `l`, `A`;
//! - Tcreate's perm is plan9port's `%M` (which adds the 9P2000.u `D`, `L`,
//!   `S`, `P` file types), not 9front's octal;
//! - stat records are never abbreviated to `stat(N bytes)`;
//! - strings are printed lossily (invalid UTF-8 as U+FFFD), backslash and
//!   control characters escaped (`\\`, `\n`, `\t`, `\r`, `\x01`, `\u{85}`), so
//!   a message is always one line; data dumps shown as text escape the same;
//! - a data dump longer than 64 bytes shows its first 64, then `...`;
//! - without data, Rread and Twrite show only their count (not `<no data>`);
//! - 9P2000.u fields (`n_uname`, Rerror `ecode`, Tcreate `ext`, the stat
//!   extension) are appended when present.
//!
//! 9P2000.L messages have no Plan 9 format; they are printed the same way,
//! every field under its struct name: fids and counts in decimal, flags and
//! masks in hex, modes in octal, times as `SEC.NSEC` (seconds signed, as
//! the Linux client reads them). Their lines are generated from their
//! declarations in `messages.rs`, where each field's hint says how it
//! prints (see `message!` there, and `trace_line` here).

use std::fmt::{self, Display, Formatter, Write};

use super::messages::*;
use super::stat::{Stat, DMAPPEND, DMAUTH, DMDEVICE, DMDIR, DMEXCL, DMNAMEDPIPE, DMSOCKET};
use super::stat::{StatExtension, DMSYMLINK};
use super::wire::{Data, Qid, QTAPPEND, QTAUTH, QTDIR, QTEXCL, QTSYMLINK, QTTMP};

/// A request as received on connection `conn`: displays as `<-conn- ...`.
///
/// `data` is a Twrite's payload, which the codec does not carry.
#[derive(Debug, Clone, Copy)]
pub struct RequestTrace<'a> {
    pub conn: u32,
    pub tag: u16,
    pub msg: &'a Tmessage<'a>,
    pub data: Option<&'a [u8]>,
}

/// A reply as sent on connection `conn`: displays as `-conn-> ...`.
///
/// `data` is an Rread's payload, which the codec does not carry; for an
/// Rreaddir, when given, it stands for the message's own data.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTrace<'a> {
    pub conn: u32,
    pub tag: u16,
    pub msg: &'a Rmessage<'a>,
    pub data: Option<&'a [u8]>,
}

impl Display for RequestTrace<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "<-{}- ", self.conn)?;
        request(f, self.tag, self.msg, self.data)
    }
}

impl Display for ReplyTrace<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "-{}-> ", self.conn)?;
        reply(f, self.tag, self.msg, self.data)
    }
}

/// A message between a gateway and its upstream, on behalf of the guest's
/// connection `conn`: a request displays as `=conn=> ...`, a reply as
/// `<=conn= ...` (the tag is the upstream's).
#[derive(Debug, Clone, Copy)]
pub struct Upstream<T>(pub T);

impl Display for Upstream<RequestTrace<'_>> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        write!(f, "={}=> ", t.conn)?;
        request(f, t.tag, t.msg, t.data)
    }
}

impl Display for Upstream<ReplyTrace<'_>> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        write!(f, "<={}= ", t.conn)?;
        reply(f, t.tag, t.msg, t.data)
    }
}

/// Writes a `traced` message's line from its declaration in `messages.rs`,
/// where `message!` describes the hints: gives the struct a
/// `trace(f, tag)` method writing `Name tag T field value ...`.
macro_rules! trace_line {
    ($name:ident $(<$lt:lifetime>)? { $($fields:tt)* }) => {
        impl $(<$lt>)? $name $(<$lt>)? {
            /// Writes the message as `--trace` shows it, after the `<-N- `
            /// or `-N-> ` prefix.
            pub(in crate::protocol) fn trace(
                &self,
                f: &mut std::fmt::Formatter<'_>,
                tag: u16,
            ) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), " tag {}"), tag)?;
                $crate::protocol::trace::trace_fields!(f self $($fields)*);
                Ok(())
            }
        }
    };
}
pub(super) use trace_line;

/// The ` name value` of each field, as its hint says; `time` takes the
/// `nsec` field after it too.
macro_rules! trace_fields {
    ($f:ident $m:ident) => {};
    ($f:ident $m:ident $sec:ident as time($label:ident), $nsec:ident as nsec
     $(, $($rest:tt)*)?) => {
        write!(
            $f,
            concat!(" ", stringify!($label), " {}"),
            $crate::protocol::trace::Time($m.$sec, $m.$nsec)
        )?;
        $crate::protocol::trace::trace_fields!($f $m $($($rest)*)?);
    };
    ($f:ident $m:ident $sec:ident as time $($rest:tt)*) => {
        compile_error!(concat!(
            "`",
            stringify!($sec),
            " as time(label)` must be followed by its nanoseconds field `as nsec`"
        ));
    };
    ($f:ident $m:ident $data:ident as dump($label:ident) $(, $($rest:tt)*)?) => {
        write!(
            $f,
            concat!(" ", stringify!($label), " {} {}"),
            $m.$data.0.len(),
            $crate::protocol::trace::Dump($m.$data.0)
        )?;
        $crate::protocol::trace::trace_fields!($f $m $($($rest)*)?);
    };
    ($f:ident $m:ident $field:ident $(as $hint:ident)? $(, $($rest:tt)*)?) => {
        write!(
            $f,
            concat!(" ", stringify!($field), " {}"),
            $crate::protocol::trace::trace_value!([$($hint)?] $m.$field)
        )?;
        $crate::protocol::trace::trace_fields!($f $m $($($rest)*)?);
    };
}
pub(super) use trace_fields;

/// A field's value as its hint says; decimal without one.
macro_rules! trace_value {
    ([] $v:expr) => {
        $v
    };
    ([hex] $v:expr) => {
        format_args!("{:#x}", $v)
    };
    ([octal] $v:expr) => {
        $crate::protocol::trace::Octal($v)
    };
    ([text] $v:expr) => {
        $crate::protocol::trace::Text($v.0)
    };
    ([qid] $v:expr) => {
        $crate::protocol::trace::QidFmt($v)
    };
    ([$hint:ident] $v:expr) => {
        compile_error!(concat!(
            "no trace hint `",
            stringify!($hint),
            "` (see `message!` in messages.rs)"
        ))
    };
}
pub(super) use trace_value;

fn request(
    f: &mut Formatter<'_>,
    tag: u16,
    msg: &Tmessage<'_>,
    data: Option<&[u8]>,
) -> fmt::Result {
    match *msg {
        // ---- 9P2000, as fcallfmt ----
        Tmessage::Version(Tversion { msize, version }) => {
            write!(
                f,
                "Tversion tag {tag} msize {msize} version '{}'",
                Text(version.0)
            )
        }
        Tmessage::Auth(Tauth {
            afid,
            uname,
            aname,
            n_uname,
        }) => {
            write!(
                f,
                "Tauth tag {tag} afid {} uname {} aname {}",
                afid as i32,
                Text(uname.0),
                Text(aname.0)
            )?;
            n_uname_field(f, n_uname)
        }
        Tmessage::Attach(Tattach {
            fid,
            afid,
            uname,
            aname,
            n_uname,
        }) => {
            write!(
                f,
                "Tattach tag {tag} fid {} afid {} uname {} aname {}",
                fid as i32,
                afid as i32,
                Text(uname.0),
                Text(aname.0)
            )?;
            n_uname_field(f, n_uname)
        }
        Tmessage::Flush(Tflush { oldtag }) => write!(f, "Tflush tag {tag} oldtag {oldtag}"),
        Tmessage::Walk(Twalk {
            fid,
            newfid,
            ref names,
        }) => {
            let names = names.as_slice();
            write!(
                f,
                "Twalk tag {tag} fid {} newfid {} nwname {}",
                fid as i32,
                newfid as i32,
                names.len()
            )?;
            for (i, name) in names.iter().enumerate() {
                write!(f, " {i}:{}", Text(name.0))?;
            }
            Ok(())
        }
        Tmessage::Open(Topen { fid, mode }) => write!(f, "Topen tag {tag} fid {fid} mode {mode}"),
        Tmessage::Create(Tcreate {
            fid,
            name,
            perm,
            mode,
            extension,
        }) => {
            write!(
                f,
                "Tcreate tag {tag} fid {fid} name {} perm {} mode {mode}",
                Text(name.0),
                Perm(perm)
            )?;
            match extension {
                Some(ext) => write!(f, " ext '{}'", Text(ext.0)),
                None => Ok(()),
            }
        }
        Tmessage::Read(Tread { fid, offset, count }) => write!(
            f,
            "Tread tag {tag} fid {} offset {} count {count}",
            fid as i32, offset as i64
        ),
        Tmessage::Write(Twrite { fid, offset, count }) => {
            write!(
                f,
                "Twrite tag {tag} fid {} offset {} count {count}",
                fid as i32, offset as i64
            )?;
            dump_field(f, data)
        }
        Tmessage::Clunk(Tclunk { fid }) => write!(f, "Tclunk tag {tag} fid {fid}"),
        Tmessage::Remove(Tremove { fid }) => write!(f, "Tremove tag {tag} fid {fid}"),
        Tmessage::Stat(Tstat { fid }) => write!(f, "Tstat tag {tag} fid {fid}"),
        Tmessage::Wstat(Twstat { fid, stat }) => {
            write!(f, "Twstat tag {tag} fid {fid} stat {}", StatRecord(&stat.0))
        }

        // ---- 9P2000.L, generated from the declarations (`message!`) ----
        Tmessage::Statfs(m) => m.trace(f, tag),
        Tmessage::Lopen(m) => m.trace(f, tag),
        Tmessage::Lcreate(m) => m.trace(f, tag),
        Tmessage::Symlink(m) => m.trace(f, tag),
        Tmessage::Mknod(m) => m.trace(f, tag),
        Tmessage::Rename(m) => m.trace(f, tag),
        Tmessage::Readlink(m) => m.trace(f, tag),
        Tmessage::Getattr(m) => m.trace(f, tag),
        Tmessage::Setattr(m) => m.trace(f, tag),
        Tmessage::Xattrwalk(m) => m.trace(f, tag),
        Tmessage::Xattrcreate(m) => m.trace(f, tag),
        Tmessage::Readdir(m) => m.trace(f, tag),
        Tmessage::Fsync(m) => m.trace(f, tag),
        Tmessage::Lock(m) => m.trace(f, tag),
        Tmessage::Getlock(m) => m.trace(f, tag),
        Tmessage::Link(m) => m.trace(f, tag),
        Tmessage::Mkdir(m) => m.trace(f, tag),
        Tmessage::Renameat(m) => m.trace(f, tag),
        Tmessage::Unlinkat(m) => m.trace(f, tag),
    }
}

fn reply(f: &mut Formatter<'_>, tag: u16, msg: &Rmessage<'_>, data: Option<&[u8]>) -> fmt::Result {
    match *msg {
        // ---- 9P2000, as fcallfmt ----
        Rmessage::Version(Rversion { msize, version }) => {
            write!(
                f,
                "Rversion tag {tag} msize {msize} version '{}'",
                Text(version.0)
            )
        }
        Rmessage::Auth(Rauth { aqid }) => write!(f, "Rauth tag {tag} qid {}", QidFmt(aqid)),
        Rmessage::Attach(Rattach { qid }) => write!(f, "Rattach tag {tag} qid {}", QidFmt(qid)),
        Rmessage::Error(Rerror { ename, errno }) => {
            write!(f, "Rerror tag {tag} ename {}", Text(ename.0))?;
            match errno {
                Some(ecode) => write!(f, " ecode {ecode}"),
                None => Ok(()),
            }
        }
        Rmessage::Flush(Rflush {}) => write!(f, "Rflush tag {tag}"),
        Rmessage::Walk(Rwalk { ref qids }) => {
            let qids = qids.as_slice();
            write!(f, "Rwalk tag {tag} nwqid {}", qids.len())?;
            for (i, qid) in qids.iter().enumerate() {
                write!(f, " {i}:{}", QidFmt(*qid))?;
            }
            Ok(())
        }
        Rmessage::Open(Ropen { qid, iounit }) => {
            write!(f, "Ropen tag {tag} qid {} iounit {iounit}", QidFmt(qid))
        }
        Rmessage::Create(Rcreate { qid, iounit }) => {
            write!(f, "Rcreate tag {tag} qid {} iounit {iounit}", QidFmt(qid))
        }
        Rmessage::Read(Rread { count }) => {
            write!(f, "Rread tag {tag} count {count}")?;
            dump_field(f, data)
        }
        Rmessage::Write(Rwrite { count }) => write!(f, "Rwrite tag {tag} count {count}"),
        Rmessage::Clunk(Rclunk {}) => write!(f, "Rclunk tag {tag}"),
        Rmessage::Remove(Rremove {}) => write!(f, "Rremove tag {tag}"),
        Rmessage::Stat(Rstat { stat }) => write!(f, "Rstat tag {tag} stat {}", StatRecord(&stat.0)),
        Rmessage::Wstat(Rwstat {}) => write!(f, "Rwstat tag {tag}"),

        // ---- 9P2000.L, generated from the declarations (`message!`) ----
        Rmessage::Lerror(m) => m.trace(f, tag),
        Rmessage::Statfs(m) => m.trace(f, tag),
        Rmessage::Lopen(m) => m.trace(f, tag),
        Rmessage::Lcreate(m) => m.trace(f, tag),
        Rmessage::Symlink(m) => m.trace(f, tag),
        Rmessage::Mknod(m) => m.trace(f, tag),
        Rmessage::Rename(m) => m.trace(f, tag),
        Rmessage::Readlink(m) => m.trace(f, tag),
        Rmessage::Getattr(m) => m.trace(f, tag),
        Rmessage::Setattr(m) => m.trace(f, tag),
        Rmessage::Xattrwalk(m) => m.trace(f, tag),
        Rmessage::Xattrcreate(m) => m.trace(f, tag),
        Rmessage::Readdir(Rreaddir { data: own }) => {
            // Sent apart from the message, the entries come as `data`.
            let data = data.map_or(own, Data);
            Rreaddir { data }.trace(f, tag)
        }
        Rmessage::Fsync(m) => m.trace(f, tag),
        Rmessage::Lock(m) => m.trace(f, tag),
        Rmessage::Getlock(m) => m.trace(f, tag),
        Rmessage::Link(m) => m.trace(f, tag),
        Rmessage::Mkdir(m) => m.trace(f, tag),
        Rmessage::Renameat(m) => m.trace(f, tag),
        Rmessage::Unlinkat(m) => m.trace(f, tag),
    }
}

/// The 9P2000.u `n_uname` of Tauth and Tattach, when sent.
fn n_uname_field(f: &mut Formatter<'_>, n_uname: Option<u32>) -> fmt::Result {
    match n_uname {
        Some(n) => write!(f, " n_uname {n}"),
        None => Ok(()),
    }
}

/// A data payload after the fixed fields, when the caller has it.
fn dump_field(f: &mut Formatter<'_>, data: Option<&[u8]>) -> fmt::Result {
    match data {
        Some(bytes) => write!(f, " {}", Dump(bytes)),
        None => Ok(()),
    }
}

/// A string: lossy UTF-8, with backslash and control characters escaped.
pub(super) struct Text<'a>(pub(super) &'a [u8]);

impl Display for Text<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            let valid = chunk.valid();
            let mut plain = 0;
            for (i, c) in valid.char_indices() {
                let named = match c {
                    '\\' => Some("\\\\"),
                    '\n' => Some("\\n"),
                    '\t' => Some("\\t"),
                    '\r' => Some("\\r"),
                    c if c.is_control() => None,
                    _ => continue,
                };
                f.write_str(&valid[plain..i])?;
                match named {
                    Some(escape) => f.write_str(escape)?,
                    None if c.is_ascii() => write!(f, "\\x{:02x}", c as u32)?,
                    None => write!(f, "\\u{{{:x}}}", c as u32)?,
                }
                plain = i + c.len_utf8();
            }
            f.write_str(&valid[plain..])?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

/// fcallfmt's QIDFMT, `(%.16llux %lud %s)`, with its `qidtype` letters.
pub(super) struct QidFmt(pub(super) Qid);

impl Display for QidFmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Qid { ty, version, path } = self.0;
        write!(f, "({path:016x} {version} ")?;
        for (bit, letter) in [
            (QTDIR, 'd'),
            (QTAPPEND, 'a'),
            (QTEXCL, 'l'),
            (QTAUTH, 'A'),
            (QTTMP, 't'),
            (QTSYMLINK, 'L'),
        ] {
            if ty & bit != 0 {
                f.write_char(letter)?;
            }
        }
        f.write_char(')')
    }
}

/// plan9port's `%M` (dirmodefmt): file type, exclusive bit, then `rwx`
/// for owner, group and others, e.g. `d-rwxr-xr-x`.
struct Perm(u32);

impl Display for Perm {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let m = self.0;
        let ty = [
            (DMDIR, 'd'),
            (DMAPPEND, 'a'),
            (DMAUTH, 'A'),
            (DMDEVICE, 'D'),
            (DMSYMLINK, 'L'),
            (DMSOCKET, 'S'),
            (DMNAMEDPIPE, 'P'),
        ]
        .into_iter()
        .find(|&(bit, _)| m & bit != 0)
        .map_or('-', |(_, letter)| letter);
        f.write_char(ty)?;
        f.write_char(if m & DMEXCL != 0 { 'l' } else { '-' })?;
        for shift in [6, 3, 0] {
            let bits = m >> shift;
            f.write_char(if bits & 4 != 0 { 'r' } else { '-' })?;
            f.write_char(if bits & 2 != 0 { 'w' } else { '-' })?;
            f.write_char(if bits & 1 != 0 { 'x' } else { '-' })?;
        }
        Ok(())
    }
}

/// C's `%#o`: octal with a leading 0 (and plain `0` for zero).
pub(super) struct Octal(pub(super) u32);

impl Display for Octal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_char('0'),
            m => write!(f, "0{m:o}"),
        }
    }
}

/// A 9P2000.L timestamp, `sec[8] nsec[8]`, as `SEC.NSEC`.
pub(super) struct Time(pub(super) u64, pub(super) u64);

impl Display for Time {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.0 as i64, self.1)
    }
}

/// fcallfmt's `fdirconv`, then the 9P2000.u extension when present.
struct StatRecord<'a>(&'a Stat<'a>);

impl Display for StatRecord<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Stat {
            ty,
            dev,
            qid,
            mode,
            atime,
            mtime,
            length,
            name,
            uid,
            gid,
            muid,
            ext,
        } = *self.0;
        write!(
            f,
            "'{}' '{}' '{}' '{}' q {} m {} at {} mt {} l {} t {ty} d {}",
            Text(name.0),
            Text(uid.0),
            Text(gid.0),
            Text(muid.0),
            QidFmt(qid),
            Octal(mode),
            atime as i32,
            mtime as i32,
            length as i64,
            dev as i32
        )?;
        if let Some(StatExtension {
            extension,
            n_uid,
            n_gid,
            n_muid,
        }) = ext
        {
            write!(
                f,
                " ext '{}' n_uid {n_uid} n_gid {n_gid} n_muid {n_muid}",
                Text(extension.0)
            )?;
        }
        Ok(())
    }
}

/// Most data bytes a dump shows (fcallfmt's DUMPL).
const DUMP_LIMIT: usize = 64;

/// fcallfmt's `dumpsome`: the first 64 bytes quoted, as text when they are
/// all printable (tab and newline included), else as hex in groups of four
/// bytes; `...` after the quote when there was more.
pub(super) struct Dump<'a>(pub(super) &'a [u8]);

impl Display for Dump<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(DUMP_LIMIT)];
        let printable = shown
            .iter()
            .all(|&b| (b >= 0x20 || b == b'\n' || b == b'\t') && b <= 0x7f);
        f.write_char('\'')?;
        if printable {
            write!(f, "{}", Text(shown))?;
        } else {
            for (i, b) in shown.iter().enumerate() {
                if i > 0 && i % 4 == 0 {
                    f.write_char(' ')?;
                }
                write!(f, "{b:02x}")?;
            }
        }
        f.write_char('\'')?;
        if self.0.len() > DUMP_LIMIT {
            f.write_str("...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
