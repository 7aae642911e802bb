"""Run `ktrace ARGS` in-process with timers around each start-up stage (used by bench/startup.py).

    KTRACE_STARTUP_OUT=stages.json .venv/bin/python bench/_startup_child.py SPAWN_NS ARGS...

SPAWN_NS is the parent's CLOCK_MONOTONIC (ns) just before it spawned this process. Every stage is
written as [name, start, end] in seconds since SPAWN_NS; ktrace runs until the first matching
event is printed, then stops as if interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

T0 = time.monotonic_ns()
SPAWN = int(sys.argv[1])
STAGES: list[list[object]] = []


def now() -> float:
    return (time.monotonic_ns() - SPAWN) / 1e9


def mark(name: str, start: float, end: float | None = None) -> None:
    STAGES.append([name, start, now() if end is None else end])


def timed(owner: object, attr: str, name: str) -> None:
    """Wrap owner.attr so each call adds a stage."""
    fn = getattr(owner, attr)

    def wrapper(*a: object, **kw: object) -> object:
        t = now()
        try:
            return fn(*a, **kw)
        finally:
            mark(name, t)

    setattr(owner, attr, wrapper)


def main() -> None:
    STAGES.append(["interpreter start", 0.0, (T0 - SPAWN) / 1e9])
    t = now()
    import tracer.cli as cli
    import tracer.session as session
    from tracer.capture import CaptureWriter  # noqa: F401 - imported at start by the CLI's run
    from tracer.enrich import live as enrich_live  # noqa: F401 - imported by _run_live
    from tracer.source import live  # noqa: F401 - imported by _run_live
    from tracer.state import proc  # noqa: F401

    mark("import ktrace modules", t)
    from tracer.probe import bpfsys, cache, loader

    timed(cache, "key", "probe cache key (hash of source, header, flags)")
    timed(cache, "read", "probe cache read (hit)")
    timed(cache, "compile_image", "bcc compile (miss: clang+llvm)")
    timed(cache, "write", "probe cache write (miss)")
    timed(loader.Probe, "_create_maps", "create maps")
    timed(bpfsys, "prog_load", "verifier load (per program)")
    timed(bpfsys, "raw_tracepoint_open", "attach (per raw tracepoint)")
    timed(loader.Probe, "_fill_spec", "fill kt_spec map")
    timed(loader.Probe, "_fill_filters", "fill filter maps")
    timed(loader.Probe, "__init__", "probe total")
    timed(live.LiveSource, "__init__", "live source total (probe + ring + thread)")
    timed(proc, "bootstrap", "/proc bootstrap")
    timed(enrich_live.LiveEnricher, "start", "container lookups of bootstrap")
    timed(session.Runner, "_open_writer", "capture writer open")
    timed(session.Runner, "__init__", "runner setup (filter compile, pipeline)")

    first: dict[str, float] = {}
    on_event = session.Runner._on_event

    def _on_event(self: session.Runner, ev: Any) -> None:
        on_event(self, ev)
        if "event" not in first:
            first["event"] = now()
            os.kill(os.getpid(), 2)  # stop as Ctrl-C would, after this batch

    session.Runner._on_event = _on_event  # type: ignore[method-assign]
    flush = session.Runner._flush

    def _flush(self: session.Runner) -> None:
        had = bool(self._out)
        flush(self)
        if had and "line" not in first:
            first["line"] = now()

    session.Runner._flush = _flush  # type: ignore[method-assign]
    try:
        cli.main(sys.argv[2:])
    except SystemExit:
        pass
    doc = {"stages": STAGES, "first_event": first.get("event"), "first_line": first.get("line")}
    with open(os.environ["KTRACE_STARTUP_OUT"], "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
