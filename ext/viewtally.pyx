# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A table view's counts of the records a scanner matched, in C: ``ktrace top``'s fast path.

What a plan is, and when it holds, is told in tracer/views/fast.py, which makes the plans. Here
the records of a run are folded by key (thread, event, return class, fd) in C, with their enter
times, and each key's sums are added to the rows by its plan once (see ``count_run``).

Twin: tracer/_pure/viewtally.py (same names, signatures, results).
"""

from cpython cimport array
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

cimport cython

include "record.pxi"

__all__ = ["LAT_AVG", "LAT_MAX", "LAT_SUM", "MAX_PLANS", "ViewPlan", "REFUSE", "RET_AVG", "RET_MAX", "ViewCounter"]

cdef enum:
    EXACT_MATCH = SEL_MATCH | SEL_EXACT
    FAST_STATE = SEL_STATE | SEL_FAST
    NKEYS = 512  # a run's distinct (thread, event, return class, fd) at once (a power of two)
    NTIDS = 512  # a run's threads with an enter time (a power of two)
    ENTER_PENDING = 1  # the thread's enter time, not paired yet
    ENTER_TAKEN = 2  # paired (or looked up in the state): the state keeps none


cdef struct KeySum:
    # What the records of one key added in a run, folded: applied by its plan at the end.
    uint64_t k1  # evt << 48 | return class (16 bits) << 32 | tid
    uint64_t k2  # pid << 32 | fd number (0xFFFFFFFF: none)
    uint64_t count
    int64_t sum_ret
    int64_t max_ret
    uint64_t sum_lat
    uint64_t max_lat
    uint64_t first_ts
    uint64_t last  # the run's record number of its last record (plans write rows in that order)
    bint used


cdef struct EnterTs:
    uint32_t tid
    uint8_t how  # 0 free, ENTER_PENDING, ENTER_TAKEN
    uint64_t ts

# What a ``ViewPlan.lat`` entry folds into its column: a latency, or the return value.
LAT_SUM = 0  # sum, time_avg
LAT_MAX = 1
LAT_AVG = 2
RET_AVG = 3
RET_MAX = 4
MAX_PLANS = 65536



cdef inline object _get(object table, object key):
    """table.get(key) for a dict or a subclass of one (the state's ThreadTable)."""
    cdef PyObject *v = PyDict_GetItem(table, key)
    return <object>v if v != NULL else None

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


cdef inline int _max(list acc, Py_ssize_t i, object v) except -1:
    cdef object cur = acc[i]
    if cur is None or v > cur:
        acc[i] = v
    return 0


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
    cdef object threads  # a dict subclass (ThreadTable): read with PyDict_GetItem
    cdef dict fds
    cdef dict enter_ts
    cdef bytes regs
    cdef bint latency
    cdef Py_ssize_t width
    cdef dict plans
    cdef object version
    cdef public uint64_t next_slice
    # A run folded by key (count_run): the sums, their plans (a list: the references), which are used.
    cdef KeySum sums[NKEYS]
    cdef list sum_plans
    cdef Py_ssize_t used[NKEYS]
    cdef Py_ssize_t nused
    cdef uint64_t seq
    cdef EnterTs enters[NTIDS]
    cdef Py_ssize_t nenters

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
        self.sum_plans = [None] * NKEYS
        self.nused = 0
        self.nenters = 0
        self.seq = 0
        memset(self.sums, 0, sizeof(self.sums))
        memset(self.enters, 0, sizeof(self.enters))

    cdef inline int _current(self) except -1:
        """Plans hold for one state version and one interval (the aggregator's plans_epoch)."""
        if self.version != self.state.version or self.agg.plans_epoch is not self.plans:
            self.plans = self.agg.plans_epoch
            self.plans.clear()
            self.version = self.state.version
        return 0

    def count(self, buf, Py_ssize_t off):
        """Count one record of a syscall the pipeline matched exactly; False refuses it (the
        pipeline then makes an Event of it for ``agg.add``)."""
        cdef const uint8_t[:] view = buf
        cdef int r
        if off < 0 or off + REC_FIXED > view.shape[0]:
            raise ValueError("no record at this offset")
        self._current()
        try:
            r = self._take(&view[0], off, buf)
        finally:
            self._fold_out()
            self._hand_enters()
        return r == 1

    def count_run(self, batch, array.array sel, Py_ssize_t i, apply):
        """The pipeline's ``on_records``: count the exact matches of ``sel`` (a scanner's selection)
        from entry ``i`` on, passing the fd events left to their turn (SEL_STATE | SEL_FAST) to
        ``apply(batch, offset)`` on the way (or stopping at them when ``apply`` is None); stops at
        any other entry and at a refused record. Returns (where it stopped, the matches counted).

        The records are folded by key (thread, event, return class, fd) and each key's sums are
        added by its plan once, when the run ends (or sooner: before an fd event is applied, at a
        slice's end, when the table is full), keys in the order of their last record: what the
        rows get is what adding the records one by one gives. Enter times are kept here during the
        run and handed to the state at its end."""
        cdef const uint8_t[:] view = batch
        cdef uint64_t *s = <uint64_t *>sel.data.as_voidptr
        cdef Py_ssize_t nsel = len(sel)
        cdef Py_ssize_t matched = 0
        cdef Py_ssize_t off
        cdef int r
        if view.shape[0] == 0:
            return i, 0
        self._current()
        try:
            while i + 2 < nsel:
                off = <Py_ssize_t>s[i + 1]
                if s[i + 2] == FAST_STATE and apply is not None:
                    self._fold_out()  # the fds the sums were taken with are about to change
                    apply(batch, off)
                    i += 3
                    continue
                if s[i + 2] != EXACT_MATCH:
                    break
                r = self._take(&view[0], off, batch)
                if r == 0:
                    break
                matched += 1
                i += 3
        finally:
            self._fold_out()
            self._hand_enters()
        return i, matched

    cdef int _take(self, const uint8_t *base, Py_ssize_t off, object buf) except -1:
        """Fold the record at ``off`` into its key's sums: 1, or 0 (nothing done) when its plan
        refuses it or it is no syscall the plans can take (the record then goes one by one)."""
        cdef uint64_t ts, k1, k2, h, lat_ns
        cdef uint32_t tid, pid, flags
        cdef uint16_t evt
        cdef int64_t ret, rclass
        cdef int32_t num
        cdef uint8_t reg
        cdef Py_ssize_t slot
        cdef KeySum *ks
        cdef object plan
        memcpy(&ts, base + off + OFF_TS, 8)
        if self.on_slice is not None and ts >= self.next_slice:
            self._fold_out()
            self.next_slice = self.on_slice(ts)
            self._current()
        memcpy(&evt, base + off + OFF_EVT, 2)
        memcpy(&flags, base + off + OFF_FLAGS, 4)
        memcpy(&ret, base + off + OFF_RET, 8)
        rclass = ret if ret <= 0 else 1
        if evt >= EVT_BASE_OTHER or flags & RF_HIDDEN or rclass < -0x8000:
            return 0
        memcpy(&tid, base + off + OFF_TID, 4)
        memcpy(&pid, base + off + OFF_PID, 4)
        reg = (<const uint8_t *><char *>self.regs)[evt]
        num = -1
        if reg == FD_RET:
            if 0 <= ret <= 0x7FFFFFFF:
                num = <int32_t>ret
        elif reg != FD_NONE:
            memcpy(&num, base + off + OFF_ARGS + 8 * reg, 4)
        k1 = (<uint64_t>evt << 48) | (((<uint64_t>rclass) & 0xFFFF) << 32) | tid
        k2 = (<uint64_t>pid << 32) | (<uint32_t>num if num >= 0 else 0xFFFFFFFF)
        h = ((k1 * 0x9E3779B97F4A7C15ULL) ^ k2) * 0x9E3779B97F4A7C15ULL
        slot = <Py_ssize_t>(h >> 40) & (NKEYS - 1)
        while self.sums[slot].used and (self.sums[slot].k1 != k1 or self.sums[slot].k2 != k2):
            slot = (slot + 1) & (NKEYS - 1)
        ks = &self.sums[slot]
        if not ks.used:
            if self.nused >= NKEYS // 2:
                self._fold_out()
                return self._take(base, off, buf)
            plan = self._plan_of(buf, off, evt, tid, pid, num, ret)
            if plan is REFUSE:
                return 0
            ks.used = True
            ks.k1 = k1
            ks.k2 = k2
            ks.count = 0
            ks.sum_ret = 0
            ks.max_ret = ret
            ks.sum_lat = 0
            ks.max_lat = 0
            ks.first_ts = ts
            self.sum_plans[slot] = plan
            self.used[self.nused] = slot
            self.nused += 1
        lat_ns = 0
        if self.latency:
            lat_ns = self._enter_exit(tid, evt, ts)
        ks.count += 1
        ks.sum_ret += ret
        if ret > ks.max_ret:
            ks.max_ret = ret
        ks.sum_lat += lat_ns
        if lat_ns > ks.max_lat:
            ks.max_lat = lat_ns
        self.seq += 1
        ks.last = self.seq
        return 1

    cdef object _plan_of(self, object buf, Py_ssize_t off, uint16_t evt, uint32_t tid, uint32_t pid, int32_t num,
                         int64_t ret):
        """The plan of a record: kept by (event, return class, thread, fd) for as long as they are
        the same objects, made when missing."""
        thread = _get(self.threads, tid)
        fd = None
        if num >= 0:
            table = self.fds.get(pid)
            if table:
                fd = table.get(num)
        key = (evt, ret if ret <= 0 else 1, tid, id(fd))
        found = self.plans.get(key)
        if found is None or (<ViewPlan>found).fd is not fd or (<ViewPlan>found).thread is not thread:
            found = self.make_plan(buf, off, fd, thread, ret)
            if len(self.plans) > MAX_PLANS:
                self.plans.clear()
            self.plans[key] = found
        return found

    cdef uint64_t _enter_exit(self, uint32_t tid, uint16_t evt, uint64_t ts) except? 0xFFFFFFFFFFFFFFFF:
        """Keep an enter's time, or pair an exit with its enter: the latency (0 without one)."""
        cdef Py_ssize_t k = <Py_ssize_t>((tid * 0x9E3779B1U) >> 20) & (NTIDS - 1)
        cdef EnterTs *e
        while self.enters[k].how and self.enters[k].tid != tid:
            k = (k + 1) & (NTIDS - 1)
        e = &self.enters[k]
        if not e.how:
            if self.nenters >= NTIDS // 2:
                self._hand_enters()
                return self._enter_exit(tid, evt, ts)
            self.nenters += 1
            e.tid = tid
            e.how = ENTER_TAKEN
            if evt & 1:
                # The first exit of the thread in this run: its enter, if any, is in the state.
                t0 = self.enter_ts.pop(tid, 0)
                return ts - <uint64_t>t0 if t0 else 0
        if not evt & 1:
            e.how = ENTER_PENDING
            e.ts = ts
            return 0
        if e.how == ENTER_PENDING:
            e.how = ENTER_TAKEN
            return ts - e.ts if e.ts else 0
        return 0

    cdef int _hand_enters(self) except -1:
        """Give the state the enter times of the run (and forget those it paired)."""
        cdef Py_ssize_t k
        if not self.nenters:
            return 0
        for k in range(NTIDS):
            if self.enters[k].how == ENTER_PENDING:
                self.enter_ts[self.enters[k].tid] = self.enters[k].ts
            elif self.enters[k].how == ENTER_TAKEN:
                self.enter_ts.pop(self.enters[k].tid, None)
        memset(self.enters, 0, sizeof(self.enters))
        self.nenters = 0
        return 0

    cdef int _fold_out(self) except -1:
        """Add the run's sums to the rows by their plans, keys in the order of their last record."""
        cdef Py_ssize_t n = self.nused
        cdef Py_ssize_t a, b, slot
        cdef KeySum *ks
        cdef ViewPlan plan
        cdef list acc
        cdef tuple entry
        cdef int how
        cdef uint64_t events = 0
        cdef uint64_t first_ts = 0
        if not n:
            return 0
        # Insertion sort by last record: runs have a few keys, mostly in order already.
        for a in range(1, n):
            slot = self.used[a]
            b = a - 1
            while b >= 0 and self.sums[self.used[b]].last > self.sums[slot].last:
                self.used[b + 1] = self.used[b]
                b -= 1
            self.used[b + 1] = slot
        for a in range(n):
            slot = self.used[a]
            ks = &self.sums[slot]
            plan = <ViewPlan>self.sum_plans[slot]
            if not plan.passed:
                continue
            events += ks.count
            if not first_ts or ks.first_ts < first_ts:
                first_ts = ks.first_ts
            if plan.acc is None:
                continue
            acc = <list>plan.acc
            for entry in plan.adds:
                acc[entry[0]] = acc[entry[0]] + entry[1] * ks.count
            for i in plan.ret_adds:
                acc[i] = acc[i] + ks.sum_ret
            for entry in plan.lat:
                how = entry[1]
                if how == LAT_SUM:
                    acc[entry[0]] = acc[entry[0]] + ks.sum_lat
                elif how == LAT_MAX:
                    _max(acc, entry[0], ks.max_lat)
                elif how == RET_MAX:
                    _max(acc, entry[0], ks.max_ret)
                else:
                    pair = acc[entry[0]]
                    pair[0] = pair[0] + (ks.sum_lat if how == LAT_AVG else ks.sum_ret)
                    pair[1] = pair[1] + ks.count
            for entry in plan.avgs:
                pair = acc[entry[0]]
                pair[0] = pair[0] + entry[1] * ks.count
                pair[1] = pair[1] + ks.count
            if acc[self.width] is not plan:
                for entry in plan.lasts:
                    acc[entry[0]] = entry[1]
                acc[self.width] = plan
        for a in range(n):
            slot = self.used[a]
            self.sums[slot].used = False
            self.sum_plans[slot] = None
        self.nused = 0
        if events:
            agg = self.agg
            if not agg.start_ns:
                agg.start_ns = first_ts
            agg.events += events
        return 0
