//! A 9P2000.L guest served from an upstream that speaks 9P2000.u or plain
//! 9P2000, without the `,ctl` conventions: each 9P2000.L request the
//! upstream's dialect lacks becomes the requests that do its work there
//! (Twalk, Tattach, Tread, Twrite, Tclunk and Tremove are the same in every
//! dialect and pass as they are: forward.rs).
//!
//! - Tgetattr is a Tstat: owners from 9P2000.u's numeric ids, else by name
//!   through the host's user database, else the attaching user; times in
//!   seconds; the inode number is qid.path, the data version qid.version.
//! - Tsetattr and Tfsync are a Twstat; Trenameat is a Twstat of the name,
//!   within one directory only (EXDEV across directories, as 9P2000 has no
//!   move).
//! - Tlopen/Tlcreate are Topen/Tcreate; Tmkdir, Tsymlink, Tmknod and Tlink
//!   a Tcreate on a spare fid walked to the directory (symlinks, devices
//!   and links as 9P2000.u's DMSYMLINK, DMDEVICE, DMLINK: plain 9P2000 has
//!   none, EPERM); Tunlinkat a walk and a Tremove; Treadlink a Tstat's
//!   9P2000.u extension.
//! - Treaddir reads the directory's stat records from where the last read
//!   ended (9P2000 reads a directory in sequence) and answers with entry
//!   numbers as offsets; any other offset starts again from the top.
//! - Tstatfs is answered here (9P2000 has no statfs); extended attributes
//!   are EOPNOTSUPP and locks ENOLCK, as on a Linux file system without
//!   them.

use std::time::{SystemTime, UNIX_EPOCH};

use super::forward::{iounit, Answer, Call, Walked};
use super::{ctl, DirCursor};
use crate::protocol::flags::*;
use crate::protocol::modes::{open_mode_of_flags, plan9_mode, unix_mode};
use crate::protocol::*;
use crate::server::ctl_syntax::{DirCommand, FileCommand, NodeKind, StatLine, Time};
use crate::server::user::UserDb;

/// The Linux client's v9fs magic, as Tstatfs answers it.
const V9FS_MAGIC: u32 = 0x0102_1997;

/// Tstatfs's block and file counts, which 9P2000 does not give (1 TiB of
/// 4 KiB blocks).
const UNKNOWN_COUNT: u64 = 1 << 28;

/// Most directory records a Treaddir skips to reach its offset (a hostile
/// upstream could answer a directory read without end).
const MOST_SKIPPED: u64 = 1 << 24;

/// Bytes of stat records read from the upstream at once.
const DIR_READ: u32 = 64 * 1024;

