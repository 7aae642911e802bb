"""Ring-buffer consumer (pure-Python twin of ext/ring.pyx): a ctypes callback per record."""

from __future__ import annotations

import ctypes
import struct
from typing import Any

# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class Ring:
    """Drains a BPF ring buffer map into batches of raw records."""

    def __init__(self, map_fd: int, ts_offset: int) -> None:
        # libbpf's ring buffer, which bcc's own wraps; not libbcc, whose loading maps LLVM (~60 MB).
        lib = ctypes.CDLL("libbpf.so.1")
        lib.ring_buffer__new.restype = ctypes.c_void_p
        lib.ring_buffer__new.argtypes = [ctypes.c_int, _SAMPLE_FN, ctypes.c_void_p, ctypes.c_void_p]
        lib.ring_buffer__consume.argtypes = [ctypes.c_void_p]
        lib.ring_buffer__free.argtypes = [ctypes.c_void_p]
        self._lib: Any = lib
        self._buf = bytearray()
        self._offset = ts_offset
        self._count = 0
        self._cb = _SAMPLE_FN(self._on_record)  # kept alive as long as the ring
        self._rb = lib.ring_buffer__new(map_fd, self._cb, None, None)
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
        self._lib.ring_buffer__consume(self._rb)
        return bytes(self._buf)

    @property
    def count(self) -> int:
        """Records copied so far."""
        return self._count

    @property
    def lost(self) -> int:
        """Records dropped in user space: none, a record leaves the ring only once copied."""
        return 0

    def close(self) -> None:
        if self._rb:
            self._lib.ring_buffer__free(self._rb)
            self._rb = None
