"""State kept current from events: threads, fds, users, containers.

``apply`` is called for every state-changing event, before the filter sees it, in the order of the
stream; live and offline replay the same stream (internal events carry what live mode learned from
/proc and the runtime), so both reach the same state.
"""

from __future__ import annotations

import posixpath
import socket
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import msgpack

from ..capture.scap.state import apply_ppm
from ..event import Event, plain_ip, resolve_in, resolve_path, s32, sockaddr_parts
from ..schema import record as R
from ..schema import tracepoints as TP
from ..schema.events import SYSCALL_NR
from .tables import Fd, Group, Thread, ThreadTable, User

_NR = SYSCALL_NR
O_DIRECTORY = 0o200000
O_CLOEXEC = 0o2000000
_CLOSES = frozenset({R.syscall_evt(SYSCALL_NR["close"], R.DIR_EXIT)})
CLONE_THREAD = 0x10000
CLONE_PARENT = 0x8000
CLONE_NEWPID = 0x20000000
EINPROGRESS = 115
PR_SET_NAME = 15
USER_HZ = 100

_THREAD_FIELDS = frozenset(Thread.FIELDS)  # what a thread info record may set
_FD_FIELDS = frozenset(Fd.FIELDS)
_SOCK_TYPES = {1: "tcp", 2: "udp", 3: "raw", 5: "tcp"}
_FAMILIES = {2: "ipv4", 10: "ipv6", 1: "unix", 16: "netlink"}


def _exit(name: str) -> int:
    return R.syscall_evt(_NR[name], R.DIR_EXIT)


_EXEC_ENTERS = frozenset(R.syscall_evt(_NR[n], R.DIR_ENTER) for n in ("execve", "execveat"))
_CLONE_EXIT = _exit("clone")
_CLONE3_EXIT = _exit("clone3")
CLONE_ENTERS = frozenset(R.syscall_evt(_NR[n], R.DIR_ENTER) for n in ("clone", "clone3", "fork", "vfork"))
# The events State.apply_raw takes straight from their records' values, beside every syscall enter;
# their handlers take (evt, tid, pid, ts, ret, args, seg0, seg1).
RAW_EVENTS = frozenset({_exit("prctl"), _exit("fcntl"), R.EVT_PROCEXIT, R.EVT_THREADINFO,
                       *(_exit(n) for n in ("clone", "clone3", "fork", "vfork", "execve", "execveat"))})
RawHandler = Callable[[int, int, int, int, int, tuple[int, ...], bytes, bytes], None]


def _comm(seg: bytes) -> str:
    """The task's comm the probe recorded at the exit of clone, fork, vfork, clone3 and prctl."""
    return seg.split(b"\0", 1)[0].decode(errors="replace")


def _clone_flags(evt: int, args: tuple[int, ...], seg0: bytes) -> int:
    """The clone flags of a clone-family exit (fork and vfork have none)."""
    if evt == _CLONE_EXIT:
        return int(args[0])
    if evt == _CLONE3_EXIT:
        return int.from_bytes(seg0[:8] or b"\0", "little")  # struct clone_args starts with them
    return 0


def _in_child_ns(t: Thread) -> bool:
    """The thread is in a child pid namespace (a container): its ids there differ from the host's."""
    return t.vtid != t.tid and (t.vtid > 0 or t.container_id != "host")


