"""Twin of ext/scap.pyx: the event blocks of a .scap file turned into ktrace records, block after block.

``Decoder.run`` walks the blocks of a buffer read from the file and translates every whole event
block (tracer/capture/scap/translate.py says how a PPM event becomes a record); it stops at the
first block that is anything else (another type, cut short by the buffer's end, lengths that
cannot be right), after a damaged event (``error``), or once ``limit`` records wait. The reader
handles what stopped it and calls again.
"""

from __future__ import annotations

from tracer.capture.scap.blocks import BLOCK_HEAD, BLOCK_NAMES, EVENT_BLOCKS, ScapFormatError
from tracer.capture.scap.events import parse_event
from tracer.capture.scap.translate import Translator

__all__ = ["Decoder"]


class Decoder:
    """Translates event blocks into records for one file; ``flush`` hands them out."""

    def __init__(self, tr: Translator, skipped: dict[str, int], limit: int) -> None:
        self.tr = tr
        self.skipped = skipped  # the reader's counts of what was skipped (unknown event types)
        self.limit = limit
        self.count = 0  # records waiting for flush
        self.events = 0  # records made, all flushes together
        self.first_ts = 0
        self.last_ts = 0
        self.error: tuple[int, int, str] | None = None  # (block offset, type, message) of a damaged event
        self._recs: list[bytes] = []
        self._counts: dict[int, int] = {}  # event blocks by type since take_counts, first seen first

    def run(self, buf: bytes, pos: int, end: int) -> int:
        """Translate the whole event blocks of ``buf[pos:end]``; the position where it stopped."""
        self.error = None
        while self.count < self.limit and end - pos >= 12:
            btype: int
            total: int
            btype, total = BLOCK_HEAD.unpack_from(buf, pos)
            if btype not in EVENT_BLOCKS or total < 12 or total & 3 or total > end - pos:
                break
            if int.from_bytes(buf[pos + total - 4:pos + total], "little") != total:
                break
            self._counts[btype] = self._counts.get(btype, 0) + 1
            try:
                self.block(buf[pos + 8:pos + total - 4], btype)
            except ScapFormatError as e:
                self.error = (pos, btype, str(e))
                return pos + total
            pos += total
        return pos

    def block(self, body: bytes, btype: int) -> None:
        """Translate one event block's body. Raises ScapFormatError for a damaged event."""
        ev = parse_event(body, btype)
        rec = self.tr.record(ev)
        if rec is None:
            what = f"events of unknown type {ev.type}" if self.tr.last_unknown else "events"
            self.skipped[what] = self.skipped.get(what, 0) + 1
            return
        for r in rec:
            if not self._recs:
                self.first_ts = ev.ts
            self._recs.append(r)
        self.last_ts = ev.ts
        self.count += len(rec)
        self.events += len(rec)

    def take_counts(self) -> list[tuple[str, int]]:
        """(block name, count) of the event blocks run went through since the last call."""
        out = [(BLOCK_NAMES[t], n) for t, n in self._counts.items()]
        self._counts.clear()
        return out

    def flush(self) -> tuple[bytes, int, int, int]:
        """(records, count, first ts, last ts) of the records waiting; none wait afterwards."""
        out = (b"".join(self._recs), self.count, self.first_ts, self.last_ts)
        self._recs = []
        self.count = self.first_ts = self.last_ts = 0
        return out
