"""Typed surface of the Cython ring-buffer consumer (twin: tracer/_pure/ring.py)."""

__all__ = ["Ring"]

class Ring:
    """Drains a BPF ring buffer map into batches of raw records."""

    def __init__(self, map_fd: int, ts_offset: int) -> None: ...
    def drain(self) -> bytes:
        """Copy every pending record and return them as one bytes object (b"" when none)."""
    @property
    def count(self) -> int:
        """Records copied so far."""
    @property
    def lost(self) -> int:
        """Records dropped in user space: none, a record leaves the ring only once copied."""
    def close(self) -> None: ...
