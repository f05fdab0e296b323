//! Malformed and odd messages through the socket transport's per-frame
//! step (`serve_frame`): every request truncated at every byte and with
//! bytes after it, reply types sent as requests, NOFID, newfid == fid, tag
//! reuse, Tversion over open fids. Each frame gets exactly one well-formed
//! reply with its tag (or, shorter than a header, none), and the session
//! goes on serving.

use vhost_user_9p::protocol::*;
use vhost_user_9p::server::Config;

use crate::common::inproc::{frame_of, InProc};

/// A session of a server (with control files) on `dir`, started.
fn frames(dir: &std::path::Path) -> InProc {
    let mut config = Config::new(dir);
    config.ctl = true;
    let f = InProc::serving(&config);
    start(&f);
    f
}

fn start(f: &InProc) {
    let version = Tmessage::Version(Tversion {
        msize: 65536,
        version: "9P2000.L".into(),
    });
    assert!(ok(f, &encode(&version, NOTAG)));
    let attach = Tmessage::Attach(Tattach {
        fid: 1,
        afid: NOFID,
        uname: "".into(),
        aname: "".into(),
        n_uname: Some(0),
    });
    assert!(ok(f, &encode(&attach, 1)));
}

/// Serves `frame` and checks the reply; whether it was not an error.
#[track_caller]
fn serve(f: &InProc, frame: &[u8]) -> bool {
    let (reply, data) = f.frame(frame);
    if frame.len() < HEADER_SIZE {
        assert!(reply.is_empty(), "a reply to {frame:?}");
        return false;
    }
    let sent = Header::parse(frame).unwrap();
    let header = Header::parse(&reply).expect("a reply with a header");
    assert_eq!(header.size as usize, reply.len() + data.len(), "size field");
    assert_eq!(header.tag, sent.tag, "tag");
    assert!(header.size <= f.session.msize(), "larger than msize");
    assert_eq!(header.msg_type % 2, 1, "an R-message");
    // Rread's data and Rreaddir's entries follow in `data` or in
    // the reply; every other reply decodes whole.
    let data_reply = header.msg_type == Rread::TYPE || header.msg_type == Rreaddir::TYPE;
    if let Err(e) = decode_rmessage(&reply) {
        assert!(data_reply, "undecodable reply {e:?}: {reply:?}");
    }
    header.msg_type != Rlerror::TYPE && header.msg_type != Rerror::TYPE
}

#[track_caller]
fn ok(f: &InProc, frame: &[u8]) -> bool {
    serve(f, frame)
}

/// The session still serves: a clone of the root and a Tgetattr of it.
#[track_caller]
fn alive(f: &InProc) {
    let walk = Tmessage::Walk(Twalk {
        fid: 1,
        newfid: 900,
        names: WalkList::new(),
    });
    assert!(ok(f, &encode(&walk, 5)));
    assert!(ok(
        f,
        &encode(
            &Tmessage::Getattr(Tgetattr {
                fid: 900,
                request_mask: 0x7ff
            }),
            6
        )
    ));
    assert!(ok(f, &encode(&Tmessage::Clunk(Tclunk { fid: 900 }), 7)));
}

fn encode(msg: &Tmessage<'_>, tag: u16) -> Vec<u8> {
    frame_of(msg, tag, &[])
}

