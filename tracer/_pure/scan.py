"""Batch scanner (pure-Python twin of ext/scan.pyx): walk the records of a batch, pick the few that
Python must look at.

A record is selected when its event changes state (SEL_STATE) or may pass the filter (SEL_MATCH):
its event id is in the match mask and, when a thread check is set, its thread passes it. Everything
else is counted and skipped without becoming a Python object (in the Cython engine).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable

REC_FIXED = 88
SEL_STATE = 1
SEL_MATCH = 2

_HEAD = struct.Struct("<QIIHHI")


class BatchError(ValueError):
    """A record whose length field cannot be right; ``offset`` is where the walk stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class Scanner:
    """Selects records of interest from batches.

    ``state_mask`` and ``match_mask`` are bytes indexed by event id (non-zero = yes).
    ``tid_check(tid) -> bool | None`` narrows SEL_MATCH by thread (e.g. proc.name); True and False
    are cached until ``reset_tids()``, None (thread not known yet) is asked again. A thread whose
    state changes inside a batch (exec, thread info) is not narrowed for the rest of that batch,
    since its answer may change: Python's full filter decides for it.
    """

    def __init__(self, state_mask: bytes, match_mask: bytes,
                 tid_check: Callable[[int], bool | None] | None = None) -> None:
        self.state_mask = bytes(state_mask)
        self.match_mask = bytes(match_mask)
        self.tid_check = tid_check
        self._tids: dict[int, bool] = {}
        self.first_ts = 0
        self.last_ts = 0

    def reset_tids(self) -> None:
        """Forget cached thread answers (a thread's name or container changed)."""
        self._tids.clear()

    def scan(self, batch: bytes) -> tuple[array[int], int]:
        """Return (selection, record count); selection holds (index, offset, why) triples."""
        sel: array[int] = array("Q")
        off = 0
        n = 0
        end = len(batch)
        smask = self.state_mask
        mmask = self.match_mask
        nmask = len(mmask)
        check = self.tid_check
        tids = self._tids
        dirty: set[int] = set()
        while off < end:
            if end - off < REC_FIXED:
                raise BatchError(f"truncated record at byte {off}", off)
            ts, tid, _pid, evt, _cpu, length = _HEAD.unpack_from(batch, off)
            if length < REC_FIXED or length & 7 or off + length > end:
                raise BatchError(f"bad record length {length} at byte {off}", off)
            if n == 0:
                self.first_ts = ts
            self.last_ts = ts
            why = 0
            if evt < nmask:
                if smask[evt]:
                    why = SEL_STATE
                    if check is not None:
                        tids.pop(tid, None)
                        dirty.add(tid)
                if mmask[evt]:
                    ok: bool | None = True
                    if check is not None and tid not in dirty:
                        ok = tids.get(tid)
                        if ok is None:
                            ok = check(tid)
                            if ok is None:
                                ok = True
                            else:
                                tids[tid] = ok
                    if ok:
                        why |= SEL_MATCH
            if why:
                sel.extend((n, off, why))
            off += length
            n += 1
        return sel, n
