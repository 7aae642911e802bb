"""A run of ktrace: a source (live probe or capture files), the pipeline, and what consumes its
events (printed lines, a capture file, a chisel). The CLI builds RunOptions and calls ``run``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from . import engine as _engine
from .capture import CaptureWriter, EventBlock, FileStart, RotatePolicy, StatsBlock, TableBlock, blockcodec
from .capture import machine_info as _machine_info
from .capture.files import read_captures
from .capture.scap.writer import ScapWriter, wants_scap
from .errors import KtraceError, UsageError
from .event import Event, RenderOptions
from .filter.compiler import CompiledFilter, compile_filter
from .filter.pushdown import Pushdown, exact
from .output.format import Formatter
from .pipeline import STATE_EVENTS, Pipeline, Selection
from .schema import record as R
from .schema.events import INTERNAL_EVENTS, SCHEMA_VERSION, event_ids, event_name, event_names
from .schema.fields import FIELDS
from .state.state import State

TABLES_EVERY_S = 10.0  # live -w: a fresh state snapshot this often
START_LOOKUP_WAIT_S = 1.0  # live: wait this long for the running containers' names at start
FILE_WRITE_BYTES = 1 << 20  # reading captures, lines go out in writes of about this size
BACKLOG_NOTE_BYTES = 1 << 20  # -w, after Ctrl-C: a backlog worth saying it is being written
STOP_GRACE_S = 1.0  # printing live, after Ctrl-C: the backlog is printed this long, the rest counted


@dataclass
class RunOptions:
    reads: list[str] = field(default_factory=list)
    write: str | None = None
    rotate: RotatePolicy | None = None
    write_format: str | None = None  # "kcap" or "scap"; None: by the -w file's extension
    compress: bool = False  # -z: gzip a .scap file
    quiet: bool = False
    max_events: int | None = None
    seconds: float | None = None
    fatfile: bool = False
    filter_text: str = ""
    fmt: str | None = None
    json_out: bool = False
    time_mode: str = "h"
    render: RenderOptions = field(default_factory=RenderOptions)
    snaplen: int = 80
    ring_mb: int = 64
    show_internal: bool = False
    summary: bool = False
    verbose: bool = False
    chisel: Any = None  # a tracer.chisel.Chisel, already configured with its args
    container_mode: bool = False  # -pc / -pk: chisels switch to their container variants
    argv: list[str] = field(default_factory=list)
    metrics: Any = None  # a started tracer.metrics.LiveMetrics (--metrics)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)


class AndFilter:
    """Both the user's filter and the chisel's must hold."""

    def __init__(self, parts: list[CompiledFilter]) -> None:
        preds = [p.match for p in parts]
        if len(preds) == 1:
            self.match: Callable[[Event], bool] = preds[0]
        else:
            self.match = lambda ev: all(p(ev) for p in preds)


def _filters(opts: RunOptions) -> tuple[list[CompiledFilter], Pushdown]:
    parts = []
    if opts.filter_text.strip():
        parts.append(compile_filter(opts.filter_text, FIELDS))
    chisel_filter = getattr(opts.chisel, "filter", None) if opts.chisel is not None else None
    if chisel_filter:
        parts.append(compile_filter(chisel_filter, FIELDS))
    pd = Pushdown()
    for p in parts:
        pd = pd.merge(p.pushdown)
    return parts, pd


def wanted_events(pd: Pushdown) -> frozenset[int] | None:
    """Event ids a matching event can have, from the pushdown (None = any)."""
    if pd.evt_types is None and pd.dirs is None:
        return None
    names = event_names()
    if pd.evt_types is not None:
        names = [n for n in names if pd.evt_types.admits(n)]
    ids: set[int] = set()
    for n in names:
        ids.update(event_ids(n))
    if pd.dirs is not None:
        keep_enter, keep_exit = pd.dirs.admits(">"), pd.dirs.admits("<")
        # Events that are not syscalls (procexit, internal ones) print with the '>' direction.
        ids = {e for e in ids if (e & 1 and e < R.EVT_BASE_OTHER and keep_exit)
               or ((not e & 1 or e >= R.EVT_BASE_OTHER) and keep_enter)}
    return frozenset(ids)


def fd_check(pd: Pushdown, state: State) -> Callable[[int, int], bool | None] | None:
    """The scanner's per-fd prefilter from the pushdown's fd.type set: an fd the (current) state
    does not know has no type, which no fd.type check accepts."""
    types = pd.fd_types
    if types is None:
        return None

    def check(pid: int, num: int) -> bool | None:
        fd = state.fd(pid, num)
        return fd is not None and types.admits(fd.type)

    return check


def thread_check(pd: Pushdown, state: State) -> Callable[[int], bool | None] | None:
    """The scanner's per-thread prefilter from the pushdown's pid, tid, comm and container sets."""
    dims = [(pd.pids, "pid"), (pd.tids, "tid"), (pd.comms, "comm"), (pd.container_ids, "container_id")]
    active = [(s, attr) for s, attr in dims if s is not None]
    if not active:
        return None
    def check(tid: int) -> bool | None:
        t = state.threads.get(tid)
        if t is None:
            return None
        for s, attr in active:
            v = getattr(t, attr)
            if attr == "comm":
                v = v[:15]
            if not s.admits(v):
                return False
        return True

    return check


def _chisel_internal(chisel: Any) -> frozenset[int]:
    """Internal events a chisel's own filter names (``evt.type=procinfo``): it sees them without -D."""
    if getattr(chisel, "sees_internal", False):
        return INTERNAL_EVENTS
    text = getattr(chisel, "filter", None) if chisel is not None else None
    if not text:
        return frozenset()
    types = compile_filter(text, FIELDS).pushdown.evt_types
    if types is None or types.exclude:
        return frozenset()
    return frozenset(e for e in INTERNAL_EVENTS if event_name(e) in types.values)


