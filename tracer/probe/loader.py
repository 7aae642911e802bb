"""Load, configure and attach the probe; read its counters.

The probe is plain C; the compiler sees only what the verifier needs as constants (-D flags), so
its compiled form is cached (cache.py) and a start normally loads it without bcc or LLVM. Per-run
settings go into the kt_config map, the event table into rows of the kt_spec map (what to capture
for each event, and whether it is wanted at all), so the kernel side never needs regenerating when
the schema grows.
"""

from __future__ import annotations

import errno
import os
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ProbeError
from ..schema import record as R
from ..schema.events import SYSCALL_NR
from ..schema.gen import STATS, capture_specs, pack_spec, spec_row
from ..schema.tracepoints import TRACEFS, TRACEPOINTS, locate
from . import bpfsys, cache
from .headers import headers_status
from .image import Image, ImageError, relocate

PROBE_DIR = Path(__file__).resolve().parent
PROBE_SRC = PROBE_DIR / "ktrace.bpf.c"

DEFAULT_RING_MB = 64

# Events that pass the kernel's comm filter whatever the thread's name: the state needs a new
# process's parent and its exec even when the name the filter wants comes with that exec.
LIFECYCLE = frozenset(
    [R.syscall_evt(SYSCALL_NR[n], 1) for n in ("clone", "clone3", "fork", "vfork", "execve", "execveat")]
    + [R.syscall_evt(SYSCALL_NR[n], 0) for n in ("execve", "execveat")]
    + [R.EVT_PROCEXIT]
)
PATHMAX = 1024
# Largest KT_SEGMAX: kt_scratch's per-CPU value (head + 4 segments) must stay under the kernel's
# 32 KiB per-CPU allocation limit. Larger snaplens are cut to SEGMAX_MAX - 1 bytes.
SEGMAX_MAX = 4096

# struct kt_config and its filter bits (ktrace.bpf.c).
CONFIG_FMT = "<IIII"
CF_PIDS, CF_CGROUPS, CF_COMMS = 1, 2, 4
# Filter maps by the filter that needs them; unused ones are created with one entry.
FILTER_MAPS = {"kt_pids": CF_PIDS, "kt_cgroups": CF_CGROUPS, "kt_cgnew": CF_CGROUPS, "kt_comms": CF_COMMS,
               "kt_comm_seen": CF_COMMS}


@dataclass
class ProbeConfig:
    ring_mb: int = DEFAULT_RING_MB
    snaplen: int = 80
    evts: frozenset[int] | None = None  # wanted event ids; None = all
    pids: frozenset[int] | None = None
    # cgroup v2 id -> verdict (True: a wanted container's cgroup); ids without one pass and are
    # reported by Probe.new_cgroups(). None: no cgroup filter (tracer/enrich/cgroupid.py).
    cgroups: Mapping[int, bool] | None = None
    comms: frozenset[str] | None = None
    self_tgid: int = field(default_factory=os.getpid)


def _segmax(cfg: ProbeConfig) -> int:
    # Strictly above snaplen: a length is masked with KT_SEGMAX - 1 for the verifier.
    need = max(cfg.snaplen + 1, PATHMAX * 2, 256)
    n = 1
    while n < need:
        n <<= 1
    return min(n, SEGMAX_MAX)


def compile_flags(cfg: ProbeConfig) -> list[str]:
    """The compiler's flags: only what must be constant for the verifier (part of the cache key)."""
    return [f"-I{PROBE_DIR}", f"-DKT_PATHMAX={PATHMAX}", f"-DKT_SEGMAX={_segmax(cfg)}", "-Wno-unused-function"]


def ring_bytes(cfg: ProbeConfig) -> int:
    ring = cfg.ring_mb * 1024 * 1024
    if ring <= 0 or ring & (ring - 1):
        raise ProbeError(f"ring buffer size must be a power of two of MiB, got {cfg.ring_mb}")
    return ring


def filter_bits(cfg: ProbeConfig) -> int:
    return (
        (CF_PIDS if cfg.pids is not None else 0)
        | (CF_CGROUPS if cfg.cgroups is not None else 0)
        | (CF_COMMS if cfg.comms is not None else 0)
    )


def pack_config(cfg: ProbeConfig) -> bytes:
    snaplen = min(cfg.snaplen, _segmax(cfg) - 1)
    return struct.pack(CONFIG_FMT, cfg.self_tgid, snaplen, filter_bits(cfg), 0)


