"""Typed surface of the Cython tally (twin: tracer/_pure/tally.py)."""

from array import array

def tally(batch: bytes | memoryview, cat_of: bytes, t0: int, bucket_ns: int, ncat: int, last_bucket: int,
          counts: array[int]) -> int:
    """Add each record of ``batch`` to ``counts[bucket * ncat + cat_of[evt]]``; returns the record count."""
