"""How a tracer's threads share the CPUs with nginx and wrk: run-queue waits, idle CPU, wake-ups.

    sudo .venv/bin/python bench/sched.py --rounds 3 [--duration 5]

nginx (1 worker, bench/nginx.py's set-up) under `wrk -t1 -c10`, alternately with no tracer, the
bpftrace floor, `ktrace -w f.kcap -q` as it runs by default (its threads in SCHED_BATCH), the same
with KTRACE_SCHED=normal, and bench/probe_only.py. For each run, from the kernel's scheduler
statistics (/proc/PID/task/TID/schedstat: time on a CPU, time waiting on a run queue) and /proc/stat:

- req/s, and nginx's worker: CPU and run-queue wait per request;
- wrk: the share of the run it spent waiting on a run queue;
- idle CPUs over the run (of 2 here): a tracer that only took CPU would leave fewer idle;
- the tracer's threads: CPU and run-queue wait per request, and their wake-ups per second
  (voluntary context switches) and preemptions per second (involuntary ones).

A diagnostic: it shows whether a tracer slows the server by the CPU it takes or by when it takes it.
"""

from __future__ import annotations

import argparse
import os
import re
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
    common_args,
    dump_json,
    file_ready,
    fmt,
    log,
    machine,
    machine_line,
    need_root,
    ratio_series,
    start_floor,
    table,
    text_ready,
    wait_quiet,
)
from nginx import PROBE_ONLY, nginx_pids, start_nginx  # noqa: E402

VARIANTS = ("bare", "floor", "ktrace", "ktrace-normal", "probe-only")
SETTLE_S = 0.3  # wrk's connections are up by then


def schedstat(pid: int) -> tuple[int, int]:
    """ns on a CPU and ns waiting on a run queue, summed over the process's threads."""
    run = wait = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                r, w, _ = f.read().split()
        except (OSError, ValueError):
            continue
        run += int(r)
        wait += int(w)
    return run, wait


def switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches, summed over the process's threads."""
    vol = invol = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                st = f.read()
        except OSError:
            continue
        vol += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))  # type: ignore[union-attr]
        invol += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))  # type: ignore[union-attr]
    return vol, invol


def idle_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)


class Sched:
    def __init__(self, a: argparse.Namespace, work: Path, port: int, worker: int) -> None:
        self.a = a
        self.work = work
        self.url = f"http://127.0.0.1:{port}/index.html"
        self.worker = worker
        names = ("rps", "nginx_run", "nginx_wait", "wrk_wait", "idle", "tracer_run", "tracer_wait", "wakeups",
                 "preempted")
        self.s = {v: {k: Series() for k in names} for v in VARIANTS}

    def run(self, v: str) -> None:
        bg = None
        cap = self.work / "sched.kcap"
        cap.unlink(missing_ok=True)
        if v == "floor":
            bg = start_floor(self.work)
        elif v in ("ktrace", "ktrace-normal"):
            env = dict(os.environ, KTRACE_SCHED="normal") if v == "ktrace-normal" else None
            bg = Bg([KTRACE, "-w", str(cap), "-q"], self.work, v, env=env)
            bg.wait_ready(file_ready(cap), timeout=60)
        elif v == "probe-only":
            bg = Bg([PYTHON, PROBE_ONLY], self.work, v)
            bg.wait_ready(text_ready("probe-only: ready"), timeout=60)
        try:
            wrk = subprocess.Popen(["wrk", "-t1", "-c10", f"-d{self.a.duration}s", self.url], stdout=subprocess.PIPE,
                                   text=True)
            time.sleep(SETTLE_S)
            span = self.a.duration - 2 * SETTLE_S
            n0, w0, i0 = schedstat(self.worker), schedstat(wrk.pid), idle_jiffies()
            t0 = schedstat(bg.pid) if bg else (0, 0)
            c0 = switches(bg.pid) if bg else (0, 0)
            time.sleep(span)
            n1, w1, i1 = schedstat(self.worker), schedstat(wrk.pid), idle_jiffies()
            t1 = schedstat(bg.pid) if bg else (0, 0)
            c1 = switches(bg.pid) if bg else (0, 0)
            out = wrk.communicate()[0]
        finally:
            if bg is not None:
                bg.stop()
            cap.unlink(missing_ok=True)
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if m is None:
            raise RuntimeError(f"wrk failed: {out[-300:]}")
        rps = float(m.group(1))
        per_req = 1e-3 / (rps * span)  # ns over the span -> us per request
        s = self.s[v]
        s["rps"].add(rps)
        s["nginx_run"].add((n1[0] - n0[0]) * per_req)
        s["nginx_wait"].add((n1[1] - n0[1]) * per_req)
        s["wrk_wait"].add((w1[1] - w0[1]) / (span * 1e9))
        s["idle"].add((i1[0] - i0[0]) / (i1[1] - i0[1]) * (os.cpu_count() or 1))
        if bg is not None:
            s["tracer_run"].add((t1[0] - t0[0]) * per_req)
            s["tracer_wait"].add((t1[1] - t0[1]) * per_req)
            s["wakeups"].add((c1[0] - c0[0]) / span)
            s["preempted"].add((c1[1] - c0[1]) / span)

    def report(self) -> dict[str, Any]:
        print(f"\nnginx (1 worker) under wrk -t1 -c10 -d{self.a.duration}s; {self.a.rounds} rounds, median")
        print(f"machine: {machine_line()}\n")
        floor = self.s["floor"]["rps"]
        rows = []
        for v in VARIANTS:
            s = self.s[v]
            if not s["rps"].values:
                continue
            rows.append([v, fmt(s["rps"].median, "{:,.0f}"), fmt(ratio_series(s["rps"], floor).median, "{:.2f}x"),
                         fmt(s["nginx_run"].median, "{:.1f}"), fmt(s["nginx_wait"].median, "{:.2f}"),
                         fmt(s["wrk_wait"].median, "{:.0%}"), fmt(s["idle"].median, "{:.2f}"),
                         fmt(s["tracer_run"].median, "{:.1f}"), fmt(s["tracer_wait"].median, "{:.1f}"),
                         fmt(s["wakeups"].median, "{:,.0f}"), fmt(s["preempted"].median, "{:,.0f}")])
        table(["variant", "req/s", "vs floor", "nginx CPU us/req", "nginx waits us/req", "wrk waits", "idle CPUs",
               "tracer CPU us/req", "tracer waits us/req", "tracer wake-ups/s", "tracer preempted/s"], rows)
        return {"bench": "sched", "machine": machine(), "rounds": self.a.rounds, "duration": self.a.duration,
                "figures": {v: {k: s.to_json() for k, s in d.items() if s.values} for v, d in self.s.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap, rounds=3)
    ap.add_argument("--duration", type=int, default=5, help="wrk seconds per run (default %(default)s)")
    ap.add_argument("--only", default=",".join(VARIANTS), help="variants to run, comma-separated")
    a = ap.parse_args()
    need_root()
    apply_nice(a)
    only = set(a.only.split(","))
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="ktrace-sched-"))
    work.mkdir(parents=True, exist_ok=True)
    ng, port = start_nginx(work)
    try:
        workers = [p for p in nginx_pids(ng.pid) if p != ng.pid]
        bench = Sched(a, work, port, workers[0])
        for i in range(a.rounds):
            for v in VARIANTS:
                if v in only:
                    log(f"round {i + 1}/{a.rounds}: {v}")
                    if not a.no_wait_quiet:
                        wait_quiet()
                    bench.run(v)
        dump_json(a.json, bench.report())
    finally:
        ng.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
