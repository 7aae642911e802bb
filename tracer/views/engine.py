"""The views engine: aggregate the events of one view over an interval into a ViewTable.

``ViewAggregator`` does the counting for one view and one filter; ``ViewChisel`` runs it inside
a session like any chisel (captures: one table for the whole run, or one per ``slice_ns`` of
event time); the live driver in ``tracer.views.run`` swaps aggregators under one running probe.
The CPU column reuses the CPU table chisel's accounting (CpuTableChisel), so a view's CPU
figures are ``topprocs_cpu``'s.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..chisel import (
    ONE_SECOND,
    Chisel,
    ChiselContext,
    CpuTableChisel,
    TableSpec,
    format_bytes,
    format_time_interval,
    lua_str,
)
from ..event import Event
from ..filter.compiler import CompiledFilter, compile_filter
from ..output.format import resolve_field
from ..schema import record as R
from ..schema.fields import FIELDS, FieldDef
from .spec import Column, ViewSpec

if TYPE_CHECKING:
    from ..engine import viewtally
    from ..pipeline import RecordRuns
    from ..state.state import State

from ..na import NA

LIST_ROWS_LIVE: Final = 10_000  # a live list view keeps this many rows (the newest)
# Spectrogram buckets: 4 per decade of latency, from 1 ns to 10^10 ns (10 s) and above.
SPECTRO_PER_DECADE: Final = 4
SPECTRO_BUCKETS: Final = 10 * SPECTRO_PER_DECADE + 1


def spectro_bucket(latency_ns: int) -> int:
    """The spectrogram bucket of a latency: floor(log10(ns) x 4), clipped to the last bucket."""
    if latency_ns <= 1:
        return 0
    return min(int(math.log10(latency_ns) * SPECTRO_PER_DECADE), SPECTRO_BUCKETS - 1)


def spectro_label(bucket: int) -> str:
    """The lower bound of a bucket as a duration (``1ns``, ``1.77us``...)."""
    return format_time_interval(10 ** (bucket / SPECTRO_PER_DECADE))


def format_cell(value: Any, units: str) -> str:
    """A column value as the terminal shows it (sysdig's byte and time units)."""
    if value is None:
        return NA
    if units in ("bytes", "bytes/s"):
        return format_bytes(value)
    if units == "time":
        return format_time_interval(value)
    if units in ("pct", "rate"):
        return f"{value:.2f}"
    if units == "count" and isinstance(value, (int, float)):
        return str(int(value))
    # One line per row: command lines may hold newlines (bash -c scripts) and trailing blanks.
    return " ".join(lua_str(value).split()) if isinstance(value, (str, bytes)) else lua_str(value)


@dataclass
class Row:
    """One row: its ``key`` (the value drill-down filters on), the values of the visible columns
    (numbers for numeric aggregations, else what the field gave) and ``totals``: for ``sum`` and
    ``time_avg`` columns the interval's sum (bytes, calls), else the value again."""

    key: Any
    values: list[Any]
    totals: list[Any]


@dataclass
class ViewTable:
    """A view's data for one interval (or a whole capture): columns, rows, time covered.

    ``spectrum`` holds a spectrogram's counts per latency bucket (spectrogram views only).
    """

    view: ViewSpec
    container_mode: bool
    columns: tuple[Column, ...]
    rows: list[Row]
    start_ns: int
    end_ns: int
    spectrum: list[int] = field(default_factory=list)
    drops: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def span_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 0)

    @property
    def key_field(self) -> str:
        return self.view.key_field(self.container_mode)

    def cell(self, row: Row, i: int) -> str:
        return format_cell(row.values[i], self.columns[i].units)

    def sorted_rows(self, col: int | None = None, ascending: bool | None = None) -> list[Row]:
        """Rows by column ``col`` (default: the view's sort column), numbers before <NA>; ties by
        key so the order is stable. No sort column: arrival order."""
        if col is None:
            col = self.view.sort_index(self.container_mode)
            if ascending is None:
                ascending = self.view.sort_ascending
        if col is None or not 0 <= col < len(self.columns):
            return list(self.rows)
        asc = bool(ascending)
        present = [r for r in self.rows if r.values[col] is not None]
        absent = sorted((r for r in self.rows if r.values[col] is None), key=lambda r: str(r.key))

        def k(r: Row) -> tuple[int, Any, str]:
            v = r.values[col]
            return (0, v, "") if isinstance(v, (int, float)) else (1, lua_str(v), "")

        # Ties keep the key order whichever way the column sorts.
        present.sort(key=lambda r: str(r.key))
        present.sort(key=k, reverse=not asc)
        return present + absent

    def legend(self) -> list[dict[str, Any]]:
        return [{"name": c.header, "field": c.field, "aggregation": c.agg, "units": c.units, "desc": c.desc}
                for c in self.columns]

    def json_slice(self, *, filter_text: str = "", col: int | None = None, ascending: bool | None = None,
                   first: int = 0, last: int | None = None) -> dict[str, Any]:
        """csysdig's last -j slice: ``progress``, ``count``, the rows (``k`` key, ``d`` values,
        ``t`` totals) and ``info`` (legend, sort column, drill-down key and filter template)."""
        rows = self.sorted_rows(col, ascending)
        sort_col = col if col is not None else self.view.sort_index(self.container_mode)
        target = self.view.drilldown
        info = {
            "id": self.view.id, "name": self.view.name, "kind": self.view.kind,
            "sortingCol": sort_col, "appliesTo": list(self.view.applies_to),
            "canDrillDown": self.view.kind == "table", "drillDownKeyField": self.key_field,
            "drillDownTarget": target, "legend": self.legend(),
            "filterTemplate": combine_filters(filter_text, f"{self.key_field}=%key"),
            "startTs": self.start_ns, "endTs": self.end_ns, "drops": self.drops,
        }
        out: dict[str, Any] = {
            "progress": 100, "count": len(rows),
            "data": [{"k": r.key, "d": r.values, "t": r.totals} for r in rows[first:last]], "info": info,
        }
        if self.view.kind == "spectrogram":
            out["spectrum"] = self.spectrum
        if self.notes:
            out["notes"] = self.notes
        return out

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.json_slice(**kw), separators=(",", ":"), default=lua_str)


