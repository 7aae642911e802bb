"""Reading captures: events/s of whole `ktrace -r` processes, with both engines.

    sudo .venv/bin/python bench/read.py --rounds 5 [--captures DIR] [--json out.json]

Two captures are made live first (or reused from --captures DIR when they are there):
  storm.kcap  `ktrace -w storm.kcap -q` during `dd if=/dev/zero of=/dev/null bs=1 count=1100000`
              (>= 4.4 M events: the storm plus whatever else ran)
  mixed.kcap  `ktrace -w mixed.kcap -q` during that dd storm (count 700000) and, at the same time,
              wrk -t1 -c10 against nginx (1 worker, bench/nginx.py's set-up) for 6 s
Variants, each round in this order (events/s = events in the capture / wall time of the process):
  decode      floor: a Python process reading every block of storm.kcap (CaptureReader only)
  nomatch     ktrace -r storm.kcap -q proc.name=nomatch
  nginx       ktrace -r mixed.kcap -q "proc.name=nginx and evt.type in (read,write) and fd.type=ipv4"
  nginx-w     ktrace -r mixed.kcap -w filtered.kcap with the same filter (a filtered capture written)
  topconns    ktrace -r mixed.kcap -c topconns (skipped with a note when `ktrace -cl` lacks it)
  replay      ktrace -r storm.kcap -w out.kcap
The ktrace variants run once more (first round only) with KTRACE_PUREPYTHON=1 for the engine ratio.
sysdig 0.29 cannot capture here (no driver) and no large .scap exists on the machine: no peer row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    KTRACE,
    PYTHON,
    Bg,
    Series,
    apply_nice,
    capture_events,
    common_args,
    dump_json,
    file_ready,
    fmt,
    ktrace_stats,
    log,
    machine,
    machine_line,
    need_root,
    run_capture,
    skip_without_chisel,
    table,
    wait_quiet,
)

DECODE = r"""
import sys
from tracer.capture import CaptureReader, EventBlock
n = 0
for it in CaptureReader(sys.argv[1]):
    if isinstance(it, EventBlock):
        n += it.count
