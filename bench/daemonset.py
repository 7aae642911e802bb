"""The DaemonSet's run under load: ktrace as deploy/k8s/daemonset.yaml runs it (-C 100 -W 5 -w,
--metrics), nginx under wrk for the whole run, a scrape every --scrape-interval s. Gives the figures
its resources and the metrics' costs come from:

    sudo .venv/bin/python bench/daemonset.py [--duration 600] [--scrape-interval 15] [--json out.json]

- ktrace's CPU (share of one core per 1 s sample: mean, p95, max) and RSS (1 s samples and the
  kernel's peak, VmHWM), events captured, dropped, files rotated;
- the metrics endpoint's answer time under that load (every scrape, and --probe-scrapes extra ones);
- the CPU a scrape costs ktrace, on an otherwise idle node (a burst of --burst scrapes, less the
  same time without): at one scrape per --scrape-interval s, the share of a core scraping takes;
- the limits to set: CPU p95 x --margin and peak RSS x --margin, rounded up.

nginx serves a 612-byte file on 127.0.0.1 (as bench/nginx.py), `wrk -t1 -c10` loads it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    KTRACE,
    Bg,
    dump_json,
    free_port,
    ktrace_stats,
    log,
    machine,
    machine_line,
    need_root,
    proc_cpu,
    run_capture,
    status_kb,
    table,
    wait_quiet,
)
from nginx import start_nginx  # noqa: E402


def ktrace_bin() -> str:
    """The checkout's venv's ktrace, else the one next to this Python (a worktree run with PYTHONPATH)."""
    if os.path.exists(KTRACE):
        return KTRACE
    return str(Path(sys.executable).parent / "ktrace")


def scrape(url: str) -> tuple[float, int]:
    """(seconds to the last byte, bytes) of one GET."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        n = len(r.read())
    return time.perf_counter() - t0, n


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(math.ceil(q * len(s))) - 1)] if s else 0.0


