//! Requests and replies in descriptor chains of every shape, large I/O as
//! Linux lays it out, ring indices that wrap.

use super::*;

/// Requests and replies split across many descriptors, in both memory regions,
/// direct and indirect, and several chains per kick.
#[test]
fn split_descriptor_chains() {
    let (share, daemon) = start("hostshare", &[]);
    let content = pattern(3000, 7);
    fs::write(share.path().join("split.bin"), &content).unwrap();
    let mut c = connect_with(
        &daemon,
        VmmOpts {
            mem: MemSetup::AddMemRegions,
            ..VmmOpts::two_regions()
        },
    );
    let root = mount(&mut c, 1);

    // Twalk with the header split mid-field: size[0..2] | size[2..4]+type | tag[0] | ...
    let m = c.walk_msg(1, 2, &["split.bin"]);
    let pieces = split_at(&m, &[2, 5, 6, 9, 12]);
    let chain = Chain::direct(vec![
        rd(pieces[0]),
        rd0(pieces[1]),
        rd(pieces[2]),
        rd0(pieces[3]),
        rd(pieces[4]),
        rd(pieces[5]),
        wr(64),
    ]);
    let q = parse::walk(&call_chain(&mut c, &m, chain).expect("split Twalk"));
    assert_eq!(q.len(), 1);
    assert_ne!(q[0].path, root.path);

    // Tlopen with every byte in its own descriptor; reply split 7 / 1 / rest.
    let m = T::new(TLOPEN, c.tag()).u32(2).u32(O_RDWR).done();
    let mut segs: Vec<Seg> = m.iter().map(|b| rd(&[*b])).collect();
    segs.extend([wr(7), wr0(1), wr(100)]);
    let body = call_chain(&mut c, &m, Chain::direct(segs)).expect("byte-split Tlopen");
    let mut d = Dec::new(&body);
    assert_eq!(d.qid().path, q[0].path);
    d.u32();
    d.end();

    // Rread across a 7-byte, a 1-byte and larger writable pieces (RAM0 and RAM1).
    let m = c.read_msg(2, 0, 3000);
    let chain = Chain::direct(vec![rd(&m), wr(7), wr0(1), wr(3), wr0(1000), wr(4096)]);
    let data = parse::read(&call_chain(&mut c, &m, chain).expect("split Rread"));
    assert_bytes_eq(&data, &content, "Rread through split writable buffers");

    // Twrite: header split mid-field (offset), payload split in three, across regions.
    let payload = pattern(2500, 99);
    let m = c.write_msg(2, 100, &payload);
    // header is 23 bytes: size type tag fid offset count
    let pieces = split_at(&m, &[10, 14, 23, 23 + 1000, 23 + 1001]);
    let chain = Chain::direct(vec![
        rd(pieces[0]),
        rd0(pieces[1]),
        rd(pieces[2]),
        rd0(pieces[3]),
        rd(pieces[4]),
        rd0(pieces[5]),
        wr(5),
        wr0(6),
    ]);
    let n = parse::write(&call_chain(&mut c, &m, chain).expect("split Twrite"));
    assert_eq!(n, 2500);
    let host = fs::read(share.path().join("split.bin")).unwrap();
    let mut want = content.clone();
    want[100..2600].copy_from_slice(&payload);
    assert_bytes_eq(&host, &want, "host file after the split Twrite");

    // Indirect descriptor tables (what the Linux client sends).
    let m = c.read_msg(2, 0, 3000);
    let (a, b) = m.split_at(6);
    let chain = Chain::indirect(vec![rd(a), rd0(b), wr(7), wr(1), wr0(2000), wr(1100)]);
    let data = parse::read(&call_chain(&mut c, &m, chain).expect("indirect Tread"));
    assert_bytes_eq(&data, &want, "Rread through an indirect table");

    let payload2 = pattern(700, 3);
    let m = c.write_msg(2, 0, &payload2);
    let pieces = split_at(&m, &[3, 23, 400]);
    let chain = Chain::indirect(vec![
        rd(pieces[0]),
        rd(pieces[1]),
        rd0(pieces[2]),
        rd(pieces[3]),
        wr(11),
    ]);
    let n = parse::write(&call_chain(&mut c, &m, chain).expect("indirect Twrite"));
    assert_eq!(n, 700);
    want[..700].copy_from_slice(&payload2);
    assert_bytes_eq(
        &fs::read(share.path().join("split.bin")).unwrap(),
        &want,
        "host file after the indirect Twrite",
    );

    // Several chains in one kick, direct and indirect mixed; each reply to its own chain.
    let m1 = c.getattr_msg(2, GETATTR_BASIC);
    let m2 = c.read_msg(2, 10, 20);
    let m3 = c.getattr_msg(1, GETATTR_BASIC);
    let m4 = c.read_msg(2, 2000, 600);
    let chains = [
        Chain::simple(&[&m1], &[200]),
        Chain::indirect(vec![rd(&m2[..4]), rd(&m2[4..]), wr(4), wr(100)]),
        Chain::direct(vec![rd0(&m3), wr0(200)]),
        Chain::indirect(vec![rd(&m4), wr(300), wr(311)]),
    ];
    let done = c.vmm.submit(&chains);
    let a1 = Attr::parse(&check_reply(&m1, &done[0].reply).unwrap());
    assert_eq!(a1.size, 3000);
    assert_eq!(
        parse::read(&check_reply(&m2, &done[1].reply).unwrap()),
        want[10..30].to_vec()
    );
    let a3 = Attr::parse(&check_reply(&m3, &done[2].reply).unwrap());
    assert_eq!(a3.qid, root);
    assert_eq!(
        parse::read(&check_reply(&m4, &done[3].reply).unwrap()),
        want[2000..2600].to_vec()
    );
}