def combine_filters(a: str | None, b: str | None) -> str:
    """csysdig's combine_filters: ``(a) and (b)``, or whichever is not empty."""
    a, b = (a or "").strip(), (b or "").strip()
    if not a:
        return b
    if not b:
        return a
    return f"({a}) and ({b})"


def filter_value(value: Any) -> str:
    """A key value as a filter operand: numbers as they are, text quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return lua_str(value)
    text = lua_str(value)
    if '"' not in text:
        return f'"{text}"'
    return "'" + text.replace("'", "") + "'"


def drill_filter(field_name: str, value: Any) -> str:
    """The filter a drill-down on a row adds: ``KEY=VALUE``."""
    return f"{field_name}={filter_value(value)}"


class _CpuShares(CpuTableChisel):
    """The CPU table chisel's accounting, keyed by a view's key field (fed by ViewAggregator)."""

    name = "view-cpu"
    hidden = True

    def __init__(self, key_field: str, ctx: ChiselContext) -> None:
        self._spec = TableSpec((key_field,), (key_field,), "thread.cpu", "CPU%", None, 0, "timepct")
        super().__init__(ctx)

    def table_spec(self) -> TableSpec:
        return self._spec

    def take(self) -> tuple[dict[tuple[str, ...], Any], int]:
        """CPU ns per key and the ns the samples span since the last take; starts afresh."""
        table, span = self.table, self.span
        self.table, self.span, self.rounds = {}, 0, 0
        return table, span


Extractor = Callable[[Event], Any]
_NUMERIC: Final = frozenset({"sum", "avg", "time_avg", "max"})


class ViewAggregator:
    """Counts the events of one view (those ``match`` admits, when given) per key; ``take``
    returns the table of what was counted since the last take and starts the next interval.

    List views keep their rows across takes (up to ``max_rows``), as csysdig's lists do.
    """

    def __init__(self, view: ViewSpec, *, container_mode: bool = False, match: CompiledFilter | None = None,
                 max_rows: int | None = None) -> None:
        self.view = view
        self.container_mode = container_mode
        self.match = match.match if match is not None else None
        self.columns = view.visible_columns(container_mode)
        self.fields: set[str] = set()
        self.key_field = key_field = view.key_field(container_mode)
        self.key_fn = self._extractor(key_field)
        self.col_fns = [self._extractor(c.field) for c in self.columns]
        self.col_where = [compile_filter(c.where, FIELDS).match if c.where else None for c in self.columns]
        self.aggs = [c.agg for c in self.columns]
        # Fields the aggregator's own checks read (its filter, the columns' ``where``).
        self.filter_fields: set[str] = set(match.fields) if match is not None else set()
        for c in self.columns:
            if c.where:
                self.filter_fields.update(compile_filter(c.where, FIELDS).fields)
        self.kind = view.kind
        if self.kind == "spectrogram":
            self.fields.add("evt.latency")
        for text in (view.filter, *(c.where for c in self.columns)):
            if text:
                self.fields.update(compile_filter(text, FIELDS).fields)
        self.cpu = _CpuShares(key_field, ChiselContext()) if "cpu" in self.aggs else None
        # A row: one accumulator per column, then the fast path's plan that wrote it last (fast.py).
        self.rows: dict[Any, list[Any]] = {}
        self.plans_epoch: dict[Any, Any] = {}  # the fast path's plans, valid until the next take
        self.list_rows: deque[Row] = deque(maxlen=max_rows)
        self.spectrum = [0] * SPECTRO_BUCKETS
        self.start_ns = 0
        self.events = 0  # events counted since the last take

    @property
    def needs_cpu(self) -> bool:
        return self.cpu is not None

    @property
    def needs_latency(self) -> bool:
        return "evt.latency" in self.fields

    def new_row(self) -> list[Any]:
        return [*(_new(a) for a in self.aggs), None]

    def record_counter(self, state: State, *, latency: bool,
                       on_slice: Callable[[int], int] | None = None) -> viewtally.ViewCounter | None:
        """The fast path: a counter whose ``count(buf, off)`` adds a syscall's record as ``add``
        would add its Event (False: refused, make it an Event) and ``count_run`` a run of them, or
        None when the view's fields do not allow it (see ``tracer.views.fast``)."""
        from .fast import fast_path_possible, record_counter

        if not fast_path_possible(self):
            return None
        return record_counter(self, state, latency=latency, on_slice=on_slice)

    def _extractor(self, name: str) -> Extractor:
        found = resolve_field(name)
        if found is None:
            from .spec import ViewError

            raise ViewError(f"view {self.view.id}: unknown field '{name}'")
        fdef, arg = found
        self.fields.add(fdef.name)
        return _bind(fdef, arg)

    def add(self, ev: Event) -> None:
        """One event (that passed the view's filter, and the user's)."""
        if self.match is not None and not self.match(ev):
            return
        if not self.start_ns:
            self.start_ns = ev.ts
        self.events += 1
        if self.kind == "list":
            vals = [fn(ev) for fn in self.col_fns]
            self.list_rows.append(Row(ev.num, vals, vals))
            return
        if self.kind == "spectrogram":
            if ev.direction and ev.is_syscall:
                self.spectrum[spectro_bucket(ev.latency)] += 1
            return
        procinfo = ev.evt == R.EVT_PROCINFO
        if procinfo and self.cpu is not None:
            self.cpu.on_event(ev)
        key = self.key_fn(ev)
        if key is None:
            return
        acc = self.rows.get(key)
        if acc is None:
            acc = self.rows[key] = self.new_row()
        acc[-1] = None  # "last" columns may change: the fast path rewrites its own next time
        for i, fn in enumerate(self.col_fns):
            agg = self.aggs[i]
            if agg == "cpu":
                continue
            if procinfo and agg in ("sum", "avg", "time_avg"):
                continue  # a CPU sample is no system call: it only names the row and its memory
            where = self.col_where[i]
            if where is not None and not where(ev):
                continue
            v = fn(ev)
            if v is None:
                continue
            if agg == "last":
                acc[i] = v
            elif agg == "distinct":
                acc[i].add(v)
            elif isinstance(v, (str, bytes)):
                continue
            elif agg in ("sum", "time_avg"):
                acc[i] += v
            elif agg == "max":
                if acc[i] is None or v > acc[i]:
                    acc[i] = v
            else:  # avg
                acc[i][0] += v
                acc[i][1] += 1

    def take(self, end_ns: int, start_ns: int | None = None) -> ViewTable:
        """The table since the last take (``start_ns``: when that was; default the first event)."""
        start = start_ns if start_ns is not None else (self.start_ns or end_ns)
        span_s = (end_ns - start) / ONE_SECOND if end_ns > start else 0.0
        rows: list[Row] = []
        if self.kind == "list":
            rows = list(self.list_rows)
        elif self.kind == "spectrogram":
            rows = [Row(spectro_label(b), [n], [n]) for b, n in enumerate(self.spectrum) if n]
        else:
            cpu: dict[tuple[str, ...], Any] = {}
            cpu_span = 0
            if self.cpu is not None:
                cpu, cpu_span = self.cpu.take()
            for key, acc in self.rows.items():
                vals: list[Any] = []
                tots: list[Any] = []
                for i, agg in enumerate(self.aggs):
                    a = acc[i]
                    if agg == "cpu":
                        ns = cpu.get((lua_str(key),), 0)
                        v = ns / cpu_span * 100 if cpu_span > 0 else 0.0
                        vals.append(v)
                        tots.append(ns)
                    elif agg == "time_avg":
                        vals.append(a / span_s if span_s > 0 else 0.0)
                        tots.append(a)
                    elif agg == "avg":
                        v = a[0] / a[1] if a[1] else None
                        vals.append(v)
                        tots.append(v)
                    elif agg == "distinct":
                        vals.append(len(a))
                        tots.append(len(a))
                    else:
                        vals.append(a)
                        tots.append(a)
                rows.append(Row(key, vals, tots))
        table = ViewTable(self.view, self.container_mode, self.columns, rows, start, end_ns,
                          spectrum=list(self.spectrum) if self.kind == "spectrogram" else [])
        self.rows = {}
        self.plans_epoch = {}
        self.spectrum = [0] * SPECTRO_BUCKETS
        self.start_ns = end_ns
        self.events = 0
        return table


