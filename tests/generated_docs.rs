//! The man page and the shell completions, generated from the daemon's
//! clap definitions (`Cli` in src/settings.rs) and checked in: this test
//! renders them and fails when a checked-in copy differs. The one command
//! that rewrites them:
//!
//! ```sh
//! UPDATE_GENERATED=1 cargo test --test generated_docs
//! ```

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

// The binary's own command line (src/main.rs's `mod settings;`), compiled
// here as in the binary, so the generated files describe exactly the options
// the daemon parses. An inline module with a `#[path]` names a directory: in
// it, `mod settings;` is src/settings.rs with its submodules under
// src/settings/ (its unit tests run here too). Only `Cli` is used here.
#[allow(dead_code)]
#[path = "../src"]
mod src {
    pub mod settings;
}
use src::settings;

/// The binary's name, as installed and as completed.
const BIN: &str = "vhost-user-9p";

/// The environment variable that makes the test rewrite the files.
const UPDATE: &str = "UPDATE_GENERATED";

/// Appended to clap's sections: where the rest is documented.
const SEE_ALSO: &str = r#".SH "SEE ALSO"
\fBqemu\-system\fR(1), \fBmount\fR(8) (\fB\-t 9p \-o trans=virtio\fR),
\fBsystemd.socket\fR(5);
QEMU's docs/interop/vhost\-user.rst, "Backend program conventions";
the README of vhost\-user\-9p: how to use it with QEMU, libvirt and systemd.
"#;

/// A generated file: its path in the source tree and its content.
struct Generated {
    path: &'static str,
    content: String,
}

fn command() -> clap::Command {
    settings::Cli::command()
}

fn man_page() -> String {
    let mut out = Vec::new();
    clap_mangen::Man::new(command())
        .render(&mut out)
        .expect("render the man page");
    let mut page = String::from_utf8(out).expect("the man page is UTF-8");
    page.push_str(SEE_ALSO);
    page
}

fn completion(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), BIN, &mut out);
    String::from_utf8(out).expect("the completion is UTF-8")
}

/// Every generated file, as rendered now from `Cli`.
fn generated() -> Vec<Generated> {
    vec![
        Generated {
            path: "doc/vhost-user-9p.1",
            content: man_page(),
        },
        Generated {
            path: "contrib/completions/vhost-user-9p.bash",
            content: completion(Shell::Bash),
        },
        Generated {
            path: "contrib/completions/_vhost-user-9p",
            content: completion(Shell::Zsh),
        },
        Generated {
            path: "contrib/completions/vhost-user-9p.fish",
            content: completion(Shell::Fish),
        },
    ]
}

fn source_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The checked-in copies are what `Cli` renders today (or, with
/// UPDATE_GENERATED=1, are made so).
#[test]
fn checked_in_copies_are_up_to_date() {
    let update = std::env::var_os(UPDATE).is_some_and(|v| !v.is_empty() && v != "0");
    let mut stale = Vec::new();
    for file in generated() {
        let path = source_path(file.path);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(file.content.as_str()) {
            continue;
        }
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.content)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            eprintln!("generated_docs: rewrote {}", file.path);
        } else {
            stale.push(match current {
                None => format!("{} is missing", file.path),
                Some(_) => format!("{} is stale", file.path),
            });
        }
    }
    assert!(
        stale.is_empty(),
        "{}; regenerate with `{UPDATE}=1 cargo test --test generated_docs` and commit the result",
        stale.join(", ")
    );
}

/// Rendering twice gives the same bytes: nothing depends on the time, the
/// machine or the order of a hash map.
#[test]
fn rendering_is_deterministic() {
    let first = generated();
    let second = generated();
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.content, b.content, "{} differs between renders", a.path);
    }
    let page = &first[0].content;
    let title = page.lines().find(|l| l.starts_with(".TH ")).unwrap();
    assert_eq!(
        title,
        format!(".TH {BIN} 1  \"{BIN} {}\" ", env!("CARGO_PKG_VERSION")),
        "the title line holds the name, section and version, no date"
    );
}

/// The man page says what the daemon is and documents every option, and
/// each completion offers every option.
#[test]
fn every_option_is_documented_and_completed() {
    let cmd = command();
    let page = man_page();
    // roff escapes dashes: `--socket-path` is `\-\-socket\-path`.
    let unescaped = page.replace("\\-", "-");
    let about = cmd.get_about().expect("Cli has an about").to_string();
    assert!(
        unescaped.contains(&format!(".SH NAME\n{BIN} - {about}")),
        "NAME: the command and its one-line summary"
    );
    let description = unescaped
        .split(".SH DESCRIPTION\n")
        .nth(1)
        .expect("a DESCRIPTION section");
    assert!(
        description.contains("-chardev socket") && description.contains("mount -t 9p"),
        "DESCRIPTION: the long about, with QEMU's and the guest's command lines"
    );
    let shells = [Shell::Bash, Shell::Zsh, Shell::Fish].map(|s| (s, completion(s)));
    let mut longs = 0;
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        longs += 1;
        assert!(
            unescaped.contains(&format!("--{long}")),
            "the man page documents --{long}"
        );
        for (shell, script) in &shells {
            // fish names long options without their dashes (`-l fd`).
            let named = match shell {
                Shell::Fish => script.contains(&format!("-l {long} ")),
                _ => script.contains(&format!("--{long}")),
            };
            assert!(named, "the {shell} completion offers --{long}");
        }
    }
    // Every option of the daemon, --help and --version included.
    assert!(longs > 25, "only {longs} long options found");
    // Enumerated values are offered by name.
    for (shell, script) in &shells {
        assert!(
            script.contains("namespace") && script.contains("chroot"),
            "the {shell} completion offers --sandbox's values"
        );
    }
}
