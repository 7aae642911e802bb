"""The index's fast counts (plans in iotally, C or pure; fast opens in the scanner) equal the slow
reference (an Event decoded for every record the tiles may count) on the sample captures and on
random streams of files, sockets, failures, hidden records and state changes."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from inspectkit import CAPTURES

from tracer._pure import iotally as pure_iotally
from tracer.engine import iotally
from tracer.inspect.index import build
from tracer.inspect.summary import Summary
from tracer.pipeline import Pipeline, Selection
from tracer.state.state import State
from tracer.testing import random_capture

SAMPLES = sorted(p.name for p in CAPTURES.glob("*.kcap"))


@pytest.mark.parametrize("name", SAMPLES)
def test_fast_index_equals_the_reference_on_samples(name: str) -> None:
    path = str(CAPTURES / name)
    fast, ref = build([path]), build([path], reference=True)
    assert fast.tiles == ref.tiles


@pytest.mark.parametrize("seed", range(12))
def test_fast_index_equals_the_reference_on_random_streams(tmp_path: Path, seed: int) -> None:
    cap = str(random_capture(tmp_path / "r.kcap", seed))
    fast, ref = build([cap]), build([cap], reference=True)
    assert any(fast.tiles.get(k) for k in ("file_in", "net_out", "files", "connections"))
    assert fast.tiles == ref.tiles


def _counts(cap: str, impl: Any) -> tuple[list[int], list[int], list[int], list[int]]:
    """Index ``cap``'s tiles through ``impl.count``: its sums, distinct entries, the records whose
    plans it asked for and how far each call went."""
    from tracer.capture import EventBlock
    from tracer.capture.files import read_captures

    state = State()
    asked: list[int] = []
    stops: list[int] = []
    blocks = [it for it in read_captures([cap]) if isinstance(it, EventBlock) and it.count]
    summary = Summary(blocks[0].first_ts, 100_000_000)
    fast = summary.record_tally(state)

    def plan_of(batch: bytes, off: int) -> tuple[int, ...]:
        asked.append(off)
        return fast._plan(batch, off)

    def on_records(batch: bytes, sel: array[int], i: int,
                   apply: Callable[[bytes, int], None] | None) -> tuple[int, int]:
        j, k = impl.count(fast.kinds, fast.regs, state.fds, summary.t0, summary.bucket_ns, summary.last_bucket,
                          len(summary.counters), fast.plans, plan_of, fast.sums, fast.distinct, batch, sel, i, apply)
        stops.append(j - i)
        stops.append(k)
        return int(j), int(k)

    pipeline = Pipeline(state, selection=Selection(summary.evts, exact=True), on_event=fast.on_event,
                        on_record=summary.record_counter(state), on_records=on_records)
    pipeline.scanner.stateless_mask = fast.stateless
    for b in blocks:
        pipeline.feed(b.raw)
    return list(fast.sums), sorted(fast.distinct), asked, stops


@pytest.mark.parametrize("seed", range(4))
def test_c_and_pure_iotally_agree(tmp_path: Path, seed: int) -> None:
    """Both engines' ``count`` on the same selections give the same counts, plans asked and stops."""
    cap = str(random_capture(tmp_path / "r.kcap", seed))
    c, pure = _counts(cap, iotally), _counts(cap, pure_iotally)
    assert c == pure
    assert c[0] and c[1]
