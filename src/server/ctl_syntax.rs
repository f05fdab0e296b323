//! The syntax of the `,ctl` control namespace, pure (no I/O): which walk
//! names are control elements, the stat line a control file reads back, and
//! the commands written to a control file.
//!
//! Commands are one per line, tokens separated by whitespace, each token
//! percent-decoded (`%20` for a space, `%25` for `%`); empty lines are
//! ignored. A write is parsed whole: all its commands, or the first error.
//!
//! File commands (a file's control file, or a directory's own `,ctl/,`):
//! `chmod MODE`, `chown UID GID`, `utimes ATIME MTIME`, `truncate SIZE`.
//! Directory commands add `symlink TARGET NAME`, `link OLDNAME NEWNAME`,
//! `rename OLDNAME NEWNAME` and `mknod NAME TYPE MODE MAJOR MINOR`.

use std::fmt;

/// A control directory's and a control file's qid.path are those of the
/// file they control with these bits flipped (so a client can tell whose
/// control file it reached: the gateway checks it).
pub const CONTROL_DIR_QID: u64 = 1 << 62;
pub const CONTROL_FILE_QID: u64 = 1 << 63;

/// The words of a control walk element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlName {
    /// `ctl` was given.
    pub ctl: bool,
    /// `nofollow` was given.
    pub nofollow: bool,
}

/// Parses a walk name as a control element: `,` then one or more
/// comma-separated words, each `ctl` or `nofollow` (repeats allowed).
/// `None` for any other name.
pub fn parse_control_name(name: &[u8]) -> Option<ControlName> {
    let words = name.strip_prefix(b",")?;
    let mut control = ControlName::default();
    for word in words.split(|&b| b == b',') {
        match word {
            b"ctl" => control.ctl = true,
            b"nofollow" => control.nofollow = true,
            _ => return None,
        }
    }
    Some(control)
}

/// The attributes a stat line shows. Times are `(seconds, nanoseconds)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatFields {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl From<&libc::statx> for StatFields {
    fn from(stx: &libc::statx) -> Self {
        let time = |t: &libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
        StatFields {
            dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
            ino: stx.stx_ino,
            mode: u32::from(stx.stx_mode),
            nlink: u64::from(stx.stx_nlink),
            uid: stx.stx_uid,
            gid: stx.stx_gid,
            rdev: libc::makedev(stx.stx_rdev_major, stx.stx_rdev_minor),
            size: stx.stx_size,
            blksize: u64::from(stx.stx_blksize),
            blocks: stx.stx_blocks,
            atime: time(&stx.stx_atime),
            mtime: time(&stx.stx_mtime),
            ctime: time(&stx.stx_ctime),
        }
    }
}

/// The line a control file reads back: `dev N inode N mode 0OCTAL ... name
/// NAME[ symlink TARGET]\n`, with NAME and TARGET percent-encoded.
pub fn stat_line(st: &StatFields, name: &[u8], symlink_target: Option<&[u8]>) -> String {
    let mut line = format!(
        "dev {} inode {} mode 0{:o} nlink {} uid {} gid {} rdev {} size {} blksize {} blocks {} \
         atime {} mtime {} ctime {} atimensec {} mtimensec {} ctimensec {} name ",
        st.dev,
        st.ino,
        st.mode,
        st.nlink,
        st.uid,
        st.gid,
        st.rdev,
        st.size,
        st.blksize,
        st.blocks,
        st.atime.0,
        st.mtime.0,
        st.ctime.0,
        st.atime.1,
        st.mtime.1,
        st.ctime.1,
    );
    percent_encode(name, &mut line);
    if let Some(target) = symlink_target {
        line.push_str(" symlink ");
        percent_encode(target, &mut line);
    }
    line.push('\n');
    line
}

/// A stat line read back (the gateway reads them from an upstream's
/// control files): the fields, the file's name and a symlink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatLine {
    pub fields: StatFields,
    pub name: Vec<u8>,
    pub symlink: Option<Vec<u8>>,
}

