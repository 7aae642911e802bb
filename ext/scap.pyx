# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The event blocks of a .scap file turned into ktrace records in C (twin: tracer/_pure/scap.py).

The syscall events whose ktrace event their PPM type alone decides (nearly all of a capture) are
translated here, from per-type plans worked out once by translate.fast_plan; the others (version-1
blocks, generic and internal events, unknown types, damaged events) go through translate.Translator
with the same per-thread state (the pending enters and the pids are its dicts), so both paths make
the same bytes.
"""

include "scap_layout.pxi"

__all__ = ["Decoder"]

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport int8_t, int16_t, int32_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy, memset

from tracer.capture.scap.blocks import BLOCK_NAMES, EVENT_BLOCKS, FLAGGED_EVENTS, LARGE_EVENTS, ScapFormatError
from tracer.capture.scap.events import parse_event
from tracer.capture.scap.table import PPM_EVENTS
from tracer.capture.scap.translate import fast_plan, flag_maps, generic_codes, generic_plans, int_types

cdef enum:
    MAX_FAST_PARAMS = 32  # parameters a plan may refer to
    NBLOCKS = 8  # event block types
    MAX_FLAG_TABLES = 8
    MAX_FLAG_PAIRS = 64

cdef enum:
    SLOW = -1  # plan_t.evt: through Translator.record
    GENERIC = -2  # plan_t.evt: a generic event, the syscall its first parameters say (gen_*)
    MAX_SC = 1024  # PPM syscall codes

cdef struct plan_t:
    int32_t evt  # the ktrace event, or SLOW, GENERIC
    uint8_t hidden
    uint8_t large
    uint8_t exit_keeps
    int16_t enter_fd  # the type of the fd parameter an enter remembers, or -1
    int8_t fd_reg
    int16_t ret  # the type of the result parameter (the first), or -1
    uint16_t ntable
    uint8_t nregs
    uint8_t reg[6]
    uint8_t reg_i[6]
    uint8_t reg_type[6]
    int8_t reg_conv[6]
    uint8_t nsegs
    uint8_t seg_k[6]
    uint8_t seg_i[6]
    uint8_t seg_kind[6]
    int16_t pair_i1
    uint8_t pair_t1
    int16_t pair_i2
    uint8_t pair_t2
    int16_t comm_i
    uint8_t comm_k
    int16_t ids_t
    uint8_t ids_tt
    int16_t ids_p
    uint8_t ids_pt

cdef struct flagmap_t:
    int n
    uint8_t access
    uint64_t ppm[MAX_FLAG_PAIRS]
    uint64_t lnx[MAX_FLAG_PAIRS]

cdef struct seg_t:
    const char* p
    Py_ssize_t n


cdef inline uint16_t ld16(const unsigned char* p) nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef inline uint32_t ld32(const unsigned char* p) nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint64_t ld64(const unsigned char* p) nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef class Decoder:
    """Translates event blocks into records for one file; ``flush`` hands them out."""

    cdef public object tr
    cdef public object skipped
    cdef public Py_ssize_t limit
    cdef public Py_ssize_t count
    cdef public Py_ssize_t events
    cdef public uint64_t first_ts
    cdef public uint64_t last_ts
    cdef public object error
    cdef dict enter
    cdef dict pids
    cdef plan_t plans[PPM_EVENT_MAX]
    cdef flagmap_t fmaps[MAX_FLAG_TABLES]
    cdef uint8_t isize[256]
    cdef uint8_t isigned[256]
    cdef uint32_t btypes[NBLOCKS]
    cdef uint8_t bflagged[NBLOCKS]
    cdef uint8_t blarge[NBLOCKS]
    cdef uint8_t bv2[NBLOCKS]
    cdef Py_ssize_t bcounts[NBLOCKS]
    cdef list order
    cdef int16_t sc_nr[MAX_SC]  # PPM syscall code -> ktrace syscall number, -1: none
    cdef int8_t gen_keep[2][NSYSCALLS]  # generic enter/exit: the exit keeps the segments (1, 0), -1: slow
    cdef int gen_code_t  # the types of a generic event's parameters: PPM syscall code, native number
    cdef int gen_native_t
    cdef char* out
    cdef Py_ssize_t used
    cdef Py_ssize_t cap
    cdef char sa[2][128]  # sockaddrs in Linux's layout, one per segment

    def __cinit__(self, *args, **kwargs):
        self.out = NULL

    def __init__(self, tr, skipped, limit):
        self.tr = tr
        self.skipped = skipped
        self.limit = limit
        self.count = self.events = 0
        self.first_ts = self.last_ts = 0
        self.error = None
        self.enter = tr._enter
        self.pids = tr.pids
        self.order = []
        self.used = 0
        self.cap = 1 << 20
        self.out = <char*>malloc(self.cap)
        if self.out == NULL:
            raise MemoryError()
        memset(self.isize, 0, sizeof(self.isize))
        memset(self.isigned, 0, sizeof(self.isigned))
        for t, (size, signed) in int_types().items():
            self.isize[t] = size
            self.isigned[t] = signed
        maps = flag_maps()
        assert len(maps) <= MAX_FLAG_TABLES
        for j, (_name, pairs, access) in enumerate(maps):
            assert len(pairs) <= MAX_FLAG_PAIRS
            self.fmaps[j].n = len(pairs)
            self.fmaps[j].access = access
            for k, (a, b) in enumerate(pairs):
                self.fmaps[j].ppm[k] = a
                self.fmaps[j].lnx[k] = b
        kinds = sorted(EVENT_BLOCKS)
        assert len(kinds) <= NBLOCKS
        for j in range(NBLOCKS):
            self.btypes[j] = 0
            self.bcounts[j] = 0
        for j, bt in enumerate(kinds):
            self.btypes[j] = bt
            self.bflagged[j] = bt in FLAGGED_EVENTS
            self.blarge[j] = bt in LARGE_EVENTS
            self.bv2[j] = bt not in (0x204, 0x8010ABCD, 0x208)  # version-1 blocks: no parameter count
        for t in range(PPM_EVENT_MAX):
            self._load_plan(t, fast_plan(t))
        codes = generic_codes()
        assert len(codes) <= MAX_SC
        for j in range(MAX_SC):
            self.sc_nr[j] = codes[j] if j < len(codes) else -1
        gen = PPM_EVENTS[0].params  # PPME_GENERIC_E; PPME_GENERIC_X has its first parameter
        self.gen_code_t = gen[0].type
        self.gen_native_t = gen[1].type
        for d in range(2):
            self.plans[d].evt = GENERIC
            self.plans[d].ntable = len(PPM_EVENTS[d].params)
            self.plans[d].large = "large_payload" in PPM_EVENTS[d].flags
            for j, keep in enumerate(generic_plans(d)):
                self.gen_keep[d][j] = -1 if keep is None else keep

    def __dealloc__(self):
        free(self.out)

    cdef _load_plan(self, int t, dict d):
        cdef plan_t* p = &self.plans[t]
        memset(p, 0, sizeof(plan_t))
        p.evt = -1
        if d is None:
            return
        idx = [i for _r, i, _t, _c in d["regs"]] + [i for _k, i, _s in d["segs"]]
        for x in (d["pair"], d["ids"]):
            if x is not None:
                idx += [x[0], x[2]]
        if d["comm"] is not None:
            idx.append(d["comm"][0])
        if len(d["regs"]) > 6 or len(d["segs"]) > 6 or any(i >= MAX_FAST_PARAMS for i in idx):
            return  # beyond what a plan holds: Translator.record does it
        p.evt = d["evt"]
        p.hidden = d["hidden"]
        p.large = d["large"]
        p.exit_keeps = d["exit_keeps"]
        p.enter_fd = d["enter_fd"]
        p.fd_reg = d["fd_reg"]
        p.ret = d["ret"]
        p.ntable = d["ntable"]
        p.nregs = len(d["regs"])
        for j, (reg, i, typ, conv) in enumerate(d["regs"]):
            p.reg[j], p.reg_i[j], p.reg_type[j], p.reg_conv[j] = reg, i, typ, conv
        p.nsegs = len(d["segs"])
        for j, (k, i, kind) in enumerate(d["segs"]):
            p.seg_k[j], p.seg_i[j], p.seg_kind[j] = k, i, kind
        p.pair_i1 = p.pair_i2 = p.comm_i = p.ids_t = p.ids_p = -1
        if d["pair"] is not None:
            p.pair_i1, p.pair_t1, p.pair_i2, p.pair_t2 = d["pair"]
        if d["comm"] is not None:
            p.comm_i, p.comm_k = d["comm"]
        if d["ids"] is not None:
            p.ids_t, p.ids_tt, p.ids_p, p.ids_pt = d["ids"]

    # --- numbers as int_value reads them ------------------------------------------------------
    cdef inline uint64_t ival(self, int typ, const unsigned char* p, Py_ssize_t n) noexcept:
        """The value's 64 bits (sign-extended for a signed type); 0 for an empty or non-numeric one."""
        cdef int size = self.isize[typ]
        cdef uint64_t v = 0
        cdef int k
        if size == 0 or n == 0:
            return 0
        if n < size:
            size = <int>n  # a narrower value than the table's type
        for k in range(size - 1, -1, -1):
            v = (v << 8) | p[k]
        if self.isigned[typ] and size < 8 and (v >> (8 * size - 1)) & 1:
            v |= (<uint64_t>0xFFFFFFFFFFFFFFFF) << (8 * size)
        return v

    cdef inline object pyint(self, int typ, uint64_t v):
        if self.isigned[typ]:
            return PyLong_FromLongLong(<int64_t>v)
        return PyLong_FromUnsignedLongLong(v)

    cdef inline uint64_t linux_flags(self, int conv, uint64_t v) noexcept:
        cdef flagmap_t* m = &self.fmaps[conv]
        cdef uint64_t out = 0
        cdef int k
        for k in range(m.n):
            if v & m.ppm[k] == m.ppm[k]:
                out |= m.lnx[k]
        if m.access:
            if v & 3 == 2:
                out |= 1
            elif v & 3 == 3:
                out |= 2
        return out

    cdef object sockaddr(self, int k, seg_t* s, const char* p, Py_ssize_t n):
        """A PPM sockaddr in Linux's layout (translate.linux_sockaddr); a unix one is made as a bytes
        object, returned to be kept alive while s points into it."""
        cdef char* d = self.sa[k]
        cdef const char* z
        cdef uint16_t fam
        cdef Py_ssize_t m
        cdef bytes made
        s.p = d
        s.n = 0
        if n == 0:
            return None
        if p[0] == 1:
            z = <const char*>memchr(p + 1, 0, n - 1)
            m = (z - p - 1) if z != NULL else n - 1
            made = PyBytes_FromStringAndSize(NULL, m + 3)
            d = PyBytes_AS_STRING(made)
            fam = 1
            memcpy(d, &fam, 2)
            memcpy(d + 2, p + 1, m)
            d[m + 2] = 0
            s.p = d
            s.n = m + 3
            return made
        if p[0] == 2 and n >= 7:
            memset(d, 0, 16)
            fam = 2
            memcpy(d, &fam, 2)
            d[2] = p[6]
            d[3] = p[5]
            memcpy(d + 4, p + 1, 4)
            s.n = 16
        elif p[0] == 10 and n >= 19:
            memset(d, 0, 28)
            fam = 10
            memcpy(d, &fam, 2)
            d[2] = p[18]
            d[3] = p[17]
            memcpy(d + 8, p + 1, 16)
            s.n = 28
        return None

    cdef int reserve(self, Py_ssize_t n) except -1:
        cdef char* b
        if self.used + n <= self.cap:
            return 0
        while self.used + n > self.cap:
            self.cap *= 2
        b = <char*>realloc(self.out, self.cap)
        if b == NULL:
            raise MemoryError()
        self.out = b
        return 0

    # --- blocks ---------------------------------------------------------------------------------
    cpdef Py_ssize_t run(self, bytes buf, Py_ssize_t pos, Py_ssize_t end) except -1:
        """Translate the whole event blocks of ``buf[pos:end]``; the position where it stopped."""
        cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef uint32_t btype, total
        cdef int k
        self.error = None
        if end > PyBytes_GET_SIZE(buf):
            end = PyBytes_GET_SIZE(buf)
        while self.count < self.limit and end - pos >= 12:
            btype = ld32(b + pos)
            total = ld32(b + pos + 4)
            k = 0
            while k < NBLOCKS and self.btypes[k] != btype:
                k += 1
            if k == NBLOCKS or btype == 0 or total < 12 or total & 3 or total > end - pos:
                break
            if ld32(b + pos + total - 4) != total:
                break
            self.bcounts[k] += 1
            if self.bcounts[k] == 1:
                self.order.append(k)
            if not self._fast(b + pos + 8, total - 12, k):
                try:
                    self._slow(buf[pos + 8:pos + total - 4], btype)
                except ScapFormatError as e:
                    self.error = (pos, btype, str(e))
                    return pos + total
            pos += total
        return pos

    def block(self, bytes body, uint32_t btype):
        """Translate one event block's body. Raises ScapFormatError for a damaged event."""
        cdef int k = 0
        while k < NBLOCKS and self.btypes[k] != btype:
            k += 1
        if k == NBLOCKS or not self._fast(<const unsigned char*>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), k):
            self._slow(body, btype)

    def _slow(self, bytes body, uint32_t btype):
        ev = parse_event(body, btype)
        rec = self.tr.record(ev)
        if rec is None:
            what = f"events of unknown type {ev.type}" if self.tr.last_unknown else "events"
            self.skipped[what] = self.skipped.get(what, 0) + 1
            return
        for r in rec:
            self._append(<const char*>PyBytes_AS_STRING(r), PyBytes_GET_SIZE(r), ev.ts)
        self.last_ts = ev.ts

    cdef int _append(self, const char* p, Py_ssize_t n, uint64_t ts) except -1:
        self.reserve(n)
        memcpy(self.out + self.used, p, n)
        self.used += n
        if self.count == 0:
            self.first_ts = ts
        self.count += 1
        self.events += 1
        return 0

    cdef int _fast(self, const unsigned char* body, Py_ssize_t n, int k) except -1:
        """Translate one event here; 0 when it must go through Translator.record instead."""
        cdef Py_ssize_t pos = 2, start, end, p, q, total_len, used, total, rawlen
        cdef uint32_t dflags = 0, length, nparams, ln
        cdef uint64_t ts, tid, v, t64
        cdef uint16_t etype, cpu
        cdef int lsize, j, i, direction
        cdef int64_t ret = 0
        cdef plan_t* pl
        cdef plan_t gp
        cdef Py_ssize_t hsize
        cdef const ppm_event_header* eh
        cdef Py_ssize_t poff[MAX_FAST_PARAMS]
        cdef Py_ssize_t plen[MAX_FAST_PARAMS]
        cdef uint64_t args[6]
        cdef seg_t seg[2]
        cdef object keep0 = None, keep1 = None
        cdef object tid_obj, pend, pid_obj
        cdef PyObject* got
        cdef uint64_t pid
        cdef rec_fixed* h
        cdef ppm_annex* a
        cdef uint32_t pair[2]
        cdef const char* z
        cdef const char* cbody = <const char*>body
        cdef uint32_t flags
        cdef int i2
        cdef tuple pa
        cdef object made
        if n < 2:
            return 0
        cpu = ld16(body)
        if self.bflagged[k]:
            if n < 6:
                return 0
            dflags = ld32(body + 2)
            pos = 6
        hsize = EVENT_HEADER_SIZE if self.bv2[k] else EVENT_HEADER_V1_SIZE
        if n - pos < hsize:
            return 0
        eh = <const ppm_event_header*>(body + pos)
        ts = eh.ts
        tid = eh.tid
        length = eh.length
        etype = eh.type
        if length < hsize or pos + length > n or etype >= PPM_EVENT_MAX:
            return 0
        pl = &self.plans[etype]
        if pl.evt == SLOW:
            return 0
        start = pos + hsize
        end = pos + length
        if self.bv2[k]:
            nparams = eh.nparams
        elif pl.large:
            return 0
        else:
            nparams = self._infer_nparams(body, start, end, pl.ntable)
        lsize = 4 if (self.blarge[k] or pl.large) else 2
        if nparams > <uint32_t>((end - start) // lsize) or nparams > 0xFFFF:
            return 0
        p = start + <Py_ssize_t>nparams * lsize
        for j in range(<int>nparams):
            ln = ld32(body + start + 4 * j) if lsize == 4 else ld16(body + start + 2 * j)
            if j < MAX_FAST_PARAMS:
                poff[j] = p
                plen[j] = ln
            p += ln
            if p > end:
                return 0  # Translator.record's parse says what is wrong
        rawlen = p - start
        if pl.evt == GENERIC:
            pl = self._generic(etype, &gp, body, nparams, poff, plen, tid)
            if pl == NULL:
                return 0
        if nparams > pl.ntable:
            self.tr._skip("parameters newer than the event table")

        for j in range(6):
            args[j] = 0
        seg[0].p = seg[1].p = NULL
        seg[0].n = seg[1].n = 0
        flags = RF_PPM | RF_HIDDEN if (dflags & 1 or pl.hidden) else RF_PPM
        direction = pl.evt & 1
        tid_obj = PyLong_FromUnsignedLongLong(tid)
        if direction:
            pend = self.enter.pop(tid_obj, None)
            if pend is not None and pend[0] == pl.evt - 1:
                pa = <tuple>pend[1]
                for j in range(6):
                    args[j] = PyLong_AsUnsignedLongLong(<object>PyTuple_GET_ITEM(pa, j))
                if pl.exit_keeps:
                    keep0 = pend[2]
                    keep1 = pend[3]
                    seg[0].p = PyBytes_AS_STRING(keep0)
                    seg[0].n = PyBytes_GET_SIZE(keep0)
                    seg[1].p = PyBytes_AS_STRING(keep1)
                    seg[1].n = PyBytes_GET_SIZE(keep1)
                if pl.fd_reg >= 0:
                    args[pl.fd_reg] = PyLong_AsUnsignedLongLong(pend[4])
            if pl.ret >= 0 and nparams:
                ret = <int64_t>self.ival(pl.ret, body + poff[0], plen[0])
        for j in range(pl.nregs):
            i = pl.reg_i[j]
            if i < <int>nparams:
                v = self.ival(pl.reg_type[j], body + poff[i], plen[i])
                if pl.reg_conv[j] >= 0:
                    v = self.linux_flags(pl.reg_conv[j], v)
                args[pl.reg[j]] = v
        for j in range(pl.nsegs):
            i = pl.seg_i[j]
            if i < <int>nparams:
                i2 = pl.seg_k[j]
                if pl.seg_kind[j] == SEG_SOCKADDR:
                    made = self.sockaddr(i2, &seg[i2], cbody + poff[i], plen[i])
                    if i2:
                        keep1 = made
                    else:
                        keep0 = made
                elif pl.seg_kind[j] == SEG_STRZ:
                    z = <const char*>memchr(cbody + poff[i], 0, plen[i])
                    seg[i2].p = cbody + poff[i]
                    seg[i2].n = (z - seg[i2].p) if z != NULL else plen[i]
                else:
                    seg[i2].p = cbody + poff[i]
                    seg[i2].n = plen[i]
        if pl.pair_i2 >= 0 and pl.pair_i2 < <int>nparams:
            pair[0] = <uint32_t>self.ival(pl.pair_t1, body + poff[pl.pair_i1], plen[pl.pair_i1])
            pair[1] = <uint32_t>self.ival(pl.pair_t2, body + poff[pl.pair_i2], plen[pl.pair_i2])
            memcpy(self.sa[0], pair, 8)
            seg[0].p = self.sa[0]
            seg[0].n = 8
        if pl.comm_i >= 0 and pl.comm_i < <int>nparams:
            i = pl.comm_i
            z = <const char*>memchr(cbody + poff[i], 0, plen[i])
            seg[pl.comm_k].p = cbody + poff[i]
            seg[pl.comm_k].n = (z - (cbody + poff[i])) if z != NULL else plen[i]
        if not direction:
            v = <uint64_t>-1
            if pl.enter_fd >= 0 and nparams:
                v = self.ival(pl.enter_fd, body + poff[0], plen[0])
            self.enter[tid_obj] = (pl.evt, (args[0], args[1], args[2], args[3], args[4], args[5]),
                                   self._segbytes(&seg[0]), self._segbytes(&seg[1]), v)
        got = PyDict_GetItem(self.pids, tid_obj)
        pid = PyLong_AsUnsignedLongLong(<object>got & 0xFFFFFFFFFFFFFFFF) if got != NULL else tid
        if pl.ids_p >= 0 and pl.ids_p < <int>nparams and pl.ids_t < <int>nparams:
            t64 = self.ival(pl.ids_tt, body + poff[pl.ids_t], plen[pl.ids_t])
            if t64 == tid and not (self.isigned[pl.ids_tt] and <int64_t>t64 < 0):
                v = self.ival(pl.ids_pt, body + poff[pl.ids_p], plen[pl.ids_p])
                self.pids[tid_obj] = self.pyint(pl.ids_pt, v)
                pid = v

        # The record: head, segments (cut to 64 KiB), the annex and the PPM event as stored.
        for j in range(2):
            if seg[j].n > 0xFFFF:
                seg[j].n = 0xFFFF
        used = REC_FIXED + seg[0].n + seg[1].n + ANNEX_SIZE + rawlen
        total = (used + 7) & ~7
        self.reserve(total)
        q = self.used
        h = <rec_fixed*>(self.out + q)
        h.ts = ts
        h.tid = <uint32_t>tid
        h.pid = <uint32_t>pid
        h.evt = pl.evt
        h.cpu = cpu
        h.length = total
        h.ret = ret
        for j in range(6):
            h.args[j] = args[j]
        h.l0 = seg[0].n
        h.l1 = seg[1].n
        h.flags = flags
        q += REC_FIXED
        for j in range(2):
            if seg[j].n:
                memcpy(self.out + q, seg[j].p, seg[j].n)
                q += seg[j].n
        a = <ppm_annex*>(self.out + q)
        a.size = ANNEX_SIZE + rawlen
        a.type = etype
        a.nparams = nparams
        a.lsize = lsize
        memset(a._pad0, 0, 3)
        q += ANNEX_SIZE
        memcpy(self.out + q, body + start, rawlen)
        q += rawlen
        memset(self.out + q, 0, total - used)
        self.used += total
        if self.count == 0:
            self.first_ts = ts
        self.count += 1
        self.events += 1
        self.last_ts = ts
        return 1

    cdef uint32_t _infer_nparams(self, const unsigned char* body, Py_ssize_t start, Py_ssize_t end,
                                 int top) noexcept:
        """A version-1 event's parameter count: the largest, up to the table's, whose lengths fill
        the event exactly (events._infer_nparams)."""
        cdef int k, j
        cdef Py_ssize_t total
        for k in range(top, -1, -1):
            if start + 2 * k > end:
                continue
            total = 0
            for j in range(k):
                total += ld16(body + start + 2 * j)
            if start + 2 * k + total == end:
                return k
        return 0

    cdef plan_t* _generic(self, int etype, plan_t* gp, const unsigned char* body, uint32_t nparams,
                          Py_ssize_t* poff, Py_ssize_t* plen, uint64_t tid):
        """The plan of a generic event, as Translator.evt_id finds its syscall: the PPM code, else
        the native number, else (an exit) its enter's; NULL for one it does not name."""
        cdef int d = etype & 1
        cdef int nr = -1
        cdef uint64_t code = 0
        if nparams and self.plans[etype].ntable:
            code = self.ival(self.gen_code_t, body + poff[0], plen[0])
        if code < MAX_SC:
            nr = self.sc_nr[code]
        if nr < 0 and nparams > 1 and self.plans[etype].ntable > 1:
            code = self.ival(self.gen_native_t, body + poff[1], plen[1])
            nr = <int>code if code < NSYSCALLS else -1
        if nr < 0 and d:
            pend = self.enter.get(tid)
            if pend is not None and pend[0] & 1 == 0 and pend[0] < 2 * NSYSCALLS:
                nr = pend[0] >> 1
        if nr < 0 or self.gen_keep[d][nr] < 0:
            return NULL
        memset(gp, 0, sizeof(plan_t))
        gp.evt = nr * 2 + d
        gp.large = self.plans[etype].large
        gp.ntable = self.plans[etype].ntable
        gp.exit_keeps = self.gen_keep[d][nr]
        gp.enter_fd = gp.ret = -1
        gp.fd_reg = -1
        gp.pair_i1 = gp.pair_i2 = gp.comm_i = gp.ids_t = gp.ids_p = -1
        return gp

    cdef object _segbytes(self, seg_t* s):
        return PyBytes_FromStringAndSize(s.p, s.n) if s.n > 0 else b""

    def take_counts(self):
        """(block name, count) of the event blocks run went through since the last call."""
        out = [(BLOCK_NAMES[self.btypes[k]], self.bcounts[k]) for k in self.order]
        for k in self.order:
            self.bcounts[k] = 0
        self.order = []
        return out

    def flush(self):
        """(records, count, first ts, last ts) of the records waiting; none wait afterwards."""
        out = (PyBytes_FromStringAndSize(self.out, self.used), self.count, self.first_ts, self.last_ts)
        self.used = 0
        self.count = 0
        self.first_ts = self.last_ts = 0
        return out
