//! The pure parsers and formatters of the `,ctl` namespace
//! (src/server/ctl_syntax.rs). The first byte picks what the rest is fed to:
//!
//! 0. `parse_control_name`, against a model of its documented grammar;
//! 1. `parse_file_commands`: what parses is formatted back as command text
//!    (names percent-encoded) and parses to the same commands; the same text
//!    parses as directory commands to the same file commands;
//! 2. `parse_dir_commands`, likewise;
//! 3. `percent_encode` then `percent_decode` gives the bytes back, and the
//!    encoding is printable ASCII without spaces; `percent_decode` of the
//!    input (as text), when it succeeds, survives the same round trip;
//! 4. `stat_line` of input-derived fields, name and symlink target: one
//!    line, and reading its fields back gives the values it was made from.
//!
//! Never a panic, in any of them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vhost_user_9p::server::ctl_syntax::{
    parse_control_name, parse_dir_commands, parse_file_commands, percent_decode, percent_encode,
    stat_line, ControlName, DirCommand, FileCommand, NodeKind, StatFields, Time,
};

/// The documented grammar: `,` then one or more comma-separated words,
/// each `ctl` or `nofollow`.
fn control_name_model(name: &[u8]) -> Option<ControlName> {
    let words = name.strip_prefix(b",")?;
    let mut c = ControlName::default();
    for w in words.split(|&b| b == b',') {
        match w {
            b"ctl" => c.ctl = true,
            b"nofollow" => c.nofollow = true,
            _ => return None,
        }
    }
    Some(c)
}

fn enc(bytes: &[u8]) -> String {
    let mut s = String::new();
    percent_encode(bytes, &mut s);
    s
}

fn time(t: Time) -> String {
    match t {
        Time::Now => "now".into(),
        Time::Omit => "omit".into(),
        Time::Set { sec, nsec } => format!("{sec} {nsec}"),
    }
}

fn id(id: Option<u32>) -> String {
    id.map_or("-1".into(), |n| n.to_string())
}

fn format_file_command(c: &FileCommand) -> String {
    match *c {
        FileCommand::Chmod(mode) => format!("chmod 0{mode:o}"),
        FileCommand::Chown { uid, gid } => format!("chown {} {}", id(uid), id(gid)),
        FileCommand::Utimes { atime, mtime } => format!("utimes {} {}", time(atime), time(mtime)),
        FileCommand::Truncate(size) => format!("truncate {size}"),
    }
}

fn format_dir_command(c: &DirCommand) -> String {
    match c {
        DirCommand::File(f) => format_file_command(f),
        DirCommand::Symlink { target, name } => format!("symlink {} {}", enc(target), enc(name)),
        DirCommand::Link { old, new } => format!("link {} {}", enc(old), enc(new)),
        DirCommand::Rename { old, new } => format!("rename {} {}", enc(old), enc(new)),
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
            format!("mknod {} {kind} {mode:o} {major} {minor}", enc(name))
        }
    }
}

/// Joins formatted commands with a separator the input picks (empty and
/// blank lines are ignored by the parser).
fn join(lines: impl Iterator<Item = String>, text: &[u8]) -> String {
    let sep = match text.len() % 3 {
        0 => "\n",
        1 => "\n\n",
        _ => " \t\n",
    };
    lines.collect::<Vec<_>>().join(sep)
}

fn check_error_line<T>(
    result: &Result<T, vhost_user_9p::server::ctl_syntax::CtlError>,
    text: &[u8],
) {
    if let Err(e) = result {
        let lines = text.split(|&b| b == b'\n').count();
        assert!(
            (1..=lines).contains(&e.line),
            "error line {} of {lines}: {e}",
            e.line
        );
        let _ = e.to_string();
    }
}

/// Reads little-endian integers off the front of a byte string, zeros once
/// it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn time(&mut self) -> (i64, u32) {
        (self.u64() as i64, self.u32())
    }
}