/// Parses a line `stat_line` writes: `KEY VALUE` pairs, every key of it
/// present (keys it does not know are skipped, for later additions), a
/// trailing newline optional.
pub fn parse_stat_line(line: &[u8]) -> Result<StatLine, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.contains('\n') {
        return Err("more than one line".into());
    }
    let mut tokens = text.split_ascii_whitespace();
    let mut fields = StatFields::default();
    let mut seen = 0u32;
    let mut name = None;
    let mut symlink = None;
    while let Some(key) = tokens.next() {
        let value = tokens
            .next()
            .ok_or_else(|| format!("'{key}' has no value"))?;
        let number = |radix| {
            parse_digits(value.as_bytes(), radix)
                .ok_or_else(|| format!("bad {key} '{}'", value.escape_debug()))
        };
        let small = |n: u64| u32::try_from(n).map_err(|_| format!("{key} {n} is too large"));
        let seconds = || {
            let (negative, digits) = match value.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, value),
            };
            let magnitude = parse_digits(digits.as_bytes(), 10)
                .ok_or_else(|| format!("bad {key} '{}'", value.escape_debug()))?;
            let sec = if negative {
                0i64.checked_sub_unsigned(magnitude)
            } else {
                i64::try_from(magnitude).ok()
            };
            sec.ok_or_else(|| format!("{key} {value} is out of range"))
        };
        let nanoseconds = || {
            number(10)
                .ok()
                .filter(|&n| n < 1_000_000_000)
                .map(|n| n as u32)
                .ok_or_else(|| format!("bad {key} '{}'", value.escape_debug()))
        };
        let bit = match key {
            "dev" => {
                fields.dev = number(10)?;
                1
            }
            "inode" => {
                fields.ino = number(10)?;
                1 << 1
            }
            "mode" => {
                fields.mode = small(number(8)?)?;
                1 << 2
            }
            "nlink" => {
                fields.nlink = number(10)?;
                1 << 3
            }
            "uid" => {
                fields.uid = small(number(10)?)?;
                1 << 4
            }
            "gid" => {
                fields.gid = small(number(10)?)?;
                1 << 5
            }
            "rdev" => {
                fields.rdev = number(10)?;
                1 << 6
            }
            "size" => {
                fields.size = number(10)?;
                1 << 7
            }
            "blksize" => {
                fields.blksize = number(10)?;
                1 << 8
            }
            "blocks" => {
                fields.blocks = number(10)?;
                1 << 9
            }
            "atime" => {
                fields.atime.0 = seconds()?;
                1 << 10
            }
            "mtime" => {
                fields.mtime.0 = seconds()?;
                1 << 11
            }
            "ctime" => {
                fields.ctime.0 = seconds()?;
                1 << 12
            }
            "atimensec" => {
                fields.atime.1 = nanoseconds()?;
                1 << 13
            }
            "mtimensec" => {
                fields.mtime.1 = nanoseconds()?;
                1 << 14
            }
            "ctimensec" => {
                fields.ctime.1 = nanoseconds()?;
                1 << 15
            }
            "name" => {
                name = Some(percent_decode(value).map_err(|e| format!("name: {e}"))?);
                1 << 16
            }
            "symlink" => {
                symlink = Some(percent_decode(value).map_err(|e| format!("symlink: {e}"))?);
                0
            }
            _ => 0,
        };
        if seen & bit != 0 {
            return Err(format!("'{key}' given twice"));
        }
        seen |= bit;
    }
    const ALL: u32 = (1 << 17) - 1;
    match (seen == ALL, name) {
        (true, Some(name)) => Ok(StatLine {
            fields,
            name,
            symlink,
        }),
        _ => Err("a field is missing".into()),
    }
}

impl fmt::Display for Time {
    /// As `utimes` takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Time::Set { sec, nsec } => write!(f, "{sec} {nsec}"),
            Time::Now => f.write_str("now"),
            Time::Omit => f.write_str("omit"),
        }
    }
}

