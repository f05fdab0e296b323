#!/usr/bin/env python3
"""Differential POSIX test: the same workload on the host (the oracle) and in a guest.

tests/posix-suite/posix_suite.c runs a few hundred deterministic checks in an
empty directory and prints one line "NAME: OUTCOME" per check.  This runner

  1. builds the suite for the host (gcc -O2); the guest's static build comes
     with the VM rig (vm-images/build.sh compiles it into the initramfs);
  2. for each configuration: runs the suite on the host in a fresh directory,
     as root and with -u (the unprivileged part), then boots a guest on a fresh
     share through vm-images/runvm.py, runs the same two parts on the mount,
     and compares the outputs line by line;
  3. prints, per configuration, checks passed/total and every unexpected
     difference (host and guest outcome side by side), and writes a markdown
     table with --table.

A check passes when the guest's outcome equals the host's, or when the
difference is listed in tests/differential/known-differences.txt (lines
"CONFIG-GLOB CHECK-NAME  reason", both fields fnmatch patterns; lines
"skip CONFIG-GLOB CHECK-NAME  reason" keep a check from running in the guest,
for checks that crash the guest kernel).  Any other difference, a missing
line or an extra line is unexpected.

Configurations (NAME = server:model:cache=MODE):
  vhost:passthrough:cache={none,mmap,loose}   the daemon as root,
      --security-model passthrough --modcaps=+sys_admin (trusted.* and
      security.* xattrs)
  vhost:mapped-xattr:cache={none,mmap,loose}  the daemon as an unprivileged
      user (--daemon-user, created when missing), --security-model mapped-xattr,
      the share owned by that user
  qemu:passthrough:cache={none,mmap,loose}    QEMU's built-in 9p server,
      security_model=passthrough (reported, never required to pass)
The guest always runs the suite as root; mounts use
version=9p2000.L,msize=512000,cache=MODE (plus posixacl for the daemon).

Exit status: 0 when every vhost configuration passed and the oracle was
deterministic, 1 otherwise, 2 for usage or setup errors.  Needs root.
"""

import argparse
import concurrent.futures
import fnmatch
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUITE_SRC = os.path.join(REPO, "tests", "posix-suite", "posix_suite.c")
RUNVM = os.path.join(REPO, "vm-images", "runvm.py")
BUILD_SH = os.path.join(REPO, "vm-images", "build.sh")
KNOWN = os.path.join(HERE, "known-differences.txt")

CACHES = ("none", "mmap", "loose")
DEFAULT_USER = "vu9p-test"
UNPRIV = "1000:1000"
LINE_RE = re.compile(r"^([A-Za-z0-9_.\-/]+): (.*)$")
PARTS = ("root", "user")

_print_lock = threading.Lock()


def say(msg=""):
    with _print_lock:
        print(msg, flush=True)


def warn(msg):
    with _print_lock:
        print(f"differential: {msg}", file=sys.stderr, flush=True)


class Config:
    def __init__(self, server, model, cache):
        self.server, self.model, self.cache = server, model, cache
        self.name = f"{server}:{model}:cache={cache}"

    @property
    def ours(self):
        return self.server == "vhost"


def all_configs():
    out = []
    for server, model in (("vhost", "passthrough"), ("vhost", "mapped-xattr"), ("qemu", "passthrough")):
        for cache in CACHES:
            out.append(Config(server, model, cache))
    return out


# ------------------------------------------------------------------ known differences

class Known:
    """known-differences.txt: 'CONFIG-GLOB CHECK-NAME  reason' lines, and
    'skip CONFIG-GLOB CHECK-NAME  reason' lines for checks the guest must not
    run in those configurations (the suite's -s; their differences are expected)."""

    def __init__(self, path):
        self.path = path
        self.entries = []  # (config_glob, check_glob, reason, lineno)
        self.skips = []    # (config_glob, check_glob, reason, lineno)
        self.used = set()
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                skip = line.startswith("skip ")
                parts = line.split(None, 3 if skip else 2)[1 if skip else 0:]
                if len(parts) < 3:
                    raise SystemExit(f"{path}:{lineno}: expected '[skip] CONFIG-GLOB CHECK-NAME  reason'")
                (self.skips if skip else self.entries).append((parts[0], parts[1], parts[2], lineno))

    def skip_patterns(self, config):
        out = []
        for cg, kg, _, lineno in self.skips:
            if fnmatch.fnmatchcase(config, cg):
                self.used.add(lineno)
                out.append(kg)
        return out

    def reason(self, config, check):
        for cg, kg, why, lineno in self.skips:
            if fnmatch.fnmatchcase(config, cg) and fnmatch.fnmatchcase(check, kg):
                return "not run in the guest: " + why
        for cg, kg, why, lineno in self.entries:
            if fnmatch.fnmatchcase(config, cg) and fnmatch.fnmatchcase(check, kg):
                self.used.add(lineno)
                return why
        return None


