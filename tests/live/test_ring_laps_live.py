"""The ring consumer over many laps of a small ring: a child writes one byte to /dev/null a known
number of times while the ring is drained concurrently; every write's enter and exit must come
out whole and in order for its thread (arguments as the child passed them, the result it got),
timestamps moved onto the wall clock between the child's start and end, and nothing lost that
the kernel did not count as dropped."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracer.engine import ring as _ring
from tracer.probe.loader import Probe, ProbeConfig
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR

pytestmark = pytest.mark.live

COMM = "ktringlaps"
FD = 100
WRITES = 150_000  # ~27 MB of records through a 1 MiB ring: ~27 laps, wrapping records included
WRITE_E = R.syscall_evt(SYSCALL_NR["write"], R.DIR_ENTER)
WRITE_X = R.syscall_evt(SYSCALL_NR["write"], R.DIR_EXIT)
CHILD = """
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
fd = os.dup2(os.open("/dev/null", os.O_WRONLY), int(sys.argv[3]))
for i in range(int(sys.argv[2])):
    os.write(fd, b"x")
    if i % 2000 == 0:
        time.sleep(0.001)  # paced, so the drains can keep up with the laps
"""


def test_many_laps_of_a_small_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(tmp_path / "cache"))
    probe = Probe(ProbeConfig(ring_mb=1, evts=frozenset({WRITE_E, WRITE_X}), comms=frozenset({COMM})))
    batches: list[bytes] = []
    stop = threading.Event()
    offset = time.time_ns() - time.monotonic_ns()
    try:
        ring = _ring.Ring(probe.ring_fd, offset)

        def drain() -> None:
            while not stop.is_set():
                b = ring.drain()
                if b:
                    batches.append(b)
                time.sleep(0.0005)
            batches.append(ring.drain())

        t = threading.Thread(target=drain)
        t.start()
        t0 = time.time_ns()
        subprocess.run([sys.executable, "-c", CHILD, COMM, str(WRITES), str(FD)], check=True)
        t1 = time.time_ns()
        time.sleep(0.05)
        stop.set()
        t.join()
        count = ring.count
        ring.close()
        dropped = probe.stats()["drops_buffer"]
    finally:
        probe.close()
    data = b"".join(batches)
    recs = []
    off = 0
    while off < len(data):
        f = struct.unpack_from(R.FIXED_FMT, data, off)
        assert f[5] >= R.REC_FIXED and f[5] % 8 == 0 and off + f[5] <= len(data), f"bad record at {off}"
        recs.append(f)
        off += f[5]
    assert len(recs) == count
    assert dropped < WRITES  # most of the laps were read, not dropped
    assert len(recs) + dropped == 2 * WRITES
    for f in recs:
        ts, _tid, _pid, evt, _cpu, _len, ret, a0, _a1, a2 = f[:10]
        assert t0 <= ts <= t1
        assert a0 == FD and a2 == 1
        assert evt == WRITE_E or (evt == WRITE_X and ret == 1)
    if not dropped:
        assert all(recs[i][3] == (WRITE_E if i % 2 == 0 else WRITE_X) for i in range(len(recs)))
