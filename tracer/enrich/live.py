"""Live-only facts turned into internal records: what /proc, the socket itself and the container
runtime say, inserted into the stream where the event that needed them happened.
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import msgpack

from ..event import Event, plain_ip, s32, sockaddr_parts
from ..na import NA
from ..schema import record as R
from ..schema.events import SYSCALL_NR
from ..state import proc
from ..state.state import State
from .cgroup import parse_cgroup
from .containers import ContainerInfo, ContainerResolver
from .hostroot import host_path

_EXEC = {R.syscall_evt(SYSCALL_NR[n], R.DIR_EXIT) for n in ("execve", "execveat")}
_SOCK = {R.syscall_evt(SYSCALL_NR[n], R.DIR_EXIT) for n in ("accept", "accept4", "connect")}
_CLONE = {R.syscall_evt(SYSCALL_NR[n], R.DIR_EXIT) for n in ("clone", "clone3", "fork", "vfork")}
_BIND = R.syscall_evt(SYSCALL_NR["bind"], R.DIR_EXIT)
# How long the live pipeline waits for a new container's metadata when it first sees it (docker
# answers once the container's start is done, ~0.15 s here; containerd's bundle is there at
# once). Events queue meanwhile, none is lost; a runtime that fails answers at once.
NEW_CONTAINER_WAIT_S = 1.0
EINPROGRESS = 115


def internal_record(evt: int, ts: int, tid: int, pid: int, doc: dict[str, Any]) -> bytes:
    return R.pack_record(ts, tid, pid, evt, seg0=msgpack.packb(doc))


class LiveEnricher:
    """Makes THREADINFO, FDINFO, CONTAINER and PROCINFO records for the live stream."""

    # The events ``after`` may add records after: the only ones the pipeline must hand it.
    watched = frozenset(_EXEC | _SOCK | _CLONE | {_BIND})

    def __init__(self, state: State, *, procinfo: bool = False, containers: bool = True) -> None:
        self.state = state
        self._updates: queue.SimpleQueue[ContainerInfo] = queue.SimpleQueue()
        self.resolver = ContainerResolver(self._updates.put) if containers else None
        self.procinfo = procinfo
        self._last_sample = time.monotonic()
        self._asked: set[str] = set()
        self._sent: dict[str, ContainerInfo] = {}  # inserted at once by _resolve_now

    def start(self, wait: float = 0.0) -> None:
        """Ask the runtime about every container the bootstrap found; wait up to ``wait`` seconds
        for the answers, so the first lines and a capture's first tables already have the names."""
        for t in list(self.state.threads.values()):
            self.ask(t.container_id, t.cgroups)
        resolver = self.resolver
        deadline = time.monotonic() + wait
        # Until each has an answer or a first failure (its retries are not waited for).
        while resolver is not None and time.monotonic() < deadline and any(
                resolver.get(cid).lookup == "pending" and not resolver.reasons(cid) for cid in self._asked):
            time.sleep(0.005)

    def ask(self, cid: str, cgroups: str = "") -> bool:
        """Look container ``cid`` up, once (True the first time). ``cgroups`` is the
        /proc/PID/cgroup text the id came from: it gives the resolver the full id, the runtime to
        ask first and the pod uid."""
        if self.resolver is None or cid == "host" or cid in self._asked:
            return False
        self._asked.add(cid)
        m = parse_cgroup(cgroups) if cgroups else None
        info = self.resolver.get(cid, m if m is not None and m.id == cid else None)
        if info.lookup != "pending":
            self._updates.put(info)
        return True

    def _resolve_now(self, cid: str, ts: int, tid: int, pid: int) -> list[bytes]:
        """A container first seen (its first exec): wait a moment for its metadata, so the event
        that showed it is already printed, and filtered, with the container's name."""
        assert self.resolver is not None
        deadline = time.monotonic() + NEW_CONTAINER_WAIT_S
        info = self.resolver.get(cid)
        while info.lookup == "pending" and not self.resolver.reasons(cid) and time.monotonic() < deadline:
            time.sleep(0.002)
            info = self.resolver.get(cid)
        if info.lookup == "pending":
            return []  # its record comes later, through pending()
        self._sent[cid] = info
        # With the thread's ids: a replay applies it, like a thread info, before the event is shown.
        return [internal_record(R.EVT_CONTAINER, ts, tid, pid, info.to_dict())]

    def unnamed(self) -> list[str]:
        """One line per container whose name is still ``<NA>``, with the resolver's reasons (-v)."""
        if self.resolver is None:
            return []
        out = []
        for cid in sorted(self._asked):
            d = self.state.containers.get(cid) or {}
            if d.get("name") not in (None, "", NA):
                continue
            why = self.resolver.reasons(cid)
            if not why:
                why = ["still being looked up when the run ended" if d.get("lookup", "pending") == "pending"
                       else "the runtime gave no name"]
            out.append(f"container {cid}: name <NA>: " + "; ".join(why))
        return out

    def after(self, ev: Event) -> list[bytes]:
        evt = ev.evt
        if evt in _EXEC and ev.ret == 0:
            return self._threadinfo(ev.ts, ev.tid, ev.pid)
        if evt in _CLONE and ev.ret == 0 and ev.thread is not None and (
                not ev.thread.cwd or ev.thread.vtid < 0 and ev.thread.container_id != "host"):
            # A thread first seen, or one whose id in its pid namespace (thread.vtid) is unknown:
            # a container's children, whose clone returned their in-container id.
            return self._threadinfo(ev.ts, ev.tid, ev.pid)
        if evt in _SOCK:
            return self._fdinfo(ev)
        if evt == _BIND and ev.ret == 0:
            return self._bound(ev)
        return []

    def _bound(self, ev: Event) -> list[bytes]:
        """A socket bound to port 0 gets the port the kernel chose, so it is named by its real address."""
        num = s32(ev.args[0])
        fd = self.state.fd(ev.pid, num)
        if fd is None or fd.type not in ("ipv4", "ipv6") or fd.sport != 0 or not fd.sip:
            return []
        facts = proc.socket_facts(ev.pid, num)
        if facts is None or facts["peer"] is not None or facts["l4proto"] != fd.l4proto:
            return []
        ip, port = facts["local"]
        if ip != plain_ip(fd.sip) or not port:
            return []  # the program has reused the number for another socket since
        doc = {"num": num, "sport": port, "name": f"{fd.sip}:{port}"}
        return [internal_record(R.EVT_FDINFO, ev.ts, ev.tid, ev.pid, doc)]

    def _threadinfo(self, ts: int, tid: int, pid: int) -> list[bytes]:
        """THREADINFO from /proc: what the records cannot carry (cwd, ids, cgroups, tty...)."""
        facts = proc.thread_facts(pid, tid)
        if facts is None:
            return []
        # exe and args come from the exec record itself; /proc may already show a later exec. Only
        # a thread the state knows nothing of (its parent unseen) takes them from /proc.
        t = self.state.threads.get(tid)
        if t is not None and t.exe:
            facts.pop("exe", None)
            facts.pop("args", None)
        if t is not None and t.comm:
            facts.pop("comm", None)
        # A process that has exited since shows empty links (cwd, exe) and no cgroups: keep what the
        # state knows rather than blank it.
        if not facts.get("cgroups"):
            facts.pop("cgroups", None)
            facts.pop("container_id", None)
        facts = {k: v for k, v in facts.items() if v != ""}
        cid = facts.get("container_id", "host")
        out = [internal_record(R.EVT_THREADINFO, ts, tid, pid, facts)]
        if self.ask(cid, facts.get("cgroups", "")):
            out.extend(self._resolve_now(cid, ts, tid, pid))
        return out

    def _fdinfo(self, ev: Event) -> list[bytes]:
        accept = ev.type != "connect"
        if accept and ev.ret < 0 or not accept and ev.ret not in (0, -EINPROGRESS):
            return []
        num = ev.ret if accept else s32(ev.args[0])
        if not accept:
            known = self.state.fd(ev.pid, num)
            if known is not None and known.cport:
                return []  # the probe's EVT_CONNECTED, just before, named both ends
        facts = proc.socket_facts(ev.pid, num)
        if facts is None:
            return []
        local, peer = facts["local"], facts["peer"]
        # The socket is read now, not when the event happened: by now the program may have closed
        # the fd and reused the number for another socket. Keep the facts only when the peer is the
        # one the event names (accept's returned address; connect's target, which the state holds).
        # A socket without a peer (a connect still in progress, or a reused fd) tells nothing sure:
        # the fd keeps the state's own name, with an unknown local end.
        if accept:
            named = sockaddr_parts(ev.seg0)
            expect = (plain_ip(named[1]), named[2]) if named is not None and named[0] != "unix" else None
        else:
            fd = self.state.fd(ev.pid, num)
            expect = (plain_ip(fd.sip), fd.sport) if fd is not None and fd.sip else None
        if peer is None or (expect is not None and tuple(peer) != expect):
            return []
        doc: dict[str, Any] = {"num": num, "type": facts["family"], "l4proto": facts["l4proto"],
                               "is_server": accept}
        client, server = (peer, local) if accept else (local, peer)
        doc.update(cip=client[0], cport=client[1], sip=server[0], sport=server[1],
                   name=f"{client[0]}:{client[1]}->{server[0]}:{server[1]}")
        return [internal_record(R.EVT_FDINFO, ev.ts, ev.tid, ev.pid, doc)]

    def pending(self) -> list[bytes]:
        """Records due now: container metadata that arrived, and CPU samples once a second."""
        out = []
        ts = time.time_ns()
        while True:
            try:
                info = self._updates.get_nowait()
            except queue.Empty:
                break
            if self._sent.pop(info.id, None) == info:
                continue  # already inserted by _resolve_now
            out.append(internal_record(R.EVT_CONTAINER, ts, 0, 0, info.to_dict()))
        if self.procinfo and time.monotonic() - self._last_sample >= 1.0:
            self._last_sample = time.monotonic()
            out.extend(self.cpu_samples(ts))
        return out

    def cpu_samples(self, ts: int) -> list[bytes]:
        """One PROCINFO record per known thread that used CPU (sysdig skips idle ones)."""
        out = []
        clk = os.sysconf("SC_CLK_TCK")
        for t in list(self.state.threads.values()):
            try:
                with open(host_path(f"/proc/{t.pid}/task/{t.tid}/stat"), "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            rest = stat[stat.rfind(b")") + 2:].split()
            utime, stime = int(rest[11]), int(rest[12])
            if clk != 100:
                utime, stime = utime * 100 // clk, stime * 100 // clk
            if t.cpu_ticks >= 0 and utime + stime == t.cpu_ticks:
                continue
            out.append(internal_record(R.EVT_PROCINFO, ts, t.tid, t.pid, {"u": utime, "s": stime}))
        return out

    def close(self) -> None:
        if self.resolver is not None:
            self.resolver.close()
