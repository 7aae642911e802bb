"""Counting a table view from records, without an Event per record (the views' fast path).

What a view's filter, key and columns give for an event depends, for the fields listed in
``CACHEABLE``, only on the event id, the class of its return value (each failure code, zero, or
positive), its thread and fd, and the state; the bytes a read or write moved are its return value,
and a latency is the time since its enter. So one Event is decoded per (event id, return class,
thread, fd) and its outcome kept as a *plan*: the row's accumulator and what each column adds.
Plans are valid while the state's version (bumped by every change) stays the same and the thread
and fd are the same objects, and for one interval (their accumulators are that interval's rows).
Plans are made here; the counting is the engine's (``viewtally``: in C, a run's records folded
by key and each key's sums added by its plan once).

Records a plan cannot describe (internal events, hidden ones, an fd the record view and the Event
disagree on) are refused: the counter returns False and the pipeline makes an Event of them for
``ViewAggregator.add``, the slow path, which gives the same numbers event by event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..engine import viewtally
from ..event import Event
from ..schema.events import FD_REGS
from ..schema.fields import FIELDS

if TYPE_CHECKING:
    from ..state.state import State
    from .engine import ViewAggregator

# Fields whose value is a function of (event id, return class, thread, fd, state): besides those
# marked ``raw`` and those that are a property of the event type.
_EVENT_FIELDS: Final = frozenset({
    "evt.type", "evt.dir", "syscall.type", "evt.category", "evt.is_io", "evt.is_io_read", "evt.is_io_write",
    "evt.is_wait", "evt.failed", "evt.res", "evt.count", "evt.count.exit", "evt.count.error",
    "evt.count.error.file", "evt.count.error.net", "evt.count.error.memory", "evt.count.error.other",
})
_THREAD_FIELDS: Final = frozenset({
    "proc.pid", "proc.ppid", "proc.vpid", "proc.name", "proc.exeline", "proc.nthreads", "thread.tid",
    "thread.vtid", "thread.vmsize.b", "thread.vmrss.b", "user.name", "container.id", "container.name",
    "container.type", "container.image", "k8s.pod.id", "k8s.pod.name", "k8s.ns.name", "k8s.pod.labels",
})
_FD_FIELDS: Final = frozenset({
    "fd.name", "fd.type", "fd.containername", "fd.directory", "fd.containerdirectory", "fd.sport", "fd.l4proto",
    "fd.lip", "fd.lport", "fd.rip", "fd.rport",
})
# The bytes a read or write moved: the record's return value (when the field gives one).
BYTES_FIELDS: Final = frozenset(f"evt.buflen{s}" for s in (
    "", ".in", ".out", ".file", ".file.in", ".file.out", ".net", ".net.in", ".net.out"))
LATENCY: Final = "evt.latency"
CACHEABLE: Final = (_EVENT_FIELDS | _THREAD_FIELDS | _FD_FIELDS
                    | frozenset(f.name for f in FIELDS.rows if f.raw or f.by_event is not None))

def fast_path_possible(agg: ViewAggregator) -> bool:
    """Whether every field the aggregator reads can be planned (see the module docstring)."""
    if agg.kind != "table" or agg.key_field in BYTES_FIELDS or agg.key_field == LATENCY:
        return False
    for c in agg.columns:
        if c.agg == "cpu":
            continue  # CPU samples are internal events: always the slow path
        if c.field == LATENCY and c.agg not in ("sum", "time_avg", "avg", "max", "cpu"):
            return False
        if c.field not in CACHEABLE | BYTES_FIELDS | {LATENCY}:
            return False
    return set(agg.filter_fields) <= CACHEABLE and agg.key_field in CACHEABLE


_LAT: Final = {"sum": viewtally.LAT_SUM, "time_avg": viewtally.LAT_SUM, "max": viewtally.LAT_MAX,
               "avg": viewtally.LAT_AVG}


def record_counter(agg: ViewAggregator, state: State, *, latency: bool,
                   on_slice: Callable[[int], int] | None = None) -> viewtally.ViewCounter:
    """The engine's counter (``viewtally.ViewCounter``) for the records of a syscall the pipeline
    matched exactly: ``count(buf, off)`` one by one, ``count_run`` a run of the selection in C; a
    refused record goes to ``agg.add`` as an Event. ``latency``: the run pairs exits with enters
    (evt.latency), so the counter keeps the state's enter times as the pipeline would.
    ``on_slice``: see ViewCounter. The plans are made here, from one Event each."""

    def make_plan(buf: bytes, off: int, fd: Any, thread: Any, ret: int) -> viewtally.ViewPlan:
        ev = Event(buf, off, 0, state)
        if ev.thread is not thread or ev.fd is not fd:
            return viewtally.REFUSE  # hand the record to the slow path
        plan = viewtally.ViewPlan(fd, thread)
        if agg.match is not None and not agg.match(ev):
            return plan
        plan.passed = True
        key = agg.key_fn(ev)
        if key is None:
            return plan
        acc = agg.rows.get(key)
        if acc is None:
            acc = agg.rows[key] = agg.new_row()
        plan.acc = acc
        adds: list[tuple[int, Any]] = []
        ret_adds: list[int] = []
        lat: list[tuple[int, int]] = []
        avgs: list[tuple[int, Any]] = []
        lasts: list[tuple[int, Any]] = []
        for i, fn in enumerate(agg.col_fns):
            a = agg.aggs[i]
            if a == "cpu":
                continue
            where = agg.col_where[i]
            if where is not None and not where(ev):
                continue
            name = agg.columns[i].field
            if name == LATENCY:
                if ev.direction and ev.is_syscall and a in ("sum", "time_avg", "avg", "max"):
                    lat.append((i, _LAT[a]))
                elif a in ("sum", "time_avg", "max"):
                    _fold(acc, i, a, 0)  # an enter: latency 0, as the field gives
                else:
                    avgs.append((i, 0))
                continue
            v = fn(ev)
            if v is None:
                continue
            if a == "last":
                lasts.append((i, v))
            elif a == "distinct":
                acc[i].add(v)  # a set: once is enough
            elif isinstance(v, (str, bytes)):
                continue
            elif name in BYTES_FIELDS and v and a in ("sum", "time_avg", "avg", "max"):
                if v != ret:
                    return viewtally.REFUSE  # hand the record to the slow path
                if a == "avg":
                    lat.append((i, viewtally.RET_AVG))
                elif a == "max":
                    lat.append((i, viewtally.RET_MAX))
                else:
                    ret_adds.append(i)
            elif a in ("sum", "time_avg"):
                if v:
                    adds.append((i, v))
            elif a == "max":
                _fold(acc, i, a, v)  # the same value each time: once is enough
            else:  # avg
                avgs.append((i, v))
        plan.adds, plan.ret_adds, plan.lat = tuple(adds), tuple(ret_adds), tuple(lat)
        plan.avgs, plan.lasts = tuple(avgs), tuple(lasts)
        return plan

    return viewtally.ViewCounter(agg, state, make_plan, FD_REGS, latency, on_slice)


def _fold(acc: list[Any], i: int, agg: str, v: Any) -> None:
    if agg in ("sum", "time_avg"):
        acc[i] += v
    elif agg == "max":
        if acc[i] is None or v > acc[i]:
            acc[i] = v
    else:  # avg
        acc[i][0] += v
        acc[i][1] += 1
