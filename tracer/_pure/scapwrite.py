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
F_FAST, F_NEEDS_ENTER, F_APPLY, F_PEEK, F_HIDE = 1, 2, 4, 8, 16
OP_INT, OP_CONST, OP_SEGSTR, OP_SEGBUF, OP_MEMO, OP_SEGCALL, OP_ENTERFD, OP_TUPLE = range(1, 9)
OP_PEEK = 16
O_CREAT_WRONLY_TRUNC = 0o1101
O_CLOEXEC = 0o2000000
X_NONE, X_S32, X_U32, X_MAX0, X_FDRET = range(5)
SRC_RET = 6
MEMO_MAX = 4096
_U16 = struct.Struct("<H")
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


class Enters:
    """Per thread, the syscall enter last written whose exit has not been (-1: none), and the fd
    of its last enter (-1: none): the exporter's bookkeeping, kept by its recipes and its own path
    alike."""

    def __init__(self) -> None:
        self._evt: dict[int, int] = {}
        self._fd: dict[int, int] = {}

    def entered(self, tid: int) -> int:
        """The enter last written for the thread and not exited, -1 if none."""
        return self._evt.get(tid, -1)

    def enter(self, tid: int, evt: int) -> None:
        """The thread's enter ``evt`` is written."""
        self._evt[tid] = evt

    def exit(self, tid: int) -> int:
        """The thread's exit is written: the enter it had (-1: none), forgotten."""
        return self._evt.pop(tid, -1)

    def enter_fd(self, tid: int) -> int:
        """The fd of the thread's last enter, -1 if none."""
        return self._fd.get(tid, -1)

    def set_enter_fd(self, tid: int, fd: int) -> None:
        self._fd[tid] = fd


