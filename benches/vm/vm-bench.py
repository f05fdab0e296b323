#!/usr/bin/env python3
"""VM benchmark: vhost-user-9p against QEMU's built-in 9p server and virtiofsd.

Builds the VM rig (vm-images/build.sh, cached) and the daemon (cargo build --release,
unless --daemon is given), then boots the same TCG guest (Debian 6.1) once per
configuration and run, each boot running every workload of benches/vm/guest-workloads.sh
against the same host directory:

  vhost     vhost-user-9p           9p cache=none, mmap, loose (msize 512000)
  qemu      QEMU's built-in 9p      9p cache=none, mmap, loose (msize 512000)
  qemu-intx QEMU's built-in 9p with INTx interrupts (vectors=0), as the vhost-user
            device model gives the guest (only with --servers)
  virtiofs  virtiofsd (Debian)      --cache=never, auto

Runs are interleaved (run 1 of every configuration, then run 2, ...). Within a run the
servers' boots of one cache mode come back to back, each run rotating the modes and
which server goes first, so that every server's boot of a mode follows much the same
boots as the others' (a boot that writes gigabytes slows the next one's writes on some
hosts) and load elsewhere on the host hits all alike; every figure is the median of
--runs runs.  Writes a markdown table and a JSON file.
"""

import argparse
import bz2
import datetime
import gzip
import json
import lzma
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time

import host_memory

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNVM = os.path.join(REPO, "vm-images", "runvm.py")
GUEST_SCRIPT = os.path.join(HERE, "guest-workloads.sh")
MIB = 1 << 20

# The source package unpacked and scanned by the untar/scan workloads: the guest's own
# busybox (bookworm), fetched with apt-get source through a private apt configuration.
SOURCE_PACKAGE = "busybox"

# Sizes: the goal (source_entries: the first N entries of the source tarball;
# 0: all of them).  By default a few are scaled down (DEFAULT_SCALE) to keep a whole run
# (3 runs of 8 configurations on a 2-core TCG host) near 40 minutes; --full keeps the goal.
# --scale multiplies every size on top of that.
GOAL = {"big_mb": 1024, "write_mb": 1024, "rand_reads": 20000, "files": 10000,
        "tree": 50000, "execs": 1000, "par_mb": 256, "source_entries": 0, "small": 5000}
DEFAULT_SCALE = {"files": 0.25, "tree": 0.25, "execs": 0.25, "source_entries": 0.5}

# name, label (formatted with the sizes), sizes it depends on
WORKLOADS = [
    ("seq-read", "sequential read, {big_mb} MiB, bs=1M (host-cached)"),
    ("seq-write", "sequential write, {write_mb} MiB, bs=1M, fsync"),
    ("rand-read", "{rand_reads:,} random 4 KiB preads of the {big_mb} MiB file"),
    ("create", "create {files:,} small files"),
    ("stat", "stat {files:,} files"),
    ("ls-lR", "ls -lR of {tree:,} entries (host-made tree)"),
    ("delete", "delete {files:,} files (rm -r)"),
    ("untar", "unpack {source_part} of {source} (uncompressed tar)"),
    ("scan", "grep -r through the unpacked tree (reads every file)"),
    ("cat-small", "cat of 1,000 files of 100 bytes, in 10 directories (host-made)"),
    ("head-small", "head -c 1 of {small:,} files of 100 bytes, in {small_dirs} directories (host-made)"),
    ("exec", "run a static binary from the share {execs:,} times"),
    ("parallel", "4 processes each copying {par_mb} MiB share→share, fsync"),
    # A NixOS-style build VM (benches/vm/store.py): the store read-only on /nix/.ro-store,
    # an overlay with a tmpfs upper layer on /nix/store; gcc and everything it runs and
    # reads come from the store.  "-10": ten more runs right after one untimed, caches warm.
    ("store-gcc-version", "store: `gcc --version` once, caches dropped"),
    ("store-gcc-version-10", "store: `gcc --version` 10 times, warm"),
    ("store-compile", "store: compile and link a C file of {store_headers_in_c} headers, run it; caches dropped"),
    ("store-compile-10", "store: the same 10 times, warm"),
    ("store-find", "store: `find /nix/store` ({store_entries:,} entries), caches dropped"),
    ("store-read-headers", "store: read every file of the header packages ({store_header_files:,} files, {store_header_mib} MiB)"),
]
WORKLOAD_NAMES = [w for w, _ in WORKLOADS]
# What one guest operation is, per workload (for the server's CPU per operation): the size
# that counts them, and its unit.
OPERATIONS = {"seq-read": ("big_mb", "MiB"), "seq-write": ("write_mb", "MiB"),
              "rand-read": ("rand_reads", "read"), "create": ("files", "file"), "stat": ("files", "file"),
              "ls-lR": ("tree", "entry"), "delete": ("files", "file"), "untar": ("source_entries", "entry"),
              "scan": ("source_entries", "entry"), "cat-small": ("cat_small", "file"),
              "head-small": ("small", "file"), "exec": ("execs", "exec"), "parallel": ("par_total_mb", "MiB"),
              "store-gcc-version": ("one", "run"), "store-gcc-version-10": ("ten", "run"),
              "store-compile": ("one", "run"), "store-compile-10": ("ten", "run"),
              "store-find": ("store_entries", "entry"), "store-read-headers": ("store_header_files", "file")}
