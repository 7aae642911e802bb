"""Output lines (pure-Python twin of ext/render.pyx): the same interface, each event decoded into
an Event and rendered by the Formatter, the reference the C renderer must match byte for byte."""

from __future__ import annotations

import time
from array import array
from typing import TYPE_CHECKING

from ..schema.record import RF_HIDDEN, SEL_EXACT, SEL_MATCH

if TYPE_CHECKING:
    from ..event import Event
    from ..output.format import Formatter
    from ..state.state import State

__all__ = ["Renderer"]

class Renderer:
    """Renders events for one Formatter into a byte buffer; ``take()`` hands the bytes over."""

    stop_at: int = 0  # time.monotonic_ns() after which events are counted, not rendered (0: never)
    skipped: int = 0  # events not rendered because of stop_at

    def __init__(self, formatter: Formatter, state: State) -> None:
        self.fmt = formatter
        self.state = state
        self._out: list[bytes] = []
        self._pending = 0

    def render_records(self, batch: bytes, sel: array[int], i: int, num_base: int, shown: bytes,
                       exact_only: bool) -> tuple[int, int]:
        """Render the events of ``sel`` (a scanner selection over ``batch``) from triple ``i`` on,
        while they are plain matches: no state change (SEL_MATCH, with SEL_EXACT when
        ``exact_only``). ``shown`` masks the event ids that print. Returns (the next triple,
        events rendered)."""
        from ..event import Event

        ok = (SEL_MATCH | SEL_EXACT,) if exact_only else (SEL_MATCH, SEL_MATCH | SEL_EXACT)
        done = 0
        n = len(sel)
        while i < n and sel[i + 2] in ok:
            ev = Event(batch, sel[i + 1], num_base + sel[i], self.state)
            i += 3
            if ev.evt >= len(shown) or not shown[ev.evt] or ev.flags & RF_HIDDEN:
                continue
            self.render_event(ev)
            done += 1
        return i, done

    def render_event(self, ev: Event) -> None:
        """Render one Event."""
        if self.stop_at and (self.skipped or time.monotonic_ns() > self.stop_at):
            self.skipped += 1
            return
        line = (self.fmt.line(ev) + "\n").encode("utf-8", "surrogateescape")
        self._out.append(line)
        self._pending += len(line)

    def take(self) -> bytes:
        """The rendered bytes so far; the buffer starts over."""
        out = b"".join(self._out)
        self._out.clear()
        self._pending = 0
        return out

    @property
    def pending(self) -> int:
        """Bytes rendered and not taken yet."""
        return self._pending
