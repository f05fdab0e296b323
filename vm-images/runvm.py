#!/usr/bin/env python3
"""Boot one test guest with a shared directory, run one script in it, report.

The guest (built by vm-images/build.sh) mounts the share on /mnt over 9P and
runs the script with busybox sh (cwd /).  Its output is printed as it arrives,
and runvm.py exits with the script's exit status, or with 125 when the rig
itself failed (QEMU died, timeout, no end marker, daemon failed).

Servers:
  vhost     (default) the vhost-user-9p daemon, through QEMU's generic
            vhost-user-test-device-pci (virtio-id 9)
  qemu      QEMU's built-in virtio-9p-pci server (no daemon)
  virtiofs  virtiofsd (not 9P: for comparisons) through vhost-user-fs-pci; the
            guest mounts the share with mount -t virtiofs

Guest protocol: /init prints a line VU9P-SCRIPT-START, then the script's
output, then VU9P-EXIT-STATUS=N.  A script line "VU9P-CPU-SAMPLE LABEL" is
printed as "SERVER-CPU LABEL SECONDS" and "QEMU-CPU LABEL SECONDS": the
CPU seconds the server (the daemon's processes; QEMU's built-in 9p: QEMU outside
its vCPU threads) and QEMU outside its vCPU threads have used so far.
Settings reach /init through /vu9p.env (in a small cpio archive appended to
the base initrd together with /run.sh).
"""

import argparse
import collections
import ctypes
import gzip
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
START_MARKER = "VU9P-SCRIPT-START"
EXIT_RE = re.compile(r"VU9P-EXIT-STATUS=(\d+)\s*$")
ANSI_RE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])")
RIG_ERROR = 125
TMP_PREFIX = "vu9p-run-"
PROG = "runvm"


class RigError(Exception):
    """The rig failed (not the guest script)."""


class Interrupted(Exception):
    pass


