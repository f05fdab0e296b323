//! A protocol trace in the style of Plan 9 lib9p's chatty9p output: one
//! line per message, `<-N- ` before a request and `-N-> ` before a reply on
//! connection N.
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
//! the Linux client reads them).

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

        // ---- 9P2000.L ----
        Tmessage::Statfs(Tstatfs { fid }) => write!(f, "Tstatfs tag {tag} fid {fid}"),
        Tmessage::Lopen(Tlopen { fid, flags }) => {
            write!(f, "Tlopen tag {tag} fid {fid} flags {flags:#x}")
        }
        Tmessage::Lcreate(Tlcreate {
            fid,
            name,
            flags,
            mode,
            gid,
        }) => write!(
            f,
            "Tlcreate tag {tag} fid {fid} name {} flags {flags:#x} mode {} gid {gid}",
            Text(name.0),
            Octal(mode)
        ),
        Tmessage::Symlink(Tsymlink {
            fid,
            name,
            symtgt,
            gid,
        }) => write!(
            f,
            "Tsymlink tag {tag} fid {fid} name {} symtgt {} gid {gid}",
            Text(name.0),
            Text(symtgt.0)
        ),
        Tmessage::Mknod(Tmknod {
            dfid,
            name,
            mode,
            major,
            minor,
            gid,
        }) => write!(
            f,
            "Tmknod tag {tag} dfid {dfid} name {} mode {} major {major} minor {minor} gid {gid}",
            Text(name.0),
            Octal(mode)
        ),
        Tmessage::Rename(Trename { fid, dfid, name }) => {
            write!(
                f,
                "Trename tag {tag} fid {fid} dfid {dfid} name {}",
                Text(name.0)
            )
        }
        Tmessage::Readlink(Treadlink { fid }) => write!(f, "Treadlink tag {tag} fid {fid}"),
        Tmessage::Getattr(Tgetattr { fid, request_mask }) => {
            write!(
                f,
                "Tgetattr tag {tag} fid {fid} request_mask {request_mask:#x}"
            )
        }
        Tmessage::Setattr(Tsetattr {
            fid,
            valid,
            mode,
            uid,
            gid,
            size,
            atime_sec,
            atime_nsec,
            mtime_sec,
            mtime_nsec,
        }) => write!(
            f,
            "Tsetattr tag {tag} fid {fid} valid {valid:#x} mode {} uid {uid} gid {gid} size {size} \
             atime {} mtime {}",
            Octal(mode),
            Time(atime_sec, atime_nsec),
            Time(mtime_sec, mtime_nsec)
        ),
        Tmessage::Xattrwalk(Txattrwalk { fid, newfid, name }) => {
            write!(
                f,
                "Txattrwalk tag {tag} fid {fid} newfid {newfid} name {}",
                Text(name.0)
            )
        }
        Tmessage::Xattrcreate(Txattrcreate {
            fid,
            name,
            attr_size,
            flags,
        }) => write!(
            f,
            "Txattrcreate tag {tag} fid {fid} name {} attr_size {attr_size} flags {flags:#x}",
            Text(name.0)
        ),
        Tmessage::Readdir(Treaddir { fid, offset, count }) => {
            write!(
                f,
                "Treaddir tag {tag} fid {fid} offset {offset} count {count}"
            )
        }
        Tmessage::Fsync(Tfsync { fid, datasync }) => {
            write!(f, "Tfsync tag {tag} fid {fid} datasync {datasync}")
        }
        Tmessage::Lock(Tlock {
            fid,
            lock_type,
            flags,
            start,
            length,
            proc_id,
            client_id,
        }) => write!(
            f,
            "Tlock tag {tag} fid {fid} lock_type {lock_type} flags {flags:#x} start {start} \
             length {length} proc_id {proc_id} client_id {}",
            Text(client_id.0)
        ),
        Tmessage::Getlock(Tgetlock {
            fid,
            lock_type,
            start,
            length,
            proc_id,
            client_id,
        }) => write!(
            f,
            "Tgetlock tag {tag} fid {fid} lock_type {lock_type} start {start} length {length} \
             proc_id {proc_id} client_id {}",
            Text(client_id.0)
        ),
        Tmessage::Link(Tlink { dfid, fid, name }) => {
            write!(
                f,
                "Tlink tag {tag} dfid {dfid} fid {fid} name {}",
                Text(name.0)
            )
        }
        Tmessage::Mkdir(Tmkdir {
            dfid,
            name,
            mode,
            gid,
        }) => write!(
            f,
            "Tmkdir tag {tag} dfid {dfid} name {} mode {} gid {gid}",
            Text(name.0),
            Octal(mode)
        ),
        Tmessage::Renameat(Trenameat {
            olddirfid,
            oldname,
            newdirfid,
            newname,
        }) => write!(
            f,
            "Trenameat tag {tag} olddirfid {olddirfid} oldname {} newdirfid {newdirfid} newname {}",
            Text(oldname.0),
            Text(newname.0)
        ),
        Tmessage::Unlinkat(Tunlinkat {
            dirfid,
            name,
            flags,
        }) => write!(
            f,
            "Tunlinkat tag {tag} dirfid {dirfid} name {} flags {flags:#x}",
            Text(name.0)
        ),
    }
}