/// Serves a request only 9P2000.L has (the upstream's dialect lacks it:
/// `Dialect::has`) through the 9P2000.u or 9P2000 upstream.
/// `limit`: the most bytes of Rreaddir entries the guest can take, written
/// into `out`.
pub(super) fn serve<'a>(
    call: &Call<'_>,
    request: Tmessage<'a>,
    limit: u32,
    out: &mut Vec<u8>,
    buf: &'a mut Vec<u8>,
) -> Result<Answer<'a>, i32> {
    let unix = call.fids.upstream.client.dialect() == Dialect::Unix;
    let up = |fid| call.fids.get(fid);
    let reply = match request {
        Tmessage::Getattr(t) => {
            let st = call.stat(up(t.fid)?, buf)?;
            let plain = attributes(&st, call.fids.owner());
            match ctl::stat_line(call, t.fid, Some(plain.qid), buf)? {
                Some(line) => Rmessage::Getattr(attributes_of_line(&line, plain.qid)),
                // No control file: what the stat record says.
                None => Rmessage::Getattr(plain),
            }
        }
        Tmessage::Setattr(t) => {
            let done = match setattr_commands(&t)? {
                None => Some(()),
                Some(commands) => ctl::command(call, t.fid, &commands, buf)?,
            };
            if done.is_none() {
                setattr(call, up(t.fid)?, &t, unix, buf)?;
            }
            Rmessage::Setattr(Rsetattr {})
        }
        Tmessage::Fsync(t) => {
            wstat(call, up(t.fid)?, Stat::DONT_TOUCH, unix, buf)?;
            Rmessage::Fsync(Rfsync {})
        }
        Tmessage::Lopen(t) => {
            let open = Topen {
                fid: up(t.fid)?,
                mode: open_mode_of_flags(t.flags, dialect(unix)),
            };
            match call.message(&Tmessage::Open(open), buf)? {
                Rmessage::Open(r) => Rmessage::Lopen(Rlopen {
                    qid: r.qid,
                    iounit: iounit(r.iounit, call.fids.upstream.client.iounit()),
                }),
                _ => return Err(libc::EIO),
            }
        }
        Tmessage::Lcreate(t) => {
            ctl::may_make(call, t.name)?;
            let create = Tcreate {
                fid: up(t.fid)?,
                name: t.name,
                perm: plan9_mode(S_IFREG | (t.mode & 0o7777), dialect(unix)),
                mode: open_mode_of_flags(t.flags, dialect(unix)),
                extension: unix.then_some(Str(b"")),
            };
            let (qid, iounit) = create_on(call, create, buf)?;
            // The fid is the new file now.
            call.fids.walked(t.fid, t.fid, &[t.name], Some(qid));
            Rmessage::Lcreate(Rlcreate {
                qid,
                iounit: iounit_of(call, iounit),
            })
        }
        Tmessage::Mkdir(t) => {
            ctl::may_make(call, t.name)?;
            let perm = DMDIR | plan9_mode(t.mode & 0o7777, dialect(unix));
            let qid = make(call, up(t.dfid)?, t.name, perm, Str(b""), unix, buf)?;
            Rmessage::Mkdir(Rmkdir { qid })
        }
        Tmessage::Symlink(t) => {
            ctl::may_make(call, t.name)?;
            let command = DirCommand::Symlink {
                target: t.symtgt.0.to_vec(),
                name: t.name.0.to_vec(),
            };
            if ctl::dir_command(call, t.fid, &command, buf)?.is_some() {
                // (Below `,nofollow` its qid says append-only file.)
                let qid = Qid {
                    ty: QTSYMLINK,
                    ..made_qid(call, up(t.fid)?, t.name, buf)?
                };
                return Ok(Answer::Message(Rmessage::Symlink(Rsymlink { qid })));
            }
            if !unix {
                return Err(libc::EPERM);
            }
            let perm = DMSYMLINK | 0o777;
            let qid = make(call, up(t.fid)?, t.name, perm, t.symtgt, unix, buf)?;
            Rmessage::Symlink(Rsymlink { qid })
        }
        Tmessage::Mknod(t) => {
            ctl::may_make(call, t.name)?;
            let kind = t.mode & S_IFMT;
            let command = DirCommand::Mknod {
                name: t.name.0.to_vec(),
                kind: match kind {
                    S_IFCHR => NodeKind::Char,
                    S_IFBLK => NodeKind::Block,
                    S_IFIFO => NodeKind::Fifo,
                    S_IFSOCK => NodeKind::Socket,
                    S_IFREG | 0 => NodeKind::Regular,
                    _ => return Err(libc::EINVAL),
                },
                mode: t.mode & 0o7777,
                major: t.major,
                minor: t.minor,
            };
            if ctl::dir_command(call, t.dfid, &command, buf)?.is_some() {
                let qid = Qid {
                    ty: QTFILE,
                    ..made_qid(call, up(t.dfid)?, t.name, buf)?
                };
                return Ok(Answer::Message(Rmessage::Mknod(Rmknod { qid })));
            }
            if !unix {
                return Err(libc::EPERM);
            }
            let device = match kind {
                S_IFCHR => format!("c {} {}", t.major, t.minor),
                S_IFBLK => format!("b {} {}", t.major, t.minor),
                _ => String::new(),
            };
            let perm = plan9_mode(t.mode, Dialect::Unix);
            let name = t.name;
            let qid = make(
                call,
                up(t.dfid)?,
                name,
                perm,
                Str(device.as_bytes()),
                unix,
                buf,
            )?;
            Rmessage::Mknod(Rmknod { qid })
        }
        Tmessage::Link(t) => {
            ctl::may_make(call, t.name)?;
            // Its path is used only while it still leads to its file.
            let place = match call.fids.place(t.fid) {
                Some(place) if ctl::still_there(call, t.fid, false, buf)? => Some(place),
                _ => None,
            };
            if let Some(old) = place {
                let command = DirCommand::Link {
                    old: absolute(&old.path),
                    new: t.name.0.to_vec(),
                };
                if ctl::dir_command(call, t.dfid, &command, buf)?.is_some() {
                    return Ok(Answer::Message(Rmessage::Link(Rlink {})));
                }
            }
            if !unix {
                return Err(libc::EPERM);
            }
            // 9P2000.u: a DMLINK file whose extension names the target's fid.
            let target = format!("{}\n", up(t.fid)?);
            make(
                call,
                up(t.dfid)?,
                t.name,
                DMLINK,
                Str(target.as_bytes()),
                unix,
                buf,
            )?;
            Rmessage::Link(Rlink {})
        }
        Tmessage::Readlink(t) => {
            if let Some(line) = ctl::stat_line(call, t.fid, None, buf)? {
                let target = line.symlink.as_ref().ok_or(libc::EINVAL)?;
                buf.clear();
                buf.extend_from_slice(target);
                return Ok(Answer::Message(Rmessage::Readlink(Rreadlink {
                    target: Str(buf),
                })));
            }
            if !unix {
                return Err(libc::EINVAL);
            }
            let st = call.stat(up(t.fid)?, buf)?;
            match st.ext {
                Some(ext) if st.mode & DMSYMLINK != 0 => Rmessage::Readlink(Rreadlink {
                    target: ext.extension,
                }),
                _ => return Err(libc::EINVAL),
            }
        }
        Tmessage::Unlinkat(t) => {
            let spare = call.walk_spare(up(t.dirfid)?, &[t.name], buf)?;
            // rmdir of a file, unlink of a directory: refused as Linux does.
            let is_dir = match call.stat(spare, buf) {
                Ok(st) => st.mode & DMDIR != 0,
                Err(e) => {
                    call.clunk(spare, buf);
                    return Err(e);
                }
            };
            let wants_dir = t.flags & AT_REMOVEDIR_9P != 0;
            if is_dir != wants_dir {
                call.clunk(spare, buf);
                return Err(if is_dir { libc::EISDIR } else { libc::ENOTDIR });
            }
            // Never flushed; Tremove clunks the fid whatever it answers
            // (remove(5)).
            let removed = call.finish(&Tmessage::Remove(Tremove { fid: spare }), buf);
            call.fids.release(spare);
            removed?;
            Rmessage::Unlinkat(Runlinkat {})
        }
        Tmessage::Renameat(t) => {
            ctl::may_make(call, t.newname)?;
            let (from, to) = (up(t.olddirfid)?, up(t.newdirfid)?);
            let place = |fid| call.fids.place(fid).map(|p| p.path);
            let paths = (place(t.olddirfid), place(t.newdirfid));
            let moved = |dir: &[u8], name: Str<'_>| {
                let mut path = dir.to_vec();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name.0);
                path
            };
            if let (Some(old_dir), Some(new_dir)) = &paths {
                // The new directory's path is used only while it still
                // leads there (the old one's control file checks itself).
                if from != to && ctl::still_there(call, t.newdirfid, true, buf)? {
                    let (old, new) = (moved(old_dir, t.oldname), moved(new_dir, t.newname));
                    let command = DirCommand::Rename {
                        old: t.oldname.0.to_vec(),
                        new: absolute(&new),
                    };
                    if ctl::dir_command(call, t.olddirfid, &command, buf)?.is_some() {
                        call.fids.renamed(&old, &new);
                        return Ok(Answer::Message(Rmessage::Renameat(Rrenameat {})));
                    }
                }
            }
            if from != to {
                let old_dir = call.stat(from, buf)?.qid.path;
                if call.stat(to, buf)?.qid.path != old_dir {
                    return Err(libc::EXDEV);
                }
            }
            let spare = call.walk_spare(from, &[t.oldname], buf)?;
            let renamed = wstat(
                call,
                spare,
                Stat {
                    name: t.newname,
                    ..Stat::DONT_TOUCH
                },
                unix,
                buf,
            );
            call.clunk(spare, buf);
            renamed?;
            if let (Some(old_dir), Some(new_dir)) = &paths {
                call.fids
                    .renamed(&moved(old_dir, t.oldname), &moved(new_dir, t.newname));
            }
            Rmessage::Renameat(Rrenameat {})
        }
        // (The Linux client sends Trename only when Trenameat is refused.)
        Tmessage::Rename(_) => return Err(libc::EOPNOTSUPP),
        Tmessage::Readdir(t) => return readdir(call, t, limit, out, buf),
        Tmessage::Statfs(t) => {
            up(t.fid)?;
            // 9P2000 says nothing of space: room is shown, not a full disk
            // (which tools that check free space would refuse).
            Rmessage::Statfs(Rstatfs {
                fs_type: V9FS_MAGIC,
                bsize: 4096,
                blocks: UNKNOWN_COUNT,
                bfree: UNKNOWN_COUNT,
                bavail: UNKNOWN_COUNT,
                files: UNKNOWN_COUNT,
                ffree: UNKNOWN_COUNT,
                fsid: 0,
                namelen: 255,
            })
        }
        Tmessage::Xattrwalk(_) | Tmessage::Xattrcreate(_) => return Err(libc::EOPNOTSUPP),
        Tmessage::Lock(_) | Tmessage::Getlock(_) => return Err(libc::ENOLCK),
        _ => return Err(libc::EOPNOTSUPP),
    };
    Ok(Answer::Message(reply))
}

