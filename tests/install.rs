//! contrib/install.sh, the step after `cargo install --path .` (README,
//! "Install"): run with `sh` into a temporary DESTDIR and PREFIX, every file
//! lands where QEMU's conventions, man, the shells and systemd look, with
//! its mode; the JSON description and the systemd units name the installed
//! binary, which runs; the man page renders; wrong input is refused with
//! nothing installed.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAME: &str = "vhost-user-9p";
const BINARY: &str = env!("CARGO_BIN_EXE_vhost-user-9p");

fn source(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `sh TREE/contrib/install.sh ARGS` with `env` set and nothing of the
/// caller's Cargo or install variables.
fn install(tree: &Path, args: &[&Path], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(tree.join("contrib/install.sh")).args(args);
    for var in [
        "PREFIX",
        "DESTDIR",
        "CARGO_INSTALL_ROOT",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run sh contrib/install.sh")
}

fn succeeded(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh failed: {stderr}");
    assert!(stderr.is_empty(), "install.sh wrote to stderr: {stderr}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The stderr of a refused run, which installed nothing into `destdir`.
fn refused(out: &Output, destdir: &Path) -> String {
    assert!(!out.status.success(), "install.sh accepted it");
    let entries = std::fs::read_dir(destdir).unwrap().count();
    assert_eq!(entries, 0, "a refused install left files in DESTDIR");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.insert(path);
            }
        }
    }
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The systemd units of the source tree (another change may add them).
fn source_units(tree: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(tree.join("contrib/systemd")) else {
        return Vec::new();
    };
    let mut units: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "service" || x == "socket")
        })
        .collect();
    units.sort();
    units
}

/// The first word of an `Exec*=` line, past systemd's prefixes.
fn exec_program(line: &str) -> Option<&str> {
    let (key, command) = line.split_once('=')?;
    if !key.starts_with("Exec") {
        return None;
    }
    let command = command.trim_start_matches(['-', '@', ':', '+', '!']);
    command.split_whitespace().next()
}

/// The installed unit is the source unit with each program named
/// `vhost-user-9p` (by any path) replaced by `installed`, and nothing else
/// changed.
fn check_unit(source: &str, installed_unit: &str, installed: &str) {
    let (a, b): (Vec<&str>, Vec<&str>) =
        (source.lines().collect(), installed_unit.lines().collect());
    assert_eq!(a.len(), b.len(), "same lines");
    for (src, inst) in a.iter().zip(&b) {
        let names_daemon =
            exec_program(src).is_some_and(|p| p == NAME || p.ends_with(&format!("/{NAME}")));
        if names_daemon {
            let program = exec_program(src).unwrap();
            assert_eq!(
                *inst,
                src.replacen(program, installed, 1),
                "the Exec line runs the installed binary"
            );
        } else {
            assert_eq!(src, inst, "a line not naming the daemon is unchanged");
        }
    }
}

/// The man page as `man -l` renders it (else groff, else mandoc); with none
/// of them, the page's own lines are checked instead, and the test says so.
fn check_man_page(page: &Path) {
    let renderers: [(&str, &[&str]); 3] = [
        ("man", &["-l"]),
        ("groff", &["-man", "-Tutf8", "-ww"]),
        ("mandoc", &["-Tutf8", "-Wwarning"]),
    ];
    for (program, args) in renderers {
        let out = Command::new(program)
            .args(args)
            .arg(page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("LC_ALL", "C.UTF-8")
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("run {program}: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{program} failed on the page: {stderr}"
        );
        assert!(stderr.trim().is_empty(), "{program} warns: {stderr}");
        let text = plain(&String::from_utf8_lossy(&out.stdout));
        for wanted in [
            "NAME",
            &format!("{NAME} - "),
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "--socket-path",
            "--print-capabilities",
            "SEE ALSO",
        ] {
            assert!(
                text.contains(wanted),
                "{program}'s rendering has {wanted:?}:\n{text}"
            );
        }
        eprintln!("the man page renders with {program}");
        return;
    }
    eprintln!("neither man, groff nor mandoc is installed: checking the page's roff lines instead");
    let text = std::fs::read_to_string(page).unwrap();
    let title = format!(".TH {NAME} 1 ");
    assert!(text.lines().any(|l| l.starts_with(&title)), "a .TH line");
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "\"SEE ALSO\""] {
        let line = format!(".SH {section}");
        assert!(text.lines().any(|l| l == line), "a {line} line");
    }
}

/// Rendered text as plain text: without SGR escapes, overstrikes (`X\bX`,
/// `_\bX`) and Unicode hyphens and minus signs.
fn plain(rendered: &str) -> String {
    let mut text = String::new();
    let mut chars = rendered.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters final-byte.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\x08' => {
                text.pop();
            }
            '\u{2010}' | '\u{2011}' | '\u{2212}' => text.push('-'),
            c => text.push(c),
        }
    }
    text
}

/// The bash completion loads and registers itself for the command.
fn check_bash_completion(script: &Path) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". '{}' && complete -p {NAME}", script.display()))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(NAME),
        "bash loads the completion: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `binary --print-capabilities`: QEMU's capabilities object.
