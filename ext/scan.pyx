# cython: language_level=3, boundscheck=False, wraparound=False
"""Batch scanner: walk the records of a batch, pick the few that Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when checks are set, its thread and its fd pass them.
SEL_EXACT says every check gave a definite answer, so a filter made only of such checks needs no
second look in Python. Everything else is counted and skipped in C, never becoming a Python object.

The commonest state events (close and the opens: ``fast_mask``) are applied right here, without an
Event, unless an earlier record of the batch waits for Python, which will read the state as of its
own time: after a filter candidate or a deferred fd event of a process, that process's fd events
wait their turn (selected with SEL_FAST, for ``Scanner.apply``); after any other state event,
every one does. An fd event makes only that fd's cached fd_check answer unsure, not the process's.
"""

from cpython.array cimport array, resize_smart
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from array import array as _array

DEF REC_FIXED = 88
DEF ARGS_OFF = 32
SEL_STATE = 1
SEL_MATCH = 2
SEL_EXACT = 4
FD_RET = 6  # fd_regs value: the event's fd is its return value
FD_NONE = 255  # fd_regs value: the event has no fd
# fast_mask values: how the scanner itself applies the event to the state.
FAST_CLOSE = 1  # close(fd=arg0) returning 0
FAST_OPEN_A1 = 2  # open-like returning an fd; path in segment 0, flags in arg1
FAST_OPEN_A2 = 3  # flags in arg2 (openat)
FAST_OPEN_SEG1 = 4  # flags in segment 1's first 8 bytes (openat2's open_how)
FAST_CREAT = 5  # flags O_CREAT|O_WRONLY|O_TRUNC
SEL_FAST = 8  # with SEL_STATE: a fast-mask event for Python to apply, in order, with Scanner.apply
# With ``runs_below`` set: exact matches of one thread, back to back, as one entry (the offset of the
# last record, that of the first, and SEL_RUN | records << RUN_COUNT_SHIFT | bytes << RUN_BYTES_SHIFT).
SEL_RUN = 16
RUN_COUNT_SHIFT = 8
RUN_BYTES_SHIFT = 32
DEF REC_L0 = 80
DEF C_SEL_FAST = 8
DEF C_SEL_RUN = 16
DEF REC_FLAGS = 84
DEF RF_HIDDEN = 8
DEF O_CREAT_WRONLY_TRUNC = 0o1101


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


