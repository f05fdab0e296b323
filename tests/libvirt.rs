//! libvirt end to end: `contrib/libvirt/vhost-user-9p-domain.xml`, filled
//! in with the VM rig's QEMU, kernel and initramfs, is validated with
//! `virt-xml-validate`, defined and started with `virsh` through Debian's
//! libvirt daemon (bookworm's 9.0, driving the rig's QEMU from
//! trixie-backports); the guest mounts the share through this daemon,
//! reads the host's file and writes one the host then reads; `virsh
//! destroy` and `undefine`, and the daemon exits 0 once QEMU is gone.
//!
//! systemd is not PID 1 on these machines, so the test runs its own
//! `libvirtd` in the foreground, in a private mount namespace (`unshare`)
//! whose `/etc/libvirt`, `/run/libvirt`, `/var/lib/libvirt`,
//! `/var/cache/libvirt` and `/var/log/libvirt` are directories of the test:
//! no file of the host's libvirt is read or changed, and a libvirt the host
//! may run is not disturbed. Its `qemu.conf` runs QEMU as root without
//! security labels, cgroups or a mount namespace of its own (the container
//! has no systemd to place it and its socket is root's), and its
//! `libvirtd.conf` puts the daemon's sockets in the test's directory, where
//! `virsh -c 'qemu:///system?socket=...'` reaches them. Nothing is
//! skipped: a libvirt that is missing or cannot run fails the test, saying
//! why (`ci/test.sh` installs it).

mod checks;
mod common;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::proc::{poll_until, wait_for_within};
use common::Daemon;

const DOMAIN: &str = "vhost-user-9p-test";
const TAG: &str = "vu9p";

/// The guest's /run.sh (the rig's `/init` mounts the share on /mnt first,
/// with the tag the kernel command line gives): reads the host's file,
/// writes its own, says so on the serial console, then waits to be
/// destroyed.
const GUEST_SCRIPT: &str = r#"set -e
grep " /mnt 9p " /proc/mounts | sed 's/^/GUEST-MOUNT /'
echo "GUEST-READ $(cat /mnt/from-host.txt)"
echo "$VU9P_TOKEN" > /mnt/from-guest.txt
echo GUEST-WROTE
exec sleep 100000
"#;

/// The libvirt daemon of this test, in its own mount namespace, with its
/// configuration, sockets and state under `dir`; stopped when dropped,
/// after destroying the test's domain.
struct Libvirtd {
    child: Child,
    dir: PathBuf,
    uri: String,
}

impl Libvirtd {
    fn start(dir: &Path) -> Libvirtd {
        for tool in [
            "/usr/sbin/libvirtd",
            "/usr/bin/virsh",
            "/usr/bin/virt-xml-validate",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's libvirt-daemon, libvirt-daemon-driver-qemu \
                 and libvirt-clients (ci/test.sh does)"
            );
        }
        let sock = dir.join("sock");
        for sub in ["etc", "run", "lib", "cache", "log", "sock"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::write(
            dir.join("etc/libvirtd.conf"),
            format!(
                "unix_sock_dir = \"{}\"\n\
                 unix_sock_rw_perms = \"0700\"\n\
                 unix_sock_ro_perms = \"0700\"\n\
                 auth_unix_rw = \"none\"\n\
                 auth_unix_ro = \"none\"\n\
                 log_outputs = \"3:stderr\"\n",
                sock.display()
            ),
        )
        .unwrap();
        fs::write(
            dir.join("etc/qemu.conf"),
            "user = \"root\"\n\
             group = \"root\"\n\
             dynamic_ownership = 0\n\
             remember_owner = 0\n\
             security_driver = \"none\"\n\
             cgroup_controllers = [ ]\n\
             namespaces = [ ]\n\
             stdio_handler = \"file\"\n",
        )
        .unwrap();
        // Each of libvirt's directories becomes one of the test's, in the
        // namespace only.
        let binds = [
            ("etc", "/etc/libvirt"),
            ("run", "/run/libvirt"),
            ("lib", "/var/lib/libvirt"),
            ("cache", "/var/cache/libvirt"),
            ("log", "/var/log/libvirt"),
        ]
        .iter()
        .map(|(own, theirs)| {
            format!(
                "mkdir -p {theirs} && mount --bind '{}' {theirs}\n",
                dir.join(own).display()
            )
        })
        .collect::<String>();
        let ids = qemu_ids_in_namespace(dir);
        let script = format!(
            "{binds}{ids}exec /usr/sbin/libvirtd --pid-file '{}'\n",
            dir.join("libvirtd.pid").display()
        );
        let log = fs::File::create(dir.join("libvirtd.log")).unwrap();
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-ec", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl(2) in the child before exec; no allocation.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("spawn unshare (util-linux) for libvirtd");
        let mut libvirtd = Libvirtd {
            child,
            dir: dir.to_path_buf(),
            uri: format!(
                "qemu:///system?socket={}",
                sock.join("libvirt-sock").display()
            ),
        };
        let socket = sock.join("libvirt-sock");
        wait_for_within("libvirtd's socket", Duration::from_secs(60), || {
            if let Some(status) = libvirtd.child.try_wait().unwrap() {
                panic!(
                    "libvirtd exited ({status}) before listening; its output:\n{}",
                    libvirtd.log()
                );
            }
            fs::metadata(&socket)
                .is_ok_and(|m| m.file_type().is_socket())
                .then_some(())
        });
        libvirtd
    }

