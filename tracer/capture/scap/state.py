"""A scap file's tables as ktrace's state rows, and the state PPM events carry beyond a record.

The probe's records leave process facts to /proc; a PPM execve or clone exit carries them (exe,
args, cwd, ids, cgroups), and connect/accept exits carry the socket tuple sysdig names the fd by.
``apply_ppm`` gives the state those, after ktrace's own handler saw the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracer.enrich.cgroup import parse_cgroup
from tracer.state.tables import Fd, Thread

from .blocks import ScapFd, ScapThread, split_args, split_cgroups
from .events import int_value, sockaddr_parts, tuple_parts
from .table import ppm_event
from .translate import to_linux_flags

if TYPE_CHECKING:
    from tracer.event import Event
    from tracer.state.state import State


def ensure_thread(state: State, tid: int, pid: int) -> Thread:
    """The thread of an event read from a scap file. One the tables do not know is made as
    libsinsp makes it offline: named ``<NA>`` (a value, so chisels key on it as sysdig's do)."""
    t = state.threads.get(tid)
    if t is None:
        t = state.thread(tid, pid)
        if not t.comm:
            t.comm = t.exe = "<NA>"
    return t


def cgroup_text(cgroups: list[tuple[str, str]]) -> str:
    """The /proc/PID/cgroup form of a scap thread's cgroups, which ktrace's container match reads."""
    return "\n".join(f"0:{k}:{v}" for k, v in cgroups)


def container_of(cgroups: list[tuple[str, str]]) -> str:
    return parse_cgroup(cgroup_text(cgroups)).id if cgroups else "host"


def thread_rows(threads: list[ScapThread]) -> list[list[Any]]:
    rows = []
    for s in threads:
        t = Thread(s.tid, s.pid, s.ptid, s.comm, s.exe, s.exepath, s.args, s.cwd, s.uid, s.gid, s.loginuid, 0,
                   s.vtid, s.vpid, s.sid, container_of(s.cgroups), cgroup_text(s.cgroups), 0, s.fdlimit,
                   s.vmsize_kb, s.vmrss_kb)
        rows.append(t.to_row())
    return rows


def _sanitized(name: str) -> str:
    """libsinsp drops unprintable characters from the names it loads (a unix path's newline)."""
    return "".join(c for c in name if c.isprintable())


def to_fd(f: ScapFd) -> Fd:
    fd = Fd(f.fd, f.type, _sanitized(f.name), l4proto=f.l4proto, ino=f.ino,
            flags=to_linux_flags("file_flags", f.open_flags) if f.open_flags else 0)
    if f.kind in (3, 4):
        fd.set_tuple(f.cip, f.cport, f.sip, f.sport)
        fd.is_server = None
    elif f.kind in (5, 6):
        fd.set_server(f.sip, f.sport)
    return fd


def fd_rows(threads: list[ScapThread], fds: dict[int, list[ScapFd]]) -> list[list[Any]]:
    """One fd table per process: the first table of any of its threads (threads share it).

    The table holds connected sockets as /proc shows them, local end first. Like libsinsp, an
    IPv4 one whose local port some socket listens on is the server's end: its name is turned to
    client->server; the others are clients'."""
    pid_of = {t.tid: t.pid for t in threads}
    server_ports = {f.sport for lst in fds.values() for f in lst if f.kind in (5, 6)}
    tables: dict[int, list[Any]] = {}
    for tid, lst in fds.items():
        pid = pid_of.get(tid, tid)
        if pid in tables and tid != pid:
            continue
        rows = []
        for f in lst:
            fd = to_fd(f)
            if f.kind == 3:
                if f.cport in server_ports:
                    fd.set_tuple(f.sip, f.sport, f.cip, f.cport)
                    fd.is_server = True
                else:
                    fd.is_server = False
            rows.append(fd.to_row())
        tables[pid] = rows
    return [[pid, rows] for pid, rows in tables.items()]


def ppm_fd_num(ev: Event) -> int | None:
    """fd.num of an event read from a scap file, by libsinsp's rule: the fd parameter of events
    that use one (an exit keeps its enter's), -1 on the enter of an event that creates one, its
    result on the exit; nothing for other events."""
    assert ev.ppm is not None
    etype, vals = ev.ppm
    info = ppm_event(etype)
    if info is None:
        return None
    if "uses_fd" in info.flags:
        if not etype & 1 and info.params and vals:
            return int_value(info.params[0], vals[0])
        from tracer.schema import record as R
        from tracer.schema.events import FD_NONE, FD_REGS, FD_RET

        reg = FD_REGS[ev.evt] if ev.evt < R.EVT_BASE_OTHER else FD_NONE
        if reg == FD_NONE:
            return None
        return ev.ret if reg == FD_RET else _s32(ev.args[reg])
    if "creates_fd" in info.flags:
        if not etype & 1:
            return -1
        params = {p.name: (p, raw) for p, raw in zip(info.params, vals, strict=False)}
        for k in ("fd", "fd2"):  # a pipe's last fd is the one libsinsp remembers
            if k in params:
                v = int_value(*params[k])
                return -1 if v < 0 else v
        r = ppm_res(ev)
        return None if r is None else (-1 if r < 0 else r)
    return None


def ppm_fd(ev: Event) -> Fd | None:
    """The fd an event read from a scap file is about. A failed open names the path it tried, as
    libsinsp's temporary fd does."""
    n = ppm_fd_num(ev)
    if n is None:
        return None
    if n >= 0:
        return ev.state.fd(ev.pid, n)
    assert ev.ppm is not None
    etype, vals = ev.ppm
    info = ppm_event(etype)
    if info is None or not etype & 1 or "creates_fd" not in info.flags:
        return None
    for p, raw in zip(info.params, vals, strict=False):
        if p.name in ("name", "path") and raw:
            from tracer.event import resolve_path

            path = raw.split(b"\0", 1)[0].decode(errors="replace")
            return Fd(-1, "file", resolve_path(ev, path, None))
    return None


def ppm_res(ev: Event) -> int | None:
    """evt.rawres of an event read from a scap file: its ``res`` parameter, or the ``fd`` an exit of
    an fd-creating event returns (libsinsp's rule); nothing for an event without one."""
    assert ev.ppm is not None
    etype, vals = ev.ppm
    info = ppm_event(etype)
    if info is None:
        return None
    params = list(zip(info.params, vals, strict=False))
    for p, raw in params:
        if p.name == "res":
            return int_value(p, raw)
    if etype & 1 and "creates_fd" in info.flags:
        for p, raw in params:
            if p.name == "fd":
                return int_value(p, raw)
    return None


def ppm_fd_name(ev: Any) -> str | None:
    """fd.name of an event read from a scap file (an Event, or a RecordView of an exit), by
    libsinsp 0.29's rule: the fd's name; for an exit whose fd is unknown an empty name, or what a
    failed open or connect tried; nothing for an enter whose fd is unknown or an event without one."""
    n = ev.fd_num()
    if n is None:
        return None
    fd = ev.fd
    got = ev.ppm if isinstance(ev.ppm, tuple) else None
    is_exit = bool(got[0] & 1) if got is not None else True
    if got is not None and is_exit:
        info = ppm_event(got[0])
        if info is not None and info.name == "connect" and len(got[1]) > 1:
            r = ppm_res(ev)
            if r is not None and r < 0:
                from .render import param_str

                text: str = param_str(ev, info.params[1], got[1][1], info.params, got[1], _plain())[0]
                return text
    if fd is not None:
        return str(fd.name)
    return "" if is_exit else None


def ppm_arg(ev: Event, a: Any, raw: bool) -> Any:
    """evt.arg.NAME / evt.arg[N] of an event read from a scap file, as sysdig gives it: the
    resolved text where there is one (``<f>/etc/passwd``, ``O_RDONLY``, ``ENOENT``), else the
    value; evt.rawarg.NAME: the number itself (text for strings)."""
    assert ev.ppm is not None
    etype, vals = ev.ppm
    info = ppm_event(etype)
    if info is None:
        return None
    pairs = list(zip(info.params, vals, strict=False))
    if isinstance(a, int):
        found = pairs[a] if 0 <= a < len(pairs) else None
    else:
        found = next(((p, v) for p, v in pairs if p.name == a), None)
    if found is None:
        return None
    p, v = found
    if raw:
        from .events import INT_FORMATS

        if p.type in INT_FORMATS:
            return int_value(p, v)
        return v.split(b"\0", 1)[0].decode(errors="replace")
    from .render import param_str

    text, resolved = param_str(ev, p, v, info.params, vals, _plain())
    return resolved or text


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _plain() -> Any:
    from tracer.event import RenderOptions

    return RenderOptions()


_PROC_EXITS = frozenset({"execve", "execveat", "clone", "fork", "vfork", "clone3"})


def apply_ppm(state: State, ev: Event) -> None:
    """What a PPM exit tells the state beyond ktrace's handler: process facts and socket tuples."""
    got = ev.ppm
    if got is None:
        return
    etype, vals = got
    info = ppm_event(etype)
    if info is None or not etype & 1:
        return
    params = {p.name: (p, raw) for p, raw in zip(info.params, vals, strict=False)}
    name = info.name
    if name == "bind":
        # libsinsp makes a socket a server only when bound to a port; ktrace's handler did already.
        a = params.get("addr")
        addr = sockaddr_parts(a[1]) if a else None
        num = ev.fd_num()
        fd = state.fd(ev.pid, num) if num is not None else None
        if fd is not None and addr is not None and addr[0] != "unix" and addr[2] == 0:
            fd.is_server = None
        return
    if name in _PROC_EXITS:
        res = params.get("res")
        r = int_value(*res) if res else -1
        if (name.startswith("exec") and r == 0) or (not name.startswith("exec") and r == 0):
            _process_facts(state, ev, params, exec_=name.startswith("exec"))
    elif name in ("connect", "accept", "accept4") or (name in ("sendto", "recvfrom") and "tuple" in params):
        tup = params.get("tuple")
        parts = tuple_parts(tup[1]) if tup else None
        if parts is None:
            return
        key = "fd" if name.startswith("accept") else None
        num = int_value(*params["fd"]) if key and "fd" in params else ev.fd_num()
        if num is None or num < 0:
            return
        fam, sip, sport, dip, dport = parts
        res = params.get("res")
        if name == "connect" and res and int_value(*res) not in (0, -115):
            return  # a failed connect leaves the fd as it was (ppm_fd_name shows the tuple)
        fd = state.fd(ev.pid, num)
        if fd is None:
            if not name.startswith("accept"):
                return
            fd = Fd(num, fam)
            state.fds.setdefault(ev.pid, {})[num] = fd
        if fam == "unix":
            fd.type = "unix"
            fd.name = f"{sip}->{dport:x} {dip}"  # libsinsp names a unix socket by its tuple
            return
        if name in ("sendto", "recvfrom") and fd.name:
            return
        fd.type = fam
        fd.l4proto = fd.l4proto or "tcp"
        if name == "recvfrom":
            sip, sport, dip, dport = dip, dport, sip, sport  # the tuple is as received: peer first
        fd.set_tuple(sip, sport, dip, dport)
        fd.is_server = name.startswith("accept")


def _process_facts(state: State, ev: Event, params: dict[str, Any], exec_: bool) -> None:
    def num(k: str) -> int | None:
        p = params.get(k)
        return int_value(*p) if p else None

    def text(k: str) -> str | None:
        p = params.get(k)
        return p[1].split(b"\0", 1)[0].decode(errors="replace") if p else None

    tid = num("tid") or ev.tid
    if tid != ev.tid:
        return
    t = state.threads.get(ev.tid)
    if t is None:
        t = state.thread(ev.tid, num("pid") or ev.pid)
    exe, args = text("exe"), params.get("args")
    if exe is not None:
        t.exe = exe
    if args is not None:
        t.args = split_args(args[1])
    cwd = text("cwd")
    if cwd is not None:
        t.cwd = cwd
    comm = text("comm")
    if comm:
        t.comm = comm
    elif exec_ and exe:
        t.comm = exe.rsplit("/", 1)[-1][:15]
    pid = t.pid
    for k, attr in (("pid", "pid"), ("ptid", "ptid"), ("vtid", "vtid"), ("vpid", "vpid"), ("uid", "uid"),
                    ("gid", "gid"), ("loginuid", "loginuid"), ("fdlimit", "fdlimit"), ("vm_size", "vmsize_kb"),
                    ("vm_rss", "vmrss_kb")):
        v = num(k)
        if v is not None:
            setattr(t, attr, v)
    if t.pid != pid:
        state.threads.moved(ev.tid, pid)
    cg = params.get("cgroups")
    if cg is not None:
        groups = split_cgroups(cg[1])
        t.cgroups = cgroup_text(groups)
        t.container_id = container_of(groups)
    exepath = text("trusted_exepath")
    if exepath:
        t.exepath = exepath
    state.version += 1
    state._changed(ev.tid)
