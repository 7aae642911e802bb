"""The probe's EVT_ACCEPTED record, read straight from the ring: a child accepts a connection
without asking its address, reads from it, and reports the fd and both ends as it saw them
(getsockname/getpeername on the accepted socket). And the probe without the tracepoints that give
it: it loads, and says what it left out."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tracer.engine import ring as _ring
from tracer.probe import cache, loader
from tracer.probe.image import Image, ProgSpec
from tracer.probe.loader import Probe, ProbeConfig
from tracer.schema import record as R
from tracer.schema import tracepoints as TP
from tracer.schema.events import SYSCALL_NR

pytestmark = pytest.mark.live

COMM = "ktacceptprobe"
READ_X = R.syscall_evt(SYSCALL_NR["read"], R.DIR_EXIT)
CHILD = """
import ctypes, json, os, socket, sys
libc = ctypes.CDLL(None)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)
libc.accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
lsn = socket.socket()
lsn.bind(("127.0.0.1", 0))
lsn.listen(1)
cli = socket.create_connection(lsn.getsockname())
fd = libc.accept(lsn.fileno(), None, None)
cli.sendall(b"0123456789abcdefghij")
assert os.read(fd, 10) == b"0123456789"
assert os.read(fd, 10) == b"abcdefghij"  # a second one: only the first names the fd
srv = socket.socket(fileno=os.dup(fd))
print(json.dumps({"fd": fd, "local": srv.getsockname(), "remote": srv.getpeername()}))
"""


def records(ring: _ring.Ring, fd: int, seconds: float = 5.0) -> list[tuple[Any, ...]]:
    """(evt, tid, a0..a3, payload) of every record, until two read exits on ``fd`` are in (or
    ``seconds`` pass)."""
    out: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = ring.drain()
        off = 0
        while off < len(batch):
            f = struct.unpack_from(R.FIXED_FMT, batch, off)
            length, l0 = f[5], f[13]
            out.append((f[3], f[1], *f[7:11], batch[off + R.REC_FIXED:off + R.REC_FIXED + l0]))
            off += length
        if sum(1 for r in out if r[0] == READ_X and r[2] == fd) >= 2:
            break
        time.sleep(0.01)
    return out


def test_accepted_names_the_fd_the_program_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(tmp_path / "cache"))
    probe = Probe(ProbeConfig(ring_mb=4, evts=frozenset({READ_X, R.EVT_ACCEPTED}), comms=frozenset({COMM})))
    try:
        assert probe.notes == []
        ring = _ring.Ring(probe.ring_fd, 0)
        p = subprocess.run([sys.executable, "-c", CHILD, COMM], capture_output=True, text=True, check=True)
        seen = json.loads(p.stdout)
        got = records(ring, seen["fd"])
        ring.close()
    finally:
        probe.close()
    accepted = [r for r in got if r[0] == R.EVT_ACCEPTED]
    assert len(accepted) == 1, got
    _, _, fd, family, lport, rport, payload = accepted[0]
    n = TP.ADDR_BYTES
    assert (fd, family, lport, rport) == (seen["fd"], TP.AF_INET, seen["local"][1], seen["remote"][1])
    assert (socket.inet_ntoa(payload[:4]), socket.inet_ntoa(payload[n:n + 4])) == (seen["local"][0], seen["remote"][0])
    # It comes inside the first read on that fd, before its exit; the second read adds nothing.
    order = [r[0] for r in got if r[0] in (READ_X, R.EVT_ACCEPTED) and r[2] == seen["fd"]]
    assert order == [R.EVT_ACCEPTED, READ_X, READ_X]


def test_probe_without_the_sock_io_tracepoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without sock_send_length (before 6.3): the raw tracepoint cannot be attached; the
    probe loads all the same and notes it (-v)."""
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(tmp_path / "cache"))
    obtain = cache.obtain

    def renamed(src: Path, flags: list[str]) -> tuple[Image, cache.Outcome]:
        image, outcome = obtain(src, flags)
        progs = tuple(ProgSpec(p.name, "no_such_tracepoint", p.insns, p.refs, p.license)
                      if p.tracepoint == "sock_send_length" else p for p in image.programs)
        return Image(image.maps, progs), outcome

    monkeypatch.setattr(loader.cache, "obtain", renamed)
    probe = Probe(ProbeConfig(ring_mb=1))
    try:
        assert len(probe.notes) == 1 and probe.notes[0].startswith("no_such_tracepoint not attached ("), probe.notes
    finally:
        probe.close()