def _new(agg: str) -> Any:
    if agg in ("sum", "time_avg"):
        return 0
    if agg == "avg":
        return [0, 0]
    if agg == "distinct":
        return set()
    return None


def _bind(fdef: FieldDef, arg: Any) -> Extractor:
    fn = fdef.fn
    return lambda ev: fn(ev, arg)


class ViewChisel(Chisel):
    """A view run as a chisel (``ktrace top -r``, the inspection page): its filter is the
    view's, pushed down with the user's; tables go to ``on_table``: one per ``slice_ns`` of event
    time when set, one per ``interval_ns`` live, and one at the end (the rest, or the whole run)."""

    name: ClassVar[str] = "view"
    category: ClassVar[str] = "Views"
    short_description: ClassVar[str] = "Run a view of ktrace top"
    hidden: ClassVar[bool] = True

    pairs_latency: ClassVar[bool] = True  # its record counter keeps the enter times (evt.latency)
    counter: viewtally.ViewCounter | None = None  # the fast path's, once the session asked for it

    def __init__(self, view: ViewSpec, *, container_mode: bool = False, on_table: Callable[[ViewTable], None],
                 slice_ns: int = 0, interval_ns: int = 0, max_rows: int | None = None, fast: bool = True) -> None:
        self.fast = fast
        self.view = view
        self.container_mode = container_mode
        self.on_table = on_table
        self.slice_ns = slice_ns
        self.live_interval_ns = interval_ns
        self.max_rows = max_rows
        super().__init__(ChiselContext(container_mode=container_mode))

    def on_init(self) -> None:
        self.agg = ViewAggregator(self.view, container_mode=self.container_mode, max_rows=self.max_rows)
        self.filter = self.view.filter
        self.fields |= self.agg.fields
        self.needs_cpu = self.agg.needs_cpu
        self.interval_ns = self.live_interval_ns
        self.next_slice = 0
        self.slice_start = 0
        self.last_tick = 0

    def on_event(self, ev: Event) -> None:
        if self.slice_ns:
            self._to_slice(ev.ts)
        self.agg.add(ev)

    def _to_slice(self, ts: int) -> None:
        if not self.next_slice:
            self.slice_start = (self.state.start_ts if self.state is not None else 0) or ts
            self.next_slice = self.slice_start + self.slice_ns
        while ts >= self.next_slice:
            self.on_table(self.agg.take(self.next_slice, self.slice_start))
            self.slice_start = self.next_slice
            self.next_slice += self.slice_ns

    def record_counter(self, state: State) -> Callable[[bytes, int], bool] | None:
        """The session hands exactly matched records here (see ``ViewAggregator.record_counter``),
        and runs of them to ``record_runs``; the run pairs latencies only when the view reads them,
        and then so does the counter."""
        self.counter = None
        if self.fast:
            self.counter = self.agg.record_counter(state, latency=self.agg.needs_latency,
                                                   on_slice=self._next_slice if self.slice_ns else None)
        return self.counter.count if self.counter is not None else None

    def record_runs(self) -> RecordRuns | None:
        """The pipeline's ``on_records``: the counter's ``count_run``."""
        return self.counter.count_run if self.counter is not None else None

    def _next_slice(self, ts: int) -> int:
        self._to_slice(ts)
        return self.next_slice

    def on_interval(self, ts_ns: int) -> None:
        self.on_table(self.agg.take(ts_ns, self.last_tick or None))
        self.last_tick = ts_ns

    def on_capture_end(self, ts_ns: int) -> None:
        start = self.slice_start or self.last_tick or (self.state.start_ts if self.state is not None else 0) or None
        self.on_table(self.agg.take(max(ts_ns, start or 0), start))




def internal_events(aggs: Iterable[ViewAggregator]) -> frozenset[int]:
    """Internal events the aggregators must see (the CPU samples, for CPU columns)."""
    return frozenset({R.EVT_PROCINFO}) if any(a.needs_cpu for a in aggs) else frozenset()
