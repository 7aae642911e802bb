# cython: boundscheck=False, wraparound=False, cdivision=True
"""Per-bucket event counts of a batch, in C: the timeline of ``ktrace inspect``'s index.

Twin: tracer/_pure/tally.py (same name, signature, results).
"""

from cpython cimport array
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

include "record.pxi"



__all__ = ["tally"]

def tally(batch, const uint8_t[:] cat_of, uint64_t t0, uint64_t bucket_ns, uint32_t ncat, uint64_t last_bucket,
          array.array counts, array.array failed, set pids, uint8_t skip_cat):
    """Add each record of ``batch`` to ``counts[bucket * ncat + cat_of[evt]]``, where bucket is
    ``(ts - t0) // bucket_ns``, clamped to ``[0, last_bucket]``; ``counts`` (an array of 'Q') grows,
    zero-filled, as needed. Event ids beyond ``cat_of`` count in category 0. A record whose
    ``cat_of`` entry has bit 0x80 set (an exit whose result can fail) and whose return value is
    negative adds 1 to ``failed[bucket]`` (grown like ``counts``). Records flagged hidden
    (kept for state only) are not counted. Each record not in category ``skip_cat`` adds
    ``bucket << 32 | pid`` to ``pids``. Returns the number of records walked; raises ValueError on
    a length field that cannot be right."""
    cdef const uint8_t[:] view = batch
    cdef Py_ssize_t end = view.shape[0]
    cdef Py_ssize_t off = 0
    cdef uint64_t ts, bucket
    cdef uint16_t evt
    cdef uint32_t length
    cdef uint64_t n = 0
    cdef Py_ssize_t ncats = cat_of.shape[0]
    cdef Py_ssize_t need, have
    cdef uint8_t c
    cdef const uint8_t *base
    cdef uint32_t pid, flags
    cdef int64_t ret
    cdef uint8_t code
    cdef uint64_t last_pair = 0xFFFFFFFFFFFFFFFF, pair
    if end == 0:
        return 0
    base = &view[0]
    while off + REC_FIXED <= end:
        memcpy(&ts, base + off, 8)
        memcpy(&evt, base + off + OFF_EVT, 2)
        memcpy(&length, base + off + OFF_LEN, 4)
        if length < REC_FIXED or length & 7 or off + length > end:
            raise ValueError(f"bad record length {length} at offset {off}")
        memcpy(&flags, base + off + OFF_FLAGS, 4)
        if flags & RF_HIDDEN:
            off += length
            n += 1
            continue
        bucket = (ts - t0) // bucket_ns if ts > t0 else 0
        if bucket > last_bucket:
            bucket = last_bucket
        code = cat_of[evt] if evt < ncats else 0
        c = code & 0x7F
        need = <Py_ssize_t>((bucket + 1) * ncat)
        have = len(counts)
        if need > have:
            array.resize(counts, need)
            memset(counts.data.as_ulonglongs + have, 0, (need - have) * 8)
        counts.data.as_ulonglongs[bucket * ncat + c] += 1
        if code & 0x80:
            memcpy(&ret, base + off + OFF_RET, 8)
            if ret < 0:
                have = len(failed)
                if <Py_ssize_t>bucket >= have:
                    array.resize(failed, bucket + 1)
                    memset(failed.data.as_ulonglongs + have, 0, (bucket + 1 - have) * 8)
                failed.data.as_ulonglongs[bucket] += 1
        if c != skip_cat:
            memcpy(&pid, base + off + OFF_PID, 4)
            pair = (bucket << 32) | pid
            if pair != last_pair:  # runs of one process: one set insertion
                pids.add(pair)
                last_pair = pair
        off += length
        n += 1
    if off != end:
        raise ValueError(f"truncated record at offset {off}")
    return n
