"""Output lines (pure-Python twin of ext/render.pyx): the same interface, each event decoded into
an Event and rendered by the Formatter, the reference the C renderer must match byte for byte."""

from __future__ import annotations

import struct
import time
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..schema import record as R
from ..schema.events import SYSCALL_NR
from ..schema.record import (
    OFF_EVT,
    OFF_LEN,
    OFF_TID,
    REC_HEAD,
    RF_HIDDEN,
    SEL_EXACT,
    SEL_FAST,
    SEL_MATCH,
    SEL_RUN,
    SEL_STATE,
)

if TYPE_CHECKING:
    from ..event import Event
    from ..output.format import Formatter
    from ..state.state import State

__all__ = ["Renderer"]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_CLOSE_EXIT = R.syscall_evt(SYSCALL_NR["close"], R.DIR_EXIT)

class Renderer:
    """Renders events for one Formatter into a byte buffer; ``take()`` hands the bytes over."""

    stop_at: int = 0  # time.monotonic_ns() after which events are counted, not rendered (0: never)
    skipped: int = 0  # events not rendered because of stop_at

    def __init__(self, formatter: Formatter, state: State) -> None:
        self.fmt = formatter
        self.state = state
        self._out: list[bytes] = []
        self._pending = 0
        self._apply: Callable[[bytes, int], None] | None = None
        self._fast = b""
        self._lane: Any = None
        self._followers = b""

    def render_records(self, batch: bytes, sel: array[int], i: int, num_base: int, shown: bytes,
                       exact_only: bool) -> tuple[int, int]:
        """Render the events of ``sel`` (a scanner selection over ``batch``) from triple ``i`` on,
        while they are plain matches: no state change (SEL_MATCH, with SEL_EXACT when
        ``exact_only``), or state events ``set_fast`` or ``set_lane`` lets it apply; records read
        from a .scap file too (their Event follows libsinsp's rules). ``shown`` masks the event ids
        that print. Returns (the next triple, events rendered)."""
        from ..event import Event

        ok = (SEL_MATCH | SEL_EXACT,) if exact_only else (SEL_MATCH, SEL_MATCH | SEL_EXACT)
        done = 0
        n = len(sel)
        while i < n:
            why, off = sel[i + 2], sel[i + 1]
            ev = None
            if why & SEL_STATE:
                evt = _U16.unpack_from(batch, off + OFF_EVT)[0]
                if why & SEL_RUN:
                    break
                if self._apply is not None and evt < len(self._fast) and self._fast[evt]:
                    # An fd event the scanner leaves to its turn: applied here, then shown.
                    why &= ~(SEL_STATE | SEL_FAST)
                    if why and why not in ok:
                        break
                    if why:
                        ev = Event(batch, off, num_base + sel[i], self.state)
                        if ev.ppm is not None and evt == _CLOSE_EXIT:
                            _ = ev.fd  # a .scap close names the fd it closes: looked up first, as State.apply does
                    self._apply(batch, off)
                elif self._lane is not None and not why & SEL_FAST:
                    # Any other state event, by the state lane, unless live mode's facts about it
                    # follow (applied before it shows, in Python).
                    why &= ~SEL_STATE
                    if why and why not in ok or self._followed(batch, off):
                        break
                    ev = self._lane.apply(batch, off, num_base + sel[i])
                    if ev is False:
                        break  # one the lane leaves to the pipeline (live mode's enricher)
                else:
                    break
                if not why:
                    i += 3
                    continue
            elif why not in ok:
                break
            if ev is None:
                ev = Event(batch, off, num_base + sel[i], self.state)
            i += 3
            if ev.evt >= len(shown) or not shown[ev.evt] or ev.flags & RF_HIDDEN:
                continue
            self.render_event(ev)
            done += 1
        return i, done

    def set_fast(self, apply: Callable[[bytes, int], None] | None, mask: bytes) -> None:
        """Let ``render_records`` apply the fd events of ``mask`` (event id -> non-zero) itself,
        with ``apply(batch, off)`` (the scanner's ``apply``), instead of stopping at them."""
        self._apply = apply
        self._fast = bytes(mask) if apply is not None else b""

    def set_lane(self, lane: Any, followers: bytes) -> None:
        """Let ``render_records`` apply the other state events with ``lane.apply(batch, off, num)``
        (a StateLane), but those followed by a record of ``followers`` (event id -> non-zero) about
        the same thread."""
        self._lane = lane
        self._followers = bytes(followers) if lane is not None else b""

    def _followed(self, batch: bytes, off: int) -> bool:
        nxt = off + _U32.unpack_from(batch, off + OFF_LEN)[0]
        if nxt + REC_HEAD > len(batch):
            return False
        evt: int = _U16.unpack_from(batch, nxt + OFF_EVT)[0]
        same: bool = _U32.unpack_from(batch, nxt + OFF_TID)[0] == _U32.unpack_from(batch, off + OFF_TID)[0]
        return same and evt < len(self._followers) and self._followers[evt] != 0

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