impl fmt::Display for FileCommand {
    /// The command as a control file takes it (without the newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |id: Option<u32>| id.map_or_else(|| "-1".to_string(), |n| n.to_string());
        match *self {
            FileCommand::Chmod(mode) => write!(f, "chmod 0{mode:o}"),
            FileCommand::Chown { uid, gid } => write!(f, "chown {} {}", id(uid), id(gid)),
            FileCommand::Utimes { atime, mtime } => write!(f, "utimes {atime} {mtime}"),
            FileCommand::Truncate(size) => write!(f, "truncate {size}"),
        }
    }
}

impl fmt::Display for DirCommand {
    /// The command as a directory's control file takes it (names
    /// percent-encoded, without the newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = |bytes: &[u8]| {
            let mut text = String::new();
            percent_encode(bytes, &mut text);
            text
        };
        match self {
            DirCommand::File(command) => write!(f, "{command}"),
            DirCommand::Symlink { target, name } => {
                write!(f, "symlink {} {}", encoded(target), encoded(name))
            }
            DirCommand::Link { old, new } => write!(f, "link {} {}", encoded(old), encoded(new)),
            DirCommand::Rename { old, new } => {
                write!(f, "rename {} {}", encoded(old), encoded(new))
            }
            DirCommand::Mknod {
                name,
                kind,
                mode,
                major,
                minor,
            } => {
                let kind = match kind {
                    NodeKind::Block => "b",
                    NodeKind::Char => "c",
                    NodeKind::Fifo => "p",
                    NodeKind::Socket => "s",
                    NodeKind::Regular => "f",
                };
                write!(
                    f,
                    "mknod {} {kind} 0{mode:o} {major} {minor}",
                    encoded(name)
                )
            }
        }
    }
}

/// Appends `bytes` to `out` with every byte outside `!`..=`~`, and `%`
/// itself, written as `%XX` (uppercase hex).
pub fn percent_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// A `%` not followed by two hex digits, at byte `offset` of its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEscape {
    pub offset: usize,
}

impl fmt::Display for BadEscape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad percent escape at byte {}", self.offset)
    }
}

impl std::error::Error for BadEscape {}

/// Decodes `%XX` escapes (either case of hex); other characters stand for
/// their UTF-8 bytes.
pub fn percent_decode(token: &str) -> Result<Vec<u8>, BadEscape> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| Some(hex_digit(hex[0])? << 4 | hex_digit(hex[1])?))
                .ok_or(BadEscape { offset: i })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// A time argument of `utimes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// `SEC NSEC`.
    Set { sec: i64, nsec: u32 },
    /// `now`.
    Now,
    /// `omit`: leave unchanged.
    Omit,
}

/// A command for a file's control file (or a directory's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCommand {
    /// `chmod MODE`: octal, at most 07777.
    Chmod(u32),
    /// `chown UID GID`: `None` for `-1`, "unchanged".
    Chown { uid: Option<u32>, gid: Option<u32> },
    /// `utimes ATIME MTIME`.
    Utimes { atime: Time, mtime: Time },
    /// `truncate SIZE`.
    Truncate(u64),
}

/// The TYPE of `mknod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `b`
    Block,
    /// `c`
    Char,
    /// `p`
    Fifo,
    /// `s`
    Socket,
    /// `f`
    Regular,
}

impl NodeKind {
    /// The `S_IF*` file type bits for mknod(2).
    pub fn file_type_bits(self) -> libc::mode_t {
        match self {
            NodeKind::Block => libc::S_IFBLK,
            NodeKind::Char => libc::S_IFCHR,
            NodeKind::Fifo => libc::S_IFIFO,
            NodeKind::Socket => libc::S_IFSOCK,
            NodeKind::Regular => libc::S_IFREG,
        }
    }
}