# ------------------------------------------------------------------ output parsing

def parse_parts(text):
    """Lines between '@@PART NAME' and '@@RC N' markers: {part: ({check: outcome}, [dups], rc, summary)}."""
    parts = {}
    cur = None
    noise = []
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("@@PART "):
            cur = line.split(None, 1)[1]
            parts[cur] = {"checks": {}, "order": [], "dups": [], "rc": None, "summary": None}
            continue
        if line.startswith("@@RC "):
            if cur is not None:
                parts[cur]["rc"] = int(line.split()[1])
            cur = None
            continue
        if cur is None:
            if line.strip():
                noise.append(line)
            continue
        if line.startswith("SUMMARY: "):
            parts[cur]["summary"] = line
            continue
        m = LINE_RE.match(line)
        if not m:
            noise.append(line)
            continue
        name, outcome = m.group(1), m.group(2)
        p = parts[cur]
        if name in p["checks"]:
            p["dups"].append(name)
        else:
            p["order"].append(name)
        p["checks"][name] = outcome
    return parts, noise


# ------------------------------------------------------------------ host side

def build_host_suite(outdir):
    exe = os.path.join(outdir, "posix-suite")
    cmd = ["gcc", "-O2", "-Wall", "-o", exe, SUITE_SRC]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"differential: compiling the suite failed:\n{r.stderr}")
    return exe


def run_oracle(exe, top, label):
    """The suite on the host, both parts, in fresh directories; the same text format as the guest's."""
    base = os.path.join(top, f"oracle-{label}")
    os.mkdir(base, 0o755)
    out = []
    for part, args in (("root", []), ("user", ["-u", UNPRIV])):
        d = os.path.join(base, part)
        os.mkdir(d, 0o755)
        r = subprocess.run([exe] + args + [d], capture_output=True, text=True, timeout=600)
        out.append(f"@@PART {part}")
        out.append(r.stdout.rstrip("\n"))
        out.append(f"@@RC {r.returncode}")
        if r.stderr.strip():
            warn(f"oracle {label} ({part}) stderr: {r.stderr.strip()}")
    shutil.rmtree(base, ignore_errors=True)
    return "\n".join(out) + "\n"


def guest_script(skips):
    """The guest's script: both parts, in fresh directories on the mount."""
    opts = " ".join(f"-s {shlex.quote(p)}" for p in skips)
    return f"""\
grep ' /mnt 9p ' /proc/mounts | sed 's/^/@@MOUNT /'
mkdir /mnt/root /mnt/user || exit 125
echo "@@PART root"
posix-suite -t {opts} /mnt/root
echo "@@RC $?"
echo "@@PART user"
posix-suite -t {opts} -u {UNPRIV} /mnt/user
echo "@@RC $?"
"""


def ensure_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    r = subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", name], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"differential: useradd {name} failed: {r.stderr.strip()}")
    warn(f"created system user {name}")
    return pwd.getpwnam(name)


def daemon_has_security_model(daemon):
    r = subprocess.run([daemon, "--help"], capture_output=True, text=True)
    return "--security-model" in r.stdout


def slug(name):
    return name.replace(":", "_").replace("=", "-")