cdef inline bint _absolute_open(const uint8_t *rec, uint32_t length) noexcept:
    """An open that returned an fd, of an absolute path: applying it needs no other state."""
    cdef int64_t ret
    cdef uint16_t l0, l1
    memcpy(&ret, rec + 24, 8)
    memcpy(&l0, rec + REC_L0, 2)
    memcpy(&l1, rec + REC_L0 + 2, 2)
    return 0 <= ret <= 0x7FFFFFFF and l0 > 0 and REC_FIXED + <uint32_t>l0 + l1 <= length and rec[REC_FIXED] == 0x2F


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
    cdef bytes _fmask
    cdef object _fast
    cdef dict _fast_fds
    cdef dict _pending  # (pid << 32 | fd) -> offset of an open not applied yet
    cdef const uint8_t *_pbase  # the batch being scanned
    cdef public bint fast_on
    cdef public bint exact_fd_only
    cdef public uint64_t fast_applied
    cdef public uint32_t runs_below
    cdef public bytes stateless_mask

    def __init__(self, state_mask, match_mask, tid_check=None, fd_check=None, fd_regs=None,
                 fast_mask=None, fast=None):
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
        # ``fast``: the state (its ``fds`` dict and ``open_raw(pid, tid, num, path, flags, dirfd)``).
        self._fmask = bytes(fast_mask) if fast_mask is not None and fast is not None else b""
        self._fast = fast
        self._fast_fds = fast.fds if fast is not None else {}  # kept in place by the state
        self._pending = {}
        self.fast_on = bool(self._fmask)
        # Exact matches are consumed reading only their own fd and thread (a table chisel's
        # record counter), so fd events of the process's other fds need not wait for them.
        self.exact_fd_only = False
        self.fast_applied = 0
        # Non-zero: exact matches of events below this id, not hidden, are selected in runs
        # (SEL_RUN), for a consumer that only counts or copies them.
        self.runs_below = 0
        # Event ids (non-zero bytes) whose exact matches the consumer takes without the state
        # (counted by event and result): a fast event may be one, and nothing waits for them.
        self.stateless_mask = b""

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
        cdef const uint8_t *fmask = <const uint8_t *><char *>self._fmask
        cdef Py_ssize_t nfmask = len(self._fmask) if self.fast_on else 0
        cdef bint blocked = False  # a state event waits for Python: no more fast ones this batch
        cdef set waiting_pids = set()  # processes with a filter candidate waiting for Python
        cdef set dirty_fds = set()  # (pid << 32 | fd) of fd events waiting for Python
        cdef set waiting_fds = set()  # (pid << 32 | fd) read by exact matches waiting for Python
        cdef uint8_t code
        cdef rec_head nxt
        cdef uint64_t fdkey = 0
        cdef int32_t fdnum
        cdef uint32_t runs_below = self.runs_below
        cdef uint32_t rflags
        cdef bint runnable, statefree
        cdef const uint8_t *slmask = <const uint8_t *><char *>self.stateless_mask
        cdef Py_ssize_t nslmask = len(self.stateless_mask)
        cdef bint run_open = False
        cdef uint32_t run_tid = 0
        cdef Py_ssize_t run_end = 0
        if end == 0:
            return sel, 0
        base = &view[0]
        self._pbase = base
        while off < end:
            if end - off < REC_FIXED:
                self._flush()
                raise BatchError(f"truncated record at byte {off}", off)
            memcpy(&h, base + off, sizeof(rec_head))
            if h.length < REC_FIXED or (h.length & 7) or off + h.length > end:
                self._flush()
                raise BatchError(f"bad record length {h.length} at byte {off}", off)
            if n == 0:
                self.first_ts = h.ts
            self.last_ts = h.ts
            why = 0
            code = fmask[h.evt] if h.evt < nfmask else 0
            if code and off + h.length + REC_FIXED <= end:
                # Facts live mode inserted right after an event (a state record of the same thread)
                # are applied before the event is judged: such an event takes the full path.
                memcpy(&nxt, base + off + h.length, sizeof(rec_head))
                if nxt.tid == h.tid and nxt.evt < nsmask and smask[nxt.evt]:
                    code = 0
            if h.evt < nsmask and smask[h.evt]:
                why = 1
                if code:
                    # An fd event changes that one fd: only its cached answer goes.
                    fdnum = self._fast_fd(base + off, code)
                    fdkey = (<uint64_t>h.pid << 32) | <uint32_t>fdnum
                    if has_fcheck:
                        table = self._fds.get(h.pid)
                        if table is not None:
                            table.pop(fdnum, None)
                else:
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
                    elif reg >= 6 or (code and why & 1):
                        exact = 0  # a fd event is judged after it changed its fd
                    else:
                        memcpy(&fd, base + off + ARGS_OFF + 8 * reg, 4)
                        r = self._fd_ok(h.pid, fd, dirty_pids, dirty_fds)
                        if r < 0:
                            exact = 0
                        else:
                            ok = r
                if ok:
                    why |= 2 | (4 if exact else 0)
            # An exact match of a syscall only counted or copied (runs_below): Python never looks
            # at the state for it, so nothing need wait for it and a fast event may be one.
            runnable = False
            if runs_below and why & 6 == 6 and h.evt < runs_below:
                memcpy(&rflags, base + off + REC_FLAGS, 4)
                runnable = not rflags & RF_HIDDEN
            statefree = why & 6 == 6 and h.evt < nslmask and slmask[h.evt]
            if code and why & 1:
                if (why == 1 or (why == 7 and (runnable or statefree))) and not blocked \
                        and (not waiting_pids or h.pid not in waiting_pids) \
                        and (not waiting_fds or fdkey not in waiting_fds):
                    if code == FAST_CLOSE:
                        if self._pending and self._pending.pop(fdkey, None) is not None:
                            # An open nobody has looked at: never mind it, but for the table it made.
                            self._fast_fds.setdefault(h.pid, {})
                        self._apply_fast(base + off, h.pid, h.tid, h.length, code)
                    elif _absolute_open(base + off, h.length):
                        # Kept pending: applied when anything may look (a callback, a selected
                        # record, the batch's end), or forgotten with its close.
                        if fdkey in self._pending:
                            self._flush()
                        self._pending[fdkey] = off
                    else:
                        self._flush()  # a relative path may name a pending open's directory
                        self._apply_fast(base + off, h.pid, h.tid, h.length, code)
                    why = 6 if why == 7 else 0  # a matched one is still counted or copied
                    self.fast_applied += 1
                else:
                    dirty_fds.add(fdkey)  # Python applies it in stream order; until then the fd is unsure
                    if why == 1:
                        why |= C_SEL_FAST
            if why and nfmask:
                # Fd events touch their own process's table only; others (clone, exec, thread
                # info...) may read or drop any process's: nothing may pass them.
                if why & 1 and not code:
                    blocked = True
                elif why == 6 and (runnable or statefree):
                    pass
                elif why == 6 and self.exact_fd_only:
                    # An exact match whose consumer reads only its own fd (and thread): only
                    # that fd must keep still.
                    reg = regs[h.evt]
                    if reg < 6:
                        memcpy(&fd, base + off + ARGS_OFF + 8 * reg, 4)
                        waiting_fds.add((<uint64_t>h.pid << 32) | <uint32_t>fd)
                    elif reg == FD_RET:
                        memcpy(&fd, base + off + 24, 4)
                        waiting_fds.add((<uint64_t>h.pid << 32) | <uint32_t>fd)
                else:
                    waiting_pids.add(h.pid)
            if why == 6 and runnable:
                if run_open and h.tid == run_tid and off == run_end:
                    out = <uint64_t *>sel.data.as_voidptr
                    out[nsel - 3] = off
                    out[nsel - 1] += (<uint64_t>1 << RUN_COUNT_SHIFT) + (<uint64_t>h.length << RUN_BYTES_SHIFT)
                    why = 0  # joined the run
                else:
                    why = C_SEL_RUN
                run_open = True
                run_tid = h.tid
                run_end = off + h.length
            elif why:
                run_open = False
                if self._pending:
                    self._flush()  # Python will see this record's state: the opens before it too
            if why:
                if nsel + 3 > len(sel):
                    resize_smart(sel, nsel + 3)
                out = <uint64_t *>sel.data.as_voidptr
                out[nsel] = n
                out[nsel + 1] = off
                out[nsel + 2] = why
                if why == C_SEL_RUN:
                    out[nsel] = off
                    out[nsel + 2] = C_SEL_RUN | (<uint64_t>1 << RUN_COUNT_SHIFT) | (<uint64_t>h.length << RUN_BYTES_SHIFT)
                nsel += 3
            off += h.length
            n += 1
        self._flush()
        resize_smart(sel, nsel)
        return sel, n

    cdef int32_t _fast_fd(self, const uint8_t *rec, uint8_t code) noexcept:
        """The fd a fast-mask event changes: close's argument, or the fd an open returned."""
        cdef int32_t fd
        memcpy(&fd, rec + (ARGS_OFF if code == FAST_CLOSE else 24), 4)
        return fd

    cdef int _apply_fast(self, const uint8_t *rec, uint32_t pid, uint32_t tid, uint32_t length,
                         uint8_t code) except -1:
        """Apply a fast-mask event to the state."""
        cdef int64_t ret
        cdef uint16_t l0, l1
        cdef int32_t fd
        cdef uint64_t flags = 0
        memcpy(&ret, rec + 24, 8)
        if code == FAST_CLOSE:
            if ret == 0:
                table = self._fast_fds.get(pid)
                if table:
                    memcpy(&fd, rec + ARGS_OFF, 4)
                    table.pop(fd, None)
            return 0
        if ret < 0 or ret > 0x7FFFFFFF:
            return 0  # a failed open changes nothing
        memcpy(&l0, rec + REC_L0, 2)
        memcpy(&l1, rec + REC_L0 + 2, 2)
        if REC_FIXED + <uint32_t>l0 + l1 > length:
            l0 = l1 = 0
        dirfd = None
        if code == FAST_OPEN_A1:
            memcpy(&flags, rec + ARGS_OFF + 8, 8)
        elif code == FAST_OPEN_A2:
            memcpy(&flags, rec + ARGS_OFF + 16, 8)
        elif code == FAST_OPEN_SEG1:
            memcpy(&flags, rec + REC_FIXED + l0, 8 if l1 >= 8 else l1)
        else:
            flags = O_CREAT_WRONLY_TRUNC
        if code == FAST_OPEN_A2 or code == FAST_OPEN_SEG1:
            memcpy(&fd, rec + ARGS_OFF, 4)
            dirfd = fd
        self._fast.open_raw(pid, tid, <int>ret, (<const char *>rec + REC_FIXED)[:l0], flags, dirfd)
        return 0

    cdef int _flush(self) except -1:
        """Apply the pending opens, in stream order."""
        cdef rec_head h
        cdef const uint8_t *fmask = <const uint8_t *><char *>self._fmask
        if not self._pending:
            return 0
        offsets = list(self._pending.values())
        self._pending.clear()
        for o in offsets:
            memcpy(&h, self._pbase + <Py_ssize_t>o, sizeof(rec_head))
            self._apply_fast(self._pbase + <Py_ssize_t>o, h.pid, h.tid, h.length, fmask[h.evt])
        return 0

    def apply(self, batch, Py_ssize_t off):
        """Apply the fast-mask event at ``off`` (selected with SEL_FAST) to the state."""
        cdef const uint8_t[:] view = batch
        cdef rec_head h
        if off < 0 or off + REC_FIXED > view.shape[0]:
            raise ValueError("no record at this offset")
        memcpy(&h, &view[off], sizeof(rec_head))
        if h.length < REC_FIXED or off + h.length > view.shape[0] or h.evt >= len(self._fmask) \
                or not self._fmask[h.evt]:
            raise ValueError("not a fast-path record")
        self._apply_fast(&view[off], h.pid, h.tid, h.length, self._fmask[h.evt])

    cdef int _thread_ok(self, uint32_t tid, set dirty):
        """1 yes, 0 no (both cacheable), -1 unknown or dirty (select, do not cache)."""
        if tid in dirty:
            return -1
        cached = self._tids.get(tid)
        if cached is None:
            if self._pending:
                self._flush()
            cached = self.tid_check(tid)
            if cached is None:
                return -1
            self._tids[tid] = bool(cached)
        return 1 if cached else 0

    cdef int _fd_ok(self, uint32_t pid, int32_t fd, set dirty, set dirty_fds):
        """Like _thread_ok, for the fd ``fd`` of process ``pid``."""
        if pid in dirty or (dirty_fds and ((<uint64_t>pid << 32) | <uint32_t>fd) in dirty_fds):
            return -1
        table = self._fds.get(pid)
        if table is None:
            table = self._fds[pid] = {}
        cached = table.get(fd)
        if cached is None:
            if self._pending:
                self._flush()
            cached = self.fd_check(pid, fd)
            if cached is None:
                return -1
            table[fd] = bool(cached)
        return 1 if cached else 0
