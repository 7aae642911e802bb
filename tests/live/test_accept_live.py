"""Accepted connections named by the kernel: a forking server (tests/live/forkserver.py) that calls
accept(fd, NULL, NULL) and closes each connection as soon as its bytes have moved, traced by name.

The test is the client: the tuple it sees (getsockname, getpeername) and the bytes it sends and
receives are the oracle. Every read and write of the server's children must carry that tuple as
fd.name, and topconns must count both halves of each connection: what the test sent (the server's
reads) and what it received (the server's writes).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from livekit import PYTHON, Ktrace, _wait, env, json_events, ktrace_argv

pytestmark = pytest.mark.live

SERVER = Path(__file__).resolve().parent / "forkserver.py"
FILTER = "proc.name=ktaccept"
FMT = "%evt.num %evt.type %evt.dir %proc.pid %fd.num %fd.name %fd.type %evt.rawres %evt.info"
# (bytes the test sends after the 8-byte header, bytes it asks back): the 300000-byte exchange of
# a forked server, a small request with a large answer, one with none, and a tiny one.
SIZES = [(300000, 300000), (100, 200000), (65536, 0), (1, 1)]


@dataclass
class Conn:
    name: str  # client->server, as the client saw it
    sent: int
    received: int


class Server:
    def __init__(self, cwd: Path, host: str) -> None:
        self.host = host
        self.proc = subprocess.Popen([PYTHON, str(SERVER), host], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=cwd)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[str] = self.proc.stdin
        self._out: IO[str] = self.proc.stdout
        self.port: int = json.loads(self._out.readline())["port"]

    def wait_seen(self, kt: Ktrace) -> None:
        """Until ktrace's output shows the server's ping (the probe is running)."""

        def ping() -> None:
            self._in.write("ping\n")
            self._in.flush()
            assert self._out.readline().strip() == "pong"

        _wait(lambda: "ktrace-ready-probe" in kt.text(), 120, kt, "ktrace to show the server", poke=ping)

    def go(self) -> list[Conn]:
        self._in.write("go\n")
        self._in.flush()
        return [exchange(self.host, self.port, up, down) for up, down in SIZES]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def exchange(host: str, port: int, up: int, down: int) -> Conn:
    with socket.create_connection((host, port)) as c:
        data = up.to_bytes(4, "little") + down.to_bytes(4, "little") + b"u" * up
        c.sendall(data)
        got = 0
        while chunk := c.recv(65536):
            got += len(chunk)
        assert got == down
        (cip, cport, *_), (sip, sport, *_) = c.getsockname(), c.getpeername()
    return Conn(f"{cip}:{cport}->{sip}:{sport}", len(data), got)


def complete(text: str) -> str:
    """The whole lines of output still being written."""
    return text[:text.rfind("\n") + 1]


def closed_children(text: str, parent: int) -> set[int]:
    return {int(e["proc.pid"]) for e in json_events(complete(text))
            if e["evt.type"] == "close" and e["evt.dir"] == "<" and e["proc.pid"] != parent}


@pytest.fixture(params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    s = Server(tmp_path, request.param)
    yield s
    s.kill()


def test_accepted_fds_carry_the_tuple_the_client_saw(server: Server, tmp_path: Path) -> None:
    kt = Ktrace(["-D", "-j", "-p", FMT, FILTER], tmp_path / "out.json")
    try:
        server.wait_seen(kt)
        conns = server.go()
        # Each child's last event, its close's exit, shows before ktrace stops.
        _wait(lambda: len(closed_children(kt.text(), server.proc.pid)) >= len(conns), 60, kt, "the children's closes")
    finally:
        assert kt.stop() == 0, kt.stderr()
    events = json_events(kt.text())
    io = [e for e in events if e["evt.type"] in ("read", "write") and e["fd.type"] in ("ipv4", "ipv6")]
    by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in io:
        by_pid[int(e["proc.pid"])].append(e)
    assert len(by_pid) == len(conns), sorted(by_pid)
    seen: dict[str, tuple[int, int]] = {}
    for evs in by_pid.values():
        exits = [e for e in evs if e["evt.dir"] == "<"]
        names = {e["fd.name"] for e in exits}
        assert len(names) == 1, names
        name = str(names.pop())
        seen[name] = (sum(int(e["evt.rawres"]) for e in exits if e["evt.type"] == "read"),
                      sum(int(e["evt.rawres"]) for e in exits if e["evt.type"] == "write"))
        # The enters after the first exit are named too (the first one's may come before the
        # kernel has seen the socket).
        first = min(int(e["evt.num"]) for e in exits)
        assert {e["fd.name"] for e in evs if int(e["evt.num"]) > first} == {name}
    assert seen == {c.name: (c.sent, c.received) for c in conns}
    # The names came from the probe: one "accepted" record per connection (-D), naming its fd.
    accepted = [re.fullmatch(r"fd=\d+\(<[46]t>(.*)\) ", str(e["evt.info"]))
                for e in events if e["evt.type"] == "accepted"]
    assert sorted(m[1] if m else "" for m in accepted) == sorted(c.name for c in conns)


def test_topconns_counts_both_halves(server: Server, tmp_path: Path) -> None:
    kt = Ktrace(["-j", "-c", "topconns", FILTER], tmp_path / "tables.json")
    try:
        _wait(lambda: any(line.startswith("{") for line in kt.text().splitlines()), 120, kt, "a first table")
        conns = server.go()
        names = {c.name for c in conns}
        _wait(lambda: names <= {row[1] for t in json_events(complete(kt.text())) for row in t["data"]}, 60, kt,
              "every connection in a table")
        count = len(kt.text().splitlines())
        _wait(lambda: len(kt.text().splitlines()) > count, 10, kt, "one more table")  # the rest of that second
    finally:
        assert kt.stop() == 0, kt.stderr()
    total: dict[str, int] = defaultdict(int)
    for t in json_events(kt.text()):
        for row in t["data"]:
            total[row[1]] += row[-1]
    assert {n: total[n] for n in names} == {c.name: c.sent + c.received for c in conns}


def test_a_filtered_capture_keeps_the_names(server: Server, tmp_path: Path) -> None:
    """ktrace -w FILE FILTER, then topconns over the file: the kernel's names went into it."""
    cap = tmp_path / "srv.kcap"
    kt = Ktrace(["-w", str(cap), FILTER], tmp_path / "w.out")
    try:
        kt.wait_stderr("capturing")
        conns = server.go()  # the children's last writes are in the ring before ktrace is stopped
    finally:
        assert kt.stop() == 0, kt.stderr()
    p = subprocess.run([*ktrace_argv(), "-r", str(cap), "-j", "-c", "topconns"], capture_output=True, text=True,
                       env=env(), timeout=300)
    assert p.returncode == 0, p.stderr
    total: dict[str, int] = defaultdict(int)
    for t in json_events(p.stdout):
        for row in t["data"]:
            total[row[1]] += row[-1]
    assert {c.name: total[c.name] for c in conns} == {c.name: c.sent + c.received for c in conns}
