"""What live mode learns from /proc: the bootstrap of every thread and fd, and facts about one
thread or socket when an event needs them (exec, accept, connect).

Everything here reads the host's files through ``host_path``, so a debug pod with the host's
root mounted elsewhere sees the host.
"""

from __future__ import annotations

import ctypes
import os
import socket
import time
from typing import Any

from ..enrich.cgroup import container_id_from_cgroup
from ..enrich.hostroot import host_path
from ..event import plain_ip
from .state import State
from .tables import Fd, Group, Thread, User

_SYS_PIDFD_GETFD = 438
_libc = ctypes.CDLL(None, use_errno=True)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _boot_ns() -> int:
    """Boot time as epoch ns: the kernel's boot clock is shared with the host, even in a pod."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def read_thread(pid: int, tid: int) -> Thread | None:
    """One thread's facts from /proc, or None if it is gone."""
    base = host_path(f"/proc/{pid}/task/{tid}")
    stat = _read(f"{base}/stat")
    if not stat:
        return None
    # comm may hold spaces and parens: split around the last ')'.
    lpar, rpar = stat.find("("), stat.rfind(")")
    comm = stat[lpar + 1:rpar]
    rest = stat[rpar + 2:].split()
    ppid = int(rest[1])
    sid = int(rest[3])
    tty = int(rest[4])
    t = Thread(tid, pid, ptid=ppid, comm=comm, sid=sid, tty=tty)
    # starttime (field 22) is in clock ticks since boot: proc.duration needs it as epoch ns.
    t.start_ts = _boot_ns() + int(rest[19]) * 1_000_000_000 // _CLK_TCK
    cmdline = _read(host_path(f"/proc/{pid}/cmdline")).split("\0")
    if cmdline and cmdline[-1] == "":
        cmdline.pop()
    if cmdline:
        t.exe, t.args = cmdline[0], cmdline[1:]
    else:
        t.exe = comm
    t.exepath = _readlink(host_path(f"/proc/{pid}/exe"))
    t.cwd = _readlink(host_path(f"/proc/{pid}/cwd"))
    status = _read(f"{base}/status")
    for line in status.splitlines():
        key, _, val = line.partition(":")
        if key == "Uid":
            t.uid = int(val.split()[1])  # effective uid, like sysdig's user.uid
        elif key == "Gid":
            t.gid = int(val.split()[1])
        elif key == "NStgid":
            t.vpid = int(val.split()[-1])
        elif key == "NSpid":
            t.vtid = int(val.split()[-1])
        elif key == "VmSize":
            t.vmsize_kb = int(val.split()[0])
        elif key == "VmRSS":
            t.vmrss_kb = int(val.split()[0])
    loginuid = _read(host_path(f"/proc/{pid}/loginuid")).strip()
    t.loginuid = int(loginuid) if loginuid and loginuid != "4294967295" else -1
    cg = _read(host_path(f"/proc/{pid}/cgroup"))
    t.cgroups = cg.strip()
    t.container_id = container_id_from_cgroup(cg)[0] if cg else "host"
    limits = _read(host_path(f"/proc/{pid}/limits"))
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            parts = line.split()
            t.fdlimit = int(parts[3]) if parts[3].isdigit() else 0
    return t


def thread_facts(pid: int, tid: int) -> dict[str, Any] | None:
    """The fields a THREADINFO event carries after an exec or for a thread first seen."""
    t = read_thread(pid, tid)
    if t is None:
        return None
    facts = {f: getattr(t, f) for f in Thread.FIELDS if f not in ("tid", "pid")}
    # What could not be read (the task exiting: a zombie's cgroup file is empty, its status may
    # be gone) says nothing: the thread keeps what the state had (its container, its vtid) rather
    # than becoming the host's or losing its ids.
    for k, unknown in _UNREAD.items():
        if facts.get(k) == unknown:
            del facts[k]
    if "cgroups" not in facts:
        del facts["container_id"]
    return facts