/// One request of each type, on the fids `frames` holds (1: the root).
fn requests() -> Vec<Vec<u8>> {
    let n = || Str::from("x");
    let names = [Str::from("d"), Str::from("f")];
    let msgs: Vec<Tmessage<'_>> = vec![
        Tmessage::Statfs(Tstatfs { fid: 1 }),
        Tmessage::Lopen(Tlopen { fid: 2, flags: 0 }),
        Tmessage::Lcreate(Tlcreate {
            fid: 2,
            name: n(),
            flags: 2,
            mode: 0o644,
            gid: 0,
        }),
        Tmessage::Symlink(Tsymlink {
            fid: 1,
            name: n(),
            symtgt: "f".into(),
            gid: 0,
        }),
        Tmessage::Mknod(Tmknod {
            dfid: 1,
            name: n(),
            mode: libc::S_IFIFO | 0o600,
            major: 0,
            minor: 0,
            gid: 0,
        }),
        Tmessage::Rename(Trename {
            fid: 2,
            dfid: 1,
            name: n(),
        }),
        Tmessage::Readlink(Treadlink { fid: 2 }),
        Tmessage::Getattr(Tgetattr {
            fid: 1,
            request_mask: 0x3fff,
        }),
        Tmessage::Setattr(Tsetattr {
            fid: 2,
            valid: 1,
            mode: 0o600,
            ..Default::default()
        }),
        Tmessage::Xattrwalk(Txattrwalk {
            fid: 1,
            newfid: 3,
            name: "".into(),
        }),
        Tmessage::Xattrcreate(Txattrcreate {
            fid: 2,
            name: "user.x".into(),
            attr_size: 3,
            flags: 0,
        }),
        Tmessage::Readdir(Treaddir {
            fid: 2,
            offset: 0,
            count: 4096,
        }),
        Tmessage::Fsync(Tfsync {
            fid: 1,
            datasync: 0,
        }),
        Tmessage::Lock(Tlock {
            fid: 2,
            lock_type: 1,
            flags: 0,
            start: 0,
            length: 0,
            proc_id: 1,
            client_id: "c".into(),
        }),
        Tmessage::Getlock(Tgetlock {
            fid: 2,
            lock_type: 1,
            start: 0,
            length: 0,
            proc_id: 1,
            client_id: "c".into(),
        }),
        Tmessage::Link(Tlink {
            dfid: 1,
            fid: 2,
            name: n(),
        }),
        Tmessage::Mkdir(Tmkdir {
            dfid: 1,
            name: n(),
            mode: 0o755,
            gid: 0,
        }),
        Tmessage::Renameat(Trenameat {
            olddirfid: 1,
            oldname: "f".into(),
            newdirfid: 1,
            newname: n(),
        }),
        Tmessage::Unlinkat(Tunlinkat {
            dirfid: 1,
            name: n(),
            flags: 0,
        }),
        Tmessage::Auth(Tauth {
            afid: 4,
            uname: "".into(),
            aname: "".into(),
            n_uname: Some(0),
        }),
        Tmessage::Attach(Tattach {
            fid: 5,
            afid: NOFID,
            uname: "".into(),
            aname: "".into(),
            n_uname: Some(0),
        }),
        Tmessage::Flush(Tflush { oldtag: 3 }),
        Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 2,
            names: WalkList::from_slice(&names).unwrap(),
        }),
        Tmessage::Open(Topen { fid: 2, mode: 0 }),
        Tmessage::Create(Tcreate {
            fid: 2,
            name: n(),
            perm: 0o644,
            mode: 2,
            extension: Some("".into()),
        }),
        Tmessage::Read(Tread {
            fid: 2,
            offset: 0,
            count: 100,
        }),
        Tmessage::Write(Twrite {
            fid: 2,
            offset: 0,
            count: 0,
        }),
        Tmessage::Clunk(Tclunk { fid: 2 }),
        Tmessage::Remove(Tremove { fid: 2 }),
        Tmessage::Stat(Tstat { fid: 1 }),
    ];
    msgs.iter().map(|m| encode(m, 9)).collect()
}

fn share() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/f"), "data").unwrap();
    dir
}

#[test]
fn every_request_truncated_or_padded_gets_one_reply() {
    let dir = share();
    let f = frames(dir.path());
    for frame in requests() {
        for len in 0..frame.len() {
            let mut cut = frame[..len].to_vec();
            if len >= 4 {
                cut[..4].copy_from_slice(&(len as u32).to_le_bytes());
            }
            serve(&f, &cut);
        }
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0xa5; 9]);
        let size = padded.len() as u32;
        padded[..4].copy_from_slice(&size.to_le_bytes());
        serve(&f, &padded);
        serve(&f, &frame);
        alive(&f);
    }
}

