# cython: language_level=3, boundscheck=False, wraparound=False
"""Batch scanner: walk the records of a batch, pick the few that Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when checks are set, its thread and its fd pass them.
SEL_EXACT says every check gave a definite answer, so a filter made only of such checks needs no
second look in Python. Everything else is counted and skipped in C, never becoming a Python object.
"""

from cpython.array cimport array, resize_smart
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from array import array as _array

DEF REC_FIXED = 88
DEF ARGS_OFF = 32
SEL_STATE = 1
SEL_MATCH = 2
SEL_EXACT = 4
FD_RET = 6  # fd_regs value: the event's fd is its return value
FD_NONE = 255  # fd_regs value: the event has no fd


class BatchError(ValueError):
    """A record whose length field cannot be right; ``offset`` is where the walk stopped."""

    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


cdef packed struct rec_head:
    uint64_t ts
    uint32_t tid
    uint32_t pid
    uint16_t evt
    uint16_t cpu
    uint32_t length


cdef class Scanner:
    """Selects records of interest from batches.

    ``state_mask`` and ``match_mask`` are bytes indexed by event id (non-zero = yes).
    ``tid_check(tid) -> bool | None`` narrows SEL_MATCH by thread (e.g. proc.name), and
    ``fd_check(pid, fd) -> bool | None`` by the event's fd (e.g. fd.type), the fd being the argument
    register ``fd_regs[evt]`` names. True and False are cached until ``reset_tids()``; None (not known
    yet) is asked again. A thread or process whose state changes inside a batch is not narrowed for
    the rest of that batch, since its answers may change: Python's full filter decides for it.
    """

    cdef bytes _smask
    cdef bytes _mmask
    cdef bytes _regs
    cdef public object tid_check
    cdef public object fd_check
    cdef dict _tids
    cdef dict _fds
    cdef public uint64_t first_ts
    cdef public uint64_t last_ts

    def __init__(self, state_mask, match_mask, tid_check=None, fd_check=None, fd_regs=None):
        self._smask = bytes(state_mask)
        self._mmask = bytes(match_mask)
        self._regs = bytes(fd_regs) if fd_regs is not None else bytes([FD_NONE]) * len(self._mmask)
        if len(self._regs) < len(self._mmask):
            raise ValueError("fd_regs is shorter than match_mask")
        self.tid_check = tid_check
        self.fd_check = fd_check
        self._tids = {}
        self._fds = {}
        self.first_ts = 0
        self.last_ts = 0

    @property
    def state_mask(self):
        return self._smask

    @property
    def match_mask(self):
        return self._mmask

    @property
    def fd_regs(self):
        return self._regs

    def reset_tids(self):
        """Forget cached answers (a thread's name or container changed, tables were loaded)."""
        self._tids.clear()
        self._fds.clear()

    def scan(self, batch):
        """Return (selection, record count); selection holds (index, offset, why) triples."""
        cdef const uint8_t[:] view = batch
        cdef Py_ssize_t end = view.shape[0]
        cdef Py_ssize_t off = 0
        cdef uint64_t n = 0
        cdef rec_head h
        cdef const uint8_t *base
        cdef const uint8_t *smask = <const uint8_t *><char *>self._smask
        cdef const uint8_t *mmask = <const uint8_t *><char *>self._mmask
        cdef const uint8_t *regs = <const uint8_t *><char *>self._regs
        cdef Py_ssize_t nmask = len(self._mmask)
        cdef Py_ssize_t nsmask = len(self._smask)
        cdef bint has_tcheck = self.tid_check is not None
        cdef bint has_fcheck = self.fd_check is not None
        cdef int why, ok, exact, r
        cdef uint8_t reg
        cdef int32_t fd
        cdef uint32_t last_tid = 0
        cdef bint have_last = False  # any tid value is possible in a crafted capture: no sentinel
        cdef int last_ok = 0
        cdef set dirty_tids = set()
        cdef set dirty_pids = set()
        cdef array sel = _array("Q")
        cdef Py_ssize_t nsel = 0
        cdef uint64_t *out
        if end == 0:
            return sel, 0
        base = &view[0]
        while off < end:
            if end - off < REC_FIXED:
                raise BatchError(f"truncated record at byte {off}", off)
            memcpy(&h, base + off, sizeof(rec_head))
            if h.length < REC_FIXED or (h.length & 7) or off + h.length > end:
                raise BatchError(f"bad record length {h.length} at byte {off}", off)
            if n == 0:
                self.first_ts = h.ts
            self.last_ts = h.ts
            why = 0
            if h.evt < nsmask and smask[h.evt]:
                why = 1
                if has_tcheck:
                    self._tids.pop(h.tid, None)
                    dirty_tids.add(h.tid)
                    have_last = False
                if has_fcheck:
                    self._fds.pop(h.pid, None)
                    dirty_pids.add(h.pid)
            if h.evt < nmask and mmask[h.evt]:
                ok = 1
                exact = 1
                if has_tcheck:
                    if have_last and h.tid == last_tid:
                        ok = last_ok
                    else:
                        r = self._thread_ok(h.tid, dirty_tids)
                        if r < 0:
                            exact = 0
                        else:
                            ok = r
                            last_tid = h.tid
                            have_last = True
                            last_ok = r
                if ok and has_fcheck:
                    reg = regs[h.evt]
                    if reg == FD_NONE:
                        ok = 0
                    elif reg >= 6:
                        exact = 0
                    else:
                        memcpy(&fd, base + off + ARGS_OFF + 8 * reg, 4)
                        r = self._fd_ok(h.pid, fd, dirty_pids)
                        if r < 0:
                            exact = 0
                        else:
                            ok = r
                if ok:
                    why |= 2 | (4 if exact else 0)
            if why:
                if nsel + 3 > len(sel):
                    resize_smart(sel, nsel + 3)
                out = <uint64_t *>sel.data.as_voidptr
                out[nsel] = n
                out[nsel + 1] = off
                out[nsel + 2] = why
                nsel += 3
            off += h.length
            n += 1
        resize_smart(sel, nsel)
        return sel, n

    cdef int _thread_ok(self, uint32_t tid, set dirty):
        """1 yes, 0 no (both cacheable), -1 unknown or dirty (select, do not cache)."""
        if tid in dirty:
            return -1
        cached = self._tids.get(tid)
        if cached is None:
            cached = self.tid_check(tid)
            if cached is None:
                return -1
            self._tids[tid] = bool(cached)
        return 1 if cached else 0

    cdef int _fd_ok(self, uint32_t pid, int32_t fd, set dirty):
        """Like _thread_ok, for the fd ``fd`` of process ``pid``."""
        if pid in dirty:
            return -1
        table = self._fds.get(pid)
        if table is None:
            table = self._fds[pid] = {}
        cached = table.get(fd)
        if cached is None:
            cached = self.fd_check(pid, fd)
            if cached is None:
                return -1
            table[fd] = bool(cached)
        return 1 if cached else 0
