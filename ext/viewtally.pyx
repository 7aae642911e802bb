# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A table view's counts of the records a scanner matched, in C: ``ktrace top``'s fast path.

What a plan is, and when it holds, is told in tracer/views/fast.py, which makes the plans. Here a
record costs its head, a thread and fd lookup, a look in a small cache of the last plans (by
event id, return class, thread and fd) and the plan's additions.

Twin: tracer/_pure/viewtally.py (same names, signatures, results).
"""

from cpython cimport array
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cimport cython

include "record.pxi"

__all__ = ["LAT_AVG", "LAT_MAX", "LAT_SUM", "MAX_PLANS", "ViewPlan", "REFUSE", "RET_AVG", "RET_MAX", "ViewCounter"]

cdef enum:
    EXACT_MATCH = SEL_MATCH | SEL_EXACT
    FAST_STATE = SEL_STATE | SEL_FAST
    CACHE = 64  # plans remembered by slot, besides the plans dict (a power of two)

# What a ``ViewPlan.lat`` entry folds into its column: a latency, or the return value.
LAT_SUM = 0  # sum, time_avg
LAT_MAX = 1
LAT_AVG = 2
RET_AVG = 3
RET_MAX = 4
MAX_PLANS = 65536


@cython.final
cdef class ViewPlan:
    """What one (event id, return class, thread, fd) does to the table: nothing (``acc`` None),
    or additions to the row ``acc``: ``adds`` (column, value), ``ret_adds`` (columns adding the
    return value), ``lat`` (column, LAT_* or RET_*), ``avgs`` (column, value), and ``lasts``
    (column, value) rewritten when another plan wrote the row last."""

    cdef public object fd
    cdef public object thread
    cdef public bint passed
    cdef public object acc
    cdef public tuple adds
    cdef public tuple ret_adds
    cdef public tuple lat
    cdef public tuple avgs
    cdef public tuple lasts

    def __init__(self, fd, thread):
        self.fd = fd
        self.thread = thread
        self.passed = False  # the view's filter (and the user's) admits the event
        self.acc = None
        self.adds = ()
        self.ret_adds = ()
        self.lat = ()
        self.avgs = ()
        self.lasts = ()


REFUSE = ViewPlan(None, None)  # hand the record to the slow path


cdef inline object _fold(list acc, Py_ssize_t i, int how, object v):
    cdef object cur
    if how == LAT_SUM:
        acc[i] = acc[i] + v
    elif how == LAT_MAX or how == RET_MAX:
        cur = acc[i]
        if cur is None or v > cur:
            acc[i] = v
    else:  # LAT_AVG, RET_AVG: [sum, count]
        cur = acc[i]
        cur[0] = cur[0] + v
        cur[1] = cur[1] + 1
    return None


@cython.final
cdef class ViewCounter:
    """Counts records into ``agg`` (a ViewAggregator) by plans; ``make_plan(buf, off, fd, thread,
    ret)`` makes a missing one (REFUSE: the record goes to the slow path). ``latency``: the run
    pairs exits with enters (evt.latency), so the counter keeps the state's enter times as the
    pipeline would. ``on_slice(ts)``, when given, is called with the time of a record at or past
    ``next_slice`` and returns the next one (a capture read in slices of event time)."""

    cdef object agg
    cdef object state
    cdef object make_plan
    cdef object on_slice
    cdef dict threads
    cdef dict fds
    cdef dict enter_ts
    cdef bytes regs
    cdef bint latency
    cdef Py_ssize_t width
    cdef dict plans
    cdef object version
    cdef public uint64_t next_slice
    # The cache: slot keys, and the plans (a list: it holds the references).
    cdef uint64_t key_a[CACHE]
    cdef uint64_t key_b[CACHE]
    cdef list cached

    def __init__(self, agg, state, make_plan, regs, bint latency, on_slice=None):
        self.agg = agg
        self.state = state
        self.make_plan = make_plan
        self.on_slice = on_slice
        self.threads = state.threads
        self.fds = state.fds
        self.enter_ts = state._enter_ts
        self.regs = bytes(regs)
        self.latency = latency
        self.width = len(agg.aggs)
        self.plans = {}
        self.version = None
        self.next_slice = 0
        self.cached = [None] * CACHE

    cdef inline int _current(self) except -1:
        """Plans hold for one state version and one interval (the aggregator's plans_epoch)."""
        if self.version != self.state.version or self.agg.plans_epoch is not self.plans:
            self.plans = self.agg.plans_epoch
            self.plans.clear()
            self.version = self.state.version
            self._forget()
        return 0

    cdef inline void _forget(self) noexcept:
        cdef Py_ssize_t k
        for k in range(CACHE):
            self.key_a[k] = 0xFFFFFFFFFFFFFFFF
            self.key_b[k] = 0

    cdef int _one(self, const uint8_t *base, Py_ssize_t off, object buf) except -1:
        """Count the record at ``off``: 1, or 0 when refused."""
        cdef uint64_t ts
        cdef uint32_t tid, pid, flags
        cdef uint16_t evt
        cdef int64_t ret
        cdef int32_t num
        cdef uint8_t reg
        cdef int64_t rclass
        cdef uint64_t ka, kb, lat_ns
        cdef Py_ssize_t slot
        cdef ViewPlan plan
        cdef list acc
        cdef tuple entry
        cdef object found, t0
        cdef int how
        cdef bint cacheable
        memcpy(&ts, base + off + OFF_TS, 8)
        memcpy(&tid, base + off + OFF_TID, 4)
        memcpy(&pid, base + off + OFF_PID, 4)
        memcpy(&evt, base + off + OFF_EVT, 2)
        memcpy(&flags, base + off + OFF_FLAGS, 4)
        memcpy(&ret, base + off + OFF_RET, 8)
        if self.on_slice is not None and ts >= self.next_slice:
            self.next_slice = self.on_slice(ts)
            self._current()
        if evt >= EVT_BASE_OTHER or flags & RF_HIDDEN:
            return 0
        if self.latency and not evt & 1:
            self.enter_ts[tid] = ts
        thread = self.threads.get(tid)
        reg = (<const uint8_t *><char *>self.regs)[evt]
        fd = None
        if reg != FD_NONE:
            if reg == FD_RET:
                num = <int32_t>ret
                if ret < 0 or ret > 0x7FFFFFFF:
                    num = -1
            else:
                memcpy(&num, base + off + OFF_ARGS + 8 * reg, 4)
            if num >= 0:
                table = self.fds.get(pid)
                if table:
                    fd = table.get(num)
        rclass = ret if ret <= 0 else 1
        # The cache's key: event id, thread and return class (failure codes fit 16 bits), and the
        # fd object (a plan holds it: its address is no other fd's while the plan lives).
        cacheable = rclass >= -0x8000
        ka = (<uint64_t>evt << 48) | (<uint64_t>tid << 16) | ((<uint64_t>rclass) & 0xFFFF)
        kb = <uint64_t><size_t><void *>fd
        slot = <Py_ssize_t>(((ka * 0x9E3779B97F4A7C15ULL) ^ kb) * 0x9E3779B97F4A7C15ULL >> 58) & (CACHE - 1)
        found = self.cached[slot]
        if cacheable and self.key_a[slot] == ka and self.key_b[slot] == kb and found is not None \
                and (<ViewPlan>found).thread is thread and (<ViewPlan>found).fd is fd:
            plan = <ViewPlan>found
        else:
            key = (evt, rclass, tid, id(fd))
            found = self.plans.get(key)
            if found is None or (<ViewPlan>found).fd is not fd or (<ViewPlan>found).thread is not thread:
                found = self.make_plan(buf, off, fd, thread, ret)
                if len(self.plans) > MAX_PLANS:
                    self.plans.clear()
                    self._forget()
                self.plans[key] = found
            plan = <ViewPlan>found
            if cacheable:
                self.cached[slot] = plan
                self.key_a[slot] = ka
                self.key_b[slot] = kb
        if plan is REFUSE:
            return 0  # (an exit's enter time stays for the pipeline to pair)
        lat_ns = 0
        if self.latency and evt & 1:
            t0 = self.enter_ts.pop(tid, 0)
            lat_ns = ts - <uint64_t>t0 if t0 else 0
        if not plan.passed:
            return 1
        agg = self.agg
        if not agg.start_ns:
            agg.start_ns = ts
        agg.events += 1
        if plan.acc is None:
            return 1
        acc = <list>plan.acc
        for entry in plan.adds:
            acc[entry[0]] = acc[entry[0]] + entry[1]
        if plan.ret_adds:
            for i in plan.ret_adds:
                acc[i] = acc[i] + ret
        for entry in plan.lat:
            how = entry[1]
            _fold(acc, entry[0], how, ret if how == RET_AVG or how == RET_MAX else lat_ns)
        for entry in plan.avgs:
            _fold(acc, entry[0], LAT_AVG, entry[1])
        if acc[self.width] is not plan:
            for entry in plan.lasts:
                acc[entry[0]] = entry[1]
            acc[self.width] = plan
        return 1

    def count(self, buf, Py_ssize_t off):
        """Count one record of a syscall the pipeline matched exactly; False refuses it (the
        pipeline then makes an Event of it for ``agg.add``)."""
        cdef const uint8_t[:] view = buf
        if off < 0 or off + REC_FIXED > view.shape[0]:
            raise ValueError("no record at this offset")
        self._current()
        return self._one(&view[0], off, buf) == 1

    def count_run(self, batch, array.array sel, Py_ssize_t i, apply):
        """The pipeline's ``on_records``: count the exact matches of ``sel`` (a scanner's selection)
        from entry ``i`` on, passing the fd events left to their turn (SEL_STATE | SEL_FAST) to
        ``apply(batch, offset)`` on the way (or stopping at them when ``apply`` is None); stops at
        any other entry and at a refused record. Returns (where it stopped, the matches counted)."""
        cdef const uint8_t[:] view = batch
        cdef uint64_t *s = <uint64_t *>sel.data.as_voidptr
        cdef Py_ssize_t nsel = len(sel)
        cdef Py_ssize_t matched = 0
        cdef Py_ssize_t off
        if view.shape[0] == 0:
            return i, 0
        self._current()
        while i + 2 < nsel:
            off = <Py_ssize_t>s[i + 1]
            if s[i + 2] == FAST_STATE and apply is not None:
                apply(batch, off)
                i += 3
                continue
            if s[i + 2] != EXACT_MATCH or not self._one(&view[0], off, batch):
                break
            matched += 1
            i += 3
        return i, matched
