"""Typed surface of the Cython batch scanner (twin: tracer/_pure/scan.py)."""

from array import array
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["BatchError", "Scanner"]

class _FastState(Protocol):
    """What the scanner's fast path changes: the state's fd tables."""

    fds: dict[int, dict[int, Any]]
    def open_raw(self, pid: int, tid: int, num: int, path: bytes, flags: int, dirfd: int | None) -> None: ...
    def dup_raw(self, pid: int, old: int, new: int, cloexec: bool) -> None: ...

class BatchError(ValueError):
    """A record whose length field cannot be right; ``offset`` is where the walk stopped."""

    offset: int
    def __init__(self, message: str, offset: int) -> None: ...

class Scanner:
    """Selects records of interest from batches."""

    tid_check: Callable[[int], bool | None] | None
    fd_check: Callable[[int, int], bool | None] | None
    first_ts: int
    last_ts: int
    fast_on: bool
    exact_fd_only: bool
    fast_applied: int
    runs_below: int
    stateless_mask: bytes
    def __init__(
        self,
        state_mask: bytes,
        match_mask: bytes,
        tid_check: Callable[[int], bool | None] | None = None,
        fd_check: Callable[[int, int], bool | None] | None = None,
        fd_regs: bytes | None = None,
        fast_mask: bytes | None = None,
        fast: _FastState | None = None,
    ) -> None: ...
    @property
    def state_mask(self) -> bytes: ...
    @property
    def match_mask(self) -> bytes: ...
    @property
    def fd_regs(self) -> bytes: ...
    def reset_tids(self) -> None:
        """Forget cached answers (a thread's name or container changed, tables were loaded)."""
    def apply(self, batch: bytes, off: int) -> None:
        """Apply the fast-mask event at ``off`` (selected with SEL_FAST) to the state."""
    def scan(self, batch: bytes) -> tuple[array[int], int]:
        """Return (selection, record count); selection holds (index, offset, why) triples."""
