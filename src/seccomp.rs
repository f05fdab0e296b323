//! The system calls the daemon may make once it serves (`--seccomp`): one
//! reviewed allowlist, installed on every thread (TSYNC) after the sandbox
//! is set up and before any client's input is read. A call outside it
//! kills the process (`kill`), is logged by the kernel and allowed (`log`:
//! "audit: type=1326 ... syscall=N" in the kernel log, `dmesg`), or raises
//! SIGSYS (`trap`).
//!
//! To find a missing call: run the daemon with `--seccomp log` through the
//! workload, then `dmesg | grep 'type=1326'` names each call by number
//! (`ausyscall N`, or the kernel's syscall table, gives its name).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// What happens to a system call outside the allowlist (`--seccomp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Seccomp {
    /// Kill the process.
    Kill,
    /// Allow it, and have the kernel log it.
    Log,
    /// Raise SIGSYS in the calling thread.
    Trap,
    /// No filter.
    None,
}

/// The allowlist, grouped by what needs each call.
const ALLOWED: &[(&str, &[libc::c_long])] = &[
    (
        "memory and threads",
        &[
            libc::SYS_brk,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_mremap,
            libc::SYS_mprotect,
            libc::SYS_madvise,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_set_robust_list,
            libc::SYS_rseq,
            libc::SYS_futex,
            libc::SYS_sched_getaffinity,
            libc::SYS_sched_yield,
            libc::SYS_gettid,
            libc::SYS_getpid,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_sigaltstack,
            libc::SYS_rt_sigaction,
            libc::SYS_rt_sigprocmask,
            libc::SYS_rt_sigreturn,
            libc::SYS_rt_sigtimedwait,
            libc::SYS_rt_sigsuspend,
            libc::SYS_tgkill,
            libc::SYS_restart_syscall,
            libc::SYS_prctl,
            libc::SYS_getrandom,
            libc::SYS_clock_gettime,
            libc::SYS_clock_nanosleep,
            libc::SYS_nanosleep,
            libc::SYS_getrusage,
            libc::SYS_prlimit64,
        ],
    ),
    (
        "descriptors, sockets and the vhost-user protocol",
        &[
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_readv,
            libc::SYS_writev,
            libc::SYS_close,
            libc::SYS_dup,
            libc::SYS_fcntl,
            libc::SYS_ppoll,
            libc::SYS_epoll_create1,
            libc::SYS_epoll_ctl,
            libc::SYS_epoll_pwait,
            libc::SYS_eventfd2,
            libc::SYS_accept4,
            libc::SYS_recvfrom,
            libc::SYS_sendto,
            libc::SYS_recvmsg,
            libc::SYS_sendmsg,
            libc::SYS_getsockopt,
            libc::SYS_getsockname,
            libc::SYS_getpeername,
            libc::SYS_setsockopt,
            libc::SYS_shutdown,
            libc::SYS_memfd_create,
        ],
    ),
    (
        "files of the share",
        &[
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_statx,
            libc::SYS_newfstatat,
            libc::SYS_fstat,
            libc::SYS_statfs,
            libc::SYS_fstatfs,
            libc::SYS_lseek,
            libc::SYS_getdents64,
            libc::SYS_readlinkat,
            libc::SYS_pread64,
            libc::SYS_pwrite64,
            libc::SYS_preadv,
            libc::SYS_pwritev,
            libc::SYS_preadv2,
            libc::SYS_pwritev2,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_sync_file_range,
            libc::SYS_ftruncate,
            libc::SYS_fallocate,
            libc::SYS_utimensat,
            libc::SYS_fchmod,
            libc::SYS_fchmodat,
            libc::SYS_fchown,
            libc::SYS_fchownat,
            libc::SYS_mkdirat,
            libc::SYS_mknodat,
            libc::SYS_symlinkat,
            libc::SYS_linkat,
            libc::SYS_unlinkat,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_faccessat,
            libc::SYS_faccessat2,
            libc::SYS_flock,
            libc::SYS_getxattr,
            libc::SYS_lgetxattr,
            libc::SYS_fgetxattr,
            libc::SYS_setxattr,
            libc::SYS_lsetxattr,
            libc::SYS_fsetxattr,
            libc::SYS_listxattr,
            libc::SYS_llistxattr,
            libc::SYS_flistxattr,
            libc::SYS_removexattr,
            libc::SYS_lremovexattr,
            libc::SYS_fremovexattr,
            libc::SYS_umask,
        ],
    ),
    (
        "acting as a client's user (per thread)",
        &[
            libc::SYS_setfsuid,
            libc::SYS_setfsgid,
            libc::SYS_setgroups,
            libc::SYS_getgroups,
            libc::SYS_geteuid,
            libc::SYS_getegid,
            libc::SYS_getuid,
            libc::SYS_getgid,
            libc::SYS_fchdir,
        ],
    ),
];

