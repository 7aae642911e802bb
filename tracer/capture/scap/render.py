"""evt.info of an event read from a .scap file: its PPM parameters as sysdig prints them.

``name=value`` for each parameter the event holds, ``name=value(resolved)`` where sysdig resolves
one (an fd's type and name, an errno's name, a flag's names, a pid's command, a user's name), each
followed by a space. Flags print with PPM's values and names, as sysdig does for the same file.
Generic events print no parameters.
"""

from __future__ import annotations

import ipaddress
import signal
import struct
from typing import TYPE_CHECKING, Final

from tracer.schema.flags import errno_name

from .events import int_value
from .table import PF, PPM_DYNAMIC, PPM_FLAGS, PT, SYSCALLS, PEvent, PParam, ppm_event

if TYPE_CHECKING:
    from tracer.event import Event, RenderOptions
    from tracer.state.tables import Fd

AT_FDCWD: Final = -100
_SIGNALS = {int(s): s.name for s in signal.Signals if not s.name.startswith("SIG_")}
_WIDTH = {PT.INT8: 8, PT.INT16: 16, PT.INT32: 32, PT.INT64: 64, PT.UINT8: 8, PT.UINT16: 16, PT.UINT32: 32,
          PT.UINT64: 64}


def ppm_info(ev: Event, opts: RenderOptions) -> str:
    assert ev.ppm is not None
    etype, vals = ev.ppm
    info = ppm_event(etype)
    if info is None or info.name == "syscall":
        return ""
    out = []
    for p, raw in zip(info.params, vals, strict=False):
        text, resolved = param_str(ev, p, raw, info.params, vals, opts)
        out.append(f"{p.name}={text}({resolved}) " if resolved else f"{p.name}={text} ")
    return "".join(out)


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _number(p: PParam, v: int) -> str:
    bits = _WIDTH.get(p.type, 64)
    if p.fmt == PF.HEX:
        return f"{v & ((1 << bits) - 1):X}"
    if p.fmt == PF.OCT:
        return f"0{v:o}" if v else "0"
    if p.fmt == PF.PADDED_DEC:
        return f"{_signed(v, bits):09d}"
    return str(_signed(v, bits))  # sysdig prints every integer with a signed format


def _flags(table: str, val: int) -> str:
    """sysdig's flag names: each entry whose bits are all set, in table order, until one equals
    the whole value (printed last); a zero entry only for a zero value."""
    names = []
    rows = PPM_FLAGS.get(table, ())
    initial = val
    i = 0
    while i < len(rows) and rows[i][1] != initial:
        name, bit = rows[i]
        if (bit == 0 and initial == 0) or (bit != 0 and val & bit == bit and val != 0):
            names.append(name)
            val &= ~bit
        i += 1
    if i < len(rows):
        names.append(rows[i][0])
    return "|".join(names)


def _ip6(raw: bytes) -> str:
    return ipaddress.IPv6Address(raw).compressed


def _buffer(raw: bytes, opts: RenderOptions) -> str:
    from tracer.event import render_buffer

    return render_buffer(raw, opts)


def _fd(ev: Event, fd: int) -> tuple[str, str]:
    if fd < 0:
        # libsinsp names -100 AT_FDCWD in any fd parameter (the *at syscalls' dirfd), an errno else
        return str(fd), "AT_FDCWD" if fd == AT_FDCWD else errno_name(-fd)
    f = ev.state.fd(ev.pid, fd)
    if f is None:
        return str(fd), ""
    return str(fd), f"{fd_tag(f)}{f.name}"


def fd_tag(f: Fd) -> str:
    """sysdig's tag of an fd read from a scap file: the protocol letter only once the socket has a
    role (client after connect, server after bind to a port or accept), as libsinsp shows it."""
    if f.type in ("ipv4", "ipv6") and f.l4proto and f.is_server is not None:
        return f"<{f.typechar}{f.l4proto[0]}>"
    return f"<{f.typechar}>"


