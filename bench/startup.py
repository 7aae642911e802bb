"""Start-up: time from starting ktrace to its first event, and where that time goes.

    sudo .venv/bin/python bench/startup.py --rounds 5 [--json out.json]

A marker process (comm "ktmark") makes a syscall every 0.5 ms. ktrace runs with a probe cache
of its own (KTRACE_CACHE_DIR in the work directory), prepared before the first round. Each round:
  end-to-end  `ktrace proc.name=ktmark`: seconds from spawn to its first line on stdout
  breakdown   the same command run in-process by bench/_startup_child.py with timers around each
              stage (interpreter, imports, cache read, verifier, attach, /proc bootstrap ...)
  miss        the breakdown again with an empty cache: bcc compiles the probe (the start before the
              cache, and the first start after the probe's source changes)
and, for reference, `python -c pass`, `ktrace --version`, and an empty bcc program's compile+load
(the fixed cost of bcc's clang on the kernel headers).
"""

from __future__ import annotations

import argparse
import json
import os
import select
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
    fmt,
    log,
    machine,
    machine_line,
    need_root,
    run_timed,
    table,
    wait_quiet,
)

CHILD = str(Path(__file__).resolve().parent / "_startup_child.py")
MARKER = r"""
import ctypes, os, time
ctypes.CDLL(None).prctl(15, b"ktmark", 0, 0, 0)
print("ready", flush=True)
while True:
    os.getppid()
    time.sleep(0.0005)
"""
EMPTY_BCC = r"""
import time
t = time.monotonic()
from bcc import BPF
t1 = time.monotonic()
b = BPF(text=b"RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }")
t2 = time.monotonic()
print(t1 - t, t2 - t1)
"""
FILTER = "proc.name=ktmark"


