"""THE field table: one row per field (name, type, description, extractor) serves the filter,
-p formats, -j, chisels and ``ktrace -l``. Names and meanings are sysdig's.

Extractors take (event, arg) and return the value or None, which prints as <NA> and makes every
comparison false.
"""

from __future__ import annotations

import dataclasses
import enum
import posixpath
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..capture.scap.state import ppm_arg, ppm_fd_name, ppm_res
from ..schema import record as R
from ..schema.flags import errno_name
from ..schema.types import PT

if TYPE_CHECKING:
    from ..event import Event
    from ..schema.events import Param
    from ..state.tables import Fd, Thread


class FieldType(enum.Enum):
    STR = "CHARBUF"
    INT = "INT64"
    UINT = "UINT64"
    BOOL = "BOOL"
    IPADDR = "IPADDR"
    IPNET = "IPNET"
    PORT = "PORT"
    RELTIME = "RELTIME"
    ABSTIME = "ABSTIME"
    BYTES = "BYTEBUF"
    DOUBLE = "DOUBLE"


Extract = Callable[["Event", Any], Any]


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType
    desc: str
    fn: Extract
    arg: str = ""  # "" | "index" | "index?" | "name" | "index_or_name"
    multi: bool = False
    filter_only: bool = False
    cost: int = 1  # relative cost of extracting; the filter orders checks by it
    # For fields that are a property of the event type: the value for every event type name, so
    # the filter turns a check on them into a set of event types (pushdown, exact selection).
    by_event: Mapping[str, Any] | None = None
    # The extractor reads only the event's tid, pid, thread, fd and the state: it works on a
    # RecordView, which table chisels fill straight from a record (no Event).
    raw: bool = False

    def extract(self, ev: Event, arg: Any = None) -> Any:
        return self.fn(ev, arg)


class FieldTable:
    def __init__(self, rows: list[FieldDef]) -> None:
        self.rows = rows
        self._by_name = {r.name: r for r in rows}

    def lookup(self, name: str) -> FieldDef | None:
        return self._by_name.get(name)

    def classes(self) -> dict[str, list[FieldDef]]:
        out: dict[str, list[FieldDef]] = {}
        for r in self.rows:
            out.setdefault(r.name.split(".")[0], []).append(r)
        return out


# --- helpers ---------------------------------------------------------------------------------------
def _t(ev: Event) -> Thread | None:
    return ev.thread


def _thr(attr: str, na: Any = None) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        t = ev.thread
        if t is None:
            return None
        v = getattr(t, attr)
        return None if v == na else v

    return f


def _fd(ev: Event) -> Fd | None:
    return ev.fd


def _fdattr(attr: str, empty: Any = "") -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        fd = ev.fd
        if getattr(ev, "ppm", None) is not None:
            # Read from a scap file: libsinsp's rules. A socket shows its protocol only once it
            # has a role (connected, accepted, or bound to a port).
            if attr == "name":
                return ppm_fd_name(ev)
            if attr == "l4proto" and fd is not None and fd.is_server is None:
                return None
        if fd is None:
            if attr == "name" and ev.evt < R.EVT_BASE_OTHER and ev.evt & 1 and (n := ev.fd_num()) is not None \
                    and n >= 0:
                return ""  # libsinsp names an exit's unknown fd with an empty name
            return None
        v = getattr(fd, attr)
        if attr == "name":
            return v  # a known fd without a name (a pipe's) has an empty one, as in libsinsp
        return None if v == empty else v

    return f


def _ancestors(ev: Event) -> list[Thread]:
    out: list[Thread] = []
    t = ev.thread
    seen = set()
    while t is not None and t.pid not in seen and len(out) < 64:
        out.append(t)
        seen.add(t.pid)
        t = ev.state.threads.get(t.ptid) if t.ptid else None
    return out


def _anc(attr: str) -> Extract:
    def f(ev: Event, n: Any) -> Any:
        chain = _ancestors(ev)
        if n is None:
            return [getattr(t, attr) for t in chain[1:]]
        return getattr(chain[n], attr) if 0 <= n < len(chain) else None

    return f


def _local_remote(fd: Fd, local: bool) -> tuple[str, int] | None:
    if fd.type not in ("ipv4", "ipv6") or fd.is_server is None:
        return None
    if fd.is_server == local:
        return fd.sip, fd.sport
    return (fd.cip, fd.cport) if fd.cip else None


