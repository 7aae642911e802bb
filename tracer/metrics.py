"""Prometheus metrics of a live run (``--metrics ADDR:PORT``), served with prometheus_client.

What is measured, and where it comes from:

- the probe's counters (events captured, drops by cause, user-memory faults) and the ring
  buffer's fill, read from its mapped producer and consumer positions at scrape time;
- events by category, and per container and per process syscalls, failed syscalls and I/O bytes:
  every batch is tallied in C (``engine.proctally``) before the pipeline sees it, and the processes
  are named from the live state once a second;
- the capture writer's bytes and rotations, the container runtime lookups and their failures;
- ktrace's own CPU and memory (prometheus_client's standard ``process_*`` metrics);
- with ``--metrics-bpf-stats``, the kernel's run-time statistics of the probe's programs
  (BPF_ENABLE_STATS, ~20 ns per program run while on; needs CAP_SYS_ADMIN).

The per-container and per-process series are bounded (``--metrics-top``, default 20 of each): a
key, once chosen, keeps its series (so its counters only grow) until it stays idle for
``IDLE_EVICT_S``, or a key busier by ``REPLACE_FACTOR`` over the last minute needs its slot; what
no series carries is summed under ``container_id="<other>"``. A key's series starts from zero when
it is chosen, its earlier counts staying in ``<other>``: every counter is monotonic and the
series always add up to the whole.

The endpoint is served by a thread of its own from a snapshot the main thread publishes every
second, so a scrape never waits for the pipeline, and reads nothing the pipeline is changing.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .engine import proctally as _tally
from .errors import KtraceError, UsageError
from .na import NA
from .schema import record as R
from .schema.events import event_info
from .state.state import State

PUBLISH_EVERY_S = 1.0
DEFAULT_TOP = 20
IDLE_EVICT_S = 120.0  # a chosen key idle this long gives its series up
EWMA_TAU_S = 60.0  # the activity that decides which keys get a series: about the last minute
REPLACE_FACTOR = 2.0  # a key takes a full table's least active slot only when this much busier
OTHER = "<other>"
BPF_ENABLE_STATS = 32
_NR_BPF = {"x86_64": 321, "aarch64": 280}


class MetricsError(KtraceError):
    """The metrics endpoint cannot be served as asked."""


# --- what the tally counts, per event id ------------------------------------------------------------
def event_kinds() -> bytes:
    """The tally's byte per event id: K_CALL for a syscall's exit, K_ERR when it shows the return
    value (so negative is -errno: failed), K_IO for the read/write family (positive: bytes)."""
    kinds = bytearray(R.EVT_MAX)  # every event id counts by category; only syscall exits by process
    for evt in range(1, R.EVT_BASE_OTHER, 2):
        info = event_info(evt)
        if info is None:
            continue
        k = _tally.K_CALL
        if any(p.src == "ret" for p in info.params(1)):  # -errno on failure, whatever it is on success
            k |= _tally.K_ERR
        if "io_read" in info.flags or "io_write" in info.flags:
            k |= _tally.K_IO
        kinds[evt] = k
    return bytes(kinds)


def event_categories() -> dict[int, str]:
    """sysdig's evt.category of each event id (the id, not only the syscall, decides it)."""
    out = {}
    for evt in range(R.EVT_MAX):
        info = event_info(evt)
        if info is not None:
            out[evt] = info.category
    return out