    fn log(&self) -> String {
        let mut text = fs::read_to_string(self.dir.join("libvirtd.log")).unwrap_or_default();
        if let Ok(qemu) = fs::read_to_string(self.dir.join(format!("log/qemu/{DOMAIN}.log"))) {
            text.push_str(&format!("\n--- QEMU's log (libvirt's):\n{qemu}"));
        }
        text
    }

    fn virsh_output(&self, args: &[&str]) -> Output {
        Command::new("virsh")
            .arg("-c")
            .arg(&self.uri)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run virsh")
    }

    /// `virsh ARGS`, which must succeed; its stdout.
    #[track_caller]
    fn virsh(&self, args: &[&str]) -> String {
        let out = self.virsh_output(args);
        assert!(
            out.status.success(),
            "virsh {} failed ({}): {}\nlibvirtd's output:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// libvirtd's QEMU driver looks up its built-in user and group
/// (`libvirt-qemu`, made by Debian's libvirt-daemon-system, which the test
/// does not install) before it reads qemu.conf, and refuses to start without
/// them. Where they are missing, copies of /etc/passwd and /etc/group with
/// them added are bound over the originals in libvirtd's namespace only:
/// the commands that do it.
fn qemu_ids_in_namespace(dir: &Path) -> String {
    let mut binds = String::new();
    for (file, line) in [
        (
            "passwd",
            "libvirt-qemu:x:64055:64055:libvirt qemu (test):/var/lib/libvirt:/usr/sbin/nologin",
        ),
        ("group", "libvirt-qemu:x:64055:"),
    ] {
        let system = fs::read_to_string(format!("/etc/{file}")).unwrap();
        if system.lines().any(|l| l.starts_with("libvirt-qemu:")) {
            continue;
        }
        let copy = dir.join(format!("etc-{file}"));
        fs::write(&copy, format!("{}{line}\n", ensure_newline(&system))).unwrap();
        binds += &format!("mount --bind '{}' /etc/{file}\n", copy.display());
    }
    binds
}

fn ensure_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // QEMU is not libvirtd's child: a domain left running would outlive it.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.virsh_output(&["destroy", DOMAIN]);
            // SAFETY: kill(2) of the process this test started, by its pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            if !poll_until(Duration::from_secs(20), || {
                self.child.try_wait().ok().flatten().is_some()
            }) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// The rig's initramfs with the guest script appended as `/run.sh` (an
/// uncompressed newc archive after the compressed one: the kernel unpacks
/// each in turn, the later one over the earlier).
fn initrd_with_script(base: &Path, script: &str) -> Vec<u8> {
    let mut out = fs::read(base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
    fn pad(out: &mut Vec<u8>) {
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    pad(&mut out);
    let mut entry = |ino: u32, name: &str, mode: u32, data: &[u8]| {
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for field in fields {
            out.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad(&mut out);
        out.extend_from_slice(data);
        pad(&mut out);
    };
    entry(1, "run.sh", 0o100755, script.as_bytes());
    entry(0, "TRAILER!!!", 0, b"");
    out
}

/// The rig's cache (vm-images/build.sh).
fn rig_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("VU9P_CACHE") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    base.join("vhost-user-9p")
}

/// `contrib/libvirt/vhost-user-9p-domain.xml` with each `@NAME@` replaced.
fn domain_xml(values: &[(&str, String)]) -> String {
    let path = checks::repo().join("contrib/libvirt/vhost-user-9p-domain.xml");
    let mut xml = fs::read_to_string(&path).unwrap();
    for (name, value) in values {
        let key = format!("@{name}@");
        assert!(xml.contains(&key), "{} has no {key}", path.display());
        xml = xml.replace(&key, value);
    }
    // Only the comment may still name placeholders.
    let body = &xml[xml.find("-->").expect("the template's comment") + 3..];
    assert!(!body.contains('@'), "a placeholder is left:\n{body}");
    xml
}

#[test]
fn a_libvirt_domain_mounts_the_share_and_the_daemon_exits_0() {
    checks::build_rig(&[]);
    let t0 = Instant::now();
    let top = tempfile::tempdir().unwrap();
    let share = top.path().join("share");
    fs::create_dir(&share).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let host_token = format!("host-{}-{nanos}", std::process::id());
    fs::write(share.join("from-host.txt"), format!("{host_token}\n")).unwrap();
    let guest_token = format!("guest-{}", std::process::id());

    let cache = rig_cache();
    let initrd = top.path().join("initrd.img");
    fs::write(
        &initrd,
        initrd_with_script(&cache.join("guest/initrd.gz"), GUEST_SCRIPT),
    )
    .unwrap();
    let serial = top.path().join("serial.log");
    let socket = top.path().join("vu9p.sock");

    let mut daemon = Daemon::builder(&share)
        .socket_path(&socket)
        .tag(TAG)
        .log_level("info")
        .log_to_file()
        .start();

    let xml = domain_xml(&[
        ("NAME", DOMAIN.into()),
        (
            "EMULATOR",
            cache.join("bin/qemu-system-x86_64").display().to_string(),
        ),
        ("KERNEL", cache.join("guest/vmlinux").display().to_string()),
        ("INITRD", initrd.display().to_string()),
        (
            "CMDLINE",
            format!(
                "console=ttyS0 quiet loglevel=1 panic=-1 VU9P_TAG={TAG} VU9P_TOKEN={guest_token}"
            ),
        ),
        ("SERIAL_LOG", serial.display().to_string()),
        ("SOCKET", socket.display().to_string()),
        ("CONFIG_SIZE", (2 + TAG.len()).to_string()),
    ]);
    let xml_path = top.path().join("domain.xml");
    fs::write(&xml_path, &xml).unwrap();
    let validate = Command::new("virt-xml-validate")
        .arg(&xml_path)
        .output()
        .expect("run virt-xml-validate (libvirt-clients; it needs xmllint from libxml2-utils)");
    assert!(
        validate.status.success(),
        "virt-xml-validate refuses the domain ({}):\n{}{}\n{xml}",
        validate.status,
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );

    let libvirtd = Libvirtd::start(&top.path().join("libvirt"));
    let t_libvirtd = t0.elapsed();
    libvirtd.virsh(&["define", xml_path.to_str().unwrap()]);
    libvirtd.virsh(&["start", DOMAIN]);
    let t_started = t0.elapsed();

    // The guest script's marker on the serial console (or the rig's end
    // marker, when the script failed or the guest could not mount).
    let console = wait_for_within(
        "the guest's GUEST-WROTE on the serial console",
        Duration::from_secs(240),
        || {
            let text = fs::read_to_string(&serial).unwrap_or_default();
            if text.contains("VU9P-EXIT-STATUS=") && !text.contains("GUEST-WROTE") {
                panic!(
                    "the guest script failed; serial console:\n{text}\ndaemon:\n{}\n{}",
                    daemon.log_text(),
                    libvirtd.log()
                );
            }
            text.contains("GUEST-WROTE").then_some(text)
        },
    );
    let t_guest = t0.elapsed();
    assert!(
        console.contains(&format!("GUEST-MOUNT {TAG} /mnt 9p ")),
        "the share is not mounted over 9P from {TAG}:\n{console}"
    );
    assert!(
        console.contains(&format!("GUEST-READ {host_token}")),
        "the guest did not read the host's file:\n{console}"
    );
    assert_eq!(
        fs::read_to_string(share.join("from-guest.txt")).unwrap(),
        format!("{guest_token}\n"),
        "the guest's file on the host"
    );
    assert_eq!(libvirtd.virsh(&["domstate", DOMAIN]).trim(), "running");

    libvirtd.virsh(&["destroy", DOMAIN]);
    libvirtd.virsh(&["undefine", DOMAIN]);
    let status = daemon.wait();
    assert!(
        status.success(),
        "the daemon exited with {status} after QEMU disconnected:\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("VMM connected"), "{log}");
    assert!(
        libvirtd
            .virsh(&["list", "--all", "--name"])
            .trim()
            .is_empty(),
        "a domain is left defined"
    );
    eprintln!(
        "libvirt: libvirtd up at {:.1} s, domain started at {:.1} s, guest wrote at {:.1} s, \
         done at {:.1} s",
        t_libvirtd.as_secs_f64(),
        t_started.as_secs_f64(),
        t_guest.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
