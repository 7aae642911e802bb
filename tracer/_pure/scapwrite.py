"""Records to EV_V2 blocks by compiled recipe (pure-Python twin of ext/scapwrite.pyx).

The recipes come from tracer/capture/scap/recipe.py, which documents the operations.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from tracer.schema import record as R
from tracer.schema.events import FD_NONE, FD_RET

_FIXED = struct.Struct(R.FIXED_FMT)
_HEAD = struct.Struct("<QIIHHI")  # ts, tid, pid, evt, cpu, length: a record's first REC_HEAD bytes
_EV = struct.Struct("<IIHQQIHI")  # block type, total, cpu, ts, tid, event length, type, nparams
_EV_FIXED = 26  # ts, tid, length, type, nparams: what an event's length counts beside its params
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")
_FOLLOWERS = (R.EVT_THREADINFO, R.EVT_FDINFO)
_SKIP = R.RF_HIDDEN | R.RF_PPM
F_FAST, F_NEEDS_ENTER, F_APPLY = 1, 2, 4
OP_INT, OP_CONST, OP_SEGSTR, OP_SEGBUF, OP_MEMO, OP_SEGCALL, OP_ENTERFD, OP_TUPLE = range(1, 9)
X_NONE, X_S32, X_U32, X_MAX0, X_FDRET = range(5)
SRC_RET = 6
MEMO_MAX = 4096
_MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _xform(v: int, xf: int) -> int:
    if xf == X_S32:
        return _s32(v)
    if xf == X_U32:
        return v & 0xFFFFFFFF
    if xf == X_MAX0:
        return v if v > 0 else 0
    if xf == X_FDRET:
        return v if v < 0 else _s32(v)
    return v


class Plan:
    """Per event id (syscalls, enter and exit), its PPM event type and the operations making its
    parameters; ``flags`` per event id: 1 written by recipe, 2 an exit whose enter must be the
    thread's last one written (else its missing enter is written first, by the exporter)."""

    def __init__(self, etypes: Sequence[int], ops: Sequence[Sequence[tuple[int, int, int, int]]], objs: list[Any],
                 flags: bytes, fd_regs: bytes, block_type: int) -> None:
        self.flags = bytes(flags)
        self._etypes = list(etypes)
        self._ops = [tuple(o) for o in ops]
        self._objs = objs
        self._fd_regs = bytes(fd_regs)
        self._block_type = block_type

    def run(self, buf: bytes, off: int, entered: dict[int, int], enter_fd: dict[int, int],
            pending: dict[int, tuple[int, bytes, bytes]],
            tuple_of: Callable[[int, int], bytes],
            apply: Callable[[bytes, int], None]) -> tuple[int, int, int, int, bytes]:
        """The blocks of the records of ``buf`` from ``off`` on, as long as each has a recipe (and,
        for an exit, a whole next record that is not its thread info); keeps the exporter's
        ``entered`` and ``enter_fd`` and the state's ``pending`` as the exporter would; a socket tuple is
        ``tuple_of(pid, fd)`` (fd -1: the event has none); an event that changes the state is
        ``apply(buf, offset)``'d before its parameters are made. Returns
        (offset after them, events, first ts, last ts, their blocks)."""
        n = len(buf)
        flags, etypes, all_ops, objs, fd_regs = self.flags, self._etypes, self._ops, self._objs, self._fd_regs
        nevt = len(flags)
        out: list[bytes] = []
        count = first = last = 0
        while off + R.REC_FIXED <= n:
            (ts, tid, pid, evt, cpu, length, ret, a0, a1, a2, a3, a4, a5, l0, l1,
             rflags) = _FIXED.unpack_from(buf, off)
            if length < R.REC_FIXED or off + length > n or evt >= nevt:
                break
            f = flags[evt]
            if not f & F_FAST or rflags & _SKIP or R.REC_FIXED + l0 + l1 > length:
                break
            nxt = off + length
            if evt & 1:
                if nxt + R.REC_FIXED > n:
                    break  # the exporter holds the last exit for what may follow it
                _, ntid, _, nevt2, _, nlen = _HEAD.unpack_from(buf, nxt)
                if nlen < R.REC_FIXED or nxt + nlen > n or (nevt2 in _FOLLOWERS and ntid == tid):
                    break
                if f & F_NEEDS_ENTER and entered.get(tid, -1) != evt - 1:
                    break
                entered.pop(tid, None)
            args = (a0, a1, a2, a3, a4, a5)
            p = off + R.REC_FIXED
            segs = (bytes(buf[p:p + l0]), bytes(buf[p + l0:p + l0 + l1]))
            if not evt & 1:
                entered[tid] = evt
                reg = fd_regs[evt]
                enter_fd[tid] = -1 if reg == FD_NONE else _xform(ret, X_FDRET) if reg == FD_RET else _s32(args[reg])
                if l0 or l1:
                    pending[tid] = (evt, segs[0], segs[1])
            if f & F_APPLY:
                apply(buf, off)
            params: list[bytes] = []
            for code, a, b, width in all_ops[evt]:
                if code == OP_INT:
                    v = _xform(ret if a == SRC_RET else args[a], b)
                    params.append((v & _MASKS[width]).to_bytes(width, "little"))
                elif code == OP_CONST:
                    params.append(objs[a])
                elif code == OP_SEGSTR:
                    params.append(segs[a].split(b"\0", 1)[0] + b"\0")
                elif code == OP_SEGBUF:
                    params.append(segs[a])
                elif code == OP_MEMO:
                    memo, fn = objs[b]
                    v = ret if a == SRC_RET else args[a]
                    enc = memo.get(v)
                    if enc is None:
                        enc = fn(v)
                        if len(memo) < MEMO_MAX:
                            memo[v] = enc
                    params.append(enc)
                elif code == OP_SEGCALL:
                    params.append(objs[b](segs[a]))
                elif code == OP_ENTERFD:
                    params.append((enter_fd.get(tid, -1) & _MASKS[width]).to_bytes(width, "little"))
                else:  # OP_TUPLE
                    reg = fd_regs[evt]
                    fd = -1 if reg == FD_NONE else _xform(ret, X_FDRET) if reg == FD_RET else _s32(args[reg])
                    params.append(tuple_of(pid, fd if fd >= 0 else -1))
            np_ = len(params)
            size = sum(len(x) for x in params)
            body = 2 + _EV_FIXED + 2 * np_ + size  # cpu, then what the event's length counts
            total = 8 + body + (-body & 3) + 4
            out.append(_EV.pack(self._block_type, total, cpu, ts, tid, _EV_FIXED + 2 * np_ + size, etypes[evt], np_))
            out.append(struct.pack(f"<{np_}H", *(len(x) for x in params)))
            out.extend(params)
            out.append(_PAD[body & 3])
            out.append(total.to_bytes(4, "little"))
            if not count:
                first = ts
            last = ts
            count += 1
            off = nxt
        return off, count, first, last, b"".join(out)


__all__ = ["Plan"]
