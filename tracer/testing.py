"""The test kit: events, state and captures made without a kernel, for ktrace's own tests and for
anyone writing a chisel (the way click ships ``click.testing``).

Two builders, two levels of detail:

- :class:`Synth` writes records exactly as the probe lays them out, one syscall at a time: the
  argument registers filled the way the event table reads them, the payload segments on the side
  (enter or exit) its capture specs say, cut to the probe's limits. ``lines`` and ``run`` put them
  through the real pipeline::

    s = Synth(pid=100)                       # thread 100 of process 100
    s.open("/etc/passwd", 3, flags=os.O_RDONLY | os.O_CLOEXEC).read(3, b"root:x:0:0")
    child = s.clone(101).on(101)             # the child's own records
    child.execve("/bin/cat", ["cat", "/etc/hosts"]).procexit()
    batch = s.batch()                        # everything made since the last batch()

    state = state_from(tables(threads=[thread_row(100, comm="curl", cwd="/root")]))
    for line in lines(batch, state=state):   # what `ktrace -r` would print
        print(line)

  ``write_capture`` turns batches and tables into a .kcap that ``ktrace -r`` reads;
  ``SyntheticSource`` hands batches out with the live source's interface.

- :class:`CaptureBuilder` writes a whole scenario as a capture: the tables a live run starts with
  (threads, fds, users, containers), then calls in time order, with the internal records a live
  run adds (thread info after an exec, socket tuples after a connect, CPU rounds). A chisel is
  then tested through the real command with :func:`run_cli`::

    b = CaptureBuilder()
    b.thread(600, comm="bash", uid=1000)
    b.at(1).write(600, 600, 1, b"hello\n")
    path = b.save(tmp_path / "s.kcap")
    result = run_cli("-r", path, "-c", "mychisel", "--chisel-dir", str(my_dir))
    assert result.code == 0 and "hello" in result.out

Timestamps start at :data:`T0` unless told otherwise.
"""

from __future__ import annotations

import errno
import os
import posixpath
import random
import socket as _socket
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack

from .event import Event, RenderOptions
from .schema import record as R
from .schema import tracepoints as TP
from .schema.events import SCHEMA_VERSION, SYSCALL_NR, SYSCALLS, Capture, EventInfo
from .schema.types import CK
from .state.state import State
from .state.tables import Fd, Group, Thread, User

T0: Final = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC: the default first timestamp
STEP: Final = 1_000  # ns between consecutive records
PATHMAX: Final = 1024  # the probe's KT_PATHMAX: strings keep at most PATHMAX - 1 bytes
SOCKADDR_MAX: Final = 128  # sockaddr and raw segments
ARGV_MAX: Final = 16  # argv strings the probe reads
COMM_LEN: Final = 16
AT_FDCWD: Final = -100

# Default clone flags: glibc's fork() and pthread_create().
CLONE_FORK: Final = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
CLONE_PTHREAD: Final = 0x003D0F00  # VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID

_PTR_BASE: Final = 0x7FFC_0000_0000
_ZERO_ARGS: Final = (0, 0, 0, 0, 0, 0)

Addr = tuple[str, int] | str | bytes
"""A socket address: ``(ip, port)`` (IPv4 or IPv6), a unix path, ``"@name"`` (abstract), or raw bytes."""


def sockaddr(addr: Addr) -> bytes:
    """The ``struct sockaddr`` bytes the kernel ABI uses for ``addr`` (see :data:`Addr`)."""
    if isinstance(addr, bytes):
        return addr
    if isinstance(addr, str):
        if addr.startswith("@"):  # abstract: a NUL, the name, no terminator
            return struct.pack("<H", _socket.AF_UNIX) + b"\0" + addr[1:].encode()
        return struct.pack("<H", _socket.AF_UNIX) + addr.encode() + b"\0"
    ip, port = addr
    try:
        raw = _socket.inet_pton(_socket.AF_INET, ip)
    except OSError:
        raw6 = _socket.inet_pton(_socket.AF_INET6, ip)
        return struct.pack("<H", _socket.AF_INET6) + struct.pack(">HI", port, 0) + raw6 + b"\0\0\0\0"
    return struct.pack("<H", _socket.AF_INET) + struct.pack(">H", port) + raw + b"\0" * 8


