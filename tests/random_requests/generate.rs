//! One random request: a well-framed message with random fids, names,
//! flags, modes, offsets and sizes, and what it may get.

use super::*;

/// One random request of the session's dialect on the session's `fids`
/// (mostly), framed with `tag`.
pub(super) fn random_request(
    rng: &mut Rng,
    fids: &Fids,
    dialect: &str,
    tag: u16,
    out: &mut Vec<u8>,
) -> Sent {
    let long = vec![b'z'; 300];
    let name = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(100) {
            0..=2 => long.clone(),
            3..=22 => format!("n{}", rng.below(40)).into_bytes(),
            _ => rng.pick(NAMES).to_vec(),
        }
    };
    let (n1, n2) = (name(rng), name(rng));
    let names: Vec<Vec<u8>> = (0..rng.pick(&[0, 1, 1, 2, 3, 16]))
        .map(|_| name(rng))
        .collect();
    let walk: Vec<Str<'_>> = names.iter().map(|n| Str(n)).collect();
    let open_flags = [
        0,
        1,
        2,
        0o1000,
        0o2000,
        0o200,
        0o4000,
        0o200000,
        2 | 0o1000,
        0o100,
    ];
    let modes = [
        0o644, 0o755, 0o7777, 0, 0o40755, 0o10644, 0o20666, 0o60666, 0o140755,
    ];
    let offsets = [0, 1, 4096, 1 << 20, 1 << 40, u64::MAX, i64::MAX as u64];
    let counts = [0, 1, 100, 4096, 65536, u32::MAX];
    let targets: [&[u8]; 5] = [b"a", b"../outside/secret", b"/outside", b"d/e", b""];
    let target = rng.pick(&targets);
    let xattrs: [&[u8]; 6] = [
        b"user.x",
        b"security.capability",
        b"",
        b"trusted.t",
        b"system.posix_acl_access",
        b"user.virtfs.mode",
    ];
    let xattr = rng.pick(&xattrs);
    let unix = dialect == "9P2000.u";
    let ext_strings: [&[u8]; 5] = [b"a", b"c 1 3", b"b 1 5", b"3", b"junk"];
    let extension = rng.pick(&ext_strings);
    let ctl = CTL_COMMANDS[rng.below(CTL_COMMANDS.len() as u64) as usize];
    let payload: Vec<u8> = if rng.chance(40) {
        format!("{ctl}\n").into_bytes()
    } else {
        (0..rng.below(9000)).map(|_| rng.next() as u8).collect()
    };
    let linux = [
        12u8, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76, 8,
    ];
    let plan9 = [112u8, 114, 124, 126];
    let common = [104u8, 108, 110, 110, 110, 116, 118, 120, 122, 102];
    let ty = match rng.below(10) {
        0..=4 => rng.pick(&common),
        _ if dialect == "9P2000.L" => rng.pick(&linux),
        _ => rng.pick(&plan9),
    };
    let fid = if matches!(ty, 116 | 118) {
        fids.opened(rng)
    } else if matches!(ty, 102 | 104) {
        fids.fresh(rng)
    } else {
        fids.any(rng)
    };
    let (other, newfid) = (fids.any(rng), fids.fresh(rng));
    let stat = Stat {
        ty: rng.u32_from(&[u16::MAX as u32, 0]) as u16,
        dev: rng.u32_from(&[u32::MAX, 0]),
        qid: Qid {
            ty: u8::MAX,
            version: u32::MAX,
            path: u64::MAX,
        },
        mode: rng.u32_from(&[u32::MAX, 0o644, 0x8000_01ff, 0o7777]),
        atime: rng.u32_from(&[u32::MAX, 0]),
        mtime: rng.u32_from(&[u32::MAX, 0]),
        length: rng.u64_from(&[u64::MAX, 0, 10]),
        name: Str(if rng.chance(70) { b"" } else { &n2 }),
        uid: Str(rng.pick(&[&b""[..], b"root", b"nobody"])),
        gid: Str(b""),
        muid: Str(b""),
        ext: unix.then_some(StatExtension {
            extension: Str(b""),
            n_uid: rng.u32_from(&[u32::MAX, 0, 65534]),
            n_gid: u32::MAX,
            n_muid: u32::MAX,
        }),
    };
    let msg = match ty {
        12 => Tmessage::Lopen(Tlopen {
            fid,
            flags: rng.u32_from(&open_flags),
        }),
        14 => Tmessage::Lcreate(Tlcreate {
            fid,
            name: Str(&n1),
            flags: rng.u32_from(&open_flags),
            mode: rng.u32_from(&modes),
            gid: rng.u32_from(&[0, 65534]),
        }),
        16 => Tmessage::Symlink(Tsymlink {
            fid,
            name: Str(&n1),
            symtgt: Str(target),
            gid: 0,
        }),
        18 => Tmessage::Mknod(Tmknod {
            dfid: fid,
            name: Str(&n1),
            mode: rng.u32_from(&modes),
            // 1:3 and 1:5 are /dev/null and /dev/zero.
            major: 1,
            minor: rng.pick(&[3, 5]),
            gid: 0,
        }),
        20 => Tmessage::Rename(Trename {
            fid,
            dfid: other,
            name: Str(&n1),
        }),
        22 => Tmessage::Readlink(Treadlink { fid }),
        24 => Tmessage::Getattr(Tgetattr {
            fid,
            request_mask: rng.u64_from(&[0x3fff, 0, u64::MAX]),
        }),
        26 => Tmessage::Setattr(Tsetattr {
            fid,
            valid: rng.u32_from(&[1, 2, 4, 8, 0x10, 0x20, 0x80, 0x100, 0x1ff]),
            mode: rng.u32_from(&modes),
            uid: rng.u32_from(&[0, 65534, u32::MAX]),
            gid: rng.u32_from(&[0, 65534]),
            size: rng.u64_from(&[0, 10, 1 << 30, u64::MAX]),
            atime_sec: rng.u64_from(&[0, u64::MAX]),
            atime_nsec: rng.u64_from(&[0, 999_999_999, u64::MAX]),
            mtime_sec: 0,
            mtime_nsec: rng.u64_from(&[0, 1 << 40]),
        }),
        30 => Tmessage::Xattrwalk(Txattrwalk {
            fid,
            newfid,
            name: Str(xattr),
        }),
        32 => Tmessage::Xattrcreate(Txattrcreate {
            fid,
            name: Str(xattr),
            attr_size: rng.u64_from(&[0, 10, 65536, 65537, 1 << 40, u64::MAX]),
            flags: rng.u32_from(&[0, 1, 2, 3]),
        }),
        40 => Tmessage::Readdir(Treaddir {
            fid,
            offset: rng.u64_from(&offsets),
            count: rng.u32_from(&counts),
        }),
        50 => Tmessage::Fsync(Tfsync {
            fid,
            datasync: rng.u32_from(&[0, 1]),
        }),
        52 => Tmessage::Lock(Tlock {
            fid,
            lock_type: rng.pick(&[0, 1, 2, 3, 255]),
            flags: rng.u32_from(&[0, 1, 2]),
            start: rng.u64_from(&offsets),
            length: rng.u64_from(&[0, 1, u64::MAX]),
            proc_id: rng.u32_from(&[1, 2]),
            client_id: Str(b"c"),
        }),
        54 => Tmessage::Getlock(Tgetlock {
            fid,
            lock_type: rng.pick(&[0, 1, 2, 3]),
            start: rng.u64_from(&offsets),
            length: rng.u64_from(&[0, 1, u64::MAX]),
            proc_id: rng.u32_from(&[1, 2]),
            client_id: Str(b"c"),
        }),
        70 => Tmessage::Link(Tlink {
            dfid: fid,
            fid: other,
            name: Str(&n1),
        }),
        72 => Tmessage::Mkdir(Tmkdir {
            dfid: fid,
            name: Str(&n1),
            mode: rng.u32_from(&modes),
            gid: 0,
        }),
        74 => Tmessage::Renameat(Trenameat {
            olddirfid: fid,
            oldname: Str(&n1),
            newdirfid: other,
            newname: Str(&n2),
        }),
        76 => Tmessage::Unlinkat(Tunlinkat {
            dirfid: fid,
            name: Str(&n1),
            flags: rng.u32_from(&[0, 0x200]),
        }),
        8 => Tmessage::Statfs(Tstatfs { fid }),
        102 => Tmessage::Auth(Tauth {
            afid: fid,
            uname: Str(b"root"),
            aname: Str(b""),
            n_uname: (dialect != "9P2000").then_some(0),
        }),
        104 => Tmessage::Attach(Tattach {
            fid,
            afid: rng.u32_from(&[NOFID, 0]),
            uname: Str(rng.pick(&[&b"root"[..], b"nobody", b"u"])),
            aname: Str(rng.pick(&[&b""[..], b"x", b"/", b".."])),
            n_uname: (dialect != "9P2000").then(|| rng.u32_from(&[0, 65534, u32::MAX])),
        }),
        108 => Tmessage::Flush(Tflush {
            oldtag: rng.below(5) as u16,
        }),
        110 => Tmessage::Walk(Twalk {
            fid,
            newfid,
            names: WalkList::from_slice(&walk).unwrap(),
        }),
        112 => Tmessage::Open(Topen {
            fid,
            mode: rng.pick(&[0, 1, 2, 3, 0x10, 0x40, 0x11, 0xff]),
        }),
        114 => Tmessage::Create(Tcreate {
            fid,
            name: Str(&n1),
            perm: rng.u32_from(&[
                0o644,
                0x8000_01ed,
                0x0200_01ff,
                0x0100_01ff,
                0x0080_01b6,
                0x0020_01a4,
                0x0010_01a4,
            ]),
            mode: rng.pick(&[0, 1, 2, 0x10, 0x40]),
            extension: unix.then_some(Str(extension)),
        }),
        116 => Tmessage::Read(Tread {
            fid,
            offset: rng.u64_from(&offsets),
            count: rng.u32_from(&counts),
        }),
        118 => Tmessage::Write(Twrite {
            fid,
            offset: rng.u64_from(&[0, 1, 4096, 1 << 30, u64::MAX - 10]),
            // Now and then a count that is not what follows.
            count: if rng.chance(10) {
                rng.next() as u32 % 20_000
            } else {
                payload.len() as u32
            },
        }),
        120 => Tmessage::Clunk(Tclunk { fid }),
        122 => Tmessage::Remove(Tremove { fid }),
        124 => Tmessage::Stat(Tstat { fid }),
        126 => Tmessage::Wstat(Twstat {
            fid,
            stat: StatBlob(stat),
        }),
        _ => unreachable!(),
    };
    let start = out.len();
    msg.encode(tag, out);
    if ty == Twrite::TYPE {
        out.extend_from_slice(&payload);
    }
    patch_size(out, start);
    Sent { ty, fid, newfid }
}
