# cython: boundscheck=False, wraparound=False, cdivision=True
"""Records to EV_V2 blocks by compiled recipe, in C: the hot loop of ``ktrace -w FILE.scap``.

Twin: tracer/_pure/scapwrite.py (same names, signatures, bytes). The recipes come from
tracer/capture/scap/recipe.py, which documents the operations.
"""

include "record.pxi"

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy

cimport cython

cdef enum:
    F_FAST = 1
    F_NEEDS_ENTER = 2
    F_APPLY = 4
    F_PEEK = 8
    F_HIDE = 16
    OP_INT = 1
    OP_CONST = 2
    OP_SEGSTR = 3
    OP_SEGBUF = 4
    OP_MEMO = 5
    OP_SEGCALL = 6
    OP_ENTERFD = 7
    OP_TUPLE = 8
    OP_PEEK = 16
    X_NONE = 0
    X_S32 = 1
    X_U32 = 2
    X_MAX0 = 3
    X_FDRET = 4
    SRC_RET = 6
    MEMO_MAX = 4096
    EV_FIXED = 26  # ts, tid, length, type, nparams: what an event's length counts beside its params
    EV_HEAD = 36  # block type, total, cpu, then EV_FIXED
    MAX_PARAMS = 64
    O_CREAT_WRONLY_TRUNC = 0o1101
    O_CLOEXEC = 0o2000000

cdef struct op_t:
    int code
    int a
    int b
    int width
    uint64_t last  # OP_MEMO: the value last encoded, and its bytes (a reference held; NULL: none)
    PyObject *enc

cdef packed struct ev_head:
    uint32_t btype
    uint32_t total
    uint16_t cpu
    uint64_t ts
    uint64_t tid
    uint32_t length
    uint16_t etype
    uint32_t nparams


cdef inline int64_t xform(int64_t v, int xf) nogil:
    if xf == X_S32:
        return <int32_t>v
    if xf == X_U32:
        return <uint32_t>v
    if xf == X_MAX0:
        return v if v > 0 else 0
    if xf == X_FDRET:
        return v if v < 0 else <int32_t>v
    return v


cdef struct enter_slot:
    uint32_t tid
    uint32_t used
    int64_t evt  # the enter last written, not exited yet; -1: none
    int64_t fd  # the fd of the thread's last enter; -1: none


@cython.final
cdef class Enters:
    """Per thread, the syscall enter last written whose exit has not been (-1: none), and the fd
    of its last enter (-1: none): the exporter's bookkeeping, kept by its recipes and its own path
    alike, in C (a dict per field cost more than the rest of a recipe)."""

    cdef enter_slot *slots
    cdef uint32_t mask
    cdef uint32_t n

    def __cinit__(self):
        self.mask = 1023
        self.n = 0
        self.slots = <enter_slot *>PyMem_Calloc(self.mask + 1, sizeof(enter_slot))
        if self.slots == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.slots)

    cdef inline enter_slot *find(self, uint32_t tid) noexcept:
        cdef uint32_t i = (tid * 2654435761u) & self.mask
        while self.slots[i].used:
            if self.slots[i].tid == tid:
                return &self.slots[i]
            i = (i + 1) & self.mask
        return NULL

    cdef enter_slot *get(self, uint32_t tid) except NULL:
        """The thread's slot, made (both fields -1) if it has none."""
        cdef enter_slot *s = self.find(tid)
        cdef enter_slot *old
        cdef uint32_t i, j, cap
        if s != NULL:
            return s
        if (self.n + 1) * 2 > self.mask + 1:
            old, cap = self.slots, self.mask + 1
            self.slots = <enter_slot *>PyMem_Calloc(cap * 2, sizeof(enter_slot))
            if self.slots == NULL:
                self.slots = old
                raise MemoryError()
            self.mask = cap * 2 - 1
            for j in range(cap):
                if old[j].used:
                    i = (old[j].tid * 2654435761u) & self.mask
                    while self.slots[i].used:
                        i = (i + 1) & self.mask
                    self.slots[i] = old[j]
            PyMem_Free(old)
        i = (tid * 2654435761u) & self.mask
        while self.slots[i].used:
            i = (i + 1) & self.mask
        s = &self.slots[i]
        s.tid, s.used, s.evt, s.fd = tid, 1, -1, -1
        self.n += 1
        return s

    def entered(self, uint32_t tid):
        """The enter last written for the thread and not exited, -1 if none."""
        cdef enter_slot *s = self.find(tid)
        return s.evt if s != NULL else -1

    def enter(self, uint32_t tid, int64_t evt):
        """The thread's enter ``evt`` is written."""
        self.get(tid).evt = evt

    def exit(self, uint32_t tid):
        """The thread's exit is written: the enter it had (-1: none), forgotten."""
        cdef enter_slot *s = self.find(tid)
        cdef int64_t evt = -1
        if s != NULL:
            evt, s.evt = s.evt, -1
        return evt

    def enter_fd(self, uint32_t tid):
        """The fd of the thread's last enter, -1 if none."""
        cdef enter_slot *s = self.find(tid)
        return s.fd if s != NULL else -1

    def set_enter_fd(self, uint32_t tid, int64_t fd):
        self.get(tid).fd = fd