/// Tgetattr's answer from a control file's stat line; `qid` from the
/// file's stat record (its type from the line's mode).
fn attributes_of_line(line: &StatLine, qid: Qid) -> Rgetattr {
    let f = &line.fields;
    let ty = match f.mode & S_IFMT {
        S_IFDIR => QTDIR,
        S_IFLNK => QTSYMLINK,
        _ => QTFILE,
    };
    Rgetattr {
        valid: GETATTR_BASIC,
        qid: Qid { ty, ..qid },
        mode: f.mode,
        uid: f.uid,
        gid: f.gid,
        nlink: f.nlink,
        rdev: f.rdev,
        size: f.size,
        blksize: f.blksize,
        blocks: f.blocks,
        atime_sec: f.atime.0 as u64,
        atime_nsec: u64::from(f.atime.1),
        mtime_sec: f.mtime.0 as u64,
        mtime_nsec: u64::from(f.mtime.1),
        ctime_sec: f.ctime.0 as u64,
        ctime_nsec: u64::from(f.ctime.1),
        btime_sec: 0,
        btime_nsec: 0,
        gen: 0,
        data_version: u64::from(qid.version),
    }
}

/// Tsetattr as control file commands, in the order the host directory
/// applies them (mode, owners, size, times); None when there is nothing
/// to do (only ctime asked).
fn setattr_commands(t: &Tsetattr) -> Result<Option<String>, i32> {
    let mut commands = Vec::new();
    if t.valid & ATTR_MODE != 0 {
        commands.push(FileCommand::Chmod(t.mode & 0o7777));
    }
    if t.valid & (ATTR_UID | ATTR_GID) != 0 {
        commands.push(FileCommand::Chown {
            uid: (t.valid & ATTR_UID != 0).then_some(t.uid),
            gid: (t.valid & ATTR_GID != 0).then_some(t.gid),
        });
    }
    if t.valid & ATTR_SIZE != 0 {
        commands.push(FileCommand::Truncate(t.size));
    }
    if t.valid & (ATTR_ATIME | ATTR_MTIME) != 0 {
        let time = |asked: u32, set: u32, sec: u64, nsec: u64| -> Result<Time, i32> {
            if t.valid & asked == 0 {
                Ok(Time::Omit)
            } else if t.valid & set == 0 {
                Ok(Time::Now)
            } else {
                // (A time before 1970 comes as its two's complement.)
                let sec = sec as i64;
                let nsec = u32::try_from(nsec)
                    .ok()
                    .filter(|&n| n < 1_000_000_000)
                    .ok_or(libc::EINVAL)?;
                Ok(Time::Set { sec, nsec })
            }
        };
        commands.push(FileCommand::Utimes {
            atime: time(ATTR_ATIME, ATTR_ATIME_SET, t.atime_sec, t.atime_nsec)?,
            mtime: time(ATTR_MTIME, ATTR_MTIME_SET, t.mtime_sec, t.mtime_nsec)?,
        });
    }
    if commands.is_empty() {
        return Ok(None);
    }
    Ok(Some(commands.iter().map(|c| format!("{c}\n")).collect()))
}