# Not a workload: the daemon's CPU seconds (user + system, its serving child included) over the
# whole boot, as runvm.py reports them; QEMU's built-in server has none apart from QEMU's.
SERVER_CPU = "server-cpu"
# Warmed once with --pause-page-reporting: the guest's RAM, the inputs and the outputs fit in it.
WARM_GIB = 8
QEMU_CPU = "qemu-cpu"  # QEMU outside its vCPU threads (with --server qemu, that is the server)

SERVERS = {  # name: (runvm --server, extra runvm arguments, label)
    "vhost": ("vhost", [], "vhost-user-9p"),
    "vhost-inline": ("vhost", ["--daemon-arg=--thread-pool-size=0"], "vhost-user-9p --thread-pool-size 0"),
    "vhost-nosandbox": ("vhost", ["--daemon-arg=--sandbox=none", "--daemon-arg=--seccomp=none"],
                        "vhost-user-9p --sandbox none --seccomp none"),
    "vhost-poll0": ("vhost", ["--daemon-arg=--poll-us=0"], "vhost-user-9p --poll-us 0"),
    "vhost-poll50": ("vhost", ["--daemon-arg=--poll-us=50"], "vhost-user-9p --poll-us 50"),
    "vhost-wb8": ("vhost", ["--daemon-arg=--write-behind=8"], "vhost-user-9p --write-behind 8"),
    "qemu": ("qemu", [], "QEMU 9p"),
    # QEMU's 9p with the legacy INTx interrupt that vhost-user-test-device-pci leaves the guest
    # (it has one MSI-X vector; Linux 6.1 needs two): what that costs, apart from the server.
    "qemu-intx": ("qemu", ["--qemu-arg=-global", "--qemu-arg=virtio-9p-pci.vectors=0"], "QEMU 9p, INTx"),
    "virtiofs": ("virtiofs", [], "virtiofsd"),
}
P9_MODES = ["none", "mmap", "loose"]
VIRTIOFS_MODES = ["never", "auto"]
# Like with like: the virtiofsd policy shown beside each 9p cache mode.  cache=mmap caches
# data only for mmap and no metadata, so it sits beside --cache=never.
PAIRED_VIRTIOFS = {"none": "never", "mmap": "never", "loose": "auto"}


def say(msg=""):
    print(msg, flush=True)


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("VU9P_CACHE") or os.path.join(base, "vhost-user-9p")