def _check_privileges() -> None:
    if os.geteuid() != 0:
        raise ProbeError("loading the probe needs root (or CAP_BPF and CAP_PERFMON): run ktrace with sudo")


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "little")


def _u64(v: int) -> bytes:
    return v.to_bytes(8, "little")


class Probe:
    """The loaded probe. ``ring_fd`` is the ring buffer map's fd for the consumer; ``cache`` says
    whether it came from the cache (cache.Outcome)."""

    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        _check_privileges()
        self.started = time.monotonic()
        self.maps: dict[str, bpfsys.Map] = {}
        self._progs: list[int] = []
        self._links: list[int] = []
        self.notes: list[str] = []  # optional programs left out, and why (-v)
        ring_bytes(cfg)
        flags = compile_flags(cfg)
        for attempt in (1, 2):
            try:
                image, self.cache = cache.obtain(PROBE_SRC, flags)
            except (ImageError, OSError) as e:
                raise ProbeError(_explain_failure(e)) from e
            try:
                self._load(image)
                break
            except OSError as e:
                self.close()
                if attempt == 1 and isinstance(e, bpfsys.ProgLoadError) and self.cache.status == "hit":
                    # A cached program the kernel refuses (after a change the key does not see):
                    # drop it and compile once more.
                    cache.forget(self.cache.path)
                    continue
                raise ProbeError(_refused(e)) from e
        self.ring_fd: int = self.maps["kt_events"].fd
        self.attach_time_ns = time.time_ns()

    def _load(self, image: Image) -> None:
        self._create_maps(image)
        # Settings and filters first, then the spec rows, which open the gate (an event without
        # its row is not wanted), then the programs: no event slips past a filter.
        self.maps["kt_config"].update(_u32(0), pack_config(self.cfg))
        self._fill_filters()
        self._fill_spec()
        fds = {name: m.fd for name, m in self.maps.items()}
        raw: list[tuple[str, int]] = []  # attached last
        extra: list[tuple[str, int]] = []  # optional raw tracepoints
        regular = []
        for p in image.programs:
            if p.raw:
                try:
                    fd = bpfsys.prog_load(bpfsys.PROG_TYPE_RAW_TRACEPOINT, relocate(p, fds), p.license,
                                          f"kt_{p.tracepoint}")
                except bpfsys.ProgLoadError as e:
                    if not p.optional:
                        raise
                    # Helpers it needs that this kernel lacks: what it adds has a slower path.
                    self.notes.append(f"{p.tracepoint} not loaded ({e.strerror or e})")
                    continue
                (extra if p.optional else raw).append((p.tracepoint, fd))
                self._progs.append(fd)
                continue
            tp_id, why = tracepoint_id(p.tracepoint)
            if tp_id is None:
                self.notes.append(f"{p.tracepoint} not attached ({why})")
                continue
            fd = bpfsys.prog_load(bpfsys.PROG_TYPE_TRACEPOINT, relocate(p, fds), p.license,
                                  f"kt_{p.tracepoint.rpartition('/')[2]}")
            self._progs.append(fd)
            regular.append(((p.tracepoint, tp_id), fd))
        for (path, tp_id), fd in regular:
            try:
                self._links.append(bpfsys.tracepoint_attach(tp_id, fd))
            except OSError as e:  # what it adds has a slower path: leave it out, say so with -v
                self.notes.append(f"{path} not attached ({e.strerror or e})")
        for tp, fd in extra:
            try:
                self._links.append(bpfsys.raw_tracepoint_open(tp, fd))
            except OSError as e:  # a kernel without that tracepoint
                self.notes.append(f"{tp} not attached ({e.strerror or e})")
        for tp, fd in raw:
            self._links.append(bpfsys.raw_tracepoint_open(tp, fd))

    def _create_maps(self, image: Image) -> None:
        bits = filter_bits(self.cfg)
        for m in image.maps:
            size = m.max_entries
            if m.name == "kt_events":
                size = ring_bytes(self.cfg)
            elif m.name in FILTER_MAPS and not bits & FILTER_MAPS[m.name]:
                size = 1
            fd = _map_create(m.type, m.key_size, m.value_size, size, m.flags, m.name)
            self.maps[m.name] = bpfsys.Map(fd, m.name, m.type, m.key_size, m.value_size)

    def _fill_spec(self) -> None:
        table = self.maps["kt_spec"]
        specs = capture_specs()
        wanted = self.cfg.evts
        for evt in range(R.EVT_MAX):
            row = spec_row(evt, specs)
            interest = 1 if wanted is None or evt in wanted else 0
            if not interest:
                continue  # zero rows are already "not wanted"
            always = 1 if evt in LIFECYCLE else 0
            table.update(_u32(evt), pack_spec((interest, always, *row[2:])))

    def _fill_filters(self) -> None:
        if self.cfg.pids is not None:
            self.set_pids(self.cfg.pids)
        if self.cfg.cgroups is not None:
            self.set_cgroups(self.cfg.cgroups)
        if self.cfg.comms is not None:
            t = self.maps["kt_comms"]
            for comm in self.cfg.comms:
                t.update(comm.encode()[:15].ljust(t.key_size, b"\0"), b"\1")

    def set_pids(self, pids: Iterable[int]) -> None:
        t = self.maps["kt_pids"]
        for pid in pids:
            t.update(_u32(pid), b"\1")

    def set_cgroups(self, verdicts: Mapping[int, bool]) -> int:
        """Give the kernel's cgroup filter its verdicts; returns how many the map took (a full map
        refuses the rest, whose cgroups then keep passing: safe, only less selective)."""
        t = self.maps["kt_cgroups"]
        n = 0
        for cg, wanted in verdicts.items():
            try:
                t.update(_u64(cg), b"\1" if wanted else b"\0")
            except OSError as e:
                if e.errno == errno.E2BIG:  # full
                    break
                raise
            n += 1
        return n

    def forget_cgroups(self, ids: Iterable[int]) -> None:
        """Drop verdicts (of cgroups gone since), making room in the map."""
        t = self.maps["kt_cgroups"]
        for cg in ids:
            t.delete(_u64(cg))

    def new_cgroups(self) -> list[tuple[int, int]]:
        """``(cgroup id, a tgid seen in it)`` for each cgroup that had events but no verdict since
        the last call; each is taken out of the kernel's list (it comes back if still unjudged)."""
        t = self.maps["kt_cgnew"]
        out = []
        for k in list(t.keys()):
            v = t.lookup(k)
            if v is not None:
                out.append((int.from_bytes(k, "little"), int.from_bytes(v, "little")))
            t.delete(k)
        return out

    def stats(self) -> dict[str, int]:
        """Counters summed over CPUs: events, drops_buffer, drops_toolarge, faults."""
        t = self.maps["kt_stats"]
        out = {}
        for i, name in enumerate(STATS):
            raw = t.lookup(_u32(i)) or b""
            out[name] = sum(int.from_bytes(raw[at : at + 8], "little") for at in range(0, len(raw), t.slot))
        return out

    def close(self) -> None:
        """Detach and free everything; safe to call twice."""
        for fd in self._links + self._progs:
            os.close(fd)
        self._links, self._progs = [], []
        for m in self.maps.values():
            m.close()
        self.maps = {}