cdef inline object _fd_key(uint32_t pid, int32_t fd):
    return (<uint64_t>pid << 32) | <uint32_t>fd


cdef class Plan:
    """Per event id (syscalls, enter and exit), its PPM event type and the operations making its
    parameters; ``flags`` per event id: 1 written by recipe, 2 an exit whose enter must be the
    thread's last one written (else its missing enter is written first, by the exporter), 4 it
    changes the state, 8 an enter whose parameters are partly its exit's, 16 a hidden one of an
    unknown thread is only noted; ``fast`` per event id: the scanner's fast-path code of the fd
    change the run applies itself (0: ``apply`` does)."""

    cdef readonly bytes flags
    cdef bytes fd_regs
    cdef bytes fast
    cdef dict opens  # during a run: (pid << 32 | fd) -> offset of an open not applied yet
    cdef dict fds
    cdef object state
    cdef list objs
    cdef int nevt
    cdef uint32_t block_type
    cdef int *etypes
    cdef int *start
    cdef int *count
    cdef op_t *ops
    cdef int nops
    cdef char *out
    cdef Py_ssize_t cap

    def __init__(self, etypes, ops, list objs, bytes flags, bytes fd_regs, bytes fast, int block_type):
        cdef int i, j, total = 0
        self.nevt = len(flags)
        if len(etypes) != self.nevt or len(ops) != self.nevt or len(fd_regs) < self.nevt or len(fast) < self.nevt:
            raise ValueError("etypes, ops, flags, fd_regs and fast must cover the same event ids")
        self.flags, self.fd_regs, self.fast, self.objs, self.block_type = flags, fd_regs, fast, objs, block_type
        for o in ops:
            if len(o) > MAX_PARAMS:
                raise ValueError("too many parameters")
            total += len(o)
        self.etypes = <int *>PyMem_Malloc(self.nevt * sizeof(int))
        self.start = <int *>PyMem_Malloc(self.nevt * sizeof(int))
        self.count = <int *>PyMem_Malloc(self.nevt * sizeof(int))
        self.ops = <op_t *>PyMem_Malloc((total + 1) * sizeof(op_t))
        self.cap = 1 << 16
        self.out = <char *>PyMem_Malloc(self.cap)
        if not (self.etypes and self.start and self.count and self.ops and self.out):
            raise MemoryError()
        j = 0
        for i in range(self.nevt):
            self.etypes[i] = etypes[i]
            self.start[i] = j
            self.count[i] = len(ops[i])
            for code, a, b, width in ops[i]:
                if code == OP_CONST and not isinstance(objs[a], bytes):
                    raise ValueError("a constant must be bytes")
                if code == OP_MEMO and not (isinstance(objs[b], tuple) and len(objs[b]) == 2):
                    raise ValueError("a memo must be (dict, function)")
                self.ops[j].code, self.ops[j].a, self.ops[j].b, self.ops[j].width = code, a, b, width
                self.ops[j].last, self.ops[j].enc = 0, NULL
                self.nops = j + 1
                j += 1

    def __dealloc__(self):
        cdef int j
        if self.ops != NULL:
            for j in range(self.nops):
                Py_XDECREF(self.ops[j].enc)
        PyMem_Free(self.etypes)
        PyMem_Free(self.start)
        PyMem_Free(self.count)
        PyMem_Free(self.ops)
        PyMem_Free(self.out)

    cdef inline int reserve(self, Py_ssize_t need) except -1:
        if need <= self.cap:
            return 0
        return self.grow(need)

    cdef int grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = self.cap
        cdef char *p
        while cap < need:
            cap *= 2
        p = <char *>PyMem_Realloc(self.out, cap)
        if p == NULL:
            raise MemoryError()
        self.out, self.cap = p, cap
        return 0

    def run(self, buf, Py_ssize_t off, Enters enters, state, dict tuples, tuple_of, apply):
        """The blocks of the records of ``buf`` from ``off`` on, as long as each has a recipe (and,
        for an exit, a whole next record that is not its thread info; for an enter that takes its
        exit's parameters, that exit); keeps the exporter's ``enters`` and the ``state`` as the
        exporter would: the fd changes of close, the opens and the dups (``fast``)
        here, an open of an absolute path only once something may look at it (never, when its
        close comes first); other changes by ``apply(buf, offset)``, before the event's parameters
        are made. A socket tuple is ``tuple_of(pid, fd)`` (fd -1: the event has none), remembered in
        ``tuples`` by fd until the run changes that fd (the caller empties it when anything else
        may have changed the state). A hidden enter of a thread the state does not know is only
        noted for its exit (F_HIDE). Returns (offset after the records taken, events written,
        first ts, last ts, their blocks)."""
        cdef const uint8_t[::1] view = buf
        cdef Py_ssize_t n = view.shape[0]
        cdef const uint8_t *base
        cdef const rec_fixed *r
        cdef const rec_fixed *rp
        cdef const rec_fixed *peek = NULL
        cdef const rec_head *h
        cdef const uint8_t *seg[4]
        cdef Py_ssize_t seglen[4]
        cdef Py_ssize_t w = 0, nxt, ev_at, plen, p
        cdef uint16_t lens[MAX_PARAMS]
        cdef uint32_t length, total, body
        cdef uint16_t evt
        cdef uint8_t f, reg, code
        cdef int i, k, nops, s
        cdef int64_t v
        cdef const op_t *o
        cdef const char *src
        cdef const void *nul
        cdef uint64_t count = 0, first = 0, last = 0, raw
        cdef object key, enc, memo
        cdef enter_slot *es
        cdef bytes flags = self.flags
        cdef const uint8_t *fl = <const uint8_t *>PyBytes_AS_STRING(flags)
        cdef const uint8_t *fdr = <const uint8_t *>PyBytes_AS_STRING(self.fd_regs)
        cdef const uint8_t *fast = <const uint8_t *>PyBytes_AS_STRING(self.fast)
        cdef ev_head *eh
        cdef dict pending
        cdef object threads  # a dict, or a dict of its own kind
        if self.state is not None:
            raise RuntimeError("a Plan runs one batch at a time (one Plan per exporter)")
        if n == 0:
            return off, 0, 0, 0, b""
        base = &view[0]
        pending = state._pending
        threads = state.threads
        self.opens = {}
        self.fds = state.fds
        self.state = state
        try:
            while off + REC_FIXED <= n:
                r = <const rec_fixed *>(base + off)
                length = r.length
                if length < REC_FIXED or off + length > n:
                    break
                evt = r.evt
                if evt >= self.nevt:
                    break
                f = fl[evt]
                if (r.flags & RF_PPM) or <uint32_t>REC_FIXED + r.l0 + r.l1 > length:
                    break
                nxt = off + length
                if r.flags & RF_HIDDEN:
                    # The exporter writes nothing for it, the state only notes its payload.
                    if not f & F_HIDE or r.tid in threads:
                        break
                    if r.l0 or r.l1:
                        pending[r.tid] = (evt, PyBytes_FromStringAndSize(<const char *>base + off + REC_FIXED, r.l0),
                                          PyBytes_FromStringAndSize(<const char *>base + off + REC_FIXED + r.l0, r.l1))
                    off = nxt
                    continue
                if not f & F_FAST:
                    break
                if evt & 1:
                    if nxt + REC_FIXED > n:
                        break  # the exporter holds the last exit for what may follow it
                    h = <const rec_head *>(base + nxt)
                    if h.length < REC_FIXED or nxt + h.length > n or \
                            ((h.evt == EVT_THREADINFO or h.evt == EVT_FDINFO) and h.tid == r.tid):
                        break
                    es = enters.find(r.tid)
                    if f & F_NEEDS_ENTER and (es == NULL or es.evt != evt - 1):
                        break
                    if es != NULL:
                        es.evt = -1
                elif f & F_PEEK:
                    # Its exit, the thread's next record, must be here (else the exporter waits
                    # for it, or writes the enter without it).
                    peek = NULL
                    p = nxt
                    while p + REC_FIXED <= n:
                        rp = <const rec_fixed *>(base + p)
                        if rp.length < REC_FIXED or p + rp.length > n:
                            break
                        if rp.tid == r.tid:
                            if rp.evt == evt + 1 and <uint32_t>REC_FIXED + rp.l0 + rp.l1 <= rp.length:
                                peek = rp
                            break
                        p += rp.length
                    if peek == NULL:
                        break
                    seg[2] = <const uint8_t *>peek + REC_FIXED
                    seglen[2] = peek.l0
                    seg[3] = seg[2] + peek.l0
                    seglen[3] = peek.l1
                seg[0] = base + off + REC_FIXED
                seglen[0] = r.l0
                seg[1] = seg[0] + r.l0
                seglen[1] = r.l1
                if not evt & 1:
                    es = enters.get(r.tid)
                    es.evt = evt
                    reg = fdr[evt]
                    if reg == FD_NONE:
                        es.fd = -1
                    elif reg == FD_RET:
                        es.fd = xform(r.ret, X_FDRET)
                    else:
                        es.fd = xform(<int64_t>r.args[reg], X_S32)
                    if r.l0 or r.l1:
                        pending[r.tid] = (evt, PyBytes_FromStringAndSize(<const char *>seg[0], r.l0),
                                        PyBytes_FromStringAndSize(<const char *>seg[1], r.l1))
                if f & F_APPLY:
                    code = fast[evt]
                    if code:
                        self.apply_fd(buf, base, off, code, tuples)
                    else:
                        self.flush(base)
                        apply(buf, off)
                nops = self.count[evt]
                self.reserve(w + EV_HEAD + 2 * nops)
                ev_at = w
                w += EV_HEAD + 2 * nops
                for i in range(nops):
                    o = &self.ops[self.start[evt] + i]
                    k = o.code & ~OP_PEEK
                    rp = peek if o.code & OP_PEEK else r
                    s = o.a + (2 if o.code & OP_PEEK else 0)  # the segment, of the record or its exit
                    if k == OP_INT or k == OP_ENTERFD:
                        if k == OP_ENTERFD:
                            es = enters.find(r.tid)
                            v = es.fd if es != NULL else -1
                        else:
                            v = xform(rp.ret if o.a == SRC_RET else <int64_t>rp.args[o.a], o.b)
                        self.reserve(w + 8)
                        memcpy(self.out + w, &v, o.width)  # little-endian: the low bytes
                        plen = o.width
                    elif k == OP_SEGSTR:
                        nul = memchr(seg[s], 0, seglen[s])
                        plen = (<const uint8_t *>nul - seg[s]) if nul != NULL else seglen[s]
                        self.reserve(w + plen + 1)
                        memcpy(self.out + w, seg[s], plen)
                        self.out[w + plen] = 0
                        plen += 1
                    elif k == OP_SEGBUF:
                        plen = seglen[s]
                        self.reserve(w + plen)
                        memcpy(self.out + w, seg[s], plen)
                    else:
                        if k == OP_CONST:
                            enc = self.objs[o.a]
                        elif k == OP_TUPLE:
                            reg = fdr[evt]
                            if reg == FD_NONE:
                                v = -1
                            elif reg == FD_RET:
                                v = xform(r.ret, X_FDRET)
                            else:
                                v = xform(<int64_t>r.args[reg], X_S32)
                            if v < 0:
                                enc = tuple_of(r.pid, -1)
                            else:
                                key = _fd_key(r.pid, <int32_t>v)
                                if self.opens and key in self.opens:
                                    self.flush(base)
                                enc = tuples.get(key)
                                if enc is None:
                                    enc = tuple_of(r.pid, v)
                                    tuples[key] = enc
                        elif k == OP_MEMO:
                            raw = <uint64_t>rp.ret if o.a == SRC_RET else rp.args[o.a]
                            if o.enc != NULL and o.last == raw:
                                enc = <object>o.enc  # the same value as last time (open flags repeat)
                            else:
                                memo = <object>PyTuple_GET_ITEM(self.objs[o.b], 0)
                                if o.a == SRC_RET:
                                    key = rp.ret
                                else:
                                    key = rp.args[o.a]
                                enc = memo.get(key)
                                if enc is None:
                                    enc = (<object>PyTuple_GET_ITEM(self.objs[o.b], 1))(key)
                                    if len(memo) < MEMO_MAX:
                                        memo[key] = enc
                                if not isinstance(enc, bytes):
                                    raise TypeError("a memo's function must return bytes")
                                Py_INCREF(enc)
                                Py_XDECREF((<op_t *>o).enc)
                                (<op_t *>o).enc = <PyObject *>enc
                                (<op_t *>o).last = raw
                        else:  # OP_SEGCALL
                            enc = self.objs[o.b](PyBytes_FromStringAndSize(<const char *>seg[s], seglen[s]))
                        src = PyBytes_AS_STRING(enc)
                        plen = PyBytes_GET_SIZE(enc)
                        self.reserve(w + plen)
                        memcpy(self.out + w, src, plen)
                    lens[i] = <uint16_t>plen
                    w += plen
                body = <uint32_t>(w - ev_at - 8)  # cpu, the event's fixed part, lengths, values
                total = 8 + body + (-body & 3) + 4
                self.reserve(ev_at + total)
                while (w - ev_at) & 3:
                    self.out[w] = 0
                    w += 1
                memcpy(self.out + w, &total, 4)
                w += 4
                eh = <ev_head *>(self.out + ev_at)
                eh.btype = self.block_type
                eh.total = total
                eh.cpu = r.cpu
                eh.ts = r.ts
                eh.tid = r.tid
                eh.length = body - 2
                eh.etype = <uint16_t>self.etypes[evt]
                eh.nparams = nops
                memcpy(self.out + ev_at + EV_HEAD, lens, 2 * nops)
                if count == 0:
                    first = r.ts
                last = r.ts
                count += 1
                off = nxt
            self.flush(base)
        finally:
            self.opens = self.fds = self.state = None
        return off, count, first, last, PyBytes_FromStringAndSize(self.out, w)

    cdef int apply_fd(self, buf, const uint8_t *base, Py_ssize_t off, uint8_t code, dict tuples) except -1:
        """The state change of a close, an open or a dup exit (the scanner's fast-path codes)."""
        cdef const rec_fixed *r = <const rec_fixed *>(base + off)
        cdef int64_t ret = r.ret
        cdef uint32_t pid = r.pid
        cdef object key
        if code == FAST_CLOSE:
            if ret != 0:
                return 0
            key = _fd_key(pid, <int32_t>r.args[0])
            tuples.pop(key, None)
            if self.opens and self.opens.pop(key, None) is not None:
                # An open nobody looked at: never mind it, but for the table it made (and the fd
                # it replaced, which goes too).
                self.fds.setdefault(pid, {})
            table = self.fds.get(pid)
            if table:
                table.pop(<int32_t>r.args[0], None)
            return 0
        if code >= FAST_DUP:
            if ret < 0:
                return 0  # a failed dup changes nothing
            tuples.pop(_fd_key(pid, <int32_t>ret), None)
            self.flush(base)  # it reads its source fd
            self.state.dup_raw(pid, <int32_t>r.args[0], ret, code == FAST_DUP3 and bool(r.args[2] & O_CLOEXEC))
            return 0
        if ret < 0 or ret > 0x7FFFFFFF:
            return 0  # a failed open changes nothing
        key = _fd_key(pid, <int32_t>ret)
        tuples.pop(key, None)
        if r.l0 and base[off + REC_FIXED] == 0x2F:  # an absolute path: nothing else is read
            if key in self.opens:
                self.flush(base)
            self.opens[key] = off
            return 0
        self.flush(base)  # a relative path may name a pending open's directory
        self.open_now(base, off, code)
        return 0

    cdef int open_now(self, const uint8_t *base, Py_ssize_t off, uint8_t code) except -1:
        cdef const rec_fixed *r = <const rec_fixed *>(base + off)
        cdef uint64_t flags = 0
        cdef const uint8_t *seg1 = base + off + REC_FIXED + r.l0
        if code == FAST_OPEN_A1:
            flags = r.args[1]
        elif code == FAST_OPEN_A2:
            flags = r.args[2]
        elif code == FAST_OPEN_SEG1:
            memcpy(&flags, seg1, 8 if r.l1 >= 8 else r.l1)
        else:
            flags = O_CREAT_WRONLY_TRUNC
        dirfd = None
        if code == FAST_OPEN_A2 or code == FAST_OPEN_SEG1:
            dirfd = <int32_t>r.args[0]
        self.state.open_raw(r.pid, r.tid, <int>r.ret,
                            PyBytes_FromStringAndSize(<const char *>base + off + REC_FIXED, r.l0), flags, dirfd)
        return 0

    cdef int flush(self, const uint8_t *base) except -1:
        """Apply the opens kept back, in stream order."""
        cdef const rec_fixed *r
        if not self.opens:
            return 0
        offsets = list(self.opens.values())
        self.opens.clear()
        for o in offsets:
            r = <const rec_fixed *>(base + <Py_ssize_t>o)
            self.open_now(base, <Py_ssize_t>o, (<const uint8_t *>PyBytes_AS_STRING(self.fast))[r.evt])
        return 0


__all__ = ["Enters", "Plan"]