def run_guest(cfg, a, top, known, has_model):
    share = os.path.join(top, f"share-{slug(cfg.name)}")
    os.mkdir(share, 0o755)
    script = os.path.join(top, f"guest-{slug(cfg.name)}.sh")
    with open(script, "w") as f:
        f.write(guest_script(known.skip_patterns(cfg.name)))
    cmd = [sys.executable, RUNVM, "--shared-dir", share, "--guest-script", script, "--cache", cfg.cache,
           "--timeout", str(a.vm_timeout)]
    notes = []
    if cfg.server == "vhost":
        cmd += ["--daemon", a.daemon, "--mount-opts", "posixacl"]
        if cfg.model == "mapped-xattr":
            pw = pwd.getpwnam(a.daemon_user)
            os.chown(share, pw.pw_uid, pw.pw_gid)
            cmd += ["--daemon-user", a.daemon_user]
        if has_model or cfg.model != "passthrough":
            cmd += ["--daemon-arg=--security-model", f"--daemon-arg={cfg.model}"]
        if cfg.model == "passthrough":
            # trusted.* and security.* xattrs need CAP_SYS_ADMIN on the
            # host, which the daemon drops unless told (as virtiofsd).
            cmd += ["--daemon-arg=--modcaps=+sys_admin"]
        else:
            notes.append("the daemon has no --security-model yet: passthrough ran without it")
    else:
        cmd += ["--server", "qemu", "--qemu-security-model", cfg.model]
    if a.verbose:
        warn(f"{cfg.name}: {shlex.join(cmd)}")
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if not a.keep:
        shutil.rmtree(share, ignore_errors=True)
    return r.returncode, r.stdout, r.stderr, dt, notes


# ------------------------------------------------------------------ comparison

class Result:
    def __init__(self, cfg):
        self.cfg = cfg
        self.total = 0
        self.identical = 0
        self.listed = []      # (check, host, guest, reason)
        self.unexpected = []  # (check, host, guest)
        self.rig_error = None
        self.notes = []
        self.seconds = 0.0
        self.oracle = None

    @property
    def passed(self):
        return self.identical + len(self.listed)

    @property
    def ok(self):
        return not self.unexpected and self.rig_error is None


def compare(cfg, host_text, guest_text, known, res):
    hp, _ = parse_parts(host_text)
    gp, gnoise = parse_parts(guest_text)
    for part in PARTS:
        h = hp.get(part)
        g = gp.get(part)
        if h is None:
            res.unexpected.append((f"@{part}", "no output", "-"))
            continue
        if h["rc"] != 0 or h["dups"]:
            res.unexpected.append((f"@{part}.host", f"rc={h['rc']} duplicate names={h['dups'][:5]}", "-"))
        names = list(h["order"])
        res.total += len(names)
        gchecks = g["checks"] if g else {}
        for name in names:
            ho = h["checks"][name]
            go = gchecks.get(name, "<missing>")
            if ho == go:
                res.identical += 1
                continue
            why = known.reason(cfg.name, name)
            if why is not None:
                res.listed.append((name, ho, go, why))
            else:
                res.unexpected.append((name, ho, go))
        if g is None:
            res.unexpected.append((f"@{part}", "ran", "<no output from the guest>"))
            continue
        for name in g["order"]:
            if name not in h["checks"]:
                why = known.reason(cfg.name, name)
                if why is not None:
                    res.listed.append((name, "<absent>", g["checks"][name], why))
                else:
                    res.unexpected.append((name, "<absent>", g["checks"][name]))
        if g["rc"] != h["rc"]:
            res.unexpected.append((f"@{part}.exit", f"rc={h['rc']}", f"rc={g['rc']}"))
        for d in g["dups"]:
            res.unexpected.append((d, "once", "printed twice"))
    return gnoise


def run_config(cfg, a, top, exe, known, has_model, first_oracle):
    res = Result(cfg)
    t0 = time.monotonic()
    host_text = run_oracle(exe, top, slug(cfg.name))
    res.oracle = host_text
    rc, out, err, dt, notes = run_guest(cfg, a, top, known, has_model)
    res.notes += notes
    res.seconds = time.monotonic() - t0
    if a.save:
        stem = os.path.join(a.save, slug(cfg.name))
        with open(stem + ".host", "w") as f:
            f.write(host_text)
        with open(stem + ".guest", "w") as f:
            f.write(out)
        with open(stem + ".runvm.err", "w") as f:
            f.write(err)
    if rc != 0:
        tail = [line for line in err.splitlines() if line.strip()][-12:]
        res.rig_error = f"runvm.py exited {rc}:\n" + "\n".join("      " + line for line in tail)
    noise = compare(cfg, host_text, out, known, res)
    res.timings = []
    other = []
    for n in noise:
        m = re.match(r"^@@TIME (\S+) ([0-9.]+)$", n)
        if m:
            res.timings.append((m.group(1), float(m.group(2))))
        elif not n.startswith("@@MOUNT "):
            other.append(n)
    if other:
        res.notes.append(f"{len(other)} other lines on the guest console (kernel messages?); first: {shorten(other[0], 100)}")
        if a.verbose:
            warn(f"{cfg.name}: other guest output:\n" + "\n".join("    " + n for n in other))
    if first_oracle is not None:
        res.nondeterministic = oracle_diff(first_oracle, host_text)
    else:
        res.nondeterministic = []
    return res


