"""Syscall storm: `dd if=/dev/zero of=/dev/null bs=1 count=1000000` (2 M syscalls, 4 M events)
timed bare, under the floor, under ktrace and under peers, alternately, for several rounds.

    sudo .venv/bin/python bench/storm.py --rounds 5 [--json out.json] [--count 1000000]

Variants, each round in this order:
  bare        dd alone
  floor       bpftrace counting raw_syscalls:sys_enter + sys_exit in a map (no per-event output)
  ktrace      ktrace -w f.kcap -q: every event, all parameters, to a capture file
  pushdown    ktrace -w f.kcap -q evt.type=openat: the storm stays in the kernel
  probe-only  bench/probe_only.py: ktrace's probe and ring consumer, batches thrown away (a
              diagnostic: what is left of ktrace's cost without its user-space pipeline)
  naive       bench/naive_bcc.py: bcc ring buffer + a Python callback per event
  strace      strace -f -o /dev/null, on count/10 (it is ~100x slower), time scaled by 10
              (first --strace-rounds rounds only)

A tracer is started, waited for (ktrace: probes attached and capture file open, i.e. after its
/proc bootstrap; bpftrace: its "Attaching" line + 0.5 s; the others: their "ready" line), then dd
runs, then the tracer gets SIGINT. ktrace's figures come from its closing line
`ktrace: N events captured, M dropped`; its peak RSS from wait4 (ru_maxrss); its CPU during the
storm from /proc/PID/stat before and after dd; bytes/event from the file size over the events in
the file.

After the rounds, a probe-cost pass (skip with --no-probe-cost) runs dd count/5 once more under each
BPF tracer with the kernel's BPF run-time statistics on (BPF_ENABLE_STATS, held only for that
pass) and reports the mean ns per program run: the in-kernel cost per event, which the machine's
other load does not blur.
"""

from __future__ import annotations

import argparse
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
    RssSampler,
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
    print_footer,  # noqa: E402
    probe_ns,
    proc_cpu,
    prog_stats,
    ratio_series,
    run_timed,
    status_kb,
    table,
    text_ready,
    wait_quiet,
)

HERE = Path(__file__).resolve().parent
NAIVE = str(HERE / "naive_bcc.py")
PROBE_ONLY = str(HERE / "probe_only.py")
VARIANTS = ("bare", "floor", "ktrace", "pushdown", "probe-only", "naive", "strace")
KTRACE_RUNS = ("ktrace", "pushdown", "probe-only")
TARGETS = {"ktrace": "<= 1.15x floor, 0 drops", "pushdown": "<= 1.10x floor"}


def dd(count: int) -> list[str]:
    return ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}"]


def start_tracer(v: str, work: Path) -> tuple[Bg, Path | None, float]:
    """Start variant ``v``'s tracer and wait until it traces; (process, capture file, ready s)."""
    cap = work / f"{v}.kcap"
    cap.unlink(missing_ok=True)
    if v == "floor":
        bg = Bg(["bpftrace", "-e", BPFTRACE_FLOOR], work, v)
        # "Attaching 2 probes..." comes just before the attach (perf-event tracepoints): wait a bit more.
        return bg, None, bg.wait_ready(text_ready("Attaching", "stdout"), settle=0.5)
    if v == "ktrace":
        bg = Bg([KTRACE, "-w", str(cap), "-q"], work, v)
        return bg, cap, bg.wait_ready(file_ready(cap), timeout=60)
    if v == "pushdown":
        bg = Bg([KTRACE, "-w", str(cap), "-q", "evt.type=openat"], work, v)
        return bg, cap, bg.wait_ready(file_ready(cap), timeout=60)
    if v == "probe-only":
        bg = Bg([PYTHON, PROBE_ONLY], work, v)
        return bg, None, bg.wait_ready(text_ready("probe-only: ready"), timeout=60)
    if v == "naive":
        bg = Bg([PYTHON, NAIVE], work, v)
        return bg, None, bg.wait_ready(text_ready("naive: ready"), timeout=60)
    raise ValueError(v)