fn check_capabilities(binary: &Path) {
    let out = Command::new(binary)
        .arg("--print-capabilities")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    assert!(out.status.success(), "--print-capabilities exits 0");
    let caps: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(caps, serde_json::json!({"type": "9p", "features": []}));
}

#[test]
fn installs_everything_under_destdir_and_prefix() {
    let tree = source("");
    let destdir = tempfile::tempdir().unwrap();
    let prefix = "/opt/vu9p-test";
    let out = install(
        &tree,
        &[Path::new(BINARY)],
        &[("DESTDIR", destdir.path()), ("PREFIX", Path::new(prefix))],
    );
    let listed = succeeded(&out);
    let root = destdir.path().join(prefix.trim_start_matches('/'));
    let installed = format!("{prefix}/libexec/{NAME}");

    // Each file, from where, with which mode.
    let mut expected: Vec<(PathBuf, Option<PathBuf>, u32)> = vec![
        (root.join("libexec").join(NAME), Some(BINARY.into()), 0o755),
        (
            root.join(format!("share/qemu/vhost-user/50-{NAME}.json")),
            None,
            0o644,
        ),
        (
            root.join(format!("share/man/man1/{NAME}.1")),
            Some(source(&format!("doc/{NAME}.1"))),
            0o644,
        ),
        (
            root.join(format!("share/bash-completion/completions/{NAME}")),
            Some(source(&format!("contrib/completions/{NAME}.bash"))),
            0o644,
        ),
        (
            root.join(format!("share/zsh/site-functions/_{NAME}")),
            Some(source(&format!("contrib/completions/_{NAME}"))),
            0o644,
        ),
        (
            root.join(format!("share/fish/vendor_completions.d/{NAME}.fish")),
            Some(source(&format!("contrib/completions/{NAME}.fish"))),
            0o644,
        ),
    ];
    let units = source_units(&tree);
    for unit in &units {
        let dest = root
            .join("lib/systemd/system")
            .join(unit.file_name().unwrap());
        expected.push((dest, None, 0o644));
    }
    eprintln!("systemd units in the tree: {}", units.len());

    let wanted: BTreeSet<PathBuf> = expected.iter().map(|(p, _, _)| p.clone()).collect();
    assert_eq!(files_under(destdir.path()), wanted, "exactly these files");
    let printed: BTreeSet<PathBuf> = listed.lines().map(PathBuf::from).collect();
    assert_eq!(printed, wanted, "the script lists what it installed");
    for (path, from, want_mode) in &expected {
        assert_eq!(mode(path), *want_mode, "{}'s mode", path.display());
        if let Some(from) = from {
            assert!(
                std::fs::read(path).unwrap() == std::fs::read(from).unwrap(),
                "{} is a copy of {}",
                path.display(),
                from.display()
            );
        }
    }

    // The description names the installed binary, and says nothing else new.
    let json_path = &expected[1].0;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).expect("valid JSON");
    let mut want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(source(&format!("contrib/50-{NAME}.json"))).unwrap(),
    )
    .unwrap();
    want["binary"] = serde_json::Value::String(installed.clone());
    assert_eq!(json, want);
    // That binary, under DESTDIR, runs.
    let binary = destdir.path().join(installed.trim_start_matches('/'));
    check_capabilities(&binary);

    for unit in &units {
        let dest = root
            .join("lib/systemd/system")
            .join(unit.file_name().unwrap());
        check_unit(
            &std::fs::read_to_string(unit).unwrap(),
            &std::fs::read_to_string(dest).unwrap(),
            &installed,
        );
    }

    check_man_page(&expected[2].0);
    check_bash_completion(&expected[3].0);
}

