"""``ktrace doctor``: can this node trace live?  One line per check, with the fix for what is missing.

Each check gives a status:

- ``OK``       in place;
- ``WARN``     live tracing works, something around it is degraded (e.g. no container names);
- ``MISSING``  live tracing cannot work until it is fixed; the line after it gives the fix;
- ``INFO``     a fact worth knowing, never a problem.

The exit code is 0 when live tracing can work (no MISSING line) and 2 otherwise; offline reading of a
capture (``ktrace -r``) needs none of this.

Paths: ``/proc`` and ``/run`` are the host's, found under ``$KTRACE_HOST_ROOT`` (default ``/``), as
in a debug pod that mounts the host's root elsewhere.  ``/sys``, ``/lib/modules``, ``/usr/src`` and
this process's own ``/proc/self`` are read where bcc and the kernel see them, at ``/``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import stat
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .enrich.containers.paths import RUNTIME_SOCKETS
from .enrich.hostroot import ENV_VAR as HOST_ROOT_ENV
from .enrich.hostroot import Roots
from .probe.headers import find_headers

OK = "OK"
WARN = "WARN"
MISSING = "MISSING"
INFO = "INFO"

# Capability bits (linux/capability.h).
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

# The BPF ring buffer (BPF_MAP_TYPE_RINGBUF) arrived in Linux 5.8.
RINGBUF_KERNEL = (5, 8)

# bpf(2) syscall numbers by machine.
_NR_BPF = {"x86_64": 321, "aarch64": 280}


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is OK, WARN, MISSING or INFO; ``fix`` is a command or an instruction;
    ``note`` explains a finding that looks wrong but is not."""

    status: str
    name: str
    detail: str
    fix: str = ""
    note: str = ""

    def lines(self) -> list[str]:
        out = [f"{self.status:<8} {self.name}: {self.detail}"]
        if self.note:  # prose: wrapped; a fix is a command to copy, so it stays on one line
            out.extend(
                textwrap.wrap(
                    self.note, 100, initial_indent=f"{'':<8} note: ", subsequent_indent=f"{'':<8}       "
                )
            )
        if self.fix:
            out.append(f"{'':<8} fix: {self.fix}")
        return out


# --- helpers ---------------------------------------------------------------------------------------


def kernel_version(release: str) -> tuple[int, int] | None:
    """(major, minor) of a kernel release string such as ``6.1.0-56-amd64``; None if unreadable."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


# --- the checks ------------------------------------------------------------------------------------


# The fix for each missing capability, in both places ktrace runs in a container (deploy/).
BPF_CAPS_FIX = ("docker run --cap-add SYS_ADMIN (docker 20.10 knows no BPF, PERFMON), or --cap-add BPF "
                "--cap-add PERFMON where docker knows them; a pod: securityContext.capabilities.add: "
                "[BPF, PERFMON] (deploy/k8s)")
PTRACE_FIX = "docker run --cap-add SYS_PTRACE; a pod: securityContext.capabilities.add: [SYS_PTRACE]"
DAC_FIX = "docker run --cap-add DAC_READ_SEARCH; a pod: securityContext.capabilities.add: [DAC_READ_SEARCH]"


def effective_caps(roots: Roots) -> int | None:
    """This process's effective capability set, from /proc/self/status; None if unreadable."""
    status_text = _read(roots.local_path("/proc/self/status"))
    if status_text is not None:
        m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status_text, re.MULTILINE)
        if m:
            return int(m.group(1), 16)
    return None


