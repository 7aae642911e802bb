# cython: language_level=3, boundscheck=False, wraparound=False
"""The state lane: the state events of a selection applied in one call, without the pipeline's
per-event work (twin: tracer/_pure/statelane.py, which says what each record gets).
"""

from cpython.array cimport array
from cpython.object cimport Py_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

cimport cython

include "record.pxi"

__all__ = ["StateLane"]

cdef enum:
    FAST = SEL_STATE | SEL_FAST


@cython.final
cdef class StateLane:
    """Applies state events to ``state`` (a State) straight from a scanner's selection."""

    cdef object _state
    cdef object _event
    cdef object _fast_apply
    cdef object _apply_raw
    cdef object _apply
    cdef bytes _raw
    cdef bytes _leave

    def __init__(self, state, event_cls, fast_apply, raw_mask, leave_mask):
        self._state = state
        self._event = event_cls
        self._fast_apply = fast_apply
        self._apply_raw = state.apply_raw
        self._apply = state.apply
        self._raw = bytes(raw_mask)
        self._leave = bytes(leave_mask)

    def run(self, bytes batch not None, sel, Py_ssize_t i, uint64_t num_base, set early not None):
        """Apply the state-only entries of ``sel`` from triple ``i`` on (skipping the triples in
        ``early``: applied already); return the first triple it left."""
        cdef array sarr = sel
        cdef const uint64_t *s
        cdef Py_ssize_t n = Py_SIZE(sarr)
        cdef uint64_t why
        if sarr.ob_descr.typecode != b"Q":
            raise TypeError("the selection must be an array('Q')")
        s = <const uint64_t *>sarr.data.as_voidptr
        while i < n:
            why = s[i + 2]
            if why == FAST:
                self._fast_apply(batch, <Py_ssize_t>s[i + 1])
            elif why != SEL_STATE:
                break
            elif (not early or i not in early) and self._one(batch, <Py_ssize_t>s[i + 1], num_base + s[i]) is False:
                break
            i += 3
        return i

    def apply(self, bytes batch not None, Py_ssize_t off, uint64_t num):
        """Apply the state event at ``off`` (evt.num ``num``); return its Event if one was made, or
        False if the event is one it leaves."""
        if off < 0 or off + REC_FIXED > PyBytes_GET_SIZE(batch):
            raise ValueError("no record at this offset")
        return self._one(batch, off, num)

    cdef object _one(self, bytes batch, Py_ssize_t off, uint64_t num):
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(batch) + off
        cdef rec_fixed f
        cdef Py_ssize_t l0, l1
        memcpy(&f, p, sizeof(rec_fixed))
        if f.evt < PyBytes_GET_SIZE(self._leave) and (<const uint8_t *>PyBytes_AS_STRING(self._leave))[f.evt]:
            return False
        if not f.flags & RF_PPM and (f.evt < EVT_BASE_OTHER and not f.evt & 1
                                     or f.evt < PyBytes_GET_SIZE(self._raw)
                                     and (<const uint8_t *>PyBytes_AS_STRING(self._raw))[f.evt]):
            # Cut at the batch's end, as Event's slices are.
            l0 = min(<Py_ssize_t>f.l0, max(PyBytes_GET_SIZE(batch) - off - REC_FIXED, 0))
            l1 = min(<Py_ssize_t>f.l1, PyBytes_GET_SIZE(batch) - off - REC_FIXED - l0)
            self._apply_raw(f.evt, f.tid, f.pid, f.ts, f.ret,
                            (f.args[0], f.args[1], f.args[2], f.args[3], f.args[4], f.args[5]),
                            PyBytes_FromStringAndSize(<const char *>p + REC_FIXED, l0),
                            PyBytes_FromStringAndSize(<const char *>p + REC_FIXED + l0, l1))
            return None
        ev = self._event(batch, off, num, self._state)
        self._apply(ev)
        return ev