def tracepoint_id(path: str) -> tuple[int | None, str]:
    """The tracefs id of regular tracepoint ``path`` (category/name) when the kernel lays its
    record out as tracer/schema/tracepoints.py declares; else None and why not."""
    declared = {tp.path: tp for tp in TRACEPOINTS}.get(path)
    if declared is None:
        return None, "not declared in tracer/schema/tracepoints.py"
    return locate(declared, TRACEFS)


def _map_create(map_type: int, key_size: int, value_size: int, size: int, flags: int, name: str) -> int:
    try:
        return bpfsys.map_create(map_type, key_size, value_size, size, flags, name)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
        refused = e
    # Kernels before 5.11 charge maps to RLIMIT_MEMLOCK: lift it, as bcc does, and try again.
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # no CAP_SYS_RESOURCE: the limit was not the reason, the privileges are
        raise refused from None
    return bpfsys.map_create(map_type, key_size, value_size, size, flags, name)


def _refused(e: OSError) -> str:
    if not isinstance(e, bpfsys.ProgLoadError):
        return f"cannot load the probe ({e.strerror or e}); `ktrace doctor` says what is missing"
    tail = [line for line in e.log.splitlines() if line.strip()][-3:]
    return f"the kernel refused the probe ({e.strerror})" + (": " + " / ".join(tail) if tail else "")


def _explain_failure(e: Exception) -> str:
    ok, why = headers_status()
    if not ok:
        return f"cannot compile the probe: {why}"
    text = str(e).strip().splitlines()
    return f"cannot load the probe ({text[-1] if text else type(e).__name__}); `ktrace doctor` says what is missing"