class Plan:
    """Per event id (syscalls, enter and exit), its PPM event type and the operations making its
    parameters; ``flags`` per event id: 1 written by recipe, 2 an exit whose enter must be the
    thread's last one written (else its missing enter is written first, by the exporter), 4 it
    changes the state, 8 an enter whose parameters are partly its exit's, 16 a hidden one of an
    unknown thread is only noted; ``fast`` per event id: the scanner's fast-path code of the fd
    change the run applies itself (0: ``apply`` does)."""

    def __init__(self, etypes: Sequence[int], ops: Sequence[Sequence[tuple[int, int, int, int]]], objs: list[Any],
                 flags: bytes, fd_regs: bytes, fast: bytes, block_type: int) -> None:
        nevt = len(flags)
        if len(etypes) != nevt or len(ops) != nevt or len(fd_regs) < nevt or len(fast) < nevt:
            raise ValueError("etypes, ops, flags, fd_regs and fast must cover the same event ids")
        for o in ops:
            for code, a, b, _width in o:
                if code == OP_CONST and not isinstance(objs[a], bytes):
                    raise ValueError("a constant must be bytes")
                if code == OP_MEMO and not (isinstance(objs[b], tuple) and len(objs[b]) == 2):
                    raise ValueError("a memo must be (dict, function)")
        self.flags = bytes(flags)
        self._etypes = list(etypes)
        self._ops = [tuple(o) for o in ops]
        self._objs = objs
        self._fd_regs = bytes(fd_regs)
        self._fast = bytes(fast)
        self._block_type = block_type

    def run(self, buf: bytes, off: int, enters: Enters, state: Any,
            tuples: dict[int, bytes], tuple_of: Callable[[int, int], bytes],
            apply: Callable[[bytes, int], None]) -> tuple[int, int, int, int, bytes]:
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
        n = len(buf)
        flags, etypes, all_ops, objs, fd_regs, fast = (self.flags, self._etypes, self._ops, self._objs,
                                                       self._fd_regs, self._fast)
        nevt = len(flags)
        pending, threads = state._pending, state.threads
        opens: dict[int, int] = {}  # (pid << 32 | fd) -> offset of an open not applied yet
        out: list[bytes] = []
        count = first = last = 0
        peek: tuple[Any, ...] = ()
        while off + R.REC_FIXED <= n:
            (ts, tid, pid, evt, cpu, length, ret, a0, a1, a2, a3, a4, a5, l0, l1,
             rflags) = _FIXED.unpack_from(buf, off)
            if length < R.REC_FIXED or off + length > n or evt >= nevt:
                break
            f = flags[evt]
            if rflags & R.RF_PPM or R.REC_FIXED + l0 + l1 > length:
                break
            nxt = off + length
            p = off + R.REC_FIXED
            if rflags & R.RF_HIDDEN:
                # The exporter writes nothing for it, the state only notes its payload.
                if not f & F_HIDE or tid in threads:
                    break
                if l0 or l1:
                    pending[tid] = (evt, bytes(buf[p:p + l0]), bytes(buf[p + l0:p + l0 + l1]))
                off = nxt
                continue
            if not f & F_FAST:
                break
            if evt & 1:
                if nxt + R.REC_FIXED > n:
                    break  # the exporter holds the last exit for what may follow it
                _, ntid, _, nevt2, _, nlen = _HEAD.unpack_from(buf, nxt)
                if nlen < R.REC_FIXED or nxt + nlen > n or (nevt2 in _FOLLOWERS and ntid == tid):
                    break
                if f & F_NEEDS_ENTER and enters.entered(tid) != evt - 1:
                    break
                enters.exit(tid)
            elif f & F_PEEK:
                # Its exit, the thread's next record, must be here (else the exporter waits for
                # it, or writes the enter without it).
                peek = _exit_after(buf, nxt, tid, evt + 1)
                if not peek:
                    break
            args = (a0, a1, a2, a3, a4, a5)
            segs = (bytes(buf[p:p + l0]), bytes(buf[p + l0:p + l0 + l1]))
            if not evt & 1:
                enters.enter(tid, evt)
                reg = fd_regs[evt]
                enters.set_enter_fd(tid, -1 if reg == FD_NONE else _xform(ret, X_FDRET) if reg == FD_RET
                                    else _s32(args[reg]))
                if l0 or l1:
                    pending[tid] = (evt, segs[0], segs[1])
            if f & F_APPLY:
                if fast[evt]:
                    _apply_fd(state, opens, tuples, buf, off, fast)
                else:
                    _flush(state, opens, buf, fast)
                    apply(buf, off)
            params: list[bytes] = []
            for code, a, b, width in all_ops[evt]:
                rargs, rret, rsegs = (peek[0], peek[1], peek[2]) if code & OP_PEEK else (args, ret, segs)
                code &= ~OP_PEEK
                if code == OP_INT:
                    v = _xform(rret if a == SRC_RET else rargs[a], b)
                    params.append((v & _MASKS[width]).to_bytes(width, "little"))
                elif code == OP_CONST:
                    params.append(objs[a])
                elif code == OP_SEGSTR:
                    params.append(rsegs[a].split(b"\0", 1)[0] + b"\0")
                elif code == OP_SEGBUF:
                    params.append(rsegs[a])
                elif code == OP_MEMO:
                    memo, fn = objs[b]
                    v = rret if a == SRC_RET else rargs[a]
                    enc = memo.get(v)
                    if enc is None:
                        enc = fn(v)
                        if len(memo) < MEMO_MAX:
                            memo[v] = enc
                    params.append(enc)
                elif code == OP_SEGCALL:
                    params.append(objs[b](rsegs[a]))
                elif code == OP_ENTERFD:
                    params.append((enters.enter_fd(tid) & _MASKS[width]).to_bytes(width, "little"))
                else:  # OP_TUPLE
                    reg = fd_regs[evt]
                    fd = -1 if reg == FD_NONE else _xform(ret, X_FDRET) if reg == FD_RET else _s32(args[reg])
                    if fd < 0:
                        params.append(tuple_of(pid, -1))
                        continue
                    key = pid << 32 | fd
                    if key in opens:
                        _flush(state, opens, buf, fast)
                    enc = tuples.get(key)
                    if enc is None:
                        enc = tuples[key] = tuple_of(pid, fd)
                    params.append(enc)
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
        _flush(state, opens, buf, fast)
        return off, count, first, last, b"".join(out)


