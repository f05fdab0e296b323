#!/usr/bin/env python3
"""9P2000 and 9P2000.u checks against a running vhost-user-9p daemon.

Run by tests/socket_plan9.rs, which starts the daemon with
`--listen unix:SOCK --shared-dir SHARE --ctl` on a share it prepared (the
fixture list is in FIXTURES below; the Rust side creates exactly those), and
checks the host directory again after this script.

The 9P2000 session uses python-9p (`import py9p`, a binding of plan9port's
9P2000 codec; ci/test.sh installs it into the rig cache). py9p only speaks
9P2000, so the 9P2000.u session and the Tversion probes use the small raw
codec at the end of this file.

One line per check: "ok NAME", or "FAIL NAME: what was expected, what came"
and exit status 1 at the first failure. The last line on success is
"all N checks passed".

usage: py9p_check.py --sock PATH --share DIR
"""

import argparse
import grp
import os
import pwd
import socket
import stat as S
import struct
import sys
import time
import traceback

try:
    import py9p
    from py9p import Client, RemoteError
except ImportError as e:  # the Rust side also checks, with a clearer message
    print(f"FAIL import-py9p: python-9p is not importable ({e}); run ci/test.sh")
    sys.exit(1)

# The names the Rust side prepares (tests/socket_plan9.rs, fn prepare_share).
FIXTURES = """
hello.txt "hello from the share\\n" 0644
stamped.txt "stamped\\n", atime 1500000000.111111111, mtime 1600000000.222222222
sub/ 0755: inner.txt "inner\\n", mvsub.txt, esc.txt
sub2/ 0755
link_to_hello -> hello.txt     link_to_sub -> sub     abs_link -> /hello.txt
dangling -> nowhere            escape -> ../outside/secret.txt (exists outside the share)
ctlfile.txt "0123456789\\n"    rn_src.txt   wmode.txt   wmtime.txt   wgid.txt   wuid.txt
trunc.txt (100 x)              mvsrc.txt "moving\\n"   remove_me.txt   "sp ace%.txt"   "caf\u00e9\\n.txt"
nouser.txt (owner 54321:54321) ,other "comma file\\n"
realctl/: ",ctl" "I am a real file\\n", f.txt "f\\n"
"""

DMDIR = 0x80000000
DMAPPEND = 0x40000000
DMSYMLINK = 0x02000000
DMDEVICE = 0x00800000
DMNAMEDPIPE = 0x00200000
DMSOCKET = 0x00100000
QTDIR = 0x80
QTAPPEND = 0x40
OREAD, OWRITE, ORDWR, OTRUNC = 0, 1, 2, 0x10
NOFID = 0xFFFFFFFF
ROOT = 0
MSIZE = 65536
HELLO = b"hello from the share\n"
ENOENT_TEXT = "No such file or directory"


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def expect(what, expected, got):
    if expected != got:
        fail(f"{what}: expected {expected!r}, got {got!r}")


def expect_error(what, fn, startswith=None):
    """fn() must fail with Rerror; returns the error text."""
    try:
        r = fn()
    except RemoteError as e:
        text = str(e)
        if startswith is not None and not text.startswith(startswith):
            fail(f"{what}: expected an error starting {startswith!r}, got error {text!r}")
        return text
    fail(f"{what}: expected an error, got success ({r!r})")


def expect_walk_fails(x, names, start=ROOT):
    """A walk that must not reach its last element: an Rerror, or (9P's rule when
    the first element succeeds) an Rwalk with fewer qids than names."""
    f = x.fid()
    try:
        qids = x.c.walk(start, f, list(names))
    except RemoteError:
        return
    if len(qids) == len(names):
        x.c.clunk(f)
        fail(f"walk {names}: expected an error or a short walk, got all {len(names)} qids")


CHECKS = []


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn

    return deco


# ---------------------------------------------------------------- helpers


class Ctx:
    def __init__(self, sock, share):
        self.sock = sock
        self.share = share
        self.c = None
        self.nextfid = 1

    def host(self, *names):
        return os.path.join(self.share, *names)

    def fid(self):
        f = self.nextfid
        self.nextfid += 1
        return f

    def walk(self, names, start=ROOT):
        """Walks names (a list) from start into a new fid; a short walk is a failure."""
        f = self.fid()
        qids = self.c.walk(start, f, list(names))
        if len(qids) != len(names):
            fail(f"walk {names}: only {len(qids)} of {len(names)} elements walked")
        return f, qids

    def open(self, names, mode=OREAD, start=ROOT):
        f, _ = self.walk(names, start)
        self.c.open(f, mode)
        return f

    def read_all(self, fid, count=None):
        count = count or self.c.msize - 24
        out, off = b"", 0
        while True:
            chunk = self.c.read(fid, count, off)
            if not chunk:
                return out
            out += chunk
            off += len(chunk)

    def read_path(self, names):
        f = self.open(names)
        try:
            return self.read_all(f)
        finally:
            self.c.clunk(f)

    def stat(self, names):
        f, _ = self.walk(names)
        try:
            return self.c.stat(f)
        finally:
            self.c.clunk(f)

    def write_path(self, names, data, mode=OWRITE):
        f = self.open(names, mode)
        try:
            n = self.c.write(f, data, 0)
            expect(f"Rwrite count for {names}", len(data), n)
        finally:
            self.c.clunk(f)

    def wstat(self, names, **fields):
        f, _ = self.walk(names)
        try:
            self.c.wstat(f, wstat_record(**fields))
        finally:
            self.c.clunk(f)


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<H", len(b)) + b


def wstat_record(name="", uid="", gid="", muid="", mode=0xFFFFFFFF, atime=0xFFFFFFFF,
                 mtime=0xFFFFFFFF, length=0xFFFFFFFFFFFFFFFF, ext=None):
    """A Twstat stat record; defaults are 9P's "don't touch" values (~0, "").

    Encoded here because py9p's Dir cannot express length ~0 (its encoder
    range-checks length to 0..2**63-1).
    """
    body = struct.pack("<HIBIQIIIQ", 0xFFFF, 0xFFFFFFFF, 0xFF, 0xFFFFFFFF,
                       0xFFFFFFFFFFFFFFFF, mode, atime, mtime, length)
    body += s16(name) + s16(uid) + s16(gid) + s16(muid)
    if ext is not None:
        body += s16(ext) + struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    return struct.pack("<H", len(body)) + body


