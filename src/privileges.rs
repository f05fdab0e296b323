//! The privileges the daemon keeps once confined: the capabilities that
//! file serving needs (virtiofsd's set), no supplementary groups
//! (CVE-2022-0358: files the guest makes in a setgid directory must not
//! get a group the daemon only had by inheritance), and no_new_privs.

use std::io;

/// Capabilities by name (capability(7)), in number order.
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A set of capabilities, one bit per number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps(pub u64);

impl Caps {
    /// What serving a share as root needs: changing owners and modes of
    /// any file, acting as a socket session's user (setfsuid, setgroups);
    /// with `devices` (passthrough, none) also making device nodes and
    /// setting file capabilities on the host files.
    pub fn for_serving(devices: bool) -> Caps {
        let mut names = vec![
            "chown",
            "dac_override",
            "fowner",
            "fsetid",
            "setgid",
            "setuid",
        ];
        if devices {
            names.extend(["mknod", "setfcap"]);
        }
        let mut caps = Caps(0);
        for name in names {
            caps.0 |= 1 << number(name).expect("a known capability");
        }
        caps
    }

    /// Applies `--modcaps`: `+name` adds, `-name` removes, separated by
    /// `:` (virtiofsd's syntax; `cap_` prefixes and upper case accepted).
    pub fn modify(self, spec: &str) -> Result<Caps, String> {
        let mut caps = self;
        for item in spec.split(':').filter(|s| !s.is_empty()) {
            let (add, name) = match item.split_at(1) {
                ("+", name) => (true, name),
                ("-", name) => (false, name),
                _ => return Err(format!("{item}: expected +NAME or -NAME")),
            };
            let n = number(name).ok_or_else(|| format!("{name}: no such capability"))?;
            if add {
                caps.0 |= 1 << n;
            } else {
                caps.0 &= !(1 << n);
            }
        }
        Ok(caps)
    }

    /// The names, lower case, in number order.
    pub fn names(self) -> Vec<&'static str> {
        (0..NAMES.len())
            .filter(|&n| self.0 & (1 << n) != 0)
            .map(|n| NAMES[n])
            .collect()
    }
}

fn number(name: &str) -> Option<usize> {
    let name = name.to_ascii_lowercase();
    let name = name.strip_prefix("cap_").unwrap_or(&name);
    NAMES.iter().position(|&n| n == name)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Keeps only `keep` among the calling thread's capabilities (effective
/// and permitted), none inheritable or ambient, and drops the rest from
/// the bounding set. Threads started afterwards inherit this.
pub fn keep_only(keep: Caps) -> io::Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(NAMES.len() as u32 - 1);
    for cap in 0..=last {
        if keep.0 & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            // EINVAL: a capability this kernel does not know.
            if ret < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } as libc::c_long)?;
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: keep.0 as u32,
            permitted: keep.0 as u32,
            inheritable: 0,
        },
        CapData {
            effective: (keep.0 >> 32) as u32,
            permitted: (keep.0 >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: capset with a version 3 header and two data records.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })
}

/// Leaves the supplementary groups the daemon was started with (root
/// only: others cannot, and their groups are theirs anyway).
pub fn drop_supplementary_groups() -> io::Result<()> {
    // SAFETY: setgroups with an empty list (the raw call: glibc's wrapper
    // would do the same on every thread, and there is one).
    check(unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) })
}

/// No execve can give the process more privileges than it has (set
/// before the seccomp filter, which requires it when unprivileged).
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as libc::c_long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modcaps_adds_and_removes_by_name() {
        let base = Caps::for_serving(true);
        assert_eq!(
            base.names(),
            [
                "chown",
                "dac_override",
                "fowner",
                "fsetid",
                "setgid",
                "setuid",
                "mknod",
                "setfcap"
            ]
        );
        let modified = base.modify("+sys_admin:-mknod:-CAP_SETFCAP").unwrap();
        assert_eq!(
            modified.names(),
            [
                "chown",
                "dac_override",
                "fowner",
                "fsetid",
                "setgid",
                "setuid",
                "sys_admin"
            ]
        );
        assert!(base.modify("+nonsense").is_err());
        assert!(base.modify("sys_admin").is_err());
        assert_eq!(base.modify("").unwrap(), base);
        assert_eq!(Caps::for_serving(false).names().len(), 6);
    }
}