/// Calls of the architecture's own that the libraries use.
/// (pause: Rust's std parks a second thread that calls exit while another
/// is exiting in pause(2).)
#[cfg(target_arch = "x86_64")]
const ARCH_ALLOWED: &[libc::c_long] = &[libc::SYS_poll, libc::SYS_epoll_wait, libc::SYS_pause];
#[cfg(not(target_arch = "x86_64"))]
const ARCH_ALLOWED: &[libc::c_long] = &[];

/// The ioctl requests allowed (any other kills, as a call outside the
/// list does): what std and the libraries make on sockets and the log's
/// terminal. Never a terminal's TIOCSTI or TIOCSCTTY, nor a device's.
const IOCTLS: &[libc::c_ulong] = &[libc::FIONBIO, libc::FIOCLEX, libc::FIONCLEX, libc::TCGETS];

fn allowed() -> impl Iterator<Item = libc::c_long> {
    ALLOWED
        .iter()
        .flat_map(|(_, calls)| calls.iter())
        .chain(ARCH_ALLOWED)
        .copied()
}

/// How many system calls the allowlist has (with unshare(CLONE_FS) and
/// ioctl, whose arguments are filtered).
pub fn allowed_count() -> usize {
    allowed().count() + 2
}

impl Seccomp {
    /// Installs the filter on every thread of the process.
    pub fn install(self) -> Result<(), String> {
        let mismatch = match self {
            Seccomp::None => return Ok(()),
            Seccomp::Kill => SeccompAction::KillProcess,
            Seccomp::Log => SeccompAction::Log,
            Seccomp::Trap => SeccompAction::Trap,
        };
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
            allowed().map(|call| (call, Vec::new())).collect();
        // unshare only to give a thread a working directory of its own
        // (host::in_proc_dir), never new namespaces.
        let clone_fs = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::Eq,
            libc::CLONE_FS as u64,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| format!("seccomp: cannot build the filter: {e}"))?;
        rules.insert(libc::SYS_unshare, vec![clone_fs]);
        let ioctls = IOCTLS
            .iter()
            .map(|&request| {
                // The kernel reads the request as 32 bits.
                SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request)
                    .and_then(|c| SeccompRule::new(vec![c]))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("seccomp: cannot build the filter: {e}"))?;
        rules.insert(libc::SYS_ioctl, ioctls);
        let arch = TargetArch::try_from(std::env::consts::ARCH)
            .map_err(|e| format!("seccomp: {e}; use --seccomp none"))?;
        let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch)
            .map_err(|e| format!("seccomp: cannot build the filter: {e}"))?;
        let program: BpfProgram = filter
            .try_into()
            .map_err(|e| format!("seccomp: cannot build the filter: {e}"))?;
        seccompiler::apply_filter_all_threads(&program)
            .map_err(|e| format!("seccomp: cannot install the filter: {e}; use --seccomp none"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowlist_names_each_call_once_and_none_that_escapes() {
        let calls: Vec<libc::c_long> = allowed().collect();
        let unique: std::collections::BTreeSet<_> = calls.iter().collect();
        assert_eq!(unique.len(), calls.len(), "a call listed twice");
        for forbidden in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_mount,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_capset,
            libc::SYS_setuid,
            libc::SYS_setresuid,
            libc::SYS_open_by_handle_at,
            libc::SYS_ioctl,
            libc::SYS_process_vm_writev,
            libc::SYS_kexec_load,
            libc::SYS_init_module,
            libc::SYS_bpf,
        ] {
            assert!(!unique.contains(&forbidden), "syscall {forbidden} allowed");
        }
    }
}
