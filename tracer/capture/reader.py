"""CaptureReader: the blocks of a .kcap file as items, recovering what a crash or damage left.

Iterating a reader yields ``EventBlock``, ``TableBlock`` and ``StatsBlock`` items in file order
(INDEX and FOOTER blocks are read, not yielded). Problems that leave the rest readable become
notes (``reader.notes``, and ``on_note`` if given), never exceptions:

- a file cut short (no footer): "capture truncated: recovered N events in K blocks, lost the
  tail after byte X" -- N events in K EVENTS blocks were read, X is the end of the last whole
  block;
- a damaged block (bad checksum, does not decode): "damaged block at byte X (why): skipped N
  events", and reading goes on after it;
- unreadable bytes (a header that does not check out): "unreadable data at bytes X-Y: skipped";
  reading resumes at the next sync marker whose header checks out;
- bytes after the footer: "ignored N bytes after the end of the capture at byte X".

Only a file that is not a capture, has a newer major version or has a damaged file header raises
CaptureError (on open). Memory stays bounded: no read is larger than format.MAX_BLOCK.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import msgpack

from tracer.capture.blockcodec import BlockError, decode_block
from tracer.capture.format import (
    BLOCK_HEAD_SIZE,
    FOOTER_FMT,
    FOOTER_RAW,
    FOOTER_SIZE,
    KIND_EVENTS,
    KIND_FOOTER,
    KIND_INDEX,
    KIND_NAMES,
    KIND_STATS,
    KIND_TABLE,
    SYNC,
    BlockHead,
    Upgrade,
    parse_block_head,
    parse_file_header,
    upgrade_chain,
)
from tracer.errors import CaptureError

_SCAN_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class EventBlock:
    """``count`` raw records, concatenated; ``offset`` is the block's place in its file, ``codec``
    how it was stored there (blockcodec.CODEC_*)."""

    raw: bytes
    count: int
    first_ts: int
    last_ts: int
    offset: int = 0
    codec: int = 0


@dataclass(frozen=True, slots=True)
class TableBlock:
    """The rows of one state table (opaque to the capture code)."""

    kind: str
    rows: list[Any]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class StatsBlock:
    """Counters: the caller's (``events``, ``drops`` ...) and the writer's (``writer``)."""

    stats: dict[str, Any]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class FileStart:
    """Yielded by ``read_captures`` before the items of each file."""

    path: str
    header: dict[str, Any]
    version: tuple[int, int]


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One EVENTS block as the INDEX lists it."""

    offset: int
    first_ts: int
    last_ts: int
    count: int


Item = EventBlock | TableBlock | StatsBlock


