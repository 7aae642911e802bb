"""The state tables: threads, their processes' fds, users and groups.

Rows are plain slotted objects; ``to_row``/``from_row`` turn them into msgpack-able lists for the
capture's table blocks, so a capture read elsewhere starts from the same state the live run had.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# fd.type names and their fd.typechar, as sysdig prints them.
FD_TYPECHARS = {
    "file": "f",
    "directory": "d",
    "ipv4": "4",
    "ipv6": "6",
    "unix": "u",
    "pipe": "p",
    "event": "e",
    "signalfd": "s",
    "eventpoll": "l",
    "inotify": "i",
    "timerfd": "t",
    "netlink": "n",
    "memfd": "m",
    "bpf": "b",
    "unknown": "o",
}


@dataclass(slots=True)
class Thread:
    tid: int
    pid: int
    ptid: int = 0  # parent process id (sysdig's proc.ppid)
    comm: str = ""
    exe: str = ""  # argv[0]
    exepath: str = ""
    args: list[str] = field(default_factory=list)
    cwd: str = ""
    uid: int = -1
    gid: int = -1
    loginuid: int = -1
    tty: int = 0
    vtid: int = -1
    vpid: int = -1
    sid: int = 0
    container_id: str = "host"
    cgroups: str = ""
    start_ts: int = 0
    fdlimit: int = 0
    vmsize_kb: int = 0
    vmrss_kb: int = 0
    # CPU accounting (procinfo): ticks seen at the last sample, and that sample's share of a CPU.
    cpu_ticks: int = -1
    cpu_pct: float = 0.0

    FIELDS = (
        "tid", "pid", "ptid", "comm", "exe", "exepath", "args", "cwd", "uid", "gid", "loginuid", "tty",
        "vtid", "vpid", "sid", "container_id", "cgroups", "start_ts", "fdlimit", "vmsize_kb", "vmrss_kb",
    )

    def to_row(self) -> list[Any]:
        return [getattr(self, f) for f in self.FIELDS]

    @classmethod
    def from_row(cls, row: list[Any]) -> Thread:
        if len(row) <= len(cls.FIELDS):
            return cls(*row)  # FIELDS are the first fields, in order (checked below)
        return cls(**dict(zip(cls.FIELDS, row, strict=False)))

    def fork(self, tid: int, pid: int) -> Thread:
        """The child of a clone/fork: inherits everything but its ids."""
        ptid = self.ptid if pid == self.pid else self.pid
        child = Thread.from_row(self.to_row())
        child.tid, child.pid, child.ptid = tid, pid, ptid
        child.vtid = child.vpid = -1
        child.cpu_ticks = -1
        return child


class ThreadTable(dict[int, Thread]):
    """Threads by tid, and the tids of each process, so an exec (which leaves one thread) or the
    end of a process finds its threads without a walk over every thread of the node.

    Every way of adding or removing an entry keeps the index; a thread whose pid changes in place
    must be told with ``moved``. C code reads it as the dict it is.
    """

    __slots__ = ("_by_pid",)

    def __init__(self) -> None:
        super().__init__()
        self._by_pid: dict[int, set[int]] = {}

    def __setitem__(self, tid: int, t: Thread) -> None:
        old = dict.get(self, tid)
        if old is not None and old.pid != t.pid:
            self._unindex(tid, old.pid)
        dict.__setitem__(self, tid, t)
        self._by_pid.setdefault(t.pid, set()).add(tid)

    def __delitem__(self, tid: int) -> None:
        t = dict.pop(self, tid)
        self._unindex(tid, t.pid)

    def pop(self, tid: int, *default: Any) -> Any:
        if not dict.__contains__(self, tid):
            return dict.pop(self, tid, *default)
        t = dict.pop(self, tid)
        self._unindex(tid, t.pid)
        return t

    def popitem(self) -> tuple[int, Thread]:
        tid, t = dict.popitem(self)
        self._unindex(tid, t.pid)
        return tid, t

    def setdefault(self, tid: int, t: Thread) -> Thread:
        if tid not in self:
            self[tid] = t
        return self[tid]

    def update(self, *args: Any, **kw: Any) -> None:
        for tid, t in dict(*args, **kw).items():
            self[tid] = t

    def clear(self) -> None:
        dict.clear(self)
        self._by_pid.clear()

    def moved(self, tid: int, old_pid: int) -> None:
        """Thread ``tid``'s pid was ``old_pid`` and was changed in place."""
        t = dict.get(self, tid)
        if t is not None and t.pid != old_pid:
            self._unindex(tid, old_pid)
            self._by_pid.setdefault(t.pid, set()).add(tid)

    def of_process(self, pid: int) -> list[int]:
        """The tids of process ``pid``'s threads."""
        get = dict.get
        return [tid for tid in self._by_pid.get(pid, ()) if (t := get(self, tid)) is not None and t.pid == pid]

    def has_process(self, pid: int) -> bool:
        return bool(self.of_process(pid))

    def _unindex(self, tid: int, pid: int) -> None:
        tids = self._by_pid.get(pid)
        if tids is not None:
            tids.discard(tid)
            if not tids:
                del self._by_pid[pid]


