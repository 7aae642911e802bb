# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The overview tiles' counts of the records a scanner matched, in C: ``ktrace inspect``'s index.

Twin: tracer/_pure/iotally.py (same name, signature, results).
"""

from cpython cimport array
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

include "record.pxi"

__all__ = ["count"]

cdef enum:
    EXACT_MATCH = SEL_MATCH | SEL_EXACT
    FAST_STATE = SEL_STATE | SEL_FAST
DEF KIND_IO = 1
DEF KIND_RET = 2
DEF OP_SUM = 0
DEF OP_COUNT = 1
DEF OP_DISTINCT = 2
DEF KEY_BITS = 36
DEF SLOT_BITS = 8


def count(const uint8_t[:] kinds, const uint8_t[:] regs, dict fds, uint64_t t0, uint64_t bucket_ns,
          uint64_t last_bucket, uint32_t nslots, dict plans, plan_of, array.array sums, set distinct,
          batch, array.array sel, Py_ssize_t i, apply):
    """Count the exact matches of ``sel`` (a scanner's selection) from entry ``i`` on (the
    arguments before ``batch`` are the counter's: bound once, with functools.partial), stopping at
    the first entry that is not one, or whose event has no ``kinds`` entry (KIND_IO: an I/O exit
    counted by its fd, whose number is the register ``regs[evt]`` names (0-5 an argument, 6
    the result, else none); KIND_RET: counted by the
    sign of its result); returns where it stopped. Hidden records and I/O exits that moved no
    data count nothing. A record's plan is ``plans[key]``, key ``(evt, fd.type, fd.name,
    fd.l4proto, fd.sport)`` with the fd looked up in ``fds`` (``(evt, None)`` without one) or
    ``(evt, -1 | 0 | 1)``; a missing plan is ``plan_of(batch, offset)``, kept. A plan is a tuple of
    ``key << 16 | slot << 2 | op`` entries: OP_SUM adds the result and OP_COUNT 1 to
    ``sums[bucket * nslots + slot]`` (grown, zero-filled, as needed); OP_DISTINCT adds
    ``bucket << 44 | slot << 36 | key`` to ``distinct``. The bucket is ``(ts - t0) // bucket_ns``,
    at most ``last_bucket``. An fd event the scanner left to its turn (SEL_STATE | SEL_FAST) is
    passed to ``apply(batch, offset)`` on the way, or stops the walk when ``apply`` is None.
    Returns (where it stopped, the matches it counted)."""
    cdef const uint8_t[:] view = batch
    cdef const uint8_t *base
    cdef uint64_t *s = <uint64_t *>sel.data.as_voidptr
    cdef Py_ssize_t nsel = len(sel)
    cdef Py_ssize_t nkinds = kinds.shape[0]
    cdef Py_ssize_t off, need, have
    cdef uint64_t ts, bucket, entry, slot
    cdef uint32_t pid, flags
    cdef uint16_t evt
    cdef int64_t ret
    cdef int32_t num
    cdef uint8_t kind, reg
    cdef tuple plan
    cdef Py_ssize_t matched = 0
    if view.shape[0] == 0:
        return i, 0
    base = &view[0]
    while i + 2 < nsel:
        off = <Py_ssize_t>s[i + 1]
        if s[i + 2] == FAST_STATE and apply is not None:
            apply(batch, off)
            i += 3
            continue
        if s[i + 2] != EXACT_MATCH:
            break
        memcpy(&evt, base + off + OFF_EVT, 2)
        kind = kinds[evt] if evt < nkinds else 0
        if not kind:
            break
        i += 3
        matched += 1
        memcpy(&flags, base + off + OFF_FLAGS, 4)
        if flags & RF_HIDDEN:
            continue
        memcpy(&ret, base + off + OFF_RET, 8)
        if kind == KIND_IO:
            if ret <= 0:
                continue
            memcpy(&pid, base + off + OFF_PID, 4)
            reg = regs[evt]
            if reg == FD_RET:
                num = <int32_t>ret
            elif reg < 6:
                memcpy(&num, base + off + OFF_ARGS + 8 * reg, 4)
            else:
                num = -1  # no fd
            fd = None
            if num >= 0:
                table = fds.get(pid)
                if table is not None:
                    fd = table.get(num)
            if fd is None:
                key = (evt, None)
            else:
                key = (evt, fd.type, fd.name, fd.l4proto, fd.sport)
        else:
            key = (evt, -1 if ret < 0 else (1 if ret > 0 else 0))
        found = plans.get(key)
        if found is None:
            found = plan_of(batch, off)
            plans[key] = found
        plan = <tuple>found
        if not plan:
            continue
        memcpy(&ts, base + off, 8)
        bucket = (ts - t0) // bucket_ns if ts > t0 else 0
        if bucket > last_bucket:
            bucket = last_bucket
        for e in plan:
            entry = e
            slot = (entry >> 2) & ((1 << 14) - 1)
            if entry & 3 == OP_DISTINCT:
                distinct.add((bucket << 44) | (slot << KEY_BITS) | (entry >> 16))
                continue
            need = <Py_ssize_t>((bucket + 1) * nslots)
            have = len(sums)
            if need > have:
                array.resize(sums, need)
                memset(sums.data.as_ulonglongs + have, 0, (need - have) * 8)
            sums.data.as_ulonglongs[bucket * nslots + slot] += <uint64_t>ret if entry & 3 == OP_SUM else 1
    return i, matched
