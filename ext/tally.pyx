# cython: boundscheck=False, wraparound=False, cdivision=True
"""Per-bucket event counts of a batch, in C: the timeline of ``ktrace inspect``'s index.

Twin: tracer/_pure/tally.py (same name, signature, results).
"""

from cpython cimport array
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

DEF REC_FIXED = 88


def tally(batch, const uint8_t[:] cat_of, uint64_t t0, uint64_t bucket_ns, uint32_t ncat, uint64_t last_bucket,
          array.array counts):
    """Add each record of ``batch`` to ``counts[bucket * ncat + cat_of[evt]]``, where bucket is
    ``(ts - t0) // bucket_ns``, clamped to ``[0, last_bucket]``; ``counts`` (an array of 'Q') grows,
    zero-filled, as needed. Event ids beyond ``cat_of`` count in category 0. Returns the number of
    records; raises ValueError on a length field that cannot be right."""
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
    if end == 0:
        return 0
    base = &view[0]
    while off + REC_FIXED <= end:
        memcpy(&ts, base + off, 8)
        memcpy(&evt, base + off + 16, 2)
        memcpy(&length, base + off + 20, 4)
        if length < REC_FIXED or length & 7 or off + length > end:
            raise ValueError(f"bad record length {length} at offset {off}")
        bucket = (ts - t0) // bucket_ns if ts > t0 else 0
        if bucket > last_bucket:
            bucket = last_bucket
        c = cat_of[evt] if evt < ncats else 0
        need = <Py_ssize_t>((bucket + 1) * ncat)
        have = len(counts)
        if need > have:
            array.resize(counts, need)
            memset(counts.data.as_ulonglongs + have, 0, (need - have) * 8)
        counts.data.as_ulonglongs[bucket * ncat + c] += 1
        off += length
        n += 1
    if off != end:
        raise ValueError(f"truncated record at offset {off}")
    return n
