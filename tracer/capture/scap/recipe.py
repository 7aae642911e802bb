"""The export's fast path: per ktrace event id, a recipe of how its PPM event is made from the
record's bytes alone, compiled once from the PPM table and ktrace's schema.

``Exporter.ppm_event`` decides each parameter's value record by record; for most events that
decision depends only on the event id (which register, the return value, which segment, which
flag table). Compiling it gives a list of operations per event id that the engine's ``scapwrite``
module applies straight from record bytes to EV_V2 blocks, into one reused buffer. An event whose
PPM event needs the facts of a process (clones, execs) or a value only known at run time (a
socket's protocol) gets no recipe and stays on ``Exporter``'s path. An enter whose PPM event holds
what ktrace's record keeps for the exit (openat's path) takes it from that exit, the thread's next
record (``OP_PEEK``). An event that changes the state keeps it current before it is written: the
fd changes of close, the opens and the dups in the run itself (as the scanner's fast path), the
others by the exporter. A socket tuple is the one thing a recipe asks of the state.

The operations (OP_*, applied by tracer._ext.scapwrite and its twin):
    INT src xform width   a register (0-5) or the result (6), transformed, at width bytes
    CONST i               objs[i], bytes
    SEGSTR seg            a segment up to its first NUL, then a NUL
    SEGBUF seg            a segment as is
    MEMO src i            objs[i] = (memo, fn): fn(value) for the register's value, remembered
    SEGCALL seg i         objs[i](segment)
    ENTERFD width         the fd of the thread's last enter (the exporter's Enters), -1 if none
    TUPLE                 the socket tuple of the event's fd (its FD_REGS register): the run's
                          ``tuple_of(pid, fd)``, which asks the state (it is -1 for none)
    | PEEK                (on INT, SEGSTR, SEGBUF, MEMO, SEGCALL) from the event's exit, not itself
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, NamedTuple

from tracer.engine import scapwrite
from tracer.schema import record as R
from tracer.schema.events import FD_NONE, FD_REGS, FD_RET, SYSCALL_NR, SYSCALLS
from tracer.schema.events import Param as KParam
from tracer.schema.types import PT as KPT
from tracer.state.state import CLONE_ENTERS, State

from . import blocks as B
from . import export as X
from .table import PPM_EVENTS, PT, PParam

OP_INT, OP_CONST, OP_SEGSTR, OP_SEGBUF, OP_MEMO, OP_SEGCALL, OP_ENTERFD, OP_TUPLE = range(1, 9)
OP_PEEK: Final = 16
_PEEKABLE: Final = frozenset({OP_INT, OP_SEGSTR, OP_SEGBUF, OP_MEMO, OP_SEGCALL})
X_NONE, X_S32, X_U32, X_MAX0, X_FDRET = range(5)  # how a register's value is taken
SRC_RET: Final = 6
# Per event id: has a recipe; an exit whose missing enter is written first; changes the state
# (applied before it is written); an enter with parameters of its exit (OP_PEEK); an enter that,
# hidden and of a thread the state does not know, is only noted (the exporter writes nothing).
F_FAST, F_NEEDS_ENTER, F_APPLY, F_PEEK, F_HIDE = 1, 2, 4, 8, 16
MEMO_MAX: Final = 4096  # values remembered per flags parameter

Op = tuple[int, int, int, int]


class _NotCompiled(Exception):
    """This parameter's value is decided at run time or from the state: no recipe."""


def _int_xform(ktype: KPT) -> int:
    """Event.raw's transform of a register value, for a ktrace parameter type."""
    if ktype in (KPT.FD, KPT.DIRFD, KPT.INT, KPT.PID, KPT.SIGNAL):
        return X_S32
    if ktype in (KPT.UID, KPT.GID):
        return X_U32
    return X_NONE


def _src(kp: KParam) -> int:
    if kp.src == "ret":
        return SRC_RET
    if kp.src[0] == "a":
        return int(kp.src[1])
    raise _NotCompiled


def _raw_int(ktype: KPT, v: int) -> int:
    """Event.raw on a register or result value."""
    xf = _int_xform(ktype)
    if xf == X_S32:
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v & 0x80000000 else v
    if xf == X_U32:
        return v & 0xFFFFFFFF
    return v


