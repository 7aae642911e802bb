"""The state lane (pure-Python twin of ext/statelane.pyx): the state events of a selection applied
in one call, without the pipeline's per-event work.

``run`` walks entries the scanner selected for the state alone (SEL_STATE: nothing can match them)
or left to their turn (SEL_STATE | SEL_FAST), in order, and stops at the first other one, or at an
event of ``leave_mask`` (live mode's enricher adds records after those: the pipeline's). The fd
events go to the scanner's ``apply``; syscall enters and the exits of ``raw_mask`` are applied from
the record's values (State.apply_raw), with no Event; every other one, and any
record read from a .scap file (whose PPM parameters the state reads too), as an Event through
State.apply, as the pipeline would. ``apply`` does the same for one record the renderer shows next
(False: one of ``leave_mask``, not applied).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from typing import Any

from ..schema.record import EVT_BASE_OTHER, FIXED_FMT, REC_FIXED, RF_PPM, SEL_FAST, SEL_STATE

__all__ = ["StateLane"]

_FIXED = struct.Struct(FIXED_FMT)
_FAST = SEL_STATE | SEL_FAST


class StateLane:
    """Applies state events to ``state`` (a State) straight from a scanner's selection.

    ``event_cls(batch, off, num, state)`` makes an Event; ``fast_apply(batch, off)`` is the
    scanner's apply for the fd events it left to their turn; ``raw_mask`` and ``leave_mask`` (event
    id -> non-zero) name the events State.apply_raw takes and those the lane leaves alone.
    """

    def __init__(self, state: Any, event_cls: Callable[..., Any], fast_apply: Callable[[bytes, int], None],
                 raw_mask: bytes, leave_mask: bytes) -> None:
        self._state = state
        self._event = event_cls
        self._fast_apply = fast_apply
        self._raw = bytes(raw_mask)
        self._leave = bytes(leave_mask)

    def run(self, batch: bytes, sel: array[int], i: int, num_base: int, early: set[int]) -> int:
        """Apply the state-only entries of ``sel`` from triple ``i`` on (skipping the triples in
        ``early``: applied already); return the first triple it left."""
        n = len(sel)
        while i < n:
            why = sel[i + 2]
            if why == _FAST:
                self._fast_apply(batch, sel[i + 1])
            elif why != SEL_STATE:
                break
            elif i not in early and self.apply(batch, sel[i + 1], num_base + sel[i]) is False:
                break
            i += 3
        return i

    def apply(self, batch: bytes, off: int, num: int) -> Any:
        """Apply the state event at ``off`` (evt.num ``num``); return its Event if one was made, or
        False if the event is one it leaves."""
        (ts, tid, pid, evt, _cpu, _length, ret, a0, a1, a2, a3, a4, a5, l0, l1,
         flags) = _FIXED.unpack_from(batch, off)
        if evt < len(self._leave) and self._leave[evt]:
            return False
        state = self._state
        if not flags & RF_PPM and (evt < EVT_BASE_OTHER and not evt & 1 or evt < len(self._raw) and self._raw[evt]):
            p = off + REC_FIXED
            state.apply_raw(evt, tid, pid, ts, ret, (a0, a1, a2, a3, a4, a5), batch[p:p + l0],
                            batch[p + l0:p + l0 + l1])
            return None
        ev = self._event(batch, off, num, state)
        state.apply(ev)
        return ev