#[test]
fn reply_types_unknown_types_nofid_and_odd_fids_get_errors() {
    let dir = share();
    let f = frames(dir.path());
    for ty in 0..=255u8 {
        if Tmessage::decode(ty, &[]).is_ok() || (ty % 2 == 0 && (6..=126).contains(&ty)) {
            continue; // a request type (served above, body or not)
        }
        let frame = [7, 0, 0, 0, ty, 1, 0];
        assert!(!serve(&f, &frame), "type {ty} answered without an error");
    }
    let getattr = Tmessage::Getattr(Tgetattr {
        fid: NOFID,
        request_mask: 0x7ff,
    });
    assert!(!ok(&f, &encode(&getattr, 2)));
    // newfid == fid: the walk moves the fid; the root is walked again.
    let walk = |fid, newfid| {
        let names = [Str::from("d")];
        encode(
            &Tmessage::Walk(Twalk {
                fid,
                newfid,
                names: WalkList::from_slice(&names).unwrap(),
            }),
            3,
        )
    };
    walk_clone(&f);
    assert!(ok(&f, &walk(10, 10)));
    assert!(!ok(&f, &walk(10, 10)), "d/d exists?");
    // A walk to an existing newfid (not the fid itself) is refused.
    assert!(!ok(&f, &walk(1, 10)));
    // A tag used twice is answered twice.
    let stat = encode(
        &Tmessage::Getattr(Tgetattr {
            fid: 1,
            request_mask: 0x7ff,
        }),
        4,
    );
    assert!(ok(&f, &stat) && ok(&f, &stat));
    // Tversion drops every fid.
    let version = Tmessage::Version(Tversion {
        msize: 8192,
        version: "9P2000.L".into(),
    });
    assert!(ok(&f, &encode(&version, NOTAG)));
    assert!(!ok(&f, &stat), "fid 1 outlived Tversion");
    start(&f);
    alive(&f);
}

fn walk_clone(f: &InProc) {
    let walk = Tmessage::Walk(Twalk {
        fid: 1,
        newfid: 10,
        names: WalkList::new(),
    });
    assert!(ok(f, &encode(&walk, 3)));
}

/// The limits a client may name: msize below the least and at the most a
/// u32 holds, readdir counts 0 and huge, a walk of 17 names, a flush of
/// its own tag.
#[test]
fn extreme_sizes_and_counts_are_clamped_or_refused() {
    let dir = share();
    let f = frames(dir.path());
    for (asked, least, most) in [
        (4095u32, 4096, 4096),
        (u32::MAX, 4096, 4 << 20),
        (0, 4096, 4096),
    ] {
        let version = Tmessage::Version(Tversion {
            msize: asked,
            version: "9P2000.L".into(),
        });
        let (reply, _) = f.frame(&encode(&version, NOTAG));
        let Ok((_, Rmessage::Version(v))) = decode_rmessage(&reply) else {
            panic!("Tversion msize {asked}: {reply:?}");
        };
        assert!(
            (least..=most).contains(&v.msize),
            "msize {asked} gave {}",
            v.msize
        );
        start(&f);
        alive(&f);
    }
    let names = [Str::from("d")];
    let open_d = Tmessage::Walk(Twalk {
        fid: 1,
        newfid: 20,
        names: WalkList::from_slice(&names).unwrap(),
    });
    assert!(ok(&f, &encode(&open_d, 1)));
    assert!(ok(
        &f,
        &encode(
            &Tmessage::Lopen(Tlopen {
                fid: 20,
                flags: 0o200000
            }),
            1
        )
    ));
    for count in [0, 1, 24, u32::MAX] {
        serve(
            &f,
            &encode(
                &Tmessage::Readdir(Treaddir {
                    fid: 20,
                    offset: 0,
                    count,
                }),
                2,
            ),
        );
    }
    assert!(ok(
        &f,
        &encode(
            &Tmessage::Readdir(Treaddir {
                fid: 20,
                offset: 0,
                count: u32::MAX
            }),
            2
        )
    ));
    // Seventeen names: more than MAXWELEM, an error (built by hand: the
    // encoder will not make it).
    let mut walk = encode(
        &Tmessage::Walk(Twalk {
            fid: 1,
            newfid: 21,
            names: WalkList::new(),
        }),
        3,
    );
    walk.truncate(walk.len() - 2);
    walk.extend_from_slice(&17u16.to_le_bytes());
    for _ in 0..17 {
        walk.extend_from_slice(&[1, 0, b'd']);
    }
    let size = walk.len() as u32;
    walk[..4].copy_from_slice(&size.to_le_bytes());
    assert!(!serve(&f, &walk), "a 17-name walk");
    // A flush of its own tag is answered.
    assert!(ok(&f, &encode(&Tmessage::Flush(Tflush { oldtag: 4 }), 4)));
    alive(&f);
}
