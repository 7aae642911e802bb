"""What ``ktrace top``'s live views cost over a plain capture, on a busy node.

    sudo .venv/bin/python bench/top_refresh.py --rounds 5 --seconds 10 [--view procs] [--slow]

A workload (dd moving 64-byte blocks from /dev/zero to /dev/null: a read and a write per block)
keeps the node busy while, alternately, ktrace captures (what ``ktrace -w F -q`` runs) or ktrace
top's engine runs live (LiveViews, as the terminal UI runs it: every event through the view's
aggregator, a table every second, no terminal drawing). Each is measured over ``--seconds`` once
its probe is up and events flow (loading the probe, a bcc compile, is the same for both and is
left out). ``--slow`` adds a third variant: the
views with their fast path off (an Event per record, ``ViewAggregator.add``). Reported: each one's
CPU (user + system, percent of one core, from wait4), the events it handled (the capture's count,
the views' records) and CPU per event, and the views' cost beyond the capture's; the target is at
most 10 points of a core.
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

CHILD = r"""
import io, resource, sys, threading, time
from tracer.session import RunOptions
from tracer.views import LiveViews, find_view
from tracer.views.run import runner_for
seconds, kind, view, path = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
tables, errors = [], []
if kind == "capture":  # ktrace -w PATH -q, run the same way
    runner = runner_for(RunOptions(write=path, quiet=True, stdout=io.StringIO(), stderr=io.StringIO()))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    stop = lambda: (setattr(runner, "done", True), thread.join(10))
else:
    live = LiveViews(on_table=tables.append, on_error=errors.append, interval_ms=1000, fast=kind == "views")
    live.set_view(find_view(view))
    live.start()
    stop = live.stop
    runner = live.runner
deadline = time.monotonic() + 120
while runner.pipeline.count == 0 and not errors and time.monotonic() < deadline:
    time.sleep(0.05)  # the probe is loading (compiled by bcc: not what is measured)
time.sleep(0.5)
def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
c0, t0, n0, nt0 = cpu(), time.monotonic(), runner.pipeline.count, len(tables)
time.sleep(seconds)
c1, t1, n1, nt1 = cpu(), time.monotonic(), runner.pipeline.count, len(tables)
stop()
if errors:
    sys.exit(f"ktrace: {errors[0]}")
rows = len(tables[-1].rows) if tables else 0
print(f"cpu={c1 - c0:.4f} wall={t1 - t0:.4f} events={n1 - n0} tables={nt1 - nt0} rows={rows}", file=sys.stderr)
"""


def workload(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["timeout", str(seconds + 60), "dd", "if=/dev/zero", "of=/dev/null", "bs=64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one(kind: str, seconds: float, view: str, workdir: Path) -> tuple[float, int, float, str]:
    """Percent of a core the variant took over ``seconds`` once its probe was up (its process's
    user + system CPU over that window), the records it handled then, its CPU seconds, and its
    last stderr line."""
    load = workload(seconds)
    try:
        argv = [PYTHON, "-c", CHILD, str(seconds), kind, view, str(workdir / "cap.kcap")]
        done = run_capture(argv, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    finally:
        load.terminate()
        load.wait()
    if done.code != 0:
        sys.exit(f"{kind} failed: {done.stderr.strip()}")
    last = (done.stderr.strip().splitlines() or [""])[-1]
    got = dict(item.split("=", 1) for item in last.split())
    cpu, wall = float(got["cpu"]), float(got["wall"])
    return 100.0 * cpu / wall, int(got["events"]), cpu, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, rounds=5)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each run (default %(default)s)")
    ap.add_argument("--view", default="procs", help="the view the live engine runs (default %(default)s)")
    ap.add_argument("--slow", action="store_true", help="also run the views without their fast path")
    a = ap.parse_args()
    need_root()
    apply_nice(a)
    log(machine_line())
    kinds = ("capture", "views", "views-slow") if a.slow else ("capture", "views")
    res: dict[str, list[float]] = {k: [] for k in kinds}
    per_event: dict[str, list[float]] = {k: [] for k in kinds}  # CPU ns per event
    events: dict[str, list[int]] = {k: [] for k in kinds}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(a.workdir or tmp)
        for r in range(a.rounds):
            # Alternate the order each round, so a trend in the machine's load favours no variant.
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                if not a.no_wait_quiet:
                    wait_quiet()
                pct, n, cpu, note = one(kind, a.seconds, a.view, workdir)
                res[kind].append(pct)
                events[kind].append(n)
                per_event[kind].append(cpu * 1e9 / n if n else 0.0)
                notes[kind] = note
                log(f"round {r + 1} {kind}: {pct:.1f}% of a core, {n} events, "
                    f"{per_event[kind][-1]:.0f} ns CPU/event ({note})")
    med = {k: statistics.median(v) for k, v in res.items()}
    rows = [[k, f"{med[k]:.1f}", f"{min(v):.1f}-{max(v):.1f}", f"{statistics.median(events[k]):.0f}",
             f"{statistics.median(per_event[k]):.0f}", notes[k]] for k, v in res.items()]
    extra: dict[str, list[float]] = {}
    for k in kinds[1:]:
        extra[k] = [v - c for v, c in zip(res[k], res["capture"], strict=True)]
        rows.append([f"{k} - capture", f"{statistics.median(extra[k]):.1f}",
                     f"{min(extra[k]):.1f}-{max(extra[k]):.1f}", "", "", "target <= 10"])
    table(["variant", "CPU % of a core (median)", "min-max", "events (median)", "CPU ns/event (median)",
           "last line"], rows)
    doc: dict[str, Any] = {"machine": machine(), "seconds": a.seconds, "view": a.view, "rounds": res,
                           "events": events, "cpu_ns_per_event": per_event, "median": med,
                           "views_minus_capture": extra["views"], "minus_capture": extra}
    dump_json(a.json, doc)


if __name__ == "__main__":
    main()
