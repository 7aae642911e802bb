"""Typed surface of the Cython iotally (twin: tracer/_pure/iotally.py)."""

from array import array
from collections.abc import Callable
from typing import Any

__all__ = ["count"]

def count(kinds: bytes, regs: bytes, fds: dict[int, dict[int, Any]], t0: int, bucket_ns: int, last_bucket: int,
          nslots: int, plans: dict[tuple[Any, ...], tuple[int, ...]], plan_of: Callable[[bytes, int], tuple[int, ...]],
          sums: array[int], distinct: set[int], batch: bytes, sel: array[int], i: int,
          apply: Callable[[bytes, int], None] | None) -> tuple[int, int]:
    """Count the exact matches of ``sel`` from entry ``i`` by their plans, applying the waiting fd
    events on the way; returns where it stopped and the matches counted."""
