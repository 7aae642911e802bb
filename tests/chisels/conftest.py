"""A synthetic capture builder, the scenario capture the golden tests share, and CLI helpers.

``Synth`` writes what a live run would have written: table blocks (threads, fds, users, containers)
then event records made with ``pack_record`` in the schema's layouts, internal records (FDINFO
after a connect, PROCINFO rounds) included, so the replay goes through the real state, filter and
session.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tracer.capture import CaptureWriter
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.state.tables import Fd, Thread

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
MS = 1_000_000
AT_FDCWD = -100
O_WRONLY_CREAT = 0o101
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("KTRACE_UPDATE_GOLDEN") == "1"


def sockaddr4(ip: str, port: int) -> bytes:
    return struct.pack("<H", 2) + struct.pack(">H", port) + socket.inet_aton(ip) + b"\0" * 8


@dataclass
class Synth:
    """Builds a capture: tables first, then records in time order (``at`` moves the clock)."""

    now: int = T0
    threads: list[Thread] = field(default_factory=list)
    fds: dict[int, list[Fd]] = field(default_factory=dict)
    users: list[list[Any]] = field(default_factory=list)
    containers: list[dict[str, Any]] = field(default_factory=list)
    recs: list[bytes] = field(default_factory=list)

    # --- tables --------------------------------------------------------------------------------
    def thread(self, tid: int, pid: int | None = None, **kw: Any) -> Thread:
        """A thread of the bootstrap table; a host thread's ids in its namespace are its own."""
        pid = tid if pid is None else pid
        if kw.get("container_id", "host") == "host":
            kw.setdefault("vtid", tid)
            kw.setdefault("vpid", pid)
        t = Thread(tid, pid, **kw)
        self.threads.append(t)
        return t

    def fd(self, pid: int, fd: Fd) -> Fd:
        self.fds.setdefault(pid, []).append(fd)
        return fd

    def user(self, uid: int, name: str) -> None:
        self.users.append([uid, name, f"/home/{name}", "/bin/bash"])

    def container(self, cid: str, name: str, image: str, kind: str = "docker") -> None:
        self.containers.append({"id": cid, "full_id": cid + "0" * 52, "name": name, "image": image, "type": kind})

    # --- records -------------------------------------------------------------------------------
    def at(self, ms: float) -> Synth:
        """Move the clock to ``ms`` milliseconds after T0."""
        self.now = T0 + int(ms * MS)
        return self

    def rec(self, tid: int, pid: int, evt: int, ret: int = 0, args: tuple[int, ...] = (), seg0: bytes = b"",
            seg1: bytes = b"", dt: int = 1000) -> None:
        self.now += dt
        full = tuple(args) + (0,) * (6 - len(args))
        self.recs.append(R.pack_record(self.now, tid, pid, evt, 0, ret, full, seg0, seg1))

    def call(self, name: str, tid: int, pid: int, ret: int = 0, args: tuple[int, ...] = (), seg0: bytes = b"",
             seg1: bytes = b"", enter0: bytes = b"", enter1: bytes = b"", latency: int = 1000) -> None:
        """An enter and its exit ``latency`` ns later."""
        nr = SYSCALL_NR[name]
        self.rec(tid, pid, nr * 2, 0, args, enter0, enter1)
        self.rec(tid, pid, nr * 2 + 1, ret, args, seg0, seg1, dt=latency)

    def read(self, tid: int, pid: int, fd: int, data: bytes, latency: int = 1000) -> None:
        self.call("read", tid, pid, len(data), (fd, 0, 65536), seg0=data, latency=latency)

    def write(self, tid: int, pid: int, fd: int, data: bytes, latency: int = 1000) -> None:
        self.call("write", tid, pid, len(data), (fd, 0, len(data)), seg0=data, latency=latency)

    def openat(self, tid: int, pid: int, fd: int, path: str, flags: int = 0) -> None:
        self.call("openat", tid, pid, fd, (AT_FDCWD, 0, flags, 0o644), seg0=path.encode())

    def clone(self, tid: int, pid: int, child: int) -> None:
        self.call("clone", tid, pid, child, (0x1200011,))  # SIGCHLD|CLONE_CHILD_SETTID|CLEARTID

    def execve(self, tid: int, pid: int, path: str, argv: list[str]) -> None:
        comm = os.path.basename(path)[:15].encode()
        self.call("execve", tid, pid, 0, (), seg0=comm, enter0=path.encode(),
                  enter1=b"".join(a.encode() + b"\0" for a in argv))
        # What live mode reads from /proc after an exec (a host process: its own ids).
        self.internal(R.EVT_THREADINFO, tid, pid, {"vtid": tid, "vpid": pid})

    def chdir(self, tid: int, pid: int, path: str) -> None:
        self.call("chdir", tid, pid, 0, (), seg0=path.encode())

    def connect(self, tid: int, pid: int, fd: int, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.call("socket", tid, pid, fd, (2, 1, 0))
        self.call("connect", tid, pid, 0, (fd, 0, 16), enter0=sockaddr4(*remote))
        # What live mode learns from the socket itself: the local end.
        self.internal(R.EVT_FDINFO, tid, pid, {
            "num": fd, "type": "ipv4", "l4proto": "tcp", "is_server": False, "cip": local[0], "cport": local[1],
            "sip": remote[0], "sport": remote[1], "name": f"{local[0]}:{local[1]}->{remote[0]}:{remote[1]}"})

    def procexit(self, tid: int, pid: int) -> None:
        self.rec(tid, pid, R.EVT_PROCEXIT)

    def internal(self, evt: int, tid: int, pid: int, doc: dict[str, Any], dt: int = 0) -> None:
        self.rec(tid, pid, evt, seg0=msgpack.packb(doc), dt=dt)

    def cpu_round(self, ms: float, ticks: dict[tuple[int, int], int]) -> None:
        """One PROCINFO round at ``ms``: (tid, pid) -> utime ticks. All samples share the time."""
        self.at(ms)
        for (tid, pid), u in ticks.items():
            self.internal(R.EVT_PROCINFO, tid, pid, {"u": u, "s": 0})

    # --- file ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> str:
        path = os.fspath(path)
        with CaptureWriter(path, {"purpose": "chisel test"}, block_size=1) as w:
            w.write_table("threads", [t.to_row() for t in self.threads])
            w.write_table("fds", [[pid, [f.to_row() for f in fds]] for pid, fds in self.fds.items()])
            w.write_table("users", self.users)
            w.write_table("groups", [[0, "root"]])
            w.write_table("containers", self.containers)
            if self.recs:
                raw = b"".join(self.recs)
                first = int.from_bytes(self.recs[0][:8], "little")
                w.write_events(raw, len(self.recs), first, self.now)
        return path


def server_fd(num: int, ip: str, port: int) -> Fd:
    fd = Fd(num, "ipv4", l4proto="tcp")
    fd.set_server(ip, port)
    return fd


def conn_fd(num: int, client: tuple[str, int], server: tuple[str, int], is_server: bool) -> Fd:
    fd = Fd(num, "ipv4", l4proto="tcp")
    fd.set_tuple(client[0], client[1], server[0], server[1])
    fd.is_server = is_server
    return fd


CID = "abc123def456"


def scenario() -> Synth:
    """A small node: alice's bash (under sshd) runs curl and a nested sh, dd writes files, nginx in
    container "web" serves a connection; CPU samples every second."""
    s = Synth()
    s.user(0, "root")
    s.user(1000, "alice")
    s.container(CID, "web", "nginx:1.25")
    s.thread(1, comm="systemd", exe="/sbin/init", uid=0, fdlimit=1024, vmsize_kb=170000, vmrss_kb=12000)
    s.thread(500, ptid=1, comm="sshd", exe="sshd:", args=["alice@pts/0"], uid=0, fdlimit=1024,
             vmsize_kb=16000, vmrss_kb=9000)
    s.thread(600, ptid=500, comm="bash", exe="-bash", uid=1000, cwd="/home/alice", fdlimit=1024,
             vmsize_kb=9000, vmrss_kb=5200)
    s.thread(800, ptid=1, comm="nginx", exe="nginx", args=["-g", "daemon off;"], uid=0, container_id=CID,
             vtid=1, vpid=1, fdlimit=1048576, vmsize_kb=11000, vmrss_kb=7000)
    s.thread(801, 800, ptid=1, comm="nginx", exe="nginx", args=["-g", "daemon off;"], uid=0, container_id=CID,
             vtid=2, vpid=1, fdlimit=1048576, vmsize_kb=11000, vmrss_kb=7000)
    s.thread(900, ptid=600, comm="dd", exe="dd", args=["if=/dev/zero", "of=/tmp/big"], uid=1000, fdlimit=1024,
             vmsize_kb=5000, vmrss_kb=1000, start_ts=T0 - 5 * 10**9)
    for pid in (600, 900):
        s.fd(pid, Fd(0, "unknown", "/dev/pts/0"))
        s.fd(pid, Fd(1, "unknown", "/dev/pts/0"))
    s.fd(500, server_fd(3, "0.0.0.0", 22))
    s.fd(500, conn_fd(4, ("10.0.0.7", 50022), ("10.0.0.2", 22), True))
    s.fd(800, server_fd(6, "0.0.0.0", 80))
    s.fd(800, conn_fd(7, ("172.17.0.1", 51000), ("172.17.0.2", 80), True))
    s.fd(900, Fd(3, "file", "/dev/zero"))
    s.fd(900, Fd(4, "file", "/tmp/big", flags=O_WRONLY_CREAT))

    s.at(1)
    s.read(500, 500, 4, b"\x00\x01ssh-bytes", latency=2_000)
    s.write(500, 500, 4, b"\x02" * 36, latency=3_000)
    # First CPU round: everyone's baseline.
    s.cpu_round(100, {(600, 600): 100, (800, 800): 1000, (801, 800): 500, (900, 900): 40})
    # alice: cd, then curl (bash forks 700, which execs curl), then sh -c "ls" (710 -> 711).
    s.at(200)
    s.chdir(600, 600, "/tmp")
    s.clone(600, 600, 700)
    s.execve(700, 700, "/usr/bin/curl", ["curl", "-s", "http://10.0.0.9/"])
    s.connect(700, 700, 3, ("10.0.0.2", 41000), ("10.0.0.9", 80))
    s.write(700, 700, 3, b"GET / HTTP/1.1\r\nHost: 10.0.0.9\r\n\r\n", latency=20_000)
    s.read(700, 700, 3, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", latency=1_500_000)
    s.read(700, 700, 3, b"", latency=1_000)  # EOF: 0 bytes, counts nowhere
    s.call("close", 700, 700, 0, (3,))
    s.at(300)
    s.clone(600, 600, 710)
    s.execve(710, 710, "/bin/sh", ["sh", "-c", "ls /tmp"])
    s.clone(710, 710, 711)
    s.execve(711, 711, "/bin/ls", ["ls", "/tmp"])
    s.openat(711, 711, 3, "/tmp", 0o200000)
    s.call("getdents64", 711, 711, 48, (3,))
    s.write(711, 711, 1, b"big\n")
    s.procexit(711, 711)
    s.procexit(710, 710)
    # nginx serves: a request in, a response out.
    s.at(400)
    s.read(800, 800, 7, b"GET /index.html HTTP/1.1\r\nHost: web\r\n\r\n", latency=4_000)
    s.write(801, 800, 7, b"HTTP/1.1 200 OK\r\n\r\n" + b"<html>" + b"x" * 2000, latency=12_000)
    s.call("epoll_wait", 800, 800, 1, (5, 0, 64, -1), latency=250 * MS)
    # dd copies 3 x 64 KiB from /dev/zero to /tmp/big; one slow write.
    s.at(700)
    for lat in (30_000, 45_000, 12 * MS):
        s.read(900, 900, 3, b"\0" * 80, latency=5_000)
        s.rec(900, 900, SYSCALL_NR["write"] * 2, 0, (4, 0, 65536))
        s.rec(900, 900, SYSCALL_NR["write"] * 2 + 1, 65536, (4, 0, 65536), b"\0" * 80, dt=lat)
    # A failed write counts nowhere.
    s.call("write", 900, 900, -28, (4, 0, 65536), latency=2_000)  # ENOSPC
    s.cpu_round(1100, {(600, 600): 110, (800, 800): 1050, (801, 800): 550, (700, 700): 20, (900, 900): 90})
    s.at(1500)
    s.procexit(700, 700)
    s.openat(900, 900, 5, "/var/log/dd.log", O_WRONLY_CREAT)
    s.write(900, 900, 5, b"copied 196608 bytes\n", latency=8_000)
    s.cpu_round(2100, {(800, 800): 1080, (900, 900): 95})
    s.at(2200)
    s.procexit(900, 900)
    return s


@pytest.fixture(scope="session")
def scenario_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return scenario().save(tmp_path_factory.mktemp("chisels") / "scenario.kcap")


@pytest.fixture
def empty_capture(tmp_path: Path) -> str:
    """Tables (a thread, a container) and no event at all."""
    s = Synth()
    s.container(CID, "web", "nginx:1.25")
    s.thread(1, comm="systemd")
    return s.save(tmp_path / "empty.kcap")


@pytest.fixture(autouse=True)
def _stable_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """UTC times, and no environment that would make rich see a terminal or colours."""
    monkeypatch.setenv("TZ", "UTC")
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS", "LINES",
                "KTRACE_CHISEL_DIR"):
        monkeypatch.delenv(var, raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_ktrace(*args: str) -> Result:
    """Run the CLI in-process, as `ktrace ARGS`, capturing stdout and stderr."""
    from tracer.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def check_golden(name: str, text: str) -> None:
    """Compare with tests/chisels/golden/NAME; KTRACE_UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden file {path} (run with KTRACE_UPDATE_GOLDEN=1 to create it)")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert text == path.read_text(), f"output differs from {path}"


@pytest.fixture
def ktrace() -> Any:
    """``ktrace("-r", path, "-c", "topconns")`` runs the CLI in-process: Result(code, out, err)."""
    return run_ktrace


@pytest.fixture
def golden() -> Any:
    """``golden("name.txt", text)`` compares with tests/chisels/golden/name.txt."""
    return check_golden
