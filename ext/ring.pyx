# cython: language_level=3, boundscheck=False, wraparound=False
"""Ring-buffer consumer: a C callback copies each record into a batch buffer.

libbpf calls ``_on_record`` for every record; it only copies bytes and fixes the timestamp (kernel
monotonic -> epoch), and never touches Python objects, so it runs without the GIL and cannot raise.
One Python object is made per batch, never per event. A record too short to be one stops the
drain: the callback keeps what went wrong and ``drain`` raises it once libbpf has returned.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.errno cimport EBADMSG
from libc.string cimport memcpy

import os

include "record.pxi"

__all__ = ["Ring"]

ctypedef int (*sample_fn)(void *ctx, void *data, size_t size) noexcept nogil
ctypedef void *(*new_ringbuf_fn)(int fd, sample_fn cb, void *ctx, void *opts) noexcept nogil
ctypedef int (*consume_fn)(void *rb) noexcept nogil
ctypedef void (*free_ringbuf_fn)(void *rb) noexcept nogil

cdef struct batch_t:
    uint8_t *buf
    size_t used
    size_t cap
    uint64_t offset     # added to every record's ts
    uint64_t count
    uint64_t lost       # records dropped because the batch could not grow (out of memory)
    int error           # what stopped the drain (-errno), 0 if nothing did
    size_t bad_size     # with -EBADMSG: the size of the record that was not one


cdef int _on_record(void *ctx, void *data, size_t size) noexcept nogil:
    cdef batch_t *b = <batch_t *>ctx
    cdef uint8_t *grown
    if size < REC_HEAD:
        b.error = -EBADMSG
        b.bad_size = size
        return b.error  # libbpf stops and returns it
    # libbpf has already consumed the record when it calls us: refusing it would lose it, so grow.
    if b.used + size > b.cap:
        grown = <uint8_t *>realloc(b.buf, b.cap * 2)
        if grown == NULL:
            b.lost += 1
            return 0
        b.buf = grown
        b.cap *= 2
    cdef uint8_t *dst = b.buf + b.used
    memcpy(dst, data, size)
    (<uint64_t *>dst)[0] += b.offset
    b.used += size
    b.count += 1
    return 0


cdef class Ring:
    """Drains a BPF ring buffer map into batches of raw records."""

    cdef batch_t batch
    cdef void *rb
    cdef consume_fn consume
    cdef free_ringbuf_fn free_rb

    def __cinit__(self, int map_fd, uint64_t ts_offset, size_t batch_bytes=4 << 20):
        import ctypes

        # libbpf's ring buffer, which bcc's own wraps; not libbcc, whose loading maps LLVM (~60 MB).
        lib = ctypes.CDLL("libbpf.so.1")

        self.batch.buf = <uint8_t *>malloc(batch_bytes)
        if self.batch.buf == NULL:
            raise MemoryError()
        self.batch.cap = batch_bytes
        self.batch.used = 0
        self.batch.offset = ts_offset
        self.batch.count = 0
        self.batch.lost = 0
        self.batch.error = 0
        cdef new_ringbuf_fn new_rb = <new_ringbuf_fn><size_t>ctypes.cast(
            lib.ring_buffer__new, ctypes.c_void_p).value
        self.consume = <consume_fn><size_t>ctypes.cast(lib.ring_buffer__consume, ctypes.c_void_p).value
        self.free_rb = <free_ringbuf_fn><size_t>ctypes.cast(lib.ring_buffer__free, ctypes.c_void_p).value
        self.rb = new_rb(map_fd, _on_record, &self.batch, NULL)
        if self.rb == NULL:
            raise OSError("cannot open the ring buffer")

    def drain(self):
        """Copy every pending record and return them as one bytes object (b"" when none).

        OSError when libbpf reports a failure or a record is too short to be one (EBADMSG); the
        records copied before it in this drain are lost with it."""
        cdef int n
        self.batch.used = 0
        with nogil:
            n = self.consume(self.rb)
        if self.batch.error:
            err = -self.batch.error
            self.batch.error = 0
            raise OSError(err, f"a ring buffer record of {self.batch.bad_size} bytes, shorter than a record head "
                               f"({REC_HEAD})")
        if n < 0:
            raise OSError(-n, f"cannot drain the ring buffer: {os.strerror(-n)}")
        if self.batch.used == 0:
            return b""
        return (<char *>self.batch.buf)[:self.batch.used]

    @property
    def count(self):
        """Records copied so far."""
        return self.batch.count

    @property
    def lost(self):
        """Records dropped in user space (the batch could not grow)."""
        return self.batch.lost

    def close(self):
        if self.rb != NULL:
            self.free_rb(self.rb)
            self.rb = NULL

    def __dealloc__(self):
        if self.rb != NULL:
            self.free_rb(self.rb)
        free(self.batch.buf)
