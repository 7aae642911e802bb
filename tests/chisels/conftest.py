"""The scenario capture the golden tests share, made with tracer.testing's CaptureBuilder, and
the CLI and golden-file fixtures."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.state.tables import Fd
from tracer.testing import MS, T0, CaptureBuilder, run_cli

O_WRONLY_CREAT = 0o101
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("KTRACE_UPDATE_GOLDEN") == "1"


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


def scenario() -> CaptureBuilder:
    """A small node: alice's bash (under sshd) runs curl and a nested sh, dd writes files, nginx in
    container "web" serves a connection; CPU samples every second."""
    s = CaptureBuilder()
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
        s.rec(900, 900, R.syscall_evt(SYSCALL_NR["write"], R.DIR_ENTER), 0, (4, 0, 65536))
        s.rec(900, 900, R.syscall_evt(SYSCALL_NR["write"], R.DIR_EXIT), 65536, (4, 0, 65536), b"\0" * 80, dt=lat)
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
    s = CaptureBuilder()
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
    return run_cli


@pytest.fixture
def golden() -> Any:
    """``golden("name.txt", text)`` compares with tests/chisels/golden/name.txt."""
    return check_golden