def scrape_cost(pid: int, url: str, burst: int) -> dict[str, float]:
    """ktrace's CPU over a burst of scrapes minus the same wall time without, per scrape."""
    # idle baseline: the same duration the burst takes, measured after it
    c0, t0 = proc_cpu(pid), time.perf_counter()
    for _ in range(burst):
        scrape(url)
    c1, t1 = proc_cpu(pid), time.perf_counter()
    wall = t1 - t0
    time.sleep(0.5)
    c2 = proc_cpu(pid)
    time.sleep(max(wall, 1.0))
    c3 = proc_cpu(pid)
    idle_rate = (c3 - c2) / max(wall, 1.0)
    per = max(0.0, (c1 - c0) - idle_rate * wall) / burst
    return {"burst": burst, "wall_s": wall, "cpu_s": c1 - c0, "idle_cpu_per_s": idle_rate, "cpu_per_scrape_s": per}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default %(default)s)")
    ap.add_argument("--scrape-interval", type=float, default=15.0, help="seconds between scrapes (default 15)")
    ap.add_argument("--probe-scrapes", type=int, default=20, help="extra scrapes under load, for answer times")
    ap.add_argument("--burst", type=int, default=200, help="scrapes in the idle cost burst (default 200)")
    ap.add_argument("--margin", type=float, default=1.5, help="limits = measured x this (default 1.5)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE ('-' = stdout)")
    ap.add_argument("--workdir", metavar="DIR", help="keep files here (default: a temporary directory)")
    ap.add_argument("--nice", type=int, default=-10, help="niceness of the bench and what it starts (default -10)")
    a = ap.parse_args()
    need_root()
    if a.nice:
        os.setpriority(os.PRIO_PROCESS, 0, a.nice)  # what it starts inherits it
    quiet = wait_quiet()
    note = "" if quiet.ok else (f"note: not quiet after {quiet.waited:.0f} s (CPUs {quiet.busy:.0%} busy"
                                + (f", tracers {' '.join(quiet.tracers)}" if quiet.tracers else "") + ")")
    if note:
        log(note)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="ktrace-ds-"))
    work.mkdir(parents=True, exist_ok=True)
    log(machine_line())
    nginx, port = start_nginx(work)
    mport = free_port()
    url = f"http://127.0.0.1:{mport}/metrics"
    caps = work / "caps"
    caps.mkdir(exist_ok=True)
    argv = [ktrace_bin(), "-C", "100", "-W", "5", "-w", str(caps / "node.kcap"), "--metrics", f"127.0.0.1:{mport}"]
    log("ktrace: " + " ".join(argv))
    kt = Bg(argv, work, "ktrace")
    doc: dict[str, Any] = {"machine": machine(), "argv": argv, "duration_s": a.duration,
                           "scrape_interval_s": a.scrape_interval, "note": note}
    try:
        def ready(_bg: Bg) -> bool:
            try:
                return b"ktrace_events_total" in urllib.request.urlopen(url, timeout=1).read()
            except OSError:
                return False

        kt.wait_ready(ready, timeout=60)
        log(f"load: wrk -t1 -c10 -d{a.duration:.0f}s for {a.duration:.0f} s")
        result: dict[str, Any] = {}

        def load() -> None:
            result["wrk"] = run_capture(["wrk", "-t1", "-c10", f"-d{int(a.duration)}s",
                                         f"http://127.0.0.1:{port}/index.html"])

        wrk = threading.Thread(target=load)
        wrk.start()
        cpu_samples: list[float] = []
        rss_samples: list[int] = []
        answers: list[float] = []
        page_bytes = 0
        t_start = time.monotonic()
        next_scrape = t_start + a.scrape_interval
        probes_left = a.probe_scrapes
        probe_every = a.duration / (a.probe_scrapes + 1) if a.probe_scrapes else 0.0
        next_probe = t_start + probe_every if probe_every else float("inf")
        last_cpu, last_t = proc_cpu(kt.pid), time.monotonic()
        while wrk.is_alive():
            time.sleep(1.0)
            now = time.monotonic()
            c = proc_cpu(kt.pid)
            cpu_samples.append((c - last_cpu) / (now - last_t))
            last_cpu, last_t = c, now
            rss_samples.append(status_kb(kt.pid, "VmRSS"))
            if now >= next_scrape or (probes_left and now >= next_probe):
                dt, page_bytes = scrape(url)
                answers.append(dt)
                if now >= next_scrape:
                    next_scrape += a.scrape_interval
                else:
                    probes_left -= 1
                    next_probe += probe_every
        wrk.join()
        hwm = status_kb(kt.pid, "VmHWM")
        log(f"idle cost: {a.burst} scrapes back to back")
        time.sleep(2.0)
        cost = scrape_cost(kt.pid, url, a.burst)
    finally:
        done = kt.stop()
        nginx.stop()
    stats = ktrace_stats(done.stderr)
    wrk_out = result.get("wrk")
    reqs = None
    if wrk_out is not None:
        for line in wrk_out.stdout.splitlines():
            if line.startswith("Requests/sec:"):
                reqs = float(line.split()[1])
    files = sorted(p.name for p in caps.iterdir())
    cpu_mean = statistics.mean(cpu_samples) if cpu_samples else 0.0
    cpu_p95 = pct(cpu_samples, 0.95)
    rss_max_mb = max(rss_samples, default=0) / 1024
    hwm_mb = max(hwm, max(rss_samples, default=0)) / 1024
    scrape_share = cost["cpu_per_scrape_s"] / a.scrape_interval
    cpu_limit_m = int(math.ceil(cpu_p95 * a.margin * 10)) * 100  # millicores, rounded up to 100m
    mem_limit_mi = int(math.ceil(hwm_mb * a.margin / 64)) * 64  # MiB, rounded up to 64
    doc.update({
        "requests_per_s": reqs,
        "events": stats[0] if stats else None, "dropped": stats[1] if stats else None,
        "files": files, "capture_bytes": sum(p.stat().st_size for p in caps.iterdir()),
        "cpu_share": {"mean": cpu_mean, "p95": cpu_p95, "max": max(cpu_samples, default=0.0),
                      "samples": len(cpu_samples)},
        "rss_mb": {"max_sampled": rss_max_mb, "peak_hwm": hwm_mb},
        "scrape_s": {"n": len(answers), "median": statistics.median(answers) if answers else None,
                     "max": max(answers, default=None), "page_bytes": page_bytes},
        "scrape_cost": cost, "scrape_share_of_core": scrape_share,
        "limits": {"margin": a.margin, "cpu_m": cpu_limit_m, "memory_mi": mem_limit_mi},
    })
    print(machine_line())
    if note:
        print(note)
    print(f"ktrace {' '.join(argv[1:])}; nginx under wrk -t1 -c10 for {a.duration:.0f} s "
          f"({reqs or 0:.0f} requests/s)")
    table(["figure", "value"], [
        ["events captured / dropped", f"{doc['events']} / {doc['dropped']}"],
        ["capture files (ring of 5 x 100 MB)", f"{len(files)}, {doc['capture_bytes'] / 1e6:.0f} MB"],
        ["ktrace CPU, share of a core: mean / p95 / max",
         f"{cpu_mean:.2f} / {cpu_p95:.2f} / {doc['cpu_share']['max']:.2f}"],
        ["ktrace RSS: max sampled / peak (VmHWM)", f"{rss_max_mb:.0f} MiB / {hwm_mb:.0f} MiB"],
        ["scrape answer under load: median / max (n)",
         f"{(doc['scrape_s']['median'] or 0) * 1e3:.1f} ms / {(doc['scrape_s']['max'] or 0) * 1e3:.1f} ms "
         f"({len(answers)})"],
        ["metrics page", f"{page_bytes} bytes"],
        [f"CPU per scrape (idle node, burst of {a.burst})", f"{cost['cpu_per_scrape_s'] * 1e3:.2f} ms"],
        [f"scraping every {a.scrape_interval:.0f} s, share of a core", f"{scrape_share * 100:.3f} %"],
        [f"limits (x{a.margin}): cpu / memory", f"{cpu_limit_m}m / {mem_limit_mi}Mi"],
    ])
    dump_json(a.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
