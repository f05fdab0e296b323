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
mod tests {
    use super::*;

    #[test]
    fn control_names() {
        let name = |ctl, nofollow| Some(ControlName { ctl, nofollow });
        let table: &[(&[u8], Option<ControlName>)] = &[
            (b",ctl", name(true, false)),
            (b",nofollow", name(false, true)),
            (b",ctl,nofollow", name(true, true)),
            (b",nofollow,ctl", name(true, true)),
            (b",ctl,ctl", name(true, false)),
            (b",nofollow,nofollow,ctl", name(true, true)),
            (b",", None),
            (b",,", None),
            (b",,ctl", None),
            (b",ctl,", None),
            (b",ctl,,nofollow", None),
            (b",foo", None),
            (b",ctl,foo", None),
            (b",CTL", None),
            (b",ctl ", None),
            (b"ctl", None),
            (b"ctl,", None),
            (b"", None),
            (b"a,ctl", None),
        ];
        for (input, expected) in table {
            assert_eq!(
                parse_control_name(input),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn stat_line_exact() {
        let st = StatFields {
            dev: 2049,
            ino: 131_074,
            mode: 0o100644,
            nlink: 1,
            uid: 1000,
            gid: 100,
            rdev: 0,
            size: 5,
            blksize: 4096,
            blocks: 8,
            atime: (1_700_000_000, 1),
            mtime: (-5, 999_999_999),
            ctime: (0, 0),
        };
        assert_eq!(
            stat_line(&st, b"hello world", None),
            "dev 2049 inode 131074 mode 0100644 nlink 1 uid 1000 gid 100 rdev 0 size 5 \
             blksize 4096 blocks 8 atime 1700000000 mtime -5 ctime 0 atimensec 1 \
             mtimensec 999999999 ctimensec 0 name hello%20world\n"
        );
        let link = StatFields {
            mode: 0o120777,
            ..st
        };
        assert_eq!(
            stat_line(&link, b"l", Some(b"../a b%c")),
            "dev 2049 inode 131074 mode 0120777 nlink 1 uid 1000 gid 100 rdev 0 size 5 \
             blksize 4096 blocks 8 atime 1700000000 mtime -5 ctime 0 atimensec 1 \
             mtimensec 999999999 ctimensec 0 name l symlink ../a%20b%25c\n"
        );
    }

    #[test]
    fn stat_fields_from_statx() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;

        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"12345").unwrap();
        let stx = crate::server::host::statx(file.as_file().as_fd()).unwrap();
        let st = StatFields::from(&stx);
        let md = std::fs::metadata(file.path()).unwrap();
        assert_eq!(
            st,
            StatFields {
                dev: md.dev(),
                ino: md.ino(),
                mode: md.mode(),
                nlink: md.nlink(),
                uid: md.uid(),
                gid: md.gid(),
                rdev: md.rdev(),
                size: 5,
                blksize: md.blksize(),
                blocks: md.blocks(),
                atime: (md.atime(), md.atime_nsec() as u32),
                mtime: (md.mtime(), md.mtime_nsec() as u32),
                ctime: (md.ctime(), md.ctime_nsec() as u32),
            }
        );
    }

    #[test]
    fn percent_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut encoded = String::new();
        percent_encode(&all, &mut encoded);
        assert!(encoded.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(percent_decode(&encoded).unwrap(), all);
        for b in 0..=255u8 {
            let mut one = String::new();
            percent_encode(&[b], &mut one);
            let plain = (0x21..=0x7e).contains(&b) && b != b'%';
            assert_eq!(one.len(), if plain { 1 } else { 3 }, "byte {b:#x}");
            assert_eq!(percent_decode(&one).unwrap(), [b]);
        }
        let mut s = String::new();
        percent_encode(b"a b%\n\xff~!", &mut s);
        assert_eq!(s, "a%20b%25%0A%FF~!");
        assert_eq!(percent_decode("%0a%Ff%7E").unwrap(), b"\n\xff~");
        assert_eq!(percent_decode("\u{e9}").unwrap(), "\u{e9}".as_bytes());
        assert_eq!(percent_decode("").unwrap(), b"");
        for (bad, offset) in [
            ("%", 0),
            ("a%4", 1),
            ("%zz", 0),
            ("ab%g0", 2),
            ("%20%2", 3),
            ("%+1", 0),
        ] {
            assert_eq!(percent_decode(bad), Err(BadEscape { offset }), "{bad}");
        }
    }

    fn file(text: &str) -> Vec<FileCommand> {
        parse_file_commands(text.as_bytes()).unwrap()
    }

    fn dir(text: &str) -> Vec<DirCommand> {
        parse_dir_commands(text.as_bytes()).unwrap()
    }

    #[test]
    fn file_commands() {
        use FileCommand::*;
        assert_eq!(file("chmod 755"), [Chmod(0o755)]);
        assert_eq!(file("chmod 07777\n"), [Chmod(0o7777)]);
        assert_eq!(file("chmod 0"), [Chmod(0)]);
        assert_eq!(
            file("chown 1000 100"),
            [Chown {
                uid: Some(1000),
                gid: Some(100)
            }]
        );
        assert_eq!(
            file("chown -1 4294967295"),
            [Chown {
                uid: None,
                gid: Some(u32::MAX)
            }]
        );
        assert_eq!(
            file("chown 0 -1"),
            [Chown {
                uid: Some(0),
                gid: None
            }]
        );
        let set = |sec, nsec| Time::Set { sec, nsec };
        assert_eq!(
            file("utimes now omit"),
            [Utimes {
                atime: Time::Now,
                mtime: Time::Omit
            }]
        );
        assert_eq!(
            file("utimes 1 2 3 4"),
            [Utimes {
                atime: set(1, 2),
                mtime: set(3, 4)
            }]
        );
        assert_eq!(
            file("utimes 5 6 now"),
            [Utimes {
                atime: set(5, 6),
                mtime: Time::Now
            }]
        );
        assert_eq!(
            file("utimes omit -7 999999999"),
            [Utimes {
                atime: Time::Omit,
                mtime: set(-7, 999_999_999)
            }]
        );
        assert_eq!(
            file("utimes -9223372036854775808 0 9223372036854775807 0"),
            [Utimes {
                atime: set(i64::MIN, 0),
                mtime: set(i64::MAX, 0)
            }]
        );
        assert_eq!(file("truncate 0"), [Truncate(0)]);
        assert_eq!(file("truncate 18446744073709551615"), [Truncate(u64::MAX)]);
        // Whitespace, empty lines, CRLF, percent-encoded tokens.
        assert_eq!(
            file("\n  chmod\t644  \r\n\n%63hmod %37%30%30\ntruncate 1"),
            [Chmod(0o644), Chmod(0o700), Truncate(1)]
        );
        assert_eq!(file(""), []);
        assert_eq!(file("\n \n"), []);
    }

    #[test]
    fn dir_commands() {
        use DirCommand::*;
        assert_eq!(dir("chmod 700"), [File(FileCommand::Chmod(0o700))]);
        assert_eq!(
            dir("utimes now now"),
            [File(FileCommand::Utimes {
                atime: Time::Now,
                mtime: Time::Now
            })]
        );
        assert_eq!(
            dir("symlink ../a%20b%25 my%20link"),
            [Symlink {
                target: b"../a b%".to_vec(),
                name: b"my link".to_vec()
            }]
        );
        assert_eq!(
            dir("link a b"),
            [Link {
                old: b"a".to_vec(),
                new: b"b".to_vec()
            }]
        );
        assert_eq!(
            dir("rename %FF x/y"),
            [Rename {
                old: b"\xff".to_vec(),
                new: b"x/y".to_vec()
            }]
        );
        let mknod = |kind, mode, major, minor| Mknod {
            name: b"n".to_vec(),
            kind,
            mode,
            major,
            minor,
        };
        assert_eq!(
            dir("mknod n b 660 8 1\nmknod n c 0620 4 64\nmknod n p 644 0 0\nmknod n s 755 0 0\nmknod n f 600 0 0\n"),
            [
                mknod(NodeKind::Block, 0o660, 8, 1),
                mknod(NodeKind::Char, 0o620, 4, 64),
                mknod(NodeKind::Fifo, 0o644, 0, 0),
                mknod(NodeKind::Socket, 0o755, 0, 0),
                mknod(NodeKind::Regular, 0o600, 0, 0),
            ]
        );
        assert_eq!(NodeKind::Block.file_type_bits(), libc::S_IFBLK);
        assert_eq!(NodeKind::Regular.file_type_bits(), libc::S_IFREG);
    }

    fn file_err(text: &[u8]) -> CtlError {
        parse_file_commands(text).unwrap_err()
    }

    fn dir_err(text: &[u8]) -> CtlError {
        parse_dir_commands(text).unwrap_err()
    }

    #[test]
    fn error_messages() {
        // (parsed as a directory's `,` file rather than a file's, text, error)
        let cases: &[(bool, &[u8], &str)] = &[
            (
                false,
                b"chmod 644\nchmodd 644\n",
                "ctl: line 2: unknown command 'chmodd' (want chmod, chown, utimes, truncate)",
            ),
            (
                false,
                b"chmod 999",
                "ctl: line 1: chmod: bad mode '999' (want octal up to 07777)",
            ),
            (
                false,
                b"chown 1",
                "ctl: line 1: chown: want 2 arguments, got 1",
            ),
            (
                false,
                b"chmod",
                "ctl: line 1: chmod: want 1 argument, got 0",
            ),
            (
                true,
                b"symlink a b c",
                "ctl: line 1: symlink: want 2 arguments, got 3",
            ),
            (
                true,
                b"frob",
                "ctl: line 1: unknown command 'frob' (want chmod, chown, utimes, truncate, symlink, link, rename, mknod)",
            ),
            (
                false,
                b"utimes 1 1000000000 now",
                "ctl: line 1: utimes: bad atime nanoseconds '1000000000' (want 0 to 999999999)",
            ),
            (
                false,
                b"truncate x%zz",
                "ctl: line 1: bad percent escape in 'x%zz'",
            ),
            (false, b"\n\xff", "ctl: line 2: not valid UTF-8"),
            (true, b"link %20 %", "ctl: line 1: bad percent escape in '%'"),
            (true, b"link a %", "ctl: line 1: bad percent escape in '%'"),
            (
                true,
                b"mknod n q 644 1 2",
                "ctl: line 1: mknod: bad type 'q' (want b, c, p, s or f)",
            ),
            (
                true,
                b"mknod n b 644 x 2",
                "ctl: line 1: mknod: bad major 'x' (want a decimal number up to 4294967295)",
            ),
            (
                false,
                b"chown 1 x",
                "ctl: line 1: chown: bad gid 'x' (want a decimal id or -1)",
            ),
            (
                false,
                b"truncate -1",
                "ctl: line 1: truncate: bad size '-1' (want a decimal byte count)",
            ),
            (
                false,
                b"utimes now",
                "ctl: line 1: utimes: missing mtime (want now, omit or SEC NSEC)",
            ),
            (
                false,
                b"utimes 1 2 3",
                "ctl: line 1: utimes: mtime '3' wants its nanoseconds",
            ),
            (
                false,
                b"utimes now now x",
                "ctl: line 1: utimes: extra argument 'x'",
            ),
            (
                false,
                b"utimes now 1e3 0",
                "ctl: line 1: utimes: bad mtime '1e3' (want now, omit or SEC NSEC)",
            ),
            // Tokens are shown as written, escaped.
            (
                false,
                "chmod 'x\u{1}".as_bytes(),
                "ctl: line 1: chmod: bad mode '\\'x\\u{1}' (want octal up to 07777)",
            ),
        ];
        for &(dir, text, want) in cases {
            let err = if dir { dir_err(text) } else { file_err(text) };
            assert_eq!(err.to_string(), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn malformed_lines() {
        let file_cases: &[(&[u8], usize)] = &[
            (b"frob", 1),
            (b"chmod 644\n\nfrob", 3),
            (b"chmod", 1),
            (b"chmod 1 2", 1),
            (b"chmod 8", 1),
            (b"chmod 10000", 1),
            (b"chmod -1", 1),
            (b"chmod +7", 1),
            (b"chmod 0o7", 1),
            (b"chmod 99999999999999999999999", 1),
            (b"chown 1", 1),
            (b"chown 1 2 3", 1),
            (b"chown x 1", 1),
            (b"chown 1 -2", 1),
            (b"chown 4294967296 1", 1),
            (b"chown +1 1", 1),
            (b"utimes", 1),
            (b"utimes now", 1),
            (b"utimes now now now", 1),
            (b"utimes 1", 1),
            (b"utimes 1 2 3", 1),
            (b"utimes 1 2 3 4 5", 1),
            (b"utimes 1 1000000000 now", 1),
            (b"utimes now 1 -1", 1),
            (b"utimes x 1 now", 1),
            (b"utimes 9223372036854775808 0 now", 1),
            (b"utimes -9223372036854775809 0 now", 1),
            (b"utimes - 0 now", 1),
            (b"utimes NOW now", 1),
            (b"truncate", 1),
            (b"truncate -1", 1),
            (b"truncate 18446744073709551616", 1),
            (b"truncate 1 2", 1),
            (b"truncate 1k", 1),
            (b"chmod 644\ntruncate %", 2),
            (b"chmod 644\nchmod 6%4", 2),
            (b"chmod 644\n\xc3\x28", 2),
            (b"symlink a b", 1),
            (b"link a b", 1),
            (b"chmod 644\r\nchmod 7777 \r\n  chmod  17777", 3),
        ];
        for (text, line) in file_cases {
            let e = file_err(text);
            assert_eq!(e.line, *line, "{:?}: {e}", String::from_utf8_lossy(text));
        }

        let dir_cases: &[(&[u8], usize)] = &[
            (b"frob a b", 1),
            (b"symlink a", 1),
            (b"symlink a b c", 1),
            (b"symlink %%20 b", 1),
            (b"link a", 1),
            (b"link a b c", 1),
            (b"rename a", 1),
            (b"mknod n b 644 1", 1),
            (b"mknod n b 644 1 2 3", 1),
            (b"mknod n x 644 1 2", 1),
            (b"mknod n bc 644 1 2", 1),
            (b"mknod n b 10000 1 2", 1),
            (b"mknod n b 9 1 2", 1),
            (b"mknod n b 644 -1 2", 1),
            (b"mknod n b 644 1 4294967296", 1),
            (b"chmod 99", 1),
            (b"link a b\nrename a b\nlink a\n", 3),
            (b"chmod 1\n\xff", 2),
        ];
        for (text, line) in dir_cases {
            let e = dir_err(text);
            assert_eq!(e.line, *line, "{:?}: {e}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn empty_names() {
        // Every token decodes to at least one byte, so the parser never
        // meets an empty name; the check guards the names all the same.
        let empty = Token {
            raw: "",
            bytes: Vec::new(),
        };
        assert_eq!(
            name_arg("link", "new name", &empty),
            Err("link: empty new name".to_string())
        );
        assert_eq!(
            name_arg("symlink", "target", &empty),
            Err("symlink: empty target".to_string())
        );
        let nul = Token {
            raw: "%00",
            bytes: vec![0],
        };
        assert_eq!(name_arg("mknod", "name", &nul), Ok(vec![0]));
    }
}
