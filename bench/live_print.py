"""Printing a busy container live: does ktrace keep up, and what does it drop, by cause?

    sudo .venv/bin/python bench/live_print.py --rounds 3 [--seconds 10] [--json out.json]

A container of ktrace-busybox:latest runs `while true; do cat /etc/hostname >/tmp/x; ls / >/dev/null;
done`; `ktrace container.id=ID -M SECONDS` prints its events (default line) to /dev/null, or, with
--reader-mbps N, into a pipe read at N MB/s (a terminal-speed reader). Per round: events captured,
lines printed (counted when a reader is used), drops by cause from ktrace's summary line, and
ktrace's CPU time. Target: 0 drops to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, apply_nice, common_args, dump_json, fmt, log, machine, machine_line, need_root, table  # noqa: E402
from render import ktrace_cmd, start_busy, stop_busy  # noqa: E402

SUMMARY = re.compile(r"^ktrace: (\d+) events captured, (\d+) dropped \((.*)\)$", re.M)


def causes(detail: str) -> dict[str, int]:
    out = {}
    for part in detail.split(", "):
        k, _, v = part.rpartition(" ")
        if v.isdigit():
            out[k] = int(v)
    return out


def one_round(cid: str, seconds: float, reader_mbps: float) -> dict[str, object]:
    argv = [*ktrace_cmd(), "-M", str(seconds), f"container.id={cid[:12]}"]
    lines = 0
    t0 = time.perf_counter()
    if reader_mbps:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout is not None
        chunk = 1 << 16
        pause = chunk / (reader_mbps * 1e6)
        while True:
            data = p.stdout.read1(chunk)  # type: ignore[attr-defined]
            if not data:
                break
            lines += data.count(b"\n")
            time.sleep(pause)
        err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    else:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    m = SUMMARY.search(err)
    if m is None:
        raise SystemExit(f"no summary line from ktrace: {err.strip()[-500:]}")
    return {"captured": int(m[1]), "dropped": int(m[2]), "causes": causes(m[3]), "lines": lines,
            "cpu": ru.ru_utime + ru.ru_stime, "wall": wall, "hint": "narrow the filter" in err}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap, rounds=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of printing per round")
    ap.add_argument("--reader-mbps", type=float, default=0.0, help="read ktrace's output at this rate (MB/s)")
    a = ap.parse_args()
    need_root()
    apply_nice(a)
    name = "ktrace-bench-live-print"
    cid = start_busy(name)
    rounds = []
    try:
        time.sleep(1.0)
        for r in range(a.rounds):
            res = one_round(cid, a.seconds, a.reader_mbps)
            rounds.append(res)
            log(f"round {r + 1}: {res}")
    finally:
        stop_busy(name)
    print(machine_line())
    captured = Series([float(x["captured"]) for x in rounds])  # type: ignore[arg-type]
    dropped = Series([float(x["dropped"]) for x in rounds])  # type: ignore[arg-type]
    cpu = Series([float(x["cpu"]) for x in rounds])  # type: ignore[arg-type]
    table(["figure", "median", "spread"], [
        ["events captured", fmt(captured.median, "{:,.0f}"), captured.spread("{:,.0f}")],
        ["dropped", fmt(dropped.median, "{:,.0f}"), dropped.spread("{:,.0f}")],
        ["ktrace CPU s", fmt(cpu.median), cpu.spread()],
    ])
    for r, x in enumerate(rounds):
        print(f"round {r + 1}: drops by cause {x['causes'] or 'none'}; hint shown: {x['hint']}")
    dump_json(a.json, {"machine": machine(), "seconds": a.seconds, "reader_mbps": a.reader_mbps, "rounds": rounds})


if __name__ == "__main__":
    main()