def parse_args():
    p = argparse.ArgumentParser(
        prog="benches/vm/vm-bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Values starting with '-' need the '=' form: --daemon-arg=--thread-pool-size=0.")
    p.add_argument("--runs", type=int, default=3, help="runs of every configuration (default 3; the median is reported)")
    p.add_argument("--full", action="store_true",
                   help="the issue's sizes for every workload (the default scales a few down: see BENCHMARKS.md)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every workload size by this (default 1)")
    p.add_argument("--servers", default="vhost,qemu,virtiofs",
                   help="comma-separated, from: " + ", ".join(SERVERS) + " (default vhost,qemu,virtiofs)")
    p.add_argument("--cache-modes", default=",".join(P9_MODES), help="9p cache modes (default none,mmap,loose)")
    p.add_argument("--virtiofs-caches", default=",".join(VIRTIOFS_MODES), help="virtiofsd --cache policies (default never,auto)")
    p.add_argument("--workloads", default=",".join(WORKLOAD_NAMES), help="comma-separated (default: all): " + ", ".join(WORKLOAD_NAMES))
    p.add_argument("--daemon", metavar="PATH", help="vhost-user-9p binary (default: cargo build --release, then target/release/vhost-user-9p)")
    p.add_argument("--daemon-arg", metavar="ARG", action="append", default=[], help="extra argument for vhost-user-9p (repeatable)")
    p.add_argument("--workdir", metavar="DIR", help="where the shared directory lives (default: $CACHE/bench)")
    p.add_argument("--output", metavar="STEM", default="vm-bench",
                   help="write STEM.md and STEM.json (default vm-bench, in the current directory)")
    p.add_argument("--mem", default="2G", help="guest memory (default 2G)")
    p.add_argument("--msize", type=int, default=512000, help="9p msize asked for (default 512000; the guest may clamp it)")
    p.add_argument("--kernel", choices=["6.1", "6.12"], default="6.1",
                   help="guest kernel (default 6.1; 6.12 needs vm-images/build.sh --kernel 6.12, which this runs)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per VM before it is killed (default 3600)")
    p.add_argument("--pause-page-reporting", action="store_true",
                   help="on a host that reports freed memory to its hypervisor, pause that for the run and put it "
                        "back after (needs root; see benches/vm/host_memory.py)")
    a = p.parse_args()

    def pick(value, allowed, what):
        items = [x for x in value.split(",") if x]
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            p.error(f"--{what}: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(allowed)}")
        return items

    a.servers = pick(a.servers, SERVERS, "servers")
    a.cache_modes = pick(a.cache_modes, P9_MODES, "cache-modes")
    a.virtiofs_caches = pick(a.virtiofs_caches, VIRTIOFS_MODES, "virtiofs-caches")
    a.workloads = [w for w in WORKLOAD_NAMES if w in pick(a.workloads, WORKLOAD_NAMES, "workloads")]
    if a.runs < 1 or a.scale <= 0:
        p.error("--runs and --scale must be positive")
    return a


def sizes_for(a, source_total):
    goal = dict(GOAL, source_entries=GOAL["source_entries"] or source_total)
    factor = {k: a.scale * (1 if a.full else DEFAULT_SCALE.get(k, 1)) for k in goal}
    sizes = {k: max(1, round(v * factor[k])) for k, v in goal.items()}
    sizes["source_entries"] = min(sizes["source_entries"], source_total)
    return sizes


def is_virtiofs(server):
    return SERVERS[server][0] == "virtiofs"


def configurations(a):
    out = []
    for s in a.servers:
        for m in (a.virtiofs_caches if is_virtiofs(s) else a.cache_modes):
            out.append((s, m))
    return out


def run_order(configs, r):
    """Run r's order of the configurations: one group per 9p cache mode (its servers
    back to back) and one per virtiofsd policy, the groups rotated by r and the
    servers within each group too."""
    groups = {}
    for server, mode in configs:
        kind = "virtiofs" if is_virtiofs(server) else "9p"
        groups.setdefault((kind, mode), []).append((server, mode))
    groups = list(groups.values())
    k = r % len(groups)
    out = []
    for g in groups[k:] + groups[:k]:
        j = r % len(g)
        out += g[j:] + g[:j]
    return out


def config_name(server, mode):
    return f"{server}:{mode}"


# --------------------------------------------------------------- preparation

def run_checked(cmd, what, **kw):
    say(f"$ {shlex.join(cmd)}")
    r = subprocess.run(cmd, **kw)
    if r.returncode != 0:
        sys.exit(f"vm-bench: {what} failed (status {r.returncode})")


