"""THE event table: every x86_64 syscall, and typed parameters for the ones troubleshooting needs.

Each typed row is one line of a small notation, parsed once at import:

    S(name, category, enter, exit, capture)

    enter/exit: parameters shown on the '>' and '<' lines, in order, as ``name:type@src[/fmt]``
        type  a PT value (fd, res, resfd, flags, path, buf, sockaddr, ...)
        src   a0..a5 (argument register), ret (return value), s0/s1 (payload segment),
              thread.X (the thread table after the event)
        fmt   the flag or enum table of flags/enum parameters, the dirfd of a path
    capture: what the probe copies from user memory, ``when seg=kind(arg[,len])``
        when  enter | exit;   seg  s0 | s1;   len  ret | aN (register) | *aN (int at pointer) | N

Rules (the probe, the decoder and old captures depend on them): parameters may only be appended;
capture kinds and event ids never change meaning. Bump SCHEMA_VERSION's minor for additions and
its major for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from .record import (
    DIR_ENTER,
    DIR_EXIT,
    EVT_ACCEPTED,
    EVT_BASE_OTHER,
    EVT_CONNECTED,
    EVT_CONTAINER,
    EVT_DROPS,
    EVT_FDINFO,
    EVT_MAX,
    EVT_PPM,
    EVT_PROCEXIT,
    EVT_PROCINFO,
    EVT_SWITCH,
    EVT_THREADINFO,
    NSYSCALLS,
    syscall_evt,
)
from .syscalls_x86_64 import SYSCALLS_X86_64
from .types import CK, PT

SCHEMA_VERSION: Final = (1, 1)  # 1.1: comm appended to clone/fork/vfork/clone3/prctl exits


@dataclass(frozen=True)
class Param:
    name: str
    type: PT
    src: str  # "a0".."a5", "ret", "s0", "s1", "thread.<attr>"
    fmt: str = ""


@dataclass(frozen=True)
class Capture:
    seg: int  # 0 or 1
    kind: CK
    arg: int  # register holding the pointer
    length: str = ""  # "ret", "aN", "*aN", a decimal number, or "" (kind decides)
    at_exit: bool = True


@dataclass(frozen=True)
class EventInfo:
    """One event type: a syscall (with its enter and exit) or an internal event."""

    name: str
    category: str
    nr: int = -1  # syscall number; -1 for non-syscall events
    enter: tuple[Param, ...] = ()
    exit: tuple[Param, ...] = ()
    captures: tuple[Capture, ...] = ()
    flags: frozenset[str] = field(default_factory=frozenset)

    def params(self, direction: int) -> tuple[Param, ...]:
        return self.exit if direction else self.enter


_PARAM_RE = re.compile(r"^(\w+):(\w+)@([\w.]+)(?:/(\w+))?$")
_CAP_RE = re.compile(r"^s([01])=(\w+)\(a(\d)(?:,(\*?a\d|ret|\d+))?\)$")


def _params(spec: str) -> tuple[Param, ...]:
    out = []
    for tok in spec.split():
        m = _PARAM_RE.match(tok)
        if not m:
            raise ValueError(f"bad parameter spec {tok!r}")
        out.append(Param(m[1], PT(m[2]), m[3], m[4] or ""))
    return tuple(out)


def _captures(spec: str) -> tuple[Capture, ...]:
    out = []
    when = "exit"
    for tok in spec.split():
        if tok in ("enter", "exit"):
            when = tok
            continue
        m = _CAP_RE.match(tok)
        if not m:
            raise ValueError(f"bad capture spec {tok!r}")
        out.append(Capture(int(m[1]), CK[m[2].upper()], int(m[3]), m[4] or "", when == "exit"))
    return tuple(out)


# Flags on events that change state (the parser and -F look at these).
CREATES_FD: Final = "creates_fd"
CLOSES_FD: Final = "closes_fd"
STATE: Final = "state"  # changes thread or fd state in some other way
IO_READ: Final = "io_read"
IO_WRITE: Final = "io_write"
WAIT: Final = "wait"

_ROWS: list[tuple[str, str, str, str, str, frozenset[str]]] = []


def S(name: str, cat: str, enter: str = "", exit: str = "", capture: str = "", *flags: str) -> None:
    _ROWS.append((name, cat, enter, exit, capture, frozenset(flags)))


_FD = "fd:fd@a0"
_RES = "res:res@ret"
_RESFD = "fd:resfd@ret"

# --- file I/O and metadata -------------------------------------------------------------------
S("open", "file", "", f"{_RESFD} name:path@s0 flags:flags@a1/open_flags mode:oct@a2", "exit s0=str(a0)",
  CREATES_FD)
S("openat", "file", "",
  f"{_RESFD} dirfd:dirfd@a0 name:path@s0/a0 flags:flags@a2/open_flags mode:oct@a3", "exit s0=str(a1)",
  CREATES_FD)
S("openat2", "file", "", f"{_RESFD} dirfd:dirfd@a0 name:path@s0/a0 how:openhow@s1",
  "exit s0=str(a1) s1=raw(a2,24)", CREATES_FD)
S("creat", "file", "", f"{_RESFD} name:path@s0 mode:oct@a1", "exit s0=str(a0)", CREATES_FD)
S("read", "io", f"{_FD} size:uint@a2", f"{_RES} data:buf@s0", "exit s0=buf(a1,ret)", IO_READ)
S("write", "io", f"{_FD} size:uint@a2", f"{_RES} data:buf@s0", "exit s0=buf(a1,ret)", IO_WRITE)
S("pread64", "io", f"{_FD} size:uint@a2 pos:i64@a3", f"{_RES} data:buf@s0", "exit s0=buf(a1,ret)", IO_READ)
S("pwrite64", "io", f"{_FD} size:uint@a2 pos:i64@a3", f"{_RES} data:buf@s0", "exit s0=buf(a1,ret)", IO_WRITE)
S("readv", "io", _FD, f"{_RES} data:buf@s0", "exit s0=iov(a1,ret)", IO_READ)
S("writev", "io", _FD, f"{_RES} data:buf@s0", "exit s0=iov(a1,ret)", IO_WRITE)
S("preadv", "io", f"{_FD} pos:i64@a3", f"{_RES} data:buf@s0", "exit s0=iov(a1,ret)", IO_READ)
S("pwritev", "io", f"{_FD} pos:i64@a3", f"{_RES} data:buf@s0", "exit s0=iov(a1,ret)", IO_WRITE)
S("close", "file", _FD, _RES, "", CLOSES_FD)
S("dup", "file", _FD, _RESFD, "", CREATES_FD)
S("dup2", "file", f"{_FD} newfd:int@a1", _RESFD, "", CREATES_FD)
S("dup3", "file", f"{_FD} newfd:int@a1 flags:flags@a2/open_flags", _RESFD, "", CREATES_FD)
S("fcntl", "file", f"{_FD} cmd:enum@a1/fcntl_cmds", _RES, "", CREATES_FD)
S("lseek", "file", f"{_FD} offset:i64@a1 whence:enum@a2/whence", _RES)
S("stat", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)")
S("lstat", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)")
S("fstat", "file", _FD, _RES)
S("newfstatat", "file", "", f"{_RES} dirfd:dirfd@a0 path:path@s0/a0 flags:flags@a3/at_flags",
  "exit s0=str(a1)")
S("statx", "file", "", f"{_RES} dirfd:dirfd@a0 path:path@s0/a0 flags:flags@a2/at_flags mask:hex@a3",
  "exit s0=str(a1)")
S("access", "file", "", f"{_RES} name:path@s0 mode:flags@a1/access_mode", "exit s0=str(a0)")
S("faccessat", "file", "", f"{_RES} dirfd:dirfd@a0 name:path@s0/a0 mode:flags@a2/access_mode",
  "exit s0=str(a1)")
S("faccessat2", "file", "", f"{_RES} dirfd:dirfd@a0 name:path@s0/a0 mode:flags@a2/access_mode",
  "exit s0=str(a1)")
S("readlink", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)")
S("readlinkat", "file", "", f"{_RES} dirfd:dirfd@a0 path:path@s0/a0", "exit s0=str(a1)")
S("unlink", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)")
S("unlinkat", "file", "", f"{_RES} dirfd:dirfd@a0 name:path@s0/a0 flags:flags@a2/at_flags",
  "exit s0=str(a1)")
S("rename", "file", "", f"{_RES} oldpath:path@s0 newpath:path@s1", "exit s0=str(a0) s1=str(a1)")
S("renameat", "file", "",
  f"{_RES} olddirfd:dirfd@a0 oldpath:path@s0/a0 newdirfd:dirfd@a2 newpath:path@s1/a2",
  "exit s0=str(a1) s1=str(a3)")
S("renameat2", "file", "",
  f"{_RES} olddirfd:dirfd@a0 oldpath:path@s0/a0 newdirfd:dirfd@a2 newpath:path@s1/a2 "
  "flags:flags@a4/rename_flags", "exit s0=str(a1) s1=str(a3)")
S("mkdir", "file", "", f"{_RES} path:path@s0 mode:oct@a1", "exit s0=str(a0)")
S("mkdirat", "file", "", f"{_RES} dirfd:dirfd@a0 path:path@s0/a0 mode:oct@a2", "exit s0=str(a1)")
S("rmdir", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)")
S("chmod", "file", "", f"{_RES} filename:path@s0 mode:oct@a1", "exit s0=str(a0)")
S("fchmod", "file", f"{_FD} mode:oct@a1", _RES)
S("fchmodat", "file", "", f"{_RES} dirfd:dirfd@a0 filename:path@s0/a0 mode:oct@a2", "exit s0=str(a1)")
S("chown", "file", "", f"{_RES} path:path@s0 uid:uid@a1 gid:gid@a2", "exit s0=str(a0)")
S("lchown", "file", "", f"{_RES} path:path@s0 uid:uid@a1 gid:gid@a2", "exit s0=str(a0)")
S("fchown", "file", f"{_FD} uid:uid@a1 gid:gid@a2", _RES)
S("fchownat", "file", "", f"{_RES} dirfd:dirfd@a0 pathname:path@s0/a0 uid:uid@a2 gid:gid@a3",
  "exit s0=str(a1)")
S("truncate", "file", "", f"{_RES} path:path@s0 length:uint@a1", "exit s0=str(a0)")
S("ftruncate", "file", f"{_FD} length:uint@a1", _RES)
S("symlink", "file", "", f"{_RES} target:str@s0 linkpath:path@s1", "exit s0=str(a0) s1=str(a1)")
S("symlinkat", "file", "", f"{_RES} target:str@s0 linkdirfd:dirfd@a1 linkpath:path@s1/a1",
  "exit s0=str(a0) s1=str(a2)")
S("link", "file", "", f"{_RES} oldpath:path@s0 newpath:path@s1", "exit s0=str(a0) s1=str(a1)")
S("linkat", "file", "",
  f"{_RES} olddir:dirfd@a0 oldpath:path@s0/a0 newdir:dirfd@a2 newpath:path@s1/a2 flags:flags@a4/at_flags",
  "exit s0=str(a1) s1=str(a3)")
S("getdents64", "file", _FD, _RES)
S("getdents", "file", _FD, _RES)
S("fsync", "file", _FD, _RES)
S("fdatasync", "file", _FD, _RES)
S("flock", "file", f"{_FD} operation:flags@a1/flock_ops", _RES)
S("memfd_create", "file", "", f"{_RESFD} name:str@s0 flags:hex@a1", "exit s0=str(a0)", CREATES_FD)

# --- network -----------------------------------------------------------------------------------
S("socket", "net", "domain:enum@a0/socket_family type:flags@a1/socket_type proto:int@a2", _RESFD, "",
  CREATES_FD)
S("socketpair", "net", "domain:enum@a0/socket_family type:flags@a1/socket_type proto:int@a2",
  f"{_RES} fds:fdpair@s0", "exit s0=raw(a3,8)", CREATES_FD)
S("bind", "net", _FD, f"{_RES} addr:sockaddr@s0", "exit s0=sockaddr(a1,a2)", STATE)
S("listen", "net", f"{_FD} backlog:int@a1", _RES, "", STATE)
S("connect", "net", f"{_FD} addr:sockaddr@s0", f"{_RES} tuple:tuple@a0 fd:fd@a0",
  "enter s0=sockaddr(a1,a2)", STATE)
S("accept", "net", "", f"{_RESFD} tuple:tuple@ret", "exit s0=sockaddr_plen(a1,*a2)", CREATES_FD)
S("accept4", "net", "flags:flags@a3/accept_flags", f"{_RESFD} tuple:tuple@ret",
  "exit s0=sockaddr_plen(a1,*a2)", CREATES_FD)
S("sendto", "net", f"{_FD} size:uint@a2", f"{_RES} data:buf@s0 addr:sockaddr@s1",
  "exit s0=buf(a1,ret) s1=sockaddr(a4,a5)", IO_WRITE)
S("recvfrom", "net", f"{_FD} size:uint@a2", f"{_RES} data:buf@s0 addr:sockaddr@s1",
  "exit s0=buf(a1,ret) s1=sockaddr_plen(a4,*a5)", IO_READ)
S("sendmsg", "net", _FD, f"{_RES} addr:sockaddr@s0 data:buf@s1", "exit s0=msg(a1,ret)", IO_WRITE)
S("recvmsg", "net", _FD, f"{_RES} addr:sockaddr@s0 data:buf@s1", "exit s0=msg(a1,ret)", IO_READ)
S("sendmmsg", "net", f"{_FD} vlen:uint@a2", f"{_RES} addr:sockaddr@s0 data:buf@s1", "exit s0=mmsg(a1)",
  IO_WRITE)
S("recvmmsg", "net", f"{_FD} vlen:uint@a2", f"{_RES} addr:sockaddr@s0 data:buf@s1", "exit s0=mmsg(a1)",
  IO_READ)
S("shutdown", "net", f"{_FD} how:enum@a1/shutdown_how", _RES)
S("setsockopt", "net", f"{_FD} level:int@a1 optname:int@a2", f"{_RES} optlen:uint@a4")
S("getsockopt", "net", f"{_FD} level:int@a1 optname:int@a2", _RES)
S("getsockname", "net", _FD, f"{_RES} addr:sockaddr@s0", "exit s0=sockaddr_plen(a1,*a2)")
S("getpeername", "net", _FD, f"{_RES} addr:sockaddr@s0", "exit s0=sockaddr_plen(a1,*a2)")

# --- process -----------------------------------------------------------------------------------
# The comm at exit names a child that runs (and may exit) before its parent's clone returns.
S("clone", "process", "flags:flags@a0/clone_flags", f"{_RES} flags:flags@a0/clone_flags comm:str@s0",
  "exit s0=comm(a0)", STATE)
S("clone3", "process", "", f"{_RES} flags:u64@s0 comm:str@s1", "exit s0=raw(a0,8) s1=comm(a0)", STATE)
S("fork", "process", "", f"{_RES} comm:str@s0", "exit s0=comm(a0)", STATE)
S("vfork", "process", "", f"{_RES} comm:str@s0", "exit s0=comm(a0)", STATE)
S("execve", "process", "filename:path@s0 args:argv@s1",
  f"{_RES} exe:state@thread.exe args:state@thread.args tid:state@thread.tid pid:state@thread.pid "
  "ptid:state@thread.ptid cwd:state@thread.cwd comm:str@s0",
  "enter s0=str(a0) s1=argv(a1) exit s0=comm(a0)", STATE)
S("execveat", "process", "dirfd:dirfd@a0 pathname:path@s0/a0 args:argv@s1 flags:flags@a4/at_flags",
  f"{_RES} exe:state@thread.exe args:state@thread.args tid:state@thread.tid pid:state@thread.pid "
  "ptid:state@thread.ptid cwd:state@thread.cwd comm:str@s0",
  "enter s0=str(a1) s1=argv(a2) exit s0=comm(a0)", STATE)
S("exit", "process", "status:int@a0", "", "", STATE)
S("exit_group", "process", "status:int@a0", "", "", STATE)
S("kill", "signal", "pid:pid@a0 sig:signal@a1", _RES)
S("tkill", "signal", "tid:pid@a0 sig:signal@a1", _RES)
S("tgkill", "signal", "pid:pid@a0 tid:pid@a1 sig:signal@a2", _RES)
S("wait4", "process", "pid:pid@a0 options:hex@a2", f"{_RES} status:hex@s0", "exit s0=raw(a1,4)", WAIT)
S("waitid", "process", "which:int@a0 upid:pid@a1 options:hex@a3", _RES, "", WAIT)
for _n in ("setuid", "setfsuid"):
    S(_n, "user", "uid:uid@a0", _RES, "", STATE)
for _n in ("setgid", "setfsgid"):
    S(_n, "user", "gid:gid@a0", _RES, "", STATE)
S("setreuid", "user", "ruid:uid@a0 euid:uid@a1", _RES, "", STATE)
S("setregid", "user", "rgid:gid@a0 egid:gid@a1", _RES, "", STATE)
S("setresuid", "user", "ruid:uid@a0 euid:uid@a1 suid:uid@a2", _RES, "", STATE)
S("setresgid", "user", "rgid:gid@a0 egid:gid@a1 sgid:gid@a2", _RES, "", STATE)
S("setgroups", "user", "size:uint@a0", _RES)
# The comm at exit is the new name after PR_SET_NAME, even if the thread is gone before /proc is read.
S("prctl", "process", "option:enum@a0/prctl_ops arg2:hex@a1", f"{_RES} comm:str@s0", "exit s0=comm(a0)", STATE)
S("setns", "process", f"{_FD} nstype:flags@a1/clone_flags", _RES)
S("unshare", "process", "flags:flags@a0/clone_flags", _RES)
S("chroot", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)", STATE)
S("chdir", "file", "", f"{_RES} path:path@s0", "exit s0=str(a0)", STATE)
S("fchdir", "file", _FD, _RES, "", STATE)

# --- memory ------------------------------------------------------------------------------------
S("mmap", "memory",
  "addr:hex@a0 length:uint@a1 prot:flags@a2/prot_flags flags:flags@a3/mmap_flags fd:fd@a4 offset:uint@a5",
  "res:hex@ret")
S("munmap", "memory", "addr:hex@a0 length:uint@a1", _RES)
S("mprotect", "memory", "addr:hex@a0 length:uint@a1 prot:flags@a2/prot_flags", _RES)
S("brk", "memory", "addr:hex@a0", "res:hex@ret")

# --- waiting and event fds ---------------------------------------------------------------------
S("poll", "wait", "nfds:uint@a1 timeout:int@a2", _RES, "", WAIT)
S("ppoll", "wait", "nfds:uint@a1", _RES, "", WAIT)
S("select", "wait", "nfds:int@a0", _RES, "", WAIT)
S("pselect6", "wait", "nfds:int@a0", _RES, "", WAIT)
S("epoll_create", "wait", "size:int@a0", _RESFD, "", CREATES_FD)
S("epoll_create1", "wait", "flags:flags@a0/open_flags", _RESFD, "", CREATES_FD)
S("epoll_ctl", "wait", "epfd:fd@a0 op:enum@a1/epoll_ops fd:fd@a2", _RES)
S("epoll_wait", "wait", "epfd:fd@a0 maxevents:int@a2 timeout:int@a3", _RES, "", WAIT)
S("epoll_pwait", "wait", "epfd:fd@a0 maxevents:int@a2 timeout:int@a3", _RES, "", WAIT)
S("epoll_pwait2", "wait", "epfd:fd@a0 maxevents:int@a2", _RES, "", WAIT)
S("eventfd", "wait", "initval:uint@a0", _RESFD, "", CREATES_FD)
S("eventfd2", "wait", "initval:uint@a0 flags:flags@a1/open_flags", _RESFD, "", CREATES_FD)
S("signalfd", "wait", f"{_FD}", _RESFD, "", CREATES_FD)
S("signalfd4", "wait", f"{_FD} flags:flags@a3/open_flags", _RESFD, "", CREATES_FD)
S("timerfd_create", "wait", "clockid:int@a0 flags:flags@a1/open_flags", _RESFD, "", CREATES_FD)
S("inotify_init", "wait", "", _RESFD, "", CREATES_FD)
S("inotify_init1", "wait", "flags:flags@a0/open_flags", _RESFD, "", CREATES_FD)
S("inotify_add_watch", "file", "", f"{_RES} fd:fd@a0 path:path@s0 mask:hex@a2", "exit s0=str(a1)")
S("pipe", "ipc", "", f"{_RES} fds:fdpair@s0", "exit s0=raw(a0,8)", CREATES_FD)
S("pipe2", "ipc", "flags:flags@a1/open_flags", f"{_RES} fds:fdpair@s0", "exit s0=raw(a0,8)", CREATES_FD)
S("nanosleep", "time", "", _RES, "", WAIT)
S("futex", "ipc", "addr:hex@a0 op:int@a1 val:uint@a2", _RES, "", WAIT)

# --- misc --------------------------------------------------------------------------------------
# Not I/O for the evt.is_io family: PPM's sendfile neither reads from nor writes to an fd
# (no EF_READS_FROM_FD or EF_WRITES_TO_FD), so sysdig's filters and chisels pass it by.
S("sendfile", "io", "out_fd:fd@a0 in_fd:fd@a1 size:uint@a3", _RES)
S("splice", "io", "fd_in:fd@a0 fd_out:fd@a2 size:uint@a4 flags:hex@a5", _RES)
S("ioctl", "io", f"{_FD} request:hex@a1 argument:hex@a2", _RES)
S("ptrace", "process", "request:int@a0 pid:pid@a1", _RES)
S("mount", "file", "", f"{_RES} dev:str@s0 dir:path@s1 flags:hex@a3", "exit s0=str(a0) s1=str(a1)")
S("umount2", "file", "", f"{_RES} name:path@s0 flags:hex@a1", "exit s0=str(a0)")
S("bpf", "system", "cmd:int@a0", _RES)
S("getpid", "process", "", _RES)
S("gettid", "process", "", _RES)
S("getuid", "user", "", _RES)
S("geteuid", "user", "", _RES)


def _build() -> tuple[dict[str, int], list[EventInfo | None]]:
    by_name = {name: nr for nr, name in SYSCALLS_X86_64.items()}
    table: list[EventInfo | None] = [None] * NSYSCALLS
    for nr, name in SYSCALLS_X86_64.items():
        table[nr] = EventInfo(name, "other", nr)
    for name, cat, enter, exit_, capture, flags in _ROWS:
        nr = by_name[name]
        table[nr] = EventInfo(name, cat, nr, _params(enter), _params(exit_), _captures(capture), flags)
    return by_name, table


SYSCALL_NR, SYSCALLS = _build()

# Events that are not syscalls. Internal ones (state facts, made in user space or by the probe)
# are hidden unless asked for (-D).
OTHER_EVENTS: Final[dict[int, EventInfo]] = {
    EVT_PROCEXIT: EventInfo("procexit", "process", exit=(Param("status", PT.INT, "a0"),)),
    EVT_CONNECTED: EventInfo("connected", "internal", enter=(Param("fd", PT.FD, "a0"),)),
    EVT_ACCEPTED: EventInfo("accepted", "internal", enter=(Param("fd", PT.FD, "a0"),)),
    EVT_SWITCH: EventInfo("switch", "scheduler", enter=(Param("next", PT.PID, "a0"),)),
    EVT_PPM: EventInfo("ppm", "internal"),
    EVT_THREADINFO: EventInfo("threadinfo", "internal"),
    EVT_FDINFO: EventInfo("fdinfo", "internal"),
    EVT_PROCINFO: EventInfo("procinfo", "internal"),
    EVT_CONTAINER: EventInfo("container", "internal"),
    EVT_DROPS: EventInfo("drops", "internal"),
}
INTERNAL_EVENTS: Final = frozenset(e for e, i in OTHER_EVENTS.items() if i.category == "internal")


def event_info(evt: int) -> EventInfo | None:
    if evt < EVT_BASE_OTHER:
        return SYSCALLS[evt >> 1]
    return OTHER_EVENTS.get(evt)


def event_name(evt: int) -> str:
    info = event_info(evt)
    if info is not None:
        return info.name
    return f"syscall_{evt >> 1}" if evt < EVT_BASE_OTHER else f"event_{evt}"


def event_ids(name: str) -> list[int]:
    """All event ids (enter and exit) of an event type name, for evt.type filters and pushdown."""
    nr = SYSCALL_NR.get(name)
    if nr is not None:
        return [syscall_evt(nr, DIR_ENTER), syscall_evt(nr, DIR_EXIT)]
    return [e for e, i in OTHER_EVENTS.items() if i.name == name]


def _fd_source(info: EventInfo, direction: int) -> str:
    """Where an event's fd (fd.*) comes from: its own 'fd' argument, the new fd it returns, or for
    an exit the 'fd' argument of its enter (the registers are the same)."""
    for p in info.params(direction):
        if p.type is PT.FD and p.name == "fd":
            return p.src
        if p.type is PT.RESFD:
            return "ret"
    if direction:
        for p in info.enter:
            if p.type is PT.FD and p.name == "fd":
                return p.src
    return ""


FD_NONE: Final = 255
FD_RET: Final = 6


def _fd_sources() -> bytes:
    regs = bytearray([FD_NONE]) * EVT_MAX
    for info in SYSCALLS:
        if info is None:
            continue
        for direction in (0, 1):
            src = _fd_source(info, direction)
            if src:
                regs[syscall_evt(info.nr, direction)] = FD_RET if src == "ret" else int(src[1])
    return bytes(regs)


# Event id -> the argument register holding the event's fd, FD_RET, or FD_NONE.
FD_REGS: Final = _fd_sources()


def event_names() -> list[str]:
    return sorted({*SYSCALL_NR, *(i.name for i in OTHER_EVENTS.values())})
