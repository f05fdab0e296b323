//! A plain 9P2000 upstream's `,ctl` conventions (README, "Control
//! namespace"), where it has them: the Linux metadata 9P2000 cannot carry.
//!
//! A session whose Tattach could walk on to `,nofollow` uses them: its
//! root is that `,nofollow` (so symlinks stay symlinks below it, read as
//! their targets), and a file's attributes come from the stat line of its
//! control file, `,ctl/NAME` in its directory (a directory's own is
//! `,ctl/,`); attribute changes are commands written to that file, and
//! symlinks, device nodes, hard links and moves commands to the
//! directory's `,ctl/,`. A directory found without a control namespace (a
//! heterogeneous namespace: another server mounted there) is remembered,
//! and its files are served as plain 9P2000 (plan9.rs).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::forward::{Call, Walked};
use super::Place;
use crate::protocol::flags::OWRITE;
use crate::protocol::*;
use crate::server::ctl_syntax::{
    parse_control_name, parse_stat_line, DirCommand, StatLine, CONTROL_FILE_QID,
};
use crate::sync::Locked;

/// The walk name of a control directory, and of a directory's own control
/// file in it.
const CTL: Str<'static> = Str(b",ctl");
const OWN: Str<'static> = Str(b",");

/// The walk name that keeps symlinks as they are below it.
const NOFOLLOW: Str<'static> = Str(b",nofollow");

/// The most bytes of a stat line (a percent-encoded name and symlink
/// target, three bytes each at most, and the numbers).
const MOST_LINE: usize = 3 * (255 + 4096) + 512;

/// Bytes of directory paths remembered without a control namespace.
const MOST_REMEMBERED: usize = 1 << 20;

/// The directories found without a control namespace, by path; at most
/// MOST_REMEMBERED bytes of paths are kept (then forgotten all at once:
/// probing again costs a walk, nothing else).
#[derive(Default)]
pub(super) struct Probes {
    without: Mutex<(HashSet<Box<[u8]>>, usize)>,
}

impl Probes {
    fn lacks(&self, dir: &[u8]) -> bool {
        self.without.locked().0.contains(dir)
    }

    fn found_without(&self, dir: &[u8]) {
        let mut without = self.without.locked();
        let (paths, bytes) = &mut *without;
        if *bytes + dir.len() > MOST_REMEMBERED {
            paths.clear();
            *bytes = 0;
        }
        if paths.insert(dir.into()) {
            *bytes += dir.len() + 1;
        }
    }
}

/// The path of what a walk from `from` through `names` reaches (names
/// joined by '/', the root empty; `..` never above the root); None if a
/// name is a control name (a walk into the upstream's control namespace,
/// which these paths do not follow).
pub(super) fn walked_path(from: &[u8], names: &[Str<'_>]) -> Option<Box<[u8]>> {
    let mut path = from.to_vec();
    for name in names {
        match name.0 {
            b".." => {
                let parent = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
                path.truncate(parent);
            }
            name if parse_control_name(name).is_some() => return None,
            name => {
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
            }
        }
    }
    Some(path.into_boxed_slice())
}

/// `path`'s directory and last name (the root has none).
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.is_empty() {
        return None;
    }
    Some(match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[][..], path),
    })
}

/// The names of `path` (the root has none).
fn names(path: &[u8]) -> impl Iterator<Item = Str<'_>> {
    path.split(|&b| b == b'/')
        .filter(|name| !name.is_empty())
        .map(Str)
}

/// A spare fid walked from the session's control root to the control file
/// of the file at `place`: its own (`,ctl/,`: a directory's, which also
/// takes directory commands) if `own`, else `,ctl/NAME` in its directory
/// (the root's is its own). None where the directory has no control
/// namespace (remembered), or the path no longer leads to that file
/// (another session moved it: its control file's qid tells).
fn walk_to_control(
    call: &Call<'_>,
    place: &Place,
    own: bool,
    buf: &mut Vec<u8>,
) -> Result<Option<u32>, i32> {
    let (dir, name) = match split(&place.path) {
        Some((dir, name)) if !own => (dir, Some(name)),
        _ => (&place.path[..], None),
    };
    let probes = &call.fids.upstream.probes;
    if probes.lacks(dir) {
        return Ok(None);
    }
    let mut path: Vec<Str<'_>> = names(dir).collect();
    let depth = path.len();
    path.push(CTL);
    path.push(name.map_or(OWN, Str));
    let walked = match walk_path(call, place.root, &path, buf) {
        Ok(walked) => walked,
        // A flush ends the request; anything else means no control file
        // there now (the upstream refuses a walk whose first name is gone).
        Err(libc::EINTR) => return Err(libc::EINTR),
        Err(_) => return Ok(None),
    };
    match walked {
        Walked::Made { fid, last } => {
            let whose = last.map(|q| q.path ^ CONTROL_FILE_QID);
            if whose == Some(place.qid) {
                return Ok(Some(fid));
            }
            call.clunk(fid, buf);
            Ok(None)
        }
        // A directory without `,ctl`.
        Walked::Stopped { walked, last } if walked == depth && depth > 0 => {
            if last.is_some_and(|q| q.ty & QTDIR != 0) {
                probes.found_without(dir);
            }
            Ok(None)
        }
        // The path leads nowhere now.
        Walked::Stopped { .. } => Ok(None),
    }
}

