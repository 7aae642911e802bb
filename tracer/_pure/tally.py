"""Per-bucket event counts of a batch (pure-Python twin of ext/tally.pyx)."""

from __future__ import annotations

import struct
from array import array

from ..schema import record as R
from ..schema.record import OFF_FLAGS, OFF_RET, REC_FIXED, RF_HIDDEN

__all__ = ["tally"]

_HEAD = struct.Struct(R.HEAD_FMT)
_RET = struct.Struct("<q")


def tally(batch: bytes | memoryview, cat_of: bytes, t0: int, bucket_ns: int, ncat: int, last_bucket: int,
          counts: array[int], failed: array[int], pids: set[int], skip_cat: int) -> int:
    """Add each record of ``batch`` to ``counts[bucket * ncat + cat_of[evt]]``, where bucket is
    ``(ts - t0) // bucket_ns``, clamped to ``[0, last_bucket]``; ``counts`` (an array of 'Q') grows,
    zero-filled, as needed. Event ids beyond ``cat_of`` count in category 0. A record whose
    ``cat_of`` entry has bit 0x80 set (an exit whose result can fail) and whose return value is
    negative adds 1 to ``failed[bucket]`` (grown like ``counts``). Records flagged hidden
    (kept for state only) are not counted. Each record not in category ``skip_cat`` adds
    ``bucket << 32 | pid`` to ``pids``. Returns the number of records walked; raises ValueError on
    a length field that cannot be right."""
    end = len(batch)
    off = 0
    n = 0
    ncats = len(cat_of)
    head = _HEAD.unpack_from
    while off + REC_FIXED <= end:
        ts, _tid, pid, evt, _cpu, length = head(batch, off)
        if length < REC_FIXED or length & 7 or off + length > end:
            raise ValueError(f"bad record length {length} at offset {off}")
        if batch[off + OFF_FLAGS] & RF_HIDDEN:
            off += length
            n += 1
            continue
        bucket = min((ts - t0) // bucket_ns if ts > t0 else 0, last_bucket)
        code = cat_of[evt] if evt < ncats else 0
        c = code & 0x7F
        need = (bucket + 1) * ncat
        if need > len(counts):
            counts.extend([0] * (need - len(counts)))
        counts[bucket * ncat + c] += 1
        if code & 0x80 and _RET.unpack_from(batch, off + OFF_RET)[0] < 0:
            if bucket >= len(failed):
                failed.extend([0] * (bucket + 1 - len(failed)))
            failed[bucket] += 1
        if c != skip_cat:
            pids.add(bucket << 32 | pid)
        off += length
        n += 1
    if off != end:
        raise ValueError(f"truncated record at offset {off}")
    return n