def _lr(local: bool, part: int) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        fd = ev.fd
        if fd is None:
            return None
        lr = _local_remote(fd, local)
        return lr[part] if lr and lr[part] not in ("", 0) else None

    return f


def _sockattr(attr: str) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        fd = ev.fd
        if fd is None or fd.type not in ("ipv4", "ipv6"):
            return None
        v = getattr(fd, attr)
        return v if v not in ("", 0) else None

    return f


def _fd_ip_any(ev: Event, _a: Any) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in ("ipv4", "ipv6"):
        return None
    return [x for x in (fd.cip, fd.sip) if x]


def _fd_port_any(ev: Event, _a: Any) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in ("ipv4", "ipv6"):
        return None
    return [x for x in (fd.cport, fd.sport) if x]


def _arg(ev: Event, a: Any) -> Any:
    if ev.ppm is not None:
        return ppm_arg(ev, a, raw=False)
    params = ev.params
    p: Param | None
    if isinstance(a, int):
        p = params[a] if 0 <= a < len(params) else None
    else:
        p = ev.param(a) if a is not None else None
    if p is None:
        return None
    from ..event import RenderOptions

    return ev.arg_str(p, RenderOptions())


def _rawarg(ev: Event, a: Any) -> Any:
    if ev.ppm is not None:
        return ppm_arg(ev, a, raw=True)
    p = ev.param(a) if isinstance(a, str) else None
    if p is None:
        return None
    v = ev.raw(p)
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return v


