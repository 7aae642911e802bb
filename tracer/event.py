"""One event, decoded lazily from its record, with the state it happened in.

Only events that Python must see become Event objects: the scanner keeps the rest in C.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .schema import record as R
from .schema.events import FD_NONE, FD_REGS, FD_RET, SYSCALL_NR, EventInfo, Param, event_info, event_name
from .schema.flags import enum_name, errno_name, flag_names
from .schema.types import PT

if TYPE_CHECKING:
    from .state.state import State
    from .state.tables import Fd, Thread

_FIXED = struct.Struct(R.FIXED_FMT)
assert struct.calcsize(R.HEAD_FMT + "q") == R.OFF_RET + 8
_I32 = struct.Struct("<i")
_PAIR = struct.Struct("<ii")
AT_FDCWD = -100
_CHDIR_EXIT = R.syscall_evt(SYSCALL_NR["chdir"], R.DIR_EXIT)
# Internal events of a scap file (CPU samples, container records) make no thread of their own.
_NO_THREAD = frozenset({R.EVT_PROCINFO, R.EVT_CONTAINER})


@dataclass
class RenderOptions:
    """How buffers print: sysdig's -A / -X / -x / -b and -v (untruncated)."""

    mode: str = "normal"  # normal | ascii | hex_ascii | hex | base64
    verbose: bool = False
    max_buf: int = 80  # 0: no limit


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def s64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v & (1 << 63) else v



@dataclass(frozen=True)
class PpmRules:
    """libsinsp's rules for records read from a .scap file (flagged RF_PPM), which several fields
    must follow for such a file to print as sysdig prints it. ``tracer.capture.scap`` provides them
    (``register_ppm_rules``) when it is imported, as it is by every capture read."""

    read_annex: Callable[[bytes, int, int, int, int], tuple[int, list[bytes]] | None]
    ensure_thread: Callable[[State, int, int], Thread]
    fd_num: Callable[[Event], int | None]
    fd: Callable[[Event], Fd | None]
    info: Callable[[Event, RenderOptions], str]


_ppm_rules: PpmRules | None = None


def register_ppm_rules(rules: PpmRules) -> None:
    global _ppm_rules
    _ppm_rules = rules


def _ppm() -> PpmRules:
    if _ppm_rules is None:
        raise RuntimeError("a .scap record without tracer.capture.scap loaded")
    return _ppm_rules


