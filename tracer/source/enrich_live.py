"""Live-only facts turned into internal records: what /proc, the socket itself and the container
runtime say, inserted into the stream where the event that needed them happened.
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import msgpack

from ..enrich.containers import ContainerInfo, ContainerResolver
from ..enrich.hostroot import host_path
from ..event import Event, s32, sockaddr_parts
from ..schema import record as R
from ..schema.events import SYSCALL_NR
from ..state import proc
from ..state.state import State

_EXEC = {SYSCALL_NR["execve"] * 2 + 1, SYSCALL_NR["execveat"] * 2 + 1}
_SOCK = {SYSCALL_NR[n] * 2 + 1 for n in ("accept", "accept4", "connect")}
_CLONE = {SYSCALL_NR[n] * 2 + 1 for n in ("clone", "clone3", "fork", "vfork")}
_PRCTL = SYSCALL_NR["prctl"] * 2 + 1
PR_SET_NAME = 15
EINPROGRESS = 115


def internal_record(evt: int, ts: int, tid: int, pid: int, doc: dict[str, Any]) -> bytes:
    return R.pack_record(ts, tid, pid, evt, seg0=msgpack.packb(doc))


class LiveEnricher:
    """Makes THREADINFO, FDINFO, CONTAINER and PROCINFO records for the live stream."""

    def __init__(self, state: State, *, procinfo: bool = False, containers: bool = True) -> None:
        self.state = state
        self._updates: queue.SimpleQueue[ContainerInfo] = queue.SimpleQueue()
        self.resolver = ContainerResolver(self._updates.put) if containers else None
        self.procinfo = procinfo
        self._last_sample = time.monotonic()
        self._asked: set[str] = set()

    def start(self) -> None:
        """Ask the runtime about every container the bootstrap found."""
        for t in list(self.state.threads.values()):
            self._ask(t.container_id)

    def _ask(self, cid: str) -> None:
        if self.resolver is None or cid == "host" or cid in self._asked:
            return
        self._asked.add(cid)
        info = self.resolver.get(cid)
        if info.lookup != "pending":
            self._updates.put(info)

    def after(self, ev: Event) -> list[bytes]:
        evt = ev.evt
        if evt in _EXEC and ev.ret == 0 or (evt == _PRCTL and ev.args[0] == PR_SET_NAME and ev.ret == 0):
            return self._threadinfo(ev.ts, ev.tid, ev.pid)
        if evt in _CLONE and ev.ret == 0 and ev.thread is not None and not ev.thread.cwd:
            return self._threadinfo(ev.ts, ev.tid, ev.pid)
        if evt in _SOCK:
            return self._fdinfo(ev)
        return []

    def _threadinfo(self, ts: int, tid: int, pid: int) -> list[bytes]:
        facts = proc.thread_facts(pid, tid)
        if facts is None:
            return []
        # exe and args come from the exec record itself; /proc may already show a later exec.
        for k in ("exe", "args", "comm"):
            facts.pop(k, None)
        self._ask(facts.get("container_id", "host"))
        return [internal_record(R.EVT_THREADINFO, ts, tid, pid, facts)]

    def _fdinfo(self, ev: Event) -> list[bytes]:
        accept = ev.type != "connect"
        if accept and ev.ret < 0 or not accept and ev.ret not in (0, -EINPROGRESS):
            return []
        num = ev.ret if accept else s32(ev.args[0])
        facts = proc.socket_facts(ev.pid, num)
        if facts is None:
            return []
        local, peer = facts["local"], facts["peer"]
        # The socket is read now, not when the event happened: by now the program may have closed
        # the fd and reused the number for another socket. Keep the facts only when the peer is the
        # one the event names (accept's returned address; connect's target, which the state holds).
        if accept:
            named = sockaddr_parts(ev.seg0)
            expect = (proc.plain_ip(named[1]), named[2]) if named is not None and named[0] != "unix" else None
        else:
            fd = self.state.fd(ev.pid, num)
            expect = (proc.plain_ip(fd.sip), fd.sport) if fd is not None and fd.sip else None
            if peer is None and expect is not None and fd is not None and fd.l4proto == facts["l4proto"]:
                peer = expect  # a non-blocking connect still in progress: no peer yet
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