print(n)
"""
NGINX_FILTER = "proc.name=nginx and evt.type in (read,write) and fd.type=ipv4"
TARGETS = {"nomatch": 3e6, "nginx": 3e6, "topconns": 2e6, "replay": 6e6}


def live_capture(work: Path, cap: Path, count: int, wrk_s: int) -> None:
    """Capture a dd storm (and nginx under wrk when wrk_s) live into ``cap``."""
    cap.unlink(missing_ok=True)
    server = None
    if wrk_s:
        from nginx import start_nginx

        server, port = start_nginx(work)
    try:
        bg = Bg([KTRACE, "-w", str(cap), "-q"], work, f"make-{cap.stem}")
        bg.wait_ready(file_ready(cap), timeout=60)
        procs = []
        if wrk_s:
            procs.append(subprocess.Popen(["wrk", "-t1", "-c10", f"-d{wrk_s}s", f"http://127.0.0.1:{port}/index.html"],
                                          stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}"],
                                      stderr=subprocess.DEVNULL))
        for p in procs:
            p.wait()
        done = bg.stop()
    finally:
        if server is not None:
            server.stop(timeout=10)
    st = ktrace_stats(done.stderr)
    log(f"  {cap.name}: {capture_events(cap):,} events, {cap.stat().st_size / 1e6:.1f} MB; ktrace said "
        f"{st[0]:,} captured, {st[1]:,} dropped" if st else f"  {cap.name}: {done.stderr.strip()[-200:]}")


class Read:
    def __init__(self, args: argparse.Namespace, work: Path, caps: Path) -> None:
        self.a = args
        self.work = work
        self.storm = caps / "storm.kcap"
        self.mixed = caps / "mixed.kcap"
        self.n: dict[str, int] = {}
        self.rate: dict[str, Series] = {}
        self.wall: dict[str, Series] = {}
        self.cpu: dict[str, Series] = {}
        self.rss: dict[str, Series] = {}
        self.notes: list[str] = []
        self.skip: set[str] = set()

    def variants(self) -> list[tuple[str, list[str], Path]]:
        out = self.work / "replay.kcap"
        return [
            ("decode", [PYTHON, "-c", DECODE, str(self.storm)], self.storm),
            ("nomatch", [KTRACE, "-r", str(self.storm), "-q", "proc.name=nomatch"], self.storm),
            ("nginx", [KTRACE, "-r", str(self.mixed), "-q", NGINX_FILTER], self.mixed),
            ("nginx-w", [KTRACE, "-r", str(self.mixed), "-w", str(self.work / "filtered.kcap"), NGINX_FILTER],
             self.mixed),
            ("topconns", [KTRACE, "-r", str(self.mixed), "-c", "topconns"], self.mixed),
            ("replay", [KTRACE, "-r", str(self.storm), "-w", str(out)], self.storm),
        ]

    def run(self, name: str, argv: list[str], cap: Path, pure: bool) -> None:
        key = f"{name} (pure)" if pure else name
        for series in (self.rate, self.wall, self.cpu, self.rss):
            series.setdefault(key, Series())
        env = dict(os.environ)
        env.pop("KTRACE_PUREPYTHON", None)
        if pure:
            env["KTRACE_PUREPYTHON"] = "1"
        if not self.a.no_wait_quiet:
            q = wait_quiet()
            if not q.ok:
                self.notes.append(f"{key}: machine not quiet ({q.busy:.0%} busy, tracers {q.tracers})")
        d = run_capture(argv, env=env)
        if d.code != 0:
            self.notes.append(f"{key}: exit {d.code}: {d.stderr.strip()[-300:]}")
            return
        self.rate[key].add(self.n[cap.name] / d.wall)
        self.wall[key].add(d.wall)
        self.cpu[key].add(d.cpu)
        self.rss[key].add(d.maxrss_kb / 1024)
        log(f"  -> {d.wall:.2f} s, {self.n[cap.name] / d.wall / 1e6:.2f} M events/s")

    def round(self, i: int) -> None:
        for name, argv, cap in self.variants():
            if name in self.skip or name not in self.a.only:
                continue
            log(f"round {i + 1}/{self.a.rounds}: {name}")
            self.run(name, argv, cap, pure=False)
            if i < self.a.pure_rounds and name != "decode":
                log(f"round {i + 1}/{self.a.rounds}: {name}, KTRACE_PUREPYTHON=1")
                self.run(name, argv, cap, pure=True)

    def report(self) -> dict[str, Any]:
        print(f"\nreading captures: whole `ktrace -r` processes; {self.a.rounds} rounds, median (min-max)")
        print(f"machine: {machine_line()}")
        for c in (self.storm, self.mixed):
            if c.name in self.n:
                print(f"{c.name}: {self.n[c.name]:,} events, {c.stat().st_size / 1e6:.1f} MB")
        print()
        rows = []
        dec = self.rate.get("decode")
        for key, s in self.rate.items():
            if not s.values:
                continue
            base = key.split(" ")[0]
            tgt = TARGETS.get(base)
            cy = self.rate.get(base)
            ratio = ""
            if key.endswith("(pure)") and cy is not None and cy.median and s.median:
                ratio = f"Cython {cy.median / s.median:.1f}x faster"
            rows.append([key, fmt((s.median or 0) / 1e6, "{:.2f}"), f"{(s.lo or 0) / 1e6:.2f}-{(s.hi or 0) / 1e6:.2f}",
                         fmt(self.wall[key].median, "{:.2f}"), fmt(self.cpu[key].median, "{:.2f}"),
                         fmt(self.rss[key].median, "{:.0f}"),
                         f"{s.median / dec.median:.2f}x" if dec and dec.median and s.median else "-",
                         f">= {tgt / 1e6:g} M/s" if tgt and not key.endswith("(pure)") else "", ratio])
        table(["variant", "M events/s", "spread", "wall s", "CPU s", "RSS MB", "vs decode", "target", "engines"],
              rows)
        for n in self.notes:
            print(f"note: {n}")
        return {
            "bench": "read", "machine": machine(), "rounds": self.a.rounds, "events": self.n,
            "events_per_s": {k: s.to_json() for k, s in self.rate.items() if s.values},
            "wall_s": {k: s.to_json() for k, s in self.wall.items() if s.values},
            "cpu_s": {k: s.to_json() for k, s in self.cpu.items() if s.values},
            "rss_mb": {k: s.to_json() for k, s in self.rss.items() if s.values},
            "notes": self.notes,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap)
    ap.add_argument("--captures", metavar="DIR", help="where storm.kcap and mixed.kcap are (made there if missing)")
    ap.add_argument("--pure-rounds", type=int, default=1, help="rounds with KTRACE_PUREPYTHON=1 too (default 1)")
    ap.add_argument("--only", default="decode,nomatch,nginx,nginx-w,topconns,replay", help="variants, comma-separated")
    a = ap.parse_args()
    apply_nice(a)
    a.only = set(a.only.split(","))
    with tempfile.TemporaryDirectory(prefix="ktrace-read-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        caps = Path(a.captures) if a.captures else work
        caps.mkdir(parents=True, exist_ok=True)
        r = Read(a, work, caps)
        for cap, count, wrk_s in ((r.storm, 1_100_000, 0), (r.mixed, 700_000, 6)):
            if not cap.exists():
                need_root()
                log(f"making {cap} (live)")
                live_capture(work, cap, count, wrk_s)
            r.n[cap.name] = capture_events(cap)
        if "topconns" in a.only:
            skip_without_chisel(r, "topconns")
        t0 = time.monotonic()
        for i in range(a.rounds):
            r.round(i)
        doc = r.report()
        print(f"\n({time.monotonic() - t0:.0f} s)")
    dump_json(a.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
