"""The host's free page reporting, which decides what a benchmark's page-cache writes cost.

A host that is itself a virtual machine may hand the memory it frees back to its
hypervisor (virtio-balloon free page reporting, /sys/module/page_reporting).  The next
time such a page is used, the hypervisor has to fault it in again, and the thread that
touched it pays, in system time.  Measured on one such host: writing 1 GiB into new page
cache and fsyncing it cost 0.22 s of system time when the freed pages had not yet been
reported and 6.3-7.1 s when they had, so one benchmark boot's writes could cost thirty
times another's, whichever server ran.  Pausing the reporting for the run (and warming
free memory once) takes that lottery out; the setting is put back afterwards, also on
Ctrl-C or SIGTERM (after a SIGKILL: write the order the run printed back into
/sys/module/page_reporting/parameters/page_reporting_order).
"""

import errno
import mmap
import os

PARAMS = "/sys/module/page_reporting/parameters"
ORDER = os.path.join(PARAMS, "page_reporting_order")
REPORTED = os.path.join(PARAMS, "reported_kib")
# Larger than any buddy order (MAX_PAGE_ORDER is 10 on x86-64), so no free block qualifies.
NO_ORDER = 11
PAGE = 4096


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def reported_kib():
    """KiB reported to the hypervisor so far, or None where the kernel does not count them."""
    return _read_int(REPORTED)


def reporting_order():
    """The smallest block order reported, or None without free page reporting."""
    return _read_int(ORDER)


def _write_order(value):
    with open(ORDER, "w") as f:
        f.write(f"{value}\n")


def meminfo_kib(key):
    """One /proc/meminfo figure ("MemTotal", "MemAvailable", ...) in KiB, or 0 if absent."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def warm_free_memory(gib):
    """Touch gib GiB of fresh anonymous memory and free it, so that the pages the run
    allocates first (the buddy allocator hands out unreported pages before reported ones)
    have already been faulted in.  Returns the GiB touched: never more than half of what
    the host has available."""
    gib = min(gib, (meminfo_kib("MemAvailable") >> 20) // 2)
    if gib <= 0:
        return 0
    size = gib << 30
    with mmap.mmap(-1, size) as m:
        for off in range(0, size, PAGE):
            m[off] = 1
    return gib


class PausedReporting:
    """Context manager: pause free page reporting (if asked and present), put it back on
    exit.  `state` says what was done (and, after exit, how much was reported meanwhile);
    `warning` is set where reporting stays on."""

    def __init__(self, pause, warm_gib):
        self.pause = pause
        self.warm_gib = warm_gib
        self.saved = None
        self.warning = None
        self.kib_before = None

    def __enter__(self):
        order = reporting_order()
        if order is None:
            self.state = "no free page reporting on this host"
            return self
        if not self.pause:
            self.state = f"free page reporting on (order {order})"
            self.warning = ("page-cache writes may cost up to 30x the CPU from one boot to the next; "
                            "--pause-page-reporting takes that out")
        else:
            try:
                _write_order(NO_ORDER)
            except OSError as e:
                why = (f"this kernel does not take {NO_ORDER}, above every buddy order, so it cannot be paused here"
                       if e.errno == errno.EINVAL else "run as root")
                raise SystemExit(f"vm-bench: cannot pause free page reporting ({ORDER}: {e.strerror}): "
                                 f"{why}, or leave out --pause-page-reporting")
            self.saved = order
            try:
                warmed = warm_free_memory(self.warm_gib)
            except BaseException:
                self.__exit__()
                raise
            self.state = (f"free page reporting paused for the run (order {order} -> {NO_ORDER}, "
                          f"{warmed} GiB of free memory warmed first)")
        self.kib_before = reported_kib()
        return self

    def __exit__(self, *exc):
        after = reported_kib()
        if self.kib_before is not None and after is not None:
            self.state += f"; {(after - self.kib_before) >> 10} MiB reported during the run"
            self.kib_before = None
        if self.saved is not None:
            _write_order(self.saved)
            self.saved = None
        return False
