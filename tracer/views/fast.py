"""Counting a table view from records, without an Event per record (the views' fast path).

What a view's filter, key and columns give for an event depends, for the fields listed in
``CACHEABLE``, only on the event id, the class of its return value (each failure code, zero, or
positive), its thread and fd, and the state; the bytes a read or write moved are its return value,
and a latency is the time since its enter. So one Event is decoded per (event id, return class,
thread, fd) and its outcome kept as a *plan*: the row's accumulator and what each column adds. A
record then costs its header, a thread and fd lookup and the plan's additions. Plans are valid
while the state's version (bumped by every change) stays the same and the thread and fd are the
same objects, and for one interval (their accumulators are that interval's rows).

Records a plan cannot describe (internal events, hidden ones, an fd the record view and the Event
disagree on) are refused: the counter returns False and the pipeline makes an Event of them for
``ViewAggregator.add``, the slow path, which gives the same numbers event by event.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..event import Event
from ..schema import record as R
from ..schema.events import FD_NONE, FD_REGS, FD_RET
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

_HEAD: Final = struct.Struct("<QIIHHIq")  # ts tid pid evt cpu len ret
_I32: Final = struct.Struct("<i")
_FLAGS: Final = R.OFF_FLAGS
_BASE_OTHER: Final = R.EVT_BASE_OTHER
_MAX_PLANS: Final = 65536

# What a column adds, per record of a plan.
ADD, ADD_RET, ADD_LATENCY = 0, 1, 2


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


class Plan:
    """What one (event id, return class, thread, fd) does to the table: nothing (``acc`` None),
    or additions to the row ``acc``: ``adds`` (column, value), ``ret_adds`` (columns adding the
    return value), ``lat`` (column, aggregation) adding the latency, ``avgs`` (column, value),
    and ``lasts`` (column, value) rewritten when another plan wrote the row last."""

    __slots__ = ("passed", "acc", "adds", "ret_adds", "lat", "avgs", "lasts", "fd", "thread")

    def __init__(self, fd: Any, thread: Any) -> None:
        self.fd, self.thread = fd, thread
        self.passed = False  # the view's filter (and the user's) admits the event
        self.acc: list[Any] | None = None
        self.adds: tuple[tuple[int, Any], ...] = ()
        self.ret_adds: tuple[int, ...] = ()
        self.lat: tuple[tuple[int, str], ...] = ()
        self.avgs: tuple[tuple[int, Any], ...] = ()
        self.lasts: tuple[tuple[int, Any], ...] = ()


_REFUSE: Final = Plan(None, None)  # sentinel: hand the record to the slow path


def record_counter(agg: ViewAggregator, state: State, *, latency: bool) -> Callable[[bytes, int], bool]:
    """``count(buf, off)`` for the records of a syscall the pipeline matched exactly; False
    refuses a record (the pipeline then makes an Event of it for ``agg.add``). ``latency``: the
    run pairs exits with enters (evt.latency), so the counter keeps the state's enter times as the
    pipeline would."""
    head = _HEAD.unpack_from
    i32 = _I32.unpack_from
    regs = FD_REGS
    threads = state.threads
    fds = state.fds
    enter_ts = state._enter_ts
    plans: dict[tuple[int, int, int, int], Plan] = {}
    version = -1
    width = len(agg.aggs)

    def make_plan(buf: bytes, off: int, fd: Any, thread: Any, ret: int) -> Plan:
        ev = Event(buf, off, 0, state)
        if ev.thread is not thread or ev.fd is not fd:
            return _REFUSE
        plan = Plan(fd, thread)
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
        adds, ret_adds, lat, avgs, lasts = [], [], [], [], []
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
                    lat.append((i, a))
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
                    return _REFUSE
                if a == "avg":
                    lat.append((i, "avg_ret"))
                elif a == "max":
                    lat.append((i, "max_ret"))
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

    def count(buf: bytes, off: int) -> bool:
        nonlocal version, plans
        ts, tid, pid, evt, _cpu, _len, ret = head(buf, off)
        if evt >= _BASE_OTHER or buf[off + _FLAGS] & R.RF_HIDDEN:
            return False
        if latency and not evt & 1:
            enter_ts[tid] = ts
        thread = threads.get(tid)
        reg = regs[evt]
        if reg == FD_NONE:
            fd = None
        else:
            num = ret if reg == FD_RET else i32(buf, off + R.OFF_ARGS + 8 * reg)[0]
            table = fds.get(pid)
            fd = table.get(num) if table and 0 <= num <= 0x7FFFFFFF else None
        if version != state.version or agg.plans_epoch is not plans:
            plans = agg.plans_epoch
            plans.clear()
            version = state.version
        slot = (evt, ret if ret <= 0 else 1, tid, id(fd))
        plan = plans.get(slot)
        if plan is None or plan.fd is not fd or plan.thread is not thread:
            plan = make_plan(buf, off, fd, thread, ret)
            if len(plans) > _MAX_PLANS:
                plans.clear()
            plans[slot] = plan
        if plan is _REFUSE:
            return False  # (an exit's enter time stays for the pipeline to pair)
        lat_ns = 0
        if latency and evt & 1:
            t0 = enter_ts.pop(tid, 0)
            lat_ns = ts - t0 if t0 else 0
        if not plan.passed:
            return True
        if not agg.start_ns:
            agg.start_ns = ts
        agg.events += 1
        acc = plan.acc
        if acc is None:
            return True
        for i, v in plan.adds:
            acc[i] += v
        for i in plan.ret_adds:
            acc[i] += ret
        for i, a in plan.lat:
            if a == "avg_ret":
                acc[i][0] += ret
                acc[i][1] += 1
            elif a == "max_ret":
                _fold(acc, i, "max", ret)
            else:
                _fold(acc, i, a, lat_ns)
        for i, v in plan.avgs:
            acc[i][0] += v
            acc[i][1] += 1
        if acc[width] is not plan:
            for i, v in plan.lasts:
                acc[i] = v
            acc[width] = plan
        return True

    return count


def _fold(acc: list[Any], i: int, agg: str, v: Any) -> None:
    if agg in ("sum", "time_avg"):
        acc[i] += v
    elif agg == "max":
        if acc[i] is None or v > acc[i]:
            acc[i] = v
    else:  # avg
        acc[i][0] += v
        acc[i][1] += 1