/// A command for a directory's own control file. Names are decoded but not
/// checked further (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirCommand {
    /// A file command applied to the directory itself.
    File(FileCommand),
    /// `symlink TARGET NAME`.
    Symlink { target: Vec<u8>, name: Vec<u8> },
    /// `link OLDNAME NEWNAME`.
    Link { old: Vec<u8>, new: Vec<u8> },
    /// `rename OLDNAME NEWNAME`.
    Rename { old: Vec<u8>, new: Vec<u8> },
    /// `mknod NAME TYPE MODE MAJOR MINOR`.
    Mknod {
        name: Vec<u8>,
        kind: NodeKind,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

/// A write to a control file that does not parse: its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ctl: line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CtlError {}

const FILE_COMMANDS: &str = "chmod, chown, utimes, truncate";
const DIR_COMMANDS: &str = "chmod, chown, utimes, truncate, symlink, link, rename, mknod";

/// Parses the commands written to a file's control file.
pub fn parse_file_commands(text: &[u8]) -> Result<Vec<FileCommand>, CtlError> {
    parse_lines(text, |word, args| {
        file_command(word, args)?.ok_or_else(|| unknown_command(word, FILE_COMMANDS))
    })
}

/// Parses the commands written to a directory's own control file.
pub fn parse_dir_commands(text: &[u8]) -> Result<Vec<DirCommand>, CtlError> {
    parse_lines(text, dir_command)
}

/// A token as written (for messages) and percent-decoded.
struct Token<'t> {
    raw: &'t str,
    bytes: Vec<u8>,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.raw.escape_debug())
    }
}

fn parse_lines<T>(
    text: &[u8],
    mut command: impl FnMut(&Token<'_>, &[Token<'_>]) -> Result<T, String>,
) -> Result<Vec<T>, CtlError> {
    let mut commands = Vec::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let error = |message: String| CtlError {
            line: index + 1,
            message,
        };
        let line = std::str::from_utf8(line).map_err(|_| error("not valid UTF-8".to_string()))?;
        let tokens = line
            .split_ascii_whitespace()
            .map(|raw| match percent_decode(raw) {
                Ok(bytes) => Ok(Token { raw, bytes }),
                Err(_) => Err(format!("bad percent escape in '{}'", raw.escape_debug())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        if let Some((word, args)) = tokens.split_first() {
            commands.push(command(word, args).map_err(error)?);
        }
    }
    Ok(commands)
}

fn unknown_command(word: &Token<'_>, known: &str) -> String {
    format!("unknown command '{word}' (want {known})")
}

/// A file command, or `None` if `word` names none.
fn file_command(word: &Token<'_>, args: &[Token<'_>]) -> Result<Option<FileCommand>, String> {
    let command = match word.bytes.as_slice() {
        b"chmod" => {
            let [mode] = arity("chmod", args)?;
            FileCommand::Chmod(mode_arg("chmod", mode)?)
        }
        b"chown" => {
            let [uid, gid] = arity("chown", args)?;
            FileCommand::Chown {
                uid: id_arg("uid", uid)?,
                gid: id_arg("gid", gid)?,
            }
        }
        b"utimes" => {
            let mut rest = args;
            let atime = time_arg("atime", &mut rest)?;
            let mtime = time_arg("mtime", &mut rest)?;
            if let Some(extra) = rest.first() {
                return Err(format!("utimes: extra argument '{extra}'"));
            }
            FileCommand::Utimes { atime, mtime }
        }
        b"truncate" => {
            let [size] = arity("truncate", args)?;
            let size = parse_digits(&size.bytes, 10).ok_or_else(|| {
                format!("truncate: bad size '{size}' (want a decimal byte count)")
            })?;
            FileCommand::Truncate(size)
        }
        _ => return Ok(None),
    };
    Ok(Some(command))
}

fn dir_command(word: &Token<'_>, args: &[Token<'_>]) -> Result<DirCommand, String> {
    if let Some(command) = file_command(word, args)? {
        return Ok(DirCommand::File(command));
    }
    Ok(match word.bytes.as_slice() {
        b"symlink" => {
            let [target, name] = arity("symlink", args)?;
            DirCommand::Symlink {
                target: name_arg("symlink", "target", target)?,
                name: name_arg("symlink", "name", name)?,
            }
        }
        b"link" => {
            let [old, new] = arity("link", args)?;
            DirCommand::Link {
                old: name_arg("link", "old name", old)?,
                new: name_arg("link", "new name", new)?,
            }
        }
        b"rename" => {
            let [old, new] = arity("rename", args)?;
            DirCommand::Rename {
                old: name_arg("rename", "old name", old)?,
                new: name_arg("rename", "new name", new)?,
            }
        }
        b"mknod" => {
            let [name, kind, mode, major, minor] = arity("mknod", args)?;
            DirCommand::Mknod {
                name: name_arg("mknod", "name", name)?,
                kind: match kind.bytes.as_slice() {
                    b"b" => NodeKind::Block,
                    b"c" => NodeKind::Char,
                    b"p" => NodeKind::Fifo,
                    b"s" => NodeKind::Socket,
                    b"f" => NodeKind::Regular,
                    _ => return Err(format!("mknod: bad type '{kind}' (want b, c, p, s or f)")),
                },
                mode: mode_arg("mknod", mode)?,
                major: u32_arg("major", major)?,
                minor: u32_arg("minor", minor)?,
            }
        }
        _ => return Err(unknown_command(word, DIR_COMMANDS)),
    })
}