class Event:
    """A decoded record. ``num`` is sysdig's evt.num (every record counts, hidden ones too)."""

    __slots__ = ("num", "ts", "tid", "pid", "evt", "cpu", "ret", "args", "seg0", "seg1", "flags",
                 "state", "thread", "latency", "_info", "_fd", "ppm")
    num: int
    ts: int
    tid: int
    pid: int
    evt: int
    cpu: int
    ret: int
    flags: int

    def __init__(self, buf: bytes, off: int, num: int, state: State) -> None:
        (self.ts, self.tid, self.pid, self.evt, self.cpu, length, self.ret, a0, a1, a2, a3, a4, a5, l0, l1,
         self.flags) = _FIXED.unpack_from(buf, off)
        self.args = (a0, a1, a2, a3, a4, a5)
        p = off + R.REC_FIXED
        self.seg0 = bytes(buf[p:p + l0]) if l0 else b""
        self.seg1 = bytes(buf[p + l0:p + l0 + l1]) if l1 else b""
        # A record read from a .scap file carries its PPM event: (type, parameter values).
        self.ppm: tuple[int, list[bytes]] | None = None
        if self.flags & R.RF_PPM:
            self.ppm = _ppm().read_annex(buf, off, l0, l1, length)
        self.num = num
        self.state = state
        self.thread: Thread | None = state.threads.get(self.tid)
        if self.thread is None and self.ppm is not None and self.evt not in _NO_THREAD:
            self.thread = _ppm().ensure_thread(state, self.tid, self.pid)  # like libsinsp: from its first event
        self.latency = 0  # exit events: ns since the matching enter (set by the state)
        self._info: EventInfo | None | bool = False
        self._fd: Fd | None | bool = False  # looked up once, after the state saw the event

    # --- identity ----------------------------------------------------------------------------
    @property
    def info(self) -> EventInfo | None:
        if self._info is False:
            self._info = event_info(self.evt)
        return self._info  # type: ignore[return-value]

    @property
    def type(self) -> str:
        return event_name(self.evt)

    @property
    def is_syscall(self) -> bool:
        return self.evt < R.EVT_BASE_OTHER

    @property
    def direction(self) -> int:
        return self.evt & 1 if self.evt < R.EVT_BASE_OTHER else R.DIR_ENTER

    @property
    def dir(self) -> str:
        return "<" if self.direction else ">"

    @property
    def hidden(self) -> bool:
        return bool(self.flags & R.RF_HIDDEN)


    @property
    def params(self) -> tuple[Param, ...]:
        info = self.info
        return info.params(self.direction) if info else ()

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    # --- values ------------------------------------------------------------------------------
    def raw(self, p: Param) -> Any:
        """The parameter's typed value: ints for numbers and fds, bytes for payload, str for state."""
        src = p.src
        if src == "ret":
            v: Any = self.ret
        elif src[0] == "a":
            v = self.args[int(src[1])]
        elif src == "s0":
            return self.seg0
        elif src == "s1":
            return self.seg1
        else:  # thread.<attr>
            t = self.thread
            return getattr(t, src[7:], None) if t else None
        t_ = p.type
        if t_ in (PT.FD, PT.DIRFD, PT.INT, PT.PID, PT.SIGNAL):
            return s32(v)
        if t_ in (PT.RES, PT.RESFD, PT.INT64):
            return s64(v)
        if t_ in (PT.UID, PT.GID):
            return v & 0xFFFFFFFF
        return v

    def fd_num(self) -> int | None:
        """The fd this event is about: its 'fd' argument, or the new fd it returned."""
        if self.ppm is not None:
            return _ppm().fd_num(self)
        if self.evt >= R.EVT_BASE_OTHER:
            return None
        reg = FD_REGS[self.evt]
        if reg == FD_NONE:
            return None
        if reg == FD_RET:
            return s64(self.ret) if s64(self.ret) < 0 else s32(self.ret)
        return s32(self.args[reg])

    @property
    def fd(self) -> Fd | None:
        if self._fd is False and self.ppm is not None:
            self._fd = _ppm().fd(self)
        if self._fd is False:
            n = self.fd_num()
            self._fd = None if n is None or n < 0 else self.state.fd(self.pid, n)
        return self._fd  # type: ignore[return-value]

    # --- rendering ---------------------------------------------------------------------------
    def arg_str(self, p: Param, opts: RenderOptions) -> str:
        return render_param(self, p, self.raw(p), opts)

    def info_str(self, opts: RenderOptions) -> str:
        """sysdig's evt.info: ``name=value`` for each parameter, each followed by a space."""
        if self.ppm is not None:
            return _ppm().info(self, opts)
        parts = []
        for p in self.params:
            text = self.arg_str(p, opts)
            if p.type is PT.FDPAIR or p.type is PT.OPENHOW:
                parts.append(text)  # renders several name=value items itself
            else:
                parts.append(f"{p.name}={text}")
        if self.evt in _INTERNAL_INFO:
            parts.append(_INTERNAL_INFO[self.evt](self))
        elif not parts and self.is_syscall and info_untyped(self.info):
            parts.append(_raw_args(self))
        return "".join(x + " " for x in parts if x)

    def io_bytes(self) -> int:
        """Bytes moved by a successful read/write-family exit, else 0."""
        info = self.info
        if info is None or not self.direction or self.ret <= 0:
            return 0
        if "io_read" in info.flags or "io_write" in info.flags:
            return s64(self.ret)
        return 0


def _fd_text(ev: Event, n: int) -> str:
    if n < 0:
        return str(n)
    fd = ev.state.fd(ev.pid, n)
    if fd is None:
        return str(n)
    return f"{n}({fd.tag}{fd.name})"


def render_buffer(data: bytes, opts: RenderOptions) -> str:
    if opts.mode == "hex_ascii" or opts.mode == "hex":
        return "\n" + hexdump(data, ascii_col=opts.mode == "hex_ascii")
    if opts.mode == "base64":
        import base64

        return base64.b64encode(data).decode()
    if opts.mode == "ascii":
        return "\n" + ascii_only(data)
    if not opts.verbose and opts.max_buf and len(data) > opts.max_buf:
        # sysdig's cut: max_buf characters in all, the last three of them "..."
        if opts.max_buf > 3:
            return data[: opts.max_buf - 3].translate(_DOTTED).decode("ascii") + "..."
        return data[: opts.max_buf].translate(_DOTTED).decode("ascii")
    return data.translate(_DOTTED).decode("ascii")


# A buffer's bytes as printed: printable ASCII as is, the rest as dots; -A keeps only the
# printable ones and line ends (sysdig 0.29 makes a CR, or a CR LF, one newline).
_DOTTED = bytes(b if 32 <= b < 127 else 0x2E for b in range(256))
_NOT_ASCII = bytes(b for b in range(256) if not (32 <= b < 127 or b == 10))


def ascii_only(data: bytes) -> str:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").translate(None, _NOT_ASCII).decode("ascii")


