"""Per-process tallies of a batch (pure-Python twin of ext/proctally.pyx): syscalls, failures, I/O
bytes, and records per event id, for the metrics endpoint."""

from __future__ import annotations

import struct

from ..schema import record as R

__all__ = ["K_CALL", "K_ERR", "K_IO", "Tally"]

K_CALL = 1  # a syscall's exit: one call
K_ERR = 2  # its result is the return value: negative is a failure
K_IO = 4  # read/write family: a positive result is bytes moved

REC_FIXED = R.REC_FIXED
_HEAD = struct.Struct(R.HEAD_FMT + "q")  # ts tid pid evt cpu len, then ret (at OFF_RET)
assert R.OFF_RET == R.REC_HEAD


class Tally:
    """Accumulates ``add``ed batches until ``take`` hands the sums over and starts again."""

    def __init__(self, kinds: bytes) -> None:
        self._kinds = bytes(kinds)
        self.procs: dict[int, list[int]] = {}
        self._evts = [0] * len(self._kinds)

    def add(self, batch: bytes) -> None:
        """Tally every record of ``batch``; stops quietly at a record whose length is wrong (the
        scanner, which reads the same batch, is the one that reports it)."""
        kinds = self._kinds
        nkinds = len(kinds)
        evts = self._evts
        procs = self.procs
        head = _HEAD.unpack_from
        off = 0
        end = len(batch)
        while off + REC_FIXED <= end:
            _ts, _tid, pid, evt, _cpu, length, ret = head(batch, off)
            if length < REC_FIXED or length & 7 or off + length > end:
                break
            if evt < nkinds:
                evts[evt] += 1
                k = kinds[evt]
                if k & K_CALL:
                    row = procs.get(pid)
                    if row is None:
                        row = procs[pid] = [0, 0, 0]
                    row[0] += 1
                    if ret < 0:
                        if k & K_ERR:
                            row[1] += 1
                    elif ret > 0 and k & K_IO:
                        row[2] += ret
            off += length

    def take(self) -> tuple[dict[int, list[int]], dict[int, int]]:
        """``(procs, evts)``: the per-process sums and the per-event-id record counts since the
        last ``take``; both start again from zero."""
        procs, self.procs = self.procs, {}
        counts = {i: n for i, n in enumerate(self._evts) if n}
        self._evts = [0] * len(self._kinds)
        return procs, counts