def split_records(data, what):
    """Whole stat records of a directory read (9P2000 layout, through py9p)."""
    out, off = [], 0
    while off < len(data):
        if off + 2 > len(data):
            fail(f"{what}: a partial stat record at byte {off} of {len(data)}")
        size = struct.unpack_from("<H", data, off)[0]
        if off + 2 + size > len(data):
            fail(f"{what}: stat record at byte {off} needs {2 + size} bytes, only {len(data) - off} came")
        out.append(py9p.decode_dir(data[off:off + 2 + size]))
        off += 2 + size
    return out


def pct(raw):
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x25 else "%%%02X" % c for c in raw)


def unpct(token, what):
    out, i = bytearray(), 0
    while i < len(token):
        ch = token[i]
        if not 0x21 <= ord(ch) <= 0x7E:
            fail(f"{what}: character {ch!r} in {token!r} should have been percent-encoded")
        if ch == "%":
            hx = token[i + 1:i + 3]
            if len(hx) != 2 or any(c not in "0123456789abcdefABCDEF" for c in hx):
                fail(f"{what}: bad percent escape in {token!r}")
            out.append(int(hx, 16))
            i += 3
        else:
            out.append(ord(ch))
            i += 1
    return bytes(out)


CTL_KEYS = ["dev", "inode", "mode", "nlink", "uid", "gid", "rdev", "size", "blksize",
            "blocks", "atime", "mtime", "ctime", "atimensec", "mtimensec", "ctimensec", "name"]


def parse_ctl(data, what):
    text = data.decode("ascii", "replace")
    if not text.endswith("\n") or text.count("\n") != 1:
        fail(f"{what}: expected one line ending in \\n, got {text!r}")
    toks = text[:-1].split(" ")
    if len(toks) % 2:
        fail(f"{what}: odd number of tokens in {text!r}")
    keys, vals = toks[0::2], toks[1::2]
    want = CTL_KEYS + (["symlink"] if len(keys) == len(CTL_KEYS) + 1 else [])
    if keys != want:
        fail(f"{what}: expected keys {want}, got {keys} in {text!r}")
    return dict(zip(keys, vals))


