//! The pure parsers of the command line's values: `--uid-map`/`--gid-map`
//! ranges (`IdRange::parse`) and the map they make (`IdMap::new`, which
//! refuses overlapping ranges), `--security-model` and `--listen`.
//!
//! Input: text, one value a line. Every line is tried as each kind of
//! value; the lines that parse as id ranges make an id map. Properties:
//! never a panic; a map that `IdMap::new` accepts has no two ranges that
//! overlap (guest or host side) and is one-to-one where it is defined
//! (`to_guest(to_host(g)) == g`); a security model's name parses back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vhost_user_9p::server::{IdMap, IdRange, SecurityModel};
use vhost_user_9p::socket::ListenAddress;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let mut ranges = Vec::new();
    for line in text.lines() {
        if let Some(model) = SecurityModel::parse(line) {
            assert_eq!(SecurityModel::parse(model.name()), Some(model));
        }
        let _ = ListenAddress::parse(line);
        if let Ok(range) = IdRange::parse(line) {
            assert!(range.count > 0);
            ranges.push(range);
        }
    }
    let Ok(map) = IdMap::new(ranges.clone()) else {
        return;
    };
    // Accepted ranges are disjoint, guest side and host side.
    let span = |start: u32, count: u32| u64::from(start)..u64::from(start) + u64::from(count);
    let disjoint =
        |a: std::ops::Range<u64>, b: std::ops::Range<u64>| a.end <= b.start || b.end <= a.start;
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            assert!(
                disjoint(span(a.guest, a.count), span(b.guest, b.count))
                    && disjoint(span(a.host, a.count), span(b.host, b.count)),
                "IdMap::new accepted overlapping ranges {a:?} and {b:?}"
            );
        }
    }
    for r in &ranges {
        for guest in [
            r.guest,
            r.guest + (r.count - 1),
            r.guest + (r.count - 1) / 2,
        ] {
            if guest == u32::MAX {
                continue; // "no change" in Tsetattr: passed through as is
            }
            let host = map.to_host(guest);
            assert_eq!(
                host,
                Some(r.host + (guest - r.guest)),
                "{ranges:?} guest {guest}"
            );
            assert_eq!(
                map.to_guest(host.unwrap()),
                guest,
                "{ranges:?} host {host:?}"
            );
        }
    }
});