def say(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def cache_dir():
    env = os.environ
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return env.get("VU9P_CACHE") or os.path.join(base, "vhost-user-9p")


# Guest kernels: --kernel VERSION -> the directory under the cache with its vmlinux and
# initrd.gz, and the build.sh arguments that build it.
GUEST_KERNELS = {"6.1": ("guest", ""), "6.12": ("guest-6.12", " --kernel 6.12")}


def guest_dir(a):
    return GUEST_KERNELS[a.kernel][0]


def default_daemon():
    for profile in ("release", "debug"):
        p = os.path.join(REPO, "target", profile, "vhost-user-9p")
        if os.access(p, os.X_OK):
            return p
    return os.path.join(REPO, "target", "release", "vhost-user-9p")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="runvm.py",
        description="Boot a TCG guest sharing DIR over 9P, run one script in it, "
        "exit with the script's status (125: the rig failed).",
        epilog="Values that start with '-' need the '=' form, e.g. --daemon-arg=--readonly. "
        "Environment: VU9P_CACHE (cache dir made by build.sh).",
    )
    p.add_argument("--shared-dir", required=True, metavar="DIR", help="host directory to share")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--guest-script", metavar="FILE", help="script run by the guest's sh (cwd /, share on /mnt)")
    what.add_argument("--command", metavar="CMD", help="shell command to run instead of a script file")
    p.add_argument("--server", choices=["vhost", "qemu", "virtiofs"], default="vhost",
                   help="vhost: the vhost-user-9p daemon (default); qemu: QEMU's built-in 9p; "
                   "virtiofs: virtiofsd through vhost-user-fs-pci (mount -t virtiofs)")
    p.add_argument("--daemon", metavar="PATH", help="daemon binary (default: target/release or target/debug vhost-user-9p)")
    p.add_argument("--daemon-arg", metavar="ARG", action="append", default=[],
                   help="extra argument for the daemon, or for virtiofsd with --server virtiofs (repeatable)")
    p.add_argument("--virtiofsd", metavar="PATH", help="virtiofsd binary (default: $CACHE/bin/virtiofsd)")
    p.add_argument("--virtiofs-cache", choices=["never", "auto", "always", "metadata"], default="auto",
                   help="virtiofsd --cache policy (--server virtiofs; default auto)")
    p.add_argument("--daemon-user", metavar="USER",
                   help="run the daemon as this user (name or uid; its primary group, no supplementary groups); "
                   "needs root. The shared directory must be usable by that user")
    p.add_argument("--qemu-security-model", default="none", metavar="MODEL",
                   choices=["none", "passthrough", "mapped-xattr", "mapped-file"],
                   help="security_model of QEMU's built-in 9p server (--server qemu; default none)")
    p.add_argument("--tag", default="vu9p", metavar="TAG", help="mount tag (default vu9p)")
    p.add_argument("--msize", type=int, default=512000, metavar="BYTES", help="9p msize (default 512000)")
    p.add_argument("--version", dest="p9version", default="9p2000.L", metavar="VERSION", help="9p protocol version (default 9p2000.L)")
    p.add_argument("--cache", default="none", metavar="MODE", help="9p cache mode (default none)")
    p.add_argument("--mount-opts", default="", metavar="EXTRA",
                   help="extra comma-separated mount options (9p, or virtiofs with --server virtiofs)")
    p.add_argument("--no-mount", action="store_true", help="do not mount the share (the script mounts it itself)")
    p.add_argument("--kernel", choices=sorted(GUEST_KERNELS), default="6.1",
                   help="guest kernel: 6.1 (bookworm, default) or 6.12 (trixie; build it with "
                   "vm-images/build.sh --kernel 6.12)")
    p.add_argument("--mem", default="1G", metavar="SIZE", help="guest memory (default 1G)")
    p.add_argument("--smp", type=int, default=2, metavar="N", help="guest CPUs (default 2)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="seconds before the VM is killed (default 600; 3600 with --interactive)")
    p.add_argument("--interactive", action="store_true", help="shell on the guest's serial console instead of a script")
    p.add_argument("--env", metavar="KEY=VALUE", action="append", default=[], help="environment for the guest script (repeatable)")
    p.add_argument("--append", default="", metavar="ARGS", help="extra kernel command line arguments")
    p.add_argument("--kernel-loglevel", type=int, default=1, metavar="N",
                   help="console loglevel of the guest kernel (default 1: emergencies only; 7: everything)")
    p.add_argument("--qemu", metavar="PATH", help="QEMU binary (default: $CACHE/bin/qemu-system-x86_64)")
    p.add_argument("--qemu-arg", metavar="ARG", action="append", default=[], help="extra QEMU argument (repeatable)")
    p.add_argument("--daemon-grace", type=float, default=5.0, metavar="SECONDS",
                   help="seconds the daemon gets to exit by itself after QEMU is gone (default 5)")
    p.add_argument("--socket-timeout", type=float, default=10.0, metavar="SECONDS", help="seconds to wait for the daemon's socket (default 10)")
    p.add_argument("--serial-log", metavar="FILE", help="save the whole serial console output to FILE")
    p.add_argument("--daemon-log", metavar="FILE", help="save the daemon's stdout/stderr to FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="show commands, boot messages, QEMU and daemon output")
    a = p.parse_args(argv)

    if not a.interactive and not (a.guest_script or a.command):
        p.error("one of --guest-script, --command or --interactive is required")
    if a.interactive and (a.guest_script or a.command):
        p.error("--interactive runs a shell, not a script")
    if not os.path.isdir(a.shared_dir):
        p.error(f"--shared-dir {a.shared_dir}: not a directory")
    a.shared_dir = os.path.abspath(a.shared_dir)
    if not re.fullmatch(r"[A-Za-z0-9_.:+-]{1,254}", a.tag):
        p.error("--tag: 1..254 characters from [A-Za-z0-9_.:+-]")
    if a.server == "virtiofs" and len(a.tag) > 36:
        p.error("--tag: virtiofs tags have at most 36 bytes")
    for kv in a.env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", kv, re.S):
            p.error(f"--env {kv!r}: expected KEY=VALUE")
    if a.timeout is None:
        a.timeout = 3600.0 if a.interactive else 600.0
    a.daemon_ids = None
    if a.daemon_user is not None:
        if a.server == "qemu":
            p.error("--daemon-user needs a daemon (--server vhost or virtiofs)")
        import pwd
        try:
            pw = pwd.getpwuid(int(a.daemon_user)) if a.daemon_user.isdigit() else pwd.getpwnam(a.daemon_user)
        except (KeyError, ValueError):
            p.error(f"--daemon-user {a.daemon_user}: no such user")
        if os.geteuid() != 0 and pw.pw_uid != os.geteuid():
            p.error("--daemon-user needs root")
        a.daemon_ids = (pw.pw_uid, pw.pw_gid)
    return a


# --------------------------------------------------------------- initrd

def cpio_newc(files):
    """An uncompressed newc cpio archive of (name, mode, bytes) regular files."""
    out = bytearray()

    def entry(ino, name, mode, data):
        nb = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0)
        out.extend(("070701" + "".join(f"{v:08X}" for v in fields)).encode() + nb)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for i, (name, mode, data) in enumerate(files, 1):
        entry(i, name, 0o100000 | mode, data)
    entry(0, "TRAILER!!!", 0, b"")
    return bytes(out)


def guest_env(a):
    env = {
        "VU9P_TAG": a.tag,
        "VU9P_VERSION": a.p9version,
        "VU9P_MSIZE": str(a.msize),
        "VU9P_CACHE_MODE": a.cache,
        "VU9P_MOUNT_OPTS": a.mount_opts,
        "VU9P_NO_MOUNT": "1" if a.no_mount else "",
        "VU9P_SERVER": a.server,
        "VU9P_FSTYPE": "virtiofs" if a.server == "virtiofs" else "9p",
        "VU9P_MNT": "/mnt",
    }
    if a.interactive:
        env["VU9P_INTERACTIVE"] = "1"
        env["TERM"] = os.environ.get("TERM", "linux")
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
            env["VU9P_ROWS"], env["VU9P_COLS"] = str(size.lines), str(size.columns)
        except OSError:
            pass
    for kv in a.env:
        k, v = kv.split("=", 1)
        env[k] = v
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def make_initrd(a, base, tmp):
    if a.guest_script:
        with open(a.guest_script, "rb") as f:
            script = f.read()
    elif a.command:
        script = (a.command + "\n").encode()
    else:
        script = b""
    extra = cpio_newc([("run.sh", 0o755, script), ("vu9p.env", 0o644, guest_env(a).encode())])
    path = os.path.join(tmp, "initrd.img")
    with open(base, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.write(gzip.compress(extra, compresslevel=1))
    return path


# --------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the runner


def _as_user(uid, gid):
    """A preexec function: drop to uid:gid (no supplementary groups), then die with the
    runner (a change of credentials clears PR_SET_PDEATHSIG, so it is set last)."""
    def preexec():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        _die_with_parent()
    return preexec


def has_exited(proc):
    """Whether proc has ended, without reaping it (its CPU times are kept when it is)."""
    if proc.returncode is not None:
        return True
    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def wait_keeping_cpu(proc, timeout):
    """proc.wait(timeout) through wait4, keeping the CPU seconds (user, system) the process and
    the children it waited for used in proc.cpu (the daemon's serving child is one)."""
    deadline = time.monotonic() + timeout
    while proc.returncode is None:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            proc.cpu = (usage.ru_utime, usage.ru_stime)
            break
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.02)
    return proc.returncode


CPU_SAMPLE = "VU9P-CPU-SAMPLE"  # a guest line "VU9P-CPU-SAMPLE LABEL": see CpuMeter
VCPU_THREAD = re.compile(r"CPU \d+/(TCG|KVM)")


class CpuMeter:
    """CPU seconds a process tree has used since the meter started watching it, user and
    system, all threads (with skip_vcpus, without QEMU's vCPU threads: what is left of QEMU
    is its main loop and workers, where its built-in 9p server runs).  Each thread's figure
    is its schedstat run time (nanoseconds), kept when the thread is gone: sample() now and
    then, so threads that come and go (QEMU's thread pool) are counted up to their end."""

    def __init__(self, root, skip_vcpus=False):
        self.root = root
        self.skip_vcpus = skip_vcpus
        self.threads = {}  # (pid, tid, start time) -> ns

    def sample(self):
        todo = [self.root]
        while todo:
            pid = todo.pop()
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                task = f"/proc/{pid}/task/{tid}"
                try:
                    with open(f"{task}/children") as f:
                        todo += [int(c) for c in f.read().split()]
                    if self.skip_vcpus:
                        with open(f"{task}/comm") as f:
                            if VCPU_THREAD.fullmatch(f.read().strip()):
                                continue
                    with open(f"{task}/stat") as f:
                        stat = f.read()
                    with open(f"{task}/schedstat") as f:
                        ns = int(f.read().split()[0])
                except OSError:
                    continue
                started = stat[stat.rindex(")") + 2:].split()[19]  # (a tid may be reused)
                self.threads[(pid, tid, started)] = ns
        return sum(self.threads.values()) / 1e9


def stop(proc, name, grace, verbose=False):
    """Wait up to grace seconds, then SIGTERM, then SIGKILL.  Returns how it ended."""
    if proc is None:
        return None
    for sig, wait in ((None, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if sig is not None and proc.returncode is None:
            if verbose or sig == signal.SIGKILL:
                say(f"sending {sig.name} to {name} (pid {proc.pid})")
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            wait_keeping_cpu(proc, wait)
            return sig
        except subprocess.TimeoutExpired:
            continue
    return signal.SIGKILL


def sweep_stale_tmp():
    """Remove temp dirs left by runners that were killed with SIGKILL."""
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        if not name.startswith(TMP_PREFIX):
            continue
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
            with open(os.path.join(path, "runner.pid")) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            continue  # not ours to judge
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"runvm" in f.read():
                    continue  # its runner is alive
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)


def tail_file(path, n=20):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    return lines[-n:]


def start_daemon(a, tmp):
    """Start the vhost-user backend (vhost-user-9p, or virtiofsd with --server virtiofs) and
    wait for its socket."""
    if a.server == "virtiofs":
        daemon = os.path.abspath(a.virtiofsd or os.path.join(cache_dir(), "bin", "virtiofsd"))
        if not os.access(daemon, os.X_OK):
            raise RigError(f"virtiofsd {daemon} not found (run vm-images/build.sh, or pass --virtiofsd)")
    else:
        daemon = os.path.abspath(a.daemon or default_daemon())
        if not os.access(daemon, os.X_OK):
            raise RigError(f"daemon {daemon} not found (build it with 'cargo build --release', or pass --daemon)")
    sock = os.path.join(tmp, "vu9p.sock")
    preexec = _die_with_parent
    if a.daemon_ids is not None:
        # The runner's temp dir is private: the daemon gets a directory of its own for the socket.
        uid, gid = a.daemon_ids
        sockdir = os.path.join(tmp, "daemon")
        os.mkdir(sockdir, 0o700)
        os.chown(sockdir, uid, gid)
        os.chmod(tmp, 0o711)
        sock = os.path.join(sockdir, "vu9p.sock")
        preexec = _as_user(uid, gid)
    cmd = [daemon, "--socket-path", sock, "--shared-dir", a.shared_dir]
    if a.server == "virtiofs":
        cmd += ["--cache", a.virtiofs_cache]  # (the tag is the QEMU device's)
    else:
        cmd += ["--tag", a.tag]
    cmd += a.daemon_arg
    if a.verbose:
        who = f" (as uid {a.daemon_ids[0]} gid {a.daemon_ids[1]})" if a.daemon_ids else ""
        say("daemon" + who + ": " + shlex.join(cmd))
    log = open(os.path.join(tmp, "daemon.log"), "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=preexec)
    log.close()
    deadline = time.monotonic() + a.socket_timeout
    while not os.path.exists(sock):
        if proc.poll() is not None:
            raise RigError(f"the daemon exited with status {proc.returncode} before creating its socket",
                           proc)
        if time.monotonic() > deadline:
            raise RigError(f"the daemon did not create {sock} within {a.socket_timeout:g} s", proc)
        time.sleep(0.02)
    return proc, sock


def qemu_command(a, tmp, initrd, sock):
    cache = cache_dir()
    qemu = a.qemu or os.path.join(cache, "bin", "qemu-system-x86_64")
    vmlinux = os.path.join(cache, guest_dir(a), "vmlinux")
    append = f"console=ttyS0 quiet loglevel={a.kernel_loglevel} panic=-1 {a.append}".strip()
    console = "stdio,id=con,signal=off" + (",mux=on" if a.interactive else "")
    cmd = [
        qemu, "-display", "none", "-nodefaults", "-no-reboot",
        "-name", "vu9p,debug-threads=on",  # thread names: VU9P-CPU-SAMPLE tells vCPUs apart
        "-object", f"memory-backend-memfd,id=mem,size={a.mem},share=on",
        "-machine", "q35,memory-backend=mem", "-m", a.mem,
        "-accel", "tcg", "-smp", str(a.smp),
        "-kernel", vmlinux, "-initrd", initrd, "-append", append,
        "-chardev", console, "-serial", "chardev:con",
    ]
    if a.interactive:
        cmd += ["-mon", "chardev=con,mode=readline"]
    if a.server == "vhost":
        cmd += [
            "-chardev", f"socket,id=vu9p,path={sock}",
            "-device", "vhost-user-test-device-pci,chardev=vu9p,virtio-id=9,num_vqs=1,"
            f"vq_size=1024,config_size={2 + len(a.tag.encode())}",
        ]
    elif a.server == "virtiofs":
        cmd += [
            "-chardev", f"socket,id=vu9p,path={sock}",
            "-device", f"vhost-user-fs-pci,chardev=vu9p,tag={a.tag},queue-size=1024",
        ]
    elif a.server == "qemu":
        cmd += [
            "-fsdev", f"local,id=fsdev0,path={a.shared_dir},security_model={a.qemu_security_model}",
            "-device", f"virtio-9p-pci,fsdev=fsdev0,mount_tag={a.tag}",
        ]
    return cmd + a.qemu_arg


# --------------------------------------------------------------- the run

class Run:
    def __init__(self, a):
        self.a = a
        self.tmp = None
        self.daemon = None
        self.qemu = None
        self.reader = None
        self.lines = queue.Queue()
        self.serial_tail = collections.deque(maxlen=25)
        self.serial_log = None
        self.tty_state = None
        self.show_daemon_log = False
        self.stdout_ok = True

    def _read_serial(self):
        for raw in iter(self.qemu.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            self.lines.put(ANSI_RE.sub("", line) if "\x1b" in line else line)
        self.lines.put(None)

    def _out(self, line):
        if self.stdout_ok:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except BrokenPipeError:  # e.g. piped into head: keep running the guest
                self.stdout_ok = False
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def _log(self, line):
        self.serial_tail.append(line)
        if self.serial_log:
            self.serial_log.write(line + "\n")

    def execute(self):
        a = self.a
        cache = cache_dir()
        gdir = guest_dir(a)
        for f in ("bin/qemu-system-x86_64", f"{gdir}/vmlinux", f"{gdir}/initrd.gz"):
            if not a.qemu or not f.startswith("bin/"):
                if not os.path.exists(os.path.join(cache, f)):
                    raise RigError(f"{os.path.join(cache, f)} is missing: run "
                                   f"vm-images/build.sh{GUEST_KERNELS[a.kernel][1]} first")
        self.tmp = tempfile.mkdtemp(prefix=TMP_PREFIX)
        with open(os.path.join(self.tmp, "runner.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        initrd = make_initrd(a, os.path.join(cache, gdir, "initrd.gz"), self.tmp)
        if a.serial_log:
            self.serial_log = open(a.serial_log, "w", encoding="utf-8")
        sock = None
        if a.server in ("vhost", "virtiofs"):
            self.daemon, sock = start_daemon(a, self.tmp)
        cmd = qemu_command(a, self.tmp, initrd, sock)
        if a.verbose:
            say("qemu: " + shlex.join(cmd))
        qerr = open(os.path.join(self.tmp, "qemu.err"), "wb")
        t0 = time.monotonic()
        if a.interactive:
            return self._interactive(cmd, qerr, t0)
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=qerr,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        qerr.close()
        self.reader = threading.Thread(target=self._read_serial, daemon=True)
        self.reader.start()
        self.qemu_cpu = CpuMeter(self.qemu.pid, skip_vcpus=True)
        self.daemon_cpu = CpuMeter(self.daemon.pid) if self.daemon is not None else None

        deadline = t0 + a.timeout
        t_start = t_end = None
        status = None
        daemon_gone = None  # when the daemon was seen dead: the guest gets 2 s to finish
        next_check = 0.0
        while status is None:
            now = time.monotonic()
            if now >= deadline:
                raise RigError(f"timeout: no end marker after {a.timeout:g} s; killing QEMU")
            if now >= next_check:
                next_check = now + 0.5
                self._sample_cpu()  # (threads that end are counted up to here)
                if self.daemon is not None and daemon_gone is None and has_exited(self.daemon):
                    daemon_gone = now
                    wait_keeping_cpu(self.daemon, 5.0)
                if daemon_gone is not None and now - daemon_gone > 2.0:
                    raise RigError(f"the daemon exited with status {self.daemon.returncode} "
                                   "while the guest was running")
            try:
                line = self.lines.get(timeout=max(0.01, min(deadline - now, 0.25)))
            except queue.Empty:
                continue
            if line is None:
                rc = self.qemu.wait()
                raise RigError(f"QEMU exited with status {rc} before the end marker"
                               + ("" if t_start else " (the guest script never started)"))
            self._log(line)
            if t_start is None:
                if line.endswith(START_MARKER):
                    t_start = time.monotonic()
                elif a.verbose:
                    print(line, file=sys.stderr, flush=True)
                continue
            if line.startswith(CPU_SAMPLE + " "):
                self._out(self._cpu_sample(line[len(CPU_SAMPLE) + 1:].strip()))
                continue
            m = EXIT_RE.search(line)
            if m:
                t_end = time.monotonic()
                status = int(m.group(1))
                line = line[:m.start()]
                if not line:
                    continue
            self._out(line)

        # The guest syncs, unmounts and powers off: QEMU should exit by itself.
        try:
            rc = self.qemu.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
            say("warning: QEMU did not exit within 30 s of the end marker; killing it")
        self.reader.join(timeout=5)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self._log(line)
                if a.verbose:
                    print(line, file=sys.stderr, flush=True)
        if rc not in (0, None):
            say(f"warning: QEMU exited with status {rc} after the end marker")
            self._show_qemu_err()
        say(f"boot-to-marker {t_end - t0:.2f} s (boot {t_start - t0:.2f} s, script {t_end - t_start:.2f} s), "
            f"guest exit status {status}")
        return status

    def _cpu_sample(self, label):
        """SERVER-CPU LABEL SECONDS: the server's CPU seconds so far (the daemon's process
        tree; for QEMU's built-in 9p, QEMU outside its vCPU threads), then QEMU's outside its
        vCPU threads for every server, as QEMU-CPU LABEL SECONDS."""
        qemu, server = self._sample_cpu()
        return f"SERVER-CPU {label} {server:.6f}\nQEMU-CPU {label} {qemu:.6f}"

    def _sample_cpu(self):
        """(QEMU outside its vCPUs, the server): CPU seconds so far (see CpuMeter)."""
        qemu = self.qemu_cpu.sample()
        return qemu, self.daemon_cpu.sample() if self.daemon_cpu else qemu

    def _interactive(self, cmd, qerr, t0):
        say("interactive guest on the serial console: 'exit' or 'poweroff' ends it (Ctrl-A x kills the VM)")
        if sys.stdin.isatty():
            import termios
            self.tty_state = termios.tcgetattr(sys.stdin.fileno())
        self.qemu = subprocess.Popen(cmd, stderr=qerr, preexec_fn=_die_with_parent)
        qerr.close()
        try:
            rc = self.qemu.wait(timeout=self.a.timeout)
        except subprocess.TimeoutExpired:
            raise RigError(f"timeout: the interactive VM ran for {self.a.timeout:g} s; killing QEMU")
        say(f"VM ran {time.monotonic() - t0:.1f} s; QEMU exit status {rc}")
        if rc != 0:
            self._show_qemu_err()
        return 0 if rc == 0 else RIG_ERROR

    def _show_qemu_err(self):
        if self.tmp:
            for line in tail_file(os.path.join(self.tmp, "qemu.err")):
                print(f"  qemu: {line}", file=sys.stderr)

    def report_failure(self):
        if self.serial_tail:
            say("last lines of the serial console:")
            for line in self.serial_tail:
                print(f"  | {line}", file=sys.stderr)
        self._show_qemu_err()

    def cleanup(self):
        """Stop QEMU and the daemon, report on the daemon, remove the temp dir.
        Returns False if the daemon failed."""
        ok = True
        if self.qemu is not None and self.qemu.poll() is None:
            stop(self.qemu, "QEMU", 0)
        if self.tty_state is not None:
            import termios
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.tty_state)
        if self.daemon is not None:
            sig = stop(self.daemon, "the daemon", self.a.daemon_grace, verbose=True)
            rc = self.daemon.returncode
            cpu = getattr(self.daemon, "cpu", None)
            if cpu is not None:
                # For vm-bench.py: the daemon's own CPU over the whole boot (user, system).
                print(f"DAEMON-CPU {cpu[0]:.3f} {cpu[1]:.3f}", flush=True)
            if sig is not None:
                say(f"warning: the daemon did not exit by itself after QEMU disconnected (status {rc})")
            elif rc != 0:
                ok = False
                how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
                say(f"the daemon {how}")
            log = os.path.join(self.tmp, "daemon.log")
            if self.a.daemon_log:
                shutil.copyfile(log, self.a.daemon_log)
            if not ok or self.show_daemon_log or self.a.verbose:
                lines = tail_file(log, 40 if not ok else 10**6)
                if lines:
                    say("daemon output" + (" (last lines)" if not ok else "") + ":")
                    for line in lines:
                        print(f"  daemon: {line}", file=sys.stderr)
        if self.serial_log:
            self.serial_log.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return ok


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    sweep_stale_tmp()
    run = Run(a)
    status = RIG_ERROR
    try:
        try:
            status = run.execute()
        except RigError as e:
            say(f"error: {e.args[0]}")
            if len(e.args) > 1:  # the daemon failed early: cleanup() reports it
                run.daemon = e.args[1]
                run.show_daemon_log = True
            run.report_failure()
            status = RIG_ERROR
        except (KeyboardInterrupt, Interrupted) as e:
            say(f"interrupted ({e or 'SIGINT'}); stopping the VM")
            run.report_failure()
            status = 130
    finally:
        # No further interruptions while cleaning up.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if not run.cleanup() and status == 0:
            status = RIG_ERROR
    return status


if __name__ == "__main__":
    sys.exit(main())
