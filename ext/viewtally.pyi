"""Typed surface of the Cython viewtally (twin: tracer/_pure/viewtally.py)."""

from array import array
from collections.abc import Callable
from typing import Any

__all__ = ["LAT_AVG", "LAT_MAX", "LAT_SUM", "MAX_PLANS", "ViewPlan", "REFUSE", "RET_AVG", "RET_MAX", "ViewCounter"]

LAT_SUM: int
LAT_MAX: int
LAT_AVG: int
RET_AVG: int
RET_MAX: int
MAX_PLANS: int

class ViewPlan:
    """What one (event id, return class, thread, fd) does to a view's table."""

    fd: Any
    thread: Any
    passed: bool
    acc: list[Any] | None
    adds: tuple[tuple[int, Any], ...]
    ret_adds: tuple[int, ...]
    lat: tuple[tuple[int, int], ...]
    avgs: tuple[tuple[int, Any], ...]
    lasts: tuple[tuple[int, Any], ...]
    def __init__(self, fd: Any, thread: Any) -> None: ...

REFUSE: ViewPlan

class ViewCounter:
    """Counts a view's exactly matched records by plans."""

    next_slice: int
    def __init__(self, agg: Any, state: Any, make_plan: Callable[[bytes, int, Any, Any, int], ViewPlan], regs: bytes,
                 latency: bool, on_slice: Callable[[int], int] | None = None) -> None: ...
    def count(self, buf: bytes, off: int) -> bool: ...
    def count_run(self, batch: bytes, sel: array[int], i: int,
                  apply: Callable[[bytes, int], None] | None) -> tuple[int, int]: ...
