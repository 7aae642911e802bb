"""Typed surface of the Cython scap event writer (twin: tracer/_pure/scapwrite.py)."""

from collections.abc import Callable, Sequence
from typing import Any

class Plan:
    """Per event id, its PPM event type and the operations making its parameters (recipe.py)."""

    flags: bytes

    def __init__(self, etypes: Sequence[int], ops: Sequence[Sequence[tuple[int, int, int, int]]], objs: list[Any],
                 flags: bytes, fd_regs: bytes, fast: bytes, block_type: int) -> None: ...
    def run(self, buf: bytes, off: int, entered: dict[int, int], enter_fd: dict[int, int], state: Any,
            tuples: dict[int, bytes], tuple_of: Callable[[int, int], bytes],
            apply: Callable[[bytes, int], None]) -> tuple[int, int, int, int, bytes]:
        """(offset after the records taken, events written, first ts, last ts, their EV_V2 blocks)."""

__all__ = ["Plan"]