def fetch_source(cache):
    """The orig tarball of SOURCE_PACKAGE (bookworm), decompressed: $CACHE/bench/source.tar.
    Through a private apt configuration next to build.sh's bookworm one, with its archive
    address (which build.sh read from this machine's apt sources) and deb-src instead of deb."""
    out = os.path.join(cache, "bench", "source.tar")
    name_file = out + ".name"
    if os.path.exists(out) and os.path.exists(name_file):
        with open(name_file) as f:
            return out, f.read().strip()
    binary_conf = os.path.join(cache, "apt", "bookworm")
    root = os.path.join(cache, "apt", "bookworm-src")
    with open(os.path.join(binary_conf, "etc", "sources.list")) as f:
        lines = [line.split() for line in f if line.startswith("deb ")]
    if not lines:
        sys.exit(f"vm-bench: no archive address in {binary_conf}/etc/sources.list (run vm-images/build.sh)")
    for d in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d",
              "lists/partial", "archives/partial", "log", "download"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    open(os.path.join(root, "status"), "a").close()
    with open(os.path.join(root, "etc", "sources.list"), "w") as f:
        f.writelines(" ".join(["deb-src"] + w[1:]) + "\n" for w in lines)
    with open(os.path.join(binary_conf, "apt.conf")) as f:
        conf = f.read().replace(binary_conf + "/", root + "/")
    with open(os.path.join(root, "apt.conf"), "w") as f:
        f.write(conf)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    env = dict(os.environ, APT_CONFIG=os.path.join(root, "apt.conf"))
    dl = os.path.join(root, "download")
    run_checked(["apt-get", "update", "-qq"], "apt-get update (private deb-src config)", env=env)
    run_checked(["apt-get", "source", "--download-only", "-qq", SOURCE_PACKAGE], "apt-get source", env=env, cwd=dl)
    origs = sorted(f for f in os.listdir(dl) if ".orig.tar." in f and not f.endswith(".asc"))
    if not origs:
        sys.exit(f"vm-bench: no orig tarball in {dl}")
    orig = os.path.join(dl, origs[-1])
    opener = {".bz2": bz2.open, ".xz": lzma.open, ".gz": gzip.open}[os.path.splitext(orig)[1]]
    with opener(orig, "rb") as src, open(out + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst, MIB)
    os.rename(out + ".tmp", out)
    with open(name_file, "w") as f:
        f.write(origs[-1].split(".orig.tar.")[0].replace("_", "-") + "\n")
    shutil.rmtree(dl)
    return fetch_source(cache)


def write_file(path, mib, block):
    with open(path + ".tmp", "wb") as f:
        for _ in range(mib):
            f.write(block)
    os.rename(path + ".tmp", path)


def copy_tar_head(src, dst, n):
    """dst: a tar of the first n entries of the tar src."""
    with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as out:
        for i, m in enumerate(t):
            if i == n:
                break
            out.addfile(m, t.extractfile(m) if m.isfile() else None)