def _exit_after(buf: bytes, off: int, tid: int, evt: int) -> tuple[Any, ...]:
    """(registers, result, segments) of the record at or after ``off`` that is ``tid``'s next, if
    it is whole and an ``evt``; () if not."""
    n = len(buf)
    while off + R.REC_FIXED <= n:
        (_, rtid, _, revt, _, length, ret, a0, a1, a2, a3, a4, a5, l0, l1, _) = _FIXED.unpack_from(buf, off)
        if length < R.REC_FIXED or off + length > n:
            return ()
        if rtid == tid:
            if revt != evt or R.REC_FIXED + l0 + l1 > length:
                return ()
            p = off + R.REC_FIXED
            return (a0, a1, a2, a3, a4, a5), ret, (bytes(buf[p:p + l0]), bytes(buf[p + l0:p + l0 + l1]))
        off += length
    return ()


def _apply_fd(state: Any, opens: dict[int, int], tuples: dict[int, bytes], buf: bytes, off: int,
              fast: bytes) -> None:
    """The state change of a close, an open or a dup exit (the scanner's fast-path codes)."""
    (_, _, pid, evt, _, _, ret, a0, _, a2, _, _, _, l0, _, _) = _FIXED.unpack_from(buf, off)
    code = fast[evt]
    if code == R.FAST_CLOSE:
        if ret != 0:
            return
        fd = _s32(a0)
        key = pid << 32 | (fd & 0xFFFFFFFF)
        tuples.pop(key, None)
        if opens.pop(key, None) is not None:
            # An open nobody looked at: never mind it, but for the table it made (and the fd it
            # replaced, which goes too).
            state.fds.setdefault(pid, {})
        table = state.fds.get(pid)
        if table:
            table.pop(fd, None)
        return
    if code >= R.FAST_DUP:
        if ret < 0:
            return  # a failed dup changes nothing
        tuples.pop(pid << 32 | (ret & 0xFFFFFFFF), None)
        _flush(state, opens, buf, fast)  # it reads its source fd
        state.dup_raw(pid, _s32(a0), ret, code == R.FAST_DUP3 and bool(a2 & O_CLOEXEC))
        return
    if ret < 0 or ret > 0x7FFFFFFF:
        return  # a failed open changes nothing
    key = pid << 32 | ret
    tuples.pop(key, None)
    if l0 and buf[off + R.REC_FIXED] == 0x2F:  # an absolute path: nothing else is read
        if key in opens:
            _flush(state, opens, buf, fast)
        opens[key] = off
        return
    _flush(state, opens, buf, fast)  # a relative path may name a pending open's directory
    _open_now(state, buf, off, code)


def _open_now(state: Any, buf: bytes, off: int, code: int) -> None:
    (_, tid, pid, _, _, _, ret, a0, a1, a2, _, _, _, l0, l1, _) = _FIXED.unpack_from(buf, off)
    p = off + R.REC_FIXED
    if code == R.FAST_OPEN_A1:
        flags = a1
    elif code == R.FAST_OPEN_A2:
        flags = a2
    elif code == R.FAST_OPEN_SEG1:
        flags = int.from_bytes(buf[p + l0:p + l0 + min(l1, 8)] or b"\0", "little")
    else:
        flags = O_CREAT_WRONLY_TRUNC
    dirfd = _s32(a0) if code in (R.FAST_OPEN_A2, R.FAST_OPEN_SEG1) else None
    state.open_raw(pid, tid, ret, bytes(buf[p:p + l0]), flags, dirfd)


def _flush(state: Any, opens: dict[int, int], buf: bytes, fast: bytes) -> None:
    """Apply the opens kept back, in stream order."""
    if not opens:
        return
    offsets = list(opens.values())
    opens.clear()
    for o in offsets:
        evt = _U16.unpack_from(buf, o + R.OFF_EVT)[0]
        _open_now(state, buf, o, fast[evt])


__all__ = ["Enters", "Plan"]
