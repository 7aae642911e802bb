"""Kernel pushdown, counted: events a filter cannot match never leave the kernel.

The oracle is the workload itself: a dd storm makes a known number of read/write syscalls; with
`evt.type=openat` the reads and writes in the capture must stay far below them, while
the unfiltered run accounts for them all: each one captured or counted as dropped (a busy machine
drops some when the consumer falls behind; that is allowed, losing count of them is not).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from livekit import env, ktrace_argv

pytestmark = pytest.mark.live

STORM = 200_000  # dd bs=1: one read and one write per byte, each an enter and an exit
SUMMARY = re.compile(r"ktrace: (\d+) events captured, (\d+) dropped")


def _storm(tmp: Path, *args: str) -> tuple[int, int]:
    """(captured, dropped) as ktrace's summary line gives them, for a run around the storm."""
    kt = subprocess.Popen([*ktrace_argv(), "-w", str(tmp / "storm.kcap"), *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env())
    try:
        assert kt.stderr is not None
        line = kt.stderr.readline()  # "ktrace: capturing..." once the probe is attached
        assert "capturing" in line, line
        subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={STORM}"], check=True,
                       capture_output=True)
        time.sleep(0.3)
    finally:
        kt.send_signal(signal.SIGINT)
    _, err = kt.communicate(timeout=120)
    assert kt.returncode == 0, err
    m = SUMMARY.search(err)
    assert m, err
    return int(m[1]), int(m[2])


def _capinfo(path: Path) -> dict[str, Any]:
    out = subprocess.run([*ktrace_argv(), "capinfo", "-j", str(path)], capture_output=True, text=True, env=env(),
                         timeout=120, check=True).stdout
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def test_unfiltered_run_counts_the_storm(tmp_path: Path) -> None:
    captured, dropped = _storm(tmp_path)
    assert captured + dropped >= 4 * STORM
    assert captured > 0


@pytest.mark.parametrize("flt", ["evt.type=openat", "proc.name=ktnosuchproc", "evt.is_io=false and evt.type=close"])
def test_filtered_storm_stays_in_the_kernel(tmp_path: Path, flt: str) -> None:
    # The state-keeping syscalls (open, close, clone, exec...) still come up; the storm's reads
    # and writes do not.
    # Counted in the capture, not in the summary: other programs' openat and close calls, which
    # the filter rightly lets through, grow with the machine's load; reads and writes do not.
    _, dropped = _storm(tmp_path, flt)
    assert dropped == 0
    by_type = _capinfo(tmp_path / "storm.kcap")["events_by_type"]
    assert by_type.get("read", 0) + by_type.get("write", 0) < STORM // 10


RENAMER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None)
tid = libc.syscall(186)  # gettid
def name(n):
    libc.prctl(15, n.encode(), 0, 0, 0)  # PR_SET_NAME
def phase(tag):
    for i in range(50):
        try:
            os.stat(f"{sys.argv[1]}/{tag}-{i}")
        except FileNotFoundError:
            pass
name("ktbefore"); phase("A")
name("ktrenamed"); phase("B")
with open(f"/proc/self/task/{tid}/comm", "w") as f:  # another way to change one's name
    f.write("ktafter")
phase("C")
name("ktrenamed"); phase("D")
"""


def test_comm_filter_follows_each_rename(tmp_path: Path) -> None:
    """The kernel's comm filter remembers its last verdict per thread: a thread that changes its
    name (prctl, or a write to /proc/.../comm) must be judged by the new one from its next call."""
    cap = tmp_path / "r.kcap"
    kt = subprocess.Popen([*ktrace_argv(), "-w", str(cap), "proc.name=ktrenamed"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env())
    try:
        assert kt.stderr is not None
        assert "capturing" in kt.stderr.readline()
        subprocess.run([sys.executable, "-c", RENAMER, str(tmp_path)], check=True)
        time.sleep(0.3)
    finally:
        kt.send_signal(signal.SIGINT)
    _, err = kt.communicate(timeout=120)
    assert kt.returncode == 0, err
    rep = subprocess.run([*ktrace_argv(), "-r", str(cap), "-p", "%evt.arg.path",
                          "evt.type=newfstatat and evt.dir=<"], capture_output=True, text=True, env=env(), timeout=120)
    assert rep.returncode == 0, rep.stderr
    seen = {Path(line).name for line in rep.stdout.split() if line.startswith(str(tmp_path))}
    assert seen == {f"{tag}-{i}" for tag in "BD" for i in range(50)}, sorted(seen)[:10]