def prepare_inputs(share, sizes, cache, source_tar):
    """share/in: the host-made inputs, regenerated when the sizes change."""
    d = os.path.join(share, "in")
    manifest = os.path.join(d, ".manifest.json")
    want = dict(sizes, source=os.path.getsize(source_tar))
    try:
        with open(manifest) as f:
            if json.load(f) == want:
                return
    except (OSError, ValueError):
        pass
    say(f"preparing the inputs in {d}...")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    block = os.urandom(MIB)
    write_file(os.path.join(d, "big"), sizes["big_mb"], block)
    for k in range(4):
        write_file(os.path.join(d, f"par{k}"), sizes["par_mb"], block)
    ndirs = max(1, sizes["tree"] // 1000)  # entries: the directories and their files
    nfiles = max(0, sizes["tree"] - ndirs)
    for i in range(ndirs):
        sub = os.path.join(d, "tree", f"d{i:03}")
        os.makedirs(sub)
        for j in range(nfiles // ndirs + (i < nfiles % ndirs)):
            with open(os.path.join(sub, f"file{j:04}"), "wb") as f:
                f.write(b"x" * (j % 64))
    # Small files, 100 bytes each, 100 to a directory (cat-small reads d00..d09).
    for i in range(sizes["small"]):
        sub = os.path.join(d, "small", f"d{i // 100:02}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i % 100:03}"), "wb") as f:
            f.write(b"%099d\n" % i)
    shutil.copyfile(os.path.join(cache, "guest", "tools", "nop"), os.path.join(d, "nop"))
    os.chmod(os.path.join(d, "nop"), 0o755)
    copy_tar_head(source_tar, os.path.join(d, "source.tar"), sizes["source_entries"])
    with open(manifest, "w") as f:
        json.dump(want, f)


def prepare_store(share, cache):
    """share/in/store: the store (benches/vm/store.py builds it in place; idempotent), and
    what the labels and the per-operation figures need to know of it."""
    sys.path.insert(0, HERE)
    import store
    path, info = store.build_store(cache, out=os.path.join(share, "in", "store"))
    entries = 1 + sum(len(d) + len(f) for _, d, f in os.walk(path))
    header_files, header_bytes = 0, 0
    for guest_dir in info["header_packages"]:
        for root, _, files in os.walk(os.path.join(path, os.path.basename(guest_dir))):
            for n in files:
                st = os.lstat(os.path.join(root, n))
                if not os.path.islink(os.path.join(root, n)):
                    header_files += 1
                    header_bytes += st.st_size
    with open(os.path.join(path, os.path.basename(os.path.dirname(info["hello_c"])), "hello.c")) as f:
        headers_in_c = sum(1 for line in f if line.startswith("#include"))
    return {"store_entries": entries, "store_header_files": header_files,
            "store_header_mib": round(header_bytes / MIB), "store_headers_in_c": headers_in_c}


def warm_host_cache(share):
    """Read every input once on the host, so the servers read from the page cache, and
    write back what is dirty (made inputs, the last VM's outputs): no run pays for another."""
    os.sync()
    d = os.path.join(share, "in")
    buf = bytearray(MIB)
    for name in ["big", "par0", "par1", "par2", "par3", "source.tar", "nop"]:
        with open(os.path.join(d, name), "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    for root, dirs, files in os.walk(os.path.join(d, "tree")):
        for n in files:
            os.lstat(os.path.join(root, n))
    for sub in ("small", "store"):
        for root, dirs, files in os.walk(os.path.join(d, sub)):
            for n in files:
                path = os.path.join(root, n)
                if not os.path.islink(path):
                    with open(path, "rb") as f:
                        while f.read(MIB):
                            pass


def tree_entries(share):
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(os.path.join(share, "in", "tree")))


# --------------------------------------------------------------- one VM

def virtiofsd_args(sizes):
    """virtiofsd keeps an O_PATH descriptor per inode the guest knows and cannot spare them:
    where the host's open file limit is too low for the tree and the created files (as
    --full is on a host limited to 20,000), it refers to inodes by file handles instead."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    needed = sizes["tree"] + sizes["files"]
    if hard != resource.RLIM_INFINITY and needed > hard * 3 // 4:
        return ["--inode-file-handles=prefer"]
    return []


def run_vm(a, server, mode, share, sizes, daemon):
    out = os.path.join(share, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.mkdir(out)
    warm_host_cache(share)
    kind, extra, _ = SERVERS[server]
    env = {"BENCH_WORKLOADS": " ".join(a.workloads), "BENCH_RAND_READS": sizes["rand_reads"],
           "BENCH_FILES": sizes["files"], "BENCH_WRITE_MB": sizes["write_mb"],
           "BENCH_PAR_MB": sizes["par_mb"], "BENCH_EXECS": sizes["execs"]}
    cmd = [sys.executable, RUNVM, "--shared-dir", share, "--guest-script", GUEST_SCRIPT,
           "--server", kind, "--mem", a.mem, "--timeout", str(a.timeout), "--kernel", a.kernel,
           "--msize", str(a.msize)]
    cmd += [f"--env={k}={v}" for k, v in env.items()] + extra
    if kind == "virtiofs":
        cmd += ["--virtiofs-cache", mode] + [f"--daemon-arg={x}" for x in virtiofsd_args(sizes)]
    else:
        cmd += ["--cache", mode]
    if kind == "vhost":
        cmd += ["--daemon", daemon] + [f"--daemon-arg={x}" for x in a.daemon_arg]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:  # interrupted: runvm.py stops its VM and daemon on SIGTERM
        proc.terminate()
        proc.wait()
        raise
    r = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    times, failed, cpu = {}, [], {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] in ("SERVER-CPU", "QEMU-CPU"):
            cpu[(f[0], f[1])] = float(f[2])
        elif len(f) == 4 and f[0] == "BENCH-RESULT":
            times[f[1]] = float(f[3]) - float(f[2])
        elif len(f) == 2 and f[0] == "BENCH-FAIL":
            failed.append(f[1])
        elif len(f) == 3 and f[0] == "DAEMON-CPU":
            times[SERVER_CPU] = float(f[1]) + float(f[2])
    # The server's CPU seconds over each workload (samples taken as the guest started and
    # ended it): SERVER_CPU + ":" + workload; QEMU's outside its vCPUs: QEMU_CPU + ":" + workload.
    for w in list(times):
        for kind, key in (("SERVER-CPU", SERVER_CPU), ("QEMU-CPU", QEMU_CPU)):
            start, end = cpu.get((kind, w + "-start")), cpu.get((kind, w + "-end"))
            if start is not None and end is not None:
                times[f"{key}:{w}"] = end - start
    problem = None
    measured = len([w for w in times if w in a.workloads])
    if r.returncode != 0 or failed or measured + len(failed) != len(a.workloads):
        problem = f"runvm status {r.returncode}, failed workloads: {' '.join(failed) or 'none'}"
        tail = (r.stdout.splitlines() + r.stderr.splitlines())[-15:]
        problem += "".join("\n    | " + line for line in tail)
    shutil.rmtree(out, ignore_errors=True)
    return times, problem


# --------------------------------------------------------------- report

def fmt_s(x):
    return "–" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}"


def summarize(results):
    """{config: {workload: median}} from {config: {workload: [runs]}}."""
    return {c: {w: statistics.median(v) for w, v in ws.items() if v} for c, ws in results.items()}


def ratio(num, den):
    return num / den if num is not None and den else None


def columns(a, mode):
    """The configurations shown for one 9p cache mode: ours first, the other 9p servers, then
    the paired virtiofsd policy."""
    ours = "vhost" if "vhost" in a.servers else a.servers[0]
    cols = [(ours, mode)] + [(s, mode) for s in a.servers if s != ours and not is_virtiofs(s)]
    vmode = PAIRED_VIRTIOFS[mode]
    if vmode in a.virtiofs_caches:
        cols += [(s, vmode) for s in a.servers if is_virtiofs(s)]
    return cols


def cpu_tables(med, a, ops):
    """Per cache mode: the server's CPU per guest operation, µs (QEMU's built-in server: QEMU
    outside its vCPU threads), and QEMU's own outside its vCPUs beside each vhost-user server."""
    out = []
    for mode in a.cache_modes:
        cols = columns(a, mode)
        hdr = ["workload", "per"]
        for s, m in cols:
            where = "cache=" + m if not is_virtiofs(s) else "--cache=" + m
            hdr.append(f"{SERVERS[s][2]} ({where})")
            if SERVERS[s][0] != "qemu":
                hdr.append("its QEMU outside vCPUs")
        out.append(f"\n**Server CPU per operation, 9p cache={mode}** (µs, median of {a.runs}; "
                   "QEMU's 9p: QEMU outside its vCPU threads)\n")
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|---|---|" + "--:|" * (len(hdr) - 2))
        for w in a.workloads:
            count, unit = ops[w]
            row = [w, unit]
            for s, m in cols:
                got = med.get(config_name(s, m), {})
                keys = [SERVER_CPU] + ([QEMU_CPU] if SERVERS[s][0] != "qemu" else [])
                for k in keys:
                    v = got.get(f"{k}:{w}")
                    row.append("–" if v is None else f"{v / count * 1e6:,.0f}")
            out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def tables(med, a, labels):
    out = []
    ours = "vhost" if "vhost" in a.servers else a.servers[0]
    vfs = [s for s in a.servers if is_virtiofs(s)]
    for mode in a.cache_modes:
        cols = columns(a, mode)
        vmode = PAIRED_VIRTIOFS[mode]
        head = [f"{SERVERS[s][2]} ({'cache=' + m if SERVERS[s][0] != 'virtiofs' else '--cache=' + m})" for s, m in cols]
        out.append(f"\n**9p cache={mode}**" + (f" beside virtiofsd --cache={vmode}" if vfs and vmode in a.virtiofs_caches else "")
                   + f" (seconds, median of {a.runs}; ratio > 1: {SERVERS[ours][2]} is faster)\n")
        hdr = ["workload", head[0]]
        for h, (s, m) in zip(head[1:], cols[1:]):
            hdr += [h, f"{SERVERS[s][2]} / ours"]
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|---|" + "--:|" * (len(hdr) - 1))
        rows = a.workloads + ([SERVER_CPU] if any(SERVER_CPU in med.get(config_name(s, m), {}) for s, m in cols) else [])
        for w in rows:
            base = med.get(config_name(ours, mode), {}).get(w)
            row = [labels[w], fmt_s(base)]
            for s, m in cols[1:]:
                v = med.get(config_name(s, m), {}).get(w)
                row += [fmt_s(v), fmt_ratio(ratio(v, base))]
            out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = host_memory.meminfo_kib("MemTotal")
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "ram_gib": round(mem_kb / (1 << 20), 1), "loadavg": os.getloadavg()[0]}


