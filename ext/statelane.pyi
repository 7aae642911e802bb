"""Typed surface of the Cython state lane (twin: tracer/_pure/statelane.py)."""

from array import array
from collections.abc import Callable
from typing import Any

__all__ = ["StateLane"]

class StateLane:
    """Applies state events to ``state`` (a State) straight from a scanner's selection."""

    def __init__(self, state: Any, event_cls: Callable[..., Any], fast_apply: Callable[[bytes, int], None],
                 raw_mask: bytes, leave_mask: bytes) -> None: ...
    def run(self, batch: bytes, sel: array[int], i: int, num_base: int, early: set[int]) -> int: ...
    def apply(self, batch: bytes, off: int, num: int) -> Any: ...
