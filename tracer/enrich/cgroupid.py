"""Kernel-side container filters: a filter's container conditions turned into cgroup ids.

``container.id=X``, ``container.name=Y`` and ``k8s.pod.name=Z`` (and ``in``/``!=`` forms) are
pushed into the probe, which looks ``bpf_get_current_cgroup_id()`` up in its ``kt_cgroups`` map:
only the chosen containers' events leave the kernel.

**What the id is.** ``bpf_get_current_cgroup_id()`` is the id of the task's cgroup in the unified
(v2) hierarchy: the kernfs id of the cgroup's directory, which ``name_to_handle_at()`` returns as
the directory's 8-byte file handle (and ``stat()`` as its inode number on 64-bit kernels). The
path comes from the ``0::<path>`` line of /proc/PID/cgroup, under the host's cgroup2 mount:
``/sys/fs/cgroup`` (v2 hosts) or ``/sys/fs/cgroup/unified`` (hybrid hosts), both through
:func:`tracer.enrich.hostroot.host_path`. A path read from inside a private cgroup namespace
(``/../../kubepods/…``) is found by its part below the ``..``.

**Verdicts, not a list.** The map holds a verdict per cgroup: 1 for a wanted container's cgroup,
0 for any other. A cgroup with *no* verdict passes, and the probe notes it (with a tgid seen in it)
in ``kt_cgnew``; :meth:`CgroupFilter.poll` (every half second) reads /proc/<tgid>/cgroup, finds
the container from the path and sets the verdict. So a container started after ktrace loses
nothing: for the first moments (up to the next poll, plus the runtime lookup when the filter
names containers or pods rather than ids) its events, and those of any other new cgroup, reach
user space, where the filter applies as always. The kernel only filters less for that window.
A cgroup whose container cannot be told (its process gone before it could be read, three times)
gets verdict 1: it passes, and user space decides.

**When the kernel cannot filter** (the conditions are then checked in user space only, and
``ktrace --explain`` says why):

- cgroup v1 only: no unified hierarchy, every task has the same v2 cgroup;
- a hybrid host whose runtime leaves containers in a shared v2 cgroup: a container running at
  start whose ``0::`` path does not name it turns the kernel filter off. (One started later under
  such a runtime cannot be noticed: its events would come from a host cgroup. Such runtimes are
  old: runc and crun put containers in the unified hierarchy since 2021.)
- a filter whose container conditions are not simple (``not``, ``contains``…): see
  :mod:`tracer.filter.pushdown`.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from tracer.enrich.cgroup import HOST, HOST_ID, parse_cgroup, read_cgroup
from tracer.enrich.hostroot import host_path
from tracer.filter.pushdown import Pushdown, ValueSet
from tracer.na import NA

CGROUP2_MOUNTS: Final = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
POLL_S: Final = 0.5
MAP_MAX: Final = 16384  # KT_CGROUPS_MAX in the probe
PRUNE_S: Final = 30.0  # a nearly full map is checked for gone cgroups at most this often
GIVE_UP_AFTER: Final = 3  # reports of a cgroup no process of which could be read
_AT_FDCWD: Final = -100


class _FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 8)]


_libc = ctypes.CDLL(None, use_errno=True)
_name_to_handle_at = getattr(_libc, "name_to_handle_at", None)


def unified_root() -> str | None:
    """Where the host's cgroup v2 hierarchy is mounted (seen from here), or None (v1 only)."""
    for p in CGROUP2_MOUNTS:
        hp = host_path(p)
        if os.path.exists(os.path.join(hp, "cgroup.controllers")):
            return hp
    return None


def cgroup_id(path: str) -> int | None:
    """The kernel's id of the cgroup directory ``path`` (what bpf_get_current_cgroup_id gives)."""
    if _name_to_handle_at is not None:
        fh = _FileHandle(8, 0)
        mount_id = ctypes.c_int()
        if _name_to_handle_at(_AT_FDCWD, os.fsencode(path), ctypes.byref(fh), ctypes.byref(mount_id), 0) == 0 \
                and fh.handle_bytes == 8:
            return int.from_bytes(bytes(fh.f_handle), "little")
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino if os.path.isdir(path) else None


def v2_path(cgroup_text: str) -> str | None:
    """The path of the ``0::`` line of a /proc/PID/cgroup text (the unified hierarchy's)."""
    for line in cgroup_text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return None


