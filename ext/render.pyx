# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Output lines rendered in C: sysdig's default line, -p formats, -pc/-pk and -j, straight from
records into one reused byte buffer.

A Formatter (tracer/output/format.py) parses the format and stays the reference: this module
renders the same bytes. The common fields (evt.num, evt.outputtime, evt.cpu, evt.dir, evt.type,
evt.info, proc.name, proc.pid, proc.exe, thread.tid, thread.vtid, fd.num, fd.name, fd.type,
user.name, container.id, container.name, k8s.pod.name) are read from the record and from the
state's objects through the C API; text the state holds is encoded once and kept by value (the
str object is the key). Any other field, and any parameter this module does not render itself
(relative paths, socket addresses, thread values), goes through the Formatter's Python path for
that field only, with an Event made on first need.

Records read from a .scap file (RF_PPM) follow libsinsp's rules instead: evt.info walks their PPM
parameters with per-type plans (tracer/capture/scap/render.py, ``c_plans``), and fd.num, fd.name,
fd.type and evt.rawres read the parameters those rules name; a parameter type the plans leave to
Python goes through ``param_str`` for that parameter only.
"""

from cpython.array cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport Py_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import json as _json
import time as _time

include "record.pxi"

__all__ = ["Renderer"]

cdef const char *HEXDIGITS = b"0123456789abcdef"
cdef const char *HEXUPPER = b"0123456789ABCDEF"
RAW_ARGS = 1  # params[evt] for syscalls without a decoder
_PYTHON = object()  # a value only the Python path knows

# What a piece of the format is.
cdef enum:
    K_LIT = 0
    K_NUM
    K_TIME
    K_CPU
    K_DIR
    K_TYPE
    K_INFO
    K_COMM
    K_EXE
    K_TID
    K_PID
    K_VTID
    K_FDNUM
    K_FDNAME
    K_FDTYPE
    K_USER
    K_CID
    K_CNAME
    K_PODNAME
    K_RAWRES  # in C for records read from a .scap file; the Formatter's path for the others
    K_PY  # the Formatter's path, for this field

# Parameter types (tracer/schema/types.PT) this module renders; P_PY: the Python path.
cdef enum:
    P_PY = 0
    P_FD
    P_RES
    P_RESFD
    P_DIRFD
    P_INT32
    P_INT64
    P_UINT
    P_ID32
    P_CACHED  # flags, enums, hex, octal: rendered once per value by Python, then kept
    P_CACHED32  # signals: the same, of the value as a C int
    P_PATH
    P_STR
    P_ARGV
    P_BUF
    P_HEX  # F"{v:X}", 0 for 0
    P_OCT  # f"0{v:o}", 0 for 0
    P_SEGNUM  # a number read from a segment's first 8 bytes (hex, octal or decimal: Param.base)
    P_STATE  # a thread attribute (src "thread.<attr>"): a list joined by dots, None empty, else str()

cdef enum:
    SRC_RET = 6
    SRC_S0 = 7
    SRC_S1 = 8
    SRC_OTHER = 9

_KINDS = {
    "evt.num": K_NUM, "evt.outputtime": K_TIME, "evt.cpu": K_CPU, "evt.dir": K_DIR, "evt.type": K_TYPE,
    "evt.info": K_INFO, "evt.args": K_INFO, "proc.name": K_COMM, "proc.exe": K_EXE, "thread.tid": K_TID,
    "proc.pid": K_PID, "thread.vtid": K_VTID, "fd.num": K_FDNUM, "fd.name": K_FDNAME, "fd.type": K_FDTYPE,
    "user.name": K_USER, "container.id": K_CID, "container.name": K_CNAME, "k8s.pod.name": K_PODNAME,
    "evt.rawres": K_RAWRES,
}

# How a PPM parameter prints (tracer/capture/scap/render.py's Q_* codes, which c_plans gives).
cdef enum:
    Q_PY = 0
    Q_INT
    Q_ERRNO
    Q_FD
    Q_PID
    Q_STR
    Q_PATH
    Q_BUF
    Q_CACHED

cdef enum:
    PF_HEX = 2  # PPM print formats (tracer/capture/scap/table.py's PF)
    PF_PADDED_DEC = 3
    PF_OCT = 6
    FD_USES = 1  # a PPM event's fd rule
    FD_CREATES = 2
    PMAX = 40  # PPM parameters a record keeps pointers to (the table's events have at most 32)
    ANNEX_HEAD = 12  # u32 size, u16 type, u16 nparams, u8 bytes per length, 3 pad
    BIG = 2  # an unsigned PPM number past int64's range


cdef struct Rec:
    uint64_t ts
    uint32_t tid
    uint32_t pid
    uint16_t evt
    uint16_t cpu
    int64_t ret
    uint64_t args[6]
    const uint8_t *s0
    uint32_t l0
    const uint8_t *s1
    uint32_t l1
    uint32_t flags
    uint64_t num
    # A record read from a .scap file: its PPM type and parameters (pn < 0: the Python path's).
    uint16_t ptype
    int32_t pn
    const uint8_t *pv[PMAX]
    uint32_t pl[PMAX]


cdef class _PpmParam:
    cdef int code  # Q_*
    cdef int size  # bytes of its value as a number (0: not one)
    cdef bint sgn
    cdef int bits  # width _number prints it with
    cdef int fmt  # PF_*
    cdef bytes prefix  # b"name="
    cdef object param  # the PParam
    cdef dict cache  # Q_CACHED: raw bytes -> text


cdef class _PpmEvt:
    cdef tuple params  # of _PpmParam, the table's
    cdef bint silent  # a generic event: no evt.info
    cdef bint exit
    cdef int rule  # FD_USES, FD_CREATES or 0
    cdef int fd_idx  # the last parameter named fd, fd2; the first named res; the first fd (exits
    cdef int fd2_idx  # of fd-creating events) for evt.rawres
    cdef int res_idx
    cdef int resfd_idx
    cdef bint named  # a failed exit's fd is the path it tried (Python's)
    cdef bint connect
    cdef object info  # the PEvent


cdef inline int64_t _pint(const uint8_t *p, uint32_t n, int size, bint sgn) noexcept:
    """A PPM parameter's number as int_value reads it: little-endian, of its type's size (fewer
    bytes when the writer stored fewer), sign-extended for a signed type; 0 for none."""
    cdef uint64_t v = 0
    cdef int k
    cdef int m = size if n >= <uint32_t>size else <int>n
    if m <= 0:
        return 0
    for k in range(m):
        v |= (<uint64_t>p[k]) << (8 * k)
    if sgn and m < 8 and (v >> (8 * m - 1)) & 1:
        v |= ~((<uint64_t>1 << (8 * m)) - 1)
    return <int64_t>v


cdef inline int64_t _sext(int64_t v, int bits) noexcept:
    if bits >= 64:
        return v
    return (<int64_t>((<uint64_t>v) << (64 - bits))) >> (64 - bits)


cdef void _annex(Rec *r, const uint8_t *rec, uint32_t length, uint16_t l0, uint16_t l1) noexcept:
    """Point r.pv/r.pl at the PPM parameters of a record flagged RF_PPM (translate.read_annex's
    checks: r.pn stays -1 when they fail)."""
    cdef Py_ssize_t p = REC_FIXED + <Py_ssize_t>l0 + l1
    cdef uint32_t size
    cdef uint16_t etype, n
    cdef uint8_t lsize
    cdef Py_ssize_t q, end
    cdef uint32_t ln = 0
    cdef uint16_t ln16
    cdef int k
    if p + ANNEX_HEAD > length:
        return
    memcpy(&size, rec + p, 4)
    memcpy(&etype, rec + p + 4, 2)
    memcpy(&n, rec + p + 6, 2)
    lsize = rec[p + 8]
    if p + <Py_ssize_t>size > length or (lsize != 2 and lsize != 4) or ANNEX_HEAD + <Py_ssize_t>lsize * n > size:
        return
    end = p + size
    q = p + ANNEX_HEAD + <Py_ssize_t>lsize * n
    for k in range(n):
        if lsize == 4:
            memcpy(&ln, rec + p + ANNEX_HEAD + 4 * k, 4)
        else:
            memcpy(&ln16, rec + p + ANNEX_HEAD + 2 * k, 2)
            ln = ln16
        if q + <Py_ssize_t>ln > end:
            return
        if k < PMAX:
            r.pv[k] = rec + q
            r.pl[k] = ln
        q += ln
    r.ptype = etype
    r.pn = n


cdef class _Param:
    cdef int kind
    cdef int base  # P_SEGNUM: 16, 8 or 10
    cdef int src
    cdef bytes prefix  # b"name=", or b"" for types that name their own parts
    cdef str attr  # P_STATE: the Thread attribute
    cdef object param
    cdef dict cache


cdef class _Piece:
    cdef int kind
    cdef int width
    cdef bytes text  # a literal, or the JSON key with its quotes and colon
    cdef object piece  # the Formatter's Piece


cdef class Renderer:
    """Renders events for one Formatter into a byte buffer; ``take()`` hands the bytes over."""

    cdef char *buf
    cdef Py_ssize_t pos
    cdef Py_ssize_t cap
    cdef object fmt
    cdef object state
    cdef object opts
    cdef bint json
    cdef int tmode  # b'h', b'a', b'r', b'd', b'D'
    cdef list pieces
    cdef list params  # evt -> tuple of _Param (None: the Python path for the whole evt.info)
    cdef list names  # evt -> bytes
    cdef dict enc  # str -> its UTF-8 bytes
    cdef dict tags  # (type, l4proto) -> b"<f>"
    cdef uint64_t first_ts
    cdef uint64_t prev_ts
    cdef int64_t time_sec
    cdef bytes time_text
    cdef object ev  # the Event of the record being rendered, once something needed it
    cdef object batch
    cdef Py_ssize_t off
    cdef int64_t latency
    cdef bint have_latency
    cdef object render_param
    cdef bytes fd_regs
    cdef dict errnos
    cdef object errno_name
    cdef object render_buffer
    cdef object info_opts
    cdef object event_cls
    cdef bint ascii_buf
    cdef bint normal_buf
    cdef Py_ssize_t max_buf
    cdef bint verbose
    cdef object fast_apply
    cdef object threads  # the state's tables (a dict subclass: read with PyDict_GetItem), read once per call
    cdef dict fds
    cdef bytes fast_mask
    cdef object lane  # applies the other state events (set_lane), or None: they stop render_records
    cdef bytes followers
    cdef public uint64_t stop_at  # CLOCK_MONOTONIC ns after which events are counted, not rendered
    cdef public uint64_t skipped  # events not rendered because of stop_at
    cdef uint32_t tick
    cdef list ppm  # PPM type -> _PpmEvt, or None
    cdef Py_ssize_t nppm
    cdef dict ppm_errnos  # -n -> b"-n(ENAME)"
    cdef dict ppm_tags  # (type, l4proto, has no role) -> b"<4t>"
    cdef object param_str
    cdef object ensure_thread
    cdef object ppm_fd_tag
    cdef uint16_t close_exit
    cdef object pre_fd  # a shown close's fd, looked up before the close applied (as State.apply does)
    cdef bint have_pre
    cdef bint has_py  # a field of the format takes the Formatter's path

    def __init__(self, formatter, state):
        from tracer.event import Event, render_buffer, render_param
        from tracer.output.format import DEFAULT_JSON_FIELDS, Piece
        from tracer.schema.events import FD_REGS, event_info, event_name
        from tracer.schema.fields import FIELDS
        from tracer.schema.types import PT

        self.fmt = formatter
        self.state = state
        self.fast_apply = None
        self.fast_mask = b""
        self.lane = None
        self.followers = b""
        self.opts = formatter.opts
        self.json = formatter.json_out
        self.tmode = ord(formatter.time_mode[0])
        self.info_opts = formatter._json_opts if self.json else formatter.opts
        self.render_param = render_param
        self.fd_regs = bytes(FD_REGS)
        from tracer.schema.flags import errno_name
        self.errno_name = errno_name
        self.errnos = {}
        self.render_buffer = render_buffer
        self.event_cls = Event
        self.enc = {}
        self.tags = {}
        self.time_sec = -1
        self.time_text = b""
        mode = self.info_opts.mode
        self.normal_buf = mode == "normal"
        self.ascii_buf = mode == "ascii"
        self.verbose = bool(self.info_opts.verbose)
        self.max_buf = self.info_opts.max_buf
        self.pieces = []
        if self.json:
            if formatter.custom:
                keyed = [(p.key, p) for p in formatter.pieces if isinstance(p, Piece)]
            else:
                keyed = [(k, Piece(FIELDS.lookup(k), None, 0, k)) for k in DEFAULT_JSON_FIELDS]
            seen = set()
            first = True
            for key, p in sorted(keyed, key=lambda kp: kp[0]):
                if key in seen:
                    continue
                seen.add(key)
                self.pieces.append(self._piece(p, (b"{" if first else b",") + _json.dumps(key).encode() + b":"))
                first = False
        else:
            for p in formatter.pieces:
                if isinstance(p, str):
                    lit = _Piece()
                    lit.kind = K_LIT
                    lit.text = p.encode("utf-8", "surrogateescape")
                    self.pieces.append(lit)
                else:
                    self.pieces.append(self._piece(p, b""))
        codes = {PT.FD: P_FD, PT.RES: P_RES, PT.RESFD: P_RESFD, PT.DIRFD: P_DIRFD, PT.INT: P_INT32,
                 PT.PID: P_INT32, PT.INT64: P_INT64, PT.UINT: P_UINT, PT.UID: P_ID32, PT.GID: P_ID32,
                 PT.FLAGS: P_CACHED, PT.ENUM: P_CACHED, PT.SIGNAL: P_CACHED32, PT.HEX: P_HEX,
                 PT.OCT: P_OCT, PT.PATH: P_PATH, PT.STR: P_STR, PT.ARGV: P_ARGV, PT.BUF: P_BUF}
        numeric = (P_RES, P_RESFD, P_DIRFD, P_INT32, P_INT64, P_UINT, P_ID32, P_CACHED, P_CACHED32, P_FD, P_HEX, P_OCT)
        self.has_py = any((<_Piece>p).kind == K_PY for p in self.pieces)
        self._ppm_plans()
        from tracer.event import _INTERNAL_INFO, info_untyped
        self.params = []
        self.names = []
        for evt in range(EVT_MAX):
            self.names.append(event_name(evt).encode())
            info = event_info(evt)
            direction = evt & 1 if evt < EVT_BASE_OTHER else 0
            plist = info.params(direction) if info else ()
            if evt in _INTERNAL_INFO:
                self.params.append(None)
                continue
            if not plist and evt < EVT_BASE_OTHER and info_untyped(info):
                self.params.append(RAW_ARGS)
                continue
            specs = []
            for p in plist:
                s = _Param()
                s.param = p
                s.kind = codes.get(p.type, P_PY)
                src = p.src
                s.src = SRC_RET if src == "ret" else SRC_S0 if src == "s0" else SRC_S1 if src == "s1" \
                    else int(src[1]) if len(src) == 2 and src[0] == "a" else SRC_OTHER
                if s.src in (SRC_S0, SRC_S1) and p.type in (PT.HEX, PT.OCT, PT.INT, PT.UINT):
                    s.kind = P_SEGNUM  # Event.render_param: the segment's first 8 bytes, unsigned
                    s.base = 16 if p.type is PT.HEX else 8 if p.type is PT.OCT else 10
                elif s.src == SRC_OTHER or (s.kind in numeric and s.src >= SRC_S0) \
                        or (s.kind in (P_PATH, P_STR, P_ARGV, P_BUF) and s.src < SRC_S0):
                    s.kind = P_PY
                if p.type is PT.STATE and src.startswith("thread."):
                    s.kind = P_STATE
                    s.attr = src[7:]
                s.prefix = b"" if p.type in (PT.FDPAIR, PT.OPENHOW) else (p.name + "=").encode()
                s.cache = {}
                specs.append(s)
            self.params.append(tuple(specs))

    cdef _ppm_plans(self):
        from tracer.capture.scap.render import c_plans, fd_tag, param_str
        from tracer.capture.scap.state import ensure_thread
        from tracer.schema.events import SYSCALL_NR

        self.param_str = param_str
        self.ensure_thread = ensure_thread
        self.ppm_fd_tag = fd_tag
        self.ppm_errnos = {}
        self.ppm_tags = {}
        self.close_exit = (SYSCALL_NR["close"] << 1) | 1
        self.ppm = []
        for plan in c_plans():
            if plan is None:
                self.ppm.append(None)
                continue
            params, silent, is_exit, rule, fd_idx, fd2_idx, res_idx, resfd_idx, named, connect, info = plan
            e = _PpmEvt()
            specs = []
            for code, prefix, size, sgn, bits, fmt, param in params:
                q = _PpmParam()
                q.code = code
                q.prefix = prefix
                q.size = size
                q.sgn = sgn
                q.bits = bits
                q.fmt = fmt
                q.param = param
                q.cache = {}
                specs.append(q)
            e.params = tuple(specs)
            e.silent = silent
            e.exit = is_exit
            e.rule = rule
            e.fd_idx = fd_idx
            e.fd2_idx = fd2_idx
            e.res_idx = res_idx
            e.resfd_idx = resfd_idx
            e.named = named
            e.connect = connect
            e.info = info
            self.ppm.append(e)
        self.nppm = len(self.ppm)

    def __cinit__(self):
        self.cap = 1 << 16
        self.buf = <char *>malloc(self.cap)
        if self.buf == NULL:
            raise MemoryError()
        self.pos = 0

    def __dealloc__(self):
        free(self.buf)

    cdef _Piece _piece(self, p, bytes text):
        pc = _Piece()
        pc.piece = p
        pc.width = p.width
        pc.text = text
        pc.kind = _KINDS.get(p.field.name, K_PY) if p.arg is None else K_PY
        return pc

    # --- the buffer --------------------------------------------------------------------------
    cdef int _grow(self, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap = self.cap
        cdef char *nb
        while cap < self.pos + n:
            cap *= 2
        nb = <char *>realloc(self.buf, cap)
        if nb == NULL:
            raise MemoryError()
        self.buf = nb
        self.cap = cap
        return 0

    cdef inline int _put(self, const char *s, Py_ssize_t n) except -1:
        if self.pos + n > self.cap:
            self._grow(n)
        memcpy(self.buf + self.pos, s, n)
        self.pos += n
        return 0

    cdef inline int _putc(self, char c) except -1:
        if self.pos + 1 > self.cap:
            self._grow(1)
        self.buf[self.pos] = c
        self.pos += 1
        return 0

    cdef inline int _putb(self, bytes b) except -1:
        return self._put(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))

    cdef int _puti(self, int64_t v) except -1:
        cdef char tmp[24]
        cdef int i = 24
        cdef uint64_t u = <uint64_t>(-v) if v < 0 else <uint64_t>v
        while True:
            i -= 1
            tmp[i] = <char>(48 + u % 10)
            u //= 10
            if u == 0:
                break
        if v < 0:
            i -= 1
            tmp[i] = 45
        return self._put(tmp + i, 24 - i)

    cdef int _putu(self, uint64_t u) except -1:
        cdef char tmp[24]
        cdef int i = 24
        while True:
            i -= 1
            tmp[i] = <char>(48 + u % 10)
            u //= 10
            if u == 0:
                break
        return self._put(tmp + i, 24 - i)

    cdef int _put9(self, uint64_t v) except -1:
        """Nine digits, zero-padded (nanoseconds)."""
        cdef char tmp[9]
        cdef int i
        for i in range(8, -1, -1):
            tmp[i] = <char>(48 + v % 10)
            v //= 10
        return self._put(tmp, 9)

    cdef int _puts(self, s) except -1:
        """A str, as UTF-8 (encoded once per distinct string)."""
        cdef PyObject *hit = PyDict_GetItem(self.enc, s)
        if hit != NULL:
            return self._putb(<bytes>hit)
        b = (<str>s).encode("utf-8", "surrogateescape")
        if len(self.enc) > 65536:
            self.enc.clear()
        self.enc[s] = b
        return self._putb(b)

    cdef int _put_json_from(self, Py_ssize_t start) except -1:
        """Quote the UTF-8 text at buf[start:pos] in place as a JSON string, as json.dumps does
        (ASCII only: \\uXXXX for the rest)."""
        cdef Py_ssize_t n = self.pos - start
        cdef bytes raw = self.buf[start:self.pos] if n else b""
        cdef const uint8_t *s = <const uint8_t *>PyBytes_AS_STRING(raw)
        cdef Py_ssize_t i = 0
        cdef uint8_t c
        self.pos = start
        self._putc(34)
        while i < n:
            c = s[i]
            if c >= 0x80:
                break
            if c == 34 or c == 92:
                self._putc(92)
                self._putc(c)
            elif 32 <= c < 127:
                self._putc(c)
            elif c == 10:
                self._put(b"\\n", 2)
            elif c == 13:
                self._put(b"\\r", 2)
            elif c == 9:
                self._put(b"\\t", 2)
            elif c == 8:
                self._put(b"\\b", 2)
            elif c == 12:
                self._put(b"\\f", 2)
            else:
                self._put(b"\\u00", 4)
                self._putc(HEXDIGITS[c >> 4])
                self._putc(HEXDIGITS[c & 15])
            i += 1
        if i < n:  # non-ASCII: json.dumps itself, for the rest of the string
            rest = _json.dumps(raw[i:].decode("utf-8", "surrogateescape")).encode()
            self._put(PyBytes_AS_STRING(rest) + 1, PyBytes_GET_SIZE(rest) - 1)
            return 0
        self._putc(34)
        return 0

    # --- records -----------------------------------------------------------------------------
    def render_records(self, bytes batch not None, sel, Py_ssize_t i, uint64_t num_base, bytes shown not None,
                       bint exact_only):
        """Render the events of ``sel`` (a scanner selection over ``batch``) from triple ``i``
        on, while they are plain matches (SEL_MATCH, with SEL_EXACT when ``exact_only``) or state
        events ``set_fast`` or ``set_lane`` lets it apply. ``shown`` masks the event ids that print. Returns
        (the next triple, events rendered)."""
        cdef const uint8_t *base = <const uint8_t *>PyBytes_AS_STRING(batch)
        cdef array sarr = sel
        cdef const uint64_t *s = <const uint64_t *>sarr.data.as_voidptr
        cdef Py_ssize_t nsel = Py_SIZE(sarr)
        cdef const uint8_t *show = <const uint8_t *>PyBytes_AS_STRING(shown)
        cdef Py_ssize_t nshow = PyBytes_GET_SIZE(shown)
        cdef uint64_t why
        cdef uint64_t want = (SEL_MATCH | SEL_EXACT) if exact_only else SEL_MATCH
        cdef Py_ssize_t off
        cdef rec_fixed f
        cdef Rec r
        cdef Py_ssize_t done = 0
        cdef const uint8_t *fast = <const uint8_t *>PyBytes_AS_STRING(self.fast_mask)
        cdef Py_ssize_t nfast = PyBytes_GET_SIZE(self.fast_mask)
        cdef bint ppm, shows
        if PyBytes_GET_SIZE(batch) == 0:
            return i, 0
        if sarr.ob_descr.typecode != b"Q":
            raise TypeError("the selection must be an array('Q')")
        self.threads = self.state.threads
        self.fds = self.state.fds
        self.batch = batch
        while i < nsel:
            why = s[i + 2]
            off = <Py_ssize_t>s[i + 1]
            memcpy(&f, base + off, sizeof(rec_fixed))
            ppm = f.flags & RF_PPM
            shows = f.evt < nshow and show[f.evt] and not f.flags & RF_HIDDEN
            if why & SEL_STATE:
                if why & SEL_RUN:
                    break
                if self.fast_apply is not None and f.evt < nfast and fast[f.evt]:
                    # An fd event the scanner leaves to its turn (close, the opens): applied
                    # here, without an Event, then shown like any other (a .scap one: first what
                    # making its Event would do, see _ppm_take).
                    why &= ~(<uint64_t>(SEL_STATE | SEL_FAST))
                    if why and why != want and not (not exact_only and why == (SEL_MATCH | SEL_EXACT)):
                        break
                    if why:
                        self._fill(&r, &f, base, off, num_base + s[i])
                        if ppm:
                            self._ppm_take(&r, shows)
                    self.fast_apply(batch, off)
                elif self.lane is not None and not why & SEL_FAST:
                    # Any other state event, applied by the state lane (an Event only where the
                    # state needs one, a .scap record's always), unless live mode's facts about
                    # it follow: those are applied before it shows, in Python.
                    why &= ~(<uint64_t>SEL_STATE)
                    if why and why != want and not (not exact_only and why == (SEL_MATCH | SEL_EXACT)):
                        break
                    if self._followed(base, PyBytes_GET_SIZE(batch), off, &f):
                        break
                    ev = self.lane.apply(batch, off, num_base + s[i])
                    if ev is False:
                        break  # one the lane leaves to the pipeline (live mode's enricher)
                    if why:
                        self._fill(&r, &f, base, off, num_base + s[i])
                        self.ev = ev
                else:
                    break
                if not why:
                    i += 3
                    continue
            elif why != want and not (not exact_only and why == (SEL_MATCH | SEL_EXACT)):
                break
            elif ppm:
                self._fill(&r, &f, base, off, num_base + s[i])
                self._ppm_take(&r, False)
            elif shows:
                self._fill(&r, &f, base, off, num_base + s[i])
            i += 3
            if shows:
                self._render(&r)
                done += 1
            self.have_pre = False
            self.pre_fd = None
            self.ev = None
        self.batch = None
        self.ev = None
        return i, done

    cdef int _fill(self, Rec *r, rec_fixed *f, const uint8_t *base, Py_ssize_t off, uint64_t num) except -1:
        """The record at ``off`` as the renderer reads it; a .scap one's PPM parameters too."""
        r.ts = f.ts
        r.tid = f.tid
        r.pid = f.pid
        r.evt = f.evt
        r.cpu = f.cpu
        r.ret = f.ret
        memcpy(r.args, f.args, sizeof(r.args))
        r.l0 = f.l0
        r.l1 = f.l1
        if REC_FIXED + <uint32_t>f.l0 + f.l1 > f.length:
            r.l0 = r.l1 = 0
        r.s0 = base + off + REC_FIXED
        r.s1 = r.s0 + r.l0
        r.flags = f.flags
        r.num = num
        r.pn = -1
        if f.flags & RF_PPM:
            _annex(r, base + off, f.length, f.l0, f.l1)
            if r.pn < 0:
                r.flags &= ~(<uint32_t>RF_PPM)  # a damaged annex: the Event's rules are ktrace's own
        self.off = off
        self.ev = None
        self.have_latency = False
        self.have_pre = False
        return 0

    cdef int _ppm_take(self, Rec *r, bint shows) except -1:
        """What making an Event of a .scap record does to the state (a thread it names, made as
        libsinsp makes it), and, for a shown close about to be applied, its fd looked up first
        (State.apply's order)."""
        cdef object fd
        if not r.flags & RF_PPM:
            return 0  # a damaged annex: Event.ppm is None, as is its rule
        if r.evt != EVT_PROCINFO and r.evt != EVT_CONTAINER and PyDict_GetItem(self.threads, r.tid) == NULL:
            self.ensure_thread(self.state, r.tid, r.pid)
        if shows and r.evt == self.close_exit:
            fd = self._ppm_fd(r)
            if fd is _PYTHON or self.has_py:
                fd = self._event(r).fd  # cached in the Event before the close, for its fields too
            self.pre_fd = fd
            self.have_pre = True
        return 0

    def set_fast(self, apply, mask):
        """Let ``render_records`` apply the fd events of ``mask`` (event id -> non-zero) itself,
        with ``apply(batch, off)`` (the scanner's ``apply``), instead of stopping at them."""
        self.fast_apply = apply
        self.fast_mask = bytes(mask) if apply is not None else b""

    def set_lane(self, lane, followers):
        """Let ``render_records`` apply the other state events with ``lane.apply(batch, off, num)``
        (a StateLane), but those followed by a record of ``followers`` (event id -> non-zero) about
        the same thread."""
        self.lane = lane
        self.followers = bytes(followers) if lane is not None else b""

    cdef bint _followed(self, const uint8_t *base, Py_ssize_t size, Py_ssize_t off, rec_fixed *f):
        cdef rec_head h
        cdef Py_ssize_t nxt = off + f.length
        if nxt + REC_HEAD > size:
            return False
        memcpy(&h, base + nxt, sizeof(rec_head))
        return h.tid == f.tid and h.evt < PyBytes_GET_SIZE(self.followers) \
            and (<const uint8_t *>PyBytes_AS_STRING(self.followers))[h.evt] != 0

    def render_event(self, ev):
        """Render one Event (one the pipeline made anyway: a state change, or one the Python
        filter looked at)."""
        cdef Rec r
        cdef bytes s0 = ev.seg0
        cdef bytes s1 = ev.seg1
        cdef int k
        args = ev.args
        r.ts = ev.ts
        r.tid = ev.tid
        r.pid = ev.pid
        r.evt = ev.evt
        r.cpu = ev.cpu
        r.ret = ev.ret
        for k in range(6):
            r.args[k] = args[k]
        r.s0 = <const uint8_t *>PyBytes_AS_STRING(s0)
        r.l0 = PyBytes_GET_SIZE(s0)
        r.s1 = <const uint8_t *>PyBytes_AS_STRING(s1)
        r.l1 = PyBytes_GET_SIZE(s1)
        r.flags = ev.flags
        r.num = ev.num
        r.pn = -1
        ppm = ev.ppm
        if ppm is not None:
            # Read from a .scap file: its parameters, from the Event's (which keeps them alive).
            vals = ppm[1]
            r.ptype = ppm[0]
            r.pn = len(vals)
            for k in range(min(r.pn, PMAX)):
                r.pv[k] = <const uint8_t *>PyBytes_AS_STRING(vals[k])
                r.pl[k] = PyBytes_GET_SIZE(vals[k])
        else:
            r.flags &= ~(<uint32_t>RF_PPM)
        self.threads = self.state.threads
        self.fds = self.state.fds
        self.ev = ev
        self.latency = ev.latency
        self.have_latency = True
        try:
            self._render(&r)
        finally:
            self.ev = None

    def take(self):
        """The rendered bytes so far; the buffer starts over."""
        out = self.buf[:self.pos]
        self.pos = 0
        return out

    @property
    def pending(self):
        """Bytes rendered and not taken yet."""
        return self.pos

    cdef object _event(self, Rec *r):
        if self.ev is None:
            self.ev = self.event_cls(self.batch, self.off, r.num, self.state)
        return self.ev

    cdef object _thread(self, Rec *r):
        cdef PyObject *t
        if self.ev is not None:
            return self.ev.thread
        t = PyDict_GetItem(self.threads, r.tid)
        return <object>t if t != NULL else None

    cdef object _fd(self, Rec *r):
        """The Fd the event is about (Event.fd), or None."""
        if self.ev is not None:
            return self.ev.fd
        if r.evt >= EVT_BASE_OTHER:
            return None
        return self._fd_of(r, (<const uint8_t *>PyBytes_AS_STRING(self.fd_regs))[r.evt])

    cdef object _fd_of(self, Rec *r, int reg):
        cdef int64_t n
        if reg == FD_NONE:
            return None
        if reg == FD_RET:
            n = r.ret if r.ret < 0 else <int32_t>r.ret
        else:
            n = <int32_t>r.args[reg]
        if n < 0:
            return None
        return self._lookup_fd(r.pid, n)

    cdef object _lookup_fd(self, uint32_t pid, int64_t n):
        cdef PyObject *fd
        cdef PyObject *table = PyDict_GetItem(self.fds, pid)
        if table == NULL:
            return None
        fd = PyDict_GetItem(<object>table, n)
        return <object>fd if fd != NULL else None

    cdef int _render(self, Rec *r) except -1:
        cdef _Piece p
        cdef timespec now
        if self.stop_at:
            self.tick += 1
            if self.skipped or self.tick & 63 == 0:
                clock_gettime(CLOCK_MONOTONIC, &now)
                if self.skipped or <uint64_t>now.tv_sec * 1000000000 + now.tv_nsec > self.stop_at:
                    self.skipped += 1
                    return 0
        cdef Py_ssize_t start, k, j, chars
        cdef Py_ssize_t npieces = len(self.pieces)
        cdef bint js = self.json
        for k in range(npieces):
            p = <_Piece>PyList_GET_ITEM(self.pieces, k)
            if p.kind == K_LIT:
                self._putb(p.text)
                continue
            if js:
                self._putb(p.text)
            start = self.pos
            self._field(p, r)
            if p.width and not js:
                # %N: exactly N characters (Formatter.line), cut or padded
                chars = 0
                for j in range(start, self.pos):
                    if (<uint8_t>self.buf[j]) & 0xC0 != 0x80:
                        chars += 1
                        if chars > p.width:
                            self.pos = j
                            chars = p.width
                            break
                while chars < p.width:
                    self._putc(32)
                    chars += 1
        self._putc(125 if js else 10)
        if js:
            self._putc(10)
        return 0

    cdef int _na(self) except -1:
        if self.json:
            return self._put(b'"<NA>"', 6)
        return self._put(b"<NA>", 4)

    cdef int _str(self, s) except -1:
        """A text value, or <NA> for None."""
        cdef Py_ssize_t start
        if s is None:
            return self._na()
        if self.json:
            start = self.pos
            self._puts(s)
            return self._put_json_from(start)
        return self._puts(s)

    cdef int _field(self, _Piece p, Rec *r) except -1:
        cdef int kind = p.kind
        cdef Py_ssize_t start
        cdef bint js = self.json
        if r.flags & RF_PPM and kind != K_INFO:
            # An event read from a .scap file: its fields follow libsinsp's rules (tracer.event's
            # PpmRules), here for fd.*, evt.rawres and evt.info (_info); the others read the
            # record and the state as for any record.
            if kind == K_PY:
                return self._py_field(p, r)
            if kind == K_FDNUM or kind == K_FDNAME or kind == K_FDTYPE:
                return self._ppm_fd_field(p, kind, r)
            if kind == K_RAWRES:
                return self._ppm_rawres(r)
        if kind == K_NUM:
            return self._putu(r.num)
        if kind == K_TID:
            return self._putu(r.tid)
        if kind == K_PID:
            return self._putu(r.pid)
        if kind == K_CPU:
            return self._putu(r.cpu)
        if kind == K_TIME:
            return self._time(r)
        if kind == K_DIR:
            if js:
                return self._put(b'"<"', 3) if r.evt < EVT_BASE_OTHER and r.evt & 1 else self._put(b'">"', 3)
            return self._putc(60 if r.evt < EVT_BASE_OTHER and r.evt & 1 else 62)
        if kind == K_TYPE:
            if js:
                self._putc(34)
                self._putb(self._name(r.evt))
                return self._putc(34)
            return self._putb(self._name(r.evt))
        if kind == K_INFO:
            start = self.pos
            self._info(r)
            if js:
                return self._put_json_from(start)
            return 0
        if kind == K_COMM or kind == K_EXE or kind == K_VTID or kind == K_USER or kind == K_CID \
                or kind == K_CNAME or kind == K_PODNAME:
            return self._thread_field(kind, r)
        if kind == K_FDNUM or kind == K_FDNAME or kind == K_FDTYPE:
            return self._fd_field(kind, r)
        return self._py_field(p, r)

    # --- records read from a .scap file: libsinsp's rules (tracer/capture/scap) -----------------
    cdef _PpmEvt _plan(self, Rec *r):
        if r.ptype >= self.nppm:
            return None
        return <_PpmEvt>PyList_GET_ITEM(self.ppm, r.ptype)

    cdef int _ppm_value(self, _PpmEvt e, Rec *r, int k, int64_t *v) noexcept:
        """Parameter k's number: 1, or BIG when it is an unsigned one past int64's range (v: its
        bits)."""
        cdef _PpmParam q = <_PpmParam>PyTuple_GET_ITEM(e.params, k)
        v[0] = _pint(r.pv[k], r.pl[k], q.size, q.sgn)
        return BIG if v[0] < 0 and not q.sgn else 1

    cdef int _ppm_res(self, _PpmEvt e, Rec *r, int64_t *v) noexcept:
        """state.ppm_res: the res parameter, or the fd an fd-creating exit returns (0: none; 1,
        or BIG: see _ppm_value)."""
        cdef int k = e.res_idx if 0 <= e.res_idx < r.pn else e.resfd_idx if 0 <= e.resfd_idx < r.pn else -1
        if k < 0:
            return 0
        return self._ppm_value(e, r, k, v)

    cdef int _ppm_fd_num(self, _PpmEvt e, Rec *r, int64_t *n) noexcept:
        """state.ppm_fd_num: the fd parameter of an event that uses one (an exit keeps its
        enter's), -1 on the enter of one that creates one, what its exit returned (0: none; 1,
        or BIG: see _ppm_value)."""
        cdef uint8_t reg
        cdef int k, got
        if e is None:
            return 0
        if e.rule == FD_USES:
            if not e.exit and r.pn > 0 and len(e.params):
                return self._ppm_value(e, r, 0, n)
            if r.evt >= EVT_BASE_OTHER:
                return 0
            reg = (<const uint8_t *>PyBytes_AS_STRING(self.fd_regs))[r.evt]
            if reg == FD_NONE:
                return 0
            n[0] = r.ret if reg == FD_RET else <int32_t>r.args[reg]
            return 1
        if e.rule == FD_CREATES:
            if not e.exit:
                n[0] = -1
                return 1
            k = e.fd_idx if 0 <= e.fd_idx < r.pn else e.fd2_idx if 0 <= e.fd2_idx < r.pn else -1
            got = self._ppm_value(e, r, k, n) if k >= 0 else self._ppm_res(e, r, n)
            if got == 1 and n[0] < 0:
                n[0] = -1
            return got
        return 0

    cdef object _ppm_fd(self, Rec *r):
        """state.ppm_fd: the Fd or None, or _PYTHON when only the Python rule knows it (what a
        failed open tried)."""
        cdef int64_t n
        cdef _PpmEvt e
        cdef int got
        if self.have_pre:
            return self.pre_fd
        if self.ev is not None:
            return self.ev.fd  # the Event's, looked up when the state saw it (State.apply)
        e = self._plan(r)
        got = self._ppm_fd_num(e, r, &n)
        if got != 1:
            return None  # none, or past any fd's number
        if n >= 0:
            return self._lookup_fd(r.pid, n)
        return _PYTHON if e.named else None

    cdef int _ppm_fd_field(self, _Piece p, int kind, Rec *r) except -1:
        cdef int64_t n, res
        cdef object fd
        cdef _PpmEvt e = self._plan(r)
        cdef int got = self._ppm_fd_num(e, r, &n)
        if not got:
            return self._na()
        if kind == K_FDNUM:
            return self._putu(<uint64_t>n) if got == BIG else self._puti(n)
        if kind == K_FDNAME and e.connect and r.pn > 1 and self._ppm_res(e, r, &res) == 1 and res < 0:
            return self._py_field(p, r)  # a failed connect: the address it tried
        fd = self._ppm_fd(r)
        if fd is _PYTHON:
            return self._py_field(p, r)
        if kind == K_FDNAME:
            if fd is not None:
                return self._str(fd.name)
            return self._str("") if e.exit else self._na()
        if fd is None:
            return self._na()
        return self._str(fd.type if fd.type != "" else None)

    cdef int _ppm_rawres(self, Rec *r) except -1:
        cdef int64_t v
        cdef _PpmEvt e = self._plan(r)
        cdef int got = self._ppm_res(e, r, &v) if e is not None else 0
        if not got:
            return self._na()
        return self._putu(<uint64_t>v) if got == BIG else self._puti(v)

    cdef int _ppm_info(self, Rec *r) except -1:
        """render.ppm_info: name=value, or name=value(resolved), each followed by a space."""
        cdef _PpmEvt e = self._plan(r)
        cdef _PpmParam q
        cdef Py_ssize_t k, n
        if e is None or e.silent:
            return 0
        n = len(e.params)
        if r.pn < n:
            n = r.pn
        for k in range(n):
            q = <_PpmParam>PyTuple_GET_ITEM(e.params, k)
            self._putb(q.prefix)
            self._ppm_param(e, q, k, r)
            self._putc(32)
        return 0

    cdef int _ppm_param(self, _PpmEvt e, _PpmParam q, Py_ssize_t k, Rec *r) except -1:
        """render.param_str's text, with its resolved part in parentheses."""
        cdef const uint8_t *p = r.pv[k]
        cdef uint32_t n = r.pl[k]
        cdef uint32_t m
        cdef int code = q.code
        cdef int64_t v
        cdef PyObject *hit
        cdef object fd
        if code == Q_INT:
            return self._ppm_number(q, _pint(p, n, q.size, q.sgn))
        if code == Q_ERRNO or code == Q_FD:
            v = _pint(p, n, q.size, q.sgn)
            if v == -100 and code == Q_FD:
                return self._put(b"-100(AT_FDCWD)", 14)  # render._fd: libsinsp's name in any fd
            if v < 0:
                return self._ppm_errno(v)
            self._puti(v)
            if code == Q_ERRNO:
                return 0
            fd = self._lookup_fd(r.pid, v)
            if fd is None:
                return 0
            self._putc(40)
            self._putb(self._ppm_tag(fd))
            self._puts(fd.name)
            return self._putc(41)
        if code == Q_PID:
            v = _pint(p, n, q.size, q.sgn)
            self._puti(v)
            hit = PyDict_GetItem(self.threads, v)
            if hit != NULL:
                comm = (<object>hit).comm
                if comm:
                    self._putc(40)
                    self._puts(comm)
                    self._putc(41)
            return 0
        if code == Q_STR or code == Q_PATH:
            m = 0
            while m < n and p[m]:
                m += 1
            if code == Q_PATH and m and p[0] != 47 and PyDict_GetItem(self.threads, r.tid) != NULL \
                    and not (m == 4 and p[0] == 60 and p[1] == 78 and p[2] == 65 and p[3] == 62):
                return self._ppm_py(e, q, k, r)  # relative: resolved against the cwd or the dirfd
            for v in range(m):
                if p[v] >= 0x80:
                    return self._puts((<const char *>p)[:m].decode("utf-8", "replace"))
            return self._put(<const char *>p, m)
        if code == Q_BUF:
            if n == 0 and not self.normal_buf:
                return self._puts(self.render_buffer(b"", self.info_opts))
            return self._put_buf(p, n)
        if code == Q_CACHED:
            key = (<const char *>p)[:n]
            hit = PyDict_GetItem(q.cache, key)
            if hit != NULL:
                return self._putb(<bytes>hit)
            text, resolved = self.param_str(None, q.param, key, (), [], self.info_opts)
            out = (f"{text}({resolved})" if resolved else text).encode("utf-8", "surrogateescape")
            if len(q.cache) >= 4096:
                q.cache.clear()
            q.cache[key] = out
            return self._putb(out)
        return self._ppm_py(e, q, k, r)

    cdef int _ppm_py(self, _PpmEvt e, _PpmParam q, Py_ssize_t k, Rec *r) except -1:
        """param_str itself, with the Event, for this parameter only."""
        ev = self._event(r)
        vals = ev.ppm[1]
        text, resolved = self.param_str(ev, q.param, vals[k], e.info.params, vals, self.info_opts)
        self._puts(text)
        if resolved:
            self._putc(40)
            self._puts(resolved)
            self._putc(41)
        return 0

    cdef int _ppm_number(self, _PpmParam q, int64_t v) except -1:
        """render._number: PPM's print format, of the value at the type's width."""
        cdef uint64_t u
        if q.fmt == PF_HEX:
            u = <uint64_t>v
            if q.bits < 64:
                u &= (<uint64_t>1 << q.bits) - 1
            return self._put_base(u, 16)
        if q.fmt == PF_OCT:
            if q.sgn and v < 0:
                return self._puts(f"0{v:o}")
            return self._put_base(<uint64_t>v, 8)
        if q.fmt == PF_PADDED_DEC:
            return self._puts(f"{_sext(v, q.bits):09d}")
        return self._puti(_sext(v, q.bits))

    cdef int _ppm_errno(self, int64_t v) except -1:
        cdef PyObject *hit = PyDict_GetItem(self.ppm_errnos, v)
        if hit == NULL:
            name = self.errno_name(-v)
            text = (f"{v}({name})" if name else f"{v}").encode()
            if len(self.ppm_errnos) < 4096:
                self.ppm_errnos[v] = text
            return self._putb(text)
        return self._putb(<bytes>hit)

    cdef bytes _ppm_tag(self, fd):
        """render.fd_tag: a socket's protocol letter only once it has a role."""
        key = (fd.type, fd.l4proto, fd.is_server is None)
        cdef PyObject *hit = PyDict_GetItem(self.ppm_tags, key)
        if hit != NULL:
            return <bytes>hit
        tag = self.ppm_fd_tag(fd).encode()
        self.ppm_tags[key] = tag
        return tag

    cdef bytes _name(self, uint16_t evt):
        if evt < EVT_MAX:
            return <bytes>PyList_GET_ITEM(self.names, evt)
        from tracer.schema.events import event_name
        return event_name(evt).encode()

    cdef int _time(self, Rec *r) except -1:
        cdef uint64_t ts = r.ts
        cdef int64_t d
        cdef int64_t sec
        cdef int m = self.tmode
        if not self.first_ts:
            self.first_ts = ts
        if self.json:
            return self._putu(ts)
        if m == 97:  # a
            d = <int64_t>ts
        elif m == 114:  # r
            d = <int64_t>(ts - self.first_ts)
        elif m == 100:  # d
            if not self.have_latency:
                return self._py_time(r)
            d = self.latency if r.evt < EVT_BASE_OTHER and r.evt & 1 else 0
        elif m == 68:  # D
            d = <int64_t>(ts - self.prev_ts) if self.prev_ts else 0
            self.prev_ts = ts
        else:
            sec = ts // 1000000000
            if sec != self.time_sec:
                self.time_text = _time.strftime("%H:%M:%S", _time.localtime(sec)).encode() + b"."
                self.time_sec = sec
            self._putb(self.time_text)
            return self._put9(ts % 1000000000)
        # Python's floor division: a negative delta (CPUs' clocks) prints as -1.999999999
        sec = d // 1000000000
        if d < 0 and sec * 1000000000 != d:
            sec -= 1
        self._puti(sec)
        self._putc(46)
        return self._put9(<uint64_t>(d - sec * 1000000000))

    cdef int _py_time(self, Rec *r) except -1:
        ev = self._event(r)
        return self._puts(self.fmt._outputtime(ev))

    cdef int _thread_field(self, int kind, Rec *r) except -1:
        t = self._thread(r)
        if t is None:
            return self._na()
        if kind == K_COMM:
            v = t.comm
            return self._str(v if v != "" else None)
        if kind == K_EXE:
            v = t.exe
            return self._str(v if v != "" else None)
        if kind == K_VTID:
            vt = t.vtid
            if vt == -1:
                return self._na()
            return self._puti(vt)
        if kind == K_USER:
            uid = t.uid
            if uid < 0:
                return self._na()
            u = self.state.users.get(uid)
            return self._str(u.name if u is not None else None)
        cid = t.container_id
        if cid == "host":
            return self._str("host" if kind != K_PODNAME else None)
        if kind == K_CID:
            return self._str(cid)
        info = self.state.containers.get(cid)
        if not info:
            return self._na()
        v = info.get("name" if kind == K_CNAME else "pod_name")
        if v is None or v == "" or v == "<NA>":
            return self._na()
        if not isinstance(v, str):
            return self._py_value(v, None)
        return self._str(v)

    cdef bint _fd_num(self, Rec *r, int64_t *n) noexcept:
        """The fd the event is about (its fd argument, or the new fd it returned), if it has one."""
        cdef uint8_t reg
        if r.evt >= EVT_BASE_OTHER:
            return False
        reg = (<const uint8_t *>PyBytes_AS_STRING(self.fd_regs))[r.evt]
        if reg == FD_NONE:
            return False
        if reg == FD_RET:
            n[0] = r.ret if r.ret < 0 else <int32_t>r.ret
        else:
            n[0] = <int32_t>r.args[reg]
        return True

    cdef int _fd_field(self, int kind, Rec *r) except -1:
        cdef int64_t n = -1
        if kind == K_FDNUM:
            return self._puti(n) if self._fd_num(r, &n) else self._na()
        fd = self._fd(r)
        if kind == K_FDNAME:
            # libsinsp's rule: a known fd without a name (a pipe's) has an empty one, and so has an
            # exit's fd the state does not know.
            if fd is not None:
                return self._str(fd.name)
            if r.evt & 1 and self._fd_num(r, &n) and n >= 0:
                return self._str("")
            return self._na()
        if fd is None:
            return self._na()
        return self._str(fd.type if fd.type != "" else None)

    cdef int _py_field(self, _Piece p, Rec *r) except -1:
        """A field without a C renderer: the Formatter's own value, for this field only."""
        ev = self._event(r)
        return self._py_value(self.fmt.value(ev, p.piece), p.piece)

    cdef int _py_value(self, v, piece) except -1:
        from tracer.output.format import NA, _text
        from tracer.schema.fields import FieldType
        if not self.json:
            return self._puts(NA if v is None else _text(v))
        if v is None:
            v = NA
        elif piece is not None and piece.field.type in (FieldType.IPADDR, FieldType.IPNET):
            v = str(v)
        elif isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, list):
            v = [str(x) for x in v]
        return self._putb(_json.dumps(v, separators=(",", ":")).encode())

    # --- evt.info ----------------------------------------------------------------------------
    cdef int _info(self, Rec *r) except -1:
        cdef _Param s
        cdef Py_ssize_t k, mark
        if r.flags & RF_PPM:
            return self._ppm_info(r)
        specs = <object>PyList_GET_ITEM(self.params, r.evt) if r.evt < EVT_MAX else ()
        if specs is None or r.flags & RF_PPM:
            ev = self._event(r)
            return self._puts(ev.info_str(self.info_opts))
        if specs is RAW_ARGS:
            return self._raw_args(r)
        for k in range(len(<tuple>specs)):
            s = <_Param>(<tuple>specs)[k]
            mark = self.pos
            self._putb(s.prefix)
            self._param(s, r)
            if self.pos > mark:
                self._putc(32)
        return 0

    cdef int _raw_args(self, Rec *r) except -1:
        """A syscall without a decoder: res=N, or its argument registers up to the last set."""
        cdef int last = -1
        cdef int k
        cdef uint64_t a
        cdef int sh
        cdef PyObject *hit
        if r.evt & 1:
            self._put(b"res=", 4)
            if -4096 < r.ret < 0:
                hit = PyDict_GetItem(self.errnos, r.ret)
                if hit == NULL:
                    text = f"{r.ret}({self.errno_name(-r.ret)})".encode()
                    self.errnos[r.ret] = text
                    hit = <PyObject *>text
                self._putb(<bytes>hit)
            else:
                self._puti(r.ret)
            return self._putc(32)
        for k in range(6):
            if r.args[k]:
                last = k
        for k in range(last + 1):
            if k:
                self._putc(32)
            self._putc(97)
            self._putc(48 + k)
            self._put(b"=0x", 3)
            a = r.args[k]
            sh = 60
            while sh > 0 and not (a >> sh) & 15:
                sh -= 4
            while sh >= 0:
                self._putc(HEXDIGITS[(a >> sh) & 15])
                sh -= 4
        if last >= 0:
            self._putc(32)
        return 0

    cdef int _param(self, _Param s, Rec *r) except -1:
        cdef int kind = s.kind
        cdef int64_t v
        cdef uint64_t raw
        if kind == P_PY:
            return self._py_param(s, r)
        if kind == P_STATE:
            return self._state_param(s, r)
        if kind == P_SEGNUM:
            return self._seg_number(s, r)
        if kind >= P_PATH and kind <= P_BUF:
            return self._seg_param(s, r)
        if s.src == SRC_RET:
            v = r.ret
        else:
            v = <int64_t>r.args[s.src]
        if kind == P_INT32:
            return self._puti(<int32_t>v)
        if kind == P_INT64:
            return self._puti(v)
        if kind == P_UINT:
            if s.src == SRC_RET:
                return self._puti(v)
            return self._putu(r.args[s.src])
        if kind == P_ID32:
            return self._putu(<uint32_t>v)
        if kind == P_FD:
            return self._fd_text(r, <int32_t>v)
        if kind == P_DIRFD:
            v = <int32_t>v
            if v == -100:
                return self._put(b"-100(AT_FDCWD)", 14)
            return self._fd_text(r, v)
        if kind == P_RES or kind == P_RESFD:
            if v >= 0:
                if kind == P_RES:
                    return self._puti(v)
                return self._fd_text(r, v)
            return self._cached(s, v)
        if kind == P_HEX or kind == P_OCT:
            if s.src == SRC_RET and v < 0:
                return self._cached(s, v)
            return self._put_base(r.args[s.src] if s.src != SRC_RET else <uint64_t>v, 16 if kind == P_HEX else 8)
        if kind == P_CACHED32:
            return self._cached(s, <int32_t>v)
        # P_CACHED: the Python value as Event.raw gives it (ret signed, registers unsigned)
        if s.src == SRC_RET:
            return self._cached(s, v)
        raw = r.args[s.src]
        return self._cached(s, raw)

    cdef int _put_base(self, uint64_t a, int base) except -1:
        """f"{a:X}" (base 16) or f"0{a:o}" (base 8); 0 alone for 0."""
        cdef int sh, step = 4 if base == 16 else 3
        cdef uint64_t mask = 15 if base == 16 else 7
        if a == 0:
            return self._putc(48)
        if base == 8:
            self._putc(48)
        sh = 60 if base == 16 else 63
        while sh > 0 and not (a >> sh) & mask:
            sh -= step
        while sh >= 0:
            self._putc(HEXUPPER[(a >> sh) & mask])
            sh -= step
        return 0

    cdef int _seg_number(self, _Param s, Rec *r) except -1:
        cdef uint64_t a = 0
        cdef uint32_t n = r.l0 if s.src == SRC_S0 else r.l1
        memcpy(&a, r.s0 if s.src == SRC_S0 else r.s1, 8 if n > 8 else n)
        if s.base == 10:
            return self._putu(a)
        return self._put_base(a, s.base)

    cdef int _cached(self, _Param s, key) except -1:
        cdef PyObject *hit = PyDict_GetItem(s.cache, key)
        if hit != NULL:
            return self._putb(<bytes>hit)
        text = self.render_param(None, s.param, key, self.info_opts).encode("utf-8", "surrogateescape")
        if len(s.cache) < 4096:
            s.cache[key] = text
        return self._putb(text)

    cdef int _fd_text(self, Rec *r, int64_t n) except -1:
        """3(<f>/etc/passwd), or the number alone when the state does not know the fd."""
        self._puti(n)
        if n < 0:
            return 0
        fd = self._lookup_fd(r.pid, n)
        if fd is None:
            return 0
        self._putc(40)
        key = (fd.type, fd.l4proto)
        tag = self.tags.get(key)
        if tag is None:
            tag = fd.tag.encode()
            self.tags[key] = tag
        self._putb(tag)
        self._puts(fd.name)
        return self._putc(41)

    cdef int _seg_param(self, _Param s, Rec *r) except -1:
        cdef const uint8_t *p
        cdef Py_ssize_t n, k
        if s.src == SRC_S0:
            p = r.s0
            n = r.l0
        else:
            p = r.s1
            n = r.l1
        if s.kind == P_BUF:
            if n == 0:
                return 0
            return self._put_buf(p, n)
        if s.kind == P_STR or s.kind == P_ARGV:
            while n > 0 and p[n - 1] == 0:
                n -= 1
        for k in range(n):
            if p[k] >= 0x80:
                return self._py_param(s, r)
        if s.kind == P_PATH:
            if n and p[0] != 47:
                return self._py_param(s, r)  # relative: resolved against the cwd or dirfd
            return self._put(<const char *>p, n)
        if s.kind == P_ARGV:
            if self.pos + n > self.cap:
                self._grow(n)
            for k in range(n):
                self.buf[self.pos + k] = p[k] if p[k] else 46
            self.pos += n
            return 0
        return self._put(<const char *>p, n)

    cdef int _put_buf(self, const uint8_t *p, Py_ssize_t n) except -1:
        """A buffer as render_buffer prints it (-A, -X, -x, -b, -s, -v)."""
        cdef Py_ssize_t k, limit
        cdef bint cut
        cdef uint8_t c
        if self.normal_buf:
            limit = n
            cut = not self.verbose and self.max_buf and n > self.max_buf
            if cut:
                # sysdig's cut: max_buf characters in all, the last three of them "..."
                limit = self.max_buf - 3 if self.max_buf > 3 else self.max_buf
            if self.pos + limit + 3 > self.cap:
                self._grow(limit + 3)
            for k in range(limit):
                c = p[k]
                self.buf[self.pos + k] = c if 32 <= c < 127 else 46
            self.pos += limit
            if cut and self.max_buf > 3:
                self._put(b"...", 3)
            return 0
        if self.ascii_buf:
            # Event.ascii_only: printable characters and line ends (a CR, or a CR LF, one newline)
            if self.pos + n + 1 > self.cap:
                self._grow(n + 1)
            self.buf[self.pos] = 10
            self.pos += 1
            limit = 0
            for k in range(n):
                c = p[k]
                if 32 <= c < 127 or c == 10:
                    self.buf[self.pos + limit] = c
                    limit += 1
                elif c == 13 and not (k + 1 < n and p[k + 1] == 10):
                    self.buf[self.pos + limit] = 10
                    limit += 1
            self.pos += limit
            return 0
        return self._puts(self.render_buffer((<const char *>p)[:n], self.info_opts))

    cdef int _state_param(self, _Param s, Rec *r) except -1:
        """Event.render_param of a thread attribute, as Event.raw reads it."""
        t = self._thread(r)
        if t is None:
            return 0
        v = getattr(t, s.attr, None)
        if v is None:
            return 0
        if type(v) is str:
            return self._puts(v)
        if type(v) is list:
            return self._puts(".".join(v))
        return self._puts(str(v))

    cdef int _py_param(self, _Param s, Rec *r) except -1:
        ev = self._event(r)
        return self._puts(ev.arg_str(s.param, self.info_opts))