/// `Call::walk` through any number of names (MAXWELEM at a time).
fn walk_path(
    call: &Call<'_>,
    from: u32,
    path: &[Str<'_>],
    buf: &mut Vec<u8>,
) -> Result<Walked, i32> {
    let mut chunks = path.chunks(MAXWELEM);
    let first = chunks.next().unwrap_or(&[]);
    let (fid, mut last) = match call.walk(from, first, buf)? {
        Walked::Made { fid, last } => (fid, last),
        stopped => return Ok(stopped),
    };
    let mut walked = first.len();
    for chunk in chunks {
        let names = WalkList::from_slice(chunk).ok_or(libc::EINVAL)?;
        let on = Tmessage::Walk(Twalk {
            fid,
            newfid: fid,
            names,
        });
        let reply = call.message(&on, buf);
        match reply {
            Ok(Rmessage::Walk(r)) if r.qids.len() == chunk.len() => {
                walked += chunk.len();
                last = r.qids.as_slice().last().copied();
            }
            // The fid stays where it was.
            Ok(Rmessage::Walk(r)) => {
                let stopped = Walked::Stopped {
                    walked: walked + r.qids.len(),
                    last: r.qids.as_slice().last().copied().or(last),
                };
                call.clunk(fid, buf);
                return Ok(stopped);
            }
            Ok(_) => {
                call.clunk(fid, buf);
                return Err(libc::EIO);
            }
            Err(e) => {
                call.clunk(fid, buf);
                return Err(e);
            }
        }
    }
    Ok(Walked::Made { fid, last })
}

/// The control file of guest fid `fid` (see `walk_to_control`); None
/// also when the session uses no control files or the fid has no place.
fn control_file(
    call: &Call<'_>,
    fid: u32,
    own: bool,
    buf: &mut Vec<u8>,
) -> Result<Option<u32>, i32> {
    let Some(place) = call.fids.place(fid) else {
        return Ok(None);
    };
    walk_to_control(call, &place, own, buf)
}

/// Whether guest fid `fid`'s place still leads to its file (its control
/// file is reached and is that file's): `own` as for `control_file`.
pub(super) fn still_there(
    call: &Call<'_>,
    fid: u32,
    own: bool,
    buf: &mut Vec<u8>,
) -> Result<bool, i32> {
    match control_file(call, fid, own, buf)? {
        Some(spare) => {
            call.clunk(spare, buf);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Whether `name` may be made in a session that uses the `,ctl`
/// conventions: not a control name, which would stand in for the
/// directory's control namespace (a real entry wins) for every client.
pub(super) fn may_make(call: &Call<'_>, name: Str<'_>) -> Result<(), i32> {
    if call.fids.controls() && parse_control_name(name.0).is_some() {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// Starts the `,ctl` conventions for guest fid `fid`, just attached as
/// upstream fid `up` (root qid `qid`) for user `uid`: if the upstream has
/// `,nofollow` at its root (the same directory: a file of that name would
/// be another), `up` walks on to it (so symlinks stay symlinks below) and
/// the session keeps a clone for the user, to walk to control files from.
pub(super) fn attached(call: &Call<'_>, fid: u32, up: u32, qid: Qid, uid: u32, buf: &mut Vec<u8>) {
    let Some(names) = WalkList::from_slice(&[NOFOLLOW]) else {
        return;
    };
    let on = Tmessage::Walk(Twalk {
        fid: up,
        newfid: up,
        names,
    });
    let same =
        |r: &Rwalk| matches!(r.qids.as_slice(), [q] if q.path == qid.path && q.ty & QTDIR != 0);
    match call.message(&on, buf) {
        Ok(Rmessage::Walk(r)) if same(&r) => {}
        Ok(Rmessage::Walk(r)) if r.qids.len() == 1 => {
            // Walked somewhere else: back to the root, no conventions.
            let back = Tmessage::Walk(Twalk {
                fid: up,
                newfid: up,
                names: WalkList::from_slice(&[Str(b"..")]).unwrap_or_default(),
            });
            let _ = call.message(&back, buf);
            return;
        }
        _ => return,
    }
    let root = match call.fids.control_root(uid) {
        Some(root) => root,
        None => {
            let Ok(made) = call.walk_spare(up, &[], buf) else {
                return;
            };
            let (root, kept) = call.fids.set_control_root(uid, made);
            if !kept {
                call.clunk(made, buf);
            }
            root
        }
    };
    let place = Place {
        root,
        path: Box::default(),
        qid: qid.path,
    };
    call.fids.set_place(fid, Some(place));
}

/// The stat line of guest fid `fid`'s control file; None where there is
/// none. `validator`: the file's qid as its stat record gave it just now;
/// a line read before at the same qid.version is answered from the cache
/// (none: read anew, not kept).
pub(super) fn stat_line(
    call: &Call<'_>,
    fid: u32,
    validator: Option<Qid>,
    buf: &mut Vec<u8>,
) -> Result<Option<Arc<StatLine>>, i32> {
    let lines = &call.fids.upstream.lines;
    if let Some(qid) = validator {
        if call.fids.place(fid).is_some() {
            if let Some(line) = lines.get(qid) {
                return Ok(Some(line));
            }
        }
    }
    let Some(spare) = control_file(call, fid, false, buf)? else {
        return Ok(None);
    };
    let line = read_whole(call, spare, buf);
    call.clunk(spare, buf);
    let line = line?;
    match parse_stat_line(&line) {
        Ok(line) => {
            let line = Arc::new(line);
            if let Some(qid) = validator {
                lines.put(qid, &line);
            }
            Ok(Some(line))
        }
        Err(e) => {
            crate::warn_limited!(
                "upstream {}: a control file's stat line does not parse: {e}",
                call.gateway.address()
            );
            Err(libc::EIO)
        }
    }
}

/// Stat lines read from control files, by the file's qid.path and kept
/// with its qid.version (which moves with every change of the file, its
/// metadata too, on this daemon as an upstream): a Tgetattr whose Tstat
/// shows the same version is answered without reading the line again.
/// At most LINE_BYTES are kept (then all forgotten at once).
#[derive(Default)]
pub(super) struct Lines {
    cache: Mutex<(HashMap<u64, Versioned>, usize)>,
}

/// A stat line and the qid.version it was read at.
type Versioned = (u32, Arc<StatLine>);

/// Bytes of stat lines kept (counted as a line's size plus its name and
/// target).
const LINE_BYTES: usize = 16 << 20;

impl Lines {
    fn size(line: &StatLine) -> usize {
        std::mem::size_of::<StatLine>()
            + line.name.len()
            + line.symlink.as_ref().map_or(0, Vec::len)
    }

    fn get(&self, qid: Qid) -> Option<Arc<StatLine>> {
        let cache = self.cache.locked();
        match cache.0.get(&qid.path) {
            Some((version, line)) if *version == qid.version => Some(line.clone()),
            _ => None,
        }
    }

    fn put(&self, qid: Qid, line: &Arc<StatLine>) {
        let size = Lines::size(line);
        let mut cache = self.cache.locked();
        let (map, bytes) = &mut *cache;
        if *bytes + size > LINE_BYTES {
            map.clear();
            *bytes = 0;
        }
        if let Some((_, old)) = map.insert(qid.path, (qid.version, line.clone())) {
            *bytes -= Lines::size(&old);
        }
        *bytes += size;
    }
}

/// Opens `spare` for reading and reads it whole (at most MOST_LINE bytes).
fn read_whole(call: &Call<'_>, spare: u32, buf: &mut Vec<u8>) -> Result<Vec<u8>, i32> {
    let open = Tmessage::Open(Topen {
        fid: spare,
        mode: 0, // OREAD
    });
    call.message(&open, buf)?;
    let mut text = Vec::new();
    loop {
        let room = MOST_LINE + 1 - text.len();
        let read = Tmessage::Read(Tread {
            fid: spare,
            offset: text.len() as u64,
            count: (room as u32).min(call.fids.upstream.client.iounit()),
        });
        let reply = call.send(&read, &[], buf)?;
        if reply.data.is_empty() {
            return Ok(text);
        }
        text.extend_from_slice(reply.data);
        if text.len() > MOST_LINE {
            return Err(libc::EIO);
        }
        // A stat line is one line: no read for the end of the file.
        if text.ends_with(b"\n") {
            return Ok(text);
        }
    }
}

/// Writes `commands` (lines) to guest fid `fid`'s control file; None
/// where there is none (nothing done).
pub(super) fn command(
    call: &Call<'_>,
    fid: u32,
    commands: &str,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, i32> {
    let Some(spare) = control_file(call, fid, false, buf)? else {
        return Ok(None);
    };
    let written = write_commands(call, spare, commands, buf);
    call.clunk(spare, buf);
    written.map(Some)
}

/// Writes `command` to the own control file of directory guest fid `dir`;
/// None where it has none (nothing done).
pub(super) fn dir_command(
    call: &Call<'_>,
    dir: u32,
    command: &DirCommand,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, i32> {
    let Some(spare) = control_file(call, dir, true, buf)? else {
        return Ok(None);
    };
    let written = write_commands(call, spare, &format!("{command}\n"), buf);
    call.clunk(spare, buf);
    written.map(Some)
}

/// Opens `spare` (a control file) for writing and writes `commands` in one
/// Twrite (a control file applies what one write carries).
fn write_commands(
    call: &Call<'_>,
    spare: u32,
    commands: &str,
    buf: &mut Vec<u8>,
) -> Result<(), i32> {
    let open = Tmessage::Open(Topen {
        fid: spare,
        mode: OWRITE,
    });
    call.message(&open, buf)?;
    let count = u32::try_from(commands.len()).map_err(|_| libc::E2BIG)?;
    if count > call.fids.upstream.client.iounit() {
        return Err(libc::E2BIG);
    }
    let write = Tmessage::Write(Twrite {
        fid: spare,
        offset: 0,
        count,
    });
    match call.send(&write, commands.as_bytes(), buf)?.msg {
        Rmessage::Write(r) if r.count == count => Ok(()),
        _ => Err(libc::EIO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(from: &str, names: &[&str]) -> Option<String> {
        let names: Vec<Str<'_>> = names.iter().map(|n| Str(n.as_bytes())).collect();
        walked_path(from.as_bytes(), &names).map(|p| String::from_utf8(p.into()).unwrap())
    }

    #[test]
    fn paths_follow_walks() {
        assert_eq!(path("", &[]).as_deref(), Some(""));
        assert_eq!(path("", &["a", "b"]).as_deref(), Some("a/b"));
        assert_eq!(path("a/b", &["..", "c"]).as_deref(), Some("a/c"));
        assert_eq!(path("a", &["..", ".."]).as_deref(), Some(""));
        assert_eq!(path("", &["..", "x"]).as_deref(), Some("x"));
        assert_eq!(path("a", &[",ctl", "x"]), None);
        assert_eq!(path("a", &[",nofollow"]), None);
        // Names that only look like control names are names.
        assert_eq!(path("a", &[",x", "ctl"]).as_deref(), Some("a/,x/ctl"));
    }

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(split(b""), None);
        assert_eq!(split(b"a"), Some((&b""[..], &b"a"[..])));
        assert_eq!(split(b"a/b/c"), Some((&b"a/b"[..], &b"c"[..])));
        let all: Vec<&[u8]> = names(b"a/b").map(|s| s.0).collect();
        assert_eq!(all, [&b"a"[..], &b"b"[..]]);
        assert_eq!(names(b"").count(), 0);
    }

    #[test]
    fn lines_are_kept_by_qid_version_within_their_bound() {
        let lines = Lines::default();
        let qid = |path, version| Qid {
            ty: 0,
            version,
            path,
        };
        let line = Arc::new(StatLine {
            fields: Default::default(),
            name: b"f".to_vec(),
            symlink: None,
        });
        lines.put(qid(1, 7), &line);
        assert!(lines.get(qid(1, 7)).is_some());
        assert!(lines.get(qid(1, 8)).is_none(), "another version");
        assert!(lines.get(qid(2, 7)).is_none(), "another file");
        lines.put(qid(1, 8), &line);
        assert!(lines.get(qid(1, 7)).is_none(), "replaced");
        let big = Arc::new(StatLine {
            fields: Default::default(),
            name: vec![b'x'; LINE_BYTES],
            symlink: None,
        });
        lines.put(qid(3, 1), &big);
        assert!(lines.get(qid(1, 8)).is_none(), "forgotten at the bound");
        assert!(lines.get(qid(3, 1)).is_some());
    }

    #[test]
    fn probes_forget_all_at_their_bound() {
        let probes = Probes::default();
        probes.found_without(b"a");
        assert!(probes.lacks(b"a") && !probes.lacks(b"b"));
        let long = vec![b'x'; MOST_REMEMBERED];
        probes.found_without(&long);
        assert!(!probes.lacks(b"a"), "forgotten at the bound");
    }
}