class _DirFinder:
    """cgroup paths to directories under the v2 mount, ``/..``-relative ones included."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._bases: dict[int, str] = {}  # number of leading ".." -> the directory they climb to

    def find(self, path: str) -> str | None:
        parts = [p for p in path.split("/") if p]
        up = 0
        while up < len(parts) and parts[up] == "..":
            up += 1
        rest = parts[up:]
        if ".." in rest:
            return None
        base = self._bases.get(up, self.root)
        cand = os.path.join(base, *rest)
        if os.path.isdir(cand):
            return cand
        if not up or not rest:
            return None
        # Seen from a private cgroup namespace: the ".." climb from our namespace's root to an
        # ancestor we cannot name. Every path with as many ".." shares it: look for it once.
        for found in self._walk(self.root, depth=6):
            if os.path.isdir(os.path.join(found, *rest)):
                self._bases[up] = found
                return os.path.join(found, *rest)
        return None

    @staticmethod
    def _walk(top: str, depth: int) -> Iterable[str]:
        level = [top]
        for _ in range(depth + 1):
            nxt: list[str] = []
            for d in level:
                yield d
                try:
                    nxt.extend(e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False))
                except OSError:
                    continue
            level = nxt


# --- which containers the filter wants ---------------------------------------------------------------

_UNKNOWN: Final = object()


@dataclass(frozen=True)
class ContainerWants:
    """The container conditions of a pushdown: every restricted one must admit a container."""

    ids: ValueSet[str] | None = None
    names: ValueSet[str] | None = None
    pods: ValueSet[str] | None = None

    @classmethod
    def from_pushdown(cls, pd: Pushdown) -> ContainerWants | None:
        w = cls(pd.container_ids, pd.container_names, pd.pod_names)
        return None if w.ids is None and w.names is None and w.pods is None else w

    def describe(self) -> str:
        parts = [f"{name} {s.describe()}" for name, s in
                 (("container.id", self.ids), ("container.name", self.names), ("k8s.pod.name", self.pods))
                 if s is not None]
        return " and ".join(parts)

    def verdict(self, cid: str, info: Mapping[str, Any] | None) -> bool | None:
        """Whether events of container ``cid`` (``"host"`` for none) can match; None while its
        metadata is still being looked up and a name or pod condition needs it."""
        out: list[bool | None] = []
        if self.ids is not None:
            out.append(self.ids.admits(cid))
        for s, key in ((self.names, "name"), (self.pods, "pod_name")):
            if s is None:
                continue
            v = _value(cid, info, key)
            out.append(None if v is _UNKNOWN else (isinstance(v, str) and s.admits(v)))
        if False in out:
            return False
        return None if None in out else True


def _value(cid: str, info: Mapping[str, Any] | None, key: str) -> object:
    """What container.name / k8s.pod.name extract for the container (None for <NA>), or _UNKNOWN."""
    if cid == HOST_ID:
        return HOST_ID if key == "name" else None
    if info is None or info.get("lookup", "pending") == "pending":
        return _UNKNOWN
    v = info.get(key)
    return None if v in (None, "", NA) else v


# --- the filter kept current during a run ------------------------------------------------------------


class VerdictSink(Protocol):
    """What the filter needs of the probe (tracer.probe.loader.Probe has it)."""

    def set_cgroups(self, verdicts: Mapping[int, bool]) -> int: ...

    def forget_cgroups(self, ids: Iterable[int]) -> None: ...

    def new_cgroups(self) -> list[tuple[int, int]]: ...


Ask = Callable[[str, str], object]  # (container id, cgroup text): look this container up


@dataclass
class _Cgroup:
    path: str  # the directory under the v2 mount
    cid: str
    cgroup_text: str


class CgroupFilter:
    """The probe's cgroup verdicts for one live run.

    :meth:`plan` decides whether the kernel can filter at all; :meth:`initial` gives the verdicts
    to load with the probe; :meth:`poll` keeps them current (new cgroups, metadata that arrived).
    """

    def __init__(self, wants: ContainerWants, root: str) -> None:
        self.wants = wants
        self.root = root
        self._dirs = _DirFinder(root)
        self.verdicts: dict[int, bool] = {}
        self.undecided: dict[int, _Cgroup] = {}  # waiting for a container's metadata
        self.known: dict[int, _Cgroup] = {}
        self._tries: dict[int, int] = {}
        self._last_poll = 0.0
        self._last_prune = 0.0
        self.off_reason = ""

    # -- planning -------------------------------------------------------------------------------

    @staticmethod
    def plan(pd: Pushdown) -> tuple[CgroupFilter | None, str]:
        """The filter for ``pd``, or None and why the container conditions stay in user space."""
        wants = ContainerWants.from_pushdown(pd)
        if wants is None:
            return None, "no container condition to push"
        root = unified_root()
        if root is None:
            return None, (f"{wants.describe()}: checked in user space (cgroup v1 only: every task has "
                          "the same v2 cgroup, so the kernel cannot tell containers apart)")
        return CgroupFilter(wants, root), (
            f"{wants.describe()}: in the kernel by cgroup v2 id (hierarchy at {root}); cgroups created "
            f"later pass until classified (<= {POLL_S:g} s, plus the runtime lookup for names)")

    # -- verdicts -------------------------------------------------------------------------------

    def initial(self, cgroup_texts: Iterable[str], containers: Mapping[str, Mapping[str, Any]]) -> bool:
        """Judge the cgroups of the tasks running now (their /proc/PID/cgroup texts). False (with
        :attr:`off_reason`) when the host's layout makes kernel filtering unsound."""
        for text in set(cgroup_texts):
            if not self._judge_text(text, containers, None):
                return False
        return True

    def scan_proc(self, containers: Mapping[str, Mapping[str, Any]]) -> bool:
        """:meth:`initial` for every process in the host's /proc (before the probe loads)."""
        texts = []
        proc = host_path("/proc")
        try:
            pids = [int(e) for e in os.listdir(proc) if e.isdigit()]
        except OSError:
            pids = []
        for pid in pids:
            text = read_cgroup(pid)
            if text:
                texts.append(text)
        return self.initial(texts, containers)

    def _judge_text(self, text: str, containers: Mapping[str, Mapping[str, Any]], expect: int | None) -> bool:
        """Set the verdict of the v2 cgroup ``text`` names. False: layout unsound (filter off)."""
        path = v2_path(text)
        m = parse_cgroup(f"0::{path}") if path is not None else HOST
        anywhere = parse_cgroup(text)  # v1 lines too
        if anywhere.id != HOST_ID and m.id != anywhere.id:
            self.off_reason = (f"container {anywhere.id}'s unified (v2) cgroup is {path or 'missing'}: its "
                               "runtime does not use cgroup v2, so the kernel cannot tell it apart")
            return False
        if path is None:
            return True  # a host task without a v2 line: nothing to judge
        d = self._dirs.find(path)
        if d is None:
            return True  # gone, or not visible here: if it has events the kernel reports it
        cg = cgroup_id(d)
        if cg is None or (expect is not None and cg != expect):
            return True
        entry = _Cgroup(d, m.id, text)
        self.known[cg] = entry
        v = self.wants.verdict(m.id, containers.get(m.id))
        if v is None:
            self.undecided[cg] = entry
        else:
            self.undecided.pop(cg, None)
            self.verdicts[cg] = v
        return True

    def poll(self, probe: VerdictSink, containers: Mapping[str, Mapping[str, Any]],
             ask: Ask | None = None, force: bool = False) -> None:
        """Classify cgroups the kernel saw without a verdict, and undecided ones whose metadata
        arrived; give the probe what changed. At most every POLL_S unless ``force``; cheap when
        nothing is new: call it often."""
        now = time.monotonic()
        if not force and now - self._last_poll < POLL_S:
            return
        self._last_poll = now
        before = dict(self.verdicts)
        if self.off_reason:
            # Turned off mid-run: let every cgroup through.
            for cg, _ in probe.new_cgroups():
                self.verdicts[cg] = True
        else:
            for cg, tgid in probe.new_cgroups():
                text = read_cgroup(tgid)
                ok = self._judge_text(text, containers, cg) if text else True
                if not ok:
                    self._turn_off(probe)
                    return
                if cg not in self.verdicts and cg not in self.undecided:
                    self._tries[cg] = self._tries.get(cg, 0) + 1
                    if self._tries[cg] >= GIVE_UP_AFTER:
                        self.verdicts[cg] = True  # cannot tell: let it through, user space decides
                else:
                    self._tries.pop(cg, None)
            for cg, entry in list(self.undecided.items()):
                v = self.wants.verdict(entry.cid, containers.get(entry.cid))
                if v is None:
                    if ask is not None:
                        ask(entry.cid, entry.cgroup_text)
                    continue
                del self.undecided[cg]
                self.verdicts[cg] = v
        changed = {cg: v for cg, v in self.verdicts.items() if before.get(cg) != v}
        if changed:
            probe.set_cgroups(changed)
        if len(self.verdicts) > MAP_MAX * 3 // 4 and (force or now - self._last_prune >= PRUNE_S):
            self._last_prune = now
            self._prune(probe)

    def _turn_off(self, probe: VerdictSink) -> None:
        for cg in self.verdicts:
            self.verdicts[cg] = True
        self.undecided.clear()
        probe.set_cgroups(self.verdicts)

    def _prune(self, probe: VerdictSink) -> None:
        gone = [cg for cg, e in self.known.items() if not os.path.isdir(e.path)]
        for cg in gone:
            self.known.pop(cg, None)
            self.verdicts.pop(cg, None)
            self.undecided.pop(cg, None)
        probe.forget_cgroups(gone)

    def summary(self) -> str:
        """For -v: how many cgroups are let through, dropped, waiting."""
        wanted = sum(self.verdicts.values())
        off = f"; off: {self.off_reason}" if self.off_reason else ""
        return (f"kernel cgroup filter: {wanted} cgroup(s) wanted, {len(self.verdicts) - wanted} dropped, "
                f"{len(self.undecided)} waiting for metadata{off}")


def kernel_filter(pd: Pushdown) -> tuple[CgroupFilter | None, str]:
    """For a live run, before the probe loads: the filter holding the verdicts of the cgroups
    running now, or None and why the container conditions stay in user space."""
    cgf, why = CgroupFilter.plan(pd)
    if cgf is None:
        return None, why
    if not cgf.scan_proc({}):
        return None, f"{cgf.wants.describe()}: checked in user space ({cgf.off_reason})"
    return cgf, why


def explain(pd: Pushdown) -> str:
    """One line for ``ktrace --explain``: what the kernel does with the container conditions."""
    return "kernel cgroup filter: " + CgroupFilter.plan(pd)[1]