# --- --metrics ADDR:PORT -------------------------------------------------------------------------------
def parse_listen(text: str, bind_any: bool) -> tuple[str, int]:
    """``ADDR:PORT`` (``[ADDR]:PORT`` for IPv6) -> (address, port). Only a loopback address
    unless ``bind_any``: anything else exposes the endpoint to other machines."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise UsageError(f"--metrics {text}: expected ADDR:PORT, e.g. 127.0.0.1:9464")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"--metrics {text}: the port must be a number from 1 to 65535")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--metrics {text}: {host!r} is not an IP address (use 127.0.0.1, ::1 or "
                         "0.0.0.0 with --metrics-bind-any)") from None
    if not addr.is_loopback and not bind_any:
        raise UsageError(f"--metrics {text}: {host} is not a loopback address, so other machines could "
                         "read the node's process and container names; add --metrics-bind-any to mean it")
    return str(addr), int(port_text)


# --- the probe's programs and ring, seen from outside ----------------------------------------------------
class BpfRunStats:
    """The kernel's run-time statistics of this process's BPF programs, on while this is open
    (BPF_ENABLE_STATS: the kernel stops counting when the fd closes or ktrace dies)."""

    def __init__(self) -> None:
        import ctypes
        import platform

        nr = _NR_BPF.get(platform.machine())
        if nr is None:
            raise MetricsError(f"--metrics-bpf-stats: not supported on {platform.machine()}")
        libc = ctypes.CDLL(None, use_errno=True)
        attr = (ctypes.c_uint8 * 16)()  # union bpf_attr: enable_stats.type = BPF_STATS_RUN_TIME (0)
        fd = libc.syscall(ctypes.c_long(nr), ctypes.c_int(BPF_ENABLE_STATS), ctypes.byref(attr),
                          ctypes.c_uint(16))
        if fd < 0:
            err = ctypes.get_errno()
            why = "needs CAP_SYS_ADMIN (docker: --cap-add SYS_ADMIN; a pod: capabilities.add SYS_ADMIN)" \
                if err == errno.EPERM else os.strerror(err)
            raise MetricsError(f"--metrics-bpf-stats: the kernel refused BPF_ENABLE_STATS: {why}")
        self.fd = fd

    @staticmethod
    def read() -> tuple[int, int]:
        """(runs, run time in ns) summed over this process's BPF programs (from fdinfo)."""
        runs = ns = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:bpf-prog":
                    continue
                with open(f"/proc/self/fdinfo/{fd}") as f:
                    for line in f:
                        key, _, value = line.partition(":")
                        if key == "run_cnt":
                            runs += int(value)
                        elif key == "run_time_ns":
                            ns += int(value)
            except (OSError, ValueError):
                continue
        return runs, ns

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class RingFill:
    """How many bytes of the BPF ring buffer wait to be read: the producer's position minus the
    consumer's, from the map's first two pages mapped read-only (what libbpf's consumer maps)."""

    def __init__(self, map_fd: int, size: int) -> None:
        self.size = size
        page = mmap.PAGESIZE
        self._map = mmap.mmap(map_fd, 2 * page, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        self._page = page

    def used(self) -> int:
        consumer: int = struct.unpack_from("<Q", self._map, 0)[0]
        producer: int = struct.unpack_from("<Q", self._map, self._page)[0]
        return max(0, min(self.size, producer - consumer))

    def close(self) -> None:
        self._map.close()


# --- bounded labelled counters ---------------------------------------------------------------------------
@dataclass
class _Slot:
    values: list[int]  # counts since the key got its series
    rate: float = 0.0  # exponentially weighted calls per second
    last_active: float = 0.0


@dataclass
class BoundedCounters:
    """Counters by key, at most ``limit`` of them exported; see the module's docstring."""

    limit: int
    width: int
    exported: dict[Any, _Slot] = field(default_factory=dict)
    waiting: dict[Any, _Slot] = field(default_factory=dict)  # keys without a series: their activity
    other: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.other = [0] * self.width

    def update(self, deltas: dict[Any, list[int]], now: float, elapsed: float) -> None:
        """Add one period's counts (``elapsed`` seconds of them), then choose the exported keys."""
        decay = math.exp(-elapsed / EWMA_TAU_S) if elapsed > 0 else 1.0
        for s in (*self.exported.values(), *self.waiting.values()):
            s.rate *= decay
        for key, vals in deltas.items():
            slot = self.exported.get(key)
            if slot is None and len(self.exported) < self.limit:
                # A free series: the key gets it at once, nothing of it goes to <other>.
                slot = self.waiting.pop(key, None) or _Slot([0] * self.width, last_active=now)
                slot.values = [0] * self.width
                self.exported[key] = slot
            if slot is not None:
                for i, v in enumerate(vals):
                    slot.values[i] += v
            else:
                for i, v in enumerate(vals):
                    self.other[i] += v
                slot = self.waiting.setdefault(key, _Slot([0] * self.width, last_active=now))
            if vals[0]:
                slot.rate += vals[0] * (1 - decay) / max(elapsed, 1e-3)
                slot.last_active = now
        for table in (self.exported, self.waiting):
            for key in [k for k, s in table.items() if now - s.last_active > IDLE_EVICT_S]:
                del table[key]
        self._choose()

    def _choose(self) -> None:
        if not self.waiting or self.limit <= 0:
            return
        ranked = sorted(self.waiting.items(), key=lambda kv: -kv[1].rate)
        for key, slot in ranked:
            if len(self.exported) >= self.limit:
                weakest = min(self.exported, key=lambda k: self.exported[k].rate)
                if slot.rate <= REPLACE_FACTOR * self.exported[weakest].rate:
                    break
                gone = self.exported.pop(weakest)
                self.waiting[weakest] = _Slot([0] * self.width, gone.rate, gone.last_active)
            del self.waiting[key]
            slot.values = [0] * self.width  # counted in <other> so far; from here on, its own
            self.exported[key] = slot

    def rows(self) -> list[tuple[Any, list[int]]]:
        """(key, values) of the exported keys, then (None, the rest's values)."""
        out: list[tuple[Any, list[int]]] = [(k, list(s.values)) for k, s in self.exported.items()]
        out.append((None, list(self.other)))
        return out


# --- the live metrics -------------------------------------------------------------------------------------
@dataclass
class MetricsOptions:
    address: str
    port: int
    top: int = DEFAULT_TOP
    bpf_stats: bool = False


@dataclass(frozen=True)
class Snapshot:
    """What a scrape shows, published by the main thread."""

    families: list[Metric]


class LiveMetrics(Collector):
    """Counts what a live run sees and serves it; ``start`` binds the port (before the probe loads,
    so a port in use fails at once), ``attach`` and the per-batch hooks feed it."""

    def __init__(self, opts: MetricsOptions) -> None:
        self.opts = opts
        self.tally = _tally.Tally(event_kinds())
        self.categories = event_categories()
        self.by_category: dict[str, int] = {}
        self.containers = BoundedCounters(opts.top, 3)
        self.processes = BoundedCounters(opts.top, 3)
        self._resolved: dict[int, tuple[str, str]] = {}
        self._snap = Snapshot([])
        self._last_publish = time.monotonic()
        self.state: State | None = None
        self.stats: Callable[[], dict[str, int]] | None = None
        self.writer: Any = None
        self.resolver: Any = None
        self.ring: RingFill | None = None
        self.bpf: BpfRunStats | None = None
        self._server: Any = None
        self.registry = CollectorRegistry(auto_describe=False)

    # --- setup ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind and serve; a port in use or an address not of this machine is a usage error."""
        opts = self.opts
        shown = f"[{opts.address}]:{opts.port}" if ":" in opts.address else f"{opts.address}:{opts.port}"
        if opts.bpf_stats:
            self.bpf = BpfRunStats()
        try:
            server, _thread = start_http_server(opts.port, addr=opts.address, registry=self.registry)
        except OSError as e:
            self.close()
            if e.errno == errno.EADDRINUSE:
                raise UsageError(f"--metrics {shown}: port {opts.port} is in use; pick a free port") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"--metrics {shown}: {opts.address} is not an address of this machine") from None
            if e.errno == errno.EACCES:
                raise UsageError(f"--metrics {shown}: not allowed to listen on port {opts.port}") from None
            raise UsageError(f"--metrics {shown}: cannot listen ({e.strerror or e})") from None
        self._server = server
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes ...
        self.registry.register(self)

    def attach(self, state: State, stats: Callable[[], dict[str, int]], ring_fd: int, ring_size: int,
               resolver: Any) -> None:
        """The live run's parts, once the probe is loaded."""
        self.state = state
        self.stats = stats
        self.resolver = resolver
        try:
            self.ring = RingFill(ring_fd, ring_size)
        except OSError:
            self.ring = None  # a kernel without mmap-able ring maps: no fill gauge
        state.before_reap = self._resolve
        self.publish(time.monotonic())

    # --- per batch (main thread) ---------------------------------------------------------------------
    def on_batch(self, batch: bytes) -> None:
        """Before the pipeline: tally the batch's records."""
        self.tally.add(batch)

    def _resolve(self) -> None:
        """Name the processes tallied so far while the state still knows them (called before it
        forgets the threads that exited, and before each publish)."""
        state = self.state
        if state is None:
            return
        known = self._resolved
        threads = state.threads
        for pid in self.tally.procs:
            if pid not in known:
                t = threads.get(pid)
                if t is not None and t.comm:
                    known[pid] = (t.container_id, t.comm)

    def tick(self, now: float) -> None:
        """After the pipeline: publish a new snapshot once a second."""
        if now - self._last_publish >= PUBLISH_EVERY_S:
            self.publish(now)

    def publish(self, now: float) -> None:
        self._resolve()
        procs, evts = self.tally.take()
        resolved, self._resolved = self._resolved, {}
        elapsed, self._last_publish = now - self._last_publish, now
        by_cid: dict[Any, list[int]] = {}
        by_proc: dict[Any, list[int]] = {}
        for pid, vals in procs.items():
            cid, comm = resolved.get(pid, (NA, NA))
            for table, key in ((by_cid, cid), (by_proc, (cid, comm))):
                row = table.get(key)
                if row is None:
                    table[key] = list(vals)
                else:
                    for i, v in enumerate(vals):
                        row[i] += v
        self.containers.update(by_cid, now, elapsed)
        self.processes.update(by_proc, now, elapsed)
        cats = self.categories
        for evt, n in evts.items():
            cat = cats.get(evt, "unknown")
            self.by_category[cat] = self.by_category.get(cat, 0) + n
        self._snap = Snapshot(self._families())

    # --- what a scrape shows ------------------------------------------------------------------------
    def _container_labels(self, cid: str | None) -> list[str]:
        if cid is None:
            return [OTHER, OTHER, OTHER]
        if cid == "host":
            return ["host", "host", ""]
        doc = self.state.containers.get(cid, {}) if self.state is not None else {}
        return [cid, str(doc.get("name") or NA), str(doc.get("image") or NA)]

    def _families(self) -> list[Metric]:
        fams: list[Metric] = []
        stats = self.stats() if self.stats is not None else {}
        ev = CounterMetricFamily("ktrace_events", "Events the probe captured (syscall enters and exits, "
                                 "process exits, connections).")
        ev.add_metric([], stats.get("events", 0))
        drops = CounterMetricFamily("ktrace_events_dropped", "Events lost, by cause: buffer (the ring was "
                                    "full), toolarge (a record over the size limit), user (a batch could not "
                                    "be copied).", labels=["cause"])
        for k in sorted(stats):
            if k.startswith("drops_"):
                drops.add_metric([k.removeprefix("drops_")], stats[k])
        faults = CounterMetricFamily("ktrace_probe_read_faults", "User-memory reads that failed in the probe "
                                     "(the argument is shown empty).")
        faults.add_metric([], stats.get("faults", 0))
        cat = CounterMetricFamily("ktrace_events_processed", "Events that reached user space, by sysdig's "
                                  "evt.category.", labels=["category"])
        for name, n in sorted(self.by_category.items()):
            cat.add_metric([name], n)
        fams += [ev, drops, faults, cat]

        labels_c = ["container_id", "container_name", "container_image"]
        c_calls = CounterMetricFamily("ktrace_container_syscalls", "System calls made, by container (the "
                                      f"busiest {self.opts.top}; the rest under container_id=\"{OTHER}\").",
                                      labels=labels_c)
        c_errs = CounterMetricFamily("ktrace_container_syscall_errors", "System calls that failed (a negative "
                                     "result), by container.", labels=labels_c)
        c_io = CounterMetricFamily("ktrace_container_io_bytes", "Bytes read and written by the read/write "
                                   "family of system calls, by container.", labels=labels_c)
        for key, vals in self.containers.rows():
            lab = self._container_labels(key)
            c_calls.add_metric(lab, vals[0])
            c_errs.add_metric(lab, vals[1])
            c_io.add_metric(lab, vals[2])
        labels_p = ["container_id", "container_name", "proc_name"]
        p_calls = CounterMetricFamily("ktrace_process_syscalls", "System calls made, by process name and "
                                      f"container (the busiest {self.opts.top}; the rest under "
                                      f"proc_name=\"{OTHER}\").", labels=labels_p)
        p_errs = CounterMetricFamily("ktrace_process_syscall_errors", "System calls that failed, by process "
                                     "name and container.", labels=labels_p)
        p_io = CounterMetricFamily("ktrace_process_io_bytes", "Bytes read and written by process name and "
                                   "container.", labels=labels_p)
        for pkey, vals in self.processes.rows():
            if pkey is None:
                lab = [OTHER, OTHER, OTHER]
            else:
                lab = [*self._container_labels(pkey[0])[:2], pkey[1]]
            p_calls.add_metric(lab, vals[0])
            p_errs.add_metric(lab, vals[1])
            p_io.add_metric(lab, vals[2])
        fams += [c_calls, c_errs, c_io, p_calls, p_errs, p_io]

        writer = self.writer.stats if self.writer is not None else {}
        wb = CounterMetricFamily("ktrace_capture_written_bytes", "Bytes written to capture files (-w).")
        wb.add_metric([], writer.get("bytes", 0))
        rot = CounterMetricFamily("ktrace_capture_rotations", "Capture files started after the first (-C, -G, -e).")
        rot.add_metric([], max(0, writer.get("files", 0) - 1))
        fams += [wb, rot]

        counts = getattr(self.resolver, "counts", None) or {}
        lk = CounterMetricFamily("ktrace_container_lookups", "Container metadata lookups by the runtime's "
                                 "answer: done, failed (the name stays <NA>), retried.", labels=["result"])
        for result in ("done", "failed", "retried"):
            lk.add_metric([result], counts.get(result, 0))
        fams.append(lk)

        info = GaugeMetricFamily("ktrace_build_info", "ktrace's version.", labels=["version"])
        info.add_metric([__version__], 1)
        fams.append(info)
        return fams

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's scrape: the last snapshot, plus what is read now."""
        yield from self._snap.families
        ring = self.ring
        if ring is not None:
            used = GaugeMetricFamily("ktrace_ring_buffer_used_bytes", "Bytes in the probe's ring buffer "
                                     "waiting to be read.")
            used.add_metric([], ring.used())
            size = GaugeMetricFamily("ktrace_ring_buffer_size_bytes", "The probe's ring buffer size.")
            size.add_metric([], ring.size)
            yield used
            yield size
        if self.bpf is not None:
            runs, ns = self.bpf.read()
            r = CounterMetricFamily("ktrace_probe_runs", "Runs of the probe's BPF programs while "
                                    "--metrics-bpf-stats is on.")
            r.add_metric([], runs)
            t = CounterMetricFamily("ktrace_probe_run_seconds", "Time the probe's BPF programs ran in the "
                                    "kernel while --metrics-bpf-stats is on; per event: divide by "
                                    "ktrace_probe_runs_total.")
            t.add_metric([], ns / 1e9)
            yield r
            yield t

    def describe(self) -> Iterable[Metric]:
        return []

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.ring is not None:
            self.ring.close()
            self.ring = None
        if self.bpf is not None:
            self.bpf.close()
            self.bpf = None
        if self.state is not None and self.state.before_reap == self._resolve:
            self.state.before_reap = None


def start_metrics(listen: str, *, bind_any: bool, top: int, bpf_stats: bool) -> LiveMetrics:
    """``--metrics``: check the address, bind the port, serve. Errors are UsageError/MetricsError."""
    address, port = parse_listen(listen, bind_any)
    m = LiveMetrics(MetricsOptions(address, port, top=top, bpf_stats=bpf_stats))
    m.start()
    return m

