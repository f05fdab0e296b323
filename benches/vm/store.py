#!/usr/bin/env python3
"""A Nix-shaped store of real packages for the VM benchmark's store workloads.

Builds, once (a warm run only reads the stamp), a directory shaped like /nix/store:
one `HASH-NAME-VERSION` directory per Debian bookworm package of the closure of gcc and
libc6-dev (no recommends), each the package's files as dpkg-deb -x unpacks them, made to
work at /nix/store in a guest that has no C library of its own (busybox only), as Nix does:

  * every dynamically linked ELF executable and shared library is patched (patchelf): its
    interpreter is the store's ld.so and its RUNPATH lists only the store directories that
    hold its DT_NEEDED libraries (the guest has no ld.so.cache nor /lib);
  * symbolic links that leave their package, and the absolute paths in ld scripts
    (libc.so, libm.so, ...), point into the store instead of /lib and /usr;
  * HASH-profile: a buildEnv-style symlink farm of every package, used as gcc's --sysroot
    (headers, crt files, libraries in the places gcc and ld look for them);
  * HASH-gcc-wrapper-12: bin/gcc (and bin/cc), a /bin/sh script, like Nix's cc-wrapper,
    running the real gcc-12 with what it needs to find its parts and to link programs
    that run in the guest;
  * HASH-bench-src/hello.c: a C file including ~40 standard headers;
  * .bench.json (for the host) and .bench.env (for the guest's sh): what the workloads use.

The .debs come from the archive build.sh uses, through a private apt configuration
($CACHE/apt/bookworm-store) derived from build.sh's bookworm one, with an empty dpkg status.

Usage: benches/vm/store.py [--out DIR]   (default $CACHE/store; prints the store path)
Module: build_store(cache_dir, out=None) -> (store_path, info)
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys

ROOTS = ["gcc", "libc6-dev"]  # the closure of these is the store's content
STORE = "/nix/store"  # where the guest mounts it
ARCH_TRIPLET = "x86_64-linux-gnu"
GCC_MAJOR = "12"
NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"  # Nix's base-32 alphabet (no e, o, u, t)
INFO = ".bench.json"
# Headers for the compile workloads: C99/C11 and POSIX.
HEADERS = """assert.h ctype.h errno.h float.h limits.h locale.h math.h setjmp.h signal.h stdarg.h
stddef.h stdio.h stdlib.h string.h time.h stdint.h inttypes.h stdbool.h complex.h fenv.h wchar.h
wctype.h iso646.h tgmath.h stdalign.h stdnoreturn.h unistd.h fcntl.h sys/stat.h sys/types.h
sys/wait.h sys/mman.h sys/socket.h sys/time.h sys/uio.h sys/utsname.h pthread.h dirent.h dlfcn.h
poll.h netinet/in.h arpa/inet.h netdb.h termios.h glob.h regex.h""".split()


PROFILE = """# Read by a guest's login shell whose HOME is this store (vm-images/demo.sh --store DIR
# --shell): mount it as NixOS does, put the store's gcc first on PATH.
if . "$HOME/.guest-store.sh" && store_setup "$HOME"; then
	[ -n "${STORE_GCC:-}" ] && PATH=${STORE_GCC%/*}:$PATH
	echo "store: $HOME on /nix/.ro-store, overlay on /nix/store${STORE_GCC:+; gcc: $STORE_GCC}"
else
	echo "store: setting up /nix/store failed"
fi
"""


def die(msg):
    sys.exit(f"store.py: {msg}")


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("VU9P_CACHE") or os.path.join(base, "vhost-user-9p")


def store_hash(text):
    """32 characters of Nix's base-32 alphabet from sha256(text) (160 bits, as Nix's hashes)."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:20], "big")
    return "".join(NIX32[(n >> (5 * i)) & 31] for i in range(32))


def store_name(key, name, version=None):
    # Store names allow only [A-Za-z0-9+-._?=]: no epoch, '~' and the like become '_'.
    if version is not None:
        name += "-" + re.sub(r"[^A-Za-z0-9+._?=-]", "_", version.split(":", 1)[-1])
    return f"{store_hash(key)}-{name}"


def code_key():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read() + repr(ROOTS).encode()).hexdigest()[:16]


# --------------------------------------------------------------- fetching

def apt_env(cache):
    """A private apt configuration like vm-bench.py's deb-src one: build.sh's bookworm sources
    (its archive address was read from this machine's apt sources), own lists, archives and
    an empty dpkg status, so that the whole closure is downloaded."""
    binary_conf = os.path.join(cache, "apt", "bookworm")
    root = os.path.join(cache, "apt", "bookworm-store")
    try:
        with open(os.path.join(binary_conf, "etc", "sources.list")) as f:
            lines = [line for line in f if line.startswith("deb ")]
        with open(os.path.join(binary_conf, "apt.conf")) as f:
            conf = f.read().replace(binary_conf + "/", root + "/")
    except OSError:
        lines = []
    if not lines:
        die(f"no apt configuration in {binary_conf} (run vm-images/build.sh first)")
    for d in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d",
              "lists/partial", "archives/partial", "log"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    open(os.path.join(root, "status"), "w").close()
    for name, text in (("etc/sources.list", "".join(lines)), ("apt.conf", conf)):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    return root, dict(os.environ, APT_CONFIG=os.path.join(root, "apt.conf"))


def fetch_debs(cache):
    """Download the closure of ROOTS; [(package, version, path of the .deb)]."""
    root, env = apt_env(cache)
    args = ["install", "--no-install-recommends", "-y", "-qq"] + ROOTS

    def apt(*a, **kw):
        return subprocess.run(["apt-get", *a], env=env, text=True, **kw)

    if not any("_Packages" in n for n in os.listdir(os.path.join(root, "lists"))):
        apt("update", "-qq", check=True, stdout=subprocess.DEVNULL)
    if apt(*args, "--download-only", stdout=subprocess.DEVNULL).returncode != 0:
        apt("update", "-qq", check=True, stdout=subprocess.DEVNULL)  # stale lists: refresh once
        if apt(*args, "--download-only", stdout=subprocess.DEVNULL).returncode != 0:
            die(f"apt-get --download-only {' '.join(ROOTS)} failed")
    sim = apt(*args, "-s", stdout=subprocess.PIPE, check=True).stdout
    debs = []
    for m in re.finditer(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)", sim, re.M):
        name, version, arch = m.groups()
        path = os.path.join(root, "archives", f"{name}_{version.replace(':', '%3a')}_{arch}.deb")
        if not os.path.exists(path):
            die(f"apt-get did not download {path}")
        debs.append((name, version, path))
    if not debs:
        die("could not list the packages to fetch")
    return sorted(debs)


# --------------------------------------------------------------- ELF files

def elf_info(path):
    """(has PT_INTERP, [DT_NEEDED]) of a dynamically linked x86-64 executable or shared
    library; None for anything else (static, object files, other files)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4:6] != b"\x02\x01":
            return None
        e_type, machine = struct.unpack_from("<HH", head, 16)
        if e_type not in (2, 3) or machine != 62:  # ET_EXEC/ET_DYN, x86-64
            return None
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
        interp, dynamic, loads = False, None, []
        for i in range(phnum):
            p_type, _, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
            if p_type == 3:
                interp = True
            elif p_type == 2:
                dynamic = (off, filesz)
            elif p_type == 1:
                loads.append((vaddr, off, filesz))
        if dynamic is None:
            return None
        f.seek(dynamic[0])
        dyn = f.read(dynamic[1])
        needed, strtab = [], None
        for i in range(0, len(dyn) - 15, 16):
            tag, val = struct.unpack_from("<qQ", dyn, i)
            if tag == 0:
                break
            if tag == 1:
                needed.append(val)
            elif tag == 5:
                strtab = val
        base = next((o + strtab - va for va, o, sz in loads if va <= strtab < va + sz), None)
        names = []
        for off in needed:
            f.seek(base + off)
            names.append(f.read(256).split(b"\0", 1)[0].decode())
        return interp, names


# --------------------------------------------------------------- the store

def walk(top):
    """Relative paths of every non-directory entry under top (symlinks not followed)."""
    for d, dirs, files in os.walk(top):
        for n in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            yield os.path.relpath(os.path.join(d, n), top)


def usr_aliases(path):
    """path and its merged-/usr twin: bookworm packages still ship /lib and /usr/lib apart,
    but point at each other's files as if merged (/lib -> usr/lib)."""
    yield path
    for a, b in (("/lib", "/usr/lib"), ("/bin", "/usr/bin"), ("/sbin", "/usr/sbin")):
        if path.startswith(a + "/"):
            yield b + path[len(a):]
        elif path.startswith(b + "/"):
            yield a + path[len(b):]


def build_tree(tmp, debs):
    """Unpack and fix up the packages in tmp.  Returns ({package: store directory name},
    the interpreter, the number of ELF files patched, [DT_NEEDED names found nowhere])."""
    dirs = {}
    for name, version, deb in debs:
        dirs[name] = store_name(os.path.basename(deb), name, version)
        subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, dirs[name])], check=True)
    owner = {}  # "/usr/lib/..." (a path on a Debian system) -> package
    for name, d in dirs.items():
        for rel in walk(os.path.join(tmp, d)):
            owner.setdefault("/" + rel, name)

    def store_path(path, prefer):
        """The store path of a Debian system path, or None."""
        for p in usr_aliases(path):
            if os.path.lexists(os.path.join(tmp, dirs[prefer]) + p):
                return f"{STORE}/{dirs[prefer]}{p}"
        for p in usr_aliases(path):
            if p in owner:
                return f"{STORE}/{dirs[owner[p]]}{p}"
        return None

    libdirs = {}  # library file name -> [(package, its directory)]
    for p, name in sorted(owner.items()):
        if ".so" in os.path.basename(p):
            libdirs.setdefault(os.path.basename(p), []).append((name, os.path.dirname(p)))
    elfs = []
    for name, d in dirs.items():
        for rel in walk(os.path.join(tmp, d)):
            full = os.path.join(tmp, d, rel)
            if os.path.islink(full):
                # Links that leave the package (or are absolute) must go through the store.
                target = os.readlink(full)
                path = os.path.normpath(os.path.join("/" + os.path.dirname(rel), target))
                if target.startswith("/") or not os.path.lexists(os.path.join(tmp, d) + path):
                    new = store_path(path, name)
                    if new:
                        os.unlink(full)
                        os.symlink(new, full)
            elif not fix_ld_script(full, lambda p: store_path(p, name)):
                info = elf_info(full)
                if info and (info[0] or info[1]):
                    elfs.append((name, full, info))
    libc = dirs["libc6"]
    ldso = next(f"{STORE}/{libc}{p}" for p in (f"/lib/{ARCH_TRIPLET}/ld-linux-x86-64.so.2",
                                               "/lib64/ld-linux-x86-64.so.2")
                if os.path.isfile(os.path.join(tmp, libc) + p))
    missing = set()
    for name, full, (interp, needed) in elfs:
        runpath = []
        for lib in needed:
            where = sorted(libdirs.get(lib, []), key=lambda c: c[0] != name)  # own package first
            if not where:
                missing.add(lib)
                continue
            d = f"{STORE}/{dirs[where[0][0]]}{where[0][1]}"
            if d not in runpath:
                runpath.append(d)
        cmd = ["patchelf"] + (["--set-interpreter", ldso] if interp else [])
        subprocess.run(cmd + ["--set-rpath", ":".join(runpath), full], check=True)
    return dirs, ldso, len(elfs), sorted(missing)


def fix_ld_script(path, resolve):
    """If path is an ld script (libc.so: GROUP ( /lib/.../libc.so.6 ... )), point its absolute
    paths into the store and return True."""
    if not path.endswith((".so", ".a")) or os.path.getsize(path) > 4096:
        return False
    with open(path, "rb") as f:
        text = f.read()
    if not text.startswith(b"/* GNU ld script"):
        return False
    new = re.sub(rb"(?<![\w/.-])/[\w/.+-]+", lambda m: (resolve(m.group().decode()) or m.group().decode()).encode(), text)
    with open(path, "wb") as f:
        f.write(new)
    return True


def make_profile(tmp, dirs):
    """A buildEnv-style symlink farm of every package: real directories, each file a link
    into its package (the first package to provide a path wins)."""
    name = store_name(" ".join(sorted(dirs.values())), "profile")
    top = os.path.join(tmp, name)
    for pkg, d in sorted(dirs.items()):
        for rel in walk(os.path.join(tmp, d)):
            link = os.path.join(top, rel)
            if not os.path.lexists(link):
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(f"{STORE}/{d}/{rel}", link)
    return name


def make_wrapper(tmp, dirs, profile, ldso):
    p = f"{STORE}/{profile}"
    libs = [f"{STORE}/{dirs[n]}/lib/{ARCH_TRIPLET}" for n in ("libc6", "libgcc-s1")]
    script = f"""#!/bin/sh
# gcc, as a Nix-style cc-wrapper: the real gcc-{GCC_MAJOR} with what it needs in this store.
#  -B .../gcc/{ARCH_TRIPLET}/{GCC_MAJOR}/: cc1 (in cpp-{GCC_MAJOR}), crtbegin.o, libgcc and gcc's own
#      headers (libgcc-{GCC_MAJOR}-dev); -B also adds -isystem DIR/include and -L DIR
#  -B .../usr/bin/: as and ld (binutils), which gcc and collect2 look for there
#  --sysroot: libc headers and crt files; ld scripts already name store paths
#  --dynamic-linker, -rpath: programs built here run here (no /lib64/ld-linux, no /lib)
exec {STORE}/{dirs['gcc-' + GCC_MAJOR]}/usr/bin/gcc-{GCC_MAJOR} \\
	-B{p}/usr/lib/gcc/{ARCH_TRIPLET}/{GCC_MAJOR}/ -B{p}/usr/bin/ --sysroot={p} \\
	-Wl,--dynamic-linker={ldso} {' '.join('-Wl,-rpath,' + d for d in libs)} \\
	"$@"
"""
    name = store_name(script, f"gcc-wrapper-{GCC_MAJOR}")
    os.makedirs(os.path.join(tmp, name, "bin"))
    with open(os.path.join(tmp, name, "bin", "gcc"), "w") as f:
        f.write(script)
    os.chmod(os.path.join(tmp, name, "bin", "gcc"), 0o755)
    os.symlink("gcc", os.path.join(tmp, name, "bin", "cc"))
    return name


def make_bench_src(tmp):
    src = "".join(f"#include <{h}>\n" for h in HEADERS) + r"""
int main(void)
{
	struct utsname u;
	char buf[sizeof u.machine];
	if (uname(&u) != 0)
		return 1;
	snprintf(buf, sizeof buf, "%s", u.machine);
	printf("hello from the store: %zu headers, %s, sqrt(2) = %.3f\n",
	       (size_t)HEADER_COUNT, buf, sqrt((double)strlen(buf) - 4.0));
	return 0;
}
""".replace("HEADER_COUNT", str(len(HEADERS)))
    name = store_name(src, "bench-src")
    os.makedirs(os.path.join(tmp, name))
    with open(os.path.join(tmp, name, "hello.c"), "w") as f:
        f.write(src)
    return name


def build_store(cache_dir, out=None):
    """Build the store (once) in out (default: cache_dir/store); returns (its path, info)."""
    out = os.path.abspath(out or os.path.join(cache_dir, "store"))
    key = code_key()
    try:
        with open(os.path.join(out, INFO)) as f:
            info = json.load(f)
        if info.get("key") == key:
            write_guest_files(out)
            return out, info
    except (OSError, ValueError):
        pass
    if not shutil.which("patchelf"):
        die("patchelf not found: apt-get install patchelf")
    print(f"store.py: building the store in {out}...", file=sys.stderr)
    debs = fetch_debs(cache_dir)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    dirs, ldso, patched, missing = build_tree(tmp, debs)
    profile = make_profile(tmp, dirs)
    wrapper = make_wrapper(tmp, dirs, profile, ldso)
    src = make_bench_src(tmp)
    # Header packages: every package with files under usr/include or gcc's include directory.
    headers = sorted(d for d in dirs.values() if os.path.isdir(os.path.join(tmp, d, "usr/include"))
                     or os.path.isdir(os.path.join(tmp, d, f"usr/lib/gcc/{ARCH_TRIPLET}/{GCC_MAJOR}/include")))
    files = size = 0
    for d in os.listdir(tmp):
        for rel in walk(os.path.join(tmp, d)):
            st = os.lstat(os.path.join(tmp, d, rel))
            files += 1
            size += st.st_size
    info = {
        "key": key, "store": STORE,
        "gcc": f"{STORE}/{wrapper}/bin/gcc", "hello_c": f"{STORE}/{src}/hello.c",
        "header_packages": [f"{STORE}/{d}" for d in headers],
        "interpreter": ldso, "profile": f"{STORE}/{profile}",
        "packages": {n: dirs[n] for n in sorted(dirs)},
        "debs": [os.path.basename(p) for _, _, p in debs],
        "files": files, "bytes": size, "patched_elf_files": patched, "unresolved_libraries": missing,
    }
    with open(os.path.join(tmp, ".bench.env"), "w") as f:  # for the guest's sh
        f.write(f"STORE_GCC={info['gcc']}\nSTORE_HELLO_C={info['hello_c']}\n"
                f"STORE_HEADER_PACKAGES='{' '.join(info['header_packages'])}'\n")
    with open(os.path.join(tmp, INFO), "w") as f:
        json.dump(info, f, indent=1)
    write_guest_files(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return out, info


def write_guest_files(out):
    """The guest's side, kept up to date in the store root (not part of the key: a change to
    it need not rebuild the store): .guest-store.sh (benches/vm/guest-store.sh, for guests
    to source) and .profile, which sets the store up for a login shell whose HOME is the
    store's mount point (vm-images/demo.sh --store DIR --shell)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest-store.sh")) as f:
        files = {".guest-store.sh": f.read(), ".profile": PROFILE}
    for name, text in files.items():
        path = os.path.join(out, name)
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except OSError:
            pass
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(prog="benches/vm/store.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", help="the store directory (default: $CACHE/store)")
    a = p.parse_args()
    path, info = build_store(cache_dir(), a.out)
    print(path)


if __name__ == "__main__":
    main()