def param_str(ev: Event, p: PParam, raw: bytes, params: tuple[PParam, ...], vals: list[bytes],
              opts: RenderOptions) -> tuple[str, str]:
    """(value, resolved) of one parameter, like sysdig's get_param_as_str."""
    t = p.type
    if t == PT.FD or t == PT.FD32:
        return _fd(ev, int_value(p, raw))
    if t == PT.PID or t == PT.PID32:
        v = int_value(p, raw)
        th = ev.state.threads.get(v)
        return str(v), th.comm if th is not None else ""
    if t == PT.ERRNO:
        v = int_value(p, raw)
        return str(v), errno_name(-v) if v < 0 else ""
    if t in _WIDTH:
        return _number(p, int_value(p, raw)), ""
    if t == PT.CHARBUF:
        return raw.split(b"\0", 1)[0].decode(errors="replace"), ""
    if t in (PT.FSPATH, PT.FSRELPATH):
        path = raw.split(b"\0", 1)[0].decode(errors="replace")
        if not path or path.startswith("/") or path == "<NA>" or ev.thread is None:
            return path, ""
        base = ev.thread.cwd
        if t == PT.FSRELPATH and 0 <= p.dirfd < len(vals):
            d = int_value(params[p.dirfd], vals[p.dirfd])
            if d != -100:
                f = ev.state.fd(ev.pid, d)
                base = f.name if f is not None else ""
        import posixpath

        return path, posixpath.normpath(posixpath.join(base, path)) if base else ""
    if t == PT.BYTEBUF:
        return _buffer(raw, opts), ""
    if t == PT.SOCKADDR:
        return _sockaddr(raw), ""
    if t == PT.SOCKTUPLE:
        return _socktuple(raw), ""
    if t == PT.FDLIST:
        return _fdlist(ev, raw), ""
    if t == PT.SYSCALLID:
        v = int_value(p, raw)
        return str(v), SYSCALLS[v] if v < len(SYSCALLS) else "<unknown syscall>"
    if t == PT.SIGTYPE:
        v = int_value(p, raw)
        return str(v), _SIGNALS.get(v, "")
    if t == PT.RELTIME:
        v = int_value(p, raw)
        if v == 0xFFFFFFFFFFFFFFFF:
            return "none", ""
        return str(v), f"{v / 1e9:g}s"
    if t in (PT.FLAGS8, PT.FLAGS16, PT.FLAGS32, PT.ENUMFLAGS8, PT.ENUMFLAGS16, PT.ENUMFLAGS32):
        v = int_value(p, raw)
        return str(v), _flags(p.table, v)
    if t == PT.MODE:
        v = int_value(p, raw)
        return _number(PParam(p.name, PT.UINT32, p.fmt), v), _flags(p.table, v)
    if t in (PT.UID, PT.GID):
        v = int_value(p, raw)
        if v == 0xFFFFFFFF:
            return "-1", "<NONE>"
        if t == PT.UID:
            u = ev.state.users.get(v)
            return str(v), u.name if u is not None else "<NA>"
        g = ev.state.groups.get(v)
        return str(v), g.name if g is not None else "<NA>"
    if t == PT.SIGSET:
        v = int_value(p, raw)
        return " ".join(_SIGNALS[s + 1] for s in range(32) if v & (1 << s) and s + 1 in _SIGNALS), ""
    if t == PT.DYN:
        # The first byte picks the row of the parameter's table, the type the rest is read as.
        rows = PPM_DYNAMIC.get(p.table, ())
        if raw and raw[0] < len(rows):
            row = rows[raw[0]]
            return param_str(ev, PParam(p.name, row.type, row.fmt), raw[1:], params, vals, opts)
        return "INVALID DYNAMIC PARAMETER", ""
    if t == PT.ABSTIME:
        return "INVALID DYNAMIC PARAMETER", ""
    if t == PT.BOOL:
        return str(int_value(p, raw)), ""
    return "(n.a.)", ""


def _sockaddr(raw: bytes) -> str:
    if not raw:
        return "NULL"
    fam = raw[0]
    if fam == 1:
        return raw[1:].split(b"\0", 1)[0].decode(errors="replace")
    if fam == 2:
        if len(raw) != 7:
            return "INVALID IPv4"
        return f"{ipaddress.IPv4Address(raw[1:5])}:{int.from_bytes(raw[5:7], 'little')}"
    if fam == 10:
        if len(raw) != 19:
            return "INVALID IPv6"
        a = ipaddress.IPv6Address(raw[1:17])
        ip = str(a.ipv4_mapped) if a.ipv4_mapped is not None else a.compressed
        return f"{ip}:{int.from_bytes(raw[17:19], 'little')}"
    return f"family {fam}"


def _socktuple(raw: bytes) -> str:
    if not raw:
        return "NULL"
    fam = raw[0]
    if fam == 2:
        if len(raw) != 13:
            return "INVALID IPv4"
        sport, dport = int.from_bytes(raw[5:7], "little"), int.from_bytes(raw[11:13], "little")
        return f"{ipaddress.IPv4Address(raw[1:5])}:{sport}->{ipaddress.IPv4Address(raw[7:11])}:{dport}"
    if fam == 10:
        if len(raw) != 37:
            return "INVALID IPv6"
        s, d = ipaddress.IPv6Address(raw[1:17]), ipaddress.IPv6Address(raw[19:35])
        sport, dport = int.from_bytes(raw[17:19], "little"), int.from_bytes(raw[35:37], "little")
        if s.ipv4_mapped is not None and d.ipv4_mapped is not None:
            return f"{s.ipv4_mapped}:{sport}->{d.ipv4_mapped}:{dport}"
        return f"{s.compressed}:{sport}->{d.compressed}:{dport}"
    if fam == 1 and len(raw) >= 17:
        src, dst = struct.unpack_from("<QQ", raw, 1)
        path = raw[17:].split(b"\0", 1)[0].decode(errors="replace")
        return f"{src:x}->{dst:x} {path}"
    return f"family {fam}"


