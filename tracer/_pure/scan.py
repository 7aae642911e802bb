"""Batch scanner (pure-Python twin of ext/scan.pyx): walk the records of a batch, pick the few that
Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when checks are set, its thread and its fd pass them.
SEL_EXACT says every check gave a definite answer, so a filter made only of such checks needs no
second look in Python. Everything else is counted and skipped without becoming a Python object
(in the Cython engine).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable

REC_FIXED = 88
SEL_STATE = 1
SEL_MATCH = 2
SEL_EXACT = 4
FD_RET = 6  # fd_regs value: the event's fd is its return value
FD_NONE = 255  # fd_regs value: the event has no fd

_HEAD = struct.Struct("<QIIHHI")
_ARG = struct.Struct("<q")


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
                 fd_regs: bytes | None = None) -> None:
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
        while off < end:
            if end - off < REC_FIXED:
                raise BatchError(f"truncated record at byte {off}", off)
            ts, tid, pid, evt, _cpu, length = _HEAD.unpack_from(batch, off)
            if length < REC_FIXED or length & 7 or off + length > end:
                raise BatchError(f"bad record length {length} at byte {off}", off)
            if n == 0:
                self.first_ts = ts
            self.last_ts = ts
            why = 0
            if evt < nsmask and smask[evt]:  # each mask is 'no' past its own end
                why = SEL_STATE
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
                            known = tids.get(tid)
                            if known is None:
                                known = tcheck(tid)
                                if known is not None:
                                    tids[tid] = known
                            if known is None:
                                exact = False
                            else:
                                ok = known
                    if ok and fcheck is not None:
                        reg = regs[evt]
                        if reg == FD_NONE:
                            ok = False
                        elif reg == FD_RET or pid in dirty_pids:
                            exact = False
                        else:
                            fd = _ARG.unpack_from(batch, off + 32 + 8 * reg)[0]
                            fd = (fd & 0xFFFFFFFF) - (1 << 32) if fd & 0x80000000 else fd & 0xFFFFFFFF
                            table = fds.setdefault(pid, {})
                            fknown = table.get(fd)
                            if fknown is None:
                                fknown = fcheck(pid, fd)
                                if fknown is not None:
                                    table[fd] = fknown
                            if fknown is None:
                                exact = False
                            else:
                                ok = fknown
                    if ok:
                        why |= SEL_MATCH | (SEL_EXACT if exact else 0)
            if why:
                sel.extend((n, off, why))
            off += length
            n += 1
        return sel, n
