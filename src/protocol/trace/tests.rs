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
        WalkList::from_slice(&[Str(b"a\nb\\c\x7f\x01"), Str(b"\xffok\xc3\xa9\xc2\x85")]).unwrap();
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

/// Every 9P2000.L message with non-trivial field values: pins the lines
/// generated from the declarations in `messages.rs`.
#[test]
fn dotl_every_message() {
    let q = qid(QTDIR | QTSYMLINK, 7, 0xfedc_ba98_7654_3210);
    let requests = [
        Tmessage::Statfs(Tstatfs { fid: 4_000_000_000 }),
        Tmessage::Lopen(Tlopen {
            fid: 11,
            flags: 0o101_102,
        }),
        Tmessage::Lcreate(Tlcreate {
            fid: 12,
            name: Str(b"new\nfile"),
            flags: 0x8241,
            mode: 0o100_640,
            gid: 1000,
        }),
        Tmessage::Symlink(Tsymlink {
            fid: 13,
            name: Str(b"link"),
            symtgt: Str(b"../a\\b"),
            gid: 100,
        }),
        Tmessage::Mknod(Tmknod {
            dfid: 14,
            name: Str(b"null"),
            mode: 0o20_666,
            major: 1,
            minor: 3,
            gid: 5,
        }),
        Tmessage::Rename(Trename {
            fid: 15,
            dfid: 16,
            name: Str(b"r\xff"),
        }),
        Tmessage::Readlink(Treadlink { fid: 17 }),
        Tmessage::Getattr(Tgetattr {
            fid: 18,
            request_mask: 0x1_0000_3fff,
        }),
        Tmessage::Setattr(Tsetattr {
            fid: 19,
            valid: 0x1ff,
            mode: 0o4755,
            uid: 1001,
            gid: 1002,
            size: 1 << 40,
            atime_sec: 1_700_000_123,
            atime_nsec: 456_789,
            mtime_sec: -2i64 as u64,
            mtime_nsec: 999_999_999,
        }),
        Tmessage::Xattrwalk(Txattrwalk {
            fid: 20,
            newfid: 21,
            name: Str(b"user.x"),
        }),
        Tmessage::Xattrcreate(Txattrcreate {
            fid: 22,
            name: Str(b"security.t"),
            attr_size: 5_000_000_000,
            flags: 2,
        }),
        Tmessage::Readdir(Treaddir {
            fid: 23,
            offset: u64::MAX,
            count: 65_512,
        }),
        Tmessage::Fsync(Tfsync {
            fid: 24,
            datasync: 1,
        }),
        Tmessage::Lock(Tlock {
            fid: 25,
            lock_type: 1,
            flags: 0x3,
            start: 4096,
            length: u64::MAX,
            proc_id: 4242,
            client_id: Str(b"host\t1"),
        }),
        Tmessage::Getlock(Tgetlock {
            fid: 26,
            lock_type: 2,
            start: 10,
            length: 20,
            proc_id: 77,
            client_id: Str(b"c"),
        }),
        Tmessage::Link(Tlink {
            dfid: 27,
            fid: 28,
            name: Str(b"hard"),
        }),
        Tmessage::Mkdir(Tmkdir {
            dfid: 29,
            name: Str(b"sub dir"),
            mode: 0o1777,
            gid: 0,
        }),
        Tmessage::Renameat(Trenameat {
            olddirfid: 30,
            oldname: Str(b"old"),
            newdirfid: 31,
            newname: Str(b"new"),
        }),
        Tmessage::Unlinkat(Tunlinkat {
            dirfid: 32,
            name: Str(b"gone"),
            flags: 0x200,
        }),
    ];
    let replies = [
        Rmessage::Lerror(Rlerror { ecode: 95 }),
        Rmessage::Statfs(Rstatfs {
            fs_type: 0x0102_1994,
            bsize: 4096,
            blocks: 1 << 33,
            bfree: 3,
            bavail: 4,
            files: 5,
            ffree: 6,
            fsid: 0xdead_beef_cafe,
            namelen: 255,
        }),
        Rmessage::Lopen(Rlopen {
            qid: q,
            iounit: 8168,
        }),
        Rmessage::Lcreate(Rlcreate {
            qid: qid(0, 1, 2),
            iounit: 4096,
        }),
        Rmessage::Symlink(Rsymlink {
            qid: qid(QTSYMLINK, 0, 3),
        }),
        Rmessage::Mknod(Rmknod {
            qid: qid(QTTMP, 4, 5),
        }),
        Rmessage::Rename(Rrename {}),
        Rmessage::Readlink(Rreadlink {
            target: Str(b"/t\x01"),
        }),
        Rmessage::Getattr(Rgetattr {
            valid: 0x3fff,
            qid: q,
            mode: 0o40_755,
            uid: 1000,
            gid: 100,
            nlink: 3,
            rdev: 0x0801,
            size: 1 << 35,
            blksize: 4096,
            blocks: 64,
            atime_sec: 1,
            atime_nsec: 2,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 123_456_789,
            ctime_sec: -1i64 as u64,
            ctime_nsec: 0,
            btime_sec: 5,
            btime_nsec: 50,
            gen: 9,
            data_version: 10,
        }),
        Rmessage::Setattr(Rsetattr {}),
        Rmessage::Xattrwalk(Rxattrwalk {
            size: 6_000_000_000,
        }),
        Rmessage::Xattrcreate(Rxattrcreate {}),
        Rmessage::Readdir(Rreaddir {
            data: Data(b"entry\n"),
        }),
        Rmessage::Fsync(Rfsync {}),
        Rmessage::Lock(Rlock { status: 3 }),
        Rmessage::Getlock(Rgetlock {
            lock_type: 2,
            start: 100,
            length: 0,
            proc_id: 99,
            client_id: Str(b"other"),
        }),
        Rmessage::Link(Rlink {}),
        Rmessage::Mkdir(Rmkdir {
            qid: qid(QTDIR, 0, 0x77),
        }),
        Rmessage::Renameat(Rrenameat {}),
        Rmessage::Unlinkat(Runlinkat {}),
    ];
    let lines: Vec<String> = requests
        .into_iter()
        .map(|t| req(6, 300, t, None))
        .chain(replies.into_iter().map(|r| rep(6, 300, r, None)))
        .collect();
    let expected = [
        "<-6- Tstatfs tag 300 fid 4000000000",
        "<-6- Tlopen tag 300 fid 11 flags 0x8242",
        "<-6- Tlcreate tag 300 fid 12 name new\\nfile flags 0x8241 mode 0100640 gid \
         1000",
        "<-6- Tsymlink tag 300 fid 13 name link symtgt ../a\\\\b gid 100",
        "<-6- Tmknod tag 300 dfid 14 name null mode 020666 major 1 minor 3 gid 5",
        "<-6- Trename tag 300 fid 15 dfid 16 name r\u{fffd}",
        "<-6- Treadlink tag 300 fid 17",
        "<-6- Tgetattr tag 300 fid 18 request_mask 0x100003fff",
        "<-6- Tsetattr tag 300 fid 19 valid 0x1ff mode 04755 uid 1001 gid 1002 size \
         1099511627776 atime 1700000123.000456789 mtime -2.999999999",
        "<-6- Txattrwalk tag 300 fid 20 newfid 21 name user.x",
        "<-6- Txattrcreate tag 300 fid 22 name security.t attr_size 5000000000 flags \
         0x2",
        "<-6- Treaddir tag 300 fid 23 offset 18446744073709551615 count 65512",
        "<-6- Tfsync tag 300 fid 24 datasync 1",
        "<-6- Tlock tag 300 fid 25 lock_type 1 flags 0x3 start 4096 length \
         18446744073709551615 proc_id 4242 client_id host\\t1",
        "<-6- Tgetlock tag 300 fid 26 lock_type 2 start 10 length 20 proc_id 77 \
         client_id c",
        "<-6- Tlink tag 300 dfid 27 fid 28 name hard",
        "<-6- Tmkdir tag 300 dfid 29 name sub dir mode 01777 gid 0",
        "<-6- Trenameat tag 300 olddirfid 30 oldname old newdirfid 31 newname new",
        "<-6- Tunlinkat tag 300 dirfid 32 name gone flags 0x200",
        "-6-> Rlerror tag 300 ecode 95",
        "-6-> Rstatfs tag 300 fs_type 0x1021994 bsize 4096 blocks 8589934592 bfree 3 \
         bavail 4 files 5 ffree 6 fsid 0xdeadbeefcafe namelen 255",
        "-6-> Rlopen tag 300 qid (fedcba9876543210 7 dL) iounit 8168",
        "-6-> Rlcreate tag 300 qid (0000000000000002 1 ) iounit 4096",
        "-6-> Rsymlink tag 300 qid (0000000000000003 0 L)",
        "-6-> Rmknod tag 300 qid (0000000000000005 4 t)",
        "-6-> Rrename tag 300",
        "-6-> Rreadlink tag 300 target /t\\x01",
        "-6-> Rgetattr tag 300 valid 0x3fff qid (fedcba9876543210 7 dL) mode 040755 \
         uid 1000 gid 100 nlink 3 rdev 2049 size 34359738368 blksize 4096 blocks 64 \
         atime 1.000000002 mtime 1700000000.123456789 ctime -1.000000000 btime \
         5.000000050 gen 9 data_version 10",
        "-6-> Rsetattr tag 300",
        "-6-> Rxattrwalk tag 300 size 6000000000",
        "-6-> Rxattrcreate tag 300",
        "-6-> Rreaddir tag 300 count 6 'entry\\n'",
        "-6-> Rfsync tag 300",
        "-6-> Rlock tag 300 status 3",
        "-6-> Rgetlock tag 300 lock_type 2 start 100 length 0 proc_id 99 client_id \
         other",
        "-6-> Rlink tag 300",
        "-6-> Rmkdir tag 300 qid (0000000000000077 0 d)",
        "-6-> Rrenameat tag 300",
        "-6-> Runlinkat tag 300",
    ];
    assert_eq!(lines, expected);
}