def hexdump(data: bytes, ascii_col: bool = True) -> str:
    """sysdig's -X (-x: without the text): 16 bytes a line, each line ended by a newline. Its text
    column starts two spaces after the hex's 39, and two columns further left on a last line of an
    odd count of bytes, as sysdig 0.29 prints it."""
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        words = " ".join(chunk[j:j + 2].hex() for j in range(0, len(chunk), 2))
        if ascii_col:
            width = 39 if len(chunk) % 2 == 0 else 37
            lines.append(f"\t0x{i:04x}: {words:<{width}}  " + chunk.translate(_DOTTED).decode("ascii") + "\n")
        else:
            lines.append(f"\t0x{i:04x}: {words}\n")
    return "".join(lines)


def plain_ip(ip: str) -> str:
    """An IPv4-mapped IPv6 address as plain IPv4 (how fd names show it); others unchanged."""
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def sockaddr_text(raw: bytes) -> str:
    """127.0.0.1:80, ::1:80 or a unix path, as sysdig prints socket addresses."""
    if len(raw) < 2:
        return ""
    family = int.from_bytes(raw[:2], "little")
    if family == 2 and len(raw) >= 8:
        port = int.from_bytes(raw[2:4], "big")
        return f"{ipaddress.IPv4Address(raw[4:8])}:{port}"
    if family == 10 and len(raw) >= 24:
        port = int.from_bytes(raw[2:4], "big")
        return f"{ipaddress.IPv6Address(raw[8:24]).compressed}:{port}"
    if family == 1:
        path = raw[2:]
        if path[:1] == b"\0":
            return "@" + path[1:].split(b"\0")[0].decode(errors="replace")
        return path.split(b"\0")[0].decode(errors="replace")
    return enum_name("socket_family", family) or f"family {family}"


def sockaddr_parts(raw: bytes) -> tuple[str, str, int] | None:
    """(family, ip or path, port) of a sockaddr, or None."""
    if len(raw) < 2:
        return None
    family = int.from_bytes(raw[:2], "little")
    if family == 2 and len(raw) >= 8:
        return "ipv4", str(ipaddress.IPv4Address(raw[4:8])), int.from_bytes(raw[2:4], "big")
    if family == 10 and len(raw) >= 24:
        return "ipv6", ipaddress.IPv6Address(raw[8:24]).compressed, int.from_bytes(raw[2:4], "big")
    if family == 1:
        return "unix", sockaddr_text(raw), 0
    return None


class RecordView:
    """What fields marked ``raw`` read of an event (its ids, return value, thread, fd and the
    state), filled straight from a record: table chisels count matching records through one
    reused view instead of decoding an Event per record."""

    __slots__ = ("tid", "pid", "evt", "ret", "thread", "fd", "state", "ppm", "_num")

    HEAD: ClassVar[struct.Struct] = struct.Struct(R.HEAD_FMT + "q")  # ts tid pid evt cpu len, and ret

    def __init__(self, state: State) -> None:
        self.state = state
        self.tid = self.pid = self.evt = self.ret = 0
        self.thread: Thread | None = None
        self.fd: Fd | None = None
        self.ppm: bool | None = None  # read from a scap file: fd.name follows libsinsp's rule
        self._num: int | None = None

    def fd_num(self) -> int | None:
        return self._num

    def set(self, buf: bytes, off: int, tid: int, pid: int, evt: int, ret: int) -> None:
        """Point the view at the record at ``off``, whose head the caller unpacked (``HEAD``)."""
        self.tid, self.pid, self.evt, self.ret = tid, pid, evt, ret
        state = self.state
        self.thread = state.threads.get(tid)
        self.ppm = True if buf[off + R.OFF_FLAGS] & R.RF_PPM else None
        if self.thread is None and self.ppm and evt not in _NO_THREAD:
            self.thread = _ppm().ensure_thread(state, tid, pid)
        reg = FD_REGS[evt] if evt < R.EVT_BASE_OTHER else FD_NONE
        if reg == FD_NONE:
            self.fd = None
            self._num = None
        else:
            num = ret if reg == FD_RET else _I32.unpack_from(buf, off + R.OFF_ARGS + 8 * reg)[0]
            self._num = num
            table = state.fds.get(pid)
            self.fd = table.get(num) if table and 0 <= num <= 0x7FFFFFFF else None


def resolve_path(ev: Event, path: str, dirfd: int | None) -> str:
    """Absolute form of a path argument: against the dirfd's path, or the thread's cwd."""
    return resolve_in(ev.state, ev.thread, ev.pid, path, dirfd)


