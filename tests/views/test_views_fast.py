"""The views' fast path (records counted through plans, tracer/views/fast.py) against the slow one
(an Event per record through ViewAggregator.add) on the same captures: every table view, with and
without -pc, whole and sliced, as ``ktrace top -r`` runs them and as the live engine does (every
record of the stream to the aggregator, the view's filter and the user's applied there, latencies
paired by the run)."""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import tracer.views.fast as fast
from tracer.schema import record as R
from tracer.session import RunOptions, run
from tracer.testing import random_capture
from tracer.views import LiveViews, ViewAggregator, ViewSpec, all_views, capture_tables
from tracer.views.run import runner_for

CAPS = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "captures").glob("*.kcap"))
WEB, CONTAINER, FAIL = (next(c for c in CAPS if n in c) for n in ("webserver", "container", "failing"))
TABLES = sorted((k for k, f in all_views().items() if f.view.kind == "table"))


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Records the fast path counted, by view id (so a test knows the fast path ran)."""
    seen: Counter[str] = Counter()
    real = fast.record_counter

    class Counting:
        """The engine's counter, telling ``seen`` what it counted, one by one or in runs."""

        def __init__(self, inner: Any, vid: str) -> None:
            self.inner, self.vid = inner, vid

        def count(self, buf: bytes, off: int) -> bool:
            ok = self.inner.count(buf, off)
            seen[self.vid] += bool(ok)
            return bool(ok)

        def count_run(self, batch: bytes, sel: Any, i: int, apply: Any) -> tuple[int, int]:
            j, k = self.inner.count_run(batch, sel, i, apply)
            seen[self.vid] += k
            return j, k

    def counting(agg: ViewAggregator, state: Any, *, latency: bool, on_slice: Any = None) -> Counting:
        return Counting(real(agg, state, latency=latency, on_slice=on_slice), agg.view.id)

    monkeypatch.setattr(fast, "record_counter", counting)
    return seen


def slices(view: ViewSpec, cap: str, fast_path: bool, **kw: Any) -> list[dict[str, Any]]:
    return [t.json_slice() for t in capture_tables(view, [cap], fast=fast_path, **kw)]


def test_every_everyday_table_view_has_a_fast_path() -> None:
    for vid, f in all_views().items():
        if f.view.kind == "table":
            for pc in (False, True):
                assert fast.fast_path_possible(ViewAggregator(f.view, container_mode=pc)), (vid, pc)
    # What has no plan: list views (a row per event, with its time) and spectrograms.
    assert not fast.fast_path_possible(ViewAggregator(all_views()["file_opens"].view))
    assert not fast.fast_path_possible(ViewAggregator(all_views()["spectro_all"].view))


@pytest.mark.parametrize("vid", TABLES)
def test_capture_tables_equal_the_slow_path(vid: str, taken: Counter[str]) -> None:
    view = all_views()[vid].view
    for cap in CAPS:
        pc = cap == CONTAINER
        assert slices(view, cap, True, container_mode=pc) == slices(view, cap, False, container_mode=pc), cap
    assert slices(view, WEB, True, slice_ns=700_000_000) == slices(view, WEB, False, slice_ns=700_000_000)
    if vid in ("procs", "procs_cpu", "threads", "io_by_type"):  # exact filters: records reach the counter
        assert taken[vid] > 10_000


def live_table(view: ViewSpec, cap: str, fast_path: bool, pc: bool, flt: str) -> dict[str, Any]:
    """A capture's records through the live engine's chisel (no filter pushed down: every record
    goes to the view's aggregator, as live), one table at the end."""
    live = LiveViews(on_table=lambda t: None, on_error=lambda e: None, container_mode=pc, fast=fast_path)
    live.set_view(view, flt)
    live.opts.reads = [cap]
    runner_for(live.opts, frozenset({R.EVT_PROCINFO})).run()
    assert live.host.agg is not None
    return live.host.agg.take(2**63, 1).json_slice()


@pytest.mark.parametrize("vid", TABLES)
def test_live_engine_equals_the_slow_path(vid: str, taken: Counter[str]) -> None:
    view = all_views()[vid].view
    for cap, pc, flt in ((WEB, False, ""), (CONTAINER, True, ""), (FAIL, False, "proc.name!=bash and evt.type!=close")):
        assert live_table(view, cap, True, pc, flt) == live_table(view, cap, False, pc, flt), (cap, pc, flt)
    assert taken[vid] > 40_000  # the captures' syscalls, counted from their records


def test_fast_tables_equal_the_independent_counts(taken: Counter[str]) -> None:
    """The threads view's network bytes, fast path, against the capture's own I/O lines."""
    t = capture_tables(all_views()["threads"].view, [WEB])[-1]
    assert taken["threads"] > 0
    out = io.StringIO()
    run(RunOptions(reads=[WEB], fmt="%thread.tid|%evt.rawres|%fd.type", stdout=out, stderr=io.StringIO(),
                   filter_text="evt.is_io=true and evt.dir=< and evt.rawres>0"))
    want: Counter[int] = Counter()
    for line in out.getvalue().splitlines():
        tid, n, fdtype = line.split("|")
        if fdtype in ("ipv4", "ipv6"):
            want[int(tid)] += int(n)
    net = [c.header for c in t.columns].index("NET")
    got = {r.key: r.totals[net] for r in t.rows if r.totals[net]}
    assert want and got == dict(want)


def test_a_tap_sends_every_record_as_an_event() -> None:
    live = LiveViews(on_table=lambda t: None, on_error=lambda e: None)
    live.set_view(all_views()["procs"].view)
    live.opts.reads = [WEB]
    runner = runner_for(live.opts, frozenset({R.EVT_PROCINFO}))
    assert live.host.counter is not None  # armed by the session's record_counter
    tap = live.set_tap("evt.dir=<", "dig")
    assert live.host.counter is None and tap is not None
    runner.run()
    assert len(tap.buffer) > 10_000 and all(" < " in line for line in tap.buffer)
    live.set_tap(None)
    assert live.host.counter is not None


def _counters() -> list[Any]:
    """The views' counter modules to compare: the pure twin, and the Cython one unless this run
    is the pure engine's."""
    import importlib

    mods = [importlib.import_module("tracer._pure.viewtally")]
    if not os.environ.get("KTRACE_PUREPYTHON"):
        mods.append(importlib.import_module("tracer._ext.viewtally"))
    return mods


@pytest.mark.parametrize("seed", range(3))
def test_both_counters_equal_the_slow_path_on_random_streams(tmp_path: Path, seed: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Random streams (files and sockets, failures, dups, execs, clones, hidden records) through
    each engine's ViewCounter give the slow path's tables: the Cython one folds a run by key and
    pairs enters in C, the pure one adds record by record."""
    cap = str(random_capture(tmp_path / "r.kcap", seed))
    for vid in TABLES:
        view = all_views()[vid].view
        want = (slices(view, cap, False, slice_ns=50_000_000), live_table(view, cap, False, False, ""))
        for mod in _counters():
            monkeypatch.setattr(fast, "viewtally", mod)
            got = (slices(view, cap, True, slice_ns=50_000_000), live_table(view, cap, True, False, ""))
            assert got == want, (vid, mod.__name__)