def run_all(a, configs, share, sizes, daemon, results):
    """Every boot of every run, in run_order; fills results and returns (boots, failures)."""
    problems = []
    n, total = 0, len(configs) * a.runs
    for r in range(a.runs):
        for server, mode in run_order(configs, r):
            n += 1
            t0 = time.monotonic()
            times, problem = run_vm(a, server, mode, share, sizes, daemon)
            name = config_name(server, mode)
            for w, v in times.items():
                results[name].setdefault(w, []).append(v)
            line = f"[{n:2}/{total}] run {r + 1}/{a.runs} {name:<14} {time.monotonic() - t0:6.1f} s:"
            say(line + " " + " ".join(f"{w} {times[w]:.2f}" for w in a.workloads + [SERVER_CPU] if w in times))
            if problem:
                problems.append(f"run {r + 1} {name}: {problem}")
                say(f"   FAILED: {problem}")
    return n, problems


def main():
    a = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("vm-bench: terminated"))
    t_start = time.monotonic()
    cache = cache_dir()
    run_checked(["bash", os.path.join(REPO, "vm-images", "build.sh")] + (["--kernel", a.kernel] if a.kernel != "6.1" else []),
                "vm-images/build.sh")
    daemon = a.daemon
    if "vhost" in [SERVERS[s][0] for s in a.servers] and not daemon:
        run_checked(["cargo", "build", "--release"], "cargo build --release", cwd=REPO)
        daemon = os.path.join(REPO, "target", "release", "vhost-user-9p")
    if daemon:
        daemon = os.path.abspath(daemon)
    source_tar, source_name = fetch_source(cache)
    with tarfile.open(source_tar) as t:
        source_total = len(t.getmembers())
    sizes = sizes_for(a, source_total)
    share = os.path.join(os.path.abspath(a.workdir or os.path.join(cache, "bench")), "share")
    os.makedirs(share, exist_ok=True)
    prepare_inputs(share, sizes, cache, source_tar)
    n = sizes["source_entries"]
    fmt = dict(sizes, source=source_name, source_part=f"all {n:,} entries" if n == source_total
               else f"the first {n:,} of the {source_total:,} entries")
    fmt["tree"] = tree_entries(share)
    fmt["small_dirs"] = (sizes["small"] + 99) // 100
    store_facts = {"store_entries": 0, "store_header_files": 0, "store_header_mib": 0, "store_headers_in_c": 0}
    if any(w.startswith("store-") for w in a.workloads):
        store_facts = prepare_store(share, cache)
    fmt.update(store_facts)
    labels = {w: f"{i}. {w}: " + label.format(**fmt) for i, (w, label) in enumerate(WORKLOADS, 1)}
    labels[SERVER_CPU] = "the daemon's CPU over the whole boot (user + system)"
    counts = dict(sizes, tree=fmt["tree"], cat_small=1000, par_total_mb=4 * sizes["par_mb"], one=1, ten=10,
                  **store_facts)
    ops = {w: (counts[k], unit) for w, (k, unit) in OPERATIONS.items()}
    host = machine()
    configs = configurations(a)
    results = {config_name(s, m): {w: [] for w in a.workloads + [SERVER_CPU]} for s, m in configs}
    vfs_args = virtiofsd_args(sizes)
    say(f"{len(configs)} configurations x {a.runs} runs; sizes: "
        + ", ".join(f"{k}={v}" for k, v in sizes.items()) + f"; tree {fmt['tree']} entries; source {source_name}"
        + (f"; virtiofsd {' '.join(vfs_args)}" if vfs_args else ""))
    with host_memory.PausedReporting(a.pause_page_reporting, WARM_GIB) as reporting:
        say(reporting.state)
        if reporting.warning:
            say("   warning: " + reporting.warning)
        n, problems = run_all(a, configs, share, sizes, daemon, results)
    host["page_reporting"] = reporting.state
    elapsed = time.monotonic() - t_start
    med = summarize(results)
    host["loadavg_end"] = os.getloadavg()[0]
    date = datetime.date.today().isoformat()
    command = shlex.join(["benches/vm/vm-bench.py"] + sys.argv[1:])
    md = (f"`{command}`: {date}; {host['nproc']} CPUs ({host['cpu']}), Linux {host['kernel']}, "
          f"{host['ram_gib']} GiB RAM; guest: Debian {a.kernel} kernel, TCG, -smp 2, {a.mem}, msize {a.msize}; "
          + (f"virtiofsd with `{' '.join(vfs_args)}` (this host's open file limit is too "
             f"low for one descriptor per entry); " if vfs_args else "")
          + f"{host['page_reporting']}; "
          + f"load average {host['loadavg']:.2f} before, {host['loadavg_end']:.2f} after; "
          f"whole run {elapsed / 60:.1f} min.\n" + tables(med, a, labels) + cpu_tables(med, a, ops))
    if problems:
        md += "\nFailures:\n" + "".join(f"- {p.splitlines()[0]}\n" for p in problems)
    ratios = {}
    for c, ws in med.items():
        s, m = c.split(":")
        if s == "vhost":
            continue
        base_mode = m if not is_virtiofs(s) else None
        pairs = [base_mode] if base_mode else [k for k, v in PAIRED_VIRTIOFS.items() if v == m]
        for bm in pairs:
            base = med.get(config_name("vhost", bm), {})
            ratios[f"{c}/vhost:{bm}"] = {w: ratio(v, base.get(w)) for w, v in ws.items()}
    doc = {"date": date, "command": command, "machine": host, "elapsed_s": round(elapsed, 1),
           "runs": a.runs, "scale": a.scale, "sizes": sizes, "tree_entries": fmt["tree"],
           "virtiofsd_args": vfs_args,
           "source": {"name": source_name, "entries": source_total, "unpacked": sizes["source_entries"]},
           "workloads": {w: labels[w] for w in a.workloads},
           "seconds": {c: {w: {"median": med[c].get(w), "runs": v} for w, v in ws.items()} for c, ws in results.items()},
           "ratios": ratios, "failures": problems}
    with open(a.output + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    with open(a.output + ".md", "w") as f:
        f.write(md)
    say("\n" + md)
    slower = [(k, w, x) for k, ws in ratios.items() if k.startswith("qemu:") for w, x in ws.items()
              if x is not None and x < 1 and w in a.workloads]
    if "qemu" in a.servers and "vhost" in a.servers:
        if slower:
            say("vhost-user-9p is SLOWER than QEMU 9p on: " + "; ".join(f"{k} {w} (ratio {x:.2f})" for k, w, x in slower))
        else:
            say("vhost-user-9p is faster than QEMU 9p on every workload and cache mode measured.")
    say(f"wrote {a.output}.md and {a.output}.json; {n} VM runs in {elapsed / 60:.1f} min")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