class State:
    """Threads by tid, fds by (pid, fd), users, groups and container metadata by id."""

    def __init__(self) -> None:
        self.threads = ThreadTable()
        self.fds: dict[int, dict[int, Fd]] = {}
        self.users: dict[int, User] = {}
        self.groups: dict[int, Group] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.start_ts = 0  # first event's time: evt.reltime counts from it
        # Bumped by every change that may alter a thread or fd in place (everything but the
        # scanner's fast path, which only adds and removes fds): caches of derived values check it.
        self.version = 0
        self._pending: dict[int, tuple[int, bytes, bytes]] = {}  # tid -> (enter evt, seg0, seg1)
        self._enter_ts: dict[int, int] = {}
        self._procinfo_ts: dict[int, int] = {}
        self._reap: list[int] = []
        # Called before exited threads are forgotten: the metrics name their last counts then.
        self.before_reap: Callable[[], None] | None = None
        # Forks in a container, waiting for their other half (see _ns_parent).
        self._ns_clones: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        self._ns_orphans: dict[tuple[int, ...], list[int]] = {}
        # Host threads inside a clone-family call: tid -> (enter event, arguments). A child whose
        # own return comes before its parent's is paired by them (see _host_child).
        self._forking: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._adopted: set[int] = set()  # children set up that way, their parent's return not seen yet
        # Called after a thread's name/container may have changed (the scanner's thread cache).
        self.on_thread_change: Callable[[int], None] | None = None
        self._handlers = self._build_handlers()
        self._raw_handlers: dict[int, RawHandler] = {
            _exit("prctl"): self._prctl, _exit("fcntl"): self._fcntl, R.EVT_PROCEXIT: self._procexit,
            R.EVT_THREADINFO: self._threadinfo}
        for n in ("clone", "clone3", "fork", "vfork"):
            self._raw_handlers[_exit(n)] = self._clone
        for n in ("execve", "execveat"):
            self._raw_handlers[_exit(n)] = self._exec
        assert set(self._raw_handlers) == RAW_EVENTS

    # --- lookups -----------------------------------------------------------------------------
    def fd(self, pid: int, num: int) -> Fd | None:
        table = self.fds.get(pid)
        return table.get(num) if table else None

    def thread(self, tid: int, pid: int) -> Thread:
        """The thread, created bare if this is the first we hear of it."""
        t = self.threads.get(tid)
        if t is None:
            leader = self.threads.get(pid)
            t = leader.fork(tid, pid) if leader is not None and tid != pid else Thread(tid, pid)
            if leader is not None and tid != pid:
                t.ptid = leader.ptid
                if leader.vtid == leader.tid:
                    t.vtid, t.vpid = tid, pid  # the host's pid namespace: same ids
            self.threads[tid] = t
        return t

    def user_name(self, uid: int) -> str | None:
        u = self.users.get(uid)
        return u.name if u else None

    # --- events ------------------------------------------------------------------------------
    def note_enter(self, ev: Event) -> None:
        """Remember an enter event's time (evt.latency) and payload (for its exit)."""
        self.enter_raw(ev.evt, ev.tid, ev.ts, ev.seg0, ev.seg1, ev.args)

    def enter_raw(self, evt: int, tid: int, ts: int, seg0: bytes, seg1: bytes, args: tuple[int, ...]) -> None:
        """note_enter straight from the record's values (the state lane: no Event)."""
        self._enter_ts[tid] = ts
        if seg0 or seg1:
            self._pending[tid] = (evt, seg0, seg1)
        if evt in CLONE_ENTERS:
            self._forking[tid] = (evt, args)

    def apply_raw(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
                  seg1: bytes) -> int:
        """``apply`` straight from a record's values (the state lane: no Event), for a syscall
        enter or an event of RAW_EVENTS, not read from a .scap file. Returns its evt.latency."""
        self.version += 1
        if evt < R.EVT_BASE_OTHER and not evt & 1:
            self.enter_raw(evt, tid, ts, seg0, seg1, args)
            return 0
        latency = 0
        if evt < R.EVT_BASE_OTHER:
            ts0 = self._enter_ts.pop(tid, 0)
            if ts0:
                latency = ts - ts0
        self._raw_handlers[evt](evt, tid, pid, ts, ret, args, seg0, seg1)
        return latency

    def apply(self, ev: Event) -> None:
        self.version += 1
        evt = ev.evt
        if evt < R.EVT_BASE_OTHER and not evt & 1:
            self.note_enter(ev)
            return
        if evt < R.EVT_BASE_OTHER:
            ts = self._enter_ts.pop(ev.tid, 0)
            if ts:
                ev.latency = ev.ts - ts
        if ev.ppm is not None and evt in _CLOSES:
            _ = ev.fd  # a scap event names the fd it closes, as libsinsp does: look it up first
        h = self._handlers.get(evt)
        if h is not None:
            h(ev)
            ev.thread = self.threads.get(ev.tid)
        if ev.ppm is not None:
            apply_ppm(self, ev)  # what a .scap event says beyond the record (capture/scap/state.py)
            ev.thread = self.threads.get(ev.tid)

    def exit_latency(self, ev: Event) -> None:
        """For exits that change no state: pair with the enter for evt.latency."""
        ts = self._enter_ts.pop(ev.tid, 0)
        if ts:
            ev.latency = ev.ts - ts

    def reap(self) -> None:
        """Forget threads that exited (kept until now so their procexit could still be shown)."""
        if not self._reap:
            return
        self.version += 1
        if self.before_reap is not None:
            self.before_reap()
        gone = set()
        for tid in self._reap:
            t = self.threads.pop(tid, None)
            if t is not None:
                gone.add(t.pid)
            self._enter_ts.pop(tid, None)
            self._pending.pop(tid, None)
            self._forking.pop(tid, None)
        self._reap.clear()
        # The fd table belongs to the process: it goes with its last thread, which need not be
        # the main one. (One pass over the threads per batch, not one per exited thread.)
        for pid in gone:
            if not self.threads.has_process(pid):
                self.fds.pop(pid, None)

    def _changed(self, tid: int) -> None:
        if self.on_thread_change is not None:
            self.on_thread_change(tid)

    def _build_handlers(self) -> dict[int, Callable[[Event], None]]:
        h: dict[int, Callable[[Event], None]] = {}
        for n in ("open", "openat", "openat2", "creat"):
            h[_exit(n)] = self._on_open
        for n in ("clone", "clone3", "fork", "vfork"):
            h[_exit(n)] = self._on_clone
        for n in ("execve", "execveat"):
            h[_exit(n)] = self._on_exec
        h[_exit("socket")] = self._on_socket
        h[_exit("socketpair")] = self._on_socketpair
        h[_exit("bind")] = self._on_bind
        h[_exit("listen")] = self._on_listen
        h[_exit("connect")] = self._on_connect
        h[_exit("accept")] = self._on_accept
        h[_exit("accept4")] = self._on_accept
        h[_exit("close")] = self._on_close
        for n in ("dup", "dup2", "dup3"):
            h[_exit(n)] = self._on_dup
        h[_exit("fcntl")] = self._on_fcntl
        for n in ("pipe", "pipe2"):
            h[_exit(n)] = self._on_pipe
        simple = {
            "eventfd": "event", "eventfd2": "event", "signalfd": "signalfd", "signalfd4": "signalfd",
            "timerfd_create": "timerfd", "epoll_create": "eventpoll", "epoll_create1": "eventpoll",
            "inotify_init": "inotify", "inotify_init1": "inotify", "memfd_create": "memfd",
        }
        for n, kind in simple.items():
            h[_exit(n)] = self._simple_fd(kind)
        h[_exit("chdir")] = self._on_chdir
        h[_exit("fchdir")] = self._on_fchdir
        for n in ("setuid", "setreuid", "setresuid", "setfsuid"):
            h[_exit(n)] = self._on_setuid
        for n in ("setgid", "setregid", "setresgid", "setfsgid"):
            h[_exit(n)] = self._on_setgid
        h[_exit("prctl")] = self._on_prctl
        h[R.EVT_PROCEXIT] = self._on_procexit
        h[R.EVT_THREADINFO] = self._on_threadinfo
        h[R.EVT_FDINFO] = self._on_fdinfo
        h[R.EVT_CONNECTED] = self._on_connected
        h[R.EVT_ACCEPTED] = self._on_accepted
        h[R.EVT_CONTAINER] = self._on_container
        h[R.EVT_PROCINFO] = self._on_procinfo
        return h

    def _copy_fds(self, pid: int, *, exec_: bool = False) -> dict[int, Fd]:
        """A copy of a process's fd table, as a forked child gets it (``exec_``: and keeps after an
        exec, close-on-exec ones gone)."""
        return {n: f.copy() for n, f in self.fds.get(pid, {}).items()
                if not (exec_ and f.flags & O_CLOEXEC)}

    def _add_fd(self, pid: int, fd: Fd) -> None:
        self.fds.setdefault(pid, {})[fd.num] = fd

    def _on_open(self, ev: Event) -> None:
        if ev.ret < 0 or ev.ret > 0x7FFFFFFF:
            return
        name = ev.seg0.decode(errors="replace")
        if ev.evt == _exit("open") or ev.evt == _exit("creat"):
            full = resolve_path(ev, name, None)
            flags = ev.args[1] if ev.evt == _exit("open") else 0o1101
        else:
            full = resolve_path(ev, name, s32(ev.args[0]))
            flags = ev.args[2] if ev.evt == _exit("openat") else int.from_bytes(ev.seg1[:8] or b"\0", "little")
        self._opened(ev.pid, ev.ret, full, flags)

    def open_raw(self, pid: int, tid: int, num: int, path: bytes, flags: int, dirfd: int | None) -> None:
        """An open straight from its record (the scanner's fast path): what _on_open does."""
        name = path.decode(errors="replace")
        if name[:1] != "/":
            name = resolve_in(self, self.threads.get(tid), pid, name, dirfd)
        self._opened(pid, num, name, flags)

    def _opened(self, pid: int, num: int, path: str, flags: int) -> None:
        kind = "directory" if flags & O_DIRECTORY else "file"
        self.fds.setdefault(pid, {})[num] = Fd(num, kind, path, flags=flags)

    def _on_clone(self, ev: Event) -> None:
        self._clone(ev.evt, ev.tid, ev.pid, ev.ts, ev.ret, ev.args, ev.seg0, ev.seg1)

    def _clone(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
               seg1: bytes) -> None:
        if ret < 0:
            return
        new = tid not in self.threads
        flags = _clone_flags(evt, args, seg0)
        if ret == 0 and new and self._host_child(evt, tid, pid, ts, args, flags):
            return
        if ret != 0:
            self._forking.pop(tid, None)
            if ret > 0 and ret in self._adopted:
                # Its child was set up from this thread at the child's own return (_host_child)
                # and has lived since: nothing to copy again.
                self._adopted.discard(ret)
                return
        parent = self.thread(tid, pid)
        if not parent.comm:
            # The caller (or the child, on its own return) first seen here.
            parent.comm = _comm(seg1 if evt == _CLONE3_EXIT else seg0)
        if ret == 0:
            # The child's own return: it exists already, unless its parent is in a container.
            if new or not parent.start_ts:
                parent.start_ts = ts  # it starts here, as libsinsp's clone_ts of such a child
            if new and tid == pid:
                self._ns_child(evt, args, parent)
            return
        if _in_child_ns(parent):
            # In a child pid namespace (a container) clone returns the child's id *there*, not the
            # host's: registering it would overwrite whichever host thread has that number. The
            # child shows up under its host id with its own return from clone: see _ns_child.
            if not flags & CLONE_THREAD:
                self._ns_parent(evt, args, ret, parent)
            return
        child_tid = ret
        child_pid = parent.pid if flags & CLONE_THREAD else child_tid
        known = self.threads.get(child_tid)
        if known is not None and self._ns_orphans:
            self._forget_orphan((evt, *args), child_tid)  # a host fork: no pairing needed
        if known is not None and known.comm and known.comm != parent.comm:
            # The child ran (and exec'd: vfork) before its parent's clone returned: what it
            # became wins; it only learns its parent and its birth.
            known.ptid = known.ptid or (parent.ptid if flags & CLONE_PARENT else parent.pid)
            known.start_ts = known.start_ts or ts
            if child_pid not in self.fds:
                self.fds[child_pid] = self._copy_fds(parent.pid, exec_=True)
            self._changed(child_tid)
            return
        child = parent.fork(child_tid, child_pid)
        if flags & CLONE_PARENT:
            child.ptid = parent.ptid
        child.start_ts = ts
        if known is not None and known.comm:
            child.vtid, child.vpid = known.vtid, known.vpid
        elif parent.vtid == parent.tid and not flags & CLONE_NEWPID:
            child.vtid, child.vpid = child_tid, child_pid  # the host's pid namespace: same ids
        self.threads[child_tid] = child
        if child_pid != parent.pid and child_pid not in self.fds:
            # A new process starts with a copy of the parent's fd table.
            self.fds[child_pid] = self._copy_fds(parent.pid)
        self._changed(child_tid)

    def _host_child(self, evt: int, tid: int, pid: int, ts: int, args: tuple[int, ...], flags: int) -> bool:
        """A child's own return from clone, first of its events: when exactly one host thread is in
        a clone-family call with the same arguments (the child returns with a copy of its parent's
        registers), the child starts as a copy of it, fds included, as the kernel made it, instead
        of as an unknown thread until its parent's return or /proc tell."""
        want = (evt - 1, args)
        found = [tid for tid, call in self._forking.items() if call == want]
        if len(found) != 1:
            return False
        parent = self.threads.get(found[0])
        if parent is None or _in_child_ns(parent):
            return False  # unknown, or in a pid namespace (a container): _ns_child pairs those
        if flags & CLONE_NEWPID or (pid == parent.pid) != bool(flags & CLONE_THREAD):
            return False
        child = parent.fork(tid, pid)
        if flags & CLONE_PARENT:
            child.ptid = parent.ptid
        if parent.vtid == parent.tid:
            child.vtid, child.vpid = tid, pid  # the host's pid namespace: same ids
        child.start_ts = ts
        self.threads[tid] = child
        if pid != parent.pid and pid not in self.fds:
            self.fds[pid] = self._copy_fds(parent.pid)
        if len(self._adopted) > 4096:
            self._adopted.clear()
        self._adopted.add(tid)
        self._changed(tid)
        return True

    # A container's fork: the parent's clone returns the child's id in the container, the child's
    # own return (ret 0) comes with its host id. The two are paired by the clone's arguments, which
    # parent and child return with alike (the child's registers are a copy), so a child that exits
    # before /proc can be read still gets its parent's container, name and fds.
    def _ns_parent(self, evt: int, args: tuple[int, ...], ret: int, parent: Thread) -> None:
        key = (evt, *args)
        waiting = self._ns_orphans.get(key)
        if waiting:
            child = self.threads.get(waiting.pop(0))
            if not waiting:
                del self._ns_orphans[key]
            if child is not None:
                self._adopt(child, parent, ret, sure=not waiting)
            return
        if len(self._ns_clones) > 4096:
            self._ns_clones.clear()
        self._ns_clones.setdefault(key, []).append((parent.tid, ret))

    def _ns_child(self, evt: int, args: tuple[int, ...], child: Thread) -> None:
        key = (evt, *args)
        pending = self._ns_clones.get(key)
        if pending:
            parent_tid, vtid = pending.pop(0)
            sure = not pending  # one fork of that kind in flight: its id is this child's
            if not pending:
                del self._ns_clones[key]
            parent = self.threads.get(parent_tid)
            if parent is not None:
                self._adopt(child, parent, vtid, sure)
            return
        if len(self._ns_orphans) > 4096:
            self._ns_orphans.clear()
        self._ns_orphans.setdefault(key, []).append(child.tid)

    def _forget_orphan(self, key: tuple[int, ...], tid: int) -> None:
        waiting = self._ns_orphans.get(key)
        if waiting and tid in waiting:
            waiting.remove(tid)
            if not waiting:
                del self._ns_orphans[key]

    def _adopt(self, child: Thread, parent: Thread, vtid: int, sure: bool) -> None:
        if child.cwd:
            return  # live mode read it from /proc already
        t = parent.fork(child.tid, child.pid)
        t.ptid = parent.pid
        t.start_ts = child.start_ts
        if sure:
            t.vtid = t.vpid = vtid
        self.threads[child.tid] = t
        if child.pid not in self.fds:
            self.fds[child.pid] = self._copy_fds(parent.pid)
        self._changed(child.tid)

    def _on_exec(self, ev: Event) -> None:
        self._exec(ev.evt, ev.tid, ev.pid, ev.ts, ev.ret, ev.args, ev.seg0, ev.seg1)

    def _exec(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
              seg1: bytes) -> None:
        pending = self._pending.pop(tid, None)
        if pending is None and ret == 0:
            # A non-main thread's exec returns as the main thread (the kernel gives it the
            # leader's id): its enter was remembered under its own tid.
            for other, p in list(self._pending.items()):
                t_ = self.threads.get(other)
                if t_ is not None and t_.pid == pid and p[0] in _EXEC_ENTERS:
                    pending = self._pending.pop(other)
                    break
        if ret != 0:
            return
        known = self.threads.get(tid)  # the thread as the exec found it: its cwd resolves the path
        t = self.thread(tid, pid)
        for other in self.threads.of_process(pid):
            if other != tid:
                del self.threads[other]  # exec leaves one thread
        t.comm = seg0.rstrip(b"\0").decode(errors="replace")
        if pending is not None:
            filename, argv = pending[1], pending[2]
            argl = [a.decode(errors="replace") for a in argv.rstrip(b"\0").split(b"\0")] if argv else []
            t.exe = argl[0] if argl else filename.decode(errors="replace")
            t.args = argl[1:]
            t.exepath = resolve_in(self, known, pid, filename.decode(errors="replace"), None)
        fds = self.fds.get(pid)
        if fds:
            for n in [n for n, f in fds.items() if f.flags & O_CLOEXEC]:
                del fds[n]
        self._changed(tid)

    def _on_socket(self, ev: Event) -> None:
        if ev.ret < 0:
            return
        family = ev.args[0] & 0xFFFF
        kind = _FAMILIES.get(family, "unknown")
        proto = _SOCK_TYPES.get(ev.args[1] & 0xF, "") if kind in ("ipv4", "ipv6") else ""
        flags = O_CLOEXEC if ev.args[1] & 0o2000000 else 0
        self._add_fd(ev.pid, Fd(ev.ret, kind, "", l4proto=proto, flags=flags))

    def _on_socketpair(self, ev: Event) -> None:
        if ev.ret < 0 or len(ev.seg0) < 8:
            return
        for i in (0, 4):
            self._add_fd(ev.pid, Fd(s32(int.from_bytes(ev.seg0[i:i + 4], "little")), "unix", ""))

    def _on_bind(self, ev: Event) -> None:
        fd = self.fd(ev.pid, s32(ev.args[0]))
        parts = sockaddr_parts(ev.seg0)
        if ev.ret != 0 or fd is None or parts is None:
            return
        family, ip, port = parts
        if family == "unix":
            fd.name = ip
            fd.is_server = True
        else:
            fd.set_server(ip, port)

    def _on_listen(self, ev: Event) -> None:
        fd = self.fd(ev.pid, s32(ev.args[0]))
        if fd is not None and ev.ret == 0:
            fd.is_server = True

    def _on_connect(self, ev: Event) -> None:
        pending = self._pending.pop(ev.tid, None)
        fd = self.fd(ev.pid, s32(ev.args[0]))
        if fd is None or (ev.ret != 0 and ev.ret != -EINPROGRESS) or pending is None:
            return
        parts = sockaddr_parts(pending[1])
        if parts is None:
            return
        family, ip, port = parts
        fd.is_server = False
        if family == "unix":
            fd.type, fd.name = "unix", ip
            return
        if fd.type not in ("ipv4", "ipv6"):
            fd.type = family
        local_ip = fd.cip or ("0.0.0.0" if family == "ipv4" else "::")
        fd.set_tuple(local_ip, fd.cport, ip, port)

    def _on_connected(self, ev: Event) -> None:
        """Both ends of a client TCP connection, as the kernel saw them once it was established
        (the probe's sock:inet_sock_set_state program): the local end needs no later read of a
        socket the program may have closed by then. It comes before or after the connect's exit,
        whose handler keeps the client end it finds."""
        self._kernel_ends(ev, server=False)

    def _on_accepted(self, ev: Event) -> None:
        """Both ends of an accepted TCP connection, as the kernel saw them once it was established,
        given by the probe at the first send or receive on its fd, before that syscall's exit: the
        fd is named though accept() gave no address and the program closed it at once."""
        self._kernel_ends(ev, server=True)

    def _kernel_ends(self, ev: Event, *, server: bool) -> None:
        """Name fd a0 by the ends of an EVT_CONNECTED or EVT_ACCEPTED record (local, then remote)."""
        n = TP.ADDR_BYTES
        raw = ev.seg0
        if len(raw) < 2 * n:
            return
        if ev.args[1] == TP.AF_INET:
            family, local, remote = "ipv4", str(IPv4Address(raw[:4])), str(IPv4Address(raw[n : n + 4]))
        elif ev.args[1] == TP.AF_INET6:
            family = "ipv6"
            local = plain_ip(socket.inet_ntop(socket.AF_INET6, raw[:n]))
            remote = plain_ip(socket.inet_ntop(socket.AF_INET6, raw[n : 2 * n]))
        else:
            return
        num = s32(ev.args[0])
        fd = self.fd(ev.pid, num)
        if fd is None:
            fd = Fd(num)
            self._add_fd(ev.pid, fd)
        fd.type, fd.l4proto, fd.is_server = family, "tcp", server
        if server:
            fd.set_tuple(remote, ev.args[3], local, ev.args[2])
        else:
            fd.set_tuple(local, ev.args[2], remote, ev.args[3])

    def _on_accept(self, ev: Event) -> None:
        if ev.ret < 0:
            return
        lfd = self.fd(ev.pid, s32(ev.args[0]))
        fd = Fd(ev.ret, lfd.type if lfd else "unknown", "", l4proto=lfd.l4proto if lfd else "")
        fd.is_server = True
        parts = sockaddr_parts(ev.seg0)
        if lfd is not None and lfd.type == "unix":
            fd.name = lfd.name
        elif parts is not None and parts[0] != "unix":
            fd.type = parts[0]
            fd.l4proto = fd.l4proto or "tcp"
            sip = lfd.sip if lfd and lfd.sip else ("0.0.0.0" if parts[0] == "ipv4" else "::")
            fd.set_tuple(parts[1], parts[2], sip, lfd.sport if lfd else 0)
        if ev.evt == _exit("accept4") and ev.args[3] & 0o2000000:
            fd.flags |= O_CLOEXEC
        self._add_fd(ev.pid, fd)

    def _on_close(self, ev: Event) -> None:
        if ev.ret == 0:
            table = self.fds.get(ev.pid)
            if table:
                table.pop(s32(ev.args[0]), None)

    def dup_raw(self, pid: int, old: int, new: int, cloexec: bool) -> None:
        """``new`` becomes a copy of ``old`` (dup, dup2, dup3, fcntl F_DUPFD): what a dup exit
        does, also straight from its record (the scanner's fast path)."""
        src = self.fd(pid, old)
        if src is None:
            return
        copy = src.copy()
        copy.num = new
        copy.flags = (copy.flags & ~O_CLOEXEC) | (O_CLOEXEC if cloexec else 0)
        self._add_fd(pid, copy)

    def _on_dup(self, ev: Event) -> None:
        if ev.ret >= 0:
            cloexec = ev.evt == _exit("dup3") and bool(ev.args[2] & O_CLOEXEC)
            self.dup_raw(ev.pid, s32(ev.args[0]), ev.ret, cloexec)

    def _on_fcntl(self, ev: Event) -> None:
        self._fcntl(ev.evt, ev.tid, ev.pid, ev.ts, ev.ret, ev.args, ev.seg0, ev.seg1)

    def _fcntl(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
               seg1: bytes) -> None:
        cmd = args[1] & 0xFFFFFFFF
        if ret >= 0 and cmd in (0, 1030):  # F_DUPFD, F_DUPFD_CLOEXEC
            self.dup_raw(pid, s32(args[0]), ret, cmd == 1030)
        elif ret == 0 and cmd == 2:  # F_SETFD
            fd = self.fd(pid, s32(args[0]))
            if fd is not None:
                fd.flags = (fd.flags & ~O_CLOEXEC) | (O_CLOEXEC if args[2] & 1 else 0)

    def _on_pipe(self, ev: Event) -> None:
        if ev.ret != 0 or len(ev.seg0) < 8:
            return
        flags = ev.args[1] & O_CLOEXEC if ev.evt == _exit("pipe2") else 0
        for i in (0, 4):
            self._add_fd(ev.pid, Fd(s32(int.from_bytes(ev.seg0[i:i + 4], "little")), "pipe", "", flags=flags))

    def _simple_fd(self, kind: str) -> Callable[[Event], None]:
        def handler(ev: Event) -> None:
            if ev.ret >= 0:
                name = ""
                if kind == "memfd":
                    name = "memfd:" + ev.seg0.decode(errors="replace")
                self._add_fd(ev.pid, Fd(ev.ret, kind, name))

        return handler

    def _on_chdir(self, ev: Event) -> None:
        if ev.ret == 0:
            t = self.thread(ev.tid, ev.pid)
            t.cwd = resolve_path(ev, ev.seg0.decode(errors="replace"), None)
            self._share_cwd(t)

    def _on_fchdir(self, ev: Event) -> None:
        fd = self.fd(ev.pid, s32(ev.args[0]))
        if ev.ret == 0 and fd is not None:
            t = self.thread(ev.tid, ev.pid)
            t.cwd = posixpath.normpath(fd.name)
            self._share_cwd(t)

    def _share_cwd(self, t: Thread) -> None:
        for tid in self.threads.of_process(t.pid):
            self.threads[tid].cwd = t.cwd

    def _on_setuid(self, ev: Event) -> None:
        if ev.ret != 0:
            return
        name = ev.type
        uid = ev.args[1] if name in ("setreuid", "setresuid") else ev.args[0]
        uid &= 0xFFFFFFFF
        if uid != 0xFFFFFFFF:
            self.thread(ev.tid, ev.pid).uid = uid
            self._changed(ev.tid)

    def _on_setgid(self, ev: Event) -> None:
        if ev.ret != 0:
            return
        gid = ev.args[1] if ev.type in ("setregid", "setresgid") else ev.args[0]
        gid &= 0xFFFFFFFF
        if gid != 0xFFFFFFFF:
            self.thread(ev.tid, ev.pid).gid = gid

    def _on_prctl(self, ev: Event) -> None:
        self._prctl(ev.evt, ev.tid, ev.pid, ev.ts, ev.ret, ev.args, ev.seg0, ev.seg1)

    def _prctl(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
               seg1: bytes) -> None:
        if args[0] == PR_SET_NAME and ret == 0:
            comm = _comm(seg0)
            if comm:
                self.thread(tid, pid).comm = comm
                self._changed(tid)

    def _on_procexit(self, ev: Event) -> None:
        self._procexit(ev.evt, ev.tid, ev.pid, ev.ts, ev.ret, ev.args, ev.seg0, ev.seg1)

    def _procexit(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
                  seg1: bytes) -> None:
        self._reap.append(tid)

    def _on_threadinfo(self, ev: Event) -> None:
        self._threadinfo(ev.evt, ev.tid, ev.pid, ev.ts, ev.ret, ev.args, ev.seg0, ev.seg1)

    def _threadinfo(self, evt: int, tid: int, pid: int, ts: int, ret: int, args: tuple[int, ...], seg0: bytes,
                    seg1: bytes) -> None:
        d = msgpack.unpackb(seg0)
        t = self.thread(tid, pid)
        bare = not t.comm
        old_pid = t.pid
        for k, v in d.items():
            if k == "start_ts" and t.start_ts:
                continue  # its clone's return, as libsinsp's clone_ts: finer than /proc's clock ticks
            if k in _THREAD_FIELDS:
                setattr(t, k, v)
        if t.pid != old_pid:
            self.threads.moved(tid, old_pid)
        parent = self.threads.get(t.ptid) if bare and t.tid == t.pid else None
        if parent is not None and parent is not t:
            # A forked child whose first event came before its parent's clone returned: until it
            # execs it is a copy of its parent (name, command line, open fds), whatever /proc shows
            # by now (maybe a later exec).
            t.comm, t.exe, t.exepath, t.args = parent.comm, parent.exe, parent.exepath, list(parent.args)
            if t.pid not in self.fds:
                self.fds[t.pid] = self._copy_fds(parent.pid)
        self._changed(tid)

    def _on_fdinfo(self, ev: Event) -> None:
        d = msgpack.unpackb(ev.seg0)
        fd = self.fd(ev.pid, d["num"])
        if fd is None:
            fd = Fd(d["num"])
            self._add_fd(ev.pid, fd)
        for k, v in d.items():
            if k in _FD_FIELDS:
                setattr(fd, k, v)

    def _on_container(self, ev: Event) -> None:
        d = msgpack.unpackb(ev.seg0)
        if "id" in d:
            self.containers[d["id"]] = d
            for t in self.threads.values():
                if t.container_id == d["id"]:
                    self._changed(t.tid)

    def _on_procinfo(self, ev: Event) -> None:
        d = msgpack.unpackb(ev.seg0)
        t = self.threads.get(ev.tid)
        if t is None:
            return
        ticks = int(d.get("u", 0)) + int(d.get("s", 0))
        last = self._procinfo_ts.get(ev.tid)
        if t.cpu_ticks >= 0 and last is not None and ev.ts > last:
            # Share of one CPU since the previous sample: ticks are 1/USER_HZ s.
            t.cpu_pct = (ticks - t.cpu_ticks) * (1e9 / USER_HZ) / (ev.ts - last) * 100.0
        else:
            t.cpu_pct = 0.0
        t.cpu_ticks = ticks
        self._procinfo_ts[ev.tid] = ev.ts

    # --- tables for captures -----------------------------------------------------------------
    def tables(self) -> dict[str, list[Any]]:
        return {
            "threads": [t.to_row() for t in self.threads.values()],
            "fds": [[pid, [f.to_row() for f in table.values()]] for pid, table in self.fds.items()],
            "users": [[u.uid, u.name, u.home, u.shell] for u in self.users.values()],
            "groups": [[g.gid, g.name] for g in self.groups.values()],
            "containers": list(self.containers.values()),
        }

    def load_table(self, kind: str, rows: list[Any]) -> None:
        self.version += 1
        # In place: closures (the scanner's thread check) hold these dicts.
        if kind == "threads":
            self.threads.clear()
            self.threads.update((t.tid, t) for t in (Thread.from_row(r) for r in rows))
            self._changed(0)
        elif kind == "fds":
            self.fds.clear()
            self.fds.update((pid, {f.num: f for f in (Fd.from_row(r) for r in table)}) for pid, table in rows)
        elif kind == "users":
            self.users = {r[0]: User(*r) for r in rows}
        elif kind == "groups":
            self.groups = {r[0]: Group(*r) for r in rows}
        elif kind == "containers":
            self.containers = {d["id"]: d for d in rows if "id" in d}
