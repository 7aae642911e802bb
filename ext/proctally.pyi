"""Typed surface of the Cython per-process tally (twin: tracer/_pure/proctally.py)."""

__all__ = ["K_CALL", "K_ERR", "K_IO", "Tally"]

K_CALL: int
K_ERR: int
K_IO: int

class Tally:
    procs: dict[int, list[int]]
    def __init__(self, kinds: bytes) -> None: ...
    def add(self, batch: bytes) -> None: ...
    def take(self) -> tuple[dict[int, list[int]], dict[int, int]]: ...