_UNREAD = {"cgroups": "", "cwd": "", "exepath": "", "vtid": -1, "vpid": -1, "uid": -1, "gid": -1}


def _net_table(name: str, net: str = "/proc/net") -> dict[int, tuple[str, int, str, int, int]]:
    """inode -> (local ip, local port, remote ip, remote port, state) from /proc/net/tcp etc.
    (``net``: /proc/PID/net for the network namespace of PID)."""
    out: dict[int, tuple[str, int, str, int, int]] = {}
    text = _read(host_path(f"{net}/{name}"))
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        lip, lport = _hexaddr(parts[1])
        rip, rport = _hexaddr(parts[2])
        out[int(parts[9])] = (lip, lport, rip, rport, int(parts[3], 16))
    return out


def _hexaddr(s: str) -> tuple[str, int]:
    addr, port = s.split(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        # /proc prints IPv6 as four host-order 32-bit words.
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        ip = plain_ip(socket.inet_ntop(socket.AF_INET6, words))
    return ip, int(port, 16)


def _unix_table(net: str = "/proc/net") -> dict[int, str]:
    out: dict[int, str] = {}
    for line in _read(host_path(f"{net}/unix")).splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 7:
            out[int(parts[6])] = parts[7] if len(parts) > 7 else ""
    return out


TCP_LISTEN = 10


def listening(nets: dict[str, dict[int, tuple[str, int, str, int, int]]]) -> set[tuple[str, int]]:
    """(ip, port) of every listening TCP socket on the host."""
    return {(r[0], r[1]) for k in ("tcp", "tcp6") for r in nets[k].values() if r[4] == TCP_LISTEN}


def _serves(listen: set[tuple[str, int]], ip: str, port: int) -> bool:
    return (ip, port) in listen or ("0.0.0.0", port) in listen or ("::", port) in listen


def _socket_fd(num: int, ino: int, nets: dict[str, dict[int, tuple[str, int, str, int, int]]],
               unix: dict[int, str], listen: set[tuple[str, int]] | None = None) -> Fd:
    for kind, proto in (("tcp", "tcp"), ("udp", "udp"), ("tcp6", "tcp"), ("udp6", "udp")):
        row = nets[kind].get(ino)
        if row is None:
            continue
        lip, lport, rip, rport, st = row
        fd = Fd(num, "ipv6" if kind.endswith("6") and ":" in lip else "ipv4", l4proto=proto, ino=ino)
        if proto == "tcp" and st == TCP_LISTEN or (proto == "udp" and rport == 0):
            fd.set_server(lip, lport)
        else:
            # Client -> server: this end serves if a socket listens on its address; the peer serves
            # if one listens on the peer's (a loopback connection); else the lower port is the server.
            if listen is None:
                listen = listening(nets)
            if proto == "tcp" and _serves(listen, lip, lport):
                server = True
            elif proto == "tcp" and _serves(listen, rip, rport):
                server = False
            else:
                server = lport < rport
            if server:
                fd.set_tuple(rip, rport, lip, lport)
                fd.is_server = True
            else:
                fd.set_tuple(lip, lport, rip, rport)
                fd.is_server = False
        return fd
    if ino in unix:
        return Fd(num, "unix", unix[ino], ino=ino)
    return Fd(num, "unknown", ino=ino)


def _fd_from_link(num: int, link: str, nets: Any, unix: dict[int, str],
                  listen: set[tuple[str, int]] | None = None) -> Fd:
    if link.startswith("socket:["):
        return _socket_fd(num, int(link[8:-1]), nets, unix, listen)
    if link.startswith("pipe:["):
        return Fd(num, "pipe", "", ino=int(link[6:-1]))
    if link.startswith("anon_inode:"):
        kind = link[11:].strip("[]")
        mapping = {"eventfd": "event", "eventpoll": "eventpoll", "signalfd": "signalfd",
                   "inotify": "inotify", "timerfd": "timerfd", "bpf-map": "bpf", "bpf-prog": "bpf"}
        return Fd(num, mapping.get(kind, "unknown"), "")
    if link.startswith("/memfd:"):
        return Fd(num, "memfd", link[1:].removesuffix(" (deleted)"))
    if link.startswith("/"):
        try:
            isdir = os.path.isdir(host_path(link))
        except OSError:
            isdir = False
        return Fd(num, "directory" if isdir else "file", link)
    return Fd(num, "unknown", link)


def _nets(net: str = "/proc/net") -> dict[str, dict[int, tuple[str, int, str, int, int]]]:
    return {k: _net_table(k, net) for k in ("tcp", "udp", "tcp6", "udp6")}


class _NetView:
    """The socket tables of one network namespace, read once through a process inside it."""

    def __init__(self, net: str) -> None:
        self.nets = _nets(net)
        self.listen = listening(self.nets)
        self.unix = _unix_table(net)


def _netns(proc: str, pid: int) -> str:
    """The network namespace of ``pid`` (its ns/net link, "net:[4026531840]"), or "" if unknown."""
    return _readlink(f"{proc}/{pid}/ns/net") or ""


def bootstrap(state: State, skip_pid: int | None = None) -> None:
    """Fill the state with every thread and fd on the host, and its users and groups.

    Sockets are looked up in the tables of their process's own network namespace (a container's
    connections are not in the host's /proc/net), each namespace's read once."""
    proc = host_path("/proc")
    views: dict[str, _NetView] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == skip_pid:
            continue
        try:
            tids = [int(t) for t in os.listdir(f"{proc}/{pid}/task")]
        except OSError:
            continue
        leader = read_thread(pid, pid)
        if leader is None:
            continue
        for tid in tids:
            t = leader if tid == pid else read_thread(pid, tid)
            if t is not None:
                state.threads[tid] = t
        fds: dict[int, Fd] = {}
        fd_dir = f"{proc}/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            names = []
        view: _NetView | None = None
        for name in names:
            link = _readlink(f"{fd_dir}/{name}")
            if not link:
                continue
            if view is None and link.startswith("socket:["):
                ns = _netns(proc, pid)
                view = views.get(ns)
                if view is None:
                    view = views[ns] = _NetView(f"/proc/{pid}/net" if ns else "/proc/net")
            if view is not None:
                fds[int(name)] = _fd_from_link(int(name), link, view.nets, view.unix, view.listen)
            else:  # not a socket: no tables needed
                fds[int(name)] = _fd_from_link(int(name), link, {}, {})
        state.fds[pid] = fds
    load_users(state)
    state.version += 1


def load_users(state: State) -> None:
    for line in _read(host_path("/etc/passwd")).splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit():
            state.users[int(parts[2])] = User(int(parts[2]), parts[0], parts[5], parts[6])
    for line in _read(host_path("/etc/group")).splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            state.groups[int(parts[2])] = Group(int(parts[2]), parts[0])


def socket_facts(pid: int, fd: int) -> dict[str, Any] | None:
    """A connected or accepted socket's addresses, read through a copy of the fd (pidfd_getfd).

    Returns the FDINFO fields (client -> server orientation decided by the caller's role), or None
    when the process or the fd is already gone.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        local_fd = _libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if local_fd < 0:
            return None
        try:
            s = socket.socket(fileno=local_fd)
        except OSError:
            os.close(local_fd)
            return None
        try:
            if s.family not in (socket.AF_INET, socket.AF_INET6):
                return None
            local = s.getsockname()
            try:
                peer = s.getpeername()
            except OSError:
                peer = None
            proto = "tcp" if s.type == socket.SOCK_STREAM else "udp"
            return {"family": "ipv6" if s.family == socket.AF_INET6 else "ipv4", "l4proto": proto,
                    "local": (plain_ip(local[0]), local[1]),
                    "peer": (plain_ip(peer[0]), peer[1]) if peer else None}
        finally:
            s.close()
    finally:
        os.close(pidfd)
