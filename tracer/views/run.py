"""Running views over the session's pipeline: on captures (one table, or one per slice of event
time), live (a probe that keeps running while the view, filter and taps change), and the event
lines or I/O of a selection (dig and echo) on captures.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..chisel import Chisel, ChiselContext, format_bytes
from ..errors import KtraceError
from ..event import Event, RenderOptions
from ..filter.compiler import CompiledFilter, compile_filter
from ..output.format import Formatter
from ..schema import record as R
from ..schema.fields import FIELDS
from ..session import Runner, RunOptions
from .engine import ViewAggregator, ViewChisel, ViewTable, combine_filters, internal_events
from .spec import ViewSpec

if TYPE_CHECKING:
    from ..engine import viewtally
    from ..pipeline import RecordRuns
    from ..state.state import State

ECHO_FILTER: Final = "evt.is_io=true and evt.dir=< and evt.rawres>0"
# How echo shows a buffer: printable characters only, non-printables as dots, or hex and ASCII.
ECHO_MODES: Final = {"printable": "ascii", "dotted": "normal", "hex": "hex_ascii"}
EVENTS_LIMIT: Final = 20_000


def runner_for(opts: RunOptions, internal: frozenset[int] = frozenset()) -> Runner:
    runner = Runner(opts)
    if internal:
        # The CPU samples reach a view whatever its filter says of them (the session only admits
        # the internal events a chisel's filter names).
        runner.pipeline.admit_internal = runner.pipeline.admit_internal | internal
    return runner


def _notes(err: io.StringIO) -> list[str]:
    return [line.removeprefix("ktrace: ") for line in err.getvalue().splitlines() if line.strip()]


def capture_tables(view: ViewSpec, reads: list[str], *, filter_text: str = "", container_mode: bool = False,
                   slice_ns: int = 0, max_events: int | None = None, max_rows: int | None = None,
                   on_table: Callable[[ViewTable], None] | None = None, fast: bool = True) -> list[ViewTable]:
    """The view over captures: one table for the whole run, or one per ``slice_ns`` of event time
    (the last one partial). ``filter_text`` joins the view's filter; a bad one raises FilterError,
    a damaged capture CaptureError. Notes on the capture (truncated...) ride on the last table.
    ``fast=False`` makes an Event of every record (the slow path the fast one is checked against)."""
    tables: list[ViewTable] = []

    def take(t: ViewTable) -> None:
        tables.append(t)
        if on_table is not None:
            on_table(t)

    chisel = ViewChisel(view, container_mode=container_mode, on_table=take, slice_ns=slice_ns, max_rows=max_rows,
                        fast=fast)
    err = io.StringIO()
    opts = RunOptions(reads=list(reads), filter_text=filter_text, chisel=chisel, container_mode=container_mode,
                      max_events=max_events, stderr=err, stdout=io.StringIO())
    runner = runner_for(opts, internal_events([chisel.agg]))
    runner.run()
    if tables:
        tables[-1].notes = _notes(err)
        tables[-1].drops = runner.capture_drops
    return tables


def capture_table(view: ViewSpec, reads: list[str], **kw: Any) -> ViewTable:
    """The view over whole captures (``capture_tables`` without slices)."""
    return capture_tables(view, reads, **kw)[-1]


# --- dig and echo ----------------------------------------------------------------------------------
class EventLines:
    """Turns events into dig lines (sysdig's default line) or echo blocks (a header per read or
    write, then the buffer as printable, dotted or hex)."""

    def __init__(self, kind: str, mode: str = "dotted", container_mode: bool = False) -> None:
        if kind not in ("dig", "echo"):
            raise ValueError(kind)
        self.kind = kind
        self.render = RenderOptions(mode=ECHO_MODES.get(mode, "normal"), verbose=True)
        self.container_mode = container_mode
        self.formatter = Formatter(None)

    def lines(self, ev: Event) -> list[str]:
        if self.kind == "dig":
            return [self.formatter.line(ev)]
        res = ev.io_bytes()
        if res <= 0:
            return []
        info = ev.info
        fd = ev.fd
        name = fd.name if fd is not None and fd.name else "<NA>"
        proc = ev.thread.comm if ev.thread is not None else "<NA>"
        where = ""
        if self.container_mode:
            t = ev.thread
            where = f" [{t.container_id if t else '<NA>'}]"
        if info is not None and "io_read" in info.flags:
            head = f"------ Read {format_bytes(res)} from{where} {name} ({proc})"
        else:
            head = f"------ Write {format_bytes(res)} to{where} {name} ({proc})"
        data = ev.param("data")
        if data is None:
            return [head]
        return [head, *ev.arg_str(data, self.render).splitlines()]


class _Collector(Chisel):
    """Collects the lines of the events it sees, up to a limit (then stops the run)."""

    name: ClassVar[str] = "view-events"
    category: ClassVar[str] = "Views"
    short_description: ClassVar[str] = "Collect event lines"
    hidden: ClassVar[bool] = True

    def __init__(self, lines: EventLines, limit: int) -> None:
        self.maker = lines
        self.limit = limit
        self.out_lines: list[str] = []
        self.truncated = False
        super().__init__(ChiselContext())

    def on_init(self) -> None:
        self.filter = ECHO_FILTER if self.maker.kind == "echo" else None
        if self.maker.kind == "dig":
            self.fields.add("evt.latency")

    def on_event(self, ev: Event) -> None:
        self.out_lines.extend(self.maker.lines(ev))
        if len(self.out_lines) >= self.limit:
            self.truncated = True
            self.done = True


def capture_events(reads: list[str], filter_text: str, *, kind: str = "dig", mode: str = "dotted",
                   container_mode: bool = False, limit: int = EVENTS_LIMIT) -> tuple[list[str], bool]:
    """Dig (event lines) or echo (I/O) of a selection of captures: the lines, and whether the
    limit cut them."""
    col = _Collector(EventLines(kind, mode, container_mode), limit)
    opts = RunOptions(reads=list(reads), filter_text=filter_text, chisel=col, stderr=io.StringIO(),
                      stdout=io.StringIO(), snaplen=65000)
    runner_for(opts).run()
    return col.out_lines[:limit], col.truncated


# --- live ------------------------------------------------------------------------------------------
@dataclass
class Tap:
    """Lines of the live events that match ``filter`` (dig or echo), the newest ``limit`` kept."""

    match: CompiledFilter
    lines: EventLines
    limit: int = EVENTS_LIMIT
    buffer: deque[str] = field(default_factory=deque)

    def add(self, ev: Event) -> None:
        if self.match.match(ev):
            self.buffer.extend(self.lines.lines(ev))
            while len(self.buffer) > self.limit:
                self.buffer.popleft()


class _LiveHost(Chisel):
    """The one chisel of a live run: sees every event (the command line's filter is pushed down)
    and hands it to the current aggregator and tap; a table every interval."""

    name: ClassVar[str] = "view-live"
    category: ClassVar[str] = "Views"
    short_description: ClassVar[str] = "Live views"
    hidden: ClassVar[bool] = True
    pairs_latency: ClassVar[bool] = True

    def __init__(self, interval_ns: int, on_table: Callable[[ViewTable], None], fast: bool = True) -> None:
        self.tick_ns = interval_ns
        self.on_table = on_table
        self.lock = threading.Lock()
        self.agg: ViewAggregator | None = None
        self.tap: Tap | None = None
        self.last_tick = 0
        self.fast = fast
        # The current aggregator's record counter (None: every event as an Event, to add()).
        self.counter: viewtally.ViewCounter | None = None
        super().__init__(ChiselContext(live=True))

    def record_counter(self, state: State) -> Callable[[bytes, int], bool] | None:
        """Records the run matched exactly go to the current view's counter while it has one and
        no tap wants every event (then they come as Events). The run pairs latencies, so every
        counter keeps the enter times."""
        if not self.fast:
            return None
        self.state = state
        self.rearm()

        def count(buf: bytes, off: int) -> bool:
            counter = self.counter
            return False if counter is None else counter.count(buf, off)

        return count

    def record_runs(self) -> RecordRuns | None:
        """The pipeline's ``on_records``: runs of exact matches to the current counter."""
        if not self.fast:
            return None

        def runs(batch: bytes, sel: Any, i: int, apply: Callable[[bytes, int], None] | None) -> tuple[int, int]:
            counter = self.counter
            return (i, 0) if counter is None else counter.count_run(batch, sel, i, apply)

        return runs

    def rearm(self) -> None:
        """Pick the counter for the current aggregator and tap (call with the lock held, or
        before the run)."""
        agg, state = self.agg, self.state
        self.counter = None if agg is None or state is None or self.tap is not None \
            else agg.record_counter(state, latency=True)

    def on_init(self) -> None:
        self.filter = None
        self.interval_ns = self.tick_ns
        self.needs_cpu = True
        self.fields.add("evt.latency")  # latency columns and the spectrogram pair enters with exits

    def on_event(self, ev: Event) -> None:
        with self.lock:
            if self.agg is not None:
                self.agg.add(ev)
            if self.tap is not None:
                self.tap.add(ev)

    def on_interval(self, ts_ns: int) -> None:
        with self.lock:
            agg = self.agg
            if agg is None:
                return
            table = agg.take(ts_ns, self.last_tick or None)
        self.last_tick = ts_ns
        self.on_table(table)


class LiveViews:
    """A live run on a background thread whose view, filter and tap can change while it runs.

    ``on_table`` gets a ViewTable every ``interval_ms`` (on the run's thread); ``on_error`` gets
    the KtraceError that ended the run (no root, no BPF...). ``base_filter`` is pushed down to the
    kernel for the whole run; ``set_view``'s filter is applied in user space.
    """

    def __init__(self, *, on_table: Callable[[ViewTable], None], on_error: Callable[[KtraceError], None],
                 base_filter: str = "", interval_ms: int = 2000, snaplen: int = 80, container_mode: bool = False,
                 max_events: int | None = None, fast: bool = True) -> None:
        self.container_mode = container_mode
        self.on_error = on_error
        self.host = _LiveHost(interval_ms * 1_000_000, on_table, fast)
        self.opts = RunOptions(filter_text=base_filter, chisel=self.host, snaplen=snaplen,
                               container_mode=container_mode, max_events=max_events, stderr=io.StringIO(),
                               stdout=io.StringIO())
        self.runner: Runner | None = None
        self.thread: threading.Thread | None = None
        self.ended = threading.Event()

    def set_view(self, view: ViewSpec, filter_text: str = "") -> None:
        """Show ``view`` with ``filter_text`` (besides the view's own) from now on. Raises
        FilterError on a bad filter, leaving the current view running."""
        text = combine_filters(view.filter, filter_text)
        match = compile_filter(text, FIELDS) if text else None
        agg = ViewAggregator(view, container_mode=self.container_mode, match=match, max_rows=10_000)
        with self.host.lock:
            self.host.agg = agg
            self.host.last_tick = time.time_ns()
            self.host.rearm()

    def set_tap(self, filter_text: str | None, kind: str = "dig", mode: str = "dotted") -> Tap | None:
        """Start collecting the lines of the events ``filter_text`` admits (None: stop)."""
        tap = None
        if filter_text is not None:
            text = combine_filters(filter_text, ECHO_FILTER if kind == "echo" else "")
            tap = Tap(compile_filter(text or "evt.num>0", FIELDS), EventLines(kind, mode, self.container_mode))
        with self.host.lock:
            self.host.tap = tap
            self.host.rearm()
        return tap

    def start(self) -> None:
        self.runner = runner_for(self.opts, frozenset({R.EVT_PROCINFO}))  # views switch: CPU samples always
        self.thread = threading.Thread(target=self._run, name="ktrace-top-live", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.runner is not None
        try:
            self.runner.run()
        except KtraceError as e:
            self.on_error(e)
        except Exception as e:  # a bug: still reported, never a silent dead screen
            self.on_error(KtraceError(f"internal error: {type(e).__name__}: {e}"))
        finally:
            self.ended.set()

    def stats(self) -> dict[str, int]:
        """The probe's counters so far: events, drops by cause (empty before the probe is up)."""
        source = getattr(self.runner, "source", None)
        if source is None:
            return {}
        try:
            return dict(source.stats())
        except Exception:  # the probe is closing
            return {}

    def drops(self) -> int:
        return sum(v for k, v in self.stats().items() if k.startswith("drops"))

    def stop(self, timeout: float = 5.0) -> None:
        if self.runner is not None:
            self.runner.done = True
        if self.thread is not None:
            self.thread.join(timeout)