class _Compiler:
    def __init__(self) -> None:
        self.objs: list[Any] = []
        self.peeked: frozenset[int] = frozenset()  # ids of the exit's parameters an enter takes

    def of(self, kp: KParam, op: Op) -> Op:
        """``op``, made from ``kp``'s value: from the exit's record when ``kp`` is the exit's."""
        if id(kp) in self.peeked and op[0] in _PEEKABLE:
            return (op[0] | OP_PEEK, *op[1:])
        return op

    def obj(self, o: Any) -> int:
        self.objs.append(o)
        return len(self.objs) - 1

    def const(self, p: PParam, v: Any) -> Op:
        return (OP_CONST, self.obj(X.encode_value(p, v)), 0, 0)

    def int_op(self, p: PParam, src: int, xform: int) -> Op:
        st = X._INT_STRUCTS.get(p.type)
        if st is None:
            raise _NotCompiled  # a number where PPM wants bytes: encode_value's bytes(int)
        return (OP_INT, src, xform, st.size)

    def value(self, p: PParam, kp: KParam) -> Op:
        """encode_value(p, Event.raw(kp)), as ``Exporter._value`` returns it for a found alias."""
        if kp.src in ("s0", "s1"):
            seg = int(kp.src[1])
            if p.type == PT.SOCKADDR:
                return (OP_SEGCALL, seg, self.obj(lambda raw, p=p: X.encode_value(p, X.ppm_sockaddr(raw))), 0)
            if p.type in X._STRINGS:
                return (OP_SEGSTR, seg, 0, 0)
            if p.type in X._INT_STRUCTS:
                return self.const(p, 0)
            if p.type in (PT.FDLIST, PT.DYN):
                return self.const(p, b"")
            return (OP_SEGBUF, seg, 0, 0)
        src = _src(kp)
        if p.type == PT.SOCKADDR:
            return self.const(p, b"")
        if p.table and p.type in X._TABLED:
            def fn(v: int, p: PParam = p, kp: KParam = kp) -> bytes:
                return X.encode_value(p, X.ppm_value(p.table, kp.fmt, _raw_int(kp.type, v)))
            return (OP_MEMO, src, self.obj(({}, fn)), 0)
        if p.type in (PT.FDLIST, PT.DYN):
            return self.const(p, 0)
        return self.int_op(p, src, _int_xform(kp.type))

    def param(self, evt: int, p: PParam, kv: dict[str, KParam], direction: int) -> Op:
        """One parameter, following ``Exporter._value`` branch by branch."""
        if p.name == "proto" and "type" in kv:
            raise _NotCompiled  # depends on the protocol's value
        if p.name in ("tuple", "data") or (p.name == "res" and direction):
            if p.name == "res":
                return self.int_op(p, SRC_RET, X_NONE)
            if p.name == "tuple":  # the socket, from the state, which this event does not change
                return (OP_TUPLE, 0, 0, 0)
            kp = kv.get("data")
            if kp is not None and kp.src in ("s0", "s1"):
                if p.type in X._INT_STRUCTS or p.type in (PT.FDLIST, PT.DYN):
                    raise _NotCompiled
                return self.of(kp, (OP_SEGSTR if p.type in X._STRINGS else OP_SEGBUF, int(kp.src[1]), 0, 0))
            if kp is not None and kp.src.startswith("thread."):
                raise _NotCompiled
            return self.const(p, b"")
        if p.type in (PT.FD, PT.FD32) and p.name == "fd":
            kp = kv.get("fd")
            if direction and kp is not None and kp.src == "ret":
                return self.int_op(p, SRC_RET, X_NONE)
            if kp is not None:  # its value as is, not through the alias rules
                return self.of(kp, self.int_op(p, _src(kp), _int_xform(kp.type)))
            if direction:
                st = X._INT_STRUCTS[p.type]
                return (OP_ENTERFD, 0, 0, st.size)
            reg = FD_REGS[evt]
            if reg == FD_NONE:
                return self.const(p, None)
            return self.int_op(p, SRC_RET if reg == FD_RET else reg, X_FDRET if reg == FD_RET else X_S32)
        for alias in X._ALIASES.get(p.name, (p.name,)):
            kp = kv.get(alias)
            if kp is not None:
                if kp.src.startswith("thread."):
                    raise _NotCompiled
                return self.of(kp, self.value(p, kp))
        if p.name in ("fd1", "fd2") and "fds" in kv:
            raise _NotCompiled
        if p.name == "size" and direction:
            return self.int_op(p, SRC_RET, X_MAX0)
        if p.name == "dirfd" and p.type in (PT.FD, PT.FD32):
            return self.const(p, -100)
        return self.const(p, None)


