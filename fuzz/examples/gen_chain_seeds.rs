//! Writes the seed corpus of the `chain` target (`corpus/chain`): virtqueues
//! holding what a Linux client sends (Tversion, Tattach, Twalk, Tgetattr,
//! Tlopen, Tread, Treaddir, Twrite, Tclunk) on direct chains, through an
//! indirect table, split over many small descriptors, with the reply
//! buffer spanning the two memory regions, with event idx, wrapping the
//! rings, in two rounds, and a bad chain next to good ones.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_chain_seeds
//!
//! The directory is emptied first, so the seeds are exactly what this
//! program writes. See `fuzz_common::chain_input` for the format.

use std::fs;
use std::path::Path;

use fuzz_common::chain_input::*;
use fuzz_common::Setup;
use vhost_user_9p::protocol::*;

const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_DIRECTORY: u32 = 0o200000;
const GETATTR_ALL: u64 = 0x3fff;

/// Where reply buffers go: past the request bytes, in memory the input
/// does not need to fill (it is zeroed).
const REPLY_AREA: u16 = 0x8000;

struct Builder {
    input: ChainInput,
    reply_at: u16,
    tag: u16,
}

impl Builder {
    /// `log2_size`: the queue size; `flags`: CONFIG_* bits.
    fn new(log2_size: u8, flags: u8) -> Self {
        Builder {
            input: ChainInput {
                config: log2_size | flags,
                setup: Setup::byte(0, 0), // 9P2000.L, msize 8192
                ..Default::default()
            },
            reply_at: REPLY_AREA,
            tag: 1,
        }
    }

    fn frame(&mut self, msg: Tmessage) -> Vec<u8> {
        let mut f = Vec::new();
        let tag = if matches!(msg, Tmessage::Version(_)) {
            NOTAG
        } else {
            self.tag
        };
        msg.encode(tag, &mut f);
        self.tag += 1;
        f
    }

    /// Puts bytes in the data area; returns their offset.
    fn put(&mut self, bytes: &[u8]) -> u16 {
        let off = self.input.data.len();
        self.input.data.extend_from_slice(bytes);
        while !self.input.data.len().is_multiple_of(8) {
            self.input.data.push(0);
        }
        off as u16
    }

    fn reply_buffer(&mut self, len: u16) -> u16 {
        let off = self.reply_at;
        self.reply_at += len.next_multiple_of(64);
        off
    }

    /// Descriptors for readable pieces then writable buffers of `writes`
    /// bytes each, chained from index `first` of `table`.
    fn descs(&mut self, pieces: &[&[u8]], writes: &[u16], first: usize) -> Vec<Desc> {
        let mut bufs: Vec<(u16, u16, bool)> = pieces
            .iter()
            .map(|p| (self.put(p), p.len() as u16, false))
            .collect();
        for &w in writes {
            bufs.push((self.reply_buffer(w), w, true));
        }
        let n = bufs.len();
        bufs.iter()
            .enumerate()
            .map(|(i, &(off, len, write))| {
                let next = (i + 1 < n).then(|| (first + i + 1) as u8);
                Desc::data(off, len, write, next)
            })
            .collect()
    }

    /// A chain in the descriptor table; returns its head.
    fn chain(&mut self, pieces: &[&[u8]], writes: &[u16]) -> u8 {
        let first = self.input.descs.len();
        let descs = self.descs(pieces, writes, first);
        self.input.descs.extend(descs);
        first as u8
    }

    /// A request in one buffer, its reply in another.
    fn request(&mut self, msg: Tmessage, reply: u16) -> u8 {
        let f = self.frame(msg);
        self.chain(&[&f], &[reply])
    }

    /// A chain whose head points to an indirect table.
    fn indirect_chain(&mut self, pieces: &[&[u8]], writes: &[u16]) -> u8 {
        let first = self.input.indirect.len();
        let descs = self.descs(pieces, writes, 0);
        let count = descs.len() as u16;
        self.input.indirect.extend(descs);
        let head = self.input.descs.len();
        self.input.descs.push(Desc::indirect(first as u16, count));
        head as u8
    }

    fn publish(&mut self, heads: &[u8]) -> &mut Self {
        self.input.heads.extend_from_slice(heads);
        self
    }

    fn write(&self, dir: &Path, name: &str) {
        let bytes = self.input.encode();
        assert_eq!(ChainInput::parse(&bytes), self.input, "{name} round-trips");
        fs::write(dir.join(name), bytes).unwrap();
    }
}

fn version() -> Tmessage<'static> {
    Tmessage::Version(Tversion {
        msize: 8192,
        version: Str(b"9P2000.L"),
    })
}

fn attach() -> Tmessage<'static> {
    Tmessage::Attach(Tattach {
        fid: 0,
        afid: NOFID,
        uname: Str(b"root"),
        aname: Str(b""),
        n_uname: Some(0),
    })
}

