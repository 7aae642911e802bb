"""Typed surface of the Cython batch scanner (twin: tracer/_pure/scan.py)."""

from array import array
from collections.abc import Callable
from typing import Any, Protocol

SEL_STATE: int
SEL_MATCH: int
SEL_EXACT: int
FD_RET: int
FD_NONE: int
FAST_CLOSE: int
FAST_OPEN_A1: int
FAST_OPEN_A2: int
FAST_OPEN_SEG1: int
FAST_CREAT: int
SEL_FAST: int

class FastState(Protocol):
    """What the scanner's fast path changes: the state's fd tables."""

    fds: dict[int, dict[int, Any]]
    def open_raw(self, pid: int, tid: int, num: int, path: bytes, flags: int, dirfd: int | None) -> None: ...

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
        fast: FastState | None = None,
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
