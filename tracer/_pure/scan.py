"""Batch scanner (pure-Python twin of ext/scan.pyx): walk the records of a batch, pick the few that
Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when checks are set, its thread and its fd pass them.
SEL_EXACT says every check gave a definite answer, so a filter made only of such checks needs no
second look in Python. Everything else is counted and skipped without becoming a Python object
(in the Cython engine).

The commonest state events (close, the opens and the dups: ``fast_mask``) are applied right here,
without an Event, unless an earlier record of the batch waits for Python, which will read the state
as of its own time: after a filter candidate or a deferred fd event of a process, that process's fd
events wait their turn (selected with SEL_FAST, for ``Scanner.apply``); after any other state event
but a syscall enter (only remembered for its exit), every one does. An fd event makes only that
fd's cached fd_check answer unsure, not the process's. A waiting fd event that is also an exact
match needing no state (passable) is selected twice: its state part with SEL_FAST, its match on its
own.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from typing import Any, Protocol

from ..schema.events import FD_NONE, FD_RET
from ..schema.record import (
    EVT_BASE_OTHER,
    FAST_CLOSE,
    FAST_DUP,
    FAST_DUP3,
    FAST_OPEN_A1,
    FAST_OPEN_A2,
    FAST_OPEN_SEG1,
    HEAD_FMT,
    OFF_ARGS,
    OFF_FLAGS,
    OFF_L0,
    OFF_RET,
    REC_ALIGN,
    REC_FIXED,
    REC_NARGS,
    RF_HIDDEN,
    RUN_BYTES_SHIFT,
    RUN_COUNT_SHIFT,
    SEL_EXACT,
    SEL_FAST,
    SEL_MATCH,
    SEL_RUN,
    SEL_STATE,
)

__all__ = ["BatchError", "Scanner"]

_MATCHED = SEL_MATCH | SEL_EXACT  # an exact match: no second look needed
_SPLIT = SEL_STATE | SEL_FAST | _MATCHED  # _fast_path: a passable match whose fd event must wait
_O_CREAT_WRONLY_TRUNC = 0o1101
_O_CLOEXEC = 0o2000000

_HEAD = struct.Struct(HEAD_FMT)
_ARG = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_LENS = struct.Struct("<HH")
_U32 = struct.Struct("<I")


class _FastState(Protocol):
    """What the scanner's fast path changes: the state's fd tables."""

    fds: dict[int, dict[int, Any]]

    def open_raw(self, pid: int, tid: int, num: int, path: bytes, flags: int, dirfd: int | None) -> None: ...

    def dup_raw(self, pid: int, old: int, new: int, cloexec: bool) -> None: ...


class BatchError(ValueError):
    """A record whose length field cannot be right; ``offset`` is where the walk stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class Scanner:
    """Selects records of interest from batches.

    ``state_mask`` and ``match_mask`` are bytes indexed by event id (non-zero = yes).
    ``tid_check(tid) -> bool | None`` narrows SEL_MATCH by thread (e.g. proc.name), and
    ``fd_check(pid, fd) -> bool | None`` by the event's fd (e.g. fd.type), the fd being the argument
    register ``fd_regs[evt]`` names. True and False are cached until ``reset_tids()``; None (not known
    yet) is asked again. A thread or process whose state changes inside a batch is not narrowed for
    the rest of that batch, since its answers may change: Python's full filter decides for it.
    """

    def __init__(self, state_mask: bytes, match_mask: bytes,
                 tid_check: Callable[[int], bool | None] | None = None,
                 fd_check: Callable[[int, int], bool | None] | None = None,
                 fd_regs: bytes | None = None, fast_mask: bytes | None = None,
                 fast: _FastState | None = None) -> None:
        self.state_mask = bytes(state_mask)
        self.match_mask = bytes(match_mask)
        self.tid_check = tid_check
        self.fd_check = fd_check
        self.fd_regs = bytes(fd_regs) if fd_regs is not None else bytes([FD_NONE]) * len(match_mask)
        if len(self.fd_regs) < len(self.match_mask):
            raise ValueError("fd_regs is shorter than match_mask")
        self._tids: dict[int, bool] = {}
        self._fds: dict[int, dict[int, bool]] = {}
        self.first_ts = 0
        self.last_ts = 0
        # ``fast``: the state (its ``fds`` dict, ``open_raw(pid, tid, num, path, flags, dirfd)`` and
        # ``dup_raw(pid, old, new, cloexec)``).
        self._fmask = bytes(fast_mask) if fast_mask is not None and fast is not None else b""
        self._fast = fast
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
        self._pending: dict[tuple[int, int], int] = {}  # (pid, fd) -> offset of an open not applied yet
        # The batch being scanned, and what its records so far left for the later ones (set by scan).
        self._batch = b""
        self._end = 0
        self._nfmask = 0  # 0 when the fast path is off
        self._sel: array[int] = array("Q")
        self._dirty_tids: set[int] = set()  # threads whose state changed: not narrowed for the rest of the batch
        self._dirty_pids: set[int] = set()  # processes likewise, for the fd check
        self._dirty_fds: set[tuple[int, int]] = set()  # fd events waiting for Python
        self._waiting_pids: set[int] = set()  # processes with a filter candidate waiting for Python
        self._waiting_fds: set[tuple[int, int]] = set()  # fds read by exact matches waiting for Python
        self._blocked = False  # a state event waits for Python: no more fast ones this batch
        self._run_open = False  # the last selection entry is a run that the next record may extend
        self._run_tid = 0
        self._run_end = 0

    def reset_tids(self) -> None:
        """Forget cached answers (a thread's name or container changed, tables were loaded)."""
        self._tids.clear()
        self._fds.clear()

    def scan(self, batch: bytes) -> tuple[array[int], int]:
        """Return (selection, record count); selection holds (index, offset, why) triples."""
        self._sel = array("Q")
        if not batch:
            return self._sel, 0
        self._begin(batch)
        smask = self.state_mask
        mmask = self.match_mask
        nsmask = len(smask)
        nmask = len(mmask)
        off = 0
        n = 0
        while off < self._end:
            ts, tid, pid, evt, length = self._read_head(off)
            if n == 0:
                self.first_ts = ts
            self.last_ts = ts
            code = self._fast_code(off, tid, evt, length)
            why = 0
            fdkey = (0, 0)
            if evt < nsmask and smask[evt]:  # each mask is 'no' past its own end
                why = SEL_STATE
                fdkey = self._state_changes(off, tid, pid, code)
            if evt < nmask and mmask[evt]:
                why |= self._match(off, tid, pid, evt, code != 0 and why == SEL_STATE)
            if why:
                runnable = self._runnable(off, evt, why)
                # Nothing waits for a record Python takes in a run or without the state.
                passable = runnable or (why & _MATCHED == _MATCHED and evt < len(self.stateless_mask)
                                        and bool(self.stateless_mask[evt]))
                if code and why & SEL_STATE:
                    why = self._fast_path(off, tid, pid, length, code, fdkey, why, passable)
                    if why == _SPLIT:
                        # Its state part waits its turn; its match, which needs no state, is
                        # taken on its own (a second entry for the same record).
                        self._hold(off, pid, evt, code, SEL_STATE | SEL_FAST, passable)
                        self._select(n, off, tid, length, SEL_STATE | SEL_FAST, False)
                        why = _MATCHED
                if why and self._nfmask:
                    self._hold(off, pid, evt, code, why, passable)
                if why:
                    self._select(n, off, tid, length, why, runnable)
            off += length
            n += 1
        self._flush(batch)
        return self._sel, n

    def _begin(self, batch: bytes) -> None:
        """Start a batch: nothing in it waits for Python yet."""
        self._batch = batch
        self._end = len(batch)
        self._nfmask = len(self._fmask) if self.fast_on else 0
        self._dirty_tids = set()
        self._dirty_pids = set()
        self._dirty_fds = set()
        self._waiting_pids = set()
        self._waiting_fds = set()
        self._blocked = False
        self._run_open = False

    def _read_head(self, off: int) -> tuple[int, int, int, int, int]:
        """ts, tid, pid, evt and length of the record at ``off``, whose length must be right
        (BatchError if not)."""
        if self._end - off < REC_FIXED:
            self._flush(self._batch)
            raise BatchError(f"truncated record at byte {off}", off)
        ts, tid, pid, evt, _cpu, length = _HEAD.unpack_from(self._batch, off)
        if length < REC_FIXED or length & (REC_ALIGN - 1) or off + length > self._end:
            self._flush(self._batch)
            raise BatchError(f"bad record length {length} at byte {off}", off)
        return ts, tid, pid, evt, length

    def _fast_code(self, off: int, tid: int, evt: int, length: int) -> int:
        """How the scanner may apply the event itself (fast_mask), 0 if it may not."""
        code = self._fmask[evt] if evt < self._nfmask else 0
        if code and off + length + REC_FIXED <= self._end:
            # Facts live mode inserted right after an event (a state record of the same thread)
            # are applied before the event is judged: such an event takes the full path.
            _t, ntid, _p, nevt, _c, _l = _HEAD.unpack_from(self._batch, off + length)
            if ntid == tid and nevt < len(self.state_mask) and self.state_mask[nevt]:
                return 0
        return code

    def _state_changes(self, off: int, tid: int, pid: int, code: int) -> tuple[int, int]:
        """A state event: forget the answers it may change. Returns an fd event's fd key."""
        if code:
            # An fd event changes that one fd: only its cached answer goes.
            fd = _fast_fd(self._batch, off, code)
            if self.fd_check is not None and pid in self._fds:
                self._fds[pid].pop(fd, None)
            return pid, fd
        if self.tid_check is not None:
            self._tids.pop(tid, None)
            self._dirty_tids.add(tid)
        if self.fd_check is not None:
            self._fds.pop(pid, None)
            self._dirty_pids.add(pid)
        return 0, 0

    def _match(self, off: int, tid: int, pid: int, evt: int, changes_its_fd: bool) -> int:
        """A filter candidate by event id, narrowed by the checks: SEL_MATCH | SEL_EXACT when they
        all pass for sure, SEL_MATCH when one cannot tell yet, 0 when one fails."""
        ok = True
        exact = True
        if self.tid_check is not None:
            known = None if tid in self._dirty_tids else self._ask(self._tids, tid, self.tid_check, tid)
            if known is None:
                exact = False
            else:
                ok = known
        if ok and self.fd_check is not None:
            reg = self.fd_regs[evt]
            if reg == FD_NONE:
                ok = False
            elif reg >= REC_NARGS or pid in self._dirty_pids or changes_its_fd:
                exact = False  # (an fd event's fd is known only after the state sees it)
            else:
                fd = _i32(self._batch, off + OFF_ARGS + 8 * reg)
                fknown = None if (pid, fd) in self._dirty_fds else \
                    self._ask(self._fds.setdefault(pid, {}), fd, self.fd_check, pid, fd)
                if fknown is None:
                    exact = False
                else:
                    ok = fknown
        if not ok:
            return 0
        return _MATCHED if exact else SEL_MATCH

    def _runnable(self, off: int, evt: int, why: int) -> bool:
        """An exact match of a syscall only counted or copied (runs_below): Python never looks at
        the state for it, so nothing need wait for it and a fast event may be one."""
        return bool(self.runs_below) and why & _MATCHED == _MATCHED and evt < self.runs_below \
            and not _U32.unpack_from(self._batch, off + OFF_FLAGS)[0] & RF_HIDDEN

    def _fast_path(self, off: int, tid: int, pid: int, length: int, code: int, fdkey: tuple[int, int], why: int,
                   passable: bool) -> int:
        """An fd event: applied now unless something before it waits for Python (which will read the
        state as of its own time); else its turn comes in Python (SEL_FAST). Returns what is left
        of ``why``."""
        if (why == SEL_STATE or (why == SEL_STATE | _MATCHED and passable)) and not self._blocked \
                and pid not in self._waiting_pids and fdkey not in self._waiting_fds:
            # (A dup also reads its source fd: a change of that fd waiting for Python has put its
            # process in _waiting_pids.)
            self._apply_now(off, tid, pid, length, code, fdkey)
            self.fast_applied += 1
            return why & _MATCHED  # a matched one is still counted or copied
        self._dirty_fds.add(fdkey)  # Python applies it in stream order; until then the fd is unsure
        if why == SEL_STATE:
            return why | SEL_FAST
        return _SPLIT if why == SEL_STATE | _MATCHED and passable else why

    def _apply_now(self, off: int, tid: int, pid: int, length: int, code: int, fdkey: tuple[int, int]) -> None:
        """Apply an fd event, or keep an open pending: applied when anything may look (a callback, a
        selected record, the batch's end), or forgotten with its close."""
        batch = self._batch
        if code == FAST_CLOSE:
            if self._pending.pop(fdkey, None) is not None:
                # An open nobody has looked at: never mind it, but for the table it made.
                assert self._fast is not None
                self._fast.fds.setdefault(pid, {})
            self._apply_fast(batch, off, pid, tid, length, code)
        elif _absolute_open(batch, off, length):
            if fdkey in self._pending:
                self._flush(batch)
            self._pending[fdkey] = off
        else:
            self._flush(batch)  # a relative path may name a pending open's directory
            self._apply_fast(batch, off, pid, tid, length, code)

    def _hold(self, off: int, pid: int, evt: int, code: int, why: int, passable: bool) -> None:
        """A selected record waits for Python: what the later fast events must wait for. Fd events
        touch their own process's table only; others (clone, exec, thread info...) may read or
        drop any process's: nothing may pass them."""
        if why & SEL_STATE and not code:
            if not _enter(evt):
                self._blocked = True
                return
            why &= ~SEL_STATE  # an enter is only remembered for its exit: what may wait is its match
            if not why:
                return
        if why == _MATCHED and passable:
            pass
        elif why == _MATCHED and self.exact_fd_only:
            # An exact match whose consumer reads only its own fd (and thread): only that fd must
            # keep still.
            reg = self.fd_regs[evt]
            if reg < REC_NARGS:
                self._waiting_fds.add((pid, _i32(self._batch, off + OFF_ARGS + 8 * reg)))
            elif reg == FD_RET:
                self._waiting_fds.add((pid, _i32(self._batch, off + OFF_RET)))
        else:
            self._waiting_pids.add(pid)

    def _select(self, n: int, off: int, tid: int, length: int, why: int, runnable: bool) -> None:
        """Add the record to the selection: on its own, or to the run it extends."""
        sel = self._sel
        if why == _MATCHED and runnable:
            if self._run_open and tid == self._run_tid and off == self._run_end:
                sel[-3] = off
                sel[-1] += (1 << RUN_COUNT_SHIFT) + (length << RUN_BYTES_SHIFT)
            else:
                sel.extend((off, off, SEL_RUN | (1 << RUN_COUNT_SHIFT) | (length << RUN_BYTES_SHIFT)))
            self._run_open, self._run_tid, self._run_end = True, tid, off + length
            return
        self._run_open = False
        self._flush(self._batch)  # Python will see this record's state: the opens before it too
        sel.extend((n, off, why))

    def _apply_fast(self, batch: bytes, off: int, pid: int, tid: int, length: int, code: int) -> None:
        """Apply a fast-mask event to the state."""
        assert self._fast is not None
        ret = _ARG.unpack_from(batch, off + OFF_RET)[0]
        if code == FAST_CLOSE:
            if ret == 0:
                table = self._fast.fds.get(pid)
                if table:
                    table.pop(_fast_fd(batch, off, code), None)
            return
        if ret < 0 or ret > 0x7FFFFFFF:
            return  # a failed open or dup changes nothing
        if code >= FAST_DUP:
            cloexec = code == FAST_DUP3 and bool(_U64.unpack_from(batch, off + OFF_ARGS + 16)[0] & _O_CLOEXEC)
            self._fast.dup_raw(pid, _i32(batch, off + OFF_ARGS), ret, cloexec)
            return
        l0, l1 = _LENS.unpack_from(batch, off + OFF_L0)
        if REC_FIXED + l0 + l1 > length:
            l0 = l1 = 0
        p = off + REC_FIXED
        if code == FAST_OPEN_A1:
            flags = _U64.unpack_from(batch, off + OFF_ARGS + 8)[0]
        elif code == FAST_OPEN_A2:
            flags = _U64.unpack_from(batch, off + OFF_ARGS + 16)[0]
        elif code == FAST_OPEN_SEG1:
            flags = int.from_bytes(bytes(batch[p + l0:p + l0 + min(l1, 8)]) or b"\0", "little")
        else:
            flags = _O_CREAT_WRONLY_TRUNC
        dirfd = _fast_fd(batch, off, FAST_CLOSE) if code in (FAST_OPEN_A2, FAST_OPEN_SEG1) else None
        self._fast.open_raw(pid, tid, ret, bytes(batch[p:p + l0]), flags, dirfd)

    def _ask(self, cache: dict[int, bool], key: int, check: Callable[..., bool | None], *args: int) -> bool | None:
        """A check's cached answer, else the check's (cached when definite). The state it reads
        must be current: pending opens are applied first."""
        known = cache.get(key)
        if known is None:
            self._flush(self._batch)
            known = check(*args)
            if known is not None:
                cache[key] = known
        return known

    def _flush(self, batch: bytes) -> None:
        """Apply the pending opens, in stream order."""
        if not self._pending:
            return
        offsets = list(self._pending.values())
        self._pending.clear()
        for o in offsets:
            _ts, tid, pid, evt, _cpu, length = _HEAD.unpack_from(batch, o)
            self._apply_fast(batch, o, pid, tid, length, self._fmask[evt])

    def apply(self, batch: bytes, off: int) -> None:
        """Apply the fast-mask event at ``off`` (selected with SEL_FAST) to the state."""
        if off < 0 or off + REC_FIXED > len(batch):
            raise ValueError("no record at this offset")
        _ts, tid, pid, evt, _cpu, length = _HEAD.unpack_from(batch, off)
        if length < REC_FIXED or off + length > len(batch) or evt >= len(self._fmask) or not self._fmask[evt]:
            raise ValueError("not a fast-path record")
        self._apply_fast(batch, off, pid, tid, length, self._fmask[evt])


def _enter(evt: int) -> bool:
    """A syscall enter: the state only remembers it for its exit (State.note_enter)."""
    return evt < EVT_BASE_OTHER and not evt & 1


def _absolute_open(batch: bytes, off: int, length: int) -> bool:
    """An open that returned an fd, of an absolute path: applying it needs no other state."""
    ret = _ARG.unpack_from(batch, off + OFF_RET)[0]
    l0, l1 = _LENS.unpack_from(batch, off + OFF_L0)
    return 0 <= ret <= 0x7FFFFFFF and l0 > 0 and REC_FIXED + l0 + l1 <= length and batch[off + REC_FIXED] == 0x2F


def _fast_fd(batch: bytes, off: int, code: int) -> int:
    """The fd a fast-mask event changes: close's argument, or the fd an open or a dup returned."""
    return _i32(batch, off + (OFF_ARGS if code == FAST_CLOSE else OFF_RET))


def _i32(batch: bytes, off: int) -> int:
    fd: int = _ARG.unpack_from(batch, off)[0] & 0xFFFFFFFF
    return fd - (1 << 32) if fd & 0x80000000 else fd