def _time_h(ts: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts // 1_000_000_000)) + f".{ts % 1_000_000_000:09d}"


def _buffer(ev: Event, _a: Any) -> Any:
    for p in ev.params:
        if p.type is PT.BUF:
            return ev.raw(p)
    return None


def _is_io(kind: str) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        info = ev.info
        if info is None:
            return False
        if kind == "any":
            return "io_read" in info.flags or "io_write" in info.flags
        return kind in info.flags

    return f


def _io_dir(ev: Event, _a: Any) -> Any:
    info = ev.info
    if info is None:
        return None
    if "io_read" in info.flags:
        return "r"
    if "io_write" in info.flags:
        return "w"
    return None


def _res(ev: Event, _a: Any) -> Any:
    if ev.ppm is not None:
        r = ppm_res(ev)
        return None if r is None else (f"{errno_name(-r)}" if r < 0 else "SUCCESS")
    if not ev.is_syscall or not ev.direction:
        return None
    from ..event import s64

    r = s64(ev.ret)
    return f"{errno_name(-r)}" if r < 0 else "SUCCESS"


def _rawres(ev: Event, _a: Any) -> Any:
    if ev.ppm is not None:
        return ppm_res(ev)
    if not ev.is_syscall or not ev.direction or not ev.params:
        return None
    from ..event import s64

    return s64(ev.ret)


def _failed(ev: Event, _a: Any) -> Any:
    r = _rawres(ev, None)
    return r is not None and r < 0


def _open_mode(mode: int) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        if ev.type not in ("open", "openat", "openat2", "creat") or not ev.direction:
            return False
        fl = ev.args[1] if ev.type == "open" else ev.args[2]
        acc = fl & 3
        return acc in (mode, 2) if mode else acc in (0, 2)

    return f


def _container(key: str) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        t = ev.thread
        if t is None:
            return None
        cid = t.container_id
        if cid == "host":
            if key in ("name", "id", "type"):
                return "host"  # sysdig 0.29 too: container.type is "host" outside containers
            return None
        if key == "id":
            return cid
        info = ev.state.containers.get(cid)
        if not info:
            return None
        v = info.get(key)
        return None if v in (None, "", "<NA>") else v

    return f


def _label(source: str) -> Extract:
    def f(ev: Event, a: Any) -> Any:
        t = ev.thread
        if t is None or t.container_id == "host":
            return None
        info = ev.state.containers.get(t.container_id) or {}
        labels = info.get(source) or {}
        if a is None:
            return ", ".join(f"{k}:{v}" for k, v in sorted(labels.items())) or None
        return labels.get(a)

    return f


def _user(attr: str) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        t = ev.thread
        if t is None or t.uid < 0:
            return None
        if attr == "uid":
            return t.uid
        u = ev.state.users.get(t.uid)
        return getattr(u, attr) if u else None

    return f


def _loginname(ev: Event, _a: Any) -> Any:
    t = ev.thread
    if t is None or t.loginuid < 0:
        return None
    u = ev.state.users.get(t.loginuid)
    return u.name if u else None


def _group(ev: Event, _a: Any) -> Any:
    t = ev.thread
    if t is None or t.gid < 0:
        return None
    g = ev.state.groups.get(t.gid)
    return g.name if g else None


def _pname(ev: Event, _a: Any) -> Any:
    chain = _ancestors(ev)
    return chain[1].comm if len(chain) > 1 else None


def _pcmdline(ev: Event, _a: Any) -> Any:
    chain = _ancestors(ev)
    return " ".join([chain[1].comm, *chain[1].args]) if len(chain) > 1 else None


def _loginshellid(ev: Event, _a: Any) -> Any:
    found = None
    for t in _ancestors(ev):
        if t.comm.endswith("sh"):
            found = t.pid
    return found


def _fd_directory(ev: Event, _a: Any) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in ("file", "directory") or not fd.name:
        return None
    return fd.name if fd.type == "directory" else posixpath.dirname(fd.name)


def _fd_filename(ev: Event, _a: Any) -> Any:
    fd = ev.fd
    if fd is None or fd.type != "file" or not fd.name:
        return None
    return posixpath.basename(fd.name)


def _nthreads(ev: Event, _a: Any) -> Any:
    t = ev.thread
    return None if t is None else sum(1 for x in ev.state.threads.values() if x.pid == t.pid)


def _fdopencount(ev: Event, _a: Any) -> Any:
    return len(ev.state.fds.get(ev.pid, {}))


def _category(ev: Event, _a: Any) -> Any:
    info = ev.info
    return info.category if info else None


def _count_error(cat: str | None) -> Extract:
    def f(ev: Event, _a: Any) -> Any:
        if not _failed(ev, None):
            return 0
        if cat is None:
            return 1
        info = ev.info
        return 1 if info and info.category in cat.split("|") else 0

    return f


def _cgroup(ev: Event, a: Any) -> Any:
    t = ev.thread
    if t is None or not t.cgroups:
        return None
    if a is None:
        return t.cgroups
    for line in t.cgroups.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and (a in parts[1].split(",") or (parts[0] == "0" and a)):
            return parts[2]
    return None


def _outputtime(ev: Event, _a: Any) -> Any:
    return _time_h(ev.ts)


def _buflen(fd_types: frozenset[str] | None, flag: str | None) -> Extract:
    """sysdig's evt.buflen.{file,net}[.in/.out] and evt.buflen.in/out: bytes moved by a read/write
    family exit on an fd of these types (None: any), in one direction (None: both)."""
    def f(ev: Event, _a: Any) -> Any:
        info = ev.info
        if info is None or not ("io_read" in info.flags or "io_write" in info.flags):
            return None
        if flag is not None and flag not in info.flags:
            return None
        if fd_types is not None:
            fd = ev.fd
            if fd is None or fd.type not in fd_types:
                return None
        return ev.io_bytes()

    return f


_FILE_FDS = frozenset({"file"})
_NET_FDS = frozenset({"ipv4", "ipv6"})


def _count_error_other(ev: Event, a: Any) -> Any:
    """1 for failed events that are not file, network or memory ones (sysdig's evt.count.error.other)."""
    if not _failed(ev, None):
        return 0
    info = ev.info
    return 0 if info and info.category in ("file", "io", "net", "memory") else 1


def _thread_cpu(ev: Event, _a: Any) -> Any:
    t = ev.thread
    return None if t is None or ev.evt != R.EVT_PROCINFO else t.cpu_pct


F = FieldType
_ROWS: list[FieldDef] = [
    # evt
    FieldDef("evt.num", F.UINT, "event number", lambda e, a: e.num),
    FieldDef("evt.time", F.STR, "event timestamp as a time string with nanoseconds",
             lambda e, a: _time_h(e.ts)),
    FieldDef("evt.time.s", F.STR, "event timestamp as a time string with no decimal",
             lambda e, a: time.strftime("%H:%M:%S", time.localtime(e.ts // 1_000_000_000))),
    FieldDef("evt.datetime", F.STR, "event timestamp as a time string that includes the date",
             lambda e, a: time.strftime("%Y-%m-%d ", time.localtime(e.ts // 1_000_000_000)) + _time_h(e.ts)),
    FieldDef("evt.rawtime", F.ABSTIME, "absolute event timestamp, ns from epoch", lambda e, a: e.ts),
    FieldDef("evt.rawtime.s", F.ABSTIME, "integer part of the event timestamp", lambda e, a: e.ts // 10**9),
    FieldDef("evt.rawtime.ns", F.ABSTIME, "fractional part of the event timestamp", lambda e, a: e.ts % 10**9),
    FieldDef("evt.outputtime", F.STR, "event timestamp as -t prints it", _outputtime),
    FieldDef("evt.reltime", F.RELTIME, "ns since the capture start",
             lambda e, a: e.ts - e.state.start_ts if e.state.start_ts else None),
    FieldDef("evt.latency", F.RELTIME, "delta between an exit event and its enter, in ns",
             lambda e, a: e.latency if e.direction and e.is_syscall else 0),
    FieldDef("evt.latency.s", F.RELTIME, "integer part of the latency", lambda e, a: e.latency // 10**9),
    FieldDef("evt.latency.ns", F.RELTIME, "fractional part of the latency", lambda e, a: e.latency % 10**9),
    FieldDef("evt.dir", F.STR, "event direction: > enter, < exit", lambda e, a: e.dir, cost=0),
    FieldDef("evt.type", F.STR, "event name, e.g. open", lambda e, a: e.type, cost=0),
    FieldDef("evt.type.is", F.BOOL, "1 if the event type is the argument",
             lambda e, a: e.type == a, arg="name"),
    FieldDef("syscall.type", F.STR, "the system call's name, for syscall events",
             lambda e, a: e.type if e.is_syscall else None, cost=0),
    FieldDef("evt.category", F.STR, "event category: file, net, process, memory...", _category),
    FieldDef("evt.cpu", F.INT, "CPU the event happened on", lambda e, a: e.cpu, cost=0),
    FieldDef("evt.args", F.STR, "all the event arguments as one string",
             lambda e, a: e.info_str(_default_opts()).rstrip(" ")),
    FieldDef("evt.info", F.STR, "the event's arguments, or decoded information for some events",
             lambda e, a: e.info_str(_default_opts()).rstrip(" ")),
    FieldDef("evt.arg", F.STR, "an argument by name (evt.arg.fd) or index (evt.arg[0]), as printed",
             _arg, arg="index_or_name"),
    FieldDef("evt.rawarg", F.INT, "an argument's raw value by name, for numeric compares", _rawarg,
             arg="name"),
    FieldDef("evt.res", F.STR, "SUCCESS, or the error name of a failed call", _res),
    FieldDef("evt.rawres", F.INT, "the return value as a number", _rawres, cost=0),
    FieldDef("evt.failed", F.BOOL, "true for calls that returned an error", _failed, cost=0),
    FieldDef("evt.buffer", F.BYTES, "the I/O buffer of read/write family events", _buffer),
    FieldDef("evt.buflen", F.UINT, "bytes moved by a read/write family event",
             lambda e, a: e.io_bytes() if _is_io("any")(e, a) else None),
    FieldDef("evt.buflen.in", F.UINT, "bytes read by a read family event", _buflen(None, "io_read")),
    FieldDef("evt.buflen.out", F.UINT, "bytes written by a write family event", _buflen(None, "io_write")),
    FieldDef("evt.buflen.file", F.UINT, "bytes read or written on a file", _buflen(_FILE_FDS, None)),
    FieldDef("evt.buflen.file.in", F.UINT, "bytes read from a file", _buflen(_FILE_FDS, "io_read")),
    FieldDef("evt.buflen.file.out", F.UINT, "bytes written to a file", _buflen(_FILE_FDS, "io_write")),
    FieldDef("evt.buflen.net", F.UINT, "bytes read or written on an IPv4/IPv6 socket", _buflen(_NET_FDS, None)),
    FieldDef("evt.buflen.net.in", F.UINT, "bytes read from an IPv4/IPv6 socket", _buflen(_NET_FDS, "io_read")),
    FieldDef("evt.buflen.net.out", F.UINT, "bytes written to an IPv4/IPv6 socket", _buflen(_NET_FDS, "io_write")),
    FieldDef("evt.is_io", F.BOOL, "true for events that read or write data", _is_io("any"), cost=0),
    FieldDef("evt.is_io_read", F.BOOL, "true for events that read data", _is_io("io_read"), cost=0),
    FieldDef("evt.is_io_write", F.BOOL, "true for events that write data", _is_io("io_write"), cost=0),
    FieldDef("evt.io_dir", F.STR, "r for reads, w for writes", _io_dir),
    FieldDef("evt.is_wait", F.BOOL, "true for events that make the thread wait", _is_io("wait"), cost=0),
    FieldDef("evt.is_open_read", F.BOOL, "true for opens for reading", _open_mode(0)),
    FieldDef("evt.is_open_write", F.BOOL, "true for opens for writing", _open_mode(1)),
    FieldDef("evt.count", F.UINT, "1 for every event (for chisels)", lambda e, a: 1, cost=0),
    FieldDef("evt.count.error", F.UINT, "1 for failed events", _count_error(None)),
    FieldDef("evt.count.error.file", F.UINT, "1 for failed file events", _count_error("file|io")),
    FieldDef("evt.count.error.net", F.UINT, "1 for failed network events", _count_error("net")),
    FieldDef("evt.count.error.memory", F.UINT, "1 for failed memory events", _count_error("memory")),
    FieldDef("evt.count.error.other", F.UINT, "1 for failed events that are not file, net or memory ones",
             _count_error_other),
    FieldDef("evt.count.exit", F.UINT, "1 for exit events", lambda e, a: 1 if e.direction else 0),
    # proc
    FieldDef("proc.pid", F.INT, "process id", lambda e, a: e.pid, cost=0, raw=True),
    FieldDef("proc.ppid", F.INT, "parent process id", _thr("ptid", 0)),
    FieldDef("proc.vpid", F.INT, "process id as seen in its pid namespace", _thr("vpid", -1)),
    FieldDef("proc.sid", F.INT, "session id", _thr("sid", -1)),
    FieldDef("proc.name", F.STR, "process name (comm)", _thr("comm", ""), raw=True),
    FieldDef("proc.exe", F.STR, "first command-line argument (argv[0])", _thr("exe", "")),
    FieldDef("proc.exepath", F.STR, "full path of the executable", _thr("exepath", "")),
    FieldDef("proc.args", F.STR, "command-line arguments after argv[0]",
             lambda e, a: " ".join(e.thread.args) if e.thread else None),
    FieldDef("proc.cmdline", F.STR, "name and arguments",
             lambda e, a: " ".join([e.thread.comm, *e.thread.args]) if e.thread else None),
    FieldDef("proc.exeline", F.STR, "argv[0] and arguments",
             lambda e, a: " ".join([e.thread.exe, *e.thread.args]) if e.thread else None),
    FieldDef("proc.cwd", F.STR, "current working directory", _thr("cwd", "")),
    FieldDef("proc.tty", F.INT, "controlling terminal, 0 if none", _thr("tty", -1)),
    FieldDef("proc.pname", F.STR, "parent's name", _pname),
    FieldDef("proc.pcmdline", F.STR, "parent's name and arguments", _pcmdline),
    FieldDef("proc.apid", F.INT, "pid of ancestor N (0 = self); without [N], any ancestor",
             _anc("pid"), arg="index?", multi=True),
    FieldDef("proc.aname", F.STR, "name of ancestor N (0 = self); without [N], any ancestor",
             _anc("comm"), arg="index?", multi=True),
    FieldDef("proc.loginshellid", F.INT, "pid of the oldest shell ancestor", _loginshellid),
    FieldDef("proc.duration", F.RELTIME, "ns since the process started",
             lambda e, a: e.ts - e.thread.start_ts if e.thread and e.thread.start_ts else None),
    FieldDef("proc.nthreads", F.UINT, "threads the process has", _nthreads),
    FieldDef("proc.fdopencount", F.UINT, "open fds of the process", _fdopencount),
    FieldDef("proc.fdlimit", F.INT, "maximum fds of the process", _thr("fdlimit", 0)),
    FieldDef("proc.vmsize", F.UINT, "virtual memory size, kB", _thr("vmsize_kb", 0)),
    FieldDef("proc.vmrss", F.UINT, "resident memory, kB", _thr("vmrss_kb", 0)),
    # thread
    FieldDef("thread.tid", F.INT, "thread id", lambda e, a: e.tid, cost=0, raw=True),
    FieldDef("thread.vtid", F.INT, "thread id as seen in its pid namespace", _thr("vtid", -1)),
    FieldDef("thread.ismain", F.BOOL, "true for the main thread", lambda e, a: e.tid == e.pid, cost=0),
    FieldDef("thread.cpu", F.DOUBLE, "CPU share of the thread in the last interval (procinfo events)",
             _thread_cpu),
    FieldDef("thread.vmsize", F.UINT, "virtual memory size of the thread's process, kB", _thr("vmsize_kb", 0)),
    FieldDef("thread.vmrss", F.UINT, "resident memory of the thread's process, kB", _thr("vmrss_kb", 0)),
    FieldDef("thread.vmsize.b", F.UINT, "virtual memory size of the thread's process, bytes",
             lambda e, a: e.thread.vmsize_kb * 1024 if e.thread and e.thread.vmsize_kb else None),
    FieldDef("thread.vmrss.b", F.UINT, "resident memory of the thread's process, bytes",
             lambda e, a: e.thread.vmrss_kb * 1024 if e.thread and e.thread.vmrss_kb else None),
    FieldDef("thread.cgroups", F.STR, "the thread's cgroups", lambda e, a: _cgroup(e, None)),
    FieldDef("thread.cgroup", F.STR, "the thread's cgroup of a subsystem", _cgroup, arg="name"),
    # fd
    FieldDef("fd.num", F.INT, "fd number", lambda e, a: e.fd_num(), cost=0),
    FieldDef("fd.type", F.STR, "file, directory, ipv4, ipv6, unix, pipe, event, signalfd, eventpoll...",
             _fdattr("type"), raw=True),
    FieldDef("fd.typechar", F.STR, "fd type as one letter (f, 4, 6, u, p, e...)",
             lambda e, a: e.fd.typechar if e.fd else None),
    FieldDef("fd.name", F.STR, "file path, or the socket tuple cip:cport->sip:sport", _fdattr("name"),
             raw=True),
    FieldDef("fd.directory", F.STR, "directory of a file fd", _fd_directory),
    FieldDef("fd.containerdirectory", F.STR, "container name + directory of a file fd",
             lambda e, a: f"{_container('name')(e, a)}:{d}" if (d := _fd_directory(e, a)) is not None else None),
    FieldDef("fd.filename", F.STR, "file name without the directory", _fd_filename),
    FieldDef("fd.ip", F.IPADDR, "either end's IP (filter only)", _fd_ip_any, multi=True, filter_only=True),
    FieldDef("fd.cip", F.IPADDR, "client IP", _sockattr("cip")),
    FieldDef("fd.sip", F.IPADDR, "server IP", _sockattr("sip")),
    FieldDef("fd.lip", F.IPADDR, "local IP", _lr(True, 0)),
    FieldDef("fd.rip", F.IPADDR, "remote IP", _lr(False, 0)),
    FieldDef("fd.port", F.PORT, "either end's port (filter only)", _fd_port_any, multi=True, filter_only=True),
    FieldDef("fd.cport", F.PORT, "client port", _sockattr("cport")),
    FieldDef("fd.sport", F.PORT, "server port", _sockattr("sport")),
    FieldDef("fd.lport", F.PORT, "local port", _lr(True, 1)),
    FieldDef("fd.rport", F.PORT, "remote port", _lr(False, 1)),
    FieldDef("fd.net", F.IPNET, "either end's network (filter only)", _fd_ip_any, multi=True,
             filter_only=True),
    FieldDef("fd.cnet", F.IPNET, "client network (filter only)", _sockattr("cip"), filter_only=True),
    FieldDef("fd.snet", F.IPNET, "server network (filter only)", _sockattr("sip"), filter_only=True),
    FieldDef("fd.lnet", F.IPNET, "local network (filter only)", _lr(True, 0), filter_only=True),
    FieldDef("fd.rnet", F.IPNET, "remote network (filter only)", _lr(False, 0), filter_only=True),
    FieldDef("fd.l4proto", F.STR, "tcp, udp, icmp or raw", _fdattr("l4proto"), raw=True),
    FieldDef("fd.sockfamily", F.STR, "ip or unix",
             lambda e, a: ({"ipv4": "ip", "ipv6": "ip", "unix": "unix"}.get(e.fd.type) if e.fd else None)),
    FieldDef("fd.is_server", F.BOOL, "true if this end is the server's",
             lambda e, a: e.fd.is_server if e.fd else None),
    FieldDef("fd.containername", F.STR, "container name + fd name",
             lambda e, a: f"{_container('name')(e, a)}:{e.fd.name}" if e.fd else None),
    # user, group
    FieldDef("user.uid", F.UINT, "user id", _user("uid")),
    FieldDef("user.name", F.STR, "user name", _user("name"), raw=True),
    FieldDef("user.homedir", F.STR, "home directory", _user("home")),
    FieldDef("user.shell", F.STR, "login shell", _user("shell")),
    FieldDef("user.loginuid", F.INT, "audit login uid", _thr("loginuid", -1)),
    FieldDef("user.loginname", F.STR, "audit login user name", _loginname),
    FieldDef("group.gid", F.UINT, "group id", _thr("gid", -1)),
    FieldDef("group.name", F.STR, "group name", _group),
    # container
    FieldDef("container.id", F.STR, "container id (12 chars), or host", _container("id"), raw=True),
    FieldDef("container.name", F.STR, "container name, or host", _container("name"), raw=True),
    FieldDef("container.image", F.STR, "container image", _container("image")),
    FieldDef("container.image.id", F.STR, "container image id", _container("image_id")),
    FieldDef("container.image.repository", F.STR, "image repository", _container("image_repository")),
    FieldDef("container.image.tag", F.STR, "image tag", _container("image_tag")),
    FieldDef("container.image.digest", F.STR, "image digest", _container("image_digest")),
    FieldDef("container.type", F.STR, "docker, containerd, cri-o, podman", _container("type")),
    FieldDef("container.privileged", F.BOOL, "true for privileged containers", _container("privileged")),
    FieldDef("container.label", F.STR, "a container label", _label("labels"), arg="name"),
    FieldDef("container.labels", F.STR, "all container labels", lambda e, a: _label("labels")(e, None)),
    # k8s
    FieldDef("k8s.pod.name", F.STR, "pod name", _container("pod_name")),
    FieldDef("k8s.pod.id", F.STR, "pod uid", _container("pod_uid")),
    FieldDef("k8s.pod.uid", F.STR, "pod uid", _container("pod_uid")),
    FieldDef("k8s.ns.name", F.STR, "pod namespace", _container("pod_namespace")),
    FieldDef("k8s.pod.label", F.STR, "a pod label", _label("pod_labels"), arg="name"),
    FieldDef("k8s.pod.labels", F.STR, "all pod labels", lambda e, a: _label("pod_labels")(e, None)),
]


def _default_opts() -> Any:
    """Filters and chisels see buffers rendered the default way; -A/-X only change printed lines
    (the Formatter renders evt.info with the run's options)."""
    from ..event import RenderOptions

    return RenderOptions()


def _event_type_values() -> dict[str, dict[str, Any]]:
    """Per event type name, the value of each field that depends on the event type alone."""
    from ..schema.events import event_ids, event_info, event_names

    out: dict[str, dict[str, Any]] = {k: {} for k in _BY_EVENT}
    for name in event_names():
        info = event_info(event_ids(name)[0])
        flags = info.flags if info else frozenset()
        out["evt.is_io"][name] = "io_read" in flags or "io_write" in flags
        out["evt.is_io_read"][name] = "io_read" in flags
        out["evt.is_io_write"][name] = "io_write" in flags
        out["evt.is_wait"][name] = "wait" in flags
        out["evt.category"][name] = info.category if info else None
    return out


_BY_EVENT = ("evt.is_io", "evt.is_io_read", "evt.is_io_write", "evt.is_wait", "evt.category")
_VALUES = _event_type_values()
_ROWS = [dataclasses.replace(r, by_event=_VALUES[r.name]) if r.name in _VALUES else r for r in _ROWS]

FIELDS = FieldTable(_ROWS)
