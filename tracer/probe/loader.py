"""Compile, configure and attach the probe with bcc; read its counters.

The probe is plain C configured with -D flags; the event table reaches it as rows of the kt_spec
map (what to capture for each event, and whether the event is wanted at all), so the kernel side
never needs regenerating when the schema grows.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProbeError
from ..schema import record as R
from ..schema.events import SYSCALL_NR
from ..schema.gen import STATS, capture_specs, pack_spec

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
    need = max(cfg.snaplen, PATHMAX * 2, 256)
    n = 1
    while n < need:
        n <<= 1
    return n


def cflags(cfg: ProbeConfig) -> list[str]:
    ring = cfg.ring_mb * 1024 * 1024
    if ring & (ring - 1) or ring < 4096 * 2:
        raise ProbeError(f"ring buffer size must be a power of two of MiB, got {cfg.ring_mb}")
    flags = [
        f"-I{PROBE_DIR}",
        f"-DKT_SELF_TGID={cfg.self_tgid}",
        f"-DKT_RING_BYTES={ring}",
        f"-DKT_SNAPLEN={cfg.snaplen}",
        f"-DKT_PATHMAX={PATHMAX}",
        f"-DKT_SEGMAX={_segmax(cfg)}",
        "-Wno-unused-function",
    ]
    if cfg.pids is not None:
        flags.append("-DKT_FILTER_PIDS")
    if cfg.cgroups is not None:
        flags.append("-DKT_FILTER_CGROUPS")
    if cfg.comms is not None:
        flags.append("-DKT_FILTER_COMMS")
    return flags


def _check_privileges() -> None:
    if os.geteuid() != 0:
        raise ProbeError("loading the probe needs root (or CAP_BPF and CAP_PERFMON): run ktrace with sudo")


class Probe:
    """The loaded probe. ``ring_fd`` is the ring buffer map's fd for the consumer."""

    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        _check_privileges()
        try:
            from bcc import BPF  # Debian's python3-bpfcc; imported late so offline use needs no bcc
        except ImportError as e:
            raise ProbeError(
                "the bcc Python module is missing: apt-get install python3-bpfcc (the PyPI package "
                "named bcc is unrelated), then re-run scripts/setup.sh"
            ) from e
        self.started = time.monotonic()
        try:
            self.bpf: Any = BPF(src_file=str(PROBE_SRC).encode(), cflags=cflags(cfg))
        except Exception as e:  # bcc raises bare Exception on compile/load failures
            raise ProbeError(_explain_failure(e)) from e
        # bcc attached the programs already: the filters go in first, then the spec rows, which
        # open the gate (an event without its row is not wanted), so no event slips past a filter.
        self._fill_filters()
        self._fill_spec()
        self.ring_fd: int = self.bpf["kt_events"].map_fd
        self.attach_time_ns = time.time_ns()

    def _fill_spec(self) -> None:
        table = self.bpf["kt_spec"]
        specs = capture_specs()
        wanted = self.cfg.evts
        for evt in range(R.EVT_MAX):
            row = specs.get(evt, (1, 0) + (0,) * 10)
            interest = 1 if wanted is None or evt in wanted else 0
            if not interest:
                continue  # zero rows are already "not wanted"
            always = 1 if evt in LIFECYCLE else 0
            leaf = table.Leaf.from_buffer_copy(pack_spec((interest, always, *row[2:])))
            table[ctypes.c_int(evt)] = leaf

    def _fill_filters(self) -> None:
        if self.cfg.pids is not None:
            self.set_pids(self.cfg.pids)
        if self.cfg.cgroups is not None:
            self.set_cgroups(self.cfg.cgroups)
        if self.cfg.comms is not None:
            t = self.bpf["kt_comms"]
            for comm in self.cfg.comms:
                key = t.Key()
                raw = comm.encode()[:15]
                ctypes.memmove(ctypes.addressof(key), raw, len(raw))
                t[key] = ctypes.c_uint8(1)

    def set_pids(self, pids: Iterable[int]) -> None:
        t = self.bpf["kt_pids"]
        for pid in pids:
            t[ctypes.c_uint32(pid)] = ctypes.c_uint8(1)

    def set_cgroups(self, verdicts: Mapping[int, bool]) -> int:
        """Give the kernel's cgroup filter its verdicts; returns how many the map took (a full map
        refuses the rest, whose cgroups then keep passing: safe, only less selective)."""
        t = self.bpf["kt_cgroups"]
        n = 0
        for cg, wanted in verdicts.items():
            try:
                t[ctypes.c_uint64(cg)] = ctypes.c_uint8(1 if wanted else 0)
                n += 1
            except Exception:  # bcc raises a bare Exception when the map is full
                break
        return n

    def forget_cgroups(self, ids: Iterable[int]) -> None:
        """Drop verdicts (of cgroups gone since), making room in the map."""
        t = self.bpf["kt_cgroups"]
        for cg in ids:
            try:
                del t[ctypes.c_uint64(cg)]
            except KeyError:
                pass

    def new_cgroups(self) -> list[tuple[int, int]]:
        """``(cgroup id, a tgid seen in it)`` for each cgroup that had events but no verdict since
        the last call; each is taken out of the kernel's list (it comes back if still unjudged)."""
        t = self.bpf["kt_cgnew"]
        out = [(int(k.value), int(v.value)) for k, v in t.items()]
        for cg, _ in out:
            try:
                del t[ctypes.c_uint64(cg)]
            except KeyError:
                pass
        return out

    def stats(self) -> dict[str, int]:
        """Counters summed over CPUs: events, drops_buffer, drops_toolarge, faults."""
        t = self.bpf["kt_stats"]
        out = {}
        for i, name in enumerate(STATS):
            out[name] = int(sum(t[ctypes.c_int(i)]))
        return out

    def close(self) -> None:
        self.bpf.cleanup()


def _explain_failure(e: Exception) -> str:
    from ..doctor import headers_status

    ok, why = headers_status()
    if not ok:
        return f"cannot compile the probe: {why}"
    text = str(e).strip().splitlines()
    return f"cannot load the probe ({text[-1] if text else type(e).__name__}); `ktrace doctor` says what is missing"