def resolve_in(state: State, thread: Thread | None, pid: int, path: str, dirfd: int | None) -> str:
    """resolve_path for a process's thread, without an Event."""
    if not path or path.startswith("/"):
        return path
    base = ""
    if dirfd is not None and dirfd != AT_FDCWD:
        fd = state.fd(pid, dirfd)
        base = fd.name if fd else ""
    elif thread is not None:
        base = thread.cwd
    if not base:
        return path
    import posixpath

    return posixpath.normpath(posixpath.join(base, path))


def render_param(ev: Event, p: Param, v: Any, opts: RenderOptions) -> str:
    t = p.type
    if isinstance(v, bytes) and t in (PT.HEX, PT.INT, PT.UINT, PT.OCT):
        v = int.from_bytes(v[:8], "little") if v else 0
    if t is PT.FD:
        return _fd_text(ev, v)
    if t is PT.RES:
        return f"{v}({errno_name(-v)})" if v < 0 else str(v)
    if t is PT.RESFD:
        return f"{v}({errno_name(-v)})" if v < 0 else _fd_text(ev, v)
    if t is PT.DIRFD:
        return f"{v}(AT_FDCWD)" if v == AT_FDCWD else _fd_text(ev, v)
    if t in (PT.INT, PT.INT64, PT.UINT, PT.PID, PT.UID, PT.GID):
        return str(v)
    if t is PT.HEX:
        return f"{v:X}" if v else "0"
    if t is PT.OCT:
        return f"0{v:o}" if v else "0"
    if t is PT.FLAGS:
        names = flag_names(p.fmt, v)
        return f"{v}({names})" if names else str(v)
    if t is PT.ENUM:
        name = enum_name(p.fmt, v)
        return f"{v}({name})" if name else str(v)
    if t is PT.SIGNAL:
        name = enum_name("signals", v)
        return f"{v}({name})" if name else str(v)
    if t is PT.PATH:
        path = v.decode(errors="replace")
        dirfd = ev.raw(Param("", PT.DIRFD, p.fmt)) if p.fmt else None
        if ev.evt == _CHDIR_EXIT and ev.ret == 0 and ev.thread is not None and ev.thread.cwd \
                and not path.startswith("/"):
            full = ev.thread.cwd  # the state already moved the cwd there: resolving again would double it
        else:
            full = resolve_path(ev, path, dirfd)
        return path if full == path else f"{path}({full})"
    if t is PT.STR:
        return str(v.rstrip(b"\0").decode(errors="replace"))
    if t is PT.BUF:
        return render_buffer(v, opts) if v else ""
    if t is PT.SOCKADDR:
        return sockaddr_text(v)
    if t is PT.TUPLE:
        n = v if p.src == "ret" else s32(ev.args[int(p.src[1])])
        n = s32(n)
        fd = ev.state.fd(ev.pid, n) if n >= 0 else None
        return fd.name if fd and fd.type in ("ipv4", "ipv6", "unix") else ""
    if t is PT.ARGV:
        return str(v.rstrip(b"\0").replace(b"\0", b".").decode(errors="replace"))
    if t is PT.FDPAIR:
        if len(v) < 8:
            return ""
        a, b = _PAIR.unpack_from(v)
        return f"fd1={_fd_text(ev, a)} fd2={_fd_text(ev, b)}"
    if t is PT.U64:
        if len(v) < 8:
            return ""
        n = int.from_bytes(v[:8], "little")
        names = flag_names("clone_flags", n)
        return f"{n}({names})" if names else str(n)
    if t is PT.OPENHOW:
        if len(v) < 24:
            return ""
        fl, mode, res = struct.unpack_from("<QQQ", v)
        names = flag_names("open_flags", fl)
        return f"flags={fl}({names}) mode={f'0{mode:o}' if mode else 0} resolve={res}"
    if t is PT.STATE:
        if isinstance(v, list):
            return ".".join(v)
        return "" if v is None else str(v)
    return str(v)


def info_untyped(info: EventInfo | None) -> bool:
    return info is not None and not info.enter and not info.exit


def _raw_args(ev: Event) -> str:
    """Syscalls without a decoder: the return value, or the argument registers up to the last set."""
    if ev.direction:
        r = s64(ev.ret)
        return f"res={r}({errno_name(-r)})" if -4096 < r < 0 else f"res={r}"
    last = max((i for i, a in enumerate(ev.args) if a), default=-1)
    return " ".join(f"a{i}={a:#x}" for i, a in enumerate(ev.args[: last + 1]))


def _procinfo_info(ev: Event) -> str:
    import msgpack

    d = msgpack.unpackb(ev.seg0) if ev.seg0 else {}
    return f"cpu_usr={d.get('u', 0)} cpu_sys={d.get('s', 0)}"


_INTERNAL_INFO = {R.EVT_PROCINFO: _procinfo_info}
