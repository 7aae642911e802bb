"""Printing a capture: lines/s of whole `ktrace -r` processes, output to /dev/null.

    sudo .venv/bin/python bench/render.py --rounds 7 [--capture busy.kcap] [--json out.json]

The capture is recorded first unless --capture names an existing file: a container of
ktrace-busybox:latest runs `while true; do cat /etc/hostname >/tmp/x; ls / >/dev/null; done` and
`ktrace -w busy.kcap -q -M SECONDS container.id=ID` records it for --record-seconds (default 150),
which must give at least --events events (default 1.5 M).
Modes, alternating in each round (figures: the median over the rounds, with the spread):
  default   ktrace -r busy.kcap                                   lines/s
  json      ktrace -r busy.kcap -j                                lines/s
  p         ktrace -r busy.kcap -p "%proc.name %fd.name"          lines/s
  q         ktrace -r busy.kcap -q                                events/s (state only)
Each figure is given twice: per second of wall time, and per second of CPU time (user + system of
the process, from wait4), which other load on a shared machine disturbs much less.
Targets: default >= 1 M lines/s, json >= 0.6 M, p >= 2 M, q >= 3 M events/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    KTRACE,
    Bg,
    Series,
    apply_nice,
    capture_events,
    common_args,
    dump_json,
    file_ready,
    fmt,
    log,
    machine,
    machine_line,
    need_root,
    run_timed,
    table,
    wait_quiet,
)

IMAGE = "ktrace-busybox:latest"
LOOP = "while true; do cat /etc/hostname >/tmp/x; ls / >/dev/null; done"
MODES: dict[str, list[str]] = {
    "default": [],
    "json": ["-j"],
    "p": ["-p", "%proc.name %fd.name"],
    "q": ["-q"],
}
TARGETS = {"default": 1e6, "json": 0.6e6, "p": 2e6, "q": 3e6}


def ktrace_cmd() -> list[str]:
    """The ktrace of the Python running this script (its venv), else the repository's."""
    mine = Path(sys.executable).parent / "ktrace"
    return [str(mine)] if mine.exists() else [KTRACE]


def start_busy(name: str) -> str:
    """Start the busy container; its id."""
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    out = subprocess.run(["docker", "run", "-d", "--rm", "--name", name, IMAGE, "sh", "-c", LOOP],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def stop_busy(name: str) -> None:
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def record(cap: Path, events: int, seconds: float, work: Path) -> None:
    """Capture the busy container for ``seconds`` into ``cap``; it must hold ``events`` events."""
    name = "ktrace-bench-busy"
    cid = start_busy(name)
    try:
        time.sleep(1.0)
        bg = Bg([*ktrace_cmd(), "-w", str(cap), "-q", "-M", str(seconds), f"container.id={cid[:12]}"], work,
                "record")
        bg.wait_ready(file_ready(cap), timeout=60)
        while bg.alive():
            time.sleep(0.5)
        done = bg.stop()
        if done.code != 0:
            raise RuntimeError(f"recording failed ({done.code}): {done.stderr.strip()[-500:]}")
    finally:
        stop_busy(name)
    got = capture_events(cap)
    if got < events:
        raise SystemExit(f"{cap} holds {got} events, fewer than {events}: record longer (--record-seconds)")


def lines_of(cap: Path, args: list[str]) -> int:
    """Lines the mode prints (counted once, untimed)."""
    p = subprocess.Popen([*ktrace_cmd(), "-r", str(cap), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout is not None
    n = sum(chunk.count(b"\n") for chunk in iter(lambda: p.stdout.read(1 << 20), b""))  # type: ignore[union-attr]
    p.wait()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap, rounds=7)
    ap.add_argument("--capture", metavar="FILE", help="the capture to print (recorded there if missing)")
    ap.add_argument("--events", type=int, default=1_500_000, help="events the capture must hold (default %(default)s)")
    ap.add_argument("--record-seconds", type=float, default=150.0, help="seconds to record (default %(default)s)")
    ap.add_argument("--modes", default=",".join(MODES), help="modes to run (default %(default)s)")
    a = ap.parse_args()
    need_root()
    apply_nice(a)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="ktrace-bench-render-"))
    work.mkdir(parents=True, exist_ok=True)
    cap = Path(a.capture) if a.capture else work / "busy.kcap"
    if not cap.exists():
        log(f"recording a busy container for {a.record_seconds} s into {cap}")
        record(cap, a.events, a.record_seconds, work)
    events = capture_events(cap)
    modes = [m for m in a.modes.split(",") if m]
    counts = {m: (events if m == "q" else lines_of(cap, MODES[m])) for m in modes}
    log(f"{cap}: {events} events; lines: {counts}")
    wall: dict[str, Series] = {m: Series() for m in modes}
    cpu: dict[str, Series] = {m: Series() for m in modes}
    busy: list[float] = []
    for r in range(a.rounds):
        for m in modes:
            if not a.no_wait_quiet:
                busy.append(wait_quiet().busy)
            d = run_timed([*ktrace_cmd(), "-r", str(cap), *MODES[m]])
            if d.code != 0:
                raise SystemExit(f"ktrace -r {' '.join(MODES[m])} failed with {d.code}")
            wall[m].add(counts[m] / d.wall)
            cpu[m].add(counts[m] / d.cpu if d.cpu else None)
            log(f"round {r + 1} {m}: {d.wall:.2f} s wall, {d.cpu:.2f} s CPU")
    print(machine_line())
    print(f"capture: {cap} ({events} events)")
    rows = []
    for m in modes:
        unit = "events/s" if m == "q" else "lines/s"
        rows.append([m, unit, fmt(wall[m].median, "{:,.0f}"), wall[m].spread("{:,.0f}"),
                     fmt(cpu[m].median, "{:,.0f}"), cpu[m].spread("{:,.0f}"), f"{TARGETS[m]:,.0f}"])
    table(["mode", "unit", "per wall s", "spread", "per CPU s", "spread", "target"], rows)
    dump_json(a.json, {"machine": machine(), "capture": str(cap), "events": events, "lines": counts,
                       "wall": {m: wall[m].to_json() for m in modes}, "cpu": {m: cpu[m].to_json() for m in modes},
                       "busy": busy})


if __name__ == "__main__":
    main()
