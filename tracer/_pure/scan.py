"""Batch scanner (pure-Python twin of ext/scan.pyx): walk the records of a batch, pick the few that
Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when checks are set, its thread and its fd pass them.
SEL_EXACT says every check gave a definite answer, so a filter made only of such checks needs no
second look in Python. Everything else is counted and skipped without becoming a Python object
(in the Cython engine).

The commonest state events (close and the opens: ``fast_mask``) are applied right here, without an
Event, unless an earlier record of the batch waits for Python, which will read the state as of its
own time: after a filter candidate or a deferred fd event of a process, that process's fd events
wait their turn (selected with SEL_FAST, for ``Scanner.apply``); after any other state event,
every one does. An fd event makes only that fd's cached fd_check answer unsure, not the process's.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from typing import Any, Protocol

REC_FIXED = 88
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
REC_FLAGS = 84
RF_HIDDEN = 8
_MATCHED = SEL_MATCH | SEL_EXACT
_O_CREAT_WRONLY_TRUNC = 0o1101

_HEAD = struct.Struct("<QIIHHI")
_ARG = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_LENS = struct.Struct("<HH")
_U32 = struct.Struct("<I")


class FastState(Protocol):
    """What the scanner's fast path changes: the state's fd tables."""

    fds: dict[int, dict[int, Any]]

    def open_raw(self, pid: int, tid: int, num: int, path: bytes, flags: int, dirfd: int | None) -> None: ...


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
                 fast: FastState | None = None) -> None:
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
        # ``fast``: the state (its ``fds`` dict and ``open_raw(pid, tid, num, path, flags, dirfd)``).
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

    def reset_tids(self) -> None:
        """Forget cached answers (a thread's name or container changed, tables were loaded)."""
        self._tids.clear()
        self._fds.clear()

    def scan(self, batch: bytes) -> tuple[array[int], int]:
        """Return (selection, record count); selection holds (index, offset, why) triples."""
        sel: array[int] = array("Q")
        off = 0
        n = 0
        end = len(batch)
        smask = self.state_mask
        mmask = self.match_mask
        nmask = len(mmask)
        nsmask = len(smask)
        tcheck = self.tid_check
        fcheck = self.fd_check
        regs = self.fd_regs
        tids = self._tids
        fds = self._fds
        dirty_tids: set[int] = set()
        dirty_pids: set[int] = set()
        fmask = self._fmask if self.fast_on else b""
        nfmask = len(fmask)
        blocked = False  # a state event waits for Python: no more fast ones this batch
        waiting_pids: set[int] = set()  # processes with a filter candidate waiting for Python
        dirty_fds: set[tuple[int, int]] = set()  # fd events waiting for Python
        waiting_fds: set[tuple[int, int]] = set()  # fds read by exact matches waiting for Python
        runs_below = self.runs_below
        run_open, run_tid, run_end = False, 0, 0
        while off < end:
            if end - off < REC_FIXED:
                self._flush(batch)
                raise BatchError(f"truncated record at byte {off}", off)
            ts, tid, pid, evt, _cpu, length = _HEAD.unpack_from(batch, off)
            if length < REC_FIXED or length & 7 or off + length > end:
                self._flush(batch)
                raise BatchError(f"bad record length {length} at byte {off}", off)
            if n == 0:
                self.first_ts = ts
            self.last_ts = ts
            why = 0
            code = fmask[evt] if evt < nfmask else 0
            if code and off + length + REC_FIXED <= end:
                # Facts live mode inserted right after an event (a state record of the same thread)
                # are applied before the event is judged: such an event takes the full path.
                _t, ntid, _p, nevt, _c, _l = _HEAD.unpack_from(batch, off + length)
                if ntid == tid and nevt < nsmask and smask[nevt]:
                    code = 0
            fdkey = (0, 0)
            if evt < nsmask and smask[evt]:  # each mask is 'no' past its own end
                why = SEL_STATE
                if code:
                    # An fd event changes that one fd: only its cached answer goes.
                    fdkey = (pid, _fast_fd(batch, off, code))
                    if fcheck is not None and pid in fds:
                        fds[pid].pop(fdkey[1], None)
                else:
                    if tcheck is not None:
                        tids.pop(tid, None)
                        dirty_tids.add(tid)
                    if fcheck is not None:
                        fds.pop(pid, None)
                        dirty_pids.add(pid)
            if evt < nmask:
                if mmask[evt]:
                    ok = True
                    exact = True
                    if tcheck is not None:
                        if tid in dirty_tids:
                            exact = False
                        else:
                            known = self._ask(batch, tids, tid, tcheck, tid)
                            if known is None:
                                exact = False
                            else:
                                ok = known
                    if ok and fcheck is not None:
                        reg = regs[evt]
                        if reg == FD_NONE:
                            ok = False
                        elif reg == FD_RET or pid in dirty_pids or (code and why & SEL_STATE):
                            exact = False  # (a fd event is judged after it changed its fd)
                        else:
                            fd = _i32(batch, off + 32 + 8 * reg)
                            if (pid, fd) in dirty_fds:
                                exact = False
                            else:
                                fknown = self._ask(batch, fds.setdefault(pid, {}), fd, fcheck, pid, fd)
                                if fknown is None:
                                    exact = False
                                else:
                                    ok = fknown
                    if ok:
                        why |= SEL_MATCH | (SEL_EXACT if exact else 0)
            # An exact match of a syscall only counted or copied (runs_below): Python never looks
            # at the state for it, so nothing need wait for it and a fast event may be one.
            runnable = bool(runs_below) and why & _MATCHED == _MATCHED and evt < runs_below \
                and not _U32.unpack_from(batch, off + REC_FLAGS)[0] & RF_HIDDEN
            statefree = why & _MATCHED == _MATCHED and evt < len(self.stateless_mask) \
                and bool(self.stateless_mask[evt])
            if code and why & SEL_STATE:
                if (why == SEL_STATE or (why == SEL_STATE | _MATCHED and (runnable or statefree))) and not blocked \
                        and pid not in waiting_pids and fdkey not in waiting_fds:
                    if code == FAST_CLOSE:
                        if self._pending.pop(fdkey, None) is not None:
                            # An open nobody has looked at: never mind it, but for the table it made.
                            assert self._fast is not None
                            self._fast.fds.setdefault(pid, {})
                        self._apply_fast(batch, off, pid, tid, length, code)
                    elif _absolute_open(batch, off, length):
                        # Kept pending: applied when anything may look (a callback, a selected
                        # record, the batch's end), or forgotten with its close.
                        if fdkey in self._pending:
                            self._flush(batch)
                        self._pending[fdkey] = off
                    else:
                        self._flush(batch)  # a relative path may name a pending open's directory
                        self._apply_fast(batch, off, pid, tid, length, code)
                    why &= _MATCHED  # a matched one is still counted or copied
                    self.fast_applied += 1
                else:
                    dirty_fds.add(fdkey)  # Python applies it in stream order; until then the fd is unsure
                    if why == SEL_STATE:
                        why |= SEL_FAST
            if why and nfmask:
                # Fd events touch their own process's table only; others (clone, exec, thread
                # info...) may read or drop any process's: nothing may pass them.
                if why & SEL_STATE and not code:
                    blocked = True
                elif why == _MATCHED and (runnable or statefree):
                    pass
                elif why == SEL_MATCH | SEL_EXACT and self.exact_fd_only:
                    # An exact match whose consumer reads only its own fd (and thread): only
                    # that fd must keep still.
                    reg = regs[evt]
                    if reg < 6:
                        waiting_fds.add((pid, _i32(batch, off + 32 + 8 * reg)))
                    elif reg == FD_RET:
                        waiting_fds.add((pid, _i32(batch, off + 24)))
                else:
                    waiting_pids.add(pid)
            if why == _MATCHED and runnable:
                if run_open and tid == run_tid and off == run_end:
                    sel[-3] = off
                    sel[-1] += (1 << RUN_COUNT_SHIFT) + (length << RUN_BYTES_SHIFT)
                else:
                    sel.extend((off, off, SEL_RUN | (1 << RUN_COUNT_SHIFT) | (length << RUN_BYTES_SHIFT)))
                why = 0  # in a run
                run_open, run_tid, run_end = True, tid, off + length
            elif why:
                run_open = False
                self._flush(batch)  # Python will see this record's state: the opens before it too
            if why:
                sel.extend((n, off, why))
            off += length
            n += 1
        self._flush(batch)
        return sel, n

    def _apply_fast(self, batch: bytes, off: int, pid: int, tid: int, length: int, code: int) -> None:
        """Apply a fast-mask event to the state."""
        assert self._fast is not None
        ret = _ARG.unpack_from(batch, off + 24)[0]
        if code == FAST_CLOSE:
            if ret == 0:
                table = self._fast.fds.get(pid)
                if table:
                    table.pop(_fast_fd(batch, off, code), None)
            return
        if ret < 0 or ret > 0x7FFFFFFF:
            return  # a failed open changes nothing
        l0, l1 = _LENS.unpack_from(batch, off + 80)
        if REC_FIXED + l0 + l1 > length:
            l0 = l1 = 0
        p = off + REC_FIXED
        if code == FAST_OPEN_A1:
            flags = _U64.unpack_from(batch, off + 40)[0]
        elif code == FAST_OPEN_A2:
            flags = _U64.unpack_from(batch, off + 48)[0]
        elif code == FAST_OPEN_SEG1:
            flags = int.from_bytes(bytes(batch[p + l0:p + l0 + min(l1, 8)]) or b"\0", "little")
        else:
            flags = _O_CREAT_WRONLY_TRUNC
        dirfd = _fast_fd(batch, off, FAST_CLOSE) if code in (FAST_OPEN_A2, FAST_OPEN_SEG1) else None
        self._fast.open_raw(pid, tid, ret, bytes(batch[p:p + l0]), flags, dirfd)

    def _ask(self, batch: bytes, cache: dict[int, bool], key: int, check: Callable[..., bool | None],
             *args: int) -> bool | None:
        """A check's cached answer, else the check's (cached when definite). The state it reads
        must be current: pending opens are applied first."""
        known = cache.get(key)
        if known is None:
            self._flush(batch)
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


def _absolute_open(batch: bytes, off: int, length: int) -> bool:
    """An open that returned an fd, of an absolute path: applying it needs no other state."""
    ret = _ARG.unpack_from(batch, off + 24)[0]
    l0, l1 = _LENS.unpack_from(batch, off + 80)
    return 0 <= ret <= 0x7FFFFFFF and l0 > 0 and REC_FIXED + l0 + l1 <= length and batch[off + REC_FIXED] == 0x2F


def _fast_fd(batch: bytes, off: int, code: int) -> int:
    """The fd a fast-mask event changes: close's argument, or the fd an open returned."""
    return _i32(batch, off + (32 if code == FAST_CLOSE else 24))


def _i32(batch: bytes, off: int) -> int:
    fd: int = _ARG.unpack_from(batch, off)[0] & 0xFFFFFFFF
    return fd - (1 << 32) if fd & 0x80000000 else fd
