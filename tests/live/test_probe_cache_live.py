"""The probe loaded from the cache sees what the freshly compiled one sees.

Both are attached at once; a child process makes two openat calls on paths this test chose, one
creating a file and one failing, and reports what it got. The oracle is the child's report and
the file it created.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracer.engine import ring as _ring
from tracer.probe.loader import Probe, ProbeConfig
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR

pytestmark = pytest.mark.live

COMM = "ktcachework"
OPENAT_EXIT = R.syscall_evt(SYSCALL_NR["openat"], R.DIR_EXIT)
CHILD = """
import ctypes, json, os, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY, 0o600)
try:
    os.open(sys.argv[3], os.O_RDONLY)
    err = 0
except OSError as e:
    err = e.errno
print(json.dumps({"pid": os.getpid(), "fd": fd, "errno": err}))
"""


def opens(batch: bytes, paths: set[bytes]) -> list[tuple[int, int, bytes]]:
    """(tid, return value, path) of the openat exits on ``paths`` in ``batch``."""
    out = []
    off = 0
    while off < len(batch):
        f = struct.unpack_from(R.FIXED_FMT, batch, off)
        evt, length, ret, l0 = f[3], f[5], f[6], f[13]
        path = batch[off + R.REC_FIXED : off + R.REC_FIXED + l0]
        if evt == OPENAT_EXIT and path in paths:
            out.append((f[1], ret, path))
        off += length
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the probe is compiled once."""
    return tmp_path_factory.mktemp("probe-cache")


def test_cached_probe_sees_what_the_compiled_one_sees(tmp_path: Path, cache_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(cache_dir))
    for old in cache_dir.iterdir():
        old.unlink()
    made, missing = tmp_path / "made", tmp_path / "no-such-dir" / "x"
    cfg = ProbeConfig(ring_mb=1, evts=frozenset({OPENAT_EXIT}), comms=frozenset({COMM}))
    compiled = Probe(cfg)
    probes = [compiled]
    try:
        cached = Probe(cfg)
        probes.append(cached)
        assert (compiled.cache.status, cached.cache.status) == ("miss", "hit")
        rings = [_ring.Ring(p.ring_fd, 0) for p in probes]
        child = subprocess.run([sys.executable, "-c", CHILD, COMM, str(made), str(missing)], capture_output=True,
                               text=True, check=True)
        report = json.loads(child.stdout)
        assert made.exists() and report["errno"] == errno.ENOENT
        want = [(report["pid"], report["fd"], str(made).encode()), (report["pid"], -errno.ENOENT,
                                                                    str(missing).encode())]
        seen: list[list[tuple[int, int, bytes]]] = [[], []]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(len(s) < 2 for s in seen):
            for s, r in zip(seen, rings, strict=True):
                s.extend(opens(r.drain(), {str(made).encode(), str(missing).encode()}))
            time.sleep(0.01)
        for r in rings:
            r.close()
        assert seen == [want, want]
        for p in probes:
            st = p.stats()
            assert st["events"] >= 2 and st["drops_buffer"] == 0
    finally:
        for p in probes:
            p.close()


def test_per_run_settings(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-run settings live in a map, not in the cached program: ktrace's own process is never
    seen, and a pid filter keeps only its pids."""
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(cache_dir))
    target = tmp_path / "mine"
    paths = {str(target).encode()}
    other = subprocess.Popen(["sleep", "30"])
    probes = []
    try:
        everyone = Probe(ProbeConfig(ring_mb=1, evts=frozenset({OPENAT_EXIT})))
        probes.append(everyone)
        only_other = Probe(ProbeConfig(ring_mb=1, evts=frozenset({OPENAT_EXIT}), pids=frozenset({other.pid})))
        probes.append(only_other)
        rings = [_ring.Ring(p.ring_fd, 0) for p in probes]
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))  # ktrace's own: never seen
        cat = subprocess.Popen(["cat", str(target)])
        assert cat.wait() == 0
        seen: list[list[tuple[int, int, bytes]]] = [[], []]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not seen[0]:
            for s, r in zip(seen, rings, strict=True):
                s.extend(opens(r.drain(), paths))
            time.sleep(0.01)
        for r in rings:
            r.close()
        assert len(seen[0]) == 1 and seen[0][0][0] == cat.pid and seen[0][0][1] >= 0
        assert seen[1] == []
    finally:
        for p in probes:
            p.close()
        other.kill()
        other.wait()


def test_cgroup_verdicts(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cgroup filter's maps through the loader's own map objects: an unjudged cgroup passes
    and is reported once, a "no" verdict drops its events, forgetting the verdict lets them pass."""
    from tracer.enrich.cgroupid import cgroup_id, unified_root, v2_path

    root = unified_root()
    rel = v2_path(Path("/proc/self/cgroup").read_text())
    if root is None or rel is None:
        pytest.skip("no cgroup v2 hierarchy")
    cg = cgroup_id(os.path.join(root, rel.lstrip("/")))
    assert cg is not None
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(cache_dir))
    target = tmp_path / "cg"
    target.write_text("x")
    p = Probe(ProbeConfig(ring_mb=1, evts=frozenset({OPENAT_EXIT}), cgroups={}))
    r = _ring.Ring(p.ring_fd, 0)

    def cat_seen() -> bool:
        cat = subprocess.Popen(["cat", str(target)], stdout=subprocess.DEVNULL)
        assert cat.wait() == 0
        time.sleep(0.05)
        return any(tid == cat.pid for tid, _, _ in opens(r.drain(), {str(target).encode()}))

    try:
        assert cat_seen()
        assert cg in {c for c, _ in p.new_cgroups()}
        assert p.set_cgroups({cg: False}) == 1
        assert not cat_seen()
        p.forget_cgroups([cg])
        assert cat_seen()
        assert cg in {c for c, _ in p.new_cgroups()}
    finally:
        r.close()
        p.close()


def test_registers_past_the_arity_are_zeroed(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close takes one argument: what a program leaves in the other five registers is not kept;
    the clone family keeps all six (a child is paired with its parent by them)."""
    monkeypatch.setenv("KTRACE_CACHE_DIR", str(cache_dir))
    close_x = R.syscall_evt(SYSCALL_NR["close"], R.DIR_EXIT)
    comm = "ktregs"
    child_src = """
import ctypes, os, sys
libc = ctypes.CDLL(None)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)
fd = os.open("/dev/null", os.O_RDONLY)
libc.syscall(3, fd, 0xdead, 0xbeef, 0xcafe, 0xf00d, 0x1234)
print(fd)
"""
    probe = Probe(ProbeConfig(ring_mb=1, evts=frozenset({close_x}), comms=frozenset({comm})))
    try:
        ring = _ring.Ring(probe.ring_fd, 0)
        fd = int(subprocess.run([sys.executable, "-c", child_src, comm], capture_output=True, text=True,
                                check=True).stdout)
        args: list[tuple[int, ...]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not args:
            batch = ring.drain()
            off = 0
            while off < len(batch):
                f = struct.unpack_from(R.FIXED_FMT, batch, off)
                if f[3] == close_x and f[7] == fd:
                    args.append(f[7:13])
                off += f[5]
            time.sleep(0.01)
        ring.close()
        assert args == [(fd, 0, 0, 0, 0, 0)]
    finally:
        probe.close()
