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

#[test]
fn stat_lines_read_back() {
    let st = StatFields {
        dev: 2049,
        ino: 131_074,
        mode: 0o120777,
        nlink: 3,
        uid: 1000,
        gid: 100,
        rdev: libc::makedev(4, 64),
        size: 5,
        blksize: 4096,
        blocks: 8,
        atime: (1_700_000_000, 1),
        mtime: (-5, 999_999_999),
        ctime: (i64::MIN, 0),
    };
    for target in [None, Some(&b"../a b%c\n"[..])] {
        let line = stat_line(&st, b"na me\xff", target);
        let back = parse_stat_line(line.as_bytes()).unwrap();
        assert_eq!(back.fields, st);
        assert_eq!(back.name, b"na me\xff");
        assert_eq!(back.symlink.as_deref(), target);
    }
    // Unknown keys are skipped; the newline is optional.
    let line = stat_line(&st, b"n", None);
    let extended = format!("{} future 7", line.trim_end());
    assert_eq!(parse_stat_line(extended.as_bytes()).unwrap().fields, st);
    // Refused: a missing field, a repeated one, bad numbers, two lines.
    let refused = [
        line.replace("nlink 3 ", ""),
        line.replace("uid 1000", "uid 1000 uid 1000"),
        line.replace("mode 0120777", "mode 0129"),
        line.replace("uid 1000", "uid 4294967296"),
        line.replace("atimensec 1", "atimensec 1000000000"),
        line.replace("mtime -5", "mtime -"),
        line.replace("name n", "name %zz"),
        line.replace("name n", "name"),
        format!("{line}{line}"),
        String::new(),
    ];
    for text in refused {
        assert!(parse_stat_line(text.as_bytes()).is_err(), "{text:?}");
    }
    assert!(parse_stat_line(b"dev \xff").is_err());
}

#[test]
fn commands_written_parse_back() {
    let files = [
        FileCommand::Chmod(0o4755),
        FileCommand::Chown {
            uid: Some(7),
            gid: None,
        },
        FileCommand::Utimes {
            atime: Time::Set {
                sec: -3,
                nsec: 999_999_999,
            },
            mtime: Time::Omit,
        },
        FileCommand::Utimes {
            atime: Time::Now,
            mtime: Time::Set { sec: 0, nsec: 0 },
        },
        FileCommand::Truncate(u64::MAX),
    ];
    let text: String = files.iter().map(|c| format!("{c}\n")).collect();
    assert_eq!(parse_file_commands(text.as_bytes()).unwrap(), files);
    let mut dirs: Vec<DirCommand> = files.iter().copied().map(DirCommand::File).collect();
    dirs.extend([
        DirCommand::Symlink {
            target: b"../a b%\n".to_vec(),
            name: b"l\xff".to_vec(),
        },
        DirCommand::Link {
            old: b"/x/y".to_vec(),
            new: b"z".to_vec(),
        },
        DirCommand::Rename {
            old: b"a".to_vec(),
            new: b"/d/b c".to_vec(),
        },
        DirCommand::Mknod {
            name: b"n".to_vec(),
            kind: NodeKind::Char,
            mode: 0o620,
            major: 4,
            minor: 64,
        },
        DirCommand::Mknod {
            name: b"p".to_vec(),
            kind: NodeKind::Fifo,
            mode: 0,
            major: 0,
            minor: 0,
        },
    ]);
    let text: String = dirs.iter().map(|c| format!("{c}\n")).collect();
    assert_eq!(parse_dir_commands(text.as_bytes()).unwrap(), dirs);
    assert_eq!(
        dirs[7].to_string(),
        "rename a /d/b%20c",
        "names are percent-encoded"
    );
}