class CaptureReader:
    """Read one capture file. Raises CaptureError on open for a file it cannot read at all."""

    def __init__(self, path: str | os.PathLike[str], *, on_note: Callable[[str], None] | None = None) -> None:
        self.path = os.fspath(path)
        self.notes: list[str] = []
        self._on_note = on_note
        self.index: list[IndexEntry] | None = None
        self.complete = False  # a footer was read: the file was closed cleanly
        self.damaged = False  # some bytes were skipped
        self.events = 0  # events in the EVENTS blocks read so far
        self.block_counts: dict[str, int] = {}
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CaptureError(f"cannot read {self.path}: {e.strerror or e}") from None
        try:
            self.size = os.fstat(self._fd).st_size
            self.version, header, self._data_start = parse_file_header(self.path, self._read)
            self._upgrades: list[Upgrade] = upgrade_chain(self.path, self.version)
            for u in self._upgrades:
                header = u.header(header)
            self.header: dict[str, Any] = header
            self._load_index()
        except OSError as e:
            self.close()
            raise CaptureError(f"cannot read {self.path}: {e.strerror or e}") from None
        except BaseException:
            self.close()
            raise

    def _read(self, off: int, n: int) -> bytes:
        try:
            return os.pread(self._fd, n, off)
        except IsADirectoryError:
            raise CaptureError(f"{self.path} is not a ktrace capture (a directory)") from None

    def _note(self, text: str) -> None:
        self.notes.append(text)
        if self._on_note is not None:
            self._on_note(text)

    def _load_index(self) -> None:
        """Read the INDEX through the footer at the end of the file, if the file has one."""
        if self.size < self._data_start + FOOTER_SIZE:
            return
        tail = self._read(self.size - FOOTER_SIZE, FOOTER_SIZE)
        h = parse_block_head(tail)
        if h is None or h.kind != KIND_FOOTER or h.stored_len != FOOTER_RAW:
            return
        data = tail[BLOCK_HEAD_SIZE:]
        if zlib.crc32(data) != h.data_crc:
            return
        index_off = struct.unpack(FOOTER_FMT, data)[0]
        if not self._data_start <= index_off < self.size - FOOTER_SIZE:
            return
        ih = parse_block_head(self._read(index_off, BLOCK_HEAD_SIZE))
        if ih is None or ih.kind != KIND_INDEX:
            return
        with contextlib.suppress(CaptureError):
            self.index = _index_entries(self._decode_doc(index_off, ih))

    def _decode_doc(self, off: int, h: BlockHead) -> Any:
        stored = self._read(off + BLOCK_HEAD_SIZE, h.stored_len)
        if len(stored) != h.stored_len or zlib.crc32(stored) != h.data_crc:
            return None
        try:
            return msgpack.unpackb(decode_block(stored, h.codec, h.raw_len), raw=False, strict_map_key=False)
        except Exception:
            return None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __iter__(self) -> Iterator[Item]:
        """The items in file order; each iteration reads the file again and redoes the notes."""
        item_upgrades = [u.item for u in self._upgrades if u.item is not None]
        for item in self._items():
            out: Any = item
            for up in item_upgrades:
                out = up(out)
                if out is None:
                    break
            if out is not None:
                yield out

    def _find_sync(self, start: int) -> int:
        """Offset of the first sync marker at or after ``start`` with a sound header, or -1."""
        pos = start
        while pos < self.size:
            # Chunks overlap by a header so that a header across two chunks is seen whole.
            chunk = self._read(pos, _SCAN_CHUNK + BLOCK_HEAD_SIZE)
            i = chunk.find(SYNC)
            while 0 <= i < _SCAN_CHUNK:
                if parse_block_head(chunk, i) is not None:
                    return pos + i
                i = chunk.find(SYNC, i + 1)
            if len(chunk) < _SCAN_CHUNK + BLOCK_HEAD_SIZE:
                return -1
            pos += _SCAN_CHUNK
        return -1

    def _items(self) -> Iterator[Item]:
        pos = self._data_start
        size = self.size
        good_end = pos  # end of the last whole block
        event_blocks = 0
        self.notes.clear()
        self.events = 0
        self.complete = self.damaged = False
        counts = self.block_counts
        counts.clear()
        while pos < size:
            head = self._read(pos, BLOCK_HEAD_SIZE)
            h = parse_block_head(head)
            if h is None:
                if len(head) < BLOCK_HEAD_SIZE and _maybe_cut(head):
                    break  # a header cut short: the truncation note below says so
                nxt = self._find_sync(pos + 1)
                end = nxt if nxt >= 0 else size
                self.damaged = True
                self._note(f"unreadable data at bytes {pos}-{end}: skipped")
                if nxt < 0:
                    pos = size
                    break
                pos = nxt
                continue
            end = pos + BLOCK_HEAD_SIZE + h.stored_len
            if end > size:
                break  # data cut short
            stored = self._read(pos + BLOCK_HEAD_SIZE, h.stored_len)
            if len(stored) < h.stored_len:
                break  # the file shrank under us
            good_end = end
            kind = h.kind
            if zlib.crc32(stored) != h.data_crc:
                self._skip(pos, h, "bad checksum")
                pos = end
                continue
            name = KIND_NAMES.get(kind)
            if name is None:
                self._note(f"block of unknown kind {kind} at byte {pos}: skipped")
                pos = end
                continue
            try:
                raw = decode_block(stored, h.codec, h.raw_len)
            except BlockError as e:
                self._skip(pos, h, str(e))
                pos = end
                continue
            if kind == KIND_EVENTS:
                counts[name] = counts.get(name, 0) + 1
                event_blocks += 1
                self.events += h.count
                yield EventBlock(raw, h.count, h.first_ts, h.last_ts, pos, h.codec)
                pos = end
                continue
            if kind == KIND_FOOTER:
                counts[name] = counts.get(name, 0) + 1
                self.complete = True
                pos = end
                break
            try:
                doc = msgpack.unpackb(raw, raw=False, strict_map_key=False)
            except Exception as e:  # msgpack raises several unrelated types on bad input
                self._skip(pos, h, f"undecodable {name} ({type(e).__name__})")
                pos = end
                continue
            if kind == KIND_INDEX:
                try:
                    self.index = _index_entries(doc)
                    counts[name] = counts.get(name, 0) + 1
                except CaptureError:
                    self._skip(pos, h, "malformed index")
                pos = end
                continue
            item: Item | None = None
            if kind == KIND_TABLE:
                if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("rows"), list):
                    item = TableBlock(doc["kind"], doc["rows"], pos)
            elif kind == KIND_STATS and isinstance(doc, dict):
                item = StatsBlock(doc, pos)
            if item is None:
                self._skip(pos, h, f"malformed {name}")
                pos = end
                continue
            counts[name] = counts.get(name, 0) + 1
            yield item
            pos = end
        if self.complete:
            if pos < self.size:
                self._note(f"ignored {self.size - pos} bytes after the end of the capture at byte {pos}")
        else:
            self._note(
                f"capture truncated: recovered {self.events} events in {event_blocks} blocks, "
                f"lost the tail after byte {good_end}"
            )

    def _skip(self, pos: int, h: BlockHead, why: str) -> None:
        self.damaged = True
        what = f"skipped {h.count} events" if h.kind == KIND_EVENTS else "skipped"
        self._note(f"damaged block at byte {pos} ({why}): {what}")


def _maybe_cut(head: bytes) -> bool:
    """Whether a short read at the end of the file could be the start of a block header."""
    n = min(len(head), len(SYNC))
    return head[:n] == SYNC[:n]


def _index_entries(doc: Any) -> list[IndexEntry]:
    if not isinstance(doc, list):
        raise CaptureError("malformed index")
    out = []
    for e in doc:
        if not (isinstance(e, list) and len(e) == 4 and all(isinstance(v, int) for v in e)):
            raise CaptureError("malformed index")
        out.append(IndexEntry(*e))
    return out
