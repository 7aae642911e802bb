"""Typed surface of the C renderer (twin: tracer/_pure/render.py)."""

from array import array
from collections.abc import Callable
from typing import Any

__all__ = ["Renderer"]

class Renderer:
    """Renders events for one Formatter into a byte buffer; ``take()`` hands the bytes over."""

    stop_at: int
    """time.monotonic_ns() after which events are counted in ``skipped`` instead of rendered (0: never)."""
    skipped: int
    def __init__(self, formatter: Any, state: Any) -> None: ...
    def render_records(self, batch: bytes, sel: array[int], i: int, num_base: int, shown: bytes,
                       exact_only: bool) -> tuple[int, int]:
        """Render the plain matches of ``sel`` from triple ``i`` on; (the next triple, events rendered)."""
    def set_fast(self, apply: Callable[[bytes, int], None] | None, mask: bytes) -> None:
        """Let ``render_records`` apply the fd events of ``mask`` itself with ``apply(batch, off)``."""
    def set_lane(self, lane: Any, followers: bytes) -> None:
        """Let ``render_records`` apply the other state events with ``lane.apply(batch, off, num)``."""
    def render_event(self, ev: Any) -> None:
        """Render one Event."""
    def take(self) -> bytes:
        """The rendered bytes so far; the buffer starts over."""
    @property
    def pending(self) -> int:
        """Bytes rendered and not taken yet."""
