//! The design's layers, checked in the source (README, "Design"): the wire
//! codec is pure, the share names nothing of the 9P sessions above it, the
//! 9P layer reaches the host only through the share, the server names no
//! transport, the 9P client (the gateway's upstream) no server, no file of the 9P layer calls a `Server` method of a file
//! above it, and no source file grows past about 900 lines.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's code: its text up to its unit tests, comments left out.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Every (file, word) where a file of `files` names one of `words`.
fn naming(files: &[PathBuf], words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let code = code(file);
        for word in words {
            if code.contains(word) {
                found.push(format!("{} names {word}", relative(file)));
            }
        }
    }
    found
}

#[test]
fn the_wire_codec_is_pure() {
    let protocol = sources(&root().join("src/protocol"));
    assert!(protocol.len() >= 8, "{protocol:?}");
    let found = naming(
        &protocol,
        &[
            "crate::server",
            "crate::virtio",
            "crate::socket",
            "std::fs",
            "std::net",
            "libc::",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_9p_client_names_nothing_of_the_server() {
    let client = sources(&root().join("src/client"));
    assert!(client.len() >= 3, "{client:?}");
    let found = naming(&client, &["crate::server", "crate::virtio", "vhost"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_share_names_nothing_of_the_9p_sessions() {
    let share = sources(&root().join("src/server/share"));
    assert!(share.len() >= 9, "{share:?}");
    let found = naming(
        &share,
        &[
            "Session",
            "FidRef",
            "Fid ",
            "Fid,",
            "Fid>",
            "Tmessage",
            "Rmessage",
            "Dialect",
            "super::super",
            "server::ops",
            "server::route",
            "server::ctl",
            "server::plan9",
            "server::fid",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// The 9P layer: sessions, fids, dialects, the control namespace, replies.
const NINEP_LAYER: &[&str] = &[
    "route.rs",
    "reply.rs",
    "gate.rs",
    "walk.rs",
    "plan9.rs",
    "ctl.rs",
    "ctl_syntax.rs",
    "xattr.rs",
    "lock.rs",
    "ops.rs",
    "fid.rs",
    "fid_table.rs",
    "error.rs",
];

#[test]
fn the_9p_layer_reaches_the_host_only_through_the_share() {
    let files: Vec<PathBuf> = NINEP_LAYER
        .iter()
        .map(|name| root().join("src/server").join(name))
        .collect();
    let found = naming(
        &files,
        &["host::", "SecurityModel", "security::", "libc::open"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_server_names_no_transport() {
    let found = naming(
        &sources(&root().join("src/server")),
        &[
            "crate::virtio",
            "crate::socket",
            "vhost",
            "virtio_queue",
            "TcpStream",
            "UnixStream",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// The 9P layer's files from the top down: a file may call the `Server`
/// methods of files below it, never of one above it or beside it.
const CALL_ORDER: &[&[&str]] = &[
    &["mod.rs"],
    &["route.rs"],
    &["gate.rs", "reply.rs"],
    &["walk.rs", "plan9.rs"],
    &["ctl.rs"],
    &["xattr.rs", "lock.rs"],
    &["ops.rs"],
];

/// The names of the `Server` methods a file defines (in its `impl Server`
/// blocks).
fn server_methods(code: &str) -> Vec<String> {
    let mut methods = Vec::new();
    for block in code.split("impl Server {").skip(1) {
        // The block ends at the first line that closes it: "}" alone.
        let block = block.split("\n}").next().unwrap();
        for part in block.split("fn ").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if part[name.len()..].starts_with(['(', '<']) {
                methods.push(name);
            }
        }
    }
    methods
}

#[test]
fn no_file_calls_a_server_method_of_a_file_above_it() {
    let dir = root().join("src/server");
    let rank: BTreeMap<&str, usize> = CALL_ORDER
        .iter()
        .enumerate()
        .flat_map(|(rank, files)| files.iter().map(move |f| (*f, rank)))
        .collect();
    let mut defined_in: BTreeMap<String, &str> = BTreeMap::new();
    for file in rank.keys() {
        for method in server_methods(&code(&dir.join(file))) {
            let earlier = defined_in.insert(method.clone(), file);
            assert!(
                earlier.is_none(),
                "Server::{method} in {file} and {earlier:?}"
            );
        }
    }
    assert!(defined_in.len() > 60, "{defined_in:?}");
    let mut wrong = Vec::new();
    let mut calls = 0;
    for (file, &from) in &rank {
        let code = code(&dir.join(file));
        for call in code.split("self.").skip(1) {
            let name: String = call
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !call[name.len()..].starts_with('(') {
                continue;
            }
            let Some(&callee) = defined_in.get(&name) else {
                continue;
            };
            calls += 1;
            if callee != *file && rank[callee] <= from {
                wrong.push(format!("{file} calls {name} of {callee}"));
            }
        }
    }
    assert!(calls > 100, "{calls} calls found: the parse is broken");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_source_file_is_over_900_lines() {
    let mut long = Vec::new();
    for file in sources(&root().join("src")) {
        let lines = fs::read_to_string(&file).unwrap().lines().count();
        if lines > 900 {
            long.push(format!("{}: {lines} lines", relative(&file)));
        }
    }
    assert!(long.is_empty(), "{long:#?}");
}