def oracle_diff(a_text, b_text):
    a, _ = parse_parts(a_text)
    b, _ = parse_parts(b_text)
    out = []
    for part in PARTS:
        ca = a.get(part, {}).get("checks", {})
        cb = b.get(part, {}).get("checks", {})
        for name in sorted(set(ca) | set(cb)):
            if ca.get(name) != cb.get(name):
                out.append((name, ca.get(name, "<missing>"), cb.get(name, "<missing>")))
    return out


# ------------------------------------------------------------------ reporting

def shorten(s, n=70):
    return s if len(s) <= n else s[: n - 3] + "..."


def report(res, a):
    cfg = res.cfg
    tag = "" if cfg.ours else "  (reported only)"
    status = "PASS" if res.ok else "FAIL"
    say(f"{status} {cfg.name}: {res.passed}/{res.total} passed "
        f"({res.identical} identical, {len(res.listed)} listed differences), "
        f"{len(res.unexpected)} unexpected, {res.seconds:.0f} s{tag}")
    for n in res.notes:
        say(f"     note: {n}")
    if a.verbose and res.timings:
        say("     guest time per group: " + ", ".join(f"{g} {t:.1f}s" for g, t in res.timings))
    if res.rig_error:
        say(f"     rig failure: {res.rig_error}")
    if res.unexpected:
        w = max(len(n) for n, _, _ in res.unexpected)
        shown = res.unexpected if a.verbose or len(res.unexpected) <= a.max_shown else res.unexpected[: a.max_shown]
        for name, h, g in shown:
            say(f"     {name:<{w}}  host: {shorten(h)}")
            say(f"     {'':<{w}}  guest: {shorten(g)}")
        if len(shown) < len(res.unexpected):
            say(f"     ... and {len(res.unexpected) - len(shown)} more (--verbose shows all)")
    if a.show_listed and res.listed:
        for name, h, g, why in res.listed:
            say(f"     listed {name}: host {shorten(h, 40)} | guest {shorten(g, 40)}  ({shorten(why, 60)})")


def md_escape(s):
    return s.replace("|", "\\|")