def ctl_expected(st):
    return {
        "dev": str(st.st_dev),
        "inode": str(st.st_ino),
        "mode": "0%o" % st.st_mode,
        "nlink": str(st.st_nlink),
        "uid": str(st.st_uid),
        "gid": str(st.st_gid),
        "rdev": str(st.st_rdev),
        "size": str(st.st_size),
        "blksize": str(st.st_blksize),
        "blocks": str(st.st_blocks),
        "atime": str(st.st_atime_ns // 10**9),
        "mtime": str(st.st_mtime_ns // 10**9),
        "ctime": str(st.st_ctime_ns // 10**9),
        "atimensec": str(st.st_atime_ns % 10**9),
        "mtimensec": str(st.st_mtime_ns % 10**9),
        "ctimensec": str(st.st_ctime_ns % 10**9),
    }


def compare_ctl(what, got, st, name=None, target=None, st_before=None):
    """Field by field: the control line `got` against host stat `st`.

    With `st_before` (a stat taken before the read), atime may also be that one's:
    reading a symlink's control file reads its target, which can move the link's
    atime (relatime: when atime <= mtime) after the server took its stat."""
    exp = ctl_expected(st)
    if st_before is not None:
        old = ctl_expected(st_before)
        if (got.get("atime"), got.get("atimensec")) == (old["atime"], old["atimensec"]):
            exp["atime"], exp["atimensec"] = old["atime"], old["atimensec"]
    bad = [f"{k}: expected {v}, got {got.get(k)}" for k, v in exp.items() if got.get(k) != v]
    if name is not None:
        n = unpct(got["name"], what)
        if n != name:
            bad.append(f"name: expected {pct(name)} ({name!r}), got {got['name']}")
    else:
        unpct(got["name"], what)  # well-formed at least
    if target is not None:
        if "symlink" not in got:
            bad.append(f"symlink: expected {pct(target)}, got no symlink field")
        elif unpct(got["symlink"], what) != target:
            bad.append(f"symlink: expected {pct(target)}, got {got['symlink']}")
    elif "symlink" in got:
        bad.append(f"symlink: expected no symlink field, got {got['symlink']}")
    if bad:
        fail(f"{what}: " + "; ".join(bad))


def resolve_in_share(share, rel):
    """The host path `rel` names in the share with symlinks followed the way the
    server must follow them (absolute targets from the share root, `..` never
    above it), or None if it does not exist."""
    cur, todo, hops = [], rel.split("/"), 0
    while todo:
        c = todo.pop(0)
        if c in ("", "."):
            continue
        if c == "..":
            if cur:
                cur.pop()
            continue
        p = os.path.join(share, *cur, c)
        if os.path.islink(p):
            hops += 1
            if hops > 40:
                return None
            t = os.readlink(p)
            if t.startswith("/"):
                cur = []
            todo = t.split("/") + todo
        elif os.path.lexists(p):
            cur.append(c)
        else:
            return None
    return os.path.join(share, *cur)


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# ---------------------------------------------------------------- 9P2000 (py9p)


@check("version-9P2000")
def _(x):
    x.c = Client.connect_unix(x.sock, msize=MSIZE)
    expect("py9p's default version string", "9P2000", x.c.version_string)
    r = x.c.negotiate()
    expect("Rversion version", "9P2000", r.version)
    if not 0 < r.msize <= MSIZE:
        fail(f"Rversion msize: expected 1..{MSIZE}, got {r.msize}")


@check("attach")
def _(x):
    q = x.c.attach(ROOT, uname=user_name(os.getuid()))
    expect("root qid type", QTDIR, q.type & QTDIR)
    expect("root qid.path = the share's inode", os.stat(x.share).st_ino, q.path)
    x.root_qid = q


@check("walk-open-read")
def _(x):
    expect("content of hello.txt", HELLO, x.read_path(["hello.txt"]))


@check("walk-enoent-error-text")
def _(x):
    text = expect_error("walk nonexistent", lambda: x.walk(["nonexistent"]))
    expect("Rerror text", ENOENT_TEXT, text)


@check("walk-multi-element")
def _(x):
    f, qids = x.walk(["sub", "inner.txt"])
    x.c.clunk(f)
    expect("qid types of sub, inner.txt", [QTDIR, 0], [q.type for q in qids])
    expect("qid.path of inner.txt = host inode", os.stat(x.host("sub", "inner.txt")).st_ino, qids[1].path)


@check("create-write-read")
def _(x):
    d, _ = x.walk([])
    x.c.create(d, "created.txt", 0o640, ORDWR)
    data = b"written via 9P2000\n"
    expect("Rwrite count", len(data), x.c.write(d, data, 0))
    expect("read back on the same fid", data, x.c.read(d, 100, 0))
    x.c.clunk(d)
    with open(x.host("created.txt"), "rb") as fh:
        expect("host content of created.txt", data, fh.read())
    expect("host mode of created.txt", 0o100640, os.stat(x.host("created.txt")).st_mode)


@check("create-dir-and-file-in-it")
def _(x):
    d, _ = x.walk([])
    q, _ = x.c.create(d, "newdir", DMDIR | 0o755, OREAD)
    x.c.clunk(d)
    expect("qid type of the new dir", QTDIR, q.type & QTDIR)
    if not os.path.isdir(x.host("newdir")):
        fail("host: newdir is not a directory")
    d, _ = x.walk(["newdir"])
    x.c.create(d, "inner.txt", 0o644, OWRITE)
    x.c.write(d, b"in newdir\n", 0)
    x.c.clunk(d)
    with open(x.host("newdir", "inner.txt"), "rb") as fh:
        expect("host content of newdir/inner.txt", b"in newdir\n", fh.read())


@check("open-otrunc")
def _(x):
    with open(x.host("created_trunc.txt"), "wb") as fh:
        fh.write(b"to be truncated")
    f = x.open(["created_trunc.txt"], OWRITE | OTRUNC)
    x.c.clunk(f)
    expect("host size after Topen OTRUNC", 0, os.stat(x.host("created_trunc.txt")).st_size)


@check("stat-file")
def _(x):
    d = x.stat(["hello.txt"])
    st = os.stat(x.host("hello.txt"))
    expect("name", "hello.txt", d.name)
    expect("length", st.st_size, d.length)
    expect("mode", st.st_mode & 0o777, d.mode)
    expect("qid.type", 0, d.qid.type)
    expect("qid.path = host inode", st.st_ino, d.qid.path)
    expect("uid", user_name(st.st_uid), d.uid)
    expect("gid", group_name(st.st_gid), d.gid)
    expect("mtime", st.st_mtime_ns // 10**9, d.mtime)
    expect("atime", st.st_atime_ns // 10**9, d.atime)


@check("stat-dir")
def _(x):
    d = x.stat(["sub"])
    expect("name", "sub", d.name)
    expect("mode", DMDIR | 0o755, d.mode)
    expect("qid.type", QTDIR, d.qid.type)
    expect("length", 0, d.length)


@check("stat-unknown-owner-is-numeric")
def _(x):
    d = x.stat(["nouser.txt"])
    expect("uid, gid of a file owned by 54321:54321", ("54321", "54321"), (d.uid, d.gid))


@check("qid-vers-changes-with-content")
def _(x):
    before = x.stat(["created.txt"]).qid
    f = x.open(["created.txt"], OWRITE)
    x.c.write(f, b"more bytes", 100)
    x.c.clunk(f)
    after = x.stat(["created.txt"]).qid
    expect("qid.path after a write", before.path, after.path)
    if after.vers == before.vers:
        fail(f"qid.vers: expected a change after a write, stayed {before.vers}")


def list_dir(x, names, count):
    f = x.open(names)
    try:
        recs, off = [], 0
        while True:
            chunk = x.c.read(f, count, off)
            if not chunk:
                return recs
            recs += split_records(chunk, f"read of {names or ['/']} at offset {off}")
            off += len(chunk)
    finally:
        x.c.clunk(f)


@check("dir-read-matches-host")
def _(x):
    recs = list_dir(x, [], 300)  # small count: many reads, each of whole records
    names = [d.name for d in recs]
    expect("names (sorted) against os.listdir", sorted(os.listdir(x.share)), sorted(names))
    expect("duplicate names", len(set(names)), len(names))
    by_inode = {}
    for d in recs:
        p = resolve_in_share(x.share, d.name)
        if p is None:  # a dangling symlink (targets resolve inside the share)
            expect(f"{d.name}: dangling symlink (mode, length)", (0, 0), (d.mode, d.length))
            continue
        st = os.stat(p)
        isdir = S.S_ISDIR(st.st_mode)
        expect(f"{d.name}: DMDIR", DMDIR if isdir else 0, d.mode & DMDIR)
        expect(f"{d.name}: qid.type QTDIR", QTDIR if isdir else 0, d.qid.type & QTDIR)
        expect(f"{d.name}: permission bits", st.st_mode & 0o777, d.mode & 0o777)
        expect(f"{d.name}: mode bits beside DMDIR and the permissions (none in 9P2000 here)",
               0, d.mode & ~(DMDIR | 0o777))
        expect(f"{d.name}: length", 0 if isdir else st.st_size, d.length)
        key = (st.st_dev, st.st_ino)
        if key in by_inode and by_inode[key][1] != d.qid.path:
            fail(f"{d.name} and {by_inode[key][0]} are one host file but have qid.path {d.qid.path:#x} and {by_inode[key][1]:#x}")
        by_inode[key] = (d.name, d.qid.path)
    paths = {}
    for key, (name, path) in by_inode.items():
        if path in paths:
            fail(f"qid.path {path:#x} is shared by different files {name} and {paths[path]}")
        paths[path] = name


@check("dir-read-subdir-with-real-comma-ctl")
def _(x):
    names = sorted(d.name for d in list_dir(x, ["realctl"], 8192))
    expect("names in realctl/", sorted(os.listdir(x.host("realctl"))), names)


@check("dir-read-bad-offset-refused")
def _(x):
    f = x.open([])
    try:
        first = x.c.read(f, 300, 0)
        if not first:
            fail("first read of / returned nothing")
        expect_error("Tread of a directory at offset 7 (not 0 nor the end of the previous read)",
                     lambda: x.c.read(f, 300, 7))
        again = x.c.read(f, 300, 0)
        expect("a re-read from offset 0 gives the first records again", first, again)
    finally:
        x.c.clunk(f)


@check("wstat-rename")
def _(x):
    x.wstat(["rn_src.txt"], name="rn_dst.txt")
    expect("host: rn_src.txt exists", False, os.path.lexists(x.host("rn_src.txt")))
    with open(x.host("rn_dst.txt"), "rb") as fh:
        expect("host content of rn_dst.txt", b"rename me\n", fh.read())


@check("wstat-rename-with-slash-refused")
def _(x):
    expect_error("Twstat name='sub/x' (a rename is within the directory)",
                 lambda: x.wstat(["rn_dst.txt"], name="sub/x"))
    expect("host: rn_dst.txt, sub/x exist", (True, False),
           (os.path.exists(x.host("rn_dst.txt")), os.path.lexists(x.host("sub", "x"))))


@check("walk-dotdot-of-root-is-root")
def _(x):
    f, qids = x.walk([".."])
    root = x.c.stat(f)
    x.c.clunk(f)
    expect("qid.path of /.. = the root's (Rattach)", x.root_qid.path, qids[0].path)
    expect("qid type of /..", QTDIR, qids[0].type & QTDIR)
    expect("stat of /.. is a directory", DMDIR, root.mode & DMDIR)


@check("wstat-mode")
def _(x):
    x.wstat(["wmode.txt"], mode=0o600)
    expect("host mode of wmode.txt", 0o100600, os.stat(x.host("wmode.txt")).st_mode)


@check("wstat-mtime")
def _(x):
    x.wstat(["wmtime.txt"], mtime=1234567890)
    expect("host mtime of wmtime.txt", 1234567890, int(os.stat(x.host("wmtime.txt")).st_mtime))


@check("wstat-length-truncates")
def _(x):
    x.wstat(["trunc.txt"], length=5)
    expect("host size of trunc.txt", 5, os.stat(x.host("trunc.txt")).st_size)


@check("wstat-gid")
def _(x):
    g = grp.getgrgid(1).gr_name
    x.wstat(["wgid.txt"], gid=g)
    expect(f"host gid of wgid.txt (wstat gid {g!r})", 1, os.stat(x.host("wgid.txt")).st_gid)


@check("wstat-all-dont-touch-is-a-noop")
def _(x):
    before = os.stat(x.host("wmode.txt"))
    x.wstat(["wmode.txt"])
    after = os.stat(x.host("wmode.txt"))
    expect("host (mode, size, mtime_ns, uid, gid)",
           (before.st_mode, before.st_size, before.st_mtime_ns, before.st_uid, before.st_gid),
           (after.st_mode, after.st_size, after.st_mtime_ns, after.st_uid, after.st_gid))


@check("wstat-uid-refused")
def _(x):
    before = os.stat(x.host("wuid.txt"))
    other = "nobody" if user_name(before.st_uid) != "nobody" else "root"
    expect_error(f"Twstat uid={other!r}", lambda: x.wstat(["wuid.txt"], uid=other))
    expect("host uid after the refused wstat", before.st_uid, os.stat(x.host("wuid.txt")).st_uid)


@check("wstat-uid-refused-changes-nothing")
def _(x):
    # Plan 9's stat(5): "Either all the changes in wstat request happen, or none of them does."
    before = os.stat(x.host("wuid.txt"))
    other = "nobody" if user_name(before.st_uid) != "nobody" else "root"
    expect_error(f"Twstat uid={other!r} mode=0611",
                 lambda: x.wstat(["wuid.txt"], uid=other, mode=0o611))
    expect("host mode after the refused wstat", before.st_mode, os.stat(x.host("wuid.txt")).st_mode)


@check("remove")
def _(x):
    f, _ = x.walk(["remove_me.txt"])
    x.c.remove(f)
    expect("host: remove_me.txt exists", False, os.path.lexists(x.host("remove_me.txt")))


@check("symlink-followed-read")
def _(x):
    expect("content through link_to_hello", HELLO, x.read_path(["link_to_hello"]))
    d = x.stat(["link_to_hello"])
    expect("stat of link_to_hello (name, length, mode, qid.path)",
           ("link_to_hello", len(HELLO), 0o644, os.stat(x.host("hello.txt")).st_ino),
           (d.name, d.length, d.mode, d.qid.path))


@check("symlink-absolute-target-inside-share")
def _(x):
    expect("content through abs_link -> /hello.txt", HELLO, x.read_path(["abs_link"]))


@check("symlink-to-dir-followed-in-walk")
def _(x):
    expect("content of link_to_sub/inner.txt", b"inner\n", x.read_path(["link_to_sub", "inner.txt"]))


@check("symlink-dangling-stat")
def _(x):
    d = x.stat(["dangling"])
    expect("dangling (name, length, mode)", ("dangling", 0, 0), (d.name, d.length, d.mode))


@check("symlink-escape-stays-inside")
def _(x):
    d = x.stat(["escape"])
    expect("escape -> ../outside/secret.txt (length, mode): dangling inside the share",
           (0, 0), (d.length, d.mode))


@check("nofollow-symlink-is-append-only-file")
def _(x):
    d = x.stat([",nofollow", "link_to_hello"])
    expect("mode", DMAPPEND | 0o444, d.mode)
    expect("qid.type", QTAPPEND, d.qid.type)
    expect("content", b"hello.txt", x.read_path([",nofollow", "link_to_hello"]))
    expect("length = length of the target", len("hello.txt"), d.length)


@check("nofollow-symlink-not-writable")
def _(x):
    f, _ = x.walk([",nofollow", "link_to_hello"])
    try:
        expect_error("Topen OWRITE of ,nofollow/link_to_hello", lambda: x.c.open(f, OWRITE))
    finally:
        x.c.clunk(f)


@check("nofollow-does-not-walk-through-dir-symlink")
def _(x):
    expect_walk_fails(x, [",nofollow", "link_to_sub", "inner.txt"])


@check("ctl-dir-is-a-directory")
def _(x):
    f, qids = x.walk([",ctl"])
    try:
        expect(",ctl qid type", QTDIR, qids[0].type & QTDIR)
        expect(",ctl stat mode DMDIR", DMDIR, x.c.stat(f).mode & DMDIR)
    finally:
        x.c.clunk(f)


@check("ctl-read-file")
def _(x):
    data = x.read_path([",ctl", "stamped.txt"])
    st = os.stat(x.host("stamped.txt"))
    got = parse_ctl(data, ",ctl/stamped.txt")
    compare_ctl(",ctl/stamped.txt", got, st, name=b"stamped.txt")
    expect("atimensec/mtimensec as prepared", ("111111111", "222222222"),
           (got["atimensec"], got["mtimensec"]))


@check("ctl-read-walked-one-element-at-a-time")
def _(x):
    # The Linux client walks ,ctl first, then the file from the ,ctl fid.
    d, _ = x.walk([",ctl"])
    f = x.open(["stamped.txt"], start=d)
    data = x.read_all(f)
    x.c.clunk(f)
    x.c.clunk(d)
    compare_ctl(",ctl then stamped.txt", parse_ctl(data, "two walks"), os.stat(x.host("stamped.txt")),
                name=b"stamped.txt")


@check("ctl-read-percent-encoded-name")
def _(x):
    data = x.read_path([",ctl", "sp ace%.txt"])
    got = parse_ctl(data, ",ctl/sp ace%.txt")
    expect("name token", "sp%20ace%25.txt", got["name"])
    compare_ctl(",ctl/sp ace%.txt", got, os.stat(x.host("sp ace%.txt")), name=b"sp ace%.txt")


@check("ctl-read-percent-encoded-utf8-and-newline")
def _(x):
    raw = "caf\u00e9\n.txt"
    got = parse_ctl(x.read_path([",ctl", raw]), ",ctl/caf\u00e9\\n.txt")
    compare_ctl(",ctl/caf\u00e9\\n.txt", got, os.stat(x.host(raw)), name=raw.encode())


@check("ctl-read-follows-symlink")
def _(x):
    got = parse_ctl(x.read_path([",ctl", "link_to_hello"]), ",ctl/link_to_hello")
    compare_ctl(",ctl/link_to_hello", got, os.stat(x.host("hello.txt")))


@check("ctl-read-follows-absolute-symlink-inside-share")
def _(x):
    got = parse_ctl(x.read_path([",ctl", "abs_link"]), ",ctl/abs_link")
    compare_ctl(",ctl/abs_link (-> /hello.txt = the share's hello.txt)", got, os.stat(x.host("hello.txt")))


@check("ctl-nofollow-read-symlink-itself")
def _(x):
    for el in (",ctl,nofollow", ",nofollow,ctl"):
        before = os.lstat(x.host("link_to_hello"))
        got = parse_ctl(x.read_path([el, "link_to_hello"]), f"{el}/link_to_hello")
        compare_ctl(f"{el}/link_to_hello", got, os.lstat(x.host("link_to_hello")),
                    name=b"link_to_hello", target=b"hello.txt", st_before=before)


@check("ctl-read-dir-itself")
def _(x):
    compare_ctl(",ctl/,", parse_ctl(x.read_path([",ctl", ","]), ",ctl/,"), os.stat(x.share))
    compare_ctl("sub/,ctl/,", parse_ctl(x.read_path(["sub", ",ctl", ","]), "sub/,ctl/,"),
                os.stat(x.host("sub")))
    compare_ctl(",ctl/sub", parse_ctl(x.read_path([",ctl", "sub"]), ",ctl/sub"),
                os.stat(x.host("sub")), name=b"sub")


@check("ctl-other-spellings")
def _(x):
    got = parse_ctl(x.read_path([",ctl,ctl", "hello.txt"]), ",ctl,ctl/hello.txt")
    compare_ctl(",ctl,ctl/hello.txt", got, os.stat(x.host("hello.txt")), name=b"hello.txt")


@check("ctl-missing-file-is-an-error")
def _(x):
    expect_walk_fails(x, [",ctl", "nonexistent"])


@check("comma-names-that-are-not-ctl-are-ordinary")
def _(x):
    expect("content of the real file ,other", b"comma file\n", x.read_path([",other"]))
    expect_error("walk ,ctl,bogus (an ordinary name, absent)", lambda: x.walk([",ctl,bogus"]))
    expect_error("walk ,nofollow,x (an ordinary name, absent)", lambda: x.walk([",nofollow,x"]))


@check("real-comma-ctl-entry-wins")
def _(x):
    expect("content of realctl/,ctl", b"I am a real file\n", x.read_path(["realctl", ",ctl"]))
    got = parse_ctl(x.read_path(["realctl", ",ctl,ctl", "f.txt"]), "realctl/,ctl,ctl/f.txt")
    compare_ctl("realctl/,ctl,ctl/f.txt", got, os.stat(x.host("realctl", "f.txt")), name=b"f.txt")


@check("ctl-write-chmod")
def _(x):
    x.write_path([",ctl", "ctlfile.txt"], b"chmod 600\n")
    expect("host mode", 0o100600, os.stat(x.host("ctlfile.txt")).st_mode)


@check("ctl-write-utimes")
def _(x):
    x.write_path([",ctl", "ctlfile.txt"], b"utimes 1 2 3 4\n")
    st = os.stat(x.host("ctlfile.txt"))
    expect("host (atime_ns, mtime_ns)", (1_000_000_002, 3_000_000_004), (st.st_atime_ns, st.st_mtime_ns))


@check("ctl-write-utimes-now-omit")
def _(x):
    t0 = time.time_ns()
    x.write_path([",ctl", "ctlfile.txt"], b"utimes now omit\n")
    t1 = time.time_ns()
    st = os.stat(x.host("ctlfile.txt"))
    expect("host mtime_ns (omit)", 3_000_000_004, st.st_mtime_ns)
    # The kernel stamps with its coarse clock: up to a tick behind time.time_ns().
    if not t0 - 20_000_000 <= st.st_atime_ns <= t1:
        fail(f"host atime_ns (now): expected within [{t0} - 20 ms, {t1}], got {st.st_atime_ns}")


@check("ctl-write-bad-command-changes-nothing")
def _(x):
    before = os.stat(x.host("ctlfile.txt"))
    expect_error("write 'chmod 999'", lambda: x.write_path([",ctl", "ctlfile.txt"], b"chmod 999\n"),
                 startswith="ctl: line 1:")
    expect_error("write 'chmod 640' + 'frobnicate 1'",
                 lambda: x.write_path([",ctl", "ctlfile.txt"], b"chmod 640\nfrobnicate 1\n"),
                 startswith="ctl: line 2:")
    expect_error("write 'truncate 1' + 'utimes 1'",
                 lambda: x.write_path([",ctl", "ctlfile.txt"], b"truncate 1\nutimes 1\n"),
                 startswith="ctl: line 2:")
    after = os.stat(x.host("ctlfile.txt"))
    expect("host (mode, size, atime_ns, mtime_ns) after the refused writes",
           (before.st_mode, before.st_size, before.st_atime_ns, before.st_mtime_ns),
           (after.st_mode, after.st_size, after.st_atime_ns, after.st_mtime_ns))


@check("ctl-write-several-commands")
def _(x):
    x.write_path([",ctl", "ctlfile.txt"], b"chmod 644\ntruncate 3\nutimes 5 6 7 8\n")
    st = os.stat(x.host("ctlfile.txt"))
    expect("host (mode, atime_ns, mtime_ns, size)", (0o100644, 5_000_000_006, 7_000_000_008, 3),
           (st.st_mode, st.st_atime_ns, st.st_mtime_ns, st.st_size))


@check("ctl-write-two-writes-on-one-fid")
def _(x):
    f = x.open([",ctl", "ctlfile.txt"], OWRITE)
    try:
        a, b = b"chmod 604\n", b"truncate 2\n"
        x.c.write(f, a, 0)
        x.c.write(f, b, len(a))
    finally:
        x.c.clunk(f)
    st = os.stat(x.host("ctlfile.txt"))
    expect("host (mode, size)", (0o100604, 2), (st.st_mode, st.st_size))


@check("ctl-write-chown")
def _(x):
    if os.geteuid() == 0:
        uid, gid = 1234, 5678
    else:
        uid, gid = os.getuid(), os.getgid()
    x.write_path([",ctl", "ctlfile.txt"], f"chown {uid} {gid}\n".encode())
    st = os.stat(x.host("ctlfile.txt"))
    expect("host (uid, gid)", (uid, gid), (st.st_uid, st.st_gid))
    x.write_path([",ctl", "ctlfile.txt"], f"chown -1 {os.getgid()}\n".encode())
    st = os.stat(x.host("ctlfile.txt"))
    expect("host (uid, gid) after chown -1 GID", (uid, os.getgid()), (st.st_uid, st.st_gid))


@check("ctl-dir-write-symlink")
def _(x):
    x.write_path([",ctl", ","], b"symlink tgt newlink\n")
    expect("host readlink newlink", "tgt", os.readlink(x.host("newlink")))


@check("ctl-dir-write-percent-decoded")
def _(x):
    x.write_path([",ctl", ","], b"symlink target%20with%20space sp%20link\n")
    expect("host readlink 'sp link'", "target with space", os.readlink(x.host("sp link")))
    before = os.lstat(x.host("sp link"))
    got = parse_ctl(x.read_path([",ctl,nofollow", "sp link"]), ",ctl,nofollow/sp link")
    compare_ctl(",ctl,nofollow/sp link", got, os.lstat(x.host("sp link")), name=b"sp link",
                target=b"target with space", st_before=before)
    expect("(name, symlink) tokens", ("sp%20link", "target%20with%20space"), (got["name"], got["symlink"]))


@check("ctl-dir-write-link")
def _(x):
    x.write_path([",ctl", ","], b"link hello.txt hard.txt\n")
    expect("host inode of hard.txt", os.stat(x.host("hello.txt")).st_ino, os.stat(x.host("hard.txt")).st_ino)


@check("ctl-dir-write-rename-across-dirs")
def _(x):
    x.write_path([",ctl", ","], b"rename mvsrc.txt sub/moved.txt\n")
    expect("host: mvsrc.txt exists", False, os.path.lexists(x.host("mvsrc.txt")))
    with open(x.host("sub", "moved.txt"), "rb") as fh:
        expect("host content of sub/moved.txt", b"moving\n", fh.read())


@check("ctl-dir-write-rename-from-share-root")
def _(x):
    x.write_path(["sub", ",ctl", ","], b"rename mvsub.txt /top.txt\n")
    expect("host: sub/mvsub.txt exists", False, os.path.lexists(x.host("sub", "mvsub.txt")))
    expect("host: top.txt exists", True, os.path.exists(x.host("top.txt")))


@check("ctl-dir-write-rename-dotdot-stays-in-share")
def _(x):
    x.write_path(["sub", ",ctl", ","], b"rename esc.txt ../../../esc2.txt\n")
    outside = os.path.join(os.path.dirname(x.share), "esc2.txt")
    expect("host: a file esc2.txt next to the share", False, os.path.lexists(outside))
    expect("host: esc2.txt at the share root (.. stops at the root)", True, os.path.exists(x.host("esc2.txt")))


@check("ctl-dir-write-mknod")
def _(x):
    x.write_path([",ctl", ","], b"mknod fifo1 p 0644 0 0\n")
    st = os.lstat(x.host("fifo1"))
    expect("host fifo1 (is fifo, mode bits)", (True, 0o644), (S.S_ISFIFO(st.st_mode), st.st_mode & 0o7777))
    x.write_path([",ctl", ","], b"mknod cdev c 0600 1 3\n")
    st = os.lstat(x.host("cdev"))
    expect("host cdev (is char dev, rdev)", (True, os.makedev(1, 3)), (S.S_ISCHR(st.st_mode), st.st_rdev))
    x.write_path([",ctl", ","], b"mknod bdev b 0600 7 0\nmknod sock1 s 0644 0 0\nmknod reg1 f 0640 0 0\n")
    st = os.lstat(x.host("bdev"))
    expect("host bdev (is block dev, rdev)", (True, os.makedev(7, 0)), (S.S_ISBLK(st.st_mode), st.st_rdev))
    st = os.lstat(x.host("sock1"))
    expect("host sock1 is a socket", True, S.S_ISSOCK(st.st_mode))
    st = os.lstat(x.host("reg1"))
    expect("host reg1 (is regular, mode bits, size)", (True, 0o640, 0),
           (S.S_ISREG(st.st_mode), st.st_mode & 0o7777, st.st_size))


@check("ctl-dir-write-chmod-dir")
def _(x):
    x.write_path(["sub2", ",ctl", ","], b"chmod 700\n")
    expect("host mode of sub2", 0o40700, os.stat(x.host("sub2")).st_mode)


@check("ctl-dir-write-bad-command")
def _(x):
    expect_error("write 'symlink onlyone' to ,ctl/,",
                 lambda: x.write_path([",ctl", ","], b"symlink onlyone\n"), startswith="ctl: line 1:")
    expect_error("write 'symlink a okname' + 'rename' to ,ctl/,",
                 lambda: x.write_path([",ctl", ","], b"symlink a okname\nrename\n"), startswith="ctl: line 2:")
    expect("host: onlyone or okname created", [], [n for n in ("onlyone", "okname") if os.path.lexists(x.host(n))])


@check("ctl-files-cannot-be-removed-renamed-or-created-in")
def _(x):
    f, _ = x.walk([",ctl", "hello.txt"])
    expect_error("Tremove of ,ctl/hello.txt", lambda: x.c.remove(f))  # (the fid is clunked either way)
    f, _ = x.walk([",ctl", "hello.txt"])
    try:
        expect_error("Twstat name='x.txt' of ,ctl/hello.txt", lambda: x.c.wstat(f, wstat_record(name="x.txt")))
    finally:
        x.c.clunk(f)
    d, _ = x.walk([",ctl"])
    try:
        expect_error("Tcreate in ,ctl", lambda: x.c.create(d, "made.txt", 0o644, OWRITE))
    finally:
        # A failed Tcreate leaves the fid as it was.
        x.c.clunk(d)
    expect("host: (hello.txt, x.txt, made.txt) exist", (True, False, False),
           tuple(os.path.lexists(x.host(n)) for n in ("hello.txt", "x.txt", "made.txt")))


@check("ctl-dir-commands-stay-in-the-share")
def _(x):
    secret = os.stat(os.path.join(os.path.dirname(x.share), "outside", "secret.txt"))
    for cmd in (b"link ../outside/secret.txt stolen\n", b"link /../outside/secret.txt stolen\n",
                b"rename ../outside/secret.txt stolen\n", b"symlink t ../../beside\n",
                b"mknod ../../beside2 p 0644 0 0\n"):
        try:
            x.write_path([",ctl", ","], cmd)
        except RemoteError:
            pass
    expect("entries next to the share", ["outside", "share"], sorted(os.listdir(os.path.dirname(x.share))))
    expect("files in outside/", ["secret.txt"], os.listdir(os.path.join(os.path.dirname(x.share), "outside")))
    after = os.stat(os.path.join(os.path.dirname(x.share), "outside", "secret.txt"))
    expect("link count of the file outside", secret.st_nlink, after.st_nlink)


@check("dir-read-never-shows-ctl-names")
def _(x):
    names = [d.name for d in list_dir(x, [], 8192)]
    expect("names (sorted) against os.listdir after the ctl writes", sorted(os.listdir(x.share)), sorted(names))
    bad = [n for n in names if n.startswith(",") and n != ",other"]
    expect("control names listed", [], bad)


@check("clunk-root")
def _(x):
    x.c.clunk(ROOT)
    x.c.close()


# ---------------------------------------------------------------- raw codec (9P2000.u, Tversion probes)


class Raw:
    """A minimal synchronous 9P client speaking raw bytes (for 9P2000.u)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.tag = 0
        self.dotu = False

    def close(self):
        self.s.close()

    def _recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                fail("connection closed by the daemon")
            b += c
        return b

    def rpc(self, typ, body, tag=None):
        if tag is None:
            self.tag += 1
            tag = self.tag
        self.s.sendall(struct.pack("<IBH", 7 + len(body), typ, tag) + body)
        size, rtyp, rtag = struct.unpack("<IBH", self._recv(7))
        payload = self._recv(size - 7)
        if rtag != tag:
            fail(f"reply tag {rtag} for request tag {tag}")
        if rtyp == 107:
            ename, off = gets(payload, 0)
            errno = struct.unpack_from("<I", payload, off)[0] if self.dotu else None
            if self.dotu and off + 4 != len(payload):
                fail(f"9P2000.u Rerror: expected ename[s] errno[4] ({off + 4} bytes), got {len(payload)} bytes")
            raise RawError(ename, errno)
        if rtyp != typ + 1:
            fail(f"expected reply type {typ + 1}, got {rtyp}")
        return payload

    def version(self, msize, version):
        p = self.rpc(100, struct.pack("<I", msize) + s16(version), tag=0xFFFF)
        return struct.unpack_from("<I", p)[0], gets(p, 4)[0]

    def attach(self, fid, uname, n_uname):
        return self.rpc(104, struct.pack("<II", fid, NOFID) + s16(uname) + s16("") + struct.pack("<I", n_uname))

    def walk(self, fid, newfid, names):
        p = self.rpc(110, struct.pack("<IIH", fid, newfid, len(names)) + b"".join(s16(n) for n in names))
        n = struct.unpack_from("<H", p)[0]
        if n != len(names):
            fail(f"walk {names}: {n} of {len(names)} walked")

    def clunk(self, fid):
        self.rpc(120, struct.pack("<I", fid))

    def open(self, fid, mode):
        self.rpc(112, struct.pack("<IB", fid, mode))

    def read(self, fid, offset, count):
        p = self.rpc(116, struct.pack("<IQI", fid, offset, count))
        n = struct.unpack_from("<I", p)[0]
        return p[4:4 + n]

    def stat(self, fid):
        p = self.rpc(124, struct.pack("<I", fid))
        n = struct.unpack_from("<H", p)[0]
        if n + 2 != len(p):
            fail(f"Rstat: n[2] = {n}, but {len(p) - 2} bytes follow")
        return parse_stat_u(p[2:], 0)[0]

    def create(self, fid, name, perm, mode, ext):
        return self.rpc(114, struct.pack("<I", fid) + s16(name) + struct.pack("<IB", perm, mode) + s16(ext))


class RawError(Exception):
    def __init__(self, ename, errno):
        super().__init__(f"{ename} (errno {errno})")
        self.ename, self.errno = ename, errno


def gets(b, off):
    n = struct.unpack_from("<H", b, off)[0]
    return b[off + 2:off + 2 + n].decode("utf-8", "replace"), off + 2 + n


def parse_stat_u(b, off):
    """One 9P2000.u stat record at b[off:]; returns (dict, next offset)."""
    size = struct.unpack_from("<H", b, off)[0]
    end = off + 2 + size
    if end > len(b):
        fail(f"stat record of {size} bytes at {off} runs past the {len(b)} bytes read")
    d = {}
    (_, d["type"], d["dev"], d["qtype"], d["qvers"], d["qpath"], d["mode"], d["atime"], d["mtime"],
     d["length"]) = struct.unpack_from("<HHIBIQIIIQ", b, off)
    p = off + 2 + 2 + 4 + 13 + 4 + 4 + 4 + 8
    for k in ("name", "uid", "gid", "muid", "extension"):
        d[k], p = gets(b, p)
    d["n_uid"], d["n_gid"], d["n_muid"] = struct.unpack_from("<III", b, p)
    p += 12
    if p != end:
        fail(f"9P2000.u stat record of {d['name']!r}: size says {size}, fields take {p - off - 2}")
    return d, end


def raw_version(sock, version):
    r = Raw(sock)
    try:
        return r.version(8192, version)[1]
    finally:
        r.close()


@check("version-suffix-answered-9P2000")
def _(x):
    expect("Rversion to '9P2000.foo'", "9P2000", raw_version(x.sock, "9P2000.foo"))


@check("version-unknown")
def _(x):
    expect("Rversion to 'bogus'", "unknown", raw_version(x.sock, "bogus"))


@check("version-9P2000.L-still-offered")
def _(x):
    expect("Rversion to '9P2000.L'", "9P2000.L", raw_version(x.sock, "9P2000.L"))


@check("u-version-attach")
def _(x):
    x.u = Raw(x.sock)
    msize, v = x.u.version(MSIZE, "9P2000.u")
    expect("Rversion version", "9P2000.u", v)
    x.u.dotu = True
    x.u.attach(0, user_name(os.getuid()), os.getuid())
    x.ufid = 1


def ustat(x, names):
    x.ufid += 1
    x.u.walk(0, x.ufid, names)
    try:
        return x.u.stat(x.ufid)
    finally:
        x.u.clunk(x.ufid)


@check("u-stat-regular-file")
def _(x):
    d = ustat(x, ["hello.txt"])
    st = os.stat(x.host("hello.txt"))
    expect("(mode, length, extension, n_uid, n_gid, uid)",
           (st.st_mode & 0o777, st.st_size, "", st.st_uid, st.st_gid, user_name(st.st_uid)),
           (d["mode"], d["length"], d["extension"], d["n_uid"], d["n_gid"], d["uid"]))


@check("u-symlink-not-followed")
def _(x):
    d = ustat(x, ["link_to_hello"])
    expect("DMSYMLINK in mode", DMSYMLINK, d["mode"] & DMSYMLINK)
    expect("extension (target)", "hello.txt", d["extension"])
    expect("qid.path = inode of the link itself", os.lstat(x.host("link_to_hello")).st_ino, d["qpath"])


@check("u-devices-and-fifos")
def _(x):
    d = ustat(x, ["cdev"])  # made by ctl-dir-write-mknod
    expect("cdev (DMDEVICE, extension)", (DMDEVICE, "c 1 3"), (d["mode"] & DMDEVICE, d["extension"]))
    d = ustat(x, ["bdev"])
    expect("bdev (DMDEVICE, extension)", (DMDEVICE, "b 7 0"), (d["mode"] & DMDEVICE, d["extension"]))
    d = ustat(x, ["fifo1"])
    expect("fifo1 DMNAMEDPIPE", DMNAMEDPIPE, d["mode"] & DMNAMEDPIPE)
    d = ustat(x, ["sock1"])
    expect("sock1 DMSOCKET", DMSOCKET, d["mode"] & DMSOCKET)


@check("u-create-symlink")
def _(x):
    x.ufid += 1
    x.u.walk(0, x.ufid, [])
    x.u.create(x.ufid, "ulink", DMSYMLINK | 0o777, OREAD, "hello.txt")
    x.u.clunk(x.ufid)
    expect("host readlink ulink", "hello.txt", os.readlink(x.host("ulink")))


@check("u-create-device-fifo-socket-hardlink")
def _(x):
    # As the Linux client does: the kind in perm, details in the extension.
    DMLINK = 0x01000000
    x.ufid += 1
    src = x.ufid
    x.u.walk(0, src, ["hello.txt"])
    for name, perm, ext in (("ucdev", DMDEVICE | 0o600, "c 1 3"), ("ubdev", DMDEVICE | 0o600, "b 7 0"),
                            ("ufifo", DMNAMEDPIPE | 0o644, ""), ("usock", DMSOCKET | 0o644, ""),
                            ("uhard", DMLINK, f"{src}\n")):
        x.ufid += 1
        x.u.walk(0, x.ufid, [])
        x.u.create(x.ufid, name, perm, OREAD, ext)
        x.u.clunk(x.ufid)
    x.u.clunk(src)
    st = {n: os.lstat(x.host(n)) for n in ("ucdev", "ubdev", "ufifo", "usock", "uhard")}
    expect("host ucdev (char dev, rdev, mode)", (True, os.makedev(1, 3), 0o600),
           (S.S_ISCHR(st["ucdev"].st_mode), st["ucdev"].st_rdev, st["ucdev"].st_mode & 0o7777))
    expect("host ubdev (block dev, rdev)", (True, os.makedev(7, 0)),
           (S.S_ISBLK(st["ubdev"].st_mode), st["ubdev"].st_rdev))
    expect("host ufifo is a fifo", True, S.S_ISFIFO(st["ufifo"].st_mode))
    expect("host usock is a socket", True, S.S_ISSOCK(st["usock"].st_mode))
    expect("host uhard: inode of hello.txt", os.stat(x.host("hello.txt")).st_ino, st["uhard"].st_ino)


@check("u-rerror-errno")
def _(x):
    x.ufid += 1
    try:
        x.u.walk(0, x.ufid, ["nonexistent"])
    except RawError as e:
        expect("Rerror (ename, errno)", (ENOENT_TEXT, 2), (e.ename, e.errno))
        return
    fail("walk nonexistent: expected Rerror, got Rwalk")


@check("u-ctl-read")
def _(x):
    x.ufid += 1
    x.u.walk(0, x.ufid, [",ctl", "stamped.txt"])
    x.u.open(x.ufid, OREAD)
    data = x.u.read(x.ufid, 0, 4096)
    x.u.clunk(x.ufid)
    compare_ctl("9P2000.u ,ctl/stamped.txt", parse_ctl(data, "9P2000.u ,ctl/stamped.txt"),
                os.stat(x.host("stamped.txt")), name=b"stamped.txt")


@check("u-dir-read")
def _(x):
    x.ufid += 1
    x.u.walk(0, x.ufid, [])
    x.u.open(x.ufid, OREAD)
    names, off = [], 0
    while True:
        chunk = x.u.read(x.ufid, off, 500)
        if not chunk:
            break
        p = 0
        while p < len(chunk):
            d, p = parse_stat_u(chunk, p)
            names.append(d["name"])
            if d["name"] == "link_to_hello":
                expect("link_to_hello in the listing: extension", "hello.txt", d["extension"])
        off += len(chunk)
    x.u.clunk(x.ufid)
    expect("names (sorted) against os.listdir", sorted(os.listdir(x.share)), sorted(names))
    x.u.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sock", required=True)
    ap.add_argument("--share", required=True)
    a = ap.parse_args()
    x = Ctx(a.sock, os.path.realpath(a.share))
    for name, fn in CHECKS:
        try:
            fn(x)
        except Failure as e:
            print(f"FAIL {name}: {e}", flush=True)
            return 1
        except RemoteError as e:
            print(f"FAIL {name}: unexpected Rerror {str(e)!r}", flush=True)
            traceback.print_exc()
            return 1
        except RawError as e:
            print(f"FAIL {name}: unexpected Rerror {e}", flush=True)
            traceback.print_exc()
            return 1
        except Exception as e:  # a crash of the check itself, or the connection
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
            return 1
        print(f"ok {name}", flush=True)
    print(f"all {len(CHECKS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