/// Without DESTDIR the JSON's path is the file itself: QEMU's conventions
/// (and libvirt) run what it names.
#[test]
fn without_destdir_the_json_names_the_binary_to_run() {
    let tree = source("");
    let prefix = tempfile::tempdir().unwrap();
    // A trailing slash is dropped from the paths written.
    let given = PathBuf::from(format!("{}/", prefix.path().display()));
    succeeded(&install(&tree, &[Path::new(BINARY)], &[("PREFIX", &given)]));
    let json = prefix
        .path()
        .join(format!("share/qemu/vhost-user/50-{NAME}.json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let binary = json["binary"].as_str().expect("a binary path");
    assert_eq!(
        Path::new(binary),
        prefix.path().join("libexec").join(NAME),
        "the installed binary, by a clean path"
    );
    check_capabilities(Path::new(binary));
}

/// A copy of what the script reads, with made-up units, so that each form
/// of Exec line is tried whatever units the tree has.
#[test]
fn units_run_the_installed_binary() {
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    for (from, to) in [
        ("contrib/install.sh", "contrib/install.sh"),
        (
            &format!("contrib/50-{NAME}.json"),
            &format!("contrib/50-{NAME}.json"),
        ),
        (&format!("doc/{NAME}.1"), &format!("doc/{NAME}.1")),
        (
            &format!("contrib/completions/{NAME}.bash"),
            &format!("contrib/completions/{NAME}.bash"),
        ),
        (
            &format!("contrib/completions/_{NAME}"),
            &format!("contrib/completions/_{NAME}"),
        ),
        (
            &format!("contrib/completions/{NAME}.fish"),
            &format!("contrib/completions/{NAME}.fish"),
        ),
    ] {
        std::fs::create_dir_all(t.join(to).parent().unwrap()).unwrap();
        std::fs::copy(source(from), t.join(to)).unwrap();
    }
    let service = format!(
        "[Service]\n\
         ExecStartPre=/bin/true {NAME}\n\
         ExecStart=/usr/libexec/{NAME} --fd 3 --tag t\n\
         ExecStart=-{NAME} --print-capabilities\n\
         ExecStartPost=@/usr/local/libexec/{NAME}\n\
         ExecStop=/usr/bin/{NAME}-helper stop\n\
         # ExecStart=/usr/libexec/{NAME}\n\
         Description={NAME}\n"
    );
    std::fs::create_dir_all(t.join("contrib/systemd")).unwrap();
    std::fs::write(t.join("contrib/systemd/test@.service"), &service).unwrap();
    std::fs::write(
        t.join("contrib/systemd/test@.socket"),
        "[Socket]\nListenStream=%t/x\n",
    )
    .unwrap();
    // Neither a .service nor a .socket: not installed.
    std::fs::write(t.join("contrib/systemd/example.conf"), "SHARED_DIR=/srv\n").unwrap();

    let destdir = tempfile::tempdir().unwrap();
    succeeded(&install(
        t,
        &[Path::new(BINARY)],
        &[("DESTDIR", destdir.path()), ("PREFIX", Path::new("/usr"))],
    ));
    let system = destdir.path().join("usr/lib/systemd/system");
    let installed = format!("/usr/libexec/{NAME}");
    let got = std::fs::read_to_string(system.join("test@.service")).unwrap();
    check_unit(&service, &got, &installed);
    assert_eq!(
        got,
        format!(
            "[Service]\n\
             ExecStartPre=/bin/true {NAME}\n\
             ExecStart={installed} --fd 3 --tag t\n\
             ExecStart=-{installed} --print-capabilities\n\
             ExecStartPost=@{installed}\n\
             ExecStop=/usr/bin/{NAME}-helper stop\n\
             # ExecStart=/usr/libexec/{NAME}\n\
             Description={NAME}\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(system.join("test@.socket")).unwrap(),
        "[Socket]\nListenStream=%t/x\n"
    );
    assert!(!system.join("example.conf").exists());
}

/// With no argument: the binary `cargo install` put in its root's bin,
/// else the release build; with neither, a refusal that says what to run.
#[test]
fn the_default_binary_is_cargo_installs_then_the_release_build() {
    let tree = source("");
    let work = tempfile::tempdir().unwrap();
    let fake = |path: &Path, says: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\necho {says}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let root = work.path().join("cargo-root");
    let target = work.path().join("target");
    let run = |destdir: &Path| {
        install(
            &tree,
            &[],
            &[
                ("DESTDIR", destdir),
                ("PREFIX", Path::new("/p")),
                ("CARGO_INSTALL_ROOT", &root),
                ("CARGO_TARGET_DIR", &target),
            ],
        )
    };
    let installed =
        |destdir: &Path| std::fs::read_to_string(destdir.join("p/libexec").join(NAME)).unwrap();

    let destdir = tempfile::tempdir().unwrap();
    let stderr = refused(&run(destdir.path()), destdir.path());
    assert!(
        stderr.contains("cargo install --path .") && stderr.contains("cargo-root/bin"),
        "{stderr}"
    );

    fake(&target.join("release").join(NAME), "release");
    succeeded(&run(destdir.path()));
    assert_eq!(installed(destdir.path()), "#!/bin/sh\necho release\n");

    fake(&root.join("bin").join(NAME), "cargo-install");
    let destdir = tempfile::tempdir().unwrap();
    succeeded(&run(destdir.path()));
    assert_eq!(installed(destdir.path()), "#!/bin/sh\necho cargo-install\n");
}

#[test]
fn bad_input_is_refused_with_nothing_installed() {
    let tree = source("");
    let destdir = tempfile::tempdir().unwrap();
    let d = destdir.path();
    let binary = Path::new(BINARY);
    let cases: [(&[&Path], &str, &str); 5] = [
        (&[binary], "usr/local", "must be an absolute path"),
        (&[binary], "/opt/a b", "only letters, digits"),
        (&[binary], "/opt/a\"b", "only letters, digits"),
        (
            &[Path::new("/nonexistent/vhost-user-9p")],
            "/usr",
            "not an executable file",
        ),
        (&[binary, binary], "/usr", "usage:"),
    ];
    for (args, prefix, message) in cases {
        let out = install(
            &tree,
            args,
            &[("DESTDIR", d), ("PREFIX", Path::new(prefix))],
        );
        let stderr = refused(&out, d);
        assert!(
            stderr.starts_with("install.sh: ") && stderr.contains(message),
            "PREFIX={prefix} {args:?}: {stderr}"
        );
    }
}