def table(results, max_names=8):
    lines = ["| configuration | passed/total | unexpected differences |", "|---|---|---|"]
    for r in results:
        cfg = r.cfg
        name = f"`{cfg.name}`" + ("" if cfg.ours else " (QEMU built-in 9p)")
        passed = f"{r.passed}/{r.total}"
        if r.listed:
            passed += f" ({len(r.listed)} listed)"
        if r.rig_error:
            diff = "rig failure: " + md_escape(r.rig_error.splitlines()[-1].strip())
        elif not r.unexpected:
            diff = "none"
        else:
            names = [n for n, _, _ in r.unexpected]
            diff = f"{len(names)}: " + ", ".join(f"`{n}`" for n in names[:max_names])
            if len(names) > max_names:
                diff += f", ... (+{len(names) - max_names})"
        lines.append(f"| {name} | {passed} | {diff} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Configurations: " + ", ".join(c.name for c in all_configs()))
    p.add_argument("--config", metavar="GLOB", action="append", default=[],
                   help="run only configurations matching GLOB (repeatable; default: all)")
    p.add_argument("--daemon", metavar="PATH",
                   help="daemon binary (default: cargo build --release, then target/release/vhost-user-9p)")
    p.add_argument("--daemon-user", default=DEFAULT_USER, metavar="USER",
                   help=f"unprivileged user for the mapped-xattr daemon (default {DEFAULT_USER}; created if missing)")
    p.add_argument("--known", default=KNOWN, metavar="FILE", help="known differences (default: known-differences.txt)")
    p.add_argument("--table", metavar="FILE", help="write the markdown result table to FILE")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="configurations run at once (default 1)")
    p.add_argument("--no-build", action="store_true", help="do not run vm-images/build.sh first")
    p.add_argument("--vm-timeout", type=float, default=300, metavar="S", help="seconds per guest (default 300)")
    p.add_argument("--save", metavar="DIR", help="keep the host and guest outputs of each configuration in DIR")
    p.add_argument("--keep", action="store_true", help="keep the shares (in the temp dir) for inspection")
    p.add_argument("--show-listed", action="store_true", help="also print the listed (expected) differences")
    p.add_argument("--max-shown", type=int, default=40, metavar="N",
                   help="unexpected differences printed per configuration (default 40; all with -v)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    cfgs = all_configs()
    if a.config:
        cfgs = [c for c in cfgs if any(fnmatch.fnmatchcase(c.name, g) for g in a.config)]
        if not cfgs:
            p.error("no configuration matches --config")
    a.configs = cfgs
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("differential: must run as root (the oracle runs as root; the guest's chown/mknod need it too)",
              file=sys.stderr)
        return 2
    known = Known(a.known)
    t_start = time.monotonic()

    if not a.no_build:
        r = subprocess.run(["bash", BUILD_SH], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print(f"differential: vm-images/build.sh failed:\n{r.stderr}", file=sys.stderr)
            return 2
    if a.daemon is None:
        r = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "vhost-user-9p"], cwd=REPO)
        if r.returncode != 0:
            print("differential: cargo build --release failed", file=sys.stderr)
            return 2
        a.daemon = os.path.join(REPO, "target", "release", "vhost-user-9p")
    a.daemon = os.path.abspath(a.daemon)
    has_model = daemon_has_security_model(a.daemon)
    if any(c.model == "mapped-xattr" for c in a.configs):
        ensure_user(a.daemon_user)
    if a.save:
        os.makedirs(a.save, exist_ok=True)

    top = tempfile.mkdtemp(prefix="vu9p-differential-")
    os.chmod(top, 0o755)  # the unprivileged oracle part and the mapped-xattr daemon walk through it
    try:
        build_dir = os.path.join(top, "build")
        os.mkdir(build_dir, 0o755)
        exe = build_host_suite(build_dir)
        first_oracle = run_oracle(exe, top, "reference")
        fo, _ = parse_parts(first_oracle)
        counts = {p: len(fo.get(p, {}).get("checks", {})) for p in PARTS}
        say(f"differential: {sum(counts.values())} checks ({counts['root']} as root, {counts['user']} as uid {UNPRIV}), "
            f"daemon {a.daemon}{'' if has_model else ' (no --security-model)'}, "
            f"{len(a.configs)} configurations")

        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            futs = {pool.submit(run_config, c, a, top, exe, known, has_model, first_oracle): c
                    for c in a.configs}
            for fut in concurrent.futures.as_completed(futs):
                r = fut.result()
                results[r.cfg.name] = r
                report(r, a)
        ordered = [results[c.name] for c in a.configs]
    finally:
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)
        else:
            warn(f"kept {top}")

    nondet = {}
    for r in ordered:
        for name, x, y in r.nondeterministic:
            nondet.setdefault(name, (x, y))
    say("")
    say(table(ordered).rstrip("\n"))
    if a.table:
        with open(a.table, "w") as f:
            f.write(table(ordered))
    if nondet:
        say("")
        say(f"differential: the host oracle is not deterministic ({len(nondet)} checks differ between runs):")
        for name, (x, y) in sorted(nondet.items()):
            say(f"     {name}: {shorten(x)} | {shorten(y)}")
    if len(a.configs) == len(all_configs()):
        unused = [e for e in known.entries + known.skips if e[3] not in known.used]
        for cg, kg, _, lineno in unused:
            warn(f"{os.path.basename(a.known)}:{lineno}: '{cg} {kg}' matched no difference in this run")
    failed = [r.cfg.name for r in ordered if r.cfg.ours and not r.ok]
    say("")
    say(f"differential: {len(ordered)} configurations in {time.monotonic() - t_start:.0f} s; "
        + (f"FAILED: {', '.join(failed)}" if failed else "all vhost-user-9p configurations passed")
        + ("; host oracle nondeterministic" if nondet else ""))
    return 1 if failed or nondet else 0


if __name__ == "__main__":
    sys.exit(main())
