# cython: language_level=3, boundscheck=False, wraparound=False
"""Per-process tallies of a batch, for the metrics endpoint: syscalls, failures, I/O bytes, and
records per event id. One walk over the records in C; the twin is tracer/_pure/proctally.py.

``kinds`` has one byte per event id: K_CALL (a syscall's exit: one call), K_ERR (its result is the
return value, so a negative one is a failure), K_IO (a read/write-family exit: a positive result
is bytes moved). Consecutive records of one process are summed in C locals, so a run of them
costs one dictionary update.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

include "record.pxi"

__all__ = ["K_CALL", "K_ERR", "K_IO", "Tally"]

K_CALL = 1
K_ERR = 2
K_IO = 4
DEF C_CALL = 1
DEF C_ERR = 2
DEF C_IO = 4


cdef class Tally:
    """Accumulates ``add``ed batches until ``take`` hands the sums over and starts again."""

    cdef bytes _kinds
    cdef public dict procs  # pid -> [calls, errors, io_bytes]
    cdef object _evts  # a bytearray of uint64 counters, one per event id

    def __init__(self, kinds):
        self._kinds = bytes(kinds)
        self.procs = {}
        self._evts = bytearray(8 * len(self._kinds))

    def add(self, batch):
        """Tally every record of ``batch``; stops quietly at a record whose length is wrong (the
        scanner, which reads the same batch, is the one that reports it)."""
        cdef const uint8_t[:] view = batch
        cdef Py_ssize_t end = view.shape[0]
        if end == 0:
            return
        cdef const uint8_t *base = &view[0]
        cdef const uint8_t *kinds = <const uint8_t *><char *>self._kinds
        cdef Py_ssize_t nkinds = len(self._kinds)
        cdef unsigned char[:] evts_view = self._evts
        cdef uint64_t *evts = <uint64_t *>&evts_view[0]
        cdef Py_ssize_t off = 0
        cdef rec_head h
        cdef int64_t ret
        cdef uint8_t k
        cdef uint32_t cur = 0
        cdef bint have = False
        cdef uint64_t calls = 0, errors = 0, nbytes = 0
        cdef dict procs = self.procs
        cdef list row
        while off + REC_FIXED <= end:
            memcpy(&h, base + off, sizeof(rec_head))
            if h.length < REC_FIXED or (h.length & 7) or off + h.length > end:
                break
            if h.evt < nkinds:
                evts[h.evt] += 1
                k = kinds[h.evt]
                if k & C_CALL:
                    if not have or h.pid != cur:
                        if have:
                            row = procs.get(cur)
                            if row is None:
                                procs[cur] = [calls, errors, nbytes]
                            else:
                                row[0] += calls
                                row[1] += errors
                                row[2] += nbytes
                        cur = h.pid
                        have = True
                        calls = errors = nbytes = 0
                    calls += 1
                    memcpy(&ret, base + off + OFF_RET, 8)
                    if ret < 0:
                        if k & C_ERR:
                            errors += 1
                    elif ret > 0 and k & C_IO:
                        nbytes += <uint64_t>ret
            off += h.length
        if have:
            row = procs.get(cur)
            if row is None:
                procs[cur] = [calls, errors, nbytes]
            else:
                row[0] += calls
                row[1] += errors
                row[2] += nbytes

    def take(self):
        """``(procs, evts)``: the per-process sums and the per-event-id record counts since the
        last ``take``; both start again from zero."""
        procs = self.procs
        self.procs = {}
        cdef unsigned char[:] evts_view = self._evts
        cdef uint64_t *evts = <uint64_t *>&evts_view[0]
        cdef Py_ssize_t i, n = len(self._kinds)
        counts = {}
        for i in range(n):
            if evts[i]:
                counts[i] = evts[i]
                evts[i] = 0
        return procs, counts