/// A path from the root as a control file takes it: from `/`.
fn absolute(path: &[u8]) -> Vec<u8> {
    let mut absolute = Vec::with_capacity(path.len() + 1);
    absolute.push(b'/');
    absolute.extend_from_slice(path);
    absolute
}

/// The qid of `name`, just made in directory `dir` (a walk below
/// `,nofollow`: a symlink's own qid).
fn made_qid(call: &Call<'_>, dir: u32, name: Str<'_>, buf: &mut Vec<u8>) -> Result<Qid, i32> {
    match call.walk(dir, &[name], buf)? {
        Walked::Made { fid, last } => {
            call.clunk(fid, buf);
            last.ok_or(libc::EIO)
        }
        Walked::Stopped { .. } => Err(libc::ENOENT),
    }
}

fn dialect(unix: bool) -> Dialect {
    if unix {
        Dialect::Unix
    } else {
        Dialect::Plan9
    }
}

fn iounit_of(call: &Call<'_>, upstream: u32) -> u32 {
    iounit(upstream, call.fids.upstream.client.iounit())
}

/// A Twstat of `fid` changing what `stat` gives (the rest "don't touch").
fn wstat(
    call: &Call<'_>,
    fid: u32,
    stat: Stat<'_>,
    unix: bool,
    buf: &mut Vec<u8>,
) -> Result<(), i32> {
    let stat = Stat {
        ext: match (unix, stat.ext) {
            (true, Some(ext)) => Some(ext),
            (true, None) => Some(StatExtension::DONT_TOUCH),
            (false, _) => None,
        },
        ..stat
    };
    let request = Tmessage::Wstat(Twstat {
        fid,
        stat: StatBlob(stat),
    });
    call.message(&request, buf).map(drop)
}