class Storm:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.a = args
        self.work = work
        self.t = {v: Series() for v in VARIANTS}
        self.cpu = {v: Series() for v in VARIANTS}  # dd's own CPU (user + system): blind to other load
        self.busy: list[float] = []
        self.k: dict[str, dict[str, Series]] = {
            v: {k: Series() for k in ("events", "drops", "rss_mb", "ready_rss_mb", "storm_rss_mb", "cpu_s",
                                      "storm_cpu_s", "bytes_per_event", "file_events", "ready_s")}
            for v in KTRACE_RUNS
        }
        self.naive = {k: Series() for k in ("events", "drops", "drop_pct")}
        self.probe: dict[str, tuple[int, float]] = {}
        self.notes: list[str] = []

    def quiet(self, v: str) -> None:
        if self.a.no_wait_quiet:
            return
        q = wait_quiet()
        self.busy.append(q.busy)
        if not q.ok:
            self.notes.append(f"{v}: machine not quiet ({q.busy:.0%} busy, tracers {q.tracers})")

    def run_dd(self, count: int, v: str | None = None) -> float:
        d = run_timed(dd(count))
        if d.code != 0:
            raise RuntimeError(f"dd failed ({d.code})")
        if v is not None:
            self.cpu[v].add(d.cpu)
        return d.wall

    def variant(self, v: str, i: int) -> None:
        if v == "strace":
            if not shutil.which("strace") or i >= self.a.strace_rounds:
                return
            self.quiet(v)
            n = max(1, self.a.count // 10)
            d = run_timed(["strace", "-f", "-o", "/dev/null", *dd(n)])
            self.t[v].add(d.wall * self.a.count / n)
            self.cpu[v].add(d.cpu * self.a.count / n)  # strace's CPU and dd's (wait4 sums children)
            return
        self.quiet(v)
        if v == "bare":
            self.t[v].add(self.run_dd(self.a.count, v))
            return
        bg, cap, ready = start_tracer(v, self.work)
        try:
            ready_rss = status_kb(bg.pid, "VmRSS")
            c0 = proc_cpu(bg.pid)
            rss = RssSampler(bg.pid)
            self.t[v].add(self.run_dd(self.a.count, v))
            storm_rss = rss.stop()
            storm_cpu = proc_cpu(bg.pid) - c0
        finally:
            done = bg.stop()
        if v == "naive":
            m = re.search(r"naive: (\d+) events received, (\d+) dropped", done.stderr)
            if m:
                got, lost = int(m.group(1)), int(m.group(2))
                self.naive["events"].add(got)
                self.naive["drops"].add(lost)
                self.naive["drop_pct"].add(100 * lost / max(1, got + lost))
            else:
                self.notes.append(f"naive: no closing line: {done.stderr.strip()[-300:]}")
            return
        if v not in self.k:
            return
        k = self.k[v]
        k["ready_s"].add(ready)
        k["rss_mb"].add(done.maxrss_kb / 1024)
        k["ready_rss_mb"].add(ready_rss / 1024)
        k["storm_rss_mb"].add(storm_rss / 1024)
        k["cpu_s"].add(done.cpu)
        k["storm_cpu_s"].add(storm_cpu)
        st = ktrace_stats(done.stderr)
        if st is None:
            self.notes.append(f"{v}: no closing stats line (exit {done.code}): {done.stderr.strip()[-300:]}")
            return
        k["events"].add(st[0])
        k["drops"].add(st[1])
        if cap is None or not cap.exists():
            return
        try:
            n = capture_events(cap)
        except Exception as e:  # a bench reports, it does not stop
            self.notes.append(f"{v}: cannot read {cap}: {e}")
            return
        k["file_events"].add(n)
        if n:
            k["bytes_per_event"].add(cap.stat().st_size / n)
        cap.unlink(missing_ok=True)

    def round(self, i: int) -> None:
        for v in VARIANTS:
            if v not in self.a.only:
                continue
            log(f"round {i + 1}/{self.a.rounds}: {v}")
            n = len(self.t[v].values)
            self.variant(v, i)
            if len(self.t[v].values) > n:
                log(f"  -> {self.t[v].values[-1]:.3f} s")

    def probe_cost(self) -> None:
        """ns per BPF program run of each tracer during a dd storm (kernel statistics on)."""
        stats = BpfStats()
        try:
            for v in ("floor", "ktrace", "pushdown", "naive"):
                if v not in self.a.only:
                    continue
                log(f"probe cost: {v}")
                bg, cap, _ = start_tracer(v, self.work)
                try:
                    before = prog_stats(bg.pid)
                    self.run_dd(max(1, self.a.count // 5))
                    after = prog_stats(bg.pid)
                finally:
                    bg.stop()
                    if cap is not None:
                        cap.unlink(missing_ok=True)
                r = probe_ns(before, after)
                if r is not None:
                    self.probe[v] = r
        finally:
            stats.close()

    def report(self) -> dict[str, Any]:
        floor = self.t["floor"]
        bare = self.t["bare"]
        print(f"\nstorm: dd bs=1 count={self.a.count:,} ({2 * self.a.count:,} syscalls, "
              f"{4 * self.a.count:,} enter+exit events); {self.a.rounds} rounds, median (min-max)")
        print(f"machine: {machine_line()}\n")
        rows = []
        for v in VARIANTS:
            s = self.t[v]
            if not s.values:
                continue
            rb = ratio_series(s, bare)
            rf = ratio_series(s, floor)
            extra = f"count={self.a.count // 10:,}, time x10, {len(s.values)} run(s)" if v == "strace" else ""
            if v == "probe-only":
                extra = "diagnostic"
            rows.append([v, fmt(s.median, "{:.3f}"), s.spread("{:.3f}"), fmt(rb.median, "{:.2f}x"),
                         fmt(rf.median, "{:.2f}x"), rf.spread("{:.2f}"), TARGETS.get(v, ""), extra])
        table(["variant", "time s", "spread", "vs bare", "vs floor", "spread", "target", "note"], rows)
        print("\ndd's own CPU time (user + system, from wait4; the probes run in dd's system time, so this"
              " is the tracers' in-kernel cost,\nblind to other load competing for the CPUs; it misses what a"
              " tracer's user-space threads take from dd on 2 cores):")
        crows = []
        for v in VARIANTS:
            s = self.cpu[v]
            if not s.values:
                continue
            rf = ratio_series(s, self.cpu["floor"])
            crows.append([v, fmt(s.median, "{:.3f}"), s.spread("{:.3f}"), fmt(ratio_series(s, self.cpu["bare"]).median,
                          "{:.2f}x"), fmt(rf.median, "{:.2f}x"), rf.spread("{:.2f}")])
        table(["variant", "dd CPU s", "spread", "vs bare", "vs floor", "spread"], crows)
        print()
        krows = []
        for v in KTRACE_RUNS:
            k = self.k[v]
            if not k["rss_mb"].values:
                continue
            ev = k["events"].median
            us = (k["storm_cpu_s"].median or 0) / ev * 1e6 if ev else None
            krows.append([v, fmt(ev, "{:,.0f}"), fmt(k["drops"].median, "{:,.0f}"), fmt(k["drops"].hi, "{:,.0f}"),
                          fmt(k["file_events"].median, "{:,.0f}"), fmt(k["bytes_per_event"].median, "{:.2f}"),
                          fmt(k["ready_rss_mb"].median, "{:.0f}"), fmt(k["storm_rss_mb"].median, "{:.0f}"),
                          fmt(k["storm_rss_mb"].hi, "{:.0f}"), fmt(k["rss_mb"].median, "{:.0f}"),
                          fmt(k["storm_cpu_s"].median, "{:.2f}"), fmt(us, "{:.2f}"),
                          fmt(k["ready_s"].median, "{:.2f}")])
        if krows:
            table(["ktrace run", "events", "drops", "max drops", "in file", "B/event", "RSS ready MB",
                   "RSS storm MB", "max", "VmHWM MB", "CPU s in storm", "CPU us/event", "ready s"], krows)
            print("targets: 0 drops, <= 12 B/event on disk, bounded RSS. RSS ready = VmRSS once tracing; RSS storm = "
                  "largest VmRSS sampled every 50 ms while dd ran;\nVmHWM = peak over the whole run (wait4 ru_maxrss: "
                  "includes the probe compile). CPU = ktrace's threads (user+system) while dd ran")
        if self.naive["events"].values:
            print(f"\nnaive bcc tracer: received {fmt(self.naive['events'].median, '{:,.0f}')} events, dropped "
                  f"{fmt(self.naive['drops'].median, '{:,.0f}')} ({fmt(self.naive['drop_pct'].median, '{:.0f}')}%, "
                  f"spread {self.naive['drop_pct'].spread('{:.0f}')})")
        print_footer(self.probe, "BPF run-time statistics, dd count/5, one run each", self.busy, self.notes)
        return {
            "bench": "storm", "machine": machine(), "count": self.a.count, "rounds": self.a.rounds,
            "time_s": {v: s.to_json() for v, s in self.t.items() if s.values},
            "dd_cpu_s": {v: s.to_json() for v, s in self.cpu.items() if s.values},
            "dd_cpu_vs_floor": {v: ratio_series(s, self.cpu["floor"]).to_json()
                                for v, s in self.cpu.items() if s.values},
            "vs_floor": {v: ratio_series(s, floor).to_json() for v, s in self.t.items() if s.values},
            "vs_bare": {v: ratio_series(s, bare).to_json() for v, s in self.t.items() if s.values},
            "ktrace": {v: {k: s.to_json() for k, s in d.items()} for v, d in self.k.items()},
            "naive": {k: s.to_json() for k, s in self.naive.items()},
            "probe_ns_per_run": {v: {"runs": r[0], "ns": r[1]} for v, r in self.probe.items()},
            "busy_before_runs": self.busy,
            "notes": self.notes,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap)
    ap.add_argument("--count", type=int, default=1_000_000, help="dd count (default %(default)s)")
    ap.add_argument("--only", default=",".join(VARIANTS), help="variants to run, comma-separated")
    ap.add_argument("--strace-rounds", type=int, default=2,
                    help="run strace in the first N rounds only (it takes ~1 min a run; default %(default)s)")
    ap.add_argument("--no-probe-cost", action="store_true", help="skip the in-kernel probe cost pass")
    a = ap.parse_args()
    apply_nice(a)
    a.only = set(a.only.split(","))
    need_root()
    with tempfile.TemporaryDirectory(prefix="ktrace-storm-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        s = Storm(a, work)
        t0 = time.monotonic()
        for i in range(a.rounds):
            s.round(i)
        if not a.no_probe_cost:
            s.probe_cost()
        doc = s.report()
        print(f"\n({time.monotonic() - t0:.0f} s)")
    dump_json(a.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