class Runner:
    """Owns one run: sets everything up from RunOptions, then drives the source to the end."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.state = State()
        parts, self.pushdown = _filters(opts)
        self.parts = parts
        self.predicate = AndFilter(parts) if parts else None
        self.formatter = Formatter(opts.fmt, json_out=opts.json_out, time_mode=opts.time_mode, opts=opts.render)
        self.printed = 0
        self.done = False
        self.summary: Counter[tuple[str, str]] = Counter()
        self.renderer = _engine.render.Renderer(self.formatter, self.state)
        self._notes: list[str] = []  # -v: printed after the end-of-run counts
        self.writer: CaptureWriter | None = None
        self.stop_requested = False
        chisel = opts.chisel
        needs_latency = "evt.latency" in self._fields_used() or opts.time_mode == "d"
        self.printing = not opts.quiet and chisel is None and opts.write is None
        on_event = self._on_event if (self.printing or chisel is not None or opts.summary) else None
        # Printing with nothing to count per event (-n, -S): each event straight to the renderer.
        plain = self.printing and opts.max_events is None and not opts.summary
        if plain:
            on_event = self.renderer.render_event
        if chisel is not None:
            chisel.state = self.state  # sysdig's chisels may read the thread and container tables
        # A table chisel counts exactly matched records without Events, unless something else
        # needs each of them: -n, -S, a capture, latencies (unless the counter pairs them itself).
        counter = getattr(chisel, "record_counter", None)
        on_record = counter(self.state) if counter is not None and opts.max_events is None and not opts.summary \
            and opts.write is None and (not needs_latency or getattr(chisel, "pairs_latency", False)) else None
        runs = getattr(chisel, "record_runs", None)
        on_records = runs() if runs is not None and on_record is not None else None
        self.pipeline = Pipeline(
            self.state, predicate=self.predicate, on_record=on_record, on_records=on_records,
            selection=Selection(wanted_events(self.pushdown), thread_check(self.pushdown, self.state),
                                fd_check(self.pushdown, self.state), exact=all(exact(p.ast) for p in parts)),
            on_event=on_event, show_internal=opts.show_internal, fatfile=opts.fatfile,
            latency=needs_latency, keep=opts.write is not None, admit_internal=_chisel_internal(chisel),
            renderer=self.renderer if plain else None)

    def _fields_used(self) -> set[str]:
        used = set(self.formatter.fields)
        chisel = self.opts.chisel
        if chisel is not None:
            used.update(getattr(chisel, "fields", ()) or ())
            if getattr(chisel, "filter", None):
                used.update(compile_filter(chisel.filter, FIELDS).fields)
        if self.opts.filter_text.strip():
            used.update(compile_filter(self.opts.filter_text, FIELDS).fields)
        return used

    # --- per event ---------------------------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        if self.done:
            return
        opts = self.opts
        if opts.summary:
            self.summary[(ev.dir, ev.type)] += 1
        if opts.chisel is not None:
            opts.chisel.on_event(ev)
            if getattr(opts.chisel, "done", False):  # the chisel's end_capture(): ps, lsof...
                self.done = True
        elif self.printing:
            self.renderer.render_event(ev)
        self.printed += 1
        if opts.max_events is not None and self.printed >= opts.max_events:
            self.done = True

    def _flush(self, at_least: int = 0) -> None:
        """Write the rendered lines, when there are ``at_least`` bytes of them."""
        if self.renderer.pending <= at_least:
            return
        data = self.renderer.take()
        out = self.opts.stdout
        try:
            raw = getattr(out, "buffer", None)
            if raw is not None and (getattr(out, "encoding", "") or "").lower().replace("-", "") == "utf8":
                out.flush()
                raw.write(data)
                raw.flush()
            else:
                out.write(data.decode("utf-8", "surrogateescape"))
                out.flush()
        except BrokenPipeError:
            self.done = True
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter exit quiet

    # --- capture file ------------------------------------------------------------------------
    def _open_writer(self, meta: dict[str, Any]) -> None:
        if self.opts.write is None:
            return
        # Live, compression takes CPU from the traced programs: the fastest codec. Offline, the
        # smallest file for the CPU (blockcodec).
        codec = blockcodec.CODEC_LZ4_64K if meta["live"] else blockcodec.CODEC_ZSTD
        if wants_scap(self.opts.write, self.opts.write_format):
            self.writer = ScapWriter(self.opts.write, meta, rotate=self.opts.rotate,  # type: ignore[assignment]
                                     compress=self.opts.compress)
        else:
            self.writer = CaptureWriter(self.opts.write, meta, rotate=self.opts.rotate, codec=codec)
        self._write_tables()

    def _write_tables(self) -> None:
        """A snapshot of the state, so a rotated file (or a reader seeking by the index) starts
        from recent context rather than from the run's start."""
        if self.writer is not None:
            for kind, rows in self.state.tables().items():
                self.writer.write_table(kind, rows)

    def _write(self, data: bytes) -> None:
        if self.writer is None or not data:
            return
        n, first, last = self.pipeline.kept
        self.writer.write_events(data, n, first, last)
        if getattr(self.writer, "finished", False):
            self.done = True

    def _meta(self, live: bool) -> dict[str, Any]:
        return {
            "machine": _machine_info(),
            "snaplen": self.opts.snaplen,
            "schema_version": list(SCHEMA_VERSION),
            "start_time": time.time_ns(),
            "cmdline": self.opts.argv,
            "live": live,
        }

    # --- drive -------------------------------------------------------------------------------
    def run(self) -> int:
        chisel = self.opts.chisel
        live = not self.opts.reads
        if chisel is not None:
            chisel.on_capture_start(live)
        try:
            if live:
                stats = self._run_live()
            else:
                stats = self._run_files()
        finally:
            self._flush()
            if self.writer is not None:
                self.writer.close()
        if chisel is not None:
            chisel.on_capture_end(self._last_ts)
        if self.opts.summary:
            self._print_summary()
        if live:
            self._report(stats)
        return 0

    _last_ts = 0
    capture_drops = 0  # reading captures: the events their probes lost while they were recorded
    abort = False  # a second signal: stop processing the backlog
    _stopped_at = 0.0  # monotonic time of the first signal
    stopped_dropped = 0  # records captured but not printed: the stop came first (STOP_GRACE_S)
    discarded = 0  # records captured but never processed (after -n, or a second signal)

    def _tick(self, now_ns: int) -> None:
        chisel = self.opts.chisel
        if chisel is not None and chisel.interval_ns and self._next_tick and now_ns >= self._next_tick:
            self._flush()
            chisel.on_interval(now_ns)
            self._next_tick = now_ns + chisel.interval_ns

    _next_tick = 0

    def _run_files(self) -> dict[str, int]:
        stats: Counter[str] = Counter()
        notes: list[str] = []
        file_drops: list[int] = []  # per file: what its last stats block says the probe lost
        for item in read_captures(self.opts.reads, on_note=notes.append):
            if isinstance(item, FileStart):
                file_drops.append(0)
            if isinstance(item, EventBlock):
                kept = self.pipeline.feed(item.raw)
                self._last_ts = item.last_ts or self._last_ts
                self._write(kept)
                self._flush(FILE_WRITE_BYTES)
                if self.done:
                    break
            elif isinstance(item, TableBlock):
                self.state.load_table(item.kind, item.rows)
                if self.writer is not None:
                    self.writer.write_table(item.kind, item.rows)
            elif isinstance(item, StatsBlock):
                stats = Counter(_flat_stats(item.stats))  # cumulative: the last block wins
                if file_drops:
                    file_drops[-1] = sum(v for k, v in stats.items() if k.startswith("drops_"))
            elif self.writer is None and self.opts.write is not None:
                self._open_writer(self._meta(False))
        for note in notes:
            print(f"ktrace: {note}", file=self.opts.stderr)
        self.capture_drops = sum(file_drops)
        return dict(stats)

    def _run_live(self) -> dict[str, int]:
        from .enrich.cgroupid import kernel_filter
        from .enrich.live import LiveEnricher
        from .probe.loader import ProbeConfig
        from .source.live import LiveSource
        from .state.proc import bootstrap

        opts = self.opts
        cfg = ProbeConfig(ring_mb=opts.ring_mb, snaplen=opts.snaplen)
        evts = wanted_events(self.pushdown)
        if evts is not None:
            cfg.evts = frozenset(evts | STATE_EVENTS | {R.EVT_PROCEXIT})
        if self.pushdown.comms is not None and not self.pushdown.comms.exclude:
            cfg.comms = frozenset(self.pushdown.comms.values)
        if self.pushdown.pids is not None and not self.pushdown.pids.exclude:
            cfg.pids = frozenset(self.pushdown.pids.values)
        # Container conditions: the kernel filters by cgroup id where it can (tracer/enrich/cgroupid.py).
        cgroups, cgroup_note = kernel_filter(self.pushdown)
        if cgroups is not None:
            cfg.cgroups = cgroups.verdicts
        chisel = opts.chisel
        needs_cpu = bool(getattr(chisel, "needs_cpu", False)) or opts.write is not None
        enricher = LiveEnricher(self.state, procinfo=needs_cpu)
        self.pipeline.enricher = enricher
        source = LiveSource(cfg)  # loads the probe: events start flowing now
        self.source = source  # for a caller on another thread: stats() (drops) while it runs
        metrics = opts.metrics
        if metrics is not None:
            from .probe.loader import ring_bytes

            metrics.attach(self.state, source.stats, source.probe.ring_fd, ring_bytes(cfg), enricher.resolver)

        def stop(_sig: int, _frame: Any) -> None:
            # The first signal stops the capture and lets what was captured be processed (printing:
            # for STOP_GRACE_S at most, the rest counted as stopped); a second one gives up on that
            # backlog (counted, never silently).
            if self.stop_requested:
                self.abort = True
            else:
                self._stopped_at = time.monotonic()
                if self.printing:
                    self.renderer.stop_at = time.monotonic_ns() + int(STOP_GRACE_S * 1e9)
                if self.writer is not None and source.queued() >= BACKLOG_NOTE_BYTES:
                    print(f"ktrace: stopping; writing the {source.queued() / 1e6:.1f} MB already taken from "
                          "the kernel to the capture (Ctrl-C again to give it up)", file=opts.stderr)
            self.stop_requested = True
            source.stop()

        # Installed before anything can be waited for (the /proc bootstrap, the capture file):
        # a signal from then on ends the run cleanly.
        # (Only the main thread may; a run on another thread is stopped by setting ``done``.)
        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        bootstrap(self.state, skip_pid=os.getpid())
        enricher.start(wait=START_LOOKUP_WAIT_S)
        for rec in enricher.pending():  # names known before the first line and the first tables
            self.state.apply(Event(rec, 0, 0, self.state))
        if cgroups is not None:
            cgroups.poll(source.probe, self.state.containers, enricher.ask, force=True)
        self._open_writer(self._meta(True))
        if metrics is not None:
            metrics.writer = self.writer
        start = time.monotonic()
        deadline = start + opts.seconds if opts.seconds else None

        if not opts.quiet and chisel is None and not opts.json_out:
            print("ktrace: capturing; press Ctrl-C to stop", file=opts.stderr)
        if chisel is not None and chisel.interval_ns:
            self._next_tick = time.time_ns() + chisel.interval_ns
        last_stats = last_tables = time.monotonic()
        try:
            for batch in source.batches(tick=0.1):
                if self.abort or (self.done and self.writer is None):
                    # Nothing more will be shown (-n reached, or a second Ctrl-C): count the rest.
                    self.discarded += _records(batch or b"") + source.discard()
                    break
                if self._stopped_at and self.printing and batch \
                        and time.monotonic() - self._stopped_at > STOP_GRACE_S:
                    # Stopped while printing a backlog: what is left is counted, not shown (batch
                    # by batch, up to the consumer's end marker).
                    self.stopped_dropped += _records(batch)
                    continue
                if batch:
                    if metrics is not None:
                        metrics.on_batch(batch)
                    kept = self.pipeline.feed(batch)
                    self._write(kept)
                    self._flush()
                else:
                    extra = enricher.pending()
                    if extra:
                        kept = self.pipeline.feed(b"".join(extra))
                        self._write(kept)
                if cgroups is not None:
                    cgroups.poll(source.probe, self.state.containers, enricher.ask)
                now = time.monotonic()
                if metrics is not None:
                    metrics.tick(now)
                self._last_ts = time.time_ns()
                self._tick(self._last_ts)
                if now - last_stats >= 1.0 and self.writer is not None:
                    self.writer.write_stats(_stats_doc(source.stats()))
                    last_stats = now
                if now - last_tables >= TABLES_EVERY_S:
                    self._write_tables()
                    last_tables = now
                if (self.done or (deadline is not None and now >= deadline)) and not self.stop_requested:
                    self.stop_requested = True
                    source.stop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            stats = source.stats()
            if self.writer is not None:
                self.writer.write_stats(_stats_doc(stats))
            source.close()
            enricher.close()
            if opts.verbose:
                self._notes.append(source.probe.cache.note())
                self._notes.append(source.sched_note)
                self._notes.extend(source.probe.notes)
                self._notes.extend(enricher.unnamed())
                if cgroups is not None or self.pushdown.container_ids or self.pushdown.container_names \
                        or self.pushdown.pod_names:
                    self._notes.append(cgroups.summary() if cgroups else f"kernel cgroup filter: {cgroup_note}")
        return stats

    def _report(self, stats: dict[str, int]) -> None:
        if self.discarded and self.abort:
            stats["drops_unprocessed"] = self.discarded
        stopped = self.stopped_dropped + self.renderer.skipped
        if stopped:
            stats["drops_stopped"] = stopped
        drops = {k: v for k, v in stats.items() if k.startswith("drops") and v}
        total = sum(drops.values())
        detail = ", ".join(f"{k.removeprefix('drops_')} {v}" for k, v in drops.items()) or "none"
        if any(drops.get(k) for k in ("drops_buffer", "drops_user")):
            print("ktrace: events came faster than they could be "
                  + ("printed" if self.printing else "handled")
                  + "; narrow the filter to what you need (e.g. container.id=ID, proc.name=NAME, "
                    "evt.type=TYPE), or write them with -w FILE and read that with -r",
                  file=self.opts.stderr)
        print(f"ktrace: {stats.get('events', 0)} events captured, {total} dropped ({detail})",
              file=self.opts.stderr)
        for note in self._notes:
            print(f"ktrace: {note}", file=self.opts.stderr)

    def _print_summary(self) -> None:
        out = self.opts.stdout
        print("\n----------------------", file=out)
        print(f"{'Event':<24}#Calls", file=out)
        print("----------------------", file=out)
        for (d, t), n in sorted(self.summary.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{d} {t:<22}{n}", file=out)


def _records(batch: bytes) -> int:
    """How many records a batch holds (the scanner counts in C)."""
    from .engine import scan

    return scan.Scanner(b"", b"").scan(batch)[1] if batch else 0


def _stats_doc(stats: dict[str, int]) -> dict[str, Any]:
    """The capture's STATS document: cumulative counters, drops by cause."""
    drops = {k.removeprefix("drops_"): v for k, v in stats.items() if k.startswith("drops_")}
    rest = {k: v for k, v in stats.items() if not k.startswith("drops_")}
    return {**rest, "drops": drops}


def _flat_stats(doc: dict[str, Any]) -> dict[str, int]:
    out = {k: v for k, v in doc.items() if isinstance(v, int)}
    drops = doc.get("drops")
    if isinstance(drops, dict):
        out.update({f"drops_{k}": v for k, v in drops.items() if isinstance(v, int)})
    return out


def run(opts: RunOptions) -> int:
    if opts.write and opts.reads and os.path.abspath(opts.write) in map(os.path.abspath, opts.reads):
        raise UsageError("-w and -r name the same file")
    try:
        return Runner(opts).run()
    except KtraceError:
        raise