/// Tgetattr's answer from a stat record; `owner` (uid, gid) for owners
/// known neither by number nor by name.
fn attributes(st: &Stat<'_>, owner: (u32, u32)) -> Rgetattr {
    let ext = st.ext;
    let (mode, (major, minor)) = unix_mode(st.mode, ext.map_or(&[][..], |e| e.extension.0));
    let db = UserDb::host();
    let uid = ext
        .map(|e| e.n_uid)
        .filter(|&u| u != NONUNAME)
        .or_else(|| db.uid_of(st.uid.0))
        .unwrap_or(owner.0);
    let gid = ext
        .map(|e| e.n_gid)
        .filter(|&g| g != NONUNAME)
        .or_else(|| db.gid_of(st.gid.0))
        .unwrap_or(owner.1);
    Rgetattr {
        valid: GETATTR_BASIC,
        qid: st.qid,
        mode,
        uid,
        gid,
        nlink: 1,
        rdev: libc::makedev(major, minor),
        size: st.length,
        blksize: 4096,
        blocks: st.length.div_ceil(512),
        atime_sec: u64::from(st.atime),
        atime_nsec: 0,
        mtime_sec: u64::from(st.mtime),
        mtime_nsec: 0,
        ctime_sec: u64::from(st.mtime),
        ctime_nsec: 0,
        btime_sec: 0,
        btime_nsec: 0,
        gen: 0,
        data_version: u64::from(st.qid.version),
    }
}

