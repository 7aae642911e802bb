"""Typed surface of the Cython scap event writer (twin: tracer/_pure/scapwrite.py)."""

from collections.abc import Callable, Sequence
from typing import Any

class Enters:
    """Per thread, the syscall enter last written whose exit has not been, and its last enter's fd."""

    def entered(self, tid: int) -> int: ...
    def enter(self, tid: int, evt: int) -> None: ...
    def exit(self, tid: int) -> int: ...
    def enter_fd(self, tid: int) -> int: ...
    def set_enter_fd(self, tid: int, fd: int) -> None: ...

class Plan:
    """Per event id, its PPM event type and the operations making its parameters (recipe.py)."""

    flags: bytes

    def __init__(self, etypes: Sequence[int], ops: Sequence[Sequence[tuple[int, int, int, int]]], objs: list[Any],
                 flags: bytes, fd_regs: bytes, fast: bytes, block_type: int) -> None: ...
    def run(self, buf: bytes, off: int, enters: Enters, state: Any, tuples: dict[int, bytes],
            tuple_of: Callable[[int, int], bytes],
            apply: Callable[[bytes, int], None]) -> tuple[int, int, int, int, bytes]:
        """(offset after the records taken, events written, first ts, last ts, their EV_V2 blocks)."""

__all__ = ["Enters", "Plan"]
