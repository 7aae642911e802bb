"""Ring-buffer consumer (pure-Python twin of ext/ring.pyx): a ctypes callback per record."""

from __future__ import annotations

import ctypes
import struct
from typing import Any


class Ring:
    """Drains a BPF ring buffer map into batches of raw records."""

    def __init__(self, map_fd: int, ts_offset: int, batch_bytes: int = 4 << 20) -> None:
        from bcc.libbcc import _RINGBUF_CB_TYPE, lib

        self._lib: Any = lib
        self._buf = bytearray()
        self._offset = ts_offset
        self._count = 0
        self._cb = _RINGBUF_CB_TYPE(self._on_record)  # kept alive as long as the ring
        self._rb = lib.bpf_new_ringbuf(map_fd, self._cb, None)
        if not self._rb:
            raise OSError("cannot open the ring buffer")

    def _on_record(self, _ctx: Any, data: int, size: int) -> int:
        # Never raise through C: ctypes would print and swallow the error.
        rec = bytearray(ctypes.string_at(data, size))
        struct.pack_into("<Q", rec, 0, (struct.unpack_from("<Q", rec)[0] + self._offset) & (2**64 - 1))
        self._buf += rec
        self._count += 1
        return 0

    def drain(self) -> bytes:
        """Copy every pending record and return them as one bytes object (b"" when none)."""
        self._buf = bytearray()
        self._lib.bpf_consume_ringbuf(self._rb)
        return bytes(self._buf)

    @property
    def count(self) -> int:
        """Records copied so far."""
        return self._count

    @property
    def lost(self) -> int:
        """Records dropped in user space (the batch could not grow)."""
        return 0

    def close(self) -> None:
        if self._rb:
            self._lib.bpf_free_ringbuf(self._rb)
            self._rb = None