/// Tsetattr as one Twstat (nothing to send when only ctime is asked).
fn setattr(
    call: &Call<'_>,
    fid: u32,
    t: &Tsetattr,
    unix: bool,
    buf: &mut Vec<u8>,
) -> Result<(), i32> {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    // A 9P2000 time is 32 bits, all ones meaning "don't touch".
    let seconds = |set: bool, given: u64| {
        let t = if set { given } else { now() };
        u32::try_from(t)
            .ok()
            .filter(|&t| t != KEEP32)
            .ok_or(libc::EINVAL)
    };
    let mut st = Stat::DONT_TOUCH;
    let mut ext = StatExtension::DONT_TOUCH;
    if t.valid & ATTR_MODE != 0 {
        // The type bits stay the file's own (wstat(5)): all but the
        // permissions and setuid, setgid, sticky.
        let keep = !(0o777 | DMSETUID | DMSETGID | DMSETVTX);
        let kind = call.stat(fid, buf)?.mode & keep;
        st.mode = kind | plan9_mode(t.mode & 0o7777, dialect(unix));
    }
    if t.valid & ATTR_SIZE != 0 {
        st.length = t.size;
    }
    if t.valid & ATTR_MTIME != 0 {
        st.mtime = seconds(t.valid & ATTR_MTIME_SET != 0, t.mtime_sec)?;
    }
    if t.valid & ATTR_ATIME != 0 {
        st.atime = seconds(t.valid & ATTR_ATIME_SET != 0, t.atime_sec)?;
    }
    let group;
    if t.valid & ATTR_UID != 0 {
        if !unix {
            // Plan 9 has no chown of the owner.
            return Err(libc::EPERM);
        }
        ext.n_uid = t.uid;
    }
    if t.valid & ATTR_GID != 0 {
        if unix {
            ext.n_gid = t.gid;
        } else {
            group = UserDb::host().group(t.gid);
            st.gid = Str(group.as_bytes());
        }
    }
    if t.valid & !ATTR_CTIME == 0 {
        return Ok(());
    }
    st.ext = unix.then_some(ext);
    wstat(call, fid, st, unix, buf)
}

/// A Tcreate: the new file's qid and iounit.
fn create_on(call: &Call<'_>, create: Tcreate<'_>, buf: &mut Vec<u8>) -> Result<(Qid, u32), i32> {
    match call.message(&Tmessage::Create(create), buf)? {
        Rmessage::Create(r) => Ok((r.qid, r.iounit)),
        _ => Err(libc::EIO),
    }
}

/// Makes `name` in directory `dir` with a Tcreate of `perm` (and a
/// 9P2000.u `extension`) on a spare fid; its qid.
fn make(
    call: &Call<'_>,
    dir: u32,
    name: Str<'_>,
    perm: u32,
    extension: Str<'_>,
    unix: bool,
    buf: &mut Vec<u8>,
) -> Result<Qid, i32> {
    let spare = call.walk_spare(dir, &[], buf)?;
    let create = Tcreate {
        fid: spare,
        name,
        perm,
        mode: 0, // OREAD
        extension: unix.then_some(extension),
    };
    let made = create_on(call, create, buf);
    call.clunk(spare, buf);
    made.map(|(qid, _)| qid)
}

/// Treaddir from the directory's stat records (see the module's notes).
fn readdir<'a>(
    call: &Call<'_>,
    t: Treaddir,
    limit: u32,
    out: &mut Vec<u8>,
    buf: &mut Vec<u8>,
) -> Result<Answer<'a>, i32> {
    let fid = call.fids.get(t.fid)?;
    let controls = call.fids.controls();
    let mut cursor = call.fids.take_cursor(t.fid);
    if t.offset < cursor.at {
        cursor = DirCursor::default();
    }
    let result = (|| {
        // A later offset: its entries are skipped.
        if t.offset - cursor.at > MOST_SKIPPED {
            return Err(libc::EINVAL);
        }
        while cursor.at < t.offset {
            if !fill(call, fid, &mut cursor, buf)? {
                break;
            }
            let (_, size) = next_record(&cursor)?;
            cursor.pos += size;
            cursor.at += 1;
        }
        let mut entries = ReaddirWriter::start(out, limit as usize);
        while fill(call, fid, &mut cursor, buf)? {
            let (st, size) = next_record(&cursor)?;
            if !entries.fits(st.name.0.len()) {
                if entries.is_empty() {
                    // Not even one entry fits: getdents' EINVAL.
                    return Err(libc::EINVAL);
                }
                break;
            }
            let ext = st.ext.map_or(&[][..], |e| e.extension.0);
            // Below `,nofollow` a symlink reads as an append-only file: its
            // type is left to a Tgetattr.
            let d_type = if controls && st.mode & DMAPPEND != 0 {
                0 // DT_UNKNOWN
            } else {
                (unix_mode(st.mode, ext).0 >> 12) as u8
            };
            entries.push(st.qid, cursor.at + 1, d_type, st.name.0);
            cursor.pos += size;
            cursor.at += 1;
        }
        Ok(Answer::Readdir(entries.finish()))
    })();
    call.fids.put_cursor(t.fid, cursor);
    result
}

