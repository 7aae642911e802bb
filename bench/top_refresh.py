"""What ``ktrace top``'s live views cost over a plain capture, on a busy node.

    sudo .venv/bin/python bench/top_refresh.py --rounds 5 --seconds 10 [--view procs]

A workload (dd moving 64-byte blocks from /dev/zero to /dev/null: a read and a write per block)
keeps the node busy while, alternately, ktrace captures (``ktrace -w F -q -M S``) or ktrace top's
engine runs live (LiveViews, as the terminal UI runs it: every event through the view's
aggregator, a table every second, no terminal drawing). Reported: each one's CPU (user + system,
percent of one core, from wait4) and the views' cost beyond the capture's; the target is at most
10 points of a core.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    KTRACE,
    PYTHON,
    REPO,
    apply_nice,
    common_args,
    dump_json,
    log,
    machine,
    machine_line,
    need_root,
    run_capture,
    table,
    wait_quiet,
)

CHILD = r'''
import sys, threading, time
from tracer.views import LiveViews, find_view
seconds, view = float(sys.argv[1]), sys.argv[2]
tables = []
errors = []
live = LiveViews(on_table=tables.append, on_error=errors.append, interval_ms=1000)
live.set_view(find_view(view))
live.start()
time.sleep(seconds)
live.stop()
if errors:
    sys.exit(f"ktrace: {errors[0]}")
print(f"tables={len(tables)} rows={len(tables[-1].rows) if tables else 0} drops={live.drops()}", file=sys.stderr)
'''


def workload(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["timeout", str(seconds + 3), "dd", "if=/dev/zero", "of=/dev/null", "bs=64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one(kind: str, seconds: float, view: str, workdir: Path) -> tuple[float, str]:
    """Percent of a core the variant took while the workload ran, and its last stderr line."""
    load = workload(seconds)
    try:
        if kind == "capture":
            argv = [KTRACE, "-w", str(workdir / "cap.kcap"), "-q", "-M", str(seconds)]
        else:
            argv = [PYTHON, "-c", CHILD, str(seconds), view]
        done = run_capture(argv, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    finally:
        load.terminate()
        load.wait()
    if done.code != 0:
        sys.exit(f"{kind} failed: {done.stderr.strip()}")
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return 100.0 * done.cpu / done.wall, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, rounds=5)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each run (default %(default)s)")
    ap.add_argument("--view", default="procs", help="the view the live engine runs (default %(default)s)")
    a = ap.parse_args()
    need_root()
    apply_nice(a)
    log(machine_line())
    res: dict[str, list[float]] = {"capture": [], "views": []}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(a.workdir or tmp)
        for r in range(a.rounds):
            for kind in ("capture", "views"):
                if not a.no_wait_quiet:
                    wait_quiet()
                pct, note = one(kind, a.seconds, a.view, workdir)
                res[kind].append(pct)
                notes[kind] = note
                log(f"round {r + 1} {kind}: {pct:.1f}% of a core ({note})")
    med = {k: statistics.median(v) for k, v in res.items()}
    extra = [v - c for v, c in zip(res["views"], res["capture"], strict=True)]
    rows = [[k, f"{med[k]:.1f}", f"{min(v):.1f}-{max(v):.1f}", notes[k]] for k, v in res.items()]
    rows.append(["views - capture", f"{statistics.median(extra):.1f}", f"{min(extra):.1f}-{max(extra):.1f}",
                 "target <= 10"])
    table(["variant", "CPU % of a core (median)", "min-max", "last line"], rows)
    doc: dict[str, Any] = {"machine": machine(), "seconds": a.seconds, "view": a.view, "rounds": res,
                           "median": med, "views_minus_capture": extra}
    dump_json(a.json, doc)


if __name__ == "__main__":
    main()
