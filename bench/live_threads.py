"""Where a live `ktrace -w f.kcap -q` spends its CPU, thread by thread, under a storm or nginx.

    sudo .venv/bin/python bench/live_threads.py --rounds 3 [--workload storm|nginx]

ktrace runs in-process (its CLI entry point, in a child process per run) so its threads can be told
apart by their Python names: MainThread (scan, state, enrichment, output), ktrace-consumer (ring
buffer drains), ktrace-capture-writer (compression, writes). CPU (user + system) per thread is
read from /proc/self/task while the workload runs, together with the number of batches the main
thread processed. A diagnostic: it says which thread to work on when a live figure misses its target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, apply_nice, common_args, dump_json, log, machine, machine_line, need_root, table  # noqa: E402

CHILD = r'''
import json, os, signal, subprocess, sys, threading, time
workload, cap, url = sys.argv[1:4]
import tracer.pipeline as P
fed = [0]
feed = P.Pipeline.feed


def counted(self, b):
    fed[0] += 1
    return feed(self, b)


P.Pipeline.feed = counted


def cpu():
    out = {}
    names = {t.native_id: t.name for t in threading.enumerate()}
    for t in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{t}/stat") as f:
            st = f.read()
        rest = st[st.rfind(")") + 2:].split()
        out[names.get(int(t), t)] = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return out


res = {}


def driver():
    while not os.path.exists(cap):
        time.sleep(0.01)
    time.sleep(0.3)
    a, b0, t0 = cpu(), fed[0], time.monotonic()
    if workload == "storm":
        subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=1000000"], stderr=subprocess.DEVNULL)
    else:
        out = subprocess.run(["wrk", "-t1", "-c10", "-d5s", url], capture_output=True, text=True).stdout
        res["requests"] = int(out.split(" requests in")[0].split()[-1])
        res["rps"] = float(out.split("Requests/sec:")[1].split()[0])
    res["seconds"] = time.monotonic() - t0
    b = cpu()
    res["batches"] = fed[0] - b0
    res["cpu"] = {k: b[k] - a.get(k, 0.0) for k in b}
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=driver, daemon=True, name="bench-driver").start()
sys.argv = ["ktrace", "-w", cap, "-q"]
import contextlib, io
from tracer.cli import main
err = io.StringIO()
try:
    with contextlib.redirect_stderr(err):
        main()
except SystemExit:
    pass
res["stats"] = err.getvalue().strip().splitlines()[-1:]
print(json.dumps(res))
'''
THREADS = ("MainThread", "ktrace-consumer", "ktrace-capture-writer")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap, rounds=3)
    ap.add_argument("--workload", choices=("storm", "nginx"), default="storm")
    a = ap.parse_args()
    apply_nice(a)
    need_root()
    variants = ["ktrace"]
    res: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="ktrace-threads-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        url = ""
        server = None
        if a.workload == "nginx":
            from nginx import start_nginx

            server, port = start_nginx(work)
            url = f"http://127.0.0.1:{port}/index.html"
        try:
            for i in range(a.rounds):
                for v in variants:
                    log(f"round {i + 1}/{a.rounds}: {v}")
                    cap = work / "t.kcap"
                    cap.unlink(missing_ok=True)
                    out = subprocess.run([PYTHON, "-c", CHILD, a.workload, str(cap), url], capture_output=True,
                                         text=True, check=False)
                    if out.returncode != 0 or not out.stdout.strip():
                        log(f"  failed: {out.stderr.strip()[-300:]}")
                        continue
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    res[v].append(r)
                    log(f"  -> {r['batches']} batches, CPU " + ", ".join(f"{k} {r['cpu'].get(k, 0):.2f}"
                                                                         for k in THREADS))
                    time.sleep(0.5)
        finally:
            if server is not None:
                server.stop(timeout=10)
    unit = "requests" if a.workload == "nginx" else None
    print(f"\nlive ktrace -w -q under {'dd bs=1 count=1000000' if a.workload == 'storm' else 'nginx + wrk 5 s'}: "
          f"CPU per thread while the workload ran; {a.rounds} rounds, median")
    print(f"machine: {machine_line()}\n")
    rows = []
    for v, rs in res.items():
        if not rs:
            continue
        med = {k: statistics.median(r["cpu"].get(k, 0.0) for r in rs) for k in THREADS}
        total = statistics.median(sum(r["cpu"].get(k, 0.0) for k in THREADS) for r in rs)
        per = ""
        if unit:
            us = statistics.median(sum(r["cpu"].get(k, 0.0) for k in THREADS) / r["requests"] * 1e6 for r in rs)
            per = f"{us:.1f}"
        rows.append([v, f"{statistics.median(r['batches'] for r in rs):,.0f}", *(f"{med[k]:.2f}" for k in THREADS),
                     f"{total:.2f}", per, f"{statistics.median(r['seconds'] for r in rs):.2f}",
                     (rs[-1].get("stats") or ["-"])[0].removeprefix("ktrace: ")])
    table(["run", "batches", "main s", "consumer s", "writer s", "total s", "us/request" if unit else "",
           "workload s", "last run"], rows)
    dump_json(a.json, {"bench": "live_threads", "machine": machine(), "workload": a.workload, "results": res})
    return 0


if __name__ == "__main__":
    sys.exit(main())