def _slow_events() -> frozenset[int]:
    """Event ids that stay on Exporter's path: they read a process's facts or keep what a clone's
    child needs."""
    slow = set(CLONE_ENTERS) | set(X._PROCESS_EXIT_EVTS)
    for name in X._PROCESS_EXITS:
        slow.add(R.syscall_evt(SYSCALL_NR[name], 0))
    return frozenset(slow)


class Recipes(NamedTuple):
    """What ``scapwrite.Plan`` is made of, per event id (see Plan)."""

    etypes: list[int]
    ops: list[list[Op]]
    objs: list[Any]
    flags: bytes
    fd_regs: bytes
    fast: bytes
    block_type: int


def compile_plan(state_changes: bool = True) -> scapwrite.Plan:
    """The recipes of every syscall event id (internal events have none), as the engine's Plan:
    one per exporter (a Plan keeps its buffer and the last values of its ops while it runs).
    Without ``state_changes``, an event that changes the state has none: a rotating writer starts
    a file where any block may end, with the state as that block's event left it, and a run's
    blocks are only handed over once it ends."""
    r = _compiled()
    if not state_changes:
        r = r._replace(flags=bytes(0 if f & F_APPLY else f for f in r.flags))
    return scapwrite.Plan(*r)


def compile_recipes() -> Recipes:
    """The recipes of every syscall event id, from the PPM table and ktrace's schema (a copy of
    its lists: the caller may change them)."""
    r = _compiled()
    return r._replace(etypes=list(r.etypes), ops=[list(o) for o in r.ops], objs=list(r.objs))


@cache
def _compiled() -> Recipes:
    from tracer.pipeline import FAST_MASK

    slow = _slow_events()
    changes = frozenset(State()._handlers)
    c = _Compiler()
    nevt = R.NSYSCALLS * 2
    etypes = [-1] * nevt
    ops: list[list[Op]] = [[] for _ in range(nevt)]
    flags = bytearray(nevt)
    for evt in range(nevt):
        if not evt & 1 and evt not in CLONE_ENTERS and evt not in X.ENTER_FROM_EXIT:
            flags[evt] = F_HIDE  # what State.note_enter does is all it needs
        if evt in slow:
            continue
        nr, direction = evt >> 1, evt & 1
        kinfo = SYSCALLS[nr]
        name = kinfo.name if kinfo is not None else X.SYSCALLS_X86_64.get(nr, "") if isinstance(
            X.SYSCALLS_X86_64, dict) else (X.SYSCALLS_X86_64[nr] if nr < len(X.SYSCALLS_X86_64) else "")
        etype = X.PPM_IDS.get((name, direction))
        peek = False
        if etype is None:
            code = X._PPM_SC_CODE.get(name, 0)
            generic = [code.to_bytes(2, "little")]
            if not direction:
                generic.append(nr.to_bytes(2, "little"))
            etypes[evt] = X.GENERIC_X if direction else X.GENERIC_E
            ops[evt] = [(OP_CONST, c.obj(v), 0, 0) for v in generic]
        else:
            info = PPM_EVENTS[etype]
            assert info is not None
            kv = {kp.name: kp for kp in kinfo.params(direction)} if kinfo is not None else {}
            peek = evt in X.ENTER_FROM_EXIT
            if peek and kinfo is not None:  # as Exporter.ppm_event with the exit read ahead
                later = [kp for kp in kinfo.params(1) if kp.name not in kv and kp.src != "ret"]
                kv.update((kp.name, kp) for kp in later)
                c.peeked = frozenset(id(kp) for kp in later)
            try:
                ops[evt] = [c.param(evt, p, kv, direction) for p in info.params]
            except _NotCompiled:
                continue
            finally:
                c.peeked = frozenset()
            etypes[evt] = etype
        flags[evt] |= F_FAST | (F_NEEDS_ENTER if direction and evt - 1 in X._FD_ENTERS else 0) \
            | (F_APPLY if evt in changes else 0) | (F_PEEK if peek else 0)
    return Recipes(etypes, ops, c.objs, bytes(flags), FD_REGS[:nevt], FAST_MASK[:nevt], B.EV_V2)


__all__ = ["F_APPLY", "F_FAST", "F_HIDE", "F_NEEDS_ENTER", "F_PEEK", "MEMO_MAX", "OP_PEEK", "Recipes", "compile_plan",
           "compile_recipes"]
