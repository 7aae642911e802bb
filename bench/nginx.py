"""nginx under wrk: requests/s bare, under the floor and under ktrace, alternately, for several rounds.

    sudo .venv/bin/python bench/nginx.py --rounds 5 [--duration 10] [--connections 10] [--json out.json]

nginx (1 worker, access log off) serves a 612-byte static file on 127.0.0.1:PORT from a
temporary directory; `wrk -t1 -c10 -d10s` loads it (`--connections N` for -cN). Variants, each round in this order:
  bare        no tracer
  floor       bpftrace counting raw_syscalls:sys_enter + sys_exit
  ktrace      ktrace -w f.kcap -q (every event, all parameters, to a file)
  ktrace-nginx  ktrace -w f.kcap -q proc.name=nginx (a filtered capture: the kernel drops wrk's
              events, the scanner copies nginx's in runs)
  topconns    ktrace -q -c topconns (live chisel; skipped with a note when `ktrace -cl` lacks it)
  probe-only  bench/probe_only.py: ktrace's probe and ring consumer, batches thrown away (a
              diagnostic: ktrace's cost without its user-space pipeline)

Tracers are started and waited for as in storm.py, then wrk runs, then the tracer gets SIGINT.
After the rounds, a probe-cost pass (skip with --no-probe-cost) runs wrk for 3 s once more under
each BPF tracer with the kernel's BPF run-time statistics on, for the mean ns per program run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BPFTRACE_FLOOR,
    KTRACE,
    PYTHON,
    Bg,
    BpfStats,
    Series,
    apply_nice,
    capture_events,
    common_args,
    dump_json,
    file_ready,
    fmt,
    free_port,
    ktrace_stats,
    links_ready,
    log,
    machine,
    machine_line,
    need_root,
    print_footer,  # noqa: E402
    probe_ns,
    proc_cpu,
    prog_stats,
    ratio_series,
    run_capture,
    skip_without_chisel,
    start_floor,
    table,
    text_ready,
    wait_quiet,
)

VARIANTS = ("bare", "floor", "ktrace", "ktrace-nginx", "topconns", "probe-only")
PROBE_ONLY = str(Path(__file__).resolve().parent / "probe_only.py")
INDEX = (b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body>\n" + b"x" * 512
         + b"\n</body></html>\n")

CONF = """\
worker_processes 1;
daemon off;
master_process on;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location / {{ }}
    }}
}}
"""


def start_nginx(work: Path) -> tuple[Bg, int]:
    d = work / "nginx"
    (d / "www").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    (d / "www" / "index.html").write_bytes(INDEX)
    port = free_port()
    (d / "nginx.conf").write_text(CONF.format(d=d, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    bg = Bg([nginx, "-c", str(d / "nginx.conf"), "-p", str(d)], work, "nginx")

    def ready(_bg: Bg) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    bg.wait_ready(ready, timeout=10)
    return bg, port


def nginx_pids(master: int) -> list[int]:
    """The master and its workers."""
    out = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rfind(")") + 2:].split()[1]) == master:
                out.append(int(d))
    return out


class Nginx:
    def __init__(self, args: argparse.Namespace, work: Path, port: int, master: int) -> None:
        self.a = args
        self.work = work
        self.master = master
        # CPU per request (us): nginx's processes (the probes run in their system time), wrk, the
        # tracer's user-space threads. Blind to other load competing for the CPUs.
        self.us_nginx = {v: Series() for v in VARIANTS}
        self.us_wrk = {v: Series() for v in VARIANTS}
        self.us_tracer = {v: Series() for v in VARIANTS}
        self.url = f"http://127.0.0.1:{port}/index.html"
        self.rps = {v: Series() for v in VARIANTS}
        self.lat = {v: Series() for v in VARIANTS}
        self.k: dict[str, dict[str, Series]] = {
            v: {k: Series() for k in ("events", "drops", "rss_mb", "cpu_s", "events_per_s", "bytes_per_event")}
            for v in ("ktrace", "ktrace-nginx", "topconns", "probe-only")
        }
        self.notes: list[str] = []
        self.skip: set[str] = set()
        self.probe: dict[str, tuple[int, float]] = {}
        self.busy: list[float] = []

    def quiet(self, v: str) -> None:
        """Before a variant starts its tracer: wait (bounded) for an idle machine."""
        if not self.a.no_wait_quiet:
            q = wait_quiet()
            self.busy.append(q.busy)
            if not q.ok:
                self.notes.append(f"{v}: machine not quiet ({q.busy:.0%} busy, tracers {q.tracers})")

    def wrk(self, v: str, tracer: int | None = None) -> None:
        pids = nginx_pids(self.master)
        n0 = sum(proc_cpu(p) for p in pids)
        t0 = proc_cpu(tracer) if tracer else 0.0
        d = run_capture(["wrk", "-t1", f"-c{self.a.connections}", f"-d{self.a.duration}s", "--latency", self.url])
        n1 = sum(proc_cpu(p) for p in pids)
        t1 = proc_cpu(tracer) if tracer else 0.0
        m = re.search(r"Requests/sec:\s+([\d.]+)", d.stdout)
        if d.code != 0 or m is None:
            raise RuntimeError(f"wrk failed ({d.code}): {d.stdout[-300:]} {d.stderr[-300:]}")
        self.rps[v].add(float(m.group(1)))
        m = re.search(r"(\d+) requests in", d.stdout)
        if m and int(m.group(1)):
            nreq = int(m.group(1))
            self.us_nginx[v].add((n1 - n0) / nreq * 1e6)
            self.us_wrk[v].add(d.cpu / nreq * 1e6)
            if tracer:
                self.us_tracer[v].add((t1 - t0) / nreq * 1e6)
        m = re.search(r"Latency\s+([\d.]+)(us|ms|s)", d.stdout)
        if m:
            self.lat[v].add(float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)])
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", d.stdout)
        if errs:
            self.notes.append(f"{v}: wrk reports {errs.group(0)}")

    def traced(self, v: str, argv: list[str], cap: Path | None) -> None:
        if cap is not None:
            cap.unlink(missing_ok=True)
        bg = Bg(argv, self.work, v)
        if cap is not None:
            bg.wait_ready(file_ready(cap), timeout=60)
        elif v == "probe-only":
            bg.wait_ready(text_ready("probe-only: ready"), timeout=60)
        else:  # a chisel: probes attached, then a second for its /proc bootstrap
            bg.wait_ready(links_ready(2), timeout=60, settle=1.0)
        t0 = time.monotonic()
        try:
            self.wrk(v, bg.pid)
        finally:
            span = time.monotonic() - t0
            done = bg.stop()
        k = self.k[v]
        k["rss_mb"].add(done.maxrss_kb / 1024)
        k["cpu_s"].add(done.cpu)
        st = ktrace_stats(done.stderr)
        if st is None:
            self.notes.append(f"{v}: no closing stats line (exit {done.code}): {done.stderr.strip()[-300:]}")
        else:
            k["events"].add(st[0])
            k["drops"].add(st[1])
            k["events_per_s"].add(st[0] / span)
        if cap is not None and cap.exists():
            try:
                n = capture_events(cap)
                if n:
                    k["bytes_per_event"].add(cap.stat().st_size / n)
            except Exception as e:  # report, do not stop
                self.notes.append(f"{v}: cannot read {cap}: {e}")
            cap.unlink(missing_ok=True)

    def probe_cost(self) -> None:
        """ns per BPF program run of each tracer under wrk (kernel statistics on)."""
        stats = BpfStats()
        try:
            for v in ("floor", "ktrace", "probe-only"):
                if v not in self.a.only:
                    continue
                log(f"probe cost: {v}")
                cap = self.work / "cost.kcap"
                cap.unlink(missing_ok=True)
                if v == "floor":
                    bg = Bg(["bpftrace", "-e", BPFTRACE_FLOOR], self.work, "cost-floor")
                    bg.wait_ready(text_ready("Attaching", "stdout"), settle=0.5)
                elif v == "ktrace":
                    bg = Bg([KTRACE, "-w", str(cap), "-q"], self.work, "cost-ktrace")
                    bg.wait_ready(file_ready(cap), timeout=60)
                else:
                    bg = Bg([PYTHON, PROBE_ONLY], self.work, "cost-probe-only")
                    bg.wait_ready(text_ready("probe-only: ready"), timeout=60)
                try:
                    before = prog_stats(bg.pid)
                    run_capture(["wrk", "-t1", f"-c{self.a.connections}", "-d3s", self.url])
                    after = prog_stats(bg.pid)
                finally:
                    bg.stop()
                    cap.unlink(missing_ok=True)
                r = probe_ns(before, after)
                if r is not None:
                    self.probe[v] = r
        finally:
            stats.close()

    def round(self, i: int) -> None:
        for v in VARIANTS:
            if v in self.skip or v not in self.a.only:
                continue
            log(f"round {i + 1}/{self.a.rounds}: {v}")
            self.quiet(v)
            if v == "bare":
                self.wrk(v)
            elif v == "floor":
                bg = start_floor(self.work)
                try:
                    self.wrk(v, bg.pid)
                finally:
                    bg.stop()
            elif v in ("ktrace", "ktrace-nginx"):
                cap = self.work / "nginx.kcap"
                flt = ["proc.name=nginx"] if v == "ktrace-nginx" else []
                self.traced(v, [KTRACE, "-w", str(cap), "-q", *flt], cap)
            elif v == "topconns":
                self.traced(v, [KTRACE, "-q", "-c", "topconns"], None)
            elif v == "probe-only":
                self.traced(v, [PYTHON, PROBE_ONLY], None)
            log(f"  -> {self.rps[v].values[-1]:,.0f} req/s")

    def report(self) -> dict[str, Any]:
        floor, bare = self.rps["floor"], self.rps["bare"]
        print(f"\nnginx (1 worker, 612-byte file) under wrk -t1 -c{self.a.connections} -d{self.a.duration}s; "
              f"{self.a.rounds} rounds, median (min-max)")
        print(f"machine: {machine_line()}\n")
        rows = []
        for v in VARIANTS:
            s = self.rps[v]
            if not s.values:
                continue
            rb, rf = ratio_series(s, bare), ratio_series(s, floor)
            rows.append([v, fmt(s.median, "{:,.0f}"), s.spread("{:,.0f}"), fmt(rb.median, "{:.2f}x"),
                         fmt(rf.median, "{:.2f}x"), rf.spread("{:.2f}"), fmt(self.lat[v].median, "{:.3f}"),
                         ">= 0.90x floor, 0 drops" if v in ("ktrace", "topconns") else ""])
        table(["variant", "req/s", "spread", "vs bare", "vs floor", "spread", "latency ms", "target"], rows)
        print("\nCPU per request, us (from /proc and wait4; blind to other load competing for the CPUs): nginx's "
              "processes (the probes run in their\nsystem time), wrk, and the tracer's own threads (bpftrace: its "
              "user-space only):")
        crows = []
        for v in VARIANTS:
            if not self.us_nginx[v].values:
                continue
            rf = ratio_series(self.us_nginx[v], self.us_nginx["floor"])
            crows.append([v, fmt(self.us_nginx[v].median, "{:.1f}"), self.us_nginx[v].spread("{:.1f}"),
                          fmt(rf.median, "{:.2f}x"), fmt(self.us_wrk[v].median, "{:.1f}"),
                          fmt(self.us_tracer[v].median, "{:.1f}")])
        table(["variant", "nginx us/req", "spread", "vs floor", "wrk us/req", "tracer us/req"], crows)
        krows = []
        for v, k in self.k.items():
            if not k["rss_mb"].values:
                continue
            krows.append([v, fmt(k["events"].median, "{:,.0f}"), fmt(k["events_per_s"].median, "{:,.0f}"),
                          fmt(k["drops"].median, "{:,.0f}"), fmt(k["drops"].hi, "{:,.0f}"),
                          fmt(k["bytes_per_event"].median, "{:.2f}"), fmt(k["rss_mb"].median, "{:.0f}"),
                          fmt(k["cpu_s"].median, "{:.1f}")])
        if krows:
            print()
            table(["ktrace run", "events", "events/s", "drops", "max drops", "B/event", "peak RSS MB", "CPU s"],
                  krows)
        print_footer(self.probe, "under wrk: BPF run-time statistics, 3 s each", self.busy, self.notes)
        return {
            "busy_before_runs": self.busy,
            "probe_ns_per_run": {v: {"runs": r[0], "ns": r[1]} for v, r in self.probe.items()},
            "bench": "nginx", "machine": machine(), "rounds": self.a.rounds, "duration": self.a.duration,
            "rps": {v: s.to_json() for v, s in self.rps.items() if s.values},
            "vs_floor": {v: ratio_series(s, floor).to_json() for v, s in self.rps.items() if s.values},
            "vs_bare": {v: ratio_series(s, bare).to_json() for v, s in self.rps.items() if s.values},
            "latency_ms": {v: s.to_json() for v, s in self.lat.items() if s.values},
            "cpu_us_per_request": {
                "nginx": {v: s.to_json() for v, s in self.us_nginx.items() if s.values},
                "wrk": {v: s.to_json() for v, s in self.us_wrk.items() if s.values},
                "tracer": {v: s.to_json() for v, s in self.us_tracer.items() if s.values},
            },
            "ktrace": {v: {k: s.to_json() for k, s in d.items()} for v, d in self.k.items()},
            "notes": self.notes,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap)
    ap.add_argument("--duration", type=int, default=10, help="wrk seconds per run (default %(default)s)")
    ap.add_argument("--connections", type=int, default=10, help="wrk's open connections (default %(default)s)")
    ap.add_argument("--only", default=",".join(VARIANTS), help="variants to run, comma-separated")
    ap.add_argument("--no-probe-cost", action="store_true", help="skip the in-kernel probe cost pass")
    a = ap.parse_args()
    apply_nice(a)
    a.only = set(a.only.split(","))
    need_root()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is missing: apt-get install -y {'nginx-light' if tool == 'nginx' else tool}")
    with tempfile.TemporaryDirectory(prefix="ktrace-nginx-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        server, port = start_nginx(work)
        try:
            b = Nginx(a, work, port, server.pid)
            if "topconns" in a.only:
                skip_without_chisel(b, "topconns")
            t0 = time.monotonic()
            for i in range(a.rounds):
                b.round(i)
            if not a.no_probe_cost:
                b.probe_cost()
        finally:
            server.stop(timeout=10)
        doc = b.report()
        print(f"\n({time.monotonic() - t0:.0f} s)")
    dump_json(a.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
