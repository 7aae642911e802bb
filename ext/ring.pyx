# cython: language_level=3, boundscheck=False, wraparound=False
"""Ring-buffer consumer: the BPF ring buffer's pages walked in C, records copied into one bytes object.

The kernel's ring buffer map is mapped as libbpf maps it: the consumer position (read-write page),
then the producer position and the data area (read-only), the data mapped twice in a row so a
record that wraps around the end is contiguous. A drain reads the producer position once, copies
every committed record (its 8-byte ring header stripped, its timestamp turned from kernel monotonic
into epoch ns) straight into a bytes object sized for what is pending, and publishes the new
consumer position once at the end.

libbpf's ``ring_buffer__consume`` did the same walk but called back once per record and stored the
consumer position after each one, a cache line the producers on the other CPUs read on every
reserve; the batch it filled was then copied again into the bytes handed on. Walking the pages
here makes one copy per record and one store per drain. No Python object is made per event, and
the copy runs without the GIL. A record too short to be one stops the drain: it is consumed, and
``drain`` raises EBADMSG, the records copied before it in that drain lost with it (as when
libbpf's callback refused one).
"""

from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap
from posix.unistd cimport sysconf, _SC_PAGESIZE
from libc.errno cimport EBADMSG

include "record.pxi"

__all__ = ["Ring"]

cdef extern from "Python.h":
    # Owned references handled by hand: _PyBytes_Resize may move the object.
    PyObject *kt_bytes_new "PyBytes_FromStringAndSize"(const char *v, Py_ssize_t n) except NULL
    char *kt_bytes_data "PyBytes_AS_STRING"(PyObject *o) nogil
    int _PyBytes_Resize(PyObject **string, Py_ssize_t newsize) except -1

cdef extern from *:
    """
    /* The kernel publishes positions and record lengths with release stores (kernel/bpf/ringbuf.c). */
    static inline unsigned long kt_load_pos(const unsigned long *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline void kt_store_pos(unsigned long *p, unsigned long v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    static inline unsigned int kt_load_len(const unsigned int *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    /* include/uapi/linux/bpf.h */
    #define KT_RB_BUSY (1U << 31)     /* reserved, not yet committed */
    #define KT_RB_DISCARD (1U << 30)  /* committed as discarded: skipped */
    #define KT_RB_HDR_SZ 8            /* u32 length with the two bits, u32 page offset */
    """
    unsigned long kt_load_pos(const unsigned long *p) nogil
    void kt_store_pos(unsigned long *p, unsigned long v) nogil
    unsigned int kt_load_len(const unsigned int *p) nogil
    const uint32_t KT_RB_BUSY
    const uint32_t KT_RB_DISCARD
    const uint64_t KT_RB_HDR_SZ


cdef uint64_t _walk(const uint8_t *data, uint64_t mask, uint64_t cons, uint64_t prod, uint8_t *dst,
                    uint64_t offset, uint64_t *copied, uint64_t *records, uint32_t *bad) noexcept nogil:
    """Copy the committed records in [cons, prod) to dst; return the position after the last one
    (after a record too short to be one, whose size goes to ``bad``)."""
    cdef uint64_t used = 0, n = 0
    cdef const uint8_t *hdr
    cdef uint32_t length
    while cons < prod:
        hdr = data + (cons & mask)
        length = kt_load_len(<const unsigned int *>hdr)
        if length & KT_RB_BUSY:
            break  # the rest waits for the next drain
        if not (length & KT_RB_DISCARD) and length < REC_HEAD:
            bad[0] = length
            cons += (length + KT_RB_HDR_SZ + 7) & ~(<uint64_t>7)
            break
        if not (length & KT_RB_DISCARD):
            memcpy(dst + used, hdr + KT_RB_HDR_SZ, length)
            (<uint64_t *>(dst + used))[0] += offset
            used += length
            n += 1
        length &= ~(<uint32_t>(KT_RB_BUSY | KT_RB_DISCARD))
        cons += (length + KT_RB_HDR_SZ + 7) & ~(<uint64_t>7)
    copied[0] = used
    records[0] = n
    return cons


cdef class Ring:
    """Drains a BPF ring buffer map into batches of raw records."""

    cdef unsigned long *consumer_pos
    cdef const unsigned long *producer_pos
    cdef const uint8_t *data
    cdef uint64_t mask
    cdef size_t page
    cdef size_t data_map_len
    cdef void *cons_map
    cdef void *prod_map
    cdef uint64_t offset
    cdef uint64_t _count

    def __cinit__(self, int map_fd, uint64_t ts_offset):
        from tracer.probe.bpfsys import map_info

        self.cons_map = MAP_FAILED
        self.prod_map = MAP_FAILED
        cdef uint64_t size = map_info(map_fd).max_entries
        if size == 0 or size & (size - 1):
            raise OSError(f"not a ring buffer map (size {size})")
        self.page = <size_t>sysconf(_SC_PAGESIZE)
        self.mask = size - 1
        self.offset = ts_offset
        self._count = 0
        self.cons_map = mmap(NULL, self.page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0)
        if self.cons_map == MAP_FAILED:
            raise OSError("cannot map the ring buffer's consumer page")
        self.data_map_len = self.page + 2 * size
        self.prod_map = mmap(NULL, self.data_map_len, PROT_READ, MAP_SHARED, map_fd, <long>self.page)
        if self.prod_map == MAP_FAILED:
            raise OSError("cannot map the ring buffer's data")
        self.consumer_pos = <unsigned long *>self.cons_map
        self.producer_pos = <const unsigned long *>self.prod_map
        self.data = <const uint8_t *>self.prod_map + self.page

    def drain(self):
        """Copy every pending record and return them as one bytes object (b"" when none).

        OSError (EBADMSG) when a record is too short to be one; the records copied before it in
        this drain are lost with it."""
        if self.cons_map == MAP_FAILED:
            return b""
        cdef uint64_t cons = kt_load_pos(self.consumer_pos)
        cdef uint64_t prod = kt_load_pos(self.producer_pos)
        if prod == cons:
            return b""
        # What is pending, ring headers included, bounds what is copied.
        cdef PyObject *out = kt_bytes_new(NULL, <Py_ssize_t>(prod - cons))
        cdef uint8_t *dst = <uint8_t *>kt_bytes_data(out)
        cdef uint64_t used = 0, n = 0
        cdef uint32_t bad = 0xFFFFFFFF
        with nogil:
            cons = _walk(self.data, self.mask, cons, prod, dst, self.offset, &used, &n, &bad)
            kt_store_pos(self.consumer_pos, cons)
        if bad != 0xFFFFFFFF:
            Py_XDECREF(out)
            raise OSError(EBADMSG, f"a ring buffer record of {bad} bytes, shorter than a record head ({REC_HEAD})")
        self._count += n
        if used == 0:
            Py_XDECREF(out)
            return b""
        _PyBytes_Resize(&out, <Py_ssize_t>used)  # on failure out is freed and NULL
        result = <object>out
        Py_XDECREF(out)
        return result

    @property
    def count(self):
        """Records copied so far."""
        return self._count

    @property
    def lost(self):
        """Records dropped in user space: none, a record leaves the ring only once copied."""
        return 0

    def close(self):
        if self.prod_map != MAP_FAILED:
            munmap(self.prod_map, self.data_map_len)
            self.prod_map = MAP_FAILED
        if self.cons_map != MAP_FAILED:
            munmap(self.cons_map, self.page)
            self.cons_map = MAP_FAILED

    def __dealloc__(self):
        self.close()