def end_to_end(cache: Path, timeout: float = 30.0) -> float:
    """Seconds from spawning `ktrace proc.name=ktmark` to its first line on stdout."""
    env = dict(os.environ, KTRACE_CACHE_DIR=str(cache))
    t0 = time.perf_counter()
    p = subprocess.Popen([KTRACE, FILTER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert p.stdout is not None
    try:
        r, _, _ = select.select([p.stdout], [], [], timeout)
        if not r:
            raise RuntimeError("ktrace printed nothing")
        p.stdout.readline()
        return time.perf_counter() - t0
    finally:
        p.send_signal(2)
        try:
            p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()


def breakdown(work: Path, cache: Path) -> dict[str, Any]:
    out = work / "stages.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, KTRACE_STARTUP_OUT=str(out), KTRACE_CACHE_DIR=str(cache))
    spawn = time.monotonic_ns()
    d = run_timed([PYTHON, CHILD, str(spawn), FILTER], env=env)
    if d.code not in (0, 130) or not out.exists():
        raise RuntimeError(f"breakdown run failed ({d.code})")
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


COMPILE_STAGE = "bcc compile (miss: clang+llvm)"
# Stages in the order they happen; (label, stage names summed).
ORDER = [
    ("interpreter start", ["interpreter start"]),
    ("import ktrace modules", ["import ktrace modules"]),
    ("runner setup (filter compile, pipeline)", ["runner setup (filter compile, pipeline)"]),
    ("probe cache key (hash of source, header, flags)", ["probe cache key (hash of source, header, flags)"]),
    ("probe cache read (hit)", ["probe cache read (hit)"]),
    ("bcc compile (miss only: clang+llvm)", [COMPILE_STAGE, "probe cache write (miss)"]),
    ("create maps", ["create maps"]),
    ("verifier load (3 programs)", ["verifier load (per program)"]),
    ("attach (3 raw tracepoints)", ["attach (per raw tracepoint)"]),
    ("fill kt_spec map", ["fill kt_spec map"]),
    ("fill filter maps", ["fill filter maps"]),
    ("/proc bootstrap", ["/proc bootstrap"]),
    ("container lookups of bootstrap", ["container lookups of bootstrap"]),
    ("capture writer open", ["capture writer open"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap)
    a = ap.parse_args()
    apply_nice(a)
    need_root()
    e2e = Series()
    first_event = Series()
    first_line = Series()
    probe_total = Series()
    live_total = Series()
    stages: dict[str, Series] = {label: Series() for label, _ in ORDER}
    attach_done = Series()
    miss_event, miss_compile = Series(), Series()
    py_pass, version, empty_import, empty_compile = Series(), Series(), Series(), Series()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ktrace-startup-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        cache = work / "probe-cache"
        cache.mkdir(mode=0o700, exist_ok=True)
        warm = subprocess.run([PYTHON, "-m", "tracer.probe.cache", "--warm"], capture_output=True, text=True,
                              check=False, env=dict(os.environ, KTRACE_CACHE_DIR=str(cache)))
        log(warm.stdout.strip() or warm.stderr.strip())
        marker = Bg([PYTHON, "-c", MARKER], work, "marker")
        marker.wait_ready(lambda bg: "ready" in bg.stdout(), timeout=10)
        try:
            for i in range(a.rounds):
                if not a.no_wait_quiet:
                    q = wait_quiet()
                    if not q.ok:
                        notes.append(f"round {i + 1}: machine not quiet ({q.busy:.0%} busy, {q.tracers})")
                log(f"round {i + 1}/{a.rounds}: end-to-end")
                before = sorted(cache.iterdir())
                e2e.add(end_to_end(cache))
                log(f"  -> {e2e.values[-1]:.3f} s")
                if sorted(cache.iterdir()) != before:
                    notes.append(f"round {i + 1}: ktrace compiled the probe (its source changed meanwhile?)")
                log(f"round {i + 1}/{a.rounds}: breakdown")
                doc = breakdown(work, cache)
                by: dict[str, float] = {}
                ends: dict[str, float] = {}
                for name, s, e in doc["stages"]:
                    by[name] = by.get(name, 0.0) + (e - s)
                    ends[name] = max(ends.get(name, 0.0), e)
                for label, names in ORDER:
                    stages[label].add(sum(by.get(n, 0.0) for n in names))
                probe_total.add(by.get("probe total"))
                live_total.add(by.get("live source total (probe + ring + thread)"))
                attach_done.add(ends.get("attach (per raw tracepoint)"))
                first_event.add(doc.get("first_event"))
                first_line.add(doc.get("first_line"))
                log(f"  -> first event at {fmt(doc.get('first_event'), '{:.3f}')} s")
                log(f"round {i + 1}/{a.rounds}: breakdown with an empty cache")
                with tempfile.TemporaryDirectory(prefix="cache-", dir=work) as empty:
                    miss = breakdown(work, Path(empty))
                miss_event.add(miss.get("first_event"))
                miss_compile.add(sum(e - s for name, s, e in miss["stages"] if name == COMPILE_STAGE))
                log(f"  -> first event at {fmt(miss.get('first_event'), '{:.3f}')} s")
                log(f"round {i + 1}/{a.rounds}: references")
                py_pass.add(run_timed([PYTHON, "-c", "pass"]).wall)
                version.add(run_timed([KTRACE, "--version"]).wall)
                r = subprocess.run([PYTHON, "-c", EMPTY_BCC], capture_output=True, text=True, check=False)
                if r.returncode == 0:
                    imp, comp = (float(x) for x in r.stdout.split())
                    empty_import.add(imp)
                    empty_compile.add(comp)
        finally:
            marker.stop(sig=15)
    print(f"\nstart-up: `ktrace {FILTER}` (a marker process makes a syscall every 0.5 ms); "
          f"{a.rounds} rounds, median (min-max)")
    print(f"machine: {machine_line()}\n")
    table(["figure", "s", "spread", "target"], [
        ["spawn -> first line on stdout (end-to-end)", fmt(e2e.median, "{:.3f}"), e2e.spread("{:.3f}"), "<= 0.5"],
        ["spawn -> first event (instrumented run)", fmt(first_event.median, "{:.3f}"),
         first_event.spread("{:.3f}"), ""],
        ["spawn -> probes attached (instrumented run)", fmt(attach_done.median, "{:.3f}"),
         attach_done.spread("{:.3f}"), ""],
    ])
    print("\nwhere the time goes (instrumented run, stages in order):")
    rows = []
    total = sum((s.median or 0.0) for s in stages.values())
    for label, _ in ORDER:
        s = stages[label]
        share = (s.median or 0.0) / total if total else 0.0
        rows.append([label, fmt(s.median, "{:.3f}"), s.spread("{:.3f}"), f"{share:.0%}"])
    rows.append(["(probe total: compile + load + attach + maps)", fmt(probe_total.median, "{:.3f}"),
                 probe_total.spread("{:.3f}"), ""])
    table(["stage", "s", "spread", "share"], rows)
    print("\nreferences:")
    table(["reference", "s", "spread"], [
        ["spawn -> first event, empty cache (instrumented run)", fmt(miss_event.median, "{:.3f}"),
         miss_event.spread("{:.3f}")],
        ["  of which bcc compile (clang+llvm, maps)", fmt(miss_compile.median, "{:.3f}"),
         miss_compile.spread("{:.3f}")],
        ["python -c pass", fmt(py_pass.median, "{:.3f}"), py_pass.spread("{:.3f}")],
        ["ktrace --version (interpreter + CLI imports)", fmt(version.median, "{:.3f}"), version.spread("{:.3f}")],
        ["import bcc", fmt(empty_import.median, "{:.3f}"), empty_import.spread("{:.3f}")],
        ["bcc: empty raw tracepoint program, compile+load+attach", fmt(empty_compile.median, "{:.3f}"),
         empty_compile.spread("{:.3f}")],
    ])
    for n in notes:
        print(f"note: {n}")
    dump_json(a.json, {
        "bench": "startup", "machine": machine(), "rounds": a.rounds,
        "end_to_end_s": e2e.to_json(), "first_event_s": first_event.to_json(),
        "attached_s": attach_done.to_json(), "first_line_s": first_line.to_json(),
        "stages_s": {k: s.to_json() for k, s in stages.items()},
        "probe_total_s": probe_total.to_json(),
        "empty_cache_s": {"first_event": miss_event.to_json(), "bcc_compile": miss_compile.to_json()},
        "references_s": {"python_pass": py_pass.to_json(), "ktrace_version": version.to_json(),
                         "import_bcc": empty_import.to_json(), "bcc_empty_program": empty_compile.to_json()},
        "notes": notes,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