fn walk(fid: u32, newfid: u32, names: &[&'static str]) -> Tmessage<'static> {
    let names: Vec<Str> = names.iter().map(|n| Str(n.as_bytes())).collect();
    Tmessage::Walk(Twalk {
        fid,
        newfid,
        names: WalkList::from_slice(&names).expect("at most 16 names"),
    })
}

fn getattr(fid: u32) -> Tmessage<'static> {
    Tmessage::Getattr(Tgetattr {
        fid,
        request_mask: GETATTR_ALL,
    })
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/chain");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();

    // The handshake on the fuzzer's own chains, then a walk and a getattr.
    let mut b = Builder::new(3, 0);
    let heads = [
        b.request(version(), 64),
        b.request(attach(), 64),
        b.request(walk(0, 1, &["dir", "inner.txt"]), 128),
        b.request(getattr(1), 256),
    ];
    b.publish(&heads).write(&dir, "version-attach-walk-getattr");

    // After the harness's handshake: walk, getattr, clunk.
    let mut b = Builder::new(3, CONFIG_HANDSHAKE);
    let heads = [
        b.request(walk(0, 1, &["hello.txt"]), 64),
        b.request(getattr(1), 256),
        b.request(Tmessage::Clunk(Tclunk { fid: 1 }), 64),
    ];
    b.publish(&heads).write(&dir, "walk-getattr-clunk");

    // A walk through an indirect table, then a direct getattr.
    let mut b = Builder::new(2, CONFIG_HANDSHAKE);
    let f = b.frame(walk(0, 1, &["dir"]));
    let h0 = b.indirect_chain(&[&f], &[64]);
    let h1 = b.request(getattr(1), 256);
    b.publish(&[h0, h1]).write(&dir, "indirect");

    // A walk and a getattr split over many small descriptors, both ways.
    let mut b = Builder::new(6, CONFIG_HANDSHAKE);
    let f = b.frame(walk(0, 1, &["dir", "inner.txt"]));
    let pieces: Vec<&[u8]> = f.chunks(3).collect();
    let h0 = b.chain(&pieces, &[4; 12]);
    let f = b.frame(getattr(1));
    let pieces: Vec<&[u8]> = f.chunks(1).collect();
    let h1 = b.chain(&pieces, &[16; 12]);
    b.publish(&[h0, h1]).write(&dir, "split");

    // Read hello.txt into a buffer spanning the two memory regions.
    let mut b = Builder::new(3, CONFIG_HANDSHAKE);
    let h0 = b.request(walk(0, 1, &["hello.txt"]), 64);
    let h1 = b.request(
        Tmessage::Lopen(Tlopen {
            fid: 1,
            flags: O_RDONLY,
        }),
        64,
    );
    let f = b.frame(Tmessage::Read(Tread {
        fid: 1,
        offset: 0,
        count: 4096,
    }));
    let off = b.put(&f);
    let h2 = b.input.descs.len() as u8;
    let boundary = (MEM_REGIONS[1].0 - DATA_BASE) as u16;
    b.input
        .descs
        .push(Desc::data(off, f.len() as u16, false, Some(h2 + 1)));
    b.input
        .descs
        .push(Desc::data(boundary - 16, 0x100, true, None));
    b.publish(&[h0, h1, h2]).write(&dir, "read-across-regions");

    // Open a directory and read it.
    let mut b = Builder::new(3, CONFIG_HANDSHAKE);
    let heads = [
        b.request(walk(0, 1, &["dir"]), 64),
        b.request(
            Tmessage::Lopen(Tlopen {
                fid: 1,
                flags: O_RDONLY | O_DIRECTORY,
            }),
            64,
        ),
        b.request(
            Tmessage::Readdir(Treaddir {
                fid: 1,
                offset: 0,
                count: 1024,
            }),
            1024,
        ),
    ];
    b.publish(&heads).write(&dir, "readdir");

    // Write to a file: the data in a buffer of its own.
    let mut b = Builder::new(3, CONFIG_HANDSHAKE);
    let h0 = b.request(walk(0, 1, &["empty"]), 64);
    let h1 = b.request(
        Tmessage::Lopen(Tlopen {
            fid: 1,
            flags: O_WRONLY,
        }),
        64,
    );
    let mut f = b.frame(Tmessage::Write(Twrite {
        fid: 1,
        offset: 0,
        count: 6,
    }));
    let size = (f.len() + 6) as u32;
    f[..4].copy_from_slice(&size.to_le_bytes());
    let h2 = b.chain(&[&f, b"hello\n"], &[64]);
    b.publish(&[h0, h1, h2]).write(&dir, "write");

    // Event idx, a queue of 2 wrapping (the handshake used slots 0 and 1),
    // in two rounds.
    let mut b = Builder::new(1, CONFIG_HANDSHAKE | CONFIG_EVENT_IDX | CONFIG_TWO_ROUNDS);
    let f = b.frame(walk(0, 1, &["dirlink"]));
    let h0 = b.indirect_chain(&[&f], &[64]);
    let f = b.frame(getattr(1));
    let h1 = b.indirect_chain(&[&f], &[256]);
    b.input.used_event = 2;
    b.publish(&[h0, h1]).write(&dir, "event-idx-two-rounds");

    // A readable buffer after a writable one (dropped), a head published
    // twice, and a head past the queue size.
    let mut b = Builder::new(2, CONFIG_HANDSHAKE);
    let f = b.frame(getattr(0));
    let off = b.put(&f);
    let reply = b.reply_buffer(64);
    b.input.descs.push(Desc::data(reply, 64, true, Some(1)));
    b.input
        .descs
        .push(Desc::data(off, f.len() as u16, false, None));
    let h1 = b.request(getattr(0), 256);
    b.publish(&[0, h1, h1, 7]).write(&dir, "bad-chains");

    // 9P2000 (Plan 9) handshake by the harness, then a Tstat.
    let mut b = Builder::new(2, CONFIG_HANDSHAKE);
    b.input.setup = Setup::byte(2, 2);
    let h0 = b.request(Tmessage::Stat(Tstat { fid: 0 }), 256);
    b.publish(&[h0]).write(&dir, "plan9-stat");

    println!("wrote {}", dir.display());
}
