"""A writer killed with SIGKILL loses at most about flush_interval of events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tracer.capture import CaptureReader, EventBlock

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, time
    from tracer.capture import CaptureWriter
    from tracer.schema.record import pack_record

    w = CaptureWriter(sys.argv[1], {}, flush_interval=1.0)
    ts = 1_700_000_000_000_000_000
    total = 0
    while True:
        recs = []
        for i in range(50):
            ts += 250
            recs.append(pack_record(ts, 7, 7, i & 1, seg0=b"x" if i & 1 else b""))
        w.write_events(b"".join(recs), 50, ts - 49 * 250, ts)
        total += 50
        print(time.monotonic(), total, flush=True)
        time.sleep(0.01)
    """
)


def test_kill_9_loses_at_most_the_last_second(tmp_path: Any) -> None:
    path = os.fspath(tmp_path / "k.kcap")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
    assert child.stdout is not None
    reports: list[tuple[float, int]] = []
    try:
        first = child.stdout.readline()
        assert first, "the child did not start"
        reports.append((float(first.split()[0]), int(first.split()[1])))
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            line = child.stdout.readline()
            if not line:
                break
            t, n = line.split()
            reports.append((float(t), int(n)))
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
    finally:
        child.kill()
        child.wait()
    for line in rest.splitlines():
        t, n = line.split()
        reports.append((float(t), int(n)))
    assert child.returncode == -signal.SIGKILL
    must_have = max((n for t, n in reports if t <= killed_at - 1.5), default=0)
    assert must_have >= 50, reports[:3]
    r = CaptureReader(path)
    got = sum(i.count for i in r if isinstance(i, EventBlock))
    assert got >= must_have, (got, must_have, reports[-1])
    assert got <= reports[-1][1]
    assert r.notes and r.notes[-1].startswith(f"capture truncated: recovered {got} events")
    print("kill -9:", got, "recovered;", must_have, "required;", reports[-1][1], "written")
