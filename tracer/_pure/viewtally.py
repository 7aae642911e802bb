"""A table view's counts of the records a scanner matched (pure-Python twin of ext/viewtally.pyx).

What a plan is, and when it holds, is told in tracer/views/fast.py, which makes the plans. Here a
record costs its head, a thread and fd lookup, a look in the plans (by event id, return class,
thread and fd) and the plan's additions. (The Cython module folds a run's records by key first
and adds each key's sums once: the same rows, as its tests check.)
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from typing import Any, Final

from ..schema import record as R
from ..schema.events import FD_NONE, FD_RET
from ..schema.record import SEL_EXACT, SEL_FAST, SEL_MATCH, SEL_STATE

__all__ = ["LAT_AVG", "LAT_MAX", "LAT_SUM", "MAX_PLANS", "ViewPlan", "REFUSE", "RET_AVG", "RET_MAX", "ViewCounter"]

EXACT_MATCH: Final = SEL_MATCH | SEL_EXACT
FAST_STATE: Final = SEL_STATE | SEL_FAST

# What a ``ViewPlan.lat`` entry folds into its column: a latency, or the return value.
LAT_SUM = 0  # sum, time_avg
LAT_MAX = 1
LAT_AVG = 2
RET_AVG = 3
RET_MAX = 4
MAX_PLANS = 65536

_HEAD: Final = struct.Struct(R.HEAD_FMT + "q")  # ts tid pid evt cpu len ret
_I32: Final = struct.Struct("<i")


class ViewPlan:
    """What one (event id, return class, thread, fd) does to the table: nothing (``acc`` None),
    or additions to the row ``acc``: ``adds`` (column, value), ``ret_adds`` (columns adding the
    return value), ``lat`` (column, LAT_* or RET_*), ``avgs`` (column, value), and ``lasts``
    (column, value) rewritten when another plan wrote the row last."""

    __slots__ = ("fd", "thread", "passed", "acc", "adds", "ret_adds", "lat", "avgs", "lasts")

    def __init__(self, fd: Any, thread: Any) -> None:
        self.fd = fd
        self.thread = thread
        self.passed = False  # the view's filter (and the user's) admits the event
        self.acc: list[Any] | None = None
        self.adds: tuple[tuple[int, Any], ...] = ()
        self.ret_adds: tuple[int, ...] = ()
        self.lat: tuple[tuple[int, int], ...] = ()
        self.avgs: tuple[tuple[int, Any], ...] = ()
        self.lasts: tuple[tuple[int, Any], ...] = ()


REFUSE: Final = ViewPlan(None, None)  # hand the record to the slow path


def _fold(acc: list[Any], i: int, how: int, v: Any) -> None:
    if how == LAT_SUM:
        acc[i] += v
    elif how in (LAT_MAX, RET_MAX):
        if acc[i] is None or v > acc[i]:
            acc[i] = v
    else:  # LAT_AVG, RET_AVG: [sum, count]
        acc[i][0] += v
        acc[i][1] += 1


class ViewCounter:
    """Counts records into ``agg`` (a ViewAggregator) by plans; ``make_plan(buf, off, fd, thread,
    ret)`` makes a missing one (REFUSE: the record goes to the slow path). ``latency``: the run
    pairs exits with enters (evt.latency), so the counter keeps the state's enter times as the
    pipeline would. ``on_slice(ts)``, when given, is called with the time of a record at or past
    ``next_slice`` and returns the next one (a capture read in slices of event time)."""

    def __init__(self, agg: Any, state: Any, make_plan: Callable[[bytes, int, Any, Any, int], ViewPlan], regs: bytes,
                 latency: bool, on_slice: Callable[[int], int] | None = None) -> None:
        self._agg = agg
        self._state = state
        self._make_plan = make_plan
        self._on_slice = on_slice
        self._threads = state.threads
        self._fds = state.fds
        self._enter_ts = state._enter_ts
        self._regs = bytes(regs)
        self._latency = latency
        self._width = len(agg.aggs)
        self._plans: dict[tuple[int, int, int, int], ViewPlan] = {}
        self._version: int | None = None
        self.next_slice = 0

    def _current(self) -> None:
        """Plans hold for one state version and one interval (the aggregator's plans_epoch)."""
        if self._version != self._state.version or self._agg.plans_epoch is not self._plans:
            self._plans = self._agg.plans_epoch
            self._plans.clear()
            self._version = self._state.version

    def _one(self, buf: bytes, off: int) -> bool:
        """Count the record at ``off``; False when refused."""
        ts, tid, pid, evt, _cpu, _len, ret = _HEAD.unpack_from(buf, off)
        if self._on_slice is not None and ts >= self.next_slice:
            self.next_slice = self._on_slice(ts)
            self._current()
        if evt >= R.EVT_BASE_OTHER or buf[off + R.OFF_FLAGS] & R.RF_HIDDEN:
            return False
        if self._latency and not evt & 1:
            self._enter_ts[tid] = ts
        thread = self._threads.get(tid)
        reg = self._regs[evt]
        fd = None
        if reg != FD_NONE:
            num = (ret if 0 <= ret <= 0x7FFFFFFF else -1) if reg == FD_RET \
                else _I32.unpack_from(buf, off + R.OFF_ARGS + 8 * reg)[0]
            table = self._fds.get(pid) if num >= 0 else None
            fd = table.get(num) if table else None
        key = (evt, ret if ret <= 0 else 1, tid, id(fd))
        plan = self._plans.get(key)
        if plan is None or plan.fd is not fd or plan.thread is not thread:
            plan = self._make_plan(buf, off, fd, thread, ret)
            if len(self._plans) > MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        if plan is REFUSE:
            return False  # (an exit's enter time stays for the pipeline to pair)
        lat_ns = 0
        if self._latency and evt & 1:
            t0 = self._enter_ts.pop(tid, 0)
            lat_ns = ts - t0 if t0 else 0
        if not plan.passed:
            return True
        agg = self._agg
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
        for i, how in plan.lat:
            _fold(acc, i, how, ret if how in (RET_AVG, RET_MAX) else lat_ns)
        for i, v in plan.avgs:
            _fold(acc, i, LAT_AVG, v)
        if acc[self._width] is not plan:
            for i, v in plan.lasts:
                acc[i] = v
            acc[self._width] = plan
        return True

    def count(self, buf: bytes, off: int) -> bool:
        """Count one record of a syscall the pipeline matched exactly; False refuses it (the
        pipeline then makes an Event of it for ``agg.add``)."""
        if off < 0 or off + R.REC_FIXED > len(buf):
            raise ValueError("no record at this offset")
        self._current()
        return self._one(buf, off)

    def count_run(self, batch: bytes, sel: array[int], i: int,
                  apply: Callable[[bytes, int], None] | None) -> tuple[int, int]:
        """The pipeline's ``on_records``: count the exact matches of ``sel`` (a scanner's selection)
        from entry ``i`` on, passing the fd events left to their turn (SEL_STATE | SEL_FAST) to
        ``apply(batch, offset)`` on the way (or stopping at them when ``apply`` is None); stops at
        any other entry and at a refused record. Returns (where it stopped, the matches counted)."""
        nsel = len(sel)
        matched = 0
        if not batch:
            return i, 0
        self._current()
        while i + 2 < nsel:
            off = sel[i + 1]
            if sel[i + 2] == FAST_STATE and apply is not None:
                apply(batch, off)
                i += 3
                continue
            if sel[i + 2] != EXACT_MATCH or not self._one(batch, off):
                break
            matched += 1
            i += 3
        return i, matched
