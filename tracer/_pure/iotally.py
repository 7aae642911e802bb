"""The overview tiles' counts of the records a scanner matched (pure-Python twin of ext/iotally.pyx)."""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from typing import Any

from ..schema import record as R
from ..schema.events import FD_RET
from ..schema.record import OFF_ARGS, OFF_FLAGS, REC_NARGS, RF_HIDDEN, SEL_EXACT, SEL_FAST, SEL_MATCH, SEL_STATE

__all__ = ["count"]

EXACT_MATCH = SEL_MATCH | SEL_EXACT
FAST_STATE = SEL_STATE | SEL_FAST
KIND_IO = 1
KIND_RET = 2
OP_SUM, OP_COUNT, OP_DISTINCT = 0, 1, 2
KEY_BITS = 36
_HEAD = struct.Struct(R.HEAD_FMT + "q")  # the head, then ret (at OFF_RET)
_I32 = struct.Struct("<i")


def count(kinds: bytes, regs: bytes, fds: dict[int, dict[int, Any]], t0: int, bucket_ns: int, last_bucket: int,
          nslots: int, plans: dict[tuple[Any, ...], tuple[int, ...]], plan_of: Callable[[bytes, int], tuple[int, ...]],
          sums: array[int], distinct: set[int], batch: bytes, sel: array[int], i: int,
          apply: Callable[[bytes, int], None] | None) -> tuple[int, int]:
    """Count the exact matches of ``sel`` (a scanner's selection) from entry ``i`` on (the
    arguments before ``batch`` are the counter's: bound once, with functools.partial), stopping at
    the first entry that is not one, or whose event has no ``kinds`` entry (KIND_IO: an I/O exit
    counted by its fd, whose number is the register ``regs[evt]`` names (0-5 an argument, 6
    the result, else none); KIND_RET: counted by the
    sign of its result); returns where it stopped. Hidden records and I/O exits that moved no
    data count nothing. A record's plan is ``plans[key]``, key ``(evt, fd.type, fd.name,
    fd.l4proto, fd.sport)`` with the fd looked up in ``fds`` (``(evt, None)`` without one) or
    ``(evt, -1 | 0 | 1)``; a missing plan is ``plan_of(batch, offset)``, kept. A plan is a tuple of
    ``key << 16 | slot << 2 | op`` entries: OP_SUM adds the result and OP_COUNT 1 to
    ``sums[bucket * nslots + slot]`` (grown, zero-filled, as needed); OP_DISTINCT adds
    ``bucket << 44 | slot << 36 | key`` to ``distinct``. The bucket is ``(ts - t0) // bucket_ns``,
    at most ``last_bucket``. An fd event the scanner left to its turn (SEL_STATE | SEL_FAST) is
    passed to ``apply(batch, offset)`` on the way, or stops the walk when ``apply`` is None.
    Returns (where it stopped, the matches it counted)."""
    nsel = len(sel)
    matched = 0
    while i + 2 < nsel:
        off = sel[i + 1]
        if sel[i + 2] == FAST_STATE and apply is not None:
            apply(batch, off)
            i += 3
            continue
        if sel[i + 2] != EXACT_MATCH:
            break
        ts, _tid, pid, evt, _cpu, _len, ret = _HEAD.unpack_from(batch, off)
        kind = kinds[evt] if evt < len(kinds) else 0
        if not kind:
            break
        i += 3
        matched += 1
        if batch[off + OFF_FLAGS] & RF_HIDDEN:
            continue
        key: tuple[Any, ...]
        if kind == KIND_IO:
            if ret <= 0:
                continue
            reg = regs[evt]
            if reg == FD_RET:
                num = ret
            else:
                num = _I32.unpack_from(batch, off + OFF_ARGS + 8 * reg)[0] if reg < REC_NARGS else -1
            table = fds.get(pid) if num >= 0 else None
            fd = table.get(num) if table is not None else None
            key = (evt, None) if fd is None else (evt, fd.type, fd.name, fd.l4proto, fd.sport)
        else:
            key = (evt, -1 if ret < 0 else (1 if ret > 0 else 0))
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = plan_of(batch, off)
        if not plan:
            continue
        bucket = min((ts - t0) // bucket_ns if ts > t0 else 0, last_bucket)
        for entry in plan:
            slot = (entry >> 2) & ((1 << 14) - 1)
            op = entry & 3
            if op == OP_DISTINCT:
                distinct.add((bucket << 44) | (slot << KEY_BITS) | (entry >> 16))
                continue
            need = (bucket + 1) * nslots
            if need > len(sums):
                sums.extend([0] * (need - len(sums)))
            sums[bucket * nslots + slot] += ret if op == OP_SUM else 1
    return i, matched