def check_privileges(roots: Roots, euid: int | None = None) -> Check:
    """Root, or the capabilities a BPF tracer needs: CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN."""
    euid = os.geteuid() if euid is None else euid
    name = "privileges"
    fix = "run as root (sudo ktrace ...)" if euid != 0 else BPF_CAPS_FIX
    who = "root" if euid == 0 else f"euid {euid}"
    cap_eff = effective_caps(roots)
    if cap_eff is None:
        if euid == 0:
            return Check(WARN, name, "root, but capabilities unknown (no CapEff in /proc/self/status)")
        return Check(MISSING, name, f"{who}, capabilities unknown", fix)
    held = [
        n
        for n, bit in (("CAP_SYS_ADMIN", CAP_SYS_ADMIN), ("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON))
        if cap_eff >> bit & 1
    ]
    enough = cap_eff >> CAP_SYS_ADMIN & 1 or (cap_eff >> CAP_BPF & 1 and cap_eff >> CAP_PERFMON & 1)
    caps = " ".join(held) or "none of CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON"
    if enough and euid == 0:
        return Check(OK, name, f"root; effective {caps}")
    if enough:
        return Check(
            WARN, name, f"{who} with {caps}; tracefs and other users' /proc may be unreadable", "run as root"
        )
    return Check(MISSING, name, f"{who}; effective capabilities: {caps}", fix)


def check_process_access(roots: Roots) -> list[Check]:
    """What reading other processes needs beyond tracing: CAP_SYS_PTRACE (their /proc/PID/fd links
    and pidfd_getfd, for fd names and socket addresses) and CAP_DAC_READ_SEARCH (the /proc/PID/fd
    directories of other users' processes). Without them tracing works; names show <NA>."""
    eff = effective_caps(roots)
    if eff is None:
        return []
    out = []
    if eff >> CAP_SYS_PTRACE & 1:
        out.append(Check(OK, "CAP_SYS_PTRACE", "fd names and socket addresses of every process"))
    else:
        out.append(Check(WARN, "CAP_SYS_PTRACE", "missing: fds of processes with other privileges than "
                         "ktrace's show <NA> (/proc/PID/fd, pidfd_getfd)", PTRACE_FIX))
    if eff >> CAP_DAC_READ_SEARCH & 1 or eff >> CAP_DAC_OVERRIDE & 1:
        out.append(Check(OK, "CAP_DAC_READ_SEARCH", "other users' /proc/PID/fd directories readable"))
    else:
        out.append(Check(WARN, "CAP_DAC_READ_SEARCH", "missing (and no CAP_DAC_OVERRIDE): fds of other "
                         "users' processes show <NA>", DAC_FIX))
    if not eff >> CAP_SYS_ADMIN & 1:
        out.append(Check(INFO, "CAP_SYS_ADMIN", "not held: everything works but --metrics-bpf-stats "
                         "(the kernel's BPF run-time statistics need it)"))
    return out


def apparmor_label(roots: Roots) -> str | None:
    """This process's AppArmor label (``docker-default (enforce)``), or None without AppArmor."""
    for path in ("/proc/self/attr/apparmor/current", "/proc/self/attr/current"):
        text = _read(roots.local_path(path))
        if text is not None and text.strip():
            return text.strip().rstrip("\0")
    return None


def check_apparmor(roots: Roots) -> Check:
    """A confining AppArmor profile (docker-default, cri-containerd's) lets ptrace reach only
    processes of the same profile: the host's processes' fds would be unreadable whatever the
    capabilities."""
    label = apparmor_label(roots)
    if label is None or label == "unconfined":
        return Check(OK, "AppArmor", "not confined" if label else "not in use")
    if label.endswith("(complain)"):
        return Check(OK, "AppArmor", f"{label}: logs, does not deny")
    return Check(WARN, "AppArmor", f"confined by {label}: /proc/PID/fd of processes outside this profile "
                 "is denied, so their fds show <NA>",
                 "docker run --security-opt apparmor=unconfined; a pod: the annotation "
                 "container.apparmor.security.beta.kubernetes.io/ktrace: unconfined (deploy/k8s)")


def check_kernel(release: str) -> Check:
    if kernel_version(release) is None:
        return Check(WARN, "kernel", f"unrecognised release {release!r}")
    return Check(OK, "kernel", f"Linux {release} ({platform.machine()})")


def check_ringbuf(release: str) -> Check:
    version = kernel_version(release)
    if version is None:
        return Check(WARN, "ring buffer", f"cannot tell from kernel release {release!r}")
    if version >= RINGBUF_KERNEL:
        return Check(OK, "ring buffer", "BPF ring buffer supported (kernel >= 5.8)")
    return Check(
        MISSING,
        "ring buffer",
        "kernel {}.{} predates the BPF ring buffer (5.8)".format(*version),
        "boot a kernel >= 5.8 (Debian 12's linux-image-amd64 is 6.1)",
    )


def bpf_syscall_errno(machine: str | None = None) -> int | None:
    """errno of bpf() called with a command that does not exist; None if bpf() is unknown here.

    EINVAL: the syscall is there and reachable.  ENOSYS: kernel without CONFIG_BPF_SYSCALL.
    EPERM: blocked before the kernel saw the command (seccomp profile, LSM).
    """
    nr = _NR_BPF.get(machine or platform.machine())
    if nr is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    ctypes.set_errno(0)
    # cmd 0x7fffffff is no BPF command: the kernel answers EINVAL without doing anything.
    ret = libc.syscall(ctypes.c_long(nr), ctypes.c_int(0x7FFFFFFF), None, ctypes.c_uint(0))
    return ctypes.get_errno() if ret == -1 else 0


def check_bpf_syscall(err: int | None) -> Check:
    name = "bpf() syscall"
    if err is None:
        return Check(WARN, name, f"not probed on {platform.machine()}")
    if err == errno.ENOSYS:
        return Check(
            MISSING,
            name,
            "kernel built without CONFIG_BPF_SYSCALL",
            "boot a kernel with CONFIG_BPF_SYSCALL=y (every Debian kernel has it)",
        )
    if err == errno.EPERM:
        return Check(
            MISSING,
            name,
            "blocked by a seccomp profile or an LSM (or no capability for it: see privileges)",
            "docker's default seccomp profile allows bpf() with CAP_SYS_ADMIN (see privileges); else docker "
            "run --security-opt seccomp=unconfined; a pod: securityContext.seccompProfile.type: Unconfined",
        )
    return Check(OK, name, "available")


def check_unprivileged_bpf(roots: Roots) -> Check:
    path = roots.host_path("/proc/sys/kernel/unprivileged_bpf_disabled")
    text = _read(path)
    meaning = {
        "0": "unprivileged users may use BPF",
        "1": "unprivileged BPF off until reboot",
        "2": "unprivileged BPF off",
    }
    if text is None:
        return Check(INFO, "unprivileged bpf", f"{path} not readable")
    value = text.strip()
    return Check(
        INFO,
        "unprivileged bpf",
        f"kernel.unprivileged_bpf_disabled={value} ({meaning.get(value, 'unknown')}); ktrace runs privileged",
    )


def tracefs_dirs(roots: Roots) -> list[str]:
    from .schema.tracepoints import TRACEFS

    return [roots.local_path(p) for p in TRACEFS]


def check_tracefs(roots: Roots) -> Check:
    name = "tracefs"
    unreadable = []
    for base in tracefs_dirs(roots):
        events = os.path.join(base, "events")
        if os.path.isdir(os.path.join(events, "raw_syscalls")):
            sched = os.path.isdir(os.path.join(events, "sched", "sched_process_exec"))
            return Check(
                OK,
                name,
                f"{base}; raw_syscalls events present" + ("" if sched else " (sched_process_* missing)"),
            )
        if os.path.isdir(base) and not os.access(base, os.R_OK | os.X_OK):
            unreadable.append(base)
    if unreadable:
        return Check(MISSING, name, f"{unreadable[0]} not readable", "run as root")
    return Check(
        MISSING,
        name,
        "no tracefs with raw_syscalls events at /sys/kernel/tracing or /sys/kernel/debug/tracing",
        "mount -t tracefs nodev /sys/kernel/tracing",
    )


def check_tracepoints(roots: Roots) -> list[Check]:
    """The regular tracepoints the probe reads by their tracefs layout (tracer/schema/tracepoints.py):
    without one, what it gives comes from a slower, racier path, so a warning, not a failure."""
    from .schema.tracepoints import SOCK_IO, TRACEPOINTS, locate

    out = []
    for tp in TRACEPOINTS:
        name = f"tracepoint {tp.path}"
        tp_id, why = locate(tp, tracefs_dirs(roots))
        if tp_id is not None:
            out.append(Check(OK, name, "laid out as declared: client TCP connections named by the kernel"))
        else:
            out.append(Check(WARN, name, f"{why}: client TCP ends are read from the socket instead, so a "
                                         "connection closed within ~1 ms shows 0.0.0.0:0",
                             "a kernel with the sock tracepoints (4.16 or later) and tracefs mounted"))
    # The raw tracepoints that name accepted connections, and the BTF their program's helpers need.
    name = "tracepoints " + ", ".join(f"sock/{n}" for n in SOCK_IO)
    found = [base for base in tracefs_dirs(roots) if os.path.isdir(os.path.join(base, "events", "sock"))]
    missing = [n for n in SOCK_IO if not any(os.path.isdir(os.path.join(b, "events", "sock", n)) for b in found)]
    if not found:
        why = "no readable tracefs sock events"
    elif missing:
        why = f"{', '.join(missing)} missing"
    elif not os.path.exists(roots.local_path("/sys/kernel/btf/vmlinux")):
        why = "no kernel BTF"
    else:
        out.append(Check(OK, name, "present: accepted TCP connections named by the kernel"))
        return out
    out.append(Check(WARN, name, f"{why}: accepted TCP ends are read from the socket instead, so a connection "
                                 "accepted without its address and closed within ~1 ms shows <NA>",
                     "Linux 6.3 or later built with CONFIG_DEBUG_INFO_BTF=y"))
    return out


def check_btf(roots: Roots) -> Check:
    path = roots.local_path("/sys/kernel/btf/vmlinux")
    if os.path.exists(path):
        return Check(OK, "BTF", "/sys/kernel/btf/vmlinux present")
    return Check(
        WARN,
        "BTF",
        "/sys/kernel/btf/vmlinux missing: bcc works without it, CO-RE tools do not",
        "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian 12's is)",
    )


def check_bcc(finder: Callable[[], Path | None] | None = None) -> Check:
    """libbcc (Debian's libbpfcc), which compiles the probe when the cache has no entry for it.
    ktrace loads the compiled probe itself: bcc's Python module is not needed."""
    from .probe.image import libbcc_path

    found = finder() if finder is not None else libbcc_path()
    if found is None:
        return Check(MISSING, "bcc", "libbcc.so.0 not found: the probe cannot be compiled",
                     "apt-get install libbpfcc (or python3-bpfcc, which brings it)")
    return Check(OK, "bcc", f"{found} (compiles the probe on a cache miss)")


def check_probe_cache(env: Mapping[str, str] | None = None) -> Check:
    """Whether a start with the default settings loads the compiled probe from the cache or has
    bcc compile it (about a second)."""
    from .probe import cache
    from .probe.loader import PROBE_SRC, ProbeConfig, compile_flags

    name = "probe cache"
    try:
        _, out = cache.lookup(PROBE_SRC, compile_flags(ProbeConfig()), env)
    except OSError as e:
        return Check(WARN, name, f"cannot be checked ({e})")
    if out.status == "hit":
        return Check(OK, name, f"hit for the default settings ({out.path})")
    warm = "ktrace cache --warm"
    if out.status == "miss":
        return Check(INFO, name, f"miss for the default settings ({out.path}: {out.why}); "
                     "the first start compiles the probe (~1 s) and stores it", warm)
    if out.path is not None and out.path.suffix == ".img":
        return Check(WARN, name, f"entry not used: {out.why}; the next start compiles the probe and replaces it",
                     warm)
    own = f"chown {os.geteuid()} {out.path}" if "owned by" in out.why else f"chmod go-w {out.path}"
    return Check(WARN, name, f"not used: {out.why}; every start compiles the probe (~1 s)",
                 f"{own}, or set {cache.ENV_DIR} to a directory only you can write")


def check_headers(roots: Roots, release: str, env: Mapping[str, str] | None = None) -> Check:
    """Which kernel headers bcc will compile the probe against, and whether that is fine."""
    h = find_headers(release, roots.local, env)
    return Check(OK if h.usable else MISSING, "kernel headers", h.detail, h.fix, h.note)


def check_host_proc(roots: Roots) -> Check:
    proc = roots.host_path("/proc")
    where = proc if roots.host == "/" else f"{proc} ({HOST_ROOT_ENV}={roots.host})"
    if os.path.exists(os.path.join(proc, "stat")) and os.path.isdir(os.path.join(proc, "1")):
        return Check(OK, "host /proc", where)
    return Check(
        MISSING,
        "host /proc",
        f"no procfs at {where}: no process, fd or container context",
        f"mount the host's /proc at {proc} (hostPID: true and a hostPath volume), "
        f"or set {HOST_ROOT_ENV} to where the host's root is mounted",
    )


def check_runtime_sockets(roots: Roots) -> list[Check]:
    """One line per runtime socket found; the absent ones together on one line."""
    found: list[Check] = []
    absent: list[str] = []
    for runtime, path in RUNTIME_SOCKETS:
        full = roots.host_path(path)
        try:
            st = os.stat(full)
        except PermissionError:
            found.append(Check(WARN, f"runtime {runtime}", f"{full}: permission denied", "run as root"))
            continue
        except OSError:
            absent.append(runtime)
            continue
        if not stat.S_ISSOCK(st.st_mode):
            found.append(Check(WARN, f"runtime {runtime}", f"{full} is not a socket"))
        elif not os.access(full, os.R_OK | os.W_OK):
            found.append(
                Check(
                    WARN,
                    f"runtime {runtime}",
                    f"{full}: permission denied (container names and images unavailable)",
                    "run as root",
                )
            )
        else:
            found.append(Check(OK, f"runtime {runtime}", full))
    if not found:
        return [
            Check(
                WARN,
                "container runtimes",
                "no runtime socket under "
                f"{roots.host_path('/run')}: container ids only (from cgroups), no names or images",
                f"mount the runtime's socket, or set {HOST_ROOT_ENV}",
            )
        ]
    if absent:
        found.append(Check(INFO, "container runtimes", "absent: " + ", ".join(absent)))
    return found


def check_cgroup(roots: Roots) -> Check:
    base = roots.local_path("/sys/fs/cgroup")
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        return Check(OK, "cgroup", "v2 (unified)")
    if os.path.exists(os.path.join(base, "unified", "cgroup.controllers")):
        return Check(OK, "cgroup", "v1 with a v2 hierarchy at /sys/fs/cgroup/unified (hybrid)")
    try:
        v1 = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
    except OSError:
        v1 = []
    if v1:
        return Check(OK, "cgroup", "v1 (" + ", ".join(v1[:4]) + (", ..." if len(v1) > 4 else "") + ")")
    return Check(
        WARN, "cgroup", f"no cgroup filesystem at {base}: container ids come from /proc/PID/cgroup only"
    )


def check_container_filter(roots: Roots) -> Check:
    """Whether container conditions of a filter (container.id, container.name, k8s.pod.name) can
    be checked in the kernel: that needs the cgroup v2 hierarchy (tracer/enrich/cgroupid.py)."""
    from .enrich import hostroot
    from .enrich.cgroupid import unified_root

    with hostroot.using(roots.host):
        root = unified_root()
    if root is None:
        return Check(INFO, "container filters", "in user space only: cgroup v1 only, every task shares one v2 "
                     "cgroup, so the kernel cannot tell containers apart")
    return Check(OK, "container filters", f"in the kernel, by cgroup v2 id (hierarchy at {root})")


def check_containers(roots: Roots, wait: float = 3.0) -> list[Check]:
    """The containers running now, and for each whose name the runtimes do not give, why."""
    from .enrich import hostroot
    from .enrich.cgroup import HOST_ID, CgroupMatch, parse_cgroup
    from .enrich.containers import NA, ContainerResolver

    proc = roots.host_path("/proc")
    try:
        pids = [e for e in os.listdir(proc) if e.isdigit()]
    except OSError:
        return []
    running: dict[str, CgroupMatch] = {}
    for pid in pids:
        m = parse_cgroup(_read(os.path.join(proc, pid, "cgroup")) or "")
        if m.id != HOST_ID:
            running.setdefault(m.id, m)
    if not running:
        return [Check(INFO, "containers", "none running")]
    with hostroot.using(roots.host), ContainerResolver(retry_delays=(), timeout=1.0) as resolver:
        for cid, m in running.items():
            resolver.get(cid, m)
        resolver.wait_idle(wait)
        infos = {cid: resolver.get(cid) for cid in running}
        unnamed = {cid: resolver.reasons(cid) for cid, info in infos.items() if info.name == NA}
    named = len(running) - len(unnamed)
    checks = [Check(OK if not unnamed else WARN, "containers",
                    f"{len(running)} running, {named} named by their runtime")]
    for cid, why in sorted(unnamed.items())[:10]:
        checks.append(Check(WARN, f"container {cid}", "name <NA>: " + ("; ".join(why) or "no answer in time"),
                            f"mount the runtime's socket or state directory (deploy/k8s), or set {HOST_ROOT_ENV}"))
    if len(unnamed) > 10:
        checks.append(Check(WARN, "containers", f"... and {len(unnamed) - 10} more without a name"))
    return checks


# --- the whole -------------------------------------------------------------------------------------


def check_all(roots: Roots | None = None, env: Mapping[str, str] | None = None) -> list[Check]:
    """Every check, in the order ``ktrace doctor`` prints them."""
    roots = Roots.from_env(env) if roots is None else roots
    release = os.uname().release
    checks = [
        check_privileges(roots),
        *check_process_access(roots),
        check_apparmor(roots),
        check_kernel(release),
        check_ringbuf(release),
        check_bpf_syscall(bpf_syscall_errno()),
        check_unprivileged_bpf(roots),
        check_btf(roots),
        check_tracefs(roots),
        *check_tracepoints(roots),
        check_bcc(),
        check_headers(roots, release, env),
        check_probe_cache(env),
        check_host_proc(roots),
    ]
    checks.extend(check_runtime_sockets(roots))
    checks.append(check_cgroup(roots))
    checks.append(check_container_filter(roots))
    checks.extend(check_containers(roots))
    return checks


def exit_code(checks: Iterable[Check]) -> int:
    """0 when live tracing can work (nothing MISSING), 2 otherwise."""
    return 2 if any(c.status == MISSING for c in checks) else 0


def report(checks: list[Check]) -> str:
    lines = [line for c in checks for line in c.lines()]
    missing = sum(c.status == MISSING for c in checks)
    if missing:
        lines.append(
            f"live tracing: not possible here ({missing} missing); "
            "reading a capture (ktrace -r FILE) still works"
        )
    else:
        lines.append("live tracing: ready")
    return "\n".join(lines)


def run_doctor(quiet: bool) -> int:
    """``ktrace doctor``: print the checks (unless ``quiet``); 0 if live tracing can work, else 2."""
    checks = check_all()
    if not quiet:
        print(report(checks))
    return exit_code(checks)


if __name__ == "__main__":
    sys.exit(run_doctor(quiet="--quiet" in sys.argv[1:] or "-q" in sys.argv[1:]))