/// Exactly `N` arguments.
fn arity<'a, 't, const N: usize>(
    command: &str,
    args: &'a [Token<'t>],
) -> Result<&'a [Token<'t>; N], String> {
    args.try_into().map_err(|_| {
        let plural = if N == 1 { "" } else { "s" };
        format!("{command}: want {N} argument{plural}, got {}", args.len())
    })
}

/// Digits of `radix` only (no sign), at least one, fitting a u64.
fn parse_digits(bytes: &[u8], radix: u32) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(radix)?;
        n.checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))
    })
}

fn mode_arg(command: &str, arg: &Token<'_>) -> Result<u32, String> {
    parse_digits(&arg.bytes, 8)
        .filter(|&mode| mode <= 0o7777)
        .map(|mode| mode as u32)
        .ok_or_else(|| format!("{command}: bad mode '{arg}' (want octal up to 07777)"))
}

fn id_arg(which: &str, arg: &Token<'_>) -> Result<Option<u32>, String> {
    if arg.bytes == b"-1" {
        return Ok(None);
    }
    parse_digits(&arg.bytes, 10)
        .and_then(|id| u32::try_from(id).ok())
        .map(Some)
        .ok_or_else(|| format!("chown: bad {which} '{arg}' (want a decimal id or -1)"))
}

fn u32_arg(which: &str, arg: &Token<'_>) -> Result<u32, String> {
    parse_digits(&arg.bytes, 10)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!("mknod: bad {which} '{arg}' (want a decimal number up to 4294967295)")
        })
}

fn name_arg(command: &str, which: &str, arg: &Token<'_>) -> Result<Vec<u8>, String> {
    if arg.bytes.is_empty() {
        return Err(format!("{command}: empty {which}"));
    }
    Ok(arg.bytes.clone())
}

/// Takes one `utimes` time off the front of `args`: `now`, `omit`, or
/// `SEC NSEC`.
fn time_arg(which: &str, args: &mut &[Token<'_>]) -> Result<Time, String> {
    let Some((first, rest)) = args.split_first() else {
        return Err(format!(
            "utimes: missing {which} (want now, omit or SEC NSEC)"
        ));
    };
    let (time, rest) = match first.bytes.as_slice() {
        b"now" => (Time::Now, rest),
        b"omit" => (Time::Omit, rest),
        digits => {
            let sec = match digits.strip_prefix(b"-") {
                Some(magnitude) => {
                    parse_digits(magnitude, 10).and_then(|m| 0i64.checked_sub_unsigned(m))
                }
                None => parse_digits(digits, 10).and_then(|s| i64::try_from(s).ok()),
            }
            .ok_or_else(|| format!("utimes: bad {which} '{first}' (want now, omit or SEC NSEC)"))?;
            let Some((nsec, rest)) = rest.split_first() else {
                return Err(format!("utimes: {which} '{first}' wants its nanoseconds"));
            };
            let nsec = parse_digits(&nsec.bytes, 10)
                .filter(|&n| n < 1_000_000_000)
                .ok_or_else(|| {
                    format!("utimes: bad {which} nanoseconds '{nsec}' (want 0 to 999999999)")
                })?;
            (
                Time::Set {
                    sec,
                    nsec: nsec as u32,
                },
                rest,
            )
        }
    };
    *args = rest;
    Ok(time)
}

#[cfg(test)]
mod tests;
