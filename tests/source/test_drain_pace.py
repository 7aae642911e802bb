"""How often the live consumer drains the ring (tracer/source/live.py ``next_poll``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tracer.probe.loader import DEFAULT_RING_MB
from tracer.source.live import DRAIN_TARGET, IDLE_POLL_S, MAX_POLL_S, POLL_S, SMALL_DRAIN, next_poll


def test_idle_drains_stay_frequent() -> None:
    """Little traffic: every 2 ms, so a short-lived process's first event reaches /proc in time."""
    assert next_poll(0, 0.002) == next_poll(SMALL_DRAIN - 1, 0.002) == IDLE_POLL_S


def test_busy_drains_gather_a_target_each() -> None:
    # nginx under wrk: ~100 KB per 2 ms is 50 MB/s -> 20 ms for 1 MB, capped at 10 ms.
    assert next_poll(100_000, 0.002) == MAX_POLL_S
    # 1 GB/s: a drain each 1 MB, i.e. every ~1 ms.
    assert abs(next_poll(10 << 20, 10 * (1 << 20) / 1e9) - DRAIN_TARGET / 1e9) < 1e-9
    # A backlog drained at once (or a rate beyond the ring's): as often as allowed.
    assert next_poll(60 << 20, 0.001) == POLL_S
    # What one pace lets in stays far below the default ring's size.
    assert DRAIN_TARGET <= DEFAULT_RING_MB * (1 << 20) / 16


@given(st.integers(0, 1 << 30), st.floats(0, 1.0))
def test_a_pause_lets_in_about_a_target_at_most(drained: int, since: float) -> None:
    """At the rate just seen, a pause lets in at most DRAIN_TARGET bytes (or what the shortest
    pause must)."""
    pause = next_poll(drained, since)
    assert POLL_S <= pause <= MAX_POLL_S
    if drained >= SMALL_DRAIN:
        rate = drained / max(since, POLL_S)
        assert rate * pause <= max(DRAIN_TARGET, rate * POLL_S) + 1