fn reply(f: &mut Formatter<'_>, tag: u16, msg: &Rmessage<'_>, data: Option<&[u8]>) -> fmt::Result {
    match *msg {
        // ---- 9P2000, as fcallfmt ----
        Rmessage::Version(Rversion { msize, version }) => {
            write!(f, "Rversion tag {tag} msize {msize} version '{}'", Text(version.0))
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
        Rmessage::Open(Ropen { qid, iounit }) => write!(f, "Ropen tag {tag} qid {} iounit {iounit}", QidFmt(qid)),
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

        // ---- 9P2000.L ----
        Rmessage::Lerror(Rlerror { ecode }) => write!(f, "Rlerror tag {tag} ecode {ecode}"),
        Rmessage::Statfs(Rstatfs {
            fs_type,
            bsize,
            blocks,
            bfree,
            bavail,
            files,
            ffree,
            fsid,
            namelen,
        }) => write!(
            f,
            "Rstatfs tag {tag} fs_type {fs_type:#x} bsize {bsize} blocks {blocks} bfree {bfree} \
             bavail {bavail} files {files} ffree {ffree} fsid {fsid:#x} namelen {namelen}"
        ),
        Rmessage::Lopen(Rlopen { qid, iounit }) => write!(f, "Rlopen tag {tag} qid {} iounit {iounit}", QidFmt(qid)),
        Rmessage::Lcreate(Rlcreate { qid, iounit }) => {
            write!(f, "Rlcreate tag {tag} qid {} iounit {iounit}", QidFmt(qid))
        }
        Rmessage::Symlink(Rsymlink { qid }) => write!(f, "Rsymlink tag {tag} qid {}", QidFmt(qid)),
        Rmessage::Mknod(Rmknod { qid }) => write!(f, "Rmknod tag {tag} qid {}", QidFmt(qid)),
        Rmessage::Rename(Rrename {}) => write!(f, "Rrename tag {tag}"),
        Rmessage::Readlink(Rreadlink { target }) => write!(f, "Rreadlink tag {tag} target {}", Text(target.0)),
        Rmessage::Getattr(Rgetattr {
            valid,
            qid,
            mode,
            uid,
            gid,
            nlink,
            rdev,
            size,
            blksize,
            blocks,
            atime_sec,
            atime_nsec,
            mtime_sec,
            mtime_nsec,
            ctime_sec,
            ctime_nsec,
            btime_sec,
            btime_nsec,
            gen,
            data_version,
        }) => write!(
            f,
            "Rgetattr tag {tag} valid {valid:#x} qid {} mode {} uid {uid} gid {gid} nlink {nlink} \
             rdev {rdev} size {size} blksize {blksize} blocks {blocks} atime {} mtime {} ctime {} \
             btime {} gen {gen} data_version {data_version}",
            QidFmt(qid),
            Octal(mode),
            Time(atime_sec, atime_nsec),
            Time(mtime_sec, mtime_nsec),
            Time(ctime_sec, ctime_nsec),
            Time(btime_sec, btime_nsec)
        ),
        Rmessage::Setattr(Rsetattr {}) => write!(f, "Rsetattr tag {tag}"),
        Rmessage::Xattrwalk(Rxattrwalk { size }) => write!(f, "Rxattrwalk tag {tag} size {size}"),
        Rmessage::Xattrcreate(Rxattrcreate {}) => write!(f, "Rxattrcreate tag {tag}"),
        Rmessage::Readdir(Rreaddir { data: Data(own) }) => {
            let entries = data.unwrap_or(own);
            write!(f, "Rreaddir tag {tag} count {} {}", entries.len(), Dump(entries))
        }
        Rmessage::Fsync(Rfsync {}) => write!(f, "Rfsync tag {tag}"),
        Rmessage::Lock(Rlock { status }) => write!(f, "Rlock tag {tag} status {status}"),
        Rmessage::Getlock(Rgetlock { lock_type, start, length, proc_id, client_id }) => write!(
            f,
            "Rgetlock tag {tag} lock_type {lock_type} start {start} length {length} proc_id {proc_id} \
             client_id {}",
            Text(client_id.0)
        ),
        Rmessage::Link(Rlink {}) => write!(f, "Rlink tag {tag}"),
        Rmessage::Mkdir(Rmkdir { qid }) => write!(f, "Rmkdir tag {tag} qid {}", QidFmt(qid)),
        Rmessage::Renameat(Rrenameat {}) => write!(f, "Rrenameat tag {tag}"),
        Rmessage::Unlinkat(Runlinkat {}) => write!(f, "Runlinkat tag {tag}"),
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
struct Text<'a>(&'a [u8]);

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
struct QidFmt(Qid);

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
struct Octal(u32);

impl Display for Octal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_char('0'),
            m => write!(f, "0{m:o}"),
        }
    }
}

