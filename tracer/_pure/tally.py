"""Per-bucket event counts of a batch (pure-Python twin of ext/tally.pyx)."""

from __future__ import annotations

import struct
from array import array

REC_FIXED = 88
_HEAD = struct.Struct("<QIIHHI")


def tally(batch: bytes | memoryview, cat_of: bytes, t0: int, bucket_ns: int, ncat: int, last_bucket: int,
          counts: array[int]) -> int:
    """Add each record of ``batch`` to ``counts[bucket * ncat + cat_of[evt]]``, where bucket is
    ``(ts - t0) // bucket_ns``, clamped to ``[0, last_bucket]``; ``counts`` (an array of 'Q') grows,
    zero-filled, as needed. Event ids beyond ``cat_of`` count in category 0. Returns the number of
    records; raises ValueError on a length field that cannot be right."""
    end = len(batch)
    off = 0
    n = 0
    ncats = len(cat_of)
    head = _HEAD.unpack_from
    while off + REC_FIXED <= end:
        ts, _tid, _pid, evt, _cpu, length = head(batch, off)
        if length < REC_FIXED or length & 7 or off + length > end:
            raise ValueError(f"bad record length {length} at offset {off}")
        bucket = min((ts - t0) // bucket_ns if ts > t0 else 0, last_bucket)
        c = cat_of[evt] if evt < ncats else 0
        need = (bucket + 1) * ncat
        if need > len(counts):
            counts.extend([0] * (need - len(counts)))
        counts[bucket * ncat + c] += 1
        off += length
        n += 1
    if off != end:
        raise ValueError(f"truncated record at offset {off}")
    return n
