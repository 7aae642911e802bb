"""Kernel pushdown, counted: events a filter cannot match never leave the kernel.

The oracle is the workload itself: a dd storm makes a known number of read/write syscalls; with
`evt.type=openat` the probe's own count (the stderr summary line) must stay far below them, while
the unfiltered run counts them all.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from livekit import env, ktrace_argv

pytestmark = pytest.mark.live

STORM = 200_000  # dd bs=1: one read and one write per byte, each an enter and an exit
SUMMARY = re.compile(r"ktrace: (\d+) events captured, (\d+) dropped")


def _captured_during_storm(tmp: Path, *args: str) -> int:
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
    assert int(m[2]) == 0, err
    return int(m[1])


def test_unfiltered_run_counts_the_storm(tmp_path: Path) -> None:
    assert _captured_during_storm(tmp_path) >= 4 * STORM


@pytest.mark.parametrize("flt", ["evt.type=openat", "proc.name=ktnosuchproc", "evt.is_io=false and evt.type=close"])
def test_filtered_storm_stays_in_the_kernel(tmp_path: Path, flt: str) -> None:
    # The state-keeping syscalls (open, close, clone, exec...) still come up; the storm's reads
    # and writes do not.
    assert _captured_during_storm(tmp_path, flt) < STORM // 10