/// msize-sized reads and writes laid out the way the Linux client's zero-copy path does:
/// an indirect table with a small header buffer followed by page-sized pieces.
#[test]
fn large_io_like_linux() {
    let (share, daemon) = start("hostshare", &[]);
    let content = pattern(600_000, 42);
    fs::write(share.path().join("large"), &content).unwrap();
    let mut c = connect(&daemon);
    let (msize, _) = c.version(MSIZE, "9P2000.L");
    c.try_attach(1, "root", "", Some(uid())).unwrap();
    c.try_walk(1, 2, &["large"]).unwrap();
    c.try_lopen(2, O_RDWR).unwrap();
    let count = msize - 24; // what the Linux client asks for

    // Tread: out = the 23-byte request; in = 11-byte header buffer, then a user buffer
    // that starts 100 bytes into a page, then whole pages.
    let m = c.read_msg(2, 1000, count);
    let mut segs = vec![rd(&m), wr(11), wr(4096 - 100)];
    let mut left = count - (4096 - 100);
    while left > 0 {
        let n = left.min(4096);
        segs.push(wr(n));
        left -= n;
    }
    assert!(segs.len() <= 130);
    let data = parse::read(&call_chain(&mut c, &m, Chain::indirect(segs)).expect("large Tread"));
    assert_eq!(data.len(), count as usize, "short read of a large file");
    assert_bytes_eq(&data, &content[1000..1000 + count as usize], "large Tread");

    // A Tread asking for more than msize allows, with room for all of it: the reply must
    // still respect msize.
    let m = c.read_msg(2, 0, 2 * msize);
    let done = c
        .vmm
        .submit_one(Chain::indirect(vec![rd(&m), wr(11), wr(2 * msize)]));
    match check_reply(&m, &done.reply) {
        Ok(body) => {
            let data = parse::read(&body);
            assert!(
                data.len() + 11 <= msize as usize,
                "Rread of {} bytes exceeds msize {msize}",
                data.len()
            );
            assert_bytes_eq(&data, &content[..data.len()], "clamped Tread");
        }
        Err(e) => assert_eq!(e, Errno(libc::EMSGSIZE as u32), "Tread count > msize"),
    }

    // Twrite: out = 23-byte header, then pages; in = a 4096-byte reply buffer.
    let payload = pattern(count as usize, 9);
    let m = c.write_msg(2, 50_000, &payload);
    let mut segs = vec![rd(&m[..23])];
    for page in m[23..].chunks(4096) {
        segs.push(rd(page));
    }
    segs.push(wr(4096));
    let n = parse::write(&call_chain(&mut c, &m, Chain::indirect(segs)).expect("large Twrite"));
    assert_eq!(n, count);
    let mut want = content.clone();
    want[50_000..50_000 + count as usize].copy_from_slice(&payload);
    assert_bytes_eq(
        &fs::read(share.path().join("large")).unwrap(),
        &want,
        "host file after the large Twrite",
    );
}

/// Ring indices that wrap past 65535, without EVENT_IDX (plain interrupts).
#[test]
fn ring_index_wraparound_without_event_idx() {
    let (share, daemon) = start("hostshare", &[]);
    fs::write(share.path().join("f"), b"0123456789").unwrap();
    let mut c = connect_with(
        &daemon,
        VmmOpts {
            ring_base: 65530,
            event_idx: false,
            ..VmmOpts::two_regions()
        },
    );
    assert_eq!(c.vmm.acked_features & VIRTIO_RING_F_EVENT_IDX, 0);
    mount(&mut c, 1);
    c.try_walk(1, 2, &["f"]).unwrap();
    c.try_lopen(2, O_RDONLY).unwrap();
    for i in 0..12u64 {
        assert_eq!(
            c.try_read(2, i % 10, 1).unwrap(),
            vec![b'0' + (i % 10) as u8]
        );
    }
    // A batch straddling nothing in particular, after the wrap.
    let msgs: Vec<Vec<u8>> = (0..5).map(|i| c.read_msg(2, i, 2)).collect();
    let chains: Vec<Chain> = msgs.iter().map(|m| Chain::simple(&[m], &[64])).collect();
    let done = c.vmm.submit(&chains);
    for (i, (m, d)) in msgs.iter().zip(&done).enumerate() {
        let data = parse::read(&check_reply(m, &d.reply).unwrap());
        assert_eq!(data, b"0123456789"[i..i + 2].to_vec());
    }
    assert!(c.vmm.avail_idx() < 100, "indices did wrap");
}