def _fdlist(ev: Event, raw: bytes) -> str:
    if ev.thread is None or len(raw) < 2:
        return ""
    n = int.from_bytes(raw[:2], "little")
    out = []
    pos = 2
    for _ in range(n):
        if pos + 10 > len(raw):
            break
        fd, fl = struct.unpack_from("<qh", raw, pos)
        f = ev.state.fd(ev.pid, fd)
        out.append(f"{fd}:{f.typechar if f is not None else '?'}{fl & 0xFFFFFFFF:x}")
        pos += 10
    return " ".join(out)


# --- plans for the C renderer (ext/render.pyx) --------------------------------------------------
# How the C renderer prints one parameter; every other type goes through param_str with the Event.
Q_PY: Final = 0  # param_str(ev, ...): needs the state beyond what the C renderer reads
Q_INT: Final = 1  # _number
Q_ERRNO: Final = 2  # n, or n(ENAME)
Q_FD: Final = 3  # _fd
Q_PID: Final = 4  # n(comm)
Q_STR: Final = 5  # a charbuf up to its NUL
Q_PATH: Final = 6  # an absolute path as is (a relative one: Q_PY's way)
Q_BUF: Final = 7  # render_buffer
Q_CACHED: Final = 8  # a pure function of the raw bytes: param_str(None, ...) once per value
FD_USES: Final = 1
FD_CREATES: Final = 2

# param_str reads nothing but the bytes for these (the last row: those it prints as "(n.a.)").
_PURE = frozenset({PT.SOCKADDR, PT.SOCKTUPLE, PT.SYSCALLID, PT.SIGTYPE, PT.RELTIME, PT.FLAGS8, PT.FLAGS16,
                   PT.FLAGS32, PT.ENUMFLAGS8, PT.ENUMFLAGS16, PT.ENUMFLAGS32, PT.MODE, PT.SIGSET, PT.ABSTIME,
                   PT.BOOL,
                   PT.NONE, PT.PORT, PT.L4PROTO, PT.SOCKFAMILY, PT.IPV4ADDR, PT.DOUBLE, PT.CHARBUFARRAY,
                   PT.CHARBUF_PAIR_ARRAY, PT.IPV4NET, PT.IPV6ADDR, PT.IPV6NET, PT.IPADDR, PT.IPNET})
_CODES = {PT.ERRNO: Q_ERRNO, PT.FD: Q_FD, PT.FD32: Q_FD, PT.PID: Q_PID, PT.PID32: Q_PID, PT.CHARBUF: Q_STR,
          PT.FSPATH: Q_PATH, PT.FSRELPATH: Q_PATH, PT.BYTEBUF: Q_BUF, PT.FDLIST: Q_PY, PT.UID: Q_PY,
          PT.GID: Q_PY}

ParamPlan = tuple[int, bytes, int, bool, int, int, PParam]
EventPlan = tuple[tuple[ParamPlan, ...], bool, bool, int, int, int, int, int, bool, bool, PEvent]


def _param_plan(p: PParam) -> ParamPlan:
    """(code, b"name=", value size, signed, bits, print format, the parameter)."""
    from .events import INT_FORMATS

    fmt = INT_FORMATS.get(p.type)
    size = struct.calcsize(fmt) if fmt is not None else 0
    signed = fmt is not None and fmt[1].islower()
    if p.type in _WIDTH:
        code = Q_INT
    elif p.type in _CODES:
        code = _CODES[p.type]
    else:
        code = Q_CACHED if p.type in _PURE else Q_PY
    return code, f"{p.name}=".encode(), size, signed, _WIDTH.get(p.type, 64), int(p.fmt), p


def c_plans() -> list[EventPlan | None]:
    """Per PPM event type, what the C renderer needs to print its records as ppm_info,
    state.ppm_fd_num, ppm_fd, ppm_fd_name and ppm_res do: (parameter plans; whether evt.info is
    empty (a generic event); exit; fd rule; index of the last ``fd``, of the last ``fd2``, of the first
    ``res``, of the first ``fd``; whether a failed exit names its fd from a path; connect; the
    table row). None for a type the table does not know."""
    from .table import PPM_EVENT_MAX

    out: list[EventPlan | None] = []
    for etype in range(PPM_EVENT_MAX):
        info = ppm_event(etype)
        if info is None:
            out.append(None)
            continue
        names = [p.name for p in info.params]

        def last(name: str, names: list[str] = names) -> int:
            return max((i for i, n in enumerate(names) if n == name), default=-1)

        def first(name: str, names: list[str] = names) -> int:
            return names.index(name) if name in names else -1

        rule = FD_USES if "uses_fd" in info.flags else FD_CREATES if "creates_fd" in info.flags else 0
        is_exit = bool(etype & 1)
        params = tuple(_param_plan(p) for p in info.params)
        named = is_exit and "creates_fd" in info.flags and any(n in ("name", "path") for n in names)
        out.append((params, info.name == "syscall", is_exit, rule, last("fd"), last("fd2"), first("res"),
                    first("fd") if is_exit and "creates_fd" in info.flags else -1, named,
                    is_exit and info.name == "connect", info))
    return out