/// A 9P2000.L timestamp, `sec[8] nsec[8]`, as `SEC.NSEC`.
struct Time(u64, u64);

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
struct Dump<'a>(&'a [u8]);

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
mod tests {
    use super::*;
    use crate::protocol::{StatBlob, Str, WalkList, NOFID};

    fn req(conn: u32, tag: u16, msg: Tmessage<'_>, data: Option<&[u8]>) -> String {
        RequestTrace {
            conn,
            tag,
            msg: &msg,
            data,
        }
        .to_string()
    }

    fn rep(conn: u32, tag: u16, msg: Rmessage<'_>, data: Option<&[u8]>) -> String {
        ReplyTrace {
            conn,
            tag,
            msg: &msg,
            data,
        }
        .to_string()
    }

    fn qid(ty: u8, version: u32, path: u64) -> Qid {
        Qid { ty, version, path }
    }

    #[test]
    fn issue_examples() {
        let names = WalkList::from_slice(&[Str(b"name")]).unwrap();
        let walk = Tmessage::Walk(Twalk {
            fid: 442,
            newfid: 427,
            names,
        });
        assert_eq!(
            req(3, 5, walk, None),
            "<-3- Twalk tag 5 fid 442 newfid 427 nwname 1 0:name"
        );

        let qids = WalkList::from_slice(&[qid(QTDIR, 0, 4)]).unwrap();
        assert_eq!(
            rep(3, 5, Rmessage::Walk(Rwalk { qids }), None),
            "-3-> Rwalk tag 5 nwqid 1 0:(0000000000000004 0 d)"
        );
    }

