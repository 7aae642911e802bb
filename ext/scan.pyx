# cython: language_level=3, boundscheck=False, wraparound=False
"""Batch scanner: walk the records of a batch, pick the few that Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when checks are set, its thread and its fd pass them.
SEL_EXACT says every check gave a definite answer, so a filter made only of such checks needs no
second look in Python. Everything else is counted and skipped in C, never becoming a Python object.

The commonest state events (close, the opens and the dups: ``fast_mask``) are applied right here,
without an Event, unless an earlier record of the batch waits for Python, which will read the state
as of its own time: after a filter candidate or a deferred fd event of a process, that process's fd
events wait their turn (selected with SEL_FAST, for ``Scanner.apply``); after any other state event
but a syscall enter (only remembered for its exit), every one does. An fd event makes only that
fd's cached fd_check answer unsure, not the process's. A waiting fd event that is also an exact
match needing no state (passable) is selected twice: its state part with SEL_FAST, its match on its
own.
"""

from cpython.array cimport array, resize_smart
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cimport cython

from array import array as _array

include "record.pxi"

__all__ = ["BatchError", "Scanner"]

cdef enum:
    MATCHED = SEL_MATCH | SEL_EXACT  # an exact match: no second look needed
    SPLIT = SEL_STATE | SEL_FAST | MATCHED  # _fast_path: a passable match whose fd event must wait
    O_CREAT_WRONLY_TRUNC = 0o1101
    O_CLOEXEC = 0o2000000


class BatchError(ValueError):
    """A record whose length field cannot be right; ``offset`` is where the walk stopped."""

    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


cdef inline bint _absolute_open(const uint8_t *rec, uint32_t length) noexcept:
    """An open that returned an fd, of an absolute path: applying it needs no other state."""
    cdef int64_t ret
    cdef uint16_t l0, l1
    memcpy(&ret, rec + OFF_RET, 8)
    memcpy(&l0, rec + OFF_L0, 2)
    memcpy(&l1, rec + OFF_L1, 2)
    return 0 <= ret <= 0x7FFFFFFF and l0 > 0 and REC_FIXED + <uint32_t>l0 + l1 <= length and rec[REC_FIXED] == 0x2F


cdef inline int32_t _fast_fd(const uint8_t *rec, uint8_t code) noexcept:
    """The fd a fast-mask event changes: close's argument, or the fd an open or a dup returned."""
    cdef int32_t fd
    memcpy(&fd, rec + (OFF_ARGS if code == FAST_CLOSE else OFF_RET), 4)
    return fd


cdef inline bint _enter(uint16_t evt) noexcept:
    """A syscall enter: the state only remembers it for its exit (State.note_enter)."""
    return evt < EVT_BASE_OTHER and not evt & 1


cdef inline uint64_t _fd_key(uint32_t pid, int32_t fd) noexcept:
    return (<uint64_t>pid << 32) | <uint32_t>fd