/// Reads a stat line back: the fields, the name and the symlink target.
fn parse_stat_line(line: &str) -> (StatFields, Vec<u8>, Option<Vec<u8>>) {
    let body = line.strip_suffix('\n').expect("ends with a newline");
    assert!(!body.contains('\n'), "one line: {line:?}");
    let tokens: Vec<&str> = body.split(' ').collect();
    let keys = [
        "dev",
        "inode",
        "mode",
        "nlink",
        "uid",
        "gid",
        "rdev",
        "size",
        "blksize",
        "blocks",
        "atime",
        "mtime",
        "ctime",
        "atimensec",
        "mtimensec",
        "ctimensec",
        "name",
    ];
    assert!(tokens.len() == 34 || tokens.len() == 36, "{line:?}");
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(tokens[2 * i], *key, "{line:?}");
    }
    let v = |key: &str| tokens[2 * keys.iter().position(|k| *k == key).unwrap() + 1];
    let u64_of = |key: &str| v(key).parse::<u64>().unwrap();
    let u32_of = |key: &str| v(key).parse::<u32>().unwrap();
    let mode = v("mode");
    assert!(mode.starts_with('0'), "mode {mode}");
    let st = StatFields {
        dev: u64_of("dev"),
        ino: u64_of("inode"),
        mode: u32::from_str_radix(mode, 8).unwrap(),
        nlink: u64_of("nlink"),
        uid: u32_of("uid"),
        gid: u32_of("gid"),
        rdev: u64_of("rdev"),
        size: u64_of("size"),
        blksize: u64_of("blksize"),
        blocks: u64_of("blocks"),
        atime: (v("atime").parse().unwrap(), u32_of("atimensec")),
        mtime: (v("mtime").parse().unwrap(), u32_of("mtimensec")),
        ctime: (v("ctime").parse().unwrap(), u32_of("ctimensec")),
    };
    let name = percent_decode(tokens[33]).unwrap();
    let target = (tokens.len() == 36).then(|| {
        assert_eq!(tokens[34], "symlink", "{line:?}");
        percent_decode(tokens[35]).unwrap()
    });
    (st, name, target)
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, text)) = input.split_first() else {
        return;
    };
    match mode % 5 {
        0 => assert_eq!(parse_control_name(text), control_name_model(text)),
        1 => {
            let parsed = parse_file_commands(text);
            check_error_line(&parsed, text);
            if let Ok(commands) = parsed {
                let again = join(commands.iter().map(format_file_command), text);
                assert_eq!(
                    parse_file_commands(again.as_bytes()).as_ref(),
                    Ok(&commands),
                    "{again:?}"
                );
                let as_dir: Vec<DirCommand> =
                    commands.iter().copied().map(DirCommand::File).collect();
                assert_eq!(parse_dir_commands(text), Ok(as_dir));
            }
        }
        2 => {
            let parsed = parse_dir_commands(text);
            check_error_line(&parsed, text);
            if let Ok(commands) = parsed {
                let again = join(commands.iter().map(format_dir_command), text);
                assert_eq!(
                    parse_dir_commands(again.as_bytes()).as_ref(),
                    Ok(&commands),
                    "{again:?}"
                );
            }
        }
        3 => {
            let encoded = enc(text);
            assert!(
                encoded.bytes().all(|b| (b'!'..=b'~').contains(&b)),
                "{encoded:?}"
            );
            assert_eq!(percent_decode(&encoded).as_deref(), Ok(text));
            let lossy = String::from_utf8_lossy(text);
            if let Ok(decoded) = percent_decode(&lossy) {
                assert_eq!(percent_decode(&enc(&decoded)), Ok(decoded));
            } else if let Err(e) = percent_decode(&lossy) {
                assert!(e.offset < lossy.len());
                assert_eq!(lossy.as_bytes()[e.offset], b'%');
            }
        }
        _ => {
            let mut b = Bytes(text);
            let st = StatFields {
                dev: b.u64(),
                ino: b.u64(),
                mode: b.u32(),
                nlink: b.u64(),
                uid: b.u32(),
                gid: b.u32(),
                rdev: b.u64(),
                size: b.u64(),
                blksize: b.u64(),
                blocks: b.u64(),
                atime: b.time(),
                mtime: b.time(),
                ctime: b.time(),
            };
            let [flags, name_len] = b.take::<2>();
            let rest = b.0;
            let (name, target) = rest.split_at(usize::from(name_len).min(rest.len()));
            let target = (flags & 1 == 1).then_some(target);
            let line = stat_line(&st, name, target);
            let (st2, name2, target2) = parse_stat_line(&line);
            assert_eq!(st2, st, "{line:?}");
            assert_eq!(name2, name, "{line:?}");
            assert_eq!(target2.as_deref(), target, "{line:?}");
        }
    }
});
