"""Typed surface of the Cython tally (twin: tracer/_pure/tally.py)."""

from array import array

__all__ = ["tally"]

def tally(batch: bytes | memoryview, cat_of: bytes, t0: int, bucket_ns: int, ncat: int, last_bucket: int,
          counts: array[int], failed: array[int], pids: set[int], skip_cat: int) -> int:
    """Add each record of ``batch`` (hidden ones excepted) to ``counts[bucket * ncat + cat_of[evt]]``
    failed exits (``cat_of`` bit 0x80, return value < 0) to ``failed[bucket]``,
    and ``bucket << 32 | pid`` to ``pids`` (not for category ``skip_cat``); returns the records walked."""