@dataclass(slots=True)
class Fd:
    num: int
    type: str = "unknown"
    name: str = ""  # path, or the socket tuple cip:cport->sip:sport
    l4proto: str = ""  # tcp | udp | icmp | raw
    cip: str = ""
    cport: int = 0
    sip: str = ""
    sport: int = 0
    is_server: bool | None = None  # this end is the server's
    flags: int = 0
    ino: int = 0

    FIELDS = ("num", "type", "name", "l4proto", "cip", "cport", "sip", "sport", "is_server", "flags", "ino")

    def to_row(self) -> list[Any]:
        return [getattr(self, f) for f in self.FIELDS]

    @classmethod
    def from_row(cls, row: list[Any]) -> Fd:
        if len(row) <= len(cls.FIELDS):
            return cls(*row)  # FIELDS are all the fields, in order (checked below)
        return cls(**dict(zip(cls.FIELDS, row, strict=False)))

    def copy(self) -> Fd:
        """Another fd with the same values (a dup, a forked child's table)."""
        return Fd(self.num, self.type, self.name, self.l4proto, self.cip, self.cport, self.sip, self.sport,
                  self.is_server, self.flags, self.ino)

    @property
    def typechar(self) -> str:
        return FD_TYPECHARS.get(self.type, "o")

    @property
    def tag(self) -> str:
        """sysdig's fd tag: <f>, <4t>, <6u>, <u>, <p>..."""
        if self.type in ("ipv4", "ipv6") and self.l4proto:
            return f"<{self.typechar}{self.l4proto[0]}>"
        return f"<{self.typechar}>"

    def set_tuple(self, cip: str, cport: int, sip: str, sport: int) -> None:
        self.cip, self.cport, self.sip, self.sport = cip, cport, sip, sport
        self.name = f"{_hostport(cip, cport)}->{_hostport(sip, sport)}"

    def set_server(self, ip: str, port: int) -> None:
        """A listening or bound socket: sysdig names it by its own address only."""
        self.sip, self.sport = ip, port
        self.is_server = True
        self.name = _hostport(ip, port)


# from_row builds rows positionally: the table columns are the dataclasses' first fields, in order.
assert tuple(f.name for f in fields(Thread))[:len(Thread.FIELDS)] == Thread.FIELDS
assert tuple(f.name for f in fields(Fd)) == Fd.FIELDS


def _hostport(ip: str, port: int) -> str:
    return f"{ip}:{port}"


@dataclass(slots=True)
class User:
    uid: int
    name: str
    home: str = ""
    shell: str = ""


@dataclass(slots=True)
class Group:
    gid: int
    name: str
