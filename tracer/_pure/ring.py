"""Ring-buffer consumer (pure-Python twin of ext/ring.pyx): a ctypes callback per record.

An exception in the callback cannot cross C (ctypes would print and swallow it): the callback keeps
it and stops the drain, and ``drain`` raises it once libbpf has returned.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import Any

from ..schema.record import OFF_TS, REC_HEAD

__all__ = ["Ring"]

# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_U64 = struct.Struct("<Q")


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
        self._error: BaseException | None = None  # what stopped the drain, raised by drain()
        self._cb = _SAMPLE_FN(self._on_record)  # kept alive as long as the ring
        self._rb = lib.ring_buffer__new(map_fd, self._cb, None, None)
        if not self._rb:
            raise OSError("cannot open the ring buffer")

    def _on_record(self, _ctx: Any, data: int, size: int) -> int:
        try:
            if size < REC_HEAD:
                raise OSError(errno.EBADMSG, f"a ring buffer record of {size} bytes, shorter than a record head "
                                             f"({REC_HEAD})")
            rec = bytearray(ctypes.string_at(data, size))
            _U64.pack_into(rec, OFF_TS, (_U64.unpack_from(rec, OFF_TS)[0] + self._offset) & (2**64 - 1))
            self._buf += rec
            self._count += 1
            return 0
        except BaseException as e:  # never through C: kept, and raised by drain()
            self._error = e
            return -1  # libbpf stops and returns it

    def drain(self) -> bytes:
        """Copy every pending record and return them as one bytes object (b"" when none).

        OSError when libbpf reports a failure or a record is too short to be one (EBADMSG); the
        records copied before it in this drain are lost with it."""
        self._buf = bytearray()
        n = self._lib.ring_buffer__consume(self._rb)
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if n < 0:
            raise OSError(-n, f"cannot drain the ring buffer: {os.strerror(-n)}")
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
