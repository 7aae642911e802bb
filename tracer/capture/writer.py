"""CaptureWriter: batches of records in, .kcap files out, without blocking the capture path.

The caller's thread only queues: ``write_events`` appends the batch to a queue bounded by bytes
and returns. A background thread coalesces batches into blocks of about ``block_size`` raw bytes,
compresses them (zstd releases the GIL) and writes them. A block is written when enough bytes
are queued, or when the oldest queued batch is ``flush_interval`` seconds old, so a kill -9 loses
about that much. If the queue ever holds ``queue_limit`` bytes the caller waits for room rather
than lose data; such waits are counted (``stats["stalls"]``, ``stats["stall_seconds"]``) and
written into every STATS block under ``"writer"``.

Files are created with mode 0600. Each file, including every rotated one, starts with the header
and the latest TABLE block of each kind, and ends (on rotation or ``close``) with a STATS block
(the caller's latest stats plus the writer's counters), the INDEX and the FOOTER.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import sys
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any, Final

import msgpack

from tracer.capture import blockcodec
from tracer.capture.format import (
    FOOTER_FMT,
    FOOTER_RAW,
    KIND_EVENTS,
    KIND_FOOTER,
    KIND_INDEX,
    KIND_STATS,
    KIND_TABLE,
    MAX_BLOCK,
    pack_block_head,
    pack_file_header,
)
from tracer.capture.rotate import RotatePolicy, Rotation
from tracer.errors import CaptureError

_EV: Final = 0
_TABLE: Final = 1
_STATS: Final = 2
_FLUSH: Final = 3

_SMALL: Final = 512  # control blocks below this are stored uncompressed


def machine_info() -> dict[str, Any]:
    """This machine's facts for the capture header: hostname, kernel, boot_time (ns), cpus."""
    boot_ns = 0
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    boot_ns = int(line.split()[1]) * 1_000_000_000
                    break
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "kernel": os.uname().release,
        "boot_time": boot_ns,
        "cpus": os.cpu_count() or 0,
    }


class _File:
    """One open capture file (writer thread only)."""

    __slots__ = ("blocks", "events", "fd", "index", "name", "offset", "regular")

    def __init__(self, name: str, fd: int, regular: bool) -> None:
        self.name = name
        self.fd = fd
        self.regular = regular
        self.offset = 0
        self.events = 0
        self.blocks = 0
        self.index: list[tuple[int, int, int, int]] = []