@cython.final
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
    cdef bytes _fmask
    cdef public object tid_check
    cdef public object fd_check
    cdef dict _tids
    cdef dict _fds
    cdef public uint64_t first_ts
    cdef public uint64_t last_ts
    cdef object _fast
    cdef dict _fast_fds
    cdef dict _pending  # (pid << 32 | fd) -> offset of an open not applied yet
    cdef public bint fast_on
    cdef public bint exact_fd_only
    cdef public uint64_t fast_applied
    cdef public uint32_t runs_below
    cdef public bytes stateless_mask
    # The batch being scanned, and what its records so far left for the later ones (set by scan).
    cdef const uint8_t *_pbase
    cdef Py_ssize_t _end
    cdef Py_ssize_t _nfmask  # 0 when the fast path is off
    cdef bint _has_tcheck
    cdef bint _has_fcheck
    cdef array _sel
    cdef Py_ssize_t _nsel
    cdef set _dirty_tids  # threads whose state changed: not narrowed for the rest of the batch
    cdef set _dirty_pids  # processes likewise, for the fd check
    cdef set _dirty_fds  # (pid << 32 | fd) of fd events waiting for Python
    cdef set _waiting_pids  # processes with a filter candidate waiting for Python
    cdef set _waiting_fds  # (pid << 32 | fd) read by exact matches waiting for Python
    cdef uint64_t _added[16]  # fd keys put in _waiting_fds lately (a set add per record costs)
    cdef uint32_t _added_ok  # which of them are set
    cdef bint _blocked  # a state event waits for Python: no more fast ones this batch
    cdef bint _have_last  # the last thread check's answer (any tid is possible: no sentinel)
    cdef uint32_t _last_tid
    cdef int _last_ok
    cdef bint _run_open  # the last selection entry is a run that the next record may extend
    cdef uint32_t _run_tid
    cdef Py_ssize_t _run_end

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
        # ``fast``: the state (its ``fds`` dict, ``open_raw(pid, tid, num, path, flags, dirfd)`` and
        # ``dup_raw(pid, old, new, cloexec)``).
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
        cdef Py_ssize_t off = 0
        cdef uint64_t n = 0
        cdef rec_head h
        cdef const uint8_t *smask = <const uint8_t *><char *>self._smask
        cdef const uint8_t *mmask = <const uint8_t *><char *>self._mmask
        cdef Py_ssize_t nsmask = len(self._smask)
        cdef Py_ssize_t nmask = len(self._mmask)
        cdef int why
        cdef uint8_t code
        cdef uint64_t fdkey
        cdef bint runnable, passable
        cdef const uint8_t *slmask = <const uint8_t *><char *>self.stateless_mask
        cdef Py_ssize_t nslmask = len(self.stateless_mask)
        self._sel = _array("Q")
        self._nsel = 0
        if view.shape[0] == 0:
            return self._sel, 0
        self._begin(&view[0], view.shape[0])
        while off < self._end:
            self._read_head(off, &h)
            if n == 0:
                self.first_ts = h.ts
            self.last_ts = h.ts
            code = self._fast_code(off, &h)
            why = 0
            fdkey = 0
            if h.evt < nsmask and smask[h.evt]:
                why = SEL_STATE
                fdkey = self._state_changes(self._pbase + off, &h, code)
            if h.evt < nmask and mmask[h.evt]:
                why |= self._match(self._pbase + off, &h, code != 0 and why == SEL_STATE)
            if why:
                runnable = self._runnable(self._pbase + off, &h, why)
                # Nothing waits for a record Python takes in a run or without the state.
                passable = runnable or (why & MATCHED == MATCHED and h.evt < nslmask and slmask[h.evt])
                if code and why & SEL_STATE:
                    why = self._fast_path(off, &h, code, fdkey, why, passable)
                    if why == SPLIT:
                        # Its state part waits its turn; its match, which needs no state, is
                        # taken on its own (a second entry for the same record).
                        self._hold(self._pbase + off, &h, code, SEL_STATE | SEL_FAST, passable)
                        self._select(n, off, &h, SEL_STATE | SEL_FAST, False)
                        why = MATCHED
                if why and self._nfmask:
                    self._hold(self._pbase + off, &h, code, why, passable)
                if why:
                    self._select(n, off, &h, why, runnable)
            off += h.length
            n += 1
        self._flush()
        resize_smart(self._sel, self._nsel)
        return self._sel, n

    cdef void _begin(self, const uint8_t *base, Py_ssize_t end) noexcept:
        """Start a batch: nothing in it waits for Python yet."""
        self._pbase = base
        self._end = end
        self._nfmask = len(self._fmask) if self.fast_on else 0
        self._has_tcheck = self.tid_check is not None
        self._has_fcheck = self.fd_check is not None
        self._dirty_tids = set()
        self._dirty_pids = set()
        self._dirty_fds = set()
        self._waiting_pids = set()
        self._waiting_fds = set()
        self._added_ok = 0
        self._blocked = False
        self._have_last = False
        self._run_open = False

    cdef inline int _read_head(self, Py_ssize_t off, rec_head *h) except -1:
        """The head of the record at ``off``, whose length must be right (BatchError if not)."""
        if self._end - off < REC_FIXED:
            self._flush()
            raise BatchError(f"truncated record at byte {off}", off)
        memcpy(h, self._pbase + off, sizeof(rec_head))
        if h.length < REC_FIXED or (h.length & (REC_ALIGN - 1)) or off + h.length > self._end:
            self._flush()
            raise BatchError(f"bad record length {h.length} at byte {off}", off)
        return 0

    cdef inline uint8_t _fast_code(self, Py_ssize_t off, const rec_head *h) noexcept:
        """How the scanner may apply the event itself (fast_mask), 0 if it may not."""
        cdef rec_head nxt
        cdef const uint8_t *smask = <const uint8_t *><char *>self._smask
        cdef uint8_t code = (<const uint8_t *><char *>self._fmask)[h.evt] if h.evt < self._nfmask else 0
        if code and off + h.length + REC_FIXED <= self._end:
            # Facts live mode inserted right after an event (a state record of the same thread)
            # are applied before the event is judged: such an event takes the full path.
            memcpy(&nxt, self._pbase + off + h.length, sizeof(rec_head))
            if nxt.tid == h.tid and nxt.evt < len(self._smask) and smask[nxt.evt]:
                return 0
        return code

    cdef inline uint64_t _state_changes(self, const uint8_t *rec, const rec_head *h, uint8_t code):
        """A state event: forget the answers it may change. Returns an fd event's fd key."""
        cdef int32_t fd
        if code:
            # An fd event changes that one fd: only its cached answer goes.
            fd = _fast_fd(rec, code)
            if self._has_fcheck:
                table = self._fds.get(h.pid)
                if table is not None:
                    table.pop(fd, None)
            return _fd_key(h.pid, fd)
        if self._has_tcheck:
            self._tids.pop(h.tid, None)
            self._dirty_tids.add(h.tid)
            self._have_last = False
        if self._has_fcheck:
            self._fds.pop(h.pid, None)
            self._dirty_pids.add(h.pid)
        return 0

    cdef inline int _match(self, const uint8_t *rec, const rec_head *h, bint changes_its_fd) except -1:
        """A filter candidate by event id, narrowed by the checks: SEL_MATCH | SEL_EXACT when they
        all pass for sure, SEL_MATCH when one cannot tell yet, 0 when one fails."""
        cdef int ok = 1
        cdef int exact = 1
        cdef int r
        cdef uint8_t reg
        cdef int32_t fd
        if self._has_tcheck:
            if self._have_last and h.tid == self._last_tid:
                ok = self._last_ok
            else:
                r = self._thread_ok(h.tid)
                if r < 0:
                    exact = 0
                else:
                    ok = r
                    self._last_tid = h.tid
                    self._have_last = True
                    self._last_ok = r
        if ok and self._has_fcheck:
            reg = (<const uint8_t *><char *>self._regs)[h.evt]
            if reg == FD_NONE:
                ok = 0
            elif reg >= REC_NARGS or changes_its_fd:
                exact = 0  # the fd is known only after the state sees the event
            else:
                memcpy(&fd, rec + OFF_ARGS + 8 * reg, 4)
                r = self._fd_ok(h.pid, fd)
                if r < 0:
                    exact = 0
                else:
                    ok = r
        if not ok:
            return 0
        return MATCHED if exact else SEL_MATCH

    cdef inline bint _runnable(self, const uint8_t *rec, const rec_head *h, int why) noexcept:
        """An exact match of a syscall only counted or copied (runs_below): Python never looks at
        the state for it, so nothing need wait for it and a fast event may be one."""
        cdef uint32_t flags
        if not self.runs_below or why & MATCHED != MATCHED or h.evt >= self.runs_below:
            return False
        memcpy(&flags, rec + OFF_FLAGS, 4)
        return not flags & RF_HIDDEN

    cdef inline int _fast_path(self, Py_ssize_t off, const rec_head *h, uint8_t code, uint64_t fdkey, int why,
                        bint passable) except -1:
        """An fd event: applied now unless something before it waits for Python (which will read the
        state as of its own time); else its turn comes in Python (SEL_FAST). Returns what is left
        of ``why``."""
        if (why == SEL_STATE or (why == SEL_STATE | MATCHED and passable)) and not self._blocked \
                and (not self._waiting_pids or h.pid not in self._waiting_pids) \
                and (not self._waiting_fds or fdkey not in self._waiting_fds):
            # (A dup also reads its source fd: a change of that fd waiting for Python has put its
            # process in _waiting_pids.)
            self._apply_now(off, h, code, fdkey)
            self.fast_applied += 1
            return why & MATCHED  # a matched one is still counted or copied
        self._dirty_fds.add(fdkey)  # Python applies it in stream order; until then the fd is unsure
        if why == SEL_STATE:
            return why | SEL_FAST
        return SPLIT if why == SEL_STATE | MATCHED and passable else why

    cdef int _apply_now(self, Py_ssize_t off, const rec_head *h, uint8_t code, uint64_t fdkey) except -1:
        """Apply an fd event, or keep an open pending: applied when anything may look (a callback, a
        selected record, the batch's end), or forgotten with its close."""
        cdef const uint8_t *rec = self._pbase + off
        if code == FAST_CLOSE:
            if self._pending and self._pending.pop(fdkey, None) is not None:
                # An open nobody has looked at: never mind it, but for the table it made.
                self._fast_fds.setdefault(h.pid, {})
            self._apply_fast(rec, h.pid, h.tid, h.length, code)
        elif _absolute_open(rec, h.length):
            if fdkey in self._pending:
                self._flush()
            self._pending[fdkey] = off
        else:
            self._flush()  # a relative path may name a pending open's directory
            self._apply_fast(rec, h.pid, h.tid, h.length, code)
        return 0

    cdef inline int _hold(self, const uint8_t *rec, const rec_head *h, uint8_t code, int why, bint passable) except -1:
        """A selected record waits for Python: what the later fast events must wait for. Fd events
        touch their own process's table only; others (clone, exec, thread info...) may read or
        drop any process's: nothing may pass them."""
        cdef uint8_t reg
        cdef int32_t fd
        if why & SEL_STATE and not code:
            if not _enter(h.evt):
                self._blocked = True
                return 0
            why &= ~SEL_STATE  # an enter is only remembered for its exit: what may wait is its match
            if not why:
                return 0
        if why == MATCHED and passable:
            pass
        elif why == MATCHED and self.exact_fd_only:
            # An exact match whose consumer reads only its own fd (and thread): only that fd must
            # keep still.
            reg = (<const uint8_t *><char *>self._regs)[h.evt]
            if reg < REC_NARGS:
                memcpy(&fd, rec + OFF_ARGS + 8 * reg, 4)
                self._wait_for(_fd_key(h.pid, fd))
            elif reg == FD_RET:
                memcpy(&fd, rec + OFF_RET, 4)
                self._wait_for(_fd_key(h.pid, fd))
        else:
            self._waiting_pids.add(h.pid)
        return 0

    cdef inline int _wait_for(self, uint64_t fdkey) except -1:
        """Add an fd key to _waiting_fds, unless it went in lately (nothing leaves the set during
        a batch)."""
        cdef Py_ssize_t k = <Py_ssize_t>(((fdkey * 0x9E3779B97F4A7C15ULL) >> 60) & 15)
        if not (self._added_ok >> k) & 1 or self._added[k] != fdkey:
            self._waiting_fds.add(fdkey)
            self._added[k] = fdkey
            self._added_ok |= 1u << k
        return 0

    cdef inline int _select(self, uint64_t n, Py_ssize_t off, const rec_head *h, int why, bint runnable) except -1:
        """Add the record to the selection: on its own, or to the run it extends."""
        cdef uint64_t *out
        if why == MATCHED and runnable:
            if self._run_open and h.tid == self._run_tid and off == self._run_end:
                out = <uint64_t *>self._sel.data.as_voidptr
                out[self._nsel - 3] = off
                out[self._nsel - 1] += (<uint64_t>1 << RUN_COUNT_SHIFT) + (<uint64_t>h.length << RUN_BYTES_SHIFT)
            else:
                self._emit(off, off, SEL_RUN | (<uint64_t>1 << RUN_COUNT_SHIFT)
                           | (<uint64_t>h.length << RUN_BYTES_SHIFT))
            self._run_open = True
            self._run_tid = h.tid
            self._run_end = off + h.length
            return 0
        self._run_open = False
        if self._pending:
            self._flush()  # Python will see this record's state: the opens before it too
        self._emit(n, off, why)
        return 0

    cdef inline int _emit(self, uint64_t a, uint64_t b, uint64_t c) except -1:
        cdef uint64_t *out
        if self._nsel + 3 > len(self._sel):
            resize_smart(self._sel, self._nsel + 3)
        out = <uint64_t *>self._sel.data.as_voidptr
        out[self._nsel] = a
        out[self._nsel + 1] = b
        out[self._nsel + 2] = c
        self._nsel += 3
        return 0

    cdef int _apply_fast(self, const uint8_t *rec, uint32_t pid, uint32_t tid, uint32_t length,
                         uint8_t code) except -1:
        """Apply a fast-mask event to the state."""
        cdef int64_t ret
        cdef uint16_t l0, l1
        cdef int32_t fd
        cdef uint64_t flags = 0
        memcpy(&ret, rec + OFF_RET, 8)
        if code == FAST_CLOSE:
            if ret == 0:
                table = self._fast_fds.get(pid)
                if table:
                    table.pop(_fast_fd(rec, code), None)
            return 0
        if ret < 0 or ret > 0x7FFFFFFF:
            return 0  # a failed open or dup changes nothing
        if code >= FAST_DUP:
            if code == FAST_DUP3:
                memcpy(&flags, rec + OFF_ARGS + 16, 8)
            self._fast.dup_raw(pid, _fast_fd(rec, FAST_CLOSE), <int>ret, bool(flags & O_CLOEXEC))
            return 0
        memcpy(&l0, rec + OFF_L0, 2)
        memcpy(&l1, rec + OFF_L1, 2)
        if REC_FIXED + <uint32_t>l0 + l1 > length:
            l0 = l1 = 0
        dirfd = None
        if code == FAST_OPEN_A1:
            memcpy(&flags, rec + OFF_ARGS + 8, 8)
        elif code == FAST_OPEN_A2:
            memcpy(&flags, rec + OFF_ARGS + 16, 8)
        elif code == FAST_OPEN_SEG1:
            memcpy(&flags, rec + REC_FIXED + l0, 8 if l1 >= 8 else l1)
        else:
            flags = O_CREAT_WRONLY_TRUNC
        if code == FAST_OPEN_A2 or code == FAST_OPEN_SEG1:
            dirfd = _fast_fd(rec, FAST_CLOSE)
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

    cdef int _thread_ok(self, uint32_t tid):
        """1 yes, 0 no (both cacheable), -1 unknown or dirty (select, do not cache)."""
        if tid in self._dirty_tids:
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

    cdef int _fd_ok(self, uint32_t pid, int32_t fd):
        """Like _thread_ok, for the fd ``fd`` of process ``pid``."""
        if pid in self._dirty_pids or (self._dirty_fds and _fd_key(pid, fd) in self._dirty_fds):
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