def split(batch: bytes) -> list[bytes]:
    """The records of a batch, one bytes object each (trusts the length fields)."""
    out = []
    off = 0
    while off < len(batch):
        n = int.from_bytes(batch[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
        if n < R.REC_FIXED:
            raise ValueError(f"bad record length {n} at byte {off}")
        out.append(batch[off:off + n])
        off += n
    return out


def _info(name: str) -> EventInfo:
    nr = SYSCALL_NR.get(name)
    info = SYSCALLS[nr] if nr is not None else None
    if info is None:
        raise ValueError(f"no syscall named {name!r}")
    return info


class _Stream:
    """What the views of one Synth share: the records, the clock and the probe's limits."""

    def __init__(self, ts: int, step: int, snaplen: int) -> None:
        self.ts = ts
        self.step = step
        self.snaplen = snaplen
        self.pending: list[bytes] = []
        self.count = 0
        self.nptr = 0

    def ptr(self) -> int:
        self.nptr += 1
        return _PTR_BASE + 0x100 * self.nptr


class Synth:
    """Builds records one syscall at a time, as the probe would for thread ``tid`` of ``pid``.

    Every method appends its records and returns ``self``, so calls chain. ``on(tid)`` gives a view
    that writes for another thread into the same stream (same clock, same batch). Timestamps start
    at ``start_ts`` and grow by ``step`` per record; ``snaplen`` is ``-s``.
    """

    def __init__(self, start_ts: int = T0, pid: int = 1000, tid: int | None = None, *, cpu: int = 0,
                 step: int = STEP, snaplen: int = 80, _stream: _Stream | None = None) -> None:
        self._s = _stream if _stream is not None else _Stream(start_ts, step, snaplen)
        self.pid = pid
        self.tid = pid if tid is None else tid
        self.cpu = cpu

    # --- the stream ---------------------------------------------------------------------------
    def on(self, tid: int, pid: int | None = None, *, cpu: int | None = None) -> Synth:
        """A view for thread ``tid`` (of process ``pid``, default ``tid``) on the same stream."""
        return Synth(pid=tid if pid is None else pid, tid=tid, cpu=self.cpu if cpu is None else cpu,
                     _stream=self._s)

    @property
    def ts(self) -> int:
        """The timestamp the next record gets."""
        return self._s.ts

    @property
    def count(self) -> int:
        """Records made so far by every view of this stream: the evt.num of the last one."""
        return self._s.count

    def sleep(self, ns: int) -> Synth:
        """Advance the clock by ``ns`` before the next record."""
        self._s.ts += ns
        return self

    def batch(self) -> bytes:
        """The records made since the last ``batch()`` (by every view), concatenated."""
        out = b"".join(self._s.pending)
        self._s.pending.clear()
        return out

    def record(self, evt: int, *, ret: int = 0, args: Sequence[int] = _ZERO_ARGS, seg0: bytes = b"",
               seg1: bytes = b"", flags: int = 0, ts: int | None = None) -> Synth:
        """Append one record as given, with this view's thread and the stream's clock."""
        s = self._s
        rec_ts = s.ts if ts is None else ts
        s.pending.append(R.pack_record(rec_ts, self.tid, self.pid, evt, self.cpu, ret, tuple(args), seg0, seg1,
                                       flags))
        s.count += 1
        s.ts = max(s.ts, rec_ts) + s.step
        return self

    # --- any syscall --------------------------------------------------------------------------
    def syscall(self, name: str, args: Sequence[int | None] | Mapping[str, int] = (), ret: int = 0,
                seg0: bytes = b"", seg1: bytes = b"", *, enter: bool = True, exit: bool = True) -> Synth:
        """The enter and exit records of syscall ``name``, laid out as the probe writes them.

        ``args`` are the six argument registers, by position or by name (a parameter name of the
        event table, or ``a0``..``a5``); a register left out or None holds a fresh fake user
        pointer when a capture reads memory there, the segment's length when a capture takes its
        length from it, and 0 otherwise. ``seg0``/``seg1`` are the user memory the captures read
        (a path, the data, a sockaddr...): each goes on the side its capture spec names, cut to
        the probe's limits (snaplen for data, with the RF_TRUNC flag). Both records carry the
        registers (x86_64 keeps them across the call); the enter's return value is 0.
        ``enter``/``exit`` False leave that record out (a call still blocked, a lost event).
        """
        info = _info(name)
        regs = self._regs(info, args)
        data = {0: seg0, 1: seg1}
        msg = any(c.kind in (CK.MSG, CK.MMSG) for c in info.captures)  # fills segments 0 and 1
        for seg, value in data.items():
            if value and not any(c.seg == seg for c in info.captures) and not (seg == 1 and msg):
                raise ValueError(f"{name} captures no segment {seg}")
        for c in info.captures:
            if regs[c.arg] is None:
                regs[c.arg] = self._s.ptr()
            if c.length.startswith("*a") and regs[int(c.length[2:])] is None:
                regs[int(c.length[2:])] = self._s.ptr()
            elif c.length.startswith("a") and regs[int(c.length[1:])] is None:
                regs[int(c.length[1:])] = len(data[c.seg])
        final = tuple(r or 0 for r in regs)
        nr = SYSCALL_NR[name]
        if enter:
            segs, flags = self._segments(info.captures, False, final, 0, data)
            self.record(R.syscall_evt(nr, R.DIR_ENTER), ret=0, args=final, seg0=segs[0], seg1=segs[1], flags=flags)
        if exit:
            segs, flags = self._segments(info.captures, True, final, ret, data)
            self.record(R.syscall_evt(nr, R.DIR_EXIT), ret=ret, args=final, seg0=segs[0], seg1=segs[1], flags=flags)
        return self

    @staticmethod
    def _regs(info: EventInfo, args: Sequence[int | None] | Mapping[str, int]) -> list[int | None]:
        regs: list[int | None] = [None] * 6
        if isinstance(args, Mapping):
            by_name = {p.name: int(p.src[1]) for p in (*info.enter, *info.exit)
                       if len(p.src) == 2 and p.src[0] == "a"}
            for key, value in args.items():
                if len(key) == 2 and key[0] == "a" and key[1] in "012345":
                    regs[int(key[1])] = value
                elif key in by_name:
                    regs[by_name[key]] = value
                else:
                    raise ValueError(f"{info.name} has no register parameter {key!r}")
        else:
            if len(args) > 6:
                raise ValueError("at most six argument registers")
            regs[:len(args)] = list(args)
        return regs

    def _segments(self, caps: Iterable[Capture], at_exit: bool, regs: tuple[int, ...], ret: int,
                  data: dict[int, bytes]) -> tuple[list[bytes], int]:
        out = [b"", b""]
        flags = 0
        snap = self._s.snaplen
        for c in caps:
            if c.at_exit != at_exit:
                continue
            raw = data[c.seg]
            trunc = R.RF_TRUNC1 if c.seg else R.RF_TRUNC0
            want = _want(c, regs, ret, raw)
            kind = c.kind
            if kind is CK.STR:
                out[c.seg] = raw.split(b"\0")[0][:PATHMAX - 1]
            elif kind in (CK.BUF, CK.IOV):
                keep = min(want, snap)
                flags |= trunc if want > snap else 0
                out[c.seg] = raw[:keep]
            elif kind in (CK.SOCKADDR, CK.SOCKADDR_PLEN, CK.RAW):
                flags |= trunc if want > SOCKADDR_MAX else 0
                out[c.seg] = raw[:min(want, SOCKADDR_MAX)]
            elif kind is CK.ARGV:
                out[c.seg] = _argv_segment(raw)
            elif kind is CK.COMM:
                out[c.seg] = raw[:COMM_LEN - 1].ljust(COMM_LEN, b"\0")
            elif kind in (CK.MSG, CK.MMSG):
                # The msghdr's name into this segment, its data (seg1 given) into the next.
                name, body = raw, data[1]
                out[0] = name[:SOCKADDR_MAX]
                n = len(body) if kind is CK.MMSG else max(ret, 0)
                n = n if ret > 0 else 0
                flags |= R.RF_TRUNC1 if n > snap else 0
                out[1] = body[:min(n, snap)]
        return out, flags

    # --- files --------------------------------------------------------------------------------
    def open(self, path: str | bytes, fd: int, flags: int = os.O_RDONLY, mode: int = 0, *,
             dirfd: int | None = None) -> Synth:
        """open(path, flags, mode) = fd; with ``dirfd`` (AT_FDCWD included), openat. A negative
        ``fd`` is the error: ``open(p, -errno.ENOENT)``."""
        p = _b(path)
        if dirfd is None:
            return self.syscall("open", (None, flags, mode), ret=fd, seg0=p)
        return self.syscall("openat", (dirfd, None, flags, mode), ret=fd, seg0=p)

    def read(self, fd: int, data: bytes, *, size: int | None = None, ret: int | None = None) -> Synth:
        """read(fd, buf, size) that returned ``data`` (ret = its length unless given)."""
        n = len(data) if ret is None else ret
        return self.syscall("read", (fd, None, len(data) if size is None else size), ret=n, seg0=data)

    def write(self, fd: int, data: bytes, *, ret: int | None = None) -> Synth:
        """write(fd, data, len(data)) = len(data) (or ``ret``)."""
        return self.syscall("write", (fd, None, len(data)), ret=len(data) if ret is None else ret, seg0=data)

    def close(self, fd: int, *, ret: int = 0) -> Synth:
        return self.syscall("close", (fd,), ret=ret)

    def dup(self, fd: int, newfd: int) -> Synth:
        return self.syscall("dup", (fd,), ret=newfd)

    def dup2(self, fd: int, newfd: int, *, ret: int | None = None) -> Synth:
        return self.syscall("dup2", (fd, newfd), ret=newfd if ret is None else ret)

    def dup3(self, fd: int, newfd: int, flags: int = 0, *, ret: int | None = None) -> Synth:
        return self.syscall("dup3", (fd, newfd, flags), ret=newfd if ret is None else ret)

    def fcntl(self, fd: int, cmd: int, arg: int = 0, *, ret: int = 0) -> Synth:
        """fcntl(fd, cmd, arg) = ret; F_DUPFD's ret is the new fd."""
        return self.syscall("fcntl", (fd, cmd, arg), ret=ret)

    def pipe(self, rfd: int, wfd: int, flags: int | None = None, *, ret: int = 0) -> Synth:
        """pipe(fds) (pipe2 with ``flags``) that wrote ``[rfd, wfd]``."""
        fds = struct.pack("<ii", rfd, wfd)
        if flags is None:
            return self.syscall("pipe", (), ret=ret, seg0=fds)
        return self.syscall("pipe2", (None, flags), ret=ret, seg0=fds)

    def chdir(self, path: str | bytes, *, ret: int = 0) -> Synth:
        return self.syscall("chdir", (), ret=ret, seg0=_b(path))

    def fchdir(self, fd: int, *, ret: int = 0) -> Synth:
        return self.syscall("fchdir", (fd,), ret=ret)

    def setuid(self, uid: int, *, ret: int = 0) -> Synth:
        return self.syscall("setuid", (uid,), ret=ret)

    # --- sockets ------------------------------------------------------------------------------
    def socket(self, fd: int, domain: int = _socket.AF_INET, type: int = _socket.SOCK_STREAM,
               proto: int = 0) -> Synth:
        """socket(domain, type, proto) = fd."""
        return self.syscall("socket", (domain, type, proto), ret=fd)

    def socketpair(self, fd1: int, fd2: int, domain: int = _socket.AF_UNIX, type: int = _socket.SOCK_STREAM,
                   *, ret: int = 0) -> Synth:
        return self.syscall("socketpair", (domain, type, 0), ret=ret, seg0=struct.pack("<ii", fd1, fd2))

    def bind(self, fd: int, addr: Addr, *, ret: int = 0) -> Synth:
        return self.syscall("bind", (fd,), ret=ret, seg0=sockaddr(addr))

    def listen(self, fd: int, backlog: int = 128, *, ret: int = 0) -> Synth:
        return self.syscall("listen", (fd, backlog), ret=ret)

    def connect(self, fd: int, addr: Addr, *, ret: int = 0) -> Synth:
        """connect(fd, addr) = ret (0, or e.g. -EINPROGRESS for a non-blocking socket)."""
        return self.syscall("connect", (fd,), ret=ret, seg0=sockaddr(addr))

    def connected(self, fd: int, local: tuple[str, int], remote: tuple[str, int]) -> Synth:
        """The probe's EVT_CONNECTED: a client TCP connection on ``fd`` established, both ends as
        the kernel's sock:inet_sock_set_state gives them (IPv4, or IPv6 when ``local`` is)."""
        return self._ends(R.EVT_CONNECTED, fd, local, remote)

    def accepted(self, fd: int, local: tuple[str, int], remote: tuple[str, int]) -> Synth:
        """The probe's EVT_ACCEPTED: the accepted TCP connection on ``fd`` (``local`` is the
        server's end), as the probe gives it at the first send or receive on it."""
        return self._ends(R.EVT_ACCEPTED, fd, local, remote)

    def _ends(self, evt: int, fd: int, local: tuple[str, int], remote: tuple[str, int]) -> Synth:
        n = TP.ADDR_BYTES
        try:
            addrs = [_socket.inet_pton(_socket.AF_INET, local[0]), _socket.inet_pton(_socket.AF_INET, remote[0])]
            family = TP.AF_INET
        except OSError:
            addrs = [_socket.inet_pton(_socket.AF_INET6, local[0]), _socket.inet_pton(_socket.AF_INET6, remote[0])]
            family = TP.AF_INET6
        return self.record(evt, args=(fd, family, local[1], remote[1], 0, 0),
                           seg0=b"".join(a.ljust(n, b"\0") for a in addrs))

    def accept(self, lfd: int, newfd: int, peer: Addr, *, flags: int | None = None) -> Synth:
        """accept(lfd) = newfd from ``peer`` (accept4 with ``flags``); a negative newfd is the error."""
        raw = sockaddr(peer) if newfd >= 0 else b""
        if flags is None:
            return self.syscall("accept", (lfd,), ret=newfd, seg0=raw)
        return self.syscall("accept4", (lfd, None, None, flags), ret=newfd, seg0=raw)

    def sendto(self, fd: int, data: bytes, addr: Addr | None = None, *, ret: int | None = None) -> Synth:
        raw = sockaddr(addr) if addr is not None else b""
        args: list[int | None] = [fd, None, len(data), 0, None if raw else 0, None if raw else 0]
        return self.syscall("sendto", args, ret=len(data) if ret is None else ret, seg0=data, seg1=raw)

    def recvfrom(self, fd: int, data: bytes, addr: Addr | None = None, *, size: int | None = None) -> Synth:
        raw = sockaddr(addr) if addr is not None else b""
        args: list[int | None] = [fd, None, len(data) if size is None else size, 0]
        return self.syscall("recvfrom", args, ret=len(data), seg0=data, seg1=raw)

    # --- processes ----------------------------------------------------------------------------
    def clone(self, child: int, *, thread: bool = False, flags: int | None = None) -> Synth:
        """clone() = child in this thread, then the child's own return (0) in thread ``child``.

        ``thread`` makes it a thread of this process (pthread_create's flags), else a new process
        (fork's flags); ``flags`` overrides either. Returns this (the parent's) view.
        """
        fl = flags if flags is not None else (CLONE_PTHREAD if thread else CLONE_FORK)
        self.syscall("clone", (fl,), ret=child)
        child_pid = self.pid if fl & 0x10000 else child
        self.on(child, child_pid).syscall("clone", (fl,), ret=0, enter=False)
        return self

    def execve(self, path: str | bytes, argv: Sequence[str | bytes] | None = None, comm: str | bytes | None = None,
               *, ret: int = 0) -> Synth:
        """execve(path, argv) = ret; the exit carries the comm after the call (default: the
        path's basename, cut to 15 bytes like the kernel)."""
        p = _b(path)
        args = [p] if argv is None else [_b(a) for a in argv]
        name = _b(comm) if comm is not None else posixpath.basename(p)
        if ret != 0 and comm is None:
            raise ValueError("a failed execve keeps the old comm: pass comm=")
        regs = (self._s.ptr(), self._s.ptr(), self._s.ptr())  # path, argv, envp: the same on both sides
        self.syscall("execve", regs, seg0=p, seg1=b"".join(a + b"\0" for a in args), exit=False)
        return self.syscall("execve", regs, ret=ret, seg0=name, enter=False)

    def procexit(self) -> Synth:
        """The kernel's sched_process_exit for this thread."""
        return self.record(R.EVT_PROCEXIT)

    # --- internal records (what live mode learns from /proc and the runtime) -------------------
    def internal(self, evt: int, doc: Mapping[str, Any]) -> Synth:
        """An internal record: ``doc`` as msgpack in segment 0, like tracer.enrich.live."""
        return self.record(evt, seg0=msgpack.packb(dict(doc)))

    def threadinfo(self, **facts: Any) -> Synth:
        """THREADINFO: thread table fields (comm, cwd, uid, container_id...) for this thread."""
        return self.internal(R.EVT_THREADINFO, facts)

    def fdinfo(self, num: int, **fields: Any) -> Synth:
        """FDINFO: fd table fields (type, name, cip, cport, sip, sport, is_server...) for fd ``num``."""
        return self.internal(R.EVT_FDINFO, {"num": num, **fields})

    def procinfo(self, utime: int, stime: int = 0) -> Synth:
        """PROCINFO: the thread's CPU ticks (1/100 s) so far."""
        return self.internal(R.EVT_PROCINFO, {"u": utime, "s": stime})

    def container(self, cid: str, **meta: Any) -> Synth:
        """CONTAINER: metadata of container ``cid`` (name, image, labels...)."""
        return self.internal(R.EVT_CONTAINER, {"id": cid, **meta})


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode()


def _want(c: Capture, regs: tuple[int, ...], ret: int, raw: bytes) -> int:
    """Bytes the probe would try to copy, from the capture's length source."""
    if c.length == "ret":
        return max(ret, 0)
    if c.length.startswith("*a"):
        return len(raw)  # the int at the pointer: the caller's data says it
    if c.length.startswith("a"):
        return regs[int(c.length[1:])]
    if c.length:
        return int(c.length)
    return len(raw)


def _argv_segment(raw: bytes) -> bytes:
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    out = b""
    for a in parts[:ARGV_MAX]:
        if len(out) >= PATHMAX:
            break
        out += a[:PATHMAX - 1] + b"\0"
    return out


# --- tables ---------------------------------------------------------------------------------------
def thread_row(tid: int, pid: int | None = None, *, comm: str = "", **fields: Any) -> list[Any]:
    """A threads-table row (tracer.state.tables.Thread), e.g. ``thread_row(100, comm="curl", cwd="/")``.

    ``exe`` defaults to ``comm``; unnamed fields keep Thread's defaults.
    """
    t = Thread(tid, tid if pid is None else pid, comm=comm, exe=fields.pop("exe", comm))
    for k, v in fields.items():
        if k not in Thread.FIELDS:
            raise ValueError(f"no thread field {k!r}")
        setattr(t, k, v)
    return t.to_row()


def fd_row(num: int, type: str = "file", name: str = "", **fields: Any) -> list[Any]:
    """An fds-table row (tracer.state.tables.Fd), e.g. ``fd_row(3, "file", "/etc/passwd")``."""
    fd = Fd(num, type, name)
    for k, v in fields.items():
        if k not in Fd.FIELDS:
            raise ValueError(f"no fd field {k!r}")
        setattr(fd, k, v)
    return fd.to_row()


def user_row(uid: int, name: str, home: str = "", shell: str = "") -> list[Any]:
    return [uid, name, home, shell]


def group_row(gid: int, name: str) -> list[Any]:
    return [gid, name]


def tables(threads: Iterable[list[Any]] = (), fds: Mapping[int, Iterable[list[Any]]] | None = None,
           users: Iterable[list[Any]] = (), groups: Iterable[list[Any]] = (),
           containers: Iterable[Mapping[str, Any]] = ()) -> dict[str, list[Any]]:
    """State tables in the shape ``State.tables()`` gives and a capture's TABLE blocks hold."""
    return {
        "threads": [list(r) for r in threads],
        "fds": [[pid, [list(r) for r in rows]] for pid, rows in (fds or {}).items()],
        "users": [list(r) for r in users],
        "groups": [list(r) for r in groups],
        "containers": [dict(c) for c in containers],
    }


def state_from(tabs: Mapping[str, list[Any]] | None = None) -> State:
    """A State loaded from tables, as reading a capture's TABLE blocks does."""
    st = State()
    for kind, rows in (tabs or {}).items():
        st.load_table(kind, rows)
    return st


# --- running records through the pipeline ----------------------------------------------------------
def run(*batches: bytes, state: State | None = None, filter: str | None = None, show_internal: bool = False,
        latency: bool = False, on_event: Callable[[Event], None] | None = None) -> list[Event]:
    """Feed batches through a Pipeline (state first, then the filter); the events that pass.

    An Event reads the state when it is rendered, and the state moves on with later events: render
    inside ``on_event`` (or use ``lines``) for what would have been printed at that moment.
    """
    from .filter.compiler import compile_filter
    from .pipeline import Pipeline
    from .schema.fields import FIELDS

    st = state if state is not None else State()
    out: list[Event] = []

    def take(ev: Event) -> None:
        out.append(ev)
        if on_event is not None:
            on_event(ev)

    pred = compile_filter(filter, FIELDS) if filter else None
    p = Pipeline(st, predicate=pred, on_event=take, show_internal=show_internal, latency=latency)
    for b in batches:
        p.feed(b)
    return out


def lines(*batches: bytes, state: State | None = None, fmt: str | None = None, filter: str | None = None,
          json_out: bool = False, time_mode: str = "h", opts: RenderOptions | None = None,
          show_internal: bool = False) -> list[str]:
    """The lines ``ktrace -r`` would print for these batches (``fmt`` is -p, ``json_out`` -j, ...)."""
    from .output.format import Formatter

    f = Formatter(fmt, json_out=json_out, time_mode=time_mode, opts=opts)
    needs_latency = time_mode == "d" or "evt.latency" in f.fields
    out: list[str] = []
    run(*batches, state=state, filter=filter, show_internal=show_internal, latency=needs_latency,
        on_event=lambda ev: out.append(f.line(ev)))
    return out


# --- captures and the source interface -------------------------------------------------------------
def _span(batch: bytes) -> tuple[int, int, int]:
    recs = split(batch)
    if not recs:
        return 0, 0, 0
    return len(recs), int.from_bytes(recs[0][:8], "little"), int.from_bytes(recs[-1][:8], "little")


def write_capture(path: str | os.PathLike[str], *batches: bytes, tabs: Mapping[str, list[Any]] | None = None,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write a .kcap of ``batches`` (one EVENTS block each at least) headed by the tables ``tabs``."""
    from .capture import CaptureWriter

    m: dict[str, Any] = {"schema_version": list(SCHEMA_VERSION), "live": False, "command": ["synthetic"]}
    m.update(meta or {})
    with CaptureWriter(path, m) as w:
        for kind, rows in (tabs or {}).items():
            w.write_table(kind, rows)
        for b in batches:
            n, first, last = _span(b)
            if n:
                w.write_events(b, n, first, last)
    return Path(path)


_RANDOM_PATHS: Final = ("/etc/passwd", "/etc/app.conf", "/var/log/app.log", "/usr/lib/x.so", "/tmp/data", "rel/file")
_RANDOM_PEERS: Final = (("10.0.0.1", 80), ("10.0.0.2", 443), ("10.0.0.3", 22), ("10.0.0.4", 9999),
                        ("10.0.0.5", 6379))


def random_capture(path: str | os.PathLike[str], seed: int, steps: int = 1500) -> Path:
    """Processes opening, reading, writing and closing files and sockets (servers and clients),
    with failures, dups, execs and clones, over several tenths of a second; some records hidden."""
    rnd = random.Random(seed)
    s = Synth(pid=100)
    batches: list[bytes] = []
    pids = [100, 200, 300]
    for _ in range(steps):
        pid = rnd.choice(pids)
        v = s.on(pid, pid)
        fd = rnd.randrange(3, 9)
        op = rnd.random()
        if op < 0.12:
            p = rnd.choice(_RANDOM_PATHS)
            v.open(p, fd if rnd.random() < 0.85 else -errno.ENOENT, flags=rnd.choice((os.O_RDONLY, os.O_WRONLY)),
                   dirfd=-100 if rnd.random() < 0.5 else None)
        elif op < 0.2:
            v.close(fd)
        elif op < 0.28:
            v.socket(fd)
            v.connect(fd, rnd.choice(_RANDOM_PEERS), ret=0 if rnd.random() < 0.8 else -errno.ECONNREFUSED)
        elif op < 0.34:
            v.accept(3, fd if rnd.random() < 0.9 else -errno.EAGAIN, rnd.choice(_RANDOM_PEERS), flags=0)
        elif op < 0.6:
            v.read(fd, b"x" * rnd.randrange(1, 50), ret=rnd.choice((None, None, None, 0, -errno.EBADF)))
        elif op < 0.85:
            v.write(fd, b"y" * rnd.randrange(1, 50), ret=rnd.choice((None, None, None, 0, -errno.EPIPE)))
        elif op < 0.88:
            v.sendto(fd, b"z" * rnd.randrange(1, 20), rnd.choice(_RANDOM_PEERS))
        elif op < 0.9:
            v.dup2(fd, rnd.randrange(3, 9))
        elif op < 0.92:
            v.syscall("unlink", seg0=b"/tmp/data", ret=rnd.choice((0, -errno.ENOENT)))
        elif op < 0.93:
            v.execve("/bin/cat", comm="cat")
        elif op < 0.94:
            child = rnd.randrange(400, 10000)
            v.clone(child)
            pids.append(child)
        elif op < 0.95:
            v.syscall("kill", (1, 9), ret=0)
        else:
            s.sleep(rnd.randrange(1, 60_000_000))
        if rnd.random() < 0.05:
            batches.append(s.batch())
    batches.append(s.batch())
    hidden = []
    for b in batches:
        raw = bytearray(b)
        off = 0
        while off < len(raw):
            if rnd.random() < 0.03:
                flags = int.from_bytes(raw[off + R.OFF_FLAGS:off + R.OFF_FLAGS + 4], "little") | R.RF_HIDDEN
                raw[off + R.OFF_FLAGS:off + R.OFF_FLAGS + 4] = flags.to_bytes(4, "little")
            off += int.from_bytes(raw[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
        hidden.append(bytes(raw))
    return write_capture(path, *hidden)


STREAM_OPS = ("open", "openrel", "close", "read", "write", "socket", "connect", "pipe", "exec", "clone", "thread",
              "procexit", "chdir", "dup", "rename")


def build_stream(steps: Sequence[tuple[int, str, int, bool]], pid: int = 100) -> list[bytes]:
    """Batches of a stream made of ``(tid, op, fd, cut)`` steps: thread ``tid`` (of process ``pid``
    when ``pid + 1``, else its own) does ``op`` (one of STREAM_OPS) on ``fd``, and ``cut`` ends a
    batch there. Property tests draw the steps at random."""
    s = Synth(pid=pid)
    batches = []
    next_child = 400
    dead: set[int] = set()  # exec kills the other threads of the process: no events of theirs follow
    for tid, op, fd, cut in steps:
        if tid in dead:
            continue
        v = s.on(tid, pid if tid == pid + 1 else tid)
        if op == "open":
            v.open(f"/etc/f{fd}", fd)
        elif op == "openrel":
            v.open(f"r{fd}", fd, dirfd=-100)
        elif op == "close":
            v.close(fd)
        elif op == "read":
            v.read(fd, b"data")
        elif op == "write":
            v.write(fd, b"data")
        elif op == "socket":
            v.socket(fd)
        elif op == "connect":
            v.connect(fd, ("10.0.0.1", 80))
        elif op == "pipe":
            v.pipe(fd, fd + 1)
        elif op == "exec":
            path = b"/bin/cat" if fd % 2 else b"/usr/bin/app"
            # A thread's exec ends as the leader (the kernel's de_thread): the exit comes with the pid.
            v.syscall("execve", seg0=path, seg1=path + b"\0", exit=False)
            v.on(v.pid).syscall("execve", ret=0, seg0=path.rsplit(b"/", 1)[1], enter=False)
            if v.pid == pid:
                dead.add(pid + 1)
        elif op == "clone":
            v.clone(next_child)
            v.on(next_child).read(fd, b"child")
            next_child += 1
        elif op == "thread":
            v.threadinfo(comm="peer" if fd % 2 else "app")
        elif op == "procexit":
            v.procexit()
        elif op == "chdir":
            v.chdir("/tmp")
        elif op == "dup":
            v.dup2(fd, fd + 1)
        elif op == "rename":
            v.syscall("rename", seg0=b"a", seg1=b"b")
        if cut:
            batches.append(s.batch())
    batches.append(s.batch())
    return batches


class SyntheticSource:
    """Batches handed out with the live source's interface (``batches``, ``stop``, ``stats``, ``close``)."""

    live = False

    def __init__(self, batches: Iterable[bytes], tabs: Mapping[str, list[Any]] | None = None) -> None:
        self._batches = list(batches)
        self.tables = dict(tabs or {})
        self._stopped = False

    def batches(self, tick: float = 1.0) -> Iterator[bytes | None]:
        """Each batch in turn, then the end (never a timeout: nothing here waits)."""
        for b in self._batches:
            if self._stopped:
                return
            yield b

    def stop(self) -> None:
        self._stopped = True

    def stats(self) -> dict[str, int]:
        return {"events": sum(_span(b)[0] for b in self._batches), "drops_buffer": 0}

    def close(self) -> None:
        self._stopped = True


# --- whole scenarios as captures, and the command run on them ------------------------------------
MS: Final = 1_000_000  # ns in a millisecond: CaptureBuilder.at() counts in ms


@dataclass
class CaptureBuilder:
    """Builds a capture: tables first, then records in time order (``at`` moves the clock).

    Unlike :class:`Synth` it takes the registers and segments of each call from its arguments as
    given, and adds the internal records a live run would (THREADINFO after an exec, FDINFO after
    a connect, PROCINFO rounds), so the replay goes through the real state, filter and session.
    """

    now: int = T0
    threads: list[Thread] = field(default_factory=list)
    fds: dict[int, list[Fd]] = field(default_factory=dict)
    users: list[list[Any]] = field(default_factory=list)
    containers: list[dict[str, Any]] = field(default_factory=list)
    recs: list[bytes] = field(default_factory=list)

    # --- tables --------------------------------------------------------------------------------
    def thread(self, tid: int, pid: int | None = None, **kw: Any) -> Thread:
        """A thread of the bootstrap table; a host thread's ids in its namespace are its own."""
        pid = tid if pid is None else pid
        if kw.get("container_id", "host") == "host":
            kw.setdefault("vtid", tid)
            kw.setdefault("vpid", pid)
        t = Thread(tid, pid, **kw)
        self.threads.append(t)
        return t

    def fd(self, pid: int, fd: Fd) -> Fd:
        self.fds.setdefault(pid, []).append(fd)
        return fd

    def user(self, uid: int, name: str) -> None:
        self.users.append([uid, name, f"/home/{name}", "/bin/bash"])

    def container(self, cid: str, name: str, image: str, kind: str = "docker") -> None:
        self.containers.append({"id": cid, "full_id": cid + "0" * 52, "name": name, "image": image, "type": kind})

    # --- records -------------------------------------------------------------------------------
    def at(self, ms: float) -> CaptureBuilder:
        """Move the clock to ``ms`` milliseconds after T0."""
        self.now = T0 + int(ms * MS)
        return self

    def rec(self, tid: int, pid: int, evt: int, ret: int = 0, args: tuple[int, ...] = (), seg0: bytes = b"",
            seg1: bytes = b"", dt: int = 1000) -> None:
        self.now += dt
        full = tuple(args) + (0,) * (6 - len(args))
        self.recs.append(R.pack_record(self.now, tid, pid, evt, 0, ret, full, seg0, seg1))

    def call(self, name: str, tid: int, pid: int, ret: int = 0, args: tuple[int, ...] = (), seg0: bytes = b"",
             seg1: bytes = b"", enter0: bytes = b"", enter1: bytes = b"", latency: int = 1000) -> None:
        """An enter and its exit ``latency`` ns later."""
        nr = SYSCALL_NR[name]
        self.rec(tid, pid, R.syscall_evt(nr, R.DIR_ENTER), 0, args, enter0, enter1)
        self.rec(tid, pid, R.syscall_evt(nr, R.DIR_EXIT), ret, args, seg0, seg1, dt=latency)

    def read(self, tid: int, pid: int, fd: int, data: bytes, latency: int = 1000) -> None:
        self.call("read", tid, pid, len(data), (fd, 0, 65536), seg0=data, latency=latency)

    def write(self, tid: int, pid: int, fd: int, data: bytes, latency: int = 1000) -> None:
        self.call("write", tid, pid, len(data), (fd, 0, len(data)), seg0=data, latency=latency)

    def openat(self, tid: int, pid: int, fd: int, path: str, flags: int = 0) -> None:
        self.call("openat", tid, pid, fd, (AT_FDCWD, 0, flags, 0o644), seg0=path.encode())

    def clone(self, tid: int, pid: int, child: int) -> None:
        self.call("clone", tid, pid, child, (CLONE_FORK,))

    def execve(self, tid: int, pid: int, path: str, argv: list[str]) -> None:
        comm = os.path.basename(path)[:15].encode()
        self.call("execve", tid, pid, 0, (), seg0=comm, enter0=path.encode(),
                  enter1=b"".join(a.encode() + b"\0" for a in argv))
        # What live mode reads from /proc after an exec (a host process: its own ids).
        self.internal(R.EVT_THREADINFO, tid, pid, {"vtid": tid, "vpid": pid})

    def chdir(self, tid: int, pid: int, path: str) -> None:
        self.call("chdir", tid, pid, 0, (), seg0=path.encode())

    def connect(self, tid: int, pid: int, fd: int, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.call("socket", tid, pid, fd, (2, 1, 0))
        self.call("connect", tid, pid, 0, (fd, 0, 16), enter0=sockaddr(remote))
        # What live mode learns from the socket itself: the local end.
        self.internal(R.EVT_FDINFO, tid, pid, {
            "num": fd, "type": "ipv4", "l4proto": "tcp", "is_server": False, "cip": local[0], "cport": local[1],
            "sip": remote[0], "sport": remote[1], "name": f"{local[0]}:{local[1]}->{remote[0]}:{remote[1]}"})

    def procexit(self, tid: int, pid: int) -> None:
        self.rec(tid, pid, R.EVT_PROCEXIT)

    def internal(self, evt: int, tid: int, pid: int, doc: dict[str, Any], dt: int = 0) -> None:
        self.rec(tid, pid, evt, seg0=msgpack.packb(doc), dt=dt)

    def cpu_round(self, ms: float, ticks: dict[tuple[int, int], int]) -> None:
        """One PROCINFO round at ``ms``: (tid, pid) -> utime ticks. All samples share the time."""
        self.at(ms)
        for (tid, pid), u in ticks.items():
            self.internal(R.EVT_PROCINFO, tid, pid, {"u": u, "s": 0})

    # --- file ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the capture (one block per table and per event, as small as blocks go)."""
        from .capture import CaptureWriter

        path = os.fspath(path)
        with CaptureWriter(path, {"purpose": "chisel test"}, block_size=1) as w:
            w.write_table("threads", [t.to_row() for t in self.threads])
            w.write_table("fds", [[pid, [f.to_row() for f in fds]] for pid, fds in self.fds.items()])
            w.write_table("users", self.users)
            w.write_table("groups", [[0, "root"]])
            w.write_table("containers", self.containers)
            if self.recs:
                raw = b"".join(self.recs)
                first = int.from_bytes(self.recs[0][:8], "little")
                w.write_events(raw, len(self.recs), first, self.now)
        return path


@dataclass
class Result:
    """What a command run printed, and its exit code."""

    code: int
    out: str
    err: str


def run_cli(*args: str) -> Result:
    """Run ``ktrace ARGS`` in this process, capturing stdout and stderr (exit code included)."""
    import contextlib
    import io

    from .cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def ktrace_argv() -> list[str]:
    """The command that runs ``ktrace`` in a child process: the script next to this Python, else
    the one on PATH, else this Python running the CLI."""
    import shutil
    import sys

    exe = Path(sys.executable).parent / "ktrace"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ktrace")
    if found:
        return [found]
    return [sys.executable, "-c", "from tracer.cli import main; main()"]


def child_env() -> dict[str, str]:
    """The environment for a ktrace child: this tree first on PYTHONPATH, and the engine choice
    (KTRACE_PUREPYTHON) inherited."""
    root = str(Path(__file__).resolve().parents[1])
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(x for x in (root, e.get("PYTHONPATH", "")) if x)
    return e


__all__ = [
    "AT_FDCWD", "CLONE_FORK", "CLONE_PTHREAD", "MS", "STREAM_OPS", "T0", "Addr", "CaptureBuilder", "Fd", "Group",
    "Result", "Synth", "SyntheticSource", "Thread", "User", "build_stream", "child_env", "fd_row", "group_row",
    "ktrace_argv", "lines", "run", "run_cli", "sockaddr", "split", "state_from", "tables", "thread_row", "user_row",
    "write_capture",
]