class CaptureWriter:
    """Write a capture (or a rotated set of captures) from batches of raw records.

    ``meta`` goes into each file's header (defaults: ``machine`` from this host, ``cmdline`` =
    sys.argv, ``snaplen`` 80, ``schema_version`` 0); ``start_time`` and ``file_seq`` are set per
    file. Opening the first file happens here, so a bad path raises CaptureError at once; later
    I/O errors are raised by the next call after them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: dict[str, Any],
        *,
        flush_interval: float = 1.0,
        rotate: RotatePolicy | None = None,
        codec: int = blockcodec.CODEC_ZSTD,
        level: int = blockcodec.DEFAULT_LEVEL,
        block_size: int = 1 << 20,
        queue_limit: int = 64 << 20,
    ) -> None:
        if codec not in blockcodec.CODEC_NAMES:
            raise ValueError(f"unknown codec {codec}")
        self._meta: dict[str, Any] = {
            "machine": machine_info(),
            "cmdline": list(sys.argv),
            "snaplen": 80,
            "schema_version": 0,
        }
        self._meta.update(meta)
        self._interval = flush_interval
        self._policy = rotate if rotate is not None and rotate.rotates else None
        self._codec = codec
        self._level = level
        self._block_size = max(1, min(block_size, MAX_BLOCK // 2))
        self._queue_limit = max(queue_limit, self._block_size)
        self._rot = Rotation(os.fspath(path), self._policy, time.time())

        self._cond = threading.Condition()
        self._q: deque[tuple[Any, ...]] = deque()
        self._queued = 0  # event bytes in the deque
        self._inflight = 0  # event bytes queued or taken but not yet written
        self._nctrl = 0  # control items in the deque
        self._waiting = 0
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._finished = False

        # Writer-thread state.
        self._tables: dict[str, tuple[bytes, int]] = {}
        self._last_stats: bytes | None = None
        self._pending: list[bytes] = []
        self._pend_bytes = 0
        self._pend_count = 0
        self._pend_first = 0
        self._pend_last = 0
        self._counters: dict[str, Any] = {
            "events": 0,
            "blocks": 0,
            "raw_bytes": 0,
            "bytes": 0,
            "files": 0,
            "stalls": 0,
            "stall_seconds": 0.0,
            "dropped_after_finish": 0,
        }
        self._files: list[str] = []
        self._file: _File | None = None
        try:
            self._open_file(self._rot.name)
        except OSError as e:
            raise CaptureError(f"cannot write capture {self._rot.name}: {e.strerror or e}") from None
        self._thread = threading.Thread(target=self._run, name="ktrace-capture-writer", daemon=True)
        self._thread.start()

    # --- caller side ---------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once ``-G`` with ``-W N`` has written its N files: the caller should stop."""
        return self._finished

    @property
    def stats(self) -> dict[str, Any]:
        """The writer's counters: events, blocks, raw_bytes, bytes, files, stalls, stall_seconds ..."""
        with self._cond:
            return dict(self._counters)

    @property
    def files(self) -> list[str]:
        """Names of the files opened so far, in order (a ring's names repeat)."""
        return list(self._files)

    def _check(self) -> None:
        if self._error is not None:
            e = self._error
            if isinstance(e, OSError):
                raise CaptureError(f"cannot write capture: {e.strerror or e}")
            raise CaptureError(f"capture writer failed: {e}")
        if self._closing:
            raise CaptureError("capture writer is closed")

    def write_events(self, batch: bytes, count: int, first_ts: int, last_ts: int) -> None:
        """Queue ``count`` concatenated records (the first at ``first_ts``, the last at ``last_ts``).

        The writer keeps ``batch`` until it is written: pass bytes, or a buffer never reused.
        Waits only when ``queue_limit`` bytes are already queued (counted as a stall).
        """
        n = len(batch)
        if not n:
            return
        with self._cond:
            self._check()
            if self._inflight + n > self._queue_limit and self._inflight:
                t0 = time.monotonic()
                self._counters["stalls"] += 1
                self._waiting += 1
                try:
                    while self._inflight + n > self._queue_limit and self._inflight and self._error is None:
                        self._cond.wait(0.1)
                finally:
                    self._waiting -= 1
                    self._counters["stall_seconds"] += time.monotonic() - t0
                self._check()
            was = self._queued
            self._q.append((_EV, time.monotonic(), batch, count, first_ts, last_ts))
            self._queued = was + n
            self._inflight += n
            if not was or (was < self._block_size <= self._queued):
                self._cond.notify()

    def _control(self, item: tuple[Any, ...]) -> None:
        with self._cond:
            self._check()
            self._q.append(item)
            self._nctrl += 1
            self._cond.notify()

    def write_table(self, kind: str, rows: list[Any]) -> None:
        """Queue a TABLE block; the rows are also kept to head every later rotated file."""
        payload = msgpack.packb({"kind": kind, "rows": rows}, use_bin_type=True)
        self._control((_TABLE, time.monotonic(), kind, payload, len(rows)))

    def write_stats(self, stats: dict[str, Any]) -> None:
        """Queue a STATS block: the caller's counters (``drops`` {cause: n} ...) and the writer's."""
        doc = dict(stats)
        doc["writer"] = self.stats
        payload = msgpack.packb(doc, use_bin_type=True)
        self._control((_STATS, time.monotonic(), payload))

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued so far; True once written (False on timeout)."""
        done = threading.Event()
        self._control((_FLUSH, time.monotonic(), done))
        ok = done.wait(timeout)
        self._check()
        return ok

    def close(self) -> None:
        """Write what is queued, end the file (stats, index, footer) and stop the thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            e = self._error
            if isinstance(e, OSError):
                raise CaptureError(f"cannot write capture: {e.strerror or e}")
            raise CaptureError(f"capture writer failed: {e}")

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- writer thread -------------------------------------------------------------------------

    def _take(self) -> tuple[list[tuple[Any, ...]], bool]:
        """Wait for work; return the items to process and whether the writer is closing."""
        with self._cond:
            while True:
                q = self._q
                if self._closing or self._nctrl:
                    items = list(q)
                    q.clear()
                    self._queued = 0
                    self._nctrl = 0
                    return items, self._closing
                if self._queued >= self._block_size:
                    items = []
                    taken = 0
                    # Whole batches up to about one block (at least one batch).
                    while q and (not items or taken + len(q[0][2]) <= self._block_size):
                        it = q.popleft()
                        items.append(it)
                        taken += len(it[2])
                    self._queued -= taken
                    return items, False
                if q:
                    wait = q[0][1] + self._interval - time.monotonic()
                    if wait <= 0:
                        items = list(q)
                        q.clear()
                        self._queued = 0
                        return items, False
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        items: list[tuple[Any, ...]] = []
        try:
            while True:
                items, closing = self._take()
                self._process(items)
                if closing:
                    break
            self._end_file()
        except BaseException as e:  # reported to the caller by its next call
            with self._cond:
                self._error = e
                for it in (*items, *self._q):
                    if it[0] == _FLUSH:
                        it[2].set()
                self._q.clear()
                self._queued = self._inflight = self._nctrl = 0
                self._cond.notify_all()
            if self._file is not None:
                with contextlib.suppress(OSError):
                    os.close(self._file.fd)
                self._file = None

    def _process(self, items: list[tuple[Any, ...]]) -> None:
        for it in items:
            tag = it[0]
            if tag == _EV:
                self._add_events(it[2], it[3], it[4], it[5])
            elif tag == _TABLE:
                self._emit()
                self._tables[it[2]] = (it[3], it[4])
                self._write_block(KIND_TABLE, it[3], count=it[4])
            elif tag == _STATS:
                self._emit()
                self._last_stats = it[2]
                self._write_block(KIND_STATS, it[2])
            else:
                self._emit()
                it[2].set()
        self._emit()

    def _add_events(self, batch: bytes, count: int, first_ts: int, last_ts: int) -> None:
        rot = self._rot
        policy = self._policy
        if self._finished:
            self._release(len(batch))
            with self._cond:
                self._counters["dropped_after_finish"] += count
            return
        if policy is not None and rot.time_due(first_ts):
            self._emit()
            name = rot.next_slice(first_ts)
            if name is None:
                self._finished = True
                self._release(len(batch))
                with self._cond:
                    self._counters["dropped_after_finish"] += count
                return
            self._switch(name)
        while policy is not None and policy.events is not None:
            assert self._file is not None
            in_file = self._file.events + self._pend_count
            if in_file >= policy.events:
                self._emit()
                self._switch(rot.next_part())
                in_file = 0
            room = policy.events - in_file
            if count <= room:
                break
            cut, n, head_last, tail_first = blockcodec.cut_records(batch, room)
            self._append(batch[:cut], n, first_ts, head_last)
            batch, count, first_ts = batch[cut:], count - n, tail_first
        if len(batch) > MAX_BLOCK // 2:
            while len(batch) > MAX_BLOCK // 2:
                cut, n, head_last, tail_first = blockcodec.cut_bytes(batch, MAX_BLOCK // 2)
                self._append(batch[:cut], n, first_ts, head_last)
                batch, count, first_ts = batch[cut:], count - n, tail_first
        if batch:
            self._append(batch, count, first_ts, last_ts)

    def _append(self, batch: bytes, count: int, first_ts: int, last_ts: int) -> None:
        # Batches are joined into one block only up to the block size: a live drain is about a
        # block already, and joining two (a copy of both) cost 6% of ktrace's CPU under nginx.
        if self._pend_bytes and self._pend_bytes + len(batch) > self._block_size:
            self._emit()
        if not self._pending:
            self._pend_first = first_ts
        self._pending.append(batch)
        self._pend_bytes += len(batch)
        self._pend_count += count
        self._pend_last = last_ts
        if self._pend_bytes >= self._block_size:
            self._emit()

    def _release(self, nbytes: int) -> None:
        with self._cond:
            self._inflight = max(0, self._inflight - nbytes)
            if self._waiting:
                self._cond.notify_all()

    def _emit(self) -> None:
        """Write the pending batches as one EVENTS block."""
        if not self._pending:
            return
        raw = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        count, first, last = self._pend_count, self._pend_first, self._pend_last
        self._pending = []
        self._pend_bytes = self._pend_count = 0
        limit = self._policy.size_limit if self._policy is not None else None
        if limit is not None and self._file is not None and self._file.offset > limit:
            self._switch(self._rot.next_part())
        f = self._file
        assert f is not None
        stored = blockcodec.encode_block(raw, self._codec, self._level)
        f.index.append((f.offset, first, last, count))
        self._write_block(KIND_EVENTS, stored, raw_len=len(raw), codec=self._codec, count=count, first=first, last=last)
        f.events += count
        with self._cond:
            self._counters["events"] += count
            self._counters["raw_bytes"] += len(raw)
            self._inflight = max(0, self._inflight - len(raw))
            if self._waiting:
                self._cond.notify_all()

    def _write_block(
        self,
        kind: int,
        data: bytes,
        *,
        raw_len: int | None = None,
        codec: int | None = None,
        count: int = 0,
        first: int = 0,
        last: int = 0,
    ) -> int:
        """Write one block (control blocks are compressed here); return its offset."""
        f = self._file
        assert f is not None
        if codec is None:
            raw_len = len(data)
            codec = blockcodec.CODEC_ZSTD if raw_len >= _SMALL else blockcodec.CODEC_NONE
            data = blockcodec.encode_block(data, codec, self._level)
        assert raw_len is not None
        head = pack_block_head(kind, codec, data, raw_len, count, first, last)
        off = f.offset
        _write_all(f.fd, head, data)
        f.offset += len(head) + len(data)
        f.blocks += 1
        with self._cond:
            self._counters["blocks"] += 1
            self._counters["bytes"] += len(head) + len(data)
        return off

    def _open_file(self, name: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            if regular:  # never chmod /dev/null or a pipe
                os.fchmod(fd, 0o600)  # O_CREAT's mode is cut by the umask and ignored for an old file
            meta = dict(self._meta)
            meta["start_time"] = time.time_ns()
            meta["file_seq"] = len(self._files)
            head = pack_file_header(meta)
            _write_all(fd, head)
        except BaseException:
            os.close(fd)
            raise
        f = _File(name, fd, regular)
        f.offset = len(head)
        self._file = f
        self._files.append(name)
        with self._cond:
            self._counters["files"] += 1
            self._counters["bytes"] += len(head)
        for payload, nrows in self._tables.values():
            self._write_block(KIND_TABLE, payload, count=nrows)

    def _end_file(self) -> None:
        f = self._file
        if f is None:
            return
        self._emit()
        doc: dict[str, Any] = {}
        if self._last_stats is not None:
            doc = msgpack.unpackb(self._last_stats, raw=False)
        doc["writer"] = self.stats
        self._write_block(KIND_STATS, msgpack.packb(doc, use_bin_type=True))
        index_off = self._write_block(KIND_INDEX, msgpack.packb([list(e) for e in f.index]), count=len(f.index))
        self._write_block(
            KIND_FOOTER,
            struct.pack(FOOTER_FMT, index_off, f.events, f.blocks),
            codec=blockcodec.CODEC_NONE,
            raw_len=FOOTER_RAW,
        )
        if f.regular:
            os.fsync(f.fd)
        os.close(f.fd)
        self._file = None

    def _switch(self, name: str) -> None:
        self._end_file()
        self._open_file(name)


def _write_all(fd: int, *parts: bytes) -> None:
    """Write every byte (os.writev may write less on a full disk or a signal)."""
    buf = list(parts)
    while buf:
        n = os.writev(fd, buf)
        if n <= 0:
            raise OSError("short write")
        while buf and n >= len(buf[0]):
            n -= len(buf[0])
            buf.pop(0)
        if buf and n:
            buf[0] = buf[0][n:]