/// Makes sure the cursor holds a record, reading the next stat records
/// from the upstream when it has none; false at the directory's end.
fn fill(call: &Call<'_>, fid: u32, cursor: &mut DirCursor, buf: &mut Vec<u8>) -> Result<bool, i32> {
    if cursor.pos < cursor.records.len() {
        return Ok(true);
    }
    let read = Tmessage::Read(Tread {
        fid,
        offset: cursor.offset,
        count: call.fids.upstream.client.iounit().min(DIR_READ),
    });
    let reply = call.send(&read, &[], buf)?;
    cursor.offset += reply.data.len() as u64;
    cursor.records.clear();
    cursor.records.extend_from_slice(reply.data);
    cursor.pos = 0;
    if cursor.records.is_empty() {
        // The end: nothing kept.
        cursor.records = Vec::new();
        return Ok(false);
    }
    Ok(true)
}

/// The record at the cursor and its size on the wire.
fn next_record(cursor: &DirCursor) -> Result<(Stat<'_>, usize), i32> {
    let rest = &cursor.records[cursor.pos..];
    let mut d = Decoder::new(rest);
    let stat: Stat<'_> = d.decode().map_err(|_| {
        crate::warn_limited!("upstream: an undecodable stat record in a directory read");
        libc::EIO
    })?;
    Ok((stat, rest.len() - d.remaining()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(mode: u32, ext: Option<StatExtension<'a>>) -> Stat<'a> {
        Stat {
            qid: Qid {
                ty: 0,
                version: 9,
                path: 77,
            },
            mode,
            atime: 10,
            mtime: 20,
            length: 1000,
            name: Str(b"f"),
            uid: Str(b"root"),
            gid: Str(b"root"),
            muid: Str(b""),
            ext,
            ..Stat::default()
        }
    }

    #[test]
    fn attributes_from_a_9p2000_u_record() {
        let ext = StatExtension {
            extension: Str(b"c 1 3"),
            n_uid: 1000,
            n_gid: 100,
            n_muid: 1000,
        };
        let a = attributes(&record(DMDEVICE | 0o620, Some(ext)), (5, 6));
        assert_eq!(a.mode, S_IFCHR | 0o620);
        assert_eq!((a.uid, a.gid), (1000, 100));
        assert_eq!(a.rdev, libc::makedev(1, 3));
        assert_eq!((a.size, a.blocks), (1000, 2));
        assert_eq!((a.atime_sec, a.mtime_sec, a.ctime_sec), (10, 20, 20));
        assert_eq!((a.qid.path, a.data_version), (77, 9));
    }

    #[test]
    fn attributes_from_a_9p2000_record_name_their_owners() {
        // Names the host knows map to their ids; others are the owner's.
        let a = attributes(&record(DMDIR | 0o755, None), (5, 6));
        assert_eq!(a.mode, S_IFDIR | 0o755);
        assert_eq!((a.uid, a.gid), (0, 0));
        let unknown = Stat {
            uid: Str(b"no-such-user-here"),
            gid: Str(b"no-such-group-here"),
            ..record(0o644, None)
        };
        let a = attributes(&unknown, (5, 6));
        assert_eq!((a.mode, a.uid, a.gid), (S_IFREG | 0o644, 5, 6));
    }
}