    #[test]
    fn walk_lists() {
        let names = WalkList::from_slice(&[Str(b"a"), Str(b"b c")]).unwrap();
        let walk = Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 2,
            names,
        });
        assert_eq!(
            req(0, 1, walk, None),
            "<-0- Twalk tag 1 fid 1 newfid 2 nwname 2 0:a 1:b c"
        );
        let empty = Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 2,
            names: WalkList::new(),
        });
        assert_eq!(
            req(0, 1, empty, None),
            "<-0- Twalk tag 1 fid 1 newfid 2 nwname 0"
        );

        let qids = WalkList::from_slice(&[qid(QTDIR, 1, 2), qid(0, 7, 0xdead_beef)]).unwrap();
        assert_eq!(
            rep(0, 1, Rmessage::Walk(Rwalk { qids }), None),
            "-0-> Rwalk tag 1 nwqid 2 0:(0000000000000002 1 d) 1:(00000000deadbeef 7 )"
        );
    }

    #[test]
    fn version() {
        let t = Tmessage::Version(Tversion {
            msize: 8192,
            version: Str(b"9P2000.L"),
        });
        assert_eq!(
            req(1, NOTAG, t, None),
            "<-1- Tversion tag 65535 msize 8192 version '9P2000.L'"
        );
        let r = Rmessage::Version(Rversion {
            msize: 8192,
            version: Str(b"unknown"),
        });
        assert_eq!(
            rep(1, NOTAG, r, None),
            "-1-> Rversion tag 65535 msize 8192 version 'unknown'"
        );
    }

    #[test]
    fn attach_and_auth() {
        let t = Tmessage::Attach(Tattach {
            fid: 0,
            afid: NOFID,
            uname: Str(b"glenda"),
            aname: Str(b"/srv"),
            n_uname: None,
        });
        assert_eq!(
            req(2, 1, t, None),
            "<-2- Tattach tag 1 fid 0 afid -1 uname glenda aname /srv"
        );
        let t = Tmessage::Auth(Tauth {
            afid: 5,
            uname: Str(b"root"),
            aname: Str(b""),
            n_uname: Some(0),
        });
        assert_eq!(
            req(2, 1, t, None),
            "<-2- Tauth tag 1 afid 5 uname root aname  n_uname 0"
        );
        let r = Rmessage::Attach(Rattach {
            qid: qid(QTDIR, 0, 1),
        });
        assert_eq!(
            rep(2, 1, r, None),
            "-2-> Rattach tag 1 qid (0000000000000001 0 d)"
        );
        let r = Rmessage::Auth(Rauth {
            aqid: qid(QTAUTH, 0, 9),
        });
        assert_eq!(
            rep(2, 1, r, None),
            "-2-> Rauth tag 1 qid (0000000000000009 0 A)"
        );
    }

    #[test]
    fn rerror_with_and_without_ecode() {
        let plain = Rmessage::Error(Rerror {
            ename: Str(b"file not found"),
            errno: None,
        });
        assert_eq!(
            rep(1, 7, plain, None),
            "-1-> Rerror tag 7 ename file not found"
        );
        let u = Rmessage::Error(Rerror {
            ename: Str(b"No such file or directory"),
            errno: Some(2),
        });
        assert_eq!(
            rep(1, 7, u, None),
            "-1-> Rerror tag 7 ename No such file or directory ecode 2"
        );
    }

    #[test]
    fn tcreate_perm() {
        let create = |perm, mode, extension| {
            Tmessage::Create(Tcreate {
                fid: 9,
                name: Str(b"x"),
                perm,
                mode,
                extension,
            })
        };
        assert_eq!(
            req(1, 2, create(DMDIR | 0o755, 0, None), None),
            "<-1- Tcreate tag 2 fid 9 name x perm d-rwxr-xr-x mode 0"
        );
        assert_eq!(
            req(1, 2, create(0o644, 1, None), None),
            "<-1- Tcreate tag 2 fid 9 name x perm --rw-r--r-- mode 1"
        );
        assert_eq!(
            req(
                1,
                2,
                create(DMAPPEND | DMEXCL | 0o600, 2, Some(Str(b""))),
                None
            ),
            "<-1- Tcreate tag 2 fid 9 name x perm alrw------- mode 2 ext ''"
        );
        assert_eq!(
            req(1, 2, create(DMSYMLINK | 0o777, 0, Some(Str(b"../t"))), None),
            "<-1- Tcreate tag 2 fid 9 name x perm L-rwxrwxrwx mode 0 ext '../t'"
        );
        assert_eq!(
            req(1, 2, create(DMDEVICE | 0o660, 0, Some(Str(b"c 4 1"))), None),
            "<-1- Tcreate tag 2 fid 9 name x perm D-rw-rw---- mode 0 ext 'c 4 1'"
        );
    }

    fn sample_stat() -> Stat<'static> {
        Stat {
            ty: 0,
            dev: 0,
            qid: qid(0, 3, 0x1234),
            mode: 0o644,
            atime: 1_700_000_000,
            mtime: 1_700_000_001,
            length: 5,
            name: Str(b"f"),
            uid: Str(b"glenda"),
            gid: Str(b"sys"),
            muid: Str(b""),
            ext: None,
        }
    }

    #[test]
    fn rstat_plain_and_u() {
        let r = Rmessage::Stat(Rstat {
            stat: StatBlob(sample_stat()),
        });
        assert_eq!(
            rep(1, 4, r, None),
            "-1-> Rstat tag 4 stat 'f' 'glenda' 'sys' '' q (0000000000001234 3 ) m 0644 \
             at 1700000000 mt 1700000001 l 5 t 0 d 0"
        );

        let stat = Stat {
            qid: qid(QTDIR, 0, 0x10),
            mode: DMDIR | 0o755,
            name: Str(b"dir"),
            ext: Some(StatExtension {
                extension: Str(b""),
                n_uid: 1000,
                n_gid: 100,
                n_muid: u32::MAX,
            }),
            ..sample_stat()
        };
        let r = Rmessage::Stat(Rstat {
            stat: StatBlob(stat),
        });
        assert_eq!(
            rep(1, 4, r, None),
            "-1-> Rstat tag 4 stat 'dir' 'glenda' 'sys' '' q (0000000000000010 0 d) m 020000000755 \
             at 1700000000 mt 1700000001 l 5 t 0 d 0 ext '' n_uid 1000 n_gid 100 n_muid 4294967295"
        );
    }

    #[test]
    fn twstat_dont_change_fields() {
        let stat = Stat {
            ty: !0,
            dev: !0,
            qid: qid(!0, !0, !0),
            mode: !0,
            atime: !0,
            mtime: !0,
            length: !0,
            ..Stat::default()
        };
        let t = Tmessage::Wstat(Twstat {
            fid: 3,
            stat: StatBlob(stat),
        });
        assert_eq!(
            req(1, 6, t, None),
            "<-1- Twstat tag 6 fid 3 stat '' '' '' '' q (ffffffffffffffff 4294967295 dalAtL) \
             m 037777777777 at -1 mt -1 l -1 t 65535 d -1"
        );
    }

    #[test]
    fn read_write_data() {
        let read = Rmessage::Read(Rread { count: 6 });
        assert_eq!(
            rep(2, 8, read, Some(b"hello\n")),
            "-2-> Rread tag 8 count 6 'hello\\n'"
        );
        assert_eq!(rep(2, 8, read, None), "-2-> Rread tag 8 count 6");
        assert_eq!(
            rep(2, 8, Rmessage::Read(Rread { count: 0 }), Some(b"")),
            "-2-> Rread tag 8 count 0 ''"
        );

        let binary = [0u8, 1, 2, 3, 4, 0xff, b'a'];
        let read = Rmessage::Read(Rread { count: 7 });
        assert_eq!(
            rep(2, 8, read, Some(&binary)),
            "-2-> Rread tag 8 count 7 '00010203 04ff61'"
        );

        let long = [b'x'; 100];
        let read = Rmessage::Read(Rread { count: 100 });
        let expected = format!("-2-> Rread tag 8 count 100 '{}'...", "x".repeat(64));
        assert_eq!(rep(2, 8, read, Some(&long)), expected);
        let exactly = [b'y'; 64];
        let expected = format!("-2-> Rread tag 8 count 64 '{}'", "y".repeat(64));
        assert_eq!(
            rep(2, 8, Rmessage::Read(Rread { count: 64 }), Some(&exactly)),
            expected
        );

        // Only the first 64 bytes decide between text and hex.
        let mut late_binary = [b'z'; 70];
        late_binary[69] = 0;
        let expected = format!("-2-> Rread tag 8 count 70 '{}'...", "z".repeat(64));
        assert_eq!(
            rep(
                2,
                8,
                Rmessage::Read(Rread { count: 70 }),
                Some(&late_binary)
            ),
            expected
        );
        let long_binary = [0xabu8; 65];
        let hex = vec!["abababab"; 16].join(" ");
        assert_eq!(
            rep(
                2,
                8,
                Rmessage::Read(Rread { count: 65 }),
                Some(&long_binary)
            ),
            format!("-2-> Rread tag 8 count 65 '{hex}'...")
        );

        let tread = Tmessage::Read(Tread {
            fid: 3,
            offset: 4096,
            count: 8192,
        });
        assert_eq!(
            req(2, 9, tread, None),
            "<-2- Tread tag 9 fid 3 offset 4096 count 8192"
        );
        let write = Tmessage::Write(Twrite {
            fid: 3,
            offset: 0,
            count: 3,
        });
        assert_eq!(
            req(2, 9, write, Some(b"a\tb")),
            "<-2- Twrite tag 9 fid 3 offset 0 count 3 'a\\tb'"
        );
        assert_eq!(
            req(2, 9, write, None),
            "<-2- Twrite tag 9 fid 3 offset 0 count 3"
        );
        assert_eq!(
            rep(2, 9, Rmessage::Write(Rwrite { count: 3 }), None),
            "-2-> Rwrite tag 9 count 3"
        );
    }

    #[test]
    fn open_and_create_replies() {
        let r = Rmessage::Open(Ropen {
            qid: qid(QTAPPEND | QTEXCL, 2, 3),
            iounit: 8168,
        });
        assert_eq!(
            rep(1, 1, r, None),
            "-1-> Ropen tag 1 qid (0000000000000003 2 al) iounit 8168"
        );
        let r = Rmessage::Create(Rcreate {
            qid: qid(QTTMP, 0, 3),
            iounit: 0,
        });
        assert_eq!(
            rep(1, 1, r, None),
            "-1-> Rcreate tag 1 qid (0000000000000003 0 t) iounit 0"
        );
        assert_eq!(
            req(1, 1, Tmessage::Open(Topen { fid: 4, mode: 16 }), None),
            "<-1- Topen tag 1 fid 4 mode 16"
        );
    }

    #[test]
    fn strings_escaped() {
        let names =
            WalkList::from_slice(&[Str(b"a\nb\\c\x7f\x01"), Str(b"\xffok\xc3\xa9\xc2\x85")])
                .unwrap();
        let walk = Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 1,
            names,
        });
        assert_eq!(
            req(0, 1, walk, None),
            "<-0- Twalk tag 1 fid 1 newfid 1 nwname 2 0:a\\nb\\\\c\\x7f\\x01 1:\u{fffd}ok\u{e9}\\u{85}"
        );
    }

    #[test]
    fn dotl_messages() {
        let t = Tmessage::Lopen(Tlopen {
            fid: 3,
            flags: 0x8002,
        });
        assert_eq!(req(1, 1, t, None), "<-1- Tlopen tag 1 fid 3 flags 0x8002");
        assert_eq!(
            rep(1, 1, Rmessage::Lerror(Rlerror { ecode: 2 }), None),
            "-1-> Rlerror tag 1 ecode 2"
        );
        let t = Tmessage::Getattr(Tgetattr {
            fid: 3,
            request_mask: 0x3fff,
        });
        assert_eq!(
            req(1, 1, t, None),
            "<-1- Tgetattr tag 1 fid 3 request_mask 0x3fff"
        );

        let r = Rmessage::Getattr(Rgetattr {
            valid: 0x7ff,
            qid: qid(0, 0, 0x2a),
            mode: 0o100644,
            uid: 0,
            gid: 0,
            nlink: 1,
            rdev: 0,
            size: 5,
            blksize: 4096,
            blocks: 8,
            atime_sec: 1_700_000_000,
            atime_nsec: 0,
            mtime_sec: 1_700_000_001,
            mtime_nsec: 5,
            ctime_sec: 1_700_000_002,
            ctime_nsec: 999_999_999,
            btime_sec: 0,
            btime_nsec: 0,
            gen: 0,
            data_version: 0,
        });
        assert_eq!(
            rep(1, 1, r, None),
            "-1-> Rgetattr tag 1 valid 0x7ff qid (000000000000002a 0 ) mode 0100644 uid 0 gid 0 \
             nlink 1 rdev 0 size 5 blksize 4096 blocks 8 atime 1700000000.000000000 \
             mtime 1700000001.000000005 ctime 1700000002.999999999 btime 0.000000000 gen 0 \
             data_version 0"
        );

        let t = Tmessage::Setattr(Tsetattr {
            fid: 4,
            valid: 0x1f0,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime_sec: -1i64 as u64,
            atime_nsec: 500,
            mtime_sec: 3,
            mtime_nsec: 0,
        });
        assert_eq!(
            req(1, 1, t, None),
            "<-1- Tsetattr tag 1 fid 4 valid 0x1f0 mode 0 uid 0 gid 0 size 0 \
             atime -1.000000500 mtime 3.000000000"
        );
        let t = Tmessage::Mkdir(Tmkdir {
            dfid: 2,
            name: Str(b"d"),
            mode: 0o755,
            gid: 100,
        });
        assert_eq!(
            req(1, 1, t, None),
            "<-1- Tmkdir tag 1 dfid 2 name d mode 0755 gid 100"
        );
        let r = Rmessage::Readdir(Rreaddir {
            data: Data(b"\x01\x02"),
        });
        assert_eq!(rep(1, 1, r, None), "-1-> Rreaddir tag 1 count 2 '0102'");
        let header_only = Rmessage::Readdir(Rreaddir { data: Data(b"") });
        assert_eq!(
            rep(1, 1, header_only, Some(b"\x00\x00\x00")),
            "-1-> Rreaddir tag 1 count 3 '000000'"
        );
        assert_eq!(
            rep(1, 1, Rmessage::Rename(Rrename {}), None),
            "-1-> Rrename tag 1"
        );
    }
}
