"""File rotation of ``-w`` captures: sysdig's ``-C``, ``-G``, ``-W`` and ``-e``, as pure logic.

Triggers (any combination):

- ``-C MB`` (``size_mb``): a file that has grown past MB x 10^6 bytes is closed before the next
  events block, so a file overshoots by at most one block.
- ``-G S`` (``seconds``): a new time slice starts with the first batch whose first event is S or
  more seconds (whole seconds of event time) after the slice's start. The first slice's timer
  starts at the first event; its file, opened when the writer starts, is named from the wall
  clock at that moment, later ones from the event time that started them.
- ``-e N`` (``events``): a new file every N events exactly (batches are cut between records).
- ``-W N`` (``files``): with ``-C`` or ``-e``, a ring of N file names reused in turn (each reuse
  truncates the old file); with ``-G`` alone, the capture stops after N files
  (``CaptureWriter.finished`` turns true and later events are counted and dropped).

Names, from the ``-w`` argument ``base``:

1. Without ``-G`` the slice name is ``base``. With ``-G`` it is ``time.strftime(base, t)`` (local
   time of the slice start) when ``base`` contains ``%``, else ``base`` followed by the slice
   number (0, 1, 2 ...).
2. With ``-C`` or ``-e`` the part number within the slice follows (0, 1, 2 ..., modulo N with
   ``-W N``); it restarts at 0 with each new slice. With ``-C`` and ``-W N`` it is zero-padded to
   the number of digits of N, as sysdig does (``-W 10``: ``name00`` ... ``name09``).

Examples: ``-w cap.kcap -C 100`` gives cap.kcap0, cap.kcap1 ...; ``-C 100 -W 3`` gives
cap.kcap0, cap.kcap1, cap.kcap2, cap.kcap0 ...; ``-w cap-%H%M%S.kcap -G 60`` gives
cap-120000.kcap, cap-120100.kcap ...; ``-G 60`` without ``%``: cap.kcap0, cap.kcap1 ...;
``-e 1000000``: cap.kcap0, cap.kcap1 ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tracer.errors import UsageError


@dataclass(frozen=True)
class RotatePolicy:
    """When a capture moves on to a new file (None: that trigger is off)."""

    size_mb: int | None = None
    seconds: int | None = None
    files: int | None = None
    events: int | None = None

    def __post_init__(self) -> None:
        for flag, v in (("-C", self.size_mb), ("-G", self.seconds), ("-W", self.files), ("-e", self.events)):
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise UsageError(f"{flag} needs a positive whole number, not {v!r}")
        if self.files is not None and not self.rotates:
            raise UsageError("-W needs -C, -G or -e")

    @property
    def rotates(self) -> bool:
        return self.size_mb is not None or self.seconds is not None or self.events is not None

    @property
    def ring(self) -> bool:
        """Part names are reused modulo ``files`` (-W with -C or -e)."""
        return self.files is not None and (self.size_mb is not None or self.events is not None)

    @property
    def stops(self) -> bool:
        """The capture stops after ``files`` slices (-W with -G alone)."""
        return self.files is not None and self.seconds is not None and not self.ring

    @property
    def size_limit(self) -> int | None:
        return None if self.size_mb is None else self.size_mb * 1_000_000


def capture_name(base: str, policy: RotatePolicy | None, slice_no: int, part_no: int, slice_start: float) -> str:
    """The name of a capture file (see the module docstring).

    ``slice_no`` counts ``-G`` slices from 0, ``part_no`` counts files within the slice from 0
    (before the ``-W`` modulo), ``slice_start`` is the slice's start in seconds since the epoch.
    """
    if policy is None or not policy.rotates:
        return base
    name = base
    if policy.seconds is not None:
        name = time.strftime(base, time.localtime(slice_start)) if "%" in base else f"{base}{slice_no}"
    if policy.size_mb is not None or policy.events is not None:
        part = part_no % policy.files if policy.files else part_no
        width = len(str(policy.files)) if policy.files and policy.size_mb is not None else 1
        name += f"{part:0{width}d}"
    return name


class Rotation:
    """Which file a capture is in: slice and part counters and the current name (no I/O)."""

    def __init__(self, base: str, policy: RotatePolicy | None, start: float) -> None:
        self.base = base
        self.policy = policy
        self.slice_no = 0
        self.part_no = 0
        self.slice_start = start
        self.slice_ts: int | None = None  # whole seconds of event time when the slice started
        self.finished = False

    @property
    def name(self) -> str:
        return capture_name(self.base, self.policy, self.slice_no, self.part_no, self.slice_start)

    def time_due(self, ts_ns: int) -> bool:
        """Whether an event at ``ts_ns`` belongs to a new slice (starts the first slice's timer)."""
        p = self.policy
        if p is None or p.seconds is None:
            return False
        s = ts_ns // 1_000_000_000
        if self.slice_ts is None:
            self.slice_ts = s
            return False
        return s - self.slice_ts >= p.seconds

    def next_slice(self, ts_ns: int) -> str | None:
        """Start a new ``-G`` slice at event time ``ts_ns``: its file name, or None if finished."""
        assert self.policy is not None
        if self.policy.stops and self.policy.files is not None and self.slice_no + 1 >= self.policy.files:
            self.finished = True
            return None
        self.slice_no += 1
        self.part_no = 0
        self.slice_ts = ts_ns // 1_000_000_000
        self.slice_start = float(self.slice_ts)
        return self.name

    def next_part(self) -> str:
        """Move to the next ``-C``/``-e`` part of the slice: its file name."""
        self.part_no += 1
        return self.name
